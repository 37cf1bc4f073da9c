//! What the manager tells about a shard, and the events it posts.

use std::sync::Arc;
use std::time::Duration;

use crate::gateway::{GatewayError, ShardCounters, ShardHandle, Stage};
use crate::model::ShardId;

/// A shard's state and totals, from [`Manager::info`](super::Manager::info).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ShardInfo {
    /// The shard.
    pub id: ShardId,
    /// Where it is in its lifecycle.
    pub stage: Stage,
    /// The round trip of its last acknowledged heartbeat.
    pub latency: Option<Duration>,
    /// Dispatches received, each sequence number once.
    pub events: u64,
    /// Sessions resumed.
    pub resumes: u64,
    /// Sessions started after the first.
    pub reidentifies: u64,
    /// Connections opened after the first.
    pub reconnects: u64,
    /// Bytes read from its socket.
    pub bytes_in: u64,
    /// The last error it reported.
    pub last_error: Option<Arc<GatewayError>>,
}

impl ShardInfo {
    /// The info of a running shard.
    pub(crate) fn of(handle: &ShardHandle) -> Self {
        let counters: ShardCounters = handle.counters();
        Self {
            id: handle.id(),
            stage: handle.stage(),
            latency: handle.latency(),
            events: counters.events,
            resumes: counters.resumes,
            reidentifies: counters.reidentifies(),
            reconnects: counters.reconnects,
            bytes_in: counters.bytes_in,
            last_error: handle.last_error(),
        }
    }
}

/// The manager replaced its shard set with one of another size, posted as
/// `Arc<Rescaled>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescaled {
    /// The shard total before.
    pub old: u32,
    /// The shard total now.
    pub new: u32,
    /// Whether the new set was ready before the old one stopped (a
    /// rolling rescale) rather than started after it.
    pub rolling: bool,
}
