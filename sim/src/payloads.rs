//! The JSON payloads built from the world's fixtures: users, members, READY,
//! GUILD_CREATE and GUILD_MEMBERS_CHUNK. Shapes follow the examples of
//! Discord's documentation (snowflakes as strings, nested `user`).

use serde_json::{Value, json};

use crate::ids::ShardInfo;
use crate::world::{ChannelRef, GuildFixture, UserFixture, World};

/// The joined_at of every member (a fixed past time).
const JOINED_AT: &str = "2021-03-14T15:09:26.535000+00:00";

/// The permissions of every guild's `@everyone` role (and so of every
/// member), as Discord's decimal string.
pub(crate) const EVERYONE_PERMISSIONS: &str = "1071698660929";

pub(crate) fn user_json(u: &UserFixture) -> Value {
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
pub(crate) fn member_json(u: &UserFixture, with_user: bool) -> Value {
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
    /// The bot's own user object, as READY and `GET /users/@me` show it.
    pub(crate) fn bot_user_json(&self) -> Value {
        let mut user = user_json(&self.bot);
        user["verified"] = Value::Bool(true);
        user["mfa_enabled"] = Value::Bool(false);
        user["flags"] = json!(0);
        user
    }

    /// The channel object of `channel` of `g`, as GUILD_CREATE lists it
    /// (without `guild_id`).
    pub(crate) fn channel_json(g: &GuildFixture, channel: ChannelRef) -> Value {
        match channel {
            ChannelRef::Text(pos) => json!({
                "id": g.text_channels.get(pos).copied().unwrap_or_default().to_string(),
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
            }),
            ChannelRef::Voice => json!({
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
            }),
        }
    }

    /// The guild object of `g` as `GET /guilds/{guild_id}` returns it:
    /// GUILD_CREATE without the gateway-only fields.
    pub(crate) fn guild_json(&self, g: &GuildFixture) -> Value {
        let gid = g.id.0.to_string();
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
                "permissions": EVERYONE_PERMISSIONS,
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
        })
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
        let mut ready = json!({
            "v": 10,
            "user": self.bot_user_json(),
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
        let large = g.member_count > large_threshold;
        let mut channels: Vec<Value> = (0..g.text_channels.len())
            .map(|pos| Self::channel_json(g, ChannelRef::Text(pos)))
            .collect();
        channels.push(Self::channel_json(g, ChannelRef::Voice));
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
        let mut v = self.guild_json(g);
        let extra = json!({
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
        });
        if let (Value::Object(v), Value::Object(extra)) = (&mut v, extra) {
            v.extend(extra);
        }
        v
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
}
