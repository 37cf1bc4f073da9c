//! `compress=zlib-stream`: one inflate context per connection.
//!
//! The server compresses the whole connection as one zlib stream and ends
//! every payload with a sync flush (`00 00 ff ff`). A payload may arrive
//! split across several websocket messages; each message is inflated as it
//! arrives (no compressed bytes are kept), and the payload is complete at the
//! suffix.
//!
//! The stream never ends, so its Adler-32 trailer never comes: the context
//! inflates raw deflate and the two-byte zlib header is checked here,
//! instead of having the inflater checksum every byte for a check that can
//! never run (about 4% of a busy shard's CPU).

// Compiled without feature `gateway` for its public types; the rest
// serves the connection.
#![cfg_attr(not(feature = "gateway"), allow(dead_code))]

use flate2::{Decompress, FlushDecompress, Status};

use super::{CompressionError, Inflated, Output};

/// The four bytes a zlib sync flush ends with.
const SYNC_FLUSH: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Inflates one connection's `zlib-stream`; see the module docs.
#[derive(Debug)]
pub(crate) struct Inflater {
    /// The connection's inflate context (raw deflate: the zlib header is
    /// taken off by [`Inflater::header`]).
    context: Decompress,
    /// The zlib header's bytes seen so far.
    header: [u8; 2],
    /// How many of `header` have arrived (2 once it is checked).
    header_len: u8,
    /// The payload being inflated, or the last one.
    pub(super) out: Output,
    /// The last (up to) four compressed bytes seen, for a suffix split
    /// across messages.
    tail: [u8; 4],
    /// How many bytes of `tail` are valid.
    tail_len: usize,
}

/// A corrupt-stream error.
fn corrupt(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> CompressionError {
    CompressionError::Corrupt {
        stream: "zlib-stream",
        source: source.into(),
    }
}

impl Inflater {
    /// A fresh context accepting payloads up to `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            context: Decompress::new(false),
            header: [0; 2],
            header_len: 0,
            out: Output::new(limit),
            tail: [0; 4],
            tail_len: 0,
        }
    }

    /// Feeds one binary websocket message; returns the inflated payload once
    /// its last part has arrived.
    ///
    /// # Errors
    ///
    /// [`CompressionError`] for corrupt data.
    pub(crate) fn push(&mut self, message: &[u8]) -> Result<Inflated<'_>, CompressionError> {
        self.out.start();
        self.inflate(message)?;
        if !self.ends_payload(message) {
            return Ok(Inflated::Partial);
        }
        Ok(self.out.finish())
    }

    /// Whether the stream, ending with `message`, ends in a sync flush.
    fn ends_payload(&mut self, message: &[u8]) -> bool {
        let mut tail = [0u8; 8];
        let kept = &self.tail[..self.tail_len];
        tail[..kept.len()].copy_from_slice(kept);
        let take = message.len().min(4);
        tail[kept.len()..kept.len() + take].copy_from_slice(&message[message.len() - take..]);
        let all = &tail[..kept.len() + take];
        let last = &all[all.len().saturating_sub(4)..];
        self.tail_len = last.len();
        self.tail[..last.len()].copy_from_slice(last);
        last == SYNC_FLUSH
    }

    /// Takes the zlib header off the front of the stream (it may arrive a
    /// byte at a time) and checks it; returns how many bytes of `input` it
    /// used.
    fn header(&mut self, input: &[u8]) -> Result<usize, CompressionError> {
        let mut used = 0;
        while self.header_len < 2 {
            let Some(&byte) = input.get(used) else {
                return Ok(used);
            };
            self.header[usize::from(self.header_len)] = byte;
            self.header_len += 1;
            used += 1;
        }
        if used > 0 {
            let [cmf, flg] = self.header;
            // RFC 1950: deflate with a window of at most 32 KiB, a valid
            // check value, and no preset dictionary (the gateway has none).
            let valid = cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
                && flg & 0x20 == 0;
            if !valid {
                return Err(corrupt(format!(
                    "not a zlib stream header: {cmf:#04x} {flg:#04x}"
                )));
            }
        }
        Ok(used)
    }

    /// Inflates all of `input` into the output (what passes the limit is
    /// counted and dropped).
    fn inflate(&mut self, input: &[u8]) -> Result<(), CompressionError> {
        let mut consumed = self.header(input)?;
        loop {
            let rest = &input[consumed..];
            let out = self.out.room(rest.len().saturating_mul(8));
            let (in_before, out_before) = (self.context.total_in(), self.context.total_out());
            let status = self
                .context
                .decompress_vec(rest, out, FlushDecompress::Sync)
                .map_err(corrupt)?;
            let used = usize::try_from(self.context.total_in() - in_before).unwrap_or(usize::MAX);
            let made = usize::try_from(self.context.total_out() - out_before).unwrap_or(usize::MAX);
            consumed = consumed.saturating_add(used);
            let room_left = self.out.has_room();
            self.out.settle();
            if status == Status::StreamEnd || (consumed >= input.len() && room_left) {
                return Ok(());
            }
            if used == 0 && made == 0 && room_left {
                return Err(corrupt("zlib-stream stopped making progress"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// The server side: one compress context, sync flush per payload.
    struct Deflater(Compress);

    impl Deflater {
        fn new() -> Self {
            Self(Compress::new(Compression::fast(), true))
        }

        fn payload(&mut self, data: &[u8]) -> Vec<u8> {
            let mut out = Vec::with_capacity(data.len() + 64);
            let mut consumed = 0;
            loop {
                out.reserve(4096);
                let before = self.0.total_in();
                self.0
                    .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
                    .unwrap();
                consumed += (self.0.total_in() - before) as usize;
                if consumed == data.len() && out.ends_with(&SYNC_FLUSH) {
                    return out;
                }
            }
        }
    }

    #[test]
    fn inflates_consecutive_payloads_with_one_context() {
        let mut server = Deflater::new();
        let mut client = Inflater::new(1 << 20);
        for i in 0..50 {
            let text = format!(
                "{{\"op\":0,\"s\":{i},\"d\":{{\"content\":\"{}\"}}}}",
                "x".repeat(i * 37)
            );
            let wire = server.payload(text.as_bytes());
            assert_eq!(
                client.push(&wire).unwrap(),
                Inflated::Payload(text.as_bytes())
            );
        }
    }

    #[test]
    fn a_payload_split_across_messages_waits_for_its_suffix() {
        let mut server = Deflater::new();
        let mut client = Inflater::new(1 << 20);
        let text = "y".repeat(100_000);
        let wire = server.payload(text.as_bytes());
        let (a, rest) = wire.split_at(wire.len() / 3);
        let (b, c) = rest.split_at(rest.len() - 2); // the suffix itself is split
        assert_eq!(client.push(a).unwrap(), Inflated::Partial);
        assert_eq!(client.push(b).unwrap(), Inflated::Partial);
        assert_eq!(client.push(c).unwrap(), Inflated::Payload(text.as_bytes()));
    }

    #[test]
    fn the_header_may_arrive_a_byte_at_a_time() {
        let mut server = Deflater::new();
        let mut client = Inflater::new(1 << 20);
        let wire = server.payload(b"{\"op\":11}");
        assert_eq!(client.push(&wire[..1]).unwrap(), Inflated::Partial);
        assert_eq!(client.push(&wire[1..2]).unwrap(), Inflated::Partial);
        assert_eq!(
            client.push(&wire[2..]).unwrap(),
            Inflated::Payload(b"{\"op\":11}")
        );
    }

    #[test]
    fn a_stream_without_a_zlib_header_is_corrupt() {
        // Raw deflate (what the inflater decodes after the header) sent
        // without the header: the first two bytes are no zlib header.
        let mut raw = Compress::new(Compression::fast(), false);
        let mut wire = Vec::with_capacity(256);
        raw.compress_vec(b"{\"op\":11}", &mut wire, FlushCompress::Sync)
            .unwrap();
        let err = Inflater::new(1 << 20).push(&wire).unwrap_err();
        assert!(matches!(err, CompressionError::Corrupt { .. }), "{err}");
        // A header asking for a preset dictionary is refused too.
        let err = Inflater::new(1 << 20)
            .push(&[0x78, 0xbb, 0, 0, 0xff, 0xff])
            .unwrap_err();
        let why = std::error::Error::source(&err).map(ToString::to_string);
        assert!(why.is_some_and(|w| w.contains("header")), "{err}");
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        let mut client = Inflater::new(1 << 20);
        let err = client.push(&[1, 2, 3, 4, 0, 0, 0xff, 0xff]).unwrap_err();
        assert!(matches!(err, CompressionError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn an_oversized_payload_is_skipped_and_the_stream_goes_on() {
        let mut server = Deflater::new();
        let mut client = Inflater::new(10_000);
        let wire = server.payload(&vec![b'z'; 50_000]);
        assert_eq!(
            client.push(&wire).unwrap(),
            Inflated::TooLarge { len: 50_000 }
        );
        // Split too: the size is still counted across messages.
        let wire = server.payload(&vec![b'q'; 30_000]);
        let (a, b) = wire.split_at(wire.len() / 2);
        assert_eq!(client.push(a).unwrap(), Inflated::Partial);
        assert_eq!(client.push(b).unwrap(), Inflated::TooLarge { len: 30_000 });
        // The context is intact: the next payload inflates.
        let wire = server.payload(b"{\"op\":11}");
        assert_eq!(
            client.push(&wire).unwrap(),
            Inflated::Payload(b"{\"op\":11}")
        );
        // One exactly at the limit is accepted.
        let exact = vec![b'e'; 10_000];
        let wire = server.payload(&exact);
        assert_eq!(client.push(&wire).unwrap(), Inflated::Payload(&exact[..]));
    }
}
