//! The shardbus side of `cargo bench --bench gateway`: shards posting into a
//! `TypeMux`, one `MessageCreate` subscriber, built with shardbus's default
//! features as a user's Cargo.toml would build it.
//!
//! Modes (see `peer_common` for the output):
//! - `throughput --url U --token T --compression none|zlib|zstd --warmup-ms W --secs S`:
//!   one shard; prints `ready` once connected, waits W, then counts the
//!   subscriber's events over S seconds.
//! - `idle --url U --token T --compression C --shards N --max-concurrency M --window-ms W --settle-ms D`:
//!   N shards paced M at a time per W; reports the time until all are
//!   connected and the heap each idle shard holds after D more.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use peer_common::{Args, Counting, Line};
use shardbus::TypeMux;
use shardbus::gateway::{
    CloseCode, Compression, GatewayConfig, GatewayError, Intents, LocalIdentifyQueue, Shard,
    ShardStage, Stage,
};
use shardbus::model::MessageCreate;

#[global_allocator]
static ALLOC: Counting = Counting;

fn compression(name: &str) -> Compression {
    match name {
        "none" => Compression::None,
        "zlib" => Compression::ZlibStream,
        "zstd" => Compression::ZstdStream,
        other => panic!("unknown compression {other}"),
    }
}

fn config(args: &Args, id: u32, total: u32, queue: &Arc<LocalIdentifyQueue>) -> GatewayConfig {
    GatewayConfig::new(
        args.str("token"),
        Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
    )
    .gateway_url(args.str("url"))
    .shard(id, total)
    .compression(compression(&args.str("compression")))
    .identify_queue(queue.clone() as Arc<dyn shardbus::gateway::IdentifyQueue>)
}

/// Counts `GatewayError`s and disconnects; the bus is lossless, so these
/// streams must be drained or the shards stall.
fn drain_errors(bus: &TypeMux) -> Arc<AtomicU64> {
    let errors = Arc::new(AtomicU64::new(0));
    let counted = errors.clone();
    let mut stream = bus.subscribe::<GatewayError>();
    tokio::spawn(async move {
        while let Some(e) = stream.recv().await {
            if counted.fetch_add(1, Ordering::Relaxed) < 5 {
                eprintln!("shardbus-client: shard error: {e}");
            }
        }
    });
    errors
}

async fn throughput(args: Args) {
    let bus = TypeMux::new();
    let errors = drain_errors(&bus);
    let mut stages = bus.subscribe::<ShardStage>();
    let mut messages = bus.subscribe::<MessageCreate>();
    let events = Arc::new(AtomicU64::new(0));
    let seq_defects = Arc::new(AtomicU64::new(0));
    let (counted, defects) = (events.clone(), seq_defects.clone());
    tokio::spawn(async move {
        let mut prev = 0u64;
        while let Some(msg) = messages.recv().await {
            let seq = msg.meta.seq.0;
            if prev != 0 && seq != prev + 1 {
                defects.fetch_add(1, Ordering::Relaxed);
            }
            prev = seq;
            std::hint::black_box(msg.content.len());
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    let queue = Arc::new(LocalIdentifyQueue::with_window(
        1,
        Duration::from_millis(100),
    ));
    let shard = Shard::spawn(config(&args, 0, 1, &queue), bus.clone());
    while let Some(stage) = stages.recv().await {
        if stage.stage == Stage::Connected {
            break;
        }
    }
    let disconnects = Arc::new(AtomicU64::new(0));
    let counted = disconnects.clone();
    tokio::spawn(async move {
        while let Some(stage) = stages.recv().await {
            if matches!(stage.stage, Stage::Disconnected { .. }) {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    peer_common::say_ready();

    tokio::time::sleep(args.millis("warmup-ms", 1000)).await;
    let (e0, c0, t0) = (
        events.load(Ordering::Relaxed),
        peer_common::cpu_secs(),
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(args.num("secs", 5))).await;
    let (e1, c1, secs) = (
        events.load(Ordering::Relaxed),
        peer_common::cpu_secs(),
        t0.elapsed(),
    );

    // Read before closing: the close itself posts a Disconnected stage.
    let disconnected = disconnects.load(Ordering::Relaxed);
    // A close while the traffic still runs must get through the read loop.
    let closing = Instant::now();
    let closed = tokio::time::timeout(
        Duration::from_secs(20),
        shard.handle().close(CloseCode::NORMAL),
    )
    .await
    .is_ok();
    let close_ms = if closed {
        closing.elapsed().as_secs_f64() * 1e3
    } else {
        f64::NAN
    };
    Line::default()
        .str("client", "shardbus")
        .str("compression", &args.str("compression"))
        .num("events", (e1 - e0) as f64)
        .num("secs", secs.as_secs_f64())
        .num("cpu_secs", c1 - c0)
        .num("seq_defects", seq_defects.load(Ordering::Relaxed) as f64)
        .num("errors", errors.load(Ordering::Relaxed) as f64)
        .num("disconnects", disconnected as f64)
        .num("close_ms", close_ms)
        .print();
}

async fn idle(args: Args) {
    let total = u32::try_from(args.num("shards", 200)).unwrap_or(u32::MAX);
    let max_concurrency = u32::try_from(args.num("max-concurrency", 16)).unwrap_or(1);
    let queue = Arc::new(LocalIdentifyQueue::with_window(
        max_concurrency,
        args.millis("window-ms", 5000),
    ));
    let bus = TypeMux::new();
    let errors = drain_errors(&bus);
    let mut stages = bus.subscribe::<ShardStage>();
    let (heap0, total0) = (peer_common::rust_heap(), peer_common::total_heap());
    let started = Instant::now();
    let shards: Vec<Shard> = (0..total)
        .map(|id| Shard::spawn(config(&args, id, total, &queue), bus.clone()))
        .collect();
    let mut ready = vec![false; total as usize];
    let mut left = total;
    while left > 0 {
        let Some(stage) = stages.recv().await else {
            break;
        };
        if stage.stage == Stage::Connected {
            if let Some(r) = ready.get_mut(stage.shard.0 as usize) {
                if !*r {
                    *r = true;
                    left -= 1;
                }
            }
        }
    }
    let all_ready = started.elapsed();
    tokio::spawn(async move { while stages.recv().await.is_some() {} });
    tokio::time::sleep(args.millis("settle-ms", 3000)).await;
    let (heap1, total1) = (peer_common::rust_heap(), peer_common::total_heap());
    let per = |a: usize, b: usize| (b.saturating_sub(a)) as f64 / f64::from(total);
    Line::default()
        .str("client", "shardbus")
        .str("compression", &args.str("compression"))
        .num("shards", f64::from(total))
        .num("all_ready_ms", all_ready.as_secs_f64() * 1e3)
        .num("rust_heap_per_shard", per(heap0, heap1))
        .num("heap_per_shard", per(total0, total1))
        .num("rss", peer_common::rss() as f64)
        .num("errors", errors.load(Ordering::Relaxed) as f64)
        .print();
    drop(shards);
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match args.mode() {
        "throughput" => throughput(args).await,
        "idle" => idle(args).await,
        other => panic!("unknown mode {other:?}: throughput or idle"),
    }
}
