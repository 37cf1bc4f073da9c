//! The pooled HTTP client and its one route so far.

use std::fmt;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::HttpError;
use crate::model::{GatewayBot, Token};

/// Discord's API base, version 10.
pub const DISCORD_API: &str = "https://discord.com/api/v10";

/// The largest response body read (the routes here answer a few KB).
const MAX_BODY: usize = 8 << 20;

/// A REST client: one connection pool, one token, one API base.
///
/// Cheap to clone (the pool is shared).
///
/// # Examples
///
/// ```no_run
/// use shardbus::http::Client;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new(std::env::var("DISCORD_TOKEN")?)?;
/// let bot = client.gateway_bot().await?;
/// println!("{} shards recommended", bot.shards);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    /// The pool.
    pool: Pool<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    /// Sent as `Authorization: Bot <token>`.
    token: Token,
    /// Where routes are appended, without a trailing `/`.
    api_base: String,
}

impl Client {
    /// A client for Discord's API with `token` (a leading `Bot ` is
    /// removed).
    ///
    /// # Errors
    ///
    /// [`HttpError::Tls`] if the TLS configuration cannot be built.
    pub fn new(token: impl Into<String>) -> Result<Self, HttpError> {
        let tls = crate::tls::client_config().map_err(HttpError::Tls)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            pool: Pool::builder(TokioExecutor::new()).build(connector),
            token: Token::new(token),
            api_base: DISCORD_API.to_owned(),
        })
    }

    /// Another API base, e.g. a simulator's `http://127.0.0.1:port/api/v10`.
    pub fn api_base(mut self, base: impl Into<String>) -> Self {
        self.api_base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// The API base in use.
    pub fn base(&self) -> &str {
        &self.api_base
    }

    /// `GET /gateway/bot`: the gateway URL, the recommended shard count and
    /// the session start limit.
    ///
    /// # Errors
    ///
    /// [`HttpError`] if the request fails, the API answers an error (401
    /// for a bad token), or the body does not decode.
    pub async fn gateway_bot(&self) -> Result<GatewayBot, HttpError> {
        self.get("GET /gateway/bot", "/gateway/bot").await
    }

    /// Sends a GET and decodes the JSON answer.
    async fn get<T: DeserializeOwned>(
        &self,
        route: &'static str,
        path: &str,
    ) -> Result<T, HttpError> {
        let url = format!("{}{path}", self.api_base);
        let uri: http::Uri = url.parse().map_err(|e| HttpError::Url {
            route,
            source: Box::new(e),
        })?;
        let request = http::Request::get(uri)
            .header(
                http::header::AUTHORIZATION,
                format!("Bot {}", self.token.expose()),
            )
            .header(http::header::USER_AGENT, user_agent())
            .body(Empty::new())
            .map_err(|e| HttpError::Url {
                route,
                source: Box::new(e),
            })?;
        let transport = |e: BoxedErr| HttpError::Transport { route, source: e };
        let response = self
            .pool
            .request(request)
            .await
            .map_err(|e| transport(Box::new(e)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(transport)?
            .to_bytes();
        if !status.is_success() {
            return Err(status_error(route, status.as_u16(), &body));
        }
        serde_json::from_slice(&body).map_err(|source| HttpError::Decode { route, source })
    }
}

/// A boxed error from the HTTP stack.
type BoxedErr = Box<dyn std::error::Error + Send + Sync>;

/// The user agent in Discord's documented form.
fn user_agent() -> String {
    format!(
        "DiscordBot (https://github.com/shardbus/shardbus, {})",
        env!("CARGO_PKG_VERSION")
    )
}

/// The error for a non-success answer, with Discord's code and message if
/// the body has them.
fn status_error(route: &'static str, status: u16, body: &[u8]) -> HttpError {
    #[derive(Deserialize)]
    struct ApiError {
        code: Option<u64>,
        message: Option<String>,
    }
    let parsed = serde_json::from_slice::<ApiError>(body).ok();
    let code = parsed.as_ref().and_then(|e| e.code);
    let message = match parsed.and_then(|e| e.message) {
        Some(message) => message,
        None => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    };
    HttpError::Status {
        route,
        status,
        code,
        message,
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
