//! Many shards, one bus: the [`Manager`], and what it reports.
//!
//! # Rescaling
//!
//! A 4011 from any shard, or [`Manager::rescale`], moves the bot to the
//! shard count `GET /gateway/bot` recommends. While every shard is
//! connected, `rescale` is *rolling*: the new set identifies and becomes
//! ready while the old one keeps delivering, then the bus switches over.
//! Both sets receive the same events meanwhile (Discord sends each event to
//! every session whose shard owns its guild), so the switch admits each
//! event once, by its type and raw `d`: until the new set is ready only the
//! old set posts, and it records what it posted; from the switch until a
//! grace period after the old set has stopped, whichever set reads an
//! event first posts it and the other's copy is dropped. Tested with steady
//! traffic across a 2 → 4 rescale: nothing lost, nothing repeated. Two
//! events of one type with byte-identical `d` inside the cutover count as
//! one.
//!
//! The identify queue lives in the gateway, below this layer; it is
//! re-exported here for the manager's users.

mod cutover;
mod error;
mod hook;
mod info;
mod manager;

pub use crate::gateway::{IdentifyPermit, IdentifyQueue, LocalIdentifyQueue};
pub use error::ManagerError;
pub use info::{Rescaled, ShardInfo};
pub use manager::{BUS_CAPACITY, Manager, ManagerBuilder, NewShardFn};
