//! Laws of the DataStream partial merges, over generated companies, users
//! and patches.

use std::collections::{BTreeMap, BTreeSet};

use flagwire_core::datastream::{
    CompanyPatch, CreditLeaseBalance, UserPatch, bump_metrics, stale_lookups,
};
use flagwire_core::events::Keys;
use flagwire_core::rules::{
    Company, CompanyMetric, ComparableType, EntityType, FeatureEntitlement, MetricPeriod,
    MonthReset, Rule, RuleType, Subscription, Trait, TraitDefinition, User,
};
use proptest::prelude::*;
use time::macros::datetime;

/// Amounts that print and parse back exactly.
fn amount() -> impl Strategy<Value = f64> {
    (-4_000i32..4_000).prop_map(|n| f64::from(n) / 4.0)
}

fn keys() -> impl Strategy<Value = Keys> {
    prop::collection::btree_map("[a-c]", "[x-z]{1,2}", 0..4)
}

fn period() -> impl Strategy<Value = MetricPeriod> {
    prop_oneof![
        Just(MetricPeriod::AllTime),
        Just(MetricPeriod::CurrentDay),
        Just(MetricPeriod::CurrentMonth),
    ]
}

fn reset() -> impl Strategy<Value = MonthReset> {
    prop_oneof![
        Just(MonthReset::FirstOfMonth),
        Just(MonthReset::BillingCycle)
    ]
}

fn metric() -> impl Strategy<Value = CompanyMetric> {
    (
        prop_oneof![Just("api"), Just("ai")],
        period(),
        reset(),
        any::<i32>(),
    )
        .prop_map(|(subtype, period, reset, value)| {
            CompanyMetric::new(subtype, period, reset, i64::from(value))
        })
}

/// Metrics with distinct `(subtype, period, reset)` triples, like a company
/// the platform sends.
fn unique_metrics() -> impl Strategy<Value = Vec<CompanyMetric>> {
    prop::collection::vec(metric(), 0..6).prop_map(|metrics| {
        let mut seen = BTreeSet::new();
        metrics
            .into_iter()
            .filter(|m| seen.insert(triple(m)))
            .collect()
    })
}

fn triple(m: &CompanyMetric) -> (String, String, String) {
    (
        m.event_subtype.clone(),
        m.period.as_str().to_owned(),
        m.month_reset.as_str().to_owned(),
    )
}

fn entitlement() -> impl Strategy<Value = FeatureEntitlement> {
    (
        "[a-c]",
        proptest::option::of(prop_oneof![Just("api"), Just("ai")]),
        proptest::option::of(period()),
        proptest::option::of(reset()),
        proptest::option::of(prop_oneof![Just("cr1"), Just("cr2")]),
        proptest::option::of(any::<i32>()),
        proptest::option::of(amount()),
    )
        .prop_map(|(key, event, period, reset, credit, usage, remaining)| {
            let mut e = FeatureEntitlement::new(format!("feat_{key}"), key, "numeric");
            e.event_name = event.map(str::to_owned);
            e.metric_period = period;
            e.month_reset = reset;
            e.credit_id = credit.map(str::to_owned);
            e.usage = usage.map(i64::from);
            e.credit_remaining = remaining;
            e.credit_total = Some(100.0);
            e
        })
}

fn balances() -> impl Strategy<Value = BTreeMap<String, f64>> {
    prop::collection::btree_map(
        prop_oneof![Just("cr1"), Just("cr2"), Just("cr3")].prop_map(str::to_owned),
        amount(),
        0..3,
    )
}

fn ids() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-c]{1,2}", 0..3)
}

fn company() -> impl Strategy<Value = Company> {
    (
        "co_[a-c]",
        keys(),
        unique_metrics(),
        balances(),
        (ids(), ids(), ids(), proptest::option::of("[a-c]")),
        prop::collection::vec(entitlement(), 0..3),
        prop::collection::vec(("[a-c]", "[0-9]{1,2}"), 0..3),
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                id,
                keys,
                metrics,
                balances,
                (plans, versions, products, base),
                entitlements,
                traits,
                (sub, rule),
            )| {
                let mut co = Company::new(id);
                co.account_id = "acc".into();
                co.keys = keys;
                co.metrics = metrics;
                co.credit_balances = balances;
                co.plan_ids = plans;
                co.plan_version_ids = versions;
                co.billing_product_ids = products;
                co.base_plan_id = base;
                co.entitlements = entitlements;
                co.traits = traits
                    .into_iter()
                    .map(|(def, value)| {
                        Trait::new(
                            TraitDefinition::new(def, ComparableType::Int, EntityType::Company),
                            value,
                        )
                    })
                    .collect();
                if sub {
                    co.subscription = Some(Subscription::new(
                        "sub",
                        datetime!(2024-01-01 0:00 UTC),
                        datetime!(2025-01-01 0:00 UTC),
                    ));
                }
                if rule {
                    co.rules = vec![
                        Rule::new("r", "R", RuleType::CompanyOverride, true).with_flag_id("f"),
                    ];
                }
                co
            },
        )
}

/// A patch with any subset of fields.
fn patch() -> impl Strategy<Value = CompanyPatch> {
    (
        proptest::option::of(keys()),
        proptest::option::of(prop::collection::vec(metric(), 0..4)),
        proptest::option::of(balances()),
        proptest::option::of(ids()),
        proptest::option::of(proptest::option::of("[a-c]")),
        proptest::option::of(prop::collection::vec(entitlement(), 0..2)),
        proptest::option::of(prop::collection::btree_map(
            prop_oneof![Just("cr1"), Just("cr4")].prop_map(str::to_owned),
            proptest::option::of(amount()),
            0..2,
        )),
    )
        .prop_map(
            |(keys, metrics, balances, plans, base, entitlements, leases)| {
                let mut patch = CompanyPatch::default();
                patch.keys = keys;
                patch.metrics = metrics;
                patch.credit_balances = balances;
                patch.plan_ids = plans;
                patch.base_plan_id = base;
                patch.entitlements = entitlements;
                patch.credit_lease_balance = leases.map(|leases| {
                    leases
                        .into_iter()
                        .map(|(credit, remaining)| {
                            let lease = remaining
                                .map_or_else(CreditLeaseBalance::default, CreditLeaseBalance::new);
                            (credit, lease)
                        })
                        .collect()
                });
                patch
            },
        )
}

fn user() -> impl Strategy<Value = User> {
    ("u_[a-c]", keys(), any::<bool>()).prop_map(|(id, keys, rule)| {
        let mut user = User::new(id);
        user.keys = keys;
        user.environment_id = "env".into();
        if rule {
            user.rules = vec![Rule::new("r", "R", RuleType::Standard, true).with_flag_id("f")];
        }
        user
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A patch carrying every field of a full company replaces the replaced
    /// fields, merges keys and balances, and upserts metrics.
    #[test]
    fn a_full_company_as_a_patch(cached in company(), full in company()) {
        // flagwire leaves absent optional fields out; the platform's Go
        // services write them as `null`, which the patch reads as "removed".
        let mut json = serde_json::to_value(&full).unwrap();
        for optional in ["base_plan_id", "subscription"] {
            json.as_object_mut().unwrap().entry(optional).or_insert(serde_json::Value::Null);
        }
        let patch = CompanyPatch::from_json(&json.to_string()).unwrap();
        let mut merged = cached.clone();
        let outcome = patch.apply(&mut merged);

        prop_assert_eq!(&merged.id, &full.id);
        prop_assert_eq!(&merged.account_id, &full.account_id);
        prop_assert_eq!(&merged.environment_id, &full.environment_id);
        prop_assert_eq!(&merged.traits, &full.traits);
        prop_assert_eq!(&merged.plan_ids, &full.plan_ids);
        prop_assert_eq!(&merged.plan_version_ids, &full.plan_version_ids);
        prop_assert_eq!(&merged.base_plan_id, &full.base_plan_id);
        prop_assert_eq!(&merged.billing_product_ids, &full.billing_product_ids);
        prop_assert_eq!(&merged.entitlements, &full.entitlements);
        prop_assert_eq!(&merged.rules, &full.rules);
        prop_assert_eq!(&merged.subscription, &full.subscription);

        let mut keys = cached.keys.clone();
        keys.extend(full.keys.clone());
        prop_assert_eq!(&merged.keys, &keys);
        let mut balances = cached.credit_balances.clone();
        balances.extend(full.credit_balances.clone());
        prop_assert_eq!(&merged.credit_balances, &balances);
        // Every metric of the full company is there; the cached ones it did
        // not name are kept.
        for m in &full.metrics {
            prop_assert!(merged.metrics.contains(m));
        }
        for m in &cached.metrics {
            if !full.metrics.iter().any(|f| triple(f) == triple(m)) {
                prop_assert!(merged.metrics.contains(m));
            }
        }
        prop_assert_eq!(outcome.old_id.is_some(), cached.id != full.id);
        prop_assert_eq!(outcome.keys_changed, keys != cached.keys);
    }

    #[test]
    fn the_empty_patch_is_the_identity(cached in company(), user in user()) {
        let mut merged = cached.clone();
        let outcome = CompanyPatch::from_json("{}").unwrap().apply(&mut merged);
        prop_assert_eq!(&merged, &cached);
        prop_assert!(!outcome.keys_changed && outcome.old_keys.is_none() && outcome.old_id.is_none());
        let mut merged = user.clone();
        UserPatch::from_json("{}").unwrap().apply(&mut merged);
        prop_assert_eq!(merged, user);
    }

    #[test]
    fn keys_and_balances_merge_per_key(cached in company(), patch in patch()) {
        let mut merged = cached.clone();
        let outcome = patch.apply(&mut merged);
        let new_keys = patch.keys.clone().unwrap_or_default();
        for (k, v) in &cached.keys {
            let want = new_keys.get(k).unwrap_or(v);
            prop_assert_eq!(&merged.keys[k], want);
        }
        for (k, v) in &new_keys {
            prop_assert_eq!(&merged.keys[k], v);
        }
        prop_assert_eq!(merged.keys.len(), cached.keys.iter().filter(|(k, _)| !new_keys.contains_key(*k)).count() + new_keys.len());
        // The keys a merge drops from the lookup table are exactly the
        // changed values.
        prop_assert_eq!(outcome.keys_changed, outcome.old_keys.is_some());
        if let Some(old) = &outcome.old_keys {
            prop_assert_eq!(old, &cached.keys);
            let stale: Vec<_> = stale_lookups(old, &merged.keys).collect();
            for (k, v) in stale {
                prop_assert!(new_keys.get(k).is_some_and(|n| !n.eq_ignore_ascii_case(v)));
            }
        }

        let balances = patch.credit_balances.clone().unwrap_or_default();
        let leases = patch.credit_lease_balance.clone().unwrap_or_default();
        for (credit, value) in &merged.credit_balances {
            let want = leases
                .get(credit)
                .and_then(|l| l.remaining)
                .or_else(|| balances.get(credit).copied())
                .or_else(|| cached.credit_balances.get(credit).copied());
            prop_assert_eq!(Some(*value), want, "{}", credit);
        }
        for credit in cached.credit_balances.keys().chain(balances.keys()) {
            prop_assert!(merged.credit_balances.contains_key(credit));
        }

        // Applying the same patch again changes nothing more.
        let mut twice = merged.clone();
        let again = patch.apply(&mut twice);
        prop_assert_eq!(&twice, &merged);
        prop_assert!(!again.keys_changed);
    }

    #[test]
    fn metric_upserts_never_duplicate_a_triple(cached in company(), patch in patch()) {
        let mut merged = cached.clone();
        patch.apply(&mut merged);
        let triples: Vec<_> = merged.metrics.iter().map(triple).collect();
        let distinct: BTreeSet<_> = triples.iter().cloned().collect();
        prop_assert_eq!(triples.len(), distinct.len());
        // Each triple holds the last value the patch sent for it.
        for m in patch.metrics.iter().flatten() {
            let last = patch.metrics.iter().flatten().rfind(|p| triple(p) == triple(m)).unwrap();
            let got = merged.metrics.iter().find(|x| triple(x) == triple(m)).unwrap();
            prop_assert_eq!(got, last);
        }
    }

    #[test]
    fn derived_entitlements_follow_the_merged_data(cached in company(), patch in patch()) {
        let mut merged = cached.clone();
        patch.apply(&mut merged);
        if let Some(sent) = &patch.entitlements {
            prop_assert_eq!(&merged.entitlements, sent);
            return Ok(());
        }
        prop_assert_eq!(merged.entitlements.len(), cached.entitlements.len());
        let touched = |credit: &str| {
            patch.credit_balances.as_ref().is_some_and(|b| b.contains_key(credit))
                || patch.credit_lease_balance.as_ref().is_some_and(|l| l.get(credit).is_some_and(|l| l.remaining.is_some()))
        };
        for (before, after) in cached.entitlements.iter().zip(&merged.entitlements) {
            prop_assert_eq!(after.credit_total, before.credit_total);
            match &before.credit_id {
                Some(credit) if touched(credit) => {
                    prop_assert_eq!(after.credit_remaining, Some(merged.credit_balances[credit]));
                }
                _ => prop_assert_eq!(after.credit_remaining, before.credit_remaining),
            }
            let metric = before.event_name.as_ref().and_then(|event| {
                let period = before.metric_period.clone().unwrap_or(MetricPeriod::AllTime);
                let reset = before.month_reset.clone().unwrap_or(MonthReset::FirstOfMonth);
                merged.metrics.iter().find(|m| m.event_subtype == *event && m.period == period && m.month_reset == reset)
            });
            match metric {
                Some(m) if patch.metrics.is_some() => prop_assert_eq!(after.usage, Some(m.value)),
                _ => prop_assert_eq!(after.usage, before.usage),
            }
        }
    }

    #[test]
    fn a_full_user_as_a_patch(cached in user(), full in user()) {
        let patch = UserPatch::from_json(&serde_json::to_string(&full).unwrap()).unwrap();
        let mut merged = cached.clone();
        let outcome = patch.apply(&mut merged);
        prop_assert_eq!(&merged.id, &full.id);
        prop_assert_eq!(&merged.environment_id, &full.environment_id);
        prop_assert_eq!(&merged.traits, &full.traits);
        prop_assert_eq!(&merged.rules, &full.rules);
        let mut keys = cached.keys.clone();
        keys.extend(full.keys.clone());
        prop_assert_eq!(&merged.keys, &keys);
        prop_assert_eq!(outcome.old_id.is_some(), cached.id != full.id);
    }

    #[test]
    fn patches_round_trip_through_their_json(patch in patch()) {
        let json = serde_json::to_string(&patch).unwrap();
        prop_assert_eq!(CompanyPatch::from_json(&json).unwrap(), patch);
    }

    #[test]
    fn bumps_add_to_every_metric_of_the_subtype(cached in company(), quantity in any::<i64>()) {
        let mut bumped = cached.clone();
        let changed = bump_metrics(&mut bumped, "api", quantity);
        let mut any_change = false;
        for (before, after) in cached.metrics.iter().zip(&bumped.metrics) {
            if before.event_subtype == "api" {
                prop_assert_eq!(after.value, before.value.saturating_add(quantity));
                any_change |= after.value != before.value;
            } else {
                prop_assert_eq!(after, before);
            }
        }
        prop_assert_eq!(changed, any_change);
        prop_assert_eq!(&bumped.entitlements, &cached.entitlements);
    }
}
