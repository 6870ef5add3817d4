//! Looking headers up, whatever the framework.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use crate::error::{Error, Malformed};

/// Read access to request headers by name, matched ASCII case-insensitively.
///
/// Implemented for:
///
/// * slices, arrays and `Vec`s of `(name, value)` pairs, where names and
///   values are anything that is `AsRef<[u8]>` (`&str`, `String`, `&[u8]`,
///   `Vec<u8>`, …), so a value does not have to be UTF-8;
/// * `HashMap` and `BTreeMap` with such keys and values;
/// * [`http::HeaderMap`], [`http::Request`] and [`http::request::Parts`]
///   with the default `http` feature;
/// * references to any of these.
///
/// ```
/// use flagwire_webhooks::Headers;
///
/// let headers = [("Content-Type", "application/json"), ("X-Flagsmith-Signature", "ab")];
/// let found: Vec<&[u8]> = headers.header_values("x-flagsmith-signature").collect();
/// assert_eq!(found, [b"ab"]);
/// ```
///
/// To plug in another framework, implement [`header_values`](Headers::header_values) so
/// that it yields every value of the named header, in order.
pub trait Headers {
    /// Every value of the header called `name`. The verifiers always pass
    /// names in lowercase, and implementations must compare them without
    /// regard to ASCII case.
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]>;

    /// Calls `found(i, value)` for every value of every header whose name
    /// is `names[i]`, in no particular order. `names` are distinct and
    /// lowercase.
    ///
    /// The verifiers use this to collect all of a scheme's headers at once.
    /// The provided implementation looks each name up with
    /// [`header_values`](Headers::header_values), which suits hashed maps;
    /// list-like containers override it to make a single pass over their
    /// entries, whatever the number of names.
    ///
    /// ```
    /// use flagwire_webhooks::Headers;
    ///
    /// let headers = [("Webhook-Id", "msg_1"), ("Host", "example.com"), ("webhook-timestamp", "1")];
    /// let mut seen = Vec::new();
    /// headers.visit_values(&["webhook-timestamp", "webhook-id"], |i, value| seen.push((i, value)));
    /// seen.sort();
    /// assert_eq!(seen, [(0, &b"1"[..]), (1, &b"msg_1"[..])]);
    /// ```
    fn visit_values<'s>(&'s self, names: &[&'static str], mut found: impl FnMut(usize, &'s [u8])) {
        for (index, &name) in names.iter().enumerate() {
            for value in self.header_values(name) {
                found(index, value);
            }
        }
    }
}

/// One pass over name/value entries, reporting those named in `names`.
#[inline(always)]
fn visit_pairs<'a, K, V>(
    iter: impl Iterator<Item = (&'a K, &'a V)>,
    names: &[&'static str],
    mut found: impl FnMut(usize, &'a [u8]),
) where
    K: AsRef<[u8]> + ?Sized + 'a,
    V: AsRef<[u8]> + ?Sized + 'a,
{
    for (key, value) in iter {
        let key = key.as_ref();
        for (index, name) in names.iter().enumerate() {
            if name_matches_scanning(key, name) {
                found(index, value.as_ref());
                break;
            }
        }
    }
}

fn pairs<'a, K, V>(
    iter: impl Iterator<Item = (&'a K, &'a V)>,
    name: &'static str,
) -> impl Iterator<Item = &'a [u8]>
where
    K: AsRef<[u8]> + ?Sized + 'a,
    V: AsRef<[u8]> + ?Sized + 'a,
{
    iter.filter(move |(k, _)| name_matches(k.as_ref(), name))
        .map(|(_, v)| v.as_ref())
}

/// ASCII case-insensitive equality of header names.
///
/// Compares eight bytes per step. For each word of `name`, the bytes that
/// are ASCII letters (of either case) are found with word arithmetic, and
/// bit 5 (the case bit) is set in those bytes on both sides; every other
/// byte must be equal as it is. That is exactly `eq_ignore_ascii_case`,
/// at a few instructions per eight bytes and without an early exit.
#[inline(always)]
pub(crate) fn name_matches(key: &[u8], name: &str) -> bool {
    let name = name.as_bytes();
    key.len() == name.len() && case_folded_difference(key, name) == 0
}

/// Bit 5 set in each byte of `word` that is an ASCII letter, either case.
#[inline(always)]
fn letter_case_bits(word: u64) -> u64 {
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Every byte below 0x80, lowercased if it is a letter: 0x20..=0x7f.
    let folded = (word & !HIGH) | u64::from_ne_bytes([0x20; 8]);
    // Adding 0x80 - b'a' sets a byte's top bit when it is at least `a`, and
    // adding 0x80 - (b'z' + 1) when it is above `z`; no byte carries over
    // into the next one (at most 0x7f + 0x1f).
    let from_a = folded.wrapping_add(u64::from_ne_bytes([0x80 - b'a'; 8]));
    let past_z = folded.wrapping_add(u64::from_ne_bytes([0x80 - b'z' - 1; 8]));
    // Bytes at or above 0x80 are not letters.
    let letters = from_a & !past_z & !word & HIGH;
    letters >> 2
}

/// Zero when `key` and `name` (same length) are equal ignoring ASCII case.
#[inline(always)]
fn case_folded_difference(key: &[u8], name: &[u8]) -> u64 {
    let word = |bytes: &[u8], at: usize| {
        let mut out = [0u8; 8];
        if let Some(chunk) = bytes.get(at..at + 8) {
            out.copy_from_slice(chunk);
        }
        u64::from_le_bytes(out)
    };
    let step = |k: u64, n: u64| {
        let case = letter_case_bits(n);
        (k | case) ^ (n | case)
    };
    let len = name.len().min(key.len());
    if len < 8 {
        // Short names: one word, zero-padded on both sides.
        let mut k = [0u8; 8];
        let mut n = [0u8; 8];
        k[..len].copy_from_slice(&key[..len]);
        n[..len].copy_from_slice(&name[..len]);
        return step(u64::from_le_bytes(k), u64::from_le_bytes(n));
    }
    let mut diff = 0;
    let mut at = 0;
    while at + 8 <= len {
        diff |= step(word(key, at), word(name, at));
        at += 8;
    }
    if at < len {
        // The last, overlapping word covers the remaining bytes.
        diff |= step(word(key, len - 8), word(name, len - 8));
    }
    diff
}

/// [`name_matches`] for a scan over all entries, which meets many names
/// that are not wanted: many share a length with a wanted one
/// (`user-agent` and `webhook-id`, `webhook-timestamp` and
/// `webhook-signature`) but few share the last byte as well, so those are
/// turned down before the full comparison.
#[inline(always)]
fn name_matches_scanning(key: &[u8], name: &str) -> bool {
    let name_bytes = name.as_bytes();
    key.len() == name_bytes.len()
        && match (key.last(), name_bytes.last()) {
            (Some(k), Some(n)) => k.eq_ignore_ascii_case(n),
            _ => true,
        }
        && name_matches(key, name)
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> Headers for [(K, V)] {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        pairs(self.iter().map(|(k, v)| (k, v)), name)
    }

    #[inline(always)]
    fn visit_values<'s>(&'s self, names: &[&'static str], found: impl FnMut(usize, &'s [u8])) {
        visit_pairs(self.iter().map(|(k, v)| (k, v)), names, found);
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>, const N: usize> Headers for [(K, V); N] {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        self.as_slice().header_values(name)
    }

    #[inline(always)]
    fn visit_values<'s>(&'s self, names: &[&'static str], found: impl FnMut(usize, &'s [u8])) {
        self.as_slice().visit_values(names, found);
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> Headers for Vec<(K, V)> {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        self.as_slice().header_values(name)
    }

    #[inline(always)]
    fn visit_values<'s>(&'s self, names: &[&'static str], found: impl FnMut(usize, &'s [u8])) {
        self.as_slice().visit_values(names, found);
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>, S: BuildHasher> Headers for HashMap<K, V, S> {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        pairs(self.iter(), name)
    }

    #[inline(always)]
    fn visit_values<'s>(&'s self, names: &[&'static str], found: impl FnMut(usize, &'s [u8])) {
        visit_pairs(self.iter(), names, found);
    }
}

impl<K: AsRef<[u8]>, V: AsRef<[u8]>> Headers for BTreeMap<K, V> {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        pairs(self.iter(), name)
    }

    #[inline(always)]
    fn visit_values<'s>(&'s self, names: &[&'static str], found: impl FnMut(usize, &'s [u8])) {
        visit_pairs(self.iter(), names, found);
    }
}

impl<T: Headers + ?Sized> Headers for &T {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        (**self).header_values(name)
    }

    #[inline(always)]
    fn visit_values<'s>(&'s self, names: &[&'static str], found: impl FnMut(usize, &'s [u8])) {
        (**self).visit_values(names, found);
    }
}

#[cfg(feature = "http")]
impl Headers for http::HeaderMap {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        // `HeaderMap` stores names in lowercase, and the verifiers pass
        // lowercase names, so this is a plain hashed lookup.
        self.get_all(name).iter().map(http::HeaderValue::as_bytes)
    }
}

#[cfg(feature = "http")]
impl<B> Headers for http::Request<B> {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        self.headers().header_values(name)
    }

    #[inline(always)]
    fn visit_values<'s>(&'s self, names: &[&'static str], found: impl FnMut(usize, &'s [u8])) {
        self.headers().visit_values(names, found);
    }
}

#[cfg(feature = "http")]
impl Headers for http::request::Parts {
    fn header_values(&self, name: &'static str) -> impl Iterator<Item = &[u8]> {
        self.headers.header_values(name)
    }

    #[inline(always)]
    fn visit_values<'s>(&'s self, names: &[&'static str], found: impl FnMut(usize, &'s [u8])) {
        self.headers.visit_values(names, found);
    }
}

/// Optional whitespace around a field value is not part of it (RFC 9110).
fn trim_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// The one value of a single-valued header: `None` if absent or empty,
/// an error if it appears more than once.
///
/// The verifiers use [`Found`]; this lookup by name is the reference the
/// tests hold it to.
#[cfg(test)]
pub(crate) fn optional<'h, H: Headers + ?Sized>(
    headers: &'h H,
    name: &'static str,
) -> Result<Option<&'h [u8]>, Error> {
    let mut values = headers.header_values(name);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Error::MalformedHeader {
            name,
            reason: Malformed::Repeated,
        });
    }
    let value = trim_ows(first);
    Ok(if value.is_empty() { None } else { Some(value) })
}

/// All of a scheme's headers, collected in one [`Headers::visit_values`]
/// call. Each slot keeps the first value and whether the header repeated.
pub(crate) struct Found<'h, const N: usize> {
    names: &'static [&'static str; N],
    first: [Option<&'h [u8]>; N],
    repeated: [bool; N],
}

impl<'h, const N: usize> Found<'h, N> {
    /// Looks up every name in `names` at once.
    #[inline]
    pub(crate) fn collect<H: Headers + ?Sized>(
        headers: &'h H,
        names: &'static [&'static str; N],
    ) -> Self {
        let mut first = [None; N];
        let mut repeated = [false; N];
        headers.visit_values(names, |index, value| {
            if let (Some(slot), Some(again)) = (first.get_mut(index), repeated.get_mut(index)) {
                if slot.is_some() {
                    *again = true;
                } else {
                    *slot = Some(value);
                }
            }
        });
        Found {
            names,
            first,
            repeated,
        }
    }

    /// Every header's value when each one was found exactly once and is
    /// not empty (the common case, with no error to build); `None`
    /// otherwise, and [`optional`](Self::optional) and
    /// [`required`](Self::required) then tell what is wrong.
    #[inline]
    pub(crate) fn values(&self) -> Option<[&'h [u8]; N]> {
        let mut values = [&[][..]; N];
        for ((value, first), repeated) in values.iter_mut().zip(self.first).zip(self.repeated) {
            *value = trim_ows(first?);
            if repeated || value.is_empty() {
                return None;
            }
        }
        Some(values)
    }

    /// Every header's value, or the error of the first one that is
    /// missing, repeated or empty (in the order of `names`).
    #[inline]
    pub(crate) fn all_required(&self) -> Result<[&'h [u8]; N], Error> {
        match self.values() {
            Some(values) => Ok(values),
            None => self.first_error(),
        }
    }

    /// [`all_required`](Self::all_required) when the quick look failed.
    #[cold]
    #[inline(never)]
    fn first_error(&self) -> Result<[&'h [u8]; N], Error> {
        let mut values = [&[][..]; N];
        for (index, value) in values.iter_mut().enumerate() {
            *value = self.required(index)?;
        }
        Ok(values)
    }

    /// The header `names[index]`, with the rules of [`optional`].
    #[inline]
    pub(crate) fn optional(&self, index: usize) -> Result<Option<&'h [u8]>, Error> {
        let name = self.names[index];
        if self.repeated[index] {
            return Err(Error::MalformedHeader {
                name,
                reason: Malformed::Repeated,
            });
        }
        Ok(self.first[index]
            .map(trim_ows)
            .filter(|value| !value.is_empty()))
    }

    /// The header `names[index]`, with the rules of [`required`].
    #[inline]
    pub(crate) fn required(&self, index: usize) -> Result<&'h [u8], Error> {
        self.optional(index)?.ok_or(Error::MissingHeader {
            name: self.names[index],
        })
    }
}

/// Like [`optional`], but absence is an error.
#[cfg(test)]
pub(crate) fn required<'h, H: Headers + ?Sized>(
    headers: &'h H,
    name: &'static str,
) -> Result<&'h [u8], Error> {
    optional(headers, name)?.ok_or(Error::MissingHeader { name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_pairs_and_maps() {
        let pairs = [("X-Hook", "a"), ("other", "b")];
        assert_eq!(required(&pairs, "x-hook"), Ok(&b"a"[..]));
        let bytes: Vec<(&[u8], &[u8])> = vec![(b"x-HOOK", b"\xff\xfe")];
        assert_eq!(required(&bytes, "x-hook"), Ok(&b"\xff\xfe"[..]));
        let map: HashMap<String, String> = [("X-HOOK".to_owned(), " v ".to_owned())].into();
        assert_eq!(required(&map, "x-hook"), Ok(&b"v"[..]));
        let map: BTreeMap<&str, &str> = [("x-Hook", "v")].into();
        assert_eq!(required(&map, "x-hook"), Ok(&b"v"[..]));
    }

    #[test]
    fn name_matching() {
        assert!(name_matches(
            b"X-Flagsmith-Signature",
            "x-flagsmith-signature"
        ));
        assert!(name_matches(
            b"x-flagsmith-signature",
            "X-FLAGSMITH-SIGNATURE"
        ));
        assert!(!name_matches(
            b"x-flagsmith-signaturE2",
            "x-flagsmith-signature"
        ));
        assert!(!name_matches(
            b"x-flagsmith-signaturf",
            "x-flagsmith-signature"
        ));
        // Only ASCII letters fold: `-` is not `\r`, `@` is not `` ` ``.
        assert!(!name_matches(b"x\rflagsmith", "x-flagsmith"));
        assert!(!name_matches(b"@", "`"));
        assert!(name_matches(b"", ""));
    }

    #[test]
    fn name_matching_at_every_length_and_position() {
        // Every length, with one byte altered in each position (the last
        // one included; case changes must still match).
        let name = "x-some-header-name-for-tests";
        for len in 0..=name.len() {
            let name = &name[..len];
            assert!(name_matches(name.to_ascii_uppercase().as_bytes(), name));
            assert!(name_matches_scanning(
                name.to_ascii_uppercase().as_bytes(),
                name
            ));
            for at in 0..len {
                for swap in [b'\r', b'_', b'X', 0xc1, b'-' ^ 0x20] {
                    let mut key = name.as_bytes().to_vec();
                    key[at] = swap;
                    let expected = key[at].eq_ignore_ascii_case(&name.as_bytes()[at]);
                    assert_eq!(name_matches(&key, name), expected, "{key:?} {name}");
                    assert_eq!(name_matches_scanning(&key, name), expected, "{key:?}");
                }
            }
        }
    }

    #[test]
    fn word_comparison_agrees_with_std_for_every_byte_pair() {
        // Every pair of bytes at every position of a short name (one padded
        // word) and of two long ones (every lane of a whole word, and of the
        // overlapping tail word).
        for len in [3, 8, 13] {
            for at in 0..len {
                let mut name = vec![b'q'; len];
                let mut key = vec![b'Q'; len];
                for n in 0..=255u8 {
                    for k in 0..=255u8 {
                        name[at] = n;
                        key[at] = k;
                        let expected = k.eq_ignore_ascii_case(&n);
                        let diff = case_folded_difference(&key, &name);
                        assert_eq!(diff == 0, expected, "{len} {at} {n:#x} {k:#x}");
                    }
                }
            }
        }
    }

    #[test]
    fn missing_empty_and_repeated() {
        let pairs = [("a", ""), ("b", "1"), ("B", "2"), ("c", " \t ")];
        assert_eq!(
            required(&pairs, "a"),
            Err(Error::MissingHeader { name: "a" })
        );
        assert_eq!(
            required(&pairs, "c"),
            Err(Error::MissingHeader { name: "c" })
        );
        assert_eq!(
            required(&pairs, "z"),
            Err(Error::MissingHeader { name: "z" })
        );
        assert_eq!(
            required(&pairs, "b"),
            Err(Error::MalformedHeader {
                name: "b",
                reason: Malformed::Repeated
            })
        );
    }

    #[test]
    fn one_scan_agrees_with_lookups_by_name() {
        const NAMES: &[&str; 3] = &["webhook-signature", "webhook-id", "webhook-timestamp"];
        let lists: [&[(&str, &str)]; 7] = [
            &[],
            &[
                ("webhook-timestamp", "1"),
                ("Webhook-Signature", " v1,a "),
                ("webhook-id", "msg"),
            ],
            &[
                ("webhook-timestamp", "1"),
                ("webhook-signature", "v1,a"),
                ("webhook-id", "msg"),
                ("webhook-timestamp", "2"),
            ],
            &[
                ("Host", "h"),
                ("Webhook-Id", "msg"),
                ("WEBHOOK-TIMESTAMP", " 1 "),
            ],
            &[("webhook-signature", "a"), ("webhook-Signature", "b")],
            &[
                ("webhook-id", ""),
                ("webhook-timestamp", "\t"),
                ("webhook-signaturex", "c"),
            ],
            &[
                ("user-agent", "x"),
                ("webhook-id", "1"),
                ("webhook-id", "1"),
            ],
        ];
        for list in lists {
            let found = Found::collect(list, NAMES);
            for (index, &name) in NAMES.iter().enumerate() {
                assert_eq!(
                    found.optional(index),
                    optional(list, name),
                    "{list:?} {name}"
                );
                assert_eq!(
                    found.required(index),
                    required(list, name),
                    "{list:?} {name}"
                );
            }
            // All at once: the values when every lookup succeeds, else the
            // first failing lookup's error, in the order of the names.
            let by_name: Result<Vec<&[u8]>, Error> =
                NAMES.iter().map(|&name| required(list, name)).collect();
            assert_eq!(found.all_required().map(Vec::from), by_name, "{list:?}");
            assert_eq!(found.values().map(Vec::from), by_name.ok(), "{list:?}");
            // `HeaderMap` keeps the provided, per-name `visit_values`.
            #[cfg(feature = "http")]
            {
                let mut map = http::HeaderMap::new();
                for &(k, v) in list {
                    let name = http::HeaderName::from_bytes(k.as_bytes()).unwrap();
                    map.append(name, http::HeaderValue::from_str(v).unwrap());
                }
                let mapped = Found::collect(&map, NAMES);
                for index in 0..NAMES.len() {
                    assert_eq!(mapped.optional(index), found.optional(index), "{list:?}");
                }
            }
        }
    }

    #[cfg(feature = "http")]
    #[test]
    fn header_map() {
        let mut map = http::HeaderMap::new();
        map.insert("X-Hook", http::HeaderValue::from_static("v"));
        assert_eq!(required(&map, "x-hook"), Ok(&b"v"[..]));
        map.append("x-hook", http::HeaderValue::from_static("w"));
        assert!(required(&map, "x-hook").is_err());
        let req = http::Request::builder()
            .header("X-Other", "1")
            .body(())
            .unwrap();
        assert_eq!(required(&req, "x-other"), Ok(&b"1"[..]));
        assert_eq!(required(&req.into_parts().0, "x-other"), Ok(&b"1"[..]));
    }
}
