//! Gateway payload framing: reading `{op, d, s, t}` and writing commands.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::identify::{IdentifyProperties, Intents, Token};
use super::opcode::OpCode;
use crate::model::{Seq, SessionId, ShardId};

/// A received payload, with `d` left undecoded until its type is known.
#[derive(Debug, Deserialize)]
pub(crate) struct Frame<'a> {
    /// The opcode.
    pub(crate) op: OpCode,
    /// The event data, raw.
    #[serde(borrow, default)]
    pub(crate) d: Option<&'a RawValue>,
    /// The sequence number, for dispatches.
    #[serde(default)]
    pub(crate) s: Option<u64>,
    /// The dispatch type, for dispatches.
    #[serde(default, borrow)]
    pub(crate) t: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> Frame<'a> {
    /// Parses a payload's envelope.
    pub(crate) fn parse(text: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// The raw `d`, or JSON `null`.
    pub(crate) fn data(&self) -> &'a str {
        self.d.map_or("null", RawValue::get)
    }
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

    use super::*;

    #[test]
    fn frames_keep_d_raw_and_read_s_and_t() {
        let text = br#"{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"hi","id":"1"}}"#;
        let frame = Frame::parse(text).unwrap();
        assert_eq!(frame.op, OpCode::Dispatch);
        assert_eq!(frame.s, Some(42));
        assert_eq!(frame.t.as_deref(), Some("MESSAGE_CREATE"));
        assert_eq!(frame.data(), r#"{"content":"hi","id":"1"}"#);
        let hello =
            Frame::parse(br#"{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}"#)
                .unwrap();
        let d: Hello = serde_json::from_str(hello.data()).unwrap();
        assert_eq!(d.heartbeat_interval, 41250);
        assert_eq!(Frame::parse(br#"{"op":11}"#).unwrap().data(), "null");
        assert!(Frame::parse(b"{not json").is_err());
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
