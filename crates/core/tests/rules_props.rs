//! Property tests of the flag rules engine.

use flagwire_core::rules::{
    CheckOptions, Company, ComparableType, Condition, CreditPostpaidConfig, CreditSpendPolicy,
    CreditSpendWindow, EntityType, FeatureEntitlement, Flag, Operator, PreparedCompany,
    PreparedUser, Reason, Rule, RuleType, RulesEngine, SpendPolicyScope, Trait, TraitDefinition,
    User, WarningTier, parse_date,
};
use proptest::prelude::*;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2024-03-06 12:00 UTC);

fn known_rule_type() -> impl Strategy<Value = RuleType> {
    prop_oneof![
        Just(RuleType::GlobalOverride),
        Just(RuleType::CompanyOverride),
        Just(RuleType::PlanEntitlement),
        Just(RuleType::CompanyOverrideUsageExceeded),
        Just(RuleType::PlanEntitlementUsageExceeded),
        Just(RuleType::Standard),
        Just(RuleType::Default),
    ]
}

fn ids() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-d]{1,2}", 0..5)
}

fn company_from(
    id: String,
    plans: Vec<String>,
    versions: Vec<String>,
    products: Vec<String>,
) -> Company {
    let mut co = Company::new(id);
    co.plan_ids = plans;
    co.plan_version_ids = versions;
    co.billing_product_ids = products;
    co
}

fn evaluate(flag: Flag, company: Option<&Company>, user: Option<&User>) -> (bool, Option<String>) {
    let engine = RulesEngine::new([flag]);
    let company = company.cloned().map(PreparedCompany::new);
    let user = user.cloned().map(PreparedUser::new);
    let e = engine.check("feature", company.as_ref(), user.as_ref(), NOW);
    (e.value, e.rule_id.map(str::to_owned))
}

fn int_trait_match(left: &str, op: Operator, right: &str) -> bool {
    let def = TraitDefinition::new("t", ComparableType::Int, EntityType::Company);
    let mut co = Company::new("c");
    co.traits = vec![Trait::new(def.clone(), left)];
    let flag = Flag::new("f", "feature").with_rule(
        Rule::new("r", "R", RuleType::Standard, true)
            .with_condition(Condition::trait_value(def, op, right)),
    );
    evaluate(flag, Some(&co), None).0
}

fn string_trait_match(left: &str, op: Operator, right: &str) -> bool {
    let def = TraitDefinition::new("t", ComparableType::String, EntityType::Company);
    let mut co = Company::new("c");
    co.traits = vec![Trait::new(def.clone(), left)];
    let flag = Flag::new("f", "feature").with_rule(
        Rule::new("r", "R", RuleType::Standard, true)
            .with_condition(Condition::trait_value(def, op, right)),
    );
    evaluate(flag, Some(&co), None).0
}

/// Amounts that print and parse back exactly (serde_json's default float
/// parser may be off in the last bit for arbitrary values).
fn amount() -> impl Strategy<Value = f64> {
    (-4_000_000i32..4_000_000).prop_map(|n| f64::from(n) / 4.0)
}

fn rates() -> impl Strategy<Value = Vec<(String, f64)>> {
    prop::collection::vec(("[a-c]_tokens", amount()), 0..4)
}

fn spend_policy() -> impl Strategy<Value = CreditSpendPolicy> {
    (
        "[a-z]{1,3}",
        prop_oneof![Just("window"), Just("per_draw")],
        prop_oneof![
            Just(SpendPolicyScope::Company),
            Just(SpendPolicyScope::User),
            Just(SpendPolicyScope::Group),
            Just(SpendPolicyScope::Other("team".into())),
        ],
        amount(),
        proptest::option::of(amount()),
        proptest::option::of(("[a-z]{1,5}", any::<i64>())),
    )
        .prop_map(|(id, kind, scope, limit, consumed, window)| {
            let mut policy = CreditSpendPolicy::new(id, "cr", kind, scope, limit);
            policy.consumed = consumed;
            policy.window = window.map(|(unit, count)| CreditSpendWindow::new(unit, count));
            policy
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn newer_engine_fields_round_trip_through_json(
        rates in rates(),
        tiers in prop::collection::vec(("[a-z]{0,3}", any::<i64>()), 0..3),
        postpaid in prop::collection::btree_map("[a-c]{1,2}", proptest::option::of(amount()), 0..3),
        policies in prop::collection::vec(spend_policy(), 0..3),
        user_policies in prop::collection::vec(spend_policy(), 0..2),
    ) {
        let mut condition = Condition::credit("cr", Some(1.0)).with_event_subtype("ai");
        let mut entitlement = FeatureEntitlement::new("feat", "feature", "credit");
        for (name, rate) in &rates {
            condition = condition.with_quantity_rate(name.clone(), *rate);
            entitlement.quantity_rates.insert(name.clone(), *rate);
        }
        entitlement.warning_tiers = tiers.into_iter().map(|(k, v)| WarningTier::new(k, v)).collect();
        let flag = Flag::new("f", "feature")
            .with_rule(Rule::new("r", "R", RuleType::Standard, true).with_condition(condition));
        let back: Flag = serde_json::from_str(&serde_json::to_string(&flag).unwrap()).unwrap();
        prop_assert_eq!(back, flag);

        let mut co = Company::new("c");
        co.entitlements = vec![entitlement];
        co.credit_postpaid = postpaid
            .into_iter()
            .map(|(k, limit)| (k, CreditPostpaidConfig::new(limit)))
            .collect();
        co.credit_spend_policies = policies;
        let back: Company = serde_json::from_str(&serde_json::to_string(&co).unwrap()).unwrap();
        prop_assert_eq!(back, co);

        let mut user = User::new("u");
        user.credit_spend_policies = user_policies;
        let back: User = serde_json::from_str(&serde_json::to_string(&user).unwrap()).unwrap();
        prop_assert_eq!(back, user);
    }

    #[test]
    fn refused_preflight_always_gives_the_default(
        usage in proptest::option::of(any::<i64>()),
        event_usage in proptest::option::of(any::<i64>()),
        quantity in proptest::option::of(-1e3f64..1e3),
        cost in proptest::option::of(-1e3f64..1e3),
        default_value: bool,
        rule_type in known_rule_type(),
    ) {
        let flag = Flag::new("f", "feature")
            .with_default_value(default_value)
            .with_rule(Rule::new("r", "R", rule_type, !default_value));
        let engine = RulesEngine::new([flag]);
        let quantities: Vec<(&str, f64)> = quantity.map(|q| ("input_tokens", q)).into_iter().collect();
        let costs: Vec<(&str, f64)> = cost.map(|c| ("cr", c)).into_iter().collect();
        let mut options = CheckOptions::new().event_quantities("ai", &quantities).credit_cost(&costs);
        if let Some(u) = usage {
            options = options.usage(u);
        }
        if let Some(q) = event_usage {
            options = options.event_usage("ai", q);
        }
        let negative_usage = usage.is_some_and(|u| u < 0)
            || event_usage.is_some_and(|q| q < 0)
            || quantity.is_some_and(|q| q < 0.0);
        let negative_cost = cost.is_some_and(|c| c < 0.0);
        let e = engine.check_with("feature", None, None, NOW, &options);
        if negative_usage || negative_cost {
            prop_assert_eq!(e.value, default_value);
            prop_assert_eq!(e.reason, Reason::NoRulesMatched);
            prop_assert_eq!(e.rule_id, None);
            let want = if negative_usage {
                "preflight usage cannot be negative"
            } else {
                "preflight credit cost cannot be negative"
            };
            prop_assert_eq!(e.err, Some(want));
        } else {
            // A rule without conditions matches whatever the preflight.
            prop_assert_eq!(e.value, !default_value);
            prop_assert_eq!(e.err, None);
        }
    }

    #[test]
    fn rule_without_conditions_always_matches(
        rule_type in known_rule_type(),
        value: bool,
        default_value: bool,
        priority in -1000i64..1000,
        with_company: bool,
        with_user: bool,
    ) {
        let flag = Flag::new("f", "feature")
            .with_default_value(default_value)
            .with_rule(Rule::new("r", "R", rule_type, value).with_priority(priority));
        let co = Company::new("c");
        let user = User::new("u");
        let (got, rule_id) = evaluate(flag, with_company.then_some(&co), with_user.then_some(&user));
        prop_assert_eq!(got, value);
        prop_assert_eq!(rule_id.as_deref(), Some("r"));
    }

    #[test]
    fn ne_is_the_negation_of_eq_for_ids(
        resource_ids in ids(),
        id in "[a-d]{1,2}",
        plans in ids(),
        versions in ids(),
        products in ids(),
        kind in 0usize..5,
    ) {
        let co = company_from(id.clone(), plans, versions, products);
        let user = User::new(id);
        let refs: Vec<&str> = resource_ids.iter().map(String::as_str).collect();
        let build = |op: Operator| match kind {
            0 => Condition::company(op, &refs),
            1 => Condition::user(op, &refs),
            2 => Condition::plan(op, &refs),
            3 => Condition::plan_version(op, &refs),
            _ => Condition::billing_product(op, &refs),
        };
        let run = |op: Operator| {
            let flag = Flag::new("f", "feature")
                .with_rule(Rule::new("r", "R", RuleType::Standard, true).with_condition(build(op)));
            evaluate(flag, Some(&co), Some(&user)).0
        };
        prop_assert_eq!(run(Operator::Ne), !run(Operator::Eq));
    }

    #[test]
    fn base_plan_ne_is_the_negation_of_eq(resource_ids in ids(), base in proptest::option::of("[a-d]{1,2}")) {
        let mut co = Company::new("c");
        co.base_plan_id = base;
        let refs: Vec<&str> = resource_ids.iter().map(String::as_str).collect();
        let run = |op: Operator| {
            let flag = Flag::new("f", "feature").with_rule(
                Rule::new("r", "R", RuleType::Standard, true).with_condition(Condition::base_plan(op, &refs)),
            );
            evaluate(flag, Some(&co), None).0
        };
        prop_assert_eq!(run(Operator::Ne), !run(Operator::Eq));
        prop_assert_eq!(run(Operator::IsEmpty), !run(Operator::NotEmpty));
    }

    #[test]
    fn int_comparisons_are_a_total_order(a in any::<i64>(), b in any::<i64>()) {
        let (a, b) = (a.to_string(), b.to_string());
        let lt = int_trait_match(&a, Operator::Lt, &b);
        let eq = int_trait_match(&a, Operator::Eq, &b);
        let gt = int_trait_match(&a, Operator::Gt, &b);
        prop_assert_eq!(u8::from(lt) + u8::from(eq) + u8::from(gt), 1);
        prop_assert_eq!(int_trait_match(&a, Operator::Gte, &b), gt || eq);
        prop_assert_eq!(int_trait_match(&a, Operator::Lte, &b), lt || eq);
        prop_assert_eq!(int_trait_match(&a, Operator::Ne, &b), !eq);
    }

    #[test]
    fn string_comparisons_are_a_total_order(a in "\\PC{0,6}", b in "\\PC{0,6}") {
        let lt = string_trait_match(&a, Operator::Lt, &b);
        let eq = string_trait_match(&a, Operator::Eq, &b);
        let gt = string_trait_match(&a, Operator::Gt, &b);
        prop_assert_eq!(u8::from(lt) + u8::from(eq) + u8::from(gt), 1);
        prop_assert_eq!(lt, a < b);
        prop_assert_eq!(string_trait_match(&a, Operator::IsEmpty, &b), a.is_empty());
    }

    #[test]
    fn standard_rule_order_ignores_input_order(
        priorities in prop::collection::btree_set(-50i64..50, 1..8),
        matching in prop::collection::vec(any::<bool>(), 8),
        seed in any::<u64>(),
    ) {
        let rules: Vec<Rule> = priorities
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let target = if matching[i] { "c" } else { "nobody" };
                Rule::new(format!("r{p}"), "R", RuleType::Standard, i % 2 == 0)
                    .with_priority(*p)
                    .with_condition(Condition::company(Operator::Eq, &[target]))
            })
            .collect();
        let mut shuffled = rules.clone();
        // A deterministic Fisher–Yates driven by the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let co = Company::new("c");
        let mut a = Flag::new("f", "feature");
        a.rules = rules;
        let mut b = Flag::new("f", "feature");
        b.rules = shuffled;
        let expected = priorities
            .iter()
            .enumerate()
            .find(|(i, _)| matching[*i])
            .map(|(_, p)| format!("r{p}"));
        let got_a = evaluate(a, Some(&co), None).1;
        prop_assert_eq!(&got_a, &expected);
        prop_assert_eq!(evaluate(b, Some(&co), None).1, expected);
    }

    #[test]
    fn iso_and_js_dates_agree(days in 0i64..40_000) {
        let date = datetime!(1970-01-01 0:00 UTC) + time::Duration::days(days);
        let iso = format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day());
        let weekday = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][date.weekday().number_days_from_monday() as usize];
        let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
            [usize::from(u8::from(date.month())) - 1];
        let js = format!("{weekday} {month} {:02} {:04}", date.day(), date.year());
        prop_assert_eq!(parse_date(&iso), Some(date));
        prop_assert_eq!(parse_date(&js), Some(date));
        let rfc = format!("{iso}T00:00:00Z");
        prop_assert_eq!(parse_date(&rfc), Some(date));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
        let _ = parse_date(&text);
        let _ = RulesEngine::from_json(&text);
        let _ = PreparedCompany::from_json(&text);
    }

    #[test]
    fn flags_round_trip_through_json(value: bool, priority: i64, ids in ids(), name in "\\PC{0,10}") {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let flag = Flag::new("f", "feature").with_default_value(!value).with_rule(
            Rule::new("r", name, RuleType::Standard, value)
                .with_priority(priority)
                .with_condition(Condition::plan(Operator::Ne, &refs))
                .with_group(vec![Condition::company(Operator::Eq, &refs)]),
        );
        let json = serde_json::to_string(&flag).unwrap();
        let back: Flag = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, flag);
    }
}
