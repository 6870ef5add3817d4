//! The runtime behind both blocking clients: a current-thread Tokio runtime driven by a thread
//! of its own, to which each blocking call hands its work.

use std::future::Future;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::error::Error;

/// A current-thread runtime driven by a thread of its own; stopped and joined on drop.
pub(crate) struct RuntimeThread {
    handle: tokio::runtime::Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RuntimeThread {
    /// Starts the runtime on a new thread called `name`.
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
        refuse_in_async_context()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().map_err(|_| Error::RuntimeStopped)
    }
}

/// [`Error::BlockingInAsyncContext`] when the calling thread drives an async runtime, where
/// blocking would stall (or deadlock) its executor.
pub(crate) fn refuse_in_async_context() -> Result<(), Error> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Err(Error::BlockingInAsyncContext),
        Err(_) => Ok(()),
    }
}

impl Drop for RuntimeThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The last clone of a client may be dropped by a task on the runtime thread itself,
        // which cannot join itself.
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_blocking_clients_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<RuntimeThread>();
        send_sync::<crate::schematic::blocking::Client>();
        send_sync::<crate::esauti::blocking::Client>();
    }

    #[test]
    fn runs_work_on_its_own_thread_and_stops_on_drop() {
        let runtime = RuntimeThread::start("flagwire-test-runtime").unwrap();
        let name = runtime
            .block_on(async { std::thread::current().name().map(str::to_owned) })
            .unwrap();
        assert_eq!(name.as_deref(), Some("flagwire-test-runtime"));
        drop(runtime);
    }

    #[test]
    fn refuses_to_block_inside_a_runtime() {
        let runtime = RuntimeThread::start("flagwire-test-runtime").unwrap();
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = outer.block_on(async { runtime.block_on(async {}).unwrap_err() });
        assert!(matches!(err, Error::BlockingInAsyncContext), "{err:?}");
        assert!(refuse_in_async_context().is_ok());
    }
}
