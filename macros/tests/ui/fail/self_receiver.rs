use std::sync::Arc;

use shardbus::handler;

struct Ping;

struct Bot;

impl Bot {
    #[handler]
    async fn on_ping(&self, _ping: Arc<Ping>) {}
}

fn main() {}
