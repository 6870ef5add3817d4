//! The Schematic REST API: routing and handlers.

pub(crate) mod capture;
mod entities;
mod events;
mod features;
mod flags;
pub(crate) mod requests;
mod webhooks;

use http::{Method, StatusCode};

pub(crate) use entities::{apply_upsert_company, apply_upsert_user};
pub(crate) use events::{apply as apply_event, validate as validate_event};
pub(crate) use features::apply_create as apply_create_feature;
pub(crate) use flags::{apply_create as apply_create_flag, validate_rules};
pub(crate) use webhooks::apply_create as apply_create_webhook;

use crate::faults::path_segments;
use crate::server::{Ctx, Dispatched};
use crate::store::Kind;
use crate::util::ApiFailure;

/// Message of the 401 answer.
pub(crate) const UNAUTHORIZED: &str = "missing or invalid API key (X-Schematic-Api-Key)";

/// Copies up to `buf.len()` segments into `buf`; returns how many there
/// were, or `buf.len() + 1` when there are more.
fn fill<'a, const N: usize>(
    buf: &mut [&'a str; N],
    segments: impl Iterator<Item = &'a str>,
) -> usize {
    let mut n = 0;
    for seg in segments {
        if n == N {
            return N + 1;
        }
        buf[n] = seg;
        n += 1;
    }
    n
}

/// Routes a REST request and runs its handler. Path segments are
/// percent-decoded (flag keys and IDs may contain escaped characters).
pub(crate) fn dispatch(ctx: &Ctx<'_>) -> Dispatched {
    let decoded: Vec<std::borrow::Cow<'_, str>>;
    let mut buf: [&str; 6] = [""; 6];
    let n = if ctx.path.contains('%') {
        decoded = path_segments(ctx.path)
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy())
            .collect();
        fill(&mut buf, decoded.iter().map(|s| s.as_ref()))
    } else {
        fill(&mut buf, path_segments(ctx.path))
    };
    let segs: &[&str] = if n > buf.len() { &[] } else { &buf[..n] };
    let too_deep = n > buf.len();

    let routed = if too_deep {
        None
    } else {
        route(ctx.method, segs)
    };
    let operation = routed.map(|(op, _)| op);
    if ctx.method == Method::GET && segs == ["ready"] {
        // The replicator's health document: no API key needed.
        let (status, body) = ctx.inner.datastream.ready_document();
        return Dispatched {
            result: Ok(crate::util::Reply { status, body }),
            operation: None,
        };
    }
    if !ctx.inner.authorized(ctx.headers) {
        return Dispatched {
            result: Err(ApiFailure::new(StatusCode::UNAUTHORIZED, UNAUTHORIZED)),
            operation,
        };
    }
    let Some((operation, handler)) = routed else {
        let result = match crate::operations::lookup(ctx.method, ctx.path) {
            Some(op) => Err(ApiFailure::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("not emulated: {op}"),
            )),
            None => Err(ApiFailure::new(StatusCode::NOT_FOUND, "not found")),
        };
        return Dispatched {
            result,
            operation: None,
        };
    };
    let result = handler(ctx, segs);
    Dispatched {
        result,
        operation: Some(operation),
    }
}

/// A handler: the request and its path segments.
type Handler = fn(&Ctx<'_>, &[&str]) -> crate::util::HandlerResult;

/// The operation ID and handler of an emulated route.
fn route(method: &Method, segs: &[&str]) -> Option<(&'static str, Handler)> {
    use Method as M;
    let found: (&'static str, Handler) = match (method, segs) {
        (&M::GET, ["companies"]) => ("listCompanies", |c, _| entities::list(c, Kind::Company)),
        (&M::POST, ["companies"]) => ("upsertCompany", |c, _| entities::upsert_company(c, false)),
        (&M::GET, ["companies", "count"]) => {
            ("countCompanies", |c, _| entities::count(c, Kind::Company))
        }
        (&M::POST, ["companies", "create"]) => {
            ("createCompany", |c, _| entities::upsert_company(c, true))
        }
        (&M::POST, ["companies", "delete"]) => ("deleteCompanyByKeys", |c, _| {
            entities::delete_by_keys(c, Kind::Company)
        }),
        (&M::GET, ["companies", "lookup"]) => {
            ("lookupCompany", |c, _| entities::lookup(c, Kind::Company))
        }
        (&M::GET, ["companies", _]) => ("getCompany", |c, s| entities::get(c, Kind::Company, s[1])),
        (&M::DELETE, ["companies", _]) => ("deleteCompany", |c, s| {
            entities::delete(c, Kind::Company, s[1])
        }),
        (&M::POST, ["company-traits"]) => ("upsertCompanyTrait", |c, _| {
            entities::upsert_trait(c, Kind::Company)
        }),
        (&M::GET, ["company-memberships"]) => ("listCompanyMemberships", |c, _| {
            entities::list_memberships(c)
        }),
        (&M::POST, ["company-memberships"]) => ("getOrCreateCompanyMembership", |c, _| {
            entities::create_membership(c)
        }),
        (&M::DELETE, ["company-memberships", _]) => ("deleteCompanyMembership", |c, s| {
            entities::delete_membership(c, s[1])
        }),
        (&M::GET, ["entity-trait-definitions"]) => ("listEntityTraitDefinitions", |c, _| {
            entities::list_trait_definitions(c, false)
        }),
        (&M::POST, ["entity-trait-definitions"]) => ("getOrCreateEntityTraitDefinition", |c, _| {
            entities::create_trait_definition(c)
        }),
        (&M::GET, ["entity-trait-definitions", "count"]) => {
            ("countEntityTraitDefinitions", |c, _| {
                entities::list_trait_definitions(c, true)
            })
        }
        (&M::GET, ["entity-trait-definitions", _]) => ("getEntityTraitDefinition", |c, s| {
            entities::get_trait_definition(c, s[1])
        }),
        (&M::GET, ["users"]) => ("listUsers", |c, _| entities::list(c, Kind::User)),
        (&M::POST, ["users"]) => ("upsertUser", |c, _| entities::upsert_user(c, false)),
        (&M::GET, ["users", "count"]) => ("countUsers", |c, _| entities::count(c, Kind::User)),
        (&M::POST, ["users", "create"]) => ("createUser", |c, _| entities::upsert_user(c, true)),
        (&M::POST, ["users", "delete"]) => ("deleteUserByKeys", |c, _| {
            entities::delete_by_keys(c, Kind::User)
        }),
        (&M::GET, ["users", "lookup"]) => ("lookupUser", |c, _| entities::lookup(c, Kind::User)),
        (&M::GET, ["users", _]) => ("getUser", |c, s| entities::get(c, Kind::User, s[1])),
        (&M::DELETE, ["users", _]) => ("deleteUser", |c, s| entities::delete(c, Kind::User, s[1])),
        (&M::POST, ["user-traits"]) => ("upsertUserTrait", |c, _| {
            entities::upsert_trait(c, Kind::User)
        }),
        (&M::GET, ["features"]) => ("listFeatures", |c, _| features::list(c, false)),
        (&M::POST, ["features"]) => ("createFeature", |c, _| features::create(c)),
        (&M::GET, ["features", "count"]) => ("countFeatures", |c, _| features::list(c, true)),
        (&M::GET, ["features", _]) => ("getFeature", |c, s| features::get(c, s[1])),
        (&M::PUT, ["features", _]) => ("updateFeature", |c, s| features::update(c, s[1])),
        (&M::DELETE, ["features", _]) => ("deleteFeature", |c, s| features::delete(c, s[1])),
        (&M::GET, ["flags"]) => ("listFlags", |c, _| flags::list(c, false)),
        (&M::POST, ["flags"]) => ("createFlag", |c, _| flags::create(c)),
        (&M::GET, ["flags", "count"]) => ("countFlags", |c, _| flags::list(c, true)),
        (&M::POST, ["flags", "check"]) => ("checkFlags", |c, _| flags::check_all(c)),
        (&M::POST, ["flags", "check-bulk"]) => ("checkFlagsBulk", |c, _| flags::check_bulk(c)),
        (&M::GET, ["flags", _]) => ("getFlag", |c, s| flags::get(c, s[1])),
        (&M::PUT, ["flags", _]) => ("updateFlag", |c, s| flags::update(c, s[1])),
        (&M::DELETE, ["flags", _]) => ("deleteFlag", |c, s| flags::delete(c, s[1])),
        (&M::PUT, ["flags", _, "rules"]) => {
            ("updateFlagRules", |c, s| flags::update_rules(c, s[1]))
        }
        (&M::POST, ["flags", _, "check"]) => ("checkFlag", |c, s| flags::check_one(c, s[1])),
        (&M::POST, ["events"]) => ("createEvent", |c, _| events::create(c)),
        (&M::GET, ["events"]) => ("listEvents", |c, _| events::list(c)),
        (&M::GET, ["events", _]) => ("getEvent", |c, s| events::get(c, s[1])),
        (&M::POST, ["event-batch"]) => ("createEventBatch", |c, _| events::create_batch(c)),
        (&M::GET, ["webhook-events"]) => {
            ("listWebhookEvents", |c, _| webhooks::list_events(c, false))
        }
        (&M::GET, ["webhook-events", "count"]) => {
            ("countWebhookEvents", |c, _| webhooks::list_events(c, true))
        }
        (&M::GET, ["webhook-events", _]) => {
            ("getWebhookEvent", |c, s| webhooks::get_event(c, s[1]))
        }
        (&M::GET, ["webhooks"]) => ("listWebhooks", |c, _| webhooks::list(c, false)),
        (&M::POST, ["webhooks"]) => ("createWebhook", |c, _| webhooks::create(c)),
        (&M::GET, ["webhooks", "count"]) => ("countWebhooks", |c, _| webhooks::list(c, true)),
        (&M::GET, ["webhooks", _]) => ("getWebhook", |c, s| webhooks::get(c, s[1])),
        (&M::PUT, ["webhooks", _]) => ("updateWebhook", |c, s| webhooks::update(c, s[1])),
        (&M::DELETE, ["webhooks", _]) => ("deleteWebhook", |c, s| webhooks::delete(c, s[1])),
        (&M::POST, ["webhooks", _, "test"]) => {
            ("sendTestWebhookAction", |c, s| webhooks::test(c, s[1]))
        }
        _ => return None,
    };
    Some(found)
}

/// Every emulated operation ID.
pub(crate) const EMULATED: &[&str] = &[
    "listCompanies",
    "upsertCompany",
    "countCompanies",
    "createCompany",
    "deleteCompanyByKeys",
    "lookupCompany",
    "getCompany",
    "deleteCompany",
    "upsertCompanyTrait",
    "listCompanyMemberships",
    "getOrCreateCompanyMembership",
    "deleteCompanyMembership",
    "listEntityTraitDefinitions",
    "getOrCreateEntityTraitDefinition",
    "countEntityTraitDefinitions",
    "getEntityTraitDefinition",
    "listUsers",
    "upsertUser",
    "countUsers",
    "createUser",
    "deleteUserByKeys",
    "lookupUser",
    "getUser",
    "deleteUser",
    "upsertUserTrait",
    "listFeatures",
    "createFeature",
    "countFeatures",
    "getFeature",
    "updateFeature",
    "deleteFeature",
    "listFlags",
    "createFlag",
    "countFlags",
    "checkFlags",
    "checkFlagsBulk",
    "getFlag",
    "updateFlag",
    "deleteFlag",
    "updateFlagRules",
    "checkFlag",
    "createEvent",
    "listEvents",
    "getEvent",
    "createEventBatch",
    "listWebhooks",
    "createWebhook",
    "countWebhooks",
    "getWebhook",
    "updateWebhook",
    "deleteWebhook",
    "sendTestWebhookAction",
    "listWebhookEvents",
    "countWebhookEvents",
    "getWebhookEvent",
];
