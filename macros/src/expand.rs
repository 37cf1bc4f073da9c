//! Checking a handler's signature and generating its struct and `Handler`
//! impl.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, GenericArgument, PathArguments, ReturnType, Signature, Type, TypeImplTrait};

use crate::attr::{HandlerArgs, HandlerFn};

/// How many extractors may follow the event (the runtime's `Handler` impls
/// for tuples go up to four).
const MAX_EXTRACTORS: usize = 4;

/// The accepted paths to `Arc`, without the final `Arc` segment.
const ARC_PATHS: [&[&str]; 3] = [&[], &["std", "sync"], &["alloc", "sync"]];

/// A signature that passed the checks.
struct Checked<'a> {
    /// `E` in the first argument's `Arc<E>`.
    event: &'a Type,
    /// The extractors' types, in order.
    extractors: Vec<&'a Type>,
}

/// Expands `#[handler(args)] async fn ...` into a unit struct, an inherent
/// impl holding the original body, and a `Handler` impl.
pub(crate) fn handler(args: HandlerArgs, func: HandlerFn) -> syn::Result<TokenStream> {
    let Checked { event, extractors } = check_signature(&func.sig)?;
    let HandlerFn {
        attrs,
        vis,
        sig,
        body,
    } = &func;
    let ident = &sig.ident;

    let cfgs: Vec<_> = attrs.iter().filter(|a| a.path().is_ident("cfg")).collect();
    let docs = attrs.iter().filter(|a| a.path().is_ident("doc"));
    let allows = attrs.iter().filter(|a| a.path().is_ident("allow"));
    let fn_attrs = attrs
        .iter()
        .filter(|a| !a.path().is_ident("cfg") && !a.path().is_ident("doc"));

    let mut inner = sig.clone();
    inner.ident = format_ident!("__shardbus_call");

    let name = match &args.name {
        Some(name) => name.to_token_stream(),
        None => {
            let fn_name = ident.unraw().to_string();
            quote!(::std::concat!(::std::module_path!(), "::", #fn_name))
        }
    };
    let concurrency = match &args.concurrency {
        Some(c) => {
            let value = c.value;
            quote_spanned!(c.lit.span()=> #value)
        }
        None => quote!(1),
    };

    // Locals are `mixed_site`, so they resolve to each other even where a
    // use is spanned on the user's tokens (which may come from their own
    // `macro_rules!`).
    let local = |name: &str| Ident::new(name, Span::mixed_site());
    let event_arg = local("__shardbus_event");
    let arg_names: Vec<_> = (0..extractors.len())
        .map(|i| local(&format!("__shardbus_arg{i}")))
        .collect();
    // Spanned on the user's return type, so a type that is neither `()` nor
    // `Result<(), E>` is reported there.
    let output_span = match &sig.output {
        ReturnType::Default => Span::call_site(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    let into_result = quote_spanned! {output_span=>
        ::shardbus::IntoHandlerResult::into_handler_result(
            Self::__shardbus_call(#event_arg, #(#arg_names),*).await,
        )
    };
    // Spanned on the fn's name, so a body that is not `Send` is reported
    // there (with rustc's note on the `.await` that holds the culprit).
    let body_future = quote_spanned! {ident.span()=>
        async move { #into_result }
    };
    // The `Send` bound is checked here: spanned on the name too.
    let future_type = quote_spanned! {ident.span()=>
        impl ::std::future::Future<
            Output = ::std::result::Result<(), ::shardbus::BoxError>,
        > + ::std::marker::Send + 'static
    };
    // Checked where the handler is defined, spanned on the user's types,
    // rather than only where it is registered.
    let event_check = quote_spanned! {event.span()=>
        let _ = __shardbus_is_event::<#event>;
    };
    let extractor_checks = extractors.iter().map(|ty| {
        quote_spanned! {ty.span()=>
            let _ = __shardbus_is_extractor::<#ty>;
        }
    });

    Ok(quote! {
        #(#cfgs)*
        #(#docs)*
        #(#allows)*
        #[allow(non_camel_case_types)]
        #[derive(
            ::std::clone::Clone,
            ::std::marker::Copy,
            ::std::fmt::Debug,
            ::std::default::Default,
        )]
        #vis struct #ident;

        #(#cfgs)*
        impl #ident {
            #[doc(hidden)]
            #(#fn_attrs)*
            #vis #inner #body
        }

        #(#cfgs)*
        impl ::shardbus::Handler<#event, (#(#extractors,)*)> for #ident {
            fn call(
                &self,
                #event_arg: ::std::sync::Arc<#event>,
                (#(#arg_names,)*): (#(#extractors,)*),
            ) -> #future_type {
                #body_future
            }

            fn name(&self) -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed(#name)
            }

            fn concurrency(&self) -> usize {
                #concurrency
            }
        }

        #(#cfgs)*
        const _: () = {
            fn __shardbus_is_event<E: ::std::marker::Send + ::std::marker::Sync + 'static>() {}
            fn __shardbus_is_extractor<T: ::shardbus::FromContext>() {}
            #event_check
            #(#extractor_checks)*
        };
    })
}

/// Checks everything the generated code relies on, reporting every problem
/// at once, each on the user's own tokens.
fn check_signature(sig: &Signature) -> syn::Result<Checked<'_>> {
    let mut errors = Errors::default();
    if let Some(constness) = &sig.constness {
        errors.push(constness, "a handler cannot be `const`");
    }
    if sig.asyncness.is_none() {
        errors.push(
            sig.fn_token,
            "`#[handler]` requires an `async fn`: add `async` before `fn`",
        );
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(unsafety, "a handler cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        errors.push(abi, "a handler cannot have an `extern` ABI");
    }
    if !sig.generics.params.is_empty() {
        errors.push(
            &sig.generics,
            "handlers cannot be generic: `#[handler]` makes one struct for one event type",
        );
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(
            where_clause,
            "handlers cannot be generic: `#[handler]` makes one struct for one event type",
        );
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(variadic, "a handler cannot be variadic");
    }

    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push(
                receiver,
                "a handler cannot take `self`: put `#[handler]` on a free `async fn`",
            ),
            FnArg::Typed(arg) => {
                let mut impl_traits = ImplTraits::default();
                impl_traits.visit_type(&arg.ty);
                for impl_trait in impl_traits.found {
                    errors.push(
                        impl_trait,
                        "a handler's arguments cannot be `impl Trait`: name the type",
                    );
                }
                types.push(&*arg.ty);
            }
        }
    }

    let event = match types.first() {
        None if sig.inputs.is_empty() => {
            errors.push_span(
                sig.paren_token.span.join(),
                "a handler's first argument is the event, `Arc<E>`",
            );
            None
        }
        // The receiver was reported.
        None => None,
        Some(first) => {
            let event = arc_inner(first);
            if event.is_none() {
                errors.push(
                    first,
                    "a handler's first argument is the event, `Arc<E>`: \
                     every handler of an event type shares the same event",
                );
            }
            event
        }
    };

    let extractors = types.get(1..).unwrap_or_default().to_vec();
    if let Some(extra) = extractors.get(MAX_EXTRACTORS..).filter(|e| !e.is_empty()) {
        let extra_args: TokenStream = sig
            .inputs
            .iter()
            .skip(1 + MAX_EXTRACTORS)
            .map(ToTokens::to_token_stream)
            .collect();
        errors.push(
            extra_args,
            format!(
                "a handler takes at most {MAX_EXTRACTORS} extractors after the event; this one \
                 has {}: group state into one `State<T>`",
                MAX_EXTRACTORS + extra.len(),
            ),
        );
    }

    errors.finish()?;
    let event = event.expect("a missing event was reported as an error");
    Ok(Checked { event, extractors })
}

/// `E` if `ty` is `Arc<E>` through one of [`ARC_PATHS`].
fn arc_inner(ty: &Type) -> Option<&Type> {
    let path = match ty {
        Type::Path(path) => path,
        // A `$ty:ty` from the user's `macro_rules!`, or parentheses.
        Type::Group(syn::TypeGroup { elem, .. }) | Type::Paren(syn::TypeParen { elem, .. }) => {
            return arc_inner(elem);
        }
        _ => return None,
    };
    if path.qself.is_some() {
        return None;
    }
    let segments: Vec<_> = path.path.segments.iter().collect();
    let (last, prefix) = segments.split_last()?;
    let prefix: Vec<String> = prefix
        .iter()
        .map(|segment| {
            segment
                .arguments
                .is_none()
                .then(|| segment.ident.to_string())
        })
        .collect::<Option<_>>()?;
    // A bare `Arc` has no leading `::`.
    if prefix.is_empty() && path.path.leading_colon.is_some() {
        return None;
    }
    if !ARC_PATHS.iter().any(|p| *p == prefix) {
        return None;
    }
    if last.ident != "Arc" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>()[..] {
        [GenericArgument::Type(inner)] => Some(inner),
        _ => None,
    }
}

/// Collects `impl Trait` types inside a type.
#[derive(Default)]
struct ImplTraits<'a> {
    /// Every `impl Trait` found.
    found: Vec<&'a TypeImplTrait>,
}

impl<'a> Visit<'a> for ImplTraits<'a> {
    fn visit_type_impl_trait(&mut self, ty: &'a TypeImplTrait) {
        self.found.push(ty);
    }
}

/// Several errors reported together, so one compile shows every mistake.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds an error spanning `tokens`.
    fn push(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.add(syn::Error::new_spanned(tokens, message));
    }

    /// Adds an error at `span`.
    fn push_span(&mut self, span: Span, message: impl std::fmt::Display) {
        self.add(syn::Error::new(span, message));
    }

    fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `Err` with every error, if any.
    fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn inner(ty: TokenStream) -> Option<String> {
        let ty: Type = syn::parse2(ty).expect("a type");
        arc_inner(&ty).map(|inner| inner.to_token_stream().to_string())
    }

    #[test]
    fn the_event_is_found_in_every_spelling_of_arc() {
        for arc in [
            quote!(Arc<Msg>),
            quote!(std::sync::Arc<Msg>),
            quote!(::std::sync::Arc<Msg>),
            quote!(alloc::sync::Arc<Msg>),
            quote!(::alloc::sync::Arc<Msg>),
            quote!((Arc<Msg>)),
        ] {
            assert_eq!(inner(arc).as_deref(), Some("Msg"));
        }
        assert_eq!(inner(quote!(Arc<Vec<u8>>)).as_deref(), Some("Vec < u8 >"));
    }

    #[test]
    fn other_types_are_not_an_event() {
        for ty in [
            quote!(Msg),
            quote!(Rc<Msg>),
            quote!(&Arc<Msg>),
            quote!(::Arc<Msg>),
            quote!(triomphe::Arc<Msg>),
            quote!(std::rc::Arc<Msg>),
            quote!(Arc),
            quote!(Arc<Msg, Global>),
            quote!(Arc<'static>),
            quote!(<Msg as Trait>::Arc<Msg>),
        ] {
            assert_eq!(inner(ty.clone()), None, "{ty}");
        }
    }

    fn check(func: TokenStream) -> Result<(), String> {
        let func: HandlerFn = syn::parse2(func).expect("a fn");
        check_signature(&func.sig).map(|_| ()).map_err(|err| {
            err.into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
    }

    #[test]
    fn every_mistake_in_a_signature_is_reported_at_once() {
        let errors = check(quote! {
            const unsafe extern "C" fn on<T>(&self, a: impl Clone) where T: Copy {}
        })
        .expect_err("seven mistakes");
        for expected in [
            "`const`",
            "requires an `async fn`",
            "`unsafe`",
            "`extern`",
            "cannot be generic",
            "cannot take `self`",
            "`impl Trait`",
        ] {
            assert!(errors.contains(expected), "{expected} in {errors}");
        }
    }

    #[test]
    fn up_to_four_extractors_are_accepted() {
        check(quote! { async fn on(e: Arc<E>, a: A, b: B, c: C, d: D) {} }).expect("four");
        let five = check(quote! { async fn on(e: Arc<E>, a: A, b: B, c: C, d: D, f: F) {} });
        assert!(five.expect_err("five").contains("at most 4"));
    }
}
