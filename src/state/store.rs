//! One shard's store, and how each event changes it.
//!
//! Plain data behind the cache's per-shard lock: no locks, no index, no
//! other shard. Every change that the cross-shard index must follow (a
//! guild or channel added or gone) is written down in [`Changes`], which
//! the cache applies to its index afterwards.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::mem;
use std::sync::Arc;

use super::config::{CacheConfig, Kind};
use super::history::History;
use crate::model::{
    Channel, ChannelCreate, ChannelDelete, ChannelId, ChannelUpdate, Guild, GuildDelete, GuildId,
    GuildMemberAdd, GuildMemberRemove, GuildMemberUpdate, GuildMembersChunk, GuildRoleCreate,
    GuildRoleDelete, GuildRoleUpdate, GuildUpdate, Member, Message, MessageCreate, MessageDelete,
    MessageDeleteBulk, MessageId, MessageUpdate, Role, RoleId, ThreadCreate, ThreadDelete,
    ThreadUpdate, UserId,
};

/// One shard's cached data.
#[derive(Debug, Default)]
pub(super) struct ShardState {
    /// The shard's guilds, available or not.
    pub(super) guilds: HashMap<GuildId, GuildEntry>,
    /// Channels and threads, of this shard's guilds (and any DM channel
    /// created on it), with their `guild_id` set.
    pub(super) channels: HashMap<ChannelId, Arc<Channel>>,
    /// Message histories by channel.
    pub(super) histories: HashMap<ChannelId, History>,
}

/// One guild of a shard: its settings and what belongs to it.
#[derive(Debug, Default)]
pub(super) struct GuildEntry {
    /// The settings, with the collections (`members`, `channels`,
    /// `threads`, `roles`, `presences`, `voice_states`) emptied: they are
    /// kept in the maps beside it, or not at all. `None` when guilds are
    /// not cached.
    pub(super) guild: Option<Arc<Guild>>,
    /// Whether the guild is unavailable (in Ready before its
    /// `GUILD_CREATE`, or in an outage).
    pub(super) unavailable: bool,
    /// Its channels and threads (the data is in [`ShardState::channels`]).
    pub(super) channels: HashSet<ChannelId>,
    /// Its roles.
    pub(super) roles: HashMap<RoleId, Arc<Role>>,
    /// Its members, by user id.
    pub(super) members: HashMap<UserId, Arc<Member>>,
}

/// A `GUILD_CREATE` made ready for the store, before taking its lock.
#[derive(Debug)]
pub(super) struct PreparedGuild {
    /// The guild's id.
    id: GuildId,
    /// The guild's entry, without channels.
    entry: GuildEntry,
    /// Its channels and threads.
    channels: Vec<Arc<Channel>>,
}

/// A guild taken out of one store to go into another (after a reshard),
/// with its channels and the histories of its channels.
#[derive(Debug)]
pub(super) struct MovedGuild {
    /// The guild's id.
    pub(super) id: GuildId,
    /// Its entry.
    entry: GuildEntry,
    /// Its channels and threads.
    channels: Vec<(ChannelId, Arc<Channel>)>,
    /// The histories of its channels.
    histories: Vec<(ChannelId, History)>,
}

impl MovedGuild {
    /// The channels (and histories) that move with it.
    pub(super) fn channel_ids(&self) -> impl Iterator<Item = ChannelId> + '_ {
        self.channels
            .iter()
            .map(|(id, _)| *id)
            .chain(self.histories.iter().map(|(id, _)| *id))
    }
}

/// What an update added to or removed from a shard, for the index.
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// Guilds now in the shard.
    pub(super) guilds_added: Vec<GuildId>,
    /// Guilds that may have left the shard.
    pub(super) guilds_removed: Vec<GuildId>,
    /// Channels (or message histories) now in the shard.
    pub(super) channels_added: Vec<ChannelId>,
    /// Channels that may have left the shard.
    pub(super) channels_removed: Vec<ChannelId>,
}

/// `guild` without the collections the store keeps apart.
fn settings_of(mut guild: Guild) -> Guild {
    guild.members = Vec::new();
    guild.channels = Vec::new();
    guild.threads = Vec::new();
    guild.roles = Vec::new();
    guild.presences = Vec::new();
    guild.voice_states = Vec::new();
    guild
}

/// `roles` as the store keeps them.
fn role_map(roles: Vec<Role>) -> HashMap<RoleId, Arc<Role>> {
    roles.into_iter().map(|r| (r.id, Arc::new(r))).collect()
}

impl PreparedGuild {
    /// The kinds `config` caches of an available `guild`.
    pub(super) fn new(guild: &Guild, config: &CacheConfig) -> Self {
        let mut guild = guild.clone();
        let id = guild.id;
        let channels = if config.caches(Kind::Channels) {
            let mut channels = mem::take(&mut guild.channels);
            channels.append(&mut guild.threads);
            channels
                .into_iter()
                .map(|mut c| {
                    c.guild_id.get_or_insert(id);
                    Arc::new(c)
                })
                .collect()
        } else {
            Vec::new()
        };
        let roles = if config.caches(Kind::Roles) {
            role_map(mem::take(&mut guild.roles))
        } else {
            HashMap::new()
        };
        let members = if config.caches(Kind::Members) {
            let bound = config.members_per_guild_bound().unwrap_or(usize::MAX);
            let mut members = HashMap::new();
            for member in mem::take(&mut guild.members) {
                if members.len() >= bound {
                    break;
                }
                if let Some(user) = member.user_id() {
                    members.insert(user, Arc::new(member));
                }
            }
            members
        } else {
            HashMap::new()
        };
        let entry = GuildEntry {
            guild: config
                .caches(Kind::Guilds)
                .then(|| Arc::new(settings_of(guild))),
            unavailable: false,
            channels: channels.iter().map(|c| c.id).collect(),
            roles,
            members,
        };
        Self {
            id,
            entry,
            channels,
        }
    }
}

impl ShardState {
    /// Applies an event of one of the types the cache decodes, other than
    /// `READY` and `GUILD_CREATE` (which the cache handles itself). Events
    /// of other types, and events about what this shard does not hold,
    /// change nothing.
    pub(super) fn apply(
        &mut self,
        event: &(dyn Any + Send + Sync),
        config: &CacheConfig,
        changes: &mut Changes,
    ) {
        if let Some(e) = event.downcast_ref::<GuildUpdate>() {
            self.update_guild(e, config);
        } else if let Some(e) = event.downcast_ref::<GuildDelete>() {
            if e.unavailable {
                self.mark_unavailable(e.id, config, changes);
            } else {
                self.remove_guild(e.id, changes);
            }
        } else if let Some(e) = event.downcast_ref::<ChannelCreate>() {
            self.upsert_channel(e, config, changes);
        } else if let Some(e) = event.downcast_ref::<ChannelUpdate>() {
            self.upsert_channel(e, config, changes);
        } else if let Some(e) = event.downcast_ref::<ThreadCreate>() {
            self.upsert_channel(e, config, changes);
        } else if let Some(e) = event.downcast_ref::<ThreadUpdate>() {
            self.upsert_channel(e, config, changes);
        } else if let Some(e) = event.downcast_ref::<ChannelDelete>() {
            self.delete_channel(e.id, e.guild_id, changes);
        } else if let Some(e) = event.downcast_ref::<ThreadDelete>() {
            self.delete_channel(e.id, e.guild_id, changes);
        } else if let Some(e) = event.downcast_ref::<GuildRoleCreate>() {
            self.upsert_role(e.guild_id, &e.role, config);
        } else if let Some(e) = event.downcast_ref::<GuildRoleUpdate>() {
            self.upsert_role(e.guild_id, &e.role, config);
        } else if let Some(e) = event.downcast_ref::<GuildRoleDelete>() {
            if let Some(entry) = self.guilds.get_mut(&e.guild_id) {
                entry.roles.remove(&e.role_id);
            }
        } else if let Some(e) = event.downcast_ref::<GuildMemberAdd>() {
            self.count_member(e.guild_id, config, true);
            self.add_member(e.guild_id, &e.member, config);
        } else if let Some(e) = event.downcast_ref::<GuildMemberUpdate>() {
            self.update_member(e, config);
        } else if let Some(e) = event.downcast_ref::<GuildMemberRemove>() {
            self.count_member(e.guild_id, config, false);
            if let Some(entry) = self.guilds.get_mut(&e.guild_id) {
                entry.members.remove(&e.user.id);
            }
        } else if let Some(e) = event.downcast_ref::<GuildMembersChunk>() {
            for member in &e.members {
                self.add_member(e.guild_id, member, config);
            }
        } else if let Some(e) = event.downcast_ref::<MessageCreate>() {
            self.add_message(e, config, changes);
        } else if let Some(e) = event.downcast_ref::<MessageUpdate>() {
            if let Some(history) = self.histories.get_mut(&e.channel_id) {
                history.edit(e);
            }
        } else if let Some(e) = event.downcast_ref::<MessageDelete>() {
            self.delete_messages(e.channel_id, &[e.id]);
        } else if let Some(e) = event.downcast_ref::<MessageDeleteBulk>() {
            self.delete_messages(e.channel_id, &e.ids);
        }
    }

    /// Stores an available guild from `GUILD_CREATE`,
    /// replacing what was kept of it. Its histories stay, except those of
    /// channels it no longer has.
    pub(super) fn insert_guild(&mut self, guild: PreparedGuild, changes: &mut Changes) {
        let PreparedGuild {
            id,
            entry,
            channels,
        } = guild;
        if let Some(old) = self.guilds.remove(&id) {
            for gone in old.channels.difference(&entry.channels) {
                self.drop_channel(*gone, changes);
            }
        }
        for channel in channels {
            changes.channels_added.push(channel.id);
            self.channels.insert(channel.id, channel);
        }
        self.guilds.insert(id, entry);
        changes.guilds_added.push(id);
    }

    /// Marks guild `id` unavailable (an outage, or listed in Ready), keeping
    /// what is cached of it; adds a placeholder if it is not kept yet.
    pub(super) fn mark_unavailable(
        &mut self,
        id: GuildId,
        config: &CacheConfig,
        changes: &mut Changes,
    ) {
        if let Some(entry) = self.guilds.get_mut(&id) {
            entry.unavailable = true;
            if let Some(guild) = &mut entry.guild {
                Arc::make_mut(guild).unavailable = true;
            }
            return;
        }
        let guild = config.caches(Kind::Guilds).then(|| {
            Arc::new(Guild {
                id,
                unavailable: true,
                ..Guild::default()
            })
        });
        self.guilds.insert(
            id,
            GuildEntry {
                guild,
                unavailable: true,
                ..GuildEntry::default()
            },
        );
        changes.guilds_added.push(id);
    }

    /// Forgets guild `id` (left, kicked, or now on another shard) with its
    /// channels and their histories.
    pub(super) fn remove_guild(&mut self, id: GuildId, changes: &mut Changes) {
        if let Some(entry) = self.guilds.remove(&id) {
            changes.guilds_removed.push(id);
            for channel in entry.channels {
                self.drop_channel(channel, changes);
            }
        }
        self.histories.retain(|&channel, history| {
            let keep = history.guild != Some(id);
            if !keep {
                changes.channels_removed.push(channel);
            }
            keep
        });
    }

    /// Takes guild `id` out, with its channels and the histories of its
    /// channels, to be put into another store.
    pub(super) fn take_guild(&mut self, id: GuildId) -> Option<MovedGuild> {
        let entry = self.guilds.remove(&id)?;
        let channels = entry
            .channels
            .iter()
            .filter_map(|c| Some((*c, self.channels.remove(c)?)))
            .collect();
        let moving: Vec<ChannelId> = self
            .histories
            .iter()
            .filter(|(c, h)| h.guild == Some(id) || entry.channels.contains(c))
            .map(|(c, _)| *c)
            .collect();
        let histories = moving
            .into_iter()
            .filter_map(|c| Some((c, self.histories.remove(&c)?)))
            .collect();
        Some(MovedGuild {
            id,
            entry,
            channels,
            histories,
        })
    }

    /// Puts a guild taken from another store in.
    pub(super) fn put_guild(&mut self, moved: MovedGuild) {
        self.channels.extend(moved.channels);
        self.histories.extend(moved.histories);
        self.guilds.insert(moved.id, moved.entry);
    }

    /// `GUILD_UPDATE`: new settings (and roles, which it carries), keeping
    /// the `GUILD_CREATE`-only fields.
    fn update_guild(&mut self, update: &Guild, config: &CacheConfig) {
        let Some(entry) = self.guilds.get_mut(&update.id) else {
            return;
        };
        let mut guild = update.clone();
        if config.caches(Kind::Roles) && !guild.roles.is_empty() {
            entry.roles = role_map(mem::take(&mut guild.roles));
        }
        if config.caches(Kind::Guilds) {
            if let Some(old) = &entry.guild {
                guild.joined_at = old.joined_at;
                guild.large = old.large;
                guild.member_count = old.member_count;
            }
            guild.unavailable = entry.unavailable;
            entry.guild = Some(Arc::new(settings_of(guild)));
        }
    }

    /// A channel or thread created or changed.
    fn upsert_channel(&mut self, channel: &Channel, config: &CacheConfig, changes: &mut Changes) {
        if !config.caches(Kind::Channels) {
            return;
        }
        let mut channel = channel.clone();
        if channel.guild_id.is_none() {
            channel.guild_id = self.channels.get(&channel.id).and_then(|c| c.guild_id);
        }
        if let Some(entry) = channel.guild_id.and_then(|g| self.guilds.get_mut(&g)) {
            entry.channels.insert(channel.id);
        }
        changes.channels_added.push(channel.id);
        self.channels.insert(channel.id, Arc::new(channel));
    }

    /// A channel or thread deleted: it goes with its history, and a
    /// channel's threads with it.
    fn delete_channel(&mut self, id: ChannelId, guild: Option<GuildId>, changes: &mut Changes) {
        let guild = guild.or_else(|| self.channels.get(&id).and_then(|c| c.guild_id));
        let mut gone = vec![id];
        if let Some(entry) = guild.and_then(|g| self.guilds.get(&g)) {
            gone.extend(entry.channels.iter().copied().filter(|c| {
                self.channels
                    .get(c)
                    .is_some_and(|t| t.kind.is_thread() && t.parent_id == Some(id))
            }));
        }
        for channel in gone {
            if let Some(entry) = guild.and_then(|g| self.guilds.get_mut(&g)) {
                entry.channels.remove(&channel);
            }
            self.drop_channel(channel, changes);
        }
    }

    /// Forgets channel `id` and its history.
    fn drop_channel(&mut self, id: ChannelId, changes: &mut Changes) {
        self.channels.remove(&id);
        self.histories.remove(&id);
        changes.channels_removed.push(id);
    }

    /// A role created or changed.
    fn upsert_role(&mut self, guild: GuildId, role: &Role, config: &CacheConfig) {
        if !config.caches(Kind::Roles) {
            return;
        }
        if let Some(entry) = self.guilds.get_mut(&guild) {
            entry.roles.insert(role.id, Arc::new(role.clone()));
        }
    }

    /// One member more (`joined`) or less in the guild's `member_count`.
    fn count_member(&mut self, guild: GuildId, config: &CacheConfig, joined: bool) {
        if !config.caches(Kind::Guilds) {
            return;
        }
        let Some(stored) = self.guilds.get_mut(&guild).and_then(|e| e.guild.as_mut()) else {
            return;
        };
        if let Some(count) = Arc::make_mut(stored).member_count.as_mut() {
            *count = if joined {
                count.saturating_add(1)
            } else {
                count.saturating_sub(1)
            };
        }
    }

    /// Whether guild `entry` may keep member `user` (already kept, or
    /// under the bound).
    fn has_room(entry: &GuildEntry, user: UserId, config: &CacheConfig) -> bool {
        entry.members.contains_key(&user)
            || config
                .members_per_guild_bound()
                .is_none_or(|bound| entry.members.len() < bound)
    }

    /// A member joined or was listed in a chunk.
    fn add_member(&mut self, guild: GuildId, member: &Member, config: &CacheConfig) {
        if !config.caches(Kind::Members) {
            return;
        }
        let (Some(entry), Some(user)) = (self.guilds.get_mut(&guild), member.user_id()) else {
            return;
        };
        if Self::has_room(entry, user, config) {
            entry.members.insert(user, Arc::new(member.clone()));
        }
    }

    /// `GUILD_MEMBER_UPDATE`: merges what it carries into the kept member
    /// (or adds it, within the bound). Fields it sends always (roles, user,
    /// nick, avatars, timeout, boost) are replaced; optional ones only when
    /// present.
    fn update_member(&mut self, update: &GuildMemberUpdate, config: &CacheConfig) {
        if !config.caches(Kind::Members) {
            return;
        }
        let Some(entry) = self.guilds.get_mut(&update.guild_id) else {
            return;
        };
        let user = update.user.id;
        if !Self::has_room(entry, user, config) {
            return;
        }
        let mut member = entry
            .members
            .get(&user)
            .map(|m| Member::clone(m))
            .unwrap_or_default();
        member.user = Some(update.user.clone());
        member.roles.clone_from(&update.roles);
        member.nick.clone_from(&update.nick);
        member.avatar.clone_from(&update.avatar);
        member.banner.clone_from(&update.banner);
        member.joined_at = update.joined_at.or(member.joined_at);
        member.premium_since = update.premium_since;
        member.communication_disabled_until = update.communication_disabled_until;
        member.deaf = update.deaf.unwrap_or(member.deaf);
        member.mute = update.mute.unwrap_or(member.mute);
        member.pending = update.pending.unwrap_or(member.pending);
        member.flags = update.flags.unwrap_or(member.flags);
        entry.members.insert(user, Arc::new(member));
    }

    /// Messages deleted from `channel`.
    fn delete_messages(&mut self, channel: ChannelId, ids: &[MessageId]) {
        if let Some(history) = self.histories.get_mut(&channel) {
            history.remove(ids);
        }
    }

    /// A message sent: appended to its channel's history.
    fn add_message(&mut self, message: &Message, config: &CacheConfig, changes: &mut Changes) {
        if !config.caches(Kind::Messages) {
            return;
        }
        let channel = message.channel_id;
        let history = self.histories.entry(channel).or_insert_with(|| {
            changes.channels_added.push(channel);
            History::new(message.guild_id)
        });
        if history.guild.is_none() {
            history.guild = message.guild_id;
        }
        history.push(message.clone(), config.messages_per_channel_bound());
    }
}
