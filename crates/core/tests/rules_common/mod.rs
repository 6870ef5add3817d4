//! Fixtures shared by the rules-engine allocation test and benchmark.
#![allow(dead_code)]

use flagwire_core::rules::{
    Company, CompanyMetric, ComparableType, Condition, EntityType, Flag, MetricPeriod, MonthReset,
    Operator, Rule, RuleType, Subscription, Trait, TraitDefinition, User,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// Wednesday, 6 March 2024, noon UTC.
pub const NOW: OffsetDateTime = datetime!(2024-03-06 12:00 UTC);

fn company_trait(i: usize) -> TraitDefinition {
    let ct = match i % 4 {
        0 => ComparableType::String,
        1 => ComparableType::Int,
        2 => ComparableType::Bool,
        _ => ComparableType::Date,
    };
    TraitDefinition::new(format!("trait_{i:02}"), ct, EntityType::Company)
}

fn trait_value(i: usize) -> String {
    match i % 4 {
        0 => format!("value-{i}"),
        1 => (i * 10).to_string(),
        2 => "true".to_owned(),
        _ => format!("2024-02-{:02}", i % 28 + 1),
    }
}

/// A company with 20 traits (string, int, bool and date), 5 metrics,
/// 3 plans, a base plan, a credit balance, a subscription and an entitlement.
pub fn large_company() -> Company {
    let mut co = Company::new("company_0042");
    co.keys.insert("domain".into(), "acme.example".into());
    co.traits = (0..20)
        .map(|i| Trait::new(company_trait(i), trait_value(i)))
        .collect();
    let periods = [
        (MetricPeriod::AllTime, MonthReset::FirstOfMonth),
        (MetricPeriod::CurrentDay, MonthReset::FirstOfMonth),
        (MetricPeriod::CurrentWeek, MonthReset::FirstOfMonth),
        (MetricPeriod::CurrentMonth, MonthReset::FirstOfMonth),
        (MetricPeriod::CurrentMonth, MonthReset::BillingCycle),
    ];
    co.metrics = periods
        .into_iter()
        .enumerate()
        .map(|(i, (p, r))| CompanyMetric::new(format!("event_{i}"), p, r, 100 * (i as i64 + 1)))
        .collect();
    co.plan_ids = vec!["plan_free".into(), "plan_addon".into(), "plan_pro".into()];
    co.plan_version_ids = vec!["plan_pro_v3".into()];
    co.base_plan_id = Some("plan_pro".into());
    co.billing_product_ids = vec!["prod_seats".into()];
    co.credit_balances.insert("credit_ai".into(), 250.0);
    co.subscription = Some(Subscription::new(
        "sub_1",
        datetime!(2024-01-10 08:00 UTC),
        datetime!(2025-01-10 08:00 UTC),
    ));
    co.entitlements = vec![
        serde_json::from_value(serde_json::json!({
            "feature_id": "feat_reports", "feature_key": "advanced-reports", "value_type": "numeric",
            "allocation": 500, "usage": 400
        }))
        .expect("entitlement fixture"),
    ];
    co
}

/// A user with a few traits.
pub fn large_user() -> User {
    let mut user = User::new("user_0007");
    user.traits = (0..5)
        .map(|i| {
            Trait::new(
                TraitDefinition::new(
                    format!("user_trait_{i}"),
                    ComparableType::String,
                    EntityType::User,
                ),
                format!("u{i}"),
            )
        })
        .collect();
    user
}

/// `advanced-reports`: 10 rules × 3 conditions. Rules 1–9 pass their first
/// two conditions and fail on the third, so a check walks every rule and
/// evaluates all 30 conditions (metric, trait of every comparable type,
/// plan, company, credit) before the tenth matches.
pub fn large_flag() -> Flag {
    let eq = || Operator::Eq;
    let mut flag = Flag::new("flag_reports", "advanced-reports");
    for r in 0..10 {
        let k = r / 2; // trait block: 4k string, 4k+1 int, 4k+2 bool, 4k+3 date
        let pass_a = Condition::plan(eq(), &["plan_enterprise", "plan_pro"]);
        let pass_b = Condition::metric(
            format!("event_{}", r % 5),
            [
                MetricPeriod::AllTime,
                MetricPeriod::CurrentDay,
                MetricPeriod::CurrentWeek,
                MetricPeriod::CurrentMonth,
                MetricPeriod::CurrentMonth,
            ][r % 5]
                .clone(),
            (r % 5 == 4).then_some(MonthReset::BillingCycle),
            Operator::Lt,
            10_000,
        );
        let last = r == 9;
        // The third condition fails for rules 0..9 and passes for the last.
        let third = match r % 5 {
            0 => Condition::trait_value(
                company_trait(4 * k),
                Operator::Eq,
                if last {
                    trait_value(4 * k)
                } else {
                    "nope".into()
                },
            ),
            1 => Condition::trait_value(
                company_trait(4 * k + 1),
                Operator::Gt,
                if last { "0" } else { "100000" },
            ),
            2 => Condition::credit("credit_ai", Some(if last { 1.0 } else { 1000.0 })),
            3 => Condition::trait_value(
                company_trait(4 * k + 3),
                Operator::Lt,
                if last { "2030-01-01" } else { "2000-01-01" },
            ),
            _ => Condition::trait_value(
                company_trait(4 * k + 2),
                Operator::Eq,
                if last { "true" } else { "false" },
            ),
        };
        let rule = Rule::new(
            format!("rule_{r}"),
            format!("Rule {r}"),
            RuleType::Standard,
            true,
        )
        .with_priority(r as i64)
        .with_condition(pass_a)
        .with_condition(pass_b)
        .with_condition(third);
        flag.rules.push(rule);
    }
    flag
}

/// `dark-mode`: one rule with one plan condition.
pub fn small_flag() -> Flag {
    Flag::new("flag_dark", "dark-mode").with_rule(
        Rule::new("rule_pro", "Pro plans", RuleType::Standard, true)
            .with_condition(Condition::plan(Operator::Eq, &["plan_pro"])),
    )
}
