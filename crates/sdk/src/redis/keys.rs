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
//! Lower-casing is `char::to_lowercase`, as in the local store.

use crate::datastream::lookup::fold;
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

    /// `<prefix>:flags:<ver>:<lower key>`.
    pub(crate) fn flag(&self, version: &str, key: &str) -> String {
        format!("{}:flags:{version}:{}", self.prefix, fold(key))
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

    /// `<prefix>:<kind>:<ver>:<id>`.
    pub(crate) fn entity(&self, kind: EntityKind, version: &str, id: &str) -> String {
        format!("{}{id}", self.entity_prefix(kind, version))
    }

    /// `<prefix>:<kind>:<ver>:<lower name>:<lower value>`.
    pub(crate) fn lookup(
        &self,
        kind: EntityKind,
        version: &str,
        name: &str,
        value: &str,
    ) -> String {
        format!(
            "{}{}:{}",
            self.entity_prefix(kind, version),
            fold(name),
            fold(value)
        )
    }

    /// `<prefix>:flag_check:<canonical>`.
    pub(crate) fn flag_check(&self, canonical: &str) -> String {
        format!("{}:flag_check:{canonical}", self.prefix)
    }
}

pub(crate) fn kind_name(kind: EntityKind) -> &'static str {
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
        assert_eq!(
            l.flag("14269364", "New-Editor"),
            "schematic:flags:14269364:new-editor"
        );
        assert_eq!(l.flag_pattern("1"), "schematic:flags:1:*");
        assert_eq!(l.flag_pattern("a*b"), "schematic:flags:a\\*b:*");
        assert_eq!(
            l.entity(EntityKind::Company, "1", "Co_ABC"),
            "schematic:company:1:Co_ABC"
        );
        assert_eq!(
            l.lookup(EntityKind::Company, "1", "Domain", "ACME.com"),
            "schematic:company:1:domain:acme.com"
        );
        assert_eq!(
            l.lookup(EntityKind::User, "v2", "Email", "Ä@x"),
            "schematic:user:v2:email:ä@x"
        );
        assert_eq!(l.flag_check("f:x"), "schematic:flag_check:f:x");
        assert_eq!(Layout::new("app:sch").flag("1", "x"), "app:sch:flags:1:x");
    }
}
