//! Serialized gateway payloads as the server writes them.
//!
//! Dispatches are `{"op":0,"s":SEQ,"t":"TYPE","d":DATA}` with `d` last, so the
//! part that varies per session (the seq) is a short prefix in front of a data
//! body serialized once.

use std::io::Write as _;

use bytes::{BufMut as _, Bytes, BytesMut};

use crate::ids::Seq;

/// Append a dispatch frame to `out`. `t_json` is the event type as a JSON
/// string (with its quotes); `d` is the serialized data.
pub(crate) fn write_dispatch(out: &mut BytesMut, t_json: &str, seq: Seq, d: &[u8]) {
    out.reserve(32 + t_json.len() + d.len());
    out.put_slice(b"{\"op\":0,\"s\":");
    put_u64(out, seq);
    out.put_slice(b",\"t\":");
    out.put_slice(t_json.as_bytes());
    out.put_slice(b",\"d\":");
    out.put_slice(d);
    out.put_u8(b'}');
}

/// A dispatch frame on its own.
pub(crate) fn dispatch(t_json: &str, seq: Seq, d: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    write_dispatch(&mut out, t_json, seq, d);
    out.freeze()
}

/// A non-dispatch payload: `{"op":OP,"d":DATA,"s":null,"t":null}`.
pub(crate) fn op(op: u8, d: &str) -> Bytes {
    let mut out = Vec::with_capacity(40 + d.len());
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{{\"op\":{op},\"d\":{d},\"s\":null,\"t\":null}}");
    Bytes::from(out)
}

/// Append the decimal digits of `n` to `out` without an intermediate allocation.
pub(crate) fn put_u64(out: &mut BytesMut, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&tmp[i..]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dispatch_is_json() {
        let f = dispatch("\"MESSAGE_CREATE\"", 42, br#"{"a":1}"#);
        let v: serde_json::Value = serde_json::from_slice(&f).unwrap();
        assert_eq!(v["op"], 0);
        assert_eq!(v["s"], 42);
        assert_eq!(v["t"], "MESSAGE_CREATE");
        assert_eq!(v["d"]["a"], 1);
    }

    #[test]
    fn op_is_json() {
        let v: serde_json::Value = serde_json::from_slice(&op(9, "false")).unwrap();
        assert_eq!(v["op"], 9);
        assert_eq!(v["d"], false);
        assert!(v["s"].is_null() && v["t"].is_null());
    }

    #[test]
    fn put_u64_digits() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut b = BytesMut::new();
            put_u64(&mut b, n);
            assert_eq!(std::str::from_utf8(&b).unwrap(), n.to_string());
        }
    }
}
