//! The Panoramax client against a stub that checks the exact requests of PROTOCOLS §4.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use common::{Log, serve};
use mtp_core::secret::Secret;
use mtp_providers::ErrorKind;
use mtp_providers::panoramax::{
    AddFileOutcome, NewFile, NewUploadSet, PanoramaxClient, Semantic, SortMethod, Visibility,
};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Stub {
    log: Log,
    file_replies: Arc<Mutex<Vec<(StatusCode, Value)>>>,
}

const SET_ID: &str = "0193a3b4-1111-7000-8000-000000000001";

fn upload_set_json(completed: bool) -> Value {
    json!({
        "id": SET_ID, "title": "Walk", "completed": completed, "dispatched": completed,
        "ready": completed, "nb_items": 2, "sort_method": "time-asc",
        "associated_collections": if completed { json!([{"id": "coll-1", "nb_items": 2}]) } else { json!([]) },
        "items_status": {"prepared": 2, "preparing": 0, "broken": 0, "rejected": 1, "not_processed": 0},
        "links": [{"rel": "self", "href": format!("/api/upload_sets/{SET_ID}")}]
    })
}

async fn me(State(s): State<Stub>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    s.log.record(&method, &uri, &headers, Bytes::new());
    if headers.get("authorization").is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "Authentication is mandatory", "status_code": 401})),
        )
            .into_response();
    }
    axum::Json(json!({"id": "acc-1", "name": "carol", "links": []})).into_response()
}

async fn configuration(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    s.log.record(&method, &uri, &headers, Bytes::new());
    axum::Json(
        json!({"name": {"label": "Test"}, "auth": {"enabled": false},
        "license": {"id": "CC-BY-SA-4.0", "url": "https://spdx.org/licenses/CC-BY-SA-4.0.html"}}),
    )
    .into_response()
}

async fn create_set(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.log.record(&method, &uri, &headers, body);
    (
        StatusCode::OK,
        [("location", format!("/api/upload_sets/{SET_ID}"))],
        axum::Json(upload_set_json(false)),
    )
        .into_response()
}

async fn add_file(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    s.log
        .record_multipart(&method, &uri, &headers, multipart)
        .await;
    let mut replies = s.file_replies.lock().unwrap();
    if replies.is_empty() {
        return (StatusCode::ACCEPTED, axum::Json(json!({
            "picture_id": "pic-1", "file_name": "IMG_1.jpg", "content_md5": "d41d8cd98f00b204e9800998ecf8427e",
            "inserted_at": "2024-05-01T12:00:00Z", "file_type": "picture", "size": 1234, "links": []
        }))).into_response();
    }
    let (status, body) = replies.remove(0);
    (status, axum::Json(body)).into_response()
}

async fn list_files(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    s.log.record(&method, &uri, &headers, Bytes::new());
    axum::Json(json!({"files": [
        {"picture_id": "pic-1", "file_name": "IMG_1.jpg", "content_md5": "aa", "size": 1234},
        {"file_name": "IMG_2.jpg", "content_md5": "bb", "size": 99,
         "rejected": {"reason": "capture_duplicate", "severity": "info", "message": "too close to another picture"}}
    ]})).into_response()
}

async fn plain(State(s): State<Stub>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    s.log.record(&method, &uri, &headers, Bytes::new());
    match method {
        Method::DELETE => StatusCode::NO_CONTENT.into_response(),
        Method::POST => axum::Json(upload_set_json(true)).into_response(),
        _ => axum::Json(upload_set_json(true)).into_response(),
    }
}

async fn start(token: Option<&str>) -> (Stub, PanoramaxClient) {
    let stub = Stub::default();
    let router = Router::new()
        .route("/panoramax/api/users/me", get(me))
        .route("/panoramax/api/configuration", get(configuration))
        .route("/panoramax/api/upload_sets", post(create_set))
        .route(
            "/panoramax/api/upload_sets/{id}/files",
            post(add_file).get(list_files),
        )
        .route("/panoramax/api/upload_sets/{id}/complete", post(plain))
        .route("/panoramax/api/upload_sets/{id}", get(plain).delete(plain))
        .with_state(stub.clone());
    let base = serve(router).await;
    let client = PanoramaxClient::with_url(
        common::client(),
        common::url(&format!("{base}/panoramax")),
        token.map(Secret::from),
    );
    (stub, client)
}

#[tokio::test]
async fn identity_and_configuration() {
    let (stub, client) = start(Some("jwt.token.sig")).await;
    let me = client.me().await.unwrap();
    assert_eq!(me.id, "acc-1");
    assert_eq!(me.name.as_deref(), Some("carol"));
    assert_eq!(
        stub.log.last().header("authorization").as_deref(),
        Some("Bearer jwt.token.sig")
    );

    let config = client.configuration().await.unwrap();
    assert!(!config.auth_enabled);
    assert_eq!(config.license_id.as_deref(), Some("CC-BY-SA-4.0"));

    let (stub, anonymous) = start(None).await;
    let e = anonymous.me().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.message(), "Authentication is mandatory");
    assert_eq!(stub.log.last().header("authorization"), None);
}

#[tokio::test]
async fn upload_set_lifecycle() {
    let (stub, client) = start(Some("jwt")).await;
    let set = client
        .create_upload_set(&NewUploadSet {
            title: "Walk".into(),
            estimated_nb_files: Some(2),
            sort_method: Some(SortMethod::TimeAsc),
            duplicate_distance: Some(1.0),
            visibility: Some(Visibility::OwnerOnly),
            semantics: vec![Semantic {
                key: "source".into(),
                value: "mtp-desktop".into(),
            }],
            ..NewUploadSet::default()
        })
        .await
        .unwrap();
    assert_eq!(set.id, SET_ID);
    assert!(!set.completed);
    let seen = stub.log.last();
    assert_eq!(seen.path, "/panoramax/api/upload_sets");
    assert_eq!(
        seen.json(),
        json!({"title": "Walk", "estimated_nb_files": 2, "sort_method": "time-asc",
               "duplicate_distance": 1.0, "visibility": "owner-only",
               "semantics": [{"key": "source", "value": "mtp-desktop"}]})
    );

    client.complete_upload_set(SET_ID).await.unwrap();
    let seen = stub.log.last();
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        (
            "POST",
            format!("/panoramax/api/upload_sets/{SET_ID}/complete").as_str()
        )
    );

    let set = client.upload_set(SET_ID).await.unwrap();
    assert!(set.completed && set.dispatched && set.ready);
    assert_eq!(set.associated_collections, vec!["coll-1"]);
    assert_eq!(set.items_status.unwrap().rejected, 1);

    let files = client.upload_set_files(SET_ID).await.unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].picture_id.as_deref(), Some("pic-1"));
    assert!(files[0].rejected.is_none());
    let rejected = files[1].rejected.as_ref().unwrap();
    assert_eq!(rejected.reason, "capture_duplicate");
    assert_eq!(rejected.severity.as_deref(), Some("info"));

    client.delete_upload_set(SET_ID).await.unwrap();
    assert_eq!(stub.log.last().method, "DELETE");
}

#[tokio::test]
async fn add_file_multipart_and_outcomes() {
    let (stub, client) = start(Some("jwt")).await;
    let file = NewFile {
        file_name: "IMG_1".into(),
        source: Bytes::from_static(b"\xff\xd8jpeg\xff\xd9").into(),
        is_blurred: false,
        override_position: Some((46.5, 6.25)),
        override_capture_time_ms: Some(1_714_564_800_000),
        exif_overrides: vec![("Image.Artist".into(), "Carol".into())],
        xmp_overrides: vec![],
        picture_id: None,
    };
    let outcome = client.add_file(SET_ID, &file).await.unwrap();
    let AddFileOutcome::Added(added) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(added.picture_id.as_deref(), Some("pic-1"));
    assert_eq!(
        added.content_md5.as_deref(),
        Some("d41d8cd98f00b204e9800998ecf8427e")
    );
    assert_eq!(added.size, Some(1234));

    let seen = stub.log.last();
    assert_eq!(
        seen.path,
        format!("/panoramax/api/upload_sets/{SET_ID}/files")
    );
    assert_eq!(seen.header("authorization").as_deref(), Some("Bearer jwt"));
    let part = seen.part("file").unwrap();
    assert_eq!(
        part.file_name.as_deref(),
        Some("IMG_1.jpg"),
        ".jpg is added for GeoVisio"
    );
    assert_eq!(part.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(part.data, Bytes::from_static(b"\xff\xd8jpeg\xff\xd9"));
    assert_eq!(seen.part_text("isBlurred").unwrap(), "false");
    assert_eq!(seen.part_text("override_latitude").unwrap(), "46.5");
    assert_eq!(seen.part_text("override_longitude").unwrap(), "6.25");
    assert_eq!(
        seen.part_text("override_capture_time").unwrap(),
        "2024-05-01T12:00:00Z"
    );
    assert_eq!(
        seen.part_text("override_Exif.Image.Artist").unwrap(),
        "Carol"
    );
    assert!(seen.part("picture_id").is_none());

    // 409, same set: already there.
    stub.file_replies.lock().unwrap().push((
        StatusCode::CONFLICT,
        json!({"message": "The item has already been added to this upload set", "existing_item": {"id": "pic-1"}, "status_code": 409}),
    ));
    let outcome = client.add_file(SET_ID, &file).await.unwrap();
    assert_eq!(
        outcome,
        AddFileOutcome::AlreadyThere {
            existing_item_id: Some("pic-1".into()),
            message: "The item has already been added to this upload set".into()
        }
    );
    // 409, another set on the instance (file_duplicate): also already there.
    stub.file_replies.lock().unwrap().push((
        StatusCode::CONFLICT,
        json!({"message": "The same picture has already been sent", "details": {"error": "file_duplicate"}, "status_code": 409}),
    ));
    assert!(matches!(
        client.add_file(SET_ID, &file).await.unwrap(),
        AddFileOutcome::AlreadyThere {
            existing_item_id: None,
            ..
        }
    ));

    // 409 for another picture under this name in the set (GeoVisio keeps one file per
    // name): not this photo, so not "already there".
    stub.file_replies.lock().unwrap().push((
        StatusCode::CONFLICT,
        json!({"message": "A different picture with the same name has already been added to this uploadset",
               "existing_item": {"id": "pic-other"}, "status_code": 409}),
    ));
    let e = client.add_file(SET_ID, &file).await.unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Permanent, Some(409)));
    assert!(e.to_string().contains("same name"), "{e}");
    // 409 for a picture id already taken: not these bytes either.
    stub.file_replies.lock().unwrap().push((
        StatusCode::CONFLICT,
        json!({"message": "A picture with the same ID already exists", "status_code": 409,
               "details": {"error": "id_conflict"}}),
    ));
    let e = client.add_file(SET_ID, &file).await.unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Permanent, Some(409)));

    // 400: rejected with the reason, permanent.
    stub.file_replies.lock().unwrap().push((
        StatusCode::BAD_REQUEST,
        json!({"message": "Impossible to parse picture metadata", "status_code": 400,
               "details": {"error": "invalid_metadata", "missing_fields": ["location"]}}),
    ));
    let e = client.add_file(SET_ID, &file).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert_eq!(e.code(), Some("invalid_metadata"));
    assert!(e.message().contains("missing: location"), "{e}");

    stub.file_replies
        .lock()
        .unwrap()
        .push((StatusCode::SERVICE_UNAVAILABLE, json!({"message": "busy"})));
    assert_eq!(
        client.add_file(SET_ID, &file).await.unwrap_err().kind(),
        ErrorKind::Retry { after: None }
    );

    let mut blurred = file.clone();
    blurred.file_name = "PANO.JPEG".into();
    blurred.is_blurred = true;
    blurred.override_position = None;
    blurred.override_capture_time_ms = None;
    blurred.exif_overrides.clear();
    blurred.picture_id = Some("0193a3b4-0000-7000-8000-00000000beef".into());
    client.add_file(SET_ID, &blurred).await.unwrap();
    let seen = stub.log.last();
    assert_eq!(
        seen.part("file").unwrap().file_name.as_deref(),
        Some("PANO.JPEG")
    );
    assert_eq!(seen.part_text("isBlurred").unwrap(), "true");
    assert_eq!(
        seen.part_text("picture_id").unwrap(),
        "0193a3b4-0000-7000-8000-00000000beef"
    );
    assert!(seen.part("override_latitude").is_none());
}
