//! `track` outside the OpenFeature trait: the Rust OpenFeature SDK has no
//! tracking API, so [`SchematicProvider::track`] takes the same
//! [`EvaluationContext`] a flag evaluation does and queues a Schematic
//! `track` event through the provider's client.

use std::fmt;

use flagwire_core::events::{EventError, TrackBody, Traits};
use open_feature::{EvaluationContext, EvaluationContextFieldValue};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;

use crate::context::{self, ContextError};
use crate::provider::SchematicProvider;

/// Options of [`SchematicProvider::track_with`]: a quantity, traits of your
/// own, and whether the context's other attributes become traits.
///
/// ```
/// use flagwire_openfeature::TrackOptions;
///
/// let options = TrackOptions::new().quantity(3).trait_value("source", "export-button");
/// assert_eq!(options.get_quantity(), Some(3));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct TrackOptions {
    quantity: Option<i64>,
    traits: Traits,
    context_traits: bool,
}

impl Default for TrackOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl TrackOptions {
    /// No quantity, no traits of your own; the context's other attributes
    /// are sent as traits.
    pub fn new() -> Self {
        TrackOptions {
            quantity: None,
            traits: Traits::new(),
            context_traits: true,
        }
    }

    /// The event's quantity (Schematic counts 1 without one).
    pub fn quantity(mut self, quantity: i64) -> Self {
        self.quantity = Some(quantity);
        self
    }

    /// One trait; traits set here win over context attributes of the same
    /// name.
    pub fn trait_value(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.traits.insert(name.into(), value.into());
        self
    }

    /// Whether the context's attributes other than company and user keys
    /// are sent as traits (default: yes, as the C# provider does).
    pub fn context_traits(mut self, on: bool) -> Self {
        self.context_traits = on;
        self
    }

    /// The quantity, if set.
    pub fn get_quantity(&self) -> Option<i64> {
        self.quantity
    }
}

/// Why [`SchematicProvider::track`] queued nothing.
#[derive(Debug)]
#[non_exhaustive]
pub enum TrackError {
    /// The context could not be mapped to company and user keys.
    InvalidContext(ContextError),
    /// The event is invalid (empty name, too many keys, ...).
    Event(EventError),
    /// The client refused it (event queue full, shut down, ...).
    Client(flagwire::Error),
}

impl TrackError {
    /// The context error, if that is why.
    pub fn context_error(&self) -> Option<&ContextError> {
        match self {
            TrackError::InvalidContext(e) => Some(e),
            _ => None,
        }
    }

    /// The event error, if that is why.
    pub fn event_error(&self) -> Option<&EventError> {
        match self {
            TrackError::Event(e) => Some(e),
            _ => None,
        }
    }

    /// The client error, if that is why.
    pub fn client_error(&self) -> Option<&flagwire::Error> {
        match self {
            TrackError::Client(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for TrackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackError::InvalidContext(e) => write!(f, "track: invalid context: {e}"),
            TrackError::Event(e) => write!(f, "track: invalid event: {e}"),
            TrackError::Client(e) => write!(f, "track: not queued: {e}"),
        }
    }
}

impl std::error::Error for TrackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrackError::InvalidContext(e) => Some(e),
            TrackError::Event(e) => Some(e),
            TrackError::Client(e) => Some(e),
        }
    }
}

/// A context attribute as a trait value, if it has a JSON form.
fn trait_value(value: &EvaluationContextFieldValue) -> Option<Value> {
    match value {
        EvaluationContextFieldValue::Bool(b) => Some(Value::Bool(*b)),
        EvaluationContextFieldValue::Int(i) => Some(Value::from(*i)),
        EvaluationContextFieldValue::Float(f) => {
            serde_json::Number::from_f64(*f).map(Value::Number)
        }
        EvaluationContextFieldValue::String(s) => Some(Value::String(s.clone())),
        EvaluationContextFieldValue::DateTime(t) => t.format(&Rfc3339).ok().map(Value::String),
        EvaluationContextFieldValue::Struct(inner) => inner.downcast_ref::<Value>().cloned(),
    }
}

impl SchematicProvider {
    /// Queues a Schematic `track` event named `event` for the company and
    /// user of `context` (mapped as for flag checks), with the context's
    /// other attributes as traits. Returns at once; the client delivers it
    /// in the background.
    ///
    /// ```
    /// use flagwire::schematic::Client;
    /// use flagwire_openfeature::SchematicProvider;
    /// use open_feature::EvaluationContext;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = Client::builder("sch_dev_example").offline(true).build()?;
    /// let provider = SchematicProvider::new(client);
    /// let context = EvaluationContext::default()
    ///     .with_targeting_key("ann")
    ///     .with_custom_field("company.id", "acme");
    /// provider.track("export", &context)?;
    /// # Ok(()) }
    /// ```
    pub fn track(&self, event: &str, context: &EvaluationContext) -> Result<(), TrackError> {
        self.track_with(event, context, TrackOptions::new())
    }

    /// [`track`](Self::track) with a quantity and traits.
    pub fn track_with(
        &self,
        event: &str,
        context: &EvaluationContext,
        options: TrackOptions,
    ) -> Result<(), TrackError> {
        let body = self.track_body(event, context, options)?;
        self.client().track(body).map_err(TrackError::Client)
    }

    /// The event [`track_with`](Self::track_with) would queue.
    pub fn track_body(
        &self,
        event: &str,
        context: &EvaluationContext,
        options: TrackOptions,
    ) -> Result<TrackBody, TrackError> {
        let mapped = context::map(context, self.targeting_key_mapping(), false)
            .map_err(TrackError::InvalidContext)?;
        let mut builder = TrackBody::builder(event);
        if !mapped.company.is_empty() {
            builder = builder.company(mapped.company.iter());
        }
        if !mapped.user.is_empty() {
            builder = builder.user(mapped.user.iter());
        }
        let mut traits = Traits::new();
        if options.context_traits {
            for (name, value) in &context.custom_fields {
                if context::is_key_attribute(name) {
                    continue;
                }
                if let Some(value) = trait_value(value) {
                    traits.insert(name.clone(), value);
                }
            }
        }
        traits.extend(options.traits);
        if !traits.is_empty() {
            builder = builder.traits(traits);
        }
        if let Some(quantity) = options.quantity {
            builder = builder.quantity(quantity);
        }
        builder.build().map_err(TrackError::Event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use open_feature::EvaluationContextFieldValue as F;

    fn provider() -> SchematicProvider {
        let client = flagwire::schematic::Client::builder("sch_dev_test")
            .offline(true)
            .build()
            .unwrap();
        SchematicProvider::new(client)
    }

    #[test]
    fn context_becomes_keys_and_traits() {
        let when = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let context = EvaluationContext::default()
            .with_targeting_key("ann")
            .with_custom_field("company.id", "acme")
            .with_custom_field("plan", "pro")
            .with_custom_field("seats", 12)
            .with_custom_field("ratio", 0.5)
            .with_custom_field("beta", true)
            .with_custom_field("nan", f64::NAN)
            .with_custom_field("since", when)
            .with_custom_field("json", F::new_struct(serde_json::json!({"a": 1})))
            .with_custom_field("opaque", F::new_struct(vec![1u8]));
        let body = provider()
            .track_body(
                "export",
                &context,
                TrackOptions::new().quantity(3).trait_value("plan", "team"),
            )
            .unwrap();
        assert_eq!(body.event(), "export");
        assert_eq!(body.quantity(), Some(3));
        assert_eq!(
            body.company().unwrap().get("id").map(String::as_str),
            Some("acme")
        );
        assert_eq!(
            body.user().unwrap().get("id").map(String::as_str),
            Some("ann")
        );
        let traits = body.traits().unwrap();
        assert_eq!(traits["plan"], "team", "explicit traits win");
        assert_eq!(traits["seats"], 12);
        assert_eq!(traits["ratio"], 0.5);
        assert_eq!(traits["beta"], true);
        assert_eq!(traits["since"], "2023-11-14T22:13:20Z");
        assert_eq!(traits["json"]["a"], 1);
        assert!(!traits.contains_key("nan") && !traits.contains_key("opaque"));
        assert!(!traits.contains_key("company.id"));
    }

    #[test]
    fn context_traits_can_be_left_out() {
        let context = EvaluationContext::default()
            .with_custom_field("company.id", "acme")
            .with_custom_field("plan", "pro");
        let body = provider()
            .track_body(
                "export",
                &context,
                TrackOptions::new().context_traits(false),
            )
            .unwrap();
        assert!(body.traits().is_none_or(|t| t.is_empty()));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let p = provider();
        let bad = EvaluationContext::default().with_custom_field("company.id", 1);
        let e = p.track("export", &bad).unwrap_err();
        assert!(e.context_error().is_some(), "{e}");
        let e = p.track("", &EvaluationContext::default()).unwrap_err();
        assert!(e.event_error().is_some(), "{e}");
        assert!(e.to_string().starts_with("track:"));
    }

    #[test]
    fn offline_track_is_accepted() {
        let context = EvaluationContext::default().with_custom_field("company.id", "acme");
        provider().track("export", &context).unwrap();
    }
}
