//! One-to-many delivery of a single type into the subscribers' own channels.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::sync::CancellationToken;

use super::subscription::Subscription;
use crate::sync::lock;

/// A one-to-many channel of `T` values into subscriber-owned `mpsc` channels.
///
/// `Feed` is a cheap handle: clones share the same subscribers. The zero value
/// ([`Default`]) is ready to use.
///
/// [`Feed<T>`] is go-ethereum's `event.Feed` in Rust. Subscribers hand it the
/// sending half of a bounded [`tokio::sync::mpsc`] channel; [`Feed::send`]
/// delivers a clone of the value into each.
///
/// # Delivery semantics
///
/// - **Lossless.** A value is delivered to every subscriber that was
///   subscribed when `send` started. A subscriber whose channel is full makes
///   `send` wait: slow subscribers are not dropped. Subscribers with room get
///   the value at once; the full ones are waited on together.
/// - **Release on leave.** A subscriber that unsubscribes, or whose receiver
///   is dropped, while `send` waits on it releases the `send` at once; it is
///   not counted in the return value.
/// - **Order.** Values sent by one task arrive at each subscriber in the order
///   they were sent. Concurrent `send`s from several tasks all arrive; their
///   relative order is the order in which they reach each channel.
/// - **No deadlock on unsubscribe.** Unsubscribing never waits on a `send`, so
///   a subscriber may unsubscribe from inside its own receive loop.
/// - Subscribing the same channel twice delivers every value twice.
///
/// # Examples
///
/// ```
/// use shardbus::Feed;
/// use tokio::sync::mpsc;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let feed = Feed::<u64>::default();
/// let (tx, mut rx) = mpsc::channel(16);
/// let sub = feed.subscribe(tx);
///
/// assert_eq!(feed.send(7).await, 1);
/// assert_eq!(rx.recv().await, Some(7));
///
/// sub.unsubscribe();
/// assert_eq!(feed.send(8).await, 0);
/// # }
/// ```
pub struct Feed<T> {
    /// The subscriber list, shared by clones of this handle and by the
    /// subscriptions it returned (which remove themselves from it).
    inner: Arc<Inner<T>>,
}

/// The subscriber list behind a [`Feed`].
struct Inner<T> {
    /// The current subscribers, replaced whole on every change so `send` can
    /// take a consistent snapshot without a lock.
    subs: ArcSwap<Vec<Entry<T>>>,
    /// Serialises changes to `subs` (readers never take it).
    write: Mutex<()>,
    /// Source of entry ids, so an unsubscribe removes exactly its own entry.
    next_id: AtomicU64,
}

/// One subscriber of a [`Feed`].
struct Entry<T> {
    /// Identifies this entry for removal.
    id: u64,
    /// Where values go.
    tx: mpsc::Sender<T>,
    /// Cancelled when this entry is unsubscribed; a `send` waiting on this
    /// entry gives up when it fires.
    token: CancellationToken,
    /// Set when this entry is unsubscribed, before `token` fires: the check
    /// on every delivery (`CancellationToken::is_cancelled` takes a lock).
    left: Arc<AtomicBool>,
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            tx: self.tx.clone(),
            token: self.token.clone(),
            left: self.left.clone(),
        }
    }
}

/// A consistent view of a feed's subscribers, taken when a delivery starts.
pub(crate) struct Snapshot<T>(Arc<Vec<Entry<T>>>);

impl<T: Clone + Send + 'static> Feed<T> {
    /// Creates a feed with no subscribers.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                subs: ArcSwap::from_pointee(Vec::new()),
                write: Mutex::new(()),
                next_id: AtomicU64::new(0),
            }),
        }
    }

    /// Adds a subscriber: every later [`send`](Self::send) delivers into `tx`.
    ///
    /// The returned [`Subscription`] removes the subscriber when it is
    /// unsubscribed or dropped; its [`err`](Subscription::err) returns `None`
    /// once that happens. Subscribing the same channel twice delivers twice.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus::Feed;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let feed = Feed::new();
    /// let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    /// let _a = feed.subscribe(tx.clone());
    /// let _b = feed.subscribe(tx);
    /// assert_eq!(feed.send("hi").await, 2);
    /// assert_eq!(rx.recv().await, Some("hi"));
    /// assert_eq!(rx.recv().await, Some("hi"));
    /// # }
    /// ```
    pub fn subscribe(&self, tx: mpsc::Sender<T>) -> Subscription {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        let left = Arc::new(AtomicBool::new(false));
        self.inner.update(|subs| {
            subs.push(Entry {
                id,
                tx,
                token: token.clone(),
                left: left.clone(),
            });
        });
        let weak = Arc::downgrade(&self.inner);
        Subscription::passive(move || {
            left.store(true, Ordering::Release);
            token.cancel();
            if let Some(inner) = weak.upgrade() {
                inner.update(|subs| subs.retain(|e| e.id != id));
            }
        })
    }

    /// Delivers `value` to every current subscriber and returns how many
    /// received it.
    ///
    /// Waits while a subscriber's channel is full. Subscribers that join
    /// after the call started do not receive the value; subscribers that
    /// leave before it reaches them are skipped and not counted.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: if the future is dropped while waiting, the value has
    /// reached some subscribers and not others.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus::Feed;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let feed = Feed::<u32>::new();
    /// assert_eq!(feed.send(1).await, 0); // nobody listening
    /// # }
    /// ```
    pub async fn send(&self, value: T) -> usize {
        // Fill every subscriber with room under the cheap guard; only a full
        // one makes us take an owned snapshot (of the same list) and wait.
        let guard = self.inner.subs.load();
        let (delivered, blocked) = fill_ready(&guard, value);
        if blocked.is_empty() {
            return delivered;
        }
        let snapshot = arc_swap::Guard::into_inner(guard);
        delivered + wait_for_room(&snapshot, blocked).await
    }

    /// The subscribers a delivery starting now must reach.
    pub(crate) fn snapshot(&self) -> Snapshot<T> {
        Snapshot(self.inner.subs.load_full())
    }

    /// Delivers `value` to the subscribers in `snapshot` that are still
    /// subscribed; see [`send`](Self::send).
    pub(crate) async fn send_to(snapshot: &Snapshot<T>, value: T) -> usize {
        let (delivered, blocked) = fill_ready(&snapshot.0, value);
        delivered + wait_for_room(&snapshot.0, blocked).await
    }

    /// The number of subscribers whose receiver is still alive.
    pub fn len(&self) -> usize {
        self.inner
            .subs
            .load()
            .iter()
            .filter(|e| !e.tx.is_closed())
            .count()
    }

    /// Whether the feed has no live subscriber.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every subscriber's sender, so their receivers end once drained.
    /// Their subscriptions stay valid (unsubscribing them is a no-op).
    pub(crate) fn close(&self) {
        self.inner.update(Vec::clear);
    }
}

impl<T> Snapshot<T> {
    /// Whether no subscriber was present.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Delivers `value` to every subscriber in `subs` with room; returns how
/// many got it and, for each full one, its index and its copy of the value.
fn fill_ready<T: Clone>(subs: &[Entry<T>], value: T) -> (usize, Vec<(usize, T)>) {
    let mut value = Some(value);
    let mut delivered = 0;
    let mut blocked = Vec::new();
    for (i, entry) in subs.iter().enumerate() {
        // A clone for each subscriber but the last, which gets the value.
        let v = if i + 1 == subs.len() {
            value.take()
        } else {
            value.clone()
        };
        let Some(v) = v else {
            break;
        };
        match try_deliver(entry, v) {
            Attempt::Delivered => delivered += 1,
            Attempt::Skipped => {}
            Attempt::Full(v) => blocked.push((i, v)),
        }
    }
    (delivered, blocked)
}

/// Waits for room in every full subscriber at once (or for it to leave);
/// returns how many got their value.
async fn wait_for_room<T>(subs: &[Entry<T>], blocked: Vec<(usize, T)>) -> usize {
    let waits = blocked
        .into_iter()
        .map(|(i, v)| deliver_waiting(&subs[i], v));
    futures_util::future::join_all(waits)
        .await
        .into_iter()
        .filter(|delivered| *delivered)
        .count()
}

/// What a non-waiting delivery attempt did.
enum Attempt<T> {
    /// The value is in the subscriber's channel.
    Delivered,
    /// The subscriber has left; not counted.
    Skipped,
    /// The channel is full; here is the value back.
    Full(T),
}

/// Delivers one value to one subscriber if its channel has room.
fn try_deliver<T>(entry: &Entry<T>, value: T) -> Attempt<T> {
    if entry.left.load(Ordering::Acquire) {
        return Attempt::Skipped;
    }
    match entry.tx.try_send(value) {
        Ok(()) => Attempt::Delivered,
        Err(TrySendError::Closed(_)) => Attempt::Skipped,
        Err(TrySendError::Full(value)) => Attempt::Full(value),
    }
}

/// Waits for room in a full subscriber's channel, or for it to leave;
/// `true` if the value was delivered.
async fn deliver_waiting<T>(entry: &Entry<T>, value: T) -> bool {
    tokio::select! {
        biased;
        () = entry.token.cancelled() => false,
        permit = entry.tx.reserve() => match permit {
            Ok(permit) => {
                permit.send(value);
                true
            }
            Err(_) => false,
        },
    }
}

impl<T> Inner<T> {
    /// Replaces the subscriber list with an edited copy.
    fn update(&self, edit: impl FnOnce(&mut Vec<Entry<T>>)) {
        let _write = lock(&self.write);
        let mut subs = Vec::clone(&self.subs.load());
        subs.retain(|e| !e.left.load(Ordering::Acquire) && !e.tx.is_closed());
        edit(&mut subs);
        self.subs.store(Arc::new(subs));
    }
}

impl<T: Clone + Send + 'static> Default for Feed<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Feed<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Feed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Feed")
            .field("subscribers", &self.inner.subs.load().len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropped_receivers_are_pruned_on_next_change() {
        let feed = Feed::<u8>::new();
        let (tx, rx) = mpsc::channel(1);
        let _kept = feed.subscribe(tx);
        drop(rx);
        assert_eq!(feed.len(), 0);
        let (tx2, _rx2) = mpsc::channel(1);
        let _other = feed.subscribe(tx2);
        assert_eq!(feed.inner.subs.load().len(), 1);
    }

    #[tokio::test]
    async fn last_subscriber_gets_the_value_without_a_clone() {
        #[derive(Debug)]
        struct CountClones(Arc<AtomicU64>);
        impl Clone for CountClones {
            fn clone(&self) -> Self {
                self.0.fetch_add(1, Ordering::SeqCst);
                Self(self.0.clone())
            }
        }
        let clones = Arc::new(AtomicU64::new(0));
        let feed = Feed::new();
        let (tx, _rx) = mpsc::channel(4);
        let _a = feed.subscribe(tx.clone());
        let _b = feed.subscribe(tx);
        assert_eq!(feed.send(CountClones(clones.clone())).await, 2);
        assert_eq!(clones.load(Ordering::SeqCst), 1);
    }
}
