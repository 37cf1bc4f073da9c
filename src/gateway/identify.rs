//! What a shard identifies with: the token, intents and connection
//! properties.

use std::ops::{BitOr, BitOrAssign};

use serde::Serialize;

/// Re-exported from [`crate::model`], where the REST client can use it too;
/// `shardbus::gateway::Token` stays a valid path.
pub use crate::model::Token;

/// Gateway intents: which groups of events the bot receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Intents(pub u64);

impl Intents {
    /// Guild create/update/delete, roles, channels, threads.
    pub const GUILDS: Self = Self(1 << 0);
    /// Member add/update/remove (privileged).
    pub const GUILD_MEMBERS: Self = Self(1 << 1);
    /// Audit log entries, bans.
    pub const GUILD_MODERATION: Self = Self(1 << 2);
    /// Emoji and sticker updates.
    pub const GUILD_EXPRESSIONS: Self = Self(1 << 3);
    /// Integration updates.
    pub const GUILD_INTEGRATIONS: Self = Self(1 << 4);
    /// Webhook updates.
    pub const GUILD_WEBHOOKS: Self = Self(1 << 5);
    /// Invite create/delete.
    pub const GUILD_INVITES: Self = Self(1 << 6);
    /// Voice state updates.
    pub const GUILD_VOICE_STATES: Self = Self(1 << 7);
    /// Presence updates (privileged).
    pub const GUILD_PRESENCES: Self = Self(1 << 8);
    /// Messages in guilds.
    pub const GUILD_MESSAGES: Self = Self(1 << 9);
    /// Reactions in guilds.
    pub const GUILD_MESSAGE_REACTIONS: Self = Self(1 << 10);
    /// Typing in guilds.
    pub const GUILD_MESSAGE_TYPING: Self = Self(1 << 11);
    /// Direct messages.
    pub const DIRECT_MESSAGES: Self = Self(1 << 12);
    /// Reactions in DMs.
    pub const DIRECT_MESSAGE_REACTIONS: Self = Self(1 << 13);
    /// Typing in DMs.
    pub const DIRECT_MESSAGE_TYPING: Self = Self(1 << 14);
    /// Message content (privileged).
    pub const MESSAGE_CONTENT: Self = Self(1 << 15);
    /// Scheduled events.
    pub const GUILD_SCHEDULED_EVENTS: Self = Self(1 << 16);
    /// Auto moderation configuration.
    pub const AUTO_MODERATION_CONFIGURATION: Self = Self(1 << 20);
    /// Auto moderation executions.
    pub const AUTO_MODERATION_EXECUTION: Self = Self(1 << 21);
    /// Poll votes in guilds.
    pub const GUILD_MESSAGE_POLLS: Self = Self(1 << 24);
    /// Poll votes in DMs.
    pub const DIRECT_MESSAGE_POLLS: Self = Self(1 << 25);

    /// No intents.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Whether every intent in `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Intents {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for Intents {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// The connection properties sent in an identify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentifyProperties {
    /// The operating system.
    pub os: String,
    /// The library name.
    pub browser: String,
    /// The library name, again (as Discord asks).
    pub device: String,
}

impl Default for IdentifyProperties {
    fn default() -> Self {
        Self {
            os: std::env::consts::OS.to_owned(),
            browser: "shardbus".to_owned(),
            device: "shardbus".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows_in_debug_or_display() {
        let token = Token::new("Bot MTIz.secret.value");
        assert_eq!(token.expose(), "MTIz.secret.value");
        for shown in [
            format!("{token:?}"),
            format!("{token}"),
            format!("{:?}", Some(&token)),
        ] {
            assert!(!shown.contains("secret"), "{shown}");
        }
    }

    #[test]
    fn intents_combine() {
        let i = Intents::GUILDS | Intents::GUILD_MESSAGES;
        assert!(i.contains(Intents::GUILDS));
        assert!(!i.contains(Intents::MESSAGE_CONTENT));
        assert_eq!(i.0, 1 | 512);
    }
}
