//! Search over the seeded world: Mapillary `/images` (the 2000 cap, heavy boxes, filters),
//! KartaView `nearby-photos` paging, Panoramax `/search` and `/collections`, faults on the
//! new endpoints, and the world itself (deterministic, `none`, 50,000 images).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{client, s, sandbox_with};
use mtp_sandbox::{Sandbox, Service, World, WorldBbox, WorldImage, WorldSpec};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The whole of a 5 km dense area around Paris fits in one allowed Mapillary box.
const DENSE: (f64, f64, f64) = (48.8566, 2.3522, 5.0);

fn dense(n: usize) -> WorldSpec {
    WorldSpec::dense(n, DENSE.0, DENSE.1, DENSE.2)
}

/// A box around the whole dense area (about 0.0031 square degrees).
fn dense_box() -> WorldBbox {
    WorldBbox::new(2.30, 48.82, 2.40, 48.89)
}

fn bbox_param(b: WorldBbox) -> String {
    format!("{},{},{},{}", b.min_lon, b.min_lat, b.max_lon, b.max_lat)
}

fn iso(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

async fn with_world(spec: WorldSpec) -> Sandbox {
    sandbox_with(|c| c.world = spec).await
}

async fn mly(sb: &Sandbox, query: &str) -> (u16, Value, Option<String>) {
    let token = sb.issue_token(Service::Mapillary, 0);
    let r = client()
        .get(format!("{}/images?{query}", s(&sb.urls().mapillary_graph)))
        .header("Authorization", format!("OAuth {token}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, r.json().await.unwrap(), retry)
}

fn data_ids(v: &Value, list: &str, key: &str) -> BTreeSet<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_owned())
        .collect()
}

fn expected(
    world: &World,
    service: Service,
    b: WorldBbox,
    keep: impl Fn(&WorldImage) -> bool,
) -> Vec<WorldImage> {
    world
        .in_bbox_on(b, service)
        .filter(|i| keep(i))
        .copied()
        .collect()
}

#[tokio::test]
async fn the_world_is_deterministic_and_sandbox_users_own_some_of_it() {
    let a = World::generate(&WorldSpec::default());
    let b = World::generate(&WorldSpec::default());
    assert_eq!(a.images(), b.images());
    assert_eq!(a.sequences(), b.sequences());
    assert_eq!(a.images().len(), mtp_sandbox::DEFAULT_WORLD_IMAGES);
    let other = World::generate(&WorldSpec {
        seed: 7,
        ..WorldSpec::default()
    });
    assert_ne!(a.images(), other.images());

    let sb = with_world(WorldSpec::default()).await;
    assert_eq!(sb.world().images(), a.images());
    assert_eq!(sb.state().world().sequences(), a.sequences());
    let me = mtp_sandbox::USERS[0].username;
    let mine = a
        .sequences()
        .iter()
        .filter(|s| a.user_of(s).username == me)
        .count();
    assert!(mine > 0);
    // Something right where the test photos are.
    let here = WorldBbox::new(2.3500, 48.8550, 2.3560, 48.8580);
    assert!(a.in_bbox(here).count() > 0);
}

#[tokio::test]
async fn mapillary_answers_at_most_2000_without_a_cursor() {
    let sb = with_world(dense(12_000)).await;
    let all = expected(sb.world(), Service::Mapillary, dense_box(), |_| true);
    assert!(all.len() > 2000, "{}", all.len());
    for (limit, want) in [("", 2000), ("&limit=2000", 2000), ("&limit=5000", 2000), ("&limit=10", 10)] {
        let (st, v, _) = mly(&sb, &format!("bbox={}&fields=id{limit}", bbox_param(dense_box()))).await;
        assert_eq!(st, 200);
        assert_eq!(v["data"].as_array().unwrap().len(), want, "limit {limit:?}");
        assert!(v.get("paging").is_none(), "{:?}", v.get("paging"));
    }
    // The first 2000 by capture time.
    let mut times: Vec<i64> = all.iter().map(|i| i.captured_at_ms).collect();
    times.sort_unstable();
    let (_, v, _) = mly(&sb, &format!("bbox={}&fields=captured_at", bbox_param(dense_box()))).await;
    let got: Vec<i64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["captured_at"].as_i64().unwrap())
        .collect();
    assert_eq!(got, times[..2000]);
}

#[tokio::test]
async fn mapillary_refuses_a_box_over_the_limit_as_a_heavy_query() {
    let sb = with_world(WorldSpec::default()).await;
    let (st, v, _) = mly(&sb, "bbox=2.0,48.5,2.6,49.0&fields=id").await;
    assert_eq!(st, 500);
    assert_eq!(v["error"]["type"], "OAuthException");
    assert_eq!(v["error"]["code"], 1);
    assert_eq!(
        v["error"]["message"],
        "Please reduce the amount of data you're asking for, then retry your request"
    );
    // Just under 0.01 square degrees is fine.
    let (st, _, _) = mly(&sb, "bbox=2.30,48.80,2.39,48.91").await;
    assert_eq!(st, 200);

    let sb = sandbox_with(|c| c.mapillary_max_bbox_sqdeg = 1.0).await;
    let (st, v, _) = mly(&sb, "bbox=2.0,48.5,2.6,49.0&fields=id").await;
    assert_eq!(st, 200);
    assert!(!v["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn mapillary_filters_by_time_user_and_pano() {
    let sb = with_world(WorldSpec::default()).await;
    let w = sb.world();
    let paris = WorldBbox::new(2.30, 48.82, 2.39, 48.89);
    let all = expected(w, Service::Mapillary, paris, |_| true);
    assert!(!all.is_empty() && all.len() < 2000);
    let ids = |v: Vec<WorldImage>| -> BTreeSet<String> { v.iter().map(|i| i.mapillary_id()).collect() };
    let q = |extra: &str| format!("bbox={}&fields=id{extra}", bbox_param(paris));

    let me = mtp_sandbox::USERS[0].username;
    let mine = expected(w, Service::Mapillary, paris, |i| w.user_of(w.sequence_of(i)).username == me);
    let (_, v, _) = mly(&sb, &q(&format!("&creator_username={me}"))).await;
    assert_eq!(data_ids(&v, "data", "id"), ids(mine));

    for pano in [true, false] {
        let want = expected(w, Service::Mapillary, paris, |i| w.sequence_of(i).is_pano == pano);
        let (_, v, _) = mly(&sb, &q(&format!("&is_pano={pano}"))).await;
        assert_eq!(data_ids(&v, "data", "id"), ids(want), "is_pano={pano}");
    }

    let mut times: Vec<i64> = all.iter().map(|i| i.captured_at_ms).collect();
    times.sort_unstable();
    let (from, to) = (times[times.len() / 4], times[times.len() / 2]);
    let want = expected(w, Service::Mapillary, paris, |i| (from..=to).contains(&i.captured_at_ms));
    let (_, v, _) = mly(&sb, &q(&format!("&start_captured_at={}&end_captured_at={}", iso(from), iso(to)))).await;
    assert_eq!(data_ids(&v, "data", "id"), ids(want));

    // The fields of a world image, its thumbnail, its node and its sequence.
    let img = all[0];
    let seq = w.sequence_of(&img);
    let fields = "id,geometry,captured_at,compass_angle,sequence,creator,is_pano,thumb_256_url";
    let (_, v, _) = mly(&sb, &format!("image_ids={}&fields={fields}", img.mapillary_id())).await;
    let d = &v["data"][0];
    assert_eq!(d["id"], img.mapillary_id());
    assert_eq!(d["captured_at"], img.captured_at_ms);
    assert_eq!(d["geometry"]["coordinates"][0], img.lon);
    assert_eq!(d["sequence"], seq.mapillary_key());
    assert_eq!(d["creator"]["username"], w.user_of(seq).username);
    assert_eq!(d["creator"]["id"], w.user_of(seq).mapillary_id);
    assert_eq!(d["is_pano"], seq.is_pano);
    let thumb = client().get(d["thumb_256_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    assert_eq!(&thumb.bytes().await.unwrap()[..2], &[0xFF, 0xD8]);
    let token = sb.issue_token(Service::Mapillary, 0);
    let graph = s(&sb.urls().mapillary_graph);
    let node: Value = client()
        .get(format!("{graph}/{}?fields=sequence&access_token={token}", img.mapillary_id()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(node["sequence"], seq.mapillary_key());
    let list: Value = client()
        .get(format!("{graph}/image_ids?sequence_id={}&access_token={token}", seq.mapillary_key()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), seq.len as usize);
}

#[tokio::test]
async fn a_rate_limit_fault_on_mapillary_images_says_when_to_retry() {
    let sb = with_world(WorldSpec::default()).await;
    sb.faults().rate_limit_next("mapillary.images", 1, Some(7), None);
    let (st, _, retry) = mly(&sb, "bbox=2.35,48.85,2.36,48.86").await;
    assert_eq!(st, 429);
    assert_eq!(retry.as_deref(), Some("7"));
    let (st, _, _) = mly(&sb, "bbox=2.35,48.85,2.36,48.86").await;
    assert_eq!(st, 200);
}

async fn nearby(sb: &Sandbox, b: WorldBbox, ipp: Option<usize>, page: usize) -> Value {
    let mut form = vec![
        ("bbTopLeft", format!("{},{}", b.max_lat, b.min_lon)),
        ("bbBottomRight", format!("{},{}", b.min_lat, b.max_lon)),
        ("page", page.to_string()),
    ];
    if let Some(ipp) = ipp {
        form.push(("ipp", ipp.to_string()));
    }
    let r = client()
        .post(format!("{}/1.0/list/nearby-photos/", s(&sb.urls().kartaview_api)))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"]["apiCode"], "600");
    v
}

fn items(v: &Value) -> Vec<String> {
    v["currentPageItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn kartaview_pages_are_full_until_the_last() {
    let sb = with_world(WorldSpec::default()).await;
    let w = sb.world();
    let paris = WorldBbox::new(2.30, 48.82, 2.40, 48.89);
    let want: Vec<String> = {
        let mut v: Vec<u64> = expected(w, Service::KartaView, paris, |_| true)
            .iter()
            .map(|i| i.kartaview_id())
            .collect();
        v.sort_unstable();
        v.iter().map(u64::to_string).collect()
    };
    let n = want.len();
    assert!(n > 20, "{n}");

    // Exactly one full page, then an empty one.
    let v = nearby(&sb, paris, Some(n), 1).await;
    assert_eq!(items(&v), want);
    assert_eq!(v["totalFilteredItems"][0], n);
    assert!(items(&nearby(&sb, paris, Some(n), 2).await).is_empty());

    // Small pages: full until the last, no overlap, everything once.
    let ipp = 7;
    let mut got = Vec::new();
    for page in 1.. {
        let p = items(&nearby(&sb, paris, Some(ipp), page).await);
        if p.is_empty() {
            break;
        }
        if p.len() < ipp {
            assert_eq!(got.len() + p.len(), n, "short page {page} before the end");
        }
        got.extend(p);
    }
    assert_eq!(got, want);

    let first = &nearby(&sb, paris, Some(1), 1).await["currentPageItems"][0];
    let img = w.kartaview_photo(want[0].parse().unwrap()).unwrap();
    assert_eq!(first["sequence_id"], w.sequence_of(img).kartaview_id().to_string());
    assert_eq!(first["sequence_index"], img.index.to_string());
    assert_eq!(first["username"], w.user_of(w.sequence_of(img)).username);
    assert_eq!(first["shot_date"].as_str().unwrap().len(), "2024-05-17 09:00:00".len());
    let thumb = client().get(first["th_name"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");

    // No ipp: 100 a page.
    assert_eq!(items(&nearby(&sb, paris, None, 1).await).len(), n.min(100));
}

#[tokio::test]
async fn kartaview_clamps_ipp_to_1000() {
    let sb = with_world(dense(8000)).await;
    let n = sb.world().in_bbox_on(dense_box(), Service::KartaView).count();
    assert!(n > 1000, "{n}");
    let v = nearby(&sb, dense_box(), Some(5000), 1).await;
    assert_eq!(items(&v).len(), 1000);
    assert_eq!(v["totalFilteredItems"][0], n);
    let last = n.div_ceil(1000);
    assert_eq!(items(&nearby(&sb, dense_box(), Some(5000), last).await).len(), n - (last - 1) * 1000);
    assert!(items(&nearby(&sb, dense_box(), Some(5000), last + 1).await).is_empty());
}

async fn pnx(sb: &Sandbox, path_and_query: &str) -> Value {
    let r = client()
        .get(format!("{}/api{path_and_query}", s(&sb.urls().panoramax_instance)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path_and_query}");
    r.json().await.unwrap()
}

fn has_next(v: &Value) -> Option<String> {
    v["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .map(|l| l["href"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn panoramax_search_has_no_next_link_and_clamps_its_limit() {
    let sb = with_world(dense(20_000)).await;
    let on_pnx = sb.world().images_on(Service::Panoramax).count();
    assert!(on_pnx > 10_000, "{on_pnx}");
    let v = pnx(&sb, "/search").await;
    assert_eq!(v["type"], "FeatureCollection");
    assert_eq!(v["features"].as_array().unwrap().len(), 10);
    assert_eq!(has_next(&v), None);
    let v = pnx(&sb, "/search?limit=50000").await;
    assert_eq!(v["features"].as_array().unwrap().len(), 10_000);
    assert_eq!(has_next(&v), None);

    let f = &pnx(&sb, "/search?limit=1").await["features"][0];
    let img = sb.world().panoramax_picture(f["id"].as_str().unwrap()).unwrap();
    let seq = sb.world().sequence_of(img);
    assert_eq!(f["collection"], seq.panoramax_id());
    assert_eq!(f["properties"]["datetime"], iso(img.captured_at_ms));
    assert_eq!(f["properties"]["geovisio:producer"], sb.world().user_of(seq).username);
    assert!(f["properties"]["view:azimuth"].is_number());
    let thumb = client().get(f["assets"]["thumb"]["href"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(thumb.status(), 200);
}

#[tokio::test]
async fn panoramax_search_filters_by_time_collection_and_id() {
    let sb = with_world(WorldSpec::default()).await;
    let w = sb.world();
    let paris = WorldBbox::new(2.30, 48.82, 2.40, 48.89);
    let all = expected(w, Service::Panoramax, paris, |_| true);
    let mut times: Vec<i64> = all.iter().map(|i| i.captured_at_ms).collect();
    times.sort_unstable();
    let (a, b) = (times[times.len() / 3], times[2 * times.len() / 3]);
    let ids = |keep: &dyn Fn(i64) -> bool| -> BTreeSet<String> {
        all.iter()
            .filter(|i| keep(i.captured_at_ms))
            .map(|i| i.panoramax_id())
            .collect()
    };
    let q = |dt: String| format!("/search?limit=10000&bbox={}&datetime={dt}", bbox_param(paris));
    for (dt, want) in [
        (format!("{}/{}", iso(a), iso(b)), ids(&|t| (a..=b).contains(&t))),
        (format!("../{}", iso(b)), ids(&|t| t <= b)),
        (format!("{}/..", iso(a)), ids(&|t| t >= a)),
        (iso(a), ids(&|t| t == a)),
    ] {
        let v = pnx(&sb, &q(dt.clone())).await;
        assert_eq!(data_ids(&v, "features", "id"), want, "{dt}");
        assert!(!want.is_empty());
    }

    let seq = w.sequence_of(&all[0]);
    let v = pnx(&sb, &format!("/search?limit=1000&collections={}", seq.panoramax_id())).await;
    assert_eq!(v["features"].as_array().unwrap().len(), seq.len as usize);
    let v = pnx(&sb, &format!("/search?ids={},{}", all[0].panoramax_id(), all[1].panoramax_id())).await;
    assert_eq!(v["features"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn panoramax_collections_page_through_next_links() {
    let sb = with_world(WorldSpec::default()).await;
    let w = sb.world();
    let want: BTreeSet<String> = w
        .sequences()
        .iter()
        .filter(|s| s.on_panoramax)
        .map(|s| s.panoramax_id())
        .collect();
    assert!(want.len() > 10, "{}", want.len());
    let mut got = BTreeSet::new();
    let mut v = pnx(&sb, "/collections?limit=4").await;
    let mut pages = 1;
    loop {
        let cols = v["collections"].as_array().unwrap();
        assert!(cols.len() <= 4);
        for c in cols {
            let seq = w.panoramax_collection(c["id"].as_str().unwrap()).unwrap();
            assert_eq!(c["stats:items"]["count"], seq.len);
            assert!(c["geovisio:length_km"].as_f64().unwrap() > 0.0);
            assert_eq!(c["providers"][0]["name"], w.user_of(seq).username);
            assert!(got.insert(c["id"].as_str().unwrap().to_owned()), "twice: {c}");
        }
        let Some(next) = has_next(&v) else { break };
        assert_eq!(cols.len(), 4);
        v = client().get(next).send().await.unwrap().json().await.unwrap();
        pages += 1;
    }
    assert_eq!(got, want);
    assert_eq!(pages, want.len().div_ceil(4));

    // A limit over 1000 is clamped; a box keeps the sequences that cross it.
    let v = pnx(&sb, "/collections?limit=5000").await;
    assert_eq!(v["collections"].as_array().unwrap().len(), want.len());
    let lisbon = WorldBbox::new(-9.3, 38.6, -9.0, 38.9);
    let v = pnx(&sb, &format!("/collections?bbox={}", bbox_param(lisbon))).await;
    let in_lisbon: BTreeSet<String> = w
        .sequences()
        .iter()
        .filter(|s| s.on_panoramax && s.city == "Lisbon")
        .map(|s| s.panoramax_id())
        .collect();
    assert_eq!(data_ids(&v, "collections", "id"), in_lisbon);
    let seq = w.panoramax_collection(&in_lisbon.iter().next().unwrap().clone()).unwrap();
    let items = pnx(&sb, &format!("/collections/{}/items", seq.panoramax_id())).await;
    assert_eq!(items["features"].as_array().unwrap().len(), seq.len as usize);
}

#[tokio::test]
async fn without_a_world_searches_find_nothing() {
    let sb = with_world(WorldSpec::none()).await;
    assert!(sb.world().is_empty());
    let (st, v, _) = mly(&sb, "bbox=2.30,48.82,2.39,48.89").await;
    assert_eq!(st, 200);
    assert!(v["data"].as_array().unwrap().is_empty());
    let paris = WorldBbox::new(2.30, 48.82, 2.40, 48.89);
    let v = nearby(&sb, paris, None, 1).await;
    assert_eq!(v["totalFilteredItems"][0], 0);
    assert!(pnx(&sb, "/search").await["features"].as_array().unwrap().is_empty());
    assert!(pnx(&sb, "/collections").await["collections"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_world_of_50000_images_in_10_km() {
    let spec: WorldSpec = "50000@48.8566,2.3522,10".parse().unwrap();
    let sb = with_world(spec).await;
    let w = sb.world();
    assert_eq!(w.images().len(), 50_000);
    let per_service: usize = [Service::Mapillary, Service::KartaView, Service::Panoramax]
        .into_iter()
        .map(|s| w.images_on(s).count())
        .sum();
    let by_sequence: usize = w
        .sequences()
        .iter()
        .map(|s| s.len as usize * [s.on_mapillary, s.on_kartaview, s.on_panoramax].iter().filter(|x| **x).count())
        .sum();
    assert_eq!(per_service, by_sequence);
    // One small box, answered from the index.
    let b = WorldBbox::new(2.350, 48.855, 2.355, 48.858);
    let want: BTreeSet<String> = w.in_bbox_on(b, Service::Mapillary).map(|i| i.mapillary_id()).collect();
    assert!(!want.is_empty());
    let (_, v, _) = mly(&sb, &format!("bbox={}&fields=id", bbox_param(b))).await;
    assert_eq!(data_ids(&v, "data", "id"), want);
}
