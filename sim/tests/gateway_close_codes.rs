//! Every close code the sim sends for a client mistake.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, INTENTS, config, identify_payload, start};
use serde_json::{Value, json};
use shardbus_sim::{Closer, Sim, SimConfig};

/// Connect, read Hello, send `payloads`, and return the close code.
async fn close_after(sim: &Sim, payloads: Vec<Value>) -> u16 {
    let mut c = Client::gateway(sim, false).await;
    c.hello().await;
    for p in payloads {
        c.send(p).await;
    }
    c.close_code().await.0.unwrap()
}

fn identify(sim: &Sim, shard: [u32; 2]) -> Value {
    identify_payload(sim.token(), shard, INTENTS)
}

#[tokio::test]
async fn wrong_api_version_is_4012() {
    let sim = start(config()).await;
    for q in ["?v=9&encoding=json", "?encoding=json", ""] {
        let mut c = Client::connect(&format!("{}/{q}", sim.gateway_url()), false).await;
        assert_eq!(c.close_code().await.0, Some(4012), "query {q:?}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn etf_encoding_is_refused_clearly() {
    let sim = start(config()).await;
    let mut c = Client::connect(&format!("{}/?v=10&encoding=etf", sim.gateway_url()), false).await;
    let (code, reason) = c.close_code().await;
    assert_eq!(code, Some(1003));
    assert!(reason.contains("etf"), "{reason}");
    // An unknown compression is refused the same way.
    let mut c = Client::connect(
        &format!("{}/?v=10&encoding=json&compress=brotli", sim.gateway_url()),
        false,
    )
    .await;
    let (code, reason) = c.close_code().await;
    assert_eq!(code, Some(1003));
    assert!(reason.contains("compress=brotli"), "{reason}");
    let log = sim.log();
    assert_eq!(
        log.connections[1].compression,
        shardbus_sim::Compression::None
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_token_is_4004() {
    let sim = start(config()).await;
    let code = close_after(&sim, vec![identify_payload("wrong", [0, 1], INTENTS)]).await;
    assert_eq!(code, 4004);
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_shard_is_4010() {
    let sim = start(SimConfig {
        shards: 2,
        ..config()
    })
    .await;
    assert_eq!(close_after(&sim, vec![identify(&sim, [2, 2])]).await, 4010);
    assert_eq!(close_after(&sim, vec![identify(&sim, [0, 3])]).await, 4010);
    assert_eq!(close_after(&sim, vec![identify(&sim, [0, 0])]).await, 4010);
    sim.shutdown().await;
}

#[tokio::test]
async fn lenient_shard_totals_accept_any_valid_total() {
    let sim = start(SimConfig {
        shards: 2,
        strict_shard_total: false,
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    c.ready(&sim, [0, 5]).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn reshard_makes_old_totals_4011_and_gateway_bot_reports_the_new_count() {
    let sim = start(SimConfig {
        shards: 2,
        ..config()
    })
    .await;
    sim.reshard(4).unwrap();
    assert_eq!(close_after(&sim, vec![identify(&sim, [0, 2])]).await, 4011);
    let (_, body) = common::http(
        &sim,
        "GET",
        "/api/v10/gateway/bot",
        Some(&format!("Bot {}", sim.token())),
        None,
    )
    .await;
    assert_eq!(body["shards"], 4);
    let mut c = Client::gateway(&sim, false).await;
    c.ready(&sim, [3, 4]).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn undefined_intent_bits_are_4013() {
    let sim = start(config()).await;
    let code = close_after(&sim, vec![identify_payload(sim.token(), [0, 1], 1 << 18)]).await;
    assert_eq!(code, 4013);
    sim.shutdown().await;
}

#[tokio::test]
async fn privileged_intents_not_enabled_are_4014() {
    let sim = start(SimConfig {
        privileged_intents: 0,
        ..config()
    })
    .await;
    for intent in [1 << 1, 1 << 8, 1 << 15] {
        let code = close_after(
            &sim,
            vec![identify_payload(sim.token(), [0, 1], 1 | intent)],
        )
        .await;
        assert_eq!(code, 4014, "intent {intent}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn large_threshold_out_of_range_is_4001() {
    let sim = start(config()).await;
    for t in [49, 251] {
        let mut p = identify(&sim, [0, 1]);
        p["d"]["large_threshold"] = json!(t);
        assert_eq!(
            close_after(&sim, vec![p]).await,
            4001,
            "large_threshold {t}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn second_identify_is_4005() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    c.ready(&sim, [0, 1]).await;
    c.send(identify(&sim, [0, 1])).await;
    assert_eq!(c.close_code().await.0, Some(4005));
    sim.shutdown().await;
}

#[tokio::test]
async fn command_before_identify_is_4003() {
    let sim = start(config()).await;
    let p = json!({ "op": 3, "d": { "since": null, "activities": [], "status": "online", "afk": false } });
    assert_eq!(close_after(&sim, vec![p]).await, 4003);
    sim.shutdown().await;
}

#[tokio::test]
async fn heartbeat_with_an_invalid_d_is_4002() {
    let sim = start(config()).await;
    for d in [json!("abc"), json!(-1), json!({ "seq": 1 })] {
        assert_eq!(
            close_after(&sim, vec![json!({ "op": 1, "d": d })]).await,
            4002
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_opcode_is_4001() {
    let sim = start(config()).await;
    assert_eq!(
        close_after(&sim, vec![json!({ "op": 42, "d": null })]).await,
        4001
    );
    assert_eq!(
        close_after(&sim, vec![json!({ "op": 11, "d": null })]).await,
        4001
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_json_is_4002() {
    let sim = start(config()).await;
    for bad in ["{\"op\":1,", "[1,2]", "{\"d\":null}", "\u{0}"] {
        let mut c = Client::gateway(&sim, false).await;
        c.hello().await;
        c.send_text(bad.to_owned()).await;
        assert_eq!(c.close_code().await.0, Some(4002), "payload {bad:?}");
    }
    // Binary garbage (a client sending zlib, say) is a decode error too.
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    futures_util::SinkExt::send(
        &mut c.ws,
        tokio_tungstenite::tungstenite::Message::binary(vec![0x78, 0x9c, 0xff, 0, 0, 0xff, 0xff]),
    )
    .await
    .unwrap();
    assert_eq!(c.close_code().await.0, Some(4002));
    sim.shutdown().await;
}

#[tokio::test]
async fn payload_over_4096_bytes_is_4002() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    let big = json!({ "op": 1, "d": null, "pad": "x".repeat(4100) });
    c.send(big).await;
    assert_eq!(c.close_code().await.0, Some(4002));
    // Exactly 4096 is fine.
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    let base = json!({ "op": 1, "d": null, "pad": "" }).to_string().len();
    c.send(json!({ "op": 1, "d": null, "pad": "x".repeat(4096 - base) }))
        .await;
    assert_eq!(c.payload().await["op"], 11);
    sim.shutdown().await;
}

#[tokio::test]
async fn more_than_120_commands_a_minute_is_4008() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    for _ in 0..121 {
        c.send(json!({ "op": 1, "d": null })).await;
    }
    assert_eq!(c.close_code().await.0, Some(4008));
    let log = sim.log();
    let acks = log.connections[0].events.len();
    assert_eq!(acks, 121, "120 heartbeats and the rejected one are logged");
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_heartbeats_close_the_connection() {
    let sim = start(SimConfig {
        heartbeat_interval: Duration::from_millis(100),
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    let started = std::time::Instant::now();
    c.hello().await;
    let (code, reason) = c.close_code().await;
    assert_eq!(code, Some(4000));
    assert!(reason.contains("heartbeat"), "{reason}");
    assert!(
        started.elapsed() >= Duration::from_millis(140),
        "closed after {:?}",
        started.elapsed()
    );
    let log = sim.log();
    assert_eq!(
        log.connections[0].closed.as_ref().unwrap().by,
        Closer::Server
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn heartbeats_keep_the_connection_open() {
    let sim = start(SimConfig {
        heartbeat_interval: Duration::from_millis(100),
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(80)).await;
        c.send(json!({ "op": 1, "d": null })).await;
        assert_eq!(c.payload().await["op"], 11);
    }
    sim.shutdown().await;
}
