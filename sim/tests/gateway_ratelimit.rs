//! Identify rate limits per max_concurrency bucket and the session start limit.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, INTENTS, config, http, start};
use shardbus_sim::{IdentifyOutcome, SessionStartLimit, SimConfig};

#[tokio::test]
async fn too_early_identify_in_a_bucket_gets_op_9_and_is_recorded() {
    let sim = start(SimConfig {
        shards: 4,
        max_concurrency: 2,
        identify_window: Duration::from_secs(30),
        ..config()
    })
    .await;
    // Shards 0 and 1 are different buckets: both fine at once.
    let mut a = Client::gateway(&sim, false).await;
    a.ready(&sim, [0, 4]).await;
    let mut b = Client::gateway(&sim, false).await;
    b.ready(&sim, [1, 4]).await;
    // Shard 2 is bucket 0 again, within the window.
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    c.identify(sim.token(), [2, 4], INTENTS).await;
    let p = c.payload().await;
    assert_eq!(p["op"], 9);
    assert_eq!(p["d"], false);

    let log = sim.log();
    assert_eq!(log.bucket_violations.len(), 1);
    let v = &log.bucket_violations[0];
    assert_eq!((v.shard.id, v.bucket), (2, 0));
    assert!(v.since_previous < Duration::from_secs(30));
    assert_eq!(log.identifies_in_bucket(0).count(), 2);
    assert_eq!(log.identifies_in_bucket(1).count(), 1);
    assert_eq!(log.identifies[2].outcome, IdentifyOutcome::RateLimited);
    assert_eq!(log.ready_identifies().count(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn identify_after_the_window_is_accepted() {
    let sim = start(SimConfig {
        shards: 2,
        identify_window: Duration::from_millis(100),
        ..config()
    })
    .await;
    let mut a = Client::gateway(&sim, false).await;
    a.ready(&sim, [0, 2]).await;
    tokio::time::sleep(Duration::from_millis(120)).await;
    let mut b = Client::gateway(&sim, false).await;
    b.ready(&sim, [1, 2]).await;
    let log = sim.log();
    assert!(log.bucket_violations.is_empty());
    let gap = log.identifies[1].at - log.identifies[0].at;
    assert!(gap >= Duration::from_millis(100), "{gap:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn exhausted_session_start_limit_terminates_sessions_and_resets_the_token() {
    let sim = start(SimConfig {
        session_start_limit: SessionStartLimit {
            total: 1000,
            remaining: 1,
            reset_after: Duration::from_secs(3600),
        },
        identify_window: Duration::from_millis(1),
        ..config()
    })
    .await;
    let mut a = Client::gateway(&sim, false).await;
    a.ready(&sim, [0, 1]).await;
    let (_, body) = http(
        &sim,
        "GET",
        "/api/v10/gateway/bot",
        Some(&format!("Bot {}", sim.token())),
        None,
    )
    .await;
    assert_eq!(body["session_start_limit"]["remaining"], 0);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut b = Client::gateway(&sim, false).await;
    b.hello().await;
    b.identify(sim.token(), [0, 1], INTENTS).await;
    assert_eq!(b.close_code().await.0, Some(4004));
    assert_eq!(a.close_code().await.0, Some(4004));
    let (status, _) = http(
        &sim,
        "GET",
        "/api/v10/gateway/bot",
        Some(&format!("Bot {}", sim.token())),
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        sim.log().identifies[1].outcome,
        IdentifyOutcome::SessionLimitExhausted
    );
    sim.shutdown().await;
}
