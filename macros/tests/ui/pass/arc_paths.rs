//! The event may be spelled `Arc<E>`, `std::sync::Arc<E>`,
//! `::std::sync::Arc<E>` or `alloc::sync::Arc<E>`.

extern crate alloc;

use std::sync::atomic::{AtomicUsize, Ordering};

use shardbus::{State, TypeMux, handler};

struct Tick;

#[handler]
async fn std_path(_tick: std::sync::Arc<Tick>, State(n): State<std::sync::Arc<AtomicUsize>>) {
    n.fetch_add(1, Ordering::SeqCst);
}

#[handler]
async fn absolute(_tick: ::std::sync::Arc<Tick>, State(n): State<std::sync::Arc<AtomicUsize>>) {
    n.fetch_add(10, Ordering::SeqCst);
}

#[handler]
async fn alloc_path(_tick: alloc::sync::Arc<Tick>, State(n): State<std::sync::Arc<AtomicUsize>>) {
    n.fetch_add(100, Ordering::SeqCst);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n = std::sync::Arc::new(AtomicUsize::new(0));
    let bus = TypeMux::new().with_state(n.clone());
    let _a = bus.add_handler(std_path);
    let _b = bus.add_handler(absolute);
    let _c = bus.add_handler(alloc_path);
    assert_eq!(bus.post(Tick).await.unwrap(), 3);
    while n.load(Ordering::SeqCst) != 111 {
        tokio::task::yield_now().await;
    }
}
