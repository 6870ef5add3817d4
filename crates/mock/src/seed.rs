//! Seed data and the seeding helpers of [`MockServer`](crate::MockServer).

use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::MockError;
use crate::faults::Host;
use crate::schematic::requests::{
    CreateEvent, CreateFlag, CreateWebhook, FeatureBody, Keys, UpdateRules, UpsertCompany,
    UpsertUser,
};
use crate::server::Inner;
use crate::store::Kind;
use crate::util::ApiFailure;
use flagwire_core::schematic::models as wire;

/// Initial state for a [`MockServer`](crate::MockServer).
///
/// The JSON format is an object whose optional arrays hold request bodies of
/// the platform API, applied in this order:
///
/// | key | items |
/// |---|---|
/// | `features` | `CreateFeatureRequestBody` |
/// | `flags` | `CreateFlagRequestBody`, plus optional `rules` (`CreateOrUpdateRuleRequestBody[]`) |
/// | `companies` | `UpsertCompanyRequestBody` |
/// | `users` | `UpsertUserRequestBody` |
/// | `webhooks` | `CreateWebhookRequestBody` |
/// | `events` | `CreateEventRequestBody` (identify and track events take effect) |
///
/// ```
/// use flagwire_mock::Seed;
///
/// let seed = Seed::from_json(r#"{
///     "companies": [{"keys": {"id": "acme"}, "name": "Acme", "traits": {"seats": 5}}],
///     "flags": [{"key": "beta", "name": "Beta", "description": "", "flag_type": "boolean",
///                "default_value": false}]
/// }"#)?;
/// # Ok::<(), flagwire_mock::MockError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Seed {
    data: SeedData,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedData {
    #[serde(default)]
    features: Vec<Value>,
    #[serde(default)]
    flags: Vec<Value>,
    #[serde(default)]
    companies: Vec<Value>,
    #[serde(default)]
    users: Vec<Value>,
    #[serde(default)]
    webhooks: Vec<Value>,
    #[serde(default)]
    events: Vec<Value>,
}

impl Seed {
    /// Parses seed JSON.
    ///
    /// # Errors
    ///
    /// [`MockError::Seed`] if the text is not a seed object. Items are
    /// validated when applied.
    pub fn from_json(text: &str) -> Result<Seed, MockError> {
        let data: SeedData =
            serde_json::from_str(text).map_err(|e| MockError::Seed(e.to_string()))?;
        Ok(Seed { data })
    }

    /// Reads and parses a seed file.
    ///
    /// # Errors
    ///
    /// [`MockError::Io`] if the file cannot be read, [`MockError::Seed`] if
    /// it is not a seed object.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Seed, MockError> {
        let text = std::fs::read_to_string(path)?;
        Self::from_json(&text)
    }

    pub(crate) fn apply(&self, inner: &Inner) -> Result<(), MockError> {
        for (i, v) in self.data.features.iter().enumerate() {
            create_feature(inner, v.clone()).map_err(|e| at("features", i, e))?;
        }
        for (i, v) in self.data.flags.iter().enumerate() {
            create_flag(inner, v.clone()).map_err(|e| at("flags", i, e))?;
        }
        for (i, v) in self.data.companies.iter().enumerate() {
            upsert_company(inner, v.clone()).map_err(|e| at("companies", i, e))?;
        }
        for (i, v) in self.data.users.iter().enumerate() {
            upsert_user(inner, v.clone()).map_err(|e| at("users", i, e))?;
        }
        for (i, v) in self.data.webhooks.iter().enumerate() {
            create_webhook(inner, v.clone()).map_err(|e| at("webhooks", i, e))?;
        }
        for (i, v) in self.data.events.iter().enumerate() {
            create_event(inner, v.clone()).map_err(|e| at("events", i, e))?;
        }
        Ok(())
    }
}

fn at(section: &str, i: usize, e: MockError) -> MockError {
    match e {
        MockError::Seed(msg) => MockError::Seed(format!("{section}[{i}]: {msg}")),
        other => other,
    }
}

/// Decodes a seed item as the generated platform type `G` (the authority on
/// shape and field types), then as the emulator's view `T`.
fn parse<G: DeserializeOwned, T: DeserializeOwned>(v: Value) -> Result<T, MockError> {
    serde_json::from_value::<G>(v.clone()).map_err(|e| MockError::Seed(e.to_string()))?;
    serde_json::from_value(v).map_err(|e| MockError::Seed(e.to_string()))
}

fn api(e: ApiFailure) -> MockError {
    MockError::Seed(e.message.into_owned())
}

pub(crate) fn upsert_company(inner: &Inner, body: Value) -> Result<Value, MockError> {
    let body: UpsertCompany = parse::<wire::UpsertCompanyRequestBody, _>(body)?;
    body.validate().map_err(api)?;
    inner
        .mutate(|s| crate::schematic::apply_upsert_company(s, &body, false))
        .map_err(api)
}

pub(crate) fn upsert_user(inner: &Inner, body: Value) -> Result<Value, MockError> {
    let body: UpsertUser = parse::<wire::UpsertUserRequestBody, _>(body)?;
    body.validate().map_err(api)?;
    inner
        .mutate(|s| crate::schematic::apply_upsert_user(s, &body, false))
        .map_err(api)
}

pub(crate) fn create_flag(inner: &Inner, body: Value) -> Result<Value, MockError> {
    let body: CreateFlag = parse::<wire::CreateFlagRequestBody, _>(body)?;
    body.validate().map_err(api)?;
    inner
        .mutate(|s| crate::schematic::apply_create_flag(s, &body))
        .map_err(api)
}

pub(crate) fn set_flag_rules(
    inner: &Inner,
    flag_key: &str,
    rules: Value,
) -> Result<Value, MockError> {
    let body: UpdateRules =
        parse::<wire::UpdateFlagRulesRequestBody, _>(serde_json::json!({ "rules": rules }))?;
    crate::schematic::validate_rules(&body).map_err(api)?;
    inner
        .mutate(|s| -> Result<Value, ApiFailure> {
            let id = s
                .flag_by_key(flag_key)
                .map(|f| f.id.clone())
                .ok_or_else(|| ApiFailure::not_found("flag"))?;
            s.set_flag_rules(&id, &body.rules)?;
            let f = s
                .flags
                .get(&id)
                .ok_or_else(|| ApiFailure::not_found("flag"))?;
            Ok(crate::render::flag_detail(s, f))
        })
        .map_err(api)
}

pub(crate) fn create_feature(inner: &Inner, body: Value) -> Result<Value, MockError> {
    let body: FeatureBody = parse::<wire::CreateFeatureRequestBody, _>(body)?;
    body.validate(true).map_err(api)?;
    inner
        .mutate(|s| crate::schematic::apply_create_feature(s, &body))
        .map_err(api)
}

pub(crate) fn create_webhook(inner: &Inner, body: Value) -> Result<Value, MockError> {
    let body: CreateWebhook = parse::<wire::CreateWebhookRequestBody, _>(body)?;
    inner
        .mutate(|s| crate::schematic::apply_create_webhook(s, &body))
        .map_err(api)
}

fn create_event(inner: &Inner, body: Value) -> Result<(), MockError> {
    let body: CreateEvent = parse::<wire::CreateEventRequestBody, _>(body)?;
    let ev = crate::schematic::validate_event(
        &body.event_type,
        body.body.as_ref(),
        body.idempotency_key.as_deref(),
        body.sent_at.as_deref(),
    )
    .map_err(api)?;
    inner
        .mutate(|s| crate::schematic::apply_event(s, ev, Host::Rest))
        .map_err(api)?;
    Ok(())
}

pub(crate) fn track(
    inner: &Inner,
    company_keys: &[(&str, &str)],
    event: &str,
    quantity: i64,
) -> Result<(), MockError> {
    let keys: Keys = company_keys
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let body = serde_json::json!({ "company": keys, "event": event, "quantity": quantity });
    let ev = crate::schematic::validate_event("track", Some(&body), None, None).map_err(api)?;
    inner
        .mutate(|s| -> Result<(), ApiFailure> {
            if s.find_by_keys(Kind::Company, &keys).is_none() {
                return Err(ApiFailure::not_found("company"));
            }
            crate::schematic::apply_event(s, ev, Host::Rest)?;
            Ok(())
        })
        .map_err(api)
}
