//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::future::Future;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use shardbus::{BoxError, Subscription};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

pub mod gateway;
#[cfg(feature = "nats")]
pub mod nats;
pub mod rest;

/// Upper bound on anything that must finish. Virtual under paused time, so
/// free there; in real time it only bounds how long a hang takes to report.
pub const HANG: Duration = Duration::from_secs(120);

/// Awaits `fut`, failing the test if it has not finished within [`HANG`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match timeout(HANG, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: still not finished after {HANG:?} (hang?)"),
    }
}

/// Lets every other task run until it blocks (under paused time the clock
/// only moves once the runtime is idle), then tells whether `task` is still
/// running.
pub async fn still_pending<T>(task: &JoinHandle<T>) -> bool {
    sleep(Duration::from_millis(10)).await;
    !task.is_finished()
}

/// The subscription's next error report.
pub async fn next_err(sub: &mut Subscription) -> Option<BoxError> {
    sub.err().await
}

/// Kills the test binary if a multi-threaded test wedges a worker thread (a
/// tokio timeout cannot interrupt a blocked thread). Dropping it disarms it.
pub struct Watchdog {
    /// Dropped with the watchdog, which tells its thread to stand down.
    _disarm: std_mpsc::Sender<()>,
}

/// Arms a [`Watchdog`] for `limit`.
pub fn watchdog(name: &'static str, limit: Duration) -> Watchdog {
    let (tx, rx) = std_mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std_mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("{name}: no progress after {limit:?}, probably a deadlock; aborting");
            std::process::exit(101);
        }
    });
    Watchdog { _disarm: tx }
}

/// Collects everything a tracing subscriber writes (give it
/// `move || captured.clone()` as its writer).
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// What was written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
