//! Behaviour of the flag rules engine: condition types × operators ×
//! comparable types, rule ordering, groups, preflight and credit logic,
//! entitlement reporting and JSON decoding.

use flagwire_core::rules::{
    CheckFlagResult, CheckOptions, Company, CompanyMetric, ComparableType, Condition,
    ConditionType, CreditPostpaidConfig, CreditSpendPolicy, CreditSpendWindow, ENGINE_VERSION_KEY,
    EntityType, Evaluation, FeatureEntitlement, Flag, MetricPeriod, MonthReset, Operator,
    PreflightError, PreparedCompany, PreparedUser, Reason, Rule, RuleType, RulesEngine,
    SpendPolicyScope, Subscription, Trait, TraitDefinition, User, WarningTier,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// Wednesday, 6 March 2024, noon UTC.
const NOW: OffsetDateTime = datetime!(2024-03-06 12:00 UTC);

const OPS: [&str; 9] = [
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_empty",
    "not_empty",
    "between",
];

fn op(name: &str) -> Operator {
    Operator::from_wire(name)
}

/// A flag whose only rule (standard, value true) has `conditions`.
fn flag_with(conditions: Vec<Condition>) -> Flag {
    let mut rule = Rule::new("rule_1", "Target", RuleType::Standard, true);
    rule.conditions = conditions;
    Flag::new("flag_1", "feature").with_rule(rule)
}

fn eval_with(
    flag: Flag,
    company: Option<Company>,
    user: Option<User>,
    options: CheckOptions<'_>,
) -> (bool, String) {
    let engine = RulesEngine::new([flag]);
    let company = company.map(PreparedCompany::new);
    let user = user.map(PreparedUser::new);
    let e = engine.check_with("feature", company.as_ref(), user.as_ref(), NOW, &options);
    (e.value, e.reason.to_string())
}

fn matches(condition: Condition, company: Option<Company>, user: Option<User>) -> bool {
    matches_with(condition, company, user, CheckOptions::new())
}

fn matches_with(
    condition: Condition,
    company: Option<Company>,
    user: Option<User>,
    options: CheckOptions<'_>,
) -> bool {
    eval_with(flag_with(vec![condition]), company, user, options).0
}

fn company(id: &str) -> Company {
    Company::new(id)
}

// ---------------------------------------------------------------------------
// Id conditions

#[test]
fn id_conditions_every_operator() {
    type Build = fn(Operator, &[&str]) -> Condition;
    let kinds: [(&str, Build); 5] = [
        ("company", Condition::company),
        ("user", Condition::user),
        ("plan", Condition::plan),
        ("plan_version", Condition::plan_version),
        ("billing_product", Condition::billing_product),
    ];
    for (kind, build) in kinds {
        for name in OPS {
            for (ids, member) in [
                (&["x", "target", "y"][..], true),
                (&["x", "y"][..], false),
                (&[][..], false),
            ] {
                let mut co = company("target");
                co.plan_ids = vec!["other".into(), "target".into()];
                co.plan_version_ids = vec!["target".into()];
                co.billing_product_ids = vec!["target".into(), "zzz".into()];
                let user = User::new("target");
                let got = matches(build(op(name), ids), Some(co), Some(user));
                // Only `ne` negates; every other operator means membership.
                let want = if name == "ne" { !member } else { member };
                assert_eq!(got, want, "{kind} {name} member={member}");
            }
        }
    }
}

#[test]
fn id_conditions_without_entity_never_match() {
    for name in ["eq", "ne"] {
        assert!(!matches(
            Condition::company(op(name), &["c"]),
            None,
            Some(User::new("u"))
        ));
        assert!(!matches(
            Condition::user(op(name), &["u"]),
            Some(company("c")),
            None
        ));
        assert!(!matches(Condition::plan(op(name), &["p"]), None, None));
        assert!(!matches(
            Condition::plan_version(op(name), &["p"]),
            None,
            None
        ));
        assert!(!matches(
            Condition::billing_product(op(name), &["p"]),
            None,
            None
        ));
        assert!(!matches(Condition::base_plan(op(name), &["p"]), None, None));
    }
}

#[test]
fn set_conditions_on_empty_company_sets() {
    let co = company("c");
    assert!(!matches(
        Condition::plan(op("eq"), &["p"]),
        Some(co.clone()),
        None
    ));
    assert!(matches(
        Condition::plan(op("ne"), &["p"]),
        Some(co.clone()),
        None
    ));
    assert!(matches(
        Condition::billing_product(op("ne"), &[]),
        Some(co),
        None
    ));
}

#[test]
fn many_resource_ids() {
    let ids: Vec<String> = (0..100).map(|i| format!("plan_{i}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut co = company("c");
    co.plan_ids = vec!["plan_77".into()];
    assert!(matches(
        Condition::plan(op("eq"), &refs),
        Some(co.clone()),
        None
    ));
    co.plan_ids = vec!["plan_100".into()];
    assert!(!matches(Condition::plan(op("eq"), &refs), Some(co), None));
}

#[test]
fn base_plan_every_operator() {
    // (operator, base plan, expected)
    let cases = [
        ("eq", Some("base_a"), true),
        ("eq", Some("base_z"), false),
        ("eq", None, false),
        ("ne", Some("base_a"), false),
        ("ne", Some("base_z"), true),
        ("ne", None, true),
        ("is_empty", Some("base_a"), false),
        ("is_empty", None, true),
        ("not_empty", Some("base_z"), true),
        ("not_empty", None, false),
        ("gt", Some("base_a"), false),
        ("gte", Some("base_a"), false),
        ("lt", None, false),
        ("lte", None, false),
        ("between", Some("base_a"), false),
    ];
    for (name, base, want) in cases {
        let mut co = company("c");
        co.base_plan_id = base.map(str::to_owned);
        let got = matches(
            Condition::base_plan(op(name), &["base_a", "base_b"]),
            Some(co),
            None,
        );
        assert_eq!(got, want, "base_plan {name} {base:?}");
    }
}

// ---------------------------------------------------------------------------
// Metric conditions

fn metric_company(value: i64) -> Company {
    let mut co = company("c");
    co.metrics = vec![CompanyMetric::new(
        "api-call",
        MetricPeriod::CurrentMonth,
        MonthReset::FirstOfMonth,
        value,
    )];
    co
}

fn metric_cond(name: &str, value: i64) -> Condition {
    Condition::metric(
        "api-call",
        MetricPeriod::CurrentMonth,
        None,
        op(name),
        value,
    )
}

#[test]
fn metric_every_operator() {
    // (operator, [expected for metric 9, 10, 11, 0] against 10)
    let table = [
        ("eq", [false, true, false, false]),
        ("ne", [true, false, true, true]),
        ("gt", [false, false, true, false]),
        ("gte", [false, true, true, false]),
        ("lt", [true, false, false, true]),
        ("lte", [true, true, false, true]),
        ("is_empty", [false, false, false, true]),
        ("not_empty", [true, true, true, false]),
        ("between", [false, false, false, false]),
    ];
    for (name, wants) in table {
        for (value, want) in [9, 10, 11, 0].into_iter().zip(wants) {
            assert_eq!(
                matches(metric_cond(name, 10), Some(metric_company(value)), None),
                want,
                "metric {value} {name} 10"
            );
        }
    }
}

#[test]
fn metric_lookup_is_keyed_by_period_and_reset() {
    let mut co = company("c");
    co.metrics = vec![
        CompanyMetric::new(
            "api-call",
            MetricPeriod::AllTime,
            MonthReset::FirstOfMonth,
            500,
        ),
        CompanyMetric::new(
            "api-call",
            MetricPeriod::CurrentMonth,
            MonthReset::BillingCycle,
            50,
        ),
        CompanyMetric::new(
            "api-call",
            MetricPeriod::CurrentMonth,
            MonthReset::FirstOfMonth,
            5,
        ),
        CompanyMetric::new(
            "other",
            MetricPeriod::CurrentDay,
            MonthReset::FirstOfMonth,
            1,
        ),
    ];
    let cond = |period: Option<MetricPeriod>, reset: Option<MonthReset>, value: i64| {
        let mut c = metric_cond("eq", value);
        c.metric_period = period;
        c.metric_period_month_reset = reset;
        c
    };
    // Absent period means all time; absent reset means first of month.
    assert!(matches(cond(None, None, 500), Some(co.clone()), None));
    assert!(matches(
        cond(Some(MetricPeriod::CurrentMonth), None, 5),
        Some(co.clone()),
        None
    ));
    assert!(matches(
        cond(
            Some(MetricPeriod::CurrentMonth),
            Some(MonthReset::BillingCycle),
            50
        ),
        Some(co.clone()),
        None
    ));
    // No metric for the day period of this subtype: 0.
    assert!(matches(
        cond(Some(MetricPeriod::CurrentDay), None, 0),
        Some(co),
        None
    ));
}

#[test]
fn metric_missing_company_subtype_or_value() {
    assert!(!matches(metric_cond("is_empty", 0), None, None));
    let mut no_subtype = metric_cond("is_empty", 0);
    no_subtype.event_subtype = None;
    assert!(!matches(no_subtype, Some(metric_company(0)), None));
    let mut no_value = metric_cond("is_empty", 0);
    no_value.metric_value = None;
    assert!(!matches(no_value, Some(metric_company(0)), None));
    // A missing metric counts as 0.
    assert!(matches(metric_cond("lt", 1), Some(company("c")), None));
}

#[test]
fn metric_expired_value_counts_as_zero() {
    let mut co = metric_company(10);
    co.metrics[0].valid_until = Some(NOW);
    assert!(matches(metric_cond("eq", 0), Some(co.clone()), None));
    co.metrics[0].valid_until = Some(NOW + time::Duration::SECOND);
    assert!(matches(metric_cond("eq", 10), Some(co), None));
}

#[test]
fn metric_comparison_trait() {
    let limit = TraitDefinition::new("limit", ComparableType::Int, EntityType::Company);
    let cond = metric_cond("lt", 999).with_comparison_trait(limit.clone());
    let mut co = metric_company(10);
    co.traits = vec![Trait::new(limit.clone(), "11")];
    assert!(matches(cond.clone(), Some(co.clone()), None));
    co.traits = vec![Trait::new(limit, "10")];
    assert!(!matches(cond.clone(), Some(co), None));
    // Missing comparison trait: the right side is 0.
    assert!(!matches(cond, Some(metric_company(10)), None));
    let gte_zero = metric_cond("gte", 5).with_comparison_trait(TraitDefinition::new(
        "absent",
        ComparableType::Int,
        EntityType::Company,
    ));
    assert!(matches(gte_zero, Some(company("c")), None));
}

#[test]
fn metric_preflight_usage() {
    let co = || Some(metric_company(8));
    let lt10 = || metric_cond("lt", 10);
    assert!(matches_with(
        lt10(),
        co(),
        None,
        CheckOptions::new().usage(1)
    ));
    assert!(!matches_with(
        lt10(),
        co(),
        None,
        CheckOptions::new().usage(2)
    ));
    // Zero usage has no effect; negative usage is refused (the flag default,
    // see `negative_preflight_returns_the_default_with_err`).
    assert!(!matches_with(
        lt10(),
        co(),
        None,
        CheckOptions::new().usage(-5)
    ));
    assert!(matches_with(
        lt10(),
        co(),
        None,
        CheckOptions::new().usage(0)
    ));
    // Event usage for this subtype wins over generic usage.
    assert!(matches_with(
        lt10(),
        co(),
        None,
        CheckOptions::new().usage(50).event_usage("api-call", 1)
    ));
    assert!(!matches_with(
        lt10(),
        co(),
        None,
        CheckOptions::new().event_usage("api-call", 2)
    ));
    // Event usage for another subtype falls back to generic usage.
    assert!(matches_with(
        lt10(),
        co(),
        None,
        CheckOptions::new().event_usage("other", 50)
    ));
    assert!(!matches_with(
        lt10(),
        co(),
        None,
        CheckOptions::new().usage(3).event_usage("other", 1)
    ));
    // A zero event quantity falls back to generic usage.
    assert!(!matches_with(
        lt10(),
        co(),
        None,
        CheckOptions::new().usage(3).event_usage("api-call", 0)
    ));
}

// ---------------------------------------------------------------------------
// Trait conditions

fn def(ct: &str) -> TraitDefinition {
    TraitDefinition::new("t", ComparableType::from_wire(ct), EntityType::Company)
}

/// Company trait `t` (typed `ct`, or absent) compared with `right`.
fn trait_match(ct: &str, left: Option<&str>, name: &str, right: &str) -> bool {
    let mut co = company("c");
    if let Some(left) = left {
        co.traits = vec![Trait::new(def(ct), left)];
    }
    matches(
        Condition::trait_value(def(ct), op(name), right),
        Some(co),
        None,
    )
}

#[test]
fn string_traits() {
    // (left, operator, right, expected)
    let cases = [
        (Some("b"), "eq", "b", true),
        (Some("b"), "eq", "a", false),
        (Some("b"), "ne", "a", true),
        (Some("b"), "ne", "b", false),
        (Some("b"), "gt", "a", true),
        (Some("b"), "gt", "b", false),
        (Some("b"), "gte", "b", true),
        (Some("b"), "gte", "c", false),
        (Some("b"), "lt", "c", true),
        (Some("b"), "lt", "b", false),
        (Some("b"), "lte", "b", true),
        (Some("b"), "lte", "a", false),
        (Some("10"), "lt", "9", true), // lexicographic
        (Some("B"), "lt", "a", true),  // byte order
        (Some(""), "is_empty", "", true),
        (Some("x"), "is_empty", "", false),
        (Some("x"), "not_empty", "", true),
        (Some(""), "not_empty", "", false),
        (None, "is_empty", "", true), // missing trait reads as ""
        (None, "eq", "", true),
        (None, "ne", "x", true),
        (Some("b"), "between", "b", false),
    ];
    for (left, name, right, want) in cases {
        assert_eq!(
            trait_match("string", left, name, right),
            want,
            "string {left:?} {name} {right}"
        );
    }
}

#[test]
fn int_traits() {
    let cases = [
        (Some("10"), "eq", "10", true),
        (Some("10"), "eq", "+10", true),
        (Some("10"), "eq", "9", false),
        (Some("10"), "ne", "9", true),
        (Some("10"), "ne", "10", false),
        (Some("10"), "gt", "9", true),
        (Some("10"), "gt", "10", false),
        (Some("10"), "gte", "10", true),
        (Some("10"), "gte", "11", false),
        (Some("9"), "lt", "10", true), // numeric, not lexicographic
        (Some("10"), "lt", "10", false),
        (Some("-3"), "lte", "-3", true),
        (Some("10"), "lte", "9", false),
        (Some("0"), "is_empty", "", true),
        (Some("abc"), "is_empty", "", true), // unparsable reads as 0
        (Some("1.5"), "eq", "0", true),
        (Some("5"), "is_empty", "", false),
        (Some("5"), "not_empty", "", true),
        (Some("-1"), "not_empty", "", false), // not_empty means > 0
        (Some("0"), "not_empty", "", false),
        (None, "is_empty", "", true),
        (None, "lt", "1", true),
        (Some("10"), "between", "10", false),
    ];
    for (left, name, right, want) in cases {
        assert_eq!(
            trait_match("int", left, name, right),
            want,
            "int {left:?} {name} {right}"
        );
    }
}

#[test]
fn bool_traits() {
    let cases = [
        (Some("true"), "eq", "true", true),
        (Some("true"), "eq", "false", false),
        (Some("false"), "eq", "nonsense", true), // both read as false
        (Some("TRUE"), "eq", "false", true),     // only "true" is true
        (Some("true"), "ne", "false", true),
        (Some("true"), "ne", "true", false),
        (Some("true"), "gt", "false", false),
        (Some("true"), "gte", "true", false),
        (Some("false"), "lt", "true", false),
        (Some("false"), "lte", "false", false),
        (Some(""), "is_empty", "", false),
        (None, "is_empty", "", false),
        (Some("false"), "not_empty", "", true),
        (None, "not_empty", "", true),
        (Some("true"), "between", "true", false),
    ];
    for (left, name, right, want) in cases {
        assert_eq!(
            trait_match("bool", left, name, right),
            want,
            "bool {left:?} {name} {right}"
        );
    }
}

#[test]
fn date_traits() {
    let d = "2024-03-05";
    let cases = [
        (Some(d), "eq", "2024-03-05T00:00:00Z", true),
        (Some(d), "eq", "Tue Mar 05 2024", true),
        (Some("2024-03-05T01:00:00+01:00"), "eq", "2024-03-05", true),
        (Some(d), "eq", "2024-03-06", false),
        (Some(d), "ne", "2024-03-06", true),
        (
            Some(d),
            "ne",
            "Tue Mar 05 2024 00:00:00 GMT+0000 (Coordinated Universal Time)",
            false,
        ),
        (Some(d), "gt", "2024-03-04", true),
        (Some(d), "gt", d, false),
        (Some(d), "gte", d, true),
        (Some(d), "gte", "2024-03-06", false),
        (Some(d), "lt", "2024-03-05 00:00:01 UTC", true),
        (Some(d), "lt", d, false),
        (Some(d), "lte", d, true),
        (Some(d), "lte", "2024-03-04", false),
        // Nil (missing or unparsable) sorts before every date.
        (None, "lt", d, true),
        (Some("soon"), "lt", d, true),
        (None, "gt", d, false),
        (Some(d), "gt", "soon", true),
        (Some(d), "lt", "soon", false),
        (None, "lt", "soon", false),
        (None, "eq", "soon", true),
        (None, "lte", "soon", true),
        (None, "gte", "soon", true),
        (Some("soon"), "is_empty", "", true),
        (Some(d), "is_empty", "", false),
        (Some(d), "not_empty", "", true),
        (None, "not_empty", "", false),
        (Some(d), "between", d, false),
    ];
    for (left, name, right, want) in cases {
        assert_eq!(
            trait_match("date", left, name, right),
            want,
            "date {left:?} {name} {right}"
        );
    }
}

#[test]
fn unknown_comparable_type_never_matches() {
    for name in OPS {
        assert!(!trait_match("decimal", Some("1"), name, "1"), "{name}");
        assert!(!trait_match("decimal", None, name, ""), "{name}");
    }
}

#[test]
fn stored_trait_definition_decides_the_comparable_type() {
    // The condition says string, the stored trait says int: numeric comparison.
    let mut co = company("c");
    co.traits = vec![Trait::new(def("int"), "9")];
    assert!(matches(
        Condition::trait_value(def("string"), op("lt"), "10"),
        Some(co),
        None
    ));
    // A missing trait falls back to the condition's definition.
    assert!(matches(
        Condition::trait_value(def("int"), op("lt"), "10"),
        Some(company("c")),
        None
    ));
}

#[test]
fn trait_entity_types() {
    let user_def = TraitDefinition::new("role", ComparableType::String, EntityType::User);
    let mut user = User::new("u");
    user.traits = vec![Trait::new(user_def.clone(), "admin")];
    let cond = Condition::trait_value(user_def.clone(), op("eq"), "admin");
    assert!(matches(cond.clone(), None, Some(user.clone())));
    assert!(!matches(cond.clone(), Some(company("c")), None));
    // A company with the same trait id does not satisfy a user trait condition.
    let mut co = company("c");
    co.traits = vec![Trait::new(user_def.clone(), "admin")];
    assert!(!matches(cond, Some(co), None));
    // Unknown entity type never matches.
    let odd = TraitDefinition::new(
        "role",
        ComparableType::String,
        EntityType::from_wire("team"),
    );
    assert!(!matches(
        Condition::trait_value(odd, op("eq"), "admin"),
        None,
        Some(user)
    ));
    // No trait definition at all.
    let mut bare = Condition::trait_value(user_def, op("is_empty"), "");
    bare.trait_definition = None;
    assert!(!matches(bare, Some(company("c")), Some(User::new("u"))));
}

#[test]
fn trait_comparison_trait() {
    let seats = TraitDefinition::new("seats", ComparableType::Int, EntityType::Company);
    let cap = TraitDefinition::new("cap", ComparableType::Int, EntityType::Company);
    let cond =
        Condition::trait_value(seats.clone(), op("lt"), "1000").with_comparison_trait(cap.clone());
    let mut co = company("c");
    co.traits = vec![Trait::new(seats.clone(), "4"), Trait::new(cap.clone(), "5")];
    assert!(matches(cond.clone(), Some(co.clone()), None));
    co.traits[1].value = "4".into();
    assert!(!matches(cond.clone(), Some(co.clone()), None));
    // Missing comparison trait: right side is "" (0 as int).
    co.traits.truncate(1);
    assert!(!matches(cond, Some(co), None));
}

#[test]
fn int_trait_preflight_usage() {
    let seats = TraitDefinition::new("seats", ComparableType::Int, EntityType::Company);
    let mut co = company("c");
    co.traits = vec![Trait::new(seats.clone(), "8")];
    let lt10 = Condition::trait_value(seats, op("lt"), "10");
    assert!(matches_with(
        lt10.clone(),
        Some(co.clone()),
        None,
        CheckOptions::new().usage(1)
    ));
    assert!(!matches_with(
        lt10.clone(),
        Some(co.clone()),
        None,
        CheckOptions::new().usage(2)
    ));
    // Event usage does not apply to traits.
    assert!(matches_with(
        lt10,
        Some(co.clone()),
        None,
        CheckOptions::new().event_usage("seats", 5)
    ));
    // Usage does not apply to string traits.
    let name = TraitDefinition::new("seats", ComparableType::String, EntityType::Company);
    co.traits = vec![Trait::new(name.clone(), "8")];
    assert!(matches_with(
        Condition::trait_value(name, op("eq"), "8"),
        Some(co),
        None,
        CheckOptions::new().usage(5)
    ));
}

#[test]
fn first_trait_with_a_definition_id_wins() {
    let mut co = company("c");
    let mut bare = Trait::new(def("string"), "ignored");
    bare.trait_definition = None;
    co.traits = vec![
        bare,
        Trait::new(def("string"), "first"),
        Trait::new(def("string"), "second"),
    ];
    assert!(matches(
        Condition::trait_value(def("string"), op("eq"), "first"),
        Some(co),
        None
    ));
}

#[test]
fn many_traits_are_indexed() {
    let mut co = company("c");
    co.traits = (0..50)
        .map(|i| {
            Trait::new(
                TraitDefinition::new(format!("t{i}"), ComparableType::Int, EntityType::Company),
                i.to_string(),
            )
        })
        .collect();
    for i in [0, 17, 49] {
        let d = TraitDefinition::new(format!("t{i}"), ComparableType::Int, EntityType::Company);
        assert!(matches(
            Condition::trait_value(d, op("eq"), i.to_string()),
            Some(co.clone()),
            None
        ));
    }
}

// ---------------------------------------------------------------------------
// Credit conditions

fn credit_company(balance: f64) -> Company {
    let mut co = company("c");
    co.credit_balances.insert("cr".into(), balance);
    co
}

#[test]
fn credit_precedence() {
    let c = |rate: Option<f64>| Condition::credit("cr", rate).with_event_subtype("gen");
    let run = |cond: Condition, balance: f64, options: CheckOptions<'_>| {
        matches_with(cond, Some(credit_company(balance)), None, options)
    };
    let none = CheckOptions::new;
    // Legacy single unit: balance >= rate (default 1).
    assert!(run(c(None), 1.0, none()));
    assert!(!run(c(None), 0.5, none()));
    assert!(run(c(Some(2.5)), 2.5, none()));
    assert!(!run(c(Some(2.5)), 2.4, none()));
    assert!(run(c(Some(0.0)), 0.0, none()));
    // Generic usage × rate.
    assert!(run(c(Some(2.0)), 10.0, none().usage(5)));
    assert!(!run(c(Some(2.0)), 10.0, none().usage(6)));
    // Event usage × rate, when the subtype matches; it beats generic usage.
    assert!(run(
        c(Some(3.0)),
        10.0,
        none().usage(100).event_usage("gen", 3)
    ));
    assert!(!run(c(Some(3.0)), 10.0, none().event_usage("gen", 4)));
    assert!(run(c(Some(3.0)), 10.0, none().event_usage("other", 400)));
    // Explicit credit cost beats everything.
    let costs = [("other", 0.0), ("cr", 10.0)];
    assert!(run(
        c(Some(3.0)),
        10.0,
        none().usage(100).event_usage("gen", 40).credit_cost(&costs)
    ));
    let costs = [("cr", 10.01)];
    assert!(!run(c(Some(0.0)), 10.0, none().credit_cost(&costs)));
    // A condition without an event subtype ignores event usage.
    let plain = Condition::credit("cr", Some(3.0));
    assert!(run(plain, 10.0, none().event_usage("gen", 400)));
}

#[test]
fn credit_missing_balance_company_or_id() {
    assert!(!matches(
        Condition::credit("cr", None),
        Some(company("c")),
        None
    ));
    assert!(matches(
        Condition::credit("cr", Some(0.0)),
        Some(company("c")),
        None
    ));
    assert!(!matches(Condition::credit("cr", Some(0.0)), None, None));
    let mut no_id = Condition::credit("cr", Some(0.0));
    no_id.credit_id = None;
    assert!(!matches(no_id, Some(credit_company(5.0)), None));
}

#[test]
fn quantity_rates_price_event_quantities() {
    let cond = || {
        Condition::credit("cr", Some(1.0))
            .with_event_subtype("ai-call")
            .with_quantity_rate("input_tokens", 0.001)
            .with_quantity_rate("output_tokens", 0.002)
    };
    let run = |cond: Condition, balance: f64, options: CheckOptions<'_>| {
        matches_with(cond, Some(credit_company(balance)), None, options)
    };
    let none = CheckOptions::new;
    // 1000 × 0.001 + 500 × 0.002 = 2 credits.
    let tokens = [("input_tokens", 1000.0), ("output_tokens", 500.0)];
    assert!(run(
        cond(),
        2.0,
        none().event_quantities("ai-call", &tokens)
    ));
    assert!(!run(
        cond(),
        1.99,
        none().event_quantities("ai-call", &tokens)
    ));
    // A name missing from the quantities counts 0; names without a rate are ignored.
    let partial = [("input_tokens", 1000.0), ("cached_input_tokens", 1e9)];
    assert!(run(
        cond(),
        1.0,
        none().event_quantities("ai-call", &partial)
    ));
    // Of repeated names, the first counts.
    let repeated = [("input_tokens", 1000.0), ("input_tokens", 1e9)];
    assert!(run(
        cond(),
        1.0,
        none().event_quantities("ai-call", &repeated)
    ));
    // The quantity cost replaces usage × rate for the condition...
    assert!(run(
        cond(),
        2.0,
        none()
            .usage(1000)
            .event_usage("ai-call", 1000)
            .event_quantities("ai-call", &tokens)
    ));
    // ...but an explicit credit cost still wins.
    let costs = [("cr", 5.0)];
    assert!(!run(
        cond(),
        2.0,
        none()
            .event_quantities("ai-call", &tokens)
            .credit_cost(&costs)
    ));
    // Another subtype: the usual usage × rate computation applies.
    assert!(!run(
        cond(),
        2.0,
        none()
            .event_usage("ai-call", 3)
            .event_quantities("other", &tokens)
    ));
    assert!(run(cond(), 2.0, none().event_quantities("other", &tokens)));
    // A condition without quantity rates ignores event quantities.
    let plain = Condition::credit("cr", Some(3.0)).with_event_subtype("ai-call");
    assert!(run(plain, 3.0, none().event_quantities("ai-call", &tokens)));
    // So does a condition without an event subtype.
    let mut no_subtype = cond();
    no_subtype.event_subtype = None;
    assert!(run(
        no_subtype,
        1.0,
        none().event_quantities("ai-call", &tokens)
    ));
}

#[test]
fn negative_preflight_returns_the_default_with_err() {
    let mut co = credit_company(100.0);
    co.entitlements = vec![FeatureEntitlement::new("feat", "feature", "numeric")];
    let co = PreparedCompany::new(co);
    let mut flag = flag_with(vec![Condition::credit("cr", Some(1.0))]);
    flag.default_value = true;
    flag.rules[0].value = false;
    let engine = RulesEngine::new([flag]);
    let check = |options: CheckOptions<'_>| {
        engine
            .check_with("feature", Some(&co), None, NOW, &options)
            .to_result()
    };
    let usage = "preflight usage cannot be negative";
    let cost = "preflight credit cost cannot be negative";
    let tokens = [("input_tokens", 10.0), ("output_tokens", -0.5)];
    let negative_cost = [("cr", 1.0), ("other", -2.0)];
    let none = CheckOptions::new;
    for (options, err) in [
        (none().usage(-1), usage),
        (none().event_usage("x", -3), usage),
        (none().event_quantities("x", &tokens), usage),
        (none().credit_cost(&negative_cost), cost),
        // Usage is checked before credit costs.
        (none().usage(i64::MIN).credit_cost(&negative_cost), usage),
    ] {
        let r = check(options);
        assert_eq!(r.err.as_deref(), Some(err), "{options:?}");
        assert!(r.value, "the flag default");
        assert_eq!(r.reason, Reason::NO_RULES_MATCHED);
        assert_eq!((&r.rule_id, &r.rule_type), (&None, &None));
        assert_eq!(r.company_id.as_deref(), Some("c"));
        assert_eq!(
            r.entitlement.as_ref().map(|e| e.feature_key.as_str()),
            Some("feature")
        );
        assert_eq!(serde_json::to_value(&r).unwrap()["err"], err);
    }
    assert_eq!(
        none().usage(-1).validate(),
        Err(PreflightError::NegativeUsage)
    );
    assert_eq!(PreflightError::NegativeCreditCost.to_string(), cost);
    // Zero is not negative; a valid check has no `err` and serializes none.
    for options in [none(), none().usage(0).event_usage("x", 0)] {
        let r = check(options);
        assert_eq!(r.err, None);
        assert!(!r.value, "the rule matched");
        assert!(serde_json::to_value(&r).unwrap().get("err").is_none());
    }
    // An unknown flag is reported as such, whatever the options.
    let missing = engine.check_with("nope", Some(&co), None, NOW, &none().usage(-1));
    assert_eq!((missing.reason, missing.err), (Reason::FlagNotFound, None));
}

/// The test vector of the platform's engines: a metered plan entitlement,
/// checked plainly and with a preflight that exceeds the limit.
#[test]
fn engine_test_vector() {
    let flag = r#"[{"id":"flag_1","key":"api-calls","account_id":"acc","environment_id":"env",
        "default_value":false,"rules":[{"id":"rule_1","name":"Pro plan limit","account_id":"acc",
          "environment_id":"env","rule_type":"plan_entitlement","priority":0,"value":true,
          "conditions":[{"id":"cond_1","account_id":"acc","environment_id":"env",
            "condition_type":"metric","operator":"lte","resource_ids":[],"trait_value":"",
            "event_subtype":"api-call","metric_value":100,"metric_period":"current_month",
            "metric_period_month_reset":"first_of_month"}],"condition_groups":[]}]}]"#;
    let company = r#"{"id":"co_1","account_id":"acc","environment_id":"env","keys":{"id":"co_1"},
        "traits":[],"plan_ids":[],"plan_version_ids":[],"billing_product_ids":[],"credit_balances":{},
        "rules":[],"metrics":[{"account_id":"acc","company_id":"co_1","environment_id":"env",
          "event_subtype":"api-call","period":"current_month","month_reset":"first_of_month",
          "value":42,"created_at":"2024-03-01T00:00:00Z"}],
        "entitlements":[{"feature_id":"feat_1","feature_key":"api-calls","value_type":"numeric",
          "allocation":100,"usage":42,"event_name":"api-call","metric_period":"current_month",
          "month_reset":"first_of_month"}]}"#;
    let engine = RulesEngine::from_json(flag).unwrap();
    let co = PreparedCompany::from_json(company).unwrap();
    let now = datetime!(2024-03-05 12:00 UTC);

    let r = engine.check("api-calls", Some(&co), None, now).to_result();
    assert!(r.value);
    assert_eq!(
        r.reason,
        r#"Matched plan entitlement rule "Pro plan limit" (rule_1)"#
    );
    assert_eq!(r.rule_type, Some(RuleType::PlanEntitlement));
    assert_eq!(r.feature_allocation, Some(100));
    assert_eq!(r.feature_usage, Some(42));
    assert_eq!(r.feature_usage_event.as_deref(), Some("api-call"));
    assert_eq!(r.feature_usage_period, Some(MetricPeriod::CurrentMonth));
    assert_eq!(
        r.feature_usage_reset_at,
        Some(datetime!(2024-04-01 0:00 UTC))
    );
    let entitlement = r.entitlement.as_ref().unwrap();
    assert_eq!(
        (entitlement.allocation, entitlement.usage),
        (Some(100), Some(42))
    );
    assert_eq!(r.err, None);

    let r = engine
        .check_with(
            "api-calls",
            Some(&co),
            None,
            now,
            &CheckOptions::new().usage(60),
        )
        .to_result();
    assert!(!r.value);
    assert_eq!(r.reason, Reason::NO_RULES_MATCHED);
    assert!(r.entitlement.is_some(), "the entitlement stays attached");
    assert_eq!(
        (
            r.feature_allocation,
            r.feature_usage,
            r.feature_usage_event,
            r.feature_usage_period,
            r.feature_usage_reset_at
        ),
        (None, None, None, None, None)
    );
}

// ---------------------------------------------------------------------------
// Rules: ordering, groups, reasons

fn rule(id: &str, rule_type: RuleType, value: bool, priority: i64) -> Rule {
    Rule::new(id, format!("Rule {id}"), rule_type, value).with_priority(priority)
}

fn never() -> Condition {
    Condition::company(op("eq"), &["nobody"])
}

fn check_rule_id(flag: Flag, company: Option<Company>, user: Option<User>) -> Option<String> {
    let engine = RulesEngine::new([flag]);
    let company = company.map(PreparedCompany::new);
    let user = user.map(PreparedUser::new);
    engine
        .check("feature", company.as_ref(), user.as_ref(), NOW)
        .rule_id
        .map(str::to_owned)
}

#[test]
fn rule_type_order() {
    let types = [
        RuleType::GlobalOverride,
        RuleType::CompanyOverride,
        RuleType::PlanEntitlement,
        RuleType::CompanyOverrideUsageExceeded,
        RuleType::PlanEntitlementUsageExceeded,
        RuleType::Standard,
        RuleType::Default,
    ];
    // Insert in reverse; each type in turn wins once all earlier types are
    // gone (overrides and entitlements need a matching condition here).
    for winner in 0..types.len() {
        let mut flag = Flag::new("f", "feature");
        for t in types.iter().skip(winner).rev() {
            flag.rules.push(rule(t.as_str(), t.clone(), true, 0));
        }
        assert_eq!(
            check_rule_id(flag, None, None).as_deref(),
            Some(types[winner].as_str())
        );
    }
}

#[test]
fn default_and_global_override_ignore_conditions() {
    let flag = Flag::new("f", "feature")
        .with_rule(rule("g", RuleType::GlobalOverride, false, 0).with_condition(never()));
    assert_eq!(check_rule_id(flag, None, None).as_deref(), Some("g"));
    let flag = Flag::new("f", "feature")
        .with_rule(rule("s", RuleType::Standard, true, 0).with_condition(never()))
        .with_rule(rule("d", RuleType::Default, false, 0).with_condition(never()));
    assert_eq!(check_rule_id(flag, None, None).as_deref(), Some("d"));
}

#[test]
fn standard_rules_by_priority_ties_in_input_order() {
    let flag = Flag::new("f", "feature")
        .with_rule(rule("p5", RuleType::Standard, true, 5))
        .with_rule(rule("p2a", RuleType::Standard, false, 2))
        .with_rule(rule("p2b", RuleType::Standard, true, 2))
        .with_rule(rule("p-1", RuleType::Standard, true, -1).with_condition(never()));
    assert_eq!(check_rule_id(flag, None, None).as_deref(), Some("p2a"));
}

#[test]
fn optimistic_groups_try_true_first() {
    for t in [
        RuleType::CompanyOverride,
        RuleType::PlanEntitlement,
        RuleType::CompanyOverrideUsageExceeded,
        RuleType::PlanEntitlementUsageExceeded,
    ] {
        let flag = Flag::new("f", "feature")
            .with_rule(rule("off", t.clone(), false, 0))
            .with_rule(rule("on1", t.clone(), true, 9))
            .with_rule(rule("on2", t.clone(), true, 1));
        // Priority is irrelevant here; among true rules input order holds.
        assert_eq!(
            check_rule_id(flag, None, None).as_deref(),
            Some("on1"),
            "{t}"
        );
    }
}

#[test]
fn unknown_rule_types_are_skipped() {
    let flag = Flag::new("f", "feature")
        .with_default_value(true)
        .with_rule(rule("aud", RuleType::from_wire("plan_audience"), false, 0));
    let engine = RulesEngine::new([flag]);
    let e = engine.check("feature", None, None, NOW);
    assert!(e.value);
    assert_eq!(e.reason, Reason::NoRulesMatched);
}

#[test]
fn company_and_user_rules_merge_with_flag_rules() {
    let flag = Flag::new("flag_1", "feature")
        .with_rule(rule("flag_std", RuleType::Standard, false, 3))
        .with_rule(rule("flag_def", RuleType::Default, false, 0));
    let mut co = company("c");
    co.rules = vec![
        rule("co_std", RuleType::Standard, true, 2).with_flag_id("flag_1"),
        rule("co_other_flag", RuleType::GlobalOverride, true, 0).with_flag_id("flag_2"),
        rule("co_no_flag", RuleType::GlobalOverride, true, 0),
    ];
    let mut user = User::new("u");
    user.rules = vec![rule("user_std", RuleType::Standard, true, 3).with_flag_id("flag_1")];
    assert_eq!(
        check_rule_id(flag.clone(), Some(co.clone()), Some(user.clone())).as_deref(),
        Some("co_std")
    );
    // Priority ties: flag rules, then company, then user.
    co.rules[0].priority = 3;
    assert_eq!(
        check_rule_id(flag.clone(), Some(co.clone()), Some(user.clone())).as_deref(),
        Some("flag_std")
    );
    // A company override outranks every standard rule.
    co.rules
        .push(rule("co_override", RuleType::CompanyOverride, false, 0).with_flag_id("flag_1"));
    assert_eq!(
        check_rule_id(flag.clone(), Some(co), Some(user.clone())).as_deref(),
        Some("co_override")
    );
    // User rules alone.
    user.rules[0].priority = 4;
    let flag =
        Flag::new("flag_1", "feature").with_rule(rule("flag_std", RuleType::Standard, true, 5));
    assert_eq!(
        check_rule_id(flag, None, Some(user)).as_deref(),
        Some("user_std")
    );
}

#[test]
fn conditions_and_groups() {
    let yes = || Condition::company(op("eq"), &["c"]);
    let no = never;
    let case = |conditions: Vec<Condition>, groups: Vec<Vec<Condition>>| {
        let mut r = rule("r", RuleType::Standard, true, 0);
        r.conditions = conditions;
        for g in groups {
            r = r.with_group(g);
        }
        let flag = Flag::new("f", "feature").with_rule(r);
        check_rule_id(flag, Some(company("c")), None).is_some()
    };
    assert!(case(vec![], vec![]));
    assert!(case(vec![yes(), yes()], vec![]));
    assert!(!case(vec![yes(), no()], vec![]));
    assert!(case(vec![], vec![vec![no(), yes()]]));
    assert!(!case(vec![], vec![vec![no(), no()]]));
    assert!(case(vec![yes()], vec![vec![no(), yes()], vec![yes()]]));
    assert!(!case(vec![yes()], vec![vec![no(), yes()], vec![no()]]));
    assert!(!case(vec![no()], vec![vec![yes()]]));
    // A group with no conditions can never be satisfied.
    assert!(!case(vec![yes()], vec![vec![]]));
}

#[test]
fn unknown_condition_type_never_matches() {
    let mut odd = Condition::company(op("eq"), &["c"]);
    odd.condition_type = ConditionType::from_wire("crm_product");
    assert!(!matches(odd.clone(), Some(company("c")), None));
    let mut r = rule("r", RuleType::Standard, true, 0)
        .with_group(vec![odd, Condition::company(op("eq"), &["c"])]);
    r.conditions.clear();
    assert_eq!(
        check_rule_id(
            Flag::new("f", "feature").with_rule(r),
            Some(company("c")),
            None
        )
        .as_deref(),
        Some("r")
    );
}

#[test]
fn reasons_and_result_fields() {
    let flag = Flag::new("flag_1", "feature")
        .with_default_value(true)
        .with_rule(
            Rule::new(
                "rule_9",
                "Beta testers",
                RuleType::PlanEntitlementUsageExceeded,
                false,
            )
            .with_condition(Condition::user(op("eq"), &["u"])),
        );
    let engine = RulesEngine::new([flag]);
    let co = PreparedCompany::new(company("c"));
    let user = PreparedUser::new(User::new("u"));
    let e: Evaluation<'_> = engine.check("feature", Some(&co), Some(&user), NOW);
    assert!(!e.value);
    assert_eq!(
        e.reason.to_string(),
        r#"Matched plan entitlement usage exceeded rule "Beta testers" (rule_9)"#
    );
    assert_eq!(e.rule_id, Some("rule_9"));
    assert_eq!(e.rule_type, Some(&RuleType::PlanEntitlementUsageExceeded));
    assert_eq!(
        (e.company_id, e.user_id, e.flag_id),
        (Some("c"), Some("u"), Some("flag_1"))
    );

    let other = PreparedUser::new(User::new("v"));
    let e = engine.check("feature", Some(&co), Some(&other), NOW);
    assert!(e.value);
    assert_eq!(
        e.reason.to_string(),
        "No rules matched; default value for flag"
    );
    assert_eq!((e.rule_id, e.rule_type), (None, None));

    let e = engine.check("missing", Some(&co), None, NOW);
    assert!(!e.value);
    assert_eq!(e.reason, Reason::FlagNotFound);
    assert_eq!(e.reason.to_string(), "Flag not found");
    assert_eq!((e.flag_key, e.flag_id), ("missing", None));

    let e = engine.check("feature", None, None, NOW);
    assert_eq!((e.company_id, e.user_id), (None, None));
}

#[test]
fn reason_for_every_rule_type() {
    let cases = [
        (RuleType::GlobalOverride, "global override"),
        (RuleType::CompanyOverride, "company override"),
        (RuleType::PlanEntitlement, "plan entitlement"),
        (
            RuleType::CompanyOverrideUsageExceeded,
            "company override usage exceeded",
        ),
        (
            RuleType::PlanEntitlementUsageExceeded,
            "plan entitlement usage exceeded",
        ),
        (RuleType::Standard, "standard"),
        (RuleType::Default, "default"),
        (RuleType::from_wire("plan_audience"), "plan audience"),
    ];
    for (t, words) in cases {
        let reason = Reason::Matched {
            rule_type: &t,
            name: "N",
            id: "I",
        };
        assert_eq!(
            reason.to_string(),
            format!("Matched {words} rule \"N\" (I)")
        );
    }
}

// ---------------------------------------------------------------------------
// Entitlements

#[test]
fn entitlement_usage_from_metric_condition() {
    let mut co = metric_company(42);
    co.metrics.push(CompanyMetric::new(
        "api-call",
        MetricPeriod::CurrentMonth,
        MonthReset::BillingCycle,
        7,
    ));
    co.subscription = Some(Subscription::new(
        "s",
        datetime!(2024-01-10 08:00 UTC),
        datetime!(2025-01-10 08:00 UTC),
    ));
    co.entitlements = vec![serde_json::from_str(r#"{"feature_id":"feat","feature_key":"feature","value_type":"numeric","allocation":100}"#).unwrap()];
    let month = Condition::metric("api-call", MetricPeriod::CurrentMonth, None, op("lt"), 100);
    let billing = Condition::metric(
        "api-call",
        MetricPeriod::CurrentMonth,
        Some(MonthReset::BillingCycle),
        op("lt"),
        50,
    );
    for (cond, usage, allocation, reset) in [
        (month, 42, 100, datetime!(2024-04-01 0:00 UTC)),
        (billing, 7, 50, datetime!(2024-03-10 08:00 UTC)),
    ] {
        let flag = Flag::new("f", "feature").with_rule(
            Rule::new("e", "Plan", RuleType::PlanEntitlement, true).with_condition(cond),
        );
        let engine = RulesEngine::new([flag]);
        let prepared = PreparedCompany::new(co.clone());
        let e = engine.check("feature", Some(&prepared), None, NOW);
        assert!(e.value);
        let entitlement = e.entitlement.map(|x| x.parse().expect("entitlement JSON"));
        assert_eq!(entitlement.map(|x| x.feature_id), Some("feat".to_owned()));
        let u = e.feature_usage.expect("usage fields");
        assert_eq!(
            (u.usage, u.allocation, u.event),
            (usage, allocation, Some("api-call"))
        );
        assert_eq!(u.period, Some(&MetricPeriod::CurrentMonth));
        assert_eq!(u.reset_at, Some(reset));
        let owned = e.to_result();
        assert_eq!(owned.feature_usage, Some(usage));
        assert_eq!(owned.feature_usage_reset_at, Some(reset));
    }
}

#[test]
fn entitlement_usage_from_trait_and_comparison_trait() {
    let seats = TraitDefinition::new("seats", ComparableType::Int, EntityType::Company);
    let cap = TraitDefinition::new("cap", ComparableType::Int, EntityType::Company);
    let mut co = company("c");
    co.traits = vec![Trait::new(seats.clone(), "3"), Trait::new(cap.clone(), "8")];
    let flag = Flag::new("f", "feature").with_rule(
        Rule::new("e", "Seats", RuleType::CompanyOverride, true)
            .with_condition(Condition::company(op("eq"), &["c"]))
            .with_condition(Condition::trait_value(seats.clone(), op("lt"), "5")),
    );
    let engine = RulesEngine::new([flag]);
    let prepared = PreparedCompany::new(co.clone());
    let u = engine
        .check("feature", Some(&prepared), None, NOW)
        .feature_usage
        .unwrap();
    assert_eq!(
        (u.usage, u.allocation, u.event, u.period, u.reset_at),
        (3, 5, None, None, None)
    );

    let flag = Flag::new("f", "feature").with_rule(
        Rule::new("e", "Seats", RuleType::PlanEntitlement, true).with_condition(
            Condition::trait_value(seats, op("lt"), "5").with_comparison_trait(cap),
        ),
    );
    let engine = RulesEngine::new([flag]);
    let u = engine
        .check("feature", Some(&prepared), None, NOW)
        .feature_usage
        .unwrap();
    assert_eq!((u.usage, u.allocation), (3, 8));

    // Standard rules and all-time metrics report no usage / no reset.
    let flag = Flag::new("f", "feature").with_rule(Rule::new("s", "S", RuleType::Standard, true));
    let engine = RulesEngine::new([flag]);
    assert_eq!(
        engine
            .check("feature", Some(&prepared), None, NOW)
            .feature_usage,
        None
    );
    let mut all_time = metric_cond("gte", 0);
    all_time.metric_period = None;
    let flag = Flag::new("f", "feature")
        .with_rule(Rule::new("e", "E", RuleType::PlanEntitlement, true).with_condition(all_time));
    let engine = RulesEngine::new([flag]);
    let u = engine
        .check("feature", Some(&prepared), None, NOW)
        .feature_usage
        .unwrap();
    assert_eq!((u.period, u.reset_at), (Some(&MetricPeriod::AllTime), None));
}

// ---------------------------------------------------------------------------
// Engine maintenance

#[test]
fn upsert_remove_replace() {
    let mut engine = RulesEngine::new([
        Flag::new("1", "a").with_default_value(true),
        Flag::new("2", "b"),
        Flag::new("3", "c"),
        Flag::new("1b", "a"),
    ]);
    assert_eq!(engine.len(), 3);
    assert_eq!(engine.flag("a").map(|f| f.flag().id.as_str()), Some("1b"));
    engine.upsert_flag(Flag::new("4", "d").with_default_value(true));
    assert!(engine.check("d", None, None, NOW).value);
    assert_eq!(engine.remove_flag("a").map(|f| f.id), Some("1b".to_owned()));
    assert_eq!(engine.remove_flag("a"), None);
    for key in ["b", "c", "d"] {
        assert_eq!(engine.flag(key).map(|f| f.key()), Some(key));
    }
    engine.replace_all([Flag::new("9", "z")]);
    assert_eq!(engine.len(), 1);
    assert_eq!(
        engine.check("b", None, None, NOW).reason,
        Reason::FlagNotFound
    );
    assert!(!RulesEngine::default().check("z", None, None, NOW).value);
}

#[test]
fn subjects_prepared_before_flags_exist_stay_valid() {
    let seats = TraitDefinition::new(
        "never-seen-before-trait",
        ComparableType::Int,
        EntityType::Company,
    );
    let mut co = company("c");
    co.plan_ids = vec!["never-seen-before-plan".into()];
    co.traits = vec![Trait::new(seats.clone(), "7")];
    let prepared = PreparedCompany::new(co);
    let mut engine = RulesEngine::default();
    engine.upsert_flag(
        Flag::new("f", "feature").with_rule(
            Rule::new("r", "R", RuleType::Standard, true)
                .with_condition(Condition::plan(op("eq"), &["never-seen-before-plan"]))
                .with_condition(Condition::trait_value(seats, op("gt"), "6")),
        ),
    );
    assert!(engine.check("feature", Some(&prepared), None, NOW).value);
    let other = RulesEngine::new([Flag::new("g", "feature").with_rule(
        Rule::new("r", "R", RuleType::Standard, true)
            .with_condition(Condition::plan(op("eq"), &["never-seen-before-plan-2"])),
    )]);
    assert!(!other.check("feature", Some(&prepared), None, NOW).value);
}

// ---------------------------------------------------------------------------
// JSON

#[test]
fn snake_and_camel_case_inputs_agree() {
    let snake = r#"[{"id":"f1","key":"feature","account_id":"a","environment_id":"e","default_value":false,
        "rules":[{"id":"r1","name":"R","rule_type":"plan_entitlement","priority":0,"value":true,"flag_id":"f1",
          "conditions":[{"id":"c1","condition_type":"trait","operator":"gte","resource_ids":[],
            "trait_definition":{"id":"t","comparable_type":"int","entity_type":"company"},"trait_value":"3"},
            {"condition_type":"metric","operator":"lt","event_subtype":"x","metric_value":10,
             "metric_period":"current_month","metric_period_month_reset":"first_of_month"},
            {"condition_type":"credit","operator":"gte","credit_id":"cr","consumption_rate":2.0}],
          "condition_groups":[{"conditions":[{"condition_type":"plan_version","operator":"eq","resource_ids":["pv"]}]}]}]}]"#;
    let camel = r#"[{"id":"f1","key":"feature","accountId":"a","environmentId":"e","defaultValue":false,
        "rules":[{"id":"r1","name":"R","ruleType":"plan_entitlement","priority":0,"value":true,"flagId":"f1",
          "conditions":[{"id":"c1","conditionType":"trait","operator":"gte","resourceIds":[],
            "traitDefinition":{"id":"t","comparableType":"int","entityType":"company"},"traitValue":"3"},
            {"conditionType":"metric","operator":"lt","eventSubtype":"x","metricValue":10,
             "metricPeriod":"current_month","metricPeriodMonthReset":"first_of_month"},
            {"conditionType":"credit","operator":"gte","creditId":"cr","consumptionRate":2.0}],
          "conditionGroups":[{"conditions":[{"conditionType":"plan_version","operator":"eq","resourceIds":["pv"]}]}]}]}]"#;
    let a: Vec<Flag> = serde_json::from_str(snake).unwrap();
    let b: Vec<Flag> = serde_json::from_str(camel).unwrap();
    assert_eq!(a, b);

    let co_snake = r#"{"id":"c","account_id":"a","environment_id":"e","keys":{"slug":"acme"},
        "traits":[{"trait_definition":{"id":"t","comparable_type":"int","entity_type":"company"},"value":"4"}],
        "metrics":[{"event_subtype":"x","period":"current_month","month_reset":"first_of_month","value":9,
          "created_at":"2024-03-01T00:00:00Z","valid_until":"2024-04-01T00:00:00Z","company_id":"c"}],
        "plan_ids":["p"],"plan_version_ids":["pv"],"base_plan_id":"p","billing_product_ids":[],
        "credit_balances":{"cr":2.0},"rules":[],
        "subscription":{"id":"s","period_start":"2024-01-01T00:00:00Z","period_end":"2025-01-01T00:00:00Z"}}"#;
    let co_camel = r#"{"id":"c","accountId":"a","environmentId":"e","keys":{"slug":"acme"},
        "traits":[{"traitDefinition":{"id":"t","comparableType":"int","entityType":"company"},"value":"4"}],
        "metrics":[{"eventSubtype":"x","period":"current_month","monthReset":"first_of_month","value":9,
          "createdAt":"2024-03-01T00:00:00Z","validUntil":"2024-04-01T00:00:00Z","companyId":"c"}],
        "planIds":["p"],"planVersionIds":["pv"],"basePlanId":"p","billingProductIds":[],
        "creditBalances":{"cr":2.0},"rules":[],
        "subscription":{"id":"s","periodStart":"2024-01-01T00:00:00Z","periodEnd":"2025-01-01T00:00:00Z"}}"#;
    let c1: Company = serde_json::from_str(co_snake).unwrap();
    let c2: Company = serde_json::from_str(co_camel).unwrap();
    assert_eq!(c1, c2);

    let engine = RulesEngine::new(a);
    let co = PreparedCompany::new(c1);
    let e = engine.check("feature", Some(&co), None, NOW);
    assert!(e.value, "{}", e.reason);
    let u = e.feature_usage.unwrap();
    assert_eq!((u.usage, u.allocation), (4, 3));
}

#[test]
fn null_collections_and_missing_fields() {
    let flags = r#"[{"id":"f","key":"feature","rules":null,"default_value":null},
                    {"id":"g","key":"other","rules":[{"id":"r","rule_type":"standard","value":true,
                      "conditions":null,"condition_groups":null,"name":null}]}]"#;
    let engine = RulesEngine::from_json(flags).unwrap();
    let co = PreparedCompany::from_json(
        r#"{"id":"c","keys":null,"traits":null,"metrics":null,"plan_ids":null,"plan_version_ids":null,
            "billing_product_ids":null,"credit_balances":null,"entitlements":null,"rules":null,
            "base_plan_id":null,"subscription":null}"#,
    )
    .unwrap();
    let user =
        PreparedUser::from_json(r#"{"id":"u","keys":null,"traits":null,"rules":null}"#).unwrap();
    assert!(!engine.check("feature", Some(&co), Some(&user), NOW).value);
    let e = engine.check("other", Some(&co), Some(&user), NOW);
    assert!(e.value);
    assert_eq!(e.reason.to_string(), r#"Matched standard rule "" (r)"#);
}

#[test]
fn unknown_enum_values_and_fields_deserialize() {
    let flag: Flag = serde_json::from_str(
        r#"{"id":"f","key":"k","future_field":{"x":1},"rules":[{"id":"r","rule_type":"plan_audience",
            "conditions":[{"condition_type":"crm_product","operator":"matches","future_rates":[1],
              "trait_definition":{"id":"t","comparable_type":"decimal","entity_type":"team"},
              "metric_period":"fortnight","metric_period_month_reset":"solstice"}]}]}"#,
    )
    .unwrap();
    let c = &flag.rules[0].conditions[0];
    assert_eq!(
        flag.rules[0].rule_type,
        RuleType::Other("plan_audience".into())
    );
    assert_eq!(c.condition_type.as_str(), "crm_product");
    assert!(!c.operator.is_known());
    assert_eq!(
        c.metric_period,
        Some(MetricPeriod::Other("fortnight".into()))
    );
    // Round trip keeps unknown values verbatim.
    let back: Flag = serde_json::from_str(&serde_json::to_string(&flag).unwrap()).unwrap();
    assert_eq!(back, flag);
}

#[test]
fn both_spellings_of_a_field_are_rejected() {
    let err = serde_json::from_str::<Flag>(
        r#"{"id":"f","key":"k","default_value":true,"defaultValue":false}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("duplicate field"), "{err}");
    let err = RulesEngine::from_json(r#"{"not":"an array"}"#).unwrap_err();
    assert!(
        err.to_string().starts_with("invalid rules-engine JSON"),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some());
    assert!(PreparedCompany::from_json(r#"{"id": 5}"#).is_err());
    assert!(PreparedUser::from_json("[").is_err());
}

#[test]
fn check_result_serializes_snake_case() {
    let engine = RulesEngine::new([Flag::new("f", "feature").with_rule(Rule::new(
        "r",
        "On",
        RuleType::GlobalOverride,
        true,
    ))]);
    let result = engine.check("feature", None, None, NOW).to_result();
    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"flag_key":"feature","flag_id":"f","value":true,
            "reason":"Matched global override rule \"On\" (r)","rule_id":"r","rule_type":"global_override"})
    );
    let camel: flagwire_core::rules::CheckFlagResult = serde_json::from_str(
        r#"{"flagKey":"feature","flagId":"f","value":true,"reason":"x","ruleId":"r","ruleType":"global_override"}"#,
    )
    .unwrap();
    assert_eq!(camel.rule_id.as_deref(), Some("r"));
}

#[test]
fn newer_engine_fields_in_both_spellings() {
    let snake = r#"{"id":"c","keys":{"id":"c"},
        "entitlements":[{"feature_id":"f","feature_key":"k","value_type":"credit",
          "quantity_rates":{"input_tokens":0.5},"warning_tiers":[{"key":"t80","value":80}]}],
        "credit_postpaid":{"cr":{"overdraft_limit":25.5},"cr2":{}},
        "credit_spend_policies":[{"id":"p","credit_id":"cr","kind":"window","scope":"company",
          "limit":10.0,"consumed":2.5,"label":"Daily","resets_at":"2024-03-07T00:00:00Z",
          "window":{"unit":"day","count":1}},
          {"id":"q","credit_id":"cr","kind":"per_draw","scope":"user","limit":1.0,"company_id":"c"}]}"#;
    let camel = r#"{"id":"c","keys":{"id":"c"},
        "entitlements":[{"featureId":"f","featureKey":"k","valueType":"credit",
          "quantityRates":{"input_tokens":0.5},"warningTiers":[{"key":"t80","value":80}]}],
        "creditPostpaid":{"cr":{"overdraftLimit":25.5},"cr2":{}},
        "creditSpendPolicies":[{"id":"p","creditId":"cr","kind":"window","scope":"company",
          "limit":10.0,"consumed":2.5,"label":"Daily","resetsAt":"2024-03-07T00:00:00Z",
          "window":{"unit":"day","count":1}},
          {"id":"q","creditId":"cr","kind":"per_draw","scope":"user","limit":1.0,"companyId":"c"}]}"#;
    let a: Company = serde_json::from_str(snake).unwrap();
    let b: Company = serde_json::from_str(camel).unwrap();
    assert_eq!(a, b);

    let mut want = Company::new("c");
    want.keys.insert("id".into(), "c".into());
    let mut ent = FeatureEntitlement::new("f", "k", "credit");
    ent.quantity_rates.insert("input_tokens".into(), 0.5);
    ent.warning_tiers = vec![WarningTier::new("t80", 80)];
    want.entitlements = vec![ent];
    want.credit_postpaid = [
        ("cr".to_owned(), CreditPostpaidConfig::new(Some(25.5))),
        ("cr2".to_owned(), CreditPostpaidConfig::new(None)),
    ]
    .into();
    let mut daily = CreditSpendPolicy::new("p", "cr", "window", SpendPolicyScope::Company, 10.0)
        .with_window(CreditSpendWindow::new("day", 1));
    daily.consumed = Some(2.5);
    daily.label = Some("Daily".into());
    daily.resets_at = Some(datetime!(2024-03-07 0:00 UTC));
    let mut per_draw = CreditSpendPolicy::new("q", "cr", "per_draw", SpendPolicyScope::User, 1.0);
    per_draw.company_id = Some("c".into());
    want.credit_spend_policies = vec![daily, per_draw];
    assert_eq!(a, want);

    // Round trip, snake_case out.
    let json = serde_json::to_string(&a).unwrap();
    assert!(json.contains(r#""credit_spend_policies":"#), "{json}");
    assert!(json.contains(r#""overdraft_limit":25.5"#), "{json}");
    assert_eq!(serde_json::from_str::<Company>(&json).unwrap(), a);

    let user: User = serde_json::from_str(
        r#"{"id":"u","creditSpendPolicies":[{"id":"p","credit_id":"cr","kind":"window",
            "scope":"team","limit":3}]}"#,
    )
    .unwrap();
    let policy = &user.credit_spend_policies[0];
    assert_eq!(policy.scope, SpendPolicyScope::Other("team".into()));
    assert_eq!(policy.limit, 3.0);
    let back: User = serde_json::from_str(&serde_json::to_string(&user).unwrap()).unwrap();
    assert_eq!(back, user);

    let cond: Condition = serde_json::from_str(
        r#"{"condition_type":"credit","credit_id":"cr","quantityRates":{"output_tokens":2}}"#,
    )
    .unwrap();
    assert_eq!(cond.quantity_rates["output_tokens"], 2.0);
}

#[test]
fn newer_engine_fields_accept_null_and_reject_both_spellings() {
    let co: Company = serde_json::from_str(
        r#"{"id":"c","credit_postpaid":null,"credit_spend_policies":null,
            "entitlements":[{"feature_key":"k","quantity_rates":null,"warning_tiers":null}]}"#,
    )
    .unwrap();
    assert!(co.credit_postpaid.is_empty() && co.credit_spend_policies.is_empty());
    assert!(co.entitlements[0].warning_tiers.is_empty());
    let user: User = serde_json::from_str(r#"{"id":"u","credit_spend_policies":null}"#).unwrap();
    assert!(user.credit_spend_policies.is_empty());
    let cond: Condition = serde_json::from_str(r#"{"quantity_rates":null}"#).unwrap();
    assert!(cond.quantity_rates.is_empty());

    for (json, field) in [
        (
            r#"{"id":"c","credit_postpaid":{},"creditPostpaid":{}}"#,
            "credit_postpaid",
        ),
        (
            r#"{"id":"c","credit_spend_policies":[],"creditSpendPolicies":[]}"#,
            "credit_spend_policies",
        ),
    ] {
        let err = serde_json::from_str::<Company>(json).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("duplicate field `{field}`")),
            "{err}"
        );
    }
    let err = serde_json::from_str::<Condition>(r#"{"quantity_rates":{},"quantityRates":{}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("duplicate field"), "{err}");
}

#[test]
fn empty_newer_fields_are_not_serialized() {
    // Documents without the newer fields serialize exactly as before.
    let json = serde_json::to_value(Company::new("c")).unwrap();
    for field in ["credit_postpaid", "credit_spend_policies"] {
        assert!(json.get(field).is_none(), "{json}");
    }
    let json = serde_json::to_value(User::new("u")).unwrap();
    assert!(json.get("credit_spend_policies").is_none(), "{json}");
    let json = serde_json::to_value(FeatureEntitlement::new("f", "k", "boolean")).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"feature_id":"f","feature_key":"k","value_type":"boolean"})
    );
    let json = serde_json::to_value(Condition::credit("cr", None)).unwrap();
    assert!(json.get("quantity_rates").is_none(), "{json}");
}

#[test]
fn engine_version_key_is_a_plain_key_segment() {
    assert!(!ENGINE_VERSION_KEY.is_empty());
    assert!(
        ENGINE_VERSION_KEY
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{ENGINE_VERSION_KEY}"
    );
}

#[test]
fn check_result_err_round_trips() {
    let result: CheckFlagResult = serde_json::from_str(
        r#"{"flagKey":"f","value":false,"reason":"No rules matched; default value for flag",
            "err":"preflight usage cannot be negative"}"#,
    )
    .unwrap();
    assert_eq!(
        result.err.as_deref(),
        Some("preflight usage cannot be negative")
    );
    let back: CheckFlagResult =
        serde_json::from_str(&serde_json::to_string(&result).unwrap()).unwrap();
    assert_eq!(back, result);
}
