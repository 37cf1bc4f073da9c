//! `shardbus-sim`: a Discord-compatible gateway server for tests and demos.
//!
//! It is written from the protocol documentation alone and does not depend on
//! `shardbus`, so a misunderstanding in the client is not mirrored here. The
//! server itself arrives with its own issue; this crate holds its place in the
//! workspace.
