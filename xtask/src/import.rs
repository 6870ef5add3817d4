//! `cargo xtask import-spec`: OpenAPI 3.0 (YAML or JSON) to the facts-only description.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use crate::spec::{Api, FORMAT_VERSION, Operation, Parameter, RequestBody, Response, Schema};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[derive(Deserialize)]
struct RawSpec {
    openapi: String,
    info: RawInfo,
    #[serde(default)]
    servers: Vec<RawServer>,
    #[serde(default)]
    paths: BTreeMap<String, BTreeMap<String, Value>>,
    #[serde(default)]
    components: RawComponents,
}

#[derive(Deserialize)]
struct RawInfo {
    title: String,
    version: String,
}

#[derive(Deserialize)]
struct RawServer {
    url: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawComponents {
    #[serde(default)]
    schemas: BTreeMap<String, Schema>,
    #[serde(default)]
    responses: BTreeMap<String, RawResponse>,
    #[serde(default)]
    security_schemes: BTreeMap<String, RawSecurityScheme>,
}

#[derive(Deserialize)]
struct RawSecurityScheme {
    #[serde(rename = "type")]
    ty: String,
    #[serde(default, rename = "in")]
    location: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOperation {
    operation_id: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    deprecated: bool,
    #[serde(default)]
    parameters: Vec<RawParameter>,
    #[serde(default)]
    request_body: Option<RawRequestBody>,
    #[serde(default)]
    responses: BTreeMap<String, RawResponse>,
}

#[derive(Deserialize)]
struct RawParameter {
    #[serde(default, rename = "$ref")]
    reference: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "in")]
    location: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    style: Option<String>,
    #[serde(default)]
    explode: Option<bool>,
    #[serde(default)]
    deprecated: bool,
    #[serde(default)]
    schema: Option<Schema>,
}

#[derive(Deserialize)]
struct RawRequestBody {
    #[serde(default, rename = "$ref")]
    reference: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    content: BTreeMap<String, RawMedia>,
}

#[derive(Deserialize)]
struct RawMedia {
    #[serde(default)]
    schema: Option<Schema>,
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default, rename = "$ref")]
    reference: Option<String>,
    #[serde(default)]
    content: BTreeMap<String, RawMedia>,
}

impl RawResponse {
    fn into_response(self) -> Response {
        Response {
            reference: self
                .reference
                .map(|r| r.rsplit('/').next().unwrap_or(&r).to_owned()),
            content: media(self.content),
        }
    }
}

fn media(content: BTreeMap<String, RawMedia>) -> BTreeMap<String, Schema> {
    content
        .into_iter()
        .map(|(ct, m)| (ct, m.schema.unwrap_or_default()))
        .collect()
}

/// Converts YAML to JSON, turning non-string mapping keys (such as unquoted status codes) into
/// strings.
fn yaml_to_json(v: serde_yaml::Value) -> Result<Value, String> {
    use serde_yaml::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("non-finite number {f} in document"))?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value)?,
    })
}

/// Parses an OpenAPI 3.0 document (YAML or JSON text) into the description.
pub fn import(text: &str) -> Result<Api, String> {
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| format!("not a YAML/JSON document: {e}"))?;
    let json = yaml_to_json(yaml)?;
    let raw: RawSpec =
        serde_json::from_value(json).map_err(|e| format!("not an OpenAPI document: {e}"))?;
    if !raw.openapi.starts_with("3.") {
        return Err(format!(
            "unsupported OpenAPI version {} (3.x expected)",
            raw.openapi
        ));
    }

    let api_key_header = raw
        .components
        .security_schemes
        .values()
        .find(|s| s.ty == "apiKey" && s.location.as_deref() == Some("header"))
        .and_then(|s| s.name.clone());

    let mut operations = Vec::new();
    let mut tags = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (path, item) in raw.paths {
        let shared_params = match item.get("parameters") {
            Some(p) => serde_json::from_value::<Vec<RawParameter>>(p.clone())
                .map_err(|e| format!("{path}: bad path-level parameters: {e}"))?,
            None => Vec::new(),
        };
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let op: RawOperation =
                serde_json::from_value(op.clone()).map_err(|e| format!("{method} {path}: {e}"))?;
            let id = op
                .operation_id
                .ok_or_else(|| format!("{method} {path}: operationId missing"))?;
            if !ids.insert(id.clone()) {
                return Err(format!("duplicate operationId {id}"));
            }
            let mut parameters: Vec<Parameter> = Vec::new();
            for p in shared_params.iter().map(clone_param).chain(op.parameters) {
                if let Some(r) = p.reference {
                    return Err(format!(
                        "{id}: parameter reference {r} is not supported; inline the parameter"
                    ));
                }
                let param = Parameter {
                    required: p.required || p.location == "path",
                    name: p.name,
                    location: p.location,
                    style: p.style,
                    explode: p.explode,
                    deprecated: p.deprecated,
                    schema: p.schema.unwrap_or_default(),
                };
                // An operation-level parameter overrides a path-level one of the same name.
                parameters.retain(|q| !(q.name == param.name && q.location == param.location));
                parameters.push(param);
            }
            let request_body = match op.request_body {
                Some(b) if b.reference.is_some() => {
                    return Err(format!("{id}: request body references are not supported"));
                }
                Some(b) => Some(RequestBody {
                    required: b.required,
                    content: media(b.content),
                }),
                None => None,
            };
            tags.extend(op.tags.iter().cloned());
            operations.push(Operation {
                id,
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                tags: op.tags,
                deprecated: op.deprecated,
                parameters,
                request_body,
                responses: op
                    .responses
                    .into_iter()
                    .map(|(status, r)| (status, r.into_response()))
                    .collect(),
            });
        }
    }

    let mut schemas = raw.components.schemas;
    for schema in schemas.values_mut() {
        normalize(schema);
    }
    for op in &mut operations {
        for p in &mut op.parameters {
            normalize(&mut p.schema);
        }
        if let Some(b) = &mut op.request_body {
            b.content.values_mut().for_each(normalize);
        }
        for r in op.responses.values_mut() {
            r.content.values_mut().for_each(normalize);
        }
    }

    Ok(Api {
        format: FORMAT_VERSION,
        title: raw.info.title,
        version: raw.info.version,
        servers: raw.servers.into_iter().map(|s| s.url).collect(),
        api_key_header,
        tags: tags.into_iter().collect(),
        unwrapped_responses: false,
        responses: raw
            .components
            .responses
            .into_iter()
            .map(|(n, r)| (n, r.into_response()))
            .collect(),
        operations,
        schemas,
    })
}

fn clone_param(p: &RawParameter) -> RawParameter {
    RawParameter {
        reference: p.reference.clone(),
        name: p.name.clone(),
        location: p.location.clone(),
        required: p.required,
        style: p.style.clone(),
        explode: p.explode,
        deprecated: p.deprecated,
        schema: p.schema.clone(),
    }
}

/// Makes a schema's representation canonical: `required` sorted and deduplicated, recursively.
fn normalize(s: &mut Schema) {
    s.required.sort();
    s.required.dedup();
    if let Some(items) = &mut s.items {
        normalize(items);
    }
    s.properties.values_mut().for_each(normalize);
    if let Some(crate::spec::AdditionalProperties::Schema(ap)) = &mut s.additional_properties {
        normalize(ap);
    }
    s.all_of
        .iter_mut()
        .chain(&mut s.one_of)
        .chain(&mut s.any_of)
        .for_each(normalize);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"
openapi: 3.0.0
info: {title: Demo, version: '1', description: prose that must not survive}
servers: [{url: 'https://example.test'}]
components:
  securitySchemes:
    Key: {type: apiKey, in: header, name: X-Key}
  responses:
    NotFound:
      description: gone
      content:
        application/json:
          schema: {$ref: '#/components/schemas/Err'}
  schemas:
    Err:
      type: object
      description: an error
      required: [z, error]
      properties:
        error: {type: string, example: boom, maxLength: 10}
        z: {type: integer, format: int32, minimum: 0}
paths:
  /things/{thing_id}:
    parameters:
      - {name: thing_id, in: path, schema: {type: string}}
    get:
      operationId: getThing
      summary: words
      tags: [things]
      parameters:
        - {name: keys, in: query, required: true, style: deepObject, schema: {type: object, additionalProperties: {type: string}}}
      responses:
        200:
          description: ok
          content:
            application/json:
              schema: {type: object, properties: {data: {$ref: '#/components/schemas/Err'}}}
        404: {$ref: '#/components/responses/NotFound'}
"#;

    #[test]
    fn imports_facts_and_drops_prose() {
        let api = import(DOC).unwrap();
        assert_eq!(api.operations.len(), 1);
        let op = &api.operations[0];
        assert_eq!(op.id, "getThing");
        assert_eq!(op.method, "GET");
        assert_eq!(op.parameters.len(), 2);
        assert_eq!(op.parameters[0].name, "thing_id");
        assert!(
            op.parameters[0].required,
            "path parameters are always required"
        );
        assert_eq!(op.parameters[1].style.as_deref(), Some("deepObject"));
        assert_eq!(
            op.responses["404"].reference.as_deref(),
            Some("NotFound"),
            "unquoted status keys become strings and response refs keep their name"
        );
        assert_eq!(api.api_key_header.as_deref(), Some("X-Key"));
        let err = &api.schemas["Err"];
        assert_eq!(err.required, ["error", "z"], "required is sorted");
        assert_eq!(err.properties["error"].max_length, Some(10));
        let json = api.to_json();
        for prose in ["prose", "an error", "boom", "words", "gone"] {
            assert!(!json.contains(prose), "{prose} leaked into the description");
        }
    }

    #[test]
    fn output_is_deterministic_and_round_trips() {
        let a = import(DOC).unwrap().to_json();
        let b = import(DOC).unwrap().to_json();
        assert_eq!(a, b);
        assert_eq!(Api::from_json(&a).unwrap().to_json(), a);
    }

    #[test]
    fn rejects_non_openapi_input() {
        assert!(import("just: text").unwrap_err().contains("OpenAPI"));
        assert!(
            import("openapi: '2.0'\ninfo: {title: a, version: b}")
                .unwrap_err()
                .contains("unsupported")
        );
        assert!(import(": : :").is_err());
    }
}
