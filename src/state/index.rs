//! Which shard holds an id: the cross-shard index of the cache.
//!
//! A lookup by guild or channel id goes here first and then to that one
//! shard's store, so no read scans every shard. The map is split in
//! stripes, each behind its own lock, so shards writing different ids
//! rarely meet on a lock, and a reader holds a stripe only for one lookup.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::model::ShardId;
use crate::sync::{read, write};

/// How many stripes an [`Index`] has (a power of two).
const STRIPES: usize = 32;

/// Snowflake → shard, in [`STRIPES`] locked maps.
pub(super) struct Index {
    /// The stripes; id `k` lives in `stripes[stripe(k)]`.
    stripes: Box<[RwLock<HashMap<u64, ShardId>>]>,
}

impl Index {
    /// An empty index.
    pub(super) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| RwLock::default()).collect(),
        }
    }

    /// The stripe of `id`. Snowflakes' low bits are a per-process counter
    /// and their high bits a timestamp: a multiplicative hash spreads both.
    fn stripe(&self, id: u64) -> Option<&RwLock<HashMap<u64, ShardId>>> {
        let mixed = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let i = (mixed >> 59) as usize % STRIPES;
        self.stripes.get(i)
    }

    /// The shard holding `id`.
    pub(super) fn get(&self, id: u64) -> Option<ShardId> {
        self.stripe(id).and_then(|s| read(s).get(&id).copied())
    }

    /// Records that `shard` holds `id`; returns the shard that held it
    /// before, if another did.
    pub(super) fn insert(&self, id: u64, shard: ShardId) -> Option<ShardId> {
        let previous = self.stripe(id).and_then(|s| write(s).insert(id, shard));
        previous.filter(|&p| p != shard)
    }

    /// Forgets `id` if `shard` holds it (another shard may have claimed it
    /// since).
    pub(super) fn remove(&self, id: u64, shard: ShardId) {
        if let Some(stripe) = self.stripe(id) {
            let mut map = write(stripe);
            if map.get(&id) == Some(&shard) {
                map.remove(&id);
            }
        }
    }

    /// How many ids are indexed.
    pub(super) fn len(&self) -> usize {
        self.stripes.iter().map(|s| read(s).len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_leaves_an_id_another_shard_claimed() {
        let index = Index::new();
        assert_eq!(index.insert(7, ShardId(1)), None);
        assert_eq!(index.insert(7, ShardId(1)), None, "same shard is no move");
        assert_eq!(index.insert(7, ShardId(0)), Some(ShardId(1)));
        index.remove(7, ShardId(1));
        assert_eq!(index.get(7), Some(ShardId(0)));
        index.remove(7, ShardId(0));
        assert_eq!(index.get(7), None);
        assert_eq!(index.len(), 0);
    }
}
