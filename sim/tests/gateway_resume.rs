//! Resume: replay without loss or duplicates, RESUMED, and every way a
//! resume is refused.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, config, message, start, wait_session_state};
use shardbus_sim::{ResumeOutcome, SessionId, SessionState, Sim, SimConfig};

async fn send_resume(c: &mut Client, sim: &Sim, session: &str, seq: u64) {
    c.hello().await;
    c.resume(sim.token(), session, seq).await;
}

#[tokio::test]
async fn resume_replays_missed_dispatches_in_order_then_resumed() {
    let sim = start(config()).await;
    let g = sim.guild_ids()[0];
    let mut c = Client::gateway(&sim, true).await;
    let (session, resume_url, mut last) = c.ready_session(&sim).await;
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
    wait_session_state(&sim, &session, SessionState::Detached).await;
    for n in 5..8 {
        sim.dispatch(g, "MESSAGE_CREATE", message(n));
    }

    let mut r = Client::resume_url(&sim, &resume_url, true).await;
    send_resume(&mut r, &sim, &session, last).await;
    assert_eq!(
        r.replay(&mut last).await,
        ["m2", "m3", "m4", "m5", "m6", "m7"]
    );
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
    let (session, url, last) = c.ready_session(&sim).await;
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
    let (session, url, last) = c.ready_session(&sim).await;
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
    let (session, url, last) = c.ready_session(&sim).await;
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
        let (session, url, last) = c.ready_session(&sim).await;
        c.close(code).await;
        wait_session_state(&sim, &session, SessionState::Invalid).await;
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
    let (session, url, last) = c.ready_session(&sim).await;
    c.close(4000).await;
    wait_session_state(&sim, &session, SessionState::Invalid).await;
    let mut r = Client::resume_url(&sim, &url, false).await;
    send_resume(&mut r, &sim, &session, last).await;
    assert_eq!(r.payload().await["op"], 9);
    sim.shutdown().await;
}

#[tokio::test]
async fn resume_with_a_wrong_token_is_closed_4004() {
    let sim = start(config()).await;
    let mut c = Client::gateway(&sim, false).await;
    let (session, url, last) = c.ready_session(&sim).await;
    c.close(4000).await;
    let mut r = Client::resume_url(&sim, &url, false).await;
    r.hello().await;
    r.resume("nope", &session, last).await;
    assert_eq!(r.close_code().await.0, Some(4004));
    sim.shutdown().await;
}
