//! Webhook endpoints.

use serde_json::{Value, json};

use super::requests::{
    CreateWebhook, TestWebhook, UpdateWebhook, WEBHOOK_REQUEST_TYPES, check_enum,
    validate_webhook_fields,
};
use crate::render;
use crate::server::Ctx;
use crate::store::Notice;
use crate::util::{ApiFailure, HandlerResult, created, ok, parse_as};
use flagwire_core::schematic::models as wire;

pub(super) fn list(ctx: &Ctx<'_>, count: bool) -> HandlerResult {
    let page = ctx.query.page()?;
    let q = ctx.query.search()?;
    let store = ctx.inner.read();
    let it = store.webhooks.values().rev().filter(|w| {
        q.as_ref()
            .is_none_or(|q| w.name.to_lowercase().contains(q) || w.url.to_lowercase().contains(q))
    });
    page.reply(it, count, ctx.query.search_params(), render::webhook)
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
    let body: CreateWebhook = parse_as::<wire::CreateWebhookRequestBody, _>(ctx.body)?;
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
    let body: UpdateWebhook = parse_as::<wire::UpdateWebhookRequestBody, _>(ctx.body)?;
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
    let body: TestWebhook = parse_as::<wire::TestWebhookRequestBody, _>(ctx.body)?;
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

fn webhook_event(store: &crate::store::Store, e: &crate::webhook::WebhookEvent) -> Value {
    let mut v = json!({
        "id": e.id,
        "webhook_id": e.webhook_id,
        "request_type": e.request_type,
        "payload": String::from_utf8_lossy(&e.payload),
        "status": e.status,
        "response_code": e.response_code,
        "created_at": crate::util::ts(e.created_at),
        "updated_at": crate::util::ts(e.updated_at),
        "sent_at": e.sent_at.map(crate::util::ts),
    });
    if let Some(w) = store.webhooks.get(&e.webhook_id) {
        v["webhook"] = render::webhook(w);
    }
    v
}

pub(super) fn list_events(ctx: &Ctx<'_>, count: bool) -> HandlerResult {
    let page = ctx.query.page()?;
    let q = ctx.query.search()?;
    let ids = ctx.query.ids("ids")?;
    let webhook_id = ctx.query.get("webhook_id").filter(|s| !s.is_empty());
    let events = ctx.inner.deliveries.events();
    let it = events.iter().rev().filter(|e| {
        (ids.is_empty() || ids.contains(&e.id))
            && webhook_id.is_none_or(|w| e.webhook_id == w)
            && q.as_ref()
                .is_none_or(|q| e.request_type.contains(q.as_str()))
    });
    let mut params = ctx.query.search_params();
    if !ids.is_empty() {
        params.insert("ids".into(), json!(ids));
    }
    if let Some(w) = webhook_id {
        params.insert("webhook_id".into(), Value::String(w.into()));
    }
    let store = ctx.inner.read();
    page.reply(it, count, params, |e| webhook_event(&store, e))
}

pub(super) fn get_event(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let events = ctx.inner.deliveries.events();
    let e = events
        .iter()
        .find(|e| e.id == id)
        .ok_or_else(|| ApiFailure::not_found("webhook event"))?;
    let store = ctx.inner.read();
    ok(&webhook_event(&store, e))
}
