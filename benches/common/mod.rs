//! What `benches/gateway.rs` and `benches/shards.rs` share: the peer client
//! processes ([`peers`]), the dispatch-to-subscriber latency method
//! ([`latency`]) and the small helpers of reporting ([`report`]).
#![allow(dead_code)] // each bench uses a different subset

pub mod latency;
pub mod peers;
pub mod report;
