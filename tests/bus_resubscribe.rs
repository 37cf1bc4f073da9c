//! Integration tests for `resubscribe` and `resubscribe_err`: capped exponential
//! backoff with jitter, its reset rule, immediate re-establishment after an inner
//! failure, and cancellation by unsubscribe. All under paused time.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardbus::{BoxError, Subscription, Unsubscribed, resubscribe, resubscribe_err};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

use common::{next_err, within};

/// Timer resolution slack for upper bounds (tokio rounds deadlines up to the millisecond).
const TOL: Duration = Duration::from_millis(2);

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What one call of the resubscribe function does.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Fail at once.
    Refuse,
    /// Fail after working for this long.
    RefuseAfter(Duration),
    /// Succeed; the inner subscription then fails with `inner-<call>`.
    InnerFails,
    /// Succeed; the inner subscription then ends cleanly.
    InnerEnds,
    /// Succeed; the inner subscription runs until it is unsubscribed.
    Live,
}

/// What the resubscribe function saw, one entry per call.
#[derive(Default)]
struct Log {
    starts: Vec<Instant>,
    ends: Vec<Instant>,
    prev_errs: Vec<Option<String>>,
}

impl Log {
    /// Time between each call's return and the start of the next call.
    fn waits(&self) -> Vec<Duration> {
        self.ends
            .iter()
            .zip(self.starts.iter().skip(1))
            .map(|(end, next)| next.duration_since(*end))
            .collect()
    }
}

/// A resubscribe function that follows a script of steps (calls past the end refuse).
#[derive(Clone)]
struct Script {
    steps: Arc<Vec<Step>>,
    log: Arc<Mutex<Log>>,
    ended: mpsc::UnboundedSender<usize>,
    live: mpsc::UnboundedSender<usize>,
    stopped: mpsc::UnboundedSender<usize>,
}

/// The test's side of a script: the log and the notifications (by 1-based call number).
struct Watch {
    log: Arc<Mutex<Log>>,
    /// A call returned (either way).
    ended: mpsc::UnboundedReceiver<usize>,
    /// A `Live` inner subscription was handed out.
    live: mpsc::UnboundedReceiver<usize>,
    /// A `Live` inner subscription was unsubscribed.
    stopped: mpsc::UnboundedReceiver<usize>,
}

impl Watch {
    fn calls(&self) -> usize {
        self.log.lock().unwrap().starts.len()
    }
}

fn script(steps: &[Step]) -> (Script, Watch) {
    let log = Arc::new(Mutex::new(Log::default()));
    let (ended_tx, ended) = mpsc::unbounded_channel();
    let (live_tx, live) = mpsc::unbounded_channel();
    let (stopped_tx, stopped) = mpsc::unbounded_channel();
    let script = Script {
        steps: Arc::new(steps.to_vec()),
        log: Arc::clone(&log),
        ended: ended_tx,
        live: live_tx,
        stopped: stopped_tx,
    };
    let watch = Watch {
        log,
        ended,
        live,
        stopped,
    };
    (script, watch)
}

impl Script {
    fn call(
        &self,
        prev: Option<BoxError>,
    ) -> impl Future<Output = Result<Subscription, BoxError>> + Send + 'static {
        let call = {
            let mut log = self.log.lock().unwrap();
            log.starts.push(Instant::now());
            log.prev_errs.push(prev.map(|e| e.to_string()));
            log.starts.len()
        };
        let step = self.steps.get(call - 1).copied().unwrap_or(Step::Refuse);
        let this = self.clone();
        async move {
            let out: Result<Subscription, BoxError> = match step {
                Step::Refuse => Err(format!("refused-{call}").into()),
                Step::RefuseAfter(work) => {
                    sleep(work).await;
                    Err(format!("refused-{call}").into())
                }
                Step::InnerFails => Ok(Subscription::new(move |_: Unsubscribed| async move {
                    Err(format!("inner-{call}").into())
                })),
                Step::InnerEnds => Ok(Subscription::new(|_: Unsubscribed| async { Ok(()) })),
                Step::Live => {
                    let _ = this.live.send(call);
                    let stopped = this.stopped.clone();
                    Ok(Subscription::new(
                        move |unsubscribed: Unsubscribed| async move {
                            unsubscribed.await;
                            let _ = stopped.send(call);
                            Ok(())
                        },
                    ))
                }
            };
            this.log.lock().unwrap().ends.push(Instant::now());
            let _ = this.ended.send(call);
            out
        }
    }

    fn plain(self) -> impl FnMut(Unsubscribed) -> BoxedAttempt + Send + 'static {
        move |_: Unsubscribed| Box::pin(self.call(None)) as BoxedAttempt
    }

    fn with_err(
        self,
    ) -> impl FnMut(Unsubscribed, Option<BoxError>) -> BoxedAttempt + Send + 'static {
        move |_: Unsubscribed, prev: Option<BoxError>| Box::pin(self.call(prev)) as BoxedAttempt
    }
}

type BoxedAttempt =
    std::pin::Pin<Box<dyn Future<Output = Result<Subscription, BoxError>> + Send + 'static>>;

/// Asserts one backoff wait: at least `d`, at most `min(2d, max)` (jitter), plus timer slack.
fn assert_backoff(after_call: usize, wait: Duration, d: Duration, max: Duration) {
    let hi = (d * 2).min(max) + TOL;
    assert!(
        wait >= d && wait <= hi,
        "wait after failed call {after_call} was {wait:?}, want within [{d:?}, {hi:?}]"
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_from_a_tenth_up_to_the_cap() {
    let max = Duration::from_secs(1);
    let mut steps = vec![Step::Refuse; 6];
    steps.push(Step::Live);
    let (script, mut watch) = script(&steps);
    let _sub = resubscribe(max, script.plain());

    assert_eq!(within("established", watch.live.recv()).await, Some(7));
    let waits = watch.log.lock().unwrap().waits();
    let expected = [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)];
    assert_eq!(waits.len(), expected.len());
    for (k, (wait, d)) in waits.iter().zip(expected).enumerate() {
        assert_backoff(k + 1, *wait, d, max);
    }

    sleep(max * 10).await;
    assert_eq!(
        watch.calls(),
        7,
        "no calls once a subscription is established"
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_resets_after_an_attempt_longer_than_the_cap() {
    let max = Duration::from_secs(1);
    let steps = [
        Step::Refuse,
        Step::Refuse,
        Step::Refuse,
        Step::RefuseAfter(ms(1500)), // started more than `max` before it failed: reset
        Step::Refuse,
        Step::RefuseAfter(ms(500)), // shorter than `max`: keeps doubling
        Step::Live,
    ];
    let (script, mut watch) = script(&steps);
    let _sub = resubscribe(max, script.plain());

    assert_eq!(within("established", watch.live.recv()).await, Some(7));
    let waits = watch.log.lock().unwrap().waits();
    let expected = [ms(100), ms(200), ms(400), ms(100), ms(200), ms(400)];
    assert_eq!(waits.len(), expected.len());
    for (k, (wait, d)) in waits.iter().zip(expected).enumerate() {
        assert_backoff(k + 1, *wait, d, max);
    }
}

#[tokio::test(start_paused = true)]
async fn backoff_starts_over_after_a_successful_subscription() {
    let max = Duration::from_secs(1);
    let steps = [
        Step::Refuse,
        Step::Refuse,
        Step::Refuse,
        Step::InnerFails, // a success ends the run of consecutive failures
        Step::Refuse,
        Step::Live,
    ];
    let (script, mut watch) = script(&steps);
    let _sub = resubscribe(max, script.plain());

    assert_eq!(within("established", watch.live.recv()).await, Some(6));
    let waits = watch.log.lock().unwrap().waits();
    assert_backoff(1, waits[0], ms(100), max);
    assert_backoff(2, waits[1], ms(200), max);
    assert_backoff(3, waits[2], ms(400), max);
    assert!(waits[3] <= ms(1), "no wait after an inner failure");
    assert_backoff(5, waits[4], ms(100), max);
}

#[tokio::test(start_paused = true)]
async fn backoff_jitter_stays_in_bounds_and_varies() {
    let max = Duration::from_secs(1);
    let mut first_waits = BTreeSet::new();
    for _ in 0..20 {
        let (script, mut watch) = script(&[Step::Refuse, Step::Refuse, Step::Live]);
        let sub = resubscribe(max, script.plain());
        assert_eq!(within("established", watch.live.recv()).await, Some(3));
        let waits = watch.log.lock().unwrap().waits();
        assert_backoff(1, waits[0], ms(100), max);
        assert_backoff(2, waits[1], ms(200), max);
        first_waits.insert(waits[0]);
        drop(sub);
    }
    assert!(
        first_waits.len() > 1,
        "20 independent subscriptions all waited exactly {first_waits:?}: no jitter"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_inner_subscription_is_replaced_at_once() {
    let max = Duration::from_secs(10);
    let steps = [
        Step::InnerFails,
        Step::InnerFails,
        Step::InnerFails,
        Step::Live,
    ];
    let (script, mut watch) = script(&steps);
    let mut sub = resubscribe(max, script.plain());

    assert_eq!(within("established", watch.live.recv()).await, Some(4));
    for (k, wait) in watch.log.lock().unwrap().waits().into_iter().enumerate() {
        assert!(
            wait <= ms(1),
            "re-established {wait:?} after inner failure {}, want no backoff",
            k + 1
        );
    }
    assert!(
        timeout(max, next_err(&mut sub)).await.is_err(),
        "a failed inner subscription is replaced, not reported"
    );
    assert_eq!(watch.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn resubscribe_err_passes_the_previous_error() {
    let mut steps = vec![Step::InnerFails; 5];
    steps.push(Step::InnerEnds);
    let (script, watch) = script(&steps);
    let mut sub = resubscribe_err(ms(100), script.with_err());

    assert!(
        within("outer end", next_err(&mut sub)).await.is_none(),
        "a clean inner end ends the outer subscription without error"
    );
    sleep(Duration::from_secs(10)).await;
    assert_eq!(watch.calls(), 6);
    let seen = watch.log.lock().unwrap().prev_errs.clone();
    let want: Vec<Option<String>> = std::iter::once(None)
        .chain((1..=5).map(|n| Some(format!("inner-{n}"))))
        .collect();
    assert_eq!(seen, want);
}

#[tokio::test(start_paused = true)]
async fn clean_inner_end_ends_the_outer_subscription() {
    let (script, watch) = script(&[Step::InnerFails, Step::InnerEnds, Step::Live]);
    let mut sub = resubscribe(Duration::from_secs(1), script.plain());

    assert!(within("outer end", next_err(&mut sub)).await.is_none());
    sleep(Duration::from_secs(60)).await;
    assert_eq!(
        watch.calls(),
        2,
        "no call after the inner subscription ended cleanly"
    );
    assert!(within("err again", next_err(&mut sub)).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_after_inner_ended_returns_at_once() {
    let (script, watch) = script(&[Step::InnerEnds]);
    let mut sub = resubscribe(Duration::from_secs(1), script.plain());
    assert!(within("outer end", next_err(&mut sub)).await.is_none());

    let before = Instant::now();
    sub.unsubscribe();
    sub.unsubscribe();
    assert!(sub.is_unsubscribed());
    assert!(
        within("err after unsubscribe", next_err(&mut sub))
            .await
            .is_none()
    );
    assert_eq!(before.elapsed(), Duration::ZERO);
    assert_eq!(watch.calls(), 1);
}

/// Reports on a channel when dropped.
struct OnDrop(mpsc::UnboundedSender<()>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_cancels_an_in_flight_call() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (token_tx, mut token_rx) = mpsc::unbounded_channel::<Unsubscribed>();
    let (dropped_tx, mut dropped_rx) = mpsc::unbounded_channel();
    let counter = Arc::clone(&calls);
    let mut sub = resubscribe(Duration::ZERO, move |unsubscribed: Unsubscribed| {
        counter.fetch_add(1, Ordering::SeqCst);
        let _ = token_tx.send(unsubscribed);
        let guard = OnDrop(dropped_tx.clone());
        async move {
            let _guard = guard;
            std::future::pending::<Result<Subscription, BoxError>>().await
        }
    });

    let token = within("first call", token_rx.recv()).await.unwrap();
    sleep(Duration::from_secs(1)).await;
    assert!(!token.is_unsubscribed());
    assert!(dropped_rx.try_recv().is_err(), "the call is still running");

    sub.unsubscribe();
    within("the call's Unsubscribed completes", token.clone()).await;
    assert!(token.is_unsubscribed());
    within("the call's future is dropped", dropped_rx.recv())
        .await
        .unwrap();
    assert!(within("outer err", next_err(&mut sub)).await.is_none());
    sleep(Duration::from_secs(60)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_stops_the_inner_subscription() {
    let (script, mut watch) = script(&[Step::Live]);
    let mut sub = resubscribe(Duration::from_secs(1), script.plain());
    assert_eq!(within("established", watch.live.recv()).await, Some(1));
    assert!(
        timeout(Duration::from_secs(5), next_err(&mut sub))
            .await
            .is_err(),
        "a live outer subscription has nothing to report"
    );

    sub.unsubscribe();
    assert_eq!(within("inner stopped", watch.stopped.recv()).await, Some(1));
    assert!(within("outer err", next_err(&mut sub)).await.is_none());
    sleep(Duration::from_secs(60)).await;
    assert_eq!(watch.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_outer_subscription_stops_the_inner_one() {
    let (script, mut watch) = script(&[Step::Live]);
    let sub = resubscribe(Duration::from_secs(1), script.plain());
    assert_eq!(within("established", watch.live.recv()).await, Some(1));

    drop(sub);
    assert_eq!(within("inner stopped", watch.stopped.recv()).await, Some(1));
    sleep(Duration::from_secs(60)).await;
    assert_eq!(watch.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_during_backoff_stops_retrying() {
    let max = Duration::from_secs(10);
    let (script, mut watch) = script(&[Step::Refuse]);
    let mut sub = resubscribe(max, script.plain());
    assert_eq!(within("first call", watch.ended.recv()).await, Some(1));

    let before = Instant::now();
    sub.unsubscribe();
    assert!(within("outer err", next_err(&mut sub)).await.is_none());
    assert!(
        before.elapsed() < max / 10,
        "unsubscribe waited out the backoff ({:?})",
        before.elapsed()
    );
    sleep(max * 10).await;
    assert_eq!(watch.calls(), 1, "no retry after unsubscribe");
}
