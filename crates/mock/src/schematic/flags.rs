//! Flags, their rules, and flag checks.

use serde_json::{Value, json};

use super::requests::{CheckBody, CheckBulk, CreateFlag, UpdateRules, check_items, validate_check};
use crate::render;
use crate::server::Ctx;
use crate::util::{ApiFailure, HandlerResult, created, ok, parse_as, parse_body};
use flagwire_core::schematic::models as wire;

pub(super) fn list(ctx: &Ctx<'_>, count: bool) -> HandlerResult {
    let page = ctx.query.page()?;
    let q = ctx.query.search()?;
    let ids = ctx.query.ids("ids")?;
    let feature_id = ctx.query.get("feature_id").filter(|s| !s.is_empty());
    let store = ctx.inner.read();
    let it = store.flags.values().rev().filter(|f| {
        (ids.is_empty() || ids.contains(&f.id))
            && feature_id.is_none_or(|fid| f.feature_id.as_deref() == Some(fid))
            && q.as_ref().is_none_or(|q| {
                f.name.to_lowercase().contains(q)
                    || f.key.to_lowercase().contains(q)
                    || f.id.to_lowercase().contains(q)
            })
    });
    let mut params = ctx.query.search_params();
    if !ids.is_empty() {
        params.insert("ids".into(), json!(ids));
    }
    if let Some(fid) = feature_id {
        params.insert("feature_id".into(), Value::String(fid.into()));
    }
    page.reply(it, count, params, |f| render::flag_detail(&store, f))
}

/// Creates a flag from a validated body; returns it rendered.
pub(crate) fn apply_create(
    s: &mut crate::store::Store,
    body: &CreateFlag,
) -> Result<Value, ApiFailure> {
    let id = s.create_flag(body)?;
    let f = s
        .flags
        .get(&id)
        .ok_or_else(|| ApiFailure::not_found("flag"))?;
    Ok(render::flag_detail(s, f))
}

pub(super) fn create(ctx: &Ctx<'_>) -> HandlerResult {
    let body: CreateFlag = parse_as::<wire::CreateFlagRequestBody, _>(ctx.body)?;
    body.validate()?;
    let data = ctx.inner.mutate(|s| apply_create(s, &body))?;
    created(&data)
}

pub(super) fn get(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let store = ctx.inner.read();
    let f = store
        .flags
        .get(id)
        .ok_or_else(|| ApiFailure::not_found("flag"))?;
    ok(&render::flag_detail(&store, f))
}

pub(super) fn update(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let body: CreateFlag = parse_as::<wire::CreateFlagRequestBody, _>(ctx.body)?;
    body.validate()?;
    let data = ctx.inner.mutate(|s| -> Result<Value, ApiFailure> {
        s.update_flag(id, &body)?;
        let f = s
            .flags
            .get(id)
            .ok_or_else(|| ApiFailure::not_found("flag"))?;
        Ok(render::flag_detail(s, f))
    })?;
    ok(&data)
}

pub(super) fn delete(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    if ctx.inner.mutate(|s| s.delete_flag(id)) {
        ok(&json!({ "deleted": true }))
    } else {
        Err(ApiFailure::not_found("flag"))
    }
}

/// Validates rule bodies.
pub(crate) fn validate_rules(body: &UpdateRules) -> Result<(), ApiFailure> {
    check_items("rules", &body.rules, 100)?;
    for r in &body.rules {
        r.validate()?;
    }
    Ok(())
}

pub(super) fn update_rules(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let body: UpdateRules = parse_as::<wire::UpdateFlagRulesRequestBody, _>(ctx.body)?;
    validate_rules(&body)?;
    let data = ctx.inner.mutate(|s| -> Result<Value, ApiFailure> {
        s.set_flag_rules(id, &body.rules)?;
        let f = s
            .flags
            .get(id)
            .ok_or_else(|| ApiFailure::not_found("flag"))?;
        Ok(render::rules_detail(s, f))
    })?;
    ok(&data)
}

fn check_body(ctx: &Ctx<'_>) -> Result<CheckBody, ApiFailure> {
    // An empty body is a check without context.
    let body: CheckBody = if ctx.body.is_empty() {
        CheckBody::default()
    } else {
        parse_body(ctx.body)?
    };
    validate_check(&body)?;
    Ok(body)
}

pub(super) fn check_one(ctx: &Ctx<'_>, key: &str) -> HandlerResult {
    let body = check_body(ctx)?;
    let store = ctx.inner.read();
    crate::eval::check_one(&store, key, &body)
}

pub(super) fn check_all(ctx: &Ctx<'_>) -> HandlerResult {
    let body = check_body(ctx)?;
    let store = ctx.inner.read();
    crate::eval::check_all(&store, &body)
}

pub(super) fn check_bulk(ctx: &Ctx<'_>) -> HandlerResult {
    let body: CheckBulk = parse_body(ctx.body)?;
    if body.contexts.is_empty() || body.contexts.len() > 100 {
        return Err(ApiFailure::bad_request("contexts must have 1 to 100 items"));
    }
    for c in &body.contexts {
        validate_check(c)?;
    }
    let store = ctx.inner.read();
    crate::eval::check_bulk(&store, &body.contexts)
}
