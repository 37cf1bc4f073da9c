//! Keeping a subscription established across failures.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::time::Instant;

use super::subscription::{Subscription, Unsubscribed};
use crate::boxed::BoxError;

/// Keeps the subscription made by `f` established.
///
/// [`resubscribe`] and [`resubscribe_err`] are go-ethereum's `Resubscribe`
/// and `ResubscribeErr`: they call a function that establishes a
/// [`Subscription`], wait for that subscription to fail, and call the
/// function again, until the outer subscription they return is
/// unsubscribed or an established subscription ends cleanly.
///
/// # Backoff
///
/// - When an established subscription fails, the function is called again at
///   once: the connection worked, so the failure says nothing about the rate.
/// - When the function itself fails, the next call waits. The wait starts at
///   `backoff_max / 10`, doubles after each consecutive failed call and never
///   exceeds `backoff_max`; it starts over at `backoff_max / 10` after a
///   successful call, and when the failed attempt began more than
///   `backoff_max` ago, so the delay follows the error rate.
/// - Each wait gets up to 100% random jitter (capped at `backoff_max`), so
///   many shards that lost their connection together do not retry in
///   lockstep. The delay sequence comes from [`backon`].
///
/// # Cancellation
///
/// Unsubscribing the outer subscription stops everything at once: an
/// attempt in flight is dropped (its [`Unsubscribed`] completes first, for
/// functions that hand the signal to work they spawn), a backoff wait ends,
/// and the established inner subscription is unsubscribed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shardbus::{resubscribe, BoxError, Feed};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let feed = Feed::<u32>::new();
/// let (tx, mut rx) = tokio::sync::mpsc::channel(8);
/// let source = feed.clone();
/// let sub = resubscribe(Duration::from_secs(10), move |_unsubscribed| {
///     let (source, tx) = (source.clone(), tx.clone());
///     async move { Ok::<_, BoxError>(source.subscribe(tx)) }
/// });
/// # tokio::task::yield_now().await;
/// # while feed.is_empty() { tokio::task::yield_now().await; }
/// feed.send(1).await;
/// assert_eq!(rx.recv().await, Some(1));
/// sub.unsubscribe();
/// # }
/// ```
///
/// The returned subscription's [`err`](Subscription::err) yields `None` when
/// it ends: after `unsubscribe`, or once an established subscription ended
/// without an error.
///
/// # Panics
///
/// Panics if called outside a Tokio runtime.
pub fn resubscribe<F, Fut>(backoff_max: Duration, mut f: F) -> Subscription
where
    F: FnMut(Unsubscribed) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Subscription, BoxError>> + Send + 'static,
{
    resubscribe_err(backoff_max, move |unsubscribed, _| f(unsubscribed))
}

/// Like [`resubscribe`] (whose docs describe the backoff), and `f` also receives the error of the
/// subscription that failed before this attempt.
///
/// The error is `None` on the first call, and is handed over once: on the
/// first call after the failure (retries after `f` itself failed get
/// `None`). Errors of `f` itself are logged at `debug` level, not passed on.
///
/// # Panics
///
/// Panics if called outside a Tokio runtime.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shardbus::{resubscribe_err, BoxError, Subscription};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
/// let mut attempt = 0;
/// let mut sub = resubscribe_err(Duration::from_secs(1), move |_, prev: Option<BoxError>| {
///     let _ = seen_tx.send(prev.map(|e| e.to_string()));
///     attempt += 1;
///     let n = attempt;
///     async move {
///         // The first connection drops with an error, the second ends cleanly.
///         Ok::<_, BoxError>(Subscription::new(move |_| async move {
///             if n == 1 { Err::<(), BoxError>("connection reset".into()) } else { Ok(()) }
///         }))
///     }
/// });
/// assert!(sub.err().await.is_none()); // ended with the clean inner subscription
/// assert_eq!(seen.recv().await, Some(None));
/// assert_eq!(seen.recv().await, Some(Some("connection reset".to_string())));
/// # }
/// ```
pub fn resubscribe_err<F, Fut>(backoff_max: Duration, mut f: F) -> Subscription
where
    F: FnMut(Unsubscribed, Option<BoxError>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Subscription, BoxError>> + Send + 'static,
{
    Subscription::new(move |unsubscribed| async move {
        let mut backoff = Backoff::new(backoff_max);
        let mut last_err = None;
        loop {
            let mut sub = loop {
                let started = Instant::now();
                let attempt = f(unsubscribed.clone(), last_err.take());
                let failure = tokio::select! {
                    biased;
                    () = unsubscribed.clone() => return Ok(()),
                    result = attempt => match result {
                        Ok(sub) => {
                            // The run of consecutive failures is over.
                            backoff.reset();
                            break sub;
                        }
                        Err(e) => e,
                    },
                };
                let wait = backoff.next_wait(started);
                tracing::debug!(error = %failure, ?wait, "resubscribe attempt failed");
                tokio::select! {
                    biased;
                    () = unsubscribed.clone() => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
            };
            tokio::select! {
                biased;
                () = unsubscribed.clone() => {
                    sub.unsubscribe();
                    return Ok(());
                }
                err = sub.err() => match err {
                    None => return Ok(()),
                    Some(e) => last_err = Some(e),
                },
            }
        }
    })
}

/// The wait between failed attempts.
struct Backoff {
    /// The cap, and the age beyond which a failure starts the sequence over.
    max: Duration,
    /// Makes a fresh delay sequence.
    builder: ExponentialBuilder,
    /// The current delay sequence.
    delays: ExponentialBackoff,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        let builder = ExponentialBuilder::default()
            .with_min_delay(max / 10)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Self {
            max,
            delays: builder.build(),
            builder,
        }
    }

    /// Starts the delay sequence over, after a successful attempt.
    fn reset(&mut self) {
        self.delays = self.builder.build();
    }

    /// The wait after an attempt that began at `started` failed.
    fn next_wait(&mut self, started: Instant) -> Duration {
        if started.elapsed() > self.max {
            self.delays = self.builder.build();
        }
        self.delays.next().unwrap_or(self.max).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_caps_and_resets() {
        let max = Duration::from_secs(10);
        let mut b = Backoff::new(max);
        let tol = Duration::from_millis(1);
        let mut base = max / 10;
        for _ in 0..6 {
            let w = b.next_wait(Instant::now());
            assert!(
                w + tol >= base && w <= (base * 2).min(max),
                "{w:?} vs base {base:?}"
            );
            base = (base * 2).min(max);
        }
        let started = Instant::now();
        tokio::time::advance(max + Duration::from_millis(1)).await;
        let w = b.next_wait(started);
        assert!(
            w + tol >= max / 10 && w <= max / 5 + tol,
            "did not reset: {w:?}"
        );
    }
}
