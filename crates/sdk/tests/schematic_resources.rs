//! Generated resource accessors end to end against `flagwire-mock`: a few
//! groups the emulator serves, per-request options through the `_with`
//! twins, and the typed error of a group it does not emulate.

use std::time::Duration;

use flagwire::Error;
use flagwire::schematic::{Client, RequestOptions};
use flagwire_core::schematic::companies::{CountCompanies, ListUsers};
use flagwire_core::schematic::models::{UpsertCompanyRequestBody, UpsertUserRequestBody};
use flagwire_core::schematic::plans::ListPlans;
use flagwire_core::schematic::webhooks::ListWebhooks;
use flagwire_mock::MockServer;
use http::Method;

fn keys(name: &str, value: &str) -> std::collections::BTreeMap<String, String> {
    [(name.to_owned(), value.to_owned())].into()
}

async fn start() -> (MockServer, Client) {
    let server = MockServer::start().await.unwrap();
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .max_retries(0)
        .build()
        .unwrap();
    (server, client)
}

#[tokio::test]
async fn accessors_of_several_groups_reach_the_emulator() {
    let (server, client) = start().await;

    // `companies`: body-only and path-only operations take their inputs directly.
    let acme = client
        .companies()
        .upsert_company(UpsertCompanyRequestBody::new(keys("id", "acme")))
        .await
        .unwrap();
    let user =
        UpsertUserRequestBody::new(keys("email", "ann@acme.test")).company(keys("id", "acme"));
    let ann = client.companies().upsert_user(user).await.unwrap();
    let fetched = client.companies().get_user(&ann.id).await.unwrap();
    assert_eq!(fetched.id, ann.id);
    let fetched = client
        .companies()
        .get_company(acme.id.clone())
        .await
        .unwrap();
    assert_eq!(fetched.id, acme.id);

    // Operations with optional inputs take the request value.
    let users = client
        .companies()
        .list_users(ListUsers::new().limit(10))
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
    let counted = client
        .companies()
        .count_companies(CountCompanies::new())
        .await
        .unwrap();
    assert_eq!(counted.count, Some(1));

    // `webhooks`: another group, another handle.
    let hooks = client
        .webhooks()
        .list_webhooks(ListWebhooks::new().limit(5))
        .await
        .unwrap();
    assert!(hooks.is_empty());

    let ops: Vec<_> = server.requests().iter().map(|r| r.operation).collect();
    assert_eq!(
        ops,
        [
            Some("upsertCompany"),
            Some("upsertUser"),
            Some("getUser"),
            Some("getCompany"),
            Some("listUsers"),
            Some("countCompanies"),
            Some("listWebhooks"),
        ]
    );
}

#[tokio::test]
async fn with_twins_apply_per_request_options() {
    let (server, client) = start().await;
    let options = RequestOptions::new()
        .timeout(Duration::from_secs(5))
        .header("x-trace", "t-1")
        .unwrap()
        .query("debug", "1");
    client
        .companies()
        .upsert_company_with(UpsertCompanyRequestBody::new(keys("id", "acme")), options)
        .await
        .unwrap();
    let options = RequestOptions::new().header("x-trace", "t-2").unwrap();
    client
        .webhooks()
        .list_webhooks_with(ListWebhooks::new().limit(2), options)
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, Method::POST);
    assert_eq!(requests[0].path, "/companies");
    assert_eq!(requests[0].headers["x-trace"], "t-1");
    assert_eq!(requests[0].query.as_deref(), Some("debug=1"));
    assert_eq!(requests[1].path, "/webhooks");
    assert_eq!(requests[1].headers["x-trace"], "t-2");
    assert_eq!(requests[1].query.as_deref(), Some("limit=2"));
}

#[tokio::test]
async fn groups_the_emulator_lacks_answer_a_typed_501() {
    let (server, client) = start().await;
    let err = client
        .plans()
        .list_plans(ListPlans::new())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Api { status, .. } if status == 501),
        "{err:?}"
    );
    let err = client
        .plans()
        .delete_plan_with("plan_1", RequestOptions::new().max_retries(0))
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(http::StatusCode::NOT_IMPLEMENTED),
        "{err:?}"
    );
    let paths: Vec<_> = server
        .requests()
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        paths,
        [
            (Method::GET, "/plans".to_owned()),
            (Method::DELETE, "/plans/plan_1".to_owned())
        ]
    );
}

#[tokio::test]
async fn offline_clients_refuse_accessor_calls() {
    let client = Client::builder("sch_dev_x").offline(true).build().unwrap();
    let err = client
        .credits()
        .list_billing_credits(Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Offline), "{err:?}");
}
