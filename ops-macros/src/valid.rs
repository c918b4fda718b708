//! Checking the arguments against each other and against the function, before anything is
//! generated. Every error points at the token to fix.

use std::collections::HashSet;

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, Ident, ItemFn, Lit, Pat};

use crate::attr::{Args, Keyed, ident_name};
use crate::ty::Shape;

/// The kinds `kind = ".."` accepts, with the `ObservationKind` variant each one names.
/// Kept in step with `ops_core::ObservationKind` (the macro cannot depend on ops-core).
pub(crate) const KINDS: &[(&str, &str)] = &[
    ("workflow", "Workflow"),
    ("message", "Message"),
    ("moderation", "Moderation"),
    ("suggested_question", "SuggestedQuestion"),
    ("dataset_retrieval", "DatasetRetrieval"),
    ("tool", "Tool"),
    ("generate_conversation_name", "GenerateConversationName"),
    ("prompt_generation", "PromptGeneration"),
    ("node_execution", "NodeExecution"),
    ("node", "NodeExecution"),
    ("draft_node_execution", "DraftNodeExecution"),
    ("conversation", "Conversation"),
    ("agent", "Agent"),
    ("span", "Span"),
    ("generation", "Generation"),
    ("llm", "Generation"),
];

/// Kinds that are model calls, which may carry `model`, `model_provider` and
/// `model_parameters`.
const MODEL_KINDS: &[&str] = &[
    "Generation",
    "SuggestedQuestion",
    "GenerateConversationName",
    "PromptGeneration",
];

const LEVELS: &[(&str, &str)] = &[
    ("DEBUG", "Debug"),
    ("DEFAULT", "Default"),
    ("WARNING", "Warning"),
    ("ERROR", "Error"),
];

/// A parameter to capture.
pub(crate) struct Param {
    /// The name it is recorded under.
    pub(crate) name: Ident,
    /// Its written type, when the parameter is a plain `name: Type`.
    pub(crate) ty: Option<syn::Type>,
}

/// What the checks established, for the expansion.
pub(crate) struct Plan {
    pub(crate) name: String,
    pub(crate) kind: Ident,
    pub(crate) level: Option<Ident>,
    pub(crate) params: Vec<Param>,
    pub(crate) capture_output: bool,
    pub(crate) generics: HashSet<String>,
    pub(crate) shape: Shape,
}

fn err<T>(span: Span, message: impl std::fmt::Display) -> syn::Result<T> {
    Err(syn::Error::new(span, message))
}

/// Checks `args` against `func`.
pub(crate) fn check(args: &Args, func: &ItemFn) -> syn::Result<Plan> {
    let sig = &func.sig;
    if let Some(c) = &sig.constness {
        return err(
            c.span,
            "#[traced] cannot trace a `const fn`: a const fn cannot record at run time; remove `const` or the attribute",
        );
    }
    if let Some(v) = &sig.variadic {
        return err(
            v.span(),
            "#[traced] cannot trace a variadic function; trace a wrapper instead",
        );
    }

    let kind = match &args.kind {
        None => Ident::new("Span", Span::call_site()),
        Some(Keyed { value, .. }) => {
            let wanted = value.value();
            match KINDS.iter().find(|(n, _)| *n == wanted) {
                Some((_, variant)) => Ident::new(variant, value.span()),
                None => {
                    let names: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
                    return err(
                        value.span(),
                        format!(
                            "unknown kind {wanted:?}; expected one of: {} (`llm` is `generation`, `node` is `node_execution`)",
                            names.join(", ")
                        ),
                    );
                }
            }
        }
    };

    let name = match &args.name {
        Some(Keyed { value, .. }) => {
            let name = value.value();
            if name.trim().is_empty() {
                return err(
                    value.span(),
                    "`name` is empty; give the observation a name, or remove `name` to use the function's",
                );
            }
            name
        }
        None => ident_name(&sig.ident),
    };

    let level = match &args.level {
        None => None,
        Some(Keyed { value, .. }) => {
            let wanted = value.value().to_ascii_uppercase();
            match LEVELS.iter().find(|(n, _)| *n == wanted) {
                Some((_, variant)) => Some(Ident::new(variant, value.span())),
                None => {
                    return err(
                        value.span(),
                        format!(
                            "unknown level {:?}; expected one of: DEBUG, DEFAULT, WARNING, ERROR",
                            value.value()
                        ),
                    );
                }
            }
        }
    };

    if !MODEL_KINDS.contains(&kind.to_string().as_str()) {
        for (key, arg) in [
            ("model", args.model.as_ref().map(|k| k.key)),
            (
                "model_provider",
                args.model_provider.as_ref().map(|k| k.key),
            ),
            (
                "model_parameters",
                args.model_parameters.as_ref().map(|k| k.key),
            ),
        ] {
            if let Some(span) = arg {
                return err(
                    span,
                    format!(
                        "`{key}` is recorded on model calls only; add `kind = \"generation\"` (or another model kind: suggested_question, generate_conversation_name, prompt_generation)"
                    ),
                );
            }
        }
    }

    for entries in [&args.metadata, &args.model_parameters]
        .into_iter()
        .flatten()
    {
        let mut seen = HashSet::new();
        for entry in &entries.value {
            if entry.key.is_empty() {
                return err(entry.key_span, "this key is empty; give it a name");
            }
            if !seen.insert(entry.key.clone()) {
                return err(
                    entry.key_span,
                    format!("the key `{}` is given more than once; keep one", entry.key),
                );
            }
        }
    }
    if let Some(tags) = &args.tags {
        let mut seen = HashSet::new();
        for tag in &tags.value {
            if tag.value().trim().is_empty() {
                return err(tag.span(), "this tag is empty; remove it");
            }
            if !seen.insert(tag.value()) {
                return err(tag.span(), "this tag is given more than once; keep one");
            }
        }
    }

    if let Some(Keyed { value, .. }) = &args.sample_rate
        && let Some(rate) = literal_number(value)
        && !(0.0..=1.0).contains(&rate)
    {
        return err(
            value.span(),
            "a sample rate is a number from 0.0 (record no trace) to 1.0 (record every trace)",
        );
    }

    let capture_input = args.capture_input.as_ref().is_none_or(|k| k.value.value);
    let capture_output = args.capture_output.as_ref().is_none_or(|k| k.value.value);

    if let (Some(all), Some(skip)) = (args.skip_all, &args.skip) {
        return err(
            skip.key,
            "`skip(..)` is redundant with `skip_all`, which skips every parameter; keep one",
        )
        .map_err(|mut e: syn::Error| {
            e.combine(syn::Error::new(all, "`skip_all` is here"));
            e
        });
    }
    if let (Some(off), Some(skip)) = (&args.capture_input, &args.skip)
        && !off.value.value
    {
        return err(
            skip.key,
            "`skip(..)` is redundant with `capture_input = false`, which captures no parameter; keep one",
        );
    }

    let mut all_params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(_) => {}
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(p) if p.subpat.is_none() => all_params.push(Param {
                    name: p.ident.clone(),
                    ty: Some((*pt.ty).clone()),
                }),
                Pat::Wild(_) => {}
                other => {
                    let mut names = Vec::new();
                    bindings(other, &mut names);
                    all_params.extend(names.into_iter().map(|name| Param { name, ty: None }));
                }
            },
        }
    }
    if let Some(skip) = &args.skip {
        let mut seen = HashSet::new();
        for name in &skip.value {
            if name == "self" {
                return err(
                    name.span(),
                    "`self` is never captured; remove it from `skip(..)`",
                );
            }
            if !seen.insert(name.to_string()) {
                return err(
                    name.span(),
                    format!("`{name}` is skipped more than once; keep one"),
                );
            }
            if !all_params.iter().any(|p| p.name == *name) {
                let known: Vec<String> = all_params.iter().map(|p| p.name.to_string()).collect();
                return err(
                    name.span(),
                    if known.is_empty() {
                        format!(
                            "no parameter named `{name}`: this function has no parameters to skip"
                        )
                    } else {
                        format!(
                            "no parameter named `{name}`; the parameters are: {}",
                            known.join(", ")
                        )
                    },
                );
            }
        }
    }
    // The parameter `parent = ..` names is the trace context, not an input: it is never
    // captured, so `parent = ctx` needs no `skip(ctx)`.
    let parent_param = args.parent.as_ref().and_then(|p| named_param(&p.value));
    let params = if !capture_input || args.skip_all.is_some() {
        Vec::new()
    } else {
        let skipped: HashSet<String> = args
            .skip
            .iter()
            .flat_map(|s| s.value.iter().map(ToString::to_string))
            .collect();
        all_params
            .into_iter()
            .filter(|p| !skipped.contains(&p.name.to_string()))
            .filter(|p| parent_param.as_ref() != Some(&ident_name(&p.name)))
            .collect()
    };

    let shape = crate::ty::shape(sig.asyncness.is_some(), &sig.output);
    if let Some(reduce) = &args.reduce {
        if !shape.is_stream() {
            return err(
                reduce.key,
                "`reduce` is for functions that return a stream (`impl Stream<Item = ..>`, `Pin<Box<dyn Stream ..>>` or `BoxStream`); remove it",
            );
        }
        if !capture_output {
            return err(
                reduce.key,
                "`reduce` makes the stream's output, but `capture_output = false` records none; keep one",
            );
        }
    }

    let generics = sig
        .generics
        .type_params()
        .map(|p| p.ident.to_string())
        .collect();

    Ok(Plan {
        name,
        kind,
        level,
        params,
        capture_output,
        generics,
        shape,
    })
}

/// The variable `expr` is, seen through `&`, `*`, parentheses and `.clone()`: `ctx`, `&ctx`,
/// `ctx.clone()`, `(*ctx)`.
fn named_param(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident().map(ident_name),
        Expr::Reference(r) => named_param(&r.expr),
        Expr::Paren(p) => named_param(&p.expr),
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Deref(_)) => named_param(&u.expr),
        Expr::MethodCall(m) if m.method == "clone" && m.args.is_empty() => named_param(&m.receiver),
        _ => None,
    }
}

/// A literal number (optionally negative), for checks that can be made at compile time.
fn literal_number(expr: &Expr) -> Option<f64> {
    match expr {
        Expr::Lit(l) => match &l.lit {
            Lit::Float(f) => f.base10_parse().ok(),
            Lit::Int(i) => i.base10_parse().ok(),
            _ => None,
        },
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => literal_number(&u.expr).map(|n| -n),
        Expr::Paren(p) => literal_number(&p.expr),
        _ => None,
    }
}

/// The names a destructuring pattern binds.
fn bindings(pat: &Pat, out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(p) => {
            out.push(p.ident.clone());
            if let Some((_, sub)) = &p.subpat {
                bindings(sub, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter().for_each(|p| bindings(p, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| bindings(&f.pat, out)),
        Pat::Slice(s) => s.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Reference(r) => bindings(&r.pat, out),
        Pat::Paren(p) => bindings(&p.pat, out),
        Pat::Type(t) => bindings(&t.pat, out),
        _ => {}
    }
}
