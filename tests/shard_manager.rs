//! The shard manager against the simulator: opening, routing, restart,
//! shutdown, rescale on 4011, and calls back into the manager.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::gateway::{LIMIT, Msg, config, eventually, message, sim, test_config};
use shardbus::TypeMux;
use shardbus::gateway::{CloseCode, GatewayConfig, Intents, ShardStage, Stage};
use shardbus::model::ShardId;
use shardbus::shard::{BUS_CAPACITY, Manager, ManagerError, Rescaled};
use shardbus_sim::{Fault, FaultTarget, GuildId, Sim, SimConfig};
use tokio::time::timeout;

/// A sim with `shards` shards.
async fn sim_with(shards: u32) -> Sim {
    sim(SimConfig {
        shards,
        guilds: 16,
        ..test_config()
    })
    .await
}

/// A sim of 2 shards that accepts identifies with another total (a
/// reshard in progress).
async fn resharding_sim() -> Sim {
    sim(SimConfig {
        shards: 2,
        guilds: 16,
        strict_shard_total: false,
        ..test_config()
    })
    .await
}

/// A manager on `sim`, asking its `GET /gateway/bot`.
async fn manager(sim: &Sim) -> Manager {
    manager_with(sim, |_, config| config).await
}

async fn manager_with(
    sim: &Sim,
    hook: impl Fn(&Manager, GatewayConfig) -> GatewayConfig + Send + Sync + 'static,
) -> Manager {
    manager_on(sim, None, hook).await
}

/// [`manager_with`] on `bus` if given.
async fn manager_on(
    sim: &Sim,
    bus: Option<TypeMux>,
    hook: impl Fn(&Manager, GatewayConfig) -> GatewayConfig + Send + Sync + 'static,
) -> Manager {
    let client = shardbus::http::Client::new(sim.token())
        .unwrap()
        .api_base(format!("{}/api/v10", sim.http_url()));
    let builder = Manager::builder(config(sim));
    match bus {
        Some(bus) => builder.bus(bus),
        None => builder,
    }
    .http(client)
    .identify_window(Duration::from_millis(100))
    .new_shard(hook)
    .fetch()
    .await
    .unwrap()
}

/// A manager on `sim` for `identify` with a state cache, and the cache.
async fn cached_manager(sim: &Sim, identify: GatewayConfig) -> (Manager, shardbus::state::Cache) {
    let client = shardbus::http::Client::new(sim.token())
        .unwrap()
        .api_base(format!("{}/api/v10", sim.http_url()));
    let manager = Manager::builder(identify)
        .http(client)
        .identify_window(Duration::from_millis(100))
        .cache(shardbus::state::Cache::default())
        .fetch()
        .await
        .unwrap();
    let cache = manager.cache().unwrap().clone();
    (manager, cache)
}

/// The guilds the sim routes to `shard` of `total`.
fn owned_ids(sim: &Sim, shard: u32, total: u32) -> BTreeSet<u64> {
    sim.guilds_for_shard(shard, total)
        .iter()
        .map(|g| g.0)
        .collect()
}

/// The guilds in the store of `shard`.
fn cached_ids(cache: &shardbus::state::Cache, shard: u32) -> BTreeSet<u64> {
    cache
        .guild_ids_of(ShardId(shard))
        .iter()
        .map(|g| g.get())
        .collect()
}

/// Dispatches message `i` to `guild`.
fn send(sim: &Sim, guild: GuildId, i: u64) -> usize {
    let mut data = message(i);
    data["guild_id"] = serde_json::Value::String(guild.to_string());
    sim.dispatch(guild, "MESSAGE_CREATE", data)
}

/// The library's id for a sim guild.
fn model(guild: GuildId) -> shardbus::model::GuildId {
    shardbus::model::GuildId(guild.0)
}

/// A sim guild the manager routes to `shard`.
fn guild_on(sim: &Sim, manager: &Manager, shard: u32) -> GuildId {
    sim.guild_ids()
        .into_iter()
        .find(|g| manager.from_guild_id(model(*g)).1 == ShardId(shard))
        .unwrap()
}

/// Reads `n` messages.
async fn recv(rx: &mut shardbus::EventStream<Msg>, n: usize) -> Vec<Arc<Msg>> {
    let mut got = Vec::new();
    for _ in 0..n {
        got.push(timeout(LIMIT, rx.recv()).await.unwrap().unwrap());
    }
    got
}

#[tokio::test]
async fn it_asks_the_gateway_for_the_count_and_opens_every_shard() {
    let sim = sim_with(4).await;
    let manager = manager(&sim).await;
    assert_eq!(manager.num_shards(), 4);
    assert_eq!(manager.range(), 0..4);
    assert!(
        manager.shards_instantiated().is_empty(),
        "nothing opens early"
    );
    assert!(sim.log().connections.is_empty(), "no socket before open");
    assert!(
        manager
            .gateway_url()
            .ends_with("/?v=10&encoding=json&compress=zlib-stream"),
        "{}",
        manager.gateway_url()
    );

    manager.open().await.unwrap();
    assert_eq!(
        manager.shards_instantiated(),
        (0..4).map(ShardId).collect::<Vec<_>>()
    );
    let mut seen = Vec::new();
    manager.for_each(|shard| {
        // The manager can be called from inside.
        assert_eq!(manager.num_shards(), 4);
        assert_eq!(shard.stage(), Stage::Connected);
        seen.push(shard.id().0);
    });
    assert_eq!(seen, [0, 1, 2, 3], "first to last");
    let shards: BTreeSet<u32> = sim.log().ready_identifies().map(|i| i.shard.id).collect();
    assert_eq!(shards, (0..4).collect());
    for id in 0..4 {
        let info = manager.info(id).unwrap();
        assert_eq!(info.stage, Stage::Connected);
        assert!(info.last_error.is_none());
    }
    manager.close().await.unwrap();
    assert!(manager.shards_instantiated().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn from_guild_id_names_the_shard_the_gateway_routes_the_guild_to() {
    let sim = sim_with(4).await;
    let manager = manager(&sim).await;
    let mut rx = manager.bus().subscribe::<Msg>();
    manager.open().await.unwrap();
    let guilds = sim.guild_ids();
    let mut expected = BTreeMap::new();
    for (i, guild) in guilds.iter().enumerate() {
        let (shard, ix) = manager.from_guild_id(model(*guild));
        assert_eq!(shard.unwrap().id(), ix);
        assert!(sim.guilds_for_shard(ix.0, 4).contains(guild));
        assert_eq!(send(&sim, *guild, i as u64), 1);
        expected.insert(format!("m{i}"), ix);
    }
    let got = recv(&mut rx, guilds.len()).await;
    for msg in got {
        assert_eq!(expected[&msg.content], msg.meta.shard, "{}", msg.content);
    }
    let events: u64 = (0..4).map(|id| manager.info(id).unwrap().events).sum();
    assert!(
        events >= guilds.len() as u64,
        "info counts events: {events}"
    );
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failed_open_closes_the_shards_it_opened() {
    // The application may use no privileged intent; shard 2 asks for one:
    // 4014, fatal.
    let sim = sim(SimConfig {
        shards: 3,
        guilds: 16,
        privileged_intents: 0,
        ..test_config()
    })
    .await;
    let manager = manager_with(&sim, |_, config| {
        if config.shard_id() == ShardId(2) {
            config.intents(Intents::GUILDS | Intents::GUILD_MEMBERS)
        } else {
            config
        }
    })
    .await;
    let error = manager.open().await.unwrap_err();
    let ManagerError::Gateway(error) = error else {
        panic!("{error}");
    };
    assert_eq!(error.shard, ShardId(2));
    assert!(error.fatal);
    assert!(manager.shards_instantiated().is_empty(), "rolled back");
    let log = sim
        .wait_for_log(LIMIT, |log| {
            log.connections.iter().all(|c| c.closed.is_some())
        })
        .await
        .unwrap();
    assert!(!log.connections.is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn open_after_close_starts_new_sessions() {
    let sim = sim_with(2).await;
    let manager = manager(&sim).await;
    manager.open().await.unwrap();
    manager.close().await.unwrap();
    manager.open().await.unwrap();
    assert_eq!(sim.log().ready_identifies().count(), 4);
    assert!(manager.wait().now_or_never_pending().await);
    manager.close().await.unwrap();
    timeout(LIMIT, manager.wait()).await.unwrap().unwrap();
    sim.shutdown().await;
}

/// `true` if the future is still pending after the runtime idles a moment.
trait PendingExt: std::future::Future + Sized {
    async fn now_or_never_pending(self) -> bool {
        tokio::select! {
            _ = self => false,
            () = tokio::time::sleep(Duration::from_millis(50)) => true,
        }
    }
}

impl<F: std::future::Future> PendingExt for F {}

#[tokio::test]
async fn restarting_one_shard_leaves_the_others_delivering() {
    let sim = sim_with(2).await;
    let manager = manager(&sim).await;
    let mut rx = manager.bus().subscribe::<Msg>();
    manager.open().await.unwrap();
    let mut stages = manager.bus().subscribe::<ShardStage>();
    let on = |shard: u32| guild_on(&sim, &manager, shard);
    let (g0, g1) = (on(0), on(1));

    let restart = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.restart(1).await })
    };
    // Shard 0 delivers while shard 1 goes down and comes back.
    for i in 0..20 {
        send(&sim, g0, i);
        let got = recv(&mut rx, 1).await;
        assert_eq!(got[0].content, format!("m{i}"));
        assert_eq!(got[0].meta.shard, ShardId(0));
    }
    restart.await.unwrap().unwrap();
    // The new session's Ready, then its stage.
    timeout(LIMIT, async {
        loop {
            let stage = stages.recv().await.unwrap();
            let ready = sim
                .log()
                .ready_identifies()
                .filter(|i| i.shard.id == 1)
                .count();
            if stage.shard == ShardId(1) && stage.stage == Stage::Connected && ready == 2 {
                return;
            }
        }
    })
    .await
    .unwrap();
    send(&sim, g1, 100);
    assert_eq!(recv(&mut rx, 1).await[0].meta.shard, ShardId(1));
    let shard1: Vec<_> = sim
        .log()
        .ready_identifies()
        .filter(|i| i.shard.id == 1)
        .map(|i| i.connection)
        .collect();
    assert_eq!(shard1.len(), 2, "a new session for shard 1");
    assert_eq!(
        sim.log()
            .ready_identifies()
            .filter(|i| i.shard.id == 0)
            .count(),
        1,
        "shard 0 untouched"
    );
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_one_shard_with_the_code_given() {
    let sim = sim_with(2).await;
    let manager = manager(&sim).await;
    manager.open().await.unwrap();
    manager.shutdown(1, CloseCode::UNKNOWN_ERROR).await.unwrap();
    assert_eq!(manager.shards_instantiated(), [ShardId(0)]);
    assert!(manager.info(1).is_none());
    let log = sim
        .wait_for_log(LIMIT, |log| {
            log.connections_for_shard(1).any(|c| c.closed.is_some())
        })
        .await
        .unwrap();
    let closed = log
        .connections_for_shard(1)
        .find_map(|c| c.closed.clone())
        .unwrap();
    assert_eq!(closed.code, Some(4000));
    assert_eq!(manager.info(0).unwrap().stage, Stage::Connected);
    assert!(matches!(
        manager.shutdown(7, CloseCode::NORMAL).await,
        Err(ManagerError::NoSuchShard(ShardId(7)))
    ));
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_4011_rescales_to_the_new_count_and_events_flow_on_the_new_set() {
    let sim = resharding_sim().await;
    let manager = manager(&sim).await;
    let mut rescaled = manager.bus().subscribe::<Rescaled>();
    let mut rx = manager.bus().subscribe::<Msg>();
    manager.open().await.unwrap();
    let waiting = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.wait().await })
    };

    sim.reshard(4).unwrap();
    sim.fault(FaultTarget::All, Fault::Close(4011));
    let event = timeout(LIMIT, rescaled.recv()).await.unwrap().unwrap();
    assert_eq!(
        *event,
        Rescaled {
            old: 2,
            new: 4,
            rolling: false
        }
    );
    timeout(LIMIT, async {
        while manager.shards_instantiated().len() != 4
            || (0..4).any(|id| manager.info(id).is_none_or(|i| i.stage != Stage::Connected))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(manager.num_shards(), 4);
    let guilds = sim.guild_ids();
    for (i, guild) in guilds.iter().enumerate() {
        send(&sim, *guild, i as u64);
    }
    let got = recv(&mut rx, guilds.len()).await;
    let shards: BTreeSet<_> = got.iter().map(|m| m.meta.shard.0).collect();
    assert_eq!(shards, (0..4).collect(), "every new shard delivers");
    assert!(!waiting.is_finished(), "a rescale is not the end");
    assert!(manager.fatal_error().is_none());
    manager.close().await.unwrap();
    timeout(LIMIT, waiting).await.unwrap().unwrap().unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn the_hook_and_handlers_can_call_the_manager() {
    let sim = sim_with(2).await;
    let built = Arc::new(AtomicU32::new(0));
    let manager = manager_with(&sim, {
        let built = built.clone();
        move |manager, config| {
            // Inside the hook: no lock is held.
            assert_eq!(manager.num_shards(), 2);
            assert!(manager.shard(0).is_none());
            manager.for_each(|_| {});
            built.fetch_add(1, Ordering::Relaxed);
            config
        }
    })
    .await;
    assert_eq!(built.load(Ordering::Relaxed), 2);
    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let _handler = manager.bus().add_handler({
        let manager = manager.clone();
        move |msg: Arc<Msg>| {
            let manager = manager.clone();
            let tx = tx.clone();
            async move {
                let info = manager.info(msg.meta.shard.0);
                let mut open = 0;
                manager.for_each(|_| open += 1);
                let _ = tx.send((info.map(|i| i.stage), open));
            }
        }
    });
    manager.open().await.unwrap();
    let guild = sim.guild_ids()[0];
    send(&sim, guild, 1);
    let (stage, open) = timeout(LIMIT, seen.recv()).await.unwrap().unwrap();
    assert_eq!(stage, Some(Stage::Connected));
    assert_eq!(open, 2);
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_session_runs_every_shard_of_its_manager() {
    let sim = sim_with(3).await;
    let session = Arc::new(shardbus::Session::with_manager(manager(&sim).await));
    assert!(!session.gateway_is_alive(), "nothing open yet");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let session = session.clone();
        tokio::spawn(async move {
            session
                .connect(async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    timeout(LIMIT, async {
        while !session.gateway_is_alive()
            || (0..3).any(|id| {
                session
                    .manager()
                    .info(id)
                    .is_none_or(|i| i.stage != Stage::Connected)
            })
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(sim.log().ready_identifies().count(), 3);
    // A shard shut down on purpose leaves the set; the others keep the
    // session alive.
    session
        .manager()
        .shutdown(2, CloseCode::NORMAL)
        .await
        .unwrap();
    session
        .manager()
        .for_each(|s| assert_ne!(s.id(), ShardId(2)));
    assert!(session.gateway_is_alive());
    stop.send(()).unwrap();
    timeout(LIMIT, running).await.unwrap().unwrap().unwrap();
    assert!(!session.gateway_is_alive());
    // Open after close works, with new sessions for every shard.
    timeout(LIMIT, session.open()).await.unwrap().unwrap();
    assert!(session.gateway_is_alive());
    assert_eq!(sim.log().ready_identifies().count(), 6);
    session.close().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn each_shard_posts_in_its_seq_order_and_a_stalled_type_holds_back_only_its_shard() {
    let sim = sim_with(2).await;
    let bus = TypeMux::with_capacity(shardbus::DEFAULT_CAPACITY);
    let manager = manager_on(&sim, Some(bus), |_, config| {
        config.intents(Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::GUILD_MESSAGE_TYPING)
    })
    .await;
    let mut rx = manager.bus().subscribe::<Msg>();
    // Subscribed and never read: shard 0's typing events stall shard 0 once
    // its ring (128) is full.
    let stalled = manager.bus().subscribe::<shardbus::model::TypingStart>();
    manager.open().await.unwrap();
    let on = |shard: u32| guild_on(&sim, &manager, shard);
    let (g0, g1) = (on(0), on(1));
    for i in 0..200u64 {
        let sent = sim.dispatch(
            g0,
            "TYPING_START",
            serde_json::json!({
                "channel_id": "1", "guild_id": g0.0.to_string(),
                "user_id": "5", "timestamp": 1_700_000_000 + i
            }),
        );
        assert_eq!(sent, 1);
    }
    // The ring fills: 128 typing events, then the shard waits.
    timeout(LIMIT, async {
        while manager.info(0).unwrap().events < 128 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    // Shard 1 keeps delivering, in its seq order.
    let mut last = None;
    for i in 0..300u64 {
        send(&sim, g1, i);
        let msg = recv(&mut rx, 1).await.pop().unwrap();
        assert_eq!(msg.meta.shard, ShardId(1));
        assert_eq!(msg.content, format!("m{i}"));
        assert!(last < Some(msg.meta.seq), "seq order");
        last = Some(msg.meta.seq);
    }
    // Shard 0 is held back, still heartbeating and connected.
    assert_eq!(manager.info(0).unwrap().stage, Stage::Connected);
    assert!(
        manager.info(0).unwrap().events < 201,
        "shard 0 stopped reading"
    );
    // Closing delivers what was read, so the stalled reader must go first.
    drop(stalled);
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_rolling_rescale_switches_sets_without_losing_or_repeating_an_event() {
    let sim = Arc::new(resharding_sim().await);
    let manager = manager(&sim).await;
    let mut rescaled = manager.bus().subscribe::<Rescaled>();
    let mut rx = manager.bus().subscribe::<Msg>();
    manager.open().await.unwrap();

    // Steady traffic over every guild, before, during and after the switch.
    const N: u64 = 1500;
    let sender = {
        let sim = sim.clone();
        tokio::spawn(async move {
            let guilds = sim.guild_ids();
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            for i in 0..N {
                tick.tick().await;
                let guild = guilds[i as usize % guilds.len()];
                assert!(send(&sim, guild, i) >= 1, "some session owns the guild");
            }
        })
    };
    let mut counts = BTreeMap::<String, u32>::new();
    for msg in recv(&mut rx, 200).await {
        *counts.entry(msg.content.clone()).or_default() += 1;
    }
    sim.reshard(4).unwrap();
    let rescale = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.rescale().await })
    };
    // Read while the rescale runs, so no set waits on this reader.
    while counts.len() < N as usize {
        let msg = timeout(LIMIT, rx.recv()).await.unwrap().unwrap();
        *counts.entry(msg.content.clone()).or_default() += 1;
    }
    sender.await.unwrap();
    timeout(LIMIT, rescale).await.unwrap().unwrap().unwrap();
    assert_eq!(
        *timeout(LIMIT, rescaled.recv()).await.unwrap().unwrap(),
        Rescaled {
            old: 2,
            new: 4,
            rolling: true
        }
    );
    assert_eq!(manager.num_shards(), 4);
    // A last message on every new shard: a late copy on that shard would
    // arrive before it.
    for shard in 0..4u32 {
        let guild = guild_on(&sim, &manager, shard);
        send(&sim, guild, 10_000 + u64::from(shard));
    }
    let mut last = BTreeSet::new();
    while last.len() < 4 {
        let msg = timeout(LIMIT, rx.recv()).await.unwrap().unwrap();
        if msg.content.starts_with("m1000") {
            last.insert(msg.meta.shard);
        } else {
            *counts.entry(msg.content.clone()).or_default() += 1;
        }
    }
    let lost = (0..N)
        .filter(|i| !counts.contains_key(&format!("m{i}")))
        .count();
    let repeated: u32 = counts.values().map(|n| n - 1).sum();
    println!("rolling rescale 2 -> 4 with {N} messages: lost {lost}, repeated {repeated}");
    assert_eq!((lost, repeated), (0, 0));
    let totals: BTreeSet<u32> = sim
        .log()
        .ready_identifies()
        .map(|i| i.shard.total)
        .collect();
    assert_eq!(
        totals,
        BTreeSet::from([2, 4]),
        "the old sessions were not 4011'd"
    );
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn the_cache_is_fed_by_every_shard_and_a_restart_resets_only_its_own() {
    use shardbus::State;
    use shardbus::model::GuildCreate;
    use shardbus::state::Cache;

    let sim = sim_with(2).await;
    let (manager, cache) = cached_manager(&sim, config(&sim)).await;
    // A handler reads the state after its event, through the extractor.
    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let _handler =
        manager
            .bus()
            .add_handler(move |guild: Arc<GuildCreate>, State(cache): State<Cache>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(cache.guild(guild.id).is_some());
                }
            });
    manager.open().await.unwrap();
    let owned = |shard: u32| owned_ids(&sim, shard, 2);
    let cached = |shard: u32| cached_ids(&cache, shard);
    for _ in 0..16 {
        assert!(timeout(LIMIT, seen.recv()).await.unwrap().unwrap());
    }
    assert_eq!(cached(0), owned(0));
    assert_eq!(cached(1), owned(1));

    manager.restart(1).await.unwrap();
    timeout(LIMIT, async {
        while sim
            .log()
            .ready_identifies()
            .filter(|i| i.shard.id == 1)
            .count()
            < 2
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(cached(0), owned(0), "shard 0's guilds stay");
    for _ in 0..owned(1).len() {
        assert!(timeout(LIMIT, seen.recv()).await.unwrap().unwrap());
    }
    assert_eq!(cached(1), owned(1), "shard 1's come back");
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn the_fetched_queue_keeps_the_daily_budget_and_queued_shards_show_it() {
    let sim = sim(SimConfig {
        shards: 4,
        guilds: 16,
        session_start_limit: shardbus_sim::SessionStartLimit {
            total: 3,
            remaining: 3,
            reset_after: Duration::from_secs(3600),
        },
        ..test_config()
    })
    .await;
    let manager = manager(&sim).await;
    let mut stages = manager.bus().subscribe::<ShardStage>();
    let opening = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.open().await })
    };
    // Three sessions start; the fourth waits for the reset, and says so on
    // the bus while it waits.
    let mut queued = BTreeSet::new();
    let mut connected = BTreeSet::new();
    timeout(LIMIT, async {
        while connected.len() < 3
            || (0..4).any(|id| !connected.contains(&id) && !queued.contains(&id))
        {
            let stage = stages.recv().await.unwrap();
            match stage.stage {
                Stage::Queued => queued.insert(stage.shard.0),
                Stage::Connected => connected.insert(stage.shard.0),
                _ => false,
            };
        }
    })
    .await
    .unwrap();
    let waiting: Vec<u32> = (0..4)
        .filter(|&id| manager.info(id).unwrap().stage == Stage::Queued)
        .collect();
    assert_eq!(waiting.len(), 1, "one shard waits for the budget");
    assert_eq!(connected.len(), 3);
    assert!(!opening.is_finished());
    let log = sim.log();
    assert_eq!(log.identifies.len(), 3, "no identify past the budget");
    assert!(log.identifies.iter().all(|i| !matches!(
        i.outcome,
        shardbus_sim::IdentifyOutcome::SessionLimitExhausted
    )));
    opening.abort();
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn the_managers_own_bus_has_room_for_bursts_of_many_shards() {
    let sim = sim_with(2).await;
    // A bus of the manager's making holds BUS_CAPACITY per subscriber...
    let manager = manager(&sim).await;
    assert_eq!(manager.bus().capacity(), BUS_CAPACITY);
    assert!(manager.bus().capacity() > TypeMux::new().capacity());
    // ...and one given to it is used as it is.
    let given = manager_on(&sim, Some(TypeMux::with_capacity(8)), |_, c| c).await;
    assert_eq!(given.bus().capacity(), 8);
    sim.shutdown().await;
}

#[tokio::test]
async fn after_a_rescale_the_cache_holds_each_guild_in_its_new_shards_store() {
    let sim = resharding_sim().await;
    // The model's MESSAGE_CREATE (the cache's), not the tests' own `Msg`.
    let identify = GatewayConfig::new(sim.token(), Intents::GUILDS | Intents::GUILD_MESSAGES)
        .gateway_url(sim.gateway_url())
        .reconnect_backoff_max(Duration::from_millis(200));
    let (manager, cache) = cached_manager(&sim, identify).await;
    let mut rx = manager.bus().subscribe::<shardbus::model::MessageCreate>();
    manager.open().await.unwrap();
    let full = || {
        let stats = cache.stats();
        stats.guilds == 16 && stats.unavailable_guilds == 0
    };
    eventually("every guild", &full).await;
    let owned = |shard: u32, total: u32| owned_ids(&sim, shard, total);
    let cached = |shard: u32| cached_ids(&cache, shard);

    // Rolling: the new set's Ready and GUILD_CREATEs are muted, so without
    // a hand-over shards 2 and 3 would have empty stores, and their guilds
    // would sit in the stores of shards 0 and 1.
    sim.reshard(4).unwrap();
    timeout(LIMIT, manager.rescale()).await.unwrap().unwrap();
    assert_eq!(manager.num_shards(), 4);
    for shard in 0..4 {
        assert_eq!(cached(shard), owned(shard, 4), "store of shard {shard}");
    }
    // Events of the new set land in the store that holds their guild: one
    // message per guild, in a channel of its own.
    for (i, guild) in sim.guild_ids().into_iter().enumerate() {
        let mut data = message(i as u64);
        data["guild_id"] = serde_json::Value::String(guild.to_string());
        data["channel_id"] = serde_json::Value::String((guild.0 + 1).to_string());
        assert!(sim.dispatch(guild, "MESSAGE_CREATE", data) >= 1);
    }
    for _ in 0..16 {
        timeout(LIMIT, rx.recv()).await.unwrap().unwrap();
    }
    for shard in 0..4u32 {
        assert_eq!(
            cache.shard_stats(ShardId(shard)).messages,
            owned(shard, 4).len(),
            "messages in the store of shard {shard}"
        );
    }
    // A new session on shard 1 starts over shard 1's guilds only: guilds
    // that moved to shard 3 are not in its store any more.
    manager.restart(1).await.unwrap();
    let back = || {
        sim.log()
            .ready_identifies()
            .filter(|i| i.shard.id == 1 && i.shard.total == 4)
            .count()
            >= 2
            && full()
    };
    eventually("shard 1's guilds again", &back).await;
    for shard in 0..4 {
        assert_eq!(cached(shard), owned(shard, 4), "store of shard {shard}");
    }
    assert_eq!(cache.shard_stats(ShardId(3)).messages, owned(3, 4).len());
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn a_new_process_resumes_the_sessions_the_last_one_kept() {
    let sim = sim_with(2).await;
    let first = manager(&sim).await;
    let mut rx = first.bus().subscribe::<Msg>();
    first.open().await.unwrap();
    let guild = guild_on(&sim, &first, 0);
    for i in 0..5 {
        send(&sim, guild, i);
    }
    recv(&mut rx, 5).await;
    let kept: BTreeMap<u32, shardbus::gateway::ResumeInfo> = (0..2)
        .map(|id| (id, first.shard(id).unwrap().session().unwrap()))
        .collect();
    first.close_resumable().await.unwrap();
    drop(rx);
    // Sent while no process runs the shard: the sim keeps them for a resume.
    for i in 5..8 {
        send(&sim, guild, i);
    }
    let identifies = sim.log().ready_identifies().count();
    assert_eq!(identifies, 2);

    // Shard 0 resumes what was kept; shard 1 is given a session the
    // gateway does not know, and identifies instead.
    let kept_for_hook = kept.clone();
    let second = manager_with(&sim, move |_, config| {
        let mut session = kept_for_hook[&config.shard_id().0].clone();
        if config.shard_id().0 == 1 {
            session.session_id = shardbus::model::SessionId("expired".into());
        }
        config.resume(session)
    })
    .await;
    let mut rx = second.bus().subscribe::<Msg>();
    second.open().await.unwrap();
    let replayed: Vec<String> = recv(&mut rx, 3)
        .await
        .iter()
        .map(|m| m.content.clone())
        .collect();
    assert_eq!(replayed, ["m5", "m6", "m7"], "what followed the kept seq");
    let log = sim.log();
    let resumed: Vec<&str> = log
        .resumes
        .iter()
        .filter(|r| matches!(r.outcome, shardbus_sim::ResumeOutcome::Resumed { .. }))
        .map(|r| r.session_id.as_str())
        .collect();
    assert_eq!(resumed, [kept[&0].session_id.as_str()]);
    assert!(
        log.resumes.iter().any(|r| r.session_id == "expired"
            && r.outcome == shardbus_sim::ResumeOutcome::UnknownSession)
    );
    let new: Vec<u32> = log
        .ready_identifies()
        .skip(identifies)
        .map(|i| i.shard.id)
        .collect();
    assert_eq!(
        new,
        [1],
        "only the shard whose session was unknown identifies"
    );
    drop(log);
    // A restart of the shard does not resume the old session again.
    second.restart(0).await.unwrap();
    let session = || second.shard(0).and_then(|s| s.session());
    eventually("the restarted shard's session", &|| session().is_some()).await;
    assert_ne!(session().unwrap().session_id, kept[&0].session_id);
    let tries = sim
        .log()
        .resumes
        .iter()
        .filter(|r| r.session_id == kept[&0].session_id.as_str())
        .count();
    assert_eq!(tries, 1, "the kept session was tried once");
    second.close().await.unwrap();
    sim.shutdown().await;
}
