use std::cell::Cell;
use std::sync::Arc;

use shardbus::handler;

#[handler]
async fn on_tick(_tick: Arc<Cell<u32>>) {}

fn main() {}
