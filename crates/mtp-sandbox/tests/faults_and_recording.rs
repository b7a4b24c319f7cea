//! Fault injection (every mode, every service's error format) and the request recorder.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Photo, client, s, sandbox};
use mtp_sandbox::{MAPILLARY_CLIENT_SECRET, Sandbox, Service};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

async fn status_of(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.unwrap().status().as_u16()
}

fn kv(sb: &Sandbox, path: &str) -> String {
    format!("{}{path}", s(&sb.urls().kartaview_api))
}

fn me(sb: &Sandbox, token: &str) -> reqwest::RequestBuilder {
    client()
        .get(format!(
            "{}/me?fields=id,username",
            s(&sb.urls().mapillary_graph)
        ))
        .header("Authorization", format!("OAuth {token}"))
}

#[tokio::test]
async fn fail_next_is_deterministic_and_recorded() {
    let sb = sandbox().await;
    let id = sb.faults().fail_next("kartaview.sequence_v2", 2, 503);
    let url = kv(&sb, "/2.0/sequence/123");
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"]["apiCode"], 690, "v2 envelope, numeric code");
    assert_eq!(status_of(client().get(&url)).await, 503);
    assert_eq!(
        status_of(client().get(&url)).await,
        404,
        "the real handler runs again"
    );
    assert_eq!(sb.faults().fired(id), 2);
    let faults: Vec<Option<String>> = sb.requests().into_iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [
            Some("status 503".to_owned()),
            Some("status 503".to_owned()),
            None
        ]
    );
}

#[tokio::test]
async fn error_rate_repeats_with_the_same_seed() {
    async fn run() -> Vec<u16> {
        let sb = sandbox().await;
        sb.faults()
            .apply_spec("seed=11; panoramax.root:error_rate=0.5,status=502")
            .unwrap();
        let mut out = Vec::new();
        for _ in 0..30 {
            let url = format!("{}/api", s(&sb.urls().panoramax_instance));
            out.push(status_of(client().get(url)).await);
        }
        out
    }
    let a = run().await;
    assert_eq!(a, run().await);
    let failed = a.iter().filter(|c| **c == 502).count();
    assert!((5..=25).contains(&failed), "{a:?}");
}

#[tokio::test]
async fn rate_limits_in_each_service_format() {
    let sb = sandbox().await;
    sb.faults()
        .apply_spec("mapillary.me:rate_limit=1,retry_after=2; mapillary.offset:rate_limit=1,backoff_ms=1500; mtpw.create:rate_limit=1,retry_after=3")
        .unwrap();
    let token = sb.issue_token(Service::Mapillary, 0);
    // The Graph API in its own shape (Facebook's rate-limit code 4), no `debug_info`.
    let r = me(&sb, &token).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "2");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], 4);
    assert_eq!(v["error"]["is_transient"], true);
    assert!(v.get("debug_info").is_none(), "{v}");
    assert_eq!(status_of(me(&sb, &token)).await, 200);
    // The upload host in its `debug_info` shape, with mapillary_tools' `backoff`.
    let offset = || {
        client()
            .get(format!(
                "{}/mly_tools_x.jpg",
                s(&sb.urls().mapillary_upload)
            ))
            .header("Authorization", format!("OAuth {token}"))
    };
    let r = offset().send().await.unwrap();
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["backoff"], 1500);
    assert_eq!(v["debug_info"]["type"], "RequestRateLimitedError");
    assert_eq!(v["debug_info"]["retriable"], false);
    assert!(v.get("error").is_none(), "{v}");
    assert_eq!(status_of(offset()).await, 200);

    let r = client()
        .post(format!(
            "{}/api/v1/sequence/create/",
            s(&sb.urls().mtpw_base)
        ))
        .bearer_auth(sb.issue_token(Service::Mtpw, 0))
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(
        r.json::<Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .contains("3 seconds")
    );
}

#[tokio::test]
async fn latency_delays_matching_requests() {
    let sb = sandbox().await;
    sb.faults().latency("panoramax", Duration::from_millis(200));
    let url = format!("{}/api/configuration", s(&sb.urls().panoramax_instance));
    let t = Instant::now();
    assert_eq!(status_of(client().get(&url)).await, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    let t = Instant::now();
    assert_eq!(status_of(me(&sb, "x")).await, 401);
    assert!(
        t.elapsed() < Duration::from_millis(200),
        "other services are not delayed"
    );
    assert_eq!(sb.requests()[0].fault.as_deref(), Some("latency 200ms"));
}

#[tokio::test]
async fn reset_cuts_a_multipart_upload_and_nothing_is_stored() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::KartaView, 0);
    let r: Value = client()
        .post(kv(&sb, "/1.0/sequence/"))
        .form(&[
            ("access_token", token.as_str()),
            ("uploadSource", "t"),
            ("currentCoordinate", "1,2"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seq = r["osv"]["sequence"]["id"].as_str().unwrap().to_owned();
    sb.faults()
        .apply_spec("kartaview.photo:reset_after=200,times=1")
        .unwrap();
    let form = || {
        Form::new()
            .text("access_token", token.clone())
            .text("sequenceId", seq.clone())
            .text("sequenceIndex", "0")
            .text("coordinate", "1,2")
            .text("shotDate", "2024-05-17 09:30:00")
            .part(
                "photo",
                Part::bytes(Photo::at(1.0, 2.0, "2024:05:17 09:30:00", 1).jpeg())
                    .file_name("a.jpg"),
            )
    };
    let cut = client()
        .post(kv(&sb, "/1.0/photo/"))
        .multipart(form())
        .send()
        .await;
    assert!(cut.is_err(), "{cut:?}");
    assert!(
        sb.state()
            .kartaview_sequence(&seq)
            .unwrap()
            .photos
            .is_empty()
    );
    let rec = sb.requests().pop().unwrap();
    assert_eq!((rec.status, rec.body_len), (None, 200));
    // The retry goes through.
    let ok = client()
        .post(kv(&sb, "/1.0/photo/"))
        .multipart(form())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn forced_expiry_and_revocation() {
    let sb = sandbox().await;
    let mly = sb.issue_token(Service::Mapillary, 0);
    let kvt = sb.issue_token(Service::KartaView, 0);
    let mtpw = sb.issue_token(Service::Mtpw, 0);
    let pnx = sb.issue_token(Service::Panoramax, 0);
    // A refresh token from the real flow.
    let code = {
        let auto = client()
            .get(sb.urls().mapillary_authorize)
            .query(&[
                ("client_id", "1001"),
                ("response_type", "code"),
                ("redirect_uri", "app.mtp.desktop://app"),
            ])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(auto.contains("Approve"));
        let r = client()
            .post(format!("{}/mapillary/connect/decision", s(&sb.base_url())))
            .form(&[
                ("client_id", "1001"),
                ("response_type", "code"),
                ("redirect_uri", "app.mtp.desktop://app"),
                ("decision", "approve"),
                ("user", "0"),
            ])
            .send()
            .await
            .unwrap();
        common::param(&common::location(&r), "code").unwrap()
    };
    // A distinct refresh token (the knob): it outlives the expiry of access tokens.
    sb.faults()
        .apply_spec("mapillary_refresh_tokens=issue")
        .unwrap();
    let tokens: Value = client()
        .post(sb.urls().mapillary_token)
        .header("Authorization", format!("OAuth {MAPILLARY_CLIENT_SECRET}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "1001"),
            ("code", &code),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    sb.faults().expire_tokens();
    let r = me(&sb, &mly).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("expired"));
    let v2 = client()
        .get(kv(&sb, "/2.0/sequence/1"))
        .header("X-AUTH-TOKEN", &kvt)
        .send()
        .await
        .unwrap();
    assert_eq!(v2.status(), 401);
    let r = client()
        .post(format!(
            "{}/api/v1/sequence/create/",
            s(&sb.urls().mtpw_base)
        ))
        .bearer_auth(&mtpw)
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    // mtp-web (Django REST framework) answers a revoked token with 403 `{"detail"}`.
    assert_eq!(r.status(), 403);
    let r = client()
        .get(format!("{}/api/users/me", s(&sb.urls().panoramax_instance)))
        .bearer_auth(&pnx)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Tokens issued afterwards work; the refresh token survived and gives a working token.
    assert_eq!(
        status_of(me(&sb, &sb.issue_token(Service::Mapillary, 0))).await,
        200
    );
    let refresh_once = || {
        client()
            .post(sb.urls().mapillary_token)
            .header("Authorization", format!("OAuth {MAPILLARY_CLIENT_SECRET}"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "1001"),
                ("refresh_token", refresh.as_str()),
            ])
            .send()
    };
    let r = refresh_once().await.unwrap();
    assert_eq!(r.status(), 200);
    let fresh = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(status_of(me(&sb, &fresh)).await, 200);

    sb.faults().revoke_tokens();
    assert_eq!(refresh_once().await.unwrap().status(), 400);
    assert_eq!(status_of(me(&sb, &fresh)).await, 401);
}

#[tokio::test]
async fn control_plane_faults_and_tokens() {
    let sb = sandbox().await;
    let admin = s(&sb.urls().sandbox_admin);
    let r = client()
        .post(format!("{admin}/faults"))
        .body("mapillary.me:fail_next=1,status=500")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .post(format!("{admin}/faults"))
        .body("mapillary.mee:fail_next=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("mapillary.mee")
    );
    let list: Value = client()
        .get(format!("{admin}/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["rules"][0]["rule"]["action"],
        json!({"kind": "status", "status": 500, "retry_after": null})
    );

    let t: Value = client()
        .post(format!("{admin}/tokens?service=mapillary&user=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = t["access_token"].as_str().unwrap();
    assert_eq!(status_of(me(&sb, token)).await, 500);
    assert_eq!(status_of(me(&sb, token)).await, 200);
    assert_eq!(
        status_of(client().delete(format!("{admin}/faults"))).await,
        204
    );
    assert!(sb.faults().rules().is_empty());

    let reqs: Value = client()
        .get(format!("{admin}/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        reqs.as_array().unwrap().len(),
        2,
        "control-plane calls are not recorded"
    );
    let urls: Value = client()
        .get(format!("{admin}/urls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        urls["mapillary_graph"]
            .as_str()
            .unwrap()
            .ends_with("/mapillary/graph")
    );
}

#[tokio::test]
async fn recorder_keeps_what_reached_the_server_without_secrets() {
    let sb = sandbox().await;
    let token = sb.issue_token(Service::Mtpw, 0);
    client()
        .post(format!(
            "{}/api/v1/sequence/create/",
            s(&sb.urls().mtpw_base)
        ))
        .bearer_auth(&token)
        .form(&[("name", "Hike"), ("transport_type", "Walk"), ("tag", "a,b")])
        .send()
        .await
        .unwrap();
    client()
        .get(format!(
            "{}/images?bbox=1,2,3,4&access_token=SECRETTOKEN",
            s(&sb.urls().mapillary_graph)
        ))
        .send()
        .await
        .unwrap();
    client()
        .put(format!(
            "{}/api/v1/sequence/import/x/",
            s(&sb.urls().mtpw_base)
        ))
        .bearer_auth(&token)
        .json(&json!({"mapillary_user_token": "MLY|123|secret", "strava": "42"}))
        .send()
        .await
        .unwrap();
    client()
        .get(format!("{}/nowhere", s(&sb.base_url())))
        .send()
        .await
        .unwrap();

    let reqs = sb.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2, 3]);

    let create = &reqs[0];
    assert_eq!(create.service.as_deref(), Some("mtpw"));
    assert_eq!(create.endpoint.as_deref(), Some("mtpw.create"));
    assert_eq!(
        (create.method.as_str(), create.path.as_str()),
        ("POST", "/mtpw/api/v1/sequence/create/")
    );
    assert_eq!(
        create.form,
        [
            ("name".to_owned(), "Hike".to_owned()),
            ("transport_type".into(), "Walk".into()),
            ("tag".into(), "a,b".into())
        ]
    );
    assert_eq!(create.status, Some(200));
    assert!(create.body_complete);
    assert_eq!(
        create.body_md5,
        common::md5_hex(b"name=Hike&transport_type=Walk&tag=a%2Cb")
    );
    let auth = create.header("authorization").unwrap();
    assert_eq!(auth, format!("Bearer {}…", &token[..4]));

    let images = &reqs[1];
    assert!(!images.query.as_deref().unwrap().contains("SECRETTOKEN"));
    assert!(
        images
            .query
            .as_deref()
            .unwrap()
            .contains("bbox=1%2C2%2C3%2C4")
    );

    let import = &reqs[2];
    assert_eq!(import.status, Some(500));
    assert_eq!(
        import.json.as_ref().unwrap()["mapillary_user_token"],
        "MLY|…"
    );
    assert_eq!(import.json.as_ref().unwrap()["strava"], "42");

    assert_eq!(
        (
            reqs[3].endpoint.as_deref(),
            reqs[3].status,
            reqs[3].service.as_deref()
        ),
        (None, Some(404), None)
    );

    let dump = serde_json::to_string(&reqs).unwrap();
    assert!(!dump.contains(&token) && !dump.contains("SECRETTOKEN") && !dump.contains("secret\""));
    sb.clear_requests();
    assert!(sb.requests().is_empty());
}
