//! The REST API under `/api`: routing over the generated operation table,
//! and the contacts resource (list, get, new, edit, delete).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use bytes::Bytes;
use flagwire_core::esauti::api::OPERATIONS;
use flagwire_core::operation::OperationInfo;
use http::StatusCode;
use http::request::Parts;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::{Answer, REST_PREFIX, Shared, rest_error};
use crate::faults::{lock, path_segments};
use crate::operations::template_matches;
use crate::util::{Query, now, ts};

/// Page size when `limit` is not given (Mautic's default).
const DEFAULT_LIMIT: usize = 30;

/// Message of a 404 for a missing item (Mautic's wording).
const NOT_FOUND: &str = "Item was not found.";

/// One stored contact.
#[derive(Debug, Clone)]
struct Contact {
    id: i64,
    date_added: OffsetDateTime,
    date_modified: Option<OffsetDateTime>,
    fields: Map<String, Value>,
}

impl Contact {
    /// Mautic's shape: the fields under `fields.all`, with the `id`.
    fn render(&self) -> Value {
        let mut all = Map::with_capacity(self.fields.len() + 1);
        all.insert("id".into(), self.id.into());
        for (k, v) in &self.fields {
            all.insert(k.clone(), v.clone());
        }
        json!({
            "id": self.id,
            "isPublished": true,
            "dateAdded": ts(self.date_added),
            "dateModified": self.date_modified.map(ts),
            "fields": {"all": all},
        })
    }

    fn text(&self, field: &str) -> String {
        match self.fields.get(field) {
            Some(Value::String(s)) => s.to_lowercase(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string().to_lowercase(),
        }
    }
}

/// The contacts store.
#[derive(Debug, Default)]
pub(super) struct Contacts {
    items: BTreeMap<i64, Contact>,
    last_id: i64,
}

impl Contacts {
    pub(super) fn all(&self) -> Vec<Value> {
        self.items.values().map(Contact::render).collect()
    }

    /// Creates a contact with the next ID.
    pub(super) fn create_from(&mut self, fields: Value) -> Result<Value, String> {
        let fields = clean_fields(fields)?;
        let id = self
            .last_id
            .checked_add(1)
            .ok_or("no contact IDs are left")?;
        Ok(self.insert(id, fields))
    }

    fn insert(&mut self, id: i64, fields: Map<String, Value>) -> Value {
        self.last_id = self.last_id.max(id);
        let contact = Contact {
            id,
            date_added: now(),
            date_modified: None,
            fields,
        };
        let rendered = contact.render();
        self.items.insert(id, contact);
        rendered
    }
}

/// Checks a contact body: a JSON object of field aliases; `id` is ignored;
/// `email`, when set, must be text containing `@`.
fn clean_fields(body: Value) -> Result<Map<String, Value>, String> {
    let Value::Object(mut fields) = body else {
        return Err("the body must be a JSON object of contact fields".into());
    };
    fields.remove("id");
    if let Some(k) = fields.keys().find(|k| k.is_empty()) {
        return Err(format!("invalid field name {k:?}"));
    }
    match fields.get("email") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() || s.contains('@') => {}
        Some(_) => return Err("email: A valid email is required.".into()),
    }
    Ok(fields)
}

fn fail(status: StatusCode, message: &str, op: Option<&'static str>) -> Answer {
    Answer::json(status, &rest_error(status, message), op)
}

/// Handles a request under `/api`.
pub(super) fn route(shared: &Shared, parts: &Parts, query: &Query, body: &Bytes) -> Answer {
    let sub = parts
        .uri
        .path()
        .strip_prefix(REST_PREFIX)
        .unwrap_or_default();
    if !shared.authorized(&parts.headers) {
        return fail(
            StatusCode::UNAUTHORIZED,
            "API authorization denied: send X-eSauti-Api-Key or Authorization: Bearer",
            None,
        );
    }
    let segs: Vec<&str> = path_segments(sub).collect();
    let matching: Vec<&OperationInfo> = OPERATIONS
        .iter()
        .filter(|op| template_matches(op.path, sub))
        .collect();
    let Some(op) = matching
        .iter()
        .find(|op| op.method == parts.method.as_str())
    else {
        if matching.is_empty() {
            return fail(StatusCode::NOT_FOUND, "route not found", None);
        }
        let mut answer = fail(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed on this route",
            None,
        );
        answer.allow = Some(
            matching
                .iter()
                .map(|op| op.method)
                .collect::<Vec<_>>()
                .join(", "),
        );
        return answer;
    };
    let op_id = Some(op.id);
    // Segment 1 is the contact ID on every contact route that has one.
    let id = segs
        .get(1)
        .map(|s| s.parse::<i64>().ok().filter(|id| *id > 0));
    let mut state = lock(&shared.state);
    let contacts = &mut state.contacts;
    let result = match (op.id, id) {
        ("listContacts", _) => list(contacts, query),
        ("createContact", _) => parse(body).and_then(|fields| {
            let contact = contacts
                .create_from(fields)
                .map_err(|m| (StatusCode::BAD_REQUEST, m))?;
            Ok((StatusCode::CREATED, one(contact)))
        }),
        ("getContact" | "editContact" | "replaceContact" | "deleteContact", Some(None)) => {
            Err((StatusCode::NOT_FOUND, NOT_FOUND.into()))
        }
        ("getContact", Some(Some(id))) => contacts
            .items
            .get(&id)
            .map(|c| (StatusCode::OK, one(c.render())))
            .ok_or_else(|| (StatusCode::NOT_FOUND, NOT_FOUND.into())),
        ("editContact", Some(Some(id))) => edit(contacts, id, body, false),
        ("replaceContact", Some(Some(id))) => edit(contacts, id, body, true),
        ("deleteContact", Some(Some(id))) => contacts
            .items
            .remove(&id)
            .map(|c| (StatusCode::OK, one(c.render())))
            .ok_or_else(|| (StatusCode::NOT_FOUND, NOT_FOUND.into())),
        _ => Err((StatusCode::NOT_IMPLEMENTED, "not emulated".into())),
    };
    drop(state);
    match result {
        Ok((status, body)) => Answer {
            status,
            body,
            operation: op_id,
            allow: None,
        },
        Err((status, message)) => fail(status, &message, op_id),
    }
}

/// A handler's result: the status and serialised body, or an error status
/// and message.
type Outcome = Result<(StatusCode, Bytes), (StatusCode, String)>;

/// `{"contact": contact}`, serialised.
fn one(contact: Value) -> Bytes {
    Bytes::from(serde_json::to_vec(&json!({ "contact": contact })).unwrap_or_default())
}

fn parse(body: &Bytes) -> Result<Value, (StatusCode, String)> {
    if body.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "a JSON body is required".into()));
    }
    serde_json::from_slice(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

fn bad_param(name: &str, what: &str) -> (StatusCode, String) {
    (
        StatusCode::BAD_REQUEST,
        format!("query parameter {name} must be {what}"),
    )
}

/// `GET /contacts`: `search` (a substring of email, first or last name;
/// `email:…`, `name:…` and `id:…` narrow it), `orderBy` (`id`,
/// `dateAdded`, `dateModified` or a field alias, optionally prefixed `l.`),
/// `orderByDir` (`ASC`/`DESC`), then `start` and `limit` (default 30).
/// Written by hand so that the `contacts` object keeps the sort order.
fn list(contacts: &Contacts, query: &Query) -> Outcome {
    let start = match query.get("start").filter(|s| !s.is_empty()) {
        None => 0,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| bad_param("start", "a non-negative integer"))?,
    };
    let limit = match query.get("limit").filter(|s| !s.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| bad_param("limit", "a non-negative integer"))?,
    };
    let descending = match query.get("orderByDir").filter(|s| !s.is_empty()) {
        None => false,
        Some(d) if d.eq_ignore_ascii_case("asc") => false,
        Some(d) if d.eq_ignore_ascii_case("desc") => true,
        Some(_) => return Err(bad_param("orderByDir", "ASC or DESC")),
    };
    let order_by = query
        .get("orderBy")
        .filter(|s| !s.is_empty())
        .map(|s| s.strip_prefix("l.").unwrap_or(s))
        .unwrap_or("id");
    let search = Search::parse(query.get("search").unwrap_or_default());

    let mut found: Vec<&Contact> = contacts
        .items
        .values()
        .filter(|c| search.matches(c))
        .collect();
    found.sort_by(|a, b| {
        let primary = compare(a, b, order_by);
        let primary = if descending {
            primary.reverse()
        } else {
            primary
        };
        primary.then(a.id.cmp(&b.id))
    });

    let mut out = Vec::with_capacity(64 + 256 * found.len().min(limit));
    out.extend_from_slice(format!("{{\"total\":{},\"contacts\":{{", found.len()).as_bytes());
    for (i, c) in found.iter().skip(start).take(limit).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(format!("\"{}\":", c.id).as_bytes());
        serde_json::to_writer(&mut out, &c.render()).unwrap_or_default();
    }
    out.extend_from_slice(b"}}");
    Ok((StatusCode::OK, Bytes::from(out)))
}

/// The order of two contacts by `field`, missing values last.
fn compare(a: &Contact, b: &Contact, field: &str) -> Ordering {
    match field {
        "id" => a.id.cmp(&b.id),
        "dateAdded" => a.date_added.cmp(&b.date_added),
        "dateModified" => match (a.date_modified, b.date_modified) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        },
        _ => {
            let (x, y) = (a.fields.get(field), b.fields.get(field));
            match (x.and_then(Value::as_f64), y.and_then(Value::as_f64)) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                _ => match (a.text(field), b.text(field)) {
                    (x, y) if x.is_empty() && !y.is_empty() => Ordering::Greater,
                    (x, y) if !x.is_empty() && y.is_empty() => Ordering::Less,
                    (x, y) => x.cmp(&y),
                },
            }
        }
    }
}

/// A `search` parameter.
#[derive(Debug, PartialEq)]
enum Search {
    All,
    Any(String),
    Email(String),
    Name(String),
    Id(Option<i64>),
}

impl Search {
    fn parse(raw: &str) -> Search {
        let raw = raw.trim();
        if raw.is_empty() {
            return Search::All;
        }
        let lower = raw.to_lowercase();
        if let Some(v) = lower.strip_prefix("email:") {
            Search::Email(v.trim().to_owned())
        } else if let Some(v) = lower.strip_prefix("name:") {
            Search::Name(v.trim().to_owned())
        } else if let Some(v) = lower.strip_prefix("id:") {
            Search::Id(v.trim().parse().ok())
        } else {
            Search::Any(lower)
        }
    }

    fn matches(&self, c: &Contact) -> bool {
        let name = |needle: &str| {
            c.text("firstname").contains(needle)
                || c.text("lastname").contains(needle)
                || format!("{} {}", c.text("firstname"), c.text("lastname")).contains(needle)
        };
        match self {
            Search::All => true,
            Search::Any(needle) => c.text("email").contains(needle.as_str()) || name(needle),
            Search::Email(needle) => c.text("email").contains(needle.as_str()),
            Search::Name(needle) => name(needle),
            Search::Id(id) => *id == Some(c.id),
        }
    }
}

/// PATCH (`replace == false`): merge into an existing contact, `null`
/// removing a field; 404 when absent. PUT: replace the fields, or create the
/// contact with this ID (201).
fn edit(contacts: &mut Contacts, id: i64, body: &Bytes, replace: bool) -> Outcome {
    let fields =
        parse(body).and_then(|v| clean_fields(v).map_err(|m| (StatusCode::BAD_REQUEST, m)))?;
    match contacts.items.get_mut(&id) {
        Some(contact) => {
            if replace {
                contact.fields = fields.into_iter().filter(|(_, v)| !v.is_null()).collect();
            } else {
                for (k, v) in fields {
                    if v.is_null() {
                        contact.fields.remove(&k);
                    } else {
                        contact.fields.insert(k, v);
                    }
                }
            }
            contact.date_modified = Some(now());
            Ok((StatusCode::OK, one(contact.render())))
        }
        None if replace => {
            let fields = fields.into_iter().filter(|(_, v)| !v.is_null()).collect();
            Ok((StatusCode::CREATED, one(contacts.insert(id, fields))))
        }
        None => Err((StatusCode::NOT_FOUND, NOT_FOUND.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert!(template_matches("/contacts", "/contacts"));
        assert!(template_matches("/contacts/{id}/edit", "/contacts/7/edit"));
        assert!(!template_matches("/contacts/{id}/edit", "/contacts/7"));
        assert!(!template_matches("/contacts", "/contacts/7"));
        assert!(!template_matches("/contacts", ""));
    }

    #[test]
    fn search_commands() {
        assert_eq!(Search::parse("  "), Search::All);
        assert_eq!(Search::parse("Ann"), Search::Any("ann".into()));
        assert_eq!(Search::parse("EMAIL: a@b"), Search::Email("a@b".into()));
        assert_eq!(Search::parse("name:Lee"), Search::Name("lee".into()));
        assert_eq!(Search::parse("id:4"), Search::Id(Some(4)));
        assert_eq!(Search::parse("id:x"), Search::Id(None));
    }

    #[test]
    fn ids_never_overflow() {
        let mut contacts = Contacts::default();
        contacts.insert(i64::MAX, Map::new());
        assert!(contacts.create_from(json!({})).is_err());
        assert_eq!(contacts.all().len(), 1);
    }

    #[test]
    fn fields_are_checked() {
        assert!(clean_fields(json!([])).is_err());
        assert!(clean_fields(json!({"": 1})).is_err());
        assert!(clean_fields(json!({"email": 5})).is_err());
        assert!(clean_fields(json!({"email": "no-at"})).is_err());
        let ok = clean_fields(json!({"id": 9, "email": "", "x": [1]})).unwrap();
        assert!(!ok.contains_key("id"));
        assert_eq!(ok.len(), 2);
    }
}
