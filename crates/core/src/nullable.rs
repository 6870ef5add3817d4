//! Tri-state values for optional request fields that the API lets clients set to `null`.
//!
//! JSON tells apart a member that is left out from one that is `null`, and update requests
//! give the two different meanings: a missing member leaves the stored value alone, a `null`
//! clears it. `Option<T>` has only two states, so an optional field the API description marks
//! `nullable` is a [`Nullable<T>`] in the generated request models: [`Absent`](Nullable::Absent)
//! (left out of the JSON, the default), [`Null`](Nullable::Null) (sent as `null`) or
//! [`Value`](Nullable::Value).
//!
//! ```
//! use flagwire_core::Nullable;
//! use flagwire_core::schematic::models::UpdatePlanRequestBody;
//!
//! // Setters set a value; `clear_*` sends an explicit `null`; anything else stays unset.
//! let body = UpdatePlanRequestBody::new("Pro").clear_description();
//! assert_eq!(body.description, Nullable::Null);
//! assert_eq!(
//!     serde_json::to_value(&body).unwrap(),
//!     serde_json::json!({"name": "Pro", "description": null}),
//! );
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A field that can be left out, sent as `null`, or sent with a value.
///
/// Generated structs skip an [`Absent`](Nullable::Absent) field when encoding (with
/// `skip_serializing_if = "Nullable::is_absent"`) and decode a missing member as `Absent`
/// and a `null` member as [`Null`](Nullable::Null). An `Option` converts with
/// [`From`]: `Some(v)` becomes `Value(v)` and `None` becomes `Null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Nullable<T> {
    /// Not sent: the member is left out of the JSON object, so the server keeps what it has.
    #[default]
    Absent,
    /// Sent as `null`: clears the value on the server.
    Null,
    /// Sent as this value.
    Value(T),
}

impl<T> Nullable<T> {
    /// Whether the field is left out.
    pub const fn is_absent(&self) -> bool {
        matches!(self, Nullable::Absent)
    }

    /// Whether the field is an explicit `null`.
    pub const fn is_null(&self) -> bool {
        matches!(self, Nullable::Null)
    }

    /// Whether the field holds a value.
    pub const fn is_value(&self) -> bool {
        matches!(self, Nullable::Value(_))
    }

    /// The value, if there is one (`None` for both `Absent` and `Null`).
    pub const fn value(&self) -> Option<&T> {
        match self {
            Nullable::Value(v) => Some(v),
            Nullable::Absent | Nullable::Null => None,
        }
    }

    /// Borrows the value in place.
    pub const fn as_ref(&self) -> Nullable<&T> {
        match self {
            Nullable::Absent => Nullable::Absent,
            Nullable::Null => Nullable::Null,
            Nullable::Value(v) => Nullable::Value(v),
        }
    }

    /// Borrows the value mutably in place.
    pub fn as_mut(&mut self) -> Nullable<&mut T> {
        match self {
            Nullable::Absent => Nullable::Absent,
            Nullable::Null => Nullable::Null,
            Nullable::Value(v) => Nullable::Value(v),
        }
    }

    /// The value, if there is one, dropping the difference between `Absent` and `Null`.
    pub fn into_option(self) -> Option<T> {
        match self {
            Nullable::Value(v) => Some(v),
            Nullable::Absent | Nullable::Null => None,
        }
    }

    /// Maps the value, keeping `Absent` and `Null` as they are.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Nullable<U> {
        match self {
            Nullable::Absent => Nullable::Absent,
            Nullable::Null => Nullable::Null,
            Nullable::Value(v) => Nullable::Value(f(v)),
        }
    }

    /// The value, after replacing `Absent` or `Null` with `make()`.
    pub fn get_or_insert_with(&mut self, make: impl FnOnce() -> T) -> &mut T {
        if !self.is_value() {
            *self = Nullable::Value(make());
        }
        match self {
            Nullable::Value(v) => v,
            // Just set above.
            Nullable::Absent | Nullable::Null => unreachable!("the value was just set"),
        }
    }
}

impl<T> From<Option<T>> for Nullable<T> {
    /// `Some(v)` is `Value(v)`; `None` is an explicit `Null`.
    fn from(value: Option<T>) -> Self {
        match value {
            Some(v) => Nullable::Value(v),
            None => Nullable::Null,
        }
    }
}

impl<T: Serialize> Serialize for Nullable<T> {
    /// `Value(v)` encodes as `v`; `Null` (and `Absent`, when a struct does not skip it) as
    /// `null`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Nullable::Value(v) => serializer.serialize_some(v),
            Nullable::Absent | Nullable::Null => serializer.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    /// `null` decodes as `Null`, anything else as `Value`; a missing member is `Absent` through
    /// the field's default.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(Nullable::from)
    }
}

/// RFC 3339 encoding of a `Nullable<OffsetDateTime>` field (`#[serde(with = ...)]`).
pub(crate) mod rfc3339 {
    use serde::{Deserializer, Serializer};
    use time::OffsetDateTime;

    use super::Nullable;

    pub(crate) fn serialize<S: Serializer>(
        value: &Nullable<OffsetDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::option::serialize(&value.value().copied(), serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Nullable<OffsetDateTime>, D::Error> {
        time::serde::rfc3339::option::deserialize(deserializer).map(Nullable::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Patch {
        #[serde(default, skip_serializing_if = "Nullable::is_absent")]
        name: Nullable<String>,
        #[serde(default, skip_serializing_if = "Nullable::is_absent", with = "rfc3339")]
        at: Nullable<time::OffsetDateTime>,
    }

    #[test]
    fn the_three_states_encode_and_decode_distinctly() {
        let cases = [
            (Nullable::Absent, json!({})),
            (Nullable::Null, json!({"name": null})),
            (Nullable::Value("x".to_owned()), json!({"name": "x"})),
        ];
        for (name, wire) in cases {
            let patch = Patch {
                name,
                at: Nullable::Absent,
            };
            assert_eq!(serde_json::to_value(&patch).unwrap(), wire);
            assert_eq!(serde_json::from_value::<Patch>(wire).unwrap(), patch);
        }
    }

    #[test]
    fn date_times_are_rfc3339_or_null() {
        let at = time::macros::datetime!(2024-01-02 03:04:05 UTC);
        for (value, wire) in [
            (Nullable::Value(at), json!({"at": "2024-01-02T03:04:05Z"})),
            (Nullable::Null, json!({"at": null})),
            (Nullable::Absent, json!({})),
        ] {
            let patch = Patch {
                name: Nullable::Absent,
                at: value,
            };
            assert_eq!(serde_json::to_value(&patch).unwrap(), wire);
            assert_eq!(serde_json::from_value::<Patch>(wire).unwrap(), patch);
        }
        let err = serde_json::from_value::<Patch>(json!({"at": "yesterday"})).unwrap_err();
        assert!(err.to_string().contains("could not be parsed"), "{err}");
    }

    #[test]
    fn accessors_and_conversions() {
        let mut n: Nullable<i32> = Nullable::default();
        assert!(n.is_absent() && !n.is_null() && !n.is_value());
        assert_eq!(n.value(), None);
        *n.get_or_insert_with(|| 1) += 1;
        assert_eq!(n, Nullable::Value(2));
        assert_eq!(n.as_ref().map(|v| v * 10), Nullable::Value(20));
        if let Nullable::Value(v) = n.as_mut() {
            *v = 5;
        }
        assert_eq!(n.into_option(), Some(5));
        assert_eq!(Nullable::from(None::<i32>), Nullable::Null);
        assert_eq!(Nullable::from(Some(3)), Nullable::Value(3));
        assert_eq!(Nullable::<i32>::Null.into_option(), None);
        let mut null = Nullable::<i32>::Null;
        assert_eq!(*null.get_or_insert_with(|| 7), 7);
    }
}
