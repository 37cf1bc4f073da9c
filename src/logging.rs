//! Bridging `log` records into `tracing`.
//!
//! shardbus logs through `tracing`, but its websocket dependency
//! (tungstenite) logs through the `log` crate, so a `tracing` subscriber
//! alone never sees those records. [`bridge_log`] installs the bridge.

/// Forwards records of crates that use the `log` crate (tungstenite, rustls)
/// to the current `tracing` subscriber, up to `DEBUG`.
///
/// `TRACE` is left out on purpose: at that level tungstenite dumps every
/// websocket frame it writes, the identify (and so the token) included.
/// Call it once, early in `main`; `tracing-subscriber`'s `init()` with its
/// `tracing-log` feature installs a bridge of its own (without that cap),
/// so use one or the other.
///
/// # Examples
///
/// ```
/// // Both calls are fine: the second reports that a logger is set.
/// let _ = shardbus::bridge_log();
/// assert!(shardbus::bridge_log().is_err());
/// ```
///
/// # Errors
///
/// [`log::SetLoggerError`] if a `log` logger is already installed.
pub fn bridge_log() -> Result<(), log::SetLoggerError> {
    tracing_log::LogTracer::builder()
        .with_max_level(log::LevelFilter::Debug)
        .init()
}
