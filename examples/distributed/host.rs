//! A shard host of a distributed bot: runs a range of the bot's shards and
//! forwards their MESSAGE_CREATE dispatches to NATS JetStream, where
//! `distributed-worker` processes handle them.
//!
//! - Identifies go through a [`NatsIdentifyQueue`], so every host of the
//!   bot keeps one identify per bucket per window, and the daily budget.
//! - Each shard's resume state is kept in NATS ([`ResumeStore`]) as the
//!   server acknowledges its events: a host that is restarted, even after
//!   `kill -9`, resumes its shards instead of identifying them, and the
//!   server drops the events the resume replays that it already has.
//! - Commands from workers (presence, member requests) reach the shards
//!   through a [`CommandServer`].
//!
//! It prints `host ready` once its shards are connected, and on SIGTERM or
//! ctrl-c closes them resumably and prints what it forwarded.
//!
//! ```sh
//! cargo run --features nats --example distributed-host -- \
//!     --api http://127.0.0.1:7878/api/v10 --token shardbus-sim-token --shards 0..2
//! ```

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use shardbus::bridge::{CommandServer, NatsBridge, NatsIdentifyQueue, ResumeStore};
use shardbus::gateway::{GatewayConfig, IdentifyQueue, Intents};
use shardbus::http::{Client, DISCORD_API};
use shardbus::shard::Manager;

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "distributed-host", about)]
struct Args {
    /// The NATS server.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// The REST API base (`GET /gateway/bot` says the gateway URL, the
    /// shard count and the identify limits).
    #[arg(long, default_value = DISCORD_API)]
    api: String,
    /// The bot token (or `DISCORD_TOKEN`).
    #[arg(long, env = "DISCORD_TOKEN", hide_env_values = true)]
    token: String,
    /// The shards this host runs, as `start..end` (all by default).
    #[arg(long, value_parser = parse_range)]
    shards: Option<Range<u32>>,
    /// The shard total (the recommended count by default).
    #[arg(long)]
    total: Option<u32>,
    /// The identify window per bucket, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    identify_window_ms: u64,
    /// Save each shard's resume state after this many forwarded events.
    #[arg(long, default_value_t = 100)]
    save_every: u64,
    /// Subjects, stream and buckets start with this.
    #[arg(long, default_value = "shardbus")]
    prefix: String,
}

/// `start..end`.
fn parse_range(s: &str) -> Result<Range<u32>, String> {
    let (start, end) = s.split_once("..").ok_or("expected start..end")?;
    let start: u32 = start.parse().map_err(|e| format!("{e}"))?;
    let end: u32 = end.parse().map_err(|e| format!("{e}"))?;
    if start >= end {
        return Err("the range is empty".into());
    }
    Ok(start..end)
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
    let js = async_nats::jetstream::new(nats.clone());

    let http = Client::new(args.token.clone())?.api_base(&args.api);
    let bot = http.gateway_bot().await?;
    let total = args.total.unwrap_or(bot.shards);
    let range = args.shards.clone().unwrap_or(0..total);

    let limit = &bot.session_start_limit;
    let queue = NatsIdentifyQueue::open(&js, &args.prefix, limit.max_concurrency)
        .await?
        .window(Duration::from_millis(args.identify_window_ms))
        .with_budget(limit)
        .await?;
    let queue: Arc<dyn IdentifyQueue> = Arc::new(queue);

    // What the last run of these shards kept, if it was for this total.
    let store = ResumeStore::open(&js, &args.prefix).await?;
    let kept = store.load_range(range.clone(), total).await?;
    let resuming = kept.len();

    let identify = GatewayConfig::new(
        args.token.clone(),
        Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT,
    )
    .shard(0, total)
    .gateway_url(&bot.url)
    .identify_queue(queue.clone());
    let manager = Manager::builder(identify)
        .range(range.clone())
        .identify_queue(queue)
        .new_shard(ResumeStore::resume_hook(kept))
        .build();
    // Subscribed before the shards open, so their first dispatches go too.
    let bridge = NatsBridge::builder(js.clone())
        .prefix(&args.prefix)
        .events(["MESSAGE_CREATE"])
        .resume_store(store, &manager, args.save_every)
        .start(manager.bus())
        .await?;
    let commands = CommandServer::serve(nats.clone(), &args.prefix, &manager).await?;
    manager.open().await?;
    println!(
        "host ready shards={}..{} of {total}, resuming {resuming}",
        range.start, range.end
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    commands.close();
    // Resumable, so the next run of these shards picks their sessions up.
    manager.close_resumable().await?;
    let stats = bridge.close().await;
    nats.flush().await?;
    println!(
        "host stopped: forwarded {} ({} duplicates dropped by the server), {} resume saves",
        stats.published, stats.duplicates, stats.saves
    );
    Ok(())
}
