//! One subscription to several event types, in post order.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures_core::Stream;
use tokio::sync::mpsc;

use super::map::TypeMux;
use crate::bus::subscription::Subscription;

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

/// How [`SubscribeMany`] subscribes to one type.
struct Registrar {
    /// The type.
    id: TypeId,
    /// Its name, for the duplicate-type panic and `Debug`.
    name: &'static str,
    /// Adds `tx` to the type's multi-type feed; `None` if the bus stopped.
    register: fn(&TypeMux, &mpsc::Sender<TypeMuxEvent>) -> Option<Subscription>,
}

impl TypeMux {
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
        let (tx, rx) = mpsc::channel(self.mux.capacity());
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
    Some(mux.topic_or_create::<E>()?.add_many(tx.clone()))
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
