//! Decoding dispatches into their registered types, and posting them.

// A shard decodes through `decode` (feature `gateway`), a NATS worker
// through `decode_remote` (feature `nats`); a build may have one of them.
#![cfg_attr(not(all(feature = "gateway", feature = "nats")), allow(dead_code))]

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use crate::bus::{MuxClosed, TypeMux};
use crate::model::SessionId;

use super::event::{DispatchEvent, DispatchMeta, Event};
use super::hook::DispatchHook;
use super::opcode::{EventType, OpCode};

/// A dispatch with no registered type, posted as `Arc<UnknownDispatch>`.
#[derive(Debug, Clone)]
pub struct UnknownDispatch {
    /// The dispatch type (`t`).
    pub event_type: EventType,
    /// The shard and sequence number.
    pub meta: DispatchMeta,
    /// The raw JSON of `d`.
    pub data: String,
}

impl Event for UnknownDispatch {
    fn op(&self) -> OpCode {
        OpCode::Dispatch
    }

    fn event_type(&self) -> EventType {
        self.event_type.clone()
    }
}

/// Every dispatch as it came, posted as `Arc<RawDispatch>` (besides its
/// typed event) while anything subscribes to this type: what a bridge to
/// another process forwards without decoding and encoding it again.
///
/// A shard posts its raw dispatches in its own sequence order, losslessly
/// like every event: a slow subscriber of `RawDispatch` holds back the
/// shard that posts it.
#[derive(Debug, Clone)]
pub struct RawDispatch {
    /// The dispatch type (`t`).
    pub event_type: EventType,
    /// The shard and sequence number.
    pub meta: DispatchMeta,
    /// The session it came in (`session_id` from Ready): with `meta`, a
    /// dispatch's identity, the same when a resume replays it.
    pub session_id: SessionId,
    /// The raw JSON of `d`, exactly as received.
    pub data: String,
}

impl Event for RawDispatch {
    fn op(&self) -> OpCode {
        OpCode::Dispatch
    }

    fn event_type(&self) -> EventType {
        self.event_type.clone()
    }
}

/// A post of one decoded event, awaited by the shard loop.
pub(crate) type PostFuture = Pin<Box<dyn Future<Output = Result<usize, MuxClosed>> + Send>>;

/// Decodes `d`, shows the result to the hook, and makes the post of it
/// (`None` if the bus does not want it).
type DecodeFn = fn(
    &str,
    DispatchMeta,
    &TypeMux,
    bool,
    Option<&dyn DispatchHook>,
) -> Result<Option<PostFuture>, serde_json::Error>;

/// Whether anything on the bus wants the type.
type WantedFn = fn(&TypeMux) -> bool;

/// Decodes `d` from a broker and makes its post, with the event's key.
type RemoteFn = fn(&str, DispatchMeta, &TypeMux) -> Result<RemotePost, serde_json::Error>;

/// The post of a dispatch that came from a broker, not a shard.
pub(crate) struct RemotePost {
    /// The post to await.
    pub(crate) post: PostFuture,
    /// The posted `Arc`'s address: what handler calls report it by.
    pub(crate) key: usize,
    /// The model type.
    pub(crate) type_id: TypeId,
}

/// Maps dispatch names to the types they decode into.
///
/// [`with_defaults`](Self::with_defaults) registers every model in
/// [`crate::model`]; [`register`](Self::register) adds or replaces one.
/// Dispatches are decoded only when their type has a subscriber or handler
/// (others cost a table lookup), and a dispatch with no registered type is
/// posted as [`UnknownDispatch`].
#[derive(Clone, Default)]
pub struct EventRegistry {
    /// By dispatch name.
    entries: HashMap<String, Entry>,
}

/// How one dispatch name is handled.
#[derive(Clone, Copy)]
struct Entry {
    /// Decodes and posts.
    decode: DecodeFn,
    /// Checks for subscribers.
    wanted: WantedFn,
    /// The model type, for a [`DispatchHook`].
    type_id: TypeId,
    /// Decodes and posts a broker's copy.
    remote: RemoteFn,
}

/// What [`EventRegistry::decode`] made of a dispatch.
pub(crate) enum Decoded {
    /// A post to await.
    Post(PostFuture),
    /// Nobody subscribes to its type: nothing to do.
    Unwanted,
    /// Its `d` did not match the registered type.
    Failed(serde_json::Error),
    /// An [`UnknownDispatch`] is wanted, and `d` must be checked first.
    Unchecked,
}

impl EventRegistry {
    /// A registry with no types: every dispatch is an [`UnknownDispatch`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry with every built-in model of [`crate::model`].
    pub fn with_defaults() -> Self {
        let mut registry = Self::new();
        super::events::register_builtin(&mut registry);
        registry
    }

    /// The [`with_defaults`](Self::with_defaults) registry, built once per
    /// process and shared.
    pub(crate) fn shared_defaults() -> Arc<Self> {
        static DEFAULTS: OnceLock<Arc<EventRegistry>> = OnceLock::new();
        DEFAULTS
            .get_or_init(|| Arc::new(Self::with_defaults()))
            .clone()
    }

    /// Registers `T` for dispatches named `T::EVENT_TYPE`, replacing any
    /// earlier type for that name.
    pub fn register<T: DispatchEvent>(&mut self) -> &mut Self {
        self.entries.insert(
            T::EVENT_TYPE.as_str().to_owned(),
            Entry {
                decode: decode::<T>,
                wanted: TypeMux::has_subscribers::<T>,
                type_id: TypeId::of::<T>(),
                remote: decode_remote::<T>,
            },
        );
        self
    }

    /// Whether a type is registered for `event_type`.
    pub fn contains(&self, event_type: &str) -> bool {
        self.entries.contains_key(event_type)
    }

    /// Decodes one dispatch and prepares its post. `exact` says whether
    /// `data` is known to be one JSON value; decoding a registered type
    /// checks that itself, but an [`UnknownDispatch`] would carry `data`
    /// as it is, so it is not made from unchecked data
    /// ([`Decoded::Unchecked`]). A `hook` that wants the type sees it
    /// decoded before the post is made.
    pub(crate) fn decode(
        &self,
        event_type: &str,
        data: &str,
        exact: bool,
        meta: DispatchMeta,
        bus: &TypeMux,
        hook: Option<&dyn DispatchHook>,
    ) -> Decoded {
        match self.entries.get(event_type) {
            Some(entry) => {
                let posted = (entry.wanted)(bus);
                let hook = hook.filter(|hook| hook.wants(entry.type_id));
                if !posted && hook.is_none() {
                    return Decoded::Unwanted;
                }
                match (entry.decode)(data, meta, bus, posted, hook) {
                    Ok(Some(post)) => Decoded::Post(post),
                    Ok(None) => Decoded::Unwanted,
                    Err(e) => Decoded::Failed(e),
                }
            }
            None if !exact && bus.has_subscribers::<UnknownDispatch>() => Decoded::Unchecked,
            None if bus.has_subscribers::<UnknownDispatch>() => {
                let unknown = UnknownDispatch {
                    event_type: EventType::from(event_type.to_owned()),
                    meta,
                    data: data.to_owned(),
                };
                let bus = bus.clone();
                Decoded::Post(Box::pin(async move { bus.post(unknown).await }))
            }
            None => Decoded::Unwanted,
        }
    }
}

impl EventRegistry {
    /// Decodes the `d` of a dispatch a broker delivered and prepares its
    /// post (even with no subscriber: the caller tracks it); `None` for a
    /// type with no registered model and no [`UnknownDispatch`]
    /// subscriber.
    pub(crate) fn decode_remote(
        &self,
        event_type: &str,
        data: &str,
        meta: DispatchMeta,
        bus: &TypeMux,
    ) -> Result<Option<RemotePost>, serde_json::Error> {
        match self.entries.get(event_type) {
            Some(entry) => (entry.remote)(data, meta, bus).map(Some),
            None if bus.has_subscribers::<UnknownDispatch>() => {
                // Checked to be one JSON value, as a shard's would be.
                let _: &serde_json::value::RawValue = serde_json::from_str(data)?;
                let unknown = Arc::new(UnknownDispatch {
                    event_type: EventType::from(event_type.to_owned()),
                    meta,
                    data: data.to_owned(),
                });
                let key = Arc::as_ptr(&unknown) as usize;
                let bus = bus.clone();
                Ok(Some(RemotePost {
                    post: Box::pin(async move { bus.post_arc(unknown).await }),
                    key,
                    type_id: TypeId::of::<UnknownDispatch>(),
                }))
            }
            None => Ok(None),
        }
    }
}

/// [`Entry::remote`] for `T`.
fn decode_remote<T: DispatchEvent>(
    data: &str,
    meta: DispatchMeta,
    bus: &TypeMux,
) -> Result<RemotePost, serde_json::Error> {
    let mut event: T = serde_json::from_str(data)?;
    event.set_meta(meta);
    let event = Arc::new(event);
    let key = Arc::as_ptr(&event).cast::<()>() as usize;
    let bus = bus.clone();
    Ok(RemotePost {
        post: Box::pin(async move { bus.post_arc(event).await }),
        key,
        type_id: TypeId::of::<T>(),
    })
}

/// [`Entry::decode`] for `T`.
fn decode<T: DispatchEvent>(
    data: &str,
    meta: DispatchMeta,
    bus: &TypeMux,
    posted: bool,
    hook: Option<&dyn DispatchHook>,
) -> Result<Option<PostFuture>, serde_json::Error> {
    let mut event: T = serde_json::from_str(data)?;
    event.set_meta(meta);
    if let Some(hook) = hook {
        hook.on_dispatch(meta, &event);
    }
    if !posted {
        return Ok(None);
    }
    // Into its `Arc` at once: only types with subscribers are decoded, and
    // a model moved through the post future is copied (a MessageCreate is
    // about 1 KB) several times more, with the future itself that large.
    let event = Arc::new(event);
    let bus = bus.clone();
    Ok(Some(Box::pin(async move { bus.post_arc(event).await })))
}

impl fmt::Debug for EventRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.entries.keys().collect();
        names.sort();
        f.debug_struct("EventRegistry")
            .field("types", &names)
            .finish()
    }
}
