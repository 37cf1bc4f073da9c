//! The upgrade request's query: `v`, `encoding` and `compress`.

use crate::protocol::{API_VERSION, close};

use super::End;

/// Split a query string into pairs (no percent-decoding: the gateway's
/// parameters are plain ASCII).
pub(super) fn parse_query(q: &str) -> Vec<(&str, &str)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

/// Check `v`, `encoding` and `compress`; `Ok(true)` means zlib-stream.
pub(super) fn check_query(query: &[(&str, &str)]) -> Result<bool, End> {
    let get = |k: &str| query.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    if get("v") != Some(&API_VERSION.to_string()) {
        return Err(End::Close(
            close::INVALID_API_VERSION,
            format!("invalid API version: only v={API_VERSION} is supported"),
        ));
    }
    match get("encoding") {
        None | Some("json") => {}
        Some("etf") => {
            return Err(End::Close(
                close::UNSUPPORTED_DATA,
                "encoding=etf is not supported by shardbus-sim; use encoding=json".into(),
            ));
        }
        Some(other) => {
            return Err(End::Close(
                close::UNSUPPORTED_DATA,
                format!("unknown encoding {other:?}; use encoding=json"),
            ));
        }
    }
    match get("compress") {
        None => Ok(false),
        Some("zlib-stream") => Ok(true),
        Some(other) => Err(End::Close(
            close::UNSUPPORTED_DATA,
            format!("compress={other} is not supported by shardbus-sim; use zlib-stream"),
        )),
    }
}
