//! The Mapillary client against a stub that checks the exact requests of PROTOCOLS §2.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use common::{Log, serve};
use mtp_core::secret::Secret;
use mtp_providers::mapillary::{
    self, BboxQuery, FileType, IMAGE_FIELDS, LonLat, MapillaryClient, Progress, activity,
};
use mtp_providers::{ErrorKind, FileStamp, UploadSource};
use serde_json::json;

const TOKEN: &str = "MLYuser|token";

#[derive(Clone, Default)]
struct Stub {
    log: Log,
    /// Bytes the server holds per session key.
    held: Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>>,
    /// Reply the next upload POST with 412 and move the offset to this value.
    fail_next_with_412_at: Arc<Mutex<Option<usize>>>,
}

fn check_auth(headers: &HeaderMap) {
    assert_eq!(
        headers.get("authorization").unwrap(),
        &format!("OAuth {TOKEN}"),
        "every call sends Authorization: OAuth <token>"
    );
}

async fn me(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> impl IntoResponse {
    check_auth(&headers);
    s.log.record(&method, &uri, &headers, Bytes::new());
    axum::Json(json!({"id": "1029384756", "username": "alice"}))
}

async fn offset(
    State(s): State<Stub>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> impl IntoResponse {
    check_auth(&headers);
    s.log.record(&method, &uri, &headers, Bytes::new());
    let held = s.held.lock().unwrap().get(&key).map_or(0, Vec::len);
    axum::Json(json!({ "offset": held }))
}

async fn upload(
    State(s): State<Stub>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    check_auth(&headers);
    s.log.record(&method, &uri, &headers, body.clone());
    if let Some(at) = s.fail_next_with_412_at.lock().unwrap().take() {
        let mut held = s.held.lock().unwrap();
        let entry = held.entry(key.clone()).or_default();
        entry.resize(at, 0);
        return (
            StatusCode::PRECONDITION_FAILED,
            axum::Json(json!({"debug_info":{"retriable":true,"type":"OffsetInvalidError","message":"Request starting offset is invalid"}})),
        )
            .into_response();
    }
    let offset: usize = headers
        .get("offset")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut held = s.held.lock().unwrap();
    let entry = held.entry(key.clone()).or_default();
    assert_eq!(
        offset,
        entry.len(),
        "the client resumes at the server's offset"
    );
    entry.extend_from_slice(&body);
    axum::Json(json!({ "h": format!("handle-of-{key}") })).into_response()
}

async fn finish(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    check_auth(&headers);
    s.log.record(&method, &uri, &headers, body);
    axum::Json(json!({"cluster_id": 5551212}))
}

async fn images(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> impl IntoResponse {
    check_auth(&headers);
    s.log.record(&method, &uri, &headers, Bytes::new());
    axum::Json(json!({"data": [
        {"id": "111", "captured_at": 1714564800000u64, "compass_angle": 90.5,
         "geometry": {"type": "Point", "coordinates": [6.25, 46.5]},
         "computed_geometry": {"type": "Point", "coordinates": [6.2501, 46.5001]},
         "altitude": 412.3, "sequence": "seqA", "creator": {"id": "1029384756", "username": "alice"},
         "is_pano": false},
        {"id": 222, "captured_at": 1714564801000u64, "sequence": "seqA"}
    ]}))
}

async fn image_ids(
    State(s): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> impl IntoResponse {
    check_auth(&headers);
    s.log.record(&method, &uri, &headers, Bytes::new());
    axum::Json(json!({"data": [{"id": "111"}, {"id": "222"}]}))
}

async fn image(
    State(s): State<Stub>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> impl IntoResponse {
    check_auth(&headers);
    s.log.record(&method, &uri, &headers, Bytes::new());
    axum::Json(json!({"id": id, "sequence": "seqA", "is_pano": true}))
}

async fn start() -> (Stub, MapillaryClient) {
    let stub = Stub::default();
    let router = Router::new()
        .route("/mapillary/graph/me", get(me))
        .route("/mapillary/graph/finish_upload", post(finish))
        .route("/mapillary/graph/images", get(images))
        .route("/mapillary/graph/image_ids", get(image_ids))
        .route("/mapillary/graph/{id}", get(image))
        .route("/mapillary/upload/{key}", get(offset).post(upload))
        .with_state(stub.clone());
    let base = serve(router).await;
    let client = MapillaryClient::with_urls(
        common::client(),
        common::url(&format!("{base}/mapillary/graph")),
        common::url(&format!("{base}/mapillary/upload")),
        Secret::from(TOKEN),
    );
    (stub, client)
}

#[test]
fn session_keys_and_manifest_bytes() {
    assert_eq!(
        mapillary::session_key_for(b"hello"),
        "mly_tools_5d41402abc4b2a76b9719d911017c592.jpg"
    );
    assert_eq!(
        mapillary::session_key_with_extension(b"hello", "zip"),
        "mly_tools_5d41402abc4b2a76b9719d911017c592.zip"
    );
    let manifest = mapillary::manifest_bytes(&["h1".to_string(), "h2".to_string()]);
    assert_eq!(
        std::str::from_utf8(&manifest).unwrap(),
        r#"{"image_handles":["h1","h2"],"upload_type":"images","version":"1"}"#
    );
    let key = mapillary::new_manifest_key();
    assert!(key.starts_with("uuid_") && key.ends_with(".json"), "{key}");
    let hex = &key["uuid_".len()..key.len() - ".json".len()];
    assert_eq!(hex.len(), 32);
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_ne!(key, mapillary::new_manifest_key());
    assert_eq!(FileType::BundleManifest.as_str(), "mly_bundle_manifest");
    assert_eq!(FileType::Zip.as_str(), "zip");
    assert_eq!(FileType::CammVideo.as_str(), "mly_camm_video");
}

#[tokio::test]
async fn identity() {
    let (stub, client) = start().await;
    let me = client.me().await.unwrap();
    assert_eq!(me.id, "1029384756");
    assert_eq!(me.username.as_deref(), Some("alice"));
    let seen = stub.log.last();
    assert_eq!(seen.path, "/mapillary/graph/me");
    assert_eq!(seen.query_map()["fields"], "id,username");
}

#[tokio::test]
async fn upload_is_one_chunked_post_with_exactly_the_protocol_headers() {
    let (stub, client) = start().await;
    let data = Bytes::from(
        (0..200_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let key = mapillary::session_key_for(&data);

    assert_eq!(client.get_offset(&key).await.unwrap(), 0);
    let positions = Arc::new(Mutex::new(Vec::new()));
    let sink = positions.clone();
    let progress: Progress = Arc::new(move |at| sink.lock().unwrap().push(at));
    let handle = client
        .upload_bytes(&key, 0, data.clone(), Some(progress))
        .await
        .unwrap();
    assert_eq!(handle, format!("handle-of-{key}"));

    let post = stub.log.last();
    assert_eq!(post.method, "POST");
    assert_eq!(post.path, format!("/mapillary/upload/{key}"));
    assert_eq!(post.body, data);
    assert_eq!(post.header("offset").as_deref(), Some("0"));
    assert_eq!(post.header("x-entity-name").as_deref(), Some(key.as_str()));
    assert_eq!(post.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(post.header("content-length"), None);
    assert!(
        post.header("user-agent")
            .unwrap()
            .starts_with("mtp-desktop/")
    );
    for absent in ["x-entity-length", "x-entity-type", "content-type"] {
        assert_eq!(post.header(absent), None, "{absent} must not be sent");
    }
    let positions = positions.lock().unwrap().clone();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(positions.last().copied(), Some(200_000));
}

#[tokio::test]
async fn resume_sends_only_the_rest_and_a_412_rereads_the_offset() {
    let (stub, client) = start().await;
    let data = Bytes::from(vec![7u8; 150_000]);
    let key = mapillary::session_key_for(&data);
    // The server already holds the first 100 000 bytes.
    stub.held
        .lock()
        .unwrap()
        .insert(key.clone(), vec![7u8; 100_000]);
    let handle = client
        .upload_resumable(&key, data.clone(), None)
        .await
        .unwrap();
    assert_eq!(handle, format!("handle-of-{key}"));
    let post = stub.log.last();
    assert_eq!(post.header("offset").as_deref(), Some("100000"));
    assert_eq!(post.body.len(), 50_000);

    // A 412 on the POST: re-GET the offset (now 40 000) and retry at once.
    let data = Bytes::from(vec![9u8; 90_000]);
    let key = mapillary::session_key_for(&data);
    *stub.fail_next_with_412_at.lock().unwrap() = Some(40_000);
    let before = stub.log.len();
    client.upload_resumable(&key, data, None).await.unwrap();
    let calls: Vec<(String, Option<String>)> = stub.log.all()[before..]
        .iter()
        .map(|s| (s.method.clone(), s.header("offset")))
        .collect();
    assert_eq!(
        calls,
        vec![
            ("GET".to_string(), None),
            ("POST".to_string(), Some("0".to_string())),
            ("GET".to_string(), None),
            ("POST".to_string(), Some("40000".to_string())),
        ]
    );

    // A complete session: an empty POST that still returns the handle.
    let before = stub.log.len();
    client
        .upload_resumable(&key, Bytes::from(vec![9u8; 90_000]), None)
        .await
        .unwrap();
    let post = &stub.log.all()[before + 1];
    assert_eq!(post.header("offset").as_deref(), Some("90000"));
    assert!(post.body.is_empty());
}

#[tokio::test]
async fn a_file_source_streams_hashes_and_resumes_as_its_bytes_would() {
    let (stub, client) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("IMG_1.jpg");
    let file: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &file).unwrap();
    let stamp = FileStamp::of(&std::fs::metadata(&path).unwrap());
    let head = vec![1u8; 90_000];
    let source = UploadSource::file(Bytes::from(head.clone()), path.clone(), 5_000, stamp);
    let mut expected = head;
    expected.extend_from_slice(&file[5_000..]);
    let key = mapillary::session_key_for_source(&source).unwrap();
    assert_eq!(key, mapillary::session_key_for(&expected));

    // Resumed inside the head, then inside the tail: the server ends with the same bytes.
    for held in [50_000, 200_000] {
        stub.held
            .lock()
            .unwrap()
            .insert(key.clone(), expected[..held].to_vec());
        client
            .upload_resumable(&key, source.clone(), None)
            .await
            .unwrap();
        let post = stub.log.last();
        assert_eq!(post.header("offset"), Some(held.to_string()));
        assert_eq!(post.body, expected[held..]);
    }

    // The file changed after its key was computed: nothing is sent under that key.
    std::fs::write(&path, &file[..299_000]).unwrap();
    stub.held.lock().unwrap().remove(&key);
    let posts = stub.log.len();
    let e = client
        .upload_resumable(&key, source.clone(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(e.message().contains("changed"), "{e}");
    assert!(
        stub.log.all()[posts..].iter().all(|r| r.method != "POST"),
        "no POST for a changed file"
    );
}

#[tokio::test]
async fn a_412_surfaces_as_offset_invalid_from_a_single_post() {
    let (stub, client) = start().await;
    *stub.fail_next_with_412_at.lock().unwrap() = Some(0);
    let e = client
        .upload_bytes("mly_tools_x.jpg", 0, Bytes::from_static(b"abc"), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OffsetInvalid);
    assert_eq!(e.message(), "Request starting offset is invalid");

    // An offset past the end of our bytes means the file changed: permanent.
    let e = client
        .upload_bytes("mly_tools_x.jpg", 10, Bytes::from_static(b"abc"), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
}

#[tokio::test]
async fn manifest_upload_and_finish() {
    let (stub, client) = start().await;
    let handles = vec!["hA".to_string(), "hB".to_string(), "hC".to_string()];
    let key = mapillary::new_manifest_key();
    let handle = client.upload_manifest(&key, &handles).await.unwrap();
    let post = stub.log.last();
    assert_eq!(post.path, format!("/mapillary/upload/{key}"));
    assert_eq!(
        post.body,
        Bytes::from_static(
            br#"{"image_handles":["hA","hB","hC"],"upload_type":"images","version":"1"}"#
        )
    );

    let cluster = client
        .finish_upload(&handle, FileType::BundleManifest, None)
        .await
        .unwrap();
    assert_eq!(cluster, "5551212");
    let seen = stub.log.last();
    assert_eq!(seen.path, "/mapillary/graph/finish_upload");
    assert_eq!(
        seen.json(),
        json!({"file_handle": handle, "file_type": "mly_bundle_manifest"})
    );
    assert!(
        seen.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );

    client
        .finish_upload("hZ", FileType::Zip, Some("42"))
        .await
        .unwrap();
    assert_eq!(
        stub.log.last().json(),
        json!({"file_handle": "hZ", "file_type": "zip", "organization_id": "42"})
    );
}

#[tokio::test]
async fn read_back_helpers() {
    let (stub, client) = start().await;
    let found = client
        .images_in_bbox(&BboxQuery {
            min_lon: 6.2,
            min_lat: 46.4,
            max_lon: 6.3,
            max_lat: 46.6,
            start_captured_at_ms: Some(1_714_564_800_000),
            end_captured_at_ms: Some(1_714_568_400_000),
            sequence_id: None,
            limit: 5000,
        })
        .await
        .unwrap();
    let q = stub.log.last().query_map();
    assert_eq!(q["bbox"], "6.2,46.4,6.3,46.6");
    assert_eq!(q["limit"], "2000");
    assert_eq!(q["fields"], IMAGE_FIELDS.join(","));
    assert_eq!(q["start_captured_at"], "2024-05-01T12:00:00Z");
    assert_eq!(q["end_captured_at"], "2024-05-01T13:00:00Z");
    assert!(!q.contains_key("sequence_id"));
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].id, "111");
    assert_eq!(
        found[0].geometry,
        Some(LonLat {
            lon: 6.25,
            lat: 46.5
        })
    );
    assert_eq!(found[0].captured_at_ms, Some(1_714_564_800_000));
    assert_eq!(found[0].sequence_id.as_deref(), Some("seqA"));
    assert_eq!(
        found[0].creator.as_ref().unwrap().username.as_deref(),
        Some("alice")
    );
    assert_eq!(found[0].is_pano, Some(false));
    assert_eq!(found[1].id, "222", "numeric ids are read as strings");

    let ids = client.image_ids("seqA").await.unwrap();
    assert_eq!(ids, vec!["111", "222"]);
    let seen = stub.log.last();
    assert_eq!(seen.path, "/mapillary/graph/image_ids");
    assert_eq!(seen.query_map()["sequence_id"], "seqA");

    let one = client
        .image("111", &["id", "sequence", "is_pano"])
        .await
        .unwrap();
    assert_eq!(one.sequence_id.as_deref(), Some("seqA"));
    assert_eq!(one.is_pano, Some(true));
    let seen = stub.log.last();
    assert_eq!(seen.path, "/mapillary/graph/111");
    assert_eq!(seen.query_map()["fields"], "id,sequence,is_pano");

    client
        .images(&["111".into(), "222".into()], &[])
        .await
        .unwrap();
    let q = stub.log.last().query_map();
    assert_eq!(q["image_ids"], "111,222");
}

#[tokio::test]
async fn errors_carry_the_service_message() {
    let router = Router::new()
        .route(
            "/g/me",
            get(|| async {
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"debug_info":{"retriable":false,"type":"NotAuthorizedError","message":"Token expired"}})),
                )
            }),
        )
        .route(
            "/u/{key}",
            get(|| async { axum::Json(json!({"something": 1})) }).post(|| async {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(json!({"backoff": 2500, "debug_info":{"retriable":false,"type":"RequestRateLimitedError","message":"slow"}})),
                )
            }),
        );
    let base = serve(router).await;
    let client = MapillaryClient::with_urls(
        common::client(),
        common::url(&format!("{base}/g")),
        common::url(&format!("{base}/u/")),
        Secret::from(TOKEN),
    );
    let e = client.me().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.message(), "Token expired");

    let e = client.get_offset("k").await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Permanent,
        "a reply without offset is an error"
    );

    let e = client
        .upload_bytes("k", 0, Bytes::from_static(b"x"), None)
        .await
        .unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::Retry {
            after: Some(std::time::Duration::from_millis(2500))
        }
    );
}

/// The activity feed is private: a GraphQL error (HTTP 200 with `errors`) means it does not
/// work with that token, like a 403, and the web client token is tried next; without one,
/// stage detail is unavailable (`None`) rather than an error that would fail the job. A 5xx
/// stays an error, to be tried again at the next look (PROTOCOLS §2.6).
#[tokio::test]
async fn a_feed_that_answers_with_a_graphql_error_falls_back() {
    const WEB: &str = "MLY|web|client";
    async fn graphql(headers: HeaderMap) -> axum::response::Response {
        let auth = headers.get("authorization").unwrap().to_str().unwrap();
        if auth == format!("OAuth {WEB}") {
            return axum::Json(json!({"data": {"fetch__User": {"id": "7", "feed": {
                "page_info": {"start_cursor": null, "end_cursor": null, "has_next_page": false, "has_previous_page": false},
                "nodes": [{"cluster_id": "c1", "type": "UPLOAD", "created_at_seconds": 1_700_000_000,
                           "status": "FINISHED", "initial_processing_status": "FINISHED",
                           "anonymization_status": "FINISHED", "tiler_status": "FINISHED"}]}}}}))
            .into_response();
        }
        if auth == "OAuth broken" {
            return StatusCode::BAD_GATEWAY.into_response();
        }
        axum::Json(json!({"errors": [{"message": "Unsupported get request", "code": 100}]}))
            .into_response()
    }
    let base = serve(Router::new().route("/graph/graphql", get(graphql))).await;
    let client = |token: &str| {
        MapillaryClient::with_urls(
            common::client(),
            common::url(&format!("{base}/graph")),
            common::url(&format!("{base}/upload")),
            Secret::from(token),
        )
    };
    let (user, web, broken) = (client(TOKEN), client(WEB), client("broken"));
    let wanted = ["c1".to_string()];

    let none = activity::lookup_clusters(&user, None, "7", &wanted, 1_699_999_000)
        .await
        .unwrap();
    assert_eq!(none, None);

    let found = activity::lookup_clusters(&user, Some(&web), "7", &wanted, 1_699_999_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.token, activity::ActivityToken::WebClient);
    assert!(found.nodes.contains_key("c1"), "{found:?}");

    let e = activity::lookup_clusters(&broken, None, "7", &wanted, 1_699_999_000)
        .await
        .unwrap_err();
    assert!(e.kind().is_retryable(), "{e:?}");
}
