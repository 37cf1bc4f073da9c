//! Bus fan-out throughput: `TypeMux` and `Feed` against lossless peers.
//!
//! For 1, 8 and 64 subscribers, each draining in its own task on a 2-worker
//! multi-thread tokio runtime, one producer task sends small events and every
//! subscriber checks that it sees each sequence number exactly once and in order.
//! The clock starts when every subscriber is ready (a barrier shared with the
//! producer) and stops when the last subscriber has seen its stream end. The
//! figure reported is delivered events per second (events received, summed over
//! subscribers, divided by elapsed time), best of the runs of each configuration.
//!
//! Implementations, all with a per-subscriber buffer of 128:
//! - `typemux`: [`shardbus::TypeMux`], `subscribe::<Ev>()` + `recv()`, `post`, then `stop`.
//! - `feed`: [`shardbus::Feed`] into one tokio mpsc per subscriber; ended by dropping
//!   the feed and the subscriptions.
//! - `async_broadcast`: `async-broadcast` channel, overflow off (send waits when full).
//! - `tokio_broadcast_lossless`: `tokio::sync::broadcast`, kept lossless by the
//!   sender yielding while `len() >= 127`; lagged receivers are still counted as losses.
//! - `mpsc_fanout`: one tokio mpsc per subscriber, the producer sends to each in turn.
//!
//! A lossy row is flagged `LOSSY` and is never eligible as the best peer; an
//! out-of-order or duplicated event is a defect: the table is still printed, then
//! the bench panics. A run that does not finish within the timeout is reported as
//! `HANG` with the producer's and subscribers' progress.
//!
//! Run: `cargo bench --bench fanout`. Results are printed as a table and written
//! to `target/bench/fanout.json` (under `CARGO_TARGET_DIR` if set).
//!
//! Environment:
//! - `FANOUT_EVENTS=N`: events per run for 1 and 8 subscribers (default 1,000,000);
//!   64 subscribers get `N / 5` (default 200,000). Use e.g. `FANOUT_EVENTS=20000`
//!   for a quick run.
//! - `FANOUT_RUNS=N`: runs per configuration (default 3, best is reported).
//! - `FANOUT_TIMEOUT_SECS=N`: per-run timeout before a run counts as hung (default 60).
//!
//! Command-line arguments (`--bench` from `cargo bench`, filters) are ignored.

#![allow(clippy::unwrap_used)]

use std::{
    any::Any,
    fmt::Write as _,
    future::Future,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures::stream::{FuturesUnordered, StreamExt};
use shardbus::{Feed, TypeMux};
use tokio::{
    sync::{Barrier, broadcast, mpsc},
    task::JoinHandle,
};

/// Per-subscriber buffer for every implementation.
const CAPACITY: usize = 128;
/// Subscriber counts measured.
const FAN_OUTS: [usize; 3] = [1, 8, 64];
/// Default events per run for 1 and 8 subscribers.
const DEFAULT_EVENTS: u64 = 1_000_000;
/// 64 subscribers send `events / LARGE_FAN_OUT_DIVISOR` events.
const LARGE_FAN_OUT_DIVISOR: u64 = 5;
/// Worker threads of the runtime each run uses.
const WORKERS: usize = 2;

/// The event: small and `Copy`, so the clone-per-subscriber peers pay nothing extra.
#[derive(Clone, Copy, Debug)]
struct Ev {
    seq: u64,
}

/// The implementations under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Impl {
    TypeMux,
    Feed,
    AsyncBroadcast,
    TokioBroadcastLossless,
    MpscFanout,
}

const IMPLS: [Impl; 5] = [
    Impl::TypeMux,
    Impl::Feed,
    Impl::AsyncBroadcast,
    Impl::TokioBroadcastLossless,
    Impl::MpscFanout,
];

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::TypeMux => "typemux",
            Impl::Feed => "feed",
            Impl::AsyncBroadcast => "async_broadcast",
            Impl::TokioBroadcastLossless => "tokio_broadcast_lossless",
            Impl::MpscFanout => "mpsc_fanout",
        }
    }

    /// The peers TypeMux is compared against.
    fn is_peer(self) -> bool {
        matches!(self, Impl::AsyncBroadcast | Impl::TokioBroadcastLossless)
    }
}

/// A progress counter on its own cache line, read only when a run hangs.
#[repr(align(64))]
#[derive(Default)]
struct Counter(AtomicU64);

impl Counter {
    fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Checks one subscriber's sequence: strictly increasing, within range.
struct Checker {
    impl_name: &'static str,
    sub: usize,
    expected: u64,
    next: u64,
    received: u64,
    progress: Arc<Counter>,
}

impl Checker {
    fn new(imp: Impl, sub: usize, expected: u64, progress: Arc<Counter>) -> Self {
        Self {
            impl_name: imp.name(),
            sub,
            expected,
            next: 0,
            received: 0,
            progress,
        }
    }

    #[inline]
    fn observe(&mut self, seq: u64) {
        if seq < self.next || seq >= self.expected {
            panic!(
                "DEFECT {}: subscriber {} got seq {} when the previous one was {} \
                 ({} events sent): out of order, duplicated or never sent",
                self.impl_name,
                self.sub,
                seq,
                self.next as i128 - 1,
                self.expected
            );
        }
        self.next = seq + 1;
        self.received += 1;
        self.progress.set(self.received);
    }

    fn finish(self) -> TaskOut {
        TaskOut::Sub {
            received: self.received,
            lost: self.expected - self.received,
            finished: Instant::now(),
        }
    }
}

/// What each spawned task hands back.
enum TaskOut {
    Producer {
        start: Instant,
        /// Sends/posts whose returned subscriber count was not the subscriber count.
        short_sends: u64,
    },
    Sub {
        received: u64,
        lost: u64,
        finished: Instant,
    },
}

/// Result of one run.
enum Outcome {
    Done {
        delivered: u64,
        lost: u64,
        elapsed: Duration,
        short_sends: u64,
    },
    Hang(String),
    Defect(String),
}

struct Config {
    events_base: u64,
    runs: usize,
    timeout: Duration,
}

fn env_u64(name: &str) -> Option<u64> {
    let raw = std::env::var(name).ok()?;
    match raw.trim().replace('_', "").parse::<u64>() {
        Ok(v) if v > 0 => Some(v),
        _ => {
            eprintln!("warning: ignoring {name}={raw:?} (expected a positive integer)");
            None
        }
    }
}

fn events_for(base: u64, subscribers: usize) -> u64 {
    if subscribers >= 64 {
        (base / LARGE_FAN_OUT_DIVISOR).max(1)
    } else {
        base
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "task panicked with a non-string payload".to_owned()
    }
}

/// Spawns a subscriber that waits on the start barrier, then drains.
fn spawn_sub<F>(barrier: &Arc<Barrier>, drain: F) -> JoinHandle<TaskOut>
where
    F: Future<Output = TaskOut> + Send + 'static,
{
    let barrier = Arc::clone(barrier);
    tokio::spawn(async move {
        barrier.wait().await;
        drain.await
    })
}

/// Spawns the producer: waits on the start barrier, starts the clock, sends.
fn spawn_producer<F>(barrier: Arc<Barrier>, send_all: F) -> JoinHandle<TaskOut>
where
    F: Future<Output = u64> + Send + 'static,
{
    tokio::spawn(async move {
        barrier.wait().await;
        let start = Instant::now();
        let short_sends = send_all.await;
        TaskOut::Producer { start, short_sends }
    })
}

/// Sets up one implementation: subscribes, spawns subscribers and the producer.
fn spawn_run(
    imp: Impl,
    subs: usize,
    events: u64,
    progress: &[Arc<Counter>],
    sent: Arc<Counter>,
) -> Vec<JoinHandle<TaskOut>> {
    let barrier = Arc::new(Barrier::new(subs + 1));
    let mut handles = Vec::with_capacity(subs + 1);
    let checker = |i: usize| Checker::new(imp, i, events, Arc::clone(&progress[i]));
    let expect_n = subs;

    match imp {
        Impl::TypeMux => {
            let mux = TypeMux::with_capacity(CAPACITY);
            for i in 0..subs {
                let mut stream = mux.subscribe::<Ev>();
                let mut ck = checker(i);
                handles.push(spawn_sub(&barrier, async move {
                    while let Some(ev) = stream.recv().await {
                        ck.observe(ev.seq);
                    }
                    ck.finish()
                }));
            }
            handles.push(spawn_producer(barrier, async move {
                let mut short = 0;
                for seq in 0..events {
                    match mux.post(Ev { seq }).await {
                        Ok(n) => short += u64::from(n != expect_n),
                        Err(e) => panic!("DEFECT typemux: post of seq {seq} failed: {e:?}"),
                    }
                    sent.set(seq + 1);
                }
                mux.stop().await;
                short
            }));
        }
        Impl::Feed => {
            let feed = Feed::<Ev>::new();
            let mut keep = Vec::with_capacity(subs);
            for i in 0..subs {
                let (tx, mut rx) = mpsc::channel::<Ev>(CAPACITY);
                keep.push(feed.subscribe(tx));
                let mut ck = checker(i);
                handles.push(spawn_sub(&barrier, async move {
                    while let Some(ev) = rx.recv().await {
                        ck.observe(ev.seq);
                    }
                    ck.finish()
                }));
            }
            handles.push(spawn_producer(barrier, async move {
                let mut short = 0;
                for seq in 0..events {
                    let n = feed.send(Ev { seq }).await;
                    short += u64::from(n != expect_n);
                    sent.set(seq + 1);
                }
                drop(feed);
                drop(keep);
                short
            }));
        }
        Impl::AsyncBroadcast => {
            let (tx, rx) = async_broadcast::broadcast::<Ev>(CAPACITY);
            let mut receivers = Vec::with_capacity(subs);
            for _ in 1..subs {
                receivers.push(rx.clone());
            }
            receivers.push(rx);
            for (i, mut rx) in receivers.into_iter().enumerate() {
                let mut ck = checker(i);
                handles.push(spawn_sub(&barrier, async move {
                    loop {
                        match rx.recv_direct().await {
                            Ok(ev) => ck.observe(ev.seq),
                            Err(async_broadcast::RecvError::Overflowed(_)) => {}
                            Err(async_broadcast::RecvError::Closed) => break,
                        }
                    }
                    ck.finish()
                }));
            }
            handles.push(spawn_producer(barrier, async move {
                for seq in 0..events {
                    if let Err(e) = tx.broadcast_direct(Ev { seq }).await {
                        panic!("async_broadcast: send of seq {seq} failed: {e}");
                    }
                    sent.set(seq + 1);
                }
                drop(tx);
                0
            }));
        }
        Impl::TokioBroadcastLossless => {
            let (tx, rx) = broadcast::channel::<Ev>(CAPACITY);
            let mut receivers = Vec::with_capacity(subs);
            for _ in 1..subs {
                receivers.push(tx.subscribe());
            }
            receivers.push(rx);
            for (i, mut rx) in receivers.into_iter().enumerate() {
                let mut ck = checker(i);
                handles.push(spawn_sub(&barrier, async move {
                    loop {
                        match rx.recv().await {
                            Ok(ev) => ck.observe(ev.seq),
                            // Counted as lost through the gap in seqs.
                            Err(broadcast::error::RecvError::Lagged(_)) => {}
                            Err(broadcast::error::RecvError::Closed) => break,
                        }
                    }
                    ck.finish()
                }));
            }
            handles.push(spawn_producer(barrier, async move {
                for seq in 0..events {
                    while tx.len() >= CAPACITY - 1 {
                        tokio::task::yield_now().await;
                    }
                    if let Err(e) = tx.send(Ev { seq }) {
                        panic!("tokio_broadcast_lossless: send of seq {seq} failed: {e}");
                    }
                    sent.set(seq + 1);
                }
                drop(tx);
                0
            }));
        }
        Impl::MpscFanout => {
            let mut senders = Vec::with_capacity(subs);
            for i in 0..subs {
                let (tx, mut rx) = mpsc::channel::<Ev>(CAPACITY);
                senders.push(tx);
                let mut ck = checker(i);
                handles.push(spawn_sub(&barrier, async move {
                    while let Some(ev) = rx.recv().await {
                        ck.observe(ev.seq);
                    }
                    ck.finish()
                }));
            }
            handles.push(spawn_producer(barrier, async move {
                for seq in 0..events {
                    for tx in &senders {
                        if let Err(e) = tx.send(Ev { seq }).await {
                            panic!("mpsc_fanout: send of seq {seq} failed: {e}");
                        }
                    }
                    sent.set(seq + 1);
                }
                drop(senders);
                0
            }));
        }
    }
    handles
}

/// One run of one configuration on a fresh 2-worker runtime.
fn run_once(imp: Impl, subs: usize, events: u64, timeout: Duration) -> Outcome {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .unwrap();
    let progress: Vec<Arc<Counter>> = (0..subs).map(|_| Arc::default()).collect();
    let sent = Arc::new(Counter::default());

    let outcome = rt.block_on(async {
        let handles = spawn_run(imp, subs, events, &progress, Arc::clone(&sent));
        let mut pending: FuturesUnordered<_> = handles.into_iter().collect();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);

        let mut start = None;
        let mut short_sends = 0;
        let mut last_finish: Option<Instant> = None;
        let (mut delivered, mut lost, mut subs_done) = (0u64, 0u64, 0usize);
        loop {
            tokio::select! {
                next = pending.next() => match next {
                    None => break,
                    Some(Ok(TaskOut::Producer { start: s, short_sends: n })) => {
                        start = Some(s);
                        short_sends = n;
                    }
                    Some(Ok(TaskOut::Sub { received, lost: l, finished })) => {
                        delivered += received;
                        lost += l;
                        subs_done += 1;
                        last_finish = Some(last_finish.map_or(finished, |t| t.max(finished)));
                    }
                    Some(Err(e)) if e.is_panic() => {
                        return Outcome::Defect(panic_message(e.into_panic()));
                    }
                    Some(Err(e)) => return Outcome::Defect(format!("task failed: {e}")),
                },
                () = &mut deadline => {
                    let counts: Vec<u64> = progress.iter().map(|c| c.get()).collect();
                    let min = counts.iter().copied().min().unwrap_or(0);
                    let max = counts.iter().copied().max().unwrap_or(0);
                    let at_max = counts.iter().filter(|&&c| c == max).count();
                    let sent_n = sent.get();
                    let producer = if start.is_some() {
                        format!("finished after sending {sent_n}/{events} events")
                    } else if sent_n == events {
                        format!(
                            "stuck after all {events} sends returned (in its shutdown step: \
                             stop() or drop)"
                        )
                    } else {
                        format!("stuck in the send of seq {sent_n} ({sent_n}/{events} returned)")
                    };
                    return Outcome::Hang(format!(
                        "no completion after {timeout:?}: producer {producer}; subscribers \
                         finished {subs_done}/{subs}; received per subscriber min {min} \
                         max {max} ({at_max} at max)",
                    ));
                }
            }
        }
        let start = start.expect("the producer finished");
        let end = last_finish.unwrap_or(start);
        Outcome::Done {
            delivered,
            lost,
            elapsed: end.saturating_duration_since(start),
            short_sends,
        }
    });
    rt.shutdown_timeout(Duration::from_millis(500));
    outcome
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Lossy,
    Hang,
    Defect,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Lossy => "lossy",
            Status::Hang => "hang",
            Status::Defect => "defect",
        }
    }
}

/// The reported result of one (impl, subscribers) configuration.
struct Row {
    imp: Impl,
    subs: usize,
    events: u64,
    /// Best deliveries per second over the runs (None when no run completed).
    best_eps: Option<f64>,
    /// Largest loss of any run.
    lost: u64,
    status: Status,
    ratio: Option<f64>,
}

fn run_config(imp: Impl, subs: usize, events: u64, cfg: &Config, notes: &mut Vec<String>) -> Row {
    let mut best_eps: Option<f64> = None;
    let mut lost = 0;
    let mut status = Status::Ok;
    let mut rates = Vec::new();
    for run in 1..=cfg.runs {
        match run_once(imp, subs, events, cfg.timeout) {
            Outcome::Done {
                delivered,
                lost: l,
                elapsed,
                short_sends,
            } => {
                let eps = delivered as f64 / elapsed.as_secs_f64().max(1e-9);
                rates.push(eps / 1e6);
                best_eps = Some(best_eps.map_or(eps, |b| b.max(eps)));
                lost = lost.max(l);
                if l > 0 {
                    status = Status::Lossy;
                    notes.push(format!(
                        "{} x{subs} run {run}: lost {l} of {} deliveries",
                        imp.name(),
                        events * subs as u64
                    ));
                }
                if short_sends > 0 {
                    notes.push(format!(
                        "{} x{subs} run {run}: {short_sends} of {events} sends reported \
                         delivery to a count other than {subs} subscribers",
                        imp.name()
                    ));
                }
            }
            Outcome::Hang(diag) => {
                notes.push(format!("HANG {} x{subs} run {run}: {diag}", imp.name()));
                status = Status::Hang;
                break;
            }
            Outcome::Defect(msg) => {
                notes.push(format!("DEFECT {} x{subs} run {run}: {msg}", imp.name()));
                status = Status::Defect;
                break;
            }
        }
    }
    if matches!(status, Status::Hang | Status::Defect) {
        best_eps = None;
    }
    let runs: Vec<String> = rates.iter().map(|r| format!("{r:.2}")).collect();
    eprintln!(
        "  {:<26} x{subs:<3} {events:>9} events: runs [{}] M deliveries/s, {}",
        imp.name(),
        runs.join(", "),
        status.name()
    );
    Row {
        imp,
        subs,
        events,
        best_eps,
        lost,
        status,
        ratio: None,
    }
}

fn target_dir() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
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

fn json_f64(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "null".to_owned(),
    }
}

fn write_json(rows: &[Row]) -> std::io::Result<PathBuf> {
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let lost = if matches!(r.status, Status::Hang | Status::Defect) {
            "null".to_owned()
        } else {
            r.lost.to_string()
        };
        let _ = writeln!(
            out,
            "  {{\"impl\":\"{}\",\"subscribers\":{},\"events\":{},\"events_per_sec\":{},\
             \"lost\":{},\"ratio_vs_best_peer\":{},\"status\":\"{}\"}}{}",
            r.imp.name(),
            r.subs,
            r.events,
            json_f64(r.best_eps, 1),
            lost,
            json_f64(r.ratio, 4),
            r.status.name(),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    out.push_str("]\n");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("fanout.json");
    std::fs::write(&path, out)?;
    Ok(path)
}

fn main() {
    // `cargo bench` passes `--bench`; filters and other arguments are ignored too.
    let base = env_u64("FANOUT_EVENTS").unwrap_or(DEFAULT_EVENTS);
    let cfg = Config {
        events_base: base,
        runs: env_u64("FANOUT_RUNS").map_or(3, |n| n as usize),
        timeout: Duration::from_secs(env_u64("FANOUT_TIMEOUT_SECS").unwrap_or(60)),
    };
    eprintln!(
        "fanout: {} worker threads, capacity {CAPACITY}, {} runs per configuration (best reported), \
         {} events for 1/8 subscribers, {} for 64",
        WORKERS,
        cfg.runs,
        cfg.events_base,
        events_for(cfg.events_base, 64)
    );

    let total = Instant::now();
    let mut notes = Vec::new();
    let mut rows = Vec::new();
    for &subs in &FAN_OUTS {
        let events = events_for(cfg.events_base, subs);
        for &imp in &IMPLS {
            rows.push(run_config(imp, subs, events, &cfg, &mut notes));
        }
    }

    // Best eligible (lossless, completed) peer per fan-out.
    let best_peer = |subs: usize| -> Option<(Impl, f64)> {
        rows.iter()
            .filter(|r| r.subs == subs && r.imp.is_peer() && r.status == Status::Ok)
            .filter_map(|r| r.best_eps.map(|e| (r.imp, e)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    let peers: Vec<Option<(Impl, f64)>> = FAN_OUTS.iter().map(|&s| best_peer(s)).collect();
    for r in &mut rows {
        let peer = FAN_OUTS
            .iter()
            .position(|&s| s == r.subs)
            .and_then(|i| peers[i]);
        r.ratio = match (r.best_eps, peer) {
            (Some(e), Some((_, p))) if p > 0.0 => Some(e / p),
            _ => None,
        };
    }

    println!();
    println!("impl | subscribers | events | M deliveries/s | lost | ratio_vs_best_peer");
    println!("---|---:|---:|---:|---:|---:");
    for r in &rows {
        let eps = r
            .best_eps
            .map_or_else(|| "-".to_owned(), |e| format!("{:.2}", e / 1e6));
        let ratio = r
            .ratio
            .map_or_else(|| "n/a".to_owned(), |x| format!("{x:.2}x"));
        let (lost, ratio) = match r.status {
            Status::Ok => (r.lost.to_string(), ratio),
            Status::Lossy => (format!("{} LOSSY", r.lost), format!("{ratio} LOSSY")),
            Status::Hang => ("HANG".to_owned(), "HANG".to_owned()),
            Status::Defect => ("DEFECT".to_owned(), "DEFECT".to_owned()),
        };
        println!(
            "{} | {} | {} | {} | {} | {}",
            r.imp.name(),
            r.subs,
            r.events,
            eps,
            lost,
            ratio
        );
    }
    println!();
    println!(
        "(M deliveries/s = events x subscribers received / elapsed, best of {} runs;",
        cfg.runs
    );
    println!(
        " lost = worst run; best peer = faster lossless of async_broadcast, tokio_broadcast_lossless)"
    );
    println!();

    let find = |imp: Impl, subs: usize| rows.iter().find(|r| r.imp == imp && r.subs == subs);
    for (i, &subs) in FAN_OUTS.iter().enumerate() {
        let peer = peers[i].map_or_else(
            || "no lossless peer completed".to_owned(),
            |(p, e)| format!("best peer {} at {:.2} M/s", p.name(), e / 1e6),
        );
        let mux =
            find(Impl::TypeMux, subs).and_then(|r| r.ratio.filter(|_| r.status == Status::Ok));
        let feed = find(Impl::Feed, subs)
            .filter(|r| r.status == Status::Ok)
            .and_then(|r| r.best_eps);
        let mpsc = find(Impl::MpscFanout, subs)
            .filter(|r| r.status == Status::Ok)
            .and_then(|r| r.best_eps);
        let feed_vs_mpsc = match (feed, mpsc) {
            (Some(f), Some(m)) if m > 0.0 => Some(f / m),
            _ => None,
        };
        let verdict = |v: Option<f64>, target: f64| match v {
            Some(v) if v >= target => format!("{v:.3}x (target >= {target}: met)"),
            Some(v) => format!("{v:.3}x (target >= {target}: MISSED)"),
            None => format!("n/a (target >= {target}: not measurable)"),
        };
        println!(
            "x{subs:<2}: typemux / best peer = {}; feed / mpsc_fanout = {}; {peer}",
            verdict(mux, 1.0),
            verdict(feed_vs_mpsc, 0.9),
        );
    }

    if !notes.is_empty() {
        println!();
        println!("anomalies:");
        for n in &notes {
            println!("  - {n}");
        }
    }

    match write_json(&rows) {
        Ok(path) => println!("\nwrote {}", path.display()),
        Err(e) => eprintln!("\nerror: could not write fanout.json: {e}"),
    }
    println!("total time {:.1}s", total.elapsed().as_secs_f64());

    let defects: Vec<&String> = notes.iter().filter(|n| n.starts_with("DEFECT")).collect();
    if !defects.is_empty() {
        panic!("{} defect(s) found (see anomalies above)", defects.len());
    }
}
