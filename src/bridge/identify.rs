//! An identify queue shared by every host of a bot, on a JetStream
//! key-value bucket.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{
    CreateFailed, NatsError, ceil_secs, check_prefix, create_with_ttl, key_value, put_with_ttl,
};
use crate::bus::BoxFuture;
use crate::gateway::{IdentifyPermit, IdentifyQueue};
use crate::model::{SessionStartLimit, ShardId};
use crate::sync::lock;

/// How often a host waiting for a lease tries to take it.
const POLL: Duration = Duration::from_millis(25);

/// What one attempt to take a start from the budget found.
enum Spend {
    /// Taken.
    Taken,
    /// None left: wait this long before looking again.
    Wait(Duration),
    /// Another host changed it first: read again.
    Raced,
}

/// The budget's key.
const BUDGET: &str = "budget";

/// The shared daily budget, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Budget {
    /// Session starts left.
    remaining: u32,
    /// Starts per period.
    total: u32,
    /// When `remaining` is `total` again, in Unix milliseconds.
    resets_at_ms: u64,
}

impl Budget {
    /// The budget with one start given back (never above the total).
    fn refunded(self) -> Self {
        Self {
            remaining: self.remaining.saturating_add(1).min(self.total),
            ..self
        }
    }
}

/// Now, in Unix milliseconds.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An [`IdentifyQueue`] shared across hosts through NATS.
///
/// # Leases
///
/// Each rate-limit bucket (`shard_id % max_concurrency`) has a key,
/// `bucket.<n>`. A host may identify a shard of bucket `n` only while it
/// holds that key's lease, which it takes by creating the key (a create
/// fails while the key exists). The lease is made with a long TTL (the
/// window plus [`pending_ttl`](NatsIdentifyQueue::pending_ttl)) to cover
/// connecting; once the identify is sent, the holder rewrites it with a TTL
/// of the window plus the margin, counted by the server from then on, and
/// deletes it itself when that much time has passed on its own clock. So
/// two identifies of one bucket are always a full window apart, whichever
/// hosts send them; a holder that crashes leaves a lease that simply
/// expires. Within a host, shards of a bucket take turns in the order they
/// asked, and only the one at the front polls the key.
///
/// # The daily budget
///
/// With [`with_budget`](NatsIdentifyQueue::with_budget), the key `budget`
/// holds the session starts left and when they reset. A start is taken
/// from it (compare-and-swap) before a lease is granted and given back if
/// the identify is never sent; once it is spent, every host waits for the
/// reset. The reset time is kept as wall-clock time, so hosts' clocks are
/// assumed to agree to within seconds (NTP).
///
/// ```no_run
/// use std::sync::Arc;
/// use shardbus::bridge::NatsIdentifyQueue;
///
/// # async fn run(js: async_nats::jetstream::Context, limit: shardbus::model::SessionStartLimit)
/// # -> Result<(), shardbus::bridge::NatsError> {
/// let queue = NatsIdentifyQueue::open(&js, "shardbus", limit.max_concurrency)
///     .await?
///     .with_budget(&limit)
///     .await?;
/// let queue: Arc<dyn shardbus::gateway::IdentifyQueue> = Arc::new(queue);
/// # let _ = queue;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct NatsIdentifyQueue {
    /// Shared by clones.
    inner: Arc<Inner>,
}

struct Inner {
    /// The bucket.
    kv: kv::Store,
    /// Its name.
    bucket: String,
    /// To rewrite a lease with a TTL.
    js: jetstream::Context,
    /// How many rate-limit buckets.
    max_concurrency: u32,
    /// One identify per bucket per window.
    window: Duration,
    /// Added to the window.
    margin: Duration,
    /// How long a lease lasts before its identify is sent.
    pending_ttl: Duration,
    /// Whether the budget is kept.
    budgeted: bool,
    /// Local turns per bucket.
    turns: Mutex<HashMap<u32, Arc<tokio::sync::Mutex<()>>>>,
    /// This host, in lease values (for operators reading the bucket).
    holder: String,
}

impl std::fmt::Debug for NatsIdentifyQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsIdentifyQueue")
            .field("bucket", &self.inner.bucket)
            .field("max_concurrency", &self.inner.max_concurrency)
            .field("window", &self.inner.window)
            .finish_non_exhaustive()
    }
}

impl NatsIdentifyQueue {
    /// The gateway's window: one identify per bucket per 5 seconds.
    pub const WINDOW: Duration = Duration::from_secs(5);

    /// The queue of `prefix` (bucket `<prefix>_identify`, created if
    /// missing) for `max_concurrency` buckets, with the gateway's window
    /// and a 250 ms margin, and no budget.
    ///
    /// # Errors
    ///
    /// [`NatsError::Prefix`] for a bad prefix; [`NatsError::KeyValue`] if
    /// the bucket cannot be created.
    pub async fn open(
        js: &jetstream::Context,
        prefix: &str,
        max_concurrency: u32,
    ) -> Result<Self, NatsError> {
        check_prefix(prefix)?;
        let bucket = format!("{prefix}_identify");
        let kv = key_value(
            js,
            &bucket,
            "shardbus: identify leases per rate-limit bucket",
            true,
            Duration::ZERO,
        )
        .await?;
        Ok(Self {
            inner: Arc::new(Inner {
                kv,
                bucket,
                js: js.clone(),
                max_concurrency: max_concurrency.max(1),
                window: Self::WINDOW,
                margin: Duration::from_millis(250),
                pending_ttl: Duration::from_secs(30),
                budgeted: false,
                turns: Mutex::new(HashMap::new()),
                holder: format!("pid {} ({:016x})", std::process::id(), fastrand::u64(..)),
            }),
        })
    }

    /// The same queue with another window (the sim's, in tests).
    #[must_use]
    pub fn window(self, window: Duration) -> Self {
        self.with(|inner| inner.window = window)
    }

    /// The same queue with another margin added to the window.
    #[must_use]
    pub fn margin(self, margin: Duration) -> Self {
        self.with(|inner| inner.margin = margin)
    }

    /// How long a lease outlives a holder that crashed before sending its
    /// identify (30 s by default, on top of the window): the longest a
    /// connection may take from the grant to the identify.
    #[must_use]
    pub fn pending_ttl(self, ttl: Duration) -> Self {
        self.with(|inner| inner.pending_ttl = ttl)
    }

    /// Changes a queue no clone shares yet.
    fn with(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            change(inner);
        }
        self
    }

    /// Keeps the shared daily budget too, starting from `limit` if no host
    /// has yet (or the stored one has reset); otherwise the lower of the
    /// stored count and `limit`'s.
    ///
    /// # Errors
    ///
    /// [`NatsError::KeyValue`] if the budget cannot be read or written.
    pub async fn with_budget(mut self, limit: &SessionStartLimit) -> Result<Self, NatsError> {
        self.refresh(limit).await?;
        self = self.with(|inner| inner.budgeted = true);
        Ok(self)
    }

    /// Merges a newer reading of the limit into the shared budget.
    ///
    /// # Errors
    ///
    /// [`NatsError::KeyValue`] if the budget cannot be read or written.
    pub async fn refresh(&self, limit: &SessionStartLimit) -> Result<(), NatsError> {
        let reading = Budget {
            remaining: limit.remaining,
            total: limit.total,
            resets_at_ms: now_ms().saturating_add(limit.reset_after_ms),
        };
        loop {
            let (entry, stored) = self.budget().await?;
            let merged = match stored {
                Some(stored) if stored.resets_at_ms > now_ms() => Budget {
                    remaining: stored.remaining.min(reading.remaining),
                    ..stored
                },
                _ => reading,
            };
            if stored == Some(merged) {
                return Ok(());
            }
            if self.swap(entry.as_ref(), &merged).await? {
                return Ok(());
            }
        }
    }

    /// The session starts left in the shared budget (`None` without one).
    ///
    /// # Errors
    ///
    /// [`NatsError::KeyValue`] if it cannot be read.
    pub async fn remaining(&self) -> Result<Option<u32>, NatsError> {
        let value = self
            .inner
            .kv
            .get(BUDGET)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(value
            .and_then(|v| serde_json::from_slice::<Budget>(&v).ok())
            .map(|b| {
                if b.resets_at_ms > now_ms() {
                    b.remaining
                } else {
                    b.total
                }
            }))
    }

    /// The budget's entry, and the budget if it is one.
    async fn budget(&self) -> Result<(Option<kv::Entry>, Option<Budget>), NatsError> {
        let entry = self
            .inner
            .kv
            .entry(BUDGET)
            .await
            .map_err(|e| self.failed(e))?;
        let budget = entry
            .as_ref()
            .filter(|e| e.operation == kv::Operation::Put)
            .and_then(|e| serde_json::from_slice::<Budget>(&e.value).ok());
        Ok((entry, budget))
    }

    /// Writes `budget` if the key is still at `entry`'s revision (or
    /// absent); whether it was.
    async fn swap(&self, entry: Option<&kv::Entry>, budget: &Budget) -> Result<bool, NatsError> {
        let value = serde_json::to_vec(budget).map_err(|e| NatsError::Value {
            key: BUDGET.into(),
            source: e,
        })?;
        let written = match entry {
            Some(entry) => self
                .inner
                .kv
                .update(BUDGET, Bytes::from(value), entry.revision)
                .await
                .is_ok(),
            None => self
                .inner
                .kv
                .create(BUDGET, Bytes::from(value))
                .await
                .is_ok(),
        };
        Ok(written)
    }

    /// Takes one start from the budget, waiting for the reset while none
    /// is left; retries on errors.
    async fn spend(&self) {
        let mut warned = false;
        loop {
            let taken = async {
                let (entry, stored) = self.budget().await?;
                let Some(stored) = stored else {
                    // No budget stored (removed by hand): nothing to keep.
                    return Ok::<_, NatsError>(Spend::Taken);
                };
                let now = now_ms();
                let current = if stored.resets_at_ms <= now {
                    Budget {
                        remaining: stored.total,
                        total: stored.total,
                        resets_at_ms: now.saturating_add(24 * 3600 * 1000),
                    }
                } else {
                    stored
                };
                if current.remaining == 0 {
                    let wait = current.resets_at_ms.saturating_sub(now);
                    return Ok(Spend::Wait(Duration::from_millis(wait.clamp(100, 5_000))));
                }
                let spent = Budget {
                    remaining: current.remaining - 1,
                    ..current
                };
                Ok(if self.swap(entry.as_ref(), &spent).await? {
                    Spend::Taken
                } else {
                    Spend::Raced
                })
            }
            .await;
            match taken {
                Ok(Spend::Taken) => return,
                Ok(Spend::Wait(wait)) => {
                    if !warned {
                        tracing::warn!(
                            "the shared session start budget is spent: waiting for its reset"
                        );
                        warned = true;
                    }
                    tokio::time::sleep(wait).await;
                }
                Ok(Spend::Raced) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the shared budget: retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// Gives back a start an unsent identify took.
    async fn refund(&self) {
        for _ in 0..10 {
            let Ok((entry, Some(stored))) = self.budget().await else {
                return;
            };
            let back = stored.refunded();
            match self.swap(entry.as_ref(), &back).await {
                Ok(true) | Err(_) => return,
                Ok(false) => {}
            }
        }
    }

    /// Takes bucket `n`'s lease: its revision.
    async fn lease(&self, key: &str) -> u64 {
        let ttl = ceil_secs(self.inner.window + self.inner.pending_ttl);
        loop {
            match create_with_ttl(
                &self.inner.js,
                &self.inner.kv,
                &self.inner.bucket,
                key,
                Bytes::from(self.inner.holder.clone()),
                ttl,
            )
            .await
            {
                Ok(revision) => return revision,
                Err(CreateFailed::Taken) => {
                    tokio::time::sleep(POLL + Duration::from_millis(fastrand::u64(0..10))).await;
                }
                Err(CreateFailed::Failed(e)) => {
                    tracing::warn!(key, error = %e, "could not take an identify lease: retrying");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// The identify under `key`'s lease (at `revision`) was sent: the
    /// lease now expires a window after this, on the server's clock, and
    /// is released then on this host's.
    async fn sent(&self, key: &str, revision: u64) {
        let sent_at = Instant::now();
        let hold = self.inner.window + self.inner.margin;
        let value = Bytes::from(format!("{} sent", self.inner.holder));
        let rewritten = put_with_ttl(
            &self.inner.js,
            &self.inner.bucket,
            key,
            value,
            Some(revision),
            hold,
        )
        .await;
        tokio::time::sleep_until(sent_at + hold).await;
        // Released by hand once the window has passed here; if the
        // rewrite failed, the first lease's longer TTL holds the bucket.
        if let Some(revision) = rewritten {
            let _ = self
                .inner
                .kv
                .delete_expect_revision(key, Some(revision))
                .await;
        }
    }

    /// The identify under `key`'s lease was never sent: the bucket is free
    /// at once.
    async fn unused(&self, key: &str, revision: u64) {
        let _ = self
            .inner
            .kv
            .delete_expect_revision(key, Some(revision))
            .await;
        if self.inner.budgeted {
            self.refund().await;
        }
    }

    /// This host's turn for `bucket`.
    fn turn(&self, bucket: u32) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.inner.turns).entry(bucket).or_default().clone()
    }

    /// The error for a failed bucket operation.
    fn failed(&self, e: impl std::error::Error + Send + Sync + 'static) -> NatsError {
        NatsError::KeyValue {
            bucket: self.inner.bucket.clone(),
            source: Box::new(e),
        }
    }
}

/// A start taken from the budget for an acquire still waiting for its
/// lease: given back (in the background) if dropped before
/// [`keep`](Self::keep), as no identify can follow.
struct StartTaken(Option<NatsIdentifyQueue>);

impl StartTaken {
    /// The lease was granted: the permit accounts for the start now.
    fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for StartTaken {
    fn drop(&mut self) {
        if let Some(queue) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move { queue.refund().await });
        }
    }
}

impl IdentifyQueue for NatsIdentifyQueue {
    fn acquire(&self, shard: ShardId) -> BoxFuture<'static, IdentifyPermit> {
        let queue = self.clone();
        Box::pin(async move {
            let bucket = shard.0 % queue.inner.max_concurrency;
            let turn = queue.turn(bucket).lock_owned().await;
            let key = format!("bucket.{bucket}");
            // The start first: a lease held while the budget is spent
            // would expire, and another host could take the bucket.
            let taken = if queue.inner.budgeted {
                queue.spend().await;
                Some(StartTaken(Some(queue.clone())))
            } else {
                None
            };
            // Dropped while waiting for the lease (the shard was closed
            // while queued), `taken` gives the start back.
            let revision = queue.lease(&key).await;
            // From here the permit gives it back if it is not used.
            if let Some(taken) = taken {
                taken.keep();
            }
            IdentifyPermit::new(move |sent| {
                // The turn passes on once the lease is settled.
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                runtime.spawn(async move {
                    if sent {
                        queue.sent(&key, revision).await;
                    } else {
                        queue.unused(&key, revision).await;
                    }
                    drop(turn);
                });
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_never_overflows_a_stored_count() {
        // A value written by hand (or by another version): any u32.
        let stored = Budget {
            remaining: u32::MAX,
            total: u32::MAX,
            resets_at_ms: 0,
        };
        assert_eq!(stored.refunded().remaining, u32::MAX);
        let some = Budget {
            remaining: 3,
            total: 5,
            resets_at_ms: 0,
        };
        assert_eq!(some.refunded().remaining, 4);
        assert_eq!(
            Budget {
                remaining: 5,
                ..some
            }
            .refunded()
            .remaining,
            5
        );
    }
}
