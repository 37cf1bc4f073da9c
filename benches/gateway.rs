//! End-to-end gateway benchmark: simulator → one shard → bus → one subscriber.
//!
//! Everything runs in one process on loopback (no network): a
//! [`shardbus_sim::Sim`] gateway server, one [`shardbus::gateway::Shard`]
//! connected to it over a real websocket, a [`shardbus::TypeMux`], and one
//! task subscribed to [`shardbus::model::MessageCreate`]. The sim and the shard
//! share one 2-worker multi-thread tokio runtime, like a single-host test; the
//! figures are therefore those of the whole pipeline on two cores (the sim's
//! JSON templating, deflate and websocket writes included), not of the shard
//! alone.
//!
//! Two measurements, each with `compress=zlib-stream` on and off (a fresh sim
//! and shard per row; the shard identifies with
//! `GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT`):
//!
//! 1. **Throughput.** The sim's built-in generator runs at full speed
//!    (`start_traffic(f64::INFINITY)`: realistic MESSAGE_CREATEs spread over
//!    16 guilds, as fast as the connection drains). After a 1 s warm-up the
//!    subscriber's received events are counted over a fixed window (5 s by
//!    default); the row reports events/s (wall clock; no CPU time, `getrusage`
//!    is not available here). As checks it also reports sequence-number gaps or
//!    repeats seen by the subscriber (must be 0), shard errors and disconnects
//!    (must be 0), and where the backlog sat at the end of the window: queued in
//!    the sim but not yet written to the socket, or written but not yet
//!    received by the subscriber (in socket buffers or inside the shard). A
//!    large sim-side backlog means the client side was the bottleneck. Finally
//!    the shard is closed (code 1000) *while the generator is still running*,
//!    and the time that close took is reported.
//! 2. **Dispatch-to-subscriber latency.** The bench dispatches MESSAGE_CREATEs
//!    itself (`Sim::dispatch_to_shard`, the 1.8 KB fixture
//!    `benches/fixtures/message_create_small.json` with its `content` replaced)
//!    at a steady 2,000/s, paced by a 1 ms `tokio::time::interval` (so two per
//!    tick at the default rate), for 0.5 s of warm-up and then 3 s measured.
//!    Each message carries, as its content, the time just before it was
//!    dispatched (nanoseconds since one `std::time::Instant` base shared with
//!    the subscriber); the subscriber subtracts it from the same clock on
//!    receipt. That interval covers the sim's queue and writer task,
//!    deflate, the loopback socket, inflate, JSON decode, the bus post and the
//!    subscriber's wake-up. p50, p90, p99 and max are reported in microseconds.
//!
//! Caveat for the uncompressed latency row: the sim does not set
//! `TCP_NODELAY` on the sockets it accepts, so Nagle's algorithm on the
//! server side can hold back the ~1.9 KB uncompressed frames for milliseconds
//! on loopback (the shard's own socket does set it). The small compressed
//! frames are not held in practice. The bench prints a note when the
//! uncompressed p50 is far above the compressed one.
//!
//! Run: `cargo bench --bench gateway` (about 20 s). Results are printed as
//! a table and written to `target/bench/gateway.json` (under `CARGO_TARGET_DIR`
//! if set).
//!
//! Environment:
//! - `GATEWAY_SECS=N`: the throughput window in seconds (default 5).
//! - `GATEWAY_RATE=N`: the latency run's messages per second (default 2000).
//!
//! The table is printed and the JSON written first; then the bench panics if a
//! check failed (a sequence gap or repeat, a shard error, a disconnect).
//!
//! Command-line arguments (`--bench` from `cargo bench`, filters) are ignored.

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shardbus::TypeMux;
use shardbus::gateway::{
    CloseCode, GatewayConfig, GatewayError, Intents, Shard, ShardStage, Stage,
};
use shardbus::model::MessageCreate;
use shardbus::shard::LocalIdentifyQueue;
use shardbus_sim::{Sim, SimConfig};
use tokio::task::JoinHandle;

/// Worker threads of the runtime shared by the sim and the shard.
const WORKERS: usize = 2;
/// Guilds in the sim (all on shard 0).
const GUILDS: u32 = 16;
/// Generator time before the throughput window opens.
const THROUGHPUT_WARMUP: Duration = Duration::from_secs(1);
/// Default throughput window.
const DEFAULT_WINDOW_SECS: u64 = 5;
/// Default latency-run rate, messages per second.
const DEFAULT_RATE: u64 = 2000;
/// Latency-run time whose messages are not counted.
const LATENCY_WARMUP: Duration = Duration::from_millis(500);
/// Latency-run measured time.
const LATENCY_MEASURED: Duration = Duration::from_secs(3);
/// How long setup and teardown steps may take before the bench gives up.
const LIMIT: Duration = Duration::from_secs(20);
/// The realistic MESSAGE_CREATE the latency run sends.
const FIXTURE: &str = include_str!("fixtures/message_create_small.json");

/// One throughput row.
struct Throughput {
    compress: bool,
    window: Duration,
    /// MessageCreate events the subscriber received in the window.
    events: u64,
    /// Messages the sim's generator produced in the window.
    generated: u64,
    /// Queued in the sim, not yet written to the socket, at the window's end.
    sim_backlog: u64,
    /// Written by the sim, not yet received by the subscriber, at the end.
    in_transit: u64,
    /// Sequence numbers not exactly one more than the previous one.
    seq_defects: u64,
    /// `GatewayError` events posted by the shard.
    errors: u64,
    /// `Stage::Disconnected` events posted by the shard.
    disconnects: u64,
    /// How long `close(1000)` took with the generator still running; `None`
    /// if it did not finish within `LIMIT`.
    close_under_load: Option<Duration>,
}

impl Throughput {
    fn events_per_s(&self) -> f64 {
        self.events as f64 / self.window.as_secs_f64()
    }

    fn generated_per_s(&self) -> f64 {
        self.generated as f64 / self.window.as_secs_f64()
    }
}

/// One latency row.
struct Latency {
    compress: bool,
    rate: u64,
    /// Messages dispatched, warm-up included.
    sent: u64,
    /// Dispatch-to-subscriber latencies of the measured messages, ns, sorted.
    samples: Vec<u64>,
    errors: u64,
    disconnects: u64,
}

impl Latency {
    /// Nearest-rank percentile, in microseconds.
    fn percentile_us(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        let rank = (p * self.samples.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.samples.len()) - 1;
        self.samples[i] as f64 / 1e3
    }

    fn max_us(&self) -> f64 {
        self.samples.last().map_or(f64::NAN, |&ns| ns as f64 / 1e3)
    }

    fn mean_us(&self) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        self.samples.iter().map(|&ns| ns as f64).sum::<f64>() / self.samples.len() as f64 / 1e3
    }
}

/// A sim with one connected shard, and counters of its errors and
/// disconnects.
struct Rig {
    sim: Sim,
    bus: TypeMux,
    shard: Shard,
    errors: Arc<AtomicU64>,
    disconnects: Arc<AtomicU64>,
    drains: Vec<JoinHandle<()>>,
}

/// Starts a sim and a shard (with `compress`), and waits for the shard to be
/// connected. `subscribe` runs before the shard starts, so the subscriber
/// sees everything.
async fn rig(compress: bool) -> Rig {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        guilds: GUILDS,
        shards: 1,
        identify_window: Duration::from_millis(100),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let bus = TypeMux::new();
    let mut stages = bus.subscribe::<ShardStage>();
    let mut error_stream = bus.subscribe::<GatewayError>();
    let config = GatewayConfig::new(
        sim.token(),
        Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
    )
    .gateway_url(sim.gateway_url())
    .shard(0, 1)
    .compress(compress)
    .identify_queue(Arc::new(LocalIdentifyQueue::with_window(
        1,
        Duration::from_millis(100),
    )));

    // The bus is lossless: these streams must be drained or the shard stalls.
    let errors = Arc::new(AtomicU64::new(0));
    let counted = errors.clone();
    let error_drain = tokio::spawn(async move {
        while let Some(e) = error_stream.recv().await {
            if counted.fetch_add(1, Ordering::Relaxed) < 5 {
                eprintln!("  shard error: {e}");
            }
        }
    });

    let shard = Shard::spawn(config, bus.clone());
    tokio::time::timeout(LIMIT, async {
        while let Some(stage) = stages.recv().await {
            if stage.stage == Stage::Connected {
                return;
            }
        }
        panic!("the stage stream ended before the shard connected");
    })
    .await
    .unwrap_or_else(|_| panic!("the shard did not connect within {LIMIT:?}"));

    let disconnects = Arc::new(AtomicU64::new(0));
    let counted = disconnects.clone();
    let stage_drain = tokio::spawn(async move {
        while let Some(stage) = stages.recv().await {
            if matches!(stage.stage, Stage::Disconnected { .. }) {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    Rig {
        sim,
        bus,
        shard,
        errors,
        disconnects,
        drains: vec![error_drain, stage_drain],
    }
}

impl Rig {
    /// Closes the shard (if not yet closed), stops the bus and the sim.
    async fn finish(self, close: bool) {
        if close {
            tokio::time::timeout(LIMIT, self.shard.handle().close(CloseCode::NORMAL))
                .await
                .unwrap_or_else(|_| panic!("the shard did not close within {LIMIT:?}"));
        }
        self.bus.stop().await;
        for drain in self.drains {
            drain.await.unwrap();
        }
        self.sim.shutdown().await;
    }
}

/// What the throughput subscriber has seen so far.
#[derive(Default)]
struct Seen {
    events: AtomicU64,
    last_seq: AtomicU64,
    seq_defects: AtomicU64,
}

async fn throughput(compress: bool, window: Duration) -> Throughput {
    let rig = rig(compress).await;
    let seen = Arc::new(Seen::default());
    let mut messages = rig.bus.subscribe::<MessageCreate>();
    let counter = seen.clone();
    let subscriber = tokio::spawn(async move {
        let mut prev = 0u64;
        while let Some(msg) = messages.recv().await {
            let seq = msg.meta.seq.0;
            if prev != 0 && seq != prev + 1 {
                counter.seq_defects.fetch_add(1, Ordering::Relaxed);
            }
            prev = seq;
            // Touch the decoded message so its work is not "unused".
            std::hint::black_box(msg.content.len());
            counter.last_seq.store(seq, Ordering::Relaxed);
            counter.events.fetch_add(1, Ordering::Relaxed);
        }
    });

    rig.sim.start_traffic(f64::INFINITY);
    tokio::time::sleep(THROUGHPUT_WARMUP).await;
    let events0 = seen.events.load(Ordering::Relaxed);
    let generated0 = rig.sim.stats().generated;
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let events1 = seen.events.load(Ordering::Relaxed);
    let elapsed = t0.elapsed();
    let received_seq = seen.last_seq.load(Ordering::Relaxed);
    let stats = rig.sim.stats();

    // The live session's queue (last seq assigned) and how far its
    // connection's writer got (last seq written).
    let (queued, written) = stats
        .shards
        .iter()
        .flat_map(|s| &s.sessions)
        .map(|s| {
            let written = s
                .connections
                .iter()
                .flat_map(|c| &c.seqs)
                .map(|r| r.last)
                .max()
                .unwrap_or(0);
            (s.last_seq, written)
        })
        .max()
        .unwrap_or((0, 0));

    // Close while the generator still runs: does a close get through a loop
    // that always has a socket message ready?
    let started = Instant::now();
    let closed = tokio::time::timeout(LIMIT, rig.shard.handle().close(CloseCode::NORMAL))
        .await
        .is_ok();
    let close_under_load = closed.then(|| started.elapsed());
    rig.sim.stop_traffic();

    let row = Throughput {
        compress,
        window: elapsed,
        events: events1 - events0,
        generated: stats.generated.saturating_sub(generated0),
        sim_backlog: queued.saturating_sub(written),
        in_transit: written.saturating_sub(received_seq),
        seq_defects: seen.seq_defects.load(Ordering::Relaxed),
        errors: rig.errors.load(Ordering::Relaxed),
        disconnects: rig.disconnects.load(Ordering::Relaxed),
        close_under_load,
    };
    rig.finish(!closed).await;
    subscriber.await.unwrap();
    row
}

async fn latency(compress: bool, rate: u64) -> Latency {
    let rig = rig(compress).await;
    let base = Instant::now();
    let total = ((LATENCY_WARMUP + LATENCY_MEASURED).as_secs_f64() * rate as f64) as u64;
    let warmup_ns = LATENCY_WARMUP.as_nanos() as u64;

    let mut messages = rig.bus.subscribe::<MessageCreate>();
    let subscriber = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(total as usize);
        let mut received = 0u64;
        while received < total {
            let Some(msg) = messages.recv().await else {
                break;
            };
            let now = base.elapsed().as_nanos() as u64;
            received += 1;
            if let Ok(sent) = msg.content.parse::<u64>()
                && sent >= warmup_ns
            {
                samples.push(now.saturating_sub(sent));
            }
        }
        (received, samples)
    });

    let mut template: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    let guild = rig.sim.guild_ids()[0].to_string();
    template["guild_id"] = serde_json::Value::String(guild);

    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent = 0u64;
    while sent < total {
        tick.tick().await;
        let due = ((base.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
        while sent < due {
            let mut data = template.clone();
            let at = base.elapsed().as_nanos() as u64;
            data["content"] = serde_json::Value::String(at.to_string());
            let queued = rig.sim.dispatch_to_shard(0, "MESSAGE_CREATE", data);
            assert_eq!(queued, 1, "the shard's session did not take the message");
            sent += 1;
        }
    }

    let (received, mut samples) = tokio::time::timeout(LIMIT, subscriber)
        .await
        .unwrap_or_else(|_| panic!("not every message arrived within {LIMIT:?}"))
        .unwrap();
    assert_eq!(received, total, "the subscriber's stream ended early");
    samples.sort_unstable();
    let row = Latency {
        compress,
        rate,
        sent,
        samples,
        errors: rig.errors.load(Ordering::Relaxed),
        disconnects: rig.disconnects.load(Ordering::Relaxed),
    };
    rig.finish(true).await;
    row
}

fn compress_name(compress: bool) -> &'static str {
    if compress { "zlib-stream" } else { "none" }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.trim().parse() {
        Ok(n) => Some(n),
        Err(_) => {
            eprintln!("warning: ignoring {name}={value:?} (not a number)");
            None
        }
    }
}

fn target_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                manifest.join(dir)
            }
        }
        None => manifest.join("target"),
    }
}

/// A finite number as JSON, `null` otherwise.
fn json_num(x: f64, decimals: usize) -> String {
    if x.is_finite() {
        format!("{x:.decimals$}")
    } else {
        "null".to_owned()
    }
}

fn write_json(throughput: &[Throughput], latency: &[Latency]) -> std::io::Result<PathBuf> {
    let mut out = String::from("{\n");
    let _ = writeln!(out, "  \"workers\": {WORKERS},");
    let _ = writeln!(out, "  \"guilds\": {GUILDS},");
    out.push_str("  \"throughput\": [\n");
    for (i, r) in throughput.iter().enumerate() {
        let close_ms = r
            .close_under_load
            .map_or("null".to_owned(), |d| json_num(d.as_secs_f64() * 1e3, 1));
        let _ = writeln!(
            out,
            "    {{\"compress\":\"{}\",\"window_s\":{},\"events\":{},\"events_per_s\":{},\
             \"generated_per_s\":{},\"sim_backlog\":{},\"in_transit\":{},\"seq_defects\":{},\
             \"errors\":{},\"disconnects\":{},\"close_under_load_ms\":{}}}{}",
            compress_name(r.compress),
            json_num(r.window.as_secs_f64(), 3),
            r.events,
            json_num(r.events_per_s(), 1),
            json_num(r.generated_per_s(), 1),
            r.sim_backlog,
            r.in_transit,
            r.seq_defects,
            r.errors,
            r.disconnects,
            close_ms,
            if i + 1 < throughput.len() { "," } else { "" }
        );
    }
    out.push_str("  ],\n");
    out.push_str("  \"dispatch_to_subscriber_latency\": [\n");
    for (i, r) in latency.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {{\"compress\":\"{}\",\"rate_per_s\":{},\"warmup_s\":{},\"measured_s\":{},\
             \"sent\":{},\"samples\":{},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{},\
             \"mean_us\":{},\"errors\":{},\"disconnects\":{}}}{}",
            compress_name(r.compress),
            r.rate,
            json_num(LATENCY_WARMUP.as_secs_f64(), 3),
            json_num(LATENCY_MEASURED.as_secs_f64(), 3),
            r.sent,
            r.samples.len(),
            json_num(r.percentile_us(0.50), 1),
            json_num(r.percentile_us(0.90), 1),
            json_num(r.percentile_us(0.99), 1),
            json_num(r.max_us(), 1),
            json_num(r.mean_us(), 1),
            r.errors,
            r.disconnects,
            if i + 1 < latency.len() { "," } else { "" }
        );
    }
    out.push_str("  ]\n}\n");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("gateway.json");
    std::fs::write(&path, out)?;
    Ok(path)
}

fn print_tables(throughput: &[Throughput], latency: &[Latency]) {
    println!();
    println!(
        "throughput: generator at full speed, {} s warm-up, then a {:.1} s window",
        THROUGHPUT_WARMUP.as_secs(),
        throughput.first().map_or(0.0, |r| r.window.as_secs_f64())
    );
    println!(
        "{:<12} {:>9} {:>10} {:>12} {:>12} {:>11} {:>8} {:>7} {:>6} {:>12}",
        "compress",
        "events",
        "events/s",
        "generated/s",
        "sim backlog",
        "in transit",
        "seq err",
        "errors",
        "disc",
        "close (load)"
    );
    for r in throughput {
        let close = r.close_under_load.map_or("TIMEOUT".to_owned(), |d| {
            format!("{:.1} ms", d.as_secs_f64() * 1e3)
        });
        println!(
            "{:<12} {:>9} {:>10.0} {:>12.0} {:>12} {:>11} {:>8} {:>7} {:>6} {:>12}",
            compress_name(r.compress),
            r.events,
            r.events_per_s(),
            r.generated_per_s(),
            r.sim_backlog,
            r.in_transit,
            r.seq_defects,
            r.errors,
            r.disconnects,
            close
        );
    }
    println!(
        "sim backlog = queued in the sim, not yet written; in transit = written, not yet \
         received by the subscriber (both at the window's end)"
    );

    println!();
    println!(
        "dispatch-to-subscriber latency: {} msg/s, {:.1} s warm-up then {:.1} s measured \
         (Sim::dispatch_to_shard -> sim queue/writer -> deflate -> loopback -> inflate -> \
         decode -> bus -> subscriber)",
        latency.first().map_or(0, |r| r.rate),
        LATENCY_WARMUP.as_secs_f64(),
        LATENCY_MEASURED.as_secs_f64()
    );
    println!(
        "{:<12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>6}",
        "compress", "samples", "p50 µs", "p90 µs", "p99 µs", "max µs", "mean µs", "errors", "disc"
    );
    for r in latency {
        println!(
            "{:<12} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7} {:>6}",
            compress_name(r.compress),
            r.samples.len(),
            r.percentile_us(0.50),
            r.percentile_us(0.90),
            r.percentile_us(0.99),
            r.max_us(),
            r.mean_us(),
            r.errors,
            r.disconnects
        );
    }
    let p50 = |compress: bool| {
        latency
            .iter()
            .find(|r| r.compress == compress)
            .map_or(f64::NAN, |r| r.percentile_us(0.50))
    };
    let (on, off) = (p50(true), p50(false));
    if off > 10.0 * on {
        println!(
            "note: uncompressed p50 is {:.0}x the compressed one; the sim's sockets do not set \
             TCP_NODELAY, so Nagle can hold its uncompressed frames (see the bench docs)",
            off / on
        );
    }
}

async fn run() -> (Vec<Throughput>, Vec<Latency>) {
    let window = Duration::from_secs(
        env_u64("GATEWAY_SECS")
            .unwrap_or(DEFAULT_WINDOW_SECS)
            .max(1),
    );
    let rate = env_u64("GATEWAY_RATE").unwrap_or(DEFAULT_RATE).max(1);
    let mut throughput_rows = Vec::new();
    for compress in [true, false] {
        eprintln!("throughput, compress={}", compress_name(compress));
        throughput_rows.push(throughput(compress, window).await);
    }
    let mut latency_rows = Vec::new();
    for compress in [true, false] {
        eprintln!("latency, compress={}", compress_name(compress));
        latency_rows.push(latency(compress, rate).await);
    }
    (throughput_rows, latency_rows)
}

fn main() {
    eprintln!(
        "gateway: sim -> 1 shard -> TypeMux -> 1 MessageCreate subscriber, loopback, \
         {WORKERS}-worker runtime shared by sim and shard"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap();
    // Everything, the driver included, runs on the two workers.
    let (throughput, latency) = runtime.block_on(async { tokio::spawn(run()).await.unwrap() });

    print_tables(&throughput, &latency);
    match write_json(&throughput, &latency) {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("error: could not write gateway.json: {e}"),
    }

    let defects: u64 = throughput
        .iter()
        .map(|r| r.seq_defects + r.errors + r.disconnects)
        .chain(latency.iter().map(|r| r.errors + r.disconnects))
        .sum();
    assert_eq!(
        defects, 0,
        "the pipeline lost, repeated or reconnected (see the table)"
    );
}
