//! Recognition of platform operations that the emulator does not emulate,
//! from the generated operation table of `flagwire-core`.

use flagwire_core::schematic::OPERATIONS;
use http::Method;

/// Whether a path template such as `/contacts/{id}/edit` matches `path`
/// (`{name}` segments match any one segment).
pub(crate) fn template_matches(template: &str, path: &str) -> bool {
    let mut t = template.split('/').filter(|s| !s.is_empty());
    let mut p = path.split('/').filter(|s| !s.is_empty());
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) => {
                if !(ts.starts_with('{') && ts.ends_with('}')) && ts != ps {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The operation ID of the platform operation at `method` + `path`, if any.
/// Literal segments win over parameters (`/companies/count` is
/// `countCompanies`, not `getCompany`).
pub(crate) fn lookup(method: &Method, path: &str) -> Option<&'static str> {
    let mut best: Option<(&'static str, usize)> = None;
    for op in OPERATIONS {
        if op.method != method.as_str() || !template_matches(op.path, path) {
            continue;
        }
        let literals = op
            .path
            .split('/')
            .filter(|s| !s.is_empty() && !s.starts_with('{'))
            .count();
        if best.is_none_or(|(_, n)| literals > n) {
            best = Some((op.id, literals));
        }
    }
    best.map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_every_operation() {
        assert_eq!(OPERATIONS.len(), 268);
    }

    #[test]
    fn literal_segments_win() {
        assert_eq!(
            lookup(&Method::GET, "/companies/count"),
            Some("countCompanies")
        );
        assert_eq!(
            lookup(&Method::GET, "/companies/comp_1"),
            Some("getCompany")
        );
        assert_eq!(
            lookup(&Method::POST, "/flags/my-flag/check"),
            Some("checkFlag")
        );
        assert_eq!(lookup(&Method::GET, "/no-such-thing"), None);
        assert_eq!(lookup(&Method::PATCH, "/companies"), None);
    }

    #[test]
    fn every_emulated_route_is_a_platform_operation() {
        for op in crate::schematic::EMULATED {
            assert!(
                OPERATIONS.iter().any(|o| o.id == *op),
                "{op} is not in the operation table"
            );
        }
    }
}
