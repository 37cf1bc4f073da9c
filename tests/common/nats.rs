//! Helpers of the NATS tests.

use std::time::Duration;

use async_nats::jetstream;
use shardbus_sim::NatsServer;

/// A JetStream context on its own connection to `server` (one per
/// simulated host or worker), reconnecting quickly after a restart.
pub async fn jetstream(server: &NatsServer) -> jetstream::Context {
    let client = async_nats::ConnectOptions::new()
        .reconnect_delay_callback(|_| Duration::from_millis(50))
        .connect(server.url())
        .await
        .expect("connect to the test's nats-server");
    jetstream::new(client)
}
