//! The rate-driven generator: realistic MESSAGE_CREATE, per-shard routing,
//! and "every seq delivered exactly once" checked against the sim's stats.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Client, WAIT, config, start};
use shardbus_sim::{SessionId, SimConfig};

#[tokio::test]
async fn generator_spreads_messages_over_shards_with_consecutive_seqs() {
    let sim = start(SimConfig {
        shards: 2,
        guilds: 50,
        max_concurrency: 2,
        ..config()
    })
    .await;
    let mut clients = Vec::new();
    for shard in 0..2u32 {
        let mut c = Client::gateway(&sim, true).await;
        let ready = c.ready(&sim, [shard, 2]).await;
        let session = ready["d"]["session_id"].as_str().unwrap().to_owned();
        clients.push((shard, c, session));
    }
    sim.start_traffic(2000.0);
    for (shard, c, session) in &mut clients {
        let mut seqs = BTreeSet::new();
        let mut last = 1; // READY
        let mut messages = 0;
        while messages < 200 {
            let p = c.payload().await;
            let s = p["s"].as_u64().unwrap();
            assert_eq!(s, last + 1, "gap or duplicate");
            last = s;
            seqs.insert(s);
            if p["t"] == "MESSAGE_CREATE" {
                messages += 1;
                let d = &p["d"];
                let guild: u64 = d["guild_id"].as_str().unwrap().parse().unwrap();
                assert_eq!((guild >> 22) % 2, u64::from(*shard));
                assert!(d["id"].as_str().unwrap().parse::<u64>().is_ok());
                assert!(d["author"]["username"].is_string());
                assert!(d["member"]["joined_at"].is_string());
                assert!(d["timestamp"].as_str().unwrap().ends_with("+00:00"));
                assert!(d["embeds"].is_array());
            }
        }
        // The server's record covers at least what this client read, once each.
        let stats = sim
            .wait_for_stats(WAIT, |st| {
                st.session(&SessionId(session.clone()))
                    .is_some_and(|x| x.connections[0].dispatches >= last)
            })
            .await
            .unwrap();
        let sent: Vec<u64> = stats
            .session(&SessionId(session.clone()))
            .unwrap()
            .connections[0]
            .all_seqs()
            .collect();
        assert_eq!(sent, (1..=sent.len() as u64).collect::<Vec<_>>());
    }
    sim.stop_traffic();
    assert!(sim.stats().generated >= 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn without_message_content_intent_content_is_empty() {
    let sim = start(SimConfig {
        rate: 500.0,
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    c.identify(sim.token(), [0, 1], 1 | (1 << 9)).await;
    for _ in 0..20 {
        let m = c.dispatch("MESSAGE_CREATE").await;
        assert_eq!(m["d"]["content"], "");
        assert_eq!(m["d"]["embeds"].as_array().unwrap().len(), 0);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn generator_respects_its_rate_roughly() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    c.ready(&sim, [0, 1]).await;
    sim.start_traffic(100.0);
    let t = std::time::Instant::now();
    for _ in 0..30 {
        c.dispatch("MESSAGE_CREATE").await;
    }
    let took = t.elapsed();
    // 30 messages at 100/s: about 0.3 s; generous bounds for a loaded machine.
    assert!(took >= Duration::from_millis(200), "too fast: {took:?}");
    sim.shutdown().await;
}
