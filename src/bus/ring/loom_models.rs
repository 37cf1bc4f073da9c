//! loom models of the ring (tokio's `loom_broadcast.rs` tier).
//!
//! Run with `--cfg loom` on the workspace crates only (`.ci/run` does it
//! with a `RUSTC_WORKSPACE_WRAPPER`: under a global `RUSTFLAGS` tokio drops
//! `tokio::net` and the gateway no longer builds), in release, with
//! `LOOM_MAX_PREEMPTIONS` bounding the search:
//!
//! ```text
//! RUSTC_WORKSPACE_WRAPPER=<script adding --cfg loom> CARGO_TARGET_DIR=target/loom \
//!     LOOM_MAX_PREEMPTIONS=2 cargo test -p shardbus --release --lib loom
//! ```
//!
//! Each model runs the real ring
//! code over loom's atomics, lock, `UnsafeCell` and `AtomicWaker` (the
//! [`crate::loom`] shim), driving sends and receives with loom's
//! `block_on`, so that in every explored interleaving loom checks:
//!
//! - every slot access against the `SlotCell` protocol (a write racing a
//!   read, or a read not ordered after its write, fails the model);
//! - that no wake-up is lost (a receiver or sender parked forever is a
//!   deadlock, which fails the model): the park/cursor Dekker pair and the
//!   parked-receiver handshake;
//! - the values each model asserts on: nothing lost, duplicated or
//!   reordered, and the counts posts report.
//!
//! What they do not cover: the `TypeMux` around the ring (the stop
//! protocol's in-flight count and tokio `Notify`, the topic map) runs on
//! std and tokio primitives loom cannot see; it is covered by the
//! `tests/bus_mux.rs` suite and the ring's multi-threaded stress test.

#![allow(clippy::unwrap_used)]

use std::future::poll_fn;
use std::sync::Arc;

use loom::future::block_on;
use loom::thread;

use super::{Receiver, Ring};

/// Sends `value` from a new loom thread; joins to how many will see it.
fn spawn_send(ring: &Arc<Ring<u32>>, value: u32) -> thread::JoinHandle<usize> {
    let ring = ring.clone();
    thread::spawn(move || send(&ring, value))
}

/// Sends `value`, waiting while the ring is full; how many will see it.
fn send(ring: &Ring<u32>, value: u32) -> usize {
    let epoch = ring.begin();
    let mut value = Some(Arc::new(value));
    block_on(poll_fn(|cx| {
        ring.poll_send(Some(cx.waker()), epoch, &mut value)
    }))
}

/// Receives one value, waiting while there is none; `None` once ended.
fn recv(rx: &mut Receiver<u32>) -> Option<u32> {
    block_on(poll_fn(|cx| rx.poll_recv(cx))).map(|v| *v)
}

/// Receives until the receiver ends.
fn drain(rx: &mut Receiver<u32>) -> Vec<u32> {
    std::iter::from_fn(|| recv(rx)).collect()
}

/// Two senders and two receivers on a ring of capacity 1: the second send
/// must wait for both receivers (parked sender, parked receivers, the
/// Dekker pair). Both receivers see both values, in the same order, and
/// each send reports both receivers.
///
/// (A receiver that reads on parks in `poll_recv`, where the lock, not the
/// Dekker pair, lets the send see it; the next model isolates the pair.)
///
/// With four threads this model is explored with at most one preemption
/// (about 10 s); two take longer than the whole CI step may.
#[test]
fn two_senders_two_receivers_capacity_one() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(model.preemption_bound.map_or(1, |bound| bound.min(1)));
    model.check(|| {
        let ring = Arc::new(Ring::new(1));
        let mut theirs = ring.subscribe();
        let mut mine = ring.subscribe();
        let senders = [1, 2].map(|value| spawn_send(&ring, value));
        let reader = thread::spawn(move || [recv(&mut theirs), recv(&mut theirs)]);
        let mine = [recv(&mut mine), recv(&mut mine)];
        for sender in senders {
            assert_eq!(sender.join().unwrap(), 2);
        }
        assert_eq!(reader.join().unwrap(), mine, "one order for every receiver");
        let mut sorted = mine;
        sorted.sort_unstable();
        assert_eq!(sorted, [Some(1), Some(2)]);
    });
}

/// The Dekker pair on its own: a send waits for the one slot, and the
/// reader frees it and then stops reading (it neither polls again nor
/// leaves), so only the park/cursor-publication handshake can wake the
/// send. Without the fences on both sides loom finds the lost wake-up.
#[test]
fn a_reader_that_stops_after_freeing_a_slot_wakes_the_send() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(1));
        let mut rx = ring.subscribe();
        assert_eq!(send(&ring, 1), 1);
        let sender = spawn_send(&ring, 2);
        let reader = thread::spawn(move || {
            assert_eq!(recv(&mut rx), Some(1));
            rx // kept, not dropped: dropping would wake the send too
        });
        assert_eq!(sender.join().unwrap(), 1);
        let mut rx = reader.join().unwrap();
        assert_eq!(recv(&mut rx), Some(2));
    });
}

/// A receiver dropped while a send waits on it releases that send: the
/// value is written for the receiver that remains, which reads both.
#[test]
fn receiver_dropped_mid_send_releases_it() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(1));
        let slow = ring.subscribe();
        let mut fast = ring.subscribe();
        assert_eq!(send(&ring, 1), 2);
        let sender = spawn_send(&ring, 2);
        let dropper = thread::spawn(move || drop(slow));
        assert_eq!(recv(&mut fast), Some(1));
        assert_eq!(recv(&mut fast), Some(2));
        // `slow` never read 1, so 2 could only be written once it had left.
        assert_eq!(sender.join().unwrap(), 1);
        dropper.join().unwrap();
    });
}

/// A receiver ended from outside (a plugin unload, `ReceiverCloser`) while
/// its own task reads and a send waits on it: the send completes, the
/// other receiver reads everything, and the closed one reads a prefix and
/// then ends (seeing the value only if the send counted it).
#[test]
fn receiver_closed_mid_send_releases_it() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(1));
        let mut slow = ring.subscribe();
        let closer = slow.closer().unwrap();
        let mut fast = ring.subscribe();
        assert_eq!(send(&ring, 1), 2);
        let sender = spawn_send(&ring, 2);
        let slow = thread::spawn(move || drain(&mut slow));
        closer.close();
        assert_eq!(recv(&mut fast), Some(1));
        assert_eq!(recv(&mut fast), Some(2));
        let counted = sender.join().unwrap();
        let slow = slow.join().unwrap();
        assert!(counted == 1 || counted == 2, "counted {counted}");
        assert!([1, 2].starts_with(&slow), "slow read {slow:?}");
        assert!(
            slow.len() < 2 || counted == 2,
            "slow read an uncounted value"
        );
    });
}

/// The ring closes (the bus stops) while a send waits for room: the send
/// returns, having written its value (then counted, and read before the
/// receiver ends) or not (then 0).
#[test]
fn close_during_a_blocked_send_releases_it() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(1));
        let mut rx = ring.subscribe();
        assert_eq!(send(&ring, 1), 1);
        let sender = spawn_send(&ring, 2);
        let closer = {
            let ring = ring.clone();
            thread::spawn(move || ring.close())
        };
        let got = drain(&mut rx);
        closer.join().unwrap();
        match sender.join().unwrap() {
            1 => assert_eq!(got, [1, 2]),
            0 => assert_eq!(got, [1]),
            n => panic!("a send to one receiver counted {n}"),
        }
    });
}
