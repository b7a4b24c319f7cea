//! The Mapillary emulator, driven by hand-written requests from PROTOCOLS.md §2.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Photo, client, location, md5_hex, param, s, sandbox, sandbox_with};
use mtp_sandbox::{MAPILLARY_CLIENT_SECRET, Sandbox, Service};
use serde_json::{Value, json};

const REDIRECT: &str = "app.mtp.desktop://app";

async fn authorize_code(sb: &Sandbox, user: &str, state: &str) -> String {
    authorize_code_scoped(sb, user, state, None).await
}

/// The authorize page, then its Approve button; `scope` is sent on both when given.
async fn authorize_code_scoped(
    sb: &Sandbox,
    user: &str,
    state: &str,
    scope: Option<&str>,
) -> String {
    let c = client();
    let urls = sb.urls();
    let mut query = vec![
        ("client_id", "1001"),
        ("response_type", "code"),
        ("state", state),
        ("redirect_uri", REDIRECT),
    ];
    query.extend(scope.map(|s| ("scope", s)));
    let page = c
        .get(urls.mapillary_authorize.clone())
        .query(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Approve as sandbox-user"), "{html}");
    let mut form = vec![
        ("client_id", "1001"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("state", state),
        ("decision", "approve"),
        ("user", user),
    ];
    form.extend(scope.map(|s| ("scope", s)));
    let resp = c
        .post(format!("{}/mapillary/connect/decision", s(&urls.base)))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let loc = location(&resp);
    assert!(loc.starts_with("app.mtp.desktop://app?"), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some(state));
    param(&loc, "code").unwrap()
}

async fn exchange(sb: &Sandbox, code: &str) -> reqwest::Response {
    client()
        .post(sb.urls().mapillary_token)
        .header("Authorization", format!("OAuth {MAPILLARY_CLIENT_SECRET}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "1001"),
            ("code", code),
        ])
        .send()
        .await
        .unwrap()
}

async fn login(sb: &Sandbox) -> String {
    let code = authorize_code(sb, "0", "st").await;
    let v: Value = exchange(sb, &code).await.json().await.unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

async fn offset(sb: &Sandbox, token: &str, key: &str) -> u64 {
    let r = client()
        .get(format!("{}/{key}", s(&sb.urls().mapillary_upload)))
        .header("Authorization", format!("OAuth {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["offset"].as_u64().unwrap()
}

async fn post_bytes(
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

async fn upload(sb: &Sandbox, token: &str, key: &str, bytes: &[u8]) -> String {
    let off = offset(sb, token, key).await;
    let r = post_bytes(sb, token, key, off, bytes[off as usize..].to_vec().into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["h"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Uploads the photos and a manifest, then finishes: returns the cluster id.
async fn upload_sequence(sb: &Sandbox, token: &str, photos: &[Vec<u8>]) -> String {
    let mh = upload_manifest(sb, token, photos).await;
    let r = finish(sb, token, &mh, "mly_bundle_manifest").await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["cluster_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Uploads the photos and a manifest: returns the manifest's handle.
async fn upload_manifest(sb: &Sandbox, token: &str, photos: &[Vec<u8>]) -> String {
    let mut handles = Vec::new();
    for p in photos {
        let key = format!("mly_tools_{}.jpg", md5_hex(p));
        handles.push(upload(sb, token, &key, p).await);
    }
    let manifest = json!({"image_handles": handles, "upload_type": "images", "version": "1"});
    upload(
        sb,
        token,
        &format!("uuid_{}.json", uuid::Uuid::new_v4().simple()),
        manifest.to_string().as_bytes(),
    )
    .await
}

async fn finish(sb: &Sandbox, token: &str, handle: &str, file_type: &str) -> reqwest::Response {
    client()
        .post(format!("{}/finish_upload", s(&sb.urls().mapillary_graph)))
        .header("Authorization", format!("OAuth {token}"))
        .json(&json!({"file_handle": handle, "file_type": file_type}))
        .send()
        .await
        .unwrap()
}

async fn graph_get(sb: &Sandbox, token: &str, path_and_query: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path_and_query}", s(&sb.urls().mapillary_graph)))
        .header("Authorization", format!("OAuth {token}"))
        .send()
        .await
        .unwrap()
}

fn walk(n: u32, start_sec: u32) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let sec = start_sec + i * 2;
            Photo::mapillary(
                46.5 + f64::from(i) * 0.0001,
                6.6 + f64::from(i) * 0.0001,
                &format!("2024_05_17_09_{:02}_{:02}_250", sec / 60, sec % 60),
                45.0 + f64::from(i),
                i + start_sec * 1000,
            )
            .jpeg()
        })
        .collect()
}

#[tokio::test]
async fn authorize_page_approves_and_denies() {
    let sb = sandbox().await;
    let code = authorize_code(&sb, "0", "xyz").await;
    assert!(!code.is_empty());
    let resp = client()
        .post(format!("{}/mapillary/connect/decision", s(&sb.base_url())))
        .form(&[
            ("client_id", "1001"),
            ("redirect_uri", "http://127.0.0.1:8763/callback"),
            ("response_type", "code"),
            ("state", "xyz"),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let loc = location(&resp);
    assert!(loc.starts_with("http://127.0.0.1:8763/callback?"), "{loc}");
    assert_eq!(param(&loc, "error").as_deref(), Some("user_denied"));
    assert_eq!(param(&loc, "state").as_deref(), Some("xyz"));
    assert!(param(&loc, "code").is_none());
}

#[tokio::test]
async fn authorize_validates_client_and_redirect() {
    let sb = sandbox().await;
    let c = client();
    for (query, what) in [
        (
            vec![
                ("client_id", "999"),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
            ],
            "client",
        ),
        (
            vec![("client_id", "1001"), ("response_type", "code")],
            "no redirect",
        ),
        (
            vec![
                ("client_id", "1001"),
                ("response_type", "code"),
                ("redirect_uri", "https://evil.example/cb"),
            ],
            "evil",
        ),
        (
            vec![
                ("client_id", "1001"),
                ("response_type", "token"),
                ("redirect_uri", REDIRECT),
            ],
            "type",
        ),
    ] {
        let r = c
            .get(sb.urls().mapillary_authorize)
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{what}");
    }
}

#[tokio::test]
async fn auto_approve_redirects_at_once_without_state() {
    let sb = sandbox_with(|c| c.auto_approve = true).await;
    let r = client()
        .get(sb.urls().mapillary_authorize)
        .query(&[
            ("client_id", "1001"),
            ("response_type", "code"),
            ("scope", "read"),
            ("redirect_uri", "http://127.0.0.1:8763/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = location(&r);
    assert!(param(&loc, "code").is_some());
    assert!(param(&loc, "state").is_none(), "JOSM sends no state: {loc}");
}

#[tokio::test]
async fn token_exchange_refresh_and_errors() {
    let sb = sandbox().await;
    let code = authorize_code(&sb, "0", "s1").await;
    let r = exchange(&sb, &code).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 60 * 24 * 3600);
    assert!(v["access_token"].as_str().unwrap().starts_with("MLY|"));
    assert!(
        v.get("refresh_token").is_none(),
        "the documented reply has no refresh token: {v}"
    );

    // Codes are single-use.
    let again = exchange(&sb, &code).await;
    assert_eq!(again.status(), 400);
    let e: Value = again.json().await.unwrap();
    assert_eq!(e["error"]["type"], "OAuthException");

    // The client secret is required, and must match client_id.
    let code2 = authorize_code(&sb, "0", "s2").await;
    let bad = client()
        .post(sb.urls().mapillary_token)
        .header("Authorization", "OAuth MLY|1001|wrong")
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "1001"),
            ("code", &code2),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let none = client()
        .post(sb.urls().mapillary_token)
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "1001"),
            ("code", &code2),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);

    // JSON bodies work too (and the code survived the refused attempts); this time with a
    // distinct refresh token (the knob).
    assert!(mtp_sandbox::Faults::parse_spec("mapillary_refresh_tokens=maybe").is_err());
    sb.faults()
        .apply_spec("mapillary_refresh_tokens=issue")
        .unwrap();
    let j = client()
        .post(sb.urls().mapillary_token)
        .header("Authorization", format!("OAuth {MAPILLARY_CLIENT_SECRET}"))
        .json(&json!({"grant_type": "authorization_code", "client_id": "1001", "code": code2}))
        .send()
        .await
        .unwrap();
    assert_eq!(j.status(), 200);
    let v: Value = j.json().await.unwrap();
    let access = v["access_token"].as_str().unwrap().to_owned();
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();

    // Refresh with the refresh token: the old access and refresh tokens are revoked at once
    // (the strict service); then JOSM-style, with the current access token.
    let refresh_with = |rt: String| {
        let sb = &sb;
        async move {
            client()
                .post(sb.urls().mapillary_token)
                .header("Authorization", format!("OAuth {MAPILLARY_CLIENT_SECRET}"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", "1001"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = refresh_with(refresh.clone()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let second = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        graph_get(&sb, &second, "/me?fields=id,username")
            .await
            .status(),
        200
    );
    let old = graph_get(&sb, &access, "/me?fields=id,username").await;
    assert_eq!(old.status(), 401);
    let e: Value = old.json().await.unwrap();
    assert_eq!(e["error"]["code"], 190);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalidated"),
        "{e}"
    );
    for stale in [&refresh, &access] {
        let r = refresh_with(stale.clone()).await;
        assert_eq!(r.status(), 400, "a replaced token refreshed");
    }
    let r = refresh_with(second.clone()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let third = v["access_token"].as_str().unwrap();
    assert_eq!(graph_get(&sb, third, "/me").await.status(), 200);
    assert_eq!(graph_get(&sb, &second, "/me").await.status(), 401);
    let r = client()
        .post(sb.urls().mapillary_token)
        .header("Authorization", format!("OAuth {MAPILLARY_CLIENT_SECRET}"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "1001"),
            ("refresh_token", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// PROTOCOLS §2.1: `scope` is optional and a subset of the app's registered scopes; a token
/// without `upload` signs in (`/me`) but the upload host and `finish_upload` refuse it.
#[tokio::test]
async fn scopes_are_granted_as_asked_and_a_read_token_cannot_upload() {
    let sb = sandbox().await;
    let token_for = |scope: Option<&'static str>| {
        let sb = &sb;
        async move {
            let code = authorize_code_scoped(sb, "0", "sc", scope).await;
            let v: Value = exchange(sb, &code).await.json().await.unwrap();
            v["access_token"].as_str().unwrap().to_owned()
        }
    };
    let read = token_for(Some("read")).await;
    assert_eq!(graph_get(&sb, &read, "/me?fields=id").await.status(), 200);
    let bytes = vec![9u8; 300];
    let key = format!("mly_tools_{}.jpg", md5_hex(&bytes));
    let r = post_bytes(&sb, &read, &key, 0, bytes.clone().into())
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let e: Value = r.json().await.unwrap();
    // The upload host answers in its `debug_info` shape only.
    assert_eq!(e["debug_info"]["type"], "NotAuthorizedError");
    assert!(e.get("error").is_none(), "{e}");
    assert!(
        e["debug_info"]["message"]
            .as_str()
            .unwrap()
            .contains("upload permission")
    );
    // Reading the offset is allowed; nothing was stored.
    assert_eq!(offset(&sb, &read, &key).await, 0);

    // A full token uploads; a read token may not finish it.
    for scope in [None, Some("read,write,upload"), Some("read upload")] {
        let full = token_for(scope).await;
        let photos = walk(2, 0);
        let handle = upload_manifest(&sb, &full, &photos).await;
        let refused = finish(&sb, &read, &handle, "mly_bundle_manifest").await;
        assert_eq!(refused.status(), 403);
        // `finish_upload` is the Graph API: its shape, no `debug_info`.
        let e: Value = refused.json().await.unwrap();
        assert_eq!(e["error"]["code"], 200);
        assert!(e.get("debug_info").is_none(), "{e}");
        let ok = finish(&sb, &full, &handle, "mly_bundle_manifest").await;
        assert_eq!(ok.status(), 200, "scope {scope:?}");
    }

    // A refreshed read token stays read-only (refreshed as JOSM does, with itself).
    let code = authorize_code_scoped(&sb, "0", "sc", Some("read")).await;
    let v: Value = exchange(&sb, &code).await.json().await.unwrap();
    let r: Value = client()
        .post(sb.urls().mapillary_token)
        .header("Authorization", format!("OAuth {MAPILLARY_CLIENT_SECRET}"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "1001"),
            ("refresh_token", v["access_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refreshed = r["access_token"].as_str().unwrap();
    let r = post_bytes(&sb, refreshed, &key, 0, bytes.into())
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // A scope the app is not registered with: the redirect carries invalid_scope.
    let resp = client()
        .get(sb.urls().mapillary_authorize)
        .query(&[
            ("client_id", "1001"),
            ("response_type", "code"),
            ("state", "bad"),
            ("scope", "read,admin"),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let loc = location(&resp);
    assert_eq!(param(&loc, "error").as_deref(), Some("invalid_scope"));
    assert_eq!(param(&loc, "state").as_deref(), Some("bad"));
}

#[tokio::test]
async fn me_and_auth_errors() {
    let sb = sandbox().await;
    let token = login(&sb).await;
    let v: Value = graph_get(&sb, &token, "/me?fields=id,username")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v,
        json!({"id": "104729000000001", "username": "sandbox-user"})
    );

    let utf8 = sb.issue_token(Service::Mapillary, 1);
    let v: Value = graph_get(&sb, &utf8, "/me?fields=id,username")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["username"], "sandbøx-ünïcode");

    let r = client()
        .get(format!("{}/me", s(&sb.urls().mapillary_graph)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = graph_get(&sb, "MLY|1|bogus", "/me").await;
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], 190);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid OAuth access token")
    );

    let r = graph_get(&sb, &token, "/me?fields=id,email").await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn upload_offset_handle_and_412() {
    let sb = sandbox().await;
    let token = login(&sb).await;
    let bytes = vec![7u8; 5000];
    let key = format!("mly_tools_{}.jpg", md5_hex(&bytes));
    assert_eq!(offset(&sb, &token, &key).await, 0);

    // Wrong starting offset.
    let r = post_bytes(&sb, &token, &key, 10, bytes[10..].to_vec().into())
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e,
        json!({"debug_info": {"retriable": true, "type": "OffsetInvalidError",
                              "message": "Request starting offset is invalid"}})
    );

    // A chunked, streamed body (no Content-Length).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    let r = post_bytes(
        &sb,
        &token,
        &key,
        0,
        reqwest::Body::wrap_stream(futures::stream::iter(chunks)),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.json::<Value>().await.unwrap()["h"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(offset(&sb, &token, &key).await, 5000);

    // A complete file: an empty POST at offset == size returns the same handle.
    let r = post_bytes(&sb, &token, &key, 5000, Vec::new().into())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["h"], h.as_str());

    let f = sb.state().mapillary_file(&key).unwrap();
    assert_eq!(f.md5, md5_hex(&bytes));
    assert!(f.key_matches_md5());
    assert_eq!(f.handle.as_deref(), Some(h.as_str()));
    let rec = sb
        .requests()
        .into_iter()
        .find(|r| r.endpoint.as_deref() == Some("mapillary.upload") && r.status == Some(200))
        .unwrap();
    assert_eq!(rec.header("transfer-encoding"), Some("chunked"));
    assert_eq!(rec.header("content-length"), None);
    assert_eq!(rec.body_len, 5000);
    assert_eq!(rec.header("authorization"), Some("OAuth MLY|…"));

    // Header checks and auth on the upload host.
    let r = client()
        .post(format!("{}/{key}", s(&sb.urls().mapillary_upload)))
        .header("Authorization", format!("OAuth {token}"))
        .header("Offset", "0")
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post_bytes(&sb, "MLY|x|y", &key, 0, vec![1u8; 10].into())
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["debug_info"]["type"], "NotAuthorizedError");
}

#[tokio::test]
async fn resume_after_connection_cut_mid_body() {
    let sb = sandbox().await;
    let token = login(&sb).await;
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let key = format!("mly_tools_{}.jpg", md5_hex(&bytes));
    let fault = sb.faults().reset_next("mapillary.upload", 1, 30_000);

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let cut = post_bytes(
        &sb,
        &token,
        &key,
        0,
        reqwest::Body::wrap_stream(futures::stream::iter(chunks)),
    )
    .await;
    assert!(cut.is_err(), "the connection should have been cut: {cut:?}");
    assert_eq!(sb.faults().fired(fault), 1);

    // The 30 000 bytes that arrived are kept; resume from there.
    assert_eq!(offset(&sb, &token, &key).await, 30_000);
    let rec = sb
        .requests()
        .into_iter()
        .find(|r| r.endpoint.as_deref() == Some("mapillary.upload"))
        .unwrap();
    assert_eq!(rec.status, None);
    assert_eq!(rec.body_len, 30_000);
    assert!(!rec.body_complete);
    assert_eq!(rec.fault.as_deref(), Some("reset after 30000 bytes"));

    let h = upload(&sb, &token, &key, &bytes).await;
    let f = sb.state().mapillary_file(&key).unwrap();
    assert_eq!(f.md5, md5_hex(&bytes));
    assert_eq!(f.posts, 2);
    assert_eq!(f.handle.as_deref(), Some(h.as_str()));
}

#[tokio::test]
async fn lost_reply_then_empty_post_returns_the_handle() {
    let sb = sandbox().await;
    let token = login(&sb).await;
    let bytes = vec![3u8; 2000];
    let key = format!("mly_tools_{}.jpg", md5_hex(&bytes));
    // The limit is past the end of the body: the server stores it all, the reply is lost.
    sb.faults().reset_next("mapillary.upload", 1, 1_000_000);
    assert!(
        post_bytes(&sb, &token, &key, 0, bytes.clone().into())
            .await
            .is_err()
    );
    assert_eq!(offset(&sb, &token, &key).await, 2000);
    let h = upload(&sb, &token, &key, &bytes).await;
    assert_eq!(sb.state().mapillary_file(&key).unwrap().handle, Some(h));
}

#[tokio::test]
async fn cluster_moves_through_the_stages_then_reads_back() {
    let sb = sandbox_with(|c| c.processing_delay = Duration::from_millis(1600)).await;
    let token = login(&sb).await;
    let photos = walk(3, 0);
    let cluster = upload_sequence(&sb, &token, &photos).await;

    let st: Value = graph_get(&sb, &token, &format!("/sandbox/clusters/{cluster}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(st["status"], "pending", "{st}");
    assert_eq!(
        st["stages"][0],
        json!({"name": "image ingestion", "status": "pending"})
    );
    assert_eq!(st["sequence_ids"], json!([]));
    let bbox = "/images?bbox=6.59,46.49,6.61,46.51&fields=id";
    let v: Value = graph_get(&sb, &token, bbox).await.json().await.unwrap();
    assert_eq!(v["data"], json!([]), "nothing is visible before processing");

    tokio::time::sleep(Duration::from_millis(550)).await;
    let st: Value = graph_get(&sb, &token, &format!("/sandbox/clusters/{cluster}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(st["status"], "processing", "{st}");
    assert_eq!(st["stages"][0]["status"], "success");
    assert_eq!(st["stages"][3]["status"], "pending");

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let st: Value = graph_get(&sb, &token, &format!("/sandbox/clusters/{cluster}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(st["status"], "done", "{st}");
    let names: Vec<&str> = st["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "image ingestion",
            "image processing",
            "map data processing",
            "map update"
        ]
    );
    let seq = st["sequence_ids"][0].as_str().unwrap().to_owned();

    // The fallback a client uses: user + time window + position.
    let v: Value = graph_get(
        &sb,
        &token,
        "/images?bbox=6.59,46.49,6.61,46.51&start_captured_at=2024-05-17T09:00:00Z&end_captured_at=2024-05-17T09:00:03Z&creator_username=sandbox-user&fields=id,sequence,captured_at,geometry,compass_angle,creator",
    )
    .await
    .json()
    .await
    .unwrap();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "the time window holds the first two: {v}");
    assert_eq!(data[0]["sequence"], seq.as_str());
    // Published as Mapillary does: the capture time cut to the second, the position moved
    // by up to 5 m (PROTOCOLS §2.6).
    assert_eq!(data[0]["captured_at"], 1_715_936_400_000i64);
    assert_eq!(data[0]["compass_angle"], 45.0);
    assert_eq!(data[0]["geometry"]["type"], "Point");
    let lat = data[0]["geometry"]["coordinates"][1].as_f64().unwrap();
    let lon = data[0]["geometry"]["coordinates"][0].as_f64().unwrap();
    let moved_m =
        ((lat - 46.5) * 111_320.0).hypot((lon - 6.6) * 111_320.0 * 46.5f64.to_radians().cos());
    assert!(moved_m <= 5.0 + 1e-6, "moved {moved_m} m");
    assert_eq!(data[0]["creator"]["username"], "sandbox-user");

    let ids: Value = graph_get(&sb, &token, &format!("/image_ids?sequence_id={seq}"))
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = ids["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], data[0]["id"].as_str().unwrap());

    let node: Value = graph_get(
        &sb,
        &token,
        &format!("/{}?fields=id,sequence,is_pano,thumb_original_url", ids[2]),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(node["sequence"], seq.as_str());
    assert_eq!(node["is_pano"], false);
    let bytes = client()
        .get(node["thumb_original_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(md5_hex(&bytes), md5_hex(&photos[2]));

    let c = sb.state().mapillary_cluster(&cluster).unwrap();
    assert_eq!(c.image_count, 3);
    assert_eq!(c.manifest_canonical, Some(true));
    assert!(sb.state().mapillary_images().iter().all(|i| i.visible));
}

#[tokio::test]
async fn finish_upload_validates_manifests_and_publishes_as_mapillary_does() {
    let sb = sandbox_with(|c| c.processing_delay = Duration::ZERO).await;
    let token = login(&sb).await;
    let photo = walk(1, 0).remove(0);
    let h = upload(
        &sb,
        &token,
        &format!("mly_tools_{}.jpg", md5_hex(&photo)),
        &photo,
    )
    .await;

    let bad = |manifest: Value| {
        let sb = &sb;
        let token = token.clone();
        async move {
            let key = format!("uuid_{}.json", uuid::Uuid::new_v4().simple());
            let mh = upload(sb, &token, &key, manifest.to_string().as_bytes()).await;
            let r = finish(sb, &token, &mh, "mly_bundle_manifest").await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (code, e) =
        bad(json!({"image_handles": [h], "upload_type": "images", "version": "2"})).await;
    assert_eq!(code, 400);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("version"),
        "{e}"
    );
    let (code, _) =
        bad(json!({"image_handles": ["nope"], "upload_type": "images", "version": "1"})).await;
    assert_eq!(code, 400);
    let (code, _) =
        bad(json!({"image_handles": [], "upload_type": "images", "version": "1"})).await;
    assert_eq!(code, 400);
    let (code, _) =
        bad(json!({"image_handles": [h], "upload_type": "images", "version": "1", "x": 1})).await;
    assert_eq!(code, 400);

    assert_eq!(
        finish(&sb, &token, "unknown-handle", "mly_bundle_manifest")
            .await
            .status(),
        400
    );
    assert_eq!(
        finish(&sb, &token, &h, "mly_blackvue_video").await.status(),
        400
    );
    assert_eq!(finish(&sb, &token, &h, "tarball").await.status(), 400);

    // Over 1000 images: refused (`a_manifest_over_the_sequence_caps_is_refused`).

    // Mapillary's own ways: a chunk split in two (418 → 361 + 57 was seen) and one photo in
    // four never published.
    sb.state().mapillary_split_next_cluster(6);
    sb.state().mapillary_drop_from_next_cluster(4);
    let handles = vec![h.clone(); 8];
    let manifest = json!({"image_handles": handles, "upload_type": "images", "version": "1"});
    let mh = upload(
        &sb,
        &token,
        "uuid_quirks.json",
        manifest.to_string().as_bytes(),
    )
    .await;
    let r = finish(&sb, &token, &mh, "mly_bundle_manifest").await;
    let cluster = r.json::<Value>().await.unwrap()["cluster_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = sb.state().mapillary_cluster(&cluster).unwrap();
    assert_eq!(c.image_count, 8);
    assert_eq!(c.unpublished_images, 2);
    let seqs = sb.state().mapillary_sequences();
    let lens: Vec<usize> = c
        .sequence_ids
        .iter()
        .map(|id| seqs.iter().find(|s| &s.id == id).unwrap().image_ids.len())
        .collect();
    assert_eq!(lens, [5, 1], "images 0-5 less #2, then 6-7 less #6");
}

#[tokio::test]
async fn zip_and_video_clusters() {
    use std::io::Write as _;
    let sb = sandbox_with(|c| c.processing_delay = Duration::ZERO).await;
    let token = login(&sb).await;
    let photos = walk(2, 10);
    let make_zip = |comment: Option<&str>| {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut z = zip::ZipWriter::new(&mut buf);
        for (i, p) in photos.iter().enumerate() {
            z.start_file(format!("{i}.jpg"), zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(p).unwrap();
        }
        if let Some(c) = comment {
            z.set_comment(c.to_owned()).unwrap();
        }
        z.finish().unwrap();
        buf.into_inner()
    };
    let good = make_zip(Some(r#"{"sequence_md5sum":"abc"}"#));
    let h = upload(
        &sb,
        &token,
        &format!("mly_tools_{}.zip", md5_hex(&good)),
        &good,
    )
    .await;
    let r = finish(&sb, &token, &h, "zip").await;
    assert_eq!(r.status(), 200);
    let cid = r.json::<Value>().await.unwrap()["cluster_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(sb.state().mapillary_cluster(&cid).unwrap().image_count, 2);

    let bad = make_zip(None);
    let h = upload(
        &sb,
        &token,
        &format!("mly_tools_{}.zip", md5_hex(&bad)),
        &bad,
    )
    .await;
    let r = finish(&sb, &token, &h, "zip").await;
    assert_eq!(r.status(), 400);

    let mut mp4 = vec![0, 0, 0, 24];
    mp4.extend_from_slice(b"ftypisom\0\0\0\0isommp41");
    let h = upload(&sb, &token, "mly_tools_video.mp4", &mp4).await;
    let r = finish(&sb, &token, &h, "mly_camm_video").await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn read_back_parameter_errors_and_logging() {
    let sb = sandbox().await;
    let token = login(&sb).await;
    assert_eq!(
        graph_get(&sb, &token, "/images?fields=id").await.status(),
        400
    );
    assert_eq!(
        graph_get(&sb, &token, "/images?bbox=1,2,3").await.status(),
        400
    );
    assert_eq!(
        graph_get(
            &sb,
            &token,
            "/images?bbox=1,2,3,4&start_captured_at=yesterday"
        )
        .await
        .status(),
        400
    );
    assert_eq!(graph_get(&sb, &token, "/image_ids").await.status(), 400);
    assert_eq!(
        graph_get(&sb, &token, "/123456?fields=id").await.status(),
        400
    );
    let org: Value = graph_get(&sb, &token, "/200000000000001?fields=slug,name")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(org["slug"], "mtp-sandbox");

    let r = client()
        .post(format!("{}/logging", s(&sb.urls().mapillary_graph)))
        .header(
            "Authorization",
            "OAuth MLY|5675152195860640|6b02c72e6e3c801e5603ab0495623282",
        )
        .json(&json!({"action_type": "upload_finished_upload", "properties": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    let r = client()
        .post(format!("{}/logging", s(&sb.urls().mapillary_graph)))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

async fn graphql(sb: &Sandbox, token: &str, op: &str, doc: &str, vars: Value) -> reqwest::Response {
    client()
        .get(format!("{}/graphql", s(&sb.urls().mapillary_graph)))
        .header("Authorization", format!("OAuth {token}"))
        .query(&[
            ("doc", doc.to_string()),
            ("operationName", op.to_string()),
            ("variables", vars.to_string()),
        ])
        .send()
        .await
        .unwrap()
}

const FEED_DOC: &str = "query getLatestActivity($id: ID!, $first: Int, $after: ID, $hide_after: Int) { fetch__User(id: $id) { id feed(first: $first, after: $after, hide_failed_sequences_after_days: $hide_after) { page_info { start_cursor end_cursor has_next_page has_previous_page } nodes { cluster_id type created_at_seconds captured_at_seconds thumb_url item_count image_id status initial_processing_status anonymization_status tiler_status error_code timezone } } } }";

/// PROTOCOLS §2.6: the activity feed as mapillary.com reads it — request form, reply
/// shapes with `__typename`s, opaque cursors, `extensions.is_final`, stages that advance
/// with the processing delay, a failed stage with its error code, and the token knob.
/// The web app asks the feed to hide failed uploads after 14 days
/// (`hide_failed_sequences_after_days`): a failed cluster older than that is gone from it, a
/// finished one stays, and without the variable both show.
#[tokio::test]
async fn graphql_feed_hides_failed_uploads_after_the_days_asked() {
    let sb = sandbox_with(|c| c.processing_delay = Duration::from_millis(100)).await;
    let token = login(&sb).await;
    let state = sb.state();
    state.mapillary_graphql_refuses_user_tokens(false);
    let finished = upload_sequence(&sb, &token, &walk(3, 0)).await;
    state.mapillary_fail_next_cluster(1, "CORRUPT_IMAGES");
    let failed = upload_sequence(&sb, &token, &walk(2, 100)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ids = |hide_after: Option<u64>| {
        let (sb, token) = (&sb, &token);
        async move {
            let vars = json!({"id": "104729000000001", "first": 50, "hide_after": hide_after});
            let v: Value = graphql(sb, token, "getLatestActivity", FEED_DOC, vars)
                .await
                .json()
                .await
                .unwrap();
            v["data"]["fetch__User"]["feed"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["cluster_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids(Some(14)).await, vec![failed.clone(), finished.clone()]);
    state.advance_mapillary_clock(Duration::from_secs(13 * 86_400));
    assert_eq!(ids(Some(14)).await, vec![failed.clone(), finished.clone()]);
    state.advance_mapillary_clock(Duration::from_secs(2 * 86_400));
    assert_eq!(ids(Some(14)).await, vec![finished.clone()]);
    assert_eq!(ids(Some(30)).await, vec![failed.clone(), finished.clone()]);
    assert_eq!(ids(None).await, vec![failed, finished]);
}

#[tokio::test]
async fn graphql_feed_stages_paging_and_tokens() {
    let sb = sandbox_with(|c| c.processing_delay = Duration::from_millis(800)).await;
    let token = login(&sb).await;
    let cluster = upload_sequence(&sb, &token, &walk(3, 0)).await;
    let state = sb.state();
    state.mapillary_fail_next_cluster(1, "CORRUPT_IMAGES");
    let failing = upload_sequence(&sb, &token, &walk(2, 100)).await;

    let vars = json!({"id": "104729000000001", "first": 50, "after": null, "hide_after": 14});
    // By default, as Mapillary answered in 2023, the user's token is refused.
    let r = graphql(&sb, &token, "getLatestActivity", FEED_DOC, vars.clone()).await;
    assert_eq!(r.status(), 403);
    // The kind switch lets it through; the checks below use it.
    state.mapillary_graphql_refuses_user_tokens(false);
    let r = graphql(&sb, &token, "getLatestActivity", FEED_DOC, vars.clone()).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["extensions"], json!({"is_final": true}));
    let user = &v["data"]["fetch__User"];
    assert_eq!(user["__typename"], "User");
    let feed = &user["feed"];
    assert_eq!(feed["page_info"]["__typename"], "PageInfo");
    assert_eq!(feed["page_info"]["has_next_page"], false);
    let nodes = feed["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    // Newest first; every field of the observed node, stages not started yet.
    assert_eq!(nodes[0]["cluster_id"], failing.as_str());
    let node = &nodes[1];
    assert_eq!(node["__typename"], "ClusterLatestActivityItem");
    assert_eq!(node["cluster_id"], cluster.as_str());
    assert_eq!(node["type"], "UPLOAD");
    assert_eq!(node["item_count"], 3);
    assert_eq!(node["error_code"], "UNSET");
    for key in [
        "created_at_seconds",
        "captured_at_seconds",
        "timezone",
        "image_id",
        "thumb_url",
    ] {
        assert!(node.get(key).is_some(), "{key} missing: {node}");
    }
    assert_eq!(node["status"], "IN_PROGRESS");
    assert_eq!(node["tiler_status"], "PENDING");

    // After the processing delay: FINISHED everywhere, an image id; the failing one FAILED
    // at its stage, with its error code.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let v: Value = graphql(&sb, &token, "getLatestActivity", FEED_DOC, vars.clone())
        .await
        .json()
        .await
        .unwrap();
    let nodes = v["data"]["fetch__User"]["feed"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    for f in [
        "status",
        "initial_processing_status",
        "anonymization_status",
        "tiler_status",
    ] {
        assert_eq!(nodes[1][f], "FINISHED", "{f}");
    }
    let image_id = nodes[1]["image_id"].as_str().unwrap();
    let seq: Value = graph_get(&sb, &token, &format!("/{image_id}?fields=sequence"))
        .await
        .json()
        .await
        .unwrap();
    assert!(seq["sequence"].is_string());
    assert_eq!(nodes[0]["status"], "FINISHED");
    assert_eq!(nodes[0]["initial_processing_status"], "FAILED");
    assert_eq!(nodes[0]["anonymization_status"], "PENDING");
    assert_eq!(nodes[0]["error_code"], "CORRUPT_IMAGES");

    // Paging: 250 more, newer; pages of 100 with opaque cursors.
    state.mapillary_add_activity(0, 250);
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let vars = json!({"id": "104729000000001", "first": 100, "after": after, "hide_after": 14});
        let v: Value = graphql(&sb, &token, "getLatestActivity", FEED_DOC, vars)
            .await
            .json()
            .await
            .unwrap();
        let feed = &v["data"]["fetch__User"]["feed"];
        for n in feed["nodes"].as_array().unwrap() {
            seen.push(n["cluster_id"].as_str().unwrap().to_string());
        }
        let end = feed["page_info"]["end_cursor"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(end.parse::<u64>().is_err(), "cursor {end} is not opaque");
        assert_eq!(feed["page_info"]["has_previous_page"], after.is_some());
        if feed["page_info"]["has_next_page"] == false {
            break;
        }
        after = Some(end);
    }
    assert_eq!(seen.len(), 252);
    assert_eq!(seen.last().map(String::as_str), Some(cluster.as_str()));

    // getData: the account's stats.
    let data_doc = "query getData($username: String!) { user_by_username(username: $username) { id username created_at_seconds description stats { distance { km } images } } }";
    let v: Value = graphql(
        &sb,
        &token,
        "getData",
        data_doc,
        json!({"username": "sandbox-user"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let u = &v["data"]["user_by_username"];
    assert_eq!(u["id"], "104729000000001");
    assert_eq!(u["stats"]["images"], 3);
    assert!(u["stats"]["distance"]["km"].as_f64().unwrap() > 0.0);

    // A GraphQL error is a 200 with errors; a missing variable names it.
    let v: Value = graphql(&sb, &token, "getLatestActivity", FEED_DOC, json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("$id"));
    let v: Value = graphql(&sb, &token, "getOther", FEED_DOC, json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("getOther")
    );

    // The switch back to the default: user tokens refused, the web client token answers.
    state.mapillary_graphql_refuses_user_tokens(true);
    let r = graphql(&sb, &token, "getLatestActivity", FEED_DOC, vars.clone()).await;
    assert_eq!(r.status(), 403);
    let r = graphql(
        &sb,
        mtp_sandbox::MAPILLARY_WEB_CLIENT_TOKEN,
        "getLatestActivity",
        FEED_DOC,
        vars,
    )
    .await;
    assert_eq!(r.status(), 200);
}

/// PROTOCOLS §2.6: handles expire (2 days by default) on a sandbox clock that tests move;
/// the bytes stay, and an empty POST on the complete key gives a current handle.
#[tokio::test]
async fn handles_expire_and_an_empty_post_renews_them() {
    let sb = sandbox_with(|c| c.processing_delay = Duration::ZERO).await;
    let token = login(&sb).await;
    let photos = walk(2, 0);
    let mut keys = Vec::new();
    let mut handles = Vec::new();
    for p in &photos {
        let key = format!("mly_tools_{}.jpg", md5_hex(p));
        handles.push(upload(&sb, &token, &key, p).await);
        keys.push(key);
    }
    sb.state()
        .advance_mapillary_clock(Duration::from_secs(3 * 24 * 3600));
    let manifest = json!({"image_handles": handles, "upload_type": "images", "version": "1"});
    let mh = upload(
        &sb,
        &token,
        "uuid_old.json",
        manifest.to_string().as_bytes(),
    )
    .await;
    let r = finish(&sb, &token, &mh, "mly_bundle_manifest").await;
    assert_eq!(r.status(), 400);
    // In the Graph API's generic words: Mapillary's own for this are not documented.
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["message"], "(#100) Invalid parameter", "{e}");

    // The bytes are still there; an empty POST gives a new handle.
    let mut fresh = Vec::new();
    for (key, p) in keys.iter().zip(&photos) {
        assert_eq!(offset(&sb, &token, key).await, p.len() as u64);
        let r = post_bytes(&sb, &token, key, p.len() as u64, Vec::new().into())
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let h = r.json::<Value>().await.unwrap()["h"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!handles.contains(&h));
        fresh.push(h);
    }
    // While valid, the same handle comes back.
    let again = post_bytes(
        &sb,
        &token,
        &keys[0],
        photos[0].len() as u64,
        Vec::new().into(),
    )
    .await
    .unwrap();
    assert_eq!(again.json::<Value>().await.unwrap()["h"], fresh[0].as_str());
    let manifest = json!({"image_handles": fresh, "upload_type": "images", "version": "1"});
    let mh = upload(
        &sb,
        &token,
        "uuid_new.json",
        manifest.to_string().as_bytes(),
    )
    .await;
    assert_eq!(
        finish(&sb, &token, &mh, "mly_bundle_manifest")
            .await
            .status(),
        200
    );
}

/// The Mapillary knobs on the control plane (for `mtp sandbox` and demos).
#[tokio::test]
async fn mapillary_knobs_on_the_control_plane() {
    let sb = sandbox().await;
    let token = login(&sb).await;
    let knobs = format!("{}/mapillary", s(&sb.urls().sandbox_admin));
    let r = client()
        .post(&knobs)
        .json(&json!({"graphql_refuses_user_tokens": true, "fail_next_cluster": {"stage": 3, "error_code": "X"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = graphql(
        &sb,
        &token,
        "getLatestActivity",
        FEED_DOC,
        json!({"id": "104729000000001"}),
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = client()
        .post(&knobs)
        .json(&json!({"nope": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// PROTOCOLS §2.4: a sequence holds at most 1000 images and 6 G pixels (a photo without
/// dimensions counting as 1024²). The emulator refuses a manifest over either, as the
/// server is said to, instead of making a cluster of it.
#[tokio::test]
async fn a_manifest_over_the_sequence_caps_is_refused() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::Mapillary, 0);
    let small = walk(1, 0).remove(0);
    let small_h = upload(
        &sb,
        &token,
        &format!("mly_tools_{}.jpg", md5_hex(&small)),
        &small,
    )
    .await;
    // 48 MP: its SOF0 says 6000 × 8000.
    let mut big = walk(1, 7).remove(0);
    let sof = big.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    big[sof + 5..sof + 9].copy_from_slice(&[0x17, 0x70, 0x1F, 0x40]);
    let big_h = upload(
        &sb,
        &token,
        &format!("mly_tools_{}.jpg", md5_hex(&big)),
        &big,
    )
    .await;

    let manifest = |handle: &str, n: usize| {
        json!({"image_handles": vec![handle; n], "upload_type": "images", "version": "1"})
            .to_string()
    };
    for (handle, n, ok, words) in [
        (&small_h, 1000, true, ""),
        (
            &small_h,
            1001,
            false,
            "at most 1000 images; this one has 1001",
        ),
        (&big_h, 125, true, ""),
        (&big_h, 126, false, "at most 6 G pixels"),
    ] {
        let text = manifest(handle, n);
        let key = format!("uuid_{}.json", uuid::Uuid::new_v4().simple());
        let mh = upload(&sb, &token, &key, text.as_bytes()).await;
        let r = finish(&sb, &token, &mh, "mly_bundle_manifest").await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        if ok {
            assert_eq!(status, 200, "{n}: {body}");
        } else {
            assert_eq!(status, 400, "{n}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(words), "{message}");
        }
    }
    assert_eq!(
        sb.state().mapillary_clusters().len(),
        2,
        "only the two within the caps"
    );
}

/// PROTOCOLS §6: the Graph API limits each app's requests a minute (50,000 by default; the
/// knob lowers it). Over it: 429 with the Graph API's "(#4) Application request limit
/// reached", until a minute has passed. The upload host does not count.
#[tokio::test]
async fn the_graph_api_rate_limits_the_app_per_minute() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::Mapillary, 0);
    sb.state().set_mapillary_rate_limit(3);
    for _ in 0..3 {
        assert_eq!(graph_get(&sb, &token, "/me?fields=id").await.status(), 200);
    }
    // The upload host is not the Graph API.
    assert_eq!(offset(&sb, &token, "mly_tools_x.jpg").await, 0);
    let r = graph_get(&sb, &token, "/me?fields=id").await;
    assert_eq!(r.status(), 429);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], 4, "{e}");
    sb.state().advance_mapillary_clock(Duration::from_secs(60));
    assert_eq!(graph_get(&sb, &token, "/me?fields=id").await.status(), 200);
}

/// PROTOCOLS §2.4: a description outside the schema mapillary_tools holds it to (a key it
/// does not know, a required key missing) is not processed; a description that is not a
/// JSON object falls back to the plain EXIF.
#[tokio::test]
async fn images_whose_description_breaks_the_schema_are_not_processed() {
    let sb = sandbox_with(|c| c.processing_delay = Duration::ZERO).await;
    let token = sb.issue_token(Service::Mapillary, 0);
    let photo = |i: u32, change: &dyn Fn(&mut Value)| {
        let mut p = Photo::mapillary(
            46.5 + f64::from(i) * 0.0001,
            6.6,
            &format!("2024_05_17_09_00_{:02}_250", i * 2),
            90.0,
            900 + i,
        );
        change(p.description.as_mut().unwrap());
        p.jpeg()
    };
    let photos = vec![
        photo(0, &|_| {}),
        photo(1, &|d| d["MTPSequenceName"] = json!("Morning walk")),
        photo(2, &|d| {
            d.as_object_mut().unwrap().remove("MAPCaptureTime");
        }),
        photo(3, &|d| {
            d["MAPCompassHeading"] = json!({"TrueHeading": 90.0})
        }),
        photo(4, &|d| *d = json!("not an object")),
    ];
    let cluster = upload_sequence(&sb, &token, &photos).await;
    let c = sb.state().mapillary_cluster(&cluster).unwrap();
    assert_eq!(c.image_count, 2, "{c:?}");
    assert_eq!(c.dropped_images, 3, "{c:?}");
}
