//! Gateway and bus metrics, emitted through the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`, off by default).
//!
//! Install a recorder (for example `metrics-exporter-prometheus`) **before**
//! creating the [`TypeMux`](crate::TypeMux) and spawning shards: the
//! handles are resolved once, against the recorder installed at that time —
//! a bus topic's when its event type is first subscribed to, a shard's when
//! it is spawned — and kept, so a post or a frame costs an atomic add, not a
//! label lookup. Metrics of a topic or shard made before the recorder was
//! installed go nowhere. Without the feature none of this code exists.
//!
//! # The metrics
//!
//! Per shard, labelled `shard` (the shard id):
//!
//! | name | kind | what |
//! |---|---|---|
//! | `shardbus_shard_stage` | gauge | the current stage, as a code: 0 queued, 1 connecting, 2 identifying, 3 resuming, 4 connected, 5 disconnected, 6 stopped |
//! | `shardbus_shard_heartbeat_latency_seconds` | histogram | round trip of each acknowledged heartbeat |
//! | `shardbus_shard_identify_wait_seconds` | histogram | how long each new session waited for its identify turn (one sample per identify) |
//! | `shardbus_shard_events_total` | counter | dispatches received, each sequence number once (READY and RESUMED included; a replay already delivered is not counted) |
//! | `shardbus_shard_resumes_total` | counter | sessions resumed (RESUMED received) |
//! | `shardbus_shard_reidentifies_total` | counter | sessions started after the shard's first one |
//! | `shardbus_shard_reconnects_total` | counter | connections opened after the first one |
//! | `shardbus_shard_bytes_in_total` | counter | websocket message bytes read, as sent (compressed or not) |
//!
//! Per event type, labelled `event` (the Rust type name,
//! [`std::any::type_name`], so there are as many label values as types the
//! program subscribes to):
//!
//! | name | kind | what |
//! |---|---|---|
//! | `shardbus_bus_posts_total` | counter | posts of the type since its topic was made (its first subscriber), whether or not anyone still listened |
//! | `shardbus_bus_subscribers` | gauge | current subscribers: streams and handlers, multi-type and lossy subscriptions |
//! | `shardbus_bus_backpressure_wait_seconds` | histogram | for each post that had to wait for room (a reliable subscriber `capacity` behind, or a multi-type subscriber's channel full), how long it waited; posts that did not wait record nothing |
//! | `shardbus_bus_lossy_lagged_total` | counter | events lossy subscribers missed because they were full |
//!
//! The stage is one gauge with a code rather than a gauge per stage: one
//! series per shard, and "not connected" is `shardbus_shard_stage != 4`.
//! (A shard whose task panics keeps the code of the stage it was in.)
//! [`describe`] registers units and help texts for all of them.
//!
//! # Examples
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // With a recorder of your choice installed first, e.g.
//! // metrics_exporter_prometheus::PrometheusBuilder::new().install()?
//! shardbus::metrics::describe();
//! let bus = shardbus::TypeMux::new();
//! let _messages = bus.subscribe::<u64>();
//! bus.post(1u64).await.unwrap(); // shardbus_bus_posts_total{event="u64"} 1
//! # }
//! ```

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

use ::metrics::{Counter, Gauge, Histogram, Unit, counter, gauge, histogram};
use tokio::time::Instant;

/// `shardbus_shard_stage`: the shard's stage as a code (see the table).
pub const SHARD_STAGE: &str = "shardbus_shard_stage";
/// `shardbus_shard_heartbeat_latency_seconds`: heartbeat round trips.
pub const SHARD_HEARTBEAT_LATENCY: &str = "shardbus_shard_heartbeat_latency_seconds";
/// `shardbus_shard_identify_wait_seconds`: waits for the identify turn.
pub const SHARD_IDENTIFY_WAIT: &str = "shardbus_shard_identify_wait_seconds";
/// `shardbus_shard_events_total`: dispatches received.
pub const SHARD_EVENTS: &str = "shardbus_shard_events_total";
/// `shardbus_shard_resumes_total`: sessions resumed.
pub const SHARD_RESUMES: &str = "shardbus_shard_resumes_total";
/// `shardbus_shard_reidentifies_total`: sessions started after the first.
pub const SHARD_REIDENTIFIES: &str = "shardbus_shard_reidentifies_total";
/// `shardbus_shard_reconnects_total`: connections opened after the first.
pub const SHARD_RECONNECTS: &str = "shardbus_shard_reconnects_total";
/// `shardbus_shard_bytes_in_total`: bytes read from the socket.
pub const SHARD_BYTES_IN: &str = "shardbus_shard_bytes_in_total";
/// `shardbus_bus_posts_total`: posts per event type.
pub const BUS_POSTS: &str = "shardbus_bus_posts_total";
/// `shardbus_bus_subscribers`: current subscribers per event type.
pub const BUS_SUBSCRIBERS: &str = "shardbus_bus_subscribers";
/// `shardbus_bus_backpressure_wait_seconds`: how long blocked posts waited.
pub const BUS_BACKPRESSURE_WAIT: &str = "shardbus_bus_backpressure_wait_seconds";
/// `shardbus_bus_lossy_lagged_total`: events lossy subscribers missed.
pub const BUS_LOSSY_LAGGED: &str = "shardbus_bus_lossy_lagged_total";

/// The label naming the shard (its id).
pub const SHARD_LABEL: &str = "shard";
/// The label naming the event type (its Rust type name).
pub const EVENT_LABEL: &str = "event";

/// Describes every shardbus metric (unit and help text) to the installed
/// recorder. Optional: recorders that show help texts (Prometheus' `# HELP`)
/// use them.
pub fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        SHARD_STAGE,
        "shard stage: 0 queued, 1 connecting, 2 identifying, 3 resuming, 4 connected, 5 disconnected, 6 stopped"
    );
    describe_histogram!(
        SHARD_HEARTBEAT_LATENCY,
        Unit::Seconds,
        "round trip of acknowledged heartbeats"
    );
    describe_histogram!(
        SHARD_IDENTIFY_WAIT,
        Unit::Seconds,
        "wait for the identify turn of each new session"
    );
    describe_counter!(
        SHARD_EVENTS,
        "dispatches received, each sequence number once"
    );
    describe_counter!(SHARD_RESUMES, "sessions resumed");
    describe_counter!(SHARD_REIDENTIFIES, "sessions started after the first");
    describe_counter!(SHARD_RECONNECTS, "connections opened after the first");
    describe_counter!(SHARD_BYTES_IN, Unit::Bytes, "bytes read from the socket");
    describe_counter!(BUS_POSTS, "posts per event type");
    describe_gauge!(BUS_SUBSCRIBERS, "current subscribers per event type");
    describe_histogram!(
        BUS_BACKPRESSURE_WAIT,
        Unit::Seconds,
        "how long posts that found a subscriber full waited for room"
    );
    describe_counter!(
        BUS_LOSSY_LAGGED,
        "events lossy subscribers missed because they were full"
    );
}

/// One event type's metric handles, resolved when its topic is made.
#[derive(Debug)]
pub(crate) struct TopicMetrics {
    /// [`BUS_POSTS`].
    pub(crate) posts: Counter,
    /// [`BUS_SUBSCRIBERS`].
    pub(crate) subscribers: Gauge,
    /// [`BUS_BACKPRESSURE_WAIT`].
    pub(crate) backpressure: Histogram,
    /// [`BUS_LOSSY_LAGGED`].
    pub(crate) lagged: Counter,
}

impl TopicMetrics {
    /// The handles for event type `E`.
    pub(crate) fn of<E: ?Sized>() -> Self {
        let event = std::any::type_name::<E>();
        Self {
            posts: counter!(BUS_POSTS, EVENT_LABEL => event),
            subscribers: gauge!(BUS_SUBSCRIBERS, EVENT_LABEL => event),
            backpressure: histogram!(BUS_BACKPRESSURE_WAIT, EVENT_LABEL => event),
            lagged: counter!(BUS_LOSSY_LAGGED, EVENT_LABEL => event),
        }
    }
}

/// One shard's metric handles, resolved when it is spawned.
#[derive(Debug)]
pub(crate) struct ShardMetrics {
    /// [`SHARD_STAGE`].
    pub(crate) stage: Gauge,
    /// [`SHARD_HEARTBEAT_LATENCY`].
    pub(crate) latency: Histogram,
    /// [`SHARD_IDENTIFY_WAIT`].
    pub(crate) identify_wait: Histogram,
    /// [`SHARD_EVENTS`].
    pub(crate) events: Counter,
    /// [`SHARD_RESUMES`].
    pub(crate) resumes: Counter,
    /// [`SHARD_REIDENTIFIES`].
    pub(crate) reidentifies: Counter,
    /// [`SHARD_RECONNECTS`].
    pub(crate) reconnects: Counter,
    /// [`SHARD_BYTES_IN`].
    pub(crate) bytes_in: Counter,
}

impl ShardMetrics {
    /// The handles for shard id `shard`.
    pub(crate) fn of(shard: u32) -> Self {
        let labels = [(SHARD_LABEL, shard.to_string())];
        Self {
            stage: gauge!(SHARD_STAGE, &labels),
            latency: histogram!(SHARD_HEARTBEAT_LATENCY, &labels),
            identify_wait: histogram!(SHARD_IDENTIFY_WAIT, &labels),
            events: counter!(SHARD_EVENTS, &labels),
            resumes: counter!(SHARD_RESUMES, &labels),
            reidentifies: counter!(SHARD_REIDENTIFIES, &labels),
            reconnects: counter!(SHARD_RECONNECTS, &labels),
            bytes_in: counter!(SHARD_BYTES_IN, &labels),
        }
    }
}

/// Runs `fut`, recording in `waited` how long it took if its first poll
/// did not finish it (a post that had to wait for room); nothing if it was
/// ready at once.
pub(crate) async fn time_if_blocked<F: Future>(waited: &Histogram, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut blocked_at = None;
    let output = poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(output),
        Poll::Pending => {
            blocked_at.get_or_insert_with(Instant::now);
            Poll::Pending
        }
    })
    .await;
    if let Some(since) = blocked_at {
        waited.record(since.elapsed());
    }
    output
}
