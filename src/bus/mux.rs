//! The typed event bus: any `Send + Sync + 'static` value, routed by type.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::poll_fn;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use futures_core::Stream;
use tokio::sync::{Notify, mpsc};

use super::feed::Feed;
use super::lossy::LossyQueue;
use super::ring::Ring;
use super::stream::{EventStream, LossyStream};
use super::subscription::Subscription;
use crate::sync::{lock, read, write};

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
///   many events they missed ([`Lagged`](super::Lagged)).
/// - **Order.** Events posted by one task arrive at each subscriber in post
///   order. A [`TypeMuxSubscription`] keeps that order across its types.
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
    inner: Arc<Inner>,
}

/// An event delivered to a [`TypeMuxSubscription`], with the time it was
/// posted.
#[derive(Clone)]
pub struct TypeMuxEvent {
    /// When the event was posted.
    pub time: SystemTime,
    /// The event itself; see [`TypeMuxEvent::downcast`].
    pub data: Arc<dyn Any + Send + Sync>,
}

/// A builder for a subscription to several event types at once; made by
/// [`TypeMux::subscribe_many`].
#[must_use = "call .build() to subscribe"]
pub struct SubscribeMany {
    /// The bus to subscribe to.
    mux: TypeMux,
    /// The types chosen so far, in order.
    types: Vec<Registrar>,
}

/// A subscription to several event types, delivered in post order as
/// [`TypeMuxEvent`]s; made by [`SubscribeMany::build`].
///
/// It is a reliable subscriber: posts of its types wait while it is
/// `capacity` events behind. Dropping it unsubscribes.
#[must_use = "streams do nothing unless polled; dropping one unsubscribes"]
pub struct TypeMuxSubscription {
    /// Where posts of every chosen type arrive.
    rx: mpsc::Receiver<TypeMuxEvent>,
    /// One feed registration per chosen type.
    subs: Vec<Subscription>,
    /// Set by `unsubscribe`; `recv` yields `None` from then on.
    unsubscribed: AtomicBool,
}

/// The error of a post to a stopped [`TypeMux`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("the type mux is stopped")]
pub struct MuxClosed;

/// The state shared by every handle to one bus.
struct Inner {
    /// One topic per event type that has ever had a subscriber, replaced whole
    /// when a type is added so posts read it without a lock.
    topics: ArcSwap<TopicMap>,
    /// Serialises topic creation with itself and with `stop`.
    write: Mutex<()>,
    /// Per-subscriber capacity of every topic.
    capacity: usize,
    /// Set by `stop`; posts check it after counting themselves in flight.
    stopped: AtomicBool,
    /// Posts in flight.
    inflight: AtomicUsize,
    /// Notified when the last post in flight ends after `stop`.
    idle: Notify,
    /// User state for handler extractors, by type.
    states: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

/// The topics of a bus, by event type.
type TopicMap = HashMap<TypeId, Arc<dyn AnyTopic>, BuildHasherDefault<TypeIdHasher>>;

/// Everything subscribed to one event type.
struct Topic<E> {
    /// Reliable single-type subscribers.
    ring: Arc<Ring<E>>,
    /// Reliable multi-type subscribers ([`TypeMuxSubscription`]).
    many: Feed<TypeMuxEvent>,
    /// Lossy subscribers.
    lossy: ArcSwap<Vec<Arc<LossyQueue<E>>>>,
    /// Serialises changes to `lossy`.
    lossy_write: Mutex<()>,
    /// How many lossy and multi-type subscribers there are, so posts to a
    /// topic with stream subscribers only skip looking for them.
    sinks: AtomicUsize,
}

/// A type-erased [`Topic`], downcast through its `Any` supertrait.
trait AnyTopic: Any + Send + Sync {
    /// Ends every subscriber once drained.
    fn close(&self);
}

/// How [`SubscribeMany`] subscribes to one type.
struct Registrar {
    /// The type.
    id: TypeId,
    /// Its name, for the duplicate-type panic and `Debug`.
    name: &'static str,
    /// Adds `tx` to the type's multi-type feed; `None` if the bus stopped.
    register: fn(&TypeMux, &mpsc::Sender<TypeMuxEvent>) -> Option<Subscription>,
}

/// Counts a post as in flight until dropped.
struct InflightGuard<'a>(&'a Inner);

/// A hasher for `TypeId` keys, which already hash to well-mixed bits.
#[derive(Default)]
struct TypeIdHasher(u64);

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
                write: Mutex::new(()),
                capacity: per_subscriber.max(1),
                stopped: AtomicBool::new(false),
                inflight: AtomicUsize::new(0),
                idle: Notify::new(),
                states: RwLock::new(HashMap::new()),
            }),
        }
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
        let _guard = self.inner.enter()?;
        // Fast path: only stream subscribers and room in the ring, decided
        // without cloning the topic handle.
        let (topic, epoch, mut value) = {
            let topics = self.inner.topics.load();
            let Some(entry) = topics.get(&TypeId::of::<E>()) else {
                return Ok(0);
            };
            let Some(topic) = typed_topic::<E>(entry) else {
                return Ok(0);
            };
            if topic.sinks.load(SeqCst) > 0 {
                let entry = entry.clone();
                drop(topics);
                let Some(topic) = typed_topic::<E>(&entry) else {
                    return Ok(0);
                };
                return Ok(topic.publish(event()).await);
            }
            let epoch = topic.ring.begin();
            if !topic.ring.has_receivers() {
                return Ok(0);
            }
            let mut value = Some(event());
            if let Poll::Ready(n) = topic.ring.poll_send(None, epoch, &mut value) {
                return Ok(n);
            }
            (entry.clone(), epoch, value)
        };
        // The ring is full: wait for room, as a parked sender.
        let Some(topic) = typed_topic::<E>(&topic) else {
            return Ok(0);
        };
        Ok(poll_fn(|cx| topic.ring.poll_send(Some(cx.waker()), epoch, &mut value)).await)
    }

    /// Subscribes to events of type `E`, reliably.
    ///
    /// The stream yields every `E` posted from now on, in order, and ends
    /// when the bus stops. Dropping it unsubscribes. After `stop` it has
    /// already ended.
    pub fn subscribe<E: Send + Sync + 'static>(&self) -> EventStream<E> {
        match self.topic_or_create::<E>() {
            Some(topic) => EventStream::new(topic.ring.subscribe()),
            None => EventStream::new(super::ring::Receiver::ended()),
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
        let queue = Arc::new(LossyQueue::new(capacity));
        topic.update_lossy(|list| list.push(queue.clone()));
        topic.sinks.fetch_add(1, SeqCst);
        let weak_topic = Arc::downgrade(&topic);
        let weak_queue = Arc::downgrade(&queue);
        let registration = Subscription::passive(move || {
            if let (Some(topic), Some(queue)) = (weak_topic.upgrade(), weak_queue.upgrade()) {
                topic.update_lossy(|list| list.retain(|q| !Arc::ptr_eq(q, &queue)));
                topic.sinks.fetch_sub(1, SeqCst);
            }
        });
        // A stop that ran between topic lookup and registration closed the
        // list before our queue joined it.
        if self.is_stopped() {
            queue.close();
        }
        LossyStream::new(queue, registration)
    }

    /// Starts a subscription to several event types delivered through one
    /// stream, in post order.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus::TypeMux;
    ///
    /// struct Ready;
    /// struct GuildCreate(u64);
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let bus = TypeMux::new();
    /// let mut sub = bus.subscribe_many().to::<Ready>().to::<GuildCreate>().build();
    /// bus.post(Ready).await.unwrap();
    /// bus.post(GuildCreate(1)).await.unwrap();
    /// assert!(sub.recv().await.unwrap().is::<Ready>());
    /// assert_eq!(sub.recv().await.unwrap().downcast::<GuildCreate>().unwrap().0, 1);
    /// # }
    /// ```
    pub fn subscribe_many(&self) -> SubscribeMany {
        SubscribeMany {
            mux: self.clone(),
            types: Vec::new(),
        }
    }

    /// Whether anything subscribes to `E` now: a stream, a multi-type or
    /// lossy subscription, or a handler. Producers use it to skip building
    /// events nobody wants.
    pub fn has_subscribers<E: Send + Sync + 'static>(&self) -> bool {
        let topics = self.inner.topics.load();
        topics
            .get(&TypeId::of::<E>())
            .and_then(typed_topic::<E>)
            .is_some_and(|topic| topic.ring.has_receivers() || topic.sinks.load(SeqCst) > 0)
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

    /// Registers user state for handler extractors.
    pub(crate) fn insert_state(&self, id: TypeId, state: Arc<dyn Any + Send + Sync>) {
        write(&self.inner.states).insert(id, state);
    }

    /// The user state registered under `id`.
    pub(crate) fn get_state(&self, id: TypeId) -> Option<Arc<dyn Any + Send + Sync>> {
        read(&self.inner.states).get(&id).cloned()
    }

    /// The topic of `E`, created if needed; `None` once stopped.
    fn topic_or_create<E: Send + Sync + 'static>(&self) -> Option<Arc<Topic<E>>> {
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
        let mut map = TopicMap::clone(&topics);
        map.insert(id, topic.clone());
        self.inner.topics.store(Arc::new(map));
        Some(topic)
    }
}

/// The concrete topic behind a map entry for `E`. The map only ever holds
/// `Topic<E>` under `TypeId::of::<E>()`, so this is `Some` for the entry
/// found under that key.
fn typed_topic<E: Send + Sync + 'static>(topic: &Arc<dyn AnyTopic>) -> Option<&Topic<E>> {
    (&**topic as &dyn Any).downcast_ref::<Topic<E>>()
}

/// Recovers the concrete topic from the map entry.
fn topic_arc<E: Send + Sync + 'static>(topic: Arc<dyn AnyTopic>) -> Option<Arc<Topic<E>>> {
    // The map only ever holds `Topic<E>` under `TypeId::of::<E>()`.
    let any: Arc<dyn Any + Send + Sync> = topic;
    any.downcast::<Topic<E>>().ok()
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

impl<E: Send + Sync + 'static> Topic<E> {
    fn new(capacity: usize) -> Self {
        Self {
            ring: Arc::new(Ring::new(capacity)),
            many: Feed::new(),
            lossy: ArcSwap::from_pointee(Vec::new()),
            lossy_write: Mutex::new(()),
            sinks: AtomicUsize::new(0),
        }
    }

    /// Delivers one event to every current subscriber of this type.
    async fn publish(&self, event: Arc<E>) -> usize {
        let epoch = self.ring.begin();
        let many = self.many.snapshot();
        // Only multi-type subscribers see the time; it is the post's start.
        let time = (!many.is_empty()).then(SystemTime::now);
        let lossy = self.lossy.load();
        if !self.ring.has_receivers() && many.is_empty() && lossy.is_empty() {
            return 0;
        }
        // Lossy subscribers first: they never wait, so their snapshot is
        // used at once.
        let mut delivered = lossy.iter().filter(|q| q.push(event.clone())).count();
        drop(lossy);
        if self.ring.has_receivers() {
            let mut value = Some(event.clone());
            delivered +=
                poll_fn(|cx| self.ring.poll_send(Some(cx.waker()), epoch, &mut value)).await;
        }
        if let Some(time) = time {
            let wrapped = TypeMuxEvent { time, data: event };
            delivered += Feed::send_to(&many, wrapped).await;
        }
        delivered
    }

    fn update_lossy(&self, edit: impl FnOnce(&mut Vec<Arc<LossyQueue<E>>>)) {
        let _write = lock(&self.lossy_write);
        let mut list = Vec::clone(&self.lossy.load());
        edit(&mut list);
        self.lossy.store(Arc::new(list));
    }
}

impl<E: Send + Sync + 'static> AnyTopic for Topic<E> {
    fn close(&self) {
        self.ring.close();
        self.many.close();
        for queue in self.lossy.load().iter() {
            queue.close();
        }
    }
}

impl SubscribeMany {
    /// Adds `E` to the types of this subscription.
    ///
    /// # Panics
    ///
    /// Panics if `E` was already added: each type is delivered once per
    /// subscription, so naming it twice is a programming error.
    pub fn to<E: Send + Sync + 'static>(mut self) -> Self {
        let id = TypeId::of::<E>();
        let name = std::any::type_name::<E>();
        assert!(
            self.types.iter().all(|r| r.id != id),
            "subscribe_many: type {name} was added twice"
        );
        self.types.push(Registrar {
            id,
            name,
            register: register_many::<E>,
        });
        self
    }

    /// Subscribes to every chosen type.
    ///
    /// With no type chosen, or on a stopped bus, the subscription has
    /// already ended.
    pub fn build(self) -> TypeMuxSubscription {
        let (tx, rx) = mpsc::channel(self.mux.inner.capacity);
        let mut subs = Vec::with_capacity(self.types.len());
        for registrar in &self.types {
            match (registrar.register)(&self.mux, &tx) {
                Some(sub) => subs.push(sub),
                None => {
                    subs.clear();
                    break;
                }
            }
        }
        // A stop that closed the topics while we registered would leave our
        // sender in a feed nobody closes again.
        if self.mux.is_stopped() {
            subs.clear();
        }
        drop(tx);
        TypeMuxSubscription {
            rx,
            subs,
            unsubscribed: AtomicBool::new(false),
        }
    }
}

/// [`Registrar::register`] for `E`.
fn register_many<E: Send + Sync + 'static>(
    mux: &TypeMux,
    tx: &mpsc::Sender<TypeMuxEvent>,
) -> Option<Subscription> {
    let topic = mux.topic_or_create::<E>()?;
    topic.sinks.fetch_add(1, SeqCst);
    let sub = topic.many.subscribe(tx.clone());
    let weak = Arc::downgrade(&topic);
    sub.shared().add_hook(Box::new(move || {
        if let Some(topic) = weak.upgrade() {
            topic.sinks.fetch_sub(1, SeqCst);
        }
    }));
    Some(sub)
}

impl TypeMuxSubscription {
    /// Whether the subscription has ended: unsubscribed, or the bus stopped
    /// and every posted event was read.
    pub fn closed(&self) -> bool {
        self.unsubscribed.load(SeqCst) || (self.rx.is_closed() && self.rx.is_empty())
    }

    /// Stops the subscription: no more events are delivered and `recv`
    /// returns `None`. Idempotent.
    pub fn unsubscribe(&self) {
        self.unsubscribed.store(true, SeqCst);
        for sub in &self.subs {
            sub.unsubscribe();
        }
    }

    /// Receives the next event; `None` once the subscription has ended.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn recv(&mut self) -> Option<TypeMuxEvent> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<TypeMuxEvent>> {
        if self.unsubscribed.load(SeqCst) {
            return Poll::Ready(None);
        }
        self.rx.poll_recv(cx)
    }
}

impl Stream for TypeMuxSubscription {
    type Item = TypeMuxEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<TypeMuxEvent>> {
        self.get_mut().poll_event(cx)
    }
}

impl Drop for TypeMuxSubscription {
    fn drop(&mut self) {
        self.unsubscribe();
    }
}

impl TypeMuxEvent {
    /// The event as an `Arc<E>`, if it is an `E`.
    pub fn downcast<E: Send + Sync + 'static>(&self) -> Option<Arc<E>> {
        self.data.clone().downcast::<E>().ok()
    }

    /// Whether the event is an `E`.
    pub fn is<E: Send + Sync + 'static>(&self) -> bool {
        self.data.is::<E>()
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

impl fmt::Debug for TypeMuxEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeMuxEvent")
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SubscribeMany {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.types.iter().map(|r| r.name))
            .finish()
    }
}

impl fmt::Debug for TypeMuxSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypeMuxSubscription")
            .field("types", &self.subs.len())
            .field("closed", &self.closed())
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
}
