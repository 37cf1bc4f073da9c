use std::sync::Arc;

use shardbus::{State, TypeMux, handler};

struct Ping;

#[handler]
async fn on_ping(
    _ping: Arc<Ping>,
    _a: State<u8>,
    _b: State<u16>,
    _c: State<u32>,
    _d: State<u64>,
    _e: TypeMux,
) {
}

fn main() {}
