//! The project's own, facts-only API description.
//!
//! The importer fills these types from an OpenAPI 3.0 document and writes them as pretty JSON; the
//! generator reads them back. Only machine facts are kept: paths, methods, identifiers, parameter
//! locations and styles, schema shapes and constraints. Human prose (descriptions, summaries,
//! examples) has no field here, so it is dropped on import by construction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the description format, bumped when its shape changes.
pub const FORMAT_VERSION: u32 = 1;

/// A whole API description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// Format version of this file.
    pub format: u32,
    /// Identifier-like name of the API (`info.title`).
    pub title: String,
    /// API version string (`info.version`).
    pub version: String,
    /// Base URLs.
    pub servers: Vec<String>,
    /// Header carrying the API key, when the API uses header key auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_header: Option<String>,
    /// Tag names, sorted.
    pub tags: Vec<String>,
    /// Whether success bodies are decoded whole; by default operations return the `data`
    /// member of a `{data, ...}` envelope.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unwrapped_responses: bool,
    /// Shared responses by name (`components.responses`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub responses: BTreeMap<String, Response>,
    /// Operations, sorted by path then method.
    pub operations: Vec<Operation>,
    /// Component schemas by name.
    pub schemas: BTreeMap<String, Schema>,
}

/// One HTTP operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// `operationId`.
    pub id: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// Path template with `{name}` placeholders.
    pub path: String,
    /// Tags; the first one picks the generated module.
    pub tags: Vec<String>,
    /// Whether the operation is deprecated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deprecated: bool,
    /// Path, query and header parameters in spec order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    /// The request body, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<RequestBody>,
    /// Responses by status code (`"200"`, `"default"`, ...).
    pub responses: BTreeMap<String, Response>,
}

/// One parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameter {
    /// Wire name.
    pub name: String,
    /// `path`, `query`, `header` or `cookie`.
    #[serde(rename = "in")]
    pub location: String,
    /// Whether the parameter is required.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Serialization style, when the spec states one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<String>,
    /// Explode flag, when the spec states one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explode: Option<bool>,
    /// Whether the parameter is deprecated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deprecated: bool,
    /// Value schema.
    pub schema: Schema,
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    /// Whether the body is required.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Schema by media type.
    pub content: BTreeMap<String, Schema>,
}

/// A response: a reference to a shared response, or content by media type.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// Name of a shared response in [`Api::responses`].
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Schema by media type; empty for a response without a body.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub content: BTreeMap<String, Schema>,
}

/// `additionalProperties`: a boolean or a schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AdditionalProperties {
    /// `true` (any value) or `false` (none).
    Bool(bool),
    /// Values must match this schema.
    Schema(Box<Schema>),
}

/// A discriminator object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Discriminator {
    /// The property whose value picks the variant.
    pub property_name: String,
    /// Value to schema reference.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mapping: BTreeMap<String, String>,
}

/// A schema, reduced to its machine facts. Unknown keys of the source (prose, examples,
/// vendor extensions) are ignored on import.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// `$ref` target (`#/components/schemas/Name`).
    #[serde(default, rename = "$ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// JSON type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    /// Format (`int64`, `date-time`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Schema title: an identifier the source gives to inline schemas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Whether `null` is allowed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nullable: bool,
    /// Whether the schema is deprecated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deprecated: bool,
    /// Allowed values.
    #[serde(default, rename = "enum", skip_serializing_if = "Vec::is_empty")]
    pub enumeration: Vec<serde_json::Value>,
    /// Default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// Array item schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<Schema>>,
    /// Object properties.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, Schema>,
    /// Required property names, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// Map values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_properties: Option<AdditionalProperties>,
    /// `allOf` members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub all_of: Vec<Schema>,
    /// `oneOf` members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_of: Vec<Schema>,
    /// `anyOf` members.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<Schema>,
    /// Discriminator of a `oneOf`/`anyOf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discriminator: Option<Discriminator>,
    /// `readOnly`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// `writeOnly`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub write_only: bool,
    /// `minLength`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// `maxLength`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// `minItems`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// `maxItems`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// `minProperties`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_properties: Option<u64>,
    /// `maxProperties`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_properties: Option<u64>,
    /// `minimum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<serde_json::Number>,
    /// `maximum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<serde_json::Number>,
    /// `exclusiveMinimum` (OpenAPI 3.0 boolean form).
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclusive_minimum: bool,
    /// `exclusiveMaximum` (OpenAPI 3.0 boolean form).
    #[serde(default, skip_serializing_if = "is_false")]
    pub exclusive_maximum: bool,
    /// `pattern`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

impl Schema {
    /// The component name of a `#/components/schemas/Name` reference.
    pub fn ref_name(&self) -> Option<&str> {
        self.reference
            .as_deref()
            .map(|r| r.rsplit('/').next().unwrap_or(r))
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Api {
    /// Parses a description from its JSON text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let api: Api =
            serde_json::from_str(text).map_err(|e| format!("invalid API description: {e}"))?;
        if api.format != FORMAT_VERSION {
            return Err(format!(
                "API description has format {}, this generator reads format {FORMAT_VERSION}",
                api.format
            ));
        }
        Ok(api)
    }

    /// Renders the description as stable, pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("description serializes");
        s.push('\n');
        s
    }
}
