//! The emulator's in-memory state and its operations. Everything here is
//! synchronous and runs under the server's state lock, which is never held
//! across an `.await`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use flagwire_core::rules::{PreparedCompany, PreparedUser, RulesEngine};

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::faults::Host;
use crate::schematic::requests::{
    ConditionBody, CreateFlag, CreateWebhook, FeatureBody, Keys, RuleBody, UpdateWebhook,
};
use crate::util::{ApiFailure, make_id, now, ts, value_string};

/// Company or user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Company,
    User,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Company => "company",
            Kind::User => "user",
        }
    }
    fn idx(self) -> usize {
        match self {
            Kind::Company => 0,
            Kind::User => 1,
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            Kind::Company => "comp",
            Kind::User => "user",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Kind> {
        match s {
            "company" => Some(Kind::Company),
            "user" => Some(Kind::User),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    pub(crate) id: String,
    pub(crate) value: String,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct TraitEntry {
    pub(crate) id: String,
    pub(crate) definition_id: String,
    pub(crate) value: Value,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
}

/// A usage counter of one company for one event subtype and period.
#[derive(Debug, Clone)]
pub(crate) struct Metric {
    pub(crate) event_subtype: String,
    pub(crate) period: &'static str,
    pub(crate) month_reset: &'static str,
    pub(crate) value: i64,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) captured_at_min: OffsetDateTime,
    pub(crate) captured_at_max: OffsetDateTime,
    pub(crate) valid_until: Option<OffsetDateTime>,
}

impl Metric {
    /// The value, or 0 once the period has rolled over.
    pub(crate) fn current_value(&self) -> i64 {
        match self.valid_until {
            Some(until) if until <= now() => 0,
            _ => self.value,
        }
    }
}

/// A company or a user.
#[derive(Debug, Clone)]
pub(crate) struct Entity {
    pub(crate) kind: Kind,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) keys: BTreeMap<String, KeyEntry>,
    pub(crate) traits: BTreeMap<String, TraitEntry>,
    pub(crate) metrics: Vec<Metric>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
    pub(crate) last_seen_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub(crate) struct Membership {
    pub(crate) id: String,
    pub(crate) company_id: String,
    pub(crate) user_id: String,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct TraitDef {
    pub(crate) id: String,
    pub(crate) kind: Kind,
    pub(crate) name: String,
    pub(crate) display_name: String,
    pub(crate) trait_type: String,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct Feature {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) feature_type: String,
    pub(crate) event_subtype: Option<String>,
    pub(crate) icon: String,
    pub(crate) lifecycle_phase: Option<String>,
    pub(crate) maintainer_account_member_id: Option<String>,
    pub(crate) plural_name: Option<String>,
    pub(crate) singular_name: Option<String>,
    pub(crate) trait_id: Option<String>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) id: String,
    pub(crate) group_id: Option<String>,
    pub(crate) condition_type: String,
    pub(crate) operator: String,
    pub(crate) resource_ids: Vec<String>,
    pub(crate) trait_id: Option<String>,
    pub(crate) trait_value: String,
    pub(crate) comparison_trait_id: Option<String>,
    pub(crate) event_subtype: Option<String>,
    pub(crate) metric_value: Option<i64>,
    pub(crate) metric_period: Option<String>,
    pub(crate) metric_period_month_reset: Option<String>,
    pub(crate) credit_id: Option<String>,
    pub(crate) credit_cost: Option<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct ConditionGroup {
    pub(crate) id: String,
    pub(crate) conditions: Vec<Condition>,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) priority: i64,
    pub(crate) rule_type: String,
    pub(crate) value: bool,
    pub(crate) conditions: Vec<Condition>,
    pub(crate) condition_groups: Vec<ConditionGroup>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct Flag {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) default_value: bool,
    pub(crate) flag_type: String,
    pub(crate) feature_id: Option<String>,
    pub(crate) maintainer_account_member_id: Option<String>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) request_types: Vec<String>,
    pub(crate) secret: String,
    pub(crate) status: String,
    pub(crate) credit_trigger_configs: Option<Value>,
    pub(crate) entitlement_trigger_configs: Option<Value>,
    pub(crate) created_at: OffsetDateTime,
    pub(crate) updated_at: OffsetDateTime,
}

/// An event received through `/events`, `/event-batch` or the capture host.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub(crate) id: String,
    pub(crate) event_type: String,
    pub(crate) body: Value,
    pub(crate) source: Host,
    pub(crate) captured_at: OffsetDateTime,
    pub(crate) sent_at: Option<String>,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) company_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) quantity: i64,
    pub(crate) subtype: Option<String>,
}

/// A change that registered webhooks may need to hear about.
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    pub(crate) action: &'static str,
    pub(crate) object_type: &'static str,
    pub(crate) body: Value,
    pub(crate) company_id: Option<String>,
    pub(crate) feature_id: Option<String>,
}

/// Key name → key value → entity ID; lookups borrow, never allocate.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeyIndex {
    map: HashMap<String, HashMap<String, String>>,
}

impl KeyIndex {
    pub(crate) fn get(&self, key: &str, value: &str) -> Option<&str> {
        self.map.get(key)?.get(value).map(String::as_str)
    }
    fn insert(&mut self, key: &str, value: &str, id: &str) {
        self.map
            .entry(key.to_owned())
            .or_default()
            .insert(value.to_owned(), id.to_owned());
    }
    fn remove(&mut self, key: &str, value: &str) {
        if let Some(inner) = self.map.get_mut(key) {
            inner.remove(value);
            if inner.is_empty() {
                self.map.remove(key);
            }
        }
    }
}

/// Everything the emulator stores.
#[derive(Debug)]
pub(crate) struct Store {
    seq: u64,
    pub(crate) environment_id: String,
    pub(crate) account_id: String,
    pub(crate) webhook_secret: Option<String>,
    entities: [BTreeMap<String, Entity>; 2],
    key_index: [KeyIndex; 2],
    key_defs: [HashMap<String, String>; 2],
    pub(crate) memberships: BTreeMap<String, Membership>,
    /// (company ID, user ID) → membership ID.
    membership_index: HashMap<(String, String), String>,
    pub(crate) trait_defs: BTreeMap<String, TraitDef>,
    trait_index: [HashMap<String, String>; 2],
    pub(crate) features: BTreeMap<String, Feature>,
    pub(crate) flags: BTreeMap<String, Flag>,
    flag_keys: HashMap<String, String>,
    pub(crate) webhooks: BTreeMap<String, Webhook>,
    /// Received events, oldest first, at most `max_events`.
    pub(crate) events: std::collections::VecDeque<StoredEvent>,
    pub(crate) max_events: usize,
    idempotency: HashSet<String>,
    notices: Vec<Notice>,
    /// The rules engine over all flags, rebuilt after flag changes.
    pub(crate) engine: RulesEngine,
    /// Evaluation-ready companies and users, rebuilt after each change.
    pub(crate) prepared_companies: HashMap<String, PreparedCompany>,
    pub(crate) prepared_users: HashMap<String, PreparedUser>,
    dirty: HashSet<(Kind, String)>,
    flags_dirty: bool,
}

/// The models a [`Store::refresh`] replaced: for each company and user it
/// re-prepared, the previous version (`None` if it did not exist), and the
/// previous rules engine if the flags were recompiled.
#[derive(Default)]
pub(crate) struct Refreshed {
    pub(crate) companies: Vec<(String, Option<PreparedCompany>)>,
    pub(crate) users: Vec<(String, Option<PreparedUser>)>,
    pub(crate) flags: Option<RulesEngine>,
}

/// Fields shared by company and user upserts.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Upsert<'a> {
    pub(crate) id: Option<&'a str>,
    pub(crate) keys: Option<&'a Keys>,
    pub(crate) name: Option<&'a str>,
    pub(crate) traits: Option<&'a Map<String, Value>>,
    pub(crate) last_seen_at: Option<OffsetDateTime>,
    pub(crate) update_only: bool,
    pub(crate) create_only: bool,
    pub(crate) prevent_key_remap: bool,
    pub(crate) remove_keys: &'a [String],
}

impl Store {
    pub(crate) fn new(webhook_secret: Option<String>) -> Store {
        Store {
            seq: 0,
            environment_id: String::from("env_mock"),
            account_id: String::from("acct_mock"),
            webhook_secret,
            entities: [BTreeMap::new(), BTreeMap::new()],
            key_index: [KeyIndex::default(), KeyIndex::default()],
            key_defs: [HashMap::new(), HashMap::new()],
            memberships: BTreeMap::new(),
            membership_index: HashMap::new(),
            trait_defs: BTreeMap::new(),
            trait_index: [HashMap::new(), HashMap::new()],
            features: BTreeMap::new(),
            flags: BTreeMap::new(),
            flag_keys: HashMap::new(),
            webhooks: BTreeMap::new(),
            events: std::collections::VecDeque::new(),
            max_events: usize::MAX,
            idempotency: HashSet::new(),
            notices: Vec::new(),
            engine: RulesEngine::default(),
            prepared_companies: HashMap::new(),
            prepared_users: HashMap::new(),
            dirty: HashSet::new(),
            flags_dirty: false,
        }
    }

    fn touch(&mut self, kind: Kind, id: &str) {
        self.dirty.insert((kind, id.to_owned()));
    }

    /// Brings the rules engine and the prepared companies and users up to
    /// date with the changes made since the last call, and returns the
    /// models they replaced (what DataStream clients were last told).
    pub(crate) fn refresh(&mut self) -> Refreshed {
        let mut replaced = Refreshed::default();
        for (kind, id) in std::mem::take(&mut self.dirty) {
            match (kind, self.entities[kind.idx()].get(&id)) {
                (Kind::Company, Some(e)) => {
                    let prepared = PreparedCompany::new(crate::eval::company_model(self, e));
                    let old = self.prepared_companies.insert(id.clone(), prepared);
                    replaced.companies.push((id, old));
                }
                (Kind::User, Some(e)) => {
                    let prepared = PreparedUser::new(crate::eval::user_model(self, e));
                    let old = self.prepared_users.insert(id.clone(), prepared);
                    replaced.users.push((id, old));
                }
                (Kind::Company, None) => {
                    let old = self.prepared_companies.remove(&id);
                    replaced.companies.push((id, old));
                }
                (Kind::User, None) => {
                    let old = self.prepared_users.remove(&id);
                    replaced.users.push((id, old));
                }
            }
        }
        if std::mem::take(&mut self.flags_dirty) {
            let flags: Vec<_> = self
                .flags
                .values()
                .map(|f| crate::eval::flag_model(self, f))
                .collect();
            replaced.flags = Some(std::mem::replace(&mut self.engine, RulesEngine::new(flags)));
        }
        replaced
    }

    /// Everything this store has prepared, as if replaced by an empty store
    /// (used when the state is reset).
    pub(crate) fn into_replaced(self) -> Refreshed {
        Refreshed {
            companies: self
                .prepared_companies
                .into_iter()
                .map(|(id, p)| (id, Some(p)))
                .collect(),
            users: self
                .prepared_users
                .into_iter()
                .map(|(id, p)| (id, Some(p)))
                .collect(),
            flags: Some(self.engine),
        }
    }

    pub(crate) fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        make_id(prefix, self.seq)
    }

    // ----- entities -------------------------------------------------------

    pub(crate) fn entities(&self, kind: Kind) -> &BTreeMap<String, Entity> {
        &self.entities[kind.idx()]
    }

    pub(crate) fn entity(&self, kind: Kind, id: &str) -> Option<&Entity> {
        self.entities[kind.idx()].get(id)
    }

    /// Resolves keys to one entity: the oldest entity owning any of them.
    pub(crate) fn find_by_keys(&self, kind: Kind, keys: &Keys) -> Option<&str> {
        let index = &self.key_index[kind.idx()];
        keys.iter().filter_map(|(k, v)| index.get(k, v)).min()
    }

    /// Resolves keys given as borrowed pairs (no allocation).
    pub(crate) fn find_by_key_pairs<'a>(
        &self,
        kind: Kind,
        mut pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Option<&str> {
        let index = &self.key_index[kind.idx()];
        let mut best: Option<&str> = None;
        for (k, v) in &mut pairs {
            if let Some(id) = index.get(k, v) {
                best = Some(match best {
                    Some(b) if b <= id => b,
                    _ => id,
                });
            }
        }
        best
    }

    fn key_def_id(&mut self, kind: Kind, key: &str) -> String {
        if let Some(id) = self.key_defs[kind.idx()].get(key) {
            return id.clone();
        }
        let id = self.next_id("ekd");
        self.key_defs[kind.idx()].insert(key.to_owned(), id.clone());
        id
    }

    pub(crate) fn key_definition(&self, kind: Kind, key: &str) -> Option<&str> {
        self.key_defs[kind.idx()].get(key).map(String::as_str)
    }

    /// Creates or updates a company or user; returns its ID and whether it
    /// was created.
    pub(crate) fn upsert_entity(
        &mut self,
        kind: Kind,
        req: Upsert<'_>,
    ) -> Result<(String, bool), ApiFailure> {
        let what = kind.as_str();
        let empty = Keys::new();
        let keys = req.keys.unwrap_or(&empty);
        let target: Option<String> = match req.id {
            Some(id) => {
                if !self.entities[kind.idx()].contains_key(id) {
                    return Err(ApiFailure::not_found(what));
                }
                Some(id.to_owned())
            }
            None => self.find_by_keys(kind, keys).map(str::to_owned),
        };
        if target.is_some() && req.create_only {
            return Err(ApiFailure::conflict(format!(
                "a {what} with these keys already exists"
            )));
        }
        if target.is_none() && req.update_only {
            return Err(ApiFailure::not_found(what));
        }
        // Validate the final key set and remaps before changing anything.
        let mut final_keys: BTreeSet<&str> = target
            .as_deref()
            .and_then(|id| self.entities[kind.idx()].get(id))
            .map(|e| e.keys.keys().map(String::as_str).collect())
            .unwrap_or_default();
        final_keys.extend(keys.keys().map(String::as_str));
        for k in req.remove_keys {
            final_keys.remove(k.as_str());
        }
        if final_keys.is_empty() {
            return Err(ApiFailure::bad_request(format!(
                "a {what} must keep at least one key"
            )));
        }
        for (k, v) in keys {
            if let Some(owner) = self.key_index[kind.idx()].get(k, v)
                && Some(owner) != target.as_deref()
                && req.prevent_key_remap
            {
                return Err(ApiFailure::conflict(format!(
                    "key {k} is already assigned to another {what}"
                )));
            }
        }

        let t = now();
        let (id, created) = match target {
            Some(id) => (id, false),
            None => {
                let id = self.next_id(kind.prefix());
                let entity = Entity {
                    kind,
                    id: id.clone(),
                    name: String::new(),
                    keys: BTreeMap::new(),
                    traits: BTreeMap::new(),
                    metrics: Vec::new(),
                    created_at: t,
                    updated_at: t,
                    last_seen_at: None,
                };
                self.entities[kind.idx()].insert(id.clone(), entity);
                (id, true)
            }
        };

        for (k, v) in keys {
            self.assign_key(kind, &id, k, v, t);
        }
        for k in req.remove_keys {
            self.remove_key(kind, &id, k);
        }
        if let Some(traits) = req.traits {
            for (name, value) in traits {
                self.set_trait(kind, &id, name, value.clone(), t);
            }
        }
        if let Some(e) = self.entities[kind.idx()].get_mut(&id) {
            if let Some(name) = req.name {
                e.name = name.to_owned();
            }
            if let Some(seen) = req.last_seen_at {
                e.last_seen_at = Some(seen);
            }
            e.updated_at = t;
        }
        self.touch(kind, &id);
        let action = match (kind, created) {
            (Kind::Company, true) => "company.created",
            (Kind::Company, false) => "company.updated",
            (Kind::User, true) => "user.created",
            (Kind::User, false) => "user.updated",
        };
        self.notify_entity(kind, &id, action);
        Ok((id, created))
    }

    fn assign_key(&mut self, kind: Kind, id: &str, key: &str, value: &str, t: OffsetDateTime) {
        let k = kind.idx();
        // Move the key away from another owner.
        if let Some(owner) = self.key_index[k].get(key, value).map(str::to_owned) {
            if owner == id {
                return;
            }
            if let Some(other) = self.entities[k].get_mut(&owner) {
                other.keys.remove(key);
                other.updated_at = t;
            }
            self.touch(kind, &owner);
            self.key_index[k].remove(key, value);
        }
        // Replace an older value of the same key name on this entity.
        let old = self.entities[k]
            .get(id)
            .and_then(|e| e.keys.get(key))
            .map(|e| e.value.clone());
        if let Some(old) = old {
            self.key_index[k].remove(key, &old);
        }
        let entry_id = self.next_id("ek");
        self.key_def_id(kind, key);
        if let Some(e) = self.entities[k].get_mut(id) {
            let created_at = e.keys.get(key).map_or(t, |x| x.created_at);
            e.keys.insert(
                key.to_owned(),
                KeyEntry {
                    id: entry_id,
                    value: value.to_owned(),
                    created_at,
                    updated_at: t,
                },
            );
        }
        self.key_index[k].insert(key, value, id);
    }

    fn remove_key(&mut self, kind: Kind, id: &str, key: &str) {
        let k = kind.idx();
        let removed = self.entities[k]
            .get_mut(id)
            .and_then(|e| e.keys.remove(key));
        if let Some(entry) = removed {
            self.key_index[k].remove(key, &entry.value);
        }
    }

    /// Finds or creates the definition of a trait, inferring its type from
    /// the first value seen.
    pub(crate) fn trait_definition(&mut self, kind: Kind, name: &str, sample: &Value) -> String {
        if let Some(id) = self.trait_index[kind.idx()].get(name) {
            return id.clone();
        }
        let trait_type = match sample {
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            _ => "string",
        };
        self.create_trait_definition(kind, name, None, trait_type)
    }

    pub(crate) fn create_trait_definition(
        &mut self,
        kind: Kind,
        name: &str,
        display_name: Option<&str>,
        trait_type: &str,
    ) -> String {
        if let Some(id) = self.trait_index[kind.idx()].get(name) {
            return id.clone();
        }
        let id = self.next_id("etd");
        let t = now();
        self.trait_defs.insert(
            id.clone(),
            TraitDef {
                id: id.clone(),
                kind,
                name: name.to_owned(),
                display_name: display_name.unwrap_or(name).to_owned(),
                trait_type: trait_type.to_owned(),
                created_at: t,
                updated_at: t,
            },
        );
        self.trait_index[kind.idx()].insert(name.to_owned(), id.clone());
        // Trait conditions resolve their definitions when flags are compiled.
        self.flags_dirty = true;
        id
    }

    /// Sets (or, for `null`, removes) one trait.
    pub(crate) fn set_trait(
        &mut self,
        kind: Kind,
        id: &str,
        name: &str,
        value: Value,
        t: OffsetDateTime,
    ) {
        if value.is_null() {
            if let Some(e) = self.entities[kind.idx()].get_mut(id) {
                e.traits.remove(name);
            }
            self.touch(kind, id);
            return;
        }
        let def = self.trait_definition(kind, name, &value);
        let entry_id = self.next_id("et");
        if let Some(e) = self.entities[kind.idx()].get_mut(id) {
            let created_at = e.traits.get(name).map_or(t, |x| x.created_at);
            let entry_id = e.traits.get(name).map_or(entry_id, |x| x.id.clone());
            e.traits.insert(
                name.to_owned(),
                TraitEntry {
                    id: entry_id,
                    definition_id: def,
                    value,
                    created_at,
                    updated_at: t,
                },
            );
            e.updated_at = t;
        }
        self.touch(kind, id);
    }

    /// `set` or `incr` one trait of an existing entity.
    pub(crate) fn update_trait(
        &mut self,
        kind: Kind,
        id: &str,
        name: &str,
        set: Option<&str>,
        incr: Option<i64>,
    ) {
        let value = match (set, incr) {
            (Some(s), _) => Value::String(s.to_owned()),
            (None, Some(by)) => {
                let current = self.entities[kind.idx()]
                    .get(id)
                    .and_then(|e| e.traits.get(name))
                    .map(|t| match &t.value {
                        Value::Number(n) => n.as_i64().unwrap_or(0),
                        Value::String(s) => s.trim().parse::<i64>().unwrap_or(0),
                        _ => 0,
                    })
                    .unwrap_or(0);
                Value::from(current.saturating_add(by))
            }
            (None, None) => return,
        };
        self.set_trait(kind, id, name, value, now());
        let action = match kind {
            Kind::Company => "company.updated",
            Kind::User => "user.updated",
        };
        self.notify_entity(kind, id, action);
    }

    pub(crate) fn delete_entity(&mut self, kind: Kind, id: &str) -> Option<Entity> {
        let k = kind.idx();
        let body = self.entities[k]
            .get(id)
            .map(|e| crate::render::entity_summary(self, e));
        let entity = self.entities[k].remove(id)?;
        self.touch(kind, id);
        for (key, entry) in &entity.keys {
            self.key_index[k].remove(key, &entry.value);
        }
        self.retain_memberships(|m| match kind {
            Kind::Company => m.company_id != id,
            Kind::User => m.user_id != id,
        });
        let (action, company_id) = match kind {
            Kind::Company => ("company.deleted", Some(id.to_owned())),
            Kind::User => ("user.deleted", None),
        };
        if let Some(body) = body {
            self.notice(action, kind.as_str(), body, company_id, None);
        }
        Some(entity)
    }

    // ----- memberships ------------------------------------------------------

    /// Keeps the memberships for which `keep` is true.
    fn retain_memberships(&mut self, mut keep: impl FnMut(&Membership) -> bool) {
        let index = &mut self.membership_index;
        self.memberships.retain(|_, m| {
            let kept = keep(m);
            if !kept {
                index.remove(&(m.company_id.clone(), m.user_id.clone()));
            }
            kept
        });
    }

    /// Removes one membership; false if there is none with this ID.
    pub(crate) fn remove_membership(&mut self, id: &str) -> bool {
        match self.memberships.remove(id) {
            Some(m) => {
                self.membership_index.remove(&(m.company_id, m.user_id));
                true
            }
            None => false,
        }
    }

    pub(crate) fn ensure_membership(&mut self, company_id: &str, user_id: &str) -> String {
        let pair = (company_id.to_owned(), user_id.to_owned());
        if let Some(id) = self.membership_index.get(&pair) {
            return id.clone();
        }
        let id = self.next_id("cm");
        self.membership_index.insert(pair, id.clone());
        let t = now();
        self.memberships.insert(
            id.clone(),
            Membership {
                id: id.clone(),
                company_id: company_id.to_owned(),
                user_id: user_id.to_owned(),
                created_at: t,
                updated_at: t,
            },
        );
        id
    }

    /// Makes the user's memberships exactly `companies`.
    pub(crate) fn set_memberships(&mut self, user_id: &str, companies: &[String]) {
        self.retain_memberships(|m| m.user_id != user_id || companies.contains(&m.company_id));
        for c in companies {
            self.ensure_membership(c, user_id);
        }
    }

    pub(crate) fn user_count(&self, company_id: &str) -> i64 {
        self.memberships
            .values()
            .filter(|m| m.company_id == company_id)
            .count() as i64
    }

    // ----- metrics ----------------------------------------------------------

    /// Adds `quantity` of `subtype` to every period counter of a company.
    pub(crate) fn record_usage(&mut self, company_id: &str, subtype: &str, quantity: i64) {
        let t = now();
        self.touch(Kind::Company, company_id);
        let Some(e) = self.entities[Kind::Company.idx()].get_mut(company_id) else {
            return;
        };
        const PERIODS: [(&str, &str); 5] = [
            ("all_time", "first_of_month"),
            ("current_day", "first_of_month"),
            ("current_week", "first_of_month"),
            ("current_month", "first_of_month"),
            ("current_month", "billing_cycle"),
        ];
        for (period, month_reset) in PERIODS {
            let valid_until = crate::metrics::period_end(period, t);
            match e.metrics.iter_mut().find(|m| {
                m.event_subtype == subtype && m.period == period && m.month_reset == month_reset
            }) {
                Some(m) => {
                    if m.valid_until.is_some_and(|v| v <= t) {
                        m.value = 0;
                        m.captured_at_min = t;
                    }
                    m.value = m.value.saturating_add(quantity);
                    m.captured_at_max = t;
                    m.valid_until = valid_until;
                }
                None => e.metrics.push(Metric {
                    event_subtype: subtype.to_owned(),
                    period,
                    month_reset,
                    value: quantity,
                    created_at: t,
                    captured_at_min: t,
                    captured_at_max: t,
                    valid_until,
                }),
            }
        }
    }

    // ----- features and flags -----------------------------------------------

    pub(crate) fn flag_by_key(&self, key: &str) -> Option<&Flag> {
        self.flag_keys.get(key).and_then(|id| self.flags.get(id))
    }

    pub(crate) fn create_flag(&mut self, body: &CreateFlag) -> Result<String, ApiFailure> {
        if self.flag_keys.contains_key(&body.key) {
            return Err(ApiFailure::conflict(format!(
                "a flag with key {} already exists",
                body.key
            )));
        }
        if let Some(fid) = &body.feature_id
            && !self.features.contains_key(fid)
        {
            return Err(ApiFailure::not_found("feature"));
        }
        let id = self.next_id("flag");
        let t = now();
        let rules = match &body.rules {
            Some(rules) => self.build_rules(rules, &[], t),
            None => Vec::new(),
        };
        self.flags.insert(
            id.clone(),
            Flag {
                id: id.clone(),
                key: body.key.clone(),
                name: body.name.clone(),
                description: body.description.clone(),
                default_value: body.default_value,
                flag_type: body.flag_type.clone(),
                feature_id: body.feature_id.clone(),
                maintainer_account_member_id: body.maintainer_account_member_id.clone(),
                rules,
                created_at: t,
                updated_at: t,
            },
        );
        self.flag_keys.insert(body.key.clone(), id.clone());
        self.flags_dirty = true;
        self.notify_flag(&id, "flag.created");
        Ok(id)
    }

    pub(crate) fn update_flag(&mut self, id: &str, body: &CreateFlag) -> Result<(), ApiFailure> {
        let Some(flag) = self.flags.get(id) else {
            return Err(ApiFailure::not_found("flag"));
        };
        if flag.key != body.key && self.flag_keys.contains_key(&body.key) {
            return Err(ApiFailure::conflict(format!(
                "a flag with key {} already exists",
                body.key
            )));
        }
        if let Some(fid) = &body.feature_id
            && !self.features.contains_key(fid)
        {
            return Err(ApiFailure::not_found("feature"));
        }
        let t = now();
        let new_rules = body.rules.as_ref().map(|r| {
            let old = self
                .flags
                .get(id)
                .map(|f| f.rules.clone())
                .unwrap_or_default();
            self.build_rules(r, &old, t)
        });
        let Some(flag) = self.flags.get_mut(id) else {
            return Err(ApiFailure::not_found("flag"));
        };
        let old_key = std::mem::replace(&mut flag.key, body.key.clone());
        flag.name = body.name.clone();
        flag.description = body.description.clone();
        flag.default_value = body.default_value;
        flag.flag_type = body.flag_type.clone();
        flag.feature_id = body.feature_id.clone();
        flag.maintainer_account_member_id = body.maintainer_account_member_id.clone();
        if let Some(rules) = new_rules {
            flag.rules = rules;
        }
        flag.updated_at = t;
        self.flag_keys.remove(&old_key);
        self.flag_keys.insert(body.key.clone(), id.to_owned());
        self.flags_dirty = true;
        self.notify_flag(id, "flag.updated");
        Ok(())
    }

    pub(crate) fn delete_flag(&mut self, id: &str) -> bool {
        let body = self.flags.get(id).map(crate::render::flag_summary);
        let Some(flag) = self.flags.remove(id) else {
            return false;
        };
        self.flag_keys.remove(&flag.key);
        self.flags_dirty = true;
        if let Some(body) = body {
            self.notice("flag.deleted", "flag", body, None, flag.feature_id.clone());
        }
        true
    }

    pub(crate) fn set_flag_rules(
        &mut self,
        id: &str,
        rules: &[RuleBody],
    ) -> Result<(), ApiFailure> {
        let Some(flag) = self.flags.get(id) else {
            return Err(ApiFailure::not_found("flag"));
        };
        let old = flag.rules.clone();
        let t = now();
        let new_rules = self.build_rules(rules, &old, t);
        let removed: Vec<Rule> = old
            .into_iter()
            .filter(|r| !new_rules.iter().any(|n| n.id == r.id))
            .collect();
        if let Some(flag) = self.flags.get_mut(id) {
            flag.rules = new_rules;
            flag.updated_at = t;
        }
        self.flags_dirty = true;
        for r in removed {
            let body = crate::render::rule_json(self, &r, Some(id));
            self.notice("rule.deleted", "rule", body, None, None);
        }
        self.notify_flag(id, "flag_rules.updated");
        Ok(())
    }

    fn build_rules(&mut self, bodies: &[RuleBody], old: &[Rule], t: OffsetDateTime) -> Vec<Rule> {
        let mut rules: Vec<Rule> = bodies
            .iter()
            .map(|b| {
                let prev =
                    b.id.as_ref()
                        .and_then(|id| old.iter().find(|r| &r.id == id));
                let id = match &b.id {
                    Some(id) if !id.is_empty() => id.clone(),
                    _ => self.next_id("rule"),
                };
                let conditions = b
                    .conditions
                    .iter()
                    .map(|c| self.build_condition(c, None))
                    .collect();
                let condition_groups = b
                    .condition_groups
                    .iter()
                    .map(|g| {
                        let gid = match &g.id {
                            Some(id) if !id.is_empty() => id.clone(),
                            _ => self.next_id("rcg"),
                        };
                        ConditionGroup {
                            conditions: g
                                .conditions
                                .iter()
                                .map(|c| self.build_condition(c, Some(&gid)))
                                .collect(),
                            id: gid,
                        }
                    })
                    .collect();
                Rule {
                    id,
                    name: b.name.clone(),
                    priority: b.priority,
                    rule_type: b.rule_type.clone().unwrap_or_else(|| "standard".into()),
                    value: b.value,
                    conditions,
                    condition_groups,
                    created_at: prev.map_or(t, |p| p.created_at),
                    updated_at: t,
                }
            })
            .collect();
        rules.sort_by_key(|r| r.priority);
        rules
    }

    fn build_condition(&mut self, c: &ConditionBody, group: Option<&str>) -> Condition {
        let id = match &c.id {
            Some(id) if !id.is_empty() => id.clone(),
            _ => self.next_id("rc"),
        };
        Condition {
            id,
            group_id: group.map(str::to_owned),
            condition_type: c.condition_type.clone(),
            operator: c.operator.clone(),
            resource_ids: c.resource_ids.clone(),
            trait_id: c.trait_id.clone(),
            trait_value: c.trait_value.clone().unwrap_or_default(),
            comparison_trait_id: c.comparison_trait_id.clone(),
            event_subtype: c.event_subtype.clone(),
            metric_value: c.metric_value,
            metric_period: c.metric_period.clone(),
            metric_period_month_reset: c.metric_period_month_reset.clone(),
            credit_id: c.credit_id.clone(),
            credit_cost: c.credit_cost,
        }
    }

    pub(crate) fn create_feature(&mut self, body: &FeatureBody) -> Result<String, ApiFailure> {
        if let Some(flag) = &body.flag
            && self.flag_keys.contains_key(&flag.key)
        {
            return Err(ApiFailure::conflict(format!(
                "a flag with key {} already exists",
                flag.key
            )));
        }
        let id = self.next_id("feat");
        let t = now();
        self.features.insert(
            id.clone(),
            Feature {
                id: id.clone(),
                name: body.name.clone().unwrap_or_default(),
                description: body.description.clone().unwrap_or_default(),
                feature_type: body
                    .feature_type
                    .clone()
                    .unwrap_or_else(|| "boolean".into()),
                event_subtype: body.event_subtype.clone(),
                icon: body.icon.clone().unwrap_or_default(),
                lifecycle_phase: body.lifecycle_phase.clone(),
                maintainer_account_member_id: body.maintainer_account_member_id.clone(),
                plural_name: body.plural_name.clone(),
                singular_name: body.singular_name.clone(),
                trait_id: body.trait_id.clone(),
                created_at: t,
                updated_at: t,
            },
        );
        self.notify_feature(&id, "feature.created");
        if let Some(flag) = &body.flag {
            let mut flag = flag.clone();
            flag.feature_id = Some(id.clone());
            self.create_flag(&flag)?;
        }
        Ok(id)
    }

    pub(crate) fn update_feature(
        &mut self,
        id: &str,
        body: &FeatureBody,
    ) -> Result<(), ApiFailure> {
        if !self.features.contains_key(id) {
            return Err(ApiFailure::not_found("feature"));
        }
        if let Some(flag) = &body.flag {
            let mut flag = flag.clone();
            flag.feature_id = Some(id.to_owned());
            let existing = flag
                .id
                .clone()
                .filter(|fid| self.flags.contains_key(fid))
                .or_else(|| self.flag_keys.get(&flag.key).cloned());
            match existing {
                Some(fid) => self.update_flag(&fid, &flag)?,
                None => {
                    self.create_flag(&flag)?;
                }
            }
        }
        let t = now();
        if let Some(f) = self.features.get_mut(id) {
            if let Some(v) = &body.name {
                f.name = v.clone();
            }
            if let Some(v) = &body.description {
                f.description = v.clone();
            }
            if let Some(v) = &body.feature_type {
                f.feature_type = v.clone();
            }
            if let Some(v) = &body.icon {
                f.icon = v.clone();
            }
            macro_rules! opt {
                ($($field:ident),*) => {$( if body.$field.is_some() { f.$field = body.$field.clone(); } )*};
            }
            opt!(
                event_subtype,
                lifecycle_phase,
                maintainer_account_member_id,
                plural_name,
                singular_name,
                trait_id
            );
            f.updated_at = t;
        }
        self.notify_feature(id, "feature.updated");
        Ok(())
    }

    pub(crate) fn delete_feature(&mut self, id: &str) -> bool {
        let body = self.features.get(id).map(crate::render::feature_summary);
        if self.features.remove(id).is_none() {
            return false;
        }
        let flag_ids: Vec<String> = self
            .flags
            .values()
            .filter(|f| f.feature_id.as_deref() == Some(id))
            .map(|f| f.id.clone())
            .collect();
        for fid in flag_ids {
            self.delete_flag(&fid);
        }
        if let Some(body) = body {
            self.notice(
                "feature.deleted",
                "feature",
                body,
                None,
                Some(id.to_owned()),
            );
        }
        true
    }

    // ----- webhooks ---------------------------------------------------------

    pub(crate) fn create_webhook(&mut self, body: &CreateWebhook) -> String {
        let id = self.next_id("wh");
        let t = now();
        let secret = self.webhook_secret.clone().unwrap_or_else(random_secret);
        self.webhooks.insert(
            id.clone(),
            Webhook {
                id: id.clone(),
                name: body.name.clone(),
                url: body.url.clone(),
                request_types: body.request_types.clone(),
                secret,
                status: String::from("active"),
                credit_trigger_configs: body.credit_trigger_configs.clone(),
                entitlement_trigger_configs: body.entitlement_trigger_configs.clone(),
                created_at: t,
                updated_at: t,
            },
        );
        id
    }

    pub(crate) fn update_webhook(
        &mut self,
        id: &str,
        body: &UpdateWebhook,
    ) -> Result<(), ApiFailure> {
        let Some(w) = self.webhooks.get_mut(id) else {
            return Err(ApiFailure::not_found("webhook"));
        };
        if let Some(v) = &body.name {
            w.name = v.clone();
        }
        if let Some(v) = &body.url {
            w.url = v.clone();
        }
        if let Some(v) = &body.request_types {
            w.request_types = v.clone();
        }
        if let Some(v) = &body.status {
            w.status = v.clone();
        }
        if body.credit_trigger_configs.is_some() {
            w.credit_trigger_configs = body.credit_trigger_configs.clone();
        }
        if body.entitlement_trigger_configs.is_some() {
            w.entitlement_trigger_configs = body.entitlement_trigger_configs.clone();
        }
        w.updated_at = now();
        Ok(())
    }

    fn wants(&self, action: &str) -> bool {
        self.webhooks
            .values()
            .any(|w| w.status == "active" && w.request_types.iter().any(|t| t == action))
    }

    pub(crate) fn notice(
        &mut self,
        action: &'static str,
        object_type: &'static str,
        body: Value,
        company_id: Option<String>,
        feature_id: Option<String>,
    ) {
        if self.wants(action) {
            self.notices.push(Notice {
                action,
                object_type,
                body,
                company_id,
                feature_id,
            });
        }
    }

    fn notify_entity(&mut self, kind: Kind, id: &str, action: &'static str) {
        if !self.wants(action) {
            return;
        }
        if let Some(e) = self.entities[kind.idx()].get(id) {
            let body = crate::render::entity_summary(self, e);
            let company_id = (kind == Kind::Company).then(|| id.to_owned());
            self.notice(action, kind.as_str(), body, company_id, None);
        }
    }

    fn notify_flag(&mut self, id: &str, action: &'static str) {
        if !self.wants(action) {
            return;
        }
        if let Some(f) = self.flags.get(id) {
            let body = crate::render::flag_detail(self, f);
            let feature_id = f.feature_id.clone();
            self.notice(action, "flag", body, None, feature_id);
        }
    }

    fn notify_feature(&mut self, id: &str, action: &'static str) {
        if !self.wants(action) {
            return;
        }
        if let Some(f) = self.features.get(id) {
            let body = crate::render::feature_summary(f);
            self.notice(action, "feature", body, None, Some(id.to_owned()));
        }
    }

    /// Takes the changes recorded since the last call.
    pub(crate) fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// The webhooks that subscribe to `action`: (id, url, secret).
    pub(crate) fn subscribers(&self, action: &str) -> Vec<(String, String, String)> {
        self.webhooks
            .values()
            .filter(|w| w.status == "active" && w.request_types.iter().any(|t| t == action))
            .map(|w| (w.id.clone(), w.url.clone(), w.secret.clone()))
            .collect()
    }

    /// The webhook envelope of a change.
    pub(crate) fn envelope(&self, n: &Notice) -> Value {
        let mut v = json!({
            "action": n.action,
            "account_id": self.account_id,
            "environment_id": self.environment_id,
            "object_type": n.object_type,
            "body": n.body,
        });
        if let Some(c) = &n.company_id {
            v["company_id"] = Value::String(c.clone());
        }
        if let Some(f) = &n.feature_id {
            v["feature_id"] = Value::String(f.clone());
        }
        v
    }

    // ----- events -----------------------------------------------------------

    /// Returns false when the idempotency key was already seen.
    pub(crate) fn claim_idempotency(&mut self, key: Option<&str>) -> bool {
        match key {
            Some(k) if !k.is_empty() => self.idempotency.insert(k.to_owned()),
            _ => true,
        }
    }

    pub(crate) fn push_event(&mut self, event: StoredEvent) {
        if self.max_events == 0 {
            return;
        }
        if self.events.len() >= self.max_events {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

fn random_secret() -> String {
    let mut s = String::with_capacity(38);
    s.push_str("whsec_");
    for _ in 0..32 {
        s.push(fastrand::alphanumeric());
    }
    s
}

/// The string form of a trait for rules and search.
pub(crate) fn trait_string(entry: &TraitEntry) -> String {
    value_string(&entry.value)
}

/// Renders a timestamp.
pub(crate) fn time_str(t: OffsetDateTime) -> String {
    ts(t)
}
