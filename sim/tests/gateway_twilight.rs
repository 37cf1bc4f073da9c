//! A third-party client against the sim, unmodified: twilight-gateway 0.18
//! with its default features, which make it ask for `compress=zstd-stream`.
//! It finds the sim through `ConfigBuilder::proxy_url`, as the gateway
//! bench's twilight client does.
#![allow(clippy::unwrap_used)]

mod common;

use common::{WAIT, config, start};
use serde_json::json;
use shardbus_sim::{Compression, GuildId};
use tokio::time::timeout;
use twilight_gateway::{
    ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _,
};

/// The next event twilight decodes among `wanted`; any error fails the test.
async fn next_event(shard: &mut Shard, wanted: EventTypeFlags) -> Event {
    timeout(WAIT, async {
        loop {
            match shard.next_event(wanted).await {
                Some(Ok(Event::GatewayHeartbeatAck)) => {}
                Some(Ok(event)) => return event,
                Some(Err(e)) => panic!("twilight-gateway: {e}"),
                None => panic!("the shard stream ended"),
            }
        }
    })
    .await
    .expect("no event from twilight in time")
}

#[tokio::test]
async fn twilight_gateway_with_default_features_gets_ready_and_a_dispatch_over_zstd() {
    // twilight builds its rustls connector in `ConfigBuilder::new`, plain
    // ws:// or not, and rustls needs a crypto provider for it. Nothing in
    // twilight's default features picks one; installing ring keeps the
    // choice unambiguous whatever else in the graph enables another.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sim = start(config()).await;
    let intents = Intents::GUILDS | Intents::GUILD_MESSAGES | Intents::MESSAGE_CONTENT;
    let config = ConfigBuilder::new(sim.token().to_owned(), intents)
        .proxy_url(sim.gateway_url())
        .build();
    let mut shard = Shard::with_config(ShardId::ONE, config);
    let wanted = EventTypeFlags::READY | EventTypeFlags::MESSAGE_CREATE;

    let Event::Ready(ready) = next_event(&mut shard, wanted).await else {
        panic!("the first event was not READY");
    };
    assert_eq!(ready.shard, Some(ShardId::ONE));
    assert_eq!(ready.guilds.len(), sim.guild_ids().len());
    assert_eq!(
        ready.resume_gateway_url.trim_end_matches('/'),
        sim.resume_gateway_url().trim_end_matches('/')
    );

    let guild = GuildId::nth(0);
    sim.dispatch(
        guild,
        "MESSAGE_CREATE",
        json!({
            "id": "1300000000000000001",
            "channel_id": "1300000000000000002",
            "guild_id": guild.to_string(),
            "author": { "id": "1300000000000000003", "username": "u", "discriminator": "0",
                        "global_name": null, "avatar": null },
            "content": "hello from the sim",
            "timestamp": "2026-11-21T00:00:00.000000+00:00",
            "edited_timestamp": null,
            "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
            "attachments": [], "embeds": [], "pinned": false, "type": 0
        }),
    );
    let Event::MessageCreate(msg) = next_event(&mut shard, wanted).await else {
        panic!("expected MESSAGE_CREATE");
    };
    assert_eq!(msg.content, "hello from the sim");
    assert_eq!(msg.id.get(), 1_300_000_000_000_000_001);
    assert_eq!(msg.guild_id.map(|g| g.get()), Some(guild.0));

    let log = sim.log();
    assert_eq!(log.connections.len(), 1);
    let conn = &log.connections[0];
    assert_eq!(conn.compression, Compression::ZstdStream, "{}", conn.query);
    assert!(
        conn.query.contains("compress=zstd-stream"),
        "{}",
        conn.query
    );
    assert_eq!(log.identifies.len(), 1);
    assert!(log.bucket_violations.is_empty());
    sim.shutdown().await;
}
