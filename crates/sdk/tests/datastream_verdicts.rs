//! Property test: for random flags, companies and users held by the
//! emulator, a check evaluated locally from DataStream data gives the same
//! verdict (value, rule, reason, resolved ids) as the emulator's REST check.

mod verdict_scenarios;

use std::time::Duration;

use flagwire::Context;
use flagwire::datastream::DataStreamOptions;
use flagwire::schematic::{CheckSource, Client};
use flagwire_mock::MockServer;
use proptest::prelude::*;

use verdict_scenarios::*;

async fn run(companies: Vec<CompanySpec>, flags: Vec<FlagSpec>) -> Result<(), TestCaseError> {
    let server = MockServer::start().await.unwrap();
    let rest = seed_scenario(&server, &companies, &flags).await;
    let local = Client::builder(server.api_key())
        .base_url(server.rest_url())
        .capture_url(server.capture_url())
        .datastream(DataStreamOptions::new().flag_check_events(false))
        .disable_cache()
        .build()
        .unwrap();
    prop_assert!(local.wait_until_ready(Duration::from_secs(10)).await);

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
                let expected = rest.check_flag_detailed(&key, context).await;
                let got = local.check_flag_detailed(&key, context).await;
                prop_assert_eq!(expected.source, CheckSource::Api);
                prop_assert_eq!(got.source, CheckSource::Local, "{:?}", got);
                prop_assert_eq!(got.value, expected.value, "{} {:?}", key, context);
                prop_assert_eq!(&got.rule_id, &expected.rule_id);
                prop_assert_eq!(&got.reason, &expected.reason);
                prop_assert_eq!(&got.company_id, &expected.company_id);
                prop_assert_eq!(&got.user_id, &expected.user_id);
            }
        }
    }
    local.shutdown(Duration::from_secs(2)).await;
    rest.shutdown(Duration::from_secs(2)).await;
    server.stop().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn local_verdicts_equal_the_emulators_rest_verdicts((companies, flags) in scenario()) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(companies, flags))?;
    }
}
