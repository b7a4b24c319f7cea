//! Authorize URLs, redirect parsing and token exchange (PROTOCOLS §2.1, §3.1, §5).
#![allow(clippy::unwrap_used)]

mod common;

/// A canned reply: status, content type, body.
type Canned = (StatusCode, &'static str, String);

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use common::{Log, serve};
use mtp_core::Destination;
use mtp_core::clock::ManualClock;
use mtp_core::secret::Secret;
use mtp_providers::config::{KartaViewConfig, MapillaryConfig, MtpwConfig};
use mtp_providers::oauth::{MapillaryOAuth, MtpwOAuth, OsmOAuth, REFRESH_MARGIN_MS, TokenSet};
use mtp_providers::{ErrorKind, PendingAuthorization};
use serde_json::json;
use sha2::{Digest, Sha256};
use url::Url;

const NOW: i64 = 1_700_000_000_000;
const SECRET: &str = "MLY|123456|0123abcd";

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn mapillary_config(base: &str) -> MapillaryConfig {
    let mut config = MapillaryConfig::production_defaults("123456", Secret::from(SECRET));
    config.graph_url = common::url(&format!("{base}/mapillary/graph"));
    config.authorize_url = common::url(&format!("{base}/mapillary/connect"));
    config
}

#[test]
fn mapillary_authorize_url() {
    let config = MapillaryConfig::production_defaults("123456", Secret::from(SECRET));
    let oauth = MapillaryOAuth::new(common::client(), config);
    let pending = oauth.authorize().unwrap();
    assert_eq!(pending.service, Destination::Mapillary);
    let url = &pending.authorize_url;
    assert!(
        url.as_str()
            .starts_with("https://www.mapillary.com/connect?"),
        "{url}"
    );
    assert!(
        url.as_str()
            .contains("redirect_uri=app.mtp.desktop%3A%2F%2Fapp"),
        "{url}"
    );
    let q = query(url);
    assert_eq!(q["client_id"], "123456");
    assert_eq!(q["response_type"], "code");
    // No scope by default: the token gets what the app was registered with (PROTOCOLS
    // §2.1); `read` (JOSM's) would give a token that cannot upload.
    assert!(!q.contains_key("scope"), "{url}");
    assert_eq!(q["redirect_uri"], "app.mtp.desktop://app");
    assert_eq!(q["state"], pending.state);
    assert!(pending.state.len() >= 16);
    // No PKCE for Mapillary (documented on MapillaryOAuth::authorize).
    assert!(!q.contains_key("code_challenge"));
    assert!(pending.pkce_verifier.is_none());
    // A fresh state every time.
    assert_ne!(oauth.authorize().unwrap().state, pending.state);
}

#[test]
fn osm_authorize_url_has_pkce_s256() {
    let config = KartaViewConfig::production_defaults("osm-client", Secret::from("osm-secret"));
    let pending = OsmOAuth::new(common::client(), config).authorize().unwrap();
    assert_eq!(pending.service, Destination::Kartaview);
    let url = &pending.authorize_url;
    assert!(
        url.as_str()
            .starts_with("https://www.openstreetmap.org/oauth2/authorize?")
    );
    assert!(
        url.as_str()
            .contains("redirect_uri=app.mtp.desktop%3A%2F%2Fapp"),
        "{url}"
    );
    let q = query(url);
    assert_eq!(q["client_id"], "osm-client");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "openid read_prefs");
    assert_eq!(q["state"], pending.state);
    assert_eq!(q["code_challenge_method"], "S256");
    let verifier = pending.pkce_verifier.as_ref().unwrap();
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.expose().as_bytes()));
    assert_eq!(q["code_challenge"], expected);
}

#[test]
fn mtpw_authorize_url_is_implicit() {
    let mut config = MtpwConfig::production_defaults("mtpw-client");
    config.base_url = common::url("http://127.0.0.1:9/mtpw");
    let pending = MtpwOAuth::new(config).authorize().unwrap();
    let url = &pending.authorize_url;
    assert_eq!(url.path(), "/mtpw/accounts/authorize/");
    assert!(
        url.as_str()
            .contains("redirect_uri=app.mtp.desktop%3A%2F%2Fapp"),
        "{url}"
    );
    let q = query(url);
    assert_eq!(q["response_type"], "token");
    assert_eq!(q["client_id"], "mtpw-client");
    assert_eq!(q["state"], pending.state);
    let production = MtpwOAuth::new(MtpwConfig::production_defaults("c"))
        .authorize()
        .unwrap();
    assert!(
        production
            .authorize_url
            .as_str()
            .starts_with("https://www.mapthepaths.com/accounts/authorize/?")
    );
}

fn pending(service: Destination, state: &str) -> PendingAuthorization {
    PendingAuthorization {
        service,
        state: state.to_string(),
        pkce_verifier: None,
        authorize_url: common::url("https://example.invalid/authorize"),
    }
}

#[test]
fn code_redirects_are_checked_for_state_first() {
    let p = pending(Destination::Mapillary, "s3cr3t-state");
    let code = p
        .code_from_redirect(&common::url(
            "app.mtp.desktop://app?code=abc123&state=s3cr3t-state",
        ))
        .unwrap();
    assert_eq!(code.expose(), "abc123");
    let loopback = p
        .code_from_redirect(&common::url(
            "http://127.0.0.1:8763/callback?state=s3cr3t-state&code=xyz",
        ))
        .unwrap();
    assert_eq!(loopback.expose(), "xyz");

    for bad in [
        "app.mtp.desktop://app?code=abc123&state=other",
        "app.mtp.desktop://app?code=abc123",
        "app.mtp.desktop://app?state=s3cr3t-state",
    ] {
        let e = p.code_from_redirect(&common::url(bad)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{bad}");
    }
    let e = p
        .code_from_redirect(&common::url(
            "app.mtp.desktop://app?error=access_denied&error_description=User+said+no&state=s3cr3t-state",
        ))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(e.message().contains("access_denied: User said no"), "{e}");
}

#[test]
fn mtpw_token_comes_from_the_fragment() {
    let oauth = MtpwOAuth::new(MtpwConfig::production_defaults("c"));
    let p = pending(Destination::Mtpw, "st");
    let tokens = oauth
        .token_from_redirect(
            &p,
            &common::url("app.mtp.desktop://app#access_token=mtpw-tok&token_type=Bearer&expires_in=600000000&scope=read+write&state=st"),
            NOW,
        )
        .unwrap();
    assert_eq!(tokens.access_token.expose(), "mtpw-tok");
    assert_eq!(tokens.refresh_token, None);
    assert_eq!(tokens.expires_at_ms, Some(NOW + 600_000_000_000));

    for bad in [
        "app.mtp.desktop://app#access_token=t&state=other",
        "app.mtp.desktop://app#access_token=t",
        "app.mtp.desktop://app#state=st",
        "app.mtp.desktop://app#error=access_denied&state=st",
    ] {
        let e = oauth
            .token_from_redirect(&p, &common::url(bad), NOW)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth, "{bad}");
    }
    let e = oauth
        .token_from_redirect(
            &p,
            &common::url("app.mtp.desktop://app#access_token=t&token_type=mac&state=st"),
            NOW,
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
}

#[test]
fn refresh_window() {
    let tokens = TokenSet {
        access_token: Secret::from("a"),
        refresh_token: None,
        expires_at_ms: Some(NOW),
    };
    assert!(!tokens.should_refresh(NOW - REFRESH_MARGIN_MS - 1));
    assert!(tokens.should_refresh(NOW - REFRESH_MARGIN_MS));
    assert!(!tokens.is_expired(NOW - 1));
    assert!(tokens.is_expired(NOW));
    let forever = TokenSet {
        expires_at_ms: None,
        ..tokens
    };
    assert!(!forever.should_refresh(i64::MAX));
}

/// A token endpoint that records the request and answers with the queued reply.
#[derive(Clone, Default)]
struct TokenStub {
    log: Log,
    replies: Arc<std::sync::Mutex<Vec<Canned>>>,
}

impl TokenStub {
    fn reply(&self, status: StatusCode, content_type: &'static str, body: serde_json::Value) {
        self.replies
            .lock()
            .unwrap()
            .push((status, content_type, body.to_string()));
    }
    fn reply_raw(&self, status: StatusCode, content_type: &'static str, body: &str) {
        self.replies
            .lock()
            .unwrap()
            .push((status, content_type, body.to_string()));
    }
}

async fn token_endpoint(
    State(s): State<TokenStub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.log.record(&method, &uri, &headers, body);
    let (status, content_type, body) = s.replies.lock().unwrap().remove(0);
    (status, [("content-type", content_type)], body).into_response()
}

async fn client_auth(
    State(s): State<TokenStub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.log.record(&method, &uri, &headers, body);
    axum::Json(json!({"status":{"apiCode":"600","apiMessage":"ok"},"osv":{"access_token":"kv-token","id":"77","username":"bob","full_name":"Bob B"}})).into_response()
}

async fn token_server() -> (TokenStub, String) {
    let stub = TokenStub::default();
    let router = Router::new()
        .route("/mapillary/graph/token", post(token_endpoint))
        .route("/osm/oauth2/token", post(token_endpoint))
        .route(
            "/kartaview/auth/openstreetmap/client_auth",
            post(client_auth),
        )
        .with_state(stub.clone());
    (stub, serve(router).await)
}

#[tokio::test]
async fn mapillary_code_exchange_sends_the_oauth_header() {
    let (stub, base) = token_server().await;
    let oauth = MapillaryOAuth::new(common::client(), mapillary_config(&base))
        .with_clock(Arc::new(ManualClock::at(NOW)));
    let p = oauth.authorize().unwrap();
    stub.reply(
        StatusCode::OK,
        "application/json",
        json!({"access_token":"user-token","expires_in":5_184_000,"token_type":"bearer"}),
    );
    let tokens = oauth
        .exchange_code(&p, &Secret::from("the-code"))
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose(), "user-token");
    assert_eq!(tokens.refresh_token, None);
    assert_eq!(tokens.expires_at_ms, Some(NOW + 5_184_000_000));

    let seen = stub.log.last();
    assert_eq!(seen.path, "/mapillary/graph/token");
    assert_eq!(
        seen.header("authorization").unwrap(),
        format!("OAuth {SECRET}")
    );
    assert_eq!(
        seen.header("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    let form = seen.form();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["client_id"], "123456");
    assert_eq!(form["code"], "the-code");
    assert_eq!(form["redirect_uri"], "app.mtp.desktop://app");
    assert!(
        !form.contains_key("client_secret"),
        "the secret goes in the header only"
    );
    assert!(!form.contains_key("code_verifier"));
}

#[tokio::test]
async fn mapillary_token_type_and_content_type_handling() {
    let (stub, base) = token_server().await;
    let oauth = MapillaryOAuth::new(common::client(), mapillary_config(&base));
    let p = oauth.authorize().unwrap();
    // Upper-case bearer, JSON served as text/javascript: accepted.
    stub.reply(
        StatusCode::OK,
        "text/javascript; charset=UTF-8",
        json!({"access_token":"t1","token_type":"Bearer","refresh_token":"r1"}),
    );
    let tokens = oauth.exchange_code(&p, &Secret::from("c")).await.unwrap();
    assert_eq!(tokens.refresh_token.as_ref().unwrap().expose(), "r1");
    assert_eq!(tokens.expires_at_ms, None);

    // Any other token type: refused.
    stub.reply(
        StatusCode::OK,
        "application/json",
        json!({"access_token":"t2","token_type":"mac"}),
    );
    let e = oauth
        .exchange_code(&p, &Secret::from("c"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert!(e.message().contains("bearer"), "{e}");

    // A refused code: log in again, with Mapillary's message.
    stub.reply(
        StatusCode::BAD_REQUEST,
        "application/json",
        json!({"error":{"message":"Invalid verification code format.","type":"OAuthException","code":100}}),
    );
    let e = oauth
        .exchange_code(&p, &Secret::from("c"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.message(), "Invalid verification code format.");

    // A server failure: retry.
    stub.reply_raw(
        StatusCode::BAD_GATEWAY,
        "text/html",
        "<html>bad gateway</html>",
    );
    let e = oauth
        .exchange_code(&p, &Secret::from("c"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Retry { after: None });

    // Garbage with a 200: permanent, body shown.
    stub.reply_raw(StatusCode::OK, "text/html", "<html>login page</html>");
    let e = oauth
        .exchange_code(&p, &Secret::from("c"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent);
    assert_eq!(e.body(), Some("<html>login page</html>"));
}

#[tokio::test]
async fn mapillary_refresh_reuses_the_access_token_when_there_is_no_refresh_token() {
    let (stub, base) = token_server().await;
    let oauth = MapillaryOAuth::new(common::client(), mapillary_config(&base))
        .with_clock(Arc::new(ManualClock::at(NOW)));
    let old = TokenSet {
        access_token: Secret::from("old-access"),
        refresh_token: None,
        expires_at_ms: Some(NOW + 1000),
    };
    stub.reply(
        StatusCode::OK,
        "application/json",
        json!({"access_token":"new-access","expires_in":60,"token_type":"bearer"}),
    );
    let new = oauth.refresh(&old).await.unwrap();
    assert_eq!(new.access_token.expose(), "new-access");
    assert_eq!(new.expires_at_ms, Some(NOW + 60_000));
    let seen = stub.log.last();
    assert_eq!(
        seen.header("authorization").unwrap(),
        format!("OAuth {SECRET}")
    );
    let form = seen.form();
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["client_id"], "123456");
    assert_eq!(form["refresh_token"], "old-access");

    // A distinct refresh token is sent, and kept when the reply has none.
    let with_refresh = TokenSet {
        refresh_token: Some(Secret::from("keep-me")),
        ..old
    };
    stub.reply(
        StatusCode::OK,
        "application/json",
        json!({"access_token":"n2","token_type":"bearer"}),
    );
    let new = oauth.refresh(&with_refresh).await.unwrap();
    assert_eq!(stub.log.last().form()["refresh_token"], "keep-me");
    assert_eq!(new.refresh_token.unwrap().expose(), "keep-me");

    // A refused refresh asks for a new login.
    stub.reply(
        StatusCode::UNAUTHORIZED,
        "application/json",
        json!({"error":{"message":"Error validating access token","type":"OAuthException","code":190}}),
    );
    let e = oauth.refresh(&with_refresh).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(
        e.to_string().contains("Reconnect your Mapillary account"),
        "{e}"
    );
}

#[tokio::test]
async fn osm_exchange_then_kartaview_client_auth() {
    let (stub, base) = token_server().await;
    let mut config = KartaViewConfig::production_defaults("osm-client", Secret::from("osm-secret"));
    config.api_url = common::url(&format!("{base}/kartaview"));
    config.osm_authorize_url = common::url(&format!("{base}/osm/oauth2/authorize"));
    config.osm_token_url = common::url(&format!("{base}/osm/oauth2/token"));
    let oauth = OsmOAuth::new(common::client(), config);
    let p = oauth.authorize().unwrap();
    stub.reply(
        StatusCode::OK,
        "application/json; charset=utf-8",
        json!({"access_token":"osm-token","token_type":"Bearer","scope":"openid read_prefs","created_at":1700000000}),
    );
    let (osm, account) = oauth
        .login_kartaview(&p, &Secret::from("osm-code"))
        .await
        .unwrap();
    assert_eq!(osm.access_token.expose(), "osm-token");
    assert_eq!(account.access_token.expose(), "kv-token");
    assert_eq!(account.id, "77");
    assert_eq!(account.username, "bob");
    assert_eq!(account.full_name.as_deref(), Some("Bob B"));

    let all = stub.log.all();
    let token_request = &all[all.len() - 2];
    let form = token_request.form();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "osm-code");
    assert_eq!(form["client_id"], "osm-client");
    assert_eq!(form["client_secret"], "osm-secret");
    assert_eq!(form["redirect_uri"], "app.mtp.desktop://app");
    assert_eq!(
        &form["code_verifier"],
        p.pkce_verifier.as_ref().unwrap().expose()
    );

    let exchange = stub.log.last();
    assert_eq!(exchange.path, "/kartaview/auth/openstreetmap/client_auth");
    let form = exchange.form();
    assert_eq!(form["request_token"], "osm-token");
    assert_eq!(form["secret_token"], "osm-secret");

    // OSM refusing the code (RFC 6749 error body): log in again, message verbatim.
    stub.reply(
        StatusCode::BAD_REQUEST,
        "application/json",
        json!({"error":"invalid_grant","error_description":"The provided authorization grant is invalid"}),
    );
    let e = oauth
        .exchange_code(&p, &Secret::from("bad"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.service(), Destination::Kartaview);
    assert_eq!(e.message(), "The provided authorization grant is invalid");
    assert_eq!(e.code(), Some("invalid_grant"));
}
