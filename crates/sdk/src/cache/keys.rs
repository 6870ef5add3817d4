//! What identifies a cached check: the [`KeyPairs`] a check carries, the
//! borrowed [`FlagCacheKey`], its seeded 64-bit hash and canonical text, and
//! [`StoredKey`], the owned copy an in-memory entry keeps so that every hit
//! is verified exactly.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

// ---------------------------------------------------------------------------
// Key pairs
// ---------------------------------------------------------------------------

/// A set of `name → value` key pairs (company or user keys) as seen by the
/// cache.
///
/// Implemented for maps (`BTreeMap`, `HashMap`), for sequences of pairs
/// (arrays, slices, `Vec`), for `()` and `None` (no keys), for `Some(_)` of
/// any of these and for references to them, with names and values of any
/// `AsRef<str>` type: `&str`, `String`, `&String`, `Box<str>`, `Arc<str>`,
/// `Cow<str>`.
///
/// A set never holds a name twice. In a sequence of pairs a repeated name is
/// resolved as when inserting the pairs into a map in order: **the last
/// occurrence wins**, and the earlier ones are ignored by hashing, matching
/// and [`FlagCacheKey::canonical`] alike. Sequences are meant for a handful
/// of keys (finding the repeats compares every name with the ones after it);
/// use a map for large sets. Order never matters.
///
/// ```
/// use flagwire::cache::{FlagCacheKey, KeyPairs};
///
/// let email = String::from("ann@example.com");
/// let user = [("id", "u-1"), ("email", email.as_str()), ("id", "u-2")];
/// assert_eq!(user.pair_count(), 2); // "id" is "u-2": the last one wins
///
/// let key = FlagCacheKey::new("new-editor", &[("id", "acme")], &user);
/// assert_eq!(key.canonical(), "f:new-editor;c:id:acme;u:email:ann@example.com;u:id:u-2");
/// ```
///
/// Implementations outside this crate must keep the same contract: yield
/// each name at most once, and report in [`pair_count`](Self::pair_count)
/// exactly the number of pairs [`try_for_each_pair`](Self::try_for_each_pair)
/// yields.
pub trait KeyPairs {
    /// Number of pairs (distinct names).
    fn pair_count(&self) -> usize;
    /// Calls `f` for each pair until it returns `false`; returns `false` if
    /// it was stopped early.
    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool;
}

impl<K: AsRef<str> + Ord, V: AsRef<str>> KeyPairs for BTreeMap<K, V> {
    fn pair_count(&self) -> usize {
        self.len()
    }
    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        self.iter().all(|(k, v)| f(k.as_ref(), v.as_ref()))
    }
}

impl<K: AsRef<str>, V: AsRef<str>, S> KeyPairs for HashMap<K, V, S> {
    fn pair_count(&self) -> usize {
        self.len()
    }
    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        self.iter().all(|(k, v)| f(k.as_ref(), v.as_ref()))
    }
}

/// Whether the name of `pairs[i]` appears again later, so that a later
/// pair replaces this one.
#[inline]
fn replaced_later<K: AsRef<str>, V>(pairs: &[(K, V)], i: usize) -> bool {
    let name = pairs[i].0.as_ref();
    pairs[i + 1..].iter().any(|(k, _)| k.as_ref() == name)
}

/// Pairs in order; a repeated name keeps its last value.
impl<K: AsRef<str>, V: AsRef<str>> KeyPairs for [(K, V)] {
    fn pair_count(&self) -> usize {
        if self.len() < 2 {
            return self.len();
        }
        (0..self.len())
            .filter(|&i| !replaced_later(self, i))
            .count()
    }
    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        self.iter()
            .enumerate()
            .all(|(i, (k, v))| replaced_later(self, i) || f(k.as_ref(), v.as_ref()))
    }
}

/// Pairs in order; a repeated name keeps its last value.
impl<K: AsRef<str>, V: AsRef<str>, const N: usize> KeyPairs for [(K, V); N] {
    fn pair_count(&self) -> usize {
        self.as_slice().pair_count()
    }
    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        self.as_slice().try_for_each_pair(f)
    }
}

/// Pairs in order; a repeated name keeps its last value.
impl<K: AsRef<str>, V: AsRef<str>> KeyPairs for Vec<(K, V)> {
    fn pair_count(&self) -> usize {
        self.as_slice().pair_count()
    }
    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        self.as_slice().try_for_each_pair(f)
    }
}

impl<T: KeyPairs + ?Sized> KeyPairs for &T {
    fn pair_count(&self) -> usize {
        (**self).pair_count()
    }
    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        (**self).try_for_each_pair(f)
    }
}

/// `None` has no keys; `Some(keys)` has the keys inside.
impl<T: KeyPairs> KeyPairs for Option<T> {
    fn pair_count(&self) -> usize {
        self.as_ref().map_or(0, KeyPairs::pair_count)
    }
    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        self.as_ref().is_none_or(|keys| keys.try_for_each_pair(f))
    }
}

/// No keys (a check without company or user).
impl KeyPairs for () {
    fn pair_count(&self) -> usize {
        0
    }
    fn try_for_each_pair(&self, _f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        true
    }
}

/// Calls `f` with the pairs of `pairs` in order of name.
///
/// The strings a [`KeyPairs`] hands out live only for one call, so they are
/// copied into one buffer first and sorted as spans of it. Allocates; used
/// by inserts and [`FlagCacheKey::canonical`], never by a lookup.
fn for_each_sorted(pairs: &dyn KeyPairs, f: &mut dyn FnMut(&str, &str)) {
    let count = pairs.pair_count();
    if count == 0 {
        return;
    }
    let mut text = String::new();
    // (name start, name end = value start, value end) in `text`.
    let mut spans: Vec<(usize, usize, usize)> = Vec::with_capacity(count);
    pairs.try_for_each_pair(&mut |k, v| {
        let start = text.len();
        text.push_str(k);
        let middle = text.len();
        text.push_str(v);
        spans.push((start, middle, text.len()));
        true
    });
    spans.sort_unstable_by(|a, b| text[a.0..a.1].cmp(&text[b.0..b.1]));
    for (start, middle, end) in spans {
        f(&text[start..middle], &text[middle..end]);
    }
}

// ---------------------------------------------------------------------------
// The borrowed key
// ---------------------------------------------------------------------------

/// The identity of a cached flag check: flag key, company keys, user keys.
///
/// It only borrows its parts, so building one costs nothing; see the
/// [module docs](super) for how caches turn it into a key.
#[derive(Clone, Copy)]
pub struct FlagCacheKey<'a> {
    flag: &'a str,
    company: &'a dyn KeyPairs,
    user: &'a dyn KeyPairs,
}

impl<'a> FlagCacheKey<'a> {
    /// A key for `flag` checked for `company` and `user` (pass `&()` for
    /// none).
    pub fn new(flag: &'a str, company: &'a dyn KeyPairs, user: &'a dyn KeyPairs) -> Self {
        Self {
            flag,
            company,
            user,
        }
    }

    /// The flag key.
    pub fn flag(&self) -> &'a str {
        self.flag
    }

    /// The company keys.
    pub fn company(&self) -> &'a dyn KeyPairs {
        self.company
    }

    /// The user keys.
    pub fn user(&self) -> &'a dyn KeyPairs {
        self.user
    }

    /// The stable text form `f:<flag>;c:<k>:<v>;…;u:<k>:<v>` (key sets sorted
    /// by name, empty sets left out, `\ : ;` escaped). Allocates; meant for
    /// shared caches that need a string key.
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(64);
        out.push_str("f:");
        escape_into(&mut out, self.flag);
        for (tag, pairs) in [("c", self.company), ("u", self.user)] {
            for_each_sorted(pairs, &mut |k, v| {
                out.push(';');
                out.push_str(tag);
                out.push(':');
                escape_into(&mut out, k);
                out.push(':');
                escape_into(&mut out, v);
            });
        }
        out
    }
}

impl fmt::Debug for FlagCacheKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FlagCacheKey")
            .field(&self.canonical())
            .finish()
    }
}

fn escape_into(out: &mut String, s: &str) {
    for ch in s.chars() {
        if matches!(ch, '\\' | ':' | ';') {
            out.push('\\');
        }
        out.push(ch);
    }
}

// ---------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline(always)]
fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[inline(always)]
fn read_u32(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

/// Hashes a byte string. Short strings (most keys and values) take two
/// multiplications: their bytes are read as two possibly overlapping words,
/// with the length mixed in so that overlaps cannot make two strings equal.
/// Longer ones fold 16 bytes per step.
#[inline]
pub(super) fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let mut h = seed ^ P0;
    let (a, b) = if len <= 16 {
        if len >= 8 {
            (read_u64(bytes, 0), read_u64(bytes, len - 8))
        } else if len >= 4 {
            (read_u32(bytes, 0), read_u32(bytes, len - 4))
        } else if len > 0 {
            let spread = (u64::from(bytes[0]) << 16)
                | (u64::from(bytes[len / 2]) << 8)
                | u64::from(bytes[len - 1]);
            (spread, 0)
        } else {
            (0, 0)
        }
    } else {
        let mut at = 0;
        while len - at > 16 {
            h = fold_mul(read_u64(bytes, at) ^ P1, read_u64(bytes, at + 8) ^ h);
            at += 16;
        }
        (read_u64(bytes, len - 16), read_u64(bytes, len - 8))
    };
    fold_mul(P1 ^ len as u64, fold_mul(a ^ P2, b ^ h))
}

/// An order-independent hash of a pair set: the pairs' hashes are summed.
fn hash_pairs(seed: u64, pairs: &dyn KeyPairs) -> u64 {
    let mut sum = 0u64;
    pairs.try_for_each_pair(&mut |k, v| {
        // Name and value are hashed independently (in parallel on the CPU)
        // and then bound together, so swapping values between two names
        // changes the hash.
        let hk = hash_bytes(seed, k.as_bytes());
        let hv = hash_bytes(seed ^ P1, v.as_bytes());
        sum = sum.wrapping_add(fold_mul(hk ^ P2, hv ^ P3));
        true
    });
    sum
}

/// The 64-bit hash of a key under a per-cache `seed`. Company and user pairs
/// are hashed with different seeds, so `{id: x}` as a company and as a user
/// are different contexts.
#[inline]
pub(super) fn hash_key(seed: u64, key: &FlagCacheKey<'_>) -> u64 {
    let f = hash_bytes(seed, key.flag.as_bytes());
    let c = hash_pairs(seed ^ P2, key.company);
    let u = hash_pairs(seed ^ P3, key.user);
    fold_mul(fold_mul(f ^ c, P0) ^ u, P1 ^ seed)
}

// ---------------------------------------------------------------------------
// The stored key
// ---------------------------------------------------------------------------

/// The owned copy of a [`FlagCacheKey`] that an in-memory entry keeps, so
/// that a lookup can tell its own context from a colliding one.
///
/// All parts live in one string, in a fixed order: the flag, then each
/// company pair (name, value) sorted by name, then each user pair the same
/// way. `ends` holds where each part ends. Two allocations per entry, and a
/// lookup compares against one contiguous buffer.
pub(super) struct StoredKey {
    text: Box<str>,
    ends: Box<[usize]>,
    company_pairs: usize,
}

impl StoredKey {
    /// Copies `key`.
    pub(super) fn new(key: &FlagCacheKey<'_>) -> Self {
        let parts = 1 + 2 * (key.company.pair_count() + key.user.pair_count());
        let mut text = String::with_capacity(key.flag.len() + 16 * parts);
        let mut ends = Vec::with_capacity(parts);
        text.push_str(key.flag);
        ends.push(text.len());
        let mut append = |pairs: &dyn KeyPairs| {
            for_each_sorted(pairs, &mut |k, v| {
                text.push_str(k);
                ends.push(text.len());
                text.push_str(v);
                ends.push(text.len());
            });
        };
        append(key.company);
        let company_pairs = key.company.pair_count();
        append(key.user);
        StoredKey {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
            company_pairs,
        }
    }

    /// Part `i` (0 is the flag).
    #[inline]
    fn part(&self, i: usize) -> &str {
        let start = match i {
            0 => 0,
            _ => self.ends.get(i - 1).copied().unwrap_or(usize::MAX),
        };
        let end = self.ends.get(i).copied().unwrap_or(0);
        self.text.get(start..end).unwrap_or_default()
    }

    fn user_pairs(&self) -> usize {
        (self.ends.len().saturating_sub(1) / 2).saturating_sub(self.company_pairs)
    }

    /// Whether `key` is the context this key was made from. Never
    /// allocates.
    #[inline]
    pub(super) fn matches(&self, key: &FlagCacheKey<'_>) -> bool {
        self.part(0) == key.flag
            && self.pairs_match(1, self.company_pairs, key.company)
            && self.pairs_match(1 + 2 * self.company_pairs, self.user_pairs(), key.user)
    }

    /// Whether `query` holds exactly the `count` sorted pairs stored from
    /// part `first` on.
    fn pairs_match(&self, first: usize, count: usize, query: &dyn KeyPairs) -> bool {
        if query.pair_count() != count {
            return false;
        }
        let name = |j: usize| self.part(first + 2 * j);
        // A sorted map (the usual `Keys`) yields its pairs in stored order,
        // so try the same position first and only search when that fails.
        let mut position = 0;
        query.try_for_each_pair(&mut |k, v| {
            let found = if position < count && name(position) == k {
                Some(position)
            } else {
                // Binary search over the sorted names.
                let (mut low, mut high) = (0, count);
                let mut hit = None;
                while low < high {
                    let middle = low + (high - low) / 2;
                    match name(middle).cmp(k) {
                        std::cmp::Ordering::Less => low = middle + 1,
                        std::cmp::Ordering::Greater => high = middle,
                        std::cmp::Ordering::Equal => {
                            hit = Some(middle);
                            break;
                        }
                    }
                }
                hit
            };
            position += 1;
            found.is_some_and(|j| self.part(first + 2 * j + 1) == v)
        })
    }

    /// The parts, concatenated.
    #[cfg(test)]
    pub(super) fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn byte_hash_separates_lengths_and_every_byte() {
        let text: Vec<u8> = (0..64u8).map(|i| b'a' + i % 26).collect();
        let mut seen = HashSet::new();
        for len in 0..=text.len() {
            let base = &text[..len];
            assert!(seen.insert(hash_bytes(7, base)), "length {len}");
            for at in 0..len {
                let mut changed = base.to_vec();
                changed[at] ^= 1;
                assert_ne!(hash_bytes(7, base), hash_bytes(7, &changed), "{len}/{at}");
            }
        }
        // Zero bytes are not confused with shorter strings.
        assert_ne!(hash_bytes(7, b"\0"), hash_bytes(7, b""));
        assert_ne!(hash_bytes(7, b"ab\0"), hash_bytes(7, b"ab"));
        assert_ne!(hash_bytes(7, b"abc"), hash_bytes(8, b"abc"));
    }

    #[test]
    fn canonical_key_is_sorted_and_escaped() {
        let company = keys(&[("slug", "a;b"), ("id", "1")]);
        let user = keys(&[("email", "x:y")]);
        let k = FlagCacheKey::new("flag", &company, &user);
        assert_eq!(k.canonical(), r"f:flag;c:id:1;c:slug:a\;b;u:email:x\:y");
        assert_eq!(FlagCacheKey::new("f", &(), &()).canonical(), "f:f");
        assert_eq!(
            format!("{k:?}"),
            r#"FlagCacheKey("f:flag;c:id:1;c:slug:a\\;b;u:email:x\\:y")"#
        );
    }

    #[test]
    fn every_pair_container_gives_the_same_key() {
        let owned = String::from("acme");
        let map = keys(&[("id", "acme"), ("plan", "pro")]);
        let hash_map: HashMap<&str, String> =
            [("plan", "pro".to_owned()), ("id", "acme".to_owned())].into();
        let array = [("plan", "pro"), ("id", "acme")];
        let with_string = [("id", owned.clone()), ("plan", "pro".to_owned())];
        let with_ref = [("id", &owned), ("plan", &"pro".to_owned())];
        let slice: &[(&str, &str)] = &array;
        let vec = vec![("id", "acme"), ("plan", "pro")];
        let some = Some(array);
        let sets: [&dyn KeyPairs; 8] = [
            &map,
            &hash_map,
            &array,
            &with_string,
            &with_ref,
            &slice,
            &vec,
            &some,
        ];
        let reference = FlagCacheKey::new("f", &map, &());
        let stored = StoredKey::new(&reference);
        for (i, set) in sets.iter().enumerate() {
            let key = FlagCacheKey::new("f", *set, &());
            assert_eq!(key.canonical(), "f:f;c:id:acme;c:plan:pro", "set {i}");
            assert_eq!(hash_key(42, &key), hash_key(42, &reference), "set {i}");
            assert!(stored.matches(&key), "set {i}");
            assert!(StoredKey::new(&key).matches(&reference), "set {i}");
        }
        // No keys, four ways.
        let none: Option<BTreeMap<String, String>> = None;
        let empty: [(&str, &str); 0] = [];
        let bare = FlagCacheKey::new("f", &(), &());
        for set in [
            &none as &dyn KeyPairs,
            &empty,
            &Vec::<(String, String)>::new(),
        ] {
            let key = FlagCacheKey::new("f", set, set);
            assert_eq!(key.canonical(), "f:f");
            assert_eq!(hash_key(42, &key), hash_key(42, &bare));
            assert!(StoredKey::new(&bare).matches(&key));
        }
    }

    #[test]
    fn the_last_of_repeated_names_wins() {
        let repeated = [("id", "old"), ("plan", "pro"), ("id", "new")];
        let as_map = keys(&[("id", "new"), ("plan", "pro")]);
        let stale = keys(&[("id", "old"), ("plan", "pro")]);
        assert_eq!(repeated.pair_count(), 2);
        let mut seen = Vec::new();
        repeated.try_for_each_pair(&mut |k, v| {
            seen.push(format!("{k}={v}"));
            true
        });
        assert_eq!(seen, ["plan=pro", "id=new"]);

        let key = FlagCacheKey::new("f", &repeated, &());
        let map_key = FlagCacheKey::new("f", &as_map, &());
        let stale_key = FlagCacheKey::new("f", &stale, &());
        assert_eq!(key.canonical(), "f:f;c:id:new;c:plan:pro");
        assert_eq!(hash_key(1, &key), hash_key(1, &map_key));
        assert_ne!(hash_key(1, &key), hash_key(1, &stale_key));
        assert!(StoredKey::new(&key).matches(&map_key));
        assert!(StoredKey::new(&map_key).matches(&key));
        assert!(!StoredKey::new(&stale_key).matches(&key));
        assert!(!StoredKey::new(&key).matches(&stale_key));
        // Only repeats: one pair.
        let same = [("id", "a"), ("id", "b"), ("id", "c")];
        assert_eq!(same.pair_count(), 1);
        assert_eq!(FlagCacheKey::new("f", &(), &same).canonical(), "f:f;u:id:c");
    }

    #[test]
    fn stored_key_tells_contexts_apart() {
        let company = keys(&[("id", "1"), ("slug", "x")]);
        let user = keys(&[("email", "a@b")]);
        let stored = StoredKey::new(&FlagCacheKey::new("f", &company, &user));
        assert_eq!(stored.text(), "fid1slugxemaila@b");
        assert!(stored.matches(&FlagCacheKey::new("f", &company, &user)));
        // Other flag, a pair more or less, other values, pairs swapped
        // between the sets, values swapped between names.
        type Keys = BTreeMap<String, String>;
        let cases: [(&str, Keys, Keys); 7] = [
            ("g", company.clone(), user.clone()),
            ("f", keys(&[("id", "1")]), user.clone()),
            (
                "f",
                keys(&[("id", "1"), ("slug", "x"), ("z", "")]),
                user.clone(),
            ),
            ("f", keys(&[("id", "2"), ("slug", "x")]), user.clone()),
            ("f", user.clone(), company.clone()),
            ("f", keys(&[("id", "x"), ("slug", "1")]), user.clone()),
            ("f", company.clone(), keys(&[])),
        ];
        for (i, (flag, c, u)) in cases.iter().enumerate() {
            assert!(!stored.matches(&FlagCacheKey::new(flag, c, u)), "case {i}");
        }
        // Parts are delimited by position, not by text: "ab"+"c" is not
        // "a"+"bc".
        let a = StoredKey::new(&FlagCacheKey::new("f", &[("ab", "c")], &()));
        assert!(!a.matches(&FlagCacheKey::new("f", &[("a", "bc")], &())));
    }
}
