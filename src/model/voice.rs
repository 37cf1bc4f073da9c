//! Voice states: who is in which voice channel, muted or not.

use serde::{Deserialize, Serialize};

use super::{ChannelId, GuildId, Member, Timestamp, UserId};

/// A user's voice connection state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceState {
    /// The guild (missing inside `GUILD_CREATE`).
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// The voice channel; `None` when the user left voice.
    #[serde(default)]
    pub channel_id: Option<ChannelId>,
    /// The user.
    pub user_id: UserId,
    /// The user's guild member.
    #[serde(default)]
    pub member: Option<Member>,
    /// The voice session id.
    #[serde(default)]
    pub session_id: String,
    /// Server-deafened.
    #[serde(default)]
    pub deaf: bool,
    /// Server-muted.
    #[serde(default)]
    pub mute: bool,
    /// Self-deafened.
    #[serde(default)]
    pub self_deaf: bool,
    /// Self-muted.
    #[serde(default)]
    pub self_mute: bool,
    /// Streaming ("Go Live").
    #[serde(default)]
    pub self_stream: bool,
    /// Camera on.
    #[serde(default)]
    pub self_video: bool,
    /// Muted by the current user.
    #[serde(default)]
    pub suppress: bool,
    /// When the user asked to speak on a stage.
    #[serde(default)]
    pub request_to_speak_timestamp: Option<Timestamp>,
}
