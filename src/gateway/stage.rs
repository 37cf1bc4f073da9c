//! A shard's lifecycle, posted on the bus as `Arc<ShardStage>`.

use crate::model::ShardId;

use super::close::CloseCode;

/// A shard entered a new [`Stage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardStage {
    /// The shard.
    pub shard: ShardId,
    /// Its new stage.
    pub stage: Stage,
}

/// Where a shard is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// Opening a websocket.
    Connecting,
    /// Identifying a new session.
    Identifying,
    /// Resuming the previous session.
    Resuming,
    /// Receiving events (after Ready or Resumed).
    Connected,
    /// The connection ended.
    Disconnected {
        /// The close code, if there was a close frame.
        code: Option<CloseCode>,
        /// Whether the shard will resume its session.
        will_resume: bool,
    },
    /// The shard has stopped for good (shutdown or a fatal error).
    Stopped,
}
