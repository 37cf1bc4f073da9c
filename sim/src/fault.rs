//! Fault injection: what the server can do to a client on request.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which connections a [`Fault`] hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    /// Every open connection whose session is for this shard id (any total).
    Shard(u32),
    /// Every open connection, identified or not.
    All,
}

/// A fault the server injects into connections (see [`Sim::fault`](crate::Sim::fault)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Send op 7 Reconnect; close with 4000 if the client has not closed
    /// within [`SimConfig::reconnect_grace`](crate::SimConfig::reconnect_grace).
    /// The session stays resumable.
    Reconnect,
    /// Send op 9 Invalid Session. Either way the session is detached from
    /// the connection first (no more dispatches are written there) and the
    /// connection then accepts a Resume or an Identify. With
    /// `resumable: false` the session is also invalidated; with `true` it
    /// stays resumable, on this connection or another, unless this
    /// connection is then closed with 4003 (a command before resuming),
    /// which invalidates it.
    InvalidSession {
        /// The `d` of op 9.
        resumable: bool,
    },
    /// Drop the TCP connection without a close frame; the session stays resumable.
    Drop,
    /// Stop answering heartbeats with op 11 on this connection (a zombie
    /// connection); dispatches keep flowing.
    Zombie,
    /// Close with this code. Codes 4003, 4004, 4007, 4009 and 4010–4014
    /// invalidate the session; others keep it resumable.
    Close(u16),
    /// Send a payload that is not valid JSON (through the connection's
    /// compression, so a zlib stream stays intact).
    Malformed,
    /// Send a payload with an opcode the protocol does not define (op 99).
    UnknownOpcode,
    /// Dispatch an event type the protocol does not define
    /// (`SHARDBUS_SIM_UNKNOWN`), with a sequence number.
    UnknownDispatch,
    /// Send nothing (not even heartbeat ACKs) for this long; dispatches queue
    /// up and are sent afterwards. Reading continues.
    Stall(Duration),
    /// Send op 1, asking the client for an immediate heartbeat.
    HeartbeatRequest,
}
