//! The resumable upload host: `GET /mapillary/upload/{key}` → `{"offset":n}`;
//! `POST /mapillary/upload/{key}` with `Offset` and `X-Entity-Name`, body = bytes `[n, EOF)`
//! (streamed, chunked or not) → `{"h":"<handle>"}`.
//!
//! Bytes are appended as they arrive, so a connection cut mid-body keeps what was received
//! and the next `GET` offset resumes from there.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::StreamExt as _;
use serde_json::json;

use crate::app::{AppRef, json_response};
use crate::ids;
use crate::state::lock;

fn upload_error(status: StatusCode, kind: &str, message: &str, retriable: bool) -> Response {
    json_response(
        status,
        &json!({"debug_info": {"retriable": retriable, "type": kind, "message": message}}),
    )
}

fn offset_invalid() -> Response {
    upload_error(
        StatusCode::PRECONDITION_FAILED,
        "OffsetInvalidError",
        "Request starting offset is invalid",
        true,
    )
}

pub(super) async fn offset(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Response {
    let user = match super::token_user(&app, &headers, None) {
        Ok(u) => u,
        Err(refusal) => return refusal.upload_host(),
    };
    let len = {
        let mut st = lock(&app.mly);
        st.expire_unfinished(user, &key);
        st.files.get(&(user, key)).map_or(0, |f| f.data.len())
    };
    json_response(StatusCode::OK, &json!({"offset": len}))
}

pub(super) async fn upload(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(key): Path<String>,
    body: Body,
) -> Response {
    let user = match super::token_user(&app, &headers, None) {
        Ok(u) => u,
        Err(refusal) => return refusal.upload_host(),
    };
    if let Err(refusal) = super::may_upload(&app, &headers) {
        return refusal.upload_host();
    }
    let Some(offset) = headers
        .get("offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return upload_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestError",
            "Missing or invalid Offset header",
            false,
        );
    };
    match headers.get("x-entity-name").and_then(|v| v.to_str().ok()) {
        Some(name) if name == key => {}
        Some(name) => {
            return upload_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestError",
                &format!("X-Entity-Name {name} does not match the upload key {key}"),
                false,
            );
        }
        None => {
            return upload_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestError",
                "Missing X-Entity-Name header",
                false,
            );
        }
    }
    let current = {
        let mut st = lock(&app.mly);
        st.expire_unfinished(user, &key);
        st.files
            .get(&(user, key.clone()))
            .map_or(0, |f| f.data.len() as u64)
    };
    if current != offset {
        return offset_invalid();
    }

    let mut pos = offset;
    let mut counted = false;
    let mut stream = body.into_data_stream();
    while let Some(next) = stream.next().await {
        let chunk = match next {
            Ok(c) => c,
            Err(_) => {
                // The client went away (or a fault cut it): keep what arrived.
                return upload_error(
                    StatusCode::BAD_REQUEST,
                    "ProcessingFailedError",
                    "The request body was interrupted",
                    true,
                );
            }
        };
        if chunk.is_empty() {
            continue;
        }
        let mut st = lock(&app.mly);
        let now = st.now();
        let f = st.file_mut(user, &key);
        if f.data.len() as u64 != pos {
            // Another request for the same key wrote in between.
            return offset_invalid();
        }
        f.data.extend_from_slice(&chunk);
        f.received_at = Some(now);
        if !counted {
            f.posts += 1;
            counted = true;
        }
        pos += chunk.len() as u64;
        drop(st);
        // Saved as it arrives: a sandbox that stops mid-body resumes from here.
        app.touch();
    }

    let mut st = lock(&app.mly);
    let now = st.now();
    let expired = match st.files.get(&(user, key.clone())) {
        Some(f) if !f.data.is_empty() => st.handle_expired(f),
        _ => {
            return upload_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestError",
                "Empty upload",
                false,
            );
        }
    };
    let Some(f) = st.files.get_mut(&(user, key)) else {
        return upload_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestError",
            "Empty upload",
            false,
        );
    };
    // A complete key POSTed again (an empty body) gets a current handle: the same one
    // while it is valid, a new one once it expired (the bytes are kept).
    if expired {
        f.handle = Some(ids::base62(40));
        f.handle_at = Some(now);
    }
    let handle = f.handle.clone().unwrap_or_default();
    json_response(StatusCode::OK, &json!({"h": handle}))
}
