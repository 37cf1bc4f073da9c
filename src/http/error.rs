//! What a REST request can fail with.

use std::time::Duration;

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
    /// No whole response came within the client's timeout
    /// ([`Client::timeout`](super::Client::timeout)).
    #[error("{route} timed out after {after:?}")]
    Timeout {
        /// The route.
        route: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The API answered with an error status (for a 429, after
    /// [`MAX_RETRIES`](super::MAX_RETRIES) tries).
    #[error("{route} answered {status}: {message}{}", field_summary(errors.as_ref()))]
    Status {
        /// The route.
        route: &'static str,
        /// The HTTP status.
        status: u16,
        /// Discord's JSON error code, if the body had one.
        code: Option<u64>,
        /// Discord's error message, or the start of the body.
        message: String,
        /// Discord's per-field errors (`errors` in the body), as sent.
        errors: Option<serde_json::Value>,
    },
    /// Not sent: the invalid responses (401, 403, 429) of the last 10
    /// minutes reached the client's budget, and going on would get the IP
    /// address banned.
    #[error(
        "{route} not sent: {count} invalid requests in the window reached the budget; it frees up in {resets_in:?}"
    )]
    InvalidRequestBudget {
        /// The route.
        route: &'static str,
        /// The invalid responses counted.
        count: u32,
        /// When the oldest of them leaves the window.
        resets_in: Duration,
    },
    /// The request could not be built (a body that does not serialize, a
    /// header that is not valid).
    #[error("{route}: the request could not be built: {source}")]
    Build {
        /// The route.
        route: &'static str,
        /// Why.
        source: BoxError,
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

    /// Discord's JSON error code, for [`Status`](Self::Status) errors that
    /// had one (e.g. 50035 for an invalid form body).
    pub fn code(&self) -> Option<u64> {
        match self {
            Self::Status { code, .. } => *code,
            _ => None,
        }
    }

    /// The route the request was for.
    pub fn route(&self) -> Option<&'static str> {
        match self {
            Self::Url { route, .. }
            | Self::Transport { route, .. }
            | Self::Timeout { route, .. }
            | Self::Status { route, .. }
            | Self::Decode { route, .. }
            | Self::InvalidRequestBudget { route, .. }
            | Self::Build { route, .. } => Some(route),
            Self::Tls(_) => None,
        }
    }

    /// The field errors of a [`Status`](Self::Status) error, flattened to
    /// `(path, message)` pairs: `("content", "Must be 2000 or fewer in
    /// length.")`, `("embeds.0.title", ...)`.
    pub fn field_errors(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Self::Status {
            errors: Some(errors),
            ..
        } = self
        {
            flatten(errors, String::new(), &mut out);
        }
        out
    }
}

/// Collects the `_errors` lists of Discord's nested error object.
fn flatten(value: &serde_json::Value, path: String, out: &mut Vec<(String, String)>) {
    let Some(map) = value.as_object() else {
        return;
    };
    for (key, inner) in map {
        if key == "_errors" {
            for error in inner.as_array().into_iter().flatten() {
                let message = error
                    .get("message")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                out.push((path.clone(), message.to_owned()));
            }
        } else {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            flatten(inner, path, out);
        }
    }
}

/// `" (content: Must be ...; ...)"` for an error with field errors.
fn field_summary(errors: Option<&serde_json::Value>) -> String {
    let mut fields = Vec::new();
    if let Some(errors) = errors {
        flatten(errors, String::new(), &mut fields);
    }
    if fields.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = fields
        .iter()
        .map(|(path, message)| format!("{path}: {message}"))
        .collect();
    format!(" ({})", parts.join("; "))
}
