//! The Event Injection envelope and its builder.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;

use super::validate;
use super::{EnvelopeError, EventType, EventValidationError};
use crate::events::{rfc3339, rfc3339_utc};

/// A free-form JSON object of an envelope (`customer`, `entity`, `properties`, `context`,
/// `consent`). Keys are kept sorted, so the encoded bytes do not depend on insertion order.
pub type Object = BTreeMap<String, Value>;

/// The `source` used when none is given, as in the other eSauti SDKs.
pub const DEFAULT_SOURCE: &str = "sdk";

/// The prefix of generated event ids.
pub const EVENT_ID_PREFIX: &str = "evt_";

/// The `id` of an event.
///
/// A generated id is `evt_` followed by a UUIDv7 in its hyphenated lowercase form, 40
/// characters in all (`evt_019aa8f2-7c41-7d3e-9a0b-3f6c2d1e4b5a`). The UUIDs come from one
/// process-wide generator that keeps them strictly increasing (millisecond time, then a
/// counter, then random bits from the operating system), so two ids of one process never
/// collide and ids of different processes collide only if 2^32 or more random bits agree.
/// Ids sort by creation time.
///
/// ```
/// use flagwire_core::esauti::EventId;
///
/// let a = EventId::generate();
/// let b = EventId::generate();
/// assert!(a.as_str().starts_with("evt_"));
/// assert_eq!(a.as_str().len(), 40);
/// assert!(a < b);
/// assert_eq!(EventId::new("order-42-created")?.as_str(), "order-42-created");
/// assert!(EventId::new("").is_err());
/// # Ok::<(), flagwire_core::esauti::EnvelopeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    /// A fresh `evt_<uuidv7>` id.
    pub fn generate() -> Self {
        let uuid = uuid::Uuid::now_v7();
        let mut s = String::with_capacity(40);
        s.push_str(EVENT_ID_PREFIX);
        s.push_str(
            uuid.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        );
        Self(s)
    }

    /// A caller-chosen id; it must not be empty.
    pub fn new(id: impl Into<String>) -> Result<Self, EnvelopeError> {
        let id = id.into();
        if id.is_empty() {
            return Err(EnvelopeError::EmptyEventId);
        }
        Ok(Self(id))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `esauti` block: the Mautic tracking ids of the browser that triggered the event (the
/// `mtc_id` contact id and the device id). Unset and empty ids are left out; the block is left
/// out when both are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_id: Option<String>,
}

impl Tracking {
    /// The tracked contact id (`esauti.id`).
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The tracked device id (`esauti.device_id`).
    pub fn device_id(&self) -> Option<&str> {
        self.device_id.as_deref()
    }

    /// Whether neither id is set.
    pub fn is_empty(&self) -> bool {
        self.id.is_none() && self.device_id.is_none()
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// One event for `POST {events_base}/v1/inbound/event`.
///
/// The JSON keys are written in this order: `id`, `type`, `occurred_at`, `source`,
/// `customer`, `entity`, `properties`, then, only when set and non-empty,
/// `external_event_id`, `context`, `consent` and `esauti`. `occurred_at` is RFC 3339 in UTC
/// with a `Z` suffix. Objects have sorted keys, and the encoding is compact, so
/// [`to_bytes`](Self::to_bytes) gives the exact bytes to sign and send; keep them and send
/// those, rather than encoding again.
///
/// Build one with [`EventEnvelope::builder`], which validates before returning. An envelope
/// read back with [`from_json`](Self::from_json) (e.g. from a dead-letter file) is validated
/// too.
///
/// ```
/// use flagwire_core::esauti::{EventEnvelope, EventType};
///
/// let event = EventEnvelope::builder(EventType::OrderCreated)
///     .id("evt_1")?
///     .occurred_at(time::macros::datetime!(2026-01-02 03:04:05 UTC))?
///     .source("shop")
///     .customer_id("cus_1")
///     .customer_field("email", "ann@example.com")
///     .property("currency", "USD")
///     .property("value", 0)
///     .build()?;
/// assert_eq!(event.entity()["type"], "order");
/// assert_eq!(
///     std::str::from_utf8(&event.to_bytes()?).unwrap(),
///     r#"{"id":"evt_1","type":"order.created","occurred_at":"2026-01-02T03:04:05Z","source":"shop","customer":{"email":"ann@example.com","id":"cus_1"},"entity":{"id":"cus_1","type":"order"},"properties":{"currency":"USD","value":0}}"#
/// );
/// # Ok::<(), flagwire_core::esauti::EnvelopeError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    id: EventId,
    #[serde(rename = "type")]
    event_type: EventType,
    #[serde(serialize_with = "ser_utc", deserialize_with = "de_utc")]
    occurred_at: OffsetDateTime,
    source: String,
    customer: Object,
    entity: Object,
    #[serde(default)]
    properties: Object,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    external_event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Object::is_empty")]
    context: Object,
    #[serde(default, skip_serializing_if = "Object::is_empty")]
    consent: Object,
    #[serde(default, skip_serializing_if = "Tracking::is_empty")]
    esauti: Tracking,
}

fn ser_utc<S: Serializer>(t: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 48];
    let text =
        rfc3339(t.to_offset(time::UtcOffset::UTC), &mut buf).map_err(serde::ser::Error::custom)?;
    serializer.serialize_str(text)
}

fn de_utc<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    let t = time::serde::rfc3339::deserialize(deserializer)?;
    t.checked_to_offset(time::UtcOffset::UTC)
        .ok_or_else(|| serde::de::Error::custom("occurred_at is out of range in UTC"))
}

/// Converts to UTC and checks the RFC 3339 year range.
fn utc(t: OffsetDateTime) -> Result<OffsetDateTime, EnvelopeError> {
    rfc3339_utc(t).ok_or(EnvelopeError::Timestamp)
}

impl EventEnvelope {
    /// A builder for an event of `event_type` (a registered [`EventType`] or any name, which
    /// becomes [`EventType::Custom`] unless it is registered).
    pub fn builder(event_type: impl Into<EventType>) -> EnvelopeBuilder {
        EnvelopeBuilder::new(event_type.into())
    }

    /// Reads an encoded envelope (for example a dead letter) and validates it. Keys this type
    /// does not know are dropped; `occurred_at` is converted to UTC.
    pub fn from_json(json: &[u8]) -> Result<Self, EnvelopeError> {
        let de = &mut serde_json::Deserializer::from_slice(json);
        let envelope: Self =
            serde_path_to_error::deserialize(de).map_err(|e| EnvelopeError::Decode {
                path: e.path().to_string(),
                message: e.into_inner().to_string(),
            })?;
        envelope.check()?;
        Ok(envelope)
    }

    fn check(&self) -> Result<(), EnvelopeError> {
        if self.event_type.as_str().is_empty() {
            return Err(EnvelopeError::EmptyEventType);
        }
        if self.id.as_str().is_empty() {
            return Err(EnvelopeError::EmptyEventId);
        }
        utc(self.occurred_at)?;
        self.validate()?;
        Ok(())
    }

    /// Checks the required properties of the event type (see [`crate::esauti::validate`]).
    pub fn validate(&self) -> Result<(), EventValidationError> {
        validate::validate(self)
    }

    /// The exact JSON bytes to sign and send.
    pub fn to_bytes(&self) -> Result<Bytes, EnvelopeError> {
        serde_json::to_vec(self)
            .map(Bytes::from)
            .map_err(EnvelopeError::Encode)
    }

    /// `id`.
    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// `type`.
    pub fn event_type(&self) -> &EventType {
        &self.event_type
    }

    /// `occurred_at`, in UTC.
    pub fn occurred_at(&self) -> OffsetDateTime {
        self.occurred_at
    }

    /// `source`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `customer`: who triggered the event (conventional keys `id`, `external_id`, `email`,
    /// `phone`).
    pub fn customer(&self) -> &Object {
        &self.customer
    }

    /// `entity`: what the event is about (`type` and `id`).
    pub fn entity(&self) -> &Object {
        &self.entity
    }

    /// `properties`.
    pub fn properties(&self) -> &Object {
        &self.properties
    }

    /// `external_event_id`: the originating system's own id, for deduplication.
    pub fn external_event_id(&self) -> Option<&str> {
        self.external_event_id.as_deref()
    }

    /// `context` (e.g. `ip`, `user_agent`, `locale`); empty when not sent.
    pub fn context(&self) -> &Object {
        &self.context
    }

    /// `consent`; empty when not sent.
    pub fn consent(&self) -> &Object {
        &self.consent
    }

    /// `esauti`: the tracking ids.
    pub fn tracking(&self) -> &Tracking {
        &self.esauti
    }
}

/// Builds an [`EventEnvelope`]; see [`EventEnvelope::builder`].
///
/// Defaults: a fresh [`EventId::generate`] id, `occurred_at` = now (UTC, millisecond
/// precision), `source` = [`DEFAULT_SOURCE`], empty objects. When no entity field is set,
/// `entity` defaults to `{"type": <entity type>, "id": <customer.id>}`: the entity type is the
/// registry's (`email.sent` → `message`, `case.opened` → `ticket`) and, for custom types, the
/// name up to the first `.`; the id is the customer's `id` (a number is written as text) and
/// is left out when the customer has none. Once any entity field is set, `entity` is exactly
/// what was set.
#[derive(Debug, Clone)]
#[must_use]
pub struct EnvelopeBuilder {
    id: Option<EventId>,
    event_type: EventType,
    occurred_at: Option<OffsetDateTime>,
    source: Option<String>,
    customer: Object,
    entity: Option<Object>,
    properties: Object,
    external_event_id: Option<String>,
    context: Object,
    consent: Object,
    esauti: Tracking,
}

impl EnvelopeBuilder {
    fn new(event_type: EventType) -> Self {
        // A `Custom` holding a registered name is the registered type.
        let event_type = match event_type {
            EventType::Custom(name) => EventType::from(name),
            known => known,
        };
        Self {
            id: None,
            event_type,
            occurred_at: None,
            source: None,
            customer: Object::new(),
            entity: None,
            properties: Object::new(),
            external_event_id: None,
            context: Object::new(),
            consent: Object::new(),
            esauti: Tracking::default(),
        }
    }

    /// Uses a caller-chosen event id instead of a generated one; it must not be empty.
    pub fn id(mut self, id: impl Into<String>) -> Result<Self, EnvelopeError> {
        self.id = Some(EventId::new(id)?);
        Ok(self)
    }

    /// Sets `occurred_at` (converted to UTC; years 0–9999).
    pub fn occurred_at(mut self, at: OffsetDateTime) -> Result<Self, EnvelopeError> {
        self.occurred_at = Some(utc(at)?);
        Ok(self)
    }

    /// Sets `source` (also what clients send as `X-eSauti-Source`).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets `customer.id`.
    pub fn customer_id(self, id: impl Into<String>) -> Self {
        self.customer_field("id", id.into())
    }

    /// Sets one key of `customer`.
    pub fn customer_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.customer.insert(key.into(), value.into());
        self
    }

    /// Replaces `customer`.
    pub fn customer(mut self, customer: Object) -> Self {
        self.customer = customer;
        self
    }

    /// Sets `entity` to `{"type": entity_type, "id": id}`.
    pub fn entity(mut self, entity_type: impl Into<String>, id: impl Into<String>) -> Self {
        let mut entity = Object::new();
        entity.insert("type".into(), Value::String(entity_type.into()));
        entity.insert("id".into(), Value::String(id.into()));
        self.entity = Some(entity);
        self
    }

    /// Sets one key of `entity` (and turns off the default entity).
    pub fn entity_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.entity
            .get_or_insert_with(Object::new)
            .insert(key.into(), value.into());
        self
    }

    /// Sets one key of `properties`.
    pub fn property(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Replaces `properties`.
    pub fn properties(mut self, properties: Object) -> Self {
        self.properties = properties;
        self
    }

    /// Sets `external_event_id`; an empty id is not sent.
    pub fn external_event_id(mut self, id: impl Into<String>) -> Self {
        self.external_event_id = non_empty(id.into());
        self
    }

    /// Sets one key of `context`.
    pub fn context_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.context.insert(key.into(), value.into());
        self
    }

    /// Replaces `context`; an empty object is not sent.
    pub fn context(mut self, context: Object) -> Self {
        self.context = context;
        self
    }

    /// Sets one key of `consent`.
    pub fn consent_field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.consent.insert(key.into(), value.into());
        self
    }

    /// Replaces `consent`; an empty object is not sent.
    pub fn consent(mut self, consent: Object) -> Self {
        self.consent = consent;
        self
    }

    /// Sets the tracked contact id (`esauti.id`); an empty id is not sent.
    pub fn tracking_id(mut self, id: impl Into<String>) -> Self {
        self.esauti.id = non_empty(id.into());
        self
    }

    /// Sets the tracked device id (`esauti.device_id`); an empty id is not sent.
    pub fn device_id(mut self, id: impl Into<String>) -> Self {
        self.esauti.device_id = non_empty(id.into());
        self
    }

    fn default_entity(&self) -> Object {
        let entity_type = match self.event_type.entity_type() {
            Some(t) => t.as_str().to_owned(),
            None => {
                let name = self.event_type.as_str();
                name.split_once('.')
                    .map_or(name, |(head, _)| head)
                    .to_owned()
            }
        };
        let mut entity = Object::new();
        entity.insert("type".into(), Value::String(entity_type));
        let id = match self.customer.get("id") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        if let Some(id) = id {
            entity.insert("id".into(), Value::String(id));
        }
        entity
    }

    /// Fills the defaults and validates (see [`crate::esauti::validate`]); nothing is sent.
    pub fn build(mut self) -> Result<EventEnvelope, EnvelopeError> {
        if self.event_type.as_str().is_empty() {
            return Err(EnvelopeError::EmptyEventType);
        }
        let entity = match self.entity.take() {
            Some(entity) => entity,
            None => self.default_entity(),
        };
        let occurred_at = match self.occurred_at {
            Some(t) => t,
            None => {
                let now = OffsetDateTime::now_utc();
                now.replace_millisecond(now.millisecond()).unwrap_or(now)
            }
        };
        let envelope = EventEnvelope {
            id: self.id.unwrap_or_else(EventId::generate),
            event_type: self.event_type,
            occurred_at,
            source: self.source.unwrap_or_else(|| DEFAULT_SOURCE.to_owned()),
            customer: self.customer,
            entity,
            properties: self.properties,
            external_event_id: self.external_event_id,
            context: self.context,
            consent: self.consent,
            esauti: self.esauti,
        };
        envelope.validate()?;
        Ok(envelope)
    }
}
