//! Unsubscribing many subscriptions at once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use super::subscription::{Shared, Subscription};
use crate::sync::lock;

/// A set of subscriptions that can be unsubscribed together.
///
/// [`SubscriptionScope`] is go-ethereum's `SubscriptionScope`: code that owns
/// several subscriptions tracks them in a scope and ends them all with one
/// [`close`](SubscriptionScope::close). Plugins use one each, so unloading a
/// plugin stops every handler and stream it made.
///
/// # Examples
///
/// ```
/// use shardbus::{Feed, SubscriptionScope};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let feed = Feed::<u8>::new();
/// let scope = SubscriptionScope::default();
/// let (tx, _rx) = tokio::sync::mpsc::channel(1);
/// let a = scope.track(feed.subscribe(tx.clone())).unwrap();
/// let _b = scope.track(feed.subscribe(tx.clone())).unwrap();
/// assert_eq!(scope.count(), 2);
///
/// a.unsubscribe(); // leaves the scope
/// assert_eq!(scope.count(), 1);
///
/// scope.close(); // unsubscribes the rest
/// assert_eq!((scope.count(), feed.len()), (0, 0));
/// assert!(scope.track(feed.subscribe(tx)).is_none());
/// # }
/// ```
///
/// The zero value ([`Default`]) is ready to use. Clones share the same set.
#[derive(Clone, Default)]
pub struct SubscriptionScope {
    /// The tracked set, shared with the unsubscribe hooks of its members.
    inner: Arc<Mutex<State>>,
}

/// The tracked set of a [`SubscriptionScope`].
#[derive(Default)]
struct State {
    /// Tracked subscriptions, by the id their hook removes.
    subs: HashMap<u64, Arc<Shared>>,
    /// Source of ids.
    next_id: u64,
    /// Set by `close`; `track` refuses from then on.
    closed: bool,
}

impl SubscriptionScope {
    /// A new, open scope.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.inner)
    }

    /// Starts tracking `sub` and hands it back.
    ///
    /// Unsubscribing (or dropping) the returned subscription removes it from
    /// the scope. Once the scope is closed, returns `None` and unsubscribes
    /// `sub`.
    pub fn track(&self, sub: Subscription) -> Option<Subscription> {
        let id = {
            let mut state = self.lock();
            if state.closed {
                drop(state);
                sub.unsubscribe();
                return None;
            }
            if sub.is_unsubscribed() {
                return Some(sub);
            }
            let id = state.next_id;
            state.next_id += 1;
            state.subs.insert(id, sub.shared().clone());
            id
        };
        let weak = Arc::downgrade(&self.inner);
        sub.shared().add_hook(Box::new(move || {
            if let Some(inner) = weak.upgrade() {
                lock(&inner).subs.remove(&id);
            }
        }));
        Some(sub)
    }

    /// Unsubscribes every tracked subscription and refuses new ones.
    /// Idempotent.
    pub fn close(&self) {
        let subs = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.subs)
        };
        for shared in subs.into_values() {
            shared.unsubscribe();
        }
    }

    /// Whether [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The number of tracked subscriptions that are not unsubscribed yet.
    pub fn count(&self) -> usize {
        self.lock().subs.len()
    }
}

impl fmt::Debug for SubscriptionScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SubscriptionScope")
            .field("count", &state.subs.len())
            .field("closed", &state.closed)
            .finish()
    }
}
