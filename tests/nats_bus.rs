//! Workers fed from NATS: a host (manager + bridge) on the sim publishes,
//! `NatsBus` workers handle with ordinary handlers and streams. Acks after
//! success, redeliveries marked, dead letters, and two workers sharing the
//! shards with each shard's order kept.
#![cfg(feature = "nats")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::gateway::{LIMIT, config, eventually, message, sim, test_config};
use common::nats::jetstream;
use shardbus::bridge::{DeadLetter, NatsBridge, NatsBus};
use shardbus::model::MessageCreate;
use shardbus::shard::Manager;
use shardbus::{BoxError, State, TypeMux};
use shardbus_sim::{GuildId, NatsServer, Sim, SimConfig};
use tokio::time::timeout;

/// A shard host: the sim's shards under a manager, bridged to NATS.
struct Host {
    sim: Sim,
    manager: Manager,
    bridge: NatsBridge,
}

async fn host(server: &NatsServer, shards: u32) -> Host {
    let sim = sim(SimConfig {
        shards,
        guilds: 8,
        // Room for user commands beside the heartbeats.
        heartbeat_interval: Duration::from_secs(2),
        ..test_config()
    })
    .await;
    let manager = Manager::builder(config(&sim).shard(0, shards))
        .identify_window(Duration::from_millis(100))
        .build();
    let bridge = NatsBridge::builder(jetstream(server).await)
        .events(["MESSAGE_CREATE"])
        .start(manager.bus())
        .await
        .unwrap();
    manager.open().await.unwrap();
    Host {
        sim,
        manager,
        bridge,
    }
}

impl Host {
    /// Message `i` with `content` into a guild of shard `i % shards`.
    fn send(&self, i: u64, content: &str) {
        let shards = self.sim.config().shards;
        let guild: GuildId = self
            .sim
            .guilds_for_shard((i % u64::from(shards)) as u32, shards)[0];
        let mut data = message(i);
        data["guild_id"] = serde_json::Value::String(guild.to_string());
        data["content"] = serde_json::Value::String(content.to_owned());
        assert_eq!(self.sim.dispatch(guild, "MESSAGE_CREATE", data), 1);
    }

    async fn stop(self) {
        self.manager.close().await.unwrap();
        self.bridge.close().await;
        self.sim.shutdown().await;
    }
}

/// One handled event: (content, shard, seq, attempt).
type Handled = (String, u32, u64, u32);

/// What handlers saw.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Handled>>>);

impl Seen {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

async fn record(msg: Arc<MessageCreate>, State(seen): State<Seen>) -> Result<(), BoxError> {
    let m = &msg.meta;
    seen.0
        .lock()
        .unwrap()
        .push((msg.content.clone(), m.shard.0, m.seq.0, m.attempt));
    Ok(())
}

#[tokio::test]
async fn a_worker_handles_bridged_events_and_acks_them_after_its_handlers() {
    let server = NatsServer::start().unwrap();
    let host = host(&server, 2).await;
    let seen = Seen::default();
    let worker = NatsBus::builder(jetstream(&server).await, "replies", 2)
        .bus(TypeMux::new().with_state(seen.clone()))
        .start()
        .await
        .unwrap();
    let _handler = worker.bus().add_handler(record);
    let mut stream = worker.bus().subscribe::<MessageCreate>();
    for i in 0..20 {
        host.send(i, &format!("m{i}"));
    }
    eventually("20 handled", || seen.len() == 20).await;
    for _ in 0..20 {
        let msg = timeout(LIMIT, stream.recv()).await.unwrap().unwrap();
        assert!(msg.content.starts_with('m'));
    }
    eventually("20 acknowledged", || worker.stats().acked == 20).await;
    let seen = seen.0.lock().unwrap().clone();
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for (content, shard, seq, attempt) in &seen {
        assert_eq!(*attempt, 1, "{content}: first delivery");
        let i: u64 = content[1..].parse().unwrap();
        assert_eq!(*shard, (i % 2) as u32);
        let before = last.insert(*shard, *seq).unwrap_or(0);
        assert!(*seq > before, "shard {shard} in seq order");
    }
    let stats = worker.close().await;
    assert_eq!(
        (stats.naked, stats.redelivered, stats.dead_letters),
        (0, 0, 0)
    );
    host.stop().await;
}

#[tokio::test]
async fn a_failure_is_redelivered_marked_and_ends_as_a_dead_letter() {
    async fn picky(msg: Arc<MessageCreate>, State(seen): State<Seen>) -> Result<(), BoxError> {
        seen.0.lock().unwrap().push((
            msg.content.clone(),
            msg.meta.shard.0,
            msg.meta.seq.0,
            msg.meta.attempt,
        ));
        match msg.content.as_str() {
            "bad" => Err("never works".into()),
            "flaky" if msg.meta.attempt < 2 => Err("works the second time".into()),
            _ => Ok(()),
        }
    }
    let server = NatsServer::start().unwrap();
    let host = host(&server, 1).await;
    let seen = Seen::default();
    let worker = NatsBus::builder(jetstream(&server).await, "picky", 1)
        .bus(TypeMux::new().with_state(seen.clone()))
        .max_deliver(3)
        .nak_delay(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let _handler = worker.bus().add_handler(picky);
    let mut letters = worker.bus().subscribe::<DeadLetter>();
    host.send(0, "flaky");
    host.send(1, "bad");
    host.send(2, "fine");
    let letter = timeout(LIMIT, letters.recv()).await.unwrap().unwrap();
    assert_eq!(letter.event_type, "MESSAGE_CREATE");
    assert!(letter.error.contains("never works"), "{}", letter.error);
    assert_eq!(letter.meta.attempt, 3);
    let d: serde_json::Value = serde_json::from_str(&letter.data).unwrap();
    assert_eq!(d["content"], "bad");
    eventually("flaky and fine acknowledged", || worker.stats().acked == 2).await;
    let seen = seen.0.lock().unwrap().clone();
    let attempts = |content: &str| -> Vec<u32> {
        seen.iter()
            .filter(|s| s.0 == content)
            .map(|s| s.3)
            .collect()
    };
    assert_eq!(attempts("flaky"), [1, 2]);
    assert_eq!(attempts("bad"), [1, 2, 3]);
    assert_eq!(attempts("fine"), [1]);
    let stats = worker.close().await;
    assert_eq!(
        (stats.naked, stats.redelivered, stats.dead_letters),
        (3, 3, 1),
        "{stats:?}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_handler_registered_on_the_bus_before_start_is_waited_for() {
    async fn fails_first(
        msg: Arc<MessageCreate>,
        State(seen): State<Seen>,
    ) -> Result<(), BoxError> {
        record(msg.clone(), State(seen)).await?;
        if msg.meta.attempt < 2 {
            return Err("not yet".into());
        }
        Ok(())
    }
    let server = NatsServer::start().unwrap();
    let host = host(&server, 1).await;
    let seen = Seen::default();
    // Registered on the bus handed to the builder, before the worker
    // starts: its failure must refuse the event, not let it be acked.
    let bus = TypeMux::new().with_state(seen.clone());
    let _handler = bus.add_handler(fails_first);
    let worker = NatsBus::builder(jetstream(&server).await, "early", 1)
        .bus(bus)
        .nak_delay(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    host.send(0, "m0");
    eventually("handled twice", || seen.len() == 2).await;
    eventually("acknowledged after the second", || {
        worker.stats().acked == 1
    })
    .await;
    let attempts: Vec<u32> = seen.0.lock().unwrap().iter().map(|s| s.3).collect();
    assert_eq!(attempts, [1, 2]);
    let stats = worker.close().await;
    assert_eq!(
        (stats.acked, stats.naked, stats.redelivered),
        (1, 1, 1),
        "{stats:?}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_bus_feeds_one_worker_at_a_time() {
    let server = NatsServer::start().unwrap();
    let bus = TypeMux::new();
    let first = NatsBus::builder(jetstream(&server).await, "one", 1)
        .bus(bus.clone())
        .start()
        .await
        .unwrap();
    let second = NatsBus::builder(jetstream(&server).await, "one", 1)
        .bus(bus.clone())
        .start()
        .await;
    assert!(matches!(second, Err(shardbus::bridge::NatsError::BusTaken)));
    first.close().await;
    let third = NatsBus::builder(jetstream(&server).await, "one", 1)
        .bus(bus)
        .start()
        .await
        .unwrap();
    third.close().await;
}

#[tokio::test]
async fn an_event_whose_handler_hangs_past_every_ack_wait_is_a_dead_letter() {
    async fn hangs(msg: Arc<MessageCreate>, State(seen): State<Seen>) {
        let _ = record(msg.clone(), State(seen)).await;
        if msg.content == "hang" {
            std::future::pending::<()>().await;
        }
    }
    let server = NatsServer::start().unwrap();
    let host = host(&server, 1).await;
    let seen = Seen::default();
    let worker = NatsBus::builder(jetstream(&server).await, "hung", 1)
        .bus(TypeMux::new().with_state(seen.clone()))
        .max_deliver(2)
        .ack_wait(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let _handler = worker.bus().add_handler(hangs);
    let mut letters = worker.bus().subscribe::<DeadLetter>();
    host.send(0, "hang");
    // Never acknowledged: delivered twice (the second waits behind the
    // hung call), and the server gives up; so does the worker, loudly.
    let letter = timeout(LIMIT, letters.recv()).await.unwrap().unwrap();
    assert_eq!(letter.event_type, "MESSAGE_CREATE");
    assert_eq!(letter.meta.shard.0, 0);
    assert!(letter.meta.seq.0 > 0);
    assert_eq!(letter.meta.attempt, 2);
    assert!(letter.error.contains("ack_wait"), "{}", letter.error);
    let d: serde_json::Value = serde_json::from_str(&letter.data).unwrap();
    assert_eq!(d["content"], "hang");
    eventually("counted", || worker.stats().dead_letters == 1).await;
    host.stop().await;
}

/// Waits until `consumer` of the event stream has nothing awaiting an
/// acknowledgement and has delivered `delivered` events.
async fn all_acknowledged(server: &NatsServer, consumer: &str, delivered: u64) {
    let js = jetstream(server).await;
    let mut last = None;
    let settled = timeout(LIMIT, async {
        loop {
            if let Ok(stream) = js.get_stream("shardbus_events").await
                && let Ok(info) = stream.consumer_info(consumer).await
            {
                if info.num_ack_pending == 0 && info.ack_floor.stream_sequence >= delivered {
                    return;
                }
                last = Some((info.num_ack_pending, info.ack_floor.stream_sequence));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        settled.is_ok(),
        "{consumer}: (ack pending, ack floor) still {last:?}"
    );
}

#[tokio::test]
async fn closing_or_dropping_a_worker_acknowledges_what_its_handlers_finish() {
    #[derive(Clone)]
    struct Gate(Arc<tokio::sync::Semaphore>);
    async fn gated(
        msg: Arc<MessageCreate>,
        State(seen): State<Seen>,
        State(gate): State<Gate>,
    ) -> Result<(), BoxError> {
        record(msg, State(seen)).await?;
        gate.0.acquire().await?.forget();
        Ok(())
    }
    let server = NatsServer::start().unwrap();
    let host = host(&server, 1).await;
    for (round, service) in ["closed", "dropped"].into_iter().enumerate() {
        let seen = Seen::default();
        let gate = Gate(Arc::new(tokio::sync::Semaphore::new(0)));
        let worker = NatsBus::builder(jetstream(&server).await, service, 1)
            .bus(
                TypeMux::new()
                    .with_state(seen.clone())
                    .with_state(gate.clone()),
            )
            .start()
            .await
            .unwrap();
        let _handler = worker.bus().add_handler(gated);
        // One more event each round; each service's consumer reads them
        // all.
        let events = round + 1;
        host.send(round as u64, "m");
        eventually("the handler runs", || seen.len() == 1).await;
        // Leaving while the handler runs: what it finishes is still
        // acknowledged (not delivered again after ack_wait).
        if service == "closed" {
            let closing = tokio::spawn(worker.close());
            gate.0.add_permits(events);
            let stats = closing.await.unwrap();
            assert_eq!((stats.acked, stats.naked), (1, 0), "{stats:?}");
        } else {
            drop(worker);
            gate.0.add_permits(events);
        }
        all_acknowledged(&server, &format!("{service}_0"), events as u64).await;
    }
    host.stop().await;
}

#[tokio::test]
async fn two_workers_share_the_shards_and_each_shard_keeps_its_order() {
    let server = NatsServer::start().unwrap();
    let host = host(&server, 4).await;
    let (seen_a, seen_b) = (Seen::default(), Seen::default());
    let worker = async |seen: &Seen| {
        NatsBus::builder(jetstream(&server).await, "shared", 4)
            .bus(TypeMux::new().with_state(seen.clone()))
            // Long enough that a loaded machine never lets a lease lapse
            // mid-test (a leaving worker releases its own at once).
            .lease_ttl(Duration::from_secs(3))
    };
    let a = worker(&seen_a).await.start().await.unwrap();
    let _ha = a.bus().add_handler(record);
    eventually("a takes every shard", || a.stats().partitions == 4).await;
    let b = worker(&seen_b).await.start().await.unwrap();
    let _hb = b.bus().add_handler(record);
    eventually("the shards shared", || {
        a.stats().partitions == 2 && b.stats().partitions == 2
    })
    .await;
    for i in 0..200 {
        host.send(i, &format!("m{i}"));
    }
    eventually("200 handled", || seen_a.len() + seen_b.len() == 200).await;
    let (seen_a, seen_b) = (
        seen_a.0.lock().unwrap().clone(),
        seen_b.0.lock().unwrap().clone(),
    );
    assert!(!seen_a.is_empty() && !seen_b.is_empty(), "both worked");
    let mut owner = BTreeMap::new();
    for (worker, seen) in [("a", &seen_a), ("b", &seen_b)] {
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for (_, shard, seq, _) in seen {
            assert_eq!(
                *owner.entry(*shard).or_insert(worker),
                worker,
                "one worker per shard"
            );
            let before = last.insert(*shard, *seq).unwrap_or(0);
            assert!(*seq > before, "shard {shard} in order");
        }
    }
    let mut all: Vec<String> = seen_a.iter().chain(&seen_b).map(|s| s.0.clone()).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 200, "each once");

    // A leaves: the other takes its shards and nothing is lost.
    a.close().await;
    eventually("b takes every shard", || b.stats().partitions == 4).await;
    let before = b.stats().acked;
    for i in 200..240 {
        host.send(i, &format!("m{i}"));
    }
    eventually("the rest handled by b", || b.stats().acked >= before + 40).await;
    b.close().await;
    host.stop().await;
}

#[tokio::test]
async fn a_partition_given_up_to_a_new_worker_keeps_its_order() {
    async fn slow(msg: Arc<MessageCreate>, State(seen): State<Seen>) -> Result<(), BoxError> {
        // Work that takes a while: the worker holds many events when it
        // gives the partition up.
        tokio::time::sleep(Duration::from_millis(3)).await;
        record(msg, State(seen)).await
    }
    const N: u64 = 600;
    let server = NatsServer::start().unwrap();
    let host = host(&server, 2).await;
    // One record for both workers: the order events were handled in.
    let seen = Seen::default();
    let worker = async || {
        NatsBus::builder(jetstream(&server).await, "handover", 2)
            .bus(TypeMux::new().with_state(seen.clone()))
            .lease_ttl(Duration::from_secs(3))
    };
    let a = worker().await.start().await.unwrap();
    let _ha = a.bus().add_handler(slow);
    eventually("a takes both shards", || a.stats().partitions == 2).await;
    // All to shard 1, the one A gives up (its highest).
    for i in 0..N {
        host.send(2 * i + 1, &format!("m{i}"));
    }
    eventually("a has begun", || seen.len() > 0).await;
    let b = worker().await.start().await.unwrap();
    let _hb = b.bus().add_handler(slow);
    // What A held and had not handled reaches B soon, not after the
    // 30 s ack_wait, and after what A handled.
    eventually("the shards shared", || {
        a.stats().partitions == 1 && b.stats().partitions == 1
    })
    .await;
    eventually("all handled", || seen.len() as u64 >= N).await;
    let seen = seen.0.lock().unwrap().clone();
    let mut handled: Vec<u64> = Vec::new();
    for (content, shard, seq, _) in &seen {
        assert_eq!(*shard, 1, "{content}");
        assert!(
            handled.last().is_none_or(|last| seq > last),
            "{content} (seq {seq}) handled after seq {:?}",
            handled.last()
        );
        handled.push(*seq);
    }
    assert_eq!(handled.len() as u64, N);
    b.close().await;
    a.close().await;
    host.stop().await;
}

#[tokio::test]
async fn commands_reach_a_shard_through_the_host_that_runs_it() {
    use shardbus::bridge::{CommandSendError, CommandServer, ShardCommand, ShardCommands};
    use shardbus::gateway::UpdatePresence;
    let server = NatsServer::start().unwrap();
    let host = host(&server, 2).await;
    let client = async_nats::connect(server.url()).await.unwrap();
    let _server = CommandServer::serve(client.clone(), "shardbus", &host.manager)
        .await
        .unwrap();
    let commands = ShardCommands::new(async_nats::connect(server.url()).await.unwrap());
    let presence = ShardCommand::UpdatePresence(UpdatePresence {
        status: "dnd".into(),
        ..UpdatePresence::default()
    });
    commands.send(1, &presence).await.unwrap();
    eventually("the presence on shard 1", || {
        host.sim.log().connections_for_shard(1).any(|c| {
            c.events.iter().any(|e| {
                matches!(&e.kind, shardbus_sim::ClientEventKind::Command { op: 3, d } if d["status"] == "dnd")
            })
        })
    })
    .await;
    assert!(
        !host.sim.log().connections_for_shard(0).any(|c| c
            .events
            .iter()
            .any(|e| matches!(e.kind, shardbus_sim::ClientEventKind::Command { op: 3, .. }))),
        "only shard 1 sent it"
    );
    // Nobody runs shard 7.
    assert!(matches!(
        commands.send(7, &presence).await,
        Err(CommandSendError::NoHost(7))
    ));
    // Garbage gets a refusal, and the host keeps answering.
    let reply = client
        .request("shardbus.cmd.0", "{not json".into())
        .await
        .unwrap();
    let answer: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("not a shard command")
    );
    commands.send(0, &presence).await.unwrap();
    host.stop().await;
}

#[tokio::test]
async fn a_command_server_answers_as_soon_as_serve_returns() {
    use shardbus::bridge::{CommandServer, ShardCommand, ShardCommands};
    use shardbus::gateway::UpdatePresence;
    let server = NatsServer::start().unwrap();
    let host = host(&server, 1).await;
    let commands = ShardCommands::new(async_nats::connect(server.url()).await.unwrap());
    let presence = ShardCommand::UpdatePresence(UpdatePresence {
        status: "idle".into(),
        ..UpdatePresence::default()
    });
    for round in 0..20 {
        // A host (re)starting its server: the first command right after
        // must find it, not "no host runs shard 0".
        let client = async_nats::connect(server.url()).await.unwrap();
        let serving = CommandServer::serve(client, "shardbus", &host.manager)
            .await
            .unwrap();
        if let Err(e) = commands.send(0, &presence).await {
            panic!("round {round}: {e}");
        }
        drop(serving);
    }
    host.stop().await;
}

#[tokio::test]
async fn an_event_that_does_not_decode_is_a_dead_letter_and_the_worker_goes_on() {
    let server = NatsServer::start().unwrap();
    let host = host(&server, 1).await;
    let seen = Seen::default();
    let worker = NatsBus::builder(jetstream(&server).await, "strict", 1)
        .bus(TypeMux::new().with_state(seen.clone()))
        .start()
        .await
        .unwrap();
    let _handler = worker.bus().add_handler(record);
    let mut letters = worker.bus().subscribe::<DeadLetter>();
    // Not a message object, and not even JSON, on the bridge's subject.
    let js = jetstream(&server).await;
    for garbage in ["{\"id\": 5", "[1, 2]"] {
        js.publish("shardbus.evt.MESSAGE_CREATE.0", garbage.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    for _ in 0..2 {
        let letter = timeout(LIMIT, letters.recv()).await.unwrap().unwrap();
        assert!(letter.error.contains("does not decode"), "{}", letter.error);
        assert_eq!(letter.meta.attempt, 1, "not delivered again first");
    }
    host.send(0, "after");
    eventually("the next event handled", || seen.len() == 1).await;
    let stats = worker.close().await;
    assert_eq!((stats.dead_letters, stats.acked), (2, 1), "{stats:?}");
    host.stop().await;
}

#[tokio::test]
async fn a_partition_claimed_after_a_release_moves_on_when_its_worker_crashes() {
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let builder = async |url: &str| {
        let client = async_nats::connect(url).await.unwrap();
        NatsBus::builder(async_nats::jetstream::new(client), "crashy", 1)
            .lease_ttl(Duration::from_secs(1))
    };
    // A takes the partition and leaves: its lease key holds a delete marker.
    let a = builder(&url).await.start().await.unwrap();
    eventually("a takes the partition", || a.stats().partitions == 1).await;
    a.close().await;
    // B claims it over the marker on a runtime of its own, then crashes:
    // the runtime goes, and nothing releases or renews the lease.
    let (claimed_tx, claimed_rx) = std::sync::mpsc::channel();
    let (crash_tx, crash_rx) = std::sync::mpsc::channel::<()>();
    let b_url = url.clone();
    let b = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let worker = runtime.block_on(async {
            let b = builder(&b_url).await.start().await.unwrap();
            eventually("b takes the partition", || b.stats().partitions == 1).await;
            b
        });
        claimed_tx.send(()).unwrap();
        let _ = crash_rx.recv();
        // A crash: no Drop, no release; the runtime's tasks just stop.
        std::mem::forget(worker);
        runtime.shutdown_background();
    });
    tokio::task::spawn_blocking(move || claimed_rx.recv().unwrap())
        .await
        .unwrap();
    crash_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || b.join().unwrap())
        .await
        .unwrap();
    // C gets the partition once B's lease has expired.
    let c = builder(&url).await.start().await.unwrap();
    eventually("c takes the crashed worker's partition", || {
        c.stats().partitions == 1
    })
    .await;
    c.close().await;
}

#[tokio::test]
async fn a_member_request_goes_to_the_shard_and_its_chunk_comes_back_to_the_worker() {
    use shardbus::bridge::{CommandServer, ShardCommand, ShardCommands};
    use shardbus::gateway::RequestGuildMembers;
    use shardbus::model::GuildMembersChunk;
    let server = NatsServer::start().unwrap();
    let sim = sim(SimConfig {
        shards: 2,
        guilds: 8,
        heartbeat_interval: Duration::from_secs(2),
        ..test_config()
    })
    .await;
    let manager = Manager::builder(config(&sim).shard(0, 2))
        .identify_window(Duration::from_millis(100))
        .build();
    let bridge = NatsBridge::builder(jetstream(&server).await)
        .events(["GUILD_MEMBERS_CHUNK"])
        .start(manager.bus())
        .await
        .unwrap();
    manager.open().await.unwrap();
    let _serving = CommandServer::serve(
        async_nats::connect(server.url()).await.unwrap(),
        "shardbus",
        &manager,
    )
    .await
    .unwrap();
    // The worker asks through the host that runs the guild's shard, and
    // reads the answer from the stream like any event.
    let worker = NatsBus::builder(jetstream(&server).await, "members", 2)
        .start()
        .await
        .unwrap();
    let mut chunks = worker.bus().subscribe::<GuildMembersChunk>();
    let guild = sim.guilds_for_shard(1, 2)[0];
    let commands = ShardCommands::new(async_nats::connect(server.url()).await.unwrap());
    let request = ShardCommand::RequestGuildMembers(RequestGuildMembers {
        guild_id: shardbus::model::GuildId(guild.0),
        query: Some(String::new()),
        limit: 0,
        presences: None,
        user_ids: None,
        nonce: Some("n-1".into()),
    });
    commands.send(1, &request).await.unwrap();
    let chunk = timeout(LIMIT, chunks.recv()).await.unwrap().unwrap();
    assert_eq!(chunk.guild_id.0, guild.0);
    assert_eq!(chunk.nonce.as_deref(), Some("n-1"));
    assert_eq!(chunk.meta.shard.0, 1);
    assert!(!chunk.members.is_empty());
    // The op 8 went out on shard 1 only.
    let op8 = |shard| {
        sim.log().connections_for_shard(shard).any(|c| {
            c.events.iter().any(|e| {
                matches!(&e.kind, shardbus_sim::ClientEventKind::Command { op: 8, d }
                    if d["nonce"] == "n-1")
            })
        })
    };
    assert!(op8(1) && !op8(0));
    worker.close().await;
    manager.close().await.unwrap();
    bridge.close().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_plugins_handlers_are_waited_for_and_unloading_it_stops_that() {
    use shardbus::{Plugin, PluginContext};
    /// Fails each event's first delivery.
    struct Picky(Seen);
    impl Plugin for Picky {
        fn name(&self) -> &str {
            "picky"
        }
        fn install(&self, cx: &mut PluginContext<'_>) {
            let seen = self.0.clone();
            cx.add_handler(move |msg: Arc<MessageCreate>| {
                let seen = seen.clone();
                async move {
                    record(msg.clone(), State(seen)).await?;
                    if msg.meta.attempt < 2 {
                        return Err::<(), BoxError>("first delivery".into());
                    }
                    Ok(())
                }
            });
        }
    }
    let server = NatsServer::start().unwrap();
    let host = host(&server, 1).await;
    let seen = Seen::default();
    let worker = NatsBus::builder(jetstream(&server).await, "plugged", 1)
        .nak_delay(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let plugin = worker.bus().install(Picky(seen.clone()));
    host.send(0, "m0");
    eventually("the plugin's handler ran twice", || seen.len() == 2).await;
    eventually("acknowledged after", || worker.stats().acked == 1).await;
    assert_eq!((worker.stats().naked, worker.stats().redelivered), (1, 1));
    // Unloaded: its handler no longer holds events back (a stream-only
    // event is acknowledged once posted).
    plugin.unload().await;
    let mut stream = worker.bus().subscribe::<MessageCreate>();
    host.send(1, "m1");
    let msg = timeout(LIMIT, stream.recv()).await.unwrap().unwrap();
    assert_eq!((msg.content.as_str(), msg.meta.attempt), ("m1", 1));
    eventually("acknowledged without it", || worker.stats().acked == 2).await;
    assert_eq!(seen.len(), 2, "the unloaded plugin saw nothing more");
    worker.close().await;
    host.stop().await;
}
