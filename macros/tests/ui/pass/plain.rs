//! The simplest handler: an event and nothing else, registered by name.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shardbus::{Handler, TypeMux, handler};

static CALLS: AtomicUsize = AtomicUsize::new(0);

struct Ping;

#[handler]
async fn on_ping(_ping: Arc<Ping>) {
    CALLS.fetch_add(1, Ordering::SeqCst);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(
        Handler::<Ping>::name(&on_ping),
        format!("{}::on_ping", module_path!())
    );
    assert_eq!(Handler::<Ping>::concurrency(&on_ping), 1);
    assert_eq!(format!("{on_ping:?}"), "on_ping");

    let bus = TypeMux::new();
    let _sub = bus.add_handler(on_ping);
    assert_eq!(bus.post(Ping).await.unwrap(), 1);
    while CALLS.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
}
