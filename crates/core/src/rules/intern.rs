//! Interning of configuration strings (plan ids, trait definition ids,
//! event subtypes, credit ids, flag ids and keys) into small integers.
//!
//! The table is process-wide and append-only, so a symbol never changes
//! meaning: flags compiled at any time and companies prepared at any time
//! agree on every symbol, and equality of symbols is exactly equality of
//! strings. Only strings drawn from an account's configuration are interned
//! (never company or user ids), so the table stays as small as that
//! configuration. Interning happens when flags are compiled and subjects are
//! prepared, never during a check.

use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};

use super::hash::BuildStrHasher;

/// An interned string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Sym(u32);

static TABLE: LazyLock<RwLock<HashMap<Box<str>, Sym, BuildStrHasher>>> =
    LazyLock::new(|| RwLock::new(HashMap::default()));

/// The symbol for `text`, creating it on first use.
pub(crate) fn intern(text: &str) -> Sym {
    {
        let table = TABLE.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(sym) = table.get(text) {
            return *sym;
        }
    }
    let mut table = TABLE.write().unwrap_or_else(PoisonError::into_inner);
    let next = Sym(u32::try_from(table.len()).unwrap_or(u32::MAX));
    *table.entry(text.into()).or_insert(next)
}

/// Position of the first `key` in `keys`, which is sorted (stably, so the
/// first of equal keys is the earliest input). Small slices are scanned.
#[inline(always)]
pub(crate) fn find_first<K: Ord + Copy>(keys: &[K], key: K) -> Option<usize> {
    if keys.len() <= 8 {
        keys.iter().position(|k| *k == key)
    } else {
        let i = keys.partition_point(|k| *k < key);
        (keys.get(i) == Some(&key)).then_some(i)
    }
}

/// A sorted, de-duplicated set of symbols.
#[derive(Debug, Clone, Default)]
pub(crate) struct SymSet {
    syms: Box<[Sym]>,
}

impl SymSet {
    pub(crate) fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut syms: Vec<Sym> = texts.into_iter().map(intern).collect();
        syms.sort_unstable();
        syms.dedup();
        Self {
            syms: syms.into_boxed_slice(),
        }
    }

    #[inline(always)]
    pub(crate) fn contains(&self, sym: Sym) -> bool {
        find_first(&self.syms, sym).is_some()
    }

    /// Whether any of `syms` is in the set.
    #[inline(always)]
    pub(crate) fn intersects(&self, syms: &[Sym]) -> bool {
        !self.syms.is_empty() && syms.iter().any(|s| self.contains(*s))
    }
}

const EMPTY: u32 = u32::MAX;

/// A map from symbols to small indices: open addressing with linear
/// probing over a power-of-two table at most half full, so a lookup is
/// usually a single probe. The first insertion of a symbol wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct SymMap {
    /// (symbol, index); index `EMPTY` marks a free slot.
    slots: Box<[(u32, u32)]>,
    shift: u32,
}

impl SymMap {
    pub(crate) fn new(entries: impl IntoIterator<Item = (Sym, u32)>) -> Self {
        let entries: Vec<(Sym, u32)> = entries.into_iter().collect();
        if entries.is_empty() {
            return Self::default();
        }
        let size = (entries.len() * 2).next_power_of_two().max(4);
        let mut map = Self {
            slots: vec![(0, EMPTY); size].into_boxed_slice(),
            shift: 64 - size.trailing_zeros(),
        };
        let mask = size - 1;
        for (sym, index) in entries {
            let mut i = map.home(sym);
            loop {
                let slot = &mut map.slots[i];
                if slot.1 == EMPTY {
                    *slot = (sym.0, index);
                    break;
                }
                if slot.0 == sym.0 {
                    break; // first insertion wins
                }
                i = (i + 1) & mask;
            }
        }
        map
    }

    #[inline(always)]
    fn home(&self, sym: Sym) -> usize {
        // Fibonacci hashing: the top bits of a multiplicative hash.
        (u64::from(sym.0).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The index stored for `sym`.
    #[inline(always)]
    pub(crate) fn get(&self, sym: Sym) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(sym);
        loop {
            let (s, index) = self.slots[i];
            if index == EMPTY {
                return None;
            }
            if s == sym.0 {
                return Some(index as usize);
            }
            i = (i + 1) & mask;
        }
    }
}

/// Interns each of `texts`.
pub(crate) fn intern_all(texts: &[String]) -> Box<[Sym]> {
    texts.iter().map(|t| intern(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_stable_and_distinct() {
        let a = intern("intern-test-a");
        let b = intern("intern-test-b");
        assert_ne!(a, b);
        assert_eq!(intern("intern-test-a"), a);
        let set = SymSet::new(["intern-test-b", "intern-test-a", "intern-test-b"]);
        assert!(set.contains(a) && set.contains(b));
        assert!(!set.contains(intern("intern-test-c")));
        assert!(set.intersects(&[intern("intern-test-c"), b]));
        assert!(!SymSet::default().intersects(&[a]));
    }

    #[test]
    fn sym_map_first_wins_and_misses() {
        let syms: Vec<Sym> = (0..50).map(|i| intern(&format!("symmap-{i}"))).collect();
        let map = SymMap::new(syms.iter().enumerate().map(|(i, s)| (*s, i as u32)));
        for (i, s) in syms.iter().enumerate() {
            assert_eq!(map.get(*s), Some(i));
        }
        assert_eq!(map.get(intern("symmap-missing")), None);
        let dup = SymMap::new([(syms[0], 7), (syms[1], 8), (syms[0], 9)]);
        assert_eq!(dup.get(syms[0]), Some(7));
        assert_eq!(SymMap::default().get(syms[0]), None);
    }

    #[test]
    fn find_first_small_and_large() {
        let small = [1, 3, 3, 7];
        assert_eq!(find_first(&small, 3), Some(1));
        assert_eq!(find_first(&small, 4), None);
        let large: Vec<u32> = (0..40).map(|i| i / 2).collect();
        assert_eq!(find_first(&large, 7), Some(14));
        assert_eq!(find_first(&large, 40), None);
    }
}
