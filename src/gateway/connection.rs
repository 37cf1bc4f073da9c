//! One connection's loop: Hello, identify or resume, heartbeats, dispatches,
//! user commands, until the connection ends.
//!
//! The loop is one biased `select!`. Its branches, in priority order:
//! close/reconnect requests; one timer for the connection's deadlines (the
//! Hello deadline, the heartbeat, the outgoing queue of
//! heartbeats/identify/resume, held back while the 120-per-60-s window is
//! full and never sent over it, and the next paced user command); the
//! pending bus post; new user commands; and last socket reads. A
//! socket that always has a frame ready therefore cannot starve a close,
//! a heartbeat or a command; and a post that waits on a slow subscriber
//! pauses only the reads.

use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::{self, Message};

use super::close::CloseCode;
use super::compression::{Decompressor, Inflated};
use super::config::GatewayConfig;
use super::decide::Cause;
use super::error::GatewayErrorKind;
use super::event::DispatchMeta;
use super::opcode::{EventType, OpCode};
use super::payload::{self, Frame, Hello};
use super::queue::IdentifyPermit;
use super::ratelimit::CommandLimiter;
use super::registry::{Decoded, PostFuture, RawDispatch};
use super::runner::{Outcome, ResumeInfo, Runner};
use super::shard::{Control, Counters};
use super::socket::{self, Socket};
use super::stage::Stage;
use crate::model::Seq;
use crate::sync::lock;

/// State of one connection's loop.
struct Connection {
    /// The socket.
    socket: Socket,
    /// The decompression context, when compression is on (taken out while
    /// a payload it inflated is handled).
    inflater: Option<Decompressor>,
    /// Paces outgoing payloads.
    limiter: CommandLimiter,
    /// Time between heartbeats, once Hello said.
    interval: Option<Duration>,
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
    /// The identify queue's turn for a new session, granted before the
    /// socket opened.
    permit: Option<IdentifyPermit>,
    /// An identify or resume to send, with the identify's permit.
    handshake: Option<(String, Option<IdentifyPermit>)>,
    /// Whether a heartbeat is to be sent (requests coalesce).
    beat: bool,
    /// When the outgoing queue may next send.
    outbox_at: Instant,
    /// When the held user command may next be tried.
    command_at: Instant,
}

impl Connection {
    fn new(socket: Socket, inflater: Option<Decompressor>, permit: Option<IdentifyPermit>) -> Self {
        let now = Instant::now();
        // Until Hello: a provisional reserve, and no heartbeat timer.
        let provisional = Duration::from_secs(41);
        Self {
            socket,
            inflater,
            limiter: CommandLimiter::new(provisional),
            interval: None,
            next_beat: now + provisional,
            last_beat: None,
            acked: true,
            stalled: false,
            established: false,
            permit,
            handshake: None,
            beat: false,
            outbox_at: now,
            command_at: now,
        }
    }

    /// Whether the outgoing queue holds something.
    fn outbox_pending(&self) -> bool {
        self.beat || self.handshake.is_some()
    }

    /// Queues a heartbeat (one at most).
    fn want_beat(&mut self) {
        // Now, even behind an identify waiting for its slot; the limiter
        // is asked again when the outbox is flushed.
        self.outbox_at = self.outbox_at.min(Instant::now());
        self.beat = true;
    }

    /// Queues the identify or resume.
    fn want_handshake(&mut self, text: String, permit: Option<IdentifyPermit>) {
        if !self.outbox_pending() {
            self.outbox_at = Instant::now();
        }
        self.handshake = Some((text, permit));
    }
}

/// The part of Ready the shard needs for itself.
#[derive(Deserialize)]
struct ReadyInfo {
    /// For resuming.
    session_id: crate::model::SessionId,
    /// For resuming.
    resume_gateway_url: String,
}

impl Runner {
    /// Runs one connection; returns how it ended and whether it was
    /// established (Ready or Resumed).
    pub(crate) async fn connection(&mut self) -> (Outcome, bool) {
        // A resume sends the token to the session's URL: only a websocket
        // one (a kept session may come from a shared store).
        if let Some(Err(e)) = self.session.as_ref().map(ResumeInfo::check_url) {
            self.report(GatewayErrorKind::ResumeUrl(e), false);
            self.set_session(None);
        }
        let resuming = self.session.is_some();
        // A new session takes its identify turn before it connects: a shard
        // waiting in the queue keeps no socket open, and shards that start
        // together connect a bucket round at a time instead of all at once.
        let permit = if resuming {
            None
        } else {
            self.set_stage(Stage::Queued);
            #[cfg(feature = "metrics")]
            let queued_at = Instant::now();
            let mut acquire = self.config.queue.acquire(self.config.shard);
            loop {
                tokio::select! {
                    biased;
                    control = self.control.recv() => {
                        return (self.control_unconnected(control), false);
                    }
                    // Deliver the stages (Queued first) while waiting: a
                    // long queue must not hide where the shard is.
                    delivered = front(&mut self.posts), if !self.posts.is_empty() => {
                        self.posts.pop_front();
                        if delivered.is_err() {
                            return (Outcome::BusStopped, false);
                        }
                    }
                    permit = &mut acquire => {
                        #[cfg(feature = "metrics")]
                        self.metrics.identify_wait.record(queued_at.elapsed());
                        break Some(permit);
                    }
                }
            }
        };
        self.set_stage(if resuming {
            Stage::Resuming
        } else {
            Stage::Connecting
        });
        let base = match &self.session {
            Some(session) => session.resume_url.trim_end_matches('/').to_owned(),
            None => self.config.gateway_url.clone(),
        };
        let url = GatewayConfig::url_with_query(&base, self.config.compression);
        tracing::debug!(%url, "connecting");
        let connected = tokio::select! {
            biased;
            control = self.control.recv() => {
                return (self.control_unconnected(control), false);
            }
            // Boxed: the handshake's state is large and only lives while
            // connecting, so it should not stay in the shard task's future.
            connected = Box::pin(socket::connect(
                &url,
                self.config.max_payload,
                self.config.compression.read_buffer_size(),
            )) => connected,
        };
        let socket = match connected {
            Ok(socket) => socket,
            Err(e) => {
                return (
                    Outcome::ended(Cause::Lost, Some(GatewayErrorKind::Connect(e))),
                    false,
                );
            }
        };
        let inflater = Decompressor::new(self.config.compression, self.config.max_payload);
        let mut conn = Connection::new(socket, inflater, permit);
        let outcome = self.run_connection(&mut conn).await;
        (outcome, conn.established)
    }

    /// A control request while no socket is open.
    fn control_unconnected(&mut self, control: Option<Control>) -> Outcome {
        match control {
            Some(Control::Close(code, done)) => {
                if code == CloseCode::NORMAL || code == CloseCode::GOING_AWAY {
                    self.set_session(None);
                }
                Outcome::Shutdown {
                    done: Some(done),
                    code,
                }
            }
            Some(Control::Reconnect) => Outcome::ended(Cause::Requested, None),
            None => Outcome::Shutdown {
                done: None,
                code: CloseCode::NORMAL,
            },
        }
    }

    async fn run_connection(&mut self, conn: &mut Connection) -> Outcome {
        let hello_deadline = Instant::now() + self.config.hello_timeout;
        // One timer, armed for the earliest deadline and reset only when
        // that changes: a timer made afresh on every turn of the loop cost
        // a timer-wheel insert and removal (and a clock read) per frame.
        let timer = sleep_until(hello_deadline);
        tokio::pin!(timer);
        loop {
            let due = self.next_deadline(conn, hello_deadline);
            if timer.deadline() != due {
                timer.as_mut().reset(due);
            }
            tokio::select! {
                biased;
                control = self.control.recv() => {
                    return self.on_control(conn, control).await;
                }
                () = &mut timer => {
                    if let Some(outcome) = self.deadlines_passed(conn, hello_deadline).await {
                        return outcome;
                    }
                }
                delivered = front(&mut self.posts), if !self.posts.is_empty() => {
                    self.posts.pop_front();
                    if delivered.is_err() {
                        socket::close(&mut conn.socket, CloseCode::NORMAL).await;
                        return Outcome::BusStopped;
                    }
                }
                Some(text) = self.commands.recv(), if self.held.is_none() && conn.established => {
                    self.held = Some(text);
                    conn.command_at = Instant::now();
                }
                message = conn.socket.next(), if self.posts.is_empty() => {
                    if let Some(outcome) = self.on_message(conn, message).await {
                        return outcome;
                    }
                }
            }
        }
    }

    /// The earliest of the connection's deadlines: the Hello deadline until
    /// Hello, then the next heartbeat, the outgoing queue's next slot while
    /// it holds something, and the held user command's slot.
    fn next_deadline(&self, conn: &Connection, hello_deadline: Instant) -> Instant {
        let beat = match conn.interval {
            None => hello_deadline,
            Some(_) => conn.next_beat,
        };
        let outbox = conn.outbox_pending().then_some(conn.outbox_at);
        let command = (self.held.is_some() && conn.established).then_some(conn.command_at);
        [outbox, command]
            .into_iter()
            .flatten()
            .fold(beat, Instant::min)
    }

    /// The timer fired: handles every deadline that has passed, in priority
    /// order (Hello, heartbeat, outgoing queue, user command).
    async fn deadlines_passed(
        &mut self,
        conn: &mut Connection,
        hello_deadline: Instant,
    ) -> Option<Outcome> {
        let now = Instant::now();
        if conn.interval.is_none() && hello_deadline <= now {
            return Some(Outcome::ended(
                Cause::NoHello,
                Some(GatewayErrorKind::NoHello),
            ));
        }
        if conn.interval.is_some()
            && conn.next_beat <= now
            && let Some(outcome) = self.heartbeat_due(conn).await
        {
            return Some(outcome);
        }
        // A beat just queued is due now, so it goes out on this turn.
        if conn.outbox_pending()
            && conn.outbox_at <= Instant::now()
            && let Some(outcome) = self.flush_outbox(conn).await
        {
            return Some(outcome);
        }
        if self.held.is_some() && conn.established && conn.command_at <= Instant::now() {
            return self.send_command(conn).await;
        }
        None
    }

    /// A close or reconnect request on an open connection.
    async fn on_control(&mut self, conn: &mut Connection, control: Option<Control>) -> Outcome {
        let code = match &control {
            Some(Control::Close(code, _)) => *code,
            Some(Control::Reconnect) => CloseCode::UNKNOWN_ERROR,
            None => CloseCode::NORMAL,
        };
        socket::close(&mut conn.socket, code).await;
        match self.control_unconnected(control) {
            Outcome::Ended { cause, error, .. } => Outcome::Ended {
                cause,
                code: Some(code),
                error,
            },
            other => other,
        }
    }

    /// Sends the held user command if its slot has come.
    async fn send_command(&mut self, conn: &mut Connection) -> Option<Outcome> {
        let now = Instant::now();
        let wait = conn.limiter.command_delay(now);
        if !wait.is_zero() {
            conn.command_at = now + wait;
            return None;
        }
        let text = self.held.take()?;
        conn.limiter.record(now);
        match conn.socket.send(Message::text(text)).await {
            Ok(()) => None,
            Err(e) => Some(lost(e)),
        }
    }

    /// Sends the next heartbeat, identify or resume if the window has room.
    async fn flush_outbox(&mut self, conn: &mut Connection) -> Option<Outcome> {
        let now = Instant::now();
        let wait = conn.limiter.control_delay(now);
        if !wait.is_zero() {
            tracing::warn!(?wait, "outgoing limit reached; payload delayed");
            conn.outbox_at = now + wait;
            return None;
        }
        conn.outbox_at = now;
        // A permit granted ahead of its slot: the identify waits for it
        // (a heartbeat does not).
        let early = conn
            .handshake
            .as_ref()
            .and_then(|(_, permit)| permit.as_ref()?.send_at())
            .filter(|at| *at > now);
        if let Some(at) = early {
            if !conn.beat {
                conn.outbox_at = at;
                return None;
            }
        } else if let Some((text, permit)) = conn.handshake.take() {
            conn.limiter.record(now);
            if let Err(e) = conn.socket.send(Message::text(text)).await {
                // An unsent identify does not spend its bucket's slot.
                drop(permit);
                return Some(lost(e));
            }
            if let Some(permit) = permit {
                permit.sent();
            }
            return None;
        }
        if conn.beat {
            conn.beat = false;
            let seq = self.session.as_ref().map(|s| s.seq);
            let text = match payload::encode(OpCode::Heartbeat, seq) {
                Ok(text) => text,
                Err(e) => return Some(encode_failed(e)),
            };
            conn.limiter.record(now);
            if let Err(e) = conn.socket.send(Message::text(text)).await {
                return Some(lost(e));
            }
            conn.acked = false;
            conn.last_beat = Some(Instant::now());
        }
        if let Some(at) = early {
            conn.outbox_at = at;
        }
        None
    }

    /// The heartbeat timer fired.
    async fn heartbeat_due(&mut self, conn: &mut Connection) -> Option<Outcome> {
        // An ack left unread while we held back on the bus is not missing.
        let stalled = conn.stalled || !self.posts.is_empty();
        if !conn.acked && !stalled {
            socket::close(&mut conn.socket, CloseCode::UNKNOWN_ERROR).await;
            return Some(Outcome::Ended {
                cause: Cause::Zombie,
                code: Some(CloseCode::UNKNOWN_ERROR),
                error: Some(GatewayErrorKind::Zombie),
            });
        }
        conn.stalled = !self.posts.is_empty();
        // Once per interval the output buffer goes back to the allocator:
        // an idle shard keeps only its context, a busy one regrows it once.
        if let Some(inflater) = conn.inflater.as_mut() {
            inflater.trim();
        }
        conn.next_beat = Instant::now() + conn.interval.unwrap_or(Duration::from_secs(41));
        conn.want_beat();
        None
    }

    /// The identify queue granted a permit: queue the identify.
    fn queue_identify(&mut self, conn: &mut Connection, permit: IdentifyPermit) -> Option<Outcome> {
        let identify = payload::Identify {
            token: &self.config.token,
            properties: &self.config.properties,
            compress: false,
            large_threshold: self.config.large_threshold,
            shard: payload::shard_array(self.config.shard, self.config.total),
            presence: self.config.presence.as_ref(),
            intents: self.config.intents,
        };
        match payload::encode(OpCode::Identify, identify) {
            Ok(text) => {
                conn.want_handshake(text, Some(permit));
                None
            }
            Err(e) => Some(encode_failed(e)),
        }
    }

    /// Hello arrived: start heartbeating, then resume or wait to identify.
    fn on_hello(&mut self, conn: &mut Connection, interval: Duration) -> Option<Outcome> {
        conn.interval = Some(interval);
        conn.limiter.set_heartbeat_interval(interval);
        // The first beat after `interval * random[0, 1)`, so shards that
        // connect together do not beat together.
        conn.next_beat = Instant::now() + interval.mul_f64(fastrand::f64());
        match self.session.clone() {
            Some(session) => {
                let resume = payload::Resume {
                    token: &self.config.token,
                    session_id: &session.session_id,
                    seq: session.seq,
                };
                match payload::encode(OpCode::Resume, resume) {
                    Ok(text) => conn.want_handshake(text, None),
                    Err(e) => return Some(encode_failed(e)),
                }
                tracing::debug!(seq = %session.seq, "resuming");
            }
            None => {
                self.set_stage(Stage::Identifying);
                // The turn was taken before connecting. Every connection
                // for a new session opens with one; one without a turn
                // would end here rather than identify unpaced.
                let Some(permit) = conn.permit.take() else {
                    return Some(Outcome::ended(Cause::Lost, None));
                };
                return self.queue_identify(conn, permit);
            }
        }
        None
    }

    async fn on_message(
        &mut self,
        conn: &mut Connection,
        message: Option<Result<Message, tungstenite::Error>>,
    ) -> Option<Outcome> {
        if let Some(Ok(Message::Text(_) | Message::Binary(_))) = &message {
            let len = match &message {
                Some(Ok(Message::Text(text))) => text.len(),
                Some(Ok(Message::Binary(data))) => data.len(),
                _ => 0,
            };
            Counters::add(&self.state.counters.bytes_in, len as u64);
            #[cfg(feature = "metrics")]
            self.metrics.bytes_in.increment(len as u64);
        }
        match message {
            Some(Ok(Message::Text(text))) => self.on_payload(conn, text.as_str()).await,
            Some(Ok(Message::Binary(data))) => {
                let Some(mut inflater) = conn.inflater.take() else {
                    return self.on_bytes(conn, &data).await;
                };
                let outcome = match inflater.push(&data) {
                    Ok(Inflated::Payload(payload)) => self.on_bytes(conn, payload).await,
                    Ok(Inflated::Partial) => None,
                    Ok(Inflated::TooLarge { len }) => {
                        // Skipped in the stream; the connection goes on.
                        let kind = self.too_large(Some(len));
                        self.report(kind, false);
                        None
                    }
                    // The inflate context is broken: a new connection gets
                    // a new one.
                    Err(e) => Some(Outcome::ended(
                        Cause::Corrupt,
                        Some(GatewayErrorKind::Compression(e)),
                    )),
                };
                conn.inflater = Some(inflater);
                outcome
            }
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = match frame {
                    Some(frame) => (CloseCode(u16::from(frame.code)), frame.reason.to_string()),
                    None => (CloseCode(1005), String::new()),
                };
                Some(Outcome::Ended {
                    cause: Cause::Closed(code),
                    code: Some(code),
                    error: Some(GatewayErrorKind::Closed { code, reason }),
                })
            }
            Some(Ok(_)) => None,
            Some(Err(tungstenite::Error::Capacity(e))) => {
                let len = match e {
                    CapacityError::MessageTooLong { size, .. } => Some(size),
                    _ => None,
                };
                Some(Outcome::ended(Cause::TooLarge, Some(self.too_large(len))))
            }
            Some(Err(e)) => Some(lost(e)),
            None => Some(Outcome::ended(
                Cause::Lost,
                Some(GatewayErrorKind::Websocket("the connection ended".into())),
            )),
        }
    }

    /// The error for a payload over the limit.
    fn too_large(&self, len: Option<usize>) -> GatewayErrorKind {
        GatewayErrorKind::PayloadTooLarge {
            len,
            limit: self.config.max_payload,
            after_seq: self.session.as_ref().map(|s| s.seq),
        }
    }

    /// A payload from a binary message (inflated, or sent uncompressed).
    async fn on_bytes(&mut self, conn: &mut Connection, payload: &[u8]) -> Option<Outcome> {
        match std::str::from_utf8(payload) {
            Ok(text) => self.on_payload(conn, text).await,
            Err(e) => {
                // Not UTF-8, so not JSON: reported and skipped.
                self.report(GatewayErrorKind::Decode(Box::new(e)), false);
                None
            }
        }
    }

    /// Handles one whole payload.
    async fn on_payload(&mut self, conn: &mut Connection, text: &str) -> Option<Outcome> {
        let frame = match Frame::parse(text) {
            Ok(frame) => frame,
            Err(e) => {
                // A malformed payload is reported and skipped.
                self.report(GatewayErrorKind::Decode(Box::new(e)), false);
                return None;
            }
        };
        match frame.op {
            OpCode::Dispatch => self.on_dispatch(conn, &frame, text),
            // The server asks for a beat now.
            OpCode::Heartbeat => conn.want_beat(),
            OpCode::HeartbeatAck => {
                conn.acked = true;
                if let Some(sent) = conn.last_beat {
                    let rtt = sent.elapsed();
                    *lock(&self.state.latency) = Some(rtt);
                    #[cfg(feature = "metrics")]
                    self.metrics.latency.record(rtt);
                }
            }
            OpCode::Reconnect => {
                tracing::info!("the gateway asked for a reconnect");
                socket::close(&mut conn.socket, CloseCode::UNKNOWN_ERROR).await;
                return Some(Outcome::Ended {
                    cause: Cause::Reconnect,
                    code: Some(CloseCode::UNKNOWN_ERROR),
                    error: None,
                });
            }
            OpCode::InvalidSession => {
                let resumable = serde_json::from_str::<bool>(frame.data()).unwrap_or(false);
                socket::close(&mut conn.socket, CloseCode::UNKNOWN_ERROR).await;
                return Some(Outcome::Ended {
                    cause: Cause::InvalidSession { resumable },
                    code: Some(CloseCode::UNKNOWN_ERROR),
                    error: Some(GatewayErrorKind::InvalidSession { resumable }),
                });
            }
            OpCode::Hello if conn.interval.is_none() => {
                return match serde_json::from_str::<Hello>(frame.data()) {
                    Ok(hello) => {
                        self.on_hello(conn, Duration::from_millis(hello.heartbeat_interval.max(1)))
                    }
                    Err(e) => Some(Outcome::ended(
                        Cause::NoHello,
                        Some(GatewayErrorKind::Decode(Box::new(e))),
                    )),
                };
            }
            OpCode::Hello => {}
            other => {
                self.report(GatewayErrorKind::UnknownOpcode(other.code()), false);
            }
        }
        None
    }

    /// Delivers `post` at once if nobody is behind; otherwise the loop
    /// stops reading until it (and every post before it) completes.
    fn push_post(&mut self, conn: &mut Connection, mut post: PostFuture) {
        if !self.posts.is_empty() || (&mut post).now_or_never().is_none() {
            conn.stalled = true;
            self.posts.push_back(post);
        }
    }

    fn on_dispatch(&mut self, conn: &mut Connection, frame: &Frame<'_>, text: &str) {
        let seq = frame.s.map(Seq);
        let event_type = frame.t.as_deref().unwrap_or_default();
        if let (Some(seq), Some(session)) = (seq, self.session.as_mut()) {
            if seq <= session.seq && event_type != "READY" {
                // Already delivered (a replay overlapping what we had).
                tracing::debug!(%seq, "skipping a dispatch already delivered");
                return;
            }
            session.seq = seq;
            self.state
                .seq
                .store(seq.0, std::sync::atomic::Ordering::Relaxed);
        }
        Counters::add(&self.state.counters.events, 1);
        #[cfg(feature = "metrics")]
        self.metrics.events.increment(1);
        match event_type {
            "READY" => match frame.decode::<ReadyInfo>(text) {
                Ok(ready) => {
                    Counters::add(&self.state.counters.identifies, 1);
                    #[cfg(feature = "metrics")]
                    if self
                        .state
                        .counters
                        .identifies
                        .load(std::sync::atomic::Ordering::Relaxed)
                        > 1
                    {
                        self.metrics.reidentifies.increment(1);
                    }
                    self.set_session(Some(ResumeInfo {
                        session_id: ready.session_id,
                        resume_url: ready.resume_gateway_url,
                        seq: seq.unwrap_or_default(),
                    }));
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
                Counters::add(&self.state.counters.resumes, 1);
                #[cfg(feature = "metrics")]
                self.metrics.resumes.increment(1);
                conn.established = true;
                self.set_stage(Stage::Connected);
                tracing::info!("resumed");
            }
            _ => {}
        }
        let meta = DispatchMeta {
            shard: self.config.shard,
            seq: seq.unwrap_or_default(),
            attempt: 0,
        };
        if (self.config.hook.as_deref())
            .is_some_and(|hook| !hook.admit(meta, event_type, frame.data()))
        {
            return;
        }
        if self.bus.has_subscribers::<RawDispatch>()
            && let Some(session) = &self.session
        {
            let data = if frame.exact {
                frame.data().to_owned()
            } else {
                match Frame::parse_exact(text) {
                    Ok(exact) => exact.data().to_owned(),
                    Err(e) => {
                        self.report(GatewayErrorKind::Decode(Box::new(e)), false);
                        return;
                    }
                }
            };
            let raw = RawDispatch {
                event_type: EventType::from(event_type.to_owned()),
                meta,
                session_id: session.session_id.clone(),
                data,
            };
            let bus = self.bus.clone();
            self.push_post(conn, Box::pin(async move { bus.post(raw).await }));
        }
        let hook = self.config.hook.as_deref();
        let mut decoded = self.config.registry.decode(
            event_type,
            frame.data(),
            frame.exact,
            meta,
            &self.bus,
            hook,
        );
        if !frame.exact && matches!(decoded, Decoded::Failed(_) | Decoded::Unchecked) {
            // The fast path's `d` may have run past the value (a key after
            // it): read the envelope exactly and decode again.
            decoded = match Frame::parse_exact(text) {
                Ok(exact) => self.config.registry.decode(
                    event_type,
                    exact.data(),
                    true,
                    meta,
                    &self.bus,
                    hook,
                ),
                Err(e) => {
                    self.report(GatewayErrorKind::Decode(Box::new(e)), false);
                    return;
                }
            };
        }
        match decoded {
            Decoded::Post(post) => self.push_post(conn, post),
            Decoded::Unwanted | Decoded::Unchecked => {}
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
}

/// The end of a connection whose socket failed.
fn lost(e: tungstenite::Error) -> Outcome {
    Outcome::ended(Cause::Lost, Some(GatewayErrorKind::Websocket(Box::new(e))))
}

/// The end of a connection whose own payload could not be encoded.
fn encode_failed(e: serde_json::Error) -> Outcome {
    Outcome::ended(
        Cause::EncodeFailed,
        Some(GatewayErrorKind::Encode(Box::new(e))),
    )
}

/// Awaits the oldest pending post.
async fn front(
    posts: &mut std::collections::VecDeque<PostFuture>,
) -> Result<usize, crate::bus::MuxClosed> {
    match posts.front_mut() {
        Some(post) => post.await,
        None => std::future::pending().await,
    }
}
