//! The HTTP side: the REST API under `/api/v10` (in `rest/`), uploaded
//! files under `/attachments/`, the websocket endpoints (`/` and the resume
//! URL `/resume`) and the JSON control API under `/sim/`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::connection::{self, ConnParams};
use crate::error::SimError;
use crate::fault::{Fault, FaultTarget};
use crate::ids::GuildId;
use crate::rest::{self, InteractionType, NewInteraction};
use crate::shared::Shared;
use crate::sim::Sim;

/// Build the router.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(gateway))
        .route("/resume", get(resume))
        .route("/resume/", get(resume))
        .route("/api/v10/{*path}", any(rest::serve))
        .route(
            "/attachments/{channel_id}/{attachment_id}/{filename}",
            get(rest::attachment),
        )
        .route("/sim/dispatch", post(post_dispatch))
        .route("/sim/interaction", post(post_interaction))
        .route("/sim/fault", post(post_fault))
        .route("/sim/reshard", post(post_reshard))
        .route("/sim/traffic", post(post_traffic))
        .route("/sim/log", get(get_log))
        .route("/sim/stats", get(get_stats))
        .with_state(shared)
}

/// Upgrade to a gateway connection.
fn upgrade(
    shared: Arc<Shared>,
    ws: WebSocketUpgrade,
    query: Option<String>,
    via_resume_url: bool,
) -> Response {
    let tracker = shared.tracker.clone();
    // Clients send small payloads: a 4 KiB read buffer, not tungstenite's
    // 128 KiB, which it zeroes on every read attempt.
    ws.max_message_size(1 << 20)
        .max_frame_size(1 << 20)
        .read_buffer_size(4096)
        .on_upgrade(move |socket| {
            tracker.track_future(connection::run(
                shared,
                socket,
                ConnParams {
                    via_resume_url,
                    query: query.unwrap_or_default(),
                },
            ))
        })
}

/// `GET /` (websocket).
async fn gateway(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(shared, ws, q, false)
}

/// `GET /resume` (websocket, the `resume_gateway_url`).
async fn resume(
    State(shared): State<Arc<Shared>>,
    RawQuery(q): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(shared, ws, q, true)
}

/// A Discord-style JSON error.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({ "message": message, "code": code }))).into_response()
}

/// Parse a JSON request body (any or no `Content-Type`, so plain `curl -d` works).
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

/// The 400 answer to a body that does not parse.
fn bad_body(e: &serde_json::Error) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        50_109,
        &format!("invalid JSON body: {e}"),
    )
}

/// A guild id as a JSON string or number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Snowflake {
    /// `"123"`.
    Str(String),
    /// `123`.
    Num(u64),
}

impl Snowflake {
    fn get(&self) -> Option<u64> {
        match self {
            Self::Str(s) => s.parse().ok(),
            Self::Num(n) => Some(*n),
        }
    }
}

/// The body of `POST /sim/dispatch`.
#[derive(Debug, Deserialize)]
struct DispatchRequest {
    /// The event type, e.g. `MESSAGE_CREATE`.
    #[serde(alias = "t")]
    event: String,
    /// The event data.
    #[serde(alias = "d", default)]
    data: Value,
    /// Route by guild (the shard formula)…
    guild_id: Option<Snowflake>,
    /// …or to a shard id.
    shard: Option<u32>,
}

/// `POST /sim/dispatch`.
async fn post_dispatch(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: DispatchRequest = match parse(&body) {
        Ok(req) => req,
        Err(e) => return bad_body(&e),
    };
    let sim = Sim::from_shared(shared);
    let sessions = match (req.guild_id.as_ref().map(Snowflake::get), req.shard) {
        (Some(Some(g)), None) => sim.dispatch(GuildId(g), &req.event, req.data),
        (None, Some(s)) => sim.dispatch_to_shard(s, &req.event, req.data),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                50_035,
                "give exactly one of guild_id (a snowflake) or shard",
            );
        }
    };
    Json(json!({ "sessions": sessions })).into_response()
}

/// The body of `POST /sim/interaction`.
#[derive(Debug, Deserialize)]
struct InteractionRequest {
    /// The guild.
    guild_id: Snowflake,
    /// The channel (the guild's first text channel if absent).
    channel_id: Option<Snowflake>,
    /// The command name, or the `custom_id` of a component or modal.
    name: String,
    /// Options, component values or modal components.
    #[serde(default)]
    options: Vec<Value>,
    /// The interaction type: 2 (default) command, 3 component, 4
    /// autocomplete, 5 modal submit.
    #[serde(rename = "type", default = "command_type")]
    kind: u8,
    /// The invoking member (the guild's first non-bot member if absent).
    user_id: Option<Snowflake>,
}

/// The default `type` of `POST /sim/interaction`.
const fn command_type() -> u8 {
    2
}

/// `POST /sim/interaction`.
async fn post_interaction(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: InteractionRequest = match parse(&body) {
        Ok(req) => req,
        Err(e) => return bad_body(&e),
    };
    let id = |s: &Option<Snowflake>| s.as_ref().map(|s| s.get().ok_or(()));
    let (Some(guild), Ok(channel), Ok(user)) = (
        req.guild_id.get(),
        id(&req.channel_id).transpose(),
        id(&req.user_id).transpose(),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            50_035,
            "guild_id, channel_id and user_id must be snowflakes",
        );
    };
    let Some(kind) = InteractionType::from_code(req.kind) else {
        return error(
            StatusCode::BAD_REQUEST,
            50_035,
            "type must be 2 (command), 3 (component), 4 (autocomplete) or 5 (modal submit)",
        );
    };
    let new = NewInteraction {
        guild: GuildId(guild),
        channel,
        kind,
        name: req.name,
        options: req.options,
        user,
    };
    match Sim::from_shared(shared).inject_interaction(new) {
        Ok(i) => Json(json!({
            "id": i.id.to_string(),
            "token": i.token,
            "sessions": i.sessions,
        }))
        .into_response(),
        Err(e @ SimError::Unknown { .. }) => error(StatusCode::NOT_FOUND, 0, &e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, 0, &e.to_string()),
    }
}

/// The body of `POST /sim/fault`.
#[derive(Debug, Deserialize)]
struct FaultRequest {
    /// A shard id; absent (or `"all": true`) means every connection.
    shard: Option<u32>,
    /// Explicitly every connection.
    #[serde(default)]
    all: bool,
    /// reconnect, invalid_session, drop, zombie, close, malformed,
    /// unknown_opcode, unknown_dispatch, stall, heartbeat_request.
    kind: String,
    /// For invalid_session.
    #[serde(default)]
    resumable: bool,
    /// For close.
    code: Option<u16>,
    /// For stall, in milliseconds.
    ms: Option<u64>,
}

/// `POST /sim/fault`.
async fn post_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: FaultRequest = match parse(&body) {
        Ok(req) => req,
        Err(e) => return bad_body(&e),
    };
    let fault = match req.kind.as_str() {
        "reconnect" => Fault::Reconnect,
        "invalid_session" => Fault::InvalidSession {
            resumable: req.resumable,
        },
        "drop" => Fault::Drop,
        "zombie" => Fault::Zombie,
        "close" => match req.code {
            Some(code) => Fault::Close(code),
            None => return error(StatusCode::BAD_REQUEST, 50_035, "close needs a code"),
        },
        "malformed" => Fault::Malformed,
        "unknown_opcode" => Fault::UnknownOpcode,
        "unknown_dispatch" => Fault::UnknownDispatch,
        "stall" => Fault::Stall(Duration::from_millis(req.ms.unwrap_or(1000))),
        "heartbeat_request" => Fault::HeartbeatRequest,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                50_035,
                &format!("unknown fault kind {other:?}"),
            );
        }
    };
    let target = match (req.shard, req.all) {
        (Some(s), false) => FaultTarget::Shard(s),
        _ => FaultTarget::All,
    };
    let n = Sim::from_shared(shared).fault(target, fault);
    Json(json!({ "connections": n })).into_response()
}

/// The body of `POST /sim/reshard`.
#[derive(Debug, Deserialize)]
struct ReshardRequest {
    /// The new shard count.
    shards: u32,
}

/// `POST /sim/reshard`.
async fn post_reshard(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: ReshardRequest = match parse(&body) {
        Ok(req) => req,
        Err(e) => return bad_body(&e),
    };
    match Sim::from_shared(shared).reshard(req.shards) {
        Ok(()) => Json(json!({ "shards": req.shards })).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, 50_035, &e.to_string()),
    }
}

/// The body of `POST /sim/traffic`.
#[derive(Debug, Deserialize)]
struct TrafficRequest {
    /// Messages per second; 0 stops, absent or `null` means unlimited.
    rate: Option<f64>,
}

/// `POST /sim/traffic`.
async fn post_traffic(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: TrafficRequest = match parse(&body) {
        Ok(req) => req,
        Err(e) => return bad_body(&e),
    };
    let rate = req.rate.unwrap_or(f64::INFINITY);
    if rate.is_nan() || rate < 0.0 {
        return error(
            StatusCode::BAD_REQUEST,
            50_035,
            "rate must be a non-negative number",
        );
    }
    Sim::from_shared(shared).start_traffic(rate);
    Json(json!({ "rate": if rate.is_finite() { json!(rate) } else { Value::Null } }))
        .into_response()
}

/// `GET /sim/log`.
async fn get_log(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.log_snapshot()).into_response()
}

/// `GET /sim/stats`.
async fn get_stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.stats()).into_response()
}
