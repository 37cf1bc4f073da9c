//! The `RATE_LIMITED` dispatch: the gateway refused a command sent too often.
//!
//! Since 2025 Discord rate limits request-guild-members (op 8): an excess
//! request is not answered with `GUILD_MEMBERS_CHUNK`s but with one
//! `RATE_LIMITED` dispatch saying how long to wait and which request it
//! refused. The payload's `meta` depends on the opcode, so it is decoded by
//! opcode into a [`RateLimitMeta`]; an opcode this library does not know yet
//! keeps its `meta` as raw JSON instead of failing.

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::{DispatchMeta, GuildId};

/// `RATE_LIMITED`: a gateway command was refused for being sent too often;
/// send it again after [`retry_after`](Self::retry_after) seconds.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// use shardbus::gateway::{DispatchEvent, EventType};
/// use shardbus::model::{GuildId, RateLimitMeta, RateLimited};
///
/// let d = r#"{"opcode": 8, "retry_after": 29.5,
///             "meta": {"guild_id": "123", "nonce": "abc"}}"#;
/// let limited: RateLimited = serde_json::from_str(d).unwrap();
/// assert_eq!(limited.opcode, 8);
/// assert_eq!(limited.retry_after_duration(), Duration::from_millis(29_500));
/// assert_eq!(
///     limited.request,
///     RateLimitMeta::RequestGuildMembers { guild_id: GuildId(123), nonce: Some("abc".into()) },
/// );
/// assert_eq!(RateLimited::EVENT_TYPE, EventType::RATE_LIMITED);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimited {
    /// The opcode of the refused command: `8` for request guild members.
    /// `shardbus::gateway::OpCode::from_code` names it.
    pub opcode: u8,
    /// How long to wait before sending the command again, in seconds.
    /// [`retry_after_duration`](Self::retry_after_duration) gives it as a
    /// [`Duration`].
    pub retry_after: f64,
    /// Which request was refused: the payload's `meta`, decoded by
    /// [`opcode`](Self::opcode). (It is not called `meta` here because every
    /// dispatch's `meta` is its [`DispatchMeta`].)
    pub request: RateLimitMeta,
    /// Which shard and sequence number this came with.
    pub meta: DispatchMeta,
}

/// The refused request of a [`RateLimited`] dispatch, by opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitMeta {
    /// Op 8, request guild members.
    RequestGuildMembers {
        /// The guild whose members were requested.
        guild_id: GuildId,
        /// The nonce of the request, if it had one: match it against the
        /// request you sent.
        nonce: Option<String>,
    },
    /// An opcode this library does not know yet: the raw JSON of `meta`,
    /// as sent.
    Unknown(String),
}

impl RateLimited {
    /// [`retry_after`](Self::retry_after) as a [`Duration`]. A negative
    /// value is zero; one too large for a `Duration` is [`Duration::MAX`].
    pub fn retry_after_duration(&self) -> Duration {
        Duration::try_from_secs_f64(self.retry_after).unwrap_or(if self.retry_after > 0.0 {
            Duration::MAX
        } else {
            Duration::ZERO
        })
    }
}

impl<'de> Deserialize<'de> for RateLimited {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The payload as sent, with `meta` left undecoded until the opcode
        /// is known.
        #[derive(Deserialize)]
        struct Wire {
            /// See [`RateLimited::opcode`].
            opcode: u8,
            /// See [`RateLimited::retry_after`].
            retry_after: f64,
            /// Decoded by `opcode`.
            meta: Box<RawValue>,
        }

        /// `meta` for op 8.
        #[derive(Deserialize)]
        struct RequestGuildMembers {
            /// See [`RateLimitMeta::RequestGuildMembers`].
            guild_id: GuildId,
            /// See [`RateLimitMeta::RequestGuildMembers`].
            #[serde(default)]
            nonce: Option<String>,
        }

        let wire = Wire::deserialize(deserializer)?;
        let request = match wire.opcode {
            8 => {
                let meta: RequestGuildMembers =
                    serde_json::from_str(wire.meta.get()).map_err(D::Error::custom)?;
                RateLimitMeta::RequestGuildMembers {
                    guild_id: meta.guild_id,
                    nonce: meta.nonce,
                }
            }
            _ => RateLimitMeta::Unknown(wire.meta.get().to_owned()),
        };
        Ok(Self {
            opcode: wire.opcode,
            retry_after: wire.retry_after,
            request,
            meta: DispatchMeta::default(),
        })
    }
}
