//! Every emulated operation driven through the generated request types and
//! `Operation` implementations of `flagwire-core`, with responses decoded into
//! the generated response types (so the emulator's wire shapes are checked
//! against the platform description).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use flagwire_core::schematic::companies::{
    CountCompanies, CountEntityTraitDefinitions, CountUsers, CreateCompany, CreateUser,
    DeleteCompany, DeleteCompanyByKeys, DeleteCompanyMembership, DeleteUser, DeleteUserByKeys,
    GetCompany, GetEntityTraitDefinition, GetOrCreateCompanyMembership,
    GetOrCreateEntityTraitDefinition, GetUser, ListCompanies, ListCompanyMemberships,
    ListEntityTraitDefinitions, ListUsers, LookupCompany, LookupUser, UpsertCompany,
    UpsertCompanyTrait, UpsertUser, UpsertUserTrait,
};
use flagwire_core::schematic::events::{CreateEvent, CreateEventBatch, GetEvent, ListEvents};
use flagwire_core::schematic::features::{
    CheckFlag, CheckFlags, CheckFlagsBulk, CountFeatures, CountFlags, CreateFeature, CreateFlag,
    DeleteFeature, DeleteFlag, GetFeature, GetFlag, ListFeatures, ListFlags, UpdateFeature,
    UpdateFlag, UpdateFlagRules,
};
use flagwire_core::schematic::webhooks::{
    CountWebhookEvents, CountWebhooks, CreateWebhook, DeleteWebhook, GetWebhook, GetWebhookEvent,
    ListWebhookEvents, ListWebhooks, SendTestWebhookAction, UpdateWebhook,
};
use flagwire_core::{ApiError, Operation};
use flagwire_mock::MockServer;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

struct Sdk {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    key: String,
}

impl Sdk {
    fn new(server: &MockServer) -> Sdk {
        Sdk {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: server.rest_url(),
            key: server.api_key().to_owned(),
        }
    }

    async fn call<O: Operation>(&self, op: O) -> Result<O::Output, ApiError> {
        let req = op.to_request(&self.base).expect("encodable request");
        let (mut parts, body) = req.into_parts();
        parts
            .headers
            .insert("x-schematic-api-key", self.key.parse().unwrap());
        let resp = self
            .client
            .request(http::Request::from_parts(parts, Full::new(body)))
            .await
            .expect("transport");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        O::parse_response(status, &headers, &body)
    }

    async fn ok<O: Operation>(&self, op: O) -> O::Output {
        let id = O::OPERATION_ID;
        self.call(op)
            .await
            .unwrap_or_else(|e| panic!("{id} failed: {e:?}"))
    }
}

/// A generated model from its JSON form.
fn model<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid model JSON")
}

fn keys(k: &str, v: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(k.to_owned(), v.to_owned())])
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

#[tokio::test]
async fn companies_users_and_traits() {
    let server = MockServer::start().await.unwrap();
    let sdk = Sdk::new(&server);

    let acme = sdk
        .ok(UpsertCompany::new(model(
            json!({"keys": {"id": "acme"}, "name": "Acme", "traits": {"seats": 3}}),
        )))
        .await;
    let acme = to_json(&acme);
    let acme_id = acme["id"].as_str().unwrap().to_owned();
    let created = sdk
        .ok(CreateCompany::new(model(json!({"keys": {"id": "globex"}}))))
        .await;
    assert_eq!(to_json(&created)["keys"][0]["value"], "globex");
    assert_eq!(
        to_json(&sdk.ok(GetCompany::new(&acme_id)).await)["name"],
        "Acme"
    );
    assert_eq!(
        to_json(&sdk.ok(LookupCompany::new(keys("id", "acme"))).await)["id"],
        acme_id.as_str()
    );
    let mut list = ListCompanies::new();
    list.q = Some("acm".into());
    assert_eq!(sdk.ok(list).await.len(), 1);
    assert_eq!(to_json(&sdk.ok(CountCompanies::new()).await)["count"], 2);
    let traited = sdk
        .ok(UpsertCompanyTrait::new(model(
            json!({"keys": {"id": "acme"}, "trait": "seats", "incr": 2}),
        )))
        .await;
    assert_eq!(to_json(&traited)["traits"]["seats"], 5);

    let ann = sdk
        .ok(UpsertUser::new(model(
            json!({"keys": {"email": "ann@acme.io"}, "name": "Ann", "company_id": acme_id}),
        )))
        .await;
    let ann = to_json(&ann);
    let ann_id = ann["id"].as_str().unwrap().to_owned();
    assert_eq!(
        ann["company_memberships"][0]["company_id"],
        acme_id.as_str()
    );
    sdk.ok(CreateUser::new(model(
        json!({"keys": {"email": "bob@acme.io"}}),
    )))
    .await;
    assert_eq!(to_json(&sdk.ok(GetUser::new(&ann_id)).await)["name"], "Ann");
    assert_eq!(
        to_json(&sdk.ok(LookupUser::new(keys("email", "ann@acme.io"))).await)["id"],
        ann_id.as_str()
    );
    let mut users = ListUsers::new();
    users.company_id = Some(acme_id.clone());
    assert_eq!(sdk.ok(users).await.len(), 1);
    assert_eq!(to_json(&sdk.ok(CountUsers::new()).await)["count"], 2);
    let ut = sdk
        .ok(UpsertUserTrait::new(model(
            json!({"keys": {"email": "ann@acme.io"}, "trait": "role", "set": "admin"}),
        )))
        .await;
    assert_eq!(to_json(&ut)["traits"]["role"], "admin");

    let globex_id = to_json(&created)["id"].as_str().unwrap().to_owned();
    let m = sdk
        .ok(GetOrCreateCompanyMembership::new(model(
            json!({"company_id": globex_id, "user_id": ann_id}),
        )))
        .await;
    let mut ms = ListCompanyMemberships::new();
    ms.user_id = Some(ann_id.clone());
    assert_eq!(sdk.ok(ms).await.len(), 2);
    sdk.ok(DeleteCompanyMembership::new(
        to_json(&m)["id"].as_str().unwrap(),
    ))
    .await;

    let defs = sdk.ok(ListEntityTraitDefinitions::new()).await;
    assert_eq!(defs.len(), 2);
    let def = sdk
        .ok(GetOrCreateEntityTraitDefinition::new(model(
            json!({"entity_type": "company", "hierarchy": ["renews_at"], "trait_type": "date"}),
        )))
        .await;
    let def_id = to_json(&def)["id"].as_str().unwrap().to_owned();
    assert_eq!(
        to_json(&sdk.ok(GetEntityTraitDefinition::new(&def_id)).await)["trait_type"],
        "date"
    );
    assert_eq!(
        to_json(&sdk.ok(CountEntityTraitDefinitions::new()).await)["count"],
        3
    );

    let by_keys = sdk
        .ok(DeleteUserByKeys::new(model(
            json!({"keys": {"email": "bob@acme.io"}}),
        )))
        .await;
    assert!(
        to_json(&by_keys)["id"]
            .as_str()
            .unwrap()
            .starts_with("user_")
    );
    assert_eq!(
        to_json(&sdk.ok(DeleteUser::new(&ann_id)).await)["deleted"],
        true
    );
    sdk.ok(DeleteCompanyByKeys::new(model(
        json!({"keys": {"id": "globex"}}),
    )))
    .await;
    assert_eq!(
        to_json(&sdk.ok(DeleteCompany::new(&acme_id)).await)["deleted"],
        true
    );

    // Errors decode as typed status errors carrying the API message.
    let err = sdk.call(GetCompany::new(&acme_id)).await.unwrap_err();
    assert_eq!(err.status(), 404);
    assert_eq!(err.message(), Some("company not found"));
    server.stop().await;
}

#[tokio::test]
async fn features_flags_rules_and_checks() {
    let server = MockServer::start().await.unwrap();
    let sdk = Sdk::new(&server);
    sdk.ok(UpsertCompany::new(model(json!({"keys": {"id": "acme"}}))))
        .await;

    let feature = sdk
        .ok(CreateFeature::new(model(
            json!({"name": "Exports", "description": "", "feature_type": "event",
                                             "event_subtype": "export"}),
        )))
        .await;
    let feature_id = to_json(&feature)["id"].as_str().unwrap().to_owned();
    sdk.ok(UpdateFeature::new(
        &feature_id,
        model(json!({"description": "CSV exports"})),
    ))
    .await;
    assert_eq!(
        to_json(&sdk.ok(GetFeature::new(&feature_id)).await)["description"],
        "CSV exports"
    );
    assert_eq!(sdk.ok(ListFeatures::new()).await.len(), 1);
    assert_eq!(to_json(&sdk.ok(CountFeatures::new()).await)["count"], 1);

    let flag_body = json!({"key": "exports", "name": "Exports", "description": "", "flag_type": "boolean",
                           "default_value": false, "feature_id": feature_id});
    let flag = sdk.ok(CreateFlag::new(model(flag_body.clone()))).await;
    let flag_id = to_json(&flag)["id"].as_str().unwrap().to_owned();
    let mut renamed = flag_body.clone();
    renamed["name"] = json!("CSV exports");
    sdk.ok(UpdateFlag::new(&flag_id, model(renamed))).await;
    assert_eq!(
        to_json(&sdk.ok(GetFlag::new(&flag_id)).await)["name"],
        "CSV exports"
    );
    assert_eq!(sdk.ok(ListFlags::new()).await.len(), 1);
    assert_eq!(to_json(&sdk.ok(CountFlags::new()).await)["count"], 1);
    let rules = sdk
        .ok(UpdateFlagRules::new(
            &flag_id,
            model(json!({"rules": [{
                "name": "under 3 exports", "priority": 1, "value": true, "rule_type": "plan_entitlement",
                "conditions": [{"condition_type": "metric", "operator": "lt", "resource_ids": [],
                                "event_subtype": "export", "metric_value": 3, "metric_period": "all_time"}],
                "condition_groups": []
            }]})),
        ))
        .await;
    assert_eq!(to_json(&rules)["rules"][0]["rule_type"], "plan_entitlement");

    let ctx = json!({"company": {"id": "acme"}});
    let one = sdk.ok(CheckFlag::new("exports", model(ctx.clone()))).await;
    assert_eq!(to_json(&one)["value"], true);
    for _ in 0..3 {
        sdk.ok(CreateEvent::new(model(json!({"event_type": "track",
            "body": {"event": "export", "company": {"id": "acme"}}}))))
            .await;
    }
    let one = to_json(&sdk.ok(CheckFlag::new("exports", model(ctx.clone()))).await);
    assert_eq!(one["value"], false);
    let all = to_json(&sdk.ok(CheckFlags::new(model(ctx.clone()))).await);
    assert_eq!(all["flags"][0]["flag"], "exports");
    let bulk = to_json(
        &sdk.ok(CheckFlagsBulk::new(model(json!({"contexts": [ctx, {}]}))))
            .await,
    );
    assert_eq!(bulk["data"].as_array().unwrap().len(), 2);

    assert_eq!(
        to_json(&sdk.ok(DeleteFlag::new(&flag_id)).await)["deleted"],
        true
    );
    assert_eq!(
        to_json(&sdk.ok(DeleteFeature::new(&feature_id)).await)["deleted"],
        true
    );
    server.stop().await;
}

#[tokio::test]
async fn events_and_webhooks() {
    let server = MockServer::start().await.unwrap();
    let sdk = Sdk::new(&server);
    let raw = sdk
        .ok(CreateEvent::new(model(json!({"event_type": "identify",
            "body": {"keys": {"email": "ann@acme.io"}, "company": {"keys": {"id": "acme"}, "name": "Acme"}}}))))
        .await;
    let event_id = to_json(&raw)["event_id"].as_str().unwrap().to_owned();
    let batch = sdk
        .ok(CreateEventBatch::new(model(json!({"events": [
            {"event_type": "track", "body": {"event": "login", "company": {"id": "acme"}}},
            {"event_type": "flag_check", "body": {"flag_key": "f", "value": true, "reason": "r"}}
        ]}))))
        .await;
    assert_eq!(to_json(&batch)["events"].as_array().unwrap().len(), 2);
    assert_eq!(sdk.ok(ListEvents::new()).await.len(), 3);
    assert_eq!(
        to_json(&sdk.ok(GetEvent::new(&event_id)).await)["type"],
        "identify"
    );

    // A webhook pointing at a closed port: deliveries fail, and are logged.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    drop(listener);
    let hook = sdk
        .ok(CreateWebhook::new(model(
            json!({"name": "ops", "url": url, "request_types": ["company.updated"]}),
        )))
        .await;
    let hook_id = to_json(&hook)["id"].as_str().unwrap().to_owned();
    sdk.ok(UpdateWebhook::new(
        &hook_id,
        model(json!({"name": "ops-2"})),
    ))
    .await;
    assert_eq!(
        to_json(&sdk.ok(GetWebhook::new(&hook_id)).await)["name"],
        "ops-2"
    );
    assert_eq!(sdk.ok(ListWebhooks::new()).await.len(), 1);
    assert_eq!(to_json(&sdk.ok(CountWebhooks::new()).await)["count"], 1);
    let test = sdk
        .ok(SendTestWebhookAction::new(
            &hook_id,
            model(json!({"request_type": "test.send"})),
        ))
        .await;
    assert_eq!(to_json(&test)["success"], true);
    let events = sdk.ok(ListWebhookEvents::new()).await;
    assert_eq!(events.len(), 1);
    let whe = to_json(&events[0])["id"].as_str().unwrap().to_owned();
    assert_eq!(
        to_json(&sdk.ok(GetWebhookEvent::new(&whe)).await)["request_type"],
        "test.send"
    );
    assert_eq!(
        to_json(&sdk.ok(CountWebhookEvents::new()).await)["count"],
        1
    );
    sdk.ok(DeleteWebhook::new(&hook_id)).await;
    server.wait_for_deliveries(1, Duration::from_secs(5)).await;
    server.stop().await;
}
