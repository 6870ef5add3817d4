//! A synchronous facade over the async [`Client`](super::Client), in the manner of
//! `reqwest::blocking`.
//!
//! The blocking client owns a current-thread Tokio runtime on a thread of its own; each call
//! hands its work to that thread and waits for the answer, so it works from any plain thread.
//! Called from inside an async runtime (where blocking would stall the executor), every
//! method returns [`Error::BlockingInAsyncContext`] instead of panicking.
//!
//! ```
//! use flagwire::esauti::blocking;
//! use flagwire_core::esauti::EventType;
//!
//! // A stand-in events server that accepts everything.
//! let server = tower::service_fn(|_req: http::Request<bytes::Bytes>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(bytes::Bytes::from_static(
//!         br#"{"received":true,"event_id":"ev_1","status":"accepted","duplicate":false}"#,
//!     )))
//! });
//! let client = blocking::Client::builder()
//!     .bearer_token("est_example")
//!     .events_url("https://tenant.example.com")
//!     .service(server)
//!     .build_blocking()?;
//! let receipt = client.send_event(
//!     client.event(EventType::OrderCreated)
//!         .customer_id("cus_1")
//!         .property("currency", "KES")
//!         .property("value", 0),
//! )?;
//! assert_eq!(receipt.event_id.as_deref(), Some("ev_1"));
//! # Ok::<(), flagwire::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use flagwire_core::Operation;
use flagwire_core::esauti::{EnvelopeBuilder, EventType};
use tokio::sync::oneshot;

use super::builder::ClientBuilder;
use super::events::{IntoEnvelope, ReplayReport, SendOptions};
use super::receipt::Receipt;
use crate::error::Error;
use crate::schematic::RequestOptions;

/// A current-thread runtime driven by a thread of its own; stopped and joined on drop.
pub(crate) struct RuntimeThread {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RuntimeThread {
    pub(crate) fn start(name: &str) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::config(format!("could not start a runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(|e| Error::config(format!("could not start the runtime thread: {e}")))?;
        Ok(RuntimeThread {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Runs `future` on the runtime thread and waits for its output. Refuses to block a
    /// thread that is driving an async runtime.
    pub(crate) fn block_on<F>(&self, future: F) -> Result<F::Output, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::BlockingInAsyncContext);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().map_err(|_| Error::RuntimeStopped)
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

/// The synchronous eSauti client. Cheap to clone; clones share the runtime thread.
#[derive(Clone)]
pub struct Client {
    inner: super::Client,
    runtime: Arc<RuntimeThread>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("esauti::blocking::Client")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Builds a [`blocking::Client`](Client) with these settings.
    pub fn build_blocking(self) -> Result<Client, Error> {
        Client::from_async(self.build()?)
    }
}

impl Client {
    /// Starts configuring a client; finish with [`ClientBuilder::build_blocking`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Wraps an async client.
    pub fn from_async(inner: super::Client) -> Result<Client, Error> {
        Ok(Client {
            inner,
            runtime: Arc::new(RuntimeThread::start("flagwire-esauti-blocking")?),
        })
    }

    /// The async client underneath.
    pub fn as_async(&self) -> &super::Client {
        &self.inner
    }

    fn run<F, T>(&self, work: impl FnOnce(super::Client) -> F) -> Result<T, Error>
    where
        F: Future<Output = Result<T, Error>> + Send + 'static,
        T: Send + 'static,
    {
        self.runtime.block_on(work(self.inner.clone()))?
    }

    /// Sends one REST operation; see [`Client::send`](super::Client::send).
    pub fn send<O>(&self, op: O) -> Result<O::Output, Error>
    where
        O: Operation + Send + 'static,
        O::Output: Send + 'static,
    {
        self.run(move |c| async move { c.send(op).await })
    }

    /// [`send`](Self::send) with per-request options.
    pub fn send_with<O>(&self, op: O, options: RequestOptions) -> Result<O::Output, Error>
    where
        O: Operation + Send + 'static,
        O::Output: Send + 'static,
    {
        self.run(move |c| async move { c.send_with(op, options).await })
    }

    /// A builder for an event whose `source` is the client's; see
    /// [`Events::event`](super::Events::event). Never blocks.
    pub fn event(&self, event_type: impl Into<EventType>) -> EnvelopeBuilder {
        self.inner.events().event(event_type)
    }

    /// Validates and sends one event; see [`Events::send`](super::Events::send).
    pub fn send_event(&self, event: impl IntoEnvelope) -> Result<Receipt, Error> {
        self.send_event_with(event, SendOptions::default())
    }

    /// [`send_event`](Self::send_event) with per-event options.
    pub fn send_event_with(
        &self,
        event: impl IntoEnvelope,
        options: SendOptions,
    ) -> Result<Receipt, Error> {
        // Validate on the caller's thread: an invalid event never reaches the runtime.
        let envelope = event.into_envelope()?;
        self.run(move |c| async move { c.events().send_with(envelope, options).await })
    }

    /// Replays a dead-letter file; see [`Events::replay`](super::Events::replay).
    pub fn replay(&self, path: impl Into<PathBuf>) -> Result<ReplayReport, Error> {
        let path = path.into();
        self.run(move |c| async move { c.events().replay(path).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        ClientBuilder::new()
            .api_key("esk_test")
            .events_url("http://127.0.0.1:9")
            .rest_url("http://127.0.0.1:9/api")
            .build_blocking()
            .unwrap()
    }

    #[test]
    fn refuses_to_block_inside_a_runtime() {
        let client = client();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(async {
            client
                .send_event(
                    client
                        .event(EventType::CustomerCreated)
                        .customer_id("cus_1"),
                )
                .unwrap_err()
        });
        assert!(matches!(err, Error::BlockingInAsyncContext), "{err:?}");
    }

    #[test]
    fn invalid_events_fail_on_the_callers_thread() {
        let err = client()
            .send_event(client().event(EventType::CustomerCreated))
            .unwrap_err();
        assert!(matches!(err, Error::Envelope(_)), "{err:?}");
    }
}
