//! The blocking client inside async programs, against the emulator: it
//! works wherever blocking is allowed (`spawn_blocking`, `block_in_place`)
//! and refuses, with a typed error, on a thread that runs a runtime.

use flagwire::Error;
use flagwire::schematic::blocking;
use flagwire_core::schematic::companies::ListCompanies;

fn client(server: &flagwire_mock::MockServer) -> blocking::Client {
    blocking::Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .build()
        .unwrap()
}

#[test]
fn works_inside_spawn_blocking() {
    let server = flagwire_mock::MockServer::start_blocking().unwrap();
    for multi_thread in [false, true] {
        let client = client(&server);
        let runtime = if multi_thread {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .unwrap();
        let page = runtime
            .block_on(async move {
                tokio::task::spawn_blocking(move || {
                    client.companies().list_companies(ListCompanies::new())
                })
                .await
            })
            .unwrap();
        assert!(page.is_ok(), "multi-thread {multi_thread}: {page:?}");
    }
}

#[test]
fn works_inside_block_in_place() {
    let server = flagwire_mock::MockServer::start_blocking().unwrap();
    let client = client(&server);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let page = runtime
        .block_on(async move {
            tokio::spawn(async move {
                tokio::task::block_in_place(|| {
                    client.companies().list_companies(ListCompanies::new())
                })
            })
            .await
        })
        .unwrap();
    assert!(page.is_ok(), "{page:?}");
}

#[test]
fn is_refused_in_a_task_of_a_current_thread_runtime() {
    let server = flagwire_mock::MockServer::start_blocking().unwrap();
    let client = client(&server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime
        .block_on(async move {
            tokio::spawn(async move { client.companies().list_companies(ListCompanies::new()) })
                .await
        })
        .unwrap();
    assert!(
        matches!(outcome, Err(Error::BlockingInAsyncContext)),
        "{outcome:?}"
    );
}
