//! The rate-driven MESSAGE_CREATE generator.
//!
//! One task produces messages at [`Sim::start_traffic`](crate::Sim::start_traffic)'s
//! rate, spread over all guilds, and appends each to every routed session whose
//! shard owns the guild and whose intents include `GUILD_MESSAGES`. Work is done
//! in batches: a batch's messages are described once, then each session's lock
//! is taken once and its frames are written into one shared allocation.
//!
//! Back-pressure: before a batch, if a connected session has more than half its
//! replay buffer unwritten, the generator waits (up to 100 ms per batch) for
//! the connection to catch up, so at full speed it runs as fast as the
//! connections drain instead of overflowing their buffers. Sessions without a
//! connection do not hold it back; their buffers keep the newest dispatches.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;

use crate::protocol::intents;
use crate::shared::Shared;
use crate::template::{GeneratedMessage, iso8601, snowflake, unix_ms};

/// The most messages in one batch.
const MAX_BATCH: usize = 512;

/// The longest the generator waits for slow connections before a batch.
const MAX_BACKPRESSURE_WAIT: Duration = Duration::from_millis(100);

/// Run the generator until the sim shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    let guilds = shared.world.guilds.len() as u64;
    if guilds == 0 {
        return;
    }
    let mut counter: u64 = 0;
    let mut batch: Vec<GeneratedMessage> = Vec::with_capacity(MAX_BATCH);
    let mut arena = BytesMut::new();
    let contents = u64::from(shared.template.content_count());
    'outer: loop {
        // Idle until a positive rate is set.
        let mut rate = shared.rate();
        while rate <= 0.0 {
            let changed = shared.rate_changed.notified();
            tokio::select! {
                () = shared.cancel.cancelled() => return,
                () = changed => {}
            }
            rate = shared.rate();
        }
        let start = Instant::now();
        let mut produced: u64 = 0;
        loop {
            if shared.cancel.is_cancelled() {
                return;
            }
            let now_rate = shared.rate();
            if now_rate.to_bits() != rate.to_bits() {
                continue 'outer;
            }
            let n = if rate.is_infinite() {
                MAX_BATCH as u64
            } else {
                let due = (start.elapsed().as_secs_f64() * rate) as u64;
                if due <= produced {
                    let next = start + Duration::from_secs_f64((produced + 1) as f64 / rate);
                    let changed = shared.rate_changed.notified();
                    tokio::select! {
                        () = shared.cancel.cancelled() => return,
                        () = tokio::time::sleep_until(next.max(Instant::now() + Duration::from_millis(1))) => {}
                        () = changed => continue 'outer,
                    }
                    continue;
                }
                (due - produced).min(MAX_BATCH as u64)
            };
            backpressure(&shared).await;

            let now_ms = unix_ms();
            let timestamp = iso8601(now_ms);
            batch.clear();
            for _ in 0..n {
                let c = counter;
                counter += 1;
                // A multiplicative hash spreads consecutive messages over guilds.
                let guild = (c.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % guilds;
                batch.push(GeneratedMessage {
                    guild: guild as u32,
                    author: (c / guilds) as u32,
                    content: (c % contents) as u32,
                    embed: c % 4 == 3,
                    id: snowflake(now_ms, c),
                });
            }
            let routes = shared.routes();
            for s in routes.iter() {
                if s.intents & intents::GUILD_MESSAGES == 0 {
                    continue;
                }
                let mut pushed = false;
                let mut buf = s.lock();
                for m in &batch {
                    let Some(g) = shared.world.guilds.get(m.guild as usize) else {
                        continue;
                    };
                    if !s.shard.owns(g.id) {
                        continue;
                    }
                    if arena.capacity() - arena.len() < 1500 {
                        arena.reserve(64 * 1024);
                    }
                    buf.push(|seq| {
                        shared.template.write(
                            &mut arena,
                            &shared.world,
                            m,
                            seq,
                            &timestamp,
                            s.message_content,
                        );
                        arena.split().freeze()
                    });
                    pushed = true;
                }
                drop(buf);
                if pushed {
                    s.notify.notify_one();
                }
            }
            produced += n;
            shared.generated.fetch_add(n, Ordering::Relaxed);
            if rate.is_infinite() {
                tokio::task::yield_now().await;
            }
        }
    }
}

/// Wait while a connected session is more than half its buffer behind.
async fn backpressure(shared: &Shared) {
    let limit = (shared.config.replay_buffer / 2).max(1) as u64;
    let deadline = Instant::now() + MAX_BACKPRESSURE_WAIT;
    loop {
        let behind = shared.routes().iter().any(|s| {
            let buf = s.lock();
            s.backlog(&buf) > limit
        });
        if !behind || Instant::now() >= deadline || shared.cancel.is_cancelled() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
