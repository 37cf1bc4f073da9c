//! Typed identifiers: snowflakes, shards, sequence numbers, sessions.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a snowflake id newtype: serialized as a string (as Discord does),
/// deserialized from a string or an integer.
macro_rules! snowflake {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw snowflake.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// Milliseconds since the Unix epoch when this id was created.
            pub const fn timestamp_ms(self) -> u64 {
                (self.0 >> 22) + DISCORD_EPOCH_MS
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<u64> for $name {
            fn from(id: u64) -> Self {
                Self(id)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(SnowflakeVisitor).map(Self)
            }
        }
    )*};
}

/// The first second of 2015, where Discord snowflake timestamps start.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

snowflake! {
    /// A guild (server).
    GuildId;
    /// A channel, thread or DM.
    ChannelId;
    /// A user (or bot).
    UserId;
    /// A message.
    MessageId;
    /// A role.
    RoleId;
    /// An application (the bot's own, in Ready).
    ApplicationId;
    /// A custom emoji.
    EmojiId;
    /// An interaction.
    InteractionId;
    /// An application command.
    CommandId;
    /// A webhook.
    WebhookId;
    /// An attachment.
    AttachmentId;
    /// A sticker.
    StickerId;
    /// A forum or media channel tag.
    TagId;
    /// A guild integration.
    IntegrationId;
}

impl GuildId {
    /// The shard that receives this guild's events when the bot runs
    /// `total` shards: `(guild_id >> 22) % total`.
    ///
    /// ```
    /// use shardbus::model::{GuildId, ShardId};
    /// assert_eq!(GuildId(197038439483310086).shard(4), ShardId(2));
    /// ```
    pub const fn shard(self, total: u32) -> ShardId {
        if total == 0 {
            return ShardId(0);
        }
        ShardId(((self.0 >> 22) % total as u64) as u32)
    }
}

/// A shard's index, `0..total`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ShardId(pub u32);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A dispatch sequence number within one session (`s`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A gateway session id, from Ready; needed to resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl SessionId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serde helpers for a bare `u64` snowflake whose kind depends on another
/// field (a permission overwrite's role or user): read from a string or an
/// integer, written as a string.
pub(crate) mod raw_snowflake {
    use serde::{Deserializer, Serializer};

    /// Reads a snowflake from a string or an integer.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(super::SnowflakeVisitor)
    }

    /// Writes a snowflake as a string.
    pub(crate) fn serialize<S: Serializer>(id: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(id)
    }
}

/// Reads a snowflake from a JSON string or number.
struct SnowflakeVisitor;

impl Visitor<'_> for SnowflakeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a snowflake as a string or an integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        v.parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn snowflakes_read_strings_and_integers_and_write_strings() {
        let from_str: GuildId = serde_json::from_str("\"81384788765712384\"").unwrap();
        let from_int: GuildId = serde_json::from_str("81384788765712384").unwrap();
        assert_eq!(from_str, from_int);
        assert_eq!(
            serde_json::to_string(&from_str).unwrap(),
            "\"81384788765712384\""
        );
        assert!(serde_json::from_str::<GuildId>("\"nope\"").is_err());
        assert!(serde_json::from_str::<GuildId>("-1").is_err());
    }

    #[test]
    fn guild_shard_formula() {
        let g = GuildId(81384788765712384);
        assert_eq!(g.shard(1), ShardId(0));
        assert_eq!(g.shard(16).0 as u64, (81384788765712384u64 >> 22) % 16);
        assert_eq!(g.shard(0), ShardId(0));
    }
}
