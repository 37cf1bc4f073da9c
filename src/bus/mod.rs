//! The generic event bus. It knows nothing of Discord.
//!
//! - [`Feed<T>`]: one type, delivered into subscriber-owned `mpsc` channels
//!   (go-ethereum's `event.Feed`).
//! - [`TypeMux`]: any type, routed by `TypeId`, consumed as typed streams
//!   ([`EventStream`], [`LossyStream`], [`TypeMuxSubscription`]).
//! - [`Subscription`]: a running producer with an error channel; Drop
//!   unsubscribes.
//! - [`resubscribe`] / [`resubscribe_err`]: keep a subscription established
//!   with capped, jittered backoff.
//! - [`SubscriptionScope`]: unsubscribe many at once.
//! - [`Handler`]: async fns and closures run for every event of a type,
//!   with extractors ([`State`]); errors and panics become [`HandlerError`]
//!   events.
//! - [`Plugin`]: handlers, streams and tasks that load and unload as one.
//!
//! Delivery is lossless by default: a full reliable subscriber makes the
//! producer wait, and one that leaves releases it at once. Lossy delivery is
//! opt-in and always reports what was lost.

mod feed;
mod handler;
mod lossy;
mod mux;
mod plugin;
mod resubscribe;
mod ring;
mod scope;
mod stream;
mod subscription;

pub use feed::Feed;
#[cfg(feature = "nats")]
pub(crate) use handler::{CallTracker, HandlerId};
pub use handler::{FromContext, Handler, HandlerError, IntoHandlerResult, MissingState, State};
pub use mux::{
    DEFAULT_CAPACITY, MuxClosed, SubscribeMany, TypeMux, TypeMuxEvent, TypeMuxSubscription,
};
pub use plugin::{Plugin, PluginContext, PluginHandle};
pub use resubscribe::{resubscribe, resubscribe_err};
pub use scope::SubscriptionScope;
pub use stream::{EventStream, Lagged, LossyStream, TryRecvError};
pub use subscription::{Subscription, Unsubscribed};

/// Re-exported from the crate root, where they live, for code that names
/// them through the bus.
pub use crate::boxed::{BoxError, BoxFuture};
