//! Mapillary `GET {graph}/images` by box (PROTOCOLS §6): at most 2000 images a reply and
//! no cursor worth trusting, and heavy boxes are refused. So the area is cut into tiles of
//! at most 0.01 square degrees, and a tile that comes back full (or refused as too heavy)
//! is cut in four and asked again, down to a floor below which the gap is reported.

use std::collections::VecDeque;
use std::sync::Mutex;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::{Bbox, Dedup, FoundImage, Patience, SearchQuery, SearchSummary, Sink, patiently};
use crate::config::PageTemplate;
use crate::error::ProviderError;
use crate::http;
use crate::mapillary::{DataList, ImageReply, MapillaryClient, MapillaryImage};

/// The most `/images` gives in one reply.
pub const REPLY_CAP: usize = 2000;

/// What a search asks for each image.
const FIELDS: &str = "id,geometry,captured_at,compass_angle,sequence,creator,is_pano,thumb_256_url";

/// How the area is cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tiling {
    /// No query covers more than this (a third-party client's observed limit, ⚠️).
    pub max_tile_sqdeg: f64,
    /// A full tile narrower than this is not cut again (about 50 m).
    pub min_tile_side_deg: f64,
    /// Tiles asked at once.
    pub concurrency: usize,
    pub patience: Patience,
}

impl Default for Tiling {
    fn default() -> Self {
        Tiling {
            max_tile_sqdeg: 0.01,
            min_tile_side_deg: 0.0005,
            concurrency: 4,
            patience: Patience::default(),
        }
    }
}

/// Whether the Graph API turned the query down as too heavy for one request.
fn too_heavy(e: &ProviderError) -> bool {
    e.message()
        .to_ascii_lowercase()
        .contains("reduce the amount of data")
}

/// One tile's reply.
enum Tile {
    Images(Vec<MapillaryImage>),
    TooHeavy,
}

async fn fetch(
    client: &MapillaryClient,
    query: &SearchQuery,
    tile: Bbox,
    tiling: &Tiling,
    summary: &Mutex<SearchSummary>,
) -> Result<Tile, ProviderError> {
    let mut params = vec![
        ("bbox", tile.param()),
        ("limit", REPLY_CAP.to_string()),
        ("fields", FIELDS.to_string()),
    ];
    for (name, ms) in [
        ("start_captured_at", query.from_ms),
        ("end_captured_at", query.to_ms),
    ] {
        if let Some(at) = ms.and_then(http::rfc3339_utc) {
            params.push((name, at));
        }
    }
    if let Some(user) = &query.user {
        params.push(("creator_username", user.clone()));
    }
    if query.pano_only {
        params.push(("is_pano", "true".to_string()));
    }
    let url = client.graph(&["images"])?;
    let asked = patiently(tiling.patience, summary, || async {
        match client
            .get_typed::<DataList<ImageReply>>("images", url.clone(), &params)
            .await
        {
            Ok(list) => Ok(Tile::Images(
                list.data.into_iter().map(MapillaryImage::from).collect(),
            )),
            // Not worth waiting for: the same box would be refused again.
            Err(e) if too_heavy(&e) => Ok(Tile::TooHeavy),
            Err(e) => Err(e),
        }
    })
    .await?;
    Ok(asked)
}

fn found(image: MapillaryImage, image_page: &PageTemplate) -> Option<FoundImage> {
    let at = image.geometry.or(image.computed_geometry)?;
    Some(FoundImage {
        service: mtp_core::Destination::Mapillary,
        page_url: Some(image_page.fill(&[("image_id", &image.id)])),
        id: image.id,
        lon: at.lon,
        lat: at.lat,
        captured_at_ms: image.captured_at_ms,
        heading: image.compass_angle,
        sequence_id: image.sequence_id,
        user: image.creator.and_then(|c| c.username),
        is_pano: image.is_pano,
        thumb_url: image.thumb_256_url,
    })
}

/// Every image in `query.bbox` that matches, sent to `sink` tile by tile.
pub async fn search(
    client: &MapillaryClient,
    query: &SearchQuery,
    image_page: &PageTemplate,
    tiling: Tiling,
    sink: Sink<'_>,
) -> Result<SearchSummary, ProviderError> {
    let Some(area) = query.bbox else {
        return Err(ProviderError::invalid(
            mtp_core::Destination::Mapillary,
            "Mapillary is searched by area: give a box or a place and a radius",
        ));
    };
    let summary = Mutex::new(SearchSummary::default());
    let out = Dedup::new(sink, &summary);
    let mut waiting: VecDeque<Bbox> = area.tiles(tiling.max_tile_sqdeg).into();
    let mut asked = FuturesUnordered::new();
    let mut crowded = 0usize;
    loop {
        while asked.len() < tiling.concurrency.max(1) {
            let Some(tile) = waiting.pop_front() else {
                break;
            };
            let (summary, tiling) = (&summary, &tiling);
            asked.push(async move { (tile, fetch(client, query, tile, tiling, summary).await) });
        }
        let Some((tile, reply)) = asked.next().await else {
            break;
        };
        let can_cut = tile.width().min(tile.height()) / 2.0 >= tiling.min_tile_side_deg;
        match reply? {
            Tile::Images(images) => {
                let full = images.len() >= REPLY_CAP;
                out.send(
                    images
                        .into_iter()
                        .filter(|i| query.in_time(i.captured_at_ms))
                        .filter(|i| query.pano_ok(i.is_pano))
                        .filter_map(|i| found(i, image_page))
                        .filter(|f| area.contains(f.lat, f.lon))
                        .filter(|f| query.by_user(f.user.as_deref()))
                        .collect(),
                );
                if full && can_cut {
                    waiting.extend(tile.quarters());
                } else if full {
                    crowded += 1;
                }
            }
            Tile::TooHeavy if can_cut => waiting.extend(tile.quarters()),
            Tile::TooHeavy => {
                return Err(ProviderError::invalid(
                    mtp_core::Destination::Mapillary,
                    format!(
                        "Mapillary refused even a {:.0} m box as too much data; try a shorter time range",
                        tile.height() * super::METRES_PER_DEGREE
                    ),
                ));
            }
        }
    }
    drop(asked);
    drop(out);
    let mut summary = summary
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if crowded > 0 {
        summary.incomplete.push(format!(
            "{crowded} spots of about 50 m hold more than {REPLY_CAP} Mapillary images each: only {REPLY_CAP} of each are shown. Narrow the time range to see the rest."
        ));
    }
    Ok(summary)
}
