//! The simulated bot's world: its user, application, guilds, channels and
//! members, and the payloads built from them (READY, GUILD_CREATE, the
//! generator's MESSAGE_CREATE).
//!
//! Everything is deterministic: guild `i` is [`GuildId::nth`]`(i)`, its
//! channels and members are derived from `i`. Shapes follow the examples of
//! Discord's documentation (snowflakes as strings, nested `author` and
//! `member`, embeds).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut as _, BytesMut};
use serde_json::{Value, json};

use crate::config::SimConfig;
use crate::frame::put_u64;
use crate::ids::{GUILD_EPOCH_BASE, GuildId, Seq, ShardInfo};

/// Milliseconds from the Unix epoch to the Discord epoch (2015-01-01).
pub(crate) const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// The timestamp part of generated user ids.
const USER_EPOCH_BASE: u64 = GUILD_EPOCH_BASE - 40_000_000_000;

/// Users in the pool guild members are drawn from.
const USER_POOL: u64 = 1000;

/// The joined_at of every member (a fixed past time).
const JOINED_AT: &str = "2021-03-14T15:09:26.535000+00:00";

/// What generated messages say.
const CONTENTS: &[&str] = &[
    "hello world",
    "has anyone tried the new build? it is *much* faster",
    "brb",
    "gg wp \u{1f389}",
    "Can someone review my PR? https://example.com/pull/42",
    "the deploy finished at 14:02, all shards reconnected cleanly",
    "`cargo test` passes locally but CI is red, any idea?",
    "\"quoted\" text with a \\ backslash and a\nnewline",
];

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
    author_fragments: Vec<String>,
    /// `"channel_id":"..","guild_id":".."` for the first text channel.
    location_fragment: String,
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

fn user_json(u: &UserFixture) -> Value {
    let mut v = json!({
        "id": u.id.to_string(),
        "username": u.name,
        "discriminator": "0",
        "global_name": if u.bot { Value::Null } else { Value::String(title(&u.name)) },
        "avatar": Value::Null,
        "public_flags": 0,
    });
    if u.bot {
        v["bot"] = Value::Bool(true);
    }
    v
}

fn title(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A guild member object; `with_user` adds the nested user (GUILD_CREATE)
/// or leaves it out (the `member` of MESSAGE_CREATE).
fn member_json(u: &UserFixture, with_user: bool) -> Value {
    let mut v = json!({
        "nick": Value::Null,
        "avatar": Value::Null,
        "banner": Value::Null,
        "roles": [],
        "joined_at": JOINED_AT,
        "premium_since": Value::Null,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": Value::Null,
    });
    if with_user {
        v["user"] = user_json(u);
    }
    v
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

    /// The `d` of READY for a new session.
    pub(crate) fn ready(
        &self,
        session_id: &str,
        resume_gateway_url: &str,
        shard: Option<ShardInfo>,
    ) -> Value {
        let owned = shard.unwrap_or(ShardInfo { id: 0, total: 1 });
        let guilds: Vec<Value> = self
            .guilds_of(owned)
            .map(|g| json!({ "id": g.id.0.to_string(), "unavailable": true }))
            .collect();
        let mut user = user_json(&self.bot);
        user["verified"] = Value::Bool(true);
        user["mfa_enabled"] = Value::Bool(false);
        user["flags"] = json!(0);
        let mut ready = json!({
            "v": 10,
            "user": user,
            "guilds": guilds,
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": resume_gateway_url,
            "user_settings": {},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["us-east", "us-central"],
            "application": { "id": self.bot.id.to_string(), "flags": 565_248 },
            "_trace": ["[\"shardbus-sim\",{\"micros\":0}]"],
        });
        if let Some(s) = shard {
            ready["shard"] = json!([s.id, s.total]);
        }
        ready
    }

    /// The `d` of GUILD_CREATE for `g`, as seen with `large_threshold`.
    pub(crate) fn guild_create(&self, g: &GuildFixture, large_threshold: u32) -> Value {
        let gid = g.id.0.to_string();
        let large = g.member_count > large_threshold;
        let mut channels: Vec<Value> = g
            .text_channels
            .iter()
            .enumerate()
            .map(|(pos, c)| {
                json!({
                    "id": c.to_string(),
                    "type": 0,
                    "name": if pos == 0 { "general".to_owned() } else { format!("channel-{pos}") },
                    "position": pos,
                    "parent_id": Value::Null,
                    "topic": Value::Null,
                    "nsfw": false,
                    "last_message_id": Value::Null,
                    "rate_limit_per_user": 0,
                    "permission_overwrites": [],
                    "flags": 0,
                })
            })
            .collect();
        channels.push(json!({
            "id": g.voice_channel.to_string(),
            "type": 2,
            "name": "Voice",
            "position": g.text_channels.len(),
            "parent_id": Value::Null,
            "nsfw": false,
            "bitrate": 64_000,
            "user_limit": 0,
            "rtc_region": Value::Null,
            "permission_overwrites": [],
            "flags": 0,
        }));
        // A large guild lists only the bot and a couple of "online" members.
        let listed = if large {
            g.members.len().min(3)
        } else {
            g.members.len()
        };
        let members: Vec<Value> = g.members[..listed]
            .iter()
            .map(|u| member_json(u, true))
            .collect();
        let owner = g.members.get(1).unwrap_or(&self.bot);
        json!({
            "id": gid,
            "name": format!("Sim Guild {}", g.index),
            "icon": Value::Null,
            "splash": Value::Null,
            "discovery_splash": Value::Null,
            "owner_id": owner.id.to_string(),
            "afk_channel_id": Value::Null,
            "afk_timeout": 300,
            "verification_level": 1,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [{
                "id": gid,
                "name": "@everyone",
                "color": 0,
                "colors": { "primary_color": 0, "secondary_color": Value::Null, "tertiary_color": Value::Null },
                "hoist": false,
                "icon": Value::Null,
                "unicode_emoji": Value::Null,
                "position": 0,
                "permissions": "1071698660929",
                "managed": false,
                "mentionable": false,
                "flags": 0,
            }],
            "emojis": [],
            "features": [],
            "mfa_level": 0,
            "application_id": Value::Null,
            "system_channel_id": g.text_channels[0].to_string(),
            "system_channel_flags": 0,
            "rules_channel_id": Value::Null,
            "max_members": 500_000,
            "vanity_url_code": Value::Null,
            "description": Value::Null,
            "banner": Value::Null,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": Value::Null,
            "nsfw_level": 0,
            "stickers": [],
            "premium_progress_bar_enabled": false,
            "safety_alerts_channel_id": Value::Null,
            "joined_at": JOINED_AT,
            "large": large,
            "unavailable": false,
            "member_count": g.member_count,
            "voice_states": [],
            "members": members,
            "channels": channels,
            "threads": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "lazy": true,
        })
    }

    /// The `d` of GUILD_MEMBERS_CHUNK answering op 8 for `g`.
    pub(crate) fn members_chunk(&self, g: &GuildFixture, nonce: Option<&Value>) -> Value {
        let members: Vec<Value> = g.members.iter().map(|u| member_json(u, true)).collect();
        let mut v = json!({
            "guild_id": g.id.0.to_string(),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
        });
        if let Some(n) = nonce {
            v["nonce"] = n.clone();
        }
        v
    }

    /// The guild with this id, if the bot is in it.
    pub(crate) fn guild(&self, id: GuildId) -> Option<&GuildFixture> {
        let index = (id.0 >> 22).checked_sub(GUILD_EPOCH_BASE)?;
        let g = self.guilds.get(usize::try_from(index).ok()?)?;
        (g.id == id).then_some(g)
    }
}

/// What one generated message is, independent of the session it goes to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GeneratedMessage {
    /// Index into [`World::guilds`].
    pub guild: u32,
    /// Which non-bot member writes it.
    pub author: u32,
    /// Which content.
    pub content: u32,
    /// Whether it carries an embed.
    pub embed: bool,
    /// The message snowflake.
    pub id: u64,
}

/// The shared pieces of the generator's MESSAGE_CREATE frames.
#[derive(Debug)]
pub(crate) struct MessageTemplate {
    /// Pre-serialized contents (JSON strings with quotes).
    contents: Vec<String>,
    /// The pre-serialized embeds array used by every fourth message.
    embeds: String,
}

impl MessageTemplate {
    /// Build the template.
    pub(crate) fn new() -> Self {
        let contents = CONTENTS
            .iter()
            .map(|c| Value::String((*c).to_owned()).to_string())
            .collect();
        let embeds = json!([{
            "type": "rich",
            "title": "Build #1234 passed",
            "description": "All 312 tests passed in 41.2 s.",
            "url": "https://example.com/builds/1234",
            "color": 5_814_783,
            "fields": [
                { "name": "Branch", "value": "main", "inline": true },
                { "name": "Duration", "value": "41.2 s", "inline": true },
            ],
            "footer": { "text": "shardbus-sim CI" },
        }])
        .to_string();
        Self { contents, embeds }
    }

    /// How many distinct contents there are.
    pub(crate) fn content_count(&self) -> u32 {
        self.contents.len() as u32
    }

    /// Append the MESSAGE_CREATE frame of `m` with `seq` to `out`.
    /// `timestamp` is the pre-formatted ISO 8601 time; without
    /// `message_content` the content and embeds are empty, as for a bot
    /// without the MESSAGE_CONTENT intent.
    pub(crate) fn write(
        &self,
        out: &mut BytesMut,
        world: &World,
        m: &GeneratedMessage,
        seq: Seq,
        timestamp: &str,
        message_content: bool,
    ) {
        let Some(g) = world.guilds.get(m.guild as usize) else {
            return;
        };
        let authors = &g.author_fragments;
        let author = if authors.is_empty() {
            None
        } else {
            authors.get(m.author as usize % authors.len())
        };
        out.reserve(1200);
        out.put_slice(b"{\"op\":0,\"s\":");
        put_u64(out, seq);
        out.put_slice(
            b",\"t\":\"MESSAGE_CREATE\",\"d\":{\"type\":0,\"tts\":false,\"timestamp\":\"",
        );
        out.put_slice(timestamp.as_bytes());
        out.put_slice(b"\",\"pinned\":false,\"mentions\":[],\"mention_roles\":[],\"mention_everyone\":false,\"id\":\"");
        put_u64(out, m.id);
        out.put_slice(b"\",");
        out.put_slice(g.location_fragment.as_bytes());
        out.put_u8(b',');
        match author {
            Some(a) => out.put_slice(a.as_bytes()),
            None => {
                let bot = user_json(&world.bot).to_string();
                out.put_slice(b"\"author\":");
                out.put_slice(bot.as_bytes());
            }
        }
        out.put_slice(b",\"flags\":0,\"embeds\":");
        if m.embed && message_content {
            out.put_slice(self.embeds.as_bytes());
        } else {
            out.put_slice(b"[]");
        }
        out.put_slice(b",\"edited_timestamp\":null,\"content\":");
        if message_content {
            let c = &self.contents[m.content as usize % self.contents.len()];
            out.put_slice(c.as_bytes());
        } else {
            out.put_slice(b"\"\"");
        }
        out.put_slice(b",\"components\":[],\"attachments\":[],\"nonce\":\"");
        put_u64(out, m.id);
        out.put_slice(b"\"}}");
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A snowflake for `unix_ms` with `low` in its low 22 bits.
pub(crate) fn snowflake(unix_ms: u64, low: u64) -> u64 {
    (unix_ms.saturating_sub(DISCORD_EPOCH_MS) << 22) | (low & 0x3f_ffff)
}

/// ISO 8601 with microseconds and `+00:00`, as Discord formats timestamps.
pub(crate) fn iso8601(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let millis = unix_ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}000+00:00",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn iso8601_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(
            iso8601(DISCORD_EPOCH_MS),
            "2015-01-01T00:00:00.000000+00:00"
        );
        assert_eq!(
            iso8601(1_709_251_199_123),
            "2024-02-29T23:59:59.123000+00:00"
        );
    }

    #[test]
    fn generated_message_is_valid_json() {
        let config = SimConfig::default();
        let world = World::new(&config);
        let t = MessageTemplate::new();
        for (i, mc) in [(0u32, true), (3, true), (7, false)] {
            let mut out = BytesMut::new();
            let m = GeneratedMessage {
                guild: i,
                author: i,
                content: i,
                embed: i == 3,
                id: snowflake(unix_ms(), u64::from(i)),
            };
            t.write(&mut out, &world, &m, 9, &iso8601(unix_ms()), mc);
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["s"], 9);
            assert_eq!(v["t"], "MESSAGE_CREATE");
            assert_eq!(
                v["d"]["guild_id"],
                world.guilds[i as usize].id.0.to_string()
            );
            assert!(v["d"]["author"]["id"].is_string());
            assert_eq!(
                v["d"]["embeds"].as_array().unwrap().len(),
                usize::from(i == 3)
            );
            assert_eq!(v["d"]["content"].as_str().unwrap().is_empty(), !mc);
        }
    }

    #[test]
    fn guild_lookup_by_id() {
        let world = World::new(&SimConfig::default());
        assert_eq!(world.guild(GuildId::nth(3)).unwrap().index, 3);
        assert!(world.guild(GuildId(42)).is_none());
        assert!(world.guild(GuildId::nth(10_000)).is_none());
    }
}
