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

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let server = MockServer::start().await.unwrap();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let req = http::Request::get(format!("{}/companies/count", server.rest_url()))
        .header("x-schematic-api-key", server.api_key())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["data"]["count"], 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_and_checks_stay_consistent() {
    let server = MockServer::start().await.unwrap();
    server
        .create_flag(json!({"key": "f", "name": "f", "description": "", "flag_type": "boolean", "default_value": true}))
        .unwrap();
    let api = Api::rest(&server);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                for j in 0..10 {
                    let keys = json!({"id": format!("c{i}-{j}")});
                    data(
                        api.post("/companies", json!({"keys": keys, "traits": {"n": j}}))
                            .await,
                        200,
                    );
                    data(
                        api.post(
                            "/company-traits",
                            json!({"keys": {"id": "shared"}, "trait": "hits", "incr": 1}),
                        )
                        .await,
                        200,
                    );
                    let check = data(
                        api.post("/flags/f/check", json!({"company": keys})).await,
                        200,
                    );
                    assert_eq!(check["value"], true);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(data(api.get("/companies/count").await, 200)["count"], 161);
    assert_eq!(
        server.company_by_key("id", "shared").unwrap()["traits"]["hits"],
        160
    );
    server.stop().await;
}

#[tokio::test]
async fn stop_lets_in_flight_requests_finish() {
    use flagwire_mock::{Fault, Host};
    use std::time::Duration;

    let server = MockServer::start().await.unwrap();
    server
        .inject(
            Host::Rest,
            http::Method::GET,
            "/companies",
            [Fault::Delay(Duration::from_millis(200))],
        )
        .unwrap();
    let api = Api::rest(&server);
    let in_flight = tokio::spawn(async move { api.get("/companies").await.status });
    // The fault is consumed when the request arrives; then it is in flight.
    for _ in 0..500 {
        if server.pending_faults() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.pending_faults(), 0);
    let addr = server.rest_addr();
    server.stop().await;
    assert_eq!(in_flight.await.unwrap(), 200);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn debug_output_hides_secrets() {
    let builder = MockServer::builder()
        .api_key("sch_dev_topsecret")
        .webhook_secret("whsec_topsecret");
    assert!(!format!("{builder:?}").contains("topsecret"));
    let server = builder.start().await.unwrap();
    let shown = format!("{server:?}");
    assert!(!shown.contains("topsecret"), "{shown}");
    assert!(shown.contains(&server.rest_addr().to_string()));
    server.stop().await;
}

#[tokio::test]
async fn reset_empties_state_but_keeps_configuration() {
    let server = MockServer::builder().api_key("k").start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    server
        .create_flag(json!({"key": "f", "name": "f", "description": "", "flag_type": "boolean", "default_value": true}))
        .unwrap();
    server
        .inject(
            flagwire_mock::Host::Rest,
            http::Method::GET,
            "/flags",
            [flagwire_mock::Fault::status(500)],
        )
        .unwrap();
    let api = Api::new(server.rest_url(), Some("k"));
    data(api.get("/companies").await, 200);
    server.reset();
    assert!(server.companies().is_empty());
    assert!(server.flags().is_empty());
    assert!(server.requests().is_empty());
    assert_eq!(server.pending_faults(), 0);
    assert_eq!(data(api.get("/flags/count").await, 200)["count"], 0);
    // IDs start over, and the server keeps working.
    let c = server
        .upsert_company(json!({"keys": {"id": "globex"}}))
        .unwrap();
    assert!(c["id"].as_str().unwrap().starts_with("comp_"));
    server.stop().await;
}
