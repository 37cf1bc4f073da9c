//! `shardbus-sim`: run the simulated gateway until ctrl-c.
//!
//! Prints exactly one line to stdout once it is listening:
//!
//! ```text
//! shardbus-sim ready gateway=ws://127.0.0.1:PORT http=http://127.0.0.1:PORT token=TOKEN
//! ```
//!
//! Logs go to stderr (`-v` for more).

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use shardbus_sim::{Sim, SimConfig};

/// A Discord-compatible gateway server for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "shardbus-sim", version, about)]
struct Args {
    /// Recommended shard count (and the total Identify must use).
    #[arg(long, default_value_t = 1)]
    shards: u32,
    /// Number of guilds the bot is in.
    #[arg(long, default_value_t = 10)]
    guilds: u32,
    /// Generated MESSAGE_CREATE per second over all guilds: a number, 0 for
    /// none, or `max`.
    #[arg(long, default_value = "0", value_parser = parse_rate)]
    rate: f64,
    /// TCP port (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    host: IpAddr,
    /// The bot token clients must send.
    #[arg(long, default_value = "shardbus-sim-token")]
    token: String,
    /// `session_start_limit.max_concurrency` (identify buckets).
    #[arg(long, default_value_t = 1)]
    max_concurrency: u32,
    /// Identify rate-limit window per bucket, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    identify_window_ms: u64,
    /// Heartbeat interval sent in Hello, in milliseconds.
    #[arg(long, default_value_t = 41_250)]
    heartbeat_ms: u64,
    /// How long a disconnected session stays resumable, in seconds.
    #[arg(long, default_value_t = 120)]
    resume_window_s: u64,
    /// Log more to stderr (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// Parse `--rate`: a non-negative number or `max`.
fn parse_rate(s: &str) -> Result<f64, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(f64::INFINITY);
    }
    match s.parse::<f64>() {
        Ok(r) if r >= 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("{s:?} is not a non-negative number or `max`")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let level = match args.verbose {
        0 => tracing::Level::INFO,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = SimConfig {
        bind: SocketAddr::new(args.host, args.port),
        token: args.token,
        shards: args.shards,
        guilds: args.guilds,
        max_concurrency: args.max_concurrency,
        identify_window: Duration::from_millis(args.identify_window_ms),
        heartbeat_interval: Duration::from_millis(args.heartbeat_ms),
        resume_window: Duration::from_secs(args.resume_window_s),
        rate: args.rate,
        ..SimConfig::default()
    };
    let sim = match Sim::start(config).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("shardbus-sim: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let line = writeln!(
            out,
            "shardbus-sim ready gateway={} http={} token={}",
            sim.gateway_url(),
            sim.http_url(),
            sim.token()
        );
        if line.and_then(|()| out.flush()).is_err() {
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("shardbus-sim: cannot wait for ctrl-c: {e}");
    }
    sim.shutdown().await;
    ExitCode::SUCCESS
}
