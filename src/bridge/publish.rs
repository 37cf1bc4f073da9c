//! Forwarding dispatches from the local bus to a JetStream stream.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishError, publish::PublishAck, stream};
use async_nats::{HeaderMap, header};
use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::resume::{ResumeState, ResumeStore};
use super::{
    DEFAULT_PREFIX, HEADER_EVENT, HEADER_SEQ, HEADER_SESSION, HEADER_SHARD, NatsError, check_prefix,
};
use crate::bus::{EventStream, TypeMux};
use crate::gateway::RawDispatch;
use crate::model::SessionId;
use crate::shard::Manager;

/// A publish's acknowledgement, awaited in order.
type AckFuture = Pin<Box<dyn Future<Output = Result<PublishAck, PublishError>> + Send>>;

/// What the bridge has done, from [`NatsBridge::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeStats {
    /// Dispatches the server acknowledged.
    pub published: u64,
    /// Of those, the ones it had already (a replay after a resume, or a
    /// publish repeated after a failure): stored once.
    pub duplicates: u64,
    /// Publishes repeated after a failure (the server down, a timeout).
    pub retries: u64,
    /// Dispatches not forwarded: not of a chosen type, or a type that
    /// cannot be a subject token.
    pub skipped: u64,
    /// Resume states saved.
    pub saves: u64,
}

/// The counters behind [`BridgeStats`].
#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    duplicates: AtomicU64,
    retries: AtomicU64,
    skipped: AtomicU64,
    saves: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> BridgeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BridgeStats {
            published: get(&self.published),
            duplicates: get(&self.duplicates),
            retries: get(&self.retries),
            skipped: get(&self.skipped),
            saves: get(&self.saves),
        }
    }
}

/// Builds a [`NatsBridge`]; from [`NatsBridge::builder`].
#[must_use = "a builder does nothing until started"]
pub struct BridgeBuilder {
    /// The JetStream context.
    js: jetstream::Context,
    /// Subjects, stream and bucket names start with it.
    prefix: String,
    /// The dispatch types forwarded (`None`: all).
    events: Option<BTreeSet<String>>,
    /// Publishes awaiting their acknowledgement, at most.
    in_flight: usize,
    /// How long the server remembers message ids.
    duplicate_window: Duration,
    /// How long the stream keeps events.
    max_age: Duration,
    /// Where resume state goes, the manager that knows the sessions, and
    /// how many acknowledged dispatches per shard between saves.
    resume: Option<(ResumeStore, Manager, u64)>,
}

impl BridgeBuilder {
    /// The prefix of subjects (`<prefix>.evt.…`), of the stream
    /// (`<prefix>_events`) and of buckets; [`DEFAULT_PREFIX`] by default.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Forwards only dispatches of these types (`MESSAGE_CREATE`, …); all
    /// by default.
    pub fn events<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.events = Some(types.into_iter().map(Into::into).collect());
        self
    }

    /// How many publishes may await their acknowledgement at once (256 by
    /// default); the bus waits beyond that.
    pub fn in_flight(mut self, n: usize) -> Self {
        self.in_flight = n.max(1);
        self
    }

    /// How long the server remembers message ids to drop a replayed
    /// dispatch (2 minutes by default); applies when the stream is created.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// How long the stream keeps events (24 hours by default); applies
    /// when the stream is created.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }

    /// Saves each of `manager`'s shards' resume state in `store`: after
    /// every `every` acknowledged dispatches of the shard, and when the
    /// bridge closes. The seq saved is one the server has acknowledged,
    /// so a host that crashes and resumes from it loses nothing: the
    /// gateway replays the rest, and the server drops what it already has.
    pub fn resume_store(mut self, store: ResumeStore, manager: &Manager, every: u64) -> Self {
        self.resume = Some((store, manager.clone(), every.max(1)));
        self
    }

    /// Creates the stream if missing, subscribes to the bus's
    /// [`RawDispatch`]es and starts forwarding them.
    ///
    /// Subscribe before the shards open, or their first dispatches are
    /// not forwarded.
    ///
    /// # Errors
    ///
    /// [`NatsError::Prefix`] for a bad prefix; [`NatsError::Stream`] if the
    /// stream cannot be created or read.
    pub async fn start(self, bus: &TypeMux) -> Result<NatsBridge, NatsError> {
        check_prefix(&self.prefix)?;
        let stream_name = NatsBridge::stream_name(&self.prefix);
        self.js
            .get_or_create_stream(stream::Config {
                name: stream_name.clone(),
                description: Some("shardbus: gateway dispatches, by type and shard".into()),
                subjects: vec![format!("{}.evt.>", self.prefix)],
                duplicate_window: self.duplicate_window,
                max_age: self.max_age,
                storage: stream::StorageType::File,
                ..stream::Config::default()
            })
            .await
            .map_err(|e| NatsError::Stream {
                stream: stream_name,
                source: Box::new(e),
            })?;
        let events = bus.subscribe::<RawDispatch>();
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = watch::channel(false);
        let forwarder = Forwarder {
            js: self.js,
            prefix: self.prefix,
            events: self.events,
            in_flight: self.in_flight,
            counters: counters.clone(),
            pending: VecDeque::new(),
            resume: self.resume.map(|(store, manager, every)| Resume {
                store,
                manager,
                every,
                shards: HashMap::new(),
            }),
        };
        let task = tokio::spawn(forwarder.run(events, stopped));
        Ok(NatsBridge {
            counters,
            stop,
            task,
        })
    }
}

/// Forwards dispatches from a shard host's bus to JetStream; see the
/// [module docs](super).
///
/// Each dispatch of a chosen type becomes one message on
/// `<prefix>.evt.<EVENT_TYPE>.<shard>`: the payload is the dispatch's raw
/// `d`, the headers carry its type, shard, seq and session, and the
/// message id is `<shard>:<session_id>:<seq>`, so a dispatch replayed by a
/// resume within the duplicate window is stored once.
///
/// Lossless, like the bus: publishes are acknowledged in order, at most
/// [`in_flight`](BridgeBuilder::in_flight) at a time, and while the server
/// is unreachable the bridge retries with a capped backoff and the bus
/// waits, so the shards stop reading (their heartbeats go on). After a
/// failure every unacknowledged publish is sent again in order; the
/// message ids make the repeats harmless.
#[derive(Debug)]
pub struct NatsBridge {
    /// Shared with the task.
    counters: Arc<Counters>,
    /// Asks the task to finish.
    stop: watch::Sender<bool>,
    /// The task; ends with the final counts.
    task: JoinHandle<()>,
}

impl NatsBridge {
    /// A bridge publishing through `js`.
    pub fn builder(js: jetstream::Context) -> BridgeBuilder {
        BridgeBuilder {
            js,
            prefix: DEFAULT_PREFIX.to_owned(),
            events: None,
            in_flight: 256,
            duplicate_window: Duration::from_secs(120),
            max_age: Duration::from_secs(24 * 3600),
            resume: None,
        }
    }

    /// The stream of `prefix`: `<prefix>_events`.
    pub fn stream_name(prefix: &str) -> String {
        super::stream_name(prefix)
    }

    /// The subject of a dispatch: `<prefix>.evt.<event_type>.<shard>`.
    pub fn subject(prefix: &str, event_type: &str, shard: u32) -> String {
        super::event_subject(prefix, event_type, shard)
    }

    /// The message id of a dispatch: `<shard>:<session_id>:<seq>`.
    pub fn message_id(shard: u32, session: &SessionId, seq: u64) -> String {
        format!("{shard}:{}:{seq}", session.as_str())
    }

    /// What the bridge has done so far.
    pub fn stats(&self) -> BridgeStats {
        self.counters.snapshot()
    }

    /// Stops: forwards what the bus already holds for it, waits for every
    /// acknowledgement, saves the resume state, and returns the counts.
    /// Close the shards first (for a restart,
    /// [`Manager::close_resumable`]), so nothing is posted after.
    pub async fn close(self) -> BridgeStats {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the NATS bridge task failed");
        }
        self.counters.snapshot()
    }
}

/// One publish awaiting its acknowledgement.
struct Pending {
    /// What was published.
    raw: Arc<RawDispatch>,
    /// Its acknowledgement (`None` until it is published).
    ack: Option<AckFuture>,
}

/// Resume state tracking.
struct Resume {
    /// Where it goes.
    store: ResumeStore,
    /// Knows each shard's resume URL and the total.
    manager: Manager,
    /// Acknowledged dispatches per shard between saves.
    every: u64,
    /// Per shard: its state as acknowledged, and the dispatches since the
    /// last save.
    shards: HashMap<u32, (ResumeState, u64)>,
}

impl Resume {
    /// `raw` was acknowledged: its seq is safe.
    async fn acked(&mut self, raw: &RawDispatch, counters: &Counters) {
        let shard = raw.meta.shard.0;
        let fresh = self
            .shards
            .get(&shard)
            .is_none_or(|(state, _)| state.session_id != raw.session_id);
        if fresh {
            // A new session: its URL from the shard, if it still runs it.
            let Some(session) = self
                .manager
                .shard(shard)
                .and_then(|s| s.session())
                .filter(|s| s.session_id == raw.session_id)
            else {
                return;
            };
            let state = ResumeState::new(session, self.manager.num_shards());
            self.shards.insert(shard, (state, 0));
        }
        let Some((state, since)) = self.shards.get_mut(&shard) else {
            return;
        };
        state.seq = raw.meta.seq;
        *since += 1;
        if *since >= self.every {
            *since = 0;
            let state = state.clone();
            self.save(shard, &state, counters).await;
        }
    }

    /// Saves every shard's latest state.
    async fn save_all(&mut self, counters: &Counters) {
        let states: Vec<(u32, ResumeState)> = self
            .shards
            .iter_mut()
            .filter(|(_, (_, since))| *since > 0)
            .map(|(shard, (state, since))| {
                *since = 0;
                (*shard, state.clone())
            })
            .collect();
        for (shard, state) in states {
            self.save(shard, &state, counters).await;
        }
    }

    async fn save(&self, shard: u32, state: &ResumeState, counters: &Counters) {
        match self.store.save(shard, state).await {
            Ok(()) => {
                counters.saves.fetch_add(1, Ordering::Relaxed);
            }
            // The next save carries a later seq; a resume from an older
            // one replays more, and the server drops the repeats.
            Err(e) => tracing::warn!(shard, error = %e, "could not save the resume state"),
        }
    }
}

/// The bridge's task.
struct Forwarder {
    js: jetstream::Context,
    prefix: String,
    events: Option<BTreeSet<String>>,
    in_flight: usize,
    counters: Arc<Counters>,
    /// Published, not yet acknowledged, oldest first.
    pending: VecDeque<Pending>,
    resume: Option<Resume>,
}

impl Forwarder {
    async fn run(mut self, mut events: EventStream<RawDispatch>, mut stop: watch::Receiver<bool>) {
        let mut stopping = false;
        loop {
            if stopping {
                // What the bus already holds is forwarded too.
                while self.pending.len() < self.in_flight {
                    match events.try_recv() {
                        Ok(raw) => self.take(raw).await,
                        Err(_) => break,
                    }
                }
                if self.pending.is_empty() {
                    break;
                }
            }
            let room = self.pending.len() < self.in_flight;
            tokio::select! {
                biased;
                ack = front(&mut self.pending), if !self.pending.is_empty() => {
                    self.on_ack(ack).await;
                }
                changed = stop.changed(), if !stopping => {
                    stopping = changed.is_err() || *stop.borrow();
                }
                raw = events.recv(), if room && !stopping => match raw {
                    Some(raw) => self.take(raw).await,
                    None => stopping = true,
                },
            }
        }
        if let Some(resume) = &mut self.resume {
            resume.save_all(&self.counters).await;
        }
    }

    /// Publishes `raw` if it is of a chosen type.
    async fn take(&mut self, raw: Arc<RawDispatch>) {
        let event_type = raw.event_type.as_str();
        let chosen = self.events.as_ref().is_none_or(|e| e.contains(event_type));
        if !chosen || !is_token(event_type) {
            self.counters.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let ack = publish(&self.js, &self.prefix, &raw).await;
        self.pending.push_back(Pending { raw, ack });
    }

    /// The oldest publish was acknowledged, or failed.
    async fn on_ack(&mut self, ack: Result<PublishAck, PublishError>) {
        match ack {
            Ok(ack) => {
                let Some(done) = self.pending.pop_front() else {
                    return;
                };
                self.counters.published.fetch_add(1, Ordering::Relaxed);
                if ack.duplicate {
                    self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(resume) = &mut self.resume {
                    resume.acked(&done.raw, &self.counters).await;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, pending = self.pending.len(), "NATS publish failed: retrying");
                self.republish().await;
            }
        }
    }

    /// Sends every unacknowledged publish again, in order, after a backoff
    /// that grows while sends keep failing.
    async fn republish(&mut self) {
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(2))
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(2))).await;
            let mut all_sent = true;
            for i in 0..self.pending.len() {
                let raw = self.pending[i].raw.clone();
                let ack = publish(&self.js, &self.prefix, &raw).await;
                all_sent &= ack.is_some();
                self.pending[i].ack = ack;
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                if !all_sent {
                    break;
                }
            }
            if all_sent {
                return;
            }
        }
    }
}

/// Sends `raw`; its acknowledgement, or `None` if it could not be sent
/// (then it is sent again once the oldest failure's backoff is over).
async fn publish(js: &jetstream::Context, prefix: &str, raw: &RawDispatch) -> Option<AckFuture> {
    let shard = raw.meta.shard.0;
    let seq = raw.meta.seq.0;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::NATS_MESSAGE_ID,
        NatsBridge::message_id(shard, &raw.session_id, seq).as_str(),
    );
    headers.insert(HEADER_EVENT, raw.event_type.as_str());
    headers.insert(HEADER_SHARD, shard.to_string());
    headers.insert(HEADER_SEQ, seq.to_string());
    headers.insert(HEADER_SESSION, raw.session_id.as_str());
    let subject = NatsBridge::subject(prefix, raw.event_type.as_str(), shard);
    let payload = Bytes::copy_from_slice(raw.data.as_bytes());
    match js.publish_with_headers(subject, headers, payload).await {
        Ok(ack) => Some(ack.into_future()),
        Err(e) => {
            tracing::debug!(error = %e, "publish failed");
            None
        }
    }
}

/// The oldest publish's acknowledgement (an unsent one fails at once).
async fn front(pending: &mut VecDeque<Pending>) -> Result<PublishAck, PublishError> {
    match pending.front_mut().and_then(|p| p.ack.as_mut()) {
        Some(ack) => ack.await,
        None => Err(PublishError::new(
            async_nats::jetstream::context::PublishErrorKind::BrokenPipe,
        )),
    }
}

/// Whether `s` can be one subject token.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
