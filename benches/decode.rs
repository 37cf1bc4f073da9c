//! Dispatch decode throughput: our models against `twilight-model`.
//!
//! For each fixture in `benches/fixtures/` (a realistic `d` payload of a
//! MESSAGE_CREATE or GUILD_CREATE; see `generate.py` there), both decoders
//! first decode the same bytes once and must succeed (the bench stops if not).
//! Then, for each of several runs, the payload is decoded `N` times with
//! `serde_json::from_slice` into ours and `N` times into twilight's type,
//! alternating which side goes first. Each decoded value is dropped inside
//! the timed loop: freeing what decoding allocated is part of its cost. The
//! best run of each side is reported as ns/op and MB/s (10^6 bytes), with
//! `ratio = twilight_ns / ours_ns` (ours' throughput over twilight's; ≥ 1.0
//! means ours is at least as fast).
//!
//! Run: `cargo bench --bench decode`. Results are printed as a table and
//! written to `target/bench/decode.json` (under `CARGO_TARGET_DIR` if set).
//!
//! Environment:
//! - `DECODE_RUNS=N`: runs per side and payload (default 5, best reported).
//! - `DECODE_MILLIS=N`: target duration of one run in milliseconds (default
//!   200); `N` is calibrated from it per payload.
//!
//! Command-line arguments (`--bench` from `cargo bench`, filters) are ignored.

#![allow(clippy::unwrap_used)]

use std::{
    fmt::Write as _,
    hint::black_box,
    path::PathBuf,
    time::{Duration, Instant},
};

use serde::de::DeserializeOwned;

/// One payload and the pair of types it decodes into.
struct Case {
    /// Name in the table and the JSON.
    name: &'static str,
    /// The payload.
    bytes: &'static [u8],
    /// Decodes `bytes` into our type `iters` times; returns elapsed time.
    ours: fn(&[u8], u64) -> Duration,
    /// Decodes `bytes` into twilight's type `iters` times; returns elapsed time.
    twilight: fn(&[u8], u64) -> Duration,
    /// Decodes once on each side, panicking with the error if either fails.
    check: fn(&[u8]),
}

/// One result row.
struct Row {
    name: &'static str,
    bytes: usize,
    ours_ns: f64,
    twilight_ns: f64,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.twilight_ns / self.ours_ns
    }
}

/// Times `iters` decodes of `bytes` into `T`.
fn time_decode<T: DeserializeOwned>(bytes: &[u8], iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let value: T = serde_json::from_slice(black_box(bytes)).unwrap();
        black_box(value);
    }
    start.elapsed()
}

/// Decodes once into each type, with a clear message naming the side that fails.
fn check_pair<A: DeserializeOwned, B: DeserializeOwned>(name: &str, bytes: &[u8]) {
    if let Err(e) = serde_json::from_slice::<A>(bytes) {
        panic!("{name}: ours ({}) failed: {e}", std::any::type_name::<A>());
    }
    if let Err(e) = serde_json::from_slice::<B>(bytes) {
        panic!(
            "{name}: twilight ({}) failed: {e}",
            std::any::type_name::<B>()
        );
    }
}

macro_rules! case {
    ($name:literal, $file:literal, $ours:ty, $twilight:ty) => {
        Case {
            name: $name,
            bytes: include_bytes!(concat!("fixtures/", $file)),
            ours: time_decode::<$ours>,
            twilight: time_decode::<$twilight>,
            check: |bytes| check_pair::<$ours, $twilight>($name, bytes),
        }
    };
}

fn cases() -> Vec<Case> {
    use twilight_model::gateway::payload::incoming as tw;
    vec![
        case!(
            "message_create_small",
            "message_create_small.json",
            shardbus::model::MessageCreate,
            tw::MessageCreate
        ),
        case!(
            "message_create_large",
            "message_create_large.json",
            shardbus::model::MessageCreate,
            tw::MessageCreate
        ),
        case!(
            "guild_create",
            "guild_create.json",
            shardbus::model::GuildCreate,
            tw::GuildCreate
        ),
    ]
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

/// Picks an iteration count so one run of the slower side takes about `target`.
fn calibrate(case: &Case, target: Duration) -> u64 {
    let mut iters = 1u64;
    loop {
        let elapsed = (case.ours)(case.bytes, iters).max((case.twilight)(case.bytes, iters));
        if elapsed >= Duration::from_millis(20) || iters >= 1 << 30 {
            let per = elapsed.as_secs_f64() / iters as f64;
            return ((target.as_secs_f64() / per) as u64).max(1);
        }
        iters *= 4;
    }
}

fn measure(case: &Case, runs: usize, target: Duration) -> Row {
    (case.check)(case.bytes);
    let iters = calibrate(case, target);
    let mut best_ours = f64::INFINITY;
    let mut best_twilight = f64::INFINITY;
    for run in 0..runs {
        // Alternate which side goes first, so neither always gets the warm cache.
        let (a, b) = if run % 2 == 0 {
            (
                (case.ours)(case.bytes, iters),
                (case.twilight)(case.bytes, iters),
            )
        } else {
            let b = (case.twilight)(case.bytes, iters);
            ((case.ours)(case.bytes, iters), b)
        };
        best_ours = best_ours.min(a.as_nanos() as f64 / iters as f64);
        best_twilight = best_twilight.min(b.as_nanos() as f64 / iters as f64);
    }
    Row {
        name: case.name,
        bytes: case.bytes.len(),
        ours_ns: best_ours,
        twilight_ns: best_twilight,
    }
}

fn mb_per_s(bytes: usize, ns: f64) -> f64 {
    bytes as f64 / ns * 1e9 / 1e6
}

fn target_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
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

fn write_json(rows: &[Row]) -> std::io::Result<PathBuf> {
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {{\"payload\":\"{}\",\"bytes\":{},\"ours_ns\":{:.1},\"twilight_ns\":{:.1},\"ratio\":{:.4}}}{}",
            r.name,
            r.bytes,
            r.ours_ns,
            r.twilight_ns,
            r.ratio(),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    out.push_str("]\n");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("decode.json");
    std::fs::write(&path, out)?;
    Ok(path)
}

fn main() {
    let runs = env_u64("DECODE_RUNS").map_or(5, |n| n.max(1) as usize);
    let target = Duration::from_millis(env_u64("DECODE_MILLIS").unwrap_or(200));
    eprintln!(
        "decode: serde_json::from_slice into shardbus::model vs twilight-model, \
         {runs} runs per side (best reported), ~{} ms per run",
        target.as_millis()
    );

    let rows: Vec<Row> = cases().iter().map(|c| measure(c, runs, target)).collect();

    println!();
    println!(
        "{:<22} {:>8} {:>12} {:>10} {:>14} {:>10} {:>8}",
        "payload", "bytes", "ours ns/op", "ours MB/s", "twilight ns/op", "tw MB/s", "ratio"
    );
    for r in &rows {
        println!(
            "{:<22} {:>8} {:>12.0} {:>10.1} {:>14.0} {:>10.1} {:>7.2}x",
            r.name,
            r.bytes,
            r.ours_ns,
            mb_per_s(r.bytes, r.ours_ns),
            r.twilight_ns,
            mb_per_s(r.bytes, r.twilight_ns),
            r.ratio()
        );
    }
    println!(
        "ratio = twilight ns/op / ours ns/op (ours' throughput over twilight's; target >= 1.00x)"
    );

    match write_json(&rows) {
        Ok(path) => println!("wrote {}", path.display()),
        Err(e) => eprintln!("error: could not write decode.json: {e}"),
    }
}
