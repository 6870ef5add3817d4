//! Replicator mode: evaluate from the Redis a `schematic-datastream-replicator`
//! keeps current, with a short-lived in-process layer in front.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use flagwire_core::rules::{Company, Flag, User};
use tokio::sync::watch;

use super::entities::{RedisEntityStore, Slot};
use super::health::{HealthCheck, HealthUrl};
use super::{Redis, RedisOptions, RedisStats};
use crate::cache::KeyPairs;
use crate::context::Context;
use crate::datastream::lookup::fold;
use crate::datastream::store::Store;
use crate::datastream::waiters::EntityKind;
use crate::datastream::{ConnectionState, Shared};

/// Default URL of the replicator's health document.
pub const DEFAULT_HEALTH_URL: &str = "http://127.0.0.1:8090/ready";
/// Default interval between two reads of the health document.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Default deadline of one read of the health document.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Default lifetime of what the in-process layer holds.
pub const DEFAULT_LOCAL_TTL: Duration = Duration::from_secs(1);
/// Default number of companies (and, separately, users) in the in-process
/// layer.
pub const DEFAULT_LOCAL_ENTITIES: usize = 1_000;

/// Settings of replicator mode, for
/// [`ClientBuilder::replicator`](crate::schematic::ClientBuilder::replicator).
///
/// ```
/// use std::time::Duration;
/// use flagwire::redis::{RedisOptions, ReplicatorOptions};
///
/// let options = ReplicatorOptions::new(RedisOptions::new("redis://127.0.0.1:6379"))
///     .health_url("http://127.0.0.1:8090/ready")
///     .poll_interval(Duration::from_secs(10))
///     .local_ttl(Duration::from_millis(500))
///     .max_local_entities(5_000);
/// assert_eq!(options.get_local_ttl(), Duration::from_millis(500));
/// ```
#[derive(Clone)]
pub struct ReplicatorOptions {
    pub(crate) redis: RedisOptions,
    pub(crate) health_url: String,
    pub(crate) poll_interval: Duration,
    pub(crate) health_timeout: Duration,
    pub(crate) cache_version: Option<String>,
    pub(crate) local_ttl: Duration,
    pub(crate) max_local_entities: usize,
    pub(crate) flag_check_events: bool,
}

impl fmt::Debug for ReplicatorOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicatorOptions")
            .field("redis", &self.redis)
            .field("health_url", &self.health_url)
            .field("poll_interval", &self.poll_interval)
            .field("health_timeout", &self.health_timeout)
            .field("cache_version", &self.cache_version)
            .field("local_ttl", &self.local_ttl)
            .field("max_local_entities", &self.max_local_entities)
            .field("flag_check_events", &self.flag_check_events)
            .finish()
    }
}

impl ReplicatorOptions {
    /// Replicator mode over the Redis of `redis`, with the defaults: health
    /// document at `http://127.0.0.1:8090/ready` read every 30 s (5 s
    /// deadline), in-process layer of 1,000 companies and 1,000 users kept
    /// at most 1 s, `flag_check` events on.
    pub fn new(redis: RedisOptions) -> Self {
        ReplicatorOptions {
            redis,
            health_url: DEFAULT_HEALTH_URL.to_owned(),
            poll_interval: DEFAULT_POLL_INTERVAL,
            health_timeout: DEFAULT_HEALTH_TIMEOUT,
            cache_version: None,
            local_ttl: DEFAULT_LOCAL_TTL,
            max_local_entities: DEFAULT_LOCAL_ENTITIES,
            flag_check_events: true,
        }
    }

    /// The replicator's health document (`http://` only).
    #[must_use]
    pub fn health_url(mut self, url: impl Into<String>) -> Self {
        self.health_url = url.into();
        self
    }

    /// How often the health document is read (default 30 s).
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Deadline of one read of the health document (default 5 s).
    #[must_use]
    pub fn health_timeout(mut self, timeout: Duration) -> Self {
        self.health_timeout = timeout;
        self
    }

    /// Pins the cache version instead of reading it from the health
    /// document (which is then only read for the replicator's readiness;
    /// with an empty [`health_url`](Self::health_url) it is not read).
    #[must_use]
    pub fn cache_version(mut self, version: impl Into<String>) -> Self {
        self.cache_version = Some(version.into());
        self
    }

    /// How stale the in-process layer may get (default 1 s): what it holds
    /// is re-read from Redis every half of it, in the background, so hot
    /// checks stay in memory; when Redis cannot be read for this long, the
    /// layer is emptied. Keys Redis had no entity for are remembered this
    /// long.
    #[must_use]
    pub fn local_ttl(mut self, ttl: Duration) -> Self {
        self.local_ttl = ttl.max(Duration::from_millis(10));
        self
    }

    /// The configured in-process TTL.
    pub fn get_local_ttl(&self) -> Duration {
        self.local_ttl
    }

    /// Companies (and, separately, users) the in-process layer holds
    /// (default 1,000; the one read or changed longest ago goes first).
    #[must_use]
    pub fn max_local_entities(mut self, max: usize) -> Self {
        self.max_local_entities = max.max(1);
        self
    }

    /// Whether each check evaluated here queues a `flag_check` event
    /// (default true, as with DataStream).
    #[must_use]
    pub fn flag_check_events(mut self, on: bool) -> Self {
        self.flag_check_events = on;
        self
    }
}

/// A snapshot of replicator mode, from
/// [`Client::replicator_status`](crate::schematic::Client::replicator_status).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReplicatorStatus {
    /// Whether the replicator's last health document said ready.
    pub replicator_ready: bool,
    /// The cache version in use; `None` until known (checks then go to the
    /// API).
    pub cache_version: Option<String>,
    /// Health documents read.
    pub polls: u64,
    /// Reads of the health document that failed.
    pub poll_failures: u64,
    /// Round trips to Redis made by checks (misses of the in-process layer).
    pub redis_reads: u64,
    /// Checks Redis could not answer (down, or flag absent) that went on to
    /// the API and the defaults.
    pub fallbacks: u64,
    /// Counters of the Redis connection (corrupt values skipped, errors).
    pub redis: RedisStats,
    /// The last health or Redis error, if any.
    pub last_error: Option<String>,
}

/// The replicator side of a client's [`DataStream`](crate::datastream).
pub(crate) struct Link {
    redis: Redis,
    options: ReplicatorOptions,
    health: Option<HealthCheck>,
    version: Mutex<Option<String>>,
    replicator_ready: AtomicBool,
    polls: AtomicU64,
    poll_failures: AtomicU64,
    pub(crate) redis_reads: AtomicU64,
    pub(crate) fallbacks: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Keys Redis had no entity for, until when: checks for them are
    /// evaluated without the entity and without a round trip.
    absent: Mutex<HashMap<(EntityKind, String), Instant>>,
    /// A hash of the value each held flag and entity had when read, by Redis
    /// key: a refresh that reads the same value leaves the entry alone.
    seen: Mutex<HashMap<String, u64>>,
}

fn hash_of(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Most key sets remembered as absent; beyond, the memory is cleared.
const MAX_ABSENT: usize = 10_000;

/// A stable text of a key set: folded pairs, sorted.
fn key_set(keys: &dyn KeyPairs) -> String {
    let mut pairs = Vec::with_capacity(keys.pair_count());
    keys.try_for_each_pair(&mut |name, value| {
        pairs.push(format!("{}\u{0}{}", fold(name), fold(value)));
        true
    });
    pairs.sort_unstable();
    pairs.join("\u{1}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Link {
    /// Opens Redis (a malformed URL or health URL is an error; an
    /// unreachable Redis or replicator is not) and starts the background
    /// task: health polls, refresh and expiry of the in-process layer.
    pub(crate) fn start(
        options: ReplicatorOptions,
        store: Arc<Store>,
        shared: Arc<Shared>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Link>, crate::Error> {
        let health = match (&options.cache_version, options.health_url.is_empty()) {
            (Some(_), true) => None,
            _ => {
                let url = HealthUrl::parse(&options.health_url).map_err(crate::Error::config)?;
                Some(HealthCheck::new(&url).map_err(crate::Error::config)?)
            }
        };
        let redis = Redis::open(options.redis.clone())?;
        let link = Arc::new(Link {
            redis,
            health,
            version: Mutex::new(None),
            replicator_ready: AtomicBool::new(false),
            polls: AtomicU64::new(0),
            poll_failures: AtomicU64::new(0),
            redis_reads: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            last_error: Mutex::new(None),
            absent: Mutex::new(HashMap::new()),
            seen: Mutex::new(HashMap::new()),
            options,
        });
        shared.set_state(ConnectionState::Connecting);
        if let Some(version) = link.options.cache_version.clone() {
            link.set_version(version, &store, &shared);
        }
        let task = link.clone().run(store, shared, shutdown);
        link.redis.shared.conn.handle().spawn(task);
        Ok(link)
    }

    /// The entity store at the current version, if known.
    fn entities(&self) -> Option<RedisEntityStore> {
        let version = lock(&self.version).clone()?;
        Some(RedisEntityStore::new(self.redis.clone(), version))
    }

    fn set_error(&self, error: impl Into<String>) {
        *lock(&self.last_error) = Some(error.into());
    }

    /// Switches to `version`: what the in-process layer holds belongs to the
    /// old keyspace and is dropped.
    fn set_version(&self, version: String, store: &Store, shared: &Shared) {
        let mut current = lock(&self.version);
        if current.as_deref() == Some(version.as_str()) {
            return;
        }
        tracing::debug!(version, "replicator cache version");
        *current = Some(version);
        lock(&self.absent).clear();
        lock(&self.seen).clear();
        store.clear_entities();
        store.replace_flags(Vec::new());
        shared.set_ready(true);
    }

    pub(crate) fn status(&self) -> ReplicatorStatus {
        ReplicatorStatus {
            replicator_ready: self.replicator_ready.load(Ordering::Acquire),
            cache_version: lock(&self.version).clone(),
            polls: self.polls.load(Ordering::Relaxed),
            poll_failures: self.poll_failures.load(Ordering::Relaxed),
            redis_reads: self.redis_reads.load(Ordering::Relaxed),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            redis: self.redis.stats(),
            last_error: lock(&self.last_error).clone(),
        }
    }

    /// Reads from Redis, in one round trip, what the in-process layer lacks
    /// for a check of `flag` for `context`, and adds it. `Ok(Some(kind))`:
    /// the caller's keys name different entities. `Err`: Redis could not
    /// answer, or the flag is not there (the check goes to the API).
    pub(crate) async fn fill(
        &self,
        store: &Store,
        flag: &str,
        context: &Context<'_>,
    ) -> Result<Option<EntityKind>, String> {
        let Some(entities) = self.entities() else {
            return Err("the replicator's cache version is not known yet".to_owned());
        };
        let need_flag = store.flag_default(flag).is_none();
        let now = Instant::now();
        let company_keys = self.wanted(store, EntityKind::Company, context.company_keys(), now);
        let user_keys = self.wanted(store, EntityKind::User, context.user_keys(), now);
        let lookups = |kind: EntityKind, keys: Option<&(&(dyn KeyPairs + Sync), String)>| {
            keys.map_or_else(Vec::new, |(keys, _)| entities.lookup_keys(kind, *keys))
        };
        let company = lookups(EntityKind::Company, company_keys.as_ref());
        let user = lookups(EntityKind::User, user_keys.as_ref());
        if !need_flag && company.is_empty() && user.is_empty() {
            return Ok(None);
        }
        self.redis_reads.fetch_add(1, Ordering::Relaxed);
        let fetched = entities
            .fetch(need_flag.then_some(flag), company, user)
            .await
            .map_err(|e| {
                let e = e.to_string();
                self.set_error(e.clone());
                e
            })?;
        if need_flag {
            let key = entities.flag_key(flag);
            let hash = fetched.flag.as_deref().map(hash_of);
            match entities.parse::<Flag>(&key, fetched.flag) {
                Some(flag) if !flag.key.is_empty() => {
                    store.upsert_flag(flag);
                    if let Some(hash) = hash {
                        lock(&self.seen).insert(key, hash);
                    }
                }
                _ => return Err("the flag is not in Redis".to_owned()),
            }
        }
        for (kind, slot, keys) in [
            (EntityKind::Company, fetched.company, company_keys),
            (EntityKind::User, fetched.user, user_keys),
        ] {
            match slot {
                Slot::Missing => {
                    if let Some((_, set)) = keys {
                        let mut absent = lock(&self.absent);
                        if absent.len() >= MAX_ABSENT {
                            absent.clear();
                        }
                        absent.insert((kind, set), now + self.options.local_ttl);
                    }
                }
                Slot::Conflict => return Ok(Some(kind)),
                Slot::Json(json) => self.add_entity(store, &entities, kind, json),
            }
        }
        Ok(None)
    }

    /// The caller's keys when they are to be read from Redis: not held,
    /// and not known to lead nowhere.
    fn wanted<'k>(
        &self,
        store: &Store,
        kind: EntityKind,
        keys: Option<&'k (dyn KeyPairs + Sync)>,
        now: Instant,
    ) -> Option<(&'k (dyn KeyPairs + Sync), String)> {
        let keys = keys.filter(|keys| !store.holds(kind, *keys))?;
        let set = key_set(keys);
        let absent = lock(&self.absent)
            .get(&(kind, set.clone()))
            .is_some_and(|until| *until > now);
        (!absent).then_some((keys, set))
    }

    fn add_entity(
        &self,
        store: &Store,
        entities: &RedisEntityStore,
        kind: EntityKind,
        json: String,
    ) {
        let hash = hash_of(&json);
        let id = match kind {
            EntityKind::Company => entities.parse_entity::<Company>(json).map(|company| {
                let id = company.id.clone();
                store.upsert_company(company);
                id
            }),
            EntityKind::User => entities.parse_entity::<User>(json).map(|user| {
                let id = user.id.clone();
                store.upsert_user(user);
                id
            }),
        };
        if let Some(id) = id {
            lock(&self.seen).insert(entities.entity_key(kind, &id), hash);
        }
    }

    /// The background task: health polls, and the in-process layer kept
    /// fresh (re-read from Redis every half TTL) or emptied (when Redis
    /// stays unreachable for a TTL).
    async fn run(
        self: Arc<Self>,
        store: Arc<Store>,
        shared: Arc<Shared>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        // Health polls run beside the refreshes, so a slow health document
        // never delays them.
        let poller = {
            let link = self.clone();
            let store = store.clone();
            let shared = shared.clone();
            let mut shutdown = shutdown.clone();
            async move {
                loop {
                    link.poll(&store, &shared).await;
                    tokio::select! {
                        _ = tokio::time::sleep(link.options.poll_interval) => {}
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                }
            }
        };
        let poller = tokio::spawn(poller);
        let ttl = self.options.local_ttl;
        let tick = (ttl / 2).max(Duration::from_millis(5));
        let mut last_refresh = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            if self.refresh(&store).await {
                last_refresh = Instant::now();
            } else if last_refresh.elapsed() >= ttl {
                // Redis is unreachable: stop answering from stale data.
                lock(&self.seen).clear();
                store.replace_flags(Vec::new());
                store.clear_entities();
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => {}
            }
        }
        poller.abort();
        shared.set_state(ConnectionState::Stopped);
    }

    async fn poll(&self, store: &Store, shared: &Shared) {
        let Some(health) = &self.health else {
            shared.set_state(ConnectionState::Connected);
            return;
        };
        match health.fetch(self.options.health_timeout).await {
            Ok(doc) => {
                self.polls.fetch_add(1, Ordering::Relaxed);
                self.replicator_ready.store(doc.ready, Ordering::Release);
                if self.options.cache_version.is_none()
                    && let Some(version) = doc.cache_version
                {
                    self.set_version(version, store, shared);
                }
                shared.set_state(if doc.ready {
                    ConnectionState::Connected
                } else {
                    ConnectionState::Disconnected
                });
            }
            Err(e) => {
                self.poll_failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "replicator health document unavailable");
                self.replicator_ready.store(false, Ordering::Release);
                shared.set_state(ConnectionState::Disconnected);
                self.set_error(e);
            }
        }
    }

    /// Re-reads every flag and entity the in-process layer holds; false when
    /// Redis could not answer.
    async fn refresh(&self, store: &Store) -> bool {
        let Some(entities) = self.entities() else {
            return true;
        };
        let flags = store.flag_keys();
        let companies = store.entity_ids(EntityKind::Company);
        let users = store.entity_ids(EntityKind::User);
        if flags.is_empty() && companies.is_empty() && users.is_empty() {
            // Nothing held: ping, so an outage is still noticed.
            return self.redis.ping().await.is_ok();
        }
        let mut keys: Vec<String> = flags.iter().map(|f| entities.flag_key(f)).collect();
        keys.extend(
            companies
                .iter()
                .map(|id| entities.entity_key(EntityKind::Company, id)),
        );
        keys.extend(
            users
                .iter()
                .map(|id| entities.entity_key(EntityKind::User, id)),
        );
        let values = match entities.mget(keys.clone()).await {
            Ok(values) => values,
            Err(e) => {
                self.set_error(e.to_string());
                return false;
            }
        };
        // The version may have changed while the read was in flight.
        if lock(&self.version).as_deref() != Some(entities.version()) {
            return true;
        }
        let mut seen = std::mem::take(&mut *lock(&self.seen));
        let mut fresh_seen = HashMap::with_capacity(keys.len());
        // Unchanged values keep their entries (and hash); changed ones are
        // parsed and replace them; gone or corrupt ones are dropped.
        let mut changed = Vec::new();
        for (key, value) in keys.iter().zip(values) {
            let Some(json) = value else {
                changed.push((key, None));
                continue;
            };
            let hash = hash_of(&json);
            if seen.remove(key) == Some(hash) {
                fresh_seen.insert(key.clone(), hash);
            } else {
                changed.push((key, Some((json, hash))));
            }
        }
        drop(seen);
        let flag_keys: HashMap<&String, &String> = keys.iter().zip(&flags).collect();
        let company_ids: HashMap<&String, &String> =
            keys[flags.len()..].iter().zip(&companies).collect();
        let user_ids: HashMap<&String, &String> = keys[flags.len() + companies.len()..]
            .iter()
            .zip(&users)
            .collect();
        let no_keys = std::collections::BTreeMap::new();
        for (key, value) in changed {
            let (json, hash) = match value {
                Some((json, hash)) => (Some(json), Some(hash)),
                None => (None, None),
            };
            let kept = if let Some(flag) = flag_keys.get(key) {
                match entities.parse::<Flag>(key, json) {
                    Some(fresh) if !fresh.key.is_empty() => {
                        store.upsert_flag(fresh);
                        true
                    }
                    _ => {
                        store.remove_flag(flag);
                        false
                    }
                }
            } else if let Some(id) = company_ids.get(key) {
                match entities.parse::<Company>(key, json) {
                    Some(company) => {
                        store.upsert_company(company);
                        true
                    }
                    None => {
                        store.delete(EntityKind::Company, id, &no_keys);
                        false
                    }
                }
            } else if let Some(id) = user_ids.get(key) {
                match entities.parse::<User>(key, json) {
                    Some(user) => {
                        store.upsert_user(user);
                        true
                    }
                    None => {
                        store.delete(EntityKind::User, id, &no_keys);
                        false
                    }
                }
            } else {
                false
            };
            if let (true, Some(hash)) = (kept, hash) {
                fresh_seen.insert(key.clone(), hash);
            }
        }
        // What checks added meanwhile stays known; where a check and this
        // refresh read different values, the next refresh re-reads it.
        let mut seen = lock(&self.seen);
        for (key, hash) in fresh_seen {
            match seen.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => {
                    if *e.get() != hash {
                        e.remove();
                    }
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(hash);
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_ignore_order_and_case() {
        let a = key_set(&[("id", "Acme"), ("Domain", "acme.com")]);
        let b = key_set(&[("domain", "ACME.com"), ("ID", "acme")]);
        assert_eq!(a, b);
        assert_ne!(a, key_set(&[("id", "acme")]));
        // Separators cannot be forged by names or values that hold ':'.
        assert_ne!(key_set(&[("a:b", "c")]), key_set(&[("a", "b:c")]));
    }

    #[test]
    fn options_have_the_documented_defaults_and_hide_the_url() {
        let o = ReplicatorOptions::new(RedisOptions::new("redis://:secret@10.0.0.1:6379"));
        assert_eq!(o.health_url, DEFAULT_HEALTH_URL);
        assert_eq!(o.poll_interval, DEFAULT_POLL_INTERVAL);
        assert_eq!(o.health_timeout, DEFAULT_HEALTH_TIMEOUT);
        assert_eq!(o.local_ttl, DEFAULT_LOCAL_TTL);
        assert_eq!(o.max_local_entities, DEFAULT_LOCAL_ENTITIES);
        assert!(o.flag_check_events);
        assert_eq!(o.cache_version, None);
        let shown = format!("{o:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("10.0.0.1"),
            "{shown}"
        );
        let o = o
            .local_ttl(Duration::ZERO)
            .max_local_entities(0)
            .poll_interval(Duration::ZERO);
        assert_eq!(o.local_ttl, Duration::from_millis(10));
        assert_eq!(o.max_local_entities, 1);
        assert_eq!(o.poll_interval, Duration::from_millis(10));
    }
}
