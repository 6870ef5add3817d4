//! The Redis entity caches and flag-check cache against a real
//! `redis-server`: round trips, the replicator's key layout, lookup-key
//! cleanup, TTLs, sharing, versions, corrupt values, outages.

mod redis_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flagwire::cache::{CacheChain, FlagCache, FlagCacheKey};
use flagwire::redis::{Found, Redis, RedisErrorKind, RedisFlagCache, RedisOptions};
use flagwire::schematic::{CachedCheck, CheckSource};
use flagwire_core::rules::{Company, Flag, User};
use redis_support::RedisServer;
use serde_json::json;

fn company(id: &str, keys: &[(&str, &str)], tier: &str) -> Company {
    serde_json::from_value(json!({
        "id": id,
        "account_id": "acct_1",
        "environment_id": "env_1",
        "keys": keys.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        "traits": [{"value": tier, "trait_definition": {"id": "trait_tier", "comparable_type": "string", "entity_type": "company"}}],
        "plan_ids": ["plan_pro"],
        "metrics": [{"account_id": "acct_1", "environment_id": "env_1", "company_id": id,
            "event_subtype": "api-call", "period": "all_time", "month_reset": "first_of_month", "value": 7}],
        "credit_balances": {"credit_ai": 2.5},
    }))
    .unwrap()
}

fn user(id: &str, keys: &[(&str, &str)]) -> User {
    serde_json::from_value(json!({
        "id": id,
        "keys": keys.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        "traits": [],
    }))
    .unwrap()
}

fn flag(key: &str, default_value: bool) -> Flag {
    serde_json::from_value(json!({
        "id": format!("flag_{key}"),
        "account_id": "acct_1",
        "environment_id": "env_1",
        "key": key,
        "default_value": default_value,
        "rules": [{"id": "rule_1", "name": "pro", "rule_type": "standard", "priority": 1, "value": !default_value,
            "account_id": "acct_1", "environment_id": "env_1",
            "conditions": [{"id": "cond_1", "condition_type": "plan", "operator": "eq", "resource_ids": ["plan_pro"]}],
            "condition_groups": []}],
    }))
    .unwrap()
}

fn open(server: &RedisServer) -> Redis {
    Redis::open(RedisOptions::new(server.url())).unwrap()
}

#[tokio::test]
async fn every_entity_type_round_trips_in_the_replicators_layout() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = open(&server).entity_store();

    let f = flag("New-Editor", false);
    store.write_flag(&f).await.unwrap();
    assert_eq!(store.flag("new-editor").await.unwrap(), Some(f.clone()));
    assert_eq!(store.flag("NEW-EDITOR").await.unwrap(), Some(f.clone()));
    let raw: serde_json::Value =
        serde_json::from_str(&server.get("schematic:flags:1:new-editor").unwrap()).unwrap();
    assert_eq!(raw["default_value"], false, "snake_case wire form");
    assert_eq!(raw["rules"][0]["rule_type"], "standard");

    let c = company("co_ABC", &[("Domain", "Acme.COM"), ("id", "acme")], "pro");
    store.write_company(&c).await.unwrap();
    assert_eq!(store.company("co_ABC").await.unwrap(), Some(c.clone()));
    assert_eq!(
        server.get("schematic:company:1:domain:acme.com").as_deref(),
        Some("co_ABC")
    );
    assert_eq!(
        server.get("schematic:company:1:id:acme").as_deref(),
        Some("co_ABC")
    );
    assert!(
        server.get("schematic:company:1:co_ABC").is_some(),
        "id not lower-cased"
    );
    let raw: serde_json::Value =
        serde_json::from_str(&server.get("schematic:company:1:co_ABC").unwrap()).unwrap();
    assert_eq!(raw["plan_ids"][0], "plan_pro");
    assert_eq!(raw["credit_balances"]["credit_ai"], 2.5);
    let by_keys = store.find_company(&[("DOMAIN", "acme.com")]).await.unwrap();
    assert_eq!(by_keys, Found::One(c.clone()));

    let u = user("user_1", &[("email", "Ann@Example.com")]);
    store.write_user(&u).await.unwrap();
    assert_eq!(store.user("user_1").await.unwrap(), Some(u.clone()));
    assert_eq!(
        server
            .get("schematic:user:1:email:ann@example.com")
            .as_deref(),
        Some("user_1")
    );
    assert_eq!(
        store
            .find_user(&[("email", "ann@example.com")])
            .await
            .unwrap(),
        Found::One(u)
    );

    // Missing things are missing, not errors.
    assert_eq!(store.flag("nope").await.unwrap(), None);
    assert_eq!(store.company("nope").await.unwrap(), None);
    assert_eq!(
        store.find_company(&[("id", "nope")]).await.unwrap(),
        Found::Missing
    );
    // Entities without keys are refused (nothing could find them).
    let keyless = company("co_x", &[], "free");
    assert!(store.write_company(&keyless).await.is_err());
}

#[tokio::test]
async fn lookup_keys_are_cleaned_up_on_update_and_delete() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = open(&server).entity_store();
    store
        .write_company(&company("co_1", &[("id", "a"), ("domain", "a.com")], "pro"))
        .await
        .unwrap();
    // Update: `domain` changes, `id` stays.
    store
        .write_company(&company("co_1", &[("id", "a"), ("domain", "b.com")], "pro"))
        .await
        .unwrap();
    assert_eq!(server.get("schematic:company:1:domain:a.com"), None);
    assert_eq!(
        server.get("schematic:company:1:domain:b.com").as_deref(),
        Some("co_1")
    );
    assert_eq!(
        server.get("schematic:company:1:id:a").as_deref(),
        Some("co_1")
    );
    assert_eq!(
        store.find_company(&[("domain", "a.com")]).await.unwrap(),
        Found::Missing
    );

    // A key that moved to another company is not taken from it.
    store
        .write_company(&company("co_2", &[("domain", "b.com")], "free"))
        .await
        .unwrap();
    store
        .write_company(&company("co_1", &[("id", "a")], "pro"))
        .await
        .unwrap();
    assert_eq!(
        server.get("schematic:company:1:domain:b.com").as_deref(),
        Some("co_2")
    );

    // Two keys naming different companies are a conflict.
    assert_eq!(
        store
            .find_company(&[("id", "a"), ("domain", "b.com")])
            .await
            .unwrap(),
        Found::Conflict
    );

    // Delete: the entity and every lookup key leading to it.
    store
        .delete_company(
            "co_1",
            &BTreeMap::from([("legacy".to_owned(), "x".to_owned())]),
        )
        .await
        .unwrap();
    assert_eq!(server.get("schematic:company:1:co_1"), None);
    assert_eq!(server.get("schematic:company:1:id:a"), None);
    assert_eq!(
        server.get("schematic:company:1:domain:b.com").as_deref(),
        Some("co_2")
    );

    store
        .write_user(&user("u_1", &[("email", "a@x"), ("slack", "U1")]))
        .await
        .unwrap();
    store
        .write_user(&user("u_1", &[("email", "a@x")]))
        .await
        .unwrap();
    assert_eq!(server.get("schematic:user:1:slack:u1"), None);
    store.delete_user("u_1", &BTreeMap::new()).await.unwrap();
    assert_eq!(server.get("schematic:user:1:email:a@x"), None);
    assert_eq!(store.user("u_1").await.unwrap(), None);

    // Flags: a full set replaces the version's flags; deletes by key.
    store.write_flag(&flag("old", false)).await.unwrap();
    store
        .replace_flags(&[flag("a", true), flag("b", false)])
        .await
        .unwrap();
    assert_eq!(store.flag("old").await.unwrap(), None);
    assert!(store.flag("a").await.unwrap().is_some());
    store.delete_flag("A").await.unwrap();
    assert_eq!(store.flag("a").await.unwrap(), None);
}

#[tokio::test]
async fn ttls_follow_the_options() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = open(&server).entity_store();
    store.write_flag(&flag("f", false)).await.unwrap();
    store
        .write_company(&company("co_1", &[("id", "a")], "pro"))
        .await
        .unwrap();
    let day = 24 * 60 * 60 * 1000;
    let entity = server.pttl("schematic:company:1:co_1");
    assert!(entity > day - 60_000 && entity <= day, "{entity}");
    let lookup = server.pttl("schematic:company:1:id:a");
    assert!(lookup > day - 60_000 && lookup <= day, "{lookup}");
    let flag_ttl = server.pttl("schematic:flags:1:f");
    assert!(
        flag_ttl > 30 * day - 60_000,
        "flags live at least 30 days: {flag_ttl}"
    );

    let forever = Redis::open(RedisOptions::new(server.url()).entity_ttl(None))
        .unwrap()
        .entity_store();
    forever
        .write_company(&company("co_2", &[("id", "b")], "pro"))
        .await
        .unwrap();
    forever.write_flag(&flag("g", false)).await.unwrap();
    assert_eq!(server.pttl("schematic:company:1:co_2"), -1);
    assert_eq!(server.pttl("schematic:company:1:id:b"), -1);
    assert_eq!(server.pttl("schematic:flags:1:g"), -1);

    let short =
        Redis::open(RedisOptions::new(server.url()).entity_ttl(Some(Duration::from_millis(300))))
            .unwrap()
            .entity_store();
    short
        .write_user(&user("u_1", &[("id", "u")]))
        .await
        .unwrap();
    assert!(short.user("u_1").await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(short.user("u_1").await.unwrap(), None);
    assert_eq!(
        short.find_user(&[("id", "u")]).await.unwrap(),
        Found::Missing
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_on_one_redis_see_each_others_writes() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = open(&server).entity_store();
    let b = open(&server).entity_store();
    a.write_company(&company("co_1", &[("id", "a")], "pro"))
        .await
        .unwrap();
    assert!(
        matches!(b.find_company(&[("id", "a")]).await.unwrap(), Found::One(c) if c.id == "co_1")
    );
    b.write_company(&company("co_1", &[("id", "a")], "enterprise"))
        .await
        .unwrap();
    let seen = a.company("co_1").await.unwrap().unwrap();
    assert_eq!(seen, company("co_1", &[("id", "a")], "enterprise"));

    // The flag-check cache too: an answer one client cached serves another.
    let cache_a = RedisFlagCache::builder(open(&server)).build();
    let cache_b = RedisFlagCache::builder(open(&server)).build();
    let key = FlagCacheKey::new("new-editor", &[("id", "acme")], &());
    let check = CachedCheck::new(api_check("new-editor", true).await);
    cache_a.insert(&key, check.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let got = loop {
        // The write goes out in the background.
        if let Some(v) = tokio::task::block_in_place(|| cache_b.get(&key).unwrap()) {
            break v;
        }
        assert!(Instant::now() < deadline, "the answer never reached Redis");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(got.value);
    assert_eq!(got.reason, "rule 3");
    assert_eq!(got.rule_id.as_deref(), Some("rule_3"));
    assert!(
        server
            .get("schematic:flag_check:f:new-editor;c:id:acme")
            .is_some()
    );
    let ttl = server.pttl("schematic:flag_check:f:new-editor;c:id:acme");
    assert!(ttl > 0 && ttl <= 5_000, "{ttl}");

    // A miss is read once, then not asked again for the miss TTL.
    let other = FlagCacheKey::new("other", &[("id", "acme")], &());
    let misses = server.info_stat("keyspace_misses");
    for _ in 0..5 {
        assert!(tokio::task::block_in_place(|| cache_b.get(&other).unwrap()).is_none());
    }
    assert_eq!(server.info_stat("keyspace_misses"), misses + 1);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(tokio::task::block_in_place(|| cache_b.get(&other).unwrap()).is_none());
    assert_eq!(server.info_stat("keyspace_misses"), misses + 2);
}

async fn api_check(flag: &str, value: bool) -> flagwire::schematic::FlagCheck {
    // An offline check, dressed as an API answer (the type cannot be built
    // outside the crate).
    let client = flagwire::schematic::Client::builder("sch_dev_test")
        .offline(true)
        .flag_default(flag, value)
        .build()
        .unwrap();
    let mut check = client.check_flag_detailed(flag, ()).await;
    check.reason = "rule 3".to_owned();
    check.rule_id = Some("rule_3".to_owned());
    check.source = CheckSource::Api;
    check
}

#[tokio::test]
async fn the_version_segment_is_honoured() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let redis = Redis::open(RedisOptions::new(server.url()).version("14269364")).unwrap();
    let v1 = redis.entity_store();
    assert_eq!(v1.version(), "14269364");
    let v2 = v1.with_version("fde6dba2");
    v1.write_flag(&flag("f", true)).await.unwrap();
    v1.write_company(&company("co_1", &[("id", "a")], "pro"))
        .await
        .unwrap();
    assert!(server.get("schematic:flags:14269364:f").is_some());
    assert!(server.get("schematic:company:14269364:id:a").is_some());
    assert_eq!(v2.flag("f").await.unwrap(), None);
    assert_eq!(
        v2.find_company(&[("id", "a")]).await.unwrap(),
        Found::Missing
    );
    // A full flag set of one version leaves the other's alone.
    v2.replace_flags(&[flag("g", false)]).await.unwrap();
    assert!(v1.flag("f").await.unwrap().is_some());

    // And the prefix.
    let other = Redis::open(RedisOptions::new(server.url()).prefix("app:sch"))
        .unwrap()
        .entity_store();
    other.write_flag(&flag("h", true)).await.unwrap();
    assert!(server.get("app:sch:flags:1:h").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_values_are_skipped_and_counted() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let redis = open(&server);
    let store = redis.entity_store();
    server.cmd(&["SET", "schematic:flags:1:bad", "{not json"]);
    server.cmd(&["SET", "schematic:company:1:co_bad", "[1,2]"]);
    server.cmd(&["SET", "schematic:company:1:id:bad", "co_bad"]);
    server.cmd(&["SET", "schematic:user:1:u_bad", "\"a string\""]);
    assert_eq!(store.flag("bad").await.unwrap(), None);
    assert_eq!(store.company("co_bad").await.unwrap(), None);
    assert_eq!(
        store.find_company(&[("id", "bad")]).await.unwrap(),
        Found::Missing
    );
    assert_eq!(store.user("u_bad").await.unwrap(), None);
    assert_eq!(redis.stats().corrupt, 4);
    // Writing over a corrupt entity works (nothing stale can be known).
    store
        .write_company(&company("co_bad", &[("id", "bad")], "pro"))
        .await
        .unwrap();
    assert!(store.company("co_bad").await.unwrap().is_some());
    // (the write read the corrupt version first: one more skip)
    assert_eq!(redis.stats().corrupt, 5);

    let cache = RedisFlagCache::builder(redis.clone()).build();
    server.cmd(&["SET", "schematic:flag_check:f:x", "{\"flag\":1}"]);
    let key = FlagCacheKey::new("x", &(), &());
    let got = tokio::task::block_in_place(|| cache.get(&key).unwrap());
    assert!(got.is_none());
    assert_eq!(redis.stats().corrupt, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_url_fails_and_an_unreachable_redis_does_not() {
    for bad in ["not a url", "http://127.0.0.1:6379", "redis://:pw@[::1"] {
        let e = Redis::open(RedisOptions::new(bad)).unwrap_err();
        assert_eq!(e.kind(), RedisErrorKind::InvalidUrl, "{bad}");
        assert!(!e.to_string().contains("pw"));
    }
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = Redis::open(
        RedisOptions::new(format!("redis://127.0.0.1:{port}/"))
            .command_timeout(Duration::from_millis(200)),
    )
    .unwrap();
    let started = Instant::now();
    let e = redis.entity_store().flag("f").await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(redis.stats().errors >= 1);

    // The flag-check cache: a failed read is a miss, and the chain counts it.
    let chain: CacheChain<CachedCheck> =
        CacheChain::new(vec![Arc::new(RedisFlagCache::builder(redis).build())]);
    let key = FlagCacheKey::new("f", &(), &());
    let started = Instant::now();
    for _ in 0..100 {
        assert!(chain.get(&key).is_none());
    }
    // Only the first read waits; the next ones skip Redis for a second.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(chain.errors() >= 100);
}
