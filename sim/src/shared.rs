//! The state every task of one sim shares.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::SimConfig;
use crate::fault::Fault;
use crate::ids::{ConnectionId, SessionId, ShardInfo};
use crate::log::SimLog;
use crate::rest::Rest;
use crate::session::Session;
use crate::stats::{SessionState, ShardStats, SimStats, WireCounters};
use crate::template::MessageTemplate;
use crate::world::World;

/// A request from the sim to one connection's task.
#[derive(Debug)]
pub(crate) enum Control {
    /// Inject a fault.
    Fault(Fault),
    /// Close with this code and reason (the session start limit, a resume elsewhere).
    Close(u16, String),
}

/// What the sim knows about an open connection.
#[derive(Debug)]
pub(crate) struct ConnHandle {
    /// Where to send controls.
    pub control: mpsc::UnboundedSender<Control>,
    /// The shard of its session, once identified or resumed.
    pub shard: Option<ShardInfo>,
}

/// Mutable sim-wide state behind one lock (never held across an await).
#[derive(Debug)]
pub(crate) struct State {
    /// Every session ever created, by id.
    pub sessions: HashMap<SessionId, Arc<Session>>,
    /// The same sessions in creation order (for stats).
    pub session_order: Vec<Arc<Session>>,
    /// Open connections.
    pub connections: HashMap<ConnectionId, ConnHandle>,
    /// The last accepted Identify per rate-limit bucket.
    pub buckets: HashMap<u32, Instant>,
    /// The recommended shard count (changed by reshard).
    pub shards: u32,
    /// Set by reshard: totals below this get 4011.
    pub required_shards: Option<u32>,
    /// Session starts left.
    pub starts_remaining: u32,
    /// When `starts_remaining` resets to the total.
    pub starts_reset_at: Instant,
    /// The token was reset because the session start limit ran out.
    pub token_revoked: bool,
}

/// Shared by the handle, the HTTP server, the generator and every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The configuration the sim started with.
    pub config: SimConfig,
    /// The bot's guilds and users.
    pub world: World,
    /// The generator's MESSAGE_CREATE template.
    pub template: MessageTemplate,
    /// When the sim started; log times are offsets from it.
    pub started: Instant,
    /// The bound address.
    pub addr: SocketAddr,
    /// Cancelled on shutdown.
    pub cancel: CancellationToken,
    /// Every task of the sim.
    pub tracker: TaskTracker,
    /// The next connection number (taken under the `log` lock, so the log
    /// lists connections in id order).
    pub next_conn: AtomicU64,
    /// The next session number.
    pub next_session: AtomicU64,
    /// Sim-wide mutable state.
    pub state: Mutex<State>,
    /// The sessions that receive dispatches (live or resumable), as a snapshot
    /// the hot path can clone cheaply.
    pub routes: RwLock<Arc<[Arc<Session>]>>,
    /// What clients did.
    pub log: Mutex<SimLog>,
    /// Bumped after every log change.
    pub log_version: watch::Sender<u64>,
    /// The generator's rate as `f64` bits.
    pub rate: AtomicU64,
    /// Wakes the generator when the rate changes.
    pub rate_changed: Notify,
    /// MESSAGE_CREATE events generated.
    pub generated: AtomicU64,
    /// Payload and wire bytes written, per transport compression.
    pub wire: WireCounters,
    /// The REST API's counters and memory.
    pub rest: Rest,
}

impl Shared {
    /// Build the shared state for a bound address.
    pub(crate) fn new(config: SimConfig, addr: SocketAddr) -> Self {
        let now = Instant::now();
        let state = State {
            sessions: HashMap::new(),
            session_order: Vec::new(),
            connections: HashMap::new(),
            buckets: HashMap::new(),
            shards: config.shards,
            required_shards: None,
            starts_remaining: config.session_start_limit.remaining,
            starts_reset_at: now + config.session_start_limit.reset_after,
            token_revoked: false,
        };
        let rate = config.rate;
        Self {
            world: World::new(&config),
            template: MessageTemplate::new(),
            config,
            started: now,
            addr,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
            next_session: AtomicU64::new(1),
            state: Mutex::new(state),
            routes: RwLock::new(Arc::from(Vec::new())),
            log: Mutex::new(SimLog::default()),
            log_version: watch::Sender::new(0),
            rate: AtomicU64::new(rate.to_bits()),
            rate_changed: Notify::new(),
            generated: AtomicU64::new(0),
            wire: WireCounters::default(),
            rest: Rest::new(),
        }
    }

    /// Time since the sim started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Lock the sim-wide state (recovering from poisoning: no invariant spans
    /// a panic point).
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Change the log and wake waiters.
    pub(crate) fn log_with<R>(&self, f: impl FnOnce(&mut SimLog) -> R) -> R {
        let r = {
            let mut log = self
                .log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut log)
        };
        self.log_version.send_modify(|v| *v += 1);
        r
    }

    /// A snapshot of the log.
    pub(crate) fn log_snapshot(&self) -> SimLog {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The sessions that receive dispatches.
    pub(crate) fn routes(&self) -> Arc<[Arc<Session>]> {
        self.routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Rebuild the routing snapshot from `state`.
    pub(crate) fn rebuild_routes(&self, state: &State) {
        let live: Vec<Arc<Session>> = state
            .session_order
            .iter()
            .filter(|s| s.lock().state != SessionState::Invalid)
            .cloned()
            .collect();
        *self
            .routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::from(live);
    }

    /// Invalidate detached sessions whose resume window has passed.
    pub(crate) fn expire_sessions(&self) {
        let window = self.config.resume_window;
        let state = self.state();
        let mut changed = false;
        for s in &state.session_order {
            let mut buf = s.lock();
            if buf.state == SessionState::Detached
                && buf.detached_at.is_some_and(|t| t.elapsed() >= window)
            {
                buf.invalidate();
                changed = true;
            }
        }
        if changed {
            self.rebuild_routes(&state);
        }
    }

    /// The resume URL clients are told in READY.
    pub(crate) fn resume_gateway_url(&self) -> String {
        format!("ws://{}/resume", self.addr)
    }

    /// The gateway URL of `/gateway/bot`.
    pub(crate) fn gateway_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The generator's current rate.
    pub(crate) fn rate(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    /// A snapshot of what was sent.
    pub(crate) fn stats(&self) -> SimStats {
        let sessions: Vec<Arc<Session>> = self.state().session_order.clone();
        let mut shards: Vec<ShardStats> = Vec::new();
        for s in sessions {
            let st = s.stats();
            let sent: u64 = st.connections.iter().map(|c| c.dispatches).sum();
            match shards.iter_mut().find(|x| x.shard == s.shard) {
                Some(x) => {
                    x.dispatches_sent += sent;
                    x.sessions.push(st);
                }
                None => shards.push(ShardStats {
                    shard: s.shard,
                    dispatches_sent: sent,
                    sessions: vec![st],
                }),
            }
        }
        shards.sort_by_key(|s| (s.shard.id, s.shard.total));
        let by_compression = self.wire.snapshot();
        SimStats {
            shards,
            generated: self.generated.load(Ordering::Relaxed),
            payload_bytes: by_compression.iter().map(|w| w.payload_bytes).sum(),
            wire_bytes: by_compression.iter().map(|w| w.wire_bytes).sum(),
            by_compression,
        }
    }
}
