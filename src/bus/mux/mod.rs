//! The typed event bus: any `Send + Sync + 'static` value, routed by type.
//!
//! [`TypeMux`] is a `TypeId` map of per-type topics. Each topic holds a
//! broadcast ring read by every reliable single-type subscriber, the feed
//! of multi-type subscribers ([`TypeMuxSubscription`]) and the list of lossy
//! subscribers. The pieces, one per file:
//!
//! - `map`: the [`TypeMux`] handle, its `TypeId` map of topics, posting, and
//!   the stop protocol (posts in flight are counted; `stop` waits for them,
//!   then closes every topic).
//! - `index`: the lock-free table posts find their topic in.
//! - `topic`: one event type's subscribers, and the one path a post takes
//!   to its ring (a `RingPost`: written at once if there is room, else
//!   parked until there is).
//! - `many`: [`subscribe_many`](TypeMux::subscribe_many), its
//!   [`SubscribeMany`] builder and the [`TypeMuxSubscription`] it builds.
//! - `state`: the user state handlers extract ([`State`](super::State)).
//!
//! Delivery semantics are stated once, on [`TypeMux`].

mod index;
mod many;
mod map;
mod state;
mod topic;

pub use many::{SubscribeMany, TypeMuxEvent, TypeMuxSubscription};
pub use map::{DEFAULT_CAPACITY, MuxClosed, TypeMux};
