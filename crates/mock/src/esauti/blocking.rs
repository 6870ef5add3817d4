//! The eSauti emulator on a runtime of its own, for synchronous tests.

use std::ops::Deref;
use std::time::Duration;

use super::{EsautiServer, EsautiServerBuilder};
use crate::blocking::off_thread;
use crate::error::MockError;

/// An [`EsautiServer`] running on its own Tokio runtime (one worker
/// thread).
///
/// It dereferences to [`EsautiServer`] for URLs, inspection and fault
/// scripts. Dropping it stops the server without waiting; [`stop`](Self::stop)
/// waits for in-flight requests. It can be created, used and dropped from
/// synchronous code and from inside another runtime alike.
///
/// ```
/// let server = flagwire_mock::esauti::EsautiServer::start_blocking()?;
/// assert!(server.events_url().starts_with("http://127.0.0.1:"));
/// server.stop();
/// # Ok::<(), flagwire_mock::MockError>(())
/// ```
#[derive(Debug)]
pub struct BlockingEsautiServer {
    server: Option<EsautiServer>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl BlockingEsautiServer {
    pub(super) fn start(builder: EsautiServerBuilder) -> Result<Self, MockError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("flagwire-mock-esauti")
            .enable_all()
            .build()?;
        let server = off_thread(|| runtime.block_on(builder.start()))?;
        Ok(BlockingEsautiServer {
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
}

impl Deref for BlockingEsautiServer {
    type Target = EsautiServer;

    fn deref(&self) -> &EsautiServer {
        match &self.server {
            Some(server) => server,
            // `server` is only taken by `stop(self)`, which consumes the handle.
            None => unreachable!("BlockingEsautiServer used after stop"),
        }
    }
}

impl Drop for BlockingEsautiServer {
    fn drop(&mut self) {
        drop(self.server.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
