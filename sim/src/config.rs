//! How a [`Sim`](crate::Sim) behaves: shards, guilds, limits and timings.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use serde::Serialize;

use crate::protocol::intents;
use crate::rest::RestLimits;

/// The configuration of a [`Sim`](crate::Sim).
///
/// Every field has a default close to the real gateway's, except the token and
/// the sizes, which suit tests. Build one with struct update syntax:
///
/// ```
/// use std::time::Duration;
/// use shardbus_sim::SimConfig;
///
/// let config = SimConfig {
///     shards: 4,
///     guilds: 100,
///     identify_window: Duration::from_millis(200),
///     ..SimConfig::default()
/// };
/// assert_eq!(config.max_concurrency, 1);
/// ```
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Where to listen; `127.0.0.1:0` (an ephemeral loopback port) by default.
    pub bind: SocketAddr,
    /// The bot token clients must send (`Authorization: Bot <token>` on HTTP,
    /// `token` in Identify and Resume).
    pub token: String,
    /// The shard count `GET /gateway/bot` recommends and Identify is checked against.
    pub shards: u32,
    /// How many guilds the bot is in; their ids are [`GuildId::nth`](crate::GuildId::nth)`(0..guilds)`.
    pub guilds: u32,
    /// `session_start_limit.max_concurrency`: identify buckets are `shard_id % max_concurrency`.
    pub max_concurrency: u32,
    /// The identify rate-limit window per bucket (5 s on the real gateway).
    pub identify_window: Duration,
    /// The `heartbeat_interval` sent in Hello. A connection that sends no
    /// heartbeat for 1.5 intervals is closed.
    pub heartbeat_interval: Duration,
    /// If set, the server sends op 1 (a heartbeat request) to every
    /// connection at this period.
    pub heartbeat_requests: Option<Duration>,
    /// The daily session start limit reported by `/gateway/bot` and enforced on Identify.
    pub session_start_limit: SessionStartLimit,
    /// How long a session stays resumable after its connection closed with a
    /// code other than 1000/1001 (or without a close frame).
    pub resume_window: Duration,
    /// How many dispatches each session keeps for Resume replay.
    pub replay_buffer: usize,
    /// The privileged intents the application may use (others get 4014).
    /// All three by default.
    pub privileged_intents: u64,
    /// If true (the default), Identify must use exactly [`shards`](Self::shards)
    /// as its total (4010 otherwise; 4011 if it is below a total set by
    /// [`Sim::reshard`](crate::Sim::reshard)). If false, any total is accepted
    /// as the real gateway does, except one below the resharded count (4011).
    pub strict_shard_total: bool,
    /// MESSAGE_CREATE events per second from the built-in generator, spread
    /// over all guilds; 0 disables it and `f64::INFINITY` runs it as fast as
    /// the connections drain.
    pub rate: f64,
    /// Members listed per guild in GUILD_CREATE (the bot is always one of them).
    pub members_per_guild: u32,
    /// Text channels per guild (plus one voice channel).
    pub channels_per_guild: u32,
    /// With `compress=zlib-stream`, compressed messages longer than this are
    /// split over several websocket binary frames (`zstd-stream` never
    /// splits: each payload is one message, as on Discord).
    pub zlib_chunk_size: usize,
    /// How many client payloads a connection may send per [`command_window`](Self::command_window)
    /// before it is closed with 4008 (120 on the real gateway).
    pub command_limit: u32,
    /// The window of [`command_limit`](Self::command_limit), sliding (60 s on the real gateway).
    pub command_window: Duration,
    /// How often a session may request all members of one guild: an op 8
    /// with `query: ""` and `limit: 0` (and no `user_ids`) within this long
    /// of the previous accepted one for that guild gets a `RATE_LIMITED`
    /// dispatch instead of a member chunk (30 s on the real gateway since
    /// 2025). Other op 8 forms are not limited; `Duration::ZERO` disables it.
    pub member_request_window: Duration,
    /// After a Reconnect (op 7) fault, how long the server waits for the client
    /// to close before it closes the connection itself with 4000.
    pub reconnect_grace: Duration,
    /// The per-route rate limits of the REST API (`/api/v10/…`), by group
    /// of routes; Discord-like by default (see [`RestLimits`]).
    pub rest_limits: RestLimits,
    /// The global REST limit: requests per second (a fixed one-second
    /// window) over every route except the interaction endpoints
    /// (`/interactions/…` and `/webhooks/{application_id}/{token}…`),
    /// which Discord exempts. 50, Discord's, by default; at least 1.
    pub global_limit: u32,
    /// How many invalid REST requests (answered 401, 403, or 429 other than
    /// `X-RateLimit-Scope: shared`) are allowed per
    /// [`invalid_request_window`](Self::invalid_request_window); past this
    /// the client is banned, as Cloudflare bans it from Discord: every REST
    /// request gets 403 until the window ends. 10,000 by default.
    pub invalid_request_limit: u32,
    /// The fixed window of [`invalid_request_limit`](Self::invalid_request_limit),
    /// starting at the first invalid request (10 minutes on Discord).
    pub invalid_request_window: Duration,
    /// How long a client has to answer an interaction with its callback
    /// (3 s on Discord). [`InteractionRecord::within_3s`](crate::InteractionRecord::within_3s)
    /// says whether it did.
    pub interaction_deadline: Duration,
    /// If true, a callback later than [`interaction_deadline`](Self::interaction_deadline)
    /// gets 404 `Unknown interaction` (10062), as on Discord. False by
    /// default: the late callback is accepted and logged with
    /// `within_3s: false`, so a slow test machine does not fail a client's
    /// later steps.
    pub reject_late_interactions: bool,
    /// How long an interaction's token works for the webhook endpoints
    /// (follow-ups, `@original`): 15 minutes on Discord. Later requests get
    /// 401 `Invalid Webhook Token` (50027).
    pub interaction_token_lifetime: Duration,
}

/// The `session_start_limit` object of `GET /gateway/bot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SessionStartLimit {
    /// Session starts allowed per reset period.
    pub total: u32,
    /// Session starts left; every accepted Identify takes one.
    pub remaining: u32,
    /// Time until `remaining` is reset to `total`.
    pub reset_after: Duration,
}

impl Default for SessionStartLimit {
    fn default() -> Self {
        Self {
            total: 1000,
            remaining: 1000,
            reset_after: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            token: "shardbus-sim-token".to_owned(),
            shards: 1,
            guilds: 10,
            max_concurrency: 1,
            identify_window: Duration::from_secs(5),
            heartbeat_interval: Duration::from_millis(41_250),
            heartbeat_requests: None,
            session_start_limit: SessionStartLimit::default(),
            resume_window: Duration::from_secs(120),
            replay_buffer: 16_384,
            privileged_intents: intents::PRIVILEGED,
            strict_shard_total: true,
            rate: 0.0,
            members_per_guild: 8,
            channels_per_guild: 2,
            zlib_chunk_size: 8192,
            command_limit: 120,
            command_window: Duration::from_secs(60),
            member_request_window: Duration::from_secs(30),
            reconnect_grace: Duration::from_secs(5),
            rest_limits: RestLimits::default(),
            global_limit: 50,
            invalid_request_limit: 10_000,
            invalid_request_window: Duration::from_secs(600),
            interaction_deadline: Duration::from_secs(3),
            reject_late_interactions: false,
            interaction_token_lifetime: Duration::from_secs(15 * 60),
        }
    }
}

impl SimConfig {
    /// Check the values that would make the sim misbehave.
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        if self.shards == 0 {
            return Err("shards must be at least 1");
        }
        if self.max_concurrency == 0 {
            return Err("max_concurrency must be at least 1");
        }
        if self.heartbeat_interval.is_zero() {
            return Err("heartbeat_interval must not be zero");
        }
        if self.replay_buffer == 0 {
            return Err("replay_buffer must be at least 1");
        }
        if self.zlib_chunk_size < 16 {
            return Err("zlib_chunk_size must be at least 16 bytes");
        }
        if self.rate.is_nan() || self.rate < 0.0 {
            return Err("rate must be a non-negative number");
        }
        if self.members_per_guild == 0 || self.channels_per_guild == 0 {
            return Err("members_per_guild and channels_per_guild must be at least 1");
        }
        if self
            .rest_limits
            .all()
            .iter()
            .any(|(_, l)| l.limit == 0 || l.window.is_zero())
        {
            return Err(
                "every rest_limits entry needs a limit of at least 1 and a non-zero window",
            );
        }
        if self.global_limit == 0 {
            return Err("global_limit must be at least 1");
        }
        if self.invalid_request_window.is_zero()
            || self.interaction_deadline.is_zero()
            || self.interaction_token_lifetime.is_zero()
        {
            return Err(
                "invalid_request_window, interaction_deadline and interaction_token_lifetime must not be zero",
            );
        }
        Ok(())
    }
}
