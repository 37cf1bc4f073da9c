//! Gateway payload framing: reading `{op, d, s, t}` and writing commands.

// Compiled without feature `gateway` for its public types; the rest
// serves the connection.
#![cfg_attr(not(feature = "gateway"), allow(dead_code))]

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::identify::{IdentifyProperties, Intents, Token};
use super::opcode::OpCode;
use crate::model::{Seq, SessionId, ShardId};

/// A received payload, with `d` left undecoded until its type is known.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    /// The opcode.
    pub(crate) op: OpCode,
    /// The event data, raw (`None` when absent).
    d: Option<&'a str>,
    /// The sequence number, for dispatches.
    pub(crate) s: Option<u64>,
    /// The dispatch type, for dispatches.
    pub(crate) t: Option<std::borrow::Cow<'a, str>>,
    /// Whether `d` was checked to be exactly one JSON value. A dispatch
    /// read by the fast path takes everything after `"d":` up to the
    /// closing brace, unchecked: decoding it checks it (serde_json rejects
    /// trailing characters), and [`Frame::parse_exact`] is the fallback.
    pub(crate) exact: bool,
}

/// What serde reads for [`Frame::parse_exact`].
#[derive(Deserialize)]
struct Envelope<'a> {
    op: OpCode,
    #[serde(borrow, default)]
    d: Option<&'a RawValue>,
    #[serde(default)]
    s: Option<u64>,
    #[serde(default, borrow)]
    t: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> Frame<'a> {
    /// Parses a payload's envelope.
    ///
    /// Dispatches as the gateway writes them (`op`, `s` and `t` before `d`,
    /// `d` last) take a fast path that does not scan `d`: scanning it and
    /// then decoding it was the largest cost per event. Anything else goes
    /// through serde ([`parse_exact`](Self::parse_exact)).
    pub(crate) fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        match fast_dispatch(text) {
            Some(frame) => Ok(frame),
            None => Self::parse_exact(text),
        }
    }

    /// Parses a payload's envelope with serde, checking all of it.
    pub(crate) fn parse_exact(text: &'a str) -> Result<Self, serde_json::Error> {
        let envelope: Envelope<'a> = serde_json::from_str(text)?;
        Ok(Self {
            op: envelope.op,
            d: envelope.d.map(RawValue::get),
            s: envelope.s,
            t: envelope.t,
            exact: true,
        })
    }

    /// The raw `d`, or JSON `null`.
    pub(crate) fn data(&self) -> &'a str {
        self.d.unwrap_or("null")
    }

    /// Decodes `d` as `T`; if the fast path's `d` does not decode, reads
    /// `text` (this frame's payload) exactly and decodes its `d`.
    pub(crate) fn decode<T: serde::de::DeserializeOwned>(
        &self,
        text: &str,
    ) -> Result<T, serde_json::Error> {
        match serde_json::from_str(self.data()) {
            Err(_) if !self.exact => serde_json::from_str(Frame::parse_exact(text)?.data()),
            decoded => decoded,
        }
    }
}

/// The fast path of [`Frame::parse`]: `{"op":0,"s":N,"t":"NAME","d":...}`
/// with the first three keys in any order, no escapes in keys or `t`, and
/// `d` last. `None` for anything else.
fn fast_dispatch(text: &str) -> Option<Frame<'_>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let (mut op, mut s, mut t) = (None, None, None);
    loop {
        i = skip_ws(b, i);
        let (key, next) = plain_string(text, i)?;
        i = skip_ws(b, next);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        // A repeated key is left to serde, which rejects it.
        match key {
            "op" if op.is_none() => (op, i) = number(b, i).map(|(n, i)| (Some(n), i))?,
            "s" if s.is_none() => (s, i) = number(b, i).map(|(n, i)| (Some(n), i))?,
            "t" if t.is_none() => {
                let (name, next) = plain_string(text, i)?;
                (t, i) = (Some(name), next);
            }
            "d" => {
                if op != Some(0) {
                    return None;
                }
                let rest = text.get(i..)?.trim_end();
                let d = rest.strip_suffix('}')?.trim_end();
                if d.is_empty() {
                    return None;
                }
                return Some(Frame {
                    op: OpCode::Dispatch,
                    d: Some(d),
                    s: Some(s?),
                    t: Some(std::borrow::Cow::Borrowed(t?)),
                    exact: false,
                });
            }
            _ => return None,
        }
        i = skip_ws(b, i);
        if b.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
    }
}

/// The index of the first non-whitespace byte at or after `i`.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// A JSON string without escapes at `i`, and the index after it.
fn plain_string(text: &str, i: usize) -> Option<(&str, usize)> {
    let rest = text.get(i..)?.strip_prefix('"')?;
    let len = rest.find(['"', '\\'])?;
    if rest.as_bytes()[len] != b'"' {
        return None;
    }
    Some((&rest[..len], i + 1 + len + 1))
}

/// A JSON unsigned integer at `i`, and the index after it.
fn number(b: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let start = i;
    let mut n: u64 = 0;
    while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        i += 1;
    }
    // No leading zeros (JSON), and a number ends at a delimiter.
    let digits = i - start;
    if digits == 0 || (digits > 1 && b[start] == b'0') {
        return None;
    }
    Some((n, i))
}

/// The `d` of a Hello.
#[derive(Debug, Deserialize)]
pub(crate) struct Hello {
    /// Milliseconds between heartbeats.
    pub(crate) heartbeat_interval: u64,
}

/// An outgoing payload.
#[derive(Debug, Serialize)]
pub(crate) struct Command<D> {
    /// The opcode.
    pub(crate) op: OpCode,
    /// The data.
    pub(crate) d: D,
}

/// The `d` of an Identify.
#[derive(Debug, Serialize)]
pub(crate) struct Identify<'a> {
    /// The bot token.
    pub(crate) token: &'a Token,
    /// Connection properties.
    pub(crate) properties: &'a IdentifyProperties,
    /// Always false: transport compression is used instead.
    pub(crate) compress: bool,
    /// Members above which a guild is "large".
    pub(crate) large_threshold: u8,
    /// `[shard_id, total]`.
    pub(crate) shard: [u32; 2],
    /// The initial presence, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) presence: Option<&'a serde_json::Value>,
    /// The intents.
    pub(crate) intents: Intents,
}

/// The `d` of a Resume.
#[derive(Debug, Serialize)]
pub(crate) struct Resume<'a> {
    /// The bot token.
    pub(crate) token: &'a Token,
    /// The session to resume.
    pub(crate) session_id: &'a SessionId,
    /// The last sequence number received.
    pub(crate) seq: Seq,
}

/// Serializes a command payload.
pub(crate) fn encode<D: Serialize>(op: OpCode, d: D) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Command { op, d })
}

/// The shard array of an identify.
pub(crate) fn shard_array(id: ShardId, total: u32) -> [u32; 2] {
    [id.0, total]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::Value;

    use super::*;

    /// What a payload means: its opcode, `s`, `t` and `d` as a value.
    fn meaning(text: &str, frame: &Frame<'_>) -> (OpCode, Option<u64>, Option<String>, Value) {
        let d = frame.decode::<Value>(text).unwrap();
        (frame.op, frame.s, frame.t.as_deref().map(str::to_owned), d)
    }

    #[test]
    fn the_fast_path_means_what_serde_reads_or_fails_where_it_fails() {
        let shapes = [
            // As the gateway writes them, in either key order.
            r#"{"op":0,"s":7,"t":"MESSAGE_CREATE","d":{"content":"a}b","n":[1,{"x":"}"}]}}"#,
            r#"{"t":"MESSAGE_CREATE","s":7,"op":0,"d":{"content":"hi"}}"#,
            " \n{ \"op\" : 0 , \"s\" : 7 , \"t\" : \"X\" , \"d\" : [1, 2] } \r\n",
            r#"{"op":0,"s":7,"t":"X","d":null}"#,
            // Shapes the fast path leaves to serde, or reads unchecked.
            r#"{"op":0,"s":7,"t":"X","d":{"a":1},"extra":true}"#,
            r#"{"op":0,"s":7,"t":"X","d":{"a":1},"s":8}"#,
            r#"{"d":{"a":1},"op":0,"s":7,"t":"X"}"#,
            r#"{"op":0,"t":"X","d":{"a":1},"s":7}"#,
            r#"{"op":0,"s":7,"t":"X\u0041","d":{}}"#,
            r#"{"op":0,"s":null,"t":null,"d":{}}"#,
            r#"{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}"#,
            r#"{"op":0,"s":07,"t":"X","d":{}}"#,
            r#"{"op":0,"s":7.5,"t":"X","d":{}}"#,
            r#"{"op":0,"s":18446744073709551616,"t":"X","d":{}}"#,
            r#"{"op":0,"op":0,"s":7,"t":"X","d":{}}"#,
            // Malformed: both must fail.
            r#"{"op":0,"s":7,"t":"X","d":{}}}"#,
            r#"{"op":0,"s":7,"t":"X","d":{"a":}"#,
            r#"{"op":0,"s":7,"t":"X","d":}"#,
            r#"{"op":0,"s":7,"t":"X","d":{}"#,
            r#"{"op":0,"s":7,"t":"X","d":{}} x"#,
        ];
        for text in shapes {
            let exact = Frame::parse_exact(text);
            let fast = Frame::parse(text);
            match exact {
                Ok(exact) => {
                    assert!(exact.exact);
                    let fast = fast.unwrap_or_else(|e| panic!("{text}: {e}"));
                    assert_eq!(meaning(text, &fast), meaning(text, &exact), "{text}");
                }
                Err(_) => {
                    if let Ok(fast) = fast {
                        assert!(!fast.exact, "{text}");
                        assert!(fast.decode::<Value>(text).is_err(), "{text}");
                    }
                }
            }
        }
        // The common shape takes the fast path.
        let text = r#"{"op":0,"s":7,"t":"X","d":{"a":1}}"#;
        let frame = Frame::parse(text).unwrap();
        assert!(!frame.exact);
        assert_eq!(frame.data(), r#"{"a":1}"#);
    }

    #[test]
    fn frames_keep_d_raw_and_read_s_and_t() {
        let text = r#"{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"hi","id":"1"}}"#;
        let frame = Frame::parse(text).unwrap();
        assert_eq!(frame.op, OpCode::Dispatch);
        assert_eq!(frame.s, Some(42));
        assert_eq!(frame.t.as_deref(), Some("MESSAGE_CREATE"));
        assert_eq!(frame.data(), r#"{"content":"hi","id":"1"}"#);
        let hello = Frame::parse(r#"{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}"#)
            .unwrap();
        let d: Hello = serde_json::from_str(hello.data()).unwrap();
        assert_eq!(d.heartbeat_interval, 41250);
        assert_eq!(Frame::parse(r#"{"op":11}"#).unwrap().data(), "null");
        assert!(Frame::parse("{not json").is_err());
    }

    #[test]
    fn identify_carries_the_shard_array_and_the_token() {
        let token = Token::new("abc");
        let props = IdentifyProperties::default();
        let text = encode(
            OpCode::Identify,
            Identify {
                token: &token,
                properties: &props,
                compress: false,
                large_threshold: 250,
                shard: shard_array(ShardId(1), 4),
                presence: None,
                intents: Intents::GUILDS,
            },
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["op"], 2);
        assert_eq!(v["d"]["token"], "abc");
        assert_eq!(v["d"]["shard"], serde_json::json!([1, 4]));
        assert_eq!(v["d"]["intents"], 1);
    }
}
