//! The generated round-trip test: a minimal JSON value for every model type must decode and
//! encode back to the same JSON.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::HEADER;
use super::naming::snake;
use super::types::{Def, Module, Ty, TypeSet};

/// The smallest valid JSON for `ty`: required fields only, first enum values, empty
/// collections. `stack` guards against unbounded recursion.
pub(super) fn minimal(
    set: &TypeSet<'_>,
    ty: &Ty,
    stack: &mut Vec<String>,
) -> Result<Value, String> {
    Ok(match ty {
        Ty::String => json!(""),
        Ty::Bool => json!(false),
        Ty::I32 | Ty::I64 => json!(0),
        Ty::F64 => json!(0.5),
        Ty::DateTime => json!("2024-01-02T03:04:05Z"),
        Ty::Json => json!({}),
        Ty::Vec(_) => json!([]),
        Ty::Map(_) => json!({}),
        Ty::Named(name, module) => {
            if stack.contains(name) {
                return Err(format!("{name} requires itself; no finite minimal value"));
            }
            let d = set
                .get(name, module)
                .ok_or_else(|| format!("unknown type {name}"))?;
            stack.push(name.clone());
            let v = match &d.def {
                Def::Alias { ty } => minimal(set, ty, stack)?,
                Def::Enum { values } => json!(values[0].1),
                Def::OneOf { variants, .. } => minimal(set, &variants[0].ty, stack)?,
                Def::Struct { fields, sibling } => {
                    let mut m = Map::new();
                    for f in fields.iter().filter(|f| f.required) {
                        let v = if f.nullable {
                            Value::Null
                        } else {
                            minimal(set, &f.ty, stack)?
                        };
                        m.insert(f.wire.clone(), v);
                    }
                    if let Some((union, tag)) = sibling {
                        // Pick the union variant matching the tag's minimal value.
                        sibling_minimal(set, fields, union, tag, &mut m, stack)?;
                    }
                    Value::Object(m)
                }
            };
            stack.pop();
            v
        }
    })
}

fn sibling_minimal(
    set: &TypeSet<'_>,
    fields: &[super::types::Field],
    union: &str,
    tag: &str,
    m: &mut Map<String, Value>,
    stack: &mut Vec<String>,
) -> Result<(), String> {
    let union_f = fields
        .iter()
        .find(|f| f.rust == union)
        .ok_or("union field")?;
    let tag_f = fields.iter().find(|f| f.rust == tag).ok_or("tag field")?;
    let (Ty::Named(un, um), Ty::Named(tn, tm)) = (&union_f.ty, &tag_f.ty) else {
        return Ok(());
    };
    let (Some(u), Some(t)) = (set.get(un, um), set.get(tn, tm)) else {
        return Ok(());
    };
    if let (Def::OneOf { variants, .. }, Def::Enum { values }) = (&u.def, &t.def) {
        let (vname, wire) = &values[0];
        if let Some(v) = variants.iter().find(|v| &v.name == vname) {
            m.insert(tag_f.wire.clone(), json!(wire));
            m.insert(union_f.wire.clone(), minimal(set, &v.ty, stack)?);
        }
    }
    Ok(())
}

/// Renders the test file.
pub fn render(set: &TypeSet<'_>) -> Result<String, String> {
    let mut s = String::from(HEADER);
    s.push_str(
        "//! Every model type decodes a minimal JSON value and encodes it back unchanged.\n\n\
use flagwire_core::schematic::models;\n\n\
#[track_caller]\n\
fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned>(json: &str) {\n\
    let expected: serde_json::Value = serde_json::from_str(json).expect(\"fixture is JSON\");\n\
    let value: T = serde_json::from_str(json).unwrap_or_else(|e| panic!(\"decoding {json}: {e}\"));\n\
    let actual = serde_json::to_value(&value).expect(\"encodes\");\n\
    assert_eq!(actual, expected, \"{json} did not round-trip\");\n\
}\n\n\
macro_rules! roundtrip_tests {\n\
    ($($test:ident: $ty:ident = $json:literal;)*) => {\n\
        $(#[test] fn $test() { roundtrip::<models::$ty>($json); })*\n\
    };\n\
}\n\n\
roundtrip_tests! {\n",
    );
    let mut defs: Vec<_> = set
        .defs
        .iter()
        .filter(|d| d.module == Module::Models)
        .collect();
    defs.sort_by(|a, b| a.name.cmp(&b.name));
    let mut names = BTreeSet::new();
    let mut unique = |base: String| {
        let mut test = base;
        while !names.insert(test.clone()) {
            test.push('_');
        }
        test
    };
    for d in defs {
        let ty = Ty::Named(d.name.clone(), Module::Models);
        let value = minimal(set, &ty, &mut Vec::new())?;
        let test = unique(snake(&d.name).trim_start_matches("r#").to_owned());
        let _ = writeln!(s, "    {test}: {} = {:?};", d.name, value.to_string());
        // Tri-state fields: an explicit `null` survives decoding and encoding (it is not
        // dropped like an absent member, nor turned into one).
        if let (Def::Struct { fields, .. }, Value::Object(mut object)) = (&d.def, value)
            && fields.iter().any(|f| f.tri_state)
        {
            for f in fields.iter().filter(|f| f.tri_state) {
                object.insert(f.wire.clone(), Value::Null);
            }
            let test = unique(format!("{test}_nulls"));
            let _ = writeln!(
                s,
                "    {test}: {} = {:?};",
                d.name,
                Value::Object(object).to_string()
            );
        }
    }
    s.push_str("}\n");
    Ok(s)
}
