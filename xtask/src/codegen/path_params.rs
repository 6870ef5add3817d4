//! The generated path-parameter test: one table row per path parameter of every operation,
//! building the request with a given value in that parameter, and property tests over the
//! whole table (blank values are refused by name, any other value stays in its segment).

use std::fmt::Write as _;

use super::HEADER;
use super::ops::{Location, Op};
use super::resources::qualified;
use super::roundtrip::minimal;
use super::types::{Ty, TypeSet};

/// A Rust expression for a valid value of an argument of type `ty` (resolved `shape`).
fn sample(set: &TypeSet<'_>, ty: &Ty, shape: &Ty) -> Result<String, String> {
    Ok(match shape {
        Ty::String => "\"p\"".to_owned(),
        Ty::DateTime => "time::OffsetDateTime::UNIX_EPOCH".to_owned(),
        _ => {
            let json = minimal(set, ty, &mut Vec::new())?.to_string();
            format!(
                "serde_json::from_str::<{}>({json:?}).expect(\"fixture decodes\")",
                qualified(ty)
            )
        }
    })
}

/// Renders the test file for `ops`.
pub fn render(set: &TypeSet<'_>, ops: &[Op]) -> Result<String, String> {
    let mut rows = String::new();
    let mut count = 0;
    for op in ops {
        let path_params = op
            .params
            .iter()
            .filter(|p| p.location == Location::Path && p.shape == Ty::String);
        for tested in path_params {
            let mut args = Vec::new();
            for p in op.params.iter().filter(|p| p.required) {
                args.push(if p.wire == tested.wire {
                    "v".to_owned()
                } else {
                    sample(set, &p.ty, &p.shape)?
                });
            }
            if let (Some((ty, true)), Some(shape)) = (&op.body, &op.body_shape) {
                args.push(sample(set, ty, shape)?);
            }
            let _ = writeln!(
                rows,
                "({:?}, {:?}, |v| {}::{}::new({}).to_request(BASE)),",
                op.id,
                tested.wire,
                op.module,
                op.name,
                args.join(", ")
            );
            count += 1;
        }
    }
    let mut s = String::from(HEADER);
    let _ = write!(
        s,
        r#"//! Every path parameter of every operation ({count} in all) refuses an empty or
//! whitespace-only value when the request is built, before any I/O, with an error naming the
//! operation and the parameter; any other value stays inside its own path segment.

use std::collections::BTreeSet;

use flagwire_core::schematic::*;
use flagwire_core::{{EncodeError, Operation}};
use proptest::prelude::*;

const BASE: &str = "https://api.example.test";

/// Builds an operation's request with the given value in the parameter under test and valid
/// values everywhere else.
type Build = fn(&str) -> Result<http::Request<bytes::Bytes>, EncodeError>;

/// (operation id, path parameter under test, request builder).
const CASES: &[(&str, &str, Build)] = &[
{rows}];

/// The parameter names of a path template (`/a/{{x}}/b/{{y}}` has `x` and `y`).
fn template_params(path: &str) -> impl Iterator<Item = &str> {{
    path.split('{{').skip(1).filter_map(|rest| rest.split_once('}}').map(|(name, _)| name))
}}

#[test]
fn the_table_covers_every_path_parameter_of_every_operation() {{
    let expected: BTreeSet<(&str, &str)> = OPERATIONS
        .iter()
        .flat_map(|op| template_params(op.path).map(move |p| (op.id, p)))
        .collect();
    let covered: BTreeSet<(&str, &str)> = CASES.iter().map(|(id, p, _)| (*id, *p)).collect();
    assert_eq!(covered, expected);
    assert_eq!(CASES.len(), {count});
}}

proptest! {{
    #[test]
    fn blank_path_parameters_are_refused_by_name(
        blank in "[ \t\r\n\u{{0B}}\u{{0C}}\u{{85}}\u{{A0}}\u{{2003}}\u{{3000}}]{{0,4}}"
    ) {{
        for (id, param, build) in CASES {{
            match build(&blank) {{
                Err(EncodeError::EmptyPathParameter {{ operation, parameter }}) => {{
                    prop_assert_eq!(operation, *id);
                    prop_assert_eq!(parameter, *param);
                }}
                other => prop_assert!(false, "{{id}}.{{param}} = {{blank:?}} gave {{other:?}}"),
            }}
        }}
    }}

    #[test]
    fn other_values_stay_in_their_segment(
        value in "\\PC{{0,12}}".prop_filter("not blank", |v| !v.trim().is_empty())
    ) {{
        for (id, param, build) in CASES {{
            let request = build(&value)
                .map_err(|e| TestCaseError::fail(format!("{{id}}.{{param}} = {{value:?}}: {{e}}")))?;
            let template = OPERATIONS.iter().find(|op| op.id == *id).expect("listed").path;
            prop_assert_eq!(
                request.uri().path().split('/').count(),
                template.split('/').count(),
                "{{}}.{{}} = {{:?}} gave {{}}",
                id,
                param,
                value,
                request.uri()
            );
        }}
    }}
}}
"#
    );
    Ok(s)
}
