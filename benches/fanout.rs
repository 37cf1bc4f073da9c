//! Bus fan-out throughput: `TypeMux` and `Feed` against lossless peers.
//!
//! For 1, 8 and 64 subscribers, each draining in its own task on a 2-worker
//! multi-thread tokio runtime, one producer task sends small events and every
//! subscriber checks that it sees each sequence number exactly once and in order.
//! The clock starts when every subscriber is ready (a barrier shared with the
//! producer) and stops when the last subscriber has seen its stream end. The
//! figure is delivered events per second (events received, summed over
//! subscribers, divided by elapsed time).
//!
//! Runs are made in rounds: each round runs every implementation once, back
//! to back, starting with a different one each round, so load on a shared
//! machine that drifts over the minutes of a bench lands on all of them
//! alike. Each figure is reported as the median and the spread (min..max)
//! over the rounds, and each ratio is taken within a round (run `i` over the
//! other implementation's run `i`), then summarised the same way.
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
//! to `target/bench/fanout.json` (under `CARGO_TARGET_DIR` if set): one object
//! per configuration with `events_per_sec` (best run) and `ratio_vs_best_peer`
//! (best over best) as before, plus `events_per_sec_{min,median,max}`,
//! `runs_events_per_sec` (by round), and the per-round ratio spreads
//! `ratio_vs_best_peer_*`, `ratio_vs_async_broadcast_*`, `ratio_vs_mpsc_fanout_*`.
//!
//! Environment:
//! - `FANOUT_EVENTS=N`: events per run for 1 and 8 subscribers (default 1,000,000);
//!   64 subscribers get `N / 5` (default 200,000). Use e.g. `FANOUT_EVENTS=20000`
//!   for a quick run.
//! - `FANOUT_RUNS=N`: rounds per fan-out, so runs per configuration (default 5).
//! - `FANOUT_SUBS=1,8`: measure only these subscriber counts (of 1, 8, 64).
//! - `FANOUT_IMPLS=typemux,mpsc_fanout`: measure only these implementations
//!   (ratios against one left out are `n/a`); for profiling one of them.
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

/// Min, median and max of a set of samples.
#[derive(Clone, Copy)]
struct Spread {
    min: f64,
    median: f64,
    max: f64,
}

impl Spread {
    /// `None` for no samples. The median of an even count is the mean of
    /// the middle two.
    fn of(samples: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            min: v[0],
            median,
            max: v[n - 1],
        })
    }
}

/// The reported result of one (impl, subscribers) configuration.
struct Row {
    imp: Impl,
    subs: usize,
    events: u64,
    /// Deliveries per second of each run, by run index (`None`: the run did
    /// not complete, or the configuration stopped after a hang or defect).
    rates: Vec<Option<f64>>,
    /// Largest loss of any run.
    lost: u64,
    status: Status,
    /// Paired per-run ratios (this row's run `i` over the other's run `i`,
    /// both measured back to back in round `i`), against the best lossless
    /// peer of that round, `async_broadcast` and `mpsc_fanout`.
    vs_best_peer: Option<Spread>,
    vs_async_broadcast: Option<Spread>,
    vs_mpsc: Option<Spread>,
}

impl Row {
    fn completed(&self) -> Vec<f64> {
        self.rates.iter().flatten().copied().collect()
    }

    fn spread(&self) -> Option<Spread> {
        if matches!(self.status, Status::Hang | Status::Defect) {
            return None;
        }
        Spread::of(&self.completed())
    }

    fn best(&self) -> Option<f64> {
        self.spread().map(|s| s.max)
    }
}

/// Runs every selected implementation at `subs` subscribers, `cfg.runs`
/// rounds. Each round runs every implementation once, back to back, starting
/// with a different one each round, so machine load that drifts over the
/// minutes of a bench lands on all of them alike and each round's ratios
/// compare runs made seconds apart.
fn run_fan_out(
    subs: usize,
    events: u64,
    impls: &[Impl],
    cfg: &Config,
    notes: &mut Vec<String>,
) -> Vec<Row> {
    let mut rows: Vec<Row> = impls
        .iter()
        .map(|&imp| Row {
            imp,
            subs,
            events,
            rates: vec![None; cfg.runs],
            lost: 0,
            status: Status::Ok,
            vs_best_peer: None,
            vs_async_broadcast: None,
            vs_mpsc: None,
        })
        .collect();
    for run in 0..cfg.runs {
        for k in 0..rows.len() {
            let row = &mut rows[(run + k) % impls.len()];
            if matches!(row.status, Status::Hang | Status::Defect) {
                continue;
            }
            let imp = row.imp;
            match run_once(imp, subs, events, cfg.timeout) {
                Outcome::Done {
                    delivered,
                    lost: l,
                    elapsed,
                    short_sends,
                } => {
                    let eps = delivered as f64 / elapsed.as_secs_f64().max(1e-9);
                    row.rates[run] = Some(eps);
                    row.lost = row.lost.max(l);
                    if l > 0 {
                        row.status = Status::Lossy;
                        notes.push(format!(
                            "{} x{subs} run {}: lost {l} of {} deliveries",
                            imp.name(),
                            run + 1,
                            events * subs as u64
                        ));
                    }
                    if short_sends > 0 {
                        notes.push(format!(
                            "{} x{subs} run {}: {short_sends} of {events} sends reported \
                             delivery to a count other than {subs} subscribers",
                            imp.name(),
                            run + 1
                        ));
                    }
                }
                Outcome::Hang(diag) => {
                    notes.push(format!(
                        "HANG {} x{subs} run {}: {diag}",
                        imp.name(),
                        run + 1
                    ));
                    row.status = Status::Hang;
                }
                Outcome::Defect(msg) => {
                    notes.push(format!(
                        "DEFECT {} x{subs} run {}: {msg}",
                        imp.name(),
                        run + 1
                    ));
                    row.status = Status::Defect;
                }
            }
        }
    }

    // Per-round references: the best eligible (lossless, completed) peer
    // of each round, and the two named baselines.
    let rates_of = |imp: Impl| -> Vec<Option<f64>> {
        rows.iter()
            .find(|r| r.imp == imp && r.status == Status::Ok)
            .map_or_else(|| vec![None; cfg.runs], |r| r.rates.clone())
    };
    let best_peer: Vec<Option<f64>> = (0..cfg.runs)
        .map(|run| {
            rows.iter()
                .filter(|r| r.imp.is_peer() && r.status == Status::Ok)
                .filter_map(|r| r.rates[run])
                .max_by(f64::total_cmp)
        })
        .collect();
    let async_broadcast = rates_of(Impl::AsyncBroadcast);
    let mpsc = rates_of(Impl::MpscFanout);
    let paired = |mine: &[Option<f64>], theirs: &[Option<f64>]| -> Option<Spread> {
        let ratios: Vec<f64> = mine
            .iter()
            .zip(theirs)
            .filter_map(|(a, b)| match (a, b) {
                (Some(a), Some(b)) if *b > 0.0 => Some(a / b),
                _ => None,
            })
            .collect();
        Spread::of(&ratios)
    };
    for r in &mut rows {
        if matches!(r.status, Status::Hang | Status::Defect) {
            continue;
        }
        r.vs_best_peer = paired(&r.rates, &best_peer);
        r.vs_async_broadcast = paired(&r.rates, &async_broadcast);
        r.vs_mpsc = paired(&r.rates, &mpsc);
    }
    for r in &rows {
        let runs: Vec<String> = r
            .rates
            .iter()
            .map(|x| x.map_or_else(|| "-".to_owned(), |e| format!("{:.2}", e / 1e6)))
            .collect();
        eprintln!(
            "  {:<26} x{subs:<3} {events:>9} events: runs [{}] M deliveries/s, {}",
            r.imp.name(),
            runs.join(", "),
            r.status.name()
        );
    }
    rows
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

/// `"<name>_min":..,"<name>_median":..,"<name>_max":..`.
fn json_spread(name: &str, s: Option<Spread>, decimals: usize) -> String {
    format!(
        "\"{name}_min\":{},\"{name}_median\":{},\"{name}_max\":{}",
        json_f64(s.map(|s| s.min), decimals),
        json_f64(s.map(|s| s.median), decimals),
        json_f64(s.map(|s| s.max), decimals),
    )
}

fn write_json(rows: &[Row], best_peer: impl Fn(usize) -> Option<f64>) -> std::io::Result<PathBuf> {
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let lost = if matches!(r.status, Status::Hang | Status::Defect) {
            "null".to_owned()
        } else {
            r.lost.to_string()
        };
        let best_ratio = match (r.best(), best_peer(r.subs)) {
            (Some(e), Some(p)) if p > 0.0 => Some(e / p),
            _ => None,
        };
        let runs: Vec<String> = r.rates.iter().map(|x| json_f64(*x, 1)).collect();
        let _ = writeln!(
            out,
            "  {{\"impl\":\"{}\",\"subscribers\":{},\"events\":{},\"events_per_sec\":{},\
             {},\"runs_events_per_sec\":[{}],\
             \"lost\":{},\"ratio_vs_best_peer\":{},{},{},{},\"status\":\"{}\"}}{}",
            r.imp.name(),
            r.subs,
            r.events,
            json_f64(r.best(), 1),
            json_spread("events_per_sec", r.spread(), 1),
            runs.join(","),
            lost,
            json_f64(best_ratio, 4),
            json_spread("ratio_vs_best_peer", r.vs_best_peer, 4),
            json_spread("ratio_vs_async_broadcast", r.vs_async_broadcast, 4),
            json_spread("ratio_vs_mpsc_fanout", r.vs_mpsc, 4),
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

/// The items of `all` named in the comma-separated environment variable
/// `var` (all of them when it is unset), in `all`'s order.
fn env_select<T: Copy + std::fmt::Debug>(var: &str, all: &[T], name: fn(&T) -> String) -> Vec<T> {
    let Ok(raw) = std::env::var(var) else {
        return all.to_vec();
    };
    let wanted: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .collect();
    let picked: Vec<T> = all
        .iter()
        .copied()
        .filter(|item| wanted.contains(&name(item).as_str()))
        .collect();
    if picked.len() != wanted.len() {
        let names: Vec<String> = all.iter().map(name).collect();
        eprintln!("warning: {var}={raw:?}: the choices are {names:?}");
    }
    picked
}

fn fmt_spread(s: Option<Spread>, scale: f64, unit: &str) -> String {
    s.map_or_else(
        || "-".to_owned(),
        |s| {
            format!(
                "{:.2}{unit} [{:.2}..{:.2}]",
                s.median / scale,
                s.min / scale,
                s.max / scale
            )
        },
    )
}

fn main() {
    // `cargo bench` passes `--bench`; filters and other arguments are ignored too.
    let base = env_u64("FANOUT_EVENTS").unwrap_or(DEFAULT_EVENTS);
    let cfg = Config {
        events_base: base,
        runs: env_u64("FANOUT_RUNS").map_or(5, |n| n as usize),
        timeout: Duration::from_secs(env_u64("FANOUT_TIMEOUT_SECS").unwrap_or(60)),
    };
    let fan_outs = env_select("FANOUT_SUBS", &FAN_OUTS, usize::to_string);
    let impls = env_select("FANOUT_IMPLS", &IMPLS, |i| i.name().to_owned());
    eprintln!(
        "fanout: {} worker threads, capacity {CAPACITY}, {} rounds per fan-out (each runs every \
         implementation once, interleaved), {} events for 1/8 subscribers, {} for 64",
        WORKERS,
        cfg.runs,
        cfg.events_base,
        events_for(cfg.events_base, 64)
    );

    let total = Instant::now();
    let mut notes = Vec::new();
    let mut rows = Vec::new();
    for &subs in &fan_outs {
        let events = events_for(cfg.events_base, subs);
        rows.extend(run_fan_out(subs, events, &impls, &cfg, &mut notes));
    }

    // Best eligible (lossless, completed) peer per fan-out, by best run
    // (the old `ratio_vs_best_peer` field).
    let best_peer = |subs: usize| -> Option<f64> {
        rows.iter()
            .filter(|r| r.subs == subs && r.imp.is_peer() && r.status == Status::Ok)
            .filter_map(Row::best)
            .max_by(f64::total_cmp)
    };

    println!();
    println!(
        "impl | subscribers | events | M deliveries/s median [min..max] | lost | \
         vs best peer | vs async_broadcast | vs mpsc_fanout"
    );
    println!("---|---:|---:|---:|---:|---:|---:|---:");
    for r in &rows {
        let ratio = |s: Option<Spread>| fmt_spread(s, 1.0, "x");
        let (lost, flag) = match r.status {
            Status::Ok => (r.lost.to_string(), ""),
            Status::Lossy => (format!("{} LOSSY", r.lost), " LOSSY"),
            Status::Hang => ("HANG".to_owned(), " HANG"),
            Status::Defect => ("DEFECT".to_owned(), " DEFECT"),
        };
        println!(
            "{} | {} | {} | {} | {} | {}{flag} | {}{flag} | {}{flag}",
            r.imp.name(),
            r.subs,
            r.events,
            fmt_spread(r.spread(), 1e6, ""),
            lost,
            ratio(r.vs_best_peer),
            ratio(r.vs_async_broadcast),
            ratio(r.vs_mpsc),
        );
    }
    println!();
    println!(
        "(M deliveries/s = events x subscribers received / elapsed: median [min..max] of {} \
         rounds; ratios are per round, each run over the other's run of the same round, \
         median [min..max];",
        cfg.runs
    );
    println!(
        " lost = worst run; best peer = faster lossless of async_broadcast, \
         tokio_broadcast_lossless in that round)"
    );
    println!();

    let find = |imp: Impl, subs: usize| {
        rows.iter()
            .find(|r| r.imp == imp && r.subs == subs && r.status == Status::Ok)
    };
    let verdict = |v: Option<Spread>, target: f64| match v {
        Some(s) if s.min >= target => format!(
            "{:.3}x [{:.3}..{:.3}] (target >= {target}: met in every round)",
            s.median, s.min, s.max
        ),
        Some(s) if s.median >= target => format!(
            "{:.3}x [{:.3}..{:.3}] (target >= {target}: met by the median)",
            s.median, s.min, s.max
        ),
        Some(s) => format!(
            "{:.3}x [{:.3}..{:.3}] (target >= {target}: MISSED)",
            s.median, s.min, s.max
        ),
        None => format!("n/a (target >= {target}: not measurable)"),
    };
    for &subs in &fan_outs {
        let mux = find(Impl::TypeMux, subs);
        let feed = find(Impl::Feed, subs);
        println!(
            "x{subs:<2}: typemux / best peer = {}; feed / mpsc_fanout = {}",
            verdict(mux.and_then(|r| r.vs_best_peer), 1.0),
            verdict(feed.and_then(|r| r.vs_mpsc), 0.9),
        );
        if subs == 1 {
            // Issue 9: one subscriber is the common case.
            println!(
                "x1 : typemux / async_broadcast = {}; typemux / mpsc_fanout = {}",
                verdict(mux.and_then(|r| r.vs_async_broadcast), 1.2),
                verdict(mux.and_then(|r| r.vs_mpsc), 1.0),
            );
        }
    }

    if !notes.is_empty() {
        println!();
        println!("anomalies:");
        for n in &notes {
            println!("  - {n}");
        }
    }

    match write_json(&rows, best_peer) {
        Ok(path) => println!("\nwrote {}", path.display()),
        Err(e) => eprintln!("\nerror: could not write fanout.json: {e}"),
    }
    println!("total time {:.1}s", total.elapsed().as_secs_f64());

    let defects: Vec<&String> = notes.iter().filter(|n| n.starts_with("DEFECT")).collect();
    if !defects.is_empty() {
        panic!("{} defect(s) found (see anomalies above)", defects.len());
    }
}
