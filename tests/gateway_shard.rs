//! One shard against the simulator over real loopback sockets: identify,
//! ready, dispatches, resumes after faults, close codes, compression.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::gateway::{
    LIMIT, Msg, Running, config, expect_messages, finish, message, message_create_event,
    resume_through, sim, start, start_with, test_config, wait_stage,
};
use serde::Deserialize;
use shardbus::TypeMux;
use shardbus::gateway::{
    DispatchMeta, GatewayConfig, GatewayError, Intents, OpCode, Shard, ShardStage, Stage,
};
use shardbus_sim::{Fault, FaultTarget, SimConfig};
use tokio::time::timeout;

/// [`test_config`] with room for user commands: at 500 ms, heartbeats alone
/// would fill the 120-per-minute budget; at 2 s, 30 beats a minute are
/// reserved and the rest is for commands.
fn command_room_config() -> SimConfig {
    SimConfig {
        heartbeat_interval: Duration::from_secs(2),
        ..test_config()
    }
}

#[tokio::test]
async fn identifies_and_delivers_dispatches_in_order_with_their_shard() {
    for compress in [true, false] {
        let sim = sim(test_config()).await;
        let bus = TypeMux::new();
        let mut stages = bus.subscribe::<ShardStage>();
        let mut messages = bus.subscribe::<Msg>();
        let shard = Shard::spawn(config(&sim).compress(compress), bus.clone());
        wait_stage(&mut stages, Stage::Connected).await;
        for i in 0..50 {
            sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(i));
        }
        let mut last_seq = 0;
        for i in 0..50 {
            let msg = timeout(LIMIT, messages.recv()).await.unwrap().unwrap();
            assert_eq!(msg.content, format!("m{i}"), "compress={compress}");
            assert_eq!(msg.meta.shard.0, 0);
            assert!(msg.meta.seq.0 > last_seq, "seqs increase");
            last_seq = msg.meta.seq.0;
        }
        shard
            .handle()
            .close(shardbus::gateway::CloseCode::NORMAL)
            .await;
        assert!(shard.join().await.is_ok());
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn raw_dispatches_carry_d_exactly_with_the_session_and_seq() {
    let sim = sim(test_config()).await;
    let bus = TypeMux::new();
    let mut stages = bus.subscribe::<ShardStage>();
    let mut raw = bus.subscribe::<shardbus::gateway::RawDispatch>();
    let mut messages = bus.subscribe::<Msg>();
    let shard = Shard::spawn(config(&sim), bus.clone());
    wait_stage(&mut stages, Stage::Connected).await;
    for i in 0..20 {
        sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(i));
    }
    let session = sim.stats().shards[0].sessions[0].session_id.clone();
    let mut got = 0;
    while got < 20 {
        let r = timeout(LIMIT, raw.recv()).await.unwrap().unwrap();
        assert_eq!(r.session_id.as_str(), session.0.as_str());
        if r.event_type.as_str() != "MESSAGE_CREATE" {
            continue;
        }
        // `d` as the sim sent it: the same JSON value, and the typed event
        // beside it has the same seq.
        let d: serde_json::Value = serde_json::from_str(&r.data).unwrap();
        assert_eq!(d, message(got));
        let typed = timeout(LIMIT, messages.recv()).await.unwrap().unwrap();
        assert_eq!(typed.meta, r.meta);
        got += 1;
    }
    shard
        .handle()
        .close(shardbus::gateway::CloseCode::NORMAL)
        .await;
    assert!(shard.join().await.is_ok());
    sim.shutdown().await;
}

#[tokio::test]
async fn resumes_after_each_fault_without_losing_or_repeating() {
    let sim = sim(test_config()).await;
    let Running {
        bus,
        mut stages,
        shard,
    } = start(&sim, TypeMux::new()).await;
    let mut messages = bus.subscribe::<Msg>();
    let mut next = 0;
    for fault in [
        Fault::Reconnect,
        Fault::Drop,
        Fault::InvalidSession { resumable: true },
        Fault::Close(4000),
        Fault::Zombie,
    ] {
        resume_through(&sim, &mut stages, fault, &mut next).await;
    }
    expect_messages(&mut messages, 0..next).await;
    assert!(messages.try_recv().is_err(), "nothing repeated");
    let log = sim.log();
    assert_eq!(
        log.identifies.len(),
        1,
        "every fault was resumed, never re-identified"
    );
    assert_eq!(log.resumes.len(), 5);
    assert!(
        log.connections[1..].iter().all(|c| c.via_resume_url),
        "resumes use resume_gateway_url"
    );
    finish(&shard, &sim).await;
}

#[tokio::test]
async fn an_invalid_token_is_fatal_and_stops_the_shard() {
    let sim = sim(test_config()).await;
    let bus = TypeMux::new();
    let mut errors = bus.subscribe::<GatewayError>();
    let shard = Shard::spawn(
        config(&sim).shard(0, 1).gateway_url(sim.gateway_url()),
        bus.clone(),
    );
    drop(shard);
    let config = GatewayConfig::new("not the token", Intents::GUILDS)
        .gateway_url(sim.gateway_url())
        .shard(0, sim.config().shards);
    let shard = Shard::spawn(config, bus.clone());
    let result = timeout(LIMIT, shard.join()).await.unwrap();
    let err = result.unwrap_err();
    assert!(err.fatal);
    assert!(err.to_string().contains("4004"), "{err}");
    assert!(!err.to_string().contains("not the token"));
    // It was posted too.
    loop {
        let posted = timeout(LIMIT, errors.recv()).await.unwrap().unwrap();
        if posted.fatal {
            break;
        }
    }
    sim.shutdown().await;
}

fn heartbeats(conn: &shardbus_sim::ConnectionLog) -> Vec<Duration> {
    conn.events
        .iter()
        .filter(|e| matches!(e.kind, shardbus_sim::ClientEventKind::Heartbeat { .. }))
        .map(|e| e.at)
        .collect()
}

#[tokio::test]
async fn an_unresumable_invalid_session_and_4003_4007_4009_start_new_sessions() {
    let sim = sim(test_config()).await;
    let Running {
        bus,
        mut stages,
        shard,
    } = start(&sim, TypeMux::new()).await;
    let mut messages = bus.subscribe::<Msg>();
    let faults = [
        Fault::InvalidSession { resumable: false },
        Fault::Close(4003),
        Fault::Close(4007),
        Fault::Close(4009),
    ];
    for (next, fault) in (0u64..).zip(faults) {
        sim.fault(FaultTarget::Shard(0), fault);
        wait_stage(&mut stages, Stage::Identifying).await;
        wait_stage(&mut stages, Stage::Connected).await;
        // A new session has no replay: read this one before the next fault.
        sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(next));
        expect_messages(&mut messages, next..next + 1).await;
    }
    let log = sim.log();
    assert_eq!(log.identifies.len(), 5, "one identify per new session");
    assert!(log.resumes.is_empty());
    assert!(
        log.bucket_violations.is_empty(),
        "identifies went through the queue"
    );
    finish(&shard, &sim).await;
}

#[tokio::test]
async fn fatal_close_codes_stop_the_shard_without_retrying() {
    for code in [4004u16, 4010, 4011, 4012, 4013, 4014] {
        let sim = sim(test_config()).await;
        let Running {
            bus: _,
            stages: _,
            shard,
        } = start(&sim, TypeMux::new()).await;
        sim.fault(FaultTarget::Shard(0), Fault::Close(code));
        let err = timeout(LIMIT, shard.join()).await.unwrap().unwrap_err();
        assert!(err.fatal, "{code}");
        assert!(err.to_string().contains(&code.to_string()), "{err}");
        assert_eq!(sim.log().connections.len(), 1, "{code}: no reconnect");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn bad_input_is_reported_and_survived() {
    let sim = sim(test_config()).await;
    let Running {
        bus,
        stages: _,
        shard,
    } = start(&sim, TypeMux::new()).await;
    let mut errors = bus.subscribe::<GatewayError>();
    let mut unknown = bus.subscribe::<shardbus::gateway::UnknownDispatch>();
    let mut messages = bus.subscribe::<Msg>();
    for fault in [
        Fault::Malformed,
        Fault::UnknownOpcode,
        Fault::UnknownDispatch,
    ] {
        sim.fault(FaultTarget::Shard(0), fault);
    }
    sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(0));
    // A dispatch that does not match its registered type.
    sim.dispatch_to_shard(
        0,
        "MESSAGE_CREATE",
        serde_json::json!({"guild_id": "1", "content": 5}),
    );
    sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(1));
    expect_messages(&mut messages, 0..2).await;
    let unknown = timeout(LIMIT, async {
        loop {
            let event = unknown.recv().await.unwrap();
            if event.event_type.as_str() == "SHARDBUS_SIM_UNKNOWN" {
                return event;
            }
        }
    })
    .await
    .unwrap();
    assert!(unknown.meta.seq.0 > 0);
    let mut kinds = Vec::new();
    while let Ok(e) = errors.try_recv() {
        assert!(!e.fatal);
        kinds.push(e.to_string());
    }
    assert!(kinds.iter().any(|k| k.contains("malformed")), "{kinds:?}");
    assert!(
        kinds.iter().any(|k| k.contains("unknown opcode 99")),
        "{kinds:?}"
    );
    assert!(
        kinds.iter().any(|k| k.contains("MESSAGE_CREATE dispatch")),
        "{kinds:?}"
    );
    assert_eq!(
        sim.log().connections.len(),
        1,
        "none of it cost the connection"
    );
    finish(&shard, &sim).await;
}

#[tokio::test]
async fn a_slow_subscriber_stalls_reading_but_not_heartbeats() {
    let sim = sim(test_config()).await;
    let Running {
        bus,
        stages: _,
        shard,
    } = start(&sim, TypeMux::with_capacity(4)).await;
    let mut slow = bus.subscribe::<Msg>();
    for i in 0..200 {
        sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(i));
    }
    // Several heartbeat intervals with nobody reading.
    let log = sim
        .wait_for_log(LIMIT, |log| heartbeats(&log.connections[0]).len() >= 5)
        .await
        .unwrap();
    assert_eq!(
        log.connections.len(),
        1,
        "no zombie reconnect while stalled"
    );
    let beats = heartbeats(&log.connections[0]);
    assert!(beats.len() >= 5, "heartbeats continued: {beats:?}");
    expect_messages(&mut slow, 0..200).await;
    finish(&shard, &sim).await;
}

#[tokio::test]
async fn the_first_heartbeat_is_jittered_within_the_interval() {
    let sim = sim(test_config()).await;
    let Running {
        bus: _,
        mut stages,
        shard,
    } = start(&sim, TypeMux::new()).await;
    // Each connection lives until it has sent its first beat.
    for n in 1..=6 {
        sim.wait_for_log(LIMIT, |log| {
            log.connections.len() == n && !heartbeats(&log.connections[n - 1]).is_empty()
        })
        .await
        .unwrap();
        if n == 6 {
            break;
        }
        sim.fault(FaultTarget::Shard(0), Fault::Reconnect);
        wait_stage(&mut stages, Stage::Resuming).await;
        wait_stage(&mut stages, Stage::Connected).await;
    }
    let interval = sim.config().heartbeat_interval;
    let firsts: Vec<_> = sim
        .log()
        .connections
        .iter()
        .filter_map(|c| heartbeats(c).first().map(|at| *at - c.opened_at))
        .collect();
    assert!(firsts.len() >= 5, "{firsts:?}");
    for first in &firsts {
        assert!(
            *first <= interval + Duration::from_millis(200),
            "{firsts:?}"
        );
    }
    let spread = firsts
        .iter()
        .max()
        .unwrap()
        .saturating_sub(*firsts.iter().min().unwrap());
    assert!(
        spread > Duration::from_millis(20),
        "first beats are jittered: {firsts:?}"
    );
    finish(&shard, &sim).await;
}

#[tokio::test]
async fn a_presence_flood_stays_under_the_gateway_limit() {
    let sim = sim(command_room_config()).await;
    let Running {
        bus: _,
        stages: _,
        shard,
    } = start(&sim, TypeMux::new()).await;
    let handle = shard.handle().clone();
    let flood = tokio::spawn(async move {
        for i in 0..300 {
            let presence = shardbus::gateway::UpdatePresence {
                status: "online".into(),
                activities: vec![serde_json::json!({"name": format!("n{i}"), "type": 0})],
                ..Default::default()
            };
            if handle.update_presence(&presence).await.is_err() {
                break;
            }
        }
    });
    let is_command = |e: &shardbus_sim::ClientEvent| {
        matches!(e.kind, shardbus_sim::ClientEventKind::Command { .. })
    };
    let log = sim
        .wait_for_log(LIMIT, |log| {
            let conn = &log.connections[0];
            conn.events.iter().filter(|e| is_command(e)).count() >= 80
                && heartbeats(conn).len() >= 2
        })
        .await
        .unwrap();
    let conn = &log.connections[0];
    assert!(
        conn.closed.is_none(),
        "not closed (no 4008): {:?}",
        conn.closed
    );
    let sent = conn.events.len();
    assert!(sent <= 120, "{sent} payloads in under a minute");
    let commands = conn.events.iter().filter(|e| is_command(e)).count();
    assert!(commands >= 80, "the budget was used: {commands}");
    assert!(
        commands < 120 - 30,
        "the heartbeat reserve was kept: {commands}"
    );
    assert!(heartbeats(conn).len() >= 2, "heartbeats kept their room");
    flood.abort();
    finish(&shard, &sim).await;
}

#[tokio::test]
async fn oversized_commands_are_refused_before_sending() {
    let sim = sim(test_config()).await;
    let Running {
        bus: _,
        stages: _,
        shard,
    } = start(&sim, TypeMux::new()).await;
    let huge = serde_json::json!({"x": "y".repeat(5000)});
    let err = shard
        .handle()
        .send_raw(OpCode::PresenceUpdate, huge)
        .await
        .unwrap_err();
    assert!(
        matches!(err, shardbus::gateway::CommandError::TooLarge { .. }),
        "{err}"
    );
    finish(&shard, &sim).await;
}

/// 20,000 messages with a random fault every ~500: nothing lost, nothing
/// repeated, all in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_twenty_thousand_messages_through_random_faults() {
    const TOTAL: u64 = 20_000;
    let sim = sim(test_config()).await;
    let Running { bus, stages, shard } = start(&sim, TypeMux::new()).await;
    let mut messages = bus.subscribe::<Msg>();
    drop(stages);
    let observer = sim.clone();
    let progress = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = progress.clone();
    let reader = tokio::spawn(async move {
        let mut next = 0u64;
        let mut last_seq = 0;
        while next < TOTAL {
            let msg = timeout(LIMIT, messages.recv())
                .await
                .unwrap_or_else(|_| {
                    let log = observer.log();
                    let ends: Vec<_> = log.connections.iter().map(|c| (&c.closed, c.via_resume_url)).collect();
                    panic!(
                        "stuck after {next} messages; identifies {}, resumes {}, connections {ends:?}",
                        log.identifies.len(),
                        log.resumes.len()
                    )
                })
                .unwrap();
            assert_eq!(msg.content, format!("m{next}"), "lost or reordered");
            assert!(msg.meta.seq.0 > last_seq || msg.meta.seq.0 < 5, "seq order");
            last_seq = msg.meta.seq.0;
            next += 1;
            seen.store(next, std::sync::atomic::Ordering::Relaxed);
        }
        assert!(
            timeout(Duration::from_millis(500), messages.recv())
                .await
                .is_err(),
            "a message was repeated"
        );
        next
    });
    let faults = [
        Fault::Reconnect,
        Fault::InvalidSession { resumable: true },
        Fault::Drop,
        Fault::Zombie,
    ];
    let mut injected = [0usize; 4];
    for i in 0..TOTAL {
        sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(i));
        if i % 500 == 250 {
            // Let the shard catch up, so the fault hits a live connection
            // with traffic in flight rather than one already reconnecting.
            while progress.load(std::sync::atomic::Ordering::Relaxed) + 200 < i {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let k = fastrand::usize(..faults.len());
            sim.fault(FaultTarget::Shard(0), faults[k]);
            injected[k] += 1;
        }
        if i % 100 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let delivered = timeout(Duration::from_secs(120), reader)
        .await
        .unwrap()
        .unwrap();
    let log = sim.log();
    println!(
        "chaos: {delivered} of {TOTAL} delivered once and in order; faults injected \
         (reconnect, invalid_session, drop, zombie) = {injected:?}; connections {}, \
         identifies {}, resumes {}",
        log.connections.len(),
        log.identifies.len(),
        log.resumes.len()
    );
    assert_eq!(delivered, TOTAL);
    assert_eq!(log.identifies.len(), 1, "every fault was resumed");
    assert!(log.resumes.len() >= 15, "the faults hit live connections");
    finish(&shard, &sim).await;
}

#[tokio::test]
async fn requested_members_arrive_as_a_chunk_with_the_nonce() {
    let sim = sim(command_room_config()).await;
    let Running {
        bus,
        stages: _,
        shard,
    } = start(&sim, TypeMux::new()).await;
    let mut chunks = bus.subscribe::<shardbus::model::GuildMembersChunk>();
    let guild = sim.guilds_for_shard(0, 1)[0];
    let request = shardbus::gateway::RequestGuildMembers {
        guild_id: shardbus::model::GuildId(guild.0),
        query: Some(String::new()),
        limit: 0,
        nonce: Some("n-1".into()),
        ..Default::default()
    };
    shard
        .handle()
        .request_guild_members(&request)
        .await
        .unwrap();
    let chunk = timeout(LIMIT, chunks.recv()).await.unwrap().unwrap();
    assert_eq!(chunk.guild_id.get(), guild.0);
    assert_eq!(chunk.nonce.as_deref(), Some("n-1"));
    assert!(!chunk.members.is_empty());
    finish(&shard, &sim).await;
}

/// The most payloads a client sent within any 60-second window of a
/// connection, as the server read them.
fn max_in_window(conn: &shardbus_sim::ConnectionLog) -> usize {
    let times: Vec<Duration> = conn.events.iter().map(|e| e.at).collect();
    let mut max = 0;
    let mut start = 0;
    for (end, at) in times.iter().enumerate() {
        while *at - times[start] >= Duration::from_secs(60) {
            start += 1;
        }
        max = max.max(end + 1 - start);
    }
    max
}

fn presence(i: usize) -> shardbus::gateway::UpdatePresence {
    shardbus::gateway::UpdatePresence {
        status: "online".into(),
        activities: vec![serde_json::json!({"name": format!("n{i}"), "type": 0})],
        ..Default::default()
    }
}

#[tokio::test]
async fn close_and_commands_are_not_starved_by_unlimited_traffic() {
    let sim = sim(SimConfig {
        rate: f64::INFINITY,
        ..command_room_config()
    })
    .await;
    let bus = TypeMux::new();
    let mut stages = bus.subscribe::<ShardStage>();
    let mut messages = bus.subscribe::<Msg>();
    let shard = Shard::spawn(config(&sim), bus.clone());
    wait_stage(&mut stages, Stage::Connected).await;
    // A reader keeps the bus flowing, so the socket always has a frame.
    let reader = tokio::spawn(async move {
        let mut n = 0u64;
        while messages.recv().await.is_some() {
            n += 1;
        }
        n
    });
    sim.wait_for_stats(LIMIT, |stats| stats.generated >= 2_000)
        .await
        .unwrap();
    // A command is sent within its slot while traffic runs.
    shard.handle().update_presence(&presence(0)).await.unwrap();
    sim.wait_for_log(LIMIT, |log| {
        log.connections[0]
            .events
            .iter()
            .any(|e| matches!(e.kind, shardbus_sim::ClientEventKind::Command { op: 3, .. }))
    })
    .await
    .unwrap();
    // And a close is answered promptly.
    timeout(
        Duration::from_secs(5),
        shard.handle().close(shardbus::gateway::CloseCode::NORMAL),
    )
    .await
    .expect("close returned under full traffic");
    assert!(timeout(LIMIT, shard.join()).await.unwrap().is_ok());
    bus.stop().await;
    assert!(reader.await.unwrap() > 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_outgoing_limit_holds_through_command_and_heartbeat_floods() {
    let sim = sim(command_room_config()).await;
    let Running {
        bus: _,
        mut stages,
        shard,
    } = start(&sim, TypeMux::new()).await;
    let handle = shard.handle().clone();
    let flood = tokio::spawn(async move {
        for i in 0..400 {
            if handle.update_presence(&presence(i)).await.is_err() {
                break;
            }
        }
    });
    // The server asks for far more heartbeats than the window holds, on
    // this connection and, after a reconnect, on the next.
    for round in 0..2 {
        for _ in 0..150 {
            sim.fault(FaultTarget::Shard(0), Fault::HeartbeatRequest);
        }
        sim.wait_for_log(LIMIT, |log| {
            log.connections
                .get(round)
                .is_some_and(|c| c.events.len() >= 90)
        })
        .await
        .unwrap();
        if round == 0 {
            sim.fault(FaultTarget::Shard(0), Fault::Reconnect);
            wait_stage(&mut stages, Stage::Resuming).await;
            wait_stage(&mut stages, Stage::Connected).await;
        }
    }
    let log = sim.log();
    for conn in &log.connections {
        assert!(
            max_in_window(conn) <= 120 && conn.max_in_window <= 120,
            "{} payloads in one window (the sim counted {})",
            max_in_window(conn),
            conn.max_in_window
        );
        assert_ne!(conn.closed.as_ref().and_then(|c| c.code), Some(4008));
    }
    flood.abort();
    finish(&shard, &sim).await;
}

/// A dispatch type whose decoding panics on a marker: a bug in user code.
#[derive(Debug)]
struct Bomb {
    meta: DispatchMeta,
}

impl<'de> Deserialize<'de> for Bomb {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        assert!(value["content"] != "boom", "a bug in a user's model");
        Ok(Self {
            meta: DispatchMeta::default(),
        })
    }
}

message_create_event!(Bomb);

#[tokio::test]
async fn a_panicking_shard_is_a_fatal_error_not_a_clean_stop() {
    let sim = sim(test_config()).await;
    let bus = TypeMux::new();
    let mut errors = bus.subscribe::<GatewayError>();
    let _bombs = bus.subscribe::<Bomb>();
    let session =
        shardbus::Session::with_config(config(&sim).register_event::<Bomb>(), bus.clone());
    timeout(LIMIT, session.open()).await.unwrap().unwrap();
    let mut bomb = message(0);
    bomb["content"] = "boom".into();
    sim.dispatch_to_shard(0, "MESSAGE_CREATE", bomb);
    let err = timeout(LIMIT, session.wait()).await.unwrap().unwrap_err();
    assert!(err.fatal);
    assert!(
        matches!(err.kind, shardbus::gateway::GatewayErrorKind::Panicked(ref m) if m.contains("a bug")),
        "{err}"
    );
    let posted = timeout(LIMIT, async {
        loop {
            let e = errors.recv().await.unwrap();
            if e.fatal {
                return e;
            }
        }
    })
    .await
    .unwrap();
    assert!(posted.to_string().contains("panicked"), "{posted}");
    assert!(!session.gateway_is_alive());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_close_during_the_wait_after_an_invalid_session_is_prompt() {
    let sim = sim(test_config()).await;
    let Running {
        bus: _,
        mut stages,
        shard,
    } = start(&sim, TypeMux::new()).await;
    sim.fault(
        FaultTarget::Shard(0),
        Fault::InvalidSession { resumable: false },
    );
    wait_stage(
        &mut stages,
        Stage::Disconnected {
            code: Some(shardbus::gateway::CloseCode::UNKNOWN_ERROR),
            will_resume: false,
        },
    )
    .await;
    // The socket is closed and the shard waits 1-5 s: not alive.
    assert!(!shard.handle().is_alive());
    shard
        .handle()
        .close(shardbus::gateway::CloseCode::NORMAL)
        .await;
    assert!(timeout(LIMIT, shard.join()).await.unwrap().is_ok());
    let log = sim.log();
    assert_eq!(
        log.connections.len(),
        1,
        "the close ended the wait; no new connection was opened"
    );
    assert_eq!(log.identifies.len(), 1);
    sim.shutdown().await;
}

/// The stages from one `Connected` to the next.
async fn stages_until_connected(stages: &mut shardbus::EventStream<ShardStage>) -> Vec<Stage> {
    let mut seen = Vec::new();
    timeout(LIMIT, async {
        while let Some(stage) = stages.recv().await {
            seen.push(stage.stage);
            if stage.stage == Stage::Connected {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no Connected after {seen:?}"));
    seen
}

#[tokio::test]
async fn every_way_a_connection_ends_posts_the_same_stages() {
    let sim = sim(test_config()).await;
    let Running {
        bus: _,
        mut stages,
        shard,
    } = start(&sim, TypeMux::new()).await;
    for (fault, resumes) in [
        (Fault::Reconnect, true),
        (Fault::InvalidSession { resumable: true }, true),
        (Fault::Drop, true),
        (Fault::Zombie, true),
        (Fault::Close(4000), true),
        (Fault::InvalidSession { resumable: false }, false),
        (Fault::Close(4009), false),
    ] {
        sim.fault(FaultTarget::Shard(0), fault);
        let seen = stages_until_connected(&mut stages).await;
        let Some(Stage::Disconnected { will_resume, .. }) = seen.first() else {
            panic!("{fault:?}: {seen:?}");
        };
        assert_eq!(*will_resume, resumes, "{fault:?}: {seen:?}");
        let expected: &[Stage] = if resumes {
            &[Stage::Resuming, Stage::Connected]
        } else {
            &[
                Stage::Queued,
                Stage::Connecting,
                Stage::Identifying,
                Stage::Connected,
            ]
        };
        assert_eq!(&seen[1..], expected, "{fault:?}");
    }
    finish(&shard, &sim).await;
}

#[tokio::test]
async fn an_oversized_dispatch_is_reported_and_skipped_never_looped() {
    for compress in [true, false] {
        let sim = sim(test_config()).await;
        let bus = TypeMux::new();
        let mut stages = bus.subscribe::<ShardStage>();
        let mut errors = bus.subscribe::<GatewayError>();
        let mut messages = bus.subscribe::<Msg>();
        let shard = Shard::spawn(
            config(&sim).compress(compress).max_payload(64 * 1024),
            bus.clone(),
        );
        wait_stage(&mut stages, Stage::Connected).await;
        sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(0));
        let mut huge = message(99);
        huge["content"] = "x".repeat(256 * 1024).into();
        sim.dispatch_to_shard(0, "MESSAGE_CREATE", huge);
        for i in 1..20 {
            sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(i));
        }
        // Everything after it arrives, in order.
        expect_messages(&mut messages, 0..20).await;
        let too_large = timeout(LIMIT, async {
            loop {
                let e = errors.recv().await.unwrap();
                if let shardbus::gateway::GatewayErrorKind::PayloadTooLarge {
                    len,
                    limit,
                    after_seq,
                } = e.kind
                {
                    return (len, limit, after_seq);
                }
            }
        })
        .await
        .unwrap();
        let (len, limit, after_seq) = too_large;
        assert!(
            len.is_some_and(|len| len > 256 * 1024),
            "compress={compress}: {len:?}"
        );
        assert_eq!(limit, 64 * 1024);
        assert!(after_seq.is_some());
        let log = sim.log();
        assert!(
            log.resumes.len() <= 1,
            "compress={compress}: {} resumes",
            log.resumes.len()
        );
        assert_eq!(log.identifies.len(), 1);
        assert!(shard.handle().is_alive());
        finish(&shard, &sim).await;
    }
}

#[tokio::test]
async fn a_session_opens_again_after_close() {
    let sim = sim(test_config()).await;
    let bus = TypeMux::new();
    let session = shardbus::Session::with_config(config(&sim), bus.clone());
    for round in 1..=2 {
        timeout(LIMIT, session.open()).await.unwrap().unwrap();
        assert!(session.gateway_is_alive(), "round {round}");
        session.close().await;
        assert!(!session.gateway_is_alive(), "round {round}");
        assert!(session.wait().await.is_ok());
    }
    assert_eq!(sim.log().identifies.len(), 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_shards_identify_with_no_bucket_violation() {
    const SHARDS: u32 = 32;
    const CONCURRENCY: u32 = 4;
    let sim = sim(SimConfig {
        shards: SHARDS,
        max_concurrency: CONCURRENCY,
        guilds: SHARDS,
        ..test_config()
    })
    .await;
    let bus = TypeMux::new();
    let mut stages = bus.subscribe::<ShardStage>();
    // One queue for all shards, a window four times the server's.
    let queue = Arc::new(shardbus::gateway::LocalIdentifyQueue::with_window(
        CONCURRENCY,
        Duration::from_millis(100),
    ));
    let shards: Vec<Shard> = (0..SHARDS)
        .map(|id| {
            let config = config(&sim).shard(id, SHARDS).identify_queue(queue.clone());
            Shard::spawn(config, bus.clone())
        })
        .collect();
    let mut connected = std::collections::HashSet::new();
    timeout(Duration::from_secs(60), async {
        while connected.len() < SHARDS as usize {
            let stage = stages.recv().await.unwrap();
            if stage.stage == Stage::Connected {
                connected.insert(stage.shard);
            }
        }
    })
    .await
    .unwrap();
    let log = sim.log();
    assert!(
        log.bucket_violations.is_empty(),
        "{:?}",
        log.bucket_violations
    );
    assert_eq!(log.identifies.len(), SHARDS as usize, "one identify each");
    // Each bucket's identifies are spaced by the client's window (less
    // what the server's own scheduling adds), far over the server's.
    for bucket in 0..CONCURRENCY {
        let times: Vec<Duration> = log
            .identifies
            .iter()
            .filter(|i| i.bucket == bucket)
            .map(|i| i.at)
            .collect();
        assert_eq!(times.len(), (SHARDS / CONCURRENCY) as usize);
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(50), "{times:?}");
        }
    }
    for shard in &shards {
        shard
            .handle()
            .close(shardbus::gateway::CloseCode::NORMAL)
            .await;
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_second_member_request_inside_the_window_is_a_typed_rate_limit() {
    let sim = sim(command_room_config()).await;
    let Running {
        bus,
        stages: _,
        shard,
    } = start(&sim, TypeMux::new()).await;
    let mut chunks = bus.subscribe::<shardbus::model::GuildMembersChunk>();
    let mut limited = bus.subscribe::<shardbus::model::RateLimited>();
    let guild = sim.guilds_for_shard(0, 1)[0];
    let request = |nonce: &str| shardbus::gateway::RequestGuildMembers {
        guild_id: shardbus::model::GuildId(guild.0),
        query: Some(String::new()),
        limit: 0,
        nonce: Some(nonce.into()),
        ..Default::default()
    };
    shard
        .handle()
        .request_guild_members(&request("first"))
        .await
        .unwrap();
    let chunk = timeout(LIMIT, chunks.recv()).await.unwrap().unwrap();
    assert_eq!(chunk.nonce.as_deref(), Some("first"));
    shard
        .handle()
        .request_guild_members(&request("second"))
        .await
        .unwrap();
    let event = timeout(LIMIT, limited.recv()).await.unwrap().unwrap();
    assert_eq!(event.opcode, 8);
    assert!(
        event.retry_after > 0.0 && event.retry_after <= 30.0,
        "{event:?}"
    );
    match &event.request {
        shardbus::model::RateLimitMeta::RequestGuildMembers { guild_id, nonce } => {
            assert_eq!(guild_id.get(), guild.0);
            assert_eq!(nonce.as_deref(), Some("second"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        chunks.try_recv().is_err(),
        "no chunk for the limited request"
    );
    finish(&shard, &sim).await;
}

/// A queue that records how many connections the sim had seen when each
/// shard asked for its turn, then lets it go.
struct RecordingQueue {
    connections: Arc<dyn Fn() -> usize + Send + Sync>,
    seen: Arc<std::sync::Mutex<Vec<usize>>>,
}

impl shardbus::gateway::IdentifyQueue for RecordingQueue {
    fn acquire(
        &self,
        _shard: shardbus::model::ShardId,
    ) -> shardbus::BoxFuture<'static, shardbus::gateway::IdentifyPermit> {
        self.seen.lock().unwrap().push((self.connections)());
        Box::pin(async { shardbus::gateway::IdentifyPermit::unpaced() })
    }
}

#[tokio::test]
async fn a_new_session_waits_for_its_identify_turn_before_it_connects() {
    let sim = Arc::new(sim(test_config()).await);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let counter = sim.clone();
    let queue = RecordingQueue {
        connections: Arc::new(move || counter.log().connections.len()),
        seen: seen.clone(),
    };
    let bus = TypeMux::new();
    let mut stages = bus.subscribe::<ShardStage>();
    let shard = Shard::spawn(
        config(&sim).compress(true).identify_queue(Arc::new(queue)),
        bus,
    );
    let first = stages_until_connected(&mut stages).await;
    let fresh = [
        Stage::Queued,
        Stage::Connecting,
        Stage::Identifying,
        Stage::Connected,
    ];
    assert_eq!(first, fresh);
    // A fresh session: the turn came before the socket was opened, so a
    // shard waiting in a long queue holds no connection.
    sim.fault(
        FaultTarget::Shard(0),
        Fault::InvalidSession { resumable: false },
    );
    let again = stages_until_connected(&mut stages).await;
    assert_eq!(&again[1..], &fresh[..]);
    assert_eq!(
        *seen.lock().unwrap(),
        [0, 1],
        "each identify turn was asked before its connection opened"
    );
    finish(&shard, &sim).await;
}

#[tokio::test]
async fn a_kept_session_whose_resume_url_is_not_a_websocket_identifies_instead() {
    use shardbus::gateway::{GatewayErrorKind, ResumeInfo};
    use shardbus::model::{Seq, SessionId};
    let sim = sim(test_config()).await;
    for url in [
        "http://127.0.0.1:1",
        "file:///etc/passwd",
        "not a url",
        "wss://",
    ] {
        let bus = TypeMux::new();
        let mut errors = bus.subscribe::<GatewayError>();
        // As read from a store someone else can write to: the shard must
        // not send its token (in a Resume) there.
        let kept = ResumeInfo {
            session_id: SessionId("kept".into()),
            resume_url: url.into(),
            seq: Seq(3),
        };
        let running = start_with(config(&sim).resume(kept), bus).await;
        let error = timeout(LIMIT, errors.recv()).await.unwrap().unwrap();
        assert!(!error.fatal);
        assert!(
            matches!(error.kind, GatewayErrorKind::ResumeUrl(_)),
            "{url}: {error:?}"
        );
        assert!(
            !sim.log().resumes.iter().any(|r| r.session_id == "kept"),
            "{url}: resumed"
        );
        running
            .shard
            .handle()
            .close(shardbus::gateway::CloseCode::NORMAL)
            .await;
    }
    assert_eq!(sim.log().ready_identifies().count(), 4);
    sim.shutdown().await;
}
