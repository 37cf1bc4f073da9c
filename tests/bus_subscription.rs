//! Integration tests for `Subscription`: the producer's error is reported once,
//! unsubscribing (or dropping) stops the producer, and unsubscribe is idempotent.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardbus::{BoxError, Subscription, Unsubscribed};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep, timeout};

use common::{next_err, watchdog, within};

/// A producer that sends `0..limit` into `tx`, failing with "counter failed"
/// once it reaches `fail_at`, and stopping quietly when unsubscribed.
fn counting(limit: u32, fail_at: u32, tx: mpsc::Sender<u32>) -> Subscription {
    Subscription::new(move |unsubscribed: Unsubscribed| async move {
        for i in 0..limit {
            if i >= fail_at {
                return Err("counter failed".into());
            }
            tokio::select! {
                sent = tx.send(i) => if sent.is_err() { return Ok(()) },
                () = unsubscribed.clone() => return Ok(()),
            }
        }
        Ok(())
    })
}

/// A producer that runs until unsubscribed, then reports on `stopped` and
/// returns `result`. Also hands out a clone of its `Unsubscribed`.
fn until_unsubscribed(
    result: Result<(), &'static str>,
) -> (Subscription, oneshot::Receiver<()>, Unsubscribed) {
    let (stopped_tx, stopped_rx) = oneshot::channel();
    let token = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&token);
    let sub = Subscription::new(move |unsubscribed: Unsubscribed| {
        *slot.lock().unwrap() = Some(unsubscribed.clone());
        async move {
            unsubscribed.await;
            let _ = stopped_tx.send(());
            result.map_err(BoxError::from)
        }
    });
    let token = token.lock().unwrap().take().unwrap();
    (sub, stopped_rx, token)
}

#[tokio::test(start_paused = true)]
async fn producer_error_is_reported_once_then_none() {
    let (tx, mut rx) = mpsc::channel(1);
    let mut sub = counting(10, 2, tx);
    let mut got = Vec::new();
    let err = within("producer error", async {
        loop {
            tokio::select! {
                biased;
                Some(v) = rx.recv() => got.push(v),
                err = sub.err() => break err,
            }
        }
    })
    .await;
    assert_eq!(got, vec![0, 1], "values before the failure all arrive");
    let err = err.expect("the producer failed, err() must say so");
    assert_eq!(err.to_string(), "counter failed");

    assert!(
        within("err second time", next_err(&mut sub))
            .await
            .is_none()
    );
    assert!(within("err third time", next_err(&mut sub)).await.is_none());
    sub.unsubscribe();
    assert!(
        within("err after unsubscribe", next_err(&mut sub))
            .await
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn err_waits_for_a_late_failure() {
    let start = Instant::now();
    let mut sub = Subscription::new(|_unsubscribed: Unsubscribed| async {
        sleep(Duration::from_secs(5)).await;
        Err::<(), BoxError>("late".into())
    });
    let err = within("late error", next_err(&mut sub)).await;
    assert_eq!(err.map(|e| e.to_string()).as_deref(), Some("late"));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_millis(5_010),
        "err() resolved after {waited:?}, the producer failed at 5s"
    );
}

#[tokio::test(start_paused = true)]
async fn producer_ok_gives_none() {
    let mut sub = Subscription::new(|_unsubscribed: Unsubscribed| async { Ok(()) });
    assert!(
        within("err of a clean producer", next_err(&mut sub))
            .await
            .is_none()
    );
    assert!(within("err again", next_err(&mut sub)).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn producer_runs_without_anyone_polling_err() {
    let (tx, mut rx) = mpsc::channel(4);
    let _sub = counting(3, u32::MAX, tx);
    for want in 0..3 {
        assert_eq!(within("value from producer", rx.recv()).await, Some(want));
    }
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_signals_producer_and_err_is_none() {
    let (mut sub, stopped, _token) = until_unsubscribed(Ok(()));
    assert!(!sub.is_unsubscribed());
    assert!(
        timeout(Duration::from_secs(5), next_err(&mut sub))
            .await
            .is_err(),
        "a running producer has no error yet"
    );

    sub.unsubscribe();
    assert!(sub.is_unsubscribed());
    within("producer sees unsubscribe", stopped).await.unwrap();
    assert!(
        within("err after unsubscribe", next_err(&mut sub))
            .await
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn error_returned_after_unsubscribe_is_not_reported() {
    let (mut sub, stopped, _token) = until_unsubscribed(Err("shutting down"));
    sub.unsubscribe();
    within("producer sees unsubscribe", stopped).await.unwrap();
    assert!(
        within("err", next_err(&mut sub)).await.is_none(),
        "an unsubscribed subscription reports no error"
    );
}

#[tokio::test(start_paused = true)]
async fn unsubscribed_token_completes_for_every_clone() {
    let (sub, _stopped, token) = until_unsubscribed(Ok(()));
    let early_clone = token.clone();
    assert!(!token.is_unsubscribed());
    assert!(!early_clone.is_unsubscribed());
    assert!(
        timeout(Duration::from_secs(5), early_clone.clone())
            .await
            .is_err(),
        "Unsubscribed must not complete before unsubscribe"
    );

    sub.unsubscribe();
    assert!(token.is_unsubscribed());
    assert!(early_clone.is_unsubscribed());
    within("early clone", early_clone).await;
    within("late clone", token.clone()).await;
    within("original", token).await;
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_before_the_producer_runs() {
    let (mut sub, stopped, _token) = until_unsubscribed(Ok(()));
    sub.unsubscribe(); // no await in between: the producer has not been polled yet
    within("producer sees unsubscribe", stopped).await.unwrap();
    assert!(within("err", next_err(&mut sub)).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn dropping_subscription_unsubscribes() {
    let (sub, stopped, token) = until_unsubscribed(Ok(()));
    drop(sub);
    within("producer sees drop", stopped).await.unwrap();
    assert!(token.is_unsubscribed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_is_idempotent_across_tasks() {
    const TASKS: usize = 16;
    let _dog = watchdog(
        "unsubscribe_is_idempotent_across_tasks",
        Duration::from_secs(60),
    );
    let runs = Arc::new(AtomicUsize::new(0));
    let (stopped_tx, mut stopped_rx) = mpsc::unbounded_channel();
    let producer_runs = Arc::clone(&runs);
    let sub = Arc::new(Subscription::new(
        move |unsubscribed: Unsubscribed| async move {
            unsubscribed.await;
            producer_runs.fetch_add(1, Ordering::SeqCst);
            let _ = stopped_tx.send(());
            Ok(())
        },
    ));

    let callers: Vec<_> = (0..TASKS)
        .map(|_| {
            let sub = Arc::clone(&sub);
            tokio::spawn(async move {
                for _ in 0..10 {
                    sub.unsubscribe();
                    tokio::task::yield_now().await;
                }
                sub.is_unsubscribed()
            })
        })
        .collect();
    sub.unsubscribe();

    timeout(Duration::from_secs(20), async {
        for caller in callers {
            assert!(caller.await.unwrap());
        }
        stopped_rx.recv().await.unwrap();
    })
    .await
    .expect("concurrent unsubscribes did not finish");

    let mut sub = Arc::try_unwrap(sub).ok().unwrap();
    sub.unsubscribe();
    assert!(
        timeout(Duration::from_secs(20), next_err(&mut sub))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(
        stopped_rx.try_recv().is_err(),
        "the producer stopped exactly once"
    );
}
