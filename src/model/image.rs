//! Image hashes (avatars, icons, banners) without an allocation per hash.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The hash naming an uploaded image: an avatar, icon, banner or splash.
///
/// Discord's hashes are 32 lower-case hex digits, prefixed with `a_` when the
/// image is animated; those are kept inline as 16 bytes. Any other string is
/// kept as sent, so an unexpected form never fails decoding. `Display` gives
/// back the exact string.
///
/// # Examples
///
/// ```
/// use shardbus::model::ImageHash;
///
/// let hash: ImageHash = serde_json::from_str("\"a_bab14f271d565501444b2ca3be944b25\"").unwrap();
/// assert!(hash.is_animated());
/// assert_eq!(hash.to_string(), "a_bab14f271d565501444b2ca3be944b25");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageHash(Repr);

/// How an [`ImageHash`] is stored.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    /// The usual form: 32 lower-case hex digits, maybe with `a_`.
    Hex {
        /// Whether the hash had the `a_` prefix.
        animated: bool,
        /// The digits, two per byte.
        bytes: [u8; 16],
    },
    /// Anything else, verbatim.
    Other(Box<str>),
}

impl ImageHash {
    /// Reads a hash; never fails (unusual forms are kept verbatim).
    pub fn new(text: &str) -> Self {
        Self(parse_hex(text).unwrap_or_else(|| Repr::Other(text.into())))
    }

    /// Whether the image is animated (the hash starts with `a_`), which
    /// means it is also available as a GIF.
    pub fn is_animated(&self) -> bool {
        match &self.0 {
            Repr::Hex { animated, .. } => *animated,
            Repr::Other(text) => text.starts_with("a_"),
        }
    }
}

impl From<&str> for ImageHash {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

/// Parses the 32-digit lower-case hex form.
fn parse_hex(text: &str) -> Option<Repr> {
    let (animated, hex) = match text.strip_prefix("a_") {
        Some(rest) => (true, rest.as_bytes()),
        None => (false, text.as_bytes()),
    };
    if hex.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(Repr::Hex { animated, bytes })
}

/// The value of one lower-case hex digit.
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for ImageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Hex { animated, bytes } => {
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                let mut out = [0u8; 34];
                let mut len = 0;
                if *animated {
                    out[..2].copy_from_slice(b"a_");
                    len = 2;
                }
                for byte in bytes {
                    out[len] = DIGITS[usize::from(byte >> 4)];
                    out[len + 1] = DIGITS[usize::from(byte & 0x0f)];
                    len += 2;
                }
                // Only ASCII digits and `a_` were written.
                f.write_str(std::str::from_utf8(&out[..len]).map_err(|_| fmt::Error)?)
            }
            Repr::Other(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for ImageHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageHash({self})")
    }
}

impl Serialize for ImageHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(ImageHashVisitor)
    }
}

/// Reads an [`ImageHash`] from a string.
struct ImageHashVisitor;

impl Visitor<'_> for ImageHashVisitor {
    type Value = ImageHash;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an image hash string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ImageHash, E> {
        Ok(ImageHash::new(v))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hex_hashes_are_inline_and_round_trip() {
        for text in [
            "bab14f271d565501444b2ca3be944b25",
            "a_bab14f271d565501444b2ca3be944b25",
        ] {
            let hash = ImageHash::new(text);
            assert!(matches!(hash.0, Repr::Hex { .. }));
            assert_eq!(hash.to_string(), text);
            assert_eq!(hash.is_animated(), text.starts_with("a_"));
            let json = serde_json::to_string(&hash).unwrap();
            assert_eq!(serde_json::from_str::<ImageHash>(&json).unwrap(), hash);
        }
    }

    #[test]
    fn other_forms_are_kept_verbatim() {
        for text in [
            "",
            "BAB14F271D565501444B2CA3BE944B25",
            "not-a-hash",
            "a_xyz",
        ] {
            let hash = ImageHash::new(text);
            assert!(matches!(hash.0, Repr::Other(_)));
            assert_eq!(hash.to_string(), text);
        }
        assert!(ImageHash::new("a_xyz").is_animated());
        assert_eq!(format!("{:?}", ImageHash::new("abc")), "ImageHash(abc)");
    }
}
