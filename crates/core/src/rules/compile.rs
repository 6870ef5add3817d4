//! The evaluation-friendly forms: compiled rules and conditions, and
//! companies and users prepared once for many checks.
//!
//! Everything that would cost time on every check is done here instead:
//! rules are ordered, ids and trait names are hashed, trait values and
//! literals are parsed as int, bool and date up front.

use std::fmt;

use time::OffsetDateTime;

use super::date::parse_date;
use super::hash::{HStr, HashIndex, IdSet, hash_str, str_eq};
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

/// The lookup hash of a metric: its event subtype, period and month reset.
#[inline]
pub(crate) fn metric_key(subtype_hash: u64, period: &MetricPeriod, reset: &MonthReset) -> u64 {
    let p = hash_str(period.as_str());
    let r = hash_str(reset.as_str());
    subtype_hash ^ p.rotate_left(21) ^ r.rotate_left(42)
}

/// A string value with its int, bool and date readings precomputed.
#[derive(Debug, Clone)]
pub(crate) struct Value {
    raw: Box<str>,
    int: i64,
    boolean: bool,
    date: Option<OffsetDateTime>,
}

impl Value {
    pub(crate) fn new(raw: &str) -> Self {
        Self {
            raw: raw.into(),
            int: parse_int(raw),
            boolean: raw == "true",
            date: parse_date(raw),
        }
    }

    #[inline(always)]
    pub(crate) fn as_ref(&self) -> ValueRef<'_> {
        ValueRef {
            raw: &self.raw,
            int: self.int,
            boolean: self.boolean,
            date: self.date,
        }
    }
}

/// A borrowed [`Value`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ValueRef<'a> {
    pub(crate) raw: &'a str,
    pub(crate) int: i64,
    pub(crate) boolean: bool,
    pub(crate) date: Option<OffsetDateTime>,
}

impl ValueRef<'static> {
    /// The reading of a missing trait: the empty string.
    pub(crate) const EMPTY: Self = Self {
        raw: "",
        int: 0,
        boolean: false,
        date: None,
    };
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

#[inline]
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

#[inline]
fn compare_bool(a: bool, b: bool, op: Op) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::NotEmpty => true,
        _ => false,
    }
}

/// Dates compare by instant; a missing ("nil") date sorts before all others.
#[inline]
fn compare_date(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>, op: Op) -> bool {
    let gt = |a: Option<OffsetDateTime>, b: Option<OffsetDateTime>| match (a, b) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(a), Some(b)) => a > b,
    };
    let lt = |a: Option<OffsetDateTime>, b: Option<OffsetDateTime>| match (a, b) {
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

/// Compares two values as `ct`.
#[inline(always)]
pub(crate) fn compare_values(
    left: ValueRef<'_>,
    right: ValueRef<'_>,
    ct: Ct,
    op: Op,
    usage: i64,
) -> bool {
    match ct {
        Ct::String => compare_str(left.raw, right.raw, op),
        Ct::Int => {
            let left = if usage > 0 {
                left.int.wrapping_add(usage)
            } else {
                left.int
            };
            compare_int(left, right.int, op)
        }
        Ct::Bool => compare_bool(left.boolean, right.boolean, op),
        Ct::Date => compare_date(left.date, right.date, op),
        Ct::Unknown => false,
    }
}

/// Which entity a compiled trait condition reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entity {
    Company,
    User,
}

/// A condition in evaluation form.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    /// Can never match (unknown type or missing required fields).
    Never,
    CompanyId {
        ids: IdSet,
        negate: bool,
    },
    UserId {
        ids: IdSet,
        negate: bool,
    },
    Plan {
        ids: IdSet,
        negate: bool,
    },
    PlanVersion {
        ids: IdSet,
        negate: bool,
    },
    BillingProduct {
        ids: IdSet,
        negate: bool,
    },
    BasePlan {
        ids: IdSet,
        op: Op,
    },
    Metric {
        /// [`metric_key`] of subtype, period and reset.
        key: u64,
        subtype: HStr,
        period: MetricPeriod,
        reset: MonthReset,
        op: Op,
        value: i64,
        comparison: Option<HStr>,
    },
    Trait {
        entity: Entity,
        def: HStr,
        def_type: Ct,
        op: Op,
        literal: Value,
        comparison: Option<HStr>,
    },
    Credit {
        credit: HStr,
        subtype: Option<HStr>,
        rate: f64,
    },
}

fn id_set(condition: &Condition) -> IdSet {
    IdSet::new(condition.resource_ids.iter().map(String::as_str))
}

impl Cond {
    pub(crate) fn compile(c: &Condition) -> Self {
        let negate = c.operator == Operator::Ne;
        match &c.condition_type {
            ConditionType::Company => Self::CompanyId {
                ids: id_set(c),
                negate,
            },
            ConditionType::User => Self::UserId {
                ids: id_set(c),
                negate,
            },
            ConditionType::Plan => Self::Plan {
                ids: id_set(c),
                negate,
            },
            ConditionType::PlanVersion => Self::PlanVersion {
                ids: id_set(c),
                negate,
            },
            ConditionType::BillingProduct => Self::BillingProduct {
                ids: id_set(c),
                negate,
            },
            ConditionType::BasePlan => Self::BasePlan {
                ids: id_set(c),
                op: Op::from(&c.operator),
            },
            ConditionType::Metric => match (&c.event_subtype, c.metric_value) {
                (Some(subtype), Some(value)) => {
                    let subtype = HStr::new(subtype);
                    let period = c.metric_period.clone().unwrap_or_default();
                    let reset = c.metric_period_month_reset.clone().unwrap_or_default();
                    Self::Metric {
                        key: metric_key(subtype.hash, &period, &reset),
                        subtype,
                        period,
                        reset,
                        op: Op::from(&c.operator),
                        value,
                        comparison: c
                            .comparison_trait_definition
                            .as_ref()
                            .map(|d| HStr::new(&d.id)),
                    }
                }
                _ => Self::Never,
            },
            ConditionType::Trait => {
                let Some(def) = &c.trait_definition else {
                    return Self::Never;
                };
                let entity = match def.entity_type {
                    EntityType::Company => Entity::Company,
                    EntityType::User => Entity::User,
                    EntityType::Other(_) => return Self::Never,
                };
                Self::Trait {
                    entity,
                    def: HStr::new(&def.id),
                    def_type: Ct::from(&def.comparable_type),
                    op: Op::from(&c.operator),
                    literal: Value::new(&c.trait_value),
                    comparison: c
                        .comparison_trait_definition
                        .as_ref()
                        .map(|d| HStr::new(&d.id)),
                }
            }
            ConditionType::Credit => match &c.credit_id {
                Some(credit) => Self::Credit {
                    credit: HStr::new(credit),
                    subtype: c.event_subtype.as_deref().map(HStr::new),
                    rate: c.consumption_rate.unwrap_or(1.0),
                },
                None => Self::Never,
            },
            ConditionType::Other(_) => Self::Never,
        }
    }
}

/// A company id set a condition can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetKind {
    Plan = 0,
    PlanVersion = 1,
    BillingProduct = 2,
}

/// `company` / `user` id condition.
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
    pub(crate) ids: IdSet,
    pub(crate) negate: bool,
}

/// `base_plan` condition.
#[derive(Debug, Clone)]
pub(crate) struct BasePlanCond {
    pub(crate) ids: IdSet,
    pub(crate) op: Op,
}

/// `metric` condition.
#[derive(Debug, Clone)]
pub(crate) struct MetricCond {
    /// [`metric_key`] of subtype, period and reset.
    pub(crate) key: u64,
    pub(crate) subtype: HStr,
    pub(crate) period: MetricPeriod,
    pub(crate) reset: MonthReset,
    pub(crate) op: Op,
    pub(crate) value: i64,
    pub(crate) comparison: Option<HStr>,
}

/// `trait` condition.
#[derive(Debug, Clone)]
pub(crate) struct TraitCond {
    pub(crate) entity: Entity,
    pub(crate) def: HStr,
    pub(crate) def_type: Ct,
    pub(crate) op: Op,
    pub(crate) literal: Value,
    pub(crate) comparison: Option<HStr>,
}

/// `credit` condition.
#[derive(Debug, Clone)]
pub(crate) struct CreditCond {
    pub(crate) credit: HStr,
    pub(crate) subtype: Option<HStr>,
    pub(crate) rate: f64,
}

/// A list of conditions split by kind, so evaluation runs one tight loop per
/// kind instead of dispatching on every condition. Conditions have no side
/// effects, so AND and OR results do not depend on the order of evaluation.
#[derive(Debug, Clone, Default)]
pub(crate) struct CondSet {
    /// Number of conditions that can never match.
    pub(crate) never: u32,
    pub(crate) entity_ids: Box<[EntityIdCond]>,
    pub(crate) sets: Box<[SetCond]>,
    pub(crate) base_plans: Box<[BasePlanCond]>,
    pub(crate) metrics: Box<[MetricCond]>,
    pub(crate) traits: Box<[TraitCond]>,
    pub(crate) credits: Box<[CreditCond]>,
}

impl CondSet {
    pub(crate) fn new<'a>(conditions: impl IntoIterator<Item = &'a Condition>) -> Self {
        let mut never = 0;
        let (mut entity_ids, mut sets, mut base_plans) = (Vec::new(), Vec::new(), Vec::new());
        let (mut metrics, mut traits, mut credits) = (Vec::new(), Vec::new(), Vec::new());
        for c in conditions {
            match Cond::compile(c) {
                Cond::Never => never += 1,
                Cond::CompanyId { ids, negate } => entity_ids.push(EntityIdCond {
                    user: false,
                    ids,
                    negate,
                }),
                Cond::UserId { ids, negate } => entity_ids.push(EntityIdCond {
                    user: true,
                    ids,
                    negate,
                }),
                Cond::Plan { ids, negate } => sets.push(SetCond {
                    kind: SetKind::Plan,
                    ids,
                    negate,
                }),
                Cond::PlanVersion { ids, negate } => sets.push(SetCond {
                    kind: SetKind::PlanVersion,
                    ids,
                    negate,
                }),
                Cond::BillingProduct { ids, negate } => sets.push(SetCond {
                    kind: SetKind::BillingProduct,
                    ids,
                    negate,
                }),
                Cond::BasePlan { ids, op } => base_plans.push(BasePlanCond { ids, op }),
                Cond::Metric {
                    key,
                    subtype,
                    period,
                    reset,
                    op,
                    value,
                    comparison,
                } => metrics.push(MetricCond {
                    key,
                    subtype,
                    period,
                    reset,
                    op,
                    value,
                    comparison,
                }),
                Cond::Trait {
                    entity,
                    def,
                    def_type,
                    op,
                    literal,
                    comparison,
                } => traits.push(TraitCond {
                    entity,
                    def,
                    def_type,
                    op,
                    literal,
                    comparison,
                }),
                Cond::Credit {
                    credit,
                    subtype,
                    rate,
                } => credits.push(CreditCond {
                    credit,
                    subtype,
                    rate,
                }),
            }
        }
        Self {
            never,
            entity_ids: entity_ids.into_boxed_slice(),
            sets: sets.into_boxed_slice(),
            base_plans: base_plans.into_boxed_slice(),
            metrics: metrics.into_boxed_slice(),
            traits: traits.into_boxed_slice(),
            credits: credits.into_boxed_slice(),
        }
    }
}

/// How a matched entitlement rule reports usage and allocation.
#[derive(Debug, Clone)]
pub(crate) enum UsageSpec {
    Metric {
        key: u64,
        subtype: HStr,
        period: MetricPeriod,
        reset: MonthReset,
        /// Whether the condition named a period (a reset time is reported only then).
        has_period: bool,
        allocation: i64,
        comparison: Option<HStr>,
    },
    /// A metric condition without an event subtype.
    MetricNoSubtype {
        period: MetricPeriod,
        has_period: bool,
        reset: MonthReset,
        allocation: i64,
        comparison: Option<HStr>,
    },
    Trait {
        def: Option<HStr>,
        allocation: i64,
        comparison: Option<HStr>,
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
            .map(|d| HStr::new(&d.id));
        Some(if c.condition_type == ConditionType::Metric {
            let period = c.metric_period.clone().unwrap_or_default();
            let reset = c.metric_period_month_reset.clone().unwrap_or_default();
            let has_period = c.metric_period.is_some();
            let allocation = c.metric_value.unwrap_or(0);
            match &c.event_subtype {
                Some(subtype) => Self::Metric {
                    key: metric_key(hash_str(subtype), &period, &reset),
                    subtype: HStr::new(subtype),
                    period,
                    reset,
                    has_period,
                    allocation,
                    comparison,
                },
                None => Self::MetricNoSubtype {
                    period,
                    has_period,
                    reset,
                    allocation,
                    comparison,
                },
            }
        } else {
            Self::Trait {
                def: c.trait_definition.as_ref().map(|d| HStr::new(&d.id)),
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
    by_flag: Box<[(HStr, u32, u32)]>,
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
                by_flag.push((HStr::new(flag_id), start, end));
            }
        }
        Self {
            rules: all.into_boxed_slice(),
            by_flag: by_flag.into_boxed_slice(),
        }
    }

    #[inline]
    pub(crate) fn for_flag(&self, flag_id: &HStr) -> &[CompiledRule] {
        for (id, start, end) in &*self.by_flag {
            if id.hash == flag_id.hash && str_eq(&id.text, &flag_id.text) {
                return &self.rules[*start as usize..*end as usize];
            }
        }
        &[]
    }
}

/// A trait of a company or user in evaluation form.
#[derive(Debug, Clone)]
pub(crate) struct PreparedTrait {
    pub(crate) def_id: Box<str>,
    pub(crate) ct: Ct,
    pub(crate) value: Value,
}

/// Traits indexed by definition id.
#[derive(Debug, Clone, Default)]
pub(crate) struct TraitTable {
    index: HashIndex,
    traits: Box<[PreparedTrait]>,
}

impl TraitTable {
    fn new(traits: &[Trait]) -> Self {
        let index = HashIndex::new(
            traits
                .iter()
                .map(|t| t.trait_definition.as_ref().map(|d| d.id.as_str())),
        );
        let traits = traits
            .iter()
            .map(|t| {
                let (def_id, ct) = match &t.trait_definition {
                    Some(d) => (d.id.as_str(), Ct::from(&d.comparable_type)),
                    None => ("", Ct::String),
                };
                PreparedTrait {
                    def_id: def_id.into(),
                    ct,
                    value: Value::new(&t.value),
                }
            })
            .collect();
        Self { index, traits }
    }

    #[inline(always)]
    pub(crate) fn find(&self, def: &HStr) -> Option<&PreparedTrait> {
        let traits = &self.traits;
        self.index
            .find(def.hash, |p| str_eq(&traits[p].def_id, &def.text))
            .map(|p| &traits[p])
    }
}

/// A company prepared once for many flag checks: ids hashed, traits parsed
/// and indexed, company rules compiled and grouped by flag.
///
/// Build it with [`PreparedCompany::new`] (or `From<Company>`) whenever the
/// company data changes; checks borrow it.
#[derive(Clone)]
pub struct PreparedCompany {
    pub(crate) company: Company,
    pub(crate) id_hash: u64,
    /// Plan, plan version and billing product ids, indexed by [`SetKind`].
    pub(crate) sets: [IdList; 3],
    pub(crate) base_plan: Option<u64>,
    pub(crate) traits: TraitTable,
    pub(crate) metrics: HashIndex,
    pub(crate) credit_ids: Box<[Box<str>]>,
    pub(crate) credit_values: Box<[f64]>,
    pub(crate) credits: HashIndex,
    pub(crate) entitlements: HashIndex,
    pub(crate) rules: ScopedRules,
}

/// A company's ids with their hashes.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdList {
    pub(crate) hashes: Box<[u64]>,
    pub(crate) texts: Box<[Box<str>]>,
}

impl IdList {
    fn new(ids: &[String]) -> Self {
        Self {
            hashes: ids.iter().map(|s| hash_str(s)).collect(),
            texts: ids.iter().map(|s| s.as_str().into()).collect(),
        }
    }

    #[inline(always)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, &str)> {
        self.hashes
            .iter()
            .copied()
            .zip(self.texts.iter().map(|t| &**t))
    }
}

impl PreparedCompany {
    /// Prepares `company` for evaluation.
    pub fn new(company: Company) -> Self {
        let credit_ids: Box<[Box<str>]> = company
            .credit_balances
            .keys()
            .map(|k| k.as_str().into())
            .collect();
        let credit_values: Box<[f64]> = company.credit_balances.values().copied().collect();
        Self {
            id_hash: hash_str(&company.id),
            sets: [
                IdList::new(&company.plan_ids),
                IdList::new(&company.plan_version_ids),
                IdList::new(&company.billing_product_ids),
            ],
            base_plan: company.base_plan_id.as_deref().map(hash_str),
            traits: TraitTable::new(&company.traits),
            metrics: HashIndex::from_hashes(
                company
                    .metrics
                    .iter()
                    .map(|m| metric_key(hash_str(&m.event_subtype), &m.period, &m.month_reset)),
            ),
            credits: HashIndex::new(credit_ids.iter().map(|k| Some(&**k))),
            credit_ids,
            credit_values,
            entitlements: HashIndex::new(
                company
                    .entitlements
                    .iter()
                    .map(|e| Some(e.feature_key.as_str())),
            ),
            rules: ScopedRules::new(&company.rules),
            company,
        }
    }

    /// Parses a company from platform JSON and prepares it.
    pub fn from_json(json: &str) -> Result<Self, super::RulesError> {
        Ok(Self::new(serde_json::from_str(json)?))
    }

    /// The company data.
    pub fn company(&self) -> &Company {
        &self.company
    }

    /// Gives the company data back.
    pub fn into_inner(self) -> Company {
        self.company
    }

    /// The company id.
    pub fn id(&self) -> &str {
        &self.company.id
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
        self.metric(
            metric_key(hash_str(event_subtype), period, month_reset),
            event_subtype,
            period,
            month_reset,
            now,
        )
    }

    #[inline(always)]
    pub(crate) fn metric(
        &self,
        key: u64,
        event_subtype: &str,
        period: &MetricPeriod,
        month_reset: &MonthReset,
        now: OffsetDateTime,
    ) -> i64 {
        let metrics = &self.company.metrics;
        self.metrics
            .find(key, |p| {
                let m = &metrics[p];
                str_eq(&m.event_subtype, event_subtype)
                    && m.period == *period
                    && m.month_reset == *month_reset
            })
            .map_or(0, |p| {
                let m = &metrics[p];
                match m.valid_until {
                    Some(until) if until <= now => 0,
                    _ => m.value,
                }
            })
    }

    /// The balance of `credit_id`, or 0.
    #[inline]
    pub fn credit_balance(&self, credit_id: &str) -> f64 {
        self.credit(hash_str(credit_id), credit_id)
    }

    #[inline(always)]
    pub(crate) fn credit(&self, hash: u64, credit_id: &str) -> f64 {
        let ids = &self.credit_ids;
        self.credits
            .find(hash, |p| str_eq(&ids[p], credit_id))
            .map_or(0.0, |p| self.credit_values[p])
    }

    /// The entitlement whose `feature_key` is `flag_key`.
    #[inline]
    pub(crate) fn entitlement(&self, hash: u64, flag_key: &str) -> Option<&FeatureEntitlement> {
        let ents = &self.company.entitlements;
        self.entitlements
            .find(hash, |p| str_eq(&ents[p].feature_key, flag_key))
            .map(|p| &ents[p])
    }

    pub(crate) fn subscription(&self) -> Option<&Subscription> {
        self.company.subscription.as_ref()
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
            .field("company", &self.company)
            .finish_non_exhaustive()
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
        let d = parse_date("2024-01-01");
        assert!(!compare_date(None, d, Op::Gt));
        assert!(compare_date(None, d, Op::Lt));
        assert!(!compare_date(None, None, Op::Lt));
        assert!(compare_date(None, None, Op::Eq));
        assert!(compare_date(None, None, Op::Lte));
        assert!(compare_date(d, None, Op::Gt));
        assert!(!compare_date(d, None, Op::Lt));
    }
}
