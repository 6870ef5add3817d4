//! Property tests: arbitrary bodies and queries on every route never panic,
//! and every failure is a 4xx with an `{"error"}` message.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::faults::Host;
use crate::server::{Ctx, DEFAULT_API_KEY, Inner};
use crate::util::Query;

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/companies"),
    ("POST", "/companies"),
    ("GET", "/companies/count"),
    ("POST", "/companies/create"),
    ("POST", "/companies/delete"),
    ("GET", "/companies/lookup"),
    ("GET", "/companies/comp_00000000001"),
    ("DELETE", "/companies/comp_00000000001"),
    ("POST", "/company-traits"),
    ("GET", "/company-memberships"),
    ("POST", "/company-memberships"),
    ("GET", "/entity-trait-definitions"),
    ("POST", "/entity-trait-definitions"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("POST", "/users/create"),
    ("POST", "/user-traits"),
    ("POST", "/features"),
    ("PUT", "/features/feat_00000000001"),
    ("POST", "/flags"),
    ("PUT", "/flags/flag_00000000001"),
    ("PUT", "/flags/flag_00000000001/rules"),
    ("POST", "/flags/f/check"),
    ("POST", "/flags/check"),
    ("POST", "/flags/check-bulk"),
    ("POST", "/events"),
    ("GET", "/events"),
    ("POST", "/event-batch"),
    ("POST", "/webhooks"),
    ("PUT", "/webhooks/wh_00000000001"),
    ("POST", "/webhooks/wh_00000000001/test"),
    ("GET", "/webhook-events"),
];

const FIELDS: &[&str] = &[
    "keys",
    "id",
    "name",
    "traits",
    "update_only",
    "remove_keys",
    "company",
    "companies",
    "company_id",
    "company_ids",
    "trait",
    "set",
    "incr",
    "key",
    "description",
    "flag_type",
    "default_value",
    "feature_type",
    "flag",
    "rules",
    "priority",
    "value",
    "rule_type",
    "conditions",
    "condition_groups",
    "condition_type",
    "operator",
    "resource_ids",
    "trait_id",
    "event_subtype",
    "metric_value",
    "preflight",
    "usage",
    "event_usage",
    "quantity",
    "credit_cost",
    "contexts",
    "event_type",
    "body",
    "event",
    "events",
    "idempotency_key",
    "sent_at",
    "url",
    "request_types",
    "status",
    "request_type",
    "hierarchy",
    "entity_type",
    "trait_type",
    "user_id",
    "api_key",
    "type",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z_]{0,8}".prop_map(Value::String),
        prop::sample::select(vec![
            "track",
            "identify",
            "company.created",
            "eq",
            "metric",
            "trait",
            "boolean",
            "http://127.0.0.1:9/x",
            "2026-01-02T03:04:05Z"
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        json_value().prop_map(|v| Bytes::from(serde_json::to_vec(&v).unwrap_or_default())),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
    ]
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop::option::of(
        "(limit|offset|q|ids|ids\\[\\]|keys\\[id\\]|company_id|entity_type|event_types|%zz|[a-z]{1,3})=[a-z0-9%+-]{0,6}(&(limit|offset|q)=[0-9a-z-]{0,4})?",
    )
}

fn run(inner: &Inner, host: Host, method: &str, path: &str, query: Option<&str>, body: &Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-schematic-api-key",
        HeaderValue::from_static(DEFAULT_API_KEY),
    );
    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
    let ctx = Ctx {
        inner,
        method: &method,
        path,
        query: Query::parse(query),
        headers: &headers,
        body,
        remote: SocketAddr::from(([127, 0, 0, 1], 1)),
    };
    let out = match host {
        Host::Rest => crate::schematic::dispatch(&ctx),
        Host::Capture => crate::schematic::capture::dispatch(&ctx),
    };
    match out.result {
        Ok(reply) => {
            let v: Value = serde_json::from_slice(&reply.body).expect("replies are JSON");
            assert!(v.is_object());
        }
        Err(f) => {
            assert!(
                f.status.is_client_error(),
                "{method} {path}: {} {}",
                f.status,
                f.message
            );
            assert!(!f.message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_requests_never_panic(body in body(), query in query()) {
        let inner = Inner::for_tests();
        // Some state, so that handlers get past their lookups.
        inner.mutate(|s| {
            let body: crate::schematic::requests::UpsertCompany =
                serde_json::from_value(serde_json::json!({"keys": {"id": "acme"}})).unwrap();
            crate::schematic::apply_upsert_company(s, &body, false).unwrap();
        });
        for (method, path) in ROUTES {
            run(&inner, Host::Rest, method, path, query.as_deref(), &body);
        }
        run(&inner, Host::Capture, "POST", "/batch", None, &body);
        run(&inner, Host::Rest, "GET", "/%ff%fe/x", query.as_deref(), &body);
    }
}
