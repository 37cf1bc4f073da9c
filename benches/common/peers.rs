//! The peer client processes of `benches/peers`: their compression modes,
//! how they are built, and how one run of one is started and read.
//!
//! Each client is a separate process built as a user builds it (see
//! `benches/peers/Cargo.toml`). A run prints `ready` when the bench should
//! start the traffic, then one JSON line with its result.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use shardbus::gateway::Compression;
use shardbus_sim::Sim;

use super::report::target_dir;

/// A transport compression mode, as both clients name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No transport compression.
    None,
    /// `compress=zlib-stream`.
    Zlib,
    /// `compress=zstd-stream`.
    Zstd,
}

/// Every mode, in table order.
pub const MODES: [Mode; 3] = [Mode::None, Mode::Zlib, Mode::Zstd];

/// The modes of `MODES` that the comma-separated environment variable `var`
/// selects (`none,zlib,zstd`); `default` if it is unset.
pub fn modes(var: &str, default: &[Mode]) -> Vec<Mode> {
    let Ok(list) = std::env::var(var) else {
        return default.to_vec();
    };
    MODES
        .into_iter()
        .filter(|m| list.split(',').any(|s| s.trim() == m.arg()))
        .collect()
}

impl Mode {
    /// The clients' `--compression` value.
    pub fn arg(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Zlib => "zlib",
            Mode::Zstd => "zstd",
        }
    }

    /// The gateway's name for it (the JSON's `compression`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Zlib => "zlib-stream",
            Mode::Zstd => "zstd-stream",
        }
    }

    /// The library's value for it.
    pub fn library(self) -> Compression {
        match self {
            Mode::None => Compression::None,
            Mode::Zlib => Compression::ZlibStream,
            Mode::Zstd => Compression::ZstdStream,
        }
    }
}

/// The two clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `benches/peers/shardbus-client`.
    Shardbus,
    /// `benches/peers/twilight-client`, twilight-gateway 0.18.
    Twilight,
}

impl Client {
    /// The JSON's `client`.
    pub fn name(self) -> &'static str {
        match self {
            Client::Shardbus => "shardbus",
            Client::Twilight => "twilight",
        }
    }
}

/// The built client binaries.
pub struct Binaries {
    /// Where they were copied.
    dir: PathBuf,
}

impl Binaries {
    /// Builds `shardbus-client` once and `twilight-client` once per mode,
    /// each with its own cargo invocation (no feature unification between
    /// them), and copies the binaries to `target/bench-peers/bin`.
    pub fn build() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let manifest = root.join("benches/peers/Cargo.toml");
        let target = target_dir().join("bench-peers");
        let bin = target.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let jobs: [(&str, &[&str], String); 4] = [
            ("shardbus-client", &[], "shardbus".into()),
            ("twilight-client", &[], "twilight-none".into()),
            (
                "twilight-client",
                &["--features", "zlib"],
                "twilight-zlib".into(),
            ),
            (
                "twilight-client",
                &["--features", "zstd"],
                "twilight-zstd".into(),
            ),
        ];
        for (package, features, name) in jobs {
            eprintln!("building {name}");
            let status = Command::new(&cargo)
                .args(["build", "--release", "--quiet", "--manifest-path"])
                .arg(&manifest)
                .args(["-p", package])
                .args(features)
                .env("CARGO_TARGET_DIR", &target)
                .status()
                .unwrap();
            assert!(status.success(), "building {name} failed");
            std::fs::copy(target.join("release").join(package), bin.join(&name)).unwrap();
        }
        Self { dir: bin }
    }

    /// The binary of `client` for `mode`.
    pub fn path(&self, client: Client, mode: Mode) -> PathBuf {
        match client {
            Client::Shardbus => self.dir.join("shardbus"),
            Client::Twilight => self.dir.join(format!("twilight-{}", mode.arg())),
        }
    }
}

/// A client's command line: the run (`throughput`, `idle`, ...), the sim's
/// URL and token, the compression, then `extra` flags with their values.
pub fn client_args(run: &str, sim: &Sim, mode: Mode, extra: &[(&str, String)]) -> Vec<String> {
    let mut args = vec![
        run.to_owned(),
        "--url".to_owned(),
        sim.gateway_url(),
        "--token".to_owned(),
        sim.token().to_owned(),
        "--compression".to_owned(),
        mode.arg().to_owned(),
    ];
    for (flag, value) in extra {
        args.push((*flag).to_owned());
        args.push(value.clone());
    }
    args
}

/// Runs one client process; `on_ready` runs when it prints `ready`. Returns
/// its result line, parsed.
pub async fn run_client(
    binaries: &Binaries,
    client: Client,
    mode: Mode,
    args: &[String],
    on_ready: impl FnOnce(),
) -> Value {
    let mut child = Command::new(binaries.path(client, mode))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut on_ready = Some(on_ready);
    let mut result = None;
    while let Some(line) = rx.recv().await {
        if line == "ready" {
            if let Some(f) = on_ready.take() {
                f();
            }
        } else if line.starts_with('{') {
            result = Some(serde_json::from_str::<Value>(&line).unwrap());
        }
    }
    reader.join().unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "{} ({}) failed: {status}",
        client.name(),
        mode.name()
    );
    result.unwrap_or_else(|| panic!("{} ({}) printed no result", client.name(), mode.name()))
}

/// A numeric field of a result line, NaN if absent or `null`.
pub fn field(v: &Value, key: &str) -> f64 {
    v.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN)
}
