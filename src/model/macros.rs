//! Small declarative macros shared by the model files: integer-valued enums
//! that keep unknown values, and bitfield newtypes.

/// Declares an integer-valued enum that never fails on a value it does not
/// know: the value is kept in an `Unknown` variant.
///
/// The enum gets `value()`, `from_value()`, `From` both ways, `Default`
/// (the variant for `0`, or `Unknown(0)`), and serde impls reading and writing
/// the plain integer.
macro_rules! int_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $repr:ty {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $value:literal,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )*
            /// A value this library does not know yet, kept as sent.
            Unknown($repr),
        }

        impl $name {
            /// The value on the wire.
            pub const fn value(self) -> $repr {
                match self {
                    $(Self::$variant => $value,)*
                    Self::Unknown(value) => value,
                }
            }

            /// The variant for a wire value; unknown values become `Unknown`.
            pub const fn from_value(value: $repr) -> Self {
                match value {
                    $($value => Self::$variant,)*
                    other => Self::Unknown(other),
                }
            }
        }

        impl Default for $name {
            /// The variant whose value is `0`.
            fn default() -> Self {
                Self::from_value(0)
            }
        }

        impl From<$repr> for $name {
            fn from(value: $repr) -> Self {
                Self::from_value(value)
            }
        }

        impl From<$name> for $repr {
            fn from(value: $name) -> Self {
                value.value()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serde::Serialize::serialize(&self.value(), serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <$repr as serde::Deserialize>::deserialize(deserializer).map(Self::from_value)
            }
        }
    };
}

/// Declares a bitfield newtype over `u64` with named flags.
///
/// It reads an integer or a decimal string (Discord sends permissions as
/// strings and most other bitfields as integers) and writes the form given
/// after the name: `as_int` or `as_string`. Unknown bits are kept.
macro_rules! bitfield {
    (
        $(#[$meta:meta])*
        pub struct $name:ident($write:ident) {
            $(
                $(#[$fmeta:meta])*
                const $flag:ident = $bit:expr;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $name(pub u64);

        impl $name {
            $(
                $(#[$fmeta])*
                pub const $flag: Self = Self($bit);
            )*

            /// No bits set.
            pub const fn empty() -> Self {
                Self(0)
            }

            /// The raw bits, including any this library does not name.
            pub const fn bits(self) -> u64 {
                self.0
            }

            /// Whether every bit of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether no bit is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }
        }

        impl std::ops::BitOr for $name {
            type Output = Self;

            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }

        impl std::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }

        impl std::ops::BitAnd for $name {
            type Output = Self;

            fn bitand(self, rhs: Self) -> Self {
                Self(self.0 & rhs.0)
            }
        }

        impl From<u64> for $name {
            fn from(bits: u64) -> Self {
                Self(bits)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                bitfield!(@write $write, self, serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer
                    .deserialize_any($crate::model::macros::BitsVisitor)
                    .map(Self)
            }
        }
    };
    (@write as_int, $self:ident, $serializer:ident) => {
        $serializer.serialize_u64($self.0)
    };
    (@write as_string, $self:ident, $serializer:ident) => {
        $serializer.collect_str(&$self.0)
    };
}

/// Reads a bitfield from a JSON integer or a decimal string.
pub(crate) struct BitsVisitor;

impl serde::de::Visitor<'_> for BitsVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a bitfield as an integer or a decimal string")
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<u64, E> {
        v.parse()
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
    }
}

/// Serde helpers for `Option<Option<T>>` fields where a missing field and an
/// explicit `null` mean different things: missing is `None`, `null` is
/// `Some(None)`. Use with `#[serde(default, with = "nullable",
/// skip_serializing_if = "Option::is_none")]`.
pub(crate) mod nullable {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Reads a present field: `null` becomes `Some(None)`.
    pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }

    /// Writes the inner option (`Some(None)` as `null`); pair with
    /// `skip_serializing_if = "Option::is_none"`.
    pub(crate) fn serialize<S, T>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        T: Serialize,
    {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }
}
