//! A running producer of events with an error channel.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use pin_project::pin_project;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::boxed::BoxError;
use crate::sync::lock;

/// A handle on a running producer of events.
///
/// [`Subscription`] is go-ethereum's `event.Subscription` in Rust: a handle on
/// something that delivers events somewhere (a [`Feed`](super::Feed) writing
/// into a channel, a task reading a socket, a [`resubscribe`](super::resubscribe)
/// loop), with two operations:
///
/// - [`Subscription::unsubscribe`] stops it. It is idempotent, takes `&self`,
///   can be called from any task any number of times, and dropping the
///   `Subscription` does the same.
/// - [`Subscription::err`] waits for the producer to end. It yields `Some(e)`
///   exactly once if the producer failed with `e`, and `None` when it ended
///   cleanly or was unsubscribed (and on every later call).
///
/// A producer made with [`Subscription::new`] runs in its own task and is
/// handed an [`Unsubscribed`] signal: a future that completes when the
/// subscription is unsubscribed. The producer is expected to watch it and
/// return promptly; it is never aborted mid-step, so it can clean up.
///
/// # Examples
///
/// ```
/// use shardbus::{BoxError, Subscription};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let mut sub = Subscription::new(|unsubscribed| async move {
///     unsubscribed.await; // a real producer would select! on its work too
///     Ok::<(), BoxError>(())
/// });
/// sub.unsubscribe();
/// assert!(sub.err().await.is_none());
/// # }
/// ```
///
/// Dropping a `Subscription` unsubscribes it.
#[must_use = "dropping a Subscription unsubscribes it"]
pub struct Subscription {
    /// The unsubscribe signal and the hooks it runs, shared with
    /// [`Unsubscribed`] futures and with any [`SubscriptionScope`](super::SubscriptionScope)
    /// tracking this subscription.
    shared: Arc<Shared>,
    /// The producer's result, for subscriptions made with [`Subscription::new`];
    /// `None` for passive subscriptions (a feed registration), whose `err`
    /// waits for unsubscribe only.
    result: Option<oneshot::Receiver<Result<(), BoxError>>>,
    /// Set once `err` has yielded its final value, so later calls return
    /// `None` at once.
    finished: bool,
    /// Set by `detach`: dropping this handle leaves the subscription running.
    detached: bool,
}

/// A future that completes when its [`Subscription`] is unsubscribed or dropped.
///
/// Producers receive one from [`Subscription::new`]; `resubscribe` callbacks
/// receive one too, so they can give up an attempt that is no longer wanted.
///
/// # Examples
///
/// ```
/// use shardbus::{BoxError, Subscription};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (tx, rx) = tokio::sync::oneshot::channel();
/// let sub = Subscription::new(move |unsubscribed| async move {
///     unsubscribed.await;
///     let _ = tx.send("cleaned up");
///     Ok::<(), BoxError>(())
/// });
/// drop(sub);
/// assert_eq!(rx.await.unwrap(), "cleaned up");
/// # }
/// ```
#[pin_project]
pub struct Unsubscribed {
    /// Kept to answer [`Unsubscribed::is_unsubscribed`] and to clone.
    token: CancellationToken,
    /// The wait itself.
    #[pin]
    wait: WaitForCancellationFutureOwned,
}

/// State shared by a subscription and everything that can end it.
pub(crate) struct Shared {
    /// Cancelled exactly once, by the first `unsubscribe`.
    token: CancellationToken,
    /// Run once, in order, by the first `unsubscribe`: remove the entry from a
    /// feed, from a scope, and so on. Taken (left empty) when run.
    hooks: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    /// Cancelled when the producer task has ended (returned, or aborted).
    /// Passive subscriptions have no task; theirs is `token`.
    ended: CancellationToken,
    /// Aborts the producer task, for subscriptions that have one.
    task: Mutex<Option<AbortHandle>>,
}

impl Subscription {
    /// Runs `producer` in a new task and returns its subscription.
    ///
    /// The producer receives an [`Unsubscribed`] signal and should return
    /// soon after it completes. Its result is what [`err`](Self::err) reports.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use shardbus::{BoxError, Subscription};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let mut sub = Subscription::new(|_unsubscribed| async move {
    ///     Err::<(), BoxError>("connection refused".into())
    /// });
    /// assert_eq!(sub.err().await.unwrap().to_string(), "connection refused");
    /// assert!(sub.err().await.is_none());
    /// # }
    /// ```
    pub fn new<F, Fut>(producer: F) -> Self
    where
        F: FnOnce(Unsubscribed) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let shared = Arc::new(Shared::new(false));
        let (tx, rx) = oneshot::channel();
        let fut = producer(Unsubscribed::new(shared.token.clone()));
        let ended = shared.ended.clone().drop_guard();
        let task = tokio::spawn(async move {
            let _ended = ended;
            let _ = tx.send(fut.await);
        });
        *lock(&shared.task) = Some(task.abort_handle());
        Self {
            shared,
            result: Some(rx),
            finished: false,
            detached: false,
        }
    }

    /// A subscription with no task behind it: `err` waits for unsubscribe,
    /// and `on_unsubscribe` runs when that happens. Used by feeds and streams.
    pub(crate) fn passive(on_unsubscribe: impl FnOnce() + Send + 'static) -> Self {
        let sub = Self {
            shared: Arc::new(Shared::new(true)),
            result: None,
            finished: false,
            detached: false,
        };
        sub.shared.add_hook(Box::new(on_unsubscribe));
        sub
    }

    /// The signal and hooks of this subscription.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Lets the subscription run on after this handle is dropped; it can
    /// still be ended through its [`Shared`] (a scope).
    pub(crate) fn detach(mut self) {
        self.detached = true;
    }

    /// Waits until the producer ends and reports how.
    ///
    /// Returns `Some(e)` exactly once if the producer returned `Err(e)`.
    /// Returns `None` if it returned `Ok`, if the subscription was
    /// unsubscribed (an error not yet collected is then discarded), and on
    /// every call after the first `None` or `Some`. A passive subscription
    /// (one made by [`Feed::subscribe`](super::Feed::subscribe)) has no
    /// producer to fail: its `err` returns `None` once it is unsubscribed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future loses nothing, a later call reports
    /// the same outcome.
    pub async fn err(&mut self) -> Option<BoxError> {
        if self.finished {
            return None;
        }
        let token = self.shared.token.clone();
        let outcome = match self.result.as_mut() {
            None => {
                token.cancelled().await;
                None
            }
            Some(result) => tokio::select! {
                biased;
                () = token.cancelled() => None,
                r = result => r.ok().and_then(Result::err),
            },
        };
        self.finished = true;
        self.result = None;
        outcome
    }

    /// Stops the subscription: the producer's [`Unsubscribed`] completes and
    /// [`err`](Self::err) returns `None`.
    ///
    /// Idempotent; returns at once. Dropping the `Subscription` does the same.
    pub fn unsubscribe(&self) {
        self.shared.unsubscribe();
    }

    /// Whether [`unsubscribe`](Self::unsubscribe) has been called (or the
    /// subscription was closed by a scope).
    pub fn is_unsubscribed(&self) -> bool {
        self.shared.token.is_cancelled()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.detached {
            self.shared.unsubscribe();
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("unsubscribed", &self.is_unsubscribed())
            .field("producer", &self.result.is_some())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// The state of a new subscription; a passive one (no task) has ended
    /// once it is unsubscribed.
    fn new(passive: bool) -> Self {
        let token = CancellationToken::new();
        let ended = if passive {
            token.clone()
        } else {
            CancellationToken::new()
        };
        Self {
            token,
            hooks: Mutex::new(Vec::new()),
            ended,
            task: Mutex::new(None),
        }
    }

    /// Aborts the producer task, if there is one: it stops at its next
    /// `.await`.
    pub(crate) fn abort(&self) {
        if let Some(task) = lock(&self.task).as_ref() {
            task.abort();
        }
    }

    /// Completes once the producer task has ended (for a passive
    /// subscription: once it is unsubscribed).
    pub(crate) async fn ended(&self) {
        self.ended.cancelled().await;
    }

    /// Adds a hook run on unsubscribe; runs it at once if already unsubscribed.
    pub(crate) fn add_hook(&self, hook: Box<dyn FnOnce() + Send>) {
        {
            let mut hooks = lock(&self.hooks);
            if !self.token.is_cancelled() {
                hooks.push(hook);
                return;
            }
        }
        hook();
    }

    /// Cancels the token and runs the hooks, once.
    pub(crate) fn unsubscribe(&self) {
        let hooks = {
            let mut hooks = lock(&self.hooks);
            if self.token.is_cancelled() {
                return;
            }
            self.token.cancel();
            std::mem::take(&mut *hooks)
        };
        for hook in hooks {
            hook();
        }
    }
}

impl Unsubscribed {
    pub(crate) fn new(token: CancellationToken) -> Self {
        Self {
            wait: token.clone().cancelled_owned(),
            token,
        }
    }

    /// Whether the subscription has been unsubscribed already.
    pub fn is_unsubscribed(&self) -> bool {
        self.token.is_cancelled()
    }
}

impl Clone for Unsubscribed {
    fn clone(&self) -> Self {
        Self::new(self.token.clone())
    }
}

impl Future for Unsubscribed {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.project().wait.poll(cx)
    }
}

impl fmt::Debug for Unsubscribed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unsubscribed")
            .field("unsubscribed", &self.is_unsubscribed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hooks_run_once_even_when_added_late() {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = count.clone();
        let sub = Subscription::passive(move || {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        sub.unsubscribe();
        sub.unsubscribe();
        let c = count.clone();
        sub.shared().add_hook(Box::new(move || {
            c.fetch_add(10, std::sync::atomic::Ordering::SeqCst);
        }));
        drop(sub);
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 11);
    }

    #[tokio::test]
    async fn error_after_unsubscribe_is_discarded() {
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let mut sub = Subscription::new(move |_| async move {
            let _ = go_rx.await;
            Err::<(), BoxError>("late".into())
        });
        sub.unsubscribe();
        let _ = go_tx.send(());
        assert!(sub.err().await.is_none());
    }
}
