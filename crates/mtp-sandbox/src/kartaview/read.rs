//! Read-back: the v1 `photo-list`, `details` and `my-list`, the v2 sequence and photo
//! reads, and a sequence's web page.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::app::{App, AppRef, json_response};
use crate::auth::{Service, USERS};
use crate::state::lock;

use super::state::{Phase, Photo, Sequence, item_status, phase, v1_status};
use super::{
    UNAUTHENTICATED, datetime, form_and_user, missing, ok, out_of_range, sequence_id,
    world_shot_date, wrong_type,
};
use crate::world::WorldSequence;

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

pub(super) async fn photo_list(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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

pub(super) async fn details(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
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

pub(super) async fn my_list(State(app): State<AppRef>, headers: HeaderMap, body: Body) -> Response {
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
    if st.my_list_oldest_first {
        mine.sort_by_key(|s| s.id);
    } else {
        mine.sort_by_key(|s| std::cmp::Reverse(s.id));
    }
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

pub(super) async fn sequence_v2(
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
            Phase::Failed => "FAILED",
        },
        "imageProcessingStatus": item_status(ph),
        "metadataStatus": item_status(ph),
        "qualityStatus": item_status(ph),
        "countActivePhotos": if ph == Phase::Finished {
            s.photos.len().saturating_sub(s.dropped)
        } else {
            s.photos.len()
        },
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

pub(super) async fn photos_v2(
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
    let (data, total) = match st.live(seq_id) {
        Some(s) => uploaded_photos_v2(&app, s, page, per_page),
        None => match app.world.kartaview_sequence(seq_id) {
            Some(seq) => world_photos_v2(&app, seq, page, per_page),
            None => return v2(StatusCode::NOT_FOUND, 404, "Sequence not found", None),
        },
    };
    v2(
        StatusCode::OK,
        600,
        "The request has been processed without incidents",
        Some(json!({"data": data, "hasMoreData": page * per_page < total})),
    )
}

/// One page of an uploaded sequence's photos, and how many it has.
fn uploaded_photos_v2(
    app: &App,
    s: &Sequence,
    page: usize,
    per_page: usize,
) -> (Vec<Value>, usize) {
    let ph = phase(app, s);
    let mut photos: Vec<&Photo> = s.photos.iter().collect();
    photos.sort_by_key(|p| p.index);
    let total = photos.len();
    let data = photos
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
    (data, total)
}

/// One page of a sequence of the sandbox's world (processed long ago), and how many it has.
fn world_photos_v2(
    app: &App,
    seq: &WorldSequence,
    page: usize,
    per_page: usize,
) -> (Vec<Value>, usize) {
    let images = app.world.sequence_images(seq);
    let data = images
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|w| {
            let shot = world_shot_date(w);
            json!({
                "id": w.kartaview_id().to_string(),
                "sequenceId": seq.kartaview_id().to_string(),
                "sequenceIndex": w.index,
                "lat": w.lat,
                "lng": w.lon,
                "shotDate": shot,
                "heading": w.heading,
                "projection": if seq.is_pano { "SPHERE" } else { "PLANE" },
                "fieldOfView": if seq.is_pano { Some(360) } else { None },
                "status": "active",
                "autoImgProcessingStatus": "FINISHED",
                "autoImgProcessingResult": "BLURRED",
            })
        })
        .collect();
    (data, images.len())
}

/// A sequence's web page (`kartaview.org/details/<id>` on the real service, here under
/// the API base): what a "View on KartaView" link opens.
pub(super) async fn details_page(State(app): State<AppRef>, Path(id): Path<String>) -> Response {
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
