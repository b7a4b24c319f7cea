//! Editing and deleting after an upload (PROTOCOLS §6): KartaView's `remove` calls,
//! Panoramax's `PATCH`/`DELETE` on collections and upload sets, and Map the Paths Web's
//! delete page. For each: the success reply, the effect on every read-back, a second
//! delete, another user's item, no token, a restart, and injected faults.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{DELAY, Photo, client, location, s, sandbox, sandbox_with};
use mtp_sandbox::{Sandbox, Service};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

// --- KartaView ---------------------------------------------------------------------------

fn kv(sb: &Sandbox, path: &str) -> String {
    format!("{}{path}", s(&sb.urls().kartaview_api))
}

async fn kv_form(sb: &Sandbox, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client().post(kv(sb, path)).form(form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn kv_get(sb: &Sandbox, path: &str) -> u16 {
    client()
        .get(kv(sb, path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A sequence of `n` photos owned by `token`'s user: its id and the photo ids.
async fn kv_sequence(sb: &Sandbox, token: &str, n: u32) -> (String, Vec<String>) {
    let (code, v) = kv_form(
        sb,
        "/1.0/sequence/",
        &[
            ("access_token", token),
            ("uploadSource", "mtp-desktop"),
            ("currentCoordinate", "46.5,6.6"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let seq = v["osv"]["sequence"]["id"].as_str().unwrap().to_owned();
    let mut photos = Vec::new();
    for i in 0..n {
        let form = Form::new()
            .text("access_token", token.to_owned())
            .text("sequenceId", seq.clone())
            .text("sequenceIndex", i.to_string())
            .text("coordinate", "46.5001,6.6001")
            .text("shotDate", "2024-05-17 09:30:00")
            .part(
                "photo",
                Part::bytes(
                    Photo::at(
                        46.5,
                        6.6,
                        "2024:05:17 09:30:00",
                        seq.parse::<u32>().unwrap() * 10 + i,
                    )
                    .jpeg(),
                )
                .file_name(format!("IMG_{i}.jpg"))
                .mime_str("image/jpeg")
                .unwrap(),
            );
        let r = client()
            .post(kv(sb, "/1.0/photo/"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        photos.push(v["osv"]["photo"]["id"].as_str().unwrap().to_owned());
    }
    (seq, photos)
}

fn api_code(v: &Value) -> Option<&str> {
    v["status"]["apiCode"].as_str()
}

#[tokio::test]
async fn kartaview_remove_sequence_is_for_the_owner_and_final() {
    let sb = sandbox().await;
    let owner = sb.issue_token(Service::KartaView, 0);
    let other = sb.issue_token(Service::KartaView, 1);
    let (seq, photos) = kv_sequence(&sb, &owner, 2).await;
    let (keep, _) = kv_sequence(&sb, &owner, 1).await;
    let remove = "/1.0/sequence/remove/";

    let (code, v) = kv_form(&sb, remove, &[("sequenceId", &seq)]).await;
    assert_eq!((code, api_code(&v)), (401, Some("401")), "no token: {v}");
    let (code, v) = kv_form(
        &sb,
        remove,
        &[("access_token", "bogus"), ("sequenceId", &seq)],
    )
    .await;
    assert_eq!((code, api_code(&v)), (401, Some("401")), "bad token: {v}");
    let (code, v) = kv_form(
        &sb,
        remove,
        &[("access_token", &other), ("sequenceId", &seq)],
    )
    .await;
    assert_eq!(
        (code, api_code(&v)),
        (403, Some("618")),
        "not the owner: {v}"
    );
    let (code, v) = kv_form(&sb, remove, &[("access_token", &owner)]).await;
    assert_eq!((code, api_code(&v)), (400, Some("610")), "{v}");
    assert!(!sb.state().kartaview_sequence(&seq).unwrap().deleted);

    let (code, v) = kv_form(
        &sb,
        remove,
        &[("access_token", &owner), ("sequenceId", &seq)],
    )
    .await;
    assert_eq!((code, api_code(&v)), (200, Some("600")), "{v}");
    assert!(sb.state().kartaview_sequence(&seq).unwrap().deleted);

    // Gone from every read-back.
    assert_eq!(kv_get(&sb, &format!("/2.0/sequence/{seq}")).await, 404);
    assert_eq!(
        kv_get(&sb, &format!("/2.0/photo/?sequenceId={seq}&page=1")).await,
        404
    );
    assert_eq!(kv_get(&sb, &format!("/details/{seq}")).await, 404);
    let (code, v) = kv_form(&sb, "/details", &[("id", &seq)]).await;
    assert_eq!((code, api_code(&v)), (400, Some("612")));
    let (code, v) = kv_form(&sb, "/1.0/sequence/photo-list/", &[("sequenceId", &seq)]).await;
    assert_eq!((code, api_code(&v)), (400, Some("612")));
    let (_, v) = kv_form(&sb, "/my-list", &[("username", "sandbox-user")]).await;
    assert_eq!(v["totalFilteredItems"][0], 1);
    assert_eq!(v["currentPageItems"][0]["id"], keep.as_str());
    assert_eq!(kv_get(&sb, &format!("/2.0/sequence/{keep}")).await, 200);

    // A second removal, and its photos, answer "not found" (612 on the id).
    let (code, v) = kv_form(
        &sb,
        remove,
        &[("access_token", &owner), ("sequenceId", &seq)],
    )
    .await;
    assert_eq!((code, api_code(&v)), (400, Some("612")), "{v}");
    let (code, v) = kv_form(
        &sb,
        "/1.0/photo/remove/",
        &[("access_token", &owner), ("photoId", &photos[0])],
    )
    .await;
    assert_eq!((code, api_code(&v)), (400, Some("612")), "{v}");
    // Nothing more can be added to it.
    let (code, v) = kv_form(
        &sb,
        "/1.0/sequence/finished-uploading/",
        &[("access_token", &owner), ("sequenceId", &seq)],
    )
    .await;
    assert_eq!((code, api_code(&v)), (400, Some("612")), "{v}");
}

#[tokio::test]
async fn kartaview_remove_photo_is_for_the_owner_and_final() {
    let sb = sandbox().await;
    let owner = sb.issue_token(Service::KartaView, 0);
    let other = sb.issue_token(Service::KartaView, 1);
    let (seq, photos) = kv_sequence(&sb, &owner, 3).await;
    let remove = "/1.0/photo/remove/";

    let (code, v) = kv_form(&sb, remove, &[("photoId", &photos[1])]).await;
    assert_eq!((code, api_code(&v)), (401, Some("401")), "{v}");
    let (code, v) = kv_form(
        &sb,
        remove,
        &[("access_token", &other), ("photoId", &photos[1])],
    )
    .await;
    assert_eq!((code, api_code(&v)), (403, Some("618")), "{v}");
    let (code, v) = kv_form(&sb, remove, &[("access_token", &owner), ("photoId", "x")]).await;
    assert_eq!((code, api_code(&v)), (400, Some("611")), "{v}");

    let (code, v) = kv_form(
        &sb,
        remove,
        &[("access_token", &owner), ("photoId", &photos[1])],
    )
    .await;
    assert_eq!((code, api_code(&v)), (200, Some("600")), "{v}");
    let left: Vec<String> = sb
        .state()
        .kartaview_sequence(&seq)
        .unwrap()
        .photos
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(left, [photos[0].clone(), photos[2].clone()]);
    let (_, v) = kv_form(&sb, "/1.0/sequence/photo-list/", &[("sequenceId", &seq)]).await;
    let listed: Vec<&str> = v["osv"]["photos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [photos[0].as_str(), photos[2].as_str()]);
    let v2: Value = client()
        .get(kv(&sb, &format!("/2.0/photo/?sequenceId={seq}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v2["result"]["data"].as_array().unwrap().len(), 2);
    let (_, v) = kv_form(&sb, "/details", &[("id", &seq)]).await;
    assert_eq!(v["osv"]["photo_no"], "2");

    let (code, v) = kv_form(
        &sb,
        remove,
        &[("access_token", &owner), ("photoId", &photos[1])],
    )
    .await;
    assert_eq!(
        (code, api_code(&v)),
        (400, Some("612")),
        "removed twice: {v}"
    );
}

// --- Panoramax ---------------------------------------------------------------------------

fn pnx(sb: &Sandbox, path: &str) -> String {
    format!("{}/api{path}", s(&sb.urls().panoramax_instance))
}

async fn pnx_send(
    sb: &Sandbox,
    method: reqwest::Method,
    token: Option<&str>,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, pnx(sb, path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (code, v)
}

async fn pnx_get(sb: &Sandbox, token: Option<&str>, path: &str) -> (u16, Value) {
    pnx_send(sb, reqwest::Method::GET, token, path, None).await
}

/// A ready upload set of `n` pictures (one collection): the set id, the collection id and
/// the picture ids.
async fn pnx_ready_set(
    sb: &Sandbox,
    token: &str,
    n: u32,
    salt: u32,
) -> (String, String, Vec<String>) {
    let (code, set) = pnx_send(
        sb,
        reqwest::Method::POST,
        Some(token),
        "/upload_sets",
        Some(json!({"title": "Morning walk", "estimated_nb_files": n})),
    )
    .await;
    assert_eq!(code, 200, "{set}");
    let set = set["id"].as_str().unwrap().to_owned();
    let mut pictures = Vec::new();
    for i in 0..n {
        let bytes = Photo::at(
            48.85 + f64::from(i) * 0.0001,
            2.35,
            &format!("2024:05:17 10:00:{:02}", i * 4),
            salt + i,
        )
        .jpeg();
        let form = Form::new().text("isBlurred", "false").part(
            "file",
            Part::bytes(bytes)
                .file_name(format!("IMG_{i}.jpg"))
                .mime_str("image/jpeg")
                .unwrap(),
        );
        let r = client()
            .post(pnx(sb, &format!("/upload_sets/{set}/files")))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        pictures.push(v["picture_id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    let (_, v) = pnx_get(sb, Some(token), &format!("/upload_sets/{set}")).await;
    assert_eq!(v["ready"], true, "{v}");
    let col = v["associated_collections"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (set, col, pictures)
}

async fn pnx_patch(sb: &Sandbox, token: Option<String>, path: String, body: Value) -> (u16, Value) {
    pnx_send(
        sb,
        reqwest::Method::PATCH,
        token.as_deref(),
        &path,
        Some(body),
    )
    .await
}

/// The ids in a list, leaving out the seeded world's (whose Panoramax ids start with
/// `5eed`): these tests are about what uploads become.
fn ids(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .filter(|id| !id.starts_with("5eed"))
        .collect()
}

/// A collection's items, as GeoVisio pages them (`web/items.py`): all of them without
/// `limit`; with it, a page and a `next` link (`startAfterRank`) while some remain; a
/// `limit` outside 1..10000 or a rank under 1 is a 400.
#[tokio::test]
async fn panoramax_collection_items_page_with_limit_and_rank() {
    let sb = sandbox().await;
    let owner = sb.issue_token(Service::Panoramax, 0);
    let (_, col, pictures) = pnx_ready_set(&sb, &owner, 3, 40).await;
    let items = format!("/collections/{col}/items");
    let (code, all) = pnx_get(&sb, None, &items).await;
    assert_eq!(code, 200, "{all}");
    assert_eq!(ids(&all, "features"), pictures);
    assert_eq!(all["links"], json!([]));

    let (_, first) = pnx_get(&sb, None, &format!("{items}?limit=2")).await;
    assert_eq!(ids(&first, "features"), pictures[..2]);
    let next = first["links"][0].clone();
    assert_eq!(next["rel"], "next", "{first}");
    let r = client()
        .get(next["href"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let rest: Value = r.json().await.unwrap();
    assert_eq!(ids(&rest, "features"), pictures[2..]);
    assert_eq!(rest["links"], json!([]), "the last page has no next");

    for bad in ["limit=0", "limit=10001", "limit=x", "startAfterRank=0"] {
        let (code, v) = pnx_get(&sb, None, &format!("{items}?{bad}")).await;
        assert_eq!(code, 400, "{bad}: {v}");
    }
}

#[tokio::test]
async fn panoramax_patch_collection_edits_title_and_visibility() {
    let sb = sandbox().await;
    let owner = sb.issue_token(Service::Panoramax, 0);
    let other = sb.issue_token(Service::Panoramax, 1);
    let (set, col, _) = pnx_ready_set(&sb, &owner, 2, 10).await;
    let path = format!("/collections/{col}");
    let patch = |token: Option<&str>, body: Value| {
        let token = token.map(str::to_owned);
        pnx_patch(&sb, token, path.clone(), body)
    };

    let (code, v) = patch(None, json!({"title": "x"})).await;
    assert_eq!(
        (code, v["message"].as_str()),
        (401, Some("Authentication is mandatory"))
    );
    let (code, v) = patch(Some("garbage"), json!({"title": "x"})).await;
    assert_eq!(
        (code, v["message"].as_str()),
        (401, Some("Token not valid"))
    );
    let (code, v) = patch(Some(other.as_str()), json!({"title": "Not mine"})).await;
    assert_eq!(code, 403, "{v}");
    let (code, _) = patch(Some(owner.as_str()), json!({"title": "a".repeat(251)})).await;
    assert_eq!(code, 400);
    let (code, _) = patch(Some(owner.as_str()), json!({"title": 12})).await;
    assert_eq!(code, 400);
    let (code, _) = patch(Some(owner.as_str()), json!({"visibility": "friends"})).await;
    assert_eq!(code, 400);
    let (code, _) = patch(Some(owner.as_str()), json!({"visible": "maybe"})).await;
    assert_eq!(code, 400);
    // GeoVisio takes "true" or "false", not a JSON boolean.
    let (code, _) = patch(Some(owner.as_str()), json!({"visible": true})).await;
    assert_eq!(code, 400);
    let (code, _) = pnx_send(
        &sb,
        reqwest::Method::PATCH,
        Some(&owner),
        "/collections/00000000-0000-0000-0000-000000000000",
        Some(json!({"title": "x"})),
    )
    .await;
    assert_eq!(code, 404);
    assert_eq!(
        sb.state().panoramax_collection(&col).unwrap().title,
        "Morning walk"
    );

    // The title: 200 with the collection, and every read-back shows it.
    let (code, v) = patch(
        Some(owner.as_str()),
        json!({"title": "Evening walk", "unknown": 1}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["type"].as_str(), v["id"].as_str(), v["title"].as_str()),
        (Some("Collection"), Some(col.as_str()), Some("Evening walk"))
    );
    let (_, v) = pnx_get(&sb, None, &path).await;
    assert_eq!(v["title"], "Evening walk");
    let (_, v) = pnx_get(&sb, None, "/collections").await;
    assert_eq!(v["collections"][0]["title"], "Evening walk");
    let (_, v) = pnx_get(&sb, Some(&owner), &format!("/upload_sets/{set}")).await;
    assert_eq!(v["associated_collections"][0]["title"], "Evening walk");
    assert_eq!(
        sb.state().panoramax_collection(&col).unwrap().title,
        "Evening walk"
    );

    // A form body works too (GeoVisio reads JSON or a form).
    let r = client()
        .patch(pnx(&sb, &path))
        .bearer_auth(&owner)
        .form(&[("title", "Form walk")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["title"], "Form walk");

    // Hidden (`visibility` 2.11+, or `visible=false` ≤ 2.10): only the owner sees it.
    let (code, v) = patch(Some(owner.as_str()), json!({"visibility": "owner-only"})).await;
    assert_eq!(
        (code, v["geovisio:visibility"].as_str()),
        (200, Some("owner-only"))
    );
    assert_eq!(pnx_get(&sb, None, &path).await.0, 404);
    assert_eq!(pnx_get(&sb, Some(&other), &path).await.0, 404);
    assert_eq!(pnx_get(&sb, Some(&owner), &path).await.0, 200);
    let (_, v) = pnx_get(&sb, None, "/collections").await;
    assert!(ids(&v, "collections").is_empty());
    let (_, v) = pnx_get(&sb, None, "/search?bbox=2.3,48.8,2.4,48.9").await;
    assert!(ids(&v, "features").is_empty());
    let (_, v) = pnx_get(&sb, Some(&owner), "/search?bbox=2.3,48.8,2.4,48.9").await;
    assert_eq!(ids(&v, "features").len(), 2);
    // Hidden from others, but GeoVisio's PATCH finds it all the same: not theirs to change.
    let (code, v) = patch(Some(other.as_str()), json!({"visible": "true"})).await;
    assert_eq!(code, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("You're not authorized to edit those fields"),
        "{v}"
    );
    let (code, v) = patch(Some(owner.as_str()), json!({"visible": "true"})).await;
    assert_eq!(
        (code, v["geovisio:visibility"].as_str()),
        (200, Some("anyone"))
    );
    assert_eq!(pnx_get(&sb, None, &path).await.0, 200);
    let (code, _) = patch(Some(owner.as_str()), json!({"visible": "false"})).await;
    assert_eq!(code, 200);
    assert_eq!(
        sb.state().panoramax_collection(&col).unwrap().visibility,
        "owner-only"
    );
    let (code, _) = patch(Some(owner.as_str()), json!({"visibility": "logged-only"})).await;
    assert_eq!(code, 200);
    assert_eq!(pnx_get(&sb, None, &path).await.0, 404);
    assert_eq!(pnx_get(&sb, Some(&other), &path).await.0, 200);
}

#[tokio::test]
async fn panoramax_delete_collection_hides_it_everywhere() {
    let sb = sandbox().await;
    let owner = sb.issue_token(Service::Panoramax, 0);
    let other = sb.issue_token(Service::Panoramax, 1);
    let (set, col, pictures) = pnx_ready_set(&sb, &owner, 2, 20).await;
    let (_, keep, _) = pnx_ready_set(&sb, &owner, 1, 30).await;
    let path = format!("/collections/{col}");
    let delete = |token: Option<String>| {
        let (sb, path) = (&sb, path.clone());
        async move { pnx_send(sb, reqwest::Method::DELETE, token.as_deref(), &path, None).await }
    };

    assert_eq!(delete(None).await.0, 401);
    let (code, v) = delete(Some(other.clone())).await;
    assert_eq!(code, 403, "{v}");
    assert!(!sb.state().panoramax_collection(&col).unwrap().deleted);

    let (code, v) = delete(Some(owner.clone())).await;
    assert_eq!((code, v), (204, Value::Null));
    assert!(sb.state().panoramax_collection(&col).unwrap().deleted);

    // Hidden at once, from every read.
    assert_eq!(pnx_get(&sb, Some(&owner), &path).await.0, 404);
    assert_eq!(pnx_get(&sb, None, &format!("{path}/items")).await.0, 404);
    assert_eq!(
        pnx_get(&sb, None, &format!("{path}/geovisio_status"))
            .await
            .0,
        404
    );
    let (_, v) = pnx_get(&sb, None, "/collections").await;
    assert_eq!(ids(&v, "collections"), [keep]);
    let (_, v) = pnx_get(&sb, None, "/search?bbox=2.3,48.8,2.4,48.9&limit=100").await;
    let found = ids(&v, "features");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(!found.contains(&pictures[0]));
    let r = client()
        .get(pnx(&sb, &format!("/pictures/{}/hd.jpg", pictures[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_, v) = pnx_get(&sb, Some(&owner), &format!("/upload_sets/{set}")).await;
    assert_eq!(v["associated_collections"], json!([]));
    let page = client()
        .get(format!(
            "{}/?pic={}",
            s(&sb.urls().panoramax_instance),
            pictures[0]
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);

    // A second delete, and an edit, answer 404.
    assert_eq!(delete(Some(owner.clone())).await.0, 404);
    let (code, _) = pnx_send(
        &sb,
        reqwest::Method::PATCH,
        Some(&owner),
        &path,
        Some(json!({"title": "x"})),
    )
    .await;
    assert_eq!(code, 404);
    // The upload set itself is still there, and can be deleted.
    let (code, _) = pnx_send(
        &sb,
        reqwest::Method::DELETE,
        Some(&owner),
        &format!("/upload_sets/{set}"),
        None,
    )
    .await;
    assert_eq!(code, 204);
}

#[tokio::test]
async fn panoramax_delete_upload_set_is_for_the_owner_and_final() {
    // Anonymous uploads allowed: deleting still needs a token.
    let sb = sandbox_with(|c| c.panoramax_anonymous_uploads = true).await;
    let owner = sb.issue_token(Service::Panoramax, 0);
    let other = sb.issue_token(Service::Panoramax, 1);
    let (set, col, pictures) = pnx_ready_set(&sb, &owner, 2, 40).await;
    let path = format!("/upload_sets/{set}");
    let delete = |token: Option<String>| {
        let (sb, path) = (&sb, path.clone());
        async move { pnx_send(sb, reqwest::Method::DELETE, token.as_deref(), &path, None).await }
    };

    let (code, v) = delete(None).await;
    assert_eq!(
        (code, v["message"].as_str()),
        (401, Some("Authentication is mandatory"))
    );
    let (code, v) = delete(Some(other.clone())).await;
    assert_eq!(code, 403, "{v}");
    assert!(!sb.state().panoramax_upload_set(&set).unwrap().deleted);

    assert_eq!(delete(Some(owner.clone())).await.0, 204);
    assert!(sb.state().panoramax_upload_set(&set).unwrap().deleted);
    assert_eq!(pnx_get(&sb, Some(&owner), &path).await.0, 404);
    assert_eq!(
        pnx_get(&sb, Some(&owner), &format!("/collections/{col}"))
            .await
            .0,
        404
    );
    let (_, v) = pnx_get(&sb, Some(&owner), "/users/me/upload_sets").await;
    assert!(ids(&v, "upload_sets").is_empty());
    let (_, v) = pnx_get(&sb, None, "/collections").await;
    assert!(ids(&v, "collections").is_empty());
    let (_, v) = pnx_get(&sb, None, "/search?bbox=2.3,48.8,2.4,48.9").await;
    assert!(ids(&v, "features").is_empty());
    let r = client()
        .get(pnx(&sb, &format!("/pictures/{}/sd.jpg", pictures[1])))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    assert_eq!(delete(Some(owner.clone())).await.0, 404, "deleted twice");
    let (code, _) = pnx_send(
        &sb,
        reqwest::Method::DELETE,
        Some(&owner),
        "/upload_sets/00000000-0000-0000-0000-000000000000",
        None,
    )
    .await;
    assert_eq!(code, 404);
}

// --- Map the Paths Web -------------------------------------------------------------------

async fn mtpw_create(sb: &Sandbox, token: &str, name: &str) -> String {
    let r = client()
        .post(format!(
            "{}/api/v1/sequence/create/",
            s(&sb.urls().mtpw_base)
        ))
        .bearer_auth(token)
        .form(&[
            ("name", name),
            ("transport_type", "Walk"),
            ("description", "Along <the> lake"),
            ("tag", "Lake,Forest"),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["unique_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn mtpw_delete_page_deletes_the_sequence() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::Mtpw, 0);
    let id = mtpw_create(&sb, &token, "Lake loop").await;
    let keep = mtpw_create(&sb, &token, "Other").await;
    let base = s(&sb.urls().mtpw_base);
    let page_url = format!("{base}/sequence/{id}/detail");
    let delete_url = format!("{base}/sequence/{id}/delete");

    // As mtp-web routes them: the detail page; a bare `/sequence/<id>` is no page.
    assert_eq!(
        client()
            .get(format!("{base}/sequence/{id}"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = client().get(&page_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Lake loop") && html.contains("Along &lt;the&gt; lake"),
        "{html}"
    );
    assert!(html.contains("Lake, Forest"), "{html}");
    // Its Delete button is a form that POSTs to the delete address.
    assert!(html.contains("id=\"confirm-delete\""), "{html}");
    assert!(
        html.contains(&format!("method=\"post\" action=\"{delete_url}\"")),
        "{html}"
    );

    // Opening the delete address deletes nothing: back to the list.
    let r = client().get(&delete_url).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), format!("{base}/sequence/"));
    assert!(!sb.state().mtpw_sequence(&id).unwrap().deleted);

    // The button's POST deletes (a browser session: no token needed), then the list.
    let r = client().post(&delete_url).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(location(&r), format!("{base}/sequence/"));
    assert!(sb.state().mtpw_sequence(&id).unwrap().deleted);
    assert!(!sb.state().mtpw_sequence(&keep).unwrap().deleted);
    let list = client()
        .get(format!("{base}/sequence/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("Other") && !list.contains("Lake loop"),
        "{list}"
    );

    // Gone: its page, its delete address, a second delete, and the API.
    assert_eq!(client().get(&page_url).send().await.unwrap().status(), 404);
    assert_eq!(
        client().get(&delete_url).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        client().post(&delete_url).send().await.unwrap().status(),
        404
    );
    let r = client()
        .put(format!("{base}/api/v1/sequence/import/{id}/"))
        .bearer_auth(&token)
        .json(&json!({"strava": "123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500, "an unknown id on import raises");
    let unknown = format!("{base}/sequence/nope/delete");
    assert_eq!(client().post(&unknown).send().await.unwrap().status(), 404);
}

// --- Restarts and faults -----------------------------------------------------------------

/// A fresh state folder, removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start(dir: &Path) -> Sandbox {
    let dir = dir.to_owned();
    sandbox_with(move |c| c.state_dir = Some(dir)).await
}

#[tokio::test]
async fn deletions_and_edits_survive_a_restart() {
    let dir = TempDir(std::env::temp_dir().join(format!(
        "mtp-sandbox-editdel-{}",
        uuid::Uuid::new_v4().simple()
    )));
    let sb = start(&dir.0).await;
    let kv_token = sb.issue_token(Service::KartaView, 0);
    let pnx_token = sb.issue_token(Service::Panoramax, 0);
    let mtpw_token = sb.issue_token(Service::Mtpw, 0);
    let (seq, photos) = kv_sequence(&sb, &kv_token, 2).await;
    let (kept_seq, _) = kv_sequence(&sb, &kv_token, 1).await;
    let (_, col, _) = pnx_ready_set(&sb, &pnx_token, 1, 50).await;
    let (set2, col2, _) = pnx_ready_set(&sb, &pnx_token, 1, 60).await;
    let mtpw_id = mtpw_create(&sb, &mtpw_token, "Lake loop").await;

    let (code, _) = kv_form(
        &sb,
        "/1.0/sequence/remove/",
        &[("access_token", &kv_token), ("sequenceId", &seq)],
    )
    .await;
    assert_eq!(code, 200);
    let kept_photo = sb.state().kartaview_sequence(&kept_seq).unwrap().photos[0]
        .id
        .clone();
    let (code, _) = kv_form(
        &sb,
        "/1.0/photo/remove/",
        &[("access_token", &kv_token), ("photoId", &kept_photo)],
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = pnx_send(
        &sb,
        reqwest::Method::PATCH,
        Some(&pnx_token),
        &format!("/collections/{col}"),
        Some(json!({"title": "Renamed"})),
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = pnx_send(
        &sb,
        reqwest::Method::DELETE,
        Some(&pnx_token),
        &format!("/collections/{col2}"),
        None,
    )
    .await;
    assert_eq!(code, 204);
    let r = client()
        .post(format!(
            "{}/sequence/{mtpw_id}/delete",
            s(&sb.urls().mtpw_base)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    drop(sb);

    let sb = start(&dir.0).await;
    assert!(sb.state().kartaview_sequence(&seq).unwrap().deleted);
    assert_eq!(kv_get(&sb, &format!("/2.0/sequence/{seq}")).await, 404);
    let (code, v) = kv_form(
        &sb,
        "/1.0/photo/remove/",
        &[("access_token", &kv_token), ("photoId", &photos[1])],
    )
    .await;
    assert_eq!((code, api_code(&v)), (400, Some("612")));
    assert!(
        sb.state()
            .kartaview_sequence(&kept_seq)
            .unwrap()
            .photos
            .is_empty()
    );
    let (_, v) = pnx_get(&sb, None, &format!("/collections/{col}")).await;
    assert_eq!(v["title"], "Renamed");
    assert_eq!(
        pnx_get(&sb, None, &format!("/collections/{col2}")).await.0,
        404
    );
    assert!(sb.state().panoramax_collection(&col2).unwrap().deleted);
    let (_, v) = pnx_get(&sb, Some(&pnx_token), &format!("/upload_sets/{set2}")).await;
    assert_eq!(v["associated_collections"], json!([]));
    assert!(sb.state().mtpw_sequence(&mtpw_id).unwrap().deleted);
    let page = client()
        .get(format!("{}/sequence/{mtpw_id}", s(&sb.urls().mtpw_base)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
}

#[tokio::test]
async fn edit_and_delete_endpoints_take_injected_faults() {
    let sb = sandbox().await;
    let kv_token = sb.issue_token(Service::KartaView, 0);
    let pnx_token = sb.issue_token(Service::Panoramax, 0);
    let mtpw_token = sb.issue_token(Service::Mtpw, 0);
    let (seq, photos) = kv_sequence(&sb, &kv_token, 1).await;
    let (set, col, _) = pnx_ready_set(&sb, &pnx_token, 1, 70).await;
    let mtpw_id = mtpw_create(&sb, &mtpw_token, "Lake loop").await;
    sb.faults()
        .apply_spec(
            "kartaview.sequence_remove:fail_next=1,status=503; \
             kartaview.photo_remove:fail_next=1,status=502; \
             panoramax.collection_patch:fail_next=1,status=503; \
             panoramax.collection_delete:fail_next=1,status=503; \
             panoramax.upload_set_delete:fail_next=1,status=503; \
             mtpw.sequence_delete_page:fail_next=1,status=503; \
             mtpw.sequence_delete:fail_next=1,status=503",
        )
        .unwrap();

    let seq_form = [
        ("access_token", kv_token.as_str()),
        ("sequenceId", seq.as_str()),
    ];
    let photo_form = [
        ("access_token", kv_token.as_str()),
        ("photoId", photos[0].as_str()),
    ];
    let status = |r: reqwest::Response| r.status().as_u16();
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let url = kv(&sb, &path);
        async move { client().post(url).form(&form).send().await.unwrap() }
    };
    let seq_form: Vec<(&'static str, String)> = seq_form
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    let photo_form: Vec<(&'static str, String)> = photo_form
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect();
    assert_eq!(
        status(post("/1.0/photo/remove/".into(), photo_form.clone()).await),
        502
    );
    assert_eq!(
        status(post("/1.0/photo/remove/".into(), photo_form).await),
        200
    );
    assert_eq!(
        status(post("/1.0/sequence/remove/".into(), seq_form.clone()).await),
        503
    );
    assert!(
        !sb.state().kartaview_sequence(&seq).unwrap().deleted,
        "the fault ran no handler"
    );
    assert_eq!(
        status(post("/1.0/sequence/remove/".into(), seq_form).await),
        200
    );

    for (method, path, ok) in [
        (reqwest::Method::PATCH, format!("/collections/{col}"), 200),
        (reqwest::Method::DELETE, format!("/collections/{col}"), 204),
        (reqwest::Method::DELETE, format!("/upload_sets/{set}"), 204),
    ] {
        let body = (method == reqwest::Method::PATCH).then(|| json!({"title": "t"}));
        let (code, _) = pnx_send(&sb, method.clone(), Some(&pnx_token), &path, body.clone()).await;
        assert_eq!(code, 503, "{method} {path}");
        let (code, _) = pnx_send(&sb, method.clone(), Some(&pnx_token), &path, body).await;
        assert_eq!(code, ok, "{method} {path}");
    }

    let delete_url = format!("{}/sequence/{mtpw_id}/delete", s(&sb.urls().mtpw_base));
    assert_eq!(
        client().get(&delete_url).send().await.unwrap().status(),
        503
    );
    assert_eq!(
        client().get(&delete_url).send().await.unwrap().status(),
        302
    );
    assert_eq!(
        client().post(&delete_url).send().await.unwrap().status(),
        503
    );
    assert!(!sb.state().mtpw_sequence(&mtpw_id).unwrap().deleted);
    assert_eq!(
        client().post(&delete_url).send().await.unwrap().status(),
        302
    );
    assert!(sb.state().mtpw_sequence(&mtpw_id).unwrap().deleted);
}
