//! `compress=zlib-stream` transport compression.
//!
//! One deflate context per connection, zlib header first; every gateway
//! payload is compressed and then flushed with `Z_SYNC_FLUSH`, so the bytes of
//! each payload end in `00 00 ff ff`. A compressed payload longer than the
//! chunk size is split over several websocket binary messages; only the last
//! one ends in the flush suffix (a split point that would leave the suffix at
//! the end of an earlier piece is moved).
//!
//! The stream never ends, so its Adler-32 trailer is never written: the
//! context deflates raw and the two-byte zlib header is written by hand in
//! front of the first payload, which spares checksumming every byte.

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression as Level, FlushCompress};

use super::{CompressError, freeze_into};

/// RFC 1950's header for deflate with a 32 KiB window at the fastest level.
const ZLIB_HEADER: [u8; 2] = [0x78, 0x01];

/// The four bytes every sync-flushed payload ends with.
pub(crate) const ZLIB_SUFFIX: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The compressor of one connection.
pub(crate) struct ZlibStream {
    /// The connection's single deflate context (raw deflate).
    deflate: Compress,
    /// Whether the zlib header went out with the first payload.
    header_sent: bool,
    /// Scratch output, reused between payloads.
    scratch: Vec<u8>,
    /// Frozen payloads are split off this buffer, so allocation is per
    /// arena chunk, not per payload.
    arena: BytesMut,
}

impl ZlibStream {
    /// A fresh context (fast compression level, zlib header).
    pub(crate) fn new() -> Self {
        Self {
            deflate: Compress::new(Level::fast(), false),
            header_sent: false,
            scratch: Vec::with_capacity(4096),
            arena: BytesMut::new(),
        }
    }

    /// Compress `input` and sync-flush: the result ends in [`ZLIB_SUFFIX`].
    pub(crate) fn compress(&mut self, input: &[u8]) -> Result<Bytes, CompressError> {
        self.scratch.clear();
        self.scratch.reserve(input.len() / 2 + 64);
        if !self.header_sent {
            self.header_sent = true;
            self.scratch.extend_from_slice(&ZLIB_HEADER);
        }
        let start = self.deflate.total_in();
        loop {
            if self.scratch.len() == self.scratch.capacity() {
                self.scratch.reserve(self.scratch.capacity().max(64));
            }
            let done = usize::try_from(self.deflate.total_in() - start).unwrap_or(input.len());
            let rest = input.get(done..).unwrap_or(&[]);
            self.deflate
                .compress_vec(rest, &mut self.scratch, FlushCompress::Sync)
                .map_err(CompressError::Zlib)?;
            let done = usize::try_from(self.deflate.total_in() - start).unwrap_or(input.len());
            // The flush is complete once all input is consumed and deflate
            // stopped with output space to spare.
            if done >= input.len() && self.scratch.len() < self.scratch.capacity() {
                break;
            }
        }
        Ok(freeze_into(&mut self.arena, &self.scratch))
    }
}

/// Split a compressed payload into websocket messages of at most `chunk`
/// bytes; no piece but the last ends in [`ZLIB_SUFFIX`].
pub(crate) fn split(payload: Bytes, chunk: usize, mut emit: impl FnMut(Bytes)) {
    let mut rest = payload;
    while rest.len() > chunk {
        let mut at = chunk;
        while at > 4 && rest[..at].ends_with(&ZLIB_SUFFIX) {
            at -= 1;
        }
        emit(rest.split_to(at));
    }
    emit(rest);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn inflate(d: &mut Decompress, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() * 8 + 64);
        let start = d.total_in();
        loop {
            let done = (d.total_in() - start) as usize;
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            d.decompress_vec(&input[done..], &mut out, FlushDecompress::Sync)
                .unwrap();
            if (d.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }

    #[test]
    fn every_payload_ends_in_the_suffix_and_round_trips() {
        let mut z = ZlibStream::new();
        let mut d = Decompress::new(true);
        for i in 0..200 {
            let msg = format!("{{\"op\":0,\"s\":{i},\"d\":\"{}\"}}", "x".repeat(i * 50));
            let c = z.compress(msg.as_bytes()).unwrap();
            assert!(c.ends_with(&ZLIB_SUFFIX));
            assert_eq!(inflate(&mut d, &c), msg.as_bytes());
        }
    }

    #[test]
    fn split_keeps_the_suffix_last() {
        let payload = Bytes::from_static(&[1, 2, 0, 0, 0xff, 0xff, 7, 8, 0, 0, 0xff, 0xff]);
        let mut pieces = Vec::new();
        split(payload.clone(), 6, |b| pieces.push(b));
        assert!(pieces.len() >= 2);
        for p in &pieces[..pieces.len() - 1] {
            assert!(!p.ends_with(&ZLIB_SUFFIX));
            assert!(p.len() <= 6);
        }
        assert_eq!(pieces.concat(), payload.to_vec());
    }
}
