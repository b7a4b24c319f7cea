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
//!
//! `/1.0/sequence/remove/` and `/1.0/photo/remove/` (owner only: 403 `apiCode` 618 for
//! anyone else) answer `apiCode` 600; what they remove leaves every read-back (v1 details
//! and photo list, my-list, v2 sequence and photos, the details page), and an id that is
//! unknown or already removed answers 400 `apiCode` 612 (argument out of range), as every
//! call does for an unknown `sequenceId`.

mod login;
mod nearby;
mod read;
mod state;
mod upload;
mod user;

pub(crate) use state::KvState;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::app::{AppRef, ep, json_response};
use crate::auth::Service;
use crate::body::{FormError, ParsedForm};
use crate::state::lock;

use login::client_auth;
use read::{details, details_page, my_list, photo_list, photos_v2, sequence_v2};
use upload::{
    create_sequence, finished_uploading, remove_photo, remove_sequence, upload_photo, upload_video,
};
use user::user_details;

const UNAUTHENTICATED: &str = " You have to be authenticated in order to access this method";

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
        .route(
            "/1.0/user/details/",
            ep(app, "kartaview.user_details", post(user_details)),
        )
        .route("/details", ep(app, "kartaview.details", post(details)))
        .route("/details/{id}", get(details_page))
        .route("/my-list", ep(app, "kartaview.my_list", post(my_list)))
        .route(
            "/2.0/sequence/{id}",
            ep(app, "kartaview.sequence_v2", get(sequence_v2)),
        )
        .route(
            "/1.0/list/nearby-photos/",
            ep(app, "kartaview.nearby_photos", post(nearby::nearby_photos)),
        )
        .route(
            "/storage1/files/photo/{size}/{file}",
            ep(app, "kartaview.photo_file", get(nearby::photo_file)),
        )
        .route(
            "/2.0/photo/",
            ep(app, "kartaview.photos_v2", get(photos_v2)),
        )
}

fn datetime(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

/// When a photo of the sandbox's world was taken, as KartaView writes it.
fn world_shot_date(w: &crate::world::WorldImage) -> String {
    OffsetDateTime::from_unix_timestamp(w.captured_at_ms.div_euclid(1000))
        .map(datetime)
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
