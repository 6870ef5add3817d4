//! [`Context`]: who a flag is checked for.
//!
//! Schematic evaluates a flag for a company, a user, both, or neither, each
//! identified by one or more key pairs (`id = acme`, `email = ada@example.com`,
//! any key the environment defines). A `Context` borrows those pairs from
//! wherever they already live (an array literal, a map, a `Vec`), so building
//! one costs nothing and a check answered from memory allocates nothing.
//!
//! ```
//! use std::collections::BTreeMap;
//! use flagwire::Context;
//!
//! // Array literals of `(&str, &str)` pairs, no `to_owned()`.
//! let company = Context::company(&[("id", "acme")]);
//! assert!(company.has_company() && !company.has_user());
//!
//! // Both, from variables and maps.
//! let email = String::from("ada@example.com");
//! let user: BTreeMap<String, String> = [("email".into(), email.clone())].into();
//! let both = Context::company(&[("id", "acme")]).with_user(&user);
//! assert!(both.has_company() && both.has_user());
//!
//! // Neither: a check that only global rules can match.
//! let nobody = Context::from(());
//! assert!(nobody.is_empty());
//! ```

use std::fmt;

use flagwire_core::events::Keys;

use crate::cache::KeyPairs;

/// The key pairs a flag is checked for: company keys, user keys, both or
/// neither. `Copy`, borrowed, free to build; see the [module docs](self).
///
/// Check methods take `impl Into<Context>`, so `()` means "no company, no
/// user". An empty set of keys counts as absent.
#[derive(Clone, Copy, Default)]
pub struct Context<'a> {
    company: Option<&'a (dyn KeyPairs + Sync)>,
    user: Option<&'a (dyn KeyPairs + Sync)>,
}

impl<'a> Context<'a> {
    /// No company and no user.
    pub const fn none() -> Self {
        Context {
            company: None,
            user: None,
        }
    }

    /// A check for the company identified by `keys`.
    pub fn company<K: KeyPairs + Sync>(keys: &'a K) -> Self {
        Context::none().with_company(keys)
    }

    /// A check for the user identified by `keys`.
    pub fn user<K: KeyPairs + Sync>(keys: &'a K) -> Self {
        Context::none().with_user(keys)
    }

    /// The same context with the company identified by `keys`.
    #[must_use]
    pub fn with_company<K: KeyPairs + Sync>(mut self, keys: &'a K) -> Self {
        self.company = (keys.pair_count() > 0).then_some(keys as &(dyn KeyPairs + Sync));
        self
    }

    /// The same context with the user identified by `keys`.
    #[must_use]
    pub fn with_user<K: KeyPairs + Sync>(mut self, keys: &'a K) -> Self {
        self.user = (keys.pair_count() > 0).then_some(keys as &(dyn KeyPairs + Sync));
        self
    }

    /// Whether the context names a company.
    pub fn has_company(&self) -> bool {
        self.company.is_some()
    }

    /// Whether the context names a user.
    pub fn has_user(&self) -> bool {
        self.user.is_some()
    }

    /// Whether the context names neither a company nor a user.
    pub fn is_empty(&self) -> bool {
        self.company.is_none() && self.user.is_none()
    }

    /// The company keys, if any.
    pub fn company_keys(&self) -> Option<&'a (dyn KeyPairs + Sync)> {
        self.company
    }

    /// The user keys, if any.
    pub fn user_keys(&self) -> Option<&'a (dyn KeyPairs + Sync)> {
        self.user
    }

    /// The company keys for a cache key (`&()` when absent).
    pub(crate) fn company_pairs(&self) -> &'a dyn KeyPairs {
        match self.company {
            Some(keys) => keys,
            None => &(),
        }
    }

    /// The user keys for a cache key (`&()` when absent).
    pub(crate) fn user_pairs(&self) -> &'a dyn KeyPairs {
        match self.user {
            Some(keys) => keys,
            None => &(),
        }
    }

    /// The company keys as an owned map (for request bodies and events).
    pub fn company_map(&self) -> Option<Keys> {
        self.company.map(to_map)
    }

    /// The user keys as an owned map.
    pub fn user_map(&self) -> Option<Keys> {
        self.user.map(to_map)
    }
}

fn to_map(pairs: &(dyn KeyPairs + Sync)) -> Keys {
    let mut map = Keys::new();
    pairs.try_for_each_pair(&mut |k, v| {
        map.insert(k.to_owned(), v.to_owned());
        true
    });
    map
}

/// An owned copy of a context's keys, for handing a check to another
/// thread.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnedContext {
    company: Option<Keys>,
    user: Option<Keys>,
}

impl OwnedContext {
    /// The context borrowing these keys.
    pub(crate) fn as_context(&self) -> Context<'_> {
        let mut context = Context::none();
        if let Some(keys) = &self.company {
            context = context.with_company(keys);
        }
        if let Some(keys) = &self.user {
            context = context.with_user(keys);
        }
        context
    }
}

impl From<&Context<'_>> for OwnedContext {
    fn from(context: &Context<'_>) -> Self {
        OwnedContext {
            company: context.company_map(),
            user: context.user_map(),
        }
    }
}

impl From<()> for Context<'static> {
    fn from((): ()) -> Self {
        Context::none()
    }
}

impl<'a> From<&Context<'a>> for Context<'a> {
    fn from(context: &Context<'a>) -> Self {
        *context
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("company", &self.company_map())
            .field("user", &self.user_map())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn empty_key_sets_count_as_absent() {
        let empty = Keys::new();
        let context = Context::company(&empty).with_user(&empty);
        assert!(context.is_empty());
        assert_eq!(context.company_map(), None);
    }

    #[test]
    fn maps_and_arrays_give_the_same_pairs() {
        let map: HashMap<&str, &str> = [("id", "acme"), ("slug", "acme-inc")].into();
        let from_map = Context::company(&map);
        let from_array = Context::company(&[("slug", "acme-inc"), ("id", "acme")]);
        assert_eq!(from_map.company_map(), from_array.company_map());
        assert_eq!(from_map.company_map().map(|m| m.len()), Some(2));
    }

    #[test]
    fn debug_shows_the_keys() {
        let context = Context::user(&[("email", "ada@example.com")]);
        let text = format!("{context:?}");
        assert!(text.contains("ada@example.com"), "{text}");
    }
}
