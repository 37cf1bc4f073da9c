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
    /// Waiting for the identify queue's turn for a new session. The socket
    /// opens only once the turn has come, so a shard far back in a long
    /// queue holds no connection.
    Queued,
    /// Opening a websocket.
    Connecting,
    /// Identifying a new session (the identify is sent once Hello arrives,
    /// then the shard waits for Ready).
    Identifying,
    /// Resuming the previous session.
    Resuming,
    /// Receiving events (after Ready or Resumed).
    Connected,
    /// The connection ended (or could not be opened). Every end posts this
    /// stage, then the next connection's [`Connecting`](Self::Connecting) or
    /// [`Resuming`](Self::Resuming), or [`Stopped`](Self::Stopped).
    Disconnected {
        /// The close code of the frame that ended it (the server's, or the
        /// one this shard sent); `None` if the connection was lost.
        code: Option<CloseCode>,
        /// Whether the shard will resume its session.
        will_resume: bool,
    },
    /// The shard has stopped for good (shutdown or a fatal error).
    Stopped,
}
