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

mod bridge;
mod identify;
mod resume;

pub use bridge::{BridgeBuilder, BridgeStats, NatsBridge};
pub use identify::NatsIdentifyQueue;
pub use resume::{RESUME_TTL, ResumeState, ResumeStore};

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
    /// The prefix is not a valid subject token or stream name.
    #[error("invalid prefix {0:?}: use letters, digits, '-' and '_'")]
    Prefix(String),
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
