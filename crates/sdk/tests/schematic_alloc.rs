//! A flag check answered from the cache performs no heap allocation, through
//! the whole `Client::check_flag` call.

use flagwire::Context;
use flagwire::schematic::Client;
use flagwire_alloc_counter::{CountingAllocator, count_allocations};
use flagwire_core::events::Keys;
use futures_util::FutureExt;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

#[tokio::test(flavor = "current_thread")]
async fn cache_hits_through_the_client_do_not_allocate() {
    let double = tower::service_fn(|req: http::Request<bytes::Bytes>| async move {
        assert_eq!(req.uri().path(), "/flags/new-editor/check");
        Ok::<_, std::convert::Infallible>(http::Response::new(bytes::Bytes::from_static(
            br#"{"data":{"flag":"new-editor","reason":"rule","value":true},"params":{}}"#,
        )))
    });
    let client = Client::builder("sch_test").service(double).build().unwrap();
    let company = Keys::from([("id".to_owned(), "acme".to_owned())]);
    let user = Keys::from([("email".to_owned(), "ann@example.com".to_owned())]);
    assert!(
        client
            .check_flag("new-editor", Context::company(&company).with_user(&user))
            .await
    );

    let (hits, allocations) = count_allocations(|| {
        (0..1_000)
            .filter(|_| {
                client
                    .check_flag("new-editor", Context::company(&company).with_user(&user))
                    .now_or_never()
                    == Some(true)
            })
            .count()
    });
    assert_eq!(hits, 1_000, "every call completes at once from the cache");
    assert_eq!(allocations, 0);
}
