//! OpenStreetMap OAuth2 (Doorkeeper) under `/osm`: the authorize page (code flow, PKCE,
//! out-of-band `urn:ietf:wg:oauth:2.0:oob`), the token endpoint (`client_secret_post` or
//! `client_secret_basic`) and `GET /api/0.6/user/details.json`.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::json;
use tokio::time::Instant;

use crate::app::{
    AppRef, auth_credential, ep, json_response, redirect, redirect_allowed, with_query,
};
use crate::auth::{AuthCode, Service, TokenKind, USERS, pkce_matches};
use crate::body::ParsedForm;
use crate::html::{consent_page, error_page, escape, page};
use crate::state::lock;
use crate::{
    KARTAVIEW_OSM_CLIENT_ID, KARTAVIEW_OSM_CLIENT_SECRET, OSM_CLIENT_ID, OSM_CLIENT_SECRET,
};

const OOB: &str = "urn:ietf:wg:oauth:2.0:oob";
const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// An OAuth2 application registered on the emulated OpenStreetMap: OSM checks the client,
/// its secret and its registered redirect URIs, and a code or token belongs to one app.
pub(crate) struct OsmApp {
    pub id: &'static str,
    pub secret: &'static str,
    /// What the consent page calls it.
    pub name: &'static str,
    /// Registered with the out-of-band redirect only (OSM shows the code on a page), as
    /// KartaView's upload-scripts' app is.
    pub oob_only: bool,
}

const APPS: [OsmApp; 2] = [
    OsmApp {
        id: OSM_CLIENT_ID,
        secret: OSM_CLIENT_SECRET,
        name: "MTP Desktop (sandbox OSM app)",
        oob_only: false,
    },
    OsmApp {
        id: KARTAVIEW_OSM_CLIENT_ID,
        secret: KARTAVIEW_OSM_CLIENT_SECRET,
        name: "KartaView upload-scripts",
        oob_only: true,
    },
];

fn app_by_id(id: &str) -> Option<&'static OsmApp> {
    APPS.iter().find(|a| a.id == id)
}

/// The app whose secret this is (KartaView's `client_auth` takes it as `secret_token`).
pub(crate) fn app_with_secret(secret: &str) -> Option<&'static OsmApp> {
    APPS.iter().find(|a| a.secret == secret)
}

pub(crate) fn router(app: &AppRef) -> Router<AppRef> {
    Router::new()
        .route(
            "/oauth2/authorize",
            ep(app, "osm.authorize", get(authorize)),
        )
        .route(
            "/oauth2/authorize/decision",
            ep(app, "osm.authorize_decision", post(decision)),
        )
        .route("/oauth2/token", ep(app, "osm.token", post(token)))
        .route(
            "/api/0.6/user/details.json",
            ep(app, "osm.user_details", get(user_details)),
        )
}

fn validate(q: &HashMap<String, String>) -> Result<(String, &'static OsmApp), Response> {
    let Some(osm_app) = q.get("client_id").and_then(|id| app_by_id(id)) else {
        return Err(error_page(
            StatusCode::UNAUTHORIZED,
            "An error has occurred",
            "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
        ));
    };
    let Some(redirect_uri) = q.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "An error has occurred",
            "The redirect uri included is not valid.",
        ));
    };
    let registered = if osm_app.oob_only {
        redirect_uri == OOB
    } else {
        redirect_uri == OOB || redirect_allowed(redirect_uri)
    };
    if !registered {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "An error has occurred",
            "The redirect uri included is not valid.",
        ));
    }
    if q.get("response_type").map(String::as_str) != Some("code") {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "An error has occurred",
            "The authorization server does not support this response type.",
        ));
    }
    if let Some(m) = q.get("code_challenge_method")
        && m != "S256"
        && m != "plain"
    {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "An error has occurred",
            "The code challenge method must be plain or S256.",
        ));
    }
    Ok((redirect_uri.clone(), osm_app))
}

fn approve(
    app: &AppRef,
    user: usize,
    q: &HashMap<String, String>,
    redirect_uri: &str,
    osm_app: &OsmApp,
) -> Response {
    let challenge = q.get("code_challenge").filter(|c| !c.is_empty()).map(|c| {
        (
            c.clone(),
            q.get("code_challenge_method")
                .cloned()
                .unwrap_or_else(|| "plain".to_owned()),
        )
    });
    let code = lock(&app.auth).add_code(AuthCode {
        service: Service::Osm,
        client_id: osm_app.id.to_owned(),
        redirect_uri: Some(redirect_uri.to_owned()),
        user,
        expires_at: Instant::now() + CODE_LIFETIME,
        code_challenge: challenge,
    });
    if redirect_uri == OOB {
        return Html(page(
            "Authorization code",
            &format!(
                "<p>Copy this code and paste it into the application:</p><p><code id=\"authorization_code\">{}</code></p>",
                escape(&code)
            ),
        ))
        .into_response();
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = q.get("state") {
        params.push(("state", s));
    }
    redirect(StatusCode::FOUND, &with_query(redirect_uri, &params))
}

async fn authorize(
    State(app): State<AppRef>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (redirect_uri, osm_app) = match validate(&q) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if app.cfg.auto_approve {
        return approve(&app, 0, &q, &redirect_uri, osm_app);
    }
    let fields: Vec<(&str, &str)> = q
        .iter()
        .filter(|(k, _)| {
            [
                "client_id",
                "redirect_uri",
                "response_type",
                "scope",
                "state",
                "code_challenge",
                "code_challenge_method",
            ]
            .contains(&k.as_str())
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    consent_page(
        "OpenStreetMap",
        osm_app.name,
        q.get("scope").map(String::as_str),
        "/osm/oauth2/authorize/decision",
        &fields,
    )
}

async fn decision(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let Ok(form) = ParsedForm::from_request(&headers, body).await else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "An error has occurred",
            "Bad form.",
        );
    };
    let q: HashMap<String, String> = form.fields.into_iter().collect();
    let (redirect_uri, osm_app) = match validate(&q) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if q.get("decision").map(String::as_str) != Some("approve") {
        if redirect_uri == OOB {
            return error_page(
                StatusCode::OK,
                "Access denied",
                "The resource owner or authorization server denied the request.",
            );
        }
        let mut params = vec![
            ("error", "access_denied"),
            (
                "error_description",
                "The resource owner or authorization server denied the request.",
            ),
        ];
        if let Some(s) = q.get("state") {
            params.push(("state", s));
        }
        return redirect(StatusCode::SEE_OTHER, &with_query(&redirect_uri, &params));
    }
    let user = q
        .get("user")
        .and_then(|u| u.parse::<usize>().ok())
        .filter(|u| *u < USERS.len())
        .unwrap_or(0);
    let mut resp = approve(&app, user, &q, &redirect_uri, osm_app);
    if resp.status() == StatusCode::FOUND {
        *resp.status_mut() = StatusCode::SEE_OTHER;
    }
    resp
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn invalid_client() -> Response {
    token_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
    )
}

/// `(client_id, client_secret)` from HTTP Basic (RFC 6749 §2.3.1: form-encoded parts).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let cred = auth_credential(headers, &["Basic"])?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(cred)
        .ok()?;
    let s = String::from_utf8(decoded).ok()?;
    let (id, secret) = s.split_once(':')?;
    let dec = |v: &str| {
        url::form_urlencoded::parse(format!("x={v}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((dec(id)?, dec(secret)?))
}

async fn token(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let form = match ParsedForm::from_request(&headers, body).await {
        Ok(f) => f,
        Err(_) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request is missing a required parameter, includes an unsupported parameter value, or is otherwise malformed.",
            );
        }
    };
    let (client_id, client_secret) = match basic_credentials(&headers) {
        Some(c) => c,
        None => (
            form.get("client_id").unwrap_or_default().to_owned(),
            form.get("client_secret").unwrap_or_default().to_owned(),
        ),
    };
    let Some(osm_app) = app_by_id(&client_id) else {
        return invalid_client();
    };
    match form.get("grant_type") {
        Some("authorization_code") => {}
        Some(_) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            );
        }
        None => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing required parameter: grant_type.",
            );
        }
    }
    let invalid_grant = || {
        token_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The provided authorization grant is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.",
        )
    };
    let Some(code) = form.get("code") else {
        return invalid_grant();
    };
    let taken = lock(&app.auth).take_code(code);
    let Some(c) = taken.filter(|c| {
        c.service == Service::Osm && c.client_id == osm_app.id && Instant::now() < c.expires_at
    }) else {
        return invalid_grant();
    };
    if c.redirect_uri.as_deref() != form.get("redirect_uri") {
        return invalid_grant();
    }
    match &c.code_challenge {
        Some((challenge, method)) => {
            let ok = form
                .get("code_verifier")
                .is_some_and(|v| pkce_matches(challenge, method, v));
            if !ok {
                return invalid_grant();
            }
        }
        // Without PKCE a confidential client must authenticate.
        None if client_secret != osm_app.secret => return invalid_client(),
        None => {}
    }
    if !client_secret.is_empty() && client_secret != osm_app.secret {
        return invalid_client();
    }
    let access = lock(&app.auth).issue(
        &app.faults,
        Service::Osm,
        TokenKind::Access,
        c.user,
        osm_app.id,
        None,
    );
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": access,
            "token_type": "Bearer",
            "scope": "read_prefs",
            "created_at": time::OffsetDateTime::now_utc().unix_timestamp(),
        }),
    )
}

async fn user_details(State(app): State<AppRef>, headers: HeaderMap) -> Response {
    let user = auth_credential(&headers, &["Bearer"])
        .and_then(|t| lock(&app.auth).access_user(&app.faults, Service::Osm, t));
    let Some(u) = user else {
        return (StatusCode::UNAUTHORIZED, "Couldn't authenticate you").into_response();
    };
    json_response(
        StatusCode::OK,
        &json!({
            "version": "0.6",
            "generator": "MTP sandbox",
            "user": {
                "id": USERS[u].osm_id,
                "display_name": USERS[u].username,
                "account_created": "2020-01-01T00:00:00Z",
                "description": "",
                "contributor_terms": {"agreed": true},
                "roles": [],
                "changesets": {"count": 0},
                "traces": {"count": 0},
            }
        }),
    )
}
