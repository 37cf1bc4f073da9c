#![doc = include_str!("../README.md")]
#![deny(clippy::unwrap_used)]
#![warn(missing_docs)]
#![recursion_limit = "256"]

mod compress;
mod config;
mod connection;
mod error;
mod fault;
mod frame;
mod generator;
mod handshake;
mod http;
mod ids;
mod log;
pub mod nats;
mod payloads;
pub mod protocol;
mod ratelimit;
mod rest;
mod session;
mod shared;
mod sim;
mod stats;
mod template;
#[doc(hidden)]
pub mod testing;
mod world;

pub use compress::Compression;
pub use config::{SessionStartLimit, SimConfig};
pub use error::{SimError, WaitTimeout};
pub use fault::{Fault, FaultTarget};
pub use ids::{ConnectionId, GUILD_EPOCH_BASE, GuildId, Seq, SessionId, ShardInfo};
pub use log::{
    BanRecord, BucketViolation, ClientEvent, ClientEventKind, Closed, Closer, ConnectionLog,
    IdentifyOutcome, IdentifyRecord, InteractionRecord, RateLimitScope, RequestRecord,
    ResumeOutcome, ResumeRecord, SimLog,
};
pub use nats::{NatsServer, NatsServerError};
pub use rest::{InjectedInteraction, InteractionType, NewInteraction, RestLimits, RouteLimit};
pub use sim::Sim;
pub use stats::{
    ConnectionSent, SeqRange, SessionState, SessionStats, ShardStats, SimStats, WireStats,
};
