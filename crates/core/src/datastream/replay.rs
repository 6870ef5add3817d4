//! Stream ids and the replay cursor.
//!
//! The server stamps change messages with the id of its stream entry
//! (`<millis>-<seq>`, the Redis stream form). A client that remembers the
//! last id it applied can ask, after a reconnect, for everything published
//! since (`replay_from`); the replayed messages may overlap what it already
//! applied, so the [`ReplayCursor`] tells fresh messages from duplicates.
//! Snapshots and subscription confirmations carry no id and are always
//! fresh.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A server stream id.
///
/// Ids of the form `<millis>-<seq>` (both unsigned decimal numbers that fit
/// in a `u64`) are *numeric* and order by `(millis, seq)`, so `10-0` comes
/// after `9-5`. Any other non-empty text is kept verbatim as a
/// *non-numeric* id. For a total order, every numeric id sorts before every
/// non-numeric one, and non-numeric ids sort byte-wise among themselves.
/// Equality follows the order: `01-2` equals `1-2` (it still displays as
/// sent). The [`ReplayCursor`] does not rely on the order between the two
/// kinds (see [`ReplayCursor::observe`]).
///
/// ```
/// use flagwire_core::datastream::StreamId;
/// let a: StreamId = "1760000000000-9".parse()?;
/// let b: StreamId = "1760000000001-0".parse()?;
/// assert!(a < b);
/// assert_eq!(b.parts(), Some((1760000000001, 0)));
/// assert_eq!(b.to_string(), "1760000000001-0");
/// # Ok::<(), flagwire_core::datastream::StreamIdError>(())
/// ```
#[derive(Clone)]
pub struct StreamId {
    text: Box<str>,
    parts: Option<(u64, u64)>,
}

impl StreamId {
    /// The numeric id `<millis>-<seq>`.
    pub fn new(millis: u64, seq: u64) -> Self {
        Self {
            text: format!("{millis}-{seq}").into(),
            parts: Some((millis, seq)),
        }
    }

    /// Parses an id; only the empty string is refused.
    pub fn parse(text: &str) -> Result<Self, StreamIdError> {
        if text.is_empty() {
            return Err(StreamIdError::Empty);
        }
        Ok(Self {
            parts: parse_parts(text),
            text: text.into(),
        })
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `(millis, seq)` of a numeric id.
    pub fn parts(&self) -> Option<(u64, u64)> {
        self.parts
    }

    /// Whether the id has the `<millis>-<seq>` form.
    pub fn is_numeric(&self) -> bool {
        self.parts.is_some()
    }
}

fn parse_parts(text: &str) -> Option<(u64, u64)> {
    let (millis, seq) = text.split_once('-')?;
    let number = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse::<u64>().ok()
    };
    Some((number(millis)?, number(seq)?))
}

impl Ord for StreamId {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.parts, other.parts) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => self.text.cmp(&other.text),
        }
    }
}

impl PartialOrd for StreamId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for StreamId {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for StreamId {}

impl Hash for StreamId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self.parts {
            Some(parts) => parts.hash(state),
            None => self.text.hash(state),
        }
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({:?})", self.text)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for StreamId {
    type Err = StreamIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A stream id that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamIdError {
    /// The id is the empty string.
    Empty,
}

impl fmt::Display for StreamIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("a DataStream stream id cannot be empty"),
        }
    }
}

impl std::error::Error for StreamIdError {}

/// Whether a message is new to the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// Not applied yet: apply it, then [`commit`](ReplayCursor::commit).
    Fresh,
    /// At or before the last applied id: a replayed copy, skip it.
    Duplicate,
}

/// The id of the last applied message, for resuming a connection with
/// `replay_from` and for skipping what a replay delivers twice.
///
/// It is a plain "last applied" cursor: the SDK applies messages in order
/// on one consumer, so nothing can be applied out of order.
///
/// ```
/// use flagwire_core::datastream::{Observation, ReplayCursor, StreamId};
/// let mut cursor = ReplayCursor::new();
/// let id = StreamId::new(1760000000000, 0);
/// assert_eq!(cursor.observe(&id), Observation::Fresh);
/// cursor.commit(id.clone());
/// assert_eq!(cursor.observe(&id), Observation::Duplicate);
/// assert_eq!(cursor.last(), Some(&id));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayCursor {
    last: Option<StreamId>,
}

impl ReplayCursor {
    /// A cursor with nothing applied.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `id` is new. Ids at or before the last applied one are
    /// duplicates. When exactly one of the two ids is numeric their order
    /// means nothing, so the message counts as fresh: applying a message
    /// twice is harmless (every message carries state, not a delta), losing
    /// one is not.
    pub fn observe(&self, id: &StreamId) -> Observation {
        match &self.last {
            Some(last) if last.is_numeric() == id.is_numeric() && id <= last => {
                Observation::Duplicate
            }
            _ => Observation::Fresh,
        }
    }

    /// Records `id` as applied. The cursor never moves back: committing a
    /// duplicate (per [`observe`](Self::observe)) changes nothing.
    pub fn commit(&mut self, id: StreamId) {
        if self.observe(&id) == Observation::Fresh {
            self.last = Some(id);
        }
    }

    /// The last applied id, to send as `replay_from`.
    pub fn last(&self) -> Option<&StreamId> {
        self.last.as_ref()
    }

    /// Forgets the position (after a `reload`).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> StreamId {
        text.parse().unwrap()
    }

    #[test]
    fn numeric_ids_order_by_number() {
        assert!(id("9-5") < id("10-0"));
        assert!(id("10-0") < id("10-1"));
        assert!(id("10-2") > id("10-1"));
        assert_eq!(id("01-2"), id("1-2"));
        assert_eq!(id("01-2").to_string(), "01-2");
        assert_eq!(
            id("18446744073709551615-18446744073709551615").parts(),
            Some((u64::MAX, u64::MAX))
        );
    }

    #[test]
    fn non_numeric_ids_are_kept_and_sort_after_numeric_ones() {
        for text in [
            "abc",
            "1",
            "1-",
            "-1",
            "1-2-3",
            "+1-2",
            "1 -2",
            "18446744073709551616-0",
        ] {
            let other = id(text);
            assert!(!other.is_numeric(), "{text}");
            assert_eq!(other.as_str(), text);
            assert!(id("99999-0") < other, "{text}");
        }
        assert!(id("a") < id("b"));
        assert_eq!(StreamId::parse(""), Err(StreamIdError::Empty));
    }

    #[test]
    fn the_order_is_total_and_consistent_with_eq_and_hash() {
        use std::collections::hash_map::DefaultHasher;
        let ids = ["1-0", "01-0", "2-0", "10-0", "1x", "a", "1-0-0"].map(id);
        let hash = |s: &StreamId| {
            let mut h = DefaultHasher::new();
            s.hash(&mut h);
            h.finish()
        };
        for a in &ids {
            for b in &ids {
                assert_eq!(a.cmp(b), b.cmp(a).reverse());
                assert_eq!(a == b, a.cmp(b) == Ordering::Equal);
                if a == b {
                    assert_eq!(hash(a), hash(b));
                }
                for c in &ids {
                    if a <= b && b <= c {
                        assert!(a <= c, "{a} {b} {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn serde_as_a_string() {
        let s: StreamId = serde_json::from_str(r#""5-6""#).unwrap();
        assert_eq!(s, StreamId::new(5, 6));
        assert_eq!(serde_json::to_string(&s).unwrap(), r#""5-6""#);
        assert!(serde_json::from_str::<StreamId>(r#""""#).is_err());
        assert!(serde_json::from_str::<StreamId>("5").is_err());
    }

    #[test]
    fn cursor_skips_replayed_ids() {
        let mut cursor = ReplayCursor::new();
        assert_eq!(cursor.observe(&id("5-0")), Observation::Fresh);
        cursor.commit(id("5-0"));
        assert_eq!(cursor.observe(&id("4-9")), Observation::Duplicate);
        assert_eq!(cursor.observe(&id("5-0")), Observation::Duplicate);
        assert_eq!(cursor.observe(&id("5-1")), Observation::Fresh);
        // Never moves back.
        cursor.commit(id("3-0"));
        assert_eq!(cursor.last(), Some(&id("5-0")));
        cursor.reset();
        assert_eq!(cursor.last(), None);
        assert_eq!(cursor.observe(&id("1-0")), Observation::Fresh);
    }

    #[test]
    fn cursor_never_drops_ids_of_the_other_kind() {
        let mut cursor = ReplayCursor::new();
        cursor.commit(id("opaque"));
        assert_eq!(cursor.observe(&id("1-0")), Observation::Fresh);
        cursor.commit(id("1-0"));
        assert_eq!(cursor.last(), Some(&id("1-0")));
        assert_eq!(cursor.observe(&id("zzz")), Observation::Fresh);
        cursor.commit(id("b"));
        assert_eq!(cursor.observe(&id("a")), Observation::Duplicate);
    }
}
