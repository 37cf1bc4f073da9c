//! A bus plus the gateway: what a bot runs.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use crate::bus::TypeMux;
use crate::gateway::{GatewayConfig, GatewayError, GatewayErrorKind, Intents, ShardHandle};
use crate::shard::{Manager, ManagerError};

/// A [`TypeMux`] and the [`Manager`] whose shards post gateway events into
/// it: one shard by default, as many as the manager runs otherwise.
///
/// `open` connects and returns once every shard is ready; `connect` opens
/// and then runs until a fatal error or a shutdown signal; `close` ends the
/// sessions. Subscribe to events on [`bus`](Self::bus) before opening so no
/// early event (Ready, guild creates) is missed.
///
/// # Examples
///
/// ```no_run
/// use std::sync::Arc;
/// use shardbus::Session;
/// use shardbus::gateway::Intents;
/// use shardbus::model::MessageCreate;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let session = Session::new(
///     std::env::var("DISCORD_TOKEN")?,
///     Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
/// );
/// let _log = session.bus().add_handler(|msg: Arc<MessageCreate>| async move {
///     println!("{}", msg.content);
/// });
/// session.connect(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(())
/// # }
/// ```
pub struct Session {
    /// The shards, and the bus they post into.
    manager: Manager,
}

impl Session {
    /// A session for shard `[0, 1]` on Discord's gateway with a new bus.
    pub fn new(token: impl Into<String>, intents: Intents) -> Self {
        Self::with_config(GatewayConfig::new(token, intents), TypeMux::new())
    }

    /// A session running the one shard `config` names (gateway URL, shard,
    /// events, compression), posting into `bus`.
    pub fn with_config(config: GatewayConfig, bus: TypeMux) -> Self {
        let id = config.shard_id().0;
        Self::with_manager(
            Manager::builder(config)
                .range(id..id.saturating_add(1))
                .bus(bus)
                .build(),
        )
    }

    /// A session running every shard of `manager`, on its bus.
    pub fn with_manager(manager: Manager) -> Self {
        Self { manager }
    }

    /// The bus events are posted on.
    pub fn bus(&self) -> &TypeMux {
        self.manager.bus()
    }

    /// The shard manager.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    /// The first shard this session runs, once opened.
    pub fn shard(&self) -> Option<ShardHandle> {
        self.manager.shard(self.manager.range().start)
    }

    /// Connects and returns once every shard is ready (Ready received).
    /// Opening an open session does nothing; opening one whose shards have
    /// stopped (after [`close`](Self::close) or a fatal error) starts fresh
    /// shards with new sessions.
    ///
    /// # Errors
    ///
    /// The fatal [`GatewayError`] of a shard that stopped before it was
    /// ready (an invalid token, say); the shards this call opened are
    /// closed again.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the shards keep connecting; a later `open` or `wait`
    /// picks them up.
    pub async fn open(&self) -> Result<(), Arc<GatewayError>> {
        self.manager.open().await.map_err(into_gateway)
    }

    /// Opens, then runs until a shard stops with a fatal error or
    /// `shutdown` completes (then closes the session).
    ///
    /// # Errors
    ///
    /// The fatal [`GatewayError`] that stopped a shard.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future leaves the shards running (as
    /// [`open`](Self::open) does); call [`close`](Self::close) to stop them.
    pub async fn connect<F: Future>(&self, shutdown: F) -> Result<(), Arc<GatewayError>> {
        tokio::pin!(shutdown);
        tokio::select! {
            opened = self.open() => opened?,
            _ = &mut shutdown => {
                self.close().await;
                return Ok(());
            }
        }
        tokio::select! {
            result = self.wait() => {
                if result.is_err() {
                    self.close().await;
                }
                result
            }
            _ = shutdown => {
                self.close().await;
                Ok(())
            }
        }
    }

    /// Waits until every shard stops (`Ok` after [`close`](Self::close)) or
    /// one stops with a fatal error. Returns at once if the session was
    /// never opened.
    ///
    /// # Errors
    ///
    /// The fatal [`GatewayError`] that stopped a shard.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    pub async fn wait(&self) -> Result<(), Arc<GatewayError>> {
        self.manager.wait().await.map_err(into_gateway)
    }

    /// Closes every connection with 1000 (ending the sessions) and waits
    /// for the shards to stop. The session can be opened again afterwards.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: once the close requests are in, the shards stop whether
    /// or not the future is still awaited.
    pub async fn close(&self) {
        self.manager.shutdown_all().await;
    }

    /// Whether every shard has a connection open or opening: `false`
    /// before [`open`](Self::open), while any shard waits to reconnect, and
    /// once they stopped.
    pub fn gateway_is_alive(&self) -> bool {
        let mut any = false;
        let mut all = true;
        self.manager.for_each(|shard| {
            any = true;
            all &= shard.is_alive();
        });
        any && all
    }

    /// The error that stopped the session if there was one, else the last
    /// error any shard reported (the first shard's first), read without a
    /// data race.
    pub fn gateway_error(&self) -> Option<Arc<GatewayError>> {
        if let Some(error) = self.manager.fatal_error() {
            return Some(into_gateway(error));
        }
        let mut last = None;
        self.manager.for_each(|shard| {
            if last.is_none() {
                last = shard.last_error();
            }
        });
        last
    }
}

/// The gateway error a manager error stands for.
fn into_gateway(error: ManagerError) -> Arc<GatewayError> {
    match error {
        ManagerError::Gateway(error) => error,
        other => Arc::new(GatewayError {
            shard: crate::model::ShardId(0),
            fatal: true,
            kind: GatewayErrorKind::Manager(Box::new(other)),
        }),
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("manager", &self.manager)
            .field("alive", &self.gateway_is_alive())
            .finish()
    }
}
