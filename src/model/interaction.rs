//! Interactions: slash commands, components, autocomplete, modals.

use serde::{Deserialize, Serialize};

use super::{
    ApplicationId, Channel, ChannelId, GuildId, InteractionId, InteractionToken, Member, Message,
    Permissions, User, UserId,
};

/// A user's interaction with the application.
///
/// `data` is kept as JSON (its shape depends on `kind`); the helpers read
/// its common fields. The `token` is redacted in `Debug`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// The interaction's id.
    pub id: InteractionId,
    /// The application it is for.
    pub application_id: ApplicationId,
    /// What kind of interaction.
    #[serde(rename = "type")]
    pub kind: InteractionType,
    /// The command, component or modal data.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
    /// The guild it came from.
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// The channel it came from (partial).
    #[serde(default)]
    pub channel: Option<Box<Channel>>,
    /// The channel it came from.
    #[serde(default)]
    pub channel_id: Option<ChannelId>,
    /// The invoking member, in guilds (with `user` and `permissions`).
    #[serde(default)]
    pub member: Option<Member>,
    /// The invoking user, in DMs.
    #[serde(default)]
    pub user: Option<User>,
    /// The token to respond with. Secret.
    #[serde(default)]
    pub token: InteractionToken,
    /// Always `1`.
    #[serde(default)]
    pub version: u8,
    /// The message a component was attached to.
    #[serde(default)]
    pub message: Option<Box<Message>>,
    /// The application's permissions in the channel.
    #[serde(default)]
    pub app_permissions: Option<Permissions>,
    /// The invoking user's locale.
    #[serde(default)]
    pub locale: Option<String>,
    /// The guild's preferred locale.
    #[serde(default)]
    pub guild_locale: Option<String>,
    /// Where the interaction was triggered from.
    #[serde(default)]
    pub context: Option<InteractionContextType>,
}

impl Interaction {
    /// The invoking user: the member's user in guilds, else `user`.
    pub fn author(&self) -> Option<&User> {
        self.member
            .as_ref()
            .and_then(|m| m.user.as_ref())
            .or(self.user.as_ref())
    }

    /// The invoking user's id.
    pub fn author_id(&self) -> Option<UserId> {
        self.author().map(|user| user.id)
    }

    /// The command name (`data.name`), for command and autocomplete
    /// interactions.
    pub fn command_name(&self) -> Option<&str> {
        self.data_str("name")
    }

    /// The component or modal id (`data.custom_id`).
    pub fn custom_id(&self) -> Option<&str> {
        self.data_str("custom_id")
    }

    /// A string field of `data`.
    fn data_str(&self, key: &str) -> Option<&str> {
        self.data.as_ref()?.get(key)?.as_str()
    }
}

int_enum! {
    /// The kind of an [`Interaction`].
    pub enum InteractionType: u8 {
        /// A ping (HTTP interactions only).
        Ping = 1,
        /// A slash, user or message command.
        ApplicationCommand = 2,
        /// A button or select menu.
        MessageComponent = 3,
        /// Autocomplete of a command option.
        ApplicationCommandAutocomplete = 4,
        /// A modal was submitted.
        ModalSubmit = 5,
    }
}

int_enum! {
    /// Where an interaction was triggered.
    pub enum InteractionContextType: u8 {
        /// In a guild.
        Guild = 0,
        /// In the bot's DM.
        BotDm = 1,
        /// In a group DM or another user's DM.
        PrivateChannel = 2,
    }
}
