//! Identify and Resume: validation, rate limits, session creation and replay.
//!
//! Checks run in the documented order of severity: payload shape (4001),
//! token (4004), shard (4010/4011), intents (4013/4014), `large_threshold`
//! (4001), the daily session start limit, then the per-bucket identify rate
//! limit (op 9 `false`, recorded as a [`BucketViolation`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::Value;

use crate::frame;
use crate::ids::{ConnectionId, Seq, SessionId, ShardInfo};
use crate::log::{BucketViolation, IdentifyOutcome, IdentifyRecord, ResumeOutcome, ResumeRecord};
use crate::protocol::{close, intents};
use crate::session::Session;
use crate::shared::{Control, Shared};
use crate::stats::SessionState;

/// The `d` of Identify.
#[derive(Debug, Deserialize)]
struct IdentifyData {
    /// The bot token.
    token: String,
    /// Connection properties (required, contents not checked).
    #[allow(dead_code)]
    properties: serde_json::Map<String, Value>,
    /// Gateway intents.
    intents: u64,
    /// `[shard_id, num_shards]`.
    shard: Option<[i64; 2]>,
    /// 50..=250.
    large_threshold: Option<i64>,
}

/// The `d` of Resume.
#[derive(Debug, Deserialize)]
struct ResumeData {
    /// The bot token.
    token: String,
    /// The session to resume.
    session_id: String,
    /// The last seq the client received.
    seq: Option<u64>,
}

/// What a connection does after an Identify.
pub(crate) enum IdentifyResult {
    /// READY and GUILD_CREATEs are queued on this new session.
    Ready(Arc<Session>),
    /// Send op 9 `false` (rate limited); the connection stays unidentified.
    InvalidSession,
    /// Close with this code and reason.
    Close(u16, String),
}

/// What a connection does after a Resume.
pub(crate) enum ResumeResult {
    /// Attached to the session: write everything after `.1`; RESUMED is queued.
    Resumed(Arc<Session>, Seq),
    /// Send op 9 `false`; the connection stays unidentified.
    InvalidSession,
    /// Close with this code and reason.
    Close(u16, String),
}

fn close_with(code: u16, reason: impl Into<String>) -> IdentifyResult {
    IdentifyResult::Close(code, reason.into())
}

/// Accept `Bot <token>` as well as the bare token.
fn token_matches(sent: &str, expected: &str) -> bool {
    sent.strip_prefix("Bot ").unwrap_or(sent) == expected
}

impl Shared {
    /// Handle op 2 on connection `conn`.
    pub(crate) fn identify(&self, conn: ConnectionId, d: &Value) -> IdentifyResult {
        let data = match IdentifyData::deserialize(d) {
            Ok(data) => data,
            Err(e) => return close_with(close::UNKNOWN_OPCODE, format!("invalid identify: {e}")),
        };
        let mut state = self.state();
        if state.token_revoked || !token_matches(&data.token, &self.config.token) {
            return close_with(close::AUTHENTICATION_FAILED, "authentication failed");
        }
        let (id, total) = match data.shard {
            Some([id, total]) => (id, total),
            None => (0, 1),
        };
        if total < 1 || id < 0 || id >= total || total > i64::from(u32::MAX) {
            return close_with(
                close::INVALID_SHARD,
                format!("invalid shard [{id}, {total}]"),
            );
        }
        let shard = ShardInfo {
            id: u32::try_from(id).unwrap_or(0),
            total: u32::try_from(total).unwrap_or(1),
        };
        if let Some(required) = state.required_shards
            && shard.total < required
        {
            return close_with(
                close::SHARDING_REQUIRED,
                format!("sharding required: {required} shards"),
            );
        }
        if self.config.strict_shard_total && shard.total != state.shards {
            return close_with(
                close::INVALID_SHARD,
                format!(
                    "invalid shard {shard}: the bot runs {} shards",
                    state.shards
                ),
            );
        }
        if data.intents & !intents::ALL != 0 {
            return close_with(close::INVALID_INTENTS, "invalid intent(s)");
        }
        if data.intents & intents::PRIVILEGED & !self.config.privileged_intents != 0 {
            return close_with(close::DISALLOWED_INTENTS, "disallowed intent(s)");
        }
        let large_threshold = data.large_threshold.unwrap_or(50);
        if !(50..=250).contains(&large_threshold) {
            return close_with(
                close::UNKNOWN_OPCODE,
                format!("large_threshold {large_threshold} is not within 50..=250"),
            );
        }
        let now = Instant::now();
        let at = self.elapsed();
        let bucket = shard.id % self.config.max_concurrency;
        if now >= state.starts_reset_at {
            state.starts_remaining = self.config.session_start_limit.total;
            state.starts_reset_at = now + self.config.session_start_limit.reset_after;
        }
        if state.starts_remaining == 0 {
            // Documented behaviour: every session is terminated and the token reset.
            state.token_revoked = true;
            for (&other, handle) in &state.connections {
                if other != conn {
                    let _ = handle.control.send(Control::Close(
                        close::AUTHENTICATION_FAILED,
                        "session start limit exhausted: token reset".to_owned(),
                    ));
                }
            }
            for s in &state.session_order {
                s.lock().invalidate();
            }
            self.rebuild_routes(&state);
            drop(state);
            self.log_with(|log| {
                log.identifies.push(IdentifyRecord {
                    at,
                    connection: conn,
                    shard,
                    bucket,
                    outcome: IdentifyOutcome::SessionLimitExhausted,
                });
            });
            return close_with(
                close::AUTHENTICATION_FAILED,
                "session start limit exhausted: token reset",
            );
        }
        if let Some(&prev) = state.buckets.get(&bucket) {
            let since = now.duration_since(prev);
            if since < self.config.identify_window {
                drop(state);
                tracing::warn!(
                    shard = shard.id,
                    bucket,
                    since_previous_ms = since.as_secs_f64() * 1e3,
                    "identify too early for its bucket: invalid session"
                );
                self.log_with(|log| {
                    log.identifies.push(IdentifyRecord {
                        at,
                        connection: conn,
                        shard,
                        bucket,
                        outcome: IdentifyOutcome::RateLimited,
                    });
                    log.bucket_violations.push(BucketViolation {
                        at,
                        connection: conn,
                        shard,
                        bucket,
                        since_previous: since,
                    });
                });
                return IdentifyResult::InvalidSession;
            }
        }
        state.buckets.insert(bucket, now);
        state.starts_remaining -= 1;

        let n = self.next_session.fetch_add(1, Ordering::Relaxed);
        let session_id = SessionId(format!(
            "{:016x}{:016x}",
            n.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            u64::from(shard.id) << 32 | u64::from(conn.0 as u32)
        ));
        let session = Arc::new(Session::new(
            session_id.clone(),
            shard,
            data.intents,
            data.intents & intents::MESSAGE_CONTENT != 0,
            self.config.replay_buffer,
            conn,
        ));
        {
            let mut buf = session.lock();
            let ready = self.world.ready(
                &session_id.0,
                &self.resume_gateway_url(),
                data.shard.map(|_| shard),
            );
            let ready = serde_json::to_vec(&ready).unwrap_or_default();
            buf.push(|seq| frame::dispatch("\"READY\"", seq, &ready));
            if session.wants("GUILD_CREATE", true) {
                let threshold = u32::try_from(large_threshold).unwrap_or(50);
                for g in self.world.guilds_of(shard) {
                    let d = serde_json::to_vec(&self.world.guild_create(g, threshold))
                        .unwrap_or_default();
                    buf.push(|seq| frame::dispatch("\"GUILD_CREATE\"", seq, &d));
                }
            }
        }
        state.sessions.insert(session_id.clone(), session.clone());
        state.session_order.push(session.clone());
        if let Some(h) = state.connections.get_mut(&conn) {
            h.shard = Some(shard);
        }
        self.rebuild_routes(&state);
        drop(state);
        session.notify.notify_one();
        self.log_with(|log| {
            log.identifies.push(IdentifyRecord {
                at,
                connection: conn,
                shard,
                bucket,
                outcome: IdentifyOutcome::Ready {
                    session_id: session_id.clone(),
                },
            });
            if let Some(c) = log.connection_mut(conn) {
                c.shard = Some(shard);
                c.session_id = Some(session_id);
            }
        });
        IdentifyResult::Ready(session)
    }

    /// Handle op 6 on connection `conn`.
    pub(crate) fn resume(
        &self,
        conn: ConnectionId,
        via_resume_url: bool,
        d: &Value,
    ) -> ResumeResult {
        let data = match ResumeData::deserialize(d) {
            Ok(data) => data,
            Err(e) => {
                return ResumeResult::Close(close::UNKNOWN_OPCODE, format!("invalid resume: {e}"));
            }
        };
        let at = self.elapsed();
        let record = |outcome: ResumeOutcome| ResumeRecord {
            at,
            connection: conn,
            via_resume_url,
            session_id: data.session_id.clone(),
            seq: data.seq,
            outcome,
        };
        let mut state = self.state();
        if state.token_revoked || !token_matches(&data.token, &self.config.token) {
            return ResumeResult::Close(
                close::AUTHENTICATION_FAILED,
                "authentication failed".into(),
            );
        }
        let session = state
            .sessions
            .get(&SessionId(data.session_id.clone()))
            .cloned();
        let Some(session) = session else {
            drop(state);
            self.log_with(|log| log.resumes.push(record(ResumeOutcome::UnknownSession)));
            return ResumeResult::InvalidSession;
        };
        let seq = data.seq.unwrap_or(0);
        let mut buf = session.lock();
        let expired = buf.state == SessionState::Detached
            && buf
                .detached_at
                .is_some_and(|t| t.elapsed() >= self.config.resume_window);
        let outcome = if buf.state == SessionState::Invalid || expired {
            buf.invalidate();
            Err(ResumeOutcome::UnknownSession)
        } else if seq > buf.last_seq() {
            buf.invalidate();
            Err(ResumeOutcome::InvalidSeq)
        } else if seq + 1 < buf.first_seq {
            buf.invalidate();
            Err(ResumeOutcome::SeqNotBuffered)
        } else {
            Ok(())
        };
        if let Err(outcome) = outcome {
            drop(buf);
            self.rebuild_routes(&state);
            drop(state);
            let invalid_seq = outcome == ResumeOutcome::InvalidSeq;
            self.log_with(|log| log.resumes.push(record(outcome)));
            return if invalid_seq {
                ResumeResult::Close(close::INVALID_SEQ, format!("invalid seq {seq}"))
            } else {
                ResumeResult::InvalidSession
            };
        }
        if let Some(old) = buf.attached
            && old != conn
            && let Some(h) = state.connections.get(&old)
        {
            let _ = h.control.send(Control::Close(
                close::UNKNOWN_ERROR,
                "session resumed on another connection".to_owned(),
            ));
        }
        let replayed = buf.last_seq() - seq;
        buf.attached = Some(conn);
        buf.state = SessionState::Live;
        buf.detached_at = None;
        session.written.store(seq, Ordering::Relaxed);
        buf.push(|s| {
            frame::dispatch(
                "\"RESUMED\"",
                s,
                br#"{"_trace":["[\"shardbus-sim\",{\"micros\":0}]"]}"#,
            )
        });
        drop(buf);
        if let Some(h) = state.connections.get_mut(&conn) {
            h.shard = Some(session.shard);
        }
        drop(state);
        session.notify.notify_one();
        let shard = session.shard;
        let sid = session.id.clone();
        self.log_with(|log| {
            log.resumes
                .push(record(ResumeOutcome::Resumed { replayed }));
            if let Some(c) = log.connection_mut(conn) {
                c.shard = Some(shard);
                c.session_id = Some(sid);
            }
        });
        ResumeResult::Resumed(session, seq)
    }

    /// Queue a dispatch on every routed session `accept`s; returns how many.
    pub(crate) fn dispatch_where(
        &self,
        event: &str,
        in_guild: bool,
        data: &Value,
        accept: impl Fn(&Session) -> bool,
    ) -> usize {
        let t_json = Value::String(event.to_owned()).to_string();
        let d = serde_json::to_vec(data).unwrap_or_else(|_| b"null".to_vec());
        let mut n = 0;
        for s in self.routes().iter() {
            if !accept(s) || !s.wants(event, in_guild) {
                continue;
            }
            s.lock().push(|seq| {
                let mut out = BytesMut::new();
                frame::write_dispatch(&mut out, &t_json, seq, &d);
                out.freeze()
            });
            s.notify.notify_one();
            n += 1;
        }
        n
    }

    /// Queue one dispatch on a single session.
    pub(crate) fn dispatch_on(session: &Session, event: &str, d: &[u8]) {
        let t_json = Value::String(event.to_owned()).to_string();
        session
            .lock()
            .push(|seq| -> Bytes { frame::dispatch(&t_json, seq, d) });
        session.notify.notify_one();
    }
}
