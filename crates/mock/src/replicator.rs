//! The emulator playing `schematic-datastream-replicator` (feature `redis`):
//! its flags, companies and users written into a Redis in the replicator's
//! key layout, and kept current as they change.
//!
//! Keys (no expiry, as the replicator writes them by default):
//!
//! ```text
//! <prefix>:flags:<ver>:<lower flag key>          flag JSON
//! <prefix>:company:<ver>:<id>                    company JSON
//! <prefix>:company:<ver>:<lower name>:<lower v>  company id
//! <prefix>:user:<ver>:<id> / …:<name>:<value>    the same for users
//! <prefix>:datastream:writer_lock                held while writing (15 s, renewed)
//! ```
//!
//! `<ver>` is the `cache_version` the emulator's `GET /ready` reports
//! ([`MockServerBuilder::cache_version`](crate::MockServerBuilder::cache_version)).
//! Values are the rules-engine models the REST checks evaluate, as
//! snake_case JSON, so a client evaluating from Redis reaches the REST
//! verdict.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use flagwire_core::datastream::CacheKeys;
use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, watch};

use crate::error::MockError;
use crate::server::MockServer;
use crate::store::{Refreshed, Store};

/// How long the writer lock lives without renewal.
const WRITER_LOCK_TTL: Duration = Duration::from_secs(15);

/// Which entity an [`Op`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Company,
    User,
}

/// One write, in the order the changes happened.
#[derive(Debug, Clone)]
enum Op {
    /// Every flag of the version is replaced by these (key, JSON).
    Flags(Vec<(String, String)>),
    /// An entity written: kind, id, JSON, its keys now, its keys before.
    Put(
        Kind,
        String,
        String,
        Vec<(String, String)>,
        Vec<(String, String)>,
    ),
    /// An entity removed: kind, id, the keys it had.
    Delete(Kind, String, Vec<(String, String)>),
}

/// The running emulation.
#[derive(Debug)]
pub(crate) struct Replicator {
    ops: mpsc::UnboundedSender<Op>,
    queued: AtomicU64,
    applied: watch::Receiver<u64>,
    errors: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
}

/// Where the emulation lives on the server.
#[derive(Debug, Default)]
pub(crate) struct Slot(Mutex<Option<Replicator>>);

fn pairs(keys: impl Iterator<Item = (impl AsRef<str>, impl AsRef<str>)>) -> Vec<(String, String)> {
    keys.map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
        .collect()
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Replicator>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues the writes a store refresh calls for (called with the store's
    /// write lock held, so writes are queued in the order changes happen).
    pub(crate) fn publish(&self, store: &Store, replaced: &Refreshed) {
        let guard = self.lock();
        let Some(replicator) = guard.as_ref() else {
            return;
        };
        for op in ops(store, replaced) {
            replicator.queued.fetch_add(1, Ordering::AcqRel);
            let _ = replicator.ops.send(op);
        }
    }
}

/// The writes for a refresh: flags (all of them) when they changed, then
/// each company and user written or removed.
fn ops(store: &Store, replaced: &Refreshed) -> Vec<Op> {
    let mut out = Vec::new();
    if replaced.flags.is_some() {
        out.push(all_flags(store));
    }
    for (id, old) in &replaced.companies {
        let old_keys = old.as_ref().map(|c| pairs(c.keys())).unwrap_or_default();
        match store.prepared_companies.get(id) {
            Some(company) => out.push(Op::Put(
                Kind::Company,
                id.clone(),
                serde_json::to_string(&company.to_company()).unwrap_or_default(),
                pairs(company.keys()),
                old_keys,
            )),
            None => out.push(Op::Delete(Kind::Company, id.clone(), old_keys)),
        }
    }
    for (id, old) in &replaced.users {
        let old_keys = old
            .as_ref()
            .map(|u| pairs(u.user().keys.iter()))
            .unwrap_or_default();
        match store.prepared_users.get(id) {
            Some(user) => out.push(Op::Put(
                Kind::User,
                id.clone(),
                serde_json::to_string(user.user()).unwrap_or_default(),
                pairs(user.user().keys.iter()),
                old_keys,
            )),
            None => out.push(Op::Delete(Kind::User, id.clone(), old_keys)),
        }
    }
    out
}

fn all_flags(store: &Store) -> Op {
    Op::Flags(
        store
            .engine
            .flags()
            .map(|c| {
                let flag = c.flag();
                (
                    flag.key.clone(),
                    serde_json::to_string(flag).unwrap_or_default(),
                )
            })
            .collect(),
    )
}

/// The full state, as the replicator's initial load writes it.
fn full_state(store: &Store) -> Vec<Op> {
    let mut out = vec![all_flags(store)];
    let mut companies: Vec<_> = store.prepared_companies.iter().collect();
    companies.sort_by(|a, b| a.0.cmp(b.0));
    for (id, company) in companies {
        out.push(Op::Put(
            Kind::Company,
            id.clone(),
            serde_json::to_string(&company.to_company()).unwrap_or_default(),
            pairs(company.keys()),
            Vec::new(),
        ));
    }
    let mut users: Vec<_> = store.prepared_users.iter().collect();
    users.sort_by(|a, b| a.0.cmp(b.0));
    for (id, user) in users {
        out.push(Op::Put(
            Kind::User,
            id.clone(),
            serde_json::to_string(user.user()).unwrap_or_default(),
            pairs(user.user().keys.iter()),
            Vec::new(),
        ));
    }
    out
}

/// The keys of one prefix and version: the shared layout
/// ([`CacheKeys`]) and the writer lock.
struct Keys {
    prefix: String,
    cache: CacheKeys,
}

impl Keys {
    fn new(prefix: &str, version: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
            cache: CacheKeys::new(prefix, version),
        }
    }
    fn version(&self) -> &str {
        self.cache.version()
    }
    /// A key written by `write`; with an empty prefix it starts with `:`,
    /// like the writer lock.
    fn build(&self, write: impl FnOnce(&CacheKeys, &mut String)) -> String {
        let mut out = String::with_capacity(64);
        if self.prefix.is_empty() {
            out.push(':');
        }
        write(&self.cache, &mut out);
        out
    }
    fn flag(&self, key: &str) -> String {
        self.build(|k, out| k.write_flag(out, key))
    }
    /// What every flag key of the version starts with.
    fn flags_prefix(&self) -> String {
        self.build(|k, out| out.push_str(&k.flags_prefix()))
    }
    fn entity(&self, kind: Kind, id: &str) -> String {
        self.build(|k, out| match kind {
            Kind::Company => k.write_company(out, id),
            Kind::User => k.write_user(out, id),
        })
    }
    fn lookup(&self, kind: Kind, name: &str, value: &str) -> String {
        self.build(|k, out| match kind {
            Kind::Company => k.write_company_lookup(out, name, value),
            Kind::User => k.write_user_lookup(out, name, value),
        })
    }
    fn writer_lock(&self) -> String {
        format!("{}:datastream:writer_lock", self.prefix)
    }
}

async fn scan(c: &mut ConnectionManager, pattern: &str) -> redis::RedisResult<Vec<String>> {
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
            .await?;
        out.extend(keys);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

async fn apply(c: &mut ConnectionManager, keys: &Keys, op: Op) -> redis::RedisResult<()> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    match op {
        Op::Flags(flags) => {
            let keep: std::collections::HashSet<String> =
                flags.iter().map(|(k, _)| keys.flag(k)).collect();
            let existing = scan(c, &format!("{}*", keys.flags_prefix())).await?;
            for (key, json) in &flags {
                pipe.cmd("SET").arg(keys.flag(key)).arg(json).ignore();
            }
            for key in existing.iter().filter(|k| !keep.contains(*k)) {
                pipe.cmd("DEL").arg(key).ignore();
            }
        }
        Op::Put(kind, id, json, now, before) => {
            let now_keys: Vec<String> = now.iter().map(|(k, v)| keys.lookup(kind, k, v)).collect();
            pipe.cmd("SET")
                .arg(keys.entity(kind, &id))
                .arg(json)
                .ignore();
            for key in &now_keys {
                pipe.cmd("SET").arg(key).arg(&id).ignore();
            }
            for (k, v) in &before {
                let key = keys.lookup(kind, k, v);
                if !now_keys.contains(&key) {
                    pipe.cmd("DEL").arg(key).ignore();
                }
            }
        }
        Op::Delete(kind, id, before) => {
            pipe.cmd("DEL").arg(keys.entity(kind, &id)).ignore();
            for (k, v) in &before {
                pipe.cmd("DEL").arg(keys.lookup(kind, k, v)).ignore();
            }
        }
    }
    pipe.query_async::<()>(c).await
}

impl MockServer {
    /// Plays the replicator: writes every flag, company and user into the
    /// Redis at `url` under `prefix` (`schematic` in the official
    /// deployment) and the emulator's `cache_version`, after deleting what
    /// that version held there, then keeps Redis current with every change
    /// (in order). Replaces an emulation already running.
    ///
    /// # Errors
    ///
    /// [`MockError::Redis`] when the URL is malformed or Redis cannot be
    /// reached for the initial load.
    pub async fn start_redis_replicator(&self, url: &str, prefix: &str) -> Result<(), MockError> {
        let client = redis::Client::open(url).map_err(|e| MockError::Redis(e.to_string()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| MockError::Redis(e.to_string()))?;
        let keys = Keys::new(prefix, self.inner.datastream.cache_version());
        for kind in ["flags", "company", "user"] {
            let pattern = format!("{}:{kind}:{}:*", keys.prefix, keys.version());
            let stale = scan(&mut conn, &pattern)
                .await
                .map_err(|e| MockError::Redis(e.to_string()))?;
            if !stale.is_empty() {
                redis::cmd("DEL")
                    .arg(&stale)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| MockError::Redis(e.to_string()))?;
            }
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (applied_tx, applied) = watch::channel(0u64);
        let (errors_tx, errors) = watch::channel(0u64);
        let (stop, mut stopped) = watch::channel(false);
        {
            // Under the store lock, so no change slips between the full
            // state and the live updates.
            let store = self.inner.read();
            let mut slot = self.inner.replicator.lock();
            let initial = full_state(&store);
            let queued = AtomicU64::new(initial.len() as u64);
            for op in initial {
                let _ = tx.send(op);
            }
            if let Some(old) = slot.replace(Replicator {
                ops: tx,
                queued,
                applied,
                errors,
                stop,
            }) {
                let _ = old.stop.send(true);
            }
        }
        tokio::spawn(async move {
            let lock_key = keys.writer_lock();
            let mut renew = tokio::time::interval(WRITER_LOCK_TTL / 3);
            let mut done = 0u64;
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = renew.tick() => {
                        let _ = redis::cmd("SET")
                            .arg(&lock_key)
                            .arg("flagwire-mock")
                            .arg("PX")
                            .arg(WRITER_LOCK_TTL.as_millis() as u64)
                            .query_async::<()>(&mut conn)
                            .await;
                    }
                    op = rx.recv() => {
                        let Some(op) = op else { break };
                        // A failed write is retried a few times, then counted.
                        let mut attempts = 0;
                        let mut pending = Some(op);
                        while let Some(op) = pending.take() {
                            let retry = op.clone();
                            if let Err(e) = apply(&mut conn, &keys, op).await {
                                attempts += 1;
                                tracing::debug!(error = %e, "replicator emulation: write failed");
                                if attempts < 20 && !*stopped.borrow() {
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                    pending = Some(retry);
                                } else {
                                    errors_tx.send_modify(|n| *n += 1);
                                }
                            }
                        }
                        done += 1;
                        applied_tx.send_replace(done);
                    }
                }
            }
            let _ = redis::cmd("DEL")
                .arg(&lock_key)
                .query_async::<()>(&mut conn)
                .await;
        });
        Ok(())
    }

    /// Waits until every change made so far has been written to Redis (or
    /// given up on), at most `timeout`; true when it has.
    pub async fn redis_replicator_synced(&self, timeout: Duration) -> bool {
        let (target, mut applied) = {
            let slot = self.inner.replicator.lock();
            match slot.as_ref() {
                None => return true,
                Some(r) => (r.queued.load(Ordering::Acquire), r.applied.clone()),
            }
        };
        let wait = applied.wait_for(|done| *done >= target);
        matches!(tokio::time::timeout(timeout, wait).await, Ok(Ok(_)))
    }

    /// Writes the emulation gave up on after retrying (Redis unreachable).
    pub fn redis_replicator_failures(&self) -> u64 {
        self.inner
            .replicator
            .lock()
            .as_ref()
            .map_or(0, |r| *r.errors.borrow())
    }

    /// Stops the emulation (and releases its writer lock); what it wrote
    /// stays in Redis.
    pub fn stop_redis_replicator(&self) {
        if let Some(r) = self.inner.replicator.lock().take() {
            let _ = r.stop.send(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_replicator_layout() {
        let k = Keys::new("schematic", "v1");
        assert_eq!(k.flag("New-Editor"), "schematic:flags:v1:new-editor");
        assert_eq!(k.entity(Kind::Company, "Co_1"), "schematic:company:v1:Co_1");
        assert_eq!(
            k.lookup(Kind::User, "Email", "A@B"),
            "schematic:user:v1:email:a@b"
        );
        assert_eq!(k.writer_lock(), "schematic:datastream:writer_lock");
        assert_eq!(k.flags_prefix(), "schematic:flags:v1:");
        // An empty prefix keeps the leading `:` the emulator always wrote.
        let k = Keys::new("", "v1");
        assert_eq!(k.flag("F"), ":flags:v1:f");
        assert_eq!(k.flags_prefix(), ":flags:v1:");
        assert_eq!(k.entity(Kind::User, "U"), ":user:v1:U");
        assert_eq!(k.lookup(Kind::Company, "Id", "X"), ":company:v1:id:x");
        assert_eq!(k.writer_lock(), ":datastream:writer_lock");
    }
}
