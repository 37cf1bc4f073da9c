//! Domain identifiers: guilds, shards, sessions and connections.
//!
//! Guild ids are deterministic snowflakes: guild number `i` (counting from 0)
//! has the timestamp part `GUILD_EPOCH_BASE + i`, so `(id >> 22) % total`
//! spreads consecutive guilds round-robin over the shards.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The timestamp part (milliseconds since the Discord epoch, 2015-01-01) of
/// guild number 0. It is a multiple of every shard count from 1 to 16, so
/// guild `i` lands on shard `i % total` for those totals.
pub const GUILD_EPOCH_BASE: u64 = 99_999_900_000;

/// The low 22 bits (worker, process, increment) given to every generated guild id.
const GUILD_LOW_BITS: u64 = 0x0_1001;

/// A guild's snowflake id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GuildId(pub u64);

impl GuildId {
    /// The id of generated guild number `index` (counting from 0).
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus_sim::GuildId;
    /// let g = GuildId::nth(5);
    /// assert_eq!(g.shard(4), 1); // (99_999_900_000 + 5) % 4
    /// ```
    #[must_use]
    pub const fn nth(index: u32) -> Self {
        Self(((GUILD_EPOCH_BASE + index as u64) << 22) | GUILD_LOW_BITS)
    }

    /// The shard that receives this guild's events out of `total` shards:
    /// `(id >> 22) % total`. A `total` of 0 is treated as 1.
    #[must_use]
    pub const fn shard(self, total: u32) -> u32 {
        let total = if total == 0 { 1 } else { total as u64 };
        ((self.0 >> 22) % total) as u32
    }
}

impl From<u64> for GuildId {
    fn from(id: u64) -> Self {
        Self(id)
    }
}

impl fmt::Display for GuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A shard as a client identified it: `[id, total]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ShardInfo {
    /// The zero-based shard id.
    pub id: u32,
    /// The total number of shards the client runs.
    pub total: u32,
}

impl ShardInfo {
    /// Whether events of `guild` go to this shard.
    #[must_use]
    pub const fn owns(self, guild: GuildId) -> bool {
        guild.shard(self.total) == self.id
    }
}

impl fmt::Display for ShardInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.id, self.total)
    }
}

/// A gateway session id, as sent in READY and used by Resume.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The sim's number for one websocket connection, counting from 1 in the
/// order connections were accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// A dispatch sequence number, counted per session from 1.
pub type Seq = u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_guilds_spread_round_robin() {
        for total in 1..=16 {
            for i in 0..64 {
                assert_eq!(GuildId::nth(i).shard(total), i % total);
            }
        }
    }

    #[test]
    fn nth_is_a_plausible_snowflake() {
        let id = GuildId::nth(0).0;
        // 2018-ish: more than 2 years after the Discord epoch.
        assert!((id >> 22) > 60_000_000_000);
        assert_eq!(id & 0x3f_ffff, GUILD_LOW_BITS);
    }
}
