//! Messages, and the small types only messages use (mentions, references,
//! nonces, sticker items).

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::macros::nullable;
use super::{
    ApplicationId, Attachment, Channel, ChannelId, ChannelType, Embed, GuildId, ImageHash, Member,
    MessageId, Reaction, RoleId, StickerId, Timestamp, User, UserId, WebhookId,
};

/// A message in a channel, with the extra fields of `MESSAGE_CREATE` and
/// `MESSAGE_UPDATE` (`guild_id`, `member`, members of `mentions`).
///
/// Without the message-content intent, `content`, `embeds` and
/// `attachments` are empty. Components, polls, snapshots and interaction
/// metadata are not decoded (they are skipped, not rejected).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// The channel it was sent in.
    pub channel_id: ChannelId,
    /// The guild it was sent in; missing for DMs and ephemeral messages.
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// The author. For webhook messages this is the webhook's id, name and
    /// avatar, not a real user (see `webhook_id`).
    pub author: User,
    /// The author's guild member (partial, without `user`); missing in DMs,
    /// for webhooks and ephemeral messages.
    #[serde(default)]
    pub member: Option<Member>,
    /// The text.
    #[serde(default)]
    pub content: String,
    /// When it was sent.
    pub timestamp: Timestamp,
    /// When it was last edited.
    #[serde(default)]
    pub edited_timestamp: Option<Timestamp>,
    /// Whether it was sent as text-to-speech.
    #[serde(default)]
    pub tts: bool,
    /// Whether it mentions `@everyone` or `@here`.
    #[serde(default)]
    pub mention_everyone: bool,
    /// Users mentioned.
    #[serde(default)]
    pub mentions: Vec<Mention>,
    /// Roles mentioned.
    #[serde(default)]
    pub mention_roles: Vec<RoleId>,
    /// Channels mentioned (crossposts only).
    #[serde(default)]
    pub mention_channels: Vec<ChannelMention>,
    /// Attached files.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Embedded content.
    #[serde(default)]
    pub embeds: Vec<Embed>,
    /// Reactions.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    /// The nonce the sender chose, for confirming a send.
    #[serde(default)]
    pub nonce: Option<Nonce>,
    /// Whether it is pinned.
    #[serde(default)]
    pub pinned: bool,
    /// The webhook that sent it.
    #[serde(default)]
    pub webhook_id: Option<WebhookId>,
    /// What kind of message this is.
    #[serde(rename = "type", default)]
    pub kind: MessageType,
    /// The application, for interaction responses and application webhooks.
    #[serde(default)]
    pub application_id: Option<ApplicationId>,
    /// Message flags.
    #[serde(default)]
    pub flags: MessageFlags,
    /// The source of a reply, crosspost, pin or forward.
    #[serde(default)]
    pub message_reference: Option<MessageReference>,
    /// The message replied to. `None`: not sent (Discord did not look it
    /// up); `Some(None)`: sent as `null`, the message was deleted.
    #[serde(default, with = "nullable", skip_serializing_if = "Option::is_none")]
    pub referenced_message: Option<Option<Box<Message>>>,
    /// The thread started from this message.
    #[serde(default)]
    pub thread: Option<Box<Channel>>,
    /// Stickers sent with the message.
    #[serde(default)]
    pub sticker_items: Vec<StickerItem>,
    /// Approximate position in a thread.
    #[serde(default)]
    pub position: Option<u64>,
}

impl Message {
    /// Whether a webhook sent this message.
    pub fn is_webhook(&self) -> bool {
        self.webhook_id.is_some()
    }

    /// Whether the message mentions `user` directly.
    pub fn mentions_user(&self, user: UserId) -> bool {
        self.mentions.iter().any(|m| m.id == user)
    }
}

/// A user mentioned in a message, with their partial guild member in guild
/// messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    /// The user's id.
    pub id: UserId,
    /// The username.
    #[serde(default)]
    pub username: String,
    /// The display name, if set.
    #[serde(default)]
    pub global_name: Option<String>,
    /// Avatar hash.
    #[serde(default)]
    pub avatar: Option<ImageHash>,
    /// Whether the user is a bot.
    #[serde(default)]
    pub bot: bool,
    /// Public user flags.
    #[serde(default)]
    pub public_flags: Option<u64>,
    /// The user's partial guild member (guild messages).
    #[serde(default)]
    pub member: Option<Member>,
}

/// A channel mentioned in a crossposted message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelMention {
    /// The channel.
    pub id: ChannelId,
    /// Its guild.
    pub guild_id: GuildId,
    /// Its type.
    #[serde(rename = "type", default)]
    pub kind: ChannelType,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// Where a reply, crosspost, pin or forward points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReference {
    /// Reply-style reference or forward.
    #[serde(rename = "type", default)]
    pub kind: MessageReferenceType,
    /// The referenced message.
    #[serde(default)]
    pub message_id: Option<MessageId>,
    /// Its channel.
    #[serde(default)]
    pub channel_id: Option<ChannelId>,
    /// Its guild.
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// Whether sending fails if it does not exist (outgoing messages).
    #[serde(default)]
    pub fail_if_not_exists: Option<bool>,
}

int_enum! {
    /// The kind of a [`MessageReference`].
    pub enum MessageReferenceType: u8 {
        /// A reply, crosspost, pin or similar.
        Default = 0,
        /// A forwarded message.
        Forward = 1,
    }
}

/// A sticker sent with a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StickerItem {
    /// The sticker's id.
    pub id: StickerId,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its image format.
    #[serde(default)]
    pub format_type: StickerFormatType,
}

int_enum! {
    /// The image format of a sticker.
    pub enum StickerFormatType: u8 {
        /// PNG.
        Png = 1,
        /// Animated PNG.
        Apng = 2,
        /// Lottie JSON.
        Lottie = 3,
        /// GIF.
        Gif = 4,
    }
}

int_enum! {
    /// What kind of message a [`Message`] is.
    pub enum MessageType: u8 {
        /// A normal message.
        Default = 0,
        /// A user was added to a group DM.
        RecipientAdd = 1,
        /// A user was removed from a group DM.
        RecipientRemove = 2,
        /// A call.
        Call = 3,
        /// The channel name changed.
        ChannelNameChange = 4,
        /// The channel icon changed.
        ChannelIconChange = 5,
        /// A message was pinned.
        ChannelPinnedMessage = 6,
        /// A member joined.
        UserJoin = 7,
        /// The guild was boosted.
        GuildBoost = 8,
        /// The guild reached boost tier 1.
        GuildBoostTier1 = 9,
        /// The guild reached boost tier 2.
        GuildBoostTier2 = 10,
        /// The guild reached boost tier 3.
        GuildBoostTier3 = 11,
        /// A channel was followed.
        ChannelFollowAdd = 12,
        /// The guild was removed from discovery.
        GuildDiscoveryDisqualified = 14,
        /// The guild is back in discovery.
        GuildDiscoveryRequalified = 15,
        /// First discovery grace-period warning.
        GuildDiscoveryGracePeriodInitialWarning = 16,
        /// Final discovery grace-period warning.
        GuildDiscoveryGracePeriodFinalWarning = 17,
        /// A thread was created.
        ThreadCreated = 18,
        /// A reply.
        Reply = 19,
        /// A slash command response.
        ChatInputCommand = 20,
        /// The first message of a thread.
        ThreadStarterMessage = 21,
        /// Invite reminder.
        GuildInviteReminder = 22,
        /// A context menu command response.
        ContextMenuCommand = 23,
        /// An auto moderation action.
        AutoModerationAction = 24,
        /// A role subscription purchase.
        RoleSubscriptionPurchase = 25,
        /// Premium upsell for an interaction.
        InteractionPremiumUpsell = 26,
        /// A stage started.
        StageStart = 27,
        /// A stage ended.
        StageEnd = 28,
        /// A stage speaker changed.
        StageSpeaker = 29,
        /// A stage topic changed.
        StageTopic = 31,
        /// An application premium subscription.
        GuildApplicationPremiumSubscription = 32,
        /// Incident alert mode enabled.
        GuildIncidentAlertModeEnabled = 36,
        /// Incident alert mode disabled.
        GuildIncidentAlertModeDisabled = 37,
        /// A raid was reported.
        GuildIncidentReportRaid = 38,
        /// A raid report was a false alarm.
        GuildIncidentReportFalseAlarm = 39,
        /// A purchase notification.
        PurchaseNotification = 44,
        /// A poll's results.
        PollResult = 46,
    }
}

bitfield! {
    /// [Message flags](https://discord.com/developers/docs/resources/message#message-object-message-flags).
    pub struct MessageFlags(as_int) {
        /// Published to following channels.
        const CROSSPOSTED = 1 << 0;
        /// Came from another channel through following.
        const IS_CROSSPOST = 1 << 1;
        /// Embeds are hidden.
        const SUPPRESS_EMBEDS = 1 << 2;
        /// The crossposted source was deleted.
        const SOURCE_MESSAGE_DELETED = 1 << 3;
        /// From the urgent message system.
        const URGENT = 1 << 4;
        /// Has a thread with the same id.
        const HAS_THREAD = 1 << 5;
        /// Visible only to the interaction's user.
        const EPHEMERAL = 1 << 6;
        /// An interaction response still "thinking".
        const LOADING = 1 << 7;
        /// Some roles could not be mentioned into the thread.
        const FAILED_TO_MENTION_SOME_ROLES_IN_THREAD = 1 << 8;
        /// Sent without notifications.
        const SUPPRESS_NOTIFICATIONS = 1 << 12;
        /// A voice message.
        const IS_VOICE_MESSAGE = 1 << 13;
        /// Has a forwarded snapshot.
        const HAS_SNAPSHOT = 1 << 14;
        /// Uses components v2.
        const IS_COMPONENTS_V2 = 1 << 15;
    }
}

/// A message nonce: Discord passes back whichever the sender used.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Nonce {
    /// An integer nonce.
    Integer(i64),
    /// A string nonce (also integers that do not fit an `i64`).
    String(String),
}

impl Serialize for Nonce {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Integer(n) => serializer.serialize_i64(*n),
            Self::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for Nonce {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NonceVisitor)
    }
}

/// Reads a [`Nonce`] from a string or an integer.
struct NonceVisitor;

impl Visitor<'_> for NonceVisitor {
    type Value = Nonce;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a nonce as a string or an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Nonce, E> {
        Ok(Nonce::Integer(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Nonce, E> {
        Ok(i64::try_from(v).map_or_else(|_| Nonce::String(v.to_string()), Nonce::Integer))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Nonce, E> {
        Ok(Nonce::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Nonce, E> {
        Ok(Nonce::String(v))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The docs' example message, plus a reply.
    const EXAMPLE: &str = r#"{
        "reactions": [{"count": 1, "count_details": {"burst": 0, "normal": 1}, "me": false,
                       "me_burst": false, "emoji": {"id": null, "name": "🔥"}, "burst_colors": []}],
        "attachments": [], "tts": false, "embeds": [],
        "timestamp": "2017-07-11T17:27:07.299000+00:00", "mention_everyone": false,
        "id": "334385199974967042", "pinned": false, "edited_timestamp": null,
        "author": {"username": "Mason", "discriminator": "9999", "id": "53908099506183680",
                   "avatar": "a_bab14f271d565501444b2ca3be944b25"},
        "mention_roles": [], "content": "Supa Hot", "channel_id": "290926798999357250",
        "mentions": [], "type": 0
    }"#;

    #[test]
    fn example_message() {
        let msg: Message = serde_json::from_str(EXAMPLE).unwrap();
        assert_eq!(msg.id, MessageId(334385199974967042));
        assert_eq!(msg.kind, MessageType::Default);
        assert_eq!(msg.reactions[0].emoji.name.as_deref(), Some("🔥"));
        assert_eq!(msg.referenced_message, None);
        assert!(msg.author.avatar.as_ref().unwrap().is_animated());
        let again: Message = serde_json::from_str(&serde_json::to_string(&msg).unwrap()).unwrap();
        assert_eq!(again, msg);
    }

    #[test]
    fn referenced_message_null_vs_missing() {
        let deleted = EXAMPLE.replacen(
            r#""type": 0"#,
            r#""type": 19, "referenced_message": null"#,
            1,
        );
        let msg: Message = serde_json::from_str(&deleted).unwrap();
        assert_eq!(msg.kind, MessageType::Reply);
        assert_eq!(msg.referenced_message, Some(None));
        let json = serde_json::to_string(&msg).unwrap();
        assert!(json.contains(r#""referenced_message":null"#));
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), msg);

        let inner = EXAMPLE.to_owned();
        let reply = EXAMPLE.replacen(
            r#""type": 0"#,
            &format!(r#""type": 19, "referenced_message": {inner}"#),
            1,
        );
        let msg: Message = serde_json::from_str(&reply).unwrap();
        let referenced = msg.referenced_message.unwrap().unwrap();
        assert_eq!(referenced.content, "Supa Hot");
    }

    #[test]
    fn nonce_forms() {
        assert_eq!(
            serde_json::from_str::<Nonce>("42").unwrap(),
            Nonce::Integer(42)
        );
        assert_eq!(
            serde_json::from_str::<Nonce>("-7").unwrap(),
            Nonce::Integer(-7)
        );
        assert_eq!(
            serde_json::from_str::<Nonce>("\"1234567890\"").unwrap(),
            Nonce::String("1234567890".into())
        );
        assert_eq!(
            serde_json::from_str::<Nonce>("18446744073709551615").unwrap(),
            Nonce::String("18446744073709551615".into())
        );
        assert_eq!(serde_json::to_string(&Nonce::Integer(5)).unwrap(), "5");
    }

    #[test]
    fn flags_and_unknown_type() {
        let json = EXAMPLE.replacen(r#""type": 0"#, r#""type": 250, "flags": 4100"#, 1);
        let msg: Message = serde_json::from_str(&json).unwrap();
        assert_eq!(msg.kind, MessageType::Unknown(250));
        assert!(msg.flags.contains(MessageFlags::SUPPRESS_EMBEDS));
        assert!(msg.flags.contains(MessageFlags::SUPPRESS_NOTIFICATIONS));
        assert!(!msg.flags.contains(MessageFlags::EPHEMERAL));
        let value = serde_json::to_value(&msg).unwrap();
        assert_eq!(value["type"], 250);
        assert_eq!(value["flags"], 4100);
    }
}
