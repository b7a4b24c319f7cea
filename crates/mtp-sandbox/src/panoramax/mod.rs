//! Panoramax (GeoVisio 2.15) under `/panoramax/api`: configuration, tokens (including the
//! generate → claim flow), upload sets with their files, the STAC read-back, and editing
//! and deleting collections and upload sets (PROTOCOLS §6).
//!
//! Timeline of an upload set, once completed (automatically when accepted + tracked-rejected
//! files reach `estimated_nb_files`, or by `POST …/complete`): `dispatched` after half of
//! `processing_delay` (the pictures are sorted, deduplicated and split into collections), then
//! `ready` after all of it. A file added to a completed set reopens it. Pictures count as
//! `prepared` a quarter of `processing_delay` after upload. Anonymous uploads (if enabled)
//! belong to the first sandbox account.

mod account;
mod dispatch;
mod edit;
mod search;
mod stac;
mod state;
mod upload;
mod user_collection;

pub(crate) use stac::viewer;
pub(crate) use state::PnxState;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::app::{AppRef, auth_credential, ep, json_response};
use crate::auth::PanoramaxAuthError;
use crate::state::lock;

use account::{
    claim_decision, claim_page, configuration, create_token, generate_token, get_token,
    list_tokens, me, root, tos_accept, tos_page,
};
use edit::{delete_collection, patch_collection};
use search::{collections, search};
use stac::{collection, geovisio_status, items, picture_file};
use upload::{
    add_file, complete, create_upload_set, delete_upload_set, get_upload_set, list_files,
    my_upload_sets,
};
use user_collection::{my_collection, user_collection};

pub(crate) fn router(app: &AppRef) -> Router<AppRef> {
    Router::new()
        .route("/", get(viewer))
        .route("/tos-validation", get(tos_page).post(tos_accept))
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
                "panoramax.upload_set_delete",
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
            ep(app, "panoramax.collection", get(collection))
                .merge(ep(
                    app,
                    "panoramax.collection_patch",
                    axum::routing::patch(patch_collection),
                ))
                .merge(ep(
                    app,
                    "panoramax.collection_delete",
                    axum::routing::delete(delete_collection),
                )),
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
        .route(
            "/api/users/me/collection",
            ep(app, "panoramax.my_collection", get(my_collection)),
        )
        .route(
            "/api/users/{id}/collection",
            ep(app, "panoramax.user_collection", get(user_collection)),
        )
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
    // As GeoVisio says it: always "Token not valid", the reason in `details.error`.
    let refused =
        |status, why: &str| err_details(status, "Token not valid", json!({ "error": why }));
    match lock(&app.auth).panoramax_user(&app.faults, jwt) {
        Ok(u) => Ok(Some(u)),
        Err(PanoramaxAuthError::Invalid) => Err(refused(
            StatusCode::UNAUTHORIZED,
            "JWT token signature does not match",
        )),
        Err(PanoramaxAuthError::Unclaimed) => Err(refused(
            StatusCode::FORBIDDEN,
            "Token not yet claimed, this token cannot be used yet. Either claim this token or generate a new one",
        )),
        Err(PanoramaxAuthError::Gone) => Err(refused(
            StatusCode::FORBIDDEN,
            "Token does not exist anymore",
        )),
    }
}

fn require_user(app: &AppRef, headers: &HeaderMap) -> Result<usize, Response> {
    token_user(app, headers)?
        .ok_or_else(|| err(StatusCode::UNAUTHORIZED, "Authentication is mandatory"))
}

/// Writers: a token, or (if enabled) anonymous on the first account. As GeoVisio's write
/// endpoints: refused while the instance is read only (its `API_READ_ONLY`), and to an
/// account that has not accepted the terms of service where the instance asks for that
/// (`API_ENFORCE_TOS_ACCEPTANCE`), both with a 401 that is not about the token.
fn writer(app: &AppRef, headers: &HeaderMap) -> Result<usize, Response> {
    if app.faults.panoramax_is_read_only() {
        return Err(err(
            StatusCode::UNAUTHORIZED,
            "The instance is read only for the moment, no modification are authorized",
        ));
    }
    let user = match token_user(app, headers)? {
        Some(u) => u,
        None if app.cfg.panoramax_anonymous_uploads => 0,
        None => return Err(err(StatusCode::UNAUTHORIZED, "Authentication is mandatory")),
    };
    if app.faults.panoramax_tos_enforced() && !lock(&app.pnx).tos_accepted.contains(&user) {
        let page = app.url("/panoramax/tos-validation");
        return Err(err_details(
            StatusCode::UNAUTHORIZED,
            &format!(
                "You need to accept the terms of service before uploading any pictures. You can do so by validating them here: {page}"
            ),
            json!({ "validation_page": page }),
        ));
    }
    Ok(user)
}
