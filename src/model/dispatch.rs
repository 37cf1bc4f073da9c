//! The dispatch event types: one struct per `t` this library decodes.
//!
//! Events whose payload *is* a data object (`MESSAGE_CREATE` is a
//! [`Message`], `GUILD_CREATE` a [`Guild`]) wrap it and deref to it, so
//! `msg.content` works on an `Arc<MessageCreate>`. They are decoded without
//! `#[serde(flatten)]` (which buffers the whole object): the wrapper decodes
//! the inner type directly. Every event carries the [`DispatchMeta`] (shard
//! and sequence number) the gateway sets after decoding.
//!
//! This module is plain data: the gateway's `Event` and `DispatchEvent`
//! impls for these types, and the table registering them, live beside the
//! event registry in `gateway/events.rs`, so `model` imports nothing from
//! the layers above it.

use std::ops::{Deref, DerefMut};

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};

use super::{
    Channel, ChannelId, ChannelType, Guild, GuildId, ImageHash, Interaction, Member, Message,
    MessageId, PartialEmoji, Presence, ReactionType, Role, RoleId, Seq, ShardId, Timestamp, User,
    UserId, VoiceState, VoiceToken,
};

/// Which shard sent a dispatch, and its sequence number in that shard's
/// session.
///
/// Every dispatch type carries one in its `meta` field. It is not part of
/// the payload (`d`): the gateway sets it after decoding, through
/// `DispatchEvent::set_meta`, so a value decoded by hand has the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DispatchMeta {
    /// The shard that received the dispatch.
    pub shard: ShardId,
    /// The dispatch's sequence number (`s`).
    pub seq: Seq,
    /// How many times this dispatch has been delivered to this process:
    /// 0 for one from a local shard; from NATS
    /// (`shardbus::bridge::NatsBus`), the delivery count, more than 1 when
    /// the broker delivers it again after a failure or a crash, so a
    /// handler can be idempotent.
    pub attempt: u32,
}

/// Declares a dispatch event whose payload is one data object: a struct
/// holding it and the meta, decoding the object directly (no flatten),
/// with `Deref`/`DerefMut` to it, `From` it, and `into_inner`.
macro_rules! wrapper_event {
    ($(
        $(#[$doc:meta])*
        $ty:ident($field:ident: $inner:ty);
    )*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $ty {
            #[doc = concat!("The event's [`", stringify!($inner), "`].")]
            pub $field: $inner,
            /// Which shard and sequence number this came with.
            pub meta: DispatchMeta,
        }

        impl $ty {
            #[doc = concat!("The [`", stringify!($inner), "`], without the meta.")]
            pub fn into_inner(self) -> $inner {
                self.$field
            }
        }

        impl From<$inner> for $ty {
            fn from($field: $inner) -> Self {
                Self { $field, meta: DispatchMeta::default() }
            }
        }

        impl Deref for $ty {
            type Target = $inner;

            fn deref(&self) -> &$inner {
                &self.$field
            }
        }

        impl DerefMut for $ty {
            fn deref_mut(&mut self) -> &mut $inner {
                &mut self.$field
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$inner>::deserialize(deserializer).map(Self::from)
            }
        }
    )*};
}

wrapper_event! {
    /// `GUILD_CREATE`: a guild became available (lazily after Ready, after an
    /// outage, or on join), with its members, channels and presences. May be
    /// just `{id, unavailable: true}` during an outage.
    GuildCreate(guild: Guild);
    /// `GUILD_UPDATE`: a guild's settings changed (no members or channels).
    GuildUpdate(guild: Guild);
    /// `CHANNEL_CREATE`: a guild channel was created.
    ChannelCreate(channel: Channel);
    /// `CHANNEL_UPDATE`: a channel changed.
    ChannelUpdate(channel: Channel);
    /// `CHANNEL_DELETE`: a channel was deleted.
    ChannelDelete(channel: Channel);
    /// `MESSAGE_CREATE`: a message was sent.
    MessageCreate(message: Message);
    /// `MESSAGE_UPDATE`: a message was edited (the full message; `tts` is
    /// always false).
    MessageUpdate(message: Message);
    /// `PRESENCE_UPDATE`: a user's status, activities or user fields
    /// changed.
    PresenceUpdate(presence: Presence);
    /// `INTERACTION_CREATE`: a user used a command or component. The token
    /// is redacted in `Debug`.
    InteractionCreate(interaction: Interaction);
    /// `VOICE_STATE_UPDATE`: someone joined, left or moved voice channels,
    /// or changed mute state.
    VoiceStateUpdate(state: VoiceState);
}

/// `RESUMED`: a resume succeeded; the missed events were replayed before it.
/// Its payload carries nothing of use and is ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resumed {
    /// Which shard and sequence number this came with.
    pub meta: DispatchMeta,
}

impl<'de> Deserialize<'de> for Resumed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer).map(|_| Self::default())
    }
}

/// `GUILD_DELETE`: a guild became unavailable (`unavailable: true`), or the
/// user left or was removed from it (`unavailable: false`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct GuildDelete {
    /// The guild.
    pub id: GuildId,
    /// `true` for an outage; `false` (missing) when the user left or was
    /// removed.
    #[serde(default)]
    pub unavailable: bool,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `GUILD_MEMBER_ADD`: a user joined a guild. Derefs to the [`Member`]
/// (whose `user` is always present here).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuildMemberAdd {
    /// The guild joined.
    pub guild_id: GuildId,
    /// The new member.
    pub member: Member,
    /// Which shard and sequence number this came with.
    pub meta: DispatchMeta,
}

impl Deref for GuildMemberAdd {
    type Target = Member;

    fn deref(&self) -> &Member {
        &self.member
    }
}

impl DerefMut for GuildMemberAdd {
    fn deref_mut(&mut self) -> &mut Member {
        &mut self.member
    }
}

impl<'de> Deserialize<'de> for GuildMemberAdd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let member = Member::deserialize(deserializer)?;
        let guild_id = member
            .guild_id
            .ok_or_else(|| serde::de::Error::missing_field("guild_id"))?;
        Ok(Self {
            guild_id,
            member,
            meta: DispatchMeta::default(),
        })
    }
}

/// `GUILD_MEMBER_UPDATE`: a member's roles, nickname, avatar, timeout or
/// user changed.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct GuildMemberUpdate {
    /// The guild.
    pub guild_id: GuildId,
    /// The member's roles.
    #[serde(default)]
    pub roles: Vec<RoleId>,
    /// The user.
    pub user: User,
    /// Guild nickname.
    #[serde(default)]
    pub nick: Option<String>,
    /// Guild avatar hash.
    #[serde(default)]
    pub avatar: Option<ImageHash>,
    /// Guild banner hash.
    #[serde(default)]
    pub banner: Option<ImageHash>,
    /// When the user joined.
    #[serde(default)]
    pub joined_at: Option<Timestamp>,
    /// When the user started boosting.
    #[serde(default)]
    pub premium_since: Option<Timestamp>,
    /// Server-deafened.
    #[serde(default)]
    pub deaf: Option<bool>,
    /// Server-muted.
    #[serde(default)]
    pub mute: Option<bool>,
    /// Not yet past membership screening.
    #[serde(default)]
    pub pending: Option<bool>,
    /// When a timeout ends.
    #[serde(default)]
    pub communication_disabled_until: Option<Timestamp>,
    /// Guild member flags.
    #[serde(default)]
    pub flags: Option<u64>,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `GUILD_MEMBER_REMOVE`: a user left, was kicked or was banned.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct GuildMemberRemove {
    /// The guild.
    pub guild_id: GuildId,
    /// The user removed.
    pub user: User,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `GUILD_MEMBERS_CHUNK`: one chunk of the answer to a request-guild-members
/// command.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct GuildMembersChunk {
    /// The guild.
    pub guild_id: GuildId,
    /// Members of this chunk.
    #[serde(default)]
    pub members: Vec<Member>,
    /// This chunk's index, `0..chunk_count`.
    #[serde(default)]
    pub chunk_index: u32,
    /// How many chunks answer the request.
    #[serde(default)]
    pub chunk_count: u32,
    /// Requested user ids that are not members.
    #[serde(default)]
    pub not_found: Vec<UserId>,
    /// Presences of the members, if requested.
    #[serde(default)]
    pub presences: Vec<Presence>,
    /// The nonce of the request.
    #[serde(default)]
    pub nonce: Option<String>,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `MESSAGE_DELETE`: a message was deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct MessageDelete {
    /// The message.
    pub id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Its guild.
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `MESSAGE_REACTION_ADD`: a user reacted to a message.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MessageReactionAdd {
    /// Who reacted.
    pub user_id: UserId,
    /// The message's channel.
    pub channel_id: ChannelId,
    /// The message.
    pub message_id: MessageId,
    /// The guild.
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// Who reacted, as a guild member (guilds only).
    #[serde(default)]
    pub member: Option<Member>,
    /// The emoji.
    #[serde(default)]
    pub emoji: PartialEmoji,
    /// Who wrote the message.
    #[serde(default)]
    pub message_author_id: Option<UserId>,
    /// Whether it is a super reaction.
    #[serde(default)]
    pub burst: bool,
    /// Super-reaction colours, `#rrggbb`.
    #[serde(default)]
    pub burst_colors: Vec<String>,
    /// Normal or super reaction.
    #[serde(rename = "type", default)]
    pub kind: ReactionType,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `MESSAGE_REACTION_REMOVE`: a user removed a reaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MessageReactionRemove {
    /// Whose reaction.
    pub user_id: UserId,
    /// The message's channel.
    pub channel_id: ChannelId,
    /// The message.
    pub message_id: MessageId,
    /// The guild.
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// The emoji.
    #[serde(default)]
    pub emoji: PartialEmoji,
    /// Whether it was a super reaction.
    #[serde(default)]
    pub burst: bool,
    /// Normal or super reaction.
    #[serde(rename = "type", default)]
    pub kind: ReactionType,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `TYPING_START`: a user started typing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TypingStart {
    /// The channel.
    pub channel_id: ChannelId,
    /// The guild.
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// Who is typing.
    pub user_id: UserId,
    /// When they started, Unix seconds.
    #[serde(default)]
    pub timestamp: u64,
    /// Who is typing, as a guild member (guilds only).
    #[serde(default)]
    pub member: Option<Member>,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `VOICE_SERVER_UPDATE`: where to connect for voice in a guild. The token is
/// redacted in `Debug`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct VoiceServerUpdate {
    /// The voice connection token. Secret.
    pub token: VoiceToken,
    /// The guild.
    pub guild_id: GuildId,
    /// The voice server host; `None` while the server is being reallocated
    /// (disconnect and wait for the next update).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

wrapper_event! {
    /// `THREAD_CREATE`: a thread was created, or the current user was added
    /// to a private thread.
    ThreadCreate(thread: Channel);
    /// `THREAD_UPDATE`: a thread changed (it is not sent when only
    /// `last_message_id` changes).
    ThreadUpdate(thread: Channel);
}

/// `THREAD_DELETE`: a thread was deleted. Carries only its ids and type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct ThreadDelete {
    /// The thread.
    pub id: ChannelId,
    /// Its guild.
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// The channel it was in.
    #[serde(default)]
    pub parent_id: Option<ChannelId>,
    /// The thread's type.
    #[serde(rename = "type", default)]
    pub kind: ChannelType,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `GUILD_ROLE_CREATE`: a role was created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GuildRoleCreate {
    /// The guild.
    pub guild_id: GuildId,
    /// The new role.
    pub role: Role,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `GUILD_ROLE_UPDATE`: a role changed (the whole role is sent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GuildRoleUpdate {
    /// The guild.
    pub guild_id: GuildId,
    /// The role, as it is now.
    pub role: Role,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `GUILD_ROLE_DELETE`: a role was deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct GuildRoleDelete {
    /// The guild.
    pub guild_id: GuildId,
    /// The deleted role.
    pub role_id: RoleId,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// `MESSAGE_DELETE_BULK`: several messages were deleted at once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MessageDeleteBulk {
    /// The deleted messages.
    #[serde(default)]
    pub ids: Vec<MessageId>,
    /// Their channel.
    pub channel_id: ChannelId,
    /// Their guild.
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}
