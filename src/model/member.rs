//! Guild members.

use serde::{Deserialize, Serialize};

use super::{GuildId, ImageHash, Permissions, RoleId, Timestamp, User, UserId};

/// A user's membership in a guild.
///
/// Also used for the partial members Discord attaches to messages, reactions,
/// typing and voice events: there `user` is missing (the user is given next
/// to it) and so may be other fields, which then take their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user; missing in the partial members attached to messages.
    #[serde(default)]
    pub user: Option<User>,
    /// The guild, sent only in `GUILD_MEMBER_ADD` (and a few other events).
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// The guild nickname.
    #[serde(default)]
    pub nick: Option<String>,
    /// Guild avatar hash.
    #[serde(default)]
    pub avatar: Option<ImageHash>,
    /// Guild banner hash.
    #[serde(default)]
    pub banner: Option<ImageHash>,
    /// The member's roles (not including `@everyone`).
    #[serde(default)]
    pub roles: Vec<RoleId>,
    /// When the user joined; `None` for guest members of voice channels.
    #[serde(default)]
    pub joined_at: Option<Timestamp>,
    /// When the user started boosting the guild.
    #[serde(default)]
    pub premium_since: Option<Timestamp>,
    /// Whether the member is server-deafened.
    #[serde(default)]
    pub deaf: bool,
    /// Whether the member is server-muted.
    #[serde(default)]
    pub mute: bool,
    /// [Guild member flags](https://discord.com/developers/docs/resources/guild#guild-member-object-guild-member-flags).
    #[serde(default)]
    pub flags: u64,
    /// Whether the member has not yet passed membership screening.
    #[serde(default)]
    pub pending: bool,
    /// The member's permissions in the channel (interactions only).
    #[serde(default)]
    pub permissions: Option<Permissions>,
    /// When a timeout ends (`None`, or a past time, when not timed out).
    #[serde(default)]
    pub communication_disabled_until: Option<Timestamp>,
}

impl Member {
    /// The member's user id, when the user is included.
    pub fn user_id(&self) -> Option<UserId> {
        self.user.as_ref().map(|user| user.id)
    }

    /// The name to show in the guild: nickname, else display name, else
    /// username. `None` when neither a nickname nor the user is included.
    pub fn display_name(&self) -> Option<&str> {
        self.nick
            .as_deref()
            .or_else(|| self.user.as_ref().map(User::display_name))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn full_and_partial_members() {
        let full: Member = serde_json::from_str(
            r#"{"user": {"id": "80351110224678912", "username": "Nelly", "discriminator": "0", "global_name": "Nel", "avatar": null},
                "nick": null, "avatar": null, "banner": null, "roles": ["41771983423143936"],
                "joined_at": "2015-04-26T06:26:56.936000+00:00", "deaf": false, "mute": false,
                "flags": 0, "pending": false, "communication_disabled_until": null}"#,
        )
        .unwrap();
        assert_eq!(full.user_id(), Some(UserId(80351110224678912)));
        assert_eq!(full.display_name(), Some("Nel"));
        assert_eq!(full.roles, [RoleId(41771983423143936)]);

        let partial: Member = serde_json::from_str(
            r#"{"roles":[],"nick":"boss","joined_at":null,"premium_since":null}"#,
        )
        .unwrap();
        assert_eq!(partial.user, None);
        assert_eq!(partial.joined_at, None);
        assert_eq!(partial.display_name(), Some("boss"));
    }
}
