//! Parsing `#[handler(...)]`'s options and the function it is put on.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Expr, Lit, LitInt, LitStr, Signature, Token, Visibility};

/// The option names, as keywords so that an unknown option reports
/// "expected `concurrency` or `name`".
mod kw {
    syn::custom_keyword!(concurrency);
    syn::custom_keyword!(name);
}

/// The options in `#[handler(concurrency = 8, name = "greeter")]`.
#[derive(Default)]
pub(crate) struct HandlerArgs {
    /// How many calls may overlap; `Handler::concurrency`'s default if unset.
    pub(crate) concurrency: Option<Concurrency>,
    /// The handler's name; the fn's path if unset.
    pub(crate) name: Option<LitStr>,
}

/// A checked `concurrency = N`.
pub(crate) struct Concurrency {
    /// At least 1.
    pub(crate) value: usize,
    /// The user's literal, for spans.
    pub(crate) lit: LitInt,
}

impl Parse for HandlerArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Self::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::concurrency) {
                let key = input.parse::<kw::concurrency>()?;
                if args.concurrency.is_some() {
                    return Err(syn::Error::new(key.span, "duplicate `concurrency` option"));
                }
                input.parse::<Token![=]>()?;
                args.concurrency = Some(parse_concurrency(input.parse()?)?);
            } else if lookahead.peek(kw::name) {
                let key = input.parse::<kw::name>()?;
                if args.name.is_some() {
                    return Err(syn::Error::new(key.span, "duplicate `name` option"));
                }
                input.parse::<Token![=]>()?;
                args.name = Some(parse_name(input.parse()?)?);
            } else {
                return Err(lookahead.error());
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

/// `concurrency` takes a positive integer literal.
fn parse_concurrency(value: Expr) -> syn::Result<Concurrency> {
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Int(lit), ..
    }) = value
    else {
        return Err(syn::Error::new_spanned(
            value,
            "`concurrency` takes a positive integer literal, like `concurrency = 8`",
        ));
    };
    if !matches!(lit.suffix(), "" | "usize") {
        return Err(syn::Error::new(
            lit.span(),
            "`concurrency` is a `usize`: drop the suffix",
        ));
    }
    match lit.base10_parse::<usize>()? {
        0 => Err(syn::Error::new(
            lit.span(),
            "`concurrency` must be at least 1: it is how many calls may run at once",
        )),
        value => Ok(Concurrency { value, lit }),
    }
}

/// `name` takes a non-empty string literal.
fn parse_name(value: Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) if lit.value().is_empty() => Err(syn::Error::new(
            lit.span(),
            "`name` cannot be empty: leave it out to use the fn's path",
        )),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            "`name` takes a string literal, like `name = \"greeter\"`",
        )),
    }
}

/// A function whose body is kept as raw tokens (tracing's `MaybeItemFn`):
/// the body goes through unchanged, so rustc reports its errors at the
/// user's own tokens.
pub(crate) struct HandlerFn {
    /// Outer attributes, docs included.
    pub(crate) attrs: Vec<Attribute>,
    /// The fn's visibility, given to the struct.
    pub(crate) vis: Visibility,
    /// Everything from `const`/`async` to the return type and where clause.
    pub(crate) sig: Signature,
    /// The `{ ... }` group.
    pub(crate) body: TokenStream,
}

impl Parse for HandlerFn {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let body = match input.parse::<TokenTree>() {
            Ok(TokenTree::Group(body)) if body.delimiter() == Delimiter::Brace => body,
            Ok(other) => return Err(syn::Error::new(other.span(), "expected the fn's body")),
            Err(err) => return Err(syn::Error::new(err.span(), "expected the fn's body")),
        };
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the fn"));
        }
        Ok(Self {
            attrs,
            vis,
            sig,
            body: TokenTree::Group(body).into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parse(tokens: TokenStream) -> syn::Result<HandlerArgs> {
        syn::parse2(tokens)
    }

    fn error(tokens: TokenStream) -> String {
        match parse(tokens) {
            Ok(_) => panic!("parsed"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn options_default_to_none() {
        let args = parse(quote!()).expect("empty options parse");
        assert!(args.concurrency.is_none());
        assert!(args.name.is_none());
    }

    #[test]
    fn options_parse_in_any_order_with_a_trailing_comma() {
        let args = parse(quote!(name = "greeter", concurrency = 8usize,)).expect("parses");
        assert_eq!(args.concurrency.map(|c| c.value), Some(8));
        assert_eq!(args.name.map(|n| n.value()).as_deref(), Some("greeter"));
    }

    #[test]
    fn bad_options_are_rejected_with_clear_messages() {
        assert_eq!(
            error(quote!(concurency = 4)),
            "expected `concurrency` or `name`"
        );
        assert_eq!(error(quote!(concurrency)), "expected `=`");
        assert!(error(quote!(concurrency = 0)).contains("at least 1"));
        assert!(error(quote!(concurrency = -1)).contains("positive integer literal"));
        assert!(error(quote!(concurrency = N)).contains("positive integer literal"));
        assert!(error(quote!(concurrency = 4u8)).contains("drop the suffix"));
        assert!(error(quote!(name = greeter)).contains("string literal"));
        assert!(error(quote!(name = "")).contains("cannot be empty"));
        assert_eq!(
            error(quote!(name = "a", name = "b")),
            "duplicate `name` option"
        );
        assert_eq!(error(quote!(concurrency = 1 name = "a")), "expected `,`");
    }

    #[test]
    fn a_fn_body_is_kept_as_tokens() {
        let func: HandlerFn = syn::parse2(quote! {
            /// Docs.
            pub async fn on_ping(ping: Arc<Ping>) { this is not rust }
        })
        .expect("the body is not parsed");
        assert_eq!(func.attrs.len(), 1);
        assert_eq!(func.sig.ident, "on_ping");
        assert_eq!(func.body.to_string(), "{ this is not rust }");
    }
}
