//! The state cache's memory: heap bytes per cached guild and per cached
//! message, counted by a global allocator.
//!
//! For each guild shape, `N` `GUILD_CREATE`s shaped like the simulator's
//! (`sim/src/payloads.rs`: members with their users, text channels and a
//! voice channel, the `@everyone` role, plus extra roles in the bigger
//! shape) are decoded first, then applied to a fresh [`Cache`] spread over
//! 16 shards; the live heap grows by what the cache keeps, divided by `N`.
//! Messages (shaped like the simulator's generated MESSAGE_CREATE: author,
//! partial member, a content of one of its lengths, a nonce) fill each guild's text
//! channels up to the history bound, and the heap growth is divided by the
//! messages kept. Apply times are the mean per event (one run; the point is
//! the memory).
//!
//! Run: `cargo bench --bench state`. Prints a table and writes
//! `target/bench/state.json` (under `CARGO_TARGET_DIR` if set): one object
//! per row with `kind`, `guilds`, `members`, `channels`, `roles`,
//! `bytes_per_guild`, `messages`, `bytes_per_message`, `apply_ns`.
//!
//! Environment: `STATE_GUILDS=N` guilds per row (default 2000).
//!
//! Command-line arguments (`--bench` from `cargo bench`, filters) are ignored.

#![allow(clippy::unwrap_used)]
// The counting allocator is the one place this needs `unsafe`: a
// `GlobalAlloc` impl forwarding to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use shardbus::model::{DispatchMeta, GuildCreate, MessageCreate, ShardId};
use shardbus::state::{Cache, CacheConfig};
use shardbus_sim::testing::noisy_text;

/// `System`, counting the live heap bytes.
struct Counting;

/// Live heap bytes (allocated minus freed).
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments,
// so `System`'s guarantees hold; the counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (that is, from `System`)
        // with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller
        // guarantees `new_size` is valid for it.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap bytes now.
fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// The shards the guilds are spread over.
const SHARDS: u64 = 16;

/// The lengths of what the simulator's generated messages say (its
/// `CONTENTS`); the text itself is [`noisy_text`] of these lengths.
const CONTENT_LENGTHS: &[usize] = &[11, 51, 3, 10, 53, 60, 53, 46];

/// A guild shape.
#[derive(Clone, Copy)]
struct Shape {
    /// Name in the table.
    kind: &'static str,
    /// Members listed in GUILD_CREATE (the bot first).
    members: u64,
    /// Text channels (plus one voice channel).
    text_channels: u64,
    /// Roles, `@everyone` included.
    roles: u64,
}

const SHAPES: &[Shape] = &[
    Shape {
        kind: "sim default (8 members, 2+1 channels)",
        members: 8,
        text_channels: 2,
        roles: 1,
    },
    Shape {
        kind: "big (100 members, 19+1 channels, 10 roles)",
        members: 100,
        text_channels: 19,
        roles: 10,
    },
];

/// Guild `i`'s id: the simulator's layout (the timestamp part increments).
fn guild_id(i: u64) -> u64 {
    ((99_999_900_000 + i) << 22) | 0x1001
}

fn user(id: u64, name: &str, bot: bool) -> Value {
    let mut user = json!({
        "id": id.to_string(), "username": name, "discriminator": "0",
        "global_name": if bot { Value::Null } else { Value::String(name.to_uppercase()) },
        "avatar": null, "public_flags": 0,
    });
    if bot {
        user["bot"] = Value::Bool(true);
    }
    user
}

fn member(id: u64, name: &str, with_user: bool) -> Value {
    let mut member = json!({
        "nick": null, "avatar": null, "banner": null, "roles": [],
        "joined_at": "2021-03-14T15:09:26.535000+00:00", "premium_since": null,
        "deaf": false, "mute": false, "flags": 0, "pending": false,
        "communication_disabled_until": null,
    });
    if with_user {
        member["user"] = user(id, name, id == 1);
    }
    member
}

/// The id of text channel `c` of guild `g` (voice is `c == text_channels`).
fn channel_id(g: u64, c: u64) -> u64 {
    guild_id(g) + 1 + c
}

/// A user id of guild `g`'s member `m` (member 0 is the bot, id 1).
fn member_id(g: u64, m: u64) -> u64 {
    if m == 0 { 1 } else { (g << 22) | (m + 2) }
}

/// A GUILD_CREATE `d` like the simulator's.
fn guild_create(g: u64, shape: Shape) -> Value {
    let gid = guild_id(g);
    let mut channels: Vec<Value> = (0..shape.text_channels)
        .map(|c| {
            json!({"id": channel_id(g, c).to_string(), "type": 0,
                   "name": if c == 0 { "general".to_owned() } else { format!("channel-{c}") },
                   "position": c, "parent_id": null, "topic": null, "nsfw": false,
                   "last_message_id": null, "rate_limit_per_user": 0,
                   "permission_overwrites": [], "flags": 0})
        })
        .collect();
    channels.push(json!({
        "id": channel_id(g, shape.text_channels).to_string(), "type": 2, "name": "Voice",
        "position": shape.text_channels, "parent_id": null, "nsfw": false, "bitrate": 64000,
        "user_limit": 0, "rtc_region": null, "permission_overwrites": [], "flags": 0,
    }));
    let roles: Vec<Value> = (0..shape.roles)
        .map(|r| {
            json!({"id": (gid + r * 1000).to_string(),
                   "name": if r == 0 { "@everyone".to_owned() } else { format!("role-{r}") },
                   "color": 0, "hoist": false, "icon": null, "unicode_emoji": null,
                   "position": r, "permissions": "1071698660929", "managed": false,
                   "mentionable": false, "flags": 0,
                   "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null}})
        })
        .collect();
    let members: Vec<Value> = (0..shape.members)
        .map(|m| member(member_id(g, m), &format!("user{g}x{m}"), true))
        .collect();
    let mut guild = json!({
        "id": gid.to_string(), "name": format!("Sim Guild {g}"), "icon": null, "splash": null,
        "discovery_splash": null, "owner_id": member_id(g, 1).to_string(),
        "afk_channel_id": null, "afk_timeout": 300, "verification_level": 1,
        "default_message_notifications": 0, "explicit_content_filter": 0, "roles": roles,
        "emojis": [], "features": [], "mfa_level": 0, "application_id": null,
        "system_channel_id": channel_id(g, 0).to_string(), "system_channel_flags": 0,
        "rules_channel_id": null, "max_members": 500000, "vanity_url_code": null,
    });
    let more = json!({
        "description": null, "banner": null, "premium_tier": 0,
        "premium_subscription_count": 0, "preferred_locale": "en-US",
        "public_updates_channel_id": null, "nsfw_level": 0, "stickers": [],
        "premium_progress_bar_enabled": false, "safety_alerts_channel_id": null,
        "joined_at": "2021-03-14T15:09:26.535000+00:00", "large": false, "unavailable": false,
        "member_count": shape.members, "voice_states": [], "members": members,
        "channels": channels, "threads": [], "presences": [], "stage_instances": [],
        "guild_scheduled_events": [], "soundboard_sounds": [], "lazy": true,
    });
    if let (Some(guild), Value::Object(more)) = (guild.as_object_mut(), more) {
        guild.extend(more);
    }
    guild
}

/// Message `n` in text channel `c` of guild `g`, like the simulator's.
fn message(g: u64, c: u64, n: u64, shape: Shape) -> Value {
    let author = 1 + n % (shape.members - 1).max(1);
    let id = (1_000_000 + n) << 22;
    let length = CONTENT_LENGTHS[(n % CONTENT_LENGTHS.len() as u64) as usize];
    let content = noisy_text(length, n);
    json!({
        "type": 0, "tts": false, "timestamp": "2026-11-21T00:00:00.000000+00:00",
        "pinned": false, "mentions": [], "mention_roles": [], "mention_everyone": false,
        "id": id.to_string(), "channel_id": channel_id(g, c).to_string(),
        "guild_id": guild_id(g).to_string(),
        "author": user(member_id(g, author), &format!("user{g}x{author}"), false),
        "member": member(0, "", false), "flags": 0, "embeds": [], "edited_timestamp": null,
        "content": content, "components": [], "attachments": [], "nonce": id.to_string(),
    })
}

fn meta(g: u64) -> DispatchMeta {
    DispatchMeta {
        shard: ShardId((g % SHARDS) as u32),
        ..DispatchMeta::default()
    }
}

/// One row of the table.
struct Row {
    kind: &'static str,
    shape: Shape,
    guilds: u64,
    bytes_per_guild: f64,
    guild_apply_ns: f64,
    messages: u64,
    bytes_per_message: f64,
    message_apply_ns: f64,
}

fn run(shape: Shape, guilds: u64) -> Row {
    let cache = Cache::new(CacheConfig::new());
    let bound = cache.config().messages_per_channel_bound() as u64;

    let creates: Vec<GuildCreate> = (0..guilds)
        .map(|g| serde_json::from_value(guild_create(g, shape)).unwrap())
        .collect();
    let before = live();
    let start = Instant::now();
    for (g, create) in (0..).zip(&creates) {
        cache.apply(meta(g), create);
    }
    let guild_apply = start.elapsed();
    let guild_bytes = live() - before;
    drop(creates);
    assert_eq!(cache.stats().guilds as u64, guilds);

    // Messages: a full history in each text channel of a tenth of the
    // guilds (enough to average over, quick to fill).
    let filled = (guilds / 10).max(1);
    let messages: Vec<(u64, MessageCreate)> = (0..filled)
        .flat_map(|g| {
            (0..shape.text_channels).flat_map(move |c| (0..bound).map(move |n| (g, c, n)))
        })
        .map(|(g, c, n)| {
            let msg = serde_json::from_value(message(g, c, n, shape)).unwrap();
            (g, msg)
        })
        .collect();
    let before = live();
    let start = Instant::now();
    for (g, msg) in &messages {
        cache.apply(meta(*g), msg);
    }
    let message_apply = start.elapsed();
    let message_bytes = live() - before;
    let kept = cache.stats().messages as u64;
    assert_eq!(kept, messages.len() as u64);
    drop(messages);

    Row {
        kind: shape.kind,
        shape,
        guilds,
        bytes_per_guild: guild_bytes as f64 / guilds as f64,
        guild_apply_ns: guild_apply.as_nanos() as f64 / guilds as f64,
        messages: kept,
        bytes_per_message: message_bytes as f64 / kept.max(1) as f64,
        message_apply_ns: message_apply.as_nanos() as f64 / kept.max(1) as f64,
    }
}

/// `target/bench` (under `CARGO_TARGET_DIR` if set; a relative one is
/// taken from the manifest's directory, as cargo does).
fn bench_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(target)
        .join("bench")
}

fn write_json(rows: &[Row]) -> std::io::Result<PathBuf> {
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {{\"kind\":\"{}\",\"guilds\":{},\"members\":{},\"channels\":{},\"roles\":{},\
             \"bytes_per_guild\":{:.0},\"guild_apply_ns\":{:.0},\"messages\":{},\
             \"bytes_per_message\":{:.0},\"message_apply_ns\":{:.0}}}{}",
            r.kind,
            r.guilds,
            r.shape.members,
            r.shape.text_channels + 1,
            r.shape.roles,
            r.bytes_per_guild,
            r.guild_apply_ns,
            r.messages,
            r.bytes_per_message,
            r.message_apply_ns,
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    out.push_str("]\n");
    let dir = bench_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("state.json");
    std::fs::write(&path, out)?;
    Ok(path)
}

fn main() {
    let guilds = std::env::var("STATE_GUILDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(2000, |n| n.max(10));
    eprintln!("state: heap bytes the cache keeps, {guilds} guilds over {SHARDS} shards per row");
    eprintln!(
        "inline sizes: Message {} B, Member {} B, Channel {} B, Guild {} B",
        size_of::<shardbus::model::Message>(),
        size_of::<shardbus::model::Member>(),
        size_of::<shardbus::model::Channel>(),
        size_of::<shardbus::model::Guild>()
    );
    let rows: Vec<Row> = SHAPES.iter().map(|&shape| run(shape, guilds)).collect();

    println!(
        "{:<44} {:>7} {:>15} {:>12} {:>9} {:>17} {:>14}",
        "guild shape",
        "guilds",
        "bytes/guild",
        "ns/guild",
        "messages",
        "bytes/message",
        "ns/message"
    );
    for r in &rows {
        println!(
            "{:<44} {:>7} {:>15.0} {:>12.0} {:>9} {:>17.0} {:>14.0}",
            r.kind,
            r.guilds,
            r.bytes_per_guild,
            r.guild_apply_ns,
            r.messages,
            r.bytes_per_message,
            r.message_apply_ns
        );
    }
    match write_json(&rows) {
        Ok(path) => eprintln!("wrote {}", path.display()),
        Err(e) => eprintln!("could not write state.json: {e}"),
    }
}
