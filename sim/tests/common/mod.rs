//! A raw gateway client for the sim's tests: tokio-tungstenite, serde_json,
//! flate2 and the sim's own zstd-stream decoder, nothing from shardbus.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use flate2::{Decompress, FlushDecompress};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use shardbus_sim::testing::ZstdDecoder;
use shardbus_sim::{GuildId, SessionId, SessionState, Sim, SimConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// The zlib-stream flush suffix.
pub const SUFFIX: [u8; 4] = [0, 0, 0xff, 0xff];

/// GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT.
pub const INTENTS: u64 = 1 | (1 << 9) | (1 << 12) | (1 << 15);

/// What the client read.
#[derive(Debug)]
pub enum Event {
    /// A gateway payload.
    Payload(Value),
    /// A close frame.
    Close(Option<u16>, String),
    /// The connection ended without a close frame.
    Ended,
}

/// The transport compression a client asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// No `compress`: text messages.
    Text,
    /// `compress=zlib-stream`.
    Zlib,
    /// `compress=zstd-stream`.
    Zstd,
}

impl Transport {
    /// The query suffix that asks for it.
    pub fn query(self) -> &'static str {
        match self {
            Self::Text => "",
            Self::Zlib => "&compress=zlib-stream",
            Self::Zstd => "&compress=zstd-stream",
        }
    }
}

/// The client's decompressor: one context for the connection.
enum Decoder {
    Text,
    Zlib(Decompress, Vec<u8>),
    Zstd(ZstdDecoder),
}

/// A raw gateway client.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    decoder: Decoder,
    /// Websocket messages the last payload was spread over.
    pub last_frames: usize,
    /// Every zlib message ended in the suffix or was followed by more.
    pub binary_messages: usize,
    /// The last binary message as it came off the wire.
    pub last_binary: Option<Vec<u8>>,
    /// Data bytes of every text and binary message read.
    pub wire_bytes: u64,
    /// Bytes of every payload read, decompressed.
    pub payload_bytes: u64,
}

/// A sim for tests: short timings, a few guilds.
pub fn config() -> SimConfig {
    SimConfig {
        guilds: 12,
        heartbeat_interval: Duration::from_secs(30),
        identify_window: Duration::from_millis(50),
        ..SimConfig::default()
    }
}

pub async fn start(config: SimConfig) -> Sim {
    Sim::start(config).await.unwrap()
}

/// A two-shard sim (one bucket per shard) with a ready client on each shard.
pub async fn two_ready_shards() -> (Sim, Client, Client) {
    let sim = start(SimConfig {
        shards: 2,
        max_concurrency: 2,
        ..config()
    })
    .await;
    let mut a = Client::gateway(&sim, false).await;
    a.ready(&sim, [0, 2]).await;
    let mut b = Client::gateway(&sim, false).await;
    b.ready(&sim, [1, 2]).await;
    (sim, a, b)
}

impl Client {
    /// Connect to `url` (query included).
    pub async fn connect(url: &str, zlib: bool) -> Self {
        let t = if zlib {
            Transport::Zlib
        } else {
            Transport::Text
        };
        Self::connect_with(url, t).await
    }

    /// Connect to `url` (query included), decoding `transport`.
    pub async fn connect_with(url: &str, transport: Transport) -> Self {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .unwrap();
        Self {
            ws,
            decoder: match transport {
                Transport::Text => Decoder::Text,
                Transport::Zlib => Decoder::Zlib(Decompress::new(true), Vec::new()),
                Transport::Zstd => Decoder::Zstd(ZstdDecoder::new().unwrap()),
            },
            last_frames: 0,
            binary_messages: 0,
            last_binary: None,
            wire_bytes: 0,
            payload_bytes: 0,
        }
    }

    /// Connect to the sim's gateway URL with `v=10&encoding=json`.
    pub async fn gateway(sim: &Sim, zlib: bool) -> Self {
        let q = if zlib { "&compress=zlib-stream" } else { "" };
        Self::connect(
            &format!("{}/?v=10&encoding=json{q}", sim.gateway_url()),
            zlib,
        )
        .await
    }

    /// Connect to the sim's gateway URL with `v=10&encoding=json` and `transport`.
    pub async fn gateway_with(sim: &Sim, transport: Transport) -> Self {
        Self::connect_with(
            &format!(
                "{}/?v=10&encoding=json{}",
                sim.gateway_url(),
                transport.query()
            ),
            transport,
        )
        .await
    }

    /// Connect to the sim's resume URL.
    pub async fn resume_url(sim: &Sim, url: &str, zlib: bool) -> Self {
        let _ = sim;
        let q = if zlib { "&compress=zlib-stream" } else { "" };
        Self::connect(&format!("{url}?v=10&encoding=json{q}"), zlib).await
    }

    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_text(&mut self, s: String) {
        self.ws.send(Message::text(s)).await.unwrap();
    }

    pub async fn close(&mut self, code: u16) {
        let frame = CloseFrame {
            code: code.into(),
            reason: "test".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
        // Drain until the server's answer.
        let _ = tokio::time::timeout(WAIT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Read the next event (panics after [`WAIT`]).
    pub async fn next(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.next_inner())
            .await
            .expect("no message from the sim in time")
    }

    async fn next_inner(&mut self) -> Event {
        let mut frames = 0;
        loop {
            let Some(msg) = self.ws.next().await else {
                return Event::Ended;
            };
            let msg = match msg {
                Ok(m) => m,
                Err(_) => return Event::Ended,
            };
            match msg {
                Message::Text(t) => {
                    assert!(
                        matches!(self.decoder, Decoder::Text),
                        "text frame on a compressed connection"
                    );
                    self.last_frames = 1;
                    self.wire_bytes += t.len() as u64;
                    self.payload_bytes += t.len() as u64;
                    return Event::Payload(
                        serde_json::from_str(&t)
                            .unwrap_or_else(|e| Value::String(format!("INVALID JSON ({e}): {t}"))),
                    );
                }
                Message::Binary(b) => {
                    frames += 1;
                    self.binary_messages += 1;
                    self.wire_bytes += b.len() as u64;
                    self.last_binary = Some(b.to_vec());
                    let out = match &mut self.decoder {
                        Decoder::Text => panic!("binary frame without compression"),
                        Decoder::Zlib(d, buf) => {
                            buf.extend_from_slice(&b);
                            if !buf.ends_with(&SUFFIX) {
                                continue;
                            }
                            let input = std::mem::take(buf);
                            inflate(d, &input)
                        }
                        // Every message is a whole payload.
                        Decoder::Zstd(d) => d.decode(&b).expect("bad zstd data from the sim"),
                    };
                    self.last_frames = frames;
                    self.payload_bytes += out.len() as u64;
                    return Event::Payload(serde_json::from_slice(&out).unwrap_or_else(|e| {
                        Value::String(format!(
                            "INVALID JSON ({e}): {}",
                            String::from_utf8_lossy(&out)
                        ))
                    }));
                }
                Message::Close(f) => {
                    return match f {
                        Some(f) => Event::Close(Some(f.code.into()), f.reason.to_string()),
                        None => Event::Close(None, String::new()),
                    };
                }
                _ => {}
            }
        }
    }

    /// The next payload; panics on close.
    pub async fn payload(&mut self) -> Value {
        match self.next().await {
            Event::Payload(v) => v,
            other => panic!("expected a payload, got {other:?}"),
        }
    }

    /// The next payload with this opcode, skipping others (dispatches etc.).
    pub async fn op(&mut self, op: u64) -> Value {
        loop {
            let v = self.payload().await;
            if v["op"] == op {
                return v;
            }
        }
    }

    /// The next dispatch of type `t`, skipping everything else.
    pub async fn dispatch(&mut self, t: &str) -> Value {
        loop {
            let v = self.payload().await;
            if v["op"] == 0 && v["t"] == t {
                return v;
            }
        }
    }

    /// Read until a close frame; returns its code. Panics if the connection
    /// ends without one.
    pub async fn close_code(&mut self) -> (Option<u16>, String) {
        loop {
            match self.next().await {
                Event::Payload(_) => {}
                Event::Close(code, reason) => return (code, reason),
                Event::Ended => panic!("connection ended without a close frame"),
            }
        }
    }

    /// Read until the connection ends; returns whether a close frame came.
    pub async fn ended(&mut self) -> Option<Event> {
        loop {
            match self.next().await {
                Event::Payload(_) => {}
                e => return Some(e),
            }
        }
    }

    /// Read Hello; returns the heartbeat interval.
    pub async fn hello(&mut self) -> u64 {
        let v = self.payload().await;
        assert_eq!(v["op"], 10, "expected Hello, got {v}");
        v["d"]["heartbeat_interval"].as_u64().unwrap()
    }

    pub async fn identify(&mut self, token: &str, shard: [u32; 2], intents: u64) {
        self.send(identify_payload(token, shard, intents)).await;
    }

    /// Identify on [0, 1] (Hello already read), then read READY and every
    /// GUILD_CREATE, their seqs consecutive; returns (session_id,
    /// resume_gateway_url, last seq).
    pub async fn identify_session(&mut self, sim: &Sim) -> (String, String, u64) {
        self.identify(sim.token(), [0, 1], INTENTS).await;
        let ready = self.dispatch("READY").await;
        let guilds = ready["d"]["guilds"].as_array().unwrap().len();
        let mut last = ready["s"].as_u64().unwrap();
        for _ in 0..guilds {
            let g = self.payload().await;
            assert_eq!(g["t"], "GUILD_CREATE", "{g}");
            assert_eq!(g["s"], last + 1, "seqs must be consecutive: {g}");
            last += 1;
        }
        (
            ready["d"]["session_id"].as_str().unwrap().to_owned(),
            ready["d"]["resume_gateway_url"]
                .as_str()
                .unwrap()
                .to_owned(),
            last,
        )
    }

    /// [`hello`](Self::hello), then [`identify_session`](Self::identify_session).
    pub async fn ready_session(&mut self, sim: &Sim) -> (String, String, u64) {
        self.hello().await;
        self.identify_session(sim).await
    }

    /// Send Resume (op 6) for `session` from `seq`, with `token`.
    pub async fn resume(&mut self, token: &str, session: &str, seq: u64) {
        self.send(json!({ "op": 6, "d": { "token": token, "session_id": session, "seq": seq } }))
            .await;
    }

    /// Read the replay through RESUMED, skipping heartbeat ACKs: every
    /// payload a dispatch whose seq follows `last` (advanced as it reads).
    /// Returns the replayed dispatches' contents.
    pub async fn replay(&mut self, last: &mut u64) -> Vec<String> {
        let mut contents = Vec::new();
        loop {
            let p = self.payload().await;
            if p["op"] == 11 {
                continue;
            }
            assert_eq!(p["op"], 0, "{p}");
            assert_eq!(p["s"], *last + 1, "seqs must be consecutive: {p}");
            *last += 1;
            if p["t"] == "RESUMED" {
                return contents;
            }
            contents.push(p["d"]["content"].as_str().unwrap().to_owned());
        }
    }

    /// Hello, Identify, READY; returns READY's `d`.
    pub async fn ready(&mut self, sim: &Sim, shard: [u32; 2]) -> Value {
        self.hello().await;
        self.identify(sim.token(), shard, INTENTS).await;
        let ready = self.payload().await;
        assert_eq!(ready["t"], "READY", "expected READY, got {ready}");
        ready
    }
}

/// A MESSAGE_CREATE's data in the first guild, with content `m{n}`.
pub fn message(n: u64) -> Value {
    json!({
        "id": n.to_string(),
        "channel_id": "1",
        "guild_id": GuildId::nth(0).to_string(),
        "content": format!("m{n}"),
    })
}

/// Wait until the sim's stats show `session` in state `want`.
pub async fn wait_session_state(sim: &Sim, session: &str, want: SessionState) {
    sim.wait_for_stats(WAIT, |s| {
        s.session(&SessionId(session.to_owned()))
            .is_some_and(|x| x.state == want)
    })
    .await
    .unwrap_or_else(|_| panic!("session {session} never became {want:?}"));
}

pub fn identify_payload(token: &str, shard: [u32; 2], intents: u64) -> Value {
    json!({
        "op": 2,
        "d": {
            "token": token,
            "intents": intents,
            "properties": { "os": "linux", "browser": "raw-test", "device": "raw-test" },
            "shard": shard,
        }
    })
}

/// Inflate one sync-flushed chunk with the connection's context.
pub fn inflate(d: &mut Decompress, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 6 + 256);
    let start = d.total_in();
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity());
        }
        let done = (d.total_in() - start) as usize;
        d.decompress_vec(&input[done..], &mut out, FlushDecompress::Sync)
            .expect("bad zlib data from the sim");
        if (d.total_in() - start) as usize == input.len() && out.len() < out.capacity() {
            return out;
        }
    }
}

/// A minimal HTTP/1.1 request over a raw TcpStream; returns (status, body).
pub async fn http(
    sim: &Sim,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = TcpStream::connect(sim.addr()).await.unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        sim.addr()
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(resp).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or(Value::String(body))
    };
    (status, value)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((size, rest)) = s.split_once("\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}
