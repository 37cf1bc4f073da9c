//! `compress=zlib-stream`: one inflate context per connection.
//!
//! The server compresses the whole connection as one zlib stream and ends
//! every payload with a sync flush (`00 00 ff ff`). A payload may arrive
//! split across several websocket messages; the inflater buffers them until
//! the suffix, then inflates the payload with the connection's context.

use flate2::{Decompress, FlushDecompress, Status};

/// The four bytes a zlib sync flush ends with.
const SYNC_FLUSH: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Inflates one connection's `zlib-stream`; see the module docs.
#[derive(Debug)]
pub(crate) struct Inflater {
    /// The connection's inflate context (zlib header expected first).
    context: Decompress,
    /// Compressed bytes of the payload being assembled.
    pending: Vec<u8>,
    /// The last inflated payload.
    out: Vec<u8>,
    /// The largest payload accepted, compressed or not.
    limit: usize,
}

/// Why a `zlib-stream` payload could not be inflated. The connection's
/// context is unusable afterwards: reconnect.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompressionError {
    /// The data is not a valid zlib stream.
    #[error("invalid zlib-stream data")]
    Corrupt(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The payload exceeds the size limit.
    #[error("payload larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
}

impl Inflater {
    /// A fresh context accepting payloads up to `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            context: Decompress::new(true),
            pending: Vec::new(),
            out: Vec::with_capacity(4096),
            limit,
        }
    }

    /// Feeds one binary websocket message; returns the inflated payload once
    /// its last part has arrived.
    ///
    /// # Errors
    ///
    /// [`CompressionError`] for corrupt data or an oversized payload.
    pub(crate) fn push(&mut self, message: &[u8]) -> Result<Option<&[u8]>, CompressionError> {
        if self.pending.is_empty() && message.ends_with(&SYNC_FLUSH) {
            // The common case: a whole payload in one message, no copy.
            inflate(&mut self.context, &mut self.out, message, self.limit)?;
            return Ok(Some(&self.out));
        }
        if self.pending.len() + message.len() > self.limit {
            self.pending.clear();
            return Err(CompressionError::TooLarge { limit: self.limit });
        }
        self.pending.extend_from_slice(message);
        if !self.pending.ends_with(&SYNC_FLUSH) {
            return Ok(None);
        }
        let result = inflate(&mut self.context, &mut self.out, &self.pending, self.limit);
        self.pending.clear();
        result?;
        Ok(Some(&self.out))
    }
}

/// Inflates all of `input` into `out` (replacing its contents).
fn inflate(
    context: &mut Decompress,
    out: &mut Vec<u8>,
    input: &[u8],
    limit: usize,
) -> Result<(), CompressionError> {
    out.clear();
    let mut consumed = 0;
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve((input.len() * 4).max(out.capacity()).max(4096));
        }
        let (in_before, out_before) = (context.total_in(), out.len());
        let status = context
            .decompress_vec(&input[consumed..], out, FlushDecompress::Sync)
            .map_err(|e| CompressionError::Corrupt(Box::new(e)))?;
        let used = context.total_in() - in_before;
        consumed += usize::try_from(used).unwrap_or(usize::MAX);
        if out.len() > limit {
            return Err(CompressionError::TooLarge { limit });
        }
        let room_left = out.len() < out.capacity();
        if status == Status::StreamEnd || (consumed >= input.len() && room_left) {
            return Ok(());
        }
        if used == 0 && out.len() == out_before && room_left {
            return Err(CompressionError::Corrupt(
                "zlib-stream stopped making progress".into(),
            ));
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
            assert_eq!(client.push(&wire).unwrap().unwrap(), text.as_bytes());
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
        assert!(client.push(a).unwrap().is_none());
        assert!(client.push(b).unwrap().is_none());
        assert_eq!(client.push(c).unwrap().unwrap(), text.as_bytes());
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        let mut client = Inflater::new(1 << 20);
        let err = client.push(&[1, 2, 3, 4, 0, 0, 0xff, 0xff]).unwrap_err();
        assert!(matches!(err, CompressionError::Corrupt(_)), "{err}");
    }

    #[test]
    fn oversized_payloads_are_refused() {
        let mut server = Deflater::new();
        let mut client = Inflater::new(10_000);
        let wire = server.payload(&vec![b'z'; 50_000]);
        assert!(matches!(
            client.push(&wire),
            Err(CompressionError::TooLarge { limit: 10_000 })
        ));
    }
}
