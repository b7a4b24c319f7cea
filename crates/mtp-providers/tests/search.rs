//! The search clients against the emulators' seeded world, which page and cap as the real
//! services do: every image in the area comes back exactly once, however the service
//! splits its answer.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Mutex;

use common::client;
use mtp_core::secret::Secret;
use mtp_providers::config::PageTemplate;
use mtp_providers::search::{Bbox, FoundImage, SearchQuery, kartaview, mapillary, panoramax};
use mtp_providers::{KartaViewClient, MapillaryClient, PanoramaxClient};
use mtp_sandbox::{Sandbox, SandboxConfig, Service, WorldBbox, WorldSpec};

const LAT: f64 = 48.8566;
const LON: f64 = 2.3522;

/// The emulators with `n` world images in a 1 km square around Paris' centre.
async fn dense(n: usize) -> Sandbox {
    Sandbox::start(SandboxConfig {
        world: WorldSpec::dense(n, LAT, LON, 1.0),
        ..SandboxConfig::default()
    })
    .await
    .unwrap()
}

fn area() -> Bbox {
    Bbox::around(LAT, LON, 600.0).unwrap()
}

fn world_box(b: &Bbox) -> WorldBbox {
    WorldBbox::new(b.min_lon, b.min_lat, b.max_lon, b.max_lat)
}

/// A Mapillary client signed in as the first sandbox user.
fn mapillary_client(sb: &Sandbox) -> MapillaryClient {
    MapillaryClient::with_urls(
        client(),
        sb.urls().mapillary_graph,
        sb.urls().mapillary_upload,
        Secret::new(sb.issue_token(Service::Mapillary, 0)),
    )
}

fn page(s: &str) -> PageTemplate {
    PageTemplate::new(s)
}

/// Collects what a search sends, checking nothing comes twice.
#[derive(Default)]
struct Found(Mutex<Vec<FoundImage>>);

impl Found {
    fn sink(&self) -> impl Fn(Vec<FoundImage>) + Send + Sync + '_ {
        |batch| self.0.lock().unwrap().extend(batch)
    }

    fn ids(&self) -> BTreeSet<String> {
        let all = self.0.lock().unwrap();
        let ids: BTreeSet<String> = all.iter().map(|i| i.id.clone()).collect();
        assert_eq!(ids.len(), all.len(), "an image came twice");
        ids
    }
}

#[tokio::test]
async fn mapillary_reads_a_crowded_area_whole_by_cutting_full_tiles() {
    let sb = dense(6_000).await;
    let mly = mapillary_client(&sb);
    let query = SearchQuery {
        bbox: Some(area()),
        ..SearchQuery::default()
    };
    let want: BTreeSet<String> = sb
        .world()
        .in_bbox_on(world_box(&area()), Service::Mapillary)
        .map(|i| i.mapillary_id())
        .collect();
    assert!(want.len() > mapillary::REPLY_CAP, "{}", want.len());
    let found = Found::default();
    let sink = found.sink();
    let summary = mapillary::search(
        &mly,
        &query,
        &page("https://www.mapillary.com/app/?pKey={image_id}"),
        mapillary::Tiling::default(),
        &sink,
    )
    .await
    .unwrap();
    assert_eq!(found.ids(), want);
    assert_eq!(summary.images, want.len());
    assert!(summary.requests > 4, "{summary:?}");
    assert!(summary.incomplete.is_empty(), "{summary:?}");

    // A box refused as too heavy is cut, not given up on: here every box over 0.0001 sq°.
    let strict = Sandbox::start(SandboxConfig {
        world: WorldSpec::dense(500, LAT, LON, 1.0),
        mapillary_max_bbox_sqdeg: 0.0001,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let mly = mapillary_client(&strict);
    let found = Found::default();
    let sink = found.sink();
    mapillary::search(
        &mly,
        &query,
        &page("x/{image_id}"),
        mapillary::Tiling::default(),
        &sink,
    )
    .await
    .unwrap();
    let want: BTreeSet<String> = strict
        .world()
        .in_bbox_on(world_box(&area()), Service::Mapillary)
        .map(|i| i.mapillary_id())
        .collect();
    assert_eq!(found.ids(), want);
}

#[tokio::test]
async fn kartaview_follows_its_pages_to_the_last_one() {
    let sb = dense(5_000).await;
    let kv = KartaViewClient::with_url(
        client(),
        sb.urls().kartaview_api,
        Secret::new(String::new()),
    );
    let want: BTreeSet<String> = sb
        .world()
        .in_bbox_on(world_box(&area()), Service::KartaView)
        .map(|i| i.kartaview_id().to_string())
        .collect();
    assert!(want.len() > kartaview::PAGE_SIZE, "{}", want.len());
    let query = SearchQuery {
        bbox: Some(area()),
        ..SearchQuery::default()
    };
    let found = Found::default();
    let sink = found.sink();
    let summary = kartaview::search(
        &kv,
        &query,
        &page("https://kartaview.org/details/{sequence_id}"),
        Default::default(),
        &sink,
    )
    .await
    .unwrap();
    assert_eq!(found.ids(), want);
    // Full pages, then one short (or empty) page that ends it.
    assert_eq!(
        summary.requests as usize,
        want.len() / kartaview::PAGE_SIZE + 1,
        "{summary:?}"
    );
    let all = found.0.lock().unwrap();
    assert!(
        all.iter()
            .all(|i| i.thumb_url.is_some() && i.page_url.is_some() && i.user.is_some())
    );
}

/// KartaView's nearby photos do not say whether they are 360° (the documented item has no
/// such field, and by default the emulator sends none): "360° only" asks v2 once a sequence,
/// and finds exactly the world's 360° photos. Their thumbnails, paths on KartaView's site,
/// load from beside the sequence pages.
#[tokio::test]
async fn kartaview_tells_360_photos_by_their_sequence() {
    let sb = dense(3_000).await;
    let kv = KartaViewClient::with_url(
        client(),
        sb.urls().kartaview_api,
        Secret::new(String::new()),
    );
    let site_page = format!(
        "{}/details/{{sequence_id}}",
        sb.urls().kartaview_api.as_str().trim_end_matches('/')
    );
    let world = sb.world();
    let in_area = || world.in_bbox_on(world_box(&area()), Service::KartaView);
    let want: BTreeSet<String> = in_area()
        .filter(|i| world.sequence_of(i).is_pano)
        .map(|i| i.kartaview_id().to_string())
        .collect();
    let sequences: BTreeSet<u64> = in_area()
        .map(|i| world.sequence_of(i).kartaview_id())
        .collect();
    assert!(!want.is_empty() && want.len() < in_area().count());
    let query = SearchQuery {
        bbox: Some(area()),
        pano_only: true,
        ..SearchQuery::default()
    };
    let search = || async {
        let found = Found::default();
        let summary = {
            let sink = found.sink();
            kartaview::search(&kv, &query, &page(&site_page), Default::default(), &sink)
                .await
                .unwrap()
        };
        (found, summary)
    };
    let (found, summary) = search().await;
    assert_eq!(found.ids(), want);
    assert!(summary.incomplete.is_empty(), "{summary:?}");
    let lookups = |sb: &Sandbox| {
        sb.requests()
            .iter()
            .filter(|r| r.endpoint.as_deref() == Some("kartaview.photos_v2"))
            .count()
    };
    assert_eq!(lookups(&sb), sequences.len(), "one look-up a sequence");
    let thumb = found.0.lock().unwrap()[0].thumb_url.clone().unwrap();
    assert!(
        thumb.contains("/kartaview/storage1/files/photo/lth/"),
        "{thumb}"
    );
    let reply = client().get(&thumb).send().await.unwrap();
    assert_eq!(reply.status(), 200, "{thumb}");

    // Items that say it themselves need no look-up.
    assert!(mtp_sandbox::Faults::parse_spec("kartaview_nearby_pano=maybe").is_err());
    sb.faults().apply_spec("kartaview_nearby_pano=on").unwrap();
    let before = lookups(&sb);
    let (found, _) = search().await;
    assert_eq!(found.ids(), want);
    assert_eq!(lookups(&sb), before);
}

#[tokio::test]
async fn panoramax_narrows_a_full_reply_as_it_has_no_next_link() {
    let sb = dense(3_000).await;
    let px = PanoramaxClient::with_url(client(), sb.urls().panoramax_instance, None);
    let want: BTreeSet<String> = sb
        .world()
        .in_bbox_on(world_box(&area()), Service::Panoramax)
        .map(|i| i.panoramax_id())
        .collect();
    let query = SearchQuery {
        bbox: Some(area()),
        ..SearchQuery::default()
    };
    let narrowing = panoramax::Narrowing {
        limit: 200,
        ..Default::default()
    };
    assert!(want.len() > narrowing.limit, "{}", want.len());
    let found = Found::default();
    let sink = found.sink();
    let summary = panoramax::search(
        &px,
        &query,
        &panoramax::Scope::default(),
        &page("{instance}/?focus=pic&pic={picture_id}"),
        narrowing,
        &sink,
    )
    .await
    .unwrap();
    assert_eq!(found.ids(), want);
    assert!(summary.requests > 4, "{summary:?}");

    // A time range is sent as an interval, and only that range comes back.
    let mid = {
        let mut times: Vec<i64> = sb
            .world()
            .in_bbox_on(world_box(&area()), Service::Panoramax)
            .map(|i| i.captured_at_ms)
            .collect();
        times.sort_unstable();
        times[times.len() / 2]
    };
    let later = SearchQuery {
        from_ms: Some(mid),
        ..query.clone()
    };
    let found = Found::default();
    let sink = found.sink();
    panoramax::search(
        &px,
        &later,
        &panoramax::Scope::default(),
        &page(""),
        narrowing,
        &sink,
    )
    .await
    .unwrap();
    let want_later: BTreeSet<String> = sb
        .world()
        .in_bbox_on(world_box(&area()), Service::Panoramax)
        .filter(|i| i.captured_at_ms >= mid)
        .map(|i| i.panoramax_id())
        .collect();
    assert_eq!(found.ids(), want_later);
    assert!(found.0.lock().unwrap().iter().all(|i| i.page_url.is_none()));
}

#[tokio::test]
async fn mapillary_filters_by_user_and_360_on_the_server() {
    let sb = dense(3_000).await;
    let mly = mapillary_client(&sb);
    let world = sb.world();
    let (user, pano) = {
        let first = world
            .in_bbox_on(world_box(&area()), Service::Mapillary)
            .find(|i| world.sequence_of(i).is_pano)
            .unwrap();
        (
            world.user_of(world.sequence_of(first)).username.clone(),
            true,
        )
    };
    let query = SearchQuery {
        bbox: Some(area()),
        user: Some(user.clone()),
        pano_only: pano,
        ..SearchQuery::default()
    };
    let found = Found::default();
    let sink = found.sink();
    mapillary::search(&mly, &query, &page("{image_id}"), Default::default(), &sink)
        .await
        .unwrap();
    let want: BTreeSet<String> = world
        .in_bbox_on(world_box(&area()), Service::Mapillary)
        .filter(|i| {
            let s = world.sequence_of(i);
            s.is_pano && world.user_of(s).username == user
        })
        .map(|i| i.mapillary_id())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(found.ids(), want);
    let asked = sb.requests();
    let search = asked
        .iter()
        .find(|r| r.endpoint.as_deref() == Some("mapillary.images"))
        .unwrap();
    let q = search.query.clone().unwrap_or_default();
    assert!(
        q.contains("creator_username=") && q.contains("is_pano=true"),
        "{q}"
    );
}
