//! The shard's task: connections one after another, and the waits between
//! them.
//!
//! The runner opens a connection, lets [`connection`](super::connection)
//! run it until it ends, delivers every event already read, asks
//! [`decide`](super::decide::decide) what the end means, posts the stages,
//! and waits (reconnect backoff, or the 1–5 s the gateway asks for after
//! op 9 `false`) while still answering close and reconnect requests.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep;

use super::close::CloseCode;
use super::config::GatewayConfig;
use super::decide::{Cause, Next, decide};
use super::error::{GatewayError, GatewayErrorKind};
use super::registry::PostFuture;
use super::shard::{Control, Counters, ShardState};
use super::stage::{ShardStage, Stage};
use crate::bus::TypeMux;
use crate::model::Seq;

pub(crate) use super::config::ResumeInfo;
use crate::sync::lock;

/// How one connection ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// It ended for `cause`; the runner decides what comes next.
    Ended {
        /// Why.
        cause: Cause,
        /// The close code, if there was a close frame (or we sent one).
        code: Option<CloseCode>,
        /// The error to report for it, if any (reported as fatal when the
        /// decision is to stop).
        error: Option<GatewayErrorKind>,
    },
    /// A handle asked the shard to stop (or every handle is gone).
    Shutdown {
        /// Told once the shard has stopped.
        done: Option<oneshot::Sender<()>>,
        /// The close code sent.
        code: CloseCode,
    },
    /// The bus stopped: nobody can receive events any more.
    BusStopped,
}

impl Outcome {
    /// An end with no close frame.
    pub(crate) fn ended(cause: Cause, error: Option<GatewayErrorKind>) -> Self {
        Self::Ended {
            cause,
            code: None,
            error,
        }
    }
}

/// The shard's loop and its state across connections.
pub(crate) struct Runner {
    /// How to connect.
    pub(crate) config: GatewayConfig,
    /// Where events go.
    pub(crate) bus: TypeMux,
    /// User commands from handles.
    pub(crate) commands: mpsc::Receiver<String>,
    /// Lifecycle requests from handles.
    pub(crate) control: mpsc::Receiver<Control>,
    /// Shared with handles.
    pub(crate) state: Arc<ShardState>,
    /// The session to resume, if any.
    pub(crate) session: Option<ResumeInfo>,
    /// Posts read from the socket and not yet delivered, oldest first.
    pub(crate) posts: VecDeque<PostFuture>,
    /// A user command waiting for its rate-limit slot; kept across
    /// connections.
    pub(crate) held: Option<String>,
    /// The shard's metric handles, resolved when it was spawned.
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::metrics::ShardMetrics,
}

/// What a wait between connections ended with.
enum Woken {
    /// The wait is over (or a reconnect was asked for): connect.
    Connect,
    /// A handle asked the shard to stop.
    Stop(Option<oneshot::Sender<()>>),
}

impl Runner {
    pub(crate) fn new(
        config: GatewayConfig,
        bus: TypeMux,
        commands: mpsc::Receiver<String>,
        control: mpsc::Receiver<Control>,
        state: Arc<ShardState>,
    ) -> Self {
        let session = config.resume.clone();
        Self {
            session,
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::ShardMetrics::of(config.shard.0),
            config,
            bus,
            commands,
            control,
            state,
            posts: VecDeque::new(),
            held: None,
        }
    }

    pub(crate) async fn run(mut self) -> Result<(), Arc<GatewayError>> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500).min(self.config.backoff_max))
            .with_max_delay(self.config.backoff_max)
            .with_jitter()
            .without_max_times();
        let mut delays = backoff.build();
        let mut failures = 0u32;
        let mut wait = Duration::ZERO;
        let mut opened = false;
        loop {
            if !wait.is_zero() {
                tracing::info!(?wait, failures, "reconnecting after a wait");
                if let Woken::Stop(done) = self.pause(wait).await {
                    self.set_stage(Stage::Stopped);
                    return self.stop(done, Ok(())).await;
                }
            }
            if opened {
                Counters::add(&self.state.counters.reconnects, 1);
                #[cfg(feature = "metrics")]
                self.metrics.reconnects.increment(1);
            }
            opened = true;
            let (outcome, established) = self.connection().await;
            let (cause, code, error) = match outcome {
                Outcome::BusStopped => return self.shut_down(None, None).await,
                Outcome::Shutdown { done, code } => {
                    return self.shut_down(done, Some(code)).await;
                }
                Outcome::Ended { cause, code, error } => (cause, code, error),
            };
            if established {
                failures = 0;
                delays = backoff.build();
            } else if cause != Cause::Requested {
                failures = failures.saturating_add(1);
            }
            let next = decide(cause, self.session.is_some());
            let fatal = next == Next::Fatal;
            let reported = error.map(|kind| self.report(kind, fatal));
            if cause == Cause::TooLarge {
                // Resume after the payload that could not be read, or the
                // server replays it and it fails again.
                if let Some(session) = self.session.as_mut() {
                    session.seq = Seq(session.seq.0 + 1);
                }
            }
            self.set_stage(Stage::Disconnected {
                code,
                will_resume: next == Next::Resume,
            });
            // Deliver what was read before reconnecting: a resume starts
            // after the last sequence number, so these must not be lost.
            if self.drain_posts().await {
                self.set_stage(Stage::Stopped);
                return self.stop(None, Ok(())).await;
            }
            wait = Duration::ZERO;
            match next {
                Next::Fatal => {
                    self.set_stage(Stage::Stopped);
                    let error = reported.unwrap_or_else(|| {
                        self.report(GatewayErrorKind::Websocket("fatal end".into()), true)
                    });
                    return self.stop(None, Err(error)).await;
                }
                Next::NewSession { wait: pause } => {
                    self.set_session(None);
                    if pause {
                        // The gateway asks for a random 1–5 s before the
                        // next identify.
                        wait = Duration::from_millis(1000 + fastrand::u64(0..4000));
                    }
                }
                Next::Resume => {}
            }
            if failures > 0 {
                wait = wait.max(delays.next().unwrap_or(self.config.backoff_max));
            }
        }
    }

    /// Replaces the session, and what handles see of it.
    pub(crate) fn set_session(&mut self, session: Option<ResumeInfo>) {
        if let Some(s) = &session {
            self.state
                .seq
                .store(s.seq.0, std::sync::atomic::Ordering::Relaxed);
        }
        *lock(&self.state.session) = session.clone();
        self.session = session;
    }

    /// Waits `wait` between connections, answering control requests.
    async fn pause(&mut self, wait: Duration) -> Woken {
        tokio::select! {
            biased;
            control = self.control.recv() => match control {
                Some(Control::Close(_, done)) => Woken::Stop(Some(done)),
                None => Woken::Stop(None),
                Some(Control::Reconnect) => Woken::Connect,
            },
            () = sleep(wait) => Woken::Connect,
        }
    }

    /// Posts the end of a connection closed on request and stops.
    async fn shut_down(
        mut self,
        done: Option<oneshot::Sender<()>>,
        code: Option<CloseCode>,
    ) -> Result<(), Arc<GatewayError>> {
        self.set_stage(Stage::Disconnected {
            code,
            will_resume: false,
        });
        self.set_stage(Stage::Stopped);
        self.stop(done, Ok(())).await
    }

    /// Delivers what is left and returns the shard's result.
    async fn stop(
        mut self,
        done: Option<oneshot::Sender<()>>,
        result: Result<(), Arc<GatewayError>>,
    ) -> Result<(), Arc<GatewayError>> {
        self.drain_posts().await;
        if let Some(done) = done {
            let _ = done.send(());
        }
        result
    }

    /// Awaits every undelivered post; `true` if the bus has stopped.
    async fn drain_posts(&mut self) -> bool {
        let mut bus_stopped = false;
        while let Some(post) = self.posts.pop_front() {
            bus_stopped |= post.await.is_err();
        }
        bus_stopped
    }

    /// Records and posts a new stage.
    pub(crate) fn set_stage(&mut self, stage: Stage) {
        self.state.stage.send_replace(stage);
        #[cfg(feature = "metrics")]
        self.metrics.stage.set(stage_code(stage));
        let event = ShardStage {
            shard: self.config.shard,
            stage,
        };
        let bus = self.bus.clone();
        self.posts
            .push_back(Box::pin(async move { bus.post(event).await }));
    }

    /// Reports an error on the bus and in the shard state.
    pub(crate) fn report(&mut self, kind: GatewayErrorKind, fatal: bool) -> Arc<GatewayError> {
        let error = Arc::new(GatewayError {
            shard: self.config.shard,
            fatal,
            kind,
        });
        if fatal {
            tracing::error!(%error, "shard stopping");
        } else {
            tracing::warn!(%error);
        }
        *lock(&self.state.last_error) = Some(error.clone());
        let bus = self.bus.clone();
        let posted = error.clone();
        self.posts
            .push_back(Box::pin(async move { bus.post_arc(posted).await }));
        error
    }
}

/// The code of `stage` in the `shardbus_shard_stage` gauge (the table in
/// `crate::metrics`).
#[cfg(feature = "metrics")]
fn stage_code(stage: Stage) -> f64 {
    match stage {
        Stage::Queued => 0.0,
        Stage::Connecting => 1.0,
        Stage::Identifying => 2.0,
        Stage::Resuming => 3.0,
        Stage::Connected => 4.0,
        Stage::Disconnected { .. } => 5.0,
        Stage::Stopped => 6.0,
    }
}
