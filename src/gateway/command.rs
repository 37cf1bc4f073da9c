//! User commands a shard sends: presence, member requests, voice states.

use serde::{Deserialize, Serialize};

use crate::model::{ChannelId, GuildId, UserId};

/// The largest command the gateway accepts.
pub const MAX_COMMAND_BYTES: usize = 4096;

/// A presence update command (op 3).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdatePresence {
    /// Unix time in milliseconds the client went idle, if it did.
    pub since: Option<u64>,
    /// Activities, as JSON objects (`{"name": "...", "type": 0}`).
    pub activities: Vec<serde_json::Value>,
    /// `online`, `dnd`, `idle`, `invisible` or `offline`.
    pub status: String,
    /// Whether the client is AFK.
    pub afk: bool,
}

/// A guild members request (op 8).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestGuildMembers {
    /// The guild.
    pub guild_id: GuildId,
    /// Usernames starting with this; empty for all (with `limit` 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The most members to send; 0 for all.
    pub limit: u32,
    /// Whether to include presences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presences: Option<bool>,
    /// Specific users instead of a query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_ids: Option<Vec<UserId>>,
    /// Echoed in the member chunks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// A voice state update (op 4).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateVoiceState {
    /// The guild.
    pub guild_id: GuildId,
    /// The channel to join; `None` to leave.
    pub channel_id: Option<ChannelId>,
    /// Whether the bot is muted.
    pub self_mute: bool,
    /// Whether the bot is deafened.
    pub self_deaf: bool,
}
