//! Throughput of `POST /flags/{key}/check` over loopback HTTP/1.1 keep-alive.
//!
//! The server and the client share one 2-worker Tokio runtime, so the figure
//! includes the client's cost. Each criterion iteration is one request; the
//! requests of a sample are spread over `CONCURRENCY` client tasks on pooled
//! keep-alive connections, so the reported throughput is requests per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flagwire_mock::MockServer;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

const CONCURRENCY: u64 = 32;

fn seed(server: &MockServer) {
    server
        .upsert_company(json!({"keys": {"id": "acme"}, "traits": {"seats": 25, "tier": "gold"}}))
        .unwrap();
    server
        .create_flag(
            json!({"key": "big-accounts", "name": "Big accounts", "description": "",
                            "flag_type": "boolean", "default_value": false}),
        )
        .unwrap();
    let seats = server.companies()[0]["entity_traits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["definition"]["hierarchy"][0] == "seats")
        .unwrap()["definition_id"]
        .clone();
    server
        .set_flag_rules(
            "big-accounts",
            json!([{"name": "20+ seats", "priority": 1, "value": true, "conditions": [
                {"condition_type": "trait", "operator": "gte", "resource_ids": [],
                 "trait_id": seats, "trait_value": "20"}
            ], "condition_groups": []}]),
        )
        .unwrap();
}

fn bench_check(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("mock");
    group.throughput(Throughput::Elements(1));
    for (name, record) in [("check", 10_000), ("check_unrecorded", 0)] {
        let server = rt.block_on(async {
            MockServer::builder()
                .record_requests(record)
                .start()
                .await
                .unwrap()
        });
        seed(&server);
        let uri: http::Uri = format!("{}/flags/big-accounts/check", server.rest_url())
            .parse()
            .unwrap();
        let key = server.api_key().to_owned();
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(CONCURRENCY as usize)
            .build_http();
        let body = Bytes::from_static(br#"{"company":{"id":"acme"}}"#);
        let shared = Arc::new((client, uri, key, body));

        // Check the answer once before measuring.
        let answer = rt.block_on(one(shared.clone()));
        assert!(
            answer.windows(12).any(|w| w == b"\"value\":true"),
            "{answer:?}"
        );

        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let shared = shared.clone();
                rt.block_on(async move {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..CONCURRENCY)
                        .map(|w| {
                            let n = iters / CONCURRENCY + u64::from(w < iters % CONCURRENCY);
                            let shared = shared.clone();
                            tokio::spawn(async move {
                                for _ in 0..n {
                                    one(shared.clone()).await;
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start.elapsed()
                })
            });
        });
        rt.block_on(server.stop());
    }
    group.finish();
}

type Shared = Arc<(
    Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    http::Uri,
    String,
    Bytes,
)>;

async fn one(shared: Shared) -> Bytes {
    let (client, uri, key, body) = &*shared;
    let req = Request::post(uri.clone())
        .header("x-schematic-api-key", key.as_str())
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert!(resp.status().is_success());
    resp.into_body().collect().await.unwrap().to_bytes()
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_check
}
criterion_main!(benches);
