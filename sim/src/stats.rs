//! What the server sent: per shard, per session, per connection.
//!
//! [`Sim::stats`](crate::Sim::stats) returns a snapshot. The seqs each
//! connection was sent are kept as inclusive ranges, so a test can check
//! "every seq delivered exactly once" without the sim storing one entry per
//! dispatch.

use serde::Serialize;

use crate::ids::{ConnectionId, Seq, SessionId, ShardInfo};

/// A snapshot of what the server sent.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimStats {
    /// Per shard id, sorted by shard id then total.
    pub shards: Vec<ShardStats>,
    /// MESSAGE_CREATE events the built-in generator produced (each counted
    /// once, however many sessions it went to).
    pub generated: u64,
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
}
