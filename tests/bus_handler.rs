//! Handlers: order, bounded concurrency, errors and panics as `HandlerError`
//! events, extractors, missing state, and stopping.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardbus::{BoxError, Handler, HandlerError, MissingState, State, TypeMux};
use tokio::sync::{Notify, mpsc};
use tokio::time::{sleep, timeout};

#[derive(Debug)]
struct Msg(u32);

/// Lets every task run until idle (virtual time under `start_paused`).
async fn settle() {
    sleep(Duration::from_secs(1)).await;
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("timed out")
        .expect("channel closed")
}

#[tokio::test(start_paused = true)]
async fn handler_sees_events_in_post_order_one_at_a_time() {
    let bus = TypeMux::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let running = Arc::new(AtomicUsize::new(0));
    let max_running = Arc::new(AtomicUsize::new(0));
    let (s, r, m) = (seen.clone(), running.clone(), max_running.clone());
    let _sub = bus.add_handler(move |msg: Arc<Msg>| {
        let (s, r, m) = (s.clone(), r.clone(), m.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            sleep(Duration::from_millis(1)).await;
            s.lock().unwrap().push(msg.0);
            r.fetch_sub(1, Ordering::SeqCst);
        }
    });
    for i in 0..50 {
        assert_eq!(bus.post(Msg(i)).await.unwrap(), 1);
    }
    settle().await;
    assert_eq!(*seen.lock().unwrap(), (0..50).collect::<Vec<_>>());
    assert_eq!(max_running.load(Ordering::SeqCst), 1);
}

/// A hand-written handler with options, to test concurrency without the macro.
struct Overlapping {
    running: Arc<AtomicUsize>,
    max_running: Arc<AtomicUsize>,
    release: Arc<Notify>,
    limit: usize,
}

impl Handler<Msg> for Overlapping {
    fn call(
        &self,
        _: Arc<Msg>,
        (): (),
    ) -> impl std::future::Future<Output = Result<(), BoxError>> + Send + 'static {
        let (running, max, release) = (
            self.running.clone(),
            self.max_running.clone(),
            self.release.clone(),
        );
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(now, Ordering::SeqCst);
            release.notified().await;
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn name(&self) -> Cow<'static, str> {
        "overlapping".into()
    }

    fn concurrency(&self) -> usize {
        self.limit
    }
}

#[tokio::test(start_paused = true)]
async fn concurrency_lets_calls_overlap_up_to_the_limit_and_no_further() {
    let bus = TypeMux::new();
    let running = Arc::new(AtomicUsize::new(0));
    let max_running = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let _sub = bus.add_handler(Overlapping {
        running: running.clone(),
        max_running: max_running.clone(),
        release: release.clone(),
        limit: 4,
    });
    for i in 0..10 {
        bus.post(Msg(i)).await.unwrap();
    }
    settle().await;
    // Four calls are blocked at once, the other six wait their turn.
    assert_eq!(running.load(Ordering::SeqCst), 4);
    for _ in 0..10 {
        release.notify_waiters();
        settle().await;
    }
    assert_eq!(running.load(Ordering::SeqCst), 0);
    assert_eq!(max_running.load(Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn an_error_is_posted_as_handler_error_and_the_handler_keeps_going() {
    let bus = TypeMux::new();
    let (errors_tx, mut errors) = mpsc::unbounded_channel();
    let _catch_all = bus.add_handler(move |e: Arc<HandlerError>| {
        let tx = errors_tx.clone();
        async move {
            tx.send(e).unwrap();
        }
    });
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    let _sub = bus.add_handler(move |msg: Arc<Msg>| {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            if msg.0 == 1 {
                return Err(format!("cannot handle {}", msg.0));
            }
            Ok(())
        }
    });
    for i in 0..3 {
        bus.post(Msg(i)).await.unwrap();
    }
    let err = next(&mut errors).await;
    assert_eq!(err.message, "cannot handle 1");
    assert_eq!(err.event_type, std::any::type_name::<Msg>());
    assert!(!err.panicked);
    assert!(err.handler.contains("bus_handler"), "{}", err.handler);
    settle().await;
    assert_eq!(
        handled.load(Ordering::SeqCst),
        3,
        "the event after the error was handled"
    );
    assert!(errors.try_recv().is_err(), "exactly one error");
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_posted_with_its_text_and_other_handlers_are_untouched() {
    let bus = TypeMux::new();
    let (errors_tx, mut errors) = mpsc::unbounded_channel();
    let _catch_all = bus.add_handler(move |e: Arc<HandlerError>| {
        let tx = errors_tx.clone();
        async move {
            tx.send(e).unwrap();
        }
    });
    let handled = Arc::new(AtomicUsize::new(0));
    let other = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    let _panicky = bus.add_handler(move |msg: Arc<Msg>| {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            assert!(msg.0 != 0, "boom on {}", msg.0);
        }
    });
    let o = other.clone();
    let _other = bus.add_handler(move |_: Arc<Msg>| {
        let o = o.clone();
        async move {
            o.fetch_add(1, Ordering::SeqCst);
        }
    });
    bus.post(Msg(0)).await.unwrap();
    bus.post(Msg(1)).await.unwrap();
    let err = next(&mut errors).await;
    assert!(err.panicked);
    assert_eq!(err.message, "boom on 0");
    assert!(err.to_string().contains("panicked"), "{err}");
    settle().await;
    assert_eq!(
        handled.load(Ordering::SeqCst),
        2,
        "still running after the panic"
    );
    assert_eq!(other.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failing_handler_error_handler_is_not_fed_its_own_failures() {
    let bus = TypeMux::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let _failing_catch_all = bus.add_handler(move |_: Arc<HandlerError>| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>("the catch-all itself fails")
        }
    });
    let _sub = bus.add_handler(|_: Arc<Msg>| async { Err::<(), _>("first failure") });
    bus.post(Msg(0)).await.unwrap();
    settle().await;
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[derive(Clone)]
struct Greeting(&'static str);

async fn greet(msg: Arc<Msg>, State(greeting): State<Greeting>, bus: TypeMux) {
    bus.post(format!("{} {}", greeting.0, msg.0)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn extractors_receive_state_and_the_bus() {
    let bus = TypeMux::new().with_state(Greeting("hello"));
    let mut replies = bus.subscribe::<String>();
    let _sub = bus.add_handler(greet);
    bus.post(Msg(7)).await.unwrap();
    assert_eq!(*replies.recv().await.unwrap(), "hello 7");
    assert_eq!(bus.state::<Greeting>().unwrap().0, "hello");
}

#[tokio::test]
async fn missing_state_is_an_error_at_registration() {
    let bus = TypeMux::new();
    let err: MissingState = bus.try_add_handler(greet).unwrap_err();
    assert_eq!(err.state, std::any::type_name::<Greeting>());
    assert!(err.handler.contains("greet"), "{}", err.handler);
    assert!(err.to_string().contains("with_state"), "{err}");
    // Nothing was subscribed.
    assert_eq!(bus.post(Msg(1)).await.unwrap(), 0);
}

#[tokio::test]
#[should_panic(expected = "State<")]
async fn add_handler_panics_on_missing_state() {
    let bus = TypeMux::new();
    let _sub = bus.add_handler(greet);
}

#[tokio::test(start_paused = true)]
async fn unsubscribing_or_dropping_stops_the_handler() {
    let bus = TypeMux::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let make = |calls: Arc<AtomicUsize>| {
        move |_: Arc<Msg>| {
            let c = calls.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let a = bus.add_handler(make(calls.clone()));
    let b = bus.add_handler(make(calls.clone()));
    assert_eq!(bus.post(Msg(0)).await.unwrap(), 2);
    settle().await;
    a.unsubscribe();
    assert_eq!(bus.post(Msg(1)).await.unwrap(), 1);
    settle().await;
    drop(b);
    assert_eq!(bus.post(Msg(2)).await.unwrap(), 0);
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn a_slow_handler_holds_back_posts_of_its_type_only() {
    let bus = TypeMux::with_capacity(2);
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    let _slow = bus.add_handler(move |_: Arc<Msg>| {
        let g = g.clone();
        async move { g.notified().await }
    });
    // One event in the call, two buffered: the next post waits.
    for i in 0..3 {
        bus.post(Msg(i)).await.unwrap();
    }
    settle().await;
    let blocked = tokio::spawn({
        let bus = bus.clone();
        async move { bus.post(Msg(3)).await }
    });
    settle().await;
    assert!(
        !blocked.is_finished(),
        "lossless: the post waits for the handler"
    );
    // Another type flows freely.
    let mut other = bus.subscribe::<u8>();
    bus.post(1u8).await.unwrap();
    assert_eq!(*other.recv().await.unwrap(), 1);
    gate.notify_one();
    assert_eq!(blocked.await.unwrap().unwrap(), 1);
}
