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
    server: Option<MockServer>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Runs `f` on a fresh thread so that blocking on the runtime is allowed even
/// when the caller is itself inside an async context.
pub(crate) fn off_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

impl BlockingMockServer {
    pub(crate) fn start(builder: MockServerBuilder) -> Result<Self, MockError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("flagwire-mock")
            .enable_all()
            .build()?;
        let server = off_thread(|| runtime.block_on(builder.start()))?;
        Ok(BlockingMockServer {
            server: Some(server),
            runtime: Some(runtime),
        })
    }

    /// Stops the server, waiting for in-flight requests (up to 5 s), and
    /// shuts its runtime down.
    pub fn stop(mut self) {
        if let (Some(server), Some(runtime)) = (self.server.take(), self.runtime.take()) {
            off_thread(move || {
                runtime.block_on(server.stop());
                runtime.shutdown_timeout(Duration::from_secs(1));
            });
        }
    }

    /// Blocking form of [`MockServer::wait_for_deliveries`].
    pub fn wait_for_deliveries(&self, count: usize, timeout: Duration) -> Vec<WebhookDelivery> {
        match (&self.server, &self.runtime) {
            (Some(server), Some(runtime)) => {
                off_thread(|| runtime.block_on(server.wait_for_deliveries(count, timeout)))
            }
            _ => Vec::new(),
        }
    }
}

impl Deref for BlockingMockServer {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        match &self.server {
            Some(server) => server,
            // `server` is only taken by `stop(self)`, which consumes the handle.
            None => unreachable!("BlockingMockServer used after stop"),
        }
    }
}

impl Drop for BlockingMockServer {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
