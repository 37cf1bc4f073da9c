//! Compile-time checks that the bus's public types (and the futures of its async
//! methods) can cross threads, plus a runtime test that actually moves them.
#![allow(clippy::unwrap_used)]

use std::error::Error;
use std::fmt::{Debug, Display};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use shardbus::{
    BoxError, EventStream, Feed, Lagged, LossyStream, MuxClosed, Subscription, SubscriptionScope,
    TryRecvError, TypeMux, TypeMuxEvent, TypeMuxSubscription, Unsubscribed,
};
use static_assertions::assert_impl_all;
use tokio::sync::mpsc;
use tokio::time::timeout;

assert_impl_all!(TypeMux: Clone, Send, Sync, Default);
assert_impl_all!(Feed<u32>: Clone, Send, Sync, Default);
assert_impl_all!(Subscription: Send, Sync);
assert_impl_all!(SubscriptionScope: Send, Sync, Default);
assert_impl_all!(EventStream<u32>: Send, Unpin, Stream);
assert_impl_all!(LossyStream<u32>: Send, Stream);
assert_impl_all!(TypeMuxSubscription: Send, Stream);
assert_impl_all!(TypeMuxEvent: Send, Sync);
assert_impl_all!(Unsubscribed: Clone, Send, Future);
assert_impl_all!(MuxClosed: Error, Debug, Display, Send, Sync);
assert_impl_all!(Lagged: Error, Debug, Display, Send, Sync);
assert_impl_all!(TryRecvError: Error, Debug, Display, Send, Sync);

/// Compile-time check on a value whose type cannot be named (an async fn's future).
fn assert_send<T: Send>(_: &T) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_types_work_across_tasks_and_threads() {
    // The futures of every async method can be spawned.
    let mux = TypeMux::new();
    let feed = Feed::<u32>::new();
    let (tx, _rx) = mpsc::channel(1);
    let mut sub = feed.subscribe(tx);
    let mut stream = mux.subscribe::<u32>();
    let mut many = mux.subscribe_many().to::<u32>().build();
    {
        let post = mux.post(1u32);
        assert_send(&post);
        let send = feed.send(1);
        assert_send(&send);
        let stop = mux.stop();
        assert_send(&stop);
        let recv = stream.recv();
        assert_send(&recv);
        let recv_many = many.recv();
        assert_send(&recv_many);
        let sub_ref: &mut Subscription = &mut sub;
        let err = sub_ref.err();
        assert_send(&err);
    }
    sub.unsubscribe();

    // Streams, handles and events move between tasks on different threads.
    let poster = {
        let mux = mux.clone();
        tokio::spawn(async move { mux.post(7u32).await })
    };
    let reader = tokio::spawn(async move { (stream.recv().await, many.recv().await) });
    let (value, event) = timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*value.unwrap(), 7);
    let event: TypeMuxEvent = event.unwrap();
    let from_thread = std::thread::spawn(move || event.downcast::<u32>().map(|v| *v))
        .join()
        .unwrap();
    assert_eq!(from_thread, Some(7));
    assert_eq!(poster.await.unwrap().unwrap(), 2);

    // A subscription and a scope are shared by reference across OS threads.
    let scope = Arc::new(SubscriptionScope::default());
    let (stopped_tx, mut stopped_rx) = mpsc::unbounded_channel();
    let tracked = scope
        .track(Subscription::new(
            move |unsubscribed: Unsubscribed| async move {
                unsubscribed.await;
                stopped_tx.send(()).unwrap();
                Ok::<(), BoxError>(())
            },
        ))
        .unwrap();
    assert_eq!(scope.count(), 1);
    std::thread::scope(|threads| {
        for _ in 0..4 {
            threads.spawn(|| {
                assert!(scope.count() <= 1);
                tracked.unsubscribe();
                assert!(tracked.is_unsubscribed());
            });
        }
    });
    timeout(Duration::from_secs(10), stopped_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scope.count(), 0);
    std::thread::spawn(move || scope.close()).join().unwrap();

    // Errors are usable as boxed errors.
    mux.stop().await;
    let closed: BoxError = Box::new(mux.post(0u32).await.unwrap_err());
    assert!(!closed.to_string().is_empty());
}
