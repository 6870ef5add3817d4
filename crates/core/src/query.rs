//! Query-string and path encoding for API operations.
//!
//! Conventions of the Schematic API: arrays are sent as repeated keys (`ids=a&ids=b`), objects in
//! `deepObject` style as `keys[name]=value`, and absent optional values are left out. Everything
//! but RFC 3986 unreserved characters is percent-encoded (brackets of `deepObject` keys included).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::error::EncodeError;

/// Characters left as they are: RFC 3986 unreserved.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Appends `segment` to `out` as one percent-encoded path segment (`/` is encoded too, and
/// the dot segments `.` and `..` are escaped so that they cannot change the path).
pub fn push_path_segment(out: &mut String, segment: &str) {
    match segment {
        "." => out.push_str("%2E"),
        ".." => out.push_str("%2E%2E"),
        _ => {
            let _ = write!(out, "{}", utf8_percent_encode(segment, COMPONENT));
        }
    }
}

/// Appends a path parameter value as one percent-encoded path segment.
///
/// An empty or whitespace-only value is refused with
/// [`EncodeError::EmptyPathParameter`] naming `operation` and `parameter`: it would address
/// another resource (`/companies/` is the collection, not a company).
pub fn push_path_param(
    out: &mut String,
    operation: &'static str,
    parameter: &'static str,
    value: &(impl QueryValue + ?Sized),
) -> Result<(), EncodeError> {
    let mut raw = String::new();
    value.write_raw(&mut raw);
    if raw.trim().is_empty() {
        return Err(EncodeError::EmptyPathParameter {
            operation,
            parameter,
        });
    }
    push_path_segment(out, &raw);
    Ok(())
}

/// A value that can appear in a query string.
pub trait QueryValue {
    /// Appends the value, unencoded, to `out`.
    fn write_raw(&self, out: &mut String);
}

impl QueryValue for str {
    fn write_raw(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl QueryValue for String {
    fn write_raw(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl QueryValue for bool {
    fn write_raw(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

macro_rules! display_query_value {
    ($($t:ty),*) => {$(
        impl QueryValue for $t {
            fn write_raw(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
display_query_value!(i32, i64, u32, u64, f64);

impl QueryValue for time::OffsetDateTime {
    fn write_raw(&self, out: &mut String) {
        match self.format(&time::format_description::well_known::Rfc3339) {
            Ok(s) => out.push_str(&s),
            // Years outside 0..=9999 have no RFC 3339 form; fall back to time's own rendering.
            Err(_) => {
                let _ = write!(out, "{self}");
            }
        }
    }
}

impl<T: QueryValue + ?Sized> QueryValue for &T {
    fn write_raw(&self, out: &mut String) {
        (**self).write_raw(out);
    }
}

/// Builds a percent-encoded query string.
#[derive(Debug, Default, Clone)]
pub struct QueryBuilder {
    out: String,
    scratch: String,
}

impl QueryBuilder {
    /// An empty query.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, name: &str) {
        if !self.out.is_empty() {
            self.out.push('&');
        }
        let _ = write!(self.out, "{}", utf8_percent_encode(name, COMPONENT));
    }

    fn value(&mut self, value: &(impl QueryValue + ?Sized)) {
        self.scratch.clear();
        value.write_raw(&mut self.scratch);
        self.out.push('=');
        let _ = write!(
            self.out,
            "{}",
            utf8_percent_encode(&self.scratch, COMPONENT)
        );
    }

    /// Adds `name=value`.
    pub fn push(&mut self, name: &str, value: &(impl QueryValue + ?Sized)) {
        self.key(name);
        self.value(value);
    }

    /// Adds `name=value` when `value` is present.
    pub fn push_opt<T: QueryValue>(&mut self, name: &str, value: Option<&T>) {
        if let Some(v) = value {
            self.push(name, v);
        }
    }

    /// Adds `name=item` once per item (repeated keys).
    pub fn push_each<T: QueryValue>(&mut self, name: &str, values: &[T]) {
        for v in values {
            self.push(name, v);
        }
    }

    /// Adds `name[key]=value` for every entry (`deepObject` style).
    pub fn push_deep<T: QueryValue>(&mut self, name: &str, map: &BTreeMap<String, T>) {
        for (k, v) in map {
            if !self.out.is_empty() {
                self.out.push('&');
            }
            let _ = write!(
                self.out,
                "{}%5B{}%5D",
                utf8_percent_encode(name, COMPONENT),
                utf8_percent_encode(k, COMPONENT)
            );
            self.value(v);
        }
    }

    /// The query string without the leading `?`, or `None` when nothing was added.
    pub fn finish(self) -> Option<String> {
        (!self.out.is_empty()).then_some(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_shape() {
        let mut q = QueryBuilder::new();
        q.push("q", "a b&c=d/é");
        q.push_opt::<i64>("limit", None);
        q.push_opt("offset", Some(&20i64));
        q.push_each("ids", &["x".to_owned(), "y".to_owned()]);
        let mut keys = BTreeMap::new();
        keys.insert("id".to_owned(), "1".to_owned());
        keys.insert("e mail".to_owned(), "a@b".to_owned());
        q.push_deep("keys", &keys);
        q.push("flag", &true);
        assert_eq!(
            q.finish().unwrap(),
            "q=a%20b%26c%3Dd%2F%C3%A9&offset=20&ids=x&ids=y&keys%5Be%20mail%5D=a%40b&keys%5Bid%5D=1&flag=true"
        );
        assert_eq!(QueryBuilder::new().finish(), None);
    }

    #[test]
    fn path_segments_escape_slashes_and_spaces() {
        let mut p = String::from("/companies/");
        push_path_segment(&mut p, "a/b c?#%");
        assert_eq!(p, "/companies/a%2Fb%20c%3F%23%25");
        let mut p = String::from("/companies/");
        push_path_segment(&mut p, "..");
        assert_eq!(p, "/companies/%2E%2E");
        let mut p = String::new();
        push_path_segment(&mut p, ".");
        push_path_segment(&mut p, "...");
        assert_eq!(p, "%2E...");
    }

    #[test]
    fn blank_path_parameters_are_refused_by_name() {
        for blank in ["", " ", "\t\n", "\u{a0}\u{3000}"] {
            let mut p = String::from("/companies/");
            let err = push_path_param(&mut p, "getCompany", "company_id", blank).unwrap_err();
            assert!(
                matches!(
                    err,
                    EncodeError::EmptyPathParameter {
                        operation: "getCompany",
                        parameter: "company_id"
                    }
                ),
                "{blank:?}: {err:?}"
            );
            assert_eq!(
                err.to_string(),
                "path parameter `company_id` of `getCompany` is empty; it must name a resource"
            );
            assert_eq!(p, "/companies/", "nothing is written");
        }
        let mut p = String::from("/companies/");
        push_path_param(&mut p, "getCompany", "company_id", " a ").unwrap();
        assert_eq!(p, "/companies/%20a%20", "inner values are kept as they are");
        push_path_param(&mut p, "x", "n", &0i64).unwrap();
    }

    #[test]
    fn date_times_are_rfc3339() {
        let mut q = QueryBuilder::new();
        q.push(
            "start_time",
            &time::macros::datetime!(2024-01-02 03:04:05 UTC),
        );
        assert_eq!(q.finish().unwrap(), "start_time=2024-01-02T03%3A04%3A05Z");
    }
}
