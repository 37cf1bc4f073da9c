use std::sync::Arc;

use shardbus::handler;

struct Ping;

#[handler(concurency = 4)]
async fn on_ping(_ping: Arc<Ping>) {}

fn main() {}
