//! `compress=zstd-stream` end to end: one shard against the simulator over
//! real loopback sockets, resuming on fresh zstd contexts, and payloads that
//! span several zstd blocks.
#![cfg(feature = "zstd")]
#![allow(clippy::unwrap_used)]

mod common;

use common::gateway::{
    LIMIT, Msg, Running, config, expect_messages, finish, message, resume_through, sim, start_with,
    test_config,
};
use shardbus::TypeMux;
use shardbus::gateway::Compression;
use shardbus_sim::testing::noisy_text;
use shardbus_sim::{Fault, ResumeOutcome};
use tokio::time::timeout;

/// zstd's largest block: a payload larger than this spans several blocks of
/// its websocket message.
const BLOCK: usize = 128 * 1024;

/// A shard on `sim` asking for zstd-stream.
fn zstd_config(sim: &shardbus_sim::Sim) -> shardbus::gateway::GatewayConfig {
    config(sim).compression(Compression::ZstdStream)
}

#[tokio::test]
async fn resumes_over_zstd_after_each_fault_with_every_seq_once() {
    let sim = sim(test_config()).await;
    let Running {
        bus,
        mut stages,
        shard,
    } = start_with(zstd_config(&sim), TypeMux::new()).await;
    let mut messages = bus.subscribe::<Msg>();
    let faults = [
        Fault::Reconnect,
        Fault::Drop,
        Fault::InvalidSession { resumable: true },
        Fault::Close(4000),
    ];
    let mut next = 0;
    for fault in faults {
        resume_through(&sim, &mut stages, fault, &mut next).await;
    }
    // One more on the last connection, after RESUMED.
    sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(next));
    next += 1;

    let mut seqs = Vec::new();
    for i in 0..next {
        let msg = timeout(LIMIT, messages.recv()).await.unwrap().unwrap();
        assert_eq!(msg.content, format!("m{i}"), "lost or out of order");
        seqs.push(msg.meta.seq.0);
    }
    assert!(messages.try_recv().is_err(), "nothing repeated");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "every seq once, in order: {seqs:?}"
    );
    // Only RESUMED (one per resume) may sit between two messages' seqs.
    let gaps = seqs.windows(2).filter(|w| w[1] != w[0] + 1).count();
    assert!(gaps <= faults.len(), "seq gaps {gaps}: {seqs:?}");

    let log = sim.log();
    assert_eq!(log.connections.len(), faults.len() + 1);
    assert!(
        log.connections
            .iter()
            .all(|c| c.compression == shardbus_sim::Compression::ZstdStream),
        "every connection asked for zstd-stream"
    );
    assert_eq!(log.identifies.len(), 1, "every fault was resumed");
    assert_eq!(log.resumes.len(), faults.len());
    assert!(
        log.resumes
            .iter()
            .all(|r| matches!(r.outcome, ResumeOutcome::Resumed { .. })),
        "{:?}",
        log.resumes
    );
    finish(&shard, &sim).await;
}

#[tokio::test]
async fn payloads_over_a_zstd_block_arrive_whole_between_small_ones() {
    let sim = sim(test_config()).await;
    let Running {
        bus,
        stages: _,
        shard,
    } = start_with(zstd_config(&sim), TypeMux::new()).await;
    let mut messages = bus.subscribe::<Msg>();
    // Just over a block, several blocks, and 4 MiB that compresses to
    // almost nothing (the client's output grows many times per message).
    let bigs = [
        noisy_text(BLOCK + 1, 1),
        noisy_text(3 * BLOCK, 2),
        noisy_text(1 << 20, 3),
        "x".repeat(4 << 20),
    ];
    let wire_before = sim
        .stats()
        .compression(shardbus_sim::Compression::ZstdStream)
        .wire_bytes;
    for (i, content) in (0u64..).zip(&bigs) {
        sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(2 * i));
        let mut big = message(2 * i + 1);
        big["content"] = content.as_str().into();
        sim.dispatch_to_shard(0, "MESSAGE_CREATE", big);
    }
    sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(99));
    let mut last_seq = 0;
    for (i, content) in (0u64..).zip(&bigs) {
        expect_messages(&mut messages, 2 * i..2 * i + 1).await;
        let msg = timeout(LIMIT, messages.recv()).await.unwrap().unwrap();
        assert_eq!(msg.content.len(), content.len(), "payload {i}");
        assert!(msg.content == *content, "payload {i} arrived changed");
        assert!(msg.meta.seq.0 > last_seq);
        last_seq = msg.meta.seq.0;
    }
    expect_messages(&mut messages, 99..100).await;

    // The noisy ones went out compressed to more than a block each: the
    // client read each over many socket reads and decoded several blocks.
    let noisy_len: usize = bigs[..3].iter().map(String::len).sum();
    let zstd_wire = |s: &shardbus_sim::SimStats| {
        s.compression(shardbus_sim::Compression::ZstdStream)
            .wire_bytes
            - wire_before
    };
    let stats = sim
        .wait_for_stats(LIMIT, |s| zstd_wire(s) > (noisy_len / 2) as u64)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} bytes on the wire for {noisy_len} of noisy content",
                zstd_wire(&sim.stats())
            )
        });
    assert!(zstd_wire(&stats) < noisy_len as u64, "it was compressed");
    let log = sim.log();
    assert_eq!(log.connections.len(), 1, "no reconnect");
    assert_eq!(
        log.connections[0].compression,
        shardbus_sim::Compression::ZstdStream
    );
    assert!(shard.handle().is_alive());
    finish(&shard, &sim).await;
}
