//! A server on a runtime of its own, for synchronous tests and programs.

use std::ops::Deref;
use std::time::Duration;

use crate::error::MockError;
use crate::server::{MockServer, MockServerBuilder};
use crate::webhook::WebhookDelivery;

/// A [`MockServer`] running on its own Tokio runtime (one worker thread).
///
/// It dereferences to [`MockServer`] for URLs, inspection, seeding and fault
/// scripts. Dropping it stops the server without waiting; [`stop`](Self::stop)
/// waits for in-flight requests. It can be created, used and dropped from
/// synchronous code and from inside another runtime alike.
///
/// ```
/// let server = flagwire_mock::MockServer::start_blocking()?;
/// assert!(server.rest_url().starts_with("http://127.0.0.1:"));
/// server.stop();
/// # Ok::<(), flagwire_mock::MockError>(())
/// ```
#[derive(Debug)]
pub struct BlockingMockServer {
    inner: OnOwnRuntime<MockServer>,
}

/// Runs `f` on a fresh thread so that blocking on the runtime is allowed even
/// when the caller is itself inside an async context.
pub(crate) fn off_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A server started on a one-worker Tokio runtime of its own: what both
/// blocking servers are made of. Dropping it drops the server and shuts the
/// runtime down without waiting; [`stop`](Self::stop) waits.
#[derive(Debug)]
pub(crate) struct OnOwnRuntime<S> {
    server: Option<S>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl<S: Send> OnOwnRuntime<S> {
    /// Builds the runtime (its worker thread named `thread_name`) and runs
    /// `start` on it to completion.
    pub(crate) fn start(
        thread_name: &str,
        start: impl Future<Output = Result<S, MockError>> + Send,
    ) -> Result<Self, MockError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread_name)
            .enable_all()
            .build()?;
        let server = off_thread(|| runtime.block_on(start))?;
        Ok(OnOwnRuntime {
            server: Some(server),
            runtime: Some(runtime),
        })
    }

    /// Runs `stop` on the server to completion, then shuts the runtime down
    /// (waiting up to 1 s for its tasks).
    pub(crate) fn stop<F>(mut self, stop: impl FnOnce(S) -> F + Send)
    where
        F: Future<Output = ()>,
    {
        if let (Some(server), Some(runtime)) = (self.server.take(), self.runtime.take()) {
            off_thread(move || {
                runtime.block_on(stop(server));
                runtime.shutdown_timeout(Duration::from_secs(1));
            });
        }
    }

    /// Runs `future` to completion on the server's runtime, from a thread of
    /// its own.
    pub(crate) fn block_on<T: Send>(&self, future: impl Future<Output = T> + Send) -> Option<T> {
        let runtime = self.runtime.as_ref()?;
        Some(off_thread(|| runtime.block_on(future)))
    }

    /// The running server.
    pub(crate) fn server(&self) -> &S {
        match &self.server {
            Some(server) => server,
            // `server` is only taken by `stop(self)`, which consumes the holder.
            None => unreachable!("server used after stop"),
        }
    }
}

impl<S> Drop for OnOwnRuntime<S> {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl BlockingMockServer {
    pub(crate) fn start(builder: MockServerBuilder) -> Result<Self, MockError> {
        Ok(BlockingMockServer {
            inner: OnOwnRuntime::start("flagwire-mock", builder.start())?,
        })
    }

    /// Stops the server, waiting for in-flight requests (up to 5 s), and
    /// shuts its runtime down.
    pub fn stop(self) {
        self.inner.stop(MockServer::stop);
    }

    /// Blocking form of [`MockServer::wait_for_datastream_connections`].
    pub fn wait_for_datastream_connections(&self, count: usize, timeout: Duration) -> usize {
        self.inner
            .block_on(
                self.inner
                    .server()
                    .wait_for_datastream_connections(count, timeout),
            )
            .unwrap_or_default()
    }

    /// Blocking form of [`MockServer::wait_for_deliveries`].
    pub fn wait_for_deliveries(&self, count: usize, timeout: Duration) -> Vec<WebhookDelivery> {
        self.inner
            .block_on(self.inner.server().wait_for_deliveries(count, timeout))
            .unwrap_or_default()
    }
}

impl Deref for BlockingMockServer {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        self.inner.server()
    }
}
