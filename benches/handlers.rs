//! Handler dispatch overhead: events per second through no-op `#[handler]`s
//! against the same number of raw `subscribe::<E>()` stream loops, side by
//! side in one run, for 1 and 8 consumers.
//!
//! Run with `cargo bench --bench handlers` (`HANDLERS_EVENTS=N` scales the
//! event count). Prints a table and writes `target/bench/handlers.json`.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use shardbus::{TypeMux, handler};
use tokio::sync::Notify;

/// The event: small, like a bus of ids.
struct Ev(#[allow(dead_code)] u64);

/// Events handled in the current run, by handlers and stream loops alike.
static SEEN: AtomicU64 = AtomicU64::new(0);
/// How many handled events end the current run.
static TARGET: AtomicU64 = AtomicU64::new(u64::MAX);
/// Told when the last event of the run is handled.
static DONE: OnceLock<Notify> = OnceLock::new();

/// Counts one handled event; the same bookkeeping on both sides.
fn seen_one() {
    if SEEN.fetch_add(1, Ordering::Relaxed) + 1 == TARGET.load(Ordering::Relaxed) {
        DONE.get_or_init(Notify::new).notify_one();
    }
}

/// The no-op handler under test: no extractor, only the shared count.
#[handler]
async fn noop(_ev: Arc<Ev>) {
    seen_one();
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Stream,
    Handler,
}

const RUNS: usize = 3;

fn run(kind: Kind, consumers: usize, events: u64) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        SEEN.store(0, Ordering::Relaxed);
        TARGET.store(events * consumers as u64, Ordering::Relaxed);
        let bus = TypeMux::new();
        let mut subs = Vec::new();
        let mut loops = Vec::new();
        for _ in 0..consumers {
            match kind {
                Kind::Handler => subs.push(bus.add_handler(noop)),
                Kind::Stream => {
                    let mut stream = bus.subscribe::<Ev>();
                    loops.push(tokio::spawn(async move {
                        while let Some(_ev) = stream.recv().await {
                            seen_one();
                        }
                    }));
                }
            }
        }
        let start = Instant::now();
        let producer = bus.clone();
        tokio::spawn(async move {
            for i in 0..events {
                producer.post(Ev(i)).await.unwrap();
            }
        })
        .await
        .unwrap();
        DONE.get_or_init(Notify::new).notified().await;
        let elapsed = start.elapsed();
        bus.stop().await;
        for l in loops {
            l.await.unwrap();
        }
        drop(subs);
        elapsed
    })
}

fn main() {
    let events: u64 = std::env::var("HANDLERS_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let mut rows = Vec::new();
    println!("consumers | impl | events | M events handled/s | ratio_vs_stream");
    println!("---:|---|---:|---:|---:");
    for consumers in [1usize, 8] {
        let mut best = [f64::MIN; 2];
        // Interleave the two kinds so drift in machine load hits both.
        for _ in 0..RUNS {
            for (ix, kind) in [Kind::Stream, Kind::Handler].into_iter().enumerate() {
                let t = run(kind, consumers, events);
                let rate = (events * consumers as u64) as f64 / t.as_secs_f64();
                best[ix] = best[ix].max(rate);
            }
        }
        for (ix, kind) in [Kind::Stream, Kind::Handler].into_iter().enumerate() {
            let ratio = best[ix] / best[0];
            println!(
                "{consumers} | {} | {events} | {:.2} | {ratio:.2}x",
                if kind == Kind::Stream {
                    "stream"
                } else {
                    "handler"
                },
                best[ix] / 1e6
            );
            rows.push((consumers, kind, best[ix], ratio));
        }
        println!(
            "x{consumers}: handler / stream = {:.3}x (target >= 0.7: {})",
            best[1] / best[0],
            if best[1] / best[0] >= 0.7 {
                "met"
            } else {
                "MISSED"
            }
        );
    }
    let mut json = String::from("[");
    for (i, (consumers, kind, rate, ratio)) in rows.iter().enumerate() {
        let _ = write!(
            json,
            "{}{{\"impl\":\"{}\",\"consumers\":{consumers},\"events_per_sec\":{rate:.0},\"ratio_vs_stream\":{ratio:.4}}}",
            if i > 0 { "," } else { "" },
            if *kind == Kind::Stream {
                "stream"
            } else {
                "handler"
            },
        );
    }
    json.push(']');
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("handlers.json"), json).unwrap();
    println!("wrote {}", dir.join("handlers.json").display());
}
