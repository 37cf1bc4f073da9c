//! The binary prints one machine-readable ready line, then serves.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

#[test]
fn binary_prints_one_ready_line_then_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardbus-sim"))
        .args([
            "--shards", "4", "--guilds", "100", "--rate", "50", "--port", "0", "--token", "tok123",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let line = line.trim_end();
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.len(), 5, "{line}");
    assert_eq!(&parts[..2], ["shardbus-sim", "ready"]);
    let gateway = parts[2].strip_prefix("gateway=ws://127.0.0.1:").unwrap();
    let http = parts[3].strip_prefix("http=http://127.0.0.1:").unwrap();
    assert_eq!(gateway, http);
    let port: u16 = gateway.parse().unwrap();
    assert_ne!(port, 0);
    assert_eq!(parts[4], "token=tok123");

    // It serves: /gateway/bot answers with the shard count.
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET /api/v10/gateway/bot HTTP/1.1\r\nHost: x\r\nAuthorization: Bot tok123\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"shards\":4"), "{resp}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn binary_rejects_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_shardbus-sim"))
        .args(["--rate", "-5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}
