use std::sync::Arc;

use shardbus::handler;

struct Ping;

#[handler(concurrency = 2, name = "ping", concurrency = 4)]
async fn on_ping(_ping: Arc<Ping>) {}

fn main() {}
