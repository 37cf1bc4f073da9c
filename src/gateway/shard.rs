//! One shard: a websocket connection that posts typed events into the bus,
//! and the handle users hold on it.
//!
//! # The loop
//!
//! Each shard is one task ([`Runner`](super::runner)) running one loop per
//! connection ([`connection`](super::connection)) that `select!`s over
//! close/reconnect requests, the heartbeat timer, the outgoing queue, the
//! pending bus post, identify pacing, user commands and socket reads, in
//! that order of priority. Nothing else writes to the socket. While a post
//! waits on a slow subscriber, the loop stops reading the socket (TCP
//! carries the pressure back to the server) but keeps heartbeating; an
//! acknowledgement it has not read because of that does not count as
//! missing. Every wait (connecting, Hello, identify pacing, the pause after
//! op 9, reconnect backoff) is a branch of a `select!` that also watches
//! for a close, so [`ShardHandle::close`] is answered promptly whatever
//! the server sends.
//!
//! A connection ends in one of four ways: resume (op 7, op 9 `true`, a
//! dropped connection, a zombie, a resumable close code), new session
//! (op 9 `false`, 4003, 4007, 4009), fatal (4004, 4010–4014) or shutdown;
//! the decision is one pure function (`decide`). Each end posts the same
//! stages: [`Stage::Disconnected`], then [`Stage::Resuming`] or
//! [`Stage::Queued`] (a new session: the identify turn, then [`Stage::Connecting`])
//! for the next connection, or [`Stage::Stopped`].
//! Before reconnecting, every event already read is delivered, so a resume
//! from the last sequence number loses and repeats nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use super::close::CloseCode;
use super::command::{MAX_COMMAND_BYTES, RequestGuildMembers, UpdatePresence, UpdateVoiceState};
use super::config::GatewayConfig;
use super::error::{CommandError, GatewayError, GatewayErrorKind};
use super::opcode::OpCode;
use super::payload;
use super::runner::{ResumeInfo, Runner};
use super::stage::{ShardStage, Stage};
use crate::bus::TypeMux;
use crate::model::{Seq, ShardId};
use crate::sync::lock;

/// A running shard; made by [`Shard::spawn`].
///
/// [`ShardHandle::close`] stops it; so does dropping the `Shard` and every
/// [`ShardHandle`] (with close code 1000).
#[derive(Debug)]
pub struct Shard {
    /// Commands and state.
    handle: ShardHandle,
    /// The task, yielding the fatal error if there was one.
    task: tokio::task::JoinHandle<Result<(), Arc<GatewayError>>>,
}

/// A cheap handle on a running shard: send commands, read its state.
#[derive(Debug, Clone)]
pub struct ShardHandle {
    /// The shard.
    id: ShardId,
    /// User commands into the shard's loop (paced).
    commands: mpsc::Sender<String>,
    /// Close and reconnect requests, never held behind paced commands.
    control: mpsc::Sender<Control>,
    /// Shared with the loop.
    state: Arc<ShardState>,
}

/// What the loop shares with handles.
#[derive(Debug)]
pub(crate) struct ShardState {
    /// The current stage, watched by `Session::open`.
    pub(crate) stage: watch::Sender<Stage>,
    /// The last heartbeat's round trip.
    pub(crate) latency: Mutex<Option<Duration>>,
    /// The last error, for `Session::gateway_error`.
    pub(crate) last_error: Mutex<Option<Arc<GatewayError>>>,
    /// What the shard has done so far.
    pub(crate) counters: Counters,
    /// The session (its `seq` as of Ready or the resume asked for).
    pub(crate) session: Mutex<Option<ResumeInfo>>,
    /// The last sequence number received.
    pub(crate) seq: AtomicU64,
}

/// The shard's running totals, updated by its loop.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Dispatches received (each sequence number once).
    pub(crate) events: AtomicU64,
    /// Sessions started (Ready received).
    pub(crate) identifies: AtomicU64,
    /// Sessions resumed (Resumed received).
    pub(crate) resumes: AtomicU64,
    /// Connections opened after the first.
    pub(crate) reconnects: AtomicU64,
    /// Bytes read from the socket, as sent (compressed or not).
    pub(crate) bytes_in: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ShardCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ShardCounters {
            events: get(&self.events),
            identifies: get(&self.identifies),
            resumes: get(&self.resumes),
            reconnects: get(&self.reconnects),
            bytes_in: get(&self.bytes_in),
        }
    }
}

/// A snapshot of a shard's running totals, from [`ShardHandle::counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardCounters {
    /// Dispatches received, each sequence number once (a replay after a
    /// resume is not counted twice).
    pub events: u64,
    /// Sessions started (Ready received); every one after the first is a
    /// re-identify.
    pub identifies: u64,
    /// Sessions resumed (Resumed received).
    pub resumes: u64,
    /// Connections opened after the first one.
    pub reconnects: u64,
    /// Bytes read from the socket as they came (compressed or not).
    pub bytes_in: u64,
}

impl ShardCounters {
    /// Sessions started after the first: `identifies - 1`, or 0.
    pub fn reidentifies(&self) -> u64 {
        self.identifies.saturating_sub(1)
    }
}

/// A lifecycle request into the loop.
#[derive(Debug)]
pub(crate) enum Control {
    /// Close the connection and stop; the code says whether the session ends.
    Close(CloseCode, oneshot::Sender<()>),
    /// Close the connection (keeping the session) and resume.
    Reconnect,
}

impl Shard {
    /// Starts a shard posting into `bus`.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub fn spawn(config: GatewayConfig, bus: TypeMux) -> Self {
        let (tx, rx) = mpsc::channel(64);
        let (control_tx, control_rx) = mpsc::channel(4);
        let state = Arc::new(ShardState {
            stage: watch::Sender::new(Stage::Queued),
            latency: Mutex::new(None),
            last_error: Mutex::new(None),
            counters: Counters::default(),
            session: Mutex::new(config.resume.clone()),
            seq: AtomicU64::new(config.resume.as_ref().map_or(0, |r| r.seq.0)),
        });
        let id = config.shard;
        let span = tracing::info_span!("shard", shard = %id);
        let runner = Runner::new(config, bus.clone(), rx, control_rx, state.clone());
        let crashed = state.clone();
        let task = tokio::spawn(
            async move {
                match std::panic::AssertUnwindSafe(runner.run())
                    .catch_unwind()
                    .await
                {
                    Ok(result) => result,
                    Err(panic) => Err(crash(id, &crashed, &bus, panic_message(&*panic)).await),
                }
            }
            .instrument(span),
        );
        Self {
            handle: ShardHandle {
                id,
                commands: tx,
                control: control_tx,
                state,
            },
            task,
        }
    }

    /// A handle for commands and state.
    pub fn handle(&self) -> &ShardHandle {
        &self.handle
    }

    /// Waits until the shard stops: `Ok` after a close, the fatal error
    /// otherwise (a panic in the shard's task is one, of kind
    /// [`GatewayErrorKind::Panicked`]).
    ///
    /// # Errors
    ///
    /// The fatal [`GatewayError`] that stopped the shard.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe in the sense that the `Shard` is consumed: dropping
    /// the future drops it (the shard keeps running while a
    /// [`ShardHandle`] is alive).
    pub async fn join(self) -> Result<(), Arc<GatewayError>> {
        match self.task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(Arc::new(GatewayError {
                shard: self.handle.id,
                fatal: true,
                kind: GatewayErrorKind::Panicked(panic_message(&*e.into_panic())),
            })),
            Err(_) => {
                let error = Arc::new(GatewayError {
                    shard: self.handle.id,
                    fatal: true,
                    kind: GatewayErrorKind::Aborted,
                });
                *lock(&self.handle.state.last_error) = Some(error.clone());
                self.handle.state.stage.send_replace(Stage::Stopped);
                Err(error)
            }
        }
    }
}

/// Records a panicked shard as stopped with a fatal error and posts it.
async fn crash(
    shard: ShardId,
    state: &ShardState,
    bus: &TypeMux,
    message: String,
) -> Arc<GatewayError> {
    let error = Arc::new(GatewayError {
        shard,
        fatal: true,
        kind: GatewayErrorKind::Panicked(message),
    });
    tracing::error!(%error, "shard stopping");
    *lock(&state.last_error) = Some(error.clone());
    state.stage.send_replace(Stage::Stopped);
    let _ = bus.post_arc(error.clone()).await;
    let _ = bus
        .post(ShardStage {
            shard,
            stage: Stage::Stopped,
        })
        .await;
    error
}

/// The text of a panic payload.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

impl ShardHandle {
    /// The shard's id.
    pub fn id(&self) -> ShardId {
        self.id
    }

    /// The shard's current stage.
    pub fn stage(&self) -> Stage {
        *self.state.stage.borrow()
    }

    /// Watches the shard's stage.
    pub fn watch_stage(&self) -> watch::Receiver<Stage> {
        self.state.stage.subscribe()
    }

    /// Whether the shard has a connection open or opening: `false` while
    /// it waits to reconnect ([`Stage::Disconnected`]) and once stopped.
    pub fn is_alive(&self) -> bool {
        !matches!(self.stage(), Stage::Disconnected { .. } | Stage::Stopped)
    }

    /// The round trip of the last acknowledged heartbeat.
    pub fn latency(&self) -> Option<Duration> {
        *lock(&self.state.latency)
    }

    /// What the shard has done so far: events, sessions, resumes,
    /// reconnects, bytes.
    pub fn counters(&self) -> ShardCounters {
        self.state.counters.snapshot()
    }

    /// The shard's session, with the last sequence number received: what
    /// a resume of it needs (`None` before Ready, and after the session
    /// ended). Keep it across a restart of the process and pass it to
    /// [`GatewayConfig::resume`].
    pub fn session(&self) -> Option<ResumeInfo> {
        let mut session = lock(&self.state.session).clone()?;
        session.seq = Seq(self.state.seq.load(Ordering::Relaxed));
        Some(session)
    }

    /// The last error the shard reported.
    pub fn last_error(&self) -> Option<Arc<GatewayError>> {
        lock(&self.state.last_error).clone()
    }

    /// Updates the bot's presence (op 3).
    ///
    /// # Errors
    ///
    /// [`CommandError`] if the command is too large or the shard stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, the
    /// command was not queued.
    pub async fn update_presence(&self, presence: &UpdatePresence) -> Result<(), CommandError> {
        self.send(OpCode::PresenceUpdate, presence).await
    }

    /// Requests members of a guild (op 8); they arrive as member chunks,
    /// or as a `RATE_LIMITED` dispatch if the guild was asked too recently.
    ///
    /// # Errors
    ///
    /// [`CommandError`] if the command is too large or the shard stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, the
    /// command was not queued.
    pub async fn request_guild_members(
        &self,
        request: &RequestGuildMembers,
    ) -> Result<(), CommandError> {
        self.send(OpCode::RequestGuildMembers, request).await
    }

    /// Joins, moves or leaves a voice channel (op 4).
    ///
    /// # Errors
    ///
    /// [`CommandError`] if the command is too large or the shard stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, the
    /// command was not queued.
    pub async fn update_voice_state(&self, update: &UpdateVoiceState) -> Result<(), CommandError> {
        self.send(OpCode::VoiceStateUpdate, update).await
    }

    /// Sends any payload `{op, d}`. Commands are paced so the shard never
    /// exceeds the gateway's 120 per minute, heartbeats included; they wait
    /// in the shard while it is not connected.
    ///
    /// # Errors
    ///
    /// [`CommandError`] if the command is larger than 4096 bytes, cannot be
    /// serialized, or the shard stopped.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, the
    /// command was not queued.
    pub async fn send_raw(&self, op: OpCode, d: serde_json::Value) -> Result<(), CommandError> {
        self.send(op, &d).await
    }

    async fn send<D: Serialize>(&self, op: OpCode, d: D) -> Result<(), CommandError> {
        let text = payload::encode(op, d).map_err(|e| CommandError::Encode(Box::new(e)))?;
        if text.len() > MAX_COMMAND_BYTES {
            return Err(CommandError::TooLarge { len: text.len() });
        }
        self.commands
            .send(text)
            .await
            .map_err(|_| CommandError::ShardStopped)
    }

    /// Closes the connection with `code` and stops the shard; returns once
    /// it has stopped (after delivering the events it had already read).
    /// 1000 or 1001 end the session; a 4000-range code keeps it resumable
    /// for another process.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: once the request is in, the shard stops whether or not
    /// the future is still awaited.
    pub async fn close(&self, code: CloseCode) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Close(code, tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Drops the connection and resumes the session on a new one (or
    /// connects at once if the shard is waiting to reconnect).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the request is either queued or not.
    pub async fn reconnect(&self) {
        let _ = self.control.send(Control::Reconnect).await;
    }
}
