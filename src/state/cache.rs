//! The cache handle: one store per shard, read through one index.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::mem;
use std::ops::Add;
use std::sync::{Arc, RwLock};

use super::config::{CacheConfig, Kind};
use super::index::Index;
use super::store::{Changes, GuildEntry, MovedGuild, PreparedGuild, ShardState};
use crate::model::{
    Channel, ChannelCreate, ChannelDelete, ChannelId, ChannelUpdate, DispatchMeta, Guild,
    GuildCreate, GuildDelete, GuildId, GuildMemberAdd, GuildMemberRemove, GuildMemberUpdate,
    GuildMembersChunk, GuildRoleCreate, GuildRoleDelete, GuildRoleUpdate, GuildUpdate, Member,
    Message, MessageCreate, MessageDelete, MessageDeleteBulk, MessageId, MessageUpdate, Ready,
    Role, RoleId, ShardId, ThreadCreate, ThreadDelete, ThreadUpdate, User, UserId,
};
use crate::sync::{read, write};

/// A cache of guilds, channels, roles, members and recent messages, built
/// from gateway events, with one store per shard.
///
/// Clone is cheap (a shared handle); every clone reads and writes the same
/// stores. Fed by [`apply`](Self::apply) from each shard's task before the
/// event reaches the bus (see the [module docs](super)); read from
/// anywhere. Readers return `Arc`s of what is stored, so a read is a
/// lookup and a reference-count increment, and a value read stays valid
/// (as it was) after the cache moves on.
#[derive(Clone)]
pub struct Cache {
    /// The shared state.
    inner: Arc<Inner>,
}

/// Counts of what a cache (or one shard's store) holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Guilds, available or not.
    pub guilds: usize,
    /// Of those, unavailable ones (listed in Ready and not yet created, or
    /// in an outage).
    pub unavailable_guilds: usize,
    /// Channels and threads.
    pub channels: usize,
    /// Roles.
    pub roles: usize,
    /// Members.
    pub members: usize,
    /// Messages, over all channel histories.
    pub messages: usize,
}

/// What every clone of a [`Cache`] shares.
#[derive(Default)]
struct Inner {
    /// What to keep.
    config: CacheConfig,
    /// The model types `config` needs decoded.
    wanted: Vec<TypeId>,
    /// One store per shard seen, created on its first event.
    shards: RwLock<HashMap<ShardId, Arc<RwLock<ShardState>>>>,
    /// Which shard holds each guild.
    guild_shard: Index,
    /// Which shard holds each channel (or its message history).
    channel_shard: Index,
    /// The current user, from the last Ready.
    user: RwLock<Option<Arc<User>>>,
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

/// The model types that the kinds `config` caches are built from.
fn wanted_types(config: &CacheConfig) -> Vec<TypeId> {
    let guilds = config.caches(Kind::Guilds);
    let channels = config.caches(Kind::Channels);
    let roles = config.caches(Kind::Roles);
    let members = config.caches(Kind::Members);
    let messages = config.caches(Kind::Messages);
    let guild_data = guilds || channels || roles || members;
    let anything = guild_data || messages;
    [
        (anything, TypeId::of::<Ready>()),
        (guild_data, TypeId::of::<GuildCreate>()),
        (guilds || roles, TypeId::of::<GuildUpdate>()),
        (anything, TypeId::of::<GuildDelete>()),
        (channels, TypeId::of::<ChannelCreate>()),
        (channels, TypeId::of::<ChannelUpdate>()),
        (channels || messages, TypeId::of::<ChannelDelete>()),
        (channels, TypeId::of::<ThreadCreate>()),
        (channels, TypeId::of::<ThreadUpdate>()),
        (channels || messages, TypeId::of::<ThreadDelete>()),
        (roles, TypeId::of::<GuildRoleCreate>()),
        (roles, TypeId::of::<GuildRoleUpdate>()),
        (roles, TypeId::of::<GuildRoleDelete>()),
        // Guilds want them too, for `member_count`.
        (guilds || members, TypeId::of::<GuildMemberAdd>()),
        (members, TypeId::of::<GuildMemberUpdate>()),
        (guilds || members, TypeId::of::<GuildMemberRemove>()),
        (members, TypeId::of::<GuildMembersChunk>()),
        (messages, TypeId::of::<MessageCreate>()),
        (messages, TypeId::of::<MessageUpdate>()),
        (messages, TypeId::of::<MessageDelete>()),
        (messages, TypeId::of::<MessageDeleteBulk>()),
    ]
    .into_iter()
    .filter_map(|(on, ty)| on.then_some(ty))
    .collect()
}

impl Cache {
    /// An empty cache keeping what `config` says.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus::model::{DispatchMeta, MessageCreate, ShardId};
    /// use shardbus::state::{Cache, CacheConfig};
    ///
    /// let cache = Cache::new(CacheConfig::new().messages_per_channel(2));
    /// for id in 1..=3 {
    ///     let msg: MessageCreate = serde_json::from_value(serde_json::json!({
    ///         "id": id.to_string(), "channel_id": "9", "content": "hi",
    ///         "author": {"id": "5", "username": "u", "discriminator": "0", "avatar": null},
    ///         "timestamp": "2026-01-01T00:00:00+00:00"
    ///     })).unwrap();
    ///     let meta = DispatchMeta { shard: ShardId(0), ..DispatchMeta::default() };
    ///     cache.apply(meta, &msg);
    /// }
    /// let kept: Vec<u64> = cache.messages(9.into()).iter().map(|m| m.id.0).collect();
    /// assert_eq!(kept, [2, 3]); // oldest first, the oldest evicted
    /// ```
    pub fn new(config: CacheConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                wanted: wanted_types(&config),
                config,
                ..Inner::default()
            }),
        }
    }

    /// What this cache keeps.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Whether the cache needs events of the model type `event` (a
    /// [`TypeId`] of a dispatch type of [`crate::model`]): the types the
    /// configured kinds are built from. Others need not be decoded for it.
    pub fn wants(&self, event: TypeId) -> bool {
        self.inner.wanted.contains(&event)
    }

    /// Updates shard `meta.shard`'s store with `event`, a decoded dispatch
    /// of a model type. Call it on the shard's task, in sequence order,
    /// before the event is posted; types the cache does not
    /// [want](Self::wants) are ignored. Never panics.
    ///
    /// A `Ready` clears that shard's store (a new session; the other
    /// shards' stores are untouched) and lists its guilds as unavailable
    /// until their `GUILD_CREATE`.
    pub fn apply(&self, meta: DispatchMeta, event: &(dyn Any + Send + Sync)) {
        if !self.wants((*event).type_id()) {
            return;
        }
        let shard = meta.shard;
        if let Some(ready) = event.downcast_ref::<Ready>() {
            self.reset(shard, ready);
            return;
        }
        let config = &self.inner.config;
        // The copy of a new guild is made before taking the lock.
        let created = event.downcast_ref::<GuildCreate>().map(|create| {
            let prepared = create
                .is_available()
                .then(|| PreparedGuild::new(create, config));
            (create.id, prepared)
        });
        // An event about a guild (or channel) goes to the store that holds
        // it: the same as `shard` but while a reshard hands guilds over.
        let shard = match created {
            Some(_) => shard,
            None => self.holder(event).unwrap_or(shard),
        };
        let store = self.store_or_insert(shard);
        let moved = {
            let mut state = write(&store);
            let mut changes = Changes::default();
            match created {
                Some((_, Some(prepared))) => state.insert_guild(prepared, &mut changes),
                Some((id, None)) => state.mark_unavailable(id, config, &mut changes),
                None => state.apply(event, config, &mut changes),
            }
            self.reindex(shard, &state, changes)
        };
        self.forget_moved(moved);
    }

    /// The shard whose store holds what `event` is about: for a message,
    /// its channel's history (or else its guild); for anything else, its
    /// guild (or else its channel).
    fn holder(&self, event: &(dyn Any + Send + Sync)) -> Option<ShardId> {
        let inner = &self.inner;
        about(event)
            .into_iter()
            .flatten()
            .find_map(|key| match key {
                Key::Guild(guild) => inner.guild_shard.get(guild.0),
                Key::Channel(channel) => inner.channel_shard.get(channel.0),
            })
    }

    /// After a reshard to `total` shards: moves every cached guild, with its
    /// channels, threads and message histories, into the store of the shard
    /// that now receives it (`(guild_id >> 22) % total`), so that shard's
    /// events and a later `Ready` on it find exactly its own guilds. The
    /// [`Manager`](crate::shard::Manager) calls it when a new shard set
    /// takes over; reads in the meantime may miss a guild being moved.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus::model::{DispatchMeta, GuildCreate, GuildId, ShardId};
    /// use shardbus::state::Cache;
    ///
    /// let cache = Cache::default();
    /// let id = GuildId((3 << 22) | 1); // (id >> 22) % 2 == 1, % 4 == 3
    /// let guild: GuildCreate = serde_json::from_value(serde_json::json!({
    ///     "id": id.0.to_string(), "name": "g"
    /// })).unwrap();
    /// cache.apply(DispatchMeta { shard: ShardId(1), ..DispatchMeta::default() }, &guild);
    /// cache.rehome(4);
    /// assert_eq!(cache.shard_of(id), Some(ShardId(3)));
    /// assert!(cache.guild(id).is_some());
    /// ```
    pub fn rehome(&self, total: u32) {
        let total = total.max(1);
        let mut stores: Vec<(ShardId, Arc<RwLock<ShardState>>)> = read(&self.inner.shards)
            .iter()
            .map(|(id, store)| (*id, Arc::clone(store)))
            .collect();
        stores.sort_unstable_by_key(|(id, _)| *id);
        for (from, store) in stores {
            let leaving: Vec<MovedGuild> = {
                let mut state = write(&store);
                let ids: Vec<GuildId> = state
                    .guilds
                    .keys()
                    .copied()
                    .filter(|g| g.shard(total) != from)
                    .collect();
                ids.into_iter()
                    .filter_map(|g| state.take_guild(g))
                    .collect()
            };
            for moved in leaving {
                let to = moved.id.shard(total);
                let target = self.store_or_insert(to);
                let mut state = write(&target);
                for channel in moved.channel_ids() {
                    self.inner.channel_shard.insert(channel.0, to);
                }
                self.inner.guild_shard.insert(moved.id.0, to);
                state.put_guild(moved);
            }
        }
    }

    /// A new session on `shard`: its store starts over.
    fn reset(&self, shard: ShardId, ready: &Ready) {
        let config = &self.inner.config;
        let store = self.store_or_insert(shard);
        let (old, moved) = {
            let mut state = write(&store);
            let old = mem::take(&mut *state);
            let mut changes = Changes {
                guilds_removed: old.guilds.keys().copied().collect(),
                channels_removed: old
                    .channels
                    .keys()
                    .chain(old.histories.keys())
                    .copied()
                    .collect(),
                ..Changes::default()
            };
            if config.caches(Kind::Guilds) {
                for guild in &ready.guilds {
                    state.mark_unavailable(guild.id, config, &mut changes);
                }
            }
            (old, self.reindex(shard, &state, changes))
        };
        // Freed outside the lock: a big store takes a while to drop.
        drop(old);
        self.forget_moved(moved);
        *write(&self.inner.user) = Some(Arc::new(ready.user.clone()));
    }

    /// Brings the index in line with `changes` to `shard`'s `state`;
    /// returns the guilds that another shard held before, with that shard.
    fn reindex(
        &self,
        shard: ShardId,
        state: &ShardState,
        changes: Changes,
    ) -> Vec<(GuildId, ShardId)> {
        let inner = &self.inner;
        for guild in changes.guilds_removed {
            if !state.guilds.contains_key(&guild) {
                inner.guild_shard.remove(guild.0, shard);
            }
        }
        for channel in changes.channels_removed {
            if !state.channels.contains_key(&channel) && !state.histories.contains_key(&channel) {
                inner.channel_shard.remove(channel.0, shard);
            }
        }
        for channel in changes.channels_added {
            inner.channel_shard.insert(channel.0, shard);
        }
        changes
            .guilds_added
            .into_iter()
            .filter_map(|guild| {
                let previous = inner.guild_shard.insert(guild.0, shard)?;
                Some((guild, previous))
            })
            .collect()
    }

    /// Drops guilds now held by another shard from the shard that held
    /// them (after a reshard), one store lock at a time.
    fn forget_moved(&self, moved: Vec<(GuildId, ShardId)>) {
        for (guild, from) in moved {
            let Some(store) = self.store(from) else {
                continue;
            };
            let mut state = write(&store);
            let mut changes = Changes::default();
            state.remove_guild(guild, &mut changes);
            // The index now points at the new shard: only what the old one
            // alone held is forgotten.
            self.reindex(from, &state, changes);
        }
    }

    /// Shard `shard`'s store, if it has sent anything.
    fn store(&self, shard: ShardId) -> Option<Arc<RwLock<ShardState>>> {
        read(&self.inner.shards).get(&shard).cloned()
    }

    /// Shard `shard`'s store, made on first use.
    fn store_or_insert(&self, shard: ShardId) -> Arc<RwLock<ShardState>> {
        if let Some(store) = self.store(shard) {
            return store;
        }
        Arc::clone(write(&self.inner.shards).entry(shard).or_default())
    }

    /// `f` of guild `id`'s entry, under its shard's read lock.
    fn with_guild<R>(&self, id: GuildId, f: impl FnOnce(&GuildEntry) -> R) -> Option<R> {
        let store = self.store(self.inner.guild_shard.get(id.0)?)?;
        let state = read(&store);
        state.guilds.get(&id).map(f)
    }

    /// `f` of the store holding channel `id`, under its read lock.
    fn with_channel_store<R>(&self, id: ChannelId, f: impl FnOnce(&ShardState) -> R) -> Option<R> {
        let store = self.store(self.inner.channel_shard.get(id.0)?)?;
        let state = read(&store);
        Some(f(&state))
    }

    /// Guild `id`'s settings. Its collections (`members`, `channels`,
    /// `roles`, ...) are empty: read them with [`member`](Self::member),
    /// [`guild_channels`](Self::guild_channels), [`roles`](Self::roles).
    /// An unavailable guild has `unavailable: true` and, if it was
    /// available before, its last known settings.
    pub fn guild(&self, id: GuildId) -> Option<Arc<Guild>> {
        self.with_guild(id, |e| e.guild.clone()).flatten()
    }

    /// The shard whose store holds guild `id`.
    pub fn shard_of(&self, id: GuildId) -> Option<ShardId> {
        self.inner.guild_shard.get(id.0)
    }

    /// Channel or thread `id`, with its `guild_id` set for guild channels.
    pub fn channel(&self, id: ChannelId) -> Option<Arc<Channel>> {
        self.with_channel_store(id, |s| s.channels.get(&id).cloned())
            .flatten()
    }

    /// Guild `id`'s channels and threads, by position then id.
    pub fn guild_channels(&self, id: GuildId) -> Vec<Arc<Channel>> {
        let Some(store) = self.inner.guild_shard.get(id.0).and_then(|s| self.store(s)) else {
            return Vec::new();
        };
        let state = read(&store);
        let mut channels: Vec<_> = state
            .guilds
            .get(&id)
            .into_iter()
            .flat_map(|e| &e.channels)
            .filter_map(|c| state.channels.get(c).cloned())
            .collect();
        drop(state);
        channels.sort_by_key(|c| (c.position, c.id));
        channels
    }

    /// Role `role` of guild `guild`.
    pub fn role(&self, guild: GuildId, role: RoleId) -> Option<Arc<Role>> {
        self.with_guild(guild, |e| e.roles.get(&role).cloned())
            .flatten()
    }

    /// Guild `guild`'s roles, by position then id.
    pub fn roles(&self, guild: GuildId) -> Vec<Arc<Role>> {
        let mut roles = self
            .with_guild(guild, |e| e.roles.values().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        roles.sort_by_key(|r| (r.position, r.id));
        roles
    }

    /// Member `user` of guild `guild`.
    pub fn member(&self, guild: GuildId, user: UserId) -> Option<Arc<Member>> {
        self.with_guild(guild, |e| e.members.get(&user).cloned())
            .flatten()
    }

    /// Guild `guild`'s kept members, in no particular order.
    pub fn members(&self, guild: GuildId) -> Vec<Arc<Member>> {
        self.with_guild(guild, |e| e.members.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Message `id` of channel `channel`, if still in its history.
    pub fn message(&self, channel: ChannelId, id: MessageId) -> Option<Arc<Message>> {
        self.with_channel_store(channel, |s| s.histories.get(&channel)?.get(id))
            .flatten()
    }

    /// Channel `channel`'s kept messages, oldest first.
    pub fn messages(&self, channel: ChannelId) -> Vec<Arc<Message>> {
        self.with_channel_store(channel, |s| {
            s.histories
                .get(&channel)
                .map(|h| h.to_vec())
                .unwrap_or_default()
        })
        .unwrap_or_default()
    }

    /// The ids of every cached guild, of all shards, sorted.
    pub fn guild_ids(&self) -> Vec<GuildId> {
        let stores: Vec<_> = read(&self.inner.shards).values().cloned().collect();
        let mut ids: Vec<GuildId> = stores
            .iter()
            .flat_map(|store| read(store).guilds.keys().copied().collect::<Vec<_>>())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The ids of the guilds shard `shard`'s store holds, sorted.
    pub fn guild_ids_of(&self, shard: ShardId) -> Vec<GuildId> {
        let mut ids: Vec<GuildId> = self
            .store(shard)
            .map(|store| read(&store).guilds.keys().copied().collect())
            .unwrap_or_default();
        ids.sort_unstable();
        ids
    }

    /// The current user, from the last Ready of any shard.
    pub fn current_user(&self) -> Option<Arc<User>> {
        read(&self.inner.user).clone()
    }

    /// Counts over every shard.
    pub fn stats(&self) -> CacheStats {
        let stores: Vec<_> = read(&self.inner.shards).values().cloned().collect();
        stores
            .iter()
            .map(|store| stats_of(&read(store)))
            .fold(CacheStats::default(), Add::add)
    }

    /// Counts of shard `shard`'s store.
    pub fn shard_stats(&self, shard: ShardId) -> CacheStats {
        self.store(shard)
            .map(|store| stats_of(&read(&store)))
            .unwrap_or_default()
    }

    /// How many guilds and channels the cross-shard index holds (for
    /// tests: it must follow the stores).
    #[doc(hidden)]
    pub fn index_len(&self) -> (usize, usize) {
        (self.inner.guild_shard.len(), self.inner.channel_shard.len())
    }
}

impl Default for Cache {
    /// A cache keeping everything, with the default bounds
    /// ([`CacheConfig::new`]).
    fn default() -> Self {
        Self::new(CacheConfig::default())
    }
}

/// What an event is about, to find the store that holds it.
#[derive(Clone, Copy)]
enum Key {
    /// A guild (and what belongs to it).
    Guild(GuildId),
    /// A channel (and its message history).
    Channel(ChannelId),
}

/// What an event of a cached type is about, most telling first: a
/// message's channel (histories are kept by channel), then its guild; for
/// everything else its guild, then its channel.
fn about(event: &(dyn Any + Send + Sync)) -> [Option<Key>; 2] {
    let guild = |g: GuildId| [Some(Key::Guild(g)), None];
    let channel = |c: &Channel| [c.guild_id.map(Key::Guild), Some(Key::Channel(c.id))];
    let message = |channel: ChannelId, guild: Option<GuildId>| {
        [Some(Key::Channel(channel)), guild.map(Key::Guild)]
    };
    if let Some(e) = event.downcast_ref::<GuildUpdate>() {
        guild(e.id)
    } else if let Some(e) = event.downcast_ref::<GuildDelete>() {
        guild(e.id)
    } else if let Some(e) = event.downcast_ref::<ChannelCreate>() {
        channel(e)
    } else if let Some(e) = event.downcast_ref::<ChannelUpdate>() {
        channel(e)
    } else if let Some(e) = event.downcast_ref::<ChannelDelete>() {
        channel(e)
    } else if let Some(e) = event.downcast_ref::<ThreadCreate>() {
        channel(e)
    } else if let Some(e) = event.downcast_ref::<ThreadUpdate>() {
        channel(e)
    } else if let Some(e) = event.downcast_ref::<ThreadDelete>() {
        [e.guild_id.map(Key::Guild), Some(Key::Channel(e.id))]
    } else if let Some(e) = event.downcast_ref::<GuildRoleCreate>() {
        guild(e.guild_id)
    } else if let Some(e) = event.downcast_ref::<GuildRoleUpdate>() {
        guild(e.guild_id)
    } else if let Some(e) = event.downcast_ref::<GuildRoleDelete>() {
        guild(e.guild_id)
    } else if let Some(e) = event.downcast_ref::<GuildMemberAdd>() {
        guild(e.guild_id)
    } else if let Some(e) = event.downcast_ref::<GuildMemberUpdate>() {
        guild(e.guild_id)
    } else if let Some(e) = event.downcast_ref::<GuildMemberRemove>() {
        guild(e.guild_id)
    } else if let Some(e) = event.downcast_ref::<GuildMembersChunk>() {
        guild(e.guild_id)
    } else if let Some(e) = event.downcast_ref::<MessageCreate>() {
        message(e.channel_id, e.guild_id)
    } else if let Some(e) = event.downcast_ref::<MessageUpdate>() {
        message(e.channel_id, e.guild_id)
    } else if let Some(e) = event.downcast_ref::<MessageDelete>() {
        message(e.channel_id, e.guild_id)
    } else if let Some(e) = event.downcast_ref::<MessageDeleteBulk>() {
        message(e.channel_id, e.guild_id)
    } else {
        [None, None]
    }
}

/// The counts of one store.
fn stats_of(state: &ShardState) -> CacheStats {
    let guilds = state.guilds.values();
    CacheStats {
        guilds: state.guilds.len(),
        unavailable_guilds: guilds.clone().filter(|g| g.unavailable).count(),
        channels: state.channels.len(),
        roles: guilds.clone().map(|g| g.roles.len()).sum(),
        members: guilds.map(|g| g.members.len()).sum(),
        messages: state.histories.values().map(|h| h.len()).sum(),
    }
}

impl Add for CacheStats {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            guilds: self.guilds + other.guilds,
            unavailable_guilds: self.unavailable_guilds + other.unavailable_guilds,
            channels: self.channels + other.channels,
            roles: self.roles + other.roles,
            members: self.members + other.members,
            messages: self.messages + other.messages,
        }
    }
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
