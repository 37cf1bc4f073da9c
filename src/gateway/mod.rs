//! The gateway client: one websocket connection per shard, posting typed
//! events into the bus.

mod event;
mod opcode;

pub use event::{DispatchEvent, DispatchMeta, Event};
pub use opcode::{EventType, OpCode};
