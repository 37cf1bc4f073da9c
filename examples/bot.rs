//! The main job: a small bot on one shard.
//!
//! It counts every message, answers `!ping` with a pong (a presence update,
//! the gateway command a bot can send without the REST API), and reports
//! errors and lifecycle changes. With `DISCORD_TOKEN` set it connects to
//! Discord; without it, it starts the gateway simulator in-process with
//! steady traffic and runs against that.
//!
//! ```sh
//! cargo run --example bot                  # against the simulator, until ctrl-c
//! cargo run --example bot -- --seconds 10  # stop after 10 s
//! DISCORD_TOKEN=... cargo run --example bot
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use shardbus::gateway::{
    GatewayConfig, GatewayError, Intents, ShardHandle, ShardStage, Stage, UpdatePresence,
};
use shardbus::model::MessageCreate;
use shardbus::{BoxError, HandlerError, Session, State, TypeMux, handler};
use shardbus_sim::{Sim, SimConfig};

/// The bot's state, shared by its handlers.
#[derive(Clone, Default)]
struct Bot {
    /// Messages seen.
    messages: Arc<AtomicU64>,
    /// Pings answered.
    pongs: Arc<AtomicU64>,
    /// The shard, for gateway commands (set once the session is open).
    shard: Arc<OnceLock<ShardHandle>>,
}

/// Counts every message; a few calls may overlap.
#[handler(concurrency = 4)]
async fn count(_msg: Arc<MessageCreate>, State(bot): State<Bot>) {
    bot.messages.fetch_add(1, Ordering::Relaxed);
}

/// Answers `!ping` with a pong.
#[handler(name = "bot::ping")]
async fn ping(msg: Arc<MessageCreate>, State(bot): State<Bot>) -> Result<(), BoxError> {
    if msg.content.trim() != "!ping" {
        return Ok(());
    }
    let n = bot.pongs.fetch_add(1, Ordering::Relaxed) + 1;
    println!(
        "!ping from {} in channel {} (shard {}, seq {}) -> pong #{n}",
        msg.author.username, msg.channel_id, msg.meta.shard, msg.meta.seq
    );
    if let Some(shard) = bot.shard.get() {
        let presence = UpdatePresence {
            status: "online".to_owned(),
            activities: vec![serde_json::json!({"name": format!("pong #{n}"), "type": 0})],
            ..UpdatePresence::default()
        };
        shard.update_presence(&presence).await?;
    }
    Ok(())
}

/// Parses `--seconds N`.
fn seconds() -> Result<Option<u64>, BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().position(|a| a == "--seconds") {
        Some(i) => {
            let value = args.get(i + 1).ok_or("--seconds needs a number")?;
            Ok(Some(value.parse().map_err(|_| "--seconds needs a number")?))
        }
        None => Ok(None),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let seconds = seconds()?;
    let intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;

    // Discord with a token; otherwise the simulator, in this process.
    let (config, sim) = match std::env::var("DISCORD_TOKEN") {
        Ok(token) => (GatewayConfig::new(token, intents), None),
        Err(_) => {
            let sim = Sim::start(SimConfig {
                shards: 1,
                guilds: 20,
                rate: 200.0,
                ..SimConfig::default()
            })
            .await?;
            println!(
                "no DISCORD_TOKEN: running against shardbus-sim at {}",
                sim.gateway_url()
            );
            let config = GatewayConfig::new(sim.token(), intents).gateway_url(sim.gateway_url());
            (config, Some(sim))
        }
    };

    let bot = Bot::default();
    let bus = TypeMux::new().with_state(bot.clone());
    let _count = bus.add_handler(count);
    let _ping = bus.add_handler(ping);
    let _errors = bus.add_handler(|err: Arc<HandlerError>| async move {
        eprintln!("handler error: {err}");
    });
    let _gateway_errors = bus.add_handler(|err: Arc<GatewayError>| async move {
        eprintln!("gateway: {err}");
    });
    let _stages = bus.add_handler(|stage: Arc<ShardStage>| async move {
        if matches!(stage.stage, Stage::Connected | Stage::Disconnected { .. }) {
            println!("shard {}: {:?}", stage.shard, stage.stage);
        }
    });

    let session = Session::with_config(config, bus.clone());
    session.open().await?;
    if let Some(shard) = session.shard() {
        let _ = bot.shard.set(shard);
    }

    // With the simulator, someone says !ping every second.
    let pinger = sim.clone().map(|sim| {
        tokio::spawn(async move {
            let guild = sim.guilds_for_shard(0, 1)[0];
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for i in 0u64.. {
                tick.tick().await;
                sim.dispatch(
                    guild,
                    "MESSAGE_CREATE",
                    serde_json::json!({
                        "id": (9_000_000 + i).to_string(),
                        "channel_id": "1",
                        "guild_id": guild.to_string(),
                        "content": "!ping",
                        "author": {"id": "42", "username": "ada", "discriminator": "0", "avatar": null},
                        "timestamp": "2026-11-21T00:00:00.000000+00:00",
                        "tts": false, "mention_everyone": false, "mentions": [],
                        "mention_roles": [], "attachments": [], "embeds": [],
                        "pinned": false, "type": 0
                    }),
                );
            }
        })
    });

    let shutdown = async move {
        match seconds {
            Some(s) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = tokio::time::sleep(Duration::from_secs(s)) => {}
            },
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    let result = session.connect(shutdown).await;
    if let Some(pinger) = pinger {
        pinger.abort();
    }
    println!(
        "stopped: {} messages counted, {} pings answered",
        bot.messages.load(Ordering::Relaxed),
        bot.pongs.load(Ordering::Relaxed)
    );
    bus.stop().await;
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
    result.map_err(|e| -> BoxError { Box::new(ArcError(e)) })
}

/// Lets a shared gateway error be returned from `main`.
#[derive(Debug)]
struct ArcError(Arc<GatewayError>);

impl std::fmt::Display for ArcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ArcError {}
