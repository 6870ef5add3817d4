//! Flags, companies and users in Redis, in the replicator's key layout.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use flagwire_core::datastream::{CacheKeys, stale_lookups};
use flagwire_core::rules::{Company, Flag, User};
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::conn::from_redis;
use super::{Redis, RedisError, RedisErrorKind};
use crate::cache::KeyPairs;
use crate::datastream::waiters::EntityKind;

/// One round trip for a check: the flag, and each entity found through the
/// caller's lookup keys. Status per entity: 0 no lookup key known, 1 found,
/// 2 the keys name different entities, 3 a lookup key names an entity that
/// is not there.
static FETCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function entity(prefix, first, n)
  local id = false
  for i = first, first + n - 1 do
    local v = redis.call('GET', ARGV[i])
    if v then
      if id and id ~= v then return {2, false} end
      id = v
    end
  end
  if not id then return {0, false} end
  local body = redis.call('GET', prefix .. id)
  if not body then return {3, false} end
  return {1, body}
end
local flag = false
if ARGV[1] ~= '' then flag = redis.call('GET', ARGV[1]) end
local nc = tonumber(ARGV[3])
local c = entity(ARGV[2], 6, nc)
local u = entity(ARGV[4], 6 + nc, tonumber(ARGV[5]))
return {flag, c[1], c[2], u[1], u[2]}
",
    )
});

/// Writes an entity and its lookup keys, and removes the stale lookup keys
/// that still lead to it. KEYS: entity, `n` lookups, stale lookups; ARGV:
/// JSON, id, TTL in ms (0: none), n.
static UPSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = tonumber(ARGV[4])
local ttl = tonumber(ARGV[3])
local function set(k, v)
  if ttl > 0 then redis.call('SET', k, v, 'PX', ttl) else redis.call('SET', k, v) end
end
set(KEYS[1], ARGV[1])
for i = 2, n + 1 do set(KEYS[i], ARGV[2]) end
for i = n + 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2] then redis.call('DEL', KEYS[i]) end
end
return 1
",
    )
});

/// Deletes an entity and the lookup keys that lead to it. KEYS: entity,
/// lookups; ARGV: id.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1])
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1
",
    )
});

/// The result of finding an entity by the caller's keys.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Found<T> {
    /// No lookup key leads anywhere, or the entity it leads to is gone (or
    /// does not parse: counted in [`RedisStats::corrupt`](super::RedisStats)).
    Missing,
    /// The entity.
    One(T),
    /// Two of the keys lead to different entities.
    Conflict,
}

/// One entity slot of a [`Fetched`] answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Slot {
    Missing,
    Json(String),
    Conflict,
}

/// What one check needs, in one round trip.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fetched {
    pub(crate) flag: Option<String>,
    pub(crate) company: Slot,
    pub(crate) user: Slot,
}

/// What companies and users share for the store.
trait Entity: Serialize + DeserializeOwned + Send + 'static {
    const KIND: EntityKind;
    fn id(&self) -> &str;
    fn keys(&self) -> &BTreeMap<String, String>;
}

impl Entity for Company {
    const KIND: EntityKind = EntityKind::Company;
    fn id(&self) -> &str {
        &self.id
    }
    fn keys(&self) -> &BTreeMap<String, String> {
        &self.keys
    }
}

impl Entity for User {
    const KIND: EntityKind = EntityKind::User;
    fn id(&self) -> &str {
        &self.id
    }
    fn keys(&self) -> &BTreeMap<String, String> {
        &self.keys
    }
}

/// Flags, companies and users in Redis at one cache version, in the key
/// layout of the replicator and the official SDKs (see the
/// [module docs](super)). Values are the rules engine's snake_case JSON.
///
/// Writes keep the lookup keys right: replacing an entity removes the
/// lookup keys its earlier version had and this one lacks (when they still
/// lead to it); deleting one removes every lookup key leading to it.
/// Entities without an id or keys are not written (nothing could find
/// them). Reads skip values that do not parse and count them.
///
/// ```no_run
/// use std::collections::BTreeMap;
/// use flagwire::redis::{Found, Redis, RedisOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Redis::open(RedisOptions::new("redis://127.0.0.1:6379"))?.entity_store();
/// let keys = BTreeMap::from([("domain", "acme.com")]);
/// match store.find_company(&keys).await? {
///     Found::One(company) => println!("{}", company.id),
///     Found::Missing => println!("not cached"),
///     Found::Conflict => println!("the keys name different companies"),
///     _ => {}
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisEntityStore {
    redis: Redis,
    version: String,
    keys: CacheKeys,
}

impl fmt::Debug for RedisEntityStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEntityStore")
            .field("prefix", &self.redis.shared.layout.prefix())
            .field("version", &self.version)
            .finish()
    }
}

fn ttl_ms(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |t| {
        u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

fn encode<T: Serialize>(value: &T) -> Result<String, RedisError> {
    serde_json::to_string(value)
        .map_err(|e| RedisError::new(RedisErrorKind::Encode, format!("encoding a value: {e}")))
}

async fn get(c: &mut ConnectionManager, key: &str) -> Result<Option<String>, RedisError> {
    redis::cmd("GET")
        .arg(key)
        .query_async::<Option<String>>(c)
        .await
        .map_err(|e| from_redis("GET", &e))
}

impl RedisEntityStore {
    pub(crate) fn new(redis: Redis, version: String) -> Self {
        let keys = CacheKeys::new(redis.shared.layout.prefix(), version.as_str());
        RedisEntityStore {
            redis,
            version,
            keys,
        }
    }

    /// A key written by `write`; with an empty prefix it starts with `:`,
    /// as this crate's keys always have.
    fn key(&self, write: impl FnOnce(&CacheKeys, &mut String)) -> String {
        let mut out = String::with_capacity(64);
        if self.keys.prefix().is_empty() {
            out.push(':');
        }
        write(&self.keys, &mut out);
        out
    }

    /// The same store at another cache version.
    #[must_use]
    pub fn with_version(&self, version: impl Into<String>) -> Self {
        RedisEntityStore::new(self.redis.clone(), version.into())
    }

    /// The cache version of its keys.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The Redis handle.
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// Parses a value read from Redis at `key`; a value that does not
    /// parse is counted and `None`.
    pub(crate) fn parse<T: DeserializeOwned>(&self, key: &str, json: Option<String>) -> Option<T> {
        let json = json?;
        match serde_json::from_str(&json) {
            Ok(value) => Some(value),
            Err(e) => {
                self.redis.shared.count_corrupt(key, &e);
                None
            }
        }
    }

    async fn get_text(&self, key: String) -> Result<Option<String>, RedisError> {
        self.redis
            .shared
            .conn
            .run(move |mut c| async move { get(&mut c, &key).await })
            .await
    }

    /// Values of `keys` in one `MGET` (`None` for absent ones).
    pub(crate) async fn mget(&self, keys: Vec<String>) -> Result<Vec<Option<String>>, RedisError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.redis
            .shared
            .conn
            .run(move |mut c| async move {
                redis::cmd("MGET")
                    .arg(&keys)
                    .query_async::<Vec<Option<String>>>(&mut c)
                    .await
                    .map_err(|e| from_redis("MGET", &e))
            })
            .await
    }

    // -----------------------------------------------------------------------
    // Flags
    // -----------------------------------------------------------------------

    /// The flag `key` (case-insensitive), if present and well formed.
    pub async fn flag(&self, key: &str) -> Result<Option<Flag>, RedisError> {
        let key = self.flag_key(key);
        let json = self.get_text(key.clone()).await?;
        Ok(self.parse(&key, json))
    }

    pub(crate) fn flag_key(&self, key: &str) -> String {
        self.key(|k, out| k.write_flag(out, key))
    }

    pub(crate) fn lookup_key(&self, kind: EntityKind, name: &str, value: &str) -> String {
        self.key(|k, out| match kind {
            EntityKind::Company => k.write_company_lookup(out, name, value),
            EntityKind::User => k.write_user_lookup(out, name, value),
        })
    }

    /// Parses an entity read from Redis; a value that does not parse is
    /// counted and `None`.
    pub(crate) fn parse_entity<T: DeserializeOwned>(&self, json: String) -> Option<T> {
        self.parse("(entity read by lookup key)", Some(json))
    }

    pub(crate) fn entity_key(&self, kind: EntityKind, id: &str) -> String {
        self.key(|k, out| match kind {
            EntityKind::Company => k.write_company(out, id),
            EntityKind::User => k.write_user(out, id),
        })
    }

    /// Writes one flag (it lives at least 30 days, or forever without an
    /// entity TTL).
    pub async fn write_flag(&self, flag: &Flag) -> Result<(), RedisError> {
        if flag.key.is_empty() {
            return Err(RedisError::new(
                RedisErrorKind::Encode,
                "a flag without a key",
            ));
        }
        let key = self.flag_key(&flag.key);
        let json = encode(flag)?;
        let ttl = ttl_ms(self.redis.shared.options.flag_ttl());
        self.redis
            .shared
            .conn
            .run(move |mut c| async move { set(&mut c, &key, &json, ttl).await })
            .await
    }

    /// Writes every flag of `flags` and deletes the flags of this version
    /// that are not among them (a full flag set, as a bulk `Flags` message
    /// carries).
    pub async fn replace_flags(&self, flags: &[Flag]) -> Result<(), RedisError> {
        let mut entries = Vec::with_capacity(flags.len());
        for flag in flags.iter().filter(|f| !f.key.is_empty()) {
            entries.push((self.flag_key(&flag.key), encode(flag)?));
        }
        let ttl = ttl_ms(self.redis.shared.options.flag_ttl());
        let pattern = self.redis.shared.layout.flag_pattern(&self.version);
        self.redis
            .shared
            .conn
            .run(move |mut c| async move {
                let keep: HashSet<String> = entries.iter().map(|(k, _)| k.clone()).collect();
                if !entries.is_empty() {
                    let mut pipe = redis::pipe();
                    pipe.atomic();
                    for (key, json) in &entries {
                        let cmd = pipe.cmd("SET").arg(key).arg(json);
                        if ttl > 0 {
                            cmd.arg("PX").arg(ttl);
                        }
                        cmd.ignore();
                    }
                    pipe.query_async::<()>(&mut c)
                        .await
                        .map_err(|e| from_redis("SET flags", &e))?;
                }
                let stale: Vec<String> = scan(&mut c, &pattern)
                    .await?
                    .into_iter()
                    .filter(|k| !keep.contains(k))
                    .collect();
                if !stale.is_empty() {
                    redis::cmd("DEL")
                        .arg(&stale)
                        .query_async::<()>(&mut c)
                        .await
                        .map_err(|e| from_redis("DEL flags", &e))?;
                }
                Ok(())
            })
            .await
    }

    /// Deletes the flag `key`.
    pub async fn delete_flag(&self, key: &str) -> Result<(), RedisError> {
        let key = self.flag_key(key);
        self.redis
            .shared
            .conn
            .run(move |mut c| async move {
                redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<()>(&mut c)
                    .await
                    .map_err(|e| from_redis("DEL", &e))
            })
            .await
    }

    // -----------------------------------------------------------------------
    // Companies and users
    // -----------------------------------------------------------------------

    /// The company with this id, if present and well formed.
    pub async fn company(&self, id: &str) -> Result<Option<Company>, RedisError> {
        self.by_id(id).await
    }

    /// The user with this id, if present and well formed.
    pub async fn user(&self, id: &str) -> Result<Option<User>, RedisError> {
        self.by_id(id).await
    }

    /// The company the caller's keys lead to (case-insensitively).
    pub async fn find_company(&self, keys: &dyn KeyPairs) -> Result<Found<Company>, RedisError> {
        self.find(keys).await
    }

    /// The user the caller's keys lead to.
    pub async fn find_user(&self, keys: &dyn KeyPairs) -> Result<Found<User>, RedisError> {
        self.find(keys).await
    }

    /// Writes a company and its lookup keys (see the type's docs).
    pub async fn write_company(&self, company: &Company) -> Result<(), RedisError> {
        self.write(company).await
    }

    /// Writes a user and its lookup keys.
    pub async fn write_user(&self, user: &User) -> Result<(), RedisError> {
        self.write(user).await
    }

    /// Deletes a company and every lookup key leading to it (those of the
    /// stored version and those in `keys`).
    pub async fn delete_company(
        &self,
        id: &str,
        keys: &BTreeMap<String, String>,
    ) -> Result<(), RedisError> {
        self.delete::<Company>(id, keys).await
    }

    /// Deletes a user and every lookup key leading to it.
    pub async fn delete_user(
        &self,
        id: &str,
        keys: &BTreeMap<String, String>,
    ) -> Result<(), RedisError> {
        self.delete::<User>(id, keys).await
    }

    async fn by_id<T: Entity>(&self, id: &str) -> Result<Option<T>, RedisError> {
        let key = self.entity_key(T::KIND, id);
        let json = self.get_text(key.clone()).await?;
        Ok(self.parse(&key, json))
    }

    /// The lookup keys of every pair of `keys`.
    pub(crate) fn lookup_keys(&self, kind: EntityKind, keys: &dyn KeyPairs) -> Vec<String> {
        let mut out = Vec::with_capacity(keys.pair_count());
        keys.try_for_each_pair(&mut |name, value| {
            out.push(self.lookup_key(kind, name, value));
            true
        });
        out
    }

    async fn find<T: Entity>(&self, keys: &dyn KeyPairs) -> Result<Found<T>, RedisError> {
        let lookups = self.lookup_keys(T::KIND, keys);
        let (company, user) = match T::KIND {
            EntityKind::Company => (lookups, Vec::new()),
            EntityKind::User => (Vec::new(), lookups),
        };
        let fetched = self.fetch(None, company, user).await?;
        let slot = match T::KIND {
            EntityKind::Company => fetched.company,
            EntityKind::User => fetched.user,
        };
        Ok(match slot {
            Slot::Missing => Found::Missing,
            Slot::Conflict => Found::Conflict,
            Slot::Json(json) => match self.parse::<T>("(entity by lookup)", Some(json)) {
                Some(entity) => Found::One(entity),
                None => Found::Missing,
            },
        })
    }

    /// The flag (when `flag` is given) and the entities the lookup keys lead
    /// to, in one round trip.
    pub(crate) async fn fetch(
        &self,
        flag: Option<&str>,
        company: Vec<String>,
        user: Vec<String>,
    ) -> Result<Fetched, RedisError> {
        let flag_key = flag.map(|f| self.flag_key(f)).unwrap_or_default();
        let company_prefix = self
            .redis
            .shared
            .layout
            .entity_prefix(EntityKind::Company, &self.version);
        let user_prefix = self
            .redis
            .shared
            .layout
            .entity_prefix(EntityKind::User, &self.version);
        let (flag, c_status, c_json, u_status, u_json) = self
            .redis
            .shared
            .conn
            .run(move |mut c| async move {
                let mut invocation = FETCH.prepare_invoke();
                invocation
                    .arg(&flag_key)
                    .arg(&company_prefix)
                    .arg(company.len())
                    .arg(&user_prefix)
                    .arg(user.len());
                for key in company.iter().chain(&user) {
                    invocation.arg(key);
                }
                invocation
                    .invoke_async::<(Option<String>, i64, Option<String>, i64, Option<String>)>(
                        &mut c,
                    )
                    .await
                    .map_err(|e| from_redis("EVALSHA fetch", &e))
            })
            .await?;
        let slot = |status: i64, json: Option<String>| match (status, json) {
            (1, Some(json)) => Slot::Json(json),
            (2, _) => Slot::Conflict,
            _ => Slot::Missing,
        };
        Ok(Fetched {
            flag,
            company: slot(c_status, c_json),
            user: slot(u_status, u_json),
        })
    }

    async fn write<T: Entity>(&self, entity: &T) -> Result<(), RedisError> {
        if entity.id().is_empty() || entity.keys().is_empty() {
            return Err(RedisError::new(
                RedisErrorKind::Encode,
                "an entity without an id or keys cannot be found; not written",
            ));
        }
        let entity_key = self.entity_key(T::KIND, entity.id());
        let json = encode(entity)?;
        let new: Vec<String> = self.lookup_keys(T::KIND, entity.keys());
        // The stored version's keys, to remove the ones this one lacks.
        let old = self.get_text(entity_key.clone()).await?;
        let stale: Vec<String> = match self.parse::<T>(&entity_key, old) {
            Some(old) => stale_lookups(old.keys(), entity.keys())
                .map(|(name, value)| self.lookup_key(T::KIND, name, value))
                .collect(),
            None => Vec::new(),
        };
        let id = entity.id().to_owned();
        let ttl = ttl_ms(self.redis.shared.options.entity_ttl);
        self.redis
            .shared
            .conn
            .run(move |mut c| async move {
                let mut invocation = UPSERT.prepare_invoke();
                invocation.key(&entity_key);
                for key in new.iter().chain(&stale) {
                    invocation.key(key);
                }
                invocation.arg(&json).arg(&id).arg(ttl).arg(new.len());
                invocation
                    .invoke_async::<Value>(&mut c)
                    .await
                    .map(drop)
                    .map_err(|e| from_redis("EVALSHA upsert", &e))
            })
            .await
    }

    async fn delete<T: Entity>(
        &self,
        id: &str,
        keys: &BTreeMap<String, String>,
    ) -> Result<(), RedisError> {
        let entity_key = self.entity_key(T::KIND, id);
        let old = self.get_text(entity_key.clone()).await?;
        let mut lookups = self.lookup_keys(T::KIND, keys);
        if let Some(old) = self.parse::<T>(&entity_key, old) {
            lookups.extend(
                stale_lookups(old.keys(), keys)
                    .map(|(name, value)| self.lookup_key(T::KIND, name, value)),
            );
        }
        let id = id.to_owned();
        self.redis
            .shared
            .conn
            .run(move |mut c| async move {
                let mut invocation = DELETE.prepare_invoke();
                invocation.key(&entity_key);
                for key in &lookups {
                    invocation.key(key);
                }
                invocation.arg(&id);
                invocation
                    .invoke_async::<Value>(&mut c)
                    .await
                    .map(drop)
                    .map_err(|e| from_redis("EVALSHA delete", &e))
            })
            .await
    }
}

async fn set(
    c: &mut ConnectionManager,
    key: &str,
    value: &str,
    ttl_ms: u64,
) -> Result<(), RedisError> {
    let mut cmd = redis::cmd("SET");
    cmd.arg(key).arg(value);
    if ttl_ms > 0 {
        cmd.arg("PX").arg(ttl_ms);
    }
    cmd.query_async::<()>(c)
        .await
        .map_err(|e| from_redis("SET", &e))
}

/// Every key matching `pattern` (`SCAN`, in batches).
async fn scan(c: &mut ConnectionManager, pattern: &str) -> Result<Vec<String>, RedisError> {
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(c)
            .await
            .map_err(|e| from_redis("SCAN", &e))?;
        out.extend(keys);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::RedisOptions;

    fn store(prefix: &str, version: &str) -> RedisEntityStore {
        Redis::open(RedisOptions::new("redis://127.0.0.1:1").prefix(prefix))
            .expect("a lazy handle")
            .entity_store()
            .with_version(version)
    }

    #[test]
    fn keys_follow_the_replicator_layout() {
        let s = store("schematic", "14269364");
        assert_eq!(
            s.flag_key("New-Editor"),
            "schematic:flags:14269364:new-editor"
        );
        let s = s.with_version("1");
        assert_eq!(
            s.entity_key(EntityKind::Company, "Co_ABC"),
            "schematic:company:1:Co_ABC"
        );
        assert_eq!(
            s.lookup_key(EntityKind::Company, "Domain", "ACME.com"),
            "schematic:company:1:domain:acme.com"
        );
        assert_eq!(
            s.with_version("v2")
                .lookup_key(EntityKind::User, "Email", "Ä@x"),
            "schematic:user:v2:email:ä@x"
        );
        assert_eq!(store("app:sch", "1").flag_key("x"), "app:sch:flags:1:x");
        // An empty prefix keeps the leading `:` this crate always wrote.
        let s = store("", "1");
        assert_eq!(s.flag_key("X"), ":flags:1:x");
        assert_eq!(s.entity_key(EntityKind::User, "u"), ":user:1:u");
        assert_eq!(s.lookup_key(EntityKind::User, "id", "U"), ":user:1:id:u");
    }
}
