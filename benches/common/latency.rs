//! Dispatch-to-subscriber latency: the bench dispatches MESSAGE_CREATEs
//! itself (`Sim::dispatch_to_shard`, the 1.8 KB fixture
//! `benches/fixtures/message_create_small.json` with its `content` set to the
//! send time) at a steady rate, and one `MessageCreate` subscriber on the bus
//! takes the difference when it receives each. Messages sent in the first
//! [`LATENCY_WARMUP`] are not counted.

use std::time::{Duration, Instant};

use serde_json::Value;
use shardbus::TypeMux;
use shardbus::model::MessageCreate;

use super::peers::Mode;

/// Latency-run time whose messages are not counted.
pub const LATENCY_WARMUP: Duration = Duration::from_millis(500);
/// Latency-run measured time.
pub const LATENCY_MEASURED: Duration = Duration::from_secs(3);
/// How long setup and teardown steps may take before the bench gives up.
pub const LIMIT: Duration = Duration::from_secs(20);
/// The realistic MESSAGE_CREATE the latency run sends.
const FIXTURE: &str = include_str!("../fixtures/message_create_small.json");

/// One latency row.
pub struct Latency {
    /// The shards' compression.
    pub compression: Mode,
    /// Messages per second dispatched.
    pub rate: u64,
    /// Messages dispatched, warm-up included.
    pub sent: u64,
    /// Dispatch-to-subscriber latencies of the measured messages, ns, sorted.
    pub samples: Vec<u64>,
    /// Errors the shards posted.
    pub errors: u64,
    /// Connections the shards lost.
    pub disconnects: u64,
}

impl Latency {
    /// Nearest-rank percentile, in microseconds.
    pub fn percentile_us(&self, p: f64) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        let rank = (p * self.samples.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.samples.len()) - 1;
        self.samples[i] as f64 / 1e3
    }

    /// The largest sample, in microseconds.
    pub fn max_us(&self) -> f64 {
        self.samples.last().map_or(f64::NAN, |&ns| ns as f64 / 1e3)
    }

    /// The mean, in microseconds.
    pub fn mean_us(&self) -> f64 {
        if self.samples.is_empty() {
            return f64::NAN;
        }
        self.samples.iter().map(|&ns| ns as f64).sum::<f64>() / self.samples.len() as f64 / 1e3
    }
}

/// The fixture MESSAGE_CREATE in guild `guild`.
pub fn template(guild: &impl ToString) -> Value {
    let mut template: Value = serde_json::from_str(FIXTURE).unwrap();
    template["guild_id"] = Value::String(guild.to_string());
    template
}

/// Dispatches `rate` messages per second for [`LATENCY_WARMUP`] plus
/// [`LATENCY_MEASURED`], message `i` made from `templates[i % len]` and
/// handed to `dispatch(i % len, data)` (which returns how many sessions
/// took it: must be 1), and samples each at a `MessageCreate` subscriber on
/// `bus`. Returns the messages sent and the sorted samples (ns).
///
/// # Panics
///
/// If a session did not take a message, or not every message arrived
/// within [`LIMIT`].
pub async fn sample(
    bus: &TypeMux,
    rate: u64,
    templates: &[Value],
    mut dispatch: impl FnMut(usize, Value) -> usize,
) -> (u64, Vec<u64>) {
    let base = Instant::now();
    let total = ((LATENCY_WARMUP + LATENCY_MEASURED).as_secs_f64() * rate as f64) as u64;
    let warmup_ns = LATENCY_WARMUP.as_nanos() as u64;

    let mut messages = bus.subscribe::<MessageCreate>();
    let subscriber = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(total as usize);
        let mut received = 0u64;
        while received < total {
            let Some(msg) = messages.recv().await else {
                break;
            };
            let now = base.elapsed().as_nanos() as u64;
            received += 1;
            if let Ok(sent) = msg.content.parse::<u64>()
                && sent >= warmup_ns
            {
                samples.push(now.saturating_sub(sent));
            }
        }
        (received, samples)
    });

    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sent = 0u64;
    while sent < total {
        tick.tick().await;
        let due = ((base.elapsed().as_secs_f64() * rate as f64) as u64 + 1).min(total);
        while sent < due {
            let ix = (sent % templates.len() as u64) as usize;
            let mut data = templates[ix].clone();
            let at = base.elapsed().as_nanos() as u64;
            data["content"] = Value::String(at.to_string());
            let queued = dispatch(ix, data);
            assert_eq!(queued, 1, "the shard's session did not take the message");
            sent += 1;
        }
    }

    let (received, mut samples) = tokio::time::timeout(LIMIT, subscriber)
        .await
        .unwrap_or_else(|_| panic!("not every message arrived within {LIMIT:?}"))
        .unwrap();
    assert_eq!(received, total, "the subscriber's stream ended early");
    samples.sort_unstable();
    (sent, samples)
}
