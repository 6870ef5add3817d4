//! Cache keys for flags, companies and users, and lookup-key bookkeeping.
//!
//! The layout is the one every official SDK and the replicator write, so a
//! shared cache (Redis) holds the same entries whoever filled it:
//!
//! | entry | key | value |
//! |---|---|---|
//! | flag | `{prefix}:flags:{version}:{lower(flag key)}` | flag JSON |
//! | company by id | `{prefix}:company:{version}:{id}` | company JSON |
//! | company lookup | `{prefix}:company:{version}:{lower(key name)}:{lower(key value)}` | company id |
//! | user by id, user lookup | the same with `user` | user JSON, user id |
//!
//! Ids are not lower-cased; flag keys and lookup pairs are, character by
//! character with Unicode's lower-case mapping. The version segment is
//! [`rules::ENGINE_VERSION_KEY`](crate::rules::ENGINE_VERSION_KEY) by
//! default, or the replicator's `cache_version` in replicator mode.
//!
//! An entity is found by any of its keys: each `(name, value)` pair of the
//! caller's keys is looked up, and when two pairs lead to different ids the
//! caller's keys are ambiguous ([`resolve_lookups`], [`KeyConflict`]). When
//! an entity's keys change, the pairs it lost must be removed from the
//! lookup table ([`stale_lookups`]).
//!
//! The layout has one known ambiguity, inherited from the platform: an id
//! containing `:` can spell the same key as a lookup entry.

use std::fmt;

use crate::events::Keys;
use crate::rules::ENGINE_VERSION_KEY;

/// The prefix every SDK puts before its cache keys.
pub const DEFAULT_PREFIX: &str = "schematic";

/// Builds cache keys for one prefix and version.
///
/// ```
/// use flagwire_core::datastream::CacheKeys;
/// let keys = CacheKeys::new("schematic", "fw1");
/// assert_eq!(keys.flag("Beta-Dashboard"), "schematic:flags:fw1:beta-dashboard");
/// assert_eq!(keys.company("Co_1"), "schematic:company:fw1:Co_1");
/// assert_eq!(keys.company_lookup("Domain", "ACME.test"), "schematic:company:fw1:domain:acme.test");
///
/// // Reusing one buffer on a hot path:
/// let mut buf = String::new();
/// keys.write_user_lookup(&mut buf, "email", "A@B.C");
/// assert_eq!(buf, "schematic:user:fw1:email:a@b.c");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKeys {
    /// `{prefix}:` (empty for an empty prefix).
    prefix: Box<str>,
    version: Box<str>,
}

impl Default for CacheKeys {
    /// Prefix `schematic`, version [`ENGINE_VERSION_KEY`].
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX, ENGINE_VERSION_KEY)
    }
}

/// Appends `text` lower-cased, one character at a time.
fn push_lower(out: &mut String, text: &str) {
    if text.is_ascii() {
        out.extend(text.bytes().map(|b| char::from(b.to_ascii_lowercase())));
    } else {
        out.extend(text.chars().flat_map(char::to_lowercase));
    }
}

/// Whether two strings are equal once lower-cased like [`push_lower`].
fn eq_lower(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Company,
    User,
}

impl Kind {
    fn segment(self) -> &'static str {
        match self {
            Self::Company => "company:",
            Self::User => "user:",
        }
    }
}

impl CacheKeys {
    /// Keys under `prefix` (for example `schematic`; empty for none) and
    /// `version`.
    pub fn new(prefix: impl Into<String>, version: impl Into<String>) -> Self {
        let mut prefix = prefix.into();
        if !prefix.is_empty() {
            prefix.push(':');
        }
        Self {
            prefix: prefix.into(),
            version: version.into().into(),
        }
    }

    /// The prefix (without its `:`).
    pub fn prefix(&self) -> &str {
        self.prefix.strip_suffix(':').unwrap_or("")
    }

    /// The version segment.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn head(&self, out: &mut String, segment: &str) {
        out.push_str(&self.prefix);
        out.push_str(segment);
        out.push_str(&self.version);
        out.push(':');
    }

    fn build(&self, write: impl FnOnce(&Self, &mut String)) -> String {
        let mut out = String::with_capacity(64);
        write(self, &mut out);
        out
    }

    /// The key of the flag `flag_key`.
    pub fn flag(&self, flag_key: &str) -> String {
        self.build(|k, out| k.write_flag(out, flag_key))
    }

    /// Appends the key of the flag `flag_key` to `out`.
    pub fn write_flag(&self, out: &mut String, flag_key: &str) {
        self.head(out, "flags:");
        push_lower(out, flag_key);
    }

    /// The common start of every flag key of this version, to scan for
    /// flags left over after a bulk update.
    pub fn flags_prefix(&self) -> String {
        self.build(|k, out| k.head(out, "flags:"))
    }

    fn write_entity(&self, out: &mut String, kind: Kind, id: &str) {
        self.head(out, kind.segment());
        out.push_str(id);
    }

    fn write_lookup(&self, out: &mut String, kind: Kind, name: &str, value: &str) {
        self.head(out, kind.segment());
        push_lower(out, name);
        out.push(':');
        push_lower(out, value);
    }

    /// The key of the company with `id`.
    pub fn company(&self, id: &str) -> String {
        self.build(|k, out| k.write_company(out, id))
    }

    /// Appends the key of the company with `id` to `out`.
    pub fn write_company(&self, out: &mut String, id: &str) {
        self.write_entity(out, Kind::Company, id);
    }

    /// The lookup key of the company key pair `name = value`.
    pub fn company_lookup(&self, name: &str, value: &str) -> String {
        self.build(|k, out| k.write_company_lookup(out, name, value))
    }

    /// Appends the lookup key of the company key pair `name = value` to `out`.
    pub fn write_company_lookup(&self, out: &mut String, name: &str, value: &str) {
        self.write_lookup(out, Kind::Company, name, value);
    }

    /// The lookup keys of every pair of `keys`, in key order.
    pub fn company_lookups<'a>(&'a self, keys: &'a Keys) -> impl Iterator<Item = String> + 'a {
        keys.iter().map(|(n, v)| self.company_lookup(n, v))
    }

    /// The key of the user with `id`.
    pub fn user(&self, id: &str) -> String {
        self.build(|k, out| k.write_user(out, id))
    }

    /// Appends the key of the user with `id` to `out`.
    pub fn write_user(&self, out: &mut String, id: &str) {
        self.write_entity(out, Kind::User, id);
    }

    /// The lookup key of the user key pair `name = value`.
    pub fn user_lookup(&self, name: &str, value: &str) -> String {
        self.build(|k, out| k.write_user_lookup(out, name, value))
    }

    /// Appends the lookup key of the user key pair `name = value` to `out`.
    pub fn write_user_lookup(&self, out: &mut String, name: &str, value: &str) {
        self.write_lookup(out, Kind::User, name, value);
    }

    /// The lookup keys of every pair of `keys`, in key order.
    pub fn user_lookups<'a>(&'a self, keys: &'a Keys) -> impl Iterator<Item = String> + 'a {
        keys.iter().map(|(n, v)| self.user_lookup(n, v))
    }
}

/// Whether two key pairs share one lookup entry (equal once lower-cased).
pub fn same_lookup(a: (&str, &str), b: (&str, &str)) -> bool {
    eq_lower(a.0, b.0) && eq_lower(a.1, b.1)
}

/// The pairs of `old` whose lookup entry `new` no longer has: remove these
/// lookups when an entity's keys change from `old` to `new`. Pairs compare
/// lower-cased, like the lookup keys; no allocation.
///
/// ```
/// use flagwire_core::datastream::stale_lookups;
/// let old = [("domain".to_owned(), "acme.test".to_owned()), ("id".to_owned(), "1".to_owned())].into();
/// let new = [("domain".to_owned(), "ACME.test".to_owned()), ("id".to_owned(), "2".to_owned())].into();
/// let stale: Vec<_> = stale_lookups(&old, &new).collect();
/// assert_eq!(stale, [("id", "1")]);
/// ```
pub fn stale_lookups<'a>(old: &'a Keys, new: &'a Keys) -> impl Iterator<Item = (&'a str, &'a str)> {
    old.iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .filter(move |&pair| {
            !new.iter()
                .any(|(n, v)| same_lookup(pair, (n.as_str(), v.as_str())))
        })
}

/// Resolves the ids found under each of a caller's lookup pairs (the hits;
/// misses left out) to one entity id.
///
/// No hit is `Ok(None)`; hits that all name one id are that id; hits naming
/// different ids are a [`KeyConflict`]: the caller's keys describe more than
/// one entity, and the check must not pick one (the Python SDK's rule: the
/// check answers the flag default with reason "key conflict").
///
/// ```
/// use flagwire_core::datastream::resolve_lookups;
/// assert_eq!(resolve_lookups(["co_1", "co_1"]), Ok(Some("co_1")));
/// assert_eq!(resolve_lookups([]), Ok(None));
/// let conflict = resolve_lookups(["co_1", "co_2", "co_1"]).unwrap_err();
/// assert_eq!(conflict.ids(), ["co_1", "co_2"]);
/// ```
pub fn resolve_lookups<'a>(
    hits: impl IntoIterator<Item = &'a str>,
) -> Result<Option<&'a str>, KeyConflict> {
    let mut hits = hits.into_iter();
    let Some(first) = hits.next() else {
        return Ok(None);
    };
    while let Some(hit) = hits.next() {
        if hit != first {
            let mut ids = vec![first.to_owned(), hit.to_owned()];
            for hit in hits {
                if !ids.iter().any(|id| id == hit) {
                    ids.push(hit.to_owned());
                }
            }
            return Err(KeyConflict { ids });
        }
    }
    Ok(Some(first))
}

/// A caller's keys lead to more than one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConflict {
    ids: Vec<String>,
}

impl KeyConflict {
    /// The distinct ids the keys led to, in the order they were found.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }
}

impl fmt::Display for KeyConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("key conflict: the keys match different entities (")?;
        for (i, id) in self.ids.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(id)?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for KeyConflict {}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> Keys {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn layout() {
        let k = CacheKeys::default();
        assert_eq!(k.prefix(), "schematic");
        assert_eq!(k.version(), ENGINE_VERSION_KEY);
        let k = CacheKeys::new("schematic", "14269364");
        assert_eq!(k.flag("API-Calls"), "schematic:flags:14269364:api-calls");
        assert_eq!(k.flags_prefix(), "schematic:flags:14269364:");
        assert_eq!(k.company("Co_ABC"), "schematic:company:14269364:Co_ABC");
        assert_eq!(
            k.company_lookup("Slug", "Acme-Inc"),
            "schematic:company:14269364:slug:acme-inc"
        );
        assert_eq!(k.user("U_1"), "schematic:user:14269364:U_1");
        assert_eq!(
            k.user_lookup("Email", "Ada@Example.COM"),
            "schematic:user:14269364:email:ada@example.com"
        );
        let lookups: Vec<String> = k
            .company_lookups(&keys(&[("id", "A"), ("domain", "B.test")]))
            .collect();
        assert_eq!(
            lookups,
            [
                "schematic:company:14269364:domain:b.test",
                "schematic:company:14269364:id:a"
            ]
        );
        assert_eq!(k.user_lookups(&keys(&[("id", "A")])).count(), 1);
    }

    #[test]
    fn empty_prefix_has_no_leading_colon() {
        let k = CacheKeys::new("", "1");
        assert_eq!(k.prefix(), "");
        assert_eq!(k.flag("f"), "flags:1:f");
        assert_eq!(k.company_lookup("id", "x"), "company:1:id:x");
    }

    #[test]
    fn unicode_lower_casing() {
        let k = CacheKeys::new("p", "v");
        assert_eq!(k.flag("ÜBER-Flag"), "p:flags:v:über-flag");
        assert_eq!(k.user_lookup("NAME", "İ"), "p:user:v:name:i\u{307}");
        assert!(same_lookup(("Name", "ÄRGER"), ("name", "ärger")));
        assert!(!same_lookup(("name", "a"), ("name", "b")));
        assert!(!same_lookup(("name", "a"), ("nam", "ea")));
    }

    #[test]
    fn writers_append() {
        let k = CacheKeys::new("s", "v");
        let mut out = String::from(">");
        k.write_company(&mut out, "id");
        k.write_flag(&mut out, "F");
        assert_eq!(out, ">s:company:v:ids:flags:v:f");
    }

    #[test]
    fn stale_lookup_pairs() {
        let old = keys(&[("id", "1"), ("domain", "acme.test"), ("slug", "acme")]);
        let new = keys(&[("ID", "1"), ("domain", "acme.example")]);
        let stale: Vec<_> = stale_lookups(&old, &new).collect();
        assert_eq!(stale, [("domain", "acme.test"), ("slug", "acme")]);
        assert_eq!(stale_lookups(&old, &old).count(), 0);
        assert_eq!(stale_lookups(&Keys::new(), &old).count(), 0);
        assert_eq!(stale_lookups(&old, &Keys::new()).count(), 3);
    }

    #[test]
    fn conflicts() {
        assert_eq!(resolve_lookups(["a"]), Ok(Some("a")));
        let e = resolve_lookups(["a", "a", "b", "c", "b"]).unwrap_err();
        assert_eq!(e.ids(), ["a", "b", "c"]);
        assert_eq!(
            e.to_string(),
            "key conflict: the keys match different entities (a, b, c)"
        );
    }
}
