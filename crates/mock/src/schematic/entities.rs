//! Companies, users, their traits and memberships, and trait definitions.

use http::StatusCode;
use serde_json::{Map, Value, json};

use super::requests::{
    CreateTraitDefinition, ENTITY_TYPES, KeysBody, MembershipBody, TRAIT_TYPES, UpsertCompany,
    UpsertTrait, UpsertUser, check_enum, check_keys,
};
use crate::render;
use crate::server::Ctx;
use crate::store::{Entity, Kind, Store, Upsert, trait_string};
use crate::util::{ApiFailure, HandlerResult, Query, created, envelope, ok, parse_as, parse_ts};
use flagwire_core::schematic::models as wire;

fn matches_search(e: &Entity, q: &str) -> bool {
    e.name.to_lowercase().contains(q)
        || e.id.to_lowercase().contains(q)
        || e.keys.values().any(|k| k.value.to_lowercase().contains(q))
        || e.traits
            .values()
            .any(|t| t.value.is_string() && trait_string(t).to_lowercase().contains(q))
}

struct Filter {
    q: Option<String>,
    raw_q: Option<String>,
    ids: Vec<String>,
    company_id: Option<String>,
}

impl Filter {
    fn parse(query: &Query, kind: Kind) -> Result<Filter, ApiFailure> {
        Ok(Filter {
            q: query.search()?,
            raw_q: query.get("q").filter(|s| !s.is_empty()).map(str::to_owned),
            ids: query.ids("ids")?,
            company_id: match kind {
                Kind::User => query
                    .get("company_id")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
                Kind::Company => None,
            },
        })
    }

    fn matches(&self, store: &Store, e: &Entity) -> bool {
        if !self.ids.is_empty() && !self.ids.contains(&e.id) {
            return false;
        }
        if let Some(q) = &self.q
            && !matches_search(e, q)
        {
            return false;
        }
        if let Some(c) = &self.company_id
            && !store
                .memberships
                .values()
                .any(|m| &m.company_id == c && m.user_id == e.id)
        {
            return false;
        }
        true
    }

    fn params(&self) -> Map<String, Value> {
        let mut p = Map::new();
        if let Some(q) = &self.raw_q {
            p.insert("q".into(), Value::String(q.clone()));
        }
        if !self.ids.is_empty() {
            p.insert("ids".into(), json!(self.ids));
        }
        if let Some(c) = &self.company_id {
            p.insert("company_id".into(), Value::String(c.clone()));
        }
        p
    }
}

pub(super) fn list(ctx: &Ctx<'_>, kind: Kind) -> HandlerResult {
    let filter = Filter::parse(&ctx.query, kind)?;
    let page = ctx.query.page()?;
    let store = ctx.inner.read();
    let data: Vec<Value> = page
        .apply(
            store
                .entities(kind)
                .values()
                .rev()
                .filter(|e| filter.matches(&store, e)),
        )
        .map(|e| render::entity_detail(&store, e))
        .collect();
    envelope(StatusCode::OK, &data, &page.params(filter.params()))
}

pub(super) fn count(ctx: &Ctx<'_>, kind: Kind) -> HandlerResult {
    let filter = Filter::parse(&ctx.query, kind)?;
    let page = ctx.query.page()?;
    let store = ctx.inner.read();
    let n = store
        .entities(kind)
        .values()
        .filter(|e| filter.matches(&store, e))
        .count();
    envelope(
        StatusCode::OK,
        &json!({ "count": n }),
        &page.params(filter.params()),
    )
}

pub(super) fn get(ctx: &Ctx<'_>, kind: Kind, id: &str) -> HandlerResult {
    let store = ctx.inner.read();
    let e = store
        .entity(kind, id)
        .ok_or_else(|| ApiFailure::not_found(kind.as_str()))?;
    ok(&render::entity_detail(&store, e))
}

pub(super) fn lookup(ctx: &Ctx<'_>, kind: Kind) -> HandlerResult {
    let keys = ctx.query.deep("keys");
    if keys.is_empty() {
        return Err(ApiFailure::bad_request(
            "query parameter keys is required (keys[name]=value)",
        ));
    }
    check_keys("keys", &keys)?;
    let store = ctx.inner.read();
    let e = store
        .find_by_keys(kind, &keys)
        .and_then(|id| store.entity(kind, id))
        .ok_or_else(|| ApiFailure::not_found(kind.as_str()))?;
    envelope(
        StatusCode::OK,
        &render::entity_detail(&store, e),
        &json!({ "keys": keys }),
    )
}

pub(super) fn delete(ctx: &Ctx<'_>, kind: Kind, id: &str) -> HandlerResult {
    let mut params = Map::new();
    if kind == Kind::Company {
        for name in ["cancel_subscription", "prorate"] {
            if let Some(v) = ctx.query.bool(name)? {
                params.insert(name.into(), Value::Bool(v));
            }
        }
    }
    let deleted = ctx.inner.mutate(|s| s.delete_entity(kind, id).is_some());
    if !deleted {
        return Err(ApiFailure::not_found(kind.as_str()));
    }
    envelope(
        StatusCode::OK,
        &json!({ "deleted": true }),
        &Value::Object(params),
    )
}

pub(super) fn delete_by_keys(ctx: &Ctx<'_>, kind: Kind) -> HandlerResult {
    let body: KeysBody = parse_as::<wire::KeysRequestBody, _>(ctx.body)?;
    check_keys("keys", &body.keys)?;
    let summary = ctx.inner.mutate(|s| {
        let id = s.find_by_keys(kind, &body.keys)?.to_owned();
        let summary = s.entity(kind, &id).map(|e| render::entity_summary(s, e));
        s.delete_entity(kind, &id);
        summary
    });
    match summary {
        Some(v) => ok(&v),
        None => Err(ApiFailure::not_found(kind.as_str())),
    }
}

fn last_seen(raw: Option<&str>) -> Option<time::OffsetDateTime> {
    raw.and_then(parse_ts)
}

/// Upserts a company from a validated body; returns the rendered company.
pub(crate) fn apply_upsert_company(
    s: &mut Store,
    body: &UpsertCompany,
    create_only: bool,
) -> Result<Value, ApiFailure> {
    let (id, _) = s.upsert_entity(
        Kind::Company,
        Upsert {
            id: body.id.as_deref(),
            keys: Some(&body.keys),
            name: body.name.as_deref(),
            traits: body.traits.as_ref(),
            last_seen_at: last_seen(body.last_seen_at.as_deref()),
            update_only: body.update_only.unwrap_or(false),
            create_only,
            prevent_key_remap: body.prevent_key_remap.unwrap_or(false),
            remove_keys: body.remove_keys.as_deref().unwrap_or(&[]),
        },
    )?;
    let e = s
        .entity(Kind::Company, &id)
        .ok_or_else(|| ApiFailure::not_found("company"))?;
    Ok(render::company_detail(s, e))
}

pub(super) fn upsert_company(ctx: &Ctx<'_>, create_only: bool) -> HandlerResult {
    let body: UpsertCompany = parse_as::<wire::UpsertCompanyRequestBody, _>(ctx.body)?;
    body.validate()?;
    let data = ctx
        .inner
        .mutate(|s| apply_upsert_company(s, &body, create_only))?;
    if create_only {
        created(&data)
    } else {
        ok(&data)
    }
}

/// Finds the company owning `keys`, creating it if needed.
pub(crate) fn company_for_keys(
    s: &mut Store,
    keys: &crate::schematic::requests::Keys,
) -> Result<String, ApiFailure> {
    if let Some(id) = s.find_by_keys(Kind::Company, keys) {
        return Ok(id.to_owned());
    }
    let (id, _) = s.upsert_entity(
        Kind::Company,
        Upsert {
            keys: Some(keys),
            ..Upsert::default()
        },
    )?;
    Ok(id)
}

/// Upserts a user from a validated body; returns the rendered user.
pub(crate) fn apply_upsert_user(
    s: &mut Store,
    body: &UpsertUser,
    create_only: bool,
) -> Result<Value, ApiFailure> {
    // Company IDs must exist before anything changes.
    for cid in body
        .company_id
        .iter()
        .chain(body.company_ids.iter().flatten())
    {
        if s.entity(Kind::Company, cid).is_none() {
            return Err(ApiFailure::not_found("company"));
        }
    }
    let (id, _) = s.upsert_entity(
        Kind::User,
        Upsert {
            id: body.id.as_deref(),
            keys: Some(&body.keys),
            name: body.name.as_deref(),
            traits: body.traits.as_ref(),
            last_seen_at: last_seen(body.last_seen_at.as_deref()),
            update_only: body.update_only.unwrap_or(false),
            create_only,
            prevent_key_remap: false,
            remove_keys: body.remove_keys.as_deref().unwrap_or(&[]),
        },
    )?;
    if let Some(keys) = &body.company {
        let cid = company_for_keys(s, keys)?;
        s.ensure_membership(&cid, &id);
    } else if let Some(list) = &body.companies {
        let mut ids = Vec::with_capacity(list.len());
        for keys in list {
            ids.push(company_for_keys(s, keys)?);
        }
        s.set_memberships(&id, &ids);
    }
    if let Some(cid) = &body.company_id {
        s.ensure_membership(cid, &id);
    } else if let Some(ids) = &body.company_ids {
        s.set_memberships(&id, ids);
    }
    let e = s
        .entity(Kind::User, &id)
        .ok_or_else(|| ApiFailure::not_found("user"))?;
    Ok(render::user_detail(s, e))
}

pub(super) fn upsert_user(ctx: &Ctx<'_>, create_only: bool) -> HandlerResult {
    let body: UpsertUser = parse_as::<wire::UpsertUserRequestBody, _>(ctx.body)?;
    body.validate()?;
    let data = ctx
        .inner
        .mutate(|s| apply_upsert_user(s, &body, create_only))?;
    if create_only {
        created(&data)
    } else {
        ok(&data)
    }
}

pub(super) fn upsert_trait(ctx: &Ctx<'_>, kind: Kind) -> HandlerResult {
    let body: UpsertTrait = parse_as::<wire::UpsertTraitRequestBody, _>(ctx.body)?;
    body.validate()?;
    let data = ctx.inner.mutate(|s| -> Result<Value, ApiFailure> {
        let id = match s.find_by_keys(kind, &body.keys) {
            Some(id) => id.to_owned(),
            None if body.update_only.unwrap_or(false) => {
                return Err(ApiFailure::not_found(kind.as_str()));
            }
            None => {
                s.upsert_entity(
                    kind,
                    Upsert {
                        keys: Some(&body.keys),
                        ..Upsert::default()
                    },
                )?
                .0
            }
        };
        s.update_trait(kind, &id, &body.trait_name, body.set.as_deref(), body.incr);
        let e = s
            .entity(kind, &id)
            .ok_or_else(|| ApiFailure::not_found(kind.as_str()))?;
        Ok(render::entity_detail(s, e))
    })?;
    ok(&data)
}

pub(super) fn list_memberships(ctx: &Ctx<'_>) -> HandlerResult {
    let page = ctx.query.page()?;
    let company_id = ctx.query.get("company_id").filter(|s| !s.is_empty());
    let user_id = ctx.query.get("user_id").filter(|s| !s.is_empty());
    let store = ctx.inner.read();
    let data: Vec<Value> = page
        .apply(store.memberships.values().rev().filter(|m| {
            company_id.is_none_or(|c| m.company_id == c) && user_id.is_none_or(|u| m.user_id == u)
        }))
        .map(|m| render::membership(&store, m))
        .collect();
    let mut params = Map::new();
    if let Some(c) = company_id {
        params.insert("company_id".into(), Value::String(c.into()));
    }
    if let Some(u) = user_id {
        params.insert("user_id".into(), Value::String(u.into()));
    }
    envelope(StatusCode::OK, &data, &page.params(params))
}

pub(super) fn create_membership(ctx: &Ctx<'_>) -> HandlerResult {
    let body: MembershipBody =
        parse_as::<wire::GetOrCreateCompanyMembershipRequestBody, _>(ctx.body)?;
    let data = ctx.inner.mutate(|s| -> Result<Value, ApiFailure> {
        if s.entity(Kind::Company, &body.company_id).is_none() {
            return Err(ApiFailure::not_found("company"));
        }
        if s.entity(Kind::User, &body.user_id).is_none() {
            return Err(ApiFailure::not_found("user"));
        }
        let id = s.ensure_membership(&body.company_id, &body.user_id);
        let m = s
            .memberships
            .get(&id)
            .ok_or_else(|| ApiFailure::not_found("company membership"))?;
        Ok(render::membership(s, m))
    })?;
    ok(&data)
}

pub(super) fn delete_membership(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let removed = ctx.inner.mutate(|s| s.remove_membership(id));
    if !removed {
        return Err(ApiFailure::not_found("company membership"));
    }
    ok(&json!({ "deleted": true }))
}

pub(super) fn list_trait_definitions(ctx: &Ctx<'_>, count: bool) -> HandlerResult {
    let page = ctx.query.page()?;
    let q = ctx.query.search()?;
    let ids = ctx.query.ids("ids")?;
    let entity_type = match ctx.query.get("entity_type").filter(|s| !s.is_empty()) {
        Some(t) => {
            check_enum("entity_type", t, ENTITY_TYPES)?;
            Kind::parse(t)
        }
        None => None,
    };
    let mut trait_types: Vec<&str> = ctx.query.get_all("trait_types");
    if let Some(t) = ctx.query.get("trait_type").filter(|s| !s.is_empty()) {
        trait_types.push(t);
    }
    for t in &trait_types {
        check_enum("trait_type", t, TRAIT_TYPES)?;
    }
    let store = ctx.inner.read();
    let it = store.trait_defs.values().filter(|d| {
        (ids.is_empty() || ids.contains(&d.id))
            && entity_type.is_none_or(|k| d.kind == k)
            && (trait_types.is_empty() || trait_types.contains(&d.trait_type.as_str()))
            && q.as_ref().is_none_or(|q| {
                d.name.to_lowercase().contains(q) || d.display_name.to_lowercase().contains(q)
            })
    });
    let mut params = ctx.query.search_params();
    if let Some(k) = entity_type {
        params.insert("entity_type".into(), Value::String(k.as_str().into()));
    }
    page.reply(it, count, params, render::trait_definition)
}

pub(super) fn create_trait_definition(ctx: &Ctx<'_>) -> HandlerResult {
    let body: CreateTraitDefinition =
        parse_as::<wire::CreateEntityTraitDefinitionRequestBody, _>(ctx.body)?;
    check_enum("entity_type", &body.entity_type, ENTITY_TYPES)?;
    check_enum("trait_type", &body.trait_type, TRAIT_TYPES)?;
    if body.hierarchy.is_empty() || body.hierarchy.iter().any(String::is_empty) {
        return Err(ApiFailure::bad_request(
            "hierarchy must name the trait (non-empty strings)",
        ));
    }
    super::requests::check_items("hierarchy", &body.hierarchy, 100)?;
    super::requests::check_opt_len("display_name", body.display_name.as_deref(), 255)?;
    let kind =
        Kind::parse(&body.entity_type).ok_or_else(|| ApiFailure::bad_request("entity_type"))?;
    let name = body.hierarchy.join(".");
    let data = ctx.inner.mutate(|s| {
        let id =
            s.create_trait_definition(kind, &name, body.display_name.as_deref(), &body.trait_type);
        s.trait_defs.get(&id).map(render::trait_definition)
    });
    data.map_or_else(
        || Err(ApiFailure::not_found("entity trait definition")),
        |d| ok(&d),
    )
}

pub(super) fn get_trait_definition(ctx: &Ctx<'_>, id: &str) -> HandlerResult {
    let store = ctx.inner.read();
    let d = store
        .trait_defs
        .get(id)
        .ok_or_else(|| ApiFailure::not_found("entity trait definition"))?;
    ok(&render::trait_definition(d))
}
