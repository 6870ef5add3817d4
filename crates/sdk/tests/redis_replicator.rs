//! Replicator mode end to end: the emulator plays the replicator (writes
//! its state into a real `redis-server` and keeps it current, serves
//! `/ready` with the cache version) and the client evaluates from Redis,
//! with no DataStream socket. Also: Redis killed and back, corrupt values,
//! bad URLs.

mod redis_support;

use std::time::{Duration, Instant};

use flagwire::Context;
use flagwire::redis::{RedisOptions, ReplicatorOptions};
use flagwire::schematic::{CheckSource, Client, FlagCheck};
use flagwire_mock::MockServer;
use redis_support::RedisServer;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn flag(key: &str, default_value: bool) -> Value {
    json!({"key": key, "name": key, "description": "", "flag_type": "boolean",
           "default_value": default_value})
}

fn company_rule(company_id: &str) -> Value {
    json!([{"name": "acme only", "priority": 1, "value": true, "conditions": [
        {"condition_type": "company", "operator": "eq", "resource_ids": [company_id]}
    ], "condition_groups": []}])
}

fn quota_rule(event: &str, limit: i64) -> Value {
    json!([{"name": "under quota", "priority": 1, "value": true, "conditions": [
        {"condition_type": "metric", "operator": "lt", "resource_ids": [], "event_subtype": event,
         "metric_value": limit, "metric_period": "all_time"}
    ], "condition_groups": []}])
}

/// An emulator with two flags and two companies, replicated into `redis`.
async fn seeded(redis: &RedisServer, version: &str) -> MockServer {
    let server = MockServer::builder()
        .cache_version(version)
        .start()
        .await
        .unwrap();
    let acme = server
        .upsert_company(json!({"keys": {"id": "acme", "slug": "Acme-Inc"}}))
        .unwrap();
    server
        .upsert_company(json!({"keys": {"id": "globex"}}))
        .unwrap();
    server
        .upsert_user(json!({"keys": {"email": "ann@acme.com"}, "company": {"id": "acme"}}))
        .unwrap();
    server.create_flag(flag("beta", false)).unwrap();
    server
        .set_flag_rules("beta", company_rule(acme["id"].as_str().unwrap()))
        .unwrap();
    server.create_flag(flag("quota", false)).unwrap();
    server
        .set_flag_rules("quota", quota_rule("api-call", 3))
        .unwrap();
    server
        .start_redis_replicator(&redis.url(), "schematic")
        .await
        .unwrap();
    assert!(server.redis_replicator_synced(WAIT).await);
    server
}

fn options(redis: &RedisServer, server: &MockServer) -> ReplicatorOptions {
    ReplicatorOptions::new(
        RedisOptions::new(redis.url()).command_timeout(Duration::from_millis(200)),
    )
    .health_url(format!("{}/ready", server.rest_url()))
    .poll_interval(Duration::from_millis(100))
    .local_ttl(Duration::from_millis(200))
    .flag_check_events(false)
}

fn client(server: &MockServer, options: ReplicatorOptions) -> Client {
    Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .replicator(options)
        .disable_cache()
        .build()
        .unwrap()
}

fn rest_client(server: &MockServer) -> Client {
    Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .disable_cache()
        .build()
        .unwrap()
}

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
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_are_evaluated_from_redis_without_a_socket() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = seeded(&redis, "v42").await;
    assert!(redis.get("schematic:flags:v42:beta").is_some());
    assert!(redis.get("schematic:company:v42:slug:acme-inc").is_some());
    assert!(redis.get("schematic:datastream:writer_lock").is_some());

    let client = client(&server, options(&redis, &server));
    assert!(client.wait_until_ready(WAIT).await);
    let status = client.replicator_status().unwrap();
    assert_eq!(status.cache_version.as_deref(), Some("v42"));
    let rest = rest_client(&server);

    let acme = [("id", "acme")];
    let slug = [("slug", "Acme-Inc")];
    let globex = [("id", "globex")];
    let ann = [("email", "ann@acme.com")];
    for context in [
        Context::company(&acme),
        Context::company(&slug),
        Context::company(&globex),
        Context::company(&acme).with_user(&ann),
        Context::user(&ann),
        Context::none(),
    ] {
        for key in ["beta", "quota"] {
            let got = client.check_flag_detailed(key, context).await;
            let expected = rest.check_flag_detailed(key, context).await;
            assert_eq!(got.source, CheckSource::Local, "{key} {context:?}: {got:?}");
            assert_eq!(expected.source, CheckSource::Api);
            assert_eq!(got.value, expected.value, "{key} {context:?}");
            assert_eq!(got.reason, expected.reason);
            assert_eq!(got.rule_id, expected.rule_id);
            assert_eq!(got.company_id, expected.company_id);
            assert_eq!(got.user_id, expected.user_id);
        }
    }
    // Keys are matched case-insensitively, as the official SDKs do.
    let shouted = [("SLUG", "ACME-INC")];
    let check = client
        .check_flag_detailed("beta", Context::company(&shouted))
        .await;
    assert_eq!((check.value, check.source), (true, CheckSource::Local));

    // No socket was opened.
    assert_eq!(server.datastream_connections(), 0);
    assert!(server.datastream_handshakes().is_empty());

    // A hot check is answered from memory: no Redis round trip.
    let reads = client.replicator_status().unwrap().redis_reads;
    for _ in 0..100 {
        assert!(client.check_flag("beta", Context::company(&acme)).await);
    }
    assert!(client.replicator_status().unwrap().redis_reads <= reads + 1);

    // A company Redis does not hold is evaluated as absent, never fetched.
    let ghost = [("id", "ghost")];
    let check = client
        .check_flag_detailed("beta", Context::company(&ghost))
        .await;
    assert_eq!(check.source, CheckSource::Local);
    assert!(!check.value);
    assert_eq!(check.company_id, None);
    // ... and remembered as absent for the local TTL: no round trip each time.
    let reads = client.replicator_status().unwrap().redis_reads;
    for _ in 0..20 {
        assert!(!client.check_flag("beta", Context::company(&ghost)).await);
    }
    assert_eq!(client.replicator_status().unwrap().redis_reads, reads);
    // A flag Redis does not hold goes to the API.
    let check = client
        .check_flag_detailed("no-such-flag", Context::company(&acme))
        .await;
    assert_ne!(check.source, CheckSource::Local);
    assert!(client.replicator_status().unwrap().fallbacks >= 1);

    // Bulk checks are evaluated from Redis too.
    let all = client
        .check_flags(&["beta", "quota"], Context::company(&acme))
        .await;
    assert!(
        all.iter().all(|c| c.source == CheckSource::Local),
        "{all:?}"
    );

    client.shutdown(Duration::from_secs(2)).await;
    rest.shutdown(Duration::from_secs(2)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_the_replicator_writes_reach_checks_within_the_local_ttl() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = seeded(&redis, "1").await;
    let client = client(&server, options(&redis, &server));
    assert!(client.wait_until_ready(WAIT).await);
    let acme = [("id", "acme")];
    let check = client
        .check_flag_detailed("quota", Context::company(&acme))
        .await;
    assert!(check.value, "{check:?}");
    assert_eq!(check.source, CheckSource::Local);

    // Usage over the quota: the emulator rewrites the company in Redis,
    // the in-process layer picks it up on its next refresh.
    server.track(&[("id", "acme")], "api-call", 5).unwrap();
    assert!(server.redis_replicator_synced(WAIT).await);
    let started = Instant::now();
    let check = eventually(&client, "quota", Context::company(&acme), |c| !c.value).await;
    assert!(!check.value, "{check:?}");
    assert_eq!(check.source, CheckSource::Local);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // A changed flag too.
    server
        .set_flag_rules("quota", quota_rule("api-call", 100))
        .unwrap();
    assert!(server.redis_replicator_synced(WAIT).await);
    let check = eventually(&client, "quota", Context::company(&acme), |c| c.value).await;
    assert!(check.value);

    // A deleted company leaves Redis, then the in-process layer.
    let globex = [("id", "globex")];
    let check = client
        .check_flag_detailed("quota", Context::company(&globex))
        .await;
    let globex_id = check.company_id.clone().expect("globex resolved");
    let rest = rest_client(&server);
    rest.send(flagwire_core::schematic::companies::DeleteCompany::new(
        globex_id.clone(),
    ))
    .await
    .unwrap();
    assert!(server.redis_replicator_synced(WAIT).await);
    assert_eq!(redis.get(&format!("schematic:company:1:{globex_id}")), None);
    assert_eq!(redis.get("schematic:company:1:id:globex"), None);
    let check = eventually(&client, "quota", Context::company(&globex), |c| {
        c.company_id.is_none()
    })
    .await;
    assert_eq!((check.company_id, check.source), (None, CheckSource::Local));
    rest.shutdown(Duration::from_secs(1)).await;

    // A second client on the same Redis sees the same state.
    let other = self::client(&server, options(&redis, &server));
    assert!(other.wait_until_ready(WAIT).await);
    let check = other
        .check_flag_detailed("quota", Context::company(&acme))
        .await;
    assert!(check.value);
    assert_eq!(check.source, CheckSource::Local);

    client.shutdown(Duration::from_secs(2)).await;
    other.shutdown(Duration::from_secs(2)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_then_back_checks_keep_answering_and_recover() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let server = seeded(&redis, "1").await;
    let client = client(&server, options(&redis, &server));
    assert!(client.wait_until_ready(WAIT).await);
    let acme = [("id", "acme")];
    let check = client
        .check_flag_detailed("beta", Context::company(&acme))
        .await;
    assert_eq!((check.value, check.source), (true, CheckSource::Local));

    redis.kill();
    // Within a local TTL or so the in-process layer lets go; meanwhile and
    // after, every check answers, quickly, with the API's verdict.
    let deadline = Instant::now() + WAIT;
    let mut saw_api = false;
    while Instant::now() < deadline && !saw_api {
        let started = Instant::now();
        let check = client
            .check_flag_detailed("beta", Context::company(&acme))
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(check.value, "{check:?}");
        saw_api = check.source == CheckSource::Api;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_api, "checks never moved to the API");
    assert!(client.replicator_status().unwrap().redis.errors > 0);

    // Neither Redis nor the API: the defaults.
    server.set_replicator_ready(false);
    let unreachable = Client::builder(server.api_key())
        .base_url("http://127.0.0.1:9")
        .capture_url(server.capture_url())
        .replicator(options(&redis, &server))
        .disable_cache()
        .check_timeout(Duration::from_millis(300))
        .flag_default("beta", true)
        .build()
        .unwrap();
    let check = unreachable
        .check_flag_detailed("beta", Context::company(&acme))
        .await;
    assert_eq!((check.value, check.source), (true, CheckSource::Default));
    server.set_replicator_ready(true);

    // Redis back (empty, as after a crash); the replicator reloads it.
    redis.restart();
    server
        .start_redis_replicator(&redis.url(), "schematic")
        .await
        .unwrap();
    assert!(server.redis_replicator_synced(WAIT).await);
    let check = eventually(&client, "beta", Context::company(&acme), |c| {
        c.source == CheckSource::Local
    })
    .await;
    assert_eq!((check.value, check.source), (true, CheckSource::Local));

    client.shutdown(Duration::from_secs(2)).await;
    unreachable.shutdown(Duration::from_secs(1)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_values_in_redis_are_skipped_and_counted() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = seeded(&redis, "1").await;
    server.stop_redis_replicator();
    redis.cmd(&["SET", "schematic:flags:1:beta", "{\"key\": 42"]);
    redis.cmd(&["SET", "schematic:company:1:id:broken", "co_broken"]);
    redis.cmd(&["SET", "schematic:company:1:co_broken", "not json"]);
    let client = client(&server, options(&redis, &server));
    assert!(client.wait_until_ready(WAIT).await);
    let acme = [("id", "acme")];
    // The flag does not parse: the API answers.
    let check = client
        .check_flag_detailed("beta", Context::company(&acme))
        .await;
    assert_eq!((check.value, check.source), (true, CheckSource::Api));
    // The company does not parse: evaluated as absent.
    let broken = [("id", "broken")];
    let check = client
        .check_flag_detailed("quota", Context::company(&broken))
        .await;
    assert_eq!(check.source, CheckSource::Local);
    assert_eq!(check.company_id, None);
    assert!(client.replicator_status().unwrap().redis.corrupt >= 2);
    client.shutdown(Duration::from_secs(2)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_version_comes_from_ready_or_is_pinned() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = seeded(&redis, "v7").await;
    let acme = [("id", "acme")];
    // Pinned to a version the replicator did not write: nothing in Redis.
    let pinned = client(&server, options(&redis, &server).cache_version("v6"));
    assert!(pinned.wait_until_ready(WAIT).await);
    assert_eq!(
        pinned.replicator_status().unwrap().cache_version.as_deref(),
        Some("v6")
    );
    let check = pinned
        .check_flag_detailed("beta", Context::company(&acme))
        .await;
    assert_eq!(check.source, CheckSource::Api);
    // From /ready.
    let polled = client(&server, options(&redis, &server));
    assert!(polled.wait_until_ready(WAIT).await);
    let check = polled
        .check_flag_detailed("beta", Context::company(&acme))
        .await;
    assert_eq!(check.source, CheckSource::Local);
    let status = polled.replicator_status().unwrap();
    assert_eq!(status.cache_version.as_deref(), Some("v7"));
    assert!(status.replicator_ready);
    assert!(status.polls >= 1);

    // No health document, no pinned version: not ready, checks use the API.
    let blind = client(
        &server,
        options(&redis, &server).health_url("http://127.0.0.1:9/ready"),
    );
    assert!(!blind.wait_until_ready(Duration::from_millis(300)).await);
    let check = blind
        .check_flag_detailed("beta", Context::company(&acme))
        .await;
    assert_eq!(check.source, CheckSource::Api);
    assert!(blind.replicator_status().unwrap().poll_failures >= 1);

    pinned.shutdown(Duration::from_secs(1)).await;
    polled.shutdown(Duration::from_secs(1)).await;
    blind.shutdown(Duration::from_secs(1)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_fail_the_build_and_an_unreachable_redis_does_not() {
    let server = MockServer::start().await.unwrap();
    for bad in ["nonsense", "redis://[::1"] {
        let result = Client::builder(server.api_key())
            .base_url(server.rest_url())
            .replicator(ReplicatorOptions::new(RedisOptions::new(bad)))
            .build();
        assert!(result.is_err(), "{bad}");
    }
    let result = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .replicator(
            ReplicatorOptions::new(RedisOptions::new("redis://127.0.0.1:6379"))
                .health_url("https://example.com/ready"),
        )
        .build();
    assert!(result.is_err());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .replicator(
            ReplicatorOptions::new(RedisOptions::new(format!("redis://127.0.0.1:{port}")))
                .cache_version("1"),
        )
        .flag_default("beta", true)
        .build()
        .unwrap();
    // Redis unreachable: the API answers (it does not know the flag).
    let check = client.check_flag_detailed("beta", ()).await;
    assert_eq!(check.source, CheckSource::Api);
    client.shutdown(Duration::from_secs(1)).await;
    server.stop().await;
}

#[test]
fn the_blocking_client_works_in_replicator_mode() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(seeded(&redis, "1"));
    let client = flagwire::schematic::blocking::Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .replicator(options(&redis, &server))
        .build()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while client
        .as_async()
        .replicator_status()
        .unwrap()
        .cache_version
        .is_none()
    {
        assert!(Instant::now() < deadline, "the version never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    let acme = [("id", "acme")];
    let check = client
        .check_flag_detailed("beta", Context::company(&acme))
        .unwrap();
    assert_eq!((check.value, check.source), (true, CheckSource::Local));
    drop(client);
    runtime.block_on(server.stop());
}
