//! Errors a shard reports, as `Arc<GatewayError>` events on the bus.

use crate::bus::BoxError;
use crate::model::{Seq, ShardId};

use super::close::CloseCode;
use super::compression::CompressionError;

/// Something went wrong on a shard's connection.
///
/// Posted on the bus as `Arc<GatewayError>`; `fatal` errors stop the shard
/// (a bad token, invalid shard or intents, a required rescale). Never
/// contains the token.
#[derive(Debug, thiserror::Error)]
#[error("shard {shard}: {kind}{}", if *.fatal { " (fatal)" } else { "" })]
#[non_exhaustive]
pub struct GatewayError {
    /// The shard the error happened on.
    pub shard: ShardId,
    /// Whether the shard stopped because of it.
    pub fatal: bool,
    /// What happened.
    #[source]
    pub kind: GatewayErrorKind,
}

/// What went wrong; see [`GatewayError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayErrorKind {
    /// The connection could not be opened.
    #[error("could not connect to the gateway")]
    Connect(#[source] BoxError),
    /// The websocket failed while connected.
    #[error("websocket error")]
    Websocket(#[source] BoxError),
    /// The gateway closed the connection.
    #[error("the gateway closed the connection with {code}{}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    Closed {
        /// The close code.
        code: CloseCode,
        /// The close reason the server gave.
        reason: String,
    },
    /// The layer above the shard (the shard manager) failed on its behalf,
    /// e.g. an automatic rescale could not ask `GET /gateway/bot`.
    #[error("the shard manager failed")]
    Manager(#[source] BoxError),
    /// No Hello arrived after connecting.
    #[error("the gateway sent no Hello")]
    NoHello,
    /// The previous heartbeat was never acknowledged.
    #[error("no heartbeat acknowledgement: zombie connection, reconnecting")]
    Zombie,
    /// The gateway invalidated the session (op 9).
    #[error("the gateway invalidated the session (resumable: {resumable})")]
    InvalidSession {
        /// Whether it may be resumed.
        resumable: bool,
    },
    /// A payload was not valid JSON or had no valid envelope.
    #[error("malformed payload")]
    Decode(#[source] BoxError),
    /// A dispatch did not match its registered type.
    #[error("could not decode a {event_type} dispatch")]
    DispatchDecode {
        /// The dispatch type.
        event_type: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The `zlib-stream` data could not be inflated.
    #[error("compressed data could not be inflated")]
    Compression(#[source] CompressionError),
    /// The shard could not encode its own identify or resume (fatal:
    /// retrying cannot help).
    #[error("could not encode the shard's own payload")]
    Encode(#[source] BoxError),
    /// The shard's task panicked (fatal).
    #[error("the shard's task panicked: {0}")]
    Panicked(String),
    /// The shard's task was aborted (fatal).
    #[error("the shard's task was aborted")]
    Aborted,
    /// The shard was closed before it was ready.
    #[error("the shard was closed before it was ready")]
    ClosedBeforeReady,
    /// A payload with an opcode this client does not know.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u8),
    /// A payload larger than the configured limit
    /// ([`GatewayConfig::max_payload`](super::GatewayConfig::max_payload)).
    /// The shard skips it and goes on: with `zlib-stream` on the same
    /// connection, without it by resuming after the payload's sequence
    /// number. The event it carried is lost, so it never wedges the shard.
    #[error(
        "payload of {} exceeds the {limit}-byte limit; skipped{}",
        match len { Some(len) => format!("{len} bytes"), None => "unknown size".to_owned() },
        match after_seq { Some(seq) => format!(" after seq {seq}"), None => String::new() }
    )]
    PayloadTooLarge {
        /// Its size after decompression, where known.
        len: Option<usize>,
        /// The limit.
        limit: usize,
        /// The last sequence number delivered before it.
        after_seq: Option<Seq>,
    },
    /// The session to resume had a resume URL that is not a websocket
    /// URL; the shard identified against its configured gateway instead,
    /// and its token was not sent there.
    #[error("the session's resume URL was refused, identifying instead")]
    ResumeUrl(#[source] ResumeUrlError),
}

/// Why a resume URL was refused (see [`ResumeInfo::check_url`](super::ResumeInfo::check_url)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeUrlError {
    /// It does not parse as a URL.
    #[error("not a URL")]
    Malformed,
    /// Its scheme is not `ws` or `wss`.
    #[error("scheme {0:?} is not ws or wss")]
    Scheme(String),
    /// It names no host.
    #[error("no host")]
    NoHost,
    /// It has a query or a fragment (the client adds its own query).
    #[error("it has a query or a fragment")]
    Query,
}

/// Why a shard command was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The command is larger than the gateway accepts (4096 bytes).
    #[error("command of {len} bytes exceeds the gateway's 4096-byte limit")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// The command could not be serialized.
    #[error("command could not be serialized")]
    Encode(#[source] BoxError),
    /// The shard has stopped.
    #[error("the shard has stopped")]
    ShardStopped,
}
