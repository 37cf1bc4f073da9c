//! Gateway sessions: the sequence counter and the replay buffer.
//!
//! A session's replay buffer is also its send queue: every dispatch is
//! serialized once with its seq and appended; the attached connection writes
//! from the buffer, remembering the last seq it wrote. A Resume attaches a new
//! connection at the client's seq, so replay is "write from there on" and a
//! dispatch can be neither lost nor duplicated by the switch. The buffer keeps
//! the newest [`SimConfig::replay_buffer`](crate::SimConfig::replay_buffer)
//! dispatches; a Resume from an older seq gets op 9 `false`, and a connection
//! that falls that far behind is closed with 4000.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::ids::{ConnectionId, Seq, SessionId, ShardInfo};
use crate::ratelimit::MemberRequests;
use crate::stats::{ConnectionSent, SessionState, SessionStats};

/// One gateway session.
#[derive(Debug)]
pub(crate) struct Session {
    /// Its id.
    pub id: SessionId,
    /// The shard it was identified for.
    pub shard: ShardInfo,
    /// The intents it was identified with.
    pub intents: u64,
    /// Whether it may see message content (the MESSAGE_CONTENT intent).
    pub message_content: bool,
    /// The buffer and attachment.
    buf: Mutex<SessionBuf>,
    /// Wakes the attached connection when dispatches are appended.
    pub notify: Notify,
    /// The last seq the attached connection wrote (for the generator's
    /// back-pressure).
    pub written: AtomicU64,
    /// The attached connection is stalled by a fault: it must not hold the
    /// generator back.
    pub stalled: AtomicBool,
}

/// The mutable part of a session.
#[derive(Debug)]
pub(crate) struct SessionBuf {
    /// The seq of the next dispatch (READY gets 1).
    pub next_seq: Seq,
    /// The seq of `frames[0]`.
    pub first_seq: Seq,
    /// Serialized dispatches `first_seq..next_seq`.
    pub frames: VecDeque<Bytes>,
    /// The most frames kept.
    pub capacity: usize,
    /// The connection writing this session, if any.
    pub attached: Option<ConnectionId>,
    /// Live, detached or invalid.
    pub state: SessionState,
    /// When it was detached (for the resume window).
    pub detached_at: Option<Instant>,
    /// What each connection was sent.
    pub sent: Vec<ConnectionSent>,
    /// The op 8 all-members rate limit (it outlives connections, as the
    /// session does).
    pub member_requests: MemberRequests,
}

/// Frames taken for writing, or why none can be.
pub(crate) enum Take {
    /// Frames from the requested seq on (possibly none).
    Frames,
    /// The requested seq is no longer buffered.
    Evicted,
    /// The connection is no longer attached.
    Detached,
}

impl Session {
    /// A new live session attached to `conn`.
    pub(crate) fn new(
        id: SessionId,
        shard: ShardInfo,
        intents: u64,
        message_content: bool,
        capacity: usize,
        conn: ConnectionId,
    ) -> Self {
        Self {
            id,
            shard,
            intents,
            message_content,
            buf: Mutex::new(SessionBuf {
                next_seq: 1,
                first_seq: 1,
                frames: VecDeque::new(),
                capacity,
                attached: Some(conn),
                state: SessionState::Live,
                detached_at: None,
                sent: Vec::new(),
                member_requests: MemberRequests::default(),
            }),
            notify: Notify::new(),
            written: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
        }
    }

    /// Lock the buffer. A poisoned lock is recovered: the buffer holds no
    /// invariant a panic elsewhere could break half-way.
    pub(crate) fn lock(&self) -> MutexGuard<'_, SessionBuf> {
        self.buf
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the session can receive `event` (`in_guild` or not).
    pub(crate) fn wants(&self, event: &str, in_guild: bool) -> bool {
        crate::protocol::intents::required_for(event, in_guild)
            .is_none_or(|need| self.intents & need != 0)
    }

    /// How many dispatches the attached connection has not written yet
    /// (0 when detached or stalled).
    pub(crate) fn backlog(&self, buf: &SessionBuf) -> u64 {
        if buf.attached.is_none() || self.stalled.load(Ordering::Relaxed) {
            return 0;
        }
        (buf.next_seq - 1).saturating_sub(self.written.load(Ordering::Relaxed))
    }

    /// A snapshot for [`SimStats`](crate::SimStats).
    pub(crate) fn stats(&self) -> SessionStats {
        let buf = self.lock();
        SessionStats {
            session_id: self.id.clone(),
            last_seq: buf.next_seq - 1,
            first_buffered_seq: buf.first_seq,
            state: buf.state,
            connections: buf.sent.clone(),
        }
    }
}

impl SessionBuf {
    /// Append a dispatch built by `frame(seq)`; returns its seq. Does not wake
    /// the writer (callers batch that).
    pub(crate) fn push(&mut self, frame: impl FnOnce(Seq) -> Bytes) -> Seq {
        let seq = self.next_seq;
        self.frames.push_back(frame(seq));
        self.next_seq += 1;
        if self.frames.len() > self.capacity {
            self.frames.pop_front();
            self.first_seq += 1;
        }
        seq
    }

    /// The last seq assigned (0 before READY).
    pub(crate) fn last_seq(&self) -> Seq {
        self.next_seq - 1
    }

    /// Copy (by reference count) up to `max` frames after seq `after` into
    /// `out`, for connection `conn`.
    pub(crate) fn take(
        &self,
        conn: ConnectionId,
        after: Seq,
        max: usize,
        out: &mut Vec<Bytes>,
    ) -> Take {
        if self.attached != Some(conn) {
            return Take::Detached;
        }
        let from = after + 1;
        if from < self.first_seq {
            return Take::Evicted;
        }
        let start = usize::try_from(from - self.first_seq).unwrap_or(usize::MAX);
        out.extend(self.frames.iter().skip(start).take(max).cloned());
        Take::Frames
    }

    /// Record that `conn` wrote seqs `first..=last`.
    pub(crate) fn record_sent(&mut self, conn: ConnectionId, first: Seq, last: Seq) {
        if let Some(s) = self.sent.iter_mut().rev().find(|s| s.connection == conn) {
            s.record(first, last);
        } else {
            let mut s = ConnectionSent {
                connection: conn,
                seqs: Vec::new(),
                dispatches: 0,
            };
            s.record(first, last);
            self.sent.push(s);
        }
    }

    /// Detach `conn` if it is the attached connection; with `keep` the session
    /// stays resumable, otherwise it becomes invalid.
    pub(crate) fn detach(&mut self, conn: ConnectionId, keep: bool) -> bool {
        if self.attached != Some(conn) {
            return false;
        }
        self.attached = None;
        if keep && self.state != SessionState::Invalid {
            self.state = SessionState::Detached;
            self.detached_at = Some(Instant::now());
        } else {
            self.invalidate();
        }
        true
    }

    /// Make the session unresumable and drop its buffer.
    pub(crate) fn invalidate(&mut self) {
        self.state = SessionState::Invalid;
        self.attached = None;
        self.first_seq = self.next_seq;
        self.frames = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(capacity: usize) -> Session {
        Session::new(
            SessionId("s".into()),
            ShardInfo { id: 0, total: 1 },
            0,
            true,
            capacity,
            ConnectionId(1),
        )
    }

    #[test]
    fn buffer_keeps_the_newest() {
        let s = session(3);
        let mut b = s.lock();
        for i in 0..5u8 {
            b.push(|_| Bytes::from(vec![i]));
        }
        assert_eq!(b.first_seq, 3);
        assert_eq!(b.last_seq(), 5);
        let mut out = Vec::new();
        assert!(matches!(
            b.take(ConnectionId(1), 1, 10, &mut out),
            Take::Evicted
        ));
        assert!(matches!(
            b.take(ConnectionId(1), 2, 10, &mut out),
            Take::Frames
        ));
        assert_eq!(out.len(), 3);
        out.clear();
        assert!(matches!(
            b.take(ConnectionId(2), 2, 10, &mut out),
            Take::Detached
        ));
    }
}
