//! Guilds (servers), as sent in `GUILD_CREATE` and `GUILD_UPDATE`.

use serde::{Deserialize, Serialize};

use super::{
    ApplicationId, Channel, ChannelId, Emoji, GuildId, ImageHash, Member, Presence, Role,
    Timestamp, UserId, VoiceState,
};

/// A guild.
///
/// `GUILD_CREATE` adds the fields from `joined_at` down (members, channels,
/// presences, ...); `GUILD_UPDATE` leaves them empty. During an outage a
/// `GUILD_CREATE` may carry only `id` and `unavailable: true`: every other
/// field is defaulted, so check [`is_available`](Self::is_available) before
/// trusting them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guild {
    /// The guild's id.
    pub id: GuildId,
    /// Name (empty for an unavailable guild).
    #[serde(default)]
    pub name: String,
    /// Icon hash.
    #[serde(default)]
    pub icon: Option<ImageHash>,
    /// Invite splash hash.
    #[serde(default)]
    pub splash: Option<ImageHash>,
    /// Discovery splash hash.
    #[serde(default)]
    pub discovery_splash: Option<ImageHash>,
    /// Banner hash.
    #[serde(default)]
    pub banner: Option<ImageHash>,
    /// The owner (`UserId(0)` for an unavailable guild).
    #[serde(default)]
    pub owner_id: UserId,
    /// AFK voice channel.
    #[serde(default)]
    pub afk_channel_id: Option<ChannelId>,
    /// AFK timeout in seconds.
    #[serde(default)]
    pub afk_timeout: u32,
    /// Verification required to chat.
    #[serde(default)]
    pub verification_level: VerificationLevel,
    /// Default notification setting.
    #[serde(default)]
    pub default_message_notifications: DefaultMessageNotificationLevel,
    /// Explicit media filter.
    #[serde(default)]
    pub explicit_content_filter: ExplicitContentFilter,
    /// Roles.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// Custom emojis.
    #[serde(default)]
    pub emojis: Vec<Emoji>,
    /// Enabled [guild features](https://discord.com/developers/docs/resources/guild#guild-object-guild-features).
    #[serde(default)]
    pub features: Vec<String>,
    /// Two-factor requirement for moderation.
    #[serde(default)]
    pub mfa_level: MfaLevel,
    /// The application that created a bot-created guild.
    #[serde(default)]
    pub application_id: Option<ApplicationId>,
    /// Channel for join and boost notices.
    #[serde(default)]
    pub system_channel_id: Option<ChannelId>,
    /// [System channel flags](https://discord.com/developers/docs/resources/guild#guild-object-system-channel-flags).
    #[serde(default)]
    pub system_channel_flags: u64,
    /// Rules channel of a community guild.
    #[serde(default)]
    pub rules_channel_id: Option<ChannelId>,
    /// Channel for notices from Discord to community moderators.
    #[serde(default)]
    pub public_updates_channel_id: Option<ChannelId>,
    /// Channel for safety alerts.
    #[serde(default)]
    pub safety_alerts_channel_id: Option<ChannelId>,
    /// Maximum presences (`None`: the default).
    #[serde(default)]
    pub max_presences: Option<u64>,
    /// Maximum members.
    #[serde(default)]
    pub max_members: Option<u64>,
    /// Vanity invite code.
    #[serde(default)]
    pub vanity_url_code: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Boost tier.
    #[serde(default)]
    pub premium_tier: PremiumTier,
    /// Number of boosts.
    #[serde(default)]
    pub premium_subscription_count: Option<u64>,
    /// Preferred locale of a community guild.
    #[serde(default)]
    pub preferred_locale: String,
    /// Maximum users in a video channel.
    #[serde(default)]
    pub max_video_channel_users: Option<u32>,
    /// Approximate member count (from some REST calls).
    #[serde(default)]
    pub approximate_member_count: Option<u64>,
    /// Approximate online member count (from some REST calls).
    #[serde(default)]
    pub approximate_presence_count: Option<u64>,
    /// Age-restriction level.
    #[serde(default)]
    pub nsfw_level: NsfwLevel,
    /// Whether the boost progress bar is shown.
    #[serde(default)]
    pub premium_progress_bar_enabled: bool,

    /// When the current user joined (`GUILD_CREATE`).
    #[serde(default)]
    pub joined_at: Option<Timestamp>,
    /// Whether the guild is over the identify `large_threshold`
    /// (`GUILD_CREATE`).
    #[serde(default)]
    pub large: bool,
    /// Whether the guild is unavailable because of an outage.
    #[serde(default)]
    pub unavailable: bool,
    /// Total members (`GUILD_CREATE`).
    #[serde(default)]
    pub member_count: Option<u64>,
    /// Members sent with the guild: all of a small guild, or those online,
    /// in voice or with roles (`GUILD_CREATE`).
    #[serde(default)]
    pub members: Vec<Member>,
    /// Channels (`GUILD_CREATE`); their `guild_id` is usually missing.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Active threads the current user can see (`GUILD_CREATE`).
    #[serde(default)]
    pub threads: Vec<Channel>,
    /// Presences of members (`GUILD_CREATE`, presence intent).
    #[serde(default)]
    pub presences: Vec<Presence>,
    /// Voice states of members in voice, without `guild_id`
    /// (`GUILD_CREATE`).
    #[serde(default)]
    pub voice_states: Vec<VoiceState>,
}

impl Guild {
    /// Whether the guild's data is here (it is not unavailable).
    pub fn is_available(&self) -> bool {
        !self.unavailable
    }
}

/// A guild the current user is in but whose data has not arrived (in Ready),
/// or which became unavailable or was left (`GUILD_DELETE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnavailableGuild {
    /// The guild's id.
    pub id: GuildId,
    /// `true` when unavailable because of an outage; missing (`false`) in
    /// `GUILD_DELETE` means the user left or was removed.
    #[serde(default)]
    pub unavailable: bool,
}

int_enum! {
    /// Verification required before members can chat.
    pub enum VerificationLevel: u8 {
        /// Unrestricted.
        None = 0,
        /// Verified e-mail.
        Low = 1,
        /// Registered for more than 5 minutes.
        Medium = 2,
        /// Member for more than 10 minutes.
        High = 3,
        /// Verified phone number.
        VeryHigh = 4,
    }
}

int_enum! {
    /// Which messages notify members by default.
    pub enum DefaultMessageNotificationLevel: u8 {
        /// Every message.
        AllMessages = 0,
        /// Only mentions.
        OnlyMentions = 1,
    }
}

int_enum! {
    /// Whose media is scanned for explicit content.
    pub enum ExplicitContentFilter: u8 {
        /// Nobody's.
        Disabled = 0,
        /// Members without roles.
        MembersWithoutRoles = 1,
        /// Everyone's.
        AllMembers = 2,
    }
}

int_enum! {
    /// Whether moderators need two-factor authentication.
    pub enum MfaLevel: u8 {
        /// No.
        None = 0,
        /// Yes.
        Elevated = 1,
    }
}

int_enum! {
    /// A guild's age-restriction level.
    pub enum NsfwLevel: u8 {
        /// Not set.
        Default = 0,
        /// Explicit.
        Explicit = 1,
        /// Safe.
        Safe = 2,
        /// Age-restricted.
        AgeRestricted = 3,
    }
}

int_enum! {
    /// Boost tier.
    pub enum PremiumTier: u8 {
        /// No perks.
        None = 0,
        /// Tier 1.
        Tier1 = 1,
        /// Tier 2.
        Tier2 = 2,
        /// Tier 3.
        Tier3 = 3,
    }
}
