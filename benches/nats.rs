//! Events host → NATS → worker, beside the same events over the local bus
//! (issue 12), in one run.
//!
//! Both paths start from the raw `d` of a realistic MESSAGE_CREATE (the
//! 1.8 KB fixture `benches/fixtures/message_create_small.json`) and end in
//! a `MessageCreate` handler:
//!
//! - `local`: decode `d` into a `MessageCreate` and post it on a
//!   `TypeMux`, as a shard does;
//! - `nats`: post it as a `RawDispatch` on the host's bus, as a shard does;
//!   a `NatsBridge` publishes it to JetStream (a private nats-server with a
//!   file store, on loopback); a `NatsBus` worker, in the same process on
//!   its own connection, decodes it, posts it to its handler and
//!   acknowledges it once the handler returned.
//!
//! Two measurements per path:
//!
//! 1. **Throughput**: `NATS_EVENTS` events (50,000) posted as fast as the
//!    path takes them; events/s from the first post to the handler's last
//!    call.
//! 2. **Latency**: `NATS_RATE` events/s (2,000) for 3 s after 0.5 s of
//!    warm-up; post-to-handler latency per event, p50 and p99.
//!
//! `ratio_vs_local` is the path's events/s over the local bus's. Run:
//! `cargo bench --features nats --bench nats`. It writes
//! `target/bench/nats.json`: one row per path with `path`, `events`,
//! `events_per_sec`, `p50_us`, `p99_us` and `ratio_vs_local`.

#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::report::{env_u64, json_num, target_dir};
use shardbus::TypeMux;
use shardbus::bridge::{NatsBridge, NatsBus};
use shardbus::gateway::{DispatchMeta, EventType, RawDispatch};
use shardbus::model::{MessageCreate, Seq, SessionId, ShardId};
use shardbus_sim::NatsServer;

const FIXTURE: &str = include_str!("fixtures/message_create_small.json");
const WARMUP: Duration = Duration::from_millis(500);
const MEASURED: Duration = Duration::from_secs(3);
const LIMIT: Duration = Duration::from_secs(120);

/// What a handler sees: how many events, and when each arrived relative to
/// when it was posted.
#[derive(Clone, Default)]
struct Sink {
    count: Arc<AtomicU64>,
    /// Post instants by seq, for the latency run.
    posted: Arc<Mutex<Vec<Option<Instant>>>>,
    /// Latencies, ns.
    samples: Arc<Mutex<Vec<u64>>>,
}

async fn on_message(msg: Arc<MessageCreate>, shardbus::State(sink): shardbus::State<Sink>) {
    let now = Instant::now();
    let posted = sink
        .posted
        .lock()
        .unwrap()
        .get(msg.meta.seq.0 as usize)
        .copied()
        .flatten();
    if let Some(at) = posted {
        sink.samples
            .lock()
            .unwrap()
            .push(u64::try_from((now - at).as_nanos()).unwrap_or(u64::MAX));
    }
    sink.count.fetch_add(1, Ordering::Relaxed);
}

/// One way of getting `d` to a handler.
trait Path {
    /// Posts the event with `seq` in session `session`.
    async fn post(&self, session: &SessionId, seq: u64);
}

/// The local bus.
struct Local {
    bus: TypeMux,
}

impl Path for Local {
    async fn post(&self, _: &SessionId, seq: u64) {
        let mut event: MessageCreate = serde_json::from_str(FIXTURE).unwrap();
        event.meta = DispatchMeta {
            shard: ShardId(0),
            seq: Seq(seq),
            attempt: 0,
        };
        self.bus.post(event).await.unwrap();
    }
}

/// The host's bus, bridged.
struct Nats {
    host: TypeMux,
}

impl Path for Nats {
    async fn post(&self, session: &SessionId, seq: u64) {
        let raw = RawDispatch {
            event_type: EventType::from("MESSAGE_CREATE".to_owned()),
            meta: DispatchMeta {
                shard: ShardId(0),
                seq: Seq(seq),
                attempt: 0,
            },
            session_id: session.clone(),
            data: FIXTURE.to_owned(),
        };
        self.host.post(raw).await.unwrap();
    }
}

/// Waits until the sink has counted `n`.
async fn until(sink: &Sink, n: u64) {
    tokio::time::timeout(LIMIT, async {
        while sink.count.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    })
    .await
    .expect("every event handled");
}

/// Throughput: events/s.
async fn throughput(path: &impl Path, sink: &Sink, events: u64) -> f64 {
    sink.count.store(0, Ordering::Relaxed);
    let session = SessionId(format!("tput-{}", fastrand::u64(..)));
    let start = Instant::now();
    for seq in 1..=events {
        path.post(&session, seq).await;
    }
    until(sink, events).await;
    events as f64 / start.elapsed().as_secs_f64()
}

/// Latency at `rate`: sorted samples, ns.
async fn latency(path: &impl Path, sink: &Sink, rate: u64) -> Vec<u64> {
    let total = (rate as f64 * (WARMUP + MEASURED).as_secs_f64()) as u64;
    let warm = (rate as f64 * WARMUP.as_secs_f64()) as u64;
    sink.count.store(0, Ordering::Relaxed);
    sink.samples.lock().unwrap().clear();
    *sink.posted.lock().unwrap() = vec![None; total as usize + 2];
    let session = SessionId(format!("lat-{}", fastrand::u64(..)));
    let start = tokio::time::Instant::now();
    for seq in 1..=total {
        tokio::time::sleep_until(start + Duration::from_secs_f64(seq as f64 / rate as f64)).await;
        if seq > warm {
            sink.posted.lock().unwrap()[seq as usize] = Some(Instant::now());
        }
        path.post(&session, seq).await;
    }
    until(sink, total).await;
    let mut samples = sink.samples.lock().unwrap().clone();
    samples.sort_unstable();
    samples
}

fn percentile_us(samples: &[u64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let rank = (p * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1] as f64 / 1e3
}

struct Row {
    path: &'static str,
    events: u64,
    events_per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

fn main() {
    let events = env_u64("NATS_EVENTS").unwrap_or(50_000).max(1);
    let rate = env_u64("NATS_RATE").unwrap_or(2_000).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();

        // The local bus.
        let local_sink = Sink::default();
        let local = Local {
            bus: TypeMux::new().with_state(local_sink.clone()),
        };
        let _local_handler = local.bus.add_handler(on_message);
        let eps = throughput(&local, &local_sink, events).await;
        let samples = latency(&local, &local_sink, rate).await;
        rows.push(Row {
            path: "local",
            events,
            events_per_sec: eps,
            p50_us: percentile_us(&samples, 0.5),
            p99_us: percentile_us(&samples, 0.99),
        });

        // Host → NATS → worker.
        let server = NatsServer::start().unwrap();
        let connect = || async { async_nats::connect(server.url()).await.unwrap() };
        let host = TypeMux::new();
        let bridge = NatsBridge::builder(async_nats::jetstream::new(connect().await))
            .events(["MESSAGE_CREATE"])
            .start(&host)
            .await
            .unwrap();
        let nats_sink = Sink::default();
        let worker = NatsBus::builder(async_nats::jetstream::new(connect().await), "bench", 1)
            .bus(TypeMux::new().with_state(nats_sink.clone()))
            .start()
            .await
            .unwrap();
        let _nats_handler = worker.bus().add_handler(on_message);
        tokio::time::timeout(LIMIT, async {
            while worker.stats().partitions < 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        let nats = Nats { host };
        let eps = throughput(&nats, &nats_sink, events).await;
        let samples = latency(&nats, &nats_sink, rate).await;
        rows.push(Row {
            path: "nats",
            events,
            events_per_sec: eps,
            p50_us: percentile_us(&samples, 0.5),
            p99_us: percentile_us(&samples, 0.99),
        });
        let stats = worker.close().await;
        let published = bridge.close().await;
        eprintln!(
            "bridge published {} ({} duplicates); worker acknowledged {}",
            published.published, published.duplicates, stats.acked
        );
        rows
    });

    let local_eps = rows[0].events_per_sec;
    println!(
        "events host -> handler, {events} as fast as taken; latency at {rate}/s for {}s",
        MEASURED.as_secs()
    );
    println!("path     events/s   ratio_vs_local   p50 µs    p99 µs");
    let mut json = String::from("{\n  \"rows\": [\n");
    for (i, row) in rows.iter().enumerate() {
        let ratio = row.events_per_sec / local_eps;
        println!(
            "{:<6} {:>10.0}   {:>14.3}   {:>7.1}   {:>7.1}",
            row.path, row.events_per_sec, ratio, row.p50_us, row.p99_us
        );
        let _ = writeln!(
            json,
            "    {{\"path\": \"{}\", \"events\": {}, \"events_per_sec\": {}, \"p50_us\": {}, \
             \"p99_us\": {}, \"ratio_vs_local\": {}}}{}",
            row.path,
            row.events,
            json_num(row.events_per_sec, 1),
            json_num(row.p50_us, 1),
            json_num(row.p99_us, 1),
            json_num(ratio, 4),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    json.push_str("  ]\n}\n");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nats.json");
    std::fs::write(&path, json).unwrap();
    println!("wrote {}", path.display());
}
