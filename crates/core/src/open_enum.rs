//! Open (forward-compatible) string enums.
//!
//! Every string enum of the API is generated with an internal `open_enum!` macro: the known
//! values become variants and any other value is kept in `Unknown(String)`, so a value added by
//! the server later never breaks decoding, and it is sent back unchanged.

use std::fmt;
use std::marker::PhantomData;

/// Implemented by every generated open enum, and by eSauti's `EventType`.
pub trait OpenEnum: Sized {
    /// The wire value.
    fn as_str(&self) -> &str;
    /// Maps a wire value to its variant, or to `Unknown` when it is not a known one.
    fn from_wire(value: &str) -> Self;
    /// Like [`from_wire`](OpenEnum::from_wire), reusing the allocation for unknown values.
    fn from_wire_owned(value: String) -> Self;
}

struct OpenEnumVisitor<T>(PhantomData<T>);

impl<T: OpenEnum> serde::de::Visitor<'_> for OpenEnumVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::from_wire(v))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<T, E> {
        Ok(T::from_wire_owned(v))
    }
}

/// Deserializes an open enum from a string.
pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: OpenEnum,
{
    deserializer.deserialize_str(OpenEnumVisitor(PhantomData))
}

/// Declares an open string enum: `Variant => "wire"` pairs plus an `Unknown(String)` catch-all,
/// with `as_str`, `Display`, `From<&str>`, serde and query-string support.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($variant:ident => $wire:literal,)+ }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $(
                #[doc = concat!("`", $wire, "`")]
                $variant,
            )+
            /// A value this version of the crate does not know, kept as sent.
            Unknown(String),
        }

        impl $crate::open_enum::OpenEnum for $name {
            fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Unknown(s) => s,
                }
            }
            fn from_wire(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }
            fn from_wire_owned(value: String) -> Self {
                match value.as_str() {
                    $($wire => Self::$variant,)+
                    _ => Self::Unknown(value),
                }
            }
        }

        impl $name {
            /// The wire value.
            pub fn as_str(&self) -> &str {
                $crate::open_enum::OpenEnum::as_str(self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(value: &str) -> Self {
                $crate::open_enum::OpenEnum::from_wire(value)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                $crate::open_enum::deserialize(d)
            }
        }

        impl $crate::query::QueryValue for $name {
            fn write_raw(&self, out: &mut String) {
                out.push_str(self.as_str());
            }
        }
    };
}
pub(crate) use open_enum;
