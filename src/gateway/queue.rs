//! Pacing identifies: one per `max_concurrency` bucket per window, spaced
//! from when each identify was actually sent.
//!
//! The gateway accepts one identify per rate-limit bucket
//! (`shard_id % max_concurrency`) per 5 seconds and measures the gap as it
//! receives them. A queue that fixes a permit's time when it is asked for
//! cannot keep that promise on a busy machine: the identify leaves whenever
//! the runtime next runs the shard, so two identifies of one bucket can
//! leave closer together than the window. This queue hands out one
//! [`IdentifyPermit`] per bucket at a time instead; the shard reports
//! [`IdentifyPermit::sent`] once its identify is on the wire, and the next
//! permit of that bucket is granted a window (plus a margin) after that
//! moment. A permit dropped unused (the connection died while waiting)
//! returns its turn to the next waiter without spending the bucket's slot.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

use crate::bus::BoxFuture;
use crate::model::ShardId;
use crate::sync::lock;

/// Grants shards permission to identify, at the rate the gateway allows.
///
/// Every new session goes through the queue; resumes do not. The trait is
/// small on purpose, so it can be implemented across processes.
pub trait IdentifyQueue: Send + Sync + 'static {
    /// Completes when `shard` may identify, with a permit to report the
    /// identify sent through.
    ///
    /// # Cancel safety
    ///
    /// Implementations must be cancel safe: dropping the future before it
    /// completes gives up the turn without spending a slot.
    fn acquire(&self, shard: ShardId) -> BoxFuture<'static, IdentifyPermit>;
}

/// Permission for one identify, from [`IdentifyQueue::acquire`].
///
/// Call [`sent`](Self::sent) once the identify has been written to the
/// socket; dropping the permit without it says the identify never left, so
/// the bucket's slot is not spent.
#[must_use = "a permit reports when its identify was sent"]
pub struct IdentifyPermit {
    /// Called with `true` when the identify was sent, `false` when dropped.
    done: Option<Box<dyn FnOnce(bool) + Send>>,
}

impl IdentifyPermit {
    /// A permit that runs `done(true)` when its identify is sent and
    /// `done(false)` when it is dropped unused (for queue implementations).
    pub fn new(done: impl FnOnce(bool) + Send + 'static) -> Self {
        Self {
            done: Some(Box::new(done)),
        }
    }

    /// A permit that reports nothing (for queues that do not pace).
    pub fn unpaced() -> Self {
        Self { done: None }
    }

    /// Reports that the identify was written to the socket just now.
    pub fn sent(mut self) {
        if let Some(done) = self.done.take() {
            done(true);
        }
    }
}

impl Drop for IdentifyPermit {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done(false);
        }
    }
}

impl fmt::Debug for IdentifyPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentifyPermit")
            .field("pending", &self.done.is_some())
            .finish()
    }
}

/// An in-process [`IdentifyQueue`]: one identify per bucket per window,
/// each bucket at its own pace, in the order shards asked.
///
/// A bucket's next identify is allowed `window + margin` after the previous
/// one was *sent* (see the module docs). The margin covers the time between
/// the send and the server reading it; it defaults to 2% of the window.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shardbus::gateway::{IdentifyQueue, LocalIdentifyQueue};
/// use shardbus::model::ShardId;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let queue = LocalIdentifyQueue::with_window(16, Duration::from_millis(50));
/// let permit = queue.acquire(ShardId(3)).await;
/// // ... write the identify to the socket, then:
/// permit.sent();
/// # }
/// ```
pub struct LocalIdentifyQueue {
    /// Shards per bucket round.
    max_concurrency: u32,
    /// Time between identifies in one bucket, as the gateway counts it.
    window: Duration,
    /// Added to the window.
    margin: Duration,
    /// Each bucket's turn (a fair lock) and when it last sent an identify.
    buckets: Mutex<HashMap<u32, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
}

impl LocalIdentifyQueue {
    /// The gateway's window between identifies in one bucket.
    pub const WINDOW: Duration = Duration::from_secs(5);

    /// A queue for `max_concurrency` buckets (at least 1) and the gateway's
    /// 5-second window.
    pub fn new(max_concurrency: u32) -> Self {
        Self::with_window(max_concurrency, Self::WINDOW)
    }

    /// A queue with another window (for a simulator or tests) and a margin
    /// of 2% of it.
    pub fn with_window(max_concurrency: u32, window: Duration) -> Self {
        Self {
            max_concurrency: max_concurrency.max(1),
            window,
            margin: window / 50,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Sets the margin added to the window.
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The bucket of `shard`.
    pub fn bucket(&self, shard: ShardId) -> u32 {
        shard.0 % self.max_concurrency
    }

    fn turn(&self, bucket: u32) -> Arc<tokio::sync::Mutex<Option<Instant>>> {
        lock(&self.buckets).entry(bucket).or_default().clone()
    }
}

impl IdentifyQueue for LocalIdentifyQueue {
    fn acquire(&self, shard: ShardId) -> BoxFuture<'static, IdentifyPermit> {
        let turn = self.turn(self.bucket(shard));
        let gap = self.window + self.margin;
        Box::pin(async move {
            // tokio's mutex is fair and cancel safe: waiters are served in
            // order, and a dropped waiter leaves the line.
            let guard = turn.lock_owned().await;
            if let Some(last) = *guard {
                tokio::time::sleep_until(last + gap).await;
            }
            permit(guard)
        })
    }
}

/// A permit that holds the bucket's turn until its identify is sent or it
/// is dropped.
fn permit(mut guard: OwnedMutexGuard<Option<Instant>>) -> IdentifyPermit {
    IdentifyPermit::new(move |sent| {
        if sent {
            *guard = Some(Instant::now());
        }
        drop(guard);
    })
}

impl fmt::Debug for LocalIdentifyQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalIdentifyQueue")
            .field("max_concurrency", &self.max_concurrency)
            .field("window", &self.window)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> LocalIdentifyQueue {
        LocalIdentifyQueue::new(2).with_margin(Duration::ZERO)
    }

    #[tokio::test(start_paused = true)]
    async fn one_identify_per_bucket_per_window() {
        let queue = queue();
        let start = Instant::now();
        let mut times = Vec::new();
        // Shards 0, 2, 4 share bucket 0; 1 and 3 bucket 1.
        for shard in [0, 1, 2, 3, 4] {
            queue.acquire(ShardId(shard)).await.sent();
            times.push((shard, Instant::now() - start));
        }
        let secs: Vec<_> = times.iter().map(|(s, t)| (*s, t.as_secs())).collect();
        assert_eq!(secs, [(0, 0), (1, 0), (2, 5), (3, 5), (4, 10)]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_counts_from_the_send_not_the_grant() {
        let queue = queue();
        let start = Instant::now();
        let permit = queue.acquire(ShardId(0)).await;
        // The identify leaves 3 s after its permit (a busy runtime).
        tokio::time::advance(Duration::from_secs(3)).await;
        permit.sent();
        queue.acquire(ShardId(2)).await.sent();
        assert_eq!((Instant::now() - start).as_secs(), 8);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permit_dropped_unused_spends_no_slot() {
        let queue = queue();
        let start = Instant::now();
        queue.acquire(ShardId(0)).await.sent();
        let unused = queue.acquire(ShardId(2)).await;
        assert_eq!((Instant::now() - start).as_secs(), 5);
        drop(unused);
        // The next one goes at once: the dropped permit sent nothing.
        queue.acquire(ShardId(4)).await.sent();
        assert_eq!((Instant::now() - start).as_secs(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_waiter_gives_its_turn_to_the_next() {
        let queue = Arc::new(queue());
        let start = Instant::now();
        let first = queue.acquire(ShardId(0)).await;
        // Two waiters behind the held permit, in this order; the first
        // gives up.
        let mut cancelled = queue.acquire(ShardId(2));
        assert!(futures::poll!(&mut cancelled).is_pending());
        let next = tokio::spawn({
            let queue = queue.clone();
            async move {
                queue.acquire(ShardId(4)).await.sent();
                Instant::now()
            }
        });
        tokio::task::yield_now().await;
        drop(cancelled);
        first.sent();
        let at = tokio::time::timeout(Duration::from_secs(60), next)
            .await
            .expect("the turn passed on")
            .expect("no panic");
        assert_eq!((at - start).as_secs(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_margin_widens_the_gap() {
        let queue = LocalIdentifyQueue::new(1).with_margin(Duration::from_millis(250));
        let start = Instant::now();
        queue.acquire(ShardId(0)).await.sent();
        queue.acquire(ShardId(1)).await.sent();
        assert_eq!(Instant::now() - start, Duration::from_millis(5250));
    }
}
