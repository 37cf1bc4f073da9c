//! The NATS bridge and resume store against a private nats-server and the
//! sim: what is published (subjects, headers, `d` byte for byte), the
//! server dropping a resume's replay by message id, nothing lost across a
//! server restart, and the resume state a restarted host resumes from.
#![cfg(feature = "nats")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use common::gateway::{LIMIT, Msg, config, eventually_some, message, sim, test_config};
use common::nats::jetstream;
use futures::StreamExt;
use shardbus::bridge::{NatsBridge, ResumeState, ResumeStore};
use shardbus::shard::Manager;
use shardbus_sim::{GuildId, NatsServer, Sim, SimConfig};
use tokio::time::timeout;

async fn sim_with(shards: u32) -> Sim {
    sim(SimConfig {
        shards,
        guilds: 8,
        ..test_config()
    })
    .await
}

/// A manager on `sim` whose shards start from `kept`.
async fn manager(
    sim: &Sim,
    kept: std::collections::HashMap<u32, shardbus::gateway::ResumeInfo>,
) -> Manager {
    let client = shardbus::http::Client::new(sim.token())
        .unwrap()
        .api_base(format!("{}/api/v10", sim.http_url()));
    Manager::builder(config(sim))
        .http(client)
        .identify_window(Duration::from_millis(100))
        .new_shard(ResumeStore::resume_hook(kept))
        .fetch()
        .await
        .unwrap()
}

/// A guild of `sim` on `shard`.
fn guild_on(sim: &Sim, shard: u32) -> GuildId {
    sim.guilds_for_shard(shard, sim.config().shards)[0]
}

/// Dispatches message `i` to `guild`; its `d`.
fn send(sim: &Sim, guild: GuildId, i: u64) -> serde_json::Value {
    let mut data = message(i);
    data["guild_id"] = serde_json::Value::String(guild.to_string());
    assert_eq!(sim.dispatch(guild, "MESSAGE_CREATE", data.clone()), 1);
    data
}

/// Every message in the stream, in stream order.
async fn stored(js: &jetstream::Context, want: usize) -> Vec<async_nats::jetstream::Message> {
    // Every message is in the stream before it is read (after a server
    // restart, requests fail until JetStream is back).
    timeout(LIMIT, async {
        loop {
            if let Ok(mut s) = js.get_stream(NatsBridge::stream_name("shardbus")).await
                && let Ok(info) = s.info().await
                && info.state.messages >= want as u64
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stream filled");
    let stream = js
        .get_stream(NatsBridge::stream_name("shardbus"))
        .await
        .unwrap();
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut got = Vec::new();
    while got.len() < want {
        let m = timeout(LIMIT, messages.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.push(m);
    }
    // Nothing more than wanted.
    let info = js
        .get_stream(NatsBridge::stream_name("shardbus"))
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(
        info.state.messages, want as u64,
        "stream holds exactly what was wanted"
    );
    got
}

fn header<'a>(m: &'a async_nats::jetstream::Message, name: &str) -> &'a str {
    m.headers.as_ref().unwrap().get(name).unwrap().as_str()
}

#[tokio::test]
async fn chosen_dispatches_are_published_with_d_exactly_per_type_and_shard() {
    let server = NatsServer::start().unwrap();
    let js = jetstream(&server).await;
    let sim = sim_with(2).await;
    let manager = manager(&sim, Default::default()).await;
    let _msgs = manager.bus().subscribe::<Msg>();
    let bridge = NatsBridge::builder(js.clone())
        .events(["MESSAGE_CREATE"])
        .start(manager.bus())
        .await
        .unwrap();
    manager.open().await.unwrap();
    let mut sent = BTreeMap::new();
    for i in 0..20 {
        let shard = (i % 2) as u32;
        sent.insert(i, (shard, send(&sim, guild_on(&sim, shard), i)));
    }
    let messages = stored(&js, 20).await;
    let mut last_seq = BTreeMap::new();
    for m in &messages {
        let d: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        let i: u64 = d["id"].as_str().unwrap().parse::<u64>().unwrap() - 1000;
        let (shard, data) = &sent[&i];
        assert_eq!(&d, data, "d as the sim sent it");
        assert_eq!(
            m.subject.as_str(),
            format!("shardbus.evt.MESSAGE_CREATE.{shard}")
        );
        assert_eq!(header(m, "Shardbus-Event"), "MESSAGE_CREATE");
        assert_eq!(header(m, "Shardbus-Shard"), shard.to_string());
        let seq: u64 = header(m, "Shardbus-Seq").parse().unwrap();
        let session = header(m, "Shardbus-Session").to_owned();
        assert_eq!(header(m, "Nats-Msg-Id"), format!("{shard}:{session}:{seq}"));
        // Each shard's in its seq order.
        let last = last_seq.insert(*shard, seq).unwrap_or(0);
        assert!(seq > last, "shard {shard}: {seq} after {last}");
    }
    manager.close().await.unwrap();
    let stats = bridge.close().await;
    assert_eq!((stats.published, stats.duplicates), (20, 0));
    // READY and GUILD_CREATEs were not chosen.
    assert!(stats.skipped >= 2, "{stats:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_restarted_host_resumes_from_the_store_and_the_server_drops_the_replay() {
    let server = NatsServer::start().unwrap();
    let js = jetstream(&server).await;
    let store = ResumeStore::open(&js, "shardbus").await.unwrap();
    let sim = sim_with(1).await;
    let guild = guild_on(&sim, 0);

    // The first run: 10 messages, the resume state saved every 2.
    let first = manager(&sim, Default::default()).await;
    let bridge = NatsBridge::builder(js.clone())
        .events(["MESSAGE_CREATE"])
        .resume_store(store.clone(), &first, 2)
        .start(first.bus())
        .await
        .unwrap();
    first.open().await.unwrap();
    for i in 0..10 {
        send(&sim, guild, i);
    }
    stored(&js, 10).await;
    // Saved by the bridge once the server acknowledged an even count:
    // soon, but not necessarily yet.
    let last = eventually_some("a saved session", || async {
        store.load(0, 1).await.unwrap()
    })
    .await;
    first.close_resumable().await.unwrap();
    let stats = bridge.close().await;
    assert_eq!(stats.published, 10);
    let saved = store.load(0, 1).await.unwrap().unwrap();
    assert!(saved.seq >= last.seq);
    assert_eq!(saved.total, 1);
    // As if the host had crashed after message 4: the store holds an
    // older seq than what reached the stream.
    let mut older = saved.clone();
    older.seq = shardbus::model::Seq(saved.seq.0 - 5);
    store.save(0, &older).await.unwrap();
    for i in 10..13 {
        send(&sim, guild, i);
    }

    // The restarted host resumes from the store: the sim replays from the
    // older seq, and the server stores each message once.
    let kept = store.load_range(0..1, 1).await.unwrap();
    assert_eq!(kept[&0], older.info());
    let second = manager(&sim, kept).await;
    let bridge = NatsBridge::builder(js.clone())
        .events(["MESSAGE_CREATE"])
        .resume_store(store.clone(), &second, 2)
        .start(second.bus())
        .await
        .unwrap();
    let identifies = sim.log().ready_identifies().count();
    second.open().await.unwrap();
    let messages = stored(&js, 13).await;
    let contents: Vec<String> = messages
        .iter()
        .map(|m| {
            let d: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            d["content"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        contents,
        (0..13).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        sim.log().ready_identifies().count(),
        identifies,
        "resumed, not identified"
    );
    assert!(
        sim.log()
            .resumes
            .iter()
            .any(|r| r.session_id == older.session_id.0)
    );
    second.close().await.unwrap();
    let stats = bridge.close().await;
    assert_eq!((stats.published, stats.duplicates), (8, 5), "{stats:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn nothing_is_lost_when_the_server_crashes_and_restarts() {
    let mut server = NatsServer::start().unwrap();
    let js = jetstream(&server).await;
    let sim = sim_with(2).await;
    let manager = manager(&sim, Default::default()).await;
    let bridge = NatsBridge::builder(js.clone())
        .events(["MESSAGE_CREATE"])
        .start(manager.bus())
        .await
        .unwrap();
    manager.open().await.unwrap();
    for i in 0..300 {
        send(&sim, guild_on(&sim, (i % 2) as u32), i);
    }
    // Restarted once some have been stored; its store survives.
    timeout(LIMIT, async {
        while bridge.stats().published < 50 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    // A crash: JetStream keeps what it acknowledged to the bridge. (On the
    // blocking pool: it waits for the new server with thread::sleep, and
    // this runtime has one thread, which runs the sim and the bridge.)
    let _server = tokio::task::spawn_blocking(move || {
        server.crash_and_restart().unwrap();
        server
    })
    .await
    .unwrap();
    for i in 300..600 {
        send(&sim, guild_on(&sim, (i % 2) as u32), i);
    }
    let messages = stored(&js, 600).await;
    let mut ids: Vec<u64> = messages
        .iter()
        .map(|m| {
            let d: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            d["id"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 600, "every message once");
    manager.close().await.unwrap();
    let stats = bridge.close().await;
    assert!(stats.published >= 600, "{stats:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stale_or_broken_entry_is_not_resumed() {
    let server = NatsServer::start().unwrap();
    let js = jetstream(&server).await;
    let store = ResumeStore::open(&js, "shardbus").await.unwrap();
    let state = ResumeState {
        session_id: shardbus::model::SessionId("s".into()),
        seq: shardbus::model::Seq(7),
        resume_url: "wss://example".into(),
        total: 4,
    };
    store.save(1, &state).await.unwrap();
    assert_eq!(store.load(1, 4).await.unwrap(), Some(state.clone()));
    // Another shard total: stale, and removed.
    assert_eq!(store.load(1, 8).await.unwrap(), None);
    assert_eq!(store.load(1, 4).await.unwrap(), None);
    // Not JSON of a state: removed too.
    let kv = js.get_key_value("shardbus_resume").await.unwrap();
    kv.put("shard.2", "{".into()).await.unwrap();
    assert_eq!(store.load(2, 4).await.unwrap(), None);
    assert!(kv.get("shard.2").await.unwrap().is_none());
    assert!(store.load_range(0..4, 4).await.unwrap().is_empty());
    // A resume URL that is not a websocket's: not used, and removed.
    for url in ["http://example.com", "javascript:alert(1)", ""] {
        let odd = ResumeState {
            resume_url: url.into(),
            ..state.clone()
        };
        store.save(3, &odd).await.unwrap();
        assert_eq!(store.load(3, 4).await.unwrap(), None, "{url}");
        assert!(kv.get("shard.3").await.unwrap().is_none(), "{url}");
    }
}

#[tokio::test]
async fn the_resume_state_is_saved_when_the_bridge_closes() {
    let server = NatsServer::start().unwrap();
    let js = jetstream(&server).await;
    let store = ResumeStore::open(&js, "shardbus").await.unwrap();
    let sim = sim_with(1).await;
    let guild = guild_on(&sim, 0);
    let manager = manager(&sim, Default::default()).await;
    // Saving every 1,000: five messages never reach it.
    let bridge = NatsBridge::builder(js.clone())
        .events(["MESSAGE_CREATE"])
        .resume_store(store.clone(), &manager, 1_000)
        .start(manager.bus())
        .await
        .unwrap();
    manager.open().await.unwrap();
    for i in 0..5 {
        send(&sim, guild, i);
    }
    let messages = stored(&js, 5).await;
    let last_seq: u64 = header(&messages[4], "Shardbus-Seq").parse().unwrap();
    let session = header(&messages[4], "Shardbus-Session").to_owned();
    assert_eq!(store.load(0, 1).await.unwrap(), None, "not saved yet");
    manager.close_resumable().await.unwrap();
    let stats = bridge.close().await;
    assert_eq!((stats.published, stats.saves), (5, 1), "{stats:?}");
    let saved = store.load(0, 1).await.unwrap().expect("saved at close");
    assert_eq!(saved.seq.0, last_seq);
    assert_eq!(saved.session_id.0, session);
    assert_eq!(saved.total, 1);
    sim.shutdown().await;
}
