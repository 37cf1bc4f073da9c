//! Users: the full [`User`] and the [`PartialUser`] of presence updates.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ImageHash, UserId};

/// A Discord user or bot account.
///
/// `discriminator` is `0` for users on the unique-username system; the
/// fields only the current user sees (`email`, `verified`, ...) are `None`
/// elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The username (unique unless `discriminator` is non-zero).
    #[serde(default)]
    pub username: String,
    /// The legacy four-digit tag (`#0001` is `1`); `0` when the user has none.
    #[serde(default, with = "discriminator")]
    pub discriminator: u16,
    /// The display name, if set.
    #[serde(default)]
    pub global_name: Option<String>,
    /// Avatar hash.
    #[serde(default)]
    pub avatar: Option<ImageHash>,
    /// Whether the account is a bot.
    #[serde(default)]
    pub bot: bool,
    /// Whether the account is an official Discord system user.
    #[serde(default)]
    pub system: bool,
    /// Banner hash.
    #[serde(default)]
    pub banner: Option<ImageHash>,
    /// Banner colour as `0xRRGGBB`.
    #[serde(default)]
    pub accent_color: Option<u32>,
    /// Public [user flags](https://discord.com/developers/docs/resources/user#user-object-user-flags).
    #[serde(default)]
    pub public_flags: Option<u64>,
    /// All user flags (current user only).
    #[serde(default)]
    pub flags: Option<u64>,
    /// Nitro subscription type (current user only).
    #[serde(default)]
    pub premium_type: Option<PremiumType>,
    /// Whether two-factor authentication is on (current user only).
    #[serde(default)]
    pub mfa_enabled: Option<bool>,
    /// Whether the e-mail address is verified (current user only).
    #[serde(default)]
    pub verified: Option<bool>,
    /// The chosen language (current user only).
    #[serde(default)]
    pub locale: Option<String>,
}

impl User {
    /// The name to show: the display name if set, else the username.
    pub fn display_name(&self) -> &str {
        self.global_name.as_deref().unwrap_or(&self.username)
    }
}

/// A user in a presence update: only `id` is guaranteed, every other field
/// may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialUser {
    /// The user's id.
    pub id: UserId,
    /// The username, if sent.
    #[serde(default)]
    pub username: Option<String>,
    /// The legacy tag, if sent.
    #[serde(default, with = "discriminator_opt")]
    pub discriminator: Option<u16>,
    /// The display name, if sent and set.
    #[serde(default)]
    pub global_name: Option<String>,
    /// Avatar hash, if sent and set.
    #[serde(default)]
    pub avatar: Option<ImageHash>,
    /// Whether the account is a bot, if sent.
    #[serde(default)]
    pub bot: Option<bool>,
    /// Public user flags, if sent.
    #[serde(default)]
    pub public_flags: Option<u64>,
}

int_enum! {
    /// A user's Nitro subscription type.
    pub enum PremiumType: u8 {
        /// No subscription.
        None = 0,
        /// Nitro Classic.
        NitroClassic = 1,
        /// Nitro.
        Nitro = 2,
        /// Nitro Basic.
        NitroBasic = 3,
    }
}

/// Reads a discriminator from `"0001"` or `1`; writes `"0"` or four digits.
mod discriminator {
    use super::*;

    /// Reads a discriminator.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
        d.deserialize_any(DiscriminatorVisitor)
    }

    /// Writes a discriminator as Discord does.
    pub(super) fn serialize<S: Serializer>(value: &u16, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Tag(*value))
    }
}

/// [`discriminator`] for an optional field.
mod discriminator_opt {
    use super::*;

    /// Reads an optional discriminator.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
        d.deserialize_option(OptionalDiscriminatorVisitor)
    }

    /// Writes an optional discriminator.
    pub(super) fn serialize<S: Serializer>(value: &Option<u16>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.collect_str(&Tag(*v)),
            None => s.serialize_none(),
        }
    }
}

/// Formats a discriminator: `0` alone, anything else as four digits.
struct Tag(u16);

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            f.write_str("0")
        } else {
            write!(f, "{:04}", self.0)
        }
    }
}

/// Reads a discriminator from a string of digits or an integer.
struct DiscriminatorVisitor;

impl Visitor<'_> for DiscriminatorVisitor {
    type Value = u16;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a discriminator as a string of digits or an integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u16, E> {
        u16::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u16, E> {
        u16::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u16, E> {
        v.parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// [`DiscriminatorVisitor`] behind an `Option`.
struct OptionalDiscriminatorVisitor;

impl<'de> Visitor<'de> for OptionalDiscriminatorVisitor {
    type Value = Option<u16>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a discriminator or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<u16>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<u16>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u16>, D::Error> {
        d.deserialize_any(DiscriminatorVisitor).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn user_decodes_and_round_trips() {
        let json = r#"{
            "id": "80351110224678912",
            "username": "Nelly",
            "discriminator": "1337",
            "global_name": null,
            "avatar": "8342729096ea3675442027381ff50dfe",
            "verified": true,
            "email": "nelly@discord.com",
            "flags": 64,
            "banner": "06c16474723fe537c283b8efa61a30c8",
            "accent_color": 16711680,
            "premium_type": 1,
            "public_flags": 64,
            "avatar_decoration_data": {"sku_id": "1144058844004233369", "asset": "a_fed43ab12698df65902ba06727e20c0e"}
        }"#;
        let user: User = serde_json::from_str(json).unwrap();
        assert_eq!(user.id, UserId(80351110224678912));
        assert_eq!(user.discriminator, 1337);
        assert_eq!(user.display_name(), "Nelly");
        assert_eq!(user.premium_type, Some(PremiumType::NitroClassic));
        assert_eq!(user.accent_color, Some(0xff0000));
        let again: User = serde_json::from_str(&serde_json::to_string(&user).unwrap()).unwrap();
        assert_eq!(again, user);
    }

    #[test]
    fn discriminator_forms() {
        let u: User =
            serde_json::from_str(r#"{"id":1,"username":"a","discriminator":"0"}"#).unwrap();
        assert_eq!(u.discriminator, 0);
        let u: User = serde_json::from_str(r#"{"id":1,"username":"a","discriminator":7}"#).unwrap();
        assert_eq!(u.discriminator, 7);
        assert!(
            serde_json::to_string(&u)
                .unwrap()
                .contains(r#""discriminator":"0007""#)
        );
        let p: PartialUser = serde_json::from_str(r#"{"id":"1"}"#).unwrap();
        assert_eq!(p.discriminator, None);
        let p: PartialUser = serde_json::from_str(r#"{"id":"1","discriminator":"0420"}"#).unwrap();
        assert_eq!(p.discriminator, Some(420));
        let p: PartialUser = serde_json::from_str(r#"{"id":"1","discriminator":null}"#).unwrap();
        assert_eq!(p.discriminator, None);
    }
}
