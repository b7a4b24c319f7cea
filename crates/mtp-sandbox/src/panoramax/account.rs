//! The instance's catalog root and configuration, the signed-in user, and API tokens
//! (listed, created, and generated unclaimed then claimed on a consent page).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use crate::app::{App, AppRef, json_response};
use crate::auth::USERS;
use crate::body::{ParsedForm, read_all};
use crate::html::{consent_page, escape, page};
use crate::state::lock;

use super::{err, require_user, rfc3339};

pub(super) async fn root(State(app): State<AppRef>) -> Response {
    let api = app.url("/panoramax/api");
    json_response(
        StatusCode::OK,
        &json!({
            "type": "Catalog",
            "id": "geovisio",
            "stac_version": "1.0.0",
            "title": "Panoramax sandbox",
            "description": "MTP sandbox emulation of a GeoVisio 2.15 instance",
            "geovisio_version": "2.15.1",
            "conformsTo": ["https://api.stacspec.org/v1.0.0/core"],
            "links": [
                {"rel": "self", "type": "application/json", "href": api},
                {"rel": "root", "type": "application/json", "href": api},
                {"rel": "data", "type": "application/json", "href": format!("{api}/collections")},
                {"rel": "search", "type": "application/geo+json", "href": format!("{api}/search")},
                {"rel": "user-info", "type": "application/json", "href": format!("{api}/users/me")},
            ],
        }),
    )
}

pub(super) async fn configuration(State(app): State<AppRef>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "name": {"label": "Panoramax sandbox", "langs": {"en": "Panoramax sandbox"}},
            "description": {"label": "Offline MTP sandbox", "langs": {"en": "Offline MTP sandbox"}},
            "geo_coverage": {"label": "Worldwide", "langs": {"en": "Worldwide"}},
            "logo": "https://panoramax.fr/images/logo.svg",
            "color": "#bf360c",
            "email": "sandbox@mtp.invalid",
            "auth": {"enabled": true, "enforce_tos_acceptance": app.faults.panoramax_tos_enforced(),
                     "user_profile": {"url": app.url("/panoramax/api/users/me")}},
            "license": {"id": "CC-BY-SA-4.0", "url": "https://spdx.org/licenses/CC-BY-SA-4.0.html"},
            "defaults": {"duplicate_distance": 1.0, "duplicate_rotation": 60,
                         "split_distance": 100, "split_time": 300},
            "pages": [],
        }),
    )
}

pub(super) async fn me(State(app): State<AppRef>, headers: HeaderMap) -> Response {
    let u = match require_user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = USERS[u].panoramax_id;
    let tos_accepted = lock(&app.pnx).tos_accepted.contains(&u);
    json_response(
        StatusCode::OK,
        &json!({
            "id": id,
            "name": USERS[u].username,
            "tos_accepted": tos_accepted,
            "links": [
                {"rel": "catalog", "type": "application/json",
                 "href": app.url(&format!("/panoramax/api/users/{id}/catalog/"))},
                {"rel": "upload_sets", "type": "application/json",
                 "href": app.url("/panoramax/api/users/me/upload_sets")},
            ],
        }),
    )
}

fn token_json(app: &App, t: &crate::auth::PanoramaxToken, with_jwt: bool) -> Value {
    let mut v = json!({
        "id": t.id,
        "description": t.description,
        "generated_at": rfc3339(t.generated_at),
        "links": [{"rel": "self", "type": "application/json",
                   "href": app.url(&format!("/panoramax/api/users/me/tokens/{}", t.id))}],
    });
    if with_jwt {
        v["jwt_token"] = json!(t.jwt);
    }
    v
}

pub(super) async fn list_tokens(State(app): State<AppRef>, headers: HeaderMap) -> Response {
    let u = match require_user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let auth = lock(&app.auth);
    let list: Vec<Value> = auth
        .panoramax_tokens
        .iter()
        .filter(|t| t.user == Some(u))
        .map(|t| token_json(&app, t, false))
        .collect();
    json_response(StatusCode::OK, &Value::Array(list))
}

pub(super) async fn get_token(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let u = match require_user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let auth = lock(&app.auth);
    match auth
        .panoramax_tokens
        .iter()
        .find(|t| t.id == id && t.user == Some(u))
    {
        Some(t) => json_response(StatusCode::OK, &token_json(&app, t, true)),
        None => err(StatusCode::NOT_FOUND, "Impossible to find token"),
    }
}

pub(super) async fn create_token(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = read_all(body).await.unwrap_or_default();
    let u = match require_user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let description = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("description")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let mut auth = lock(&app.auth);
    let row = auth.panoramax_generate(Some(u), &description);
    auth.panoramax_register(&app.faults, &row.jwt, u);
    json_response(StatusCode::OK, &token_json(&app, &row, true))
}

/// `POST /api/auth/tokens/generate`: an unclaimed token and the page that claims it.
pub(super) async fn generate_token(
    State(app): State<AppRef>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let description = q.get("description").cloned().unwrap_or_default();
    let row = lock(&app.auth).panoramax_generate(None, &description);
    let mut v = token_json(&app, &row, true);
    v["links"] = json!([{"rel": "claim", "type": "text/html",
        "href": app.url(&format!("/panoramax/api/auth/tokens/{}/claim", row.id))}]);
    json_response(StatusCode::OK, &v)
}

fn claim(app: &AppRef, id: &str, user: usize) -> Response {
    let mut auth = lock(&app.auth);
    let Some(pos) = auth.panoramax_tokens.iter().position(|t| t.id == id) else {
        return err(StatusCode::NOT_FOUND, "Impossible to find token");
    };
    if let Some(owner) = auth.panoramax_tokens[pos].user {
        if owner != user {
            return err(
                StatusCode::FORBIDDEN,
                "Token already claimed by another account",
            );
        }
    } else {
        auth.panoramax_tokens[pos].user = Some(user);
        let jwt = auth.panoramax_tokens[pos].jwt.clone();
        auth.panoramax_register(&app.faults, &jwt, user);
    }
    Html(page(
        "Token claimed",
        &format!(
            "<p>The token is now linked to <strong>{}</strong>. You can close this page.</p>",
            escape(USERS[user].username)
        ),
    ))
    .into_response()
}

pub(super) async fn claim_page(State(app): State<AppRef>, Path(id): Path<String>) -> Response {
    if app.cfg.auto_approve {
        return claim(&app, &id, 0);
    }
    consent_page(
        "Panoramax",
        "A Panoramax client (API token)",
        None,
        &format!("/panoramax/api/auth/tokens/{id}/claim"),
        &[],
    )
}

pub(super) async fn claim_decision(
    State(app): State<AppRef>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let form = ParsedForm::from_request(&headers, body)
        .await
        .unwrap_or_default();
    if form.get("decision") != Some("approve") {
        return Html(page(
            "Token not claimed",
            "<p>The token was not claimed.</p>",
        ))
        .into_response();
    }
    let user = form
        .get("user")
        .and_then(|u| u.parse::<usize>().ok())
        .filter(|u| *u < USERS.len())
        .unwrap_or(0);
    claim(&app, &id, user)
}

/// The website's terms-of-service page (`{website}/tos-validation`, where GeoVisio's 401
/// sends the user): the terms and one button, which accepts them for the sandbox's first
/// user (the one its sign-in pages sign in as).
pub(super) async fn tos_page(State(app): State<AppRef>) -> Response {
    let accepted = lock(&app.pnx).tos_accepted.contains(&0);
    let body = if accepted {
        "<p>You have accepted the terms of service: you may upload pictures.</p>".to_string()
    } else {
        format!(
            "<p>Pictures you upload are published under CC-BY-SA-4.0.</p>\
             <form method=\"post\" action=\"{}\"><button type=\"submit\">I accept the terms of service</button></form>",
            app.url("/panoramax/tos-validation")
        )
    };
    Html(page("Panoramax sandbox — terms of service", &body)).into_response()
}

pub(super) async fn tos_accept(State(app): State<AppRef>) -> Response {
    let mut st = lock(&app.pnx);
    if !st.tos_accepted.contains(&0) {
        st.tos_accepted.push(0);
    }
    drop(st);
    Html(page(
        "Panoramax sandbox — terms of service",
        "<p>Thank you: you may now upload pictures.</p>",
    ))
    .into_response()
}
