//! Boxed types shared by every layer: the error producers and handlers
//! report, and the future trait methods return.
//!
//! They sit at the crate root, below every module, so that `bus`, `gateway`,
//! `shard` and `session` can all name them without importing each other.

use std::future::Future;
use std::pin::Pin;

/// The error type producers and handlers report: any boxed error that can
/// cross tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A boxed, `Send` future, for trait methods that return one (an identify
/// queue's `acquire`, for one).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
