//! The local store: flags, companies and users held in memory for local
//! evaluation.
//!
//! # Reads
//!
//! A check reads the store without taking any lock and without writing any
//! memory other threads read: every map is a `papaya` map (lock-free,
//! read-optimised) sharing one `seize` collector, so a check enters the
//! collector once (a store to this thread's own slot) and borrows the flag,
//! the company and the user for the time of the evaluation. Nothing is
//! cloned, no reference count moves, nothing is allocated.
//!
//! # Writes
//!
//! Writes come from the socket task (messages) and from `track` (metric
//! bumps). They are serialised by one mutex that readers never touch, so a
//! read-merge-write of one entity cannot interleave with another. An entity
//! is replaced as a whole (a new `Arc`), so a reader sees either the old or
//! the new version, never a mix.
//!
//! # Keys
//!
//! Flags are found by key and entities by any of their key pairs, both
//! case-insensitively (see [`lookup`](super::lookup)), as the official SDKs'
//! lower-cased cache keys do. When an entity is replaced, the lookup pairs
//! its new version no longer has are removed; a delete removes every pair
//! the cached version had. Two pairs of one check that lead to different
//! entities are a key conflict.
//!
//! # Bounds
//!
//! Companies and users are each bounded in number (oldest written first
//! out) and in age (entries older than the TTL are swept by the socket
//! task). Flags are not bounded: the server sends all of them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use flagwire_core::datastream::{CompanyPatch, Message, Received, UserPatch, bump_metrics};
use flagwire_core::events::Keys;
use flagwire_core::rules::{
    CheckOptions as EvalOptions, Company, CompiledFlag, Evaluation, Flag, PreparedCompany,
    PreparedUser, User,
};
use papaya::Guard;
use seize::Collector;
use time::OffsetDateTime;

use super::lookup::{PairKey, PairQuery, TextKey, TextQuery};
use super::waiters::{EntityKind, Outcome, Waiters};
use crate::cache::KeyPairs;
use crate::context::Context;

type Hasher = foldhash::fast::RandomState;
type Map<K, V> = papaya::HashMap<K, V, Hasher>;

fn map<K, V>(collector: &Arc<Collector>) -> Map<K, V>
where
    K: Send + 'static,
    V: Send + 'static,
{
    papaya::HashMap::builder()
        .hasher(Hasher::default())
        .shared_collector(collector.clone())
        .build()
}

/// What a prepared company or user offers the store.
pub(crate) trait Model: Send + Sync + 'static {
    /// The entity id.
    fn id(&self) -> &str;
    /// The identifying keys.
    fn key_pairs(&self) -> impl Iterator<Item = (&str, &str)>;
    /// Whether it has no keys (nothing could find it).
    fn has_no_keys(&self) -> bool;
    /// The identifying keys as a map.
    fn keys_map(&self) -> Keys {
        self.key_pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

impl Model for PreparedCompany {
    fn id(&self) -> &str {
        PreparedCompany::id(self)
    }
    fn key_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.keys()
    }
    fn has_no_keys(&self) -> bool {
        self.keys().len() == 0
    }
}

impl Model for PreparedUser {
    fn id(&self) -> &str {
        PreparedUser::id(self)
    }
    fn key_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.user()
            .keys
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
    fn has_no_keys(&self) -> bool {
        self.user().keys.is_empty()
    }
}

/// One cached entity.
pub(crate) struct Entry<P> {
    pub(crate) model: P,
    generation: u64,
    written: Instant,
}

/// The result of looking an entity up by the caller's keys.
pub(crate) enum Found<'g, P> {
    /// No pair of the keys is known.
    Missing,
    /// One entity.
    One(&'g Entry<P>),
    /// Pairs of the keys lead to different entities.
    Conflict,
}

/// Companies or users: by id and by each key pair.
struct Entities<P> {
    by_id: Map<Box<str>, Arc<Entry<P>>>,
    by_pair: Map<PairKey, Arc<Entry<P>>>,
}

impl<P: Model> Entities<P> {
    fn new(collector: &Arc<Collector>) -> Self {
        Entities {
            by_id: map(collector),
            by_pair: map(collector),
        }
    }

    /// The entity the caller's `keys` lead to. Allocation-free.
    #[inline]
    fn find<'g>(&self, keys: &dyn KeyPairs, guard: &'g impl Guard) -> Found<'g, P> {
        let mut found: Option<&'g Arc<Entry<P>>> = None;
        let mut conflict = false;
        keys.try_for_each_pair(&mut |name, value| {
            if let Some(entry) = self.by_pair.get(&PairQuery(name, value), guard) {
                match found {
                    None => found = Some(entry),
                    Some(first) if Arc::ptr_eq(first, entry) => {}
                    Some(first) if first.model.id() == entry.model.id() => {}
                    Some(_) => {
                        conflict = true;
                        return false;
                    }
                }
            }
            true
        });
        match (conflict, found) {
            (true, _) => Found::Conflict,
            (false, Some(entry)) => Found::One(entry),
            (false, None) => Found::Missing,
        }
    }

    fn get_by_id<'g>(&self, id: &str, guard: &'g impl Guard) -> Option<&'g Arc<Entry<P>>> {
        self.by_id.get(id, guard)
    }

    fn len(&self) -> usize {
        self.by_id.len()
    }
}

/// Counters of the store.
#[derive(Debug, Default)]
pub(crate) struct StoreCounters {
    pub(crate) partials_skipped: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) expired: AtomicU64,
    pub(crate) without_keys: AtomicU64,
}

/// Writer-side bookkeeping: the write order of each kind, for eviction.
#[derive(Default)]
struct WriteLog {
    next_generation: u64,
    companies: VecDeque<(Box<str>, u64)>,
    users: VecDeque<(Box<str>, u64)>,
    /// Keys of entities dropped since the socket task last looked.
    evicted: Vec<(EntityKind, Keys)>,
}

/// Limits of the store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) companies: usize,
    pub(crate) users: usize,
    pub(crate) ttl: Duration,
}

/// The outcome of a local evaluation attempt.
pub(crate) enum Local<R> {
    /// Evaluated.
    Done(R),
    /// The caller's keys lead to two different entities.
    Conflict {
        /// Company or user.
        kind: EntityKind,
    },
    /// Entities to fetch first.
    Need {
        /// The company is not cached.
        company: bool,
        /// The user is not cached.
        user: bool,
    },
    /// The flag is not in the store.
    NoFlag,
    /// No `Flags` message has arrived yet.
    NotReady,
}

/// The local store. See the [module docs](self).
pub(crate) struct Store {
    collector: Arc<Collector>,
    flags: Map<TextKey, CompiledFlag>,
    companies: Entities<PreparedCompany>,
    users: Entities<PreparedUser>,
    flags_loaded: AtomicBool,
    writes: Mutex<WriteLog>,
    limits: Limits,
    pub(crate) counters: StoreCounters,
}

impl Store {
    pub(crate) fn new(limits: Limits) -> Self {
        let collector = Arc::new(Collector::new());
        Store {
            flags: map(&collector),
            companies: Entities::new(&collector),
            users: Entities::new(&collector),
            collector,
            flags_loaded: AtomicBool::new(false),
            writes: Mutex::new(WriteLog::default()),
            limits,
            counters: StoreCounters::default(),
        }
    }

    /// Whether a full set of flags has arrived.
    pub(crate) fn is_ready(&self) -> bool {
        self.flags_loaded.load(Ordering::Acquire)
    }

    /// Sizes: flags, companies, users.
    pub(crate) fn sizes(&self) -> (usize, usize, usize) {
        (self.flags.len(), self.companies.len(), self.users.len())
    }

    // -----------------------------------------------------------------------
    // Reads
    // -----------------------------------------------------------------------

    /// Evaluates `flag` for `context` from memory and hands the evaluation to
    /// `f`, or says why it could not. Takes no lock and allocates nothing.
    #[inline]
    pub(crate) fn evaluate<R>(
        &self,
        flag: &str,
        context: &Context<'_>,
        options: &EvalOptions<'_>,
        now: OffsetDateTime,
        f: impl FnOnce(&Evaluation<'_>) -> R,
    ) -> Local<R> {
        self.evaluate_with::<false, R>(flag, context, options, now, f)
    }

    /// [`evaluate`](Self::evaluate); with `MISSING_OK` a company or user
    /// the store does not hold is evaluated as absent instead of needed
    /// (replicator mode, where misses are never fetched).
    #[inline]
    pub(crate) fn evaluate_with<const MISSING_OK: bool, R>(
        &self,
        flag: &str,
        context: &Context<'_>,
        options: &EvalOptions<'_>,
        now: OffsetDateTime,
        f: impl FnOnce(&Evaluation<'_>) -> R,
    ) -> Local<R> {
        if !self.flags_loaded.load(Ordering::Acquire) {
            return Local::NotReady;
        }
        let guard = self.collector.enter();
        let Some(compiled) = self.flags.get(&TextQuery(flag), &guard) else {
            return Local::NoFlag;
        };
        let mut need_company = false;
        let company = match context.company_keys() {
            None => None,
            Some(keys) => match self.companies.find(keys, &guard) {
                Found::One(entry) => Some(&entry.model),
                Found::Missing => {
                    need_company = !MISSING_OK;
                    None
                }
                Found::Conflict => {
                    return Local::Conflict {
                        kind: EntityKind::Company,
                    };
                }
            },
        };
        let mut need_user = false;
        let user = match context.user_keys() {
            None => None,
            Some(keys) => match self.users.find(keys, &guard) {
                Found::One(entry) => Some(&entry.model),
                Found::Missing => {
                    need_user = !MISSING_OK;
                    None
                }
                Found::Conflict => {
                    return Local::Conflict {
                        kind: EntityKind::User,
                    };
                }
            },
        };
        if need_company || need_user {
            return Local::Need {
                company: need_company,
                user: need_user,
            };
        }
        let evaluation = compiled.evaluate(company, user, now, options);
        Local::Done(f(&evaluation))
    }

    #[cfg(feature = "redis")]
    /// Whether the caller's `keys` lead to a held entity (or to a conflict).
    pub(crate) fn holds(&self, kind: EntityKind, keys: &dyn KeyPairs) -> bool {
        let guard = self.collector.enter();
        match kind {
            EntityKind::Company => !matches!(self.companies.find(keys, &guard), Found::Missing),
            EntityKind::User => !matches!(self.users.find(keys, &guard), Found::Missing),
        }
    }

    #[cfg(feature = "redis")]
    /// The held company `id`.
    pub(crate) fn company(&self, id: &str) -> Option<Company> {
        let guard = self.collector.enter();
        self.companies
            .get_by_id(id, &guard)
            .map(|e| e.model.to_company())
    }

    #[cfg(feature = "redis")]
    /// The held user `id`.
    pub(crate) fn user(&self, id: &str) -> Option<User> {
        let guard = self.collector.enter();
        self.users
            .get_by_id(id, &guard)
            .map(|e| e.model.user().clone())
    }

    #[cfg(feature = "redis")]
    /// The ids of every held company or user.
    pub(crate) fn entity_ids(&self, kind: EntityKind) -> Vec<String> {
        let guard = self.collector.enter();
        match kind {
            EntityKind::Company => self
                .companies
                .by_id
                .keys(&guard)
                .map(|k| k.to_string())
                .collect(),
            EntityKind::User => self
                .users
                .by_id
                .keys(&guard)
                .map(|k| k.to_string())
                .collect(),
        }
    }

    /// The default value of `flag`, if the store has it.
    pub(crate) fn flag_default(&self, flag: &str) -> Option<bool> {
        let guard = self.collector.enter();
        self.flags
            .get(&TextQuery(flag), &guard)
            .map(|f| f.flag().default_value)
    }

    /// The keys of every flag, sorted.
    pub(crate) fn flag_keys(&self) -> Vec<String> {
        let guard = self.collector.enter();
        let mut keys: Vec<String> = self
            .flags
            .values(&guard)
            .map(|f| f.key().to_owned())
            .collect();
        keys.sort_unstable();
        keys
    }

    // -----------------------------------------------------------------------
    // Writes
    // -----------------------------------------------------------------------

    fn write_log(&self) -> std::sync::MutexGuard<'_, WriteLog> {
        self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies one decoded message; settles the waiters it answers. Returns
    /// the keys of entities evicted to make room.
    pub(crate) fn apply(&self, received: Received, waiters: &Waiters) -> Vec<(EntityKind, Keys)> {
        match received.message {
            Message::Flags { flags, .. } => self.replace_flags(flags),
            Message::Flag(flag) => self.upsert_flag(flag),
            Message::FlagDeleted { key, .. } => {
                let guard = self.collector.enter();
                self.flags.remove(&TextQuery(&key), &guard);
            }
            Message::Company(company) => {
                let pairs = pairs_of(&company.keys);
                self.upsert_company(company);
                waiters.settle(EntityKind::Company, borrow(&pairs), &Outcome::Arrived);
            }
            Message::CompanyPatch { id, patch } => {
                if let Some(keys) = self.patch_company(&id, &patch) {
                    waiters.settle(EntityKind::Company, borrow(&keys), &Outcome::Arrived);
                }
            }
            Message::CompanyDeleted { id, keys } => self.delete(EntityKind::Company, &id, &keys),
            Message::User(user) => {
                let pairs = pairs_of(&user.keys);
                self.upsert_user(user);
                waiters.settle(EntityKind::User, borrow(&pairs), &Outcome::Arrived);
            }
            Message::UserPatch { id, patch } => {
                if let Some(keys) = self.patch_user(&id, &patch) {
                    waiters.settle(EntityKind::User, borrow(&keys), &Outcome::Arrived);
                }
            }
            Message::UserDeleted { id, keys } => self.delete(EntityKind::User, &id, &keys),
            Message::Error(error) => {
                let kind = match error.entity_type {
                    Some(flagwire_core::datastream::EntityType::Company) => {
                        Some(EntityKind::Company)
                    }
                    Some(flagwire_core::datastream::EntityType::User) => Some(EntityKind::User),
                    _ => None,
                };
                tracing::debug!(error = %error.error, "DataStream error message");
                if let (Some(kind), Some(keys)) = (kind, error.keys.as_ref()) {
                    waiters.settle(
                        kind,
                        keys.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                        &Outcome::Failed(error.error.clone()),
                    );
                }
            }
            Message::Reload => self.clear_entities(),
            Message::Subscribed(_) => {}
            Message::Ignored {
                entity_type,
                message_type,
                why,
            } => {
                tracing::debug!(entity_type, message_type, why, "DataStream message ignored");
            }
            _ => {}
        }
        std::mem::take(&mut self.write_log().evicted)
    }

    /// Replaces every flag (a bulk `Flags` message).
    pub(crate) fn replace_flags(&self, flags: Vec<Flag>) {
        let _log = self.write_log();
        let guard = self.collector.enter();
        let mut keep: std::collections::HashSet<TextKey> =
            std::collections::HashSet::with_capacity(flags.len());
        for flag in flags {
            if flag.key.is_empty() {
                continue;
            }
            let key = TextKey::new(&flag.key);
            keep.insert(key.clone());
            self.flags.insert(key, CompiledFlag::new(flag), &guard);
        }
        let stale: Vec<TextKey> = self
            .flags
            .keys(&guard)
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        for key in stale {
            self.flags.remove(&key, &guard);
        }
        self.flags_loaded.store(true, Ordering::Release);
    }

    /// Adds or replaces one flag.
    pub(crate) fn upsert_flag(&self, flag: Flag) {
        if flag.key.is_empty() {
            return;
        }
        let _log = self.write_log();
        let guard = self.collector.enter();
        self.flags
            .insert(TextKey::new(&flag.key), CompiledFlag::new(flag), &guard);
    }

    #[cfg(feature = "redis")]
    /// Removes one flag.
    pub(crate) fn remove_flag(&self, key: &str) {
        let _log = self.write_log();
        let guard = self.collector.enter();
        self.flags.remove(&TextQuery(key), &guard);
    }

    /// Caches a company (replacing any earlier version).
    pub(crate) fn upsert_company(&self, company: Company) {
        let prepared = PreparedCompany::new(company);
        let mut log = self.write_log();
        self.store_entity(&self.companies, prepared, &mut log, EntityKind::Company);
    }

    /// Caches a user.
    pub(crate) fn upsert_user(&self, user: User) {
        let prepared = PreparedUser::new(user);
        let mut log = self.write_log();
        self.store_entity(&self.users, prepared, &mut log, EntityKind::User);
    }

    /// Applies a partial to the cached company `id`; returns its keys, or
    /// `None` when the company is not cached (the partial is skipped).
    pub(crate) fn patch_company(
        &self,
        id: &str,
        patch: &CompanyPatch,
    ) -> Option<Vec<(String, String)>> {
        let mut log = self.write_log();
        let mut company = {
            let guard = self.collector.enter();
            match self.companies.get_by_id(id, &guard) {
                Some(entry) => entry.model.to_company(),
                None => {
                    self.counters
                        .partials_skipped
                        .fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        };
        patch.apply(&mut company);
        let keys = pairs_of(&company.keys);
        self.store_entity(
            &self.companies,
            PreparedCompany::new(company),
            &mut log,
            EntityKind::Company,
        );
        Some(keys)
    }

    /// Applies a partial to the cached user `id`.
    pub(crate) fn patch_user(&self, id: &str, patch: &UserPatch) -> Option<Vec<(String, String)>> {
        let mut log = self.write_log();
        let mut user = {
            let guard = self.collector.enter();
            match self.users.get_by_id(id, &guard) {
                Some(entry) => entry.model.user().clone(),
                None => {
                    self.counters
                        .partials_skipped
                        .fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        };
        patch.apply(&mut user);
        let keys = pairs_of(&user.keys);
        self.store_entity(
            &self.users,
            PreparedUser::new(user),
            &mut log,
            EntityKind::User,
        );
        Some(keys)
    }

    /// Adds `quantity` to the cached company's metrics for `event` (after a
    /// `track`); true when a cached company changed.
    pub(crate) fn bump_company_metrics(
        &self,
        keys: &dyn KeyPairs,
        event: &str,
        quantity: i64,
    ) -> bool {
        let mut log = self.write_log();
        let mut company = {
            let guard = self.collector.enter();
            match self.companies.find(keys, &guard) {
                Found::One(entry) => entry.model.to_company(),
                _ => return false,
            }
        };
        if !bump_metrics(&mut company, event, quantity) {
            return false;
        }
        self.store_entity(
            &self.companies,
            PreparedCompany::new(company),
            &mut log,
            EntityKind::Company,
        );
        true
    }

    /// Removes an entity and every lookup pair it had (the cached version's
    /// and the delete message's).
    pub(crate) fn delete(&self, kind: EntityKind, id: &str, keys: &BTreeMap<String, String>) {
        let _log = self.write_log();
        match kind {
            EntityKind::Company => remove_entity(&self.companies, &self.collector, id, keys),
            EntityKind::User => remove_entity(&self.users, &self.collector, id, keys),
        };
    }

    /// Drops every company and user (a `reload`).
    pub(crate) fn clear_entities(&self) {
        let mut log = self.write_log();
        let guard = self.collector.enter();
        self.companies.by_id.clear(&guard);
        self.companies.by_pair.clear(&guard);
        self.users.by_id.clear(&guard);
        self.users.by_pair.clear(&guard);
        log.companies.clear();
        log.users.clear();
    }

    /// Drops entities written longer than the TTL ago; returns their keys.
    pub(crate) fn sweep_expired(&self, now: Instant) -> Vec<(EntityKind, Keys)> {
        let mut log = self.write_log();
        let ttl = self.limits.ttl;
        let log = &mut *log;
        let mut dropped = Vec::new();
        expire(
            &self.companies,
            &self.collector,
            &mut log.companies,
            now,
            ttl,
            |keys| dropped.push((EntityKind::Company, keys)),
        );
        expire(
            &self.users,
            &self.collector,
            &mut log.users,
            now,
            ttl,
            |keys| dropped.push((EntityKind::User, keys)),
        );
        self.counters
            .expired
            .fetch_add(dropped.len() as u64, Ordering::Relaxed);
        dropped
    }

    /// Stores `model` under its id and key pairs, removes the pairs an
    /// earlier version had and this one lacks, and evicts the oldest
    /// entities beyond the limit. Called with the write lock held.
    fn store_entity<P: Model>(
        &self,
        entities: &Entities<P>,
        model: P,
        log: &mut WriteLog,
        kind: EntityKind,
    ) {
        let id: Box<str> = model.id().into();
        if model.has_no_keys() || id.is_empty() {
            // Nothing could find it (the official SDKs do not cache these either).
            self.counters.without_keys.fetch_add(1, Ordering::Relaxed);
            return;
        }
        log.next_generation += 1;
        let generation = log.next_generation;
        let entry = Arc::new(Entry {
            model,
            generation,
            written: Instant::now(),
        });
        let guard = self.collector.enter();
        if let Some(old) = entities.by_id.get(&*id, &guard) {
            for (name, value) in old.model.key_pairs() {
                let old_pair = PairKey::new(name, value);
                let still = entry
                    .model
                    .key_pairs()
                    .any(|(n, v)| PairQuery(n, v).eq_folded(&old_pair));
                if !still {
                    remove_pair_if_owned(entities, &guard, name, value, &id);
                }
            }
        }
        for (name, value) in entry.model.key_pairs() {
            entities
                .by_pair
                .insert(PairKey::new(name, value), entry.clone(), &guard);
        }
        entities.by_id.insert(id.clone(), entry, &guard);
        let (order, limit) = match kind {
            EntityKind::Company => (&mut log.companies, self.limits.companies),
            EntityKind::User => (&mut log.users, self.limits.users),
        };
        order.push_back((id, generation));
        while entities.by_id.len() > limit {
            let Some((victim, generation)) = order.pop_front() else {
                break;
            };
            let current = entities
                .by_id
                .get(&*victim, &guard)
                .is_some_and(|e| e.generation == generation);
            if current {
                if let Some(keys) =
                    remove_entity(entities, &self.collector, &victim, &BTreeMap::new())
                {
                    log.evicted.push((kind, keys));
                }
                self.counters.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Entries rewritten since they were queued leave stale marks behind;
        // keep the queue from growing without bound.
        if order.len() > 2 * limit.max(16) {
            order.retain(|(id, generation)| {
                entities
                    .by_id
                    .get(&**id, &guard)
                    .is_some_and(|e| e.generation == *generation)
            });
        }
    }
}

impl PairQuery<'_> {
    fn eq_folded(&self, key: &PairKey) -> bool {
        papaya::Equivalent::equivalent(self, key)
    }
}

fn remove_pair_if_owned<P: Model>(
    entities: &Entities<P>,
    guard: &impl Guard,
    name: &str,
    value: &str,
    id: &str,
) {
    let query = PairQuery(name, value);
    let owned = entities
        .by_pair
        .get(&query, guard)
        .is_some_and(|e| e.model.id() == id);
    if owned {
        entities.by_pair.remove(&query, guard);
    }
}

/// Removes the entity `id` and its lookup pairs (and `extra_keys`' pairs
/// that lead to it); returns the keys it had, if it was cached.
fn remove_entity<P: Model>(
    entities: &Entities<P>,
    collector: &Collector,
    id: &str,
    extra_keys: &BTreeMap<String, String>,
) -> Option<Keys> {
    let guard = collector.enter();
    let removed = entities.by_id.remove(id, &guard).map(|old| {
        for (name, value) in old.model.key_pairs() {
            remove_pair_if_owned(entities, &guard, name, value, id);
        }
        old.model.keys_map()
    });
    for (name, value) in extra_keys {
        remove_pair_if_owned(entities, &guard, name, value, id);
    }
    removed
}

fn expire<P: Model>(
    entities: &Entities<P>,
    collector: &Collector,
    order: &mut VecDeque<(Box<str>, u64)>,
    now: Instant,
    ttl: Duration,
    mut dropped: impl FnMut(Keys),
) {
    while let Some((id, generation)) = order.front() {
        let guard = collector.enter();
        let entry = entities.by_id.get(&**id, &guard).cloned();
        drop(guard);
        match entry {
            Some(e) if e.generation == *generation => {
                if now.saturating_duration_since(e.written) < ttl {
                    break;
                }
                let id = id.clone();
                if let Some(keys) = remove_entity(entities, collector, &id, &BTreeMap::new()) {
                    dropped(keys);
                }
            }
            // Rewritten or removed since: a stale mark.
            _ => {}
        }
        order.pop_front();
    }
}

fn pairs_of(keys: &BTreeMap<String, String>) -> Vec<(String, String)> {
    keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn borrow(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}
