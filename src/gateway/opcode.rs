//! Gateway opcodes and dispatch event type names.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A gateway opcode (the `op` field of every payload).
///
/// Unknown opcodes are kept as [`OpCode::Unknown`] so a new server opcode is
/// reported, not fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpCode {
    /// 0: an event was dispatched (server → client).
    Dispatch,
    /// 1: heartbeat, both directions.
    Heartbeat,
    /// 2: start a new session (client → server).
    Identify,
    /// 3: update the client's presence.
    PresenceUpdate,
    /// 4: join, move or leave a voice channel.
    VoiceStateUpdate,
    /// 6: resume a previous session.
    Resume,
    /// 7: the server asks the client to reconnect and resume.
    Reconnect,
    /// 8: request members of a guild.
    RequestGuildMembers,
    /// 9: the session is invalid; `d` says whether it may be resumed.
    InvalidSession,
    /// 10: sent on connect, with the heartbeat interval.
    Hello,
    /// 11: acknowledges a heartbeat.
    HeartbeatAck,
    /// 31: request soundboard sounds.
    RequestSoundboardSounds,
    /// Any other value.
    Unknown(u8),
}

impl OpCode {
    /// The numeric opcode.
    pub const fn code(self) -> u8 {
        match self {
            Self::Dispatch => 0,
            Self::Heartbeat => 1,
            Self::Identify => 2,
            Self::PresenceUpdate => 3,
            Self::VoiceStateUpdate => 4,
            Self::Resume => 6,
            Self::Reconnect => 7,
            Self::RequestGuildMembers => 8,
            Self::InvalidSession => 9,
            Self::Hello => 10,
            Self::HeartbeatAck => 11,
            Self::RequestSoundboardSounds => 31,
            Self::Unknown(code) => code,
        }
    }

    /// The opcode for a numeric value.
    pub const fn from_code(code: u8) -> Self {
        match code {
            0 => Self::Dispatch,
            1 => Self::Heartbeat,
            2 => Self::Identify,
            3 => Self::PresenceUpdate,
            4 => Self::VoiceStateUpdate,
            6 => Self::Resume,
            7 => Self::Reconnect,
            8 => Self::RequestGuildMembers,
            9 => Self::InvalidSession,
            10 => Self::Hello,
            11 => Self::HeartbeatAck,
            31 => Self::RequestSoundboardSounds,
            other => Self::Unknown(other),
        }
    }
}

impl Serialize for OpCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for OpCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u8::deserialize(deserializer).map(Self::from_code)
    }
}

impl fmt::Display for OpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// The name of a dispatch event (the `t` field), such as `MESSAGE_CREATE`.
///
/// The built-in names are constants; any other name (a dispatch type this
/// library does not know yet, or a user's own) is just as valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(Cow<'static, str>);

impl EventType {
    /// An event type from a static name.
    pub const fn from_static(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }

    /// The name, as on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! event_types {
    ($($name:ident),* $(,)?) => {
        impl EventType {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Self = Self::from_static(stringify!($name));
            )*
        }
    };
}

event_types!(
    READY,
    RESUMED,
    GUILD_CREATE,
    GUILD_UPDATE,
    GUILD_DELETE,
    CHANNEL_CREATE,
    CHANNEL_UPDATE,
    CHANNEL_DELETE,
    GUILD_MEMBER_ADD,
    GUILD_MEMBER_UPDATE,
    GUILD_MEMBER_REMOVE,
    GUILD_MEMBERS_CHUNK,
    MESSAGE_CREATE,
    MESSAGE_UPDATE,
    MESSAGE_DELETE,
    MESSAGE_REACTION_ADD,
    MESSAGE_REACTION_REMOVE,
    PRESENCE_UPDATE,
    TYPING_START,
    INTERACTION_CREATE,
    VOICE_STATE_UPDATE,
    VOICE_SERVER_UPDATE,
    RATE_LIMITED,
);

impl From<String> for EventType {
    fn from(name: String) -> Self {
        Self(Cow::Owned(name))
    }
}

impl From<&'static str> for EventType {
    fn from(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_round_trip_and_unknown_is_kept() {
        for code in 0..=255u8 {
            assert_eq!(OpCode::from_code(code).code(), code);
        }
        assert_eq!(OpCode::from_code(5), OpCode::Unknown(5));
        assert_eq!(OpCode::from_code(10), OpCode::Hello);
    }

    #[test]
    fn event_type_constants_are_their_wire_names() {
        assert_eq!(EventType::MESSAGE_CREATE.as_str(), "MESSAGE_CREATE");
        assert_eq!(
            EventType::from("MESSAGE_CREATE".to_owned()),
            EventType::MESSAGE_CREATE
        );
    }
}
