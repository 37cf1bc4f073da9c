//! The client side of `compress=zstd-stream`, for the sim's own tests and
//! benchmarks (hidden from the docs): one decompression context per
//! connection, each binary message decoded whole.

use zstd_safe::{DCtx, InBuffer, OutBuffer};

/// Decodes one connection's zstd-stream messages with one context, as a
/// client does. Not part of the sim's documented API.
pub struct ZstdDecoder {
    /// The connection's decompression context.
    context: DCtx<'static>,
}

/// Why a message did not decode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZstdDecodeError {
    /// zstd could not allocate a decompression context.
    #[error("could not create a zstd decompression context")]
    Context,
    /// The data is not valid zstd-stream, with zstd's name for the error.
    #[error("invalid zstd-stream data: {0}")]
    Corrupt(&'static str),
}

impl ZstdDecoder {
    /// A fresh context, for a new connection.
    ///
    /// # Errors
    ///
    /// [`ZstdDecodeError::Context`] if zstd cannot allocate one.
    pub fn new() -> Result<Self, ZstdDecodeError> {
        let context = DCtx::try_create().ok_or(ZstdDecodeError::Context)?;
        Ok(Self { context })
    }

    /// Decode one binary message (a whole flushed payload) into `out`,
    /// replacing what it held: decompress until the message is consumed and
    /// the output has room left, so zstd holds nothing back.
    ///
    /// # Errors
    ///
    /// [`ZstdDecodeError::Corrupt`] if the message does not decode after
    /// the ones before it.
    pub fn decode_into(
        &mut self,
        message: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), ZstdDecodeError> {
        out.clear();
        out.reserve(message.len().saturating_mul(6).max(256));
        let mut src = InBuffer::around(message);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let before = (src.pos(), out.len());
            let pos = out.len();
            let mut buf = OutBuffer::around_pos(out, pos);
            self.context
                .decompress_stream(&mut buf, &mut src)
                .map_err(|code| ZstdDecodeError::Corrupt(zstd_safe::get_error_name(code)))?;
            let room = out.len() < out.capacity();
            if src.pos() == message.len() && room {
                return Ok(());
            }
            if room && (src.pos(), out.len()) == before {
                return Err(ZstdDecodeError::Corrupt("no progress"));
            }
        }
    }

    /// [`decode_into`](Self::decode_into) a new buffer.
    ///
    /// # Errors
    ///
    /// As [`decode_into`](Self::decode_into).
    pub fn decode(&mut self, message: &[u8]) -> Result<Vec<u8>, ZstdDecodeError> {
        let mut out = Vec::new();
        self.decode_into(message, &mut out)?;
        Ok(out)
    }
}

impl std::fmt::Debug for ZstdDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZstdDecoder").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn corrupt_data_is_an_error() {
        let mut d = ZstdDecoder::new().unwrap();
        assert!(matches!(
            d.decode(b"definitely not zstd"),
            Err(ZstdDecodeError::Corrupt(_))
        ));
    }
}
