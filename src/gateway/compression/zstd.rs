//! `compress=zstd-stream`: one zstd decompression context per connection.
//!
//! The server compresses the whole connection as one zstd frame that never
//! ends. Every websocket message is one whole payload, flushed, so each
//! message decompresses completely on its own, against the window the earlier
//! ones built.
//!
//! The decoder is libzstd (through `zstd-safe`): measured against the
//! pure-Rust `ruzstd` on a stream of 20,000 flushed MESSAGE_CREATE payloads,
//! it decoded 5x faster, and ruzstd's frame decoder held back part of each
//! flushed block instead of returning the whole payload.

use std::fmt;

use zstd_safe::{DCtx, DParameter, InBuffer, OutBuffer};

use super::{CompressionError, Inflated, Output};

/// The largest window a server may ask for: 2^23 bytes (8 MiB). Discord's
/// frames ask for 2^18; a larger request is refused as corrupt rather than
/// allocated.
const WINDOW_LOG_MAX: u32 = 23;

/// Decompresses one connection's `zstd-stream`; see the module docs.
pub(crate) struct ZstdStream {
    /// The connection's decompression context.
    context: DCtx<'static>,
    /// The payload being decompressed, or the last one.
    pub(super) out: Output,
}

/// A corrupt-stream error.
fn corrupt(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> CompressionError {
    CompressionError::Corrupt {
        stream: "zstd-stream",
        source: source.into(),
    }
}

impl ZstdStream {
    /// A fresh context accepting payloads up to `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        let mut context = DCtx::create();
        // Only fails for an out-of-range value, which this is not; the
        // default limit would then apply.
        let _ = context.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX));
        Self {
            context,
            out: Output::new(limit),
        }
    }

    /// Feeds one binary websocket message: a whole payload.
    ///
    /// # Errors
    ///
    /// [`CompressionError`] for corrupt data.
    pub(crate) fn push(&mut self, message: &[u8]) -> Result<Inflated<'_>, CompressionError> {
        self.out.start();
        let mut input = InBuffer::around(message);
        loop {
            let before = input.pos;
            let out = self.out.room((message.len() - input.pos).saturating_mul(8));
            let len = out.len();
            let mut buffer = OutBuffer::around_pos(out, len);
            self.context
                .decompress_stream(&mut buffer, &mut input)
                .map_err(|code| corrupt(zstd_safe::get_error_name(code)))?;
            let made = buffer.pos() - len;
            let room_left = self.out.has_room();
            self.out.settle();
            if input.pos >= message.len() && room_left {
                break;
            }
            if input.pos == before && made == 0 && room_left {
                return Err(corrupt("zstd-stream stopped making progress"));
            }
        }
        Ok(self.out.finish())
    }

    /// Bytes the decompression context holds (window and buffers).
    #[cfg(test)]
    pub(crate) fn context_bytes(&self) -> usize {
        self.context.sizeof()
    }
}

impl fmt::Debug for ZstdStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZstdStream")
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use zstd_safe::{CCtx, CParameter, zstd_sys::ZSTD_EndDirective};

    /// The server side: one context, Discord's frame parameters, a flush per
    /// payload and never an end.
    struct Server(CCtx<'static>);

    impl Server {
        fn new() -> Self {
            let mut c = CCtx::create();
            c.set_parameter(CParameter::CompressionLevel(1)).unwrap();
            c.set_parameter(CParameter::WindowLog(18)).unwrap();
            c.set_parameter(CParameter::ContentSizeFlag(false)).unwrap();
            Self(c)
        }

        fn payload(&mut self, data: &[u8]) -> Vec<u8> {
            let mut out: Vec<u8> = Vec::with_capacity(data.len() + 64);
            let mut input = InBuffer::around(data);
            loop {
                let len = out.len();
                let mut buf = OutBuffer::around_pos(&mut out, len);
                let left = self
                    .0
                    .compress_stream2(&mut buf, &mut input, ZSTD_EndDirective::ZSTD_e_flush)
                    .unwrap();
                if left == 0 {
                    return out;
                }
                out.reserve(4096);
            }
        }
    }

    #[test]
    fn decompresses_consecutive_payloads_with_one_context() {
        let mut server = Server::new();
        let mut client = ZstdStream::new(1 << 20);
        for i in 0..50 {
            let text = format!(
                "{{\"op\":0,\"s\":{i},\"d\":{{\"content\":\"{}\"}}}}",
                "x".repeat(i * 37)
            );
            let wire = server.payload(text.as_bytes());
            if i == 0 {
                // Discord's frame header: no content size, windowLog 18.
                assert_eq!(&wire[..6], &[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x40]);
            }
            assert_eq!(
                client.push(&wire).unwrap(),
                Inflated::Payload(text.as_bytes())
            );
        }
    }

    #[test]
    fn a_large_payload_comes_out_whole() {
        let mut server = Server::new();
        let mut client = ZstdStream::new(64 << 20);
        // Over the 128 KiB block size and the 256 KiB window, and not
        // trivially compressible.
        let text: String = (0..200_000u32)
            .map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
            .collect();
        let wire = server.payload(text.as_bytes());
        assert_eq!(
            client.push(&wire).unwrap(),
            Inflated::Payload(text.as_bytes())
        );
        let wire = server.payload(b"{\"op\":11}");
        assert_eq!(
            client.push(&wire).unwrap(),
            Inflated::Payload(&b"{\"op\":11}"[..])
        );
        assert!(client.context_bytes() > 0);
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        let mut client = ZstdStream::new(1 << 20);
        let err = client.push(b"definitely not zstd").unwrap_err();
        assert!(matches!(err, CompressionError::Corrupt { .. }), "{err}");
        // A frame that asks for a 2^30 window is refused, not allocated.
        let mut huge = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (30 - 10) << 3];
        huge.extend_from_slice(&[0; 16]);
        let mut client = ZstdStream::new(1 << 20);
        assert!(client.push(&huge).is_err());
    }

    #[test]
    fn an_oversized_payload_is_skipped_and_the_stream_goes_on() {
        let mut server = Server::new();
        let mut client = ZstdStream::new(10_000);
        let wire = server.payload(&vec![b'z'; 50_000]);
        assert_eq!(
            client.push(&wire).unwrap(),
            Inflated::TooLarge { len: 50_000 }
        );
        let wire = server.payload(b"{\"op\":11}");
        assert_eq!(
            client.push(&wire).unwrap(),
            Inflated::Payload(&b"{\"op\":11}"[..])
        );
        let exact = vec![b'e'; 10_000];
        let wire = server.payload(&exact);
        assert_eq!(client.push(&wire).unwrap(), Inflated::Payload(&exact[..]));
    }
}
