//! Request bodies of the emulated Schematic operations, with their documented
//! constraints. Field names follow the platform's snake_case wire format.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::util::ApiFailure;

/// Entity keys: key name to key value.
pub(crate) type Keys = BTreeMap<String, String>;

fn too_long(field: &str, max: usize) -> ApiFailure {
    ApiFailure::bad_request(format!("{field} must be at most {max} characters"))
}

pub(crate) fn check_len(field: &str, value: &str, max: usize) -> Result<(), ApiFailure> {
    if value.chars().count() > max {
        Err(too_long(field, max))
    } else {
        Ok(())
    }
}

pub(crate) fn check_opt_len(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<(), ApiFailure> {
    value.map_or(Ok(()), |v| check_len(field, v, max))
}

pub(crate) fn check_items<T>(field: &str, items: &[T], max: usize) -> Result<(), ApiFailure> {
    if items.len() > max {
        Err(ApiFailure::bad_request(format!(
            "{field} accepts at most {max} items"
        )))
    } else {
        Ok(())
    }
}

pub(crate) fn check_keys(field: &str, keys: &Keys) -> Result<(), ApiFailure> {
    if keys.len() > 100 {
        return Err(ApiFailure::bad_request(format!(
            "{field} accepts at most 100 keys"
        )));
    }
    for (k, v) in keys {
        if k.is_empty() {
            return Err(ApiFailure::bad_request(format!(
                "{field} must not contain an empty key name"
            )));
        }
        check_len(field, v, 255)?;
    }
    Ok(())
}

pub(crate) fn check_enum(field: &str, value: &str, allowed: &[&str]) -> Result<(), ApiFailure> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiFailure::bad_request(format!(
            "{field} must be one of: {}",
            allowed.join(", ")
        )))
    }
}

pub(crate) const FLAG_TYPES: &[&str] = &["boolean"];
pub(crate) const FEATURE_TYPES: &[&str] = &["boolean", "event", "license", "trait"];
pub(crate) const RULE_TYPES: &[&str] = &[
    "company_override",
    "company_override_usage_exceeded",
    "default",
    "global_override",
    "plan_entitlement",
    "plan_entitlement_usage_exceeded",
    "standard",
];
pub(crate) const CONDITION_TYPES: &[&str] = &[
    "base_plan",
    "billing_product",
    "company",
    "credit",
    "metric",
    "plan",
    "plan_version",
    "trait",
    "user",
];
pub(crate) const OPERATORS: &[&str] = &[
    "eq",
    "gt",
    "gte",
    "is_empty",
    "lt",
    "lte",
    "not_empty",
    "ne",
];
pub(crate) const METRIC_PERIODS: &[&str] =
    &["all_time", "current_day", "current_month", "current_week"];
pub(crate) const MONTH_RESETS: &[&str] = &["billing_cycle", "first_of_month"];
pub(crate) const ENTITY_TYPES: &[&str] = &["company", "user"];
pub(crate) const TRAIT_TYPES: &[&str] = &["boolean", "currency", "date", "number", "string", "url"];
pub(crate) const EVENT_TYPES: &[&str] = &["flag_check", "identify", "inference", "track"];
pub(crate) const WEBHOOK_STATUSES: &[&str] = &["active", "inactive"];
pub(crate) const WEBHOOK_REQUEST_TYPES: &[&str] = &[
    "subscription.trial.ended",
    "company.created",
    "company.deleted",
    "company.override.created",
    "company.override.deleted",
    "company.override.expired",
    "company.override.updated",
    "company.plan_changed",
    "company.scheduled_downgrade",
    "company.updated",
    "credit.limit.reached",
    "credit.limit.warning",
    "credit.purchase.success",
    "entitlement.limit.reached",
    "entitlement.limit.warning",
    "entitlement.soft_limit.reached",
    "entitlement.soft_limit.warning",
    "entitlement.tier_limit.reached",
    "entitlement.tier_limit.warning",
    "feature.created",
    "feature.deleted",
    "feature.updated",
    "flag.created",
    "flag.deleted",
    "flag_rules.updated",
    "flag.updated",
    "plan.created",
    "plan.deleted",
    "plan.entitlement.created",
    "plan.entitlement.deleted",
    "plan.entitlement.updated",
    "plan.updated",
    "plan_version.deleted",
    "rule.deleted",
    "test.send",
    "user.created",
    "user.deleted",
    "user.updated",
    "auto.topup.hard.failure",
    "auto.topup.retry.exceeded",
    "auto.topup.success",
];

/// `UpsertCompanyRequestBody`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct UpsertCompany {
    pub(crate) keys: Keys,
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) traits: Option<Map<String, Value>>,
    pub(crate) last_seen_at: Option<String>,
    pub(crate) update_only: Option<bool>,
    pub(crate) prevent_key_remap: Option<bool>,
    pub(crate) remove_keys: Option<Vec<String>>,
    /// Accepted for compatibility; plans are not emulated.
    #[allow(dead_code)]
    pub(crate) base_plan_id: Option<String>,
    /// Accepted for compatibility; plans are not emulated.
    #[allow(dead_code)]
    pub(crate) base_plan_price_id: Option<String>,
}

impl UpsertCompany {
    pub(crate) fn validate(&self) -> Result<(), ApiFailure> {
        check_keys("keys", &self.keys)?;
        check_opt_len("name", self.name.as_deref(), 256)?;
        check_items(
            "remove_keys",
            self.remove_keys.as_deref().unwrap_or(&[]),
            100,
        )?;
        if let Some(ts) = &self.last_seen_at
            && crate::util::parse_ts(ts).is_none()
        {
            return Err(ApiFailure::bad_request(
                "last_seen_at must be an RFC 3339 date-time",
            ));
        }
        if self.keys.is_empty() && self.id.is_none() {
            return Err(ApiFailure::bad_request("keys must not be empty"));
        }
        Ok(())
    }
}

/// `UpsertUserRequestBody`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct UpsertUser {
    pub(crate) keys: Keys,
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) traits: Option<Map<String, Value>>,
    pub(crate) last_seen_at: Option<String>,
    pub(crate) update_only: Option<bool>,
    pub(crate) remove_keys: Option<Vec<String>>,
    pub(crate) company: Option<Keys>,
    pub(crate) companies: Option<Vec<Keys>>,
    pub(crate) company_id: Option<String>,
    pub(crate) company_ids: Option<Vec<String>>,
}

impl UpsertUser {
    pub(crate) fn validate(&self) -> Result<(), ApiFailure> {
        check_keys("keys", &self.keys)?;
        check_opt_len("name", self.name.as_deref(), 255)?;
        check_items(
            "remove_keys",
            self.remove_keys.as_deref().unwrap_or(&[]),
            100,
        )?;
        check_items("companies", self.companies.as_deref().unwrap_or(&[]), 100)?;
        check_items(
            "company_ids",
            self.company_ids.as_deref().unwrap_or(&[]),
            100,
        )?;
        if let Some(c) = &self.company {
            check_keys("company", c)?;
        }
        for c in self.companies.iter().flatten() {
            check_keys("companies", c)?;
        }
        if let Some(ts) = &self.last_seen_at
            && crate::util::parse_ts(ts).is_none()
        {
            return Err(ApiFailure::bad_request(
                "last_seen_at must be an RFC 3339 date-time",
            ));
        }
        if self.keys.is_empty() && self.id.is_none() {
            return Err(ApiFailure::bad_request("keys must not be empty"));
        }
        Ok(())
    }
}

/// `KeysRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct KeysBody {
    pub(crate) keys: Keys,
}

/// `UpsertTraitRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct UpsertTrait {
    pub(crate) keys: Keys,
    #[serde(rename = "trait")]
    pub(crate) trait_name: String,
    pub(crate) set: Option<String>,
    pub(crate) incr: Option<i64>,
    pub(crate) update_only: Option<bool>,
}

impl UpsertTrait {
    pub(crate) fn validate(&self) -> Result<(), ApiFailure> {
        check_keys("keys", &self.keys)?;
        if self.keys.is_empty() {
            return Err(ApiFailure::bad_request("keys must not be empty"));
        }
        if self.trait_name.is_empty() {
            return Err(ApiFailure::bad_request("trait must not be empty"));
        }
        check_len("trait", &self.trait_name, 255)?;
        check_opt_len("set", self.set.as_deref(), 1024)?;
        match (&self.set, &self.incr) {
            (None, None) => Err(ApiFailure::bad_request("one of set or incr is required")),
            (Some(_), Some(_)) => Err(ApiFailure::bad_request(
                "set and incr cannot be used together",
            )),
            _ => Ok(()),
        }
    }
}

/// `CreateFlagRequestBody` (also the body of `PUT /flags/{flag_id}`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateFlag {
    pub(crate) default_value: bool,
    pub(crate) description: String,
    pub(crate) feature_id: Option<String>,
    pub(crate) flag_type: String,
    pub(crate) key: String,
    pub(crate) maintainer_account_member_id: Option<String>,
    pub(crate) name: String,
    /// Only used by seed files: rules to install with the flag.
    #[serde(default)]
    pub(crate) rules: Option<Vec<RuleBody>>,
    /// `CreateOrUpdateFlagRequestBody` carries an optional ID.
    #[serde(default)]
    pub(crate) id: Option<String>,
}

impl CreateFlag {
    pub(crate) fn validate(&self) -> Result<(), ApiFailure> {
        if self.key.is_empty() {
            return Err(ApiFailure::bad_request("key must not be empty"));
        }
        check_len("key", &self.key, 512)?;
        check_len("name", &self.name, 512)?;
        check_len("description", &self.description, 1024)?;
        check_enum("flag_type", &self.flag_type, FLAG_TYPES)?;
        if let Some(rules) = &self.rules {
            check_items("rules", rules, 100)?;
            for r in rules {
                r.validate()?;
            }
        }
        Ok(())
    }
}

/// `CreateFeatureRequestBody` and `UpdateFeatureRequestBody` (all optional).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct FeatureBody {
    pub(crate) description: Option<String>,
    pub(crate) event_subtype: Option<String>,
    pub(crate) feature_type: Option<String>,
    pub(crate) flag: Option<CreateFlag>,
    pub(crate) icon: Option<String>,
    pub(crate) lifecycle_phase: Option<String>,
    pub(crate) maintainer_account_member_id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) plural_name: Option<String>,
    pub(crate) singular_name: Option<String>,
    pub(crate) trait_id: Option<String>,
}

impl FeatureBody {
    pub(crate) fn validate(&self, create: bool) -> Result<(), ApiFailure> {
        if create {
            if self.name.is_none() {
                return Err(ApiFailure::bad_request("name is required"));
            }
            if self.description.is_none() {
                return Err(ApiFailure::bad_request("description is required"));
            }
            if self.feature_type.is_none() {
                return Err(ApiFailure::bad_request("feature_type is required"));
            }
        }
        check_opt_len("name", self.name.as_deref(), 512)?;
        check_opt_len("description", self.description.as_deref(), 1024)?;
        if let Some(t) = &self.feature_type {
            check_enum("feature_type", t, FEATURE_TYPES)?;
        }
        if let Some(flag) = &self.flag {
            flag.validate()?;
        }
        Ok(())
    }
}

/// `UpdateFlagRulesRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct UpdateRules {
    pub(crate) rules: Vec<RuleBody>,
}

/// `CreateOrUpdateRuleRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RuleBody {
    #[serde(default)]
    pub(crate) condition_groups: Vec<GroupBody>,
    #[serde(default)]
    pub(crate) conditions: Vec<ConditionBody>,
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    pub(crate) priority: i64,
    pub(crate) rule_type: Option<String>,
    pub(crate) value: bool,
}

impl RuleBody {
    pub(crate) fn validate(&self) -> Result<(), ApiFailure> {
        check_len("name", &self.name, 512)?;
        check_items("conditions", &self.conditions, 100)?;
        check_items("condition_groups", &self.condition_groups, 100)?;
        if let Some(t) = &self.rule_type {
            check_enum("rule_type", t, RULE_TYPES)?;
        }
        for c in &self.conditions {
            c.validate()?;
        }
        for g in &self.condition_groups {
            check_items("conditions", &g.conditions, 100)?;
            for c in &g.conditions {
                c.validate()?;
            }
        }
        Ok(())
    }
}

/// `CreateOrUpdateConditionGroupRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GroupBody {
    pub(crate) conditions: Vec<ConditionBody>,
    /// Accepted; groups always belong to the rule's flag.
    #[allow(dead_code)]
    pub(crate) flag_id: Option<String>,
    pub(crate) id: Option<String>,
}

/// `CreateOrUpdateConditionRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ConditionBody {
    pub(crate) comparison_trait_id: Option<String>,
    pub(crate) condition_type: String,
    pub(crate) credit_cost: Option<f64>,
    pub(crate) credit_id: Option<String>,
    pub(crate) event_subtype: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) metric_period: Option<String>,
    pub(crate) metric_period_month_reset: Option<String>,
    pub(crate) metric_value: Option<i64>,
    pub(crate) operator: String,
    #[serde(default)]
    pub(crate) resource_ids: Vec<String>,
    pub(crate) trait_id: Option<String>,
    pub(crate) trait_value: Option<String>,
}

impl ConditionBody {
    pub(crate) fn validate(&self) -> Result<(), ApiFailure> {
        check_enum("condition_type", &self.condition_type, CONDITION_TYPES)?;
        check_enum("operator", &self.operator, OPERATORS)?;
        check_items("resource_ids", &self.resource_ids, 1000)?;
        if let Some(p) = &self.metric_period {
            check_enum("metric_period", p, METRIC_PERIODS)?;
        }
        if let Some(r) = &self.metric_period_month_reset {
            check_enum("metric_period_month_reset", r, MONTH_RESETS)?;
        }
        match self.condition_type.as_str() {
            "metric" if self.event_subtype.is_none() => Err(ApiFailure::bad_request(
                "metric conditions require event_subtype",
            )),
            "trait" if self.trait_id.is_none() => {
                Err(ApiFailure::bad_request("trait conditions require trait_id"))
            }
            "credit" if self.credit_id.is_none() => Err(ApiFailure::bad_request(
                "credit conditions require credit_id",
            )),
            _ => Ok(()),
        }
    }
}

/// `CheckFlagRequestBody`, used as generated.
pub(crate) type CheckBody = flagwire_core::schematic::models::CheckFlagRequestBody;

/// `CheckFlagsBulkRequestBody`, used as generated.
pub(crate) type CheckBulk = flagwire_core::schematic::models::CheckFlagsBulkRequestBody;

/// The documented limits of a check context.
pub(crate) fn validate_check(body: &CheckBody) -> Result<(), ApiFailure> {
    if let Some(c) = body.company.value() {
        check_keys("company", c)?;
    }
    if let Some(u) = body.user.value() {
        check_keys("user", u)?;
    }
    if let Some(p) = &body.preflight {
        for v in p.credit_cost.iter().flat_map(|m| m.values()) {
            if !(v.is_finite() && *v >= 0.0) {
                return Err(ApiFailure::bad_request(
                    "preflight.credit_cost values must be non-negative numbers",
                ));
            }
        }
    }
    Ok(())
}

/// `CreateEventRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateEvent {
    pub(crate) event_type: String,
    pub(crate) body: Option<Value>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) sent_at: Option<String>,
    pub(crate) trusted_client_clock: Option<bool>,
    pub(crate) backfill: Option<bool>,
}

/// `CreateEventBatchRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateEventBatch {
    pub(crate) events: Vec<CreateEvent>,
}

/// One element of the capture host's `{"events": [...]}` batch.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CaptureEvent {
    pub(crate) api_key: Option<String>,
    #[serde(rename = "type")]
    pub(crate) event_type: String,
    pub(crate) body: Option<Value>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) sent_at: Option<String>,
    pub(crate) trusted_client_clock: Option<bool>,
    pub(crate) backfill: Option<bool>,
}

/// The capture host's batch envelope.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CaptureBatch {
    pub(crate) events: Vec<CaptureEvent>,
}

/// `EventBodyTrack`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TrackBody {
    pub(crate) event: String,
    pub(crate) company: Option<Keys>,
    pub(crate) user: Option<Keys>,
    pub(crate) quantity: Option<i64>,
    /// Stored with the event; track events do not change traits.
    #[allow(dead_code)]
    pub(crate) traits: Option<Map<String, Value>>,
}

/// `EventBodyIdentify`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IdentifyBody {
    pub(crate) keys: Keys,
    pub(crate) name: Option<String>,
    pub(crate) traits: Option<Map<String, Value>>,
    pub(crate) company: Option<IdentifyCompany>,
}

/// `EventBodyIdentify.company`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IdentifyCompany {
    pub(crate) keys: Keys,
    pub(crate) name: Option<String>,
    pub(crate) traits: Option<Map<String, Value>>,
}

/// `CreateWebhookRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateWebhook {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) request_types: Vec<String>,
    pub(crate) credit_trigger_configs: Option<Value>,
    pub(crate) entitlement_trigger_configs: Option<Value>,
}

/// `UpdateWebhookRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct UpdateWebhook {
    pub(crate) name: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) request_types: Option<Vec<String>>,
    pub(crate) status: Option<String>,
    pub(crate) credit_trigger_configs: Option<Value>,
    pub(crate) entitlement_trigger_configs: Option<Value>,
}

pub(crate) fn validate_webhook_fields(
    name: Option<&str>,
    url: Option<&str>,
    request_types: Option<&[String]>,
    status: Option<&str>,
) -> Result<(), ApiFailure> {
    if let Some(name) = name {
        if name.is_empty() {
            return Err(ApiFailure::bad_request("name must not be empty"));
        }
        check_len("name", name, 256)?;
    }
    if let Some(url) = url {
        check_len("url", url, 2048)?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ApiFailure::bad_request("url must be an http(s) URL"));
        }
    }
    if let Some(types) = request_types {
        check_items("request_types", types, 50)?;
        for t in types {
            check_enum("request_types", t, WEBHOOK_REQUEST_TYPES)?;
        }
    }
    if let Some(s) = status {
        check_enum("status", s, WEBHOOK_STATUSES)?;
    }
    Ok(())
}

/// `TestWebhookRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TestWebhook {
    pub(crate) request_type: String,
}

/// `CreateEntityTraitDefinitionRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CreateTraitDefinition {
    pub(crate) display_name: Option<String>,
    pub(crate) entity_type: String,
    pub(crate) hierarchy: Vec<String>,
    pub(crate) trait_type: String,
}

/// `GetOrCreateCompanyMembershipRequestBody`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MembershipBody {
    pub(crate) company_id: String,
    pub(crate) user_id: String,
}
