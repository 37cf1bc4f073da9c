//! The REST API's errors, each with Discord's HTTP status, JSON error code
//! and message.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// A resource a request named that the sim does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// 10003.
    Channel,
    /// 10004.
    Guild,
    /// 10007.
    Member,
    /// 10008.
    Message,
    /// 10014.
    Emoji,
    /// 10015.
    Webhook,
    /// 10062.
    Interaction,
}

impl Unknown {
    /// Discord's JSON error code.
    const fn code(self) -> u32 {
        match self {
            Self::Channel => 10_003,
            Self::Guild => 10_004,
            Self::Member => 10_007,
            Self::Message => 10_008,
            Self::Emoji => 10_014,
            Self::Webhook => 10_015,
            Self::Interaction => 10_062,
        }
    }

    /// Discord's message.
    const fn message(self) -> &'static str {
        match self {
            Self::Channel => "Unknown Channel",
            Self::Guild => "Unknown Guild",
            Self::Member => "Unknown Member",
            Self::Message => "Unknown Message",
            Self::Emoji => "Unknown Emoji",
            Self::Webhook => "Unknown Webhook",
            Self::Interaction => "Unknown interaction",
        }
    }
}

/// Why a REST request failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RestError {
    /// 401, code 0: no or a wrong bot token.
    #[error("401: Unauthorized")]
    Unauthorized,
    /// 404, code 0: no such route.
    #[error("404: Not Found")]
    NoRoute,
    /// 400 for an unknown emoji, 404 for other unknown resources.
    #[error("{}", .0.message())]
    Unknown(Unknown),
    /// 400, code 50006.
    #[error("Cannot send an empty message")]
    EmptyMessage,
    /// 400, code 50035, with Discord's nested `errors` object.
    #[error("Invalid Form Body")]
    InvalidForm(Value),
    /// 400, code 50109.
    #[error("The request body contains invalid JSON.")]
    InvalidJson,
    /// 400, code 0: a body that is not what its content type says.
    #[error("400: Bad Request")]
    BadRequest,
    /// 400, code 40060.
    #[error("Interaction has already been acknowledged")]
    AlreadyAcknowledged,
    /// 401, code 50027.
    #[error("Invalid Webhook Token")]
    InvalidWebhookToken,
    /// 403, code 50001.
    #[error("Missing Access")]
    MissingAccess,
    /// 403, code 50005.
    #[error("Cannot edit a message authored by another user")]
    NotAuthor,
    /// 413, code 40005.
    #[error("Request entity too large")]
    TooLarge,
}

impl RestError {
    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::InvalidWebhookToken => StatusCode::UNAUTHORIZED,
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::Unknown(Unknown::Emoji) => StatusCode::BAD_REQUEST,
            Self::Unknown(_) => StatusCode::NOT_FOUND,
            Self::EmptyMessage
            | Self::InvalidForm(_)
            | Self::InvalidJson
            | Self::BadRequest
            | Self::AlreadyAcknowledged => StatusCode::BAD_REQUEST,
            Self::MissingAccess | Self::NotAuthor => StatusCode::FORBIDDEN,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// Discord's JSON error code.
    fn code(&self) -> u32 {
        match self {
            Self::Unauthorized | Self::NoRoute | Self::BadRequest => 0,
            Self::Unknown(u) => u.code(),
            Self::EmptyMessage => 50_006,
            Self::InvalidForm(_) => 50_035,
            Self::InvalidJson => 50_109,
            Self::AlreadyAcknowledged => 40_060,
            Self::InvalidWebhookToken => 50_027,
            Self::MissingAccess => 50_001,
            Self::NotAuthor => 50_005,
            Self::TooLarge => 40_005,
        }
    }

    /// The JSON body: `{"message", "code"}`, plus `errors` for 50035.
    pub(crate) fn body(&self) -> Value {
        let mut v = json!({ "message": self.to_string(), "code": self.code() });
        if let Self::InvalidForm(errors) = self {
            v["errors"] = errors.clone();
        }
        v
    }

    /// A 50035 for one field: `{"<path>": {"_errors": [{code, message}]}}`,
    /// the path split at dots (`"embeds.0.title"`).
    pub(crate) fn field(path: &str, code: &str, message: impl Into<String>) -> Self {
        let mut leaf = json!({ "_errors": [{ "code": code, "message": message.into() }] });
        if !path.is_empty() {
            for key in path.rsplit('.') {
                leaf = json!({ key: leaf });
            }
        }
        Self::InvalidForm(leaf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_nest_by_path() {
        let e = RestError::field(
            "content",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 2000 or fewer in length.",
        );
        assert_eq!(
            e.body(),
            json!({
                "code": 50035,
                "message": "Invalid Form Body",
                "errors": { "content": { "_errors": [{
                    "code": "BASE_TYPE_MAX_LENGTH",
                    "message": "Must be 2000 or fewer in length."
                }] } }
            })
        );
        let e = RestError::field("0.name", "X", "y");
        assert_eq!(e.body()["errors"]["0"]["name"]["_errors"][0]["code"], "X");
        assert_eq!(
            RestError::Unknown(Unknown::Interaction).body()["code"],
            10_062
        );
        assert_eq!(
            RestError::Unknown(Unknown::Emoji).status(),
            StatusCode::BAD_REQUEST
        );
    }
}
