//! Direct mode sharing its entity caches through Redis: what one client's
//! socket brings is written to Redis, and another client reads a company it
//! lacks from Redis before asking its own socket.

mod redis_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use flagwire::Context;
use flagwire::datastream::DataStreamOptions;
use flagwire::redis::{Redis, RedisOptions};
use flagwire::schematic::{CheckSource, Client};
use flagwire_core::rules::Company;
use flagwire_mock::MockServer;
use redis_support::RedisServer;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn client(server: &MockServer, redis: &RedisServer) -> Client {
    Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .datastream(
            DataStreamOptions::new()
                .flag_check_events(false)
                .redis(RedisOptions::new(redis.url())),
        )
        .disable_cache()
        .build()
        .unwrap()
}

async fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_socket_brings_serves_another_client() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server = MockServer::start().await.unwrap();
    let acme = server
        .upsert_company(json!({"keys": {"id": "acme"}, "traits": {"tier": "gold"}}))
        .unwrap();
    let acme_id = acme["id"].as_str().unwrap().to_owned();
    server
        .create_flag(json!({"key": "beta", "name": "beta", "description": "",
            "flag_type": "boolean", "default_value": false}))
        .unwrap();
    server
        .set_flag_rules(
            "beta",
            json!([{"name": "acme", "priority": 1, "value": true, "conditions": [
                {"condition_type": "company", "operator": "eq", "resource_ids": [acme_id]}
            ], "condition_groups": []}]),
        )
        .unwrap();

    // Client A fetches acme over its socket; the flags and acme reach Redis.
    let a = client(&server, &redis);
    assert!(a.wait_until_ready(WAIT).await);
    let ctx = [("id", "acme")];
    let check = a.check_flag_detailed("beta", Context::company(&ctx)).await;
    assert_eq!((check.value, check.source), (true, CheckSource::Local));
    assert!(wait_for(|| redis.get("schematic:flags:1:beta").is_some()).await);
    assert!(
        wait_for(|| redis.get("schematic:company:1:id:acme").as_deref() == Some(acme_id.as_str()))
            .await
    );
    let stored: Company = serde_json::from_str(
        &redis
            .get(&format!("schematic:company:1:{acme_id}"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored.id, acme_id);

    // A company only Redis knows (the emulator does not): client B answers
    // from it, which proves the read came from Redis.
    let store = Redis::open(RedisOptions::new(redis.url()))
        .unwrap()
        .entity_store();
    let mut ghost: Company =
        serde_json::from_value(json!({"id": acme_id, "keys": {"id": "only-in-redis"}})).unwrap();
    ghost.keys = BTreeMap::from([("id".to_owned(), "only-in-redis".to_owned())]);
    store.write_company(&ghost).await.unwrap();
    let b = client(&server, &redis);
    assert!(b.wait_until_ready(WAIT).await);
    let only = [("id", "only-in-redis")];
    let check = b.check_flag_detailed("beta", Context::company(&only)).await;
    assert_eq!(
        (check.value, check.source),
        (true, CheckSource::Local),
        "{check:?}"
    );
    assert_eq!(check.company_id.as_deref(), Some(acme_id.as_str()));

    // A change pushed to A (a partial) is written to Redis as the merged
    // company.
    server
        .upsert_company(json!({"keys": {"id": "acme"}, "traits": {"tier": "platinum"}}))
        .unwrap();
    let key = format!("schematic:company:1:{acme_id}");
    assert!(
        wait_for(|| redis.get(&key).is_some_and(|v| v.contains("platinum"))).await,
        "{:?}",
        redis.get(&key)
    );

    a.shutdown(Duration::from_secs(2)).await;
    b.shutdown(Duration::from_secs(2)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_costs_only_the_reads() {
    let server = MockServer::start().await.unwrap();
    server
        .upsert_company(json!({"keys": {"id": "acme"}}))
        .unwrap();
    server
        .create_flag(json!({"key": "beta", "name": "beta", "description": "",
            "flag_type": "boolean", "default_value": true}))
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .datastream(
            DataStreamOptions::new().redis(
                RedisOptions::new(format!("redis://127.0.0.1:{port}"))
                    .command_timeout(Duration::from_millis(100)),
            ),
        )
        .build()
        .unwrap();
    assert!(client.wait_until_ready(WAIT).await);
    let ctx = [("id", "acme")];
    let check = client
        .check_flag_detailed("beta", Context::company(&ctx))
        .await;
    assert_eq!((check.value, check.source), (true, CheckSource::Local));

    let bad = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .datastream(DataStreamOptions::new().redis(RedisOptions::new("redis://[::1")))
        .build();
    assert!(bad.is_err());
    client.shutdown(Duration::from_secs(2)).await;
    server.stop().await;
}
