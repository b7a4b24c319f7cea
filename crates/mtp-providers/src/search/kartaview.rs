//! KartaView `POST {api}/1.0/list/nearby-photos/` (PROTOCOLS §6): photos in a box, a page
//! of at most 1000 at a time, more pages while a page comes back full. It filters by
//! nothing else, so time, user and 360° are checked here.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::StreamExt as _;
use serde_json::Value;
use url::Url;

use super::{Bbox, Dedup, FoundImage, Patience, SearchQuery, SearchSummary, Sink, patiently};
use crate::config::PageTemplate;
use crate::error::ProviderError;
use crate::http::{flex_f64, flex_i64, str_field};
use crate::kartaview::{KartaViewClient, pano_flag};

/// The most photos a page holds.
pub const PAGE_SIZE: usize = 1000;

/// Stops a server that never ends its pages (a million photos).
const MAX_PAGES: u32 = 1000;

const SERVICE: mtp_core::Destination = mtp_core::Destination::Kartaview;

/// v1 coordinates: `lat,lng`.
fn corner(lat: f64, lon: f64) -> String {
    format!("{lat},{lon}")
}

/// `shot_date` (`2024-05-01 08:30:00`, UTC) or `date_added` into epoch ms.
fn shot_ms(item: &Value) -> Option<i64> {
    let text = str_field(item.get("shot_date")).or_else(|| str_field(item.get("date_added")))?;
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let at = time::PrimitiveDateTime::parse(text.get(..19)?, &format).ok()?;
    i64::try_from(at.assume_utc().unix_timestamp_nanos() / 1_000_000).ok()
}

/// A thumbnail as KartaView gives it: a full address, or a path on its web site
/// (`storage6/files/photo/…`, which Rapid's KartaView layer loads from `kartaview.org`), i.e.
/// beside the sequence pages. Without a site, on the API's host.
fn thumb(item: &Value, site: &Url) -> Option<String> {
    let path = str_field(item.get("lth_name")).or_else(|| str_field(item.get("th_name")))?;
    if path.starts_with("http://") || path.starts_with("https://") {
        return Some(path);
    }
    site.join(path.trim_start_matches('/'))
        .ok()
        .map(String::from)
}

/// Where KartaView's web site is: the sequence page's address up to `details/`
/// (`https://kartaview.org/` for `https://kartaview.org/details/{sequence_id}`), else the
/// API's.
fn site_base(sequence_page: &PageTemplate, api: &Url) -> Url {
    let page = sequence_page.as_str();
    page.find("details/")
        .and_then(|at| Url::parse(&page[..at]).ok())
        .unwrap_or_else(|| api.clone())
}

fn found(item: &Value, site: &Url, sequence_page: &PageTemplate) -> Option<FoundImage> {
    let id = flex_i64(item.get("id"))
        .map(|n| n.to_string())
        .or_else(|| str_field(item.get("id")))?;
    let sequence_id = flex_i64(item.get("sequence_id")).map(|n| n.to_string());
    Some(FoundImage {
        service: SERVICE,
        lat: flex_f64(item.get("lat"))?,
        lon: flex_f64(item.get("lng")).or_else(|| flex_f64(item.get("lon")))?,
        captured_at_ms: shot_ms(item),
        heading: flex_f64(item.get("heading")),
        page_url: sequence_id
            .as_ref()
            .map(|s| sequence_page.fill(&[("sequence_id", s)])),
        sequence_id,
        user: str_field(item.get("username")),
        is_pano: pano_flag(item),
        thumb_url: thumb(item, site),
        id,
    })
}

/// Sequences looked up for whether they are 360°, at most, in one search.
const MAX_PANO_LOOKUPS: usize = 200;

/// Look-ups under way at once.
const PANO_LOOKUPS_AT_ONCE: usize = 8;

/// Gives the photos whose nearby item does not say whether it is 360° (the documented item
/// has no field for it, PROTOCOLS §6) their sequence's answer, from its first photo in v2,
/// as Rapid's KartaView layer reads photos: one look-up a sequence (a few at once), kept
/// for the search. A look-up that fails, or past [`MAX_PANO_LOOKUPS`], leaves the photos
/// unknown.
async fn learn_pano(
    client: &KartaViewClient,
    photos: &mut [FoundImage],
    pano_of: &mut HashMap<String, Option<bool>>,
) {
    let mut wanted: Vec<String> = Vec::new();
    for photo in photos.iter().filter(|p| p.is_pano.is_none()) {
        if let Some(sequence) = &photo.sequence_id
            && !pano_of.contains_key(sequence)
            && !wanted.contains(sequence)
            && pano_of.len() + wanted.len() < MAX_PANO_LOOKUPS
        {
            wanted.push(sequence.clone());
        }
    }
    let answers: Vec<(String, Option<bool>)> = futures::stream::iter(wanted)
        .map(|sequence| async move {
            let answer = match client.sequence_is_pano(&sequence).await {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(sequence, error = %e, "KartaView: could not look up whether a sequence is 360°");
                    None
                }
            };
            (sequence, answer)
        })
        .buffer_unordered(PANO_LOOKUPS_AT_ONCE)
        .collect()
        .await;
    pano_of.extend(answers);
    for photo in photos.iter_mut().filter(|p| p.is_pano.is_none()) {
        photo.is_pano = photo
            .sequence_id
            .as_ref()
            .and_then(|s| pano_of.get(s).copied().flatten());
    }
}

/// Every photo in `query.bbox` that matches, sent to `sink` a page at a time.
pub async fn search(
    client: &KartaViewClient,
    query: &SearchQuery,
    sequence_page: &PageTemplate,
    patience: Patience,
    sink: Sink<'_>,
) -> Result<SearchSummary, ProviderError> {
    let Some(area) = query.bbox else {
        return Err(ProviderError::invalid(
            SERVICE,
            "KartaView is searched by area: give a box or a place and a radius",
        ));
    };
    let summary = Mutex::new(SearchSummary::default());
    let out = Dedup::new(sink, &summary);
    let url = client.url(&["1.0", "list", "nearby-photos", ""])?;
    let site = site_base(sequence_page, client.api_url());
    let mut unknown_pano = 0usize;
    let mut pano_of = HashMap::new();
    for page in 1..=MAX_PAGES {
        let form = [
            ("bbTopLeft", corner(area.max_lat, area.min_lon)),
            ("bbBottomRight", corner(area.min_lat, area.max_lon)),
            ("ipp", PAGE_SIZE.to_string()),
            ("page", page.to_string()),
        ];
        let (_, value) = patiently(patience, &summary, || {
            client.call_ok(client.http().post(url.clone()).form(&form))
        })
        .await?;
        let items = value
            .get("currentPageItems")
            .or_else(|| value.pointer("/osv/currentPageItems"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let count = items.len();
        let mut photos: Vec<FoundImage> = items
            .iter()
            .filter_map(|i| found(i, &site, sequence_page))
            .filter(|f| area.contains(f.lat, f.lon))
            .filter(|f| query.in_time(f.captured_at_ms))
            .filter(|f| query.by_user(f.user.as_deref()))
            .collect();
        if query.pano_only {
            learn_pano(client, &mut photos, &mut pano_of).await;
        }
        let photos: Vec<FoundImage> = photos
            .into_iter()
            .filter(|f| {
                if query.pano_only && f.is_pano.is_none() {
                    unknown_pano += 1;
                }
                query.pano_ok(f.is_pano)
            })
            .collect();
        out.send(photos);
        if count < PAGE_SIZE {
            break;
        }
        if page == MAX_PAGES {
            super::bump(&summary, |s| {
                s.incomplete.push(format!(
                    "KartaView has more than {} photos here; only the first {} are shown. Choose a smaller area.",
                    PAGE_SIZE * MAX_PAGES as usize,
                    PAGE_SIZE * MAX_PAGES as usize
                ));
            });
        }
    }
    let mut summary = summary
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if unknown_pano > 0 {
        summary.incomplete.push(format!(
            "{unknown_pano} KartaView photos do not say whether they are 360°, so they were left out."
        ));
    }
    Ok(summary)
}

/// A box's corners as the form wants them (for tests).
pub fn form_corners(area: &Bbox) -> (String, String) {
    (
        corner(area.max_lat, area.min_lon),
        corner(area.min_lat, area.max_lon),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_v1_item_reads_with_strings_for_numbers() {
        let api = Url::parse("https://api.openstreetcam.org").unwrap();
        let page = PageTemplate::new("https://kartaview.org/details/{sequence_id}");
        let item = json!({"id": "99", "lat": "48.85", "lng": "2.35", "heading": "87.5",
            "shot_date": "2024-05-01 08:30:00", "username": "anna", "sequence_id": "7",
            "sequence_index": "3", "lth_name": "storage1/files/photo/lth/99.jpg"});
        let site = site_base(&page, &api);
        assert_eq!(site.as_str(), "https://kartaview.org/");
        let f = found(&item, &site, &page).unwrap();
        assert_eq!(f.id, "99");
        assert_eq!((f.lat, f.lon, f.heading), (48.85, 2.35, Some(87.5)));
        assert_eq!(f.captured_at_ms, Some(1_714_552_200_000));
        assert_eq!(f.sequence_id.as_deref(), Some("7"));
        assert_eq!(
            f.page_url.as_deref(),
            Some("https://kartaview.org/details/7")
        );
        assert_eq!(
            f.thumb_url.as_deref(),
            Some("https://kartaview.org/storage1/files/photo/lth/99.jpg")
        );
        assert_eq!(f.is_pano, None);
        assert!(found(&json!({"id": 1, "lat": "x", "lng": 2}), &site, &page).is_none());
        // A page template without `details/`: thumbnails on the API's host.
        assert_eq!(site_base(&PageTemplate::new("x/{sequence_id}"), &api), api);
    }

    #[test]
    fn the_corners_go_top_left_then_bottom_right() {
        let b = Bbox::new(2.3, 48.8, 2.4, 48.9).unwrap();
        assert_eq!(
            form_corners(&b),
            ("48.9,2.3".to_string(), "48.8,2.4".to_string())
        );
    }
}
