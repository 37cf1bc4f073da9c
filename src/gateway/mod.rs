//! The gateway client: one websocket connection per shard, posting typed
//! events into the bus.

mod close;
mod compression;
mod config;
mod error;
mod event;
mod events;
mod identify;
mod opcode;
mod payload;
mod ratelimit;
mod registry;
mod shard;
mod stage;

pub use close::{CloseAction, CloseCode};
pub use compression::CompressionError;
pub use config::{DISCORD_GATEWAY_URL, GatewayConfig};
pub use error::{CommandError, GatewayError, GatewayErrorKind};
pub use event::{DispatchEvent, DispatchMeta, Event};
pub use identify::{IdentifyProperties, Intents, Token};
pub use opcode::{EventType, OpCode};
pub use registry::{EventRegistry, UnknownDispatch};
pub use shard::{
    MAX_COMMAND_BYTES, RequestGuildMembers, Shard, ShardHandle, UpdatePresence, UpdateVoiceState,
};
pub use stage::{ShardStage, Stage};
