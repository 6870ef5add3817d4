//! Generator unit tests on small descriptions.

use super::*;
use crate::import::import;

fn api(yaml: &str) -> Api {
    import(yaml).expect("valid test document")
}

const DOC: &str = r#"
openapi: 3.0.0
info: {title: T, version: '1'}
components:
  schemas:
    Color: {type: string, enum: [red, dark-blue, unknown]}
    Node:
      type: object
      required: [id, parent, created_at]
      properties:
        id: {type: string}
        type: {type: string}
        parent: {$ref: '#/components/schemas/Node', nullable: true}
        children: {type: array, items: {$ref: '#/components/schemas/Node'}}
        created_at: {type: string, format: date-time}
        seen_at: {type: string, format: date-time, nullable: true}
        count: {type: integer, format: int32}
        total: {type: integer}
        ratio: {type: number, format: double}
        traits: {type: object}
        keys: {type: object, additionalProperties: {type: string}}
        color: {allOf: [{$ref: '#/components/schemas/Color'}], nullable: true}
        shape: {type: string, enum: [square]}
        inner: {type: object, properties: {x: {type: boolean}}}
    A: {type: object, required: [kind], properties: {kind: {type: string, enum: [a]}, a: {type: string}}}
    B: {type: object, required: [kind, b], properties: {kind: {type: string, enum: [b]}, b: {type: integer}}}
    Tagged: {oneOf: [{$ref: '#/components/schemas/A'}, {$ref: '#/components/schemas/B'}]}
    Loose: {oneOf: [{$ref: '#/components/schemas/A'}, {$ref: '#/components/schemas/B'}], discriminator: {propertyName: kind}}
paths:
  /nodes/{node_id}:
    get:
      operationId: getNode
      tags: [nodes]
      parameters:
        - {name: node_id, in: path, required: true, schema: {type: string}}
        - {name: ids, in: query, schema: {type: array, items: {type: string}}}
        - {name: limit, in: query, schema: {type: integer, format: int64}}
        - {name: offset, in: query, schema: {type: integer, format: int64}}
      responses:
        '200':
          content:
            application/json:
              schema: {type: object, properties: {data: {type: array, items: {$ref: '#/components/schemas/Node'}}, params: {type: object}}}
"#;

fn file<'a>(out: &'a Output, suffix: &str) -> &'a str {
    out.files
        .iter()
        .find(|(k, _)| k.ends_with(suffix))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no file {suffix}"))
}

#[test]
fn maps_types_and_fields() {
    let out = generate(&api(DOC)).unwrap();
    assert_eq!(out.operations, 1);
    let n = file(&out, "models/n.rs");
    assert!(n.contains("pub r#type: Option<String>"), "{n}");
    assert!(
        n.contains("pub parent: Option<Box<Node>>"),
        "recursive field boxed: {n}"
    );
    assert!(n.contains("pub children: Option<Vec<Node>>"));
    assert!(n.contains("with = \"time::serde::rfc3339\""));
    assert!(n.contains("with = \"time::serde::rfc3339::option\""));
    assert!(n.contains("pub count: Option<i32>"));
    assert!(n.contains("pub total: Option<i64>"));
    assert!(n.contains("pub ratio: Option<f64>"));
    assert!(
        n.contains("pub traits: Option<Traits>"),
        "free-form objects share the events' map type"
    );
    assert!(n.contains("use crate::json::Traits;"));
    assert!(n.contains("pub keys: Option<BTreeMap<String, String>>"));
    assert!(n.contains("pub color: Option<Color>"));
    assert!(
        n.contains("pub shape: Option<NodeShape>"),
        "inline enum named after its field"
    );
    assert!(n.contains("pub inner: Option<NodeInner>"));
    assert!(n.contains("pub struct NodeInner"));
    assert!(n.contains(
        "#[derive(Debug, Clone, PartialEq, Serialize, Default)]\n#[non_exhaustive]\npub struct NodeInner"
    ));
    // Nothing in DOC is a request body, so nullable optional fields stay `Option`.
    assert!(n.contains("pub seen_at: Option<time::OffsetDateTime>"));
    assert!(!n.contains("Nullable"));
    // Decoders: required fields are checked, optional ones accept null, date-times are RFC 3339.
    assert!(n.contains("impl<'de> Deserialize<'de> for Node {"));
    assert!(
        n.contains("id: f4.ok_or_else(|| crate::de::missing(\"id\"))?"),
        "{n}"
    );
    assert!(n.contains("\"created_at\" => f3 = Some(map.next_value::<crate::de::DateTime>()?.0)"));
    assert!(n.contains("\"seen_at\" => f9 = map.next_value::<crate::de::OptDateTime>()?.0"));
    assert!(
        n.contains("_ => { map.next_value::<serde::de::IgnoredAny>()?; }"),
        "unknown keys are skipped"
    );
    let c = file(&out, "models/c.rs");
    assert!(c.contains("DarkBlue => \"dark-blue\""));
    assert!(
        c.contains("UnknownValue => \"unknown\""),
        "a wire `unknown` does not clash with the catch-all"
    );
}

#[test]
fn unions_are_tagged_when_members_fix_a_value() {
    let out = generate(&api(DOC)).unwrap();
    let t = file(&out, "models/t.rs");
    assert!(
        t.contains("Some(\"a\") => serde_json::from_value(value).map(Self::A)"),
        "{t}"
    );
    assert!(t.contains("Unknown(serde_json::Value)"));
    let l = file(&out, "models/l.rs");
    assert!(
        l.contains("value.get(\"kind\")"),
        "declared discriminator used: {l}"
    );
}

#[test]
fn operations_encode_params_and_paginate() {
    let out = generate(&api(DOC)).unwrap();
    let nodes = file(&out, "schematic/nodes.rs");
    assert!(
        nodes.contains("pub fn new(node_id: impl Into<String>) -> Self"),
        "{nodes}"
    );
    assert!(
        nodes.contains(
            "push_path_param(&mut path, Self::OPERATION_ID, \"node_id\", &self.node_id)?;"
        )
    );
    assert!(nodes.contains("fn path(&self) -> Result<String, EncodeError>"));
    assert!(
        !nodes.contains("const ACCEPT"),
        "JSON operations keep the default Accept"
    );
    assert!(nodes.contains("q.push_each(\"ids\", &self.ids)"));
    assert!(nodes.contains("q.push_opt(\"limit\", self.limit.as_ref())"));
    assert!(nodes.contains("type Output = Vec<models::Node>"));
    assert!(nodes.contains("impl Paginated for GetNode"));
    let root = file(&out, "schematic/mod.rs");
    assert!(
        root.contains(
            "id: \"getNode\", method: \"GET\", path: \"/nodes/{node_id}\", tag: \"nodes\""
        )
    );
    let rt = file(&out, "generated_roundtrip.rs");
    assert!(rt.contains("node: Node = "), "{rt}");
}

#[test]
fn output_is_deterministic_and_formats() {
    let a = generate_formatted(&api(DOC)).unwrap();
    let b = generate_formatted(&api(DOC)).unwrap();
    assert_eq!(a.files, b.files);
    for (path, text) in &a.files {
        assert!(
            text.starts_with("// This file is generated by `cargo xtask codegen`"),
            "{path}"
        );
        assert_eq!(&rustfmt(text).unwrap(), text, "{path} is rustfmt-stable");
    }
}

#[test]
fn unsupported_shapes_are_clear_errors() {
    let bad = DOC.replace(
        "in: path, required: true, schema: {type: string}",
        "in: header, schema: {type: string}",
    );
    let err = generate(&api(&bad)).err().unwrap();
    assert!(
        err.contains("header parameter node_id is not supported"),
        "{err}"
    );
    let dangling = DOC.replace(
        "$ref: '#/components/schemas/Color'",
        "$ref: '#/components/schemas/Nope'",
    );
    let err = generate(&api(&dangling)).err().unwrap();
    assert!(err.contains("unresolved reference Nope"), "{err}");
}

#[test]
fn the_committed_description_generates_every_operation() {
    let path = crate::workspace_root().join(crate::DESCRIPTION);
    let text = std::fs::read_to_string(&path).expect("the description is committed");
    let api = Api::from_json(&text).unwrap();
    let out = generate(&api).unwrap();
    assert_eq!(out.operations, 268);
    assert_eq!(out.schemas, 511);
    assert!(out.types >= out.schemas);
    assert!(out.files.keys().all(|p| p.starts_with(OUT_DIR)
        || p == ROUNDTRIP_TEST
        || p == PATH_PARAM_TEST
        || p == SDK_RESOURCES
        || p == SDK_BLOCKING_RESOURCES));
    // Optional nullable fields of request bodies are tri-state.
    assert_eq!((out.tri_state_fields, out.tri_state_operations), (578, 81));
    // Every path parameter of the 99 operations that have one is in the generated test.
    let path_test = &out.files[PATH_PARAM_TEST];
    assert!(path_test.contains("assert_eq!(CASES.len(), 103);"));
    assert!(path_test.contains(
        "(\"getCompany\", \"company_id\", |v| companies::GetCompany::new(v).to_request(BASE)),"
    ));
    // The download asks for what the spec offers and returns the body with its type.
    let exports = file(&out, "schematic/dataexports.rs");
    assert!(exports.contains(
        "type Output = RawBody;\nconst OPERATION_ID: &'static str = \"getDataExportArtifact\";\n\nconst ACCEPT: &'static str = \"application/octet-stream, text/csv\";"
    ), "{exports}");
    // Every struct and enum of the models is non-exhaustive; open enums through the macro.
    for (path, text) in out.files.iter().filter(|(p, _)| p.contains("/models/")) {
        let items = text.matches("\npub struct ").count() + text.matches("\npub enum ").count();
        assert_eq!(
            text.matches("#[non_exhaustive]\npub ").count(),
            items,
            "{path}"
        );
    }
    // The blocking client gets the same accessors, returning results.
    let blocking = &out.files[SDK_BLOCKING_RESOURCES];
    assert_eq!(blocking.matches(") -> Out<").count(), 2 * 268);
    assert_eq!(blocking.matches("_with(&self, ").count(), 268);
    assert!(blocking.contains("use crate::schematic::blocking::Client;"));
    assert!(blocking.contains(
        "pub fn upsert_company(&self, body: models::UpsertCompanyRequestBody) -> Out<companies::UpsertCompany> { self.client.send(companies::UpsertCompany::new(body)) }"
    ));
    // One accessor and one `_with` twin per operation, one handle per tag.
    let accessors = &out.files[SDK_RESOURCES];
    assert_eq!(
        accessors.matches("-> impl Future<Output = Out<").count(),
        2 * 268
    );
    assert_eq!(accessors.matches("_with(&self, ").count(), 268);
    assert_eq!(
        accessors.matches("#[derive(Debug, Clone, Copy)]").count(),
        22
    );
    assert!(accessors.contains("pub fn companies(&self) -> Companies<'_>"));
    assert!(accessors.contains(
        "pub fn upsert_company(&self, body: models::UpsertCompanyRequestBody) -> impl Future<Output = Out<companies::UpsertCompany>> + Send + '_"
    ));
    assert!(accessors.contains("pub fn list_companies(&self, request: companies::ListCompanies)"));
    assert!(accessors.contains(
        "pub fn check_flag(&self, key: impl Into<String>, body: models::CheckFlagRequestBody)"
    ));
}

#[test]
fn imports_only_what_the_code_uses() {
    assert!(uses_ident("let x: BTreeMap<String, u8>;", "BTreeMap"));
    assert!(!uses_ident("serde::Serializer", "Serialize"));
    assert!(!uses_ident("fn f<S: serde::Serialize>()", "Serialize"));
    assert!(uses_ident("#[derive(Debug, Serialize)]", "Serialize"));
    assert!(!uses_ident("decode_data_more()", "decode_data"));
    let block = use_block(
        "impl Operation for X { fn f() { decode_data(a, b, c) } }",
        TAG_IMPORTS,
    );
    assert_eq!(block, "use crate::operation::{Operation, decode_data};\n\n");
}

#[test]
fn unwrapped_responses_decode_the_whole_body_into_another_dir() {
    let text = r#"{
  "format": 1, "title": "Tenant API", "version": "1", "servers": [], "tags": ["things"],
  "unwrapped_responses": true,
  "operations": [
    {"id": "getThing", "method": "GET", "path": "/things/{id}", "tags": ["things"],
     "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
     "responses": {"200": {"content": {"application/json": {"type": "object"}}}}}
  ],
  "schemas": {}
}"#;
    let api = Api::from_json(text).unwrap();
    let target = Target::other("api/tenant.json", "out/tenant");
    let out = generate_for(&api, &target).unwrap();
    let keys: Vec<&str> = out.files.keys().map(String::as_str).collect();
    assert_eq!(keys, ["out/tenant/mod.rs", "out/tenant/things.rs"]);
    let things = &out.files["out/tenant/things.rs"];
    assert!(
        things.starts_with(
            "// This file is generated by `cargo xtask codegen` from api/tenant.json."
        )
    );
    assert!(things.contains("decode_json(status, headers, body)"));
    assert!(things.contains("use crate::esauti::wire::decode_json;"));
    let root = &out.files["out/tenant/mod.rs"];
    assert!(root.contains("The Tenant API: 1 operations"));
    assert!(!root.contains("BASE_URL") && !root.contains("pub mod models"));
    // The Schematic default still wants the `data` member.
    let mut wrapped = api.clone();
    wrapped.unwrapped_responses = false;
    assert!(
        generate(&wrapped)
            .err()
            .unwrap()
            .contains("no `data` member")
    );
}

const ACCESSOR_DOC: &str = r#"
openapi: 3.0.0
info: {title: T, version: '1'}
components:
  schemas:
    Thing: {type: object, required: [id], properties: {id: {type: string}}}
paths:
  /things/{thing_id}:
    put:
      operationId: putThing
      tags: [things]
      parameters:
        - {name: thing_id, in: path, required: true, schema: {type: string}}
      requestBody:
        required: true
        content: {application/json: {schema: {$ref: '#/components/schemas/Thing'}}}
      responses:
        '204': {description: ok}
  /things:
    get:
      operationId: listThings
      tags: [things]
      parameters:
        - {name: limit, in: query, schema: {type: integer, format: int64}}
      responses:
        '204': {description: ok}
  /other:
    get:
      operationId: getOther
      tags: [other-group]
      responses:
        '204': {description: ok}
"#;

#[test]
fn accessors_follow_one_argument_rule() {
    let out = generate(&api(ACCESSOR_DOC)).unwrap();
    let acc = &out.files[SDK_RESOURCES];
    // All inputs required: taken directly, in `new`'s order.
    assert!(
        acc.contains("pub fn put_thing(&self, thing_id: impl Into<String>, body: models::Thing) -> impl Future<Output = Out<things::PutThing>> + Send + '_ { self.client.send(things::PutThing::new(thing_id, body)) }"),
        "{acc}"
    );
    assert!(acc.contains(
        "pub fn put_thing_with(&self, thing_id: impl Into<String>, body: models::Thing, options: RequestOptions) -> impl Future<Output = Out<things::PutThing>> + Send + '_ { self.client.send_with(things::PutThing::new(thing_id, body), options) }"
    ));
    // Optional inputs: the request value.
    assert!(acc.contains(
        "pub fn list_things(&self, request: things::ListThings) -> impl Future<Output = Out<things::ListThings>> + Send + '_ { self.client.send(request) }"
    ));
    // No inputs at all: no arguments.
    assert!(
        acc.contains("pub fn get_other(&self) -> impl Future<Output = Out<other_group::GetOther>>")
    );
    // Handles and accessors named after the tag module.
    assert!(acc.contains("pub struct OtherGroup<'a>"));
    assert!(acc.contains("pub fn other_group(&self) -> OtherGroup<'_>"));
    assert!(acc.contains("use flagwire_core::schematic::{models, other_group, things};"));
    assert!(acc.contains("(\"listThings\", \"things().list_things\"),"));
    // Formats cleanly.
    rustfmt(acc).unwrap();

    // The blocking flavor: the same methods and arguments, returning the result.
    let blocking = &out.files[SDK_BLOCKING_RESOURCES];
    assert!(blocking.contains(
        "pub fn put_thing_with(&self, thing_id: impl Into<String>, body: models::Thing, options: RequestOptions) -> Out<things::PutThing> { self.client.send_with(things::PutThing::new(thing_id, body), options) }"
    ));
    assert!(blocking.contains(
        "pub fn list_things(&self, request: things::ListThings) -> Out<things::ListThings> { self.client.send(request) }"
    ));
    assert!(!blocking.contains("Future"));
    assert_eq!(
        acc.lines().filter(|l| l.starts_with("pub fn")).count(),
        blocking.lines().filter(|l| l.starts_with("pub fn")).count()
    );
    rustfmt(blocking).unwrap();
}

#[test]
fn clashing_accessors_are_clear_errors() {
    let doc = ACCESSOR_DOC
        .replace("operationId: getOther", "operationId: putThing_with")
        .replace("tags: [other-group]", "tags: [things]");
    let err = generate(&api(&doc)).err().expect("a clash");
    assert!(err.contains("is not unique in `things`"), "{err}");
}

#[test]
fn other_targets_get_no_accessors() {
    let out = generate_for(&api(ACCESSOR_DOC), &Target::other("d.json", "out/tenant")).unwrap();
    assert!(!out.files.contains_key(SDK_RESOURCES));
    assert!(!out.files.contains_key(SDK_BLOCKING_RESOURCES));
}

const BUILDER_DOC: &str = r#"
openapi: 3.0.0
info: {title: T, version: '1'}
components:
  schemas:
    Shared:
      type: object
      properties:
        note: {type: string, nullable: true}
    ResponseOnly:
      type: object
      properties:
        note: {type: string, nullable: true}
    Track: {type: object, required: [event], properties: {event: {type: string}}}
    Identify: {type: object, required: [keys], properties: {keys: {type: object, additionalProperties: {type: string}}}}
    Body: {oneOf: [{$ref: '#/components/schemas/Track'}, {$ref: '#/components/schemas/Identify'}]}
    UpdateThing:
      type: object
      required: [name, keys]
      properties:
        name: {type: string}
        keys: {type: object, additionalProperties: {type: string}}
        tags: {type: array, items: {type: string}}
        description: {type: string, nullable: true}
        seen_at: {type: string, format: date-time, nullable: true}
        traits: {type: object}
        metadata: {type: object, additionalProperties: true, nullable: true}
        shared: {$ref: '#/components/schemas/Shared'}
        body: {$ref: '#/components/schemas/Body'}
paths:
  /things/{thing_id}:
    put:
      operationId: updateThing
      tags: [things]
      parameters:
        - {name: thing_id, in: path, required: true, schema: {type: string}}
      requestBody:
        required: true
        content: {application/json: {schema: {$ref: '#/components/schemas/UpdateThing'}}}
      responses:
        '200':
          content:
            application/json:
              schema: {type: object, properties: {data: {$ref: '#/components/schemas/ResponseOnly'}}}
  /things/{thing_id}/file:
    get:
      operationId: getThingFile
      tags: [things]
      parameters:
        - {name: thing_id, in: path, required: true, schema: {type: string}}
      responses:
        '200':
          content:
            text/csv: {schema: {type: string, format: binary}}
            application/pdf: {schema: {type: string, format: binary}}
"#;

#[test]
fn nullable_optional_request_fields_are_tri_state() {
    let out = generate(&api(BUILDER_DOC)).unwrap();
    let u = file(&out, "models/u.rs");
    assert!(u.contains("pub description: Nullable<String>"), "{u}");
    assert!(u.contains("#[serde(default, skip_serializing_if = \"Nullable::is_absent\")]"));
    assert!(u.contains("pub seen_at: Nullable<time::OffsetDateTime>"));
    assert!(u.contains("with = \"crate::nullable::rfc3339\""));
    assert!(u.contains("pub metadata: Nullable<Traits>"));
    assert!(
        u.contains("let mut f1: Nullable<String> = Nullable::Absent;"),
        "{u}"
    );
    assert!(
        u.contains("\"seen_at\" => f5 = map.next_value::<crate::de::OptDateTime>()?.0.into(),")
    );
    assert!(
        u.contains("pub tags: Option<Vec<String>>"),
        "not nullable: stays an Option"
    );
    // Reached from the request body: tri-state; only in a response: a plain Option.
    assert!(file(&out, "models/s.rs").contains("pub note: Nullable<String>"));
    assert!(file(&out, "models/r.rs").contains("pub note: Option<String>"));
    assert_eq!((out.tri_state_fields, out.tri_state_operations), (4, 1));
    // The round-trip test also sends every tri-state field as an explicit null.
    let rt = &out.files[ROUNDTRIP_TEST];
    assert!(rt.contains("update_thing_nulls: UpdateThing = "), "{rt}");
    assert!(rt.contains("\\\"description\\\":null"), "{rt}");
}

#[test]
fn structs_get_constructors_and_setters() {
    let out = generate_formatted(&api(BUILDER_DOC)).unwrap();
    let u = file(&out, "models/u.rs");
    for expected in [
        // Required fields in the constructor; maps from pairs.
        "pub fn new(\n        keys: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,\n        name: impl Into<String>,\n    ) -> Self {",
        // Optional ones by name.
        "pub fn description(mut self, value: impl Into<String>) -> Self {\n        self.description = Nullable::Value(value.into());",
        "pub fn clear_description(mut self) -> Self {\n        self.description = Nullable::Null;",
        "pub fn tags(mut self, value: impl IntoIterator<Item = impl Into<String>>) -> Self {",
        "pub fn seen_at(mut self, value: time::OffsetDateTime) -> Self {",
        // Free-form objects: pairs, one entry, or anything serializing to an object.
        "value: impl IntoIterator<Item = (impl Into<String>, impl Into<serde_json::Value>)>,",
        "pub fn trait_value(\n        mut self,\n        key: impl Into<String>,\n        value: impl Into<serde_json::Value>,\n    ) -> Self {",
        "pub fn try_traits(\n        mut self,\n        value: impl serde::Serialize,\n    ) -> Result<Self, crate::json::ObjectError> {",
        "pub fn metadata_value(",
        "self.metadata = Nullable::Value(crate::json::to_object(value)?);",
        // Named types through `Into`: a union from one of its members.
        "pub fn body(mut self, value: impl Into<Body>) -> Self {",
    ] {
        assert!(u.contains(expected), "missing {expected:?} in\n{u}");
    }
    let b = file(&out, "models/b.rs");
    assert!(b.contains("impl From<Track> for Body {"), "{b}");
    assert!(b.contains("impl From<Identify> for Body {"));
    // All-optional structs: `Default` and an empty `new`.
    let s = file(&out, "models/s.rs");
    assert!(
        s.contains("pub fn new() -> Self {\n        Self::default()\n    }"),
        "{s}"
    );
    // Request types take a named body as itself.
    let things = file(&out, "schematic/things.rs");
    assert!(
        things.contains(
            "pub fn new(thing_id: impl Into<String>, body: models::UpdateThing) -> Self {"
        ),
        "{things}"
    );
}

#[test]
fn non_json_responses_are_raw_bodies_with_their_media_types() {
    let out = generate(&api(BUILDER_DOC)).unwrap();
    let things = file(&out, "schematic/things.rs");
    assert!(things.contains("type Output = RawBody;"));
    assert!(things.contains("const ACCEPT: &'static str = \"application/pdf, text/csv\";"));
    assert!(things.contains("decode_bytes(status, headers, body)"));
    assert!(
        things.contains(
            "use crate::operation::{Operation, RawBody, decode_bytes, decode_data, json_body};"
        ),
        "{things}"
    );
}

#[test]
fn the_path_parameter_test_covers_every_parameter() {
    let out = generate(&api(BUILDER_DOC)).unwrap();
    let t = &out.files[PATH_PARAM_TEST];
    assert!(t.contains("assert_eq!(CASES.len(), 2);"), "{t}");
    // Other required inputs get valid values from their minimal JSON.
    assert!(t.contains(
        "(\"updateThing\", \"thing_id\", |v| things::UpdateThing::new(v, serde_json::from_str::<models::UpdateThing>("
    ), "{t}");
    assert!(t.contains(
        "(\"getThingFile\", \"thing_id\", |v| things::GetThingFile::new(v).to_request(BASE)),"
    ));
    rustfmt(t).unwrap();
}

#[test]
fn setters_that_would_shadow_methods_are_clear_errors() {
    let doc = BUILDER_DOC.replace("tags: {type: array", "clone: {type: array");
    let err = generate(&api(&doc)).err().expect("a clash");
    assert!(
        err.contains("UpdateThing.clone: the setter `clone` would clash"),
        "{err}"
    );
}
