//! Switching the bus from one shard set to another without losing or
//! repeating events (the rolling rescale).
//!
//! Discord lets sessions of two shard totals overlap, and it sends each
//! event to every session whose shard owns its guild, so during a rolling
//! rescale both sets receive the same events, each at its own pace. The
//! cutover admits every event once, by a key made of its type and its raw
//! `d` (the same bytes on every session):
//!
//! 1. **Recording**, from before the new set identifies until it is ready:
//!    the old set posts everything and records each key; the new set posts
//!    nothing.
//! 2. **Overlap**, from the switch until a grace period after the old set
//!    has stopped: a key is posted the first time either set reads it, and
//!    refused after. Whichever set is ahead delivers; the other's copies are
//!    dropped.
//! 3. **Off**: the new set alone, nothing checked.
//!
//! Keys are kept for [`KEEP`] (two sessions never lag each other by that
//! much), so memory is bounded by the event rate. One limit: two events
//! with the same type and byte-identical `d` inside that window count as
//! one while the cutover runs.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sync::lock;

/// How long a key is remembered.
pub(crate) const KEEP: Duration = Duration::from_secs(60);

/// No cutover: everything is admitted.
const OFF: u8 = 0;
/// The old set records, the new one is muted.
const RECORDING: u8 = 1;
/// Both sets post each key once.
const OVERLAP: u8 = 2;

/// The cutover state shared by every shard of both sets.
#[derive(Debug, Default)]
pub(crate) struct Cutover {
    /// [`OFF`], [`RECORDING`] or [`OVERLAP`].
    phase: AtomicU8,
    /// The generation of the set being replaced.
    old: AtomicU64,
    /// Bumped by each cutover, so a late `end` of an earlier one is ignored.
    epoch: AtomicU64,
    /// The keys seen, and when.
    seen: Mutex<Seen>,
}

/// The remembered keys, oldest first.
#[derive(Debug, Default)]
struct Seen {
    /// For lookups.
    keys: HashSet<u64>,
    /// For expiry.
    order: VecDeque<(Instant, u64)>,
}

impl Seen {
    /// Records `key`; `false` if it was already there.
    fn insert(&mut self, key: u64, now: Instant) -> bool {
        while let Some(&(at, old)) = self.order.front() {
            if now.duration_since(at) < KEEP {
                break;
            }
            self.order.pop_front();
            self.keys.remove(&old);
        }
        let new = self.keys.insert(key);
        if new {
            self.order.push_back((now, key));
        }
        new
    }
}

impl Cutover {
    /// Whether a shard of set `generation` posts this dispatch.
    pub(crate) fn admit(&self, generation: u64, event_type: &str, data: &str) -> bool {
        match self.phase.load(Ordering::Acquire) {
            OFF => true,
            RECORDING if generation == self.old.load(Ordering::Acquire) => {
                lock(&self.seen).insert(key(event_type, data), Instant::now());
                true
            }
            RECORDING => false,
            _ => lock(&self.seen).insert(key(event_type, data), Instant::now()),
        }
    }

    /// Starts a cutover away from set `old`; returns its epoch.
    pub(crate) fn record(&self, old: u64) -> u64 {
        *lock(&self.seen) = Seen::default();
        self.old.store(old, Ordering::Release);
        self.phase.store(RECORDING, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Both sets post, each key once.
    pub(crate) fn overlap(&self) {
        self.phase.store(OVERLAP, Ordering::Release);
    }

    /// Ends cutover `epoch` (nothing if another has started since).
    pub(crate) fn end(&self, epoch: u64) {
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.phase.store(OFF, Ordering::Release);
            *lock(&self.seen) = Seen::default();
        }
    }
}

/// The key of a dispatch: its type and raw `d`.
fn key(event_type: &str, data: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    event_type.hash(&mut hasher);
    data.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_admits_everything_twice() {
        let cutover = Cutover::default();
        assert!(cutover.admit(0, "MESSAGE_CREATE", "{}"));
        assert!(cutover.admit(1, "MESSAGE_CREATE", "{}"));
    }

    #[test]
    fn recording_mutes_the_new_set_and_overlap_admits_each_key_once() {
        let cutover = Cutover::default();
        let epoch = cutover.record(3);
        assert!(cutover.admit(3, "MESSAGE_CREATE", r#"{"id":"1"}"#));
        assert!(
            !cutover.admit(4, "MESSAGE_CREATE", r#"{"id":"2"}"#),
            "muted"
        );
        cutover.overlap();
        // The old set posted 1: the new set's copy is dropped.
        assert!(!cutover.admit(4, "MESSAGE_CREATE", r#"{"id":"1"}"#));
        // 2 was muted on the new set, so whoever reads it now posts it.
        assert!(cutover.admit(3, "MESSAGE_CREATE", r#"{"id":"2"}"#));
        assert!(!cutover.admit(4, "MESSAGE_CREATE", r#"{"id":"2"}"#));
        // Ahead on the new set: the old set's copy is dropped.
        assert!(cutover.admit(4, "MESSAGE_CREATE", r#"{"id":"3"}"#));
        assert!(!cutover.admit(3, "MESSAGE_CREATE", r#"{"id":"3"}"#));
        // Same bytes, another type: another event.
        assert!(cutover.admit(4, "MESSAGE_UPDATE", r#"{"id":"3"}"#));
        cutover.end(epoch);
        assert!(cutover.admit(4, "MESSAGE_CREATE", r#"{"id":"3"}"#));
    }

    #[test]
    fn a_late_end_of_an_earlier_cutover_is_ignored() {
        let cutover = Cutover::default();
        let first = cutover.record(0);
        let _second = cutover.record(1);
        cutover.end(first);
        assert!(
            !cutover.admit(2, "T", "{}"),
            "the second is still recording"
        );
    }

    #[test]
    fn keys_expire() {
        let mut seen = Seen::default();
        let start = Instant::now();
        assert!(seen.insert(1, start));
        assert!(!seen.insert(1, start + Duration::from_secs(1)));
        assert!(seen.insert(2, start + KEEP));
        assert!(seen.insert(1, start + KEEP), "1 has expired");
        assert_eq!(seen.keys.len(), 2);
    }
}
