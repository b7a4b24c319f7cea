//! The sandbox control plane under `/sandbox` (not an emulated service; never faulted):
//!
//! | Call | Does |
//! |---|---|
//! | `GET /sandbox/urls` | the service URLs (JSON) |
//! | `GET /sandbox/requests`, `DELETE /sandbox/requests` | the recorded requests / clear them |
//! | `GET /sandbox/state` | everything the emulators hold (JSON; file bytes left out) |
//! | `GET /sandbox/faults`, `POST /sandbox/faults` (body = spec), `DELETE /sandbox/faults` | fault rules |
//! | `POST /sandbox/tokens?service=mapillary&user=0` | an access token as if the OAuth flow had run |
//! | `POST /sandbox/mapillary` (JSON) | Mapillary knobs: `graphql_refuses_user_tokens`, `fail_next_cluster` `{stage, error_code}`, `add_activity`, `split_next_cluster`, `drop_from_next_cluster`, `advance_clock_seconds`, `handle_max_age_seconds`, `graph_requests_per_minute` |
//! | `GET /sandbox/mtpw_import`, `PUT /sandbox/mtpw_import?mode=v3_unreachable\|v3_refuses\|fixed` | how Map the Paths Web's import answers a Mapillary link |

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use crate::app::{AppRef, json_response};
use crate::auth::{Service, USERS};
use crate::body::read_all;
use crate::faults::Faults;
use crate::server::SandboxUrls;
use crate::state::SandboxState;

pub(crate) fn router() -> Router<AppRef> {
    Router::new()
        .route("/urls", get(urls))
        .route("/requests", get(requests).delete(clear_requests))
        .route("/state", get(state))
        .route(
            "/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/tokens", post(token))
        .route("/mapillary", post(crate::mapillary::knobs))
        .route("/mtpw_import", get(mtpw_import).put(set_mtpw_import))
}

async fn urls(State(app): State<AppRef>) -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::to_value(SandboxUrls::new(&app.origin)).unwrap_or_default(),
    )
}

async fn mtpw_import(State(app): State<AppRef>) -> Response {
    let mode = crate::state::lock(&app.mtpw).import_mode();
    json_response(StatusCode::OK, &json!({"mode": mode.as_str()}))
}

async fn set_mtpw_import(
    State(app): State<AppRef>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match q
        .get("mode")
        .map(String::as_str)
        .unwrap_or_default()
        .parse::<crate::MtpwImportMode>()
    {
        Ok(mode) => {
            crate::state::lock(&app.mtpw).set_import_mode(mode);
            json_response(StatusCode::OK, &json!({"mode": mode.as_str()}))
        }
        Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": e})),
    }
}

async fn requests(State(app): State<AppRef>) -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::to_value(app.recorder.requests()).unwrap_or_default(),
    )
}

async fn clear_requests(State(app): State<AppRef>) -> StatusCode {
    app.recorder.clear();
    StatusCode::NO_CONTENT
}

async fn state(State(app): State<AppRef>) -> Response {
    let s = SandboxState { app };
    json_response(
        StatusCode::OK,
        &json!({
            "mapillary": {
                "files": s.mapillary_files(),
                "clusters": s.mapillary_clusters(),
                "sequences": s.mapillary_sequences(),
                "images": s.mapillary_images(),
            },
            "kartaview": {"sequences": s.kartaview_sequences()},
            "panoramax": {"upload_sets": s.panoramax_upload_sets()},
            "mtpw": {"sequences": s.mtpw_sequences()},
        }),
    )
}

async fn list_faults(State(app): State<AppRef>) -> Response {
    let rules: Vec<_> = app
        .faults
        .rules()
        .into_iter()
        .map(|(id, rule, fired)| json!({"id": id.0, "rule": rule, "fired": fired}))
        .collect();
    json_response(StatusCode::OK, &json!({"rules": rules}))
}

async fn add_faults(State(app): State<AppRef>, body: Body) -> Response {
    let Ok(bytes) = read_all(body).await else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "unreadable body"}),
        );
    };
    let spec = String::from_utf8_lossy(&bytes);
    match Faults::parse_spec(&spec) {
        Ok(directives) => {
            let ids: Vec<u64> = app
                .faults
                .apply(directives)
                .into_iter()
                .map(|i| i.0)
                .collect();
            json_response(StatusCode::OK, &json!({"added": ids}))
        }
        Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()})),
    }
}

async fn clear_faults(State(app): State<AppRef>) -> StatusCode {
    app.faults.clear();
    StatusCode::NO_CONTENT
}

async fn token(State(app): State<AppRef>, Query(q): Query<HashMap<String, String>>) -> Response {
    let Some(service) = q.get("service").and_then(|s| Service::parse(s)) else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "service must be mapillary, osm, kartaview, panoramax or mtpw"}),
        );
    };
    let user = match q.get("user").map(|u| u.parse::<usize>()) {
        None => 0,
        Some(Ok(u)) if u < USERS.len() => u,
        Some(_) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": format!("user must be 0..{}", USERS.len() - 1)}),
            );
        }
    };
    let token = SandboxState { app }.issue_token(service, user);
    json_response(
        StatusCode::OK,
        &json!({"access_token": token, "service": service, "user": USERS[user].username}),
    )
}
