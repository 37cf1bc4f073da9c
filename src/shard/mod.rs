//! Shards: many gateway shards at once (the manager lands here). The
//! identify queue lives in the gateway, below this layer; it is re-exported
//! here for the manager's users.

pub use crate::gateway::{IdentifyPermit, IdentifyQueue, LocalIdentifyQueue};
