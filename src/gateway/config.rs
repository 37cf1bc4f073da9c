//! How a shard connects: token, intents, shard, URL, events, compression.

// Compiled without feature `gateway` for its public types; the rest
// serves the connection.
#![cfg_attr(not(feature = "gateway"), allow(dead_code))]

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::compression::Compression;
use super::error::ResumeUrlError;
use super::event::DispatchEvent;
use super::hook::DispatchHook;
use super::identify::{IdentifyProperties, Intents, Token};
use super::queue::{IdentifyQueue, LocalIdentifyQueue};
use super::registry::EventRegistry;
use crate::model::{Seq, SessionId, ShardId};

/// Discord's gateway.
pub const DISCORD_GATEWAY_URL: &str = "wss://gateway.discord.gg";

/// Everything a shard needs to connect; a builder with defaults for
/// Discord.
///
/// # Examples
///
/// ```
/// use shardbus::gateway::{Compression, GatewayConfig, Intents};
///
/// let config = GatewayConfig::new("my token", Intents::GUILDS | Intents::GUILD_MESSAGES)
///     .shard(0, 1)
///     .compression(Compression::ZlibStream);
/// // The token never shows.
/// assert!(!format!("{config:?}").contains("my token"));
/// ```
#[derive(Clone)]
pub struct GatewayConfig {
    /// The bot token.
    pub(crate) token: Token,
    /// The intents to identify with.
    pub(crate) intents: Intents,
    /// This shard.
    pub(crate) shard: ShardId,
    /// How many shards the bot runs.
    pub(crate) total: u32,
    /// Where to connect (a new session; resumes use Ready's URL).
    pub(crate) gateway_url: String,
    /// The transport compression to ask for.
    pub(crate) compression: Compression,
    /// Members above which a guild is sent without offline members.
    pub(crate) large_threshold: u8,
    /// Identify properties.
    pub(crate) properties: IdentifyProperties,
    /// The presence to identify with.
    pub(crate) presence: Option<serde_json::Value>,
    /// The dispatch types to decode: the built-in set is one allocation
    /// shared by every shard, copied only when a shard registers its own.
    pub(crate) registry: Arc<EventRegistry>,
    /// Paces identifies.
    pub(crate) queue: Arc<dyn IdentifyQueue>,
    /// Sees decoded dispatches before the bus (a state cache).
    pub(crate) hook: Option<Arc<dyn DispatchHook>>,
    /// The largest payload accepted, after decompression.
    pub(crate) max_payload: usize,
    /// The longest wait between failed reconnects.
    pub(crate) backoff_max: Duration,
    /// How long to wait for Hello after connecting.
    pub(crate) hello_timeout: Duration,
    /// A session to resume instead of identifying.
    pub(crate) resume: Option<ResumeInfo>,
}

/// What a session needs to resume: from Ready, and the last sequence
/// number received.
///
/// [`ShardHandle::session`](super::ShardHandle::session) reads a running
/// shard's; [`GatewayConfig::resume`] starts a shard by resuming one (a
/// session kept across a restart of the process).
///
/// A resume sends the bot's token to `resume_url`, so a shard resumes only
/// through a `ws` or `wss` URL ([`check_url`](Self::check_url)); with any
/// other, it reports [`GatewayErrorKind::ResumeUrl`](super::GatewayErrorKind::ResumeUrl)
/// and identifies against its configured gateway. A URL kept outside the
/// process must still come from a trusted store: this check does not say
/// the host is Discord's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeInfo {
    /// The session's id, from Ready.
    pub session_id: SessionId,
    /// Where to resume it (`resume_gateway_url` from Ready).
    pub resume_url: String,
    /// The last sequence number received: a resume replays what follows.
    pub seq: Seq,
}

impl ResumeInfo {
    /// Checks `resume_url` is a websocket URL a shard may resume through:
    /// scheme `ws` or `wss`, a host, no query or fragment.
    ///
    /// # Errors
    ///
    /// [`ResumeUrlError`] saying which part is wrong.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus::gateway::{ResumeInfo, ResumeUrlError};
    /// use shardbus::model::{Seq, SessionId};
    ///
    /// let mut kept = ResumeInfo {
    ///     session_id: SessionId("abc".into()),
    ///     resume_url: "wss://gateway-us-east1-b.discord.gg".into(),
    ///     seq: Seq(42),
    /// };
    /// assert_eq!(kept.check_url(), Ok(()));
    /// kept.resume_url = "https://example.com".into();
    /// assert_eq!(kept.check_url(), Err(ResumeUrlError::Scheme("https".into())));
    /// ```
    pub fn check_url(&self) -> Result<(), ResumeUrlError> {
        check_resume_url(&self.resume_url)
    }
}

/// See [`ResumeInfo::check_url`].
fn check_resume_url(url: &str) -> Result<(), ResumeUrlError> {
    let uri: http::Uri = url.parse().map_err(|_| ResumeUrlError::Malformed)?;
    let scheme = uri.scheme_str().ok_or(ResumeUrlError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("ws") && !scheme.eq_ignore_ascii_case("wss") {
        return Err(ResumeUrlError::Scheme(scheme.to_owned()));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(ResumeUrlError::NoHost);
    }
    if uri.query().is_some() || url.contains('#') {
        return Err(ResumeUrlError::Query);
    }
    Ok(())
}

impl GatewayConfig {
    /// A configuration for shard `[0, 1]` on Discord's gateway, with every
    /// built-in event type registered and `zlib-stream` on.
    pub fn new(token: impl Into<String>, intents: Intents) -> Self {
        Self {
            token: Token::new(token),
            intents,
            shard: ShardId(0),
            total: 1,
            gateway_url: DISCORD_GATEWAY_URL.to_owned(),
            compression: Compression::default(),
            large_threshold: 250,
            properties: IdentifyProperties::default(),
            presence: None,
            registry: EventRegistry::shared_defaults(),
            queue: Arc::new(LocalIdentifyQueue::new(1)),
            hook: None,
            max_payload: 64 << 20,
            backoff_max: Duration::from_secs(60),
            hello_timeout: Duration::from_secs(30),
            resume: None,
        }
    }

    /// Starts by resuming `session` (kept from an earlier run of this
    /// shard) instead of identifying: the gateway replays what followed
    /// its `seq`. If the gateway refuses it (expired, or not this shard's),
    /// or its resume URL is not a websocket URL
    /// ([`ResumeInfo::check_url`]), the shard identifies as usual.
    pub fn resume(mut self, session: ResumeInfo) -> Self {
        self.resume = Some(session);
        self
    }

    /// The session this configuration starts by resuming, if any.
    pub fn resume_session(&self) -> Option<&ResumeInfo> {
        self.resume.as_ref()
    }

    /// Forgets the session to resume: a shard restarted from this
    /// configuration identifies (or resumes its own, newer session).
    pub(crate) fn clear_resume(&mut self) {
        self.resume = None;
    }

    /// This shard's `[id, total]`.
    pub fn shard(mut self, id: u32, total: u32) -> Self {
        self.shard = ShardId(id);
        self.total = total.max(1);
        self
    }

    /// The intents to identify with.
    pub fn intents(mut self, intents: Intents) -> Self {
        self.intents = intents;
        self
    }

    /// Another gateway URL (`ws://` or `wss://`), e.g. a simulator's.
    pub fn gateway_url(mut self, url: impl Into<String>) -> Self {
        self.gateway_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// The transport compression to ask for (default
    /// [`Compression::ZlibStream`]).
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Shorthand: `true` is [`Compression::ZlibStream`], `false`
    /// [`Compression::None`].
    pub fn compress(mut self, on: bool) -> Self {
        self.compression = if on {
            Compression::ZlibStream
        } else {
            Compression::None
        };
        self
    }

    /// Members above which a guild is sent without offline members (50–250).
    pub fn large_threshold(mut self, threshold: u8) -> Self {
        self.large_threshold = threshold.clamp(50, 250);
        self
    }

    /// The presence to identify with (the `d` of a presence update).
    pub fn presence(mut self, presence: serde_json::Value) -> Self {
        self.presence = Some(presence);
        self
    }

    /// Registers a dispatch type (a custom event, or a replacement for a
    /// built-in one).
    pub fn register_event<T: DispatchEvent>(mut self) -> Self {
        Arc::make_mut(&mut self.registry).register::<T>();
        self
    }

    /// The identify queue to pace new sessions through (shared by the shards
    /// of one bot, or across processes).
    pub fn identify_queue(mut self, queue: Arc<dyn IdentifyQueue>) -> Self {
        self.queue = queue;
        self
    }

    /// A hook that sees each decoded dispatch before it is posted (a state
    /// cache, so handlers read the state after their event).
    pub fn dispatch_hook(mut self, hook: Arc<dyn DispatchHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The largest payload accepted after decompression (default 64 MiB);
    /// larger ones are reported and end the connection.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// The longest wait between failed reconnects (default 60 s).
    pub fn reconnect_backoff_max(mut self, max: Duration) -> Self {
        self.backoff_max = max;
        self
    }

    /// The shard this configuration is for.
    pub fn shard_id(&self) -> ShardId {
        self.shard
    }

    /// How many shards the bot runs.
    pub fn total_shards(&self) -> u32 {
        self.total
    }

    /// The URL a new session connects to, with its query parameters
    /// (`v=10`, `encoding=json`, and `compress` if compression is on).
    pub fn connect_url(&self) -> String {
        Self::url_with_query(&self.gateway_url, self.compression)
    }

    /// `base` with the query parameters for `compression`.
    pub(crate) fn url_with_query(base: &str, compression: Compression) -> String {
        let base = base.trim_end_matches('/');
        match compression.query_value() {
            Some(compress) => format!("{base}/?v=10&encoding=json&compress={compress}"),
            None => format!("{base}/?v=10&encoding=json"),
        }
    }
}

impl fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("token", &self.token)
            .field("intents", &self.intents)
            .field("shard", &[self.shard.0, self.total])
            .field("gateway_url", &self.gateway_url)
            .field("compression", &self.compression)
            .field("registry", &self.registry)
            .field(
                "resume",
                &self.resume.as_ref().map(|r| (&r.session_id, r.seq)),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::DispatchMeta;

    #[derive(Debug, serde::Deserialize)]
    struct Custom {
        #[serde(skip)]
        meta: DispatchMeta,
    }

    impl crate::gateway::Event for Custom {
        fn op(&self) -> crate::gateway::OpCode {
            crate::gateway::OpCode::Dispatch
        }

        fn event_type(&self) -> crate::gateway::EventType {
            Self::EVENT_TYPE
        }
    }

    impl DispatchEvent for Custom {
        const EVENT_TYPE: crate::gateway::EventType =
            crate::gateway::EventType::from_static("SHARDBUS_CUSTOM");

        fn set_meta(&mut self, meta: DispatchMeta) {
            self.meta = meta;
        }
    }

    #[test]
    fn shards_share_the_built_in_registry_until_one_registers_its_own() {
        let a = GatewayConfig::new("t", Intents::GUILDS);
        let b = GatewayConfig::new("t", Intents::GUILDS).shard(1, 2);
        assert!(
            Arc::ptr_eq(&a.registry, &b.registry),
            "one copy per process"
        );
        let custom = b.register_event::<Custom>();
        assert!(!Arc::ptr_eq(&a.registry, &custom.registry));
        assert!(custom.registry.contains("SHARDBUS_CUSTOM"));
        assert!(custom.registry.contains("MESSAGE_CREATE"), "defaults kept");
        assert!(!a.registry.contains("SHARDBUS_CUSTOM"), "others unchanged");
    }

    #[test]
    fn only_websocket_urls_with_a_host_are_resumed_through() {
        for ok in [
            "wss://gateway-us-east1-b.discord.gg",
            "wss://gateway.discord.gg/",
            "ws://127.0.0.1:7878",
            "WSS://gateway.discord.gg",
        ] {
            assert_eq!(check_resume_url(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            (
                "https://example.com",
                ResumeUrlError::Scheme("https".into()),
            ),
            ("file:///etc/passwd", ResumeUrlError::Malformed),
            ("not a url", ResumeUrlError::Malformed),
            ("", ResumeUrlError::Malformed),
            ("gateway.discord.gg", ResumeUrlError::Malformed),
            ("wss://gateway.discord.gg/?v=9", ResumeUrlError::Query),
            ("wss://gateway.discord.gg/#x", ResumeUrlError::Query),
        ] {
            assert_eq!(check_resume_url(bad), Err(why), "{bad}");
        }
    }
}
