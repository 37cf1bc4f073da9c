//! The pooled HTTP client: how a request is built, paced and read.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::HttpError;
use super::ratelimit::{Headers, LimitConfig, Limiter, RouteKey, Verdict};
use crate::bus::BoxError;
use crate::model::{GatewayBot, Token};

/// Discord's API base, version 10.
pub const DISCORD_API: &str = "https://discord.com/api/v10";

/// The largest response body read.
const MAX_BODY: usize = 8 << 20;

/// How long one round trip may take unless [`Client::timeout`] says
/// otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A REST client: one connection pool, one token, one API base, and one
/// rate limiter that keeps Discord's limits exactly (see
/// [`ratelimit`](super::ratelimit)).
///
/// Cheap to clone: clones share the pool and the limiter, so every clone
/// counts against the same buckets.
///
/// # Examples
///
/// ```no_run
/// use shardbus::http::Client;
///
/// # async fn run() -> Result<(), shardbus::http::HttpError> {
/// let http = Client::new("my token")?;
/// let bot = http.gateway_bot().await?;
/// println!("{} shards recommended", bot.shards);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    /// The connection pool (rustls; HTTP/2 where the server offers it
    /// through ALPN, else HTTP/1.1 keep-alive).
    pool: Pool<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The bot token.
    token: Token,
    /// `Bot <token>`, built once and marked sensitive (hyper never logs
    /// it); `None` if the token cannot be a header value.
    authorization: Option<http::HeaderValue>,
    /// The API base, without a trailing slash.
    api_base: String,
    /// The rate limiter, shared by every clone.
    limiter: Arc<Limiter>,
    /// How long one round trip may take.
    timeout: Duration,
}

/// One request, as the endpoints describe it.
#[derive(Debug)]
pub(crate) struct Request {
    /// The method.
    pub(crate) method: http::Method,
    /// The method and path template, e.g. `POST /channels/{channel_id}/messages`.
    pub(crate) route: &'static str,
    /// The path after the API base.
    pub(crate) path: String,
    /// The major parameter's value, if the route has one.
    pub(crate) major: String,
    /// The body and its content type.
    pub(crate) body: Option<(Bytes, String)>,
    /// Whether the route is exempt from the global limit (interactions).
    pub(crate) exempt: bool,
    /// The limiter's name for routes known to share one bucket before
    /// Discord has named it (own reactions, put and taken away), instead
    /// of `route`.
    pub(crate) family: Option<&'static str>,
}

impl Request {
    /// A request without a body.
    pub(crate) fn new(
        method: http::Method,
        route: &'static str,
        path: String,
        major: impl Into<String>,
    ) -> Self {
        Self {
            method,
            route,
            path,
            major: major.into(),
            body: None,
            exempt: false,
            family: None,
        }
    }

    /// Limited as `family` (see [`Request::family`]).
    pub(crate) fn family(mut self, family: &'static str) -> Self {
        self.family = Some(family);
        self
    }

    /// With `value` as a JSON body.
    pub(crate) fn json(mut self, value: &impl serde::Serialize) -> Result<Self, HttpError> {
        let body = serde_json::to_vec(value).map_err(|e| HttpError::Build {
            route: self.route,
            source: Box::new(e),
        })?;
        self.body = Some((Bytes::from(body), "application/json".to_owned()));
        Ok(self)
    }

    /// With a prepared body of `content_type`.
    pub(crate) fn body(mut self, body: Bytes, content_type: String) -> Self {
        self.body = Some((body, content_type));
        self
    }

    /// Exempt from the global limit.
    pub(crate) fn exempt(mut self) -> Self {
        self.exempt = true;
        self
    }
}

/// A 429's body.
#[derive(Deserialize)]
struct RateLimited {
    /// Seconds to wait.
    #[serde(default)]
    retry_after: Option<f64>,
    /// Whether the global limit was hit.
    #[serde(default)]
    global: bool,
}

impl Client {
    /// A client for `token` against Discord's API ([`DISCORD_API`]), with
    /// Discord's limits ([`LimitConfig::default`]).
    ///
    /// # Errors
    ///
    /// [`HttpError::Tls`] if the TLS configuration cannot be built.
    pub fn new(token: impl Into<String>) -> Result<Self, HttpError> {
        let tls = crate::tls::client_config().map_err(HttpError::Tls)?;
        let token = Token::new(token);
        let authorization = http::HeaderValue::from_str(&format!("Bot {}", token.expose()))
            .ok()
            .map(|mut value| {
                value.set_sensitive(true);
                value
            });
        Ok(Self {
            pool: pool((*tls).clone()),
            token,
            authorization,
            api_base: DISCORD_API.to_owned(),
            limiter: Arc::new(Limiter::new(LimitConfig::default())),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client against another API base (a simulator's
    /// `http://127.0.0.1:port/api/v10`).
    #[must_use]
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// The same client with another TLS configuration (for example one
    /// that trusts a proxy's or a test server's certificate), and a fresh
    /// connection pool. Its ALPN protocols are replaced by `h2` and
    /// `http/1.1`.
    #[must_use]
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.pool = pool(config);
        self
    }

    /// The same client with other limits (and a fresh limiter: set it
    /// before cloning).
    #[must_use]
    pub fn limits(mut self, config: LimitConfig) -> Self {
        self.limiter = Arc::new(Limiter::new(config));
        self
    }

    /// The same client with another timeout for one round trip (sending a
    /// request and reading its whole response; [`DEFAULT_TIMEOUT`] unless
    /// set). A request that times out fails with [`HttpError::Timeout`] and
    /// stays counted against its bucket, since Discord may have seen it.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The API base in use.
    pub fn base(&self) -> &str {
        &self.api_base
    }

    /// The limits in use.
    pub fn limit_config(&self) -> LimitConfig {
        self.limiter.config()
    }

    /// The 429 responses this client (and its clones) received: each one
    /// Discord's limits, or another process sharing the token, took it by
    /// surprise.
    pub fn responses_429(&self) -> u64 {
        self.limiter.limited_count()
    }

    /// Invalid responses (401, 403, non-shared 429) counted in the current
    /// window.
    pub fn invalid_requests(&self) -> u32 {
        self.limiter.invalid_count()
    }

    /// `GET /gateway/bot`: the recommended shard count, the gateway URL and
    /// the session start limit.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the route.
    pub async fn gateway_bot(&self) -> Result<GatewayBot, HttpError> {
        let request = Request::new(
            http::Method::GET,
            "GET /gateway/bot",
            "/gateway/bot".to_owned(),
            "",
        );
        self.send_json(request).await
    }

    /// Sends `request` and decodes the JSON response.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        request: Request,
    ) -> Result<T, HttpError> {
        let route = request.route;
        let body = self.send(request).await?;
        serde_json::from_slice(&body).map_err(|source| HttpError::Decode { route, source })
    }

    /// Sends `request` and ignores the response body (204s).
    pub(crate) async fn send_empty(&self, request: Request) -> Result<(), HttpError> {
        self.send(request).await.map(drop)
    }

    /// Sends `request` through the limiter, sending it again after a 429
    /// (within its turn, so the route's order holds); returns the body of
    /// a successful response.
    async fn send(&self, request: Request) -> Result<Bytes, HttpError> {
        let route = request.route;
        let key = RouteKey {
            route: request.family.unwrap_or(route),
            major: request.major.clone(),
        };
        let mut turn = self.limiter.acquire(&key, request.exempt).await?;
        let mut tries = 0;
        loop {
            let http_request = self.build(&request)?;
            turn.sending();
            let (status, headers, body) = self.round_trip(route, http_request).await?;
            let limited = (status == 429)
                .then(|| serde_json::from_slice::<RateLimited>(&body).ok())
                .flatten()
                .map(|r| (r.retry_after, r.global));
            let verdict = self
                .limiter
                .record(&key, &mut turn, status, &headers, limited);
            if verdict == Verdict::Retry && tries < super::MAX_RETRIES {
                tries += 1;
                self.limiter.ready(&mut turn, route, request.exempt).await?;
                continue;
            }
            drop(turn);
            if !(200..300).contains(&status) {
                return Err(status_error(route, status, &body));
            }
            return Ok(body);
        }
    }

    /// The HTTP request for `request`.
    fn build(&self, request: &Request) -> Result<http::Request<Full<Bytes>>, HttpError> {
        let route = request.route;
        let build = |e: BoxError| HttpError::Build { route, source: e };
        let url = format!("{}{}", self.api_base, request.path);
        let uri: http::Uri = url.parse().map_err(|e| HttpError::Url {
            route,
            source: Box::new(e),
        })?;
        // The token is not in the error: only that the header is invalid.
        let authorization = self
            .authorization
            .clone()
            .ok_or_else(|| build("the token is not a valid header value".into()))?;
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(uri)
            .header(http::header::AUTHORIZATION, authorization)
            .header(http::header::USER_AGENT, user_agent());
        let body = match &request.body {
            Some((body, content_type)) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type.as_str());
                body.clone()
            }
            None => Bytes::new(),
        };
        builder
            .body(Full::new(body))
            // The token is not in the error: only the header's name is.
            .map_err(|_| build("a header is not valid".into()))
    }

    /// One round trip, within the client's timeout: status, rate-limit
    /// headers and body.
    async fn round_trip(
        &self,
        route: &'static str,
        request: http::Request<Full<Bytes>>,
    ) -> Result<(u16, Headers, Bytes), HttpError> {
        let transport = |e: BoxError| HttpError::Transport { route, source: e };
        let exchange = async {
            let response = self
                .pool
                .request(request)
                .await
                .map_err(|e| transport(Box::new(e)))?;
            let status = response.status().as_u16();
            let headers = Headers::read(response.headers());
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(transport)?
                .to_bytes();
            Ok((status, headers, body))
        };
        let (status, headers, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| HttpError::Timeout {
                route,
                after: self.timeout,
            })??;
        tracing::trace!(route, status, "response");
        Ok((status, headers, body))
    }
}

/// A connection pool over `tls`: `https` offers HTTP/2 and HTTP/1.1
/// through ALPN and uses what the server picks (one multiplexed HTTP/2
/// connection, or HTTP/1.1 keep-alive connections); plain `http` (a
/// simulator) speaks HTTP/1.1.
fn pool(
    tls: rustls::ClientConfig,
) -> Pool<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .build();
    Pool::builder(TokioExecutor::new()).build(connector)
}

/// The user agent in Discord's documented form.
fn user_agent() -> http::HeaderValue {
    http::HeaderValue::from_static(concat!(
        "DiscordBot (https://github.com/shardbus/shardbus, ",
        env!("CARGO_PKG_VERSION"),
        ")"
    ))
}

/// The error for a non-success status, from Discord's JSON error body.
fn status_error(route: &'static str, status: u16, body: &[u8]) -> HttpError {
    #[derive(Deserialize)]
    struct ApiError {
        code: Option<u64>,
        message: Option<String>,
        errors: Option<serde_json::Value>,
    }
    let parsed = serde_json::from_slice::<ApiError>(body).ok();
    let code = parsed.as_ref().and_then(|e| e.code);
    let errors = parsed.as_ref().and_then(|e| e.errors.clone());
    let message = match parsed.and_then(|e| e.message) {
        Some(message) => message,
        None => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    };
    HttpError::Status {
        route,
        status,
        code,
        message,
        errors,
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("token", &self.token)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// Percent-encodes one path segment (an emoji, a token).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
