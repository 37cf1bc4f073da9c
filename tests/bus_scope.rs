//! Integration tests for `SubscriptionScope`: tracking, untracking on unsubscribe
//! or drop, closing, and an exact count under concurrent use.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shardbus::{Feed, Subscription, SubscriptionScope, Unsubscribed};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

use common::{next_err, watchdog, within};

/// A subscription whose producer reports on the returned channel once unsubscribed.
fn watched() -> (Subscription, oneshot::Receiver<()>) {
    let (tx, rx) = oneshot::channel();
    let sub = Subscription::new(move |unsubscribed: Unsubscribed| async move {
        unsubscribed.await;
        let _ = tx.send(());
        Ok(())
    });
    (sub, rx)
}

#[tokio::test(start_paused = true)]
async fn track_returns_the_subscription_and_counts_it() {
    let scope = SubscriptionScope::default();
    assert_eq!(scope.count(), 0);
    let feed = Feed::<u32>::new();
    let (tx, mut rx) = mpsc::channel(4);

    let sub = scope.track(feed.subscribe(tx)).expect("open scope tracks");
    assert_eq!(scope.count(), 1);
    assert!(!sub.is_unsubscribed());
    assert_eq!(
        within("send", feed.send(3)).await,
        1,
        "the tracked subscription is the live one"
    );
    assert_eq!(rx.recv().await, Some(3));
}

#[tokio::test(start_paused = true)]
async fn unsubscribing_a_tracked_subscription_removes_it() {
    let scope = SubscriptionScope::default();
    let feed = Feed::<u32>::new();
    let (tx, _rx) = mpsc::channel(4);
    let a = scope.track(feed.subscribe(tx.clone())).unwrap();
    let _b = scope.track(feed.subscribe(tx)).unwrap();
    assert_eq!(scope.count(), 2);

    a.unsubscribe();
    assert_eq!(scope.count(), 1);
    assert_eq!(
        feed.len(),
        1,
        "unsubscribe through the scope reaches the feed"
    );
    a.unsubscribe();
    assert_eq!(
        scope.count(),
        1,
        "a repeated unsubscribe must not untrack anything else"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_tracked_subscription_removes_it() {
    let scope = SubscriptionScope::default();
    let (sub, stopped) = watched();
    let sub = scope.track(sub).unwrap();
    assert_eq!(scope.count(), 1);
    drop(sub);
    assert_eq!(scope.count(), 0);
    within("producer stops", stopped).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn close_unsubscribes_everything_tracked() {
    let scope = SubscriptionScope::default();
    let feed = Feed::<u32>::new();
    let (tx, _rx) = mpsc::channel(4);
    let mut tracked: Vec<Subscription> = (0..3)
        .map(|_| scope.track(feed.subscribe(tx.clone())).unwrap())
        .collect();
    let (sub, stopped) = watched();
    tracked.push(scope.track(sub).unwrap());
    assert_eq!(scope.count(), 4);

    scope.close();
    assert_eq!(scope.count(), 0);
    assert!(
        feed.is_empty(),
        "close must unsubscribe the feed subscriptions"
    );
    within("producer stops", stopped).await.unwrap();
    for sub in &mut tracked {
        assert!(sub.is_unsubscribed());
        assert!(within("err after close", next_err(sub)).await.is_none());
    }
    assert_eq!(within("send after close", feed.send(1)).await, 0);

    scope.close();
    assert_eq!(scope.count(), 0, "close is idempotent");
}

#[tokio::test(start_paused = true)]
async fn track_after_close_returns_none_and_unsubscribes() {
    let scope = SubscriptionScope::default();
    scope.close();

    let feed = Feed::<u32>::new();
    let (tx, _rx) = mpsc::channel(4);
    assert!(scope.track(feed.subscribe(tx)).is_none());
    assert!(
        feed.is_empty(),
        "a subscription offered to a closed scope is unsubscribed"
    );

    let (sub, stopped) = watched();
    assert!(scope.track(sub).is_none());
    within("producer stops", stopped).await.unwrap();
    assert_eq!(scope.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn tracking_an_already_unsubscribed_subscription_does_not_count_it() {
    let scope = SubscriptionScope::default();
    let (sub, stopped) = watched();
    sub.unsubscribe();
    within("producer stops", stopped).await.unwrap();
    if let Some(sub) = scope.track(sub) {
        assert!(sub.is_unsubscribed());
    }
    assert_eq!(scope.count(), 0, "nothing live is tracked");
}

#[tokio::test(start_paused = true)]
async fn scoped_subscribers_exit_when_the_scope_closes() {
    let scope = SubscriptionScope::default();
    let sums = Feed::<i64>::new();
    let products = Feed::<i64>::new();
    let (sum_tx, mut sum_rx) = mpsc::channel(1);
    let (product_tx, mut product_rx) = mpsc::channel(1);
    let mut sum_sub = scope.track(sums.subscribe(sum_tx)).unwrap();
    let mut product_sub = scope.track(products.subscribe(product_tx)).unwrap();

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let listener = tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(v) = sum_rx.recv() => seen_tx.send(("sum", v)).unwrap(),
                Some(v) = product_rx.recv() => seen_tx.send(("product", v)).unwrap(),
                err = sum_sub.err() => break err.is_none(),
                err = product_sub.err() => break err.is_none(),
            }
        }
    });

    assert_eq!(within("sum", sums.send(2 + 3)).await, 1);
    assert_eq!(within("product", products.send(3 * 4)).await, 1);
    let mut seen = vec![
        within("first result", seen_rx.recv()).await.unwrap(),
        within("second result", seen_rx.recv()).await.unwrap(),
    ];
    seen.sort_unstable();
    assert_eq!(seen, vec![("product", 12), ("sum", 5)]);

    scope.close();
    assert!(
        within("listener exits on close", listener).await.unwrap(),
        "a closed scope ends its subscriptions without error"
    );
    assert_eq!(scope.count(), 0);
    assert!(sums.is_empty() && products.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_stays_exact_under_concurrent_track_unsubscribe_close() {
    const TASKS: usize = 8;
    const ROUNDS: usize = 300;
    let _dog = watchdog("scope stress", Duration::from_secs(60));
    let scope = Arc::new(SubscriptionScope::default());
    let feed = Feed::<u32>::new();
    let (tx, _rx) = mpsc::channel::<u32>(1);

    // Phase 1: every task tracks ROUNDS subscriptions; it unsubscribes a third
    // itself, drops a third, and hands a third over. Of those, half are kept and
    // half are unsubscribed from yet another task, all while tracking goes on.
    let (handoff_tx, mut handoff_rx) = mpsc::unbounded_channel::<Subscription>();
    let workers: Vec<_> = (0..TASKS)
        .map(|_| {
            let scope = Arc::clone(&scope);
            let feed = feed.clone();
            let tx = tx.clone();
            let handoff = handoff_tx.clone();
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let sub = scope
                        .track(feed.subscribe(tx.clone()))
                        .expect("scope is open");
                    match round % 3 {
                        0 => handoff.send(sub).unwrap(),
                        1 => sub.unsubscribe(),
                        _ => drop(sub),
                    }
                    assert!(scope.count() <= TASKS * ROUNDS);
                    if round % 16 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    drop(handoff_tx);

    let held = timeout(Duration::from_secs(30), async {
        let mut held = Vec::new();
        let mut unsubscribers = Vec::new();
        let mut n = 0;
        while let Some(sub) = handoff_rx.recv().await {
            if n % 2 == 0 {
                held.push(sub);
            } else {
                unsubscribers.push(tokio::spawn(async move { sub.unsubscribe() }));
            }
            n += 1;
        }
        for task in workers.into_iter().chain(unsubscribers) {
            task.await.unwrap();
        }
        held
    })
    .await
    .expect("phase 1 did not finish");
    assert_eq!(held.len(), TASKS * ROUNDS / 3 / 2);
    assert_eq!(
        scope.count(),
        held.len(),
        "count after concurrent track/unsubscribe/drop"
    );
    assert_eq!(feed.len(), held.len());

    // Phase 2: workers keep tracking and unsubscribing while the scope is closed
    // under them; each stops once the scope refuses.
    let progress = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..TASKS)
        .map(|_| {
            let scope = Arc::clone(&scope);
            let feed = feed.clone();
            let tx = tx.clone();
            let progress = Arc::clone(&progress);
            tokio::spawn(async move {
                let mut kept = Vec::new();
                let mut round = 0usize;
                while let Some(sub) = scope.track(feed.subscribe(tx.clone())) {
                    if round.is_multiple_of(2) {
                        kept.push(sub);
                    } else {
                        sub.unsubscribe();
                    }
                    round += 1;
                    progress.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
                kept
            })
        })
        .collect();
    timeout(Duration::from_secs(30), async {
        while progress.load(Ordering::Relaxed) < TASKS * 50 {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
    })
    .await
    .expect("phase 2 workers made no progress");
    scope.close();
    let kept: Vec<Subscription> = timeout(Duration::from_secs(30), async {
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.await.unwrap());
        }
        all
    })
    .await
    .expect("phase 2 did not finish: track kept succeeding after close?");

    assert_eq!(scope.count(), 0);
    assert!(kept.iter().all(Subscription::is_unsubscribed));
    assert!(held.iter().all(Subscription::is_unsubscribed));
    assert!(
        feed.is_empty(),
        "every subscription the scope saw is unsubscribed"
    );
}
