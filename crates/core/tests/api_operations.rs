//! Request encoding and response decoding of generated Schematic operations, pinned by
//! snapshots, plus forward-compatibility guarantees of the generated models.

use std::collections::BTreeMap;

use bytes::Bytes;
use flagwire_core::operation::Operation;
use flagwire_core::pagination::Paginated;
use flagwire_core::schematic::models::{
    self, AccountMemberRole, CreateEventRequestBody, EventBody, EventBodyTrack, EventType,
    UpsertCompanyRequestBody,
};
use flagwire_core::schematic::{
    OPERATIONS, accounts, catalogs, companies, dataexports, events, features,
};
use flagwire_core::{ApiError, OperationInfo};
use http::{HeaderMap, HeaderValue, StatusCode};
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

fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn path_parameters_are_escaped() {
    let op = companies::DeleteCompany::new("comp_1/../a b?x#y%").cancel_subscription(true);
    insta::assert_snapshot!(render(&op));
    let op = catalogs::AddPlan::new("cat 1", "plan/2");
    assert_eq!(op.path(), "/catalogs/cat%201/plans/plan%2F2");
}

#[test]
fn deep_object_keys() {
    let op = companies::LookupCompany::new(keys(&[("domain", "acme.test"), ("crm id", "a&b=c")]));
    insta::assert_snapshot!(render(&op));
}

#[test]
fn arrays_are_repeated_keys_and_absent_options_are_dropped() {
    let op = companies::ListCompanies::new()
        .ids(["comp_1".to_owned(), "comp_2".to_owned()])
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
    let mut body = UpsertCompanyRequestBody::new(keys(&[("domain", "acme.test")]));
    body.name = Some("Acme".into());
    body.last_seen_at = Some(datetime!(2024-01-02 03:04:05 UTC));
    let op = companies::UpsertCompany::new(body);
    insta::assert_snapshot!(render(&op));
}

#[test]
fn event_bodies_encode_with_their_type() {
    let mut track = EventBodyTrack::new("api_call".into());
    track.company = Some(keys(&[("id", "comp_1")]));
    track.quantity = Some(3);
    let mut event = CreateEventRequestBody::new(EventType::Track);
    event.body = Some(EventBody::Track(track));
    insta::assert_snapshot!(render(&events::CreateEvent::new(event)));
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
