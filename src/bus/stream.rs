//! Typed event streams returned by [`TypeMux`](super::TypeMux).
//!
//! - [`EventStream<E>`] is a reliable subscription: every event posted after
//!   it was created reaches it, in order. While it lags `capacity` events
//!   behind, posts of `E` wait for it.
//! - [`LossyStream<E>`] never slows a post: when it falls behind, it yields
//!   `Err(Lagged { missed })` with the exact number of events it lost, then
//!   continues with the newest ones.
//!
//! Both are [`Stream`]s of `Arc<E>` (one allocation per post, shared by all
//! subscribers) and both have `recv` methods for use without `StreamExt`.
//! Dropping a stream unsubscribes it and releases any post waiting on it.
//! When the mux stops, a stream yields the events already posted and then
//! ends.

use std::fmt;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::lossy::{LossyQueue, Next};
use super::ring::{Receiver, ReceiverCloser, TryRecv};
use super::subscription::Subscription;

/// A reliable subscription to events of type `E`, made by
/// [`TypeMux::subscribe`](super::TypeMux::subscribe).
///
/// Every event posted after it was created reaches it, in order. While it
/// lags `capacity` events behind, posts of `E` wait for it; dropping it
/// unsubscribes and releases them. When the bus stops it yields the events
/// already posted, then ends.
///
/// # Examples
///
/// ```
/// use shardbus::TypeMux;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mux = TypeMux::new();
/// let mut stream = mux.subscribe::<u32>();
/// mux.post(7u32).await.unwrap();
/// assert_eq!(*stream.recv().await.unwrap(), 7);
/// # }
/// ```
#[must_use = "streams do nothing unless polled; dropping one unsubscribes"]
pub struct EventStream<E> {
    /// The ring reader.
    rx: Receiver<E>,
}

/// A subscription that never slows posts and reports what it missed, made by
/// [`TypeMux::subscribe_lossy`](super::TypeMux::subscribe_lossy).
///
/// When it falls behind, it yields `Err(Lagged { missed })` with the exact
/// number of events it lost, then continues with the newest ones. Dropping it
/// unsubscribes. When the bus stops it yields what it holds, then ends.
///
/// # Examples
///
/// ```
/// use shardbus::{Lagged, TypeMux};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mux = TypeMux::new();
/// let mut stream = mux.subscribe_lossy::<u32>(2);
/// for i in 0..5u32 {
///     mux.post(i).await.unwrap(); // never waits on `stream`
/// }
/// assert_eq!(stream.recv().await.unwrap(), Err(Lagged { missed: 3 }));
/// assert_eq!(*stream.recv().await.unwrap().unwrap(), 3);
/// assert_eq!(*stream.recv().await.unwrap().unwrap(), 4);
/// # }
/// ```
#[must_use = "streams do nothing unless polled; dropping one unsubscribes"]
pub struct LossyStream<E> {
    /// The queue posts push into; `None` for a stream made after stop.
    queue: Option<Arc<LossyQueue<E>>>,
    /// Removes the queue from its topic when the stream is dropped.
    _registration: Option<Subscription>,
}

/// A lossy subscriber fell behind and lost `missed` events.
///
/// The events that follow are the newest ones, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("subscriber lagged behind and missed {missed} events")]
pub struct Lagged {
    /// How many events were dropped for this subscriber.
    pub missed: u64,
}

/// Why [`EventStream::try_recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum TryRecvError {
    /// No event is waiting now.
    #[error("no event is waiting")]
    Empty,
    /// The stream has ended (the mux stopped and every event was read, or
    /// the stream was closed).
    #[error("the stream has ended")]
    Closed,
}

impl<E> EventStream<E> {
    pub(crate) fn new(rx: Receiver<E>) -> Self {
        Self { rx }
    }

    /// Ends this stream from another task (a plugin unload).
    pub(crate) fn closer(&self) -> Option<ReceiverCloser<E>> {
        self.rx.closer()
    }

    /// Receives the next event; `None` once the stream has ended.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no event
    /// is lost.
    pub async fn recv(&mut self) -> Option<Arc<E>> {
        poll_fn(|cx| self.rx.poll_recv(cx)).await
    }

    /// Receives the next event if one is waiting.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] if nothing is waiting, [`TryRecvError::Closed`]
    /// if the stream has ended.
    pub fn try_recv(&mut self) -> Result<Arc<E>, TryRecvError> {
        match self.rx.try_recv() {
            TryRecv::Value(v) => Ok(v),
            TryRecv::Empty => Err(TryRecvError::Empty),
            TryRecv::Closed => Err(TryRecvError::Closed),
        }
    }

    /// Whether the stream has ended: it will yield no more events.
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed()
    }
}

impl<E> Stream for EventStream<E> {
    type Item = Arc<E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Arc<E>>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

impl<E> LossyStream<E> {
    pub(crate) fn new(queue: Arc<LossyQueue<E>>, registration: Subscription) -> Self {
        Self {
            queue: Some(queue),
            _registration: Some(registration),
        }
    }

    pub(crate) fn ended() -> Self {
        Self {
            queue: None,
            _registration: None,
        }
    }

    /// Receives the next event, or `Err(Lagged)` if events were dropped
    /// since the last call; `None` once the stream has ended.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn recv(&mut self) -> Option<Result<Arc<E>, Lagged>> {
        poll_fn(|cx| self.poll_item(cx)).await
    }

    /// Whether the stream has ended.
    pub fn is_closed(&self) -> bool {
        self.queue.as_ref().is_none_or(|q| q.is_closed())
    }

    fn poll_item(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Arc<E>, Lagged>>> {
        let Some(queue) = &self.queue else {
            return Poll::Ready(None);
        };
        queue.poll_next(cx).map(|next| {
            next.map(|n| match n {
                Next::Value(v) => Ok(v),
                Next::Missed(missed) => Err(Lagged { missed }),
            })
        })
    }
}

impl<E> Stream for LossyStream<E> {
    type Item = Result<Arc<E>, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_item(cx)
    }
}

impl<E> fmt::Debug for EventStream<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("event", &std::any::type_name::<E>())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<E> fmt::Debug for LossyStream<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LossyStream")
            .field("event", &std::any::type_name::<E>())
            .field("closed", &self.is_closed())
            .finish()
    }
}
