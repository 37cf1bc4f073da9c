//! Many shards: shardbus's [`Manager`] against twilight-gateway on the same
//! simulator in the same run (issue 10).
//!
//! The clients are the processes of `benches/peers`, built as users build
//! them (see `benches/gateway.rs`, whose helpers live in `benches/common`):
//! `shardbus-client` runs a [`Manager`] that asks the sim's `GET
//! /gateway/bot` for the shard count and `max_concurrency`, and
//! `twilight-client` runs twilight-gateway 0.18 shards, one task each, on a
//! queue with the same pacing. The sim runs in this process on a 2-worker
//! runtime and shares the machine's 2 cores with the client.
//!
//! Three measurements:
//!
//! 1. **Throughput** (zlib-stream and zstd-stream; rounds × modes × clients,
//!    the clients alternating): a fresh sim with 16 shards (4 guilds each)
//!    at `max_concurrency = 16`; once every shard is ready the sim's
//!    generator runs at full speed (realistic MESSAGE_CREATEs spread over the
//!    64 guilds, as fast as the slowest connection drains). After a 1 s
//!    warm-up the client counts `MessageCreate`s of all 16 shards at one
//!    subscriber (shardbus: one subscriber on the manager's bus; twilight:
//!    each shard's task bumps one shared counter) over the window. Reported:
//!    median events/s over the rounds (min–max), the shardbus/twilight
//!    ratio, CPU µs per event, the sim's wire bytes per event, and how long
//!    closing all 16 under load took. The target is ≥ 150k events/s total.
//! 2. **Dispatch-to-subscriber latency** (shardbus only, in this process, the
//!    gateway bench's method): a [`Manager`] with 16 shards; the bench
//!    dispatches the 1.8 KB fixture round-robin over the 16 shards at a
//!    steady `SHARDS_RATE` messages/s in total (2,000 by default) and one
//!    `MessageCreate` subscriber takes p50/p90/p99 of socket write →
//!    subscriber.
//! 3. **Idle shards and startup** (none, zlib-stream, zstd-stream; both
//!    clients): 1,000 shards at `max_concurrency = 16` against a sim with a
//!    50 ms identify window, the clients pacing at 60 ms per bucket. Startup:
//!    the time until every shard is ready (shardbus: `Manager::open`
//!    returning), against the ideal `(ceil(1000 / 16) − 1) × 60 ms` the
//!    client's own window allows, and the sim's bucket violations (must be
//!    0). Memory, 3 s after the last READY with a 1 s heartbeat interval (so
//!    every shard has heartbeated): the heap per shard over what the process
//!    held before the manager (or the shards) existed, as glibc's in-use
//!    bytes (`mallinfo2`, which counts libzstd's own allocations) and as the
//!    counting global allocator's (Rust allocations only). The target is
//!    ≤ 64 KiB per idle shard; zstd-stream cannot meet it (libzstd's decoder
//!    context is ~750 KB per connection by its window) and is reported on
//!    its own line.
//!
//! 1,000 shards need 1,000 sockets in the client and 1,000 in this process
//! (the sim): the bench raises its soft `RLIMIT_NOFILE` to the hard limit
//! at start (the clients inherit it) and, if that is still too low, runs
//! fewer idle shards and says so.
//!
//! Run: `cargo bench --bench shards` (about 3 minutes; the first run also
//! builds the clients). Tables are printed and every run written as a row
//! of `target/bench/shards.json` (under `CARGO_TARGET_DIR` if set): `run`
//! (`throughput`, `latency`, `idle`), `client`, `compression`, `shards`,
//! `events_per_sec`, `p50_us`, `p99_us`, and for idle runs `idle_shards`,
//! `heap_bytes_per_shard`, `rust_heap_bytes_per_shard`, `ready_ms`,
//! `ideal_ms`, `violations`; `summary` holds the medians and ratios.
//!
//! Environment:
//! - `SHARDS_QUICK=1`: 1 round of 2 s and 200 idle shards (a smoke run).
//! - `SHARDS_SECS=N`: the throughput window in seconds (default 5).
//! - `SHARDS_ROUNDS=N`: throughput rounds (default 3).
//! - `SHARDS_IDLE=N`: idle shards (default 1000).
//! - `SHARDS_RATE=N`: the latency run's messages per second (default 2000).
//! - `SHARDS_MODES=none,zlib,zstd`: the modes to run (default all; the
//!   throughput and latency runs skip `none`).
//! - `SHARDS_RUNS=throughput,latency,idle`: the measurements to run.
//!
//! The tables are printed and the JSON written first; then the bench panics
//! if a check failed (a sequence gap, a client error, a disconnect, a bucket
//! violation). Command-line arguments are ignored.

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
use shardbus::gateway::{GatewayConfig, GatewayError, Intents, ShardStage, Stage};
use shardbus::shard::Manager;
use shardbus_sim::{Sim, SimConfig, SimLog};

/// Worker threads of the sim's runtime.
const WORKERS: usize = 2;
/// Shards of the throughput and latency runs.
const SHARDS: u32 = 16;
/// Guilds per shard in the throughput run.
const GUILDS_PER_SHARD: u32 = 4;
/// `max_concurrency` of every run.
const MAX_CONCURRENCY: u32 = 16;
/// The sim's identify window.
const SIM_WINDOW: Duration = Duration::from_millis(50);
/// The clients' identify window per bucket, a bit above the sim's.
const CLIENT_WINDOW_MS: u64 = 60;
/// Generator time before the throughput window opens, ms.
const WARMUP_MS: u64 = 1000;
/// Default throughput window.
const DEFAULT_SECS: u64 = 5;
/// Default throughput rounds.
const DEFAULT_ROUNDS: u64 = 3;
/// Default idle shard count.
const DEFAULT_IDLE: u64 = 1000;
/// Default latency-run rate, messages per second over all shards.
const DEFAULT_RATE: u64 = 2000;
/// How long idle shards sit after the last READY before the heap is read.
const SETTLE_MS: u64 = 3000;
/// The sim's heartbeat interval in the idle run: shorter than the settle
/// time, so each shard is measured after it has heartbeated.
const IDLE_HEARTBEAT: Duration = Duration::from_secs(1);
/// File descriptors a process needs besides one per shard.
const FD_SPARE: u64 = 128;
/// The throughput target, events/s over 16 shards.
const TARGET_EVENTS: f64 = 150_000.0;
/// The idle heap target per shard, bytes.
const TARGET_HEAP: f64 = 64.0 * 1024.0;

/// What this run does, from the environment.
struct Options {
    secs: u64,
    rounds: u64,
    idle_shards: u64,
    rate: u64,
    modes: Vec<Mode>,
    throughput: bool,
    latency: bool,
    idle: bool,
}

impl Options {
    fn from_env() -> Self {
        let quick = env_u64("SHARDS_QUICK").is_some_and(|q| q != 0);
        let runs = std::env::var("SHARDS_RUNS").ok();
        let run = |name: &str| {
            runs.as_deref()
                .is_none_or(|list| list.split(',').any(|s| s.trim() == name))
        };
        Self {
            secs: env_u64("SHARDS_SECS")
                .unwrap_or(if quick { 2 } else { DEFAULT_SECS })
                .max(1),
            rounds: env_u64("SHARDS_ROUNDS")
                .unwrap_or(if quick { 1 } else { DEFAULT_ROUNDS })
                .max(1),
            idle_shards: env_u64("SHARDS_IDLE")
                .unwrap_or(if quick { 200 } else { DEFAULT_IDLE })
                .max(1),
            rate: env_u64("SHARDS_RATE").unwrap_or(DEFAULT_RATE).max(1),
            modes: common::peers::modes("SHARDS_MODES", &MODES),
            throughput: run("throughput"),
            latency: run("latency"),
            idle: run("idle"),
        }
    }

    /// The modes of the throughput and latency runs (the two).
    fn compressed(&self) -> Vec<Mode> {
        self.modes
            .iter()
            .copied()
            .filter(|&m| m != Mode::None)
            .collect()
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft
/// limit in force afterwards.
#[allow(unsafe_code)]
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        eprintln!("warning: getrlimit(RLIMIT_NOFILE) failed");
        return 1024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit, read only by the call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            eprintln!(
                "raised RLIMIT_NOFILE from {} to {}",
                limit.rlim_cur, limit.rlim_max
            );
            limit.rlim_cur = limit.rlim_max;
        } else {
            eprintln!(
                "warning: could not raise RLIMIT_NOFILE to {}",
                limit.rlim_max
            );
        }
    }
    limit.rlim_cur
}

/// User plus system CPU seconds this process (the sim) has used.
#[allow(unsafe_code)]
fn own_cpu_secs() -> f64 {
    // SAFETY: all-zero is a valid `rusage` (plain integers).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid and writable for the call's duration.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The arguments every multi-shard client run gets (each client reads the
/// ones it needs).
fn shard_args(sim: &Sim, shards: u32) -> Vec<(&'static str, String)> {
    vec![
        ("--api", sim.http_url()),
        ("--shards", shards.to_string()),
        ("--max-concurrency", MAX_CONCURRENCY.to_string()),
        ("--window-ms", CLIENT_WINDOW_MS.to_string()),
    ]
}

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
    /// Cores the sim (this process) kept busy from `ready` to the end.
    sim_cores: f64,
}

async fn throughput(binaries: &Binaries, client: Client, mode: Mode, secs: u64) -> ThroughputRun {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        guilds: SHARDS * GUILDS_PER_SHARD,
        shards: SHARDS,
        max_concurrency: MAX_CONCURRENCY,
        identify_window: SIM_WINDOW,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut extra = shard_args(&sim, SHARDS);
    extra.push(("--warmup-ms", WARMUP_MS.to_string()));
    extra.push(("--secs", secs.to_string()));
    let args = client_args("shards-throughput", &sim, mode, &extra);
    let stats0 = std::sync::Mutex::new(None);
    let v = run_client(binaries, client, mode, &args, || {
        sim.start_traffic(f64::INFINITY);
        *stats0.lock().unwrap() = Some((sim.stats(), own_cpu_secs(), std::time::Instant::now()));
    })
    .await;
    sim.stop_traffic();
    let stats1 = sim.stats();
    let (stats0, cpu0, t0) = stats0.into_inner().unwrap().unwrap();
    let sim_cores = (own_cpu_secs() - cpu0) / t0.elapsed().as_secs_f64();
    let events = field(&v, "events");
    let written = stats1.wire_bytes.saturating_sub(stats0.wire_bytes);
    let dispatched = stats1
        .dispatches_sent()
        .saturating_sub(stats0.dispatches_sent());
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
        sim_cores,
    }
}

/// A [`Manager`] of 16 shards on a fresh sim, open, with its error and
/// stage streams drained into counters.
struct Rig {
    sim: Sim,
    manager: Manager,
    errors: Arc<AtomicU64>,
    disconnects: Arc<AtomicU64>,
}

async fn rig(mode: Mode) -> Rig {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        guilds: SHARDS * GUILDS_PER_SHARD,
        shards: SHARDS,
        max_concurrency: MAX_CONCURRENCY,
        identify_window: SIM_WINDOW,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let identify = GatewayConfig::new(
        sim.token(),
        Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
    )
    .compression(mode.library());
    let http = shardbus::http::Client::new(sim.token())
        .unwrap()
        .api_base(format!("{}/api/v10", sim.http_url()));
    let manager = Manager::builder(identify)
        .http(http)
        .identify_window(Duration::from_millis(CLIENT_WINDOW_MS))
        .fetch()
        .await
        .unwrap();
    // The bus is lossless: these streams must be drained or the shards stall.
    let errors = Arc::new(AtomicU64::new(0));
    let counted = errors.clone();
    let mut error_stream = manager.bus().subscribe::<GatewayError>();
    tokio::spawn(async move {
        while let Some(e) = error_stream.recv().await {
            if counted.fetch_add(1, Ordering::Relaxed) < 5 {
                eprintln!("  shard error: {e}");
            }
        }
    });
    let mut stages = manager.bus().subscribe::<ShardStage>();
    tokio::time::timeout(LIMIT, manager.open())
        .await
        .unwrap_or_else(|_| panic!("the shards were not ready within {LIMIT:?}"))
        .unwrap();
    let disconnects = Arc::new(AtomicU64::new(0));
    let counted = disconnects.clone();
    tokio::spawn(async move {
        while let Some(stage) = stages.recv().await {
            if matches!(stage.stage, Stage::Disconnected { .. }) {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    Rig {
        sim,
        manager,
        errors,
        disconnects,
    }
}

async fn latency(mode: Mode, rate: u64) -> Latency {
    let rig = rig(mode).await;
    let templates: Vec<_> = (0..SHARDS)
        .map(|id| common::latency::template(&rig.sim.guilds_for_shard(id, SHARDS)[0]))
        .collect();
    let (sent, samples) =
        common::latency::sample(rig.manager.bus(), rate, &templates, |ix, data| {
            let shard = u32::try_from(ix).unwrap();
            rig.sim.dispatch_to_shard(shard, "MESSAGE_CREATE", data)
        })
        .await;
    let row = Latency {
        compression: mode,
        rate,
        sent,
        samples,
        errors: rig.errors.load(Ordering::Relaxed),
        disconnects: rig.disconnects.load(Ordering::Relaxed),
    };
    tokio::time::timeout(LIMIT, rig.manager.close())
        .await
        .unwrap_or_else(|_| panic!("the shards did not close within {LIMIT:?}"))
        .unwrap();
    rig.manager.bus().stop().await;
    rig.sim.shutdown().await;
    row
}

/// One idle (memory and startup) run of one client.
struct IdleRun {
    client: Client,
    mode: Mode,
    shards: u64,
    ready_ms: f64,
    ideal_ms: f64,
    violations: usize,
    /// Connections the sim accepted (more than `shards`: some reconnected).
    connections: usize,
    /// How the sim saw the identifies.
    pacing: Pacing,
    heap_per_shard: f64,
    rust_heap_per_shard: f64,
    errors: f64,
}

/// An idle run's identifies as the sim logged them: where the startup time
/// went.
struct Pacing {
    /// From the first connection to the first identify, ms.
    first_identify_ms: f64,
    /// From the first identify to the last, ms (ideal: `ideal_ms`).
    span_ms: f64,
    /// The mean gap between consecutive identifies of one bucket, ms
    /// (ideal: the client's window).
    bucket_gap_ms: f64,
}

impl Pacing {
    fn of(log: &SimLog) -> Self {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let first_connect = log.connections.iter().map(|c| c.opened_at).min();
        let times: Vec<Duration> = log.ready_identifies().map(|i| i.at).collect();
        let (Some(connect), Some(&first), Some(&last)) =
            (first_connect, times.iter().min(), times.iter().max())
        else {
            return Self {
                first_identify_ms: f64::NAN,
                span_ms: f64::NAN,
                bucket_gap_ms: f64::NAN,
            };
        };
        let mut buckets: std::collections::BTreeMap<u32, Vec<Duration>> = Default::default();
        for i in log.ready_identifies() {
            buckets.entry(i.bucket).or_default().push(i.at);
        }
        let mut gaps = Vec::new();
        for times in buckets.values_mut() {
            times.sort_unstable();
            gaps.extend(times.windows(2).map(|w| ms(w[1] - w[0])));
        }
        Self {
            first_identify_ms: ms(first.saturating_sub(connect)),
            span_ms: ms(last - first),
            bucket_gap_ms: gaps.iter().sum::<f64>() / gaps.len().max(1) as f64,
        }
    }
}

/// `(ceil(shards / max_concurrency) − 1) × window`: the last bucket's last
/// identify waits that long behind the first.
fn ideal_ms(shards: u64) -> f64 {
    (shards
        .div_ceil(u64::from(MAX_CONCURRENCY))
        .saturating_sub(1)
        * CLIENT_WINDOW_MS) as f64
}

async fn idle(binaries: &Binaries, client: Client, mode: Mode, shards: u64) -> IdleRun {
    let n = u32::try_from(shards).unwrap();
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        guilds: n,
        shards: n,
        max_concurrency: MAX_CONCURRENCY,
        identify_window: SIM_WINDOW,
        heartbeat_interval: IDLE_HEARTBEAT,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut extra = shard_args(&sim, n);
    extra.push(("--settle-ms", SETTLE_MS.to_string()));
    // shardbus: the Manager; twilight: the gateway bench's idle mode, which
    // already runs N shards on the same pacing.
    let run = match client {
        Client::Shardbus => "shards-idle",
        Client::Twilight => "idle",
    };
    let args = client_args(run, &sim, mode, &extra);
    let v = run_client(binaries, client, mode, &args, || {}).await;
    let log = sim.log();
    sim.shutdown().await;
    for v in log.bucket_violations.iter().take(3) {
        eprintln!(
            "  bucket violation: shard {} (bucket {}) at {:.1} ms, {:.1} ms after the bucket's \
             previous identify",
            v.shard.id,
            v.bucket,
            v.at.as_secs_f64() * 1e3,
            v.since_previous.as_secs_f64() * 1e3
        );
    }
    IdleRun {
        client,
        mode,
        shards,
        ready_ms: field(&v, "all_ready_ms"),
        ideal_ms: ideal_ms(shards),
        violations: log.bucket_violations.len(),
        connections: log.connections.len(),
        pacing: Pacing::of(&log),
        heap_per_shard: field(&v, "heap_per_shard"),
        rust_heap_per_shard: field(&v, "rust_heap_per_shard"),
        errors: field(&v, "errors"),
    }
}

/// Everything one run of the bench measured.
struct Results {
    runs: Vec<ThroughputRun>,
    latency: Vec<Latency>,
    idle: Vec<IdleRun>,
}

impl Results {
    /// Median (min, max) events/s of `client` in `mode`.
    fn events(&self, client: Client, mode: Mode) -> (f64, f64, f64) {
        spread(self.mine(client, mode).map(|r| r.events_per_s).collect())
    }

    fn mine(&self, client: Client, mode: Mode) -> impl Iterator<Item = &ThroughputRun> {
        self.runs
            .iter()
            .filter(move |r| r.client == client && r.mode == mode)
    }

    fn median(&self, client: Client, mode: Mode, f: impl Fn(&ThroughputRun) -> f64) -> f64 {
        spread(self.mine(client, mode).map(f).collect()).0
    }

    fn idle_of(&self, client: Client, mode: Mode) -> Option<&IdleRun> {
        self.idle
            .iter()
            .find(|r| r.client == client && r.mode == mode)
    }

    fn latency_of(&self, mode: Mode) -> Option<&Latency> {
        self.latency.iter().find(|r| r.compression == mode)
    }

    /// The modes that have throughput runs, in table order.
    fn throughput_modes(&self) -> Vec<Mode> {
        MODES
            .into_iter()
            .filter(|&m| self.runs.iter().any(|r| r.mode == m))
            .collect()
    }

    /// What must not happen: lost or repeated events, errors, reconnects,
    /// bucket violations.
    fn defects(&self) -> Vec<String> {
        let mut defects = Vec::new();
        for r in &self.runs {
            let n = r.seq_defects + r.errors + r.disconnects;
            if n != 0.0 || n.is_nan() {
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
        for r in &self.latency {
            if r.errors + r.disconnects != 0 {
                defects.push(format!(
                    "latency {}: errors {}, disconnects {}",
                    r.compression.name(),
                    r.errors,
                    r.disconnects
                ));
            }
        }
        // twilight's `Queue` only grants (it hears nothing of the send), so
        // the peer's queue paces grants and an identify sent late can land
        // inside the sim's window: a measured result, as in the gateway
        // bench, each violation one op 9 the shard survives. shardbus's
        // queue counts from the send and must have none.
        for r in &self.idle {
            let tolerated = match r.client {
                Client::Shardbus => 0.0,
                Client::Twilight => 2.0 * r.violations as f64,
            };
            let shardbus_violations = r.client == Client::Shardbus && r.violations != 0;
            if r.errors > tolerated || r.errors.is_nan() || shardbus_violations {
                defects.push(format!(
                    "idle {} {}: errors {}, bucket violations {}, connections {} for {} shards",
                    r.client.name(),
                    r.mode.name(),
                    r.errors,
                    r.violations,
                    r.connections,
                    r.shards
                ));
            }
        }
        defects
    }
}

/// One JSON row; every row has every key (`null` where it does not apply).
#[derive(Default)]
struct JsonRow {
    run: &'static str,
    client: &'static str,
    compression: &'static str,
    shards: u64,
    events_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    idle_shards: Option<u64>,
    heap_bytes_per_shard: f64,
    rust_heap_bytes_per_shard: f64,
    ready_ms: f64,
    ideal_ms: f64,
    violations: Option<usize>,
    cpu_us_per_event: f64,
    wire_bytes_per_event: f64,
    seq_defects: f64,
    errors: f64,
    close_ms: f64,
    sim_cores: f64,
    first_identify_ms: f64,
    identify_span_ms: f64,
    bucket_gap_ms: f64,
}

impl JsonRow {
    fn write(&self, out: &mut String) {
        let opt = |x: Option<u64>| x.map_or("null".to_owned(), |x| x.to_string());
        let _ = write!(
            out,
            "{{\"run\":\"{}\",\"client\":\"{}\",\"compression\":\"{}\",\"shards\":{},\
             \"events_per_sec\":{},\"p50_us\":{},\"p99_us\":{},\"idle_shards\":{},\
             \"heap_bytes_per_shard\":{},\"rust_heap_bytes_per_shard\":{},\"ready_ms\":{},\
             \"ideal_ms\":{},\"violations\":{},\"cpu_us_per_event\":{},\
             \"wire_bytes_per_event\":{},\"seq_defects\":{},\"errors\":{},\"close_ms\":{},\
             \"sim_cores\":{},\"first_identify_ms\":{},\"identify_span_ms\":{},\
             \"bucket_gap_ms\":{}}}",
            self.run,
            self.client,
            self.compression,
            self.shards,
            json_num(self.events_per_sec, 1),
            json_num(self.p50_us, 1),
            json_num(self.p99_us, 1),
            opt(self.idle_shards),
            json_num(self.heap_bytes_per_shard, 0),
            json_num(self.rust_heap_bytes_per_shard, 0),
            json_num(self.ready_ms, 1),
            json_num(self.ideal_ms, 1),
            opt(self.violations.map(|v| v as u64)),
            json_num(self.cpu_us_per_event, 3),
            json_num(self.wire_bytes_per_event, 1),
            json_num(self.seq_defects, 0),
            json_num(self.errors, 0),
            json_num(self.close_ms, 1),
            json_num(self.sim_cores, 2),
            json_num(self.first_identify_ms, 1),
            json_num(self.identify_span_ms, 1),
            json_num(self.bucket_gap_ms, 2),
        );
    }

    fn empty() -> Self {
        Self {
            events_per_sec: f64::NAN,
            p50_us: f64::NAN,
            p99_us: f64::NAN,
            heap_bytes_per_shard: f64::NAN,
            rust_heap_bytes_per_shard: f64::NAN,
            ready_ms: f64::NAN,
            ideal_ms: f64::NAN,
            cpu_us_per_event: f64::NAN,
            wire_bytes_per_event: f64::NAN,
            seq_defects: f64::NAN,
            errors: f64::NAN,
            close_ms: f64::NAN,
            sim_cores: f64::NAN,
            first_identify_ms: f64::NAN,
            identify_span_ms: f64::NAN,
            bucket_gap_ms: f64::NAN,
            ..Self::default()
        }
    }
}

fn write_json(results: &Results) -> std::io::Result<PathBuf> {
    let mut rows = Vec::new();
    for r in &results.runs {
        rows.push(JsonRow {
            run: "throughput",
            client: r.client.name(),
            compression: r.mode.name(),
            shards: u64::from(SHARDS),
            events_per_sec: r.events_per_s,
            cpu_us_per_event: r.cpu_us_per_event,
            wire_bytes_per_event: r.wire_bytes_per_event,
            seq_defects: r.seq_defects,
            errors: r.errors + r.disconnects,
            close_ms: r.close_ms,
            sim_cores: r.sim_cores,
            ..JsonRow::empty()
        });
    }
    for r in &results.latency {
        rows.push(JsonRow {
            run: "latency",
            client: "shardbus",
            compression: r.compression.name(),
            shards: u64::from(SHARDS),
            events_per_sec: r.rate as f64,
            p50_us: r.percentile_us(0.50),
            p99_us: r.percentile_us(0.99),
            errors: (r.errors + r.disconnects) as f64,
            ..JsonRow::empty()
        });
    }
    for r in &results.idle {
        rows.push(JsonRow {
            run: "idle",
            client: r.client.name(),
            compression: r.mode.name(),
            shards: r.shards,
            idle_shards: Some(r.shards),
            heap_bytes_per_shard: r.heap_per_shard,
            rust_heap_bytes_per_shard: r.rust_heap_per_shard,
            ready_ms: r.ready_ms,
            ideal_ms: r.ideal_ms,
            violations: Some(r.violations),
            errors: r.errors,
            first_identify_ms: r.pacing.first_identify_ms,
            identify_span_ms: r.pacing.span_ms,
            bucket_gap_ms: r.pacing.bucket_gap_ms,
            ..JsonRow::empty()
        });
    }
    let mut out = String::from("{\n");
    let _ = writeln!(out, "  \"sim_workers\": {WORKERS},");
    let _ = writeln!(out, "  \"max_concurrency\": {MAX_CONCURRENCY},");
    let _ = writeln!(
        out,
        "  \"sim_identify_window_ms\": {},",
        SIM_WINDOW.as_millis()
    );
    let _ = writeln!(out, "  \"client_identify_window_ms\": {CLIENT_WINDOW_MS},");
    out.push_str("  \"rows\": [\n");
    for (i, row) in rows.iter().enumerate() {
        out.push_str("    ");
        row.write(&mut out);
        out.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    out.push_str("  ],\n  \"summary\": [\n");
    let mut summary = Vec::new();
    for mode in results.throughput_modes() {
        let ours = results.events(Client::Shardbus, mode).0;
        let theirs = results.events(Client::Twilight, mode).0;
        let latency = results.latency_of(mode);
        summary.push(format!(
            "{{\"run\":\"throughput\",\"compression\":\"{}\",\"shards\":{SHARDS},\
             \"shardbus_events_per_sec\":{},\"twilight_events_per_sec\":{},\"ratio\":{},\
             \"p50_us\":{},\"p99_us\":{}}}",
            mode.name(),
            json_num(ours, 1),
            json_num(theirs, 1),
            json_num(ours / theirs, 3),
            json_num(latency.map_or(f64::NAN, |l| l.percentile_us(0.50)), 1),
            json_num(latency.map_or(f64::NAN, |l| l.percentile_us(0.99)), 1),
        ));
    }
    for mode in MODES {
        let (Some(ours), Some(theirs)) = (
            results.idle_of(Client::Shardbus, mode),
            results.idle_of(Client::Twilight, mode),
        ) else {
            continue;
        };
        summary.push(format!(
            "{{\"run\":\"idle\",\"compression\":\"{}\",\"idle_shards\":{},\
             \"shardbus_heap_bytes_per_shard\":{},\"twilight_heap_bytes_per_shard\":{},\
             \"heap_ratio\":{},\"shardbus_ready_ms\":{},\"twilight_ready_ms\":{},\"ideal_ms\":{}}}",
            mode.name(),
            ours.shards,
            json_num(ours.heap_per_shard, 0),
            json_num(theirs.heap_per_shard, 0),
            json_num(ours.heap_per_shard / theirs.heap_per_shard, 3),
            json_num(ours.ready_ms, 1),
            json_num(theirs.ready_ms, 1),
            json_num(ours.ideal_ms, 1),
        ));
    }
    for (i, line) in summary.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {line}{}",
            if i + 1 < summary.len() { "," } else { "" }
        );
    }
    out.push_str("  ]\n}\n");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("shards.json");
    std::fs::write(&path, out)?;
    Ok(path)
}

fn print_tables(results: &Results, options: &Options) {
    if !results.runs.is_empty() {
        println!();
        println!(
            "throughput: sim at full speed -> {SHARDS} shards -> one MessageCreate counter, \
             {WARMUP_MS} ms warm-up, {} s window; median (min-max) over {} rounds, clients \
             alternating; target >= {:.0}k events/s",
            options.secs,
            options.rounds,
            TARGET_EVENTS / 1e3
        );
        println!(
            "{:<12} {:<9} {:>26} {:>7} {:>9} {:>9} {:>9} {:>9} {:>7}",
            "compression",
            "client",
            "events/s",
            "ratio",
            "CPU µs/ev",
            "sim cores",
            "wire B/ev",
            "close ms",
            "target"
        );
        for mode in results.throughput_modes() {
            for client in [Client::Shardbus, Client::Twilight] {
                let (med, min, max) = results.events(client, mode);
                let (ratio, target) = if client == Client::Shardbus {
                    let ratio = med / results.events(Client::Twilight, mode).0;
                    let met = if med >= TARGET_EVENTS {
                        "met"
                    } else {
                        "MISSED"
                    };
                    (format!("{ratio:.2}x"), met)
                } else {
                    (String::new(), "")
                };
                println!(
                    "{:<12} {:<9} {:>26} {:>7} {:>9.2} {:>9.2} {:>9.0} {:>9.1} {:>7}",
                    mode.name(),
                    client.name(),
                    format!("{med:.0} ({min:.0}-{max:.0})"),
                    ratio,
                    results.median(client, mode, |r| r.cpu_us_per_event),
                    results.median(client, mode, |r| r.sim_cores),
                    results.median(client, mode, |r| r.wire_bytes_per_event),
                    results.median(client, mode, |r| r.close_ms),
                    target,
                );
            }
        }
    }
    if !results.latency.is_empty() {
        println!();
        println!(
            "shardbus dispatch-to-subscriber latency through the Manager: {SHARDS} shards, {} msg/s \
             in total round-robin, {:.1} s warm-up then {:.1} s measured",
            options.rate,
            LATENCY_WARMUP.as_secs_f64(),
            LATENCY_MEASURED.as_secs_f64()
        );
        println!(
            "{:<12} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "compression", "samples", "p50 µs", "p90 µs", "p99 µs", "max µs", "mean µs"
        );
        for r in &results.latency {
            println!(
                "{:<12} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
                r.compression.name(),
                r.samples.len(),
                r.percentile_us(0.50),
                r.percentile_us(0.90),
                r.percentile_us(0.99),
                r.max_us(),
                r.mean_us(),
            );
        }
    }
    if !results.idle.is_empty() {
        let shards = results.idle[0].shards;
        println!();
        println!(
            "memory: {shards} idle shards, heap per shard {SETTLE_MS} ms after the last READY \
             (heartbeat {} ms); mallinfo2 = glibc in-use (C allocations too), rust = counting \
             allocator; target <= {:.0} KiB (zstd-stream: libzstd's window, cannot meet it)",
            IDLE_HEARTBEAT.as_millis(),
            TARGET_HEAP / 1024.0
        );
        println!(
            "{:<12} {:<9} {:>14} {:>11} {:>7} {:>7}",
            "compression", "client", "mallinfo2 B", "rust B", "ratio", "target"
        );
        for mode in MODES {
            for client in [Client::Shardbus, Client::Twilight] {
                let Some(r) = results.idle_of(client, mode) else {
                    continue;
                };
                let (ratio, target) = match (client, results.idle_of(Client::Twilight, mode)) {
                    (Client::Shardbus, Some(t)) => {
                        let met = if mode == Mode::Zstd {
                            "n/a"
                        } else if r.heap_per_shard <= TARGET_HEAP {
                            "met"
                        } else {
                            "MISSED"
                        };
                        (format!("{:.2}x", r.heap_per_shard / t.heap_per_shard), met)
                    }
                    _ => (String::new(), ""),
                };
                println!(
                    "{:<12} {:<9} {:>14.0} {:>11.0} {:>7} {:>7}",
                    mode.name(),
                    client.name(),
                    r.heap_per_shard,
                    r.rust_heap_per_shard,
                    ratio,
                    target
                );
            }
        }
        println!();
        println!(
            "startup: {shards} shards, max_concurrency {MAX_CONCURRENCY}, sim window {} ms, \
             client window {CLIENT_WINDOW_MS} ms; ideal = (ceil({shards}/{MAX_CONCURRENCY}) - 1) \
             x {CLIENT_WINDOW_MS} ms; from the sim's log: first identify after the first \
             connection, first-to-last identify span, mean gap within a bucket",
            SIM_WINDOW.as_millis()
        );
        println!(
            "{:<12} {:<9} {:>10} {:>10} {:>9} {:>7} {:>6} {:>6} {:>9} {:>9} {:>8}",
            "compression",
            "client",
            "ready ms",
            "ideal ms",
            "over ms",
            "over %",
            "viol",
            "conns",
            "first ms",
            "span ms",
            "gap ms"
        );
        for mode in MODES {
            for client in [Client::Shardbus, Client::Twilight] {
                let Some(r) = results.idle_of(client, mode) else {
                    continue;
                };
                println!(
                    "{:<12} {:<9} {:>10.1} {:>10.0} {:>9.1} {:>6.1}% {:>6} {:>6} {:>9.1} {:>9.1} {:>8.2}",
                    mode.name(),
                    client.name(),
                    r.ready_ms,
                    r.ideal_ms,
                    r.ready_ms - r.ideal_ms,
                    (r.ready_ms / r.ideal_ms - 1.0) * 100.0,
                    r.violations,
                    r.connections,
                    r.pacing.first_identify_ms,
                    r.pacing.span_ms,
                    r.pacing.bucket_gap_ms
                );
            }
        }
    }
}

fn main() {
    let mut options = Options::from_env();
    let fds = raise_fd_limit();
    if options.idle && options.idle_shards + FD_SPARE > fds {
        let fit = fds.saturating_sub(FD_SPARE).max(1);
        eprintln!(
            "warning: RLIMIT_NOFILE is {fds}: running {fit} idle shards instead of {}",
            options.idle_shards
        );
        options.idle_shards = fit;
    }
    let binaries = Binaries::build();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap();
    let results = runtime.block_on(async {
        let mut runs = Vec::new();
        if options.throughput {
            for round in 0..options.rounds {
                for mode in options.compressed() {
                    let order = if round % 2 == 0 {
                        [Client::Shardbus, Client::Twilight]
                    } else {
                        [Client::Twilight, Client::Shardbus]
                    };
                    for client in order {
                        eprintln!(
                            "round {round}: throughput, {SHARDS} shards, {} {}",
                            client.name(),
                            mode.name()
                        );
                        runs.push(throughput(&binaries, client, mode, options.secs).await);
                    }
                }
            }
        }
        let mut latency_rows = Vec::new();
        if options.latency {
            for mode in options.compressed() {
                eprintln!("latency, {SHARDS} shards, {}", mode.name());
                latency_rows.push(tokio::spawn(latency(mode, options.rate)).await.unwrap());
            }
        }
        let mut idle_runs = Vec::new();
        if options.idle {
            for &mode in &options.modes {
                for client in [Client::Shardbus, Client::Twilight] {
                    eprintln!(
                        "idle: {} shards, {} {}",
                        options.idle_shards,
                        client.name(),
                        mode.name()
                    );
                    idle_runs.push(idle(&binaries, client, mode, options.idle_shards).await);
                }
            }
        }
        Results {
            runs,
            latency: latency_rows,
            idle: idle_runs,
        }
    });
    print_tables(&results, &options);
    match write_json(&results) {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("error: could not write shards.json: {e}"),
    }
    let defects = results.defects();
    assert!(
        defects.is_empty(),
        "a client lost, repeated or reconnected: {defects:#?}"
    );
}
