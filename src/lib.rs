#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod bus;

pub use bus::{
    BoxError, DEFAULT_CAPACITY, EventStream, Feed, Lagged, LossyStream, MuxClosed, SubscribeMany,
    Subscription, SubscriptionScope, TryRecvError, TypeMux, TypeMuxEvent, TypeMuxSubscription,
    Unsubscribed, resubscribe, resubscribe_err,
};
