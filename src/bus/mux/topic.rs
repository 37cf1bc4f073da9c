//! Everything subscribed to one event type, and the one path a post takes
//! to its ring.

use std::any::Any;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

use super::many::TypeMuxEvent;
use crate::bus::feed::Feed;
use crate::bus::lossy::LossyQueue;
use crate::bus::ring::Ring;
use crate::bus::subscription::Subscription;
use crate::sync::lock;

/// Everything subscribed to one event type.
pub(super) struct Topic<E> {
    /// Reliable single-type subscribers.
    pub(super) ring: Arc<Ring<E>>,
    /// Reliable multi-type subscribers ([`TypeMuxSubscription`](super::TypeMuxSubscription)).
    many: Feed<TypeMuxEvent>,
    /// Lossy subscribers.
    lossy: ArcSwap<Vec<Arc<LossyQueue<E>>>>,
    /// Serialises changes to `lossy`.
    lossy_write: Mutex<()>,
    /// How many lossy and multi-type subscribers there are, so posts to a
    /// topic with stream subscribers only skip looking for them.
    sinks: AtomicUsize,
    /// This type's metric handles.
    #[cfg(feature = "metrics")]
    pub(super) metrics: crate::metrics::TopicMetrics,
}

/// A type-erased [`Topic`], downcast through its `Any` supertrait.
pub(super) trait AnyTopic: Any + Send + Sync {
    /// Ends every subscriber once drained.
    fn close(&self);
}

/// One post's delivery to a topic's ring: the only way a value enters a
/// [`Ring`] from the bus, whether the post has stream subscribers only or
/// multi-type and lossy ones too.
pub(super) struct RingPost<E> {
    /// The ring's epoch when the post began: receivers that joined later do
    /// not count it.
    epoch: u64,
    /// The value, until it is written.
    value: Option<Arc<E>>,
}

/// The concrete topic behind a map entry for `E`. The map only ever holds
/// `Topic<E>` under `TypeId::of::<E>()`, so this is `Some` for the entry
/// found under that key.
pub(super) fn typed_topic<E: Send + Sync + 'static>(
    topic: &Arc<dyn AnyTopic>,
) -> Option<&Topic<E>> {
    (&**topic as &dyn Any).downcast_ref::<Topic<E>>()
}

/// Recovers the concrete topic from the map entry.
pub(super) fn topic_arc<E: Send + Sync + 'static>(
    topic: Arc<dyn AnyTopic>,
) -> Option<Arc<Topic<E>>> {
    // The map only ever holds `Topic<E>` under `TypeId::of::<E>()`.
    let any: Arc<dyn Any + Send + Sync> = topic;
    any.downcast::<Topic<E>>().ok()
}

impl<E: Send + Sync + 'static> Topic<E> {
    pub(super) fn new(capacity: usize) -> Self {
        #[cfg(feature = "metrics")]
        let metrics = crate::metrics::TopicMetrics::of::<E>();
        let ring = Ring::new(capacity);
        #[cfg(feature = "metrics")]
        let ring = ring.count_receivers(metrics.subscribers.clone());
        Self {
            ring: Arc::new(ring),
            many: Feed::new(),
            lossy: ArcSwap::from_pointee(Vec::new()),
            lossy_write: Mutex::new(()),
            sinks: AtomicUsize::new(0),
            #[cfg(feature = "metrics")]
            metrics,
        }
    }

    /// Whether the topic has multi-type or lossy subscribers (which only
    /// [`publish`](Self::publish) serves).
    pub(super) fn has_sinks(&self) -> bool {
        self.sinks.load(SeqCst) > 0
    }

    /// Whether anything subscribes to this type now.
    pub(super) fn has_subscribers(&self) -> bool {
        self.ring.has_receivers() || self.has_sinks()
    }

    /// Delivers one event to every current subscriber of this type.
    pub(super) async fn publish(&self, event: Arc<E>) -> usize {
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
            let send = RingPost::new(epoch, event.clone()).send(&self.ring);
            #[cfg(feature = "metrics")]
            let send = crate::metrics::time_if_blocked(&self.metrics.backpressure, send);
            delivered += send.await;
        }
        if let Some(time) = time {
            let wrapped = TypeMuxEvent { time, data: event };
            let send = Feed::send_to(&many, wrapped);
            #[cfg(feature = "metrics")]
            let send = crate::metrics::time_if_blocked(&self.metrics.backpressure, send);
            delivered += send.await;
        }
        delivered
    }

    /// Adds a lossy subscriber buffering `capacity` events; the returned
    /// registration removes it.
    pub(super) fn add_lossy(
        self: &Arc<Self>,
        capacity: usize,
    ) -> (Arc<LossyQueue<E>>, Subscription) {
        let queue = LossyQueue::new(capacity);
        #[cfg(feature = "metrics")]
        let queue = queue.count_missed(self.metrics.lagged.clone());
        let queue = Arc::new(queue);
        self.update_lossy(|list| list.push(queue.clone()));
        self.sinks.fetch_add(1, SeqCst);
        #[cfg(feature = "metrics")]
        self.metrics.subscribers.increment(1.0);
        let weak_topic = Arc::downgrade(self);
        let weak_queue = Arc::downgrade(&queue);
        let registration = Subscription::passive(move || {
            if let (Some(topic), Some(queue)) = (weak_topic.upgrade(), weak_queue.upgrade()) {
                topic.update_lossy(|list| list.retain(|q| !Arc::ptr_eq(q, &queue)));
                topic.sinks.fetch_sub(1, SeqCst);
                #[cfg(feature = "metrics")]
                topic.metrics.subscribers.decrement(1.0);
            }
        });
        (queue, registration)
    }

    /// Adds `tx` as a multi-type subscriber; the returned registration
    /// removes it.
    pub(super) fn add_many(self: &Arc<Self>, tx: mpsc::Sender<TypeMuxEvent>) -> Subscription {
        self.sinks.fetch_add(1, SeqCst);
        #[cfg(feature = "metrics")]
        self.metrics.subscribers.increment(1.0);
        let sub = self.many.subscribe(tx);
        let weak = Arc::downgrade(self);
        sub.shared().add_hook(Box::new(move || {
            if let Some(topic) = weak.upgrade() {
                topic.sinks.fetch_sub(1, SeqCst);
                #[cfg(feature = "metrics")]
                topic.metrics.subscribers.decrement(1.0);
            }
        }));
        sub
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

impl<E> RingPost<E> {
    /// A delivery of `value` for a post that began at `epoch`
    /// ([`Ring::begin`]).
    pub(super) fn new(epoch: u64, value: Arc<E>) -> Self {
        Self {
            epoch,
            value: Some(value),
        }
    }

    /// Writes the value now if the ring has room, and returns how many
    /// receivers will see it; `Pending` (keeping the value) if the slowest
    /// receiver is `capacity` behind. Nothing is parked: a caller that gets
    /// `Pending` finishes with [`send`](Self::send).
    pub(super) fn try_send(&mut self, ring: &Ring<E>) -> Poll<usize> {
        ring.poll_send(None, self.epoch, &mut self.value)
    }

    /// Writes the value, waiting (as a parked sender) while the ring is
    /// full, and returns how many receivers will see it.
    pub(super) async fn send(mut self, ring: &Ring<E>) -> usize {
        poll_fn(|cx| ring.poll_send(Some(cx.waker()), self.epoch, &mut self.value)).await
    }
}
