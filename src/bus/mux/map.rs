//! The [`TypeMux`] handle: its `TypeId` map of topics, posting, and the
//! stop protocol.
//!
//! A post that must wait for room (or serve multi-type and lossy
//! subscribers) counts itself in flight before checking `stopped`; `stop`
//! sets `stopped`, waits until nothing is in flight, then closes every topic
//! under the map's write lock, so no post writes after its topic closed and
//! no topic is created after the map was closed.
//!
//! A post that finds room in its ring at once (the common case) is not
//! counted: it takes effect at the ring's lock, which `close` takes too. If
//! it gets there first, its value is written before the ring closes and
//! subscribers drain it; if not, the ring is closed and the post fails with
//! [`MuxClosed`] as if it had started after `stop`. Either way `stop` does
//! not return before it is done. (The count cost two atomic
//! read-modify-writes per post, about 10% of a one-subscriber post.)

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::Poll;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use super::index::{Lookup, TopicIndex, TypeIdHasher};
use super::state::StateMap;
use super::topic::{AnyTopic, RingPost, Topic, topic_arc, typed_topic};
use crate::bus::handler::HandlerRegistry;
use crate::bus::ring::Receiver;
use crate::bus::stream::{EventStream, LossyStream};
use crate::sync::lock;

/// The default number of events a reliable subscriber may lag behind before
/// posts wait for it.
pub const DEFAULT_CAPACITY: usize = 128;

/// A typed publish/subscribe bus.
///
/// Events are routed by their exact type: `bus.post(10)` posts an `i32` and
/// reaches no subscriber of `u32`; write `bus.post(10u32)`.
///
/// [`TypeMux`] is go-ethereum's `event.TypeMux` with the types checked by the
/// compiler: [`post`](TypeMux::post) a value of type `E` and every subscriber
/// of `E` (and only of `E`) receives it as an `Arc<E>`.
///
/// # Delivery semantics
///
/// - **Reliable by default.** A post is delivered to every reliable
///   subscriber ([`subscribe`](TypeMux::subscribe),
///   [`subscribe_many`](TypeMux::subscribe_many)) that existed when the post
///   started. If one of them is `capacity` events behind, the post waits for
///   it (backpressure); dropping or unsubscribing that subscriber releases
///   the post at once. Subscribers created after a post started do not
///   receive it.
/// - **Lossy on request.** [`subscribe_lossy`](TypeMux::subscribe_lossy)
///   subscribers never slow a post; when they fall behind they are told how
///   many events they missed ([`Lagged`](crate::bus::Lagged)).
/// - **Order.** Events posted by one task arrive at each subscriber in post
///   order. A [`TypeMuxSubscription`](super::TypeMuxSubscription) keeps that
///   order across its types.
/// - **One allocation per post.** Every subscriber receives the same `Arc<E>`;
///   posting a type nobody subscribes to allocates nothing and returns `0`.
/// - **Stop.** [`stop`](TypeMux::stop) makes later posts fail with
///   [`MuxClosed`], waits for posts in flight, then ends every stream once it
///   has yielded the events already posted. Subscribing after `stop` gives a
///   stream that has already ended.
///
/// Each event type has its own shared ring of `capacity` slots that every
/// reliable subscriber reads with its own cursor, so a post costs the same
/// whether one task or sixty-four listen.
///
/// # Examples
///
/// ```
/// use shardbus::TypeMux;
/// use futures::StreamExt;
///
/// #[derive(Debug)]
/// struct MessageCreate { content: String }
/// #[derive(Debug)]
/// struct TypingStart;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let bus = TypeMux::new();
/// let mut messages = bus.subscribe::<MessageCreate>();
///
/// assert_eq!(bus.post(TypingStart).await, Ok(0)); // nobody listens to that
/// assert_eq!(bus.post(MessageCreate { content: "hi".into() }).await, Ok(1));
///
/// let msg = messages.next().await.unwrap();
/// assert_eq!(msg.content, "hi");
///
/// bus.stop().await;
/// assert!(messages.next().await.is_none());
/// # }
/// ```
///
/// `TypeMux` is a cheap handle (`Clone` shares the same bus) and is `Send +
/// Sync`, so producers and subscribers on any task can hold it.
#[derive(Clone)]
pub struct TypeMux {
    /// The bus shared by every clone.
    pub(super) inner: Arc<Inner>,
}

/// The error of a post to a stopped [`TypeMux`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the type mux is stopped")]
pub struct MuxClosed;

/// The state shared by every handle to one bus.
pub(super) struct Inner {
    /// One topic per event type that has ever had a subscriber, replaced whole
    /// when a type is added so posts read it without a lock.
    topics: ArcSwap<TopicMap>,
    /// The same topics, indexed for posts without a lock.
    index: TopicIndex,
    /// Serialises topic creation with itself and with `stop`.
    write: Mutex<()>,
    /// Per-subscriber capacity of every topic.
    capacity: usize,
    /// Set by `stop`; posts check it first, and again after counting
    /// themselves in flight when they must wait.
    stopped: AtomicBool,
    /// Posts in flight: those waiting for room in a ring or serving
    /// multi-type and lossy subscribers (the fast path is not counted; see
    /// the module docs).
    inflight: AtomicUsize,
    /// Notified when the last post in flight ends after `stop`.
    idle: Notify,
    /// User state for handler extractors, by type.
    pub(super) states: StateMap,
    /// The handlers registered on the bus, and who is told of their calls.
    handlers: Arc<HandlerRegistry>,
}

/// The topics of a bus, by event type.
type TopicMap = HashMap<TypeId, Arc<dyn AnyTopic>, BuildHasherDefault<TypeIdHasher>>;

/// Counts a post as in flight until dropped.
struct InflightGuard<'a>(&'a Inner);

impl TypeMux {
    /// A bus whose reliable subscribers may lag [`DEFAULT_CAPACITY`] events.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A bus whose reliable subscribers may lag `per_subscriber` events
    /// behind before posts wait for them (at least 1).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = shardbus::TypeMux::with_capacity(1024);
    /// assert_eq!(bus.capacity(), 1024);
    /// # }
    /// ```
    pub fn with_capacity(per_subscriber: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                topics: ArcSwap::from_pointee(TopicMap::default()),
                index: TopicIndex::new(),
                write: Mutex::new(()),
                capacity: per_subscriber.max(1),
                stopped: AtomicBool::new(false),
                inflight: AtomicUsize::new(0),
                idle: Notify::new(),
                states: StateMap::default(),
                handlers: Arc::default(),
            }),
        }
    }

    /// The handlers registered on this bus, by event type.
    pub(crate) fn handler_registry(&self) -> &Arc<HandlerRegistry> {
        &self.inner.handlers
    }

    /// How many events a reliable subscriber may lag behind.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Delivers `event` to every subscriber of `E` and returns how many.
    ///
    /// Waits while a reliable subscriber of `E` is `capacity` events behind.
    ///
    /// # Errors
    ///
    /// [`MuxClosed`] if the bus has been stopped.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: if the future is dropped while it waits, the event
    /// may have reached some subscribers and not others.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus::{MuxClosed, TypeMux};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = TypeMux::new();
    /// let _a = bus.subscribe::<u8>();
    /// let _b = bus.subscribe::<u8>();
    /// assert_eq!(bus.post(1u8).await, Ok(2));
    /// bus.stop().await;
    /// assert_eq!(bus.post(2u8).await, Err(MuxClosed));
    /// # }
    /// ```
    pub async fn post<E: Send + Sync + 'static>(&self, event: E) -> Result<usize, MuxClosed> {
        // The `Arc` is made only once a subscriber is known to exist.
        self.post_with(move || Arc::new(event)).await
    }

    /// Like [`post`](Self::post), for an event already in an `Arc` (to
    /// forward one without copying it, or to keep a reference to it).
    ///
    /// # Errors
    ///
    /// [`MuxClosed`] if the bus has been stopped.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe, as [`post`](Self::post).
    pub async fn post_arc<E: Send + Sync + 'static>(
        &self,
        event: Arc<E>,
    ) -> Result<usize, MuxClosed> {
        self.post_with(move || event).await
    }

    /// The post itself; `event` is called only if someone subscribes to `E`.
    async fn post_with<E: Send + Sync + 'static>(
        &self,
        event: impl FnOnce() -> Arc<E>,
    ) -> Result<usize, MuxClosed> {
        if self.is_stopped() {
            return Err(MuxClosed);
        }
        let held;
        let entry = match self.inner.index.get(TypeId::of::<E>()) {
            Lookup::Found(entry) => entry,
            Lookup::Absent => return Ok(0),
            Lookup::Unknown => {
                let Some(entry) = self.inner.topics.load().get(&TypeId::of::<E>()).cloned() else {
                    return Ok(0);
                };
                held = entry;
                &held
            }
        };
        let Some(topic) = typed_topic::<E>(entry) else {
            return Ok(0);
        };
        #[cfg(feature = "metrics")]
        topic.metrics.posts.increment(1);
        if topic.has_sinks() {
            let _guard = self.inner.enter()?;
            return Ok(topic.publish(event()).await);
        }
        // Fast path: stream subscribers only and room in the ring, without
        // counting the post in flight (see the module docs).
        let epoch = topic.ring.begin();
        if !topic.ring.has_receivers() {
            return Ok(0);
        }
        let mut ring_post = RingPost::new(epoch, event());
        match ring_post.try_send(&topic.ring) {
            // Written after the ring closed: this post lost the race with
            // `stop`.
            Poll::Ready(0) if topic.ring.is_closed() => Err(MuxClosed),
            Poll::Ready(n) => Ok(n),
            Poll::Pending => {
                // The ring is full: wait for room as a post in flight, which
                // `stop` waits for.
                let _guard = self.inner.enter()?;
                let send = ring_post.send(&topic.ring);
                #[cfg(feature = "metrics")]
                let send = crate::metrics::time_if_blocked(&topic.metrics.backpressure, send);
                Ok(send.await)
            }
        }
    }

    /// Subscribes to events of type `E`, reliably.
    ///
    /// The stream yields every `E` posted from now on, in order, and ends
    /// when the bus stops. Dropping it unsubscribes. After `stop` it has
    /// already ended.
    pub fn subscribe<E: Send + Sync + 'static>(&self) -> EventStream<E> {
        match self.topic_or_create::<E>() {
            Some(topic) => EventStream::new(topic.ring.subscribe()),
            None => EventStream::new(Receiver::ended()),
        }
    }

    /// Subscribes to events of type `E` without ever slowing posts.
    ///
    /// The stream buffers up to `capacity` events (at least 1); when a post
    /// finds it full, the oldest buffered event is dropped and the stream
    /// next yields `Err(Lagged { missed })` with the exact number dropped.
    pub fn subscribe_lossy<E: Send + Sync + 'static>(&self, capacity: usize) -> LossyStream<E> {
        let Some(topic) = self.topic_or_create::<E>() else {
            return LossyStream::ended();
        };
        let (queue, registration) = topic.add_lossy(capacity);
        // A stop that ran between topic lookup and registration closed the
        // list before our queue joined it.
        if self.is_stopped() {
            queue.close();
        }
        LossyStream::new(queue, registration)
    }

    /// Whether anything subscribes to `E` now: a stream, a multi-type or
    /// lossy subscription, or a handler. Producers use it to skip building
    /// events nobody wants.
    pub fn has_subscribers<E: Send + Sync + 'static>(&self) -> bool {
        match self.inner.index.get(TypeId::of::<E>()) {
            Lookup::Found(entry) => typed_topic::<E>(entry).is_some_and(Topic::has_subscribers),
            Lookup::Absent => false,
            Lookup::Unknown => self
                .inner
                .topics
                .load()
                .get(&TypeId::of::<E>())
                .and_then(typed_topic::<E>)
                .is_some_and(Topic::has_subscribers),
        }
    }

    /// Stops the bus.
    ///
    /// Later posts return [`MuxClosed`]. Returns once every post in flight
    /// has finished (they still wait on slow reliable subscribers, so every
    /// event they report is delivered); then every stream ends after
    /// yielding what was already posted. Calling it again is harmless.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the bus is stopped from the first poll; dropping the
    /// future only skips waiting for posts in flight and closing streams,
    /// which a later `stop` completes.
    pub async fn stop(&self) {
        self.inner.stopped.store(true, SeqCst);
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.inner.inflight.load(SeqCst) == 0 {
                break;
            }
            idle.await;
        }
        let _write = lock(&self.inner.write);
        for topic in self.inner.topics.load().values() {
            topic.close();
        }
    }

    /// Whether [`stop`](Self::stop) has been called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(SeqCst)
    }

    /// The topic of `E`, created if needed; `None` once stopped.
    pub(super) fn topic_or_create<E: Send + Sync + 'static>(&self) -> Option<Arc<Topic<E>>> {
        let id = TypeId::of::<E>();
        let _write = lock(&self.inner.write);
        if self.is_stopped() {
            return None;
        }
        let topics = self.inner.topics.load();
        if let Some(topic) = topics.get(&id) {
            return topic_arc::<E>(topic.clone());
        }
        let topic = Arc::new(Topic::<E>::new(self.inner.capacity));
        let entry: Arc<dyn AnyTopic> = topic.clone();
        let mut map = TopicMap::clone(&topics);
        map.insert(id, entry.clone());
        self.inner.topics.store(Arc::new(map));
        self.inner.index.insert(id, &entry);
        Some(topic)
    }
}

impl Inner {
    fn enter(&self) -> Result<InflightGuard<'_>, MuxClosed> {
        self.inflight.fetch_add(1, SeqCst);
        let guard = InflightGuard(self);
        if self.stopped.load(SeqCst) {
            return Err(MuxClosed);
        }
        Ok(guard)
    }
}

impl Drop for Inner {
    /// The last handle is gone: nobody can post again, so end every stream
    /// (after it has yielded what was posted) instead of leaving it pending.
    fn drop(&mut self) {
        for topic in self.topics.load().values() {
            topic.close();
        }
    }
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        if self.0.inflight.fetch_sub(1, SeqCst) == 1 && self.0.stopped.load(SeqCst) {
            self.0.idle.notify_waiters();
        }
    }
}

impl Default for TypeMux {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TypeMux {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeMux")
            .field("capacity", &self.inner.capacity)
            .field("types", &self.inner.topics.load().len())
            .field("stopped", &self.is_stopped())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn unsubscribed_type_allocates_no_topic() {
        let bus = TypeMux::new();
        assert_eq!(bus.post(1u32).await, Ok(0));
        assert!(bus.inner.topics.load().is_empty());
        assert_eq!(bus.inner.inflight.load(SeqCst), 0);
    }

    /// A post that passed the `stopped` check just before `stop` closed its
    /// ring (the race the uncounted fast path leaves open) fails as a post
    /// after `stop` does, rather than reporting `Ok(0)`.
    #[tokio::test]
    async fn a_post_that_finds_its_ring_closed_fails() {
        let bus = TypeMux::new();
        let _rx = bus.subscribe::<u32>();
        // What `stop` does once no post is in flight, without `stopped` set.
        for topic in bus.inner.topics.load().values() {
            topic.close();
        }
        assert_eq!(bus.post(1u32).await, Err(MuxClosed));
        assert_eq!(bus.inner.inflight.load(SeqCst), 0);
    }
}
