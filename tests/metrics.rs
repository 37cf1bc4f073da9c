//! Feature `metrics`: what two shards and the bus report through the
//! `metrics` facade matches what the simulator sent and what subscribers
//! received.
//!
//! One recorder is installed for the whole test binary, before any bus is
//! made (handles are resolved when a topic or shard is created). The tests
//! here share it, so each one uses event types and shard ids of its own.
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString, Unit};
use shardbus::gateway::{CloseCode, GatewayConfig, Intents, Shard, ShardHandle, Stage};
use shardbus::metrics::{
    BUS_BACKPRESSURE_WAIT, BUS_LOSSY_LAGGED, BUS_POSTS, BUS_SUBSCRIBERS, SHARD_BYTES_IN,
    SHARD_EVENTS, SHARD_HEARTBEAT_LATENCY, SHARD_IDENTIFY_WAIT, SHARD_RECONNECTS,
    SHARD_REIDENTIFIES, SHARD_RESUMES, SHARD_STAGE,
};
use shardbus::model::MessageCreate;
use shardbus::shard::LocalIdentifyQueue;
use shardbus::{Lagged, TypeMux};
use shardbus_sim::{Fault, FaultTarget, Sim, SimConfig};
use tokio::time::{sleep, timeout};

mod common;

use common::gateway::message;

/// How long any one condition may take to hold.
const LIMIT: Duration = Duration::from_secs(60);

/// A metric's identity: its kind, name and sorted labels.
type Id = (&'static str, String, Vec<(String, String)>);

/// A recorder that keeps every value, readable without resetting it.
#[derive(Clone, Default)]
struct TestRecorder {
    /// Counters and gauges (as f64 bits) by id.
    scalars: Arc<Mutex<HashMap<Id, Arc<AtomicU64>>>>,
    /// Histogram samples by id.
    samples: Arc<Mutex<HashMap<Id, Arc<Samples>>>>,
}

/// One histogram's samples.
#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn id(kind: &'static str, name: &str, labels: &[(&str, &str)]) -> Id {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    (kind, name.to_owned(), labels)
}

fn key_id(kind: &'static str, key: &Key) -> Id {
    let labels: Vec<(&str, &str)> = key.labels().map(|l| (l.key(), l.value())).collect();
    id(kind, key.name(), &labels)
}

impl TestRecorder {
    fn scalar(&self, id: Id) -> Arc<AtomicU64> {
        self.scalars.lock().unwrap().entry(id).or_default().clone()
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.scalar(id("counter", name, labels))
            .load(Ordering::SeqCst)
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        f64::from_bits(
            self.scalar(id("gauge", name, labels))
                .load(Ordering::SeqCst),
        )
    }

    fn samples(&self, id: Id) -> Arc<Samples> {
        self.samples.lock().unwrap().entry(id).or_default().clone()
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let samples = self.samples(id("histogram", name, labels));
        samples.0.lock().unwrap().clone()
    }
}

impl metrics::Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.scalar(key_id("counter", key)))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.scalar(key_id("gauge", key)))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.samples(key_id("histogram", key)))
    }
}

/// The binary's recorder, installed on first use.
fn recorder() -> &'static TestRecorder {
    static RECORDER: OnceLock<TestRecorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder = TestRecorder::default();
        metrics::set_global_recorder(recorder.clone())
            .unwrap_or_else(|_| panic!("another recorder was installed"));
        shardbus::metrics::describe();
        recorder
    })
}

/// Waits until `condition` holds, checking every 10 ms, for at most [`LIMIT`].
async fn until(what: &str, condition: impl Fn() -> bool) {
    timeout(LIMIT, async {
        while !condition() {
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: not within {LIMIT:?}"));
}

fn event_label<E>() -> [(&'static str, &'static str); 1] {
    [("event", std::any::type_name::<E>())]
}

/// The dispatches the simulator wrote to shard `id`'s sessions.
fn sent_to(sim: &Sim, id: u32) -> u64 {
    sim.stats().shard(id).map(|s| s.dispatches_sent).sum()
}

fn is_connected(handle: &ShardHandle) -> bool {
    handle.stage() == Stage::Connected
}

/// Two shards against the simulator, 20 messages each, then a resume on
/// shard 0 and a re-identify on shard 1, then 20 more each: every per-shard
/// and per-type metric matches what was sent and received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_report_what_the_simulator_sent() {
    let rec = recorder();
    let sim = Sim::start(SimConfig {
        shards: 2,
        ..common::gateway::test_config()
    })
    .await
    .unwrap();
    let bus = TypeMux::new();
    let mut messages = bus.subscribe::<MessageCreate>();
    let queue = Arc::new(LocalIdentifyQueue::with_window(
        1,
        Duration::from_millis(100),
    ));
    let shards: Vec<Shard> = (0..2)
        .map(|id| {
            let config = GatewayConfig::new(sim.token(), Intents::GUILDS | Intents::GUILD_MESSAGES)
                .gateway_url(sim.gateway_url())
                .shard(id, 2)
                .reconnect_backoff_max(Duration::from_millis(200))
                .identify_queue(queue.clone());
            Shard::spawn(config, bus.clone())
        })
        .collect();
    let handles: Vec<ShardHandle> = shards.iter().map(|s| s.handle().clone()).collect();
    until("both shards connected", || handles.iter().all(is_connected)).await;

    const N: u64 = 20;
    let mut received = 0u64;
    let mut send_round = async |round: u64| {
        for shard in 0..2u32 {
            for i in 0..N {
                let n = round * 1000 + u64::from(shard) * 100 + i;
                assert_eq!(
                    sim.dispatch_to_shard(shard, "MESSAGE_CREATE", message(n)),
                    1
                );
            }
        }
        for _ in 0..2 * N {
            let msg = timeout(LIMIT, messages.next()).await.unwrap().unwrap();
            assert!(msg.content.starts_with('m'));
            received += 1;
        }
    };
    send_round(0).await;

    // A resume on shard 0 (op 7), once everything sent so far was read.
    sim.fault(FaultTarget::Shard(0), Fault::Reconnect);
    until("shard 0 resumed", || {
        handles[0].counters().resumes == 1 && is_connected(&handles[0])
    })
    .await;
    // A new session on shard 1 (op 9, not resumable).
    sim.fault(
        FaultTarget::Shard(1),
        Fault::InvalidSession { resumable: false },
    );
    until("shard 1 identified again", || {
        handles[1].counters().identifies == 2 && is_connected(&handles[1])
    })
    .await;
    send_round(1).await;

    let labels_of = |id: u32| [("shard", if id == 0 { "0" } else { "1" })];
    // Everything the sim wrote has been read once the counts agree.
    until("events match what the sim sent", || {
        (0..2).all(|id| rec.counter(SHARD_EVENTS, &labels_of(id)) == sent_to(&sim, id))
    })
    .await;
    until("a heartbeat acknowledged on each shard", || {
        (0..2).all(|id| {
            !rec.histogram(SHARD_HEARTBEAT_LATENCY, &labels_of(id))
                .is_empty()
        })
    })
    .await;

    let stats = sim.stats();
    let mut bytes = 0;
    for id in 0..2u32 {
        let labels = labels_of(id);
        let counters = handles[id as usize].counters();
        let sent: u64 = stats.shard(id).map(|s| s.dispatches_sent).sum();
        assert_eq!(
            rec.counter(SHARD_EVENTS, &labels),
            sent,
            "shard {id} events"
        );
        assert_eq!(counters.events, sent, "shard {id} counters agree");
        assert_eq!(
            rec.counter(SHARD_RESUMES, &labels),
            u64::from(id == 0),
            "shard {id} resumes"
        );
        assert_eq!(
            rec.counter(SHARD_REIDENTIFIES, &labels),
            u64::from(id == 1),
            "shard {id} re-identifies"
        );
        assert_eq!(
            rec.counter(SHARD_RECONNECTS, &labels),
            1,
            "shard {id} reconnects"
        );
        let identify_waits = rec.histogram(SHARD_IDENTIFY_WAIT, &labels);
        assert_eq!(
            identify_waits.len() as u64,
            counters.identifies,
            "shard {id}: one identify wait per identify"
        );
        assert!(identify_waits.iter().all(|w| *w >= 0.0));
        assert!(
            rec.histogram(SHARD_HEARTBEAT_LATENCY, &labels)
                .iter()
                .all(|s| (0.0..LIMIT.as_secs_f64()).contains(s))
        );
        let bytes_in = rec.counter(SHARD_BYTES_IN, &labels);
        assert!(bytes_in > 0, "shard {id} read bytes");
        assert_eq!(bytes_in, counters.bytes_in, "shard {id} bytes agree");
        bytes += bytes_in;
        assert_eq!(rec.gauge(SHARD_STAGE, &labels), 4.0, "shard {id} connected");
    }
    // The sim counts its wire bytes over all connections only, and a few
    // (a heartbeat ACK in flight) may not have been read yet.
    assert!(bytes <= stats.wire_bytes, "{bytes} > {}", stats.wire_bytes);

    let event = event_label::<MessageCreate>();
    assert_eq!(received, 4 * N);
    assert_eq!(rec.counter(BUS_POSTS, &event), received);
    assert_eq!(rec.gauge(BUS_SUBSCRIBERS, &event), 1.0);
    assert!(rec.histogram(BUS_BACKPRESSURE_WAIT, &event).len() as u64 <= received);
    drop(messages);
    assert_eq!(rec.gauge(BUS_SUBSCRIBERS, &event), 0.0);

    for shard in &shards {
        shard.handle().close(CloseCode::NORMAL).await;
    }
    for shard in shards {
        timeout(LIMIT, shard.join()).await.unwrap().unwrap();
    }
    for id in 0..2 {
        assert_eq!(
            rec.gauge(SHARD_STAGE, &labels_of(id)),
            6.0,
            "shard {id} stopped"
        );
    }
    sim.shutdown().await;
}

/// Posted only by [`blocked_post_records_its_wait_and_lossy_lag_is_counted`].
struct Blocked;
/// Posted only by [`blocked_post_records_its_wait_and_lossy_lag_is_counted`].
struct Dropped;

/// A post that waits on a full subscriber records how long it waited (and
/// one that did not wait records nothing); events a lossy subscriber misses
/// are counted.
#[tokio::test(start_paused = true)]
async fn blocked_post_records_its_wait_and_lossy_lag_is_counted() {
    let rec = recorder();
    let bus = TypeMux::with_capacity(1);
    let blocked = event_label::<Blocked>();
    let dropped = event_label::<Dropped>();

    let mut rx = bus.subscribe::<Blocked>();
    assert_eq!(rec.gauge(BUS_SUBSCRIBERS, &blocked), 1.0);
    assert_eq!(bus.post(Blocked).await, Ok(1));
    assert!(rec.histogram(BUS_BACKPRESSURE_WAIT, &blocked).is_empty());
    // The ring is full: this post waits until `rx` reads.
    let post = tokio::spawn({
        let bus = bus.clone();
        async move { bus.post(Blocked).await }
    });
    sleep(Duration::from_millis(50)).await;
    assert!(!post.is_finished());
    rx.next().await.unwrap();
    assert_eq!(post.await.unwrap(), Ok(1));
    let waits = rec.histogram(BUS_BACKPRESSURE_WAIT, &blocked);
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(waits[0] >= 0.05, "{waits:?}");
    assert_eq!(rec.counter(BUS_POSTS, &blocked), 2);
    drop(rx);
    assert_eq!(rec.gauge(BUS_SUBSCRIBERS, &blocked), 0.0);

    let mut lossy = bus.subscribe_lossy::<Dropped>(2);
    assert_eq!(rec.gauge(BUS_SUBSCRIBERS, &dropped), 1.0);
    for _ in 0..5 {
        assert_eq!(bus.post(Dropped).await, Ok(1));
    }
    assert_eq!(rec.counter(BUS_LOSSY_LAGGED, &dropped), 3);
    assert!(matches!(
        lossy.next().await,
        Some(Err(Lagged { missed: 3 }))
    ));
    assert_eq!(rec.counter(BUS_POSTS, &dropped), 5);
    assert!(rec.histogram(BUS_BACKPRESSURE_WAIT, &dropped).is_empty());
    drop(lossy);
    assert_eq!(rec.gauge(BUS_SUBSCRIBERS, &dropped), 0.0);
}
