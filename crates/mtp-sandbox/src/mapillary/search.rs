//! `GET {graph}/images`: uploaded images and the seeded world's, by `image_ids`,
//! `sequence_id`, `sequence_ids` or `bbox`, with the filters clients use (PROTOCOLS §2.6, §6).
//!
//! As the Graph API does: at most `limit` (≤ 2000) images and no cursor to the rest (the
//! spec says not to rely on `paging.next`, so none is sent), and a `bbox` over
//! [`crate::SandboxConfig::mapillary_max_bbox_sqdeg`] is refused as a heavy query (HTTP 500,
//! `OAuthException` code 1) instead of being answered.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};

use super::graph::{IMAGE_FIELDS, fields_param, image_json, nonexisting_field};
use super::processing::Image;
use super::{bad_request, graph_error, user};
use crate::app::{App, AppRef, json_response};
use crate::auth::{Service, USERS};
use crate::state::lock;
use crate::world::{WorldBbox, WorldImage, thumb};

/// The largest `limit` `/images` accepts (and its default).
const MAX_LIMIT: usize = 2000;

const HEAVY_QUERY: &str =
    "Please reduce the amount of data you're asking for, then retry your request";

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

/// The filters of one `/images` query.
struct Filter {
    bbox: Option<WorldBbox>,
    image_ids: Option<Vec<String>>,
    /// `sequence_id`, or the comma-separated `sequence_ids`: images of these sequences only.
    sequences: Option<Vec<String>>,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    creator: Option<String>,
    is_pano: Option<bool>,
    organization: Option<String>,
}

impl Filter {
    fn parse(q: &HashMap<String, String>) -> Result<Filter, Response> {
        let bbox = match q.get("bbox") {
            Some(b) => {
                let v: Option<Vec<f64>> = b.split(',').map(|x| x.trim().parse().ok()).collect();
                match v.as_deref() {
                    Some(&[a, b, c, d]) if a <= c && b <= d => Some(WorldBbox::new(a, b, c, d)),
                    _ => {
                        return Err(bad_request(
                            "(#100) bbox must be minLon,minLat,maxLon,maxLat",
                        ));
                    }
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
        let mut sequences: Option<Vec<String>> = q.get("sequence_ids").map(|s| {
            s.split(',')
                .map(|x| x.trim().to_owned())
                .filter(|x| !x.is_empty())
                .collect()
        });
        if let Some(one) = q.get("sequence_id") {
            sequences
                .get_or_insert_with(Vec::new)
                .push(one.trim().to_owned());
        }
        if bbox.is_none() && image_ids.is_none() && sequences.is_none() {
            return Err(bad_request(
                "(#100) One of bbox, image_ids, sequence_id or sequence_ids is required",
            ));
        }
        let mut bounds = [None, None];
        for (i, k) in ["start_captured_at", "end_captured_at"].iter().enumerate() {
            if let Some(v) = q.get(*k) {
                match parse_time_ms(v) {
                    Some(ms) => bounds[i] = Some(ms),
                    None => return Err(bad_request(&format!("(#100) Invalid {k}: {v}"))),
                }
            }
        }
        let is_pano = match q.get("is_pano").map(|v| v.trim().to_ascii_lowercase()) {
            None => None,
            Some(v) if v == "true" || v == "1" => Some(true),
            Some(v) if v == "false" || v == "0" => Some(false),
            Some(v) => {
                return Err(bad_request(&format!(
                    "(#100) is_pano must be a boolean, got {v}"
                )));
            }
        };
        Ok(Filter {
            bbox,
            image_ids,
            sequences,
            start_ms: bounds[0],
            end_ms: bounds[1],
            creator: q.get("creator_username").cloned(),
            is_pano,
            organization: q.get("organization_id").cloned(),
        })
    }

    /// Whether an image with these properties passes every filter but `image_ids` and
    /// the sequences (which pick the candidates).
    fn keeps(
        &self,
        pos: Option<(f64, f64)>,
        at: Option<i64>,
        creator: &str,
        pano: bool,
        org: Option<&str>,
    ) -> bool {
        self.bbox
            .is_none_or(|b| pos.is_some_and(|(lat, lon)| b.contains(lat, lon)))
            && self.start_ms.is_none_or(|s| at.is_some_and(|t| t >= s))
            && self.end_ms.is_none_or(|e| at.is_some_and(|t| t <= e))
            && self.creator.as_deref().is_none_or(|c| c == creator)
            && self.is_pano.is_none_or(|p| p == pano)
            && self.organization.as_deref().is_none_or(|o| org == Some(o))
    }
}

enum Hit<'a> {
    Uploaded(&'a Image),
    World(&'a WorldImage),
}

impl Hit<'_> {
    /// Oldest capture first, then by id (as numbers: uploads have the larger ones).
    fn sort_key(&self) -> (Option<i64>, u64) {
        match self {
            Hit::Uploaded(i) => (i.meta.captured_at_ms(), i.id.parse().unwrap_or(u64::MAX)),
            Hit::World(w) => (
                Some(w.captured_at_ms),
                w.mapillary_id().parse().unwrap_or(0),
            ),
        }
    }
}

pub(super) async fn images(
    State(app): State<AppRef>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = user(&app, &headers, q.get("access_token").map(String::as_str)) {
        return r;
    }
    let f = match Filter::parse(&q) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => MAX_LIMIT,
        Some(Ok(l)) if l >= 1 => l.min(MAX_LIMIT),
        Some(_) => return bad_request("(#100) limit must be a positive integer"),
    };
    let fields = fields_param(&q);
    if let Some(bad) = fields.iter().find(|f| !IMAGE_FIELDS.contains(&f.as_str())) {
        return nonexisting_field(bad, "Image");
    }
    if f.bbox
        .is_some_and(|b| b.area() > app.cfg.mapillary_max_bbox_sqdeg)
    {
        return graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            HEAVY_QUERY,
            "OAuthException",
            1,
        );
    }

    let world = &app.world;
    let st = lock(&app.mly);
    let mut hits: Vec<Hit<'_>> = st
        .images
        .iter()
        .filter(|i| i.visible())
        .filter(|i| f.image_ids.as_ref().is_none_or(|ids| ids.contains(&i.id)))
        .filter(|i| {
            f.sequences
                .as_ref()
                .is_none_or(|s| s.contains(&i.sequence_id))
        })
        .filter(|i| {
            f.keeps(
                i.meta.position(),
                i.meta.captured_at_ms(),
                USERS[i.user].username,
                i.meta.is_pano,
                i.organization_id.as_deref(),
            )
        })
        .map(Hit::Uploaded)
        .collect();
    let world_candidates: Box<dyn Iterator<Item = &WorldImage>> = if let Some(ids) = &f.image_ids {
        Box::new(ids.iter().filter_map(|id| world.mapillary_image(id)))
    } else if let Some(keys) = &f.sequences {
        Box::new(
            keys.iter()
                .filter_map(|key| world.mapillary_sequence(key))
                .flat_map(|s| world.sequence_images(s).iter()),
        )
    } else if let Some(b) = f.bbox {
        Box::new(world.in_bbox_on(b, Service::Mapillary))
    } else {
        Box::new(std::iter::empty())
    };
    hits.extend(
        world_candidates
            .filter(|w| {
                f.sequences.as_ref().is_none_or(|keys| {
                    let key = world.sequence_of(w).mapillary_key();
                    keys.contains(&key)
                })
            })
            .filter(|w| {
                let seq = world.sequence_of(w);
                f.keeps(
                    Some((w.lat, w.lon)),
                    Some(w.captured_at_ms),
                    &world.user_of(seq).username,
                    seq.is_pano,
                    None,
                )
            })
            .map(Hit::World),
    );
    hits.sort_by_cached_key(Hit::sort_key);
    hits.dedup_by_key(|h| h.sort_key());
    hits.truncate(limit);
    let mut data = Vec::with_capacity(hits.len());
    for h in hits {
        let v = match h {
            Hit::Uploaded(i) => image_json(&app, i, &fields),
            Hit::World(w) => world_image_json(&app, w, &fields),
        };
        match v {
            Ok(v) => data.push(v),
            Err(r) => return r,
        }
    }
    json_response(StatusCode::OK, &json!({"data": data}))
}

/// A world image as an Image node with `fields`.
pub(super) fn world_image_json(
    app: &App,
    img: &WorldImage,
    fields: &[String],
) -> Result<Value, Response> {
    let world = &app.world;
    let seq = world.sequence_of(img);
    let owner = world.user_of(seq);
    let id = img.mapillary_id();
    let mut out = serde_json::Map::new();
    out.insert("id".into(), json!(id));
    let point = json!({"type": "Point", "coordinates": [img.lon, img.lat]});
    let (make, model) = seq.camera();
    let (width, height) = seq.size();
    for f in fields {
        let v = match f.as_str() {
            "id" | "organization" => continue,
            "altitude" | "computed_altitude" => json!(seq.altitude),
            "camera_type" => json!(if seq.is_pano {
                "spherical"
            } else {
                "perspective"
            }),
            "captured_at" => json!(img.captured_at_ms),
            "compass_angle" | "computed_compass_angle" => {
                json!((f64::from(img.heading) * 100.0).round() / 100.0)
            }
            "geometry" | "computed_geometry" => point.clone(),
            "creator" => json!({"id": owner.mapillary_id, "username": owner.username}),
            "height" => json!(height),
            "width" => json!(width),
            "is_pano" => json!(seq.is_pano),
            "make" => json!(make),
            "model" => json!(model),
            "sequence" => json!(seq.mapillary_key()),
            "thumb_256_url" | "thumb_1024_url" | "thumb_2048_url" | "thumb_original_url" => {
                json!(app.url(&format!("/mapillary/graph/sandbox/world/{id}/thumb")))
            }
            other => return Err(nonexisting_field(other, "Image")),
        };
        out.insert(f.clone(), v);
    }
    Ok(Value::Object(out))
}

/// Sandbox-only: what a world image's `thumb_*_url` points to.
pub(super) async fn world_thumb(
    State(app): State<AppRef>,
    Path(image_id): Path<String>,
) -> Response {
    match app.world.mapillary_image(&image_id) {
        Some(img) => thumb::response(app.world.sequence_of(img)),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
