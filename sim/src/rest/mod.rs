//! The REST side: Discord's HTTP API v10 under `/api/v10`, as far as a bot
//! library's tests need it (messages, reactions, channels, guilds, members,
//! the current user, application commands, interactions), with Discord's
//! JSON error shapes, rate-limit headers, 429s, global limit and
//! invalid-request ban.
//!
//! Every request goes through one pipeline ([`serve`]):
//!
//! 1. a client banned for too many invalid requests gets 403;
//! 2. the bot token is checked (`Authorization: Bot <token>`; not for
//!    `GET /gateway` and the interaction endpoints, which Discord
//!    authenticates by the token in their path) — 401 otherwise;
//! 3. the global limit (not for interaction endpoints) — 429 `global: true`;
//! 4. an unknown path gets 404;
//! 5. the route's bucket — 429 with scope `user` or `shared`;
//! 6. the handler; the answer carries the bucket's `X-RateLimit-*` headers;
//! 7. 401, 403 and 429 answers (not shared ones) count as invalid requests;
//! 8. dispatches the request caused (MESSAGE_CREATE and so on) are queued,
//!    then the request is logged in [`SimLog::requests`](crate::SimLog::requests).

mod error;
mod interactions;
mod limits;
mod messages;
mod multipart;
mod route;
mod routes;
mod store;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

use self::error::RestError;
use self::limits::{Limiter, Take};
use self::messages::Upload;
use self::route::Route;
use self::store::Store;
use crate::ids::GuildId;
use crate::log::{BanRecord, RateLimitScope, RequestRecord};
use crate::shared::Shared;

pub(crate) use self::interactions::inject;
pub use self::interactions::{InjectedInteraction, InteractionType, NewInteraction};
pub use self::limits::{RestLimits, RouteLimit};

/// The largest request body read (Discord allows 25 MiB of files for
/// boosted guilds; with the form around them).
const MAX_BODY: usize = 32 << 20;

/// The most file bytes per message, as for a guild without boosts (10 MiB).
pub(crate) const MAX_UPLOAD: usize = 10 << 20;

/// The REST API's state: counters and memory, each behind its own lock
/// (never held across an await, never both at once).
#[derive(Debug)]
pub(crate) struct Rest {
    /// Rate limits, the global limit and the invalid-request count.
    limiter: Mutex<Limiter>,
    /// Messages, files, commands, interactions.
    store: Mutex<Store>,
}

impl Rest {
    /// Empty state for a sim starting now.
    pub(crate) fn new() -> Self {
        Self {
            limiter: Mutex::new(Limiter::default()),
            store: Mutex::new(Store::new()),
        }
    }

    /// Lock the counters.
    fn limiter(&self) -> MutexGuard<'_, Limiter> {
        self.limiter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lock the memory.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A dispatch a request caused.
#[derive(Debug)]
pub(crate) struct Dispatch {
    /// The guild whose shard gets it (shard 0 if none).
    guild: Option<GuildId>,
    /// The event type.
    event: &'static str,
    /// Its data.
    data: Value,
}

/// A handler's answer.
#[derive(Debug)]
pub(crate) struct Reply {
    /// The status.
    status: StatusCode,
    /// The JSON body, if any.
    body: Option<Value>,
    /// What to dispatch before answering.
    dispatches: Vec<Dispatch>,
}

impl Reply {
    /// 200 with a JSON body.
    pub(crate) fn json(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            dispatches: Vec::new(),
        }
    }

    /// A status without a body (204).
    pub(crate) fn status(status: StatusCode) -> Self {
        Self {
            status,
            body: None,
            dispatches: Vec::new(),
        }
    }

    /// Also dispatch `event` with `data` to the shard of `guild`.
    pub(crate) fn dispatch(
        mut self,
        guild: Option<GuildId>,
        event: &'static str,
        data: Value,
    ) -> Self {
        self.dispatches.push(Dispatch { guild, event, data });
        self
    }
}

/// A request body: JSON, or the `payload_json` and files of a form.
#[derive(Debug)]
pub(crate) struct ParsedBody {
    /// The JSON (`null` for an empty body).
    json: Value,
    /// The files, in form order.
    files: Vec<Upload>,
}

/// What a handler gets.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// The sim.
    shared: &'a Shared,
    /// The route.
    route: &'a Route,
    /// The raw query string.
    query: Option<&'a str>,
    /// The request headers.
    headers: &'a HeaderMap,
    /// The body, or why it could not be read.
    body: &'a Result<Bytes, RestError>,
}

impl Request<'_> {
    /// The body as JSON or a form.
    fn body(&self) -> Result<ParsedBody, RestError> {
        let body = match self.body {
            Ok(b) => b,
            Err(_) => return Err(RestError::TooLarge),
        };
        parse_body(self.headers, body)
    }

    /// A query parameter's (undecoded) value.
    fn query_param(&self, key: &str) -> Option<&str> {
        self.query?
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

/// `files[n]` → `n`.
fn file_index(name: &str) -> Option<usize> {
    name.strip_prefix("files[")?.strip_suffix(']')?.parse().ok()
}

/// Read a body by its content type: a `multipart/form-data` form (with
/// `payload_json` and `files[n]`), or JSON.
fn parse_body(headers: &HeaderMap, body: &Bytes) -> Result<ParsedBody, RestError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match multipart::boundary(content_type) {
        Some(Err(_)) => Err(RestError::BadRequest),
        Some(Ok(boundary)) => {
            let parts = multipart::parse(body, &boundary).map_err(|_| RestError::BadRequest)?;
            let mut json = Value::Null;
            let mut files = Vec::new();
            for (pos, p) in parts.into_iter().enumerate() {
                if p.name == "payload_json" {
                    json = serde_json::from_slice(&p.data).map_err(|_| RestError::InvalidJson)?;
                } else if let Some(index) =
                    file_index(&p.name).or(p.filename.is_some().then_some(pos))
                {
                    files.push(Upload {
                        index,
                        filename: p.filename,
                        content_type: p.content_type,
                        data: p.data,
                    });
                }
            }
            if files.iter().map(|f| f.data.len()).sum::<usize>() > MAX_UPLOAD {
                return Err(RestError::TooLarge);
            }
            Ok(ParsedBody { json, files })
        }
        None if body.iter().all(u8::is_ascii_whitespace) => Ok(ParsedBody {
            json: Value::Null,
            files: Vec::new(),
        }),
        None => Ok(ParsedBody {
            json: serde_json::from_slice(body).map_err(|_| RestError::InvalidJson)?,
            files: Vec::new(),
        }),
    }
}

/// Whole milliseconds, rounded up, as seconds: a client waiting this long
/// is never early.
fn ceil_ms(d: Duration) -> Duration {
    let ms = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Seconds with three decimals.
fn secs3(d: Duration) -> String {
    let d = ceil_ms(d);
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// A bucket's state after a request, for the headers.
#[derive(Debug)]
struct BucketState {
    /// `X-RateLimit-Bucket`.
    id: String,
    /// `X-RateLimit-Limit`.
    limit: u32,
    /// `X-RateLimit-Remaining`.
    remaining: u32,
    /// `X-RateLimit-Reset-After`.
    reset_after: Duration,
}

/// Set a header from a string (values the sim builds are always valid).
fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// Add the bucket headers.
fn bucket_headers(headers: &mut HeaderMap, b: &BucketState) {
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + ceil_ms(b.reset_after);
    set(headers, "x-ratelimit-limit", &b.limit.to_string());
    set(headers, "x-ratelimit-remaining", &b.remaining.to_string());
    set(headers, "x-ratelimit-reset", &secs3(reset));
    set(headers, "x-ratelimit-reset-after", &secs3(b.reset_after));
    set(headers, "x-ratelimit-bucket", &b.id);
}

/// A JSON response.
fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A 429 with Discord's body and `Retry-After` (whole seconds, rounded up).
fn too_many(retry_after: Duration, scope: RateLimitScope) -> Response {
    let retry = ceil_ms(retry_after);
    let global = scope == RateLimitScope::Global;
    let mut r = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({
            "message": "You are being rate limited.",
            "retry_after": retry.as_secs_f64(),
            "global": global,
        }),
    );
    let h = r.headers_mut();
    let whole = retry.as_millis().div_ceil(1000);
    if let Ok(v) = HeaderValue::from_str(&whole.to_string()) {
        h.insert(RETRY_AFTER, v);
    }
    set(h, "x-ratelimit-scope", scope.as_str());
    if global {
        set(h, "x-ratelimit-global", "true");
    }
    r
}

/// Whether `headers` carry the sim's bot token.
fn authorized(shared: &Shared, headers: &HeaderMap, revoked: bool) -> bool {
    let auth = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    !revoked
        && auth
            .strip_prefix("Bot ")
            .is_some_and(|t| t == shared.config.token)
}

/// Why the pipeline answered before the handler.
#[derive(Debug)]
enum Stop {
    /// Banned for too many invalid requests: 403.
    Banned,
    /// An early error (401, 404).
    Error(RestError),
    /// A 429; the bucket's state for its headers (none for the global limit).
    Limited {
        /// Until the window ends.
        retry_after: Duration,
        /// Its scope.
        scope: RateLimitScope,
        /// The exhausted bucket.
        bucket: Option<BucketState>,
    },
}

impl Stop {
    /// The answer.
    fn response(&self) -> Response {
        match self {
            Self::Banned => json_response(
                StatusCode::FORBIDDEN,
                &json!({ "message": "banned (simulated Cloudflare)", "code": 0 }),
            ),
            Self::Error(e) => error_response(e),
            Self::Limited {
                retry_after,
                scope,
                bucket,
            } => {
                let mut r = too_many(*retry_after, *scope);
                if let Some(b) = bucket {
                    bucket_headers(r.headers_mut(), b);
                }
                r
            }
        }
    }
}

/// Steps 1–5 of the pipeline: the bucket the request was counted in (if
/// its route has one), or why it is answered now.
fn gate(
    shared: &Shared,
    limiter: &mut Limiter,
    route: Option<&Route>,
    headers: &HeaderMap,
    revoked: bool,
    now: Instant,
    record: &mut RequestRecord,
) -> Result<Option<BucketState>, Stop> {
    let config = &shared.config;
    if limiter.banned(now).is_some() {
        return Err(Stop::Banned);
    }
    if route.is_none_or(Route::needs_auth) && !authorized(shared, headers, revoked) {
        return Err(Stop::Error(RestError::Unauthorized));
    }
    if !route.is_some_and(Route::is_interaction)
        && let Take::Limited { retry_after } = limiter.take_global(config.global_limit, now)
    {
        record.scope = Some(RateLimitScope::Global);
        record.global = true;
        return Err(Stop::Limited {
            retry_after,
            scope: RateLimitScope::Global,
            bucket: None,
        });
    }
    let Some(route) = route else {
        return Err(Stop::Error(RestError::NoRoute));
    };
    let Some(group) = route.group() else {
        return Ok(None);
    };
    let limit = config.rest_limits.of(group);
    let major = route.major().unwrap_or_default();
    let id = group.bucket_id();
    record.bucket = Some(id.clone());
    record.limit = Some(limit.limit);
    match limiter.take_route(group, &major, &config.rest_limits, now) {
        Take::Allowed {
            remaining,
            reset_after,
        } => {
            record.remaining = Some(remaining);
            Ok(Some(BucketState {
                id,
                limit: limit.limit,
                remaining,
                reset_after,
            }))
        }
        Take::Limited { retry_after } => {
            let scope = if limit.shared {
                RateLimitScope::Shared
            } else {
                RateLimitScope::User
            };
            record.remaining = Some(0);
            record.scope = Some(scope);
            Err(Stop::Limited {
                retry_after,
                scope,
                bucket: Some(BucketState {
                    id,
                    limit: limit.limit,
                    remaining: 0,
                    reset_after: retry_after,
                }),
            })
        }
    }
}

/// A [`RestError`] as Discord's JSON error.
fn error_response(e: &RestError) -> Response {
    json_response(e.status(), &e.body())
}

/// `/api/v10/{*path}`: every REST request.
pub(crate) async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| RestError::TooLarge);
    let path = uri.path().strip_prefix("/api/v10").unwrap_or(uri.path());
    let route = Route::parse(&method, path);
    let mut record = RequestRecord {
        at: Duration::ZERO,
        method: method.to_string(),
        route: route.as_ref().map_or_else(
            || format!("{method} (unknown)"),
            |r| r.template().to_owned(),
        ),
        path: path.to_owned(),
        bucket: None,
        major: route.as_ref().and_then(Route::major),
        status: 0,
        remaining: None,
        limit: None,
        scope: None,
        global: false,
    };
    let now = Instant::now();
    let revoked = shared.state().token_revoked;
    let gated = {
        let mut limiter = shared.rest.limiter();
        gate(
            &shared,
            &mut limiter,
            route.as_ref(),
            &headers,
            revoked,
            now,
            &mut record,
        )
    };
    let banned_answer = matches!(gated, Err(Stop::Banned));
    let (response, dispatches) = match (gated, route.as_ref()) {
        (Err(stop), _) => (stop.response(), Vec::new()),
        (Ok(bucket), Some(route)) => {
            let req = Request {
                shared: &shared,
                route,
                query: uri.query(),
                headers: &headers,
                body: &body,
            };
            let (mut r, dispatches) = match routes::handle(&req) {
                Ok(reply) => {
                    let r = match &reply.body {
                        Some(b) => json_response(reply.status, b),
                        None => reply.status.into_response(),
                    };
                    (r, reply.dispatches)
                }
                Err(e) => (error_response(&e), Vec::new()),
            };
            if let Some(b) = &bucket {
                bucket_headers(r.headers_mut(), b);
            }
            (r, dispatches)
        }
        // The gate answers every request without a route.
        (Ok(_), None) => (error_response(&RestError::NoRoute), Vec::new()),
    };
    let status = response.status();
    record.status = status.as_u16();
    let invalid = matches!(status.as_u16(), 401 | 403 | 429)
        && record.scope != Some(RateLimitScope::Shared)
        && !banned_answer;
    let ban = if invalid {
        shared.rest.limiter().record_invalid(
            now,
            shared.config.invalid_request_limit,
            shared.config.invalid_request_window,
        )
    } else {
        None
    };
    for d in dispatches {
        match d.guild {
            Some(g) => shared.dispatch_where(d.event, true, &d.data, |s| s.shard.owns(g)),
            None => shared.dispatch_where(d.event, false, &d.data, |s| s.shard.id == 0),
        };
    }
    let at = shared.elapsed();
    record.at = at;
    shared.log_with(|log| {
        if let Some((length, count)) = ban {
            tracing::warn!(
                invalid_requests = count,
                ban_ms = length.as_millis(),
                "too many invalid REST requests: simulating a Cloudflare ban"
            );
            log.bans.push(BanRecord {
                at,
                until: at + length,
                invalid_requests: count,
            });
        }
        log.requests.push(record);
    });
    response
}

/// `GET /attachments/{channel_id}/{attachment_id}/{filename}`: an uploaded
/// file, as Discord's CDN serves it (no token needed).
pub(crate) async fn attachment(
    State(shared): State<Arc<Shared>>,
    Path((_channel, id, filename)): Path<(String, String, String)>,
) -> Response {
    let file = id
        .parse::<u64>()
        .ok()
        .and_then(|id| shared.rest.store().file(id).cloned())
        .filter(|f| f.filename == filename);
    match file {
        Some(f) => {
            let ty = f
                .content_type
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            let mut r = f.data.into_response();
            if let Ok(v) = HeaderValue::from_str(&ty) {
                r.headers_mut().insert(CONTENT_TYPE, v);
            }
            r
        }
        None => (StatusCode::NOT_FOUND, "404: Not Found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_round_up_to_milliseconds() {
        assert_eq!(secs3(Duration::from_micros(1)), "0.001");
        assert_eq!(secs3(Duration::from_millis(2500)), "2.500");
        assert_eq!(secs3(Duration::ZERO), "0.000");
    }

    #[test]
    fn bodies_by_content_type() {
        let mut h = HeaderMap::new();
        let b = parse_body(&h, &Bytes::from_static(b" ")).unwrap();
        assert!(b.json.is_null());
        assert!(matches!(
            parse_body(&h, &Bytes::from_static(b"{")),
            Err(RestError::InvalidJson)
        ));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("multipart/form-data; boundary=b"),
        );
        let form = Bytes::from_static(
            b"--b\r\nContent-Disposition: form-data; name=\"payload_json\"\r\n\r\n{\"content\":\"x\"}\r\n\
--b\r\nContent-Disposition: form-data; name=\"files[3]\"; filename=\"a.txt\"\r\n\r\nabc\r\n--b--\r\n",
        );
        let b = parse_body(&h, &form).unwrap();
        assert_eq!(b.json["content"], "x");
        assert_eq!((b.files[0].index, &b.files[0].data[..]), (3, &b"abc"[..]));
        assert!(matches!(
            parse_body(&h, &Bytes::from_static(b"junk")),
            Err(RestError::BadRequest)
        ));
    }
}
