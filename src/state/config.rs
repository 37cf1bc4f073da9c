//! What the cache keeps: the kinds of data, and the bounds.

/// A kind of data the [`Cache`](super::Cache) can keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Guild settings (`GUILD_CREATE`, `GUILD_UPDATE`): name, owner, icon,
    /// emojis, features, member count, availability.
    Guilds,
    /// Guild channels and threads.
    Channels,
    /// Guild roles.
    Roles,
    /// Guild members.
    Members,
    /// The last messages of each channel.
    Messages,
}

/// What a [`Cache`](super::Cache) keeps: which [`Kind`]s, and how many
/// messages per channel and members per guild.
///
/// [`new`](Self::new) (and `Default`) keeps every kind, the last
/// [`DEFAULT_MESSAGES_PER_CHANNEL`] messages of each channel, and every
/// member sent. A kind that is off is neither decoded for the cache nor
/// stored.
///
/// # Examples
///
/// ```
/// use shardbus::state::{Cache, CacheConfig, Kind};
///
/// let config = CacheConfig::new()
///     .members(false)
///     .messages_per_channel(20);
/// assert!(!config.caches(Kind::Members));
/// assert!(config.caches(Kind::Messages));
/// let cache = Cache::new(config);
/// # drop(cache);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Keep guild settings.
    guilds: bool,
    /// Keep channels and threads.
    channels: bool,
    /// Keep roles.
    roles: bool,
    /// Keep members.
    members: bool,
    /// Keep messages; `false` also when `messages_per_channel` is 0.
    messages: bool,
    /// The history bound of each channel.
    messages_per_channel: usize,
    /// The member bound of each guild; `None`: unbounded.
    members_per_guild: Option<usize>,
}

/// How many messages of each channel [`CacheConfig::new`] keeps.
pub const DEFAULT_MESSAGES_PER_CHANNEL: usize = 50;

impl CacheConfig {
    /// Every kind, [`DEFAULT_MESSAGES_PER_CHANNEL`] messages per channel,
    /// no member bound.
    pub fn new() -> Self {
        Self {
            guilds: true,
            channels: true,
            roles: true,
            members: true,
            messages: true,
            messages_per_channel: DEFAULT_MESSAGES_PER_CHANNEL,
            members_per_guild: None,
        }
    }

    /// No kind at all: a starting point for turning on only what is needed
    /// (`CacheConfig::none().guilds(true).channels(true)`).
    pub fn none() -> Self {
        Self {
            guilds: false,
            channels: false,
            roles: false,
            members: false,
            messages: false,
            ..Self::new()
        }
    }

    /// Keep guild settings or not.
    pub fn guilds(mut self, on: bool) -> Self {
        self.guilds = on;
        self
    }

    /// Keep channels and threads or not.
    pub fn channels(mut self, on: bool) -> Self {
        self.channels = on;
        self
    }

    /// Keep roles or not.
    pub fn roles(mut self, on: bool) -> Self {
        self.roles = on;
        self
    }

    /// Keep members or not.
    pub fn members(mut self, on: bool) -> Self {
        self.members = on;
        self
    }

    /// Keep messages or not.
    pub fn messages(mut self, on: bool) -> Self {
        self.messages = on;
        self
    }

    /// Keep the last `n` messages of each channel; older ones are evicted,
    /// oldest first. `0` turns messages off.
    pub fn messages_per_channel(mut self, n: usize) -> Self {
        self.messages_per_channel = n;
        self
    }

    /// Keep at most `n` members of each guild (`None`: all). Members beyond
    /// the bound are not added; those already kept are still updated and
    /// removed.
    pub fn members_per_guild(mut self, n: Option<usize>) -> Self {
        self.members_per_guild = n;
        self
    }

    /// Whether the cache keeps `kind`.
    pub fn caches(&self, kind: Kind) -> bool {
        match kind {
            Kind::Guilds => self.guilds,
            Kind::Channels => self.channels,
            Kind::Roles => self.roles,
            Kind::Members => self.members,
            Kind::Messages => self.messages && self.messages_per_channel > 0,
        }
    }

    /// Whether the cache keeps anything at all.
    pub fn caches_anything(&self) -> bool {
        [
            Kind::Guilds,
            Kind::Channels,
            Kind::Roles,
            Kind::Members,
            Kind::Messages,
        ]
        .into_iter()
        .any(|kind| self.caches(kind))
    }

    /// The history bound of each channel.
    pub fn messages_per_channel_bound(&self) -> usize {
        self.messages_per_channel
    }

    /// The member bound of each guild, if any.
    pub fn members_per_guild_bound(&self) -> Option<usize> {
        self.members_per_guild
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self::new()
    }
}
