//! Operation request types.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::naming::{pascal, snake};
use super::types::{Module, Ty, TypeSet, arg, body_arg};
use crate::spec::Operation;

/// How a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
}

/// One request field.
#[derive(Debug, Clone)]
pub struct Param {
    pub rust: String,
    pub wire: String,
    pub location: Location,
    pub ty: Ty,
    /// `ty` with aliases resolved: what the constructor or setter takes.
    pub shape: Ty,
    pub required: bool,
}

/// The shape of the success payload.
#[derive(Debug, Clone)]
pub enum Output {
    /// No body.
    Empty,
    /// Raw bytes (non-JSON media), with the media types the description lists.
    Bytes(Vec<String>),
    /// The `data` member of the envelope.
    Data(Ty),
    /// The whole JSON body (APIs without a `data` envelope).
    Whole(Ty),
}

/// An operation ready to render.
#[derive(Debug, Clone)]
pub struct Op {
    pub id: String,
    pub name: String,
    pub module: String,
    pub tag: String,
    pub method: String,
    pub path: String,
    pub params: Vec<Param>,
    /// Body type and whether it is required.
    pub body: Option<(Ty, bool)>,
    /// The body type with aliases resolved.
    pub body_shape: Option<Ty>,
    pub output: Output,
    pub success: String,
    pub deprecated: bool,
}

/// Names that setters must not take: they are trait or constructor methods.
const RESERVED: &[&str] = &[
    "new",
    "method",
    "path",
    "query",
    "body",
    "to_request",
    "parse_response",
    "page_limit",
    "page_offset",
    "set_page_offset",
    "next_page",
];

/// The module name of a tag.
pub fn module_of(tag: &str) -> String {
    let m = snake(tag);
    if m == "models" { "models_".into() } else { m }
}

/// Builds the operation model, defining inline parameter and response types in `types`.
pub fn build(types: &mut TypeSet<'_>, op: &Operation, unwrapped: bool) -> Result<Op, String> {
    let tag = op.tags.first().cloned().unwrap_or_else(|| "default".into());
    let module = module_of(&tag);
    let m = Module::Tag(module.clone());
    let name = pascal(&op.id);
    let mut params = Vec::new();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for p in &op.parameters {
        let location = match p.location.as_str() {
            "path" => Location::Path,
            "query" => Location::Query,
            other => {
                return Err(format!(
                    "{}: {other} parameter {} is not supported",
                    op.id, p.name
                ));
            }
        };
        let mut rust = snake(&p.name);
        while RESERVED.contains(&rust.as_str()) || !taken.insert(rust.clone()) {
            rust.push_str("_param");
        }
        let ty = types.ty_of(
            &p.schema,
            &format!("{name}{}", pascal(&p.name)),
            &m,
            &module,
        )?;
        if location == Location::Path && matches!(ty, Ty::Vec(_) | Ty::Map(_) | Ty::Json) {
            return Err(format!(
                "{}: path parameter {} is not a scalar",
                op.id, p.name
            ));
        }
        if matches!(&ty, Ty::Map(v) if **v != Ty::String) || ty == Ty::Json {
            return Err(format!(
                "{}: query object {} must map strings to strings",
                op.id, p.name
            ));
        }
        let shape = types.resolved(&ty);
        params.push(Param {
            rust,
            wire: p.name.clone(),
            location,
            ty,
            shape,
            required: p.required,
        });
    }
    let body = match &op.request_body {
        None => None,
        Some(b) => {
            let schema = json_content(&b.content)
                .ok_or_else(|| format!("{}: request body is not JSON", op.id))?;
            let ty = types.ty_of(schema, &format!("{name}Body"), &m, &module)?;
            Some((ty, b.required))
        }
    };
    let body_shape = body.as_ref().map(|(ty, _)| types.resolved(ty));
    let (success, response) = op
        .responses
        .iter()
        .find(|(status, _)| status.starts_with('2'))
        .ok_or_else(|| format!("{}: no success response", op.id))?;
    let output = if response.content.is_empty() {
        Output::Empty
    } else if let (true, Some(schema)) = (unwrapped, json_content(&response.content)) {
        Output::Whole(types.ty_of(schema, &format!("{name}Output"), &m, &module)?)
    } else if let Some(schema) = json_content(&response.content) {
        let data = schema
            .properties
            .get("data")
            .ok_or_else(|| format!("{}: success body has no `data` member", op.id))?;
        Output::Data(types.ty_of(data, &format!("{name}Data"), &m, &module)?)
    } else {
        let media: Vec<String> = response.content.keys().cloned().collect();
        if let Some(bad) = media
            .iter()
            .find(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
        {
            return Err(format!(
                "{}: media type {bad:?} cannot be sent in Accept",
                op.id
            ));
        }
        Output::Bytes(media)
    };
    Ok(Op {
        id: op.id.clone(),
        name,
        module,
        tag,
        method: op.method.clone(),
        path: op.path.clone(),
        params,
        body,
        body_shape,
        output,
        success: success.clone(),
        deprecated: op.deprecated,
    })
}

/// The JSON schema of a content map: `application/json` or another `+json` media type.
fn json_content(
    content: &std::collections::BTreeMap<String, crate::spec::Schema>,
) -> Option<&crate::spec::Schema> {
    content.get("application/json").or_else(|| {
        content
            .iter()
            .find(|(media, _)| {
                let essence = media.split(';').next().unwrap_or(media).trim();
                essence.ends_with("+json")
            })
            .map(|(_, schema)| schema)
    })
}

fn param_ty(p: &Param, m: &Module) -> String {
    match (&p.ty, p.required) {
        (Ty::Vec(_) | Ty::Map(_), _) | (_, true) => p.ty.render(m),
        (t, false) => format!("Option<{}>", t.render(m)),
    }
}

fn output_ty(op: &Op, m: &Module) -> String {
    match &op.output {
        Output::Empty => "()".into(),
        Output::Bytes(_) => "RawBody".into(),
        Output::Data(t) | Output::Whole(t) => t.render(m),
    }
}

/// Renders the request struct and its impls.
pub fn render(op: &Op, out: &mut String) {
    let m = Module::Tag(op.module.clone());
    let required: Vec<&Param> = op.params.iter().filter(|p| p.required).collect();
    let body_required = op.body.as_ref().is_some_and(|(_, r)| *r);
    let has_default = required.is_empty() && !body_required;

    let payload = match &op.output {
        Output::Empty => "no body".to_owned(),
        Output::Bytes(media) => format!(
            "the file contents as a [`RawBody`] ({})",
            media
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Output::Data(t) | Output::Whole(t) => format!("[`{}`]", t.render(&m)),
    };
    let _ = writeln!(
        out,
        "/// `{} {}` (`{}`): responds `{}` with {payload}.",
        op.method, op.path, op.id, op.success,
    );
    if op.deprecated {
        out.push_str("///\n/// The API marks this operation as deprecated.\n");
    }
    let derives = if has_default {
        "Debug, Clone, PartialEq, Default"
    } else {
        "Debug, Clone, PartialEq"
    };
    let _ = writeln!(
        out,
        "#[derive({derives})]\n#[non_exhaustive]\npub struct {} {{",
        op.name
    );
    for p in &op.params {
        let kind = match p.location {
            Location::Path => "Path",
            Location::Query => "Query",
        };
        let req = if p.required { "required" } else { "optional" };
        let _ = writeln!(out, "/// {kind} parameter `{}`, {req}.", p.wire);
        let _ = writeln!(out, "pub {}: {},", p.rust, param_ty(p, &m));
    }
    if let Some((ty, req)) = &op.body {
        let _ = writeln!(out, "/// The JSON request body.");
        if *req {
            let _ = writeln!(out, "pub body: {},", ty.render(&m));
        } else {
            let _ = writeln!(out, "pub body: Option<{}>,", ty.render(&m));
        }
    }
    out.push_str("}\n\n");

    // Constructor and setters.
    let render = |t: &Ty| t.render(&m);
    let _ = writeln!(out, "impl {} {{", op.name);
    out.push_str("/// Creates the request from its required parameters.\n");
    let mut args = Vec::new();
    let mut inits = Vec::new();
    for p in &op.params {
        if p.required {
            let (t, conv) = arg(&p.ty, &p.shape, &render, &p.rust);
            args.push(format!("{}: {t}", p.rust));
            inits.push(if conv == p.rust {
                conv
            } else {
                format!("{}: {conv}", p.rust)
            });
        } else {
            inits.push(format!("{}: Default::default()", p.rust));
        }
    }
    if let (Some((ty, req)), Some(shape)) = (&op.body, &op.body_shape) {
        if *req {
            let (t, conv) = body_arg(ty, shape, &render, "body");
            args.push(format!("body: {t}"));
            inits.push(if conv == "body" {
                conv
            } else {
                format!("body: {conv}")
            });
        } else {
            inits.push("body: None".into());
        }
    }
    if has_default {
        let _ = writeln!(out, "pub fn new() -> Self {{ Self::default() }}\n");
    } else {
        let _ = writeln!(
            out,
            "pub fn new({}) -> Self {{ Self {{ {} }} }}\n",
            args.join(", "),
            inits.join(", ")
        );
    }
    for p in op.params.iter().filter(|p| !p.required) {
        let (t, conv) = arg(&p.ty, &p.shape, &render, "value");
        let _ = writeln!(out, "/// Sets the `{}` query parameter.", p.wire);
        let value = match &p.ty {
            Ty::Vec(_) | Ty::Map(_) => conv,
            _ => format!("Some({conv})"),
        };
        let _ = writeln!(
            out,
            "#[inline]\npub fn {}(mut self, value: {t}) -> Self {{ self.{} = {value}; self }}\n",
            p.rust, p.rust
        );
    }
    if let (Some((ty, false)), Some(shape)) = (&op.body, &op.body_shape) {
        let (t, conv) = body_arg(ty, shape, &render, "body");
        let _ = writeln!(
            out,
            "/// Sets the JSON request body.\n#[inline]\npub fn with_body(mut self, body: {t}) -> Self {{ self.body = Some({conv}); self }}\n",
        );
    }
    out.push_str("}\n\n");

    // Operation impl.
    let _ = writeln!(
        out,
        "impl Operation for {} {{\ntype Output = {};\nconst OPERATION_ID: &'static str = {:?};\n",
        op.name,
        output_ty(op, &m),
        op.id
    );
    if let Output::Bytes(media) = &op.output {
        let _ = writeln!(
            out,
            "const ACCEPT: &'static str = {:?};\n",
            media.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "fn method(&self) -> Method {{ Method::{} }}\n",
        op.method
    );
    out.push_str(&render_path(op));
    out.push_str(&render_query(op));
    match &op.body {
        None => out.push_str(
            "fn body(&self) -> Result<Option<Bytes>, EncodeError> { Ok(None) }\n\n",
        ),
        Some((_, true)) => out.push_str(
            "fn body(&self) -> Result<Option<Bytes>, EncodeError> { json_body(&self.body) }\n\n",
        ),
        Some((_, false)) => out.push_str(
            "fn body(&self) -> Result<Option<Bytes>, EncodeError> { match &self.body { Some(b) => json_body(b), None => Ok(None) } }\n\n",
        ),
    }
    let decoder = match op.output {
        Output::Empty => "decode_empty",
        Output::Bytes(_) => "decode_bytes",
        Output::Data(_) => "decode_data",
        Output::Whole(_) => "decode_json",
    };
    let _ = writeln!(
        out,
        "fn parse_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<Self::Output, ApiError> {{ {decoder}(status, headers, body) }}\n}}\n"
    );

    // Pagination.
    if let (Some(limit), Some(offset), Output::Data(Ty::Vec(item))) = (
        op.params
            .iter()
            .find(|p| p.wire == "limit" && !p.required && p.ty == Ty::I64),
        op.params
            .iter()
            .find(|p| p.wire == "offset" && !p.required && p.ty == Ty::I64),
        &op.output,
    ) {
        let _ = writeln!(
            out,
            "impl Paginated for {} {{
type Item = {};
fn page_limit(&self) -> Option<i64> {{ self.{} }}
fn page_offset(&self) -> i64 {{ self.{}.unwrap_or(0) }}
fn set_page_offset(&mut self, offset: i64) {{ self.{} = Some(offset); }}
}}
",
            op.name,
            item.render(&m),
            limit.rust,
            offset.rust,
            offset.rust
        );
    }
}

fn render_path(op: &Op) -> String {
    let mut s = String::from("fn path(&self) -> Result<String, EncodeError> {\n");
    if !op.path.contains('{') {
        let _ = writeln!(s, "Ok({:?}.to_owned())\n}}\n", op.path);
        return s;
    }
    s.push_str("let mut path = String::new();\n");
    let mut rest = op.path.as_str();
    while let Some(start) = rest.find('{') {
        let (lit, tail) = rest.split_at(start);
        if !lit.is_empty() {
            let _ = writeln!(s, "path.push_str({lit:?});");
        }
        let end = tail.find('}').unwrap_or(tail.len());
        let name = &tail[1..end];
        let p = op
            .params
            .iter()
            .find(|p| p.wire == name && p.location == Location::Path);
        match p {
            Some(p) => {
                let _ = writeln!(
                    s,
                    "push_path_param(&mut path, Self::OPERATION_ID, {:?}, &self.{})?;",
                    p.wire, p.rust
                );
            }
            None => {
                let _ = writeln!(s, "path.push_str({:?});", &tail[..=end.min(tail.len() - 1)]);
            }
        }
        rest = tail.get(end + 1..).unwrap_or("");
    }
    if !rest.is_empty() {
        let _ = writeln!(s, "path.push_str({rest:?});");
    }
    s.push_str("Ok(path)\n}\n\n");
    s
}

fn render_query(op: &Op) -> String {
    let query: Vec<&Param> = op
        .params
        .iter()
        .filter(|p| p.location == Location::Query)
        .collect();
    if query.is_empty() {
        return "fn query(&self) -> Option<String> { None }\n\n".into();
    }
    let mut s =
        String::from("fn query(&self) -> Option<String> {\nlet mut q = QueryBuilder::new();\n");
    for p in query {
        let call = match (&p.ty, p.required) {
            (Ty::Vec(_), _) => "push_each",
            (Ty::Map(_), _) => "push_deep",
            (_, true) => "push",
            (_, false) => "push_opt",
        };
        let arg = match (&p.ty, p.required) {
            (Ty::Vec(_) | Ty::Map(_), _) | (_, true) => format!("&self.{}", p.rust),
            (_, false) => format!("self.{}.as_ref()", p.rust),
        };
        let _ = writeln!(s, "q.{call}({:?}, {arg});", p.wire);
    }
    s.push_str("q.finish()\n}\n\n");
    s
}
