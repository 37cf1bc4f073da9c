//! User state for handler extractors, by type.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::map::TypeMux;
use crate::sync::{read, write};

/// The state registered with [`TypeMux::with_state`], one value per type.
#[derive(Default)]
pub(super) struct StateMap(RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>);

impl TypeMux {
    /// Registers user state for handler extractors.
    pub(crate) fn insert_state(&self, id: TypeId, state: Arc<dyn Any + Send + Sync>) {
        write(&self.inner.states.0).insert(id, state);
    }

    /// The user state registered under `id`.
    pub(crate) fn get_state(&self, id: TypeId) -> Option<Arc<dyn Any + Send + Sync>> {
        read(&self.inner.states.0).get(&id).cloned()
    }
}
