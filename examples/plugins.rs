//! Two plugins on one bus — a greeter and a counter — with a catch-all
//! error handler; the greeter is unloaded at runtime.
//!
//! Run with `cargo run --example plugins`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use shardbus::{BoxError, HandlerError, Plugin, PluginContext, State, TypeMux, handler};

/// A chat message, as a gateway would post it.
#[derive(Debug)]
struct MessageCreate {
    author: String,
    content: String,
}

/// A reply a plugin wants sent.
#[derive(Debug)]
struct Reply(String);

/// Shared statistics, registered as bus state.
#[derive(Clone, Default)]
struct Stats {
    messages: Arc<AtomicU64>,
}

/// Greets whoever says hello; refuses to greet nobody.
#[handler(name = "greeter::hello")]
async fn hello(msg: Arc<MessageCreate>, bus: TypeMux) -> Result<(), BoxError> {
    if !msg.content.starts_with("hello") {
        return Ok(());
    }
    if msg.author.is_empty() {
        return Err("cannot greet an anonymous author".into());
    }
    bus.post(Reply(format!("hello, {}!", msg.author))).await?;
    Ok(())
}

/// Counts every message, a few at a time.
#[handler(concurrency = 4)]
async fn count(_msg: Arc<MessageCreate>, State(stats): State<Stats>) {
    stats.messages.fetch_add(1, Ordering::Relaxed);
}

/// The greeter plugin: one handler.
struct Greeter;

impl Plugin for Greeter {
    fn name(&self) -> &str {
        "greeter"
    }

    fn install(&self, cx: &mut PluginContext<'_>) {
        cx.add_handler(hello);
    }
}

/// The counter plugin: one handler and a task that reports its count.
struct Counter;

impl Plugin for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    fn install(&self, cx: &mut PluginContext<'_>) {
        cx.add_handler(count);
        let mut replies = cx.subscribe::<Reply>();
        cx.spawn(async move {
            while let Some(reply) = replies.recv().await {
                println!("  reply: {}", reply.0);
            }
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let stats = Stats::default();
    let bus = TypeMux::new().with_state(stats.clone());

    // The catch-all: every handler error and panic arrives here.
    let (errors_tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
    let _catch_all = bus.add_handler(move |err: Arc<HandlerError>| {
        let errors_tx = errors_tx.clone();
        async move {
            println!("  error: {err}");
            let _ = errors_tx.send(());
        }
    });

    let greeter = bus.install(Greeter);
    let counter = bus.install(Counter);
    println!("installed {} and {}", greeter.name(), counter.name());

    let say = |author: &str, content: &str| MessageCreate {
        author: author.to_owned(),
        content: content.to_owned(),
    };
    println!("posting with both plugins loaded:");
    bus.post(say("ada", "hello there")).await?;
    bus.post(say("", "hello?")).await?;
    errors.recv().await;

    greeter.unload().await;
    println!("greeter unloaded; posting again:");
    let reached = bus.post(say("grace", "hello again")).await?;
    println!("  the message reached {reached} handler (the counter)");
    // Unloading cancels calls in progress: let the counter catch up first.
    while stats.messages.load(Ordering::Relaxed) < 3 {
        tokio::task::yield_now().await;
    }

    counter.unload().await;
    println!(
        "counter unloaded after counting {} messages",
        stats.messages.load(Ordering::Relaxed)
    );
    Ok(())
}
