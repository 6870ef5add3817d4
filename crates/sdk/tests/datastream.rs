//! Local evaluation over DataStream against the emulator, over a real
//! loopback WebSocket: readiness, the miss path, updates, reconnects,
//! replay and reload, faults, `flag_check` events and metric bumps.

use std::time::{Duration, Instant};

use flagwire::Context;
use flagwire::datastream::{ConnectionState, DataStreamOptions};
use flagwire::schematic::{CheckOptions, CheckSource, Client, FlagCheck};
use flagwire_core::events::TrackBody;
use flagwire_mock::MockServer;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn flag(key: &str, default_value: bool) -> Value {
    json!({"key": key, "name": key, "description": "", "flag_type": "boolean",
           "default_value": default_value})
}

/// A rule matching one company by id.
fn company_rule(name: &str, company_id: &str) -> Value {
    json!([{"name": name, "priority": 1, "value": true, "conditions": [
        {"condition_type": "company", "operator": "eq", "resource_ids": [company_id]}
    ], "condition_groups": []}])
}

/// A rule matching while the company tracked fewer than `limit` `event`s.
fn quota_rule(event: &str, limit: i64) -> Value {
    json!([{"name": "under quota", "priority": 1, "value": true, "conditions": [
        {"condition_type": "metric", "operator": "lt", "resource_ids": [], "event_subtype": event,
         "metric_value": limit, "metric_period": "all_time"}
    ], "condition_groups": []}])
}

fn options() -> DataStreamOptions {
    DataStreamOptions::new()
        .resource_timeout(Duration::from_secs(2))
        .reconnect(
            flagwire::datastream::ReconnectPolicy::default()
                .with_base(Duration::from_millis(20))
                .with_cap(Duration::from_millis(200))
                .with_jitter(Duration::from_millis(10)),
        )
}

fn client(server: &MockServer, options: DataStreamOptions) -> Client {
    Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .datastream(options)
        .build()
        .unwrap()
}

async fn ready_client(server: &MockServer, options: DataStreamOptions) -> Client {
    let client = client(server, options);
    assert!(
        client.wait_until_ready(WAIT).await,
        "DataStream never got ready"
    );
    client
}

/// Waits (bounded) until `check` reports what `done` wants; returns the last check.
async fn eventually(
    client: &Client,
    flag: &str,
    context: Context<'_>,
    done: impl Fn(&FlagCheck) -> bool,
) -> FlagCheck {
    let deadline = Instant::now() + WAIT;
    loop {
        let check = client.check_flag_detailed(flag, context).await;
        if done(&check) || Instant::now() > deadline {
            return check;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_subscribes_then_checks_are_answered_locally() {
    let server = MockServer::start().await.unwrap();
    let acme = server
        .upsert_company(json!({"keys": {"id": "acme", "slug": "acme-inc"}}))
        .unwrap();
    server.create_flag(flag("beta", false)).unwrap();
    server
        .set_flag_rules("beta", company_rule("acme", acme["id"].as_str().unwrap()))
        .unwrap();
    let client = ready_client(&server, options()).await;

    // First check: the company is fetched over the socket, then evaluated here.
    let first = client
        .check_flag_detailed("beta", Context::company(&[("id", "acme")]))
        .await;
    assert!(first.value, "{first:?}");
    assert_eq!(first.source, CheckSource::Local);
    assert_eq!(first.company_id.as_deref(), acme["id"].as_str());
    assert!(first.rule_id.is_some());

    // Any key of the company finds it, whatever its case, without a request.
    let before = server.datastream_requests().len();
    let by_slug = client
        .check_flag_detailed("beta", Context::company(&[("SLUG", "Acme-Inc")]))
        .await;
    assert_eq!((by_slug.value, by_slug.source), (true, CheckSource::Local));
    assert!(
        client
            .check_flag("beta", Context::company(&[("id", "acme")]))
            .await
    );
    assert_eq!(server.datastream_requests().len(), before);

    // No company: the flag default, still local.
    let nobody = client.check_flag_detailed("beta", ()).await;
    assert_eq!((nobody.value, nobody.source), (false, CheckSource::Local));

    let status = client.datastream_status().unwrap();
    assert_eq!(status.state, ConnectionState::Connected);
    assert!(status.ready);
    assert_eq!((status.flags, status.companies), (1, 1));

    // The handshake identified the client.
    let handshake = &server.datastream_handshakes()[0];
    assert_eq!(handshake.mode.as_deref(), Some("direct"));
    assert_eq!(handshake.client.as_deref(), Some("flagwire"));
    client.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_through_the_api_reach_the_next_local_check() {
    let server = MockServer::start().await.unwrap();
    let acme = server
        .upsert_company(json!({"keys": {"id": "acme"}, "traits": {"tier": "gold"}}))
        .unwrap();
    let acme_id = acme["id"].as_str().unwrap().to_owned();
    server.create_flag(flag("beta", false)).unwrap();
    let client = ready_client(&server, options()).await;
    let ctx = Context::company(&[("id", "acme")]);
    assert!(!client.check_flag("beta", ctx).await);

    // A rule change arrives as a Flag message.
    server
        .set_flag_rules("beta", company_rule("acme", &acme_id))
        .unwrap();
    let check = eventually(&client, "beta", ctx, |c| c.value).await;
    assert_eq!((check.value, check.source), (true, CheckSource::Local));

    // A company change arrives as a partial; untouched fields survive it.
    server
        .upsert_company(json!({"keys": {"id": "acme", "domain": "acme.io"}}))
        .unwrap();
    let by_domain = Context::company(&[("domain", "acme.io")]);
    let check = eventually(&client, "beta", by_domain, |c| {
        c.source == CheckSource::Local && c.value
    })
    .await;
    assert_eq!((check.value, check.source), (true, CheckSource::Local));
    // Delete: the company and every lookup key of it go away.
    client
        .companies()
        .delete_company(flagwire_core::schematic::companies::DeleteCompany::new(
            &acme_id,
        ))
        .await
        .unwrap();
    assert!(
        wait_for(|| client.datastream_status().unwrap().companies == 0).await,
        "the delete never arrived"
    );
    let gone = client.check_flag_detailed("beta", by_domain).await;
    assert!(!gone.value, "{gone:?}");
    assert_ne!(gone.source, CheckSource::Local, "{gone:?}");
    client.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_naming_two_companies_are_a_key_conflict() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    server
        .upsert_company(json!({"keys": {"id": "globex", "slug": "globex"}}))
        .unwrap();
    server.create_flag(flag("beta", true)).unwrap();
    let client = ready_client(&server, options()).await;
    for keys in [[("id", "acme")], [("id", "globex")]] {
        let check = client
            .check_flag_detailed("beta", Context::company(&keys))
            .await;
        assert_eq!(check.source, CheckSource::Local);
    }
    let conflict = client
        .check_flag_detailed(
            "beta",
            Context::company(&[("id", "acme"), ("slug", "globex")]),
        )
        .await;
    assert_eq!(conflict.reason, "key conflict");
    assert!(conflict.value, "the flag default");
    assert!(conflict.error.is_some());
    assert_eq!(conflict.source, CheckSource::Local);
    client.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_that_does_not_arrive_in_time_is_checked_through_the_api() {
    let server = MockServer::start().await.unwrap();
    let acme = server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    server.create_flag(flag("beta", false)).unwrap();
    server
        .set_flag_rules("beta", company_rule("acme", acme["id"].as_str().unwrap()))
        .unwrap();
    let client = ready_client(
        &server,
        options().resource_timeout(Duration::from_millis(200)),
    )
    .await;
    // The server stops answering for longer than the wait.
    server.datastream_stall(Duration::from_millis(1_500));
    let started = Instant::now();
    let check = client
        .check_flag_detailed("beta", Context::company(&[("id", "acme")]))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        (check.value, check.source),
        (true, CheckSource::Api),
        "{check:?}"
    );

    // Unknown keys: the server's error ends the wait at once.
    let unknown = client
        .check_flag_detailed("beta", Context::company(&[("id", "nobody")]))
        .await;
    assert_eq!(unknown.source, CheckSource::Api, "{unknown:?}");
    assert!(!unknown.value);
    client.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_socket_reconnects_resubscribes_and_misses_nothing() {
    let server = MockServer::start().await.unwrap();
    let acme = server
        .upsert_company(json!({"keys": {"id": "acme"}, "traits": {"tier": "gold"}}))
        .unwrap();
    let acme_id = acme["id"].as_str().unwrap().to_owned();
    server.create_flag(flag("beta", false)).unwrap();
    let client = ready_client(&server, options()).await;
    let ctx = Context::company(&[("id", "acme")]);
    assert_eq!(
        client.check_flag_detailed("beta", ctx).await.source,
        CheckSource::Local
    );

    // A pushed change gives the client a resume point.
    server
        .upsert_company(json!({"keys": {"id": "acme"}, "traits": {"tier": "silver"}}))
        .unwrap();
    assert!(wait_for(|| client.datastream_status().unwrap().messages >= 3).await);

    // Kill the socket and change things while the client is away.
    server.datastream_refuse_upgrades(2);
    assert_eq!(server.datastream_drop_connections(), 1);
    server
        .set_flag_rules("beta", company_rule("acme", &acme_id))
        .unwrap();
    assert!(
        wait_for(|| client.datastream_status().unwrap().reconnects >= 1
            && client.datastream_status().unwrap().state == ConnectionState::Connected)
        .await
    );
    let check = eventually(&client, "beta", ctx, |c| c.value).await;
    assert_eq!((check.value, check.source), (true, CheckSource::Local));

    // The reconnect resumed from the last applied message, and asked for the
    // cached company again.
    let requests = server.datastream_requests();
    let resumed: Vec<&Value> = requests
        .iter()
        .filter(|r| r["data"]["replay_from"].is_string())
        .collect();
    assert!(!resumed.is_empty(), "{requests:?}");
    assert!(
        requests
            .iter()
            .filter(|r| r["data"]["entity_type"] == "rulesengine.Company")
            .count()
            >= 2,
        "{requests:?}"
    );
    client.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_rebuilds_the_store() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    server.create_flag(flag("beta", false)).unwrap();
    let client = ready_client(&server, options()).await;
    let ctx = Context::company(&[("id", "acme")]);
    client.check_flag("beta", ctx).await;
    // A change gives the client a cursor; then the server forgets its log.
    server
        .upsert_company(json!({"keys": {"id": "acme"}, "traits": {"tier": "gold"}}))
        .unwrap();
    assert!(wait_for(|| client.datastream_status().unwrap().messages >= 3).await);
    server.datastream_trim_replay_log();
    server.datastream_drop_connections();
    assert!(
        wait_for(|| server
            .datastream_requests()
            .iter()
            .filter(|r| r["data"]["entity_type"] == "rulesengine.Flags")
            .count()
            >= 3)
        .await,
        "flags were not asked for again after the reload"
    );
    let check = eventually(&client, "beta", ctx, |c| c.source == CheckSource::Local).await;
    assert_eq!(check.source, CheckSource::Local);
    client.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_code_4001_stops_the_stream_and_checks_use_the_api() {
    let server = MockServer::start().await.unwrap();
    server.create_flag(flag("beta", true)).unwrap();
    let client = ready_client(&server, options()).await;
    server.datastream_close_all(4001, "unauthorized").unwrap();
    assert!(
        wait_for(|| client.datastream_status().unwrap().state == ConnectionState::Stopped).await
    );
    let status = client.datastream_status().unwrap();
    assert!(
        status.last_error.as_deref().unwrap_or("").contains("4001"),
        "{status:?}"
    );
    // No reconnect attempts follow.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.datastream_handshakes().len(), 1);
    // Cached flags still answer; nothing is lost for the caller.
    let check = client.check_flag_detailed("beta", ()).await;
    assert!(check.value);
    client.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_are_skipped() {
    let server = MockServer::start().await.unwrap();
    server.create_flag(flag("beta", true)).unwrap();
    let client = ready_client(&server, options().max_message_size(64 * 1024)).await;
    server.datastream_send_raw("{not json");
    server.datastream_send_raw(
        r#"{"entity_type":"rulesengine.Flag","message_type":"full","data":[1,2]}"#,
    );
    assert!(wait_for(|| client.datastream_status().unwrap().malformed >= 2).await);
    let status = client.datastream_status().unwrap();
    assert_eq!(status.reconnects, 0, "malformed frames keep the connection");
    assert_eq!(status.state, ConnectionState::Connected);

    // Over the size limit: the connection is dropped and made again.
    server.datastream_send_raw("x".repeat(100 * 1024));
    assert!(wait_for(|| client.datastream_status().unwrap().reconnects >= 1).await);
    assert!(client.wait_until_ready(WAIT).await);
    let check = client.check_flag_detailed("beta", ()).await;
    assert_eq!((check.value, check.source), (true, CheckSource::Local));
    client.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_checks_send_flag_check_events_and_track_bumps_metrics() {
    let server = MockServer::start().await.unwrap();
    let acme = server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    server.create_flag(flag("api-access", false)).unwrap();
    server
        .set_flag_rules("api-access", quota_rule("api-call", 3))
        .unwrap();
    // The company has used the feature once: its metric exists.
    server.track(&[("id", "acme")], "api-call", 1).unwrap();
    let client = ready_client(&server, options()).await;
    let ctx = Context::company(&[("id", "acme")]);
    let allowed = client.check_flag_detailed("api-access", ctx).await;
    assert_eq!((allowed.value, allowed.source), (true, CheckSource::Local));

    // Tracking usage flips the next check at once, before the server's update.
    client
        .track(
            TrackBody::builder("api-call")
                .company_key("id", "acme")
                .quantity(2)
                .build()
                .unwrap(),
        )
        .unwrap();
    let blocked = client.check_flag_detailed("api-access", ctx).await;
    assert_eq!((blocked.value, blocked.source), (false, CheckSource::Local));

    // Preflight is evaluated locally too, and never cached.
    client.flush().await.unwrap();
    let check = eventually(&client, "api-access", ctx, |c| !c.value).await;
    assert!(!check.value);

    let stats = client.shutdown(Duration::from_secs(5)).await;
    assert_eq!(stats.buffer.dead_lettered, 0);
    let checks: Vec<_> = server
        .events()
        .into_iter()
        .filter(|e| e.event_type == "flag_check")
        .collect();
    assert!(checks.len() >= 2, "{checks:?}");
    let body = &checks[0].body;
    assert_eq!(body["flag_key"], "api-access");
    assert_eq!(body["value"], true);
    assert_eq!(body["company_id"], acme["id"]);
    assert_eq!(body["req_company"], json!({"id": "acme"}));
    assert!(body["rule_id"].is_string());
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .starts_with("Matched standard rule")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_usage_is_evaluated_locally() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    server.create_flag(flag("api-access", false)).unwrap();
    server
        .set_flag_rules("api-access", quota_rule("api-call", 10))
        .unwrap();
    let client = ready_client(&server, options().flag_check_events(false)).await;
    let ctx = Context::company(&[("id", "acme")]);
    assert!(client.check_flag("api-access", ctx).await);
    // 9.5 rounds up to 10: over the quota.
    let check = client
        .check_flag_with("api-access", ctx, CheckOptions::new().usage(9.5))
        .await;
    assert_eq!((check.value, check.source), (false, CheckSource::Local));
    let check = client
        .check_flag_with("api-access", ctx, CheckOptions::new().usage(9.0))
        .await;
    assert_eq!((check.value, check.source), (true, CheckSource::Local));
    // A negative quantity answers the default with an error, asking no one.
    let check = client
        .check_flag_with(
            "api-access",
            ctx,
            CheckOptions::new().usage(-1.0).default(true),
        )
        .await;
    assert!(check.value);
    assert_eq!(check.source, CheckSource::Default);
    assert!(check.error.unwrap().contains("negative"));
    client.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_upgrades_are_retried_and_checks_use_the_api_meanwhile() {
    let server = MockServer::start().await.unwrap();
    server.create_flag(flag("beta", true)).unwrap();
    server.datastream_refuse_upgrades(3);
    let client = client(&server, options());
    // Before the flags arrive, checks go to the API.
    let early = client.check_flag_detailed("beta", ()).await;
    assert!(early.value);
    assert_ne!(early.source, CheckSource::Local);
    assert!(client.wait_until_ready(WAIT).await);
    let status = client.datastream_status().unwrap();
    assert!(status.reconnects == 0 && status.ready, "{status:?}");
    assert!(server.datastream_handshakes().len() >= 4);
    client.shutdown(Duration::from_secs(5)).await;
}

#[test]
fn the_blocking_client_answers_local_checks_on_the_calling_thread() {
    let server = MockServer::start_blocking().unwrap();
    server.create_flag(flag("beta", true)).unwrap();
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .datastream(options().flag_check_events(false))
        .build_blocking()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while !client.as_async().datastream_status().unwrap().ready && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(client.check_flag("beta", ()).unwrap());
    let check = client.check_flag_detailed("beta", ()).unwrap();
    assert_eq!(check.source, CheckSource::Local);
    // Allowed inside a runtime too: nothing blocks on a local answer.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert!(client.check_flag("beta", ()).unwrap());
    });
}
