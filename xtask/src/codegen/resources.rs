//! Resource accessors of the `flagwire` Schematic clients: one borrowed handle per tag
//! (`client.companies()`), one method per operation (`.upsert_company(...)`), and a
//! `_with` twin taking per-request options.
//!
//! One template renders both clients ([`Flavor`]). The async client's methods return the
//! `Send` future of `Client::send`/`send_with` instead of being `async fn`s of their own:
//! one state machine fewer per method keeps the file cheap to compile. The blocking
//! client's methods return the result of its `send`/`send_with`; everything else (names,
//! arguments, handles, documentation) is the same.
//!
//! Argument rule, the same for every operation:
//! - an operation whose parameters and body are all required takes them as its arguments,
//!   in the order of the request type's `new` (`get_company(company_id)`,
//!   `upsert_company(body)`, `check_flag(key, body)`);
//! - an operation with anything optional (query parameters, an optional body) takes the
//!   request value itself, built with its `new` and setters
//!   (`list_companies(ListCompanies::new().limit(10))`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::naming::{pascal, unraw};
use super::ops::{Op, Param};
use super::types::{Module, Ty, arg, body_arg};

/// The generated accessors, relative to the workspace root.
pub const SDK_RESOURCES: &str = "crates/sdk/src/schematic/generated/resources.rs";
/// The generated accessors of the blocking client, relative to the workspace root.
pub const SDK_BLOCKING_RESOURCES: &str = "crates/sdk/src/schematic/generated/blocking_resources.rs";
/// The directory of generated `flagwire` code, relative to the workspace root.
pub const SDK_GENERATED_DIR: &str = "crates/sdk/src/schematic/generated";

/// A type as written outside the core crate, with `flagwire_core::schematic::*` in scope.
pub(super) fn qualified(ty: &Ty) -> String {
    match ty {
        Ty::Named(n, Module::Models) => format!("models::{n}"),
        Ty::Named(n, Module::Tag(t)) => format!("{t}::{n}"),
        Ty::Vec(t) => format!("Vec<{}>", qualified(t)),
        Ty::Map(t) if **t == Ty::Json => "flagwire_core::Traits".to_owned(),
        Ty::Map(t) => format!("std::collections::BTreeMap<String, {}>", qualified(t)),
        other => other.render(&Module::Models),
    }
}

/// The argument type the request's `new` takes for `ty` (aliases resolved in `shape`).
fn arg_ty(ty: &Ty, shape: &Ty) -> String {
    arg(ty, shape, &qualified, "value").0
}

/// The method arguments (name, type) when the operation takes them one by one, or `None`
/// when it takes the request value.
fn direct_args(op: &Op) -> Option<Vec<(String, String)>> {
    let optional_param = op.params.iter().any(|p: &Param| !p.required);
    let optional_body = matches!(op.body, Some((_, false)));
    if optional_param || optional_body {
        return None;
    }
    let mut args: Vec<(String, String)> = op
        .params
        .iter()
        .map(|p| (p.rust.clone(), arg_ty(&p.ty, &p.shape)))
        .collect();
    if let (Some((ty, _)), Some(shape)) = (&op.body, &op.body_shape) {
        args.push(("body".into(), body_arg(ty, shape, &qualified, "body").0));
    }
    Some(args)
}

/// Which client the accessors are rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `flagwire::schematic::Client`: methods return the request's future.
    Async,
    /// `flagwire::schematic::blocking::Client`: methods return the result.
    Blocking,
}

impl Flavor {
    /// The first line of the module documentation.
    fn title(self) -> &'static str {
        match self {
            Self::Async => "Resource accessors",
            Self::Blocking => "Resource accessors of the blocking client",
        }
    }

    /// The imports of the client and the request options.
    fn client_use(self) -> &'static str {
        match self {
            Self::Async => "use crate::schematic::{Client, RequestOptions};\n",
            Self::Blocking => {
                "use crate::schematic::RequestOptions;\nuse crate::schematic::blocking::Client;\n"
            }
        }
    }

    /// The return type of a method sending `ty`.
    fn returns(self, ty: &str) -> String {
        match self {
            Self::Async => format!("impl Future<Output = Out<{ty}>> + Send + '_"),
            Self::Blocking => format!("Out<{ty}>"),
        }
    }
}

/// Renders the accessors file (unformatted) of `flavor` for `ops`, with `header` on top.
pub fn render(ops: &[&Op], header: &str, flavor: Flavor) -> Result<String, String> {
    let mut by_module: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_module.entry(op.module.as_str()).or_default().push(op);
    }
    let mut s = String::from(header);
    let _ = writeln!(
        s,
        "//! {}: {} operations in {} groups, one handle per group.
//!
//! An operation whose inputs are all required takes them as arguments (as its request
//! type's `new` does); one with optional inputs takes the request value. Each method has a
//! `_with` twin taking [`RequestOptions`].
",
        flavor.title(),
        ops.len(),
        by_module.len()
    );
    let mut modules: Vec<&str> = by_module.keys().copied().collect();
    let uses_models = ops
        .iter()
        .filter_map(|op| direct_args(op))
        .any(|args| args.iter().any(|(_, t)| t.contains("models::")));
    if uses_models {
        modules.push("models");
        modules.sort_unstable();
    }
    let _ = writeln!(
        s,
        "use flagwire_core::Operation;\nuse flagwire_core::schematic::{{{}}};\n",
        modules.join(", ")
    );
    s.push_str("use crate::error::Error;\n");
    s.push_str(flavor.client_use());
    s.push_str(
        "\n/// The result of sending `O`.\n\
         type Out<O> = Result<<O as Operation>::Output, Error>;\n\n",
    );

    // Handles and the accessors on `Client`.
    let mut accessors = String::new();
    for (module, module_ops) in &by_module {
        let handle = pascal(module);
        let tag = &module_ops[0].tag;
        let _ = writeln!(
            s,
            "/// The `{tag}` operations ({n}): request types in
/// [`flagwire_core::schematic::{module}`]. Get one with [`Client::{module}`].
#[derive(Debug, Clone, Copy)]
pub struct {handle}<'a> {{ client: &'a Client }}
",
            n = module_ops.len()
        );
        let _ = writeln!(
            accessors,
            "/// The `{tag}` operations.\n#[inline]\npub fn {module}(&self) -> {handle}<'_> {{ {handle} {{ client: self }} }}\n"
        );
    }
    let _ = writeln!(s, "impl Client {{\n{accessors}}}\n");

    // Methods.
    for (module, mut module_ops) in by_module {
        module_ops.sort_by(|a, b| a.id.cmp(&b.id));
        let handle = pascal(module);
        let mut taken = BTreeSet::new();
        let _ = writeln!(s, "impl {handle}<'_> {{");
        for op in module_ops {
            let method = super::naming::snake(&op.id);
            let with = format!("{}_with", unraw(&method));
            if !taken.insert(method.clone()) || !taken.insert(with.clone()) {
                return Err(format!(
                    "{}: accessor `{method}` is not unique in `{module}`",
                    op.id
                ));
            }
            let ty = format!("{module}::{}", op.name);
            let (params, value) = match direct_args(op) {
                Some(args) => {
                    if args.iter().any(|(n, _)| n == "options") {
                        return Err(format!("{}: a parameter is named `options`", op.id));
                    }
                    let params: Vec<String> =
                        args.iter().map(|(n, t)| format!("{n}: {t}")).collect();
                    let names: Vec<&str> = args.iter().map(|(n, _)| n.as_str()).collect();
                    (params, format!("{ty}::new({})", names.join(", ")))
                }
                None => (vec![format!("request: {ty}")], "request".to_owned()),
            };
            let mut params_with = params.clone();
            params_with.push("options: RequestOptions".into());
            let params: Vec<String> = std::iter::once("&self".to_owned()).chain(params).collect();
            let params_with: Vec<String> = std::iter::once("&self".to_owned())
                .chain(params_with)
                .collect();
            let deprecated = if op.deprecated {
                "///\n/// The API marks this operation as deprecated.\n"
            } else {
                ""
            };
            let returns = flavor.returns(&ty);
            let _ = writeln!(
                s,
                "/// `{} {}` (`{}`): sends [`{ty}`].\n{deprecated}#[inline]
pub fn {method}({}) -> {returns} {{ self.client.send({value}) }}

/// [`{}`](Self::{}) with per-request options.
#[inline]
pub fn {with}({}) -> {returns} {{ self.client.send_with({value}, options) }}
",
                op.method,
                op.path,
                op.id,
                params.join(", "),
                unraw(&method),
                method,
                params_with.join(", "),
            );
        }
        s.push_str("}\n\n");
    }

    // The table the accessor test checks against `flagwire_core::schematic::OPERATIONS`.
    let mut rows: Vec<(&str, String)> = ops
        .iter()
        .map(|op| {
            (
                op.id.as_str(),
                format!("{}().{}", op.module, super::naming::snake(&op.id)),
            )
        })
        .collect();
    rows.sort();
    s.push_str(
        "/// Every accessor: (operation id, `handle().method`).\n#[cfg(test)]\npub(crate) const ACCESSORS: &[(&str, &str)] = &[\n",
    );
    for (id, path) in rows {
        let _ = writeln!(s, "({id:?}, {path:?}),");
    }
    s.push_str("];\n");
    Ok(s)
}
