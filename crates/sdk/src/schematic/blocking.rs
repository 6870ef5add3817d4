//! A synchronous facade over the async [`Client`](super::Client), in the
//! manner of `reqwest::blocking`.
//!
//! The blocking client owns a Tokio runtime running on a thread of its own;
//! every call hands its work to that thread and waits for the answer. It
//! works from any plain thread. Called from inside an async runtime (where
//! blocking would stall or deadlock the executor), a method that would block
//! returns [`Error::BlockingInAsyncContext`] instead of panicking.
//!
//! ```
//! use flagwire::Context;
//! use flagwire::schematic::blocking;
//! use flagwire_core::events::{Keys, TrackBody};
//!
//! let client = blocking::Client::builder("sch_dev_example")
//!     .offline(true)
//!     .flag_default("new-editor", true)
//!     .build()?;
//! let acme = Keys::from([("id".to_owned(), "acme".to_owned())]);
//! assert!(client.check_flag("new-editor", Context::company(&acme))?);
//! client.track(TrackBody::builder("api-call").company_key("id", "acme").build()?)?;
//! assert_eq!(client.event_stats().discarded_offline, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every API operation is reachable by resource, with the names and
//! arguments of the async [`Client`](super::Client)'s accessors (for example
//! [`Companies::upsert_company`]); each method returns the result instead of
//! a future:
//!
//! ```
//! use std::time::Duration;
//! use flagwire::schematic::{blocking, RequestOptions};
//! use flagwire_core::schematic::companies::ListCompanies;
//! use flagwire_core::schematic::models::UpsertCompanyRequestBody;
//!
//! let server = flagwire_mock::MockServer::start_blocking()?;
//! let client = blocking::Client::builder(server.api_key())
//!     .base_url(server.rest_url())
//!     .capture_url(server.capture_url())
//!     .build()?;
//!
//! let body = UpsertCompanyRequestBody::new([("id", "acme")]);
//! let acme = client.companies().upsert_company(body)?;
//! assert_eq!(client.companies().get_company(&acme.id)?.id, acme.id);
//!
//! let options = RequestOptions::new().timeout(Duration::from_secs(2)).max_retries(0);
//! let page = client
//!     .companies()
//!     .list_companies_with(ListCompanies::new().limit(10), options)?;
//! assert_eq!(page.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flagwire_core::events::{EventBody, EventOptions, IdentifyBody, InferenceBody, TrackBody};
use flagwire_core::{Operation, Paginated};
use futures_util::TryStreamExt;

use super::builder::{Async, Blocking, ClientBuilder};
use super::events::{EventShutdown, EventStats, IntoEventBody};
use super::flags::{CheckOptions, FlagCheck};
use super::options::RequestOptions;
use crate::context::{Context, OwnedContext};
use crate::error::Error;
use crate::runtime_thread::{RuntimeThread, refuse_in_async_context};

/// The synchronous Schematic client. Cheap to clone; clones share the
/// runtime thread, the cache and the event buffer.
#[derive(Clone)]
pub struct Client {
    // Declared first so it drops first: the async client's event buffer is
    // flushed by its own thread, not by this runtime.
    inner: super::Client,
    // Stopped and joined when the last clone drops.
    runtime: Arc<RuntimeThread>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blocking::Client")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder<Async> {
    /// Builds a [`blocking::Client`](Client) with these settings.
    pub fn build_blocking(self) -> Result<Client, Error> {
        self.into_mode::<Blocking>().build()
    }
}

impl Client {
    /// A blocking client with the default settings.
    pub fn new(api_key: impl Into<String>) -> Result<Client, Error> {
        Client::builder(api_key).build()
    }

    /// Starts configuring a blocking client: the same settings as the async
    /// client's builder, and [`build`](ClientBuilder::build) returns a
    /// blocking client.
    pub fn builder(api_key: impl Into<String>) -> ClientBuilder<Blocking> {
        ClientBuilder::new(api_key).into_mode()
    }

    /// Wraps an async client (sharing its cache and event buffer).
    pub fn from_async(inner: super::Client) -> Result<Client, Error> {
        Ok(Client {
            inner,
            runtime: Arc::new(RuntimeThread::start("flagwire-schematic-blocking")?),
        })
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &super::Client {
        &self.inner
    }

    fn run<F, T>(&self, work: impl FnOnce(super::Client) -> F) -> Result<T, Error>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.runtime.block_on(work(self.inner.clone()))
    }

    /// Sends one API operation; see [`Client::send`](super::Client::send).
    pub fn send<O>(&self, op: O) -> Result<O::Output, Error>
    where
        O: Operation + Send + 'static,
        O::Output: Send + 'static,
    {
        self.run(move |c| async move { c.send(op).await })?
    }

    /// [`send`](Self::send) with per-request options.
    pub fn send_with<O>(&self, op: O, options: RequestOptions) -> Result<O::Output, Error>
    where
        O: Operation + Send + 'static,
        O::Output: Send + 'static,
    {
        self.run(move |c| async move { c.send_with(op, options).await })?
    }

    /// Every item of a paginated list, walking `limit`/`offset` pages.
    pub fn list_all<P>(&self, first: P) -> Result<Vec<P::Item>, Error>
    where
        P: Paginated + Send + Sync + 'static,
        P::Item: Send + 'static,
        P::Output: Send,
    {
        self.run(move |c| async move { c.paginate(first).try_collect().await })?
    }

    /// The value of a flag; see [`Client::check_flag`](super::Client::check_flag).
    ///
    /// Answers from local data and the result cache run on the calling
    /// thread without allocating; only a check that must wait (for an
    /// entity, or for the API) is handed to the client's runtime thread. The
    /// only errors are about the calling context, never about the check.
    pub fn check_flag<'a>(
        &self,
        flag: &str,
        context: impl Into<Context<'a>>,
    ) -> Result<bool, Error> {
        let context = context.into();
        if let Some(value) = self.inner.check_now(flag, &context) {
            return Ok(value);
        }
        self.check_slow(flag, &context, CheckOptions::new())
            .map(|check| check.value)
    }

    /// The detailed outcome of a check.
    pub fn check_flag_detailed<'a>(
        &self,
        flag: &str,
        context: impl Into<Context<'a>>,
    ) -> Result<FlagCheck, Error> {
        self.check_flag_with(flag, context, CheckOptions::new())
    }

    /// A check with options (per-call default, deadline, preflight usage).
    pub fn check_flag_with<'a>(
        &self,
        flag: &str,
        context: impl Into<Context<'a>>,
        options: CheckOptions<'_>,
    ) -> Result<FlagCheck, Error> {
        let context = context.into();
        if !options.has_preflight()
            && let Some(check) = self
                .inner
                .check_now_detailed(flag, &context, options.default)
        {
            return Ok(check);
        }
        self.check_slow(flag, &context, options)
    }

    /// Several flags for one context; see
    /// [`Client::check_flags`](super::Client::check_flags).
    pub fn check_flags<'a>(
        &self,
        flags: &[&str],
        context: impl Into<Context<'a>>,
    ) -> Result<Vec<FlagCheck>, Error> {
        let owned = OwnedContext::from(&context.into());
        let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
        self.run(move |c| async move {
            let refs: Vec<&str> = flags.iter().map(String::as_str).collect();
            c.check_flags(&refs, owned.as_context()).await
        })
    }

    /// The slow path of a check on the runtime thread (owned copies of the
    /// inputs travel there).
    fn check_slow(
        &self,
        flag: &str,
        context: &Context<'_>,
        options: CheckOptions<'_>,
    ) -> Result<FlagCheck, Error> {
        let owned = OwnedContext::from(context);
        let flag = flag.to_owned();
        let event_subtype = options.event_usage.map(|(s, q)| (s.to_owned(), q));
        let costs: Vec<(String, f64)> = options
            .credit_cost
            .iter()
            .map(|(id, c)| ((*id).to_owned(), *c))
            .collect();
        let (default, timeout, usage) = (options.default, options.timeout, options.usage);
        self.run(move |c| async move {
            let cost_refs: Vec<(&str, f64)> =
                costs.iter().map(|(id, c)| (id.as_str(), *c)).collect();
            let mut options = CheckOptions::new().credit_cost(&cost_refs);
            options.default = default;
            options.timeout = timeout;
            options.usage = usage;
            options.event_usage = event_subtype.as_ref().map(|(s, q)| (s.as_str(), *q));
            c.check_flag_slow(&flag, owned.as_context(), options).await
        })
    }

    /// Queues an identify event; never blocks (allowed anywhere).
    pub fn identify(&self, body: impl IntoEventBody<IdentifyBody>) -> Result<(), Error> {
        self.inner.identify(body)
    }

    /// [`identify`](Self::identify) with per-event options.
    pub fn identify_with(
        &self,
        body: impl IntoEventBody<IdentifyBody>,
        options: EventOptions,
    ) -> Result<(), Error> {
        self.inner.identify_with(body, options)
    }

    /// Queues a track event; never blocks (allowed anywhere).
    pub fn track(&self, body: impl IntoEventBody<TrackBody>) -> Result<(), Error> {
        self.inner.track(body)
    }

    /// [`track`](Self::track) with per-event options.
    pub fn track_with(
        &self,
        body: impl IntoEventBody<TrackBody>,
        options: EventOptions,
    ) -> Result<(), Error> {
        self.inner.track_with(body, options)
    }

    /// Queues an inference event; never blocks.
    pub fn inference(&self, body: InferenceBody) -> Result<(), Error> {
        self.inner.inference(body)
    }

    /// Queues any event body; never blocks.
    pub fn enqueue(&self, body: EventBody) -> Result<(), Error> {
        self.inner.enqueue(body)
    }

    /// Waits (at most `timeout`) until every event queued before the call
    /// is delivered or dead-lettered.
    pub fn flush(&self, timeout: Duration) -> Result<(), Error> {
        refuse_in_async_context()?;
        match &self.inner.inner.events {
            None => Ok(()),
            Some(buffer) => buffer.flush_blocking(timeout).map_err(Error::Buffer),
        }
    }

    /// Delivers what it can within `timeout` and stops taking events; see
    /// [`Client::shutdown`](super::Client::shutdown).
    pub fn shutdown(&self, timeout: Duration) -> Result<EventShutdown, Error> {
        refuse_in_async_context()?;
        let report = self
            .inner
            .inner
            .events
            .as_ref()
            .map(|buffer| buffer.shutdown_blocking(timeout));
        Ok(self.inner.shutdown_report(report))
    }

    /// Resends the dead letters of a JSON Lines file; see
    /// [`Client::replay_dead_letters`](super::Client::replay_dead_letters).
    pub fn replay_dead_letters(
        &self,
        path: impl AsRef<std::path::Path>,
    ) -> Result<crate::events::ReplayReport, Error> {
        let path = path.as_ref().to_path_buf();
        self.run(move |c| async move { c.replay_dead_letters(path).await })?
    }

    /// The event counters.
    pub fn event_stats(&self) -> EventStats {
        self.inner.event_stats()
    }

    /// Whether the client is offline.
    pub fn is_offline(&self) -> bool {
        self.inner.is_offline()
    }
}

// Resource accessors (`client.companies().upsert_company(body)`, ...): one
// handle per API group and one method per operation, with the same names and
// arguments as the async client's; generated by `cargo xtask codegen` from the
// same template.
#[path = "generated/blocking_resources.rs"]
mod generated;

pub use generated::*;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use flagwire_core::schematic::OPERATIONS;

    use super::generated::ACCESSORS;

    #[test]
    fn every_operation_is_reachable_by_resource_as_on_the_async_client() {
        let ops: BTreeSet<&str> = OPERATIONS.iter().map(|op| op.id).collect();
        let ids: BTreeSet<&str> = ACCESSORS.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids.len(), ACCESSORS.len());
        assert_eq!(ops, ids);
        let async_accessors: BTreeSet<_> = crate::schematic::resources::ACCESSORS_FOR_TESTS
            .iter()
            .collect();
        let blocking: BTreeSet<_> = ACCESSORS.iter().collect();
        assert_eq!(async_accessors, blocking);
    }
}
