//! A hook that sees each decoded dispatch before the bus does.

use std::any::{Any, TypeId};

use super::event::DispatchMeta;

/// Sees every decoded dispatch of a shard before it is posted, in the
/// shard's sequence order, on the shard's task.
///
/// This is how a state cache stays ahead of handlers: it updates itself
/// in [`on_dispatch`](Self::on_dispatch), and only then do subscribers get
/// the event, so a handler reads the state after its event. The call is
/// synchronous and sits on the shard's read path: keep it short (a lock
/// and a map update), never block.
///
/// Set one with [`GatewayConfig::dispatch_hook`](super::GatewayConfig::dispatch_hook).
pub trait DispatchHook: Send + Sync + 'static {
    /// Whether the hook wants events of the model type `event` (a
    /// [`TypeId`] of a registered [`DispatchEvent`](super::DispatchEvent)).
    /// Wanted types are decoded even when nothing on the bus subscribes to
    /// them.
    fn wants(&self, event: TypeId) -> bool;

    /// Called with a decoded event of a wanted type, before it is posted.
    fn on_dispatch(&self, meta: DispatchMeta, event: &(dyn Any + Send + Sync));
}
