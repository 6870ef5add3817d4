//! A small, fast, non-cryptographic string hash and hashed-string indexes.
//!
//! Hashes only ever narrow a search: every hit is confirmed by comparing the
//! strings themselves, so a collision can cost time but never a wrong answer.

use std::hash::{BuildHasherDefault, Hasher};

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Hashes bytes eight at a time with a multiply-rotate mix (FxHash style),
/// finished with a murmur-style avalanche so the low bits are usable too.
#[inline]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(SEED);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(SEED);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Hash of a string.
#[inline]
pub(crate) fn hash_str(s: &str) -> u64 {
    hash_bytes(s.as_bytes())
}

/// A [`Hasher`] over [`hash_bytes`], for the engine's flag-key map.
#[derive(Default, Clone, Copy)]
pub(crate) struct StrHasher {
    state: u64,
}

impl Hasher for StrHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.state = (self.state.rotate_left(5) ^ hash_bytes(bytes)).wrapping_mul(SEED);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.state = (self.state.rotate_left(5) ^ u64::from(i)).wrapping_mul(SEED);
    }
}

/// Builds [`StrHasher`]s.
pub(crate) type BuildStrHasher = BuildHasherDefault<StrHasher>;

/// A string with its precomputed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HStr {
    pub(crate) hash: u64,
    pub(crate) text: Box<str>,
}

impl HStr {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            hash: hash_str(text),
            text: text.into(),
        }
    }
}

/// An immutable set of strings, sorted by hash for binary search.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdSet {
    entries: Box<[HStr]>,
}

impl IdSet {
    pub(crate) fn new<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut entries: Vec<HStr> = ids.into_iter().map(HStr::new).collect();
        entries.sort_by(|a, b| a.hash.cmp(&b.hash).then_with(|| a.text.cmp(&b.text)));
        entries.dedup();
        Self {
            entries: entries.into_boxed_slice(),
        }
    }

    /// Whether `text` (whose hash is `hash`) is in the set.
    #[inline]
    pub(crate) fn contains(&self, hash: u64, text: &str) -> bool {
        let entries = &*self.entries;
        if entries.len() <= 4 {
            return entries.iter().any(|e| e.hash == hash && &*e.text == text);
        }
        let start = entries.partition_point(|e| e.hash < hash);
        entries[start..]
            .iter()
            .take_while(|e| e.hash == hash)
            .any(|e| &*e.text == text)
    }

    /// Whether any of `items` (hash, text) is in the set.
    #[inline]
    pub(crate) fn intersects<'a>(&self, items: impl Iterator<Item = (u64, &'a str)>) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        for (hash, text) in items {
            if self.contains(hash, text) {
                return true;
            }
        }
        false
    }
}

/// Maps hashed string keys to positions in some other slice; among equal
/// keys the first position (input order) wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct HashIndex {
    /// (hash, position), sorted by hash then position.
    entries: Box<[(u64, u32)]>,
}

impl HashIndex {
    /// Indexes `keys`; `None` keys are skipped.
    pub(crate) fn new<'a>(keys: impl IntoIterator<Item = Option<&'a str>>) -> Self {
        let mut entries: Vec<(u64, u32)> = keys
            .into_iter()
            .enumerate()
            .filter_map(|(pos, key)| key.map(|k| (hash_str(k), pos as u32)))
            .collect();
        entries.sort_unstable();
        Self {
            entries: entries.into_boxed_slice(),
        }
    }

    /// The first position whose key hashes to `hash` and satisfies `is_match`.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut is_match: impl FnMut(usize) -> bool) -> Option<usize> {
        let entries = &*self.entries;
        let start = if entries.len() <= 8 {
            0
        } else {
            entries.partition_point(|e| e.0 < hash)
        };
        for &(h, pos) in &entries[start..] {
            if h == hash {
                if is_match(pos as usize) {
                    return Some(pos as usize);
                }
            } else if h > hash {
                break;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_differs_on_length_and_content() {
        assert_ne!(hash_str(""), hash_str("\0"));
        assert_ne!(hash_str("abcdefgh"), hash_str("abcdefgi"));
        assert_ne!(hash_str("plan_1"), hash_str("plan_2"));
        assert_eq!(hash_str("same"), hash_str("same"));
    }

    #[test]
    fn id_set_small_and_large() {
        for n in [0usize, 1, 3, 4, 5, 40] {
            let ids: Vec<String> = (0..n).map(|i| format!("id_{i}")).collect();
            let set = IdSet::new(ids.iter().map(String::as_str));
            for id in &ids {
                assert!(set.contains(hash_str(id), id));
            }
            assert!(!set.contains(hash_str("nope"), "nope"));
            // Same hash, different text: confirmed by string comparison.
            if let Some(first) = ids.first() {
                assert!(!set.contains(hash_str(first), "other"));
            }
        }
    }

    #[test]
    fn hash_index_first_wins() {
        let keys = ["a", "b", "a", "c", "d", "e", "f", "g", "h", "i"];
        let index = HashIndex::new(keys.iter().map(|k| Some(*k)));
        assert_eq!(index.find(hash_str("a"), |p| keys[p] == "a"), Some(0));
        assert_eq!(index.find(hash_str("i"), |p| keys[p] == "i"), Some(9));
        assert_eq!(index.find(hash_str("z"), |p| keys[p] == "z"), None);
    }
}
