//! The Panoramax (GeoVisio) emulator, driven by hand-written requests from PROTOCOLS.md §4.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{DELAY, Photo, client, md5_hex, s, sandbox, sandbox_with};
use mtp_sandbox::{Sandbox, Service};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

fn api(sb: &Sandbox, path: &str) -> String {
    format!("{}/api{path}", s(&sb.urls().panoramax_instance))
}

async fn create_set(sb: &Sandbox, token: &str, body: Value) -> (u16, Option<String>, Value) {
    let r = client()
        .post(api(sb, "/upload_sets"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let loc = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (r.status().as_u16(), loc, r.json().await.unwrap())
}

/// A new upload set's id (created with `body`, which must be accepted).
async fn new_set(sb: &Sandbox, token: &str, body: Value) -> String {
    let (code, _, set) = create_set(sb, token, body).await;
    assert_eq!(code, 200, "{set}");
    set["id"].as_str().unwrap().to_owned()
}

async fn send_file(
    sb: &Sandbox,
    token: Option<&str>,
    set: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let form = Form::new().text("isBlurred", "false").part(
        "file",
        Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let mut req = client()
        .post(api(sb, &format!("/upload_sets/{set}/files")))
        .multipart(form);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn get_json(sb: &Sandbox, token: Option<&str>, path: &str) -> (u16, Value) {
    let mut req = client().get(api(sb, path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A new upload set of `n` photos, `IMG_0.jpg`…, each accepted: it completes itself.
async fn set_of_photos(sb: &Sandbox, token: &str, title: &str, n: u32) -> String {
    let id = new_set(sb, token, json!({"title": title, "estimated_nb_files": n})).await;
    for i in 0..n {
        let (code, v) = send_file(sb, Some(token), &id, &format!("IMG_{i}.jpg"), photo(i, i)).await;
        assert_eq!(code, 202, "{v}");
    }
    id
}

fn photo(i: u32, sec: u32) -> Vec<u8> {
    Photo::at(
        48.85 + f64::from(i) * 0.0001,
        2.35,
        &format!("2024:05:17 10:{:02}:{:02}", sec / 60, sec % 60),
        i,
    )
    .jpeg()
}

#[tokio::test]
async fn discovery_and_token_flow() {
    let sb = sandbox().await;
    let (code, v) = get_json(&sb, None, "").await;
    assert_eq!((code, v["type"].as_str()), (200, Some("Catalog")));
    let (_, v) = get_json(&sb, None, "/configuration").await;
    assert_eq!(
        v["defaults"],
        json!({"duplicate_distance": 1.0, "duplicate_rotation": 60, "split_distance": 100, "split_time": 300})
    );
    assert_eq!(v["license"]["id"], "CC-BY-SA-4.0");
    let (code, v) = get_json(&sb, None, "/users/me").await;
    assert_eq!(
        (code, v["message"].as_str()),
        (401, Some("Authentication is mandatory"))
    );
    let (code, v) = get_json(&sb, Some("garbage"), "/users/me").await;
    assert_eq!(
        (code, v["message"].as_str()),
        (401, Some("Token not valid"))
    );

    // Generate → (unclaimed: 403) → claim page → claimed.
    let r = client()
        .post(api(&sb, "/auth/tokens/generate?description=cli"))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let jwt = v["jwt_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt.split('.').count(), 3);
    let claim = v["links"][0]["href"].as_str().unwrap().to_owned();
    let (code, _) = get_json(&sb, Some(&jwt), "/users/me").await;
    assert_eq!(code, 403);
    let page = client()
        .get(&claim)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Approve as sandbox-user"));
    let r = client()
        .post(&claim)
        .form(&[("decision", "approve"), ("user", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (code, v) = get_json(&sb, Some(&jwt), "/users/me").await;
    assert_eq!(code, 200);
    assert_eq!(v["name"], "sandbøx-ünïcode");
    let (_, v) = get_json(&sb, Some(&jwt), "/users/me/tokens").await;
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|t| t["description"] == "cli")
    );
}

#[tokio::test]
async fn upload_set_lifecycle_to_ready() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::Panoramax, 0);
    let (code, loc, set) = create_set(
        &sb,
        &token,
        json!({"title": "Morning walk", "estimated_nb_files": 3, "sort_method": "time-asc",
               "visibility": "anyone", "semantics": [{"key": "transport", "value": "walk"}]}),
    )
    .await;
    assert_eq!(code, 200, "{set}");
    let id = set["id"].as_str().unwrap().to_owned();
    assert!(loc.unwrap().ends_with(&format!("/api/upload_sets/{id}")));
    assert_eq!(set["completed"], false);
    let rels: Vec<&str> = set["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    assert_eq!(rels, ["self", "edit", "add_files", "complete", "delete"]);

    let p0 = photo(0, 0);
    let (code, v) = send_file(&sb, Some(&token), &id, "IMG_0.jpg", p0.clone()).await;
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["content_md5"], md5_hex(&p0).as_str());
    assert_eq!(v["file_type"], "picture");
    let pic0 = v["picture_id"].as_str().unwrap().to_owned();

    // Same bytes in the same set: 409 with the existing item, not tracked.
    let (code, v) = send_file(&sb, Some(&token), &id, "IMG_0_again.jpg", p0.clone()).await;
    assert_eq!(code, 409);
    assert_eq!(v["existing_item"]["id"], pic0.as_str());

    let (code, _) = send_file(&sb, Some(&token), &id, "IMG_1.jpg", photo(1, 4)).await;
    assert_eq!(code, 202);
    let (_, v) = get_json(&sb, Some(&token), &format!("/upload_sets/{id}")).await;
    assert_eq!(
        (v["completed"].as_bool(), v["nb_items"].as_u64()),
        (Some(false), Some(2))
    );
    // The third file reaches estimated_nb_files: the set completes by itself.
    let (code, _) = send_file(&sb, Some(&token), &id, "IMG_2.jpg", photo(2, 8)).await;
    assert_eq!(code, 202);
    let (_, v) = get_json(&sb, Some(&token), &format!("/upload_sets/{id}")).await;
    assert_eq!(v["completed"], true);
    assert_eq!(v["dispatched"], false);
    assert_eq!(v["associated_collections"], json!([]));

    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    let (_, v) = get_json(&sb, Some(&token), &format!("/upload_sets/{id}")).await;
    assert_eq!(
        (v["dispatched"].as_bool(), v["ready"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(v["items_status"]["prepared"], 3);
    let cols = v["associated_collections"].as_array().unwrap();
    assert_eq!(cols.len(), 1);
    assert_eq!(cols[0]["nb_items"], 3);
    let col = cols[0]["id"].as_str().unwrap().to_owned();

    let (code, c) = get_json(&sb, None, &format!("/collections/{col}")).await;
    assert_eq!(code, 200);
    assert_eq!(c["geovisio:status"], "ready");
    assert_eq!(c["stats:items"]["count"], 3);
    let (_, items) = get_json(&sb, None, &format!("/collections/{col}/items")).await;
    let f0 = &items["features"][0];
    assert_eq!(f0["id"], pic0.as_str());
    assert_eq!(f0["properties"]["original_file:name"], "IMG_0.jpg");
    assert_eq!(f0["properties"]["view:azimuth"], 90.0);
    let hd = client()
        .get(f0["assets"]["hd"]["href"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(md5_hex(&hd.bytes().await.unwrap()), md5_hex(&p0));

    let (_, files) = get_json(&sb, Some(&token), &format!("/upload_sets/{id}/files")).await;
    assert_eq!(files["files"].as_array().unwrap().len(), 3);
    assert_eq!(files["files"][0]["picture_id"], pic0.as_str());
    let (_, anon) = get_json(&sb, None, &format!("/upload_sets/{id}/files")).await;
    assert!(
        anon["files"][0].get("picture_id").is_none(),
        "picture_id is for the owner only"
    );

    let r = client()
        .delete(api(&sb, &format!("/upload_sets/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (code, _) = get_json(&sb, Some(&token), &format!("/upload_sets/{id}")).await;
    assert_eq!(code, 404);
    assert!(sb.state().panoramax_upload_set(&id).unwrap().deleted);
}

/// GeoVisio keeps one file per name in an upload set: other bytes under a taken name are
/// refused (409, not tracked); a rejected file's name may be sent again, replacing its row;
/// the set completes when its files number exactly the estimate.
#[tokio::test]
async fn one_file_per_name_in_an_upload_set() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::Panoramax, 0);
    let id = new_set(
        &sb,
        &token,
        json!({"title": "Names", "estimated_nb_files": 3}),
    )
    .await;
    let (code, v) = send_file(&sb, Some(&token), &id, "IMG_0001.jpg", photo(0, 0)).await;
    assert_eq!(code, 202, "{v}");
    let first = v["picture_id"].as_str().unwrap().to_owned();

    // Another photo under the same name (two folders of one camera): refused, not tracked.
    let (code, v) = send_file(&sb, Some(&token), &id, "IMG_0001.jpg", photo(1, 4)).await;
    assert_eq!(code, 409, "{v}");
    assert_eq!(
        v["message"],
        "A different picture with the same name has already been added to this uploadset"
    );
    assert_eq!(v["existing_item"]["id"], first.as_str());
    // The same bytes again (a lost reply, sent again): the same-set duplicate answer.
    let (code, v) = send_file(&sb, Some(&token), &id, "IMG_0001.jpg", photo(0, 0)).await;
    assert_eq!(code, 409);
    assert_eq!(
        v["message"],
        "The item has already been added to this upload set"
    );
    // Not a picture, under the taken name: refused the same way.
    let (code, _) = send_file(&sb, Some(&token), &id, "IMG_0001.jpg", b"text".to_vec()).await;
    assert_eq!(code, 409);

    // A rejected file, then the right one under its name: one row, replaced.
    let (code, _) = send_file(&sb, Some(&token), &id, "IMG_0002.jpg", b"text".to_vec()).await;
    assert_eq!(code, 400);
    let (code, _) = send_file(&sb, Some(&token), &id, "IMG_0002.jpg", photo(2, 8)).await;
    assert_eq!(code, 202);
    let (_, files) = get_json(&sb, Some(&token), &format!("/upload_sets/{id}/files")).await;
    let files = files["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files.iter().all(|f| f.get("rejected").is_none()),
        "{files:?}"
    );
    let (_, v) = get_json(&sb, Some(&token), &format!("/upload_sets/{id}")).await;
    assert_eq!(v["completed"], false, "2 files of the 3 expected");

    let (code, _) = send_file(&sb, Some(&token), &id, "IMG_0003.jpg", photo(3, 12)).await;
    assert_eq!(code, 202);
    let (_, v) = get_json(&sb, Some(&token), &format!("/upload_sets/{id}")).await;
    assert_eq!(v["completed"], true);

    // A picture id that is taken: 409, as GeoVisio answers it.
    let other = new_set(
        &sb,
        &token,
        json!({"title": "Ids", "estimated_nb_files": 2}),
    )
    .await;
    let form = Form::new().text("picture_id", first.clone()).part(
        "file",
        Part::bytes(photo(4, 16))
            .file_name("IMG_0004.jpg")
            .mime_str("image/jpeg")
            .unwrap(),
    );
    let r = client()
        .post(api(&sb, &format!("/upload_sets/{other}/files")))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"], "A picture with the same ID already exists");
}

/// `GET /api/users/me/upload_sets` lists, as GeoVisio, the sets not dispatched yet (unless
/// `filter` asks for the others), oldest first, at most `limit` (100 by default, ≤ 1000).
#[tokio::test]
async fn my_upload_sets_are_the_undispatched_ones_oldest_first() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::Panoramax, 0);
    let mut sets = Vec::new();
    for title in ["First", "Second", "Third"] {
        sets.push(
            new_set(
                &sb,
                &token,
                json!({"title": title, "estimated_nb_files": 1}),
            )
            .await,
        );
    }
    // The second one gets its file: it completes, then is dispatched.
    let (code, _) = send_file(&sb, Some(&token), &sets[1], "IMG_0.jpg", photo(0, 0)).await;
    assert_eq!(code, 202);
    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    let listed = |v: &Value| -> Vec<String> {
        v["upload_sets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, v) = get_json(&sb, Some(&token), "/users/me/upload_sets").await;
    assert_eq!(listed(&v), [sets[0].clone(), sets[2].clone()]);
    let (_, v) = get_json(
        &sb,
        Some(&token),
        "/users/me/upload_sets?filter=dispatched%20%3D%20TRUE",
    )
    .await;
    assert_eq!(listed(&v), [sets[1].clone()]);
    let (_, v) = get_json(&sb, Some(&token), "/users/me/upload_sets?limit=1").await;
    assert_eq!(listed(&v), [sets[0].clone()]);
    let (code, _) = get_json(&sb, Some(&token), "/users/me/upload_sets?limit=1001").await;
    assert_eq!(code, 400);
}

/// As GeoVisio: a collection still being prepared is in no public list and shows its
/// pictures to its owner only; once ready, to everyone.
#[tokio::test]
async fn a_collection_being_prepared_is_its_owners_only() {
    let sb = sandbox_with(|c| c.processing_delay = Duration::from_secs(4)).await;
    let token = sb.issue_token(Service::Panoramax, 0);
    let id = new_set(
        &sb,
        &token,
        json!({"title": "Preparing", "estimated_nb_files": 1}),
    )
    .await;
    let (code, _) = send_file(&sb, Some(&token), &id, "IMG_0.jpg", photo(0, 0)).await;
    assert_eq!(code, 202);
    let phase = || async {
        let (_, v) = get_json(&sb, Some(&token), &format!("/upload_sets/{id}")).await;
        (v["dispatched"] == true, v["ready"] == true, v)
    };
    // Bounded only so that a broken emulator fails instead of hanging.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let set = loop {
        let (dispatched, _, v) = phase().await;
        if dispatched {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never dispatched: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(set["ready"], false, "{set}");
    let col = set["associated_collections"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = |v: &Value| {
        v["collections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == col.as_str())
    };
    let items = format!("/collections/{col}/items");
    let (_, v) = get_json(&sb, None, "/collections").await;
    assert!(!listed(&v), "{v}");
    assert_eq!(get_json(&sb, None, &items).await.0, 404);
    assert_eq!(get_json(&sb, Some(&token), &items).await.0, 200);
    assert_eq!(
        get_json(&sb, None, &format!("/collections/{col}")).await.0,
        200
    );

    while !phase().await.1 {
        assert!(std::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, v) = get_json(&sb, None, "/collections").await;
    assert!(listed(&v), "{v}");
    assert_eq!(get_json(&sb, None, &items).await.0, 200);
}

/// A picture whose preparation fails ends `broken` and, as in GeoVisio 2.15.1 (its dispatch
/// does not filter on status), in its sequence all the same: its owner's lists show it as
/// broken, everyone else's and the search leave it out.
#[tokio::test]
async fn a_broken_picture_is_in_its_sequence_for_its_owner_only() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::Panoramax, 0);
    sb.state().panoramax_break_next_pictures(1);
    let id = set_of_photos(&sb, &token, "One broken", 3).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let set = loop {
        let (_, v) = get_json(&sb, Some(&token), &format!("/upload_sets/{id}")).await;
        if v["ready"] == true {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(set["items_status"]["broken"], 1, "{set}");
    assert_eq!(set["items_status"]["prepared"], 2, "{set}");
    let (_, listed) = get_json(&sb, Some(&token), "/users/me/collection").await;
    let child = &listed["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "child")
        .unwrap()
        .clone();
    assert!(
        child["geovisio:length_km"].as_f64().is_some(),
        "ready, measured: {child}"
    );
    let col = set["associated_collections"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(set["associated_collections"][0]["nb_items"], 3, "{set}");

    let statuses = |v: &Value| -> Vec<String> {
        v["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                f["properties"]["geovisio:status"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let items = format!("/collections/{col}/items");
    let (_, mine) = get_json(&sb, Some(&token), &items).await;
    let mut seen = statuses(&mine);
    seen.sort();
    assert_eq!(seen, ["broken", "ready", "ready"], "{mine}");
    let (_, public) = get_json(&sb, None, &items).await;
    assert_eq!(statuses(&public), ["ready", "ready"], "{public}");
    let other = sb.issue_token(Service::Panoramax, 1);
    let (_, theirs) = get_json(&sb, Some(&other), &items).await;
    assert_eq!(statuses(&theirs), ["ready", "ready"], "{theirs}");
    let (_, col_json) = get_json(&sb, None, &format!("/collections/{col}")).await;
    assert_eq!(col_json["stats:items"]["count"], 2, "{col_json}");
    let (_, status) = get_json(
        &sb,
        Some(&token),
        &format!("/collections/{col}/geovisio_status"),
    )
    .await;
    let broken: Vec<&Value> = status["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "broken")
        .collect();
    assert_eq!(broken.len(), 1, "{status}");
    assert_eq!(broken[0]["nb_errors"], 5);
    // The search shows ready pictures only, to anyone, the owner included.
    for reader in [None, Some(token.as_str())] {
        let (_, found) = get_json(&sb, reader, &format!("/search?collections={col}")).await;
        assert_eq!(statuses(&found), ["ready", "ready"], "{found}");
    }
}

/// The account's sequence list gives a sequence's length once its line exists, i.e. once
/// its pictures are prepared (GeoVisio's `ST_Length(geom)`, null before and then left out);
/// its picture count from the start.
#[tokio::test]
async fn a_sequence_being_prepared_has_no_length_yet() {
    // Dispatched (listed) from half the delay, ready at its end: 2 s to look.
    let sb = sandbox_with(|c| c.processing_delay = Duration::from_secs(4)).await;
    let token = sb.issue_token(Service::Panoramax, 0);
    set_of_photos(&sb, &token, "Slow", 2).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let v = loop {
        let (code, v) = get_json(&sb, Some(&token), "/users/me/collection").await;
        if code == 200 {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "never listed: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let child = v["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "child")
        .unwrap_or_else(|| panic!("no sequence listed: {v}"));
    assert_eq!(child["geovisio:status"], "preparing", "{child}");
    assert_eq!(child["stats:items"]["count"], 2, "{child}");
    assert!(child.get("geovisio:length_km").is_none(), "{child}");
}

#[tokio::test]
async fn duplicates_across_sets_and_rejections() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::Panoramax, 0);
    let a = new_set(&sb, &token, json!({"title": "A"})).await;
    let b = new_set(&sb, &token, json!({"title": "B"})).await;
    let p = photo(5, 0);
    assert_eq!(
        send_file(&sb, Some(&token), &a, "x.jpg", p.clone()).await.0,
        202
    );

    // The same bytes in another set: 409 file_duplicate, tracked as rejected.
    let (code, v) = send_file(&sb, Some(&token), &b, "x.jpg", p.clone()).await;
    assert_eq!(code, 409);
    assert_eq!(
        v["message"],
        "The same picture has already been sent in a past upload"
    );
    assert_eq!(v["upload_sets"][0]["upload_set_id"], a.as_str());

    // At 0, 0 ("null island"): no position to GeoVisio.
    let (code, v) = send_file(
        &sb,
        Some(&token),
        &b,
        "null-island.jpg",
        Photo::at(0.0, 0.0, "2024:05:17 10:00:00", 76).jpeg(),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(v["details"]["missing_fields"], json!(["location"]));

    // No GPS, no date, not a JPEG: 400, tracked.
    let mut no_gps = Photo::at(1.0, 1.0, "2024:05:17 10:00:00", 77);
    no_gps.gps = false;
    let (code, v) = send_file(&sb, Some(&token), &b, "nogps.jpg", no_gps.jpeg()).await;
    assert_eq!(code, 400);
    assert_eq!(v["details"]["missing_fields"], json!(["location"]));
    let mut no_date = Photo::at(1.0, 1.0, "", 78);
    no_date.date = false;
    let (code, v) = send_file(&sb, Some(&token), &b, "nodate.jpg", no_date.jpeg()).await;
    assert_eq!(
        (code, v["details"]["missing_fields"].clone()),
        (400, json!(["datetime"]))
    );
    let (code, _) = send_file(&sb, Some(&token), &b, "notes.txt", b"hello".to_vec()).await;
    assert_eq!(code, 400);

    // Overrides rescue a picture without GPS.
    let mut rescued = Photo::at(1.0, 1.0, "2024:05:17 10:00:00", 79);
    rescued.gps = false;
    let form = Form::new()
        .text("isBlurred", "false")
        .text("override_latitude", "45.1")
        .text("override_longitude", "5.2")
        .part(
            "file",
            Part::bytes(rescued.jpeg())
                .file_name("r.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let r = client()
        .post(api(&sb, &format!("/upload_sets/{b}/files")))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let (_, files) = get_json(&sb, Some(&token), &format!("/upload_sets/{b}/files")).await;
    let reasons: Vec<Value> = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rejected"]["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        [
            json!("file_duplicate"),
            json!("invalid_metadata"),
            json!("invalid_metadata"),
            json!("invalid_metadata"),
            json!("invalid_file"),
            Value::Null
        ]
    );
    let (_, set) = get_json(&sb, Some(&token), &format!("/upload_sets/{b}")).await;
    assert_eq!(set["items_status"]["rejected"], 5);

    // Not the owner; not multipart; unknown set.
    let other = sb.issue_token(Service::Panoramax, 1);
    assert_eq!(
        send_file(&sb, Some(&other), &a, "y.jpg", photo(6, 0))
            .await
            .0,
        403
    );
    let r = client()
        .post(api(&sb, &format!("/upload_sets/{a}/files")))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        send_file(
            &sb,
            Some(&token),
            "00000000-0000-0000-0000-000000000000",
            "z.jpg",
            photo(7, 0)
        )
        .await
        .0,
        404
    );
    assert_eq!(send_file(&sb, None, &a, "z.jpg", photo(7, 0)).await.0, 401);
}

#[tokio::test]
async fn complete_splits_and_deduplicates() {
    let sb = sandbox_with(|c| c.processing_delay = Duration::ZERO).await;
    let token = sb.issue_token(Service::Panoramax, 0);
    let id = new_set(&sb, &token, json!({"title": "Split", "split_time": 60})).await;
    // Two pictures 2 s apart, one at the same place as the second (a capture duplicate), and
    // one ten minutes later (a new collection).
    let mut dup = Photo::at(48.8501, 2.35, "2024:05:17 10:00:03", 102);
    dup.heading = Some(95.0);
    for (name, bytes) in [
        ("a.jpg", photo(0, 0)),
        ("b.jpg", photo(1, 2)),
        ("c.jpg", dup.jpeg()),
        ("d.jpg", photo(3, 600)),
    ] {
        assert_eq!(send_file(&sb, Some(&token), &id, name, bytes).await.0, 202);
    }
    let r = client()
        .post(api(&sb, &format!("/upload_sets/{id}/complete")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ready"], true);
    let sizes: Vec<u64> = v["associated_collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["nb_items"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [2, 1]);
    let st = sb.state().panoramax_upload_set(&id).unwrap();
    assert_eq!(st.files[2].rejected.as_deref(), Some("capture_duplicate"));

    // A later file reopens the set.
    assert_eq!(
        send_file(&sb, Some(&token), &id, "e.jpg", photo(9, 900))
            .await
            .0,
        202
    );
    let (_, v) = get_json(&sb, Some(&token), &format!("/upload_sets/{id}")).await;
    assert_eq!(v["completed"], false);
}

/// GeoVisio's rules for a new upload set (`web/upload_set.py`): JSON only, unknown keys
/// ignored, and `no_split` / `no_deduplication` not with the settings they switch off.
#[tokio::test]
async fn an_upload_set_is_created_from_json_as_geovisio_checks_it() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::Panoramax, 0);
    let r = client()
        .post(api(&sb, "/upload_sets"))
        .bearer_auth(&token)
        .form(&[("title", "A form")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["message"],
        "Parameter for creating an UploadSet should be a valid JSON"
    );
    let (code, _, v) = create_set(
        &sb,
        &token,
        json!({"title": "New key", "a_later_option": true}),
    )
    .await;
    assert_eq!(code, 200, "unknown keys are ignored: {v}");
    for (body, words) in [
        (
            json!({"title": "x", "no_split": true, "split_distance": 5}),
            "The `no_split` parameter is incompatible",
        ),
        (
            json!({"title": "x", "no_deduplication": true, "duplicate_rotation": 30}),
            "The `no_deduplication` parameter is incompatible",
        ),
    ] {
        let (code, _, v) = create_set(&sb, &token, body).await;
        assert_eq!(code, 400, "{v}");
        assert!(v["message"].as_str().unwrap().starts_with(words), "{v}");
    }
    // What the app sends.
    let (code, _, v) = create_set(
        &sb,
        &token,
        json!({"title": "Walk", "estimated_nb_files": 3, "sort_method": "time-asc",
               "no_split": true, "no_deduplication": true}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
}

#[tokio::test]
async fn anonymous_uploads_when_enabled() {
    let sb = sandbox_with(|c| c.panoramax_anonymous_uploads = true).await;
    let r = client()
        .post(api(&sb, "/upload_sets"))
        .json(&json!({"title": "anon"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(send_file(&sb, None, &id, "a.jpg", photo(0, 0)).await.0, 202);
    assert_eq!(
        sb.state().panoramax_upload_set(&id).unwrap().user,
        "sandbox-user"
    );
    let token = sb.issue_token(Service::Panoramax, 0);
    let (code, _, v) =
        create_set(&sb, &token, json!({"title": "x", "sort_method": "random"})).await;
    assert_eq!(code, 400, "{v}");
    let (code, _, _) = create_set(&sb, &token, json!({"estimated_nb_files": 2})).await;
    assert_eq!(code, 400, "title is required");
}
