//! What a shard does when a connection ends: a pure decision, tested
//! without a socket.
//!
//! The connection loop reports *why* a connection ended (a [`Cause`]); the
//! runner asks [`decide`] what that means and carries it out. Keeping the
//! decision apart from the doing (serenity's `handle_event -> ShardAction`)
//! means every op 7, op 9, close code and missed acknowledgement is
//! classified in one table.

use super::close::{CloseAction, CloseCode};

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The gateway sent op 7 Reconnect.
    Reconnect,
    /// The gateway sent op 9 Invalid Session.
    InvalidSession {
        /// Its `d`: whether the session may be resumed.
        resumable: bool,
    },
    /// The gateway closed the connection with a code.
    Closed(CloseCode),
    /// The connection was lost: no close frame, an I/O error, or it could
    /// not be opened.
    Lost,
    /// The last heartbeat was never acknowledged.
    Zombie,
    /// No usable Hello arrived in time.
    NoHello,
    /// The `zlib-stream` data was corrupt (the context is unusable).
    Corrupt,
    /// A payload larger than the limit ended the connection; it will be
    /// skipped on the resume.
    TooLarge,
    /// A handle asked for a reconnect.
    Requested,
    /// The shard could not encode its own identify or resume: retrying
    /// cannot help.
    EncodeFailed,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Connect again and resume the session.
    Resume,
    /// Connect again and identify a new session (through the identify
    /// queue); `wait` asks for the documented 1–5 s pause first.
    NewSession {
        /// Whether to wait 1–5 s before connecting.
        wait: bool,
    },
    /// Stop the shard with a fatal error.
    Fatal,
}

/// Decides what a shard does after a connection ended for `cause`, given
/// whether it holds a session it could resume.
pub(crate) const fn decide(cause: Cause, has_session: bool) -> Next {
    let resume = if has_session {
        Next::Resume
    } else {
        Next::NewSession { wait: false }
    };
    match cause {
        Cause::InvalidSession { resumable: true } => resume,
        // The gateway asks for a random 1–5 s wait before identifying again.
        Cause::InvalidSession { resumable: false } => Next::NewSession { wait: true },
        Cause::Closed(code) => match code.action() {
            CloseAction::Resume => resume,
            CloseAction::NewSession => Next::NewSession { wait: false },
            CloseAction::Fatal => Next::Fatal,
        },
        Cause::EncodeFailed => Next::Fatal,
        Cause::Reconnect
        | Cause::Lost
        | Cause::Zombie
        | Cause::NoHello
        | Cause::Corrupt
        | Cause::TooLarge
        | Cause::Requested => resume,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_failures_resume_a_session_and_identify_without_one() {
        for cause in [
            Cause::Reconnect,
            Cause::Lost,
            Cause::Zombie,
            Cause::NoHello,
            Cause::Corrupt,
            Cause::TooLarge,
            Cause::Requested,
            Cause::Closed(CloseCode(4000)),
            Cause::Closed(CloseCode(1006)),
            Cause::Closed(CloseCode(4008)),
            Cause::InvalidSession { resumable: true },
        ] {
            assert_eq!(decide(cause, true), Next::Resume, "{cause:?}");
            assert_eq!(
                decide(cause, false),
                Next::NewSession { wait: false },
                "{cause:?}"
            );
        }
    }

    #[test]
    fn an_unresumable_invalid_session_waits_before_identifying() {
        for has_session in [true, false] {
            assert_eq!(
                decide(Cause::InvalidSession { resumable: false }, has_session),
                Next::NewSession { wait: true }
            );
        }
    }

    #[test]
    fn close_codes_that_end_the_session_identify_at_once() {
        for code in [4003, 4007, 4009] {
            assert_eq!(
                decide(Cause::Closed(CloseCode(code)), true),
                Next::NewSession { wait: false },
                "{code}"
            );
        }
    }

    #[test]
    fn fatal_close_codes_and_encode_failures_stop_the_shard() {
        for code in [4004, 4010, 4011, 4012, 4013, 4014] {
            assert_eq!(decide(Cause::Closed(CloseCode(code)), true), Next::Fatal);
        }
        assert_eq!(decide(Cause::EncodeFailed, true), Next::Fatal);
    }
}
