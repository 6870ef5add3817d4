//! Features.

use serde_json::{Value, json};

use super::requests::{FEATURE_TYPES, FeatureBody, check_enum};
use crate::render;
use crate::server::Ctx;
use crate::util::{ApiFailure, HandlerResult, created, ok, parse_as};
use flagwire_core::schematic::models as wire;

pub(super) fn list(ctx: &Ctx<'_>, count: bool) -> HandlerResult {
    let page = ctx.query.page()?;
    let q = ctx.query.search()?;
    let ids = ctx.query.ids("ids")?;
    let types = ctx.query.get_all("feature_type");
    for t in &types {
        check_enum("feature_type", t, FEATURE_TYPES)?;
    }
    let store = ctx.inner.read();
    let it = store.features.values().rev().filter(|f| {
        (ids.is_empty() || ids.contains(&f.id))
            && (types.is_empty() || types.contains(&f.feature_type.as_str()))
            && q.as_ref().is_none_or(|q| {
                f.name.to_lowercase().contains(q) || f.id.to_lowercase().contains(q)
            })
    });
    let mut params = ctx.query.search_params();
    if !ids.is_empty() {
        params.insert("ids".into(), json!(ids));
    }
    if !types.is_empty() {
        params.insert("feature_type".into(), json!(types));
    }
    page.reply(it, count, params, |f| render::feature_detail(&store, f))
}

/// Creates a feature from a validated body; returns the rendered feature.
pub(crate) fn apply_create(
    s: &mut crate::store::Store,
    body: &FeatureBody,
) -> Result<Value, ApiFailure> {
    let id = s.create_feature(body)?;
    let f = s
        .features
        .get(&id)
        .ok_or_else(|| ApiFailure::not_found("feature"))?;
    Ok(render::feature_detail(s, f))
}

pub(super) fn create(ctx: &Ctx<'_>) -> HandlerResult {
    let body: FeatureBody = parse_as::<wire::CreateFeatureRequestBody, _>(ctx.body)?;
    body.validate(true)?;
    let data = ctx.inner.mutate(|s| apply_create(s, &body))?;
    created(&data)
}

pub(super) fn get(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let store = ctx.inner.read();
    let f = store
        .features
        .get(id)
        .ok_or_else(|| ApiFailure::not_found("feature"))?;
    ok(&render::feature_detail(&store, f))
}

pub(super) fn update(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let body: FeatureBody = parse_as::<wire::UpdateFeatureRequestBody, _>(ctx.body)?;
    body.validate(false)?;
    let data = ctx.inner.mutate(|s| -> Result<Value, ApiFailure> {
        s.update_feature(id, &body)?;
        let f = s
            .features
            .get(id)
            .ok_or_else(|| ApiFailure::not_found("feature"))?;
        Ok(render::feature_detail(s, f))
    })?;
    ok(&data)
}

pub(super) fn delete(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    if ctx.inner.mutate(|s| s.delete_feature(id)) {
        ok(&json!({ "deleted": true }))
    } else {
        Err(ApiFailure::not_found("feature"))
    }
}
