use shardbus::handler;

#[handler]
async fn on_ping() {}

fn main() {}
