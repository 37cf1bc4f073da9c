//! Presences: online status and activities.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ApplicationId, EmojiId, GuildId, PartialUser};

/// A user's presence in a guild (a `PRESENCE_UPDATE`, or an entry of a
/// guild's `presences`, where `guild_id` is missing).
///
/// Discord does not validate these fields; decoding is lenient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// The user; only `id` is guaranteed.
    pub user: PartialUser,
    /// The guild (missing inside `GUILD_CREATE`).
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// Overall status.
    #[serde(default)]
    pub status: Status,
    /// Current activities.
    #[serde(default)]
    pub activities: Vec<Activity>,
    /// Status per platform.
    #[serde(default)]
    pub client_status: Option<ClientStatus>,
}

/// Online status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Online.
    Online,
    /// Do not disturb.
    Dnd,
    /// Away.
    Idle,
    /// Shown as offline (only ever sent, never received).
    Invisible,
    /// Offline.
    #[default]
    Offline,
    /// A status this library does not know, kept as sent.
    Unknown(String),
}

impl Status {
    /// The status as on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Online => "online",
            Self::Dnd => "dnd",
            Self::Idle => "idle",
            Self::Invisible => "invisible",
            Self::Offline => "offline",
            Self::Unknown(other) => other,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StatusVisitor)
    }
}

/// Reads a [`Status`]; unknown strings are kept, `null` is offline.
struct StatusVisitor;

impl Visitor<'_> for StatusVisitor {
    type Value = Status;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a status string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Status, E> {
        Ok(match v {
            "online" => Status::Online,
            "dnd" => Status::Dnd,
            "idle" => Status::Idle,
            "invisible" => Status::Invisible,
            "offline" => Status::Offline,
            other => Status::Unknown(other.to_owned()),
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Status, E> {
        Ok(Status::Offline)
    }
}

/// Status per platform; a missing platform has no active session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientStatus {
    /// Desktop application.
    #[serde(default)]
    pub desktop: Option<Status>,
    /// Mobile application.
    #[serde(default)]
    pub mobile: Option<Status>,
    /// Web browser or bot.
    #[serde(default)]
    pub web: Option<Status>,
}

/// Something a user is doing: playing, streaming, listening, a custom status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// Activity name.
    #[serde(default)]
    pub name: String,
    /// What kind of activity.
    #[serde(rename = "type", default)]
    pub kind: ActivityType,
    /// Stream URL.
    #[serde(default)]
    pub url: Option<String>,
    /// When the activity was added, Unix milliseconds.
    #[serde(default)]
    pub created_at: Option<u64>,
    /// Start and end times.
    #[serde(default)]
    pub timestamps: Option<ActivityTimestamps>,
    /// Application of the game.
    #[serde(default)]
    pub application_id: Option<ApplicationId>,
    /// What the player is doing.
    #[serde(default)]
    pub details: Option<String>,
    /// Party status, or the text of a custom status.
    #[serde(default)]
    pub state: Option<String>,
    /// Emoji of a custom status.
    #[serde(default)]
    pub emoji: Option<ActivityEmoji>,
    /// [Activity flags](https://discord.com/developers/docs/events/gateway-events#activity-object-activity-flags).
    #[serde(default)]
    pub flags: u64,
}

int_enum! {
    /// The kind of an [`Activity`].
    pub enum ActivityType: u8 {
        /// Playing `{name}`.
        Playing = 0,
        /// Streaming `{details}`.
        Streaming = 1,
        /// Listening to `{name}`.
        Listening = 2,
        /// Watching `{name}`.
        Watching = 3,
        /// `{emoji} {state}`.
        Custom = 4,
        /// Competing in `{name}`.
        Competing = 5,
    }
}

/// Start and end of an activity, Unix milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityTimestamps {
    /// When it started.
    #[serde(default)]
    pub start: Option<u64>,
    /// When it ends.
    #[serde(default)]
    pub end: Option<u64>,
}

/// The emoji of a custom status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEmoji {
    /// Name, or the Unicode character.
    #[serde(default)]
    pub name: String,
    /// Custom emoji id.
    #[serde(default)]
    pub id: Option<EmojiId>,
    /// Whether it is animated.
    #[serde(default)]
    pub animated: bool,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn presence_with_rich_activity_and_unknown_status() {
        let json = r#"{
            "user": {"id": "80351110224678912"},
            "guild_id": "41771983423143937",
            "status": "dnd",
            "activities": [
                {"name": "Rocket League", "type": 0, "application_id": "379286085710381999",
                 "state": "In a Match", "details": "Ranked Duos: 2-1", "created_at": 1712345678901,
                 "timestamps": {"start": 15112000660000},
                 "party": {"id": "9dd6594e-81b3-49f6-a6b5-a679e6a060d3", "size": [2, 2]},
                 "assets": {"large_image": "351371005538729000", "large_text": "DFH Stadium"}},
                {"name": "Custom Status", "type": 4, "state": "hi", "emoji": {"name": "🦀"}}
            ],
            "client_status": {"desktop": "dnd", "mobile": "idle", "vr": "online"}
        }"#;
        let p: Presence = serde_json::from_str(json).unwrap();
        assert_eq!(p.status, Status::Dnd);
        assert_eq!(p.activities[0].kind, ActivityType::Playing);
        assert_eq!(p.activities[1].emoji.as_ref().unwrap().name, "🦀");
        let cs = p.client_status.clone().unwrap();
        assert_eq!(cs.mobile, Some(Status::Idle));
        assert_eq!(cs.web, None);
        let again: Presence = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(again, p);

        let odd: Presence = serde_json::from_str(
            r#"{"user":{"id":1},"status":"away","activities":[{"name":"x","type":42}]}"#,
        )
        .unwrap();
        assert_eq!(odd.status, Status::Unknown("away".into()));
        assert_eq!(odd.activities[0].kind, ActivityType::Unknown(42));
        let null: Presence = serde_json::from_str(r#"{"user":{"id":1},"status":null}"#).unwrap();
        assert_eq!(null.status, Status::Offline);
        assert!(serde_json::from_str::<Status>("5").is_err());
    }
}
