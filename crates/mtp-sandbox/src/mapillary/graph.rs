//! The Graph API endpoints other than `token`: `me`, `finish_upload`, `logging`, the
//! read-back (`images`, `image_ids`, `{id}`) and the sandbox-only cluster status.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};

use super::processing::{Image, ORGANIZATION_ID, cluster_stages};
use super::{bad_request, graph_error, user};
use crate::app::{AppRef, auth_credential, json_response};
use crate::auth::USERS;
use crate::body::{ParsedForm, read_all};
use crate::state::lock;

/// The largest `limit` the read-back accepts (as documented for `/images`).
const MAX_LIMIT: usize = 2000;

fn fields_param(q: &HashMap<String, String>) -> Vec<String> {
    q.get("fields")
        .map(|f| {
            f.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn nonexisting_field(field: &str, node: &str) -> Response {
    bad_request(&format!(
        "(#100) Tried accessing nonexisting field ({field}) on node type ({node})"
    ))
}

fn image_json(app: &AppRef, img: &Image, fields: &[String]) -> Result<Value, Response> {
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
        return r;
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
            "NotAuthorizedError",
        );
    }
    json_response(StatusCode::OK, &json!({}))
}

/// ISO 8601 / RFC 3339 (`2021-03-04T05:06:07Z`, with or without zone: UTC) or epoch ms.
fn parse_time_ms(s: &str) -> Option<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(s, &Iso8601::DEFAULT))
        .or_else(|_| time::PrimitiveDateTime::parse(s, &Iso8601::DEFAULT).map(|p| p.assume_utc()))
        .ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

pub(super) async fn images(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = user(&app, &headers, q.get("access_token").map(String::as_str)) {
        return r;
    }
    let bbox = match q.get("bbox") {
        Some(b) => {
            let v: Option<Vec<f64>> = b.split(',').map(|x| x.trim().parse().ok()).collect();
            match v.as_deref() {
                Some(&[a, b, c, d]) if a <= c && b <= d => Some((a, b, c, d)),
                _ => return bad_request("(#100) bbox must be minLon,minLat,maxLon,maxLat"),
            }
        }
        None => None,
    };
    let image_ids: Option<Vec<String>> = q.get("image_ids").map(|s| {
        s.split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect()
    });
    let sequence_id = q.get("sequence_id");
    if bbox.is_none() && image_ids.is_none() && sequence_id.is_none() {
        return bad_request("(#100) One of bbox, image_ids or sequence_id is required");
    }
    let mut time_bounds = [None, None];
    for (i, k) in ["start_captured_at", "end_captured_at"].iter().enumerate() {
        if let Some(v) = q.get(*k) {
            match parse_time_ms(v) {
                Some(ms) => time_bounds[i] = Some(ms),
                None => return bad_request(&format!("(#100) Invalid {k}: {v}")),
            }
        }
    }
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => MAX_LIMIT,
        Some(Ok(l)) if l >= 1 => l.min(MAX_LIMIT),
        Some(_) => return bad_request("(#100) limit must be a positive integer"),
    };
    let creator = q.get("creator_username");
    let organization = q.get("organization_id");
    let fields = fields_param(&q);

    let st = lock(&app.mly);
    let mut hits: Vec<&Image> = st
        .images
        .iter()
        .filter(|i| i.visible())
        .filter(|i| image_ids.as_ref().is_none_or(|ids| ids.contains(&i.id)))
        .filter(|i| sequence_id.is_none_or(|s| *s == i.sequence_id))
        .filter(|i| creator.is_none_or(|c| USERS[i.user].username == c.as_str()))
        .filter(|i| organization.is_none_or(|o| i.organization_id.as_ref() == Some(o)))
        .filter(|i| {
            bbox.is_none_or(|(min_lon, min_lat, max_lon, max_lat)| {
                i.meta.position().is_some_and(|(lat, lon)| {
                    (min_lat..=max_lat).contains(&lat) && (min_lon..=max_lon).contains(&lon)
                })
            })
        })
        .filter(|i| {
            let t = i.meta.captured_at_ms();
            time_bounds[0].is_none_or(|s| t.is_some_and(|t| t >= s))
                && time_bounds[1].is_none_or(|e| t.is_some_and(|t| t <= e))
        })
        .collect();
    hits.sort_by_key(|i| (i.meta.captured_at_ms(), i.id.len(), i.id.clone()));
    hits.truncate(limit);
    let mut data = Vec::with_capacity(hits.len());
    for i in hits {
        match image_json(&app, i, &fields) {
            Ok(v) => data.push(v),
            Err(r) => return r,
        }
    }
    json_response(StatusCode::OK, &json!({"data": data}))
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
        "InvalidRequestError",
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
            "InvalidRequestError",
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
