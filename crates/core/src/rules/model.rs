//! The platform's rules-engine data model: flags, rules, conditions,
//! companies and users.
//!
//! Every struct deserializes from the platform JSON with either snake_case or
//! camelCase field names (an object carrying both spellings of one field is
//! rejected as a duplicate field). Absent fields take their defaults and a
//! `null` collection or string is treated as empty. Enumerated strings
//! (rule type, condition type, operator, comparable type, ...) are *open*:
//! a value this version does not know deserializes to an `Other` variant
//! instead of failing, and the engine treats it as "never matches" (see
//! [`crate::rules`] for the exact rules). Serialization always uses the
//! snake_case names; the fields added for newer engines (quantity rates,
//! warning tiers, postpaid settings, spend policies) are omitted when empty,
//! so documents without them serialize as before.
//!
//! Credit postpaid settings ([`CreditPostpaidConfig`]) and spend policies
//! ([`CreditSpendPolicy`]) are carried, not evaluated: the platform does not
//! document their semantics, so flagwire keeps them through parsing, merging
//! and serialization and never lets them change a verdict.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use time::OffsetDateTime;

/// Deserializes `null` as the type's default (an empty collection or string).
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident, default = $default:expr, expecting = $expecting:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version of the engine does not know, kept verbatim.
            Other(Box<str>),
        }

        impl $name {
            /// The wire spelling of this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Other(text) => text,
                }
            }

            /// Parses a wire value; unknown values become [`Self::Other`].
            pub fn from_wire(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )*
                    other => Self::Other(other.into()),
                }
            }

            /// Whether this is a value the engine knows (not [`Self::Other`]).
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $default
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self::from_wire(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::from_wire(v))
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<$name, E> {
                        Ok($name::default())
                    }
                }
                deserializer.deserialize_any(V)
            }
        }
    };
}

open_enum! {
    /// The kind of a rule; it decides the order in which rules are tried.
    RuleType, default = RuleType::Other("".into()), expecting = "a rule type string" {
        /// A global on/off toggle; always matches.
        GlobalOverride => "global_override",
        /// A per-company override.
        CompanyOverride => "company_override",
        /// A plan entitlement.
        PlanEntitlement => "plan_entitlement",
        /// A company override that applies once usage is exceeded.
        CompanyOverrideUsageExceeded => "company_override_usage_exceeded",
        /// A plan entitlement that applies once usage is exceeded.
        PlanEntitlementUsageExceeded => "plan_entitlement_usage_exceeded",
        /// A targeting rule ordered by priority.
        Standard => "standard",
        /// The flag's default rule; always matches.
        Default => "default",
    }
}

impl RuleType {
    /// The rule type as it appears in reason strings: the wire value with
    /// underscores replaced by spaces. Unknown types yield `None` (the caller
    /// formats them itself).
    pub fn display_name(&self) -> Option<&'static str> {
        Some(match self {
            Self::GlobalOverride => "global override",
            Self::CompanyOverride => "company override",
            Self::PlanEntitlement => "plan entitlement",
            Self::CompanyOverrideUsageExceeded => "company override usage exceeded",
            Self::PlanEntitlementUsageExceeded => "plan entitlement usage exceeded",
            Self::Standard => "standard",
            Self::Default => "default",
            Self::Other(_) => return None,
        })
    }

    /// Whether a match of this rule type reports entitlement usage fields.
    pub fn is_entitlement(&self) -> bool {
        matches!(
            self,
            Self::CompanyOverride
                | Self::PlanEntitlement
                | Self::CompanyOverrideUsageExceeded
                | Self::PlanEntitlementUsageExceeded
        )
    }
}

open_enum! {
    /// What a condition tests.
    ConditionType, default = ConditionType::Other("".into()), expecting = "a condition type string" {
        /// The company's id is (not) one of `resource_ids`.
        Company => "company",
        /// The user's id is (not) one of `resource_ids`.
        User => "user",
        /// One of the company's plans is (not) in `resource_ids`.
        Plan => "plan",
        /// The company's base plan.
        BasePlan => "base_plan",
        /// One of the company's plan versions is (not) in `resource_ids`.
        PlanVersion => "plan_version",
        /// One of the company's billing products is (not) in `resource_ids`.
        BillingProduct => "billing_product",
        /// A company usage metric compared with a number.
        Metric => "metric",
        /// A company or user trait compared with a value.
        Trait => "trait",
        /// A company credit balance covers the cost.
        Credit => "credit",
    }
}

open_enum! {
    /// A comparison operator.
    Operator, default = Operator::Other("".into()), expecting = "an operator string" {
        /// Equal.
        Eq => "eq",
        /// Not equal.
        Ne => "ne",
        /// Greater than.
        Gt => "gt",
        /// Greater than or equal.
        Gte => "gte",
        /// Less than.
        Lt => "lt",
        /// Less than or equal.
        Lte => "lte",
        /// The value is empty.
        IsEmpty => "is_empty",
        /// The value is not empty.
        NotEmpty => "not_empty",
    }
}

open_enum! {
    /// How trait values are compared. Absent means `string`.
    ComparableType, default = ComparableType::String, expecting = "a comparable type string" {
        /// Byte-wise lexicographic comparison.
        String => "string",
        /// Signed 64-bit integers; unparsable values count as 0.
        Int => "int",
        /// `"true"` is true, anything else false.
        Bool => "bool",
        /// Dates in one of the accepted layouts; unparsable values are "nil".
        Date => "date",
    }
}

open_enum! {
    /// Which entity a trait definition belongs to.
    EntityType, default = EntityType::Other("".into()), expecting = "an entity type string" {
        /// A company trait.
        Company => "company",
        /// A user trait.
        User => "user",
    }
}

open_enum! {
    /// The period a usage metric covers. Absent means all time.
    MetricPeriod, default = MetricPeriod::AllTime, expecting = "a metric period string" {
        /// Since the beginning.
        AllTime => "all_time",
        /// Since midnight UTC.
        CurrentDay => "current_day",
        /// Since Sunday midnight UTC.
        CurrentWeek => "current_week",
        /// Since the start of the month (calendar or billing cycle).
        CurrentMonth => "current_month",
    }
}

open_enum! {
    /// When a monthly metric period restarts. Absent means the first of the month.
    MonthReset, default = MonthReset::FirstOfMonth, expecting = "a month reset string" {
        /// The first day of the calendar month, midnight UTC.
        FirstOfMonth => "first_of_month",
        /// The company subscription's billing cycle.
        BillingCycle => "billing_cycle",
    }
}

/// A feature flag with its targeting rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Flag {
    /// Flag id.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Flag key, the name callers check.
    #[serde(default, deserialize_with = "null_default")]
    pub key: String,
    /// Owning account.
    #[serde(default, alias = "accountId", deserialize_with = "null_default")]
    pub account_id: String,
    /// Owning environment.
    #[serde(default, alias = "environmentId", deserialize_with = "null_default")]
    pub environment_id: String,
    /// Value returned when no rule matches.
    #[serde(default, alias = "defaultValue", deserialize_with = "null_default")]
    pub default_value: bool,
    /// Targeting rules, in any order.
    #[serde(default, deserialize_with = "null_default")]
    pub rules: Vec<Rule>,
}

impl Flag {
    /// A flag with the given id and key, no rules and a `false` default.
    pub fn new(id: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            key: key.into(),
            ..Self::default()
        }
    }

    /// Sets the default value.
    #[must_use]
    pub fn with_default_value(mut self, value: bool) -> Self {
        self.default_value = value;
        self
    }

    /// Appends a rule.
    #[must_use]
    pub fn with_rule(mut self, rule: Rule) -> Self {
        self.rules.push(rule);
        self
    }
}

/// One targeting rule of a flag (or a company/user override).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Rule {
    /// Rule id.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Display name, used in the reason string.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Owning account.
    #[serde(default, alias = "accountId", deserialize_with = "null_default")]
    pub account_id: String,
    /// Owning environment.
    #[serde(default, alias = "environmentId", deserialize_with = "null_default")]
    pub environment_id: String,
    /// The rule type.
    #[serde(default, alias = "ruleType")]
    pub rule_type: RuleType,
    /// The flag this rule belongs to; company and user rules only apply to
    /// the flag with this id.
    #[serde(default, alias = "flagId", skip_serializing_if = "Option::is_none")]
    pub flag_id: Option<String>,
    /// Ordering of `standard` rules: lower first.
    #[serde(default, deserialize_with = "null_default")]
    pub priority: i64,
    /// The flag value when this rule matches.
    #[serde(default, deserialize_with = "null_default")]
    pub value: bool,
    /// Conditions that must all match.
    #[serde(default, deserialize_with = "null_default")]
    pub conditions: Vec<Condition>,
    /// Groups that must each have at least one matching condition.
    #[serde(default, alias = "conditionGroups", deserialize_with = "null_default")]
    pub condition_groups: Vec<ConditionGroup>,
}

impl Rule {
    /// A rule with the given id, name, type and value, no conditions and priority 0.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        rule_type: RuleType,
        value: bool,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            rule_type,
            value,
            ..Self::default()
        }
    }

    /// Sets the priority.
    #[must_use]
    pub fn with_priority(mut self, priority: i64) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the flag id.
    #[must_use]
    pub fn with_flag_id(mut self, flag_id: impl Into<String>) -> Self {
        self.flag_id = Some(flag_id.into());
        self
    }

    /// Appends a condition.
    #[must_use]
    pub fn with_condition(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Appends a condition group.
    #[must_use]
    pub fn with_group(mut self, conditions: Vec<Condition>) -> Self {
        self.condition_groups.push(ConditionGroup { conditions });
        self
    }
}

/// A set of conditions of which at least one must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConditionGroup {
    /// The alternatives.
    #[serde(default, deserialize_with = "null_default")]
    pub conditions: Vec<Condition>,
}

impl ConditionGroup {
    /// A group of the given alternatives.
    pub fn new(conditions: Vec<Condition>) -> Self {
        Self { conditions }
    }
}

/// Identifies a trait and how its values compare.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TraitDefinition {
    /// Trait definition id; traits are matched by this id.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// How values compare; absent means `string`.
    #[serde(default, alias = "comparableType")]
    pub comparable_type: ComparableType,
    /// Whether the trait lives on the company or the user.
    #[serde(default, alias = "entityType")]
    pub entity_type: EntityType,
}

impl TraitDefinition {
    /// A definition with the given id, comparable type and entity type.
    pub fn new(
        id: impl Into<String>,
        comparable_type: ComparableType,
        entity_type: EntityType,
    ) -> Self {
        Self {
            id: id.into(),
            comparable_type,
            entity_type,
        }
    }
}

/// One condition of a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Condition {
    /// Condition id.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Owning account.
    #[serde(default, alias = "accountId", deserialize_with = "null_default")]
    pub account_id: String,
    /// Owning environment.
    #[serde(default, alias = "environmentId", deserialize_with = "null_default")]
    pub environment_id: String,
    /// What the condition tests.
    #[serde(default, alias = "conditionType")]
    pub condition_type: ConditionType,
    /// How it compares.
    #[serde(default)]
    pub operator: Operator,
    /// Ids for company, user, plan, base plan, plan version and billing product conditions.
    #[serde(
        default,
        alias = "resourceIds",
        alias = "resourceIDs",
        deserialize_with = "null_default"
    )]
    pub resource_ids: Vec<String>,
    /// The trait a trait condition tests.
    #[serde(
        default,
        alias = "traitDefinition",
        skip_serializing_if = "Option::is_none"
    )]
    pub trait_definition: Option<TraitDefinition>,
    /// The literal right-hand side of a trait condition.
    #[serde(default, alias = "traitValue", deserialize_with = "null_default")]
    pub trait_value: String,
    /// A trait whose value replaces the right-hand side (trait and metric conditions).
    #[serde(
        default,
        alias = "comparisonTraitDefinition",
        skip_serializing_if = "Option::is_none"
    )]
    pub comparison_trait_definition: Option<TraitDefinition>,
    /// The event subtype of a metric (or credit) condition.
    #[serde(
        default,
        alias = "eventSubtype",
        skip_serializing_if = "Option::is_none"
    )]
    pub event_subtype: Option<String>,
    /// The right-hand side of a metric condition.
    #[serde(
        default,
        alias = "metricValue",
        skip_serializing_if = "Option::is_none"
    )]
    pub metric_value: Option<i64>,
    /// The period of the metric; absent means all time.
    #[serde(
        default,
        alias = "metricPeriod",
        skip_serializing_if = "Option::is_none"
    )]
    pub metric_period: Option<MetricPeriod>,
    /// When a monthly metric resets; absent means the first of the month.
    #[serde(
        default,
        alias = "metricPeriodMonthReset",
        skip_serializing_if = "Option::is_none"
    )]
    pub metric_period_month_reset: Option<MonthReset>,
    /// The credit a credit condition tests.
    #[serde(
        default,
        alias = "creditId",
        alias = "creditID",
        skip_serializing_if = "Option::is_none"
    )]
    pub credit_id: Option<String>,
    /// Credits consumed per unit; absent means 1.
    #[serde(
        default,
        alias = "consumptionRate",
        skip_serializing_if = "Option::is_none"
    )]
    pub consumption_rate: Option<f64>,
    /// Credits consumed per unit of each named quantity (for example
    /// `input_tokens`) of a credit condition; used with preflight
    /// [`event_quantities`](super::CheckOptions::event_quantities).
    #[serde(
        default,
        alias = "quantityRates",
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub quantity_rates: BTreeMap<String, f64>,
}

impl Condition {
    fn ids(condition_type: ConditionType, operator: Operator, ids: &[&str]) -> Self {
        Self {
            condition_type,
            operator,
            resource_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            ..Self::default()
        }
    }

    /// A `company` condition: the company id is (`eq`) or is not (`ne`) one of `ids`.
    pub fn company(operator: Operator, ids: &[&str]) -> Self {
        Self::ids(ConditionType::Company, operator, ids)
    }

    /// A `user` condition.
    pub fn user(operator: Operator, ids: &[&str]) -> Self {
        Self::ids(ConditionType::User, operator, ids)
    }

    /// A `plan` condition.
    pub fn plan(operator: Operator, ids: &[&str]) -> Self {
        Self::ids(ConditionType::Plan, operator, ids)
    }

    /// A `base_plan` condition.
    pub fn base_plan(operator: Operator, ids: &[&str]) -> Self {
        Self::ids(ConditionType::BasePlan, operator, ids)
    }

    /// A `plan_version` condition.
    pub fn plan_version(operator: Operator, ids: &[&str]) -> Self {
        Self::ids(ConditionType::PlanVersion, operator, ids)
    }

    /// A `billing_product` condition.
    pub fn billing_product(operator: Operator, ids: &[&str]) -> Self {
        Self::ids(ConditionType::BillingProduct, operator, ids)
    }

    /// A `trait` condition comparing the trait `definition` with `value`.
    pub fn trait_value(
        definition: TraitDefinition,
        operator: Operator,
        value: impl Into<String>,
    ) -> Self {
        Self {
            condition_type: ConditionType::Trait,
            operator,
            trait_definition: Some(definition),
            trait_value: value.into(),
            ..Self::default()
        }
    }

    /// A `metric` condition comparing the company metric for `event_subtype`
    /// over `period` with `value`.
    pub fn metric(
        event_subtype: impl Into<String>,
        period: MetricPeriod,
        month_reset: Option<MonthReset>,
        operator: Operator,
        value: i64,
    ) -> Self {
        Self {
            condition_type: ConditionType::Metric,
            operator,
            event_subtype: Some(event_subtype.into()),
            metric_value: Some(value),
            metric_period: Some(period),
            metric_period_month_reset: month_reset,
            ..Self::default()
        }
    }

    /// A `credit` condition: the balance of `credit_id` covers the cost.
    pub fn credit(credit_id: impl Into<String>, consumption_rate: Option<f64>) -> Self {
        Self {
            condition_type: ConditionType::Credit,
            operator: Operator::Gte,
            credit_id: Some(credit_id.into()),
            consumption_rate,
            ..Self::default()
        }
    }

    /// Sets the id.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the comparison trait definition.
    #[must_use]
    pub fn with_comparison_trait(mut self, definition: TraitDefinition) -> Self {
        self.comparison_trait_definition = Some(definition);
        self
    }

    /// Sets the event subtype.
    #[must_use]
    pub fn with_event_subtype(mut self, event_subtype: impl Into<String>) -> Self {
        self.event_subtype = Some(event_subtype.into());
        self
    }

    /// Sets the credits consumed per unit of the quantity `name`.
    #[must_use]
    pub fn with_quantity_rate(mut self, name: impl Into<String>, rate: f64) -> Self {
        self.quantity_rates.insert(name.into(), rate);
        self
    }
}

/// A trait value held by a company or user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Trait {
    /// The definition; a trait without one is never found.
    #[serde(
        default,
        alias = "traitDefinition",
        skip_serializing_if = "Option::is_none"
    )]
    pub trait_definition: Option<TraitDefinition>,
    /// The value, always a string on the wire.
    #[serde(default, deserialize_with = "null_default")]
    pub value: String,
}

impl Trait {
    /// A trait with the given definition and value.
    pub fn new(definition: TraitDefinition, value: impl Into<String>) -> Self {
        Self {
            trait_definition: Some(definition),
            value: value.into(),
        }
    }
}

/// A company usage metric for one event subtype and period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CompanyMetric {
    /// Owning account.
    #[serde(default, alias = "accountId", deserialize_with = "null_default")]
    pub account_id: String,
    /// Owning environment.
    #[serde(default, alias = "environmentId", deserialize_with = "null_default")]
    pub environment_id: String,
    /// The company.
    #[serde(default, alias = "companyId", deserialize_with = "null_default")]
    pub company_id: String,
    /// The event subtype counted.
    #[serde(default, alias = "eventSubtype", deserialize_with = "null_default")]
    pub event_subtype: String,
    /// The period covered.
    #[serde(default)]
    pub period: MetricPeriod,
    /// When a monthly period resets.
    #[serde(default, alias = "monthReset")]
    pub month_reset: MonthReset,
    /// The count.
    #[serde(default, deserialize_with = "null_default")]
    pub value: i64,
    /// When the metric was created.
    #[serde(
        default,
        alias = "createdAt",
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<OffsetDateTime>,
    /// The end of the period this value belongs to; at or after this
    /// instant the engine counts the metric as 0.
    #[serde(
        default,
        alias = "validUntil",
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_until: Option<OffsetDateTime>,
}

impl CompanyMetric {
    /// A metric for `event_subtype` over `period` with `value`.
    pub fn new(
        event_subtype: impl Into<String>,
        period: MetricPeriod,
        month_reset: MonthReset,
        value: i64,
    ) -> Self {
        Self {
            event_subtype: event_subtype.into(),
            period,
            month_reset,
            value,
            ..Self::default()
        }
    }
}

/// A company's current billing subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Subscription {
    /// Subscription id.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Start of the current billing period.
    #[serde(alias = "periodStart", with = "time::serde::rfc3339")]
    pub period_start: OffsetDateTime,
    /// End of the current billing period.
    #[serde(alias = "periodEnd", with = "time::serde::rfc3339")]
    pub period_end: OffsetDateTime,
}

impl Subscription {
    /// A subscription with the given id and billing period.
    pub fn new(
        id: impl Into<String>,
        period_start: OffsetDateTime,
        period_end: OffsetDateTime,
    ) -> Self {
        Self {
            id: id.into(),
            period_start,
            period_end,
        }
    }
}

/// A company's entitlement to a feature, reported with a flag check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FeatureEntitlement {
    /// The feature id.
    #[serde(default, alias = "featureId", deserialize_with = "null_default")]
    pub feature_id: String,
    /// The key of the flag tied to the feature; the check attaches the
    /// entitlement whose `feature_key` equals the flag key.
    #[serde(default, alias = "featureKey", deserialize_with = "null_default")]
    pub feature_key: String,
    /// `boolean`, `credit`, `numeric`, `trait`, `unknown` or `unlimited`.
    #[serde(default, alias = "valueType", deserialize_with = "null_default")]
    pub value_type: String,
    /// Allocated amount of a numeric entitlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation: Option<i64>,
    /// Current usage of a numeric entitlement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<i64>,
    /// Soft limit for usage-based pricing.
    #[serde(default, alias = "softLimit", skip_serializing_if = "Option::is_none")]
    pub soft_limit: Option<i64>,
    /// The event tracked for usage.
    #[serde(default, alias = "eventName", skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    /// The event subtype tracked for usage.
    #[serde(
        default,
        alias = "eventSubtype",
        skip_serializing_if = "Option::is_none"
    )]
    pub event_subtype: Option<String>,
    /// The usage period.
    #[serde(
        default,
        alias = "metricPeriod",
        skip_serializing_if = "Option::is_none"
    )]
    pub metric_period: Option<MetricPeriod>,
    /// When a monthly usage period resets.
    #[serde(default, alias = "monthReset", skip_serializing_if = "Option::is_none")]
    pub month_reset: Option<MonthReset>,
    /// When usage resets next.
    #[serde(
        default,
        alias = "metricResetAt",
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub metric_reset_at: Option<OffsetDateTime>,
    /// The credit of a credit-based entitlement.
    #[serde(default, alias = "creditId", skip_serializing_if = "Option::is_none")]
    pub credit_id: Option<String>,
    /// Credits per unit of usage.
    #[serde(
        default,
        alias = "consumptionRate",
        skip_serializing_if = "Option::is_none"
    )]
    pub consumption_rate: Option<f64>,
    /// Credit available for new consumption.
    #[serde(
        default,
        alias = "creditRemaining",
        skip_serializing_if = "Option::is_none"
    )]
    pub credit_remaining: Option<f64>,
    /// Credit held by open leases.
    #[serde(
        default,
        alias = "creditReserved",
        skip_serializing_if = "Option::is_none"
    )]
    pub credit_reserved: Option<f64>,
    /// Balance net of actual consumption.
    #[serde(
        default,
        alias = "creditSettled",
        skip_serializing_if = "Option::is_none"
    )]
    pub credit_settled: Option<f64>,
    /// Total credit.
    #[serde(
        default,
        alias = "creditTotal",
        skip_serializing_if = "Option::is_none"
    )]
    pub credit_total: Option<f64>,
    /// Credit used.
    #[serde(default, alias = "creditUsed", skip_serializing_if = "Option::is_none")]
    pub credit_used: Option<f64>,
    /// Credits per unit of each named quantity, for credit-based features
    /// metered by several quantities.
    #[serde(
        default,
        alias = "quantityRates",
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub quantity_rates: BTreeMap<String, f64>,
    /// Usage thresholds at which the platform warns (carried, not evaluated).
    #[serde(
        default,
        alias = "warningTiers",
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub warning_tiers: Vec<WarningTier>,
}

impl FeatureEntitlement {
    /// An entitlement to the feature `feature_id`, tied to the flag
    /// `feature_key`, of the given value type (`boolean`, `numeric`, ...).
    pub fn new(
        feature_id: impl Into<String>,
        feature_key: impl Into<String>,
        value_type: impl Into<String>,
    ) -> Self {
        Self {
            feature_id: feature_id.into(),
            feature_key: feature_key.into(),
            value_type: value_type.into(),
            ..Self::default()
        }
    }
}

/// A usage threshold of an entitlement at which the platform warns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WarningTier {
    /// The tier's name.
    #[serde(default, deserialize_with = "null_default")]
    pub key: String,
    /// The usage at which the tier starts.
    #[serde(default, deserialize_with = "null_default")]
    pub value: i64,
}

impl WarningTier {
    /// A tier named `key` starting at `value`.
    pub fn new(key: impl Into<String>, value: i64) -> Self {
        Self {
            key: key.into(),
            value,
        }
    }
}

open_enum! {
    /// Whom a credit spend policy applies to.
    SpendPolicyScope, default = SpendPolicyScope::Other("".into()), expecting = "a spend policy scope string" {
        /// The whole company.
        Company => "company",
        /// One user of the company.
        User => "user",
        /// A group of users.
        Group => "group",
    }
}

/// Postpaid settings of one credit of a company: how far the balance may go
/// below zero. Carried for round trips; the engine does not evaluate it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreditPostpaidConfig {
    /// The allowed overdraft, in credits.
    #[serde(
        default,
        alias = "overdraftLimit",
        skip_serializing_if = "Option::is_none"
    )]
    pub overdraft_limit: Option<f64>,
}

impl CreditPostpaidConfig {
    /// Postpaid settings with the given overdraft limit.
    pub fn new(overdraft_limit: Option<f64>) -> Self {
        Self { overdraft_limit }
    }
}

/// The rolling window of a `window` spend policy, e.g. 1 `day`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreditSpendWindow {
    /// The unit (`hour`, `day`, ... as the platform spells it).
    #[serde(default, deserialize_with = "null_default")]
    pub unit: String,
    /// How many units the window spans.
    #[serde(default, deserialize_with = "null_default")]
    pub count: i64,
}

impl CreditSpendWindow {
    /// A window of `count` `unit`s.
    pub fn new(unit: impl Into<String>, count: i64) -> Self {
        Self {
            unit: unit.into(),
            count,
        }
    }
}

/// A limit on how many credits a company, a user or a group may spend.
///
/// The platform's semantics are undocumented (kinds seen: `per_draw`,
/// `window`), so flagwire carries policies unchanged through parsing,
/// merging and serialization and does not evaluate them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreditSpendPolicy {
    /// Policy id.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// The credit limited.
    #[serde(
        default,
        alias = "creditId",
        alias = "creditID",
        deserialize_with = "null_default"
    )]
    pub credit_id: String,
    /// The kind of limit (`per_draw`, `window`, ...).
    #[serde(default, deserialize_with = "null_default")]
    pub kind: String,
    /// Whom the policy applies to.
    #[serde(default)]
    pub scope: SpendPolicyScope,
    /// The limit, in credits.
    #[serde(default, deserialize_with = "null_default")]
    pub limit: f64,
    /// The company of a user-scoped policy.
    #[serde(
        default,
        alias = "companyId",
        alias = "companyID",
        skip_serializing_if = "Option::is_none"
    )]
    pub company_id: Option<String>,
    /// Credits consumed against the limit so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumed: Option<f64>,
    /// Display label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When the consumed amount resets next.
    #[serde(
        default,
        alias = "resetsAt",
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub resets_at: Option<OffsetDateTime>,
    /// The window of a `window` policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<CreditSpendWindow>,
}

impl CreditSpendPolicy {
    /// A policy limiting `credit_id` to `limit` credits.
    pub fn new(
        id: impl Into<String>,
        credit_id: impl Into<String>,
        kind: impl Into<String>,
        scope: SpendPolicyScope,
        limit: f64,
    ) -> Self {
        Self {
            id: id.into(),
            credit_id: credit_id.into(),
            kind: kind.into(),
            scope,
            limit,
            ..Self::default()
        }
    }

    /// Sets the rolling window.
    #[must_use]
    pub fn with_window(mut self, window: CreditSpendWindow) -> Self {
        self.window = Some(window);
        self
    }
}

/// A company as the rules engine sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Company {
    /// Company id.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Owning account.
    #[serde(default, alias = "accountId", deserialize_with = "null_default")]
    pub account_id: String,
    /// Owning environment.
    #[serde(default, alias = "environmentId", deserialize_with = "null_default")]
    pub environment_id: String,
    /// Identifying keys (key name to value).
    #[serde(default, deserialize_with = "null_default")]
    pub keys: BTreeMap<String, String>,
    /// Trait values.
    #[serde(default, deserialize_with = "null_default")]
    pub traits: Vec<Trait>,
    /// Usage metrics.
    #[serde(default, deserialize_with = "null_default")]
    pub metrics: Vec<CompanyMetric>,
    /// Plans the company is on.
    #[serde(
        default,
        alias = "planIds",
        alias = "planIDs",
        deserialize_with = "null_default"
    )]
    pub plan_ids: Vec<String>,
    /// Plan versions the company is on.
    #[serde(
        default,
        alias = "planVersionIds",
        alias = "planVersionIDs",
        deserialize_with = "null_default"
    )]
    pub plan_version_ids: Vec<String>,
    /// The base plan, if any.
    #[serde(
        default,
        alias = "basePlanId",
        alias = "basePlanID",
        skip_serializing_if = "Option::is_none"
    )]
    pub base_plan_id: Option<String>,
    /// Billing products the company has.
    #[serde(
        default,
        alias = "billingProductIds",
        alias = "billingProductIDs",
        deserialize_with = "null_default"
    )]
    pub billing_product_ids: Vec<String>,
    /// Credit balances by credit id.
    #[serde(default, alias = "creditBalances", deserialize_with = "null_default")]
    pub credit_balances: BTreeMap<String, f64>,
    /// Feature entitlements.
    #[serde(default, deserialize_with = "null_default")]
    pub entitlements: Vec<FeatureEntitlement>,
    /// Company-scoped rules; each applies to the flag named by its `flag_id`.
    #[serde(default, deserialize_with = "null_default")]
    pub rules: Vec<Rule>,
    /// The current billing subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Subscription>,
    /// Postpaid settings by credit id (carried, not evaluated).
    #[serde(
        default,
        alias = "creditPostpaid",
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub credit_postpaid: BTreeMap<String, CreditPostpaidConfig>,
    /// Credit spend policies of the company (carried, not evaluated).
    #[serde(
        default,
        alias = "creditSpendPolicies",
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub credit_spend_policies: Vec<CreditSpendPolicy>,
}

impl Company {
    /// A company with the given id and nothing else.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }
}

/// A user as the rules engine sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// User id.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Owning account.
    #[serde(default, alias = "accountId", deserialize_with = "null_default")]
    pub account_id: String,
    /// Owning environment.
    #[serde(default, alias = "environmentId", deserialize_with = "null_default")]
    pub environment_id: String,
    /// Identifying keys (key name to value).
    #[serde(default, deserialize_with = "null_default")]
    pub keys: BTreeMap<String, String>,
    /// Trait values.
    #[serde(default, deserialize_with = "null_default")]
    pub traits: Vec<Trait>,
    /// User-scoped rules; each applies to the flag named by its `flag_id`.
    #[serde(default, deserialize_with = "null_default")]
    pub rules: Vec<Rule>,
    /// Credit spend policies of the user (carried, not evaluated).
    #[serde(
        default,
        alias = "creditSpendPolicies",
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub credit_spend_policies: Vec<CreditSpendPolicy>,
}

impl User {
    /// A user with the given id and nothing else.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }
}
