//! A handler with extractors: state, destructured, and the bus itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shardbus::{State, TypeMux, handler};

struct MessageCreate {
    len: usize,
}

#[derive(Clone)]
struct Prefix(&'static str);

#[handler]
async fn on_message(
    msg: Arc<MessageCreate>,
    State(total): State<Arc<AtomicUsize>>,
    State(Prefix(prefix)): State<Prefix>,
    _bus: TypeMux,
) {
    total.fetch_add(msg.len + prefix.len(), Ordering::SeqCst);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let total = Arc::new(AtomicUsize::new(0));
    let bus = TypeMux::new()
        .with_state(total.clone())
        .with_state(Prefix("> "));
    let _sub = bus.add_handler(on_message);
    bus.post(MessageCreate { len: 5 }).await.unwrap();
    while total.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(total.load(Ordering::SeqCst), 7);
}
