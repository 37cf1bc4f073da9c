//! A per-shard cache of guilds, channels, roles, members and recent
//! messages, built from gateway events.
//!
//! [`Cache`] keeps one store per shard and reads them all through one
//! handle. It sits beside the gateway, on `model` and `bus`, and imports
//! nothing from the layers above: the shard layer feeds it as the
//! gateway's dispatch hook, which calls [`Cache::wants`] to decide what to
//! decode and [`Cache::apply`] with each decoded event **on the shard's
//! task, in sequence order, before the event is posted to the bus**. So a
//! handler of `MessageCreate` that reads [`Cache::messages`] already finds
//! its message there.
//!
//! # What is kept
//!
//! | kind ([`Kind`]) | from | read with |
//! |---|---|---|
//! | guilds | `READY` (unavailable placeholders), `GUILD_CREATE`, `GUILD_UPDATE`, `GUILD_DELETE`, member add/remove (`member_count`) | [`Cache::guild`], [`Cache::guild_ids`], [`Cache::guild_ids_of`] |
//! | channels | the guild's `channels` and `threads`, `CHANNEL_*`, `THREAD_*` | [`Cache::channel`], [`Cache::guild_channels`] |
//! | roles | the guild's `roles`, `GUILD_UPDATE`, `GUILD_ROLE_*` | [`Cache::role`], [`Cache::roles`] |
//! | members | the guild's `members`, `GUILD_MEMBER_*`, `GUILD_MEMBERS_CHUNK` | [`Cache::member`], [`Cache::members`] |
//! | messages | `MESSAGE_CREATE`, `MESSAGE_UPDATE`, `MESSAGE_DELETE`, `MESSAGE_DELETE_BULK` | [`Cache::messages`], [`Cache::message`] |
//!
//! Presences, voice states, emojis apart from the guild's own list,
//! reactions and DM channels' metadata are not kept. A kind turned off in
//! [`CacheConfig`] is not stored, and the event types only it needs are
//! not [wanted](Cache::wants), so the gateway need not decode them.
//!
//! Readers return `Arc`s of the stored values (`Arc<Guild>`,
//! `Arc<Channel>`, `Arc<Member>`, `Arc<Message>`, ...) or `Vec`s of them:
//! a read is an index lookup, one shard's read lock and reference-count
//! increments. A value read is a snapshot; the cache replaces values
//! rather than changing them in place. The [`Guild`](crate::model::Guild)
//! a reader gets has its collections (`members`, `channels`, `roles`,
//! `threads`, `presences`, `voice_states`) empty: they are kept apart, each
//! with its own reader.
//!
//! # Semantics
//!
//! - **One store per shard.** A `READY` on shard S (a new session, after an
//!   identify or re-identify) clears S's store only; the guilds it lists
//!   come back as unavailable placeholders, then as their `GUILD_CREATE`s
//!   arrive. A `RESUMED` changes nothing: the replayed events apply in
//!   order.
//! - **Outages.** `GUILD_DELETE` with `unavailable: true` (or an
//!   unavailable `GUILD_CREATE`) keeps what is cached of the guild, marked
//!   unavailable (`guild.unavailable == true`); the next `GUILD_CREATE`
//!   replaces it. Without `unavailable` (the bot left or was removed) the
//!   guild goes, with its channels and their histories.
//! - **Channels.** A deleted channel takes its history and its threads
//!   along.
//! - **Members.** `GUILD_MEMBER_UPDATE` merges into the kept member (and
//!   adds it if it is not kept, within the bound). `GUILD_MEMBER_REMOVE`
//!   removes it. Members past [`CacheConfig::members_per_guild`] are not
//!   added.
//! - **Messages.** Each channel keeps its last
//!   [`CacheConfig::messages_per_channel`] messages (default
//!   [`DEFAULT_MESSAGES_PER_CHANNEL`]), oldest first; a new one evicts the
//!   oldest. `MESSAGE_UPDATE` carries the whole message: it replaces the
//!   kept one, keeping what it leaves out (`member`, `referenced_message`);
//!   an edit of a message no longer (or never) kept is not added. A
//!   replayed `MESSAGE_CREATE` replaces the kept copy in place. The number
//!   of channels with a history is not bounded: a history goes with its
//!   channel, its guild or its shard's next `READY`.
//! - **Reshards.** A guild created on a shard while another shard's store
//!   holds it moves: the old store forgets it.
//! - [`Cache::apply`] never panics, whatever the event; events about
//!   guilds or channels the store does not hold change nothing.
//!
//! # Concurrency
//!
//! Each shard's store is behind its own `RwLock`, written only by that
//! shard's events. Lookups by guild or channel id go through a striped
//! index (id → shard; 32 locked maps), so no read scans the shards, and
//! neither readers nor writers hold a lock for longer than one lookup or
//! one event's update. A new guild's copy is made before the write lock is
//! taken, and a cleared store is freed after it is released.
//!
//! # Memory
//!
//! Measured by `cargo bench --bench state` (a counting allocator; heap
//! bytes, all kinds on; the last run's table is in `target/bench/state.json`):
//!
//! | guild shape | per cached guild |
//! |---|---|
//! | the simulator's default: 8 members, 2 text + 1 voice channel, 1 role | about 6.3 KiB |
//! | 100 members, 19 text + 1 voice channel, 10 roles | about 55 KiB |
//!
//! and about 1 KiB per cached message of the simulator's shape (author,
//! partial member, a short content, a nonce; most of it is the inline size
//! of [`Message`](crate::model::Message)). Full histories therefore
//! dominate: at the default bound of 50, each text channel holds about
//! 50 KiB, eight default guilds' worth. Lower the bound, or turn messages
//! off, for bots in many guilds.
//!
//! # Examples
//!
//! ```
//! use shardbus::model::{DispatchMeta, GuildCreate, ShardId};
//! use shardbus::state::{Cache, CacheConfig};
//!
//! let cache = Cache::new(CacheConfig::new().messages(false));
//! let guild: GuildCreate = serde_json::from_value(serde_json::json!({
//!     "id": "41771983423143937", "name": "Tea",
//!     "channels": [{"id": "41771983423143938", "type": 0, "name": "general"}],
//! })).unwrap();
//! cache.apply(DispatchMeta { shard: ShardId(0), ..Default::default() }, &guild);
//!
//! assert_eq!(cache.guild(41771983423143937.into()).unwrap().name, "Tea");
//! let channel = cache.channel(41771983423143938.into()).unwrap();
//! assert_eq!(channel.guild_id, Some(41771983423143937.into()));
//! ```

mod cache;
mod config;
mod history;
mod index;
mod store;

pub use cache::{Cache, CacheStats};
pub use config::{CacheConfig, DEFAULT_MESSAGES_PER_CHANNEL, Kind};
