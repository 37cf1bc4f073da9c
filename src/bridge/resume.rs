//! Resume state per shard in a JetStream key-value bucket, so a restarted
//! host resumes its shards instead of identifying them.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{NatsError, check_prefix, key_value};
use crate::gateway::ResumeInfo;
use crate::model::{Seq, SessionId};

/// How long a saved session is kept by default: Discord does not say how
/// long a session stays resumable; past a few minutes a resume is likely
/// refused, and the shard identifies anyway.
pub const RESUME_TTL: Duration = Duration::from_secs(10 * 60);

/// What is kept for one shard: enough to resume its session, and the
/// shard total it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeState {
    /// The session's id.
    pub session_id: SessionId,
    /// The last sequence number safely handled: a resume replays what
    /// follows.
    pub seq: Seq,
    /// Where to resume (`resume_gateway_url`).
    pub resume_url: String,
    /// The shard total of the session; an entry for another total is
    /// stale.
    pub total: u32,
}

impl ResumeState {
    /// The state of `session` in a set of `total` shards.
    pub fn new(session: ResumeInfo, total: u32) -> Self {
        Self {
            session_id: session.session_id,
            seq: session.seq,
            resume_url: session.resume_url,
            total,
        }
    }

    /// What [`GatewayConfig::resume`](crate::gateway::GatewayConfig::resume) takes.
    pub fn info(&self) -> ResumeInfo {
        ResumeInfo {
            session_id: self.session_id.clone(),
            resume_url: self.resume_url.clone(),
            seq: self.seq,
        }
    }
}

/// Shards' resume state in the key-value bucket `<prefix>_resume`, one key
/// per shard (`shard.<id>`), expiring [`RESUME_TTL`] after it was saved.
///
/// # Trust
///
/// A shard resuming from an entry connects to its `resume_url` and sends
/// the bot's token there (in the Resume). So whoever can write this
/// bucket can make a host hand the token to a websocket server of their
/// choosing: give write access to `<prefix>_resume` (the subjects
/// `$KV.<prefix>_resume.>`) to the bot's own hosts only, through NATS
/// account permissions. As a last line, an entry whose URL is not a `ws` or
/// `wss` URL ([`ResumeInfo::check_url`]) is never loaded (it is removed,
/// and the shard identifies), and a shard given one identifies instead;
/// nothing checks that the host is Discord's.
///
/// ```no_run
/// use shardbus::gateway::{GatewayConfig, Intents};
/// use shardbus::bridge::ResumeStore;
/// use shardbus::shard::Manager;
///
/// # async fn run(js: async_nats::jetstream::Context) -> Result<(), Box<dyn std::error::Error>> {
/// let store = ResumeStore::open(&js, "shardbus").await?;
/// // What the last run of shards 0..2 of 4 saved, for the same total.
/// let kept = store.load_range(0..2, 4).await?;
/// let manager = Manager::builder(GatewayConfig::new("token", Intents::GUILDS).shard(0, 4))
///     .range(0..2)
///     .new_shard(ResumeStore::resume_hook(kept))
///     .build();
/// manager.open().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ResumeStore {
    /// The bucket.
    kv: kv::Store,
    /// Its name.
    bucket: String,
}

impl std::fmt::Debug for ResumeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeStore")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl ResumeStore {
    /// The bucket of `prefix`, created if missing, keeping entries for
    /// [`RESUME_TTL`].
    ///
    /// # Errors
    ///
    /// [`NatsError::Prefix`] for a bad prefix; [`NatsError::KeyValue`] if
    /// the bucket cannot be created.
    pub async fn open(js: &jetstream::Context, prefix: &str) -> Result<Self, NatsError> {
        Self::open_with_ttl(js, prefix, RESUME_TTL).await
    }

    /// [`open`](Self::open), keeping entries for `ttl` (for a bucket that
    /// already exists, its own setting stays).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub async fn open_with_ttl(
        js: &jetstream::Context,
        prefix: &str,
        ttl: Duration,
    ) -> Result<Self, NatsError> {
        check_prefix(prefix)?;
        let bucket = format!("{prefix}_resume");
        let kv = key_value(
            js,
            &bucket,
            "shardbus: gateway sessions to resume, per shard",
            false,
            ttl,
        )
        .await?;
        Ok(Self { kv, bucket })
    }

    /// The key of `shard`.
    fn key(shard: u32) -> String {
        format!("shard.{shard}")
    }

    /// Saves `state` for `shard`.
    ///
    /// # Errors
    ///
    /// [`NatsError::KeyValue`] if the server did not store it.
    pub async fn save(&self, shard: u32, state: &ResumeState) -> Result<(), NatsError> {
        let key = Self::key(shard);
        let value = serde_json::to_vec(state).map_err(|e| NatsError::Value {
            key: key.clone(),
            source: e,
        })?;
        self.kv
            .put(&key, Bytes::from(value))
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    /// The state saved for `shard` if it belongs to a set of `total`
    /// shards; an entry for another total, or whose resume URL is not a
    /// websocket URL, is removed and `None` returned.
    ///
    /// # Errors
    ///
    /// [`NatsError::KeyValue`] if the bucket cannot be read. An entry that
    /// does not decode is not an error: it is removed, and `None` returned.
    pub async fn load(&self, shard: u32, total: u32) -> Result<Option<ResumeState>, NatsError> {
        let key = Self::key(shard);
        let Some(value) = self.kv.get(&key).await.map_err(|e| self.failed(e))? else {
            return Ok(None);
        };
        match serde_json::from_slice::<ResumeState>(&value) {
            Ok(state) if state.total == total => match state.info().check_url() {
                Ok(()) => Ok(Some(state)),
                Err(e) => {
                    tracing::warn!(
                        shard,
                        error = %e,
                        "a saved session's resume URL is not a websocket URL: identifying"
                    );
                    self.remove(shard).await?;
                    Ok(None)
                }
            },
            Ok(state) => {
                tracing::info!(
                    shard,
                    saved_total = state.total,
                    total,
                    "a saved session is for another shard total: identifying"
                );
                self.remove(shard).await?;
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(shard, error = %e, "a saved session does not decode: identifying");
                self.remove(shard).await?;
                Ok(None)
            }
        }
    }

    /// The sessions saved for the shards of `range` in a set of `total`.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub async fn load_range(
        &self,
        range: Range<u32>,
        total: u32,
    ) -> Result<HashMap<u32, ResumeInfo>, NatsError> {
        let mut kept = HashMap::new();
        for shard in range {
            if let Some(state) = self.load(shard, total).await? {
                kept.insert(shard, state.info());
            }
        }
        Ok(kept)
    }

    /// Forgets `shard`'s session.
    ///
    /// # Errors
    ///
    /// [`NatsError::KeyValue`] if the server did not take it.
    pub async fn remove(&self, shard: u32) -> Result<(), NatsError> {
        self.kv
            .delete(Self::key(shard))
            .await
            .map_err(|e| self.failed(e))
    }

    #[cfg(feature = "gateway")]
    /// A [`new_shard`](crate::shard::ManagerBuilder::new_shard) hook that
    /// starts each shard of `kept` by resuming its session. Each session is
    /// used once: a shard set made later (a rescale) identifies.
    pub fn resume_hook(
        kept: HashMap<u32, ResumeInfo>,
    ) -> impl Fn(
        &crate::shard::Manager,
        crate::gateway::GatewayConfig,
    ) -> crate::gateway::GatewayConfig
    + Send
    + Sync
    + 'static {
        use std::sync::{Arc, Mutex};

        use crate::sync::lock;
        let kept = Arc::new(Mutex::new(kept));
        move |_, config| match lock(&kept).remove(&config.shard_id().0) {
            Some(session) => config.resume(session),
            None => config,
        }
    }

    /// The error for a failed bucket operation.
    fn failed(&self, e: impl std::error::Error + Send + Sync + 'static) -> NatsError {
        NatsError::KeyValue {
            bucket: self.bucket.clone(),
            source: Box::new(e),
        }
    }
}
