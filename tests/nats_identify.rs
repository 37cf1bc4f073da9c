//! The NATS identify queue across "hosts" (separate connections, separate
//! queues) on one private nats-server: one identify per bucket per window
//! whichever host sends it, a crashed holder's lease expiring, an unsent
//! permit freeing the bucket and its start, the shared budget, and two
//! managers on the sim with no window violated.
//!
//! Only lower bounds on gaps are asserted: a loaded machine makes gaps
//! longer, never shorter.
#![cfg(feature = "nats")]
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::gateway::{config, sim, test_config};
use common::nats::jetstream;
use shardbus::bridge::NatsIdentifyQueue;
use shardbus::gateway::IdentifyQueue;
use shardbus::model::{SessionStartLimit, ShardId};
use shardbus::shard::Manager;
use shardbus_sim::{NatsServer, SimConfig};
use tokio::time::{Instant, timeout};

const WINDOW: Duration = Duration::from_secs(1);

async fn queue(server: &NatsServer, max_concurrency: u32) -> NatsIdentifyQueue {
    NatsIdentifyQueue::open(&jetstream(server).await, "shardbus", max_concurrency)
        .await
        .unwrap()
        .window(WINDOW)
        .margin(Duration::from_millis(50))
        .pending_ttl(Duration::from_secs(1))
}

fn limit(remaining: u32) -> SessionStartLimit {
    serde_json::from_value(serde_json::json!({
        "total": 1000, "remaining": remaining, "reset_after": 3_600_000, "max_concurrency": 1
    }))
    .unwrap()
}

#[tokio::test]
async fn hosts_never_identify_one_bucket_twice_inside_a_window() {
    let server = NatsServer::start().unwrap();
    let hosts = [queue(&server, 2).await, queue(&server, 2).await];
    let sends = Arc::new(Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..8u32)
        .map(|shard| {
            let queue = hosts[(shard / 2 % 2) as usize].clone();
            let sends = sends.clone();
            tokio::spawn(async move {
                let permit = queue.acquire(ShardId(shard)).await;
                // Connecting and Hello.
                tokio::time::sleep(Duration::from_millis(fastrand::u64(0..20))).await;
                sends.lock().unwrap().push((shard % 2, Instant::now()));
                permit.sent();
            })
        })
        .collect();
    timeout(Duration::from_secs(60), futures::future::join_all(tasks))
        .await
        .unwrap();
    let sends = sends.lock().unwrap().clone();
    assert_eq!(sends.len(), 8);
    for bucket in 0..2 {
        let mut at: Vec<Instant> = sends
            .iter()
            .filter(|(b, _)| *b == bucket)
            .map(|(_, t)| *t)
            .collect();
        at.sort();
        for pair in at.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap >= WINDOW, "bucket {bucket}: {gap:?} between identifies");
        }
    }
}

#[tokio::test]
async fn a_crashed_holders_lease_expires_and_an_unsent_one_frees_at_once() {
    let server = NatsServer::start().unwrap();
    let (a, b) = (queue(&server, 1).await, queue(&server, 1).await);
    // Host A takes the lease and dies before sending: nothing releases it.
    let taken = Instant::now();
    std::mem::forget(a.acquire(ShardId(0)).await);
    let permit = timeout(Duration::from_secs(30), b.acquire(ShardId(1)))
        .await
        .expect("the crashed holder's lease expired");
    // Its TTL was the window plus the pending allowance (2 s).
    assert!(
        taken.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        taken.elapsed()
    );
    drop(permit);

    // A lease given up unsent is deleted at once, not left to expire:
    // with a minute's pending TTL, the next host gets the bucket long
    // before that (the bound is a quarter of it, for a loaded machine).
    const PENDING: Duration = Duration::from_secs(60);
    let (c, d) = (
        queue(&server, 1).await.pending_ttl(PENDING),
        queue(&server, 1).await.pending_ttl(PENDING),
    );
    let unsent = timeout(Duration::from_secs(20), c.acquire(ShardId(0)))
        .await
        .expect("the bucket was free");
    drop(unsent);
    let freed = Instant::now();
    let next = timeout(PENDING / 4, d.acquire(ShardId(1)))
        .await
        .expect("the unsent lease was deleted, not left to its 61 s TTL");
    assert!(freed.elapsed() < PENDING / 4);
    next.sent();
}

#[tokio::test]
async fn a_lease_taken_over_a_released_one_still_expires_when_its_holder_crashes() {
    let server = NatsServer::start().unwrap();
    let (a, b) = (queue(&server, 1).await, queue(&server, 1).await);
    // Taken and given up unsent: the key now holds a delete marker.
    drop(a.acquire(ShardId(0)).await);
    // Taken again over the marker (A's turn passes once the first is
    // deleted), and A dies before sending: nothing releases it.
    std::mem::forget(a.acquire(ShardId(0)).await);
    // Its TTL (the window plus the pending allowance, 2 s) frees it.
    timeout(Duration::from_secs(20), b.acquire(ShardId(1)))
        .await
        .expect("the crashed holder's second lease expired")
        .sent();
}

#[tokio::test]
async fn the_shared_budget_is_spent_by_every_host_and_refunded_when_unsent() {
    let server = NatsServer::start().unwrap();
    let a = queue(&server, 4)
        .await
        .with_budget(&limit(3))
        .await
        .unwrap();
    // A second host's reading is higher: the lower, shared count stays.
    let b = queue(&server, 4)
        .await
        .with_budget(&limit(50))
        .await
        .unwrap();
    assert_eq!(a.remaining().await.unwrap(), Some(3));
    a.acquire(ShardId(0)).await.sent();
    b.acquire(ShardId(1)).await.sent();
    assert_eq!(b.remaining().await.unwrap(), Some(1));
    // Taken, then given back when the identify is never sent.
    let unsent = a.acquire(ShardId(2)).await;
    assert_eq!(a.remaining().await.unwrap(), Some(0));
    drop(unsent);
    timeout(Duration::from_secs(10), async {
        while a.remaining().await.unwrap() != Some(1) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the unsent start was refunded");
    b.acquire(ShardId(3)).await.sent();
    // Spent: the next acquire waits for the reset, on either host. Shard 2's
    // bucket is free (its lease was given up unsent), so only the budget
    // holds it back (shard 0's bucket may still be in its window).
    assert!(
        timeout(Duration::from_millis(500), a.acquire(ShardId(2)))
            .await
            .is_err()
    );
    assert_eq!(a.remaining().await.unwrap(), Some(0));
}

#[tokio::test]
async fn a_start_taken_by_an_acquire_dropped_while_waiting_is_refunded() {
    let server = NatsServer::start().unwrap();
    let a = queue(&server, 1)
        .await
        .with_budget(&limit(3))
        .await
        .unwrap();
    let b = queue(&server, 1)
        .await
        .with_budget(&limit(3))
        .await
        .unwrap();
    // A holds the only bucket's lease.
    let held = a.acquire(ShardId(0)).await;
    assert_eq!(a.remaining().await.unwrap(), Some(2));
    // B takes a start, then waits for the lease; it is given up (a shard
    // closed while queued) before the lease is free.
    let waiting = tokio::spawn({
        let b = b.clone();
        async move { b.acquire(ShardId(1)).await }
    });
    timeout(Duration::from_secs(20), async {
        while b.remaining().await.unwrap() != Some(1) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("B took a start");
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    timeout(Duration::from_secs(20), async {
        while b.remaining().await.unwrap() != Some(2) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the start of the dropped acquire was refunded");
    held.sent();
}

#[tokio::test]
async fn two_managers_on_one_sim_never_violate_a_window() {
    let server = NatsServer::start().unwrap();
    let sim = sim(SimConfig {
        shards: 4,
        guilds: 8,
        max_concurrency: 1,
        // A quarter of the queue's, as in `test_config`: a loaded machine
        // delays identifies, never brings them closer, and still the sim
        // would see a violation if the queue let two through together.
        identify_window: WINDOW / 4,
        ..test_config()
    })
    .await;
    let mut managers = Vec::new();
    for range in [0..2, 2..4] {
        let queue: Arc<dyn IdentifyQueue> = Arc::new(queue(&server, 1).await);
        let identify = config(&sim).shard(0, 4).identify_queue(queue.clone());
        let manager = Manager::builder(identify)
            .range(range)
            .identify_queue(queue)
            .build();
        managers.push(manager);
    }
    let opened = futures::future::join_all(managers.iter().map(Manager::open)).await;
    assert!(opened.iter().all(Result::is_ok), "{opened:?}");
    let log = sim.log();
    assert_eq!(log.ready_identifies().count(), 4);
    assert!(
        log.bucket_violations.is_empty(),
        "{:?}",
        log.bucket_violations
    );
    drop(log);
    for manager in &managers {
        manager.close().await.unwrap();
    }
    sim.shutdown().await;
}
