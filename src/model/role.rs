//! Guild roles.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ImageHash, IntegrationId, Permissions, RoleId, UserId};

/// A guild role: a named set of permissions, with a colour and position.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The role's id (the `@everyone` role has the guild's id).
    pub id: RoleId,
    /// The role's name.
    #[serde(default)]
    pub name: String,
    /// Colour as `0xRRGGBB`; `0` means no colour. Superseded by `colors`.
    #[serde(default)]
    pub color: u32,
    /// The role's colours (gradient roles have more than one).
    #[serde(default)]
    pub colors: Option<RoleColors>,
    /// Whether members are shown separately in the member list.
    #[serde(default)]
    pub hoist: bool,
    /// Role icon hash.
    #[serde(default)]
    pub icon: Option<ImageHash>,
    /// Role unicode emoji.
    #[serde(default)]
    pub unicode_emoji: Option<String>,
    /// Position in the role list (higher is above).
    #[serde(default)]
    pub position: i32,
    /// The permissions the role grants.
    #[serde(default)]
    pub permissions: Permissions,
    /// Whether an integration manages the role.
    #[serde(default)]
    pub managed: bool,
    /// Whether anyone can mention the role.
    #[serde(default)]
    pub mentionable: bool,
    /// What the role belongs to, if it is managed.
    #[serde(default)]
    pub tags: Option<RoleTags>,
    /// [Role flags](https://discord.com/developers/docs/topics/permissions#role-object-role-flags).
    #[serde(default)]
    pub flags: u64,
}

/// A role's colours.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleColors {
    /// The main colour.
    #[serde(default)]
    pub primary_color: u32,
    /// The second gradient colour.
    #[serde(default)]
    pub secondary_color: Option<u32>,
    /// The third colour (holographic roles).
    #[serde(default)]
    pub tertiary_color: Option<u32>,
}

/// What a managed role belongs to.
///
/// Discord marks the boolean tags by sending them as `null` and omits them
/// otherwise; here they are plain `bool`s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleTags {
    /// The bot the role belongs to.
    #[serde(default)]
    pub bot_id: Option<UserId>,
    /// The integration the role belongs to.
    #[serde(default)]
    pub integration_id: Option<IntegrationId>,
    /// Whether this is the guild's booster role.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "as_null",
        skip_serializing_if = "is_false"
    )]
    pub premium_subscriber: bool,
    /// Whether the role can be purchased.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "as_null",
        skip_serializing_if = "is_false"
    )]
    pub available_for_purchase: bool,
    /// Whether the role is a guild's linked role.
    #[serde(
        default,
        deserialize_with = "present",
        serialize_with = "as_null",
        skip_serializing_if = "is_false"
    )]
    pub guild_connections: bool,
}

/// A tag that is present (whatever its value, usually `null`) is `true`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// Writes a present tag as `null`.
fn as_null<S: Serializer>(_: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_none()
}

/// Whether a tag is absent.
fn is_false(value: &bool) -> bool {
    !value
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn role_with_null_tags() {
        let json = r#"{
            "id": "41771983423143936",
            "name": "Server Booster",
            "color": 15277667,
            "colors": {"primary_color": 15277667, "secondary_color": null, "tertiary_color": null},
            "hoist": true,
            "icon": null,
            "unicode_emoji": null,
            "position": 3,
            "permissions": "66321471",
            "managed": true,
            "mentionable": false,
            "tags": {"premium_subscriber": null},
            "flags": 0
        }"#;
        let role: Role = serde_json::from_str(json).unwrap();
        let tags = role.tags.clone().unwrap();
        assert!(tags.premium_subscriber);
        assert!(!tags.available_for_purchase);
        assert_eq!(role.permissions.bits(), 66321471);
        let json = serde_json::to_string(&role).unwrap();
        assert!(
            json.contains(
                r#""tags":{"bot_id":null,"integration_id":null,"premium_subscriber":null}"#
            )
        );
        assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
    }
}
