//! The REST client's rate limiter against the simulator (issue 11).
//!
//! Two measurements, in one run against one in-process simulator:
//!
//! 1. **Throughput at a limit**, as a ratio of what the limit allows:
//!    - `route`: one channel, `POST /channels/{id}/messages`
//!      limited by the sim to `HTTP_LIMIT` per `HTTP_WINDOW_MS` (50 per 1 s
//!      by default); `HTTP_REQUESTS` messages (250) queued at once;
//!    - `global`: the same count of GETs spread over the sim's guilds, with
//!      the sim's global limit at 50/s and no route limit in the way.
//!
//!    With fixed windows starting at the first request, `n` requests at `l`
//!    per window `w` cannot finish before `(ceil(n / l) - 1) * w`: the
//!    ratio is that ideal over the measured first-request-to-last-response
//!    time (1.0 is as fast as the limit allows). The target is ≥ 0.95 with
//!    0 responses 429.
//! 2. **Limiter overhead**: `GET /users/@me` with no effective limit,
//!    sequentially, through `shardbus::http::Client` and through a bare
//!    hyper-util client with the same connector, building the same request
//!    and under the same round-trip timeout (`DEFAULT_TIMEOUT`: a pending
//!    timer makes each park of the runtime arm a kernel timer, a cost of
//!    the timeout both pay, not of the limiter);
//!    the two take turns request by request, the clients on one thread and
//!    the sim on a runtime of its own; medians of the rounds' per-request
//!    means. (A first version timed whole rounds of each in turn: the
//!    rounds drifted by more than the difference, from -1% to +13%.) The overhead is
//!    `(client - bare) / bare` in percent; the target is ≤ 5%.
//!
//! Run: `cargo bench --bench http` (about 30 s). It writes
//! `target/bench/http.json`: one row per run with `run`, `requests`,
//! `ratio_of_limit`, `responses_429` and, for the overhead run,
//! `limiter_overhead_pct`, `client_us`, `bare_us`.
//!
//! Environment: `HTTP_REQUESTS`, `HTTP_LIMIT`, `HTTP_WINDOW_MS`,
//! `HTTP_ROUNDS` (overhead rounds, default 7), `HTTP_SEQUENTIAL`
//! (requests per overhead round, default 2,000).

#![allow(clippy::unwrap_used)]

mod common;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::report::{env_u64, json_num, spread, target_dir};
use http_body_util::{BodyExt, Full};
use shardbus::http::{Client, DEFAULT_TIMEOUT, LimitConfig};
use shardbus::model::{ChannelId, GuildId};
use shardbus_sim::{RestLimits, RouteLimit, Sim, SimConfig};

/// One row of the table and the JSON.
struct Row {
    run: &'static str,
    requests: u64,
    ideal_ms: f64,
    elapsed_ms: f64,
    responses_429: usize,
    overhead: Option<(f64, f64, f64)>,
}

impl Row {
    fn ratio(&self) -> f64 {
        if self.elapsed_ms > 0.0 && self.ideal_ms > 0.0 {
            self.ideal_ms / self.elapsed_ms
        } else {
            f64::NAN
        }
    }
}

fn client(sim: &Sim, limits: LimitConfig) -> Client {
    Client::new(sim.token())
        .unwrap()
        .api_base(format!("{}/api/v10", sim.http_url()))
        .limits(limits)
}

/// The ideal time for `n` requests at `limit` per `window`.
fn ideal_ms(n: u64, limit: u64, window: Duration) -> f64 {
    (n.div_ceil(limit).saturating_sub(1)) as f64 * window.as_secs_f64() * 1000.0
}

/// `n` messages queued at once on one channel.
async fn route_run(n: u64, limit: u32, window: Duration) -> Row {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        rest_limits: RestLimits {
            create_message: RouteLimit::new(limit, window),
            ..RestLimits::default()
        },
        global_limit: 1_000_000,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let http = client(&sim, LimitConfig::default().global_limit(1_000_000));
    let guild = sim.guild_ids()[0];
    let channel = ChannelId(sim.text_channel_ids(guild)[0]);
    let start = Instant::now();
    let sends: Vec<_> = (0..n)
        .map(|i| {
            let http = http.clone();
            tokio::spawn(async move {
                http.create_message(channel)
                    .content(format!("{i}"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for send in sends {
        send.await.unwrap();
    }
    let elapsed = start.elapsed();
    let row = Row {
        run: "route",
        requests: n,
        ideal_ms: ideal_ms(n, u64::from(limit), window),
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        responses_429: sim.log().responses_429().count(),
        overhead: None,
    };
    sim.shutdown().await;
    row
}

/// `n` GETs over the guilds under the global limit.
async fn global_run(n: u64, limit: u32) -> Row {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        guilds: 50,
        rest_limits: RestLimits {
            get: RouteLimit::new(1_000_000, Duration::from_secs(1)),
            ..RestLimits::default()
        },
        global_limit: limit,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let http = client(&sim, LimitConfig::default().global_limit(limit));
    let guilds = sim.guild_ids();
    let start = Instant::now();
    let sends: Vec<_> = (0..n)
        .map(|i| {
            let http = http.clone();
            let guild = GuildId(guilds[i as usize % guilds.len()].0);
            tokio::spawn(async move { http.guild(guild).await.unwrap() })
        })
        .collect();
    for send in sends {
        send.await.unwrap();
    }
    let elapsed = start.elapsed();
    let row = Row {
        run: "global",
        requests: n,
        ideal_ms: ideal_ms(n, u64::from(limit), Duration::from_secs(1)),
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        responses_429: sim.log().responses_429().count(),
        overhead: None,
    };
    sim.shutdown().await;
    row
}

/// The bare client: the same connector, pool and headers, no limiter.
struct Bare {
    pool: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    >,
    base: String,
    token: String,
}

impl Bare {
    fn new(sim: &Sim) -> Self {
        // TLS is never used against the sim's http:// base; the config only
        // makes the connector the same type as the client's.
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Self {
            pool: hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector),
            base: format!("{}/api/v10", sim.http_url()),
            token: sim.token().to_owned(),
        }
    }

    async fn current_user(&self) -> shardbus::model::User {
        // Built as any client builds a request: the URL from the base and
        // path, the authorization from the token.
        let url: http::Uri = format!("{}/users/@me", self.base).parse().unwrap();
        let request = http::Request::get(url)
            .header(http::header::AUTHORIZATION, format!("Bot {}", self.token))
            .header(http::header::USER_AGENT, "DiscordBot (bench, 1)")
            .body(Full::new(Bytes::new()))
            .unwrap();
        // Under the client's default round-trip timeout, as a deployed
        // client runs: what is compared is the limiter, not the timer.
        let exchange = async {
            let response = self.pool.request(request).await.unwrap();
            assert!(response.status().is_success());
            response.into_body().collect().await.unwrap().to_bytes()
        };
        let body = tokio::time::timeout(DEFAULT_TIMEOUT, exchange)
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }
}

/// The sim of the overhead run: no effective limit anywhere.
fn unlimited() -> SimConfig {
    SimConfig {
        rate: 0.0,
        rest_limits: RestLimits {
            get: RouteLimit::new(1_000_000_000, Duration::from_secs(1)),
            ..RestLimits::default()
        },
        global_limit: 1_000_000_000,
        ..SimConfig::default()
    }
}

/// Sequential `GET /users/@me` against `sim`, the limited client and the
/// bare one taking turns request by request (so drift in the machine or
/// the sim falls on both alike); the median of `rounds` per-round means.
async fn overhead_run(sim: &Sim, rounds: u64, per_round: u64) -> Row {
    let http = client(sim, LimitConfig::default().global_limit(1_000_000_000));
    let bare = Bare::new(sim);
    // Warm both pools.
    for _ in 0..200 {
        http.current_user().await.unwrap();
        bare.current_user().await;
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
        for i in 0..per_round {
            let first_ours = (i + round) % 2 == 0;
            for turn in 0..2 {
                let start = Instant::now();
                if (turn == 0) == first_ours {
                    std::hint::black_box(http.current_user().await.unwrap());
                    a += start.elapsed();
                } else {
                    std::hint::black_box(bare.current_user().await);
                    b += start.elapsed();
                }
            }
        }
        ours.push(a.as_secs_f64() * 1e6 / per_round as f64);
        theirs.push(b.as_secs_f64() * 1e6 / per_round as f64);
    }
    let (client_us, ..) = spread(ours);
    let (bare_us, ..) = spread(theirs);
    Row {
        run: "overhead",
        requests: rounds * per_round * 2,
        ideal_ms: f64::NAN,
        elapsed_ms: f64::NAN,
        responses_429: sim.log().responses_429().count(),
        overhead: Some(((client_us - bare_us) / bare_us * 100.0, client_us, bare_us)),
    }
}

fn write_json(rows: &[Row]) -> std::path::PathBuf {
    let mut out = String::from("{\n  \"rows\": [\n");
    for (i, row) in rows.iter().enumerate() {
        let (pct, ours, bare) = row.overhead.unwrap_or((f64::NAN, f64::NAN, f64::NAN));
        let _ = writeln!(
            out,
            "    {{\"run\": \"{}\", \"requests\": {}, \"ideal_ms\": {}, \"elapsed_ms\": {}, \
             \"ratio_of_limit\": {}, \"responses_429\": {}, \"limiter_overhead_pct\": {}, \
             \"client_us\": {}, \"bare_us\": {}}}{}",
            row.run,
            row.requests,
            json_num(row.ideal_ms, 1),
            json_num(row.elapsed_ms, 1),
            json_num(row.ratio(), 4),
            row.responses_429,
            json_num(pct, 2),
            json_num(ours, 2),
            json_num(bare, 2),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    out.push_str("  ]\n}\n");
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("http.json");
    std::fs::write(&path, out).unwrap();
    path
}

fn main() {
    let n = env_u64("HTTP_REQUESTS").unwrap_or(250).max(1);
    let limit = u32::try_from(env_u64("HTTP_LIMIT").unwrap_or(50).max(1)).unwrap_or(50);
    let window = Duration::from_millis(env_u64("HTTP_WINDOW_MS").unwrap_or(1000).max(1));
    let rounds = env_u64("HTTP_ROUNDS").unwrap_or(7).max(1);
    let per_round = env_u64("HTTP_SEQUENTIAL").unwrap_or(2000).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = runtime.block_on(async {
        eprintln!("route: {n} messages at {limit} per {window:?}");
        let route = route_run(n, limit, window).await;
        eprintln!("global: {n} GETs at {limit}/s");
        let global = global_run(n, limit).await;
        vec![route, global]
    });
    // The overhead run: the sim on the bench's runtime (its two workers),
    // the clients on this thread, so the two never share a worker's queue.
    let sim = runtime.block_on(Sim::start(unlimited())).unwrap();
    let clients = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    eprintln!(
        "overhead: {rounds} rounds of {per_round} sequential GETs, each client, taking turns"
    );
    rows.push(clients.block_on(overhead_run(&sim, rounds, per_round)));
    runtime.block_on(sim.shutdown());
    println!();
    println!(
        "REST limiter against the sim: ratio = ideal / measured time (1.0 = as fast as the limit allows); target >= 0.95 with 0 429s"
    );
    println!("run        requests   ideal ms   measured ms   ratio   429s");
    for row in rows.iter().filter(|r| r.overhead.is_none()) {
        println!(
            "{:<10} {:>8} {:>10.0} {:>13.1} {:>7.3} {:>6}",
            row.run,
            row.requests,
            row.ideal_ms,
            row.elapsed_ms,
            row.ratio(),
            row.responses_429
        );
    }
    if let Some((pct, ours, bare)) = rows.iter().find_map(|r| r.overhead) {
        println!();
        println!(
            "limiter overhead, sequential GET /users/@me, median of {rounds} rounds x {per_round}: shardbus Client {ours:.1} µs/request, bare hyper-util {bare:.1} µs/request: {pct:+.2}% (target <= 5%)"
        );
    }
    let path = write_json(&rows);
    println!("wrote {}", path.display());
}
