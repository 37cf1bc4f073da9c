//! Interactions: slash commands, components, autocomplete, modals.

use serde::{Deserialize, Serialize};

use super::{
    ApplicationId, Channel, ChannelId, CommandId, CommandOptionType, CommandType, GuildId,
    InteractionId, InteractionToken, Member, Message, Permissions, User, UserId,
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

    /// `data` decoded as `T`, if the interaction is one of `kinds`.
    fn typed<T: serde::de::DeserializeOwned>(&self, kinds: &[InteractionType]) -> Option<T> {
        if !kinds.contains(&self.kind) {
            return None;
        }
        T::deserialize(self.data.as_ref()?).ok()
    }

    /// The command's data, for command and autocomplete interactions.
    ///
    /// ```
    /// use shardbus::model::{CommandOptionType, Interaction};
    ///
    /// let i: Interaction = serde_json::from_value(serde_json::json!({
    ///     "id": "1", "application_id": "2", "type": 2, "token": "t", "version": 1,
    ///     "data": {"id": "3", "name": "echo", "type": 1,
    ///              "options": [{"name": "text", "type": 3, "value": "hi"}]}
    /// })).unwrap();
    /// let data = i.command_data().unwrap();
    /// assert_eq!(data.name, "echo");
    /// assert_eq!(data.options[0].kind, CommandOptionType::String);
    /// assert_eq!(data.option("text").and_then(|v| v.as_str()), Some("hi"));
    /// assert!(i.component_data().is_none());
    /// ```
    pub fn command_data(&self) -> Option<CommandData> {
        self.typed(&[
            InteractionType::ApplicationCommand,
            InteractionType::ApplicationCommandAutocomplete,
        ])
    }

    /// The component's data, for button and select menu interactions.
    pub fn component_data(&self) -> Option<ComponentData> {
        self.typed(&[InteractionType::MessageComponent])
    }

    /// The modal's data, for modal submits.
    pub fn modal_data(&self) -> Option<ModalSubmitData> {
        self.typed(&[InteractionType::ModalSubmit])
    }
}

/// What a command (or autocomplete) interaction carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandData {
    /// The command's id.
    pub id: CommandId,
    /// Its name.
    pub name: String,
    /// Its kind.
    #[serde(rename = "type", default)]
    pub kind: CommandType,
    /// The options given (a sub-command's inside its option).
    #[serde(default)]
    pub options: Vec<CommandDataOption>,
    /// Users, members, roles, channels and attachments the options name,
    /// as Discord's JSON.
    #[serde(default)]
    pub resolved: Option<serde_json::Value>,
    /// The guild of a guild command.
    #[serde(default)]
    pub guild_id: Option<GuildId>,
    /// The user or message a context-menu command was used on, as sent
    /// (read it with [`target_user`](Self::target_user) or
    /// [`target_message`](Self::target_message)).
    #[serde(default)]
    pub target_id: Option<String>,
}

impl CommandData {
    /// The value of option `name`: the command's, or the invoked
    /// sub-command's (one level of group and sub-command).
    pub fn option(&self, name: &str) -> Option<&serde_json::Value> {
        let mut options = &self.options;
        for _ in 0..2 {
            match options.first() {
                Some(o)
                    if matches!(
                        o.kind,
                        CommandOptionType::SubCommand | CommandOptionType::SubCommandGroup
                    ) =>
                {
                    options = &o.options;
                }
                _ => break,
            }
        }
        options.iter().find(|o| o.name == name)?.value.as_ref()
    }

    /// The user a user command was used on.
    pub fn target_user(&self) -> Option<UserId> {
        (self.kind == CommandType::User)
            .then(|| self.target_id.as_deref()?.parse().ok().map(UserId))
            .flatten()
    }

    /// The message a message command was used on.
    pub fn target_message(&self) -> Option<super::MessageId> {
        (self.kind == CommandType::Message)
            .then(|| {
                self.target_id
                    .as_deref()?
                    .parse()
                    .ok()
                    .map(super::MessageId)
            })
            .flatten()
    }

    /// The option being typed, for autocomplete.
    pub fn focused(&self) -> Option<&CommandDataOption> {
        fn find(options: &[CommandDataOption]) -> Option<&CommandDataOption> {
            options
                .iter()
                .find_map(|o| if o.focused { Some(o) } else { find(&o.options) })
        }
        find(&self.options)
    }
}

/// One option as given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandDataOption {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: CommandOptionType,
    /// Its value (absent for sub-commands and groups).
    #[serde(default)]
    pub value: Option<serde_json::Value>,
    /// A sub-command's or group's options.
    #[serde(default)]
    pub options: Vec<CommandDataOption>,
    /// Whether the user is typing it (autocomplete).
    #[serde(default)]
    pub focused: bool,
}

/// What a component interaction carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentData {
    /// The component's `custom_id`.
    pub custom_id: String,
    /// Its type (2 button, 3 string select, 5-8 the other selects).
    #[serde(default)]
    pub component_type: u8,
    /// A select menu's chosen values.
    #[serde(default)]
    pub values: Vec<String>,
}

/// What a modal submit carries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModalSubmitData {
    /// The modal's `custom_id`.
    pub custom_id: String,
    /// Its components with the values entered, as Discord's JSON.
    #[serde(default)]
    pub components: Vec<serde_json::Value>,
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
