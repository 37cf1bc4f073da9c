use std::sync::Arc;

use shardbus::handler;

struct Ping;

#[handler(name = greeter)]
async fn on_ping(_ping: Arc<Ping>) {}

fn main() {}
