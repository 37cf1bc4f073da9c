//! One websocket connection: Hello, the client's payloads, heartbeats,
//! faults, and writing the attached session's dispatches.
//!
//! The connection runs as one task. Each turn it first writes (queued
//! non-dispatch payloads, then up to one batch of dispatches from the
//! session's buffer), then waits for whichever comes first: a client
//! message, a control from the sim, new dispatches, or a deadline (heartbeat
//! timeout, end of a stall, reconnect grace, heartbeat request).
//!
//! Nothing a client sends can make the task panic: every malformed input ends
//! in a close code.
//!
//! Beside this file: `query` checks the upgrade request's query, `faults`
//! applies injected faults, and the rate-limit bookkeeping is in
//! `crate::ratelimit`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::SinkExt as _;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, sleep_until};
use tracing::{debug, instrument};

use crate::compress::{self, Compressor};
use crate::frame;
use crate::handshake::{IdentifyResult, ResumeResult};
use crate::ids::{ConnectionId, GuildId, Seq};
use crate::log::{ClientEvent, ClientEventKind, Closed, Closer, ConnectionLog};
use crate::protocol::{MAX_CLIENT_PAYLOAD, close, op};
use crate::ratelimit::{self, CommandWindow};
use crate::session::{Session, Take};
use crate::shared::{ConnHandle, Control, Shared};
use crate::stats::UnpublishedBytes;

mod faults;
mod query;

use query::{check_query, parse_query, requested_compression};

/// Dispatches written per turn of the connection loop.
const BATCH: usize = 256;

/// The query parameters of the upgrade request.
#[derive(Debug, Default)]
pub(crate) struct ConnParams {
    /// Whether the client connected to the resume URL.
    pub via_resume_url: bool,
    /// The raw query string.
    pub query: String,
}

/// How the connection loop ends.
enum End {
    /// Send a close frame with this code and reason.
    Close(u16, String),
    /// The client sent a close frame with this code (if any).
    ClientClosed(Option<u16>),
    /// The client's TCP connection ended (or a write failed).
    ClientDropped,
    /// Drop without a close frame (the Drop fault, or shutdown).
    Drop,
}

/// A connection's task state.
struct Conn {
    /// The sim.
    shared: Arc<Shared>,
    /// This connection's number.
    id: ConnectionId,
    /// Whether the client came in on the resume URL.
    via_resume_url: bool,
    /// The socket.
    socket: WebSocket,
    /// The transport compressor (one context for the connection's life).
    compressor: Compressor,
    /// Bytes written since they were last added to the sim's counters.
    unpublished: UnpublishedBytes,
    /// The attached session, once identified or resumed.
    session: Option<Arc<Session>>,
    /// The last seq written from the session.
    written: Seq,
    /// Whether more dispatches are waiting in the session buffer.
    more: bool,
    /// Non-dispatch payloads to write (Hello, ACKs, op 7/9, fault payloads).
    outbox: VecDeque<Bytes>,
    /// Reused batch of frames taken from the session.
    batch: Vec<Bytes>,
    /// When the last heartbeat (or Hello) was.
    last_heartbeat: Instant,
    /// Send no heartbeat ACKs (the Zombie fault).
    zombie: bool,
    /// Write nothing until then (the Stall fault).
    stalled_until: Option<Instant>,
    /// Close with 4000 at this time unless the client closes first (after op 7).
    reconnect_deadline: Option<Instant>,
    /// Recent client payloads (for the 120/60 s limit).
    commands: CommandWindow,
    /// The session an op 9 `true` detached from this connection, until the
    /// connection resumes or identifies (a 4003 close invalidates it).
    left: Option<Arc<Session>>,
}

/// Serve one upgraded connection until it ends.
#[instrument(skip_all, fields(conn = tracing::field::Empty))]
pub(crate) async fn run(shared: Arc<Shared>, socket: WebSocket, params: ConnParams) {
    let query = parse_query(&params.query);
    let compression = requested_compression(&query);
    // The id is allocated under the log lock that pushes the entry, so the
    // log stays in id order for `SimLog::connection_mut`'s binary search even
    // when connections open at the same moment.
    let id = shared.log_with(|log| {
        let id = ConnectionId(shared.next_conn.fetch_add(1, Ordering::Relaxed));
        log.connections.push(ConnectionLog {
            id,
            opened_at: shared.elapsed(),
            via_resume_url: params.via_resume_url,
            query: params.query.clone(),
            compression,
            zlib: compression == compress::Compression::ZlibStream,
            shard: None,
            session_id: None,
            events: Vec::new(),
            closed: None,
            max_in_window: 0,
        });
        id
    });
    tracing::Span::current().record("conn", id.0);
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    shared.state().connections.insert(
        id,
        ConnHandle {
            control: control_tx,
            shard: None,
        },
    );
    let mut conn = Conn {
        shared: shared.clone(),
        id,
        via_resume_url: params.via_resume_url,
        socket,
        compressor: Compressor::None,
        unpublished: UnpublishedBytes::default(),
        session: None,
        written: 0,
        more: false,
        outbox: VecDeque::new(),
        batch: Vec::with_capacity(BATCH),
        last_heartbeat: Instant::now(),
        zombie: false,
        stalled_until: None,
        reconnect_deadline: None,
        commands: CommandWindow::default(),
        left: None,
    };
    let end = match check_query(&query).and_then(|c| {
        Compressor::new(c).map_err(|e| {
            End::Close(
                close::UNKNOWN_ERROR,
                format!("compression unavailable: {e}"),
            )
        })
    }) {
        Err(end) => end,
        Ok(compressor) => {
            conn.compressor = compressor;
            conn.serve(control_rx).await
        }
    };
    conn.finish(end).await;
    shared.state().connections.remove(&id);
}

impl Conn {
    /// The main loop.
    async fn serve(&mut self, mut control_rx: mpsc::UnboundedReceiver<Control>) -> End {
        let interval = self.shared.config.heartbeat_interval;
        let timeout = interval + interval / 2;
        let hello = format!("{{\"heartbeat_interval\":{}}}", interval.as_millis());
        self.outbox.push_back(frame::op(op::HELLO, &hello));
        self.last_heartbeat = Instant::now();
        let mut requests: Option<Interval> = self.shared.config.heartbeat_requests.map(|p| {
            let mut i = tokio::time::interval_at(Instant::now() + p, p);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        let cancel = self.shared.cancel.clone();
        loop {
            let stalled = self.stalled_until.is_some_and(|t| t > Instant::now());
            if let Some(s) = &self.session {
                s.stalled.store(stalled, Ordering::Relaxed);
            }
            if !stalled {
                self.stalled_until = None;
                if let Err(end) = self.write_some().await {
                    return end;
                }
            }
            let session = self.session.clone();
            let wait_new = !self.more && !stalled;
            let far = Instant::now() + Duration::from_secs(86_400);
            tokio::select! {
                biased;
                () = cancel.cancelled() => return End::Drop,
                Some(ctl) = control_rx.recv() => {
                    if let Err(end) = self.on_control(ctl) {
                        return end;
                    }
                }
                msg = self.socket.recv() => match msg {
                    Some(Ok(msg)) => {
                        if let Err(end) = self.on_message(msg) {
                            return end;
                        }
                    }
                    Some(Err(e)) => {
                        debug!(error = %e, "read failed");
                        return End::ClientDropped;
                    }
                    None => return End::ClientDropped,
                },
                () = async {
                    match &session {
                        Some(s) => s.notify.notified().await,
                        None => std::future::pending().await,
                    }
                }, if wait_new => self.more = true,
                () = std::future::ready(()), if self.more && !stalled => {}
                () = sleep_until(self.last_heartbeat + timeout) => {
                    return End::Close(close::UNKNOWN_ERROR, "heartbeat timeout".into());
                }
                () = sleep_until(self.stalled_until.unwrap_or(far)), if stalled => {}
                () = sleep_until(self.reconnect_deadline.unwrap_or(far)), if self.reconnect_deadline.is_some() => {
                    return End::Close(close::UNKNOWN_ERROR, "reconnect requested".into());
                }
                _ = async {
                    match requests.as_mut() {
                        Some(i) => i.tick().await,
                        None => std::future::pending().await,
                    }
                } => self.outbox.push_back(frame::op(op::HEARTBEAT, "null")),
            }
        }
    }

    /// Write queued payloads and one batch of dispatches, then flush.
    async fn write_some(&mut self) -> Result<(), End> {
        let mut wrote = false;
        while let Some(p) = self.outbox.pop_front() {
            self.feed(p).await?;
            wrote = true;
        }
        if let Some(session) = self.session.clone() {
            let taken = {
                let buf = session.lock();
                let t = buf.take(self.id, self.written, BATCH, &mut self.batch);
                self.more = matches!(t, Take::Frames)
                    && buf.last_seq() > self.written + self.batch.len() as u64;
                t
            };
            match taken {
                Take::Frames => {}
                Take::Evicted => {
                    return Err(End::Close(
                        close::UNKNOWN_ERROR,
                        "client too slow: the replay buffer overflowed".into(),
                    ));
                }
                Take::Detached => {
                    // Another connection resumed the session: pass on any
                    // wake-up this one may have taken from it.
                    session.notify.notify_one();
                    self.session = None;
                    self.more = false;
                }
            }
            if !self.batch.is_empty() {
                let first = self.written + 1;
                let n = self.batch.len() as u64;
                let mut batch = std::mem::take(&mut self.batch);
                for f in batch.drain(..) {
                    self.feed(f).await?;
                }
                self.batch = batch;
                self.written += n;
                session.written.store(self.written, Ordering::Relaxed);
                session.lock().record_sent(self.id, first, self.written);
                wrote = true;
            }
        }
        if wrote {
            self.publish_bytes();
            self.socket.flush().await.map_err(|_| End::ClientDropped)?;
        }
        Ok(())
    }

    /// Add the bytes written since the last call to the sim's counters.
    fn publish_bytes(&mut self) {
        self.shared
            .wire
            .publish(self.compressor.compression(), &mut self.unpublished);
    }

    /// Queue one payload on the socket: a text message uncompressed, one or
    /// more binary messages with zlib-stream, one binary message with
    /// zstd-stream.
    async fn feed(&mut self, payload: Bytes) -> Result<(), End> {
        let failed = |e: compress::CompressError| End::Close(close::UNKNOWN_ERROR, format!("{e}"));
        self.unpublished.payload += payload.len() as u64;
        let message = match &mut self.compressor {
            Compressor::None => {
                let text = Utf8Bytes::try_from(payload).map_err(|_| {
                    End::Close(
                        close::UNKNOWN_ERROR,
                        "internal error: payload is not UTF-8".into(),
                    )
                })?;
                self.unpublished.wire += text.len() as u64;
                Message::Text(text)
            }
            Compressor::Zlib(z) => {
                let compressed = z.compress(&payload).map_err(failed)?;
                self.unpublished.wire += compressed.len() as u64;
                let mut pieces: smallvec_like::Pieces = smallvec_like::Pieces::default();
                compress::split(compressed, self.shared.config.zlib_chunk_size, |b| {
                    pieces.push(b);
                });
                for piece in pieces.drain() {
                    self.socket
                        .feed(Message::Binary(piece))
                        .await
                        .map_err(|_| End::ClientDropped)?;
                }
                return Ok(());
            }
            Compressor::Zstd(z) => {
                let compressed = z.compress(&payload).map_err(failed)?;
                self.unpublished.wire += compressed.len() as u64;
                Message::Binary(compressed)
            }
        };
        self.socket
            .feed(message)
            .await
            .map_err(|_| End::ClientDropped)
    }

    /// Record a client event.
    fn log_event(&self, kind: ClientEventKind) {
        let at = self.shared.elapsed();
        self.shared.log_with(|log| {
            if let Some(c) = log.connection_mut(self.id) {
                c.events.push(ClientEvent { at, kind });
            }
        });
    }

    /// Reject a payload: log it and close with `code`.
    fn reject(&self, code: u16, reason: impl Into<String>) -> End {
        let reason = reason.into();
        self.log_event(ClientEventKind::Rejected {
            reason: reason.clone(),
        });
        End::Close(code, reason)
    }

    /// Handle one websocket message from the client.
    fn on_message(&mut self, msg: Message) -> Result<(), End> {
        let data = match msg {
            Message::Text(t) => Bytes::from(t),
            Message::Binary(b) => b,
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
            Message::Close(frame) => {
                let (code, reason) = match frame {
                    Some(CloseFrame { code, reason }) => (Some(code), reason.to_string()),
                    None => (None, String::new()),
                };
                self.log_event(ClientEventKind::Close { code, reason });
                return Err(End::ClientClosed(code));
            }
        };
        if data.len() > MAX_CLIENT_PAYLOAD {
            return Err(self.reject(
                close::DECODE_ERROR,
                format!(
                    "payload of {} bytes exceeds {MAX_CLIENT_PAYLOAD}",
                    data.len()
                ),
            ));
        }
        let (in_window, new_peak) = self
            .commands
            .record(Instant::now(), self.shared.config.command_window);
        if new_peak {
            self.shared.log_with(|log| {
                if let Some(c) = log.connection_mut(self.id) {
                    c.max_in_window = in_window;
                }
            });
        }
        if in_window > self.shared.config.command_limit {
            return Err(self.reject(close::RATE_LIMITED, "rate limited"));
        }
        let value: Value = match serde_json::from_slice(&data) {
            Ok(v) => v,
            Err(e) => return Err(self.reject(close::DECODE_ERROR, format!("decode error: {e}"))),
        };
        let Some(obj) = value.as_object() else {
            return Err(self.reject(
                close::DECODE_ERROR,
                "decode error: payload is not an object",
            ));
        };
        let Some(opcode) = obj.get("op").and_then(Value::as_u64) else {
            return Err(self.reject(close::DECODE_ERROR, "decode error: missing or invalid op"));
        };
        let d = obj.get("d").unwrap_or(&Value::Null);
        match u8::try_from(opcode).unwrap_or(u8::MAX) {
            op::HEARTBEAT => self.on_heartbeat(d),
            op::IDENTIFY => self.on_identify(d),
            op::RESUME => self.on_resume(d),
            o @ (op::PRESENCE_UPDATE
            | op::VOICE_STATE_UPDATE
            | op::REQUEST_GUILD_MEMBERS
            | op::REQUEST_SOUNDBOARD_SOUNDS
            | op::REQUEST_CHANNEL_INFO) => {
                self.log_event(ClientEventKind::Command {
                    op: o,
                    d: d.clone(),
                });
                if self.session.is_none() {
                    return Err(End::Close(
                        close::NOT_AUTHENTICATED,
                        "not authenticated".into(),
                    ));
                }
                if o == op::REQUEST_GUILD_MEMBERS {
                    self.answer_members(d);
                }
                Ok(())
            }
            _ => Err(self.reject(close::UNKNOWN_OPCODE, format!("unknown opcode {opcode}"))),
        }
    }

    /// Op 1: log, ACK unless zombie.
    fn on_heartbeat(&mut self, d: &Value) -> Result<(), End> {
        let seq = match d {
            Value::Null => None,
            v => match v.as_u64() {
                Some(s) => Some(s),
                None => {
                    return Err(self.reject(
                        close::DECODE_ERROR,
                        "decode error: heartbeat d must be a seq or null",
                    ));
                }
            },
        };
        self.log_event(ClientEventKind::Heartbeat { seq });
        self.last_heartbeat = Instant::now();
        if !self.zombie {
            self.outbox.push_back(frame::op(op::HEARTBEAT_ACK, "null"));
        }
        Ok(())
    }

    /// Op 2.
    fn on_identify(&mut self, d: &Value) -> Result<(), End> {
        let shard = d.get("shard").and_then(|s| {
            let a = s.as_array()?;
            Some(crate::ids::ShardInfo {
                id: u32::try_from(a.first()?.as_u64()?).ok()?,
                total: u32::try_from(a.get(1)?.as_u64()?).ok()?,
            })
        });
        let intents = d.get("intents").and_then(Value::as_u64).unwrap_or(0);
        self.log_event(ClientEventKind::Identify { shard, intents });
        if self.session.is_some() {
            return Err(End::Close(
                close::ALREADY_AUTHENTICATED,
                "already authenticated".into(),
            ));
        }
        match self.shared.identify(self.id, d) {
            IdentifyResult::Ready(session) => {
                self.left = None;
                self.written = 0;
                self.session = Some(session);
                self.more = true;
                Ok(())
            }
            IdentifyResult::InvalidSession => {
                self.outbox
                    .push_back(frame::op(op::INVALID_SESSION, "false"));
                Ok(())
            }
            IdentifyResult::Close(code, reason) => Err(End::Close(code, reason)),
        }
    }

    /// Op 6.
    fn on_resume(&mut self, d: &Value) -> Result<(), End> {
        let session_id = d
            .get("session_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let seq = d.get("seq").and_then(Value::as_u64);
        self.log_event(ClientEventKind::Resume { session_id, seq });
        if self.session.is_some() {
            return Err(End::Close(
                close::ALREADY_AUTHENTICATED,
                "already authenticated".into(),
            ));
        }
        match self.shared.resume(self.id, self.via_resume_url, d) {
            ResumeResult::Resumed(session, after) => {
                self.left = None;
                self.written = after;
                self.session = Some(session);
                self.more = true;
                Ok(())
            }
            ResumeResult::InvalidSession => {
                self.outbox
                    .push_back(frame::op(op::INVALID_SESSION, "false"));
                Ok(())
            }
            ResumeResult::Close(code, reason) => Err(End::Close(code, reason)),
        }
    }

    /// Answer op 8 with one GUILD_MEMBERS_CHUNK of the guild's generated
    /// members, or with RATE_LIMITED for a too-early request for all members.
    fn answer_members(&self, d: &Value) {
        let Some(session) = &self.session else { return };
        let guild = d.get("guild_id").and_then(|g| match g {
            Value::String(s) => s.parse::<u64>().ok(),
            v => v.as_u64(),
        });
        let Some(g) = guild.and_then(|g| self.shared.world.guild(GuildId(g))) else {
            return;
        };
        if !session.shard.owns(g.id) {
            return;
        }
        if ratelimit::requests_all_members(d) {
            let limited = session.lock().member_requests.check(
                g.id,
                Instant::now(),
                self.shared.config.member_request_window,
            );
            if let Err(retry_after) = limited {
                let mut meta = serde_json::json!({ "guild_id": g.id.0.to_string() });
                if let Some(n) = d.get("nonce") {
                    meta["nonce"] = n.clone();
                }
                let body = serde_json::json!({
                    "opcode": op::REQUEST_GUILD_MEMBERS,
                    "retry_after": retry_after.as_secs_f64(),
                    "meta": meta,
                });
                let bytes = serde_json::to_vec(&body).unwrap_or_default();
                Shared::dispatch_on(session, "RATE_LIMITED", &bytes);
                return;
            }
        }
        let chunk = self.shared.world.members_chunk(g, d.get("nonce"));
        let bytes = serde_json::to_vec(&chunk).unwrap_or_default();
        Shared::dispatch_on(session, "GUILD_MEMBERS_CHUNK", &bytes);
    }

    /// Apply a control from the sim.
    fn on_control(&mut self, ctl: Control) -> Result<(), End> {
        match ctl {
            Control::Close(code, reason) => Err(End::Close(code, reason)),
            Control::Fault(f) => self.on_fault(f),
        }
    }

    /// End the connection: session bookkeeping and log first (so a client
    /// that sees the close finds them done), then the close frame or drop.
    async fn finish(mut self, end: End) {
        let (by, code, reason, keep) = match &end {
            End::Close(code, reason) => (
                Closer::Server,
                Some(*code),
                reason.clone(),
                close::keeps_session(*code),
            ),
            End::ClientClosed(code) => (
                Closer::Client,
                *code,
                String::new(),
                !matches!(code, Some(1000 | 1001)),
            ),
            End::ClientDropped => (Closer::ClientDropped, None, String::new(), true),
            End::Drop => (Closer::ServerDropped, None, String::new(), true),
        };
        if code == Some(close::NOT_AUTHENTICATED)
            && by == Closer::Server
            && let Some(s) = self.left.take()
        {
            // 4003 ends the session an op 9 `true` left resumable: the client
            // is to identify again, not resume.
            let mut buf = s.lock();
            if buf.attached.is_none() {
                buf.invalidate();
                drop(buf);
                let state = self.shared.state();
                self.shared.rebuild_routes(&state);
            }
        }
        if let Some(s) = self.session.take() {
            let detached = s.lock().detach(self.id, keep);
            if detached && !keep {
                let state = self.shared.state();
                self.shared.rebuild_routes(&state);
            }
        }
        // Before the log says closed, so a test that waits for that sees
        // every byte counted.
        self.publish_bytes();
        let at = self.shared.elapsed();
        self.shared.log_with(|log| {
            if let Some(c) = log.connection_mut(self.id) {
                c.closed = Some(Closed {
                    at,
                    by,
                    code,
                    reason: reason.clone(),
                });
            }
        });
        match end {
            End::Close(code, reason) => {
                let frame = CloseFrame {
                    code,
                    reason: Utf8Bytes::from(reason.as_str()),
                };
                let _ = self.socket.send(Message::Close(Some(frame))).await;
                // Let the client answer the close, briefly.
                let cancel = self.shared.cancel.clone();
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    tokio::select! {
                        () = cancel.cancelled() => {}
                        () = async { while let Some(Ok(_)) = self.socket.recv().await {} } => {}
                    }
                })
                .await;
            }
            End::ClientClosed(_) => {
                let _ = self.socket.flush().await;
            }
            End::ClientDropped | End::Drop => {}
        }
    }
}

/// A tiny inline list of the pieces of one split payload (almost always one).
mod smallvec_like {
    use bytes::Bytes;

    /// Up to two pieces inline, more on the heap.
    #[derive(Default)]
    pub(super) struct Pieces {
        /// The first piece.
        first: Option<Bytes>,
        /// The rest.
        rest: Vec<Bytes>,
    }

    impl Pieces {
        /// Add a piece.
        pub(super) fn push(&mut self, b: Bytes) {
            if self.first.is_none() {
                self.first = Some(b);
            } else {
                self.rest.push(b);
            }
        }

        /// Take all pieces in order.
        pub(super) fn drain(&mut self) -> impl Iterator<Item = Bytes> + '_ {
            self.first.take().into_iter().chain(self.rest.drain(..))
        }
    }
}
