//! The evaluation-friendly forms: compiled rules and conditions, and
//! companies and users prepared once for many checks.
//!
//! Everything that would cost time on every check is done here instead:
//! rules are ordered, configuration strings are interned (see
//! [`super::intern`]), entity ids are hashed, and trait values and literals
//! are parsed as int, bool and date up front.

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;

use super::date::parse_date;
use super::hash::{IdSet, hash_str};
use super::intern::{Sym, SymMap, SymSet, intern, intern_all};
use super::model::{
    Company, ComparableType, Condition, ConditionType, EntityType, FeatureEntitlement,
    MetricPeriod, MonthReset, Operator, Rule, RuleType, Subscription, Trait, User,
};

/// Parses a signed decimal integer: an optional sign and ASCII digits.
/// Anything else is 0; out-of-range values saturate.
pub(crate) fn parse_int(text: &str) -> i64 {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    let mut value: i64 = 0;
    for &d in digits {
        let digit = i64::from(d - b'0');
        let next = value.checked_mul(10).and_then(|v| {
            if negative {
                v.checked_sub(digit)
            } else {
                v.checked_add(digit)
            }
        });
        match next {
            Some(v) => value = v,
            None => return if negative { i64::MIN } else { i64::MAX },
        }
    }
    value
}

/// The lookup key of a metric: the interned triple of event subtype,
/// period and month reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct MetricKey(Sym);

impl MetricKey {
    pub(crate) fn new(subtype: &str, period: &MetricPeriod, reset: &MonthReset) -> Self {
        // Length prefixes make the encoding unambiguous for any content.
        let (period, reset) = (period.as_str(), reset.as_str());
        let joined = format!(
            "{}:{subtype}{}:{period}{reset}",
            subtype.len(),
            period.len()
        );
        Self(intern(&joined))
    }
}

/// A string value with its int, bool and date readings precomputed.
#[derive(Debug, Clone)]
pub(crate) struct Value {
    raw: Box<str>,
    int: i64,
    boolean: bool,
    /// Unix time in nanoseconds, so comparisons are plain integer compares.
    date: Option<i128>,
}

impl Value {
    pub(crate) fn new(raw: &str) -> Self {
        Self {
            raw: raw.into(),
            int: parse_int(raw),
            boolean: raw == "true",
            date: parse_date(raw).map(OffsetDateTime::unix_timestamp_nanos),
        }
    }

    /// The int reading.
    #[inline(always)]
    pub(crate) fn int(&self) -> i64 {
        self.int
    }
}

/// A compact operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    IsEmpty,
    NotEmpty,
    Unknown,
}

impl From<&Operator> for Op {
    fn from(op: &Operator) -> Self {
        match op {
            Operator::Eq => Self::Eq,
            Operator::Ne => Self::Ne,
            Operator::Gt => Self::Gt,
            Operator::Gte => Self::Gte,
            Operator::Lt => Self::Lt,
            Operator::Lte => Self::Lte,
            Operator::IsEmpty => Self::IsEmpty,
            Operator::NotEmpty => Self::NotEmpty,
            Operator::Other(_) => Self::Unknown,
        }
    }
}

/// A compact comparable type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ct {
    String,
    Int,
    Bool,
    Date,
    Unknown,
}

impl From<&ComparableType> for Ct {
    fn from(ct: &ComparableType) -> Self {
        match ct {
            ComparableType::String => Self::String,
            ComparableType::Int => Self::Int,
            ComparableType::Bool => Self::Bool,
            ComparableType::Date => Self::Date,
            ComparableType::Other(_) => Self::Unknown,
        }
    }
}

#[inline(always)]
pub(crate) fn compare_int(a: i64, b: i64, op: Op) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Gt => a > b,
        Op::Gte => a >= b,
        Op::Lt => a < b,
        Op::Lte => a <= b,
        Op::IsEmpty => a == 0,
        Op::NotEmpty => a > 0,
        Op::Unknown => false,
    }
}

#[inline(always)]
fn compare_str(a: &str, b: &str, op: Op) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Gt => a > b,
        Op::Gte => a >= b,
        Op::Lt => a < b,
        Op::Lte => a <= b,
        Op::IsEmpty => a.is_empty(),
        Op::NotEmpty => !a.is_empty(),
        Op::Unknown => false,
    }
}

#[inline(always)]
fn compare_bool(a: bool, b: bool, op: Op) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::NotEmpty => true,
        _ => false,
    }
}

/// Dates compare by instant; a missing ("nil") date sorts before all others.
#[inline(always)]
fn compare_date(a: Option<i128>, b: Option<i128>, op: Op) -> bool {
    let gt = |a: Option<i128>, b: Option<i128>| match (a, b) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(a), Some(b)) => a > b,
    };
    let lt = |a: Option<i128>, b: Option<i128>| match (a, b) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(a), Some(b)) => a < b,
    };
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Gt => gt(a, b),
        Op::Gte => a == b || gt(a, b),
        Op::Lt => lt(a, b),
        Op::Lte => a == b || lt(a, b),
        Op::IsEmpty => a.is_none(),
        Op::NotEmpty => a.is_some(),
        Op::Unknown => false,
    }
}

/// Compares two values as `ct`; `None` is a missing trait, read as `""`.
#[inline(always)]
pub(crate) fn compare_values(
    left: Option<&Value>,
    right: Option<&Value>,
    ct: Ct,
    op: Op,
    usage: i64,
) -> bool {
    match ct {
        Ct::String => compare_str(
            left.map_or("", |v| &v.raw),
            right.map_or("", |v| &v.raw),
            op,
        ),
        Ct::Int => {
            let l = left.map_or(0, |v| v.int);
            let l = if usage > 0 { l.wrapping_add(usage) } else { l };
            compare_int(l, right.map_or(0, |v| v.int), op)
        }
        Ct::Bool => compare_bool(
            left.is_some_and(|v| v.boolean),
            right.is_some_and(|v| v.boolean),
            op,
        ),
        Ct::Date => compare_date(left.and_then(|v| v.date), right.and_then(|v| v.date), op),
        Ct::Unknown => false,
    }
}

/// Which entity a compiled trait condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entity {
    Company,
    User,
}

/// A company id set a condition can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetKind {
    Plan = 0,
    PlanVersion = 1,
    BillingProduct = 2,
}

/// `company` / `user` id condition. Entity ids are not interned (they are
/// unbounded), so these compare hashes and then strings.
#[derive(Debug, Clone)]
pub(crate) struct EntityIdCond {
    pub(crate) user: bool,
    pub(crate) ids: IdSet,
    pub(crate) negate: bool,
}

/// `plan` / `plan_version` / `billing_product` condition.
#[derive(Debug, Clone)]
pub(crate) struct SetCond {
    pub(crate) kind: SetKind,
    pub(crate) ids: SymSet,
    pub(crate) negate: bool,
}

/// `base_plan` condition.
#[derive(Debug, Clone)]
pub(crate) struct BasePlanCond {
    pub(crate) ids: SymSet,
    pub(crate) op: Op,
}

/// `metric` condition.
#[derive(Debug, Clone)]
pub(crate) struct MetricCond {
    pub(crate) key: MetricKey,
    pub(crate) subtype: Box<str>,
    pub(crate) op: Op,
    pub(crate) value: i64,
    pub(crate) comparison: Option<Sym>,
}

/// `trait` condition.
#[derive(Debug, Clone)]
pub(crate) struct TraitCond {
    pub(crate) entity: Entity,
    pub(crate) def: Sym,
    pub(crate) def_type: Ct,
    pub(crate) op: Op,
    pub(crate) literal: Value,
    pub(crate) comparison: Option<Sym>,
}

/// `credit` condition.
#[derive(Debug, Clone)]
pub(crate) struct CreditCond {
    pub(crate) credit: Sym,
    pub(crate) credit_id: Box<str>,
    pub(crate) subtype: Option<Box<str>>,
    pub(crate) rate: f64,
    /// Rates per named quantity (`quantity_rates`), in key order.
    pub(crate) quantity_rates: Box<[(Box<str>, f64)]>,
}

/// A list of conditions split by kind, so evaluation runs one tight loop per
/// kind instead of dispatching on every condition. Conditions have no side
/// effects, so AND and OR results do not depend on the order of evaluation.
#[derive(Debug, Clone, Default)]
pub(crate) struct CondSet {
    /// Number of conditions that can never match (unknown type, missing
    /// required fields).
    pub(crate) never: u32,
    pub(crate) entity_ids: Box<[EntityIdCond]>,
    pub(crate) sets: Box<[SetCond]>,
    pub(crate) base_plans: Box<[BasePlanCond]>,
    pub(crate) metrics: Box<[MetricCond]>,
    pub(crate) traits: Box<[TraitCond]>,
    pub(crate) credits: Box<[CreditCond]>,
}

fn sym_set(c: &Condition) -> SymSet {
    SymSet::new(c.resource_ids.iter().map(String::as_str))
}

impl CondSet {
    pub(crate) fn new<'a>(conditions: impl IntoIterator<Item = &'a Condition>) -> Self {
        let mut out = CondSetBuilder::default();
        for c in conditions {
            out.add(c);
        }
        Self {
            never: out.never,
            entity_ids: out.entity_ids.into_boxed_slice(),
            sets: out.sets.into_boxed_slice(),
            base_plans: out.base_plans.into_boxed_slice(),
            metrics: out.metrics.into_boxed_slice(),
            traits: out.traits.into_boxed_slice(),
            credits: out.credits.into_boxed_slice(),
        }
    }
}

#[derive(Default)]
struct CondSetBuilder {
    never: u32,
    entity_ids: Vec<EntityIdCond>,
    sets: Vec<SetCond>,
    base_plans: Vec<BasePlanCond>,
    metrics: Vec<MetricCond>,
    traits: Vec<TraitCond>,
    credits: Vec<CreditCond>,
}

impl CondSetBuilder {
    fn add(&mut self, c: &Condition) {
        let negate = c.operator == Operator::Ne;
        let comparison = || {
            c.comparison_trait_definition
                .as_ref()
                .map(|d| intern(&d.id))
        };
        let set = |kind| SetCond {
            kind,
            ids: sym_set(c),
            negate,
        };
        let entity = |user| EntityIdCond {
            user,
            ids: IdSet::new(c.resource_ids.iter().map(String::as_str)),
            negate,
        };
        match &c.condition_type {
            ConditionType::Company => self.entity_ids.push(entity(false)),
            ConditionType::User => self.entity_ids.push(entity(true)),
            ConditionType::Plan => self.sets.push(set(SetKind::Plan)),
            ConditionType::PlanVersion => self.sets.push(set(SetKind::PlanVersion)),
            ConditionType::BillingProduct => self.sets.push(set(SetKind::BillingProduct)),
            ConditionType::BasePlan => self.base_plans.push(BasePlanCond {
                ids: sym_set(c),
                op: Op::from(&c.operator),
            }),
            ConditionType::Metric => match (&c.event_subtype, c.metric_value) {
                (Some(subtype), Some(value)) => {
                    let period = c.metric_period.clone().unwrap_or_default();
                    let reset = c.metric_period_month_reset.clone().unwrap_or_default();
                    self.metrics.push(MetricCond {
                        key: MetricKey::new(subtype, &period, &reset),
                        subtype: subtype.as_str().into(),
                        op: Op::from(&c.operator),
                        value,
                        comparison: comparison(),
                    });
                }
                _ => self.never += 1,
            },
            ConditionType::Trait => {
                let entity = match c.trait_definition.as_ref().map(|d| &d.entity_type) {
                    Some(EntityType::Company) => Entity::Company,
                    Some(EntityType::User) => Entity::User,
                    _ => {
                        self.never += 1;
                        return;
                    }
                };
                let Some(def) = &c.trait_definition else {
                    self.never += 1;
                    return;
                };
                self.traits.push(TraitCond {
                    entity,
                    def: intern(&def.id),
                    def_type: Ct::from(&def.comparable_type),
                    op: Op::from(&c.operator),
                    literal: Value::new(&c.trait_value),
                    comparison: comparison(),
                });
            }
            ConditionType::Credit => match &c.credit_id {
                Some(credit) => self.credits.push(CreditCond {
                    credit: intern(credit),
                    credit_id: credit.as_str().into(),
                    subtype: c.event_subtype.as_deref().map(Into::into),
                    rate: c.consumption_rate.unwrap_or(1.0),
                    quantity_rates: c
                        .quantity_rates
                        .iter()
                        .map(|(name, rate)| (name.as_str().into(), *rate))
                        .collect(),
                }),
                None => self.never += 1,
            },
            ConditionType::Other(_) => self.never += 1,
        }
    }
}

/// How a matched entitlement rule reports usage and allocation.
#[derive(Debug, Clone)]
pub(crate) enum UsageSpec {
    Metric {
        /// `None` when the condition has no event subtype (usage is then 0).
        key: Option<MetricKey>,
        subtype: Option<Box<str>>,
        period: MetricPeriod,
        reset: MonthReset,
        /// Whether the condition named a period (a reset time is reported only then).
        has_period: bool,
        allocation: i64,
        comparison: Option<Sym>,
    },
    Trait {
        def: Option<Sym>,
        allocation: i64,
        comparison: Option<Sym>,
    },
}

impl UsageSpec {
    fn compile(rule: &Rule) -> Option<Self> {
        if !rule.rule_type.is_entitlement() {
            return None;
        }
        let c = rule.conditions.iter().find(|c| {
            matches!(
                c.condition_type,
                ConditionType::Metric | ConditionType::Trait
            )
        })?;
        let comparison = c
            .comparison_trait_definition
            .as_ref()
            .map(|d| intern(&d.id));
        Some(if c.condition_type == ConditionType::Metric {
            let period = c.metric_period.clone().unwrap_or_default();
            let reset = c.metric_period_month_reset.clone().unwrap_or_default();
            Self::Metric {
                key: c
                    .event_subtype
                    .as_deref()
                    .map(|s| MetricKey::new(s, &period, &reset)),
                subtype: c.event_subtype.as_deref().map(Into::into),
                has_period: c.metric_period.is_some(),
                period,
                reset,
                allocation: c.metric_value.unwrap_or(0),
                comparison,
            }
        } else {
            Self::Trait {
                def: c.trait_definition.as_ref().map(|d| intern(&d.id)),
                allocation: parse_int(&c.trait_value),
                comparison,
            }
        })
    }
}

/// The position of a rule type in the evaluation order; unknown types are
/// never evaluated.
pub(crate) fn type_rank(rule_type: &RuleType) -> Option<u8> {
    Some(match rule_type {
        RuleType::GlobalOverride => 0,
        RuleType::CompanyOverride => 1,
        RuleType::PlanEntitlement => 2,
        RuleType::CompanyOverrideUsageExceeded => 3,
        RuleType::PlanEntitlementUsageExceeded => 4,
        RuleType::Standard => 5,
        RuleType::Default => 6,
        RuleType::Other(_) => return None,
    })
}

/// A rule in evaluation form.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    /// Rule-type position, then the in-group key: priority for `standard`,
    /// 0 for `value = true` and 1 for `false` in the optimistic groups.
    pub(crate) order: (u8, i64),
    pub(crate) id: Box<str>,
    pub(crate) name: Box<str>,
    pub(crate) rule_type: RuleType,
    pub(crate) value: bool,
    pub(crate) always: bool,
    pub(crate) conditions: CondSet,
    pub(crate) groups: Box<[CondSet]>,
    pub(crate) usage: Option<UsageSpec>,
}

impl CompiledRule {
    fn compile(rule: &Rule) -> Option<Self> {
        let rank = type_rank(&rule.rule_type)?;
        let key = match rule.rule_type {
            RuleType::Standard => rule.priority,
            RuleType::CompanyOverride
            | RuleType::PlanEntitlement
            | RuleType::CompanyOverrideUsageExceeded
            | RuleType::PlanEntitlementUsageExceeded => i64::from(!rule.value),
            _ => 0,
        };
        Some(Self {
            order: (rank, key),
            id: rule.id.as_str().into(),
            name: rule.name.as_str().into(),
            rule_type: rule.rule_type.clone(),
            value: rule.value,
            always: matches!(rule.rule_type, RuleType::Default | RuleType::GlobalOverride),
            conditions: CondSet::new(&rule.conditions),
            groups: rule
                .condition_groups
                .iter()
                .map(|g| CondSet::new(&g.conditions))
                .collect(),
            usage: UsageSpec::compile(rule),
        })
    }

    /// Compiles and orders rules; the sort is stable, so equal keys keep
    /// their input order.
    pub(crate) fn compile_all<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Vec<Self> {
        let mut out: Vec<Self> = rules.into_iter().filter_map(Self::compile).collect();
        out.sort_by_key(|r| r.order);
        out
    }
}

/// Company or user rules grouped by the flag they apply to.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScopedRules {
    rules: Box<[CompiledRule]>,
    /// (flag id, start, end) into `rules`.
    by_flag: Box<[(Sym, u32, u32)]>,
}

impl ScopedRules {
    fn new(rules: &[Rule]) -> Self {
        let mut flag_ids: Vec<&str> = rules.iter().filter_map(|r| r.flag_id.as_deref()).collect();
        flag_ids.sort_unstable();
        flag_ids.dedup();
        let mut all = Vec::new();
        let mut by_flag = Vec::with_capacity(flag_ids.len());
        for flag_id in flag_ids {
            let start = all.len() as u32;
            all.extend(CompiledRule::compile_all(
                rules
                    .iter()
                    .filter(|r| r.flag_id.as_deref() == Some(flag_id)),
            ));
            let end = all.len() as u32;
            if end > start {
                by_flag.push((intern(flag_id), start, end));
            }
        }
        Self {
            rules: all.into_boxed_slice(),
            by_flag: by_flag.into_boxed_slice(),
        }
    }

    #[inline]
    pub(crate) fn for_flag(&self, flag_id: Sym) -> &[CompiledRule] {
        for (id, start, end) in &*self.by_flag {
            if *id == flag_id {
                return &self.rules[*start as usize..*end as usize];
            }
        }
        &[]
    }
}

/// A trait of a company or user in evaluation form.
#[derive(Debug, Clone)]
pub(crate) struct PreparedTrait {
    pub(crate) ct: Ct,
    pub(crate) value: Value,
}

/// Traits sorted by definition symbol (stably: the first of duplicate
/// definitions wins). Traits without a definition can never be found and
/// are left out.
#[derive(Debug, Clone, Default)]
pub(crate) struct TraitTable {
    index: SymMap,
    traits: Box<[PreparedTrait]>,
}

impl TraitTable {
    fn new(traits: &[Trait]) -> Self {
        let entries: Vec<(Sym, PreparedTrait)> = traits
            .iter()
            .filter_map(|t| {
                let d = t.trait_definition.as_ref()?;
                Some((
                    intern(&d.id),
                    PreparedTrait {
                        ct: Ct::from(&d.comparable_type),
                        value: Value::new(&t.value),
                    },
                ))
            })
            .collect();
        Self {
            index: SymMap::new(entries.iter().enumerate().map(|(i, e)| (e.0, i as u32))),
            traits: entries.into_iter().map(|e| e.1).collect(),
        }
    }

    #[inline(always)]
    pub(crate) fn find(&self, def: Sym) -> Option<&PreparedTrait> {
        self.index.get(def).map(|i| &self.traits[i])
    }
}

/// A company metric in evaluation form.
#[derive(Debug, Clone)]
pub(crate) struct PreparedMetric {
    value: i64,
    /// Unix nanoseconds.
    valid_until: Option<i128>,
}

/// A company prepared once for many flag checks: configuration strings
/// interned, traits parsed and indexed, company rules compiled and grouped
/// by flag.
///
/// Build it with [`PreparedCompany::new`] (or `From<Company>`) whenever the
/// company data changes; checks borrow it. Preparing is independent of any
/// engine: a prepared company can be checked against any
/// [`RulesEngine`](super::RulesEngine), before or after its flags change.
#[derive(Clone)]
pub struct PreparedCompany {
    /// The company without its entitlements, as compact JSON: what
    /// [`to_company`](Self::to_company) rebuilds it from. Kept as text
    /// because text is the smallest faithful form: the parsed model of a
    /// typical company takes about 2.5 times its JSON.
    body: Box<str>,
    /// Each entitlement as compact JSON, in input order; parsed only when a
    /// result is turned into owned data.
    entitlements: Box<[Box<str>]>,
    id: Box<str>,
    /// Identifying keys, sorted by name.
    keys: Box<[(Box<str>, Box<str>)]>,
    subscription: Option<Subscription>,
    pub(crate) id_hash: u64,
    /// Plan, plan version and billing product ids, indexed by [`SetKind`].
    pub(crate) sets: [Box<[Sym]>; 3],
    pub(crate) base_plan: Option<Sym>,
    pub(crate) traits: TraitTable,
    metric_index: SymMap,
    metrics: Box<[PreparedMetric]>,
    credit_index: SymMap,
    credit_values: Box<[f64]>,
    /// Feature key to index into `entitlements`.
    entitlement_index: SymMap,
    pub(crate) rules: ScopedRules,
}

impl PreparedCompany {
    /// Prepares `company` for evaluation.
    ///
    /// The prepared form keeps the indexes a check reads and the company
    /// itself as compact JSON, so a cached company costs little memory; the
    /// model comes back with [`to_company`](Self::to_company).
    pub fn new(mut company: Company) -> Self {
        let metrics: Vec<(MetricKey, PreparedMetric)> = company
            .metrics
            .iter()
            .map(|m| {
                (
                    MetricKey::new(&m.event_subtype, &m.period, &m.month_reset),
                    PreparedMetric {
                        value: m.value,
                        valid_until: m.valid_until.map(OffsetDateTime::unix_timestamp_nanos),
                    },
                )
            })
            .collect();
        let credits: Vec<(Sym, f64)> = company
            .credit_balances
            .iter()
            .map(|(k, v)| (intern(k), *v))
            .collect();
        let entitlement_index = SymMap::new(
            company
                .entitlements
                .iter()
                .enumerate()
                .map(|(i, e)| (intern(&e.feature_key), i as u32)),
        );
        let entitlements: Box<[Box<str>]> = std::mem::take(&mut company.entitlements)
            .iter()
            .map(to_json)
            .collect();
        let mut keys: Vec<(Box<str>, Box<str>)> = company
            .keys
            .iter()
            .map(|(k, v)| (Box::from(k.as_str()), Box::from(v.as_str())))
            .collect();
        keys.sort_unstable();
        Self {
            id_hash: hash_str(&company.id),
            sets: [
                intern_all(&company.plan_ids),
                intern_all(&company.plan_version_ids),
                intern_all(&company.billing_product_ids),
            ],
            base_plan: company.base_plan_id.as_deref().map(intern),
            traits: TraitTable::new(&company.traits),
            metric_index: SymMap::new(metrics.iter().enumerate().map(|(i, m)| (m.0.0, i as u32))),
            metrics: metrics.into_iter().map(|m| m.1).collect(),
            credit_index: SymMap::new(credits.iter().enumerate().map(|(i, c)| (c.0, i as u32))),
            credit_values: credits.iter().map(|c| c.1).collect(),
            entitlement_index,
            rules: ScopedRules::new(&company.rules),
            id: Box::from(company.id.as_str()),
            keys: keys.into_boxed_slice(),
            subscription: company.subscription.clone(),
            body: to_json(&company),
            entitlements,
        }
    }

    /// Parses a company from platform JSON and prepares it.
    pub fn from_json(json: &str) -> Result<Self, super::RulesError> {
        Ok(Self::new(serde_json::from_str(json)?))
    }

    /// The company, rebuilt from its compact JSON (this parses it: keep the
    /// result rather than calling this on a hot path).
    pub fn to_company(&self) -> Company {
        let mut company: Company = serde_json::from_str(&self.body).unwrap_or_else(|_| {
            // Only reachable if the model's own JSON stopped parsing: keep
            // what the prepared form knows.
            let mut c = Company::new(self.id.as_ref());
            c.keys = self.keys_map();
            c
        });
        company.entitlements = self
            .entitlements
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect();
        company
    }

    /// The company, rebuilt (see [`to_company`](Self::to_company)).
    pub fn into_company(self) -> Company {
        self.to_company()
    }

    /// The company id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The identifying keys, sorted by name.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.keys.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The identifying keys as a map.
    pub fn keys_map(&self) -> BTreeMap<String, String> {
        self.keys()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// The value of the metric for `(event_subtype, period, month_reset)`,
    /// or 0 when there is none or it expired (`valid_until <= now`).
    pub fn metric_value(
        &self,
        event_subtype: &str,
        period: &MetricPeriod,
        month_reset: &MonthReset,
        now: OffsetDateTime,
    ) -> i64 {
        self.metric(MetricKey::new(event_subtype, period, month_reset), now)
    }

    #[inline(always)]
    pub(crate) fn metric(&self, key: MetricKey, now: OffsetDateTime) -> i64 {
        match self.metric_index.get(key.0) {
            Some(i) => {
                let m = &self.metrics[i];
                match m.valid_until {
                    Some(until) if until <= now.unix_timestamp_nanos() => 0,
                    _ => m.value,
                }
            }
            None => 0,
        }
    }

    /// The balance of `credit_id`, or 0.
    pub fn credit_balance(&self, credit_id: &str) -> f64 {
        self.credit(intern(credit_id))
    }

    #[inline(always)]
    pub(crate) fn credit(&self, credit: Sym) -> f64 {
        self.credit_index
            .get(credit)
            .map_or(0.0, |i| self.credit_values[i])
    }

    /// The entitlement whose `feature_key` is the flag key.
    #[inline]
    pub(crate) fn entitlement(&self, flag_key: Sym) -> Option<EntitlementRef<'_>> {
        self.entitlement_index
            .get(flag_key)
            .map(|i| EntitlementRef {
                json: &self.entitlements[i],
            })
    }

    pub(crate) fn subscription(&self) -> Option<&Subscription> {
        self.subscription.as_ref()
    }
}

impl From<Company> for PreparedCompany {
    fn from(company: Company) -> Self {
        Self::new(company)
    }
}

impl fmt::Debug for PreparedCompany {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedCompany")
            .field("id", &self.id)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// Compact JSON of a model value (serialising these types cannot fail).
fn to_json(value: &impl serde::Serialize) -> Box<str> {
    serde_json::to_string(value)
        .unwrap_or_default()
        .into_boxed_str()
}

/// A company's entitlement attached to an evaluation, kept as JSON until
/// it is needed: a check that only wants the value never parses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntitlementRef<'a> {
    json: &'a str,
}

impl<'a> EntitlementRef<'a> {
    /// The entitlement as compact JSON (snake_case wire form).
    pub fn as_json(&self) -> &'a str {
        self.json
    }

    /// The entitlement, parsed.
    pub fn parse(&self) -> Result<FeatureEntitlement, serde_json::Error> {
        self.parse_as()
    }

    /// The entitlement parsed into another type with the same wire form
    /// (e.g. the API's model of it).
    pub fn parse_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.json)
    }
}

/// A user prepared once for many flag checks.
#[derive(Clone)]
pub struct PreparedUser {
    pub(crate) user: User,
    pub(crate) id_hash: u64,
    pub(crate) traits: TraitTable,
    pub(crate) rules: ScopedRules,
}

impl PreparedUser {
    /// Prepares `user` for evaluation.
    pub fn new(user: User) -> Self {
        Self {
            id_hash: hash_str(&user.id),
            traits: TraitTable::new(&user.traits),
            rules: ScopedRules::new(&user.rules),
            user,
        }
    }

    /// Parses a user from platform JSON and prepares it.
    pub fn from_json(json: &str) -> Result<Self, super::RulesError> {
        Ok(Self::new(serde_json::from_str(json)?))
    }

    /// The user data.
    pub fn user(&self) -> &User {
        &self.user
    }

    /// Gives the user data back.
    pub fn into_inner(self) -> User {
        self.user
    }

    /// The user id.
    pub fn id(&self) -> &str {
        &self.user.id
    }
}

impl From<User> for PreparedUser {
    fn from(user: User) -> Self {
        Self::new(user)
    }
}

impl fmt::Debug for PreparedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedUser")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_parsing() {
        assert_eq!(parse_int("42"), 42);
        assert_eq!(parse_int("-42"), -42);
        assert_eq!(parse_int("+7"), 7);
        assert_eq!(parse_int(""), 0);
        assert_eq!(parse_int("-"), 0);
        assert_eq!(parse_int("4.2"), 0);
        assert_eq!(parse_int(" 4"), 0);
        assert_eq!(parse_int("1_000"), 0);
        assert_eq!(parse_int("99999999999999999999"), i64::MAX);
        assert_eq!(parse_int("-99999999999999999999"), i64::MIN);
        assert_eq!(parse_int("-9223372036854775808"), i64::MIN);
    }

    #[test]
    fn nil_dates_sort_first() {
        let d = parse_date("2024-01-01").map(OffsetDateTime::unix_timestamp_nanos);
        assert!(!compare_date(None, d, Op::Gt));
        assert!(compare_date(None, d, Op::Lt));
        assert!(!compare_date(None, None, Op::Lt));
        assert!(compare_date(None, None, Op::Eq));
        assert!(compare_date(None, None, Op::Lte));
        assert!(compare_date(d, None, Op::Gt));
        assert!(!compare_date(d, None, Op::Lt));
    }
}
