//! Identifier conventions: Rust names from wire names.

/// Words of an identifier-ish string: split on non-alphanumerics and lower-to-upper humps.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let boundary = c.is_ascii_uppercase()
            && !cur.is_empty()
            && (chars[i - 1].is_ascii_lowercase()
                || chars[i - 1].is_ascii_digit()
                || chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_ascii_lowercase() && chars[i - 1].is_ascii_uppercase()));
        if boundary {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `UpperCamelCase`; a leading digit gets a `V` prefix.
pub fn pascal(s: &str) -> String {
    let mut out = String::new();
    for w in words(s) {
        let mut cs = w.chars();
        if let Some(first) = cs.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(cs.map(|c| c.to_ascii_lowercase()));
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

/// A type name: schema names that are already `UpperCamelCase` are kept as they are.
pub fn type_name(s: &str) -> String {
    let valid = s.starts_with(|c: char| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric());
    if valid { s.to_owned() } else { pascal(s) }
}

/// `snake_case`, escaped when it is a keyword (`r#type`, or `self_` where raw is impossible).
pub fn snake(s: &str) -> String {
    let mut out = words(s)
        .iter()
        .map(|w| w.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("_");
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "v_");
    }
    escape_keyword(out)
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "trait", "true", "type", "unsafe", "use", "where",
    "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield",
];

fn escape_keyword(s: String) -> String {
    if matches!(s.as_str(), "self" | "super" | "crate" | "Self") {
        format!("{s}_")
    } else if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

/// The name serde sees for a field identifier (raw prefix removed).
pub fn unraw(s: &str) -> &str {
    s.strip_prefix("r#").unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        assert_eq!(pascal("audit-log"), "AuditLog");
        assert_eq!(pascal("company.override.created"), "CompanyOverrideCreated");
        assert_eq!(pascal("blueGray"), "BlueGray");
        assert_eq!(pascal("csv.gz"), "CsvGz");
        assert_eq!(pascal("listCompanies"), "ListCompanies");
        assert_eq!(pascal("getAPIKey"), "GetApiKey");
        assert_eq!(pascal("1st"), "V1st");
        assert_eq!(snake("MetricResetAt"), "metric_reset_at");
        assert_eq!(snake("bundleId"), "bundle_id");
        assert_eq!(snake("type"), "r#type");
        assert_eq!(snake("self"), "self_");
        assert_eq!(snake("created_at"), "created_at");
        assert_eq!(unraw("r#type"), "type");
        assert_eq!(
            type_name("WorkOSIntegrationConfig"),
            "WorkOSIntegrationConfig"
        );
        assert_eq!(type_name("csv thing"), "CsvThing");
    }
}
