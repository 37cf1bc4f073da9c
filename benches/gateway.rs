//! End-to-end gateway benchmark, shardbus against twilight-gateway on the
//! same simulator in the same run.
//!
//! **Clients as users build them.** Each client is a separate process from
//! the `benches/peers` workspace (its own `[workspace]`, so no feature
//! unification with the simulator): `shardbus-client` (shardbus with its
//! default features, shards posting into a `TypeMux`, one `MessageCreate`
//! subscriber) and `twilight-client` (twilight-gateway 0.18 reading
//! `next_event(MESSAGE_CREATE | READY)`), built once per compression mode
//! since twilight chooses compression with cargo features. The bench builds
//! them with `cargo build --release` into `target/bench-peers` first. Both
//! binaries install the same counting global allocator and read their own
//! CPU time from `/proc/self/stat`; both run tokio's default multi-thread
//! runtime. The sim runs in this process on a 2-worker runtime, so the
//! client shares the machine's cores with it as a bot shares them with the
//! rest of its host.
//!
//! Three measurements, for `none`, `zlib-stream` and `zstd-stream`:
//!
//! 1. **Throughput** (rounds × modes × clients, the clients alternating):
//!    a fresh sim, one shard; when the client reports it is connected the
//!    sim's generator runs at full speed (`start_traffic(f64::INFINITY)`,
//!    realistic MESSAGE_CREATEs over 16 guilds, as fast as the connection
//!    drains). After a 1 s warm-up the client counts events over a window (5 s
//!    by default) and reports events/s and its CPU seconds in the window
//!    (CPU µs per event). The table shows each client's median over the
//!    rounds with min–max, the shardbus/twilight ratio of medians, and the
//!    bytes the sim wrote per event (the wire cost of each mode). shardbus
//!    also reports sequence gaps (must be 0) and how long a close took under
//!    load.
//! 2. **Idle shards**: 200 shards at `max_concurrency = 16` against a sim
//!    with the same buckets and a 50 ms identify window; both clients pace
//!    identifies at one per bucket per 100 ms. Reported: time until all are
//!    ready, the sim's bucket violations, and the heap per shard 3 s after
//!    the last READY, with the sim's heartbeat interval at 1 s so that every
//!    shard has heartbeated (an idle shard's steady state, not the moment
//!    after its READY): glibc's in-use bytes (`mallinfo2`, which also counts
//!    libzstd's own allocations) and the Rust allocator's count, both as the
//!    difference to before the first shard, divided by 200. The difference
//!    between a mode's heap and `none`'s is the decompression state a
//!    connection keeps.
//! 3. **Dispatch-to-subscriber latency** (shardbus only, in this process):
//!    the bench dispatches MESSAGE_CREATEs itself (`Sim::dispatch_to_shard`,
//!    the 1.8 KB fixture `benches/fixtures/message_create_small.json` with
//!    its `content` set to the send time) at a steady 2,000/s for 0.5 s of
//!    warm-up and 3 s measured; p50/p90/p99/max in microseconds.
//!
//! Run: `cargo bench --bench gateway` (about 3 minutes, the first run also
//! builds the clients). Results are printed as tables and written to
//! `target/bench/gateway.json` (under `CARGO_TARGET_DIR` if set), whose
//! `rows` carry `client`, `compression`, `events_per_sec` and
//! `idle_heap_bytes_per_shard`.
//!
//! Environment:
//! - `GATEWAY_SECS=N`: the throughput window in seconds (default 5).
//! - `GATEWAY_ROUNDS=N`: throughput rounds (default 3).
//! - `GATEWAY_SHARDS=N`: idle shards (default 200).
//! - `GATEWAY_RATE=N`: the latency run's messages per second (default 2000).
//! - `GATEWAY_MODES=none,zlib,zstd`: the compression modes to run (default all).
//!
//! The tables are printed and the JSON written first; then the bench panics
//! if a check failed (a sequence gap, a client error, a disconnect).
//!
//! Command-line arguments (`--bench` from `cargo bench`, filters) are ignored.

#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::latency::{LATENCY_MEASURED, LATENCY_WARMUP, LIMIT, Latency};
use common::peers::{Binaries, Client, MODES, Mode, client_args, field, run_client};
use common::report::{env_u64, json_num, spread, target_dir};
use shardbus::TypeMux;
use shardbus::gateway::{
    CloseCode, GatewayConfig, GatewayError, Intents, Shard, ShardStage, Stage,
};
use shardbus::shard::LocalIdentifyQueue;
use shardbus_sim::{Sim, SimConfig};
use tokio::task::JoinHandle;

/// Worker threads of the sim's runtime.
const WORKERS: usize = 2;
/// Guilds in the throughput sim (all on shard 0).
const GUILDS: u32 = 16;
/// Generator time before the throughput window opens, ms.
const WARMUP_MS: u64 = 1000;
/// Default throughput window.
const DEFAULT_WINDOW_SECS: u64 = 5;
/// Default throughput rounds.
const DEFAULT_ROUNDS: u64 = 3;
/// Default idle shard count.
const DEFAULT_SHARDS: u64 = 200;
/// `max_concurrency` of the idle run.
const MAX_CONCURRENCY: u32 = 16;
/// The sim's identify window in the idle run.
const SIM_WINDOW: Duration = Duration::from_millis(50);
/// The clients' identify pacing in the idle run, per bucket.
const CLIENT_WINDOW_MS: u64 = 100;
/// How long idle shards sit after the last READY before the heap is read.
const SETTLE_MS: u64 = 3000;
/// The sim's heartbeat interval in the idle run: shorter than the settle
/// time, so each shard is measured after it has heartbeated.
const IDLE_HEARTBEAT: Duration = Duration::from_secs(1);
/// Default latency-run rate, messages per second.
const DEFAULT_RATE: u64 = 2000;
/// One throughput run of one client.
struct ThroughputRun {
    client: Client,
    mode: Mode,
    events_per_s: f64,
    cpu_us_per_event: f64,
    wire_bytes_per_event: f64,
    seq_defects: f64,
    errors: f64,
    disconnects: f64,
    close_ms: f64,
}

async fn throughput(binaries: &Binaries, client: Client, mode: Mode, secs: u64) -> ThroughputRun {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        guilds: GUILDS,
        shards: 1,
        identify_window: Duration::from_millis(100),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let args = client_args(
        "throughput",
        &sim,
        mode,
        &[
            ("--warmup-ms", WARMUP_MS.to_string()),
            ("--secs", secs.to_string()),
        ],
    );
    let stats0 = std::sync::Mutex::new(None);
    let v = run_client(binaries, client, mode, &args, || {
        sim.start_traffic(f64::INFINITY);
        *stats0.lock().unwrap() = Some(sim.stats());
    })
    .await;
    sim.stop_traffic();
    let stats1 = sim.stats();
    let stats0 = stats0.into_inner().unwrap().unwrap();
    let events = field(&v, "events");
    let written = stats1.wire_bytes.saturating_sub(stats0.wire_bytes);
    // Dispatches written, not generated: once a client has closed with a
    // resumable code the generator keeps filling its session's replay
    // buffer, which never reaches a wire.
    let sent = |stats: &shardbus_sim::SimStats| -> u64 {
        stats.shards.iter().map(|s| s.dispatches_sent).sum()
    };
    let dispatched = sent(&stats1).saturating_sub(sent(&stats0));
    sim.shutdown().await;
    ThroughputRun {
        client,
        mode,
        events_per_s: events / field(&v, "secs"),
        cpu_us_per_event: field(&v, "cpu_secs") * 1e6 / events,
        wire_bytes_per_event: written as f64 / dispatched.max(1) as f64,
        seq_defects: field(&v, "seq_defects"),
        errors: field(&v, "errors"),
        disconnects: field(&v, "disconnects"),
        close_ms: field(&v, "close_ms"),
    }
}

/// One idle run of one client.
struct IdleRun {
    client: Client,
    mode: Mode,
    shards: u64,
    all_ready_ms: f64,
    bucket_violations: usize,
    heap_per_shard: f64,
    rust_heap_per_shard: f64,
    errors: f64,
}

async fn idle(binaries: &Binaries, client: Client, mode: Mode, shards: u64) -> IdleRun {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        guilds: u32::try_from(shards).unwrap(),
        shards: u32::try_from(shards).unwrap(),
        max_concurrency: MAX_CONCURRENCY,
        identify_window: SIM_WINDOW,
        heartbeat_interval: IDLE_HEARTBEAT,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let args = client_args(
        "idle",
        &sim,
        mode,
        &[
            ("--shards", shards.to_string()),
            ("--max-concurrency", MAX_CONCURRENCY.to_string()),
            ("--window-ms", CLIENT_WINDOW_MS.to_string()),
            ("--settle-ms", SETTLE_MS.to_string()),
        ],
    );
    let v = run_client(binaries, client, mode, &args, || {}).await;
    let bucket_violations = sim.log().bucket_violations.len();
    sim.shutdown().await;
    IdleRun {
        client,
        mode,
        shards,
        all_ready_ms: field(&v, "all_ready_ms"),
        bucket_violations,
        heap_per_shard: field(&v, "heap_per_shard"),
        rust_heap_per_shard: field(&v, "rust_heap_per_shard"),
        errors: field(&v, "errors"),
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

/// Starts a sim and a shard (with `compression`), and waits for the shard to be
/// connected. `subscribe` runs before the shard starts, so the subscriber
/// sees everything.
async fn rig(compression: Mode) -> Rig {
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
    .compression(compression.library())
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

async fn latency(compression: Mode, rate: u64) -> Latency {
    let rig = rig(compression).await;
    let templates = [common::latency::template(&rig.sim.guild_ids()[0])];
    let (sent, samples) = common::latency::sample(&rig.bus, rate, &templates, |_, data| {
        rig.sim.dispatch_to_shard(0, "MESSAGE_CREATE", data)
    })
    .await;
    let row = Latency {
        compression,
        rate,
        sent,
        samples,
        errors: rig.errors.load(Ordering::Relaxed),
        disconnects: rig.disconnects.load(Ordering::Relaxed),
    };
    rig.finish(true).await;
    row
}

/// One client and mode, summarised over its runs.
struct Row {
    client: Client,
    mode: Mode,
    rounds: usize,
    events_per_s: (f64, f64, f64),
    cpu_us_per_event: f64,
    wire_bytes_per_event: f64,
    idle: Option<IdleRun>,
}

fn rows(runs: &[ThroughputRun], idle: Vec<IdleRun>, modes: &[Mode]) -> Vec<Row> {
    let mut idle = idle;
    let mut out = Vec::new();
    for &mode in modes {
        for client in [Client::Shardbus, Client::Twilight] {
            let mine: Vec<&ThroughputRun> = runs
                .iter()
                .filter(|r| r.client == client && r.mode == mode)
                .collect();
            let at = idle
                .iter()
                .position(|r| r.client == client && r.mode == mode);
            out.push(Row {
                client,
                mode,
                rounds: mine.len(),
                events_per_s: spread(mine.iter().map(|r| r.events_per_s).collect()),
                cpu_us_per_event: spread(mine.iter().map(|r| r.cpu_us_per_event).collect()).0,
                wire_bytes_per_event: spread(mine.iter().map(|r| r.wire_bytes_per_event).collect())
                    .0,
                idle: at.map(|i| idle.remove(i)),
            });
        }
    }
    out
}

fn ratio(rows: &[Row], mode: Mode, f: impl Fn(&Row) -> f64) -> f64 {
    let get = |client| {
        rows.iter()
            .find(|r| r.client == client && r.mode == mode)
            .map_or(f64::NAN, &f)
    };
    get(Client::Shardbus) / get(Client::Twilight)
}

fn write_json(
    rows: &[Row],
    runs: &[ThroughputRun],
    latency: &[Latency],
) -> std::io::Result<PathBuf> {
    let mut out = String::from("{\n");
    let _ = writeln!(out, "  \"sim_workers\": {WORKERS},");
    let _ = writeln!(out, "  \"guilds\": {GUILDS},");
    out.push_str("  \"rows\": [\n");
    for (i, r) in rows.iter().enumerate() {
        let idle = r.idle.as_ref();
        let _ = writeln!(
            out,
            "    {{\"client\":\"{}\",\"compression\":\"{}\",\"rounds\":{},\"events_per_sec\":{},\
             \"events_per_sec_min\":{},\"events_per_sec_max\":{},\"cpu_us_per_event\":{},\
             \"wire_bytes_per_event\":{},\"idle_shards\":{},\"idle_heap_bytes_per_shard\":{},\
             \"idle_rust_heap_bytes_per_shard\":{},\"all_ready_ms\":{},\"bucket_violations\":{}}}{}",
            r.client.name(),
            r.mode.name(),
            r.rounds,
            json_num(r.events_per_s.0, 1),
            json_num(r.events_per_s.1, 1),
            json_num(r.events_per_s.2, 1),
            json_num(r.cpu_us_per_event, 3),
            json_num(r.wire_bytes_per_event, 1),
            idle.map_or(0, |i| i.shards),
            json_num(idle.map_or(f64::NAN, |i| i.heap_per_shard), 0),
            json_num(idle.map_or(f64::NAN, |i| i.rust_heap_per_shard), 0),
            json_num(idle.map_or(f64::NAN, |i| i.all_ready_ms), 1),
            idle.map_or("null".to_owned(), |i| i.bucket_violations.to_string()),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    out.push_str("  ],\n  \"throughput_runs\": [\n");
    for (i, r) in runs.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {{\"client\":\"{}\",\"compression\":\"{}\",\"events_per_sec\":{},\
             \"cpu_us_per_event\":{},\"seq_defects\":{},\"errors\":{},\"close_under_load_ms\":{}}}{}",
            r.client.name(),
            r.mode.name(),
            json_num(r.events_per_s, 1),
            json_num(r.cpu_us_per_event, 3),
            json_num(r.seq_defects, 0),
            json_num(r.errors, 0),
            json_num(r.close_ms, 1),
            if i + 1 < runs.len() { "," } else { "" }
        );
    }
    out.push_str("  ],\n  \"dispatch_to_subscriber_latency\": [\n");
    for (i, r) in latency.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {{\"client\":\"shardbus\",\"compression\":\"{}\",\"rate_per_s\":{},\"sent\":{},\
             \"samples\":{},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{},\
             \"mean_us\":{},\"errors\":{},\"disconnects\":{}}}{}",
            r.compression.name(),
            r.rate,
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

fn print_tables(rows: &[Row], runs: &[ThroughputRun], latency: &[Latency], secs: u64) {
    println!();
    println!(
        "end to end: sim at full speed -> one shard -> one MessageCreate consumer, \
         {WARMUP_MS} ms warm-up, {secs} s window; median (min-max) over rounds, clients alternating"
    );
    println!(
        "{:<12} {:<9} {:>26} {:>7} {:>9} {:>9} | idle: {:>9} {:>9} {:>8} {:>5}",
        "compression",
        "client",
        "events/s",
        "ratio",
        "CPU µs/ev",
        "wire B/ev",
        "heap/shd",
        "rust/shd",
        "ready ms",
        "viol"
    );
    for r in rows {
        let (med, min, max) = r.events_per_s;
        let ratio_s = if r.client == Client::Shardbus {
            format!("{:.2}x", ratio(rows, r.mode, |r| r.events_per_s.0))
        } else {
            String::new()
        };
        let idle = r.idle.as_ref();
        println!(
            "{:<12} {:<9} {:>26} {:>7} {:>9.2} {:>9.0} | idle: {:>9.0} {:>9.0} {:>8.0} {:>5}",
            r.mode.name(),
            r.client.name(),
            format!("{med:.0} ({min:.0}-{max:.0})"),
            ratio_s,
            r.cpu_us_per_event,
            r.wire_bytes_per_event,
            idle.map_or(f64::NAN, |i| i.heap_per_shard),
            idle.map_or(f64::NAN, |i| i.rust_heap_per_shard),
            idle.map_or(f64::NAN, |i| i.all_ready_ms),
            idle.map_or("-".to_owned(), |i| i.bucket_violations.to_string()),
        );
    }
    for client in [Client::Shardbus, Client::Twilight] {
        let heap = |mode| {
            rows.iter()
                .find(|r| r.client == client && r.mode == mode)
                .and_then(|r| r.idle.as_ref())
                .map_or(f64::NAN, |i| i.heap_per_shard)
        };
        println!(
            "{}: decompression state per connection (idle heap over none's): zlib-stream {:.0} B, \
             zstd-stream {:.0} B",
            client.name(),
            heap(Mode::Zlib) - heap(Mode::None),
            heap(Mode::Zstd) - heap(Mode::None)
        );
    }
    let closes: Vec<f64> = runs
        .iter()
        .filter(|r| r.client == Client::Shardbus)
        .map(|r| r.close_ms)
        .collect();
    let (med, _, max) = spread(closes);
    println!("shardbus close(1000) under full load: median {med:.1} ms, max {max:.1} ms");

    println!();
    println!(
        "shardbus dispatch-to-subscriber latency: {} msg/s, {:.1} s warm-up then {:.1} s measured",
        latency.first().map_or(0, |r| r.rate),
        LATENCY_WARMUP.as_secs_f64(),
        LATENCY_MEASURED.as_secs_f64()
    );
    println!(
        "{:<12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>6}",
        "compression",
        "samples",
        "p50 µs",
        "p90 µs",
        "p99 µs",
        "max µs",
        "mean µs",
        "errors",
        "disc"
    );
    for r in latency {
        println!(
            "{:<12} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7} {:>6}",
            r.compression.name(),
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
}

fn main() {
    let secs = env_u64("GATEWAY_SECS")
        .unwrap_or(DEFAULT_WINDOW_SECS)
        .max(1);
    let rounds = env_u64("GATEWAY_ROUNDS").unwrap_or(DEFAULT_ROUNDS).max(1);
    let shards = env_u64("GATEWAY_SHARDS").unwrap_or(DEFAULT_SHARDS).max(1);
    let rate = env_u64("GATEWAY_RATE").unwrap_or(DEFAULT_RATE).max(1);
    let modes = common::peers::modes("GATEWAY_MODES", &MODES);
    let binaries = Binaries::build();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap();
    let (runs, idle_runs, latency_rows) = runtime.block_on(async {
        let mut runs = Vec::new();
        for round in 0..rounds {
            for &mode in &modes {
                // Alternate which client goes first.
                let order = if round % 2 == 0 {
                    [Client::Shardbus, Client::Twilight]
                } else {
                    [Client::Twilight, Client::Shardbus]
                };
                for client in order {
                    eprintln!(
                        "round {round}: throughput, {} {}",
                        client.name(),
                        mode.name()
                    );
                    runs.push(throughput(&binaries, client, mode, secs).await);
                }
            }
        }
        let mut idle_runs = Vec::new();
        for &mode in &modes {
            for client in [Client::Shardbus, Client::Twilight] {
                eprintln!("idle: {shards} shards, {} {}", client.name(), mode.name());
                idle_runs.push(idle(&binaries, client, mode, shards).await);
            }
        }
        let mut latency_rows = Vec::new();
        for &mode in &modes {
            eprintln!("latency, {}", mode.name());
            latency_rows.push(tokio::spawn(latency(mode, rate)).await.unwrap());
        }
        (runs, idle_runs, latency_rows)
    });

    // Each bucket violation is one op 9 the client survives: a measured
    // result (the table shows it), not a defect of the run.
    let mut defects = Vec::new();
    for r in &runs {
        let n = r.seq_defects + r.errors + r.disconnects;
        if n != 0.0 {
            defects.push(format!(
                "throughput {} {}: seq defects {}, errors {}, disconnects {}",
                r.client.name(),
                r.mode.name(),
                r.seq_defects,
                r.errors,
                r.disconnects
            ));
        }
    }
    for r in &idle_runs {
        if r.errors - r.bucket_violations as f64 > 0.0 || r.errors.is_nan() {
            defects.push(format!(
                "idle {} {}: errors {}, bucket violations {}",
                r.client.name(),
                r.mode.name(),
                r.errors,
                r.bucket_violations
            ));
        }
    }
    for r in &latency_rows {
        if r.errors + r.disconnects != 0 {
            defects.push(format!(
                "latency {}: errors {}, disconnects {}",
                r.compression.name(),
                r.errors,
                r.disconnects
            ));
        }
    }
    let rows = rows(&runs, idle_runs, &modes);
    print_tables(&rows, &runs, &latency_rows, secs);
    match write_json(&rows, &runs, &latency_rows) {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("error: could not write gateway.json: {e}"),
    }
    assert!(
        defects.is_empty(),
        "a client lost, repeated or reconnected: {defects:#?}"
    );
}
