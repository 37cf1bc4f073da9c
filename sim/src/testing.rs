//! Helpers for the sim's own tests and benchmarks and for clients' tests
//! against it (hidden from the docs, not a stable API): the client side of
//! zstd-stream, and text that stays large when compressed.

pub use crate::compress::{ZstdDecodeError, ZstdDecoder};

/// `len` lowercase letters from a xorshift generator seeded with `seed`:
/// about 5 bits of entropy a byte, so they compress to over half their
/// length and a long run stays longer than a zstd block compressed.
#[must_use]
pub fn noisy_text(len: usize, seed: u64) -> String {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Below 26, so the cast cannot truncate.
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}
