//! The Map the Paths Web client against a stub that checks the requests of PROTOCOLS §5.
#![allow(clippy::unwrap_used)]

mod common;

/// A canned reply: status, content type, body.
type Canned = (StatusCode, &'static str, String);

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use common::{Log, serve};
use mtp_core::secret::Secret;
use mtp_providers::ErrorKind;
use mtp_providers::mtpw::{self, MapillaryImport, MtpwClient, MtpwImport, NewMtpwSequence};
use serde_json::json;

#[derive(Clone, Default)]
struct Stub {
    log: Log,
    replies: Arc<Mutex<Vec<Canned>>>,
}

async fn handler(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.log.record(&method, &uri, &headers, body);
    let mut replies = s.replies.lock().unwrap();
    if replies.is_empty() {
        return axum::Json(json!({"status": "success", "message": "Sequence successfully was created.", "unique_id": "5f0c1f52-aaaa-bbbb-cccc-000000000001"})).into_response();
    }
    let (status, content_type, body) = replies.remove(0);
    (status, [("content-type", content_type)], body).into_response()
}

async fn start() -> (Stub, MtpwClient) {
    let stub = Stub::default();
    let router = Router::new()
        .route("/mtpw/api/v1/sequence/create/", post(handler))
        .route("/mtpw/api/v1/sequence/import/{id}/", put(handler))
        .with_state(stub.clone());
    let base = serve(router).await;
    let client = MtpwClient::with_url(
        common::client(),
        common::url(&format!("{base}/mtpw")),
        Secret::from("mtpw-token"),
    );
    (stub, client)
}

#[tokio::test]
async fn create_is_form_encoded() {
    let (stub, client) = start().await;
    let id = client
        .create_sequence(&NewMtpwSequence {
            name: "Lake walk Part 1".into(),
            transport_type: "Walk".into(),
            description: Some("Morning walk".into()),
            tags: vec!["lake".into(), " summer ".into(), "".into()],
        })
        .await
        .unwrap();
    assert_eq!(id, "5f0c1f52-aaaa-bbbb-cccc-000000000001");
    let seen = stub.log.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/mtpw/api/v1/sequence/create/");
    assert_eq!(
        seen.header("authorization").as_deref(),
        Some("Bearer mtpw-token")
    );
    assert_eq!(
        seen.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let form = seen.form();
    assert_eq!(form["name"], "Lake walk Part 1");
    assert_eq!(form["transport_type"], "Walk");
    assert_eq!(form["description"], "Morning walk");
    assert_eq!(form["tag"], "lake,summer");
    assert_eq!(form["source"], "mtpdu");

    // The HTTP-200 error quirk.
    stub.replies.lock().unwrap().push((
        StatusCode::OK,
        "application/json",
        json!({"error": "Transport type is invalid", "status": false}).to_string(),
    ));
    let e = client
        .create_sequence(&NewMtpwSequence {
            name: "x".into(),
            transport_type: "Teleport".into(),
            description: None,
            tags: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert_eq!(e.message(), "Transport type is invalid");
    let form = stub.log.last().form();
    assert!(!form.contains_key("description") && !form.contains_key("tag"));
}

/// "Other" (the MTPW docs) or "Unlisted" (MTPDU): the server may hold either. A create
/// refused with one is sent once more with the other; any other refused name stays refused.
#[tokio::test]
async fn the_other_transport_type_is_tried_under_its_second_name() {
    let (stub, client) = start().await;
    let invalid = || {
        (
            StatusCode::OK,
            "application/json",
            json!({"error": "Transport type is invalid", "status": false}).to_string(),
        )
    };
    stub.replies.lock().unwrap().push(invalid());
    let seq = |transport: &str| NewMtpwSequence {
        name: "Ferry crossing".into(),
        transport_type: transport.into(),
        description: None,
        tags: vec![],
    };
    let id = client.create_sequence(&seq("Other")).await.unwrap();
    assert_eq!(id, "5f0c1f52-aaaa-bbbb-cccc-000000000001");
    let sent: Vec<String> = stub
        .log
        .all()
        .iter()
        .map(|r| r.form()["transport_type"].clone())
        .collect();
    assert_eq!(sent, ["Other", "Unlisted"]);

    // Both refused: the service's words, after two tries.
    stub.replies.lock().unwrap().extend([invalid(), invalid()]);
    let e = client.create_sequence(&seq("unlisted")).await.unwrap_err();
    assert_eq!(e.message(), "Transport type is invalid");
    assert_eq!(stub.log.all().len(), 4);
    assert_eq!(stub.log.last().form()["transport_type"], "Other");
}

#[tokio::test]
async fn import_is_json_put_with_a_trailing_slash() {
    let (stub, client) = start().await;
    stub.replies.lock().unwrap().push((
        StatusCode::OK,
        "application/json",
        json!({"status": "success", "message": "Sequence successfully was imported. Sequence will be published in about 10 minutes.", "unique_id": "u1"}).to_string(),
    ));
    let message = client
        .import(
            "u1",
            &MtpwImport {
                mapillary_user_token: Some(Secret::from("mly-user-token")),
                mapillary_sequence_key: Some("seqA".into()),
                ..MtpwImport::default()
            },
        )
        .await
        .unwrap();
    assert!(message.contains("10 minutes"), "{message}");
    let seen = stub.log.last();
    assert_eq!(seen.method, "PUT");
    assert_eq!(seen.path, "/mtpw/api/v1/sequence/import/u1/");
    assert!(
        seen.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        seen.json(),
        json!({"mapillary_user_token": "mly-user-token", "mapillary_sequence_key": "seqA"})
    );

    // Unknown id: Django raises, HTML 500; the empty probe raises too → unknown.
    for _ in 0..2 {
        stub.replies.lock().unwrap().push((
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/html",
            "<!DOCTYPE html><html><body><h1>Server Error (500)</h1></body></html>".into(),
        ));
    }
    let e = client
        .import("nope", &MtpwImport::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert_eq!(e.code(), Some(mtpw::CODE_UNKNOWN_SEQUENCE));
    assert!(e.to_string().starts_with("Map the Paths Web: "), "{e}");
    assert!(
        e.message().contains("does not know the sequence nope"),
        "{e}"
    );
    assert_eq!(
        stub.log.last().json(),
        json!({}),
        "the probe sends no field"
    );

    stub.replies.lock().unwrap().push((
        StatusCode::OK,
        "application/json",
        json!({"error": "You are not owner of this sequence", "status": false}).to_string(),
    ));
    let e = client
        .import("u1", &MtpwImport::default())
        .await
        .unwrap_err();
    assert_eq!(e.message(), "You are not owner of this sequence");
}

/// Today's server: the Mapillary check fails (500 text/plain) or refuses (200 quirk); the
/// sequence exists (the empty probe answers), so it is "could not check", not "gone".
#[tokio::test]
async fn a_failed_mapillary_check_is_not_an_unknown_sequence() {
    let (stub, client) = start().await;
    let token = Secret::from("mly-user-token");
    // mtp-web's answer to the empty probe for a known sequence (its `SequenceImport.put`).
    let known = (
        StatusCode::OK,
        "application/json",
        json!({"error": "Mapillary token is missing", "status": false}).to_string(),
    );
    stub.replies.lock().unwrap().extend([
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "A server error occurred.  Please contact the administrator.".to_string(),
        ),
        known,
    ]);
    let out = client.import_mapillary("u1", &token, "seqA").await.unwrap();
    assert!(
        matches!(&out, MapillaryImport::MapillaryCheckFailed { detail } if detail.contains("HTTP 500")),
        "{out:?}"
    );
    let seen = stub.log.all();
    let n = seen.len();
    assert_eq!(
        seen[n - 2].json(),
        json!({"mapillary_user_token": "mly-user-token", "mapillary_sequence_key": "seqA"})
    );
    assert_eq!(seen[n - 1].json(), json!({}));
    assert_eq!(seen[n - 1].path, "/mtpw/api/v1/sequence/import/u1/");

    stub.replies.lock().unwrap().push((
        StatusCode::OK,
        "application/json",
        json!({"error": "Mapillary token is invalid", "status": false}).to_string(),
    ));
    let out = client.import_mapillary("u1", &token, "seqA").await.unwrap();
    assert!(
        matches!(&out, MapillaryImport::MapillaryCheckFailed { detail } if detail.contains("Mapillary token is invalid")),
        "{out:?}"
    );

    stub.replies.lock().unwrap().push((
        StatusCode::OK,
        "application/json",
        json!({"status": "success", "message": "Sequence successfully was imported. Sequence will be published in about 10 minutes.", "unique_id": "u1"}).to_string(),
    ));
    let out = client.import_mapillary("u1", &token, "seqA").await.unwrap();
    assert!(matches!(out, MapillaryImport::Imported { .. }), "{out:?}");

    // A 403 is the account's problem: sign in to Map the Paths again.
    stub.replies.lock().unwrap().push((
        StatusCode::FORBIDDEN,
        "application/json",
        json!({"detail": "Authentication credentials were not provided."}).to_string(),
    ));
    let e = client
        .import_mapillary("u1", &token, "seqA")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);

    // A create reply without `unique_id` names the call and the field.
    stub.replies.lock().unwrap().push((
        StatusCode::OK,
        "application/json",
        json!({"status": "success", "message": "Sequence successfully was created."}).to_string(),
    ));
    let e = client
        .create_sequence(&NewMtpwSequence {
            name: "x".into(),
            transport_type: "Walk".into(),
            description: None,
            tags: vec![],
        })
        .await
        .unwrap_err();
    assert!(
        e.to_string().starts_with(
            "Map the Paths Web: the reply to POST /api/v1/sequence/create/ does not fit: missing field `unique_id`"
        ),
        "{e}"
    );
}
