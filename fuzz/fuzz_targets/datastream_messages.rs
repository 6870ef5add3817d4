//! DataStream frames from arbitrary text: decoding never panics and its
//! errors stay short; the session agrees with the decoder; every decoded
//! patch applies to a cached company or user without panicking, reports its
//! key changes truthfully, and survives its own JSON; full entities and
//! flag sets load into the rules engine.
#![no_main]

use flagwire_core::datastream::{
    CacheKeys, CompanyPatch, Message, Mode, Session, UserPatch, bump_metrics, parse_message,
    resolve_lookups, stale_lookups,
};
use flagwire_core::events::Keys;
use flagwire_core::rules::{
    Company, CompanyMetric, FeatureEntitlement, MetricPeriod, MonthReset, PreparedCompany,
    PreparedUser, RulesEngine, User,
};
use flagwire_fuzz::text;
use libfuzzer_sys::fuzz_target;

/// The longest error message a frame may produce (type names, path and
/// detail are each capped by the decoder).
const MAX_ERROR_LEN: usize = 2_000;

fn cached_company() -> Company {
    let mut co = Company::new("co_1");
    co.keys = [("id".to_owned(), "acme".to_owned())].into();
    co.credit_balances = [("cr".to_owned(), 10.0)].into();
    co.metrics = vec![
        CompanyMetric::new(
            "api",
            MetricPeriod::CurrentMonth,
            MonthReset::FirstOfMonth,
            5,
        ),
        CompanyMetric::new(
            "api",
            MetricPeriod::AllTime,
            MonthReset::FirstOfMonth,
            i64::MAX,
        ),
    ];
    let mut metered = FeatureEntitlement::new("feat", "api", "numeric");
    metered.event_name = Some("api".into());
    metered.metric_period = Some(MetricPeriod::CurrentMonth);
    metered.credit_id = Some("cr".into());
    co.entitlements = vec![metered];
    co
}

fn cached_user() -> User {
    let mut user = User::new("u_1");
    user.keys = [("email".to_owned(), "a@b.c".to_owned())].into();
    user
}

/// Checks what a merge reports about keys against the keys themselves.
fn check_keys(before: &Keys, after: &Keys, keys_changed: bool, old_keys: Option<&Keys>) {
    assert_eq!(keys_changed, before != after);
    assert_eq!(old_keys, keys_changed.then_some(before));
    // Merges only add or overwrite keys.
    assert!(before.keys().all(|k| after.contains_key(k)));
    if let Some(old) = old_keys {
        for (name, value) in stale_lookups(old, after) {
            assert!(after.get(name).is_some_and(|v| v != value));
        }
    }
}

fn company_patch(patch: &CompanyPatch) {
    let mut company = cached_company();
    let before = company.keys.clone();
    let outcome = patch.apply(&mut company);
    check_keys(
        &before,
        &company.keys,
        outcome.keys_changed,
        outcome.old_keys.as_ref(),
    );
    let json = serde_json::to_string(patch).expect("patches serialise");
    let again = CompanyPatch::from_json(&json)
        .unwrap_or_else(|e| panic!("a patch's own JSON does not load: {e}\n{json}"));
    assert_eq!(&again, patch);
    // Applying the same patch twice is applying it once.
    let mut twice = company.clone();
    patch.apply(&mut twice);
    assert_eq!(twice, company);
    bump_metrics(&mut company, "api", i64::MAX);
    let _ = PreparedCompany::new(company);
}

fn user_patch(patch: &UserPatch) {
    let mut user = cached_user();
    let before = user.keys.clone();
    let outcome = patch.apply(&mut user);
    check_keys(
        &before,
        &user.keys,
        outcome.keys_changed,
        outcome.old_keys.as_ref(),
    );
    let json = serde_json::to_string(patch).expect("patches serialise");
    let again = UserPatch::from_json(&json)
        .unwrap_or_else(|e| panic!("a patch's own JSON does not load: {e}\n{json}"));
    assert_eq!(&again, patch);
    let _ = PreparedUser::new(user);
}

fuzz_target!(|data: &[u8]| {
    let Some(frame) = text(data) else { return };
    let parsed = parse_message(frame);

    let mut session = Session::new(Mode::Direct);
    session.on_connected();
    let via_session = session.on_text(frame);
    assert_eq!(parsed.is_ok(), via_session.is_ok());
    assert_eq!(session.stats().malformed, u64::from(parsed.is_err()));

    let received = match parsed {
        Ok(received) => received,
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.len() <= MAX_ERROR_LEN, "{} bytes", shown.len());
            return;
        }
    };
    let keys = CacheKeys::default();
    match received.message {
        Message::Flags { flags, .. } => {
            assert!(flags.iter().all(|f| !f.key.is_empty()));
            assert!(session.is_ready());
            let engine = RulesEngine::new(flags);
            for flag in engine.flags() {
                let _ = keys.flag(flag.key());
            }
        }
        Message::Flag(flag) => assert!(!flag.key.is_empty()),
        Message::FlagDeleted { key, .. } => assert!(!key.is_empty()),
        Message::Company(company) => {
            assert!(!company.id.is_empty());
            let _ = resolve_lookups(company.keys.keys().map(String::as_str));
            let lookups: Vec<String> = keys.company_lookups(&company.keys).collect();
            assert_eq!(lookups.len(), company.keys.len());
            // A full company is also a valid patch of a cached one.
            let json = serde_json::to_string(&company).expect("companies serialise");
            company_patch(&CompanyPatch::from_json(&json).expect("a company is a patch"));
            let _ = PreparedCompany::new(company);
        }
        Message::CompanyPatch { id, patch } => {
            assert!(!id.is_empty());
            company_patch(&patch);
        }
        Message::User(user) => {
            assert!(!user.id.is_empty());
            let json = serde_json::to_string(&user).expect("users serialise");
            user_patch(&UserPatch::from_json(&json).expect("a user is a patch"));
            let _ = PreparedUser::new(user);
        }
        Message::UserPatch { id, patch } => {
            assert!(!id.is_empty());
            user_patch(&patch);
        }
        Message::CompanyDeleted { id, .. } | Message::UserDeleted { id, .. } => {
            assert!(!id.is_empty());
        }
        Message::Reload => assert!(!session.is_ready()),
        _ => {}
    }
});
