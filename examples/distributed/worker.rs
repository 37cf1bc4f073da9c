//! A worker of a distributed bot: handles the MESSAGE_CREATE events that
//! `distributed-host` processes forward to NATS JetStream, with ordinary
//! handlers on a [`NatsBus`], and replies through the REST client.
//!
//! Workers started with the same `--service` share the shards between
//! them (each shard's events in order, in one worker at a time). An event
//! is acknowledged once its handler succeeded; a worker killed mid-way has
//! its events delivered again to the others, marked as redeliveries.
//!
//! It answers `!ping` with a reply, ignores the bot's own messages, and
//! with `--log FILE` appends one line per handled event
//! (`<message id> <shard> <seq> <attempt>`), written before the event is
//! acknowledged. It prints `worker ready` once it has joined the service.
//!
//! ```sh
//! cargo run --features nats --example distributed-worker -- \
//!     --api http://127.0.0.1:7878/api/v10 --token shardbus-sim-token --total 4
//! ```

use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use shardbus::bridge::NatsBus;
use shardbus::http::{Client, DISCORD_API, Http};
use shardbus::model::MessageCreate;
use shardbus::{BoxError, State, TypeMux};

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "distributed-worker", about)]
struct Args {
    /// The NATS server.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// The REST API base, for replies.
    #[arg(long, default_value = DISCORD_API)]
    api: String,
    /// The bot token (or `DISCORD_TOKEN`).
    #[arg(long, env = "DISCORD_TOKEN", hide_env_values = true)]
    token: String,
    /// The bot's shard total.
    #[arg(long)]
    total: u32,
    /// Workers of one service share its events.
    #[arg(long, default_value = "replies")]
    service: String,
    /// Append a line per handled event to this file.
    #[arg(long)]
    log: Option<PathBuf>,
    /// How soon a crashed worker's shards move to the others, in seconds.
    #[arg(long, default_value_t = 3)]
    lease_s: u64,
    /// How long an event may go unacknowledged before it is delivered
    /// again, in seconds.
    #[arg(long, default_value_t = 30)]
    ack_wait_s: u64,
    /// Subjects, stream and buckets start with this.
    #[arg(long, default_value = "shardbus")]
    prefix: String,
}

/// Where handled events are logged.
#[derive(Clone)]
struct Log(Option<Arc<Mutex<File>>>);

/// Logs the event, and answers `!ping`.
async fn on_message(
    msg: Arc<MessageCreate>,
    http: Http,
    State(log): State<Log>,
) -> Result<(), BoxError> {
    if let Some(file) = &log.0 {
        let line = format!(
            "{} {} {} {}\n",
            msg.id.0, msg.meta.shard.0, msg.meta.seq.0, msg.meta.attempt
        );
        // One write per line, unbuffered: on the disk before the ack.
        file.lock()
            .map_err(|_| "log poisoned")?
            .write_all(line.as_bytes())?;
    }
    if msg.author.bot || msg.content != "!ping" {
        return Ok(());
    }
    http.create_message(msg.channel_id)
        .content("pong")
        .reply_to(&msg)
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
    let args = Args::parse();
    let nats = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .reconnect_delay_callback(|n| Duration::from_millis(50 * n.min(20) as u64))
        .connect(&args.nats)
        .await?;
    let http = Client::new(args.token.clone())?.api_base(&args.api);
    let log = match &args.log {
        Some(path) => Some(Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ))),
        None => None,
    };
    let bus = TypeMux::new().with_state(http).with_state(Log(log));
    let worker = NatsBus::builder(
        async_nats::jetstream::new(nats.clone()),
        &args.service,
        args.total,
    )
    .prefix(&args.prefix)
    .events(["MESSAGE_CREATE"])
    .lease_ttl(Duration::from_secs(args.lease_s))
    .ack_wait(Duration::from_secs(args.ack_wait_s))
    .bus(bus)
    .start()
    .await?;
    let _handler = worker.bus().add_handler(on_message);
    println!("worker ready service={}", args.service);

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    let stats = worker.close().await;
    println!(
        "worker stopped: acknowledged {}, redelivered {}, refused {}, dead letters {}",
        stats.acked, stats.redelivered, stats.naked, stats.dead_letters
    );
    Ok(())
}
