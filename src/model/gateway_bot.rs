//! `GET /gateway/bot`: where to connect, how many shards, and how many
//! sessions may start.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The answer of `GET /api/v10/gateway/bot`.
///
/// # Examples
///
/// ```
/// use shardbus::model::GatewayBot;
///
/// let bot: GatewayBot = serde_json::from_str(r#"{
///     "url": "wss://gateway.discord.gg", "shards": 9,
///     "session_start_limit": {"total": 1000, "remaining": 999,
///                             "reset_after": 14400000, "max_concurrency": 1}
/// }"#).unwrap();
/// assert_eq!(bot.shards, 9);
/// assert_eq!(bot.session_start_limit.reset_after().as_secs(), 14_400);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayBot {
    /// The gateway URL for new sessions (without query parameters).
    pub url: String,
    /// The recommended number of shards.
    pub shards: u32,
    /// How many sessions may start, and how fast.
    pub session_start_limit: SessionStartLimit,
}

/// The `session_start_limit` of [`GatewayBot`]: the daily identify budget
/// and the identify concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStartLimit {
    /// Session starts allowed per reset period.
    pub total: u32,
    /// Session starts left in this period.
    pub remaining: u32,
    /// Milliseconds until `remaining` is reset to `total`.
    #[serde(rename = "reset_after")]
    pub reset_after_ms: u64,
    /// How many identify buckets there are (`shard_id % max_concurrency`).
    #[serde(default = "one")]
    pub max_concurrency: u32,
}

impl SessionStartLimit {
    /// The time until `remaining` is reset.
    pub fn reset_after(&self) -> Duration {
        Duration::from_millis(self.reset_after_ms)
    }
}

/// The default `max_concurrency`.
fn one() -> u32 {
    1
}
