//! The engine: compiled flags, the check itself and its result.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::RulesError;
use super::compile::{
    BasePlanCond, CompiledRule, CondSet, CreditCond, EntitlementRef, Entity, EntityIdCond,
    MetricCond, Op, PreparedCompany, PreparedTrait, PreparedUser, SetCond, TraitCond, UsageSpec,
    compare_int, compare_values,
};
use super::hash::{BuildStrHasher, str_eq};
use super::intern::{Sym, intern};
use super::model::{FeatureEntitlement, Flag, MetricPeriod, RuleType};
use super::period::next_period_start;

/// Preflight inputs of a check: usage the caller is about to add, so a
/// limit is checked as if it had already been consumed.
///
/// Everything is borrowed, so building options allocates nothing.
///
/// ```
/// use flagwire_core::rules::CheckOptions;
/// let costs = [("credit_ai", 2.5)];
/// let tokens = [("input_tokens", 1200.0), ("output_tokens", 300.0)];
/// let options = CheckOptions::new()
///     .usage(3)
///     .event_usage("ai-call", 2)
///     .event_quantities("ai-call", &tokens)
///     .credit_cost(&costs);
/// assert_eq!(options.usage_quantity(), Some(3));
/// assert!(options.validate().is_ok());
/// assert!(CheckOptions::new().usage(-1).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CheckOptions<'o> {
    usage: Option<i64>,
    event_usage: Option<(&'o str, i64)>,
    event_quantities: Option<(&'o str, &'o [(&'o str, f64)])>,
    credit_cost: &'o [(&'o str, f64)],
}

impl<'o> CheckOptions<'o> {
    /// No preflight usage.
    pub const fn new() -> Self {
        Self {
            usage: None,
            event_usage: None,
            event_quantities: None,
            credit_cost: &[],
        }
    }

    /// Generic usage: added to metric values (when no matching event usage
    /// is given), to `int` trait values, and multiplied by the consumption
    /// rate in credit conditions. Zero has no effect; a negative quantity
    /// makes the check return the flag default with
    /// [`PreflightError::NegativeUsage`] in [`Evaluation::err`].
    #[must_use]
    pub const fn usage(mut self, quantity: i64) -> Self {
        self.usage = Some(quantity);
        self
    }

    /// Usage of one event subtype: added to metrics of that subtype and
    /// multiplied by the consumption rate in credit conditions for it.
    /// Negative quantities are refused like negative [`usage`](Self::usage).
    #[must_use]
    pub const fn event_usage(mut self, event_subtype: &'o str, quantity: i64) -> Self {
        self.event_usage = Some((event_subtype, quantity));
        self
    }

    /// Named quantities of one event (for example `input_tokens` and
    /// `output_tokens` of an `ai-call`), priced by the `quantity_rates` of
    /// credit conditions.
    ///
    /// A credit condition whose `event_subtype` is `event_subtype` and whose
    /// `quantity_rates` is not empty costs
    /// `sum(quantities[name] × quantity_rates[name])` over its rates (a
    /// name missing from `quantities` counts 0; of repeated names the first
    /// counts). That cost replaces the usage × `consumption_rate` cost for
    /// the condition; an explicit [`credit_cost`](Self::credit_cost) for the
    /// credit still wins. Metric conditions ignore these quantities. These
    /// semantics are inferred from the platform's newer engine, which
    /// accepts the same input but does not document it. A negative quantity
    /// is refused like negative [`usage`](Self::usage).
    #[must_use]
    pub const fn event_quantities(
        mut self,
        event_subtype: &'o str,
        quantities: &'o [(&'o str, f64)],
    ) -> Self {
        self.event_quantities = Some((event_subtype, quantities));
        self
    }

    /// Exact credit costs by credit id; they take precedence over every
    /// other credit computation. A negative cost makes the check return the
    /// flag default with [`PreflightError::NegativeCreditCost`].
    #[must_use]
    pub const fn credit_cost(mut self, costs: &'o [(&'o str, f64)]) -> Self {
        self.credit_cost = costs;
        self
    }

    /// The generic usage quantity, if set.
    pub const fn usage_quantity(&self) -> Option<i64> {
        self.usage
    }

    /// Checks the quantities the platform refuses: negative usage, event
    /// usage or event quantities first, then negative credit costs.
    /// [`RulesEngine::check_with`] runs this before evaluating.
    pub fn validate(&self) -> Result<(), PreflightError> {
        let negative_usage = self.usage.is_some_and(|q| q < 0)
            || self.event_usage.is_some_and(|(_, q)| q < 0)
            || self
                .event_quantities
                .is_some_and(|(_, qs)| qs.iter().any(|(_, q)| *q < 0.0));
        if negative_usage {
            return Err(PreflightError::NegativeUsage);
        }
        if self.credit_cost.iter().any(|(_, cost)| *cost < 0.0) {
            return Err(PreflightError::NegativeCreditCost);
        }
        Ok(())
    }

    #[inline]
    fn positive_usage(&self) -> i64 {
        match self.usage {
            Some(q) if q > 0 => q,
            _ => 0,
        }
    }

    #[inline]
    fn event_quantity(&self, subtype: &str) -> Option<i64> {
        match self.event_usage {
            Some((s, q)) if q > 0 && str_eq(s, subtype) => Some(q),
            _ => None,
        }
    }

    /// The named quantities when they belong to `subtype`.
    #[inline]
    fn quantities_for(&self, subtype: &str) -> Option<&'o [(&'o str, f64)]> {
        match self.event_quantities {
            Some((s, qs)) if str_eq(s, subtype) => Some(qs),
            _ => None,
        }
    }
}

/// Preflight input the platform refuses. A check given such input returns
/// the flag default with the reason "No rules matched; default value for
/// flag", and [`Evaluation::err`] set to [`PreflightError::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PreflightError {
    /// A negative usage, event usage or event quantity.
    NegativeUsage,
    /// A negative credit cost.
    NegativeCreditCost,
}

impl PreflightError {
    /// The platform's wording, as reported in a result's `err`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NegativeUsage => "preflight usage cannot be negative",
            Self::NegativeCreditCost => "preflight credit cost cannot be negative",
        }
    }
}

impl fmt::Display for PreflightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for PreflightError {}

const NO_OPTIONS: CheckOptions<'static> = CheckOptions::new();

/// Why a check produced its value. Displays exactly as the platform words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason<'a> {
    /// No flag with the requested key.
    FlagNotFound,
    /// No rule matched; the flag's default value was used.
    NoRulesMatched,
    /// A rule matched.
    Matched {
        /// Its type.
        rule_type: &'a RuleType,
        /// Its name.
        name: &'a str,
        /// Its id.
        id: &'a str,
    },
}

impl Reason<'_> {
    /// The wording of [`Reason::FlagNotFound`].
    pub const FLAG_NOT_FOUND: &'static str = "Flag not found";
    /// The wording of [`Reason::NoRulesMatched`].
    pub const NO_RULES_MATCHED: &'static str = "No rules matched; default value for flag";
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FlagNotFound => f.write_str(Self::FLAG_NOT_FOUND),
            Self::NoRulesMatched => f.write_str(Self::NO_RULES_MATCHED),
            Self::Matched {
                rule_type,
                name,
                id,
            } => {
                f.write_str("Matched ")?;
                match rule_type.display_name() {
                    Some(display) => f.write_str(display)?,
                    None => {
                        for (i, part) in rule_type.as_str().split('_').enumerate() {
                            if i > 0 {
                                f.write_str(" ")?;
                            }
                            f.write_str(part)?;
                        }
                    }
                }
                write!(f, " rule \"{name}\" ({id})")
            }
        }
    }
}

/// Usage and allocation reported when an entitlement rule matches on a
/// metric or trait condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeatureUsage<'a> {
    /// Current usage (metric value or trait value; no preflight added).
    pub usage: i64,
    /// The allowance (metric value, trait value, or the comparison trait).
    pub allocation: i64,
    /// The event subtype counted, for metric conditions.
    pub event: Option<&'a str>,
    /// The usage period, for metric conditions (`all_time` when unset).
    pub period: Option<&'a MetricPeriod>,
    /// When usage resets next, for metric conditions with a resetting period.
    pub reset_at: Option<OffsetDateTime>,
}

/// The outcome of a flag check. Borrowed from the engine, company and user;
/// building one allocates nothing. Use [`Evaluation::to_result`] for an
/// owned, serializable copy.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Evaluation<'a> {
    /// The flag key that was checked.
    pub flag_key: &'a str,
    /// The flag's id, when found.
    pub flag_id: Option<&'a str>,
    /// The flag value.
    pub value: bool,
    /// Why; format it with `Display`.
    pub reason: Reason<'a>,
    /// The matched rule's id.
    pub rule_id: Option<&'a str>,
    /// The matched rule's type.
    pub rule_type: Option<&'a RuleType>,
    /// The company checked, if any.
    pub company_id: Option<&'a str>,
    /// The user checked, if any.
    pub user_id: Option<&'a str>,
    /// The company's entitlement for this flag's feature (kept as JSON until
    /// parsed, so the check itself allocates nothing).
    pub entitlement: Option<EntitlementRef<'a>>,
    /// Usage fields of a matched entitlement rule.
    pub feature_usage: Option<FeatureUsage<'a>>,
    /// Why the check could not be evaluated as asked (refused preflight
    /// input, see [`PreflightError`]); the value is then the flag default.
    pub err: Option<&'static str>,
}

impl Evaluation<'_> {
    /// An owned copy of this evaluation with the reason formatted.
    pub fn to_result(&self) -> CheckFlagResult {
        let usage = self.feature_usage;
        CheckFlagResult {
            flag_key: self.flag_key.to_owned(),
            flag_id: self.flag_id.map(str::to_owned),
            value: self.value,
            reason: self.reason.to_string(),
            rule_id: self.rule_id.map(str::to_owned),
            rule_type: self.rule_type.cloned(),
            company_id: self.company_id.map(str::to_owned),
            user_id: self.user_id.map(str::to_owned),
            entitlement: self.entitlement.and_then(|e| e.parse().ok()),
            feature_usage: usage.map(|u| u.usage),
            feature_allocation: usage.map(|u| u.allocation),
            feature_usage_event: usage.and_then(|u| u.event).map(str::to_owned),
            feature_usage_period: usage.and_then(|u| u.period).cloned(),
            feature_usage_reset_at: usage.and_then(|u| u.reset_at),
            err: self.err.map(str::to_owned),
        }
    }
}

/// An owned flag-check result, serialized with the platform's snake_case
/// field names (camelCase accepted when deserializing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckFlagResult {
    /// The flag key.
    #[serde(default, alias = "flagKey")]
    pub flag_key: String,
    /// The flag id.
    #[serde(default, alias = "flagId", skip_serializing_if = "Option::is_none")]
    pub flag_id: Option<String>,
    /// The value.
    #[serde(default)]
    pub value: bool,
    /// The reason text.
    #[serde(default)]
    pub reason: String,
    /// The matched rule's id.
    #[serde(default, alias = "ruleId", skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The matched rule's type.
    #[serde(default, alias = "ruleType", skip_serializing_if = "Option::is_none")]
    pub rule_type: Option<RuleType>,
    /// The company id.
    #[serde(default, alias = "companyId", skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    /// The user id.
    #[serde(default, alias = "userId", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The company's entitlement for the flag's feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<FeatureEntitlement>,
    /// Usage of a matched entitlement.
    #[serde(
        default,
        alias = "featureUsage",
        skip_serializing_if = "Option::is_none"
    )]
    pub feature_usage: Option<i64>,
    /// Allocation of a matched entitlement.
    #[serde(
        default,
        alias = "featureAllocation",
        skip_serializing_if = "Option::is_none"
    )]
    pub feature_allocation: Option<i64>,
    /// Event subtype of a matched metered entitlement.
    #[serde(
        default,
        alias = "featureUsageEvent",
        skip_serializing_if = "Option::is_none"
    )]
    pub feature_usage_event: Option<String>,
    /// Usage period of a matched metered entitlement.
    #[serde(
        default,
        alias = "featureUsagePeriod",
        skip_serializing_if = "Option::is_none"
    )]
    pub feature_usage_period: Option<MetricPeriod>,
    /// Next usage reset of a matched metered entitlement.
    #[serde(
        default,
        alias = "featureUsageResetAt",
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub feature_usage_reset_at: Option<OffsetDateTime>,
    /// Why the check could not be evaluated as asked; serialized only when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<String>,
}

/// A flag compiled for evaluation: rules ordered once, ids hashed, literals parsed.
#[derive(Debug, Clone)]
pub struct CompiledFlag {
    flag: Flag,
    id: Sym,
    key: Sym,
    rules: Box<[CompiledRule]>,
}

impl CompiledFlag {
    /// Compiles `flag`. Rules of unknown type are dropped (they never match).
    pub fn new(flag: Flag) -> Self {
        let rules = CompiledRule::compile_all(&flag.rules).into_boxed_slice();
        Self {
            id: intern(&flag.id),
            key: intern(&flag.key),
            rules,
            flag,
        }
    }

    /// The flag as loaded.
    pub fn flag(&self) -> &Flag {
        &self.flag
    }

    /// The flag key.
    pub fn key(&self) -> &str {
        &self.flag.key
    }

    /// Evaluates this flag for `company` and `user` at `now`.
    pub fn evaluate<'a>(
        &'a self,
        company: Option<&'a PreparedCompany>,
        user: Option<&'a PreparedUser>,
        now: OffsetDateTime,
        options: &CheckOptions<'_>,
    ) -> Evaluation<'a> {
        let scope = Scope {
            company,
            user,
            now,
            options,
            usage: options.positive_usage(),
        };
        let mut eval = Evaluation {
            flag_key: &self.flag.key,
            flag_id: Some(&self.flag.id),
            value: self.flag.default_value,
            reason: Reason::NoRulesMatched,
            rule_id: None,
            rule_type: None,
            company_id: company.map(|c| c.id()),
            user_id: user.map(|u| u.user.id.as_str()),
            entitlement: company.and_then(|c| c.entitlement(self.key)),
            feature_usage: None,
            err: None,
        };
        if let Err(e) = options.validate() {
            eval.err = Some(e.as_str());
            return eval;
        }
        let company_rules = company.map_or(&[][..], |c| c.rules.for_flag(self.id));
        let user_rules = user.map_or(&[][..], |u| u.rules.for_flag(self.id));
        let matched = if company_rules.is_empty() && user_rules.is_empty() {
            self.rules.iter().find(|r| scope.rule_matches(r))
        } else {
            first_match_merged(&scope, [&self.rules, company_rules, user_rules])
        };
        if let Some(rule) = matched {
            eval.value = rule.value;
            eval.reason = Reason::Matched {
                rule_type: &rule.rule_type,
                name: &rule.name,
                id: &rule.id,
            };
            eval.rule_id = Some(&rule.id);
            eval.rule_type = Some(&rule.rule_type);
            if let (Some(spec), Some(company)) = (&rule.usage, company) {
                eval.feature_usage = Some(feature_usage(spec, company, now));
            }
        }
        eval
    }
}

/// Walks three rule lists, each already ordered, in their merged order
/// (ties: flag rules, then company rules, then user rules) and returns the
/// first matching rule.
fn first_match_merged<'r>(
    scope: &Scope<'_>,
    lists: [&'r [CompiledRule]; 3],
) -> Option<&'r CompiledRule> {
    let mut pos = [0usize; 3];
    loop {
        let mut best: Option<(usize, &'r CompiledRule)> = None;
        for (i, list) in lists.iter().enumerate() {
            if let Some(rule) = list.get(pos[i])
                && best.is_none_or(|(_, b)| rule.order < b.order)
            {
                best = Some((i, rule));
            }
        }
        let (i, rule) = best?;
        pos[i] += 1;
        if scope.rule_matches(rule) {
            return Some(rule);
        }
    }
}

fn feature_usage<'a>(
    spec: &'a UsageSpec,
    company: &'a PreparedCompany,
    now: OffsetDateTime,
) -> FeatureUsage<'a> {
    let trait_int = |def: Sym| company.traits.find(def).map(|t| t.value.int());
    let allocation = |comparison: &Option<Sym>, fallback: i64| {
        comparison.and_then(trait_int).unwrap_or(fallback)
    };
    match spec {
        UsageSpec::Metric {
            key,
            subtype,
            period,
            reset,
            has_period,
            allocation: alloc,
            comparison,
        } => FeatureUsage {
            usage: key.map_or(0, |k| company.metric(k, now)),
            allocation: allocation(comparison, *alloc),
            event: subtype.as_deref(),
            period: Some(period),
            reset_at: if *has_period {
                next_period_start(period, reset, company.subscription(), now)
            } else {
                None
            },
        },
        UsageSpec::Trait {
            def,
            allocation: alloc,
            comparison,
        } => FeatureUsage {
            usage: def.and_then(trait_int).unwrap_or(0),
            allocation: allocation(comparison, *alloc),
            event: None,
            period: None,
            reset_at: None,
        },
    }
}

struct Scope<'s> {
    company: Option<&'s PreparedCompany>,
    user: Option<&'s PreparedUser>,
    now: OffsetDateTime,
    options: &'s CheckOptions<'s>,
    /// Generic preflight usage when positive, else 0.
    usage: i64,
}

impl Scope<'_> {
    #[inline(always)]
    fn rule_matches(&self, rule: &CompiledRule) -> bool {
        if rule.always {
            return true;
        }
        if !self.all(&rule.conditions) {
            return false;
        }
        for group in &*rule.groups {
            if !self.any(group) {
                return false;
            }
        }
        true
    }

    /// Every condition matches (true for an empty set). Plain loops, so
    /// empty kinds cost one length check; cheap kinds run first.
    #[inline(always)]
    fn all(&self, set: &CondSet) -> bool {
        if set.never != 0 {
            return false;
        }
        for c in &*set.entity_ids {
            if !self.entity_id(c) {
                return false;
            }
        }
        for c in &*set.sets {
            if !self.id_set(c) {
                return false;
            }
        }
        for c in &*set.base_plans {
            if !self.base_plan(c) {
                return false;
            }
        }
        for c in &*set.metrics {
            if !self.metric(c) {
                return false;
            }
        }
        for c in &*set.traits {
            if !self.trait_cond(c) {
                return false;
            }
        }
        for c in &*set.credits {
            if !self.credit(c) {
                return false;
            }
        }
        true
    }

    /// At least one condition matches (false for an empty set).
    #[inline(always)]
    fn any(&self, set: &CondSet) -> bool {
        for c in &*set.entity_ids {
            if self.entity_id(c) {
                return true;
            }
        }
        for c in &*set.sets {
            if self.id_set(c) {
                return true;
            }
        }
        for c in &*set.base_plans {
            if self.base_plan(c) {
                return true;
            }
        }
        for c in &*set.metrics {
            if self.metric(c) {
                return true;
            }
        }
        for c in &*set.traits {
            if self.trait_cond(c) {
                return true;
            }
        }
        for c in &*set.credits {
            if self.credit(c) {
                return true;
            }
        }
        false
    }

    #[inline(always)]
    fn entity_id(&self, c: &EntityIdCond) -> bool {
        let entity = if c.user {
            self.user.map(|u| (u.id_hash, u.user.id.as_str()))
        } else {
            self.company.map(|co| (co.id_hash, co.id()))
        };
        entity.is_some_and(|(hash, id)| c.ids.contains(hash, id) != c.negate)
    }

    #[inline(always)]
    fn id_set(&self, c: &SetCond) -> bool {
        self.company
            .is_some_and(|co| c.ids.intersects(&co.sets[c.kind as usize]) != c.negate)
    }

    #[inline(always)]
    fn base_plan(&self, c: &BasePlanCond) -> bool {
        let Some(co) = self.company else {
            return false;
        };
        match c.op {
            Op::Eq => co.base_plan.is_some_and(|b| c.ids.contains(b)),
            Op::Ne => !co.base_plan.is_some_and(|b| c.ids.contains(b)),
            Op::IsEmpty => co.base_plan.is_none(),
            Op::NotEmpty => co.base_plan.is_some(),
            _ => false,
        }
    }

    #[inline(always)]
    fn metric(&self, c: &MetricCond) -> bool {
        let Some(company) = self.company else {
            return false;
        };
        let mut left = company.metric(c.key, self.now);
        let extra = match self.options.event_usage {
            None => self.usage,
            Some(_) => self
                .options
                .event_quantity(&c.subtype)
                .unwrap_or(self.usage),
        };
        left = left.wrapping_add(extra);
        let right = match c.comparison {
            None => c.value,
            Some(def) => company.traits.find(def).map_or(0, |t| t.value.int()),
        };
        compare_int(left, right, c.op)
    }

    #[inline(always)]
    fn trait_cond(&self, c: &TraitCond) -> bool {
        let traits = match c.entity {
            Entity::Company => match self.company {
                Some(co) => &co.traits,
                None => return false,
            },
            Entity::User => match self.user {
                Some(u) => &u.traits,
                None => return false,
            },
        };
        let found: Option<&PreparedTrait> = traits.find(c.def);
        let (left, ct) = match found {
            Some(t) => (Some(&t.value), t.ct),
            None => (None, c.def_type),
        };
        let right = match c.comparison {
            None => Some(&c.literal),
            Some(def) => traits.find(def).map(|t| &t.value),
        };
        compare_values(left, right, ct, c.op, self.usage)
    }

    #[inline(always)]
    fn credit(&self, c: &CreditCond) -> bool {
        let Some(company) = self.company else {
            return false;
        };
        let balance = company.credit(c.credit);
        if let Some((_, cost)) = self
            .options
            .credit_cost
            .iter()
            .find(|(id, _)| str_eq(id, &c.credit_id))
        {
            return balance >= *cost;
        }
        if !c.quantity_rates.is_empty()
            && let Some(quantities) = c
                .subtype
                .as_deref()
                .and_then(|s| self.options.quantities_for(s))
        {
            let mut cost = 0.0;
            for (name, rate) in &*c.quantity_rates {
                if let Some((_, q)) = quantities.iter().find(|(n, _)| str_eq(n, name)) {
                    cost += q * rate;
                }
            }
            return balance >= cost;
        }
        if let Some(q) = c
            .subtype
            .as_deref()
            .and_then(|s| self.options.event_quantity(s))
        {
            return balance >= q as f64 * c.rate;
        }
        if self.usage > 0 {
            return balance >= self.usage as f64 * c.rate;
        }
        balance >= c.rate
    }
}

/// The rules engine: a set of compiled flags, looked up by key.
///
/// Build it from flags once ([`RulesEngine::new`]), keep it up to date with
/// [`RulesEngine::upsert_flag`] / [`RulesEngine::remove_flag`] /
/// [`RulesEngine::replace_all`], and check flags against prepared companies
/// and users. `RulesEngine` is `Send + Sync`; checks take `&self`, so one
/// engine behind an `Arc` (or an `ArcSwap`-style pointer for updates) serves
/// any number of threads without locking.
#[derive(Debug, Clone, Default)]
pub struct RulesEngine {
    flags: Vec<CompiledFlag>,
    by_key: HashMap<Box<str>, usize, BuildStrHasher>,
}

impl RulesEngine {
    /// Compiles `flags`. When two flags share a key, the later one wins.
    pub fn new(flags: impl IntoIterator<Item = Flag>) -> Self {
        let mut engine = Self::default();
        for flag in flags {
            engine.upsert_flag(flag);
        }
        engine
    }

    /// Parses a JSON array of flags (the platform's `Flags` payload) and compiles it.
    pub fn from_json(json: &str) -> Result<Self, RulesError> {
        let flags: Vec<Flag> = serde_json::from_str(json)?;
        Ok(Self::new(flags))
    }

    /// Adds or replaces the flag with `flag.key`.
    pub fn upsert_flag(&mut self, flag: Flag) {
        let compiled = CompiledFlag::new(flag);
        match self.by_key.get(compiled.key()) {
            Some(&i) => self.flags[i] = compiled,
            None => {
                self.by_key.insert(compiled.key().into(), self.flags.len());
                self.flags.push(compiled);
            }
        }
    }

    /// Removes the flag with `key`, returning it.
    pub fn remove_flag(&mut self, key: &str) -> Option<Flag> {
        let i = self.by_key.remove(key)?;
        let removed = self.flags.swap_remove(i);
        if let Some(moved) = self.flags.get(i)
            && let Some(slot) = self.by_key.get_mut(moved.key())
        {
            *slot = i;
        }
        Some(removed.flag)
    }

    /// Replaces every flag (a full `Flags` message).
    pub fn replace_all(&mut self, flags: impl IntoIterator<Item = Flag>) {
        *self = Self::new(flags);
    }

    /// The compiled flag with `key`.
    #[inline]
    pub fn flag(&self, key: &str) -> Option<&CompiledFlag> {
        self.by_key.get(key).map(|&i| &self.flags[i])
    }

    /// All compiled flags, in no particular order.
    pub fn flags(&self) -> impl ExactSizeIterator<Item = &CompiledFlag> {
        self.flags.iter()
    }

    /// Number of flags.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    /// Whether there are no flags.
    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// Checks `flag_key` for `company` and `user` at `now`.
    ///
    /// An unknown key yields `value: false` with reason "Flag not found";
    /// callers apply their own default.
    #[inline]
    pub fn check<'a>(
        &'a self,
        flag_key: &'a str,
        company: Option<&'a PreparedCompany>,
        user: Option<&'a PreparedUser>,
        now: OffsetDateTime,
    ) -> Evaluation<'a> {
        self.check_with(flag_key, company, user, now, &NO_OPTIONS)
    }

    /// [`RulesEngine::check`] with preflight options.
    #[inline]
    pub fn check_with<'a>(
        &'a self,
        flag_key: &'a str,
        company: Option<&'a PreparedCompany>,
        user: Option<&'a PreparedUser>,
        now: OffsetDateTime,
        options: &CheckOptions<'_>,
    ) -> Evaluation<'a> {
        match self.flag(flag_key) {
            Some(flag) => flag.evaluate(company, user, now, options),
            None => Evaluation {
                flag_key,
                flag_id: None,
                value: false,
                reason: Reason::FlagNotFound,
                rule_id: None,
                rule_type: None,
                company_id: None,
                user_id: None,
                entitlement: None,
                feature_usage: None,
                err: None,
            },
        }
    }
}
