//! The upgrade request's query: `v`, `encoding` and `compress`.

use crate::compress::Compression;
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

/// The value of parameter `key` (its first occurrence).
fn get<'q>(query: &[(&'q str, &'q str)], key: &str) -> Option<&'q str> {
    query.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// The compression `compress` asks for: [`Compression::None`] without it and
/// for a value the sim does not support (which [`check_query`] refuses).
pub(super) fn requested_compression(query: &[(&str, &str)]) -> Compression {
    get(query, "compress")
        .and_then(Compression::from_query_value)
        .unwrap_or_default()
}

/// Check `v`, `encoding` and `compress`; returns the compression to use.
pub(super) fn check_query(query: &[(&str, &str)]) -> Result<Compression, End> {
    let get = |k: &str| get(query, k);
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
        None => Ok(Compression::None),
        Some(value) => Compression::from_query_value(value).ok_or_else(|| {
            End::Close(
                close::UNSUPPORTED_DATA,
                format!(
                    "compress={value} is not supported by shardbus-sim; \
                     use zlib-stream or zstd-stream"
                ),
            )
        }),
    }
}
