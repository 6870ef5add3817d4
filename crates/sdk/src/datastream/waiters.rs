//! Checks waiting for an entity the local store does not hold yet.
//!
//! On a miss the check asks the server for the company (or user) and waits
//! a bounded time for it. Requests are coalesced: every key pair of the
//! caller's keys is registered, and a check whose pairs already have a
//! pending request joins it instead of sending another. The socket task
//! resolves a request when an entity carrying one of its pairs arrives,
//! fails it when the server answers `error` for those keys, and fails every
//! request when the connection drops (the checks then go to the REST API).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::lookup::PairKey;
use crate::cache::KeyPairs;

/// Company or user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum EntityKind {
    Company,
    User,
}

/// How a pending request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The entity arrived: look it up again.
    Arrived,
    /// It will not arrive (unknown keys, disconnect, ...).
    Failed(String),
}

/// One pending request, shared by every check waiting for it.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    outcome: OnceLock<Outcome>,
    notify: Notify,
    keys: Mutex<Vec<(EntityKind, PairKey)>>,
}

impl Pending {
    fn settle(&self, outcome: Outcome) {
        if self.outcome.set(outcome).is_ok() {
            self.notify.notify_waiters();
        }
    }

    /// Waits at most `timeout` for the request to settle; `None` on timeout.
    pub(crate) async fn wait(&self, timeout: Duration) -> Option<Outcome> {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(outcome) = self.outcome.get() {
            return Some(outcome.clone());
        }
        match tokio::time::timeout(timeout, notified).await {
            Ok(()) => self.outcome.get().cloned(),
            Err(_) => self.outcome.get().cloned(),
        }
    }
}

/// The registry of pending entity requests.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    pending: Mutex<HashMap<(EntityKind, PairKey), Arc<Pending>>>,
}

/// The result of [`Waiters::register`].
pub(crate) struct Registration {
    /// What to wait on.
    pub(crate) pending: Arc<Pending>,
    /// Whether this check must send the request (no one else asked yet).
    pub(crate) send: bool,
}

impl Waiters {
    /// Registers a wait for the entity identified by `keys`. Joins an
    /// existing request when one of the pairs already has one.
    pub(crate) fn register(&self, kind: EntityKind, keys: &dyn KeyPairs) -> Registration {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let mut pairs = Vec::with_capacity(keys.pair_count());
        let mut existing = None;
        keys.try_for_each_pair(&mut |name, value| {
            let key = (kind, PairKey::new(name, value));
            if existing.is_none()
                && let Some(p) = pending.get(&key)
            {
                existing = Some(p.clone());
            }
            pairs.push(key);
            true
        });
        let (shared, send) = match existing {
            Some(p) => (p, false),
            None => (Arc::new(Pending::default()), true),
        };
        {
            let mut keys = shared.keys.lock().unwrap_or_else(PoisonError::into_inner);
            for key in pairs {
                if !pending.contains_key(&key) {
                    pending.insert(key.clone(), shared.clone());
                    keys.push(key);
                }
            }
        }
        Registration {
            pending: shared,
            send,
        }
    }

    /// Settles every request registered under one of `pairs`.
    pub(crate) fn settle<'a>(
        &self,
        kind: EntityKind,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        outcome: &Outcome,
    ) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.is_empty() {
            return;
        }
        let mut settled: Vec<Arc<Pending>> = Vec::new();
        for (name, value) in pairs {
            if let Some(p) = pending.remove(&(kind, PairKey::new(name, value)))
                && !settled.iter().any(|s| Arc::ptr_eq(s, &p))
            {
                settled.push(p);
            }
        }
        for p in settled {
            // Drop the request's other pairs too, so a later miss asks again.
            let keys = std::mem::take(&mut *p.keys.lock().unwrap_or_else(PoisonError::into_inner));
            for key in keys {
                if pending.get(&key).is_some_and(|q| Arc::ptr_eq(q, &p)) {
                    pending.remove(&key);
                }
            }
            p.settle(outcome.clone());
        }
    }

    /// Fails every pending request (the connection dropped or stopped).
    pub(crate) fn fail_all(&self, reason: &str) {
        let drained: Vec<Arc<Pending>> = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.drain().map(|(_, p)| p).collect()
        };
        for p in drained {
            p.settle(Outcome::Failed(reason.to_owned()));
        }
    }

    /// Number of distinct pending key pairs.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_are_coalesced_and_settled_by_any_pair() {
        let waiters = Waiters::default();
        let first = waiters.register(EntityKind::Company, &[("id", "acme"), ("slug", "a")]);
        assert!(first.send);
        // Another check for the same company by one of its keys joins the request.
        let second = waiters.register(EntityKind::Company, &[("SLUG", "A")]);
        assert!(!second.send);
        assert!(Arc::ptr_eq(&first.pending, &second.pending));
        // A user with the same pair is another request.
        let user = waiters.register(EntityKind::User, &[("id", "acme")]);
        assert!(user.send);

        waiters.settle(EntityKind::Company, [("id", "acme")], &Outcome::Arrived);
        assert_eq!(
            second.pending.wait(Duration::from_secs(1)).await,
            Some(Outcome::Arrived)
        );
        // Only the user's pair is left.
        assert_eq!(waiters.len(), 1);
        let again = waiters.register(EntityKind::Company, &[("slug", "a")]);
        assert!(again.send, "a settled request is not joined again");
    }

    #[tokio::test]
    async fn a_wait_times_out_and_a_failure_reaches_every_waiter() {
        let waiters = Waiters::default();
        let r = waiters.register(EntityKind::User, &[("email", "a@b.c")]);
        assert_eq!(r.pending.wait(Duration::from_millis(20)).await, None);
        let waiting = tokio::spawn({
            let p = r.pending.clone();
            async move { p.wait(Duration::from_secs(5)).await }
        });
        tokio::task::yield_now().await;
        waiters.fail_all("disconnected");
        assert_eq!(
            waiting.await.unwrap(),
            Some(Outcome::Failed("disconnected".into()))
        );
        assert_eq!(waiters.len(), 0);
    }
}
