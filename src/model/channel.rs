//! Channels: guild channels, threads, DMs, and their permission overwrites.

use serde::{Deserialize, Serialize};

use super::id::raw_snowflake;
use super::{
    ApplicationId, ChannelId, EmojiId, GuildId, ImageHash, MessageId, Permissions, RoleId, TagId,
    Timestamp, User, UserId,
};

/// A guild channel, thread, DM or group DM.
///
/// Only `id` and `type` are always present; which other fields are sent
/// depends on the channel type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// The channel's id.
    pub id: ChannelId,
    /// What kind of channel this is.
    #[serde(rename = "type")]
    pub kind: ChannelType,
    /// The guild, for guild channels (often missing inside `GUILD_CREATE`).
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// Sort position.
    #[serde(default)]
    pub position: Option<i32>,
    /// Explicit permission overwrites for members and roles.
    #[serde(default)]
    pub permission_overwrites: Vec<PermissionOverwrite>,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
    /// The topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// Whether the channel is age-restricted.
    #[serde(default)]
    pub nsfw: bool,
    /// The last message sent (it may no longer exist).
    #[serde(default)]
    pub last_message_id: Option<MessageId>,
    /// Voice bitrate in bits per second.
    #[serde(default)]
    pub bitrate: Option<u32>,
    /// Voice user limit (0: none).
    #[serde(default)]
    pub user_limit: Option<u32>,
    /// Slow-mode delay in seconds.
    #[serde(default)]
    pub rate_limit_per_user: Option<u32>,
    /// The recipients of a DM.
    #[serde(default)]
    pub recipients: Vec<User>,
    /// Group DM icon hash.
    #[serde(default)]
    pub icon: Option<ImageHash>,
    /// Creator of a group DM or thread.
    #[serde(default)]
    pub owner_id: Option<UserId>,
    /// Application that created a group DM.
    #[serde(default)]
    pub application_id: Option<ApplicationId>,
    /// The category of a channel, or the parent channel of a thread.
    #[serde(default)]
    pub parent_id: Option<ChannelId>,
    /// When the last message was pinned.
    #[serde(default)]
    pub last_pin_timestamp: Option<Timestamp>,
    /// Voice region id (`None`: automatic).
    #[serde(default)]
    pub rtc_region: Option<String>,
    /// Camera video quality mode (1 auto, 2 full).
    #[serde(default)]
    pub video_quality_mode: Option<u8>,
    /// Approximate message count of a thread.
    #[serde(default)]
    pub message_count: Option<u32>,
    /// Approximate member count of a thread (stops at 50).
    #[serde(default)]
    pub member_count: Option<u32>,
    /// Thread state.
    #[serde(default)]
    pub thread_metadata: Option<ThreadMetadata>,
    /// Default auto-archive duration for new threads, in minutes.
    #[serde(default)]
    pub default_auto_archive_duration: Option<u32>,
    /// The invoking user's permissions here (in interactions).
    #[serde(default)]
    pub permissions: Option<Permissions>,
    /// [Channel flags](https://discord.com/developers/docs/resources/channel#channel-object-channel-flags).
    #[serde(default)]
    pub flags: u64,
    /// Messages ever sent in a thread.
    #[serde(default)]
    pub total_message_sent: Option<u64>,
    /// Tags that threads of a forum or media channel can have.
    #[serde(default)]
    pub available_tags: Vec<ForumTag>,
    /// Tags applied to a forum thread.
    #[serde(default)]
    pub applied_tags: Vec<TagId>,
    /// Initial slow-mode for new threads.
    #[serde(default)]
    pub default_thread_rate_limit_per_user: Option<u32>,
}

int_enum! {
    /// The kind of a [`Channel`].
    pub enum ChannelType: u8 {
        /// A text channel in a guild.
        GuildText = 0,
        /// A direct message between two users.
        Dm = 1,
        /// A voice channel in a guild.
        GuildVoice = 2,
        /// A direct message between several users.
        GroupDm = 3,
        /// A category containing up to 50 channels.
        GuildCategory = 4,
        /// A channel other guilds can follow.
        GuildAnnouncement = 5,
        /// A thread in an announcement channel.
        AnnouncementThread = 10,
        /// A public thread in a text or forum channel.
        PublicThread = 11,
        /// A private thread in a text channel.
        PrivateThread = 12,
        /// A stage voice channel.
        GuildStageVoice = 13,
        /// A hub directory listing.
        GuildDirectory = 14,
        /// A channel holding only threads.
        GuildForum = 15,
        /// A channel holding only threads, media-first.
        GuildMedia = 16,
    }
}

impl ChannelType {
    /// Whether this is a thread type.
    pub const fn is_thread(self) -> bool {
        matches!(
            self,
            Self::AnnouncementThread | Self::PublicThread | Self::PrivateThread
        )
    }
}

/// Permissions granted and denied to a role or member in one channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionOverwrite {
    /// The role or user id; see [`role_id`](Self::role_id) and
    /// [`user_id`](Self::user_id).
    #[serde(with = "raw_snowflake")]
    pub id: u64,
    /// Whether `id` is a role or a member.
    #[serde(rename = "type")]
    pub kind: OverwriteType,
    /// Permissions granted.
    #[serde(default)]
    pub allow: Permissions,
    /// Permissions denied.
    #[serde(default)]
    pub deny: Permissions,
}

impl PermissionOverwrite {
    /// The role, if this overwrite is for a role.
    pub const fn role_id(&self) -> Option<RoleId> {
        match self.kind {
            OverwriteType::Role => Some(RoleId(self.id)),
            _ => None,
        }
    }

    /// The user, if this overwrite is for a member.
    pub const fn user_id(&self) -> Option<UserId> {
        match self.kind {
            OverwriteType::Member => Some(UserId(self.id)),
            _ => None,
        }
    }
}

int_enum! {
    /// Whom a [`PermissionOverwrite`] applies to.
    pub enum OverwriteType: u8 {
        /// A role.
        Role = 0,
        /// A member.
        Member = 1,
    }
}

/// Thread-specific state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadMetadata {
    /// Whether the thread is archived.
    #[serde(default)]
    pub archived: bool,
    /// Minutes of inactivity before the thread is archived.
    #[serde(default)]
    pub auto_archive_duration: u32,
    /// When `archived` last changed.
    #[serde(default)]
    pub archive_timestamp: Option<Timestamp>,
    /// Whether only moderators can unarchive it.
    #[serde(default)]
    pub locked: bool,
    /// Whether non-moderators can add others (private threads).
    #[serde(default)]
    pub invitable: Option<bool>,
    /// When the thread was created (threads after 2022-01-09).
    #[serde(default)]
    pub create_timestamp: Option<Timestamp>,
}

/// A tag threads of a forum or media channel can carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForumTag {
    /// The tag's id.
    pub id: TagId,
    /// The tag's name.
    #[serde(default)]
    pub name: String,
    /// Whether only moderators can apply it.
    #[serde(default)]
    pub moderated: bool,
    /// Custom emoji of the tag.
    #[serde(default)]
    pub emoji_id: Option<EmojiId>,
    /// Unicode emoji of the tag.
    #[serde(default)]
    pub emoji_name: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn text_channel_with_overwrites() {
        let json = r#"{
            "id": "41771983423143937",
            "guild_id": "41771983423143937",
            "name": "general",
            "type": 0,
            "position": 6,
            "permission_overwrites": [
                {"id": "41771983423143936", "type": 0, "allow": "0", "deny": "1024"},
                {"id": 80351110224678912, "type": 1, "allow": "2048", "deny": "0"}
            ],
            "rate_limit_per_user": 2,
            "nsfw": true,
            "topic": "24/7 chat about how to gank Mike #2",
            "last_message_id": "155117677105512449",
            "parent_id": "399942396007890945",
            "default_auto_archive_duration": 60
        }"#;
        let channel: Channel = serde_json::from_str(json).unwrap();
        assert_eq!(channel.kind, ChannelType::GuildText);
        let [everyone, member] = channel.permission_overwrites[..] else {
            panic!("two overwrites")
        };
        assert_eq!(everyone.role_id(), Some(RoleId(41771983423143936)));
        assert!(everyone.deny.contains(Permissions::VIEW_CHANNEL));
        assert_eq!(member.user_id(), Some(UserId(80351110224678912)));
        assert_eq!(member.role_id(), None);
        let again: Channel =
            serde_json::from_str(&serde_json::to_string(&channel).unwrap()).unwrap();
        assert_eq!(again, channel);
    }

    #[test]
    fn thread_and_unknown_type() {
        let json = r#"{
            "id": "41771983423143937", "guild_id": "41771983423143937", "parent_id": "41771983423143937",
            "owner_id": "41771983423143937", "name": "don't buy dota-2", "type": 11,
            "last_message_id": "155117677105512449", "message_count": 1, "member_count": 5,
            "rate_limit_per_user": 2,
            "thread_metadata": {"archived": false, "auto_archive_duration": 1440,
                "archive_timestamp": "2021-04-12T23:40:39.855793+00:00", "locked": false},
            "total_message_sent": 1
        }"#;
        let thread: Channel = serde_json::from_str(json).unwrap();
        assert!(thread.kind.is_thread());
        assert_eq!(thread.thread_metadata.unwrap().auto_archive_duration, 1440);
        let future: Channel = serde_json::from_str(r#"{"id":"1","type":99}"#).unwrap();
        assert_eq!(future.kind, ChannelType::Unknown(99));
        assert_eq!(serde_json::to_value(future.kind).unwrap(), 99);
    }
}
