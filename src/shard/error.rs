//! What the manager's operations can fail with.

use std::sync::Arc;

use crate::gateway::GatewayError;
use crate::http::HttpError;
use crate::model::ShardId;

/// A failed manager operation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// `GET /gateway/bot` failed (a bad token answers 401).
    #[error("asking GET /gateway/bot for the shard count failed")]
    GatewayBot(#[source] Arc<HttpError>),
    /// A shard stopped with a fatal error.
    #[error(transparent)]
    Gateway(Arc<GatewayError>),
    /// The shard id is not one this manager runs.
    #[error("shard {0} is not in this manager's range")]
    NoSuchShard(ShardId),
    /// A rescale needs `GET /gateway/bot`, and this manager was built
    /// without an HTTP client (use [`Manager::rescale_to`](super::Manager::rescale_to)).
    #[error("rescale needs GET /gateway/bot, and the manager has no HTTP client")]
    NoHttp,
    /// Automatic rescale needs this process to run every shard.
    #[error("cannot rescale a partial range {index}..{end} of {total} shards")]
    PartialRange {
        /// The first shard this process runs.
        index: u32,
        /// One past the last.
        end: u32,
        /// The total.
        total: u32,
    },
}

impl From<Arc<GatewayError>> for ManagerError {
    fn from(error: Arc<GatewayError>) -> Self {
        Self::Gateway(error)
    }
}
