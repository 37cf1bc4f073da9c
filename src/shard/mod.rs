//! Many shards, one bus: the [`Manager`], and what it reports.
//!
//! The identify queue lives in the gateway, below this layer; it is
//! re-exported here for the manager's users.

mod error;
mod info;
mod manager;

pub use crate::gateway::{IdentifyPermit, IdentifyQueue, LocalIdentifyQueue};
pub use error::ManagerError;
pub use info::{Rescaled, ShardInfo};
pub use manager::{Manager, ManagerBuilder, NewShardFn};
