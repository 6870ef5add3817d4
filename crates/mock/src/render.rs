//! JSON renderings of stored objects, in the platform's response shapes.

use serde_json::{Map, Value, json};

use crate::store::{
    Condition, Entity, Feature, Flag, Kind, Membership, Rule, Store, StoredEvent, TraitDef,
    Webhook, time_str,
};
use crate::util::value_string;

fn opt_ts(t: Option<time::OffsetDateTime>) -> Value {
    t.map_or(Value::Null, |t| Value::String(time_str(t)))
}

fn traits_map(e: &Entity) -> Value {
    Value::Object(
        e.traits
            .iter()
            .map(|(k, t)| (k.clone(), t.value.clone()))
            .collect(),
    )
}

fn keys_list(store: &Store, e: &Entity) -> Value {
    Value::Array(
        e.keys
            .iter()
            .map(|(k, entry)| {
                json!({
                    "id": entry.id,
                    "environment_id": store.environment_id,
                    "definition_id": store.key_definition(e.kind, k).unwrap_or_default(),
                    "entity_type": e.kind.as_str(),
                    "entity_id": e.id,
                    "key": k,
                    "value": entry.value,
                    "created_at": time_str(entry.created_at),
                    "updated_at": time_str(entry.updated_at),
                })
            })
            .collect(),
    )
}

fn entity_traits(store: &Store, e: &Entity) -> Value {
    Value::Array(
        e.traits
            .values()
            .map(|t| {
                let mut v = json!({
                    "id": t.id,
                    "environment_id": store.environment_id,
                    "definition_id": t.definition_id,
                    "value": value_string(&t.value),
                    "created_at": time_str(t.created_at),
                    "updated_at": time_str(t.updated_at),
                });
                if let Some(def) = store.trait_defs.get(&t.definition_id) {
                    v["definition"] = trait_definition(def);
                }
                v
            })
            .collect(),
    )
}

/// `EntityTraitDefinitionResponseData`.
pub(crate) fn trait_definition(d: &TraitDef) -> Value {
    json!({
        "id": d.id,
        "display_name": d.display_name,
        "entity_type": d.kind.as_str(),
        "hierarchy": [d.name],
        "trait_type": d.trait_type,
        "created_at": time_str(d.created_at),
        "updated_at": time_str(d.updated_at),
    })
}

/// `CompanyResponseData` / `UserResponseData`.
pub(crate) fn entity_summary(store: &Store, e: &Entity) -> Value {
    let mut v = json!({
        "id": e.id,
        "name": e.name,
        "environment_id": store.environment_id,
        "created_at": time_str(e.created_at),
        "updated_at": time_str(e.updated_at),
        "last_seen_at": opt_ts(e.last_seen_at),
    });
    if e.kind == Kind::Company {
        v["logo_url"] = Value::Null;
    }
    v
}

/// `CompanyDetailResponseData`.
pub(crate) fn company_detail(store: &Store, e: &Entity) -> Value {
    let metrics: Vec<Value> = e
        .metrics
        .iter()
        .map(|m| {
            json!({
                "account_id": store.account_id,
                "environment_id": store.environment_id,
                "company_id": e.id,
                "event_subtype": m.event_subtype,
                "period": m.period,
                "month_reset": m.month_reset,
                "value": m.current_value(),
                "created_at": time_str(m.created_at),
                "captured_at_min": time_str(m.captured_at_min),
                "captured_at_max": time_str(m.captured_at_max),
                "valid_until": opt_ts(m.valid_until),
            })
        })
        .collect();
    json!({
        "id": e.id,
        "name": e.name,
        "environment_id": store.environment_id,
        "created_at": time_str(e.created_at),
        "updated_at": time_str(e.updated_at),
        "last_seen_at": opt_ts(e.last_seen_at),
        "logo_url": null,
        "keys": keys_list(store, e),
        "traits": traits_map(e),
        "entity_traits": entity_traits(store, e),
        "metrics": metrics,
        "entitlements": [],
        "rules": [],
        "plans": [],
        "add_ons": [],
        "billing_subscriptions": [],
        "custom_plan_billings": [],
        "payment_methods": [],
        "user_count": store.user_count(&e.id),
    })
}

/// `CompanyMembershipDetailResponseData`.
pub(crate) fn membership(store: &Store, m: &Membership) -> Value {
    let mut v = json!({
        "id": m.id,
        "company_id": m.company_id,
        "user_id": m.user_id,
        "created_at": time_str(m.created_at),
        "updated_at": time_str(m.updated_at),
    });
    if let Some(c) = store.entity(Kind::Company, &m.company_id) {
        v["company"] = entity_summary(store, c);
    }
    v
}

/// `UserDetailResponseData`.
pub(crate) fn user_detail(store: &Store, e: &Entity) -> Value {
    let memberships: Vec<Value> = store
        .memberships
        .values()
        .filter(|m| m.user_id == e.id)
        .map(|m| membership(store, m))
        .collect();
    json!({
        "id": e.id,
        "name": e.name,
        "environment_id": store.environment_id,
        "created_at": time_str(e.created_at),
        "updated_at": time_str(e.updated_at),
        "last_seen_at": opt_ts(e.last_seen_at),
        "keys": keys_list(store, e),
        "traits": traits_map(e),
        "entity_traits": entity_traits(store, e),
        "company_memberships": memberships,
    })
}

/// Company or user detail, by kind.
pub(crate) fn entity_detail(store: &Store, e: &Entity) -> Value {
    match e.kind {
        Kind::Company => company_detail(store, e),
        Kind::User => user_detail(store, e),
    }
}

fn condition_json(store: &Store, c: &Condition, rule_id: &str, flag_id: Option<&str>) -> Value {
    let mut v = json!({
        "id": c.id,
        "environment_id": store.environment_id,
        "rule_id": rule_id,
        "flag_id": flag_id,
        "condition_group_id": c.group_id,
        "condition_type": c.condition_type,
        "operator": c.operator,
        "resource_ids": c.resource_ids,
        "resources": [],
        "trait_id": c.trait_id,
        "trait_value": c.trait_value,
        "comparison_trait_id": c.comparison_trait_id,
        "event_subtype": c.event_subtype,
        "metric_value": c.metric_value,
        "metric_period": c.metric_period,
        "metric_period_month_reset": c.metric_period_month_reset,
        "credit_id": c.credit_id,
        "credit_cost": c.credit_cost,
        "created_at": time_str(time::OffsetDateTime::UNIX_EPOCH),
        "updated_at": time_str(time::OffsetDateTime::UNIX_EPOCH),
    });
    if let Some(def) = c.trait_id.as_ref().and_then(|id| store.trait_defs.get(id)) {
        v["trait"] = trait_definition(def);
        v["trait_entity_type"] = Value::String(def.kind.as_str().into());
    }
    v
}

/// `RuleDetailResponseData`.
pub(crate) fn rule_json(store: &Store, r: &Rule, flag_id: Option<&str>) -> Value {
    let created = time_str(r.created_at);
    let updated = time_str(r.updated_at);
    let mut v = json!({
        "id": r.id,
        "environment_id": store.environment_id,
        "flag_id": flag_id,
        "name": r.name,
        "priority": r.priority,
        "rule_type": r.rule_type,
        "value": r.value,
        "conditions": r.conditions.iter().map(|c| condition_json(store, c, &r.id, flag_id)).collect::<Vec<_>>(),
        "condition_groups": r.condition_groups.iter().map(|g| json!({
            "id": g.id,
            "environment_id": store.environment_id,
            "rule_id": r.id,
            "flag_id": flag_id,
            "conditions": g.conditions.iter().map(|c| condition_json(store, c, &r.id, flag_id)).collect::<Vec<_>>(),
            "created_at": created,
            "updated_at": updated,
        })).collect::<Vec<_>>(),
        "created_at": created,
        "updated_at": updated,
    });
    // Conditions carry the rule's timestamps.
    for c in v["conditions"].as_array_mut().into_iter().flatten() {
        c["created_at"] = Value::String(created.clone());
        c["updated_at"] = Value::String(updated.clone());
    }
    for g in v["condition_groups"].as_array_mut().into_iter().flatten() {
        for c in g["conditions"].as_array_mut().into_iter().flatten() {
            c["created_at"] = Value::String(created.clone());
            c["updated_at"] = Value::String(updated.clone());
        }
    }
    v
}

/// `FlagResponseData`.
pub(crate) fn flag_summary(f: &Flag) -> Value {
    json!({
        "id": f.id,
        "key": f.key,
        "name": f.name,
        "description": f.description,
        "default_value": f.default_value,
        "flag_type": f.flag_type,
        "feature_id": f.feature_id,
        "maintainer_account_member_id": f.maintainer_account_member_id,
        "created_at": time_str(f.created_at),
        "updated_at": time_str(f.updated_at),
    })
}

/// `FlagDetailResponseData`.
pub(crate) fn flag_detail(store: &Store, f: &Flag) -> Value {
    let mut v = flag_summary(f);
    v["rules"] = Value::Array(
        f.rules
            .iter()
            .map(|r| rule_json(store, r, Some(&f.id)))
            .collect(),
    );
    v["last_checked_at"] = Value::Null;
    if let Some(feature) = f.feature_id.as_ref().and_then(|id| store.features.get(id)) {
        v["feature"] = feature_summary(feature);
    }
    v
}

/// `RulesDetailResponseData`.
pub(crate) fn rules_detail(store: &Store, f: &Flag) -> Value {
    json!({
        "flag": flag_summary(f),
        "rules": f.rules.iter().map(|r| rule_json(store, r, Some(&f.id))).collect::<Vec<_>>(),
    })
}

/// `FeatureResponseData`.
pub(crate) fn feature_summary(f: &Feature) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "description": f.description,
        "feature_type": f.feature_type,
        "event_subtype": f.event_subtype,
        "icon": f.icon,
        "lifecycle_phase": f.lifecycle_phase,
        "maintainer_account_member_id": f.maintainer_account_member_id,
        "plural_name": f.plural_name,
        "singular_name": f.singular_name,
        "trait_id": f.trait_id,
        "created_at": time_str(f.created_at),
        "updated_at": time_str(f.updated_at),
    })
}

/// `FeatureDetailResponseData`.
pub(crate) fn feature_detail(store: &Store, f: &Feature) -> Value {
    let mut v = feature_summary(f);
    v["flags"] = Value::Array(
        store
            .flags
            .values()
            .filter(|fl| fl.feature_id.as_deref() == Some(&f.id))
            .map(|fl| flag_detail(store, fl))
            .collect(),
    );
    v["plans"] = Value::Array(Vec::new());
    if let Some(def) = f.trait_id.as_ref().and_then(|id| store.trait_defs.get(id)) {
        v["trait"] = trait_definition(def);
    }
    v
}

/// `WebhookResponseData`.
pub(crate) fn webhook(w: &Webhook) -> Value {
    json!({
        "id": w.id,
        "name": w.name,
        "url": w.url,
        "request_types": w.request_types,
        "secret": w.secret,
        "status": w.status,
        "credit_trigger_configs": w.credit_trigger_configs,
        "entitlement_trigger_configs": w.entitlement_trigger_configs,
        "created_at": time_str(w.created_at),
        "updated_at": time_str(w.updated_at),
    })
}

/// `EventDetailResponseData`.
pub(crate) fn event_detail(store: &Store, e: &StoredEvent) -> Value {
    let preview = e.body.to_string();
    let preview: String = preview.chars().take(256).collect();
    json!({
        "id": e.id,
        "type": e.event_type,
        "subtype": e.subtype,
        "body": if e.body.is_object() { e.body.clone() } else { Value::Object(Map::new()) },
        "body_preview": preview,
        "captured_at": time_str(e.captured_at),
        "sent_at": e.sent_at,
        "idempotency_key": e.idempotency_key,
        "company_id": e.company_id,
        "user_id": e.user_id,
        "environment_id": store.environment_id,
        "quantity": e.quantity,
        "status": "processed",
        "feature_ids": [],
        "features": [],
    })
}
