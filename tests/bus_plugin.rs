//! Plugins: install, unload stopping handlers, streams and tasks, isolation
//! between plugins, and handles that are dropped without unloading.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use shardbus::{Plugin, PluginContext, TypeMux};
use tokio::sync::{Notify, mpsc};
use tokio::time::sleep;

#[derive(Debug)]
struct Ping(u32);

async fn settle() {
    sleep(Duration::from_secs(1)).await;
}

/// Counts the `Ping`s its handler sees.
struct Counter {
    name: &'static str,
    seen: Arc<AtomicUsize>,
}

impl Plugin for Counter {
    fn name(&self) -> &str {
        self.name
    }

    fn install(&self, cx: &mut PluginContext<'_>) {
        let seen = self.seen.clone();
        cx.add_handler(move |_: Arc<Ping>| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
}

fn counter(name: &'static str) -> (Counter, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    (
        Counter {
            name,
            seen: seen.clone(),
        },
        seen,
    )
}

#[tokio::test(start_paused = true)]
async fn unload_stops_the_plugins_handlers_and_leaves_others_running() {
    let bus = TypeMux::new();
    let (a, seen_a) = counter("a");
    let (b, seen_b) = counter("b");
    let a = bus.install(a);
    let b = bus.install(b);
    assert_eq!((a.name(), b.name()), ("a", "b"));

    // Two plugins handle the same type independently.
    assert_eq!(bus.post(Ping(0)).await.unwrap(), 2);
    settle().await;
    assert_eq!(seen_a.load(Ordering::SeqCst), 1);
    assert_eq!(seen_b.load(Ordering::SeqCst), 1);

    a.unload().await;
    // Nothing posted after unload returns reaches the unloaded plugin.
    assert_eq!(bus.post(Ping(1)).await.unwrap(), 1);
    settle().await;
    assert_eq!(seen_a.load(Ordering::SeqCst), 1);
    assert_eq!(seen_b.load(Ordering::SeqCst), 2);
    b.unload().await;
    assert_eq!(bus.post(Ping(2)).await.unwrap(), 0);
}

/// Opens a stream and spawns a task that reports through channels.
struct Streamer {
    events: mpsc::UnboundedSender<Option<u32>>,
    task_dropped: Arc<AtomicBool>,
}

/// Sets its flag when dropped: shows a task was cancelled.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Plugin for Streamer {
    fn name(&self) -> &str {
        "streamer"
    }

    fn install(&self, cx: &mut PluginContext<'_>) {
        assert_eq!(cx.name(), "streamer");
        let mut stream = cx.subscribe::<Ping>();
        let events = self.events.clone();
        // The reader runs outside the plugin's own tasks: only its stream
        // is the plugin's.
        tokio::spawn(async move {
            while let Some(ping) = stream.recv().await {
                events.send(Some(ping.0)).unwrap();
            }
            events.send(None).unwrap();
        });
        let flag = DropFlag(self.task_dropped.clone());
        cx.spawn(async move {
            let _flag = flag;
            std::future::pending::<()>().await;
        });
        assert!(!cx.bus().is_stopped());
    }
}

#[tokio::test(start_paused = true)]
async fn unload_ends_the_plugins_streams_and_aborts_its_tasks() {
    let bus = TypeMux::new();
    let (tx, mut events) = mpsc::unbounded_channel();
    let task_dropped = Arc::new(AtomicBool::new(false));
    let plugin = bus.install(Streamer {
        events: tx,
        task_dropped: task_dropped.clone(),
    });
    bus.post(Ping(5)).await.unwrap();
    assert_eq!(events.recv().await.unwrap(), Some(5));
    settle().await;
    assert!(!task_dropped.load(Ordering::SeqCst));

    plugin.unload().await;
    assert!(
        task_dropped.load(Ordering::SeqCst),
        "spawned task aborted by unload"
    );
    assert_eq!(events.recv().await.unwrap(), None, "stream ended by unload");
    assert_eq!(bus.post(Ping(6)).await.unwrap(), 0);
}

/// A handler that never finishes its call.
struct Stuck {
    entered: Arc<Notify>,
    call_dropped: Arc<AtomicBool>,
}

impl Plugin for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }

    fn install(&self, cx: &mut PluginContext<'_>) {
        let (entered, dropped) = (self.entered.clone(), self.call_dropped.clone());
        cx.add_handler(move |_: Arc<Ping>| {
            let (entered, flag) = (entered.clone(), DropFlag(dropped.clone()));
            async move {
                let _flag = flag;
                entered.notify_one();
                std::future::pending::<()>().await;
            }
        });
    }
}

#[tokio::test(start_paused = true)]
async fn unload_cancels_a_call_in_progress_instead_of_hanging() {
    let bus = TypeMux::new();
    let entered = Arc::new(Notify::new());
    let call_dropped = Arc::new(AtomicBool::new(false));
    let plugin = bus.install(Stuck {
        entered: entered.clone(),
        call_dropped: call_dropped.clone(),
    });
    bus.post(Ping(0)).await.unwrap();
    entered.notified().await;
    tokio::time::timeout(Duration::from_secs(10), plugin.unload())
        .await
        .expect("unload waits for nothing that cannot finish");
    assert!(call_dropped.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_keeps_the_plugin_installed() {
    let bus = TypeMux::new();
    let (plugin, seen) = counter("kept");
    drop(bus.install(plugin));
    assert_eq!(bus.post(Ping(0)).await.unwrap(), 1);
    settle().await;
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

/// A plugin whose handler fails, to check errors name it.
struct Failing;

impl Plugin for Failing {
    fn name(&self) -> &str {
        "failing"
    }

    fn install(&self, cx: &mut PluginContext<'_>) {
        cx.add_handler(|ping: Arc<Ping>| async move { Err::<(), _>(format!("no {}", ping.0)) });
    }
}

#[tokio::test(start_paused = true)]
async fn a_plugins_handler_errors_reach_the_catch_all() {
    let bus = TypeMux::new();
    let mut errors = bus.subscribe::<shardbus::HandlerError>();
    let _plugin = bus.install(Failing);
    bus.post(Ping(3)).await.unwrap();
    let err = errors.recv().await.unwrap();
    assert_eq!(err.message, "no 3");
}
