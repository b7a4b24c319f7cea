//! Edit and delete (PROTOCOLS §6) with our clients against the sandbox emulators: the calls
//! succeed, and their errors tell "already gone" (404 / KartaView 612) from "not yours"
//! (403 / 618) from "try again" (5xx, 429).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::client;
use mtp_core::secret::Secret;
use mtp_providers::kartaview::{NewPhoto, NewSequence, PhotoOutcome, Projection, UPLOAD_SOURCE};
use mtp_providers::panoramax::{
    AddFileOutcome, CollectionPatch, NewFile, NewUploadSet, Visibility,
};
use mtp_providers::{ErrorKind, KartaViewClient, MtpwConfig, PanoramaxClient, ProviderError};
use mtp_sandbox::{Sandbox, SandboxConfig, Service};

const DELAY: Duration = Duration::from_millis(300);

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxConfig {
        processing_delay: DELAY,
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

/// A tiny JPEG (SOI, APP0, EOI) made unique by `salt`; its position and time go as
/// overrides where needed.
fn jpeg(salt: u32) -> Bytes {
    let mut b = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x08, b'J', b'F', b'I', b'F', 0x00,
    ];
    b.extend_from_slice(&salt.to_be_bytes());
    b.extend_from_slice(&[0xFF, 0xD9]);
    Bytes::from(b)
}

fn kv_client(sb: &Sandbox, token: &str) -> KartaViewClient {
    KartaViewClient::with_url(
        client(),
        sb.urls().kartaview_api,
        Secret::new(token.to_string()),
    )
}

fn pnx_client(sb: &Sandbox, token: Option<&str>) -> PanoramaxClient {
    PanoramaxClient::with_url(
        client(),
        sb.urls().panoramax_instance,
        token.map(|t| Secret::new(t.to_string())),
    )
}

/// A sequence with `n` photos: its id and the photo ids.
async fn kv_sequence(kv: &KartaViewClient, n: u32, salt: u32) -> (String, Vec<String>) {
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
    let mut photos = Vec::new();
    for i in 0..n {
        let outcome = kv
            .upload_photo(&NewPhoto {
                sequence_id: seq.clone(),
                sequence_index: i,
                latitude: 46.5,
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
            PhotoOutcome::Uploaded { photo_id } => photos.push(photo_id),
            PhotoOutcome::Duplicate { message } => panic!("duplicate: {message}"),
        }
    }
    (seq, photos)
}

fn assert_not_found(e: &ProviderError) {
    assert!(e.is_not_found(), "{e:?}");
    assert!(!e.is_forbidden(), "{e:?}");
    assert_eq!(e.kind(), ErrorKind::Permanent, "{e:?}");
}

fn assert_forbidden(e: &ProviderError) {
    assert!(e.is_forbidden(), "{e:?}");
    assert!(!e.is_not_found(), "{e:?}");
}

fn assert_retry(e: &ProviderError) {
    assert!(e.kind().is_retryable(), "{e:?}");
    assert!(!e.is_not_found() && !e.is_forbidden(), "{e:?}");
}

#[tokio::test]
async fn kartaview_remove_sequence_and_photo_against_the_sandbox() {
    let sb = sandbox().await;
    let kv = kv_client(&sb, &sb.issue_token(Service::KartaView, 0));
    let (seq, photos) = kv_sequence(&kv, 2, 100).await;

    kv.remove_photo(&photos[0]).await.unwrap();
    let left = kv.all_photos(&seq).await.unwrap();
    assert_eq!(
        left.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        [photos[1].as_str()]
    );
    assert_not_found(&kv.remove_photo(&photos[0]).await.unwrap_err());

    kv.remove_sequence(&seq).await.unwrap();
    assert!(sb.state().kartaview_sequence(&seq).unwrap().deleted);
    assert_not_found(&kv.sequence(&seq).await.unwrap_err());
    assert!(
        kv.my_list("sandbox-user", 1)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Already gone: a second removal, and a photo of the removed sequence.
    let e = kv.remove_sequence(&seq).await.unwrap_err();
    assert_not_found(&e);
    assert_eq!(e.code(), Some("apiCode 612"));
    assert_not_found(&kv.remove_photo(&photos[1]).await.unwrap_err());
    assert_not_found(&kv.remove_sequence("999999999").await.unwrap_err());
}

#[tokio::test]
async fn kartaview_remove_errors_tell_gone_from_not_yours_from_transient() {
    let sb = sandbox().await;
    let owner = kv_client(&sb, &sb.issue_token(Service::KartaView, 0));
    let other = kv_client(&sb, &sb.issue_token(Service::KartaView, 1));
    let (seq, photos) = owner_sequence(&owner).await;

    // Another user's sequence or photo: 403, apiCode 618.
    let e = other.remove_sequence(&seq).await.unwrap_err();
    assert_forbidden(&e);
    assert_eq!(e.code(), Some("apiCode 618"));
    assert_forbidden(&other.remove_photo(&photos[0]).await.unwrap_err());
    // A token KartaView does not know: sign in again.
    let e = kv_client(&sb, "bogus")
        .remove_sequence(&seq)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(!e.is_not_found() && !e.is_forbidden(), "{e:?}");

    // Transient: 503 and 429 are retried, and the sequence is still there after them.
    sb.faults()
        .apply_spec(
            "kartaview.sequence_remove:fail_next=1,status=503; \
             kartaview.photo_remove:rate_limit=1,retry_after=7",
        )
        .unwrap();
    assert_retry(&owner.remove_sequence(&seq).await.unwrap_err());
    let e = owner.remove_photo(&photos[0]).await.unwrap_err();
    assert_retry(&e);
    assert_eq!(
        e.kind(),
        ErrorKind::Retry {
            after: Some(Duration::from_secs(7))
        }
    );
    assert!(!sb.state().kartaview_sequence(&seq).unwrap().deleted);
    owner.remove_photo(&photos[0]).await.unwrap();
    owner.remove_sequence(&seq).await.unwrap();
    assert!(sb.state().kartaview_sequence(&seq).unwrap().deleted);
}

async fn owner_sequence(kv: &KartaViewClient) -> (String, Vec<String>) {
    kv_sequence(kv, 1, 200).await
}

/// A ready upload set of `n` pictures: the set id and its collection id.
async fn pnx_ready_set(pnx: &PanoramaxClient, n: u32, salt: u32) -> (String, String) {
    let set = pnx
        .create_upload_set(&NewUploadSet {
            title: "Morning walk".to_string(),
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
                    override_position: Some((48.85 + f64::from(i) * 0.0001, 2.35)),
                    override_capture_time_ms: Some(1_715_938_200_000 + i64::from(i) * 4000),
                    ..NewFile::default()
                },
            )
            .await
            .unwrap();
        assert!(matches!(outcome, AddFileOutcome::Added(_)), "{outcome:?}");
    }
    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    let ready = pnx.upload_set(&set.id).await.unwrap();
    assert!(ready.ready, "{ready:?}");
    let col = ready.associated_collections[0].clone();
    (set.id, col)
}

#[tokio::test]
async fn panoramax_patch_and_delete_collection_against_the_sandbox() {
    let sb = sandbox().await;
    let pnx = pnx_client(&sb, Some(&sb.issue_token(Service::Panoramax, 0)));
    let anonymous = pnx_client(&sb, None);
    let (set, col) = pnx_ready_set(&pnx, 2, 300).await;

    let edited = pnx
        .patch_collection(
            &col,
            &CollectionPatch {
                title: Some("Evening walk".to_string()),
                ..CollectionPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (edited.id.as_str(), edited.title.as_deref()),
        (col.as_str(), Some("Evening walk"))
    );
    assert_eq!(
        anonymous.collection(&col).await.unwrap().title.as_deref(),
        Some("Evening walk")
    );
    // Hidden: only the owner still sees it.
    pnx.patch_collection(
        &col,
        &CollectionPatch {
            visibility: Some(Visibility::OwnerOnly),
            ..CollectionPatch::default()
        },
    )
    .await
    .unwrap();
    assert_not_found(&anonymous.collection(&col).await.unwrap_err());
    assert_eq!(pnx.collection(&col).await.unwrap().id, col);
    pnx.patch_collection(
        &col,
        &CollectionPatch {
            visible: Some(true),
            ..CollectionPatch::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(anonymous.collection(&col).await.unwrap().id, col);

    pnx.delete_collection(&col).await.unwrap();
    assert!(sb.state().panoramax_collection(&col).unwrap().deleted);
    assert_not_found(&pnx.collection(&col).await.unwrap_err());
    assert!(
        pnx.upload_set(&set)
            .await
            .unwrap()
            .associated_collections
            .is_empty()
    );
    // Already gone.
    assert_not_found(&pnx.delete_collection(&col).await.unwrap_err());
    assert_not_found(
        &pnx.patch_collection(&col, &CollectionPatch::default())
            .await
            .unwrap_err(),
    );

    pnx.delete_upload_set(&set).await.unwrap();
    assert!(sb.state().panoramax_upload_set(&set).unwrap().deleted);
    assert_not_found(&pnx.upload_set(&set).await.unwrap_err());
    assert_not_found(&pnx.delete_upload_set(&set).await.unwrap_err());
    assert!(pnx.my_upload_sets().await.unwrap().is_empty());
}

#[tokio::test]
async fn panoramax_edit_and_delete_errors_tell_gone_from_not_yours_from_transient() {
    let sb = sandbox().await;
    let owner = pnx_client(&sb, Some(&sb.issue_token(Service::Panoramax, 0)));
    let other = pnx_client(&sb, Some(&sb.issue_token(Service::Panoramax, 1)));
    let anonymous = pnx_client(&sb, None);
    let (set, col) = pnx_ready_set(&owner, 1, 400).await;
    let title = CollectionPatch {
        title: Some("Mine now".to_string()),
        ..CollectionPatch::default()
    };

    // Not yours: 403.
    assert_forbidden(&other.patch_collection(&col, &title).await.unwrap_err());
    assert_forbidden(&other.delete_collection(&col).await.unwrap_err());
    assert_forbidden(&other.delete_upload_set(&set).await.unwrap_err());
    // No token: 401, sign in.
    for e in [
        anonymous.patch_collection(&col, &title).await.unwrap_err(),
        anonymous.delete_collection(&col).await.unwrap_err(),
        anonymous.delete_upload_set(&set).await.unwrap_err(),
    ] {
        assert_eq!(
            (e.kind(), e.status()),
            (ErrorKind::Auth, Some(401)),
            "{e:?}"
        );
        assert!(!e.is_forbidden() && !e.is_not_found(), "{e:?}");
    }
    // A title GeoVisio refuses: 400, permanent.
    let e = owner
        .patch_collection(
            &col,
            &CollectionPatch {
                title: Some("x".repeat(251)),
                ..CollectionPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!((e.kind(), e.status()), (ErrorKind::Permanent, Some(400)));
    assert!(!e.is_not_found());

    // Transient: 503 / 429 are retried; nothing happened meanwhile.
    sb.faults()
        .apply_spec(
            "panoramax.collection_patch:fail_next=1,status=503; \
             panoramax.collection_delete:fail_next=1,status=502; \
             panoramax.upload_set_delete:rate_limit=1",
        )
        .unwrap();
    assert_retry(&owner.patch_collection(&col, &title).await.unwrap_err());
    assert_retry(&owner.delete_collection(&col).await.unwrap_err());
    let e = owner.delete_upload_set(&set).await.unwrap_err();
    assert_retry(&e);
    assert_eq!(e.status(), Some(429));
    assert!(!sb.state().panoramax_collection(&col).unwrap().deleted);
    assert!(!sb.state().panoramax_upload_set(&set).unwrap().deleted);
    owner.patch_collection(&col, &title).await.unwrap();
    owner.delete_collection(&col).await.unwrap();
    owner.delete_upload_set(&set).await.unwrap();
}

#[tokio::test]
async fn mtpw_delete_page_url_opens_the_sandbox_delete_page() {
    let sb = sandbox().await;
    let base = sb.urls().mtpw_base;
    let config = MtpwConfig {
        sequence_page: MtpwConfig::page_under(&base),
        ..MtpwConfig::production_defaults(mtp_sandbox::MTPW_CLIENT_ID)
    };
    let token = sb.issue_token(Service::Mtpw, 0);
    let mtpw = mtp_providers::MtpwClient::with_url(client(), base, Secret::new(token));
    let id = mtpw
        .create_sequence(&mtp_providers::mtpw::NewMtpwSequence {
            name: "Lake loop".to_string(),
            transport_type: "Walk".to_string(),
            description: None,
            tags: Vec::new(),
        })
        .await
        .unwrap();

    let http = client();
    let page = http
        .get(config.sequence_page_url(&id))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // The page's Delete button is a form that POSTs to `…/delete` (mtp-web's detail page).
    let delete_url = config.sequence_page_url(&id).replace("/detail", "/delete");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("method=\"post\" action=\"{delete_url}\""))
            && html.contains("confirm-delete"),
        "{html}"
    );
    // What the browser's button does; then mtp-web shows its list.
    let done = http.post(&delete_url).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(
        done.url().as_str().ends_with("/sequence/"),
        "{}",
        done.url()
    );
    assert!(sb.state().mtpw_sequence(&id).unwrap().deleted);
    assert!(!mtpw.exists(&id).await.unwrap());
    assert_eq!(
        http.get(config.sequence_page_url(&id))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}
