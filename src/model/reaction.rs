//! Reactions on messages.

use serde::{Deserialize, Serialize};

use super::PartialEmoji;

/// One emoji's reactions on a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// Total times this emoji was used, normal and super reactions.
    #[serde(default)]
    pub count: u32,
    /// Normal and super reaction counts.
    #[serde(default)]
    pub count_details: ReactionCountDetails,
    /// Whether the current user reacted with it.
    #[serde(default)]
    pub me: bool,
    /// Whether the current user super-reacted with it.
    #[serde(default)]
    pub me_burst: bool,
    /// The emoji.
    #[serde(default)]
    pub emoji: PartialEmoji,
    /// Super-reaction colours, `#rrggbb`.
    #[serde(default)]
    pub burst_colors: Vec<String>,
}

/// Reaction counts by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionCountDetails {
    /// Super reactions.
    #[serde(default)]
    pub burst: u32,
    /// Normal reactions.
    #[serde(default)]
    pub normal: u32,
}

int_enum! {
    /// Whether a reaction is a normal or a super reaction.
    pub enum ReactionType: u8 {
        /// A normal reaction.
        Normal = 0,
        /// A super reaction.
        Burst = 1,
    }
}
