//! How fast the sim sends MESSAGE_CREATE to 16 connections, with zlib-stream
//! (or the compression `SIM_BENCH_COMPRESS` names).
//!
//! 16 raw clients (tokio-tungstenite + flate2 or zstd-safe, no shardbus)
//! connect with `compress=zlib-stream`, identify as shards 0..16 and read
//! READY and their GUILD_CREATEs; then the generator runs at full speed and
//! every client decompresses every message and counts the MESSAGE_CREATE
//! dispatches. Clients and server share one 2-worker runtime, as they share
//! the machine's 2 cores. The sim's own byte counters
//! (`SimStats::compression`) give the payload and wire bytes it sent.
//!
//! Prints a table and writes `target/bench/sim_send_rate.json`
//! (`sim_send_rate_<mode>.json` for a mode other than zlib-stream).
//! `SIM_BENCH_SECS` sets the measured time (default 3 s);
//! `SIM_BENCH_COMPRESS` is `zlib-stream` (default), `zstd-stream` or `none`.
//! Without `--bench` (as under `cargo test --all-targets`) it is a 0.2 s smoke
//! run without a report.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flate2::{Decompress, FlushDecompress};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use shardbus_sim::testing::ZstdDecoder;
use shardbus_sim::{Compression, Sim, SimConfig};
use tokio_tungstenite::tungstenite::Message;

const SHARDS: u32 = 16;
const SUFFIX: [u8; 4] = [0, 0, 0xff, 0xff];

#[derive(Default)]
struct Counters {
    messages: AtomicU64,
    payloads: AtomicU64,
    wire_bytes: AtomicU64,
    json_bytes: AtomicU64,
}

fn inflate(d: &mut Decompress, input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let start = d.total_in();
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(4096));
        }
        let done = (d.total_in() - start) as usize;
        d.decompress_vec(&input[done..], out, FlushDecompress::Sync)
            .unwrap();
        if (d.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
            return;
        }
    }
}

/// A client's decompressor.
enum Decoder {
    Text,
    Zlib(Decompress, Vec<u8>),
    Zstd(ZstdDecoder),
}

async fn client(
    sim: Sim,
    shard: u32,
    mode: Compression,
    counters: Arc<Counters>,
    ready: Arc<tokio::sync::Barrier>,
) {
    let (query, mut decoder) = match mode {
        Compression::ZstdStream => (
            "&compress=zstd-stream",
            Decoder::Zstd(ZstdDecoder::new().unwrap()),
        ),
        Compression::ZlibStream => (
            "&compress=zlib-stream",
            Decoder::Zlib(Decompress::new(true), Vec::new()),
        ),
        _ => ("", Decoder::Text),
    };
    let url = format!("{}/?v=10&encoding=json{query}", sim.gateway_url());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let identify = json!({ "op": 2, "d": {
        "token": sim.token(), "intents": 1 | (1 << 9) | (1 << 15),
        "properties": { "os": "linux", "browser": "bench", "device": "bench" },
        "shard": [shard, SHARDS],
    }});
    ws.send(Message::text(identify.to_string())).await.unwrap();
    let guilds = sim.guilds_for_shard(shard, SHARDS).len();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut initial = 0;
    let mut signalled = false;
    while let Some(Ok(msg)) = ws.next().await {
        let json: &[u8] = match (&mut decoder, &msg) {
            (Decoder::Text, Message::Text(t)) => {
                counters
                    .wire_bytes
                    .fetch_add(t.len() as u64, Ordering::Relaxed);
                t.as_bytes()
            }
            (Decoder::Zlib(d, buf), Message::Binary(b)) => {
                counters
                    .wire_bytes
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                let data: &[u8] = if buf.is_empty() && b.ends_with(&SUFFIX) {
                    b
                } else {
                    buf.extend_from_slice(b);
                    if !buf.ends_with(&SUFFIX) {
                        continue;
                    }
                    buf
                };
                inflate(d, data, &mut out);
                buf.clear();
                &out
            }
            (Decoder::Zstd(d), Message::Binary(b)) => {
                counters
                    .wire_bytes
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                d.decode_into(b, &mut out).unwrap();
                &out
            }
            _ => continue,
        };
        counters.payloads.fetch_add(1, Ordering::Relaxed);
        counters
            .json_bytes
            .fetch_add(json.len() as u64, Ordering::Relaxed);
        let head = &json[..json.len().min(48)];
        if head.windows(16).any(|w| w == b"\"MESSAGE_CREATE\"") {
            counters.messages.fetch_add(1, Ordering::Relaxed);
        } else if !signalled {
            // Hello, READY, then one GUILD_CREATE per guild.
            initial += 1;
            if initial == 2 + guilds {
                signalled = true;
                ready.wait().await;
            }
        }
    }
}

fn bench_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(|p| p.join("bench"))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench"))
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --all-targets` this is a
    // short smoke run that writes no report.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let default_secs = if bench_mode { 3.0 } else { 0.2 };
    let secs: f64 = std::env::var("SIM_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_secs);
    let mode = match std::env::var("SIM_BENCH_COMPRESS").as_deref() {
        Ok("zstd-stream") => Compression::ZstdStream,
        Ok("none") => Compression::None,
        Ok("zlib-stream") | Err(_) => Compression::ZlibStream,
        Ok(other) => panic!("SIM_BENCH_COMPRESS={other}: use zlib-stream, zstd-stream or none"),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let sim = Sim::start(SimConfig {
            shards: SHARDS,
            guilds: 1600,
            max_concurrency: SHARDS,
            heartbeat_interval: Duration::from_secs(600),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let counters = Arc::new(Counters::default());
        let ready = Arc::new(tokio::sync::Barrier::new(SHARDS as usize + 1));
        for shard in 0..SHARDS {
            tokio::spawn(client(
                sim.clone(),
                shard,
                mode,
                counters.clone(),
                ready.clone(),
            ));
        }
        ready.wait().await;
        sim.start_traffic(f64::INFINITY);
        // Warm-up.
        tokio::time::sleep(Duration::from_millis(if bench_mode { 500 } else { 50 })).await;

        let m0 = counters.messages.load(Ordering::Relaxed);
        let w0 = counters.wire_bytes.load(Ordering::Relaxed);
        let j0 = counters.json_bytes.load(Ordering::Relaxed);
        let stats0 = sim.stats();
        let (s0, b0) = (stats0.dispatches_sent(), stats0.compression(mode));
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let elapsed = t0.elapsed().as_secs_f64();
        let messages = counters.messages.load(Ordering::Relaxed) - m0;
        let wire = counters.wire_bytes.load(Ordering::Relaxed) - w0;
        let json_bytes = counters.json_bytes.load(Ordering::Relaxed) - j0;
        let stats1 = sim.stats();
        let sent = stats1.dispatches_sent() - s0;
        let b1 = stats1.compression(mode);
        let server_payload = b1.payload_bytes - b0.payload_bytes;
        let server_wire = b1.wire_bytes - b0.wire_bytes;
        sim.stop_traffic();

        let rate = messages as f64 / elapsed;
        let sent_rate = sent as f64 / elapsed;
        let mib = |b: u64| b as f64 / elapsed / (1024.0 * 1024.0);
        if !bench_mode {
            assert!(messages > 0, "no MESSAGE_CREATE received");
            println!("send_rate smoke run: {rate:.0} MESSAGE_CREATE/s (not a measurement; use cargo bench)");
            sim.shutdown().await;
            return;
        }
        println!("sim send rate, {mode}, {SHARDS} connections, {secs} s measured");
        println!("| metric | value |");
        println!("|---|---|");
        println!("| MESSAGE_CREATE received/s (all clients) | {rate:.0} |");
        println!("| dispatches sent/s (server stats) | {sent_rate:.0} |");
        println!("| per connection/s | {:.0} |", rate / f64::from(SHARDS));
        println!("| JSON MiB/s (inflated) | {:.1} |", mib(json_bytes));
        println!("| wire MiB/s (compressed) | {:.1} |", mib(wire));
        println!(
            "| compression ratio | {:.1}x |",
            json_bytes as f64 / wire.max(1) as f64
        );
        println!(
            "| server payload MiB/s (sim stats) | {:.1} |",
            mib(server_payload)
        );
        println!("| server wire MiB/s (sim stats) | {:.1} |", mib(server_wire));
        println!(
            "| server bytes on the wire per payload byte | {:.3} |",
            server_wire as f64 / server_payload.max(1) as f64
        );
        println!(
            "| target | >= 100000/s: {} |",
            if rate >= 100_000.0 { "met" } else { "NOT met" }
        );

        let dir = bench_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let report = json!({
            "bench": "sim_send_rate",
            "connections": SHARDS,
            "compression": mode.as_str(),
            "seconds": elapsed,
            "message_create_per_s": rate,
            "dispatches_sent_per_s": sent_rate,
            "json_mib_per_s": mib(json_bytes),
            "wire_mib_per_s": mib(wire),
            "server_payload_mib_per_s": mib(server_payload),
            "server_wire_mib_per_s": mib(server_wire),
            "target_per_s": 100_000,
            "target_met": rate >= 100_000.0,
        });
        let path = match mode {
            Compression::ZlibStream => dir.join("sim_send_rate.json"),
            other => dir.join(format!("sim_send_rate_{other}.json")),
        };
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
        println!("wrote {}", path.display());
        sim.shutdown().await;
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}
