//! Errors of the sim's operations.

use std::net::SocketAddr;
use std::time::Duration;

/// The error of [`Sim::start`](crate::Sim::start) and of control operations
/// such as [`Sim::reshard`](crate::Sim::reshard).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(&'static str),
    /// The listening socket could not be bound.
    #[error("cannot bind {addr}")]
    Bind {
        /// The address from the configuration.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The sim has been shut down.
    #[error("the sim is shut down")]
    ShutDown,
    /// An id names nothing the sim has (e.g. an interaction injected into a
    /// guild the bot is not in, or a channel of another guild).
    #[error("unknown {what} {id}")]
    Unknown {
        /// What kind of thing: `guild`, `channel` or `member`.
        what: &'static str,
        /// The id.
        id: u64,
    },
}

/// The error of [`Sim::wait_for_log`](crate::Sim::wait_for_log) and
/// [`Sim::wait_for_stats`](crate::Sim::wait_for_stats): the condition did not
/// hold before the timeout.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {0:?} waiting for the sim")]
pub struct WaitTimeout(pub Duration);
