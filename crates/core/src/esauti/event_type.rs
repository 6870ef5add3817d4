//! What every [`EventType`] can do, written once by hand: names, parsing,
//! registry lookups and serde. The registry data itself (the table, the
//! name index and the variant positions) is generated from
//! `crates/core/data/esauti-events.tsv` into `generated/esauti/events.rs`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::generated::esauti::events::{BY_NAME, EntityType, EventGroup, EventType, KNOWN, TABLE};
use crate::open_enum::OpenEnum;

impl EventType {
    /// Every registered type, in registry order.
    pub fn registered() -> &'static [EventType] {
        &KNOWN
    }

    /// Parses a wire name: a registered name gives its variant, anything else
    /// [`EventType::Custom`]. Matching is exact (case-sensitive); registry aliases are not
    /// resolved.
    pub fn parse(name: &str) -> EventType {
        match Self::lookup(name) {
            Some(known) => known.clone(),
            None => EventType::Custom(name.to_owned()),
        }
    }

    /// The registered type of that name, if any.
    pub fn lookup(name: &str) -> Option<&'static EventType> {
        BY_NAME
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| &KNOWN[usize::from(BY_NAME[i].1)])
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            EventType::Custom(name) => name,
            known => known.index().map_or("", |i| TABLE[i].name),
        }
    }

    /// Whether this is a registered type (not [`EventType::Custom`]).
    pub fn is_registered(&self) -> bool {
        self.index().is_some()
    }

    /// The registry group; `None` for custom types.
    pub fn group(&self) -> Option<EventGroup> {
        self.index().map(|i| TABLE[i].group)
    }

    /// The registry entity type; `None` for custom types.
    pub fn entity_type(&self) -> Option<EntityType> {
        self.index().map(|i| TABLE[i].entity_type)
    }

    /// The dot-paths a registered type requires, in registry order; empty for custom types.
    pub fn required_properties(&self) -> &'static [&'static str] {
        match self.index() {
            Some(i) => TABLE[i].required,
            None => &[],
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(EventType::parse(s))
    }
}

impl From<&str> for EventType {
    fn from(s: &str) -> Self {
        EventType::parse(s)
    }
}

impl From<String> for EventType {
    fn from(s: String) -> Self {
        match Self::lookup(&s) {
            Some(known) => known.clone(),
            None => EventType::Custom(s),
        }
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Names outside the registry are kept as [`EventType::Custom`], as for any
/// open enum of the API.
impl OpenEnum for EventType {
    fn as_str(&self) -> &str {
        EventType::as_str(self)
    }
    fn from_wire(value: &str) -> Self {
        EventType::parse(value)
    }
    fn from_wire_owned(value: String) -> Self {
        EventType::from(value)
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::open_enum::deserialize(deserializer)
    }
}
