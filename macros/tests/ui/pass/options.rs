//! `concurrency` and `name`, in either order, and their effect on the bus.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shardbus::{Handler, HandlerError, State, TypeMux, handler};
use tokio::sync::{Barrier, mpsc};

struct Job;

/// Waits for two calls to run at once, which needs `concurrency = 2`.
#[handler(concurrency = 2, name = "pair")]
async fn pair(
    _job: Arc<Job>,
    State(barrier): State<Arc<Barrier>>,
    State(passed): State<mpsc::UnboundedSender<()>>,
) {
    barrier.wait().await;
    passed.send(()).ok();
}

#[handler(name = "greeter", concurrency = 8usize)]
async fn greet(_job: Arc<Job>) -> Result<(), &'static str> {
    Err("no one to greet")
}

#[handler(concurrency = 3)]
async fn only_concurrency(_job: Arc<Job>, State(n): State<Arc<AtomicUsize>>) {
    n.fetch_add(1, Ordering::SeqCst);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(Handler::<Job, _>::name(&pair), "pair");
    assert_eq!(Handler::<Job, _>::concurrency(&pair), 2);
    assert_eq!(Handler::<Job>::name(&greet), "greeter");
    assert_eq!(Handler::<Job>::concurrency(&greet), 8);
    assert_eq!(
        Handler::<Job, _>::name(&only_concurrency),
        format!("{}::only_concurrency", module_path!())
    );
    assert_eq!(Handler::<Job, _>::concurrency(&only_concurrency), 3);

    let (errors_tx, mut errors) = mpsc::unbounded_channel();
    let (passed_tx, mut passed) = mpsc::unbounded_channel::<()>();
    let bus = TypeMux::new()
        .with_state(Arc::new(Barrier::new(2)))
        .with_state(passed_tx);
    let _pair = bus.add_handler(pair);
    let _greet = bus.add_handler(greet);
    let _errors = bus.add_handler(move |err: Arc<HandlerError>| {
        let errors_tx = errors_tx.clone();
        async move {
            errors_tx.send(err).ok();
        }
    });
    bus.post(Job).await.unwrap();
    bus.post(Job).await.unwrap();
    let first = errors.recv().await.unwrap();
    assert_eq!(first.handler, "greeter");
    assert_eq!(first.message, "no one to greet");
    // Both `pair` calls pass the barrier together, or neither does.
    for _ in 0..2 {
        tokio::time::timeout(std::time::Duration::from_secs(10), passed.recv())
            .await
            .expect("the two `pair` calls did not overlap");
    }
}
