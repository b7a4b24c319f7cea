//! The STAC read-back: collections, their items and processing status, picture assets, the
//! search endpoint and the instance's web viewer.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::app::{App, AppRef, json_response};
use crate::auth::USERS;
use crate::html::{escape, page};
use crate::state::lock;

use super::search::{world_collection_json, world_item_json};
use super::state::{Collection, Picture, PnxState, SetPhase, set_phase};
use super::{err, rfc3339, token_user};

pub(super) fn collection_summary(
    app: &App,
    st: &PnxState,
    c: &Collection,
    phase: SetPhase,
) -> Value {
    // The upload set's own view: its owner's, broken pictures included.
    let pics = st.collection_pictures(c, Some(c.user));
    let broken = pics.iter().filter(|p| p.broken).count();
    let ready = phase == SetPhase::Ready;
    json!({
        "id": c.id,
        "title": c.title,
        "nb_items": pics.len(),
        "ready": ready,
        "extent": extent(&pics),
        "items_status": {"prepared": if ready { pics.len() - broken } else { 0 },
                         "preparing": if ready { 0 } else { pics.len() - broken },
                         "broken": broken,
                         "preparing_error": 0, "not_processed": 0},
        "links": [{"rel": "self", "type": "application/json",
                   "href": app.url(&format!("/panoramax/api/collections/{}", c.id))}],
    })
}

pub(super) fn extent(pics: &[&Picture]) -> Value {
    let pos: Vec<(f64, f64)> = pics.iter().filter_map(|p| p.meta.position()).collect();
    let bbox = if pos.is_empty() {
        Value::Null
    } else {
        let min_lat = pos.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let max_lat = pos.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        let min_lon = pos.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let max_lon = pos.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        json!([[min_lon, min_lat, max_lon, max_lat]])
    };
    let times: Vec<OffsetDateTime> = pics.iter().filter_map(|p| p.meta.captured_at).collect();
    let interval = match (times.iter().min(), times.iter().max()) {
        (Some(a), Some(b)) => json!([[rfc3339(*a), rfc3339(*b)]]),
        _ => json!([[null, null]]),
    };
    json!({"spatial": {"bbox": bbox}, "temporal": {"interval": interval}})
}

/// A collection, if its set has been dispatched (ready or not), it is not deleted, and
/// `viewer` may see it (`owner-only`: its owner; `logged-only`: anyone with a token).
pub(super) fn visible_collection<'a>(
    app: &App,
    st: &'a PnxState,
    id: &str,
    viewer: Option<usize>,
) -> Option<(&'a Collection, SetPhase)> {
    let c = st.collections.iter().find(|c| c.id == id && !c.deleted)?;
    let set = st.sets.iter().find(|s| s.id == c.set_id && !s.deleted)?;
    let allowed = match st.collection_visibility(c) {
        "owner-only" => viewer == Some(c.user),
        "logged-only" => viewer.is_some(),
        _ => true,
    };
    let phase = set_phase(app, set);
    (allowed && matches!(phase, SetPhase::Dispatched | SetPhase::Ready)).then_some((c, phase))
}

/// Who is reading: nobody without a token. A refused token is refused even on public
/// reads, as GeoVisio's `get_current_account` does (`utils/tokens.py`).
pub(super) fn reader(app: &AppRef, headers: &HeaderMap) -> Result<Option<usize>, Response> {
    token_user(app, headers)
}

pub(super) fn collection_json(
    app: &App,
    st: &PnxState,
    c: &Collection,
    phase: SetPhase,
    viewer: Option<usize>,
) -> Value {
    let pics = st.collection_pictures(c, viewer);
    let href = app.url(&format!("/panoramax/api/collections/{}", c.id));
    json!({
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": c.id,
        "title": c.title,
        "description": "A sequence of pictures",
        "geovisio:visibility": st.collection_visibility(c),
        "license": "CC-BY-SA-4.0",
        "created": rfc3339(c.created_at),
        "geovisio:status": if phase == SetPhase::Ready { "ready" } else { "preparing" },
        "geovisio:upload-software": "unknown",
        "extent": extent(&pics),
        "stats:items": {"count": pics.len()},
        "geovisio:length_km": length_km(&pics),
        "providers": [{"name": USERS[c.user].username, "roles": ["producer"]}],
        "links": [
            {"rel": "self", "type": "application/json", "href": href},
            {"rel": "items", "type": "application/geo+json", "href": format!("{href}/items")},
            {"rel": "parent", "type": "application/json", "href": app.url("/panoramax/api")},
        ],
    })
}

/// Along the pictures in sequence order, rounded to metres.
fn length_km(pics: &[&Picture]) -> f64 {
    let pos: Vec<(f64, f64)> = pics.iter().filter_map(|p| p.meta.position()).collect();
    let m: f64 = pos
        .windows(2)
        .map(|w| crate::geo::distance_m(w[0], w[1]))
        .sum();
    (m).round() / 1000.0
}

pub(super) fn item_json(app: &App, p: &Picture, ready: bool) -> Value {
    let geometry = p
        .meta
        .position()
        .map(|(lat, lon)| json!({"type": "Point", "coordinates": [lon, lat]}));
    let asset = |kind: &str| {
        json!({"href": app.url(&format!("/panoramax/api/pictures/{}/{kind}.jpg", p.id)),
               "type": "image/jpeg", "roles": ["data"]})
    };
    json!({
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": p.id,
        "collection": p.collection_id,
        "geometry": geometry,
        "bbox": p.meta.position().map(|(lat, lon)| json!([lon, lat, lon, lat])),
        "properties": {
            "datetime": p.meta.captured_at.map(rfc3339),
            "view:azimuth": p.meta.heading,
            "pers:interior_orientation": {"field_of_view": if p.meta.is_pano { json!(360) } else { Value::Null }},
            "original_file:name": p.file_name,
            "original_file:size": p.bytes.len(),
            "geovisio:status": match (p.broken, ready) {
                (true, _) => "broken",
                (false, true) => "ready",
                (false, false) => "preparing",
            },
            "geovisio:producer": USERS[p.user].username,
        },
        "providers": [{"name": USERS[p.user].username, "roles": ["producer"]}],
        "assets": {"hd": asset("hd"), "sd": asset("sd"), "thumb": asset("thumb")},
        "links": [],
    })
}

pub(super) async fn collection(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(seq) = app.world.panoramax_collection(&id) {
        return json_response(StatusCode::OK, &world_collection_json(&app, seq));
    }
    let viewer = match reader(&app, &headers) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let st = lock(&app.pnx);
    match visible_collection(&app, &st, &id, viewer) {
        Some((c, phase)) => json_response(
            StatusCode::OK,
            &collection_json(&app, &st, c, phase, viewer),
        ),
        None => err(StatusCode::NOT_FOUND, "Collection doesn't exist"),
    }
}

pub(super) async fn items(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let paging = match ItemsPage::parse(&q) {
        Ok(p) => p,
        Err(refused) => return refused,
    };
    let features: Vec<Value> = if let Some(seq) = app.world.panoramax_collection(&id) {
        app.world
            .sequence_images(seq)
            .iter()
            .map(|w| world_item_json(&app, w))
            .collect()
    } else {
        let viewer = match reader(&app, &headers) {
            Ok(v) => v,
            Err(refused) => return refused,
        };
        let st = lock(&app.pnx);
        // A collection still being prepared shows its pictures to its owner only (GeoVisio).
        let Some((c, phase)) = visible_collection(&app, &st, &id, viewer)
            .filter(|(c, phase)| *phase == SetPhase::Ready || viewer == Some(c.user))
        else {
            return err(StatusCode::NOT_FOUND, "Collection doesn't exist");
        };
        st.collection_pictures(c, viewer)
            .into_iter()
            .map(|p| item_json(&app, p, phase == SetPhase::Ready))
            .collect()
    };
    let base = app.url(&format!("/panoramax/api/collections/{id}/items"));
    let (features, links) = paging.cut(features, &base);
    json_response(
        StatusCode::OK,
        &json!({"type": "FeatureCollection", "features": features, "links": links}),
    )
}

/// `limit` and `startAfterRank` of a collection's items, checked as GeoVisio does
/// (`web/items.py`): without either, every item and no links; with them, a page and a
/// `next` link while items remain. Ranks count from 1 in sequence order.
struct ItemsPage {
    limit: Option<usize>,
    after: usize,
}

impl ItemsPage {
    fn parse(q: &HashMap<String, String>) -> Result<ItemsPage, Response> {
        let limit = match q.get("limit") {
            None => None,
            Some(l) => match l.trim().parse::<i64>() {
                Ok(n) if (1..=10_000).contains(&n) => Some(n as usize),
                Ok(_) => {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "limit parameter should be an integer between 1 and 10000",
                    ));
                }
                Err(_) => {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "limit parameter should be a valid, positive integer (between 1 and 10000)",
                    ));
                }
            },
        };
        let after = match q.get("startAfterRank") {
            None => 0,
            Some(r) => match r.trim().parse::<i64>() {
                Ok(n) if n >= 1 => n as usize,
                Ok(_) => {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "startAfterRank parameter should be a positive integer (starting from 1)",
                    ));
                }
                Err(_) => {
                    return Err(err(
                        StatusCode::BAD_REQUEST,
                        "startAfterRank parameter should be a valid, positive integer",
                    ));
                }
            },
        };
        Ok(ItemsPage { limit, after })
    }

    fn cut(&self, features: Vec<Value>, base: &str) -> (Vec<Value>, Vec<Value>) {
        let total = features.len();
        let take = self.limit.unwrap_or(usize::MAX);
        let page: Vec<Value> = features.into_iter().skip(self.after).take(take).collect();
        let mut links = Vec::new();
        let last = self.after + page.len();
        if let Some(limit) = self.limit.filter(|_| last < total) {
            links.push(json!({
                "rel": "next",
                "type": "application/geo+json",
                "href": format!("{base}?limit={limit}&startAfterRank={last}"),
            }));
        }
        (page, links)
    }
}

pub(super) async fn geovisio_status(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let viewer = match reader(&app, &headers) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let st = lock(&app.pnx);
    let Some((c, phase)) = visible_collection(&app, &st, &id, viewer) else {
        return err(StatusCode::NOT_FOUND, "Collection doesn't exist");
    };
    let status = if phase == SetPhase::Ready {
        "ready"
    } else {
        "preparing"
    };
    let items: Vec<Value> = st
        .collection_pictures(c, viewer)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            // A broken picture was tried 5 times (PROTOCOLS §4.1).
            let (status, errors) = if p.broken { ("broken", 5) } else { (status, 0) };
            json!({"id": p.id, "rank": i + 1, "status": status,
                   "processing_in_progress": status == "preparing", "nb_errors": errors})
        })
        .collect();
    json_response(StatusCode::OK, &json!({"status": status, "items": items}))
}

pub(super) async fn picture_file(
    State(app): State<AppRef>,
    Path((id, asset)): Path<(String, String)>,
) -> Response {
    if !["hd.jpg", "sd.jpg", "thumb.jpg"].contains(&asset.as_str()) {
        return err(StatusCode::NOT_FOUND, "Unknown picture asset");
    }
    if let Some(w) = app.world.panoramax_picture(&id) {
        return crate::world::thumb::response(app.world.sequence_of(w));
    }
    let st = lock(&app.pnx);
    match st.pictures.iter().find(|p| p.id == id) {
        Some(p) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "image/jpeg")],
            p.bytes.clone(),
        )
            .into_response(),
        None => err(StatusCode::NOT_FOUND, "Picture doesn't exist"),
    }
}

/// The instance's web viewer on one picture (`{instance}/?focus=pic&pic=<id>`, the
/// viewer's permalink parameters): the page a "View on Panoramax" link opens.
pub(crate) async fn viewer(
    State(app): State<AppRef>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let st = lock(&app.pnx);
    let Some(pic) = q.get("pic").filter(|p| !p.is_empty()) else {
        return Html(page(
            "Panoramax",
            "<p>The sandbox instance's viewer: open a picture with <code>?pic=&lt;id&gt;</code>.</p>",
        ))
        .into_response();
    };
    let Some(p) = st.pictures.iter().find(|p| &p.id == pic) else {
        return (
            StatusCode::NOT_FOUND,
            Html(page(
                "Panoramax",
                "<p>This picture does not exist (or not any more).</p>",
            )),
        )
            .into_response();
    };
    let sequence = p
        .collection_id
        .as_ref()
        .and_then(|c| st.collections.iter().find(|x| &x.id == c && !x.deleted));
    let body = match sequence {
        _ if p.broken => format!(
            "<p id=\"pnx-picture\" data-picture=\"{pid}\">Picture {file} could not be processed (broken).</p>",
            pid = escape(&p.id),
            file = escape(&p.file_name),
        ),
        Some(c) => {
            // What the public viewer shows: the sequence without its broken pictures.
            let shown = st.collection_pictures(c, None);
            format!(
                "<p id=\"pnx-picture\" data-picture=\"{pid}\" data-sequence=\"{cid}\">Picture {pos} of {n} in the sequence <b>{title}</b> ({file}).</p>",
                pid = escape(&p.id),
                cid = escape(&c.id),
                pos = shown.iter().position(|x| x.id == p.id).map_or(0, |i| i + 1),
                n = shown.len(),
                title = escape(&c.title),
                file = escape(&p.file_name),
            )
        }
        None => format!(
            "<p id=\"pnx-picture\" data-picture=\"{pid}\">Picture {file}, not yet in a sequence (still being processed).</p>",
            pid = escape(&p.id),
            file = escape(&p.file_name),
        ),
    };
    Html(page("Panoramax", &body)).into_response()
}
