//! ISO 8601 timestamps as Discord sends them, kept as Unix microseconds.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, read from an ISO 8601 / RFC 3339 string such as
/// `2017-07-11T17:27:07.299000+00:00` and kept as microseconds since the Unix
/// epoch (no allocation, cheap to compare).
///
/// Offsets other than UTC are applied; `Display` and `Serialize` write the
/// UTC form Discord uses.
///
/// # Examples
///
/// ```
/// use shardbus::model::Timestamp;
///
/// let t: Timestamp = serde_json::from_str("\"2017-07-11T17:27:07.299000+00:00\"").unwrap();
/// assert_eq!(t.unix_millis(), 1_499_794_027_299);
/// assert_eq!(t.to_string(), "2017-07-11T17:27:07.299000+00:00");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

/// A string that is not an ISO 8601 timestamp this library can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ISO 8601 timestamp")]
#[non_exhaustive]
pub struct TimestampParseError;

impl Timestamp {
    /// A timestamp from microseconds since the Unix epoch.
    pub const fn from_unix_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch (rounded towards negative infinity).
    pub const fn unix_millis(self) -> i64 {
        self.0.div_euclid(1_000)
    }

    /// Seconds since the Unix epoch (rounded towards negative infinity).
    pub const fn unix_secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_micros(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`. Digits of the
    /// fraction beyond microseconds are ignored.
    ///
    /// # Errors
    ///
    /// [`TimestampParseError`] if the text is not in that form or names an
    /// impossible date or time.
    pub fn parse(text: &str) -> Result<Self, TimestampParseError> {
        parse(text.as_bytes()).ok_or(TimestampParseError)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let in_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
            in_day / 3_600,
            in_day % 3_600 / 60,
            in_day % 60
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(TimestampVisitor)
    }
}

/// Reads a [`Timestamp`] from a string.
struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ISO 8601 timestamp")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        Timestamp::parse(v).map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// Reads `n` ASCII digits at `at` as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let mut value = 0i64;
    for &c in b.get(at..at + n)? {
        if !c.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(c - b'0');
    }
    Some(value)
}

/// The parser behind [`Timestamp::parse`].
fn parse(b: &[u8]) -> Option<Timestamp> {
    // YYYY-MM-DDTHH:MM:SS is 19 bytes.
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let mut at = 19;
    let mut micros = 0i64;
    if b[at] == b'.' {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            if at - start < 6 {
                micros = micros * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        let len = at - start;
        if len == 0 {
            return None;
        }
        for _ in len..6 {
            micros *= 10;
        }
    }

    let offset_secs = match b.get(at..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hh = digits(&[*h1, *h2], 0, 2)?;
            let mm = digits(&[*m1, *m2], 0, 2)?;
            if hh > 23 || mm > 59 {
                return None;
            }
            let offset = hh * 3_600 + mm * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };

    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_secs;
    Some(Timestamp(secs * 1_000_000 + micros))
}

/// Whether `year` is a Gregorian leap year.
const fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1-12) of `year`.
const fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
const fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_discord_forms_and_writes_utc() {
        let t = Timestamp::parse("2017-07-11T17:27:07.299000+00:00").unwrap();
        assert_eq!(t.unix_micros(), 1_499_794_027_299_000);
        assert_eq!(t.to_string(), "2017-07-11T17:27:07.299000+00:00");

        let no_fraction = Timestamp::parse("2021-04-03T12:00:00+00:00").unwrap();
        assert_eq!(no_fraction.unix_secs(), 1_617_451_200);
        let zulu = Timestamp::parse("2021-04-03T12:00:00Z").unwrap();
        assert_eq!(zulu, no_fraction);
        let offset = Timestamp::parse("2021-04-03T14:30:00+02:30").unwrap();
        assert_eq!(offset, no_fraction);
        let nanos = Timestamp::parse("2021-04-03T12:00:00.123456789Z").unwrap();
        assert_eq!(nanos.unix_micros() % 1_000_000, 123_456);
        let millis = Timestamp::parse("2021-04-03T12:00:00.5Z").unwrap();
        assert_eq!(millis.unix_micros() % 1_000_000, 500_000);
    }

    #[test]
    fn rejects_malformed_and_impossible_dates() {
        for bad in [
            "",
            "2021-04-03",
            "2021-04-03T12:00:00",
            "2021-02-29T12:00:00Z",
            "2021-13-01T12:00:00Z",
            "2021-04-03T24:00:00Z",
            "2021-04-03T12:00:00.Z",
            "2021-04-03T12:00:00+0000",
            "2021-04-03T12:00:00Zjunk",
            "２021-04-03T12:00:00Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Timestamp::parse("2020-02-29T12:00:00Z").is_ok());
    }

    #[test]
    fn civil_round_trip_and_pre_epoch() {
        for days in [-800_000, -1, 0, 1, 18_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        let t = Timestamp::parse("1969-12-31T23:59:59.999999Z").unwrap();
        assert_eq!(t.unix_micros(), -1);
        assert_eq!(t.to_string(), "1969-12-31T23:59:59.999999+00:00");
        assert!(t.to_system_time() < UNIX_EPOCH);
    }

    #[test]
    fn serde_round_trip() {
        let t: Timestamp = serde_json::from_str("\"2024-01-02T03:04:05.060708+00:00\"").unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2024-01-02T03:04:05.060708+00:00\"");
        assert!(serde_json::from_str::<Timestamp>("12345").is_err());
    }
}
