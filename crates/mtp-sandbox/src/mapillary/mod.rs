//! Mapillary: the authorize page, the Graph API (token, me, finish_upload, read-back) and the
//! resumable upload host, under `/mapillary`.

mod graph;
mod oauth;
mod processing;
mod upload;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use crate::app::{AppRef, auth_credential, ep, json_response};
use crate::auth::{Service, TokenCheck};
use crate::state::lock;

pub(crate) use processing::MlyState;

pub(crate) fn router(app: &AppRef) -> Router<AppRef> {
    Router::new()
        .route(
            "/connect",
            ep(app, "mapillary.authorize", get(oauth::authorize)),
        )
        .route(
            "/connect/decision",
            ep(app, "mapillary.authorize_decision", post(oauth::decision)),
        )
        .route(
            "/graph/token",
            ep(app, "mapillary.token", post(oauth::token)),
        )
        .route("/graph/me", ep(app, "mapillary.me", get(graph::me)))
        .route(
            "/graph/finish_upload",
            ep(app, "mapillary.finish_upload", post(graph::finish_upload)),
        )
        .route(
            "/graph/logging",
            ep(app, "mapillary.logging", post(graph::logging)),
        )
        .route(
            "/graph/images",
            ep(app, "mapillary.images", get(graph::images)),
        )
        .route(
            "/graph/image_ids",
            ep(app, "mapillary.image_ids", get(graph::image_ids)),
        )
        .route(
            "/graph/sandbox/clusters/{cluster_id}",
            ep(app, "mapillary.cluster", get(graph::cluster)),
        )
        .route(
            "/graph/sandbox/images/{image_id}/original",
            ep(app, "mapillary.image_file", get(graph::image_file)),
        )
        .route("/graph/{id}", ep(app, "mapillary.node", get(graph::node)))
        .route(
            "/upload/{key}",
            ep(app, "mapillary.offset", get(upload::offset)).merge(ep(
                app,
                "mapillary.upload",
                post(upload::upload),
            )),
        )
}

/// A Graph API error: `{"error":{"message","type","code",…}}`. The body also carries the
/// upload host's `debug_info` shape so that either parser finds the message.
pub(crate) fn graph_error(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: u32,
    debug_type: &str,
) -> Response {
    json_response(
        status,
        &json!({
            "error": {"message": message, "type": kind, "code": code,
                      "fbtrace_id": crate::ids::base62(11)},
            "debug_info": {"retriable": false, "type": debug_type, "message": message},
        }),
    )
}

/// A 400 for bad parameters.
pub(crate) fn bad_request(message: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        message,
        "GraphMethodException",
        100,
        "InvalidRequestError",
    )
}

/// The user behind `Authorization: OAuth <token>` (or `Bearer`, or `?access_token=`).
pub(crate) fn user(
    app: &AppRef,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<usize, Response> {
    let Some(token) = auth_credential(headers, &["OAuth", "Bearer"]).or(query_token) else {
        return Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "An active access token must be used to query information about the current user.",
            "OAuthException",
            2500,
            "NotAuthorizedError",
        ));
    };
    match lock(&app.auth).check(&app.faults, Service::Mapillary, token) {
        TokenCheck::Valid(t) if t.kind == crate::auth::TokenKind::Access => Ok(t.user),
        TokenCheck::Expired => Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "Error validating access token: Session has expired.",
            "OAuthException",
            190,
            "NotAuthorizedError",
        )),
        TokenCheck::Valid(_) | TokenCheck::Unknown => Err(graph_error(
            StatusCode::UNAUTHORIZED,
            "Invalid OAuth access token - Cannot parse access token",
            "OAuthException",
            190,
            "NotAuthorizedError",
        )),
    }
}
