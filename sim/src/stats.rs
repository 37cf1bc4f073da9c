//! What the server sent: per shard, per session, per connection.
//!
//! [`Sim::stats`](crate::Sim::stats) returns a snapshot. The seqs each
//! connection was sent are kept as inclusive ranges, so a test can check
//! "every seq delivered exactly once" without the sim storing one entry per
//! dispatch.
//!
//! Bytes are counted per transport [`Compression`]: the gateway payloads
//! before compression (`payload_bytes`) and the websocket message data after
//! it (`wire_bytes`). A connection adds its counts when it has queued a batch
//! of messages, before flushing them, and when it ends; so a client that has
//! read everything can wait (with [`Sim::wait_for_stats`](crate::Sim::wait_for_stats))
//! for the counters to reach what it read.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::compress::Compression;
use crate::ids::{ConnectionId, Seq, SessionId, ShardInfo};

/// A snapshot of what the server sent.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimStats {
    /// Per shard id, sorted by shard id then total.
    pub shards: Vec<ShardStats>,
    /// MESSAGE_CREATE events the built-in generator produced (each counted
    /// once, however many sessions it went to).
    pub generated: u64,
    /// Gateway payload bytes (the JSON) written to all connections, before
    /// transport compression: dispatches, Hello, heartbeat ACKs, op 7/9 and
    /// injected fault payloads; not close frames.
    pub payload_bytes: u64,
    /// Bytes of websocket message data written to all connections for those
    /// payloads, after transport compression (equal to their `payload_bytes`
    /// for uncompressed connections). Websocket frame headers and close
    /// frames are not counted.
    pub wire_bytes: u64,
    /// The same two counts per transport compression: one entry for each of
    /// `none`, `zlib-stream` and `zstd-stream`, in that order.
    pub by_compression: Vec<WireStats>,
}

/// What the connections of one transport compression were sent, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct WireStats {
    /// The mode.
    pub compression: Compression,
    /// Gateway payload bytes before compression.
    pub payload_bytes: u64,
    /// Websocket message bytes after compression.
    pub wire_bytes: u64,
}

/// What one shard's sessions were sent.
#[derive(Clone, Debug, Serialize)]
pub struct ShardStats {
    /// The shard.
    pub shard: ShardInfo,
    /// Dispatches written to connections of this shard, replays included.
    pub dispatches_sent: u64,
    /// Its sessions, oldest first.
    pub sessions: Vec<SessionStats>,
}

/// One session's dispatch stream.
#[derive(Clone, Debug, Serialize)]
pub struct SessionStats {
    /// The session.
    pub session_id: SessionId,
    /// The last seq assigned (READY is 1).
    pub last_seq: Seq,
    /// The oldest seq still in the replay buffer.
    pub first_buffered_seq: Seq,
    /// Whether it is live, waiting for a resume, or invalid.
    pub state: SessionState,
    /// What each connection of this session was sent.
    pub connections: Vec<ConnectionSent>,
}

/// The state of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// A connection is attached.
    Live,
    /// No connection; resumable until the resume window ends.
    Detached,
    /// Invalidated or expired; it can never be resumed.
    Invalid,
}

/// The dispatches one connection was sent for a session.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionSent {
    /// The connection.
    pub connection: ConnectionId,
    /// The seqs written, as inclusive ranges in sending order.
    pub seqs: Vec<SeqRange>,
    /// How many dispatches were written.
    pub dispatches: u64,
}

/// An inclusive range of seqs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SeqRange {
    /// The first seq.
    pub first: Seq,
    /// The last seq.
    pub last: Seq,
}

impl ConnectionSent {
    /// Record that `first..=last` were written.
    pub(crate) fn record(&mut self, first: Seq, last: Seq) {
        self.dispatches += last - first + 1;
        match self.seqs.last_mut() {
            Some(r) if r.last + 1 == first => r.last = last,
            _ => self.seqs.push(SeqRange { first, last }),
        }
    }

    /// Every seq written, expanded.
    pub fn all_seqs(&self) -> impl Iterator<Item = Seq> + '_ {
        self.seqs.iter().flat_map(|r| r.first..=r.last)
    }
}

impl SimStats {
    /// The stats of shard id `shard` (summing every total it was identified with).
    pub fn shard(&self, shard: u32) -> impl Iterator<Item = &ShardStats> {
        self.shards.iter().filter(move |s| s.shard.id == shard)
    }

    /// The stats of one session.
    #[must_use]
    pub fn session(&self, id: &SessionId) -> Option<&SessionStats> {
        self.shards
            .iter()
            .flat_map(|s| s.sessions.iter())
            .find(|s| &s.session_id == id)
    }

    /// Dispatches written over all shards.
    #[must_use]
    pub fn dispatches_sent(&self) -> u64 {
        self.shards.iter().map(|s| s.dispatches_sent).sum()
    }

    /// The bytes connections with `compression` were sent (zeros if none
    /// used it).
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus_sim::{Compression, SimStats};
    ///
    /// let stats = SimStats::default();
    /// assert_eq!(stats.compression(Compression::ZstdStream).wire_bytes, 0);
    /// ```
    #[must_use]
    pub fn compression(&self, compression: Compression) -> WireStats {
        self.by_compression
            .iter()
            .find(|w| w.compression == compression)
            .copied()
            .unwrap_or_else(|| WireStats::zero(compression))
    }
}

impl WireStats {
    /// No bytes yet.
    const fn zero(compression: Compression) -> Self {
        Self {
            compression,
            payload_bytes: 0,
            wire_bytes: 0,
        }
    }

    /// Payload bytes per wire byte (`0.0` before anything was sent).
    #[must_use]
    pub fn ratio(&self) -> f64 {
        if self.wire_bytes == 0 {
            0.0
        } else {
            self.payload_bytes as f64 / self.wire_bytes as f64
        }
    }
}

/// Bytes one connection has written but not yet added to [`WireCounters`].
#[derive(Debug, Default)]
pub(crate) struct UnpublishedBytes {
    /// Payload bytes before compression.
    pub payload: u64,
    /// Websocket message bytes after compression.
    pub wire: u64,
}

/// The sim-wide byte counters, per transport compression.
#[derive(Debug, Default)]
pub(crate) struct WireCounters {
    /// `(payload, wire)` bytes, indexed by [`Compression::index`].
    modes: [(AtomicU64, AtomicU64); Compression::ALL.len()],
}

impl WireCounters {
    /// Add a connection's unpublished bytes and reset them.
    pub(crate) fn publish(&self, compression: Compression, bytes: &mut UnpublishedBytes) {
        if bytes.payload == 0 && bytes.wire == 0 {
            return;
        }
        if let Some((payload, wire)) = self.modes.get(compression.index()) {
            payload.fetch_add(bytes.payload, Ordering::Relaxed);
            wire.fetch_add(bytes.wire, Ordering::Relaxed);
        }
        *bytes = UnpublishedBytes::default();
    }

    /// Their values, one entry per mode in [`Compression::ALL`] order.
    pub(crate) fn snapshot(&self) -> Vec<WireStats> {
        Compression::ALL
            .iter()
            .zip(&self.modes)
            .map(|(&compression, (payload, wire))| WireStats {
                compression,
                payload_bytes: payload.load(Ordering::Relaxed),
                wire_bytes: wire.load(Ordering::Relaxed),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_ranges_merge() {
        let mut c = ConnectionSent {
            connection: ConnectionId(1),
            seqs: Vec::new(),
            dispatches: 0,
        };
        c.record(1, 3);
        c.record(4, 4);
        c.record(2, 5);
        assert_eq!(
            c.seqs,
            vec![
                SeqRange { first: 1, last: 4 },
                SeqRange { first: 2, last: 5 }
            ]
        );
        assert_eq!(c.dispatches, 8);
        assert_eq!(c.all_seqs().count(), 8);
    }

    #[test]
    fn wire_counters_add_per_mode() {
        let counters = WireCounters::default();
        let mut pending = UnpublishedBytes {
            payload: 100,
            wire: 40,
        };
        counters.publish(Compression::ZstdStream, &mut pending);
        assert_eq!((pending.payload, pending.wire), (0, 0));
        counters.publish(
            Compression::None,
            &mut UnpublishedBytes {
                payload: 7,
                wire: 7,
            },
        );
        let snap = counters.snapshot();
        let modes: Vec<Compression> = snap.iter().map(|w| w.compression).collect();
        assert_eq!(modes, Compression::ALL);
        let stats = SimStats {
            by_compression: snap,
            ..SimStats::default()
        };
        let zstd = stats.compression(Compression::ZstdStream);
        assert_eq!((zstd.payload_bytes, zstd.wire_bytes), (100, 40));
        assert!((zstd.ratio() - 2.5).abs() < 1e-9);
        assert_eq!(stats.compression(Compression::ZlibStream).wire_bytes, 0);
        assert_eq!(stats.compression(Compression::ZlibStream).ratio(), 0.0);
    }
}
