//! Shards: the identify queue (and, with the manager, many shards at once).

mod queue;

pub use queue::{IdentifyQueue, LocalIdentifyQueue};
