use std::sync::Arc;

use shardbus::handler;

struct Ping;

#[handler]
async fn on_ping(_ping: Arc<Ping>, _count: u32) {}

fn main() {}
