//! KartaView `POST {api}/1.0/list/nearby-photos/` (PROTOCOLS §6): photos in a box, a page
//! of at most 1000 at a time, more pages while a page comes back full. It filters by
//! nothing else, so time, user and 360° are checked here.

use std::sync::Mutex;

use serde_json::Value;
use url::Url;

use super::{Bbox, Dedup, FoundImage, Patience, SearchQuery, SearchSummary, Sink, patiently};
use crate::config::PageTemplate;
use crate::error::ProviderError;
use crate::http::{flex_i64, str_field};
use crate::kartaview::KartaViewClient;

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

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// A thumbnail path as KartaView gives it: a full address, or a path on the API's host
/// (⚠️ which host serves the relative ones is not documented).
fn thumb(item: &Value, api: &Url) -> Option<String> {
    let path = str_field(item.get("lth_name")).or_else(|| str_field(item.get("th_name")))?;
    if path.starts_with("http://") || path.starts_with("https://") {
        return Some(path);
    }
    api.join(&format!("/{}", path.trim_start_matches('/')))
        .ok()
        .map(String::from)
}

fn found(item: &Value, api: &Url, sequence_page: &PageTemplate) -> Option<FoundImage> {
    let id = flex_i64(item.get("id"))
        .map(|n| n.to_string())
        .or_else(|| str_field(item.get("id")))?;
    let sequence_id = flex_i64(item.get("sequence_id")).map(|n| n.to_string());
    let fov = number(item.get("field_of_view")).or_else(|| number(item.get("fieldOfView")));
    let projection = str_field(item.get("projection"));
    let is_pano = match (fov, projection.as_deref()) {
        (Some(f), _) => Some(f >= 360.0),
        (None, Some(p)) => Some(p.eq_ignore_ascii_case("SPHERE")),
        (None, None) => None,
    };
    Some(FoundImage {
        service: SERVICE,
        lat: number(item.get("lat"))?,
        lon: number(item.get("lng")).or_else(|| number(item.get("lon")))?,
        captured_at_ms: shot_ms(item),
        heading: number(item.get("heading")),
        page_url: sequence_id
            .as_ref()
            .map(|s| sequence_page.fill(&[("sequence_id", s)])),
        sequence_id,
        user: str_field(item.get("username")),
        is_pano,
        thumb_url: thumb(item, api),
        id,
    })
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
    let api = client.api_url().clone();
    let mut unknown_pano = 0usize;
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
        let photos: Vec<FoundImage> = items
            .iter()
            .filter_map(|i| found(i, &api, sequence_page))
            .filter(|f| area.contains(f.lat, f.lon))
            .filter(|f| query.in_time(f.captured_at_ms))
            .filter(|f| query.by_user(f.user.as_deref()))
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
        let f = found(&item, &api, &page).unwrap();
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
            Some("https://api.openstreetcam.org/storage1/files/photo/lth/99.jpg")
        );
        assert_eq!(f.is_pano, None);
        assert!(found(&json!({"id": 1, "lat": "x", "lng": 2}), &api, &page).is_none());
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
