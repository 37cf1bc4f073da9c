//! Pacing identifies: one per `max_concurrency` bucket per window, spaced
//! from when each identify was actually sent, within the daily budget of
//! session starts.
//!
//! # The window
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
//! moment. Within a bucket, permits are granted in the order shards asked.
//! A permit dropped unused (the connection died while waiting) returns its
//! turn to the next waiter without spending the bucket's slot.
//!
//! # The daily budget
//!
//! `GET /gateway/bot` reports a `session_start_limit`: how many sessions
//! may start (`remaining` of `total`) until the count resets
//! (`reset_after`). A bot that identifies past it has its token reset by
//! Discord, which ends every session it has. A queue made with
//! [`LocalIdentifyQueue::from_limit`] keeps that count: every permit that is
//! [`sent`](IdentifyPermit::sent) spends one start, a permit dropped unused
//! spends none, and a permit is only granted while a start is left that no
//! other outstanding permit holds. Once the budget is spent, `acquire`
//! waits (asleep, without polling) until the reset, `reset_after` from when
//! the limit was read; the count is then `total` again, and the next reset
//! is assumed [`RESET_PERIOD`](LocalIdentifyQueue::RESET_PERIOD) later.
//! The queue logs one warning each time the budget runs out.
//!
//! A newer reading of the limit is taken with
//! [`refresh`](LocalIdentifyQueue::refresh); how it combines with the local
//! count is described there. Queues made with [`LocalIdentifyQueue::new`]
//! or [`with_window`](LocalIdentifyQueue::with_window) have no budget: they
//! pace, and count nothing.
//!
//! # Cancellation
//!
//! Dropping an `acquire` future while it waits (for the bucket's turn, its
//! window, or the budget) leaves the line without spending anything; the
//! next waiter of the bucket moves up.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedMutexGuard};
use tokio::time::Instant;

use crate::bus::BoxFuture;
use crate::model::{SessionStartLimit, ShardId};
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
    /// The identify must not be sent before this.
    not_before: Option<Instant>,
}

impl IdentifyPermit {
    /// A permit that runs `done(true)` when its identify is sent and
    /// `done(false)` when it is dropped unused (for queue implementations).
    pub fn new(done: impl FnOnce(bool) + Send + 'static) -> Self {
        Self {
            done: Some(Box::new(done)),
            not_before: None,
        }
    }

    /// A permit that reports nothing (for queues that do not pace).
    pub fn unpaced() -> Self {
        Self {
            done: None,
            not_before: None,
        }
    }

    /// Grants the turn early: the shard may connect now, but sends its
    /// identify no sooner than `at`. Granting a little before the slot lets
    /// the connection and Hello happen inside the wait, so the identify
    /// leaves the moment the window allows.
    pub fn not_before(mut self, at: Instant) -> Self {
        self.not_before = Some(at);
        self
    }

    /// When the identify may be sent, if not at once.
    pub fn send_at(&self) -> Option<Instant> {
        self.not_before
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
/// each bucket at its own pace, in the order shards asked, and (when made
/// from a `session_start_limit`) no more session starts than the budget.
///
/// A bucket's next identify is allowed `window + margin` after the previous
/// one was *sent* (see the module docs). The margin covers the time between
/// the send and the server reading it; it defaults to 2% of the window.
///
/// # Examples
///
/// A queue for the limit `GET /gateway/bot` reported:
///
/// ```
/// use shardbus::gateway::{IdentifyQueue, LocalIdentifyQueue};
/// use shardbus::model::{SessionStartLimit, ShardId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let limit = SessionStartLimit {
///     total: 1000,
///     remaining: 998,
///     reset_after_ms: 14_400_000,
///     max_concurrency: 16,
/// };
/// let queue = LocalIdentifyQueue::from_limit(&limit);
/// let permit = queue.acquire(ShardId(3)).await;
/// // ... write the identify to the socket, then:
/// permit.sent();
/// assert_eq!(queue.remaining(), Some(997));
/// # }
/// ```
///
/// A queue with a short window and no budget, for a simulator:
///
/// ```
/// use std::time::Duration;
/// use shardbus::gateway::{IdentifyQueue, LocalIdentifyQueue};
/// use shardbus::model::ShardId;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let queue = LocalIdentifyQueue::with_window(16, Duration::from_millis(50));
/// queue.acquire(ShardId(3)).await.sent();
/// assert_eq!(queue.remaining(), None);
/// # }
/// ```
pub struct LocalIdentifyQueue {
    /// Shards per bucket round.
    max_concurrency: u32,
    /// Time between identifies in one bucket, as the gateway counts it.
    window: Duration,
    /// Added to the window; `None` for 2% of it.
    margin: Option<Duration>,
    /// How long before its slot a permit is granted (sent no sooner).
    lead: Duration,
    /// Each bucket's turn (a fair lock) and when it last sent an identify.
    buckets: Mutex<HashMap<u32, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
    /// The session start budget (possibly none), shared with the permits.
    budget: Arc<Budget>,
}

/// The session start budget shared by a queue and its outstanding permits.
struct Budget {
    /// The count.
    state: Mutex<BudgetState>,
    /// Woken on every change of the count, so waiters look again.
    changed: Notify,
}

/// The count of session starts.
struct BudgetState {
    /// The budget; `None` until a limit is known (the queue then counts
    /// only what it holds and sends).
    limit: Option<Limit>,
    /// Permits granted and neither sent nor dropped yet; each holds one of
    /// `remaining`. Counted without a limit too, so a limit taken later
    /// knows about them.
    held: u32,
    /// When this queue's identifies of the last
    /// [`READING_MAX_AGE`](LocalIdentifyQueue::READING_MAX_AGE) were sent:
    /// the ones a reading may not have seen yet.
    recent: VecDeque<Instant>,
    /// Whether running out has been logged since the count last had room.
    warned: bool,
}

/// A `session_start_limit` as counted down locally.
struct Limit {
    /// Starts per reset period.
    total: u32,
    /// Starts left until `resets_at` (those held by permits included).
    remaining: u32,
    /// When `remaining` goes back to `total`.
    resets_at: Instant,
}

impl Limit {
    /// The budget of a reading taken at `now`.
    fn read(limit: &SessionStartLimit, now: Instant) -> Self {
        Self {
            total: limit.total,
            remaining: limit.remaining.min(limit.total),
            resets_at: now + limit.reset_after(),
        }
    }

    /// Applies the resets due by `now`; tells whether there was one.
    fn reset_if_due(&mut self, now: Instant) -> bool {
        if now < self.resets_at {
            return false;
        }
        self.remaining = self.total;
        while self.resets_at <= now {
            self.resets_at += LocalIdentifyQueue::RESET_PERIOD;
        }
        true
    }
}

impl BudgetState {
    /// A count of `limit` (none for `None`), nothing held or sent yet.
    fn new(limit: Option<Limit>) -> Self {
        Self {
            limit,
            held: 0,
            recent: VecDeque::new(),
            warned: false,
        }
    }

    /// The limit, with the resets due by `now` applied.
    fn limit(&mut self, now: Instant) -> Option<&mut Limit> {
        let limit = self.limit.as_mut()?;
        if limit.reset_if_due(now) {
            self.warned = false;
        }
        Some(limit)
    }

    /// Forgets sends older than a reading can be.
    fn prune(&mut self, now: Instant) {
        let max_age = LocalIdentifyQueue::READING_MAX_AGE;
        while self
            .recent
            .front()
            .is_some_and(|&at| now.saturating_duration_since(at) > max_age)
        {
            self.recent.pop_front();
        }
    }

    /// Holds one start for a permit, or tells until when to wait at most
    /// (the reset; a release or refresh may come sooner).
    fn reserve(&mut self, now: Instant) -> Result<(), Instant> {
        let held = self.held;
        let Some(limit) = self.limit(now) else {
            self.held += 1;
            return Ok(());
        };
        if limit.remaining > held {
            self.held += 1;
            return Ok(());
        }
        let (total, spent, resets_at) = (limit.total, limit.remaining == 0, limit.resets_at);
        if spent && !self.warned {
            self.warned = true;
            tracing::warn!(
                total,
                resets_in = ?resets_at.saturating_duration_since(now),
                "session start limit spent: new sessions wait for its reset"
            );
        }
        Err(resets_at)
    }

    /// Takes a reading made at `now` (see [`LocalIdentifyQueue::refresh`]).
    fn refresh(&mut self, reading: &SessionStartLimit, now: Instant) {
        self.prune(now);
        let unseen = u32::try_from(self.recent.len()).unwrap_or(u32::MAX);
        let mut next = Limit::read(reading, now);
        next.remaining = match self.limit(now) {
            Some(current)
                if next.resets_at <= current.resets_at + LocalIdentifyQueue::READING_MAX_AGE =>
            {
                next.remaining.min(current.remaining)
            }
            // A later period, or the first reading: nothing local counts
            // against it but what it may not have seen.
            _ => next.remaining.saturating_sub(unseen),
        };
        if next.remaining > 0 {
            self.warned = false;
        }
        self.limit = Some(next);
    }
}

impl Budget {
    /// A budget of `limit` (none for `None`).
    fn new(limit: Option<Limit>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(BudgetState::new(limit)),
            changed: Notify::new(),
        })
    }

    /// A held start was spent by an identify sent at `now`.
    fn spend(&self, now: Instant) {
        {
            let mut state = lock(&self.state);
            state.held = state.held.saturating_sub(1);
            if let Some(limit) = state.limit(now) {
                limit.remaining = limit.remaining.saturating_sub(1);
            }
            state.prune(now);
            state.recent.push_back(now);
        }
        self.changed.notify_waiters();
    }

    /// A held start was given back unused.
    fn release(&self) {
        {
            let mut state = lock(&self.state);
            state.held = state.held.saturating_sub(1);
        }
        self.changed.notify_waiters();
    }

    /// Waits until a start can be held, and holds it.
    async fn reserve(&self) {
        loop {
            // Registered before looking, so a change between the look and
            // the wait still wakes this waiter.
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let until = match lock(&self.state).reserve(Instant::now()) {
                Ok(()) => return,
                Err(until) => until,
            };
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = changed => {}
            }
        }
    }
}

impl LocalIdentifyQueue {
    /// The gateway's window between identifies in one bucket.
    pub const WINDOW: Duration = Duration::from_secs(5);

    /// How long after a reset the next one is assumed to come, until a
    /// [`refresh`](Self::refresh) says otherwise (Discord's budget is
    /// daily).
    pub const RESET_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);

    /// The oldest a reading passed to [`refresh`](Self::refresh) is assumed
    /// to be (`GET /gateway/bot` times out sooner): this queue's identifies
    /// sent within this long before a refresh may be missing from it.
    pub const READING_MAX_AGE: Duration = Duration::from_secs(30);

    /// A queue for `max_concurrency` buckets (at least 1) and the gateway's
    /// 5-second window, with no session start budget.
    pub fn new(max_concurrency: u32) -> Self {
        Self::with_window(max_concurrency, Self::WINDOW)
    }

    /// A queue with another window (for a simulator or tests) and a margin
    /// of 2% of it, with no session start budget.
    pub fn with_window(max_concurrency: u32, window: Duration) -> Self {
        Self {
            max_concurrency: max_concurrency.max(1),
            window,
            margin: None,
            lead: Duration::ZERO,
            buckets: Mutex::new(HashMap::new()),
            budget: Budget::new(None),
        }
    }

    /// A queue for the `session_start_limit` of `GET /gateway/bot`, read
    /// just now: its `max_concurrency` buckets (at least 1), the gateway's
    /// 5-second window, and a budget of `remaining` starts until
    /// `reset_after` from now, then `total` per
    /// [`RESET_PERIOD`](Self::RESET_PERIOD).
    pub fn from_limit(limit: &SessionStartLimit) -> Self {
        Self {
            budget: Budget::new(Some(Limit::read(limit, Instant::now()))),
            ..Self::new(limit.max_concurrency)
        }
    }

    /// Sets the window between identifies in one bucket (for a simulator or
    /// tests); the default margin stays 2% of it.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Sets the margin added to the window.
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = Some(margin);
        self
    }

    /// Grants each permit up to `lead` before its slot, with
    /// [`IdentifyPermit::not_before`] set to the slot: the shard connects
    /// and gets Hello while it waits, and identifies on time instead of a
    /// connection's round trips late. Zero (the default) grants at the slot.
    pub fn with_lead(mut self, lead: Duration) -> Self {
        self.lead = lead;
        self
    }

    /// The bucket of `shard`.
    pub fn bucket(&self, shard: ShardId) -> u32 {
        shard.0 % self.max_concurrency
    }

    /// The session starts left before the reset, permits granted but not
    /// yet sent included; `None` for a queue without a budget.
    pub fn remaining(&self) -> Option<u32> {
        let mut state = lock(&self.budget.state);
        state.limit(Instant::now()).map(|limit| limit.remaining)
    }

    /// When the budget next resets to its total; `None` for a queue without
    /// a budget.
    pub fn resets_at(&self) -> Option<Instant> {
        let mut state = lock(&self.budget.state);
        state.limit(Instant::now()).map(|limit| limit.resets_at)
    }

    /// Takes a newer reading of the `session_start_limit`, read just now
    /// (at most [`READING_MAX_AGE`](Self::READING_MAX_AGE) ago). A queue
    /// without a budget gets one; `max_concurrency` is ignored (the buckets
    /// are fixed when the queue is made).
    ///
    /// A reading never raises the count within the period the queue is
    /// counting: identifies this queue sent after the reading was taken are
    /// not in it, so the count becomes the lower of the local count and the
    /// reading's `remaining` (lower when other processes started sessions
    /// too). A reading whose reset comes more than `READING_MAX_AGE` after
    /// the local one belongs to a later period (Discord reset the count
    /// sooner than assumed): its `remaining` replaces the local count, less
    /// this queue's identifies of the last `READING_MAX_AGE` that it may
    /// not have seen. Either way the reset time becomes the reading's
    /// (`reset_after` from now), and waiters look at the new count at once.
    /// The first reading of a queue made without a budget is taken as it
    /// is, less the same recent identifies.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus::gateway::{IdentifyQueue, LocalIdentifyQueue};
    /// use shardbus::model::{SessionStartLimit, ShardId};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let limit = |remaining| SessionStartLimit {
    ///     total: 1000,
    ///     remaining,
    ///     reset_after_ms: 3_600_000,
    ///     max_concurrency: 1,
    /// };
    /// let queue = LocalIdentifyQueue::from_limit(&limit(10));
    /// queue.acquire(ShardId(0)).await.sent();
    /// // A reading taken before that identify cannot raise the count...
    /// queue.refresh(&limit(10));
    /// assert_eq!(queue.remaining(), Some(9));
    /// // ...but one that saw other hosts' identifies lowers it.
    /// queue.refresh(&limit(4));
    /// assert_eq!(queue.remaining(), Some(4));
    /// # }
    /// ```
    pub fn refresh(&self, limit: &SessionStartLimit) {
        lock(&self.budget.state).refresh(limit, Instant::now());
        self.budget.changed.notify_waiters();
    }

    fn turn(&self, bucket: u32) -> Arc<tokio::sync::Mutex<Option<Instant>>> {
        lock(&self.buckets).entry(bucket).or_default().clone()
    }
}

impl IdentifyQueue for LocalIdentifyQueue {
    fn acquire(&self, shard: ShardId) -> BoxFuture<'static, IdentifyPermit> {
        let turn = self.turn(self.bucket(shard));
        let gap = self.window + self.margin.unwrap_or(self.window / 50);
        let lead = self.lead.min(gap);
        let budget = self.budget.clone();
        Box::pin(async move {
            // tokio's mutex is fair and cancel safe: waiters are served in
            // order, and a dropped waiter leaves the line.
            let guard = turn.lock_owned().await;
            let slot = guard.map(|last| last + gap);
            if let Some(slot) = slot {
                tokio::time::sleep_until(slot - lead).await;
            }
            // The bucket's turn is kept while waiting for the budget, so the
            // bucket still goes in ask order once starts are left.
            budget.reserve().await;
            let permit = permit(guard, budget);
            match slot {
                Some(slot) if !lead.is_zero() => permit.not_before(slot),
                _ => permit,
            }
        })
    }
}

/// A permit that holds the bucket's turn (and a start of the budget) until
/// its identify is sent or it is dropped.
fn permit(mut guard: OwnedMutexGuard<Option<Instant>>, budget: Arc<Budget>) -> IdentifyPermit {
    IdentifyPermit::new(move |sent| {
        let now = Instant::now();
        if sent {
            *guard = Some(now);
        }
        if sent {
            budget.spend(now);
        } else {
            budget.release();
        }
        drop(guard);
    })
}

impl fmt::Debug for LocalIdentifyQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalIdentifyQueue")
            .field("max_concurrency", &self.max_concurrency)
            .field("window", &self.window)
            .field("margin", &self.margin.unwrap_or(self.window / 50))
            .field("remaining", &self.remaining())
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
    async fn a_lead_grants_early_and_holds_the_send_to_the_slot() {
        let queue = LocalIdentifyQueue::new(1)
            .with_margin(Duration::ZERO)
            .with_lead(Duration::from_secs(1));
        let start = Instant::now();
        let first = queue.acquire(ShardId(0)).await;
        assert_eq!(first.send_at(), None, "no earlier identify: at once");
        first.sent();
        let second = queue.acquire(ShardId(1)).await;
        assert_eq!(
            Instant::now() - start,
            Duration::from_secs(4),
            "granted early"
        );
        assert_eq!(second.send_at(), Some(start + Duration::from_secs(5)));
        tokio::time::advance(Duration::from_secs(1)).await;
        second.sent();
        // The next slot counts from the send, not from the grant.
        let third = queue.acquire(ShardId(2)).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(9));
        assert_eq!(third.send_at(), Some(start + Duration::from_secs(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_margin_widens_the_gap() {
        let queue = LocalIdentifyQueue::new(1).with_margin(Duration::from_millis(250));
        let start = Instant::now();
        queue.acquire(ShardId(0)).await.sent();
        queue.acquire(ShardId(1)).await.sent();
        assert_eq!(Instant::now() - start, Duration::from_millis(5250));
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_grants_in_ask_order() {
        let queue = Arc::new(queue());
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Bucket 0, asked in this order (each task asks before the next
        // starts).
        for shard in [6, 0, 4, 2] {
            let (queue, tx) = (queue.clone(), tx.clone());
            tokio::spawn(async move {
                let permit = queue.acquire(ShardId(shard)).await;
                permit.sent();
                let _ = tx.send((shard, (Instant::now() - start).as_secs()));
            });
            tokio::task::yield_now().await;
        }
        drop(tx);
        let mut grants = Vec::new();
        while let Some(grant) = rx.recv().await {
            grants.push(grant);
        }
        assert_eq!(grants, [(6, 0), (0, 5), (4, 10), (2, 15)]);
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn limit(total: u32, remaining: u32, reset_after: Duration) -> SessionStartLimit {
        SessionStartLimit {
            total,
            remaining,
            reset_after_ms: u64::try_from(reset_after.as_millis()).expect("fits"),
            max_concurrency: 2,
        }
    }

    /// Two buckets, a 1 s window without margin, and a budget.
    fn budgeted(total: u32, remaining: u32, reset_after: Duration) -> LocalIdentifyQueue {
        LocalIdentifyQueue::from_limit(&limit(total, remaining, reset_after))
            .window(Duration::from_secs(1))
            .with_margin(Duration::ZERO)
    }

    /// Fails (in virtual time) instead of hanging.
    async fn within<F: std::future::Future>(fut: F) -> F::Output {
        tokio::time::timeout(10 * 24 * HOUR, fut)
            .await
            .expect("finished (not stuck)")
    }

    /// A task that sends shard `shard`'s identify once granted and returns
    /// when, since `start`.
    fn send_when_granted(
        queue: &Arc<LocalIdentifyQueue>,
        shard: u32,
        start: Instant,
    ) -> tokio::task::JoinHandle<Duration> {
        let queue = queue.clone();
        tokio::spawn(async move {
            queue.acquire(ShardId(shard)).await.sent();
            Instant::now() - start
        })
    }

    /// When the task of [`send_when_granted`] sent.
    async fn sent_at(task: tokio::task::JoinHandle<Duration>) -> Duration {
        within(task).await.expect("no panic")
    }

    #[tokio::test(start_paused = true)]
    async fn from_limit_takes_its_buckets_and_the_gateway_window() {
        let queue = LocalIdentifyQueue::from_limit(&SessionStartLimit {
            max_concurrency: 4,
            ..limit(100, 100, HOUR)
        });
        let start = Instant::now();
        for shard in 0..5 {
            queue.acquire(ShardId(shard)).await.sent();
        }
        // Shards 0–3 at once; shard 4 (bucket 0) a window plus 2% later.
        assert_eq!(Instant::now() - start, Duration::from_millis(5100));
        assert_eq!(queue.remaining(), Some(95));
        assert_eq!(queue.resets_at(), Some(start + HOUR));
    }

    #[tokio::test(start_paused = true)]
    async fn unbudgeted_queues_count_nothing() {
        let queue = queue();
        for shard in 0..4 {
            queue.acquire(ShardId(shard)).await.sent();
        }
        assert_eq!(queue.remaining(), None);
        assert_eq!(queue.resets_at(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_counts_only_sent_permits() {
        let queue = budgeted(10, 3, HOUR);
        drop(queue.acquire(ShardId(0)).await);
        assert_eq!(queue.remaining(), Some(3));
        queue.acquire(ShardId(0)).await.sent();
        assert_eq!(queue.remaining(), Some(2));
        drop(queue.acquire(ShardId(1)).await);
        queue.acquire(ShardId(1)).await.sent();
        assert_eq!(queue.remaining(), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_budget_waits_exactly_until_the_reset_then_continues() {
        let queue = budgeted(3, 2, Duration::from_secs(60));
        let start = Instant::now();
        queue.acquire(ShardId(0)).await.sent();
        queue.acquire(ShardId(1)).await.sent();
        assert_eq!(queue.remaining(), Some(0));
        // Bucket 0's window ends at 1 s; the budget's reset at 60 s.
        let permit = within(queue.acquire(ShardId(2))).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(60));
        assert_eq!(queue.remaining(), Some(3));
        permit.sent();
        queue.acquire(ShardId(3)).await.sent();
        // Bucket 0 again, a window after shard 2: the new budget's last.
        queue.acquire(ShardId(4)).await.sent();
        assert_eq!(Instant::now() - start, Duration::from_secs(61));
        assert_eq!(queue.remaining(), Some(0));
        // The next reset is a period after the one that came.
        let next = start + Duration::from_secs(60) + LocalIdentifyQueue::RESET_PERIOD;
        assert_eq!(queue.resets_at(), Some(next));
        within(queue.acquire(ShardId(5))).await.sent();
        assert_eq!(Instant::now(), next);
    }

    #[tokio::test(start_paused = true)]
    async fn starts_held_by_permits_are_not_granted_twice() {
        let queue = Arc::new(budgeted(5, 1, HOUR));
        let start = Instant::now();
        let held = queue.acquire(ShardId(0)).await;
        let waiter = send_when_granted(&queue, 1, start);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(
            !waiter.is_finished(),
            "bucket 1 waits: the one start is held"
        );
        // Given back unused: bucket 1 takes it at once.
        drop(held);
        assert_eq!(sent_at(waiter).await, Duration::from_secs(5));
        assert_eq!(queue.remaining(), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_dropped_while_the_budget_is_spent_give_up_cleanly() {
        let queue = Arc::new(budgeted(2, 1, Duration::from_secs(60)));
        let start = Instant::now();
        queue.acquire(ShardId(0)).await.sent();
        let spawn = |shard| send_when_granted(&queue, shard, start);
        // Bucket 0: shard 2 waits for the budget holding the bucket's
        // turn, shard 4 behind it. Bucket 1: shard 3 waits, shard 1 behind.
        let mut cancelled = queue.acquire(ShardId(2));
        assert!(futures::poll!(&mut cancelled).is_pending());
        let four = spawn(4);
        let aborted = spawn(3);
        tokio::task::yield_now().await;
        let one = spawn(1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(cancelled);
        aborted.abort();
        assert!(within(aborted).await.expect_err("aborted").is_cancelled());
        // The ones behind take the reset's two starts: nothing was held or
        // spent by the dropped waiters.
        assert_eq!(sent_at(four).await, Duration::from_secs(60));
        assert_eq!(sent_at(one).await, Duration::from_secs(60));
        assert_eq!(queue.remaining(), Some(0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reading_never_raises_the_count_within_its_period() {
        let queue = budgeted(10, 5, HOUR);
        queue.acquire(ShardId(0)).await.sent();
        queue.acquire(ShardId(1)).await.sent();
        tokio::time::advance(Duration::from_secs(60)).await;
        // Read before those two identifies: it still says 5.
        queue.refresh(&limit(10, 5, HOUR - Duration::from_secs(60)));
        assert_eq!(queue.remaining(), Some(3));
        // Other hosts started sessions too.
        queue.refresh(&limit(10, 1, HOUR - Duration::from_secs(70)));
        assert_eq!(queue.remaining(), Some(1));
        // The reading's reset time is taken.
        let resets_at = Instant::now() + HOUR - Duration::from_secs(70);
        assert_eq!(queue.resets_at(), Some(resets_at));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reading_of_a_later_period_replaces_the_count_less_recent_sends() {
        let queue = Arc::new(budgeted(10, 2, HOUR));
        let start = Instant::now();
        queue.acquire(ShardId(0)).await.sent();
        tokio::time::advance(Duration::from_secs(40)).await;
        queue.acquire(ShardId(1)).await.sent();
        let waiter = send_when_granted(&queue, 2, start);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(!waiter.is_finished(), "the budget is spent until the reset");
        // Discord reset sooner than the first reading said: a full day
        // ahead. Shard 1's identify (10 s ago) may be missing from it,
        // shard 0's (50 s ago) is not.
        queue.refresh(&limit(10, 9, 24 * HOUR));
        assert_eq!(queue.remaining(), Some(8));
        // The waiter goes at once, not at the old reset.
        assert_eq!(sent_at(waiter).await, Duration::from_secs(50));
        assert_eq!(queue.remaining(), Some(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_reading_gives_an_unbudgeted_queue_a_budget() {
        let queue = LocalIdentifyQueue::with_window(2, Duration::from_secs(1));
        let start = Instant::now();
        queue.acquire(ShardId(0)).await.sent();
        queue.refresh(&limit(3, 2, Duration::from_secs(60)));
        // The identify just sent may be missing from the reading.
        assert_eq!(queue.remaining(), Some(1));
        queue.acquire(ShardId(1)).await.sent();
        within(queue.acquire(ShardId(2))).await.sent();
        assert_eq!(Instant::now() - start, Duration::from_secs(60));
    }

    /// A log sink for the warning tests.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Logs {
        fn count(&self, needle: &str) -> usize {
            String::from_utf8_lossy(&lock(&self.0))
                .matches(needle)
                .count()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn running_out_is_logged_once_per_period() {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer({
                let logs = logs.clone();
                move || logs.clone()
            })
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let queue = Arc::new(budgeted(2, 1, Duration::from_secs(60)));
        queue.acquire(ShardId(0)).await.sent();
        let waiters: Vec<_> = [1, 2, 3]
            .map(|shard| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.acquire(ShardId(shard)).await.sent() })
            })
            .into();
        for waiter in waiters {
            within(waiter).await.expect("no panic");
        }
        // Three waited through the first period's end, two used the
        // second's budget, and the third waited for its end.
        let spent = "session start limit spent";
        assert_eq!(logs.count(spent), 2);
        assert_eq!(logs.count("WARN"), 2);
    }
}
