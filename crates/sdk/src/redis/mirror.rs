//! Direct mode with Redis as a shared entity cache: what the socket brings
//! is written to Redis, and a company or user this process lacks is read
//! from Redis before the socket is asked.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flagwire_core::datastream::Message;
use flagwire_core::events::Keys;
use flagwire_core::rules::{Company, Flag, User};
use tokio::sync::mpsc;

use super::entities::{RedisEntityStore, Slot};
use super::{Redis, RedisOptions};
use crate::cache::KeyPairs;
use crate::context::Context;
use crate::datastream::store::Store;
use crate::datastream::waiters::EntityKind;

/// One write, in the order the socket delivered the changes.
pub(crate) enum Op {
    Flags(Vec<Flag>),
    Flag(Box<Flag>),
    DeleteFlag(String),
    Company(Box<Company>),
    DeleteCompany(String, Keys),
    User(Box<User>),
    DeleteUser(String, Keys),
}

/// What to write once a message is applied (patches are written as the
/// merged entity).
pub(crate) enum Pending {
    Ready(Op),
    Company(String),
    User(String),
}

/// The Redis side of a direct-mode DataStream.
pub(crate) struct Mirror {
    entities: RedisEntityStore,
    ops: mpsc::UnboundedSender<Op>,
    /// Entities found in Redis by checks.
    pub(crate) hits: AtomicU64,
}

impl Mirror {
    /// Opens Redis (a malformed URL is an error, an unreachable server is
    /// not) and starts the writer, which applies writes one at a time, in
    /// order.
    pub(crate) fn start(options: RedisOptions) -> Result<Arc<Mirror>, crate::Error> {
        let redis = Redis::open(options)?;
        let entities = redis.entity_store();
        let (ops, mut rx) = mpsc::unbounded_channel::<Op>();
        let writer = entities.clone();
        redis.shared.conn.handle().spawn(async move {
            while let Some(op) = rx.recv().await {
                // Failures are counted by the connection; the next write of
                // the entity repairs it.
                let _ = match op {
                    Op::Flags(flags) => writer.replace_flags(&flags).await,
                    Op::Flag(flag) => writer.write_flag(&flag).await,
                    Op::DeleteFlag(key) => writer.delete_flag(&key).await,
                    Op::Company(c) => writer.write_company(&c).await,
                    Op::DeleteCompany(id, keys) => writer.delete_company(&id, &keys).await,
                    Op::User(u) => writer.write_user(&u).await,
                    Op::DeleteUser(id, keys) => writer.delete_user(&id, &keys).await,
                };
            }
        });
        Ok(Arc::new(Mirror {
            entities,
            ops,
            hits: AtomicU64::new(0),
        }))
    }

    /// What `message` will need written (called before it is applied).
    pub(crate) fn before_apply(message: &Message) -> Option<Pending> {
        Some(match message {
            Message::Flags { flags, .. } => Pending::Ready(Op::Flags(flags.clone())),
            Message::Flag(flag) => Pending::Ready(Op::Flag(Box::new(flag.clone()))),
            Message::FlagDeleted { key, .. } => Pending::Ready(Op::DeleteFlag(key.clone())),
            Message::Company(c) => Pending::Ready(Op::Company(Box::new(c.clone()))),
            Message::CompanyPatch { id, .. } => Pending::Company(id.clone()),
            Message::CompanyDeleted { id, keys } => {
                Pending::Ready(Op::DeleteCompany(id.clone(), keys.clone()))
            }
            Message::User(u) => Pending::Ready(Op::User(Box::new(u.clone()))),
            Message::UserPatch { id, .. } => Pending::User(id.clone()),
            Message::UserDeleted { id, keys } => {
                Pending::Ready(Op::DeleteUser(id.clone(), keys.clone()))
            }
            _ => return None,
        })
    }

    /// Queues the write of an applied message.
    pub(crate) fn after_apply(&self, pending: Pending, store: &Store) {
        let op = match pending {
            Pending::Ready(op) => op,
            // A partial for an entity not cached was skipped: nothing new.
            Pending::Company(id) => match store.company(&id) {
                Some(company) => Op::Company(Box::new(company)),
                None => return,
            },
            Pending::User(id) => match store.user(&id) {
                Some(user) => Op::User(Box::new(user)),
                None => return,
            },
        };
        let _ = self.ops.send(op);
    }

    /// Reads from Redis, in one round trip, the company and user of
    /// `context` that `store` lacks, and adds those found. Returns the kinds
    /// found (to subscribe to, so that updates keep coming), or that the
    /// keys name different entities.
    pub(crate) async fn fill(
        &self,
        store: &Store,
        context: &Context<'_>,
    ) -> Result<Filled, String> {
        let lookups = |kind: EntityKind, keys: Option<&(dyn KeyPairs + Sync)>| -> Vec<String> {
            keys.filter(|k| !store.holds(kind, *k))
                .map_or_else(Vec::new, |keys| self.entities.lookup_keys(kind, keys))
        };
        let company = lookups(EntityKind::Company, context.company_keys());
        let user = lookups(EntityKind::User, context.user_keys());
        if company.is_empty() && user.is_empty() {
            return Ok(Filled::default());
        }
        let fetched = self
            .entities
            .fetch(None, company, user)
            .await
            .map_err(|e| e.to_string())?;
        let mut filled = Filled::default();
        match fetched.company {
            Slot::Conflict => filled.conflict = Some(EntityKind::Company),
            Slot::Json(json) => {
                if let Some(c) = self.entities.parse_entity::<Company>(json) {
                    store.upsert_company(c);
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    filled.company = true;
                }
            }
            Slot::Missing => {}
        }
        match fetched.user {
            Slot::Conflict => filled.conflict = filled.conflict.or(Some(EntityKind::User)),
            Slot::Json(json) => {
                if let Some(u) = self.entities.parse_entity::<User>(json) {
                    store.upsert_user(u);
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    filled.user = true;
                }
            }
            Slot::Missing => {}
        }
        Ok(filled)
    }
}

/// What [`Mirror::fill`] found.
#[derive(Debug, Default)]
pub(crate) struct Filled {
    pub(crate) company: bool,
    pub(crate) user: bool,
    pub(crate) conflict: Option<EntityKind>,
}
