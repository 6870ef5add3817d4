//! From a store change to the messages DataStream clients get.
//!
//! Every mutation of the emulator's state re-prepares the companies, users
//! and flags it touched for the rules engine (`Store::refresh`), and hands
//! back the models it replaced. Those previous models are exactly what
//! subscribed clients were last told, so comparing them with the new ones
//! gives the pushes: a new entity is sent `full`, a changed one `partial`
//! with only the top-level fields that differ, a removed one `delete`; a
//! new or changed flag is sent `full`, a removed one `delete`. Because the
//! models are the ones the REST flag checks evaluate, a client evaluating
//! locally reaches the REST verdict.

use std::collections::{BTreeMap, HashMap, HashSet};

use flagwire_core::rules::{Company, Flag, User};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::subscriptions::Topic;
use super::wire::{COMPANY, FLAG, USER};
use crate::store::{Refreshed, Store};

/// `message_type` of a pushed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeType {
    Full,
    Partial,
    Delete,
}

impl ChangeType {
    pub(crate) fn wire(self) -> &'static str {
        match self {
            ChangeType::Full => "full",
            ChangeType::Partial => "partial",
            ChangeType::Delete => "delete",
        }
    }
}

/// One change to push, before it gets its stream id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub(crate) topic: Topic,
    pub(crate) change_type: ChangeType,
    pub(crate) data: Value,
}

impl Change {
    /// The message's `entity_type`.
    pub(crate) fn entity_type(&self) -> &'static str {
        match self.topic {
            Topic::Flag => FLAG,
            Topic::Company(_) => COMPANY,
            Topic::User(_) => USER,
        }
    }

    /// The message's `entity_id` (companies and users only).
    pub(crate) fn entity_id(&self) -> Option<&str> {
        match &self.topic {
            Topic::Flag => None,
            Topic::Company(id) | Topic::User(id) => Some(id),
        }
    }
}

/// The changes a refresh made, in a stable order: flags (in creation
/// order, removals last), then companies, then users (each by id).
pub(crate) fn compute(store: &Store, replaced: &Refreshed) -> Vec<Change> {
    let mut out = Vec::new();
    if let Some(old_engine) = &replaced.flags {
        let old: HashMap<&str, &Flag> = old_engine
            .flags()
            .map(|c| (c.flag().id.as_str(), c.flag()))
            .collect();
        flag_changes(store, &old, &mut out);
    }
    let mut companies: Vec<_> = replaced.companies.iter().collect();
    companies.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, old) in companies {
        let new = store.prepared_companies.get(id).map(|p| p.to_company());
        let old = old.as_ref().map(|p| p.to_company());
        if let Some(change) = entity_change(
            Topic::Company(id.clone()),
            old.as_ref(),
            new.as_ref(),
            company_keys,
        ) {
            out.push(change);
        }
    }
    let mut users: Vec<_> = replaced.users.iter().collect();
    users.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, old) in users {
        let new = store.prepared_users.get(id).map(|p| p.user());
        let old = old.as_ref().map(|p| p.user());
        if let Some(change) = entity_change(Topic::User(id.clone()), old, new, user_keys) {
            out.push(change);
        }
    }
    out
}

fn company_keys(c: &Company) -> &BTreeMap<String, String> {
    &c.keys
}

fn user_keys(u: &User) -> &BTreeMap<String, String> {
    &u.keys
}

fn to_value(model: &impl Serialize) -> Value {
    // The rules models serialize infallibly (string map keys, no custom
    // serializers that can fail).
    serde_json::to_value(model).unwrap_or(Value::Null)
}

/// New and changed flags `full`, removed ones `delete` (with the whole
/// flag, as the SDKs validate it). A flag whose key changed is deleted
/// under its old key before being sent under the new one, since clients
/// cache flags by key.
fn flag_changes(store: &Store, old: &HashMap<&str, &Flag>, out: &mut Vec<Change>) {
    let mut current = HashSet::with_capacity(store.flags.len());
    for stored in store.flags.values() {
        let Some(new) = store.engine.flag(&stored.key).map(|c| c.flag()) else {
            continue;
        };
        current.insert(new.id.as_str());
        match old.get(new.id.as_str()) {
            Some(prev) if *prev == new => {}
            Some(prev) => {
                if prev.key != new.key {
                    out.push(flag_change(ChangeType::Delete, prev));
                }
                out.push(flag_change(ChangeType::Full, new));
            }
            None => out.push(flag_change(ChangeType::Full, new)),
        }
    }
    let mut removed: Vec<&&Flag> = old
        .iter()
        .filter(|(id, _)| !current.contains(*id))
        .map(|(_, f)| f)
        .collect();
    removed.sort_by(|a, b| a.id.cmp(&b.id));
    out.extend(
        removed
            .into_iter()
            .map(|f| flag_change(ChangeType::Delete, f)),
    );
}

fn flag_change(change_type: ChangeType, flag: &Flag) -> Change {
    Change {
        topic: Topic::Flag,
        change_type,
        data: to_value(flag),
    }
}

/// The change from `old` to `new` of one company or user, if any.
///
/// A `partial` carries exactly the top-level fields that differ (a field
/// that disappeared is sent as `null`). When a key was removed the change
/// is sent `full` instead: clients merge a partial's `keys` into the keys
/// they hold, so a partial cannot take a key away.
fn entity_change<T: Serialize + PartialEq>(
    topic: Topic,
    old: Option<&T>,
    new: Option<&T>,
    keys: fn(&T) -> &BTreeMap<String, String>,
) -> Option<Change> {
    let (change_type, data) = match (old, new) {
        (None, None) => return None,
        (None, Some(new)) => (ChangeType::Full, to_value(new)),
        (Some(old), None) => {
            let id = match &topic {
                Topic::Company(id) | Topic::User(id) => id.clone(),
                Topic::Flag => String::new(),
            };
            (ChangeType::Delete, json!({"id": id, "keys": keys(old)}))
        }
        (Some(old), Some(new)) if old == new => return None,
        (Some(old), Some(new)) => {
            let key_removed = keys(old).keys().any(|k| !keys(new).contains_key(k));
            if key_removed {
                (ChangeType::Full, to_value(new))
            } else {
                let fields = changed_fields(to_value(old), to_value(new));
                if fields.is_empty() {
                    return None;
                }
                (ChangeType::Partial, Value::Object(fields))
            }
        }
    };
    Some(Change {
        topic,
        change_type,
        data,
    })
}

/// The top-level fields of `new` that differ from `old`, plus `null` for
/// each field `old` had and `new` lacks.
fn changed_fields(old: Value, new: Value) -> Map<String, Value> {
    let (Value::Object(mut old), Value::Object(new)) = (old, new) else {
        return Map::new();
    };
    let mut out = Map::new();
    for (field, value) in new {
        match old.remove(&field) {
            Some(prev) if prev == value => {}
            _ => {
                out.insert(field, value);
            }
        }
    }
    for (field, _) in old {
        out.insert(field, Value::Null);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company(id: &str, keys: &[(&str, &str)]) -> Company {
        let mut c = Company::new(id);
        c.keys = keys
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        c
    }

    fn topic() -> Topic {
        Topic::Company("comp_1".into())
    }

    #[test]
    fn partials_carry_only_the_changed_fields() {
        let old = company("comp_1", &[("id", "acme")]);
        let mut new = old.clone();
        new.plan_ids = vec!["plan_pro".into()];
        new.keys.insert("slug".into(), "acme-inc".into());
        let change = entity_change(topic(), Some(&old), Some(&new), company_keys).unwrap();
        assert_eq!(change.change_type, ChangeType::Partial);
        assert_eq!(
            change.data,
            json!({"plan_ids": ["plan_pro"], "keys": {"id": "acme", "slug": "acme-inc"}})
        );
    }

    #[test]
    fn vanished_fields_are_sent_as_null() {
        let mut old = company("comp_1", &[("id", "acme")]);
        old.base_plan_id = Some("plan_1".into());
        let new = company("comp_1", &[("id", "acme")]);
        let change = entity_change(topic(), Some(&old), Some(&new), company_keys).unwrap();
        assert_eq!(change.data, json!({"base_plan_id": null}));
    }

    #[test]
    fn removing_a_key_sends_the_whole_entity() {
        let old = company("comp_1", &[("id", "acme"), ("slug", "a")]);
        let new = company("comp_1", &[("id", "acme")]);
        let change = entity_change(topic(), Some(&old), Some(&new), company_keys).unwrap();
        assert_eq!(change.change_type, ChangeType::Full);
        assert_eq!(change.data, to_value(&new));
    }

    #[test]
    fn creation_deletion_and_no_change() {
        let c = company("comp_1", &[("id", "acme")]);
        let created = entity_change(topic(), None, Some(&c), company_keys).unwrap();
        assert_eq!(created.change_type, ChangeType::Full);
        assert_eq!(created.entity_id(), Some("comp_1"));
        assert_eq!(created.entity_type(), COMPANY);
        let deleted = entity_change(topic(), Some(&c), None, company_keys).unwrap();
        assert_eq!(deleted.change_type, ChangeType::Delete);
        assert_eq!(
            deleted.data,
            json!({"id": "comp_1", "keys": {"id": "acme"}})
        );
        assert_eq!(
            entity_change(topic(), Some(&c), Some(&c), company_keys),
            None
        );
        assert_eq!(
            entity_change::<Company>(topic(), None, None, company_keys),
            None
        );
    }
}
