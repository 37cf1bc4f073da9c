//! Secret strings that models carry: redacted in `Debug`, never `Display`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Declares a secret string newtype.
macro_rules! secret {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        ///
        /// `Debug` prints `<redacted>`; there is no `Display`, so the secret
        /// only leaves through [`expose`](Self::expose) or serialization.
        #[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret.
            pub fn new(secret: impl Into<String>) -> Self {
                Self(secret.into())
            }

            /// The secret itself. Do not log it.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(secret: String) -> Self {
                Self(secret)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    )*};
}

secret! {
    /// The token an interaction is answered with (valid for 15 minutes).
    InteractionToken;
    /// The token for connecting to a guild's voice server.
    VoiceToken;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn debug_is_redacted_and_serde_is_transparent() {
        let token: InteractionToken = serde_json::from_str("\"aW50ZXJhY3Rpb24\"").unwrap();
        assert_eq!(token.expose(), "aW50ZXJhY3Rpb24");
        assert_eq!(format!("{token:?}"), "InteractionToken(<redacted>)");
        assert_eq!(
            serde_json::to_string(&token).unwrap(),
            "\"aW50ZXJhY3Rpb24\""
        );
        let voice = VoiceToken::new("abc");
        assert!(!format!("{voice:?}").contains("abc"));
    }
}
