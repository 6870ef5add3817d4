//! Flagsmith webhook bodies.
//!
//! Two shapes exist:
//!
//! * environment and organisation webhooks wrap their data in an envelope
//!   `{"event_type": …, "data": …}`: [`WebhookEvent`];
//! * the identity-flags integration webhook sends the evaluated flags of one
//!   identity with no envelope: [`IdentityFlags`].
//!
//! Fields that Flagsmith has added over time, or leaves out in some
//! versions, are `Option`s or default to empty.

use core::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The kind of an enveloped Flagsmith webhook.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// `FLAG_UPDATED`
    FlagUpdated,
    /// `FLAG_DELETED`
    FlagDeleted,
    /// `AUDIT_LOG_CREATED` (organisation webhooks only)
    AuditLogCreated,
    /// `NEW_VERSION_PUBLISHED`
    NewVersionPublished,
    /// Any other value, kept as sent.
    Unknown(String),
}

impl EventType {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            EventType::FlagUpdated => "FLAG_UPDATED",
            EventType::FlagDeleted => "FLAG_DELETED",
            EventType::AuditLogCreated => "AUDIT_LOG_CREATED",
            EventType::NewVersionPublished => "NEW_VERSION_PUBLISHED",
            EventType::Unknown(other) => other,
        }
    }

    fn from_wire(s: &str) -> Self {
        match s {
            "FLAG_UPDATED" => EventType::FlagUpdated,
            "FLAG_DELETED" => EventType::FlagDeleted,
            "AUDIT_LOG_CREATED" => EventType::AuditLogCreated,
            "NEW_VERSION_PUBLISHED" => EventType::NewVersionPublished,
            other => EventType::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(EventType::from_wire(&s))
    }
}

/// An enveloped environment or organisation webhook:
/// `{"event_type": …, "data": …}`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// The typed `data`, chosen by `event_type`.
    pub event: Event,
}

impl WebhookEvent {
    /// The event's kind.
    pub fn event_type(&self) -> EventType {
        match &self.event {
            Event::FlagUpdated(_) => EventType::FlagUpdated,
            Event::FlagDeleted(_) => EventType::FlagDeleted,
            Event::AuditLogCreated(_) => EventType::AuditLogCreated,
            Event::NewVersionPublished(_) => EventType::NewVersionPublished,
            Event::Unknown { event_type, .. } => EventType::Unknown(event_type.clone()),
        }
    }
}

/// The data of a [`WebhookEvent`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A flag's state changed.
    FlagUpdated(FlagChange),
    /// A flag was deleted; `new_state` is `None`.
    FlagDeleted(FlagChange),
    /// An audit-log record was written.
    AuditLogCreated(AuditLog),
    /// A new version of a feature's states was published, kept as JSON.
    NewVersionPublished(Value),
    /// An event type this crate does not know, with its data as JSON.
    Unknown {
        /// The `event_type` as sent.
        event_type: String,
        /// The `data` as sent.
        data: Value,
    },
}

#[derive(Deserialize)]
struct RawEnvelope {
    event_type: String,
    #[serde(default)]
    data: Value,
}

#[derive(Serialize)]
struct RawEnvelopeRef<'a, T: Serialize> {
    data: &'a T,
    event_type: &'a str,
}

impl<'de> Deserialize<'de> for WebhookEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawEnvelope::deserialize(deserializer)?;
        let event = match EventType::from_wire(&raw.event_type) {
            EventType::FlagUpdated => {
                Event::FlagUpdated(serde_json::from_value(raw.data).map_err(D::Error::custom)?)
            }
            EventType::FlagDeleted => {
                Event::FlagDeleted(serde_json::from_value(raw.data).map_err(D::Error::custom)?)
            }
            EventType::AuditLogCreated => {
                Event::AuditLogCreated(serde_json::from_value(raw.data).map_err(D::Error::custom)?)
            }
            EventType::NewVersionPublished => Event::NewVersionPublished(raw.data),
            EventType::Unknown(event_type) => Event::Unknown {
                event_type,
                data: raw.data,
            },
        };
        Ok(WebhookEvent { event })
    }
}

impl Serialize for WebhookEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event_type = self.event_type();
        let event_type = event_type.as_str();
        match &self.event {
            Event::FlagUpdated(data) | Event::FlagDeleted(data) => {
                RawEnvelopeRef { data, event_type }.serialize(serializer)
            }
            Event::AuditLogCreated(data) => {
                RawEnvelopeRef { data, event_type }.serialize(serializer)
            }
            Event::NewVersionPublished(data) | Event::Unknown { data, .. } => {
                RawEnvelopeRef { data, event_type }.serialize(serializer)
            }
        }
    }
}

/// The data of `FLAG_UPDATED` and `FLAG_DELETED`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlagChange {
    /// Who made the change: a user's email, an API key's name, or empty.
    #[serde(default)]
    pub changed_by: String,
    /// When the change happened (`%Y-%m-%dT%H:%M:%S.%fZ`), not when the
    /// webhook was sent.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// The state after the change; `None` when the flag was deleted.
    #[serde(default)]
    pub new_state: Option<FeatureState>,
    /// The state before the change, when known.
    #[serde(default)]
    pub previous_state: Option<FeatureState>,
}

/// A feature's state in one environment (or for one identity or segment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureState {
    /// The feature.
    pub feature: Feature,
    /// The environment.
    #[serde(default)]
    pub environment: Option<NamedRef>,
    /// The identity's id, for an identity override.
    #[serde(default)]
    pub identity: Option<i64>,
    /// The identity's identifier, for an identity override.
    #[serde(default)]
    pub identity_identifier: Option<String>,
    /// The segment, for a segment override.
    #[serde(default)]
    pub feature_segment: Option<FeatureSegment>,
    /// Whether the feature is on.
    pub enabled: bool,
    /// The remote-config value: a string, number, boolean or null.
    #[serde(default)]
    pub feature_state_value: Value,
    /// Multivariate allocations (absent in some payloads).
    #[serde(default)]
    pub multivariate_feature_state_values: Option<Vec<MultivariateValue>>,
}

/// A feature as described in webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// The feature's id.
    pub id: i64,
    /// The feature's name.
    pub name: String,
    /// When it was created.
    #[serde(default)]
    pub created_date: Option<String>,
    /// Whether it is enabled by default.
    #[serde(default)]
    pub default_enabled: Option<bool>,
    /// Its description.
    #[serde(default)]
    pub description: Option<String>,
    /// Its initial value.
    #[serde(default)]
    pub initial_value: Value,
    /// The project it belongs to.
    #[serde(default)]
    pub project: Option<NamedRef>,
    /// Its type, such as `STANDARD` or `MULTIVARIATE`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// An `{id, name}` reference to a project or environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedRef {
    /// The id.
    pub id: i64,
    /// The name.
    #[serde(default)]
    pub name: Option<String>,
}

/// The segment override a feature state belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSegment {
    /// The segment.
    pub segment: SegmentRef,
    /// The override's priority.
    #[serde(default)]
    pub priority: Option<i64>,
}

/// A segment as referenced from a feature state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRef {
    /// The id.
    pub id: i64,
    /// The name.
    pub name: String,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
}

/// One multivariate allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultivariateValue {
    /// The allocation's id.
    #[serde(default)]
    pub id: Option<i64>,
    /// The option allocated.
    pub multivariate_feature_option: MultivariateOption,
    /// The share of identities receiving it, in percent.
    pub percentage_allocation: f64,
}

/// A multivariate option.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultivariateOption {
    /// The option's id.
    #[serde(default)]
    pub id: Option<i64>,
    /// The option's value.
    #[serde(default)]
    pub value: Value,
}

/// The data of `AUDIT_LOG_CREATED`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLog {
    /// The record's id.
    pub id: i64,
    /// When it was written.
    #[serde(default)]
    pub created_date: Option<String>,
    /// The human-readable log line.
    #[serde(default)]
    pub log: String,
    /// The user responsible, if any.
    #[serde(default)]
    pub author: Option<AuditAuthor>,
    /// The environment concerned, as sent.
    #[serde(default)]
    pub environment: Value,
    /// The project concerned, as sent.
    #[serde(default)]
    pub project: Value,
    /// The related object's numeric id.
    #[serde(default)]
    pub related_object_id: Option<i64>,
    /// The related object's uuid.
    #[serde(default)]
    pub related_object_uuid: Option<String>,
    /// The related object's type, such as `FEATURE` or `SEGMENT`.
    #[serde(default)]
    pub related_object_type: Option<String>,
    /// Whether the system rather than a user caused it.
    #[serde(default)]
    pub is_system_event: Option<bool>,
}

/// The author of an audit-log record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditAuthor {
    /// The user's id.
    #[serde(default)]
    pub id: Option<i64>,
    /// The user's email.
    #[serde(default)]
    pub email: Option<String>,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
}

/// The identity-flags integration webhook body (no envelope).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityFlags {
    /// The identity's identifier.
    pub identity: String,
    /// Its traits.
    #[serde(default)]
    pub traits: Vec<Trait>,
    /// Its evaluated flags.
    #[serde(default)]
    pub flags: Vec<IdentityFlag>,
    /// The segments, with whether the identity is a member.
    #[serde(default)]
    pub segments: Vec<Segment>,
}

/// A trait of an identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trait {
    /// The trait's id.
    #[serde(default)]
    pub id: Option<i64>,
    /// The key.
    pub trait_key: String,
    /// The value: a string, number, boolean or null.
    #[serde(default)]
    pub trait_value: Value,
    /// Whether the trait is transient (not persisted).
    #[serde(default)]
    pub transient: Option<bool>,
}

/// An evaluated flag of an identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityFlag {
    /// The feature state's id.
    #[serde(default)]
    pub id: Option<i64>,
    /// The feature.
    pub feature: Feature,
    /// The value.
    #[serde(default)]
    pub feature_state_value: Value,
    /// The environment's id.
    #[serde(default)]
    pub environment: Option<i64>,
    /// The identity's id, for an identity override.
    #[serde(default)]
    pub identity: Option<i64>,
    /// The segment override, as sent.
    #[serde(default)]
    pub feature_segment: Value,
    /// Whether the flag is on.
    pub enabled: bool,
    /// The multivariate allocation that chose the value, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_allocation: Option<f64>,
}

/// A segment and the identity's membership.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// The segment's id.
    pub id: i64,
    /// The name.
    pub name: String,
    /// Whether the identity belongs to it.
    pub member: bool,
}
