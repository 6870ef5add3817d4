//! Schematic webhook bodies.

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A Schematic webhook delivery:
/// `{action, account_id, environment_id, object_type, body, …}`.
///
/// ```
/// use flagwire_webhooks::payload::schematic::{Action, WebhookEvent};
///
/// let body = br#"{"action":"company.created","account_id":"acct_123","environment_id":"env_456","body":{},"object_type":"company"}"#;
/// let event: WebhookEvent = serde_json::from_slice(body).unwrap();
/// assert_eq!(event.action, Action::CompanyCreated);
/// assert_eq!(event.object_type, "company");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEvent {
    /// What happened.
    pub action: Action,
    /// The Schematic account.
    pub account_id: String,
    /// The environment.
    pub environment_id: String,
    /// The kind of object in `body`, such as `company`.
    #[serde(default)]
    pub object_type: String,
    /// The object, as JSON; its shape depends on `object_type`.
    #[serde(default)]
    pub body: Value,
    /// The company concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_id: Option<String>,
    /// The feature concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_id: Option<String>,
}

macro_rules! actions {
    ($($variant:ident => $wire:literal,)*) => {
        /// The `action` of a Schematic webhook. Open: unknown actions are
        /// kept in [`Action::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Action {
            $(
                #[doc = concat!("`", $wire, "`")]
                $variant,
            )*
            /// Any other action, kept as sent.
            Other(String),
        }

        impl Action {
            /// The wire name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Action::$variant => $wire,)*
                    Action::Other(other) => other,
                }
            }

            /// The action for a wire name.
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $($wire => Action::$variant,)*
                    other => Action::Other(other.to_owned()),
                }
            }
        }
    };
}

actions! {
    CompanyCreated => "company.created",
    CompanyUpdated => "company.updated",
    CompanyDeleted => "company.deleted",
    CompanyPlanChanged => "company.plan_changed",
    CompanyScheduledDowngrade => "company.scheduled_downgrade",
    CompanyOverrideCreated => "company.override.created",
    CompanyOverrideUpdated => "company.override.updated",
    CompanyOverrideDeleted => "company.override.deleted",
    CompanyOverrideExpired => "company.override.expired",
    UserCreated => "user.created",
    UserUpdated => "user.updated",
    UserDeleted => "user.deleted",
    FlagCreated => "flag.created",
    FlagUpdated => "flag.updated",
    FlagDeleted => "flag.deleted",
    FlagRulesUpdated => "flag_rules.updated",
    RuleDeleted => "rule.deleted",
    PlanVersionDeleted => "plan_version.deleted",
    SubscriptionTrialEnded => "subscription.trial.ended",
    EntitlementLimitReached => "entitlement.limit.reached",
    EntitlementLimitWarning => "entitlement.limit.warning",
    CreditPurchaseSuccess => "credit.purchase.success",
    AutoTopupSuccess => "auto.topup.success",
    AutoTopupHardFailure => "auto.topup.hard.failure",
    AutoTopupRetryExceeded => "auto.topup.retry.exceeded",
    TestSend => "test.send",
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Action::from_wire(&s))
    }
}
