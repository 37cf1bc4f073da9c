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
//!   write one slot, publish `tail`). Readers take no lock on their fast
//!   path: a position below `tail` is written and will not be overwritten
//!   until every cursor has moved past it. A reader caches `tail` and only
//!   re-reads the shared one when it has caught up with its cache.
//! - Each receiver publishes its cursor with a release store. A writer keeps
//!   a lower bound of the slowest cursor and rescans the cursors only when
//!   the ring looks full.
//! - A reader that finds nothing parks under `state`, where writers look for
//!   parked readers after publishing `tail`, so that wake-up cannot be lost.
//! - A writer that finds the ring full publishes the position it waits for
//!   (`wait_pos_hint`, `senders_parked_hint`) and then rescans the cursors; a
//!   reader publishes its cursor and then checks for a waiting writer. Each
//!   side puts a `fence(SeqCst)` between its store and its load (a Dekker
//!   pair), so either the writer sees the room or the reader that made it
//!   wakes the writer, even if that reader then never reads again. (A fence
//!   rather than `SeqCst` stores and loads: the same cost on x86, and the
//!   form loom models.)
//! - Slots are `UnsafeCell`s, not locks: a per-slot lock cost two contended
//!   atomic operations per delivery (about 40% of the receive path in
//!   `cargo bench --bench fanout` at 64 subscribers). The cursor protocol
//!   already makes access exclusive; see [`SlotCell`].
//! - A receiver joining takes the current `tail` as its start and a fresh
//!   `epoch`. Each value carries the epoch read when its post began, and a
//!   receiver skips values whose post began before it joined: a subscription
//!   made while a post waits for space does not receive that post.
//!
//! The atomics, the lock, the wakers and the slot cells come from
//! [`crate::loom`], so the loom models in `loom_models` (run by `.ci/run`)
//! explore this exact code.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::loom::cell::UnsafeCell;
use crate::loom::future::AtomicWaker;
use crate::loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use crate::loom::sync::{Mutex, MutexGuard, lock};

#[cfg(all(test, loom))]
mod loom_models;

/// The shared ring; see the module docs.
pub(crate) struct Ring<T> {
    /// The slots, `mask + 1` of them (a power of two at least `capacity`).
    slots: Box<[SlotCell<T>]>,
    /// `slots.len() - 1`, to map a position to its slot.
    mask: u64,
    /// How many values may be unread by the slowest receiver before a send
    /// waits.
    capacity: u64,
    /// Positions below this are written and readable. Stored under `state`;
    /// on its own cache line, as every post writes it.
    tail: CachePadded<AtomicU64>,
    /// Bumped by every receiver that joins; a post records it when it starts.
    epoch: AtomicU64,
    /// The number of receivers, readable without the lock.
    receivers: AtomicUsize,
    /// Set once by [`Ring::close`], under `state`; receivers end after
    /// draining.
    closed: AtomicBool,
    /// A copy of `State::senders_parked` readers may check without the lock.
    senders_parked_hint: AtomicBool,
    /// A copy of `State::wait_pos` readers may check without the lock.
    wait_pos_hint: AtomicU64,
    /// Everything that changes under the lock; on its own cache line, as
    /// every post takes it.
    state: CachePadded<Mutex<State>>,
    /// Follows `receivers`.
    #[cfg(feature = "metrics")]
    receivers_gauge: metrics::Gauge,
}

/// One slot of the ring.
///
/// # Safety protocol
///
/// The slot for position `p` is `slots[p & mask]`; its previous occupant was
/// position `p - slots.len()`, and `slots.len() >= capacity`.
///
/// - **Write.** Only under `state`, and only when every cursor is past
///   `p - capacity` (so past the previous occupant). A cursor is published
///   with a release store *after* its reader finished with the slot, and the
///   writer reads cursors with acquire loads (`scan_min`), so every read of
///   the previous occupant happens before the write. Receivers that join
///   later start at `tail > p - slots.len()` and never read it.
/// - **Read.** Only for a position below a `tail` loaded with acquire, which
///   the writer stores with release after the write, so the write happens
///   before the read. While a receiver reads position `q`, its published
///   cursor is at most `q`, so no writer may reuse the slot until it moves on.
/// - **Take.** Only under `state` with no receiver left: nobody can read.
///
/// This is the only type in the crate with unsafe code; the ring calls its
/// three accessors under the rules above.
struct SlotCell<T>(UnsafeCell<Option<Slot<T>>>);

#[allow(unsafe_code)] // The slot accessors; see the safety protocol above.
impl<T> SlotCell<T> {
    fn new() -> Self {
        Self(UnsafeCell::new(None))
    }

    /// Writes `slot`, returning the previous occupant.
    ///
    /// # Safety
    ///
    /// The write rule: the caller holds `state` and every cursor is past the
    /// previous occupant.
    unsafe fn replace(&self, slot: Slot<T>) -> Option<Slot<T>> {
        // SAFETY: the caller has exclusive access (the write rule).
        self.0.with_mut(|cell| unsafe { (*cell).replace(slot) })
    }

    /// The value and epoch written here.
    ///
    /// # Safety
    ///
    /// The read rule: the position is below an acquired `tail` and the
    /// caller's published cursor has not moved past it.
    unsafe fn read(&self) -> Option<(Arc<T>, u64)> {
        // SAFETY: no writer may touch the slot meanwhile (the read rule).
        self.0.with(|cell| {
            unsafe { &*cell }
                .as_ref()
                .map(|s| (s.value.clone(), s.epoch))
        })
    }

    /// Empties the slot.
    ///
    /// # Safety
    ///
    /// The take rule: the caller holds `state` and no receiver remains.
    unsafe fn take(&self) -> Option<Slot<T>> {
        // SAFETY: nobody else can reach the slot (the take rule).
        self.0.with_mut(|cell| unsafe { (*cell).take() })
    }
}

// SAFETY: the slot is accessed only under the protocol above, which gives a
// writer exclusive access and readers shared access; readers clone an
// `Arc<T>` out of it on any thread, hence `T: Send + Sync`.
#[allow(unsafe_code)]
unsafe impl<T: Send + Sync> Sync for SlotCell<T> {}

/// Aligns a value to its own cache line pair, so writes to it do not slow
/// readers of its neighbours (the size x86 prefetches together).
#[repr(align(128))]
struct CachePadded<T>(T);

impl<T> Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
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
    cursors: Vec<Arc<CachePadded<Cursor>>>,
    /// A lower bound of the slowest cursor (exact after a rescan).
    min_cursor: u64,
    /// Receivers that found nothing to read and wait for the next send.
    parked: Vec<Arc<CachePadded<Cursor>>>,
    /// Whether `parked` may be non-empty.
    receivers_parked: bool,
    /// Senders waiting for space.
    senders: Vec<Waker>,
    /// Whether `senders` waits for `wait_pos` to be consumed.
    senders_parked: bool,
    /// The position whose slot the parked senders want to reuse.
    wait_pos: u64,
    /// Source of cursor ids.
    next_id: u64,
    /// Cursors closed from outside that have not left yet: still in
    /// `cursors` (their reader may be mid-read), but no longer counted as
    /// receiving posts.
    closing: usize,
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
    /// Whether this cursor is in `State::parked`; changed under the lock.
    queued: AtomicBool,
    /// Set when this one receiver is ended from outside (a plugin unload).
    closed: AtomicBool,
}

/// A receiver's place in a ring: the ring and its published cursor.
type Membership<T> = (Arc<Ring<T>>, Arc<CachePadded<Cursor>>);

/// One reader of a [`Ring`]. Dropping it leaves the ring.
pub(crate) struct Receiver<T> {
    /// The ring and this reader's cursor in it; `None` for a receiver made
    /// after the ring closed.
    ring: Option<Membership<T>>,
    /// The next position to read (the private copy of `cursor.pos`).
    next: u64,
    /// The last `tail` this receiver read; positions below it are readable.
    tail: u64,
    /// Set once this receiver has left the ring (closed from outside, then
    /// polled); only the receiver itself ever leaves, so it can never be
    /// mid-read of a slot a writer is then allowed to reuse.
    left: bool,
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
            slots: (0..len).map(|_| SlotCell::new()).collect(),
            mask: len as u64 - 1,
            capacity: capacity as u64,
            tail: CachePadded(AtomicU64::new(0)),
            epoch: AtomicU64::new(0),
            receivers: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            senders_parked_hint: AtomicBool::new(false),
            wait_pos_hint: AtomicU64::new(u64::MAX),
            state: CachePadded(Mutex::new(State {
                cursors: Vec::new(),
                min_cursor: 0,
                parked: Vec::new(),
                receivers_parked: false,
                senders: Vec::new(),
                senders_parked: false,
                wait_pos: u64::MAX,
                next_id: 0,
                closing: 0,
            })),
            #[cfg(feature = "metrics")]
            receivers_gauge: metrics::Gauge::noop(),
        }
    }

    /// Also keeps the number of receivers in `gauge`.
    #[cfg(feature = "metrics")]
    pub(crate) fn count_receivers(mut self, gauge: metrics::Gauge) -> Self {
        self.receivers_gauge = gauge;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Whether the ring has been closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether any receiver is attached.
    pub(crate) fn has_receivers(&self) -> bool {
        self.receivers.load(Ordering::Acquire) > 0
    }

    /// The epoch a post starting now records; see [`Ring::poll_send`].
    pub(crate) fn begin(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Adds a receiver that reads every value posted from now on.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Receiver<T> {
        let mut state = self.lock();
        if self.closed.load(Ordering::Acquire) {
            return Receiver::ended();
        }
        let id = state.next_id;
        state.next_id += 1;
        let join_epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let next = self.tail.load(Ordering::Acquire);
        let cursor = Arc::new(CachePadded(Cursor {
            id,
            pos: AtomicU64::new(next),
            join_epoch,
            waker: AtomicWaker::new(),
            queued: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }));
        state.cursors.push(cursor.clone());
        self.receivers.fetch_add(1, Ordering::Release);
        #[cfg(feature = "metrics")]
        self.receivers_gauge.increment(1.0);
        Receiver {
            ring: Some((self.clone(), cursor)),
            next,
            tail: next,
            left: false,
        }
    }

    /// Tries to write the value in `value` for a post that began at `epoch`,
    /// moving it into the ring (leaving `None`) when written.
    ///
    /// Returns how many receivers will see it (those that joined before the
    /// post began; `0` leaves `value` untouched), or `Pending` while the
    /// slowest receiver has `capacity` unread values. With a `waker`, a
    /// pending sender is parked and woken when there is room; without one it
    /// is not (a synchronous attempt).
    pub(crate) fn poll_send(
        &self,
        waker: Option<&Waker>,
        epoch: u64,
        value: &mut Option<Arc<T>>,
    ) -> Poll<usize> {
        let mut state = self.lock();
        if self.closed.load(Ordering::Acquire) {
            return Poll::Ready(0);
        }
        let count = if self.epoch.load(Ordering::SeqCst) == epoch {
            state.cursors.len() - state.closing
        } else {
            state
                .cursors
                .iter()
                .filter(|c| c.join_epoch <= epoch && !c.closed.load(Ordering::Relaxed))
                .count()
        };
        if count == 0 {
            return Poll::Ready(0);
        }
        let pos = self.tail.load(Ordering::Relaxed);
        if pos - state.min_cursor >= self.capacity {
            state.min_cursor = state.scan_min(pos);
            if pos - state.min_cursor >= self.capacity {
                let Some(waker) = waker else {
                    return Poll::Pending;
                };
                if !state.senders.iter().any(|w| w.will_wake(waker)) {
                    state.senders.push(waker.clone());
                }
                // Wake as soon as one slot is free: waiting for a batch would
                // hang a post whose reader frees one slot and stops reading.
                // Dekker pair with `try_recv`: publish the wait, then look at
                // the cursors again; a reader publishes its cursor, then looks
                // for a wait. One of the two sees the other.
                let wait_pos = pos - self.capacity;
                state.senders_parked = true;
                state.wait_pos = wait_pos;
                self.wait_pos_hint.store(wait_pos, Ordering::Relaxed);
                self.senders_parked_hint.store(true, Ordering::Release);
                fence(Ordering::SeqCst);
                state.min_cursor = state.scan_min(pos);
                if pos - state.min_cursor >= self.capacity {
                    return Poll::Pending;
                }
                // Room after all; our own waker goes with the others, which
                // re-check when woken.
                let senders = state.take_senders(self);
                let written = self.write(state, pos, epoch, value, count);
                senders.into_iter().for_each(Waker::wake);
                return written;
            }
        }
        self.write(state, pos, epoch, value, count)
    }

    /// Writes `value` at `pos` (which has room) and wakes parked receivers.
    fn write(
        &self,
        mut state: MutexGuard<'_, State>,
        pos: u64,
        epoch: u64,
        value: &mut Option<Arc<T>>,
        count: usize,
    ) -> Poll<usize> {
        let slot = &self.slots[(pos & self.mask) as usize];
        let Some(value) = value.take() else {
            return Poll::Ready(0);
        };
        // SAFETY: we hold `state` and the caller checked that every cursor
        // is past `pos - capacity` (against a lower bound from acquire
        // loads): the write rule of `SlotCell`.
        #[allow(unsafe_code)]
        let old = unsafe { slot.replace(Slot { value, epoch }) };
        self.tail.store(pos + 1, Ordering::Release);
        let parked = if state.receivers_parked {
            state.receivers_parked = false;
            let parked = std::mem::take(&mut state.parked);
            for cursor in &parked {
                cursor.queued.store(false, Ordering::Relaxed);
            }
            parked
        } else {
            Vec::new()
        };
        drop(state);
        for cursor in parked {
            cursor.waker.wake();
        }
        drop(old);
        Poll::Ready(count)
    }

    /// Closes the ring: sends stop, receivers end once drained.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        self.closed.store(true, Ordering::Release);
        let cursors = state.cursors.clone();
        for cursor in state.parked.drain(..) {
            cursor.queued.store(false, Ordering::Relaxed);
        }
        let senders = state.take_senders(self);
        drop(state);
        for cursor in cursors {
            cursor.waker.wake();
        }
        senders.into_iter().for_each(Waker::wake);
    }

    /// Wakes the parked senders; they re-check for room.
    fn release_senders(&self) {
        let senders = self.lock().take_senders(self);
        senders.into_iter().for_each(Waker::wake);
    }

    /// Removes a receiver and releases any sender it was holding back.
    fn leave(&self, cursor: &Arc<CachePadded<Cursor>>) {
        let mut state = self.lock();
        if let Some(ix) = state.cursors.iter().position(|c| c.id == cursor.id) {
            state.cursors.swap_remove(ix);
            self.receivers.fetch_sub(1, Ordering::Release);
            #[cfg(feature = "metrics")]
            self.receivers_gauge.decrement(1.0);
            if cursor.closed.load(Ordering::Relaxed) {
                state.closing -= 1;
            }
        }
        state.parked.retain(|c| c.id != cursor.id);
        let senders = state.take_senders(self);
        // With no receiver left nobody can read a slot: release the events
        // they hold instead of keeping them until overwritten.
        let mut released = Vec::new();
        if state.cursors.is_empty() {
            for slot in &*self.slots {
                // SAFETY: we hold `state` (no writer runs) and no receiver
                // remains (receivers only ever leave themselves, never
                // mid-read; new ones start at `tail` and read nothing
                // written before): the take rule of `SlotCell`.
                #[allow(unsafe_code)]
                let old = unsafe { slot.take() };
                released.extend(old);
            }
        }
        drop(state);
        senders.into_iter().for_each(Waker::wake);
        drop(released);
    }
}

impl State {
    /// The slowest cursor, or `tail` when there is none.
    fn scan_min(&self, tail: u64) -> u64 {
        self.cursors
            .iter()
            .map(|c| c.pos.load(Ordering::Acquire))
            .min()
            .unwrap_or(tail)
    }

    /// Takes every parked sender, to be woken once the lock is released.
    fn take_senders<T>(&mut self, ring: &Ring<T>) -> Vec<Waker> {
        self.senders_parked = false;
        ring.senders_parked_hint.store(false, Ordering::Relaxed);
        std::mem::take(&mut self.senders)
    }
}

impl<T> Receiver<T> {
    /// A receiver that has already ended.
    pub(crate) fn ended() -> Self {
        Self {
            ring: None,
            next: 0,
            tail: 0,
            left: true,
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
            let Some((ring, cursor)) = &self.ring else {
                return Poll::Ready(None);
            };
            cursor.waker.register(cx.waker());
            let senders = {
                let mut state = ring.lock();
                if !cursor.queued.load(Ordering::Relaxed) {
                    cursor.queued.store(true, Ordering::Relaxed);
                    state.parked.push(cursor.clone());
                }
                state.receivers_parked = true;
                // A sender may have parked on a position we have consumed
                // since: with both decisions under the lock, one of us sees
                // the other.
                if state.senders_parked && self.next > state.wait_pos {
                    state.take_senders(ring)
                } else {
                    Vec::new()
                }
            };
            senders.into_iter().for_each(Waker::wake);
            if self.next >= ring.tail.load(Ordering::Acquire)
                && !ring.closed.load(Ordering::Acquire)
            {
                return Poll::Pending;
            }
        }
    }

    /// Receives the next value without waiting.
    pub(crate) fn try_recv(&mut self) -> TryRecv<T> {
        let Some((ring, cursor)) = &self.ring else {
            return TryRecv::Closed;
        };
        loop {
            if cursor.closed.load(Ordering::Acquire) {
                if !self.left {
                    self.left = true;
                    ring.leave(cursor);
                }
                return TryRecv::Closed;
            }
            let pos = self.next;
            if pos >= self.tail {
                self.tail = ring.tail.load(Ordering::Acquire);
                if pos >= self.tail {
                    // `closed` is set after the last write, so a closed ring
                    // whose tail we have reached is drained.
                    if ring.closed.load(Ordering::Acquire) {
                        self.tail = ring.tail.load(Ordering::Acquire);
                        if pos >= self.tail {
                            return TryRecv::Closed;
                        }
                        continue;
                    }
                    return TryRecv::Empty;
                }
            }
            let cell = &ring.slots[(pos & ring.mask) as usize];
            // SAFETY: `pos` is below a `tail` loaded with acquire and our
            // published cursor is still `pos`: the read rule of `SlotCell`.
            #[allow(unsafe_code)]
            let slot = unsafe { cell.read() };
            self.next = pos + 1;
            // Dekker pair with `poll_send`'s park: publish, fence, then look.
            cursor.pos.store(pos + 1, Ordering::Release);
            fence(Ordering::SeqCst);
            if ring.senders_parked_hint.load(Ordering::Acquire)
                && ring.wait_pos_hint.load(Ordering::Relaxed) == pos
                && ring.senders_parked_hint.swap(false, Ordering::AcqRel)
            {
                ring.release_senders();
            }
            match slot {
                // Ended from outside while we read: a post that saw that did
                // not count us, so its value is not ours to yield (the top
                // of the loop then leaves).
                Some(_) if cursor.closed.load(Ordering::Acquire) => {}
                Some((value, epoch)) if epoch >= cursor.join_epoch => {
                    return TryRecv::Value(value);
                }
                // Posted before this receiver joined: not ours.
                _ => {}
            }
        }
    }

    /// Whether this receiver has ended (ring closed and drained, or ended
    /// from outside).
    pub(crate) fn is_closed(&self) -> bool {
        match &self.ring {
            Some((ring, cursor)) => {
                cursor.closed.load(Ordering::Acquire)
                    || (ring.closed.load(Ordering::Acquire)
                        && self.next >= ring.tail.load(Ordering::Acquire))
            }
            None => true,
        }
    }

    /// A handle that ends this receiver from another task; `None` if it was
    /// made after the ring closed.
    pub(crate) fn closer(&self) -> Option<ReceiverCloser<T>> {
        let (ring, cursor) = self.ring.as_ref()?;
        Some(ReceiverCloser {
            ring: ring.clone(),
            cursor: cursor.clone(),
        })
    }
}

/// Ends one [`Receiver`] from another task: it yields `None` from then on,
/// dropping what it had not read.
pub(crate) struct ReceiverCloser<T> {
    /// The ring the receiver reads.
    ring: Arc<Ring<T>>,
    /// The receiver's cursor.
    cursor: Arc<CachePadded<Cursor>>,
}

impl<T> ReceiverCloser<T> {
    /// Ends the receiver: it reads nothing more, and leaves the ring (no
    /// longer holding senders back) the next time it is polled, or when it
    /// is dropped. Idempotent.
    pub(crate) fn close(&self) {
        {
            // Under the lock, so posts count `closing` consistently.
            let mut state = self.ring.lock();
            if self.cursor.closed.swap(true, Ordering::AcqRel) {
                return;
            }
            if state.cursors.iter().any(|c| c.id == self.cursor.id) {
                state.closing += 1;
            }
        }
        self.cursor.waker.wake();
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if let Some((ring, cursor)) = &self.ring
            && !self.left
        {
            ring.leave(cursor);
        }
    }
}

impl<T> fmt::Debug for Ring<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.capacity)
            .field("tail", &self.tail.load(Ordering::Relaxed))
            .field("receivers", &self.receivers.load(Ordering::Relaxed))
            .field("closed", &self.closed.load(Ordering::Relaxed))
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
        let mut value = Some(Arc::new(value));
        poll_fn(|cx| ring.poll_send(Some(cx.waker()), epoch, &mut value)).await
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
        let mut four = Some(Arc::new(3));
        assert!(ring.poll_send(None, ring.begin(), &mut four).is_pending());
        assert!(four.is_some(), "a pending send keeps its value");
        assert_eq!(*recv(&mut rx).await.unwrap(), 0);
        assert_eq!(
            ring.poll_send(None, ring.begin(), &mut four),
            Poll::Ready(1)
        );
        assert!(four.is_none(), "a written value moves into the ring");
    }

    #[tokio::test]
    async fn the_last_receiver_leaving_releases_the_events() {
        let ring = Arc::new(Ring::new(4));
        let rx = ring.subscribe();
        let event = Arc::new(7);
        let mut value = Some(event.clone());
        assert_eq!(
            ring.poll_send(None, ring.begin(), &mut value),
            Poll::Ready(1)
        );
        assert_eq!(Arc::strong_count(&event), 2);
        drop(rx);
        assert_eq!(Arc::strong_count(&event), 1);
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

    #[tokio::test]
    async fn closer_ends_one_receiver_and_releases_sender() {
        let ring = Arc::new(Ring::new(1));
        let mut slow = ring.subscribe();
        let mut fast = ring.subscribe();
        send(&ring, 1).await;
        assert_eq!(*recv(&mut fast).await.unwrap(), 1);
        let mut value = Some(Arc::new(2));
        assert!(ring.poll_send(None, ring.begin(), &mut value).is_pending());
        slow.closer().unwrap().close();
        assert!(slow.is_closed());
        // `slow` has ended although it never read its value, and leaves the
        // ring when polled: then there is room again.
        assert!(recv(&mut slow).await.is_none());
        assert_eq!(
            ring.poll_send(None, ring.begin(), &mut value),
            Poll::Ready(1)
        );
        assert_eq!(*recv(&mut fast).await.unwrap(), 2);
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
