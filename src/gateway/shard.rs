//! One shard: a websocket connection that posts typed events into the bus.
//!
//! # The loop
//!
//! Each shard is one task running one loop that `select!`s over the
//! heartbeat timer, the pending bus post, socket reads and user commands.
//! Nothing else writes to the socket. While a post waits on a slow
//! subscriber, the loop stops reading the socket (TCP carries the pressure
//! back to the server) but keeps heartbeating; an acknowledgement it has not
//! read because of that does not count as missing.
//!
//! A connection ends in one of four ways: resume (op 7, op 9 `true`, a
//! dropped connection, a zombie, a resumable close code), new session
//! (op 9 `false`, 4007, 4009), fatal (4004, 4010–4014) or shutdown. Before
//! reconnecting, every event already read is delivered, so a resume from
//! the last sequence number loses and repeats nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::Instrument;

use super::close::{CloseAction, CloseCode};
use super::compression::Inflater;
use super::config::GatewayConfig;
use super::error::{CommandError, GatewayError, GatewayErrorKind};
use super::event::DispatchMeta;
use super::opcode::OpCode;
use super::payload::{self, Frame, Hello};
use super::ratelimit::CommandLimiter;
use super::registry::{Decoded, PostFuture};
use super::stage::{ShardStage, Stage};
use crate::bus::TypeMux;
use crate::model::{Seq, SessionId, ShardId};
use crate::sync::lock;

/// The largest command the gateway accepts.
pub const MAX_COMMAND_BYTES: usize = 4096;

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
struct ShardState {
    /// The current stage, watched by `Session::open`.
    stage: watch::Sender<Stage>,
    /// The last heartbeat's round trip.
    latency: Mutex<Option<Duration>>,
    /// The last error, for `Session::gateway_error`.
    last_error: Mutex<Option<Arc<GatewayError>>>,
}

/// A lifecycle request into the loop.
#[derive(Debug)]
enum Control {
    /// Close the connection and stop; the code says whether the session ends.
    Close(CloseCode, oneshot::Sender<()>),
    /// Close the connection (keeping the session) and resume.
    Reconnect,
}

/// A presence update command (op 3).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdatePresence {
    /// Unix time in milliseconds the client went idle, if it did.
    pub since: Option<u64>,
    /// Activities, as JSON objects (`{"name": "...", "type": 0}`).
    pub activities: Vec<serde_json::Value>,
    /// `online`, `dnd`, `idle`, `invisible` or `offline`.
    pub status: String,
    /// Whether the client is AFK.
    pub afk: bool,
}

/// A guild members request (op 8).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RequestGuildMembers {
    /// The guild.
    pub guild_id: crate::model::GuildId,
    /// Usernames starting with this; empty for all (with `limit` 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The most members to send; 0 for all.
    pub limit: u32,
    /// Whether to include presences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presences: Option<bool>,
    /// Specific users instead of a query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_ids: Option<Vec<crate::model::UserId>>,
    /// Echoed in the member chunks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// A voice state update (op 4).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpdateVoiceState {
    /// The guild.
    pub guild_id: crate::model::GuildId,
    /// The channel to join; `None` to leave.
    pub channel_id: Option<crate::model::ChannelId>,
    /// Whether the bot is muted.
    pub self_mute: bool,
    /// Whether the bot is deafened.
    pub self_deaf: bool,
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
            stage: watch::Sender::new(Stage::Connecting),
            latency: Mutex::new(None),
            last_error: Mutex::new(None),
        });
        let id = config.shard;
        let span = tracing::info_span!("shard", shard = %id);
        let runner = Runner {
            config,
            bus,
            commands: rx,
            control: control_rx,
            state: state.clone(),
            session: None,
            posts: VecDeque::new(),
        };
        let task = tokio::spawn(runner.run().instrument(span));
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
    /// otherwise.
    ///
    /// # Errors
    ///
    /// The fatal [`GatewayError`] that stopped the shard.
    pub async fn join(self) -> Result<(), Arc<GatewayError>> {
        match self.task.await {
            Ok(result) => result,
            // The task panicked or was aborted: report it as stopped.
            Err(_) => Ok(()),
        }
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

    /// The round trip of the last acknowledged heartbeat.
    pub fn latency(&self) -> Option<Duration> {
        *lock(&self.state.latency)
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
    pub async fn update_presence(&self, presence: &UpdatePresence) -> Result<(), CommandError> {
        self.send(OpCode::PresenceUpdate, presence).await
    }

    /// Requests members of a guild (op 8); they arrive as member chunks.
    ///
    /// # Errors
    ///
    /// [`CommandError`] if the command is too large or the shard stopped.
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
    pub async fn update_voice_state(&self, update: &UpdateVoiceState) -> Result<(), CommandError> {
        self.send(OpCode::VoiceStateUpdate, update).await
    }

    /// Sends any payload `{op, d}`. Commands are paced so the shard never
    /// exceeds the gateway's 120 per minute, heartbeats included.
    ///
    /// # Errors
    ///
    /// [`CommandError`] if the command is larger than 4096 bytes, cannot be
    /// serialized, or the shard stopped.
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
    /// it has stopped. 1000 or 1001 end the session; a 4000-range code keeps
    /// it resumable for another process.
    pub async fn close(&self, code: CloseCode) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Close(code, tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Drops the connection and resumes the session on a new one.
    pub async fn reconnect(&self) {
        let _ = self.control.send(Control::Reconnect).await;
    }
}

/// What a session needs to resume.
#[derive(Debug, Clone)]
struct Resumable {
    /// From Ready.
    session_id: SessionId,
    /// From Ready.
    resume_url: String,
    /// The last sequence number delivered.
    seq: Seq,
}

/// How one connection ended.
#[derive(Debug)]
enum End {
    /// Reconnect and resume (or identify, without a session).
    Reconnect,
    /// Reconnect with a new session.
    NewSession,
    /// Stop the shard with this error.
    Fatal(Arc<GatewayError>),
    /// Stop the shard: closed on request, or the bus stopped.
    Shutdown(Option<oneshot::Sender<()>>),
}

/// The shard's loop and its state across connections.
struct Runner {
    /// How to connect.
    config: GatewayConfig,
    /// Where events go.
    bus: TypeMux,
    /// User commands from handles.
    commands: mpsc::Receiver<String>,
    /// Lifecycle requests from handles.
    control: mpsc::Receiver<Control>,
    /// Shared with handles.
    state: Arc<ShardState>,
    /// The session to resume, if any.
    session: Option<Resumable>,
    /// Posts read from the socket and not yet delivered, oldest first.
    posts: VecDeque<PostFuture>,
}

/// The websocket.
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// State of one connection's loop.
struct Connection {
    /// The socket.
    socket: Socket,
    /// The `zlib-stream` context, when compression is on.
    inflater: Option<Inflater>,
    /// Paces outgoing payloads.
    limiter: CommandLimiter,
    /// Time between heartbeats.
    interval: Duration,
    /// When the next heartbeat is due.
    next_beat: Instant,
    /// When the last heartbeat was sent.
    last_beat: Option<Instant>,
    /// Whether the last heartbeat was acknowledged.
    acked: bool,
    /// Whether reading paused on backpressure since the last heartbeat.
    stalled: bool,
    /// Whether Ready or Resumed arrived.
    established: bool,
}

impl Runner {
    async fn run(mut self) -> Result<(), Arc<GatewayError>> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500).min(self.config.backoff_max))
            .with_max_delay(self.config.backoff_max)
            .with_jitter()
            .without_max_times();
        let mut delays = backoff.build();
        let mut failures = 0u32;
        loop {
            if failures > 0 {
                let wait = delays.next().unwrap_or(self.config.backoff_max);
                tracing::info!(?wait, failures, "reconnecting after a wait");
                tokio::select! {
                    () = sleep(wait) => {}
                    control = self.control.recv() => match control {
                        Some(Control::Close(_, done)) => return self.stop(Some(done), Ok(())).await,
                        None => return self.stop(None, Ok(())).await,
                        Some(Control::Reconnect) => {}
                    },
                }
            }
            let (end, established) = self.connection().await;
            // Deliver what was read before reconnecting: a resume starts
            // after the last sequence number, so these must not be lost.
            let bus_stopped = self.drain_posts().await;
            if established {
                failures = 0;
                delays = backoff.build();
            } else {
                failures = failures.saturating_add(1);
            }
            match end {
                _ if bus_stopped => return self.stop(None, Ok(())).await,
                End::Reconnect => {}
                End::NewSession => self.session = None,
                End::Fatal(error) => return self.stop(None, Err(error)).await,
                End::Shutdown(done) => return self.stop(done, Ok(())).await,
            }
        }
    }

    /// Marks the shard stopped and returns its result.
    async fn stop(
        mut self,
        done: Option<oneshot::Sender<()>>,
        result: Result<(), Arc<GatewayError>>,
    ) -> Result<(), Arc<GatewayError>> {
        self.set_stage(Stage::Stopped);
        self.drain_posts().await;
        if let Some(done) = done {
            let _ = done.send(());
        }
        result
    }

    /// Awaits every undelivered post; `true` if the bus has stopped.
    async fn drain_posts(&mut self) -> bool {
        let mut bus_stopped = false;
        while let Some(post) = self.posts.pop_front() {
            bus_stopped |= post.await.is_err();
        }
        bus_stopped
    }

    /// Records and posts a new stage.
    fn set_stage(&mut self, stage: Stage) {
        self.state.stage.send_replace(stage);
        let event = ShardStage {
            shard: self.config.shard,
            stage,
        };
        let bus = self.bus.clone();
        self.posts
            .push_back(Box::pin(async move { bus.post(event).await }));
    }

    /// Reports an error on the bus and in the shard state.
    fn report(&mut self, kind: GatewayErrorKind, fatal: bool) -> Arc<GatewayError> {
        let error = Arc::new(GatewayError {
            shard: self.config.shard,
            fatal,
            kind,
        });
        if fatal {
            tracing::error!(%error, "shard stopping");
        } else {
            tracing::warn!(%error);
        }
        *lock(&self.state.last_error) = Some(error.clone());
        let bus = self.bus.clone();
        let posted = error.clone();
        self.posts
            .push_back(Box::pin(async move { bus.post_arc(posted).await }));
        error
    }

    /// Runs one connection; returns how it ended and whether it was
    /// established (Ready or Resumed).
    async fn connection(&mut self) -> (End, bool) {
        let resuming = self.session.is_some();
        self.set_stage(if resuming {
            Stage::Resuming
        } else {
            Stage::Connecting
        });
        let base = match &self.session {
            Some(session) => session.resume_url.trim_end_matches('/').to_owned(),
            None => self.config.gateway_url.clone(),
        };
        let url = format!(
            "{base}/?v=10&encoding=json{}",
            if self.config.compress {
                "&compress=zlib-stream"
            } else {
                ""
            }
        );
        tracing::debug!(%url, "connecting");
        let socket = match connect(&url, self.config.max_payload).await {
            Ok(socket) => socket,
            Err(e) => {
                self.report(GatewayErrorKind::Connect(e), false);
                return (End::Reconnect, false);
            }
        };
        let mut conn = Connection {
            socket,
            inflater: self
                .config
                .compress
                .then(|| Inflater::new(self.config.max_payload)),
            limiter: CommandLimiter::new(Duration::from_secs(41)),
            interval: Duration::from_secs(41),
            next_beat: Instant::now(),
            last_beat: None,
            acked: true,
            stalled: false,
            established: false,
        };
        let end = self.run_connection(&mut conn).await;
        (end, conn.established)
    }

    async fn run_connection(&mut self, conn: &mut Connection) -> End {
        let interval = match timeout(self.config.hello_timeout, self.read_hello(conn)).await {
            Ok(Ok(interval)) => interval,
            Ok(Err(end)) => return end,
            Err(_) => {
                self.report(GatewayErrorKind::NoHello, false);
                return End::Reconnect;
            }
        };
        conn.interval = interval;
        conn.limiter.set_heartbeat_interval(interval);
        // The first beat after `interval * random[0, 1)`, so shards that
        // connect together do not beat together.
        conn.next_beat = Instant::now() + interval.mul_f64(fastrand::f64());

        let mut identify_wait = None;
        match self.session.clone() {
            Some(session) => {
                let resume = payload::Resume {
                    token: &self.config.token,
                    session_id: &session.session_id,
                    seq: session.seq,
                };
                let text = payload::encode(OpCode::Resume, resume);
                if let Some(end) = self.send_control(conn, OpCode::Resume, text).await {
                    return end;
                }
                tracing::debug!(seq = %session.seq, "resuming");
            }
            None => identify_wait = Some(self.config.queue.acquire(self.config.shard)),
        }

        // A rate-limited command waits here, keeping its place.
        let mut held: Option<String> = None;
        let mut send_at = Instant::now();
        loop {
            tokio::select! {
                biased;
                () = sleep_until(conn.next_beat) => {
                    if let Some(end) = self.heartbeat(conn).await {
                        return end;
                    }
                }
                delivered = front(&mut self.posts), if !self.posts.is_empty() => {
                    self.posts.pop_front();
                    if delivered.is_err() {
                        return End::Shutdown(None);
                    }
                }
                () = wait_for(&mut identify_wait), if identify_wait.is_some() => {
                    identify_wait = None;
                    if let Some(end) = self.identify(conn).await {
                        return end;
                    }
                }
                message = conn.socket.next(), if self.posts.is_empty() => {
                    if let Some(end) = self.on_message(conn, message).await {
                        return end;
                    }
                }
                () = sleep_until(send_at), if held.is_some() => {
                    let now = Instant::now();
                    let wait = conn.limiter.command_delay(now);
                    if !wait.is_zero() {
                        send_at = now + wait;
                        continue;
                    }
                    if let Some(text) = held.take() {
                        conn.limiter.record(now);
                        if let Err(e) = conn.socket.send(Message::text(text)).await {
                            self.report(GatewayErrorKind::Websocket(Box::new(e)), false);
                            return End::Reconnect;
                        }
                    }
                }
                Some(text) = self.commands.recv(), if held.is_none() && conn.established => {
                    held = Some(text);
                    send_at = Instant::now();
                }
                control = self.control.recv() => match control {
                    Some(Control::Close(code, done)) => {
                        close(&mut conn.socket, code).await;
                        if code == CloseCode::NORMAL || code == CloseCode::GOING_AWAY {
                            self.session = None;
                        }
                        return End::Shutdown(Some(done));
                    }
                    Some(Control::Reconnect) => {
                        close(&mut conn.socket, CloseCode::UNKNOWN_ERROR).await;
                        return End::Reconnect;
                    }
                    None => {
                        close(&mut conn.socket, CloseCode::NORMAL).await;
                        return End::Shutdown(None);
                    }
                },
            }
        }
    }

    /// Reads until Hello; returns the heartbeat interval.
    async fn read_hello(&mut self, conn: &mut Connection) -> Result<Duration, End> {
        loop {
            let message = conn.socket.next().await;
            let Some(text) = self.message_text(conn, message)? else {
                continue;
            };
            let frame = match Frame::parse(&text) {
                Ok(frame) => frame,
                Err(e) => {
                    self.report(GatewayErrorKind::Decode(Box::new(e)), false);
                    continue;
                }
            };
            if frame.op != OpCode::Hello {
                continue;
            }
            return match serde_json::from_str::<Hello>(frame.data()) {
                Ok(hello) => Ok(Duration::from_millis(hello.heartbeat_interval.max(1))),
                Err(e) => {
                    self.report(GatewayErrorKind::Decode(Box::new(e)), false);
                    Err(End::Reconnect)
                }
            };
        }
    }

    /// Turns a websocket message into payload text; `Ok(None)` for control
    /// frames and partial compressed payloads, `Err` when the connection
    /// ended.
    fn message_text(
        &mut self,
        conn: &mut Connection,
        message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Result<Option<Vec<u8>>, End> {
        match message {
            Some(Ok(Message::Text(text))) => Ok(Some(text.as_bytes().to_vec())),
            Some(Ok(Message::Binary(data))) => match conn.inflater.as_mut() {
                Some(inflater) => match inflater.push(&data) {
                    Ok(Some(payload)) => Ok(Some(payload.to_vec())),
                    Ok(None) => Ok(None),
                    Err(e) => {
                        // The inflate context is broken: a new connection
                        // gets a new one.
                        self.report(GatewayErrorKind::Compression(e), false);
                        Err(End::Reconnect)
                    }
                },
                None => Ok(Some(data.to_vec())),
            },
            Some(Ok(Message::Close(frame))) => Err(self.on_close(frame)),
            Some(Ok(_)) => Ok(None),
            Some(Err(e)) => {
                let kind = match e {
                    tokio_tungstenite::tungstenite::Error::Capacity(_) => {
                        GatewayErrorKind::PayloadTooLarge {
                            len: 0,
                            limit: self.config.max_payload,
                        }
                    }
                    e => GatewayErrorKind::Websocket(Box::new(e)),
                };
                self.report(kind, false);
                Err(End::Reconnect)
            }
            None => {
                self.report(
                    GatewayErrorKind::Websocket("the connection ended".into()),
                    false,
                );
                Err(End::Reconnect)
            }
        }
    }

    /// The server closed the connection.
    fn on_close(&mut self, frame: Option<CloseFrame>) -> End {
        let (code, reason) = match frame {
            Some(frame) => (CloseCode(u16::from(frame.code)), frame.reason.to_string()),
            None => (CloseCode(1005), String::new()),
        };
        let action = code.action();
        let fatal = action == CloseAction::Fatal;
        self.set_stage(Stage::Disconnected {
            code: Some(code),
            will_resume: action == CloseAction::Resume && self.session.is_some(),
        });
        let error = self.report(GatewayErrorKind::Closed { code, reason }, fatal);
        match action {
            CloseAction::Resume => End::Reconnect,
            CloseAction::NewSession => End::NewSession,
            CloseAction::Fatal => End::Fatal(error),
        }
    }

    async fn on_message(
        &mut self,
        conn: &mut Connection,
        message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Option<End> {
        let text = match self.message_text(conn, message) {
            Ok(Some(text)) => text,
            Ok(None) => return None,
            Err(end) => return Some(end),
        };
        let frame = match Frame::parse(&text) {
            Ok(frame) => frame,
            Err(e) => {
                // A malformed payload is reported and skipped.
                self.report(GatewayErrorKind::Decode(Box::new(e)), false);
                return None;
            }
        };
        match frame.op {
            OpCode::Dispatch => self.on_dispatch(conn, &frame),
            OpCode::Heartbeat => {
                // The server asks for a beat now.
                return self.send_heartbeat(conn).await;
            }
            OpCode::HeartbeatAck => {
                conn.acked = true;
                if let Some(sent) = conn.last_beat {
                    *lock(&self.state.latency) = Some(sent.elapsed());
                }
            }
            OpCode::Reconnect => {
                tracing::info!("the gateway asked for a reconnect");
                close(&mut conn.socket, CloseCode::UNKNOWN_ERROR).await;
                self.set_stage(Stage::Disconnected {
                    code: None,
                    will_resume: self.session.is_some(),
                });
                return Some(End::Reconnect);
            }
            OpCode::InvalidSession => {
                let resumable = serde_json::from_str::<bool>(frame.data()).unwrap_or(false);
                self.report(GatewayErrorKind::InvalidSession { resumable }, false);
                close(&mut conn.socket, CloseCode::UNKNOWN_ERROR).await;
                if resumable && self.session.is_some() {
                    return Some(End::Reconnect);
                }
                // Wait 1–5 s before identifying again, as the gateway asks.
                sleep(Duration::from_millis(1000 + fastrand::u64(0..4000))).await;
                return Some(End::NewSession);
            }
            OpCode::Hello => {}
            other => {
                self.report(GatewayErrorKind::UnknownOpcode(other.code()), false);
            }
        }
        None
    }

    fn on_dispatch(&mut self, conn: &mut Connection, frame: &Frame<'_>) {
        let seq = frame.s.map(Seq);
        let event_type = frame.t.as_deref().unwrap_or_default();
        if let (Some(seq), Some(session)) = (seq, self.session.as_mut()) {
            if seq <= session.seq && event_type != "READY" {
                // Already delivered (a replay overlapping what we had).
                tracing::debug!(%seq, "skipping a dispatch already delivered");
                return;
            }
            session.seq = seq;
        }
        match event_type {
            "READY" => match serde_json::from_str::<ReadyInfo>(frame.data()) {
                Ok(ready) => {
                    self.session = Some(Resumable {
                        session_id: ready.session_id,
                        resume_url: ready.resume_gateway_url,
                        seq: seq.unwrap_or_default(),
                    });
                    conn.established = true;
                    self.set_stage(Stage::Connected);
                    tracing::info!("ready");
                }
                Err(e) => {
                    self.report(
                        GatewayErrorKind::DispatchDecode {
                            event_type: event_type.to_owned(),
                            source: Box::new(e),
                        },
                        false,
                    );
                }
            },
            "RESUMED" => {
                conn.established = true;
                self.set_stage(Stage::Connected);
                tracing::info!("resumed");
            }
            _ => {}
        }
        let meta = DispatchMeta {
            shard: self.config.shard,
            seq: seq.unwrap_or_default(),
        };
        match self
            .config
            .registry
            .decode(event_type, frame.data(), meta, &self.bus)
        {
            Decoded::Post(mut post) => {
                // Deliver at once if nobody is behind; otherwise the loop
                // stops reading until this post completes.
                if (&mut post).now_or_never().is_none() {
                    conn.stalled = true;
                    self.posts.push_back(post);
                }
            }
            Decoded::Unwanted => {}
            Decoded::Failed(e) => {
                self.report(
                    GatewayErrorKind::DispatchDecode {
                        event_type: event_type.to_owned(),
                        source: Box::new(e),
                    },
                    false,
                );
            }
        }
    }

    /// The heartbeat timer fired.
    async fn heartbeat(&mut self, conn: &mut Connection) -> Option<End> {
        // An ack left unread while we held back on the bus is not missing.
        let stalled = conn.stalled || !self.posts.is_empty();
        if !conn.acked && !stalled {
            self.report(GatewayErrorKind::Zombie, false);
            close(&mut conn.socket, CloseCode::UNKNOWN_ERROR).await;
            self.set_stage(Stage::Disconnected {
                code: None,
                will_resume: self.session.is_some(),
            });
            return Some(End::Reconnect);
        }
        conn.stalled = !self.posts.is_empty();
        conn.next_beat = Instant::now() + conn.interval;
        self.send_heartbeat(conn).await
    }

    async fn send_heartbeat(&mut self, conn: &mut Connection) -> Option<End> {
        let seq = self.session.as_ref().map(|s| s.seq);
        let text = payload::encode(OpCode::Heartbeat, seq);
        let end = self.send_control(conn, OpCode::Heartbeat, text).await;
        conn.acked = false;
        conn.last_beat = Some(Instant::now());
        end
    }

    async fn identify(&mut self, conn: &mut Connection) -> Option<End> {
        self.set_stage(Stage::Identifying);
        let identify = payload::Identify {
            token: &self.config.token,
            properties: &self.config.properties,
            compress: false,
            large_threshold: self.config.large_threshold,
            shard: payload::shard_array(self.config.shard, self.config.total),
            presence: self.config.presence.as_ref(),
            intents: self.config.intents,
        };
        let text = payload::encode(OpCode::Identify, identify);
        self.send_control(conn, OpCode::Identify, text).await
    }

    /// Sends a heartbeat, identify or resume (they use the reserve).
    async fn send_control(
        &mut self,
        conn: &mut Connection,
        op: OpCode,
        text: Result<String, serde_json::Error>,
    ) -> Option<End> {
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                self.report(GatewayErrorKind::Decode(Box::new(e)), false);
                return Some(End::Reconnect);
            }
        };
        let now = Instant::now();
        if !conn.limiter.control_allowed(now) {
            tracing::warn!(%op, "outgoing limit reached; payload delayed");
            sleep(conn.limiter.command_delay(now).min(Duration::from_secs(1))).await;
        }
        conn.limiter.record(Instant::now());
        match conn.socket.send(Message::text(text)).await {
            Ok(()) => None,
            Err(e) => {
                self.report(GatewayErrorKind::Websocket(Box::new(e)), false);
                Some(End::Reconnect)
            }
        }
    }
}

/// The part of Ready the shard needs for itself.
#[derive(Deserialize)]
struct ReadyInfo {
    /// For resuming.
    session_id: SessionId,
    /// For resuming.
    resume_gateway_url: String,
}

/// Awaits the oldest pending post.
async fn front(posts: &mut VecDeque<PostFuture>) -> Result<usize, crate::bus::MuxClosed> {
    match posts.front_mut() {
        Some(post) => post.await,
        None => std::future::pending().await,
    }
}

/// Awaits an optional future (pending forever when `None`).
async fn wait_for(wait: &mut Option<crate::bus::BoxFuture<'static, ()>>) {
    match wait.as_mut() {
        Some(wait) => wait.await,
        None => std::future::pending().await,
    }
}

/// Opens the websocket (TLS with rustls and the webpki roots for `wss://`).
async fn connect(url: &str, max_payload: usize) -> Result<Socket, crate::bus::BoxError> {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload));
    let connector = Connector::Rustls(tls_config()?);
    let (socket, _response) =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, Some(connector))
            .await?;
    Ok(socket)
}

/// The TLS client configuration, built once.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, crate::bus::BoxError> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(config.clone());
    }
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// Sends a close frame, without waiting long for the handshake.
async fn close(socket: &mut Socket, code: CloseCode) {
    let frame = CloseFrame {
        code: WsCloseCode::from(code.0),
        reason: "".into(),
    };
    let _ = timeout(Duration::from_secs(1), socket.close(Some(frame))).await;
}
