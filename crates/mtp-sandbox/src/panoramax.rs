//! Panoramax (GeoVisio 2.15) under `/panoramax/api`: configuration, tokens (including the
//! generate → claim flow), upload sets with their files, and the STAC read-back.
//!
//! Timeline of an upload set, once completed (automatically when accepted + tracked-rejected
//! files reach `estimated_nb_files`, or by `POST …/complete`): `dispatched` after half of
//! `processing_delay` (the pictures are sorted, deduplicated and split into collections), then
//! `ready` after all of it. A file added to a completed set reopens it. Pictures count as
//! `prepared` a quarter of `processing_delay` after upload. Anonymous uploads (if enabled)
//! belong to the first sandbox account.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use md5::{Digest as _, Md5};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};
use tokio::time::Instant;

use crate::app::{App, AppRef, auth_credential, ep, json_response};
use crate::auth::{PanoramaxAuthError, USERS};
use crate::body::{FormError, ParsedForm, read_all};
use crate::geo;
use crate::html::{consent_page, escape, page};
use crate::photo::{self, PhotoMeta};
use crate::state::{PanoramaxFile, PanoramaxUploadSet, lock, username};

const SORT_METHODS: &[&str] = &["filename-asc", "filename-desc", "time-asc", "time-desc"];
const VISIBILITIES: &[&str] = &["anyone", "owner-only", "logged-only"];

pub(crate) fn router(app: &AppRef) -> Router<AppRef> {
    Router::new()
        .route("/", get(viewer))
        .route("/api", ep(app, "panoramax.root", get(root)))
        .route(
            "/api/configuration",
            ep(app, "panoramax.configuration", get(configuration)),
        )
        .route("/api/users/me", ep(app, "panoramax.me", get(me)))
        .route(
            "/api/users/me/tokens",
            ep(app, "panoramax.me_tokens", get(list_tokens)).merge(ep(
                app,
                "panoramax.create_token",
                post(create_token),
            )),
        )
        .route(
            "/api/users/me/tokens/{id}",
            ep(app, "panoramax.me_token", get(get_token)),
        )
        .route(
            "/api/auth/tokens/generate",
            ep(app, "panoramax.generate_token", post(generate_token)),
        )
        .route(
            "/api/auth/tokens/{id}/claim",
            ep(app, "panoramax.claim_token", get(claim_page)).merge(ep(
                app,
                "panoramax.claim_decision",
                post(claim_decision),
            )),
        )
        .route(
            "/api/upload_sets",
            ep(app, "panoramax.create_upload_set", post(create_upload_set)),
        )
        .route(
            "/api/users/me/upload_sets",
            ep(app, "panoramax.my_upload_sets", get(my_upload_sets)),
        )
        .route(
            "/api/upload_sets/{id}",
            ep(app, "panoramax.upload_set", get(get_upload_set)).merge(ep(
                app,
                "panoramax.delete",
                axum::routing::delete(delete_upload_set),
            )),
        )
        .route(
            "/api/upload_sets/{id}/files",
            ep(app, "panoramax.files", post(add_file)).merge(ep(
                app,
                "panoramax.list_files",
                get(list_files),
            )),
        )
        .route(
            "/api/upload_sets/{id}/complete",
            ep(app, "panoramax.complete", post(complete)),
        )
        .route(
            "/api/collections",
            ep(app, "panoramax.collections", get(collections)),
        )
        .route(
            "/api/collections/{id}",
            ep(app, "panoramax.collection", get(collection)),
        )
        .route(
            "/api/collections/{id}/items",
            ep(app, "panoramax.items", get(items)),
        )
        .route(
            "/api/collections/{id}/geovisio_status",
            ep(app, "panoramax.geovisio_status", get(geovisio_status)),
        )
        .route(
            "/api/pictures/{id}/{asset}",
            ep(app, "panoramax.picture_file", get(picture_file)),
        )
        .route("/api/search", ep(app, "panoramax.search", get(search)))
}

#[derive(Clone)]
struct Rejection {
    reason: &'static str,
    severity: &'static str,
    message: String,
}

struct SetFile {
    file_name: String,
    picture_id: Option<String>,
    content_md5: String,
    size: u64,
    inserted_at: OffsetDateTime,
    rejected: Option<Rejection>,
}

struct Picture {
    id: String,
    set_id: String,
    user: usize,
    file_name: String,
    bytes: Bytes,
    md5: String,
    meta: PhotoMeta,
    inserted: Instant,
    collection_id: Option<String>,
}

struct Collection {
    id: String,
    set_id: String,
    user: usize,
    title: String,
    picture_ids: Vec<String>,
    created_at: OffsetDateTime,
}

struct UploadSet {
    id: String,
    user: usize,
    title: String,
    estimated_nb_files: Option<u64>,
    sort_method: String,
    split_distance: f64,
    split_time: f64,
    no_split: bool,
    duplicate_distance: f64,
    duplicate_rotation: f64,
    no_deduplication: bool,
    relative_heading: Option<f64>,
    visibility: String,
    semantics: Value,
    metadata: Value,
    created_at: OffsetDateTime,
    completed_at: Option<Instant>,
    deleted: bool,
    files: Vec<SetFile>,
    collection_ids: Vec<String>,
}

#[derive(Default)]
pub(crate) struct PnxState {
    sets: Vec<UploadSet>,
    pictures: Vec<Picture>,
    collections: Vec<Collection>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetPhase {
    Open,
    Completed,
    Dispatched,
    Ready,
}

fn set_phase(app: &App, s: &UploadSet) -> SetPhase {
    match s.completed_at {
        None => SetPhase::Open,
        Some(at) => {
            let e = at.elapsed();
            if e >= app.cfg.processing_delay {
                SetPhase::Ready
            } else if e >= app.step(2) {
                SetPhase::Dispatched
            } else {
                SetPhase::Completed
            }
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn err(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        &json!({"message": message, "status_code": status.as_u16()}),
    )
}

fn err_details(status: StatusCode, message: &str, details: Value) -> Response {
    json_response(
        status,
        &json!({"message": message, "status_code": status.as_u16(), "details": details}),
    )
}

/// `Ok(None)` = no token; `Err` = a token that is refused.
fn token_user(app: &AppRef, headers: &HeaderMap) -> Result<Option<usize>, Response> {
    let Some(jwt) = auth_credential(headers, &["Bearer"]) else {
        return Ok(None);
    };
    match lock(&app.auth).panoramax_user(&app.faults, jwt) {
        Ok(u) => Ok(Some(u)),
        Err(PanoramaxAuthError::Invalid) => Err(err(StatusCode::UNAUTHORIZED, "Token not valid")),
        Err(PanoramaxAuthError::Forbidden) => Err(err(
            StatusCode::FORBIDDEN,
            "Token is not valid for this account, it may not have been claimed or may have been revoked",
        )),
    }
}

fn require_user(app: &AppRef, headers: &HeaderMap) -> Result<usize, Response> {
    token_user(app, headers)?
        .ok_or_else(|| err(StatusCode::UNAUTHORIZED, "Authentication is mandatory"))
}

/// Writers: a token, or (if enabled) anonymous on the first account.
fn writer(app: &AppRef, headers: &HeaderMap) -> Result<usize, Response> {
    match token_user(app, headers)? {
        Some(u) => Ok(u),
        None if app.cfg.panoramax_anonymous_uploads => Ok(0),
        None => Err(err(StatusCode::UNAUTHORIZED, "Authentication is mandatory")),
    }
}

async fn root(State(app): State<AppRef>) -> Response {
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

async fn configuration(State(app): State<AppRef>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "name": {"label": "Panoramax sandbox", "langs": {"en": "Panoramax sandbox"}},
            "description": {"label": "Offline MTP sandbox", "langs": {"en": "Offline MTP sandbox"}},
            "geo_coverage": {"label": "Worldwide", "langs": {"en": "Worldwide"}},
            "logo": "https://panoramax.fr/images/logo.svg",
            "color": "#bf360c",
            "email": "sandbox@mtp.invalid",
            "auth": {"enabled": true, "enforce_tos_acceptance": false,
                     "user_profile": {"url": app.url("/panoramax/api/users/me")}},
            "license": {"id": "CC-BY-SA-4.0", "url": "https://spdx.org/licenses/CC-BY-SA-4.0.html"},
            "defaults": {"duplicate_distance": 1.0, "duplicate_rotation": 60,
                         "split_distance": 100, "split_time": 300},
            "pages": [],
        }),
    )
}

async fn me(State(app): State<AppRef>, headers: HeaderMap) -> Response {
    let u = match require_user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let id = USERS[u].panoramax_id;
    json_response(
        StatusCode::OK,
        &json!({
            "id": id,
            "name": USERS[u].username,
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

async fn list_tokens(State(app): State<AppRef>, headers: HeaderMap) -> Response {
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

async fn get_token(
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

async fn create_token(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
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
async fn generate_token(
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

async fn claim_page(State(app): State<AppRef>, Path(id): Path<String>) -> Response {
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

async fn claim_decision(
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

/// A JSON or form body as a map of JSON values.
async fn object_body(
    headers: &HeaderMap,
    body: Body,
) -> Result<serde_json::Map<String, Value>, Response> {
    let bytes = read_all(body)
        .await
        .map_err(|_| err(StatusCode::BAD_REQUEST, "Unreadable body"))?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if bytes.is_empty() {
        return Ok(serde_json::Map::new());
    }
    if ct.to_ascii_lowercase().starts_with("application/json") || ct.is_empty() {
        return match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(err(StatusCode::BAD_REQUEST, "Body must be a JSON object")),
        };
    }
    match ParsedForm::parse(&ct, bytes).await {
        Ok(f) => Ok(f
            .fields
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect()),
        Err(_) => Err(err(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Body must be JSON or a form",
        )),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn invalid_param(field: &str, msg: &str) -> Response {
    err_details(
        StatusCode::BAD_REQUEST,
        "Impossible to parse parameters",
        json!([{"fields": [field], "error": msg}]),
    )
}

/// Applies create/update parameters to a set.
fn apply_params(
    set: &mut UploadSet,
    body: &serde_json::Map<String, Value>,
) -> Result<(), Response> {
    for (k, v) in body {
        match k.as_str() {
            "title" => {
                set.title = v
                    .as_str()
                    .filter(|s| !s.trim().is_empty())
                    .ok_or_else(|| invalid_param(k, "must be a non-empty string"))?
                    .to_owned();
            }
            "estimated_nb_files" => {
                let n = as_f64(v)
                    .filter(|n| *n >= 0.0 && n.fract() == 0.0)
                    .ok_or_else(|| invalid_param(k, "must be a positive integer"))?;
                set.estimated_nb_files = Some(n as u64);
            }
            "sort_method" => {
                let s = v
                    .as_str()
                    .filter(|s| SORT_METHODS.contains(s))
                    .ok_or_else(|| invalid_param(k, "unknown sort method"))?;
                set.sort_method = s.to_owned();
            }
            "split_distance" | "split_time" | "duplicate_distance" | "duplicate_rotation" => {
                let n = as_f64(v)
                    .filter(|n| *n >= 0.0)
                    .ok_or_else(|| invalid_param(k, "must be a positive number"))?;
                match k.as_str() {
                    "split_distance" => set.split_distance = n,
                    "split_time" => set.split_time = n,
                    "duplicate_distance" => set.duplicate_distance = n,
                    _ => set.duplicate_rotation = n,
                }
            }
            "no_split" | "no_deduplication" => {
                let b = as_bool(v).ok_or_else(|| invalid_param(k, "must be a boolean"))?;
                if k == "no_split" {
                    set.no_split = b;
                } else {
                    set.no_deduplication = b;
                }
            }
            "relative_heading" => {
                set.relative_heading = if v.is_null() {
                    None
                } else {
                    Some(
                        as_f64(v)
                            .filter(|h| (-180.0..=180.0).contains(h))
                            .ok_or_else(|| invalid_param(k, "must be between -180 and 180"))?,
                    )
                };
            }
            "visibility" => {
                let s = v
                    .as_str()
                    .filter(|s| VISIBILITIES.contains(s))
                    .ok_or_else(|| invalid_param(k, "must be anyone, owner-only or logged-only"))?;
                set.visibility = s.to_owned();
            }
            "semantics" => {
                let ok = v.as_array().is_some_and(|a| {
                    a.iter().all(|t| {
                        t.get("key").is_some_and(Value::is_string)
                            && t.get("value").is_some_and(Value::is_string)
                    })
                });
                if !ok {
                    return Err(invalid_param(k, "must be a list of {key, value}"));
                }
                set.semantics = v.clone();
            }
            "metadata" => set.metadata = v.clone(),
            other => return Err(invalid_param(other, "unknown parameter")),
        }
    }
    Ok(())
}

fn collection_summary(app: &App, st: &PnxState, c: &Collection, phase: SetPhase) -> Value {
    let pics: Vec<&Picture> = c
        .picture_ids
        .iter()
        .filter_map(|id| st.pictures.iter().find(|p| &p.id == id))
        .collect();
    let ready = phase == SetPhase::Ready;
    json!({
        "id": c.id,
        "title": c.title,
        "nb_items": pics.len(),
        "ready": ready,
        "extent": extent(&pics),
        "items_status": {"prepared": if ready { pics.len() } else { 0 },
                         "preparing": if ready { 0 } else { pics.len() },
                         "preparing_error": 0, "not_processed": 0},
        "links": [{"rel": "self", "type": "application/json",
                   "href": app.url(&format!("/panoramax/api/collections/{}", c.id))}],
    })
}

fn extent(pics: &[&Picture]) -> Value {
    let pos: Vec<(f64, f64)> = pics.iter().filter_map(|p| p.meta.position()).collect();
    let bbox = if pos.is_empty() {
        Value::Null
    } else {
        let min_lat = pos.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let max_lat = pos.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        let min_lon = pos.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let max_lon = pos.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        json!([[min_lon, min_lat, max_lon, max_lat]])
    };
    let times: Vec<OffsetDateTime> = pics.iter().filter_map(|p| p.meta.captured_at).collect();
    let interval = match (times.iter().min(), times.iter().max()) {
        (Some(a), Some(b)) => json!([[rfc3339(*a), rfc3339(*b)]]),
        _ => json!([[null, null]]),
    };
    json!({"spatial": {"bbox": bbox}, "temporal": {"interval": interval}})
}

fn upload_set_json(app: &App, st: &PnxState, s: &UploadSet) -> Value {
    let phase = set_phase(app, s);
    let quarter = app.step(4);
    let accepted: Vec<&Picture> = st.pictures.iter().filter(|p| p.set_id == s.id).collect();
    let prepared = accepted
        .iter()
        .filter(|p| p.inserted.elapsed() >= quarter)
        .count();
    let rejected = s.files.iter().filter(|f| f.rejected.is_some()).count();
    let collections: Vec<Value> = if matches!(phase, SetPhase::Dispatched | SetPhase::Ready) {
        s.collection_ids
            .iter()
            .filter_map(|id| st.collections.iter().find(|c| &c.id == id))
            .map(|c| collection_summary(app, st, c, phase))
            .collect()
    } else {
        Vec::new()
    };
    let base = app.url(&format!("/panoramax/api/upload_sets/{}", s.id));
    json!({
        "id": s.id,
        "created_at": rfc3339(s.created_at),
        "completed": phase != SetPhase::Open,
        "dispatched": matches!(phase, SetPhase::Dispatched | SetPhase::Ready),
        "ready": phase == SetPhase::Ready,
        "title": s.title,
        "estimated_nb_files": s.estimated_nb_files,
        "sort_method": s.sort_method,
        "split_distance": s.split_distance,
        "split_time": s.split_time,
        "no_split": s.no_split,
        "duplicate_distance": s.duplicate_distance,
        "duplicate_rotation": s.duplicate_rotation,
        "no_deduplication": s.no_deduplication,
        "relative_heading": s.relative_heading,
        "visibility": s.visibility,
        "semantics": s.semantics,
        "metadata": s.metadata,
        "account_id": USERS[s.user].panoramax_id,
        "nb_items": accepted.len(),
        "items_status": {
            "prepared": prepared,
            "preparing": accepted.len() - prepared,
            "broken": 0,
            "rejected": rejected,
            "not_processed": 0,
        },
        "associated_collections": collections,
        "links": [
            {"rel": "self", "type": "application/json", "href": base},
            {"rel": "edit", "type": "application/json", "href": base},
            {"rel": "add_files", "type": "application/json", "href": format!("{base}/files")},
            {"rel": "complete", "type": "application/json", "href": format!("{base}/complete")},
            {"rel": "delete", "type": "application/json", "href": base},
        ],
    })
}

async fn create_upload_set(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let params = match object_body(&headers, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let user = match writer(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !params.contains_key("title") {
        return invalid_param("title", "Field required");
    }
    let mut set = UploadSet {
        id: uuid::Uuid::new_v4().to_string(),
        user,
        title: String::new(),
        estimated_nb_files: None,
        sort_method: "time-asc".to_owned(),
        split_distance: 100.0,
        split_time: 300.0,
        no_split: false,
        duplicate_distance: 1.0,
        duplicate_rotation: 60.0,
        no_deduplication: false,
        relative_heading: None,
        visibility: "anyone".to_owned(),
        semantics: json!([]),
        metadata: Value::Null,
        created_at: OffsetDateTime::now_utc(),
        completed_at: None,
        deleted: false,
        files: Vec::new(),
        collection_ids: Vec::new(),
    };
    if let Err(r) = apply_params(&mut set, &params) {
        return r;
    }
    let mut st = lock(&app.pnx);
    let v = upload_set_json(&app, &st, &set);
    let location = app.url(&format!("/panoramax/api/upload_sets/{}", set.id));
    st.sets.push(set);
    let mut resp = json_response(StatusCode::OK, &v);
    if let Ok(l) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    resp
}

async fn my_upload_sets(State(app): State<AppRef>, headers: HeaderMap) -> Response {
    let u = match require_user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let st = lock(&app.pnx);
    let sets: Vec<Value> = st
        .sets
        .iter()
        .filter(|s| s.user == u && !s.deleted)
        .map(|s| upload_set_json(&app, &st, s))
        .collect();
    json_response(StatusCode::OK, &json!({"upload_sets": sets}))
}

fn live_set<'a>(st: &'a PnxState, id: &str) -> Result<&'a UploadSet, Response> {
    st.sets
        .iter()
        .find(|s| s.id == id && !s.deleted)
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "UploadSet doesn't exist"))
}

async fn get_upload_set(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let viewer = match token_user(&app, &headers) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let st = lock(&app.pnx);
    let set = match live_set(&st, &id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if set.visibility == "owner-only" && viewer != Some(set.user) {
        return err(StatusCode::NOT_FOUND, "UploadSet doesn't exist");
    }
    json_response(StatusCode::OK, &upload_set_json(&app, &st, set))
}

/// Sorts, deduplicates and splits the accepted pictures into collections (GeoVisio's
/// `dispatch` job), run when the set completes.
fn dispatch(st: &mut PnxState, set_idx: usize) {
    let set_id = st.sets[set_idx].id.clone();
    // Undo a previous dispatch (the set was reopened).
    let old: Vec<String> = std::mem::take(&mut st.sets[set_idx].collection_ids);
    st.collections.retain(|c| !old.contains(&c.id));
    for f in &mut st.sets[set_idx].files {
        if f.rejected
            .as_ref()
            .is_some_and(|r| r.reason == "capture_duplicate")
        {
            f.rejected = None;
        }
    }
    let set = &st.sets[set_idx];
    let mut pics: Vec<usize> = st
        .pictures
        .iter()
        .enumerate()
        .filter(|(_, p)| p.set_id == set_id)
        .map(|(i, _)| i)
        .collect();
    let key_time = |i: &usize| {
        (
            st.pictures[*i].meta.captured_at,
            st.pictures[*i].file_name.clone(),
        )
    };
    match set.sort_method.as_str() {
        "filename-asc" => pics.sort_by_key(|i| st.pictures[*i].file_name.clone()),
        "filename-desc" => {
            pics.sort_by_key(|i| std::cmp::Reverse(st.pictures[*i].file_name.clone()))
        }
        "time-desc" => pics.sort_by_key(|i| std::cmp::Reverse(key_time(i))),
        _ => pics.sort_by_key(key_time),
    }
    let mut duplicates = Vec::new();
    let mut kept: Vec<usize> = Vec::new();
    for i in pics {
        if !set.no_deduplication
            && let Some(&last) = kept.last()
        {
            let (a, b) = (&st.pictures[last].meta, &st.pictures[i].meta);
            if let (Some(pa), Some(pb)) = (a.position(), b.position()) {
                let close = geo::distance_m(pa, pb) <= set.duplicate_distance;
                let same_way = match (a.heading, b.heading) {
                    (Some(ha), Some(hb)) => geo::angle_diff(ha, hb) <= set.duplicate_rotation,
                    _ => true,
                };
                if close && same_way {
                    duplicates.push(i);
                    continue;
                }
            }
        }
        kept.push(i);
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in kept {
        let split = match groups.last().and_then(|g| g.last()) {
            None => true,
            Some(&prev) if !set.no_split => {
                let (a, b) = (&st.pictures[prev].meta, &st.pictures[i].meta);
                let far = match (a.position(), b.position()) {
                    (Some(pa), Some(pb)) => geo::distance_m(pa, pb) > set.split_distance,
                    _ => false,
                };
                let late = match (a.captured_at, b.captured_at) {
                    (Some(ta), Some(tb)) => (tb - ta).abs().as_seconds_f64() > set.split_time,
                    _ => false,
                };
                far || late
            }
            Some(_) => false,
        };
        if split {
            groups.push(vec![i]);
        } else if let Some(g) = groups.last_mut() {
            g.push(i);
        }
    }
    let title = set.title.clone();
    let user = set.user;
    let mut ids = Vec::new();
    for g in groups {
        let id = uuid::Uuid::new_v4().to_string();
        for &i in &g {
            st.pictures[i].collection_id = Some(id.clone());
        }
        st.collections.push(Collection {
            id: id.clone(),
            set_id: set_id.clone(),
            user,
            title: title.clone(),
            picture_ids: g.iter().map(|&i| st.pictures[i].id.clone()).collect(),
            created_at: OffsetDateTime::now_utc(),
        });
        ids.push(id);
    }
    for i in duplicates {
        let pid = st.pictures[i].id.clone();
        st.pictures[i].collection_id = None;
        if let Some(f) = st.sets[set_idx]
            .files
            .iter_mut()
            .find(|f| f.picture_id.as_deref() == Some(pid.as_str()))
        {
            f.rejected = Some(Rejection {
                reason: "capture_duplicate",
                severity: "info",
                message: "The picture is too similar to another one (nearly at the same position and heading)".into(),
            });
        }
    }
    st.sets[set_idx].collection_ids = ids;
}

fn mark_complete(st: &mut PnxState, set_idx: usize) {
    if st.sets[set_idx].completed_at.is_none() {
        st.sets[set_idx].completed_at = Some(Instant::now());
        dispatch(st, set_idx);
    }
}

/// Tracks a file (accepted or rejected) and completes the set when the estimate is reached.
fn track(st: &mut PnxState, set_idx: usize, file: SetFile) {
    let set = &mut st.sets[set_idx];
    if set.completed_at.take().is_some() {
        // A later file reopens the set.
        let old = std::mem::take(&mut set.collection_ids);
        st.collections.retain(|c| !old.contains(&c.id));
    }
    let set = &mut st.sets[set_idx];
    set.files.push(file);
    let counted = set.files.len() as u64;
    if set
        .estimated_nb_files
        .is_some_and(|n| n > 0 && counted >= n)
    {
        mark_complete(st, set_idx);
    }
}

async fn add_file(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let form = ParsedForm::from_request(&headers, body).await;
    let user = match writer(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let set_idx = {
        let st = lock(&app.pnx);
        let Some(i) = st.sets.iter().position(|s| s.id == id && !s.deleted) else {
            return err(StatusCode::NOT_FOUND, "UploadSet doesn't exist");
        };
        if st.sets[i].user != user {
            return err(
                StatusCode::FORBIDDEN,
                "You're not authorized to add picture to this upload set",
            );
        }
        i
    };
    let form = match form {
        Ok(f)
            if headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data")) =>
        {
            f
        }
        Ok(_) | Err(FormError::UnsupportedType) => {
            return err(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content type should be multipart/form-data",
            );
        }
        Err(FormError::Malformed(m)) => {
            return err(
                StatusCode::BAD_REQUEST,
                &format!("Invalid multipart body: {m}"),
            );
        }
    };
    let Some(file) = form.file("file") else {
        return err_details(
            StatusCode::BAD_REQUEST,
            "No file was sent",
            json!({"error": "No 'file' field in the multipart body"}),
        );
    };
    let file_name = file.filename.clone().unwrap_or_default();
    let md5 = hex::encode(Md5::digest(&file.data));
    let size = file.data.len() as u64;
    let now = OffsetDateTime::now_utc();
    let mut st = lock(&app.pnx);
    let reject = |st: &mut PnxState, reason: &'static str, msg: &str, details: Value| {
        track(
            st,
            set_idx,
            SetFile {
                file_name: file_name.clone(),
                picture_id: None,
                content_md5: md5.clone(),
                size,
                inserted_at: now,
                rejected: Some(Rejection {
                    reason,
                    severity: "error",
                    message: msg.to_owned(),
                }),
            },
        );
        err_details(StatusCode::BAD_REQUEST, msg, details)
    };
    let lower = file_name.to_ascii_lowercase();
    if !photo::is_jpeg(&file.data) || !(lower.ends_with(".jpg") || lower.ends_with(".jpeg")) {
        return reject(
            &mut st,
            "invalid_file",
            "Picture file is either missing or in an unsupported format (should be jpeg)",
            json!({"error": "invalid_file"}),
        );
    }
    if let Some(existing) = st.pictures.iter().find(|p| p.md5 == md5 && p.set_id == id) {
        return json_response(
            StatusCode::CONFLICT,
            &json!({"message": "The item has already been added to this upload set",
                    "existing_item": {"id": existing.id}, "status_code": 409}),
        );
    }
    if let Some((existing_id, existing_set)) = st
        .pictures
        .iter()
        .find(|p| p.md5 == md5)
        .map(|p| (p.id.clone(), p.set_id.clone()))
    {
        track(
            &mut st,
            set_idx,
            SetFile {
                file_name: file_name.clone(),
                picture_id: None,
                content_md5: md5.clone(),
                size,
                inserted_at: now,
                rejected: Some(Rejection {
                    reason: "file_duplicate",
                    severity: "info",
                    message: "The same picture has already been sent in a past upload".into(),
                }),
            },
        );
        // GeoVisio 2.15.1 also says where the bytes are: the picture and its upload set.
        return json_response(
            StatusCode::CONFLICT,
            &json!({"message": "The same picture has already been sent in a past upload",
                    "details": {"error": "file_duplicate"},
                    "upload_sets": [{"existing_item_id": existing_id, "upload_set_id": existing_set}],
                    "status_code": 409}),
        );
    }
    let mut meta = photo::read_meta(&file.data);
    let over = |k: &str| form.get(k).map(str::trim);
    match (over("override_latitude"), over("override_longitude")) {
        (Some(a), Some(b)) => match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(lat), Ok(lon))
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
            {
                meta.lat = Some(lat);
                meta.lon = Some(lon);
            }
            _ => {
                return err_details(
                    StatusCode::BAD_REQUEST,
                    "Impossible to parse parameters",
                    json!([{"fields": ["override_latitude", "override_longitude"], "error": "invalid coordinates"}]),
                );
            }
        },
        (None, None) => {}
        _ => {
            return err_details(
                StatusCode::BAD_REQUEST,
                "Impossible to parse parameters",
                json!([{"fields": ["override_latitude", "override_longitude"],
                        "error": "Longitude and latitude cannot be overridden separately"}]),
            );
        }
    }
    if let Some(t) = over("override_capture_time") {
        let parsed = OffsetDateTime::parse(t, &Rfc3339)
            .or_else(|_| OffsetDateTime::parse(t, &Iso8601::DEFAULT))
            .or_else(|_| {
                time::PrimitiveDateTime::parse(t, &Iso8601::DEFAULT).map(|p| p.assume_utc())
            });
        match parsed {
            Ok(at) => meta.captured_at = Some(at),
            Err(_) => {
                return err_details(
                    StatusCode::BAD_REQUEST,
                    "Impossible to parse parameters",
                    json!([{"fields": ["override_capture_time"], "error": "invalid ISO 8601 date"}]),
                );
            }
        }
    }
    if let Some(h) = over("override_Exif.Exif.GPSInfo.GPSImgDirection")
        .or(over("override_Exif.GPSInfo.GPSImgDirection"))
        .and_then(exif_rational)
    {
        meta.heading = Some(h);
    }
    let mut missing = Vec::new();
    if meta.position().is_none() {
        missing.push("location");
    }
    if meta.captured_at.is_none() {
        missing.push("datetime");
    }
    if !missing.is_empty() {
        let msg = if meta.position().is_none() {
            "No GPS coordinates or broken coordinates in picture EXIF tags"
        } else {
            "No valid date in picture EXIF tags"
        };
        return reject(
            &mut st,
            "invalid_metadata",
            "Impossible to parse picture metadata",
            json!({"error": msg, "missing_fields": missing}),
        );
    }
    let picture_id = match form.get("picture_id") {
        Some(pid) => match uuid::Uuid::parse_str(pid) {
            Ok(u) if st.pictures.iter().any(|p| p.id == u.to_string()) => {
                return reject(
                    &mut st,
                    "id_conflict",
                    "A picture with this id already exists",
                    json!({"error": "id_conflict"}),
                );
            }
            Ok(u) => u.to_string(),
            Err(_) => {
                return err_details(
                    StatusCode::BAD_REQUEST,
                    "Impossible to parse parameters",
                    json!([{"fields": ["picture_id"], "error": "must be a UUID"}]),
                );
            }
        },
        None => uuid::Uuid::new_v4().to_string(),
    };
    st.pictures.push(Picture {
        id: picture_id.clone(),
        set_id: id.clone(),
        user,
        file_name: file_name.clone(),
        bytes: file.data.clone(),
        md5: md5.clone(),
        meta,
        inserted: Instant::now(),
        collection_id: None,
    });
    track(
        &mut st,
        set_idx,
        SetFile {
            file_name: file_name.clone(),
            picture_id: Some(picture_id.clone()),
            content_md5: md5.clone(),
            size,
            inserted_at: now,
            rejected: None,
        },
    );
    json_response(
        StatusCode::ACCEPTED,
        &json!({
            "picture_id": picture_id,
            "file_name": file_name,
            "content_md5": md5,
            "inserted_at": rfc3339(now),
            "file_type": "picture",
            "size": size,
            "links": [{"rel": "parent", "type": "application/json",
                       "href": app.url(&format!("/panoramax/api/upload_sets/{id}"))}],
        }),
    )
}

async fn list_files(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let viewer = match token_user(&app, &headers) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let st = lock(&app.pnx);
    let set = match live_set(&st, &id) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let owner = viewer == Some(set.user)
        || (viewer.is_none() && app.cfg.panoramax_anonymous_uploads && set.user == 0);
    let files: Vec<Value> = set
        .files
        .iter()
        .map(|f| {
            let mut v = json!({
                "file_name": f.file_name,
                "content_md5": f.content_md5,
                "size": f.size,
                "file_type": "picture",
                "inserted_at": rfc3339(f.inserted_at),
            });
            if owner && let Some(pid) = &f.picture_id {
                v["picture_id"] = json!(pid);
            }
            if let Some(r) = &f.rejected {
                v["rejected"] =
                    json!({"reason": r.reason, "severity": r.severity, "message": r.message});
            }
            v
        })
        .collect();
    json_response(StatusCode::OK, &json!({"files": files}))
}

async fn complete(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match writer(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut st = lock(&app.pnx);
    let Some(i) = st.sets.iter().position(|s| s.id == id && !s.deleted) else {
        return err(StatusCode::NOT_FOUND, "UploadSet doesn't exist");
    };
    if st.sets[i].user != user {
        return err(
            StatusCode::FORBIDDEN,
            "You're not authorized to complete this upload set",
        );
    }
    mark_complete(&mut st, i);
    let v = upload_set_json(&app, &st, &st.sets[i]);
    json_response(StatusCode::OK, &v)
}

async fn delete_upload_set(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match writer(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut st = lock(&app.pnx);
    let Some(i) = st.sets.iter().position(|s| s.id == id && !s.deleted) else {
        return err(StatusCode::NOT_FOUND, "UploadSet doesn't exist");
    };
    if st.sets[i].user != user {
        return err(
            StatusCode::FORBIDDEN,
            "You're not authorized to delete this upload set",
        );
    }
    st.sets[i].deleted = true;
    st.pictures.retain(|p| p.set_id != id);
    st.collections.retain(|c| c.set_id != id);
    StatusCode::NO_CONTENT.into_response()
}

/// A collection, if its set has been dispatched (ready or not).
fn visible_collection<'a>(
    app: &App,
    st: &'a PnxState,
    id: &str,
) -> Option<(&'a Collection, SetPhase)> {
    let c = st.collections.iter().find(|c| c.id == id)?;
    let set = st.sets.iter().find(|s| s.id == c.set_id && !s.deleted)?;
    let phase = set_phase(app, set);
    matches!(phase, SetPhase::Dispatched | SetPhase::Ready).then_some((c, phase))
}

fn collection_json(app: &App, st: &PnxState, c: &Collection, phase: SetPhase) -> Value {
    let pics: Vec<&Picture> = c
        .picture_ids
        .iter()
        .filter_map(|id| st.pictures.iter().find(|p| &p.id == id))
        .collect();
    let href = app.url(&format!("/panoramax/api/collections/{}", c.id));
    json!({
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": c.id,
        "title": c.title,
        "description": "A sequence of pictures",
        "license": "CC-BY-SA-4.0",
        "created": rfc3339(c.created_at),
        "geovisio:status": if phase == SetPhase::Ready { "ready" } else { "preparing" },
        "geovisio:upload-software": "unknown",
        "extent": extent(&pics),
        "stats:items": {"count": pics.len()},
        "providers": [{"name": USERS[c.user].username, "roles": ["producer"]}],
        "links": [
            {"rel": "self", "type": "application/json", "href": href},
            {"rel": "items", "type": "application/geo+json", "href": format!("{href}/items")},
            {"rel": "parent", "type": "application/json", "href": app.url("/panoramax/api")},
        ],
    })
}

fn item_json(app: &App, p: &Picture, ready: bool) -> Value {
    let geometry = p
        .meta
        .position()
        .map(|(lat, lon)| json!({"type": "Point", "coordinates": [lon, lat]}));
    let asset = |kind: &str| {
        json!({"href": app.url(&format!("/panoramax/api/pictures/{}/{kind}.jpg", p.id)),
               "type": "image/jpeg", "roles": ["data"]})
    };
    json!({
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": p.id,
        "collection": p.collection_id,
        "geometry": geometry,
        "bbox": p.meta.position().map(|(lat, lon)| json!([lon, lat, lon, lat])),
        "properties": {
            "datetime": p.meta.captured_at.map(rfc3339),
            "view:azimuth": p.meta.heading,
            "pers:interior_orientation": {"field_of_view": if p.meta.is_pano { json!(360) } else { Value::Null }},
            "original_file:name": p.file_name,
            "original_file:size": p.bytes.len(),
            "geovisio:status": if ready { "ready" } else { "preparing" },
            "geovisio:producer": USERS[p.user].username,
        },
        "assets": {"hd": asset("hd"), "sd": asset("sd"), "thumb": asset("thumb")},
        "links": [],
    })
}

async fn collections(State(app): State<AppRef>) -> Response {
    let st = lock(&app.pnx);
    let list: Vec<Value> = st
        .collections
        .iter()
        .filter_map(|c| visible_collection(&app, &st, &c.id))
        .map(|(c, phase)| collection_json(&app, &st, c, phase))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"collections": list, "links": [{"rel": "root", "href": app.url("/panoramax/api")}]}),
    )
}

async fn collection(State(app): State<AppRef>, Path(id): Path<String>) -> Response {
    let st = lock(&app.pnx);
    match visible_collection(&app, &st, &id) {
        Some((c, phase)) => json_response(StatusCode::OK, &collection_json(&app, &st, c, phase)),
        None => err(StatusCode::NOT_FOUND, "Collection doesn't exist"),
    }
}

async fn items(State(app): State<AppRef>, Path(id): Path<String>) -> Response {
    let st = lock(&app.pnx);
    let Some((c, phase)) = visible_collection(&app, &st, &id) else {
        return err(StatusCode::NOT_FOUND, "Collection doesn't exist");
    };
    let features: Vec<Value> = c
        .picture_ids
        .iter()
        .filter_map(|pid| st.pictures.iter().find(|p| &p.id == pid))
        .map(|p| item_json(&app, p, phase == SetPhase::Ready))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"type": "FeatureCollection", "features": features, "links": []}),
    )
}

async fn geovisio_status(State(app): State<AppRef>, Path(id): Path<String>) -> Response {
    let st = lock(&app.pnx);
    let Some((c, phase)) = visible_collection(&app, &st, &id) else {
        return err(StatusCode::NOT_FOUND, "Collection doesn't exist");
    };
    let status = if phase == SetPhase::Ready {
        "ready"
    } else {
        "preparing"
    };
    let items: Vec<Value> = c
        .picture_ids
        .iter()
        .enumerate()
        .map(|(i, pid)| json!({"id": pid, "rank": i + 1, "status": status, "processing_in_progress": status != "ready", "nb_errors": 0}))
        .collect();
    json_response(StatusCode::OK, &json!({"status": status, "items": items}))
}

async fn picture_file(
    State(app): State<AppRef>,
    Path((id, asset)): Path<(String, String)>,
) -> Response {
    if !["hd.jpg", "sd.jpg", "thumb.jpg"].contains(&asset.as_str()) {
        return err(StatusCode::NOT_FOUND, "Unknown picture asset");
    }
    let st = lock(&app.pnx);
    match st.pictures.iter().find(|p| p.id == id) {
        Some(p) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "image/jpeg")],
            p.bytes.clone(),
        )
            .into_response(),
        None => err(StatusCode::NOT_FOUND, "Picture doesn't exist"),
    }
}

async fn search(State(app): State<AppRef>, Query(q): Query<HashMap<String, String>>) -> Response {
    let bbox = match q.get("bbox") {
        Some(b) => {
            let v: Option<Vec<f64>> = b.split(',').map(|x| x.trim().parse().ok()).collect();
            match v.as_deref() {
                Some(&[a, b, c, d]) => Some((a, b, c, d)),
                _ => {
                    return err(
                        StatusCode::BAD_REQUEST,
                        "Parameter bbox must be minx,miny,maxx,maxy",
                    );
                }
            }
        }
        None => None,
    };
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(10)
        .min(10_000);
    let st = lock(&app.pnx);
    let features: Vec<Value> = st
        .pictures
        .iter()
        .filter_map(|p| {
            let cid = p.collection_id.as_ref()?;
            let (_, phase) = visible_collection(&app, &st, cid)?;
            (phase == SetPhase::Ready).then_some(p)
        })
        .filter(|p| {
            bbox.is_none_or(|(min_lon, min_lat, max_lon, max_lat)| {
                p.meta.position().is_some_and(|(lat, lon)| {
                    (min_lat..=max_lat).contains(&lat) && (min_lon..=max_lon).contains(&lon)
                })
            })
        })
        .take(limit)
        .map(|p| item_json(&app, p, true))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"type": "FeatureCollection", "features": features, "links": []}),
    )
}

impl PnxState {
    pub fn snapshot(&self, app: &App) -> Vec<PanoramaxUploadSet> {
        self.sets
            .iter()
            .map(|s| {
                let phase = set_phase(app, s);
                PanoramaxUploadSet {
                    id: s.id.clone(),
                    user: username(s.user),
                    title: s.title.clone(),
                    estimated_nb_files: s.estimated_nb_files,
                    completed: phase != SetPhase::Open,
                    dispatched: matches!(phase, SetPhase::Dispatched | SetPhase::Ready),
                    ready: phase == SetPhase::Ready,
                    deleted: s.deleted,
                    files: s
                        .files
                        .iter()
                        .map(|f| PanoramaxFile {
                            file_name: f.file_name.clone(),
                            picture_id: f.picture_id.clone(),
                            content_md5: f.content_md5.clone(),
                            size: f.size,
                            rejected: f.rejected.as_ref().map(|r| r.reason.to_owned()),
                        })
                        .collect(),
                    collection_ids: s.collection_ids.clone(),
                }
            })
            .collect()
    }
}

/// An EXIF rational as exiv2 (GeoVisio's writer) reads it: only `"n/d"`. A decimal such as
/// `"45.12"` or `"45"` becomes an empty tag on the real server, so it is ignored here too.
fn exif_rational(value: &str) -> Option<f64> {
    let (n, d) = value.trim().split_once('/')?;
    let (n, d) = (n.trim().parse::<f64>().ok()?, d.trim().parse::<f64>().ok()?);
    (d != 0.0).then(|| n / d).filter(|v| v.is_finite())
}
/// The instance's web viewer on one picture (`{instance}/?focus=pic&pic=<id>`, the
/// viewer's permalink parameters): the page a "View on Panoramax" link opens.
pub(crate) async fn viewer(
    State(app): State<AppRef>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let st = lock(&app.pnx);
    let Some(pic) = q.get("pic").filter(|p| !p.is_empty()) else {
        return Html(page(
            "Panoramax",
            "<p>The sandbox instance's viewer: open a picture with <code>?pic=&lt;id&gt;</code>.</p>",
        ))
        .into_response();
    };
    let Some(p) = st.pictures.iter().find(|p| &p.id == pic) else {
        return (
            StatusCode::NOT_FOUND,
            Html(page(
                "Panoramax",
                "<p>This picture does not exist (or not any more).</p>",
            )),
        )
            .into_response();
    };
    let sequence = p
        .collection_id
        .as_ref()
        .and_then(|c| st.collections.iter().find(|x| &x.id == c));
    let body = match sequence {
        Some(c) => format!(
            "<p id=\"pnx-picture\" data-picture=\"{pid}\" data-sequence=\"{cid}\">Picture {pos} of {n} in the sequence <b>{title}</b> ({file}).</p>",
            pid = escape(&p.id),
            cid = escape(&c.id),
            pos = c
                .picture_ids
                .iter()
                .position(|x| x == &p.id)
                .map_or(0, |i| i + 1),
            n = c.picture_ids.len(),
            title = escape(&c.title),
            file = escape(&p.file_name),
        ),
        None => format!(
            "<p id=\"pnx-picture\" data-picture=\"{pid}\">Picture {file}, not yet in a sequence (still being processed).</p>",
            pid = escape(&p.id),
            file = escape(&p.file_name),
        ),
    };
    Html(page("Panoramax", &body)).into_response()
}
