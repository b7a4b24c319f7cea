//! Upload sets: create, list, read, add a file (with GeoVisio's checks and rejections),
//! list files, complete and delete.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use md5::{Digest as _, Md5};
use serde_json::{Value, json};
use std::collections::HashMap;
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};

use crate::app::{App, AppRef, json_response};
use crate::auth::USERS;
use crate::body::{FormError, ParsedForm, read_all};
use crate::clock;
use crate::photo;
use crate::state::lock;

use super::dispatch::{mark_complete, track};
use super::stac::collection_summary;
use super::state::{Picture, PnxState, Rejection, SetFile, SetPhase, UploadSet, set_phase};
use super::{err, err_details, require_user, rfc3339, token_user, writer};

const SORT_METHODS: &[&str] = &["filename-asc", "filename-desc", "time-asc", "time-desc"];

pub(super) const VISIBILITIES: &[&str] = &["anyone", "owner-only", "logged-only"];

/// A JSON or form body as a map of JSON values.
pub(super) async fn object_body(
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
            // Kept by GeoVisio, used for nothing here.
            "user_agent" => {}
            // GeoVisio's create model ignores what it does not know (pydantic's default).
            _ => {}
        }
    }
    // GeoVisio's `UploadSetCreationParameter.validate`.
    let given = |k: &str| body.get(k).is_some_and(|v| !v.is_null());
    let set_true = |k: &str| body.get(k).and_then(as_bool) == Some(true);
    if set_true("no_split") && (given("split_distance") || given("split_time")) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "The `no_split` parameter is incompatible with specifying `split_distance` / `split_duration`",
        ));
    }
    if set_true("no_deduplication") && (given("duplicate_distance") || given("duplicate_rotation"))
    {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "The `no_deduplication` parameter is incompatible with specifying `duplicate_distance` / `duplicate_rotation`",
        ));
    }
    Ok(())
}

fn upload_set_json(app: &App, st: &PnxState, s: &UploadSet) -> Value {
    let phase = set_phase(app, s);
    let quarter = app.step(4);
    let accepted: Vec<&Picture> = st.pictures.iter().filter(|p| p.set_id == s.id).collect();
    // Prepared (or, after its retries, broken) a quarter of the processing delay after
    // upload.
    let done = |p: &&&Picture| clock::since(p.inserted) >= quarter;
    let prepared = accepted.iter().filter(done).filter(|p| !p.broken).count();
    let broken = accepted.iter().filter(done).filter(|p| p.broken).count();
    let rejected = s.files.iter().filter(|f| f.rejected.is_some()).count();
    let collections: Vec<Value> = if matches!(phase, SetPhase::Dispatched | SetPhase::Ready) {
        s.collection_ids
            .iter()
            .filter_map(|id| st.collections.iter().find(|c| &c.id == id && !c.deleted))
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
            "preparing": accepted.len() - prepared - broken,
            "broken": broken,
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

pub(super) async fn create_upload_set(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // As GeoVisio: who is asking first (its login decorator), then the body, which must be
    // JSON here (`request.is_json`): a form is a 415.
    let user = match writer(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| m == "application/json" || m.ends_with("+json"));
    if !is_json {
        return err(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Parameter for creating an UploadSet should be a valid JSON",
        );
    }
    let params = match object_body(&headers, body).await {
        Ok(p) => p,
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

/// `GET /api/users/me/upload_sets`: as GeoVisio 2.15.1, only the sets not yet dispatched
/// unless `filter` says otherwise (`dispatched = TRUE|FALSE`, the only filters emulated),
/// oldest first, at most `limit` (default 100, at most 1000).
pub(super) async fn my_upload_sets(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let u = match require_user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let limit = match q.get("limit").map(|l| l.trim().parse::<usize>()) {
        None => 100,
        Some(Ok(l)) if l <= 1000 => l,
        Some(_) => {
            return err_details(
                StatusCode::BAD_REQUEST,
                "Impossible to parse parameters",
                json!([{"fields": ["limit"], "error": "Input should be less than or equal to 1000"}]),
            );
        }
    };
    let dispatched = match q
        .get("filter")
        .map(|f| f.to_ascii_lowercase().replace(' ', ""))
    {
        None => false,
        Some(f) if f == "dispatched=true" => true,
        Some(f) if f == "dispatched=false" => false,
        Some(_) => {
            return err_details(
                StatusCode::BAD_REQUEST,
                "Impossible to parse parameters",
                json!([{"fields": ["filter"], "error": "the emulator knows only dispatched = TRUE|FALSE"}]),
            );
        }
    };
    let st = lock(&app.pnx);
    let sets: Vec<Value> = st
        .sets
        .iter()
        .filter(|s| {
            s.user == u
                && !s.deleted
                && matches!(set_phase(&app, s), SetPhase::Dispatched | SetPhase::Ready)
                    == dispatched
        })
        .take(limit)
        .map(|s| upload_set_json(&app, &st, s))
        .collect();
    json_response(StatusCode::OK, &json!({"upload_sets": sets}))
}

/// The index of the live upload set `id` that `user` may `action` (as GeoVisio words it),
/// or the 404 / 403 reply.
fn owned_set(st: &PnxState, id: &str, user: usize, action: &str) -> Result<usize, Response> {
    let Some(i) = st.sets.iter().position(|s| s.id == id && !s.deleted) else {
        return Err(err(StatusCode::NOT_FOUND, "UploadSet doesn't exist"));
    };
    if st.sets[i].user != user {
        return Err(err(
            StatusCode::FORBIDDEN,
            &format!("You're not authorized to {action} this upload set"),
        ));
    }
    Ok(i)
}

fn live_set<'a>(st: &'a PnxState, id: &str) -> Result<&'a UploadSet, Response> {
    st.sets
        .iter()
        .find(|s| s.id == id && !s.deleted)
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "UploadSet doesn't exist"))
}

pub(super) async fn get_upload_set(
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

pub(super) async fn add_file(
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
    let set_idx = match owned_set(&lock(&app.pnx), &id, user, "add picture to") {
        Ok(i) => i,
        Err(r) => return r,
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
                    reason: reason.into(),
                    severity: "error".into(),
                    message: msg.to_owned(),
                }),
            },
        );
        // GeoVisio answers a taken picture id with 409, the others with 400.
        let status = if reason == "id_conflict" {
            StatusCode::CONFLICT
        } else {
            StatusCode::BAD_REQUEST
        };
        err_details(status, msg, details)
    };
    // GeoVisio keeps one file per name in a set (its `files` rows are unique on the set and
    // the name): other bytes under a name that already has a picture are refused (409, not
    // tracked), and so is a file that would be tracked as rejected under it. A name whose
    // file was rejected may be sent again: its row is replaced ([`track`]).
    let name_taken = |st: &PnxState| {
        st.sets[set_idx]
            .files
            .iter()
            .find(|f| f.file_name == file_name)
            .and_then(|f| f.picture_id.clone())
    };
    let same_name = |existing: String| {
        json_response(
            StatusCode::CONFLICT,
            &json!({"message": "A different picture with the same name has already been added to this uploadset",
                    "existing_item": {"id": existing}, "status_code": 409}),
        )
    };
    let lower = file_name.to_ascii_lowercase();
    if !photo::is_jpeg(&file.data) || !(lower.ends_with(".jpg") || lower.ends_with(".jpeg")) {
        if let Some(existing) = name_taken(&st) {
            return same_name(existing);
        }
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
    if let Some(existing) = name_taken(&st) {
        return same_name(existing);
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
                // A rejection stored with its message is an `error` to GeoVisio 2.15.1.
                rejected: Some(Rejection {
                    reason: "file_duplicate".into(),
                    severity: "error".into(),
                    message: "The same picture has already been sent in a past upload".into(),
                }),
            },
        );
        // GeoVisio 2.15.1 also says where the bytes are: the picture and its upload set.
        return json_response(
            StatusCode::CONFLICT,
            &json!({"message": "The same picture has already been sent in a past upload",
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
    // GeoVisio's reader takes 0, 0 ("null island") for broken coordinates.
    let placed = meta.position().filter(|&p| p != (0.0, 0.0));
    let mut missing = Vec::new();
    if placed.is_none() {
        missing.push("location");
    }
    if meta.captured_at.is_none() {
        missing.push("datetime");
    }
    if !missing.is_empty() {
        let msg = if placed.is_none() {
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
                    "A picture with the same ID already exists",
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
    let broken = st.break_next > 0 || st.break_named.contains(&file_name);
    st.break_next = st.break_next.saturating_sub(1);
    st.pictures.push(Picture {
        id: picture_id.clone(),
        set_id: id.clone(),
        user,
        file_name: file_name.clone(),
        bytes: file.data.clone(),
        md5: md5.clone(),
        meta,
        inserted: clock::now_ms(),
        collection_id: None,
        broken,
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

pub(super) async fn list_files(
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

pub(super) async fn complete(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match writer(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut st = lock(&app.pnx);
    let i = match owned_set(&st, &id, user, "complete") {
        Ok(i) => i,
        Err(r) => return r,
    };
    mark_complete(&mut st, i);
    let v = upload_set_json(&app, &st, &st.sets[i]);
    json_response(StatusCode::OK, &v)
}

/// `DELETE /api/upload_sets/{id}` → 204; its pictures and collections go with it. Needs a
/// token even where anonymous uploads are allowed.
pub(super) async fn delete_upload_set(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let user = match require_user(&app, &headers) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut st = lock(&app.pnx);
    let i = match owned_set(&st, &id, user, "delete") {
        Ok(i) => i,
        Err(r) => return r,
    };
    st.sets[i].deleted = true;
    st.pictures.retain(|p| p.set_id != id);
    st.collections.retain(|c| c.set_id != id);
    StatusCode::NO_CONTENT.into_response()
}

/// An EXIF rational as exiv2 (GeoVisio's writer) reads it: only `"n/d"`. A decimal such as
/// `"45.12"` or `"45"` becomes an empty tag on the real server, so it is ignored here too.
fn exif_rational(value: &str) -> Option<f64> {
    let (n, d) = value.trim().split_once('/')?;
    let (n, d) = (n.trim().parse::<f64>().ok()?, d.trim().parse::<f64>().ok()?);
    (d != 0.0).then(|| n / d).filter(|v| v.is_finite())
}
