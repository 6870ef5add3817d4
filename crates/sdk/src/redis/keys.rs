//! The key layout shared with the official SDKs and the replicator.
//!
//! ```text
//! <prefix>:flags:<ver>:<lower flag key>          flag JSON
//! <prefix>:company:<ver>:<id>                    company JSON (id as is)
//! <prefix>:company:<ver>:<lower name>:<lower v>  company id
//! <prefix>:user:<ver>:<id>                       user JSON
//! <prefix>:user:<ver>:<lower name>:<lower v>     user id
//! <prefix>:flag_check:<canonical check key>      a cached API answer
//! ```
//!
//! Lower-casing is `char::to_lowercase`, as in the local store. Flag,
//! entity and lookup keys are built with
//! [`CacheKeys`](flagwire_core::datastream::CacheKeys) (see
//! `RedisEntityStore`); this module holds the rest.

use crate::datastream::waiters::EntityKind;

/// Builds the Redis keys of one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    prefix: String,
}

impl Layout {
    pub(crate) fn new(prefix: &str) -> Self {
        Layout {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The pattern matching every flag of one version.
    pub(crate) fn flag_pattern(&self, version: &str) -> String {
        format!("{}:flags:{}:*", self.prefix, escape_glob(version))
    }

    /// `<prefix>:<kind>:<ver>:` — what an entity key and its lookup keys
    /// start with.
    pub(crate) fn entity_prefix(&self, kind: EntityKind, version: &str) -> String {
        format!("{}:{}:{version}:", self.prefix, kind_name(kind))
    }

    /// `<prefix>:flag_check:<canonical>`.
    pub(crate) fn flag_check(&self, canonical: &str) -> String {
        format!("{}:flag_check:{canonical}", self.prefix)
    }
}

fn kind_name(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::Company => "company",
        EntityKind::User => "user",
    }
}

/// Escapes the glob characters of `text` for a `SCAN MATCH` pattern.
fn escape_glob(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_replicator_layout() {
        let l = Layout::new("schematic");
        assert_eq!(l.flag_pattern("1"), "schematic:flags:1:*");
        assert_eq!(l.flag_pattern("a*b"), "schematic:flags:a\\*b:*");
        assert_eq!(
            l.entity_prefix(EntityKind::Company, "1"),
            "schematic:company:1:"
        );
        assert_eq!(l.flag_check("f:x"), "schematic:flag_check:f:x");
    }
}
