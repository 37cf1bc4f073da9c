//! Serde models of Discord data and gateway dispatch events.
//!
//! Snowflakes are typed ids ([`GuildId`], [`ChannelId`], ...) that accept
//! strings and integers. Unknown fields are ignored and unknown enum values
//! are kept, so a new Discord field never breaks decoding.

mod id;

pub use id::{
    ApplicationId, AttachmentId, ChannelId, EmojiId, GuildId, InteractionId, MessageId, RoleId,
    Seq, SessionId, ShardId, UserId, WebhookId,
};
