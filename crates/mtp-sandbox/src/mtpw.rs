//! Map the Paths Web under `/mtpw`: the implicit-grant authorize page, sequence create
//! (form-encoded; JSON bodies ignored), import (JSON; checks the Mapillary sequence against
//! the Mapillary emulator), the Mapillary token check and the older import flow, and the
//! web pages a browser opens: a sequence's page and its delete page (a form that POSTs
//! back; mtp-web has no API to edit or delete).
//!
//! Errors keep mtp-web's quirk: HTTP 200 with `{"error":"<text>","status":false}`. An
//! unknown `unique_id` on import is an HTTP 500 HTML page, as the unguarded lookup raises.
//! A missing or bad token is HTTP 403 `{"detail":…}` (Django REST framework).
//!
//! An import carrying `mapillary_user_token` + `mapillary_sequence_key` answers as today's
//! server does ([`MtpwImportMode`], PROTOCOLS §5): by default its call to Mapillary's
//! retired v3 API fails, an HTTP 500 with a plain-text body (any `strava` or
//! `google_street_view` in the same body is already saved); `V3Refuses` gives the HTTP 200
//! `{"error":"Mapillary token is invalid","status":false}` of a v3 host that answers; only
//! `Fixed` (a server whose Mapillary check works) imports, checking the sequence against
//! the Mapillary emulator.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use crate::MTPW_CLIENT_ID;
use crate::app::{
    App, AppRef, auth_credential, ep, json_response, redirect, redirect_allowed, with_fragment,
    with_query,
};
use crate::auth::{Service, TokenKind, USERS};
use crate::body::{ParsedForm, read_all};
use crate::clock;
use crate::html::{consent_page, error_page};
use crate::state::{MtpwSequence, lock, username};

/// How the import answers when asked to link a Mapillary sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MtpwImportMode {
    /// Today's server: its Mapillary v3 call fails → HTTP 500, `text/plain`.
    #[default]
    V3Unreachable,
    /// A v3 host that answers refuses → HTTP 200 `{"error":"Mapillary token is invalid"}`.
    V3Refuses,
    /// A server whose Mapillary check works (checks ownership, imports, publishes).
    Fixed,
}

impl MtpwImportMode {
    pub const ALL: [MtpwImportMode; 3] = [
        MtpwImportMode::V3Unreachable,
        MtpwImportMode::V3Refuses,
        MtpwImportMode::Fixed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MtpwImportMode::V3Unreachable => "v3_unreachable",
            MtpwImportMode::V3Refuses => "v3_refuses",
            MtpwImportMode::Fixed => "fixed",
        }
    }

    fn from_u8(v: u8) -> MtpwImportMode {
        match v {
            1 => MtpwImportMode::V3Refuses,
            2 => MtpwImportMode::Fixed,
            _ => MtpwImportMode::V3Unreachable,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            MtpwImportMode::V3Unreachable => 0,
            MtpwImportMode::V3Refuses => 1,
            MtpwImportMode::Fixed => 2,
        }
    }
}

impl std::str::FromStr for MtpwImportMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        MtpwImportMode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown Map the Paths import mode {s:?}: use v3_unreachable, v3_refuses or fixed")
            })
    }
}

/// Token lifetime MTPW announces (≈19 years).
const EXPIRES_IN: &str = "600000000";
const DEFAULT_REDIRECT: &str = "app.mtp.desktop://app";

/// The transport taxonomy, grouped as in the MTPW docs. Of "Other" (the docs) and
/// "Unlisted" (what MTPDU, a client of the live server, sent), which one the live server
/// holds is unverified (PROTOCOLS §5 ⚠️): the emulator holds only MTPDU's, so a client that
/// sends the docs' name meets "Transport type is invalid" and must cope.
pub(crate) const TRANSPORT_TYPES: &[(&str, &[&str])] = &[
    (
        "Earth",
        &[
            "Bicycle",
            "Walk",
            "Scooter",
            "Skateboard",
            "Rollerskate",
            "Rock Climbing",
            "Wheelchair",
            "Car",
            "Electric Car",
            "Electric Bicycle",
            "Electric Scooter",
        ],
    ),
    (
        "Snow",
        &["Ski", "Snowboard", "Snowshoe", "Ice Skating", "Snowmobile"],
    ),
    (
        "Water",
        &[
            "Swim",
            "Paddleboard",
            "Scuba Dive",
            "Surf",
            "Windsurf",
            "Kiteboard",
            "Canoe",
            "Freedive",
            "Kayak",
            "Row",
            "Sail",
            "Boat",
        ],
    ),
    (
        "Air",
        &[
            "Parachute",
            "Paraglide",
            "Hang Glide",
            "Wingsuit",
            "BASE Jump",
            "Glider",
            "Plane",
            "Helicopter",
            "Drone",
        ],
    ),
    ("Other", &["Unlisted"]),
];

/// The canonical spelling of a transport type, matched case-insensitively.
pub(crate) fn transport_type(name: &str) -> Option<&'static str> {
    TRANSPORT_TYPES
        .iter()
        .flat_map(|(_, names)| names.iter())
        .find(|n| n.eq_ignore_ascii_case(name))
        .copied()
}

pub(crate) fn router(app: &AppRef) -> Router<AppRef> {
    Router::new()
        .route(
            "/accounts/authorize/",
            ep(app, "mtpw.authorize", get(authorize)),
        )
        .route(
            "/accounts/authorize/decision",
            ep(app, "mtpw.authorize_decision", post(decision)),
        )
        .route(
            "/api/v1/sequence/create/",
            ep(app, "mtpw.create", post(create)),
        )
        .route(
            "/api/v1/sequence/create",
            ep(app, "mtpw.create", post(create)),
        )
        .route(
            "/api/v1/sequence/import/{unique_id}/",
            ep(app, "mtpw.import", put(import)),
        )
        .route(
            "/api/v1/mapillary/token/verify",
            ep(app, "mtpw.verify", post(verify)),
        )
        .route(
            "/api/v1/sequence/import",
            ep(app, "mtpw.legacy_import", post(legacy_import)),
        )
        // mtp-web's pages (`sequence/urls.py`): the list, a sequence's detail page, and its
        // delete, which only a POST from the detail page's form does. A bare
        // `/sequence/<id>` is no page there.
        .route("/sequence/", get(sequence_index))
        .route("/sequence/{unique_id}", get(|| async { not_found_page() }))
        .route("/sequence/{unique_id}/detail", get(sequence_page))
        .route(
            "/sequence/{unique_id}/delete",
            ep(app, "mtpw.sequence_delete_page", get(delete_page)).merge(ep(
                app,
                "mtpw.sequence_delete",
                post(delete_sequence),
            )),
        )
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Sequence {
    unique_id: String,
    user: usize,
    name: String,
    description: Option<String>,
    transport_type: String,
    tags: Vec<String>,
    publish_at: Option<u64>,
    deleted: bool,
    google_street_view: Option<Value>,
    strava: Option<Value>,
    mapillary_sequence_key: Option<String>,
    image_count: Option<usize>,
    captured_at: Option<String>,
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub(crate) struct MtpwState {
    /// [`MtpwImportMode`] as a number, settable while running (a setting: not saved).
    #[serde(skip)]
    import_mode: AtomicU8,
    sequences: Vec<Sequence>,
    /// Every tag ever used (created on first use; matched case-insensitively).
    tags: Vec<String>,
    /// Mapillary tokens stored by `token/verify` (the older flow), per user.
    mapillary_tokens: HashMap<usize, String>,
}

impl MtpwState {
    pub(crate) fn with_import_mode(mode: MtpwImportMode) -> MtpwState {
        MtpwState {
            import_mode: AtomicU8::new(mode.to_u8()),
            ..MtpwState::default()
        }
    }

    pub(crate) fn import_mode(&self) -> MtpwImportMode {
        MtpwImportMode::from_u8(self.import_mode.load(Ordering::SeqCst))
    }

    pub(crate) fn set_import_mode(&self, mode: MtpwImportMode) {
        self.import_mode.store(mode.to_u8(), Ordering::SeqCst);
    }

    pub fn snapshot(&self, _app: &App) -> Vec<MtpwSequence> {
        self.sequences
            .iter()
            .map(|s| MtpwSequence {
                unique_id: s.unique_id.clone(),
                user: username(s.user),
                name: s.name.clone(),
                description: s.description.clone(),
                transport_type: s.transport_type.clone(),
                tags: s.tags.clone(),
                published: s.publish_at.is_some_and(clock::reached),
                deleted: s.deleted,
                google_street_view: s.google_street_view.clone(),
                strava: s.strava.clone(),
                mapillary_sequence_key: s.mapillary_sequence_key.clone(),
                image_count: s.image_count,
                captured_at: s.captured_at.clone(),
            })
            .collect()
    }

    /// Splits a comma-separated tag list (not trimmed), reusing existing spellings.
    fn tags(&mut self, csv: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        for t in csv.unwrap_or_default().split(',').filter(|t| !t.is_empty()) {
            let tag = match self
                .tags
                .iter()
                .find(|k| k.to_lowercase() == t.to_lowercase())
            {
                Some(existing) => existing.clone(),
                None => {
                    self.tags.push(t.to_owned());
                    t.to_owned()
                }
            };
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
        out
    }
}

/// mtp-web's error envelope: HTTP 200.
fn quirk_error(text: &str) -> Response {
    json_response(StatusCode::OK, &json!({"error": text, "status": false}))
}

fn server_error_500() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html("<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n"),
    )
        .into_response()
}

/// What mtp-web's WSGI handler answers when a view raises outside Django's error page
/// (seen with its Mapillary v3 call failing, PROTOCOLS §5).
fn server_error_plain() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(header::CONTENT_TYPE, "text/plain")],
        "A server error occurred.  Please contact the administrator.",
    )
        .into_response()
}

/// Django REST framework's token check: HTTP 403 with `{"detail":…}` for a missing or a
/// bad token (PROTOCOLS §5, observed on mtp-web's own code).
/// mtp-web authenticates with its OAuth2 tokens: a bad one is no credential at all, and
/// the reply is the same as for none.
fn user(app: &AppRef, headers: &HeaderMap) -> Result<usize, Response> {
    let refused = || {
        json_response(
            StatusCode::FORBIDDEN,
            &json!({"detail": "Authentication credentials were not provided."}),
        )
    };
    let token = auth_credential(headers, &["Bearer"]).ok_or_else(refused)?;
    lock(&app.auth)
        .access_user(&app.faults, Service::Mtpw, token)
        .ok_or_else(refused)
}

fn validate_authorize(q: &HashMap<String, String>) -> Result<String, Response> {
    if q.get("client_id").map(String::as_str) != Some(MTPW_CLIENT_ID) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Error: invalid_client",
            "Invalid client_id parameter value.",
        ));
    }
    let redirect_uri = q
        .get("redirect_uri")
        .filter(|r| !r.is_empty())
        .cloned()
        .unwrap_or_else(|| DEFAULT_REDIRECT.to_owned());
    if !redirect_allowed(&redirect_uri) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Error: invalid_request",
            "Mismatching redirect URI.",
        ));
    }
    if q.get("response_type").map(String::as_str) != Some("token") {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            "Error: unsupported_response_type",
            "response_type must be token (implicit grant).",
        ));
    }
    Ok(redirect_uri)
}

fn approve(app: &AppRef, user: usize, redirect_uri: &str, state: Option<&str>) -> Response {
    let token = lock(&app.auth).issue(
        &app.faults,
        Service::Mtpw,
        TokenKind::Access,
        user,
        MTPW_CLIENT_ID,
        None,
    );
    // In mtp-web's order (PROTOCOLS §5, observed): the scope comes back as well.
    let mut params = vec![
        ("access_token", token.as_str()),
        ("expires_in", EXPIRES_IN),
        ("token_type", "Bearer"),
        ("scope", "read write"),
    ];
    if let Some(s) = state {
        params.push(("state", s));
    }
    redirect(StatusCode::FOUND, &with_fragment(redirect_uri, &params))
}

async fn authorize(
    State(app): State<AppRef>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let redirect_uri = match validate_authorize(&q) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let state = q.get("state").map(String::as_str);
    if app.cfg.auto_approve {
        return approve(&app, 0, &redirect_uri, state);
    }
    let mut fields = vec![
        ("client_id", MTPW_CLIENT_ID),
        ("response_type", "token"),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    if let Some(s) = state {
        fields.push(("state", s));
    }
    consent_page(
        "Map the Paths",
        "MTP Desktop (sandbox)",
        q.get("scope").map(String::as_str),
        "/mtpw/accounts/authorize/decision",
        &fields,
    )
}

async fn decision(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let Ok(form) = ParsedForm::from_request(&headers, body).await else {
        return error_page(StatusCode::BAD_REQUEST, "Error", "Bad form.");
    };
    let q: HashMap<String, String> = form.fields.into_iter().collect();
    let redirect_uri = match validate_authorize(&q) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let state = q.get("state").map(String::as_str);
    if q.get("decision").map(String::as_str) != Some("approve") {
        let mut params = vec![("error", "access_denied")];
        if let Some(s) = state {
            params.push(("state", s));
        }
        // A refusal comes back in the query string, not the fragment the token uses
        // (observed on mtp-web's own code, PROTOCOLS §5).
        return redirect(StatusCode::FOUND, &with_query(&redirect_uri, &params));
    }
    let user = q
        .get("user")
        .and_then(|u| u.parse::<usize>().ok())
        .filter(|u| *u < USERS.len())
        .unwrap_or(0);
    // Approving answers 302 (observed on mtp-web's own code, PROTOCOLS §5).
    approve(&app, user, &redirect_uri, state)
}

/// Form fields of a create call; a JSON (or any non-form) body counts as no fields.
async fn form_fields(headers: &HeaderMap, body: Body) -> ParsedForm {
    ParsedForm::from_request(headers, body)
        .await
        .unwrap_or_default()
}

async fn create(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let form = form_fields(&headers, body).await;
    let user = match user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(name) = form.get("name") else {
        return quirk_error("Sequence Name is missing");
    };
    let Some(tt) = form.get("transport_type") else {
        return quirk_error("Transport type is missing");
    };
    let Some(tt) = transport_type(tt) else {
        return quirk_error("Transport type is invalid");
    };
    let unique_id = uuid::Uuid::new_v4().to_string();
    let mut st = lock(&app.mtpw);
    let tags = st.tags(form.get("tag"));
    st.sequences.push(Sequence {
        unique_id: unique_id.clone(),
        user,
        name: name.to_owned(),
        description: form.get("description").map(str::to_owned),
        transport_type: tt.to_owned(),
        tags,
        publish_at: None,
        deleted: false,
        google_street_view: None,
        strava: None,
        mapillary_sequence_key: None,
        image_count: None,
        captured_at: None,
    });
    json_response(
        StatusCode::OK,
        &json!({"status": "success", "message": "Sequence successfully was created.",
                "unique_id": unique_id}),
    )
}

/// What the Mapillary emulator knows about a sequence, for the import checks.
struct MapillarySequenceInfo {
    owner: usize,
    image_count: usize,
    captured_at: Option<String>,
}

fn mapillary_sequence(app: &AppRef, key: &str) -> Option<MapillarySequenceInfo> {
    let st = crate::state::SandboxState { app: app.clone() };
    let seq = st
        .mapillary_sequences()
        .into_iter()
        .find(|s| s.id == key && s.visible)?;
    let images: Vec<_> = st
        .mapillary_images()
        .into_iter()
        .filter(|i| i.sequence_id == key && i.visible)
        .collect();
    let first_time = images.iter().filter_map(|i| i.captured_at_ms).min();
    Some(MapillarySequenceInfo {
        owner: USERS.iter().position(|u| u.username == seq.user)?,
        image_count: images.len(),
        captured_at: first_time.and_then(|ms| {
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
        }),
    })
}

/// The Mapillary checks shared by both import flows; returns what to store.
fn check_mapillary(
    app: &AppRef,
    token: Option<&str>,
    key: Option<&str>,
) -> Result<(String, MapillarySequenceInfo), Response> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(quirk_error("Mapillary token is missing"));
    };
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Err(quirk_error("Sequence key is missing"));
    };
    let Some(mly_user) = lock(&app.auth).access_user(&app.faults, Service::Mapillary, token) else {
        return Err(quirk_error("Mapillary token is invalid"));
    };
    let info = match mapillary_sequence(app, key) {
        Some(i) if i.image_count > 0 => i,
        _ => return Err(quirk_error("Sequence is empty")),
    };
    if info.owner != mly_user {
        return Err(quirk_error("You are not owner of this sequence"));
    }
    Ok((key.to_owned(), info))
}

async fn import(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(unique_id): Path<String>,
    body: Body,
) -> Response {
    let bytes = read_all(body).await.unwrap_or_default();
    let user = match user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let body: serde_json::Map<String, Value> = if bytes.is_empty() {
        serde_json::Map::new()
    } else if ct.starts_with("application/json") {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => m,
            Ok(_) => serde_json::Map::new(),
            Err(e) => {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"detail": format!("JSON parse error - {e}")}),
                );
            }
        }
    } else {
        match ParsedForm::parse(&ct, bytes).await {
            Ok(f) => f
                .fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
            Err(_) => {
                return json_response(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    &json!({"detail": format!("Unsupported media type \"{ct}\" in request.")}),
                );
            }
        }
    };
    {
        let st = lock(&app.mtpw);
        match st
            .sequences
            .iter()
            .find(|s| s.unique_id == unique_id && !s.deleted)
        {
            None => return server_error_500(),
            Some(s) if s.user != user => return quirk_error("You are not owner of this sequence"),
            Some(_) => {}
        }
    }
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    // mtp-web goes to Mapillary only when the token's key is there; without it, the
    // Street View and Strava fields are the whole import.
    let wants_mapillary = body.contains_key("mapillary_user_token");
    let mode = lock(&app.mtpw).import_mode();
    if wants_mapillary && mode != MtpwImportMode::Fixed {
        if text("mapillary_user_token").is_none_or(str::is_empty) {
            return quirk_error("Mapillary token is missing");
        }
        if text("mapillary_sequence_key").is_none_or(str::is_empty) {
            return quirk_error("Sequence key is missing");
        }
        if mode == MtpwImportMode::V3Refuses {
            return quirk_error("Mapillary token is invalid");
        }
        // The Strava / Street View fields are saved before the v3 call raises.
        let mut st = lock(&app.mtpw);
        if let Some(s) = st
            .sequences
            .iter_mut()
            .find(|s| s.unique_id == unique_id && !s.deleted)
        {
            if let Some(v) = body.get("google_street_view") {
                s.google_street_view = Some(v.clone());
            }
            if let Some(v) = body.get("strava") {
                s.strava = Some(v.clone());
            }
        }
        return server_error_plain();
    }
    let mapillary = if wants_mapillary {
        match check_mapillary(
            &app,
            text("mapillary_user_token"),
            text("mapillary_sequence_key"),
        ) {
            Ok(m) => Some(m),
            Err(r) => return r,
        }
    } else {
        None
    };
    let mut st = lock(&app.mtpw);
    let Some(idx) = st
        .sequences
        .iter()
        .position(|s| s.unique_id == unique_id && !s.deleted)
    else {
        return server_error_500();
    };
    let mut message = String::new();
    if let Some(v) = body.get("google_street_view") {
        st.sequences[idx].google_street_view = Some(v.clone());
        message.push_str("Google Street View is updated \n");
    }
    if let Some(v) = body.get("strava") {
        st.sequences[idx].strava = Some(v.clone());
        message.push_str("Strava is updated \n");
    }
    let Some((key, info)) = mapillary else {
        // Nothing to act on: mtp-web asks for the token it did not get.
        if message.is_empty() {
            return quirk_error("Mapillary token is missing");
        }
        return json_response(StatusCode::OK, &json!({"message": message, "status": true}));
    };
    for (i, other) in st.sequences.iter_mut().enumerate() {
        if i != idx && other.mapillary_sequence_key.as_deref() == Some(key.as_str()) {
            other.deleted = true;
        }
    }
    let s = &mut st.sequences[idx];
    s.mapillary_sequence_key = Some(key);
    s.image_count = Some(info.image_count);
    s.captured_at = info.captured_at;
    s.publish_at = Some(clock::after(app.cfg.processing_delay));
    json_response(
        StatusCode::OK,
        &json!({"status": "success",
                "message": "Sequence successfully was imported. Sequence will be published in about 10 minutes.",
                "unique_id": unique_id}),
    )
}

async fn verify(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let form = form_fields(&headers, body).await;
    let user = match user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(token) = form.get("mapillary_token") else {
        return quirk_error("Mapillary token is missing");
    };
    let Some(mly_user) = lock(&app.auth).access_user(&app.faults, Service::Mapillary, token) else {
        return quirk_error("Mapillary token is invalid");
    };
    lock(&app.mtpw)
        .mapillary_tokens
        .insert(user, token.to_owned());
    json_response(
        StatusCode::OK,
        &json!({"status": true, "map_user_data": {
            "id": USERS[mly_user].mapillary_id,
            "username": USERS[mly_user].username,
        }}),
    )
}

/// The 2020 flow: create or update by Mapillary sequence key, using the token stored by
/// `token/verify`.
async fn legacy_import(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let form = form_fields(&headers, body).await;
    let user = match user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let Some(name) = form.get("name") else {
        return quirk_error("Sequence Name is missing");
    };
    let Some(tt) = form.get("transport_type") else {
        return quirk_error("Transport type is missing");
    };
    let Some(tt) = transport_type(tt) else {
        return quirk_error("Transport type is invalid");
    };
    let token = lock(&app.mtpw).mapillary_tokens.get(&user).cloned();
    let (key, info) = match check_mapillary(&app, token.as_deref(), form.get("sequence_key")) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let mut st = lock(&app.mtpw);
    let tags = st.tags(form.get("tag"));
    let publish_at = Some(clock::after(app.cfg.processing_delay));
    let existing = st.sequences.iter().position(|s| {
        !s.deleted && s.user == user && s.mapillary_sequence_key.as_deref() == Some(key.as_str())
    });
    let unique_id = match existing {
        Some(i) => {
            let s = &mut st.sequences[i];
            s.name = name.to_owned();
            s.description = form.get("description").map(str::to_owned);
            s.transport_type = tt.to_owned();
            s.tags = tags;
            s.image_count = Some(info.image_count);
            s.captured_at = info.captured_at;
            s.publish_at = publish_at;
            s.unique_id.clone()
        }
        None => {
            let unique_id = uuid::Uuid::new_v4().to_string();
            st.sequences.push(Sequence {
                unique_id: unique_id.clone(),
                user,
                name: name.to_owned(),
                description: form.get("description").map(str::to_owned),
                transport_type: tt.to_owned(),
                tags,
                publish_at,
                deleted: false,
                google_street_view: None,
                strava: None,
                mapillary_sequence_key: Some(key),
                image_count: Some(info.image_count),
                captured_at: info.captured_at,
            });
            unique_id
        }
    };
    json_response(
        StatusCode::OK,
        &json!({"status": "success", "message": "Sequence successfully was imported.",
                "unique_id": unique_id}),
    )
}

/// Django's 404 page, for an unknown or deleted sequence.
fn not_found_page() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Not Found",
        "The requested resource was not found on this server.",
    )
}

/// `GET {mtpw}/sequence/`: the sequence list, where mtp-web sends the browser after a
/// delete (or a refused one).
async fn sequence_index(State(app): State<AppRef>) -> Response {
    use crate::html::escape;
    let st = lock(&app.mtpw);
    let items: String = st
        .sequences
        .iter()
        .filter(|s| !s.deleted)
        .map(|s| {
            format!(
                "<li><a href=\"{}\">{}</a></li>",
                escape(&app.url(&format!("/mtpw/sequence/{}/detail", s.unique_id))),
                escape(&s.name)
            )
        })
        .collect();
    Html(crate::html::page(
        "Map the Paths: sequences",
        &format!("<ul id=\"mtpw-sequences\">{items}</ul>"),
    ))
    .into_response()
}

/// The sequence's web page (`{mtpw}/sequence/<unique_id>/detail`), where it is edited,
/// published and deleted (mtp-web has no API for those, PROTOCOLS §5): its Delete button is
/// a form that POSTs to `…/delete`. Unknown or deleted ids get Django's 404 page.
async fn sequence_page(State(app): State<AppRef>, Path(unique_id): Path<String>) -> Response {
    use crate::html::escape;
    let st = lock(&app.mtpw);
    let Some(s) = st
        .sequences
        .iter()
        .find(|s| s.unique_id == unique_id && !s.deleted)
    else {
        return not_found_page();
    };
    let published = s.publish_at.is_some_and(clock::reached);
    let linked = match &s.mapillary_sequence_key {
        Some(key) => format!("Mapillary sequence <code>{}</code>", escape(key)),
        None => "not linked to Mapillary".to_owned(),
    };
    let description = s
        .description
        .as_deref()
        .map(|d| format!("<p id=\"mtpw-description\">{}</p>", escape(d)))
        .unwrap_or_default();
    let tags = if s.tags.is_empty() {
        String::new()
    } else {
        format!(
            "<p id=\"mtpw-tags\">Tags: {}</p>",
            escape(&s.tags.join(", "))
        )
    };
    Html(crate::html::page(
        &format!("Map the Paths: {}", s.name),
        &format!(
            "<p id=\"mtpw-sequence\" data-unique-id=\"{id}\">{transport} · {state} · {linked}</p>\n\
             {description}{tags}\n\
             <form id=\"mtpw-delete\" method=\"post\" action=\"{delete}\"><button class=\"approve\" type=\"submit\" id=\"confirm-delete\">Delete</button></form>",
            id = escape(&s.unique_id),
            transport = escape(&s.transport_type),
            state = if published {
                "published"
            } else {
                "unpublished"
            },
            delete = escape(&app.url(&format!("/mtpw/sequence/{}/delete", s.unique_id))),
        ),
    ))
    .into_response()
}

/// `GET {mtpw}/sequence/<unique_id>/delete`: deletes nothing. mtp-web flashes "The
/// sequence does not exist or has no access." and sends the browser to the list
/// (`views.sequence_delete`); an unknown id is a 404.
async fn delete_page(State(app): State<AppRef>, Path(unique_id): Path<String>) -> Response {
    let st = lock(&app.mtpw);
    if !st
        .sequences
        .iter()
        .any(|s| s.unique_id == unique_id && !s.deleted)
    {
        return not_found_page();
    }
    redirect(StatusCode::FOUND, &app.url("/mtpw/sequence/"))
}

/// `POST {mtpw}/sequence/<unique_id>/delete` (the detail page's Delete button): deletes the
/// sequence and sends the browser to the list; a second time, 404.
async fn delete_sequence(State(app): State<AppRef>, Path(unique_id): Path<String>) -> Response {
    let mut st = lock(&app.mtpw);
    let Some(s) = st
        .sequences
        .iter_mut()
        .find(|s| s.unique_id == unique_id && !s.deleted)
    else {
        return not_found_page();
    };
    s.deleted = true;
    redirect(StatusCode::FOUND, &app.url("/mtpw/sequence/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_types_match_case_insensitively() {
        assert_eq!(transport_type("bicycle"), Some("Bicycle"));
        assert_eq!(transport_type("base jump"), Some("BASE Jump"));
        assert_eq!(transport_type("UNLISTED"), Some("Unlisted"));
        assert_eq!(transport_type("Other"), None);
        assert_eq!(transport_type("Hoverboard"), None);
        assert_eq!(transport_type("Earth"), None);
    }

    #[test]
    fn tags_reuse_spelling_and_are_not_trimmed() {
        let mut st = MtpwState::default();
        assert_eq!(st.tags(Some("Forest,river")), vec!["Forest", "river"]);
        assert_eq!(st.tags(Some("forest, River")), vec!["Forest", " River"]);
    }
}
