//! What the gateway tests share: a shard against the simulator, the test's
//! own MESSAGE_CREATE model, and waits on stages and messages.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use shardbus::TypeMux;
use shardbus::gateway::{DispatchMeta, GatewayConfig, Intents, Shard, ShardStage, Stage};
use shardbus_sim::{Fault, FaultTarget, Sim, SimConfig};
use tokio::time::timeout;

/// The test's own MESSAGE_CREATE model: only what it checks.
#[derive(Debug, Deserialize)]
pub struct Msg {
    pub content: String,
    #[serde(skip)]
    pub meta: DispatchMeta,
}

/// Makes a test model with a `meta` field a MESSAGE_CREATE dispatch type.
macro_rules! message_create_event {
    ($ty:ty) => {
        impl ::shardbus::gateway::Event for $ty {
            fn op(&self) -> ::shardbus::gateway::OpCode {
                ::shardbus::gateway::OpCode::Dispatch
            }

            fn event_type(&self) -> ::shardbus::gateway::EventType {
                <Self as ::shardbus::gateway::DispatchEvent>::EVENT_TYPE
            }
        }

        impl ::shardbus::gateway::DispatchEvent for $ty {
            const EVENT_TYPE: ::shardbus::gateway::EventType =
                ::shardbus::gateway::EventType::MESSAGE_CREATE;

            fn set_meta(&mut self, meta: ::shardbus::gateway::DispatchMeta) {
                self.meta = meta;
            }
        }
    };
}
#[allow(unused_imports)] // only some test binaries define models of their own
pub(crate) use message_create_event;

message_create_event!(Msg);

/// How long any one wait may take.
pub const LIMIT: Duration = Duration::from_secs(20);

/// Waits (up to [`LIMIT`]) until `done`, polling every 10 ms.
pub async fn eventually(what: &str, done: impl Fn() -> bool) {
    let polled = timeout(LIMIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    polled
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// Waits (up to [`LIMIT`]) until `get` gives a value, asking every 10 ms;
/// the async [`eventually`], for a condition read over the network.
pub async fn eventually_some<T, Fut>(what: &str, mut get: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let polled = timeout(LIMIT, async {
        loop {
            if let Some(value) = get().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    polled
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The tests' server settings: no generated traffic, fast heartbeats and
/// identify windows. The server's identify window is a quarter of the
/// client queue's ([`config`]), so no scheduling delay on a loaded machine
/// can land two identifies inside it.
pub fn test_config() -> SimConfig {
    SimConfig {
        rate: 0.0,
        guilds: 4,
        identify_window: Duration::from_millis(25),
        heartbeat_interval: Duration::from_millis(500),
        resume_window: Duration::from_secs(30),
        ..SimConfig::default()
    }
}

pub async fn sim(config: SimConfig) -> Sim {
    Sim::start(config).await.unwrap()
}

/// Shard `[0, total]` on `sim`, [`Msg`] registered, fast reconnects, and an
/// identify queue four times slower than the sim's window. Compression is
/// the default (zlib-stream); chain `.compress` or `.compression` for
/// another.
pub fn config(sim: &Sim) -> GatewayConfig {
    GatewayConfig::new(sim.token(), Intents::GUILDS | Intents::GUILD_MESSAGES)
        .gateway_url(sim.gateway_url())
        .shard(0, sim.config().shards)
        .register_event::<Msg>()
        .reconnect_backoff_max(Duration::from_millis(200))
        .identify_queue(Arc::new(shardbus::shard::LocalIdentifyQueue::with_window(
            1,
            Duration::from_millis(100),
        )))
}

pub async fn wait_stage(stages: &mut shardbus::EventStream<ShardStage>, want: Stage) {
    timeout(LIMIT, async {
        while let Some(stage) = stages.recv().await {
            if stage.stage == want {
                return;
            }
        }
        panic!("stage stream ended before {want:?}");
    })
    .await
    .unwrap_or_else(|_| panic!("no {want:?} within {LIMIT:?}"));
}

/// A shard connected to the simulator, and its stage stream.
pub struct Running {
    pub bus: TypeMux,
    pub stages: shardbus::EventStream<ShardStage>,
    pub shard: Shard,
}

/// Closes the shard (ending its session) and stops the simulator.
pub async fn finish(shard: &Shard, sim: &Sim) {
    shard
        .handle()
        .close(shardbus::gateway::CloseCode::NORMAL)
        .await;
    sim.shutdown().await;
}

/// Starts a shard with [`config`] (zlib-stream) posting into `bus`; returns
/// once it is connected.
pub async fn start(sim: &Sim, bus: TypeMux) -> Running {
    start_with(config(sim), bus).await
}

/// Starts a shard with `config` posting into `bus`; returns once it is
/// connected.
pub async fn start_with(config: GatewayConfig, bus: TypeMux) -> Running {
    let mut stages = bus.subscribe::<ShardStage>();
    let shard = Shard::spawn(config, bus.clone());
    wait_stage(&mut stages, Stage::Connected).await;
    Running { bus, stages, shard }
}

/// A guild message (the shard asks for `GUILD_MESSAGES`) with content `m{i}`.
pub fn message(i: u64) -> serde_json::Value {
    serde_json::json!({
        "id": (1000 + i).to_string(),
        "channel_id": "1",
        "guild_id": "81384788765712384",
        "content": format!("m{i}"),
        "author": {"id": "5", "username": "u", "discriminator": "0", "avatar": null},
        "timestamp": "2026-11-21T00:00:00.000000+00:00",
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": [], "embeds": [], "pinned": false, "type": 0
    })
}

/// Sends 10 messages, injects `fault`, sends 10 more while the shard is
/// away (replayed on resume), and waits until it has resumed. `next` is the
/// next message's number.
pub async fn resume_through(
    sim: &Sim,
    stages: &mut shardbus::EventStream<ShardStage>,
    fault: Fault,
    next: &mut u64,
) {
    let send_ten = |next: &mut u64| {
        for _ in 0..10 {
            sim.dispatch_to_shard(0, "MESSAGE_CREATE", message(*next));
            *next += 1;
        }
    };
    send_ten(next);
    sim.fault(FaultTarget::Shard(0), fault);
    send_ten(next);
    wait_stage(stages, Stage::Resuming).await;
    wait_stage(stages, Stage::Connected).await;
}

/// Reads the messages `m{i}` for every `i` in `range`, in order.
pub async fn expect_messages(rx: &mut shardbus::EventStream<Msg>, range: std::ops::Range<u64>) {
    for i in range {
        let msg = timeout(LIMIT, rx.recv()).await.unwrap().unwrap();
        assert_eq!(msg.content, format!("m{i}"));
    }
}

/// Closes every shard with 1000, then waits until each has stopped
/// without an error.
pub async fn close_all(shards: Vec<Shard>) {
    for shard in &shards {
        shard
            .handle()
            .close(shardbus::gateway::CloseCode::NORMAL)
            .await;
    }
    for shard in shards {
        let joined = timeout(LIMIT, shard.join()).await;
        assert!(joined.unwrap().is_ok(), "the shard stopped cleanly");
    }
}
