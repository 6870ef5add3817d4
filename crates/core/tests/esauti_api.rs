//! Requests and responses of the generated eSauti REST API.

use std::collections::BTreeMap;

use flagwire_core::esauti::api::{self, contactfields, contacts, models, sms};
use flagwire_core::operation::Operation;
use http::{HeaderMap, StatusCode};
use serde_json::json;

const BASE: &str = "https://tenant.example.com/api";

fn render<O: Operation>(op: &O) -> String {
    let req = op.to_request(BASE).unwrap();
    let body = String::from_utf8(req.body().to_vec()).unwrap();
    format!("{} {}\n{body}", req.method(), req.uri())
}

fn object(v: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    serde_json::from_value(v).unwrap()
}

#[test]
fn resource_paths_and_methods() {
    let body = || object(json!({"email": "ann@example.com"}));
    let rendered = [
        render(&contacts::ListContacts::new().limit(5)),
        render(&contacts::GetContact::new(1)),
        render(&contacts::CreateContact::new(body())),
        render(&contacts::EditContact::new(2, body())),
        render(&contacts::ReplaceContact::new(2, body())),
        render(&contacts::DeleteContact::new(2)),
        render(&sms::GetSms::new(3)),
        render(&contactfields::ListContactFields::new()),
    ]
    .join("\n");
    insta::assert_snapshot!("resources", rendered);
}

#[test]
fn mautic_list_parameters() {
    let op = contacts::ListContacts::new()
        .search("email:ann@example.com")
        .start(30)
        .limit(10)
        .order_by("dateAdded")
        .order_by_dir(models::OrderDirection::Desc)
        .published_only(true)
        .minimal(false);
    insta::assert_snapshot!("list_parameters", render(&op));
}

#[test]
fn contact_extras() {
    let dnc = models::DoNotContact::new()
        .reason(3)
        .comments("asked by phone");
    let rendered = [
        render(&contacts::AddContactUtm::new(
            7,
            object(json!({"utm_source": "news"})),
        )),
        render(&contacts::RemoveContactUtm::new(7, 9)),
        render(&contacts::GetContactSegments::new(7)),
        render(&contacts::GetContactCampaigns::new(7)),
        render(&contacts::GetContactNotes::new(7)),
        render(&contacts::AddContactDnc::new(7, "email", dnc)),
    ]
    .join("\n");
    insta::assert_snapshot!("contact_extras", rendered);
}

#[test]
fn responses_are_decoded_whole() {
    let body = br#"{"total": "1", "contacts": {"5": {"id": 5}}}"#;
    let out =
        contacts::ListContacts::parse_response(StatusCode::OK, &HeaderMap::new(), body).unwrap();
    assert_eq!(out["total"], "1");
    assert_eq!(out["contacts"]["5"]["id"], 5);

    let created = contacts::CreateContact::parse_response(
        StatusCode::CREATED,
        &HeaderMap::new(),
        br#"{"contact": {"id": 9}}"#,
    )
    .unwrap();
    assert_eq!(created["contact"]["id"], 9);

    let err = contacts::GetContact::parse_response(
        StatusCode::NOT_FOUND,
        &HeaderMap::new(),
        br#"{"errors": [{"code": 404, "message": "Item was not found."}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.status(), 404);

    let err = contacts::GetContact::parse_response(StatusCode::OK, &HeaderMap::new(), b"[1]")
        .unwrap_err();
    assert!(matches!(err, flagwire_core::ApiError::Decode(_)), "{err:?}");
}

#[test]
fn operation_table() {
    assert_eq!(api::OPERATIONS.len(), 72);
    assert_eq!(api::API_KEY_HEADER, "X-eSauti-Api-Key");
    let remove = api::OPERATIONS
        .iter()
        .find(|o| o.id == "removeContactUtm")
        .unwrap();
    // Mautic routes the UTM removal as POST.
    assert_eq!(remove.method, "POST");
    assert_eq!(remove.path, "/contacts/{id}/utm/{utmId}/remove");
}
