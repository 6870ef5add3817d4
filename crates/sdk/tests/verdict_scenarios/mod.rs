//! Random scenarios of the verdict property tests: companies, flags whose
//! rules mix trait, metric, company and user conditions, and their JSON for
//! the emulator. Shared by `datastream_verdicts` (local against REST) and
//! `redis_verdicts` (replicator mode against direct mode).
#![allow(dead_code)]

use flagwire::schematic::Client;
use flagwire_core::schematic::companies::ListEntityTraitDefinitions;
use flagwire_mock::MockServer;
use proptest::prelude::*;
use serde_json::{Value, json};

pub const TIERS: [&str; 3] = ["free", "pro", "enterprise"];

#[derive(Debug, Clone)]
pub struct CompanySpec {
    pub tier: usize,
    pub seats: i64,
    pub calls: i64,
}

#[derive(Debug, Clone)]
pub enum ConditionSpec {
    Tier { op: &'static str, tier: usize },
    Seats { op: &'static str, value: i64 },
    Calls { op: &'static str, value: i64 },
    Company { index: usize, negate: bool },
    UserPlan { op: &'static str, tier: usize },
}

#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub value: bool,
    pub priority: i64,
    pub conditions: Vec<ConditionSpec>,
    /// One OR group, when present.
    pub group: Vec<ConditionSpec>,
}

#[derive(Debug, Clone)]
pub struct FlagSpec {
    pub default_value: bool,
    pub rules: Vec<RuleSpec>,
}

pub fn op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["eq", "ne", "gt", "gte", "lt", "lte"])
}

pub fn condition(companies: usize) -> impl Strategy<Value = ConditionSpec> {
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

pub fn scenario() -> impl Strategy<Value = (Vec<CompanySpec>, Vec<FlagSpec>)> {
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

pub struct Defs {
    pub tier: String,
    pub seats: String,
    pub user_plan: String,
}

pub fn condition_json(c: &ConditionSpec, defs: &Defs, company_ids: &[String]) -> Value {
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

pub async fn trait_definition(client: &Client, name: &str) -> String {
    let defs = client
        .send(ListEntityTraitDefinitions::new())
        .await
        .unwrap();
    defs.into_iter()
        .find(|d| d.hierarchy.first().map(String::as_str) == Some(name))
        .map(|d| d.id)
        .unwrap_or_else(|| panic!("no trait definition {name}"))
}

/// Fills the emulator with the scenario: companies (traits, tracked usage),
/// one user per company, and the flags with their rules. Returns the REST
/// client used to read trait definitions (no result cache: every check it
/// makes asks the emulator).
pub async fn seed_scenario(
    server: &MockServer,
    companies: &[CompanySpec],
    flags: &[FlagSpec],
) -> Client {
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
    rest
}
