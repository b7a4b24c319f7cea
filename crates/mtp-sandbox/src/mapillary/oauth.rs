//! Mapillary OAuth: `GET /mapillary/connect` (consent page), its form post, and
//! `POST /mapillary/graph/token` (authorization_code and refresh_token grants).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use tokio::time::Instant;

use super::graph_error;
use crate::app::{AppRef, auth_credential, json_response, redirect, redirect_allowed, with_query};
use crate::auth::{AuthCode, Service, TokenCheck, TokenKind, USERS};
use crate::body::{ParsedForm, read_all};
use crate::html::{consent_page, error_page};
use crate::state::lock;
use crate::{MAPILLARY_CLIENT_ID, MAPILLARY_CLIENT_SECRET};

const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// Checks `client_id`, `response_type` and `redirect_uri`; returns the redirect URI.
fn validate(q: &HashMap<String, String>) -> Result<String, Response> {
    match q.get("client_id").map(String::as_str) {
        Some(MAPILLARY_CLIENT_ID) => {}
        Some(other) => {
            return Err(error_page(
                StatusCode::BAD_REQUEST,
                "Invalid application",
                &format!("No application with client_id {other}."),
            ));
        }
        None => {
            return Err(error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "Missing client_id.",
            ));
        }
    }
    let Some(redirect_uri) = q.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "Missing redirect_uri.",
        ));
    };
    if !redirect_allowed(redirect_uri) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect_uri",
            &format!(
                "redirect_uri {redirect_uri} is not registered for this application \
                 (app.mtp.desktop://… or an http loopback address)."
            ),
        ));
    }
    if q.get("response_type").map(String::as_str) != Some("code") {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "response_type must be code.",
        ));
    }
    Ok(redirect_uri.clone())
}

fn approve(
    app: &AppRef,
    user: usize,
    redirect_uri: &str,
    state: Option<&str>,
    scopes: Vec<String>,
) -> String {
    let code = lock(&app.auth).add_code(AuthCode {
        service: Service::Mapillary,
        client_id: MAPILLARY_CLIENT_ID.to_owned(),
        redirect_uri: Some(redirect_uri.to_owned()),
        user,
        expires_at: Instant::now() + CODE_LIFETIME,
        code_challenge: None,
    });
    lock(&app.mly).grants.insert(code.clone(), scopes);
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = state {
        params.push(("state", s));
    }
    with_query(redirect_uri, &params)
}

/// Mapillary's own error code for a refusal (its docs' redirect errors: `user_denied`,
/// `invalid_request`, `server_error`, `invalid_scope`; PROTOCOLS §2.1), not OAuth's
/// generic `access_denied`.
fn deny(redirect_uri: &str, state: Option<&str>) -> String {
    redirect_error(
        redirect_uri,
        state,
        "user_denied",
        "The user denied the request",
    )
}

fn redirect_error(redirect_uri: &str, state: Option<&str>, error: &str, why: &str) -> String {
    let mut params = vec![("error", error), ("error_description", why)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    with_query(redirect_uri, &params)
}

pub(super) async fn authorize(
    State(app): State<AppRef>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let redirect_uri = match validate(&q) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let state = q.get("state").map(String::as_str);
    let scopes = match super::requested_scopes(q.get("scope").map(String::as_str)) {
        Ok(s) => s,
        Err(why) => {
            return redirect(
                StatusCode::FOUND,
                &redirect_error(&redirect_uri, state, "invalid_scope", &why),
            );
        }
    };
    if app.cfg.auto_approve {
        return redirect(
            StatusCode::FOUND,
            &approve(&app, 0, &redirect_uri, state, scopes),
        );
    }
    let mut fields: Vec<(&str, &str)> = vec![
        ("client_id", MAPILLARY_CLIENT_ID),
        ("redirect_uri", &redirect_uri),
        ("response_type", "code"),
    ];
    if let Some(s) = state {
        fields.push(("state", s));
    }
    if let Some(s) = q.get("scope") {
        fields.push(("scope", s));
    }
    consent_page(
        "Mapillary",
        "MTP Desktop (sandbox app 1001)",
        q.get("scope").map(String::as_str),
        "/mapillary/connect/decision",
        &fields,
    )
}

pub(super) async fn decision(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = match ParsedForm::from_request(&headers, body).await {
        Ok(f) => f,
        Err(_) => {
            return error_page(StatusCode::BAD_REQUEST, "Invalid request", "Bad form.");
        }
    };
    let q: HashMap<String, String> = form.fields.iter().cloned().collect();
    let redirect_uri = match validate(&q) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let state = q.get("state").map(String::as_str);
    let scopes = match super::requested_scopes(q.get("scope").map(String::as_str)) {
        Ok(s) => s,
        Err(why) => {
            return redirect(
                StatusCode::SEE_OTHER,
                &redirect_error(&redirect_uri, state, "invalid_scope", &why),
            );
        }
    };
    if q.get("decision").map(String::as_str) != Some("approve") {
        return redirect(StatusCode::SEE_OTHER, &deny(&redirect_uri, state));
    }
    let user = q
        .get("user")
        .and_then(|u| u.parse::<usize>().ok())
        .filter(|u| *u < USERS.len())
        .unwrap_or(0);
    redirect(
        StatusCode::SEE_OTHER,
        &approve(&app, user, &redirect_uri, state, scopes),
    )
}

fn oauth_error(status: StatusCode, message: &str, code: u32) -> Response {
    graph_error(status, message, "OAuthException", code)
}

/// `POST {graph}/token`: form, JSON or query parameters; `Authorization: OAuth <client secret>`.
pub(super) async fn token(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Response {
    let Ok(bytes) = read_all(body).await else {
        return oauth_error(StatusCode::BAD_REQUEST, "Could not read the request", 100);
    };
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut params: HashMap<String, String> = HashMap::new();
    if ct.starts_with("application/json") {
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(&bytes) {
            for (k, v) in map {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                params.insert(k, v);
            }
        }
    } else if !bytes.is_empty()
        && let Ok(form) = ParsedForm::parse(&ct, bytes).await
    {
        params.extend(form.fields);
    }
    for (k, v) in query {
        params.entry(k).or_insert(v);
    }

    match auth_credential(&headers, &["OAuth", "Bearer"]) {
        Some(MAPILLARY_CLIENT_SECRET) => {}
        Some(_) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "Error validating application. Invalid application secret.",
                101,
            );
        }
        None => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "Missing Authorization: OAuth <client secret> header",
                101,
            );
        }
    }
    if params.get("client_id").map(String::as_str) != Some(MAPILLARY_CLIENT_ID) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "Error validating application. client_id does not match the client secret.",
            101,
        );
    }

    // The tokens issued here get the code's (or the replaced token's) permissions; a
    // refresh revokes the tokens it replaces.
    let (user, scopes, replaced) = match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(code) = params.get("code") else {
                return oauth_error(StatusCode::BAD_REQUEST, "Missing code parameter", 100);
            };
            let taken = lock(&app.auth).take_code(code);
            match taken {
                Some(c)
                    if c.service == Service::Mapillary
                        && c.client_id == MAPILLARY_CLIENT_ID
                        && Instant::now() < c.expires_at =>
                {
                    let scopes = lock(&app.mly).grants.remove(code);
                    (c.user, scopes, Vec::new())
                }
                Some(c) if Instant::now() >= c.expires_at => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "This authorization code has expired.",
                        100,
                    );
                }
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "Invalid verification code format or code already used.",
                        100,
                    );
                }
            }
        }
        Some("refresh_token") => {
            let Some(rt) = params.get("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "Missing refresh_token parameter",
                    100,
                );
            };
            // A distinct refresh token, or (as JOSM does) the current access token.
            if lock(&app.mly).revoked.contains(rt) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "Error validating refresh token: The session has been invalidated because a newer access token was issued.",
                    190,
                );
            }
            match lock(&app.auth).check(&app.faults, Service::Mapillary, rt) {
                TokenCheck::Valid(t) if t.client_id == MAPILLARY_CLIENT_ID => {
                    let st = lock(&app.mly);
                    let mut replaced = vec![rt.clone()];
                    replaced.extend(st.refresh_pairs.get(rt).cloned());
                    (t.user, st.grants.get(rt).cloned(), replaced)
                }
                TokenCheck::Expired => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "Error validating refresh token: Session has expired.",
                        190,
                    );
                }
                TokenCheck::Valid(_) | TokenCheck::Unknown => {
                    return oauth_error(StatusCode::BAD_REQUEST, "Invalid refresh token.", 190);
                }
            }
        }
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                &format!("Unsupported grant_type: {other}"),
                100,
            );
        }
        None => {
            return oauth_error(StatusCode::BAD_REQUEST, "Missing grant_type parameter", 100);
        }
    };

    let (access, refresh) = {
        let mut auth = lock(&app.auth);
        let access = auth.issue(
            &app.faults,
            Service::Mapillary,
            TokenKind::Access,
            user,
            MAPILLARY_CLIENT_ID,
            Some(app.cfg.token_lifetime),
        );
        // The documented reply has no refresh token (PROTOCOLS §2.1): a refresh then sends
        // the access token itself. A distinct one only behind the knob.
        let refresh = app.faults.mapillary_issues_refresh_tokens().then(|| {
            auth.issue(
                &app.faults,
                Service::Mapillary,
                TokenKind::Refresh,
                user,
                MAPILLARY_CLIENT_ID,
                None,
            )
        });
        (access, refresh)
    };
    {
        let mut st = lock(&app.mly);
        if let Some(scopes) = scopes {
            st.grants.insert(access.clone(), scopes.clone());
            if let Some(refresh) = &refresh {
                st.grants.insert(refresh.clone(), scopes);
            }
        }
        if let Some(refresh) = &refresh {
            st.refresh_pairs.insert(refresh.clone(), access.clone());
        }
        for old in replaced {
            st.refresh_pairs.remove(&old);
            st.revoked.insert(old);
        }
    }
    let mut reply = json!({
        "access_token": access,
        "expires_in": app.cfg.token_lifetime.as_secs(),
        "token_type": "bearer",
    });
    if let Some(refresh) = refresh {
        reply["refresh_token"] = json!(refresh);
    }
    json_response(StatusCode::OK, &reply)
}
