//! The per-shard state cache: each event kind's effect, the bounds, the
//! per-shard reset, kinds turned off, and end to end against the
//! simulator with two shards sharing one cache through the dispatch hook.
#![allow(clippy::unwrap_used)]

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::gateway::{finish, sim, test_config, wait_stage};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use shardbus::TypeMux;
use shardbus::gateway::{DispatchHook, GatewayConfig, Intents, Shard, ShardStage, Stage};
use shardbus::model::{
    ChannelCreate, ChannelDelete, ChannelId, ChannelUpdate, DispatchMeta, GuildCreate, GuildDelete,
    GuildId, GuildMemberAdd, GuildMemberRemove, GuildMemberUpdate, GuildMembersChunk,
    GuildRoleCreate, GuildRoleDelete, GuildRoleUpdate, GuildUpdate, MessageCreate, MessageDelete,
    MessageDeleteBulk, MessageId, MessageUpdate, Ready, RoleId, ShardId, ThreadCreate,
    ThreadDelete, UserId,
};
use shardbus::state::{Cache, CacheConfig, Kind};
use shardbus_sim::{Fault, FaultTarget, Sim, SimConfig};
use tokio::time::timeout;

static_assertions::assert_impl_all!(Cache: Clone, Send, Sync, std::fmt::Debug);

// ---------------------------------------------------------------------------
// Payloads, shaped like Discord's (and the simulator's) JSON.

const GUILD: u64 = 41771983423143937;
const GENERAL: u64 = 41771983423143938;
const RANDOM: u64 = 41771983423143939;
const VOICE: u64 = 41771983423143940;

fn user(id: u64, name: &str) -> Value {
    json!({"id": id.to_string(), "username": name, "discriminator": "0",
           "global_name": null, "avatar": null, "public_flags": 0})
}

fn member(id: u64, name: &str) -> Value {
    json!({"user": user(id, name), "nick": null, "avatar": null, "banner": null, "roles": [],
           "joined_at": "2021-03-14T15:09:26.535000+00:00", "premium_since": null,
           "deaf": false, "mute": false, "flags": 0, "pending": false,
           "communication_disabled_until": null})
}

fn role(id: u64, name: &str, position: i32) -> Value {
    json!({"id": id.to_string(), "name": name, "color": 0, "hoist": false, "icon": null,
           "unicode_emoji": null, "position": position, "permissions": "1071698660929",
           "managed": false, "mentionable": false, "flags": 0})
}

fn text_channel(id: u64, name: &str, position: i32) -> Value {
    json!({"id": id.to_string(), "type": 0, "name": name, "position": position,
           "parent_id": null, "topic": null, "nsfw": false, "last_message_id": null,
           "rate_limit_per_user": 0, "permission_overwrites": [], "flags": 0})
}

/// A GUILD_CREATE like the simulator's: two text channels and a voice
/// channel, the `@everyone` role, `members` members from user id 100 up.
fn guild_create(id: u64, members: u64) -> Value {
    let base = id + 1;
    let members: Vec<Value> = (0..members)
        .map(|i| member(100 + i, &format!("user{i}")))
        .collect();
    let mut guild = json!({
        "id": id.to_string(), "name": format!("Guild {id}"), "icon": null, "splash": null,
        "discovery_splash": null, "owner_id": "100", "afk_channel_id": null,
        "afk_timeout": 300, "verification_level": 1, "default_message_notifications": 0,
        "explicit_content_filter": 0, "roles": [role(id, "@everyone", 0)], "emojis": [],
        "features": [], "mfa_level": 0, "application_id": null,
        "system_channel_id": base.to_string(), "system_channel_flags": 0,
        "rules_channel_id": null, "max_members": 500000, "vanity_url_code": null,
        "description": null, "banner": null, "premium_tier": 0,
        "premium_subscription_count": 0, "preferred_locale": "en-US",
        "public_updates_channel_id": null, "nsfw_level": 0, "stickers": [],
        "premium_progress_bar_enabled": false, "safety_alerts_channel_id": null,
    });
    let voice = json!({"id": (base + 2).to_string(), "type": 2, "name": "Voice", "position": 2,
                       "parent_id": null, "nsfw": false, "bitrate": 64000, "user_limit": 0,
                       "rtc_region": null, "permission_overwrites": [], "flags": 0});
    let create_only = json!({
        "joined_at": "2021-03-14T15:09:26.535000+00:00", "large": false,
        "unavailable": false, "member_count": members.len(), "voice_states": [],
        "members": members,
        "channels": [text_channel(base, "general", 0), text_channel(base + 1, "random", 1), voice],
        "threads": [], "presences": [], "stage_instances": [], "guild_scheduled_events": [],
    });
    if let (Some(guild), Value::Object(more)) = (guild.as_object_mut(), create_only) {
        guild.extend(more);
    }
    guild
}

fn message(id: u64, channel: u64, content: &str) -> Value {
    json!({
        "id": id.to_string(), "channel_id": channel.to_string(), "guild_id": GUILD.to_string(),
        "author": user(100, "user0"), "content": content,
        "member": {"roles": [], "nick": "boss", "joined_at": "2021-03-14T15:09:26.535000+00:00",
                   "premium_since": null, "deaf": false, "mute": false, "flags": 0},
        "timestamp": "2026-11-21T00:00:00.000000+00:00", "edited_timestamp": null,
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": [], "embeds": [], "pinned": false, "type": 0
    })
}

fn ready(guilds: &[u64], shard: u32) -> Value {
    let guilds: Vec<Value> = guilds
        .iter()
        .map(|g| json!({"id": g.to_string(), "unavailable": true}))
        .collect();
    json!({"v": 10, "user": user(1, "bot"), "guilds": guilds, "session_id": format!("s{shard}"),
           "resume_gateway_url": "wss://example", "shard": [shard, 2],
           "application": {"id": "1", "flags": 0}})
}

// ---------------------------------------------------------------------------
// Feeding the cache by hand.

/// Decodes `data` as `E` and applies it on `shard`, as the hook would.
fn feed<E: DeserializeOwned + Any + Send + Sync>(cache: &Cache, shard: u32, data: Value) {
    let event: E = serde_json::from_value(data).unwrap();
    assert!(
        cache.wants(TypeId::of::<E>()),
        "a cache of every kind wants {}",
        std::any::type_name::<E>()
    );
    let meta = DispatchMeta {
        shard: ShardId(shard),
        ..DispatchMeta::default()
    };
    cache.apply(meta, &event);
}

fn message_ids(cache: &Cache, channel: u64) -> Vec<u64> {
    cache
        .messages(ChannelId(channel))
        .iter()
        .map(|m| m.id.0)
        .collect()
}

/// A cache of every kind with [`GUILD`] created on shard 0 (3 members).
fn cache_with_guild(config: CacheConfig) -> Cache {
    let cache = Cache::new(config);
    feed::<GuildCreate>(&cache, 0, guild_create(GUILD, 3));
    cache
}

#[test]
fn guild_create_caches_the_guild_its_channels_roles_and_members() {
    let cache = cache_with_guild(CacheConfig::new());
    let guild = cache.guild(GuildId(GUILD)).unwrap();
    assert_eq!(guild.name, format!("Guild {GUILD}"));
    assert!(guild.is_available());
    assert!(guild.members.is_empty(), "collections are kept apart");
    assert_eq!(cache.shard_of(GuildId(GUILD)), Some(ShardId(0)));

    let general = cache.channel(ChannelId(GENERAL)).unwrap();
    assert_eq!(general.name.as_deref(), Some("general"));
    assert_eq!(general.guild_id, Some(GuildId(GUILD)), "guild_id filled in");
    let channels: Vec<u64> = cache
        .guild_channels(GuildId(GUILD))
        .iter()
        .map(|c| c.id.0)
        .collect();
    assert_eq!(channels, [GENERAL, RANDOM, VOICE]);
    assert_eq!(
        cache
            .role(GuildId(GUILD), RoleId(GUILD))
            .map(|r| r.name.clone()),
        Some("@everyone".to_owned())
    );
    let member = cache.member(GuildId(GUILD), UserId(101)).unwrap();
    assert_eq!(member.user.as_ref().unwrap().username, "user1");
    let stats = cache.stats();
    assert_eq!(
        (stats.guilds, stats.channels, stats.roles, stats.members),
        (1, 3, 1, 3)
    );
}

#[test]
fn guild_update_replaces_settings_and_roles_and_keeps_create_only_fields() {
    let cache = cache_with_guild(CacheConfig::new());
    let mut update = guild_create(GUILD, 0);
    update["name"] = json!("Renamed");
    update["roles"] = json!([role(GUILD, "@everyone", 0), role(7, "mods", 1)]);
    for field in ["members", "channels", "joined_at", "member_count", "large"] {
        update.as_object_mut().unwrap().remove(field);
    }
    feed::<GuildUpdate>(&cache, 0, update);

    let guild = cache.guild(GuildId(GUILD)).unwrap();
    assert_eq!(guild.name, "Renamed");
    assert_eq!(guild.member_count, Some(3), "kept from GUILD_CREATE");
    assert!(guild.joined_at.is_some(), "kept from GUILD_CREATE");
    let roles: Vec<String> = cache
        .roles(GuildId(GUILD))
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(roles, ["@everyone", "mods"]);
    assert_eq!(
        cache.guild_channels(GuildId(GUILD)).len(),
        3,
        "channels stay"
    );
}

#[test]
fn an_outage_keeps_the_guild_marked_unavailable_and_leaving_drops_it_all() {
    let cache = cache_with_guild(CacheConfig::new());
    feed::<MessageCreate>(&cache, 0, message(1, GENERAL, "hi"));

    feed::<GuildDelete>(
        &cache,
        0,
        json!({"id": GUILD.to_string(), "unavailable": true}),
    );
    let guild = cache.guild(GuildId(GUILD)).unwrap();
    assert!(guild.unavailable);
    assert_eq!(guild.name, format!("Guild {GUILD}"), "last known settings");
    assert!(cache.member(GuildId(GUILD), UserId(100)).is_some());
    assert_eq!(message_ids(&cache, GENERAL), [1]);
    assert_eq!(cache.stats().unavailable_guilds, 1);

    // Back from the outage: available again, the history kept.
    feed::<GuildCreate>(&cache, 0, guild_create(GUILD, 3));
    assert!(cache.guild(GuildId(GUILD)).unwrap().is_available());
    assert_eq!(message_ids(&cache, GENERAL), [1]);

    // Left: everything about it goes, index included.
    feed::<GuildDelete>(&cache, 0, json!({"id": GUILD.to_string()}));
    assert!(cache.guild(GuildId(GUILD)).is_none());
    assert!(cache.channel(ChannelId(GENERAL)).is_none());
    assert!(cache.messages(ChannelId(GENERAL)).is_empty());
    assert!(cache.member(GuildId(GUILD), UserId(100)).is_none());
    assert_eq!(cache.stats(), Default::default());
    assert_eq!(cache.index_len(), (0, 0));
}

#[test]
fn channel_events_update_and_a_delete_takes_history_and_threads() {
    let cache = cache_with_guild(CacheConfig::new());
    let mut created = text_channel(50, "new", 3);
    created["guild_id"] = json!(GUILD.to_string());
    feed::<ChannelCreate>(&cache, 0, created.clone());
    created["name"] = json!("renamed");
    feed::<ChannelUpdate>(&cache, 0, created);
    assert_eq!(
        cache.channel(ChannelId(50)).unwrap().name.as_deref(),
        Some("renamed")
    );
    assert_eq!(cache.guild_channels(GuildId(GUILD)).len(), 4);

    let thread = json!({"id": "60", "type": 11, "guild_id": GUILD.to_string(),
                        "parent_id": GENERAL.to_string(), "name": "a thread",
                        "thread_metadata": {"archived": false, "auto_archive_duration": 60,
                                            "archive_timestamp": "2026-01-01T00:00:00+00:00",
                                            "locked": false}});
    feed::<ThreadCreate>(&cache, 0, thread);
    let thread2 = json!({"id": "61", "type": 11, "guild_id": GUILD.to_string(),
                         "parent_id": RANDOM.to_string(), "name": "other thread"});
    feed::<ThreadCreate>(&cache, 0, thread2);
    feed::<MessageCreate>(&cache, 0, message(1, GENERAL, "a"));
    feed::<MessageCreate>(&cache, 0, message(2, 60, "in thread"));
    feed::<MessageCreate>(&cache, 0, message(3, RANDOM, "b"));

    feed::<ChannelDelete>(&cache, 0, text_channel(GENERAL, "general", 0));
    assert!(cache.channel(ChannelId(GENERAL)).is_none());
    assert!(cache.messages(ChannelId(GENERAL)).is_empty());
    assert!(
        cache.channel(ChannelId(60)).is_none(),
        "its thread went too"
    );
    assert!(cache.messages(ChannelId(60)).is_empty());
    assert!(
        cache.channel(ChannelId(61)).is_some(),
        "another's thread stays"
    );
    assert_eq!(message_ids(&cache, RANDOM), [3]);

    feed::<ThreadDelete>(
        &cache,
        0,
        json!({"id": "61", "guild_id": GUILD.to_string(), "parent_id": RANDOM.to_string(), "type": 11}),
    );
    assert!(cache.channel(ChannelId(61)).is_none());
    let channels: Vec<u64> = cache
        .guild_channels(GuildId(GUILD))
        .iter()
        .map(|c| c.id.0)
        .collect();
    assert_eq!(channels, [RANDOM, VOICE, 50]);
}

#[test]
fn role_events_create_update_and_delete() {
    let cache = cache_with_guild(CacheConfig::new());
    let guild = GuildId(GUILD);
    feed::<GuildRoleCreate>(
        &cache,
        0,
        json!({"guild_id": GUILD.to_string(), "role": role(7, "mods", 1)}),
    );
    assert_eq!(cache.role(guild, RoleId(7)).unwrap().name, "mods");
    feed::<GuildRoleUpdate>(
        &cache,
        0,
        json!({"guild_id": GUILD.to_string(), "role": role(7, "admins", 2)}),
    );
    assert_eq!(cache.role(guild, RoleId(7)).unwrap().name, "admins");
    feed::<GuildRoleDelete>(
        &cache,
        0,
        json!({"guild_id": GUILD.to_string(), "role_id": "7"}),
    );
    assert!(cache.role(guild, RoleId(7)).is_none());
    assert_eq!(cache.roles(guild).len(), 1);
}

#[test]
fn member_events_add_merge_chunk_and_remove() {
    let cache = cache_with_guild(CacheConfig::new());
    let guild = GuildId(GUILD);
    let mut added = member(200, "newbie");
    added["guild_id"] = json!(GUILD.to_string());
    feed::<GuildMemberAdd>(&cache, 0, added);
    assert_eq!(
        cache
            .member(guild, UserId(200))
            .unwrap()
            .user
            .as_ref()
            .unwrap()
            .username,
        "newbie"
    );
    assert_eq!(cache.guild(guild).unwrap().member_count, Some(4));

    // An update without `deaf` keeps it; what it always carries replaces.
    feed::<GuildMemberUpdate>(
        &cache,
        0,
        json!({"guild_id": GUILD.to_string(), "user": user(200, "newbie"), "roles": ["7"],
               "nick": "nb", "avatar": null, "joined_at": null, "premium_since": null}),
    );
    let updated = cache.member(guild, UserId(200)).unwrap();
    assert_eq!(updated.nick.as_deref(), Some("nb"));
    assert_eq!(updated.roles, [RoleId(7)]);
    assert!(
        updated.joined_at.is_some(),
        "a null joined_at keeps the known one"
    );

    feed::<GuildMembersChunk>(
        &cache,
        0,
        json!({"guild_id": GUILD.to_string(), "members": [member(300, "a"), member(301, "b")],
               "chunk_index": 0, "chunk_count": 1}),
    );
    assert!(cache.member(guild, UserId(301)).is_some());

    feed::<GuildMemberRemove>(
        &cache,
        0,
        json!({"guild_id": GUILD.to_string(), "user": user(200, "newbie")}),
    );
    assert!(cache.member(guild, UserId(200)).is_none());
    assert_eq!(cache.guild(guild).unwrap().member_count, Some(3));
    assert_eq!(cache.members(guild).len(), 5);
}

#[test]
fn the_member_bound_refuses_new_members_but_updates_kept_ones() {
    let cache = cache_with_guild(CacheConfig::new().members_per_guild(Some(2)));
    let guild = GuildId(GUILD);
    assert_eq!(cache.members(guild).len(), 2, "GUILD_CREATE is bounded");
    let mut added = member(200, "newbie");
    added["guild_id"] = json!(GUILD.to_string());
    feed::<GuildMemberAdd>(&cache, 0, added);
    assert!(cache.member(guild, UserId(200)).is_none());
    let kept = cache.members(guild)[0].user.as_ref().unwrap().clone();
    feed::<GuildMemberUpdate>(
        &cache,
        0,
        json!({"guild_id": GUILD.to_string(), "user": user(kept.id.0, "x"), "roles": [],
               "nick": "still here", "avatar": null, "joined_at": null}),
    );
    assert_eq!(
        cache.member(guild, kept.id).unwrap().nick.as_deref(),
        Some("still here")
    );
    assert_eq!(cache.members(guild).len(), 2);
}

#[test]
fn message_history_is_bounded_and_evicts_the_oldest_first() {
    let cache = cache_with_guild(CacheConfig::new().messages_per_channel(3));
    for id in 1..=5 {
        feed::<MessageCreate>(&cache, 0, message(id, GENERAL, &format!("m{id}")));
    }
    feed::<MessageCreate>(&cache, 0, message(9, RANDOM, "other channel"));
    assert_eq!(message_ids(&cache, GENERAL), [3, 4, 5]);
    assert_eq!(message_ids(&cache, RANDOM), [9]);
    assert!(cache.message(ChannelId(GENERAL), MessageId(2)).is_none());
    assert_eq!(cache.stats().messages, 4);

    // The default bound.
    let cache = cache_with_guild(CacheConfig::new());
    for id in 1..=60 {
        feed::<MessageCreate>(&cache, 0, message(id, GENERAL, "x"));
    }
    assert_eq!(message_ids(&cache, GENERAL), (11..=60).collect::<Vec<_>>());
}

#[test]
fn message_update_merges_and_deletes_remove() {
    let cache = cache_with_guild(CacheConfig::new());
    for id in 1..=4 {
        feed::<MessageCreate>(&cache, 0, message(id, GENERAL, "before"));
    }
    let mut edit = message(2, GENERAL, "after");
    edit.as_object_mut().unwrap().remove("member");
    edit["edited_timestamp"] = json!("2026-11-21T00:01:00.000000+00:00");
    feed::<MessageUpdate>(&cache, 0, edit);
    let edited = cache.message(ChannelId(GENERAL), MessageId(2)).unwrap();
    assert_eq!(edited.content, "after");
    assert!(edited.edited_timestamp.is_some());
    assert_eq!(
        edited.member.as_ref().and_then(|m| m.nick.as_deref()),
        Some("boss"),
        "what the edit leaves out is kept"
    );
    // An edit of a message never kept is not added.
    feed::<MessageUpdate>(&cache, 0, message(99, GENERAL, "old"));
    assert_eq!(message_ids(&cache, GENERAL), [1, 2, 3, 4]);

    feed::<MessageDelete>(
        &cache,
        0,
        json!({"id": "1", "channel_id": GENERAL.to_string(), "guild_id": GUILD.to_string()}),
    );
    assert_eq!(message_ids(&cache, GENERAL), [2, 3, 4]);
    feed::<MessageDeleteBulk>(
        &cache,
        0,
        json!({"ids": ["2", "4", "77"], "channel_id": GENERAL.to_string(),
               "guild_id": GUILD.to_string()}),
    );
    assert_eq!(message_ids(&cache, GENERAL), [3]);
}

#[test]
fn ready_on_shard_1_clears_only_shard_1() {
    let cache = Cache::new(CacheConfig::new());
    let (a, b) = (1000u64 << 22, 1001u64 << 22);
    feed::<Ready>(&cache, 0, ready(&[GUILD], 0));
    feed::<GuildCreate>(&cache, 0, guild_create(GUILD, 3));
    feed::<MessageCreate>(&cache, 0, message(1, GENERAL, "shard 0"));
    feed::<Ready>(&cache, 1, ready(&[a, b], 1));
    feed::<GuildCreate>(&cache, 1, guild_create(a, 2));
    feed::<GuildCreate>(&cache, 1, guild_create(b, 2));
    feed::<MessageCreate>(&cache, 1, message(2, a + 1, "shard 1"));
    assert_eq!(cache.guild_ids_of(ShardId(1)), [GuildId(a), GuildId(b)]);
    assert_eq!(cache.current_user().unwrap().username, "bot");

    // Shard 1 re-identifies: its store starts over with placeholders.
    feed::<Ready>(&cache, 1, ready(&[a, b], 1));
    assert!(cache.guild(GuildId(a)).unwrap().unavailable);
    assert!(cache.channel(ChannelId(a + 1)).is_none());
    assert!(cache.messages(ChannelId(a + 1)).is_empty());
    assert_eq!(cache.shard_stats(ShardId(1)).unavailable_guilds, 2);
    assert_eq!(cache.shard_stats(ShardId(1)).channels, 0);

    // Shard 0 is untouched.
    assert!(cache.guild(GuildId(GUILD)).unwrap().is_available());
    assert_eq!(message_ids(&cache, GENERAL), [1]);
    assert_eq!(cache.guild_ids_of(ShardId(0)), [GuildId(GUILD)]);
    assert_eq!(cache.guild_ids(), [GuildId(a), GuildId(b), GuildId(GUILD)]);
    // The index holds exactly what the stores hold: 3 guilds, 3 channels
    // of shard 0.
    assert_eq!(cache.index_len(), (3, 3));
}

#[test]
fn a_rehome_moves_guilds_to_their_new_shards_and_their_events_follow() {
    let cache = Cache::new(CacheConfig::new());
    // (id >> 22) % 2 == 1 for both; % 4: a stays on 1, b goes to 3.
    let (a, b) = (1001u64 << 22, 1003u64 << 22);
    let in_b = |id: u64| {
        let mut m = message(id, b + 1, "in b");
        m["guild_id"] = json!(b.to_string());
        m
    };
    feed::<Ready>(&cache, 1, ready(&[a, b], 1));
    feed::<GuildCreate>(&cache, 1, guild_create(a, 2));
    feed::<GuildCreate>(&cache, 1, guild_create(b, 2));
    feed::<MessageCreate>(&cache, 1, in_b(1));

    cache.rehome(4);
    assert_eq!(cache.guild_ids_of(ShardId(1)), [GuildId(a)]);
    assert_eq!(cache.guild_ids_of(ShardId(3)), [GuildId(b)]);
    assert_eq!(cache.shard_of(GuildId(b)), Some(ShardId(3)));
    // Its channels, members and history went with it.
    assert!(cache.channel(ChannelId(b + 1)).is_some());
    assert_eq!(cache.members(GuildId(b)).len(), 2);
    assert_eq!(message_ids(&cache, b + 1), [1]);
    assert_eq!(cache.shard_stats(ShardId(3)).channels, 3);
    assert_eq!(cache.shard_stats(ShardId(1)).messages, 0);

    // The old set may still deliver for a moment: an event about b read
    // by shard 1 goes to the store that holds b.
    feed::<MessageCreate>(&cache, 1, in_b(2));
    assert_eq!(cache.shard_stats(ShardId(3)).messages, 2);
    assert_eq!(cache.shard_stats(ShardId(1)).messages, 0);

    // A new session on shard 1 starts over a, and leaves b alone.
    feed::<Ready>(&cache, 1, ready(&[a], 1));
    assert!(cache.guild(GuildId(b)).unwrap().is_available());
    assert_eq!(message_ids(&cache, b + 1), [1, 2]);
    assert_eq!(cache.index_len(), (2, 3));
}

#[test]
fn a_guild_created_on_another_shard_moves_there() {
    let cache = Cache::new(CacheConfig::new());
    feed::<GuildCreate>(&cache, 0, guild_create(GUILD, 1));
    feed::<GuildCreate>(&cache, 1, guild_create(GUILD, 1));
    assert_eq!(cache.shard_of(GuildId(GUILD)), Some(ShardId(1)));
    assert!(
        cache.guild_ids_of(ShardId(0)).is_empty(),
        "old copy dropped"
    );
    // Shard 0's next Ready does not touch what shard 1 now holds.
    feed::<Ready>(&cache, 0, ready(&[], 0));
    assert!(cache.guild(GuildId(GUILD)).is_some());
    assert!(cache.channel(ChannelId(GENERAL)).is_some());
}

#[test]
fn kinds_turned_off_are_not_wanted_and_not_stored() {
    let none = Cache::new(CacheConfig::none());
    assert!(!none.config().caches_anything());
    for ty in [
        TypeId::of::<Ready>(),
        TypeId::of::<GuildCreate>(),
        TypeId::of::<MessageCreate>(),
        TypeId::of::<GuildMemberAdd>(),
    ] {
        assert!(!none.wants(ty));
    }
    let meta = DispatchMeta::default();
    let guild: GuildCreate = serde_json::from_value(guild_create(GUILD, 3)).unwrap();
    let msg: MessageCreate = serde_json::from_value(message(1, GENERAL, "x")).unwrap();
    none.apply(meta, &guild);
    none.apply(meta, &msg);
    assert_eq!(none.stats(), Default::default());
    assert!(none.guild_ids().is_empty());

    // Only messages: guilds are not decoded, messages are kept.
    let messages_only = Cache::new(CacheConfig::none().messages(true));
    assert!(!messages_only.wants(TypeId::of::<GuildCreate>()));
    assert!(messages_only.wants(TypeId::of::<MessageCreate>()));
    messages_only.apply(meta, &guild);
    messages_only.apply(meta, &msg);
    assert!(messages_only.guild(GuildId(GUILD)).is_none());
    assert!(messages_only.channel(ChannelId(GENERAL)).is_none());
    assert_eq!(message_ids(&messages_only, GENERAL), [1]);
    // Leaving the guild still drops its histories.
    let left: GuildDelete = serde_json::from_value(json!({"id": GUILD.to_string()})).unwrap();
    messages_only.apply(meta, &left);
    assert!(messages_only.messages(ChannelId(GENERAL)).is_empty());

    // Everything but members and messages.
    let config = CacheConfig::new().members(false).messages_per_channel(0);
    assert!(!config.caches(Kind::Messages));
    let no_members = Cache::new(config);
    assert!(!no_members.wants(TypeId::of::<GuildMembersChunk>()));
    assert!(!no_members.wants(TypeId::of::<MessageCreate>()));
    no_members.apply(meta, &guild);
    no_members.apply(meta, &msg);
    let stats = no_members.stats();
    assert_eq!((stats.guilds, stats.members, stats.messages), (1, 0, 0));
    assert!(no_members.guild(GuildId(GUILD)).is_some());
}

#[test]
fn apply_ignores_events_it_cannot_place() {
    let cache = Cache::new(CacheConfig::new());
    let meta = DispatchMeta::default();
    // Not a model type at all, and default values of every kind.
    cache.apply(meta, &42u32);
    cache.apply(meta, &GuildDelete::default());
    cache.apply(meta, &GuildUpdate::default());
    cache.apply(meta, &GuildMemberUpdate::default());
    cache.apply(meta, &GuildMemberRemove::default());
    cache.apply(meta, &GuildRoleDelete::default());
    cache.apply(meta, &MessageUpdate::default());
    cache.apply(meta, &MessageDeleteBulk::default());
    cache.apply(meta, &ChannelDelete::default());
    cache.apply(meta, &ThreadDelete::default());
    // Events about a guild the cache does not hold.
    feed::<GuildRoleCreate>(
        &cache,
        3,
        json!({"guild_id": "5", "role": role(7, "mods", 1)}),
    );
    feed::<GuildMemberUpdate>(
        &cache,
        3,
        json!({"guild_id": "5", "user": user(200, "x"), "roles": []}),
    );
    let stats = cache.stats();
    assert_eq!((stats.guilds, stats.roles, stats.members), (0, 0, 0));
}

// ---------------------------------------------------------------------------
// End to end: two shards, one cache, through the gateway's dispatch hook.

/// The test's own hook adapter: the shard layer's would do the same.
struct CacheHook(Cache);

impl DispatchHook for CacheHook {
    fn wants(&self, event: TypeId) -> bool {
        self.0.wants(event)
    }

    fn on_dispatch(&self, meta: DispatchMeta, event: &(dyn Any + Send + Sync)) {
        self.0.apply(meta, event);
    }
}

/// How long any condition may take to hold on a loaded machine.
const WAIT: Duration = Duration::from_secs(30);

fn two_shard_config() -> SimConfig {
    SimConfig {
        shards: 2,
        guilds: 8,
        ..test_config()
    }
}

/// One identify queue for all of a test's shards, four times slower than
/// the sim's window.
fn shared_queue() -> Arc<shardbus::shard::LocalIdentifyQueue> {
    Arc::new(shardbus::shard::LocalIdentifyQueue::with_window(
        1,
        Duration::from_millis(100),
    ))
}

/// Shard `[id, total]` on `sim`, feeding `cache`, sharing `queue`.
fn shard_config(
    sim: &Sim,
    [id, total]: [u32; 2],
    cache: &Cache,
    queue: &Arc<shardbus::shard::LocalIdentifyQueue>,
) -> GatewayConfig {
    GatewayConfig::new(sim.token(), Intents::GUILDS | Intents::GUILD_MESSAGES)
        .gateway_url(sim.gateway_url())
        .shard(id, total)
        .reconnect_backoff_max(Duration::from_millis(200))
        .identify_queue(queue.clone())
        .dispatch_hook(Arc::new(CacheHook(cache.clone())))
}

/// Polls `condition` until it holds, for at most [`WAIT`].
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let poll = async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    timeout(WAIT, poll)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {WAIT:?}"));
}

/// Whether every guild of `ids` is cached and available on `shard`.
fn all_available(cache: &Cache, shard: u32, ids: &[GuildId]) -> bool {
    cache.guild_ids_of(ShardId(shard)) == ids
        && ids
            .iter()
            .all(|id| cache.guild(*id).is_some_and(|g| g.is_available()))
}

fn sim_guilds(sim: &Sim, shard: u32) -> Vec<GuildId> {
    let mut ids: Vec<GuildId> = sim
        .guilds_for_shard(shard, 2)
        .into_iter()
        .map(|g| GuildId(g.0))
        .collect();
    ids.sort_unstable();
    ids
}

/// A MESSAGE_CREATE in `guild`'s first text channel.
fn guild_message(cache: &Cache, guild: GuildId, id: u64) -> (ChannelId, Value) {
    let channel = cache.guild_channels(guild)[0].id;
    let mut data = message(id, channel.0, "hello");
    data["guild_id"] = json!(guild.0.to_string());
    (channel, data)
}

#[tokio::test]
async fn two_shards_share_one_cache_and_a_reidentify_resets_only_its_own() {
    let sim = sim(two_shard_config()).await;
    let (cache, queue, bus) = (Cache::default(), shared_queue(), TypeMux::new());
    let mut stages = bus.subscribe::<ShardStage>();
    let mut readies = bus.subscribe::<Ready>();
    let mut creates = bus.subscribe::<GuildCreate>();
    let shard0 = Shard::spawn(shard_config(&sim, [0, 2], &cache, &queue), bus.clone());
    let shard1 = Shard::spawn(shard_config(&sim, [1, 2], &cache, &queue), bus.clone());
    for _ in 0..2 {
        wait_stage(&mut stages, Stage::Connected).await;
    }

    let (guilds0, guilds1) = (sim_guilds(&sim, 0), sim_guilds(&sim, 1));
    assert!(!guilds0.is_empty() && !guilds1.is_empty());
    wait_until("both shards' guilds cached", || {
        all_available(&cache, 0, &guilds0) && all_available(&cache, 1, &guilds1)
    })
    .await;
    // Each guild as its GUILD_CREATE had it (a large one lists fewer
    // members).
    for _ in 0..guilds0.len() + guilds1.len() {
        let create = timeout(WAIT, creates.recv()).await.unwrap().unwrap();
        assert_eq!(cache.members(create.id).len(), create.members.len());
        assert_eq!(
            cache.guild_channels(create.id).len(),
            test_config().channels_per_guild as usize + 1
        );
    }

    // A message on each shard, to see which store a Ready clears.
    let (channel0, msg0) = guild_message(&cache, guilds0[0], 1);
    let (channel1, msg1) = guild_message(&cache, guilds1[0], 2);
    sim.dispatch(guilds0[0].0, "MESSAGE_CREATE", msg0);
    sim.dispatch(guilds1[0].0, "MESSAGE_CREATE", msg1);
    wait_until("both messages cached", || {
        cache.messages(channel0).len() == 1 && cache.messages(channel1).len() == 1
    })
    .await;

    // The first two Readies were the two identifies; drain them.
    for _ in 0..2 {
        timeout(WAIT, readies.recv()).await.unwrap().unwrap();
    }
    assert_eq!(
        sim.fault(
            FaultTarget::Shard(1),
            Fault::InvalidSession { resumable: false }
        ),
        1
    );
    let again = timeout(WAIT, readies.recv()).await.unwrap().unwrap();
    assert_eq!(again.meta.shard, ShardId(1), "only shard 1 re-identified");
    // The hook ran before the bus got this Ready: shard 1's store is new.
    assert!(
        cache.messages(channel1).is_empty(),
        "shard 1's history went"
    );
    assert_eq!(cache.messages(channel0).len(), 1, "shard 0's history stays");
    assert!(all_available(&cache, 0, &guilds0), "shard 0's guilds stay");

    wait_until("shard 1's guilds back", || {
        all_available(&cache, 1, &guilds1)
    })
    .await;
    assert!(all_available(&cache, 0, &guilds0));
    assert!(cache.messages(channel1).is_empty());

    shard0
        .handle()
        .close(shardbus::gateway::CloseCode::NORMAL)
        .await;
    finish(&shard1, &sim).await;
}

#[tokio::test]
async fn subscribers_see_the_cache_already_updated() {
    let sim = sim(SimConfig {
        shards: 1,
        ..test_config()
    })
    .await;
    let (cache, bus) = (Cache::default(), TypeMux::new());
    let mut stages = bus.subscribe::<ShardStage>();
    let mut guilds = bus.subscribe::<GuildCreate>();
    let mut messages = bus.subscribe::<MessageCreate>();
    // A handler too: it reads the cache on its own task.
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let handler_cache = cache.clone();
    let _handler = bus.add_handler(move |msg: Arc<MessageCreate>| {
        let cache = handler_cache.clone();
        let seen = seen_tx.clone();
        async move {
            let cached = cache.message(msg.channel_id, msg.id).is_some();
            let _ = seen.send((msg.id, cached));
        }
    });
    let shard = Shard::spawn(
        shard_config(&sim, [0, 1], &cache, &shared_queue()),
        bus.clone(),
    );
    wait_stage(&mut stages, Stage::Connected).await;

    let first = timeout(WAIT, guilds.recv()).await.unwrap().unwrap();
    let cached = cache.guild(first.id).expect("cached before the bus got it");
    assert!(cached.is_available());
    assert_eq!(cache.guild_channels(first.id).len(), first.channels.len());

    let (channel, data) = guild_message(&cache, first.id, 77);
    sim.dispatch(first.id.0, "MESSAGE_CREATE", data);
    let msg = timeout(WAIT, messages.recv()).await.unwrap().unwrap();
    assert_eq!(msg.id, MessageId(77));
    let ids: Vec<MessageId> = cache.messages(channel).iter().map(|m| m.id).collect();
    assert!(
        ids.contains(&msg.id),
        "the stream's reader finds its message"
    );
    let (id, cached) = timeout(WAIT, seen_rx.recv()).await.unwrap().unwrap();
    assert_eq!(id, MessageId(77));
    assert!(cached, "the handler finds its message");

    finish(&shard, &sim).await;
}
