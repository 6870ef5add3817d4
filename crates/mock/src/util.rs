//! Small helpers: timestamps, identifiers, query strings and JSON replies.

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Current UTC time.
pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// RFC 3339 rendering used on the wire (`2026-01-02T03:04:05.123456Z`).
pub(crate) fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

/// Parses an RFC 3339 timestamp.
pub(crate) fn parse_ts(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Makes a sortable identifier with a platform-like prefix: a fixed-width
/// base-36 counter, so lexical order is creation order.
pub(crate) fn make_id(prefix: &str, n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut buf = [b'0'; 11];
    let mut v = n;
    for slot in buf.iter_mut().rev() {
        *slot = DIGITS[(v % 36) as usize];
        v /= 36;
    }
    let mut id = String::with_capacity(prefix.len() + 12);
    id.push_str(prefix);
    id.push('_');
    id.extend(buf.iter().map(|&b| b as char));
    id
}

/// A handler failure, rendered as `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiFailure {
    pub(crate) status: StatusCode,
    pub(crate) message: Cow<'static, str>,
}

impl ApiFailure {
    pub(crate) fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiFailure {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub(crate) fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
    pub(crate) fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
}

/// A successful handler result: a status and a serialized JSON body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

pub(crate) type HandlerResult = Result<Reply, ApiFailure>;

/// Serializes the platform envelope `{"data": .., "params": ..}`.
pub(crate) fn envelope<T: Serialize + ?Sized>(
    status: StatusCode,
    data: &T,
    params: &Value,
) -> HandlerResult {
    #[derive(Serialize)]
    struct Envelope<'a, T: ?Sized> {
        data: &'a T,
        params: &'a Value,
    }
    let body = serde_json::to_vec(&Envelope { data, params })
        .map_err(|e| ApiFailure::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Reply {
        status,
        body: Bytes::from(body),
    })
}

/// `200 {"data": data, "params": {}}`.
pub(crate) fn ok<T: Serialize + ?Sized>(data: &T) -> HandlerResult {
    envelope(StatusCode::OK, data, &Value::Object(serde_json::Map::new()))
}

/// `201 {"data": data, "params": {}}`.
pub(crate) fn created<T: Serialize + ?Sized>(data: &T) -> HandlerResult {
    envelope(
        StatusCode::CREATED,
        data,
        &Value::Object(serde_json::Map::new()),
    )
}

/// Renders `{"error": message}`.
pub(crate) fn error_body(message: &str) -> Bytes {
    Bytes::from(serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default())
}

/// Parses a JSON request body into `T`, mapping failures to a 400.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiFailure> {
    if body.is_empty() {
        return Err(ApiFailure::bad_request("request body is required"));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiFailure::bad_request(format!("invalid request body: {e}")))
}

/// Parses a JSON request body: first into the generated platform type `G`
/// (the authority on shape and field types), then into the emulator's view
/// `T` of it. Failures are 400s naming the problem.
pub(crate) fn parse_as<G, T>(body: &[u8]) -> Result<T, ApiFailure>
where
    G: serde::de::DeserializeOwned,
    T: serde::de::DeserializeOwned,
{
    if body.is_empty() {
        return Err(ApiFailure::bad_request("request body is required"));
    }
    serde_json::from_slice::<G>(body)
        .map_err(|e| ApiFailure::bad_request(format!("invalid request body: {e}")))?;
    serde_json::from_slice(body)
        .map_err(|e| ApiFailure::bad_request(format!("invalid request body: {e}")))
}

/// A decoded query string, in order of appearance.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Query {
        let Some(raw) = raw else {
            return Query::default();
        };
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of an array parameter: `name=a&name=b`, `name[]=a` or
    /// comma-free repeated keys.
    pub(crate) fn get_all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| {
                k == name || (k.len() == name.len() + 2 && k.starts_with(name) && k.ends_with("[]"))
            })
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A deep-object parameter: `name[key]=value`.
    pub(crate) fn deep(&self, name: &str) -> BTreeMap<String, String> {
        self.pairs
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(name)?.strip_prefix('[')?.strip_suffix(']')?;
                if rest.is_empty() {
                    None
                } else {
                    Some((rest.to_owned(), v.clone()))
                }
            })
            .collect()
    }

    /// An optional boolean parameter.
    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, ApiFailure> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiFailure::bad_request(format!(
                "query parameter {name} must be true or false"
            ))),
        }
    }

    /// Reads `limit` (0..=250, default 100) and `offset` (default 0).
    pub(crate) fn page(&self) -> Result<Page, ApiFailure> {
        let limit = match self.get("limit") {
            None | Some("") => 100,
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|v| (0..=250).contains(v))
                .ok_or_else(|| {
                    ApiFailure::bad_request(
                        "query parameter limit must be an integer from 0 to 250",
                    )
                })?,
        };
        let offset = match self.get("offset") {
            None | Some("") => 0,
            Some(s) => s.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
                ApiFailure::bad_request("query parameter offset must be a non-negative integer")
            })?,
        };
        Ok(Page { limit, offset })
    }

    /// Reads `q`, limited to 512 characters.
    pub(crate) fn search(&self) -> Result<Option<String>, ApiFailure> {
        match self.get("q") {
            None | Some("") => Ok(None),
            Some(q) if q.chars().count() > 512 => Err(ApiFailure::bad_request(
                "query parameter q must be at most 512 characters",
            )),
            Some(q) => Ok(Some(q.to_lowercase())),
        }
    }

    /// A params object echoing `q` as given, when a search is set.
    pub(crate) fn search_params(&self) -> serde_json::Map<String, Value> {
        let mut params = serde_json::Map::new();
        if let Some(q) = self.get("q").filter(|q| !q.is_empty()) {
            params.insert("q".into(), Value::String(q.to_owned()));
        }
        params
    }

    /// Reads an ID filter array (at most 100 items).
    pub(crate) fn ids(&self, name: &str) -> Result<Vec<String>, ApiFailure> {
        let ids: Vec<String> = self.get_all(name).into_iter().map(str::to_owned).collect();
        if ids.len() > 100 {
            return Err(ApiFailure::bad_request(format!(
                "query parameter {name} accepts at most 100 items"
            )));
        }
        Ok(ids)
    }
}

/// Offset pagination.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    pub(crate) limit: i64,
    pub(crate) offset: i64,
}

impl Page {
    /// Applies the page to an iterator.
    pub(crate) fn apply<I: Iterator>(self, it: I) -> impl Iterator<Item = I::Item> {
        it.skip(self.offset as usize).take(self.limit as usize)
    }

    /// Replies to a list route: `{"count": n}` when `count`, otherwise the
    /// page of `it` rendered by `render`; `params` gains `limit` and `offset`.
    pub(crate) fn reply<I: Iterator>(
        self,
        it: I,
        count: bool,
        params: serde_json::Map<String, Value>,
        render: impl FnMut(I::Item) -> Value,
    ) -> HandlerResult {
        let params = self.params(params);
        if count {
            let n = it.count();
            return envelope(StatusCode::OK, &serde_json::json!({ "count": n }), &params);
        }
        let data: Vec<Value> = self.apply(it).map(render).collect();
        envelope(StatusCode::OK, &data, &params)
    }

    /// Adds `limit` and `offset` to a params object.
    pub(crate) fn params(self, mut params: serde_json::Map<String, Value>) -> Value {
        params.insert("limit".into(), self.limit.into());
        params.insert("offset".into(), self.offset.into());
        Value::Object(params)
    }
}

fn decode(s: &str) -> String {
    let replaced;
    let s = if s.contains('+') {
        replaced = s.replace('+', " ");
        replaced.as_str()
    } else {
        s
    };
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Renders a trait value as the platform's string form.
pub(crate) fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation() {
        let a = make_id("comp", 9);
        let b = make_id("comp", 10);
        let c = make_id("comp", 36 * 36);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a.len(), "comp_".len() + 11);
    }

    #[test]
    fn query_forms() {
        let q = Query::parse(Some(
            "keys%5Bemail%5D=a%40b.c&keys[id]=x+y&ids=1&ids[]=2&limit=5&flag",
        ));
        let keys = q.deep("keys");
        assert_eq!(keys.get("email").map(String::as_str), Some("a@b.c"));
        assert_eq!(keys.get("id").map(String::as_str), Some("x y"));
        assert_eq!(q.get_all("ids"), vec!["1", "2"]);
        assert_eq!(q.page().unwrap().limit, 5);
        assert_eq!(q.get("flag"), Some(""));
        assert!(Query::parse(Some("limit=251")).page().is_err());
        assert!(Query::parse(Some("offset=-1")).page().is_err());
        assert!(Query::parse(Some("x=maybe")).bool("x").is_err());
    }
}
