//! Partial updates of cached companies and users, and the optimistic metric
//! bump after `track`.
//!
//! A `partial` message carries only the fields of an entity that changed.
//! [`CompanyPatch`] and [`UserPatch`] hold exactly those fields (absent is
//! `None`; a field sent as `null` is present and empty) and
//! [`apply`](CompanyPatch::apply) them to the cached entity with the
//! platform's merge rules:
//!
//! * `keys` and `credit_balances` merge per key (the patch wins);
//! * `metrics` are upserted by `(event_subtype, period, month_reset)`: a
//!   patch metric replaces the first cached metric with the same triple,
//!   and is appended when there is none;
//! * every other field is replaced;
//! * `credit_lease_balance` (per credit: `{remaining, ..}`) sets the balance
//!   of each credit to its `remaining`, after `credit_balances`;
//! * unless the patch carries `entitlements` itself, entitlements follow the
//!   merged data: a credit balance the patch touched sets `credit_remaining`
//!   of the entitlements for that credit, and when the patch carries
//!   `metrics`, each entitlement with an `event_name` takes its `usage` from
//!   the merged metric for `(event_name, metric_period or all_time,
//!   month_reset or first_of_month)`. `credit_total` and `credit_used` are
//!   left alone.
//!
//! [`bump_metrics`] counts a tracked event into the cached company before
//! the server's next update arrives (which then replaces the metric, so
//! nothing is counted twice).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::wire::{DecodeError, EntityType, MessageType, decode_payload};
use crate::de::Key;
use crate::events::Keys;
use crate::rules::{
    Company, CompanyMetric, CreditPostpaidConfig, CreditSpendPolicy, FeatureEntitlement,
    MetricPeriod, MonthReset, Rule, Subscription, Trait, User,
};

/// What a merge changed that the cache's indexes depend on.
///
/// A store keeps one entry per entity id and one lookup entry per key pair
/// (see [`CacheKeys`](super::CacheKeys)). After a merge:
///
/// * when [`old_id`](Self::old_id) is set the entity moved: drop the entry
///   under the old id and point every lookup at the new one;
/// * when [`keys_changed`](Self::keys_changed) is set, add lookups for the
///   new keys and remove the pairs of [`old_keys`](Self::old_keys) that are
///   gone ([`stale_lookups`](super::stale_lookups)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeOutcome {
    /// Whether a key was added or got a different value.
    pub keys_changed: bool,
    /// The keys before the merge, when they changed.
    pub old_keys: Option<Keys>,
    /// The id before the merge, when the patch replaced it.
    pub old_id: Option<String>,
}

impl MergeOutcome {
    /// The lookup pairs that the merge made stale (none when the keys did
    /// not change).
    pub fn stale_lookups<'a>(
        &'a self,
        new_keys: &'a Keys,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.old_keys
            .iter()
            .flat_map(move |old| super::keys::stale_lookups(old, new_keys))
    }
}

/// The live balance of one credit as a lease service reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CreditLeaseBalance {
    /// Credits available now; absent leaves the cached balance alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<f64>,
}

impl CreditLeaseBalance {
    /// A balance with `remaining` credits.
    pub fn new(remaining: f64) -> Self {
        Self {
            remaining: Some(remaining),
        }
    }
}

impl<'de> Deserialize<'de> for CreditLeaseBalance {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default)]
            remaining: Option<f64>,
        }
        let wire = Option::<Wire>::deserialize(deserializer)?;
        Ok(Self {
            remaining: wire.and_then(|w| w.remaining),
        })
    }
}

/// The fields of a company `partial` message: `None` is "not sent".
///
/// A field sent as `null` is present: collections and strings become
/// empty, `base_plan_id` and `subscription` become `Some(None)`. Both
/// snake_case and camelCase names are read (an object with both spellings
/// of one field is refused); unknown fields are ignored. Serialization
/// writes the present fields in snake_case, so the emulator can send
/// patches built with this type.
///
/// ```
/// use flagwire_core::datastream::CompanyPatch;
/// use flagwire_core::rules::Company;
///
/// let mut company: Company = serde_json::from_str(
///     r#"{"id":"co_1","keys":{"id":"acme"},"credit_balances":{"cr":5.0},"plan_ids":["p"]}"#,
/// )?;
/// let patch = CompanyPatch::from_json(r#"{"creditBalances":{"cr":3.5},"keys":{"slug":"acme-inc"}}"#)?;
/// let outcome = patch.apply(&mut company);
/// assert_eq!(company.credit_balances["cr"], 3.5);
/// assert_eq!(company.keys.len(), 2);
/// assert_eq!(company.plan_ids, ["p"]);
/// assert!(outcome.keys_changed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CompanyPatch {
    /// Replaces the id (an empty id is never applied: entities are cached by id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Replaces the account id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Replaces the environment id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<String>,
    /// Merged into the keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<Keys>,
    /// Replaces the traits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traits: Option<Vec<Trait>>,
    /// Upserted into the metrics by `(event_subtype, period, month_reset)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<CompanyMetric>>,
    /// Replaces the plan ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_ids: Option<Vec<String>>,
    /// Replaces the plan version ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_version_ids: Option<Vec<String>>,
    /// Replaces the base plan (`Some(None)`: removes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_plan_id: Option<Option<String>>,
    /// Replaces the billing product ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_product_ids: Option<Vec<String>>,
    /// Merged into the credit balances.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_balances: Option<BTreeMap<String, f64>>,
    /// Replaces the entitlements (and turns off their derived sync).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entitlements: Option<Vec<FeatureEntitlement>>,
    /// Replaces the company rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule>>,
    /// Replaces the subscription (`Some(None)`: removes it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Option<Subscription>>,
    /// Replaces the postpaid settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_postpaid: Option<BTreeMap<String, CreditPostpaidConfig>>,
    /// Replaces the spend policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_spend_policies: Option<Vec<CreditSpendPolicy>>,
    /// Live balances by credit id; each `remaining` is merged into the
    /// credit balances (the Node SDK's extension of the partial).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_lease_balance: Option<BTreeMap<String, CreditLeaseBalance>>,
}

/// The fields of a user `partial` message: `None` is "not sent".
///
/// `keys` merge, everything else is replaced; reading follows
/// [`CompanyPatch`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UserPatch {
    /// Replaces the id (an empty id is never applied).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Replaces the account id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Replaces the environment id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<String>,
    /// Merged into the keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<Keys>,
    /// Replaces the traits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traits: Option<Vec<Trait>>,
    /// Replaces the user rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<Rule>>,
    /// Replaces the spend policies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credit_spend_policies: Option<Vec<CreditSpendPolicy>>,
}

/// Reads a present field: `null` becomes the empty value. A second
/// spelling of a field already read is a duplicate.
fn present<'de, A, T>(slot: &mut Option<T>, name: &'static str, map: &mut A) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de> + Default,
{
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value::<Option<T>>()?.unwrap_or_default());
    Ok(())
}

/// Reads a present optional field: `null` becomes `Some(None)`.
fn nullable<'de, A, T>(
    slot: &mut Option<Option<T>>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: Deserialize<'de>,
{
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_value::<Option<T>>()?);
    Ok(())
}

impl<'de> Deserialize<'de> for CompanyPatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CompanyPatch;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with the changed company fields")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CompanyPatch, A::Error> {
                let mut p = CompanyPatch::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let m = &mut map;
                    match key.as_str() {
                        "id" => present(&mut p.id, "id", m)?,
                        "account_id" | "accountId" => present(&mut p.account_id, "account_id", m)?,
                        "environment_id" | "environmentId" => {
                            present(&mut p.environment_id, "environment_id", m)?;
                        }
                        "keys" => present(&mut p.keys, "keys", m)?,
                        "traits" => present(&mut p.traits, "traits", m)?,
                        "metrics" => present(&mut p.metrics, "metrics", m)?,
                        "plan_ids" | "planIds" | "planIDs" => {
                            present(&mut p.plan_ids, "plan_ids", m)?;
                        }
                        "plan_version_ids" | "planVersionIds" | "planVersionIDs" => {
                            present(&mut p.plan_version_ids, "plan_version_ids", m)?;
                        }
                        "base_plan_id" | "basePlanId" | "basePlanID" => {
                            nullable(&mut p.base_plan_id, "base_plan_id", m)?;
                        }
                        "billing_product_ids" | "billingProductIds" | "billingProductIDs" => {
                            present(&mut p.billing_product_ids, "billing_product_ids", m)?;
                        }
                        "credit_balances" | "creditBalances" => {
                            present(&mut p.credit_balances, "credit_balances", m)?;
                        }
                        "entitlements" => present(&mut p.entitlements, "entitlements", m)?,
                        "rules" => present(&mut p.rules, "rules", m)?,
                        "subscription" => nullable(&mut p.subscription, "subscription", m)?,
                        "credit_postpaid" | "creditPostpaid" => {
                            present(&mut p.credit_postpaid, "credit_postpaid", m)?;
                        }
                        "credit_spend_policies" | "creditSpendPolicies" => {
                            present(&mut p.credit_spend_policies, "credit_spend_policies", m)?;
                        }
                        "credit_lease_balance" | "creditLeaseBalance" => {
                            present(&mut p.credit_lease_balance, "credit_lease_balance", m)?;
                        }
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(p)
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for UserPatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UserPatch;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with the changed user fields")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UserPatch, A::Error> {
                let mut p = UserPatch::default();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let m = &mut map;
                    match key.as_str() {
                        "id" => present(&mut p.id, "id", m)?,
                        "account_id" | "accountId" => present(&mut p.account_id, "account_id", m)?,
                        "environment_id" | "environmentId" => {
                            present(&mut p.environment_id, "environment_id", m)?;
                        }
                        "keys" => present(&mut p.keys, "keys", m)?,
                        "traits" => present(&mut p.traits, "traits", m)?,
                        "rules" => present(&mut p.rules, "rules", m)?,
                        "credit_spend_policies" | "creditSpendPolicies" => {
                            present(&mut p.credit_spend_policies, "credit_spend_policies", m)?;
                        }
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(p)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// Merges `new` into `keys`; returns the old keys when anything changed.
fn merge_keys(keys: &mut Keys, new: Keys) -> Option<Keys> {
    if new.iter().all(|(k, v)| keys.get(k) == Some(v)) {
        return None;
    }
    let old = keys.clone();
    keys.extend(new);
    Some(old)
}

/// Replaces a non-empty id; returns the old one when it changed.
fn replace_id(id: &mut String, new: Option<String>) -> Option<String> {
    match new {
        Some(new) if !new.is_empty() && new != *id => Some(std::mem::replace(id, new)),
        _ => None,
    }
}

fn same_metric(a: &CompanyMetric, b: &CompanyMetric) -> bool {
    a.event_subtype == b.event_subtype && a.period == b.period && a.month_reset == b.month_reset
}

impl CompanyPatch {
    /// Reads a patch from the `data` object of a company `partial`
    /// (`null` is the empty patch).
    pub fn from_json(json: &str) -> Result<Self, DecodeError> {
        let patch: Option<Self> =
            decode_payload(json, &EntityType::Company, &MessageType::Partial)?;
        Ok(patch.unwrap_or_default())
    }

    /// Whether no field is present (applying it changes nothing).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Applies the patch to `company` (see the [module docs](self)).
    pub fn apply(&self, company: &mut Company) -> MergeOutcome {
        self.clone().merge_into(company)
    }

    /// [`apply`](Self::apply), moving the patch's data instead of copying it.
    pub fn merge_into(self, company: &mut Company) -> MergeOutcome {
        let mut outcome = MergeOutcome {
            old_id: replace_id(&mut company.id, self.id),
            ..MergeOutcome::default()
        };
        if let Some(keys) = self.keys {
            outcome.old_keys = merge_keys(&mut company.keys, keys);
            outcome.keys_changed = outcome.old_keys.is_some();
        }
        if let Some(v) = self.account_id {
            company.account_id = v;
        }
        if let Some(v) = self.environment_id {
            company.environment_id = v;
        }
        if let Some(v) = self.traits {
            company.traits = v;
        }
        let metrics_sent = self.metrics.is_some();
        for metric in self.metrics.into_iter().flatten() {
            match company.metrics.iter_mut().find(|m| same_metric(m, &metric)) {
                Some(slot) => *slot = metric,
                None => company.metrics.push(metric),
            }
        }
        if let Some(v) = self.plan_ids {
            company.plan_ids = v;
        }
        if let Some(v) = self.plan_version_ids {
            company.plan_version_ids = v;
        }
        if let Some(v) = self.base_plan_id {
            company.base_plan_id = v;
        }
        if let Some(v) = self.billing_product_ids {
            company.billing_product_ids = v;
        }
        let mut credits_sent: Vec<String> = Vec::new();
        for (credit, balance) in self.credit_balances.into_iter().flatten() {
            credits_sent.push(credit.clone());
            company.credit_balances.insert(credit, balance);
        }
        for (credit, lease) in self.credit_lease_balance.into_iter().flatten() {
            if let Some(remaining) = lease.remaining {
                credits_sent.push(credit.clone());
                company.credit_balances.insert(credit, remaining);
            }
        }
        if let Some(v) = self.rules {
            company.rules = v;
        }
        if let Some(v) = self.subscription {
            company.subscription = v;
        }
        if let Some(v) = self.credit_postpaid {
            company.credit_postpaid = v;
        }
        if let Some(v) = self.credit_spend_policies {
            company.credit_spend_policies = v;
        }
        match self.entitlements {
            Some(v) => company.entitlements = v,
            None => sync_entitlements(company, &credits_sent, metrics_sent),
        }
        outcome
    }
}

/// Re-derives entitlement fields from merged balances and metrics.
fn sync_entitlements(company: &mut Company, credits_sent: &[String], metrics_sent: bool) {
    let Company {
        entitlements,
        credit_balances,
        metrics,
        ..
    } = company;
    for entitlement in entitlements.iter_mut() {
        if let Some(credit) = &entitlement.credit_id
            && credits_sent.contains(credit)
            && let Some(balance) = credit_balances.get(credit)
        {
            entitlement.credit_remaining = Some(*balance);
        }
        if metrics_sent && let Some(event) = &entitlement.event_name {
            let period = entitlement
                .metric_period
                .as_ref()
                .unwrap_or(&MetricPeriod::AllTime);
            let reset = entitlement
                .month_reset
                .as_ref()
                .unwrap_or(&MonthReset::FirstOfMonth);
            if let Some(metric) = metrics.iter().find(|m| {
                m.event_subtype == *event && m.period == *period && m.month_reset == *reset
            }) {
                entitlement.usage = Some(metric.value);
            }
        }
    }
}

impl UserPatch {
    /// Reads a patch from the `data` object of a user `partial` (`null` is
    /// the empty patch).
    pub fn from_json(json: &str) -> Result<Self, DecodeError> {
        let patch: Option<Self> = decode_payload(json, &EntityType::User, &MessageType::Partial)?;
        Ok(patch.unwrap_or_default())
    }

    /// Whether no field is present.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Applies the patch to `user`: keys merge, the other fields are replaced.
    pub fn apply(&self, user: &mut User) -> MergeOutcome {
        self.clone().merge_into(user)
    }

    /// [`apply`](Self::apply), moving the patch's data instead of copying it.
    pub fn merge_into(self, user: &mut User) -> MergeOutcome {
        let mut outcome = MergeOutcome {
            old_id: replace_id(&mut user.id, self.id),
            ..MergeOutcome::default()
        };
        if let Some(keys) = self.keys {
            outcome.old_keys = merge_keys(&mut user.keys, keys);
            outcome.keys_changed = outcome.old_keys.is_some();
        }
        if let Some(v) = self.account_id {
            user.account_id = v;
        }
        if let Some(v) = self.environment_id {
            user.environment_id = v;
        }
        if let Some(v) = self.traits {
            user.traits = v;
        }
        if let Some(v) = self.rules {
            user.rules = v;
        }
        if let Some(v) = self.credit_spend_policies {
            user.credit_spend_policies = v;
        }
        outcome
    }
}

/// Counts `quantity` more events of `event_subtype` into every metric of
/// that subtype (any period, any `valid_until`), saturating at the `i64`
/// bounds. Entitlement usage is not re-derived: the server's next update
/// replaces both. Returns whether any metric value changed.
///
/// ```
/// use flagwire_core::datastream::bump_metrics;
/// use flagwire_core::rules::{Company, CompanyMetric, MetricPeriod, MonthReset};
/// let mut company = Company::new("co_1");
/// company.metrics = vec![
///     CompanyMetric::new("api-call", MetricPeriod::AllTime, MonthReset::FirstOfMonth, 10),
///     CompanyMetric::new("api-call", MetricPeriod::CurrentDay, MonthReset::FirstOfMonth, 2),
/// ];
/// assert!(bump_metrics(&mut company, "api-call", 3));
/// assert_eq!([company.metrics[0].value, company.metrics[1].value], [13, 5]);
/// assert!(!bump_metrics(&mut company, "other", 3));
/// ```
pub fn bump_metrics(company: &mut Company, event_subtype: &str, quantity: i64) -> bool {
    let mut changed = false;
    for metric in company
        .metrics
        .iter_mut()
        .filter(|m| m.event_subtype == event_subtype)
    {
        let value = metric.value.saturating_add(quantity);
        changed |= value != metric.value;
        metric.value = value;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(subtype: &str, period: MetricPeriod, value: i64) -> CompanyMetric {
        CompanyMetric::new(subtype, period, MonthReset::FirstOfMonth, value)
    }

    fn company() -> Company {
        let mut co = Company::new("co_1");
        co.keys = [("id".to_owned(), "acme".to_owned())].into();
        co.metrics = vec![
            metric("api-call", MetricPeriod::CurrentMonth, 40),
            metric("api-call", MetricPeriod::AllTime, 400),
        ];
        co.credit_balances = [("cr".to_owned(), 10.0), ("other".to_owned(), 1.0)].into();
        co.plan_ids = vec!["plan_a".into()];
        co.base_plan_id = Some("plan_a".into());
        let mut metered = FeatureEntitlement::new("feat_1", "api", "numeric");
        metered.event_name = Some("api-call".into());
        metered.metric_period = Some(MetricPeriod::CurrentMonth);
        metered.usage = Some(40);
        metered.credit_total = Some(100.0);
        let mut credit = FeatureEntitlement::new("feat_2", "ai", "credit");
        credit.credit_id = Some("cr".into());
        credit.credit_remaining = Some(10.0);
        credit.credit_used = Some(90.0);
        let mut lifetime = FeatureEntitlement::new("feat_3", "lifetime", "numeric");
        lifetime.event_name = Some("api-call".into());
        lifetime.usage = Some(400);
        co.entitlements = vec![metered, credit, lifetime];
        co
    }

    #[test]
    fn absent_null_and_present_fields() {
        let p = CompanyPatch::from_json(
            r#"{"base_plan_id":null,"plan_ids":null,"subscription":null,"keys":null,"extra":[1]}"#,
        )
        .unwrap();
        assert_eq!(p.base_plan_id, Some(None));
        assert_eq!(p.plan_ids, Some(vec![]));
        assert_eq!(p.subscription, Some(None));
        assert_eq!(p.keys, Some(Keys::new()));
        assert_eq!(p.traits, None);
        let mut co = company();
        p.apply(&mut co);
        assert_eq!(co.base_plan_id, None);
        assert!(co.plan_ids.is_empty());
        assert_eq!(co.keys.len(), 1, "a null keys map merges nothing");

        assert!(CompanyPatch::from_json("null").unwrap().is_empty());
        assert!(CompanyPatch::from_json("{}").unwrap().is_empty());
        assert!(UserPatch::from_json("null").unwrap().is_empty());
    }

    #[test]
    fn both_spellings_are_refused() {
        let e = CompanyPatch::from_json(r#"{"plan_ids":[],"planIds":[]}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate field `plan_ids`"), "{e}");
        let e = UserPatch::from_json(r#"{"keys":{},"keys":{}}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate field `keys`"), "{e}");
        let camel = CompanyPatch::from_json(
            r#"{"accountId":"a","basePlanID":"b","creditBalances":{"c":1},"creditLeaseBalance":{"c":{"remaining":2}}}"#,
        )
        .unwrap();
        assert_eq!(camel.account_id.as_deref(), Some("a"));
        assert_eq!(camel.base_plan_id, Some(Some("b".into())));
        assert_eq!(
            camel.credit_lease_balance.unwrap()["c"].remaining,
            Some(2.0)
        );
    }

    #[test]
    fn merge_rules() {
        let mut co = company();
        let patch = CompanyPatch::from_json(
            r#"{"keys":{"slug":"acme-inc"},"credit_balances":{"cr":7.5},
                "metrics":[{"event_subtype":"api-call","period":"current_month","month_reset":"first_of_month","value":41},
                           {"event_subtype":"ai","period":"all_time","month_reset":"first_of_month","value":1}],
                "plan_ids":["plan_b"]}"#,
        )
        .unwrap();
        let outcome = patch.apply(&mut co);
        assert_eq!(co.keys.len(), 2);
        assert!(outcome.keys_changed);
        assert_eq!(outcome.old_keys.as_ref().unwrap().len(), 1);
        assert_eq!(outcome.old_id, None);
        assert_eq!(co.credit_balances["cr"], 7.5);
        assert_eq!(co.credit_balances["other"], 1.0);
        assert_eq!(co.metrics.len(), 3);
        assert_eq!(co.metrics[0].value, 41);
        assert_eq!(co.metrics[1].value, 400);
        assert_eq!(co.metrics[2].event_subtype, "ai");
        assert_eq!(co.plan_ids, ["plan_b"]);
        assert_eq!(co.base_plan_id.as_deref(), Some("plan_a"));
        // Derived entitlement fields.
        assert_eq!(co.entitlements[0].usage, Some(41));
        assert_eq!(co.entitlements[0].credit_total, Some(100.0));
        assert_eq!(co.entitlements[1].credit_remaining, Some(7.5));
        assert_eq!(co.entitlements[1].credit_used, Some(90.0));
        assert_eq!(co.entitlements[2].usage, Some(400));
    }

    #[test]
    fn lease_balances_merge_after_balances() {
        let mut co = company();
        let patch = CompanyPatch::from_json(
            r#"{"credit_balances":{"cr":7.5},"credit_lease_balance":{"cr":{"remaining":6.0,"reserved":1.5},
                "other":{"reserved":3},"new":{"remaining":2}}}"#,
        )
        .unwrap();
        patch.apply(&mut co);
        assert_eq!(co.credit_balances["cr"], 6.0);
        assert_eq!(co.credit_balances["other"], 1.0, "no remaining, no change");
        assert_eq!(co.credit_balances["new"], 2.0);
        assert_eq!(co.entitlements[1].credit_remaining, Some(6.0));
    }

    #[test]
    fn derived_sync_only_for_what_the_patch_carries() {
        let mut co = company();
        co.entitlements[1].credit_remaining = Some(123.0);
        co.entitlements[0].usage = Some(5);
        // Balances of another credit: the `cr` entitlement keeps its value.
        CompanyPatch::from_json(r#"{"credit_balances":{"other":2}}"#)
            .unwrap()
            .apply(&mut co);
        assert_eq!(co.entitlements[1].credit_remaining, Some(123.0));
        assert_eq!(co.entitlements[0].usage, Some(5), "no metrics in the patch");
        // A patch with entitlements replaces them and derives nothing.
        let mut replaced = FeatureEntitlement::new("feat_1", "api", "numeric");
        replaced.event_name = Some("api-call".into());
        replaced.metric_period = Some(MetricPeriod::CurrentMonth);
        replaced.usage = Some(7);
        let patch = CompanyPatch {
            metrics: Some(vec![metric("api-call", MetricPeriod::CurrentMonth, 99)]),
            entitlements: Some(vec![replaced.clone()]),
            ..CompanyPatch::default()
        };
        patch.apply(&mut co);
        assert_eq!(co.entitlements, [replaced]);
    }

    #[test]
    fn id_replacement_is_reported_and_empty_ids_are_not_applied() {
        let mut co = company();
        let outcome = CompanyPatch::from_json(r#"{"id":""}"#)
            .unwrap()
            .apply(&mut co);
        assert_eq!((co.id.as_str(), outcome.old_id), ("co_1", None));
        let outcome = CompanyPatch::from_json(r#"{"id":null}"#)
            .unwrap()
            .apply(&mut co);
        assert_eq!((co.id.as_str(), outcome.old_id), ("co_1", None));
        let outcome = CompanyPatch::from_json(r#"{"id":"co_2"}"#)
            .unwrap()
            .apply(&mut co);
        assert_eq!(
            (co.id.as_str(), outcome.old_id.as_deref()),
            ("co_2", Some("co_1"))
        );
    }

    #[test]
    fn changed_key_values_are_stale_lookups() {
        let mut co = company();
        let outcome = CompanyPatch::from_json(r#"{"keys":{"id":"acme-2"}}"#)
            .unwrap()
            .apply(&mut co);
        assert!(outcome.keys_changed);
        let stale: Vec<_> = outcome.stale_lookups(&co.keys).collect();
        assert_eq!(stale, [("id", "acme")]);
        let outcome = CompanyPatch::from_json(r#"{"keys":{"id":"acme-2"}}"#)
            .unwrap()
            .apply(&mut co);
        assert_eq!(outcome, MergeOutcome::default(), "nothing changed");
    }

    #[test]
    fn user_patch() {
        let mut user = User::new("u_1");
        user.keys = [("email".to_owned(), "a@b.c".to_owned())].into();
        let patch = UserPatch::from_json(
            r#"{"keys":{"id":"u-ext"},"traits":[],"rules":null,"creditSpendPolicies":[{"id":"p","credit_id":"cr","kind":"window","scope":"user","limit":1}],
                "metrics":[{"event_subtype":"x"}]}"#,
        )
        .unwrap();
        let outcome = patch.apply(&mut user);
        assert!(outcome.keys_changed);
        assert_eq!(user.keys.len(), 2);
        assert_eq!(user.credit_spend_policies.len(), 1);
        assert_eq!(user.id, "u_1");
    }

    #[test]
    fn patches_serialize_present_fields_only() {
        let patch = CompanyPatch::from_json(
            r#"{"base_plan_id":null,"creditBalances":{"cr":1.5},"credit_lease_balance":{"cr":{"remaining":1}}}"#,
        )
        .unwrap();
        let json = serde_json::to_value(&patch).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"base_plan_id":null,"credit_balances":{"cr":1.5},
                "credit_lease_balance":{"cr":{"remaining":1.0}}})
        );
        let back = CompanyPatch::from_json(&json.to_string()).unwrap();
        assert_eq!(back, patch);
    }

    #[test]
    fn bump_saturates_and_reports_changes() {
        let mut co = company();
        assert!(bump_metrics(&mut co, "api-call", 1));
        assert_eq!((co.metrics[0].value, co.metrics[1].value), (41, 401));
        assert_eq!(
            co.entitlements[0].usage,
            Some(40),
            "usage is not re-derived"
        );
        assert!(!bump_metrics(&mut co, "api-call", 0));
        assert!(bump_metrics(&mut co, "api-call", i64::MAX));
        assert_eq!(co.metrics[0].value, i64::MAX);
        assert_eq!(co.metrics[1].value, i64::MAX);
        assert!(
            !bump_metrics(&mut co, "api-call", i64::MAX),
            "already saturated"
        );
        assert!(bump_metrics(&mut co, "api-call", i64::MIN));
        assert_eq!(co.metrics[0].value, -1);
        assert!(!bump_metrics(&mut co, "nothing", 5));
    }
}
