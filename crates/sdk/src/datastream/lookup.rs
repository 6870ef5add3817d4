//! Case-insensitive keys of the local store.
//!
//! The official SDKs find flags, companies and users through cache keys made
//! of lower-cased flag keys and lower-cased `(name, value)` key pairs
//! (`flags:<ver>:<key>`, `company:<ver>:<name>:<value>`), so a check for
//! `{"ID": "Acme"}` finds the company whose keys hold `{"id": "acme"}`. The
//! local store keeps the same semantics without building those strings: it
//! stores each key lower-cased once, and a lookup hashes and compares the
//! caller's text folded on the fly, so a check allocates nothing.
//!
//! Folding is `char::to_lowercase`, character by character (ASCII takes a
//! fast path with the same result).

use std::hash::{Hash, Hasher};

use papaya::Equivalent;

/// The folded form of `text`, for storing.
pub(crate) fn fold(text: &str) -> Box<str> {
    if text.is_ascii() {
        return text.to_ascii_lowercase().into_boxed_str();
    }
    text.chars()
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .into_boxed_str()
}

/// Whether `text` is its own folded form: ASCII without capitals (almost
/// every key and value).
#[inline]
fn is_folded_ascii(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
}

/// Hashes the folded form of `text`: one `write` of its bytes and a
/// terminator. Texts that are already folded (the stored keys, and nearly
/// every query) are hashed in place; others are folded into a stack buffer
/// first, or, past its size, into a `String` (a rare allocation: a long key
/// with capitals or non-ASCII letters).
#[inline]
fn hash_folded<H: Hasher>(text: &str, state: &mut H) {
    if is_folded_ascii(text) {
        state.write(text.as_bytes());
    } else {
        let mut buffer = [0u8; 128];
        let mut len = 0;
        let mut fits = true;
        let mut utf8 = [0u8; 4];
        for c in text.chars().flat_map(char::to_lowercase) {
            let bytes = c.encode_utf8(&mut utf8).as_bytes();
            if len + bytes.len() > buffer.len() {
                fits = false;
                break;
            }
            buffer[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        }
        if fits {
            state.write(&buffer[..len]);
        } else {
            state.write(fold(text).as_bytes());
        }
    }
    // Keeps ("ab", "c") and ("a", "bc") apart; never a UTF-8 byte.
    state.write_u8(0xff);
}

/// Whether `query` folds to `folded` (which is already folded).
#[inline]
fn folded_eq(query: &str, folded: &str) -> bool {
    if query.len() == folded.len() && query.as_bytes() == folded.as_bytes() {
        return true;
    }
    if query.is_ascii() && folded.is_ascii() {
        return query.len() == folded.len() && query.eq_ignore_ascii_case(folded);
    }
    query
        .chars()
        .flat_map(char::to_lowercase)
        .eq(folded.chars())
}

/// A stored, folded text key (a flag key or an entity id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TextKey(Box<str>);

impl TextKey {
    /// Folds `text` into a key.
    pub(crate) fn new(text: &str) -> Self {
        TextKey(fold(text))
    }
}

impl Hash for TextKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_folded(&self.0, state);
    }
}

/// A borrowed text to look up a [`TextKey`] with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextQuery<'a>(pub(crate) &'a str);

impl Hash for TextQuery<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_folded(self.0, state);
    }
}

impl Equivalent<TextKey> for TextQuery<'_> {
    fn equivalent(&self, key: &TextKey) -> bool {
        folded_eq(self.0, &key.0)
    }
}

/// A stored, folded `(name, value)` key pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PairKey {
    name: Box<str>,
    value: Box<str>,
}

impl PairKey {
    /// Folds a pair into a key.
    pub(crate) fn new(name: &str, value: &str) -> Self {
        PairKey {
            name: fold(name),
            value: fold(value),
        }
    }
}

impl Hash for PairKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_folded(&self.name, state);
        hash_folded(&self.value, state);
    }
}

/// A borrowed `(name, value)` pair to look up a [`PairKey`] with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PairQuery<'a>(pub(crate) &'a str, pub(crate) &'a str);

impl Hash for PairQuery<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_folded(self.0, state);
        hash_folded(self.1, state);
    }
}

impl Equivalent<PairKey> for PairQuery<'_> {
    fn equivalent(&self, key: &PairKey) -> bool {
        folded_eq(self.0, &key.name) && folded_eq(self.1, &key.value)
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use proptest::prelude::*;

    use super::*;

    fn hash_of(value: &impl Hash) -> u64 {
        // A fixed state: equal inputs must hash equally.
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(value)
    }

    #[test]
    fn queries_find_keys_whatever_their_case() {
        let key = PairKey::new("ID", "Acme");
        let query = PairQuery("id", "ACME");
        assert!(query.equivalent(&key));
        assert_eq!(hash_of(&key), hash_of(&query));
        assert!(!PairQuery("id", "acme2").equivalent(&key));
        // The name and the value are not interchangeable.
        assert!(!PairQuery("idacme", "").equivalent(&key));
        assert_ne!(hash_of(&PairQuery("idacme", "")), hash_of(&key));
    }

    #[test]
    fn non_ascii_text_folds_per_character() {
        let key = TextKey::new("ÉCOLE-Straße");
        assert!(TextQuery("école-straße").equivalent(&key));
        assert_eq!(hash_of(&key), hash_of(&TextQuery("École-STRAßE")));
    }

    #[test]
    fn long_keys_hash_across_chunks() {
        let long = "A".repeat(200);
        let key = TextKey::new(&long);
        assert_eq!(hash_of(&key), hash_of(&TextQuery(&long.to_lowercase())));
        assert!(!TextQuery(&"a".repeat(199)).equivalent(&key));
    }

    proptest! {
        #[test]
        fn equivalence_implies_equal_hashes(a in "\\PC{0,80}", upper in any::<bool>()) {
            let query = if upper { a.to_uppercase() } else { a.clone() };
            let key = TextKey::new(&a);
            if TextQuery(&query).equivalent(&key) {
                prop_assert_eq!(hash_of(&TextQuery(&query)), hash_of(&key));
            }
            // A key always finds itself.
            prop_assert!(TextQuery(&a).equivalent(&key));
            prop_assert_eq!(hash_of(&TextQuery(&a)), hash_of(&key));
        }
    }
}
