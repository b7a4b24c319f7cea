//! The emulators' state in `SandboxConfig::state_dir`: what a client started before a
//! restart can finish after it, as with the real services.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{DELAY, Photo, client, md5_hex, s, sandbox_with};
use mtp_sandbox::{Sandbox, Service};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

/// A fresh state folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "mtp-sandbox-state-{}",
            uuid::Uuid::new_v4().simple()
        ));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start(dir: &Path) -> Sandbox {
    let dir = dir.to_owned();
    sandbox_with(move |c| c.state_dir = Some(dir)).await
}

// --- Mapillary -------------------------------------------------------------------------

async fn mly_offset(sb: &Sandbox, token: &str, key: &str) -> u64 {
    let r = client()
        .get(format!("{}/{key}", s(&sb.urls().mapillary_upload)))
        .header("Authorization", format!("OAuth {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["offset"].as_u64().unwrap()
}

async fn mly_post(
    sb: &Sandbox,
    token: &str,
    key: &str,
    offset: u64,
    body: reqwest::Body,
) -> reqwest::Result<reqwest::Response> {
    client()
        .post(format!("{}/{key}", s(&sb.urls().mapillary_upload)))
        .header("Authorization", format!("OAuth {token}"))
        .header("Offset", offset.to_string())
        .header("X-Entity-Name", key)
        .body(body)
        .send()
        .await
}

/// Sends what the upload host does not have yet; returns the handle.
async fn mly_upload(sb: &Sandbox, token: &str, key: &str, bytes: &[u8]) -> String {
    let off = mly_offset(sb, token, key).await;
    let r = mly_post(sb, token, key, off, bytes[off as usize..].to_vec().into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["h"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn mly_finish(sb: &Sandbox, token: &str, handles: &[String]) -> String {
    let manifest = json!({"image_handles": handles, "upload_type": "images", "version": "1"});
    let key = format!("uuid_{}.json", uuid::Uuid::new_v4().simple());
    let mh = mly_upload(sb, token, &key, manifest.to_string().as_bytes()).await;
    let r = client()
        .post(format!("{}/finish_upload", s(&sb.urls().mapillary_graph)))
        .header("Authorization", format!("OAuth {token}"))
        .json(&json!({"file_handle": mh, "file_type": "mly_bundle_manifest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["cluster_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn mly_photo(i: u32) -> Vec<u8> {
    Photo::mapillary(
        46.5 + f64::from(i) * 0.0001,
        6.6,
        &format!("2024_05_17_09_00_{:02}_250", i * 2),
        45.0,
        9000 + i,
    )
    .jpeg()
}

fn mly_key(bytes: &[u8]) -> String {
    format!("mly_tools_{}.jpg", md5_hex(bytes))
}

#[tokio::test]
async fn mapillary_partial_upload_token_and_processing_survive_a_restart() {
    let dir = TempDir::new();
    let sb = start(&dir.0).await;
    let token = sb.issue_token(Service::Mapillary, 0);

    // A cluster finished just before quitting: its processing falls due while stopped.
    let done: Vec<Vec<u8>> = (0..2).map(mly_photo).collect();
    let mut handles = Vec::new();
    for p in &done {
        handles.push(mly_upload(&sb, &token, &mly_key(p), p).await);
    }
    let cluster_before = mly_finish(&sb, &token, &handles).await;
    assert_eq!(
        sb.state()
            .mapillary_cluster(&cluster_before)
            .unwrap()
            .status,
        "pending"
    );

    // One photo complete, one cut halfway.
    let whole = mly_photo(10);
    let whole_handle = mly_upload(&sb, &token, &mly_key(&whole), &whole).await;
    let partial = mly_photo(11);
    let partial_key = mly_key(&partial);
    let cut_at = partial.len() as u64 / 2;
    sb.faults().reset_next("mapillary.upload", 1, cut_at);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        partial.chunks(64).map(|c| Ok(c.to_vec())).collect();
    let cut = mly_post(
        &sb,
        &token,
        &partial_key,
        0,
        reqwest::Body::wrap_stream(futures::stream::iter(chunks)),
    )
    .await;
    assert!(cut.is_err(), "the connection should have been cut: {cut:?}");
    assert_eq!(mly_offset(&sb, &token, &partial_key).await, cut_at);
    sb.shutdown().await;

    assert!(dir.0.join("state.json").is_file());
    let blobs: Vec<String> = std::fs::read_dir(dir.0.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        blobs.iter().any(|b| b.starts_with("mly-upload-")),
        "{blobs:?}"
    );
    assert!(
        blobs.iter().any(|b| b.starts_with("mly-image-")),
        "{blobs:?}"
    );

    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    let sb = start(&dir.0).await;

    // The token still works.
    let me = client()
        .get(format!("{}/me", s(&sb.urls().mapillary_graph)))
        .header("Authorization", format!("OAuth {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // What fell due while stopped is done, and its images are served.
    let c = sb.state().mapillary_cluster(&cluster_before).unwrap();
    assert_eq!(c.status, "done", "{c:?}");
    let images: Vec<_> = sb
        .state()
        .mapillary_images()
        .into_iter()
        .filter(|i| i.cluster_id == cluster_before)
        .collect();
    assert_eq!(images.len(), 2);
    assert!(images.iter().all(|i| i.visible));
    let original = client()
        .get(format!(
            "{}/sandbox/images/{}/original",
            s(&sb.urls().mapillary_graph),
            images[0].id
        ))
        .header("Authorization", format!("OAuth {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(original.status(), 200);
    let served = md5_hex(&original.bytes().await.unwrap());
    assert!(
        done.iter().any(|p| md5_hex(p) == served),
        "the served bytes are one of the photos"
    );

    // The partial upload resumes from its offset; the complete one keeps its handle.
    assert_eq!(mly_offset(&sb, &token, &partial_key).await, cut_at);
    assert_eq!(
        mly_offset(&sb, &token, &mly_key(&whole)).await,
        whole.len() as u64
    );
    let partial_handle = mly_upload(&sb, &token, &partial_key, &partial).await;
    let f = sb.state().mapillary_file(&partial_key).unwrap();
    assert_eq!(f.md5, md5_hex(&partial));
    assert_eq!(f.len, partial.len() as u64);
    assert_eq!(f.posts, 2);
    assert!(f.key_matches_md5());

    let cluster_after = mly_finish(&sb, &token, &[whole_handle, partial_handle]).await;
    assert_ne!(cluster_after, cluster_before);
    assert!(
        cluster_after.parse::<u64>().unwrap() > cluster_before.parse::<u64>().unwrap(),
        "ids are never handed out twice"
    );
    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    let c = sb.state().mapillary_cluster(&cluster_after).unwrap();
    assert_eq!((c.status.as_str(), c.image_count), ("done", 2), "{c:?}");
}

// --- KartaView -------------------------------------------------------------------------

fn kv_api(sb: &Sandbox, path: &str) -> String {
    format!("{}{path}", s(&sb.urls().kartaview_api))
}

async fn kv_photo(sb: &Sandbox, token: &str, seq: &str, index: u32) -> (u16, Value) {
    let form = Form::new()
        .text("access_token", token.to_owned())
        .text("sequenceId", seq.to_owned())
        .text("sequenceIndex", index.to_string())
        .text("coordinate", "46.5001,6.6001")
        .text("shotDate", "2024-05-17 09:30:00")
        .part(
            "photo",
            Part::bytes(Photo::at(46.5, 6.6, "2024:05:17 09:30:00", 700 + index).jpeg())
                .file_name(format!("IMG_{index}.jpg"))
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let r = client()
        .post(kv_api(sb, "/1.0/photo/"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn kv_form(sb: &Sandbox, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(kv_api(sb, path))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn kartaview_sequence_resumes_after_a_restart() {
    let dir = TempDir::new();
    let sb = start(&dir.0).await;
    let token = sb.issue_token(Service::KartaView, 0);
    let (code, v) = kv_form(
        &sb,
        "/1.0/sequence/",
        &[
            ("access_token", &token),
            ("uploadSource", "mtp-desktop"),
            ("currentCoordinate", "46.5,6.6"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let seq = v["osv"]["sequence"]["id"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    for i in 0..2 {
        let (code, v) = kv_photo(&sb, &token, &seq, i).await;
        assert_eq!(code, 200, "{v}");
        ids.push(v["osv"]["photo"]["id"].as_str().unwrap().to_owned());
    }
    drop(sb);

    let sb = start(&dir.0).await;
    // A photo already sent is refused as a duplicate; the rest goes on.
    let (code, v) = kv_photo(&sb, &token, &seq, 1).await;
    assert_eq!((code, v["status"]["apiCode"].as_str()), (400, Some("660")));
    let (code, v) = kv_photo(&sb, &token, &seq, 2).await;
    assert_eq!(code, 200, "{v}");
    let third = v["osv"]["photo"]["id"].as_str().unwrap().to_owned();
    assert!(!ids.contains(&third), "photo ids are never reused");
    assert!(third.parse::<u64>().unwrap() > ids[1].parse::<u64>().unwrap());

    let (code, v) = kv_form(
        &sb,
        "/1.0/sequence/finished-uploading/",
        &[("access_token", &token), ("sequenceId", &seq)],
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let (_, v) = kv_form(&sb, "/1.0/sequence/photo-list/", &[("sequenceId", &seq)]).await;
    let indexes: Vec<&str> = v["osv"]["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sequenceIndex"].as_str().unwrap())
        .collect();
    assert_eq!(indexes, ["0", "1", "2"]);
    let s1 = sb.state().kartaview_sequence(&seq).unwrap();
    assert_eq!(s1.duplicate_attempts, [1]);
    assert_eq!(s1.status, "UPLOAD_FINISHED");
    drop(sb);

    // A restart after the processing delay finds the sequence processed; a new sequence
    // gets a new id.
    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    let sb = start(&dir.0).await;
    assert_eq!(
        sb.state().kartaview_sequence(&seq).unwrap().status,
        "PROCESSING_FINISHED"
    );
    let (code, v) = kv_form(
        &sb,
        "/1.0/sequence/",
        &[
            ("access_token", &token),
            ("uploadSource", "mtp-desktop"),
            ("currentCoordinate", "46.5,6.6"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let next = v["osv"]["sequence"]["id"].as_str().unwrap();
    assert!(next.parse::<u64>().unwrap() > seq.parse::<u64>().unwrap());
}

// --- Panoramax -------------------------------------------------------------------------

fn pnx_api(sb: &Sandbox, path: &str) -> String {
    format!("{}/api{path}", s(&sb.urls().panoramax_instance))
}

async fn pnx_file(
    sb: &Sandbox,
    token: &str,
    set: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let form = Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let r = client()
        .post(pnx_api(sb, &format!("/upload_sets/{set}/files")))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn pnx_get(sb: &Sandbox, token: &str, path: &str) -> (u16, Value) {
    let r = client()
        .get(pnx_api(sb, path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn pnx_photo(i: u32) -> Vec<u8> {
    Photo::at(
        48.85 + f64::from(i) * 0.0001,
        2.35,
        &format!("2024:05:17 10:00:{:02}", i * 4),
        500 + i,
    )
    .jpeg()
}

#[tokio::test]
async fn panoramax_upload_set_resumes_after_a_restart() {
    let dir = TempDir::new();
    let sb = start(&dir.0).await;
    let token = sb.issue_token(Service::Panoramax, 0);
    let r = client()
        .post(pnx_api(&sb, "/upload_sets"))
        .bearer_auth(&token)
        .json(&json!({"title": "Walk", "estimated_nb_files": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let photos: Vec<Vec<u8>> = (0..3).map(pnx_photo).collect();
    for (i, p) in photos.iter().take(2).enumerate() {
        let (code, v) = pnx_file(&sb, &token, &set, &format!("IMG_{i}.jpg"), p.clone()).await;
        assert_eq!(code, 202, "{v}");
    }
    drop(sb);

    let sb = start(&dir.0).await;
    let (code, v) = pnx_get(&sb, &token, "/users/me/upload_sets").await;
    assert_eq!(code, 200, "the token still works: {v}");
    let sets = v["upload_sets"].as_array().unwrap();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["id"], set.as_str());
    assert_eq!(sets[0]["nb_items"], 2);
    assert_eq!(sets[0]["completed"], false);
    let (_, files) = pnx_get(&sb, &token, &format!("/upload_sets/{set}/files")).await;
    let md5s: Vec<&str> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["content_md5"].as_str().unwrap())
        .collect();
    assert_eq!(md5s, [md5_hex(&photos[0]), md5_hex(&photos[1])]);

    // A file sent again is known; the last one completes the set.
    let (code, _) = pnx_file(&sb, &token, &set, "IMG_1.jpg", photos[1].clone()).await;
    assert_eq!(code, 409);
    let (code, v) = pnx_file(&sb, &token, &set, "IMG_2.jpg", photos[2].clone()).await;
    assert_eq!(code, 202, "{v}");
    let (_, v) = pnx_get(&sb, &token, &format!("/upload_sets/{set}")).await;
    assert_eq!(v["completed"], true);
    drop(sb);

    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    let sb = start(&dir.0).await;
    let (_, v) = pnx_get(&sb, &token, &format!("/upload_sets/{set}")).await;
    assert_eq!(
        (v["ready"].as_bool(), v["nb_items"].as_u64()),
        (Some(true), Some(3))
    );
    let col = v["associated_collections"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, items) = pnx_get(&sb, &token, &format!("/collections/{col}/items")).await;
    assert_eq!(code, 200);
    let hd = items["features"][0]["assets"]["hd"]["href"]
        .as_str()
        .unwrap();
    assert!(
        hd.starts_with(&s(&sb.base_url())),
        "links use the current origin: {hd}"
    );
    let bytes = client()
        .get(hd)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(md5_hex(&bytes), md5_hex(&photos[0]));
}

// --- Map the Paths Web -----------------------------------------------------------------

#[tokio::test]
async fn mtpw_sequence_survives_a_restart() {
    let dir = TempDir::new();
    let sb = start(&dir.0).await;
    let token = sb.issue_token(Service::Mtpw, 0);
    let r = client()
        .post(format!(
            "{}/api/v1/sequence/create/",
            s(&sb.urls().mtpw_base)
        ))
        .bearer_auth(&token)
        .form(&[
            ("name", "Lake loop"),
            ("transport_type", "Walk"),
            ("tag", "Lake"),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let id = v["unique_id"].as_str().unwrap().to_owned();
    drop(sb);

    let sb = start(&dir.0).await;
    let seq = sb.state().mtpw_sequence(&id).unwrap();
    assert_eq!(
        (seq.name.as_str(), seq.tags.as_slice()),
        ("Lake loop", ["Lake".to_owned()].as_slice())
    );
    let page = client()
        .get(format!("{}/sequence/{id}/detail", s(&sb.urls().mtpw_base)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let r = client()
        .post(format!(
            "{}/api/v1/sequence/create/",
            s(&sb.urls().mtpw_base)
        ))
        .bearer_auth(&token)
        .form(&[("name", "Second"), ("transport_type", "Walk")])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["unique_id"].is_string(), "the token still works: {v}");
    assert_eq!(sb.state().mtpw_sequences().len(), 2);
}

// --- A bad state file ------------------------------------------------------------------

#[tokio::test]
async fn a_corrupt_state_file_is_set_aside_and_the_sandbox_starts_empty() {
    let dir = TempDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join("state.json"), b"{\"version\": 1, \"auth\": [tru").unwrap();
    let sb = start(&dir.0).await;
    assert!(sb.state().issued_tokens().is_empty());
    let aside: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read(dir.0.join(&aside[0])).unwrap(),
        b"{\"version\": 1, \"auth\": [tru"
    );

    // It works, and saves a good state again.
    let token = sb.issue_token(Service::KartaView, 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let saved: Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("state.json")).unwrap()).unwrap();
    assert_eq!(saved["version"], 1);
    drop(sb);
    let sb = start(&dir.0).await;
    assert_eq!(sb.state().issued_tokens(), [token]);
}

#[tokio::test]
async fn without_a_state_dir_nothing_survives() {
    let sb = sandbox_with(|_| {}).await;
    sb.issue_token(Service::KartaView, 0);
    drop(sb);
    let sb = sandbox_with(|_| {}).await;
    assert!(sb.state().issued_tokens().is_empty());
}
