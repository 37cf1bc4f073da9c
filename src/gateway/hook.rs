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

    /// Whether to decode and post this dispatch at all, given its type and
    /// raw `d`; called for every dispatch, before decoding. The shard has
    /// already taken its sequence number (a refused dispatch is not asked
    /// for again on resume). The default admits everything.
    ///
    /// The shard manager uses it to switch the bus from one shard set to
    /// another without losing or repeating events.
    fn admit(&self, meta: DispatchMeta, event_type: &str, data: &str) -> bool {
        let _ = (meta, event_type, data);
        true
    }
}
