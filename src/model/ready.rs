//! The `READY` dispatch: the start of a session.

use serde::{Deserialize, Serialize};

use super::{ApplicationId, DispatchMeta, SessionId, UnavailableGuild, User};

/// `READY`: the session is established. Carries what is needed to resume
/// (`session_id`, `resume_gateway_url`) and the guilds that will follow as
/// `GUILD_CREATE`s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Ready {
    /// Gateway API version.
    #[serde(default)]
    pub v: u8,
    /// The current (bot) user.
    pub user: User,
    /// The guilds of this shard, all unavailable until their `GUILD_CREATE`.
    #[serde(default)]
    pub guilds: Vec<UnavailableGuild>,
    /// The session id, for resuming.
    pub session_id: SessionId,
    /// Where to reconnect to resume.
    #[serde(default)]
    pub resume_gateway_url: String,
    /// `[shard_id, num_shards]`, if sharding was requested.
    #[serde(default)]
    pub shard: Option<[u32; 2]>,
    /// The application's id and flags.
    #[serde(default)]
    pub application: PartialApplication,
    /// Which shard and sequence number this came with.
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// The application fields sent in `READY`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialApplication {
    /// The application's id.
    pub id: ApplicationId,
    /// [Application flags](https://discord.com/developers/docs/resources/application#application-object-application-flags).
    #[serde(default)]
    pub flags: u64,
}
