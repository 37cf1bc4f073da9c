use shardbus::handler;

struct Ping;

#[handler]
async fn on_ping(_ping: Ping) {}

fn main() {}
