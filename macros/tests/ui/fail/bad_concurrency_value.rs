use std::sync::Arc;

use shardbus::handler;

struct Ping;

#[handler(concurrency = 0)]
async fn on_ping(_ping: Arc<Ping>) {}

fn main() {}
