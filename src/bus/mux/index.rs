//! A lock-free index of a bus's topics, for the post path.
//!
//! The topic map (an `ArcSwap` of a `HashMap`) costs every post two atomic
//! read-modify-writes to load and release its guard, about 6% of a
//! one-subscriber post in `cargo bench --bench fanout`. Topics are only ever
//! added, never removed, so posts look them up here instead: a fixed open
//! addressed table of `OnceLock` slots, each filled once (under the map's
//! write lock) and read with a single acquire load.
//!
//! A type whose probe sequence is full stays in the map only; a lookup that
//! probes [`PROBES`] filled slots without finding its type answers
//! [`Lookup::Unknown`] and the caller asks the map.

use std::any::TypeId;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

use super::topic::AnyTopic;

/// Slots in the table (a power of two): room for the ~80 dispatch types of
/// a bot and its own with short probe sequences.
const SLOTS: usize = 256;
/// Slots a lookup or an insert looks at before giving up.
const PROBES: usize = 8;

/// The index; see the module docs.
pub(super) struct TopicIndex {
    /// `SLOTS` slots, each empty or set once to a type and its topic.
    slots: Box<[OnceLock<Entry>]>,
}

/// One filled slot: a type and its topic.
type Entry = (TypeId, Arc<dyn AnyTopic>);

/// What [`TopicIndex::get`] found.
pub(super) enum Lookup<'a> {
    /// The type's topic.
    Found(&'a Arc<dyn AnyTopic>),
    /// The type has no topic (as of the acquire loads of this lookup).
    Absent,
    /// The type may be in the map only.
    Unknown,
}

/// A hasher for `TypeId` keys, which already hash to well-mixed bits.
#[derive(Default)]
pub(super) struct TypeIdHasher(u64);

impl TopicIndex {
    pub(super) fn new() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The first slot of `id`'s probe sequence.
    fn start(id: TypeId) -> usize {
        BuildHasherDefault::<TypeIdHasher>::default().hash_one(id) as usize
    }

    /// Looks `id` up without taking a lock.
    pub(super) fn get(&self, id: TypeId) -> Lookup<'_> {
        let start = Self::start(id);
        for i in 0..PROBES {
            match self.slots[(start + i) & (SLOTS - 1)].get() {
                // Slots fill in probe order and never empty: a type that is
                // here sits before the first empty slot of its sequence.
                None => return Lookup::Absent,
                Some((key, topic)) if *key == id => return Lookup::Found(topic),
                Some(_) => {}
            }
        }
        Lookup::Unknown
    }

    /// Adds `id`'s topic if its probe sequence has room. Called only under
    /// the map's write lock, once per type.
    pub(super) fn insert(&self, id: TypeId, topic: &Arc<dyn AnyTopic>) {
        let start = Self::start(id);
        for i in 0..PROBES {
            let slot = &self.slots[(start + i) & (SLOTS - 1)];
            if slot.get().is_none() {
                // Inserts are serialised by the write lock, so the slot is
                // still empty and `set` succeeds.
                let _ = slot.set((id, topic.clone()));
                return;
            }
        }
    }
}

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::mux::topic::Topic;

    fn topic() -> Arc<dyn AnyTopic> {
        Arc::new(Topic::<u8>::new(1))
    }

    /// A type whose probe sequence is full is sent to the map (`Unknown`),
    /// never reported `Absent`.
    #[test]
    fn a_full_probe_sequence_answers_unknown_not_absent() {
        let index = TopicIndex::new();
        let id = TypeId::of::<u8>();
        let start = TopicIndex::start(id);
        // Fill id's whole probe sequence with other types.
        let others = [
            TypeId::of::<u16>(),
            TypeId::of::<u32>(),
            TypeId::of::<u64>(),
            TypeId::of::<i8>(),
            TypeId::of::<i16>(),
            TypeId::of::<i32>(),
            TypeId::of::<i64>(),
            TypeId::of::<u128>(),
        ];
        for (i, other) in others.iter().enumerate() {
            let _ = index.slots[(start + i) & (SLOTS - 1)].set((*other, topic()));
        }
        assert!(matches!(index.get(id), Lookup::Unknown));
        index.insert(id, &topic());
        assert!(
            matches!(index.get(id), Lookup::Unknown),
            "overflow stays in the map"
        );
    }

    #[test]
    fn inserted_types_are_found() {
        let index = TopicIndex::new();
        assert!(matches!(index.get(TypeId::of::<u8>()), Lookup::Absent));
        index.insert(TypeId::of::<u8>(), &topic());
        index.insert(TypeId::of::<u16>(), &topic());
        assert!(matches!(index.get(TypeId::of::<u8>()), Lookup::Found(_)));
        assert!(matches!(index.get(TypeId::of::<u16>()), Lookup::Found(_)));
    }
}
