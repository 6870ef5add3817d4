//! Typed bodies of the capture events: identify, track and flag check.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::EventError;

/// Identifying keys of a user or a company (`"email" → "a@b.c"`,
/// `"id" → "acme"`). Any one key identifies the entity. A `BTreeMap`, so the
/// wire order is sorted and stable.
pub type Keys = BTreeMap<String, String>;

/// Arbitrary JSON traits of a user or a company, or extra data of a track
/// event.
pub type Traits = serde_json::Map<String, Value>;

/// The most keys one entity may carry.
pub const MAX_KEYS: usize = 100;
/// The longest accepted company name, in characters.
pub const MAX_COMPANY_NAME_LEN: usize = 256;
/// The longest accepted user name, in characters.
pub const MAX_USER_NAME_LEN: usize = 255;
/// The longest accepted event or flag key, in characters.
pub const MAX_NAME_LEN: usize = 255;

fn check_keys(entity: &'static str, keys: &Keys) -> Result<(), EventError> {
    if keys.is_empty() {
        return Err(EventError::MissingKeys { entity });
    }
    if keys.len() > MAX_KEYS {
        return Err(EventError::TooManyKeys {
            entity,
            len: keys.len(),
            max: MAX_KEYS,
        });
    }
    if keys.keys().any(String::is_empty) {
        return Err(EventError::EmptyKeyName { entity });
    }
    Ok(())
}

pub(super) fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), EventError> {
    if value.is_empty() {
        return Err(EventError::Empty { field });
    }
    // Cheap upper bound first: a string of at most `max` bytes has at most
    // `max` characters.
    if value.len() > max {
        let len = value.chars().count();
        if len > max {
            return Err(EventError::TooLong { field, len, max });
        }
    }
    Ok(())
}

fn collect_keys<K: Into<String>, V: Into<String>>(
    keys: &mut Keys,
    pairs: impl IntoIterator<Item = (K, V)>,
) {
    keys.extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
}

/// The kind of a capture event: the envelope's `type` field.
///
/// The enum is open: kinds this version does not know travel as
/// [`EventType::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// `identify`: upsert a user, optionally a company and the membership.
    Identify,
    /// `track`: a usage event.
    Track,
    /// `flag_check`: the result of a locally evaluated flag check.
    FlagCheck,
    /// Any other kind, e.g. `inference`.
    Other(String),
}

impl EventType {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Identify => "identify",
            Self::Track => "track",
            Self::FlagCheck => "flag_check",
            Self::Other(s) => s,
        }
    }

    /// Parses a wire name; unknown names become [`EventType::Other`].
    pub fn from_wire(name: &str) -> Self {
        match name {
            "identify" => Self::Identify,
            "track" => Self::Track,
            "flag_check" => Self::FlagCheck,
            other => Self::Other(other.to_owned()),
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

/// The company part of an identify event: keys (required), name and traits.
///
/// ```
/// use flagwire_core::events::CompanyIdentity;
///
/// let acme = CompanyIdentity::builder().key("id", "acme").name("Acme").trait_value("seats", 5).build()?;
/// assert_eq!(acme.keys()["id"], "acme");
/// assert!(CompanyIdentity::builder().name("no keys").build().is_err());
/// # Ok::<(), flagwire_core::events::EventError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompanyIdentity {
    keys: Keys,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traits: Option<Traits>,
}

impl CompanyIdentity {
    /// Starts a company description.
    pub fn builder() -> CompanyIdentityBuilder {
        CompanyIdentityBuilder::default()
    }

    /// The identifying keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The display name, if set.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The traits, if set.
    pub fn traits(&self) -> Option<&Traits> {
        self.traits.as_ref()
    }
}

/// Builds a [`CompanyIdentity`]; validation happens in
/// [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct CompanyIdentityBuilder {
    keys: Keys,
    name: Option<String>,
    traits: Option<Traits>,
}

impl CompanyIdentityBuilder {
    /// Adds an identifying key.
    pub fn key(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.keys.insert(name.into(), value.into());
        self
    }

    /// Adds identifying keys.
    pub fn keys<K: Into<String>, V: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        collect_keys(&mut self.keys, keys);
        self
    }

    /// Sets the display name (used when the company is new).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets one trait.
    pub fn trait_value(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.traits
            .get_or_insert_with(Traits::new)
            .insert(name.into(), value.into());
        self
    }

    /// Replaces all traits.
    pub fn traits(mut self, traits: Traits) -> Self {
        self.traits = Some(traits);
        self
    }

    /// Validates: at least one key, at most [`MAX_KEYS`], no empty key
    /// names, a non-empty name of at most [`MAX_COMPANY_NAME_LEN`]
    /// characters when set.
    pub fn build(self) -> Result<CompanyIdentity, EventError> {
        check_keys("company", &self.keys)?;
        if let Some(name) = &self.name {
            check_len("company.name", name, MAX_COMPANY_NAME_LEN)?;
        }
        Ok(CompanyIdentity {
            keys: self.keys,
            name: self.name,
            traits: self.traits,
        })
    }
}

/// The body of an `identify` event: upserts the user named by `keys`, and
/// when `company` is present the company and the membership too.
///
/// ```
/// use flagwire_core::events::{CompanyIdentity, IdentifyBody};
///
/// let body = IdentifyBody::builder()
///     .key("email", "ann@example.com")
///     .name("Ann")
///     .trait_value("role", "admin")
///     .company(CompanyIdentity::builder().key("id", "acme").build()?)
///     .build()?;
/// assert_eq!(body.name(), Some("Ann"));
///
/// // A user needs at least one key.
/// assert!(IdentifyBody::builder().name("Nobody").build().is_err());
/// # Ok::<(), flagwire_core::events::EventError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentifyBody {
    keys: Keys,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traits: Option<Traits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    company: Option<CompanyIdentity>,
}

impl IdentifyBody {
    /// Starts an identify body.
    pub fn builder() -> IdentifyBuilder {
        IdentifyBuilder::default()
    }

    /// The user's identifying keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The user's name, if set.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The user's traits, if set.
    pub fn traits(&self) -> Option<&Traits> {
        self.traits.as_ref()
    }

    /// The company, if set.
    pub fn company(&self) -> Option<&CompanyIdentity> {
        self.company.as_ref()
    }
}

/// Builds an [`IdentifyBody`]; validation happens in [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct IdentifyBuilder {
    keys: Keys,
    name: Option<String>,
    traits: Option<Traits>,
    company: Option<CompanyIdentity>,
}

impl IdentifyBuilder {
    /// Adds an identifying key of the user.
    pub fn key(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.keys.insert(name.into(), value.into());
        self
    }

    /// Adds identifying keys of the user.
    pub fn keys<K: Into<String>, V: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        collect_keys(&mut self.keys, keys);
        self
    }

    /// Sets the user's name (used when the user is new).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets one trait of the user.
    pub fn trait_value(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.traits
            .get_or_insert_with(Traits::new)
            .insert(name.into(), value.into());
        self
    }

    /// Replaces all traits of the user.
    pub fn traits(mut self, traits: Traits) -> Self {
        self.traits = Some(traits);
        self
    }

    /// Sets the company the user belongs to.
    pub fn company(mut self, company: CompanyIdentity) -> Self {
        self.company = Some(company);
        self
    }

    /// Validates: the user has at least one key (at most [`MAX_KEYS`], no
    /// empty names) and a non-empty name of at most [`MAX_USER_NAME_LEN`]
    /// characters when set.
    pub fn build(self) -> Result<IdentifyBody, EventError> {
        check_keys("user", &self.keys)?;
        if let Some(name) = &self.name {
            check_len("name", name, MAX_USER_NAME_LEN)?;
        }
        Ok(IdentifyBody {
            keys: self.keys,
            name: self.name,
            traits: self.traits,
            company: self.company,
        })
    }
}

/// The body of a `track` event: a named usage event, optionally attributed
/// to a company and a user, with a quantity (the platform counts 1 when it
/// is absent).
///
/// ```
/// use flagwire_core::events::TrackBody;
///
/// let body = TrackBody::builder("api-call")
///     .company_key("id", "acme")
///     .user_key("email", "ann@example.com")
///     .quantity(3)
///     .build()?;
/// assert_eq!(body.event(), "api-call");
/// assert_eq!(body.quantity(), Some(3));
///
/// assert!(TrackBody::builder("").build().is_err());
/// # Ok::<(), flagwire_core::events::EventError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackBody {
    event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    company: Option<Keys>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Keys>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traits: Option<Traits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantity: Option<i64>,
}

impl TrackBody {
    /// Starts a track body for the event `event`.
    pub fn builder(event: impl Into<String>) -> TrackBuilder {
        TrackBuilder {
            event: event.into(),
            company: None,
            user: None,
            traits: None,
            quantity: None,
        }
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The company's keys, if set.
    pub fn company(&self) -> Option<&Keys> {
        self.company.as_ref()
    }

    /// The user's keys, if set.
    pub fn user(&self) -> Option<&Keys> {
        self.user.as_ref()
    }

    /// Extra data, if set.
    pub fn traits(&self) -> Option<&Traits> {
        self.traits.as_ref()
    }

    /// The quantity, if set.
    pub fn quantity(&self) -> Option<i64> {
        self.quantity
    }
}

/// Builds a [`TrackBody`]; validation happens in [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct TrackBuilder {
    event: String,
    company: Option<Keys>,
    user: Option<Keys>,
    traits: Option<Traits>,
    quantity: Option<i64>,
}

impl TrackBuilder {
    /// Adds a key of the company the event belongs to.
    pub fn company_key(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.company
            .get_or_insert_with(Keys::new)
            .insert(name.into(), value.into());
        self
    }

    /// Adds keys of the company the event belongs to.
    pub fn company<K: Into<String>, V: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        collect_keys(self.company.get_or_insert_with(Keys::new), keys);
        self
    }

    /// Adds a key of the user the event belongs to.
    pub fn user_key(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.user
            .get_or_insert_with(Keys::new)
            .insert(name.into(), value.into());
        self
    }

    /// Adds keys of the user the event belongs to.
    pub fn user<K: Into<String>, V: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        collect_keys(self.user.get_or_insert_with(Keys::new), keys);
        self
    }

    /// Sets one trait.
    pub fn trait_value(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.traits
            .get_or_insert_with(Traits::new)
            .insert(name.into(), value.into());
        self
    }

    /// Replaces all traits.
    pub fn traits(mut self, traits: Traits) -> Self {
        self.traits = Some(traits);
        self
    }

    /// Sets the quantity (how many units this event stands for).
    pub fn quantity(mut self, quantity: i64) -> Self {
        self.quantity = Some(quantity);
        self
    }

    /// Validates: a non-empty event name of at most [`MAX_NAME_LEN`]
    /// characters; company and user key sets, when given, are non-empty,
    /// hold at most [`MAX_KEYS`] keys and no empty key names.
    pub fn build(self) -> Result<TrackBody, EventError> {
        check_len("event", &self.event, MAX_NAME_LEN)?;
        if let Some(keys) = &self.company {
            check_keys("company", keys)?;
        }
        if let Some(keys) = &self.user {
            check_keys("user", keys)?;
        }
        Ok(TrackBody {
            event: self.event,
            company: self.company,
            user: self.user,
            traits: self.traits,
            quantity: self.quantity,
        })
    }
}

/// The body of a `flag_check` event: the outcome of a flag check evaluated
/// in process, reported so that it shows up in the platform's logs.
///
/// ```
/// use flagwire_core::events::FlagCheckBody;
///
/// let body = FlagCheckBody::builder("new-editor", true, "matched rule")
///     .rule_id("rule_1")
///     .req_company_key("id", "acme")
///     .build()?;
/// assert!(body.value());
/// # Ok::<(), flagwire_core::events::EventError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagCheckBody {
    flag_key: String,
    value: bool,
    reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    flag_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    company_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    req_company: Option<Keys>,
    #[serde(skip_serializing_if = "Option::is_none")]
    req_user: Option<Keys>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preflight: Option<bool>,
}

impl FlagCheckBody {
    /// Starts a flag-check body: the flag key, the value the check returned
    /// (`false` is a real answer) and a human-readable reason.
    pub fn builder(
        flag_key: impl Into<String>,
        value: bool,
        reason: impl Into<String>,
    ) -> FlagCheckBuilder {
        FlagCheckBuilder(FlagCheckBody {
            flag_key: flag_key.into(),
            value,
            reason: reason.into(),
            flag_id: None,
            rule_id: None,
            company_id: None,
            user_id: None,
            req_company: None,
            req_user: None,
            error: None,
            preflight: None,
        })
    }

    /// The flag key.
    pub fn flag_key(&self) -> &str {
        &self.flag_key
    }

    /// The value of the check.
    pub fn value(&self) -> bool {
        self.value
    }

    /// The reason of the check.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The flag's Schematic id, if set.
    pub fn flag_id(&self) -> Option<&str> {
        self.flag_id.as_deref()
    }

    /// The id of the rule that decided, if set.
    pub fn rule_id(&self) -> Option<&str> {
        self.rule_id.as_deref()
    }

    /// The resolved company id, if set.
    pub fn company_id(&self) -> Option<&str> {
        self.company_id.as_deref()
    }

    /// The resolved user id, if set.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The company keys the caller checked with, if any.
    pub fn req_company(&self) -> Option<&Keys> {
        self.req_company.as_ref()
    }

    /// The user keys the caller checked with, if any.
    pub fn req_user(&self) -> Option<&Keys> {
        self.req_user.as_ref()
    }

    /// The evaluation error, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether this was a preflight check, if set.
    pub fn preflight(&self) -> Option<bool> {
        self.preflight
    }
}

/// Builds a [`FlagCheckBody`]; validation happens in
/// [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct FlagCheckBuilder(FlagCheckBody);

impl FlagCheckBuilder {
    /// Sets the flag's Schematic id.
    pub fn flag_id(mut self, id: impl Into<String>) -> Self {
        self.0.flag_id = Some(id.into());
        self
    }

    /// Sets the id of the rule that decided.
    pub fn rule_id(mut self, id: impl Into<String>) -> Self {
        self.0.rule_id = Some(id.into());
        self
    }

    /// Sets the resolved company id.
    pub fn company_id(mut self, id: impl Into<String>) -> Self {
        self.0.company_id = Some(id.into());
        self
    }

    /// Sets the resolved user id.
    pub fn user_id(mut self, id: impl Into<String>) -> Self {
        self.0.user_id = Some(id.into());
        self
    }

    /// Adds a company key the caller checked with.
    pub fn req_company_key(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0
            .req_company
            .get_or_insert_with(Keys::new)
            .insert(name.into(), value.into());
        self
    }

    /// Adds the company keys the caller checked with.
    pub fn req_company<K: Into<String>, V: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        collect_keys(self.0.req_company.get_or_insert_with(Keys::new), keys);
        self
    }

    /// Adds a user key the caller checked with.
    pub fn req_user_key(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0
            .req_user
            .get_or_insert_with(Keys::new)
            .insert(name.into(), value.into());
        self
    }

    /// Adds the user keys the caller checked with.
    pub fn req_user<K: Into<String>, V: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        collect_keys(self.0.req_user.get_or_insert_with(Keys::new), keys);
        self
    }

    /// Sets the evaluation error message.
    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.0.error = Some(error.into());
        self
    }

    /// Marks the check as a preflight check (or not).
    pub fn preflight(mut self, preflight: bool) -> Self {
        self.0.preflight = Some(preflight);
        self
    }

    /// Validates: a non-empty flag key of at most [`MAX_NAME_LEN`]
    /// characters and a non-empty reason; request key sets, when given,
    /// follow the same rules as entity keys.
    pub fn build(self) -> Result<FlagCheckBody, EventError> {
        let b = self.0;
        check_len("flag_key", &b.flag_key, MAX_NAME_LEN)?;
        if b.reason.is_empty() {
            return Err(EventError::Empty { field: "reason" });
        }
        if let Some(keys) = &b.req_company {
            check_keys("company", keys)?;
        }
        if let Some(keys) = &b.req_user {
            check_keys("user", keys)?;
        }
        Ok(b)
    }
}

/// The body of an event, tied to its [`EventType`].
///
/// Typed variants cannot disagree with the envelope's `type`; kinds without
/// a typed body travel as [`EventBody::Other`] with a raw JSON object.
///
/// The larger identify and flag-check bodies are boxed, so the enum is the
/// size of a track body: every queued event is moved into the event buffer
/// and read back by its worker thread, and the most frequent kind, `track`,
/// should not pay for the largest one. Build a body with `.into()`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventBody {
    /// An identify event.
    Identify(Box<IdentifyBody>),
    /// A track event.
    Track(TrackBody),
    /// A flag-check event.
    FlagCheck(Box<FlagCheckBody>),
    /// Another kind with a raw JSON body.
    Other {
        /// The wire name of the kind; not one of the typed kinds.
        event_type: String,
        /// The body, sent as is.
        body: Value,
    },
}

impl EventBody {
    /// A body of a kind without a typed variant, e.g. `inference`.
    ///
    /// The type must be non-empty and must not name one of the typed kinds
    /// (use their builders), and the body must be a JSON object.
    pub fn other(event_type: impl Into<String>, body: Value) -> Result<Self, EventError> {
        let event_type = event_type.into();
        check_len("type", &event_type, MAX_NAME_LEN)?;
        if !matches!(EventType::from_wire(&event_type), EventType::Other(_)) {
            return Err(EventError::InvalidBody {
                reason: "typed event kinds must use their typed body",
            });
        }
        if !body.is_object() {
            return Err(EventError::InvalidBody {
                reason: "an event body must be a JSON object",
            });
        }
        Ok(Self::Other { event_type, body })
    }

    /// The kind of this body.
    pub fn event_type(&self) -> EventType {
        match self {
            Self::Identify(_) => EventType::Identify,
            Self::Track(_) => EventType::Track,
            Self::FlagCheck(_) => EventType::FlagCheck,
            Self::Other { event_type, .. } => EventType::from_wire(event_type),
        }
    }

    /// The wire name of the kind, without allocating.
    pub fn type_str(&self) -> &str {
        match self {
            Self::Identify(_) => "identify",
            Self::Track(_) => "track",
            Self::FlagCheck(_) => "flag_check",
            Self::Other { event_type, .. } => event_type,
        }
    }
}

impl Serialize for EventBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Identify(b) => b.serialize(serializer),
            Self::Track(b) => b.serialize(serializer),
            Self::FlagCheck(b) => b.serialize(serializer),
            Self::Other { body, .. } => body.serialize(serializer),
        }
    }
}

impl From<IdentifyBody> for EventBody {
    fn from(b: IdentifyBody) -> Self {
        Self::Identify(Box::new(b))
    }
}

impl From<TrackBody> for EventBody {
    fn from(b: TrackBody) -> Self {
        Self::Track(b)
    }
}

impl From<FlagCheckBody> for EventBody {
    fn from(b: FlagCheckBody) -> Self {
        Self::FlagCheck(Box::new(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_no_larger_than_a_track_body() {
        let track = std::mem::size_of::<TrackBody>();
        assert!(std::mem::size_of::<EventBody>() <= track + 8);
        let body: EventBody = FlagCheckBody::builder("f", false, "r")
            .build()
            .unwrap()
            .into();
        assert_eq!(body.type_str(), "flag_check");
    }

    #[test]
    fn identify_rejects_bad_users_and_companies() {
        assert!(matches!(
            IdentifyBody::builder().build(),
            Err(EventError::MissingKeys { entity: "user" })
        ));
        assert!(matches!(
            IdentifyBody::builder().key("", "x").build(),
            Err(EventError::EmptyKeyName { entity: "user" })
        ));
        let many = (0..=MAX_KEYS).map(|i| (format!("k{i}"), "v"));
        assert!(matches!(
            IdentifyBody::builder().keys(many).build(),
            Err(EventError::TooManyKeys {
                len: 101,
                max: 100,
                ..
            })
        ));
        assert!(matches!(
            IdentifyBody::builder().key("id", "1").name("").build(),
            Err(EventError::Empty { field: "name" })
        ));
        assert!(matches!(
            CompanyIdentity::builder()
                .key("id", "1")
                .name("x".repeat(257))
                .build(),
            Err(EventError::TooLong {
                field: "company.name",
                len: 257,
                max: 256
            })
        ));
        assert!(
            CompanyIdentity::builder()
                .key("id", "1")
                .name("x".repeat(256))
                .build()
                .is_ok()
        );
    }

    #[test]
    fn track_validates_name_and_optional_keys() {
        assert!(matches!(
            TrackBody::builder("").build(),
            Err(EventError::Empty { field: "event" })
        ));
        assert!(matches!(
            TrackBody::builder("e")
                .company(Vec::<(String, String)>::new())
                .build(),
            Err(EventError::MissingKeys { entity: "company" })
        ));
        assert!(TrackBody::builder("e").build().is_ok());
    }

    #[test]
    fn flag_check_requires_key_and_reason() {
        assert!(FlagCheckBody::builder("", true, "r").build().is_err());
        assert!(FlagCheckBody::builder("f", false, "").build().is_err());
        assert!(
            !FlagCheckBody::builder("f", false, "r")
                .build()
                .unwrap()
                .value()
        );
    }

    #[test]
    fn other_bodies_must_be_objects_of_untyped_kinds() {
        assert!(EventBody::other("inference", serde_json::json!({"a": 1})).is_ok());
        assert!(EventBody::other("track", serde_json::json!({})).is_err());
        assert!(EventBody::other("inference", serde_json::json!([1])).is_err());
        assert!(EventBody::other("", serde_json::json!({})).is_err());
    }

    #[test]
    fn event_type_round_trips_wire_names() {
        for name in ["identify", "track", "flag_check", "inference"] {
            assert_eq!(EventType::from_wire(name).as_str(), name);
        }
    }
}
