//! What a REST request can fail with.

use crate::bus::BoxError;

/// A failed REST request. It names the route and the status; the token is
/// never part of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The API base plus the route is not a valid URL.
    #[error("invalid URL for {route}: {source}")]
    Url {
        /// The route, e.g. `GET /gateway/bot`.
        route: &'static str,
        /// Why.
        source: BoxError,
    },
    /// The TLS setup failed.
    #[error("TLS setup failed: {0}")]
    Tls(BoxError),
    /// The request could not be sent or its response read.
    #[error("{route} failed: {source}")]
    Transport {
        /// The route.
        route: &'static str,
        /// Why.
        source: BoxError,
    },
    /// The API answered with an error status.
    #[error("{route} answered {status}: {message}")]
    Status {
        /// The route.
        route: &'static str,
        /// The HTTP status.
        status: u16,
        /// Discord's JSON error code, if the body had one.
        code: Option<u64>,
        /// Discord's error message, or the start of the body.
        message: String,
    },
    /// The response body did not decode.
    #[error("{route}: the response did not decode: {source}")]
    Decode {
        /// The route.
        route: &'static str,
        /// Why.
        source: serde_json::Error,
    },
}

impl HttpError {
    /// The HTTP status, for [`Status`](Self::Status) errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
