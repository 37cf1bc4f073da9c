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
//! - `shards-throughput --url U --api A --token T --compression C --window-ms W --warmup-ms W --secs S`:
//!   (`cargo bench --bench shards`) a [`Manager`] asking the sim's
//!   `GET /gateway/bot` at `A` (`http://host:port`) for the shard count and
//!   `max_concurrency`, identify window W; one `MessageCreate` subscriber on
//!   its bus counts every shard's events; prints `ready` once `open` returns.
//! - `shards-idle --url U --api A --token T --compression C --window-ms W --settle-ms D`:
//!   the same [`Manager`] with no subscriber but the error and stage drains;
//!   reports the time `open` took and the heap per shard D after it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use peer_common::{Args, Counting, HeapMark, Idle, Ready, Throughput};
use shardbus::TypeMux;
use shardbus::gateway::{
    CloseCode, Compression, GatewayConfig, GatewayError, Intents, LocalIdentifyQueue, Shard,
    ShardStage, Stage,
};
use shardbus::model::MessageCreate;
use shardbus::shard::Manager;

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

    let window = peer_common::measure(&args, &events).await;
    // Read before the close below, whose own Disconnected stage is no lost
    // connection.
    let disconnects = disconnects.load(Ordering::Relaxed);

    // A close while the traffic still runs must get through the read loop.
    let closing = Instant::now();
    let closed = tokio::time::timeout(
        Duration::from_secs(20),
        shard.handle().close(CloseCode::NORMAL),
    )
    .await
    .is_ok();
    Throughput {
        client: "shardbus",
        compression: &args.str("compression"),
        window,
        seq_defects: seq_defects.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        disconnects,
        close_ms: peer_common::ms_since_if(closed, closing),
    }
    .print();
}

async fn idle(args: Args) {
    let total = args.count("shards", 200);
    let queue = Arc::new(LocalIdentifyQueue::with_window(
        args.count("max-concurrency", 16).max(1),
        args.millis("window-ms", 5000),
    ));
    let bus = TypeMux::new();
    let errors = drain_errors(&bus);
    let mut stages = bus.subscribe::<ShardStage>();
    let start = HeapMark::now();
    let started = Instant::now();
    let shards: Vec<Shard> = (0..total)
        .map(|id| Shard::spawn(config(&args, id, total, &queue), bus.clone()))
        .collect();
    let mut ready = Ready::new(total);
    while !ready.all() {
        let Some(stage) = stages.recv().await else {
            break;
        };
        if stage.stage == Stage::Connected {
            ready.mark(stage.shard.0);
        }
    }
    let all_ready = started.elapsed();
    tokio::spawn(async move { while stages.recv().await.is_some() {} });
    tokio::time::sleep(args.millis("settle-ms", 3000)).await;
    Idle {
        client: "shardbus",
        compression: &args.str("compression"),
        shards: total,
        all_ready,
        start,
        errors: errors.load(Ordering::Relaxed),
    }
    .print();
    drop(shards);
}

/// A manager for the sim at `--api`, with the shard count, URL and
/// `max_concurrency` its `GET /gateway/bot` recommends and `--window-ms`
/// as the identify window. Nothing connects until `open`.
async fn manager(args: &Args) -> Manager {
    let identify = GatewayConfig::new(
        args.str("token"),
        Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
    )
    .compression(compression(&args.str("compression")));
    let http = shardbus::http::Client::new(args.str("token"))
        .unwrap_or_else(|e| panic!("http client: {e}"))
        .api_base(format!("{}/api/v10", args.str("api")));
    Manager::builder(identify)
        .http(http)
        .identify_window(args.millis("window-ms", 5000))
        .fetch()
        .await
        .unwrap_or_else(|e| panic!("GET /gateway/bot: {e}"))
}

/// Counts `Disconnected` stages from now on (the bus is lossless: the
/// stream must be drained anyway).
fn count_disconnects(mut stages: shardbus::EventStream<ShardStage>) -> Arc<AtomicU64> {
    let disconnects = Arc::new(AtomicU64::new(0));
    let counted = disconnects.clone();
    tokio::spawn(async move {
        while let Some(stage) = stages.recv().await {
            if matches!(stage.stage, Stage::Disconnected { .. }) {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    disconnects
}

async fn shards_throughput(args: Args) {
    let manager = manager(&args).await;
    let bus = manager.bus().clone();
    let errors = drain_errors(&bus);
    let stages = bus.subscribe::<ShardStage>();
    let mut messages = bus.subscribe::<MessageCreate>();
    let events = Arc::new(AtomicU64::new(0));
    let seq_defects = Arc::new(AtomicU64::new(0));
    let (counted, defects) = (events.clone(), seq_defects.clone());
    let total = manager.num_shards() as usize;
    tokio::spawn(async move {
        // Each shard posts in its own sequence order: one cursor per shard.
        let mut prev = vec![0u64; total];
        while let Some(msg) = messages.recv().await {
            let seq = msg.meta.seq.0;
            if let Some(prev) = prev.get_mut(msg.meta.shard.0 as usize) {
                if *prev != 0 && seq != *prev + 1 {
                    defects.fetch_add(1, Ordering::Relaxed);
                }
                *prev = seq;
            }
            std::hint::black_box(msg.content.len());
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    manager
        .open()
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let disconnects = count_disconnects(stages);
    peer_common::say_ready();

    let window = peer_common::measure(&args, &events).await;
    let disconnects = disconnects.load(Ordering::Relaxed);
    let closing = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(20), manager.close())
        .await
        .is_ok_and(|r| r.is_ok());
    Throughput {
        client: "shardbus",
        compression: &args.str("compression"),
        window,
        seq_defects: seq_defects.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        disconnects,
        close_ms: peer_common::ms_since_if(closed, closing),
    }
    .print();
}

async fn shards_idle(args: Args) {
    let start = HeapMark::now();
    let manager = manager(&args).await;
    let bus = manager.bus().clone();
    let errors = drain_errors(&bus);
    let stages = bus.subscribe::<ShardStage>();
    let disconnects = count_disconnects(stages);
    let started = Instant::now();
    manager
        .open()
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    let all_ready = started.elapsed();
    tokio::time::sleep(args.millis("settle-ms", 3000)).await;
    Idle {
        client: "shardbus",
        compression: &args.str("compression"),
        shards: manager.num_shards(),
        all_ready,
        start,
        errors: errors.load(Ordering::Relaxed) + disconnects.load(Ordering::Relaxed),
    }
    .print();
    manager.shutdown_all().await;
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match args.mode() {
        "throughput" => throughput(args).await,
        "idle" => idle(args).await,
        "shards-throughput" => shards_throughput(args).await,
        "shards-idle" => shards_idle(args).await,
        other => panic!(
            "unknown mode {other:?}: throughput, idle, shards-throughput or shards-idle"
        ),
    }
}
