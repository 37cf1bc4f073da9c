//! Transport compression: what the `compress` query parameter asks for, and
//! the per-connection compressor that does it.
//!
//! A connection picks its [`Compression`] once, from the upgrade request's
//! query, and keeps one [`Compressor`] (one compression context) for its
//! whole life; a new connection, resuming or not, starts a fresh context, as
//! the client's decompressor does. Without compression every payload is one
//! text message. `zlib-stream` ([`zlib`]) sync-flushes every payload and may
//! split it over several binary messages; `zstd-stream` ([`zstd`]) flushes
//! every payload into exactly one binary message of a zstd frame that never
//! ends.
//!
//! Compressed payloads are copied out of a reused scratch buffer into an
//! arena they are split off, so a payload costs no allocation of its own.

use bytes::{Bytes, BytesMut};
use serde::Serialize;

mod zlib;
mod zstd;
mod zstd_decoder;

pub(crate) use zlib::{ZlibStream, split};
pub(crate) use zstd::ZstdStream;
pub use zstd_decoder::{ZstdDecodeError, ZstdDecoder};

/// The transport compression of one gateway connection, as its client asked
/// for it with the `compress` query parameter.
///
/// It serializes (in [`ConnectionLog`](crate::ConnectionLog) and
/// [`SimStats`](crate::SimStats)) as the query value: `"none"`,
/// `"zlib-stream"` or `"zstd-stream"`.
///
/// # Examples
///
/// ```
/// use shardbus_sim::Compression;
///
/// assert_eq!(Compression::ZstdStream.as_str(), "zstd-stream");
/// assert_eq!(Compression::default(), Compression::None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum Compression {
    /// No `compress` parameter: every payload is a text message.
    #[default]
    #[serde(rename = "none")]
    None,
    /// `compress=zlib-stream`.
    #[serde(rename = "zlib-stream")]
    ZlibStream,
    /// `compress=zstd-stream`.
    #[serde(rename = "zstd-stream")]
    ZstdStream,
}

impl Compression {
    /// Every mode, in the order
    /// [`SimStats::by_compression`](crate::SimStats::by_compression) lists them.
    pub(crate) const ALL: [Self; 3] = [Self::None, Self::ZlibStream, Self::ZstdStream];

    /// Its name: the `compress` query value, or `"none"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ZlibStream => "zlib-stream",
            Self::ZstdStream => "zstd-stream",
        }
    }

    /// The mode a `compress` query value asks for, if the sim supports it.
    pub(crate) fn from_query_value(value: &str) -> Option<Self> {
        match value {
            "zlib-stream" => Some(Self::ZlibStream),
            "zstd-stream" => Some(Self::ZstdStream),
            _ => None,
        }
    }

    /// Its position in [`Self::ALL`].
    pub(crate) const fn index(self) -> usize {
        match self {
            Self::None => 0,
            Self::ZlibStream => 1,
            Self::ZstdStream => 2,
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A compression failure: the context is unusable, so the connection is
/// closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CompressError {
    /// deflate failed.
    #[error("zlib compression failed")]
    Zlib(#[source] flate2::CompressError),
    /// zstd failed, with zstd's name for the error.
    #[error("zstd compression failed: {0}")]
    Zstd(&'static str),
    /// zstd could not allocate a compression context.
    #[error("could not create a zstd compression context")]
    ZstdContext,
}

/// The compressor of one connection, chosen at the handshake.
pub(crate) enum Compressor {
    /// Text messages, uncompressed.
    None,
    /// `zlib-stream`.
    Zlib(ZlibStream),
    /// `zstd-stream`.
    Zstd(ZstdStream),
}

impl Compressor {
    /// A fresh compression context for `compression`.
    pub(crate) fn new(compression: Compression) -> Result<Self, CompressError> {
        Ok(match compression {
            Compression::None => Self::None,
            Compression::ZlibStream => Self::Zlib(ZlibStream::new()),
            Compression::ZstdStream => Self::Zstd(ZstdStream::new()?),
        })
    }

    /// The mode it compresses with.
    pub(crate) fn compression(&self) -> Compression {
        match self {
            Self::None => Compression::None,
            Self::Zlib(_) => Compression::ZlibStream,
            Self::Zstd(_) => Compression::ZstdStream,
        }
    }
}

/// How much a compressor's output arena grows at a time.
const ARENA_CHUNK: usize = 64 * 1024;

/// Copy `data` to the end of `arena` and split it off as its own `Bytes`.
///
/// The arena reallocates only when its spare room is too small, so payloads
/// share allocations of [`ARENA_CHUNK`] bytes (a larger payload gets one of
/// its own size).
fn freeze_into(arena: &mut BytesMut, data: &[u8]) -> Bytes {
    if arena.capacity() - arena.len() < data.len() {
        arena.reserve(ARENA_CHUNK.max(data.len()));
    }
    arena.extend_from_slice(data);
    arena.split().freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_and_names_agree() {
        for c in Compression::ALL {
            assert_eq!(Compression::ALL[c.index()], c);
            let json = serde_json::to_string(&c).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            if c != Compression::None {
                assert_eq!(Compression::from_query_value(c.as_str()), Some(c));
            }
        }
        assert_eq!(Compression::from_query_value("none"), None);
        assert_eq!(Compression::from_query_value("zstd"), None);
    }

    #[test]
    fn frozen_payloads_share_the_arena() {
        let mut arena = BytesMut::new();
        let a = freeze_into(&mut arena, b"abc");
        let b = freeze_into(&mut arena, b"defg");
        assert_eq!((&a[..], &b[..]), (&b"abc"[..], &b"defg"[..]));
        // The second came out of the same allocation, right after the first.
        assert_eq!(a.as_ptr().wrapping_add(3), b.as_ptr());
        let big = vec![7u8; ARENA_CHUNK * 2];
        assert_eq!(freeze_into(&mut arena, &big), big);
    }
}
