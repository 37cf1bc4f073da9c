//! The main job, `examples/bot.rs`, run as a program against its
//! in-process simulator: it must exit cleanly, show every shard's status
//! and report that nothing was lost or duplicated.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// The longest a run may take: generous, for a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(240);

/// The example's binary: `cargo test` builds examples beside the test
/// binaries (`target/debug/deps/..` → `target/debug/examples/bot`). If it
/// is missing or older than the sources it is made of (`cargo test --test
/// example_bot` builds no examples), it is built first.
fn bot() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir
        .join("examples")
        .join(format!("bot{}", std::env::consts::EXE_SUFFIX));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sources = [
        "examples/bot.rs",
        "Cargo.toml",
        "src",
        "sim/src",
        "macros/src",
    ];
    let newest_source = sources.iter().filter_map(|p| newest(&root.join(p))).max();
    let built = bin.metadata().and_then(|m| m.modified()).ok();
    let stale = match (built, newest_source) {
        (Some(built), Some(source)) => built < source,
        _ => true,
    };
    if stale {
        let target_dir = profile_dir.parent().unwrap();
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--example", "bot", "--quiet", "--target-dir"])
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        if cfg!(feature = "metrics") {
            build.args(["--features", "metrics"]);
        }
        let status = build.status().unwrap();
        assert!(status.success(), "cargo build --example bot: {status}");
    }
    bin
}

/// When the newest file under `path` (or `path` itself) was modified.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = path.metadata().ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|entry| newest(&entry.ok()?.path()))
        .max()
}

/// What a run of the bot printed, and how it ended.
struct Run {
    /// How it exited.
    status: ExitStatus,
    /// Its stdout.
    stdout: String,
    /// Its stderr.
    stderr: String,
}

/// Runs the bot with `args` against the simulator (no `DISCORD_TOKEN`),
/// killing it if it takes longer than `limit`.
fn run(args: &[&str], limit: Duration) -> Run {
    let mut child = Command::new(bot())
        .args(args)
        .env_remove("DISCORD_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    let status = wait(&mut child, limit);
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let status = status.unwrap_or_else(|| {
        panic!("bot {args:?} still running after {limit:?}\nstdout:\n{stdout}\nstderr:\n{stderr}")
    });
    Run {
        status,
        stdout,
        stderr,
    }
}

/// Reads a pipe to its end on a thread (so a full pipe never blocks the
/// child).
fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Waits for `child` to exit; kills it and returns `None` after `limit`.
fn wait(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The number after `name = ` in the summary.
fn summary_number(stdout: &str, name: &str) -> u64 {
    let prefix = format!("{name} = ");
    stdout
        .lines()
        .find_map(|line| line.trim_start().strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{name} = N` in the summary:\n{stdout}"))
}

#[test]
fn bot_on_the_simulator_with_faults_loses_nothing() {
    let run = run(
        &[
            "--seconds",
            "4",
            "--shards",
            "4",
            "--guilds",
            "1000",
            "--rate",
            "300",
            "--fault-every",
            "0.5",
        ],
        LIMIT,
    );
    let context = format!("stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert!(
        run.status.success(),
        "exit status {}\n{context}",
        run.status
    );
    // Not a terminal: status blocks are appended, one line per shard.
    for shard in 0..4 {
        assert!(
            run.stdout.contains(&format!("  shard {shard}: ")),
            "no status line for shard {shard}\n{context}"
        );
    }
    assert!(
        !run.stdout.contains('\x1b'),
        "no ANSI codes off a terminal\n{context}"
    );
    assert!(
        summary_number(&run.stdout, "events handled") > 0,
        "{context}"
    );
    assert!(
        summary_number(&run.stdout, "messages counted") > 0,
        "{context}"
    );
    assert_eq!(summary_number(&run.stdout, "lost"), 0, "{context}");
    assert_eq!(summary_number(&run.stdout, "duplicated"), 0, "{context}");
    assert!(run.stdout.contains("\n  lost = 0\n"), "{context}");
    // `!ping`s were answered with real replies through the REST client,
    // which never collected a 429.
    assert!(summary_number(&run.stdout, "replies sent") > 0, "{context}");
    assert_eq!(summary_number(&run.stdout, "429s received"), 0, "{context}");
}

#[test]
fn help_prints_usage_and_exits() {
    let run = run(&["--help"], Duration::from_secs(60));
    assert!(run.status.success(), "exit status {}", run.status);
    for text in [
        "Usage:",
        "--shards",
        "--guilds",
        "--rate",
        "--seconds",
        "--faults",
    ] {
        assert!(run.stdout.contains(text), "{text} in:\n{}", run.stdout);
    }
    assert!(
        !run.stdout.contains("shardbus-sim at"),
        "--help must not start the bot:\n{}",
        run.stdout
    );
}

#[test]
fn a_bad_argument_is_refused_before_anything_starts() {
    let run = run(&["--shards", "0"], Duration::from_secs(60));
    assert_eq!(run.status.code(), Some(2), "clap's usage error status");
    assert!(run.stderr.contains("--shards"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

/// With `metrics` on, `--metrics-addr` serves the shards' and the bus's
/// metrics in Prometheus' text format while the bot runs.
#[cfg(feature = "metrics")]
#[test]
fn metrics_addr_serves_prometheus_metrics() {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(bot())
        .args(["--seconds", "6", "--shards", "2", "--guilds", "100"])
        .args(["--rate", "100", "--metrics-addr", &addr])
        .env_remove("DISCORD_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = read_all(child.stdout.take().unwrap());
    let stderr = read_all(child.stderr.take().unwrap());
    let scrape = || -> Option<String> {
        let mut stream = TcpStream::connect(&addr).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).ok()?;
        Some(body)
    };
    let wanted = ["shard=\"0\"", "shard=\"1\""];
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut page = String::new();
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        if let Some(body) = scrape() {
            let events: Vec<&str> = body
                .lines()
                .filter(|l| l.starts_with("shardbus_shard_events_total"))
                .collect();
            if wanted.iter().all(|w| events.iter().any(|l| l.contains(w))) {
                page = body;
                break;
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    let status = wait(&mut child, Duration::from_secs(240));
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        !page.is_empty(),
        "no shard metrics scraped\nstdout:\n{stdout}"
    );
    for name in [
        "shardbus_shard_stage",
        "shardbus_shard_identify_wait_seconds",
        "shardbus_bus_posts_total",
    ] {
        assert!(page.contains(name), "{name} missing:\n{page}");
    }
}
