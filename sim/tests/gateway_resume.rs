//! Resume: replay without loss or duplicates, RESUMED, and every way a
//! resume is refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, WAIT, config, start};
use serde_json::{Value, json};
use shardbus_sim::{ResumeOutcome, SessionId, SessionState, Sim, SimConfig};

/// Identify on shard [0, 1] and read READY and the GUILD_CREATEs; returns
/// (session_id, resume url, last seq).
async fn ready_session(sim: &Sim, c: &mut Client) -> (String, String, u64) {
    let ready = c.ready(sim, [0, 1]).await;
    let guilds = ready["d"]["guilds"].as_array().unwrap().len() as u64;
    let mut last = 1;
    for _ in 0..guilds {
        let g = c.dispatch("GUILD_CREATE").await;
        last = g["s"].as_u64().unwrap();
    }
    (
        ready["d"]["session_id"].as_str().unwrap().to_owned(),
        ready["d"]["resume_gateway_url"]
            .as_str()
            .unwrap()
            .to_owned(),
        last,
    )
}

fn message(n: u64) -> Value {
    json!({ "id": n.to_string(), "content": format!("m{n}"), "guild_id": shardbus_sim::GuildId::nth(0).to_string() })
}

async fn send_resume(c: &mut Client, sim: &Sim, session: &str, seq: u64) {
    c.hello().await;
    c.send(json!({ "op": 6, "d": { "token": sim.token(), "session_id": session, "seq": seq } }))
        .await;
}

#[tokio::test]
async fn resume_replays_missed_dispatches_in_order_then_resumed() {
    let sim = start(config()).await;
    let g = sim.guild_ids()[0];
    let mut c = Client::gateway(&sim, true).await;
    let (session, resume_url, mut last) = ready_session(&sim, &mut c).await;
    assert_eq!(resume_url, sim.resume_gateway_url());
    for n in 0..5 {
        sim.dispatch(g, "MESSAGE_CREATE", message(n));
    }
    for _ in 0..2 {
        let m = c.dispatch("MESSAGE_CREATE").await;
        assert_eq!(m["s"], last + 1);
        last += 1;
    }
    // Disconnect with a resumable code, then more events happen.
    c.close(4000).await;
    sim.wait_for_stats(WAIT, |s| {
        s.session(&SessionId(session.clone()))
            .is_some_and(|x| x.state == SessionState::Detached)
    })
    .await
    .unwrap();
    for n in 5..8 {
        sim.dispatch(g, "MESSAGE_CREATE", message(n));
    }

    let mut r = Client::resume_url(&sim, &resume_url, true).await;
    send_resume(&mut r, &sim, &session, last).await;
    let mut contents = Vec::new();
    loop {
        let p = r.payload().await;
        assert_eq!(p["op"], 0, "{p}");
        assert_eq!(p["s"], last + 1, "seqs must be consecutive: {p}");
        last += 1;
        if p["t"] == "RESUMED" {
            break;
        }
        assert_eq!(p["t"], "MESSAGE_CREATE");
        contents.push(p["d"]["content"].as_str().unwrap().to_owned());
    }
    assert_eq!(contents, ["m2", "m3", "m4", "m5", "m6", "m7"]);
    // New events continue after RESUMED.
    sim.dispatch(g, "MESSAGE_CREATE", message(8));
    let m = r.dispatch("MESSAGE_CREATE").await;
    assert_eq!(m["s"], last + 1);
    assert_eq!(m["d"]["content"], "m8");

    let log = sim.log();
    let resume = &log.resumes[0];
    assert!(resume.via_resume_url);
    assert_eq!(resume.outcome, ResumeOutcome::Resumed { replayed: 6 });
    assert!(log.connections[1].via_resume_url);
    let stats = sim.stats();
    let st = stats.session(&SessionId(session)).unwrap();
    let second: Vec<u64> = st.connections[1].all_seqs().collect();
    assert_eq!(second, (last - 6..=last + 1).collect::<Vec<_>>());
    sim.shutdown().await;
}

#[tokio::test]
async fn tcp_drop_keeps_the_session_resumable() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, url, last) = ready_session(&sim, &mut c).await;
    drop(c);
    let mut r = Client::resume_url(&sim, &url, false).await;
    send_resume(&mut r, &sim, &session, last).await;
    let p = r.payload().await;
    assert_eq!(p["t"], "RESUMED");
    assert_eq!(p["s"], last + 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_session_gets_invalid_session_false() {
    let sim = start(config()).await;
    let mut r = Client::gateway(&sim, false).await;
    send_resume(&mut r, &sim, "no-such-session", 3).await;
    let p = r.payload().await;
    assert_eq!(p["op"], 9);
    assert_eq!(p["d"], false);
    assert_eq!(sim.log().resumes[0].outcome, ResumeOutcome::UnknownSession);
    sim.shutdown().await;
}

#[tokio::test]
async fn seq_no_longer_buffered_gets_invalid_session_false() {
    let sim = start(SimConfig {
        replay_buffer: 4,
        guilds: 2,
        ..config()
    })
    .await;
    let g = sim.guild_ids()[0];
    let mut c = Client::gateway(&sim, false).await;
    let (session, url, last) = ready_session(&sim, &mut c).await;
    c.close(4000).await;
    for n in 0..10 {
        sim.dispatch(g, "MESSAGE_CREATE", message(n));
    }
    let mut r = Client::resume_url(&sim, &url, false).await;
    send_resume(&mut r, &sim, &session, last).await;
    let p = r.payload().await;
    assert_eq!(p["op"], 9);
    assert_eq!(p["d"], false);
    assert_eq!(sim.log().resumes[0].outcome, ResumeOutcome::SeqNotBuffered);
    sim.shutdown().await;
}

#[tokio::test]
async fn seq_ahead_of_the_session_is_closed_4007() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, url, last) = ready_session(&sim, &mut c).await;
    c.close(4000).await;
    let mut r = Client::resume_url(&sim, &url, false).await;
    send_resume(&mut r, &sim, &session, last + 100).await;
    assert_eq!(r.close_code().await.0, Some(4007));
    sim.shutdown().await;
}

#[tokio::test]
async fn client_close_1000_invalidates_the_session() {
    for code in [1000, 1001] {
        let sim = start(config()).await;
        let mut c = Client::gateway(&sim, false).await;
        let (session, url, last) = ready_session(&sim, &mut c).await;
        c.close(code).await;
        sim.wait_for_stats(WAIT, |s| {
            s.session(&SessionId(session.clone()))
                .is_some_and(|x| x.state == SessionState::Invalid)
        })
        .await
        .unwrap();
        let mut r = Client::resume_url(&sim, &url, false).await;
        send_resume(&mut r, &sim, &session, last).await;
        let p = r.payload().await;
        assert_eq!(p["op"], 9, "after close {code}");
        assert_eq!(p["d"], false);
        let log = sim.log();
        let closed = log.connections[0].closed.as_ref().unwrap();
        assert_eq!(closed.code, Some(code));
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn session_expires_after_the_resume_window() {
    let sim = start(SimConfig {
        resume_window: Duration::from_millis(100),
        ..config()
    })
    .await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, url, last) = ready_session(&sim, &mut c).await;
    c.close(4000).await;
    sim.wait_for_stats(WAIT, |s| {
        s.session(&SessionId(session.clone()))
            .is_some_and(|x| x.state == SessionState::Invalid)
    })
    .await
    .unwrap();
    let mut r = Client::resume_url(&sim, &url, false).await;
    send_resume(&mut r, &sim, &session, last).await;
    assert_eq!(r.payload().await["op"], 9);
    sim.shutdown().await;
}

#[tokio::test]
async fn resume_with_a_wrong_token_is_closed_4004() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, url, last) = ready_session(&sim, &mut c).await;
    c.close(4000).await;
    let mut r = Client::resume_url(&sim, &url, false).await;
    r.hello().await;
    r.send(json!({ "op": 6, "d": { "token": "nope", "session_id": session, "seq": last } }))
        .await;
    assert_eq!(r.close_code().await.0, Some(4004));
    sim.shutdown().await;
}
