//! `POST /1.0/list/nearby-photos/`: photos in a box, page by page (PROTOCOLS §6), from the
//! seeded world and from uploads (once processed, as the service shows them), and the
//! thumbnails its items point to.
//!
//! Paging as the service does it: `ipp` items a page (at most 1000; more is clamped),
//! `page` from 1, every page full until the last, a page past the end empty, and the total
//! in `totalFilteredItems[0]`. Items are in photo-id order, so pages never overlap.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::app::{App, AppRef, json_response};
use crate::auth::{Service, USERS};
use crate::state::lock;
use crate::world::{WorldBbox, WorldImage, thumb};

use super::state::{Phase, Photo, Sequence, phase};
use super::{datetime, form_and_user, missing, out_of_range, world_shot_date, wrong_type};

/// Most items a page holds.
const MAX_IPP: usize = 1000;
const DEFAULT_IPP: usize = 100;

/// `"<lat>,<lng>"`.
fn corner(form: &crate::body::ParsedForm, name: &str) -> Result<(f64, f64), Response> {
    let Some(v) = form.get(name) else {
        return Err(missing(name));
    };
    let (a, b) = v.split_once(',').ok_or_else(|| wrong_type(name))?;
    let lat: f64 = a.trim().parse().map_err(|_| wrong_type(name))?;
    let lng: f64 = b.trim().parse().map_err(|_| wrong_type(name))?;
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
        return Err(out_of_range(name));
    }
    Ok((lat, lng))
}

fn positive(form: &crate::body::ParsedForm, name: &str, default: usize) -> Result<usize, Response> {
    match form.get(name).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            Ok(_) => Err(out_of_range(name)),
            Err(_) => Err(wrong_type(name)),
        },
    }
}

enum Item<'a> {
    World(&'a WorldImage),
    Uploaded(&'a Sequence, &'a Photo),
}

impl Item<'_> {
    fn id(&self) -> u64 {
        match self {
            Item::World(w) => w.kartaview_id(),
            Item::Uploaded(_, p) => p.id,
        }
    }
}

/// A photo's thumbnails as KartaView names them: paths on its web site
/// (`storage6/files/photo/…`), which the sandbox serves beside its sequence pages
/// (`<base>/kartaview/storage1/files/photo/{th,lth}/<id>.jpg`).
fn thumb_paths(id: u64) -> (String, String) {
    (
        format!("{THUMBS}th/{id}.jpg"),
        format!("{THUMBS}lth/{id}.jpg"),
    )
}

/// Where the thumbnails are, relative to the web site.
const THUMBS: &str = "storage1/files/photo/";

/// One item; numbers as strings of digits, like every v1 reply.
fn item_json(app: &App, item: &Item<'_>) -> Value {
    match item {
        Item::World(w) => {
            let world = &app.world;
            let seq = world.sequence_of(w);
            let id = w.kartaview_id();
            let (th, lth) = thumb_paths(id);
            let shot = world_shot_date(w);
            let mut item = json!({
                "id": id.to_string(),
                "sequence_id": seq.kartaview_id().to_string(),
                "sequence_index": w.index.to_string(),
                "lat": w.lat.to_string(),
                "lng": w.lon.to_string(),
                "heading": format!("{:.2}", w.heading),
                "shot_date": shot,
                "date_added": shot,
                "username": world.user_of(seq).username,
                "name": format!("{}_{:05}.jpg", seq.kartaview_id(), w.index),
                "th_name": th,
                "lth_name": lth,
            });
            if app.faults.kartaview_nearby_says_pano() {
                item["projection"] = json!(if seq.is_pano { "SPHERE" } else { "PLANE" });
                item["field_of_view"] = json!(if seq.is_pano { "360" } else { "" });
            }
            item
        }
        Item::Uploaded(s, p) => {
            let (th, lth) = thumb_paths(p.id);
            let mut item = json!({
                "id": p.id.to_string(),
                "sequence_id": s.id.to_string(),
                "sequence_index": p.index.to_string(),
                "lat": p.lat.to_string(),
                "lng": p.lng.to_string(),
                "heading": p.heading.map(|h| format!("{h:.2}")).unwrap_or_default(),
                "shot_date": p.shot_date,
                "date_added": datetime(p.date_added),
                "username": USERS[s.user].username,
                "name": p.filename.clone().unwrap_or_else(|| format!("{}_{:05}.jpg", s.id, p.index)),
                "th_name": th,
                "lth_name": lth,
            });
            if app.faults.kartaview_nearby_says_pano() {
                item["projection"] = json!(p.projection.as_deref().unwrap_or("PLANE"));
                item["field_of_view"] =
                    json!(p.field_of_view.map(|f| f.to_string()).unwrap_or_default());
            }
            item
        }
    }
}

pub(super) async fn nearby_photos(
    State(app): State<AppRef>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (form, _) = match form_and_user(&app, &headers, body, false).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let parsed = corner(&form, "bbTopLeft").and_then(|tl| {
        let br = corner(&form, "bbBottomRight")?;
        let ipp = positive(&form, "ipp", DEFAULT_IPP)?.min(MAX_IPP);
        let page = positive(&form, "page", 1)?;
        Ok((tl, br, ipp, page))
    });
    let ((max_lat, min_lng), (min_lat, max_lng), ipp, page) = match parsed {
        Ok(x) => x,
        Err(r) => return r,
    };
    // A box given upside down is still the box the client meant.
    let bbox = WorldBbox::new(
        min_lng.min(max_lng),
        min_lat.min(max_lat),
        min_lng.max(max_lng),
        min_lat.max(max_lat),
    );
    let st = lock(&app.kv);
    let mut items: Vec<Item<'_>> = app
        .world
        .in_bbox_on(bbox, Service::KartaView)
        .map(Item::World)
        .collect();
    for s in st
        .sequences
        .iter()
        .filter(|s| !s.deleted && phase(&app, s) == Phase::Finished)
    {
        items.extend(
            s.photos
                .iter()
                .filter(|p| bbox.contains(p.lat, p.lng))
                .map(|p| Item::Uploaded(s, p)),
        );
    }
    items.sort_by_key(Item::id);
    let total = items.len();
    let page_items: Vec<Value> = items
        .iter()
        .skip((page - 1).saturating_mul(ipp))
        .take(ipp)
        .map(|i| item_json(&app, i))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"status": {"apiCode": "600", "apiMessage": "The request has been processed without incidents",
                           "httpCode": 200, "httpMessage": "Success"},
                "currentPageItems": page_items, "totalFilteredItems": [total]}),
    )
}

/// A photo's thumbnail (`th/<id>.jpg`) or large thumbnail (`lth/<id>.jpg`): generated,
/// since the emulator keeps no KartaView bytes.
pub(super) async fn photo_file(
    State(app): State<AppRef>,
    Path((size, file)): Path<(String, String)>,
) -> Response {
    let not_found = || json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"}));
    let id = file
        .strip_suffix(".jpg")
        .and_then(|id| id.parse::<u64>().ok());
    let Some(id) = id.filter(|_| size == "th" || size == "lth") else {
        return not_found();
    };
    if let Some(w) = app.world.kartaview_photo(id) {
        return thumb::response(app.world.sequence_of(w));
    }
    let st = lock(&app.kv);
    let found = st
        .sequences
        .iter()
        .filter(|s| !s.deleted)
        .find_map(|s| s.photos.iter().find(|p| p.id == id).map(|p| (s, p)));
    match found {
        Some((s, p)) => thumb::response_for(s.id as u32, p.projection.as_deref() == Some("SPHERE")),
        None => not_found(),
    }
}
