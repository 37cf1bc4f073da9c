//! Procedural macros for [`shardbus`](https://docs.rs/shardbus).
//!
//! The `#[handler]` attribute arrives with the handler layer; this crate is a
//! workspace member from the start so the layout in `DESIGN.md` holds.
