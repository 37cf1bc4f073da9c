//! Serde models of Discord data and gateway dispatch events.
//!
//! Two layers live here:
//!
//! - **Data types**, one concept per file: [`User`], [`Guild`], [`Channel`],
//!   [`Member`], [`Message`] (with [`Attachment`], [`Embed`], [`Reaction`]),
//!   [`Role`], [`Emoji`], [`Presence`], [`Interaction`], [`VoiceState`].
//!   They are `Serialize + Deserialize`, so a state cache or a bridge can
//!   store and forward them.
//! - **Dispatch events**, one struct per dispatch name (`t`): [`Ready`],
//!   [`MessageCreate`], [`GuildCreate`], [`RateLimited`], ... Each carries the
//!   [`DispatchMeta`] (shard and sequence number). Events whose payload is a
//!   data object deref to it: `msg.content` works on an `Arc<MessageCreate>`.
//!
//! This module sits below the gateway and imports nothing from it (nor from
//! `shard` or `session`): it is plain data. The gateway implements its
//! [`Event`](crate::gateway::Event) and
//! [`DispatchEvent`](crate::gateway::DispatchEvent) traits for every
//! dispatch type here and registers them, beside its event registry.
//!
//! Decoding is lenient where Discord changes things and strict where it
//! matters:
//!
//! - Snowflakes are typed ids ([`GuildId`], [`ChannelId`], ...) that accept
//!   strings and integers, and serialize as strings.
//! - Unknown fields are ignored, so a new Discord field never breaks
//!   decoding; fields this library does not model (components, polls,
//!   stickers of guilds, ...) are skipped the same way.
//! - Integer enums keep unknown values (`ChannelType::Unknown(99)`), and
//!   [`Status`] keeps unknown strings.
//! - Optional and nullable fields are `Option` and default when missing; the
//!   one place where missing and `null` differ,
//!   [`Message::referenced_message`], is an `Option<Option<_>>`.
//! - Timestamps ([`Timestamp`]), image hashes ([`ImageHash`]) and bitfields
//!   ([`Permissions`], [`MessageFlags`]) are parsed into small values without
//!   an allocation.
//! - Secrets ([`InteractionToken`], [`VoiceToken`]) are redacted in `Debug`.
//!
//! # Examples
//!
//! ```
//! use shardbus::gateway::{DispatchEvent, EventType};
//! use shardbus::model::{MessageCreate, MessageType};
//!
//! let d = r#"{
//!     "id": "334385199974967042", "channel_id": "290926798999357250",
//!     "guild_id": "41771983423143937", "type": 0, "content": "!ping",
//!     "author": {"id": "53908099506183680", "username": "Mason", "discriminator": "0",
//!                "avatar": null, "brand_new_field": [1, 2, 3]},
//!     "timestamp": "2017-07-11T17:27:07.299000+00:00", "edited_timestamp": null,
//!     "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
//!     "attachments": [], "embeds": [], "pinned": false
//! }"#;
//! let msg: MessageCreate = serde_json::from_str(d).unwrap();
//! assert_eq!(msg.content, "!ping"); // derefs to `Message`
//! assert_eq!(msg.kind, MessageType::Default);
//! assert_eq!(MessageCreate::EVENT_TYPE, EventType::MESSAGE_CREATE);
//! ```

#[macro_use]
mod macros;

mod attachment;
mod channel;
mod command;
mod dispatch;
mod embed;
mod emoji;
mod gateway_bot;
mod guild;
mod id;
mod image;
mod interaction;
mod member;
mod message;
mod permissions;
mod presence;
mod rate_limited;
mod reaction;
mod ready;
mod role;
mod secret;
mod timestamp;
mod token;
mod user;
mod voice;

pub use attachment::Attachment;
pub use channel::{
    Channel, ChannelType, ForumTag, OverwriteType, PermissionOverwrite, ThreadMetadata,
};
pub use command::{
    ApplicationCommand, CommandOption, CommandOptionChoice, CommandOptionType, CommandType,
};
pub use dispatch::{
    ChannelCreate, ChannelDelete, ChannelUpdate, DispatchMeta, GuildCreate, GuildDelete,
    GuildMemberAdd, GuildMemberRemove, GuildMemberUpdate, GuildMembersChunk, GuildRoleCreate,
    GuildRoleDelete, GuildRoleUpdate, GuildUpdate, InteractionCreate, MessageCreate, MessageDelete,
    MessageDeleteBulk, MessageReactionAdd, MessageReactionRemove, MessageUpdate, PresenceUpdate,
    Resumed, ThreadCreate, ThreadDelete, ThreadUpdate, TypingStart, VoiceServerUpdate,
    VoiceStateUpdate,
};
pub use embed::{Embed, EmbedAuthor, EmbedField, EmbedFooter, EmbedMedia, EmbedProvider};
pub use emoji::{Emoji, PartialEmoji};
pub use gateway_bot::{GatewayBot, SessionStartLimit};
pub use guild::{
    DefaultMessageNotificationLevel, ExplicitContentFilter, Guild, MfaLevel, NsfwLevel,
    PremiumTier, UnavailableGuild, VerificationLevel,
};
pub use id::{
    ApplicationId, AttachmentId, ChannelId, CommandId, EmojiId, GuildId, IntegrationId,
    InteractionId, MessageId, RoleId, Seq, SessionId, ShardId, StickerId, TagId, UserId, WebhookId,
};
pub use image::ImageHash;
pub use interaction::{
    CommandData, CommandDataOption, ComponentData, Interaction, InteractionContextType,
    InteractionType, ModalSubmitData,
};
pub use member::Member;
pub use message::{
    ChannelMention, Mention, Message, MessageFlags, MessageReference, MessageReferenceType,
    MessageType, Nonce, StickerFormatType, StickerItem,
};
pub use permissions::Permissions;
pub use presence::{
    Activity, ActivityEmoji, ActivityTimestamps, ActivityType, ClientStatus, Presence, Status,
};
pub use rate_limited::{RateLimitMeta, RateLimited};
pub use reaction::{Reaction, ReactionCountDetails, ReactionType};
pub use ready::{PartialApplication, Ready};
pub use role::{Role, RoleColors, RoleTags};
pub use secret::{InteractionToken, VoiceToken};
pub use timestamp::{Timestamp, TimestampParseError};
pub use token::Token;
pub use user::{PartialUser, PremiumType, User};
pub use voice::VoiceState;
