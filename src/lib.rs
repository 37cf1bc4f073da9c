#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "nats")]
pub mod bridge;
pub mod bus;
pub mod gateway;
pub mod http;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod model;
#[cfg(feature = "gateway")]
pub mod shard;
pub mod state;

mod boxed;
mod logging;
mod loom;
#[cfg(feature = "gateway")]
mod session;
mod sync;
mod tls;

pub use boxed::{BoxError, BoxFuture};
pub use logging::bridge_log;
#[cfg(feature = "gateway")]
pub use session::Session;

pub use bus::{
    DEFAULT_CAPACITY, EventStream, Feed, FromContext, Handler, HandlerError, IntoHandlerResult,
    Lagged, LossyStream, MissingState, MuxClosed, Plugin, PluginContext, PluginHandle, State,
    SubscribeMany, Subscription, SubscriptionScope, TryRecvError, TypeMux, TypeMuxEvent,
    TypeMuxSubscription, Unsubscribed, resubscribe, resubscribe_err,
};

/// Makes an `async fn` a named [`Handler`] with options (from `shardbus-macros`).
pub use shardbus_macros::handler;
