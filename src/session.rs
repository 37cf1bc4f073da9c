//! A bus plus the gateway: what a bot runs.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::bus::TypeMux;
use crate::gateway::{
    CloseCode, GatewayConfig, GatewayError, GatewayErrorKind, Intents, Shard, ShardHandle, Stage,
};
use crate::sync::lock;

/// A [`TypeMux`] and the shard that posts gateway events into it.
///
/// `open` connects and returns once the shard is ready; `connect` opens and
/// then runs until a fatal error or a shutdown signal; `close` ends the
/// session. Subscribe to events on [`bus`](Self::bus) before opening so no
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
    /// Where events go.
    bus: TypeMux,
    /// How the shard connects.
    config: GatewayConfig,
    /// The running shard, once opened.
    shard: Mutex<Option<ShardTask>>,
}

/// A running shard and a way to wait for it.
struct ShardTask {
    /// Commands and state.
    handle: ShardHandle,
    /// Resolves with the shard's result; shared by every waiter.
    done:
        futures_util::future::Shared<crate::bus::BoxFuture<'static, Result<(), Arc<GatewayError>>>>,
}

impl Session {
    /// A session for shard `[0, 1]` on Discord's gateway with a new bus.
    pub fn new(token: impl Into<String>, intents: Intents) -> Self {
        Self::with_config(GatewayConfig::new(token, intents), TypeMux::new())
    }

    /// A session with a full configuration (gateway URL, shard, events,
    /// compression) posting into `bus`.
    pub fn with_config(config: GatewayConfig, bus: TypeMux) -> Self {
        Self {
            bus,
            config,
            shard: Mutex::new(None),
        }
    }

    /// The bus events are posted on.
    pub fn bus(&self) -> &TypeMux {
        &self.bus
    }

    /// The shard, once opened.
    pub fn shard(&self) -> Option<ShardHandle> {
        self.lock().as_ref().map(|s| s.handle.clone())
    }

    /// Connects and returns once the shard is ready (Ready received).
    /// Opening an open session does nothing; opening one whose shard has
    /// stopped (after [`close`](Self::close) or a fatal error) starts a
    /// fresh shard with a new session.
    ///
    /// # Errors
    ///
    /// The fatal [`GatewayError`] if the shard stopped before it was ready
    /// (an invalid token, say).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the shard keeps connecting; a later `open` or `wait`
    /// picks it up.
    pub async fn open(&self) -> Result<(), Arc<GatewayError>> {
        let mut stage = {
            let mut shard = self.lock();
            if shard
                .as_ref()
                .is_some_and(|task| task.handle.stage() == Stage::Stopped)
            {
                *shard = None;
            }
            let task = shard.get_or_insert_with(|| {
                let spawned = Shard::spawn(self.config.clone(), self.bus.clone());
                let handle = spawned.handle().clone();
                let join: crate::bus::BoxFuture<'static, _> = Box::pin(spawned.join());
                ShardTask {
                    handle,
                    done: futures_util::FutureExt::shared(join),
                }
            });
            task.handle.watch_stage()
        };
        loop {
            match *stage.borrow_and_update() {
                Stage::Connected => return Ok(()),
                Stage::Stopped => return self.wait().await.and(Err(self.stopped_error())),
                _ => {}
            }
            if stage.changed().await.is_err() {
                return self.wait().await.and(Err(self.stopped_error()));
            }
        }
    }

    /// Opens, then runs until the shard stops with a fatal error or
    /// `shutdown` completes (then closes the session).
    ///
    /// # Errors
    ///
    /// The fatal [`GatewayError`] that stopped the shard.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future leaves the shard running (as
    /// [`open`](Self::open) does); call [`close`](Self::close) to stop it.
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
            result = self.wait() => result,
            _ = shutdown => {
                self.close().await;
                Ok(())
            }
        }
    }

    /// Waits until the shard stops: `Ok` after [`close`](Self::close), the
    /// fatal error otherwise. Returns at once if the session was never
    /// opened.
    ///
    /// # Errors
    ///
    /// The fatal [`GatewayError`] that stopped the shard.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only waits.
    pub async fn wait(&self) -> Result<(), Arc<GatewayError>> {
        let done = self.lock().as_ref().map(|s| s.done.clone());
        match done {
            Some(done) => done.await,
            None => Ok(()),
        }
    }

    /// Closes the connection with 1000 (ending the session) and waits for
    /// the shard to stop. The session can be opened again afterwards.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: once the close request is in, the shard stops whether
    /// or not the future is still awaited.
    pub async fn close(&self) {
        let handle = self.shard();
        if let Some(handle) = handle {
            handle.close(CloseCode::NORMAL).await;
            let _ = self.wait().await;
        }
    }

    /// Whether the shard has a connection open or opening: `false` before
    /// [`open`](Self::open), while the shard waits to reconnect, and once
    /// it stopped.
    pub fn gateway_is_alive(&self) -> bool {
        self.shard().is_some_and(|s| s.is_alive())
    }

    /// The last error the shard reported, read without a data race.
    pub fn gateway_error(&self) -> Option<Arc<GatewayError>> {
        self.shard().and_then(|s| s.last_error())
    }

    /// The error of a shard closed before it was ready (`wait` was `Ok`).
    fn stopped_error(&self) -> Arc<GatewayError> {
        Arc::new(GatewayError {
            shard: self.config.shard_id(),
            fatal: true,
            kind: GatewayErrorKind::ClosedBeforeReady,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ShardTask>> {
        lock(&self.shard)
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("config", &self.config)
            .field("alive", &self.gateway_is_alive())
            .finish_non_exhaustive()
    }
}
