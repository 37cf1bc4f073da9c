//! Application commands: what a bot registers (slash, user and message
//! commands with their options) and what Discord answers with.

use serde::{Deserialize, Serialize};

use super::{ApplicationId, CommandId, GuildId};

/// An application command, as registered and as Discord returns it (with
/// `id`, `application_id` and `version` set).
///
/// ```
/// use shardbus::model::{ApplicationCommand, CommandOption, CommandOptionType};
///
/// let ping = ApplicationCommand::slash("echo", "Says it back")
///     .option(CommandOption::new(CommandOptionType::String, "text", "What to say").required());
/// let json = serde_json::to_value(&ping).unwrap();
/// assert_eq!(json["options"][0]["type"], 3);
/// assert!(json.get("id").is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplicationCommand {
    /// Its id (absent when registering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<CommandId>,
    /// Its kind.
    #[serde(rename = "type", default)]
    pub kind: CommandType,
    /// The application it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<ApplicationId>,
    /// The guild, for a guild command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild_id: Option<GuildId>,
    /// Its name (1-32 characters, lower case for slash commands).
    pub name: String,
    /// Its description (1-100 characters; empty for user and message
    /// commands).
    #[serde(default)]
    pub description: String,
    /// Its options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<CommandOption>,
    /// Discord's version of it (absent when registering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<CommandId>,
}

impl ApplicationCommand {
    /// A slash command.
    pub fn slash(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            kind: CommandType::ChatInput,
            name: name.into(),
            description: description.into(),
            ..Self::default()
        }
    }

    /// Adds an option.
    #[must_use]
    pub fn option(mut self, option: CommandOption) -> Self {
        self.options.push(option);
        self
    }
}

/// One option of a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandOption {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: CommandOptionType,
    /// Its name.
    pub name: String,
    /// Its description.
    #[serde(default)]
    pub description: String,
    /// Whether it must be given.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// The values it may take.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<CommandOptionChoice>,
    /// Whether it autocompletes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub autocomplete: bool,
    /// Sub-options (for sub-commands and groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<CommandOption>,
}

impl CommandOption {
    /// An optional option.
    pub fn new(
        kind: CommandOptionType,
        name: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            name: name.into(),
            description: description.into(),
            required: false,
            choices: Vec::new(),
            autocomplete: false,
            options: Vec::new(),
        }
    }

    /// Makes it required.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Adds a choice.
    #[must_use]
    pub fn choice(mut self, name: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.choices.push(CommandOptionChoice {
            name: name.into(),
            value: value.into(),
        });
        self
    }
}

/// A value an option may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandOptionChoice {
    /// What the user sees.
    pub name: String,
    /// The value sent (a string, integer or number).
    pub value: serde_json::Value,
}

int_enum! {
    /// The kind of an [`ApplicationCommand`].
    pub enum CommandType: u8 {
        /// A slash command.
        ChatInput = 1,
        /// A command on a user's context menu.
        User = 2,
        /// A command on a message's context menu.
        Message = 3,
        /// An activity's entry point.
        PrimaryEntryPoint = 4,
    }
}

int_enum! {
    /// The type of a [`CommandOption`].
    pub enum CommandOptionType: u8 {
        /// A sub-command.
        SubCommand = 1,
        /// A group of sub-commands.
        SubCommandGroup = 2,
        /// Text.
        String = 3,
        /// An integer.
        Integer = 4,
        /// A boolean.
        Boolean = 5,
        /// A user.
        User = 6,
        /// A channel.
        Channel = 7,
        /// A role.
        Role = 8,
        /// A user or a role.
        Mentionable = 9,
        /// A floating-point number.
        Number = 10,
        /// An attachment.
        Attachment = 11,
    }
}
