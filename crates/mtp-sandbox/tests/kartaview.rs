//! OSM OAuth2 + KartaView, driven by hand-written requests from PROTOCOLS.md §3.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{DELAY, Photo, client, location, param, s, sandbox};
use mtp_sandbox::{
    KARTAVIEW_OSM_CLIENT_ID, KARTAVIEW_OSM_CLIENT_SECRET, OSM_CLIENT_ID, OSM_CLIENT_SECRET,
    Sandbox, Service,
};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

const CB: &str = "http://127.0.0.1:9123/osm";
const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ0kzyX3fqP3DkyIQ1NKoHYGsT4aPk";

async fn osm_code(sb: &Sandbox, redirect: &str, pkce: bool) -> reqwest::Response {
    let c = client();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(VERIFIER.as_bytes()));
    let mut fields = vec![
        ("client_id", OSM_CLIENT_ID.to_owned()),
        ("response_type", "code".to_owned()),
        ("redirect_uri", redirect.to_owned()),
        ("scope", "openid read_prefs".to_owned()),
        ("state", "osm-state".to_owned()),
    ];
    if pkce {
        fields.push(("code_challenge", challenge));
        fields.push(("code_challenge_method", "S256".to_owned()));
    }
    let page = c
        .get(sb.urls().osm_authorize)
        .query(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("OpenStreetMap"));
    fields.push(("decision", "approve".to_owned()));
    fields.push(("user", "1".to_owned()));
    c.post(format!(
        "{}/osm/oauth2/authorize/decision",
        s(&sb.base_url())
    ))
    .form(&fields)
    .send()
    .await
    .unwrap()
}

async fn osm_token(sb: &Sandbox) -> String {
    let r = osm_code(sb, CB, false).await;
    let code = param(&location(&r), "code").unwrap();
    let v: Value = client()
        .post(sb.urls().osm_token)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
            ("client_id", OSM_CLIENT_ID),
            ("client_secret", OSM_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_owned()
}

fn api(sb: &Sandbox, path: &str) -> String {
    format!("{}{path}", s(&sb.urls().kartaview_api))
}

async fn post_form(sb: &Sandbox, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(api(sb, path))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn create_sequence(sb: &Sandbox, token: &str) -> String {
    let (code, v) = post_form(
        sb,
        "/1.0/sequence/",
        &[
            ("access_token", token),
            ("uploadSource", "mtp-desktop"),
            ("currentCoordinate", "46.5,6.6"),
            ("platformName", "Linux"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"]["apiCode"], "600");
    let id = v["osv"]["sequence"]["id"].as_str().unwrap().to_owned();
    assert!(
        id.chars().all(|c| c.is_ascii_digit()),
        "ids are digit strings: {id}"
    );
    id
}

fn photo_form(token: &str, seq: &str, index: &str, salt: u32) -> Form {
    Form::new()
        .text("access_token", token.to_owned())
        .text("sequenceId", seq.to_owned())
        .text("sequenceIndex", index.to_owned())
        .text("coordinate", "46.5001,6.6001")
        .text("shotDate", "2024-05-17 09:30:00")
        .text("headers", "87.5")
        .text("gpsAccuracy", "4")
        .part(
            "photo",
            Part::bytes(Photo::at(46.5, 6.6, "2024:05:17 09:30:00", salt).jpeg())
                .file_name(format!("IMG_{salt}.jpg"))
                .mime_str("image/jpeg")
                .unwrap(),
        )
}

async fn send_photo(sb: &Sandbox, form: Form) -> (u16, Value) {
    let r = client()
        .post(api(sb, "/1.0/photo/"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn osm_code_flow_pkce_basic_and_oob() {
    let sb = sandbox().await;
    let r = osm_code(&sb, CB, true).await;
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert_eq!(param(&loc, "state").as_deref(), Some("osm-state"));
    let code = param(&loc, "code").unwrap();

    // PKCE: a wrong verifier fails (and burns the code, which is single-use).
    let bad = client()
        .post(sb.urls().osm_token)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
            ("client_id", OSM_CLIENT_ID),
            ("code_verifier", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["error"], "invalid_grant");

    // A fresh code with PKCE and client_secret_basic.
    let code = param(&location(&osm_code(&sb, CB, true).await), "code").unwrap();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{OSM_CLIENT_ID}:{OSM_CLIENT_SECRET}"));
    let ok = client()
        .post(sb.urls().osm_token)
        .header("Authorization", format!("Basic {basic}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let v: Value = ok.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    let token = v["access_token"].as_str().unwrap();
    let me: Value = client()
        .get(format!(
            "{}/osm/api/0.6/user/details.json",
            s(&sb.base_url())
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"]["display_name"], "sandbøx-ünïcode");

    // Wrong secret, wrong redirect_uri.
    let code = param(&location(&osm_code(&sb, CB, false).await), "code").unwrap();
    let r = client()
        .post(sb.urls().osm_token)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
            ("client_id", OSM_CLIENT_ID),
            ("client_secret", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let code = param(&location(&osm_code(&sb, CB, false).await), "code").unwrap();
    let r = client()
        .post(sb.urls().osm_token)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", "http://127.0.0.1:1/other"),
            ("client_id", OSM_CLIENT_ID),
            ("client_secret", OSM_CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Out of band: the code is shown on a page.
    let r = osm_code(&sb, "urn:ietf:wg:oauth:2.0:oob", false).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("id=\"authorization_code\"")
    );
}

#[tokio::test]
async fn client_auth_turns_an_osm_token_into_a_kartaview_token() {
    let sb = sandbox().await;
    let osm = osm_token(&sb).await;
    let (code, v) = post_form(
        &sb,
        "/auth/openstreetmap/client_auth",
        &[("request_token", &osm), ("secret_token", OSM_CLIENT_SECRET)],
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let osv = &v["osv"];
    assert!(osv["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(osv["id"], "7000002");
    assert_eq!(osv["username"], "sandbøx-ünïcode");
    assert_eq!(osv["full_name"], "Sandbøx Ünïcode 地図 🚲");
    let kv = osv["access_token"].as_str().unwrap().to_owned();
    create_sequence(&sb, &kv).await;

    let (code, v) = post_form(
        &sb,
        "/auth/openstreetmap/client_auth",
        &[("request_token", &osm), ("secret_token", "another-app")],
    )
    .await;
    assert_eq!((code, v["status"]["apiCode"].as_str()), (400, Some("690")));
    let (code, _) = post_form(
        &sb,
        "/auth/openstreetmap/client_auth",
        &[
            ("request_token", "bogus"),
            ("secret_token", OSM_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(code, 401);
    let (code, v) = post_form(
        &sb,
        "/auth/openstreetmap/client_auth",
        &[("secret_token", "x")],
    )
    .await;
    assert_eq!((code, v["status"]["apiCode"].as_str()), (400, Some("610")));
}

#[tokio::test]
async fn photos_duplicates_and_validation() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::KartaView, 0);
    let seq = create_sequence(&sb, &token).await;

    let (code, v) = send_photo(&sb, photo_form(&token, &seq, "0", 1)).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"]["apiCode"], "600");
    assert!(
        v["osv"]["photo"]["id"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit())
    );
    assert_eq!(v["osv"]["photo"]["sequenceIndex"], "0");

    // The same index again: HTTP 400, code 660, the exact message.
    let (code, v) = send_photo(&sb, photo_form(&token, &seq, "0", 2)).await;
    assert_eq!(code, 400);
    assert_eq!(v["status"]["apiCode"], "660");
    assert_eq!(
        v["status"]["apiMessage"],
        " You are not allowed to add a duplicate entry (sequenceIndex)"
    );
    assert_eq!(v["status"]["httpCode"], 400);

    // Validation.
    let (code, v) = send_photo(&sb, photo_form(&token, &seq, "x", 3)).await;
    assert_eq!((code, v["status"]["apiCode"].as_str()), (400, Some("611")));
    let (code, v) = send_photo(&sb, photo_form(&token, &seq, "-1", 3)).await;
    assert_eq!((code, v["status"]["apiCode"].as_str()), (400, Some("612")));
    let no_coord = Form::new()
        .text("access_token", token.clone())
        .text("sequenceId", seq.clone())
        .text("sequenceIndex", "5")
        .text("shotDate", "2024-05-17 09:30:00");
    let (code, v) = send_photo(&sb, no_coord).await;
    assert_eq!((code, v["status"]["apiCode"].as_str()), (400, Some("610")));
    let (code, v) = send_photo(
        &sb,
        photo_form(&token, &seq, "6", 6).text("projection", "SPHERE"),
    )
    .await;
    assert_eq!(
        (code, v["status"]["apiCode"].as_str()),
        (400, Some("610")),
        "projection needs fieldOfView"
    );
    let (code, _) = send_photo(
        &sb,
        photo_form(&token, &seq, "1", 7)
            .text("projection", "PLAIN")
            .text("fieldOfView", "70"),
    )
    .await;
    assert_eq!(code, 200);

    // No token: 401 with the exact message.
    let (code, v) = send_photo(&sb, photo_form("wrong", &seq, "2", 8)).await;
    assert_eq!(code, 401);
    assert_eq!(v["status"]["apiCode"], "401");
    assert_eq!(
        v["status"]["apiMessage"],
        " You have to be authenticated in order to access this method"
    );

    // Somebody else's sequence.
    let other = sb.issue_token(Service::KartaView, 1);
    let (code, v) = send_photo(&sb, photo_form(&other, &seq, "3", 9)).await;
    assert_eq!((code, v["status"]["apiCode"].as_str()), (403, Some("618")));

    let st = sb.state().kartaview_sequence(&seq).unwrap();
    assert_eq!(st.photos.len(), 2);
    assert_eq!(st.photos[1].projection.as_deref(), Some("PLANE"));
    assert_eq!(st.photos[0].heading, Some(87.5));
    assert_eq!(st.duplicate_attempts, vec![0]);
    let rec = sb
        .requests()
        .into_iter()
        .find(|r| r.endpoint.as_deref() == Some("kartaview.photo"))
        .unwrap();
    assert_eq!(rec.field("sequenceIndex"), Some("0"));
    assert!(rec.field("access_token").unwrap().ends_with('…'));
    assert_eq!(rec.files[0].field, "photo");
    assert_eq!(rec.files[0].filename.as_deref(), Some("IMG_1.jpg"));
}

#[tokio::test]
async fn finish_then_processing_states_in_v1_and_v2() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::KartaView, 0);
    let seq = create_sequence(&sb, &token).await;
    for i in 0..3 {
        let (code, _) = send_photo(&sb, photo_form(&token, &seq, &i.to_string(), 10 + i)).await;
        assert_eq!(code, 200);
    }
    let v2 = |id: String| {
        let sb = &sb;
        async move {
            let r = client()
                .get(api(sb, &format!("/2.0/sequence/{id}")))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (code, v) = v2(seq.clone()).await;
    assert_eq!(code, 200);
    assert_eq!(v["status"]["apiCode"], 600, "apiCode is a number in v2");
    let d = &v["result"]["data"];
    assert_eq!(
        (d["status"].as_str(), d["uploadStatus"].as_str()),
        (Some("NEW"), Some("UPLOADING"))
    );
    assert_eq!(d["countActivePhotos"], 3);

    let (code, v) = post_form(
        &sb,
        "/1.0/sequence/finished-uploading/",
        &[("access_token", &token), ("sequenceId", &seq)],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v["status"]["apiCode"], "600");
    // Idempotent.
    let (code, _) = post_form(
        &sb,
        "/1.0/sequence/finished-uploading/",
        &[("access_token", &token), ("sequenceId", &seq)],
    )
    .await;
    assert_eq!(code, 200);
    let (_, v) = v2(seq.clone()).await;
    let d = &v["result"]["data"];
    assert_eq!(d["status"], "UPLOAD_FINISHED");
    assert_eq!(d["processingStatus"], "PROCESSING");
    assert_eq!(d["uploadStatus"], "FINISHED");

    // No photos after the finish.
    let (code, v) = send_photo(&sb, photo_form(&token, &seq, "9", 19)).await;
    assert_eq!((code, v["status"]["apiCode"].as_str()), (400, Some("671")));

    tokio::time::sleep(DELAY + Duration::from_millis(100)).await;
    let (_, v) = v2(seq.clone()).await;
    let d = &v["result"]["data"];
    assert_eq!(d["status"], "PROCESSING_FINISHED");
    assert_eq!(d["processingStatus"], "FINISHED");
    assert_eq!(d["imageProcessingStatus"], "FINISHED");

    let r = client()
        .get(api(&sb, "/2.0/photo/"))
        .query(&[
            ("sequenceId", seq.as_str()),
            ("page", "1"),
            ("itemsPerPage", "2"),
        ])
        .header("X-AUTH-TOKEN", &token)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["result"]["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["result"]["hasMoreData"], true);
    assert_eq!(
        v["result"]["data"][0]["autoImgProcessingStatus"],
        "FINISHED"
    );
    assert_eq!(v["result"]["data"][0]["autoImgProcessingResult"], "BLURRED");

    let (code, v) = v2("999999".into()).await;
    assert_eq!((code, v["status"]["apiCode"].as_i64()), (404, Some(404)));
    let bad = client()
        .get(api(&sb, &format!("/2.0/sequence/{seq}")))
        .header("X-AUTH-TOKEN", "bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
}

#[tokio::test]
async fn lists_details_and_removal() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::KartaView, 0);
    let a = create_sequence(&sb, &token).await;
    let b = create_sequence(&sb, &token).await;
    let (_, v) = send_photo(&sb, photo_form(&token, &a, "0", 30)).await;
    let photo_id = v["osv"]["photo"]["id"].as_str().unwrap().to_owned();

    let (code, v) = post_form(
        &sb,
        "/my-list",
        &[("ipp", "100"), ("page", "1"), ("username", "sandbox-user")],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v["totalFilteredItems"][0], 2);
    assert_eq!(v["currentPageItems"][0]["id"], b.as_str(), "newest first");
    let (_, v) = post_form(&sb, "/details", &[("id", &a), ("platform", "web")]).await;
    assert_eq!(v["osv"]["photo_no"], "1");
    let (_, v) = post_form(&sb, "/1.0/sequence/photo-list/", &[("sequenceId", &a)]).await;
    assert_eq!(v["osv"]["photos"][0]["id"], photo_id.as_str());

    let (code, v) = post_form(
        &sb,
        "/1.0/photo/remove/",
        &[("access_token", &token), ("photoId", &photo_id)],
    )
    .await;
    assert_eq!((code, v["status"]["apiCode"].as_str()), (200, Some("600")));
    assert!(sb.state().kartaview_sequence(&a).unwrap().photos.is_empty());
    let (code, v) = post_form(
        &sb,
        "/1.0/sequence/remove/",
        &[("access_token", &token), ("sequenceId", &b)],
    )
    .await;
    assert_eq!((code, v["status"]["apiCode"].as_str()), (200, Some("600")));
    let r = client()
        .get(api(&sb, &format!("/2.0/sequence/{b}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_, v) = post_form(&sb, "/my-list", &[("username", "sandbox-user")]).await;
    assert_eq!(v["totalFilteredItems"][0], 1);

    // Trailing slashes matter.
    let r = client()
        .post(api(&sb, "/1.0/sequence"))
        .form(&[("access_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn client_auth_can_refuse_osm_tokens_from_apps_kartaview_does_not_know() {
    let sb = sandbox().await;
    let osm = osm_token(&sb).await;
    let auth = |osm: String| {
        let sb = &sb;
        async move {
            post_form(
                sb,
                "/auth/openstreetmap/client_auth",
                &[("request_token", &osm), ("secret_token", OSM_CLIENT_SECRET)],
            )
            .await
        }
    };
    sb.faults()
        .apply_spec("kartaview_refuse_osm_apps=400")
        .unwrap();
    let (code, v) = auth(osm.clone()).await;
    assert_eq!(
        (code, v["status"]["apiCode"].as_str()),
        (400, Some("690")),
        "{v}"
    );
    assert!(v.get("osv").is_none(), "{v}");

    sb.faults()
        .apply_spec("kartaview_refuse_osm_apps=401")
        .unwrap();
    let (code, v) = auth(osm.clone()).await;
    assert_eq!(code, 401, "{v}");
    assert_eq!(v["status"]["apiMessage"], "Invalid access token");

    // The same token works again once KartaView accepts the app.
    sb.faults()
        .apply_spec("kartaview_refuse_osm_apps=off")
        .unwrap();
    let (code, v) = auth(osm).await;
    assert_eq!(code, 200, "{v}");
    assert!(
        mtp_sandbox::Faults::parse_spec("kartaview_refuse_osm_apps=maybe").is_err(),
        "a bad value is refused"
    );

    // KartaView's own OSM app (upload-scripts'): out of band only, its own codes and secret,
    // and accepted by client_auth even while other apps are refused.
    sb.faults()
        .apply_spec("kartaview_refuse_osm_apps=401")
        .unwrap();
    let authorize = |redirect: &'static str| {
        client()
            .get(sb.urls().osm_authorize)
            .query(&[
                ("client_id", KARTAVIEW_OSM_CLIENT_ID),
                ("response_type", "code"),
                ("redirect_uri", redirect),
                ("scope", "openid read_prefs"),
            ])
            .send()
    };
    let r = authorize(CB).await.unwrap();
    assert_eq!(
        r.status(),
        400,
        "only the out-of-band redirect is registered"
    );
    assert!(r.text().await.unwrap().contains("redirect uri"));
    let page = authorize(OOB).await.unwrap().text().await.unwrap();
    assert!(page.contains("KartaView upload-scripts"), "{page}");
    let approve = |fields: Vec<(&'static str, &'static str)>| {
        let url = format!("{}/osm/oauth2/authorize/decision", s(&sb.base_url()));
        async move {
            let page = client().post(url).form(&fields).send().await.unwrap();
            assert_eq!(page.status(), 200);
            let page = page.text().await.unwrap();
            let code = page
                .split("id=\"authorization_code\">")
                .nth(1)
                .and_then(|rest| rest.split('<').next())
                .unwrap_or_else(|| panic!("no code on {page}"));
            code.to_owned()
        }
    };
    let fields = vec![
        ("client_id", KARTAVIEW_OSM_CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", OOB),
        ("decision", "approve"),
        ("user", "0"),
    ];
    let exchange = |code: String, id: &'static str, secret: &'static str| {
        client().post(sb.urls().osm_token).form(&[
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", OOB.to_owned()),
            ("client_id", id.to_owned()),
            ("client_secret", secret.to_owned()),
        ])
    };
    // Its code cannot be exchanged by another app.
    let code = approve(fields.clone()).await;
    let r = exchange(code, OSM_CLIENT_ID, OSM_CLIENT_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let code = approve(fields).await;
    let v: Value = exchange(code, KARTAVIEW_OSM_CLIENT_ID, KARTAVIEW_OSM_CLIENT_SECRET)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kv_osm = v["access_token"].as_str().unwrap().to_owned();
    // Its token goes with its secret, not another app's.
    sb.faults()
        .apply_spec("kartaview_refuse_osm_apps=off")
        .unwrap();
    let (code, v) = post_form(
        &sb,
        "/auth/openstreetmap/client_auth",
        &[
            ("request_token", &kv_osm),
            ("secret_token", OSM_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(code, 401, "{v}");
    sb.faults()
        .apply_spec("kartaview_refuse_osm_apps=401")
        .unwrap();
    let (code, v) = post_form(
        &sb,
        "/auth/openstreetmap/client_auth",
        &[
            ("request_token", &kv_osm),
            ("secret_token", KARTAVIEW_OSM_CLIENT_SECRET),
        ],
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["osv"]["username"], mtp_sandbox::SANDBOX_USERNAME);
}
