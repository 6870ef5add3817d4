//! Small deserialization helpers shared by the generated model decoders.
//!
//! The generated structs implement `Deserialize` with a compact map visitor instead of serde's
//! derive: the same semantics for JSON objects (unknown keys skipped, `missing field` errors for
//! required fields, `null` or absence for optional ones) with much less code to compile.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, Error, Visitor};

/// An object key, borrowed from the input when the format allows it.
pub(crate) struct Key<'de>(Cow<'de, str>);

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// An RFC 3339 date-time.
pub(crate) struct DateTime(pub(crate) time::OffsetDateTime);

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        time::serde::rfc3339::deserialize(deserializer).map(DateTime)
    }
}

/// An RFC 3339 date-time or `null`.
pub(crate) struct OptDateTime(pub(crate) Option<time::OffsetDateTime>);

impl<'de> Deserialize<'de> for OptDateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        time::serde::rfc3339::option::deserialize(deserializer).map(OptDateTime)
    }
}

/// The error for a required field that was absent.
pub(crate) fn missing<E: Error>(field: &'static str) -> E {
    E::missing_field(field)
}
