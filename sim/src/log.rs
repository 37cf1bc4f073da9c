//! What clients did: the observation log tests assert on.
//!
//! The sim appends to one [`SimLog`]; [`Sim::log`](crate::Sim::log) returns a
//! snapshot and [`Sim::wait_for_log`](crate::Sim::wait_for_log) waits until a
//! condition on it holds. Times are offsets from the sim's start
//! ([`Duration`] in Rust, milliseconds as a float in the JSON of `GET /sim/log`).

use std::fmt::Display;
use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::compress::Compression;
use crate::ids::{ConnectionId, GuildId, Seq, SessionId, ShardInfo};

/// Serialize a [`Duration`] as fractional milliseconds.
fn as_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// Serialize an optional [`Duration`] as fractional milliseconds or `null`.
fn opt_as_ms<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => as_ms(d, s),
        None => s.serialize_none(),
    }
}

/// Serialize a snowflake as a JSON string, as Discord does.
fn as_string<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Everything clients did since the sim started.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimLog {
    /// Every websocket connection, in the order they were accepted.
    pub connections: Vec<ConnectionLog>,
    /// Every Identify that passed validation far enough to reach the rate
    /// limiter, in order.
    pub identifies: Vec<IdentifyRecord>,
    /// Every Identify that came too early for its bucket.
    pub bucket_violations: Vec<BucketViolation>,
    /// Every Resume, in order.
    pub resumes: Vec<ResumeRecord>,
    /// Every REST request under `/api/v10`, in the order they were answered.
    pub requests: Vec<RequestRecord>,
    /// Every interaction injected with
    /// [`Sim::inject_interaction`](crate::Sim::inject_interaction) or
    /// `POST /sim/interaction`, in order, with how it was answered.
    pub interactions: Vec<InteractionRecord>,
    /// Every simulated Cloudflare ban (too many invalid requests).
    pub bans: Vec<BanRecord>,
}

/// One REST request and its answer.
///
/// In the JSON of `GET /sim/log`:
/// `{"at_ms": 12.5, "method": "POST", "route": "POST /channels/{channel_id}/messages",
/// "path": "/channels/1/messages", "bucket": "…", "major": "1", "status": 200,
/// "remaining": 4, "limit": 5, "scope": null, "global": false}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// When it was answered (`at_ms` in JSON).
    #[serde(rename = "at_ms", serialize_with = "as_ms")]
    pub at: Duration,
    /// The HTTP method.
    pub method: String,
    /// The method and path template, e.g. `POST /channels/{channel_id}/messages`
    /// (`"<METHOD> (unknown)"` for a path the sim does not serve).
    pub route: String,
    /// The path after `/api/v10`, without the query.
    pub path: String,
    /// The `X-RateLimit-Bucket` of the route, if it has a per-route limit
    /// and the request reached it (not for 401s, bans and global 429s).
    pub bucket: Option<String>,
    /// The major parameter (channel id, guild id, `{application_id}/{token}`
    /// or `{interaction_id}/{token}`), if the route has one.
    pub major: Option<String>,
    /// The HTTP status of the answer.
    pub status: u16,
    /// `X-RateLimit-Remaining` after this request, if a bucket was reached.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Limit`, if a bucket was reached.
    pub limit: Option<u32>,
    /// `X-RateLimit-Scope` of a 429.
    pub scope: Option<RateLimitScope>,
    /// Whether this was a global 429.
    pub global: bool,
}

/// The `X-RateLimit-Scope` of a 429.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitScope {
    /// A per-route limit of this bot.
    User,
    /// The global limit.
    Global,
    /// A per-resource limit (not counted as an invalid request).
    Shared,
}

impl RateLimitScope {
    /// The header value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Global => "global",
            Self::Shared => "shared",
        }
    }
}

/// One injected interaction and how the client answered it.
///
/// In JSON: `{"id": "…", "name": "ping", "type": 2, "guild_id": "…",
/// "channel_id": "…", "sessions": 1, "dispatched_at_ms": 10.0,
/// "answered_at_ms": 25.0, "callback_type": 4, "within_3s": true,
/// "data": {…}, "followups": 0, "edits": 0, "rejected_callbacks": 0}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InteractionRecord {
    /// The interaction's id.
    #[serde(serialize_with = "as_string")]
    pub id: u64,
    /// The command name (the `custom_id` for components and modals).
    pub name: String,
    /// The interaction type (2 command, 3 component, 4 autocomplete, 5 modal submit).
    #[serde(rename = "type")]
    pub kind: u8,
    /// Its guild.
    #[serde(serialize_with = "as_string")]
    pub guild_id: GuildId,
    /// Its channel.
    #[serde(serialize_with = "as_string")]
    pub channel_id: u64,
    /// How many sessions INTERACTION_CREATE was queued on.
    pub sessions: usize,
    /// When INTERACTION_CREATE was queued (`dispatched_at_ms` in JSON).
    #[serde(rename = "dispatched_at_ms", serialize_with = "as_ms")]
    pub dispatched_at: Duration,
    /// When the first accepted callback came (`answered_at_ms` in JSON).
    #[serde(rename = "answered_at_ms", serialize_with = "opt_as_ms")]
    pub answered_at: Option<Duration>,
    /// The `type` of that callback.
    pub callback_type: Option<u8>,
    /// Whether it came within
    /// [`interaction_deadline`](crate::SimConfig::interaction_deadline) (3 s,
    /// Discord's) of the dispatch; `false` while unanswered.
    pub within_3s: bool,
    /// The callback's `data` (`null` until answered or if it had none).
    pub data: Value,
    /// Follow-up messages created through `POST /webhooks/{application_id}/{token}`.
    pub followups: u32,
    /// Edits of the original response (`PATCH …/messages/@original`).
    pub edits: u32,
    /// Callbacks answered with an error after the interaction was found
    /// (a second callback, a late one, an invalid type or body).
    pub rejected_callbacks: u32,
}

/// A simulated Cloudflare ban: more than
/// [`invalid_request_limit`](crate::SimConfig::invalid_request_limit) 401,
/// 403 and 429 answers within one
/// [`invalid_request_window`](crate::SimConfig::invalid_request_window).
///
/// In JSON: `{"at_ms": 1.0, "until_ms": 600000.0, "invalid_requests": 10001}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BanRecord {
    /// When it began.
    #[serde(rename = "at_ms", serialize_with = "as_ms")]
    pub at: Duration,
    /// When it ends (the end of the invalid-request window).
    #[serde(rename = "until_ms", serialize_with = "as_ms")]
    pub until: Duration,
    /// The invalid requests counted in the window when it began.
    pub invalid_requests: u32,
}

/// One websocket connection and what its client sent.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionLog {
    /// The connection's number.
    pub id: ConnectionId,
    /// When it was accepted.
    #[serde(serialize_with = "as_ms")]
    pub opened_at: Duration,
    /// Whether the client connected to the `resume_gateway_url` (path `/resume`).
    pub via_resume_url: bool,
    /// The query string of the upgrade request.
    pub query: String,
    /// The transport compression the `compress` query parameter asked for
    /// (`none` without one, and for a value the sim does not support, which
    /// it closes with 1003).
    pub compression: Compression,
    /// Whether `compress=zlib-stream` was requested: `compression` is
    /// [`Compression::ZlibStream`] (kept for readers older than `compression`).
    pub zlib: bool,
    /// The shard of the session this connection identified or resumed.
    pub shard: Option<ShardInfo>,
    /// The session this connection identified or resumed.
    pub session_id: Option<SessionId>,
    /// What the client sent, in order.
    pub events: Vec<ClientEvent>,
    /// How the connection ended, once it has.
    pub closed: Option<Closed>,
    /// The most client payloads seen within any sliding
    /// [`command_window`](crate::SimConfig::command_window): every text or
    /// binary message counts (heartbeats included, websocket pings and close
    /// frames not), the way the sim's [`command_limit`](crate::SimConfig::command_limit)
    /// counts them. A client that keeps Discord's limit never gets this above
    /// 120 with the default window; the payload that is closed with 4008 is
    /// counted, so a rate-limited connection shows `command_limit + 1`.
    pub max_in_window: u32,
}

/// One thing a client sent.
#[derive(Clone, Debug, Serialize)]
pub struct ClientEvent {
    /// When the server read it.
    #[serde(serialize_with = "as_ms")]
    pub at: Duration,
    /// What it was.
    #[serde(flatten)]
    pub kind: ClientEventKind,
}

/// What a client sent.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientEventKind {
    /// Op 1 with the sequence number the client reported.
    Heartbeat {
        /// The `d` of the heartbeat.
        seq: Option<Seq>,
    },
    /// Op 2.
    Identify {
        /// The `shard` field, if any.
        shard: Option<ShardInfo>,
        /// The `intents` field.
        intents: u64,
    },
    /// Op 6.
    Resume {
        /// The `session_id` field.
        session_id: String,
        /// The `seq` field.
        seq: Option<Seq>,
    },
    /// Any other valid opcode (3, 4, 8, 31, 43), with its data.
    Command {
        /// The opcode.
        op: u8,
        /// The `d` field.
        d: Value,
    },
    /// A payload the server rejected (bad JSON, too large, unknown opcode…).
    Rejected {
        /// Why.
        reason: String,
    },
    /// A websocket close frame from the client.
    Close {
        /// Its code, if it had one.
        code: Option<u16>,
        /// Its reason.
        reason: String,
    },
}

/// Who ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Closer {
    /// The client sent a close frame.
    Client,
    /// The client's TCP connection ended without a close frame.
    ClientDropped,
    /// The server sent a close frame.
    Server,
    /// The server dropped the TCP connection (the Drop fault, or shutdown).
    ServerDropped,
}

/// How a connection ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Closed {
    /// When.
    #[serde(serialize_with = "as_ms")]
    pub at: Duration,
    /// Who closed.
    pub by: Closer,
    /// The close code, if there was a close frame with one.
    pub code: Option<u16>,
    /// The close reason.
    pub reason: String,
}

/// An Identify as the rate limiter saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdentifyRecord {
    /// When.
    #[serde(serialize_with = "as_ms")]
    pub at: Duration,
    /// On which connection.
    pub connection: ConnectionId,
    /// The shard it asked for (`[0, 1]` if it sent none).
    pub shard: ShardInfo,
    /// Its rate-limit bucket, `shard.id % max_concurrency`.
    pub bucket: u32,
    /// What the server answered.
    pub outcome: IdentifyOutcome,
}

/// What the server answered to an Identify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum IdentifyOutcome {
    /// READY with this session.
    Ready {
        /// The new session.
        session_id: SessionId,
    },
    /// Op 9 `false`: too early for its bucket (also in [`SimLog::bucket_violations`]).
    RateLimited,
    /// Closed: the session start limit was exhausted.
    SessionLimitExhausted,
}

/// An Identify that came less than `identify_window` after the previous
/// accepted one in the same bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BucketViolation {
    /// When.
    #[serde(serialize_with = "as_ms")]
    pub at: Duration,
    /// On which connection.
    pub connection: ConnectionId,
    /// The shard it asked for.
    pub shard: ShardInfo,
    /// Its bucket.
    pub bucket: u32,
    /// How long after the bucket's previous accepted Identify it came.
    #[serde(serialize_with = "as_ms")]
    pub since_previous: Duration,
}

/// A Resume and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResumeRecord {
    /// When.
    #[serde(serialize_with = "as_ms")]
    pub at: Duration,
    /// On which connection.
    pub connection: ConnectionId,
    /// Whether that connection came in on the `resume_gateway_url`.
    pub via_resume_url: bool,
    /// The session it asked for.
    pub session_id: String,
    /// The last seq the client said it had.
    pub seq: Option<Seq>,
    /// What the server answered.
    pub outcome: ResumeOutcome,
}

/// What the server answered to a Resume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ResumeOutcome {
    /// The missed dispatches were replayed, then RESUMED.
    Resumed {
        /// How many dispatches were replayed (RESUMED not counted).
        replayed: u64,
    },
    /// Op 9 `false`: unknown, expired or invalidated session.
    UnknownSession,
    /// Op 9 `false`: the seq is older than the replay buffer holds.
    SeqNotBuffered,
    /// Closed with 4007: the seq is ahead of the session.
    InvalidSeq,
}

impl SimLog {
    /// The connections whose session is for shard id `shard` (any total).
    pub fn connections_for_shard(&self, shard: u32) -> impl Iterator<Item = &ConnectionLog> {
        self.connections
            .iter()
            .filter(move |c| c.shard.is_some_and(|s| s.id == shard))
    }

    /// The Identify records of rate-limit bucket `bucket`.
    pub fn identifies_in_bucket(&self, bucket: u32) -> impl Iterator<Item = &IdentifyRecord> {
        self.identifies.iter().filter(move |i| i.bucket == bucket)
    }

    /// The accepted Identifies (those that got READY).
    pub fn ready_identifies(&self) -> impl Iterator<Item = &IdentifyRecord> {
        self.identifies
            .iter()
            .filter(|i| matches!(i.outcome, IdentifyOutcome::Ready { .. }))
    }

    /// The heartbeat seqs received on connections of shard id `shard`, in order.
    pub fn heartbeats_for_shard(&self, shard: u32) -> Vec<Option<Seq>> {
        self.connections_for_shard(shard)
            .flat_map(|c| c.events.iter())
            .filter_map(|e| match e.kind {
                ClientEventKind::Heartbeat { seq } => Some(seq),
                _ => None,
            })
            .collect()
    }

    /// The connection with this id.
    #[must_use]
    pub fn connection(&self, id: ConnectionId) -> Option<&ConnectionLog> {
        self.connections.iter().find(|c| c.id == id)
    }

    /// The REST requests to `route`, a method and path template such as
    /// `POST /channels/{channel_id}/messages`.
    pub fn requests_to<'a>(&'a self, route: &'a str) -> impl Iterator<Item = &'a RequestRecord> {
        self.requests.iter().filter(move |r| r.route == route)
    }

    /// The REST requests answered with `status`.
    pub fn responses_with_status(&self, status: u16) -> impl Iterator<Item = &RequestRecord> {
        self.requests.iter().filter(move |r| r.status == status)
    }

    /// The REST requests answered with 429 (any scope).
    pub fn responses_429(&self) -> impl Iterator<Item = &RequestRecord> {
        self.responses_with_status(429)
    }

    /// The interaction with this id.
    #[must_use]
    pub fn interaction(&self, id: u64) -> Option<&InteractionRecord> {
        self.interactions.iter().find(|i| i.id == id)
    }

    /// The mutable record of interaction `id`.
    pub(crate) fn interaction_mut(&mut self, id: u64) -> Option<&mut InteractionRecord> {
        self.interactions.iter_mut().rev().find(|i| i.id == id)
    }

    /// The mutable entry of connection `id` (the sim appends through this).
    pub(crate) fn connection_mut(&mut self, id: ConnectionId) -> Option<&mut ConnectionLog> {
        // Connections are pushed in id order, so a binary search finds them.
        self.connections
            .binary_search_by_key(&id, |c| c.id)
            .ok()
            .and_then(|i| self.connections.get_mut(i))
    }
}
