//! Discord's REST API: a client that keeps the rate limits exactly, typed
//! endpoints for what bots use most, and interactions.
//!
//! - [`Client`]: one connection pool with rustls (ring, webpki roots):
//!   HTTP/2 where the server offers it through ALPN, else HTTP/1.1
//!   keep-alive; one token, an API base that can point at a simulator,
//!   and a user agent in Discord's documented form.
//! - [`ratelimit`]: buckets discovered from `X-RateLimit-Bucket` and keyed
//!   by route and major parameter, the global limit, 429s by scope and the
//!   invalid-request budget. A request that would exceed a known limit
//!   waits; it is never sent to collect a 429.
//! - Messages ([`Client::create_message`], with replies, embeds, allowed
//!   mentions and files as multipart), reactions, channel, guild, member
//!   and current user reads, [`Client::gateway_bot`] (the shard manager's),
//!   application commands and interaction responses
//!   ([`Client::respond`], [`InteractionResponse`]).
//! - Errors ([`HttpError`]) carry Discord's JSON error code, message and
//!   field errors, the status and the route; never the token.

mod client;
pub mod commands;
mod error;
mod interaction;
mod message;
pub mod ratelimit;

pub use client::{Client, DEFAULT_TIMEOUT, DISCORD_API};
pub use error::HttpError;
pub use interaction::{EPHEMERAL, InteractionMessage, InteractionResponse};
pub use message::{AllowedMentions, CreateMessage, EditMessage, FileUpload};
pub use ratelimit::{LimitConfig, MAX_RETRIES};

/// The REST client as a handler argument: a handler that takes `Http`
/// gets the client registered on its bus (`bus.with_state(client)`;
/// [`ManagerBuilder::http`](crate::shard::ManagerBuilder::http) registers
/// it for the manager's bus).
///
/// ```
/// use std::sync::Arc;
/// use shardbus::http::{Http, HttpError};
/// use shardbus::model::MessageCreate;
///
/// async fn ping(msg: Arc<MessageCreate>, http: Http) -> Result<(), HttpError> {
///     if msg.content == "!ping" {
///         http.create_message(msg.channel_id).content("pong").reply_to(&msg).await?;
///     }
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let http = shardbus::http::Client::new("token").unwrap();
/// let bus = shardbus::TypeMux::new().with_state(http);
/// let _handler = bus.add_handler(ping);
/// # }
/// ```
pub type Http = Client;

impl crate::bus::FromContext for Client {
    fn from_context(bus: &crate::bus::TypeMux) -> Result<Self, &'static str> {
        bus.state::<Client>().ok_or(std::any::type_name::<Client>())
    }
}
