//! Beyond one machine: events, identifies and resume state over NATS
//! JetStream (feature `nats`).
//!
//! - [`NatsBridge`] runs on a shard host. It forwards the dispatches of
//!   chosen types from the local bus to a JetStream stream, one subject
//!   per type and shard (`<prefix>.evt.<EVENT_TYPE>.<shard>`), with the
//!   dispatch's `d` as the payload, byte for byte. Each message's id is
//!   `<shard>:<session_id>:<seq>`, so when a resume replays a dispatch the
//!   server drops the copy. It keeps every shard's resume state in a
//!   [`ResumeStore`], saving only what the server has acknowledged.
//! - [`NatsBus`] runs on a worker. It gives the same typed streams,
//!   handlers and plugins as a shard host's bus, fed from the stream
//!   through one durable consumer per shard; the workers of one service
//!   share the shards between them, and an event is acknowledged once its
//!   handlers succeeded (at least once, with redeliveries marked and a
//!   [`DeadLetter`] at the end).
//! - [`ShardCommands`] sends presence updates, member requests and voice
//!   states to a shard from anywhere, over request/reply on
//!   `<prefix>.cmd.<shard>`; the [`CommandServer`] of the host that runs
//!   the shard sends it and answers.
//! - [`NatsIdentifyQueue`] paces identifies across every host of a bot:
//!   one lease per rate-limit bucket in a key-value bucket, and the shared
//!   daily budget of session starts.
//! - [`ResumeStore`] keeps `session_id`, `seq`, `resume_gateway_url` and
//!   the shard total per shard in a key-value bucket. A restarted host
//!   resumes its shards from it instead of identifying.
//!
//! The stream and the buckets are created on first use, named after the
//! prefix (`shardbus` by default): stream `shardbus_events`, bucket
//! `shardbus_resume`, bucket `shardbus_identify`.

mod command;
mod identify;
#[cfg(feature = "gateway")]
mod publish;
mod resume;
mod worker;

#[cfg(feature = "gateway")]
pub use command::CommandServer;
pub use command::{CommandSendError, ShardCommand, ShardCommands, command_subject};
pub use identify::NatsIdentifyQueue;
#[cfg(feature = "gateway")]
pub use publish::{BridgeBuilder, BridgeStats, NatsBridge};
pub use resume::{RESUME_TTL, ResumeState, ResumeStore};
pub use worker::{DeadLetter, NatsBus, NatsBusBuilder, WorkerStats};

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use async_nats::{HeaderMap, header};
use bytes::Bytes;

use crate::bus::BoxError;

/// The subject prefix, stream and bucket names when none is given.
pub const DEFAULT_PREFIX: &str = "shardbus";

/// Header: the dispatch type (`t`).
pub const HEADER_EVENT: &str = "Shardbus-Event";
/// Header: the shard id.
pub const HEADER_SHARD: &str = "Shardbus-Shard";
/// Header: the dispatch's sequence number (`s`).
pub const HEADER_SEQ: &str = "Shardbus-Seq";
/// Header: the gateway session the dispatch came in.
pub const HEADER_SESSION: &str = "Shardbus-Session";

/// Why a NATS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The stream could not be created or read.
    #[error("stream {stream}: {source}")]
    Stream {
        /// The stream's name.
        stream: String,
        /// Why.
        source: BoxError,
    },
    /// A key-value bucket could not be created or used.
    #[error("key-value bucket {bucket}: {source}")]
    KeyValue {
        /// The bucket's name.
        bucket: String,
        /// Why.
        source: BoxError,
    },
    /// A stored value could not be encoded or decoded.
    #[error("stored value for {key}: {source}")]
    Value {
        /// Its key.
        key: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A subject could not be subscribed to.
    #[error("subscribe to {subject}: {source}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        source: BoxError,
    },
    /// The bus given to a [`NatsBus`] already feeds another one that is
    /// still running: a bus's handlers can report to one worker only.
    #[error("the bus already feeds another NatsBus")]
    BusTaken,
    /// The prefix is not a valid subject token or stream name.
    #[error("invalid prefix {0:?}: use letters, digits, '-' and '_'")]
    Prefix(String),
}

/// The key-value bucket `bucket`, created with `description` and one
/// value per key if missing; `ttls` enables per-key TTLs (NATS 2.11), and
/// `max_age` expires every entry (zero: never).
async fn key_value(
    js: &jetstream::Context,
    bucket: &str,
    description: &str,
    ttls: bool,
    max_age: Duration,
) -> Result<kv::Store, NatsError> {
    if let Ok(kv) = js.get_key_value(bucket).await {
        return Ok(kv);
    }
    js.create_key_value(kv::Config {
        bucket: bucket.to_owned(),
        description: description.to_owned(),
        history: 1,
        max_age,
        limit_markers: ttls.then_some(Duration::from_secs(1)),
        ..kv::Config::default()
    })
    .await
    .map_err(|e| NatsError::KeyValue {
        bucket: bucket.to_owned(),
        source: Box::new(e),
    })
}

/// Writes `value` under `key` of `bucket` with a TTL of `ttl` (in whole
/// seconds, rounded up, at least one), if the key is at revision
/// `expected` (when given); the new revision, or `None` if it was not
/// written.
async fn put_with_ttl(
    js: &jetstream::Context,
    bucket: &str,
    key: &str,
    value: Bytes,
    expected: Option<u64>,
    ttl: Duration,
) -> Option<u64> {
    let mut headers = HeaderMap::new();
    if let Some(revision) = expected {
        headers.insert(
            header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            revision.to_string(),
        );
    }
    headers.insert(
        header::NATS_MESSAGE_TTL,
        ceil_secs(ttl).as_secs().to_string(),
    );
    let ack = js
        .publish_with_headers(format!("$KV.{bucket}.{key}"), headers, value)
        .await
        .ok()?;
    ack.await.ok().map(|ack| ack.sequence)
}

/// Why [`create_with_ttl`] did not create a key.
#[derive(Debug)]
enum CreateFailed {
    /// The key holds a value, or changed while it was being created: it
    /// is someone else's.
    Taken,
    /// The key could not be read.
    Failed(kv::EntryError),
}

/// Creates `key` in `kv` (the bucket `bucket`) holding `value`, with a TTL
/// of `ttl`, if the key is absent or deleted; the new revision.
///
/// Not `kv::Store::create_with_ttl`: when the key holds a delete or purge
/// marker (every released lease leaves one), async-nats 0.52 rewrites it
/// with a plain `update`, without the TTL header, and a lease made that way
/// would never expire. Here the marker is replaced through
/// [`put_with_ttl`] at the marker's revision, so the TTL always holds.
async fn create_with_ttl(
    js: &jetstream::Context,
    kv: &kv::Store,
    bucket: &str,
    key: &str,
    value: Bytes,
    ttl: Duration,
) -> Result<u64, CreateFailed> {
    // Revision 0: only if the key has never been written (or has expired
    // without a marker left).
    if let Some(revision) = put_with_ttl(js, bucket, key, value.clone(), Some(0), ttl).await {
        return Ok(revision);
    }
    match kv.entry(key).await.map_err(CreateFailed::Failed)? {
        Some(entry)
            if matches!(
                entry.operation,
                kv::Operation::Delete | kv::Operation::Purge
            ) =>
        {
            put_with_ttl(js, bucket, key, value, Some(entry.revision), ttl)
                .await
                .ok_or(CreateFailed::Taken)
        }
        // Someone's value; or nothing, when a marker expired in between
        // (the next attempt creates it).
        Some(_) | None => Err(CreateFailed::Taken),
    }
}

/// `d` rounded up to whole seconds, at least one (TTLs are whole seconds).
fn ceil_secs(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    Duration::from_secs(secs.max(1))
}

/// The stream of `prefix`: `<prefix>_events`.
pub fn stream_name(prefix: &str) -> String {
    format!("{prefix}_events")
}

/// The subject of a dispatch: `<prefix>.evt.<event_type>.<shard>`.
pub fn event_subject(prefix: &str, event_type: &str, shard: u32) -> String {
    format!("{prefix}.evt.{event_type}.{shard}")
}

/// Checks `prefix` can name subjects, a stream and buckets.
fn check_prefix(prefix: &str) -> Result<(), NatsError> {
    let ok = !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(NatsError::Prefix(prefix.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds() {
        assert_eq!(
            ceil_secs(Duration::from_millis(5250)),
            Duration::from_secs(6)
        );
        assert_eq!(ceil_secs(Duration::from_secs(5)), Duration::from_secs(5));
        assert_eq!(
            ceil_secs(Duration::from_millis(100)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn prefixes_are_single_tokens() {
        assert!(check_prefix("shardbus").is_ok());
        assert!(check_prefix("my-bot_2").is_ok());
        for bad in ["", "a.b", "a b", "a*", "a>"] {
            assert!(
                matches!(check_prefix(bad), Err(NatsError::Prefix(_))),
                "{bad:?}"
            );
        }
    }
}
