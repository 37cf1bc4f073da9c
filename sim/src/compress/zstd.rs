//! `compress=zstd-stream` transport compression.
//!
//! One zstd compression context per connection, and the connection's whole
//! output is one zstd frame that never ends (no `ZSTD_e_end`). Every gateway
//! payload is compressed and flushed (`ZSTD_e_flush`), so the client can
//! decode all of it from the bytes sent so far, and goes out as exactly one
//! binary websocket message, never split. A payload larger than zstd's
//! 128 KiB block size spans several blocks of that one message.
//!
//! The frame header comes with the first payload (Hello), as in Discord's
//! streams: the magic `28 b5 2f fd`, the frame header descriptor `00` (no
//! content size, no checksum, no dictionary, not single-segment) and the
//! window descriptor `40` (windowLog 18: a 256 KiB window). Level 1, the
//! fastest of the regular levels.

use bytes::{Bytes, BytesMut};
use zstd_safe::zstd_sys::ZSTD_EndDirective;
use zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer};

use super::{CompressError, freeze_into};

/// The four bytes a zstd frame starts with.
#[cfg(test)]
pub(crate) const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The compression level.
const LEVEL: i32 = 1;

/// The window size as a power of two (256 KiB, as Discord's frames ask).
const WINDOW_LOG: u32 = 18;

/// Room for block headers and the flush beyond [`zstd_safe::compress_bound`]
/// (which counts a whole frame, not a flush in the middle of one).
const FLUSH_SLACK: usize = 64;

/// The compressor of one connection.
pub(crate) struct ZstdStream {
    /// The connection's single compression context.
    context: CCtx<'static>,
    /// Scratch output, reused between payloads.
    scratch: Vec<u8>,
    /// Frozen payloads are split off this buffer, so allocation is per
    /// arena chunk, not per payload.
    arena: BytesMut,
}

/// zstd's error code as a [`CompressError`].
fn zstd_error(code: usize) -> CompressError {
    CompressError::Zstd(zstd_safe::get_error_name(code))
}

impl ZstdStream {
    /// A fresh context with Discord's frame parameters.
    pub(crate) fn new() -> Result<Self, CompressError> {
        let mut context = CCtx::try_create().ok_or(CompressError::ZstdContext)?;
        for parameter in [
            CParameter::CompressionLevel(LEVEL),
            CParameter::WindowLog(WINDOW_LOG),
            CParameter::ContentSizeFlag(false),
            CParameter::ChecksumFlag(false),
        ] {
            context.set_parameter(parameter).map_err(zstd_error)?;
        }
        Ok(Self {
            context,
            scratch: Vec::with_capacity(4096),
            arena: BytesMut::new(),
        })
    }

    /// Compress `input` and flush: the result decodes to exactly `input`
    /// after everything this context produced before it.
    pub(crate) fn compress(&mut self, input: &[u8]) -> Result<Bytes, CompressError> {
        self.scratch.clear();
        // Usually enough for one call; the loop copes if it is not.
        self.scratch
            .reserve(zstd_safe::compress_bound(input.len()) + FLUSH_SLACK);
        let mut src = InBuffer::around(input);
        loop {
            if self.scratch.len() == self.scratch.capacity() {
                self.scratch.reserve(self.scratch.capacity().max(64));
            }
            let before = (src.pos, self.scratch.len());
            let left = {
                let pos = self.scratch.len();
                let mut out = OutBuffer::around_pos(&mut self.scratch, pos);
                self.context
                    .compress_stream2(&mut out, &mut src, ZSTD_EndDirective::ZSTD_e_flush)
                    .map_err(zstd_error)?
            };
            // The flush is complete once zstd says nothing is left to flush
            // and all input is consumed.
            if left == 0 && src.pos >= input.len() {
                break;
            }
            let room = self.scratch.len() < self.scratch.capacity();
            if room && (src.pos, self.scratch.len()) == before {
                return Err(CompressError::Zstd("no progress"));
            }
        }
        Ok(freeze_into(&mut self.arena, &self.scratch))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::{ZstdDecoder, noisy_text};

    #[test]
    fn the_stream_starts_with_discords_frame_header() {
        let mut z = ZstdStream::new().unwrap();
        let c = z.compress(b"{\"op\":10}").unwrap();
        assert_eq!(c[..4], ZSTD_MAGIC);
        // No content size, no checksum, no dictionary; windowLog 18.
        assert_eq!(c[4..6], [0x00, 0x40]);
        // Later payloads are blocks of the same frame: no second header.
        let c = z.compress(b"{\"op\":11}").unwrap();
        assert_ne!(c[..4], ZSTD_MAGIC);
    }

    #[test]
    fn every_payload_decodes_whole_with_one_context() {
        let mut z = ZstdStream::new().unwrap();
        let mut d = ZstdDecoder::new().unwrap();
        for i in 0..200 {
            let msg = format!("{{\"op\":0,\"s\":{i},\"d\":\"{}\"}}", "x".repeat(i * 50));
            let c = z.compress(msg.as_bytes()).unwrap();
            assert_eq!(d.decode(&c).unwrap(), msg.as_bytes());
        }
    }

    #[test]
    fn payloads_over_the_block_size_decode_whole() {
        let mut z = ZstdStream::new().unwrap();
        let mut d = ZstdDecoder::new().unwrap();
        for (seed, len) in [128 * 1024, 128 * 1024 + 1, 300_000, 1 << 20]
            .into_iter()
            .enumerate()
        {
            // A different text each time: a repeat would be one long match.
            let msg = noisy_text(len, seed as u64 + 1).into_bytes();
            let c = z.compress(&msg).unwrap();
            assert!(c.len() > 128 * 1024 / 2, "{len}: {} bytes", c.len());
            assert_eq!(d.decode(&c).unwrap(), msg);
            let small = z.compress(b"{\"op\":11}").unwrap();
            assert_eq!(d.decode(&small).unwrap(), b"{\"op\":11}");
        }
    }

    #[test]
    fn an_empty_payload_is_a_valid_flush() {
        let mut z = ZstdStream::new().unwrap();
        let mut d = ZstdDecoder::new().unwrap();
        let first = z.compress(b"{}").unwrap();
        assert_eq!(d.decode(&first).unwrap(), b"{}");
        let empty = z.compress(b"").unwrap();
        assert_eq!(d.decode(&empty).unwrap(), b"");
        let next = z.compress(b"{\"op\":1}").unwrap();
        assert_eq!(d.decode(&next).unwrap(), b"{\"op\":1}");
    }
}
