//! What the written types of a function say: how each parameter and the return value can be
//! captured, and whether the function returns a future or a stream.

use std::collections::HashSet;

use syn::visit::Visit;
use syn::{
    GenericArgument, PathArguments, ReturnType, Type, TypeImplTrait, TypeParamBound, TypePath,
};

/// How a value is captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capture {
    /// The type, after `derefs` leading references, is owned and `'static` as written: try a
    /// clone serialized on the worker, falling back to serializing now.
    Later { derefs: usize },
    /// Serialize now (the type borrows, is generic, or is not written).
    Now,
}

/// Classifies a written type. `generics` are the function's type parameters.
pub(crate) fn classify(ty: &Type, generics: &HashSet<String>) -> Capture {
    let mut derefs = 0;
    let mut ty = ty;
    loop {
        match ty {
            Type::Reference(r) => {
                derefs += 1;
                ty = &r.elem;
            }
            Type::Paren(p) => ty = &p.elem,
            Type::Group(g) => ty = &g.elem,
            _ => break,
        }
    }
    let mut check = StaticCheck { generics, ok: true };
    check.visit_type(ty);
    if check.ok {
        Capture::Later { derefs }
    } else {
        Capture::Now
    }
}

/// Whether a type is certainly owned and `'static`: no lifetimes, references, generic
/// parameters (including ones of an enclosing `impl`, which look like `T`), `Self`, `impl`
/// or trait objects, inferred or macro types.
struct StaticCheck<'a> {
    generics: &'a HashSet<String>,
    ok: bool,
}

impl<'ast> Visit<'ast> for StaticCheck<'_> {
    fn visit_type(&mut self, ty: &'ast Type) {
        match ty {
            Type::Path(_) | Type::Array(_) | Type::Slice(_) | Type::Tuple(_) | Type::Paren(_) => {
                syn::visit::visit_type(self, ty)
            }
            Type::Group(g) => self.visit_type(&g.elem),
            _ => self.ok = false,
        }
    }

    fn visit_lifetime(&mut self, _: &'ast syn::Lifetime) {
        self.ok = false;
    }

    fn visit_type_path(&mut self, p: &'ast TypePath) {
        if p.qself.is_some() {
            self.ok = false;
            return;
        }
        if let Some(first) = p.path.segments.first() {
            let name = first.ident.to_string();
            let generic_looking = p.path.segments.len() == 1
                && first.arguments.is_none()
                && name.len() <= 2
                && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if name == "Self" || self.generics.contains(&name) || generic_looking {
                self.ok = false;
                return;
            }
        }
        syn::visit::visit_type_path(self, p);
    }

    fn visit_expr(&mut self, _: &'ast syn::Expr) {
        // Array lengths and const arguments: values, not types.
    }
}

/// The `Ok` type of a `Result`-like type (`Result<T, E>`, `io::Result<T>`), else the type.
pub(crate) fn ok_type(ty: &Type) -> &Type {
    if let Type::Path(p) = ty
        && p.qself.is_none()
        && let Some(last) = p.path.segments.last()
        && last.ident == "Result"
        && let PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(GenericArgument::Type(ok)) = args.args.first()
    {
        return ok;
    }
    ty
}

/// Whether a type is `()`.
pub(crate) fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

/// Whether a type has `impl Trait` anywhere (it cannot be written in a closure's types).
pub(crate) fn has_impl_trait(ty: &Type) -> bool {
    struct Find(bool);
    impl<'ast> Visit<'ast> for Find {
        fn visit_type_impl_trait(&mut self, _: &'ast TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut find = Find(false);
    find.visit_type(ty);
    find.0
}

/// What a function returns, as far as tracing is concerned.
pub(crate) enum Shape {
    /// A value, returned when the body returns.
    Value(Option<Type>),
    /// An `async fn`: the output is its return type.
    Async(Option<Type>),
    /// `impl Future<Output = T>`: the observation ends when the future completes.
    ImplFuture(Option<Type>),
    /// `Pin<Box<dyn Future<Output = T> ..>>` or `BoxFuture<'_, T>` (what `#[async_trait]`
    /// produces): as `ImplFuture`, boxed again.
    BoxFuture(Option<Type>),
    /// `impl Stream<Item = T>`: the observation ends when the stream ends.
    ImplStream(Option<Type>),
    /// `Pin<Box<dyn Stream ..>>` or `BoxStream<'_, T>`.
    BoxStream(Option<Type>),
}

impl Shape {
    pub(crate) fn is_stream(&self) -> bool {
        matches!(self, Shape::ImplStream(_) | Shape::BoxStream(_))
    }
}

/// The shape of a function with this signature.
pub(crate) fn shape(asyncness: bool, output: &ReturnType) -> Shape {
    let ty = match output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some(strip(ty)),
    };
    if asyncness {
        return Shape::Async(Some(ty.cloned().unwrap_or_else(unit)));
    }
    let Some(ty) = ty else {
        return Shape::Value(None);
    };
    if let Type::ImplTrait(t) = ty {
        return match trait_of(t.bounds.iter()) {
            Some(("Future", output)) => Shape::ImplFuture(output),
            Some(("Stream", item)) => Shape::ImplStream(item),
            _ => Shape::Value(Some(ty.clone())),
        };
    }
    if let Some(inner) = boxed_trait_object(ty) {
        return match inner {
            ("Future", output) => Shape::BoxFuture(output),
            ("Stream", item) => Shape::BoxStream(item),
            _ => Shape::Value(Some(ty.clone())),
        };
    }
    Shape::Value(Some(ty.clone()))
}

fn unit() -> Type {
    syn::parse_quote!(())
}

fn strip(ty: &Type) -> &Type {
    match ty {
        Type::Paren(p) => strip(&p.elem),
        Type::Group(g) => strip(&g.elem),
        _ => ty,
    }
}

/// The first bound named `Future` or `Stream`, with its `Output = T` or `Item = T` type.
fn trait_of<'a>(
    bounds: impl Iterator<Item = &'a TypeParamBound>,
) -> Option<(&'static str, Option<Type>)> {
    for bound in bounds {
        let TypeParamBound::Trait(t) = bound else {
            continue;
        };
        let Some(last) = t.path.segments.last() else {
            continue;
        };
        let which = if last.ident == "Future" {
            "Future"
        } else if last.ident == "Stream" {
            "Stream"
        } else {
            continue;
        };
        let assoc = if which == "Future" { "Output" } else { "Item" };
        let ty = match &last.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                GenericArgument::AssocType(b) if b.ident == assoc => Some(b.ty.clone()),
                _ => None,
            }),
            _ => None,
        };
        return Some((which, ty));
    }
    None
}

/// `Pin<Box<dyn Future<..> ..>>`, `BoxFuture<'_, T>` and the stream equivalents.
fn boxed_trait_object(ty: &Type) -> Option<(&'static str, Option<Type>)> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    let args = match &last.arguments {
        PathArguments::AngleBracketed(args) => args,
        _ => return None,
    };
    let name = last.ident.to_string();
    match name.as_str() {
        "BoxFuture" | "LocalBoxFuture" | "BoxStream" | "LocalBoxStream" => {
            let item = args.args.iter().find_map(|a| match a {
                GenericArgument::Type(t) => Some(t.clone()),
                _ => None,
            });
            Some(if name.ends_with("Future") {
                ("Future", item)
            } else {
                ("Stream", item)
            })
        }
        "Pin" => {
            let Some(GenericArgument::Type(Type::Path(boxed))) = args.args.first() else {
                return None;
            };
            let boxed = boxed.path.segments.last()?;
            if boxed.ident != "Box" {
                return None;
            }
            let PathArguments::AngleBracketed(inner) = &boxed.arguments else {
                return None;
            };
            let Some(GenericArgument::Type(Type::TraitObject(object))) = inner.args.first() else {
                return None;
            };
            trait_of(object.bounds.iter())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn class(ty: Type) -> Capture {
        let generics = ["G".to_owned(), "Item".to_owned()].into_iter().collect();
        classify(&ty, &generics)
    }

    #[test]
    fn owned_static_types_are_captured_later() {
        assert_eq!(class(parse_quote!(String)), Capture::Later { derefs: 0 });
        assert_eq!(
            class(parse_quote!(Vec<Message>)),
            Capture::Later { derefs: 0 }
        );
        assert_eq!(class(parse_quote!(&str)), Capture::Later { derefs: 1 });
        assert_eq!(class(parse_quote!(&'a [u8])), Capture::Later { derefs: 1 });
        assert_eq!(class(parse_quote!(&mut &Req)), Capture::Later { derefs: 2 });
        assert_eq!(
            class(parse_quote!(std::collections::HashMap<String, (u32, [u8; 4])>)),
            Capture::Later { derefs: 0 }
        );
    }

    #[test]
    fn borrowing_or_generic_types_are_captured_now() {
        for ty in [
            parse_quote!(Option<&str>),
            parse_quote!(Cow<'a, str>),
            parse_quote!(Vec<G>),
            parse_quote!(&Item),
            parse_quote!(T),
            parse_quote!(Self),
            parse_quote!(impl Serialize),
            parse_quote!(Box<dyn Trait>),
            parse_quote!(<T as Tr>::Out),
            parse_quote!(Wrapper<'_>),
        ] {
            assert_eq!(class(ty), Capture::Now);
        }
    }

    #[test]
    fn shapes() {
        let s = |o: ReturnType| shape(false, &o);
        assert!(matches!(
            s(parse_quote!(-> impl Future<Output = u8> + Send)),
            Shape::ImplFuture(Some(_))
        ));
        assert!(matches!(
            s(parse_quote!(-> impl futures::Stream<Item = String>)),
            Shape::ImplStream(Some(_))
        ));
        assert!(matches!(
            s(
                parse_quote!(-> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = u8> + Send + 'async_trait>>)
            ),
            Shape::BoxFuture(Some(_))
        ));
        assert!(matches!(
            s(parse_quote!(-> BoxStream<'static, u8>)),
            Shape::BoxStream(Some(_))
        ));
        assert!(matches!(
            s(parse_quote!(-> Result<u8, E>)),
            Shape::Value(Some(_))
        ));
        assert!(matches!(
            s(parse_quote!(-> impl Iterator<Item = u8>)),
            Shape::Value(Some(_))
        ));
        assert!(matches!(
            shape(true, &ReturnType::Default),
            Shape::Async(Some(_))
        ));
    }

    #[test]
    fn ok_types() {
        let text = |t: &Type| quote::ToTokens::to_token_stream(t).to_string();
        let ty: Type = parse_quote!(Result<Vec<u8>, io::Error>);
        assert_eq!(text(ok_type(&ty)), "Vec < u8 >");
        let ty: Type = parse_quote!(anyhow::Result<()>);
        assert!(is_unit(ok_type(&ty)));
        let ty: Type = parse_quote!(Outcome);
        assert_eq!(text(ok_type(&ty)), "Outcome");
    }
}
