//! A tour of the bus: typed streams, a lossless fan-out, a lossy observer and
//! a scope closing.
//!
//! Run with `cargo run --example bus`.

use std::time::Duration;

use futures::StreamExt;
use shardbus::{BoxError, Feed, SubscriptionScope, TypeMux, resubscribe};

/// A chat message, as a gateway would post it.
#[derive(Debug)]
struct MessageCreate {
    channel: u64,
    content: String,
}

/// Someone started typing.
#[derive(Debug)]
struct TypingStart {
    channel: u64,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    // 1. Typed streams: each subscriber sees only its own type.
    let bus = TypeMux::with_capacity(16);
    let mut messages = bus.subscribe::<MessageCreate>();
    let mut typing = bus.subscribe::<TypingStart>();
    let mut everything = bus
        .subscribe_many()
        .to::<MessageCreate>()
        .to::<TypingStart>()
        .build();
    let mut observer = bus.subscribe_lossy::<MessageCreate>(4);

    // 2. A lossless fan-out: three slow readers of one stream type, a fast
    //    producer. The producer waits for the slowest; nobody misses anything.
    let mut readers = Vec::new();
    for id in 0..3u64 {
        let mut stream = bus.subscribe::<MessageCreate>();
        readers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while let Some(msg) = stream.next().await {
                if n.is_multiple_of(50) {
                    tokio::time::sleep(Duration::from_millis(id + 1)).await;
                }
                assert!(msg.content.starts_with("message"));
                n += 1;
            }
            n
        }));
    }

    let producer = bus.clone();
    let posting = tokio::spawn(async move {
        for i in 0..200u64 {
            producer.post(TypingStart { channel: i % 4 }).await?;
            let delivered = producer
                .post(MessageCreate {
                    channel: i % 4,
                    content: format!("message {i}"),
                })
                .await?;
            if i == 0 {
                println!("first message delivered to {delivered} subscribers");
            }
        }
        producer.stop().await;
        Ok::<_, BoxError>(())
    });

    let (mut n_messages, mut n_typing, mut n_all) = (0, 0, 0);
    let mut last_channel = 0;
    loop {
        tokio::select! {
            Some(msg) = messages.next() => { n_messages += 1; last_channel = msg.channel; }
            Some(t) = typing.next() => { n_typing += 1; let _ = t.channel; }
            Some(ev) = everything.next() => {
                // The producer alternates TypingStart, MessageCreate.
                let expect_typing = n_all % 2 == 0;
                assert_eq!(ev.is::<TypingStart>(), expect_typing, "out of post order");
                n_all += 1;
            }
            else => break,
        }
    }
    posting.await??;
    println!(
        "typed streams: {n_messages} messages (last in channel {last_channel}), {n_typing} typing events"
    );
    println!("subscribe_many: {n_all} events of both types, in post order");
    for (id, reader) in readers.into_iter().enumerate() {
        println!("slow reader {id}: {} of 200 messages", reader.await?);
    }

    // 3. The lossy observer never slowed anyone; it reports what it missed.
    let (mut kept, mut missed) = (0u64, 0u64);
    while let Some(item) = observer.next().await {
        match item {
            Ok(_) => kept += 1,
            Err(lagged) => missed += lagged.missed,
        }
    }
    println!(
        "lossy observer: kept {kept}, missed {missed} (exactly {})",
        kept + missed
    );

    // 4. A scope closing: a resubscribing feed subscription and a plain one,
    //    both stopped by one close().
    let feed = Feed::<u64>::new();
    let scope = SubscriptionScope::default();
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let source = feed.clone();
    let resub_tx = tx.clone();
    let _kept_alive = scope.track(resubscribe(Duration::from_secs(5), move |_| {
        let (source, tx) = (source.clone(), resub_tx.clone());
        async move { Ok::<_, BoxError>(source.subscribe(tx)) }
    }));
    let _plain = scope.track(feed.subscribe(tx));
    while feed.len() < 2 {
        tokio::task::yield_now().await;
    }
    println!("feed.send reached {} subscribers", feed.send(7).await);
    println!("received {:?} and {:?}", rx.recv().await, rx.recv().await);
    println!("scope tracks {} subscriptions; closing it", scope.count());
    scope.close();
    while !feed.is_empty() {
        tokio::task::yield_now().await;
    }
    println!(
        "after close: feed.send reached {} subscribers",
        feed.send(8).await
    );
    Ok(())
}
