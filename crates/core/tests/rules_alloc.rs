//! Proof that flag checks perform no heap allocation, measured with the
//! counting global allocator.

mod rules_common;

use std::hint::black_box;

use flagwire_alloc_counter::{CountingAllocator, count_allocations};
use flagwire_core::rules::{
    CheckOptions, Condition, MetricPeriod, MonthReset, Operator, PreparedCompany, PreparedUser,
    Rule, RuleType, RulesEngine,
};
use rules_common::{NOW, large_company, large_flag, large_user, small_flag};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

#[test]
fn checks_do_not_allocate() {
    // Company rules for the large flag, plus an entitlement rule reporting
    // usage with a billing-cycle reset, exercise the merge and usage paths.
    let mut company = large_company();
    company.rules.push(
        Rule::new("co_rule", "Company beta", RuleType::Standard, true)
            .with_flag_id("flag_reports")
            .with_priority(100)
            .with_condition(Condition::company(Operator::Ne, &["someone_else"])),
    );
    let mut metered = small_flag();
    metered.key = "metered".into();
    metered.id = "flag_metered".into();
    metered.rules.push(
        Rule::new("ent", "Metered", RuleType::PlanEntitlement, true).with_condition(
            Condition::metric(
                "event_4",
                MetricPeriod::CurrentMonth,
                Some(MonthReset::BillingCycle),
                Operator::Lt,
                10_000,
            ),
        ),
    );
    let mut tokens = small_flag();
    tokens.key = "tokens".into();
    tokens.id = "flag_tokens".into();
    tokens.rules.insert(
        0,
        Rule::new("priced", "Priced", RuleType::PlanEntitlement, true).with_condition(
            Condition::credit("credit_ai", Some(1.0))
                .with_event_subtype("ai-call")
                .with_quantity_rate("input_tokens", 0.01)
                .with_quantity_rate("output_tokens", 0.02),
        ),
    );
    let engine = RulesEngine::new([large_flag(), small_flag(), metered, tokens]);
    let company = PreparedCompany::new(company);
    let user = PreparedUser::new(large_user());
    let costs = [("credit_ai", 3.0)];
    let options = CheckOptions::new()
        .usage(2)
        .event_usage("event_1", 5)
        .credit_cost(&costs);
    let quantities = [("input_tokens", 1000.0), ("output_tokens", 500.0)];
    let priced = CheckOptions::new().event_quantities("ai-call", &quantities);
    let too_many = [("input_tokens", 1e9)];
    let over = CheckOptions::new().event_quantities("ai-call", &too_many);
    let negative_quantities = [("input_tokens", -1.0)];
    let negative_costs = [("credit_ai", -1.0)];
    let refused = [
        CheckOptions::new().usage(-1),
        CheckOptions::new().event_quantities("ai-call", &negative_quantities),
        CheckOptions::new().credit_cost(&negative_costs),
    ];

    // Warm up anything lazily initialised (none expected).
    let _ = engine.check("advanced-reports", Some(&company), Some(&user), NOW);

    let ((), allocations) = count_allocations(|| {
        for _ in 0..1000 {
            let e = engine.check(
                black_box("advanced-reports"),
                Some(&company),
                Some(&user),
                black_box(NOW),
            );
            assert_eq!(e.rule_id, Some("rule_9"));
            assert!(e.entitlement.is_some());
            let e = engine.check(black_box("dark-mode"), Some(&company), None, NOW);
            assert!(e.value);
            let e = engine.check_with(
                black_box("advanced-reports"),
                Some(&company),
                Some(&user),
                NOW,
                &options,
            );
            black_box(e);
            let e = engine.check(black_box("metered"), Some(&company), None, NOW);
            assert!(e.feature_usage.is_some_and(|u| u.reset_at.is_some()));
            let e = engine.check(black_box("no-such-flag"), Some(&company), Some(&user), NOW);
            black_box(e.reason);
            let e = engine.check(black_box("dark-mode"), None, None, NOW);
            assert!(!e.value);
            let e = engine.check_with(black_box("tokens"), Some(&company), None, NOW, &priced);
            assert_eq!(e.rule_id, Some("priced"));
            let e = engine.check_with(black_box("tokens"), Some(&company), None, NOW, &over);
            assert_ne!(e.rule_id, Some("priced"));
            for options in &refused {
                let e = engine.check_with(black_box("metered"), Some(&company), None, NOW, options);
                assert!(e.err.is_some());
            }
        }
    });
    assert_eq!(allocations, 0, "flag checks allocated {allocations} times");
}

#[test]
fn the_counter_is_live() {
    // Guards against a silently inactive allocator making the test above vacuous.
    let (v, allocations) = count_allocations(|| vec![0u8; 32]);
    black_box(v);
    assert_eq!(allocations, 1);
}
