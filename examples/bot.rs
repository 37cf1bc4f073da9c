//! The main job: a bot on many shards, with a live status and an honest
//! end-of-run check that no event was lost.
//!
//! The bot counts every message, answers `!ping` with a reply message and
//! the `/ping` slash command with an interaction response (both through the
//! REST client, which keeps Discord's rate limits), ignores its own
//! messages, and reports gateway errors. Its shards are run by a
//! [`Manager`].
//!
//! With `DISCORD_TOKEN` set it connects to Discord, with the shard count
//! Discord recommends unless `--shards` is given. Without it, it starts the
//! gateway simulator in-process: `--shards` shards, `--guilds` guilds,
//! `--rate` messages per second, a `!ping` and a `/ping` every second, and every few
//! seconds a fault injected into one shard's connection (op 7, a dropped
//! socket, op 9 resumable, and now and then op 9 not resumable, which
//! forces a new session).
//!
//! While it runs it shows one line per shard (stage, latency, events/s,
//! resumes, re-identifies): redrawn in place every second on a terminal,
//! appended every 5 s otherwise. On ctrl-c or after `--seconds` it stops
//! the traffic, lets the shards drain, closes them and prints a summary.
//! Against the simulator the summary checks what the bot received against
//! what the server says it sent: every dispatch the server wrote to a
//! session must have reached the bot exactly once (and every MESSAGE_CREATE
//! its handler exactly once). Dispatches the server had queued for a
//! session that was then invalidated are never delivered (Discord drops
//! those too); they are counted apart, not as lost. The exit status is
//! non-zero if anything was lost or duplicated.
//!
//! ```sh
//! cargo run --example bot                            # against the simulator, until ctrl-c
//! cargo run --example bot -- --seconds 10 --shards 8 # stop after 10 s
//! cargo run --example bot -- --help
//! DISCORD_TOKEN=... cargo run --example bot
//! ```

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use clap::Parser;
use clap::builder::BoolishValueParser;
use shardbus::gateway::{DispatchHook, DispatchMeta, GatewayConfig, GatewayError, Intents, Stage};
use shardbus::http::commands::{CommandContext, Commands};
use shardbus::http::{Http, InteractionMessage};
use shardbus::model::{ApplicationCommand, ApplicationId, MessageCreate, Ready};
use shardbus::shard::{Manager, ShardInfo};
use shardbus::{BoxError, HandlerError, Session, State, TypeMux, handler};
use shardbus_sim::{
    Closer, Fault, FaultTarget, NewInteraction, ResumeOutcome, SessionState, Sim, SimConfig,
    SimLog, SimStats,
};
use tokio::sync::{mpsc, watch};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "bot",
    about = "A shardbus bot on many shards: against the in-process gateway \
             simulator, or Discord with DISCORD_TOKEN set.",
    after_help = "Without DISCORD_TOKEN the simulator runs in this process, with \
                  steady traffic and injected faults; the summary then checks that \
                  nothing was lost (exit status 1 if something was)."
)]
struct Args {
    /// Shards to run [default: 4 on the simulator, Discord's
    /// recommendation with DISCORD_TOKEN]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    shards: Option<u32>,

    /// Guilds the simulated bot is in
    #[arg(long, value_name = "N", default_value_t = 1000)]
    guilds: u32,

    /// MESSAGE_CREATE per second from the simulator's generator
    #[arg(long, value_name = "R", default_value_t = 500.0, value_parser = non_negative)]
    rate: f64,

    /// Stop after this many seconds of running [default: until ctrl-c]
    #[arg(long, value_name = "N")]
    seconds: Option<u64>,

    /// Inject faults into the simulator's connections
    #[arg(
        long,
        value_name = "on|off",
        default_value = "on",
        action = clap::ArgAction::Set,
        hide_possible_values = true,
        value_parser = BoolishValueParser::new(),
    )]
    faults: bool,

    /// Seconds between injected faults
    #[arg(long, value_name = "S", default_value_t = 2.0, value_parser = positive)]
    fault_every: f64,

    /// Serve Prometheus metrics at http://ADDR/metrics (feature `metrics`)
    #[cfg(feature = "metrics")]
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
}

/// Parses a finite number `>= 0`.
fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number >= 0")),
    }
}

/// Parses a finite number `> 0`.
fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number > 0")),
    }
}

/// The shard count on the simulator when `--shards` is not given.
const DEFAULT_SIM_SHARDS: u32 = 4;

/// The simulator's identify window; the bot's queue waits twice as long,
/// so no scheduling delay can land two identifies inside the server's.
const SIM_IDENTIFY_WINDOW: Duration = Duration::from_millis(100);

/// The longest the shards get to drain at the end.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// The bot's state, shared by its handlers.
#[derive(Clone)]
struct Bot {
    /// The REST client, for the summary's count of 429s.
    http: shardbus::http::Client,
    /// Messages seen.
    messages: Arc<AtomicU64>,
    /// `!ping`s answered with a reply.
    pongs: Arc<AtomicU64>,
    /// `/ping`s answered.
    slash_pongs: Arc<AtomicU64>,
    /// What the gateway delivered, to check against the server.
    ledger: Arc<Ledger>,
}

/// Counts every message; a few calls may overlap.
#[handler(concurrency = 4)]
async fn count(msg: Arc<MessageCreate>, State(bot): State<Bot>) {
    bot.messages.fetch_add(1, Ordering::Relaxed);
    bot.ledger.handled(msg.meta.shard.0, msg.id.get());
}

/// Answers `!ping` with a reply, through the REST client (the `Http`
/// extractor); the bot's own messages (its replies come back as
/// MESSAGE_CREATE too) are not answered.
#[handler(name = "bot::ping")]
async fn ping(msg: Arc<MessageCreate>, http: Http, State(bot): State<Bot>) -> Result<(), BoxError> {
    if msg.author.bot || msg.content.trim() != "!ping" {
        return Ok(());
    }
    // Numbered by what was sent before; counted once it was.
    let n = bot.pongs.load(Ordering::Relaxed) + 1;
    http.create_message(msg.channel_id)
        .content(format!("pong #{n}"))
        .reply_to(&msg)
        .await?;
    bot.pongs.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// The bot's slash commands: `/ping`.
fn commands(bot: &Bot) -> Commands {
    let bot = bot.clone();
    Commands::new().command(
        ApplicationCommand::slash("ping", "Checks that the bot answers"),
        move |ctx: CommandContext| {
            let bot = bot.clone();
            async move {
                let n = bot.slash_pongs.load(Ordering::Relaxed) + 1;
                ctx.reply(InteractionMessage::text(format!("pong #{n}")))
                    .await?;
                bot.slash_pongs.fetch_add(1, Ordering::Relaxed);
                Ok::<_, BoxError>(())
            }
        },
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    // Parsed before anything starts: `--help` and mistakes exit here.
    let args = Args::parse();
    match run(args).await {
        Ok(code) => code,
        Err(error) => {
            let mut text = format!("error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                let _ = write!(text, ": {cause}");
                source = cause.source();
            }
            eprintln!("{text}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the bot; the exit status says whether the check passed.
async fn run(args: Args) -> Result<ExitCode, BoxError> {
    let token = std::env::var("DISCORD_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    // The recorder goes in before the bus and the shards: they resolve
    // their metric handles when they are made.
    #[cfg(feature = "metrics")]
    if let Some(addr) = args.metrics_addr {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()?;
        shardbus::metrics::describe();
        println!("metrics at http://{addr}/metrics");
    }
    let ledger = Arc::new(Ledger::default());
    let bus = TypeMux::new();

    // Discord with a token; otherwise the simulator, in this process.
    let (manager, sim) = match token {
        Some(token) => (discord(&args, token, intents, &bus, &ledger).await?, None),
        None => {
            let (manager, sim) = simulated(&args, intents, &bus, &ledger).await?;
            (manager, Some(sim))
        }
    };

    let (notes, notes_rx) = mpsc::unbounded_channel();
    let http: shardbus::http::Client = bus
        .state()
        .ok_or("the manager registers its HTTP client on the bus")?;
    let bot = Bot {
        http: http.clone(),
        messages: Arc::default(),
        pongs: Arc::default(),
        slash_pongs: Arc::default(),
        ledger: ledger.clone(),
    };
    let bus = bus.with_state(bot.clone());
    let _count = bus.add_handler(count);
    let _ping = bus.add_handler(ping);
    // `/ping`: registered with one bulk overwrite, routed by name.
    let slash = commands(&bot);
    let me = http.current_user().await?;
    slash
        .register(&http, ApplicationId(me.id.get()), None)
        .await?;
    let _slash = slash.attach(&bus, http.clone());
    let errors = Arc::new(ErrorCount::default());
    let _handler_errors = bus.add_handler({
        let notes = notes.clone();
        move |err: Arc<HandlerError>| {
            let notes = notes.clone();
            async move {
                let _ = notes.send(Note::Error(format!("handler error: {err}")));
            }
        }
    });
    let _gateway_errors = bus.add_handler({
        let (notes, errors) = (notes.clone(), errors.clone());
        move |err: Arc<GatewayError>| {
            let (notes, errors) = (notes.clone(), errors.clone());
            async move {
                errors.count(&err);
                let kind = if err.fatal { "fatal" } else { "will retry" };
                let _ = notes.send(Note::Error(format!("gateway ({kind}): {err}")));
            }
        }
    });

    let session = Session::with_manager(manager.clone());
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    println!("opening {} shards...", manager.num_shards());
    tokio::select! {
        opened = session.open() => {
            if let Err(error) = opened {
                eprintln!("could not open the shards: {error}");
                finish(&bus, sim.as_ref()).await;
                return Ok(ExitCode::FAILURE);
            }
        }
        () = &mut shutdown => {
            session.close().await;
            finish(&bus, sim.as_ref()).await;
            return Ok(ExitCode::SUCCESS);
        }
    }
    let started = Instant::now();

    let (stop, stopped) = watch::channel(false);
    let faults = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    if let Some(sim) = &sim {
        sim.start_traffic(args.rate);
        tasks.push(tokio::spawn(pinger(sim.clone(), stopped.clone())));
        if args.faults {
            tasks.push(tokio::spawn(inject_faults(
                sim.clone(),
                manager.clone(),
                Duration::from_secs_f64(args.fault_every),
                faults.clone(),
                notes.clone(),
                stopped.clone(),
            )));
        }
    }
    let screen = Screen::new(std::io::stdout().is_terminal());
    let status = Status::new(manager.clone(), bot.clone(), faults.clone(), started);
    let (done, done_rx) = watch::channel(false);
    let screen_task = tokio::spawn(show(screen, status, notes_rx, done_rx));

    // Run until ctrl-c, `--seconds`, or a fatal error.
    let running = async {
        match args.seconds {
            Some(s) => {
                tokio::select! {
                    () = &mut shutdown => {}
                    () = tokio::time::sleep(Duration::from_secs(s)) => {}
                }
            }
            None => (&mut shutdown).await,
        }
    };
    let fatal = tokio::select! {
        result = session.wait() => result.err(),
        () = running => None,
    };

    // Stop the sources, then let the shards take in what is on its way (a
    // second ctrl-c skips that).
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let mut drained = true;
    if let Some(sim) = &sim {
        sim.stop_traffic();
        if fatal.is_none() {
            let _ = notes.send(Note::Line("stopping: draining the shards...".to_owned()));
            drained = tokio::select! {
                drained = drain(sim, &manager, &ledger) => drained,
                () = shutdown_signal() => false,
            };
        }
    }
    let infos = infos(&manager);
    let live = sim
        .as_ref()
        .map(|sim| live_sessions(&sim.stats()))
        .unwrap_or_default();
    let _ = done.send(true);
    let (mut screen, mut status, mut notes_rx) = screen_task.await?;
    while let Ok(note) = notes_rx.try_recv() {
        screen.note(&note);
    }
    screen.status(status.final_lines(&infos));
    session.close().await;

    let check = sim
        .as_ref()
        .map(|sim| Check::of(&ledger.received(), &sim.stats(), &live));
    let mut lines = summary(started, &infos, &bot, &faults, &errors);
    if let Some(error) = &fatal {
        lines.push(format!("  stopped by a fatal error: {error}"));
    }
    match &check {
        Some(check) => {
            let hint = sim
                .as_ref()
                .filter(|_| check.lost() > 0)
                .and_then(|sim| overload(&sim.log()));
            check.write(&mut lines, hint);
            if !drained {
                lines.push("  (the shards had not drained when they were closed)".to_owned());
            }
        }
        None => lines.push("  lost: not checked (no simulator to ask)".to_owned()),
    }
    println!("{}", lines.join("\n"));
    finish(&bus, sim.as_ref()).await;
    let passed = fatal.is_none() && check.is_none_or(|c| c.passed());
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The summary's counters.
fn summary(
    started: Instant,
    infos: &[(u32, Option<ShardInfo>)],
    bot: &Bot,
    faults: &AtomicU64,
    errors: &ErrorCount,
) -> Vec<String> {
    let totals = Totals::of(infos);
    vec![
        format!("summary after {:.1} s:", started.elapsed().as_secs_f64()),
        format!("  events handled = {}", totals.events),
        format!(
            "  messages counted = {}",
            bot.messages.load(Ordering::Relaxed)
        ),
        format!(
            "  replies sent = {} (!ping), {} (/ping)",
            bot.pongs.load(Ordering::Relaxed),
            bot.slash_pongs.load(Ordering::Relaxed)
        ),
        format!(
            "  429s received = {} (0 expected)",
            bot.http.responses_429()
        ),
        format!("  resumes = {}", totals.resumes),
        format!("  re-identifies = {}", totals.reidentifies),
        format!("  reconnects = {}", totals.reconnects),
        format!("  faults injected = {}", faults.load(Ordering::Relaxed)),
        format!(
            "  gateway errors = {} ({} fatal)",
            errors.all.load(Ordering::Relaxed),
            errors.fatal.load(Ordering::Relaxed)
        ),
    ]
}

/// The manager builder both modes share: the bus, the ledger as dispatch
/// hook, and the HTTP client for `GET /gateway/bot` (and 4011 rescales).
fn builder(
    config: GatewayConfig,
    http: shardbus::http::Client,
    bus: &TypeMux,
    ledger: &Arc<Ledger>,
) -> shardbus::shard::ManagerBuilder {
    Manager::builder(config)
        .http(http)
        .dispatch_hook(ledger.clone())
        .bus(bus.clone())
}

/// A manager for Discord: the shard count `GET /gateway/bot` recommends,
/// or `--shards`.
async fn discord(
    args: &Args,
    token: String,
    intents: Intents,
    bus: &TypeMux,
    ledger: &Arc<Ledger>,
) -> Result<Manager, BoxError> {
    println!("DISCORD_TOKEN set: connecting to Discord");
    let http = shardbus::http::Client::new(token.clone())?;
    let config = GatewayConfig::new(token, intents);
    Ok(match args.shards {
        // The count is given: ask nothing (a 4011 still rescales).
        Some(total) => builder(config.shard(0, total), http, bus, ledger).build(),
        None => builder(config, http, bus, ledger).fetch().await?,
    })
}

/// The simulator, in this process, and a manager on it that asks the
/// simulator's `GET /gateway/bot` as it would Discord's.
async fn simulated(
    args: &Args,
    intents: Intents,
    bus: &TypeMux,
    ledger: &Arc<Ledger>,
) -> Result<(Manager, Sim), BoxError> {
    let shards = args.shards.unwrap_or(DEFAULT_SIM_SHARDS);
    let sim = Sim::start(SimConfig {
        shards,
        guilds: args.guilds,
        // Traffic starts once every shard is ready.
        rate: 0.0,
        max_concurrency: 1,
        identify_window: SIM_IDENTIFY_WINDOW,
        // Latency shows within seconds, not after Discord's 41 s.
        heartbeat_interval: Duration::from_millis(2500),
        ..SimConfig::default()
    })
    .await?;
    println!(
        "no DISCORD_TOKEN: running against shardbus-sim at {} ({shards} shards, {} guilds, {} messages/s, faults {})",
        sim.gateway_url(),
        args.guilds,
        args.rate,
        if args.faults { "on" } else { "off" },
    );
    let http =
        shardbus::http::Client::new(sim.token())?.api_base(format!("{}/api/v10", sim.http_url()));
    let config =
        GatewayConfig::new(sim.token(), intents).reconnect_backoff_max(Duration::from_millis(500));
    let manager = builder(config, http, bus, ledger)
        .identify_window(SIM_IDENTIFY_WINDOW * 2)
        .fetch()
        .await?;
    Ok((manager, sim))
}

/// Completes on the first ctrl-c (never, if it cannot be listened for).
async fn shutdown_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Stops the bus and the simulator.
async fn finish(bus: &TypeMux, sim: Option<&Sim>) {
    bus.stop().await;
    if let Some(sim) = sim {
        sim.shutdown().await;
    }
}

/// Waits until `stop` says so (or its sender is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Someone says `!ping` every second, each time in another guild, so every
/// shard gets some; and someone uses `/ping` in the next one.
async fn pinger(sim: Sim, mut stop: watch::Receiver<bool>) {
    let guilds = sim.guild_ids();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for i in 0u64.. {
        tokio::select! {
            () = stopping(&mut stop) => return,
            _ = tick.tick() => {}
        }
        let n = usize::try_from(i.wrapping_mul(7919)).unwrap_or(0);
        let pick = |k: usize| guilds.get(k % guilds.len().max(1)).copied();
        let (Some(guild), Some(other)) = (pick(n), pick(n + 1)) else {
            return;
        };
        // A channel the sim knows, so the reply can be posted there.
        let Some(&channel) = sim.text_channel_ids(guild).first() else {
            continue;
        };
        sim.dispatch(
            guild,
            "MESSAGE_CREATE",
            serde_json::json!({
                "id": (9_000_000 + i).to_string(),
                "channel_id": channel.to_string(),
                "guild_id": guild.to_string(),
                "content": "!ping",
                "author": {"id": "42", "username": "ada", "discriminator": "0", "avatar": null},
                "timestamp": "2026-11-21T00:00:00.000000+00:00",
                "tts": false, "mention_everyone": false, "mentions": [],
                "mention_roles": [], "attachments": [], "embeds": [],
                "pinned": false, "type": 0
            }),
        );
        let _ = sim.inject_interaction(NewInteraction::command(other, "ping"));
    }
}

/// The faults injected, in turn: resumable ones, and one in five a
/// session the server invalidates (the shard must identify again).
const FAULTS: [Fault; 5] = [
    Fault::Reconnect,
    Fault::Drop,
    Fault::InvalidSession { resumable: false },
    Fault::InvalidSession { resumable: true },
    Fault::Drop,
];

/// What a fault of [`FAULTS`] does, for the screen.
fn describe(fault: Fault) -> &'static str {
    match fault {
        Fault::Reconnect => "op 7 reconnect",
        Fault::Drop => "dropped TCP connection",
        Fault::InvalidSession { resumable: true } => "op 9 invalid session (resumable)",
        Fault::InvalidSession { resumable: false } => {
            "op 9 invalid session (not resumable: a new session)"
        }
        _ => "a fault",
    }
}

/// Every `every`, injects the next fault of [`FAULTS`] into a connected
/// shard picked at random.
async fn inject_faults(
    sim: Sim,
    manager: Manager,
    every: Duration,
    injected: Arc<AtomicU64>,
    notes: mpsc::UnboundedSender<Note>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut next = 0;
    loop {
        tokio::select! {
            () = stopping(&mut stop) => return,
            _ = tick.tick() => {}
        }
        let connected: Vec<u32> = manager
            .range()
            .filter(|&id| {
                manager
                    .info(id)
                    .is_some_and(|info| info.stage == Stage::Connected)
            })
            .collect();
        if connected.is_empty() {
            continue;
        }
        let shard = connected[fastrand::usize(..connected.len())];
        let fault = FAULTS[next % FAULTS.len()];
        if sim.fault(FaultTarget::Shard(shard), fault) > 0 {
            next += 1;
            injected.fetch_add(1, Ordering::Relaxed);
            let _ = notes.send(Note::Line(format!(
                "fault: {} on shard {shard}",
                describe(fault)
            )));
        }
    }
}

/// Waits until every shard is connected and has received everything the
/// simulator sent its session (and the handler every message); `false` if
/// that took longer than [`DRAIN_LIMIT`].
async fn drain(sim: &Sim, manager: &Manager, ledger: &Ledger) -> bool {
    let deadline = Instant::now() + DRAIN_LIMIT;
    loop {
        let connected = manager.range().all(|id| {
            manager
                .info(id)
                .is_some_and(|info| info.stage == Stage::Connected)
        });
        let stats = sim.stats();
        let check = Check::of(&ledger.received(), &stats, &live_sessions(&stats));
        if connected && check.settled() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Why the server ended sessions of a bot that could not keep up, if it
/// did: missed heartbeats, a connection too far behind, resumes from a seq
/// no longer buffered.
fn overload(log: &SimLog) -> Option<String> {
    let closed = |reason: &str| {
        log.connections
            .iter()
            .filter_map(|c| c.closed.as_ref())
            .filter(|c| c.by == Closer::Server && c.reason.contains(reason))
            .count()
    };
    let (heartbeats, behind) = (closed("heartbeat timeout"), closed("too slow"));
    let refused = log
        .resumes
        .iter()
        .filter(|r| r.outcome == ResumeOutcome::SeqNotBuffered)
        .count();
    (heartbeats + behind + refused > 0).then(|| {
        format!(
            "    (the server closed {heartbeats} connections for missed heartbeats and \
             {behind} for falling behind,\n     and refused {refused} resumes from seqs it no \
             longer had: the bot could not keep up with --rate; a debug build?)"
        )
    })
}

/// The sessions the simulator has a connection attached to.
fn live_sessions(stats: &SimStats) -> HashSet<String> {
    stats
        .shards
        .iter()
        .flat_map(|s| &s.sessions)
        .filter(|s| s.state == SessionState::Live)
        .map(|s| s.session_id.0.clone())
        .collect()
}

/// Gateway errors seen.
#[derive(Default)]
struct ErrorCount {
    /// All of them.
    all: AtomicU64,
    /// Those that stopped a shard.
    fatal: AtomicU64,
}

impl ErrorCount {
    /// Counts `error`.
    fn count(&self, error: &GatewayError) {
        self.all.fetch_add(1, Ordering::Relaxed);
        if error.fatal {
            self.fatal.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Every shard of the manager's range and its info, if it is open.
fn infos(manager: &Manager) -> Vec<(u32, Option<ShardInfo>)> {
    manager.range().map(|id| (id, manager.info(id))).collect()
}

/// The shards' counters, summed.
#[derive(Default)]
struct Totals {
    /// Dispatches received.
    events: u64,
    /// Sessions resumed.
    resumes: u64,
    /// Sessions started after the first.
    reidentifies: u64,
    /// Connections opened after the first.
    reconnects: u64,
}

impl Totals {
    /// The sums over `infos`.
    fn of(infos: &[(u32, Option<ShardInfo>)]) -> Self {
        let mut totals = Self::default();
        for info in infos.iter().filter_map(|(_, info)| info.as_ref()) {
            totals.events += info.events;
            totals.resumes += info.resumes;
            totals.reidentifies += info.reidentifies;
            totals.reconnects += info.reconnects;
        }
        totals
    }
}

/// A line for the screen, from a handler or a task.
enum Note {
    /// Something that happened.
    Line(String),
    /// An error (to stderr when stdout is not a terminal).
    Error(String),
}

/// Stdout: on a terminal the status block stays at the bottom and is
/// redrawn in place, notes scrolling above it; otherwise everything is
/// appended.
struct Screen {
    /// Whether stdout is a terminal.
    tty: bool,
    /// The status block last drawn (terminal only).
    block: Vec<String>,
    /// How many lines of it are on the screen.
    drawn: usize,
}

impl Screen {
    /// A screen for a terminal or not.
    fn new(tty: bool) -> Self {
        Self {
            tty,
            block: Vec::new(),
            drawn: 0,
        }
    }

    /// How often the status is shown.
    fn period(&self) -> Duration {
        Duration::from_secs(if self.tty { 1 } else { 5 })
    }

    /// Shows a note.
    fn note(&mut self, note: &Note) {
        match (self.tty, note) {
            (true, Note::Line(text) | Note::Error(text)) => self.redraw(Some(text)),
            (false, Note::Line(text)) => println!("{text}"),
            (false, Note::Error(text)) => eprintln!("{text}"),
        }
    }

    /// Shows the status block.
    fn status(&mut self, block: Vec<String>) {
        if self.tty {
            self.block = block;
            self.redraw(None);
        } else {
            let mut out = std::io::stdout().lock();
            for line in block {
                let _ = writeln!(out, "{line}");
            }
            let _ = out.flush();
        }
    }

    /// Terminal only: moves up over the block, writes `note` (if any) where
    /// it was, then the block below it, clearing each line first.
    fn redraw(&mut self, note: Option<&str>) {
        let mut out = std::io::stdout().lock();
        let mut text = String::new();
        if self.drawn > 0 {
            let _ = write!(text, "\x1b[{}A", self.drawn);
        }
        for line in note
            .into_iter()
            .chain(self.block.iter().map(String::as_str))
        {
            let _ = writeln!(text, "\r\x1b[2K{line}");
        }
        text.push_str("\x1b[J");
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        self.drawn = self.block.len();
    }
}

/// Makes the status block: a header, then one line per shard.
struct Status {
    /// The shards.
    manager: Manager,
    /// The bot's counters.
    bot: Bot,
    /// Faults injected.
    faults: Arc<AtomicU64>,
    /// When the shards were ready.
    started: Instant,
    /// Each shard's event count at the last sample, and when.
    last: HashMap<u32, (Instant, u64)>,
}

impl Status {
    /// The status of `manager`'s shards, counted from `started`.
    fn new(manager: Manager, bot: Bot, faults: Arc<AtomicU64>, started: Instant) -> Self {
        // Rates count from now, not from the guild creates of the start.
        let now = Instant::now();
        let last = infos(&manager)
            .into_iter()
            .filter_map(|(id, info)| Some((id, (now, info?.events))))
            .collect();
        Self {
            manager,
            bot,
            faults,
            started,
            last,
        }
    }

    /// The block for the shards as they are now.
    fn sample(&mut self) -> Vec<String> {
        let infos = infos(&self.manager);
        self.lines(&infos)
    }

    /// The last block, for `infos`, with events/s averaged over the run.
    fn final_lines(&mut self, infos: &[(u32, Option<ShardInfo>)]) -> Vec<String> {
        self.last.clear();
        let mut lines = self.lines(infos);
        if let Some(header) = lines.first_mut() {
            *header = header.replacen("status at", "final status after", 1);
        }
        lines
    }

    /// The block for `infos`; events/s are since the last call (or the
    /// start).
    fn lines(&mut self, infos: &[(u32, Option<ShardInfo>)]) -> Vec<String> {
        let now = Instant::now();
        let mut lines = vec![format!(
            "status at {:.1} s: {} messages, {} pings answered, {} faults injected",
            self.started.elapsed().as_secs_f64(),
            self.bot.messages.load(Ordering::Relaxed),
            self.bot.pongs.load(Ordering::Relaxed) + self.bot.slash_pongs.load(Ordering::Relaxed),
            self.faults.load(Ordering::Relaxed),
        )];
        for (id, info) in infos {
            let Some(info) = info else {
                lines.push(format!("  shard {id}: not open"));
                continue;
            };
            let (since, before) = self
                .last
                .insert(*id, (now, info.events))
                .unwrap_or((self.started, 0));
            let secs = now.duration_since(since).as_secs_f64();
            let rate = if secs > 0.0 {
                info.events.saturating_sub(before) as f64 / secs
            } else {
                0.0
            };
            let latency = info
                .latency
                .map_or_else(|| "-".to_owned(), |l| format!("{} ms", l.as_millis()));
            lines.push(format!(
                "  shard {id}: {:<12} {latency:>6}  {rate:>5.0} events/s  {} resumes  {} re-identifies",
                stage(info.stage),
                info.resumes,
                info.reidentifies,
            ));
        }
        lines
    }
}

/// A shard stage in a word or two.
fn stage(stage: Stage) -> &'static str {
    match stage {
        Stage::Queued => "queued",
        Stage::Connecting => "connecting",
        Stage::Identifying => "identifying",
        Stage::Resuming => "resuming",
        Stage::Connected => "connected",
        Stage::Disconnected { .. } => "disconnected",
        Stage::Stopped => "stopped",
        _ => "?",
    }
}

/// Shows notes as they come and the status every [`Screen::period`] until
/// `done`; hands the screen, the status and the notes back.
async fn show(
    mut screen: Screen,
    mut status: Status,
    mut notes: mpsc::UnboundedReceiver<Note>,
    mut done: watch::Receiver<bool>,
) -> (Screen, Status, mpsc::UnboundedReceiver<Note>) {
    let period = screen.period();
    // On a terminal the block shows at once; appended blocks only after a
    // period (the final one comes with the summary).
    let first = if screen.tty {
        tokio::time::Instant::now()
    } else {
        tokio::time::Instant::now() + period
    };
    let mut tick = tokio::time::interval_at(first, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stopping(&mut done) => break,
            Some(note) = notes.recv() => screen.note(&note),
            _ = tick.tick() => {
                let block = status.sample();
                screen.status(block);
            }
        }
    }
    (screen, status, notes)
}

/// What the shards received, kept by their dispatch hook (it sees each
/// dispatch in sequence order, with the Ready that names the session) and
/// by the message handler.
#[derive(Default)]
struct Ledger {
    /// The record.
    inner: Mutex<Received>,
}

/// The record of a [`Ledger`].
#[derive(Default)]
struct Received {
    /// The session each shard is on, from its last Ready.
    current: HashMap<u32, String>,
    /// The seqs received, per session.
    sessions: HashMap<String, SeqSet>,
    /// Seqs received more than once in a session.
    duplicate_seqs: u64,
    /// Dispatches received on a shard before any Ready.
    sessionless: u64,
    /// MESSAGE_CREATEs decoded and not yet handled, by shard and message
    /// id, with how many times.
    unhandled: HashMap<(u32, u64), u32>,
    /// Messages handled more often than they were received.
    handled_twice: u64,
}

impl Ledger {
    /// The record, locked.
    fn received(&self) -> MutexGuard<'_, Received> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The handler got message `id` from `shard`.
    fn handled(&self, shard: u32, id: u64) {
        let mut received = self.received();
        match received.unhandled.get_mut(&(shard, id)) {
            Some(1) => {
                received.unhandled.remove(&(shard, id));
            }
            Some(n) => *n -= 1,
            None => received.handled_twice += 1,
        }
    }
}

impl DispatchHook for Ledger {
    fn wants(&self, _event: TypeId) -> bool {
        // Every type: each dispatch's seq is checked, not only messages'.
        true
    }

    fn on_dispatch(&self, meta: DispatchMeta, event: &(dyn Any + Send + Sync)) {
        let shard = meta.shard.0;
        let mut received = self.received();
        let received = &mut *received;
        if let Some(ready) = event.downcast_ref::<Ready>() {
            received.current.insert(shard, ready.session_id.0.clone());
        }
        let Some(session) = received.current.get(&shard) else {
            received.sessionless += 1;
            return;
        };
        let seqs = received.sessions.entry(session.clone()).or_default();
        received.duplicate_seqs += seqs.insert(meta.seq.0, meta.seq.0);
        if let Some(msg) = event.downcast_ref::<MessageCreate>() {
            *received.unhandled.entry((shard, msg.id.get())).or_default() += 1;
        }
    }
}

/// A set of seqs, as sorted, disjoint, non-touching inclusive ranges (a
/// session's seqs arrive in order, so this stays a handful of ranges).
#[derive(Default)]
struct SeqSet {
    /// The ranges.
    ranges: Vec<(u64, u64)>,
}

impl SeqSet {
    /// Adds `first..=last`; returns how many of them were there already.
    fn insert(&mut self, first: u64, last: u64) -> u64 {
        if let Some(end) = self.ranges.last_mut()
            && first == end.1 + 1
        {
            end.1 = last;
            return 0;
        }
        let already = self.overlap(first, last);
        // The ranges that overlap or touch `first..=last` merge with it.
        let from = self
            .ranges
            .partition_point(|r| r.1.saturating_add(1) < first);
        let to = self
            .ranges
            .partition_point(|r| r.0 <= last.saturating_add(1));
        let mut merged = (first, last);
        if from < to {
            merged.0 = merged.0.min(self.ranges[from].0);
            merged.1 = merged.1.max(self.ranges[to - 1].1);
        }
        self.ranges.splice(from..to, [merged]);
        already
    }

    /// How many of `first..=last` are in the set.
    fn overlap(&self, first: u64, last: u64) -> u64 {
        let from = self.ranges.partition_point(|r| r.1 < first);
        self.ranges[from..]
            .iter()
            .take_while(|r| r.0 <= last)
            .map(|r| r.1.min(last) - r.0.max(first) + 1)
            .sum()
    }

    /// How many seqs it holds.
    fn len(&self) -> u64 {
        self.ranges.iter().map(|r| r.1 - r.0 + 1).sum()
    }

    /// How many of its seqs `other` lacks.
    fn missing_from(&self, other: &SeqSet) -> u64 {
        self.ranges
            .iter()
            .map(|&(first, last)| last - first + 1 - other.overlap(first, last))
            .sum()
    }
}

/// What the simulator sent against what the bot received.
#[derive(Default)]
struct Check {
    /// Sessions the simulator started.
    sessions: usize,
    /// Dispatches it wrote to a connection (each seq of a session once,
    /// however often replayed).
    sent: u64,
    /// Dispatches it queued for a session it then invalidated, never
    /// written: not delivered, by design.
    dropped_invalidated: u64,
    /// Written, never received by the shard.
    not_received: u64,
    /// Of those, how many may still come: written to a session the shard
    /// is still on (reading what the server wrote before it invalidated
    /// the session counts, until the shard's next Ready).
    in_flight: u64,
    /// Messages received by the shard, never seen by the handler.
    not_handled: u64,
    /// Queued for a session live at the end, never written.
    queued_live: u64,
    /// Received more than once.
    duplicated: u64,
    /// Received, but never sent.
    unexpected: u64,
    /// Sessions waiting for a resume.
    detached: usize,
}

impl Check {
    /// Compares `received` with `stats`; `live` are the sessions that were
    /// live at the end (closing the shards invalidates them, but what they
    /// still had queued was not dropped by the server).
    fn of(received: &Received, stats: &SimStats, live: &HashSet<String>) -> Self {
        let mut check = Self::default();
        let empty = SeqSet::default();
        let mut known = HashSet::new();
        let sessions = stats
            .shards
            .iter()
            .flat_map(|s| s.sessions.iter().map(|session| (s.shard.id, session)));
        for (shard, session) in sessions {
            let id = session.session_id.0.as_str();
            known.insert(id);
            let mut sent = SeqSet::default();
            for range in session.connections.iter().flat_map(|c| &c.seqs) {
                sent.insert(range.first, range.last);
            }
            let seen = received.sessions.get(id).unwrap_or(&empty);
            check.sessions += 1;
            check.sent += sent.len();
            let missing = sent.missing_from(seen);
            check.not_received += missing;
            let current = received.current.get(&shard).map(String::as_str);
            if session.state != SessionState::Invalid || current == Some(id) {
                check.in_flight += missing;
            }
            check.unexpected += seen.missing_from(&sent);
            let unsent = session.last_seq.saturating_sub(sent.len());
            if session.state == SessionState::Invalid && !live.contains(id) {
                check.dropped_invalidated += unsent;
            } else {
                check.queued_live += unsent;
            }
            if session.state == SessionState::Detached {
                check.detached += 1;
            }
        }
        check.unexpected += received.sessionless
            + received
                .sessions
                .iter()
                .filter(|(id, _)| !known.contains(id.as_str()))
                .map(|(_, seqs)| seqs.len())
                .sum::<u64>();
        check.not_handled = received.unhandled.values().map(|&n| u64::from(n)).sum();
        check.duplicated = received.duplicate_seqs + received.handled_twice;
        check
    }

    /// Dispatches sent and never handled.
    fn lost(&self) -> u64 {
        self.not_received + self.not_handled + self.queued_live
    }

    /// Whether everything that can still arrive has been handled, and no
    /// session waits for a resume.
    fn settled(&self) -> bool {
        self.in_flight == 0 && self.not_handled == 0 && self.queued_live == 0 && self.detached == 0
    }

    /// Whether nothing was lost, duplicated or made up.
    fn passed(&self) -> bool {
        self.lost() == 0 && self.duplicated == 0 && self.unexpected == 0
    }

    /// The summary's lines; `hint` says why something was lost.
    fn write(&self, lines: &mut Vec<String>, hint: Option<String>) {
        lines.push(format!(
            "  sent by the server = {} dispatches over {} sessions",
            self.sent, self.sessions
        ));
        lines.push(format!(
            "  dropped by the server with invalidated sessions = {}",
            self.dropped_invalidated
        ));
        lines.push(format!("  lost = {}", self.lost()));
        if self.lost() > 0 {
            lines.push(format!("    sent, never received = {}", self.not_received));
            lines.push(format!(
                "    received, never handled = {}",
                self.not_handled
            ));
            lines.push(format!(
                "    queued for a live session, never sent = {}",
                self.queued_live
            ));
            lines.extend(hint);
        }
        lines.push(format!("  duplicated = {}", self.duplicated));
        if self.unexpected > 0 {
            lines.push(format!("  received, never sent = {}", self.unexpected));
        }
    }
}
