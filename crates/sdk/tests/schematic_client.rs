//! The Schematic client end to end against `flagwire-mock` over loopback.

use std::collections::HashSet;
use std::time::Duration;

use flagwire::Context;
use flagwire::Error;
use flagwire::schematic::{CheckOptions, CheckSource, Client, ClientBuilder, RequestOptions};
use flagwire_core::events::{Keys, TrackBody};
use flagwire_core::schematic::companies::{ListCompanies, UpsertCompany};
use flagwire_core::schematic::models::UpsertCompanyRequestBody;
use flagwire_mock::{Fault, Host, MockServer};
use futures_util::TryStreamExt;
use http::Method;
use serde_json::json;

#[path = "../examples/quickstart.rs"]
#[allow(dead_code)]
mod quickstart;

fn keys(name: &str, value: &str) -> Keys {
    Keys::from([(name.to_owned(), value.to_owned())])
}

fn builder(server: &MockServer) -> ClientBuilder {
    Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .max_retries(0)
        .events(|e| e.flush_interval(Duration::from_millis(20)))
}

fn seed_flag(server: &MockServer, key: &str, default_value: bool) {
    server
        .create_flag(json!({"key": key, "name": key, "description": "", "flag_type": "boolean", "default_value": default_value}))
        .unwrap();
}

fn count_path(server: &MockServer, method: &Method, path: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.method == method && r.path == path)
        .count()
}

fn count(server: &MockServer, operation: &str) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.operation == Some(operation))
        .count()
}

#[tokio::test]
async fn send_and_paginate_typed_operations() {
    let server = MockServer::start().await.unwrap();
    let client = builder(&server).build().unwrap();
    for i in 0..5 {
        let body = UpsertCompanyRequestBody::new(keys("id", &format!("c{i}")))
            .name(format!("Company {i}"));
        let company = client.send(UpsertCompany::new(body)).await.unwrap();
        assert_eq!(company.name, format!("Company {i}"));
    }
    // The API key went in the header.
    let first = &server.requests()[0];
    assert_eq!(
        first.headers["x-schematic-api-key"],
        flagwire_mock::REDACTED
    );

    server.clear_requests();
    let all: Vec<_> = client
        .paginate(ListCompanies::new().limit(2))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    let ids: HashSet<_> = all.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(count(&server, "listCompanies"), 3, "pages of 2, 2, 1");

    // Accessor, per-request options, and API errors with the server's message.
    let page = client
        .companies()
        .list_companies(ListCompanies::new().limit(1))
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    let err = client
        .companies()
        .get_company("comp_missing")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Api { status, .. } if status == 404),
        "{err:?}"
    );
    server.clear_requests();
    client
        .send_with(
            ListCompanies::new(),
            RequestOptions::new()
                .query("q", "Company 1")
                .header("x-extra", "yes")
                .unwrap(),
        )
        .await
        .unwrap();
    let req = &server.requests()[0];
    assert_eq!(req.headers["x-extra"], "yes");
    assert!(req.query.as_deref().unwrap().contains("q=Company%201"));
}

#[tokio::test]
async fn flag_checks_use_the_cache_and_keep_a_server_false() {
    let server = MockServer::start().await.unwrap();
    seed_flag(&server, "off-flag", false);
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let client = builder(&server)
        .flag_default("off-flag", true)
        .build()
        .unwrap();
    let acme = keys("id", "acme");

    let first = client
        .check_flag_with(
            "off-flag",
            Context::company(&acme),
            CheckOptions::new().default(true),
        )
        .await;
    assert!(!first.value, "a server false stays false: {first:?}");
    assert_eq!(first.source, CheckSource::Api);
    assert!(!client.check_flag("off-flag", Context::company(&acme)).await);
    let cached = client
        .check_flag_detailed("off-flag", Context::company(&acme))
        .await;
    assert_eq!(cached.source, CheckSource::Cache);
    assert_eq!(count(&server, "checkFlag"), 1, "miss then hits");

    // Another context misses.
    client
        .check_flag("off-flag", Context::company(&keys("id", "globex")))
        .await;
    assert_eq!(count(&server, "checkFlag"), 2);

    // Disabled cache: every check asks.
    let uncached = builder(&server).disable_cache().build().unwrap();
    uncached
        .check_flag("off-flag", Context::company(&acme))
        .await;
    uncached
        .check_flag("off-flag", Context::company(&acme))
        .await;
    assert_eq!(count(&server, "checkFlag"), 4);
}

#[tokio::test]
async fn defaults_answer_on_server_errors_and_timeouts() {
    let server = MockServer::start().await.unwrap();
    seed_flag(&server, "f", false);
    // One attempt per check, so each check uses up one fault.
    let client = builder(&server)
        .flag_default("mapped", true)
        .check_timeout(Duration::from_millis(150))
        .check_retries(0)
        .disable_cache()
        .build()
        .unwrap();
    server
        .inject(
            Host::Rest,
            Method::POST,
            "/flags/{key}/check",
            [Fault::status(500), Fault::status(500), Fault::status(500)],
        )
        .unwrap();
    let check = client
        .check_flag_with("f", (), CheckOptions::new().default(true))
        .await;
    assert!(check.value);
    assert_eq!(check.source, CheckSource::Default);
    assert!(check.error.as_deref().unwrap().contains("500"), "{check:?}");
    assert!(client.check_flag("mapped", ()).await, "client default");
    assert!(!client.check_flag("unmapped", ()).await, "false last");

    server
        .inject(
            Host::Rest,
            Method::POST,
            "/flags/{key}/check",
            [Fault::Delay(Duration::from_millis(600))],
        )
        .unwrap();
    let check = client
        .check_flag_with("f", (), CheckOptions::new().default(true))
        .await;
    assert!(check.value);
    assert_eq!(check.source, CheckSource::Default);
    // The next check reaches the server again and gets its false.
    assert!(
        !client
            .check_flag_with("f", (), CheckOptions::new().default(true))
            .await
            .value
    );
}

#[tokio::test]
async fn offline_mode_makes_no_requests() {
    let server = MockServer::start().await.unwrap();
    let client = builder(&server)
        .offline(true)
        .flag_default("on", true)
        .build()
        .unwrap();
    let acme = keys("id", "acme");
    assert!(client.check_flag("on", Context::company(&acme)).await);
    let checks = client
        .check_flags(&["on", "off"], Context::company(&acme))
        .await;
    assert_eq!(
        checks
            .iter()
            .map(|c| (c.value, c.source))
            .collect::<Vec<_>>(),
        [(true, CheckSource::Offline), (false, CheckSource::Offline)]
    );
    for _ in 0..3 {
        client
            .track(
                TrackBody::builder("e")
                    .company_key("id", "acme")
                    .build()
                    .unwrap(),
            )
            .unwrap();
    }
    assert!(matches!(
        client.send(ListCompanies::new()).await,
        Err(Error::Offline)
    ));
    client.flush().await.unwrap();
    let stats = client.shutdown(Duration::from_secs(1)).await;
    assert_eq!(stats.discarded_offline, 3);
    assert!(server.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_arrive_exactly_once_in_batches_of_at_most_100() {
    let server = MockServer::builder()
        .record_requests(1_000)
        .start()
        .await
        .unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let client = builder(&server).build().unwrap();
    for i in 0..10_000i64 {
        client
            .track(
                TrackBody::builder("api-call")
                    .company_key("id", "acme")
                    .quantity(i + 1)
                    .build()
                    .unwrap(),
            )
            .unwrap();
        if i == 4_999 {
            client.flush().await.unwrap();
        }
    }
    let stats = client.shutdown(Duration::from_secs(20)).await;
    assert_eq!(stats.buffer.enqueued, 10_000);
    assert_eq!(stats.buffer.sent, 10_000);
    assert_eq!(stats.buffer.dead_lettered, 0);

    let events = server.events();
    assert_eq!(events.len(), 10_000);
    let keys: HashSet<_> = events
        .iter()
        .map(|e| e.idempotency_key.clone().unwrap())
        .collect();
    assert_eq!(keys.len(), 10_000, "each event once");
    let quantities: HashSet<_> = events
        .iter()
        .map(|e| e.body["quantity"].as_i64().unwrap())
        .collect();
    assert_eq!(quantities.len(), 10_000);
    assert!(
        events
            .iter()
            .all(|e| e.event_type == "track" && e.body["event"] == "api-call")
    );

    let batches: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.host == Host::Capture)
        .collect();
    assert!(!batches.is_empty());
    for b in &batches {
        let n = b.json().unwrap()["events"].as_array().unwrap().len();
        assert!((1..=100).contains(&n), "batch of {n}");
        assert_eq!(b.headers["x-schematic-api-key"], flagwire_mock::REDACTED);
    }
    assert_eq!(stats.buffer.batches_sent as usize, batches.len());
}

#[test]
fn blocking_client_works_from_plain_threads_and_refuses_inside_a_runtime() {
    let server = MockServer::start_blocking().unwrap();
    seed_flag(&server, "f", false);
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .max_retries(0)
        .flag_default("f", true)
        .build_blocking()
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || {
                client
                    .check_flag("f", Context::company(&keys("id", "acme")))
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        assert!(!t.join().unwrap(), "the server's false");
    }
    let globex = client
        .companies()
        .upsert_company(UpsertCompanyRequestBody::new(keys("id", "globex")))
        .unwrap();
    assert_eq!(
        client.companies().get_company(&globex.id).unwrap().id,
        globex.id
    );
    let all = client.list_all(ListCompanies::new().limit(1)).unwrap();
    assert_eq!(all.len(), 2);
    client
        .track(
            TrackBody::builder("e")
                .company_key("id", "acme")
                .build()
                .unwrap(),
        )
        .unwrap();
    client.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(client.event_stats().buffer.sent, 1);

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let inside = rt.block_on(async {
        (
            client.check_flag("f", ()),
            client.send(ListCompanies::new()),
        )
    });
    assert!(matches!(inside.0, Err(Error::BlockingInAsyncContext)));
    assert!(matches!(inside.1, Err(Error::BlockingInAsyncContext)));
    let stats = client.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(stats.buffer.sent, 1);
}

#[tokio::test]
async fn extra_layers_and_custom_services_take_effect() {
    let server = MockServer::start().await.unwrap();
    let client = builder(&server)
        .transport(|b| {
            b.request_layer(tower::util::MapRequestLayer::new(
                |mut req: http::Request<bytes::Bytes>| {
                    req.headers_mut()
                        .insert("x-layer", http::HeaderValue::from_static("on"));
                    req
                },
            ))
        })
        .build()
        .unwrap();
    client.send(ListCompanies::new()).await.unwrap();
    client
        .track(TrackBody::builder("e").build().unwrap())
        .unwrap();
    client.flush().await.unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.headers["x-layer"] == "on"));

    // A whole custom bottom service: no network at all.
    let double = tower::service_fn(|req: http::Request<bytes::Bytes>| async move {
        assert_eq!(req.headers()["x-schematic-api-key"], "sch_custom");
        Ok::<_, std::convert::Infallible>(http::Response::new(bytes::Bytes::from_static(
            br#"{"data":[],"params":{}}"#,
        )))
    });
    let client = Client::builder("sch_custom")
        .service(double)
        .build()
        .unwrap();
    assert!(client.send(ListCompanies::new()).await.unwrap().is_empty());
}

#[test]
fn invalid_settings_are_config_errors() {
    let bad = |b: ClientBuilder| matches!(b.offline(true).build(), Err(Error::Config(_)));
    assert!(matches!(
        Client::builder(" ").build(),
        Err(Error::Config(_))
    ));
    // Offline needs no key.
    assert!(Client::builder("").offline(true).build().is_ok());
    assert!(bad(Client::builder("k").base_url("/relative")));
    assert!(bad(Client::builder("k").base_url("ftp://x")));
    assert!(bad(Client::builder("k").capture_url("/batch")));
    // Blank capture URL: the default, never a relative one.
    let client = Client::builder("k")
        .capture_url("  ")
        .offline(true)
        .build()
        .unwrap();
    assert_eq!(
        client.capture_batch_url(),
        "https://c.schematichq.com/batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_runs_against_the_emulator() {
    let report = quickstart::run_with_mock().await.unwrap();
    assert_eq!(report.flag_values, (true, false));
    let local = Some(flagwire::schematic::CheckSource::Local);
    assert_eq!(report.flag_sources, (local, local), "{:#?}", report.lines);
    let (seen, _) = report.after_change.expect("the rule was changed");
    assert!(seen, "{:#?}", report.lines);
    assert_eq!(report.companies_listed, 2);
    assert_eq!(report.pages, 2);
    assert!(report.webhook_verified);
    // identify, track, and a flag_check event per local check.
    let (queued, delivered) = report.events;
    assert!(queued >= 4, "{:#?}", report.lines);
    assert_eq!(queued, delivered, "{:#?}", report.lines);
}

#[tokio::test]
async fn cached_checks_expire_after_the_ttl() {
    use flagwire::cache::{LocalFlagCache, ManualClock};
    use std::sync::Arc;

    let server = MockServer::start().await.unwrap();
    seed_flag(&server, "f", true);
    let clock = Arc::new(ManualClock::new());
    let cache = LocalFlagCache::<flagwire::schematic::CachedCheck>::builder()
        .ttl(Duration::from_secs(5))
        .clock(clock.clone())
        .build();
    let client = builder(&server).cache(cache).build().unwrap();
    assert!(client.check_flag("f", ()).await);
    clock.advance(Duration::from_secs(4));
    assert!(client.check_flag("f", ()).await);
    assert_eq!(count(&server, "checkFlag"), 1, "fresh entry");
    clock.advance(Duration::from_secs(2));
    assert!(client.check_flag("f", ()).await);
    assert_eq!(count(&server, "checkFlag"), 2, "expired entry");
}

#[tokio::test]
async fn retries_recover_and_exhausted_retries_report_the_api_error() {
    use flagwire_transport::RetryPolicy;

    let server = MockServer::start().await.unwrap();
    let client = builder(&server)
        .retry_policy(RetryPolicy::default().base_delay(Duration::from_millis(1)))
        .max_retries(2)
        .build()
        .unwrap();
    server
        .inject(
            Host::Rest,
            Method::GET,
            "/companies",
            [Fault::status(503), Fault::status(503)],
        )
        .unwrap();
    assert!(client.send(ListCompanies::new()).await.unwrap().is_empty());
    assert_eq!(count_path(&server, &Method::GET, "/companies"), 3);

    server
        .inject(
            Host::Rest,
            Method::GET,
            "/companies",
            [Fault::status(503), Fault::status(503), Fault::status(503)],
        )
        .unwrap();
    let err = client.send(ListCompanies::new()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Api { status, .. } if *status == 503),
        "{err:?}"
    );
    // Per request: no retries.
    server
        .inject(Host::Rest, Method::GET, "/companies", [Fault::status(503)])
        .unwrap();
    server.clear_requests();
    let err = client
        .send_with(ListCompanies::new(), RequestOptions::new().max_retries(0))
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(count_path(&server, &Method::GET, "/companies"), 1);
}

#[test]
fn dropping_the_last_handle_delivers_queued_events() {
    let server = MockServer::start_blocking().unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .events(|e| e.flush_interval(Duration::from_secs(60)))
        .build()
        .unwrap();
    for q in 1..=7 {
        client
            .track(
                TrackBody::builder("e")
                    .company_key("id", "acme")
                    .quantity(q)
                    .build()
                    .unwrap(),
            )
            .unwrap();
    }
    let clone = client.clone();
    drop(client);
    assert!(server.events().is_empty(), "a clone still holds the buffer");
    drop(clone);
    assert_eq!(server.events().len(), 7);
}

#[test]
fn debug_output_never_shows_the_api_key() {
    let builder = Client::builder("sch_secret_value").offline(true);
    assert!(!format!("{builder:?}").contains("sch_secret_value"));
    let client = builder.build().unwrap();
    assert!(!format!("{client:?}").contains("sch_secret_value"));
    let blocking = flagwire::schematic::blocking::Client::from_async(client).unwrap();
    assert!(!format!("{blocking:?}").contains("sch_secret_value"));
}

#[tokio::test]
async fn bulk_checks_ask_once_and_fill_the_cache() {
    let server = MockServer::start().await.unwrap();
    seed_flag(&server, "a", true);
    seed_flag(&server, "b", false);
    let client = builder(&server)
        .flag_default("missing", true)
        .build()
        .unwrap();
    let checks = client.check_flags(&["a", "b", "missing"], ()).await;
    let got: Vec<_> = checks
        .iter()
        .map(|c| (c.flag.as_str(), c.value, c.source))
        .collect();
    assert_eq!(
        got,
        [
            ("a", true, CheckSource::Api),
            ("b", false, CheckSource::Api),
            ("missing", true, CheckSource::Default),
        ]
    );
    assert_eq!(count(&server, "checkFlags"), 1);
    // Served from the cache now, single and bulk.
    assert!(client.check_flag("a", ()).await);
    let again = client.check_flags(&["a", "b"], ()).await;
    assert!(again.iter().all(|c| c.source == CheckSource::Cache));
    assert_eq!(count(&server, "checkFlags"), 1);
    assert_eq!(count(&server, "checkFlag"), 0);
    // No keys: every flag the API knows.
    let all = client.check_flags(&[], ()).await;
    let mut names: Vec<_> = all.iter().map(|c| c.flag.clone()).collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
}

#[tokio::test]
async fn a_per_check_timeout_falls_back_to_the_per_check_default() {
    let server = MockServer::start().await.unwrap();
    seed_flag(&server, "f", false);
    let client = builder(&server).disable_cache().build().unwrap();
    server
        .inject(
            Host::Rest,
            Method::POST,
            "/flags/{key}/check",
            [Fault::Delay(Duration::from_millis(500))],
        )
        .unwrap();
    let options = CheckOptions::new()
        .default(true)
        .timeout(Duration::from_millis(50));
    let started = std::time::Instant::now();
    let check = client.check_flag_with("f", (), options).await;
    assert!(started.elapsed() < Duration::from_millis(450));
    assert!(check.value);
    assert_eq!(check.source, CheckSource::Default);
    let check = client.check_flag_with("f", (), options).await;
    assert!(!check.value, "the server's false once it answers");
    assert_eq!(check.source, CheckSource::Api);
}

#[tokio::test]
async fn a_custom_transport_is_used_as_is() {
    use flagwire_transport::TransportBuilder;

    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let double = tower::service_fn(move |req: http::Request<bytes::Bytes>| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push((
                req.uri().to_string(),
                req.headers().contains_key("x-schematic-api-key"),
            ));
            let mut resp = http::Response::new(bytes::Bytes::from_static(
                br#"{"error":"company not found"}"#,
            ));
            *resp.status_mut() = http::StatusCode::NOT_FOUND;
            resp.headers_mut()
                .insert("x-request-id", http::HeaderValue::from_static("req_42"));
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let transport = TransportBuilder::new().service(double).build().unwrap();
    let client = Client::builder("sch_custom")
        .base_url("http://api.test")
        .custom_transport(transport)
        .build()
        .unwrap();
    let err = client.companies().get_company("comp_1").await.unwrap_err();
    match &err {
        Error::Api {
            status,
            message,
            request_id,
            ..
        } => {
            assert_eq!(*status, 404);
            assert_eq!(message.as_deref(), Some("company not found"));
            assert_eq!(request_id.as_deref(), Some("req_42"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("req_42"));
    assert_eq!(
        *seen.lock().unwrap(),
        [("http://api.test/companies/comp_1".to_owned(), false)],
        "no key layer on a transport used as is"
    );
}
