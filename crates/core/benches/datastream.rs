//! DataStream decoding cost: the bulk `Flags` message of a 1,000-flag
//! environment, and a typical company partial (decoded, then merged into
//! the cached company).
//!
//! `cargo bench -p flagwire-core --bench datastream -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/rules_common/mod.rs"]
mod rules_common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flagwire_core::datastream::{Message, Mode, Session, parse_message};
use flagwire_core::rules::{Company, Flag};
use rules_common::{large_company, large_flag, small_flag};

/// 1,000 flags: every tenth has 10 rules × 3 conditions, the others one rule.
fn flags_message() -> String {
    let flags: Vec<Flag> = (0..1000)
        .map(|i| {
            let mut flag = if i % 10 == 0 {
                large_flag()
            } else {
                small_flag()
            };
            flag.id = format!("flag_{i:04}");
            flag.key = format!("feature-{i:04}");
            flag
        })
        .collect();
    serde_json::json!({
        "entity_type": "rulesengine.Flags",
        "message_type": "full",
        "data": flags,
    })
    .to_string()
}

/// A usage update: two metrics, a credit balance and the derived entitlement.
fn company_partial() -> String {
    r#"{"entity_type":"rulesengine.Company","entity_id":"company_0042","message_type":"partial",
        "stream_id":"1760000000000-12","data":{"metrics":[
          {"account_id":"acc","environment_id":"env","company_id":"company_0042","event_subtype":"event_3",
           "period":"current_month","month_reset":"first_of_month","value":412,"created_at":"2024-03-01T00:00:00Z"},
          {"account_id":"acc","environment_id":"env","company_id":"company_0042","event_subtype":"event_0",
           "period":"all_time","month_reset":"first_of_month","value":1201,"created_at":"2024-01-01T00:00:00Z"}],
        "credit_balances":{"credit_ai":242.5}}}"#
        .to_owned()
}

fn benches(c: &mut Criterion) {
    let flags = flags_message();
    let partial = company_partial();
    let company: Company = large_company();
    match parse_message(&flags).map(|r| r.message) {
        Ok(Message::Flags { flags, skipped: 0 }) => assert_eq!(flags.len(), 1000),
        other => panic!("fixture does not decode as 1,000 flags: {other:?}"),
    }

    let mut group = c.benchmark_group("datastream");
    group.throughput(Throughput::Bytes(flags.len() as u64));
    group.bench_function("parse_flags_1000", |b| {
        b.iter(|| parse_message(black_box(&flags)))
    });
    group.throughput(Throughput::Bytes(partial.len() as u64));
    group.bench_function("parse_company_partial", |b| {
        b.iter(|| parse_message(black_box(&partial)))
    });
    group.bench_function("parse_and_merge_company_partial", |b| {
        b.iter_batched_ref(
            || company.clone(),
            |cached| {
                let Ok(Message::CompanyPatch { patch, .. }) =
                    parse_message(black_box(&partial)).map(|r| r.message)
                else {
                    panic!("fixture is a company partial")
                };
                patch.merge_into(cached)
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("session_on_text_company_partial", |b| {
        let mut session = Session::new(Mode::Direct);
        session.on_connected();
        // Fresh ids would need a new frame per iteration; a duplicate still
        // decodes the whole frame before the cursor skips it.
        let _ = session.on_text(&partial);
        b.iter(|| session.on_text(black_box(&partial)))
    });
    group.finish();
}

criterion_group!(datastream, benches);
criterion_main!(datastream);
