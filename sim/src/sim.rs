//! The [`Sim`] handle: start, drive, observe and shut down a simulated gateway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::DropGuard;

use crate::config::SimConfig;
use crate::error::{SimError, WaitTimeout};
use crate::fault::{Fault, FaultTarget};
use crate::generator;
use crate::http;
use crate::ids::{GuildId, ShardInfo};
use crate::log::SimLog;
use crate::rest::{self, InjectedInteraction, NewInteraction};
use crate::shared::{Control, Shared};
use crate::stats::SimStats;

/// A running simulated gateway.
///
/// `Sim` is cheap to clone (an `Arc` inside); every clone drives the same
/// server. The server stops when [`shutdown`](Self::shutdown) is called or
/// when the last clone is dropped.
///
/// # Examples
///
/// ```
/// use shardbus_sim::{Sim, SimConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), shardbus_sim::SimError> {
/// let sim = Sim::start(SimConfig { shards: 2, guilds: 4, ..SimConfig::default() }).await?;
/// assert!(sim.gateway_url().starts_with("ws://127.0.0.1:"));
/// assert_eq!(sim.guilds_for_shard(1, 2).len(), 2);
/// sim.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Sim {
    /// The server's state.
    shared: Arc<Shared>,
    /// Cancels the server when the last user-held handle is dropped (absent
    /// on handles the server makes for itself).
    _guard: Option<Arc<DropGuard>>,
}

impl Sim {
    /// Bind the configured address and start serving HTTP and websocket
    /// connections on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`SimError::InvalidConfig`] for out-of-range values,
    /// [`SimError::Bind`] if the address cannot be bound.
    ///
    /// # Cancel safety
    ///
    /// Cancelling before it returns drops the listener; nothing keeps running.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        config.validate().map_err(SimError::InvalidConfig)?;
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| SimError::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: config.bind,
            source,
        })?;
        let shared = Arc::new(Shared::new(config, addr));
        let app = http::router(shared.clone());
        let cancel = shared.cancel.clone();
        shared.tracker.spawn(async move {
            // Gateway payloads are small and latency matters: no Nagle delay.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "could not set TCP_NODELAY");
                }
            });
            let serve = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "http server failed");
            }
        });
        shared.tracker.spawn(generator::run(shared.clone()));
        let janitor = shared.clone();
        shared.tracker.spawn(async move {
            let period = (janitor.config.resume_window / 4)
                .clamp(Duration::from_millis(10), Duration::from_secs(1));
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    () = janitor.cancel.cancelled() => return,
                    _ = tick.tick() => janitor.expire_sessions(),
                }
            }
        });
        tracing::info!(%addr, "shardbus-sim listening");
        let guard = Arc::new(shared.cancel.clone().drop_guard());
        Ok(Self {
            shared,
            _guard: Some(guard),
        })
    }

    /// A handle for the server's own use (does not keep it alive).
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            _guard: None,
        }
    }

    /// The address the server listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The gateway URL (`ws://127.0.0.1:PORT`), as `GET /gateway/bot` returns it.
    #[must_use]
    pub fn gateway_url(&self) -> String {
        self.shared.gateway_url()
    }

    /// The `resume_gateway_url` sent in READY (`ws://127.0.0.1:PORT/resume`).
    #[must_use]
    pub fn resume_gateway_url(&self) -> String {
        self.shared.resume_gateway_url()
    }

    /// The HTTP base URL (`http://127.0.0.1:PORT`); the REST API base is
    /// this plus `/api/v10`.
    #[must_use]
    pub fn http_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The bot token clients must use.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    /// The configuration the sim started with.
    #[must_use]
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Every guild id, by guild number.
    #[must_use]
    pub fn guild_ids(&self) -> Vec<GuildId> {
        self.shared.world.guilds.iter().map(|g| g.id).collect()
    }

    /// The text channels of `guild` (the first is its system channel
    /// `general`); empty if the guild is not one of the sim's. These are
    /// the channels `POST /api/v10/channels/{channel_id}/messages` accepts
    /// (the guild's voice channel does too).
    #[must_use]
    pub fn text_channel_ids(&self, guild: impl Into<GuildId>) -> Vec<u64> {
        self.shared
            .world
            .guild(guild.into())
            .map(|g| g.text_channels.clone())
            .unwrap_or_default()
    }

    /// The guilds shard `[id, total]` owns by the shard formula.
    #[must_use]
    pub fn guilds_for_shard(&self, id: u32, total: u32) -> Vec<GuildId> {
        self.shared
            .world
            .guilds_of(ShardInfo { id, total })
            .map(|g| g.id)
            .collect()
    }

    /// Dispatch event `event` with data `data` to every session whose shard
    /// owns `guild` (`(guild_id >> 22) % total == shard_id`) and whose intents
    /// allow it. Sessions waiting for a resume buffer it. Returns how many
    /// sessions it was queued on.
    pub fn dispatch(&self, guild: impl Into<GuildId>, event: &str, data: Value) -> usize {
        let guild = guild.into();
        self.shared
            .dispatch_where(event, true, &data, |s| s.shard.owns(guild))
    }

    /// Dispatch to every session of shard id `shard` (any total). For events
    /// without a guild (DMs and the like) use shard 0, as the real gateway
    /// does. Intents are checked as for a guild event if `data` has a
    /// `guild_id`, as for a direct-message event otherwise.
    pub fn dispatch_to_shard(&self, shard: u32, event: &str, data: Value) -> usize {
        let in_guild = data.get("guild_id").is_some_and(|g| !g.is_null());
        self.shared
            .dispatch_where(event, in_guild, &data, |s| s.shard.id == shard)
    }

    /// Inject an interaction: queue INTERACTION_CREATE (Discord's
    /// interaction object, with a fresh id and token) on the sessions that
    /// own its guild, and return what a client needs to answer it. The
    /// callback and the webhook endpoints under `/api/v10` then accept it;
    /// [`SimLog::interactions`] records how it was answered.
    ///
    /// # Errors
    ///
    /// [`SimError::Unknown`] if the guild is not one of the sim's, the
    /// channel not one of the guild's, or the user not one of its members.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus_sim::{NewInteraction, Sim, SimConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), shardbus_sim::SimError> {
    /// let sim = Sim::start(SimConfig::default()).await?;
    /// let guild = sim.guild_ids()[0];
    /// let injected = sim.inject_interaction(NewInteraction::command(guild, "ping"))?;
    /// assert_eq!(injected.sessions, 0); // no client is connected
    /// assert_eq!(sim.log().interaction(injected.id).map(|i| i.name.as_str()), Some("ping"));
    /// sim.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn inject_interaction(
        &self,
        interaction: NewInteraction,
    ) -> Result<InjectedInteraction, SimError> {
        rest::inject(&self.shared, interaction)
    }

    /// Inject `fault` into the connections `target` selects; returns how many.
    pub fn fault(&self, target: FaultTarget, fault: Fault) -> usize {
        let state = self.shared.state();
        state
            .connections
            .values()
            .filter(|h| match target {
                FaultTarget::All => true,
                FaultTarget::Shard(n) => h.shard.is_some_and(|s| s.id == n),
            })
            .filter(|h| h.control.send(Control::Fault(fault)).is_ok())
            .count()
    }

    /// The 4011 drill: the bot now needs `shards` shards. `GET /gateway/bot`
    /// reports the new count, and Identify with a smaller total is closed
    /// with 4011. Open sessions are left alone (close them with
    /// [`Fault::Close`]`(4011)` to complete the drill).
    ///
    /// # Errors
    ///
    /// [`SimError::InvalidConfig`] if `shards` is 0.
    pub fn reshard(&self, shards: u32) -> Result<(), SimError> {
        if shards == 0 {
            return Err(SimError::InvalidConfig("shards must be at least 1"));
        }
        let mut state = self.shared.state();
        state.shards = shards;
        state.required_shards = Some(shards);
        Ok(())
    }

    /// Set the generator's rate in MESSAGE_CREATE per second (`f64::INFINITY`:
    /// as fast as connections drain; 0: stop). Negative and NaN rates stop it.
    pub fn start_traffic(&self, rate: f64) {
        let rate = if rate.is_nan() || rate < 0.0 {
            0.0
        } else {
            rate
        };
        self.shared.rate.store(rate.to_bits(), Ordering::Relaxed);
        self.shared.rate_changed.notify_one();
    }

    /// Stop the generator.
    pub fn stop_traffic(&self) {
        self.start_traffic(0.0);
    }

    /// A snapshot of what clients did.
    #[must_use]
    pub fn log(&self) -> SimLog {
        self.shared.log_snapshot()
    }

    /// A snapshot of what the server sent.
    #[must_use]
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// Wait until `condition` holds for the log, and return that log.
    ///
    /// # Errors
    ///
    /// [`WaitTimeout`] if it does not hold within `timeout`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes.
    pub async fn wait_for_log(
        &self,
        timeout: Duration,
        condition: impl Fn(&SimLog) -> bool,
    ) -> Result<SimLog, WaitTimeout> {
        let mut rx = self.shared.log_version.subscribe();
        let wait = async {
            loop {
                rx.borrow_and_update();
                let log = self.log();
                if condition(&log) {
                    return log;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| WaitTimeout(timeout))
    }

    /// Wait until `condition` holds for the stats (checked every 5 ms), and
    /// return them.
    ///
    /// # Errors
    ///
    /// [`WaitTimeout`] if it does not hold within `timeout`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes.
    pub async fn wait_for_stats(
        &self,
        timeout: Duration,
        condition: impl Fn(&SimStats) -> bool,
    ) -> Result<SimStats, WaitTimeout> {
        let wait = async {
            loop {
                let stats = self.stats();
                if condition(&stats) {
                    return stats;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| WaitTimeout(timeout))
    }

    /// Stop serving: the listener closes, every connection is dropped, and
    /// the generator stops. Returns when all tasks have ended.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: shutdown has begun once this is first polled, and the
    /// tasks end on their own.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
    }
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("addr", &self.shared.addr)
            .field("shards", &self.shared.state().shards)
            .finish_non_exhaustive()
    }
}
