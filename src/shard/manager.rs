//! The shard manager: a set of gateway shards posting into one bus.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{Shared, join_all};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;

use super::cutover::Cutover;
use super::error::ManagerError;
use super::hook::SetHook;
use super::info::{Rescaled, ShardInfo};
use crate::bus::{BoxFuture, TypeMux};
use crate::gateway::{
    CloseCode, DispatchHook, GatewayConfig, GatewayError, GatewayErrorKind, IdentifyQueue, Intents,
    LocalIdentifyQueue, Shard, ShardHandle, Stage,
};
use crate::http::Client;
use crate::model::{GatewayBot, GuildId, ShardId};
use crate::sync::lock;

/// How many events a subscriber of a manager's own bus may lag behind
/// before posts of that type wait ([`TypeMux`]'s default is
/// [`DEFAULT_CAPACITY`](crate::DEFAULT_CAPACITY), for one producer).
///
/// A shard posts a burst of up to a scheduler budget (128) of events per
/// turn, and a runtime worker runs many shards before a subscriber's turn
/// comes: with 128 slots, 16 busy shards kept the ring full and every read
/// woke every parked shard. 1,024 slots hold a turn of several shards per
/// worker (`cargo bench --bench shards`: about 1.25× the events/s at 16
/// shards), for 16 KiB per event type and at most 1,024 events held per
/// subscriber.
pub const BUS_CAPACITY: usize = 1024;

/// How long after a rolling rescale's switch the new set's copies of what
/// the old set posted are still dropped.
const CUTOVER_GRACE: Duration = Duration::from_secs(10);

/// The constructor hook (arikawa's `NewShardFunc`): gets the configuration
/// the manager made for one shard (token, intents, shard `[id, total]`,
/// URL, identify queue) and returns the one to run it with.
///
/// It runs when the manager builds a shard set (at construction and on each
/// rescale), with no lock held, so it may call the manager (say
/// [`Manager::num_shards`]). Nothing connects until [`Manager::open`].
pub type NewShardFn = dyn Fn(&Manager, GatewayConfig) -> GatewayConfig + Send + Sync;

/// Many gateway shards posting into one [`TypeMux`].
///
/// It keeps arikawa's surface ([`open`](Self::open), [`close`](Self::close),
/// [`for_each`](Self::for_each), [`shard`](Self::shard),
/// [`num_shards`](Self::num_shards), [`from_guild_id`](Self::from_guild_id),
/// [`gateway_url`](Self::gateway_url), [`rescale`](Self::rescale)) and
/// serenity's ([`restart`](Self::restart), [`shutdown`](Self::shutdown),
/// [`shutdown_all`](Self::shutdown_all),
/// [`shards_instantiated`](Self::shards_instantiated), [`info`](Self::info),
/// a shard range). Cheap to clone and `Send + Sync`; every method takes
/// `&self`.
///
/// Shards never wait on each other: each is its own task, pacing only its
/// identify through the shared [`IdentifyQueue`], and each posts its events
/// in its own sequence order. When any shard is closed with 4011 (sharding
/// required), the manager asks `GET /gateway/bot` for the new count, stops
/// the old set, starts the new one and posts `Arc<`[`Rescaled`]`>`.
///
/// # Examples
///
/// ```no_run
/// use shardbus::gateway::{GatewayConfig, Intents};
/// use shardbus::shard::Manager;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let identify = GatewayConfig::new(std::env::var("DISCORD_TOKEN")?, Intents::GUILDS);
/// // Asks GET /gateway/bot for the shard count and the session start limit.
/// let manager = Manager::builder(identify).fetch().await?;
/// manager.open().await?;
/// println!("{} shards ready", manager.num_shards());
/// manager.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Manager {
    /// Shared by every clone.
    inner: Arc<Inner>,
}

/// The manager's state.
struct Inner {
    /// Where every shard posts.
    bus: TypeMux,
    /// The configuration each shard's is made from.
    identify: GatewayConfig,
    /// The constructor hook.
    new_shard: Arc<NewShardFn>,
    /// For `GET /gateway/bot` on rescale.
    http: Option<Client>,
    /// The shard total, readable without the set's lock.
    total: AtomicU32,
    /// The current shard set.
    set: Mutex<Set>,
    /// Bumped on every change a waiter might care about.
    changed: watch::Sender<u64>,
    /// One rescale at a time.
    rescaling: tokio::sync::Mutex<()>,
    /// A rescale was asked for and has not finished.
    rescale_pending: AtomicBool,
    /// The first fatal error (not 4011, which rescales).
    fatal: Mutex<Option<ManagerError>>,
    /// The user's dispatch hook, given to every shard.
    user_hook: Option<Arc<dyn DispatchHook>>,
    /// Switches the bus between sets in a rolling rescale.
    cutover: Arc<Cutover>,
    /// The state cache, if one was given.
    cache: Option<crate::state::Cache>,
    /// The queue built from the session start limit, if the manager built
    /// it: each later `GET /gateway/bot` refreshes its budget.
    local_queue: Option<Arc<LocalIdentifyQueue>>,
}

/// One shard set: a total, the range this process runs, and its shards.
struct Set {
    /// Bumped by each rescale.
    generation: u64,
    /// The shard total.
    total: u32,
    /// The shards this process runs.
    range: Range<u32>,
    /// The gateway URL for new sessions.
    url: String,
    /// One per shard of `range`, in order.
    slots: Vec<Slot>,
}

/// A shard of the set: its configuration, and its task once opened.
struct Slot {
    /// What it runs with.
    config: GatewayConfig,
    /// The running shard, if opened.
    running: Option<Running>,
}

/// A running shard and its result.
#[derive(Clone)]
struct Running {
    /// Commands and state.
    handle: ShardHandle,
    /// Resolves with the shard's result; shared by every waiter.
    done: Shared<BoxFuture<'static, Result<(), Arc<GatewayError>>>>,
}

/// Builds a [`Manager`]; from [`Manager::builder`].
#[must_use = "a builder does nothing until built"]
pub struct ManagerBuilder {
    /// The configuration each shard's is made from.
    identify: GatewayConfig,
    /// The constructor hook.
    new_shard: Option<Arc<NewShardFn>>,
    /// The shards this process runs, if not all.
    range: Option<Range<u32>>,
    /// For `GET /gateway/bot`.
    http: Option<Client>,
    /// Replaces the queue made from the session start limit.
    queue: Option<Arc<dyn IdentifyQueue>>,
    /// The identify window, if not the gateway's 5 s.
    window: Option<Duration>,
    /// Sees each shard's dispatches before the bus.
    hook: Option<Arc<dyn DispatchHook>>,
    /// The bus, if not a new one.
    bus: Option<TypeMux>,
    /// The state cache every shard feeds.
    cache: Option<crate::state::Cache>,
    /// The queue `fetch` built, refreshed by later readings.
    local_queue: Option<Arc<LocalIdentifyQueue>>,
}

impl ManagerBuilder {
    /// The constructor hook (see [`NewShardFn`]).
    pub fn new_shard(
        mut self,
        hook: impl Fn(&Manager, GatewayConfig) -> GatewayConfig + Send + Sync + 'static,
    ) -> Self {
        self.new_shard = Some(Arc::new(hook));
        self
    }

    /// Runs only shards `range` of the total (serenity's `index..index +
    /// init`), for a bot split over several processes.
    pub fn range(mut self, range: Range<u32>) -> Self {
        self.range = Some(range);
        self
    }

    /// The HTTP client for `GET /gateway/bot` (its API base can point at a
    /// simulator), also registered on the bus for handlers that take
    /// [`Http`](crate::http::Http). Without one, [`fetch`](Self::fetch)
    /// makes one for Discord from the token.
    pub fn http(mut self, client: Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The identify queue every shard goes through (one shared by several
    /// processes, say). By default [`fetch`](Self::fetch) builds a
    /// [`LocalIdentifyQueue`] from the session start limit (buckets and the
    /// daily budget; each later `GET /gateway/bot` refreshes it), and
    /// [`build`](Self::build) uses the one in the identify configuration.
    pub fn identify_queue(mut self, queue: Arc<dyn IdentifyQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// The identify window of the queue [`fetch`](Self::fetch) builds (5 s
    /// on Discord; shorter for a simulator).
    pub fn identify_window(mut self, window: Duration) -> Self {
        self.window = Some(window);
        self
    }

    /// A hook every shard calls with each decoded dispatch before posting
    /// it (a state cache).
    pub fn dispatch_hook(mut self, hook: Arc<dyn DispatchHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// A state cache every shard feeds before posting (one store per
    /// shard, read through the one handle); also the bus's state, so
    /// handlers extract it with `State<Cache>`. Replaces a
    /// [`dispatch_hook`](Self::dispatch_hook).
    pub fn cache(mut self, cache: crate::state::Cache) -> Self {
        self.hook = Some(Arc::new(cache.clone()));
        self.cache = Some(cache);
        self
    }

    /// The bus shards post into (by default a new one with room for
    /// [`BUS_CAPACITY`] events per subscriber).
    pub fn bus(mut self, bus: TypeMux) -> Self {
        self.bus = Some(bus);
        self
    }

    /// A manager for the total, URL and identify queue in the identify
    /// configuration (arikawa's `NewIdentifiedManager`). It can only
    /// rescale through [`Manager::rescale_to`] unless an HTTP client was
    /// given.
    pub fn build(self) -> Manager {
        let total = self.identify.total_shards();
        let url = self.identify.gateway_url.clone();
        let queue = self.queue.clone();
        self.finish(total, url, queue)
    }

    /// A manager for the shard count, URL and session start limit that
    /// `GET /gateway/bot` recommends.
    ///
    /// # Errors
    ///
    /// [`ManagerError::GatewayBot`] if the request fails (a bad token is a
    /// 401).
    pub async fn fetch(mut self) -> Result<Manager, ManagerError> {
        let client = match self.http.take() {
            Some(client) => client,
            None => Client::new(self.identify.token.expose().to_owned())
                .map_err(|e| ManagerError::GatewayBot(Arc::new(e)))?,
        };
        let bot = client
            .gateway_bot()
            .await
            .map_err(|e| ManagerError::GatewayBot(Arc::new(e)))?;
        self.http = Some(client);
        let queue: Arc<dyn IdentifyQueue> = match self.queue.clone() {
            Some(queue) => queue,
            None => {
                // The daily budget too: a restart loop waits for the reset
                // instead of spending the token's session starts.
                let window = self.window.unwrap_or(LocalIdentifyQueue::WINDOW);
                // Granted a quarter window (at most 1 s) early, so a shard
                // has connected and has Hello when its slot comes.
                let local = Arc::new(
                    LocalIdentifyQueue::from_limit(&bot.session_start_limit)
                        .window(window)
                        .with_lead((window / 4).min(Duration::from_secs(1))),
                );
                self.local_queue = Some(local.clone());
                local
            }
        };
        Ok(self.finish(bot.shards, bot.url, Some(queue)))
    }

    /// Makes the manager and its first shard set.
    fn finish(mut self, total: u32, url: String, queue: Option<Arc<dyn IdentifyQueue>>) -> Manager {
        let total = total.max(1);
        if let Some(queue) = queue {
            self.identify = self.identify.identify_queue(queue);
        }
        let user_hook = self.hook.or_else(|| self.identify.hook.take());
        let range = match self.range {
            Some(range) => range.start.min(total)..range.end.min(total),
            None => 0..total,
        };
        let mut bus = self
            .bus
            .unwrap_or_else(|| TypeMux::with_capacity(BUS_CAPACITY));
        if let Some(cache) = &self.cache {
            bus = bus.with_state(cache.clone());
        }
        // Handlers taking `Http` reach the manager's client.
        if let Some(http) = &self.http {
            bus = bus.with_state(http.clone());
        }
        let manager = Manager {
            inner: Arc::new(Inner {
                bus,
                cache: self.cache,
                local_queue: self.local_queue,
                identify: self.identify,
                new_shard: self
                    .new_shard
                    .unwrap_or_else(|| Arc::new(|_, config| config)),
                http: self.http,
                total: AtomicU32::new(total),
                set: Mutex::new(Set {
                    generation: 0,
                    total,
                    range: range.clone(),
                    url: url.clone(),
                    slots: Vec::new(),
                }),
                changed: watch::Sender::new(0),
                rescaling: tokio::sync::Mutex::new(()),
                rescale_pending: AtomicBool::new(false),
                fatal: Mutex::new(None),
                user_hook,
                cutover: Arc::default(),
            }),
        };
        let slots = manager.make_slots(0, total, range, &url);
        lock(&manager.inner.set).slots = slots;
        manager
    }
}

impl Manager {
    /// A builder for a manager whose shards are made from `identify`
    /// (token, intents, compression, URL, ...).
    pub fn builder(identify: GatewayConfig) -> ManagerBuilder {
        ManagerBuilder {
            identify,
            new_shard: None,
            range: None,
            http: None,
            queue: None,
            window: None,
            hook: None,
            bus: None,
            cache: None,
            local_queue: None,
        }
    }

    /// A manager for Discord with the shard count `GET /gateway/bot`
    /// recommends, intents `GUILDS | GUILD_MESSAGES` (the hook can set
    /// others with [`GatewayConfig::intents`]), and `new_shard` as the
    /// constructor hook.
    ///
    /// # Errors
    ///
    /// [`ManagerError::GatewayBot`] if the request fails.
    pub async fn new(
        token: impl Into<String>,
        new_shard: impl Fn(&Manager, GatewayConfig) -> GatewayConfig + Send + Sync + 'static,
    ) -> Result<Self, ManagerError> {
        let identify = GatewayConfig::new(token, Intents::GUILDS | Intents::GUILD_MESSAGES);
        Self::builder(identify).new_shard(new_shard).fetch().await
    }

    /// Like [`new`](Self::new), asking `GET /gateway/bot` at another API
    /// base (a simulator's `http://host:port/api/v10`) and identifying
    /// with `identify`.
    ///
    /// # Errors
    ///
    /// [`ManagerError::GatewayBot`] if the request fails.
    pub async fn with_url(
        api_base: impl Into<String>,
        identify: GatewayConfig,
        new_shard: impl Fn(&Manager, GatewayConfig) -> GatewayConfig + Send + Sync + 'static,
    ) -> Result<Self, ManagerError> {
        let client = Client::new(identify.token.expose().to_owned())
            .map_err(|e| ManagerError::GatewayBot(Arc::new(e)))?
            .api_base(api_base);
        Self::builder(identify)
            .http(client)
            .new_shard(new_shard)
            .fetch()
            .await
    }

    /// A manager for the total in `identify` (its
    /// [`shard`](GatewayConfig::shard) total), asking nothing.
    pub fn new_identified(
        identify: GatewayConfig,
        new_shard: impl Fn(&Manager, GatewayConfig) -> GatewayConfig + Send + Sync + 'static,
    ) -> Self {
        Self::builder(identify).new_shard(new_shard).build()
    }

    /// Builds one slot per shard of `range` for set `generation`, calling
    /// the constructor hook with no lock held.
    fn make_slots(&self, generation: u64, total: u32, range: Range<u32>, url: &str) -> Vec<Slot> {
        range
            .map(|id| {
                let hook = SetHook {
                    generation,
                    cutover: self.inner.cutover.clone(),
                    user: self.inner.user_hook.clone(),
                };
                let config = self
                    .inner
                    .identify
                    .clone()
                    .shard(id, total)
                    .gateway_url(url)
                    .dispatch_hook(Arc::new(hook));
                Slot {
                    config: (self.inner.new_shard)(self, config),
                    running: None,
                }
            })
            .collect()
    }

    /// The bus every shard posts into.
    pub fn bus(&self) -> &TypeMux {
        &self.inner.bus
    }

    /// The state cache the shards feed, if the manager was built with one.
    pub fn cache(&self) -> Option<&crate::state::Cache> {
        self.inner.cache.as_ref()
    }

    /// The shard total (across every process of the bot).
    pub fn num_shards(&self) -> u32 {
        self.inner.total.load(Ordering::Acquire)
    }

    /// The shards this process runs: `index..index + init` of the total.
    pub fn range(&self) -> Range<u32> {
        lock(&self.inner.set).range.clone()
    }

    /// The URL new sessions connect to, with its query parameters.
    pub fn gateway_url(&self) -> String {
        let url = lock(&self.inner.set).url.clone();
        GatewayConfig::url_with_query(&url, self.inner.identify.compression)
    }

    /// Shard `id`, if this process runs it and it has been opened.
    pub fn shard(&self, id: u32) -> Option<ShardHandle> {
        let set = lock(&self.inner.set);
        let ix = id.checked_sub(set.range.start)?;
        set.slots
            .get(usize::try_from(ix).ok()?)?
            .running
            .as_ref()
            .map(|r| r.handle.clone())
    }

    /// The shard that receives `guild`'s events, `(guild_id >> 22) %
    /// num_shards`, and its handle if this process runs it and it is open.
    pub fn from_guild_id(&self, guild: GuildId) -> (Option<ShardHandle>, ShardId) {
        let total = u64::from(self.num_shards().max(1));
        let id = u32::try_from((guild.get() >> 22) % total).unwrap_or(0);
        (self.shard(id), ShardId(id))
    }

    /// Calls `f` with every open shard, first to last. It runs on a
    /// snapshot, with no lock held: `f` may call the manager.
    pub fn for_each(&self, mut f: impl FnMut(&ShardHandle)) {
        for handle in self.handles() {
            f(&handle);
        }
    }

    /// The ids of the shards that have been opened and not shut down.
    pub fn shards_instantiated(&self) -> Vec<ShardId> {
        self.handles().iter().map(ShardHandle::id).collect()
    }

    /// The stage, latency, totals and last error of shard `id`, if it is
    /// open.
    pub fn info(&self, id: u32) -> Option<ShardInfo> {
        self.shard(id).map(|h| ShardInfo::of(&h))
    }

    /// Every open shard's handle, first to last.
    fn handles(&self) -> Vec<ShardHandle> {
        lock(&self.inner.set)
            .slots
            .iter()
            .filter_map(|s| s.running.as_ref().map(|r| r.handle.clone()))
            .collect()
    }

    /// Opens every shard that is not running and waits until all are ready.
    /// Shards connect as the identify queue allows. Opening an open manager
    /// does nothing.
    ///
    /// # Errors
    ///
    /// The first fatal error of a shard it opened; it then closes every
    /// shard it opened (those already running before stay).
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future leaves the shards it started
    /// running; call [`close`](Self::close) to stop them.
    pub async fn open(&self) -> Result<(), ManagerError> {
        if self.handles().iter().all(|h| h.stage() == Stage::Stopped) {
            // A fresh start: the last run's fatal error is over.
            lock(&self.inner.fatal).take();
        }
        let started = self.start_missing();
        if let Err(error) = self.all_ready(&started).await {
            {
                let mut set = lock(&self.inner.set);
                for slot in &mut set.slots {
                    if slot
                        .running
                        .as_ref()
                        .is_some_and(|r| r.handle.stage() == Stage::Stopped)
                    {
                        slot.running = None;
                    }
                }
            }
            self.inner.changed.send_modify(|n| *n += 1);
            return Err(ManagerError::Gateway(error));
        }
        Ok(())
    }

    /// Waits until every shard of `started` is ready; on the first fatal
    /// error, closes them all and returns it.
    async fn all_ready(&self, started: &[Running]) -> Result<(), Arc<GatewayError>> {
        let mut readies: FuturesUnordered<_> = started.iter().map(ready).collect();
        while let Some(result) = readies.next().await {
            if let Err(error) = result {
                drop(readies);
                let _ = self.stop(started, CloseCode::NORMAL).await;
                return Err(error);
            }
        }
        Ok(())
    }

    /// Spawns every shard of the set that is not running.
    fn start_missing(&self) -> Vec<Running> {
        let mut set = lock(&self.inner.set);
        let generation = set.generation;
        let mut started = Vec::new();
        for slot in &mut set.slots {
            let stopped = slot
                .running
                .as_ref()
                .is_none_or(|r| r.handle.stage() == Stage::Stopped);
            if stopped {
                let running = self.spawn(&slot.config, generation);
                // A session to resume is resumed once: a restart of the
                // shard has its own, newer one (or none).
                slot.config.clear_resume();
                slot.running = Some(running.clone());
                started.push(running);
            }
        }
        drop(set);
        self.inner.changed.send_modify(|n| *n += 1);
        started
    }

    /// Spawns one shard and the task that watches how it ends.
    fn spawn(&self, config: &GatewayConfig, generation: u64) -> Running {
        let shard = Shard::spawn(config.clone(), self.inner.bus.clone());
        let handle = shard.handle().clone();
        let join: BoxFuture<'static, _> = Box::pin(shard.join());
        let done = join.shared();
        tokio::spawn(supervise(
            Arc::downgrade(&self.inner),
            generation,
            done.clone(),
        ));
        Running { handle, done }
    }

    /// Closes every shard with 1000 (ending their sessions), all at once,
    /// and waits until they stopped. The manager can be opened again.
    ///
    /// # Errors
    ///
    /// The first fatal error a shard had stopped with; every shard is
    /// closed regardless.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the shards stop whether or not the future is awaited.
    pub async fn close(&self) -> Result<(), ManagerError> {
        self.close_with(CloseCode::NORMAL).await
    }

    /// Closes every shard with 4000, keeping their sessions resumable, all
    /// at once, and waits until they stopped: for a process that stops to
    /// be restarted and resume its shards (see [`ShardHandle::session`] and
    /// [`GatewayConfig::resume`]).
    ///
    /// # Errors
    ///
    /// As [`close`](Self::close).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`close`](Self::close).
    pub async fn close_resumable(&self) -> Result<(), ManagerError> {
        self.close_with(CloseCode::UNKNOWN_ERROR).await
    }

    /// Closes every shard with `code` and waits until they stopped.
    async fn close_with(&self, code: CloseCode) -> Result<(), ManagerError> {
        let running: Vec<Running> = {
            let mut set = lock(&self.inner.set);
            set.slots
                .iter_mut()
                .filter_map(|s| s.running.take())
                .collect()
        };
        let result = self.stop(&running, code).await;
        self.inner.changed.send_modify(|n| *n += 1);
        result
    }

    /// Closes `shards` with `code`, all at once; the first error they had.
    async fn stop(&self, shards: &[Running], code: CloseCode) -> Result<(), ManagerError> {
        let results = join_all(shards.iter().map(|r| async move {
            r.handle.close(code).await;
            r.done.clone().await
        }))
        .await;
        match results.into_iter().find_map(Result::err) {
            Some(error) => Err(ManagerError::Gateway(error)),
            None => Ok(()),
        }
    }

    /// Closes every shard, ignoring the errors they had (serenity's
    /// `shutdown_all`).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`close`](Self::close).
    pub async fn shutdown_all(&self) {
        let _ = self.close().await;
    }

    /// Closes shard `id` with `code` and leaves it closed (a 4000-range
    /// code keeps its session resumable, 1000 ends it); the others keep
    /// running. [`open`](Self::open) starts it again.
    ///
    /// # Errors
    ///
    /// [`ManagerError::NoSuchShard`] if it is not open.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`close`](Self::close).
    pub async fn shutdown(&self, id: u32, code: CloseCode) -> Result<(), ManagerError> {
        let running = self
            .take(id)
            .ok_or(ManagerError::NoSuchShard(ShardId(id)))?;
        let _ = self.stop(std::slice::from_ref(&running), code).await;
        self.inner.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Closes shard `id` (ending its session) and starts it again with a
    /// new one; the others keep delivering meanwhile.
    ///
    /// # Errors
    ///
    /// [`ManagerError::NoSuchShard`] if this process does not run it.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropped after the close, the shard stays closed
    /// until the next [`open`](Self::open).
    pub async fn restart(&self, id: u32) -> Result<(), ManagerError> {
        if let Some(running) = self.take(id) {
            let _ = self
                .stop(std::slice::from_ref(&running), CloseCode::NORMAL)
                .await;
        }
        let mut set = lock(&self.inner.set);
        let generation = set.generation;
        let ix = id
            .checked_sub(set.range.start)
            .and_then(|ix| usize::try_from(ix).ok())
            .filter(|&ix| ix < set.slots.len())
            .ok_or(ManagerError::NoSuchShard(ShardId(id)))?;
        let running = self.spawn(&set.slots[ix].config, generation);
        set.slots[ix].running = Some(running);
        drop(set);
        self.inner.changed.send_modify(|n| *n += 1);
        Ok(())
    }

    /// Takes shard `id`'s running task out of its slot.
    fn take(&self, id: u32) -> Option<Running> {
        let mut set = lock(&self.inner.set);
        let ix = usize::try_from(id.checked_sub(set.range.start)?).ok()?;
        set.slots.get_mut(ix)?.running.take()
    }

    /// Waits until every shard has stopped (`Ok`) or one stopped with a
    /// fatal error (other than 4011, which rescales). Returns at once if
    /// nothing is open.
    ///
    /// # Errors
    ///
    /// The first fatal error.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    pub async fn wait(&self) -> Result<(), ManagerError> {
        let mut changed = self.inner.changed.subscribe();
        loop {
            if let Some(error) = self.fatal_error() {
                return Err(error);
            }
            let running: Vec<Running> = lock(&self.inner.set)
                .slots
                .iter()
                .filter_map(|s| s.running.clone())
                .collect();
            let mut all_done = true;
            for shard in &running {
                match shard.done.peek() {
                    // A 4011 is not an end: its supervisor rescales.
                    Some(Err(error)) if self.rescales_on(error) => all_done = false,
                    Some(Err(error)) => return Err(ManagerError::Gateway(error.clone())),
                    Some(Ok(())) => {}
                    None => all_done = false,
                }
            }
            if all_done && !self.inner.rescale_pending.load(Ordering::Acquire) {
                return Ok(());
            }
            if changed.changed().await.is_err() {
                return Ok(());
            }
        }
    }

    /// Whether a shard that stopped with `error` makes the manager rescale
    /// (a 4011, with an HTTP client to ask the new count).
    fn rescales_on(&self, error: &GatewayError) -> bool {
        self.inner.http.is_some()
            && matches!(
                &error.kind,
                GatewayErrorKind::Closed { code, .. } if *code == CloseCode::SHARDING_REQUIRED
            )
    }

    /// The first fatal error a shard stopped with, if any (4011 is not
    /// one: it rescales).
    pub fn fatal_error(&self) -> Option<ManagerError> {
        lock(&self.inner.fatal).clone()
    }

    /// Asks `GET /gateway/bot` for the recommended shard count and, if it
    /// differs from the current total, moves to a set of the new size: a
    /// rolling rescale ([`rescale_rolling_to`](Self::rescale_rolling_to))
    /// while every shard is connected, otherwise stop then start
    /// ([`rescale_to`](Self::rescale_to)).
    ///
    /// # Errors
    ///
    /// [`ManagerError::NoHttp`] without an HTTP client,
    /// [`ManagerError::GatewayBot`] if the request fails, or what the
    /// rescale returns.
    pub async fn rescale(&self) -> Result<(), ManagerError> {
        let bot = self.gateway_bot().await?;
        let healthy = {
            let handles = self.handles();
            !handles.is_empty() && handles.iter().all(|h| h.stage() == Stage::Connected)
        };
        if healthy {
            self.rescale_rolling_to(bot.shards).await
        } else {
            self.rescale_to(bot.shards).await
        }
    }

    /// Moves to a set of `total` shards without a gap: the new set
    /// connects and becomes ready while the old one keeps delivering, then
    /// the bus switches over and the old set is closed. Each event is
    /// posted once across the switch (see the cutover rules in the module
    /// docs of [`shard`](crate::shard)). Posts `Arc<`[`Rescaled`]`>` with
    /// `rolling: true`. Does nothing if `total` is the current total.
    ///
    /// # Errors
    ///
    /// [`ManagerError::PartialRange`] if this process runs only part of
    /// the shards, or the first fatal error of a new shard (the new set is
    /// then closed and the old one keeps running).
    pub async fn rescale_rolling_to(&self, total: u32) -> Result<(), ManagerError> {
        let total = total.max(1);
        let _one = self.inner.rescaling.lock().await;
        let (old, url, range, generation) = {
            let set = lock(&self.inner.set);
            (
                set.total,
                set.url.clone(),
                set.range.clone(),
                set.generation,
            )
        };
        whole(&range, old)?;
        if total == old {
            return Ok(());
        }
        tracing::info!(old, new = total, "rolling rescale");
        let epoch = self.inner.cutover.record(generation);
        let next = generation + 1;
        let mut slots = self.make_slots(next, total, 0..total, &url);
        let started: Vec<Running> = slots
            .iter_mut()
            .map(|slot| {
                let running = self.spawn(&slot.config, next);
                slot.running = Some(running.clone());
                running
            })
            .collect();
        if let Err(error) = self.all_ready(&started).await {
            self.inner.cutover.end(epoch);
            return Err(ManagerError::Gateway(error));
        }
        // The switch: from here each event is posted by whichever set
        // reads it first. The new set's Ready and guilds were muted, so the
        // cache hands every guild to the store of its new shard first.
        if let Some(cache) = &self.inner.cache {
            cache.rehome(total);
        }
        self.inner.cutover.overlap();
        let retired: Vec<Running> = {
            let mut set = lock(&self.inner.set);
            set.generation = next;
            set.total = total;
            set.range = 0..total;
            let old_slots = std::mem::replace(&mut set.slots, slots);
            old_slots.into_iter().filter_map(|s| s.running).collect()
        };
        self.inner.total.store(total, Ordering::Release);
        self.inner.changed.send_modify(|n| *n += 1);
        let _ = self.stop(&retired, CloseCode::NORMAL).await;
        // The new set may still be behind the old one by a little: keep
        // dropping its copies of what the old set posted for a while.
        let cutover = self.inner.cutover.clone();
        tokio::spawn(async move {
            tokio::time::sleep(CUTOVER_GRACE).await;
            cutover.end(epoch);
        });
        let _ = self
            .inner
            .bus
            .post(Rescaled {
                old,
                new: total,
                rolling: true,
            })
            .await;
        Ok(())
    }

    /// `GET /gateway/bot` through the manager's client.
    async fn gateway_bot(&self) -> Result<GatewayBot, ManagerError> {
        let http = self.inner.http.as_ref().ok_or(ManagerError::NoHttp)?;
        let bot = http
            .gateway_bot()
            .await
            .map_err(|e| ManagerError::GatewayBot(Arc::new(e)))?;
        if let Some(queue) = &self.inner.local_queue {
            queue.refresh(&bot.session_start_limit);
        }
        Ok(bot)
    }

    /// Replaces the shard set with one of `total` shards: closes the old
    /// shards (ending their sessions), builds the new set through the
    /// constructor hook, opens it, posts `Arc<`[`Rescaled`]`>` and waits
    /// until it is ready. Does nothing if `total` is the current total and
    /// every shard runs.
    ///
    /// # Errors
    ///
    /// [`ManagerError::PartialRange`] if this process runs only part of
    /// the shards (the other processes must rescale too), or the first
    /// fatal error of a new shard.
    pub async fn rescale_to(&self, total: u32) -> Result<(), ManagerError> {
        let _one = self.inner.rescaling.lock().await;
        let result = self.rescale_locked(total.max(1)).await;
        self.inner.rescale_pending.store(false, Ordering::Release);
        self.inner.changed.send_modify(|n| *n += 1);
        result
    }

    /// The rescale, with the rescale lock held.
    async fn rescale_locked(&self, total: u32) -> Result<(), ManagerError> {
        let (old, url, range) = {
            let set = lock(&self.inner.set);
            (set.total, set.url.clone(), set.range.clone())
        };
        whole(&range, old)?;
        if total == old && self.handles().len() == range.len() {
            let running = self.handles().iter().all(|h| h.stage() != Stage::Stopped);
            if running {
                return Ok(());
            }
        }
        tracing::info!(old, new = total, "rescaling");
        // Stop the old set first: its shards would get 4011 anyway.
        let stopping: Vec<Running> = {
            let mut set = lock(&self.inner.set);
            set.generation += 1;
            set.slots
                .iter_mut()
                .filter_map(|s| s.running.take())
                .collect()
        };
        let _ = self.stop(&stopping, CloseCode::NORMAL).await;
        // What the cache holds goes to the stores of the new shards, whose
        // Ready then starts over only their own guilds.
        if let Some(cache) = &self.inner.cache {
            cache.rehome(total);
        }
        self.inner.total.store(total, Ordering::Release);
        let generation = lock(&self.inner.set).generation;
        let slots = self.make_slots(generation, total, 0..total, &url);
        {
            let mut set = lock(&self.inner.set);
            set.total = total;
            set.range = 0..total;
            set.slots = slots;
        }
        let _ = self
            .inner
            .bus
            .post(Rescaled {
                old,
                new: total,
                rolling: false,
            })
            .await;
        self.open().await
    }

    /// A shard of `generation` was closed with 4011: rescale once for the
    /// whole set.
    async fn rescale_after_4011(&self, generation: u64) {
        let _one = self.inner.rescaling.lock().await;
        if lock(&self.inner.set).generation != generation {
            // Another shard's 4011 already rescaled this set.
            return;
        }
        let result = match self.gateway_bot().await {
            Ok(bot) => self.rescale_locked(bot.shards.max(1)).await,
            Err(e) => Err(e),
        };
        if let Err(error) = result {
            tracing::error!(%error, "automatic rescale failed");
            lock(&self.inner.fatal).get_or_insert(error);
        }
        self.inner.rescale_pending.store(false, Ordering::Release);
        self.inner.changed.send_modify(|n| *n += 1);
    }
}

/// `Ok` if `range` is every shard of `total` (a rescale needs every
/// process to move; this one can only move its own).
fn whole(range: &Range<u32>, total: u32) -> Result<(), ManagerError> {
    if *range == (0..total) {
        Ok(())
    } else {
        Err(ManagerError::PartialRange {
            index: range.start,
            end: range.end,
            total,
        })
    }
}

/// Waits for a shard to be ready: `Ok` once connected, its fatal error if
/// it stopped first.
async fn ready(running: &Running) -> Result<(), Arc<GatewayError>> {
    let mut stage = running.handle.watch_stage();
    loop {
        if *stage.borrow_and_update() == Stage::Connected {
            return Ok(());
        }
        let stopped = *stage.borrow() == Stage::Stopped || stage.changed().await.is_err();
        if stopped {
            running.done.clone().await?;
            return Err(Arc::new(GatewayError {
                shard: running.handle.id(),
                fatal: true,
                kind: GatewayErrorKind::ClosedBeforeReady,
            }));
        }
    }
}

/// Watches one shard's end: a 4011 rescales the set, another fatal error
/// is recorded for [`Manager::wait`].
async fn supervise(
    inner: Weak<Inner>,
    generation: u64,
    done: Shared<BoxFuture<'static, Result<(), Arc<GatewayError>>>>,
) {
    let result = done.await;
    let Some(inner) = inner.upgrade() else {
        return;
    };
    let manager = Manager { inner };
    if let Err(error) = result {
        if manager.rescales_on(&error) {
            manager.inner.rescale_pending.store(true, Ordering::Release);
            manager.inner.changed.send_modify(|n| *n += 1);
            manager.rescale_after_4011(generation).await;
            return;
        }
        lock(&manager.inner.fatal).get_or_insert(ManagerError::Gateway(error));
    }
    manager.inner.changed.send_modify(|n| *n += 1);
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = lock(&self.inner.set);
        f.debug_struct("Manager")
            .field("total", &set.total)
            .field("range", &set.range)
            .field(
                "open",
                &set.slots.iter().filter(|s| s.running.is_some()).count(),
            )
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ManagerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagerBuilder")
            .field("identify", &self.identify)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}
