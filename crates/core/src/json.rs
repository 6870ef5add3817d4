//! Free-form JSON objects: trait maps, metadata and other members the API gives no shape.
//!
//! The generated models and the event envelopes share one type for them,
//! [`Traits`] (`serde_json::Map<String, serde_json::Value>`). Builders of the generated models
//! fill such a member from pairs (`.traits([("plan", "pro")])`), one entry at a time
//! (`.trait_value("seats", 25)`) or from any serializable object (`.try_traits(json!({..}))`,
//! through [`to_object`]), which is where a value that is not an object is refused.

use std::fmt;

use serde::Serialize;

pub use crate::events::Traits;

/// Why a value could not be used as a JSON object.
#[derive(Debug)]
#[non_exhaustive]
pub enum ObjectError {
    /// The value serialized to JSON that is not an object.
    NotAnObject {
        /// What it was instead: `null`, `a boolean`, `a number`, `a string` or `an array`.
        found: &'static str,
    },
    /// The value could not be serialized to JSON at all.
    Serialize(serde_json::Error),
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::NotAnObject { found } => {
                write!(f, "expected a JSON object, found {found}")
            }
            ObjectError::Serialize(e) => write!(f, "could not serialize the value to JSON: {e}"),
        }
    }
}

impl std::error::Error for ObjectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ObjectError::NotAnObject { .. } => None,
            ObjectError::Serialize(e) => Some(e),
        }
    }
}

/// Serializes `value` and returns it as a JSON object: a `json!({..})` value, a map, or a
/// struct with named fields. Anything that does not serialize to an object is an error.
///
/// ```
/// use flagwire_core::json::{ObjectError, to_object};
/// use serde_json::json;
///
/// let traits = to_object(json!({"city": "Atlanta", "high_score": 25})).unwrap();
/// assert_eq!(traits["high_score"], 25);
///
/// let err = to_object(json!(["not", "an", "object"])).unwrap_err();
/// assert!(matches!(err, ObjectError::NotAnObject { found: "an array" }));
/// assert_eq!(err.to_string(), "expected a JSON object, found an array");
/// ```
pub fn to_object(value: impl Serialize) -> Result<Traits, ObjectError> {
    use serde_json::Value;
    match serde_json::to_value(value).map_err(ObjectError::Serialize)? {
        Value::Object(map) => Ok(map),
        other => Err(ObjectError::NotAnObject {
            found: match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_pass_and_everything_else_is_named() {
        #[derive(Serialize)]
        struct Plan {
            plan: &'static str,
            seats: u32,
        }
        let obj = to_object(Plan {
            plan: "pro",
            seats: 3,
        })
        .unwrap();
        assert_eq!(json!(obj), json!({"plan": "pro", "seats": 3}));
        for (value, found) in [
            (json!(null), "null"),
            (json!(true), "a boolean"),
            (json!(1.5), "a number"),
            (json!("x"), "a string"),
            (json!([]), "an array"),
        ] {
            let err = to_object(&value).unwrap_err();
            assert!(
                matches!(err, ObjectError::NotAnObject { found: f } if f == found),
                "{value}: {err:?}"
            );
        }
    }

    #[test]
    fn serialization_failures_are_kept() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("refused"))
            }
        }
        let err = to_object(Fails).unwrap_err();
        assert!(matches!(err, ObjectError::Serialize(_)), "{err:?}");
        assert!(err.to_string().contains("refused"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }
}
