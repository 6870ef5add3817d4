//! Events: `POST /events`, `POST /event-batch`, listing, and the effects of
//! identify and track events shared with the capture host.

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::requests::{
    CreateEvent, CreateEventBatch, EVENT_TYPES, IdentifyBody, TrackBody, check_enum, check_keys,
    check_len, check_opt_len,
};
use crate::faults::Host;
use crate::render;
use crate::server::Ctx;
use crate::store::{Kind, Store, StoredEvent, Upsert};
use crate::util::{ApiFailure, HandlerResult, created, envelope, now, ok, parse_as, parse_ts, ts};
use flagwire_core::schematic::models as wire;

/// An event that passed validation, ready to be applied.
#[derive(Debug)]
pub(crate) struct ValidEvent {
    event_type: &'static str,
    body: Value,
    parsed: Parsed,
    idempotency_key: Option<String>,
    sent_at: Option<String>,
}

#[derive(Debug)]
enum Parsed {
    Identify(IdentifyBody),
    Track(TrackBody),
    Other,
}

/// Validates one event (type, body shape and constraints).
pub(crate) fn validate(
    event_type: &str,
    body: Option<&Value>,
    idempotency_key: Option<&str>,
    sent_at: Option<&str>,
) -> Result<ValidEvent, ApiFailure> {
    check_enum("event_type", event_type, EVENT_TYPES)?;
    let event_type: &'static str = EVENT_TYPES
        .iter()
        .copied()
        .find(|t| *t == event_type)
        .unwrap_or("track");
    check_opt_len("idempotency_key", idempotency_key, 255)?;
    if let Some(s) = sent_at
        && parse_ts(s).is_none()
    {
        return Err(ApiFailure::bad_request(
            "sent_at must be an RFC 3339 date-time",
        ));
    }
    let body_value = body.cloned().unwrap_or(Value::Null);
    let bad = |e: serde_json::Error| {
        ApiFailure::bad_request(format!("invalid {event_type} event body: {e}"))
    };
    let parsed = match event_type {
        "identify" => {
            let b: IdentifyBody = serde_json::from_value(body_value.clone()).map_err(bad)?;
            if b.keys.is_empty() {
                return Err(ApiFailure::bad_request(
                    "identify events need at least one key",
                ));
            }
            check_keys("keys", &b.keys)?;
            if let Some(c) = &b.company {
                check_keys("company.keys", &c.keys)?;
            }
            Parsed::Identify(b)
        }
        "track" => {
            let b: TrackBody = serde_json::from_value(body_value.clone()).map_err(bad)?;
            if b.event.is_empty() {
                return Err(ApiFailure::bad_request(
                    "track events need a non-empty event name",
                ));
            }
            check_len("event", &b.event, 255)?;
            if let Some(c) = &b.company {
                check_keys("company", c)?;
            }
            if let Some(u) = &b.user {
                check_keys("user", u)?;
            }
            if b.quantity.is_some_and(|q| q < 0) {
                return Err(ApiFailure::bad_request("quantity must not be negative"));
            }
            Parsed::Track(b)
        }
        "flag_check" => {
            let _: wire::EventBodyFlagCheck =
                serde_json::from_value(body_value.clone()).map_err(bad)?;
            Parsed::Other
        }
        _ => {
            if !body_value.is_object() {
                return Err(ApiFailure::bad_request(format!(
                    "{event_type} events need a body object"
                )));
            }
            Parsed::Other
        }
    };
    Ok(ValidEvent {
        event_type,
        body: body_value,
        parsed,
        idempotency_key: idempotency_key.map(str::to_owned),
        sent_at: sent_at.map(str::to_owned),
    })
}

/// Applies a validated event: stores it and performs its effects. Returns the
/// stored event ID, or `None` for a duplicate idempotency key.
pub(crate) fn apply(
    s: &mut Store,
    ev: ValidEvent,
    source: Host,
) -> Result<Option<String>, ApiFailure> {
    if !s.claim_idempotency(ev.idempotency_key.as_deref()) {
        return Ok(None);
    }
    let mut company_id = None;
    let mut user_id = None;
    let mut quantity = 0;
    let mut subtype = None;
    match &ev.parsed {
        Parsed::Identify(b) => {
            let t = now();
            let (uid, _) = s.upsert_entity(
                Kind::User,
                Upsert {
                    keys: Some(&b.keys),
                    name: b.name.as_deref(),
                    traits: b.traits.as_ref(),
                    last_seen_at: Some(t),
                    ..Upsert::default()
                },
            )?;
            if let Some(c) = &b.company {
                let (cid, _) = s.upsert_entity(
                    Kind::Company,
                    Upsert {
                        keys: Some(&c.keys),
                        name: c.name.as_deref(),
                        traits: c.traits.as_ref(),
                        last_seen_at: Some(t),
                        ..Upsert::default()
                    },
                )?;
                s.ensure_membership(&cid, &uid);
                company_id = Some(cid);
            }
            user_id = Some(uid);
        }
        Parsed::Track(b) => {
            quantity = b.quantity.unwrap_or(1);
            subtype = Some(b.event.clone());
            if let Some(keys) = &b.company {
                company_id = s.find_by_keys(Kind::Company, keys).map(str::to_owned);
            }
            if let Some(keys) = &b.user {
                user_id = s.find_by_keys(Kind::User, keys).map(str::to_owned);
            }
            if let Some(cid) = &company_id {
                s.record_usage(cid, &b.event, quantity);
            }
        }
        Parsed::Other => {}
    }
    let id = s.next_id("evt");
    s.push_event(StoredEvent {
        id: id.clone(),
        event_type: ev.event_type.to_owned(),
        body: ev.body,
        source,
        captured_at: now(),
        sent_at: ev.sent_at,
        idempotency_key: ev.idempotency_key,
        company_id,
        user_id,
        quantity,
        subtype,
    });
    Ok(Some(id))
}

fn raw_response(ctx: &Ctx<'_>, event_id: Option<String>) -> Value {
    let user_agent = ctx
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    json!({
        "captured_at": ts(now()),
        "event_id": event_id,
        "remote_ip": ctx.remote.ip().to_string(),
        "remote_addr": ctx.remote.to_string(),
        "user_agent": user_agent,
    })
}

fn validate_create(e: &CreateEvent) -> Result<ValidEvent, ApiFailure> {
    if e.backfill == Some(true) && e.trusted_client_clock != Some(true) {
        return Err(ApiFailure::bad_request(
            "backfill requires trusted_client_clock",
        ));
    }
    if e.trusted_client_clock == Some(true) && e.sent_at.is_none() {
        return Err(ApiFailure::bad_request(
            "trusted_client_clock requires sent_at",
        ));
    }
    validate(
        &e.event_type,
        e.body.as_ref(),
        e.idempotency_key.as_deref(),
        e.sent_at.as_deref(),
    )
}

pub(super) fn create(ctx: &Ctx<'_>) -> HandlerResult {
    let body: CreateEvent = parse_as::<wire::CreateEventRequestBody, _>(ctx.body)?;
    let ev = validate_create(&body)?;
    let id = ctx.inner.mutate(|s| apply(s, ev, Host::Rest))?;
    created(&raw_response(ctx, id))
}

pub(super) fn create_batch(ctx: &Ctx<'_>) -> HandlerResult {
    let body: CreateEventBatch = parse_as::<wire::CreateEventBatchRequestBody, _>(ctx.body)?;
    if body.events.len() > 1000 {
        return Err(ApiFailure::bad_request("events accepts at most 1000 items"));
    }
    let valid = body
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            validate_create(e)
                .map_err(|f| ApiFailure::bad_request(format!("events[{i}]: {}", f.message)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ids = ctx.inner.mutate(|s| {
        valid
            .into_iter()
            .map(|ev| apply(s, ev, Host::Rest))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let events: Vec<Value> = ids.into_iter().map(|id| raw_response(ctx, id)).collect();
    created(&json!({ "events": events }))
}

pub(super) fn list(ctx: &Ctx<'_>) -> HandlerResult {
    let page = ctx.query.page()?;
    let types = ctx.query.get_all("event_types");
    for t in &types {
        check_enum("event_types", t, EVENT_TYPES)?;
    }
    let company_id = ctx.query.get("company_id").filter(|s| !s.is_empty());
    let user_id = ctx.query.get("user_id").filter(|s| !s.is_empty());
    let subtype = ctx.query.get("event_subtype").filter(|s| !s.is_empty());
    let idem = ctx.query.get("idempotency_key").filter(|s| !s.is_empty());
    let store = ctx.inner.read();
    let data: Vec<Value> = page
        .apply(store.events.iter().rev().filter(|e| {
            (types.is_empty() || types.contains(&e.event_type.as_str()))
                && company_id.is_none_or(|c| e.company_id.as_deref() == Some(c))
                && user_id.is_none_or(|u| e.user_id.as_deref() == Some(u))
                && subtype.is_none_or(|st| e.subtype.as_deref() == Some(st))
                && idem.is_none_or(|k| e.idempotency_key.as_deref() == Some(k))
        }))
        .map(|e| render::event_detail(&store, e))
        .collect();
    let mut params = Map::new();
    if !types.is_empty() {
        params.insert("event_types".into(), json!(types));
    }
    for (name, v) in [
        ("company_id", company_id),
        ("user_id", user_id),
        ("event_subtype", subtype),
        ("idempotency_key", idem),
    ] {
        if let Some(v) = v {
            params.insert(name.into(), Value::String(v.into()));
        }
    }
    envelope(StatusCode::OK, &data, &page.params(params))
}

pub(super) fn get(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let store = ctx.inner.read();
    let e = store
        .events
        .iter()
        .find(|e| e.id == id)
        .ok_or_else(|| ApiFailure::not_found("event"))?;
    ok(&render::event_detail(&store, e))
}
