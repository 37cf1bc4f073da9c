//! Discord's REST rate limits, kept exactly: per-bucket limits learned from
//! the response headers, the global limit, 429s and the invalid-request
//! budget.
//!
//! - **Routes and buckets.** A request belongs to a route (method, path
//!   template) and its major parameter (channel, guild, or webhook id and
//!   token). Until Discord names the route's bucket (`X-RateLimit-Bucket`),
//!   the route is its own bucket; after that, every route with that bucket id
//!   and major parameter shares one bucket.
//! - **Order.** Requests of one bucket take turns in arrival order (a fair
//!   queue per bucket), and a turn lasts until the response's headers are
//!   read: what the next one sees is up to date. Requests of other buckets
//!   never wait on that queue. (Until Discord names a route's bucket, the
//!   route is its own bucket, so its requests keep their order then too.)
//! - **Never sent to collect a 429.** Before sending, a request reserves
//!   one of the bucket's `remaining` requests, and waits for the reset if
//!   there is none. Reservations are counted locally, so routes sharing a
//!   bucket do not overrun it between two responses, and a request that was
//!   sent stays counted even if its response never comes. Every response
//!   sets the bucket's limit, its reset (`X-RateLimit-Reset-After`, from
//!   when the response arrived, which is no earlier than Discord's own
//!   clock), and its remaining count, never above what the local
//!   reservations leave; responses of one window that arrive out of order
//!   never raise the count.
//! - **Global.** At most `global_limit` requests per second, except
//!   interaction endpoints, which Discord exempts. A request counts from
//!   when it is sent until a second after its response arrived, so network
//!   delays cannot bunch more than the limit into one of Discord's
//!   windows. A global 429 holds every request back for its `retry_after`.
//! - **429s.** A 429 with `X-RateLimit-Scope: user` or `shared` holds the
//!   bucket back for `retry_after`, and the request is tried again, at most
//!   [`MAX_RETRIES`] times. `shared` 429s do not count as invalid requests.
//! - **Invalid requests.** 401, 403 and non-shared 429 responses are
//!   counted over a 10-minute window. Once the count reaches the budget,
//!   requests fail with [`HttpError::InvalidRequestBudget`] without being
//!   sent: Discord bans an IP address for a while at 10,000.
//! - **Memory.** Routes and buckets that nothing uses and whose window is
//!   over are forgotten once many are remembered (every interaction is a
//!   route of its own), so a long-running bot does not grow.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

use super::error::HttpError;
use crate::sync::lock;

/// How many times a request that got a 429 is sent again.
pub const MAX_RETRIES: u32 = 3;

/// Discord's global limit: requests per second per bot.
pub const GLOBAL_LIMIT: u32 = 50;

/// Discord bans an IP address at this many invalid requests in 10 minutes.
pub const DISCORD_INVALID_LIMIT: u32 = 10_000;

/// The window invalid requests are counted in.
pub const INVALID_WINDOW: Duration = Duration::from_secs(600);

/// Added to the global window. A request already counts until a window
/// after its response arrived, which no network delay can make early; the
/// margin only covers timer granularity.
const GLOBAL_MARGIN: Duration = Duration::from_millis(10);

/// How far apart the resets announced by responses of one window may be:
/// each is measured from when its response arrived, so they differ by the
/// responses' network delays. A reset later than the known one by more
/// starts a new window.
const SAME_WINDOW: Duration = Duration::from_millis(100);

/// The longest reset or `retry_after` believed; a header or body saying
/// more is taken as this.
const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// Idle routes are first forgotten when this many are remembered.
const PRUNE_ABOVE: usize = 1024;

/// How long a bucket that is out of requests waits when no reset is known.
const UNKNOWN_RESET: Duration = Duration::from_secs(1);

/// The limiter's settings.
///
/// ```
/// use shardbus::http::LimitConfig;
///
/// // A bot whose global limit Discord raised, sharing its IP with others.
/// let config = LimitConfig::default().global_limit(1200).invalid_budget(2000);
/// assert_eq!(config.global_limit, 1200);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitConfig {
    /// Requests per second over all routes but interactions.
    pub global_limit: u32,
    /// The invalid responses (401, 403, non-shared 429) allowed per
    /// [`invalid_window`](Self::invalid_window) before requests are refused.
    pub invalid_budget: u32,
    /// The window invalid responses are counted in.
    pub invalid_window: Duration,
}

impl Default for LimitConfig {
    /// Discord's global limit, and an invalid-request budget of 9,000 per
    /// 10 minutes: a tenth short of Discord's ban, for other processes on
    /// the same address.
    fn default() -> Self {
        Self {
            global_limit: GLOBAL_LIMIT,
            invalid_budget: DISCORD_INVALID_LIMIT / 10 * 9,
            invalid_window: INVALID_WINDOW,
        }
    }
}

impl LimitConfig {
    /// Requests per second over all routes but interactions.
    #[must_use]
    pub fn global_limit(mut self, per_second: u32) -> Self {
        self.global_limit = per_second.max(1);
        self
    }

    /// Invalid responses allowed per window before requests are refused.
    #[must_use]
    pub fn invalid_budget(mut self, budget: u32) -> Self {
        self.invalid_budget = budget;
        self
    }
}

/// What a request is, for the limiter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RouteKey {
    /// The method and path template, e.g. `POST /channels/{channel_id}/messages`.
    pub(crate) route: &'static str,
    /// The major parameter's value (channel, guild, or webhook id and token;
    /// empty if the route has none).
    pub(crate) major: String,
}

/// The rate-limit headers of one response.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Headers {
    /// `X-RateLimit-Bucket`.
    pub(crate) bucket: Option<String>,
    /// `X-RateLimit-Limit`.
    pub(crate) limit: Option<u32>,
    /// `X-RateLimit-Remaining`.
    pub(crate) remaining: Option<u32>,
    /// `X-RateLimit-Reset-After`, seconds.
    pub(crate) reset_after: Option<f64>,
    /// `X-RateLimit-Scope` (on 429s).
    pub(crate) scope: Option<String>,
    /// `X-RateLimit-Global` (on 429s).
    pub(crate) global: bool,
    /// `Retry-After`, seconds (whole).
    pub(crate) retry_after: Option<f64>,
}

impl Headers {
    /// Reads the rate-limit headers of `headers`.
    pub(crate) fn read(headers: &http::HeaderMap) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let number = |name: &str| text(name).and_then(|v| v.trim().parse::<f64>().ok());
        Self {
            bucket: text("x-ratelimit-bucket").map(str::to_owned),
            limit: text("x-ratelimit-limit").and_then(|v| v.trim().parse().ok()),
            remaining: text("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok()),
            reset_after: number("x-ratelimit-reset-after").filter(|s| s.is_finite() && *s >= 0.0),
            scope: text("x-ratelimit-scope").map(str::to_owned),
            global: text("x-ratelimit-global").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            retry_after: number("retry-after").filter(|s| s.is_finite() && *s >= 0.0),
        }
    }
}

/// What the limiter learned from one response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Done: hand the response to the caller.
    Done,
    /// A 429: send the request again (the waits hold it back).
    Retry,
}

/// A bucket's state.
#[derive(Debug)]
struct BucketState {
    /// Requests per window.
    limit: u32,
    /// Requests left in this window, less the reservations in flight.
    remaining: u32,
    /// Reservations sent (or about to be) whose response has not come.
    in_flight: u32,
    /// When the window resets, if known.
    reset_at: Option<Instant>,
}

/// One bucket: a route's own until Discord names it, then shared by every
/// route with that bucket id and major parameter.
#[derive(Debug)]
struct Bucket {
    /// Turns in arrival order.
    queue: Arc<tokio::sync::Mutex<()>>,
    /// Its state.
    state: Mutex<BucketState>,
    /// Woken when a response, a release or a reset changes the state.
    changed: Notify,
}

impl Bucket {
    /// A bucket about which nothing is known yet.
    fn unknown() -> Arc<Self> {
        Arc::new(Self {
            queue: Arc::new(tokio::sync::Mutex::new(())),
            state: Mutex::new(BucketState {
                limit: 1,
                remaining: 1,
                in_flight: 0,
                reset_at: None,
            }),
            changed: Notify::new(),
        })
    }

    /// Waits until the bucket has a request left, and takes it.
    async fn reserve(&self) {
        loop {
            // Registered before looking, so a change between the look and
            // the wait still wakes this waiter.
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let wait = {
                let mut state = lock(&self.state);
                let now = Instant::now();
                if state.reset_at.is_some_and(|at| at <= now) {
                    // A new window; what is still in flight may land in it.
                    state.remaining = state.limit.saturating_sub(state.in_flight);
                    state.reset_at = None;
                }
                if state.remaining > 0 {
                    state.remaining -= 1;
                    state.in_flight += 1;
                    None
                } else {
                    // No reset known (a request whose response never came
                    // spent the last one): assume one.
                    Some(*state.reset_at.get_or_insert(now + UNKNOWN_RESET))
                }
            };
            let Some(at) = wait else { return };
            tracing::debug!(wait = ?at.saturating_duration_since(Instant::now()), "bucket exhausted; waiting for its reset");
            tokio::select! {
                () = sleep_until(at) => {}
                () = changed => {}
            }
        }
    }

    /// Gives a reservation back: its request was not sent.
    fn release(&self) {
        {
            let mut state = lock(&self.state);
            state.in_flight = state.in_flight.saturating_sub(1);
            state.remaining = state.remaining.saturating_add(1).min(state.limit);
        }
        self.changed.notify_waiters();
    }

    /// A reservation's request was sent and no response will be taken in
    /// (it failed on the way back, or the caller gave up): Discord may
    /// have counted it, so it stays spent.
    fn abandon(&self) {
        let mut state = lock(&self.state);
        state.in_flight = state.in_flight.saturating_sub(1);
    }

    /// A reservation's response came (and is taken in by
    /// [`update`](Self::update), maybe on another bucket).
    fn settle(&self) {
        let mut state = lock(&self.state);
        state.in_flight = state.in_flight.saturating_sub(1);
    }

    /// Takes in a response's headers, which arrived at `now`.
    ///
    /// A response announcing a later reset than the one known (by more
    /// than network jitter) starts a new window, and its count replaces
    /// the local one. Responses of the window already known may arrive out
    /// of order: the lower count and the later reset hold, so an older
    /// response never gives back a request a newer one spent.
    fn update(&self, headers: &Headers, now: Instant) {
        {
            let mut state = lock(&self.state);
            if let Some(limit) = headers.limit {
                state.limit = limit.max(1);
            }
            let reset = headers.reset_after.map(|after| now + seconds(after));
            let newer = match (state.reset_at, reset) {
                (None, _) => true,
                (Some(known), Some(reset)) => reset > known + SAME_WINDOW,
                (Some(_), None) => false,
            };
            match headers.remaining {
                Some(remaining) => {
                    // Reservations still in flight are not in Discord's
                    // count yet.
                    let left = remaining.saturating_sub(state.in_flight);
                    if newer {
                        state.remaining = left;
                        state.reset_at = reset;
                    } else {
                        state.remaining = state.remaining.min(left);
                        state.reset_at = state.reset_at.max(reset);
                    }
                }
                // A route without limits: the reservation goes back.
                None if headers.limit.is_none() && headers.bucket.is_none() => {
                    state.remaining = state.remaining.saturating_add(1).min(state.limit);
                }
                None => {}
            }
        }
        self.changed.notify_waiters();
    }

    /// A 429 for this bucket: nothing left until `retry_after` from now.
    fn hold(&self, retry_after: Duration, now: Instant) {
        let mut state = lock(&self.state);
        state.remaining = 0;
        let until = now + retry_after;
        state.reset_at = Some(state.reset_at.map_or(until, |at| at.max(until)));
    }

    /// Whether nothing is in flight and no window is running at `now`:
    /// forgetting the bucket then loses nothing.
    fn at_rest(&self, now: Instant) -> bool {
        let state = lock(&self.state);
        state.in_flight == 0 && state.reset_at.is_none_or(|at| at <= now)
    }
}

/// `secs` seconds from a header or body, as a duration no longer than
/// [`MAX_WAIT`].
fn seconds(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.clamp(0.0, MAX_WAIT.as_secs_f64())).unwrap_or(MAX_WAIT)
}

/// A route and the bucket it is in.
#[derive(Debug)]
struct Route {
    /// Its bucket; replaced by the shared one once Discord names it.
    bucket: Mutex<Arc<Bucket>>,
    /// The bucket id Discord gave, once known.
    bucket_id: Mutex<Option<String>>,
}

/// The global window and hold.
///
/// A request counts from when its global slot is taken until a window
/// after its response arrived (the latest Discord can have seen it), so
/// however the network delays requests, Discord never sees more than the
/// limit in one window.
#[derive(Debug, Default)]
struct Global {
    /// When each answered request of the last window was answered, oldest
    /// first.
    answered: VecDeque<Instant>,
    /// Requests holding a slot whose response has not come.
    in_flight: u32,
    /// A global 429 holds everything until then.
    held_until: Option<Instant>,
}

/// The counted invalid responses.
#[derive(Debug, Default)]
struct Invalid {
    /// When each invalid response of the window arrived.
    at: VecDeque<Instant>,
}

/// The rate limiter of one client (one token); see the module docs.
#[derive(Debug)]
pub(crate) struct Limiter {
    /// Its settings.
    config: LimitConfig,
    /// Every route seen, by route and major parameter.
    routes: Mutex<Routes>,
    /// Named buckets, by bucket id and major parameter.
    buckets: Mutex<HashMap<(String, String), Arc<Bucket>>>,
    /// The global limit.
    global: Mutex<Global>,
    /// Woken when a global slot frees up.
    global_changed: Notify,
    /// The invalid-request count.
    invalid: Mutex<Invalid>,
    /// Every 429 received.
    limited: std::sync::atomic::AtomicU64,
}

/// The routes seen, and when to forget the idle ones.
#[derive(Debug, Default)]
struct Routes {
    /// By route and major parameter.
    map: HashMap<RouteKey, Arc<Route>>,
    /// Idle routes are forgotten when the map reaches this size.
    prune_at: usize,
}

/// A request's turn: held until its response has been taken in.
#[derive(Debug)]
pub(crate) struct Turn {
    /// The route.
    route: Arc<Route>,
    /// The bucket's queue, held.
    _queue: tokio::sync::OwnedMutexGuard<()>,
    /// The bucket a reservation was taken from, until the response (or
    /// given back if the request is not sent).
    reserved: Option<Arc<Bucket>>,
    /// The limiter, while the request holds a global slot.
    global: Option<Arc<Limiter>>,
    /// Whether the request may have left (see [`Turn::sending`]).
    sent: bool,
}

impl Turn {
    /// The request is about to be written: from now on its reservation
    /// stays spent even if no response is taken in.
    pub(crate) fn sending(&mut self) {
        self.sent = true;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let sent = self.sent;
        if let Some(bucket) = self.reserved.take() {
            if sent {
                bucket.abandon();
            } else {
                bucket.release();
            }
        }
        if let Some(limiter) = self.global.take() {
            limiter.end_global(sent.then(Instant::now));
        }
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Self::new(LimitConfig::default())
    }
}

impl Limiter {
    /// A limiter with `config`.
    pub(crate) fn new(config: LimitConfig) -> Self {
        Self {
            config,
            routes: Mutex::new(Routes {
                map: HashMap::new(),
                prune_at: PRUNE_ABOVE,
            }),
            buckets: Mutex::default(),
            global: Mutex::default(),
            global_changed: Notify::new(),
            invalid: Mutex::default(),
            limited: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Its settings.
    pub(crate) fn config(&self) -> LimitConfig {
        self.config
    }

    /// The route for `key`, made on first use.
    fn route(&self, key: &RouteKey) -> Arc<Route> {
        let mut routes = lock(&self.routes);
        if let Some(route) = routes.map.get(key) {
            return Arc::clone(route);
        }
        if routes.map.len() >= routes.prune_at {
            self.prune(&mut routes);
        }
        let route = Arc::new(Route {
            bucket: Mutex::new(Bucket::unknown()),
            bucket_id: Mutex::new(None),
        });
        routes.map.insert(key.clone(), Arc::clone(&route));
        route
    }

    /// Forgets the routes and buckets nothing uses whose window is over
    /// (each interaction, for one, is a route of its own): a route seen
    /// again starts as a new one. The next sweep comes when the map has
    /// doubled, so sweeping costs O(1) a route.
    fn prune(&self, routes: &mut Routes) {
        let now = Instant::now();
        // The map's own reference is the only one of an unused route: no
        // turn holds or waits for it.
        routes
            .map
            .retain(|_, route| Arc::strong_count(route) > 1 || !lock(&route.bucket).at_rest(now));
        lock(&self.buckets)
            .retain(|_, bucket| Arc::strong_count(bucket) > 1 || !bucket.at_rest(now));
        routes.prune_at = (routes.map.len() * 2).max(PRUNE_ABOVE);
    }

    /// Waits for the request's turn: its bucket's queue, a request of its
    /// bucket, and (unless `exempt`) room in the global window.
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidRequestBudget`] if the invalid-request budget is
    /// spent: the request must not be sent.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        key: &RouteKey,
        exempt: bool,
    ) -> Result<Turn, HttpError> {
        let route = self.route(key);
        let queue = loop {
            let bucket = Arc::clone(&lock(&route.bucket));
            let queue = Arc::clone(&bucket.queue).lock_owned().await;
            // Discord may have named the route's bucket meanwhile: the turn
            // is taken in the queue of the bucket it is in now.
            if Arc::ptr_eq(&bucket, &lock(&route.bucket)) {
                break queue;
            }
        };
        let mut turn = Turn {
            route,
            _queue: queue,
            reserved: None,
            global: None,
            sent: false,
        };
        self.ready(&mut turn, key.route, exempt).await?;
        Ok(turn)
    }

    /// Within a turn, waits until the request may be sent (again, after a
    /// 429): a request of its bucket, room in the global window unless
    /// `exempt`, and the invalid-request budget.
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidRequestBudget`] if the budget is spent.
    pub(crate) async fn ready(
        self: &Arc<Self>,
        turn: &mut Turn,
        route: &'static str,
        exempt: bool,
    ) -> Result<(), HttpError> {
        turn.sent = false;
        let bucket = Arc::clone(&lock(&turn.route.bucket));
        bucket.reserve().await;
        turn.reserved = Some(bucket);
        if !exempt {
            self.global_slot().await;
            turn.global = Some(Arc::clone(self));
        }
        self.check_budget(route)
    }

    /// Waits for room in the global window and takes it.
    async fn global_slot(&self) {
        let window = Duration::from_secs(1) + GLOBAL_MARGIN;
        let limit = self.config.global_limit.max(1) as usize;
        loop {
            let changed = self.global_changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let wait = {
                let mut global = lock(&self.global);
                let now = Instant::now();
                while global
                    .answered
                    .front()
                    .is_some_and(|at| *at + window <= now)
                {
                    global.answered.pop_front();
                }
                let counted = global.answered.len() + global.in_flight as usize;
                match global.held_until {
                    Some(until) if until > now => Some(Some(until)),
                    // Full: the oldest answer leaving the window frees a
                    // slot; with every slot in flight, a response does.
                    _ if counted >= limit => Some(global.answered.front().map(|at| *at + window)),
                    _ => {
                        global.held_until = None;
                        global.in_flight += 1;
                        None
                    }
                }
            };
            match wait {
                None => return,
                Some(Some(at)) => {
                    tokio::select! {
                        () = sleep_until(at) => {}
                        () = changed => {}
                    }
                }
                Some(None) => changed.await,
            }
        }
    }

    /// A global slot's request ended: answered (or possibly seen by
    /// Discord) at `at`, or not sent at all (`None`).
    fn end_global(&self, at: Option<Instant>) {
        {
            let mut global = lock(&self.global);
            global.in_flight = global.in_flight.saturating_sub(1);
            if let Some(at) = at {
                global.answered.push_back(at);
            }
        }
        self.global_changed.notify_waiters();
    }

    /// Fails if the invalid-request budget is spent.
    fn check_budget(&self, route: &'static str) -> Result<(), HttpError> {
        let mut invalid = lock(&self.invalid);
        let now = Instant::now();
        let window = self.config.invalid_window;
        while invalid.at.front().is_some_and(|at| *at + window <= now) {
            invalid.at.pop_front();
        }
        let count = u32::try_from(invalid.at.len()).unwrap_or(u32::MAX);
        if count >= self.config.invalid_budget {
            let resets_in = invalid.at.front().map_or(Duration::ZERO, |at| {
                (*at + window).saturating_duration_since(now)
            });
            return Err(HttpError::InvalidRequestBudget {
                route,
                count,
                resets_in,
            });
        }
        Ok(())
    }

    /// The 429 responses received so far.
    pub(crate) fn limited_count(&self) -> u64 {
        self.limited.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Invalid responses counted in the current window.
    pub(crate) fn invalid_count(&self) -> u32 {
        let invalid = lock(&self.invalid);
        let now = Instant::now();
        let window = self.config.invalid_window;
        let live = invalid.at.iter().filter(|at| **at + window > now).count();
        u32::try_from(live).unwrap_or(u32::MAX)
    }

    /// Takes in the response to the request of `turn`: its status, headers
    /// and, for a 429, the body's `retry_after` (if it had one) and
    /// `global`.
    pub(crate) fn record(
        &self,
        key: &RouteKey,
        turn: &mut Turn,
        status: u16,
        headers: &Headers,
        body_429: Option<(Option<f64>, bool)>,
    ) -> Verdict {
        let now = Instant::now();
        if turn.global.take().is_some() {
            self.end_global(Some(now));
        }
        // The reservation was used: the response's count now includes it.
        let reserved = turn.reserved.take();
        if let Some(bucket) = &reserved {
            bucket.settle();
        }
        let bucket = self.bucket_for(key, &turn.route, headers, reserved);
        bucket.update(headers, now);
        let shared = headers.scope.as_deref() == Some("shared");
        if matches!(status, 401 | 403) || (status == 429 && !shared) {
            lock(&self.invalid).at.push_back(now);
        }
        if status != 429 {
            return Verdict::Done;
        }
        self.limited
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (body_retry, body_global) = body_429.unwrap_or((None, false));
        // The later of the body's `retry_after` and the `Retry-After`
        // header (whole seconds, rounded up). A 429 is a surprise (another
        // process, or a resource shared with other users): waiting the
        // whole second spreads out whoever is contending, where retrying
        // on the precise instant collides with them again.
        let retry = seconds(
            body_retry
                .unwrap_or(0.0)
                .max(headers.retry_after.unwrap_or(0.0)),
        );
        let global = body_global || headers.global || headers.scope.as_deref() == Some("global");
        if global {
            let mut g = lock(&self.global);
            let until = now + retry;
            g.held_until = Some(g.held_until.map_or(until, |at| at.max(until)));
            tracing::warn!(?retry, route = key.route, "global rate limit hit");
        } else {
            bucket.hold(retry, now);
            tracing::warn!(
                ?retry,
                route = key.route,
                scope = headers.scope.as_deref().unwrap_or("user"),
                "rate limited"
            );
        }
        Verdict::Retry
    }

    /// The bucket of `route` after a response naming `headers.bucket`: the
    /// shared bucket of that id and major parameter, which the route uses
    /// from now on.
    fn bucket_for(
        &self,
        key: &RouteKey,
        route: &Route,
        headers: &Headers,
        reserved: Option<Arc<Bucket>>,
    ) -> Arc<Bucket> {
        let current = reserved.unwrap_or_else(|| Arc::clone(&lock(&route.bucket)));
        let Some(id) = &headers.bucket else {
            return current;
        };
        let mut known = lock(&route.bucket_id);
        if known.as_deref() == Some(id.as_str()) {
            return current;
        }
        let shared = {
            let mut buckets = lock(&self.buckets);
            Arc::clone(
                buckets
                    .entry((id.clone(), key.major.clone()))
                    .or_insert_with(|| Arc::clone(&current)),
            )
        };
        *known = Some(id.clone());
        *lock(&route.bucket) = Arc::clone(&shared);
        shared
    }

    /// How many routes are remembered.
    #[cfg(test)]
    fn route_count(&self) -> usize {
        lock(&self.routes).map.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(route: &'static str, major: &str) -> RouteKey {
        RouteKey {
            route,
            major: major.to_owned(),
        }
    }

    fn headers(bucket: &str, limit: u32, remaining: u32, reset_after: f64) -> Headers {
        Headers {
            bucket: Some(bucket.to_owned()),
            limit: Some(limit),
            remaining: Some(remaining),
            reset_after: Some(reset_after),
            ..Headers::default()
        }
    }

    /// Takes a turn on `k` and gives it back unsent.
    async fn pass(limiter: &Arc<Limiter>, k: &RouteKey) {
        drop(limiter.acquire(k, false).await.unwrap());
    }

    /// Asserts that at least `least` passed since `start`.
    fn waited(start: Instant, least: Duration) {
        assert!(
            start.elapsed() >= least,
            "{:?} < {least:?}",
            start.elapsed()
        );
    }

    /// Acquires and records a response with `h`.
    async fn exchange(limiter: &Arc<Limiter>, k: &RouteKey, status: u16, h: &Headers) -> Verdict {
        let mut turn = limiter.acquire(k, false).await.unwrap();
        limiter.record(k, &mut turn, status, h, None)
    }

    #[tokio::test(start_paused = true)]
    async fn a_known_exhausted_bucket_waits_for_its_reset() {
        let limiter = Arc::new(Limiter::new(LimitConfig::default()));
        let k = key("POST /channels/{channel_id}/messages", "1");
        let start = Instant::now();
        exchange(&limiter, &k, 200, &headers("b", 2, 1, 5.0)).await;
        exchange(&limiter, &k, 200, &headers("b", 2, 0, 4.0)).await;
        assert!(start.elapsed() < Duration::from_millis(100));
        // The third waits for the reset the last response announced.
        exchange(&limiter, &k, 200, &headers("b", 2, 1, 5.0)).await;
        assert!(
            start.elapsed() >= Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn routes_of_one_bucket_share_its_count_and_majors_do_not() {
        let limiter = Arc::new(Limiter::new(LimitConfig::default()));
        let edit = key("PATCH /channels/{channel_id}/messages/{message_id}", "1");
        let delete = key("DELETE /channels/{channel_id}/messages/{message_id}", "1");
        let other_channel = key("DELETE /channels/{channel_id}/messages/{message_id}", "2");
        exchange(&limiter, &edit, 200, &headers("shared", 3, 2, 10.0)).await;
        exchange(&limiter, &delete, 204, &headers("shared", 3, 1, 10.0)).await;
        let start = Instant::now();
        // One left for both routes: the edit takes it, the delete waits.
        let mut turn = limiter.acquire(&edit, false).await.unwrap();
        let waiting = tokio::time::timeout(Duration::from_secs(5), limiter.acquire(&delete, false));
        assert!(
            waiting.await.is_err(),
            "the delete went past the shared limit"
        );
        limiter.record(&edit, &mut turn, 200, &headers("shared", 3, 0, 5.0), None);
        drop(turn);
        // Channel 2 is another bucket (another major parameter).
        let other = limiter.acquire(&other_channel, false).await.unwrap();
        drop(other);
        assert!(start.elapsed() < Duration::from_secs(6));
        exchange(&limiter, &delete, 204, &headers("shared", 3, 2, 10.0)).await;
        assert!(
            start.elapsed() >= Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_of_a_route_take_turns_in_order_and_other_routes_pass() {
        let limiter = Arc::new(Limiter::new(LimitConfig::default()));
        let k = key("POST /channels/{channel_id}/messages", "1");
        exchange(&limiter, &k, 200, &headers("b", 5, 0, 30.0)).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..4 {
            let (limiter, k, tx) = (limiter.clone(), k.clone(), tx.clone());
            tokio::spawn(async move {
                let mut turn = limiter.acquire(&k, false).await.unwrap();
                tx.send(i).unwrap();
                limiter.record(&k, &mut turn, 200, &headers("b", 5, 4 - i, 5.0), None);
            });
            // Let each queue up before the next.
            tokio::task::yield_now().await;
        }
        // Another channel is not held back by the exhausted one.
        let start = Instant::now();
        exchange(
            &limiter,
            &key("POST /channels/{channel_id}/messages", "2"),
            200,
            &headers("b", 5, 4, 5.0),
        )
        .await;
        assert!(start.elapsed() < Duration::from_millis(10));
        let mut order = Vec::new();
        for _ in 0..4 {
            order.push(rx.recv().await.unwrap());
        }
        assert_eq!(order, [0, 1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_global_window_holds_51_requests_apart_but_not_interactions() {
        let limiter = Arc::new(Limiter::new(LimitConfig::default()));
        let start = Instant::now();
        for i in 0..GLOBAL_LIMIT {
            spend(&limiter, &key("GET /channels/{channel_id}", &i.to_string())).await;
        }
        assert!(start.elapsed() < Duration::from_millis(10));
        // An interaction callback is exempt...
        let k = key("POST /interactions/{interaction_id}/{token}/callback", "9");
        drop(limiter.acquire(&k, true).await.unwrap());
        assert!(start.elapsed() < Duration::from_millis(10));
        // ...the 51st request is not.
        pass(&limiter, &key("GET /users/@me", "")).await;
        waited(start, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_holds_its_bucket_and_a_global_429_holds_everything() {
        let limiter = Arc::new(Limiter::new(LimitConfig::default()));
        let k = key("POST /channels/{channel_id}/messages", "1");
        let mut turn = limiter.acquire(&k, false).await.unwrap();
        let limited = Headers {
            scope: Some("user".into()),
            ..headers("b", 5, 0, 2.0)
        };
        let start = Instant::now();
        assert_eq!(
            limiter.record(&k, &mut turn, 429, &limited, Some((Some(2.5), false))),
            Verdict::Retry
        );
        limiter.ready(&mut turn, k.route, false).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(2500));
        limiter.record(&k, &mut turn, 200, &headers("b", 5, 4, 5.0), None);
        drop(turn);
        assert_eq!(limiter.invalid_count(), 1);

        let start = Instant::now();
        let mut turn = limiter.acquire(&k, false).await.unwrap();
        let global = Headers {
            global: true,
            scope: Some("global".into()),
            ..Headers::default()
        };
        limiter.record(&k, &mut turn, 429, &global, Some((Some(3.0), true)));
        drop(turn);
        pass(&limiter, &key("GET /users/@me", "")).await;
        waited(start, Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_invalid_request_budget_refuses_to_send_and_shared_429s_do_not_count() {
        let limiter = Arc::new(Limiter::new(LimitConfig {
            invalid_budget: 3,
            ..LimitConfig::default()
        }));
        let k = key("GET /guilds/{guild_id}", "1");
        let shared = Headers {
            scope: Some("shared".into()),
            ..Headers::default()
        };
        let mut turn = limiter.acquire(&k, false).await.unwrap();
        limiter.record(&k, &mut turn, 429, &shared, Some((Some(0.0), false)));
        drop(turn);
        assert_eq!(limiter.invalid_count(), 0);
        for status in [401, 403, 401] {
            exchange(&limiter, &k, status, &Headers::default()).await;
        }
        let refused = limiter.acquire(&k, false).await;
        assert!(
            matches!(
                refused,
                Err(HttpError::InvalidRequestBudget { count: 3, .. })
            ),
            "{refused:?}"
        );
        // The window moves on.
        tokio::time::advance(INVALID_WINDOW).await;
        assert!(limiter.acquire(&k, false).await.is_ok());
    }

    /// Whether a turn on `k` is still refused after half a second (less
    /// than [`UNKNOWN_RESET`]).
    async fn refused(limiter: &Arc<Limiter>, k: &RouteKey) -> bool {
        tokio::time::timeout(Duration::from_millis(500), limiter.acquire(k, false))
            .await
            .is_err()
    }

    /// Three routes that Discord put in one bucket `s` of `limit`, each
    /// answered with one request fewer left.
    async fn shared_bucket(limiter: &Arc<Limiter>, limit: u32, reset_after: f64) -> [RouteKey; 3] {
        let keys = [
            key("PATCH /channels/{channel_id}/messages/{message_id}", "1"),
            key("DELETE /channels/{channel_id}/messages/{message_id}", "1"),
            key("GET /channels/{channel_id}/messages/{message_id}", "1"),
        ];
        for (left, k) in (0..limit).rev().zip(&keys) {
            exchange(limiter, k, 200, &headers("s", limit, left, reset_after)).await;
        }
        keys
    }

    /// Takes a turn on `k`, sends and loses the response (it stays spent).
    async fn spend(limiter: &Arc<Limiter>, k: &RouteKey) {
        let mut turn = limiter.acquire(k, false).await.unwrap();
        turn.sending();
    }

    // A bucket has one request in flight at a time, except while a route
    // moves to the bucket Discord named (its request in flight on the
    // route's own bucket) and across clients; the two tests below hold two
    // requests of one bucket in flight at the bucket itself.

    #[tokio::test(start_paused = true)]
    async fn an_older_response_of_the_window_never_raises_the_count() {
        let bucket = Bucket::unknown();
        bucket.update(&headers("s", 5, 2, 10.0), Instant::now());
        // Both requests left go out, and Discord answers them in the order
        // sent, but the second answer arrives first.
        bucket.reserve().await;
        bucket.reserve().await;
        bucket.settle();
        bucket.update(&headers("s", 5, 0, 9.9), Instant::now());
        bucket.settle();
        bucket.update(&headers("s", 5, 1, 9.9), Instant::now());
        assert_eq!(lock(&bucket.state).remaining, 0, "went past the bucket");
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_window_counts_the_requests_still_in_flight() {
        let bucket = Bucket::unknown();
        bucket.update(&headers("s", 4, 1, 1.0), Instant::now());
        bucket.reserve().await;
        // The window ends while that request is out: it may land in the
        // next one, which leaves 3 of 4.
        tokio::time::advance(Duration::from_millis(1500)).await;
        for _ in 0..3 {
            bucket.reserve().await;
            bucket.abandon();
        }
        let fourth = tokio::time::timeout(Duration::from_millis(500), bucket.reserve());
        assert!(fourth.await.is_err(), "went past the new window");
    }

    #[tokio::test(start_paused = true)]
    async fn routes_of_one_bucket_take_turns_in_ask_order() {
        let limiter = Arc::new(Limiter::new(LimitConfig::default()));
        let [edit, delete, _] = shared_bucket(&limiter, 3, 1.0).await;
        // The bucket is spent until its reset; three ask in turn, two of
        // them on one route.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for (i, k) in [edit.clone(), edit, delete].into_iter().enumerate() {
            let (limiter, tx) = (Arc::clone(&limiter), tx.clone());
            tokio::spawn(async move {
                let mut turn = limiter.acquire(&k, false).await.unwrap();
                tx.send(i).unwrap();
                limiter.record(&k, &mut turn, 200, &headers("s", 1, 0, 1.0), None);
            });
            tokio::task::yield_now().await;
        }
        let mut order = Vec::new();
        for _ in 0..3 {
            order.push(rx.recv().await.unwrap());
        }
        assert_eq!(order, [0, 1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sent_request_without_a_response_stays_spent() {
        let limiter = Arc::new(Limiter::new(LimitConfig::default()));
        let k = key("POST /channels/{channel_id}/messages", "1");
        exchange(&limiter, &k, 200, &headers("b", 3, 2, 30.0)).await;
        // Not sent: given back.
        pass(&limiter, &k).await;
        pass(&limiter, &k).await;
        pass(&limiter, &k).await;
        // Sent, then the response is lost (a timeout, a dropped future).
        spend(&limiter, &k).await;
        spend(&limiter, &k).await;
        assert!(
            refused(&limiter, &k).await,
            "a lost response gave its request back"
        );
        // A route whose bucket is not known yet waits a while, not forever.
        let fresh = key("GET /users/@me", "");
        spend(&limiter, &fresh).await;
        let start = Instant::now();
        pass(&limiter, &fresh).await;
        waited(start, UNKNOWN_RESET);
    }

    #[tokio::test(start_paused = true)]
    async fn absurd_resets_and_retries_are_clamped() {
        let limiter = Arc::new(Limiter::new(LimitConfig::default()));
        let k = key("POST /channels/{channel_id}/messages", "1");
        exchange(&limiter, &k, 200, &headers("b", 1, 0, 1e20)).await;
        assert!(refused(&limiter, &k).await);
        let other = key("POST /channels/{channel_id}/messages", "2");
        let mut turn = limiter.acquire(&other, false).await.unwrap();
        let limited = Headers {
            retry_after: Some(f64::MAX),
            ..headers("c", 1, 0, f64::MAX)
        };
        assert_eq!(
            limiter.record(&other, &mut turn, 429, &limited, Some((Some(1e300), false))),
            Verdict::Retry
        );
        drop(turn);
        assert!(refused(&limiter, &other).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_global_slot_counts_until_a_window_after_its_response() {
        let limiter = Arc::new(Limiter::new(LimitConfig::default().global_limit(2)));
        let a = key("GET /channels/{channel_id}", "1");
        let b = key("GET /channels/{channel_id}", "2");
        let mut first = limiter.acquire(&a, false).await.unwrap();
        let mut second = limiter.acquire(&b, false).await.unwrap();
        first.sending();
        second.sending();
        // Slow responses: Discord may have seen both just now.
        tokio::time::advance(Duration::from_secs(3)).await;
        limiter.record(&a, &mut first, 200, &Headers::default(), None);
        limiter.record(&b, &mut second, 200, &Headers::default(), None);
        drop((first, second));
        let start = Instant::now();
        pass(&limiter, &key("GET /channels/{channel_id}", "3")).await;
        waited(start, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_global_window_of_requests_in_flight_waits_for_a_response() {
        let limiter = Arc::new(Limiter::new(LimitConfig::default().global_limit(1)));
        let a = key("GET /channels/{channel_id}", "1");
        let mut first = limiter.acquire(&a, false).await.unwrap();
        first.sending();
        let waiter = {
            let limiter = Arc::clone(&limiter);
            tokio::spawn(async move {
                drop(
                    limiter
                        .acquire(&key("GET /channels/{channel_id}", "2"), false)
                        .await,
                );
                Instant::now()
            })
        };
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!waiter.is_finished(), "sent past a request in flight");
        let answered = Instant::now();
        limiter.record(&a, &mut first, 200, &Headers::default(), None);
        drop(first);
        let sent = waiter.await.unwrap();
        assert!(sent >= answered + Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn idle_routes_are_forgotten_and_running_windows_kept() {
        let limiter = Arc::new(Limiter::new(LimitConfig::default().global_limit(10_000)));
        let busy = key("POST /channels/{channel_id}/messages", "1");
        exchange(&limiter, &busy, 200, &headers("m", 1, 0, 3600.0)).await;
        for i in 0..5_000u32 {
            let k = key(
                "POST /interactions/{interaction_id}/{token}/callback",
                &i.to_string(),
            );
            exchange(&limiter, &k, 204, &headers(&format!("i{i}"), 1, 0, 0.5)).await;
            tokio::time::advance(Duration::from_millis(1)).await;
        }
        let count = limiter.route_count();
        assert!(count < 2 * PRUNE_ABOVE, "{count} routes remembered");
        assert!(lock(&limiter.buckets).len() < 2 * PRUNE_ABOVE);
        // The channel's window is still running: it was not forgotten.
        assert!(refused(&limiter, &busy).await);
    }

    #[test]
    fn headers_are_read_as_discord_sends_them() {
        let mut map = http::HeaderMap::new();
        for (name, value) in [
            ("x-ratelimit-bucket", "abcd1234"),
            ("x-ratelimit-limit", "5"),
            ("x-ratelimit-remaining", "4"),
            ("x-ratelimit-reset-after", "1.337"),
            ("x-ratelimit-scope", "shared"),
            ("retry-after", "2"),
        ] {
            map.insert(name, http::HeaderValue::from_static(value));
        }
        let h = Headers::read(&map);
        assert_eq!(h.bucket.as_deref(), Some("abcd1234"));
        assert_eq!((h.limit, h.remaining), (Some(5), Some(4)));
        assert_eq!(h.reset_after, Some(1.337));
        assert_eq!(h.scope.as_deref(), Some("shared"));
        assert_eq!(h.retry_after, Some(2.0));
        assert!(!h.global);
    }
}
