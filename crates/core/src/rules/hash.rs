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

#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn half(bytes: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(w)
}

/// String equality tuned for the short ids the engine compares: lengths
/// first, then a few overlapping word compares instead of a `memcmp` call.
#[inline(always)]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        17..=32 => {
            word(a, 0) == word(b, 0)
                && word(a, 8) == word(b, 8)
                && word(a, n - 16) == word(b, n - 16)
                && word(a, n - 8) == word(b, n - 8)
        }
        _ => a == b,
    }
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

/// Sets up to this size are scanned linearly; larger ones use an
/// open-addressing table.
const LINEAR_MAX: usize = 8;

const EMPTY: u32 = u32::MAX;

/// An open-addressing (linear probing) table from hashes to positions.
/// Entries are inserted in position order, so among equal hashes the
/// earliest position is met first along a probe sequence.
#[derive(Debug, Clone, Default)]
struct Slots {
    /// (hash, position); `EMPTY` position marks a free slot.
    slots: Box<[(u64, u32)]>,
    mask: usize,
}

impl Slots {
    fn new(pairs: &[(u64, u32)]) -> Self {
        if pairs.is_empty() {
            return Self::default();
        }
        let size = (pairs.len() * 2).next_power_of_two().max(4);
        let mut slots = vec![(0u64, EMPTY); size].into_boxed_slice();
        let mask = size - 1;
        for &(hash, pos) in pairs {
            let mut i = hash as usize & mask;
            while slots[i].1 != EMPTY {
                i = (i + 1) & mask;
            }
            slots[i] = (hash, pos);
        }
        Self { slots, mask }
    }

    /// The first position along `hash`'s probe sequence that has this hash
    /// and satisfies `is_match`.
    #[inline(always)]
    fn find(&self, hash: u64, mut is_match: impl FnMut(usize) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mut i = hash as usize & self.mask;
        loop {
            let (h, pos) = self.slots[i];
            if pos == EMPTY {
                return None;
            }
            if h == hash && is_match(pos as usize) {
                return Some(pos as usize);
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// Maps hashes to positions: a linear scan for small tables, open
/// addressing for larger ones.
#[derive(Debug, Clone, Default)]
struct Lookup {
    /// (hash, position) in position order, for the linear scan.
    pairs: Box<[(u64, u32)]>,
    slots: Slots,
}

impl Lookup {
    fn new(pairs: Vec<(u64, u32)>) -> Self {
        let slots = if pairs.len() > LINEAR_MAX {
            Slots::new(&pairs)
        } else {
            Slots::default()
        };
        Self {
            pairs: pairs.into_boxed_slice(),
            slots,
        }
    }

    #[inline(always)]
    fn find(&self, hash: u64, mut is_match: impl FnMut(usize) -> bool) -> Option<usize> {
        if self.pairs.len() <= LINEAR_MAX {
            for &(h, pos) in &*self.pairs {
                if h == hash && is_match(pos as usize) {
                    return Some(pos as usize);
                }
            }
            None
        } else {
            self.slots.find(hash, is_match)
        }
    }
}

/// An immutable set of strings.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdSet {
    texts: Box<[Box<str>]>,
    lookup: Lookup,
}

impl IdSet {
    pub(crate) fn new<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        let mut texts: Vec<Box<str>> = ids.into_iter().map(Into::into).collect();
        texts.sort_unstable();
        texts.dedup();
        let pairs = texts
            .iter()
            .enumerate()
            .map(|(pos, t)| (hash_str(t), pos as u32))
            .collect();
        Self {
            texts: texts.into_boxed_slice(),
            lookup: Lookup::new(pairs),
        }
    }

    /// Whether `text` (whose hash is `hash`) is in the set.
    #[inline(always)]
    pub(crate) fn contains(&self, hash: u64, text: &str) -> bool {
        let texts = &self.texts;
        self.lookup
            .find(hash, |pos| str_eq(&texts[pos], text))
            .is_some()
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
    fn str_eq_every_length() {
        let long: String = (0..40u8).map(|i| char::from(b'a' + i % 26)).collect();
        for n in 0..=40 {
            let a = &long[..n];
            assert!(str_eq(a, a));
            for i in 0..n {
                let mut b = a.as_bytes().to_vec();
                b[i] = b'#';
                let b = String::from_utf8(b).unwrap();
                assert!(!str_eq(a, &b), "{n} {i}");
            }
            if n > 0 {
                assert!(!str_eq(a, &long[..n - 1]));
            }
        }
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
}
