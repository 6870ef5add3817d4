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

/// [`Error::BlockingInAsyncContext`] when the calling thread drives a Tokio runtime, where
/// blocking would stall (or deadlock) its executor.
///
/// What is forbidden is blocking a thread that runs a runtime's scheduler: a worker of a
/// multi-thread runtime, or the thread inside a current-thread runtime's `block_on`, whose other
/// tasks (and timers and I/O) would stop while it waits. Merely having a runtime handle is
/// harmless, and `Handle::try_current` cannot tell the two apart: a `spawn_blocking` thread
/// and code inside `block_in_place` see the handle too, and are precisely where blocking is
/// allowed.
///
/// `tokio::runtime::worker_index()` (stable since Tokio 1.54) is the public question "is this
/// thread running a scheduler?": it is `Some` on a multi-thread worker and on the thread that
/// owns a current-thread runtime's driver (inside its `block_on`, tasks included), and `None`
/// on a `spawn_blocking` thread, inside `block_in_place` (which hands the worker's scheduler
/// to another thread and leaves the runtime context) and on threads that only entered a
/// handle. A multi-thread runtime's own `block_on` thread is not a worker either: blocking
/// it holds up only the future it is blocking on, while the workers carry on (Tokio allows
/// `block_in_place` there for the same reason), and the call runs on the client's own runtime
/// thread, so it cannot deadlock.
pub(crate) fn refuse_in_async_context() -> Result<(), Error> {
    match tokio::runtime::worker_index() {
        Some(_) => Err(Error::BlockingInAsyncContext),
        None => Ok(()),
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
        // The `block_on` thread itself.
        let err = outer.block_on(async { runtime.block_on(async {}).unwrap_err() });
        assert!(matches!(err, Error::BlockingInAsyncContext), "{err:?}");
        assert!(refuse_in_async_context().is_ok());
    }

    #[test]
    fn refuses_inside_a_task_of_a_current_thread_runtime_without_stalling_it() {
        let runtime = RuntimeThread::start("flagwire-test-runtime").unwrap();
        let outer = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let verdict = outer.block_on(async move {
            let task = tokio::spawn(async move { runtime.block_on(async { 7 }) });
            // The runtime keeps running other work: a timer fires meanwhile.
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            task.await.unwrap()
        });
        assert!(
            matches!(verdict, Err(Error::BlockingInAsyncContext)),
            "{verdict:?}"
        );
    }

    #[test]
    fn refuses_on_a_worker_of_a_multi_thread_runtime() {
        let runtime = RuntimeThread::start("flagwire-test-runtime").unwrap();
        let outer = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let verdict = outer
            .block_on(
                async move { tokio::spawn(async move { runtime.block_on(async { 7 }) }).await },
            )
            .unwrap();
        assert!(
            matches!(verdict, Err(Error::BlockingInAsyncContext)),
            "{verdict:?}"
        );
    }

    #[test]
    fn works_inside_spawn_blocking_on_both_runtime_flavours() {
        for multi_thread in [false, true] {
            let runtime = RuntimeThread::start("flagwire-test-runtime").unwrap();
            let outer = if multi_thread {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .build()
            } else {
                tokio::runtime::Builder::new_current_thread().build()
            }
            .unwrap();
            let answer = outer.block_on(async move {
                tokio::task::spawn_blocking(move || runtime.block_on(async { 7 }))
                    .await
                    .unwrap()
            });
            assert_eq!(answer.unwrap(), 7, "multi-thread: {multi_thread}");
        }
    }

    #[test]
    fn works_inside_block_in_place() {
        let runtime = RuntimeThread::start("flagwire-test-runtime").unwrap();
        let outer = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let answer = outer
            .block_on(async move {
                tokio::spawn(async move {
                    tokio::task::block_in_place(|| runtime.block_on(async { 7 }))
                })
                .await
            })
            .unwrap();
        assert_eq!(answer.unwrap(), 7);
    }

    #[test]
    fn works_on_a_thread_that_only_entered_a_runtime() {
        let runtime = RuntimeThread::start("flagwire-test-runtime").unwrap();
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _entered = outer.enter();
        assert_eq!(runtime.block_on(async { 7 }).unwrap(), 7);
    }
}
