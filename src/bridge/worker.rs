//! The worker side: a local bus fed from JetStream, acknowledging each
//! event once its handlers are done.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, kv};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use super::{
    DEFAULT_PREFIX, HEADER_SEQ, HEADER_SESSION, NatsError, check_prefix, create_with_ttl,
    key_value, put_with_ttl,
};
use crate::bus::TypeMux;
use crate::bus::{CallTracker, HandlerId};
use crate::gateway::{DispatchMeta, EventRegistry};
use crate::model::{Seq, ShardId};

/// An event no handler could handle in `max_deliver` deliveries, posted on
/// the worker's bus as `Arc<DeadLetter>` and then terminated at the
/// server (it is not delivered again): when a handler failed on its last
/// delivery, when it could not be decoded, and when its deliveries ran out
/// unacknowledged (a handler ran past `ack_wait`, or a worker crashed),
/// which the server reports in its `MAX_DELIVERIES` advisory. Each event
/// is posted as a dead letter once.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The dispatch type.
    pub event_type: String,
    /// The shard and seq it came with.
    pub meta: DispatchMeta,
    /// The gateway session it came in.
    pub session_id: String,
    /// Its raw `d`.
    pub data: String,
    /// The last handler error, or why it could not be decoded.
    pub error: String,
}

/// What a worker has done, from [`NatsBus::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Events acknowledged after every handler succeeded.
    pub acked: u64,
    /// Deliveries refused (a handler failed) to be delivered again later.
    pub naked: u64,
    /// Deliveries that were redeliveries (delivery count above 1).
    pub redelivered: u64,
    /// Events given up on: posted as [`DeadLetter`].
    pub dead_letters: u64,
    /// Shard partitions this worker consumes now.
    pub partitions: u64,
}

#[derive(Debug, Default)]
struct Counters {
    acked: AtomicU64,
    naked: AtomicU64,
    redelivered: AtomicU64,
    dead_letters: AtomicU64,
    partitions: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> WorkerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerStats {
            acked: get(&self.acked),
            naked: get(&self.naked),
            redelivered: get(&self.redelivered),
            dead_letters: get(&self.dead_letters),
            partitions: get(&self.partitions),
        }
    }
}

/// Builds a [`NatsBus`]; from [`NatsBus::builder`].
#[must_use = "a builder does nothing until started"]
pub struct NatsBusBuilder {
    js: jetstream::Context,
    service: String,
    prefix: String,
    shards: u32,
    bus: Option<TypeMux>,
    registry: Option<Arc<EventRegistry>>,
    events: Option<BTreeSet<String>>,
    max_deliver: i64,
    ack_wait: Duration,
    nak_delay: Duration,
    max_ack_pending: i64,
    lease_ttl: Duration,
}

impl NatsBusBuilder {
    /// The prefix the bridge publishes under ([`DEFAULT_PREFIX`] by
    /// default).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The bus to feed (with the state handlers extract, and any handlers
    /// already registered: they count as much as those added later); a
    /// new one by default.
    pub fn bus(mut self, bus: TypeMux) -> Self {
        self.bus = Some(bus);
        self
    }

    /// The models events are decoded into (every built-in one by
    /// default, as on a shard).
    pub fn registry(mut self, registry: EventRegistry) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// Consumes only these dispatch types (all that the bridge forwards by
    /// default). Applies when the service's consumers are created.
    pub fn events<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.events = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// Deliveries of one event before it becomes a [`DeadLetter`] (5 by
    /// default).
    pub fn max_deliver(mut self, n: u32) -> Self {
        self.max_deliver = i64::from(n.max(1));
        self
    }

    /// How long the server waits for an event's acknowledgement before it
    /// delivers it again (30 s by default): the longest a handler may run.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// The delay before a failed event is delivered again, doubled with
    /// each delivery up to a minute (1 s by default).
    pub fn nak_delay(mut self, delay: Duration) -> Self {
        self.nak_delay = delay;
        self
    }

    /// How long a worker's claim on a partition lasts without renewal (3 s
    /// by default, whole seconds): how soon a crashed worker's partitions
    /// move to the others.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// Joins the service and starts consuming its share of the partitions.
    ///
    /// # Errors
    ///
    /// [`NatsError::Prefix`] for a bad prefix or service name;
    /// [`NatsError::BusTaken`] if the bus feeds another running
    /// [`NatsBus`]; [`NatsError::KeyValue`] if the service's membership
    /// bucket cannot be created.
    pub async fn start(self) -> Result<NatsBus, NatsError> {
        check_prefix(&self.prefix)?;
        check_prefix(&self.service)?;
        let bucket = format!("{}_workers", self.prefix);
        let kv = key_value(
            &self.js,
            &bucket,
            "shardbus: workers and their partitions, per service",
            true,
            Duration::ZERO,
        )
        .await?;
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        // Every handler of the bus reports to the acker, whenever it was
        // registered (before this, on the bus given to `bus`, or later).
        let bus = self.bus.unwrap_or_default();
        let tracker: Arc<dyn CallTracker> = Arc::new(Tracker {
            done: done_tx.clone(),
        });
        if !bus.handler_registry().track(tracker.clone()) {
            return Err(NatsError::BusTaken);
        }
        let tracking = Tracking {
            bus: bus.clone(),
            tracker,
        };
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = watch::channel(false);
        let id = format!("{:016x}", fastrand::u64(..));
        let client = self.js.client();
        let shared = Arc::new(Shared {
            js: self.js,
            kv,
            bucket,
            service: self.service,
            prefix: self.prefix,
            id,
            bus: bus.clone(),
            registry: self.registry.unwrap_or_else(EventRegistry::shared_defaults),
            events: self.events,
            max_deliver: self.max_deliver,
            ack_wait: self.ack_wait,
            max_ack_pending: self.max_ack_pending,
            lease_ttl: self.lease_ttl,
            done: done_tx,
            counters: counters.clone(),
        });
        let acker = tokio::spawn(acker(
            done_rx,
            Acker {
                counters: counters.clone(),
                bus: bus.clone(),
                client,
                max_deliver: self.max_deliver,
                nak_delay: self.nak_delay,
                _tracking: tracking,
            },
        ));
        let coordinator = tokio::spawn(coordinate(shared, self.shards, stopped));
        Ok(NatsBus {
            bus,
            counters,
            stop,
            coordinator: Some(coordinator),
            acker: Some(acker),
        })
    }
}

/// A worker's bus, fed from JetStream: the same typed streams, handlers
/// (`#[handler]`, extractors, the REST client as `Http`) and plugins as a
/// shard host's bus, for events a `NatsBridge` published.
///
/// # Sharing the load, and order
///
/// Each shard is a partition with a durable consumer of its own
/// (`<service>_<shard>`, filtering `<prefix>.evt.*.<shard>`). Workers of
/// one service claim partitions through leases in the key-value bucket
/// `<prefix>_workers`, each taking its fair share (the partitions over the
/// live workers, rounded up) and giving up extras when workers join. A
/// partition has one consumer process at a time and its events are posted
/// in stream order, so the events of one guild (which one shard carries)
/// reach the worker's bus in order, per type as on a shard host.
///
/// That order holds absent failures, across handovers too: a worker
/// giving a partition up (a worker joined, or it is closing) keeps the
/// lease while it stops pulling, gives back at once what it had pulled and
/// not posted (delivered again ahead of later events), and waits (up to
/// `ack_wait`) until what it posted is settled; only then may another
/// worker take the partition. Failures do reorder: an event a handler
/// failed is delivered again after its delay, behind later ones; a crashed
/// worker's leases expire after [`lease_ttl`](NatsBusBuilder::lease_ttl)
/// and its partitions move, and what it had not acknowledged is delivered
/// again after [`ack_wait`](NatsBusBuilder::ack_wait), after what the next
/// worker handled meanwhile; so does an event whose handler outlives
/// `ack_wait`.
///
/// # At least once
///
/// An event is acknowledged once every handler of its type on the bus has
/// returned `Ok` for it (events with no handler, read by streams only,
/// once posted). Every handler counts, however and whenever it was
/// registered: on the bus given to [`bus`](NatsBusBuilder::bus) before
/// the worker started, on [`NatsBus::bus`] afterwards, or by a plugin. A
/// handler added while an event is being posted may or may not see that
/// event, and is not waited for on it; a handler removed (unsubscribed, or
/// its plugin unloaded) before it ran an event makes that event fail, so
/// it is delivered again to the handlers there are then. If a handler
/// fails (or panics), the event is refused
/// with a delay that doubles per delivery, and delivered again; its
/// [`meta.attempt`](DispatchMeta::attempt) is then above 1, so handlers
/// can be idempotent. After [`max_deliver`](NatsBusBuilder::max_deliver)
/// deliveries it is posted as a [`DeadLetter`] and terminated. When the
/// deliveries run out because none was acknowledged within
/// [`ack_wait`](NatsBusBuilder::ack_wait) (a hung handler, a crashed
/// worker), the worker consuming the partition then posts the
/// [`DeadLetter`] from JetStream's `MAX_DELIVERIES` advisory, reading the
/// event back from the stream. (Advisories are not stored: one sent while
/// no worker consumes the partition, between a crash and the takeover, is
/// missed, and the event is only in the stream.)
#[derive(Debug)]
pub struct NatsBus {
    bus: TypeMux,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    /// Keeps the membership and the partitions; ends once every
    /// partition is released after `stop`.
    coordinator: Option<JoinHandle<()>>,
    /// Settles deliveries; ends after the coordinator.
    acker: Option<JoinHandle<()>>,
}

/// A worker's hold on its bus's handler reports; released on drop (when
/// the acker ends), so another worker may feed the bus later.
struct Tracking {
    bus: TypeMux,
    tracker: Arc<dyn CallTracker>,
}

impl Drop for Tracking {
    fn drop(&mut self) {
        self.bus.handler_registry().untrack(&self.tracker);
    }
}

impl std::fmt::Debug for Tracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracking").finish_non_exhaustive()
    }
}

impl Drop for NatsBus {
    /// Leaves the service in the background, as [`close`](Self::close)
    /// does but without waiting for it (the runtime must go on running
    /// for it to finish).
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl NatsBus {
    /// A worker of `service` (a subject token: letters, digits, `-`, `_`)
    /// for a bot of `shards` shards.
    pub fn builder(
        js: jetstream::Context,
        service: impl Into<String>,
        shards: u32,
    ) -> NatsBusBuilder {
        NatsBusBuilder {
            js,
            service: service.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            shards: shards.max(1),
            bus: None,
            registry: None,
            events: None,
            max_deliver: 5,
            ack_wait: Duration::from_secs(30),
            nak_delay: Duration::from_secs(1),
            max_ack_pending: 1024,
            lease_ttl: Duration::from_secs(3),
        }
    }

    /// The bus events are posted on: subscribe, add handlers and install
    /// plugins here.
    pub fn bus(&self) -> &TypeMux {
        &self.bus
    }

    /// What the worker has done so far.
    pub fn stats(&self) -> WorkerStats {
        self.counters.snapshot()
    }

    /// Leaves the service and returns the counts: stops pulling, gives
    /// back what was pulled and not posted, waits (up to
    /// [`ack_wait`](NatsBusBuilder::ack_wait)) for the handlers of what
    /// was posted, acknowledges or refuses those events and flushes that
    /// to the server, then releases its partitions to the other workers.
    /// An event whose handlers have not finished by then is delivered
    /// again (to whoever takes the partition).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropped, the worker leaves in the background, as when
    /// it is dropped.
    pub async fn close(mut self) -> WorkerStats {
        let _ = self.stop.send(true);
        if let Some(coordinator) = self.coordinator.take() {
            let _ = coordinator.await;
        }
        // The coordinator told the acker to end once what the consumers
        // posted is settled: every report before that is handled.
        if let Some(acker) = self.acker.take() {
            let _ = acker.await;
        }
        self.counters.snapshot()
    }
}

/// What every task of one worker shares.
struct Shared {
    js: jetstream::Context,
    kv: kv::Store,
    bucket: String,
    service: String,
    prefix: String,
    /// This worker.
    id: String,
    bus: TypeMux,
    registry: Arc<EventRegistry>,
    events: Option<BTreeSet<String>>,
    max_deliver: i64,
    ack_wait: Duration,
    max_ack_pending: i64,
    lease_ttl: Duration,
    done: mpsc::UnboundedSender<Report>,
    counters: Arc<Counters>,
}

/// Forwards the bus's handler reports to the acker.
struct Tracker {
    done: mpsc::UnboundedSender<Report>,
}

impl CallTracker for Tracker {
    fn call_done(&self, handler: HandlerId, key: usize, error: Option<&str>) {
        let _ = self.done.send(Report::Done {
            handler,
            key,
            error: error.map(str::to_owned),
        });
    }

    fn handler_removed(&self, handler: HandlerId) {
        let _ = self.done.send(Report::Removed { handler });
    }
}

/// What the acker is told, in order.
enum Report {
    /// A delivery was posted as the event at `key`; each of `handlers`
    /// will report on it.
    Posted {
        key: usize,
        handlers: Vec<HandlerId>,
        delivery: Box<Delivery>,
    },
    /// One handler call on the event at `key` ended.
    Done {
        handler: HandlerId,
        key: usize,
        error: Option<String>,
    },
    /// A handler stopped: it reports on nothing more.
    Removed { handler: HandlerId },
    /// A delivery that could not be decoded.
    Undecodable {
        delivery: Box<Delivery>,
        error: String,
    },
    /// The coordinator has stopped: every partition is released, and what
    /// its consumers posted is settled (or waited for long enough).
    Shutdown,
    /// The server reached `max_deliver` for the event at `stream_seq`
    /// without an acknowledgement.
    Exhausted {
        stream_seq: u64,
        letter: Box<DeadLetter>,
    },
}

/// One delivery awaiting its handlers.
struct Delivery {
    message: jetstream::Message,
    event_type: String,
    meta: DispatchMeta,
    session_id: String,
    /// The delivery count.
    attempt: i64,
    /// Its sequence number in the stream.
    stream_seq: u64,
    /// Counts it in flight for its partition until settled.
    _in_flight: Option<OwnedSemaphorePermit>,
}

/// An event whose handlers all reported: its delivery, and the last
/// error if one failed.
type Finished<D> = (D, Option<String>);

/// Which handlers each posted event still waits for: the acker's
/// bookkeeping, apart from the acknowledging.
struct Ledger<D> {
    /// By the event's key.
    awaiting: HashMap<usize, Awaiting<D>>,
}

/// An event awaiting its handlers' reports.
struct Awaiting<D> {
    delivery: D,
    /// The handlers listed when it was posted that have not reported.
    pending: Vec<HandlerId>,
    error: Option<String>,
}

impl<D> Ledger<D> {
    fn new() -> Self {
        Self {
            awaiting: HashMap::new(),
        }
    }

    /// The event at `key` was posted to `handlers`; finished at once if
    /// there are none.
    fn posted(&mut self, key: usize, handlers: Vec<HandlerId>, delivery: D) -> Option<Finished<D>> {
        if handlers.is_empty() {
            return Some((delivery, None));
        }
        self.awaiting.insert(
            key,
            Awaiting {
                delivery,
                pending: handlers,
                error: None,
            },
        );
        None
    }

    /// `handler` is done with the event at `key`. A handler the event was
    /// not posted to (one added while it was) is not waited for, and its
    /// report changes nothing.
    fn done(
        &mut self,
        handler: HandlerId,
        key: usize,
        error: Option<String>,
    ) -> Option<Finished<D>> {
        let entry = self.awaiting.get_mut(&key)?;
        let at = entry.pending.iter().position(|h| *h == handler)?;
        entry.pending.swap_remove(at);
        if error.is_some() {
            entry.error = error;
        }
        if entry.pending.is_empty() {
            self.awaiting.remove(&key).map(|e| (e.delivery, e.error))
        } else {
            None
        }
    }

    /// `handler` was removed: the events it had not run yet fail (to be
    /// delivered again to the handlers registered then).
    fn removed(&mut self, handler: HandlerId) -> Vec<Finished<D>> {
        let mut finished = Vec::new();
        for entry in self.awaiting.values_mut() {
            if let Some(at) = entry.pending.iter().position(|h| *h == handler) {
                entry.pending.swap_remove(at);
                entry
                    .error
                    .get_or_insert_with(|| "a handler was removed before it ran".to_owned());
            }
        }
        let keys: Vec<usize> = self
            .awaiting
            .iter()
            .filter(|(_, e)| e.pending.is_empty())
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            if let Some(e) = self.awaiting.remove(&key) {
                finished.push((e.delivery, e.error));
            }
        }
        finished
    }
}

/// What the acker works with.
struct Acker {
    counters: Arc<Counters>,
    bus: TypeMux,
    /// Flushed when the acker ends, so its last acknowledgements leave.
    client: async_nats::Client,
    max_deliver: i64,
    nak_delay: Duration,
    /// The bus's handlers report here until the acker ends.
    _tracking: Tracking,
}

/// Acknowledges, refuses or dead-letters each delivery once its handlers
/// reported, until the coordinator says it is done.
async fn acker(mut reports: mpsc::UnboundedReceiver<Report>, acker: Acker) {
    let Acker {
        counters,
        bus,
        client,
        max_deliver,
        nak_delay,
        _tracking,
    } = acker;
    let mut ledger: Ledger<Box<Delivery>> = Ledger::new();
    let mut lettered = Lettered::default();
    while let Some(report) = reports.recv().await {
        let finished = match report {
            Report::Posted {
                key,
                handlers,
                delivery,
            } => ledger.posted(key, handlers, delivery).into_iter().collect(),
            Report::Done {
                handler,
                key,
                error,
            } => ledger.done(handler, key, error).into_iter().collect(),
            Report::Removed { handler } => ledger.removed(handler),
            Report::Undecodable { delivery, error } => {
                // Delivering it again cannot help.
                dead_letter(&bus, &counters, &mut lettered, &delivery, error).await;
                continue;
            }
            Report::Shutdown => break,
            Report::Exhausted { stream_seq, letter } => {
                // The server gave up on it (its last delivery timed out);
                // a handler still running on it may report later.
                if lettered.first(stream_seq) {
                    post_letter(&bus, &counters, *letter).await;
                }
                continue;
            }
        };
        for (delivery, error) in finished {
            settle(
                &bus,
                &counters,
                &mut lettered,
                delivery,
                error,
                max_deliver,
                nak_delay,
            )
            .await;
        }
    }
    if !ledger.awaiting.is_empty() {
        tracing::warn!(
            events = ledger.awaiting.len(),
            "leaving with events whose handlers have not finished: they are delivered again"
        );
    }
    if let Err(e) = client.flush().await {
        tracing::warn!(error = %e, "could not flush the last acknowledgements");
    }
}

/// Acknowledges a delivery whose handlers succeeded; refuses one that
/// failed, or makes it a dead letter on its last delivery.
async fn settle(
    bus: &TypeMux,
    counters: &Counters,
    lettered: &mut Lettered,
    delivery: Box<Delivery>,
    error: Option<String>,
    max_deliver: i64,
    nak_delay: Duration,
) {
    match error {
        None => {
            if let Err(e) = delivery.message.ack().await {
                tracing::warn!(error = %e, "could not acknowledge an event");
            }
            Counters::add(&counters.acked);
        }
        Some(error) if delivery.attempt >= max_deliver => {
            dead_letter(bus, counters, lettered, &delivery, error).await;
        }
        Some(_) => {
            let doublings = u32::try_from(delivery.attempt.saturating_sub(1))
                .unwrap_or(16)
                .min(16);
            let delay = nak_delay
                .saturating_mul(1 << doublings)
                .min(Duration::from_secs(60));
            if let Err(e) = delivery.message.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(error = %e, "could not refuse an event");
            }
            Counters::add(&counters.naked);
        }
    }
}

/// The stream sequence numbers of the latest dead letters, so an event is
/// posted as one once, whether its last handler failed or the server gave
/// up on it first.
#[derive(Default)]
struct Lettered {
    seqs: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Lettered {
    /// How many are remembered.
    const KEPT: usize = 4096;

    /// Whether `seq` is new (and remembers it); 0 (unknown) always is.
    fn first(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return true;
        }
        if !self.seqs.insert(seq) {
            return false;
        }
        self.order.push_back(seq);
        if self.order.len() > Self::KEPT
            && let Some(old) = self.order.pop_front()
        {
            self.seqs.remove(&old);
        }
        true
    }
}

/// Posts `delivery` as a [`DeadLetter`] (unless it already was) and
/// terminates it.
async fn dead_letter(
    bus: &TypeMux,
    counters: &Counters,
    lettered: &mut Lettered,
    delivery: &Delivery,
    error: String,
) {
    if lettered.first(delivery.stream_seq) {
        let letter = DeadLetter {
            event_type: delivery.event_type.clone(),
            meta: delivery.meta,
            session_id: delivery.session_id.clone(),
            data: String::from_utf8_lossy(&delivery.message.payload).into_owned(),
            error,
        };
        post_letter(bus, counters, letter).await;
    }
    if let Err(e) = delivery.message.ack_with(AckKind::Term).await {
        tracing::warn!(error = %e, "could not terminate a dead letter");
    }
}

/// Posts `letter` and counts it.
async fn post_letter(bus: &TypeMux, counters: &Counters, letter: DeadLetter) {
    tracing::warn!(
        event_type = %letter.event_type,
        shard = letter.meta.shard.0,
        seq = letter.meta.seq.0,
        error = %letter.error,
        "an event is a dead letter"
    );
    let _ = bus.post(letter).await;
    Counters::add(&counters.dead_letters);
}

/// JetStream's advisory that a message reached the consumer's
/// `max_deliver` without being acknowledged (only the fields used).
#[derive(serde::Deserialize)]
struct MaxDeliveries {
    /// The message's sequence number in the stream.
    stream_seq: u64,
    /// How many times it was delivered.
    deliveries: u64,
}

/// The subject of the advisory JetStream publishes when a message of
/// `consumer` on `stream` reaches `max_deliver` through ack timeouts.
fn max_deliveries_subject(stream: &str, consumer: &str) -> String {
    format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}")
}

/// A `MAX_DELIVERIES` advisory for `shard`'s consumer: the event, read
/// back from the stream, goes to the acker as a dead letter.
async fn exhausted(
    shared: &Shared,
    stream: &jetstream::stream::Stream,
    shard: u32,
    payload: &[u8],
) {
    let advisory: MaxDeliveries = match serde_json::from_slice(payload) {
        Ok(advisory) => advisory,
        Err(e) => {
            tracing::warn!(shard, error = %e, "an unreadable max-deliveries advisory");
            return;
        }
    };
    let error = format!(
        "not acknowledged within ack_wait in {} deliveries (a handler ran too long, or its worker stopped)",
        advisory.deliveries
    );
    let attempt = u32::try_from(advisory.deliveries).unwrap_or(u32::MAX);
    let letter = match stream.get_raw_message(advisory.stream_seq).await {
        Ok(stored) => DeadLetter {
            event_type: event_type_of(stored.subject.as_str()),
            meta: DispatchMeta {
                shard: ShardId(shard),
                seq: seq_of(Some(&stored.headers)),
                attempt,
            },
            session_id: session_of(Some(&stored.headers)),
            data: String::from_utf8_lossy(&stored.payload).into_owned(),
            error,
        },
        // Gone from the stream (its age limit): the letter says which.
        Err(e) => DeadLetter {
            event_type: String::new(),
            meta: DispatchMeta {
                shard: ShardId(shard),
                seq: Seq(0),
                attempt,
            },
            session_id: String::new(),
            data: String::new(),
            error: format!(
                "{error}; stream message {} could not be read back: {e}",
                advisory.stream_seq
            ),
        },
    };
    let _ = shared.done.send(Report::Exhausted {
        stream_seq: advisory.stream_seq,
        letter: Box::new(letter),
    });
}

/// The dispatch's seq, from an event's headers (0 if missing).
fn seq_of(headers: Option<&async_nats::HeaderMap>) -> Seq {
    let seq = headers.and_then(|h| h.get(HEADER_SEQ));
    Seq(seq.and_then(|v| v.as_str().parse().ok()).unwrap_or(0))
}

/// The gateway session, from an event's headers (empty if missing).
fn session_of(headers: Option<&async_nats::HeaderMap>) -> String {
    headers
        .and_then(|h| h.get(HEADER_SESSION))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

/// The dispatch type of an event subject, `<prefix>.evt.<TYPE>.<shard>`.
fn event_type_of(subject: &str) -> String {
    subject.rsplit('.').nth(1).unwrap_or_default().to_owned()
}

/// Tells the acker to end when dropped.
struct EndAcker(mpsc::UnboundedSender<Report>);

impl Drop for EndAcker {
    fn drop(&mut self) {
        let _ = self.0.send(Report::Shutdown);
    }
}

/// A partition this worker holds the lease of.
struct Held {
    /// The lease's revision.
    revision: u64,
    /// Tells the consumer to stop.
    stop: watch::Sender<bool>,
    /// The consumer.
    task: JoinHandle<()>,
    /// The consumer's id, unique in the worker: what it says when it has
    /// stopped (an earlier consumer of the same shard may say so late).
    consumer: u64,
}

/// Keeps this worker's membership and its fair share of partitions.
///
/// A partition given up keeps its lease (renewed here) until its consumer
/// has stopped: it pulls no more, refuses what it had pulled and not
/// posted, and waits for what it posted to be settled. Only then is the
/// lease deleted and another worker may take the partition, so events of
/// one shard are handled in order across the handover.
async fn coordinate(shared: Arc<Shared>, shards: u32, mut stop: watch::Receiver<bool>) {
    // However this ends (a panic too), the acker ends after it.
    let _ending = EndAcker(shared.done.clone());
    let member = format!("{}.member.{}", shared.service, shared.id);
    let mut owned: HashMap<u32, Held> = HashMap::new();
    let mut releasing: HashMap<u32, Held> = HashMap::new();
    // Consumers say here (by id) when they have stopped.
    let (stopped_tx, mut stopped_rx) = mpsc::unbounded_channel::<u64>();
    let mut stopped_ids: HashSet<u64> = HashSet::new();
    let mut next_consumer = 0u64;
    let tick = shared.lease_ttl / 3;
    let mut stopping = false;
    loop {
        let _ = put_with_ttl(
            &shared.js,
            &shared.bucket,
            &member,
            id_value(&shared),
            None,
            shared.lease_ttl,
        )
        .await;
        // Renew every lease, those being given up too; a lease lost
        // (expired and taken) stops its partition at once.
        let ids: Vec<u32> = owned.keys().chain(releasing.keys()).copied().collect();
        for shard in ids {
            let Some(held) = owned.get_mut(&shard).or_else(|| releasing.get_mut(&shard)) else {
                continue;
            };
            let renewed = put_with_ttl(
                &shared.js,
                &shared.bucket,
                &part_key(&shared, shard),
                id_value(&shared),
                Some(held.revision),
                shared.lease_ttl,
            )
            .await;
            match renewed {
                Some(revision) => held.revision = revision,
                None => {
                    tracing::warn!(shard, "a partition's lease was lost");
                    if let Some(lost) = owned.remove(&shard).or_else(|| releasing.remove(&shard)) {
                        let _ = lost.stop.send(true);
                    }
                }
            }
        }
        // Free the leases of the consumers that have stopped (or ended
        // otherwise: a panic).
        while let Ok(id) = stopped_rx.try_recv() {
            stopped_ids.insert(id);
        }
        let done: Vec<u32> = releasing
            .iter()
            .filter(|(_, h)| stopped_ids.contains(&h.consumer) || h.task.is_finished())
            .map(|(shard, _)| *shard)
            .collect();
        stopped_ids.clear();
        for shard in done {
            if let Some(held) = releasing.remove(&shard) {
                // It has said it stopped: it ends at once.
                let _ = held.task.await;
                let _ = shared
                    .kv
                    .delete_expect_revision(part_key(&shared, shard), Some(held.revision))
                    .await;
            }
        }
        if stopping {
            for (shard, held) in owned.drain() {
                let _ = held.stop.send(true);
                releasing.insert(shard, held);
            }
            if releasing.is_empty() {
                break;
            }
        } else {
            let members = count_members(&shared).await.max(1);
            let fair = shards.div_ceil(u32::try_from(members).unwrap_or(u32::MAX)) as usize;
            // Give up extras when others joined.
            while owned.len() > fair {
                let Some(&shard) = owned.keys().max() else {
                    break;
                };
                if let Some(held) = owned.remove(&shard) {
                    let _ = held.stop.send(true);
                    releasing.insert(shard, held);
                }
            }
            // Claim free partitions up to the fair share.
            for shard in 0..shards {
                if owned.len() >= fair {
                    break;
                }
                if owned.contains_key(&shard) || releasing.contains_key(&shard) {
                    continue;
                }
                let key = part_key(&shared, shard);
                let value = id_value(&shared);
                if let Ok(revision) = create_with_ttl(
                    &shared.js,
                    &shared.kv,
                    &shared.bucket,
                    &key,
                    value,
                    shared.lease_ttl,
                )
                .await
                {
                    let (stop, stopped) = watch::channel(false);
                    next_consumer += 1;
                    let consumer = next_consumer;
                    let task = tokio::spawn(consume(
                        shared.clone(),
                        shard,
                        stopped,
                        (consumer, stopped_tx.clone()),
                    ));
                    owned.insert(
                        shard,
                        Held {
                            revision,
                            stop,
                            task,
                            consumer,
                        },
                    );
                }
            }
        }
        shared
            .counters
            .partitions
            .store(owned.len() as u64, Ordering::Relaxed);
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            _ = stop.changed(), if !stopping => stopping = true,
            // Back at once to free its lease; kept for the loop above.
            Some(id) = stopped_rx.recv() => {
                stopped_ids.insert(id);
            }
        }
    }
    let _ = shared.kv.delete(&member).await;
    shared.counters.partitions.store(0, Ordering::Relaxed);
}

/// This worker's id, as a lease's value.
fn id_value(shared: &Shared) -> Bytes {
    Bytes::from(shared.id.clone())
}

/// The lease key of `shard`'s partition.
fn part_key(shared: &Shared, shard: u32) -> String {
    format!("{}.part.{shard}", shared.service)
}

/// How many workers of the service are alive.
async fn count_members(shared: &Shared) -> usize {
    let prefix = format!("{}.member.", shared.service);
    match shared.kv.keys().await {
        Ok(keys) => {
            keys.filter(|k| std::future::ready(k.as_ref().is_ok_and(|k| k.starts_with(&prefix))))
                .count()
                .await
        }
        Err(_) => 1,
    }
}

/// Events asked for in one pull. The server sends no more than this
/// until the worker asks again, so a stopping consumer knows it has all
/// it was sent once its pull ends.
const PULL_BATCH: usize = 128;

/// How long one pull waits for events: also the longest a stopping
/// consumer waits for its last pull to end.
const PULL_EXPIRES: Duration = Duration::from_millis(500);

/// Deliveries in flight, at most (a bound no consumer reaches: the
/// server's `max_ack_pending` is far lower). Below tokio's
/// `Semaphore::MAX_PERMITS` on 32-bit targets too, where `u32::MAX` would
/// make `Semaphore::new` panic.
const IN_FLIGHT: u32 = 1 << 28;

/// Consumes `shard`'s partition until told to stop, then refuses what it
/// pulled and did not post, waits (up to `ack_wait`) for what it posted
/// to be settled, and says so, with its id, on `stopped`.
async fn consume(
    shared: Arc<Shared>,
    shard: u32,
    mut stop: watch::Receiver<bool>,
    stopped: (u64, mpsc::UnboundedSender<u64>),
) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT as usize));
    loop {
        if *stop.borrow() {
            break;
        }
        let opened = tokio::select! {
            opened = open_partition(&shared, shard) => opened,
            _ = stop.changed() => break,
        };
        let result = match opened {
            Ok(mut partition) => pull(&shared, shard, &mut partition, &in_flight, &mut stop).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(shard, error = %e, "consuming a partition failed: retrying");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = stop.changed() => break,
        }
    }
    // What was posted is handled by this worker before another one takes
    // the partition; one that takes longer than ack_wait was redelivered
    // anyway.
    let settled = tokio::time::timeout(shared.ack_wait, in_flight.acquire_many(IN_FLIGHT)).await;
    if settled.is_err() {
        tracing::warn!(
            shard,
            "events posted before the partition was given up were not settled within ack_wait"
        );
    }
    let _ = stopped.1.send(stopped.0);
}

/// A partition's consumer, ready to pull.
struct Partition {
    stream: jetstream::stream::Stream,
    consumer: consumer::PullConsumer,
    /// JetStream's `MAX_DELIVERIES` advisories for the consumer.
    advisories: async_nats::Subscriber,
}

/// Creates (or finds) `shard`'s durable consumer and subscribes to its
/// advisories.
async fn open_partition(shared: &Shared, shard: u32) -> Result<Partition, async_nats::Error> {
    let stream_name = super::stream_name(&shared.prefix);
    let filter_subjects: Vec<String> = match &shared.events {
        Some(types) => types
            .iter()
            .map(|t| super::event_subject(&shared.prefix, t, shard))
            .collect(),
        None => vec![super::event_subject(&shared.prefix, "*", shard)],
    };
    let name = format!("{}_{shard}", shared.service);
    let config = consumer::pull::Config {
        durable_name: Some(name.clone()),
        description: Some(format!(
            "shardbus: service {}, shard {shard}",
            shared.service
        )),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: shared.ack_wait,
        max_deliver: shared.max_deliver,
        max_ack_pending: shared.max_ack_pending,
        filter_subjects,
        ..Default::default()
    };
    let stream = shared.js.get_stream(&stream_name).await?;
    let consumer = stream.get_or_create_consumer(&name, config).await?;
    // Before pulling, so no advisory of this run is missed.
    let advisories = shared
        .js
        .client()
        .subscribe(max_deliveries_subject(&stream_name, &name))
        .await?;
    Ok(Partition {
        stream,
        consumer,
        advisories,
    })
}

/// Pulls `partition` one batch at a time, posting each event, until told
/// to stop; then refuses the rest of the batch in progress (delivered
/// again at once, ahead of later events, to whoever consumes next).
async fn pull(
    shared: &Shared,
    shard: u32,
    partition: &mut Partition,
    in_flight: &Arc<Semaphore>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), async_nats::Error> {
    let Partition {
        stream,
        consumer,
        advisories,
    } = partition;
    let mut stopping = *stop.borrow_and_update();
    while !stopping {
        let mut batch = consumer
            .batch()
            .max_messages(PULL_BATCH)
            .expires(PULL_EXPIRES)
            .messages()
            .await?;
        loop {
            tokio::select! {
                biased;
                _ = stop.changed(), if !stopping => stopping = true,
                message = batch.next() => match message {
                    Some(Ok(message)) if stopping => {
                        if let Err(e) = message.ack_with(AckKind::Nak(None)).await {
                            tracing::debug!(shard, error = %e, "could not give an event back");
                        }
                    }
                    Some(Ok(message)) => {
                        let permit = in_flight.clone().try_acquire_owned().ok();
                        deliver(shared, shard, message, permit).await;
                    }
                    Some(Err(e)) => tracing::debug!(shard, error = %e, "consumer pull"),
                    None => break,
                },
                Some(advisory) = advisories.next(), if !stopping => {
                    exhausted(shared, stream, shard, &advisory.payload).await;
                }
            }
        }
    }
    Ok(())
}

/// Decodes one delivery and posts it on the bus, telling the acker.
async fn deliver(
    shared: &Shared,
    shard: u32,
    message: jetstream::Message,
    in_flight: Option<OwnedSemaphorePermit>,
) {
    let event_type = event_type_of(message.subject.as_str());
    let (attempt, stream_seq) = message
        .info()
        .map_or((1, 0), |info| (info.delivered, info.stream_sequence));
    if attempt > 1 {
        Counters::add(&shared.counters.redelivered);
    }
    let meta = DispatchMeta {
        shard: ShardId(shard),
        seq: seq_of(message.headers.as_ref()),
        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
    };
    let delivery = Box::new(Delivery {
        event_type: event_type.clone(),
        meta,
        session_id: session_of(message.headers.as_ref()),
        attempt,
        stream_seq,
        message,
        _in_flight: in_flight,
    });
    // Decoded from the payload in place; the decode owns what it posts.
    let decoded = match std::str::from_utf8(&delivery.message.payload) {
        Ok(data) => shared
            .registry
            .decode_remote(&event_type, data, meta, &shared.bus)
            .map_err(|e| format!("{event_type} does not decode: {e}")),
        Err(e) => Err(format!("not UTF-8: {e}")),
    };
    match decoded {
        Ok(Some(remote)) => {
            // Told before the post, so no handler's report can come first;
            // under the registry's lock, so a handler removed meanwhile is
            // reported removed after this.
            shared
                .bus
                .handler_registry()
                .with_handlers(remote.type_id, |handlers| {
                    let _ = shared.done.send(Report::Posted {
                        key: remote.key,
                        handlers: handlers.to_vec(),
                        delivery,
                    });
                });
            if remote.post.await.is_err() {
                tracing::debug!("the worker's bus is closed");
            }
        }
        Ok(None) => {
            let _ = shared.done.send(Report::Posted {
                key: 0,
                handlers: Vec::new(),
                delivery,
            });
        }
        Err(error) => {
            let _ = shared.done.send(Report::Undecodable { delivery, error });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_a_dead_letter_once() {
        let mut lettered = Lettered::default();
        assert!(lettered.first(7));
        assert!(!lettered.first(7));
        assert!(
            lettered.first(0) && lettered.first(0),
            "unknown: never merged"
        );
        for seq in 100..100 + Lettered::KEPT as u64 {
            assert!(lettered.first(seq));
        }
        // Only the latest are remembered.
        assert!(lettered.first(7));
        assert_eq!(lettered.order.len(), Lettered::KEPT);
    }

    #[test]
    fn an_event_waits_for_every_handler_it_was_posted_to() {
        let mut ledger = Ledger::new();
        assert!(ledger.posted(1, vec![10, 11], "e").is_none());
        assert!(ledger.done(10, 1, None).is_none());
        assert_eq!(ledger.done(11, 1, None), Some(("e", None)));
        // With no handler, at once.
        assert_eq!(ledger.posted(2, vec![], "f"), Some(("f", None)));
    }

    #[test]
    fn a_handler_added_while_an_event_was_posted_does_not_finish_it() {
        let mut ledger = Ledger::new();
        assert!(ledger.posted(1, vec![10], "e").is_none());
        // Handler 12 was not listed: its report is not a missing one's.
        assert!(ledger.done(12, 1, None).is_none());
        assert!(ledger.done(12, 1, Some("x".into())).is_none());
        assert_eq!(ledger.done(10, 1, None), Some(("e", None)));
    }

    #[test]
    fn the_last_error_is_kept_and_a_removed_handler_fails_what_it_had_not_run() {
        let mut ledger = Ledger::new();
        assert!(ledger.posted(1, vec![10, 11], "e").is_none());
        assert!(ledger.posted(2, vec![11], "f").is_none());
        assert!(ledger.posted(3, vec![10], "g").is_none());
        assert!(ledger.done(10, 1, Some("boom".into())).is_none());
        let mut finished = ledger.removed(11);
        finished.sort();
        assert_eq!(
            finished,
            [
                ("e", Some("boom".to_owned())),
                ("f", Some("a handler was removed before it ran".to_owned()))
            ]
        );
        // Untouched by the removal.
        assert_eq!(ledger.done(10, 3, None), Some(("g", None)));
        assert!(ledger.awaiting.is_empty());
    }
}
