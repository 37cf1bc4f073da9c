use std::sync::Arc;

use shardbus::handler;

#[handler]
async fn on_any<E: Send + Sync + 'static>(_event: Arc<E>) {}

fn main() {}
