//! Integration tests for `Feed`: delivery counts, lossless backpressure, and
//! how unsubscribing or dropping a receiver releases a waiting `send`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use shardbus::Feed;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

use common::{next_err, still_pending, watchdog, within};

fn spawn_send(feed: &Feed<u32>, value: u32) -> JoinHandle<usize> {
    let feed = feed.clone();
    tokio::spawn(async move { feed.send(value).await })
}

#[tokio::test(start_paused = true)]
async fn zero_value_is_ready() {
    let feed: Feed<u32> = Feed::default();
    assert_eq!(feed.len(), 0);
    assert!(feed.is_empty());
    assert_eq!(within("send without subscribers", feed.send(1)).await, 0);

    let (tx, mut rx) = mpsc::channel(4);
    let _sub = feed.subscribe(tx);
    assert_eq!(feed.len(), 1);
    assert!(!feed.is_empty());
    assert_eq!(within("send", feed.send(2)).await, 1);
    assert_eq!(rx.recv().await, Some(2));

    let fresh = Feed::<u32>::new();
    assert!(fresh.is_empty());
    assert_eq!(within("send on new()", fresh.send(3)).await, 0);
}

#[tokio::test(start_paused = true)]
async fn send_returns_subscriber_count_at_start() {
    const N: usize = 50;
    let feed = Feed::<u32>::new();
    let mut readers = Vec::new();
    for _ in 0..N {
        let (tx, mut rx) = mpsc::channel(1);
        let mut sub = feed.subscribe(tx);
        readers.push(tokio::spawn(async move {
            let got = rx.recv().await;
            sub.unsubscribe();
            let err = next_err(&mut sub).await;
            (got, err.is_none())
        }));
    }
    assert_eq!(feed.len(), N);

    assert_eq!(within("first send", feed.send(1)).await, N);
    for reader in readers {
        let (got, err_is_none) = within("reader", reader).await.unwrap();
        assert_eq!(got, Some(1));
        assert!(err_is_none, "err() after unsubscribe must be None");
    }
    assert_eq!(feed.len(), 0);
    assert_eq!(
        within("second send", feed.send(2)).await,
        0,
        "everyone unsubscribed, so nobody is counted"
    );
}

#[tokio::test(start_paused = true)]
async fn send_waits_while_a_subscriber_is_full() {
    let feed = Feed::<u32>::new();
    let (tx, mut rx) = mpsc::channel(1);
    let _sub = feed.subscribe(tx);
    assert_eq!(within("send into empty buffer", feed.send(1)).await, 1);

    let send = spawn_send(&feed, 2);
    assert!(
        still_pending(&send).await,
        "send must wait for a full subscriber instead of dropping the value"
    );

    assert_eq!(rx.recv().await, Some(1));
    assert_eq!(
        within("send after reader made room", send).await.unwrap(),
        1
    );
    assert_eq!(
        rx.recv().await,
        Some(2),
        "the waited-for value is delivered, not lost"
    );
}

#[tokio::test(start_paused = true)]
async fn subscriber_added_during_a_send_does_not_receive_it() {
    let feed = Feed::<u32>::new();
    let (tx_a, mut rx_a) = mpsc::channel(1);
    let _sub_a = feed.subscribe(tx_a);
    assert_eq!(within("fill a", feed.send(0)).await, 1);

    let send = spawn_send(&feed, 1);
    assert!(still_pending(&send).await);

    let (tx_b, mut rx_b) = mpsc::channel(8);
    let _sub_b = feed.subscribe(tx_b);
    assert_eq!(feed.len(), 2);

    assert_eq!(rx_a.recv().await, Some(0));
    assert_eq!(
        within("send", send).await.unwrap(),
        1,
        "only the subscriber present when the send started is counted"
    );
    assert_eq!(rx_a.recv().await, Some(1));
    assert!(
        matches!(rx_b.try_recv(), Err(mpsc::error::TryRecvError::Empty)),
        "a subscriber that joined mid-send must not get that value"
    );

    assert_eq!(within("next send", feed.send(2)).await, 2);
    assert_eq!(rx_b.recv().await, Some(2));
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_releases_blocked_send() {
    let feed = Feed::<u32>::new();
    let (tx_a, mut rx_a) = mpsc::channel(1);
    let sub_a = feed.subscribe(tx_a);
    let (tx_b, mut rx_b) = mpsc::channel(8);
    let _sub_b = feed.subscribe(tx_b);
    assert_eq!(within("fill a", feed.send(0)).await, 2);

    let send = spawn_send(&feed, 1);
    assert!(
        still_pending(&send).await,
        "a is full, the send must wait on it"
    );

    sub_a.unsubscribe();
    assert_eq!(
        within("send released by unsubscribe", send).await.unwrap(),
        1,
        "the unsubscribed subscriber is not counted"
    );
    assert_eq!(feed.len(), 1);
    assert_eq!(rx_b.recv().await, Some(0));
    assert_eq!(rx_b.recv().await, Some(1));
    assert_eq!(rx_a.recv().await, Some(0));
    assert!(
        rx_a.try_recv().is_err(),
        "the value must not reach a subscriber after it unsubscribed"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_receiver_releases_blocked_send() {
    let feed = Feed::<u32>::new();
    let (tx_a, rx_a) = mpsc::channel(1);
    let _sub_a = feed.subscribe(tx_a);
    let (tx_b, mut rx_b) = mpsc::channel(8);
    let _sub_b = feed.subscribe(tx_b);
    assert_eq!(within("fill a", feed.send(0)).await, 2);

    let send = spawn_send(&feed, 1);
    assert!(
        still_pending(&send).await,
        "a is full, the send must wait on it"
    );

    drop(rx_a);
    assert_eq!(
        within("send released by dropped receiver", send)
            .await
            .unwrap(),
        1,
        "a subscriber whose receiver is gone is not counted"
    );
    assert_eq!(rx_b.recv().await, Some(0));
    assert_eq!(rx_b.recv().await, Some(1));
    assert_eq!(
        within("send after drop", feed.send(2)).await,
        1,
        "a closed receiver is never counted as delivered"
    );
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_inside_receive_loop_does_not_deadlock() {
    let feed = Feed::<u32>::new();
    let (tx, mut rx) = mpsc::channel(1);
    let sub = feed.subscribe(tx);
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(v) = rx.recv().await {
            got.push(v);
            if v == 3 {
                // Let the sender fill our buffer and block on us first.
                sleep(Duration::from_millis(10)).await;
                sub.unsubscribe();
                break;
            }
        }
        (got, sub.is_unsubscribed())
    });

    let mut counts = Vec::new();
    for v in 1..=10 {
        counts.push(within("send while reader unsubscribes", feed.send(v)).await);
    }
    let (got, unsubscribed) = within("reader", reader).await.unwrap();
    assert_eq!(got, vec![1, 2, 3]);
    assert!(unsubscribed);
    // 4 went into the freed slot before the unsubscribe; 5 was waiting and was released.
    assert_eq!(counts, vec![1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(feed.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn unsubscribing_an_already_served_subscriber_keeps_it_counted() {
    let feed = Feed::<u32>::new();
    let (tx_b, mut rx_b) = mpsc::channel(1);
    let _sub_b = feed.subscribe(tx_b);
    assert_eq!(within("fill b", feed.send(0)).await, 1);
    let (tx_a, mut rx_a) = mpsc::channel(1);
    let sub_a = feed.subscribe(tx_a);

    let send = spawn_send(&feed, 1);
    let reader_a = tokio::spawn(async move {
        let got = rx_a.recv().await;
        sub_a.unsubscribe();
        got
    });
    assert!(
        still_pending(&send).await,
        "b is full, the send must wait on it"
    );

    assert_eq!(rx_b.recv().await, Some(0));
    assert_eq!(within("reader a", reader_a).await.unwrap(), Some(1));
    assert_eq!(
        within("send", send).await.unwrap(),
        2,
        "a received the value before unsubscribing, so it counts"
    );
    assert_eq!(rx_b.recv().await, Some(1));
    assert_eq!(within("send after a left", feed.send(2)).await, 1);
}

#[tokio::test(start_paused = true)]
async fn same_channel_subscribed_twice_receives_twice() {
    let feed = Feed::<u32>::new();
    let (tx, mut rx) = mpsc::channel(8);
    let sub1 = feed.subscribe(tx.clone());
    let sub2 = feed.subscribe(tx.clone());
    let _sub3 = feed.subscribe(tx);
    assert_eq!(feed.len(), 3);

    let expect = [(1, 3), (2, 2), (3, 1)];
    for (value, copies) in expect {
        assert_eq!(within("send", feed.send(value)).await, copies);
        for _ in 0..copies {
            assert_eq!(rx.recv().await, Some(value));
        }
        assert!(rx.try_recv().is_err(), "exactly {copies} copies of {value}");
        match value {
            1 => sub1.unsubscribe(),
            2 => sub2.unsubscribe(),
            _ => {}
        }
    }
    assert_eq!(feed.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_from_many_tasks_are_all_delivered() {
    const SENDERS: usize = 8;
    const PER_SENDER: u32 = 250;
    const SUBSCRIBERS: usize = 3;
    let _dog = watchdog("concurrent_sends", Duration::from_secs(60));

    let feed = Feed::<(usize, u32)>::new();
    let mut subs = Vec::new();
    let mut readers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let (tx, mut rx) = mpsc::channel(4);
        subs.push(feed.subscribe(tx));
        readers.push(tokio::spawn(async move {
            let mut next = [0u32; SENDERS];
            for _ in 0..SENDERS * PER_SENDER as usize {
                let (sender, seq) = rx.recv().await.unwrap();
                assert_eq!(
                    seq, next[sender],
                    "sender {sender}'s values out of order or lost"
                );
                next[sender] += 1;
            }
            (next, rx.try_recv().is_err())
        }));
    }

    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let feed = feed.clone();
            tokio::spawn(async move {
                for seq in 0..PER_SENDER {
                    assert_eq!(feed.send((sender, seq)).await, SUBSCRIBERS);
                }
            })
        })
        .collect();

    timeout(Duration::from_secs(30), async {
        for sender in senders {
            sender.await.unwrap();
        }
        for reader in readers {
            let (next, nothing_extra) = reader.await.unwrap();
            assert_eq!(next, [PER_SENDER; SENDERS]);
            assert!(nothing_extra, "no value may be delivered twice");
        }
    })
    .await
    .expect("concurrent sends did not finish");
}

#[tokio::test(start_paused = true)]
async fn subscribing_while_sends_are_blocked_does_not_deadlock() {
    const SENDS: usize = 100;
    let feed = Feed::<u32>::new();
    let (tx_a, mut rx_a) = mpsc::channel(1);
    let _sub_a = feed.subscribe(tx_a);
    let sends: Vec<_> = (0..SENDS).map(|_| spawn_send(&feed, 99)).collect();
    sleep(Duration::from_millis(10)).await; // every send has started and is queued on a

    let (tx_b, mut rx_b) = mpsc::channel(1);
    let _sub_b = feed.subscribe(tx_b);
    for _ in 0..SENDS {
        assert_eq!(within("drain a", rx_a.recv()).await, Some(99));
    }
    for send in sends {
        assert_eq!(
            within("blocked send", send).await.unwrap(),
            1,
            "b joined after these sends started"
        );
    }
    assert!(
        rx_b.try_recv().is_err(),
        "b must not get values sent before it joined"
    );
    assert_eq!(within("send to both", feed.send(7)).await, 2);
}

#[tokio::test(start_paused = true)]
async fn unsubscribing_many_while_sends_are_blocked_releases_them() {
    const SENDS: usize = 50;
    const OTHERS: usize = 200;
    let feed = Feed::<u32>::new();
    let (tx, _rx) = mpsc::channel(1);
    let blocker = feed.subscribe(tx);
    assert_eq!(within("fill blocker", feed.send(0)).await, 1);
    let sends: Vec<_> = (0..SENDS).map(|_| spawn_send(&feed, 99)).collect();
    sleep(Duration::from_millis(10)).await;

    let mut receivers = Vec::new();
    let others: Vec<_> = (0..OTHERS)
        .map(|_| {
            let (tx, rx) = mpsc::channel(SENDS);
            receivers.push(rx);
            feed.subscribe(tx)
        })
        .collect();
    assert_eq!(feed.len(), OTHERS + 1);
    for sub in &others {
        sub.unsubscribe();
    }
    assert_eq!(feed.len(), 1);
    assert!(sends.iter().all(|send| !send.is_finished()));

    blocker.unsubscribe();
    for send in sends {
        assert_eq!(within("released send", send).await.unwrap(), 0);
    }
    assert!(receivers.iter_mut().all(|rx| rx.try_recv().is_err()));
    assert!(feed.is_empty());
}

#[tokio::test(start_paused = true)]
async fn len_counts_live_subscribers() {
    let feed = Feed::<u32>::new();
    let (tx, _rx) = mpsc::channel(8);
    let sub1 = feed.subscribe(tx.clone());
    let sub2 = feed.subscribe(tx.clone());
    let sub3 = feed.subscribe(tx);
    assert_eq!(feed.len(), 3);

    sub1.unsubscribe();
    assert_eq!(feed.len(), 2);
    assert!(sub1.is_unsubscribed());
    sub1.unsubscribe();
    assert_eq!(
        feed.len(),
        2,
        "a second unsubscribe must not remove anyone else"
    );

    drop(sub2);
    assert_eq!(feed.len(), 1, "dropping a subscription unsubscribes it");
    assert!(!sub3.is_unsubscribed());
    assert_eq!(within("send", feed.send(1)).await, 1);

    drop(sub3);
    assert!(feed.is_empty());
    assert_eq!(within("send", feed.send(2)).await, 0);
}

#[tokio::test(start_paused = true)]
async fn feed_subscription_err_is_pending_until_unsubscribe() {
    let feed = Feed::<u32>::new();
    let (tx, _rx) = mpsc::channel(1);
    let mut sub = feed.subscribe(tx);
    assert!(
        timeout(Duration::from_secs(5), next_err(&mut sub))
            .await
            .is_err(),
        "a live feed subscription has nothing to report"
    );

    sub.unsubscribe();
    assert!(
        within("err after unsubscribe", next_err(&mut sub))
            .await
            .is_none()
    );
    assert!(within("err again", next_err(&mut sub)).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn clones_share_subscribers() {
    let feed = Feed::<u32>::new();
    let other = feed.clone();
    let (tx, mut rx) = mpsc::channel(4);
    let _sub = other.subscribe(tx);
    assert_eq!(feed.len(), 1);
    assert_eq!(within("send via original", feed.send(5)).await, 1);
    assert_eq!(rx.recv().await, Some(5));
}

#[tokio::test(start_paused = true)]
async fn a_full_subscriber_does_not_hold_the_value_back_from_others() {
    let feed = Feed::<u32>::new();
    let (full_tx, mut full_rx) = mpsc::channel(1);
    let (free_tx, mut free_rx) = mpsc::channel(4);
    // The full subscriber comes first in subscription order.
    let _full = feed.subscribe(full_tx);
    let _free = feed.subscribe(free_tx);
    assert_eq!(within("fill", feed.send(0)).await, 2);
    assert_eq!(free_rx.recv().await, Some(0));

    let send = spawn_send(&feed, 1);
    assert!(still_pending(&send).await, "waits for the full subscriber");
    assert_eq!(
        free_rx.try_recv(),
        Ok(1),
        "the free subscriber already has it"
    );

    assert_eq!(full_rx.recv().await, Some(0));
    assert_eq!(within("send", send).await.unwrap(), 2);
    assert_eq!(full_rx.recv().await, Some(1));
}
