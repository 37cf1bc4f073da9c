//! Callback handlers: async fns and closures run for every event of a type.

use std::any::{Any, TypeId, type_name};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tracing::Instrument;

use super::mux::TypeMux;
use super::stream::EventStream;
use super::subscription::Subscription;
use crate::boxed::BoxError;
use crate::sync::lock;

/// Something that runs for every event of type `E` posted on a [`TypeMux`].
///
/// Implemented for async fns and closures that take an `Arc<E>`, then up to
/// four extractor arguments ([`State<T>`], [`TypeMux`]), and return `()` or
/// `Result<(), Err>` with `Err: Into<BoxError>`. `#[handler]` on an async fn
/// makes it registrable by name with options (`concurrency`, `name`).
/// Register with [`TypeMux::add_handler`] or a plugin's
/// [`PluginContext::add_handler`](super::PluginContext::add_handler).
///
/// # Delivery
///
/// Each handler reads its own reliable subscription in its own task, so it
/// sees events in post order, one call at a time unless its
/// [`concurrency`](Handler::concurrency) is higher (then up to that many
/// calls overlap, in the same task: never a task per event). A slow handler
/// slows the posts of its event type (lossless backpressure), never other
/// handlers' types.
///
/// # Errors and panics
///
/// An error returned by a call, or a panic in it, does not stop the handler
/// or the bus: it is posted as an `Arc<`[`HandlerError`]`>`, so a handler of
/// `HandlerError` is the catch-all. A failing `HandlerError` handler is only
/// logged, never reposted.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use shardbus::{HandlerError, State, TypeMux};
///
/// struct MessageCreate { content: String }
///
/// #[derive(Clone)]
/// struct Db(Arc<std::sync::Mutex<Vec<String>>>);
///
/// async fn log_message(msg: Arc<MessageCreate>, State(db): State<Db>) {
///     db.0.lock().unwrap().push(msg.content.clone());
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let db = Db(Default::default());
/// let bus = TypeMux::new().with_state(db.clone());
/// let _logger = bus.add_handler(log_message);
/// let _catch_all = bus.add_handler(|err: Arc<HandlerError>| async move {
///     eprintln!("{err}");
/// });
/// bus.post(MessageCreate { content: "hi".into() }).await.unwrap();
/// # while db.0.lock().unwrap().is_empty() { tokio::task::yield_now().await; }
/// assert_eq!(db.0.lock().unwrap()[0], "hi");
/// # }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a handler of `{E}` events",
    label = "not a handler",
    note = "a handler is an async fn or closure whose first argument is `Arc<{E}>`, followed by \
            extractors such as `State<T>`, returning `()` or `Result<(), E>`",
    note = "mark an async fn with `#[shardbus::handler]` to register it by name and to get \
            a precise error about its signature"
)]
pub trait Handler<E, Args = ()>: Send + Sync + 'static {
    /// Runs the handler for one event, with the extractors resolved at
    /// registration. (A future, not a boxed one: no allocation per call.)
    fn call(
        &self,
        event: Arc<E>,
        args: Args,
    ) -> impl Future<Output = Result<(), BoxError>> + Send + 'static;

    /// The name used in [`HandlerError`] and tracing spans. Defaults to the
    /// handler's type name (a fn's path).
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(type_name::<Self>())
    }

    /// How many calls may run at once (at least 1). Defaults to 1: one event
    /// at a time, in order.
    fn concurrency(&self) -> usize {
        1
    }
}

/// A handler argument resolved from the bus when the handler is registered
/// (axum-style extractors). Each call receives a clone.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a handler extractor",
    label = "not an extractor",
    note = "after the event, a handler takes extractors: `State<T>` (registered with \
            `TypeMux::with_state`), `Http` (the REST client, registered the same way) or \
            `TypeMux`, at most four"
)]
pub trait FromContext: Clone + Send + Sync + 'static {
    /// Resolves the argument from `bus`.
    ///
    /// # Errors
    ///
    /// The name of the state type that is missing.
    fn from_context(bus: &TypeMux) -> Result<Self, &'static str>;
}

/// What a handler returns: `()` or `Result<(), E>` with `E: Into<BoxError>`.
pub trait IntoHandlerResult: Send {
    /// Converts into the result the runner reports.
    ///
    /// # Errors
    ///
    /// The handler's error, boxed.
    fn into_handler_result(self) -> Result<(), BoxError>;
}

/// Extracts user state registered with [`TypeMux::with_state`].
///
/// ```
/// use std::sync::Arc;
/// use shardbus::State;
///
/// #[derive(Clone)]
/// struct Config { prefix: String }
///
/// async fn on_message(msg: Arc<String>, State(config): State<Config>) {
///     let _reply = format!("{}{}", config.prefix, msg);
/// }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State<T>(pub T);

/// A handler error or panic, posted on the bus as `Arc<HandlerError>`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("handler `{handler}` {} on a `{event_type}` event: {message}", if *.panicked { "panicked" } else { "failed" })]
#[non_exhaustive]
pub struct HandlerError {
    /// The type name of the event being handled.
    pub event_type: &'static str,
    /// The handler's [`name`](Handler::name).
    pub handler: Cow<'static, str>,
    /// The error's text, or the panic's payload text.
    pub message: String,
    /// Whether the handler panicked (rather than returned an error).
    pub panicked: bool,
}

/// A handler asked for state that was never registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "handler `{handler}` needs `State<{state}>`, which was not registered: call `TypeMux::with_state` before adding the handler"
)]
#[non_exhaustive]
pub struct MissingState {
    /// The handler's name.
    pub handler: Cow<'static, str>,
    /// The type name of the missing state.
    pub state: &'static str,
}

/// Told of every handler call's outcome on a bus that has one: how a
/// broker's consumer acknowledges an event once every handler of it is
/// done (`shardbus::bridge::NatsBus`).
pub(crate) trait CallTracker: Send + Sync + 'static {
    /// Handler `handler`'s call for the event at `key` (its `Arc`'s
    /// address) ended, with its error if it failed.
    fn call_done(&self, handler: HandlerId, key: usize, error: Option<&str>);
    /// Handler `handler` stopped: it reports no more calls, even for
    /// events it had been posted and not yet run.
    fn handler_removed(&self, handler: HandlerId);
}

/// One handler registration on a bus, unique in the process.
pub(crate) type HandlerId = u64;

/// Every handler registered on a bus, by event type, whatever registered
/// it and whenever: [`TypeMux::add_handler`], a plugin, before or after a
/// [`CallTracker`] was set. Each handler subscribes first and registers
/// second, so an event posted while it is being added may reach it
/// unlisted (its report is then ignored), but never lists a handler that
/// will not see it.
#[derive(Default)]
pub(crate) struct HandlerRegistry {
    /// The live handlers of each event type. Also serialises removals with
    /// [`with_handlers`](Self::with_handlers).
    by_type: std::sync::Mutex<HashMap<TypeId, Vec<HandlerId>>>,
    /// Told of every call and removal, if set.
    tracker: ArcSwapOption<TrackerSlot>,
}

/// A [`CallTracker`] in a sized box, as `ArcSwapOption` needs.
struct TrackerSlot(Arc<dyn CallTracker>);

impl HandlerRegistry {
    /// Registers a handler of `event`.
    fn register(&self, event: TypeId) -> HandlerId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        lock(&self.by_type).entry(event).or_default().push(id);
        id
    }

    /// Removes handler `id` of `event`, telling the tracker while no event
    /// can be listed with it.
    fn unregister(&self, event: TypeId, id: HandlerId) {
        let mut by_type = lock(&self.by_type);
        if let Some(ids) = by_type.get_mut(&event) {
            ids.retain(|h| *h != id);
            if ids.is_empty() {
                by_type.remove(&event);
            }
        }
        if let Some(slot) = &*self.tracker.load() {
            slot.0.handler_removed(id);
        }
    }

    /// Tells the tracker, if any, that handler `id`'s call for `key`
    /// ended.
    fn report(&self, id: HandlerId, key: usize, error: Option<&str>) {
        if let Some(slot) = &*self.tracker.load() {
            slot.0.call_done(id, key, error);
        }
    }

    /// Runs `f` on the handlers of `event` now; no handler is removed (and
    /// reported removed) while it runs.
    #[cfg(feature = "nats")]
    pub(crate) fn with_handlers<R>(&self, event: TypeId, f: impl FnOnce(&[HandlerId]) -> R) -> R {
        let by_type = lock(&self.by_type);
        f(by_type.get(&event).map_or(&[], Vec::as_slice))
    }

    /// Sets `tracker`, unless one is set already; whether it was.
    #[cfg(feature = "nats")]
    pub(crate) fn track(&self, tracker: Arc<dyn CallTracker>) -> bool {
        let _serial = lock(&self.by_type);
        if self.tracker.load().is_some() {
            return false;
        }
        self.tracker.store(Some(Arc::new(TrackerSlot(tracker))));
        true
    }

    /// Removes `tracker`, if it is the one set.
    #[cfg(feature = "nats")]
    pub(crate) fn untrack(&self, tracker: &Arc<dyn CallTracker>) {
        let _serial = lock(&self.by_type);
        let ours = self
            .tracker
            .load()
            .as_ref()
            .is_some_and(|slot| std::ptr::addr_eq(Arc::as_ptr(&slot.0), Arc::as_ptr(tracker)));
        if ours {
            self.tracker.store(None);
        }
    }
}

/// A handler's registration; removed when its runner is dropped.
struct Registered {
    /// The bus's registry.
    registry: Arc<HandlerRegistry>,
    /// The handler's event type.
    event: TypeId,
    /// The handler.
    id: HandlerId,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.unregister(self.event, self.id);
    }
}

impl TypeMux {
    /// Registers `state` for handlers that take a [`State<T>`] argument.
    ///
    /// The bus is a shared handle, so every clone of it sees the state; a
    /// second value of the same type replaces the first for handlers
    /// registered afterwards.
    pub fn with_state<T: Clone + Send + Sync + 'static>(self, state: T) -> Self {
        self.insert_state(TypeId::of::<T>(), Arc::new(state));
        self
    }

    /// A clone of the state of type `T`, if one was registered.
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        let state = self.get_state(TypeId::of::<T>())?;
        let state: &(dyn Any + Send + Sync) = &*state;
        state.downcast_ref::<T>().cloned()
    }

    /// Runs `handler` for every `E` posted from now on, in its own task.
    ///
    /// Unsubscribing or dropping the returned subscription stops it: it sees
    /// no later event and finishes the call in progress. See [`Handler`].
    ///
    /// # Panics
    ///
    /// Panics if the handler takes a [`State<T>`] that was not registered
    /// (use [`try_add_handler`](Self::try_add_handler) to get the error
    /// instead), and if called outside a Tokio runtime.
    pub fn add_handler<E, Args, H>(&self, handler: H) -> Subscription
    where
        E: Send + Sync + 'static,
        Args: FromContext,
        H: Handler<E, Args>,
    {
        match self.try_add_handler(handler) {
            Ok(sub) => sub,
            Err(missing) => panic!("{missing}"),
        }
    }

    /// Like [`add_handler`](Self::add_handler), but reports missing state as
    /// an error.
    ///
    /// # Errors
    ///
    /// [`MissingState`] if the handler takes a [`State<T>`] that was not
    /// registered with [`with_state`](Self::with_state).
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub fn try_add_handler<E, Args, H>(&self, handler: H) -> Result<Subscription, MissingState>
    where
        E: Send + Sync + 'static,
        Args: FromContext,
        H: Handler<E, Args>,
    {
        let args = Args::from_context(self).map_err(|state| MissingState {
            handler: handler.name(),
            state,
        })?;
        let stream = self.subscribe::<E>();
        let closer = stream.closer();
        // After subscribing: a handler listed for an event always sees it.
        let registry = self.handler_registry().clone();
        let registered = Registered {
            id: registry.register(TypeId::of::<E>()),
            registry,
            event: TypeId::of::<E>(),
        };
        let runner = Runner {
            registered,
            bus: self.clone(),
            name: handler.name(),
            handler,
            args,
            _event: std::marker::PhantomData,
        };
        let sub = Subscription::new(move |_| async move {
            runner.run(stream).await;
            Ok(())
        });
        if let Some(closer) = closer {
            sub.shared().add_hook(Box::new(move || closer.close()));
        }
        Ok(sub)
    }
}

/// Runs one registered handler.
struct Runner<E, Args, H> {
    /// Its registration, through which its calls are reported.
    registered: Registered,
    /// Where errors are posted.
    bus: TypeMux,
    /// The handler's name, computed once.
    name: Cow<'static, str>,
    /// The handler.
    handler: H,
    /// Its extractors, cloned into every call.
    args: Args,
    /// The event type.
    _event: std::marker::PhantomData<fn(E)>,
}

impl<E, Args, H> Runner<E, Args, H>
where
    E: Send + Sync + 'static,
    Args: FromContext,
    H: Handler<E, Args>,
{
    async fn run(self, mut stream: EventStream<E>) {
        let limit = self.handler.concurrency().max(1);
        if limit == 1 {
            while let Some(event) = stream.recv().await {
                self.call_one(event).await;
            }
            return;
        }
        let mut in_flight = FuturesUnordered::new();
        loop {
            if in_flight.len() >= limit {
                in_flight.next().await;
                continue;
            }
            tokio::select! {
                event = stream.recv() => match event {
                    Some(event) => in_flight.push(self.call_one(event)),
                    None => break,
                },
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
            }
        }
        while in_flight.next().await.is_some() {}
    }

    /// One call, with its span, its error or panic reported.
    async fn call_one(&self, event: Arc<E>) {
        let key = Arc::as_ptr(&event).cast::<()>() as usize;
        let span = tracing::info_span!("handler", handler = %self.name, event = type_name::<E>());
        let call = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.handler.call(event, self.args.clone())
        }));
        let outcome = match call {
            Ok(fut) => AssertUnwindSafe(fut).catch_unwind().instrument(span).await,
            Err(payload) => Err(payload),
        };
        let (message, panicked) = match outcome {
            Ok(Ok(())) => {
                self.registered
                    .registry
                    .report(self.registered.id, key, None);
                return;
            }
            Ok(Err(e)) => (e.to_string(), false),
            Err(payload) => (panic_text(payload.as_ref()), true),
        };
        self.registered
            .registry
            .report(self.registered.id, key, Some(&message));
        let error = HandlerError {
            event_type: type_name::<E>(),
            handler: self.name.clone(),
            message,
            panicked,
        };
        if TypeId::of::<E>() == TypeId::of::<HandlerError>() {
            // Reposting would feed the failure back to this very handler.
            tracing::error!(%error, "a HandlerError handler failed; not reposted");
            return;
        }
        tracing::warn!(%error, "handler failed");
        // A stopped bus has nobody left to tell.
        let _ = self.bus.post(error).await;
    }
}

/// The text of a panic payload.
fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<Err: Into<BoxError> + Send> IntoHandlerResult for Result<(), Err> {
    fn into_handler_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

impl<T: Clone + Send + Sync + 'static> FromContext for State<T> {
    fn from_context(bus: &TypeMux) -> Result<Self, &'static str> {
        bus.state::<T>().map(State).ok_or(type_name::<T>())
    }
}

impl FromContext for TypeMux {
    fn from_context(bus: &TypeMux) -> Result<Self, &'static str> {
        Ok(bus.clone())
    }
}

/// Implements `FromContext` for a tuple of extractors and `Handler` for fns
/// and closures taking an event and those extractors.
macro_rules! handler_arity {
    ($($arg:ident),*) => {
        impl<$($arg: FromContext),*> FromContext for ($($arg,)*) {
            #[allow(unused_variables)]
            fn from_context(bus: &TypeMux) -> Result<Self, &'static str> {
                Ok(($($arg::from_context(bus)?,)*))
            }
        }

        impl<E, F, Fut, R, $($arg),*> Handler<E, ($($arg,)*)> for F
        where
            E: Send + Sync + 'static,
            F: Fn(Arc<E> $(, $arg)*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoHandlerResult,
            $($arg: FromContext,)*
        {
            #[allow(non_snake_case)]
            fn call(
                &self,
                event: Arc<E>,
                args: ($($arg,)*),
            ) -> impl Future<Output = Result<(), BoxError>> + Send + 'static {
                let ($($arg,)*) = args;
                let fut = self(event $(, $arg)*);
                async move { fut.await.into_handler_result() }
            }
        }
    };
}

handler_arity!();
handler_arity!(A1);
handler_arity!(A1, A2);
handler_arity!(A1, A2, A3);
handler_arity!(A1, A2, A3, A4);

impl<E, Args, H> fmt::Debug for Runner<E, Args, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("handler", &self.name)
            .field("event", &type_name::<E>())
            .finish_non_exhaustive()
    }
}
