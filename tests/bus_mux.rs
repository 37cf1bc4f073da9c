//! Integration tests for `TypeMux`: routing by type, lossless backpressure,
//! ordering (per type and across types), delivery by shared `Arc`, lossy
//! subscribers, stop, and a stress test with churning consumers.
#![allow(clippy::unwrap_used)]

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use futures::{FutureExt, StreamExt};
use shardbus::{LossyStream, MuxClosed, TryRecvError, TypeMux};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

use common::{still_pending, watchdog, within};

fn spawn_post<E: Send + Sync + 'static>(
    mux: &TypeMux,
    event: E,
) -> JoinHandle<Result<usize, MuxClosed>> {
    let mux = mux.clone();
    tokio::spawn(async move { mux.post(event).await })
}

/// A capacity-1 mux whose only `Ping` subscriber is full: `Ping(1)` is
/// posted and blocked on it, and `stop` has been called (and is pending).
struct StopBehindBlockedPost {
    mux: TypeMux,
    pings: shardbus::EventStream<Ping>,
    post: JoinHandle<Result<usize, MuxClosed>>,
    stop: JoinHandle<()>,
}

async fn stop_behind_blocked_post() -> StopBehindBlockedPost {
    let mux = TypeMux::with_capacity(1);
    let pings = mux.subscribe::<Ping>();
    assert_eq!(within("fill", mux.post(Ping(0))).await.unwrap(), 1);
    let post = spawn_post(&mux, Ping(1));
    assert!(still_pending(&post).await);
    let stop = {
        let mux = mux.clone();
        tokio::spawn(async move { mux.stop().await })
    };
    assert!(
        still_pending(&stop).await,
        "stop must wait for the in-flight post"
    );
    StopBehindBlockedPost {
        mux,
        pings,
        post,
        stop,
    }
}

#[derive(Debug, PartialEq)]
struct Ping(u32);

#[derive(Debug, PartialEq)]
struct Pong(u32);

#[tokio::test(start_paused = true)]
async fn post_reaches_a_subscriber() {
    let mux = TypeMux::new();
    let mut pings = mux.subscribe::<Ping>();
    let post = spawn_post(&mux, Ping(5));
    assert_eq!(*within("recv", pings.recv()).await.unwrap(), Ping(5));
    assert_eq!(within("post", post).await.unwrap().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn post_without_subscribers_returns_zero() {
    let mux = TypeMux::default();
    assert_eq!(within("post", mux.post(Ping(1))).await.unwrap(), 0);
    let _pongs = mux.subscribe::<Pong>();
    assert_eq!(within("post", mux.post(Ping(2))).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn only_subscribers_of_the_posted_type_receive_it() {
    let mux = TypeMux::new();
    let mut pings = mux.subscribe::<Ping>();
    let mut pongs = mux.subscribe::<Pong>();

    assert_eq!(within("post ping", mux.post(Ping(1))).await.unwrap(), 1);
    assert_eq!(*pings.try_recv().unwrap(), Ping(1));
    assert!(matches!(pongs.try_recv(), Err(TryRecvError::Empty)));

    assert_eq!(within("post pong", mux.post(Pong(2))).await.unwrap(), 1);
    assert_eq!(*pongs.try_recv().unwrap(), Pong(2));
    assert!(matches!(pings.try_recv(), Err(TryRecvError::Empty)));

    // Same layout, different type: still nobody's.
    assert_eq!(within("post u32", mux.post(3u32)).await.unwrap(), 0);
    assert!(matches!(pings.try_recv(), Err(TryRecvError::Empty)));
}

#[tokio::test(start_paused = true)]
async fn post_counts_every_kind_of_subscriber() {
    let mux = TypeMux::new();
    let _a = mux.subscribe::<Ping>();
    let _b = mux.subscribe::<Ping>();
    let _lossy = mux.subscribe_lossy::<Ping>(4);
    let _many = mux.subscribe_many().to::<Ping>().to::<Pong>().build();
    let _pongs = mux.subscribe::<Pong>();

    assert_eq!(within("post ping", mux.post(Ping(1))).await.unwrap(), 4);
    assert_eq!(within("post pong", mux.post(Pong(1))).await.unwrap(), 2);
}

#[tokio::test(start_paused = true)]
async fn every_subscriber_gets_the_same_arc() {
    let mux = TypeMux::new();
    let mut a = mux.subscribe::<Ping>();
    let mut b = mux.subscribe::<Ping>();
    let mut lossy = Box::pin(mux.subscribe_lossy::<Ping>(4));
    let mut many = mux.subscribe_many().to::<Ping>().build();

    assert_eq!(within("post", mux.post(Ping(9))).await.unwrap(), 4);
    let from_a = within("a", a.recv()).await.unwrap();
    let from_b = within("b", b.recv()).await.unwrap();
    let from_lossy = within("lossy", lossy.next()).await.unwrap().unwrap();
    let from_many = within("many", many.recv())
        .await
        .unwrap()
        .downcast::<Ping>()
        .unwrap();
    assert_eq!(*from_a, Ping(9));
    assert!(Arc::ptr_eq(&from_a, &from_b), "one allocation per post");
    assert!(Arc::ptr_eq(&from_a, &from_lossy));
    assert!(Arc::ptr_eq(&from_a, &from_many));
}

#[tokio::test(start_paused = true)]
async fn full_subscriber_makes_post_wait() {
    let mux = TypeMux::with_capacity(1);
    let mut pings = mux.subscribe::<Ping>();
    assert_eq!(within("fill", mux.post(Ping(0))).await.unwrap(), 1);

    let post = spawn_post(&mux, Ping(1));
    assert!(
        still_pending(&post).await,
        "post must wait for a full subscriber"
    );
    assert_eq!(*pings.recv().await.unwrap(), Ping(0));
    assert_eq!(within("post", post).await.unwrap().unwrap(), 1);
    assert_eq!(*pings.recv().await.unwrap(), Ping(1), "nothing lost");
}

#[tokio::test(start_paused = true)]
async fn default_capacity_is_128() {
    let mux = TypeMux::new();
    let mut numbers = mux.subscribe::<u32>();
    for i in 0..128u32 {
        assert_eq!(within("post into buffer", mux.post(i)).await.unwrap(), 1);
    }
    let post = spawn_post(&mux, 128u32);
    assert!(
        still_pending(&post).await,
        "the 129th unread event must wait"
    );

    assert_eq!(*numbers.recv().await.unwrap(), 0);
    assert_eq!(within("post", post).await.unwrap().unwrap(), 1);
    for want in 1..=128u32 {
        assert_eq!(*numbers.try_recv().unwrap(), want);
    }
}

#[tokio::test(start_paused = true)]
async fn reading_one_event_from_each_full_subscriber_releases_post() {
    const CAPACITY: u32 = 16;
    let mux = TypeMux::with_capacity(CAPACITY as usize);
    let mut a = mux.subscribe::<u32>();
    let mut b = mux.subscribe::<u32>();
    for i in 0..CAPACITY {
        assert_eq!(within("fill", mux.post(i)).await.unwrap(), 2);
    }
    let post = spawn_post(&mux, CAPACITY);
    assert!(still_pending(&post).await);

    assert_eq!(*a.recv().await.unwrap(), 0);
    assert!(still_pending(&post).await, "b is still full");
    assert_eq!(*b.recv().await.unwrap(), 0);
    // Both made room and now wait for the post itself, reading nothing more.
    assert_eq!(
        within("post after both readers made room", post)
            .await
            .unwrap()
            .unwrap(),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_a_full_stream_releases_post() {
    let mux = TypeMux::with_capacity(1);
    let full = mux.subscribe::<Ping>();
    let mut reader = mux.subscribe::<Ping>();
    assert_eq!(within("fill", mux.post(Ping(0))).await.unwrap(), 2);

    let post = spawn_post(&mux, Ping(1));
    assert_eq!(*reader.recv().await.unwrap(), Ping(0));
    assert!(still_pending(&post).await, "one subscriber is still full");

    drop(full);
    assert_eq!(
        within("post released by drop", post)
            .await
            .unwrap()
            .unwrap(),
        1,
        "the dropped stream is not counted"
    );
    assert_eq!(*reader.recv().await.unwrap(), Ping(1));
}

#[tokio::test(start_paused = true)]
async fn unsubscribing_many_releases_blocked_post() {
    let mux = TypeMux::with_capacity(1);
    let mut many = mux.subscribe_many().to::<Ping>().build();
    assert_eq!(within("fill", mux.post(Ping(0))).await.unwrap(), 1);

    let post = spawn_post(&mux, Ping(1));
    assert!(still_pending(&post).await);
    assert!(!many.closed());
    many.unsubscribe();
    assert_eq!(within("post released", post).await.unwrap().unwrap(), 0);
    assert!(many.closed());
    many.unsubscribe();
    assert_eq!(
        within("post after unsubscribe", mux.post(Ping(2)))
            .await
            .unwrap(),
        0
    );
    // It may still hand out what was buffered before, but then it must end.
    within("an unsubscribed TypeMuxSubscription ends", async {
        while let Some(event) = many.recv().await {
            assert_eq!(*event.downcast::<Ping>().unwrap(), Ping(0));
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn subscription_created_during_post_does_not_receive_it() {
    let mux = TypeMux::with_capacity(1);
    let mut early = mux.subscribe::<Ping>();
    assert_eq!(within("fill", mux.post(Ping(0))).await.unwrap(), 1);
    let post = spawn_post(&mux, Ping(1));
    assert!(still_pending(&post).await);

    let mut late = mux.subscribe::<Ping>();
    let mut late_lossy = Box::pin(mux.subscribe_lossy::<Ping>(4));
    let mut late_many = mux.subscribe_many().to::<Ping>().build();
    assert_eq!(*early.recv().await.unwrap(), Ping(0));
    assert_eq!(
        within("post", post).await.unwrap().unwrap(),
        1,
        "only the subscriber present when the post started is counted"
    );
    assert_eq!(*early.recv().await.unwrap(), Ping(1));
    assert!(matches!(late.try_recv(), Err(TryRecvError::Empty)));
    assert!(late_lossy.next().now_or_never().is_none());
    assert!(late_many.recv().now_or_never().is_none());

    let post = spawn_post(&mux, Ping(2));
    assert_eq!(*early.recv().await.unwrap(), Ping(2));
    assert_eq!(within("post to all", post).await.unwrap().unwrap(), 4);
}

#[tokio::test(start_paused = true)]
async fn events_of_one_type_arrive_in_post_order() {
    const N: u32 = 500;
    let mux = TypeMux::with_capacity(4);
    let mut numbers = mux.subscribe::<u32>();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..N {
            got.push(*numbers.recv().await.unwrap());
        }
        got
    });
    for i in 0..N {
        within("post", mux.post(i)).await.unwrap();
    }
    let got = within("reader", reader).await.unwrap();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn subscribe_many_preserves_post_order_across_types() {
    let mux = TypeMux::new();
    let mut many = mux.subscribe_many().to::<Ping>().to::<Pong>().build();
    let before = SystemTime::now();
    for i in 0..20u32 {
        let delivered = if i % 3 == 0 {
            mux.post(Pong(i)).await
        } else {
            mux.post(Ping(i)).await
        };
        assert_eq!(delivered.unwrap(), 1);
        assert_eq!(mux.post(i).await.unwrap(), 0, "u32 was not asked for");
    }
    let after = SystemTime::now();

    let mut last_time = before;
    for i in 0..20u32 {
        let event = within("many", many.recv()).await.unwrap();
        if i % 3 == 0 {
            assert!(event.is::<Pong>() && !event.is::<Ping>());
            assert_eq!(*event.downcast::<Pong>().unwrap(), Pong(i));
            assert!(event.downcast::<Ping>().is_none());
        } else {
            assert!(event.is::<Ping>() && !event.is::<Pong>());
            assert_eq!(*event.downcast::<Ping>().unwrap(), Ping(i));
            assert!(event.downcast::<Pong>().is_none());
        }
        assert!(event.data.is::<Ping>() || event.data.is::<Pong>());
        assert!(
            event.time >= last_time && event.time <= after,
            "event {i}'s time is not the time it was posted"
        );
        last_time = event.time;
    }
    assert!(
        many.recv().now_or_never().is_none(),
        "nothing else was delivered"
    );
}

#[tokio::test(start_paused = true)]
async fn subscribe_many_is_a_stream() {
    let mux = TypeMux::new();
    let mut many = Box::pin(mux.subscribe_many().to::<Ping>().to::<Pong>().build());
    mux.post(Ping(1)).await.unwrap();
    mux.post(Pong(2)).await.unwrap();
    within("stop", mux.stop()).await;
    let mut kinds = Vec::new();
    while let Some(event) = within("next", many.next()).await {
        kinds.push(event.is::<Ping>());
    }
    assert_eq!(kinds, vec![true, false]);
}

#[tokio::test(start_paused = true)]
async fn subscribe_many_rejects_a_duplicate_type() {
    let mux = TypeMux::new();
    let duplicate = catch_unwind(AssertUnwindSafe(|| {
        mux.subscribe_many()
            .to::<Ping>()
            .to::<Pong>()
            .to::<Ping>()
            .build()
    }));
    assert!(
        duplicate.is_err(),
        "subscribing to the same type twice must panic"
    );

    let distinct = catch_unwind(AssertUnwindSafe(|| {
        mux.subscribe_many().to::<Ping>().to::<Pong>().build()
    }));
    let mut distinct = distinct.expect("distinct types are fine");
    assert_eq!(
        within("post after the panic", mux.post(Ping(1)))
            .await
            .unwrap(),
        1,
        "the mux still works after a rejected subscription"
    );
    assert!(within("recv", distinct.recv()).await.unwrap().is::<Ping>());
}

#[tokio::test(start_paused = true)]
async fn dropping_a_stream_unsubscribes_it() {
    let mux = TypeMux::new();
    let stream = mux.subscribe::<Ping>();
    let lossy = mux.subscribe_lossy::<Ping>(2);
    let many = mux.subscribe_many().to::<Ping>().build();
    assert_eq!(within("post", mux.post(Ping(0))).await.unwrap(), 3);
    drop(stream);
    assert_eq!(within("post", mux.post(Ping(1))).await.unwrap(), 2);
    drop(lossy);
    assert_eq!(within("post", mux.post(Ping(2))).await.unwrap(), 1);
    drop(many);
    assert_eq!(within("post", mux.post(Ping(3))).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn try_recv_reports_empty_then_closed() {
    let mux = TypeMux::new();
    let mut pings = mux.subscribe::<Ping>();
    assert!(matches!(pings.try_recv(), Err(TryRecvError::Empty)));
    within("post", mux.post(Ping(1))).await.unwrap();
    within("post", mux.post(Ping(2))).await.unwrap();
    assert_eq!(*pings.try_recv().unwrap(), Ping(1));

    within("stop", mux.stop()).await;
    assert_eq!(
        *pings.try_recv().unwrap(),
        Ping(2),
        "buffered events survive stop"
    );
    let closed = pings.try_recv();
    assert!(matches!(closed, Err(TryRecvError::Closed)));
    let err = closed.unwrap_err();
    assert!(!err.to_string().is_empty());
    assert!(!TryRecvError::Empty.to_string().is_empty());
}

#[tokio::test(start_paused = true)]
async fn post_after_stop_fails() {
    let mux = TypeMux::new();
    let other = mux.clone();
    let _pings = mux.subscribe::<Ping>();
    assert!(!mux.is_stopped());

    within("stop", mux.stop()).await;
    assert!(mux.is_stopped());
    assert!(other.is_stopped(), "clones share the bus");
    let err: MuxClosed = within("post", mux.post(Ping(1))).await.unwrap_err();
    assert!(!err.to_string().is_empty());
    assert!(within("post via clone", other.post(Pong(1))).await.is_err());
    within("second stop", other.stop()).await;
    assert!(within("post", mux.post(2u8)).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn stop_ends_every_stream_after_its_buffered_events() {
    let mux = TypeMux::new();
    let pings = mux.subscribe::<Ping>();
    let mut lossy = Box::pin(mux.subscribe_lossy::<Ping>(4));
    let mut many = mux.subscribe_many().to::<Ping>().to::<Pong>().build();
    within("post", mux.post(Ping(1))).await.unwrap();
    within("post", mux.post(Pong(2))).await.unwrap();
    within("post", mux.post(Ping(3))).await.unwrap();

    within("stop", mux.stop()).await;

    let got: Vec<u32> = within("collect", pings.map(|p| p.0).collect()).await;
    assert_eq!(got, vec![1, 3]);

    assert_eq!(
        *within("lossy", lossy.next()).await.unwrap().unwrap(),
        Ping(1)
    );
    assert_eq!(
        *within("lossy", lossy.next()).await.unwrap().unwrap(),
        Ping(3)
    );
    assert!(within("lossy end", lossy.next()).await.is_none());

    let first = within("many", many.recv()).await.unwrap();
    assert_eq!(*first.downcast::<Ping>().unwrap(), Ping(1));
    let second = within("many", many.recv()).await.unwrap();
    assert_eq!(*second.downcast::<Pong>().unwrap(), Pong(2));
    let third = within("many", many.recv()).await.unwrap();
    assert_eq!(*third.downcast::<Ping>().unwrap(), Ping(3));
    assert!(within("many end", many.recv()).await.is_none());
    assert!(many.closed());
}

#[tokio::test(start_paused = true)]
async fn subscribing_after_stop_gives_an_ended_stream() {
    let mux = TypeMux::new();
    within("stop", mux.stop()).await;

    let mut pings = mux.subscribe::<Ping>();
    assert!(matches!(pings.next().now_or_never(), Some(None)));
    assert!(matches!(pings.try_recv(), Err(TryRecvError::Closed)));
    let mut lossy = Box::pin(mux.subscribe_lossy::<Ping>(4));
    assert!(matches!(lossy.next().now_or_never(), Some(None)));
    let mut many = mux.subscribe_many().to::<Ping>().build();
    assert!(matches!(many.recv().now_or_never(), Some(None)));
    many.unsubscribe();
    assert!(many.closed());
}

#[tokio::test(start_paused = true)]
async fn stop_waits_for_a_post_blocked_on_a_full_subscriber() {
    let StopBehindBlockedPost {
        mux: _,
        mut pings,
        post,
        stop,
    } = stop_behind_blocked_post().await;
    assert!(
        !post.is_finished(),
        "stop must not abort the in-flight post"
    );

    assert_eq!(*pings.recv().await.unwrap(), Ping(0));
    assert_eq!(within("in-flight post", post).await.unwrap().unwrap(), 1);
    within("stop", stop).await.unwrap();
    assert_eq!(
        *pings.recv().await.unwrap(),
        Ping(1),
        "the in-flight event is delivered"
    );
    assert!(within("end", pings.recv()).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn post_during_stop_is_rejected() {
    let StopBehindBlockedPost {
        mux,
        mut pings,
        post,
        stop,
    } = stop_behind_blocked_post().await;

    let late = timeout(Duration::from_secs(1), mux.post(Ping(2))).await;
    assert!(
        matches!(late, Ok(Err(_))),
        "a post started after stop() must fail with MuxClosed, got {late:?}"
    );

    assert_eq!(*pings.recv().await.unwrap(), Ping(0));
    within("in-flight post", post).await.unwrap().unwrap();
    within("stop", stop).await.unwrap();
    assert_eq!(*pings.recv().await.unwrap(), Ping(1));
    assert!(
        within("end", pings.recv()).await.is_none(),
        "Ping(2) must not arrive"
    );
}

#[tokio::test(start_paused = true)]
async fn lossy_subscriber_never_slows_post() {
    let mux = TypeMux::with_capacity(1);
    let mut lossy = Box::pin(mux.subscribe_lossy::<u32>(2));
    for i in 0..1000u32 {
        assert_eq!(
            within("post past an unread lossy subscriber", mux.post(i))
                .await
                .unwrap(),
            1
        );
    }
    let lag = within("lossy", lossy.next()).await.unwrap().unwrap_err();
    assert_eq!(lag.missed, 998);
    assert_eq!(*within("lossy", lossy.next()).await.unwrap().unwrap(), 998);
    assert_eq!(*within("lossy", lossy.next()).await.unwrap().unwrap(), 999);
    assert!(lossy.next().now_or_never().is_none());
}

type PinnedLossy = Pin<Box<LossyStream<u32>>>;

/// Asserts the lossy stream yields exactly `want` now, and nothing more.
async fn expect_values(lossy: &mut PinnedLossy, want: &[u32]) {
    for w in want {
        assert_eq!(*within("lossy", lossy.next()).await.unwrap().unwrap(), *w);
    }
    assert!(
        lossy.next().now_or_never().is_none(),
        "expected only {want:?}"
    );
}

/// Asserts the lossy stream's next item is a lag of exactly `missed` events.
async fn expect_lag(lossy: &mut PinnedLossy, missed: u64) {
    let lag = within("lossy", lossy.next()).await.unwrap().unwrap_err();
    assert_eq!(lag.missed, missed);
    assert!(!lag.to_string().is_empty());
}

#[tokio::test(start_paused = true)]
async fn lossy_reports_exact_missed_count_then_the_newest() {
    let mux = TypeMux::new();
    let mut lossy = Box::pin(mux.subscribe_lossy::<u32>(3));
    for i in 0..10u32 {
        mux.post(i).await.unwrap();
    }
    expect_lag(&mut lossy, 7).await;
    expect_values(&mut lossy, &[7, 8, 9]).await;

    mux.post(10u32).await.unwrap();
    mux.post(11u32).await.unwrap();
    expect_values(&mut lossy, &[10, 11]).await;

    for i in 12..16u32 {
        mux.post(i).await.unwrap();
    }
    expect_lag(&mut lossy, 1).await;
    expect_values(&mut lossy, &[13, 14, 15]).await;

    for i in 16..19u32 {
        mux.post(i).await.unwrap();
    }
    assert_eq!(*within("lossy", lossy.next()).await.unwrap().unwrap(), 16);
    mux.post(19u32).await.unwrap();
    mux.post(20u32).await.unwrap();
    expect_lag(&mut lossy, 1).await;
    expect_values(&mut lossy, &[18, 19, 20]).await;
}

#[tokio::test(start_paused = true)]
async fn lossy_subscriber_sees_events_only_of_its_type() {
    let mux = TypeMux::new();
    let mut lossy = Box::pin(mux.subscribe_lossy::<Ping>(2));
    assert_eq!(mux.post(Pong(1)).await.unwrap(), 0);
    assert!(lossy.next().now_or_never().is_none());
    assert_eq!(mux.post(Ping(2)).await.unwrap(), 1);
    assert_eq!(
        *within("lossy", lossy.next()).await.unwrap().unwrap(),
        Ping(2)
    );
}

#[tokio::test(start_paused = true)]
async fn clones_share_the_bus() {
    let mux = TypeMux::new();
    let other = mux.clone();
    let mut pings = other.subscribe::<Ping>();
    assert_eq!(within("post", mux.post(Ping(4))).await.unwrap(), 1);
    assert_eq!(*pings.recv().await.unwrap(), Ping(4));
    within("stop via clone", other.stop()).await;
    assert!(mux.is_stopped());
    assert!(within("end", pings.recv()).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_that_makes_room_then_waits_for_the_post_is_woken() {
    // The reader takes one event and then waits for proof that a post it made
    // room for went through, without reading further: only the room it made
    // can release that post. Many short episodes on fresh buses, because the
    // race this guards against is likeliest while the two tasks warm up.
    const EPISODES: usize = 5_000;
    const ROUNDS: u32 = 20;
    let _dog = watchdog("make room then wait", Duration::from_secs(90));
    for episode in 0..EPISODES {
        let capacity = [1usize, 2, 4][episode % 3];
        let mux = TypeMux::with_capacity(capacity);
        let mut numbers = mux.subscribe::<u32>();
        let (posted_tx, mut posted_rx) = tokio::sync::mpsc::unbounded_channel();
        let producer = {
            let mux = mux.clone();
            tokio::spawn(async move {
                for i in 0..ROUNDS {
                    assert_eq!(mux.post(i).await.unwrap(), 1);
                    if posted_tx.send(i).is_err() {
                        return; // the reader gave up
                    }
                }
            })
        };
        let mut posted = None;
        for i in 0..ROUNDS {
            assert_eq!(*numbers.recv().await.unwrap(), i);
            let want = (i + capacity as u32).min(ROUNDS - 1);
            while posted.is_none_or(|p| p < want) {
                let next = timeout(Duration::from_secs(10), posted_rx.recv()).await;
                let Ok(Some(p)) = next else {
                    panic!(
                        "episode {episode}, capacity {capacity}: the reader took event {i} \
                         and post {want} was never woken"
                    );
                };
                posted = Some(p);
            }
        }
        timeout(Duration::from_secs(10), producer)
            .await
            .unwrap()
            .unwrap();
    }
}

#[derive(Debug)]
struct Tick {
    producer: usize,
    seq: u32,
}

#[derive(Debug)]
struct Tock {
    producer: usize,
    seq: u32,
}

const PRODUCERS: usize = 3;
const PER_PRODUCER: u32 = 400;

/// Checks what one churning consumer saw from one producer. `before` and
/// `after` are that producer's completed-post counts read just before and just
/// after the consumer subscribed.
fn check_run(who: &str, producer: usize, seen: &[u32], before: u32, after: u32, stayed: bool) {
    for pair in seen.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "{who}: producer {producer}'s events duplicated, reordered or with a gap: {seen:?}"
        );
    }
    if let Some(&first) = seen.first() {
        assert!(
            first >= before,
            "{who} got producer {producer}'s event {first}, posted before it joined (at {before})"
        );
        assert!(
            first <= after + 1,
            "{who} missed producer {producer}'s events {}..{first} posted after it joined",
            after + 1
        );
    }
    if stayed {
        if after + 1 < PER_PRODUCER {
            assert!(
                !seen.is_empty(),
                "{who} saw nothing from producer {producer}"
            );
        }
        if let Some(&last) = seen.last() {
            assert_eq!(
                last,
                PER_PRODUCER - 1,
                "{who} lost producer {producer}'s last events"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churning_consumers_see_each_event_once_in_order_from_when_they_joined() {
    const EARLY: usize = 4;
    const CHURN: usize = 30;
    let _dog = watchdog("mux stress", Duration::from_secs(90));
    let mux = TypeMux::with_capacity(8);
    let progress: Arc<Vec<AtomicU32>> =
        Arc::new((0..PRODUCERS).map(|_| AtomicU32::new(0)).collect());

    // Present before the first post: must see everything.
    let early: Vec<_> = (0..EARLY)
        .map(|i| {
            let mut ticks = mux.subscribe::<Tick>();
            tokio::spawn(async move {
                let mut seen = vec![Vec::new(); PRODUCERS];
                while let Some(tick) = ticks.recv().await {
                    seen[tick.producer].push(tick.seq);
                    if i % 2 == 0 && tick.seq % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                seen
            })
        })
        .collect();
    let many = {
        let mut both = mux.subscribe_many().to::<Tick>().to::<Tock>().build();
        tokio::spawn(async move {
            let mut seen = vec![Vec::new(); PRODUCERS];
            while let Some(event) = both.recv().await {
                if let Some(tick) = event.downcast::<Tick>() {
                    seen[tick.producer].push((true, tick.seq));
                } else {
                    let tock = event.downcast::<Tock>().expect("only Tick and Tock");
                    seen[tock.producer].push((false, tock.seq));
                }
            }
            seen
        })
    };

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let mux = mux.clone();
            let progress = Arc::clone(&progress);
            tokio::spawn(async move {
                for seq in 0..PER_PRODUCER {
                    let ticked = mux.post(Tick { producer, seq }).await.unwrap();
                    assert!(ticked > EARLY, "early subscribers and the many-subscriber");
                    progress[producer].store(seq + 1, Ordering::SeqCst);
                    let tocked = mux.post(Tock { producer, seq }).await.unwrap();
                    assert_eq!(tocked, 1, "only the many-subscriber wants Tock");
                }
            })
        })
        .collect();

    let mut churners = Vec::new();
    for c in 0..CHURN {
        // Spread the joins over the whole run.
        let gate = c as u32 * PER_PRODUCER / CHURN as u32;
        timeout(Duration::from_secs(30), async {
            while progress[c % PRODUCERS].load(Ordering::SeqCst) < gate {
                sleep(Duration::from_micros(50)).await;
            }
        })
        .await
        .expect("producers stalled");

        let before: Vec<u32> = progress.iter().map(|p| p.load(Ordering::SeqCst)).collect();
        let mut ticks = mux.subscribe::<Tick>();
        let after: Vec<u32> = progress.iter().map(|p| p.load(Ordering::SeqCst)).collect();
        let stays = c % 3 == 0;
        let leave_after = 1 + (c * 13) % 60;
        let task = tokio::spawn(async move {
            let mut seen = vec![Vec::new(); PRODUCERS];
            let mut count = 0;
            while let Some(tick) = ticks.recv().await {
                seen[tick.producer].push(tick.seq);
                count += 1;
                if !stays && count >= leave_after {
                    break; // leave: dropping the stream must not stall the producers
                }
            }
            seen
        });
        churners.push((c, before, after, stays, task));
    }

    timeout(Duration::from_secs(30), async {
        for producer in producers {
            producer.await.unwrap();
        }
    })
    .await
    .expect("producers did not finish: a consumer that left may still block them");
    within("stop", mux.stop()).await;

    let all: Vec<u32> = (0..PER_PRODUCER).collect();
    for consumer in early {
        let seen = within("early consumer", consumer).await.unwrap();
        for (producer, seqs) in seen.iter().enumerate() {
            assert_eq!(seqs, &all, "early consumer, producer {producer}");
        }
    }
    let seen = within("many consumer", many).await.unwrap();
    for (producer, events) in seen.iter().enumerate() {
        let want: Vec<(bool, u32)> = all.iter().flat_map(|&s| [(true, s), (false, s)]).collect();
        assert_eq!(
            events, &want,
            "many-subscriber, producer {producer}: order across types"
        );
    }
    for (c, before, after, stays, task) in churners {
        let seen = within("churning consumer", task).await.unwrap();
        let who = format!("consumer {c} ({})", if stays { "stayed" } else { "left" });
        for producer in 0..PRODUCERS {
            check_run(
                &who,
                producer,
                &seen[producer],
                before[producer],
                after[producer],
                stays,
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_ends_streams_after_what_was_posted() {
    let mux = TypeMux::new();
    let mut stream = mux.subscribe::<u32>();
    let mut lossy = mux.subscribe_lossy::<u32>(4);
    mux.post(1u32).await.unwrap();
    drop(mux);
    assert_eq!(*within("buffered", stream.next()).await.unwrap(), 1);
    assert!(within("end", stream.next()).await.is_none());
    assert_eq!(*within("lossy", lossy.next()).await.unwrap().unwrap(), 1);
    assert!(within("lossy end", lossy.next()).await.is_none());
}
