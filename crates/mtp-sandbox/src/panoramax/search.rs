//! Searching Panoramax (PROTOCOLS §6): `GET /api/search` (pictures as STAC Items, at most
//! `limit` ≤ 10000 of them and never a `next` link: GeoVisio leaves narrowing the box or
//! the time to the client) and `GET /api/collections` (sequences, ≤ 1000 a page, paged
//! through `links` `rel=next`), over uploads and the seeded world alike.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::app::{App, AppRef, json_response};
use crate::auth::Service;
use crate::state::lock;
use crate::world::{WorldBbox, WorldImage, WorldSequence};

use super::stac::{collection_json, item_json, reader, visible_collection};
use super::state::{Picture, SetPhase};
use super::{err, rfc3339};

const SEARCH_DEFAULT_LIMIT: usize = 10;
const SEARCH_MAX_LIMIT: usize = 10_000;
const COLLECTIONS_DEFAULT_LIMIT: usize = 100;
const COLLECTIONS_MAX_LIMIT: usize = 1000;

/// A closed or half-open time interval, unix ms (`None` = open end).
#[derive(Clone, Copy)]
struct Interval(Option<i64>, Option<i64>);

impl Interval {
    /// `<RFC 3339>` (that instant), or `<a>/<b>` where either end may be `..` or empty.
    fn parse(s: &str) -> Option<Interval> {
        let one = |p: &str| -> Option<Option<i64>> {
            let p = p.trim();
            if p.is_empty() || p == ".." {
                return Some(None);
            }
            let t = OffsetDateTime::parse(p, &Rfc3339).ok()?;
            Some(Some((t.unix_timestamp_nanos() / 1_000_000) as i64))
        };
        match s.split_once('/') {
            Some((a, b)) => Some(Interval(one(a)?, one(b)?)),
            None => {
                let t = one(s)?;
                t.map(|t| Interval(Some(t), Some(t)))
            }
        }
    }

    fn contains(&self, t: i64) -> bool {
        self.0.is_none_or(|a| t >= a) && self.1.is_none_or(|b| t <= b)
    }

    /// Whether `[a, b]` shares an instant with this interval.
    fn overlaps(&self, a: i64, b: i64) -> bool {
        self.0.is_none_or(|x| b >= x) && self.1.is_none_or(|y| a <= y)
    }
}

fn bbox_param(q: &HashMap<String, String>) -> Result<Option<WorldBbox>, Response> {
    let Some(b) = q.get("bbox") else {
        return Ok(None);
    };
    let v: Option<Vec<f64>> = b.split(',').map(|x| x.trim().parse().ok()).collect();
    match v.as_deref() {
        Some(&[a, b, c, d]) if a <= c && b <= d => Ok(Some(WorldBbox::new(a, b, c, d))),
        _ => Err(err(
            StatusCode::BAD_REQUEST,
            "Parameter bbox must be minx,miny,maxx,maxy",
        )),
    }
}

fn datetime_param(q: &HashMap<String, String>) -> Result<Option<Interval>, Response> {
    match q.get("datetime") {
        None => Ok(None),
        Some(s) => Interval::parse(s).map(Some).ok_or_else(|| {
            err(
                StatusCode::BAD_REQUEST,
                "Parameter datetime should be a RFC 3339 date-time or an interval a/b (.. for an open end)",
            )
        }),
    }
}

/// `bbox`, `datetime` and `limit`, as both search and the collection list read them.
fn area_params(
    q: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<(Option<WorldBbox>, Option<Interval>, usize), Response> {
    Ok((
        bbox_param(q)?,
        datetime_param(q)?,
        limit_param(q, default, max)?,
    ))
}

/// `limit`, from 1 to `max`: GeoVisio refuses any other (400), it does not clamp. Its two
/// messages: `/search`'s, and the collection list's.
fn limit_param(q: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, Response> {
    let refused = || {
        let message = if max == SEARCH_MAX_LIMIT {
            format!("Parameter limit must be either empty or a number between 1 and {max}")
        } else {
            format!("limit parameter should be an integer between 1 and {max}")
        };
        Err(err(StatusCode::BAD_REQUEST, &message))
    };
    match q.get("limit").map(|l| l.trim()) {
        None | Some("") => Ok(default),
        Some(l) => match l.parse::<usize>() {
            Ok(l) if (1..=max).contains(&l) => Ok(l),
            _ => refused(),
        },
    }
}

fn list_param(q: &HashMap<String, String>, name: &str) -> Option<Vec<String>> {
    q.get(name).map(|s| {
        s.split(',')
            .map(|x| x.trim().trim_matches('"').to_owned())
            .filter(|x| !x.is_empty())
            .collect()
    })
}

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn world_rfc3339(ms: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .map(rfc3339)
}

/// A world picture as a STAC Item, shaped like an uploaded one ([`item_json`]).
pub(super) fn world_item_json(app: &App, img: &WorldImage) -> Value {
    let world = &app.world;
    let seq = world.sequence_of(img);
    let producer = &world.user_of(seq).username;
    let id = img.panoramax_id();
    let asset = |kind: &str| {
        json!({"href": app.url(&format!("/panoramax/api/pictures/{id}/{kind}.jpg")),
               "type": "image/jpeg", "roles": ["data"]})
    };
    json!({
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": id,
        "collection": seq.panoramax_id(),
        "geometry": {"type": "Point", "coordinates": [img.lon, img.lat]},
        "bbox": [img.lon, img.lat, img.lon, img.lat],
        "properties": {
            "datetime": world_rfc3339(img.captured_at_ms),
            "view:azimuth": f64::from(img.heading).round(),
            "pers:interior_orientation": {"field_of_view": if seq.is_pano { json!(360) } else { Value::Null }},
            "original_file:name": format!("{}_{:05}.jpg", seq.city.to_lowercase().replace(' ', "_"), img.index),
            "original_file:size": if seq.is_pano { 4_200_000 } else { 2_100_000 },
            "geovisio:status": "ready",
            "geovisio:producer": producer,
        },
        "providers": [{"name": producer, "roles": ["producer"]}],
        "assets": {"hd": asset("hd"), "sd": asset("sd"), "thumb": asset("thumb")},
        "links": [],
    })
}

/// A world sequence as a STAC Collection, shaped like an uploaded one ([`collection_json`]).
pub(super) fn world_collection_json(app: &App, seq: &WorldSequence) -> Value {
    let world = &app.world;
    let producer = &world.user_of(seq).username;
    let images = world.sequence_images(seq);
    let e = world.extent(seq);
    let first = images.first().map(|i| i.captured_at_ms).unwrap_or_default();
    let last = images.last().map(|i| i.captured_at_ms).unwrap_or_default();
    let href = app.url(&format!(
        "/panoramax/api/collections/{}",
        seq.panoramax_id()
    ));
    json!({
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": seq.panoramax_id(),
        "title": seq.title(),
        "description": "A sequence of pictures",
        "geovisio:visibility": "anyone",
        "license": "CC-BY-SA-4.0",
        // Published a day after the last picture was taken.
        "created": world_rfc3339(last + 86_400_000),
        "geovisio:status": "ready",
        "geovisio:upload-software": "unknown",
        "geovisio:length_km": (seq.length_km * 1000.0).round() / 1000.0,
        "extent": {"spatial": {"bbox": [[e.min_lon, e.min_lat, e.max_lon, e.max_lat]]},
                   "temporal": {"interval": [[world_rfc3339(first), world_rfc3339(last)]]}},
        "stats:items": {"count": seq.len},
        "providers": [{"name": producer, "roles": ["producer"]}],
        "links": [
            {"rel": "self", "type": "application/json", "href": href},
            {"rel": "items", "type": "application/geo+json", "href": format!("{href}/items")},
            {"rel": "parent", "type": "application/json", "href": app.url("/panoramax/api")},
        ],
    })
}

pub(super) async fn search(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let viewer = match reader(&app, &headers) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let (bbox, when, limit) = match area_params(&q, SEARCH_DEFAULT_LIMIT, SEARCH_MAX_LIMIT) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let collections = list_param(&q, "collections");
    let ids = list_param(&q, "ids");
    let world = &app.world;
    let keep_world = |w: &&WorldImage| {
        bbox.is_none_or(|b| b.contains(w.lat, w.lon))
            && when.is_none_or(|i| i.contains(w.captured_at_ms))
            && collections
                .as_ref()
                .is_none_or(|c| c.contains(&world.sequence_of(w).panoramax_id()))
            && ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&w.panoramax_id()))
    };
    // Candidates from the narrowest filter given, then every filter.
    let mut world_hits: Vec<&WorldImage> = if let Some(ids) = &ids {
        ids.iter()
            .filter_map(|id| world.panoramax_picture(id))
            .collect()
    } else if let Some(cs) = &collections {
        cs.iter()
            .filter_map(|c| world.panoramax_collection(c))
            .flat_map(|s| world.sequence_images(s).iter())
            .collect()
    } else if let Some(b) = bbox {
        world.in_bbox_on(b, Service::Panoramax).collect()
    } else {
        world.images_on(Service::Panoramax).collect()
    };
    world_hits.retain(|w| keep_world(w));
    world_hits.sort_by_key(|w| w.n);
    world_hits.dedup_by_key(|w| w.n);
    // Uploads first: a client looking for what it just published must not lose it behind
    // the world when the limit is small.
    let mut features: Vec<Value> = {
        let st = lock(&app.pnx);
        let keep = |p: &&Picture| {
            bbox.is_none_or(|b| {
                p.meta
                    .position()
                    .is_some_and(|(lat, lon)| b.contains(lat, lon))
            }) && when.is_none_or(|i| p.meta.captured_at.is_some_and(|t| i.contains(ms(t))))
                && collections
                    .as_ref()
                    .is_none_or(|c| p.collection_id.as_ref().is_some_and(|id| c.contains(id)))
                && ids.as_ref().is_none_or(|ids| ids.contains(&p.id))
        };
        st.pictures
            .iter()
            // A broken picture is in its collection, shown to its owner only there: the
            // search shows ready pictures alone, to anyone (GeoVisio `web/items.py`).
            .filter(|p| !p.broken)
            .filter(|p| {
                p.collection_id.as_ref().is_some_and(|cid| {
                    visible_collection(&app, &st, cid, viewer)
                        .is_some_and(|(_, phase)| phase == SetPhase::Ready)
                })
            })
            .filter(keep)
            .take(limit)
            .map(|p| item_json(&app, p, true))
            .collect()
    };
    let room = limit - features.len();
    features.extend(
        world_hits
            .iter()
            .take(room)
            .map(|w| world_item_json(&app, w)),
    );
    json_response(
        StatusCode::OK,
        &json!({"type": "FeatureCollection", "features": features,
                "links": [{"rel": "root", "type": "application/json", "href": app.url("/panoramax/api")}]}),
    )
}

pub(super) async fn collections(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let viewer = match reader(&app, &headers) {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let (bbox, when, limit) =
        match area_params(&q, COLLECTIONS_DEFAULT_LIMIT, COLLECTIONS_MAX_LIMIT) {
            Ok(x) => x,
            Err(r) => return r,
        };
    // The cursor is an offset into a fixed order (uploads in the order they were made, then
    // world sequences); clients only ever follow the `next` link.
    let offset: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let world = &app.world;
    let world_list: Vec<&WorldSequence> = world
        .sequences()
        .iter()
        .filter(|s| s.on_panoramax)
        .filter(|s| bbox.is_none_or(|b| b.intersects(&world.extent(s))))
        .filter(|s| {
            when.is_none_or(|i| {
                let imgs = world.sequence_images(s);
                match (imgs.first(), imgs.last()) {
                    (Some(a), Some(b)) => i.overlaps(a.captured_at_ms, b.captured_at_ms),
                    _ => false,
                }
            })
        })
        .collect();
    let st = lock(&app.pnx);
    let uploaded: Vec<Value> = st
        .collections
        .iter()
        .filter_map(|c| visible_collection(&app, &st, &c.id, viewer))
        // GeoVisio lists only ready collections here, even to their owner (who finds the
        // others under /users/me/collection).
        .filter(|(_, phase)| *phase == SetPhase::Ready)
        .filter(|(c, _)| {
            let pics = st.collection_pictures(c, viewer);
            let in_box = bbox.is_none_or(|b| {
                pics.iter().any(|p| {
                    p.meta
                        .position()
                        .is_some_and(|(lat, lon)| b.contains(lat, lon))
                })
            });
            let times: Vec<i64> = pics
                .iter()
                .filter_map(|p| p.meta.captured_at)
                .map(ms)
                .collect();
            let in_time = when.is_none_or(|i| match (times.iter().min(), times.iter().max()) {
                (Some(a), Some(b)) => i.overlaps(*a, *b),
                _ => false,
            });
            in_box && in_time
        })
        .map(|(c, phase)| collection_json(&app, &st, c, phase, viewer))
        .collect();
    let total = world_list.len() + uploaded.len();
    let page: Vec<Value> = uploaded
        .into_iter()
        .chain(world_list.iter().map(|s| world_collection_json(&app, s)))
        .skip(offset)
        .take(limit)
        .collect();
    let mut links = vec![
        json!({"rel": "root", "type": "application/json", "href": app.url("/panoramax/api")}),
        json!({"rel": "self", "type": "application/json", "href": page_url(&app, &q, limit, offset)}),
    ];
    if offset > 0 {
        links.push(json!({"rel": "first", "type": "application/json", "href": page_url(&app, &q, limit, 0)}));
        links.push(json!({"rel": "prev", "type": "application/json",
                          "href": page_url(&app, &q, limit, offset.saturating_sub(limit))}));
    }
    if offset + limit < total {
        links.push(json!({"rel": "next", "type": "application/json",
                          "href": page_url(&app, &q, limit, offset + limit)}));
    }
    json_response(
        StatusCode::OK,
        &json!({"collections": page, "links": links}),
    )
}

/// `/api/collections` with the same filters, at `offset`.
fn page_url(app: &App, q: &HashMap<String, String>, limit: usize, offset: usize) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for k in ["bbox", "datetime"] {
        if let Some(v) = q.get(k) {
            ser.append_pair(k, v);
        }
    }
    ser.append_pair("limit", &limit.to_string());
    if offset > 0 {
        ser.append_pair("cursor", &offset.to_string());
    }
    app.url(&format!("/panoramax/api/collections?{}", ser.finish()))
}
