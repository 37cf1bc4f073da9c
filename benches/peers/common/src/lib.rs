//! What both gateway-bench clients share: a counting global allocator, the
//! process's CPU time, glibc's view of the whole heap, argument parsing and
//! the one JSON result line each run prints.
//!
//! The bench (`benches/gateway.rs` in the main workspace) starts a client
//! process per row, reads its stdout line by line and parses the last line as
//! the row's result. Lines before it are progress (`ready`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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
