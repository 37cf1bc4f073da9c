//! The log keeps every connection's updates, however many open at once.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, WAIT, config, start};
use serde_json::json;
use shardbus_sim::ClientEventKind;

/// Connections opened at the same moment must all be found again when
/// their heartbeats and closes are logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_connections_keep_every_log_update() {
    const N: usize = 96;
    let sim = start(config()).await;
    let url = format!("{}/?v=10&encoding=json", sim.gateway_url());
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut c = Client::connect(&url, false).await;
                c.hello().await;
                c.send(json!({ "op": 1, "d": null })).await;
                assert_eq!(c.op(11).await["op"], 11);
                c.close(1000).await;
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let log = sim
        .wait_for_log(WAIT, |l| {
            l.connections.len() == N && l.connections.iter().all(|c| c.closed.is_some())
        })
        .await
        .unwrap_or_else(|_| {
            let log = sim.log();
            let lost = log
                .connections
                .iter()
                .filter(|c| c.closed.is_none())
                .count();
            panic!(
                "{lost} of {} connections lost their close",
                log.connections.len()
            )
        });
    for c in &log.connections {
        let heartbeats = c
            .events
            .iter()
            .filter(|e| matches!(e.kind, ClientEventKind::Heartbeat { .. }))
            .count();
        assert_eq!(heartbeats, 1, "connection {:?}: {:?}", c.id, c.events);
    }
    assert!(log.connections.windows(2).all(|w| w[0].id < w[1].id));
    sim.shutdown().await;
}
