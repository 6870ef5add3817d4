//! The native flag rules engine: evaluates Schematic flags locally, with no
//! network call, no allocation and no string formatting on the hot path.
//!
//! # Overview
//!
//! 1. **Load** flags (from the platform JSON or built in code) into a
//!    [`RulesEngine`]. Loading compiles every flag once: rules are put in
//!    evaluation order, configuration strings (plan ids, trait definition
//!    ids, event subtypes, credit ids) are interned into small integers in a
//!    process-wide, append-only table, and literal values are parsed as int,
//!    bool and date.
//! 2. **Prepare** each company and user once per update with
//!    [`PreparedCompany::new`] / [`PreparedUser::new`] (strings interned,
//!    traits indexed and parsed, company and user rules compiled). Prepared
//!    subjects do not depend on an engine: they stay valid when flags change.
//! 3. **Check** with [`RulesEngine::check`] (or [`RulesEngine::check_with`]
//!    for preflight usage). The clock is an argument, so results are
//!    reproducible. The returned [`Evaluation`] borrows from the engine and
//!    the subjects; its [`Reason`] formats lazily with the platform wording.
//!
//! ```
//! use flagwire_core::rules::{PreparedCompany, RulesEngine};
//! use time::macros::datetime;
//!
//! let flags = r#"[{
//!     "id": "flag_1", "key": "beta-dashboard", "defaultValue": false,
//!     "rules": [{
//!         "id": "rule_1", "name": "Pro plan", "rule_type": "standard", "priority": 1,
//!         "value": true,
//!         "conditions": [{
//!             "condition_type": "plan", "operator": "eq", "resource_ids": ["plan_pro"]
//!         }],
//!         "condition_groups": null
//!     }]
//! }]"#;
//! let engine = RulesEngine::from_json(flags)?;
//! let acme = PreparedCompany::from_json(r#"{"id": "co_1", "planIds": ["plan_pro"]}"#)?;
//!
//! let now = datetime!(2024-03-05 12:00 UTC);
//! let eval = engine.check("beta-dashboard", Some(&acme), None, now);
//! assert!(eval.value);
//! assert_eq!(eval.rule_id, Some("rule_1"));
//! assert_eq!(eval.reason.to_string(), r#"Matched standard rule "Pro plan" (rule_1)"#);
//!
//! let missing = engine.check("no-such-flag", Some(&acme), None, now);
//! assert_eq!(missing.reason.to_string(), "Flag not found");
//! # Ok::<(), flagwire_core::rules::RulesError>(())
//! ```
//!
//! # Semantics
//!
//! * **Rule order.** Rules are tried by type: `global_override`,
//!   `company_override`, `plan_entitlement`, `company_override_usage_exceeded`,
//!   `plan_entitlement_usage_exceeded`, `standard`, `default`. Within the
//!   override and entitlement types, rules whose value is `true` go first
//!   ("optimistic"); `standard` rules go by ascending `priority`. Remaining
//!   ties keep input order: the flag's rules, then the company's, then the
//!   user's (company and user rules apply only to the flag named by their
//!   `flag_id`). Rules of an unknown type are never tried. The first
//!   matching rule sets the value and reason; otherwise the flag default
//!   applies with reason `No rules matched; default value for flag`.
//! * **Matching.** `default` and `global_override` rules always match.
//!   Other rules need every condition to match (AND) and, in each condition
//!   group, at least one condition (OR within a group, AND across groups).
//!   A rule with no conditions and no groups matches.
//! * **Id conditions.** `company` / `user`: the entity id is in
//!   `resource_ids`; `plan`, `plan_version`, `billing_product`: the company's
//!   set intersects `resource_ids`. Operator `ne` negates; every other
//!   operator means membership. `base_plan`: `eq` (in the set), `ne` (absent
//!   or not in the set), `is_empty` / `not_empty` (presence); other operators
//!   never match. A missing company or user never matches, whatever the
//!   operator.
//! * **Metric conditions** compare, as i64, the company metric for
//!   `(event_subtype, metric_period, month_reset)` (0 if absent, or if the
//!   metric's `valid_until` is at or before `now`) plus preflight usage
//!   (the event usage when its subtype matches, otherwise the generic usage)
//!   with `metric_value`, or with the company trait named by
//!   `comparison_trait_definition` (0 when missing). A metric condition
//!   without `event_subtype` or `metric_value` never matches.
//! * **Trait conditions** read the trait from the company or user (per the
//!   definition's `entity_type`; an unknown entity type never matches). A
//!   missing trait reads as `""`. The right side is `trait_value`, or the
//!   value of the comparison trait (`""` when missing). Values compare as
//!   the trait's `comparable_type` (the stored trait's definition wins; an
//!   unknown type never matches): `string` byte-wise; `int` as i64 (0 when
//!   unparsable; generic preflight usage is added to the left side;
//!   `is_empty` is `== 0`, `not_empty` is `> 0`); `bool` (`"true"` only;
//!   `is_empty` is always false, `not_empty` always true, ordering operators
//!   never match); `date` in the layouts listed in [`date`](self#dates), a
//!   non-date sorting before every date.
//! * **Credit conditions** match when the balance of `credit_id` (0 when
//!   absent) is at least: the caller's `credit_cost` for that credit; else,
//!   for a condition with `quantity_rates`, the caller's
//!   [`event_quantities`](CheckOptions::event_quantities) priced by those
//!   rates when the condition's `event_subtype` matches; else the event
//!   usage quantity × `consumption_rate` when the condition's
//!   `event_subtype` matches; else the generic usage × rate; else the rate
//!   (default 1).
//! * **Refused preflight.** A negative usage, event usage or event quantity,
//!   or a negative credit cost, is not evaluated: the check returns the flag
//!   default with the no-match reason, the entitlement attached, and
//!   [`Evaluation::err`] set to the platform's wording ([`PreflightError`]).
//! * **Carried, not evaluated.** Credit postpaid settings, credit spend
//!   policies and entitlement warning tiers load, merge and serialize, but
//!   never change a verdict: their semantics are undocumented.
//! * **Unknown values.** Unknown condition types, operators and comparable
//!   types deserialize fine (as `Other`) and simply never match.
//! * **Entitlements.** The company entitlement whose `feature_key` is the
//!   flag key is attached to every evaluation. When an entitlement-type rule
//!   matches, the first metric or trait condition of the rule reports usage,
//!   allocation and, for metrics, the period and next reset
//!   ([`period::next_period_start`]).
//!
//! # Dates
//!
//! `date` traits accept `2024-03-05`, `2024-03-05 14:30:00 PST`, RFC 3339
//! (`2024-03-05T14:30:00.123Z`, `…-08:00`), and the JavaScript forms
//! `Tue Mar 05 2024`, `Tue Mar 05 2024 14:30:00 GMT-0800 (Pacific Standard
//! Time)`, `Tue Mar 05 2024 14:30:00 PST` and `Tue Mar 05 2024 14:30:00
//! GMT-0800`. Zone abbreviations carry no offset and read as UTC.
//!
//! # JSON
//!
//! The model types in [`model`] accept snake_case and camelCase field
//! names, treat `null` collections as empty and tolerate unknown fields.

mod compile;
mod date;
mod eval;
mod hash;
mod intern;
pub mod model;
pub mod period;

use std::fmt;

pub use compile::{EntitlementRef, PreparedCompany, PreparedUser};
pub use eval::{
    CheckFlagResult, CheckOptions, CompiledFlag, Evaluation, FeatureUsage, PreflightError, Reason,
    RulesEngine,
};
pub use model::{
    Company, CompanyMetric, ComparableType, Condition, ConditionGroup, ConditionType,
    CreditPostpaidConfig, CreditSpendPolicy, CreditSpendWindow, EntityType, FeatureEntitlement,
    Flag, MetricPeriod, MonthReset, Operator, Rule, RuleType, SpendPolicyScope, Subscription,
    Trait, TraitDefinition, User, WarningTier,
};

/// The version segment of the cache keys under which flagwire stores flags,
/// companies and users as JSON (`schematic:flags:<version>:<key>`, see
/// [`crate::datastream::CacheKeys`]).
///
/// It names the JSON layout flagwire writes (the [`model`] types'
/// serialization) and changes only when that layout changes, so entries
/// written by an older, incompatible flagwire are never read back.
///
/// The official SDKs use the version key of their WASM engine build instead
/// (a hash of its model layout, different for every engine generation), so
/// they and flagwire never share direct-mode cache entries, and two SDK
/// versions do not share them with each other either. To share one Redis
/// with other SDKs, configure the same version everywhere; in replicator
/// mode use the `cache_version` the replicator reports on `/ready`, which is
/// the version it writes under.
pub const ENGINE_VERSION_KEY: &str = "fw1";

/// Parses a date in one of the layouts accepted by `date` traits
/// (see [the module docs](self#dates)). Returns `None` for anything else.
///
/// ```
/// use flagwire_core::rules::parse_date;
/// assert!(parse_date("2024-03-05").is_some());
/// assert!(parse_date("Tue Mar 05 2024 14:30:00 GMT-0800 (Pacific Standard Time)").is_some());
/// assert!(parse_date("next tuesday").is_none());
/// ```
pub fn parse_date(text: &str) -> Option<time::OffsetDateTime> {
    date::parse_date(text)
}

/// An error loading rules-engine data.
#[derive(Debug)]
#[non_exhaustive]
pub enum RulesError {
    /// The JSON did not match the rules-engine model.
    Json(serde_json::Error),
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(e) => write!(f, "invalid rules-engine JSON: {e}"),
        }
    }
}

impl std::error::Error for RulesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Json(e) => Some(e),
        }
    }
}

impl From<serde_json::Error> for RulesError {
    fn from(e: serde_json::Error) -> Self {
        Self::Json(e)
    }
}
