//! The one-subscriber fast path of `TypeMux`: a post that finds its topic
//! in the lock-free index and room in its ring is not counted in flight (it
//! takes effect at the ring's lock). These tests check that it stays
//! lossless, in order and without duplicates, under `stop` and while other
//! subscribers join and leave (so posts switch between one subscriber and
//! several).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shardbus::{MuxClosed, TypeMux};

use common::{watchdog, within};

#[derive(Debug, PartialEq)]
struct Seq {
    producer: usize,
    n: u64,
}

/// One subscriber that reads all along while others come and go, so that
/// consecutive posts are written for one subscriber, then several, then
/// one again, over a ring that wraps many times: it sees every event once,
/// in order; each joiner sees a gapless run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_subscriber_stays_lossless_while_others_join_and_leave() {
    const EVENTS: u64 = 50_000;
    let _dog = watchdog("one subscriber churn", Duration::from_secs(60));
    let mux = TypeMux::with_capacity(4);
    let mut lone = mux.subscribe::<Seq>();
    let reader = tokio::spawn(async move {
        let mut next = 0;
        while let Some(seq) = lone.recv().await {
            assert_eq!(seq.n, next, "gap, duplicate or reorder");
            next += 1;
            if next % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
        next
    });
    let churn = {
        let mux = mux.clone();
        tokio::spawn(async move {
            let mut joined = 0u64;
            while !mux.is_stopped() {
                let mut guest = mux.subscribe::<Seq>();
                let mut last = None;
                for _ in 0..(joined % 5) {
                    let Some(seq) = guest.recv().await else {
                        break;
                    };
                    if let Some(last) = last {
                        assert_eq!(seq.n, last + 1, "a guest saw a gap");
                    }
                    last = Some(seq.n);
                }
                drop(guest);
                joined += 1;
                tokio::task::yield_now().await;
            }
            joined
        })
    };
    for n in 0..EVENTS {
        let delivered = mux.post(Seq { producer: 0, n }).await.unwrap();
        assert!(delivered >= 1, "post {n} reached {delivered}");
    }
    within("stop", mux.stop()).await;
    assert_eq!(within("reader", reader).await.unwrap(), EVENTS);
    assert!(within("churn", churn).await.unwrap() > 0);
}

/// Posts from several tasks racing `stop`: every post that returned
/// `Ok(1)` is received exactly once and in its producer's order, no post
/// that failed is received, and once `stop` has returned every post fails.
/// (Most of these posts take the fast path that is not counted in flight.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_racing_stop_are_delivered_or_rejected() {
    const PRODUCERS: usize = 3;
    let _dog = watchdog("posts racing stop", Duration::from_secs(60));
    for round in 0..20u64 {
        let mux = TypeMux::with_capacity(16);
        let mut stream = mux.subscribe::<Seq>();
        let go = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|producer| {
                let mux = mux.clone();
                let go = go.clone();
                tokio::spawn(async move {
                    while !go.load(Ordering::Relaxed) {
                        tokio::task::yield_now().await;
                    }
                    let mut delivered = 0u64;
                    loop {
                        match mux
                            .post(Seq {
                                producer,
                                n: delivered,
                            })
                            .await
                        {
                            Ok(1) => delivered += 1,
                            Ok(n) => panic!("a post to one subscriber reached {n}"),
                            Err(MuxClosed) => return delivered,
                        }
                    }
                })
            })
            .collect();
        let reader = tokio::spawn(async move {
            let mut next = [0u64; PRODUCERS];
            while let Some(seq) = stream.recv().await {
                assert_eq!(seq.n, next[seq.producer], "producer {}", seq.producer);
                next[seq.producer] += 1;
            }
            next
        });
        go.store(true, Ordering::Relaxed);
        // Let the posts run for a while, a different while each round.
        for _ in 0..(round * 37) % 500 {
            tokio::task::yield_now().await;
        }
        within("stop", mux.stop()).await;
        assert_eq!(mux.post(Seq { producer: 0, n: 0 }).await, Err(MuxClosed));
        let mut delivered = [0u64; PRODUCERS];
        for (i, p) in producers.into_iter().enumerate() {
            delivered[i] = within("producer", p).await.unwrap();
        }
        let received = within("reader", reader).await.unwrap();
        assert_eq!(received, delivered, "round {round}: received vs Ok posts");
    }
}
