//! The generated eSauti event registry against the committed data file.

use std::collections::{BTreeMap, BTreeSet};

use flagwire_core::esauti::{EntityType, EventGroup, EventType};

const DATA: &str = include_str!("../data/esauti-events.tsv");

struct Row<'a> {
    name: &'a str,
    group: &'a str,
    entity_type: &'a str,
    required: Vec<&'a str>,
}

fn rows() -> Vec<Row<'static>> {
    let mut lines = DATA.lines();
    assert_eq!(
        lines.next(),
        Some("type\tgroup\tentity_type\trequired_properties")
    );
    lines
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 4, "{line}");
            Row {
                name: f[0],
                group: f[1],
                entity_type: f[2],
                required: f[3].split(',').filter(|p| !p.is_empty()).collect(),
            }
        })
        .collect()
}

#[test]
fn generated_table_matches_the_data_file() {
    let rows = rows();
    assert_eq!(rows.len(), 225);
    assert_eq!(EventType::registered().len(), 225);
    for (ty, row) in EventType::registered().iter().zip(&rows) {
        assert_eq!(ty.as_str(), row.name);
        assert!(ty.is_registered());
        assert_eq!(ty.group().map(EventGroup::as_str), Some(row.group));
        assert_eq!(
            ty.entity_type().map(EntityType::as_str),
            Some(row.entity_type)
        );
        assert_eq!(
            ty.required_properties(),
            row.required.as_slice(),
            "{}",
            row.name
        );
        // Parsing, FromStr and serde agree with the name.
        assert_eq!(&EventType::parse(row.name), ty);
        assert_eq!(row.name.parse::<EventType>().unwrap(), *ty);
        assert_eq!(EventType::lookup(row.name), Some(ty));
        let json = serde_json::to_string(ty).unwrap();
        assert_eq!(json, format!("\"{}\"", row.name));
        assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), *ty);
        assert_eq!(ty.to_string(), row.name);
    }
}

#[test]
fn registry_facts() {
    let groups: BTreeMap<&str, usize> =
        EventType::registered()
            .iter()
            .fold(BTreeMap::new(), |mut m, t| {
                *m.entry(t.group().unwrap().as_str()).or_default() += 1;
                m
            });
    assert_eq!(groups.len(), 19);
    assert_eq!(EventGroup::ALL.len(), 19);
    assert_eq!(groups["messaging_and_notification"], 31);
    assert_eq!(groups["custom_object_fallback"], 4);
    let entities: BTreeSet<EntityType> = EventType::registered()
        .iter()
        .filter_map(EventType::entity_type)
        .collect();
    assert_eq!(entities.len(), 28);
    assert_eq!(EntityType::ALL.len(), 28);
    let sets: BTreeSet<&[&str]> = EventType::registered()
        .iter()
        .map(EventType::required_properties)
        .collect();
    assert_eq!(sets.len(), 8);

    assert_eq!(
        EventType::CustomerCreated.required_properties(),
        ["occurred_at", "source", "customer.id"]
    );
    assert_eq!(
        EventType::EmailSent.entity_type(),
        Some(EntityType::Message)
    );
    assert_eq!(EventType::AppDialogShown.as_str(), "app.dialog_shown");
    assert_eq!(
        EventType::AppDialogShown.group(),
        Some(EventGroup::MobileAndAppEngagement)
    );
    assert_eq!(
        EventType::ObjectCreated.required_properties(),
        ["occurred_at", "source", "entity.type", "entity.id"]
    );
}

#[test]
fn unknown_names_are_custom() {
    for name in [
        "invoice.exported",
        "custom",
        "Order.Created",
        "order.created ",
        "",
    ] {
        let ty = EventType::parse(name);
        assert_eq!(ty, EventType::Custom(name.to_owned()));
        assert!(!ty.is_registered());
        assert_eq!(ty.as_str(), name);
        assert_eq!(ty.group(), None);
        assert_eq!(ty.entity_type(), None);
        assert!(ty.required_properties().is_empty());
        assert_eq!(EventType::lookup(name), None);
    }
    let ty: EventType = serde_json::from_str("\"invoice.exported\"").unwrap();
    assert_eq!(ty, EventType::Custom("invoice.exported".into()));
    assert_eq!(serde_json::to_string(&ty).unwrap(), "\"invoice.exported\"");
    assert_eq!(
        EventType::from(String::from("order.created")),
        EventType::OrderCreated
    );
    assert!(serde_json::from_str::<EventType>("42").is_err());
}
