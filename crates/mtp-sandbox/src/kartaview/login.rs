//! `client_auth`: an OSM access token becomes a KartaView token.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppRef;
use crate::auth::{Service, TokenCheck, TokenKind, USERS};
use crate::faults::OsmAppRefusal;
use crate::state::lock;

use super::{form_and_user, missing, ok, v1};

pub(super) async fn client_auth(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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
    let Some(osm_app) = crate::osm::app_with_secret(secret) else {
        return v1(
            StatusCode::BAD_REQUEST,
            "690",
            " Unexpected error: the OSM application is not accepted",
            None,
        );
    };
    let checked = match lock(&app.auth).check(&app.faults, Service::Osm, request_token) {
        // The secret names the OSM app the token must come from (upload-scripts sends its
        // app's secret with its app's token): a token of another app does not check out.
        TokenCheck::Valid(t) if t.client_id != osm_app.id => TokenCheck::Unknown,
        checked => checked,
    };
    if let (TokenCheck::Valid(t), Some(refusal)) =
        (&checked, app.faults.kartaview_osm_app_refusal())
        && t.client_id != crate::KARTAVIEW_OSM_CLIENT_ID
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
            OsmAppRefusal::Html502 => (
                StatusCode::BAD_GATEWAY,
                [(axum::http::header::CONTENT_TYPE, "text/html")],
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
            )
                .into_response(),
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
