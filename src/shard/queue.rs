//! Pacing identifies: one per `max_concurrency` bucket per window.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::bus::BoxFuture;
use crate::model::ShardId;
use crate::sync::lock;

/// Grants shards permission to identify, at the rate the gateway allows.
///
/// The gateway accepts one identify per rate-limit bucket
/// (`shard_id % max_concurrency`) per 5 seconds. Every new session goes
/// through the queue; resumes do not.
pub trait IdentifyQueue: Send + Sync + 'static {
    /// Completes when `shard` may identify.
    fn acquire(&self, shard: ShardId) -> BoxFuture<'static, ()>;
}

/// An in-process [`IdentifyQueue`]: one identify per bucket per window,
/// each bucket at its own pace. Permits are spaced 2% wider than the window
/// (100 ms of 5 s), so jitter between a permit and its send never lands two
/// identifies inside one window at the server.
pub struct LocalIdentifyQueue {
    /// Shards per bucket round.
    max_concurrency: u32,
    /// Time between identifies in one bucket.
    window: Duration,
    /// When each bucket may next identify.
    next: Mutex<HashMap<u32, Instant>>,
}

impl LocalIdentifyQueue {
    /// The gateway's window between identifies in one bucket.
    pub const WINDOW: Duration = Duration::from_secs(5);

    /// A queue for `max_concurrency` buckets (at least 1) and the gateway's
    /// 5-second window.
    pub fn new(max_concurrency: u32) -> Self {
        Self::with_window(max_concurrency, Self::WINDOW)
    }

    /// A queue with another window (for a simulator or tests).
    pub fn with_window(max_concurrency: u32, window: Duration) -> Self {
        Self {
            max_concurrency: max_concurrency.max(1),
            window,
            next: Mutex::new(HashMap::new()),
        }
    }

    /// The bucket of `shard`.
    pub fn bucket(&self, shard: ShardId) -> u32 {
        shard.0 % self.max_concurrency
    }
}

impl IdentifyQueue for LocalIdentifyQueue {
    fn acquire(&self, shard: ShardId) -> BoxFuture<'static, ()> {
        let bucket = self.bucket(shard);
        let now = Instant::now();
        let at = {
            let mut next = lock(&self.next);
            let slot = next.entry(bucket).or_insert(now);
            let at = (*slot).max(now);
            // The server measures the gap between identifies as it receives
            // them; the send follows the permit by a scheduling delay that
            // varies, so permits are spaced a little wider than the window.
            *slot = at + self.window + self.window / 50;
            at
        };
        Box::pin(tokio::time::sleep_until(at))
    }
}

impl fmt::Debug for LocalIdentifyQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalIdentifyQueue")
            .field("max_concurrency", &self.max_concurrency)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_identify_per_bucket_per_window() {
        let queue = LocalIdentifyQueue::new(2);
        let start = Instant::now();
        let mut times = Vec::new();
        // Shards 0, 2, 4 share bucket 0; 1 and 3 bucket 1.
        for shard in [0, 1, 2, 3, 4] {
            queue.acquire(ShardId(shard)).await;
            times.push((shard, Instant::now() - start));
        }
        let secs: Vec<_> = times.iter().map(|(s, t)| (*s, t.as_secs())).collect();
        assert_eq!(secs, [(0, 0), (1, 0), (2, 5), (3, 5), (4, 10)]);
    }
}
