//! The twilight-gateway side of `cargo bench --bench gateway`, the same modes
//! and output as the shardbus client. twilight chooses compression at compile
//! time (feature `zstd` over `zlib` over none), so the bench builds this
//! binary once per mode; `--compression` only labels the result and is
//! checked against the build.
//!
//! `shards-throughput --url U --token T --compression C --shards N
//! --max-concurrency M --window-ms W --warmup-ms W --secs S` (`cargo bench
//! --bench shards`) runs N shards, one task each reading its own
//! `next_event` as twilight's multi-shard example does, all counting into
//! one counter; `ready` once every shard has had its READY.
//!
//! Events are read the way twilight's docs show: `next_event` with the wanted
//! event types, which deserializes them into twilight-model's types.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peer_common::{Args, Counting, HeapMark, Idle, Ready, Throughput};
use tokio::sync::{mpsc, oneshot};
use twilight_gateway::queue::Queue;
use twilight_gateway::{
    CloseFrame, ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _,
};

#[global_allocator]
static ALLOC: Counting = Counting;

/// What this binary was built with.
const BUILT: &str = if cfg!(feature = "zstd") {
    "zstd"
} else if cfg!(feature = "zlib") {
    "zlib"
} else {
    "none"
};

/// An identify queue with the sim's pacing: bucket `shard % max_concurrency`,
/// one identify per bucket per window. (twilight's `InMemoryQueue` waits a
/// fixed 5 s, Discord's window; the sim's is configurable.)
#[derive(Debug)]
struct PacedInner {
    max_concurrency: u32,
    window: Duration,
    next: Mutex<Vec<tokio::time::Instant>>,
}

/// A cheap handle on one [`PacedInner`] (twilight's `Queue` is implemented
/// for `&T`, not `Arc<T>`).
#[derive(Debug, Clone)]
struct Paced(Arc<PacedInner>);

impl Queue for Paced {
    fn enqueue(&self, shard: u32) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let now = tokio::time::Instant::now();
        let at = {
            let mut next = self.0.next.lock().unwrap_or_else(|e| e.into_inner());
            let slot = &mut next[(shard % self.0.max_concurrency) as usize];
            let at = (*slot).max(now);
            *slot = at + self.0.window;
            at
        };
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let _ = tx.send(());
        });
        rx
    }
}

fn shard(args: &Args, id: u32, total: u32, queue: Paced) -> Shard<Paced> {
    let config = ConfigBuilder::new(
        args.str("token"),
        Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
    )
    .proxy_url(args.str("url"))
    .queue(queue)
    .build();
    Shard::with_config(ShardId::new(id, total), config)
}

fn paced(max_concurrency: u32, window: Duration) -> Paced {
    let now = tokio::time::Instant::now();
    Paced(Arc::new(PacedInner {
        max_concurrency,
        window,
        next: Mutex::new(vec![now; max_concurrency as usize]),
    }))
}

async fn throughput(args: Args) {
    let mut shard = shard(&args, 0, 1, paced(1, Duration::from_millis(100)));
    let wanted = EventTypeFlags::MESSAGE_CREATE | EventTypeFlags::READY;
    let mut errors = 0u64;
    loop {
        match shard.next_event(wanted).await {
            Some(Ok(Event::Ready(_))) => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                errors += 1;
                eprintln!("twilight-client: {e}");
            }
            None => panic!("the shard stream ended before READY"),
        }
    }
    peer_common::say_ready();

    let events = Arc::new(AtomicU64::new(0));
    let counted = events.clone();
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        let mut prev = 0u64;
        let mut seq_defects = 0u64;
        loop {
            tokio::select! {
                biased;
                _ = &mut stop_rx => break,
                event = shard.next_event(wanted) => match event {
                    Some(Ok(Event::MessageCreate(msg))) => {
                        // twilight does not hand the sequence number to
                        // the user; count ids instead of gaps.
                        let id = msg.id.get();
                        if prev != 0 && id <= prev {
                            seq_defects += 1;
                        }
                        prev = id;
                        std::hint::black_box(msg.content.len());
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        errors += 1;
                        eprintln!("twilight-client: {e}");
                    }
                    None => break,
                },
            }
        }
        (shard, errors, seq_defects)
    });

    let window = peer_common::measure(&args, &events).await;
    let _ = stop_tx.send(());
    let (mut shard, errors, seq_defects) = reader.await.unwrap_or_else(|e| panic!("{e}"));

    let closing = Instant::now();
    shard.close(CloseFrame::NORMAL);
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(item) = shard.next_event(EventTypeFlags::empty()).await {
            if matches!(item, Ok(Event::GatewayClose(_))) {
                break;
            }
        }
    })
    .await
    .is_ok();
    Throughput {
        client: "twilight",
        compression: BUILT,
        window,
        seq_defects,
        errors,
        disconnects: 0,
        close_ms: peer_common::ms_since_if(closed, closing),
    }
    .print();
}

async fn idle(args: Args) {
    let total = args.count("shards", 200);
    let queue = paced(
        args.count("max-concurrency", 16).max(1),
        args.millis("window-ms", 5000),
    );
    let start = HeapMark::now();
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<u32>();
    for id in 0..total {
        let mut shard = shard(&args, id, total, queue.clone());
        let (ready_tx, errors) = (ready_tx.clone(), errors.clone());
        // One task per shard keeps it polled: heartbeats need it.
        tokio::spawn(async move {
            while let Some(event) = shard.next_event(EventTypeFlags::READY).await {
                match event {
                    Ok(Event::Ready(_)) => {
                        let _ = ready_tx.send(id);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("twilight-client: shard {id}: {e}");
                        }
                    }
                }
            }
        });
    }
    drop(ready_tx);
    let mut ready = Ready::new(total);
    while !ready.all() {
        let Some(id) = ready_rx.recv().await else {
            break;
        };
        ready.mark(id);
    }
    let all_ready = started.elapsed();
    tokio::time::sleep(args.millis("settle-ms", 3000)).await;
    Idle {
        client: "twilight",
        compression: BUILT,
        shards: total,
        all_ready,
        start,
        errors: errors.load(Ordering::Relaxed),
    }
    .print();
}

/// What one shard's reader found, when it stopped.
struct ShardReport {
    errors: u64,
    seq_defects: u64,
}

async fn shards_throughput(args: Args) {
    let total = args.count("shards", 16);
    let queue = paced(
        args.count("max-concurrency", 16).max(1),
        args.millis("window-ms", 5000),
    );
    let wanted = EventTypeFlags::MESSAGE_CREATE | EventTypeFlags::READY;
    let events = Arc::new(AtomicU64::new(0));
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<u32>();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut readers = Vec::new();
    for id in 0..total {
        let mut shard = shard(&args, id, total, queue.clone());
        let (ready_tx, counted, mut stop_rx) = (ready_tx.clone(), events.clone(), stop_rx.clone());
        readers.push(tokio::spawn(async move {
            let mut report = ShardReport {
                errors: 0,
                seq_defects: 0,
            };
            let mut prev = 0u64;
            loop {
                tokio::select! {
                    biased;
                    _ = stop_rx.changed() => break,
                    event = shard.next_event(wanted) => match event {
                        Some(Ok(Event::MessageCreate(msg))) => {
                            let id = msg.id.get();
                            if prev != 0 && id <= prev {
                                report.seq_defects += 1;
                            }
                            prev = id;
                            std::hint::black_box(msg.content.len());
                            counted.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Ok(Event::Ready(_))) => {
                            let _ = ready_tx.send(id);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            report.errors += 1;
                            eprintln!("twilight-client: shard {id}: {e}");
                        }
                        None => break,
                    },
                }
            }
            (shard, report)
        }));
    }
    drop(ready_tx);
    let mut ready = Ready::new(total);
    while !ready.all() {
        let Some(id) = ready_rx.recv().await else {
            panic!("a shard stream ended before READY");
        };
        ready.mark(id);
    }
    peer_common::say_ready();

    let window = peer_common::measure(&args, &events).await;
    let _ = stop_tx.send(true);
    let mut shards = Vec::new();
    let (mut errors, mut seq_defects) = (0, 0);
    for reader in readers {
        let (shard, report) = reader.await.unwrap_or_else(|e| panic!("{e}"));
        errors += report.errors;
        seq_defects += report.seq_defects;
        shards.push(shard);
    }

    // Close them all at once, as the shardbus client's `Manager::close` does.
    let closing = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        let closes = shards.into_iter().map(|mut shard| {
            shard.close(CloseFrame::NORMAL);
            tokio::spawn(async move {
                while let Some(item) = shard.next_event(EventTypeFlags::empty()).await {
                    if matches!(item, Ok(Event::GatewayClose(_))) {
                        break;
                    }
                }
            })
        });
        for close in closes.collect::<Vec<_>>() {
            let _ = close.await;
        }
    })
    .await
    .is_ok();
    Throughput {
        client: "twilight",
        compression: BUILT,
        window,
        seq_defects,
        errors,
        disconnects: 0,
        close_ms: peer_common::ms_since_if(closed, closing),
    }
    .print();
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let asked = args.str("compression");
    assert_eq!(asked, BUILT, "this twilight-client was built for {BUILT}");
    match args.mode() {
        "throughput" => throughput(args).await,
        "idle" => idle(args).await,
        "shards-throughput" => shards_throughput(args).await,
        other => panic!("unknown mode {other:?}: throughput, idle or shards-throughput"),
    }
}
