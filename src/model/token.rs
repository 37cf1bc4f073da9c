//! The bot token: a secret that never shows.

use std::fmt;

use serde::{Serialize, Serializer};

/// A bot token. A secret: its `Debug` and `Display` print `Token(<redacted>)`,
/// and nothing in this library logs it or puts it in an error.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token, removing a leading `Bot ` if present.
    pub fn new(token: impl Into<String>) -> Self {
        let token = token.into();
        match token.strip_prefix("Bot ") {
            Some(bare) => Self(bare.to_owned()),
            None => Self(token),
        }
    }

    /// The token itself, for an `Authorization` header or an identify.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for Token {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}
