//! How an OpenFeature [`EvaluationContext`] becomes the company and user key
//! pairs of a Schematic check.
//!
//! | context entry | Schematic keys |
//! | --- | --- |
//! | targeting key | one key of the user (or company), named by [`TargetingKey`]; default user `id` |
//! | `company` = struct of string pairs | the company's keys |
//! | `user` = struct of string pairs | the user's keys |
//! | `company.<name>` = string | the company key `<name>` |
//! | `user.<name>` = string | the user key `<name>` |
//! | anything else | ignored by checks; sent as traits by [`track`](crate::SchematicProvider::track) |
//!
//! A struct is an [`EvaluationContextFieldValue::Struct`] holding one of
//! `BTreeMap<String, String>` (= [`flagwire_core::events::Keys`]),
//! `HashMap<String, String>`, `Vec<(String, String)>` or an OpenFeature
//! [`StructValue`] whose fields are all strings.
//!
//! Malformed input is refused with [`ContextError`] (OpenFeature's
//! `INVALID_CONTEXT`): a `company`/`user` entry that is not such a struct, a
//! key value that is not a string, an empty key name or value, an empty
//! targeting key, or one key name given two different values. A key given
//! twice with the same value is fine. An explicit key wins over the
//! targeting key: when the user already has the key the targeting key maps
//! to, the targeting key is not used.
//!
//! Mapping borrows every string from the context and keeps up to
//! [`INLINE_PAIRS`] pairs per entity on the stack, so it allocates nothing
//! for usual contexts.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use flagwire::cache::KeyPairs;
use open_feature::{EvaluationContext, EvaluationContextFieldValue, StructValue, Value};

/// Context attribute holding the company's keys as a struct.
pub const COMPANY: &str = "company";
/// Context attribute holding the user's keys as a struct.
pub const USER: &str = "user";
/// Prefix of context attributes naming one company key (`company.id`).
pub const COMPANY_PREFIX: &str = "company.";
/// Prefix of context attributes naming one user key (`user.email`).
pub const USER_PREFIX: &str = "user.";

/// Key pairs per entity kept on the stack before spilling to the heap.
pub const INLINE_PAIRS: usize = 6;

/// Which Schematic entity the OpenFeature targeting key identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// The company.
    Company,
    /// The user.
    User,
}

/// What the targeting key of a context becomes: a key of the user or of the
/// company, or nothing.
///
/// ```
/// use flagwire_openfeature::{Entity, TargetingKey};
///
/// assert_eq!(TargetingKey::default(), TargetingKey::user("id"));
/// let by_email = TargetingKey::user("email");
/// assert_eq!(by_email.entity(), Some(Entity::User));
/// assert_eq!(TargetingKey::company("id").key_name(), Some("id"));
/// assert_eq!(TargetingKey::ignored().entity(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TargetingKey {
    target: Option<(Entity, String)>,
}

impl TargetingKey {
    /// The targeting key is the user key `name`.
    pub fn user(name: impl Into<String>) -> Self {
        TargetingKey {
            target: Some((Entity::User, name.into())),
        }
    }

    /// The targeting key is the company key `name`.
    pub fn company(name: impl Into<String>) -> Self {
        TargetingKey {
            target: Some((Entity::Company, name.into())),
        }
    }

    /// The targeting key is not used.
    pub fn ignored() -> Self {
        TargetingKey { target: None }
    }

    /// The entity the targeting key identifies, if it is used.
    pub fn entity(&self) -> Option<Entity> {
        self.target.as_ref().map(|(entity, _)| *entity)
    }

    /// The key name the targeting key becomes, if it is used.
    pub fn key_name(&self) -> Option<&str> {
        self.target.as_ref().map(|(_, name)| name.as_str())
    }
}

/// The user key `id`, as the official C# provider maps it.
impl Default for TargetingKey {
    fn default() -> Self {
        TargetingKey::user("id")
    }
}

/// Why a context could not be mapped to Schematic keys. Reported to
/// OpenFeature as `INVALID_CONTEXT` (or `TARGETING_KEY_MISSING`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextError {
    /// `company` or `user` is neither a supported struct nor absent.
    NotAStruct {
        /// The attribute (`company` or `user`).
        attribute: String,
    },
    /// A key's value is not a string.
    NotAString {
        /// The attribute holding it.
        attribute: String,
    },
    /// An empty key name or key value.
    Empty {
        /// The attribute holding it.
        attribute: String,
    },
    /// The targeting key is the empty string.
    EmptyTargetingKey,
    /// No targeting key, and the provider requires one.
    MissingTargetingKey,
    /// One key name given two different values.
    Conflict {
        /// The entity.
        entity: Entity,
        /// The key name.
        key: String,
    },
}

impl ContextError {
    /// The context attribute at fault, if one is.
    pub fn attribute(&self) -> Option<&str> {
        match self {
            ContextError::NotAStruct { attribute }
            | ContextError::NotAString { attribute }
            | ContextError::Empty { attribute } => Some(attribute),
            ContextError::Conflict { key, .. } => Some(key),
            ContextError::EmptyTargetingKey | ContextError::MissingTargetingKey => None,
        }
    }

    /// Whether this is OpenFeature's `TARGETING_KEY_MISSING` rather than
    /// `INVALID_CONTEXT`.
    pub fn is_missing_targeting_key(&self) -> bool {
        matches!(self, ContextError::MissingTargetingKey)
    }
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContextError::NotAStruct { attribute } => write!(
                f,
                "context attribute `{attribute}` must be a struct of string key pairs"
            ),
            ContextError::NotAString { attribute } => {
                write!(
                    f,
                    "context attribute `{attribute}`: key values must be strings"
                )
            }
            ContextError::Empty { attribute } => write!(
                f,
                "context attribute `{attribute}`: key names and values must not be empty"
            ),
            ContextError::EmptyTargetingKey => f.write_str("the targeting key is empty"),
            ContextError::MissingTargetingKey => f.write_str("the context has no targeting key"),
            ContextError::Conflict { entity, key } => {
                let entity = match entity {
                    Entity::Company => "company",
                    Entity::User => "user",
                };
                write!(f, "the {entity} key `{key}` is given two different values")
            }
        }
    }
}

impl std::error::Error for ContextError {}

/// A small set of borrowed key pairs, unique by name: inline up to
/// [`INLINE_PAIRS`], then on the heap.
#[derive(Clone)]
pub(crate) struct Pairs<'a> {
    inline: [(&'a str, &'a str); INLINE_PAIRS],
    len: usize,
    spill: Vec<(&'a str, &'a str)>,
}

impl<'a> Pairs<'a> {
    pub(crate) const fn new() -> Self {
        Pairs {
            inline: [("", ""); INLINE_PAIRS],
            len: 0,
            spill: Vec::new(),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.inline[..self.len]
            .iter()
            .chain(self.spill.iter())
            .copied()
    }

    pub(crate) fn len(&self) -> usize {
        self.len + self.spill.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Adds a pair; the same pair again is a no-op, another value for the
    /// name is `Err(())`.
    fn insert(&mut self, name: &'a str, value: &'a str) -> Result<(), ()> {
        match self.get(name) {
            Some(existing) if existing == value => Ok(()),
            Some(_) => Err(()),
            None => {
                if self.len < INLINE_PAIRS {
                    self.inline[self.len] = (name, value);
                    self.len += 1;
                } else {
                    self.spill.push((name, value));
                }
                Ok(())
            }
        }
    }
}

impl KeyPairs for Pairs<'_> {
    fn pair_count(&self) -> usize {
        self.len()
    }

    fn try_for_each_pair(&self, f: &mut dyn FnMut(&str, &str) -> bool) -> bool {
        self.iter().all(|(k, v)| f(k, v))
    }
}

impl fmt::Debug for Pairs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The company and user keys of one context.
#[derive(Debug, Clone)]
pub(crate) struct Mapped<'a> {
    pub(crate) company: Pairs<'a>,
    pub(crate) user: Pairs<'a>,
}

impl<'a> Mapped<'a> {
    /// The Schematic check context borrowing these keys.
    pub(crate) fn as_context(&self) -> flagwire::Context<'_> {
        flagwire::Context::company(&self.company).with_user(&self.user)
    }

    fn entity(&mut self, entity: Entity) -> &mut Pairs<'a> {
        match entity {
            Entity::Company => &mut self.company,
            Entity::User => &mut self.user,
        }
    }

    fn insert(
        &mut self,
        entity: Entity,
        attribute: &str,
        name: &'a str,
        value: &'a str,
    ) -> Result<(), ContextError> {
        if name.is_empty() || value.is_empty() {
            return Err(ContextError::Empty {
                attribute: attribute.to_owned(),
            });
        }
        self.entity(entity)
            .insert(name, value)
            .map_err(|()| ContextError::Conflict {
                entity,
                key: name.to_owned(),
            })
    }
}

/// Whether a context attribute is one the mapping reads (and so not a
/// trait).
pub(crate) fn is_key_attribute(name: &str) -> bool {
    name == COMPANY
        || name == USER
        || name.starts_with(COMPANY_PREFIX)
        || name.starts_with(USER_PREFIX)
}

/// Maps `context` to Schematic keys; see the [module docs](self).
pub(crate) fn map<'a>(
    context: &'a EvaluationContext,
    targeting: &'a TargetingKey,
    require_targeting_key: bool,
) -> Result<Mapped<'a>, ContextError> {
    let mut mapped = Mapped {
        company: Pairs::new(),
        user: Pairs::new(),
    };
    for (attribute, value) in &context.custom_fields {
        let attribute = attribute.as_str();
        if attribute == COMPANY {
            add_struct(&mut mapped, Entity::Company, attribute, value)?;
        } else if attribute == USER {
            add_struct(&mut mapped, Entity::User, attribute, value)?;
        } else if let Some(name) = attribute.strip_prefix(COMPANY_PREFIX) {
            add_string(&mut mapped, Entity::Company, attribute, name, value)?;
        } else if let Some(name) = attribute.strip_prefix(USER_PREFIX) {
            add_string(&mut mapped, Entity::User, attribute, name, value)?;
        }
    }
    match context.targeting_key.as_deref() {
        Some("") => return Err(ContextError::EmptyTargetingKey),
        Some(key) => {
            if let Some((entity, name)) = &targeting.target {
                let pairs = mapped.entity(*entity);
                if pairs.get(name).is_none() {
                    mapped.insert(*entity, "targeting key", name, key)?;
                }
            }
        }
        None if require_targeting_key => return Err(ContextError::MissingTargetingKey),
        None => {}
    }
    Ok(mapped)
}

fn add_string<'a>(
    mapped: &mut Mapped<'a>,
    entity: Entity,
    attribute: &str,
    name: &'a str,
    value: &'a EvaluationContextFieldValue,
) -> Result<(), ContextError> {
    match value {
        EvaluationContextFieldValue::String(value) => mapped.insert(entity, attribute, name, value),
        _ => Err(ContextError::NotAString {
            attribute: attribute.to_owned(),
        }),
    }
}

fn add_struct<'a>(
    mapped: &mut Mapped<'a>,
    entity: Entity,
    attribute: &str,
    value: &'a EvaluationContextFieldValue,
) -> Result<(), ContextError> {
    let EvaluationContextFieldValue::Struct(inner) = value else {
        return Err(ContextError::NotAStruct {
            attribute: attribute.to_owned(),
        });
    };
    let inner: &'a (dyn Any + Send + Sync) = &**inner;
    if let Some(map) = inner.downcast_ref::<BTreeMap<String, String>>() {
        for (k, v) in map {
            mapped.insert(entity, attribute, k, v)?;
        }
    } else if let Some(map) = inner.downcast_ref::<HashMap<String, String>>() {
        for (k, v) in map {
            mapped.insert(entity, attribute, k, v)?;
        }
    } else if let Some(pairs) = inner.downcast_ref::<Vec<(String, String)>>() {
        for (k, v) in pairs {
            mapped.insert(entity, attribute, k, v)?;
        }
    } else if let Some(value) = inner.downcast_ref::<StructValue>() {
        for (k, v) in &value.fields {
            match v {
                Value::String(v) => mapped.insert(entity, attribute, k, v)?,
                _ => {
                    return Err(ContextError::NotAString {
                        attribute: attribute.to_owned(),
                    });
                }
            }
        }
    } else {
        return Err(ContextError::NotAStruct {
            attribute: attribute.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &Pairs<'_>) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn map_default(context: &EvaluationContext) -> Result<Mapped<'_>, ContextError> {
        static TARGETING: std::sync::OnceLock<TargetingKey> = std::sync::OnceLock::new();
        map(context, TARGETING.get_or_init(TargetingKey::default), false)
    }

    fn btree(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn targeting_key_becomes_the_user_id() {
        let context = EvaluationContext::default().with_targeting_key("u-1");
        let mapped = map_default(&context).unwrap();
        assert!(mapped.company.is_empty());
        assert_eq!(keys(&mapped.user), btree(&[("id", "u-1")]));
    }

    #[test]
    fn targeting_key_can_name_a_company_key_or_be_ignored() {
        let context = EvaluationContext::default().with_targeting_key("acme");
        let company = TargetingKey::company("slug");
        let mapped = map(&context, &company, false).unwrap();
        assert_eq!(keys(&mapped.company), btree(&[("slug", "acme")]));
        assert!(mapped.user.is_empty());
        let ignored = TargetingKey::ignored();
        let mapped = map(&context, &ignored, false).unwrap();
        assert!(mapped.company.is_empty() && mapped.user.is_empty());
    }

    #[test]
    fn dotted_attributes_and_structs_combine() {
        let context = EvaluationContext::default()
            .with_targeting_key("u-1")
            .with_custom_field("company.id", "acme")
            .with_custom_field(
                "user",
                EvaluationContextFieldValue::new_struct(btree(&[("email", "ann@acme.test")])),
            )
            .with_custom_field("plan", "pro")
            .with_custom_field("seats", 12);
        let mapped = map_default(&context).unwrap();
        assert_eq!(keys(&mapped.company), btree(&[("id", "acme")]));
        assert_eq!(
            keys(&mapped.user),
            btree(&[("email", "ann@acme.test"), ("id", "u-1")])
        );
    }

    #[test]
    fn every_supported_struct_type_is_read() {
        let hash: HashMap<String, String> = [("id".to_owned(), "acme".to_owned())].into();
        let vec = vec![("id".to_owned(), "acme".to_owned())];
        let mut sv = StructValue::default();
        sv.add_field("id", "acme");
        for value in [
            EvaluationContextFieldValue::new_struct(btree(&[("id", "acme")])),
            EvaluationContextFieldValue::new_struct(hash),
            EvaluationContextFieldValue::new_struct(vec),
            EvaluationContextFieldValue::new_struct(sv),
        ] {
            let context = EvaluationContext::default().with_custom_field("company", value);
            let mapped = map_default(&context).unwrap();
            assert_eq!(keys(&mapped.company), btree(&[("id", "acme")]));
        }
    }

    #[test]
    fn explicit_user_id_wins_over_the_targeting_key() {
        let context = EvaluationContext::default()
            .with_targeting_key("from-targeting")
            .with_custom_field("user.id", "explicit");
        let mapped = map_default(&context).unwrap();
        assert_eq!(keys(&mapped.user), btree(&[("id", "explicit")]));
    }

    #[test]
    fn same_key_twice_with_the_same_value_is_fine_another_value_conflicts() {
        let same = EvaluationContext::default()
            .with_custom_field("company.id", "acme")
            .with_custom_field(
                "company",
                EvaluationContextFieldValue::new_struct(btree(&[("id", "acme")])),
            );
        assert_eq!(map_default(&same).unwrap().company.len(), 1);
        let other = EvaluationContext::default()
            .with_custom_field("company.id", "acme")
            .with_custom_field(
                "company",
                EvaluationContextFieldValue::new_struct(btree(&[("id", "globex")])),
            );
        assert_eq!(
            map_default(&other).unwrap_err(),
            ContextError::Conflict {
                entity: Entity::Company,
                key: "id".into()
            }
        );
    }

    #[test]
    fn malformed_contexts_are_refused() {
        let cases = [
            EvaluationContext::default().with_custom_field("company.id", 42),
            EvaluationContext::default().with_custom_field("company.id", ""),
            EvaluationContext::default().with_custom_field("company.", "acme"),
            EvaluationContext::default().with_custom_field("company", "acme"),
            EvaluationContext::default().with_custom_field(
                "user",
                EvaluationContextFieldValue::new_struct(vec![1u8, 2, 3]),
            ),
            EvaluationContext::default().with_custom_field(
                "user",
                EvaluationContextFieldValue::new_struct(btree(&[("", "x")])),
            ),
            EvaluationContext::default().with_targeting_key(""),
        ];
        for context in &cases {
            let error = map_default(context).unwrap_err();
            assert!(!error.is_missing_targeting_key(), "{error}");
            assert!(!error.to_string().is_empty());
        }
        let mut sv = StructValue::default();
        sv.add_field("id", 7);
        let context = EvaluationContext::default()
            .with_custom_field("user", EvaluationContextFieldValue::new_struct(sv));
        assert_eq!(
            map_default(&context).unwrap_err(),
            ContextError::NotAString {
                attribute: "user".into()
            }
        );
    }

    #[test]
    fn a_required_targeting_key_must_be_there() {
        let context = EvaluationContext::default().with_custom_field("company.id", "acme");
        let targeting = TargetingKey::default();
        assert!(
            map(&context, &targeting, true)
                .unwrap_err()
                .is_missing_targeting_key()
        );
        assert!(map(&context, &targeting, false).is_ok());
    }

    #[test]
    fn many_keys_spill_to_the_heap_and_stay_unique() {
        let mut context = EvaluationContext::default();
        let names: Vec<String> = (0..INLINE_PAIRS + 3).map(|i| format!("k{i}")).collect();
        for name in &names {
            context.add_custom_field(format!("company.{name}"), name.clone());
        }
        let mapped = map_default(&context).unwrap();
        assert_eq!(mapped.company.len(), names.len());
        assert_eq!(mapped.company.pair_count(), names.len());
        let mut seen = 0;
        assert!(mapped.company.try_for_each_pair(&mut |k, v| {
            assert_eq!(k, v);
            seen += 1;
            true
        }));
        assert_eq!(seen, names.len());
    }

    #[test]
    fn other_attributes_are_not_key_attributes() {
        assert!(is_key_attribute("company"));
        assert!(is_key_attribute("user.email"));
        assert!(!is_key_attribute("plan"));
        assert!(!is_key_attribute("companyName"));
    }
}
