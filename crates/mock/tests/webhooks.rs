//! Webhook endpoints: CRUD over HTTP and signed deliveries on changes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Api, data, error};
use flagwire_mock::{MockServer, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use flagwire_webhooks::SchematicVerifier;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// A received delivery: headers of interest and the raw body.
#[derive(Debug, Clone)]
struct Received {
    signature: String,
    timestamp: String,
    body: Bytes,
}

/// Verifies a delivery with `flagwire-webhooks`, as a receiving app would.
fn verify(secret: &str, r: &Received) -> Result<(), flagwire_webhooks::Error> {
    let verifier = SchematicVerifier::builder().secret(secret).build()?;
    let headers = [
        (SIGNATURE_HEADER, r.signature.as_str()),
        (TIMESTAMP_HEADER, r.timestamp.as_str()),
    ];
    verifier.verify(&headers, &r.body).map(|_| ())
}

/// A webhook receiver on loopback that answers with the scripted statuses
/// (then 200) and keeps what it receives.
async fn receiver(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(statuses));
    let store = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let store = store.clone();
                    let script = script.clone();
                    async move {
                        let header = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let (signature, timestamp) =
                            (header(SIGNATURE_HEADER), header(TIMESTAMP_HEADER));
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        store.lock().unwrap().push(Received {
                            signature,
                            timestamp,
                            body,
                        });
                        let status = {
                            let mut s = script.lock().unwrap();
                            if s.is_empty() { 200 } else { s.remove(0) }
                        };
                        let mut resp = Response::new(Full::new(Bytes::new()));
                        *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (url, got)
}

#[tokio::test]
async fn webhook_crud() {
    let server = MockServer::builder()
        .webhook_secret("whsec_fixed")
        .start()
        .await
        .unwrap();
    let api = Api::rest(&server);
    let w = data(
        api.post("/webhooks", json!({"name": "ops", "url": "http://127.0.0.1:9/x", "request_types": ["company.created"]}))
            .await,
        201,
    );
    assert_eq!(w["secret"], "whsec_fixed");
    assert_eq!(w["status"], "active");
    let id = w["id"].as_str().unwrap();
    assert_eq!(
        data(api.get(&format!("/webhooks/{id}")).await, 200)["name"],
        "ops"
    );
    let upd = data(
        api.put(
            &format!("/webhooks/{id}"),
            json!({"status": "inactive", "name": "ops2"}),
        )
        .await,
        200,
    );
    assert_eq!(upd["status"], "inactive");
    assert_eq!(upd["url"], "http://127.0.0.1:9/x");
    assert_eq!(
        data(api.get("/webhooks?q=ops2").await, 200)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(data(api.get("/webhooks/count").await, 200)["count"], 1);
    error(
        api.post(
            "/webhooks",
            json!({"name": "x", "url": "ftp://x", "request_types": []}),
        )
        .await,
        400,
    );
    error(
        api.post(
            "/webhooks",
            json!({"name": "x", "url": "http://x", "request_types": ["nope"]}),
        )
        .await,
        400,
    );
    error(
        api.post(
            "/webhooks",
            json!({"name": "", "url": "http://x", "request_types": []}),
        )
        .await,
        400,
    );
    error(
        api.put(&format!("/webhooks/{id}"), json!({"status": "paused"}))
            .await,
        400,
    );
    assert_eq!(
        data(api.delete(&format!("/webhooks/{id}")).await, 200)["deleted"],
        true
    );
    error(api.get(&format!("/webhooks/{id}")).await, 404);
    server.stop().await;
}

#[tokio::test]
async fn deliveries_are_signed_and_follow_subscriptions() {
    let (url, got) = receiver(vec![]).await;
    let server = MockServer::builder()
        .webhook_secret("whsec_test")
        .start()
        .await
        .unwrap();
    let api = Api::rest(&server);
    data(
        api.post(
            "/webhooks",
            json!({"name": "w", "url": url, "request_types": ["company.created", "company.updated", "flag.created", "flag_rules.updated"]}),
        )
        .await,
        201,
    );
    data(
        api.post(
            "/companies",
            json!({"keys": {"id": "acme"}, "name": "Acme"}),
        )
        .await,
        200,
    );
    data(
        api.post(
            "/companies",
            json!({"keys": {"id": "acme"}, "name": "Acme Inc"}),
        )
        .await,
        200,
    );
    // Not subscribed: no delivery.
    data(
        api.post("/users", json!({"keys": {"email": "a@b.c"}}))
            .await,
        200,
    );
    let flag = data(
        api.post("/flags", json!({"key": "beta", "name": "Beta", "description": "", "flag_type": "boolean", "default_value": false}))
            .await,
        201,
    );
    data(
        api.put(
            &format!("/flags/{}/rules", flag["id"].as_str().unwrap()),
            json!({"rules": [{"name": "all", "priority": 1, "value": true, "conditions": [], "condition_groups": []}]}),
        )
        .await,
        200,
    );

    let deliveries = server.wait_for_deliveries(4, Duration::from_secs(5)).await;
    let actions: Vec<&str> = deliveries.iter().map(|d| d.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "company.created",
            "company.updated",
            "flag.created",
            "flag_rules.updated"
        ]
    );
    assert!(deliveries.iter().all(|d| d.succeeded() && d.attempts == 1));

    // The webhook-events API shows the same deliveries.
    let events = data(api.get("/webhook-events").await, 200);
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[0]["request_type"], "flag_rules.updated",
        "newest first"
    );
    assert!(
        events
            .iter()
            .all(|e| e["status"] == "success" && e["response_code"] == 200)
    );
    let one = data(
        api.get(&format!(
            "/webhook-events/{}",
            events[3]["id"].as_str().unwrap()
        ))
        .await,
        200,
    );
    assert_eq!(one["request_type"], "company.created");
    assert_eq!(one["webhook"]["name"], "w");
    let payload: Value = serde_json::from_str(one["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["action"], "company.created");
    assert_eq!(
        data(api.get("/webhook-events/count?q=company").await, 200)["count"],
        2
    );
    error(api.get("/webhook-events/whe_nope").await, 404);

    let received = got.lock().unwrap().clone();
    assert_eq!(received.len(), 4);
    for r in &received {
        verify("whsec_test", r).unwrap();
        assert!(verify("whsec_other", r).is_err());
        assert_eq!(r.signature.len(), 64);
        assert!(r.timestamp.parse::<i64>().unwrap() > 1_600_000_000);
    }
    let first: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(first["action"], "company.created");
    assert_eq!(first["object_type"], "company");
    assert_eq!(first["body"]["name"], "Acme");
    assert_eq!(first["company_id"], first["body"]["id"]);
    assert!(first["account_id"].is_string() && first["environment_id"].is_string());
    let second: Value = serde_json::from_slice(&received[1].body).unwrap();
    assert_eq!(second["body"]["name"], "Acme Inc");
    server.stop().await;
}

#[tokio::test]
async fn failed_deliveries_are_retried_and_test_sends() {
    let (url, got) = receiver(vec![500, 503]).await;
    let server = MockServer::builder()
        .webhook_retries(2, Duration::from_millis(5))
        .start()
        .await
        .unwrap();
    let api = Api::rest(&server);
    let w = data(
        api.post(
            "/webhooks",
            json!({"name": "w", "url": url, "request_types": ["company.deleted"]}),
        )
        .await,
        201,
    );
    let secret = w["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let c = data(
        api.post("/companies", json!({"keys": {"id": "acme"}}))
            .await,
        200,
    );
    data(
        api.delete(&format!("/companies/{}", c["id"].as_str().unwrap()))
            .await,
        200,
    );
    let d = server.wait_for_deliveries(1, Duration::from_secs(5)).await;
    assert_eq!(d[0].action, "company.deleted");
    assert_eq!(d[0].attempts, 3);
    assert!(d[0].succeeded());
    assert_eq!(got.lock().unwrap().len(), 3);

    let t = data(
        api.post(
            &format!("/webhooks/{}/test", w["id"].as_str().unwrap()),
            json!({"request_type": "test.send"}),
        )
        .await,
        200,
    );
    assert_eq!(t["success"], true);
    let d = server.wait_for_deliveries(2, Duration::from_secs(5)).await;
    assert_eq!(d[1].action, "test.send");
    let last = got.lock().unwrap().last().unwrap().clone();
    verify(&secret, &last).unwrap();
    error(
        api.post(
            "/webhooks/wh_nope/test",
            json!({"request_type": "test.send"}),
        )
        .await,
        404,
    );
    error(
        api.post(
            &format!("/webhooks/{}/test", w["id"].as_str().unwrap()),
            json!({"request_type": "x"}),
        )
        .await,
        400,
    );

    // An unreachable endpoint is recorded as failed after its attempts.
    let dead = MockServer::builder()
        .webhook_retries(1, Duration::from_millis(1))
        .start()
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/x", listener.local_addr().unwrap());
    drop(listener);
    dead.create_webhook(
        json!({"name": "d", "url": dead_url, "request_types": ["company.created"]}),
    )
    .unwrap();
    dead.upsert_company(json!({"keys": {"id": "x"}})).unwrap();
    let d = dead.wait_for_deliveries(1, Duration::from_secs(5)).await;
    assert_eq!(d[0].attempts, 2);
    assert!(!d[0].succeeded());
    assert!(d[0].error.is_some());
    dead.stop().await;
    server.stop().await;
}
