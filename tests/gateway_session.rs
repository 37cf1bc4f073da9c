//! `Session`: open, connect until shutdown or a fatal error, wait, close,
//! and the token kept out of everything printed.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardbus::gateway::{GatewayConfig, GatewayError, Intents};
use shardbus::model::GuildCreate;
use shardbus::{Session, TypeMux};
use shardbus_sim::{Fault, FaultTarget, Sim, SimConfig};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

async fn sim() -> Sim {
    Sim::start(SimConfig {
        rate: 0.0,
        guilds: 6,
        identify_window: Duration::from_millis(100),
        heartbeat_interval: Duration::from_millis(500),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn new_session(sim: &Sim, token: &str) -> Session {
    let config = GatewayConfig::new(token, Intents::GUILDS | Intents::GUILD_MESSAGES)
        .gateway_url(sim.gateway_url())
        .shard(0, sim.config().shards)
        .reconnect_backoff_max(Duration::from_millis(200));
    Session::with_config(config, TypeMux::new())
}

#[tokio::test]
async fn open_returns_once_ready_and_guilds_arrive_on_the_bus() {
    let sim = sim().await;
    let session = new_session(&sim, sim.token());
    let mut guilds = session.bus().subscribe::<GuildCreate>();
    assert!(!session.gateway_is_alive());
    timeout(LIMIT, session.open()).await.unwrap().unwrap();
    assert!(session.gateway_is_alive());
    // Every guild of the shard, by the shard formula.
    let mut got = Vec::new();
    for _ in 0..sim.guilds_for_shard(0, 1).len() {
        let guild = timeout(LIMIT, guilds.recv()).await.unwrap().unwrap();
        assert_eq!(guild.meta.shard.0, 0);
        got.push(guild.id.get());
    }
    let mut want: Vec<u64> = sim.guilds_for_shard(0, 1).iter().map(|g| g.0).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    session.close().await;
    assert!(!session.gateway_is_alive());
    assert!(timeout(LIMIT, session.wait()).await.unwrap().is_ok());
    // A client close with 1000 ends the session at the server too.
    let log = sim
        .wait_for_log(LIMIT, |log| log.connections[0].closed.is_some())
        .await
        .unwrap();
    assert_eq!(log.connections[0].closed.as_ref().unwrap().code, Some(1000));
    sim.shutdown().await;
}

#[tokio::test]
async fn connect_runs_until_the_shutdown_future_completes() {
    let sim = sim().await;
    let session = new_session(&sim, sim.token());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = async {
        timeout(
            LIMIT,
            session.connect(async {
                let _ = stopped.await;
            }),
        )
        .await
        .unwrap()
    };
    let trigger = async {
        // Survives a resume on the way.
        while !session.gateway_is_alive()
            || session.shard().unwrap().stage() != shardbus::gateway::Stage::Connected
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sim.fault(FaultTarget::Shard(0), Fault::Drop);
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.send(()).unwrap();
    };
    let (result, ()) = tokio::join!(run, trigger);
    assert!(result.is_ok());
    assert!(!session.gateway_is_alive());
    sim.shutdown().await;
}

#[tokio::test]
async fn connect_and_open_return_the_fatal_error() {
    let sim = sim().await;
    let session = new_session(&sim, "a wrong token");
    let err: Arc<GatewayError> = timeout(LIMIT, session.connect(std::future::pending::<()>()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.fatal);
    assert!(err.to_string().contains("4004"), "{err}");
    let last = session.gateway_error().unwrap();
    assert!(
        Arc::ptr_eq(&last, &err),
        "gateway_error is the error connect returned"
    );
    assert!(!session.gateway_is_alive());
    let again = new_session(&sim, "another wrong token");
    assert!(
        timeout(LIMIT, again.open())
            .await
            .unwrap()
            .unwrap_err()
            .fatal
    );
    sim.shutdown().await;
}

/// Collects everything written by the tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The token never appears in logs, `Debug` output or errors, even when it
/// is rejected and the shard reports every step at TRACE level.
#[tokio::test(flavor = "current_thread")]
async fn the_token_never_appears_in_logs_debug_or_errors() {
    const SECRET: &str = "MTIzNDU2.secret-token-value.xyz";
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // tungstenite logs through `log`: bridge it, so the check covers its
    // records too. (Another test of this binary may have installed it.)
    let _ = shardbus::bridge_log();

    let sim = sim().await;
    // A good session, then a zombie (warnings), then a wrong token (fatal).
    let good = new_session(&sim, sim.token());
    timeout(LIMIT, good.open()).await.unwrap().unwrap();
    good.close().await;
    let bad = new_session(&sim, SECRET);
    let err = timeout(LIMIT, bad.connect(std::future::pending::<()>()))
        .await
        .unwrap()
        .unwrap_err();
    let printed = [
        format!("{err}"),
        format!("{err:?}"),
        format!("{bad:?}"),
        format!("{:?}", bad.gateway_error()),
    ];
    for text in &printed {
        assert!(
            !text.contains(SECRET) && !text.contains("secret-token"),
            "{text}"
        );
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("shard"), "the capture works: {logs}");
    assert!(logs.contains("4004"), "the failure was logged");
    assert!(
        logs.contains("Client handshake done"),
        "records from the websocket crate's `log` reach tracing"
    );
    assert!(!logs.contains(SECRET) && !logs.contains("secret-token"));
    assert!(!logs.contains(sim.token()), "nor the good token");
    // Nor hex-encoded, as a frame dump would show it.
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(!logs.contains(&hex), "no frame dump carries the token");
    sim.shutdown().await;
}
