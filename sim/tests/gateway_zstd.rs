//! `compress=zstd-stream`: one zstd frame per connection that never ends,
//! one flushed payload per binary message, a fresh context per connection,
//! and the bytes it saves on the wire.
//!
//! The clients connect the way twilight-gateway does: `{url}/?v=10&…` for the
//! gateway (path `/`) and `{resume_gateway_url}/?v=10&…` for a resume (path
//! `/resume/`).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, Transport, WAIT, config, message, start, wait_session_state};
use serde_json::{Value, json};
use shardbus_sim::testing::noisy_text;
use shardbus_sim::{Compression, GuildId, ResumeOutcome, SessionState, Sim, SimConfig, SimStats};

/// A zstd frame's magic number, then the header Discord's streams have:
/// descriptor `00` (no content size, no checksum), window descriptor `40`
/// (windowLog 18).
const FRAME_START: [u8; 6] = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x40];

/// Every mode the stats list, in their order.
const MODES: [Compression; 3] = [
    Compression::None,
    Compression::ZlibStream,
    Compression::ZstdStream,
];

/// zstd's largest block (128 KiB).
const BLOCK: usize = 128 * 1024;

/// Connect to `base` as twilight does, with zstd-stream, and read Hello;
/// checks that Hello starts a new zstd frame in a binary message of its own.
async fn zstd_connect(base: &str) -> Client {
    let url = format!("{base}/?v=10&encoding=json&compress=zstd-stream");
    let mut c = Client::connect_with(&url, Transport::Zstd).await;
    c.hello().await;
    let first = c
        .last_binary
        .clone()
        .expect("Hello must be a binary message");
    assert_eq!(first[..6], FRAME_START, "Hello must start the zstd frame");
    assert_eq!((c.binary_messages, c.last_frames), (1, 1));
    c
}

/// Identify on [0, 1] and read READY and every GUILD_CREATE, each one
/// binary message; returns (session_id, resume_gateway_url, last seq).
async fn identify(sim: &Sim, c: &mut Client) -> (String, String, u64) {
    let before = c.binary_messages;
    let session = c.identify_session(sim).await;
    let payloads = 1 + sim.guild_ids().len();
    assert_eq!(
        c.binary_messages - before,
        payloads,
        "one message a payload"
    );
    session
}

#[tokio::test]
async fn hello_ready_and_dispatches_decode_with_one_context() {
    let sim = start(config()).await;
    let mut c = zstd_connect(&sim.gateway_url()).await;
    let (_, _, mut last) = identify(&sim, &mut c).await;
    for n in 0..50 {
        sim.dispatch(GuildId::nth(0), "MESSAGE_CREATE", message(n));
    }
    for n in 0..50 {
        let m = c.payload().await;
        assert_eq!(m["t"], "MESSAGE_CREATE", "{m}");
        assert_eq!(m["s"], last + 1);
        assert_eq!(m["d"]["content"], format!("m{n}"));
        last += 1;
    }
    c.send(json!({ "op": 1, "d": last })).await;
    assert_eq!(c.op(11).await["d"], Value::Null);
    // Hello, READY, 12 GUILD_CREATEs, 50 messages and the ACK: one binary
    // message each, every one decoded by the same context.
    assert_eq!(c.binary_messages, 1 + 1 + 12 + 50 + 1);

    let log = sim.log();
    let conn = &log.connections[0];
    assert_eq!(conn.compression, Compression::ZstdStream);
    assert!(!conn.zlib);
    assert!(!conn.via_resume_url);
    assert!(
        conn.query.contains("compress=zstd-stream"),
        "{}",
        conn.query
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn payloads_over_a_zstd_block_arrive_as_one_message() {
    let sim = start(SimConfig {
        guilds: 2,
        members_per_guild: 2000,
        ..config()
    })
    .await;
    let mut c = zstd_connect(&sim.gateway_url()).await;
    identify(&sim, &mut c).await;
    // All 2000 members of a guild in one chunk: well over a block of JSON,
    // though it compresses well.
    let g = GuildId::nth(0);
    c.send(json!({ "op": 8, "d": { "guild_id": g.to_string(), "query": "", "limit": 0 } }))
        .await;
    let before = c.payload_bytes;
    let chunk = c.payload().await;
    assert_eq!(chunk["t"], "GUILD_MEMBERS_CHUNK", "{chunk}");
    assert_eq!(chunk["d"]["members"].as_array().unwrap().len(), 2000);
    let json = c.payload_bytes - before;
    assert!(json > 2 * BLOCK as u64, "only {json} bytes of JSON");
    assert_eq!(c.last_frames, 1);
    // A dispatch that stays over a block even compressed.
    let content = noisy_text(3 * BLOCK, 1);
    sim.dispatch(
        GuildId::nth(0),
        "MESSAGE_CREATE",
        json!({ "id": "1", "guild_id": GuildId::nth(0).to_string(), "content": content }),
    );
    let m = c.dispatch("MESSAGE_CREATE").await;
    assert_eq!(m["d"]["content"].as_str().unwrap(), content);
    assert_eq!(c.last_frames, 1);
    let wire = c.last_binary.as_ref().unwrap().len();
    assert!(
        wire > BLOCK,
        "compressed to {wire} bytes, expected over {BLOCK}"
    );
    // The stream goes on after it.
    c.send(json!({ "op": 1, "d": null })).await;
    assert_eq!(c.payload().await["op"], 11);
    assert_eq!(c.last_frames, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn resume_on_a_new_connection_starts_a_fresh_frame_and_replays() {
    let sim = start(config()).await;
    let g = GuildId::nth(0);
    let mut c = zstd_connect(&sim.gateway_url()).await;
    let (session, resume_url, mut last) = identify(&sim, &mut c).await;
    assert_eq!(resume_url, sim.resume_gateway_url());
    for n in 0..5 {
        sim.dispatch(g, "MESSAGE_CREATE", message(n));
    }
    for _ in 0..2 {
        let m = c.dispatch("MESSAGE_CREATE").await;
        assert_eq!(m["s"], last + 1);
        last += 1;
    }
    c.close(4000).await;
    wait_session_state(&sim, &session, SessionState::Detached).await;
    for n in 5..8 {
        sim.dispatch(g, "MESSAGE_CREATE", message(n));
    }

    // A new connection: a new frame, decoded by a new context.
    let mut r = zstd_connect(&resume_url).await;
    r.resume(sim.token(), &session, last).await;
    let before = r.binary_messages;
    let contents = r.replay(&mut last).await;
    // Six replayed and RESUMED, one message each.
    assert_eq!(r.binary_messages - before, 7);
    assert_eq!(contents, ["m2", "m3", "m4", "m5", "m6", "m7"]);
    sim.dispatch(g, "MESSAGE_CREATE", message(8));
    let m = r.dispatch("MESSAGE_CREATE").await;
    assert_eq!(m["s"], last + 1);
    assert_eq!(m["d"]["content"], "m8");

    let log = sim.log();
    assert_eq!(
        log.resumes[0].outcome,
        ResumeOutcome::Resumed { replayed: 6 }
    );
    let second = &log.connections[1];
    assert!(second.via_resume_url);
    assert_eq!(second.compression, Compression::ZstdStream);
    sim.shutdown().await;
}

/// Run the same traffic over one connection with `transport` and return the
/// sim's stats once they count exactly what the client read.
async fn traffic_over(transport: Transport) -> SimStats {
    let sim = start(SimConfig {
        members_per_guild: 50,
        ..config()
    })
    .await;
    let compression = match transport {
        Transport::Text => Compression::None,
        Transport::Zlib => Compression::ZlibStream,
        Transport::Zstd => Compression::ZstdStream,
    };
    let mut c = Client::gateway_with(&sim, transport).await;
    let ready = c.ready(&sim, [0, 1]).await;
    let guilds = ready["d"]["guilds"].as_array().unwrap().len();
    for _ in 0..guilds {
        c.dispatch("GUILD_CREATE").await;
    }
    for n in 0..200 {
        sim.dispatch(GuildId::nth(0), "MESSAGE_CREATE", message(n));
    }
    for _ in 0..200 {
        c.dispatch("MESSAGE_CREATE").await;
    }
    // The ACK is the last thing the sim sends: after it the client has read
    // everything.
    c.send(json!({ "op": 1, "d": null })).await;
    c.op(11).await;
    let (wire, payload) = (c.wire_bytes, c.payload_bytes);
    let stats = sim
        .wait_for_stats(WAIT, |s| {
            let w = s.compression(compression);
            w.wire_bytes == wire && w.payload_bytes == payload
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{compression}: stats never matched the client's {wire} wire and \
                 {payload} payload bytes: {:?}",
                sim.stats().by_compression
            )
        });
    for other in MODES {
        if other != compression {
            let w = stats.compression(other);
            assert_eq!((w.wire_bytes, w.payload_bytes), (0, 0), "{other}");
        }
    }
    assert_eq!((stats.wire_bytes, stats.payload_bytes), (wire, payload));
    sim.shutdown().await;
    stats
}

#[tokio::test]
async fn zstd_puts_fewer_bytes_on_the_wire_than_none() {
    let none = traffic_over(Transport::Text).await;
    let zlib = traffic_over(Transport::Zlib).await;
    let zstd = traffic_over(Transport::Zstd).await;
    // Uncompressed, the wire carries the payloads as they are.
    assert_eq!(none.wire_bytes, none.payload_bytes);
    // The same traffic (the sims differ only in their port, which READY
    // mentions).
    for other in [&zlib, &zstd] {
        assert!(
            other.payload_bytes.abs_diff(none.payload_bytes) <= 8,
            "{} vs {}",
            other.payload_bytes,
            none.payload_bytes
        );
    }
    let ratio = zstd.compression(Compression::ZstdStream).ratio();
    assert!(
        zstd.wire_bytes * 3 < none.wire_bytes,
        "zstd-stream sent {} bytes for {} of payloads ({ratio:.1}x)",
        zstd.wire_bytes,
        none.wire_bytes
    );
    assert!(zlib.wire_bytes < none.wire_bytes);
    for s in [&none, &zlib, &zstd] {
        let w = s.by_compression.iter().find(|w| w.wire_bytes > 0).unwrap();
        eprintln!(
            "{}: {} payload bytes, {} on the wire ({:.1}x)",
            w.compression,
            w.payload_bytes,
            w.wire_bytes,
            w.ratio()
        );
    }
    let by = serde_json::to_value(&zstd.by_compression).unwrap();
    assert_eq!(by[2]["compression"], "zstd-stream");
    assert_eq!(by[2]["wire_bytes"], zstd.wire_bytes);
}
