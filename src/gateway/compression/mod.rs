//! Transport compression: one decompression context per connection.
//!
//! - `compress=zlib-stream` ([`zlib`]): the connection is one zlib stream;
//!   every payload ends with a sync flush (`00 00 ff ff`) and may arrive split
//!   across several websocket messages.
//! - `compress=zstd-stream` ([`zstd`], feature `zstd`): the connection is one
//!   zstd frame that never ends; each websocket message is one whole payload,
//!   flushed.
//!
//! Both inflate into one output buffer per connection, capped at the
//! configured payload limit: a payload over the limit is inflated and thrown
//! away, so the context stays in step with the server and the connection
//! goes on with the next payload.

// Compiled without feature `gateway` for its public types; the rest
// serves the connection.
#![cfg_attr(not(feature = "gateway"), allow(dead_code))]

mod zlib;
#[cfg(feature = "zstd")]
mod zstd;

/// Which transport compression a shard asks the gateway for.
///
/// The default is [`Compression::ZlibStream`]: it keeps an idle shard's
/// decompression state to zlib's 32 KiB window, where zstd-stream keeps
/// Discord's 256 KiB window plus the decoder's own buffers (see the README's
/// benchmark table for both, in bytes and in events/s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// No transport compression: every payload is a text message.
    None,
    /// `compress=zlib-stream`.
    #[default]
    ZlibStream,
    /// `compress=zstd-stream` (feature `zstd`).
    #[cfg(feature = "zstd")]
    ZstdStream,
}

impl Compression {
    /// The value of the gateway URL's `compress` parameter, if any.
    pub fn query_value(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::ZlibStream => Some("zlib-stream"),
            #[cfg(feature = "zstd")]
            Self::ZstdStream => Some("zstd-stream"),
        }
    }

    /// Bytes the websocket reads per call. It stays allocated for the
    /// connection's life, so it is most of an idle shard's memory after
    /// the inflate window. Compressed frames are about a tenth of the
    /// payload, so 4 KiB of them carry as many events per read as 16 KiB
    /// of JSON.
    pub(crate) fn read_buffer_size(self) -> usize {
        match self {
            Self::None => 16 * 1024,
            _ => 4 * 1024,
        }
    }
}

/// Why compressed data could not be inflated. The connection's context is
/// unusable afterwards: the shard reconnects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompressionError {
    /// The data is not a valid stream of the negotiated compression.
    #[error("invalid {stream} data")]
    Corrupt {
        /// `zlib-stream` or `zstd-stream`.
        stream: &'static str,
        /// The decoder's reason.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What one message completed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inflated<'a> {
    /// A whole payload.
    Payload(&'a [u8]),
    /// Part of a payload; more messages follow.
    Partial,
    /// A payload larger than the limit, skipped; the stream goes on.
    TooLarge {
        /// Its inflated size.
        len: usize,
    },
}

/// A connection's decompression context.
#[derive(Debug)]
pub(crate) enum Decompressor {
    /// `zlib-stream`.
    Zlib(zlib::Inflater),
    /// `zstd-stream`.
    #[cfg(feature = "zstd")]
    Zstd(zstd::ZstdStream),
}

impl Decompressor {
    /// A fresh context for `compression`, accepting payloads up to `limit`
    /// bytes; `None` without compression.
    pub(crate) fn new(compression: Compression, limit: usize) -> Option<Self> {
        match compression {
            Compression::None => None,
            Compression::ZlibStream => Some(Self::Zlib(zlib::Inflater::new(limit))),
            #[cfg(feature = "zstd")]
            Compression::ZstdStream => Some(Self::Zstd(zstd::ZstdStream::new(limit))),
        }
    }

    /// Feeds one binary websocket message.
    ///
    /// # Errors
    ///
    /// [`CompressionError`] for corrupt data.
    pub(crate) fn push(&mut self, message: &[u8]) -> Result<Inflated<'_>, CompressionError> {
        match self {
            Self::Zlib(z) => z.push(message),
            #[cfg(feature = "zstd")]
            Self::Zstd(z) => z.push(message),
        }
    }

    /// Frees the output buffer (an idle connection keeps only its context).
    pub(crate) fn trim(&mut self) {
        match self {
            Self::Zlib(z) => z.out.trim(),
            #[cfg(feature = "zstd")]
            Self::Zstd(z) => z.out.trim(),
        }
    }
}

/// Output is inflated in steps of at least this many bytes...
const MIN_STEP: usize = 1024;
/// ...and at most this many.
const MAX_STEP: usize = 32 * 1024;

/// The output buffer of one connection, capped at the payload limit.
#[derive(Debug)]
pub(crate) struct Output {
    /// The payload being inflated, or the last one.
    buf: Vec<u8>,
    /// Whether `buf` holds a payload returned earlier (cleared on the next
    /// message).
    done: bool,
    /// Bytes of the current payload thrown away past the limit.
    discarded: usize,
    /// The largest payload accepted.
    limit: usize,
}

impl Output {
    /// An empty buffer for payloads up to `limit` bytes.
    fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            done: false,
            discarded: 0,
            limit,
        }
    }

    /// Starts on a message: forgets the payload returned before.
    fn start(&mut self) {
        if self.done {
            self.buf.clear();
            self.done = false;
        }
    }

    /// The buffer, with room for at least `want` more bytes (clamped to a
    /// sane step).
    fn room(&mut self, want: usize) -> &mut Vec<u8> {
        let want = want.clamp(MIN_STEP, MAX_STEP);
        if self.buf.capacity() - self.buf.len() < want {
            self.buf.reserve(want);
        }
        &mut self.buf
    }

    /// Whether the last step left spare room (the decoder had nothing more to
    /// give for its input).
    fn has_room(&self) -> bool {
        self.buf.len() < self.buf.capacity()
    }

    /// After a step: what passed the limit is counted and dropped.
    fn settle(&mut self) {
        if self.buf.len() > self.limit {
            self.discarded = self.discarded.saturating_add(self.buf.len() - self.limit);
            self.buf.truncate(self.limit);
        }
    }

    /// Ends the payload.
    fn finish(&mut self) -> Inflated<'_> {
        self.done = true;
        if self.discarded > 0 {
            let len = self.buf.len().saturating_add(self.discarded);
            self.discarded = 0;
            self.buf.clear();
            return Inflated::TooLarge { len };
        }
        Inflated::Payload(&self.buf)
    }

    /// Frees the buffer between payloads.
    fn trim(&mut self) {
        if self.done || self.buf.is_empty() {
            self.buf = Vec::new();
            self.done = false;
        }
    }
}
