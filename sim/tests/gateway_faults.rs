//! Every fault the sim can inject.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Client, Event, WAIT, config, start, two_ready_shards, wait_session_state};
use serde_json::json;
use shardbus_sim::{Closer, Fault, FaultTarget, SessionState, Sim, SimConfig};

/// A sim and one identified client on shard [0, 1] that has read its GUILD_CREATEs;
/// returns (session_id, last seq).
async fn setup(sim: &Sim, c: &mut Client) -> (String, u64) {
    let (session, _, last) = c.ready_session(sim).await;
    (session, last)
}

async fn can_resume(sim: &Sim, session: &str, seq: u64) -> bool {
    let mut r = Client::resume_url(sim, &sim.resume_gateway_url(), false).await;
    r.hello().await;
    r.resume(sim.token(), session, seq).await;
    loop {
        let p = r.payload().await;
        if p["op"] == 9 {
            return false;
        }
        if p["t"] == "RESUMED" {
            return true;
        }
    }
}

#[tokio::test]
async fn reconnect_sends_op_7_then_closes_resumably() {
    let sim = start(SimConfig {
        reconnect_grace: Duration::from_millis(100),
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, last) = setup(&sim, &mut c).await;
    assert_eq!(sim.fault(FaultTarget::All, Fault::Reconnect), 1);
    let p = c.payload().await;
    assert_eq!(p["op"], 7);
    assert!(p["d"].is_null());
    assert_eq!(c.close_code().await.0, Some(4000));
    assert!(can_resume(&sim, &session, last).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_session_true_keeps_the_session() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, last) = setup(&sim, &mut c).await;
    sim.fault(
        FaultTarget::Shard(0),
        Fault::InvalidSession { resumable: true },
    );
    let p = c.op(9).await;
    assert_eq!(p["d"], true);
    c.close(4000).await;
    assert!(can_resume(&sim, &session, last).await);
    sim.shutdown().await;
}

/// discord.js answers op 9 `true` with a Resume on the same connection.
#[tokio::test]
async fn resume_on_the_same_connection_after_invalid_session_true() {
    let sim = start(config()).await;
    let g = sim.guild_ids()[0];
    let mut c = Client::gateway(&sim, false).await;
    let (session, mut last) = setup(&sim, &mut c).await;
    sim.fault(
        FaultTarget::Shard(0),
        Fault::InvalidSession { resumable: true },
    );
    assert_eq!(c.op(9).await["d"], true);
    wait_session_state(&sim, &session, SessionState::Detached).await;
    for n in 0..3 {
        sim.dispatch(g, "MESSAGE_CREATE", json!({ "content": format!("m{n}") }));
    }
    c.resume(sim.token(), &session, last).await;
    assert_eq!(c.replay(&mut last).await, ["m0", "m1", "m2"]);
    wait_session_state(&sim, &session, SessionState::Live).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn identify_on_the_same_connection_after_invalid_session_true() {
    let sim = start(SimConfig {
        identify_window: Duration::ZERO,
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, _) = setup(&sim, &mut c).await;
    sim.fault(
        FaultTarget::Shard(0),
        Fault::InvalidSession { resumable: true },
    );
    assert_eq!(c.op(9).await["d"], true);
    c.identify(sim.token(), [0, 1], common::INTENTS).await;
    let ready = c.dispatch("READY").await;
    assert_ne!(ready["d"]["session_id"], session.as_str());
    sim.shutdown().await;
}

/// 4003 ends the session: a client that sends a command after op 9 `true`
/// instead of resuming must identify again.
#[tokio::test]
async fn not_authenticated_after_invalid_session_true_invalidates_the_session() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, last) = setup(&sim, &mut c).await;
    sim.fault(
        FaultTarget::Shard(0),
        Fault::InvalidSession { resumable: true },
    );
    assert_eq!(c.op(9).await["d"], true);
    c.send(json!({ "op": 3, "d": { "since": null, "activities": [], "status": "online", "afk": false } }))
        .await;
    assert_eq!(c.close_code().await.0, Some(4003));
    wait_session_state(&sim, &session, SessionState::Invalid).await;
    assert!(!can_resume(&sim, &session, last).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn close_4003_invalidates_the_session() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, last) = setup(&sim, &mut c).await;
    sim.fault(FaultTarget::Shard(0), Fault::Close(4003));
    assert_eq!(c.close_code().await.0, Some(4003));
    wait_session_state(&sim, &session, SessionState::Invalid).await;
    assert!(!can_resume(&sim, &session, last).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_session_false_invalidates_the_session() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, last) = setup(&sim, &mut c).await;
    sim.fault(
        FaultTarget::Shard(0),
        Fault::InvalidSession { resumable: false },
    );
    let p = c.op(9).await;
    assert_eq!(p["d"], false);
    wait_session_state(&sim, &session, SessionState::Invalid).await;
    assert!(!can_resume(&sim, &session, last).await);
    // The connection may identify again.
    tokio::time::sleep(sim.config().identify_window).await;
    c.identify(sim.token(), [0, 1], common::INTENTS).await;
    c.dispatch("READY").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_ends_the_connection_without_a_close_frame() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, last) = setup(&sim, &mut c).await;
    sim.fault(FaultTarget::All, Fault::Drop);
    assert!(matches!(c.ended().await, Some(Event::Ended)));
    wait_session_state(&sim, &session, SessionState::Detached).await;
    assert_eq!(
        sim.log().connections[0].closed.as_ref().unwrap().by,
        Closer::ServerDropped
    );
    assert!(can_resume(&sim, &session, last).await);
    sim.shutdown().await;
}

#[tokio::test]
async fn zombie_stops_acks_but_not_dispatches() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (_, last) = setup(&sim, &mut c).await;
    c.send(json!({ "op": 1, "d": last })).await;
    c.op(11).await;
    sim.fault(FaultTarget::All, Fault::Zombie);
    c.send(json!({ "op": 1, "d": last })).await;
    let g = sim.guild_ids()[0];
    sim.dispatch(
        g,
        "MESSAGE_CREATE",
        json!({ "guild_id": g.to_string(), "content": "still here" }),
    );
    // The dispatch arrives; no ACK came before it or comes after it.
    let p = c.payload().await;
    assert_eq!(p["t"], "MESSAGE_CREATE", "got {p}");
    sim.wait_for_log(WAIT, |l| l.heartbeats_for_shard(0).len() == 2)
        .await
        .unwrap();
    sim.dispatch(
        g,
        "MESSAGE_CREATE",
        json!({ "guild_id": g.to_string(), "content": "marker" }),
    );
    let p = c.payload().await;
    assert_eq!(p["d"]["content"], "marker", "no ACK expected, got {p}");
    sim.shutdown().await;
}

#[tokio::test]
async fn close_sends_the_code_and_decides_resumability() {
    let sim = start(SimConfig {
        identify_window: Duration::from_millis(1),
        ..config()
    })
    .await;
    for (code, resumable) in [(4000, true), (4009, false), (4011, false), (1001, true)] {
        let mut c = Client::gateway(&sim, false).await;
        let (session, last) = setup(&sim, &mut c).await;
        sim.fault(FaultTarget::Shard(0), Fault::Close(code));
        assert_eq!(c.close_code().await.0, Some(code));
        let want = if resumable {
            SessionState::Detached
        } else {
            SessionState::Invalid
        };
        wait_session_state(&sim, &session, want).await;
        assert_eq!(
            can_resume(&sim, &session, last).await,
            resumable,
            "code {code}"
        );
        sim.fault(FaultTarget::All, Fault::Close(4000));
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_payload_is_sent_and_the_stream_survives() {
    for zlib in [false, true] {
        let sim = start(config()).await;
        let mut c = Client::gateway(&sim, zlib).await;
        setup(&sim, &mut c).await;
        sim.fault(FaultTarget::All, Fault::Malformed);
        let p = c.payload().await;
        assert!(p.as_str().unwrap().starts_with("INVALID JSON"), "{p}");
        c.send(json!({ "op": 1, "d": null })).await;
        assert_eq!(c.payload().await["op"], 11, "zlib {zlib}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn unknown_opcode_and_unknown_dispatch() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (_, last) = setup(&sim, &mut c).await;
    sim.fault(FaultTarget::All, Fault::UnknownOpcode);
    assert_eq!(c.payload().await["op"], 99);
    sim.fault(FaultTarget::All, Fault::UnknownDispatch);
    let p = c.payload().await;
    assert_eq!(p["op"], 0);
    assert_eq!(p["t"], "SHARDBUS_SIM_UNKNOWN");
    assert_eq!(p["s"], last + 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn stall_delays_everything_then_delivers_in_order() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (_, last) = setup(&sim, &mut c).await;
    let g = sim.guild_ids()[0];
    sim.fault(FaultTarget::All, Fault::Stall(Duration::from_millis(300)));
    // Wait until the stall is in effect: a heartbeat is logged but not ACKed yet.
    c.send(json!({ "op": 1, "d": last })).await;
    sim.wait_for_log(WAIT, |l| l.heartbeats_for_shard(0).len() == 1)
        .await
        .unwrap();
    let t = Instant::now();
    sim.dispatch(
        g,
        "MESSAGE_CREATE",
        json!({ "guild_id": g.to_string(), "content": "late" }),
    );
    let ack = c.payload().await;
    assert_eq!(ack["op"], 11);
    let m = c.payload().await;
    assert_eq!(m["d"]["content"], "late");
    assert_eq!(m["s"], last + 1);
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "stalled only {:?}",
        t.elapsed()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn heartbeat_request_sends_op_1() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    c.hello().await;
    sim.wait_for_log(WAIT, |l| !l.connections.is_empty())
        .await
        .unwrap();
    assert_eq!(sim.fault(FaultTarget::All, Fault::HeartbeatRequest), 1);
    assert_eq!(c.payload().await["op"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn shard_target_hits_only_that_shard() {
    let (sim, mut a, mut b) = two_ready_shards().await;
    assert_eq!(sim.fault(FaultTarget::Shard(1), Fault::Close(4000)), 1);
    assert_eq!(b.close_code().await.0, Some(4000));
    a.send(json!({ "op": 1, "d": null })).await;
    assert_eq!(a.op(11).await["op"], 11);
    sim.shutdown().await;
}
