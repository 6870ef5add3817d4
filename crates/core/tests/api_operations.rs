//! Request encoding and response decoding of generated Schematic operations, pinned by
//! snapshots, plus forward-compatibility guarantees of the generated models.

use bytes::Bytes;
use flagwire_core::json::ObjectError;
use flagwire_core::operation::Operation;
use flagwire_core::pagination::Paginated;
use flagwire_core::schematic::models::{
    self, AccountMemberRole, CreateEventRequestBody, EventBody, EventBodyTrack, EventType,
    UpdatePlanRequestBody, UpsertCompanyRequestBody,
};
use flagwire_core::schematic::{
    OPERATIONS, accounts, catalogs, companies, dataexports, events, features, plans,
};
use flagwire_core::{ApiError, EncodeError, Nullable, OperationInfo};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use proptest::prelude::*;
use serde_json::json;
use time::macros::datetime;

const BASE: &str = "https://api.schematichq.com";

/// Renders a request as text: request line, headers, body.
fn render<O: Operation>(op: &O) -> String {
    let req = op.to_request(BASE).expect("request encodes");
    let mut out = format!("{} {}\n", req.method(), req.uri());
    for (name, value) in req.headers() {
        out.push_str(&format!("{name}: {}\n", value.to_str().unwrap()));
    }
    if !req.body().is_empty() {
        out.push('\n');
        out.push_str(std::str::from_utf8(req.body()).unwrap());
        out.push('\n');
    }
    out
}

#[test]
fn path_parameters_are_escaped() {
    let op = companies::DeleteCompany::new("comp_1/../a b?x#y%").cancel_subscription(true);
    insta::assert_snapshot!(render(&op));
    let op = catalogs::AddPlan::new("cat 1", "plan/2");
    assert_eq!(op.path().unwrap(), "/catalogs/cat%201/plans/plan%2F2");
}

#[test]
fn blank_path_parameters_fail_before_the_request_is_built() {
    let err = companies::DeleteCompany::new("")
        .to_request(BASE)
        .unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::EmptyPathParameter {
                operation: "deleteCompany",
                parameter: "company_id"
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "path parameter `company_id` of `deleteCompany` is empty; it must name a resource"
    );
    // The second of two parameters is checked too.
    let err = catalogs::AddPlan::new("cat_1", " \t").path().unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::EmptyPathParameter {
                parameter: "plan_id",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn deep_object_keys() {
    let op = companies::LookupCompany::new([("domain", "acme.test"), ("crm id", "a&b=c")]);
    insta::assert_snapshot!(render(&op));
}

#[test]
fn arrays_are_repeated_keys_and_absent_options_are_dropped() {
    let op = companies::ListCompanies::new()
        .ids(["comp_1", "comp_2"])
        .q("acme inc")
        .sort_order_direction(models::SortDirection::Desc)
        .limit(25)
        .offset(50);
    insta::assert_snapshot!(render(&op));
    assert_eq!(companies::ListCompanies::new().query(), None);
}

#[test]
fn date_time_query_parameters_are_rfc3339() {
    let op = accounts::ListAuditLogs::new()
        .start_time(datetime!(2024-05-01 00:00:00 UTC))
        .end_time(datetime!(2024-05-31 23:59:59.5 +02:00))
        .actor_type(models::ActorType::from("some_future_actor"));
    insta::assert_snapshot!(render(&op));
}

#[test]
fn bodies_omit_unset_optional_fields() {
    let body = UpsertCompanyRequestBody::new([("domain", "acme.test")])
        .name("Acme")
        .last_seen_at(datetime!(2024-01-02 03:04:05 UTC));
    let op = companies::UpsertCompany::new(body);
    insta::assert_snapshot!(render(&op));
}

#[test]
fn an_update_that_clears_a_field_sends_null_and_omits_unset_ones() {
    // `PUT /plans/{plan_id}`: `description` and `icon` are optional and nullable.
    let clear = UpdatePlanRequestBody::new("Pro").clear_description();
    assert_eq!(clear.description, Nullable::Null);
    assert_eq!(clear.icon, Nullable::Absent);
    let req = plans::UpdatePlan::new("plan_1", clear)
        .to_request(BASE)
        .unwrap();
    assert_eq!(req.method(), http::Method::PUT);
    assert_eq!(req.uri(), "https://api.schematichq.com/plans/plan_1");
    assert_eq!(
        std::str::from_utf8(req.body()).unwrap(),
        r#"{"description":null,"name":"Pro"}"#
    );

    // Setting a value, and leaving everything optional out.
    let set = UpdatePlanRequestBody::new("Pro").description("For teams");
    assert_eq!(
        serde_json::to_value(&set).unwrap(),
        json!({"name": "Pro", "description": "For teams"})
    );
    assert_eq!(
        serde_json::to_value(UpdatePlanRequestBody::new("Pro")).unwrap(),
        json!({"name": "Pro"})
    );

    // Decoding keeps the three states apart.
    let decoded: UpdatePlanRequestBody =
        serde_json::from_value(json!({"name": "Pro", "description": null})).unwrap();
    assert_eq!(
        decoded,
        UpdatePlanRequestBody::new("Pro").clear_description()
    );
    let decoded: UpdatePlanRequestBody = serde_json::from_value(json!({"name": "Pro"})).unwrap();
    assert!(decoded.description.is_absent());

    // Date-times too.
    let body = UpsertCompanyRequestBody::new([("id", "acme")]).clear_last_seen_at();
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({"keys": {"id": "acme"}, "last_seen_at": null})
    );
}

#[test]
fn builders_take_pairs_json_values_and_members_of_unions() {
    // The Schematic README's `upsert_company`, field for field.
    let body = UpsertCompanyRequestBody::new([("id", "your-company-id")])
        .name("Acme Widgets, Inc.")
        .try_traits(json!({"city": "Atlanta", "high_score": 25, "is_active": true}))
        .unwrap();
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({
            "keys": {"id": "your-company-id"},
            "name": "Acme Widgets, Inc.",
            "traits": {"city": "Atlanta", "high_score": 25, "is_active": true}
        })
    );
    // One trait at a time, of any JSON type; the same map type as the event builders use.
    let one_by_one = UpsertCompanyRequestBody::new([("id", "your-company-id")])
        .name("Acme Widgets, Inc.")
        .trait_value("city", "Atlanta")
        .trait_value("high_score", 25)
        .trait_value("is_active", true);
    assert_eq!(one_by_one, body);
    let traits: &flagwire_core::events::Traits = body.traits.as_ref().unwrap();
    assert_eq!(traits["city"], "Atlanta");
    // Homogeneous pairs and whole maps work too.
    let from_pairs = UpsertCompanyRequestBody::new([("id", "x")]).traits([("plan", "pro")]);
    assert_eq!(from_pairs.traits.unwrap()["plan"], "pro");

    // A value that is not an object is a typed error, not a panic or a silent drop.
    let err = UpsertCompanyRequestBody::new([("id", "x")])
        .try_traits(json!(["city", "Atlanta"]))
        .unwrap_err();
    assert!(
        matches!(err, ObjectError::NotAnObject { found: "an array" }),
        "{err:?}"
    );

    // A union-typed field takes one of its members directly.
    let event = CreateEventRequestBody::new(EventType::Track).body(EventBodyTrack::new("api_call"));
    assert!(matches!(event.body, Some(EventBody::Track(_))), "{event:?}");
    // Open enums convert from their wire value.
    let list = companies::ListCompanies::new().sort_order_direction("desc");
    assert_eq!(list.sort_order_direction, Some(models::SortDirection::Desc));
}

#[test]
fn the_python_readme_request_bodies_port_one_to_one() {
    // `client.companies.upsert_user(keys=..., name=..., traits=..., company=...)`
    let user = models::UpsertUserRequestBody::new([
        ("email", "wcoyote@acme.net"),
        ("user_id", "your-user-id"),
    ])
    .name("Wile E. Coyote")
    .try_traits(json!({"city": "Atlanta", "high_score": 25, "is_active": true}))
    .unwrap()
    .company([("id", "your-company-id")]);
    assert_eq!(
        serde_json::to_value(&user).unwrap(),
        json!({
            "keys": {"email": "wcoyote@acme.net", "user_id": "your-user-id"},
            "name": "Wile E. Coyote",
            "traits": {"city": "Atlanta", "high_score": 25, "is_active": true},
            "company": {"id": "your-company-id"}
        })
    );
    // `client.check_flag("some-flag-key", company=..., user=...)`
    let check = features::CheckFlag::new(
        "some-flag-key",
        models::CheckFlagRequestBody::new()
            .company([("id", "your-company-id")])
            .user([("user_id", "your-user-id")]),
    );
    let req = check.to_request(BASE).unwrap();
    assert_eq!(req.uri().path(), "/flags/some-flag-key/check");
    assert_eq!(
        std::str::from_utf8(req.body()).unwrap(),
        r#"{"company":{"id":"your-company-id"},"user":{"user_id":"your-user-id"}}"#
    );
}

#[test]
fn event_bodies_encode_with_their_type() {
    let track = EventBodyTrack::new("api_call")
        .company([("id", "comp_1")])
        .quantity(3);
    let event = CreateEventRequestBody::new(EventType::Track).body(track);
    insta::assert_snapshot!(render(&events::CreateEvent::new(event)));
}

#[test]
fn downloads_accept_the_spec_media_types_and_return_bytes_with_their_type() {
    let req = dataexports::GetDataExportArtifact::new("dexp_1")
        .to_request(BASE)
        .unwrap();
    assert_eq!(
        req.headers()[header::ACCEPT],
        "application/octet-stream, text/csv"
    );
    // Every other operation answers JSON.
    let req = companies::GetCompany::new("comp_1")
        .to_request(BASE)
        .unwrap();
    assert_eq!(req.headers()[header::ACCEPT], "application/json");

    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
    let csv =
        dataexports::GetDataExportArtifact::parse_response(StatusCode::OK, &headers, b"a,b\n1,2\n")
            .unwrap();
    assert_eq!(csv.content_type(), Some("text/csv"));
    assert_eq!(&csv[..], b"a,b\n1,2\n");
    let bytes: Bytes = csv.into_bytes();
    assert_eq!(bytes.len(), 8);
}

/// Doubles the default serde_json parser reads one ULP off; `float_roundtrip` reads them
/// exactly.
const HARD_DOUBLES: [&str; 5] = [
    "1.5777777777770001",
    "117.63331139400017",
    "98.88339545701953",
    "0.30000000000000004",
    "1.9439137849962513e211",
];

fn requested_amount(number: &str) -> f64 {
    let body =
        format!(r#"{{"company_id": "c", "credit_type_id": "t", "requested_amount": {number}}}"#);
    serde_json::from_str::<models::AcquireCreditLeaseRequestBody>(&body)
        .unwrap()
        .requested_amount
}

#[test]
fn doubles_decode_to_exactly_the_encoded_value() {
    for text in HARD_DOUBLES {
        let expected: f64 = text.parse().unwrap();
        assert_eq!(
            requested_amount(text).to_bits(),
            expected.to_bits(),
            "{text}"
        );
    }
    // Through a response envelope as well.
    let body = br#"{"data": {"count": 1}, "params": {}}"#;
    assert!(
        companies::CountCompanies::parse_response(StatusCode::OK, &HeaderMap::new(), body).is_ok()
    );
}

proptest! {
    #[test]
    fn any_finite_double_round_trips_through_a_model(x in any::<f64>().prop_filter("finite", |x| x.is_finite())) {
        let body = models::AcquireCreditLeaseRequestBody::new("c", "t", x);
        let encoded = serde_json::to_string(&body).unwrap();
        let decoded: models::AcquireCreditLeaseRequestBody = serde_json::from_str(&encoded).unwrap();
        prop_assert_eq!(decoded.requested_amount.to_bits(), x.to_bits(), "{}", encoded);
        // Rust's shortest representation reads back exactly too.
        prop_assert_eq!(requested_amount(&format!("{x:e}")).to_bits(), x.to_bits());
    }
}

fn ok(body: &str) -> (StatusCode, HeaderMap, Bytes) {
    (
        StatusCode::OK,
        HeaderMap::new(),
        Bytes::from(body.to_owned()),
    )
}

#[test]
fn decodes_the_data_envelope_of_list_responses() {
    let (status, headers, body) = ok(r#"{
        "data": [{
            "created_at": "2024-01-02T03:04:05Z",
            "updated_at": "2024-01-03T03:04:05.123+01:00",
            "id": "acmm_1",
            "email": null,
            "permissions": {"plans": ["plans_edit", "brand_new_permission"]},
            "role": "admin",
            "added_later": {"nested": true}
        }],
        "params": {"limit": 1}
    }"#);
    let members = accounts::ListAccountMembers::parse_response(status, &headers, &body).unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].role, Some(AccountMemberRole::Admin));
    insta::assert_debug_snapshot!(members);
}

#[test]
fn decodes_single_objects_and_empty_bodies() {
    let (status, headers, body) = ok(r#"{"data": {"count": 42}, "params": {}}"#);
    let count = companies::CountCompanies::parse_response(status, &headers, &body).unwrap();
    assert_eq!(count.count, Some(42));
    let deleted = companies::DeleteCompany::parse_response(
        StatusCode::OK,
        &headers,
        br#"{"data": {"deleted": true}, "params": {}}"#,
    )
    .unwrap();
    assert_eq!(deleted.deleted, Some(true));
    catalogs::AddPlan::parse_response(StatusCode::NO_CONTENT, &headers, b"").unwrap();
    let csv =
        dataexports::GetDataExportArtifact::parse_response(StatusCode::OK, &headers, b"a,b\n1,2\n")
            .unwrap();
    assert_eq!(&csv[..], b"a,b\n1,2\n");
    assert_eq!(csv.content_type(), None);
}

#[test]
fn error_bodies_become_status_errors() {
    let mut headers = HeaderMap::new();
    headers.insert("x-request-id", HeaderValue::from_static("req_123"));
    headers.insert("retry-after", HeaderValue::from_static("3"));
    let err = companies::GetCompany::parse_response(
        StatusCode::NOT_FOUND,
        &headers,
        br#"{"error": "company not found"}"#,
    )
    .unwrap_err();
    insta::assert_snapshot!(format!("{err}\n{err:?}"));
    let ApiError::Status(status) = &err else {
        panic!("expected a status error: {err:?}")
    };
    assert_eq!(status.status(), StatusCode::NOT_FOUND);
    assert_eq!(status.message(), Some("company not found"));
    assert_eq!(status.request_id(), Some("req_123"));
    assert_eq!(status.headers()["retry-after"], "3");

    // Bodies that are not the API's error shape are kept raw.
    let err = companies::GetCompany::parse_response(
        StatusCode::BAD_GATEWAY,
        &HeaderMap::new(),
        b"<html>bad gateway</html>",
    )
    .unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(err.message(), None);
    assert_eq!(&err.body()[..], b"<html>bad gateway</html>");
}

#[test]
fn undecodable_success_bodies_are_typed_errors_with_a_path() {
    let (status, headers, body) = ok(r#"{"data": [{"id": "acmm_1", "created_at": "yesterday",
        "updated_at": "2024-01-02T03:04:05Z", "permissions": {}}]}"#);
    let err = accounts::ListAccountMembers::parse_response(status, &headers, &body).unwrap_err();
    let ApiError::Decode(decode) = &err else {
        panic!("expected a decode error: {err:?}")
    };
    assert_eq!(decode.status(), StatusCode::OK);
    assert_eq!(decode.path(), "data[0].created_at");
    insta::assert_snapshot!(err.to_string());

    let err = companies::CountCompanies::parse_response(status, &headers, b"not json").unwrap_err();
    assert!(matches!(err, ApiError::Decode(_)), "{err:?}");
    let err = companies::CountCompanies::parse_response(status, &headers, br#"{"params": {}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("missing field `data`"), "{err}");
}

#[test]
fn unknown_enum_values_and_fields_deserialize() {
    let role: AccountMemberRole = serde_json::from_str(r#""owner""#).unwrap();
    assert_eq!(role, AccountMemberRole::Unknown("owner".into()));
    assert_eq!(serde_json::to_string(&role).unwrap(), r#""owner""#);
    assert_eq!(role.as_str(), "owner");

    let count: models::CountResponse =
        serde_json::from_str(r#"{"count": 1, "approximate": true, "next": {"a": [1]}}"#).unwrap();
    assert_eq!(count.count, Some(1));
}

#[test]
fn missing_optional_fields_are_none_and_missing_required_fields_are_named() {
    let count: models::CountResponse = serde_json::from_str("{}").unwrap();
    assert_eq!(count.count, None);
    let err = serde_json::from_str::<models::AccountMemberResponseData>(
        r#"{"created_at": "2024-01-02T03:04:05Z", "updated_at": "2024-01-02T03:04:05Z", "permissions": {}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing field `id`"), "{err}");
    // A required but nullable field accepts null; a non-nullable one does not.
    let err = serde_json::from_str::<models::AccountMemberResponseData>(
        r#"{"id": null, "created_at": "2024-01-02T03:04:05Z", "updated_at": "2024-01-02T03:04:05Z", "permissions": {}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("invalid type: null"), "{err}");
    let err = serde_json::from_str::<models::CountResponse>("[1]").unwrap_err();
    assert!(err.to_string().contains("a CountResponse object"), "{err}");
}

#[test]
fn unions_pick_the_variant_named_by_their_discriminator() {
    let meta: models::DataExportMetadata =
        serde_json::from_str(r#"{"export_type": "audit-log", "q": "x"}"#).unwrap();
    assert!(
        matches!(meta, models::DataExportMetadata::AuditLog(_)),
        "{meta:?}"
    );
    let future: models::DataExportMetadata =
        serde_json::from_str(r#"{"export_type": "something-new", "x": 1}"#).unwrap();
    assert!(matches!(future, models::DataExportMetadata::Unknown(_)));
    assert_eq!(
        serde_json::to_value(&future).unwrap(),
        serde_json::json!({"export_type": "something-new", "x": 1}),
        "unknown variants are sent back unchanged"
    );

    // The event body is chosen by the sibling `event_type`, even where shapes overlap: an
    // identify body with an `event` key must not be read as a track body.
    let event: CreateEventRequestBody = serde_json::from_str(
        r#"{"event_type": "identify", "body": {"keys": {"id": "u1"}, "event": "x"}}"#,
    )
    .unwrap();
    assert!(
        matches!(event.body, Some(EventBody::Identify(_))),
        "{event:?}"
    );
    let event: CreateEventRequestBody =
        serde_json::from_str(r#"{"event_type": "track", "body": {"event": "api_call"}}"#).unwrap();
    assert!(matches!(event.body, Some(EventBody::Track(_))), "{event:?}");
    let err = serde_json::from_str::<CreateEventRequestBody>(
        r#"{"event_type": "track", "body": {"keys": {}}}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing field `event`"), "{err}");
}

#[test]
fn list_operations_page_by_offset() {
    let first = features::ListFeatures::new().limit(2);
    let second = first.next_page(2).expect("a full page has a successor");
    assert_eq!(second.page_offset(), 2);
    assert_eq!(second.query().unwrap(), "limit=2&offset=2");
    assert!(second.next_page(1).is_none(), "a short page is the last");
    assert!(
        features::ListFeatures::new().next_page(99).is_none(),
        "the default limit is 100"
    );
}

#[test]
fn the_operation_table_lists_every_operation_once() {
    assert_eq!(OPERATIONS.len(), 268);
    let mut ids: Vec<&str> = OPERATIONS.iter().map(|o| o.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 268);
    let list = OPERATIONS
        .iter()
        .find(|o| o.id == companies::ListCompanies::OPERATION_ID)
        .unwrap();
    assert_eq!(
        *list,
        OperationInfo {
            id: "listCompanies",
            method: "GET",
            path: "/companies",
            tag: "companies"
        }
    );
}
