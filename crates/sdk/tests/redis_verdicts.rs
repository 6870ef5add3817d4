//! Property test: for random flags, companies and users held by the
//! emulator, a check in replicator mode (the emulator writing Redis as the
//! replicator does, the client evaluating from Redis) gives the same
//! verdict as a check evaluated from a direct DataStream socket.

mod redis_support;

use std::time::Duration;

use flagwire::Context;
use flagwire::datastream::DataStreamOptions;
use flagwire::redis::{RedisOptions, ReplicatorOptions};
use flagwire::schematic::{CheckSource, Client};
use flagwire_core::schematic::companies::ListEntityTraitDefinitions;
use flagwire_mock::MockServer;
use proptest::prelude::*;
use redis_support::RedisServer;
use serde_json::{Value, json};

const TIERS: [&str; 3] = ["free", "pro", "enterprise"];

#[derive(Debug, Clone)]
struct CompanySpec {
    tier: usize,
    seats: i64,
    calls: i64,
}

#[derive(Debug, Clone)]
enum ConditionSpec {
    Tier { op: &'static str, tier: usize },
    Seats { op: &'static str, value: i64 },
    Calls { op: &'static str, value: i64 },
    Company { index: usize, negate: bool },
    UserPlan { op: &'static str, tier: usize },
}

#[derive(Debug, Clone)]
struct RuleSpec {
    value: bool,
    priority: i64,
    conditions: Vec<ConditionSpec>,
    /// One OR group, when present.
    group: Vec<ConditionSpec>,
}

#[derive(Debug, Clone)]
struct FlagSpec {
    default_value: bool,
    rules: Vec<RuleSpec>,
}

fn op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["eq", "ne", "gt", "gte", "lt", "lte"])
}

fn condition(companies: usize) -> impl Strategy<Value = ConditionSpec> {
    prop_oneof![
        (prop::sample::select(vec!["eq", "ne"]), 0..TIERS.len())
            .prop_map(|(op, tier)| ConditionSpec::Tier { op, tier }),
        (op(), 0i64..20).prop_map(|(op, value)| ConditionSpec::Seats { op, value }),
        (op(), 0i64..6).prop_map(|(op, value)| ConditionSpec::Calls { op, value }),
        (0..companies, any::<bool>())
            .prop_map(|(index, negate)| ConditionSpec::Company { index, negate }),
        (prop::sample::select(vec!["eq", "ne"]), 0..TIERS.len())
            .prop_map(|(op, tier)| ConditionSpec::UserPlan { op, tier }),
    ]
}

fn scenario() -> impl Strategy<Value = (Vec<CompanySpec>, Vec<FlagSpec>)> {
    let companies = prop::collection::vec(
        (0..TIERS.len(), 0i64..20, 0i64..6).prop_map(|(tier, seats, calls)| CompanySpec {
            tier,
            seats,
            calls,
        }),
        1..5,
    );
    companies.prop_flat_map(|companies| {
        let n = companies.len();
        let rule = (
            any::<bool>(),
            0i64..5,
            prop::collection::vec(condition(n), 0..3),
            prop::collection::vec(condition(n), 0..3),
        )
            .prop_map(|(value, priority, conditions, group)| RuleSpec {
                value,
                priority,
                conditions,
                group,
            });
        let flag = (any::<bool>(), prop::collection::vec(rule, 0..4)).prop_map(
            |(default_value, rules)| FlagSpec {
                default_value,
                rules,
            },
        );
        (Just(companies), prop::collection::vec(flag, 1..4))
    })
}

struct Defs {
    tier: String,
    seats: String,
    user_plan: String,
}

fn condition_json(c: &ConditionSpec, defs: &Defs, company_ids: &[String]) -> Value {
    match c {
        ConditionSpec::Tier { op, tier } => json!({"condition_type": "trait", "operator": op,
            "resource_ids": [], "trait_id": defs.tier, "trait_value": TIERS[*tier]}),
        ConditionSpec::Seats { op, value } => json!({"condition_type": "trait", "operator": op,
            "resource_ids": [], "trait_id": defs.seats, "trait_value": value.to_string()}),
        ConditionSpec::Calls { op, value } => json!({"condition_type": "metric", "operator": op,
            "resource_ids": [], "event_subtype": "api-call", "metric_value": value,
            "metric_period": "all_time"}),
        ConditionSpec::Company { index, negate } => json!({"condition_type": "company",
            "operator": if *negate { "ne" } else { "eq" }, "resource_ids": [company_ids[*index]]}),
        ConditionSpec::UserPlan { op, tier } => json!({"condition_type": "trait", "operator": op,
            "resource_ids": [], "trait_id": defs.user_plan, "trait_value": TIERS[*tier]}),
    }
}

async fn trait_definition(client: &Client, name: &str) -> String {
    let defs = client
        .send(ListEntityTraitDefinitions::new())
        .await
        .unwrap();
    defs.into_iter()
        .find(|d| d.hierarchy.first().map(String::as_str) == Some(name))
        .map(|d| d.id)
        .unwrap_or_else(|| panic!("no trait definition {name}"))
}

async fn run(
    redis: &RedisServer,
    companies: Vec<CompanySpec>,
    flags: Vec<FlagSpec>,
) -> Result<(), TestCaseError> {
    let server = MockServer::builder()
        .cache_version("v1")
        .start()
        .await
        .unwrap();
    let mut company_ids = Vec::new();
    for (i, c) in companies.iter().enumerate() {
        let company = server
            .upsert_company(json!({"keys": {"id": format!("co{i}")},
                "traits": {"tier": TIERS[c.tier], "seats": c.seats}}))
            .unwrap();
        company_ids.push(company["id"].as_str().unwrap().to_owned());
        if c.calls > 0 {
            server
                .track(&[("id", &format!("co{i}"))], "api-call", c.calls)
                .unwrap();
        }
        server
            .upsert_user(json!({"keys": {"email": format!("u{i}@example.com")},
                "traits": {"plan": TIERS[(c.tier + i) % TIERS.len()]}, "company": {"id": format!("co{i}")}}))
            .unwrap();
    }
    let rest = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .disable_cache()
        .build()
        .unwrap();
    let defs = Defs {
        tier: trait_definition(&rest, "tier").await,
        seats: trait_definition(&rest, "seats").await,
        user_plan: trait_definition(&rest, "plan").await,
    };
    for (f, spec) in flags.iter().enumerate() {
        let key = format!("flag-{f}");
        server
            .create_flag(
                json!({"key": key, "name": key, "description": "", "flag_type": "boolean",
                "default_value": spec.default_value}),
            )
            .unwrap();
        let rules: Vec<Value> = spec
            .rules
            .iter()
            .enumerate()
            .map(|(r, rule)| {
                let group: Vec<Value> = rule
                    .group
                    .iter()
                    .map(|c| condition_json(c, &defs, &company_ids))
                    .collect();
                json!({"name": format!("rule {r}"), "priority": rule.priority, "value": rule.value,
                    "conditions": rule.conditions.iter().map(|c| condition_json(c, &defs, &company_ids)).collect::<Vec<_>>(),
                    "condition_groups": if group.is_empty() { json!([]) } else { json!([{"conditions": group}]) }})
            })
            .collect();
        server.set_flag_rules(&key, json!(rules)).unwrap();
    }
    server
        .start_redis_replicator(&redis.url(), "schematic")
        .await
        .unwrap();
    prop_assert!(
        server
            .redis_replicator_synced(Duration::from_secs(10))
            .await
    );
    let direct = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .datastream(DataStreamOptions::new().flag_check_events(false))
        .disable_cache()
        .build()
        .unwrap();
    prop_assert!(direct.wait_until_ready(Duration::from_secs(10)).await);
    let replicated = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .replicator(
            ReplicatorOptions::new(RedisOptions::new(redis.url()))
                .health_url(format!("{}/ready", server.rest_url()))
                .flag_check_events(false),
        )
        .disable_cache()
        .build()
        .unwrap();
    prop_assert!(replicated.wait_until_ready(Duration::from_secs(10)).await);

    for i in 0..companies.len() {
        let company = [("id", format!("co{i}"))];
        let user = [("email", format!("u{i}@example.com"))];
        let contexts = [
            Context::company(&company),
            Context::user(&user),
            Context::company(&company).with_user(&user),
            Context::none(),
        ];
        for context in contexts {
            for f in 0..flags.len() {
                let key = format!("flag-{f}");
                let expected = direct.check_flag_detailed(&key, context).await;
                // Twice: once through Redis, once from the in-process layer.
                for _ in 0..2 {
                    let got = replicated.check_flag_detailed(&key, context).await;
                    prop_assert_eq!(expected.source, CheckSource::Local);
                    prop_assert_eq!(got.source, CheckSource::Local, "{:?}", got);
                    prop_assert_eq!(got.value, expected.value, "{} {:?}", key, context);
                    prop_assert_eq!(&got.rule_id, &expected.rule_id);
                    prop_assert_eq!(&got.reason, &expected.reason);
                    prop_assert_eq!(&got.company_id, &expected.company_id);
                    prop_assert_eq!(&got.user_id, &expected.user_id);
                    prop_assert_eq!(&got.entitlement, &expected.entitlement);
                }
            }
        }
    }
    direct.shutdown(Duration::from_secs(2)).await;
    replicated.shutdown(Duration::from_secs(2)).await;
    rest.shutdown(Duration::from_secs(2)).await;
    server.stop().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn replicator_verdicts_equal_direct_verdicts((companies, flags) in scenario()) {
        // A server per case, killed when the case ends.
        let Some(redis) = RedisServer::start() else { return Ok(()) };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(&redis, companies, flags))?;
    }
}
