//! The JSON control API over plain HTTP/1.1.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, WAIT, config, http, start, two_ready_shards};
use serde_json::json;

#[tokio::test]
async fn dispatch_fault_reshard_log_and_stats_over_http() {
    let (sim, mut a, mut b) = two_ready_shards().await;

    // Dispatch by guild (string snowflake) and by shard.
    let g = sim.guilds_for_shard(1, 2)[0];
    let (status, body) = http(&sim, "POST", "/sim/dispatch", None, Some(&json!({
        "event": "MESSAGE_CREATE", "guild_id": g.to_string(), "data": { "guild_id": g.to_string(), "content": "via http" }
    }))).await;
    assert_eq!((status, body["sessions"].as_u64()), (200, Some(1)));
    assert_eq!(
        b.dispatch("MESSAGE_CREATE").await["d"]["content"],
        "via http"
    );
    let (_, body) = http(
        &sim,
        "POST",
        "/sim/dispatch",
        None,
        Some(&json!({
            "t": "TYPING_START", "shard": 0, "d": { "channel_id": "1", "user_id": "2" }
        })),
    )
    .await;
    assert_eq!(body["sessions"], 0, "no DIRECT_MESSAGE_TYPING intent");
    let (status, _) = http(
        &sim,
        "POST",
        "/sim/dispatch",
        None,
        Some(&json!({ "event": "X" })),
    )
    .await;
    assert_eq!(status, 400);

    // Faults.
    let (status, body) = http(
        &sim,
        "POST",
        "/sim/fault",
        None,
        Some(&json!({ "shard": 0, "kind": "invalid_session", "resumable": true })),
    )
    .await;
    assert_eq!((status, body["connections"].as_u64()), (200, Some(1)));
    assert_eq!(a.op(9).await["d"], true);
    let (_, body) = http(
        &sim,
        "POST",
        "/sim/fault",
        None,
        Some(&json!({ "kind": "close", "code": 4000 })),
    )
    .await;
    assert_eq!(body["connections"], 2);
    assert_eq!(a.close_code().await.0, Some(4000));
    assert_eq!(b.close_code().await.0, Some(4000));
    let (status, _) = http(
        &sim,
        "POST",
        "/sim/fault",
        None,
        Some(&json!({ "kind": "explode" })),
    )
    .await;
    assert_eq!(status, 400);

    // Reshard.
    let (status, _) = http(
        &sim,
        "POST",
        "/sim/reshard",
        None,
        Some(&json!({ "shards": 6 })),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = http(
        &sim,
        "GET",
        "/api/v10/gateway/bot",
        Some(&format!("Bot {}", sim.token())),
        None,
    )
    .await;
    assert_eq!(body["shards"], 6);

    // Log and stats.
    sim.wait_for_log(WAIT, |l| l.connections.iter().all(|c| c.closed.is_some()))
        .await
        .unwrap();
    let (status, log) = http(&sim, "GET", "/sim/log", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(log["connections"].as_array().unwrap().len(), 2);
    assert_eq!(log["identifies"][1]["shard"]["id"], 1);
    assert_eq!(log["identifies"][0]["outcome"]["result"], "ready");
    assert_eq!(log["connections"][0]["closed"]["code"], 4000);
    let (status, stats) = http(&sim, "GET", "/sim/stats", None, None).await;
    assert_eq!(status, 200);
    let shard1 = &stats["shards"][1];
    assert_eq!(shard1["shard"]["id"], 1);
    let sent = &shard1["sessions"][0]["connections"][0];
    // READY, the shard's GUILD_CREATEs, and the message.
    let expected = 1 + sim.guilds_for_shard(1, 2).len() as u64 + 1;
    assert_eq!(sent["dispatches"], expected);
    assert_eq!(sent["seqs"], json!([{ "first": 1, "last": expected }]));
    sim.shutdown().await;
}

#[tokio::test]
async fn traffic_can_be_started_over_http() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    c.ready(&sim, [0, 1]).await;
    let (status, _) = http(
        &sim,
        "POST",
        "/sim/traffic",
        None,
        Some(&json!({ "rate": 200.0 })),
    )
    .await;
    assert_eq!(status, 200);
    let m = c.dispatch("MESSAGE_CREATE").await;
    assert!(m["d"]["author"]["id"].is_string());
    http(
        &sim,
        "POST",
        "/sim/traffic",
        None,
        Some(&json!({ "rate": 0 })),
    )
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn get_gateway_needs_no_auth() {
    let sim = start(config()).await;
    let (status, body) = http(&sim, "GET", "/api/v10/gateway", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["url"], sim.gateway_url());
    sim.shutdown().await;
}

#[tokio::test]
async fn bodies_need_no_content_type_like_plain_curl() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let sim = start(config()).await;
    let body = r#"{"shards":3}"#;
    let mut s = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let req = format!(
        "POST /sim/reshard HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let (_, body) = http(
        &sim,
        "GET",
        "/api/v10/gateway/bot",
        Some(&format!("Bot {}", sim.token())),
        None,
    )
    .await;
    assert_eq!(body["shards"], 3);
    sim.shutdown().await;
}
