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

fn collect_traits<K: Into<String>, V: Into<Value>>(
    traits: &mut Option<Traits>,
    pairs: impl IntoIterator<Item = (K, V)>,
) {
    traits
        .get_or_insert_with(Traits::new)
        .extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
}

fn check_optional_id(field: &'static str, id: Option<&str>) -> Result<(), EventError> {
    match id {
        Some(id) => check_len(field, id, MAX_NAME_LEN),
        None => Ok(()),
    }
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
    /// `inference`: usage of an AI model (tokens, cost).
    Inference,
    /// Any other kind.
    Other(String),
}

impl EventType {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Identify => "identify",
            Self::Track => "track",
            Self::FlagCheck => "flag_check",
            Self::Inference => "inference",
            Self::Other(s) => s,
        }
    }

    /// Parses a wire name; unknown names become [`EventType::Other`].
    pub fn from_wire(name: &str) -> Self {
        match name {
            "identify" => Self::Identify,
            "track" => Self::Track,
            "flag_check" => Self::FlagCheck,
            "inference" => Self::Inference,
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

    /// Adds traits: a [`Traits`] map, any map of names to JSON-convertible
    /// values, or an array of pairs such as `[("plan", "pro")]`.
    pub fn traits<K: Into<String>, V: Into<Value>>(
        mut self,
        traits: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        collect_traits(&mut self.traits, traits);
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

    /// Adds traits of the user: a [`Traits`] map, any map of names to
    /// JSON-convertible values, or an array of pairs such as
    /// `[("role", "admin")]`.
    pub fn traits<K: Into<String>, V: Into<Value>>(
        mut self,
        traits: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        collect_traits(&mut self.traits, traits);
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
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reservation_id: Option<String>,
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
            lease_id: None,
            reservation_id: None,
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

    /// The credit lease this event redeems against, if set.
    pub fn lease_id(&self) -> Option<&str> {
        self.lease_id.as_deref()
    }

    /// The credit reservation this event settles, if set.
    pub fn reservation_id(&self) -> Option<&str> {
        self.reservation_id.as_deref()
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
    lease_id: Option<String>,
    reservation_id: Option<String>,
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

    /// Adds traits: a [`Traits`] map, any map of names to JSON-convertible
    /// values, or an array of pairs such as `[("plan", "pro")]`.
    pub fn traits<K: Into<String>, V: Into<Value>>(
        mut self,
        traits: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        collect_traits(&mut self.traits, traits);
        self
    }

    /// Sets the quantity (how many units this event stands for).
    pub fn quantity(mut self, quantity: i64) -> Self {
        self.quantity = Some(quantity);
        self
    }

    /// Redeems the event against a credit lease (`lease_id`).
    pub fn lease_id(mut self, lease_id: impl Into<String>) -> Self {
        self.lease_id = Some(lease_id.into());
        self
    }

    /// Settles a credit reservation made by a check-and-reserve call
    /// (`reservation_id`). Pair it with the idempotency key
    /// `lease-reservation:<reservation id>` (see
    /// [`EventOptions::idempotency_key`](super::EventOptions::idempotency_key))
    /// so a settlement is counted once.
    pub fn reservation_id(mut self, reservation_id: impl Into<String>) -> Self {
        self.reservation_id = Some(reservation_id.into());
        self
    }

    /// Validates: a non-empty event name of at most [`MAX_NAME_LEN`]
    /// characters; company and user key sets, when given, are non-empty,
    /// hold at most [`MAX_KEYS`] keys and no empty key names; lease and
    /// reservation ids, when given, are 1 to [`MAX_NAME_LEN`] characters.
    pub fn build(self) -> Result<TrackBody, EventError> {
        check_len("event", &self.event, MAX_NAME_LEN)?;
        if let Some(keys) = &self.company {
            check_keys("company", keys)?;
        }
        if let Some(keys) = &self.user {
            check_keys("user", keys)?;
        }
        check_optional_id("lease_id", self.lease_id.as_deref())?;
        check_optional_id("reservation_id", self.reservation_id.as_deref())?;
        Ok(TrackBody {
            event: self.event,
            company: self.company,
            user: self.user,
            traits: self.traits,
            quantity: self.quantity,
            lease_id: self.lease_id,
            reservation_id: self.reservation_id,
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

/// The body of an `inference` event: the usage of one (or several) AI
/// model requests, for usage-based billing of tokens or cost.
///
/// The provider and the model that answered are given up front; the company
/// and both token counts are required too, and [`build`](InferenceBuilder::build)
/// says which one is missing.
///
/// ```
/// use flagwire_core::events::InferenceBody;
///
/// let body = InferenceBody::builder("anthropic", "claude-sonnet-4")
///     .company([("id", "acme")])
///     .input_tokens(1_200)
///     .output_tokens(350)
///     .cost("0.0123")
///     .build()?;
/// assert_eq!(body.output_tokens(), 350);
///
/// // Both token counts are required.
/// assert!(InferenceBody::builder("openai", "gpt-4o").company([("id", "acme")]).input_tokens(5).build().is_err());
/// # Ok::<(), flagwire_core::events::EventError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InferenceBody {
    company: Keys,
    provider: String,
    response_model: String,
    input_tokens: i64,
    output_tokens: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Keys>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_input_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation_input_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requests: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reservation_id: Option<String>,
}

impl InferenceBody {
    /// Starts an inference body: the provider (e.g. `"anthropic"`) and the
    /// model that served the response.
    pub fn builder(
        provider: impl Into<String>,
        response_model: impl Into<String>,
    ) -> InferenceBuilder {
        InferenceBuilder {
            company: None,
            input_tokens: None,
            output_tokens: None,
            body: InferenceBody {
                company: Keys::new(),
                provider: provider.into(),
                response_model: response_model.into(),
                input_tokens: 0,
                output_tokens: 0,
                user: None,
                request_model: None,
                cached_input_tokens: None,
                cache_creation_input_tokens: None,
                reasoning_tokens: None,
                cost: None,
                currency: None,
                operation: None,
                requests: None,
                event: None,
                lease_id: None,
                reservation_id: None,
            },
        }
    }

    /// The company's keys.
    pub fn company(&self) -> &Keys {
        &self.company
    }

    /// The inference provider.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The model that served the response.
    pub fn response_model(&self) -> &str {
        &self.response_model
    }

    /// Input tokens.
    pub fn input_tokens(&self) -> i64 {
        self.input_tokens
    }

    /// Output tokens.
    pub fn output_tokens(&self) -> i64 {
        self.output_tokens
    }

    /// The user's keys, if set.
    pub fn user(&self) -> Option<&Keys> {
        self.user.as_ref()
    }

    /// The model that was requested, if set.
    pub fn request_model(&self) -> Option<&str> {
        self.request_model.as_deref()
    }

    /// Input tokens served from a cache, if set.
    pub fn cached_input_tokens(&self) -> Option<i64> {
        self.cached_input_tokens
    }

    /// Input tokens written to a cache, if set.
    pub fn cache_creation_input_tokens(&self) -> Option<i64> {
        self.cache_creation_input_tokens
    }

    /// Reasoning tokens, if set.
    pub fn reasoning_tokens(&self) -> Option<i64> {
        self.reasoning_tokens
    }

    /// The cost as a decimal string, if set.
    pub fn cost(&self) -> Option<&str> {
        self.cost.as_deref()
    }

    /// The ISO 4217 currency of the cost, if set.
    pub fn currency(&self) -> Option<&str> {
        self.currency.as_deref()
    }

    /// The operation (the platform assumes `chat`), if set.
    pub fn operation(&self) -> Option<&str> {
        self.operation.as_deref()
    }

    /// How many requests the event stands for (the platform assumes 1), if set.
    pub fn requests(&self) -> Option<i64> {
        self.requests
    }

    /// The track event fanned out for usage-based billing, if set.
    pub fn event(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The credit lease the usage redeems against, if set.
    pub fn lease_id(&self) -> Option<&str> {
        self.lease_id.as_deref()
    }

    /// The credit reservation the usage settles, if set.
    pub fn reservation_id(&self) -> Option<&str> {
        self.reservation_id.as_deref()
    }
}

/// Builds an [`InferenceBody`]; validation happens in
/// [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct InferenceBuilder {
    company: Option<Keys>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    body: InferenceBody,
}

impl InferenceBuilder {
    /// Adds keys of the company the usage belongs to (required).
    pub fn company<K: Into<String>, V: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        collect_keys(self.company.get_or_insert_with(Keys::new), keys);
        self
    }

    /// Adds keys of the user the usage belongs to.
    pub fn user<K: Into<String>, V: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        collect_keys(self.body.user.get_or_insert_with(Keys::new), keys);
        self
    }

    /// Sets the input tokens (required).
    pub fn input_tokens(mut self, tokens: i64) -> Self {
        self.input_tokens = Some(tokens);
        self
    }

    /// Sets the output tokens (required).
    pub fn output_tokens(mut self, tokens: i64) -> Self {
        self.output_tokens = Some(tokens);
        self
    }

    /// Sets the model that was requested (when it differs from the one that
    /// answered).
    pub fn request_model(mut self, model: impl Into<String>) -> Self {
        self.body.request_model = Some(model.into());
        self
    }

    /// Sets the input tokens served from a cache.
    pub fn cached_input_tokens(mut self, tokens: i64) -> Self {
        self.body.cached_input_tokens = Some(tokens);
        self
    }

    /// Sets the input tokens written to a cache.
    pub fn cache_creation_input_tokens(mut self, tokens: i64) -> Self {
        self.body.cache_creation_input_tokens = Some(tokens);
        self
    }

    /// Sets the reasoning tokens.
    pub fn reasoning_tokens(mut self, tokens: i64) -> Self {
        self.body.reasoning_tokens = Some(tokens);
        self
    }

    /// Sets the cost as a decimal string such as `"0.0123"` (without it the
    /// platform derives the cost from the model's pricing).
    pub fn cost(mut self, cost: impl Into<String>) -> Self {
        self.body.cost = Some(cost.into());
        self
    }

    /// Sets the ISO 4217 currency of the cost (the platform assumes `usd`).
    pub fn currency(mut self, currency: impl Into<String>) -> Self {
        self.body.currency = Some(currency.into());
        self
    }

    /// Sets the operation (the platform assumes `chat`).
    pub fn operation(mut self, operation: impl Into<String>) -> Self {
        self.body.operation = Some(operation.into());
        self
    }

    /// Sets how many requests the event stands for (the platform assumes 1).
    pub fn requests(mut self, requests: i64) -> Self {
        self.body.requests = Some(requests);
        self
    }

    /// Names a track event to fan out for usage-based billing.
    pub fn event(mut self, event: impl Into<String>) -> Self {
        self.body.event = Some(event.into());
        self
    }

    /// Redeems the usage against a credit lease.
    pub fn lease_id(mut self, lease_id: impl Into<String>) -> Self {
        self.body.lease_id = Some(lease_id.into());
        self
    }

    /// Settles a credit reservation.
    pub fn reservation_id(mut self, reservation_id: impl Into<String>) -> Self {
        self.body.reservation_id = Some(reservation_id.into());
        self
    }

    /// Validates: the company (1 to [`MAX_KEYS`] keys) and both token counts
    /// are set; provider and models are 1 to [`MAX_NAME_LEN`] characters;
    /// token and request counts are not negative; the cost is a plain
    /// decimal number (`"12"`, `"0.0123"`) and the currency three ASCII
    /// letters.
    pub fn build(self) -> Result<InferenceBody, EventError> {
        let mut b = self.body;
        b.company = self
            .company
            .ok_or(EventError::Missing { field: "company" })?;
        b.input_tokens = self.input_tokens.ok_or(EventError::Missing {
            field: "input_tokens",
        })?;
        b.output_tokens = self.output_tokens.ok_or(EventError::Missing {
            field: "output_tokens",
        })?;
        check_keys("company", &b.company)?;
        if let Some(keys) = &b.user {
            check_keys("user", keys)?;
        }
        check_len("provider", &b.provider, MAX_NAME_LEN)?;
        check_len("response_model", &b.response_model, MAX_NAME_LEN)?;
        for field in [
            ("request_model", b.request_model.as_deref()),
            ("operation", b.operation.as_deref()),
            ("event", b.event.as_deref()),
            ("lease_id", b.lease_id.as_deref()),
            ("reservation_id", b.reservation_id.as_deref()),
        ] {
            check_optional_id(field.0, field.1)?;
        }
        let counts = [
            Some(b.input_tokens),
            Some(b.output_tokens),
            b.cached_input_tokens,
            b.cache_creation_input_tokens,
            b.reasoning_tokens,
            b.requests,
        ];
        if counts.into_iter().flatten().any(|n| n < 0) {
            return Err(EventError::InvalidBody {
                reason: "token and request counts must not be negative",
            });
        }
        if let Some(cost) = &b.cost
            && !is_decimal(cost)
        {
            return Err(EventError::InvalidBody {
                reason: "`cost` must be a decimal number such as \"0.0123\"",
            });
        }
        if let Some(currency) = &b.currency
            && !(currency.len() == 3 && currency.bytes().all(|c| c.is_ascii_alphabetic()))
        {
            return Err(EventError::InvalidBody {
                reason: "`currency` must be a three-letter ISO 4217 code",
            });
        }
        Ok(b)
    }
}

/// `12`, `0.5`, `-3.25`: an optional minus, digits, optionally a point
/// followed by digits.
fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
    all_digits(int) && frac.is_none_or(all_digits)
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
    /// An inference event.
    Inference(Box<InferenceBody>),
    /// Another kind with a raw JSON body.
    Other {
        /// The wire name of the kind; not one of the typed kinds.
        event_type: String,
        /// The body, sent as is.
        body: Value,
    },
}

impl EventBody {
    /// A body of a kind without a typed variant (a kind the platform added
    /// after this version).
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
            Self::Inference(_) => EventType::Inference,
            Self::Other { event_type, .. } => EventType::from_wire(event_type),
        }
    }

    /// The wire name of the kind, without allocating.
    pub fn type_str(&self) -> &str {
        match self {
            Self::Identify(_) => "identify",
            Self::Track(_) => "track",
            Self::FlagCheck(_) => "flag_check",
            Self::Inference(_) => "inference",
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
            Self::Inference(b) => b.serialize(serializer),
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

impl From<InferenceBody> for EventBody {
    fn from(b: InferenceBody) -> Self {
        Self::Inference(Box::new(b))
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
        assert!(EventBody::other("session", serde_json::json!({"a": 1})).is_ok());
        assert!(EventBody::other("track", serde_json::json!({})).is_err());
        assert!(EventBody::other("inference", serde_json::json!({})).is_err());
        assert!(EventBody::other("session", serde_json::json!([1])).is_err());
        assert!(EventBody::other("", serde_json::json!({})).is_err());
    }

    #[test]
    fn event_type_round_trips_wire_names() {
        for name in ["identify", "track", "flag_check", "inference", "session"] {
            assert_eq!(EventType::from_wire(name).as_str(), name);
        }
        assert_eq!(EventType::from_wire("inference"), EventType::Inference);
    }

    #[test]
    fn builders_take_pairs_and_maps() {
        let company = Keys::from([("id".to_owned(), "acme".to_owned())]);
        let body = TrackBody::builder("e")
            .company(&company)
            .user([("email", "a@b.c")])
            .traits([("plan", "pro")])
            .traits(serde_json::json!({"seats": 3}).as_object().unwrap().clone())
            .lease_id("lease_1")
            .reservation_id("res_1")
            .build()
            .unwrap();
        assert_eq!(body.company(), Some(&company));
        assert_eq!(body.traits().unwrap().len(), 2);
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(json["lease_id"], "lease_1");
        assert_eq!(json["reservation_id"], "res_1");
        assert!(matches!(
            TrackBody::builder("e").lease_id("").build(),
            Err(EventError::Empty { field: "lease_id" })
        ));
    }

    #[test]
    fn inference_requires_company_and_tokens_and_checks_numbers() {
        let base = || {
            InferenceBody::builder("anthropic", "m")
                .company([("id", "acme")])
                .input_tokens(10)
                .output_tokens(2)
        };
        let body = base()
            .requests(2)
            .currency("usd")
            .cost("12.50")
            .build()
            .unwrap();
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"company": {"id": "acme"}, "provider": "anthropic",
                "response_model": "m", "input_tokens": 10, "output_tokens": 2,
                "cost": "12.50", "currency": "usd", "requests": 2})
        );
        let missing = |b: InferenceBuilder| match b.build() {
            Err(EventError::Missing { field }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            missing(
                InferenceBody::builder("p", "m")
                    .input_tokens(1)
                    .output_tokens(1)
            ),
            "company"
        );
        assert_eq!(
            missing(
                InferenceBody::builder("p", "m")
                    .company([("id", "a")])
                    .output_tokens(1)
            ),
            "input_tokens"
        );
        for bad in ["", "1.", ".5", "1e3", "one", "--1"] {
            assert!(base().cost(bad).build().is_err(), "{bad}");
        }
        for good in ["0", "-1", "0.0123", "12"] {
            assert!(base().cost(good).build().is_ok(), "{good}");
        }
        assert!(base().currency("us").build().is_err());
        assert!(base().reasoning_tokens(-1).build().is_err());
        assert!(
            InferenceBody::builder("", "m")
                .company([("id", "a")])
                .input_tokens(1)
                .output_tokens(1)
                .build()
                .is_err()
        );
        let event: EventBody = body.into();
        assert_eq!(event.event_type(), EventType::Inference);
    }
}
