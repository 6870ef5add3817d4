//! Webhook endpoints.

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::requests::{
    CreateWebhook, TestWebhook, UpdateWebhook, WEBHOOK_REQUEST_TYPES, check_enum,
    validate_webhook_fields,
};
use crate::render;
use crate::server::Ctx;
use crate::store::Notice;
use crate::util::{ApiFailure, HandlerResult, created, envelope, ok, parse_body};

pub(super) fn list(ctx: &Ctx<'_>, count: bool) -> HandlerResult {
    let page = ctx.query.page()?;
    let q = ctx.query.search()?;
    let store = ctx.inner.read();
    let it = store.webhooks.values().rev().filter(|w| {
        q.as_ref()
            .is_none_or(|q| w.name.to_lowercase().contains(q) || w.url.to_lowercase().contains(q))
    });
    let mut params = Map::new();
    if let Some(q) = &q {
        params.insert("q".into(), Value::String(q.clone()));
    }
    if count {
        let n = it.count();
        return envelope(StatusCode::OK, &json!({ "count": n }), &page.params(params));
    }
    let data: Vec<Value> = page.apply(it).map(render::webhook).collect();
    envelope(StatusCode::OK, &data, &page.params(params))
}

/// Validates and registers a webhook; returns it rendered.
pub(crate) fn apply_create(
    s: &mut crate::store::Store,
    body: &CreateWebhook,
) -> Result<Value, ApiFailure> {
    validate_webhook_fields(
        Some(&body.name),
        Some(&body.url),
        Some(&body.request_types),
        None,
    )?;
    let id = s.create_webhook(body);
    s.webhooks
        .get(&id)
        .map(render::webhook)
        .ok_or_else(|| ApiFailure::not_found("webhook"))
}

pub(super) fn create(ctx: &Ctx<'_>) -> HandlerResult {
    let body: CreateWebhook = parse_body(ctx.body)?;
    let data = ctx.inner.mutate(|s| apply_create(s, &body))?;
    created(&data)
}

pub(super) fn get(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let store = ctx.inner.read();
    let w = store
        .webhooks
        .get(id)
        .ok_or_else(|| ApiFailure::not_found("webhook"))?;
    ok(&render::webhook(w))
}

pub(super) fn update(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let body: UpdateWebhook = parse_body(ctx.body)?;
    validate_webhook_fields(
        body.name.as_deref(),
        body.url.as_deref(),
        body.request_types.as_deref(),
        body.status.as_deref(),
    )?;
    let data = ctx.inner.mutate(|s| -> Result<Value, ApiFailure> {
        s.update_webhook(id, &body)?;
        s.webhooks
            .get(id)
            .map(render::webhook)
            .ok_or_else(|| ApiFailure::not_found("webhook"))
    })?;
    ok(&data)
}

pub(super) fn delete(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    if ctx.inner.mutate(|s| s.webhooks.remove(id).is_some()) {
        ok(&json!({ "deleted": true }))
    } else {
        Err(ApiFailure::not_found("webhook"))
    }
}

/// Queues a `test.send`-style delivery of `request_type` to this endpoint
/// only. The delivery happens asynchronously; the answer reports that it was
/// queued.
pub(super) fn test(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let body: TestWebhook = parse_body(ctx.body)?;
    check_enum("request_type", &body.request_type, WEBHOOK_REQUEST_TYPES)?;
    let action = WEBHOOK_REQUEST_TYPES
        .iter()
        .copied()
        .find(|t| *t == body.request_type)
        .unwrap_or("test.send");
    let queued = ctx.inner.send_to(
        id,
        Notice {
            action,
            object_type: "test",
            body: json!({ "message": "test webhook from flagwire-mock" }),
            company_id: None,
            feature_id: None,
        },
    );
    if !queued {
        return Err(ApiFailure::not_found("webhook"));
    }
    ok(&json!({ "success": true, "response_code": 200 }))
}
