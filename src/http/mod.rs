//! The REST side of Discord's API: for now the one route the shard manager
//! needs, `GET /gateway/bot` (the full client is issue 11's).
//!
//! One pooled HTTP/1.1 client with rustls (ring, webpki roots), an API base
//! that can point at a simulator, and errors that name the route and status
//! but never the token.

mod client;
mod error;

pub use client::{Client, DISCORD_API};
pub use error::HttpError;
