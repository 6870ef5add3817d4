//! Server lifecycle, routing fallbacks, inspection, seeding and the blocking
//! handle.

mod common;

use common::{Api, data, error};
use flagwire_mock::{MockError, MockServer, Seed};
use serde_json::json;

#[tokio::test]
async fn not_emulated_and_unknown_routes() {
    let server = MockServer::start().await.unwrap();
    let api = Api::rest(&server);
    let msg = error(api.get("/plans").await, 501);
    assert_eq!(msg, "not emulated: listPlans");
    let msg = error(api.get("/billing/products/count").await, 501);
    assert_eq!(msg, "not emulated: countBillingProducts");
    error(api.get("/no/such/route/at/all/here/x").await, 404);
    error(api.get("/nope").await, 404);
    assert!(flagwire_mock::emulated_operations().contains(&"checkFlag"));
    server.stop().await;
}

#[tokio::test]
async fn seeds_and_helpers() {
    let seed = Seed::from_json(
        r#"{
        "features": [{"name": "Reports", "description": "", "feature_type": "boolean",
                      "flag": {"key": "reports", "name": "Reports", "description": "", "flag_type": "boolean", "default_value": false}}],
        "flags": [{"key": "beta", "name": "Beta", "description": "", "flag_type": "boolean", "default_value": true,
                   "rules": [{"name": "r", "priority": 1, "value": false, "conditions": [], "condition_groups": []}]}],
        "companies": [{"keys": {"id": "acme"}, "name": "Acme"}],
        "users": [{"keys": {"email": "a@acme.io"}, "company": {"id": "acme"}}],
        "webhooks": [{"name": "w", "url": "http://127.0.0.1:9/hook", "request_types": ["company.updated"]}],
        "events": [{"event_type": "track", "body": {"event": "login", "company": {"id": "acme"}}}]
    }"#,
    )
    .unwrap();
    let server = MockServer::builder().seed(seed).start().await.unwrap();
    assert_eq!(server.features().len(), 1);
    assert_eq!(server.features()[0]["flags"][0]["key"], "reports");
    assert_eq!(server.flags().len(), 2);
    assert_eq!(
        server.flag_by_key("beta").unwrap()["rules"][0]["rule_type"],
        "standard"
    );
    assert_eq!(server.users().len(), 1);
    assert_eq!(server.webhooks().len(), 1);
    assert_eq!(server.events().len(), 1);

    server
        .upsert_company(json!({"keys": {"id": "globex"}}))
        .unwrap();
    assert_eq!(server.companies().len(), 2);
    assert_eq!(
        server.companies()[0]["keys"][0]["value"],
        "globex",
        "newest first"
    );
    server.track(&[("id", "globex")], "login", 4).unwrap();
    assert!(server.track(&[("id", "nobody")], "login", 1).is_err());

    let err = server.upsert_company(json!({"keys": {}})).unwrap_err();
    assert!(matches!(err, MockError::Seed(_)), "{err}");
    let err = Seed::from_json(r#"{"planz": []}"#).unwrap_err();
    assert!(err.to_string().contains("planz"));
    let bad = Seed::from_json(r#"{"companies": [{"keys": {"id": "x"}}, {"name": 3}]}"#).unwrap();
    let err = server.apply_seed(&bad).unwrap_err();
    assert!(err.to_string().contains("companies[1]"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn drop_stops_the_server() {
    let server = MockServer::start().await.unwrap();
    let addr = server.rest_addr();
    drop(server);
    // The listener closes shortly after the handle is dropped.
    let mut closed = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(closed);
}

#[test]
fn blocking_server_works_from_sync_code() {
    let server = MockServer::builder().api_key("k").start_blocking().unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let url = server.rest_url();
    // Use the server from another runtime, as a blocking client test would.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let count = rt.block_on(async {
        let api = Api::new(url, Some("k"));
        data(api.get("/companies/count").await, 200)["count"].clone()
    });
    assert_eq!(count, 1);
    server.stop();

    // Dropping (even inside an async context) does not hang or panic.
    let server = MockServer::start_blocking().unwrap();
    rt.block_on(async move { drop(server) });
}
