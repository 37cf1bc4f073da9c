//! Permission bitfields (roles, overwrites, members, interactions).

bitfield! {
    /// A set of permissions, sent by Discord as a decimal string.
    ///
    /// Only the most used bits are named; every bit is kept.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus::model::Permissions;
    ///
    /// let p: Permissions = serde_json::from_str("\"2112\"").unwrap();
    /// assert!(p.contains(Permissions::SEND_MESSAGES | Permissions::ADD_REACTIONS));
    /// assert_eq!(serde_json::to_string(&p).unwrap(), "\"2112\"");
    /// ```
    pub struct Permissions(as_string) {
        /// Create instant invites.
        const CREATE_INSTANT_INVITE = 1 << 0;
        /// Kick members.
        const KICK_MEMBERS = 1 << 1;
        /// Ban members.
        const BAN_MEMBERS = 1 << 2;
        /// Every permission, bypassing channel overwrites.
        const ADMINISTRATOR = 1 << 3;
        /// Manage channels.
        const MANAGE_CHANNELS = 1 << 4;
        /// Manage the guild.
        const MANAGE_GUILD = 1 << 5;
        /// Add reactions.
        const ADD_REACTIONS = 1 << 6;
        /// View the audit log.
        const VIEW_AUDIT_LOG = 1 << 7;
        /// See a channel.
        const VIEW_CHANNEL = 1 << 10;
        /// Send messages.
        const SEND_MESSAGES = 1 << 11;
        /// Manage (delete, pin) others' messages.
        const MANAGE_MESSAGES = 1 << 13;
        /// Embed links.
        const EMBED_LINKS = 1 << 14;
        /// Attach files.
        const ATTACH_FILES = 1 << 15;
        /// Read message history.
        const READ_MESSAGE_HISTORY = 1 << 16;
        /// Mention `@everyone` and `@here`.
        const MENTION_EVERYONE = 1 << 17;
        /// Connect to voice channels.
        const CONNECT = 1 << 20;
        /// Speak in voice channels.
        const SPEAK = 1 << 21;
        /// Change own nickname.
        const CHANGE_NICKNAME = 1 << 26;
        /// Manage roles.
        const MANAGE_ROLES = 1 << 28;
        /// Manage webhooks.
        const MANAGE_WEBHOOKS = 1 << 29;
        /// Use application commands.
        const USE_APPLICATION_COMMANDS = 1 << 31;
        /// Manage threads.
        const MANAGE_THREADS = 1 << 34;
        /// Send messages in threads.
        const SEND_MESSAGES_IN_THREADS = 1 << 38;
        /// Time out members.
        const MODERATE_MEMBERS = 1 << 40;
    }
}
