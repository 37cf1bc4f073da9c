//! Op 8 Request Guild Members: one member chunk, and the 2025 rate limit on
//! requesting all members of a guild (`RATE_LIMITED`).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, config, start};
use serde_json::{Value, json};
use shardbus_sim::{GuildId, SimConfig};

fn all_members(guild: GuildId, nonce: Option<&str>) -> Value {
    let mut d = json!({ "guild_id": guild.to_string(), "query": "", "limit": 0 });
    if let Some(n) = nonce {
        d["nonce"] = json!(n);
    }
    json!({ "op": 8, "d": d })
}

/// The next RATE_LIMITED or GUILD_MEMBERS_CHUNK dispatch.
async fn answer(c: &mut Client) -> Value {
    loop {
        let p = c.payload().await;
        if p["op"] == 0 && (p["t"] == "RATE_LIMITED" || p["t"] == "GUILD_MEMBERS_CHUNK") {
            return p;
        }
    }
}

#[tokio::test]
async fn a_second_all_members_request_within_the_window_is_rate_limited() {
    let sim = start(config()).await;
    let g = sim.guild_ids()[0];
    let mut c = Client::gateway(&sim, false).await;
    c.ready(&sim, [0, 1]).await;
    c.send(all_members(g, Some("first"))).await;
    let chunk = answer(&mut c).await;
    assert_eq!(chunk["t"], "GUILD_MEMBERS_CHUNK", "{chunk}");
    assert_eq!(chunk["d"]["nonce"], "first");

    c.send(all_members(g, Some("second"))).await;
    let limited = answer(&mut c).await;
    assert_eq!(limited["t"], "RATE_LIMITED", "{limited}");
    assert!(
        limited["s"].is_u64(),
        "RATE_LIMITED is a dispatch with a seq"
    );
    let d = &limited["d"];
    assert_eq!(d["opcode"], 8);
    let retry = d["retry_after"].as_f64().unwrap();
    assert!(retry > 0.0 && retry <= 30.0, "{retry}");
    assert_eq!(d["meta"]["guild_id"], g.to_string());
    assert_eq!(d["meta"]["nonce"], "second");

    // Without a nonce, meta has none; another guild is not limited.
    c.send(all_members(g, None)).await;
    let limited = answer(&mut c).await;
    assert_eq!(limited["t"], "RATE_LIMITED");
    assert!(limited["d"]["meta"].get("nonce").is_none(), "{limited}");
    c.send(all_members(sim.guild_ids()[1], None)).await;
    assert_eq!(answer(&mut c).await["t"], "GUILD_MEMBERS_CHUNK");
    sim.shutdown().await;
}

#[tokio::test]
async fn other_member_requests_are_not_limited() {
    let sim = start(config()).await;
    let g = sim.guild_ids()[0];
    let mut c = Client::gateway(&sim, false).await;
    c.ready(&sim, [0, 1]).await;
    for _ in 0..3 {
        c.send(json!({ "op": 8, "d": { "guild_id": g.to_string(), "query": "a", "limit": 5 } }))
            .await;
        assert_eq!(answer(&mut c).await["t"], "GUILD_MEMBERS_CHUNK");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn the_window_is_configurable_and_ends() {
    let sim = start(SimConfig {
        member_request_window: Duration::from_millis(200),
        ..config()
    })
    .await;
    let g = sim.guild_ids()[0];
    let mut c = Client::gateway(&sim, false).await;
    c.ready(&sim, [0, 1]).await;
    c.send(all_members(g, None)).await;
    assert_eq!(answer(&mut c).await["t"], "GUILD_MEMBERS_CHUNK");
    c.send(all_members(g, None)).await;
    let limited = answer(&mut c).await;
    assert_eq!(limited["t"], "RATE_LIMITED");
    let retry = limited["d"]["retry_after"].as_f64().unwrap();
    assert!(retry <= 0.2, "{retry}");
    // Waiting out retry_after is enough.
    tokio::time::sleep(Duration::from_secs_f64(retry)).await;
    c.send(all_members(g, None)).await;
    assert_eq!(answer(&mut c).await["t"], "GUILD_MEMBERS_CHUNK");
    sim.shutdown().await;
}
