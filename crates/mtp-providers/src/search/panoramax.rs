//! Panoramax `GET {instance}/api/search` (PROTOCOLS §6): a GeoJSON FeatureCollection of at
//! most `limit` (≤ 10,000) pictures and no next link. A full reply means there may be
//! more, so the box is cut in four and each quarter asked again. A user's own pictures
//! are found through their collections (`/api/users/me/collection`).

use std::collections::VecDeque;
use std::sync::Mutex;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;

use super::{
    Bbox, Dedup, FoundImage, Patience, SearchQuery, SearchSummary, Sink, patiently, rfc3339_ms,
};
use crate::config::PageTemplate;
use crate::error::ProviderError;
use crate::http::{self, str_field};
use crate::panoramax::PanoramaxClient;

const SERVICE: mtp_core::Destination = mtp_core::Destination::Panoramax;

/// The largest `limit` `/api/search` takes.
pub const REPLY_CAP: usize = 10_000;

/// Collections named in one query (keeps the address short).
const COLLECTIONS_PER_QUERY: usize = 40;

/// Pages of a user's collection list followed at most.
const MAX_COLLECTION_PAGES: usize = 200;

/// How the area is cut and asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Narrowing {
    /// `limit` sent (the reply is "full" at this many).
    pub limit: usize,
    /// A full box narrower than this is not cut again (about 50 m).
    pub min_tile_side_deg: f64,
    pub concurrency: usize,
    pub patience: Patience,
}

impl Default for Narrowing {
    fn default() -> Self {
        Narrowing {
            limit: REPLY_CAP,
            min_tile_side_deg: 0.0005,
            concurrency: 2,
            patience: Patience::default(),
        }
    }
}

/// `datetime=` for a time range: an instant pair with `..` for an open end.
fn datetime_param(query: &SearchQuery) -> Option<String> {
    let end = |ms: Option<i64>| ms.and_then(http::rfc3339_utc);
    match (end(query.from_ms), end(query.to_ms)) {
        (None, None) => None,
        (from, to) => Some(format!(
            "{}/{}",
            from.unwrap_or_else(|| "..".into()),
            to.unwrap_or_else(|| "..".into())
        )),
    }
}

/// The producer's name: `providers[]` with the `producer` role (STAC), or GeoVisio's own
/// `geovisio:producer`.
fn producer(item: &Value) -> Option<String> {
    let providers = item
        .get("providers")
        .or_else(|| item.pointer("/properties/providers"))
        .and_then(Value::as_array);
    providers
        .into_iter()
        .flatten()
        .find(|p| {
            p.get("roles")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|r| r.as_str() == Some("producer")))
        })
        .and_then(|p| str_field(p.get("name")))
        .or_else(|| str_field(item.pointer("/properties/geovisio:producer")))
}

fn found(
    item: &Value,
    instance: &str,
    picture_page: &PageTemplate,
    viewer_page: bool,
) -> Option<FoundImage> {
    let id = str_field(item.get("id"))?;
    let coords = item.pointer("/geometry/coordinates")?.as_array()?;
    let (lon, lat) = (coords.first()?.as_f64()?, coords.get(1)?.as_f64()?);
    let props = item.get("properties");
    let collection = str_field(item.get("collection"));
    let fov = props
        .and_then(|p| p.pointer("/pers:interior_orientation/field_of_view"))
        .and_then(Value::as_f64);
    let page_url = viewer_page.then(|| {
        picture_page.fill(&[
            ("instance", instance),
            ("picture_id", &id),
            ("collection_id", collection.as_deref().unwrap_or_default()),
        ])
    });
    Some(FoundImage {
        service: SERVICE,
        lon,
        lat,
        captured_at_ms: props
            .and_then(|p| p.get("datetime"))
            .and_then(Value::as_str)
            .and_then(rfc3339_ms),
        heading: props
            .and_then(|p| p.get("view:azimuth"))
            .and_then(Value::as_f64),
        sequence_id: collection,
        user: producer(item),
        is_pano: Some(fov.is_some_and(|f| f >= 360.0)),
        page_url,
        thumb_url: str_field(item.pointer("/assets/thumb/href")),
        id,
    })
}

/// The ids of the signed-in user's collections, following `rel=next`.
pub async fn my_collection_ids(
    client: &PanoramaxClient,
    patience: Patience,
) -> Result<Vec<String>, ProviderError> {
    let summary = Mutex::new(SearchSummary::default());
    let mut url = client.url(&["users", "me", "collection"])?;
    let mut ids = Vec::new();
    for _ in 0..MAX_COLLECTION_PAGES {
        // An account without any sequence: GeoVisio answers 404 "No data loaded".
        let Some(page) = patiently(patience, &summary, || {
            client.user_collection_page("GET /api/users/me/collection", &url)
        })
        .await?
        else {
            break;
        };
        let links = page
            .get("links")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for link in &links {
            if link.get("rel").and_then(Value::as_str) != Some("child") {
                continue;
            }
            let id = str_field(link.get("id")).or_else(|| {
                str_field(link.get("href"))
                    .and_then(|h| h.trim_end_matches('/').rsplit('/').next().map(String::from))
            });
            ids.extend(id);
        }
        // The token goes only to the instance: a link GeoVisio built from another Host (a
        // proxy's inside address, plain http) is moved onto it.
        let next = links
            .iter()
            .find(|l| l.get("rel").and_then(Value::as_str) == Some("next"))
            .and_then(|l| str_field(l.get("href")))
            .and_then(|h| client.on_instance(&url, &h).ok());
        match next {
            Some(n) if n != url => url = n,
            _ => break,
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// What to search within: the whole instance, or only some collections.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    /// `Some`: only these collections (a user's own); an empty list finds nothing.
    pub collections: Option<Vec<String>>,
    /// Whether `query.user` is already covered by `collections` (the signed-in user).
    pub user_is_scope: bool,
}

/// Every picture in `query.bbox` that matches, sent to `sink` a reply at a time.
pub async fn search(
    client: &PanoramaxClient,
    query: &SearchQuery,
    scope: &Scope,
    picture_page: &PageTemplate,
    narrowing: Narrowing,
    sink: Sink<'_>,
) -> Result<SearchSummary, ProviderError> {
    let Some(area) = query.bbox else {
        return Err(ProviderError::invalid(
            SERVICE,
            "Panoramax is searched by area: give a box or a place and a radius",
        ));
    };
    let summary = Mutex::new(SearchSummary::default());
    let out = Dedup::new(sink, &summary);
    let groups: Vec<Option<String>> = match &scope.collections {
        None => vec![None],
        Some(ids) if ids.is_empty() => {
            return Ok(summary.into_inner().unwrap_or_default());
        }
        Some(ids) => ids
            .chunks(COLLECTIONS_PER_QUERY)
            .map(|c| Some(c.join(",")))
            .collect(),
    };
    let instance = client
        .instance_url()
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let viewer_page = !picture_page.as_str().is_empty();
    let url = client.url(&["search"])?;
    let datetime = datetime_param(query);
    let mut waiting: VecDeque<(Bbox, Option<String>)> =
        groups.into_iter().map(|g| (area, g)).collect();
    let mut asked = FuturesUnordered::new();
    let mut crowded = 0usize;
    loop {
        while asked.len() < narrowing.concurrency.max(1) {
            let Some((tile, group)) = waiting.pop_front() else {
                break;
            };
            let mut params = vec![
                ("bbox", tile.param()),
                ("limit", narrowing.limit.to_string()),
            ];
            params.extend(datetime.clone().map(|d| ("datetime", d)));
            params.extend(group.clone().map(|g| ("collections", g)));
            let (summary, url) = (&summary, &url);
            asked.push(async move {
                let reply = patiently(narrowing.patience, summary, || {
                    client.call_json(
                        "GET /api/search",
                        client.http().get(url.clone()).query(&params),
                    )
                })
                .await;
                (tile, group, reply)
            });
        }
        let Some((tile, group, reply)) = asked.next().await else {
            break;
        };
        let reply = reply?;
        let features = reply
            .get("features")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let full = features.len() >= narrowing.limit;
        out.send(
            features
                .iter()
                .filter_map(|f| found(f, &instance, picture_page, viewer_page))
                .filter(|f| area.contains(f.lat, f.lon))
                .filter(|f| query.in_time(f.captured_at_ms))
                .filter(|f| scope.user_is_scope || query.by_user(f.user.as_deref()))
                .filter(|f| query.pano_ok(f.is_pano))
                .collect(),
        );
        if full {
            if tile.width().min(tile.height()) / 2.0 >= narrowing.min_tile_side_deg {
                waiting.extend(tile.quarters().into_iter().map(|q| (q, group.clone())));
            } else {
                crowded += 1;
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
            "{crowded} spots of about 50 m hold more than {} Panoramax pictures each: only that many of each are shown. Narrow the time range to see the rest.",
            narrowing.limit
        ));
    }
    Ok(summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stac_item_reads_into_a_found_image() {
        let item = json!({"type": "Feature", "id": "p1", "collection": "c1",
            "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
            "providers": [{"name": "anna", "roles": ["producer"]}],
            "properties": {"datetime": "2024-05-01T08:30:00+00:00", "view:azimuth": 90,
                "pers:interior_orientation": {"field_of_view": 360}},
            "assets": {"thumb": {"href": "https://px.example/thumb.jpg"}}});
        let page = PageTemplate::new("{instance}/?focus=pic&pic={picture_id}");
        let f = found(&item, "https://px.example", &page, true).unwrap();
        assert_eq!(f.id, "p1");
        assert_eq!(f.sequence_id.as_deref(), Some("c1"));
        assert_eq!(f.user.as_deref(), Some("anna"));
        assert_eq!(f.is_pano, Some(true));
        assert_eq!(f.captured_at_ms, Some(1_714_552_200_000));
        assert_eq!(
            f.page_url.as_deref(),
            Some("https://px.example/?focus=pic&pic=p1")
        );
        let older = json!({"id": "p2", "geometry": {"coordinates": [2.0, 48.0]},
            "properties": {"geovisio:producer": "bob"}});
        assert_eq!(
            found(&older, "x", &page, true).unwrap().user.as_deref(),
            Some("bob")
        );
    }

    #[test]
    fn a_time_range_becomes_an_interval_with_open_ends() {
        let q = |from, to| SearchQuery {
            from_ms: from,
            to_ms: to,
            ..SearchQuery::default()
        };
        assert_eq!(datetime_param(&q(None, None)), None);
        assert_eq!(
            datetime_param(&q(Some(0), None)).as_deref(),
            Some("1970-01-01T00:00:00Z/..")
        );
        assert_eq!(
            datetime_param(&q(None, Some(1000))).as_deref(),
            Some("../1970-01-01T00:00:01Z")
        );
    }
}
