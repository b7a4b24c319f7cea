//! The Graph API endpoints other than `token`: `me`, `finish_upload`, `logging`, the
//! read-back (`images`, `image_ids`, `{id}`) and the sandbox-only cluster status.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use super::processing::{Image, ORGANIZATION_ID, cluster_stages};
use super::{bad_request, graph_error, user};
use crate::app::{AppRef, auth_credential, json_response};
use crate::auth::USERS;
use crate::body::{ParsedForm, read_all};
use crate::state::lock;

/// Every field an Image node has here.
pub(super) const IMAGE_FIELDS: &[&str] = &[
    "id",
    "altitude",
    "computed_altitude",
    "camera_type",
    "captured_at",
    "compass_angle",
    "computed_compass_angle",
    "geometry",
    "computed_geometry",
    "creator",
    "height",
    "width",
    "is_pano",
    "make",
    "model",
    "organization",
    "sequence",
    "thumb_256_url",
    "thumb_1024_url",
    "thumb_2048_url",
    "thumb_original_url",
];

pub(super) fn fields_param(q: &HashMap<String, String>) -> Vec<String> {
    q.get("fields")
        .map(|f| {
            f.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn nonexisting_field(field: &str, node: &str) -> Response {
    bad_request(&format!(
        "(#100) Tried accessing nonexisting field ({field}) on node type ({node})"
    ))
}

pub(super) fn image_json(app: &AppRef, img: &Image, fields: &[String]) -> Result<Value, Response> {
    let mut out = serde_json::Map::new();
    out.insert("id".into(), json!(img.id));
    let point = img
        .meta
        .position()
        .map(|(lat, lon)| json!({"type": "Point", "coordinates": [lon, lat]}));
    let original = app.url(&format!(
        "/mapillary/graph/sandbox/images/{}/original",
        img.id
    ));
    for f in fields {
        let v = match f.as_str() {
            "id" => continue,
            "altitude" | "computed_altitude" => json!(img.meta.altitude),
            "camera_type" => json!(if img.meta.is_pano {
                "spherical"
            } else {
                "perspective"
            }),
            "captured_at" => json!(img.meta.captured_at_ms()),
            "compass_angle" | "computed_compass_angle" => json!(img.meta.heading),
            "geometry" | "computed_geometry" => json!(point),
            "creator" => {
                json!({"id": USERS[img.user].mapillary_id, "username": USERS[img.user].username})
            }
            "height" => json!(img.meta.height),
            "width" => json!(img.meta.width),
            "is_pano" => json!(img.meta.is_pano),
            "make" => json!(img.meta.make),
            "model" => json!(img.meta.model),
            "organization" => match &img.organization_id {
                Some(id) => json!({"id": id}),
                None => continue,
            },
            "sequence" => json!(img.sequence_id),
            "thumb_256_url" | "thumb_1024_url" | "thumb_2048_url" | "thumb_original_url" => {
                json!(original)
            }
            other => return Err(nonexisting_field(other, "Image")),
        };
        if !v.is_null() {
            out.insert(f.clone(), v);
        }
    }
    Ok(Value::Object(out))
}

pub(super) async fn me(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let u = match user(&app, &headers, q.get("access_token").map(String::as_str)) {
        Ok(u) => u,
        Err(r) => return r,
    };
    user_node(u, &fields_param(&q))
}

fn user_node(u: usize, fields: &[String]) -> Response {
    let mut out = serde_json::Map::new();
    out.insert("id".into(), json!(USERS[u].mapillary_id));
    for f in fields {
        match f.as_str() {
            "id" => {}
            "username" => {
                out.insert("username".into(), json!(USERS[u].username));
            }
            other => return nonexisting_field(other, "User"),
        }
    }
    json_response(StatusCode::OK, &Value::Object(out))
}

pub(super) async fn finish_upload(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Ok(bytes) = read_all(body).await else {
        return bad_request("Could not read the request body");
    };
    let u = match user(&app, &headers, None) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(r) = super::may_upload(&app, &headers) {
        return r.graph();
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let params: HashMap<String, String> = if ct.to_ascii_lowercase().starts_with("application/json")
    {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, v)
                })
                .collect(),
            _ => return bad_request("The request body is not a JSON object"),
        }
    } else {
        match ParsedForm::parse(&ct, bytes).await {
            Ok(f) => f.fields.into_iter().collect(),
            Err(_) => return bad_request("Expected a JSON or form body"),
        }
    };
    let Some(handle) = params.get("file_handle").filter(|h| !h.is_empty()) else {
        return bad_request("Missing file_handle");
    };
    let Some(file_type) = params.get("file_type") else {
        return bad_request("Missing file_type");
    };
    let org = params
        .get("organization_id")
        .filter(|o| !o.is_empty() && o.as_str() != "null")
        .cloned();
    let result = lock(&app.mly).finish(&app, u, handle, file_type, org);
    match result {
        Ok(cluster_id) => json_response(StatusCode::OK, &json!({"cluster_id": cluster_id})),
        Err(e) => bad_request(&e.0),
    }
}

/// Telemetry from mapillary_tools (sent with its own client token).
pub(super) async fn logging(headers: HeaderMap, body: Body) -> Response {
    let _ = read_all(body).await;
    if auth_credential(&headers, &["OAuth", "Bearer"]).is_none() {
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "An access token is required to request this resource.",
            "OAuthException",
            104,
        );
    }
    json_response(StatusCode::OK, &json!({}))
}

pub(super) async fn image_ids(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = user(&app, &headers, q.get("access_token").map(String::as_str)) {
        return r;
    }
    let Some(seq) = q.get("sequence_id") else {
        return bad_request("(#100) The parameter sequence_id is required");
    };
    if let Some(ws) = app.world.mapillary_sequence(seq) {
        let ids: Vec<Value> = app
            .world
            .sequence_images(ws)
            .iter()
            .map(|i| json!({"id": i.mapillary_id()}))
            .collect();
        return json_response(StatusCode::OK, &json!({"data": ids}));
    }
    let st = lock(&app.mly);
    let ids: Vec<Value> = st
        .sequences
        .iter()
        .find(|s| &s.id == seq && crate::clock::reached(s.visible_at))
        .map(|s| s.image_ids.iter().map(|id| json!({"id": id})).collect())
        .unwrap_or_default();
    json_response(StatusCode::OK, &json!({"data": ids}))
}

pub(super) async fn node(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = user(&app, &headers, q.get("access_token").map(String::as_str)) {
        return r;
    }
    let fields = fields_param(&q);
    if let Some(u) = USERS.iter().position(|u| u.mapillary_id == id) {
        return user_node(u, &fields);
    }
    if id == ORGANIZATION_ID {
        let mut out = serde_json::Map::new();
        out.insert("id".into(), json!(ORGANIZATION_ID));
        for f in &fields {
            let v = match f.as_str() {
                "id" => continue,
                "slug" => json!("mtp-sandbox"),
                "name" => json!("MTP Sandbox Organization"),
                "description" => json!("The organization every sandbox account belongs to"),
                other => return nonexisting_field(other, "Organization"),
            };
            out.insert(f.clone(), v);
        }
        return json_response(StatusCode::OK, &Value::Object(out));
    }
    if let Some(img) = app.world.mapillary_image(&id) {
        return match super::search::world_image_json(&app, img, &fields) {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(r) => r,
        };
    }
    let st = lock(&app.mly);
    if let Some(img) = st.images.iter().find(|i| i.id == id && i.visible()) {
        return match image_json(&app, img, &fields) {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(r) => r,
        };
    }
    graph_error(
        StatusCode::BAD_REQUEST,
        &format!(
            "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation"
        ),
        "GraphMethodException",
        100,
    )
}

/// Sandbox-only: a cluster's stages and, once processed, its sequence ids.
pub(super) async fn cluster(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(cluster_id): Path<String>,
) -> Response {
    let u = match user(&app, &headers, None) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let st = lock(&app.mly);
    let Some(c) = st
        .clusters
        .iter()
        .find(|c| c.id == cluster_id && c.user == u)
    else {
        return graph_error(
            StatusCode::NOT_FOUND,
            &format!("Cluster {cluster_id} not found"),
            "GraphMethodException",
            100,
        );
    };
    let (stages, status) = cluster_stages(&app, c);
    let sequence_ids: Vec<&String> = if status == "done" {
        c.sequence_ids.iter().collect()
    } else {
        Vec::new()
    };
    json_response(
        StatusCode::OK,
        &json!({
            "cluster_id": c.id,
            "file_type": c.file_type,
            "created_at": c.created_at.format(&Rfc3339).unwrap_or_default(),
            "status": status,
            "stages": stages.iter().map(|(n, s)| json!({"name": n, "status": s})).collect::<Vec<_>>(),
            "failure": c.failure.as_ref().map(|(_, m)| m),
            "image_count": c.image_count,
            "dropped_images": c.dropped,
            "sequence_ids": sequence_ids,
        }),
    )
}

/// The bytes of a processed image (what the `thumb_*_url` fields point to).
pub(super) async fn image_file(
    State(app): State<AppRef>,
    Path(image_id): Path<String>,
) -> Response {
    let st = lock(&app.mly);
    match st.images.iter().find(|i| i.id == image_id && i.visible()) {
        Some(i) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "image/jpeg")],
            i.bytes.clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
