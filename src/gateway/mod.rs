//! The gateway client: one websocket connection per shard, posting typed
//! events into the bus.

mod close;
mod command;
mod compression;
mod config;
#[cfg(feature = "gateway")]
mod connection;
#[cfg(feature = "gateway")]
mod decide;
mod error;
mod event;
mod events;
mod hook;
mod identify;
mod opcode;
mod payload;
mod queue;
#[cfg(feature = "gateway")]
mod ratelimit;
mod registry;
#[cfg(feature = "gateway")]
mod runner;
#[cfg(feature = "gateway")]
mod shard;
#[cfg(feature = "gateway")]
mod socket;
mod stage;

pub use close::{CloseAction, CloseCode};
pub use command::{MAX_COMMAND_BYTES, RequestGuildMembers, UpdatePresence, UpdateVoiceState};
pub use compression::{Compression, CompressionError};
pub use config::{DISCORD_GATEWAY_URL, GatewayConfig, ResumeInfo};
pub use error::{CommandError, GatewayError, GatewayErrorKind, ResumeUrlError};
pub use event::{DispatchEvent, DispatchMeta, Event};
pub use hook::DispatchHook;
pub use identify::{IdentifyProperties, Intents, Token};
pub use opcode::{EventType, OpCode};
pub use queue::{IdentifyPermit, IdentifyQueue, LocalIdentifyQueue};
pub use registry::{EventRegistry, RawDispatch, UnknownDispatch};
#[cfg(feature = "gateway")]
pub use shard::{Shard, ShardCounters, ShardHandle};
pub use stage::{ShardStage, Stage};
