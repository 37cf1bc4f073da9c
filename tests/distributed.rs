//! The whole distributed bot in real processes: two `distributed-host`
//! processes (shards 0–1 and 2–3 of 4) on one sim, two
//! `distributed-worker` processes of one service, and 10,000
//! MESSAGE_CREATE. On the way, one host is killed with SIGKILL and
//! started again, one worker is killed with SIGKILL and replaced, and the
//! NATS server is restarted.
//!
//! The NATS restart is an operator's (SIGTERM, then the same store): a
//! SIGKILL may lose JetStream's last consumer acknowledgements, and the
//! events it then delivers again come as first deliveries, which the
//! "duplicates only where the delivery count is above 1" check rightly
//! refuses. `nats_bridge` covers a crash of the server.
//!
//! Asserted: every message was handled (0 lost); a message handled twice
//! was delivered more than once (its attempt is above 1); the restarted
//! host resumed its shards (the sim logged Resumes and no new Identify);
//! no identify window was violated across the hosts.
#![cfg(feature = "nats")]
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::gateway::{message, sim, test_config};
use shardbus::bridge::ResumeStore;
use shardbus_sim::{NatsServer, ResumeOutcome, Sim, SimConfig};
use tokio::sync::mpsc;

const MESSAGES: u64 = 10_000;
/// Generous: a loaded machine is slow, never wrong.
const READY: Duration = Duration::from_secs(120);

/// An example binary, built beside the tests by `cargo test --features nats`.
fn example(name: &str) -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let path = deps
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: `cargo test --features nats` builds it",
        path.display()
    );
    path
}

/// A child process whose stdout lines arrive on a channel.
///
/// Nothing here blocks a runtime thread: lines come through a tokio
/// channel fed by a reader thread, and waiting for the process to exit
/// runs on the blocking pool. (The sim runs on this runtime: a worker
/// thread blocked in a `recv_timeout` or `wait` would hold up the tasks
/// queued behind it, which on a loaded 2-core machine nobody steals.)
struct Proc {
    name: String,
    child: Option<Child>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Proc {
    fn spawn(name: &str, bin: &str, args: &[String], token: &str) -> Self {
        let mut child = Command::new(example(bin))
            .args(args)
            .env("DISCORD_TOKEN", token)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            name: name.to_owned(),
            child: Some(child),
            lines,
        }
    }

    /// Waits for a line containing `what`.
    async fn wait_for(&mut self, what: &str) -> String {
        let found = tokio::time::timeout(READY, async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(what) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            Ok(None) => panic!("{}: exited before a {what:?} line", self.name),
            Err(_) => panic!("{}: no {what:?} line within {READY:?}", self.name),
        }
    }

    /// Waits, off the runtime's threads, for the child to exit.
    async fn exited(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap()
    }

    /// SIGKILL: no chance to save or close anything.
    async fn kill9(mut self) {
        if let Some(child) = self.child.as_mut() {
            child.kill().unwrap();
        }
        self.exited().await;
    }

    /// SIGTERM, then waits for it to exit; its last line.
    async fn stop(mut self) -> String {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await;
        let status = self.exited().await;
        assert!(status.success(), "{} exited with {status}", self.name);
        let mut last = String::new();
        while let Ok(line) = self.lines.try_recv() {
            last = line;
        }
        last
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Only on a failing test's way out: SIGKILL is at once.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs blocking `f` (a server restart, file reads) off the runtime's
/// worker threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Every handled event in the workers' logs: message id -> attempts.
fn handled(logs: &[PathBuf]) -> BTreeMap<u64, Vec<u32>> {
    let mut seen: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for log in logs {
        let Ok(text) = std::fs::read_to_string(log) else {
            continue;
        };
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            // A line cut short by SIGKILL is incomplete; its event was not
            // acknowledged, so it is delivered again.
            if let [id, _shard, _seq, attempt] = fields[..]
                && let (Ok(id), Ok(attempt)) = (id.parse(), attempt.parse())
            {
                seen.entry(id).or_default().push(attempt);
            }
        }
    }
    seen
}

/// Waits until every shard of `shards` (of 4) has a session saved in the
/// resume bucket.
async fn saved_sessions(nats: &str, shards: std::ops::Range<u32>) {
    let js = async_nats::jetstream::new(async_nats::connect(nats).await.unwrap());
    let store = ResumeStore::open(&js, "shardbus").await.unwrap();
    let saved = tokio::time::timeout(READY, async {
        loop {
            let mut all = true;
            for shard in shards.clone() {
                all &= matches!(store.load(shard, 4).await, Ok(Some(_)));
            }
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        saved.is_ok(),
        "shards {shards:?}: no saved session within {READY:?}"
    );
}

fn host_args(nats: &str, sim: &Sim, shards: &str) -> Vec<String> {
    [
        "--nats",
        nats,
        "--api",
        &format!("{}/api/v10", sim.http_url()),
        "--shards",
        shards,
        "--total",
        "4",
        "--identify-window-ms",
        "250",
        "--save-every",
        "20",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn worker_args(nats: &str, sim: &Sim, log: &Path) -> Vec<String> {
    [
        "--nats",
        nats,
        "--api",
        &format!("{}/api/v10", sim.http_url()),
        "--total",
        "4",
        "--service",
        "svc",
        "--lease-s",
        "1",
        "--ack-wait-s",
        "5",
        "--log",
        &log.display().to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_and_workers_survive_kills_and_a_nats_restart_without_losing_an_event() {
    let mut server = blocking(NatsServer::start).await.unwrap();
    let nats = server.url();
    let sim = sim(SimConfig {
        shards: 4,
        guilds: 16,
        max_concurrency: 1,
        identify_window: Duration::from_millis(250),
        heartbeat_interval: Duration::from_secs(1),
        resume_window: Duration::from_secs(120),
        replay_buffer: 20_000,
        ..test_config()
    })
    .await;
    let token = sim.token().to_owned();
    let dir = std::env::temp_dir().join(format!("shardbus-distributed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let logs: Vec<PathBuf> = (1..=3)
        .map(|n| dir.join(format!("worker{n}.log")))
        .collect();

    let mut worker1 = Proc::spawn(
        "worker 1",
        "distributed-worker",
        &worker_args(&nats, &sim, &logs[0]),
        &token,
    );
    let mut worker2 = Proc::spawn(
        "worker 2",
        "distributed-worker",
        &worker_args(&nats, &sim, &logs[1]),
        &token,
    );
    worker1.wait_for("worker ready").await;
    worker2.wait_for("worker ready").await;
    let mut host1 = Proc::spawn(
        "host 1",
        "distributed-host",
        &host_args(&nats, &sim, "0..2"),
        &token,
    );
    let mut host2 = Proc::spawn(
        "host 2",
        "distributed-host",
        &host_args(&nats, &sim, "2..4"),
        &token,
    );
    host1.wait_for("host ready").await;
    host2.wait_for("host ready").await;
    assert_eq!(sim.log().ready_identifies().count(), 4);

    let guilds = sim.guild_ids();
    let mut host1 = Some(host1);
    let mut worker1 = Some(worker1);
    let mut worker3 = None;
    for i in 0..MESSAGES {
        let guild = guilds[(i % guilds.len() as u64) as usize];
        let mut data = message(i);
        data["guild_id"] = serde_json::Value::String(guild.to_string());
        assert_eq!(
            sim.dispatch(guild, "MESSAGE_CREATE", data),
            1,
            "message {i}"
        );
        if i % 250 == 249 {
            // Let it flow rather than all sit in the sim's buffers.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        match i {
            2_500 => {
                // Both of host 1's shards have saved a session (a starved
                // host may not have yet): the restart resumes both.
                saved_sessions(&nats, 0..2).await;
                host1.take().unwrap().kill9().await;
                let mut again = Proc::spawn(
                    "host 1 again",
                    "distributed-host",
                    &host_args(&nats, &sim, "0..2"),
                    &token,
                );
                let ready = again.wait_for("host ready").await;
                assert!(ready.contains("resuming 2"), "{ready}");
                host1 = Some(again);
            }
            5_000 => {
                worker1.take().unwrap().kill9().await;
                worker3 = Some(Proc::spawn(
                    "worker 3",
                    "distributed-worker",
                    &worker_args(&nats, &sim, &logs[2]),
                    &token,
                ));
            }
            7_500 => {
                server = blocking(move || {
                    server.restart().unwrap();
                    server
                })
                .await;
            }
            _ => {}
        }
    }
    if let Some(worker3) = &mut worker3 {
        worker3.wait_for("worker ready").await;
    }

    // Every message handled, however long the redeliveries take.
    let deadline = Instant::now() + Duration::from_secs(300);
    let seen = loop {
        let seen = blocking({
            let logs = logs.clone();
            move || handled(&logs)
        })
        .await;
        if seen.len() as u64 >= MESSAGES || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let missing: Vec<u64> = (0..MESSAGES)
        .map(|i| 1000 + i)
        .filter(|id| !seen.contains_key(id))
        .collect();
    let duplicated: Vec<(&u64, &Vec<u32>)> = seen.iter().filter(|(_, a)| a.len() > 1).collect();
    let redelivered = seen.values().flatten().filter(|a| **a > 1).count();
    let js = async_nats::jetstream::new(async_nats::connect(&nats).await.unwrap());
    let stored = js
        .get_stream("shardbus_events")
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap()
        .state
        .messages;
    println!("stream holds {stored} messages");
    let log = sim.log();
    let resumed = log
        .resumes
        .iter()
        .filter(|r| matches!(r.outcome, ResumeOutcome::Resumed { .. }))
        .count();
    println!(
        "dispatched {MESSAGES}, handled {} distinct, lost {}, handled twice or more {}, \
         redeliveries handled {redelivered}, resumes {resumed}, identifies {}, window violations {}",
        seen.len(),
        missing.len(),
        duplicated.len(),
        log.ready_identifies().count(),
        log.bucket_violations.len()
    );
    assert!(
        missing.is_empty(),
        "lost: {:?}",
        &missing[..missing.len().min(20)]
    );
    for (id, attempts) in &duplicated {
        assert!(
            attempts.iter().any(|a| *a > 1),
            "message {id} handled {attempts:?}: a duplicate on a first delivery"
        );
    }
    assert!(resumed >= 2, "the restarted host resumed both its shards");
    assert_eq!(log.ready_identifies().count(), 4, "nobody identified again");
    assert!(
        log.bucket_violations.is_empty(),
        "{:?}",
        log.bucket_violations
    );
    drop(log);

    for host in [host1.take().unwrap(), host2] {
        let last = host.stop().await;
        assert!(last.contains("host stopped"), "{last}");
    }
    for worker in [worker2].into_iter().chain(worker3) {
        let last = worker.stop().await;
        assert!(last.contains("worker stopped"), "{last}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    sim.shutdown().await;
}
