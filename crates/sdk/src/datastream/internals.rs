//! Not part of the public API: direct access to the local store for
//! flagwire's own benchmarks (memory per entity, evaluation without a
//! socket). It may change or disappear in any release.

use flagwire_core::datastream::parse_message;
use flagwire_core::rules::CheckOptions;

use super::store::{Limits, Local, Store};
use super::waiters::Waiters;
use crate::context::Context;

/// A local store fed with DataStream frames by hand.
pub struct StoreForBenchmarks {
    store: Store,
    waiters: Waiters,
}

impl StoreForBenchmarks {
    /// An empty store holding at most `max_entities` companies (and users).
    pub fn new(max_entities: usize) -> Self {
        StoreForBenchmarks {
            store: Store::new(Limits {
                companies: max_entities.max(1),
                users: max_entities.max(1),
                ttl: super::DEFAULT_ENTITY_TTL,
            }),
            waiters: Waiters::default(),
        }
    }

    /// Decodes and applies one server frame.
    pub fn apply(&self, frame: &str) -> Result<(), String> {
        let received = parse_message(frame).map_err(|e| e.to_string())?;
        self.store.apply(received, &self.waiters);
        Ok(())
    }

    /// A local check, as the client makes it: `None` when it could not be
    /// answered from memory.
    pub fn check(&self, flag: &str, context: &Context<'_>) -> Option<bool> {
        match self.store.evaluate(
            flag,
            context,
            &CheckOptions::new(),
            crate::cache::coarse_utc_now(),
            |e| e.value,
        ) {
            Local::Done(value) => Some(value),
            _ => None,
        }
    }

    /// Flags, companies and users held.
    pub fn sizes(&self) -> (usize, usize, usize) {
        self.store.sizes()
    }
}
