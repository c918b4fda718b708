//! Parsing `#[traced(...)]`'s arguments. Each key may appear once; an unknown key, a duplicated
//! key or a value of the wrong shape is an error on that token.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, LitBool, LitStr, Path, Token};

mod kw {
    syn::custom_keyword!(kind);
    syn::custom_keyword!(name);
    syn::custom_keyword!(skip);
    syn::custom_keyword!(skip_all);
    syn::custom_keyword!(capture_input);
    syn::custom_keyword!(capture_output);
    syn::custom_keyword!(metadata);
    syn::custom_keyword!(tags);
    syn::custom_keyword!(user_id);
    syn::custom_keyword!(session_id);
    syn::custom_keyword!(app_id);
    syn::custom_keyword!(tenant_id);
    syn::custom_keyword!(environment);
    syn::custom_keyword!(release);
    syn::custom_keyword!(version);
    syn::custom_keyword!(model);
    syn::custom_keyword!(model_provider);
    syn::custom_keyword!(model_parameters);
    syn::custom_keyword!(level);
    syn::custom_keyword!(parent);
    syn::custom_keyword!(sample_rate);
    syn::custom_keyword!(reduce);
}

/// Every argument, in the order the documentation gives them.
const ARGUMENTS: &[&str] = &[
    "kind",
    "name",
    "crate",
    "skip",
    "skip_all",
    "capture_input",
    "capture_output",
    "metadata",
    "tags",
    "user_id",
    "session_id",
    "app_id",
    "tenant_id",
    "environment",
    "release",
    "version",
    "model",
    "model_provider",
    "model_parameters",
    "level",
    "parent",
    "sample_rate",
    "reduce",
];

/// A value with the span of the key that introduced it.
pub(crate) struct Keyed<T> {
    pub(crate) key: Span,
    pub(crate) value: T,
}

/// A `key = expr` entry of `metadata(..)` or `model_parameters(..)`; the key is an identifier
/// or a string.
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_span: Span,
    pub(crate) value: Expr,
}

impl Parse for Entry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        let (key, key_span) = if lookahead.peek(LitStr) {
            let lit: LitStr = input.parse()?;
            (lit.value(), lit.span())
        } else if lookahead.peek(Ident::peek_any) {
            let ident = input.call(Ident::parse_any)?;
            (ident_name(&ident), ident.span())
        } else {
            return Err(lookahead.error());
        };
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(Entry {
            key,
            key_span,
            value,
        })
    }
}

/// An identifier's name without a leading `r#`.
pub(crate) fn ident_name(ident: &Ident) -> String {
    ident.unraw().to_string()
}

/// The parsed arguments, before they are checked.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) kind: Option<Keyed<LitStr>>,
    pub(crate) name: Option<Keyed<LitStr>>,
    pub(crate) krate: Option<Keyed<Path>>,
    pub(crate) skip: Option<Keyed<Vec<Ident>>>,
    pub(crate) skip_all: Option<Span>,
    pub(crate) capture_input: Option<Keyed<LitBool>>,
    pub(crate) capture_output: Option<Keyed<LitBool>>,
    pub(crate) metadata: Option<Keyed<Vec<Entry>>>,
    pub(crate) tags: Option<Keyed<Vec<LitStr>>>,
    pub(crate) user_id: Option<Keyed<Expr>>,
    pub(crate) session_id: Option<Keyed<Expr>>,
    pub(crate) app_id: Option<Keyed<Expr>>,
    pub(crate) tenant_id: Option<Keyed<Expr>>,
    pub(crate) environment: Option<Keyed<Expr>>,
    pub(crate) release: Option<Keyed<Expr>>,
    pub(crate) version: Option<Keyed<Expr>>,
    pub(crate) model: Option<Keyed<Expr>>,
    pub(crate) model_provider: Option<Keyed<Expr>>,
    pub(crate) model_parameters: Option<Keyed<Vec<Entry>>>,
    pub(crate) level: Option<Keyed<LitStr>>,
    pub(crate) parent: Option<Keyed<Expr>>,
    pub(crate) sample_rate: Option<Keyed<Expr>>,
    pub(crate) reduce: Option<Keyed<Expr>>,
}

fn set<T>(slot: &mut Option<Keyed<T>>, key: Span, name: &str, value: T) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            key,
            format!("`{name}` is given more than once; keep one"),
        ));
    }
    *slot = Some(Keyed { key, value });
    Ok(())
}

fn parenthesized<T: Parse>(input: ParseStream<'_>) -> syn::Result<Vec<T>> {
    let content;
    syn::parenthesized!(content in input);
    Ok(Punctuated::<T, Token![,]>::parse_terminated(&content)?
        .into_iter()
        .collect())
}

/// A string literal for `key`, or an error on the token that is not one showing how to write
/// it (`kind = tool` gets ``expected a string literal, e.g. `kind = "tool"` ``).
fn lit_str(input: ParseStream<'_>, key: &str, example: &str) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        return input.parse();
    }
    let message = format!("expected a string literal, e.g. `{key} = \"{example}\"`");
    Err(match input.fork().parse::<proc_macro2::TokenTree>() {
        Ok(token) => syn::Error::new(token.span(), message),
        Err(_) => input.error(message),
    })
}

/// A tag of `tags(..)`: a string literal, or an error showing how to write one.
struct Tag(LitStr);

impl Parse for Tag {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(LitStr) {
            return input.parse().map(Tag);
        }
        let token: proc_macro2::TokenTree = input.parse()?;
        Err(syn::Error::new(
            token.span(),
            format!(
                "expected a string literal, e.g. `tags(\"{}\")`",
                token.to_string().trim_matches('"')
            ),
        ))
    }
}

/// `key = "string"` for a key whose value is a string literal.
macro_rules! assign_str {
    ($input:ident, $args:ident . $field:ident, $kw:ident, $example:literal) => {{
        let key = $input.parse::<kw::$kw>()?.span;
        $input.parse::<Token![=]>()?;
        let value = lit_str($input, stringify!($kw), $example)?;
        set(&mut $args.$field, key, stringify!($kw), value)?;
    }};
}

/// `key = value` for a key whose value is parsed by `T`'s `Parse`.
macro_rules! assign {
    ($input:ident, $args:ident . $field:ident, $kw:ident) => {{
        let key = $input.parse::<kw::$kw>()?.span;
        $input.parse::<Token![=]>()?;
        let value = $input.parse()?;
        set(&mut $args.$field, key, stringify!($kw), value)?;
    }};
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::kind) {
                assign_str!(input, args.kind, kind, "tool");
            } else if lookahead.peek(kw::name) {
                assign_str!(input, args.name, name, "answer");
            } else if lookahead.peek(Token![crate]) {
                let key = input.parse::<Token![crate]>()?.span;
                input.parse::<Token![=]>()?;
                if let Ok(lit) = input.fork().parse::<LitStr>() {
                    return Err(syn::Error::new(
                        lit.span(),
                        format!(
                            "`crate` takes a path, not a string: write `crate = {}`",
                            lit.value()
                        ),
                    ));
                }
                let path = input.call(Path::parse_mod_style)?;
                set(&mut args.krate, key, "crate", path)?;
            } else if lookahead.peek(kw::skip_all) {
                let key = input.parse::<kw::skip_all>()?.span;
                if args.skip_all.is_some() {
                    return Err(syn::Error::new(
                        key,
                        "`skip_all` is given more than once; keep one",
                    ));
                }
                args.skip_all = Some(key);
            } else if lookahead.peek(kw::skip) {
                let key = input.parse::<kw::skip>()?.span;
                let names = parenthesized::<SkipName>(input)?
                    .into_iter()
                    .map(|n| n.0)
                    .collect();
                set(&mut args.skip, key, "skip", names)?;
            } else if lookahead.peek(kw::capture_input) {
                assign!(input, args.capture_input, capture_input);
            } else if lookahead.peek(kw::capture_output) {
                assign!(input, args.capture_output, capture_output);
            } else if lookahead.peek(kw::metadata) {
                let key = input.parse::<kw::metadata>()?.span;
                let entries = parenthesized::<Entry>(input)?;
                set(&mut args.metadata, key, "metadata", entries)?;
            } else if lookahead.peek(kw::tags) {
                let key = input.parse::<kw::tags>()?.span;
                if input.peek(Token![=]) {
                    let eq = input.parse::<Token![=]>()?;
                    return Err(syn::Error::new(
                        eq.span,
                        "tags are listed in parentheses: write `tags(\"a\", \"b\")`, not `tags = [..]`",
                    ));
                }
                let tags = parenthesized::<Tag>(input)?
                    .into_iter()
                    .map(|t| t.0)
                    .collect();
                set(&mut args.tags, key, "tags", tags)?;
            } else if lookahead.peek(kw::user_id) {
                assign!(input, args.user_id, user_id);
            } else if lookahead.peek(kw::session_id) {
                assign!(input, args.session_id, session_id);
            } else if lookahead.peek(kw::app_id) {
                assign!(input, args.app_id, app_id);
            } else if lookahead.peek(kw::tenant_id) {
                assign!(input, args.tenant_id, tenant_id);
            } else if lookahead.peek(kw::environment) {
                assign!(input, args.environment, environment);
            } else if lookahead.peek(kw::release) {
                assign!(input, args.release, release);
            } else if lookahead.peek(kw::version) {
                assign!(input, args.version, version);
            } else if lookahead.peek(kw::model_provider) {
                assign!(input, args.model_provider, model_provider);
            } else if lookahead.peek(kw::model_parameters) {
                let key = input.parse::<kw::model_parameters>()?.span;
                let entries = parenthesized::<Entry>(input)?;
                set(&mut args.model_parameters, key, "model_parameters", entries)?;
            } else if lookahead.peek(kw::model) {
                assign!(input, args.model, model);
            } else if lookahead.peek(kw::level) {
                assign_str!(input, args.level, level, "WARNING");
            } else if lookahead.peek(kw::parent) {
                assign!(input, args.parent, parent);
            } else if lookahead.peek(kw::sample_rate) {
                assign!(input, args.sample_rate, sample_rate);
            } else if lookahead.peek(kw::reduce) {
                assign!(input, args.reduce, reduce);
            } else if input.peek(Ident::peek_any) {
                let unknown = input.call(Ident::parse_any)?;
                return Err(syn::Error::new(
                    unknown.span(),
                    format!(
                        "unknown argument `{unknown}`; the arguments are: {}",
                        ARGUMENTS.join(", ")
                    ),
                ));
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

/// A name in `skip(..)`: any identifier, `self` included (so it can be reported).
struct SkipName(Ident);

impl Parse for SkipName {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        input.call(Ident::parse_any).map(SkipName)
    }
}
