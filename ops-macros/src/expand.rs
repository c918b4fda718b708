//! Generating the traced function. Every path goes through `<crate>::__private`.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, Item, ItemFn, TraitItemFn, Type};

use crate::attr::{Args, ident_name};
use crate::ty::{self, Capture, Shape};
use crate::valid::{self, Plan};

/// The macro: parse, check, expand. On an error, the error and the item as it was.
pub(crate) fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_traced(args, item.clone()) {
        Ok(tokens) => tokens,
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #item)
        }
    }
}

fn try_traced(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args: Args = syn::parse2(args)?;
    let func = parse_function(item.clone())?;
    let plan = valid::check(&args, &func)?;
    if cfg!(feature = "disabled") {
        return Ok(item);
    }
    Ok(expand(&args, &plan, func))
}

/// The function, or an error saying what the item is instead.
fn parse_function(item: TokenStream) -> syn::Result<ItemFn> {
    if let Ok(func) = syn::parse2::<ItemFn>(item.clone()) {
        return Ok(func);
    }
    if let Ok(decl) = syn::parse2::<TraitItemFn>(item.clone())
        && decl.default.is_none()
    {
        return Err(syn::Error::new(
            decl.sig.ident.span(),
            "#[traced] needs a function body to trace; put it on the implementations of this trait method (or give the method a default body)",
        ));
    }
    match syn::parse2::<Item>(item.clone()) {
        Ok(other) => {
            let what = match &other {
                Item::Struct(_) => "a struct",
                Item::Enum(_) => "an enum",
                Item::Impl(_) => "an impl block (put it on the methods inside)",
                Item::Trait(_) => "a trait (put it on the method implementations)",
                Item::Mod(_) => "a module",
                Item::Const(_) => "a const",
                Item::Static(_) => "a static",
                Item::Type(_) => "a type alias",
                Item::Use(_) => "a use declaration",
                Item::Macro(_) => "a macro invocation",
                _ => "this item",
            };
            let span = first_token_span(&other);
            Err(syn::Error::new(
                span,
                format!("#[traced] can only be applied to functions, not to {what}"),
            ))
        }
        Err(e) => Err(e),
    }
}

/// `tokens` with every span set to `span`, so an error about the expression (a type that
/// cannot be serialized) points at the user's parameter or return type, not at the attribute.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(g) => {
                let mut group = Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                TokenTree::Group(group)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

fn first_token_span(item: &Item) -> Span {
    item.to_token_stream()
        .into_iter()
        .find(|t| !matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
        .map_or_else(Span::call_site, |t| t.span())
}

fn expand(args: &Args, plan: &Plan, func: ItemFn) -> TokenStream {
    let krate = args
        .krate
        .as_ref()
        .map_or_else(|| quote!(::ops_core), |k| k.value.to_token_stream());
    let pv = quote!(#krate::__private);
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;

    let name = &plan.name;
    let kind = &plan.kind;
    let parent = match args.parent.as_ref().map(|p| &p.value) {
        None => quote!(::core::option::Option::None),
        Some(Expr::Path(p)) if p.path.is_ident("None") => {
            quote!(::core::option::Option::Some(#pv::ObservationContext::root()))
        }
        Some(expr) => quote_spanned!(expr.span()=>
            ::core::option::Option::Some(#pv::IntoParent::into_parent(&(#expr)))
        ),
    };
    let rate = match args.sample_rate.as_ref().map(|r| &r.value) {
        None => quote!(::core::option::Option::None),
        Some(expr) => quote_spanned!(expr.span()=>
            ::core::option::Option::Some(::core::convert::Into::<f64>::into(#expr))
        ),
    };

    let captures = captures(args, plan, &pv);
    let body = body(args, plan, &pv, &block, &sig.output);

    quote! {
        #(#attrs)*
        #vis #sig {
            static __OPS_SITE: #pv::Site = #pv::Site::new(#name, #pv::ObservationKind::#kind);
            let __ops_span = if #pv::is_enabled() {
                let mut __ops_span = #pv::start(&__OPS_SITE, #parent, #rate);
                #pv::capture(&mut __ops_span, |__ops_s: &mut #pv::ActiveSpan| {
                    #captures
                });
                __ops_span
            } else {
                ::core::option::Option::None
            };
            #body
        }
    }
}

/// The statements that record inputs and the arguments given to the macro. They run before
/// the body, which may move the parameters.
fn captures(args: &Args, plan: &Plan, pv: &TokenStream) -> TokenStream {
    let mut out = TokenStream::new();
    out.extend(quote! {
        #[allow(unused_imports)]
        use #pv::CaptureLater as _;
    });
    if let Some(level) = &plan.level {
        out.extend(quote!(__ops_s.level(#pv::Level::#level);));
    }
    for param in &plan.params {
        let ident = &param.name;
        let key = ident_name(ident);
        let span = ident.span();
        let class = param
            .ty
            .as_ref()
            .map_or(Capture::Now, |t| ty::classify(t, &plan.generics));
        let capture = match class {
            Capture::Later { derefs } => {
                let stars = (0..derefs).map(|_| quote!(*));
                quote!((&&#pv::Cap::<_, #ident>::new(&#(#stars)* #ident)).__ops_capture())
            }
            Capture::Now => quote!(#pv::Cap::<_, #ident>::new(&#ident).__ops_capture()),
        };
        let capture = respan(capture, span);
        // The marker type is named after the parameter so a type that cannot be serialized
        // is reported by name; it lives in a block of its own to shadow nothing else.
        out.extend(quote_spanned! {span=>
            {
                #[allow(non_camel_case_types, dead_code)]
                struct #ident {}
                __ops_s.input(#key, #capture);
            }
        });
    }
    if let Some(tags) = &args.tags {
        let tags = &tags.value;
        out.extend(quote!(__ops_s.tags(&[#(#tags),*]);));
    }
    for (method, arg) in [
        ("user_id", &args.user_id),
        ("session_id", &args.session_id),
        ("app_id", &args.app_id),
        ("tenant_id", &args.tenant_id),
        ("environment", &args.environment),
        ("release", &args.release),
        ("version", &args.version),
        ("model", &args.model),
        ("model_provider", &args.model_provider),
    ] {
        if let Some(arg) = arg {
            out.extend(setter(method, None, &arg.value));
        }
    }
    for (method, entries) in [
        ("metadata", &args.metadata),
        ("model_parameter", &args.model_parameters),
    ] {
        if let Some(entries) = entries {
            for entry in &entries.value {
                out.extend(setter(method, Some(&entry.key), &entry.value));
            }
        }
    }
    out
}

/// `__ops_s.method([key,] &(expr));` with every token but the user's expression spanned at the
/// expression, so a value of the wrong type is reported on it.
fn setter(method: &str, key: Option<&String>, expr: &Expr) -> TokenStream {
    let span = expr.span();
    let method = syn::Ident::new(method, span);
    let mut value = Group::new(Delimiter::Parenthesis, expr.to_token_stream());
    value.set_span(span);
    let key = key.map(|k| quote!(#k,));
    // Respan only the tokens generated here: the expression keeps its own spans.
    let prefix = respan(quote!(#key &), span);
    let mut args = Group::new(Delimiter::Parenthesis, quote!(#prefix #value));
    args.set_span(span);
    let head = respan(quote!(__ops_s.#method), span);
    let semi = respan(quote!(;), span);
    quote!(#head #args #semi)
}

/// The output recorder: splits a `Result` (an `Err` marks the observation as failed) and
/// captures the output.
fn recorder(plan: &Plan, pv: &TokenStream, output: Option<&Type>) -> TokenStream {
    let Some(output) = output else {
        return quote!(|_, _: &mut #pv::ActiveSpan| {});
    };
    if ty::has_impl_trait(output) || matches!(output, Type::Never(_)) {
        return quote!(|_, _: &mut #pv::ActiveSpan| {});
    }
    let ok = ty::ok_type(output);
    let ok_span = ok.span();
    let capture_ok = if !plan.capture_output || ty::is_unit(ok) {
        quote!(let _ = __ops_v;)
    } else {
        match ty::classify(ok, &plan.generics) {
            Capture::Later { derefs } => {
                let stars = (0..derefs).map(|_| quote!(*));
                quote!(__ops_rec.output((&&#pv::OutCap::new(#(#stars)* __ops_v)).__ops_capture_output());)
            }
            Capture::Now => {
                quote!(__ops_rec.output(#pv::OutCap::new(__ops_v).__ops_capture_output());)
            }
        }
    };
    let capture_ok = respan(capture_ok, ok_span);
    let span = output.span();
    quote_spanned! {span=>
        |__ops_out: &#output, __ops_rec: &mut #pv::ActiveSpan| {
            #[allow(unused_imports)]
            use #pv::{CaptureOutputLater as _, ErrorDebug as _, ErrorDisplay as _, ErrorSource as _, SplitResult as _};
            match (&&#pv::Out::new(__ops_out)).__ops_split() {
                #pv::Split::Ok(__ops_v) => { #capture_ok }
                #pv::Split::Err(__ops_e) => {
                    __ops_rec.error((&&&&#pv::ErrRef::new(__ops_e)).__ops_error());
                }
            }
        }
    }
}

/// `-> Type` for the closure that runs the body, so its returns coerce to the function's
/// return type as they would in the function (`&String` to `&str`, a box to `dyn Trait`).
fn closure_return(output: &syn::ReturnType) -> TokenStream {
    match output {
        syn::ReturnType::Type(arrow, ty) if !ty::has_impl_trait(ty) => quote!(#arrow #ty),
        _ => TokenStream::new(),
    }
}

fn body(
    args: &Args,
    plan: &Plan,
    pv: &TokenStream,
    block: &syn::Block,
    sig_output: &syn::ReturnType,
) -> TokenStream {
    let span = block.span();
    match &plan.shape {
        Shape::Value(output) => {
            let rec = recorder(plan, pv, output.as_ref());
            let ret = closure_return(sig_output);
            quote_spanned! {span=>
                #pv::call(__ops_span, move || #ret #block, #rec)
            }
        }
        Shape::Async(output) => {
            let output = output.as_ref().expect("async fns have an output type");
            let rec = recorder(plan, pv, Some(output));
            // Spanned at the call site: lints about the wrapper (an async block yielding a
            // future when the function returns one) are not the user's.
            let inner = if ty::has_impl_trait(output) {
                quote!(async move #block)
            } else {
                quote!(async move {
                    let __ops_ret: #output = #block;
                    __ops_ret
                })
            };
            quote_spanned! {span=>
                #pv::traced_future(
                    __ops_span,
                    move || {
                        #[allow(clippy::async_yields_async)]
                        let __ops_body = #inner;
                        __ops_body
                    },
                    #rec,
                )
                .await
            }
        }
        Shape::ImplFuture(output) => {
            let rec = recorder(plan, pv, output.as_ref());
            quote_spanned! {span=>
                #pv::traced_future(__ops_span, move || #block, #rec)
            }
        }
        Shape::BoxFuture(output) => {
            let rec = recorder(plan, pv, output.as_ref());
            let ret = closure_return(sig_output);
            quote_spanned! {span=>
                #pv::box_pin(#pv::traced_future(__ops_span, move || #ret #block, #rec))
            }
        }
        Shape::ImplStream(item) | Shape::BoxStream(item) => {
            let reducer = if !plan.capture_output {
                quote!(#pv::Ignore)
            } else if let Some(reduce) = &args.reduce {
                reduce.value.to_token_stream()
            } else {
                // Named by the item type, so items that cannot be serialized are reported there.
                match item.as_ref().filter(|t| !ty::has_impl_trait(t)) {
                    Some(item) => respan(quote!(#pv::collect::<#item>()), item.span()),
                    None => quote!(#pv::collect()),
                }
            };
            let ret = if matches!(plan.shape, Shape::BoxStream(_)) {
                closure_return(sig_output)
            } else {
                TokenStream::new()
            };
            let stream = quote_spanned! {span=>
                #pv::traced_stream(__ops_span, move || #ret #block, #reducer)
            };
            if matches!(plan.shape, Shape::BoxStream(_)) {
                quote_spanned!(span=> #pv::box_pin(#stream))
            } else {
                stream
            }
        }
    }
}
