//! The operation table of `flagwire api` (built from the API descriptions by
//! build.rs) and the checks that run before any request is sent.

use bytes::Bytes;
use flagwire_core::query::{QueryBuilder, push_path_segment};
use flagwire_core::{ApiError, EncodeError, Operation, StatusError};
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use crate::error::CliError;
use crate::util::edit_distance;

/// Where a parameter goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A `{name}` segment of the path.
    Path,
    /// The query string.
    Query,
}

/// The shape of a parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One value.
    Scalar,
    /// Repeated: `--param ids=a --param ids=b`.
    Array,
    /// A map in `deepObject` style: `--param keys.domain=acme.test`
    /// (or `keys[domain]=acme.test`).
    Object,
}

/// Whether an operation takes a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body.
    None,
    /// A body may be sent (no operation of today's descriptions has one).
    #[allow(dead_code)]
    Optional,
    /// A body must be sent.
    Required,
}

/// One parameter of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Path or query.
    pub location: Location,
    /// Its shape.
    pub kind: Kind,
    /// Whether it must be given.
    pub required: bool,
}

/// One operation of an API description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// The `operationId`.
    pub id: &'static str,
    /// The HTTP method.
    pub method: &'static str,
    /// The path template.
    pub path: &'static str,
    /// The group.
    pub tag: &'static str,
    /// The parameters.
    pub params: &'static [Param],
    /// The body.
    pub body: Body,
}

include!(concat!(env!("OUT_DIR"), "/ops.rs"));

/// Which API an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// The Schematic API.
    Schematic,
    /// The eSauti REST API.
    Esauti,
}

impl Service {
    /// The operation table.
    pub fn table(self) -> &'static [Op] {
        match self {
            Service::Schematic => SCHEMATIC,
            Service::Esauti => ESAUTI,
        }
    }
}

impl Op {
    /// Whether it pages with `limit` and `offset`.
    pub fn pages(&self) -> bool {
        let has = |n: &str| {
            self.params
                .iter()
                .any(|p| p.name == n && p.location == Location::Query)
        };
        self.method == "GET" && has("limit") && (has("offset") || has("start"))
    }

    /// The query parameter that says where a page starts: `offset`
    /// (Schematic) or `start` (eSauti).
    pub fn page_start_param(&self) -> &'static str {
        let has_offset = self
            .params
            .iter()
            .any(|p| p.name == "offset" && p.location == Location::Query);
        if has_offset { "offset" } else { "start" }
    }

    /// A one-line synopsis: `GET /companies/{company_id}  [q, limit]`.
    pub fn synopsis(&self) -> String {
        let query: Vec<String> = self
            .params
            .iter()
            .filter(|p| p.location == Location::Query)
            .map(|p| {
                let mut s = p.name.to_owned();
                match p.kind {
                    Kind::Array => s.push_str("..."),
                    Kind::Object => s.push_str(".<key>"),
                    Kind::Scalar => {}
                }
                if p.required {
                    s.push('!');
                }
                s
            })
            .collect();
        let body = match self.body {
            Body::None => "",
            Body::Optional => " [body]",
            Body::Required => " body",
        };
        if query.is_empty() {
            format!("{} {}{body}", self.method, self.path)
        } else {
            format!("{} {}?{}{body}", self.method, self.path, query.join(","))
        }
    }
}

/// Finds an operation by id (exactly, then case-insensitively); otherwise a
/// usage error listing the closest ids.
pub fn find(service: Service, id: &str) -> Result<&'static Op, CliError> {
    let table = service.table();
    if let Some(op) = table.iter().find(|o| o.id == id) {
        return Ok(op);
    }
    if let Some(op) = table.iter().find(|o| o.id.eq_ignore_ascii_case(id)) {
        return Ok(op);
    }
    let close = close_matches(table, id);
    let hint = if close.is_empty() {
        " (`flagwire api --list` shows them all)".to_owned()
    } else {
        format!("; did you mean {}?", close.join(", "))
    };
    Err(CliError::usage(format!("unknown operation `{id}`{hint}")))
}

/// Up to five ids close to `id`: by edit distance, or containing it.
pub fn close_matches(table: &[Op], id: &str) -> Vec<&'static str> {
    let needle = id.to_lowercase();
    let mut scored: Vec<(usize, &'static str)> = table
        .iter()
        .filter_map(|o| {
            let d = edit_distance(o.id, id);
            let contains = !needle.is_empty() && o.id.to_lowercase().contains(&needle);
            let limit = (id.len() / 3).max(2);
            if d <= limit {
                Some((d, o.id))
            } else if contains {
                Some((limit + 1, o.id))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, id)| id).collect()
}

/// A request checked against its operation, ready to send.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The operation.
    pub op: &'static Op,
    /// The path with parameters substituted and encoded.
    pub path: String,
    /// The query pairs, in order (`keys[domain]` style for maps).
    pub query: Vec<(String, String)>,
    /// The JSON body.
    pub body: Option<Value>,
}

/// Checks `params` and `body` against `op` and builds the request: unknown
/// parameters, missing path or required query parameters, a body where
/// none is taken or a missing required body are usage errors.
pub fn prepare(
    op: &'static Op,
    params: &[(String, String)],
    body: Option<Value>,
) -> Result<Prepared, CliError> {
    let mut path_values: Vec<(&str, &str)> = Vec::new();
    let mut query = Vec::new();
    for (name, value) in params {
        let (base, sub) = split_deep(name);
        let Some(param) = op.params.iter().find(|p| p.name == base) else {
            let known: Vec<_> = op.params.iter().map(|p| p.name).collect();
            return Err(CliError::usage(format!(
                "`{}` has no parameter `{base}` (parameters: {})",
                op.id,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        };
        match (param.location, param.kind, sub) {
            (Location::Path, _, None) => {
                if path_values.iter().any(|(n, _)| *n == base) {
                    return Err(CliError::usage(format!(
                        "path parameter `{base}` is given twice"
                    )));
                }
                if value.trim().is_empty() {
                    return Err(CliError::usage(format!(
                        "path parameter `{base}` is empty; it must name a resource"
                    )));
                }
                path_values.push((param.name, value));
            }
            (Location::Query, Kind::Object, Some(key)) => {
                query.push((format!("{base}[{key}]"), value.clone()));
            }
            (Location::Query, Kind::Object, None) => {
                return Err(CliError::usage(format!(
                    "`{base}` is a map: give it as {base}.<key>=<value>"
                )));
            }
            (Location::Query, Kind::Scalar, None) => {
                if query.iter().any(|(n, _)| n == base) {
                    return Err(CliError::usage(format!(
                        "`{base}` takes one value (given twice)"
                    )));
                }
                query.push((base.to_owned(), value.clone()));
            }
            (Location::Query, Kind::Array, None) => query.push((base.to_owned(), value.clone())),
            (_, _, Some(_)) => {
                return Err(CliError::usage(format!(
                    "`{name}`: `{base}` is not a map parameter"
                )));
            }
        }
    }
    for p in op.params.iter().filter(|p| p.required) {
        let given = match p.location {
            Location::Path => path_values.iter().any(|(n, _)| *n == p.name),
            Location::Query => query
                .iter()
                .any(|(n, _)| n == p.name || n.starts_with(&format!("{}[", p.name))),
        };
        if !given {
            let kind = match p.location {
                Location::Path => "path",
                Location::Query => "query",
            };
            return Err(CliError::usage(format!(
                "`{}` needs the {kind} parameter `{}`: add --param {}=<value>",
                op.id, p.name, p.name
            )));
        }
    }
    match (op.body, &body) {
        (Body::None, Some(_)) => {
            return Err(CliError::usage(format!(
                "`{}` ({} {}) takes no body",
                op.id, op.method, op.path
            )));
        }
        (Body::Required, None) => {
            return Err(CliError::usage(format!(
                "`{}` needs a JSON body: --body '{{...}}', --body @file.json or --body -",
                op.id
            )));
        }
        _ => {}
    }
    let path = render_path(op.path, &path_values);
    Ok(Prepared {
        op,
        path,
        query,
        body,
    })
}

/// `keys.domain` or `keys[domain]` → (`keys`, Some(`domain`)).
fn split_deep(name: &str) -> (&str, Option<&str>) {
    if let Some(open) = name.find('[')
        && name.ends_with(']')
        && open + 1 < name.len() - 1
    {
        return (&name[..open], Some(&name[open + 1..name.len() - 1]));
    }
    match name.split_once('.') {
        Some((base, key)) if !base.is_empty() && !key.is_empty() => (base, Some(key)),
        _ => (name, None),
    }
}

/// Substitutes `{name}` segments, percent-encoding each value.
fn render_path(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let name = &rest[open + 1..open + close];
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| *v);
        push_path_segment(&mut out, value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

impl Prepared {
    /// The encoded query string, if any.
    pub fn query_string(&self) -> Option<String> {
        let mut q = QueryBuilder::new();
        for (name, value) in &self.query {
            q.push(name, value.as_str());
        }
        q.finish()
    }

    /// The same request with `limit` and `offset` set (for `--all`).
    pub fn with_page(&self, limit: u64, offset: u64) -> Prepared {
        let start = self.op.page_start_param();
        let mut next = self.clone();
        next.query.retain(|(n, _)| n != "limit" && n != start);
        next.query.push(("limit".to_owned(), limit.to_string()));
        next.query.push((start.to_owned(), offset.to_string()));
        next
    }
}

/// A [`Prepared`] request as an [`Operation`], so the SDK's client (its
/// key, retries and deadlines) sends it. The answer is the whole JSON
/// document (`{data, params}` for Schematic).
#[derive(Debug, Clone)]
pub struct DynamicOperation(pub Prepared);

impl Operation for DynamicOperation {
    type Output = Value;

    const OPERATION_ID: &'static str = "flagwire-cli";

    fn method(&self) -> Method {
        Method::from_bytes(self.0.op.method.as_bytes()).unwrap_or(Method::GET)
    }

    fn path(&self) -> Result<String, EncodeError> {
        Ok(self.0.path.clone())
    }

    fn query(&self) -> Option<String> {
        self.0.query_string()
    }

    fn body(&self) -> Result<Option<Bytes>, EncodeError> {
        match &self.0.body {
            None => Ok(None),
            Some(v) => flagwire_core::operation::json_body(v),
        }
    }

    fn parse_response(
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        if !status.is_success() {
            return Err(ApiError::Status(Box::new(StatusError::new(
                status, headers, body,
            ))));
        }
        Ok(json_or_text(body))
    }
}

/// A body as JSON; `null` when empty, a string when it is not JSON.
pub fn json_or_text(body: &[u8]) -> Value {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_table_matches_the_generated_operations() {
        assert_eq!(SCHEMATIC.len(), flagwire_core::schematic::OPERATIONS.len());
        for (ours, core) in SCHEMATIC.iter().zip(flagwire_core::schematic::OPERATIONS) {
            assert_eq!(
                (ours.id, ours.method, ours.path),
                (core.id, core.method, core.path)
            );
        }
        assert_eq!(ESAUTI.len(), flagwire_core::esauti::api::OPERATIONS.len());
    }

    #[test]
    fn finds_operations_and_suggests_close_ones() {
        assert_eq!(
            find(Service::Schematic, "getCompany").unwrap().path,
            "/companies/{company_id}"
        );
        assert_eq!(
            find(Service::Schematic, "getcompany").unwrap().id,
            "getCompany"
        );
        let e = find(Service::Schematic, "getCompny").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("did you mean getCompany"), "{e}");
        let e = find(Service::Schematic, "zzzzzzzzzzzzzzzz").unwrap_err();
        assert!(e.to_string().contains("--list"), "{e}");
    }

    #[test]
    fn path_parameters_are_required_and_encoded() {
        let op = find(Service::Schematic, "getCompany").unwrap();
        let e = prepare(op, &[], None).unwrap_err();
        assert!(e.to_string().contains("`company_id`"), "{e}");
        let p = prepare(op, &pairs(&[("company_id", "a b/c")]), None).unwrap();
        assert_eq!(p.path, "/companies/a%20b%2Fc");
        let e = prepare(op, &pairs(&[("company_id", " ")]), None).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = prepare(op, &pairs(&[("company_id", "x"), ("nope", "1")]), None).unwrap_err();
        assert!(e.to_string().contains("no parameter `nope`"), "{e}");
    }

    #[test]
    fn query_parameters_arrays_and_maps() {
        let op = find(Service::Schematic, "listCompanies").unwrap();
        assert!(op.pages());
        let p = prepare(
            op,
            &pairs(&[("ids", "a"), ("ids", "b"), ("q", "x y")]),
            None,
        )
        .unwrap();
        assert_eq!(p.query_string().unwrap(), "ids=a&ids=b&q=x%20y");
        let e = prepare(op, &pairs(&[("q", "a"), ("q", "b")]), None).unwrap_err();
        assert!(e.to_string().contains("one value"), "{e}");
        let paged = p.with_page(50, 100);
        assert!(
            paged
                .query_string()
                .unwrap()
                .ends_with("limit=50&offset=100")
        );

        let op = find(Service::Schematic, "lookupCompany").unwrap();
        let p = prepare(op, &pairs(&[("keys.domain", "acme.test")]), None).unwrap();
        assert_eq!(p.query_string().unwrap(), "keys%5Bdomain%5D=acme.test");
        let p = prepare(op, &pairs(&[("keys[id]", "acme")]), None).unwrap();
        assert_eq!(p.query, pairs(&[("keys[id]", "acme")]));
        assert!(prepare(op, &pairs(&[("keys", "x")]), None).is_err());
    }

    #[test]
    fn bodies_are_checked() {
        let op = find(Service::Schematic, "upsertCompany").unwrap();
        let e = prepare(op, &[], None).unwrap_err();
        assert!(e.to_string().contains("needs a JSON body"), "{e}");
        assert!(prepare(op, &[], Some(serde_json::json!({"keys": {"id": "a"}}))).is_ok());
        let op = find(Service::Schematic, "listCompanies").unwrap();
        let e = prepare(op, &[], Some(Value::Null)).unwrap_err();
        assert!(e.to_string().contains("takes no body"), "{e}");
    }

    #[test]
    fn responses() {
        let ok =
            DynamicOperation::parse_response(StatusCode::OK, &HeaderMap::new(), b"{\"data\":1}");
        assert_eq!(ok.unwrap()["data"], 1);
        let empty =
            DynamicOperation::parse_response(StatusCode::NO_CONTENT, &HeaderMap::new(), b"");
        assert_eq!(empty.unwrap(), Value::Null);
        let err = DynamicOperation::parse_response(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            b"{\"error\":\"not found\"}",
        )
        .unwrap_err();
        assert_eq!(err.status(), 404);
    }
}
