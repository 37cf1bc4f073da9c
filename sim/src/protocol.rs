//! Gateway protocol constants: opcodes, close codes and intents (API v10).
//!
//! Taken from Discord's "Opcodes and Status Codes" and "Gateway" documentation.

/// Gateway opcodes.
pub mod op {
    /// An event was dispatched (server → client).
    pub const DISPATCH: u8 = 0;
    /// Heartbeat (both directions).
    pub const HEARTBEAT: u8 = 1;
    /// Identify (client → server).
    pub const IDENTIFY: u8 = 2;
    /// Presence Update (client → server).
    pub const PRESENCE_UPDATE: u8 = 3;
    /// Voice State Update (client → server).
    pub const VOICE_STATE_UPDATE: u8 = 4;
    /// Resume (client → server).
    pub const RESUME: u8 = 6;
    /// Reconnect (server → client).
    pub const RECONNECT: u8 = 7;
    /// Request Guild Members (client → server).
    pub const REQUEST_GUILD_MEMBERS: u8 = 8;
    /// Invalid Session (server → client).
    pub const INVALID_SESSION: u8 = 9;
    /// Hello (server → client).
    pub const HELLO: u8 = 10;
    /// Heartbeat ACK (server → client).
    pub const HEARTBEAT_ACK: u8 = 11;
    /// Request Soundboard Sounds (client → server).
    pub const REQUEST_SOUNDBOARD_SOUNDS: u8 = 31;
    /// Request Channel Info (client → server).
    pub const REQUEST_CHANNEL_INFO: u8 = 43;
}

/// Gateway close codes the sim sends.
pub mod close {
    /// Unknown error; the client may reconnect and resume.
    pub const UNKNOWN_ERROR: u16 = 4000;
    /// Unknown opcode, or an invalid payload for an opcode.
    pub const UNKNOWN_OPCODE: u16 = 4001;
    /// Decode error: not JSON, not an object, or larger than 4096 bytes.
    pub const DECODE_ERROR: u16 = 4002;
    /// A payload other than Heartbeat/Identify/Resume before identifying.
    pub const NOT_AUTHENTICATED: u16 = 4003;
    /// The token is wrong.
    pub const AUTHENTICATION_FAILED: u16 = 4004;
    /// A second Identify (or a Resume after Identify) on one connection.
    pub const ALREADY_AUTHENTICATED: u16 = 4005;
    /// The `seq` of a Resume is ahead of anything the session sent.
    pub const INVALID_SEQ: u16 = 4007;
    /// More than the allowed number of client payloads in the window.
    pub const RATE_LIMITED: u16 = 4008;
    /// The session timed out; start a new one.
    pub const SESSION_TIMED_OUT: u16 = 4009;
    /// Invalid `shard` in Identify.
    pub const INVALID_SHARD: u16 = 4010;
    /// The session would handle too many guilds: more shards are required.
    pub const SHARDING_REQUIRED: u16 = 4011;
    /// Invalid API version (`v` is not 10).
    pub const INVALID_API_VERSION: u16 = 4012;
    /// Intents with bits that are not defined.
    pub const INVALID_INTENTS: u16 = 4013;
    /// Privileged intents the application is not allowed to use.
    pub const DISALLOWED_INTENTS: u16 = 4014;
    /// Standard websocket close: the data type is not supported (used for
    /// `encoding=etf` and unknown compression).
    pub const UNSUPPORTED_DATA: u16 = 1003;

    /// Whether a server close with `code` leaves the session resumable.
    ///
    /// The sim invalidates the session for 4003 (session invalidated), 4004,
    /// 4007, 4009 and 4010–4014; every other code keeps it resumable for the
    /// resume window.
    #[must_use]
    pub const fn keeps_session(code: u16) -> bool {
        !matches!(code, 4003 | 4004 | 4007 | 4009 | 4010..=4014)
    }
}

/// Gateway intents.
pub mod intents {
    /// `GUILDS (1 << 0)`.
    pub const GUILDS: u64 = 1 << 0;
    /// `GUILD_MEMBERS (1 << 1)`, privileged.
    pub const GUILD_MEMBERS: u64 = 1 << 1;
    /// `GUILD_MODERATION (1 << 2)`.
    pub const GUILD_MODERATION: u64 = 1 << 2;
    /// `GUILD_EXPRESSIONS (1 << 3)`.
    pub const GUILD_EXPRESSIONS: u64 = 1 << 3;
    /// `GUILD_INTEGRATIONS (1 << 4)`.
    pub const GUILD_INTEGRATIONS: u64 = 1 << 4;
    /// `GUILD_WEBHOOKS (1 << 5)`.
    pub const GUILD_WEBHOOKS: u64 = 1 << 5;
    /// `GUILD_INVITES (1 << 6)`.
    pub const GUILD_INVITES: u64 = 1 << 6;
    /// `GUILD_VOICE_STATES (1 << 7)`.
    pub const GUILD_VOICE_STATES: u64 = 1 << 7;
    /// `GUILD_PRESENCES (1 << 8)`, privileged.
    pub const GUILD_PRESENCES: u64 = 1 << 8;
    /// `GUILD_MESSAGES (1 << 9)`.
    pub const GUILD_MESSAGES: u64 = 1 << 9;
    /// `GUILD_MESSAGE_REACTIONS (1 << 10)`.
    pub const GUILD_MESSAGE_REACTIONS: u64 = 1 << 10;
    /// `GUILD_MESSAGE_TYPING (1 << 11)`.
    pub const GUILD_MESSAGE_TYPING: u64 = 1 << 11;
    /// `DIRECT_MESSAGES (1 << 12)`.
    pub const DIRECT_MESSAGES: u64 = 1 << 12;
    /// `DIRECT_MESSAGE_REACTIONS (1 << 13)`.
    pub const DIRECT_MESSAGE_REACTIONS: u64 = 1 << 13;
    /// `DIRECT_MESSAGE_TYPING (1 << 14)`.
    pub const DIRECT_MESSAGE_TYPING: u64 = 1 << 14;
    /// `MESSAGE_CONTENT (1 << 15)`, privileged.
    pub const MESSAGE_CONTENT: u64 = 1 << 15;
    /// `GUILD_SCHEDULED_EVENTS (1 << 16)`.
    pub const GUILD_SCHEDULED_EVENTS: u64 = 1 << 16;
    /// `AUTO_MODERATION_CONFIGURATION (1 << 20)`.
    pub const AUTO_MODERATION_CONFIGURATION: u64 = 1 << 20;
    /// `AUTO_MODERATION_EXECUTION (1 << 21)`.
    pub const AUTO_MODERATION_EXECUTION: u64 = 1 << 21;
    /// `GUILD_MESSAGE_POLLS (1 << 24)`.
    pub const GUILD_MESSAGE_POLLS: u64 = 1 << 24;
    /// `DIRECT_MESSAGE_POLLS (1 << 25)`.
    pub const DIRECT_MESSAGE_POLLS: u64 = 1 << 25;

    /// Every defined intent bit; anything else gets close 4013.
    pub const ALL: u64 = ((1 << 17) - 1)
        | AUTO_MODERATION_CONFIGURATION
        | AUTO_MODERATION_EXECUTION
        | GUILD_MESSAGE_POLLS
        | DIRECT_MESSAGE_POLLS;

    /// The privileged intents.
    pub const PRIVILEGED: u64 = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT;

    /// The intents that let a session receive the dispatch `event`, in a guild
    /// (`in_guild`) or not. `None` means the event is sent regardless of intents.
    #[must_use]
    pub fn required_for(event: &str, in_guild: bool) -> Option<u64> {
        let pick = |guild: u64, direct: u64| Some(if in_guild { guild } else { direct });
        match event {
            "GUILD_CREATE"
            | "GUILD_UPDATE"
            | "GUILD_DELETE"
            | "GUILD_ROLE_CREATE"
            | "GUILD_ROLE_UPDATE"
            | "GUILD_ROLE_DELETE"
            | "CHANNEL_CREATE"
            | "CHANNEL_UPDATE"
            | "CHANNEL_DELETE"
            | "THREAD_CREATE"
            | "THREAD_UPDATE"
            | "THREAD_DELETE"
            | "THREAD_LIST_SYNC"
            | "THREAD_MEMBER_UPDATE"
            | "STAGE_INSTANCE_CREATE"
            | "STAGE_INSTANCE_UPDATE"
            | "STAGE_INSTANCE_DELETE" => Some(GUILDS),
            "GUILD_MEMBER_ADD" | "GUILD_MEMBER_UPDATE" | "GUILD_MEMBER_REMOVE" => {
                Some(GUILD_MEMBERS)
            }
            "GUILD_AUDIT_LOG_ENTRY_CREATE" | "GUILD_BAN_ADD" | "GUILD_BAN_REMOVE" => {
                Some(GUILD_MODERATION)
            }
            "GUILD_EMOJIS_UPDATE" | "GUILD_STICKERS_UPDATE" => Some(GUILD_EXPRESSIONS),
            "GUILD_INTEGRATIONS_UPDATE"
            | "INTEGRATION_CREATE"
            | "INTEGRATION_UPDATE"
            | "INTEGRATION_DELETE" => Some(GUILD_INTEGRATIONS),
            "WEBHOOKS_UPDATE" => Some(GUILD_WEBHOOKS),
            "INVITE_CREATE" | "INVITE_DELETE" => Some(GUILD_INVITES),
            "VOICE_STATE_UPDATE" => Some(GUILD_VOICE_STATES),
            "PRESENCE_UPDATE" => Some(GUILD_PRESENCES),
            "MESSAGE_CREATE" | "MESSAGE_UPDATE" | "MESSAGE_DELETE" => {
                pick(GUILD_MESSAGES, DIRECT_MESSAGES)
            }
            "MESSAGE_DELETE_BULK" => Some(GUILD_MESSAGES),
            "MESSAGE_REACTION_ADD"
            | "MESSAGE_REACTION_REMOVE"
            | "MESSAGE_REACTION_REMOVE_ALL"
            | "MESSAGE_REACTION_REMOVE_EMOJI" => {
                pick(GUILD_MESSAGE_REACTIONS, DIRECT_MESSAGE_REACTIONS)
            }
            "TYPING_START" => pick(GUILD_MESSAGE_TYPING, DIRECT_MESSAGE_TYPING),
            "GUILD_SCHEDULED_EVENT_CREATE"
            | "GUILD_SCHEDULED_EVENT_UPDATE"
            | "GUILD_SCHEDULED_EVENT_DELETE"
            | "GUILD_SCHEDULED_EVENT_USER_ADD"
            | "GUILD_SCHEDULED_EVENT_USER_REMOVE" => Some(GUILD_SCHEDULED_EVENTS),
            "AUTO_MODERATION_RULE_CREATE"
            | "AUTO_MODERATION_RULE_UPDATE"
            | "AUTO_MODERATION_RULE_DELETE" => Some(AUTO_MODERATION_CONFIGURATION),
            "AUTO_MODERATION_ACTION_EXECUTION" => Some(AUTO_MODERATION_EXECUTION),
            "MESSAGE_POLL_VOTE_ADD" | "MESSAGE_POLL_VOTE_REMOVE" => {
                pick(GUILD_MESSAGE_POLLS, DIRECT_MESSAGE_POLLS)
            }
            _ => None,
        }
    }
}

/// The largest client payload the gateway accepts, in bytes; larger ones get 4002.
pub const MAX_CLIENT_PAYLOAD: usize = 4096;

/// The only gateway API version the sim speaks.
pub const API_VERSION: u8 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_intents_match_the_documented_bits() {
        assert_eq!(intents::ALL, 0b11_0011_0001_1111_1111_1111_1111);
        assert_eq!(intents::PRIVILEGED, 0b1000_0001_0000_0010);
    }

    #[test]
    fn message_create_needs_guild_or_direct_messages() {
        assert_eq!(
            intents::required_for("MESSAGE_CREATE", true),
            Some(intents::GUILD_MESSAGES)
        );
        assert_eq!(
            intents::required_for("MESSAGE_CREATE", false),
            Some(intents::DIRECT_MESSAGES)
        );
        assert_eq!(intents::required_for("SOMETHING_NEW", true), None);
    }
}
