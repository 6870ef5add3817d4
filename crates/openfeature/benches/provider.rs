//! A boolean evaluation through OpenFeature next to the same check called
//! directly on the Schematic client, in one run.
//!
//! ```sh
//! cargo bench -p flagwire-openfeature --bench provider -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! Two ways a check is answered without waiting: **local** (DataStream on,
//! flags and company in memory) and **cached** (no DataStream; a result-cache
//! hit of an earlier API answer). For each, three callers of the same flag
//! for the same company:
//!
//! * `direct`: `client.check_flag_detailed(flag, Context::company(..))`;
//! * `provider`: `SchematicProvider::resolve_bool` (context mapping plus
//!   the check plus the reason mapping);
//! * `openfeature`: `open_feature::Client::get_bool_details` (OpenFeature's
//!   context merge and hooks around the provider).
//!
//! A fourth line, `constant`, is OpenFeature's client around a provider
//! that answers a constant without looking at anything: the fixed cost of
//! OpenFeature's evaluation path, which no provider can avoid.
//!
//! Before criterion runs, the binary prints medians of alternating batches
//! (steadier on a shared machine than criterion runs taken apart), the
//! ratios to `direct` (target: `openfeature` ≤ 1.5 ×) and allocations per
//! evaluation.

use flagwire_alloc_counter::bench::{paired_medians, ready};
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use flagwire::Context;
use flagwire::datastream::DataStreamOptions;
use flagwire::schematic::{CheckSource, Client};
use flagwire_alloc_counter::{CountingAllocator, count_allocations};
use flagwire_mock::MockServer;
use flagwire_openfeature::SchematicProvider;
use open_feature::provider::{FeatureProvider, ProviderMetadata, ResolutionDetails};
use open_feature::{
    EvaluationContext, EvaluationError, EvaluationErrorCode, EvaluationReason, EvaluationResult,
    OpenFeature, StructValue, async_trait,
};
use serde_json::json;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

const FLAG: &str = "new-editor";
const WAIT: Duration = Duration::from_secs(20);

/// One way of answering, with its three callers.
struct Case {
    name: &'static str,
    client: Client,
    provider: SchematicProvider,
    // Kept alive: the OpenFeature client reads the provider through it.
    _api: OpenFeature,
    of: open_feature::Client,
}

struct Setup {
    server: MockServer,
    cases: Vec<Case>,
    context: EvaluationContext,
    // OpenFeature's client around `Constant`.
    _constant_api: OpenFeature,
    constant: open_feature::Client,
}

/// A provider answering `true` for everything, as cheaply as possible.
struct Constant {
    metadata: ProviderMetadata,
}

fn unsupported() -> EvaluationError {
    EvaluationError {
        code: EvaluationErrorCode::TypeMismatch,
        message: None,
    }
}

#[async_trait]
impl FeatureProvider for Constant {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }
    async fn resolve_bool_value(
        &self,
        _flag_key: &str,
        _context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        Ok(ResolutionDetails {
            value: true,
            variant: None,
            reason: Some(EvaluationReason::Static),
            flag_metadata: None,
        })
    }
    async fn resolve_int_value(
        &self,
        _: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        Err(unsupported())
    }
    async fn resolve_float_value(
        &self,
        _: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        Err(unsupported())
    }
    async fn resolve_string_value(
        &self,
        _: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        Err(unsupported())
    }
    async fn resolve_struct_value(
        &self,
        _: &str,
        _: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        Err(unsupported())
    }
}

fn setup(runtime: &tokio::runtime::Runtime) -> Setup {
    runtime.block_on(async {
        let server = MockServer::start().await.expect("emulator");
        let acme = server
            .upsert_company(json!({"keys": {"id": "acme"}, "name": "Acme"}))
            .expect("company");
        server
            .create_flag(json!({"key": FLAG, "name": FLAG, "description": "",
                "flag_type": "boolean", "default_value": false}))
            .expect("flag");
        server
            .set_flag_rules(
                FLAG,
                json!([{"name": "acme", "priority": 0, "value": true, "conditions": [
                    {"condition_type": "company", "operator": "eq", "resource_ids": [acme["id"]]}
                ], "condition_groups": []}]),
            )
            .expect("rules");
        let base = || {
            Client::builder(server.api_key())
                .base_url(server.rest_url())
                .capture_url(server.capture_url())
        };
        let local = base()
            .datastream(DataStreamOptions::new().flag_check_events(false))
            .build()
            .expect("client");
        // A result cache that keeps its entries for the whole run.
        let cache = flagwire::cache::LocalFlagCache::builder()
            .ttl(Duration::from_secs(24 * 3600))
            .build();
        let cached = base().cache(cache).build().expect("client");
        let context = EvaluationContext::default().with_custom_field("company.id", "acme");
        let mut cases = Vec::new();
        for (name, client, want) in [
            ("local", local, CheckSource::Local),
            ("cached", cached, CheckSource::Cache),
        ] {
            let provider = SchematicProvider::builder(client.clone())
                .init_timeout(WAIT)
                .build();
            let mut api = OpenFeature::default();
            api.set_provider(provider.clone()).await;
            let of = api.create_client();
            // Warm up: the company arrives (local), the answer is cached.
            let deadline = Instant::now() + WAIT;
            loop {
                let check = client
                    .check_flag_detailed(FLAG, Context::company(&[("id", "acme")]))
                    .await;
                if check.source == want {
                    assert!(check.value);
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name}: never answered from {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let details = of
                .get_bool_details(FLAG, Some(&context), None)
                .await
                .expect("details");
            let reason = if want == CheckSource::Cache {
                EvaluationReason::Cached
            } else {
                EvaluationReason::TargetingMatch
            };
            assert_eq!(details.reason, Some(reason));
            cases.push(Case {
                name,
                client,
                provider,
                _api: api,
                of,
            });
        }
        let mut constant_api = OpenFeature::default();
        constant_api
            .set_provider(Constant {
                metadata: ProviderMetadata::new("flagwire-schematic"),
            })
            .await;
        let constant = constant_api.create_client();
        Setup {
            server,
            cases,
            context,
            _constant_api: constant_api,
            constant,
        }
    })
}

impl Case {
    fn direct(&self) -> bool {
        let keys = [("id", "acme")];
        ready(
            self.client
                .check_flag_detailed(black_box(FLAG), Context::company(&keys)),
        )
        .value
    }

    fn provider(&self, context: &EvaluationContext) -> bool {
        ready(self.provider.resolve_bool(black_box(FLAG), context))
            .expect("resolved")
            .value
    }

    fn openfeature(&self, context: &EvaluationContext) -> bool {
        ready(
            self.of
                .get_bool_details(black_box(FLAG), Some(context), None),
        )
        .expect("details")
        .value
    }
}

fn constant(setup: &Setup) -> bool {
    ready(
        setup
            .constant
            .get_bool_details(black_box(FLAG), Some(&setup.context), None),
    )
    .expect("details")
    .value
}

fn report(setup: &Setup, rounds: usize) {
    let ctx = &setup.context;
    let fixed = || constant(setup);
    let (_, n) = count_allocations(|| (0..1000).all(|_| fixed()));
    let m = paired_medians(rounds, 1_000, &[&fixed]);
    println!(
        "openfeature/constant: OpenFeature's client around a constant provider {:.0} ns, {:.0} allocations per evaluation",
        m[0],
        n as f64 / 1000.0
    );
    for case in &setup.cases {
        let direct = || case.direct();
        let provider = || case.provider(ctx);
        let openfeature = || case.openfeature(ctx);
        assert!(direct() && provider() && openfeature());
        let allocs = |f: &dyn Fn() -> bool| {
            let (_, n) = count_allocations(|| (0..1000).all(|_| f()));
            n as f64 / 1000.0
        };
        let a = [allocs(&direct), allocs(&provider), allocs(&openfeature)];
        let m = paired_medians(rounds, 1_000, &[&direct, &provider, &openfeature]);
        println!(
            "openfeature/{}: direct {:.0} ns, provider {:.0} ns ({:.2} x), openfeature client {:.0} ns ({:.2} x; target <= 1.5 x); allocations per evaluation {:.0} / {:.0} / {:.0}",
            case.name,
            m[0],
            m[1],
            m[1] / m[0],
            m[2],
            m[2] / m[0],
            a[0],
            a[1],
            a[2],
        );
    }
}

fn benches(setup: &Setup, c: &mut Criterion) {
    let ctx = &setup.context;
    c.bench_function("openfeature/constant", |b| b.iter(|| constant(setup)));
    for case in &setup.cases {
        let mut group = c.benchmark_group(format!("openfeature/{}", case.name));
        group.bench_function("direct", |b| b.iter(|| case.direct()));
        group.bench_function("provider", |b| b.iter(|| case.provider(ctx)));
        group.bench_function("openfeature", |b| b.iter(|| case.openfeature(ctx)));
        group.finish();
    }
}

fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let setup = setup(&runtime);
    if !std::env::args().any(|a| a == "--profile-time") {
        report(&setup, if test_mode { 4 } else { 300 });
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&setup, &mut c);
    c.final_summary();
    runtime.block_on(async {
        for case in &setup.cases {
            case.client.shutdown(Duration::from_secs(2)).await;
        }
    });
    drop(setup.server);
}
