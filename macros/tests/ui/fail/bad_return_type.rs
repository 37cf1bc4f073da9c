use std::sync::Arc;

use shardbus::handler;

struct Ping;

#[handler]
async fn on_ping(_ping: Arc<Ping>) -> u32 {
    0
}

fn main() {}
