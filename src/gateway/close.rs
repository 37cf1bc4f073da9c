//! Gateway close codes and what a shard does after each.

use std::fmt;

/// What a shard does after its connection closed with a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseAction {
    /// Reconnect and resume the session (no event is lost).
    Resume,
    /// Reconnect and identify a new session (through the identify queue).
    NewSession,
    /// Stop this shard and report a fatal error: retrying cannot help.
    Fatal,
}

/// A websocket close code, as received from the gateway or sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure. Sent by the client, it ends the session.
    pub const NORMAL: Self = Self(1000);
    /// 1001: going away. Sent by the client, it ends the session too.
    pub const GOING_AWAY: Self = Self(1001);
    /// 4000: unknown error. Used by this client to close while keeping the
    /// session (zombie connection, restart, resume).
    pub const UNKNOWN_ERROR: Self = Self(4000);
    /// 4001: the client sent an invalid opcode.
    pub const UNKNOWN_OPCODE: Self = Self(4001);
    /// 4002: the client sent an invalid payload.
    pub const DECODE_ERROR: Self = Self(4002);
    /// 4003: the client sent a payload before identifying.
    pub const NOT_AUTHENTICATED: Self = Self(4003);
    /// 4004: the token is invalid.
    pub const AUTHENTICATION_FAILED: Self = Self(4004);
    /// 4005: the client identified twice.
    pub const ALREADY_AUTHENTICATED: Self = Self(4005);
    /// 4007: the resume sequence number was invalid.
    pub const INVALID_SEQ: Self = Self(4007);
    /// 4008: the client sent payloads too quickly.
    pub const RATE_LIMITED: Self = Self(4008);
    /// 4009: the session timed out.
    pub const SESSION_TIMED_OUT: Self = Self(4009);
    /// 4010: the shard array was invalid.
    pub const INVALID_SHARD: Self = Self(4010);
    /// 4011: the bot needs more shards.
    pub const SHARDING_REQUIRED: Self = Self(4011);
    /// 4012: the API version is invalid.
    pub const INVALID_API_VERSION: Self = Self(4012);
    /// 4013: the intents were invalid.
    pub const INVALID_INTENTS: Self = Self(4013);
    /// 4014: a privileged intent is not enabled for the bot.
    pub const DISALLOWED_INTENTS: Self = Self(4014);

    /// What to do after the server closed the connection with this code.
    ///
    /// 4004 and 4010–4014 are fatal for the shard (4011 is the signal to
    /// rescale); 4003 (the session was invalidated, or a payload came
    /// before identifying), 4007 and 4009 need a new session; everything else,
    /// including codes this library does not know and abnormal closures,
    /// is worth a resume (the server answers an unresumable one with
    /// `op 9 false`, which starts a new session).
    pub const fn action(self) -> CloseAction {
        match self.0 {
            4004 | 4010 | 4011 | 4012 | 4013 | 4014 => CloseAction::Fatal,
            4003 | 4007 | 4009 => CloseAction::NewSession,
            _ => CloseAction::Resume,
        }
    }

    /// A short description of a known code.
    pub const fn description(self) -> &'static str {
        match self.0 {
            1000 => "normal closure",
            1001 => "going away",
            1006 => "connection lost without a close frame",
            4000 => "unknown error",
            4001 => "unknown opcode",
            4002 => "decode error",
            4003 => "not authenticated",
            4004 => "authentication failed",
            4005 => "already authenticated",
            4007 => "invalid seq",
            4008 => "rate limited",
            4009 => "session timed out",
            4010 => "invalid shard",
            4011 => "sharding required",
            4012 => "invalid API version",
            4013 => "invalid intents",
            4014 => "disallowed intents",
            _ => "unknown close code",
        }
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.description())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_classified_as_documented() {
        for code in [4000, 4001, 4002, 4005, 4008, 1000, 1001, 1006, 4999] {
            assert_eq!(CloseCode(code).action(), CloseAction::Resume, "{code}");
        }
        for code in [4003, 4007, 4009] {
            assert_eq!(CloseCode(code).action(), CloseAction::NewSession, "{code}");
        }
        for code in [4004, 4010, 4011, 4012, 4013, 4014] {
            assert_eq!(CloseCode(code).action(), CloseAction::Fatal, "{code}");
        }
        assert_eq!(CloseCode(4011).to_string(), "4011 (sharding required)");
    }
}
