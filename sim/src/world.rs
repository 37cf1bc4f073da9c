//! The simulated bot's world: its user, application, guilds, channels and
//! members, as fixtures. The payloads built from them (READY, GUILD_CREATE,
//! member chunks) are in `payloads.rs`; the generator's MESSAGE_CREATE
//! template in `template.rs`.
//!
//! Everything is deterministic: guild `i` is [`GuildId::nth`]`(i)`, its
//! channels and members are derived from `i`.

use crate::config::SimConfig;
use crate::ids::{GUILD_EPOCH_BASE, GuildId, ShardInfo};
use crate::payloads::{member_json, user_json};

/// The timestamp part of generated user ids.
const USER_EPOCH_BASE: u64 = GUILD_EPOCH_BASE - 40_000_000_000;

/// Users in the pool guild members are drawn from.
const USER_POOL: u64 = 1000;

/// One generated user.
#[derive(Clone, Debug)]
pub(crate) struct UserFixture {
    /// The user's snowflake.
    pub id: u64,
    /// The username.
    pub name: String,
    /// Whether it is a bot.
    pub bot: bool,
}

/// One generated guild.
#[derive(Clone, Debug)]
pub(crate) struct GuildFixture {
    /// The guild's id.
    pub id: GuildId,
    /// Its number (0-based).
    pub index: u32,
    /// The text channels' ids (the first is the system channel).
    pub text_channels: Vec<u64>,
    /// The voice channel's id.
    pub voice_channel: u64,
    /// Members (the bot first).
    pub members: Vec<UserFixture>,
    /// The reported member count (at least `members.len()`).
    pub member_count: u32,
    /// Per non-bot member: the pre-serialized `"author":{..},"member":{..}` of
    /// a message they send (without the surrounding braces).
    pub author_fragments: Vec<String>,
    /// `"channel_id":"..","guild_id":".."` for the first text channel.
    pub location_fragment: String,
}

/// The bot and its guilds.
#[derive(Debug)]
pub(crate) struct World {
    /// The bot user (its id is also the application id).
    pub bot: UserFixture,
    /// All guilds, by index.
    pub guilds: Vec<GuildFixture>,
}

fn user_id(n: u64) -> u64 {
    ((USER_EPOCH_BASE + n) << 22) | 0x0_2001
}

impl World {
    /// Generate the world of `config`.
    pub(crate) fn new(config: &SimConfig) -> Self {
        let bot = UserFixture {
            id: user_id(0),
            name: "shardbus-sim-bot".to_owned(),
            bot: true,
        };
        let guilds = (0..config.guilds)
            .map(|i| Self::make_guild(config, &bot, i))
            .collect();
        Self { bot, guilds }
    }

    fn make_guild(config: &SimConfig, bot: &UserFixture, index: u32) -> GuildFixture {
        let id = GuildId::nth(index);
        let base = (id.0 >> 22) << 22;
        let text_channels: Vec<u64> = (0..u64::from(config.channels_per_guild))
            .map(|k| base | (0x0_3000 + k))
            .collect();
        let voice_channel = base | 0x0_3fff;
        let mut members = vec![bot.clone()];
        let others = config.members_per_guild.saturating_sub(1);
        for m in 0..u64::from(others) {
            let n = 1 + (u64::from(index) * 7 + m) % USER_POOL;
            members.push(UserFixture {
                id: user_id(n),
                name: format!("user{n}"),
                bot: false,
            });
        }
        // A spread of sizes so both sides of any large_threshold occur.
        let member_count = (members.len() as u32).max(10 + (index.wrapping_mul(37) % 400));
        let location_fragment = format!(
            "\"channel_id\":\"{}\",\"guild_id\":\"{}\"",
            text_channels[0], id.0
        );
        let author_fragments = members
            .iter()
            .filter(|u| !u.bot)
            .map(|u| {
                format!(
                    "\"author\":{},\"member\":{}",
                    user_json(u),
                    member_json(u, false)
                )
            })
            .collect();
        GuildFixture {
            id,
            index,
            text_channels,
            voice_channel,
            members,
            member_count,
            author_fragments,
            location_fragment,
        }
    }

    /// The guilds shard `shard` owns, in index order.
    pub(crate) fn guilds_of(&self, shard: ShardInfo) -> impl Iterator<Item = &GuildFixture> {
        self.guilds.iter().filter(move |g| shard.owns(g.id))
    }

    /// The guild with this id, if the bot is in it.
    pub(crate) fn guild(&self, id: GuildId) -> Option<&GuildFixture> {
        let index = (id.0 >> 22).checked_sub(GUILD_EPOCH_BASE)?;
        let g = self.guilds.get(usize::try_from(index).ok()?)?;
        (g.id == id).then_some(g)
    }

    /// The channel with this id and its guild, if it is one of the bot's
    /// guilds' channels.
    pub(crate) fn channel(&self, id: u64) -> Option<(&GuildFixture, ChannelRef)> {
        // A guild's channels share its timestamp bits.
        let g = self.guild(GuildId(
            ((id >> 22) << 22) | (GuildId::nth(0).0 & 0x3f_ffff),
        ))?;
        if id == g.voice_channel {
            return Some((g, ChannelRef::Voice));
        }
        let pos = g.text_channels.iter().position(|c| *c == id)?;
        Some((g, ChannelRef::Text(pos)))
    }
}

/// Which of its guild's channels a channel is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChannelRef {
    /// The text channel at this position.
    Text(usize),
    /// The voice channel.
    Voice,
}

impl GuildFixture {
    /// The member with this user id.
    pub(crate) fn member(&self, user: u64) -> Option<&UserFixture> {
        self.members.iter().find(|u| u.id == user)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn guild_lookup_by_id() {
        let world = World::new(&SimConfig::default());
        assert_eq!(world.guild(GuildId::nth(3)).unwrap().index, 3);
        assert!(world.guild(GuildId(42)).is_none());
        assert!(world.guild(GuildId::nth(10_000)).is_none());
    }

    #[test]
    fn channel_lookup_by_id() {
        let world = World::new(&SimConfig::default());
        let g = &world.guilds[4];
        let (found, at) = world.channel(g.text_channels[1]).unwrap();
        assert_eq!((found.index, at), (4, ChannelRef::Text(1)));
        assert_eq!(world.channel(g.voice_channel).unwrap().1, ChannelRef::Voice);
        assert!(world.channel(g.id.0).is_none());
        assert!(world.channel(42).is_none());
    }
}
