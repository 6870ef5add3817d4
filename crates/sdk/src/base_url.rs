//! The check both clients' builders make of a base URL.

use crate::error::Error;

/// `url` as a base to append paths to: trimmed and without a trailing `/`. It must be an
/// absolute `http`/`https` URL without a query; `what` names it in the error (`"base"`,
/// `"REST"`, `"events"`).
pub(crate) fn checked_base_url(url: &str, what: &str) -> Result<String, Error> {
    let base = url.trim().trim_end_matches('/');
    let uri = http::Uri::try_from(base)
        .map_err(|_| Error::config(format!("the {what} URL `{base}` is not a URL")))?;
    let absolute = matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.host().is_some_and(|h| !h.is_empty());
    if !absolute {
        return Err(Error::config(format!(
            "the {what} URL `{base}` must be an absolute http(s) URL"
        )));
    }
    if uri.query().is_some() {
        return Err(Error::config(format!(
            "the {what} URL `{base}` must not have a query"
        )));
    }
    Ok(base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(url: &str) -> String {
        match checked_base_url(url, "REST") {
            Err(Error::Config(m)) => m,
            other => panic!("expected a config error for {url:?}, got {other:?}"),
        }
    }

    #[test]
    fn bases_are_trimmed_and_checked() {
        assert_eq!(
            checked_base_url(" https://h.example/api/ ", "REST").unwrap(),
            "https://h.example/api"
        );
        assert_eq!(
            checked_base_url("http://127.0.0.1:8080", "events").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(message("not a url").contains("REST URL `not a url` is not a URL"));
        for relative in ["/api", "ftp://h/api"] {
            assert!(message(relative).contains("absolute http(s)"), "{relative}");
        }
        assert!(message("https://h.example/api?x=1").contains("must not have a query"));
    }
}
