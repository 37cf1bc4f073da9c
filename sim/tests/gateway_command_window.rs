//! `ConnectionLog::max_in_window`: the peak of client payloads within any
//! sliding command window, for tests that check a client's outgoing limit.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, WAIT, config, start};
use serde_json::json;
use shardbus_sim::{ConnectionId, Sim, SimConfig};

async fn heartbeat(c: &mut Client) {
    c.send(json!({ "op": 1, "d": null })).await;
    c.op(11).await;
}

async fn peak(sim: &Sim, id: ConnectionId, want: u32) -> u32 {
    let log = sim
        .wait_for_log(WAIT, |l| {
            l.connection(id).is_some_and(|c| c.max_in_window >= want)
        })
        .await
        .unwrap();
    log.connection(id).unwrap().max_in_window
}

#[tokio::test]
async fn every_payload_in_the_window_counts() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    c.ready(&sim, [0, 1]).await;
    for _ in 0..5 {
        heartbeat(&mut c).await;
    }
    // Identify and five heartbeats.
    assert_eq!(peak(&sim, ConnectionId(1), 6).await, 6);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_window_slides() {
    let window = Duration::from_secs(2);
    let sim = start(SimConfig {
        command_window: window,
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    for _ in 0..3 {
        heartbeat(&mut c).await;
    }
    assert_eq!(peak(&sim, ConnectionId(1), 3).await, 3);
    // Everything so far has left the window by the time this one is read.
    tokio::time::sleep(window + Duration::from_millis(200)).await;
    heartbeat(&mut c).await;
    heartbeat(&mut c).await;
    let log = sim
        .wait_for_log(WAIT, |l| {
            l.connection(ConnectionId(1))
                .is_some_and(|c| c.events.len() == 5)
        })
        .await
        .unwrap();
    assert_eq!(log.connection(ConnectionId(1)).unwrap().max_in_window, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_rate_limited_connection_shows_one_over_the_limit() {
    let sim = start(SimConfig {
        command_limit: 4,
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    for _ in 0..5 {
        c.send(json!({ "op": 1, "d": null })).await;
    }
    assert_eq!(c.close_code().await.0, Some(4008));
    assert_eq!(peak(&sim, ConnectionId(1), 5).await, 5);
    sim.shutdown().await;
}
