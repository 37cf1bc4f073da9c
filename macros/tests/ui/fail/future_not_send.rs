use std::rc::Rc;
use std::sync::Arc;

use shardbus::handler;

struct Ping;

#[handler]
async fn on_ping(_ping: Arc<Ping>) {
    let local = Rc::new(0);
    tokio::task::yield_now().await;
    drop(local);
}

fn main() {}
