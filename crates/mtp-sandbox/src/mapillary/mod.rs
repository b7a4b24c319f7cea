//! Mapillary: the authorize page, the Graph API (token, me, finish_upload, read-back) and the
//! resumable upload host, under `/mapillary`.

mod activity;
mod graph;
mod oauth;
mod processing;
mod search;
mod upload;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use crate::app::{AppRef, auth_credential, ep, json_response};
use crate::auth::{Service, TokenCheck};
use crate::state::lock;

pub(crate) use activity::knobs;
pub(crate) use processing::{MlyState, UploadFile};

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
            ep(app, "mapillary.images", get(search::images)),
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
        .route(
            "/graph/sandbox/world/{image_id}/thumb",
            ep(app, "mapillary.world_thumb", get(search::world_thumb)),
        )
        .route(
            "/graph/graphql",
            ep(app, "mapillary.graphql", get(activity::graphql)),
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

/// A Graph API error, in the Graph API's own shape: `{"error":{"message","type","code",
/// "fbtrace_id"}}` (mapillary_tools reads `error.message` from the Graph API and `debug_info`
/// only from the upload host, which answers as [`Refusal::upload_host`] does).
pub(crate) fn graph_error(status: StatusCode, message: &str, kind: &str, code: u32) -> Response {
    json_response(
        status,
        &json!({
            "error": {"message": message, "type": kind, "code": code,
                      "fbtrace_id": crate::ids::base62(11)},
        }),
    )
}

/// Whether a request to this endpoint counts against the app's Graph API rate limit: the
/// Graph API's calls, not the upload host, the sign-in pages or the image files.
pub(crate) fn counts_against_rate_limit(endpoint: &str) -> bool {
    matches!(
        endpoint,
        "mapillary.token"
            | "mapillary.me"
            | "mapillary.node"
            | "mapillary.images"
            | "mapillary.image_ids"
            | "mapillary.finish_upload"
            | "mapillary.logging"
            | "mapillary.cluster"
            | "mapillary.graphql"
    )
}

/// Over the app's Graph API rate limit: HTTP 429 (the docs say to back off on it) with the
/// Graph API's "application request limit" error.
pub(crate) fn rate_limited() -> Response {
    graph_error(
        StatusCode::TOO_MANY_REQUESTS,
        "(#4) Application request limit reached",
        "OAuthException",
        4,
    )
}

/// A refused token, answered by the Graph API or by the upload host, each in its shape.
pub(crate) struct Refusal {
    status: StatusCode,
    message: &'static str,
    code: u32,
}

impl Refusal {
    /// As the Graph API answers: an `OAuthException` with its code.
    pub(crate) fn graph(self) -> Response {
        graph_error(self.status, self.message, "OAuthException", self.code)
    }

    /// As the upload host answers: `{"debug_info":{"retriable":false,"type":
    /// "NotAuthorizedError","message"}}`.
    pub(crate) fn upload_host(self) -> Response {
        json_response(
            self.status,
            &json!({"debug_info": {"retriable": false, "type": "NotAuthorizedError",
                                   "message": self.message}}),
        )
    }
}

/// A 400 for bad parameters.
pub(crate) fn bad_request(message: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        message,
        "GraphMethodException",
        100,
    )
}

/// The permissions the sandbox Mapillary app is registered with (the Trek View guide has
/// app owners tick user read/write and public write/upload): what a token gets when the
/// authorize request carries no `scope`.
pub(crate) const APP_SCOPES: [&str; 3] = ["read", "write", "upload"];

/// The scopes of an authorize request: none = every scope the app is registered with;
/// otherwise a subset of them, joined by spaces, commas or `+` (the separator is
/// undocumented). `Err` = `invalid_scope`, as the real authorize page redirects.
pub(crate) fn requested_scopes(scope: Option<&str>) -> Result<Vec<String>, String> {
    let asked: Vec<String> = scope
        .unwrap_or_default()
        .split([' ', ',', '+'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if asked.is_empty() {
        return Ok(APP_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    }
    match asked.iter().find(|s| !APP_SCOPES.contains(&s.as_str())) {
        Some(bad) => Err(format!(
            "The scope {bad} is not among the scopes this application is registered with ({})",
            APP_SCOPES.join(", ")
        )),
        None => Ok(asked),
    }
}

/// Refuses a token that lacks `upload` (the upload host's POST and `finish_upload`), as the
/// service does: the token itself is fine (`/me` answers), its permission is not.
pub(crate) fn may_upload(app: &AppRef, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(token) = auth_credential(headers, &["OAuth", "Bearer"]) else {
        return Ok(());
    };
    let st = lock(&app.mly);
    match st.grants.get(token) {
        Some(scopes) if !scopes.iter().any(|s| s == "upload") => Err(Refusal {
            status: StatusCode::FORBIDDEN,
            message: "(#200) Permission denied: this access token was not granted the upload permission",
            code: 200,
        }),
        _ => Ok(()),
    }
}

const EXPIRED: &str = "Error validating access token: Session has expired.";

/// The user behind `Authorization: OAuth <token>` (or `Bearer`, or `?access_token=`), for
/// the Graph API.
pub(crate) fn user(
    app: &AppRef,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<usize, Response> {
    token_user(app, headers, query_token).map_err(Refusal::graph)
}

/// The user behind a token, or why the token is refused.
pub(crate) fn token_user(
    app: &AppRef,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<usize, Refusal> {
    let Some(token) = auth_credential(headers, &["OAuth", "Bearer"]).or(query_token) else {
        return Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            message: "An active access token must be used to query information about the current user.",
            code: 2500,
        });
    };
    {
        let st = lock(&app.mly);
        if st.revoked.contains(token) {
            return Err(REVOKED);
        }
        if st.expired.contains(token) {
            return Err(Refusal {
                status: StatusCode::UNAUTHORIZED,
                message: EXPIRED,
                code: 190,
            });
        }
    }
    match lock(&app.auth).check(&app.faults, Service::Mapillary, token) {
        TokenCheck::Valid(t) if t.kind == crate::auth::TokenKind::Access => Ok(t.user),
        TokenCheck::Expired => Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            message: EXPIRED,
            code: 190,
        }),
        TokenCheck::Valid(_) | TokenCheck::Unknown => Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            message: "Invalid OAuth access token - Cannot parse access token",
            code: 190,
        }),
    }
}

/// A token that a refresh replaced (the strict service revokes the old one at once).
const REVOKED: Refusal = Refusal {
    status: StatusCode::UNAUTHORIZED,
    message: "Error validating access token: The session has been invalidated because a newer access token was issued.",
    code: 190,
};

impl crate::SandboxState {
    /// Makes one Mapillary access token expire now (its refresh token still works), unlike
    /// [`crate::Faults::expire_tokens`], which expires every service's tokens.
    pub fn expire_mapillary_token(&self, token: &str) {
        lock(&self.app.mly).expired.insert(token.to_owned());
        self.app.touch();
    }

    /// Issues a Mapillary access token for sandbox account `user` with only `scopes`
    /// (`read`, `write`, `upload`), as a sign-in that asked for them would.
    pub fn issue_mapillary_token_with_scopes(&self, user: usize, scopes: &[&str]) -> String {
        let token = self.issue_token(Service::Mapillary, user);
        lock(&self.app.mly).grants.insert(
            token.clone(),
            scopes.iter().map(|s| (*s).to_owned()).collect(),
        );
        self.app.touch();
        token
    }
}
