//! Flag checks: stored state converted to the core rules engine's model, and
//! the check handlers' evaluation and rendering.

use http::StatusCode;
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use flagwire_core::rules::{
    CheckOptions, Company, CompanyMetric, ComparableType, Condition as RCondition,
    ConditionGroup as RConditionGroup, ConditionType, EntityType, Evaluation, FeatureEntitlement,
    Flag as RFlag, MetricPeriod, MonthReset, Operator, PreparedCompany, PreparedUser, Reason,
    Rule as RRule, RuleType, Trait, TraitDefinition, User,
};

use crate::schematic::requests::CheckBody;
use crate::store::{Condition, Entity, Flag, Kind, Store, TraitDef, trait_string};
use crate::util::HandlerResult;

fn comparable(trait_type: &str) -> ComparableType {
    match trait_type {
        "number" => ComparableType::Int,
        "boolean" => ComparableType::Bool,
        "date" => ComparableType::Date,
        _ => ComparableType::String,
    }
}

fn entity_type(kind: Kind) -> EntityType {
    match kind {
        Kind::Company => EntityType::Company,
        Kind::User => EntityType::User,
    }
}

fn definition(def: &TraitDef) -> TraitDefinition {
    TraitDefinition::new(
        def.id.clone(),
        comparable(&def.trait_type),
        entity_type(def.kind),
    )
}

fn traits(store: &Store, e: &Entity) -> Vec<Trait> {
    e.traits
        .values()
        .filter_map(|t| {
            let def = store.trait_defs.get(&t.definition_id)?;
            Some(Trait::new(definition(def), trait_string(t)))
        })
        .collect()
}

/// A stored company in the rules engine's model.
pub(crate) fn company_model(store: &Store, e: &Entity) -> Company {
    let mut c = Company::new(e.id.clone());
    c.account_id.clone_from(&store.account_id);
    c.environment_id.clone_from(&store.environment_id);
    c.keys = e
        .keys
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    c.traits = traits(store, e);
    c.metrics = e
        .metrics
        .iter()
        .map(|m| {
            let mut metric = CompanyMetric::new(
                m.event_subtype.clone(),
                MetricPeriod::from_wire(m.period),
                MonthReset::from_wire(m.month_reset),
                m.value,
            );
            metric.company_id.clone_from(&e.id);
            metric.created_at = Some(m.created_at);
            metric.valid_until = m.valid_until;
            metric
        })
        .collect();
    c
}

/// A stored user in the rules engine's model.
pub(crate) fn user_model(store: &Store, e: &Entity) -> User {
    let mut u = User::new(e.id.clone());
    u.account_id.clone_from(&store.account_id);
    u.environment_id.clone_from(&store.environment_id);
    u.keys = e
        .keys
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    u.traits = traits(store, e);
    u
}

fn condition_model(store: &Store, c: &Condition) -> RCondition {
    let mut out = RCondition::default().with_id(c.id.clone());
    out.account_id.clone_from(&store.account_id);
    out.environment_id.clone_from(&store.environment_id);
    out.condition_type = ConditionType::from_wire(&c.condition_type);
    out.operator = Operator::from_wire(&c.operator);
    out.resource_ids.clone_from(&c.resource_ids);
    out.trait_definition = c
        .trait_id
        .as_ref()
        .and_then(|id| store.trait_defs.get(id))
        .map(definition);
    out.trait_value.clone_from(&c.trait_value);
    out.comparison_trait_definition = c
        .comparison_trait_id
        .as_ref()
        .and_then(|id| store.trait_defs.get(id))
        .map(definition);
    out.event_subtype.clone_from(&c.event_subtype);
    out.metric_value = c.metric_value;
    out.metric_period = c
        .metric_period
        .as_deref()
        .map(MetricPeriod::from_wire)
        .or_else(|| (c.condition_type == "metric").then_some(MetricPeriod::AllTime));
    out.metric_period_month_reset = c
        .metric_period_month_reset
        .as_deref()
        .map(MonthReset::from_wire);
    out.credit_id.clone_from(&c.credit_id);
    out.consumption_rate = c.credit_cost;
    out
}

/// A stored flag in the rules engine's model.
pub(crate) fn flag_model(store: &Store, f: &Flag) -> RFlag {
    let mut flag = RFlag::new(f.id.clone(), f.key.clone()).with_default_value(f.default_value);
    flag.account_id.clone_from(&store.account_id);
    flag.environment_id.clone_from(&store.environment_id);
    for r in &f.rules {
        let mut rule = RRule::new(
            r.id.clone(),
            r.name.clone(),
            RuleType::from_wire(&r.rule_type),
            r.value,
        )
        .with_priority(r.priority)
        .with_flag_id(f.id.clone());
        rule.account_id.clone_from(&store.account_id);
        rule.environment_id.clone_from(&store.environment_id);
        rule.conditions = r
            .conditions
            .iter()
            .map(|c| condition_model(store, c))
            .collect();
        rule.condition_groups = r
            .condition_groups
            .iter()
            .map(|g| {
                RConditionGroup::new(
                    g.conditions
                        .iter()
                        .map(|c| condition_model(store, c))
                        .collect(),
                )
            })
            .collect();
        flag = flag.with_rule(rule);
    }
    flag
}

fn display<S: Serializer>(reason: &Reason<'_>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(reason)
}

fn rule_type<S: Serializer>(t: &Option<&RuleType>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(t.as_str()),
        None => s.serialize_none(),
    }
}

fn period<S: Serializer>(p: &Option<&MetricPeriod>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.serialize_str(p.as_str()),
        None => s.serialize_none(),
    }
}

fn timestamp<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&crate::util::ts(*t)),
        None => s.serialize_none(),
    }
}

/// `CheckFlagResponseData`, borrowed from an evaluation.
#[derive(Serialize)]
pub(crate) struct CheckData<'a> {
    flag: &'a str,
    value: bool,
    #[serde(serialize_with = "display")]
    reason: Reason<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flag_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rule_type")]
    rule_type: Option<&'a RuleType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    company_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entitlement: Option<FeatureEntitlement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feature_usage: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feature_allocation: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    feature_usage_event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "period")]
    feature_usage_period: Option<&'a MetricPeriod>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "timestamp")]
    feature_usage_reset_at: Option<OffsetDateTime>,
}

impl<'a> From<Evaluation<'a>> for CheckData<'a> {
    fn from(e: Evaluation<'a>) -> Self {
        let usage = e.feature_usage;
        CheckData {
            flag: e.flag_key,
            value: e.value,
            reason: e.reason,
            flag_id: e.flag_id,
            rule_id: e.rule_id,
            rule_type: e.rule_type,
            company_id: e.company_id,
            user_id: e.user_id,
            entitlement: e.entitlement.and_then(|x| x.parse().ok()),
            feature_usage: usage.map(|u| u.usage),
            feature_allocation: usage.map(|u| u.allocation),
            feature_usage_event: usage.and_then(|u| u.event),
            feature_usage_period: usage.and_then(|u| u.period),
            feature_usage_reset_at: usage.and_then(|u| u.reset_at),
        }
    }
}

/// The subjects and options of one check context.
struct Context<'s> {
    company: Option<&'s PreparedCompany>,
    user: Option<&'s PreparedUser>,
    credit_cost: Vec<(&'s str, f64)>,
}

fn context<'s>(store: &'s Store, body: &'s CheckBody) -> Context<'s> {
    let company = body
        .company
        .value()
        .and_then(|keys| {
            store.find_by_key_pairs(
                Kind::Company,
                keys.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
        })
        .and_then(|id| store.prepared_companies.get(id));
    let user = body
        .user
        .value()
        .and_then(|keys| {
            store.find_by_key_pairs(
                Kind::User,
                keys.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
        })
        .and_then(|id| store.prepared_users.get(id));
    let credit_cost = body
        .preflight
        .iter()
        .flat_map(|p| p.credit_cost.iter().flatten())
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    Context {
        company,
        user,
        credit_cost,
    }
}

fn options<'o>(body: &'o CheckBody, credit_cost: &'o [(&'o str, f64)]) -> CheckOptions<'o> {
    let mut o = CheckOptions::new().credit_cost(credit_cost);
    if let Some(p) = &body.preflight {
        if let Some(&u) = p.usage.value() {
            o = o.usage(u);
        }
        if let Some(ev) = &p.event_usage {
            o = o.event_usage(&ev.event_subtype, ev.quantity);
        }
    }
    o
}

fn reply<T: Serialize>(status: StatusCode, data: &T) -> HandlerResult {
    crate::util::envelope(
        status,
        data,
        &serde_json::Value::Object(serde_json::Map::new()),
    )
}

/// `POST /flags/{key}/check`. An unknown key evaluates to `false` with
/// reason "Flag not found", as the rules engine reports it.
pub(crate) fn check_one(store: &Store, key: &str, body: &CheckBody) -> HandlerResult {
    let cx = context(store, body);
    let opts = options(body, &cx.credit_cost);
    let eval = store
        .engine
        .check_with(key, cx.company, cx.user, crate::util::now(), &opts);
    reply(StatusCode::OK, &CheckData::from(eval))
}

/// `CheckFlagsResponseData` for one context.
fn all_flags(store: &Store, body: &CheckBody, now: OffsetDateTime) -> serde_json::Value {
    let cx = context(store, body);
    let opts = options(body, &cx.credit_cost);
    let flags: Vec<CheckData<'_>> = store
        .flags
        .values()
        .map(|f| {
            CheckData::from(
                store
                    .engine
                    .check_with(&f.key, cx.company, cx.user, now, &opts),
            )
        })
        .collect();
    serde_json::json!({ "flags": flags, "credit_spend_policies": [] })
}

/// `POST /flags/check`.
pub(crate) fn check_all(store: &Store, body: &CheckBody) -> HandlerResult {
    reply(
        StatusCode::CREATED,
        &all_flags(store, body, crate::util::now()),
    )
}

/// `POST /flags/check-bulk`.
pub(crate) fn check_bulk(store: &Store, bodies: &[CheckBody]) -> HandlerResult {
    let now = crate::util::now();
    let data: Vec<serde_json::Value> = bodies.iter().map(|b| all_flags(store, b, now)).collect();
    reply(StatusCode::CREATED, &serde_json::json!({ "data": data }))
}
