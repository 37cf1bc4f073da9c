//! What both gateway-bench clients share: a counting global allocator, the
//! process's CPU time, glibc's view of the whole heap, argument parsing and
//! the one JSON result line each run prints, with the measurement around it.
//!
//! The bench (`benches/gateway.rs` in the main workspace) starts a client
//! process per row, reads its stdout line by line and parses the last line as
//! the row's result. Lines before it are progress (`ready`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Bytes currently allocated through the Rust global allocator.
static CURRENT: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting the bytes Rust code holds. Install it with
/// `#[global_allocator] static A: peer_common::Counting = peer_common::Counting;`.
pub struct Counting;

// SAFETY: every call forwards to `System` with the same arguments; the
// counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            CURRENT.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            CURRENT.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            CURRENT.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

/// Bytes the Rust side holds now (the counting allocator).
pub fn rust_heap() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

#[repr(C)]
#[derive(Default)]
struct Mallinfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

unsafe extern "C" {
    fn mallinfo2() -> Mallinfo2;
}

/// Bytes in use on the whole malloc heap, all arenas (glibc `mallinfo2`:
/// in-use small chunks plus mmapped chunks). Unlike [`rust_heap`] this also
/// counts what C libraries (libzstd) allocate themselves.
pub fn total_heap() -> usize {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct.
    let m = unsafe { mallinfo2() };
    m.uordblks + m.hblkhd
}

/// Resident set size in bytes (`/proc/self/statm`), 0 if unreadable.
pub fn rss() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// User plus system CPU time of this process so far, from `/proc/self/stat`
/// (clock ticks of 1/100 s, Linux's `USER_HZ`).
pub fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the `(comm)`, which may itself hold spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (tick(11), tick(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

/// `--key value` arguments.
pub struct Args {
    mode: String,
    values: HashMap<String, String>,
}

impl Args {
    /// Parse the process arguments: the first is the mode, then `--key value` pairs.
    pub fn parse() -> Self {
        let mut it = std::env::args().skip(1);
        let mode = it.next().unwrap_or_default();
        let mut values = HashMap::new();
        while let Some(key) = it.next() {
            let key = key.trim_start_matches("--").to_owned();
            let value = it.next().unwrap_or_default();
            values.insert(key, value);
        }
        Self { mode, values }
    }

    /// The mode (`throughput` or `idle`).
    pub fn mode(&self) -> &str {
        &self.mode
    }

    /// A string argument.
    pub fn str(&self, key: &str) -> String {
        self.values
            .get(key)
            .cloned()
            .unwrap_or_else(|| panic!("missing --{key}"))
    }

    /// A numeric argument, or `default` if absent.
    pub fn num(&self, key: &str, default: u64) -> u64 {
        self.values.get(key).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("--{key} {v}: not a number"))
        })
    }

    /// A millisecond argument.
    pub fn millis(&self, key: &str, default: u64) -> Duration {
        Duration::from_millis(self.num(key, default))
    }

    /// A count argument that fits a `u32`, saturating.
    pub fn count(&self, key: &str, default: u64) -> u32 {
        u32::try_from(self.num(key, default)).unwrap_or(u32::MAX)
    }
}

/// A JSON object built field by field, printed as one line.
#[derive(Default)]
pub struct Line(Vec<String>);

impl Line {
    /// A string field.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.0.push(format!("\"{key}\":\"{value}\""));
        self
    }

    /// A numeric field (NaN and infinities become `null`).
    pub fn num(mut self, key: &str, value: f64) -> Self {
        if value.is_finite() {
            self.0.push(format!("\"{key}\":{value}"));
        } else {
            self.0.push(format!("\"{key}\":null"));
        }
        self
    }

    /// Print the object as one stdout line.
    pub fn print(self) {
        println!("{{{}}}", self.0.join(","));
    }
}

/// Tell the bench the client is connected (it then starts the traffic).
pub fn say_ready() {
    println!("ready");
}

/// What a throughput run counted in its measured window.
pub struct Window {
    /// Events the reader counted in the window.
    pub events: u64,
    /// The window's length.
    pub secs: f64,
    /// CPU time the process used in it.
    pub cpu_secs: f64,
}

/// Waits `--warmup-ms`, then counts what `events` gains over `--secs`.
pub async fn measure(args: &Args, events: &AtomicU64) -> Window {
    tokio::time::sleep(args.millis("warmup-ms", 1000)).await;
    let (e0, c0, t0) = (events.load(Ordering::Relaxed), cpu_secs(), Instant::now());
    tokio::time::sleep(Duration::from_secs(args.num("secs", 5))).await;
    let (e1, c1, secs) = (events.load(Ordering::Relaxed), cpu_secs(), t0.elapsed());
    Window {
        events: e1 - e0,
        secs: secs.as_secs_f64(),
        cpu_secs: c1 - c0,
    }
}

/// Milliseconds since `started` if `done`, NaN (printed as `null`) if not.
pub fn ms_since_if(done: bool, started: Instant) -> f64 {
    if done {
        started.elapsed().as_secs_f64() * 1e3
    } else {
        f64::NAN
    }
}

/// The result line of a throughput run.
pub struct Throughput<'a> {
    /// `shardbus` or `twilight`.
    pub client: &'a str,
    /// The compression the client used.
    pub compression: &'a str,
    /// The measured window.
    pub window: Window,
    /// Events out of order (seq or id not increasing as expected).
    pub seq_defects: u64,
    /// Errors the client reported.
    pub errors: u64,
    /// Connections lost during the run.
    pub disconnects: u64,
    /// How long a close under full traffic took (NaN: it did not finish).
    pub close_ms: f64,
}

impl Throughput<'_> {
    /// Print it as the run's last line.
    pub fn print(&self) {
        Line::default()
            .str("client", self.client)
            .str("compression", self.compression)
            .num("events", self.window.events as f64)
            .num("secs", self.window.secs)
            .num("cpu_secs", self.window.cpu_secs)
            .num("seq_defects", self.seq_defects as f64)
            .num("errors", self.errors as f64)
            .num("disconnects", self.disconnects as f64)
            .num("close_ms", self.close_ms)
            .print();
    }
}

/// The heap before an idle run's shards start.
pub struct HeapMark {
    /// [`rust_heap`] then.
    rust: usize,
    /// [`total_heap`] then.
    total: usize,
}

impl HeapMark {
    /// The heap now.
    pub fn now() -> Self {
        Self {
            rust: rust_heap(),
            total: total_heap(),
        }
    }
}

/// Which of an idle run's shards have been seen ready.
pub struct Ready {
    /// One flag per shard id.
    seen: Vec<bool>,
    /// Shards not seen yet.
    left: usize,
}

impl Ready {
    /// None of `total` yet.
    pub fn new(total: u32) -> Self {
        Self {
            seen: vec![false; total as usize],
            left: total as usize,
        }
    }

    /// Shard `id` is ready (again, or out of range: no change).
    pub fn mark(&mut self, id: u32) {
        if let Some(seen) = self.seen.get_mut(id as usize)
            && !std::mem::replace(seen, true)
        {
            self.left -= 1;
        }
    }

    /// Whether every shard is.
    pub fn all(&self) -> bool {
        self.left == 0
    }
}

/// The result line of an idle run.
pub struct Idle<'a> {
    /// `shardbus` or `twilight`.
    pub client: &'a str,
    /// The compression the client used.
    pub compression: &'a str,
    /// How many shards ran.
    pub shards: u32,
    /// From starting the shards until all were ready.
    pub all_ready: Duration,
    /// The heap before they started.
    pub start: HeapMark,
    /// Errors the client reported.
    pub errors: u64,
}

impl Idle<'_> {
    /// Print it as the run's last line, with the heap each shard holds now.
    pub fn print(&self) {
        let now = HeapMark::now();
        let per = |a: usize, b: usize| (b.saturating_sub(a)) as f64 / f64::from(self.shards);
        Line::default()
            .str("client", self.client)
            .str("compression", self.compression)
            .num("shards", f64::from(self.shards))
            .num("all_ready_ms", self.all_ready.as_secs_f64() * 1e3)
            .num("rust_heap_per_shard", per(self.start.rust, now.rust))
            .num("heap_per_shard", per(self.start.total, now.total))
            .num("rss", rss() as f64)
            .num("errors", self.errors as f64)
            .print();
    }
}
