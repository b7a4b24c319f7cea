//! Account stats (PROTOCOLS §6) with our clients against the sandbox emulators: KartaView's
//! `/1.0/user/details/` (totals sent as strings of digits) and Panoramax's sums over
//! `/api/users/me/collection`, page by page.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::http::HeaderMap;
use axum::routing::get;
use bytes::Bytes;
use common::{client, serve};
use mtp_core::secret::Secret;
use mtp_providers::kartaview::{NewPhoto, NewSequence, PhotoOutcome, Projection, UPLOAD_SOURCE};
use mtp_providers::panoramax::{AddFileOutcome, NewFile, NewUploadSet};
use mtp_providers::{ErrorKind, KartaViewClient, PanoramaxClient};
use mtp_sandbox::{
    SANDBOX_USERNAME, SANDBOX_UTF8_USERNAME, Sandbox, SandboxConfig, Service, USERS,
};
use serde_json::{Value, json};

const DELAY: Duration = Duration::from_millis(300);

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        processing_delay: DELAY,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

fn jpeg(salt: u32) -> Bytes {
    let mut b = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x08, b'J', b'F', b'I', b'F', 0x00,
    ];
    b.extend_from_slice(&salt.to_be_bytes());
    b.extend_from_slice(&[0xFF, 0xD9]);
    Bytes::from(b)
}

/// A step north between two photos, and its length; under Panoramax's 100 m split distance.
const STEP_DEG: f64 = 0.0005;
const STEP_KM: f64 = 0.055_597;

/// A KartaView sequence of `n` photos walking north `STEP_DEG` at a time.
async fn kv_walk(kv: &KartaViewClient, n: u32, salt: u32) -> (String, Vec<String>) {
    let seq = kv
        .create_sequence(&NewSequence {
            upload_source: UPLOAD_SOURCE.to_string(),
            first_latitude: 46.5,
            first_longitude: 6.6,
            platform_name: None,
            device_name: None,
            track_txt: None,
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let outcome = kv
            .upload_photo(&NewPhoto {
                sequence_id: seq.clone(),
                sequence_index: i,
                latitude: 46.5 + f64::from(i) * STEP_DEG,
                longitude: 6.6,
                shot_at_ms: 1_715_938_200_000 + i64::from(i) * 1000,
                heading: None,
                gps_accuracy: None,
                projection: Projection::Flat,
                projection_yaw: None,
                file_name: format!("IMG_{i}.jpg"),
                source: jpeg(salt + i).into(),
            })
            .await
            .unwrap();
        match outcome {
            PhotoOutcome::Uploaded { photo_id } => ids.push(photo_id),
            PhotoOutcome::Duplicate { message } => panic!("duplicate: {message}"),
        }
    }
    (seq, ids)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.002
}

#[tokio::test]
async fn kartaview_user_details_count_what_the_user_uploaded() {
    let sb = sandbox().await;
    let api = sb.urls().kartaview_api;
    let kv = KartaViewClient::with_url(
        client(),
        api.clone(),
        Secret::new(sb.issue_token(Service::KartaView, 0)),
    );
    // Public: a client with a worthless token still reads the stats.
    let public = KartaViewClient::with_url(client(), api.clone(), Secret::new("none".into()));

    let nobody = public.user_details(SANDBOX_USERNAME).await.unwrap();
    assert_eq!(nobody.username, SANDBOX_USERNAME);
    assert_eq!(
        (nobody.photos, nobody.tracks, nobody.km),
        (Some(0), Some(0), Some(0.0))
    );
    assert_eq!((nobody.overall_rank, nobody.weekly_rank), (None, None));

    let (_, first) = kv_walk(&kv, 4, 10).await;
    kv_walk(&kv, 3, 20).await;
    let stats = public.user_details(SANDBOX_USERNAME).await.unwrap();
    assert_eq!(
        stats.id.as_deref(),
        Some(USERS[0].kartaview_id.to_string().as_str())
    );
    assert_eq!(stats.photos, Some(7));
    assert_eq!(stats.tracks, Some(2));
    assert!(close(stats.km.unwrap(), 5.0 * STEP_KM), "{stats:?}");
    assert_eq!((stats.overall_rank, stats.weekly_rank), (Some(1), Some(1)));

    // The other account ranks behind once it has photos of its own.
    let other = KartaViewClient::with_url(
        client(),
        api.clone(),
        Secret::new(sb.issue_token(Service::KartaView, 1)),
    );
    kv_walk(&other, 2, 30).await;
    let second = public.user_details(SANDBOX_UTF8_USERNAME).await.unwrap();
    assert_eq!((second.photos, second.tracks), (Some(2), Some(1)));
    assert_eq!(second.overall_rank, Some(2));

    // A removed photo leaves the totals.
    kv.remove_photo(&first[3]).await.unwrap();
    let after = public.user_details(SANDBOX_USERNAME).await.unwrap();
    assert_eq!(after.photos, Some(6));
    assert!(close(after.km.unwrap(), 4.0 * STEP_KM), "{after:?}");

    // What went over the wire: v1 strings for the totals, numbers for the ranks.
    let raw: Value = client()
        .post(format!(
            "{}/1.0/user/details/",
            api.as_str().trim_end_matches('/')
        ))
        .form(&[("username", SANDBOX_USERNAME)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["status"]["apiCode"], json!("600"));
    assert_eq!(raw["osv"]["totalPhotos"], json!("6"));
    assert!(raw["osv"]["totalDistance"].is_string(), "{raw}");
    assert_eq!(raw["osv"]["overallRank"], json!(1));

    // An unknown account: the 400 / apiCode 690 KartaView gives, as a permanent error.
    let e = public.user_details("no-such-user").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent, "{e:?}");
    assert_eq!(e.code(), Some("apiCode 690"));

    // The endpoint has its own fault knob.
    sb.faults()
        .apply_spec("kartaview.user_details:fail_next=1,status=503")
        .unwrap();
    let e = public.user_details(SANDBOX_USERNAME).await.unwrap_err();
    assert!(e.kind().is_retryable(), "{e:?}");
    assert!(public.user_details(SANDBOX_USERNAME).await.is_ok());
}

fn pnx_client(sb: &Sandbox, user: usize) -> PanoramaxClient {
    PanoramaxClient::with_url(
        client(),
        sb.urls().panoramax_instance,
        Some(Secret::new(sb.issue_token(Service::Panoramax, user))),
    )
}

/// An upload set of `n` pictures walking north `STEP_DEG` apart; waits until it is ready
/// (one collection).
async fn pnx_walk(pnx: &PanoramaxClient, n: u32, salt: u32) {
    let set = pnx
        .create_upload_set(&NewUploadSet {
            title: format!("Walk {salt}"),
            estimated_nb_files: Some(n),
            ..NewUploadSet::default()
        })
        .await
        .unwrap();
    for i in 0..n {
        let outcome = pnx
            .add_file(
                &set.id,
                &NewFile {
                    file_name: format!("IMG_{i}.jpg"),
                    source: jpeg(salt + i).into(),
                    override_position: Some((48.85 + f64::from(i) * STEP_DEG, 2.35)),
                    override_capture_time_ms: Some(1_715_938_200_000 + i64::from(i) * 4000),
                    ..NewFile::default()
                },
            )
            .await
            .unwrap();
        assert!(matches!(outcome, AddFileOutcome::Added(_)), "{outcome:?}");
    }
    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    assert!(pnx.upload_set(&set.id).await.unwrap().ready);
}

#[tokio::test]
async fn panoramax_totals_sum_every_page_of_the_users_sequences() {
    let sb = sandbox().await;
    let pnx = pnx_client(&sb, 0);

    // No sequence yet: GeoVisio's 404 "No data loaded" is a true zero.
    let empty = pnx.account_stats().await.unwrap();
    assert_eq!((empty.photos, empty.sequences, empty.incomplete), (0, 0, 0));
    assert_eq!(empty.km, 0.0);

    pnx_walk(&pnx, 3, 100).await;
    pnx_walk(&pnx, 2, 200).await;
    pnx_walk(&pnx, 4, 300).await;
    // Someone else's sequence is not ours.
    pnx_walk(&pnx_client(&sb, 1), 5, 400).await;

    let one_page = pnx.account_stats().await.unwrap();
    assert_eq!(one_page.pages, 1);
    assert_eq!((one_page.photos, one_page.sequences), (9, 3));
    assert_eq!(one_page.incomplete, 0);
    assert!(close(one_page.km, 6.0 * STEP_KM), "{one_page:?}");

    // Two a page: three pages chained by rel=next (which points at /users/{id}/collection).
    let paged = pnx.account_stats_paged(2).await.unwrap();
    assert_eq!(paged.pages, 2);
    let one_each = pnx.account_stats_paged(1).await.unwrap();
    assert_eq!(one_each.pages, 3);
    for s in [&paged, &one_each] {
        assert_eq!((s.photos, s.sequences), (9, 3), "{s:?}");
        assert!(close(s.km, one_page.km), "{s:?}");
    }
    let seen = sb.requests();
    let followed = seen
        .iter()
        .filter(|r| {
            r.path
                .contains(&format!("/users/{}/collection", USERS[0].panoramax_id))
        })
        .count();
    assert_eq!(followed, 1 + 2, "next links followed: {seen:?}");

    let theirs = pnx_client(&sb, 1).account_stats().await.unwrap();
    assert_eq!((theirs.photos, theirs.sequences), (5, 1));

    // Without a token there is no "me".
    let anonymous = PanoramaxClient::with_url(client(), sb.urls().panoramax_instance, None);
    assert_eq!(
        anonymous.account_stats().await.unwrap_err().kind(),
        ErrorKind::Auth
    );
    // A failing page fails the whole sum: part of the list would be a wrong total.
    sb.faults()
        .apply_spec("panoramax.user_collection:fail_next=1,status=503")
        .unwrap();
    let e = pnx.account_stats_paged(1).await.unwrap_err();
    assert!(e.kind().is_retryable(), "{e:?}");
}

/// A stub GeoVisio behind a proxy: its links name an inside address. The client follows
/// them on the instance it was given (with the token), and a 404 that is not "No data
/// loaded" stays an error.
#[tokio::test]
async fn panoramax_next_links_stay_on_the_instance() {
    async fn page(headers: HeaderMap, Query(q): Query<Vec<(String, String)>>) -> axum::Json<Value> {
        assert_eq!(
            headers.get("authorization").unwrap().to_str().unwrap(),
            "Bearer tok"
        );
        let page = q.iter().find(|(k, _)| k == "page").map(|(_, v)| v.as_str());
        axum::Json(match page {
            None => json!({"links": [
                {"rel": "self", "href": "http://10.0.0.5:5000/api/users/me/collection"},
                {"rel": "child", "href": "x", "stats:items": {"count": "12"}, "geovisio:length_km": "1.5"},
                {"rel": "child", "href": "y", "stats:items": {"count": 3}},
                {"rel": "next", "href": "http://10.0.0.5:5000/api/users/u1/collection?limit=2&page=next"},
            ]}),
            Some(_) => json!({"links": [
                {"rel": "child", "href": "z", "stats:items": {"count": 1}, "geovisio:length_km": 0.25},
            ]}),
        })
    }
    let base = serve(
        Router::new()
            .route("/api/users/me/collection", get(page))
            .route("/api/users/u1/collection", get(page)),
    )
    .await;
    let pnx = PanoramaxClient::with_url(
        client(),
        common::url(&base),
        Some(Secret::new("tok".into())),
    );
    let stats = pnx.account_stats_paged(2).await.unwrap();
    assert_eq!((stats.photos, stats.sequences, stats.pages), (16, 3, 2));
    assert!((stats.km - 1.75).abs() < 1e-9);
    // One sequence came without its length: its km are not in the sum, and that is said.
    assert_eq!(stats.incomplete, 1);
    // Explore's "my sequences" follows the same links the same way (the stub refuses any
    // request without the token, and nothing listens at the inside address).
    let ids = mtp_providers::search::panoramax::my_collection_ids(
        &pnx,
        mtp_providers::search::Patience::default(),
    )
    .await
    .unwrap();
    assert_eq!(ids, ["x", "y", "z"]);

    let no_route = serve(Router::new()).await;
    let e = PanoramaxClient::with_url(
        client(),
        common::url(&no_route),
        Some(Secret::new("tok".into())),
    )
    .account_stats()
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent, "{e:?}");
}
