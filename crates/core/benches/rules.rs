//! Flag-check latency of the native rules engine.
//!
//! Two scenarios: a flag with 10 rules × 3 conditions checked against a
//! company with 20 traits and 5 metrics (every condition is evaluated), and
//! a flag with 1 rule / 1 condition. Besides criterion's report, the run
//! ends with a summary giving the median nanoseconds per check and the
//! heap allocations per check, counted by the counting global allocator.
//!
//! `cargo bench -p flagwire-core --bench rules -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/rules_common/mod.rs"]
mod rules_common;

use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use flagwire_alloc_counter::{CountingAllocator, count_allocations};
use flagwire_core::rules::{PreparedCompany, PreparedUser, RulesEngine};
use rules_common::{NOW, large_company, large_flag, large_user, small_flag};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

struct Fixture {
    engine: RulesEngine,
    company: PreparedCompany,
    user: PreparedUser,
}

impl Fixture {
    fn new() -> Self {
        Self {
            engine: RulesEngine::new([large_flag(), small_flag()]),
            company: PreparedCompany::new(large_company()),
            user: PreparedUser::new(large_user()),
        }
    }

    #[inline]
    fn large(&self) -> bool {
        self.engine
            .check(
                black_box("advanced-reports"),
                Some(&self.company),
                Some(&self.user),
                black_box(NOW),
            )
            .value
    }

    #[inline]
    fn small(&self) -> bool {
        self.engine
            .check(
                black_box("dark-mode"),
                Some(&self.company),
                None,
                black_box(NOW),
            )
            .value
    }
}

fn benches(c: &mut Criterion, fx: &Fixture) {
    let mut group = c.benchmark_group("rules");
    group.bench_function("check_10_rules_x_3_conditions", |b| b.iter(|| fx.large()));
    group.bench_function("check_1_rule_1_condition", |b| b.iter(|| fx.small()));
    group.bench_function("prepare_company_20_traits_5_metrics", |b| {
        let company = large_company();
        b.iter(|| PreparedCompany::new(black_box(company.clone())))
    });
    group.finish();
}

/// Median nanoseconds per call over `samples` batches of `batch` calls.
fn median_ns(samples: usize, batch: u32, f: impl Fn() -> bool) -> f64 {
    let mut per_call: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..batch {
                black_box(f());
            }
            start.elapsed().as_nanos() as f64 / f64::from(batch)
        })
        .collect();
    per_call.sort_by(f64::total_cmp);
    per_call[per_call.len() / 2]
}

fn summary(fx: &Fixture, full: bool) {
    // Short batches (well under a scheduler time slice) so that preemption
    // by other processes lands in a few samples, which the median discards.
    let (samples, batch) = if full { (3001, 1000) } else { (3, 10) };
    for (name, target, f) in [
        (
            "10 rules x 3 conditions",
            200.0,
            &(|| fx.large()) as &dyn Fn() -> bool,
        ),
        (
            "1 rule / 1 condition",
            50.0,
            &(|| fx.small()) as &dyn Fn() -> bool,
        ),
    ] {
        let ((), allocations) = count_allocations(|| {
            for _ in 0..1000 {
                black_box(f());
            }
        });
        let median = median_ns(samples, batch, f);
        println!(
            "summary: {name}: median {median:.1} ns/check (target <= {target} ns), {} allocations/check",
            allocations as f64 / 1000.0
        );
        assert_eq!(allocations, 0, "{name}: the check allocated");
    }
}

fn main() {
    let fx = Fixture::new();
    assert!(
        fx.large() && fx.small(),
        "fixtures must match their last rule"
    );
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion, &fx);
    criterion.final_summary();
    let full = std::env::args().any(|a| a == "--bench");
    summary(&fx, full);
}
