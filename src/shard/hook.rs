//! The dispatch hook each shard of a set runs with: the user's hook (a
//! state cache), and the cutover of a rolling rescale.

use std::any::{Any, TypeId};
use std::sync::Arc;

use super::cutover::Cutover;
use crate::gateway::{DispatchHook, DispatchMeta};

/// What a shard of set `generation` calls for each dispatch.
pub(crate) struct SetHook {
    /// The shard's set.
    pub(crate) generation: u64,
    /// Shared by both sets during a rolling rescale.
    pub(crate) cutover: Arc<Cutover>,
    /// The user's hook, if any.
    pub(crate) user: Option<Arc<dyn DispatchHook>>,
}

impl DispatchHook for SetHook {
    fn wants(&self, event: TypeId) -> bool {
        self.user.as_ref().is_some_and(|user| user.wants(event))
    }

    fn on_dispatch(&self, meta: DispatchMeta, event: &(dyn Any + Send + Sync)) {
        if let Some(user) = &self.user {
            user.on_dispatch(meta, event);
        }
    }

    fn admit(&self, meta: DispatchMeta, event_type: &str, data: &str) -> bool {
        self.cutover.admit(self.generation, event_type, data)
            && self
                .user
                .as_ref()
                .is_none_or(|user| user.admit(meta, event_type, data))
    }
}

/// A [`Cache`](crate::state::Cache) is a dispatch hook: it updates itself
/// before the bus sees each event, so a handler reads the state after its
/// event. (The cache sits beside the gateway and knows nothing of it; this
/// layer, above both, joins them.)
impl DispatchHook for crate::state::Cache {
    fn wants(&self, event: TypeId) -> bool {
        crate::state::Cache::wants(self, event)
    }

    fn on_dispatch(&self, meta: DispatchMeta, event: &(dyn Any + Send + Sync)) {
        self.apply(meta, event);
    }
}
