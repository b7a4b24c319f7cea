//! The KartaView client against a stub that checks the exact requests of PROTOCOLS §3.
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
use mtp_providers::kartaview::{
    FinishOutcome, KartaViewClient, NewPhoto, NewSequence, PhotoOutcome, Projection, UPLOAD_SOURCE,
};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Stub {
    log: Log,
    /// Replies for the next photo upload / finish, in order.
    replies: Arc<Mutex<Vec<(StatusCode, String)>>>,
}

impl Stub {
    fn queue(&self, status: StatusCode, body: Value) {
        self.replies
            .lock()
            .unwrap()
            .push((status, body.to_string()));
    }
    fn next(&self, default: Value) -> Response {
        let mut replies = self.replies.lock().unwrap();
        if replies.is_empty() {
            axum::Json(default).into_response()
        } else {
            let (status, body) = replies.remove(0);
            (status, [("content-type", "application/json")], body).into_response()
        }
    }
}

async fn create_sequence(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.log.record(&method, &uri, &headers, body);
    s.next(json!({"status":{"apiCode":"600","apiMessage":"ok"},"osv":{"sequence":{"id":"4321"}}}))
}

async fn create_sequence_multipart(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    s.log
        .record_multipart(&method, &uri, &headers, multipart)
        .await;
    axum::Json(json!({"status":{"apiCode":"600"},"osv":{"sequence":{"id":98765}}})).into_response()
}

async fn photo(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    s.log
        .record_multipart(&method, &uri, &headers, multipart)
        .await;
    s.next(json!({"status":{"apiCode":"600","apiMessage":"ok"},"osv":{"photo":{"id":"555"}}}))
}

async fn finished(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.log.record(&method, &uri, &headers, body);
    s.next(json!({"status":{"apiCode":"600","apiMessage":"ok"}}))
}

async fn sequence_v2(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    s.log.record(&method, &uri, &headers, Bytes::new());
    axum::Json(
        json!({"status":{"apiCode":600,"apiMessage":"ok"},"result":{"data":{
        "id": 4321, "uploadStatus": "UPLOAD_FINISHED", "processingStatus": "PROCESSING",
        "imageProcessingStatus": "NEW", "metadataStatus": "NEW", "qualityStatus": "NEW",
        "countActivePhotos": "12"}}}),
    )
    .into_response()
}

async fn photos_v2(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    s.log.record(&method, &uri, &headers, Bytes::new());
    let page: u32 = uri
        .query()
        .unwrap()
        .split('&')
        .find_map(|kv| kv.strip_prefix("page="))
        .unwrap()
        .parse()
        .unwrap();
    let data = if page == 1 {
        json!([{"id": "1", "sequenceIndex": 0, "autoImgProcessingStatus": "FINISHED", "autoImgProcessingResult": "BLURRED"},
               {"id": 2, "sequenceIndex": "1"}])
    } else {
        json!([{"id": "3", "sequenceIndex": 2}])
    };
    axum::Json(json!({"status":{"apiCode":600},"result":{"data": data, "hasMoreData": page == 1}}))
        .into_response()
}

async fn start() -> (Stub, KartaViewClient, String) {
    let stub = Stub::default();
    let router = Router::new()
        .route("/kartaview/1.0/sequence/", post(create_sequence))
        .route("/kv2/1.0/sequence/", post(create_sequence_multipart))
        .route("/kartaview/1.0/photo/", post(photo))
        .route(
            "/kartaview/1.0/sequence/finished-uploading/",
            post(finished),
        )
        .route("/kartaview/2.0/sequence/{id}", get(sequence_v2))
        .route("/kartaview/2.0/photo/", get(photos_v2))
        .with_state(stub.clone());
    let base = serve(router).await;
    let client = KartaViewClient::with_url(
        common::client(),
        common::url(&format!("{base}/kartaview")),
        Secret::from("kv-token"),
    );
    (stub, client, base)
}

fn new_sequence() -> NewSequence {
    NewSequence {
        upload_source: UPLOAD_SOURCE.to_string(),
        first_latitude: 46.5,
        first_longitude: 6.25,
        platform_name: None,
        device_name: None,
        track_txt: None,
    }
}

fn new_photo(projection: Projection) -> NewPhoto {
    NewPhoto {
        sequence_id: "4321".into(),
        sequence_index: 3,
        latitude: 46.5001234,
        longitude: 6.2505678,
        shot_at_ms: 1_714_564_800_250,
        heading: Some(271.5),
        gps_accuracy: Some(4.0),
        projection,
        projection_yaw: None,
        file_name: "IMG_0003.jpg".into(),
        source: Bytes::from_static(b"\xff\xd8jpeg bytes\xff\xd9").into(),
    }
}

#[tokio::test]
async fn create_sequence_is_a_form_with_string_ids() {
    let (stub, client, base) = start().await;
    let id = client.create_sequence(&new_sequence()).await.unwrap();
    assert_eq!(id, "4321");
    let seen = stub.log.last();
    assert_eq!(seen.path, "/kartaview/1.0/sequence/");
    assert_eq!(
        seen.header("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    let form = seen.form();
    assert_eq!(form["access_token"], "kv-token");
    assert_eq!(form["uploadSource"], UPLOAD_SOURCE);
    assert_eq!(form["currentCoordinate"], "46.5,6.25");
    assert!(!form.contains_key("platformName"));

    // With track.txt: multipart with file metaData; a numeric id is read as a string.
    let client2 = KartaViewClient::with_url(
        common::client(),
        common::url(&format!("{base}/kv2")),
        Secret::from("kv-token"),
    );
    let mut seq = new_sequence();
    seq.platform_name = Some("Linux".into());
    seq.device_name = Some("GoPro MAX".into());
    seq.track_txt = Some(Bytes::from_static(b"METADATA:2.0\nHEADER\nBODY\nEND\n"));
    assert_eq!(client2.create_sequence(&seq).await.unwrap(), "98765");
    let seen = stub.log.last();
    assert_eq!(seen.part_text("platformName").unwrap(), "Linux");
    assert_eq!(seen.part_text("deviceName").unwrap(), "GoPro MAX");
    let meta = seen.part("metaData").unwrap();
    assert_eq!(meta.file_name.as_deref(), Some("track.txt"));
    assert!(meta.data.starts_with(b"METADATA:2.0"));
}

#[tokio::test]
async fn upload_360_photo_sends_every_field() {
    let (stub, client, _) = start().await;
    let outcome = client
        .upload_photo(&new_photo(Projection::Sphere))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        PhotoOutcome::Uploaded {
            photo_id: "555".into()
        }
    );
    let seen = stub.log.last();
    assert_eq!(seen.path, "/kartaview/1.0/photo/");
    assert!(
        seen.header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    assert_eq!(seen.part_text("access_token").unwrap(), "kv-token");
    assert_eq!(seen.part_text("sequenceId").unwrap(), "4321");
    assert_eq!(seen.part_text("sequenceIndex").unwrap(), "3");
    assert_eq!(
        seen.part_text("coordinate").unwrap(),
        "46.5001234,6.2505678"
    );
    assert_eq!(seen.part_text("shotDate").unwrap(), "2024-05-01 12:00:00");
    assert_eq!(seen.part_text("headers").unwrap(), "271.5");
    assert_eq!(seen.part_text("gpsAccuracy").unwrap(), "4");
    assert_eq!(seen.part_text("projection").unwrap(), "SPHERE");
    assert_eq!(seen.part_text("fieldOfView").unwrap(), "360");
    let photo = seen.part("photo").unwrap();
    assert_eq!(photo.file_name.as_deref(), Some("IMG_0003.jpg"));
    assert_eq!(photo.content_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        photo.data,
        Bytes::from_static(b"\xff\xd8jpeg bytes\xff\xd9")
    );
}

#[tokio::test]
async fn flat_photo_has_no_projection_and_duplicates_are_success() {
    let (stub, client, _) = start().await;
    let mut flat = new_photo(Projection::Flat);
    flat.heading = None;
    flat.gps_accuracy = None;
    client.upload_photo(&flat).await.unwrap();
    let names = stub.log.last().part_names();
    assert_eq!(
        names,
        vec![
            "access_token",
            "sequenceId",
            "sequenceIndex",
            "coordinate",
            "shotDate",
            "photo"
        ]
    );

    stub.queue(
        StatusCode::BAD_REQUEST,
        json!({"status":{"apiCode":"660","apiMessage":" You are not allowed to add a duplicate entry (sequenceIndex)","httpCode":400}}),
    );
    let outcome = client.upload_photo(&flat).await.unwrap();
    assert!(
        matches!(outcome, PhotoOutcome::Duplicate { .. }),
        "{outcome:?}"
    );

    // HTTP 200 without osv.photo.id: an error, not a silent success.
    stub.queue(StatusCode::OK, json!({"status":{"apiCode":"600"},"osv":{}}));
    let e = client.upload_photo(&flat).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert_eq!(
        e.message(),
        "the reply to POST /1.0/photo/ does not fit at `osv`: missing field `photo`"
    );

    // Missing argument: permanent with the server's message.
    stub.queue(
        StatusCode::BAD_REQUEST,
        json!({"status":{"apiCode":"610","apiMessage":"Argument missing: coordinate"}}),
    );
    let e = client.upload_photo(&flat).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert_eq!(e.message(), "Argument missing: coordinate");

    stub.queue(StatusCode::UNAUTHORIZED, json!({"status":{"apiCode":"401","apiMessage":" You have to be authenticated in order to access this method"}}));
    assert_eq!(
        client.upload_photo(&flat).await.unwrap_err().kind(),
        ErrorKind::Auth
    );
}

#[tokio::test]
async fn finish_is_idempotent() {
    let (stub, client, _) = start().await;
    assert_eq!(
        client.finish_sequence("4321").await.unwrap(),
        FinishOutcome::Finished
    );
    let seen = stub.log.last();
    assert_eq!(seen.path, "/kartaview/1.0/sequence/finished-uploading/");
    let form = seen.form();
    assert_eq!(form["access_token"], "kv-token");
    assert_eq!(form["sequenceId"], "4321");

    stub.queue(
        StatusCode::BAD_REQUEST,
        json!({"status":{"apiCode":"671","apiMessage":"The sequence has the wrong status"}}),
    );
    assert!(matches!(
        client.finish_sequence("4321").await.unwrap(),
        FinishOutcome::AlreadyFinished { .. }
    ));
}

#[tokio::test]
async fn v2_reads_send_the_token_header() {
    let (stub, client, _) = start().await;
    let sequence = client.sequence("4321").await.unwrap();
    assert_eq!(sequence.id.as_deref(), Some("4321"));
    assert_eq!(sequence.upload_status.as_deref(), Some("UPLOAD_FINISHED"));
    assert_eq!(sequence.processing_status.as_deref(), Some("PROCESSING"));
    assert_eq!(sequence.count_active_photos, Some(12));
    let seen = stub.log.last();
    assert_eq!(seen.path, "/kartaview/2.0/sequence/4321");
    assert_eq!(seen.header("x-auth-token").as_deref(), Some("kv-token"));

    let photos = client.all_photos("4321").await.unwrap();
    let ids: Vec<&str> = photos.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, vec!["1", "2", "3"]);
    assert_eq!(photos[1].sequence_index, Some(1));
    assert_eq!(
        photos[0].auto_img_processing_result.as_deref(),
        Some("BLURRED")
    );
    let q = stub.log.last().query_map();
    assert_eq!(q["sequenceId"], "4321");
    assert_eq!(q["page"], "2");
    assert_eq!(q["itemsPerPage"], "500");
    assert_eq!(stub.log.last().path, "/kartaview/2.0/photo/");
}
