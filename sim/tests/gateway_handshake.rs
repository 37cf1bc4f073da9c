//! Hello, Identify, READY, GUILD_CREATE by the shard formula, heartbeats,
//! zlib-stream and `/gateway/bot`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Client, INTENTS, WAIT, config, http, start, two_ready_shards};
use serde_json::json;
use shardbus_sim::{ClientEventKind, GuildId, IdentifyOutcome, SimConfig};

#[tokio::test]
async fn hello_carries_the_configured_interval() {
    let sim = start(SimConfig {
        heartbeat_interval: Duration::from_millis(1234),
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    let hello = c.payload().await;
    assert_eq!(hello["op"], 10);
    assert_eq!(hello["d"]["heartbeat_interval"], 1234);
    assert!(hello["s"].is_null() && hello["t"].is_null());
    sim.shutdown().await;
}

#[tokio::test]
async fn ready_lists_the_shards_guilds_as_unavailable_then_guild_creates_follow() {
    let sim = start(SimConfig {
        shards: 3,
        guilds: 20,
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    let ready = c.ready(&sim, [1, 3]).await;
    assert_eq!(ready["op"], 0);
    assert_eq!(ready["s"], 1);
    let d = &ready["d"];
    assert_eq!(d["v"], 10);
    assert_eq!(d["shard"], json!([1, 3]));
    assert!(d["user"]["id"].is_string());
    assert_eq!(d["user"]["bot"], true);
    assert!(d["application"]["id"].is_string());
    assert_eq!(d["resume_gateway_url"], sim.resume_gateway_url());
    assert!(!d["session_id"].as_str().unwrap().is_empty());

    let expected: Vec<GuildId> = sim
        .guild_ids()
        .into_iter()
        .filter(|g| (g.0 >> 22) % 3 == 1)
        .collect();
    assert_eq!(expected, sim.guilds_for_shard(1, 3));
    let stubs: Vec<u64> = d["guilds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            assert_eq!(g["unavailable"], true);
            g["id"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(stubs, expected.iter().map(|g| g.0).collect::<Vec<_>>());

    let mut seen = Vec::new();
    for (i, _) in expected.iter().enumerate() {
        let gc = c.payload().await;
        assert_eq!(gc["t"], "GUILD_CREATE");
        assert_eq!(gc["s"], 2 + i as u64);
        let g = &gc["d"];
        assert_eq!(g["unavailable"], false);
        assert!(!g["channels"].as_array().unwrap().is_empty());
        assert!(!g["members"].as_array().unwrap().is_empty());
        assert!(g["members"][0]["user"]["id"].is_string());
        seen.push(g["id"].as_str().unwrap().parse::<u64>().unwrap());
    }
    assert_eq!(seen, expected.iter().map(|g| g.0).collect::<Vec<_>>());
    sim.shutdown().await;
}

#[tokio::test]
async fn every_guild_goes_to_exactly_one_shard() {
    let sim = start(SimConfig {
        shards: 4,
        guilds: 30,
        max_concurrency: 4,
        ..config()
    })
    .await;
    let mut all = HashSet::new();
    for shard in 0..4 {
        let mut c = Client::gateway(&sim, false).await;
        let ready = c.ready(&sim, [shard, 4]).await;
        for g in ready["d"]["guilds"].as_array().unwrap() {
            let id: u64 = g["id"].as_str().unwrap().parse().unwrap();
            assert_eq!((id >> 22) % 4, u64::from(shard));
            assert!(all.insert(id), "guild {id} on two shards");
        }
    }
    assert_eq!(all.len(), 30);
    sim.shutdown().await;
}

#[tokio::test]
async fn heartbeat_is_acked_and_logged_with_its_seq() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    c.send(json!({ "op": 1, "d": null })).await;
    assert_eq!(c.payload().await["op"], 11);
    c.identify(sim.token(), [0, 1], INTENTS).await;
    c.dispatch("READY").await;
    c.send(json!({ "op": 1, "d": 1 })).await;
    c.op(11).await;
    let log = sim
        .wait_for_log(WAIT, |l| l.heartbeats_for_shard(0).len() == 2)
        .await
        .unwrap();
    assert_eq!(log.heartbeats_for_shard(0), vec![None, Some(1)]);
    let events = &log.connections[0].events;
    assert_eq!(events[0].kind, ClientEventKind::Heartbeat { seq: None });
    sim.shutdown().await;
}

#[tokio::test]
async fn server_requests_heartbeats_when_configured() {
    let sim = start(SimConfig {
        heartbeat_requests: Some(Duration::from_millis(50)),
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    let req = c.payload().await;
    assert_eq!(req["op"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn zlib_stream_round_trips_and_splits_large_payloads() {
    let sim = start(SimConfig {
        guilds: 40,
        zlib_chunk_size: 256,
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, true).await;
    let ready = c.ready(&sim, [0, 1]).await;
    assert_eq!(ready["d"]["guilds"].as_array().unwrap().len(), 40);
    assert!(c.last_frames > 1, "READY should span several frames");
    for _ in 0..40 {
        assert_eq!(c.payload().await["t"], "GUILD_CREATE");
    }
    c.send(json!({ "op": 1, "d": 41 })).await;
    assert_eq!(c.payload().await["op"], 11);
    assert_eq!(c.last_frames, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn large_threshold_decides_large() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    let mut id = common::identify_payload(sim.token(), [0, 1], INTENTS);
    id["d"]["large_threshold"] = json!(250);
    c.send(id).await;
    c.dispatch("READY").await;
    for _ in 0..12 {
        let g = c.dispatch("GUILD_CREATE").await;
        let count = g["d"]["member_count"].as_u64().unwrap();
        assert_eq!(g["d"]["large"], count > 250, "member_count {count}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn scripted_dispatch_reaches_the_owning_shard_only() {
    let (sim, mut a, mut b) = two_ready_shards().await;
    let g = sim.guilds_for_shard(1, 2)[0];
    let n = sim.dispatch(
        g,
        "MESSAGE_CREATE",
        json!({ "id": "1", "guild_id": g.to_string(), "content": "hi" }),
    );
    assert_eq!(n, 1);
    let m = b.dispatch("MESSAGE_CREATE").await;
    assert_eq!(m["d"]["content"], "hi");
    // Shard 0 gets DMs.
    assert_eq!(
        sim.dispatch_to_shard(0, "MESSAGE_CREATE", json!({ "id": "2", "content": "dm" })),
        1
    );
    let dm = a.dispatch("MESSAGE_CREATE").await;
    assert_eq!(dm["d"]["content"], "dm");
    sim.shutdown().await;
}

#[tokio::test]
async fn intents_filter_dispatches() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    c.identify(sim.token(), [0, 1], 1).await; // GUILDS only
    c.dispatch("READY").await;
    let g = sim.guild_ids()[0];
    assert_eq!(
        sim.dispatch(g, "MESSAGE_CREATE", json!({ "guild_id": g.to_string() })),
        0
    );
    assert_eq!(
        sim.dispatch(g, "CHANNEL_CREATE", json!({ "guild_id": g.to_string() })),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn gateway_bot_reports_url_shards_and_limits() {
    let sim = start(SimConfig {
        shards: 3,
        max_concurrency: 2,
        ..config()
    })
    .await;
    let (status, body) = http(
        &sim,
        "GET",
        "/api/v10/gateway/bot",
        Some(&format!("Bot {}", sim.token())),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["url"], sim.gateway_url());
    assert_eq!(body["shards"], 3);
    assert_eq!(body["session_start_limit"]["total"], 1000);
    assert_eq!(body["session_start_limit"]["remaining"], 1000);
    assert_eq!(body["session_start_limit"]["max_concurrency"], 2);
    assert!(body["session_start_limit"]["reset_after"].as_u64().unwrap() > 0);

    let (status, body) = http(&sim, "GET", "/api/v10/gateway/bot", Some("Bot wrong"), None).await;
    assert_eq!(status, 401);
    assert!(body["message"].is_string());

    let mut c = Client::gateway(&sim, false).await;
    c.ready(&sim, [0, 3]).await;
    let (_, body) = http(
        &sim,
        "GET",
        "/api/v10/gateway/bot",
        Some(&format!("Bot {}", sim.token())),
        None,
    )
    .await;
    assert_eq!(body["session_start_limit"]["remaining"], 999);
    let log = sim.log();
    assert!(matches!(
        log.identifies[0].outcome,
        IdentifyOutcome::Ready { .. }
    ));
    sim.shutdown().await;
}
