//! Response decoding of generated operations from an arbitrary status and
//! body: never panics; a non-2xx status is always an error carrying that
//! status; a 2xx is decoded or refused with a typed error naming the status.
#![no_main]

use flagwire_core::Operation;
use flagwire_core::esauti::api as esauti;
use flagwire_core::schematic::{
    catalogs, companies, credits, dataexports, entitlements, events, features, plans, webhooks,
};
use flagwire_fuzz::{status, take};
use http::{HeaderMap, StatusCode};
use libfuzzer_sys::fuzz_target;

/// Decodes `body` as `O`'s response and checks the status rules.
fn decode<O: Operation>(status: StatusCode, headers: &HeaderMap, body: &[u8]) {
    match O::parse_response(status, headers, body) {
        Ok(_) => assert!(
            status.is_success(),
            "{}: {status} decoded as success",
            O::OPERATION_ID
        ),
        Err(e) => {
            assert_eq!(e.status(), status, "{}", O::OPERATION_ID);
            let _ = e.to_string();
            let _ = format!("{e:?}");
        }
    }
}

macro_rules! operations {
    ($($op:ty),* $(,)?) => {
        const DECODERS: &[fn(StatusCode, &HeaderMap, &[u8])] = &[$(decode::<$op>),*];
    };
}

operations![
    features::CheckFlag,
    features::CheckFlags,
    features::CheckFlagsBulk,
    features::CountFeatures,
    features::ListFeatures,
    companies::ListCompanies,
    companies::GetCompany,
    plans::CreatePlan,
    plans::DeletePlan,
    credits::AcquireCreditLease,
    entitlements::CreateCompanyOverride,
    events::ListEvents,
    events::GetEventSummaries,
    events::CreateEventBatch,
    webhooks::GetWebhook,
    webhooks::GetWebhookEvent,
    catalogs::AddCreditBundle,
    dataexports::GetDataExportArtifact,
    esauti::contacts::CreateContact,
];

fuzz_target!(|data: &[u8]| {
    // One byte picks the operation, two the status (100..=999), the rest is
    // the body. A 2xx status is picked half of the time.
    let ([which, hi, lo], body) = take::<3>(data);
    let decoder = DECODERS[usize::from(which) % DECODERS.len()];
    decoder(status(hi, lo), &HeaderMap::new(), body);
});
