//! From description schemas to Rust type definitions.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use super::naming::{pascal, snake, type_name, unraw};
use crate::spec::{AdditionalProperties, Api, Schema};

/// Where a type definition lives.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Module {
    /// `models::<chunk>`: component schemas and their inline types.
    Models,
    /// A tag module: inline types of operation parameters and responses.
    Tag(String),
}

/// A Rust type expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    String,
    Bool,
    I32,
    I64,
    F64,
    DateTime,
    Json,
    Named(String, Module),
    Vec(Box<Ty>),
    Map(Box<Ty>),
}

impl Ty {
    /// Renders the type as seen from `from`.
    pub fn render(&self, from: &Module) -> String {
        match self {
            Ty::String => "String".into(),
            Ty::Bool => "bool".into(),
            Ty::I32 => "i32".into(),
            Ty::I64 => "i64".into(),
            Ty::F64 => "f64".into(),
            Ty::DateTime => "time::OffsetDateTime".into(),
            Ty::Json => "serde_json::Value".into(),
            Ty::Named(n, m) => match (m, from) {
                (Module::Models, Module::Tag(_)) => format!("models::{n}"),
                _ => n.clone(),
            },
            Ty::Vec(t) => format!("Vec<{}>", t.render(from)),
            Ty::Map(t) if **t == Ty::Json => "Traits".into(),
            Ty::Map(t) => format!("BTreeMap<String, {}>", t.render(from)),
        }
    }

    /// Whether this is a free-form JSON object (`Traits` in the generated code).
    pub fn is_object(&self) -> bool {
        matches!(self, Ty::Map(t) if **t == Ty::Json)
    }

    fn contains_nested_datetime(&self) -> bool {
        match self {
            Ty::Vec(t) | Ty::Map(t) => matches!(**t, Ty::DateTime) || t.contains_nested_datetime(),
            _ => false,
        }
    }
}

/// One struct field.
#[derive(Debug, Clone)]
pub struct Field {
    pub rust: String,
    pub wire: String,
    pub ty: Ty,
    pub required: bool,
    pub nullable: bool,
    /// Optional and nullable in a request type: `Nullable<T>` (absent, `null` or a value).
    pub tri_state: bool,
    pub boxed: bool,
    pub notes: Vec<String>,
}

/// A variant of a `oneOf`/`anyOf` enum.
#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    pub ty: Ty,
    /// The discriminator value selecting this variant, for tagged enums.
    pub tag: Option<String>,
}

/// A generated type definition.
#[derive(Debug, Clone)]
pub enum Def {
    Struct {
        fields: Vec<Field>,
        /// `(field, discriminator field)`: the first field's `oneOf` is chosen by the second's value.
        sibling: Option<(String, String)>,
    },
    Enum {
        values: Vec<(String, String)>,
    },
    OneOf {
        variants: Vec<Variant>,
        /// Discriminating property, for tagged enums; untagged otherwise.
        property: Option<String>,
    },
    Alias {
        ty: Ty,
    },
}

/// A named definition with its provenance.
#[derive(Debug, Clone)]
pub struct TypeDef {
    pub name: String,
    pub module: Module,
    /// Models chunk (file) for model types.
    pub chunk: String,
    /// Where it comes from, for the doc comment (`schema X`, `X.field`).
    pub origin: String,
    pub def: Def,
    /// Reachable from a request body: optional nullable fields are tri-state.
    pub request: bool,
}

/// Collects type definitions while walking schemas.
pub struct TypeSet<'a> {
    pub api: &'a Api,
    pub defs: Vec<TypeDef>,
    /// Taken names per module.
    names: HashMap<Module, BTreeSet<String>>,
    /// Component schema name to Rust type name.
    component_names: BTreeMap<String, String>,
}

/// The fine-grained models chunk of a type name: its first two letters (`c_o` for
/// `Company...`). [`coarsen_chunks`] merges small groups back to one letter.
pub fn chunk_of(name: &str) -> String {
    let mut letters = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase());
    match (letters.next(), letters.next()) {
        (Some(a), Some(b)) => format!("{a}_{b}"),
        (Some(a), None) => a.to_string(),
        _ => "other".into(),
    }
}

/// Types per file above which a letter is split by its second letter.
pub const CHUNK_SPLIT: usize = 40;

/// Keeps one file per initial letter unless that letter has more than [`CHUNK_SPLIT`] types,
/// so that files stay comparable in size and the compiler can spread work across them.
pub fn coarsen_chunks(defs: &mut [TypeDef]) {
    let mut per_letter: BTreeMap<String, usize> = BTreeMap::new();
    let letter = |chunk: &str| chunk.split('_').next().unwrap_or(chunk).to_owned();
    for d in defs.iter().filter(|d| d.module == Module::Models) {
        *per_letter.entry(letter(&d.chunk)).or_default() += 1;
    }
    for d in defs.iter_mut().filter(|d| d.module == Module::Models) {
        let l = letter(&d.chunk);
        if per_letter[&l] <= CHUNK_SPLIT {
            d.chunk = l;
        }
    }
}

impl<'a> TypeSet<'a> {
    pub fn new(api: &'a Api) -> Result<Self, String> {
        let mut set = TypeSet {
            api,
            defs: Vec::new(),
            names: HashMap::new(),
            component_names: BTreeMap::new(),
        };
        // Component names are reserved first so that inline types never take them.
        for name in api.schemas.keys() {
            let rust = type_name(name);
            if !set.reserve(&Module::Models, &rust) {
                return Err(format!("schema {name} maps to the taken type name {rust}"));
            }
            set.component_names.insert(name.clone(), rust);
        }
        for (name, schema) in &api.schemas {
            let rust = set.component_names[name].clone();
            let chunk = chunk_of(&rust);
            set.define(
                &rust,
                Module::Models,
                &chunk,
                format!("schema `{name}`"),
                schema,
            )?;
        }
        Ok(set)
    }

    fn reserve(&mut self, module: &Module, name: &str) -> bool {
        self.names
            .entry(module.clone())
            .or_default()
            .insert(name.to_owned())
    }

    /// A free name in `module` based on `base`.
    fn fresh(&mut self, module: &Module, base: &str) -> String {
        let taken = self.names.entry(module.clone()).or_default();
        // Tag modules also see model names through `models::`, so only their own names clash.
        let mut candidate = base.to_owned();
        let mut n = 2;
        while taken.contains(&candidate) {
            candidate = format!("{base}{n}");
            n += 1;
        }
        taken.insert(candidate.clone());
        candidate
    }

    /// Resolves a `$ref` to its component schema.
    pub fn resolve(&self, schema: &'a Schema) -> Result<&'a Schema, String> {
        match schema.ref_name() {
            Some(n) => self
                .api
                .schemas
                .get(n)
                .ok_or_else(|| format!("unresolved reference {n}")),
            None => Ok(schema),
        }
    }

    /// Defines the named type `name` for `schema` (already reserved).
    fn define(
        &mut self,
        name: &str,
        module: Module,
        chunk: &str,
        origin: String,
        schema: &Schema,
    ) -> Result<(), String> {
        let def = self.def_of(name, &module, chunk, schema)?;
        self.defs.push(TypeDef {
            name: name.to_owned(),
            module,
            chunk: chunk.to_owned(),
            origin,
            def,
            request: false,
        });
        Ok(())
    }

    fn def_of(
        &mut self,
        name: &str,
        module: &Module,
        chunk: &str,
        schema: &Schema,
    ) -> Result<Def, String> {
        if schema.reference.is_some() || (schema.all_of.len() == 1 && schema.properties.is_empty())
        {
            let ty = self.ty_of(schema, name, module, chunk)?;
            return Ok(Def::Alias { ty });
        }
        if !schema.one_of.is_empty() || !schema.any_of.is_empty() {
            return self.one_of(name, module, chunk, schema);
        }
        if is_string_enum(schema) {
            return Ok(Def::Enum {
                values: enum_values(schema)?,
            });
        }
        if !schema.all_of.is_empty() {
            let merged = self.merge_all_of(schema)?;
            return self.def_of(name, module, chunk, &merged);
        }
        if !schema.properties.is_empty() {
            return self.struct_def(name, module, chunk, schema);
        }
        let ty = self.ty_of(schema, name, module, chunk)?;
        Ok(Def::Alias { ty })
    }

    fn merge_all_of(&self, schema: &Schema) -> Result<Schema, String> {
        let mut merged = Schema {
            ty: Some("object".into()),
            properties: schema.properties.clone(),
            required: schema.required.clone(),
            ..Schema::default()
        };
        for part in &schema.all_of {
            let part = self.resolve(part)?;
            if !part.all_of.is_empty() {
                let inner = self.merge_all_of(part)?;
                merged.properties.extend(inner.properties);
                merged.required.extend(inner.required);
            }
            merged.properties.extend(part.properties.clone());
            merged.required.extend(part.required.iter().cloned());
        }
        merged.required.sort();
        merged.required.dedup();
        Ok(merged)
    }

    fn struct_def(
        &mut self,
        name: &str,
        module: &Module,
        chunk: &str,
        schema: &Schema,
    ) -> Result<Def, String> {
        let mut fields = Vec::new();
        let mut taken = BTreeSet::new();
        for (wire, prop) in &schema.properties {
            let mut rust = snake(wire);
            while !taken.insert(rust.clone()) {
                rust.push('_');
            }
            let inline_name = format!("{name}{}", pascal(wire));
            let ty = self.ty_of(prop, &inline_name, module, chunk)?;
            if ty.contains_nested_datetime() {
                return Err(format!(
                    "{name}.{wire}: date-times inside arrays or maps are not supported"
                ));
            }
            let resolved = self.resolve(prop)?;
            let nullable = prop.nullable || resolved.nullable;
            fields.push(Field {
                rust,
                wire: wire.clone(),
                ty,
                required: schema.required.contains(wire),
                nullable,
                tri_state: false,
                boxed: false,
                notes: constraint_notes(prop),
            });
        }
        Ok(Def::Struct {
            fields,
            sibling: None,
        })
    }

    fn one_of(
        &mut self,
        name: &str,
        module: &Module,
        chunk: &str,
        schema: &Schema,
    ) -> Result<Def, String> {
        let members = if schema.one_of.is_empty() {
            &schema.any_of
        } else {
            &schema.one_of
        };
        let mut variants = Vec::new();
        let mut used = BTreeSet::new();
        let property = discriminator_property(self, schema, members)?;
        for (i, member) in members.iter().enumerate() {
            let ty = self.ty_of(member, &format!("{name}Variant{}", i + 1), module, chunk)?;
            let tag = match &property {
                Some(p) => Some(self.variant_tag(schema, member, p)?),
                None => None,
            };
            let base = match (&tag, member.ref_name()) {
                (Some(t), _) => pascal(t),
                (None, Some(r)) => {
                    let r = type_name(r);
                    match r.strip_prefix(name) {
                        Some(rest) if !rest.is_empty() => rest.to_owned(),
                        _ => r,
                    }
                }
                (None, None) => format!("Variant{}", i + 1),
            };
            let mut vname = if base == "Unknown" {
                "UnknownValue".to_owned()
            } else {
                base
            };
            while !used.insert(vname.clone()) {
                vname.push('_');
            }
            variants.push((
                required_count(self, member),
                i,
                Variant {
                    name: vname,
                    ty,
                    tag,
                },
            ));
        }
        if property.is_none() {
            // Untagged: try the most constrained shapes first so that a value is not captured by
            // a variant whose few required fields it happens to have.
            variants.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        }
        Ok(Def::OneOf {
            variants: variants.into_iter().map(|v| v.2).collect(),
            property,
        })
    }

    fn variant_tag(
        &self,
        parent: &Schema,
        member: &Schema,
        property: &str,
    ) -> Result<String, String> {
        if let (Some(d), Some(r)) = (&parent.discriminator, &member.reference)
            && let Some((value, _)) = d.mapping.iter().find(|(_, target)| *target == r)
        {
            return Ok(value.clone());
        }
        let resolved = self.resolve(member)?;
        const_value(self, resolved, property)?.ok_or_else(|| {
            format!(
                "oneOf member {:?} fixes no value of discriminator {property}",
                member.ref_name()
            )
        })
    }

    /// The Rust type of `schema`; inline objects, enums and unions become named definitions
    /// called `inline_name`.
    pub fn ty_of(
        &mut self,
        schema: &Schema,
        inline_name: &str,
        module: &Module,
        chunk: &str,
    ) -> Result<Ty, String> {
        if let Some(r) = schema.ref_name() {
            let name = self
                .component_names
                .get(r)
                .ok_or_else(|| format!("unresolved reference {r}"))?;
            return Ok(Ty::Named(name.clone(), Module::Models));
        }
        if schema.all_of.len() == 1 && schema.properties.is_empty() {
            return self.ty_of(&schema.all_of[0], inline_name, module, chunk);
        }
        let needs_def = !schema.one_of.is_empty()
            || !schema.any_of.is_empty()
            || !schema.all_of.is_empty()
            || is_string_enum(schema)
            || !schema.properties.is_empty();
        if needs_def {
            let name = self.fresh(module, inline_name);
            let origin = format!("inline type `{inline_name}`");
            self.define(&name, module.clone(), chunk, origin, schema)?;
            return Ok(Ty::Named(name, module.clone()));
        }
        Ok(match schema.ty.as_deref() {
            Some("string") => match schema.format.as_deref() {
                Some("date-time") => Ty::DateTime,
                _ => Ty::String,
            },
            Some("integer") => match schema.format.as_deref() {
                Some("int32") => Ty::I32,
                _ => Ty::I64,
            },
            Some("number") => Ty::F64,
            Some("boolean") => Ty::Bool,
            Some("array") => {
                let items = schema
                    .items
                    .as_deref()
                    .ok_or_else(|| format!("{inline_name}: array without items"))?;
                Ty::Vec(Box::new(self.ty_of(
                    items,
                    &format!("{inline_name}Item"),
                    module,
                    chunk,
                )?))
            }
            Some("object") | None => match &schema.additional_properties {
                Some(AdditionalProperties::Schema(v)) => Ty::Map(Box::new(self.ty_of(
                    v,
                    &format!("{inline_name}Value"),
                    module,
                    chunk,
                )?)),
                _ if schema.ty.is_some() => Ty::Map(Box::new(Ty::Json)),
                _ => Ty::Json,
            },
            Some(other) => return Err(format!("{inline_name}: unsupported type {other}")),
        })
    }

    /// Marks struct fields that must be boxed because their type contains the struct itself
    /// without indirection.
    pub fn box_recursive_fields(&mut self) {
        let mut direct: HashMap<(String, Module), Vec<(String, Module)>> = HashMap::new();
        for d in &self.defs {
            let mut out = Vec::new();
            let mut push = |ty: &Ty| {
                if let Ty::Named(n, m) = ty {
                    out.push((n.clone(), m.clone()));
                }
            };
            match &d.def {
                Def::Struct { fields, .. } => fields.iter().for_each(|f| push(&f.ty)),
                Def::OneOf { variants, .. } => variants.iter().for_each(|v| push(&v.ty)),
                Def::Alias { ty } => push(ty),
                Def::Enum { .. } => {}
            }
            direct.insert((d.name.clone(), d.module.clone()), out);
        }
        let reaches = |from: &(String, Module), to: &(String, Module)| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![from.clone()];
            while let Some(cur) = stack.pop() {
                if &cur == to {
                    return true;
                }
                if seen.insert(cur.clone())
                    && let Some(next) = direct.get(&cur)
                {
                    stack.extend(next.iter().cloned());
                }
            }
            false
        };
        let mut to_box = Vec::new();
        for (di, d) in self.defs.iter().enumerate() {
            if let Def::Struct { fields, .. } = &d.def {
                let me = (d.name.clone(), d.module.clone());
                for (fi, f) in fields.iter().enumerate() {
                    if let Ty::Named(n, m) = &f.ty
                        && reaches(&(n.clone(), m.clone()), &me)
                    {
                        to_box.push((di, fi));
                    }
                }
            }
        }
        for (di, fi) in to_box {
            if let Def::Struct { fields, .. } = &mut self.defs[di].def {
                fields[fi].boxed = true;
            }
        }
    }

    /// Finds structs where a field's untagged union is chosen by a sibling enum field whose
    /// values name the union's variants (e.g. an event `body` chosen by `event_type`).
    pub fn link_sibling_discriminators(&mut self) {
        let lookup: HashMap<(String, Module), Def> = self
            .defs
            .iter()
            .map(|d| ((d.name.clone(), d.module.clone()), d.def.clone()))
            .collect();
        for d in &mut self.defs {
            let Def::Struct { fields, sibling } = &mut d.def else {
                continue;
            };
            'fields: for f in fields.iter() {
                let Ty::Named(n, m) = &f.ty else { continue };
                let Some(Def::OneOf {
                    variants,
                    property: None,
                }) = lookup.get(&(n.clone(), m.clone()))
                else {
                    continue;
                };
                for g in fields.iter() {
                    let Ty::Named(en, em) = &g.ty else { continue };
                    let Some(Def::Enum { values }) = lookup.get(&(en.clone(), em.clone())) else {
                        continue;
                    };
                    let names: BTreeSet<&str> = values.iter().map(|(v, _)| v.as_str()).collect();
                    if g.required
                        && !g.nullable
                        && variants.iter().all(|v| names.contains(v.name.as_str()))
                    {
                        *sibling = Some((f.rust.clone(), g.rust.clone()));
                        break 'fields;
                    }
                }
            }
        }
    }

    /// Looks a definition up by name and module.
    pub fn get(&self, name: &str, module: &Module) -> Option<&TypeDef> {
        self.defs
            .iter()
            .find(|d| d.name == name && &d.module == module)
    }

    /// `ty` with aliases replaced by what they stand for, at the top level.
    pub fn resolved(&self, ty: &Ty) -> Ty {
        let mut cur = ty.clone();
        // Alias chains are short; the bound only guards against a cycle.
        for _ in 0..16 {
            let Ty::Named(n, m) = &cur else { break };
            match self.get(n, m).map(|d| &d.def) {
                Some(Def::Alias { ty }) => cur = ty.clone(),
                _ => break,
            }
        }
        cur
    }

    /// Marks every type reachable from `roots` (the request bodies) as a request type, and
    /// makes their optional nullable fields tri-state. Returns the number of such fields.
    pub fn mark_request_types<'t>(&mut self, roots: impl IntoIterator<Item = &'t Ty>) -> usize {
        let index: HashMap<(String, Module), usize> = self
            .defs
            .iter()
            .enumerate()
            .map(|(i, d)| ((d.name.clone(), d.module.clone()), i))
            .collect();
        let mut stack: Vec<Ty> = roots.into_iter().cloned().collect();
        let mut seen = BTreeSet::new();
        while let Some(ty) = stack.pop() {
            match ty {
                Ty::Vec(t) | Ty::Map(t) => stack.push(*t),
                Ty::Named(n, m) => {
                    let Some(&i) = index.get(&(n, m)) else {
                        continue;
                    };
                    if !seen.insert(i) {
                        continue;
                    }
                    self.defs[i].request = true;
                    match &self.defs[i].def {
                        Def::Struct { fields, .. } => {
                            stack.extend(fields.iter().map(|f| f.ty.clone()));
                        }
                        Def::OneOf { variants, .. } => {
                            stack.extend(variants.iter().map(|v| v.ty.clone()));
                        }
                        Def::Alias { ty } => stack.push(ty.clone()),
                        Def::Enum { .. } => {}
                    }
                }
                _ => {}
            }
        }
        let mut count = 0;
        for d in self.defs.iter_mut().filter(|d| d.request) {
            if let Def::Struct { fields, .. } = &mut d.def {
                for f in fields.iter_mut().filter(|f| !f.required && f.nullable) {
                    f.tri_state = true;
                    count += 1;
                }
            }
        }
        count
    }

    /// Whether a value of `ty` contains a tri-state field somewhere.
    pub fn reaches_tri_state(&self, ty: &Ty) -> bool {
        let mut stack = vec![ty.clone()];
        let mut seen = BTreeSet::new();
        while let Some(ty) = stack.pop() {
            match ty {
                Ty::Vec(t) | Ty::Map(t) => stack.push(*t),
                Ty::Named(n, m) => {
                    if !seen.insert((n.clone(), m.clone())) {
                        continue;
                    }
                    match self.get(&n, &m).map(|d| &d.def) {
                        Some(Def::Struct { fields, .. }) => {
                            if fields.iter().any(|f| f.tri_state) {
                                return true;
                            }
                            stack.extend(fields.iter().map(|f| f.ty.clone()));
                        }
                        Some(Def::OneOf { variants, .. }) => {
                            stack.extend(variants.iter().map(|v| v.ty.clone()));
                        }
                        Some(Def::Alias { ty }) => stack.push(ty.clone()),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        false
    }
}

/// How a request type takes its JSON body: a named body type as itself (so that
/// `Op::new(serde_json::from_value(v)?)` needs no annotation), any other shape as [`arg`] does
/// (a free-form object from pairs).
pub fn body_arg(
    ty: &Ty,
    shape: &Ty,
    render: &dyn Fn(&Ty) -> String,
    name: &str,
) -> (String, String) {
    match shape {
        Ty::Named(..) => (render(ty), name.to_owned()),
        _ => arg(ty, shape, render, name),
    }
}

/// How a constructor or setter takes a value of type `ty`: the parameter type, and the
/// expression turning the parameter `name` into the stored value. `shape` is `ty` with
/// aliases resolved; `render` writes a type as seen from the generated code.
///
/// Strings take `impl Into<String>`, arrays any iterator, maps any iterator of pairs (so
/// `[("id", "acme")]` works), free-form values `impl Into<serde_json::Value>`, named types
/// `impl Into<T>` (a union from one of its members, an open enum from `&str`).
pub fn arg(ty: &Ty, shape: &Ty, render: &dyn Fn(&Ty) -> String, name: &str) -> (String, String) {
    const INTO_STRING: &str = "impl Into<String>";
    const INTO_JSON: &str = "impl Into<serde_json::Value>";
    let pairs = |value: &str, conv: &str| {
        (
            format!("impl IntoIterator<Item = ({INTO_STRING}, {value})>"),
            format!("{name}.into_iter().map(|(k, v)| (k.into(), v{conv})).collect()"),
        )
    };
    match shape {
        Ty::String => (INTO_STRING.into(), format!("{name}.into()")),
        Ty::Json => (INTO_JSON.into(), format!("{name}.into()")),
        Ty::Vec(inner) if **inner == Ty::String => (
            format!("impl IntoIterator<Item = {INTO_STRING}>"),
            format!("{name}.into_iter().map(Into::into).collect()"),
        ),
        Ty::Vec(inner) => (
            format!("impl IntoIterator<Item = {}>", render(inner)),
            format!("{name}.into_iter().collect()"),
        ),
        Ty::Map(inner) if **inner == Ty::String => pairs(INTO_STRING, ".into()"),
        Ty::Map(inner) if **inner == Ty::Json => pairs(INTO_JSON, ".into()"),
        Ty::Map(inner) => pairs(&render(inner), ""),
        Ty::Named(..) => (
            format!("impl Into<{}>", render(ty)),
            format!("{name}.into()"),
        ),
        Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64 | Ty::DateTime => (render(ty), name.to_owned()),
    }
}

fn is_string_enum(schema: &Schema) -> bool {
    !schema.enumeration.is_empty() && schema.ty.as_deref().is_none_or(|t| t == "string")
}

fn enum_values(schema: &Schema) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut used = BTreeSet::new();
    for v in &schema.enumeration {
        let wire = v
            .as_str()
            .ok_or_else(|| format!("non-string enum value {v}"))?
            .to_owned();
        if out.iter().any(|(_, w)| *w == wire) {
            continue;
        }
        let mut name = pascal(&wire);
        if name == "Unknown" {
            name = "UnknownValue".into();
        }
        while !used.insert(name.clone()) {
            name.push('_');
        }
        out.push((name, wire));
    }
    Ok(out)
}

/// The one value `schema` allows for `property`, if it fixes one.
fn const_value(
    set: &TypeSet<'_>,
    schema: &Schema,
    property: &str,
) -> Result<Option<String>, String> {
    let Some(p) = schema.properties.get(property) else {
        return Ok(None);
    };
    let p = set.resolve(p)?;
    Ok(match p.enumeration.as_slice() {
        [v] => v.as_str().map(str::to_owned),
        _ => None,
    })
}

fn discriminator_property(
    set: &TypeSet<'_>,
    schema: &Schema,
    members: &[Schema],
) -> Result<Option<String>, String> {
    if let Some(d) = &schema.discriminator {
        return Ok(Some(d.property_name.clone()));
    }
    // No declared discriminator: use a property that every member fixes to a distinct value.
    let first = set.resolve(&members[0])?;
    'candidates: for prop in first.properties.keys() {
        let mut seen = BTreeSet::new();
        for m in members {
            let m = set.resolve(m)?;
            match const_value(set, m, prop)? {
                Some(v) if m.required.contains(prop) && seen.insert(v.clone()) => {}
                _ => continue 'candidates,
            }
        }
        return Ok(Some(prop.clone()));
    }
    Ok(None)
}

fn required_count(set: &TypeSet<'_>, schema: &Schema) -> usize {
    set.resolve(schema).map_or(0, |s| s.required.len())
}

fn constraint_notes(schema: &Schema) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(n) = schema.max_length {
        notes.push(format!("at most {n} characters"));
    }
    if let Some(n) = schema.max_items {
        notes.push(format!("at most {n} items"));
    }
    if let Some(n) = schema.max_properties {
        notes.push(format!("at most {n} entries"));
    }
    if let Some(n) = &schema.minimum {
        notes.push(format!("minimum {n}"));
    }
    if let Some(n) = &schema.maximum {
        notes.push(format!("maximum {n}"));
    }
    if schema.deprecated {
        notes.push("deprecated".into());
    }
    notes
}

/// Renders one definition as Rust source, as seen from its own module.
pub fn render_def(set: &TypeSet<'_>, d: &TypeDef, out: &mut String) -> Result<(), String> {
    let m = &d.module;
    if !matches!(d.def, Def::Enum { .. }) {
        let _ = writeln!(out, "/// The {}.", d.origin);
    }
    match &d.def {
        Def::Alias { ty } => {
            let _ = writeln!(out, "pub type {} = {};\n", d.name, ty.render(m));
        }
        Def::Enum { values } => {
            let _ = writeln!(
                out,
                "open_enum! {{\n    /// The {}.\n    pub enum {} {{",
                d.origin, d.name
            );
            // rustfmt leaves macro input alone, so it is indented here.
            for (v, w) in values {
                let _ = writeln!(out, "        {v} => {w:?},");
            }
            out.push_str("    }\n}\n\n");
        }
        Def::OneOf { variants, property } => {
            render_one_of(set, d, variants, property.as_deref(), out);
        }
        Def::Struct { fields, sibling } => render_struct(set, d, fields, sibling.as_ref(), out)?,
    }
    Ok(())
}

/// The field's type without the `Option`/`Nullable` wrapper.
fn inner_ty(f: &Field, m: &Module) -> String {
    if f.boxed {
        format!("Box<{}>", f.ty.render(m))
    } else {
        f.ty.render(m)
    }
}

fn field_ty(f: &Field, m: &Module) -> String {
    let inner = inner_ty(f, m);
    if f.tri_state {
        format!("Nullable<{inner}>")
    } else if f.required && !f.nullable {
        inner
    } else {
        format!("Option<{inner}>")
    }
}

/// `, at most 256 characters, deprecated` or nothing.
fn notes_suffix(f: &Field) -> String {
    f.notes.iter().map(|n| format!(", {n}")).collect()
}

fn field_doc(f: &Field) -> String {
    let presence = match (f.required, f.nullable, f.tri_state) {
        (true, false, _) => "required",
        (true, true, _) => "required, may be null",
        (false, _, true) => "optional, may be `null`",
        (false, _, false) => "optional",
    };
    format!("/// `{}`, {presence}{}.", f.wire, notes_suffix(f))
}

fn serde_attrs(f: &Field) -> Vec<String> {
    let mut attrs = Vec::new();
    if unraw(&f.rust) != f.wire {
        attrs.push(format!("rename = {:?}", f.wire));
    }
    let optional = !f.required;
    if f.tri_state {
        attrs.push("default".into());
        attrs.push("skip_serializing_if = \"Nullable::is_absent\"".into());
    } else if optional {
        attrs.push("default".into());
        attrs.push("skip_serializing_if = \"Option::is_none\"".into());
    }
    if f.ty == Ty::DateTime {
        if f.tri_state {
            attrs.push("with = \"crate::nullable::rfc3339\"".into());
        } else if optional || f.nullable {
            attrs.push("with = \"time::serde::rfc3339::option\"".into());
        } else {
            attrs.push("with = \"time::serde::rfc3339\"".into());
        }
    }
    attrs
}

fn render_fields(
    fields: &[Field],
    m: &Module,
    override_field: Option<&str>,
    out: &mut String,
    public: bool,
) {
    for f in fields {
        if public {
            let _ = writeln!(out, "{}", field_doc(f));
        }
        let attrs = serde_attrs(f);
        if !attrs.is_empty() {
            let _ = writeln!(out, "#[serde({})]", attrs.join(", "));
        }
        let ty = if override_field == Some(f.rust.as_str()) {
            if f.tri_state {
                "Nullable<serde_json::Value>".to_owned()
            } else if f.required && !f.nullable {
                "serde_json::Value".to_owned()
            } else {
                "Option<serde_json::Value>".to_owned()
            }
        } else {
            field_ty(f, m)
        };
        let vis = if public { "pub " } else { "" };
        let _ = writeln!(out, "{vis}{}: {ty},", f.rust);
    }
}

/// Method names a field setter must not take: the constructor, and methods of the derived
/// traits that an inherent method would shadow.
const RESERVED_METHODS: &[&str] = &[
    "new",
    "clone",
    "clone_from",
    "default",
    "eq",
    "ne",
    "fmt",
    "serialize",
    "deserialize",
    "into",
    "from",
    "to_owned",
];

/// The name of the one-entry method of a free-form map field: `trait_value` for `traits`.
fn entry_method(field: &str) -> String {
    let name = unraw(field);
    let singular = if let Some(stem) = name.strip_suffix("ies") {
        format!("{stem}y")
    } else if name.ends_with('s') && !name.ends_with("ss") && name.len() > 1 {
        name[..name.len() - 1].to_owned()
    } else {
        name.to_owned()
    };
    format!("{singular}_value")
}

/// The constructor and the setters of a struct: required fields are arguments of `new`,
/// optional ones have a setter of their own name (`clear_` for tri-state fields, an entry
/// method and a `try_` setter for free-form objects).
fn render_builder(
    set: &TypeSet<'_>,
    d: &TypeDef,
    fields: &[Field],
    out: &mut String,
) -> Result<(), String> {
    let m = &d.module;
    let render = |t: &Ty| t.render(m);
    let mut methods: BTreeSet<String> = BTreeSet::from(["new".to_owned()]);
    let mut s = String::new();
    if fields.iter().all(|f| !f.required) {
        s.push_str(
            "/// An empty value: every field is optional and starts unset.\n#[inline]\npub fn new() -> Self { Self::default() }\n\n",
        );
    } else {
        let mut args = Vec::new();
        let mut inits = Vec::new();
        for f in fields {
            if !f.required {
                let unset = if f.tri_state {
                    "Nullable::Absent"
                } else {
                    "None"
                };
                inits.push(format!("{}: {unset}", f.rust));
                continue;
            }
            let (ty, value) = if f.nullable {
                let value = if f.boxed {
                    format!("{}.map(Box::new)", f.rust)
                } else {
                    f.rust.clone()
                };
                (format!("Option<{}>", f.ty.render(m)), value)
            } else {
                let (ty, conv) = arg(&f.ty, &set.resolved(&f.ty), &render, &f.rust);
                let conv = if f.boxed {
                    format!("Box::new({conv})")
                } else {
                    conv
                };
                (ty, conv)
            };
            args.push(format!("{}: {ty}", f.rust));
            inits.push(if value == f.rust {
                value
            } else {
                format!("{}: {value}", f.rust)
            });
        }
        let _ = writeln!(
            s,
            "/// Creates a value from its required fields; optional fields start unset.\npub fn new({}) -> Self {{ Self {{ {} }} }}\n",
            args.join(", "),
            inits.join(", ")
        );
    }
    for f in fields.iter().filter(|f| !f.required) {
        let name = unraw(&f.rust);
        if RESERVED_METHODS.contains(&name) || !methods.insert(name.to_owned()) {
            return Err(format!(
                "{}.{}: the setter `{name}` would clash with another method",
                d.name, f.wire
            ));
        }
        let shape = set.resolved(&f.ty);
        let (ty, conv) = arg(&f.ty, &shape, &render, "value");
        let conv = if f.boxed {
            format!("Box::new({conv})")
        } else {
            conv
        };
        let wrap = if f.tri_state {
            format!("Nullable::Value({conv})")
        } else {
            format!("Some({conv})")
        };
        let _ = writeln!(
            s,
            "/// Sets `{}`{}.\n#[inline]\npub fn {}(mut self, value: {ty}) -> Self {{ self.{} = {wrap}; self }}\n",
            f.wire,
            notes_suffix(f),
            f.rust,
            f.rust
        );
        if f.tri_state {
            let clear = format!("clear_{name}");
            if methods.insert(clear.clone()) {
                let _ = writeln!(
                    s,
                    "/// Sends `{}` as `null` (an update clears the stored value).\n#[inline]\npub fn {clear}(mut self) -> Self {{ self.{} = Nullable::Null; self }}\n",
                    f.wire, f.rust
                );
            }
        }
        if shape.is_object() && !f.boxed {
            let entry = entry_method(&f.rust);
            if methods.insert(entry.clone()) {
                let _ = writeln!(
                    s,
                    "/// Adds one entry to `{}` (`json!` values, strings, numbers, booleans).\n#[inline]\npub fn {entry}(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {{ self.{}.get_or_insert_with(Traits::new).insert(key.into(), value.into()); self }}\n",
                    f.wire, f.rust
                );
            }
            let try_set = format!("try_{name}");
            if methods.insert(try_set.clone()) {
                let wrap = if f.tri_state {
                    "Nullable::Value"
                } else {
                    "Some"
                };
                let _ = writeln!(
                    s,
                    "/// Sets `{}` from anything that serializes to a JSON object: a `json!({{..}})` value, a\n/// map, a struct with named fields. Anything else is an [`ObjectError`](crate::json::ObjectError).\npub fn {try_set}(mut self, value: impl serde::Serialize) -> Result<Self, crate::json::ObjectError> {{ self.{} = {wrap}(crate::json::to_object(value)?); Ok(self) }}\n",
                    f.wire, f.rust
                );
            }
        }
    }
    let _ = writeln!(out, "impl {} {{\n{s}}}\n", d.name);
    Ok(())
}

fn render_struct(
    set: &TypeSet<'_>,
    d: &TypeDef,
    fields: &[Field],
    sibling: Option<&(String, String)>,
    out: &mut String,
) -> Result<(), String> {
    let m = &d.module;
    let all_optional = fields.iter().all(|f| !f.required);
    let mut derives = vec!["Debug", "Clone", "PartialEq", "Serialize"];
    if all_optional {
        derives.push("Default");
    }
    let _ = writeln!(out, "#[derive({})]\n#[non_exhaustive]", derives.join(", "));
    let _ = writeln!(out, "pub struct {} {{", d.name);
    render_fields(fields, m, None, out, true);
    out.push_str("}\n\n");
    render_builder(set, d, fields, out)?;
    let Some((union_field, tag_field)) = sibling else {
        render_deserialize(d, fields, out);
        return Ok(());
    };
    // The union is decoded according to the sibling tag; unknown tags fall back to shape
    // matching.
    let union = fields
        .iter()
        .find(|f| &f.rust == union_field)
        .expect("field exists");
    let tag = fields
        .iter()
        .find(|f| &f.rust == tag_field)
        .expect("field exists");
    let (Ty::Named(un, um), Ty::Named(tn, tm)) = (&union.ty, &tag.ty) else {
        unreachable!("sibling discriminators link named types")
    };
    let Some(TypeDef {
        def: Def::OneOf { variants, .. },
        ..
    }) = set.get(un, um)
    else {
        unreachable!()
    };
    let union_ty = union.ty.render(m);
    let tag_ty = Ty::Named(tn.clone(), tm.clone()).render(m);
    let _ = writeln!(
        out,
        "impl<'de> Deserialize<'de> for {name} {{
fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{
#[derive(Deserialize)]
struct Wire {{",
        name = d.name
    );
    render_fields(fields, m, Some(union_field), out, false);
    out.push_str("}\nlet wire = Wire::deserialize(deserializer)?;\n");
    let decode = |v: &str| -> String {
        let mut s = format!("match &wire.{tag_field} {{\n");
        for var in variants {
            let _ = writeln!(
                s,
                "{tag_ty}::{n} => serde_json::from_value({v}).map({union_ty}::{n}),",
                n = var.name
            );
        }
        let _ = writeln!(
            s,
            "_ => serde_json::from_value({v}),\n}}.map_err(serde::de::Error::custom)?"
        );
        s
    };
    let value_expr = if union.tri_state {
        format!(
            "match wire.{union_field} {{ Nullable::Absent => Nullable::Absent, Nullable::Null => Nullable::Null, Nullable::Value(value) => Nullable::Value({}) }}",
            decode("value")
        )
    } else if union.required && !union.nullable {
        decode(&format!("wire.{union_field}"))
    } else {
        format!(
            "match wire.{union_field} {{ None => None, Some(value) => Some({}) }}",
            decode("value")
        )
    };
    let _ = writeln!(out, "let {union_field} = {value_expr};");
    let _ = write!(out, "Ok({} {{", d.name);
    for f in fields {
        if &f.rust == union_field {
            let _ = write!(out, "{union_field},");
        } else {
            let _ = write!(out, "{0}: wire.{0},", f.rust);
        }
    }
    out.push_str("})\n}\n}\n\n");
    Ok(())
}

/// A compact `Deserialize` for a struct: one map visitor, keys matched as strings, unknown keys
/// skipped. Same behaviour as serde's derive for JSON objects, with far less code to compile.
fn render_deserialize(d: &TypeDef, fields: &[Field], out: &mut String) {
    let m = &d.module;
    let _ = writeln!(
        out,
        "impl<'de> Deserialize<'de> for {name} {{
fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{
struct V;
impl<'de> serde::de::Visitor<'de> for V {{
type Value = {name};
fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {{ f.write_str(\"a {name} object\") }}
fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<{name}, A::Error> {{",
        name = d.name,
    );
    for (i, f) in fields.iter().enumerate() {
        let inner = inner_ty(f, m);
        if f.tri_state {
            let _ = writeln!(out, "let mut f{i}: Nullable<{inner}> = Nullable::Absent;");
        } else {
            let _ = writeln!(out, "let mut f{i}: Option<{inner}> = None;");
        }
    }
    out.push_str(
        "while let Some(key) = map.next_key::<crate::de::Key<'de>>()? {\nmatch key.as_str() {\n",
    );
    for (i, f) in fields.iter().enumerate() {
        let optional = !f.required || f.nullable;
        let value = match (f.ty == Ty::DateTime, f.tri_state, optional) {
            (true, true, _) => "map.next_value::<crate::de::OptDateTime>()?.0.into()".to_owned(),
            (false, true, _) => "map.next_value()?".to_owned(),
            (true, false, true) => "map.next_value::<crate::de::OptDateTime>()?.0".to_owned(),
            (true, false, false) => "Some(map.next_value::<crate::de::DateTime>()?.0)".to_owned(),
            (false, false, true) => "map.next_value()?".to_owned(),
            (false, false, false) => "Some(map.next_value()?)".to_owned(),
        };
        let _ = writeln!(out, "{:?} => f{i} = {value},", f.wire);
    }
    out.push_str("_ => { map.next_value::<serde::de::IgnoredAny>()?; }\n}\n}\n");
    let _ = write!(out, "Ok({} {{", d.name);
    for (i, f) in fields.iter().enumerate() {
        if f.required && !f.nullable {
            let _ = write!(
                out,
                "{}: f{i}.ok_or_else(|| crate::de::missing({:?}))?,",
                f.rust, f.wire
            );
        } else {
            let _ = write!(out, "{}: f{i},", f.rust);
        }
    }
    out.push_str("})\n}\n}\ndeserializer.deserialize_map(V)\n}\n}\n\n");
}

/// `From<Member> for Union` for every member type that names a struct, enum or union of its
/// own and occurs once, so that a setter taking `impl Into<Union>` takes the member directly.
fn render_member_conversions(
    set: &TypeSet<'_>,
    d: &TypeDef,
    variants: &[Variant],
    out: &mut String,
) {
    let m = &d.module;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let convertible = |v: &Variant| matches!(&v.ty, Ty::Named(n, vm) if !matches!(set.get(n, vm).map(|t| &t.def), Some(Def::Alias { .. }) | None));
    for v in variants.iter().filter(|v| convertible(v)) {
        *counts.entry(v.ty.render(m)).or_default() += 1;
    }
    for v in variants.iter().filter(|v| convertible(v)) {
        let ty = v.ty.render(m);
        if counts[&ty] == 1 && ty != d.name {
            let _ = writeln!(
                out,
                "impl From<{ty}> for {} {{\nfn from(value: {ty}) -> Self {{ Self::{}(value) }}\n}}\n",
                d.name, v.name
            );
        }
    }
}

fn render_one_of(
    set: &TypeSet<'_>,
    d: &TypeDef,
    variants: &[Variant],
    property: Option<&str>,
    out: &mut String,
) {
    let m = &d.module;
    match property {
        None => {
            out.push_str(
                "#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]\n#[serde(untagged)]\n#[non_exhaustive]\n",
            );
            let _ = writeln!(out, "pub enum {} {{", d.name);
            for v in variants {
                let _ = writeln!(out, "/// The [`{}`] shape.", v.ty.render(m));
                let _ = writeln!(out, "{}({}),", v.name, v.ty.render(m));
            }
            out.push_str(
                "/// A value matching none of the known shapes, kept as sent.\nUnknown(serde_json::Value),\n}\n\n",
            );
        }
        Some(p) => {
            out.push_str("#[derive(Debug, Clone, PartialEq)]\n#[non_exhaustive]\n");
            let _ = writeln!(out, "pub enum {} {{", d.name);
            for v in variants {
                let _ = writeln!(
                    out,
                    "/// `{p}` is `{}`.",
                    v.tag.as_deref().unwrap_or_default()
                );
                let _ = writeln!(out, "{}({}),", v.name, v.ty.render(m));
            }
            let _ = writeln!(
                out,
                "/// A `{p}` this version of the crate does not know, kept as sent.\nUnknown(serde_json::Value),\n}}\n"
            );
            let _ = writeln!(
                out,
                "impl Serialize for {} {{
fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {{
match self {{",
                d.name
            );
            for v in variants {
                let _ = writeln!(out, "Self::{}(v) => v.serialize(serializer),", v.name);
            }
            out.push_str("Self::Unknown(v) => v.serialize(serializer),\n}\n}\n}\n\n");
            let _ = writeln!(
                out,
                "impl<'de> Deserialize<'de> for {} {{
fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{
let value = serde_json::Value::deserialize(deserializer)?;
let decoded = match value.get({p:?}).and_then(serde_json::Value::as_str) {{",
                d.name
            );
            for v in variants {
                let _ = writeln!(
                    out,
                    "Some({:?}) => serde_json::from_value(value).map(Self::{}),",
                    v.tag.as_deref().unwrap_or_default(),
                    v.name
                );
            }
            out.push_str(
                "_ => Ok(Self::Unknown(value)),\n};\ndecoded.map_err(serde::de::Error::custom)\n}\n}\n\n",
            );
        }
    }
    render_member_conversions(set, d, variants, out);
}
