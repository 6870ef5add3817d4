//! The flag rules engine over arbitrary flags, company and user JSON:
//! loading gives a typed error or an engine, checking never panics (no
//! arithmetic overflow on metrics, usage or credits), results are
//! deterministic, and the model's own JSON loads into an engine that decides
//! every check the same way. Refused preflight input (negative quantities
//! or costs) gives the flag default with `err` set.
#![no_main]

use flagwire_core::rules::{
    CheckOptions, Company, Flag, PreparedCompany, PreparedUser, RulesEngine, User,
};
use flagwire_fuzz::{fields, take, text};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

/// At most this many flags are checked per input.
const MAX_FLAGS: usize = 8;

fuzz_target!(|data: &[u8]| {
    // 8 bytes of clock, 8 of usage, 8 of event usage, 8 of credit cost, then
    // flags, company, user and the event subtype, separated by 0xff.
    let (now, rest) = take::<8>(data);
    let (usage, rest) = take::<8>(rest);
    let (event_usage, rest) = take::<8>(rest);
    let (cost, rest) = take::<8>(rest);
    let [flags, company, user, subtype] = fields::<4>(rest);

    let Some(flags) = text(flags) else { return };
    let Ok(engine) = RulesEngine::from_json(flags) else {
        return;
    };
    let company = text(company).and_then(|c| PreparedCompany::from_json(c).ok());
    let user = text(user).and_then(|u| PreparedUser::from_json(u).ok());
    let subtype = text(subtype).unwrap_or("");

    // Any instant of the years RFC 3339 can write (0000..=9999): results
    // carry timestamps derived from the clock and serialise them so.
    const YEAR_0: i64 = -62_167_219_200;
    const YEAR_10000: i64 = 253_402_300_800;
    let now = i64::from_le_bytes(now).rem_euclid(YEAR_10000 - YEAR_0) + YEAR_0;
    let now = OffsetDateTime::from_unix_timestamp(now).expect("in range");
    let cost = f64::from_le_bytes(cost);
    let costs = [(subtype, cost)];
    // Event quantities priced by `quantity_rates`: the cost bytes again
    // (any float, negative and NaN included) and the usage as a float.
    let quantities = [
        ("input_tokens", cost),
        ("output_tokens", i64::from_le_bytes(usage) as f64),
    ];
    let options = CheckOptions::new()
        .usage(i64::from_le_bytes(usage))
        .event_usage(subtype, i64::from_le_bytes(event_usage))
        .event_quantities(subtype, &quantities)
        .credit_cost(&costs);

    // The same flags and subjects, through their own JSON.
    let model: Vec<Flag> = engine.flags().map(|f| f.flag().clone()).collect();
    let json = serde_json::to_string(&model).expect("flags serialise");
    let engine_again = RulesEngine::from_json(&json)
        .unwrap_or_else(|e| panic!("serialised flags do not load: {e}\n{json}"));
    assert_eq!(engine_again.len(), engine.len());
    let company_again = company.as_ref().map(|c| {
        let json = serde_json::to_string(c.company()).expect("company serialises");
        let back: Company = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("serialised company does not load: {e}\n{json}"));
        PreparedCompany::new(back)
    });
    let user_again = user.as_ref().map(|u| {
        let json = serde_json::to_string(u.user()).expect("user serialises");
        let back: User = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("serialised user does not load: {e}\n{json}"));
        PreparedUser::new(back)
    });

    for flag in engine.flags().take(MAX_FLAGS) {
        let key = flag.key();
        for opts in [CheckOptions::new(), options] {
            let eval = engine.check_with(key, company.as_ref(), user.as_ref(), now, &opts);
            assert_eq!(eval.flag_key, key);
            if eval.err.is_some() {
                // Refused preflight: the default, never a rule.
                assert_eq!(eval.value, flag.flag().default_value);
                assert!(eval.rule_id.is_none() && eval.feature_usage.is_none());
                assert_eq!(eval.err, opts.validate().err().map(|e| e.as_str()));
            }
            let result = eval.to_result();
            let twice = engine
                .check_with(key, company.as_ref(), user.as_ref(), now, &opts)
                .to_result();
            assert_eq!(result, twice, "the same check twice differs");
            let again = engine_again
                .check_with(key, company_again.as_ref(), user_again.as_ref(), now, &opts)
                .to_result();
            assert_eq!(
                result, again,
                "the model's own JSON decides differently\n{json}"
            );

            let text = serde_json::to_string(&result).expect("results serialise");
            let back: flagwire_core::rules::CheckFlagResult =
                serde_json::from_str(&text).expect("results read back");
            assert_eq!(back, result);
        }
    }

    let unknown = "\u{0}no such flag\u{0}";
    if engine.flag(unknown).is_none() {
        let missing = engine.check(unknown, company.as_ref(), user.as_ref(), now);
        assert_eq!(missing.reason.to_string(), "Flag not found");
        assert!(!missing.value);
    }
});
