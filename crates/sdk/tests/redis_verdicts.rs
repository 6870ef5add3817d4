//! Property test: for random flags, companies and users held by the
//! emulator, a check in replicator mode (the emulator writing Redis as the
//! replicator does, the client evaluating from Redis) gives the same
//! verdict as a check evaluated from a direct DataStream socket.

mod redis_support;

mod verdict_scenarios;

use std::time::Duration;

use flagwire::Context;
use flagwire::datastream::DataStreamOptions;
use flagwire::redis::{RedisOptions, ReplicatorOptions};
use flagwire::schematic::{CheckSource, Client};
use flagwire_mock::MockServer;
use proptest::prelude::*;
use redis_support::RedisServer;

use verdict_scenarios::*;

async fn run(
    redis: &RedisServer,
    companies: Vec<CompanySpec>,
    flags: Vec<FlagSpec>,
) -> Result<(), TestCaseError> {
    let server = MockServer::builder()
        .cache_version("v1")
        .start()
        .await
        .unwrap();
    let rest = seed_scenario(&server, &companies, &flags).await;
    server
        .start_redis_replicator(&redis.url(), "schematic")
        .await
        .unwrap();
    prop_assert!(
        server
            .redis_replicator_synced(Duration::from_secs(10))
            .await
    );
    let direct = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .datastream(DataStreamOptions::new().flag_check_events(false))
        .disable_cache()
        .build()
        .unwrap();
    prop_assert!(direct.wait_until_ready(Duration::from_secs(10)).await);
    let replicated = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .replicator(
            ReplicatorOptions::new(RedisOptions::new(redis.url()))
                .health_url(format!("{}/ready", server.rest_url()))
                .flag_check_events(false),
        )
        .disable_cache()
        .build()
        .unwrap();
    prop_assert!(replicated.wait_until_ready(Duration::from_secs(10)).await);

    for i in 0..companies.len() {
        let company = [("id", format!("co{i}"))];
        let user = [("email", format!("u{i}@example.com"))];
        let contexts = [
            Context::company(&company),
            Context::user(&user),
            Context::company(&company).with_user(&user),
            Context::none(),
        ];
        for context in contexts {
            for f in 0..flags.len() {
                let key = format!("flag-{f}");
                let expected = direct.check_flag_detailed(&key, context).await;
                // Twice: once through Redis, once from the in-process layer.
                for _ in 0..2 {
                    let got = replicated.check_flag_detailed(&key, context).await;
                    prop_assert_eq!(expected.source, CheckSource::Local);
                    prop_assert_eq!(got.source, CheckSource::Local, "{:?}", got);
                    prop_assert_eq!(got.value, expected.value, "{} {:?}", key, context);
                    prop_assert_eq!(&got.rule_id, &expected.rule_id);
                    prop_assert_eq!(&got.reason, &expected.reason);
                    prop_assert_eq!(&got.company_id, &expected.company_id);
                    prop_assert_eq!(&got.user_id, &expected.user_id);
                    prop_assert_eq!(&got.entitlement, &expected.entitlement);
                }
            }
        }
    }
    direct.shutdown(Duration::from_secs(2)).await;
    replicated.shutdown(Duration::from_secs(2)).await;
    rest.shutdown(Duration::from_secs(2)).await;
    server.stop().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn replicator_verdicts_equal_direct_verdicts((companies, flags) in scenario()) {
        // A server per case, killed when the case ends.
        let Some(redis) = RedisServer::start() else { return Ok(()) };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(&redis, companies, flags))?;
    }
}
