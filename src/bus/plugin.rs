//! Plugins: groups of handlers, streams and tasks that load and unload as one.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::handler::{FromContext, Handler, MissingState};
use super::mux::TypeMux;
use super::scope::SubscriptionScope;
use super::stream::EventStream;
use super::subscription::Subscription;
use crate::boxed::BoxError;

/// A group of handlers, streams and tasks installed on a bus as one unit.
///
/// [`install`](Plugin::install) registers everything through a
/// [`PluginContext`], which tracks it in the plugin's own
/// [`SubscriptionScope`]. [`PluginHandle::unload`] closes that scope: every
/// handler, stream and task of the plugin stops, and other plugins are
/// untouched. Two plugins may handle the same event type independently.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use shardbus::{Plugin, PluginContext, TypeMux};
///
/// struct Ping;
///
/// struct Counter(Arc<AtomicUsize>);
///
/// impl Plugin for Counter {
///     fn name(&self) -> &str {
///         "counter"
///     }
///
///     fn install(&self, cx: &mut PluginContext<'_>) {
///         let count = self.0.clone();
///         cx.add_handler(move |_: Arc<Ping>| {
///             let count = count.clone();
///             async move {
///                 count.fetch_add(1, Ordering::SeqCst);
///             }
///         });
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let bus = TypeMux::new();
/// let count = Arc::new(AtomicUsize::new(0));
/// let plugin = bus.install(Counter(count.clone()));
/// bus.post(Ping).await.unwrap();
/// # while count.load(Ordering::SeqCst) == 0 { tokio::task::yield_now().await; }
/// plugin.unload().await;
/// assert_eq!(bus.post(Ping).await, Ok(0)); // nobody listens any more
/// assert_eq!(count.load(Ordering::SeqCst), 1);
/// # }
/// ```
pub trait Plugin: Send + Sync + 'static {
    /// The plugin's name, for logs and [`PluginHandle::name`].
    fn name(&self) -> &str;

    /// Registers the plugin's handlers, streams and tasks.
    fn install(&self, cx: &mut PluginContext<'_>);
}

/// What a [`Plugin`] registers through; everything made here stops when the
/// plugin is unloaded.
pub struct PluginContext<'a> {
    /// The bus the plugin is installed on.
    bus: &'a TypeMux,
    /// The plugin's name.
    name: &'a str,
    /// Tracks everything the plugin made.
    scope: SubscriptionScope,
    /// The tracked subscriptions themselves, kept alive until unload.
    subs: Vec<Subscription>,
}

/// An installed plugin; made by [`TypeMux::install`].
///
/// Dropping the handle does **not** unload the plugin (plugins usually live
/// as long as the program); call [`unload`](Self::unload).
#[must_use = "dropping a PluginHandle keeps the plugin installed for good; keep it to unload"]
pub struct PluginHandle {
    /// The plugin's name.
    name: String,
    /// Tracks everything the plugin made.
    scope: SubscriptionScope,
    /// The tracked subscriptions; detached if the handle is dropped.
    subs: Vec<Subscription>,
    /// The plugin itself, alive while installed.
    _plugin: Arc<dyn Plugin>,
}

impl PluginContext<'_> {
    /// Runs `handler` for every `E` posted, until the plugin is unloaded.
    ///
    /// # Panics
    ///
    /// Panics if the handler takes a [`State<T>`](super::State) that was not
    /// registered on the bus; see [`try_add_handler`](Self::try_add_handler).
    pub fn add_handler<E, Args, H>(&mut self, handler: H)
    where
        E: Send + Sync + 'static,
        Args: FromContext,
        H: Handler<E, Args>,
    {
        if let Err(missing) = self.try_add_handler(handler) {
            panic!("plugin `{}`: {missing}", self.name);
        }
    }

    /// Like [`add_handler`](Self::add_handler), reporting missing state as an
    /// error.
    ///
    /// # Errors
    ///
    /// [`MissingState`] if the handler takes state the bus does not have.
    pub fn try_add_handler<E, Args, H>(&mut self, handler: H) -> Result<(), MissingState>
    where
        E: Send + Sync + 'static,
        Args: FromContext,
        H: Handler<E, Args>,
    {
        let sub = self.bus.try_add_handler(handler)?;
        self.track(sub);
        Ok(())
    }

    /// Subscribes to `E`; the stream ends when the plugin is unloaded.
    pub fn subscribe<E: Send + Sync + 'static>(&mut self) -> EventStream<E> {
        let stream = self.bus.subscribe::<E>();
        if let Some(closer) = stream.closer() {
            self.track(Subscription::passive(move || closer.close()));
        }
        stream
    }

    /// Spawns `task`; it is aborted when the plugin is unloaded.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&mut self, task: F) {
        let sub = Subscription::new(move |_| async move {
            task.await;
            Ok::<(), BoxError>(())
        });
        self.track(sub);
    }

    /// The bus the plugin is installed on.
    pub fn bus(&self) -> &TypeMux {
        self.bus
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.name
    }

    fn track(&mut self, sub: Subscription) {
        if let Some(sub) = self.scope.track(sub) {
            self.subs.push(sub);
        }
    }
}

impl PluginHandle {
    /// Unloads the plugin and returns once it has stopped.
    ///
    /// Every handler and stream of the plugin is unsubscribed, so no event
    /// posted after this returns reaches it; handler calls in progress and
    /// spawned tasks are cancelled at their next `.await`, and this waits
    /// until they are gone. Other plugins are untouched.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the plugin is unsubscribed and its tasks aborted at the
    /// first poll; dropping the future only skips waiting for them.
    pub async fn unload(self) {
        self.scope.close();
        for sub in &self.subs {
            sub.shared().abort();
        }
        for sub in &self.subs {
            sub.shared().ended().await;
        }
        tracing::debug!(plugin = %self.name, "plugin unloaded");
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PluginHandle {
    fn drop(&mut self) {
        for sub in self.subs.drain(..) {
            sub.detach();
        }
    }
}

impl TypeMux {
    /// Installs `plugin`: runs its [`install`](Plugin::install) and returns
    /// the handle that unloads it.
    ///
    /// # Panics
    ///
    /// Panics if called outside a Tokio runtime, or if the plugin adds a
    /// handler whose state is missing.
    pub fn install<P: Plugin>(&self, plugin: P) -> PluginHandle {
        let plugin: Arc<dyn Plugin> = Arc::new(plugin);
        let mut cx = PluginContext {
            bus: self,
            name: plugin.name(),
            scope: SubscriptionScope::new(),
            subs: Vec::new(),
        };
        plugin.install(&mut cx);
        let PluginContext { scope, subs, .. } = cx;
        tracing::debug!(plugin = %plugin.name(), parts = subs.len(), "plugin installed");
        PluginHandle {
            name: plugin.name().to_owned(),
            scope,
            subs,
            _plugin: plugin,
        }
    }
}

impl fmt::Debug for PluginContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginContext")
            .field("plugin", &self.name)
            .field("tracked", &self.subs.len())
            .finish()
    }
}

impl fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHandle")
            .field("name", &self.name)
            .field("tracked", &self.scope.count())
            .finish()
    }
}
