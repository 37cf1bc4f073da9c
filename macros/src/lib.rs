//! Procedural macros for [`shardbus`](https://docs.rs/shardbus): the
//! [`#[handler]`](macro@handler) attribute.
//!
//! Use them through `shardbus`, which re-exports them
//! (`use shardbus::handler;`); the generated code names `::shardbus`.

use proc_macro::TokenStream;
use quote::quote;

mod attr;
mod expand;

/// Turns an `async fn` into a named, configurable bus handler.
///
/// Plain async fns are already handlers; `#[handler]` makes one a unit
/// struct of the same name that implements `shardbus::Handler`, so it can be
/// registered by name with options, and reports a mistake in its signature
/// at the mistake rather than where it is registered.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use shardbus::{Handler, State, TypeMux, handler};
///
/// struct MessageCreate {
///     content: String,
/// }
///
/// /// Counts messages, up to four at a time.
/// #[handler(concurrency = 4, name = "counter")]
/// async fn count_messages(
///     msg: Arc<MessageCreate>,
///     State(count): State<Arc<AtomicUsize>>,
/// ) -> Result<(), std::fmt::Error> {
///     if msg.content.is_empty() {
///         return Err(std::fmt::Error);
///     }
///     count.fetch_add(1, Ordering::SeqCst);
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert_eq!(Handler::<MessageCreate, _>::name(&count_messages), "counter");
/// assert_eq!(Handler::<MessageCreate, _>::concurrency(&count_messages), 4);
///
/// let count = Arc::new(AtomicUsize::new(0));
/// let bus = TypeMux::new().with_state(count.clone());
/// let _counter = bus.add_handler(count_messages);
/// bus.post(MessageCreate { content: "hi".into() }).await.unwrap();
/// # while count.load(Ordering::SeqCst) == 0 { tokio::task::yield_now().await; }
/// assert_eq!(count.load(Ordering::SeqCst), 1);
/// # }
/// ```
///
/// # The handler
///
/// An `async fn` (not generic, no `self`) whose first argument is the event
/// as `Arc<E>` (also spelled `std::sync::Arc<E>` or `alloc::sync::Arc<E>`),
/// followed by up to four extractors (`State<T>`, `TypeMux`, any
/// `FromContext`), returning `()` or `Result<(), Err>` with
/// `Err: Into<BoxError>`. Its visibility, doc comments and `#[cfg]` go to the
/// struct; other attributes stay on the body (`#[allow]` goes to both).
///
/// # Options
///
/// - `concurrency = N`: how many calls may overlap, a positive integer
///   literal. Defaults to 1: one event at a time, in order.
/// - `name = "..."`: the name in `HandlerError` and tracing spans. Defaults to
///   the fn's path, `concat!(module_path!(), "::", fn_name)`.
///
/// # What it generates
///
/// For `#[handler] pub async fn on_message(msg: Arc<Msg>, State(db): State<Db>)`:
///
/// ```text
/// #[derive(Clone, Copy, Debug, Default)]
/// pub struct on_message;
///
/// impl on_message {
///     #[doc(hidden)]
///     pub async fn __shardbus_call(msg: Arc<Msg>, State(db): State<Db>) { /* the body */ }
/// }
///
/// impl shardbus::Handler<Msg, (State<Db>,)> for on_message { /* calls it */ }
/// ```
///
/// # Errors
///
/// Compile errors, each on the offending tokens: a fn that is not `async`,
/// has no event argument or one that is not `Arc<E>`, takes `self`, is
/// generic, takes `impl Trait` or more than four extractors; an unknown,
/// repeated or ill-typed option; an item that is not a fn. An extractor that
/// is not `FromContext`, or a return type that is neither `()` nor a
/// `Result`, is reported at that type.
#[proc_macro_attribute]
pub fn handler(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_with(attr, item, expand::handler)
}

/// Parses the options and the fn, runs `f`, and turns every error into
/// `compile_error!` here and only here.
///
/// On error the item is emitted unchanged next to the errors, so rustc
/// still reports the user's own mistakes, and uses of the fn do not add
/// "cannot find" errors on top (tracing's `instrument_speculative`).
fn expand_with(
    attr: TokenStream,
    item: TokenStream,
    f: impl FnOnce(attr::HandlerArgs, attr::HandlerFn) -> syn::Result<proc_macro2::TokenStream>,
) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    // A bad option does not hide mistakes in the signature: check both.
    let (args, args_error) = match syn::parse::<attr::HandlerArgs>(attr) {
        Ok(args) => (args, None),
        Err(error) => (attr::HandlerArgs::default(), Some(error)),
    };
    let expanded = syn::parse2::<attr::HandlerFn>(item.clone())
        .map_err(|error| not_a_fn(&item, error))
        .and_then(|func| f(args, func));
    let result = match (args_error, expanded) {
        (None, expanded) => expanded,
        (Some(error), Ok(_)) => Err(error),
        (Some(mut error), Err(more)) => {
            error.combine(more);
            Err(error)
        }
    };
    match result {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let error = error.into_compile_error();
            quote!(#item #error).into()
        }
    }
}

/// A clearer error for an item that is not a fn at all.
fn not_a_fn(item: &proc_macro2::TokenStream, error: syn::Error) -> syn::Error {
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(_)) | Err(_) => error,
        Ok(_) => syn::Error::new(error.span(), "`#[handler]` only applies to an `async fn`"),
    }
}
