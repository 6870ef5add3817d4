//! [`RedisFlagCache`]: API answers shared through Redis.

use std::fmt;
use std::time::Duration;

use flagwire_core::schematic::models::FeatureEntitlement;
use serde::{Deserialize, Serialize};

use super::Redis;
use super::conn::from_redis;
use crate::cache::{CacheError, FlagCache, FlagCacheKey, LocalFlagCache};
use crate::schematic::{CachedCheck, CheckSource, FlagCheck};

/// Default lifetime of an answer in Redis (the local cache's 5 s).
pub const DEFAULT_REDIS_TTL: Duration = Duration::from_secs(5);
/// Default time a key Redis had no answer for is not asked again.
pub const DEFAULT_MISS_TTL: Duration = Duration::from_millis(100);

/// The stored form of an answer (snake_case JSON).
#[derive(Serialize, Deserialize)]
struct Stored {
    flag: String,
    value: bool,
    reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rule_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rule_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flag_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    company_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entitlement: Option<FeatureEntitlement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    feature_usage: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    feature_allocation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Stored {
    fn of(check: &FlagCheck) -> Self {
        Stored {
            flag: check.flag.clone(),
            value: check.value,
            reason: check.reason.clone(),
            rule_id: check.rule_id.clone(),
            rule_type: check.rule_type.clone(),
            flag_id: check.flag_id.clone(),
            company_id: check.company_id.clone(),
            user_id: check.user_id.clone(),
            entitlement: check.entitlement.clone(),
            feature_usage: check.feature_usage,
            feature_allocation: check.feature_allocation,
            error: check.error.clone(),
        }
    }

    fn into_check(self) -> FlagCheck {
        FlagCheck {
            flag: self.flag,
            value: self.value,
            reason: self.reason,
            rule_id: self.rule_id,
            rule_type: self.rule_type,
            flag_id: self.flag_id,
            company_id: self.company_id,
            user_id: self.user_id,
            entitlement: self.entitlement,
            feature_usage: self.feature_usage,
            feature_allocation: self.feature_allocation,
            error: self.error,
            source: CheckSource::Api,
        }
    }
}

/// A flag-check cache shared through Redis: API answers one client fetched
/// serve every client on the same Redis. Plug it in with
/// [`ClientBuilder::cache`](crate::schematic::ClientBuilder::cache).
///
/// A small in-process [`LocalFlagCache`] sits in front: a hit there costs
/// no round trip. On a local miss the answer is read from Redis (key
/// `<prefix>:flag_check:<canonical key>`, see
/// [`FlagCacheKey::canonical`]), blocking the calling thread for at most the
/// command timeout, because [`FlagCache`] is synchronous. Writes go to
/// Redis in the background. After a failed read, Redis is skipped for one
/// second, so an outage costs a check at most one timeout a second; a key
/// Redis had no answer for is not asked again for 100 ms
/// ([`miss_ttl`](RedisFlagCacheBuilder::miss_ttl)), so a check that goes on
/// to the API reads Redis once; values that do not parse are skipped and
/// counted.
///
/// ```no_run
/// use std::time::Duration;
/// use flagwire::redis::{Redis, RedisFlagCache, RedisOptions};
/// use flagwire::schematic::Client;
///
/// let redis = Redis::open(RedisOptions::new("redis://127.0.0.1:6379"))?;
/// let cache = RedisFlagCache::builder(redis)
///     .ttl(Duration::from_secs(10))
///     .local_ttl(Duration::from_secs(1))
///     .build();
/// let client = Client::builder("sch_dev_example").cache(cache).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RedisFlagCache {
    redis: Redis,
    local: LocalFlagCache<CachedCheck>,
    misses: LocalFlagCache<()>,
    ttl: Duration,
}

impl fmt::Debug for RedisFlagCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisFlagCache")
            .field("redis", &self.redis)
            .field("ttl", &self.ttl)
            .field("local_capacity", &self.local.capacity())
            .field("local_ttl", &self.local.ttl())
            .finish()
    }
}

/// Builds a [`RedisFlagCache`].
#[derive(Debug)]
pub struct RedisFlagCacheBuilder {
    redis: Redis,
    ttl: Duration,
    local_capacity: usize,
    local_ttl: Duration,
    miss_ttl: Duration,
}

impl RedisFlagCacheBuilder {
    /// How long a key Redis had no answer for is not asked again (default
    /// 100 ms; zero asks every time).
    #[must_use]
    pub fn miss_ttl(mut self, ttl: Duration) -> Self {
        self.miss_ttl = ttl;
        self
    }

    /// Lifetime of an answer in Redis (default 5 s).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// Entries of the in-process layer (default 1,000).
    #[must_use]
    pub fn local_capacity(mut self, capacity: usize) -> Self {
        self.local_capacity = capacity;
        self
    }

    /// Lifetime of an entry in the in-process layer (default 5 s; at most
    /// the Redis TTL is sensible).
    #[must_use]
    pub fn local_ttl(mut self, ttl: Duration) -> Self {
        self.local_ttl = ttl;
        self
    }

    /// The cache.
    pub fn build(self) -> RedisFlagCache {
        RedisFlagCache {
            redis: self.redis,
            local: LocalFlagCache::builder()
                .capacity(self.local_capacity)
                .ttl(self.local_ttl)
                .build(),
            misses: LocalFlagCache::builder()
                .capacity(self.local_capacity)
                .ttl(self.miss_ttl)
                .build(),
            ttl: self.ttl,
        }
    }
}

impl RedisFlagCache {
    /// A builder over `redis`.
    pub fn builder(redis: Redis) -> RedisFlagCacheBuilder {
        RedisFlagCacheBuilder {
            redis,
            ttl: DEFAULT_REDIS_TTL,
            local_capacity: crate::cache::DEFAULT_CAPACITY,
            local_ttl: crate::cache::DEFAULT_TTL,
            miss_ttl: DEFAULT_MISS_TTL,
        }
    }

    /// The Redis handle (for its [`stats`](Redis::stats)).
    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// The in-process layer.
    pub fn local(&self) -> &LocalFlagCache<CachedCheck> {
        &self.local
    }

    fn read_redis(&self, key: &FlagCacheKey<'_>) -> Result<Option<CachedCheck>, CacheError> {
        if !self.misses.ttl().is_zero() && self.misses.peek_with(key, |_| ()).is_some() {
            return Ok(None);
        }
        let redis_key = self.redis.shared.layout.flag_check(&key.canonical());
        let read_key = redis_key.clone();
        let json = self
            .redis
            .shared
            .conn
            .run_blocking(move |mut c| async move {
                redis::cmd("GET")
                    .arg(&read_key)
                    .query_async::<Option<String>>(&mut c)
                    .await
                    .map_err(|e| from_redis("GET", &e))
            })
            .map_err(|e| CacheError::with_source("redis read", e))?;
        let Some(json) = json else {
            if !self.misses.ttl().is_zero() {
                let _ = FlagCache::insert(&self.misses, key, ());
            }
            return Ok(None);
        };
        match serde_json::from_str::<Stored>(&json) {
            Ok(stored) => {
                let check = CachedCheck::new(stored.into_check());
                // Failures of the local layer cannot happen; ignore them.
                let _ = FlagCache::insert(&self.local, key, check.clone());
                Ok(Some(check))
            }
            Err(e) => {
                self.redis.shared.count_corrupt(&redis_key, &e);
                Ok(None)
            }
        }
    }
}

impl FlagCache<CachedCheck> for RedisFlagCache {
    fn get(&self, key: &FlagCacheKey<'_>) -> Result<Option<CachedCheck>, CacheError> {
        if let Some(hit) = self.local.peek_with(key, CachedCheck::clone) {
            return Ok(Some(hit));
        }
        self.read_redis(key)
    }

    fn insert(&self, key: &FlagCacheKey<'_>, value: CachedCheck) -> Result<(), CacheError> {
        let json = serde_json::to_string(&Stored::of(&value))
            .map_err(|e| CacheError::with_source("encoding a check", e))?;
        let _ = FlagCache::insert(&self.local, key, value);
        self.misses.remove(key);
        let redis_key = self.redis.shared.layout.flag_check(&key.canonical());
        let ttl = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        self.redis.shared.conn.spawn(move |mut c| async move {
            redis::cmd("SET")
                .arg(&redis_key)
                .arg(&json)
                .arg("PX")
                .arg(ttl)
                .query_async::<()>(&mut c)
                .await
                .map_err(|e| from_redis("SET", &e))
        });
        Ok(())
    }

    fn peek(
        &self,
        key: &FlagCacheKey<'_>,
        f: &mut dyn FnMut(&CachedCheck),
    ) -> Result<bool, CacheError> {
        let mut lent = false;
        if self
            .local
            .peek_with(key, |v| {
                f(v);
                lent = true;
            })
            .is_some()
            && lent
        {
            return Ok(true);
        }
        Ok(match self.read_redis(key)? {
            Some(value) => {
                f(&value);
                true
            }
            None => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_form_round_trips_every_field() {
        let check = FlagCheck {
            flag: "f".into(),
            value: true,
            reason: "rule".into(),
            rule_id: Some("r".into()),
            rule_type: Some("standard".into()),
            flag_id: Some("flag_1".into()),
            company_id: Some("co_1".into()),
            user_id: Some("u_1".into()),
            entitlement: None,
            feature_usage: Some(3),
            feature_allocation: Some(10),
            error: Some("e".into()),
            source: CheckSource::Api,
        };
        let json = serde_json::to_string(&Stored::of(&check)).unwrap();
        assert!(json.contains("\"rule_id\":\"r\""), "{json}");
        let back = serde_json::from_str::<Stored>(&json).unwrap().into_check();
        assert_eq!(back, check);
        // Absent fields are absent, not null.
        let json = serde_json::to_string(&Stored::of(&FlagCheck {
            rule_id: None,
            ..check
        }))
        .unwrap();
        assert!(!json.contains("rule_id"));
    }
}
