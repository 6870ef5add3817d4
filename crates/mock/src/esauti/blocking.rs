//! The eSauti emulator on a runtime of its own, for synchronous tests.

use std::ops::Deref;

use super::{EsautiServer, EsautiServerBuilder};
use crate::blocking::OnOwnRuntime;
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
    inner: OnOwnRuntime<EsautiServer>,
}

impl BlockingEsautiServer {
    pub(super) fn start(builder: EsautiServerBuilder) -> Result<Self, MockError> {
        Ok(BlockingEsautiServer {
            inner: OnOwnRuntime::start("flagwire-mock-esauti", builder.start())?,
        })
    }

    /// Stops the server, waiting for in-flight requests (up to 5 s), and
    /// shuts its runtime down.
    pub fn stop(self) {
        self.inner.stop(EsautiServer::stop);
    }
}

impl Deref for BlockingEsautiServer {
    type Target = EsautiServer;

    fn deref(&self) -> &EsautiServer {
        self.inner.server()
    }
}
