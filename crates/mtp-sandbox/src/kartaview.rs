//! KartaView under `/kartaview`: `client_auth` (OSM token → KartaView token), the v1 write
//! API (form or multipart POSTs, trailing slashes as in production, `apiCode` strings, ids as
//! digit strings) and the v2 read API (`apiCode` numbers).
//!
//! Sequence states: `NEW` until `finished-uploading`, then `UPLOAD_FINISHED`, then
//! `PROCESSING_FINISHED` once `processing_delay` has passed. The v2 sequence carries the v1
//! state in `status`, and the v2 names in `uploadStatus` (`UPLOADING` → `FINISHED`) and
//! `processingStatus` (`UPLOADING` → `PROCESSING` → `FINISHED`); `imageProcessingStatus`,
//! `metadataStatus`, `qualityStatus` and each photo's `autoImgProcessingStatus` go
//! `NEW` → `PROCESSING` → `FINISHED` (`autoImgProcessingResult` `ORIGINAL` → `BLURRED`).

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use md5::{Digest as _, Md5};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::time::Instant;

use crate::OSM_CLIENT_SECRET;
use crate::app::{App, AppRef, ep, json_response};
use crate::auth::{Service, TokenCheck, TokenKind, USERS};
use crate::faults::OsmAppRefusal;

/// The OSM app KartaView's own clients sign in with; with `kartaview_refuse_osm_apps` set,
/// `client_auth` accepts only tokens issued to it.
pub const KARTAVIEW_OWN_OSM_CLIENT_ID: &str = "kartaview-upload-scripts";
use crate::body::{FormError, ParsedForm};
use crate::photo;
use crate::state::{KartaViewPhoto, KartaViewSequence, lock, username};

const UNAUTHENTICATED: &str = " You have to be authenticated in order to access this method";
const DUPLICATE: &str = " You are not allowed to add a duplicate entry (sequenceIndex)";

pub(crate) fn router(app: &AppRef) -> Router<AppRef> {
    Router::new()
        .route(
            "/auth/openstreetmap/client_auth",
            ep(app, "kartaview.client_auth", post(client_auth)),
        )
        .route(
            "/1.0/sequence/",
            ep(app, "kartaview.sequence", post(create_sequence)),
        )
        .route(
            "/1.0/photo/",
            ep(app, "kartaview.photo", post(upload_photo)),
        )
        .route(
            "/1.0/video/",
            ep(app, "kartaview.video", post(upload_video)),
        )
        .route(
            "/1.0/sequence/finished-uploading/",
            ep(
                app,
                "kartaview.finished_uploading",
                post(finished_uploading),
            ),
        )
        .route(
            "/1.0/sequence/remove/",
            ep(app, "kartaview.sequence_remove", post(remove_sequence)),
        )
        .route(
            "/1.0/photo/remove/",
            ep(app, "kartaview.photo_remove", post(remove_photo)),
        )
        .route(
            "/1.0/sequence/photo-list/",
            ep(app, "kartaview.photo_list", post(photo_list)),
        )
        .route("/details", ep(app, "kartaview.details", post(details)))
        .route("/details/{id}", get(details_page))
        .route("/my-list", ep(app, "kartaview.my_list", post(my_list)))
        .route(
            "/2.0/sequence/{id}",
            ep(app, "kartaview.sequence_v2", get(sequence_v2)),
        )
        .route(
            "/2.0/photo/",
            ep(app, "kartaview.photos_v2", get(photos_v2)),
        )
}

struct Photo {
    id: u64,
    index: u32,
    lat: f64,
    lng: f64,
    shot_date: String,
    heading: Option<f64>,
    gps_accuracy: Option<f64>,
    projection: Option<String>,
    field_of_view: Option<f64>,
    projection_yaw: Option<f64>,
    filename: Option<String>,
    len: u64,
    md5: String,
    date_added: OffsetDateTime,
}

struct Sequence {
    id: u64,
    user: usize,
    upload_source: String,
    platform_name: Option<String>,
    device_name: Option<String>,
    current_coordinate: String,
    metadata_len: Option<u64>,
    date_added: OffsetDateTime,
    finished_at: Option<Instant>,
    deleted: bool,
    photos: Vec<Photo>,
    videos: Vec<(u32, u64)>,
    duplicate_attempts: Vec<u32>,
}

pub(crate) struct KvState {
    sequences: Vec<Sequence>,
    next_sequence: u64,
    next_item: u64,
}

impl Default for KvState {
    fn default() -> KvState {
        KvState {
            sequences: Vec::new(),
            next_sequence: 4_000_001,
            next_item: 90_000_001,
        }
    }
}

/// Where a sequence is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Uploading,
    Processing,
    Finished,
}

fn phase(app: &App, s: &Sequence) -> Phase {
    match s.finished_at {
        None => Phase::Uploading,
        Some(at) if at.elapsed() < app.cfg.processing_delay => Phase::Processing,
        Some(_) => Phase::Finished,
    }
}

fn v1_status(p: Phase) -> &'static str {
    match p {
        Phase::Uploading => "NEW",
        Phase::Processing => "UPLOAD_FINISHED",
        Phase::Finished => "PROCESSING_FINISHED",
    }
}

fn item_status(p: Phase) -> &'static str {
    match p {
        Phase::Uploading => "NEW",
        Phase::Processing => "PROCESSING",
        Phase::Finished => "FINISHED",
    }
}

impl KvState {
    pub fn snapshot(&self, app: &App) -> Vec<KartaViewSequence> {
        self.sequences
            .iter()
            .map(|s| {
                let mut photos: Vec<KartaViewPhoto> = s
                    .photos
                    .iter()
                    .map(|p| KartaViewPhoto {
                        id: p.id.to_string(),
                        sequence_index: p.index,
                        lat: p.lat,
                        lng: p.lng,
                        shot_date: p.shot_date.clone(),
                        heading: p.heading,
                        gps_accuracy: p.gps_accuracy,
                        projection: p.projection.clone(),
                        field_of_view: p.field_of_view,
                        projection_yaw: p.projection_yaw,
                        filename: p.filename.clone(),
                        len: p.len,
                        md5: p.md5.clone(),
                    })
                    .collect();
                photos.sort_by_key(|p| p.sequence_index);
                KartaViewSequence {
                    id: s.id.to_string(),
                    user: username(s.user),
                    status: v1_status(phase(app, s)).to_owned(),
                    upload_source: s.upload_source.clone(),
                    platform_name: s.platform_name.clone(),
                    device_name: s.device_name.clone(),
                    current_coordinate: s.current_coordinate.clone(),
                    metadata_len: s.metadata_len,
                    deleted: s.deleted,
                    photos,
                    duplicate_attempts: s.duplicate_attempts.clone(),
                }
            })
            .collect()
    }

    fn live(&mut self, id: u64) -> Option<&mut Sequence> {
        self.sequences.iter_mut().find(|s| s.id == id && !s.deleted)
    }
}

fn datetime(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

fn v1(status: StatusCode, api_code: &str, message: &str, osv: Option<Value>) -> Response {
    let mut body = json!({"status": {
        "apiCode": api_code,
        "apiMessage": message,
        "httpCode": status.as_u16(),
        "httpMessage": status.canonical_reason().unwrap_or(""),
    }});
    if let Some(osv) = osv {
        body["osv"] = osv;
    }
    json_response(status, &body)
}

fn ok(osv: Value) -> Response {
    v1(
        StatusCode::OK,
        "600",
        "The request has been processed without incidents",
        Some(osv),
    )
}

fn unauthorized() -> Response {
    v1(StatusCode::UNAUTHORIZED, "401", UNAUTHENTICATED, None)
}

fn missing(arg: &str) -> Response {
    v1(
        StatusCode::BAD_REQUEST,
        "610",
        &format!(" Missing required argument: {arg}"),
        None,
    )
}

fn wrong_type(arg: &str) -> Response {
    v1(
        StatusCode::BAD_REQUEST,
        "611",
        &format!(" Wrong argument type: {arg}"),
        None,
    )
}

fn out_of_range(arg: &str) -> Response {
    v1(
        StatusCode::BAD_REQUEST,
        "612",
        &format!(" Argument out of range: {arg}"),
        None,
    )
}

fn not_allowed() -> Response {
    v1(
        StatusCode::FORBIDDEN,
        "618",
        " You are not allowed to access this resource",
        None,
    )
}

/// Reads the form; the `access_token` field authenticates.
async fn form_and_user(
    app: &AppRef,
    headers: &HeaderMap,
    body: Body,
    required: bool,
) -> Result<(ParsedForm, Option<usize>), Response> {
    let form = match ParsedForm::from_request(headers, body).await {
        Ok(f) => f,
        Err(FormError::UnsupportedType) => {
            return Err(v1(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "611",
                " Unsupported content type: send a form or multipart body",
                None,
            ));
        }
        Err(FormError::Malformed(m)) => {
            return Err(v1(
                StatusCode::BAD_REQUEST,
                "690",
                &format!(" Malformed request body: {m}"),
                None,
            ));
        }
    };
    let user = form
        .get("access_token")
        .and_then(|t| lock(&app.auth).access_user(&app.faults, Service::KartaView, t));
    if required && user.is_none() {
        return Err(unauthorized());
    }
    Ok((form, user))
}

fn parse_coordinate(s: &str) -> Option<(f64, f64)> {
    let (a, b) = s.split_once(',')?;
    let lat: f64 = a.trim().parse().ok()?;
    let lng: f64 = b.trim().parse().ok()?;
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lng)).then_some((lat, lng))
}

fn opt_f64(form: &ParsedForm, name: &str) -> Result<Option<f64>, Response> {
    match form.get(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Some)
            .ok_or_else(|| wrong_type(name)),
    }
}

fn sequence_id(form: &ParsedForm) -> Result<u64, Response> {
    let Some(v) = form.get("sequenceId") else {
        return Err(missing("sequenceId"));
    };
    v.trim().parse().map_err(|_| wrong_type("sequenceId"))
}

fn sequence_index(form: &ParsedForm) -> Result<u32, Response> {
    let Some(v) = form.get("sequenceIndex") else {
        return Err(missing("sequenceIndex"));
    };
    match v.trim().parse::<i64>() {
        Ok(i) if i < 0 => Err(out_of_range("sequenceIndex")),
        Ok(i) => u32::try_from(i).map_err(|_| out_of_range("sequenceIndex")),
        Err(_) => Err(wrong_type("sequenceIndex")),
    }
}

async fn client_auth(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let (form, _) = match form_and_user(&app, &headers, body, false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(request_token) = form.get("request_token") else {
        return missing("request_token");
    };
    let Some(secret) = form.get("secret_token") else {
        return missing("secret_token");
    };
    if secret != OSM_CLIENT_SECRET {
        return v1(
            StatusCode::BAD_REQUEST,
            "690",
            " Unexpected error: the OSM application is not accepted",
            None,
        );
    }
    let checked = lock(&app.auth).check(&app.faults, Service::Osm, request_token);
    if let (TokenCheck::Valid(t), Some(refusal)) =
        (&checked, app.faults.kartaview_osm_app_refusal())
        && t.client_id != KARTAVIEW_OWN_OSM_CLIENT_ID
    {
        // KartaView only knows the OSM apps of its own clients (PROTOCOLS §3.1).
        return match refusal {
            OsmAppRefusal::Unexpected690 => v1(
                StatusCode::BAD_REQUEST,
                "690",
                " Unexpected error. Please try again later.",
                None,
            ),
            OsmAppRefusal::InvalidToken401 => v1(
                StatusCode::UNAUTHORIZED,
                "401",
                "Invalid access token",
                None,
            ),
        };
    }
    let user = match checked {
        TokenCheck::Valid(t) if t.kind == TokenKind::Access => Some(t.user),
        _ => None,
    };
    let Some(user) = user else {
        return v1(
            StatusCode::UNAUTHORIZED,
            "401",
            "Invalid access token",
            None,
        );
    };
    let token = lock(&app.auth).issue(
        &app.faults,
        Service::KartaView,
        TokenKind::Access,
        user,
        "",
        None,
    );
    ok(json!({
        "access_token": token,
        "id": USERS[user].kartaview_id.to_string(),
        "username": USERS[user].username,
        "full_name": USERS[user].display_name,
        "type": "user",
        "role": "ROLE_USER",
    }))
}

async fn create_sequence(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let (form, user) = match form_and_user(&app, &headers, body, true).await {
        Ok((f, Some(u))) => (f, u),
        Ok(_) => return unauthorized(),
        Err(r) => return r,
    };
    let Some(upload_source) = form.get("uploadSource") else {
        return missing("uploadSource");
    };
    let Some(coordinate) = form.get("currentCoordinate") else {
        return missing("currentCoordinate");
    };
    let Some((lat, lng)) = parse_coordinate(coordinate) else {
        return wrong_type("currentCoordinate");
    };
    let metadata_len = form
        .file("metaData")
        .map(|f| f.data.len() as u64)
        .or_else(|| form.get("metaData").map(|m| m.len() as u64));
    let now = OffsetDateTime::now_utc();
    let mut st = lock(&app.kv);
    let id = st.next_sequence;
    st.next_sequence += 1;
    st.sequences.push(Sequence {
        id,
        user,
        upload_source: upload_source.to_owned(),
        platform_name: form.get("platformName").map(str::to_owned),
        device_name: form.get("deviceName").map(str::to_owned),
        current_coordinate: coordinate.to_owned(),
        metadata_len,
        date_added: now,
        finished_at: None,
        deleted: false,
        photos: Vec::new(),
        videos: Vec::new(),
        duplicate_attempts: Vec::new(),
    });
    ok(json!({"sequence": {
        "id": id.to_string(),
        "userId": USERS[user].kartaview_id.to_string(),
        "dateAdded": datetime(now),
        "currentLat": lat.to_string(),
        "currentLng": lng.to_string(),
        "uploadSource": upload_source,
        "platformName": form.get("platformName"),
        "deviceName": form.get("deviceName"),
        "status": "NEW",
    }}))
}

/// Finds a live sequence the user owns, or the v1 error.
fn owned(st: &mut KvState, id: u64, user: usize) -> Result<&mut Sequence, Response> {
    match st.live(id) {
        None => Err(out_of_range("sequenceId")),
        Some(s) if s.user != user => Err(not_allowed()),
        Some(s) => Ok(s),
    }
}

async fn upload_photo(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let (form, user) = match form_and_user(&app, &headers, body, true).await {
        Ok((f, Some(u))) => (f, u),
        Ok(_) => return unauthorized(),
        Err(r) => return r,
    };
    let seq_id = match sequence_id(&form) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let index = match sequence_index(&form) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(coordinate) = form.get("coordinate") else {
        return missing("coordinate");
    };
    let Some((lat, lng)) = parse_coordinate(coordinate) else {
        return wrong_type("coordinate");
    };
    let Some(shot_date) = form.get("shotDate") else {
        return missing("shotDate");
    };
    if time::PrimitiveDateTime::parse(
        shot_date,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .is_err()
    {
        return wrong_type("shotDate");
    }
    let heading = match opt_f64(&form, "headers") {
        Ok(h) => h,
        Err(r) => return r,
    };
    if heading.is_some_and(|h| !(0.0..=360.0).contains(&h)) {
        return out_of_range("headers");
    }
    let gps_accuracy = match opt_f64(&form, "gpsAccuracy") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let field_of_view = match opt_f64(&form, "fieldOfView") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let projection_yaw = match opt_f64(&form, "projectionYaw") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let projection = match (form.get("projection"), field_of_view) {
        (None, None) => None,
        (Some(_), None) => return missing("fieldOfView"),
        (None, Some(_)) => return missing("projection"),
        (Some(p), Some(_)) => match p.to_ascii_uppercase().as_str() {
            // The scripts send PLAIN; the server stores PLANE.
            "PLAIN" | "PLANE" => Some("PLANE".to_owned()),
            "SPHERE" => Some("SPHERE".to_owned()),
            "CYLINDER" => Some("CYLINDER".to_owned()),
            _ => return out_of_range("projection"),
        },
    };
    let Some(file) = form.file("photo") else {
        return missing("photo");
    };
    if !photo::is_jpeg(&file.data) {
        return wrong_type("photo");
    }
    let now = OffsetDateTime::now_utc();
    let mut st = lock(&app.kv);
    let id = st.next_item;
    let seq = match owned(&mut st, seq_id, user) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if seq.photos.iter().any(|p| p.index == index) {
        seq.duplicate_attempts.push(index);
        return v1(StatusCode::BAD_REQUEST, "660", DUPLICATE, None);
    }
    if seq.finished_at.is_some() {
        return v1(
            StatusCode::BAD_REQUEST,
            "671",
            " Wrong status: the sequence is already finished",
            None,
        );
    }
    seq.photos.push(Photo {
        id,
        index,
        lat,
        lng,
        shot_date: shot_date.to_owned(),
        heading,
        gps_accuracy,
        projection: projection.clone(),
        field_of_view,
        projection_yaw,
        filename: file.filename.clone(),
        len: file.data.len() as u64,
        md5: hex::encode(Md5::digest(&file.data)),
        date_added: now,
    });
    st.next_item += 1;
    ok(json!({"photo": {
        "id": id.to_string(),
        "sequenceId": seq_id.to_string(),
        "sequenceIndex": index.to_string(),
        "lat": lat.to_string(),
        "lng": lng.to_string(),
        "shotDate": shot_date,
        "dateAdded": datetime(now),
        "headers": heading.map(|h| h.to_string()),
        "projection": projection,
        "fieldOfView": field_of_view.map(|f| f.to_string()),
        "autoImgProcessingStatus": "NEW",
    }}))
}

async fn upload_video(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let (form, user) = match form_and_user(&app, &headers, body, true).await {
        Ok((f, Some(u))) => (f, u),
        Ok(_) => return unauthorized(),
        Err(r) => return r,
    };
    let seq_id = match sequence_id(&form) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let index = match sequence_index(&form) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(file) = form.file("video") else {
        return missing("video");
    };
    if file.data.len() < 12 || &file.data[4..8] != b"ftyp" {
        return wrong_type("video");
    }
    let mut st = lock(&app.kv);
    let id = st.next_item;
    let seq = match owned(&mut st, seq_id, user) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if seq.videos.iter().any(|(i, _)| *i == index) {
        seq.duplicate_attempts.push(index);
        return v1(StatusCode::BAD_REQUEST, "660", DUPLICATE, None);
    }
    seq.videos.push((index, id));
    st.next_item += 1;
    ok(
        json!({"video": {"id": id.to_string(), "sequenceId": seq_id.to_string(),
                        "sequenceIndex": index.to_string()}}),
    )
}

async fn finished_uploading(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let (form, user) = match form_and_user(&app, &headers, body, true).await {
        Ok((f, Some(u))) => (f, u),
        Ok(_) => return unauthorized(),
        Err(r) => return r,
    };
    let seq_id = match sequence_id(&form) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut st = lock(&app.kv);
    let seq = match owned(&mut st, seq_id, user) {
        Ok(s) => s,
        Err(r) => return r,
    };
    // Idempotent: finishing twice keeps the first time.
    seq.finished_at.get_or_insert_with(Instant::now);
    let status = v1_status(phase(&app, seq));
    ok(json!({"sequence": {"id": seq_id.to_string(), "status": status}}))
}

async fn remove_sequence(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let (form, user) = match form_and_user(&app, &headers, body, true).await {
        Ok((f, Some(u))) => (f, u),
        Ok(_) => return unauthorized(),
        Err(r) => return r,
    };
    let seq_id = match sequence_id(&form) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut st = lock(&app.kv);
    match owned(&mut st, seq_id, user) {
        Ok(seq) => {
            seq.deleted = true;
            ok(json!({}))
        }
        Err(r) => r,
    }
}

async fn remove_photo(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let (form, user) = match form_and_user(&app, &headers, body, true).await {
        Ok((f, Some(u))) => (f, u),
        Ok(_) => return unauthorized(),
        Err(r) => return r,
    };
    let Some(photo_id) = form.get("photoId") else {
        return missing("photoId");
    };
    let Ok(photo_id) = photo_id.trim().parse::<u64>() else {
        return wrong_type("photoId");
    };
    let mut st = lock(&app.kv);
    let Some(seq) = st
        .sequences
        .iter_mut()
        .find(|s| !s.deleted && s.photos.iter().any(|p| p.id == photo_id))
    else {
        return out_of_range("photoId");
    };
    if seq.user != user {
        return not_allowed();
    }
    seq.photos.retain(|p| p.id != photo_id);
    ok(json!({}))
}

fn photo_v1(app: &App, s: &Sequence, p: &Photo) -> Value {
    let ph = phase(app, s);
    json!({
        "id": p.id.to_string(),
        "sequenceId": s.id.to_string(),
        "sequenceIndex": p.index.to_string(),
        "lat": p.lat.to_string(),
        "lng": p.lng.to_string(),
        "shotDate": p.shot_date,
        "dateAdded": datetime(p.date_added),
        "headers": p.heading.map(|h| h.to_string()),
        "projection": p.projection,
        "autoImgProcessingStatus": item_status(ph),
    })
}

async fn photo_list(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let (form, _) = match form_and_user(&app, &headers, body, false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let seq_id = match sequence_id(&form) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut st = lock(&app.kv);
    let Some(seq) = st.live(seq_id) else {
        return out_of_range("sequenceId");
    };
    let mut photos: Vec<&Photo> = seq.photos.iter().collect();
    photos.sort_by_key(|p| p.index);
    let list: Vec<Value> = photos.iter().map(|p| photo_v1(&app, seq, p)).collect();
    ok(json!({"photos": list}))
}

fn sequence_v1(app: &App, s: &Sequence) -> Value {
    json!({
        "id": s.id.to_string(),
        "userId": USERS[s.user].kartaview_id.to_string(),
        "username": USERS[s.user].username,
        "dateAdded": datetime(s.date_added),
        "photo_no": s.photos.len().to_string(),
        "status": v1_status(phase(app, s)),
        "uploadSource": s.upload_source,
        "platformName": s.platform_name,
        "deviceName": s.device_name,
        "address": "",
        "distance": "0",
    })
}

async fn details(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let (form, _) = match form_and_user(&app, &headers, body, false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(id) = form.get("id") else {
        return missing("id");
    };
    let Ok(id) = id.trim().parse::<u64>() else {
        return wrong_type("id");
    };
    let mut st = lock(&app.kv);
    let Some(seq) = st.live(id) else {
        return out_of_range("id");
    };
    let mut v = sequence_v1(&app, seq);
    let mut photos: Vec<&Photo> = seq.photos.iter().collect();
    photos.sort_by_key(|p| p.index);
    v["photos"] = Value::Array(photos.iter().map(|p| photo_v1(&app, seq, p)).collect());
    ok(v)
}

async fn my_list(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
    let (form, token_user) = match form_and_user(&app, &headers, body, false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let user = match form.get("username") {
        // An unknown username is an empty list, not an error.
        Some(name) => USERS.iter().position(|u| u.username == name),
        None => match token_user {
            Some(u) => Some(u),
            None => return missing("username"),
        },
    };
    let ipp: usize = form
        .get("ipp")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(100);
    let page: usize = form
        .get("page")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(1);
    let st = lock(&app.kv);
    let mut mine: Vec<&Sequence> = st
        .sequences
        .iter()
        .filter(|s| Some(s.user) == user && !s.deleted)
        .collect();
    mine.sort_by_key(|s| std::cmp::Reverse(s.id));
    let total = mine.len();
    let items: Vec<Value> = mine
        .into_iter()
        .skip((page - 1) * ipp)
        .take(ipp)
        .map(|s| sequence_v1(&app, s))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"status": {"apiCode": "600", "apiMessage": "The request has been processed without incidents",
                           "httpCode": 200, "httpMessage": "Success"},
                "currentPageItems": items, "totalFilteredItems": [total]}),
    )
}

fn v2(status: StatusCode, api_code: u16, message: &str, result: Option<Value>) -> Response {
    let mut body = json!({"status": {
        "apiCode": api_code,
        "apiMessage": message,
        "httpCode": status.as_u16(),
        "httpMessage": status.canonical_reason().unwrap_or(""),
    }});
    if let Some(r) = result {
        body["result"] = r;
    }
    json_response(status, &body)
}

/// v2 reads are public; a present but invalid `X-AUTH-TOKEN` is refused.
fn v2_auth(app: &AppRef, headers: &HeaderMap) -> Result<(), Response> {
    match headers.get("x-auth-token").and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(t) => match lock(&app.auth).access_user(&app.faults, Service::KartaView, t) {
            Some(_) => Ok(()),
            None => Err(v2(StatusCode::UNAUTHORIZED, 401, UNAUTHENTICATED, None)),
        },
    }
}

async fn sequence_v2(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = v2_auth(&app, &headers) {
        return r;
    }
    let not_found = || v2(StatusCode::NOT_FOUND, 404, "Sequence not found", None);
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    let mut st = lock(&app.kv);
    let Some(s) = st.live(id) else {
        return not_found();
    };
    let ph = phase(&app, s);
    let data = json!({
        "id": s.id.to_string(),
        "userId": USERS[s.user].kartaview_id.to_string(),
        "dateAdded": datetime(s.date_added),
        "status": v1_status(ph),
        "uploadStatus": if ph == Phase::Uploading { "UPLOADING" } else { "FINISHED" },
        "processingStatus": match ph {
            Phase::Uploading => "UPLOADING",
            Phase::Processing => "PROCESSING",
            Phase::Finished => "FINISHED",
        },
        "imageProcessingStatus": item_status(ph),
        "metadataStatus": item_status(ph),
        "qualityStatus": item_status(ph),
        "countActivePhotos": s.photos.len(),
        "uploadSource": s.upload_source,
        "platform": s.platform_name,
        "deviceName": s.device_name,
    });
    v2(
        StatusCode::OK,
        600,
        "The request has been processed without incidents",
        Some(json!({"data": data, "hasMoreData": false})),
    )
}

async fn photos_v2(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = v2_auth(&app, &headers) {
        return r;
    }
    let Some(seq_id) = q.get("sequenceId") else {
        return v2(
            StatusCode::BAD_REQUEST,
            610,
            " Missing required argument: sequenceId",
            None,
        );
    };
    let Ok(seq_id) = seq_id.parse::<u64>() else {
        return v2(
            StatusCode::BAD_REQUEST,
            611,
            " Wrong argument type: sequenceId",
            None,
        );
    };
    let page: usize = q
        .get("page")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(1);
    let per_page: usize = q
        .get("itemsPerPage")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(500);
    let mut st = lock(&app.kv);
    let Some(s) = st.live(seq_id) else {
        return v2(StatusCode::NOT_FOUND, 404, "Sequence not found", None);
    };
    let ph = phase(&app, s);
    let mut photos: Vec<&Photo> = s.photos.iter().collect();
    photos.sort_by_key(|p| p.index);
    let total = photos.len();
    let data: Vec<Value> = photos
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|p| {
            json!({
                "id": p.id.to_string(),
                "sequenceId": s.id.to_string(),
                "sequenceIndex": p.index,
                "lat": p.lat,
                "lng": p.lng,
                "shotDate": p.shot_date,
                "heading": p.heading,
                "projection": p.projection,
                "fieldOfView": p.field_of_view,
                "status": "active",
                "autoImgProcessingStatus": item_status(ph),
                "autoImgProcessingResult": if ph == Phase::Finished { "BLURRED" } else { "ORIGINAL" },
            })
        })
        .collect();
    v2(
        StatusCode::OK,
        600,
        "The request has been processed without incidents",
        Some(json!({"data": data, "hasMoreData": page * per_page < total})),
    )
}
/// A sequence's web page (`kartaview.org/details/<id>` on the real service, here under
/// the API base): what a "View on KartaView" link opens.
async fn details_page(State(app): State<AppRef>, Path(id): Path<String>) -> Response {
    use axum::response::{Html, IntoResponse};
    let snapshot = crate::state::SandboxState { app: app.clone() }.kartaview_sequence(&id);
    match snapshot.filter(|s| !s.deleted) {
        Some(s) => Html(crate::html::page(
            &format!("KartaView sequence {}", s.id),
            &format!(
                "<p id=\"kv-sequence\" data-sequence=\"{id}\">{n} photos · {status}</p>",
                id = crate::html::escape(&s.id),
                n = s.photos.len(),
                status = crate::html::escape(&s.status),
            ),
        ))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Html(crate::html::page(
                "KartaView",
                "<p>This sequence does not exist (or not any more).</p>",
            )),
        )
            .into_response(),
    }
}
