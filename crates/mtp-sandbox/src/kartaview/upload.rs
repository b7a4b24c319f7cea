//! The v1 write API: create a sequence, add photos and videos, finish uploading, remove.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use md5::{Digest as _, Md5};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::app::AppRef;
use crate::auth::USERS;
use crate::clock;
use crate::photo;
use crate::state::lock;

use super::state::{Photo, Sequence, owned, phase, v1_status};
use super::{
    datetime, form_and_user, missing, not_allowed, ok, opt_f64, out_of_range, parse_coordinate,
    sequence_id, sequence_index, unauthorized, v1, wrong_type,
};

const DUPLICATE: &str = " You are not allowed to add a duplicate entry (sequenceIndex)";

pub(super) async fn create_sequence(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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
    let processing_fails = std::mem::take(&mut st.fail_next);
    let dropped = std::mem::take(&mut st.drop_next);
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
        processing_fails,
        dropped,
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

pub(super) async fn upload_photo(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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

pub(super) async fn upload_video(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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

pub(super) async fn finished_uploading(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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
    seq.finished_at.get_or_insert_with(clock::now_ms);
    let status = v1_status(phase(&app, seq));
    ok(json!({"sequence": {"id": seq_id.to_string(), "status": status}}))
}

pub(super) async fn remove_sequence(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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

pub(super) async fn remove_photo(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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
