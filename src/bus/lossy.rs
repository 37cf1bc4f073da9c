//! The bounded, never-blocking queue behind a lossy subscriber.
//!
//! A post pushes into it without waiting; when it is full the oldest value is
//! dropped and counted, and the reader is told how many it missed before it
//! gets the values that are left.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use atomic_waker::AtomicWaker;

use crate::sync::lock;

/// A bounded queue that drops its oldest values instead of waiting.
pub(crate) struct LossyQueue<T> {
    /// The buffered values and the count of dropped ones.
    state: Mutex<State<T>>,
    /// The most values kept.
    capacity: usize,
    /// The reader, woken by every push and by close.
    waker: AtomicWaker,
    /// Counts every value dropped.
    #[cfg(feature = "metrics")]
    missed_total: metrics::Counter,
}

/// The lock-protected part of a [`LossyQueue`].
struct State<T> {
    /// Values not yet read, oldest first.
    buf: VecDeque<Arc<T>>,
    /// Values dropped since the reader last heard of it.
    missed: u64,
    /// No more pushes; the reader ends once drained.
    closed: bool,
}

/// What the reader of a [`LossyQueue`] gets next.
pub(crate) enum Next<T> {
    /// A value.
    Value(Arc<T>),
    /// This many values were dropped before the ones that follow.
    Missed(u64),
}

impl<T> LossyQueue<T> {
    /// A queue that keeps at most `capacity` values (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            state: Mutex::new(State {
                buf: VecDeque::with_capacity(capacity.min(1024)),
                missed: 0,
                closed: false,
            }),
            capacity,
            waker: AtomicWaker::new(),
            #[cfg(feature = "metrics")]
            missed_total: metrics::Counter::noop(),
        }
    }

    /// Also counts every dropped value in `counter`.
    #[cfg(feature = "metrics")]
    pub(crate) fn count_missed(mut self, counter: metrics::Counter) -> Self {
        self.missed_total = counter;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        lock(&self.state)
    }

    /// Adds a value, dropping the oldest if full. Returns `false` if the
    /// queue is closed (nothing was added).
    pub(crate) fn push(&self, value: Arc<T>) -> bool {
        let dropped = {
            let mut state = self.lock();
            if state.closed {
                return false;
            }
            let dropped = if state.buf.len() == self.capacity {
                state.missed += 1;
                #[cfg(feature = "metrics")]
                self.missed_total.increment(1);
                state.buf.pop_front()
            } else {
                None
            };
            state.buf.push_back(value);
            dropped
        };
        self.waker.wake();
        drop(dropped);
        true
    }

    /// Ends the queue: the reader drains what is buffered, then ends.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.waker.wake();
    }

    /// Whether the queue is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The next item for the reader; `None` once closed and drained.
    pub(crate) fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Next<T>>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let mut state = self.lock();
        if state.missed > 0 {
            coop.made_progress();
            return Poll::Ready(Some(Next::Missed(std::mem::take(&mut state.missed))));
        }
        if let Some(value) = state.buf.pop_front() {
            coop.made_progress();
            return Poll::Ready(Some(Next::Value(value)));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        // Registered under the lock: a push after this point wakes us.
        self.waker.register(cx.waker());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::future::poll_fn;

    #[tokio::test]
    async fn overflow_reports_exact_count_then_newest_values() {
        let q = LossyQueue::new(2);
        for i in 0..5 {
            assert!(q.push(Arc::new(i)));
        }
        let next = poll_fn(|cx| q.poll_next(cx)).await.unwrap();
        assert!(matches!(next, Next::Missed(3)));
        for want in [3, 4] {
            match poll_fn(|cx| q.poll_next(cx)).await.unwrap() {
                Next::Value(v) => assert_eq!(*v, want),
                Next::Missed(_) => panic!("unexpected lag"),
            }
        }
        q.close();
        assert!(!q.push(Arc::new(9)));
        assert!(poll_fn(|cx| q.poll_next(cx)).await.is_none());
    }
}
