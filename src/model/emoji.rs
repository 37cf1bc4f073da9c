//! Emojis: a guild's custom [`Emoji`], and the [`PartialEmoji`] of reactions.

use serde::{Deserialize, Serialize};

use super::{EmojiId, RoleId, User};

/// A custom guild emoji (or, with `id: None`, a Unicode emoji).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Emoji {
    /// The emoji's id; `None` for Unicode emojis.
    #[serde(default)]
    pub id: Option<EmojiId>,
    /// The name (the character itself for Unicode emojis); `None` only for
    /// deleted custom emojis in reactions.
    #[serde(default)]
    pub name: Option<String>,
    /// Roles allowed to use the emoji (empty: everyone).
    #[serde(default)]
    pub roles: Vec<RoleId>,
    /// Who uploaded it (needs the manage-expressions permission).
    #[serde(default)]
    pub user: Option<User>,
    /// Whether it must be wrapped in colons.
    #[serde(default)]
    pub require_colons: bool,
    /// Whether an integration manages it.
    #[serde(default)]
    pub managed: bool,
    /// Whether it is animated.
    #[serde(default)]
    pub animated: bool,
    /// Whether it can be used now (false when boosts were lost).
    #[serde(default)]
    pub available: bool,
}

/// The emoji of a reaction: a Unicode emoji (`id: None`, `name` the
/// character) or a custom one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartialEmoji {
    /// The custom emoji's id; `None` for Unicode emojis.
    #[serde(default)]
    pub id: Option<EmojiId>,
    /// The name, or the Unicode character; `None` for a deleted custom emoji.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the custom emoji is animated.
    #[serde(default)]
    pub animated: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn unicode_and_custom_emojis() {
        let unicode: PartialEmoji = serde_json::from_str(r#"{"id":null,"name":"🔥"}"#).unwrap();
        assert_eq!(unicode.id, None);
        assert_eq!(unicode.name.as_deref(), Some("🔥"));
        let custom: Emoji = serde_json::from_str(
            r#"{"id":"41771983429993937","name":"LUL","roles":["41771983429993000","41771983429993111"],
                "user":{"username":"Luigi","discriminator":"0002","id":"96008815106887111","avatar":"5500909a3274e1812beb4e8de6631111","public_flags":131328},
                "require_colons":true,"managed":false,"animated":false,"available":true}"#,
        )
        .unwrap();
        assert_eq!(custom.id, Some(EmojiId(41771983429993937)));
        assert_eq!(custom.roles.len(), 2);
        assert_eq!(custom.user.unwrap().discriminator, 2);
    }
}
