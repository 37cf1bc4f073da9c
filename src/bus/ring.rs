//! A lossless multi-producer, multi-consumer broadcast ring.
//!
//! This is the storage behind each event type of a [`TypeMux`](super::TypeMux):
//! one shared ring of `Arc<T>` slots that every receiver reads with its own
//! cursor. A value is written once and read by all; a sender that would
//! overwrite a slot some receiver has not read yet waits for the slowest
//! receiver instead (lossless backpressure).
//!
//! # How it synchronises
//!
//! - Writers serialise on `state` (a short critical section: check space,
//!   write one slot, publish `tail`). Readers never take that lock on their
//!   fast path: a position below `tail` is written and will not be
//!   overwritten until every cursor has moved past it.
//! - Each receiver publishes its cursor in an atomic. A writer keeps a cached
//!   lower bound of the slowest cursor and rescans the cursors only when the
//!   ring looks full.
//! - Parking uses Dekker-style `SeqCst` pairs: a writer publishes `tail` then
//!   checks for parked readers; a reader registers as parked then re-reads
//!   `tail`. A writer that parks publishes `wait_pos` and `senders_parked`,
//!   then rescans; the reader that consumes `wait_pos` checks the flag after
//!   publishing its cursor.
//! - A receiver joining takes the current `tail` as its start and a fresh
//!   `epoch`. Each value carries the epoch read when its post began, and a
//!   receiver skips values whose post began before it joined: a subscription
//!   made while a post waits for space does not receive that post.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};

use atomic_waker::AtomicWaker;

/// The shared ring; see the [module docs](self).
pub(crate) struct Ring<T> {
    /// The slots, `mask + 1` of them (a power of two at least `capacity`).
    slots: Box<[RwLock<Option<Slot<T>>>]>,
    /// `slots.len() - 1`, to map a position to its slot.
    mask: u64,
    /// How many values may be unread by the slowest receiver before a send
    /// waits.
    capacity: u64,
    /// Positions below this are written and readable.
    tail: AtomicU64,
    /// Bumped by every receiver that joins; a post records it when it starts.
    epoch: AtomicU64,
    /// The number of receivers, readable without the lock.
    receivers: AtomicUsize,
    /// Set once by [`Ring::close`]; receivers end after draining.
    closed: AtomicBool,
    /// Set when a sender is parked waiting for `wait_pos` to be consumed.
    senders_parked: AtomicBool,
    /// The position whose slot a parked sender wants to reuse.
    wait_pos: AtomicU64,
    /// Whether `state.parked` holds receivers to wake on the next send.
    receivers_parked: AtomicBool,
    /// Everything that changes under the lock.
    state: Mutex<State>,
}

/// One written value.
struct Slot<T> {
    /// The value, shared by every receiver.
    value: Arc<T>,
    /// The ring's epoch when the post that wrote this value began.
    epoch: u64,
}

/// The lock-protected part of a [`Ring`].
struct State {
    /// Every live receiver's cursor.
    cursors: Vec<Arc<Cursor>>,
    /// A lower bound of the slowest cursor (exact after a rescan).
    min_cursor: u64,
    /// Receivers that found nothing to read and wait for the next send.
    parked: Vec<Arc<Cursor>>,
    /// Senders waiting for space.
    senders: Vec<Waker>,
    /// Source of cursor ids.
    next_id: u64,
}

/// A receiver's published state.
struct Cursor {
    /// Identifies the receiver for removal.
    id: u64,
    /// The next position this receiver will read.
    pos: AtomicU64,
    /// The ring's epoch after this receiver joined.
    join_epoch: u64,
    /// Woken when something is sent (or the ring closes).
    waker: AtomicWaker,
    /// Whether this cursor is in `State::parked`.
    queued: AtomicBool,
}

/// One reader of a [`Ring`]. Dropping it leaves the ring.
pub(crate) struct Receiver<T> {
    /// The ring read; `None` for a receiver made after the ring closed.
    ring: Option<Arc<Ring<T>>>,
    /// This receiver's published cursor.
    cursor: Option<Arc<Cursor>>,
    /// The next position to read (the private copy of `cursor.pos`).
    next: u64,
}

/// What [`Receiver::try_recv`] found.
pub(crate) enum TryRecv<T> {
    /// A value.
    Value(Arc<T>),
    /// Nothing now.
    Empty,
    /// The ring is closed and drained.
    Closed,
}

impl<T> Ring<T> {
    /// A ring in which a sender waits once `capacity` values are unread.
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let len = capacity.next_power_of_two();
        Self {
            slots: (0..len).map(|_| RwLock::new(None)).collect(),
            mask: len as u64 - 1,
            capacity: capacity as u64,
            tail: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            receivers: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            senders_parked: AtomicBool::new(false),
            wait_pos: AtomicU64::new(u64::MAX),
            receivers_parked: AtomicBool::new(false),
            state: Mutex::new(State {
                cursors: Vec::new(),
                min_cursor: 0,
                parked: Vec::new(),
                senders: Vec::new(),
                next_id: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether any receiver is attached.
    pub(crate) fn has_receivers(&self) -> bool {
        self.receivers.load(SeqCst) > 0
    }

    /// The epoch a post starting now records; see [`Ring::poll_send`].
    pub(crate) fn begin(&self) -> u64 {
        self.epoch.load(SeqCst)
    }

    /// Adds a receiver that reads every value posted from now on.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Receiver<T> {
        let mut state = self.lock();
        if self.closed.load(SeqCst) {
            return Receiver::ended();
        }
        let id = state.next_id;
        state.next_id += 1;
        let join_epoch = self.epoch.fetch_add(1, SeqCst) + 1;
        let next = self.tail.load(SeqCst);
        let cursor = Arc::new(Cursor {
            id,
            pos: AtomicU64::new(next),
            join_epoch,
            waker: AtomicWaker::new(),
            queued: AtomicBool::new(false),
        });
        state.cursors.push(cursor.clone());
        self.receivers.fetch_add(1, SeqCst);
        Receiver {
            ring: Some(self.clone()),
            cursor: Some(cursor),
            next,
        }
    }

    /// Tries to write `value` for a post that began at `epoch`.
    ///
    /// Returns how many receivers will see it (those that joined before the
    /// post began), or `Pending` while the slowest receiver has `capacity`
    /// unread values.
    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        epoch: u64,
        value: &Arc<T>,
    ) -> Poll<usize> {
        let mut state = self.lock();
        if self.closed.load(SeqCst) {
            return Poll::Ready(0);
        }
        let count = if self.epoch.load(SeqCst) == epoch {
            state.cursors.len()
        } else {
            state
                .cursors
                .iter()
                .filter(|c| c.join_epoch <= epoch)
                .count()
        };
        if count == 0 {
            return Poll::Ready(0);
        }
        let pos = self.tail.load(SeqCst);
        if pos - state.min_cursor >= self.capacity {
            state.min_cursor = state.scan_min(pos);
            if pos - state.min_cursor >= self.capacity {
                if !state.senders.iter().any(|w| w.will_wake(cx.waker())) {
                    state.senders.push(cx.waker().clone());
                }
                self.wait_pos.store(pos - self.capacity, SeqCst);
                self.senders_parked.store(true, SeqCst);
                state.min_cursor = state.scan_min(pos);
                if pos - state.min_cursor >= self.capacity {
                    return Poll::Pending;
                }
            }
            // There is room after all. Other senders may be parked on the
            // same condition: let them re-check once this write is done.
            self.senders_parked.store(false, SeqCst);
        }
        let old = {
            let mut slot = self.slots[(pos & self.mask) as usize]
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            slot.replace(Slot {
                value: value.clone(),
                epoch,
            })
        };
        self.tail.store(pos + 1, SeqCst);
        let parked = if self.receivers_parked.load(SeqCst) {
            self.receivers_parked.store(false, SeqCst);
            std::mem::take(&mut state.parked)
        } else {
            Vec::new()
        };
        let senders = std::mem::take(&mut state.senders);
        drop(state);
        for cursor in parked {
            cursor.queued.store(false, SeqCst);
            cursor.waker.wake();
        }
        senders.into_iter().for_each(Waker::wake);
        drop(old);
        Poll::Ready(count)
    }

    /// Closes the ring: sends stop, receivers end once drained.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        self.closed.store(true, SeqCst);
        let parked: Vec<_> = state.cursors.clone();
        state.parked.clear();
        let senders = std::mem::take(&mut state.senders);
        drop(state);
        for cursor in parked {
            cursor.waker.wake();
        }
        senders.into_iter().for_each(Waker::wake);
    }

    /// Wakes every parked sender.
    fn wake_senders(&self) {
        let senders = std::mem::take(&mut self.lock().senders);
        senders.into_iter().for_each(Waker::wake);
    }

    /// Removes a receiver and releases any sender it was holding back.
    fn leave(&self, cursor: &Arc<Cursor>) {
        let mut state = self.lock();
        if let Some(ix) = state.cursors.iter().position(|c| c.id == cursor.id) {
            state.cursors.swap_remove(ix);
            self.receivers.fetch_sub(1, SeqCst);
        }
        state.parked.retain(|c| c.id != cursor.id);
        let senders = if self.senders_parked.swap(false, SeqCst) {
            std::mem::take(&mut state.senders)
        } else {
            Vec::new()
        };
        drop(state);
        senders.into_iter().for_each(Waker::wake);
    }
}

impl State {
    /// The slowest cursor, or `tail` when there is none.
    fn scan_min(&self, tail: u64) -> u64 {
        self.cursors
            .iter()
            .map(|c| c.pos.load(SeqCst))
            .min()
            .unwrap_or(tail)
    }
}

impl<T> Receiver<T> {
    /// A receiver that has already ended.
    pub(crate) fn ended() -> Self {
        Self {
            ring: None,
            cursor: None,
            next: 0,
        }
    }

    /// Receives the next value, `None` once the ring is closed and drained.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<T>>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        loop {
            match self.try_recv() {
                TryRecv::Value(value) => {
                    coop.made_progress();
                    return Poll::Ready(Some(value));
                }
                TryRecv::Closed => return Poll::Ready(None),
                TryRecv::Empty => {}
            }
            let (Some(ring), Some(cursor)) = (&self.ring, &self.cursor) else {
                return Poll::Ready(None);
            };
            cursor.waker.register(cx.waker());
            if !cursor.queued.swap(true, SeqCst) {
                let mut state = ring.lock();
                state.parked.push(cursor.clone());
                ring.receivers_parked.store(true, SeqCst);
            }
            if self.next >= ring.tail.load(SeqCst) && !ring.closed.load(SeqCst) {
                return Poll::Pending;
            }
        }
    }

    /// Receives the next value without waiting.
    pub(crate) fn try_recv(&mut self) -> TryRecv<T> {
        let (Some(ring), Some(cursor)) = (&self.ring, &self.cursor) else {
            return TryRecv::Closed;
        };
        loop {
            let pos = self.next;
            if pos >= ring.tail.load(SeqCst) {
                // Closed is set after the last write, so a closed ring whose
                // tail we have reached is drained.
                if ring.closed.load(SeqCst) && pos >= ring.tail.load(SeqCst) {
                    return TryRecv::Closed;
                }
                return TryRecv::Empty;
            }
            let slot = ring.slots[(pos & ring.mask) as usize]
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|s| (s.value.clone(), s.epoch));
            self.next = pos + 1;
            cursor.pos.store(pos + 1, SeqCst);
            if ring.senders_parked.load(SeqCst)
                && ring.wait_pos.load(SeqCst) == pos
                && ring.senders_parked.swap(false, SeqCst)
            {
                ring.wake_senders();
            }
            match slot {
                Some((value, epoch)) if epoch >= cursor.join_epoch => {
                    return TryRecv::Value(value);
                }
                // Posted before this receiver joined: not ours.
                _ => {}
            }
        }
    }

    /// Whether this receiver has ended (ring closed and drained).
    pub(crate) fn is_closed(&self) -> bool {
        match (&self.ring, &self.cursor) {
            (Some(ring), Some(_)) => {
                ring.closed.load(SeqCst) && self.next >= ring.tail.load(SeqCst)
            }
            _ => true,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let (Some(ring), Some(cursor)) = (&self.ring, &self.cursor) {
            ring.leave(cursor);
        }
    }
}

impl<T> fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity)
            .field("tail", &self.tail.load(SeqCst))
            .field("receivers", &self.receivers.load(SeqCst))
            .field("closed", &self.closed.load(SeqCst))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::future::poll_fn;

    async fn send<T>(ring: &Ring<T>, value: T) -> usize {
        let epoch = ring.begin();
        let value = Arc::new(value);
        poll_fn(|cx| ring.poll_send(cx, epoch, &value)).await
    }

    async fn recv<T>(rx: &mut Receiver<T>) -> Option<Arc<T>> {
        poll_fn(|cx| rx.poll_recv(cx)).await
    }

    #[tokio::test]
    async fn capacity_need_not_be_a_power_of_two() {
        let ring = Arc::new(Ring::new(3));
        let mut rx = ring.subscribe();
        for i in 0..3 {
            assert_eq!(send(&ring, i).await, 1);
        }
        let waker = futures_waker();
        let mut cx = Context::from_waker(&waker);
        let four = Arc::new(3);
        assert!(ring.poll_send(&mut cx, ring.begin(), &four).is_pending());
        assert_eq!(*recv(&mut rx).await.unwrap(), 0);
        assert_eq!(ring.poll_send(&mut cx, ring.begin(), &four), Poll::Ready(1));
    }

    #[tokio::test]
    async fn closed_ring_drains_then_ends() {
        let ring = Arc::new(Ring::new(4));
        let mut rx = ring.subscribe();
        send(&ring, 1).await;
        ring.close();
        assert_eq!(*recv(&mut rx).await.unwrap(), 1);
        assert!(recv(&mut rx).await.is_none());
        assert!(rx.is_closed());
        let mut late = ring.subscribe();
        assert!(recv(&mut late).await.is_none());
    }

    fn futures_waker() -> Waker {
        Waker::noop().clone()
    }

    /// Many producers and consumers, consumers joining and leaving while
    /// values flow: every consumer sees each producer's values in order,
    /// without gaps, from the point it joined.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn stress_producers_and_churning_consumers() {
        const PRODUCERS: u64 = 4;
        const PER_PRODUCER: u64 = 20_000;
        let ring = Arc::new(Ring::<(u64, u64)>::new(8));
        let mut consumers = Vec::new();
        for c in 0..8u64 {
            let mut rx = ring.subscribe();
            consumers.push(tokio::spawn(async move {
                let mut last = [None::<u64>; PRODUCERS as usize];
                let mut seen = 0u64;
                // Half the consumers leave early.
                let limit = if c % 2 == 0 {
                    u64::MAX
                } else {
                    5_000 + c * 100
                };
                while let Some(v) = recv(&mut rx).await {
                    let (p, i) = *v;
                    if let Some(prev) = last[p as usize] {
                        assert_eq!(i, prev + 1, "gap or reorder from producer {p}");
                    }
                    last[p as usize] = Some(i);
                    seen += 1;
                    if seen == limit {
                        break;
                    }
                }
                (c, seen)
            }));
        }
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let ring = ring.clone();
                tokio::spawn(async move {
                    for i in 0..PER_PRODUCER {
                        send(&ring, (p, i)).await;
                        if i % 1000 == 0 {
                            // A consumer joining mid-stream.
                            let mut rx = ring.subscribe();
                            let first = recv(&mut rx);
                            drop(first);
                        }
                    }
                })
            })
            .collect();
        for p in producers {
            p.await.unwrap();
        }
        ring.close();
        for c in consumers {
            let (c, seen) = c.await.unwrap();
            if c % 2 == 0 {
                assert_eq!(seen, PRODUCERS * PER_PRODUCER);
            } else {
                assert_eq!(seen, 5_000 + c * 100);
            }
        }
    }
}
