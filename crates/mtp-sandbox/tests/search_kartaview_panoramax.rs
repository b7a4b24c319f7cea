//! Search over the seeded world, part 2: KartaView `nearby-photos` paging and Panoramax
//! `/search` and `/collections`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::search::*;
use common::{client, s};
use mtp_sandbox::{Service, WorldBbox, WorldSpec};
use serde_json::Value;

/// A path KartaView gives on its web site (a thumbnail's), as an address: beside the
/// sequence pages, which the sandbox serves under its API base.
fn site_path(sb: &mtp_sandbox::Sandbox, path: &str) -> String {
    assert!(!path.starts_with("http"), "a path on the site: {path}");
    format!(
        "{}/{path}",
        sb.urls().kartaview_api.as_str().trim_end_matches('/')
    )
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
    assert_eq!(
        first["sequence_id"],
        w.sequence_of(img).kartaview_id().to_string()
    );
    assert_eq!(first["sequence_index"], img.index.to_string());
    assert_eq!(first["username"], w.user_of(w.sequence_of(img)).username);
    assert_eq!(
        first["shot_date"].as_str().unwrap().len(),
        "2024-05-17 09:00:00".len()
    );
    // Thumbnails are paths on KartaView's site, served beside the sequence pages; the item
    // does not say whether the photo is 360° (PROTOCOLS §6).
    let thumb = client()
        .get(site_path(&sb, first["th_name"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    assert!(first.get("projection").is_none() && first.get("field_of_view").is_none());

    // No ipp: 100 a page.
    assert_eq!(items(&nearby(&sb, paris, None, 1).await).len(), n.min(100));
}

#[tokio::test]
async fn kartaview_clamps_ipp_to_1000() {
    let sb = with_world(dense(8000)).await;
    let n = sb
        .world()
        .in_bbox_on(dense_box(), Service::KartaView)
        .count();
    assert!(n > 1000, "{n}");
    let v = nearby(&sb, dense_box(), Some(5000), 1).await;
    assert_eq!(items(&v).len(), 1000);
    assert_eq!(v["totalFilteredItems"][0], n);
    let last = n.div_ceil(1000);
    assert_eq!(
        items(&nearby(&sb, dense_box(), Some(5000), last).await).len(),
        n - (last - 1) * 1000
    );
    assert!(items(&nearby(&sb, dense_box(), Some(5000), last + 1).await).is_empty());
}

#[tokio::test]
async fn panoramax_search_has_no_next_link_and_refuses_a_limit_over_its_maximum() {
    let sb = with_world(dense(20_000)).await;
    let on_pnx = sb.world().images_on(Service::Panoramax).count();
    assert!(on_pnx > 10_000, "{on_pnx}");
    let v = pnx(&sb, "/search").await;
    assert_eq!(v["type"], "FeatureCollection");
    assert_eq!(v["features"].as_array().unwrap().len(), 10);
    assert_eq!(has_next(&v), None);
    let v = pnx(&sb, "/search?limit=10000").await;
    assert_eq!(v["features"].as_array().unwrap().len(), 10_000);
    assert_eq!(has_next(&v), None);
    // Over the maximum: refused, not clamped (GeoVisio).
    assert_eq!(pnx_status(&sb, "/search?limit=10001").await, 400);
    assert_eq!(pnx_status(&sb, "/search?limit=0").await, 400);

    let f = &pnx(&sb, "/search?limit=1").await["features"][0];
    let img = sb
        .world()
        .panoramax_picture(f["id"].as_str().unwrap())
        .unwrap();
    let seq = sb.world().sequence_of(img);
    assert_eq!(f["collection"], seq.panoramax_id());
    assert_eq!(f["properties"]["datetime"], iso(img.captured_at_ms));
    assert_eq!(
        f["properties"]["geovisio:producer"],
        sb.world().user_of(seq).username
    );
    assert!(f["properties"]["view:azimuth"].is_number());
    let thumb = client()
        .get(f["assets"]["thumb"]["href"].as_str().unwrap())
        .send()
        .await
        .unwrap();
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
    let q = |dt: String| {
        format!(
            "/search?limit=10000&bbox={}&datetime={dt}",
            bbox_param(paris)
        )
    };
    for (dt, want) in [
        (
            format!("{}/{}", iso(a), iso(b)),
            ids(&|t| (a..=b).contains(&t)),
        ),
        (format!("../{}", iso(b)), ids(&|t| t <= b)),
        (format!("{}/..", iso(a)), ids(&|t| t >= a)),
        (iso(a), ids(&|t| t == a)),
    ] {
        let v = pnx(&sb, &q(dt.clone())).await;
        assert_eq!(data_ids(&v, "features", "id"), want, "{dt}");
        assert!(!want.is_empty());
    }

    let seq = w.sequence_of(&all[0]);
    let v = pnx(
        &sb,
        &format!("/search?limit=1000&collections={}", seq.panoramax_id()),
    )
    .await;
    assert_eq!(v["features"].as_array().unwrap().len(), seq.len as usize);
    let v = pnx(
        &sb,
        &format!(
            "/search?ids={},{}",
            all[0].panoramax_id(),
            all[1].panoramax_id()
        ),
    )
    .await;
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
            assert!(
                got.insert(c["id"].as_str().unwrap().to_owned()),
                "twice: {c}"
            );
        }
        let Some(next) = has_next(&v) else { break };
        assert_eq!(cols.len(), 4);
        v = client()
            .get(next)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
    }
    assert_eq!(got, want);
    assert_eq!(pages, want.len().div_ceil(4));

    // A limit over 1000 is refused; a box keeps the sequences that cross it.
    assert_eq!(pnx_status(&sb, "/collections?limit=5000").await, 400);
    let v = pnx(&sb, "/collections?limit=1000").await;
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
    let seq = w
        .panoramax_collection(&in_lisbon.iter().next().unwrap().clone())
        .unwrap();
    let items = pnx(&sb, &format!("/collections/{}/items", seq.panoramax_id())).await;
    assert_eq!(
        items["features"].as_array().unwrap().len(),
        seq.len as usize
    );
}

#[tokio::test]
async fn kartaview_nearby_photos_include_processed_uploads_after_the_world() {
    use reqwest::multipart::{Form, Part};
    let sb = with_world(WorldSpec::default()).await;
    let token = sb.issue_token(Service::KartaView, 0);
    let api = s(&sb.urls().kartaview_api);
    let v: Value = client()
        .post(format!("{api}/1.0/sequence/"))
        .form(&[
            ("access_token", token.as_str()),
            ("uploadSource", "mtp"),
            ("currentCoordinate", "48.8566,2.3522"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seq = v["osv"]["sequence"]["id"].as_str().unwrap().to_owned();
    for i in 0..2u32 {
        let form = Form::new()
            .text("access_token", token.clone())
            .text("sequenceId", seq.clone())
            .text("sequenceIndex", i.to_string())
            .text(
                "coordinate",
                format!("48.8566,{}", 2.3522 + f64::from(i) * 0.0001),
            )
            .text("shotDate", "2024-05-17 09:30:00")
            .part(
                "photo",
                Part::bytes(
                    common::Photo::at(48.8566, 2.3522, "2024:05:17 09:30:00", 900 + i).jpeg(),
                )
                .file_name(format!("IMG_{i}.jpg"))
                .mime_str("image/jpeg")
                .unwrap(),
            );
        let r = client()
            .post(format!("{api}/1.0/photo/"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let paris = WorldBbox::new(2.30, 48.82, 2.40, 48.89);
    let world_n = sb.world().in_bbox_on(paris, Service::KartaView).count();
    let before = nearby(&sb, paris, Some(1000), 1).await;
    assert_eq!(
        before["totalFilteredItems"][0], world_n,
        "not before processing"
    );
    client()
        .post(format!("{api}/1.0/sequence/finished-uploading/"))
        .form(&[
            ("access_token", token.as_str()),
            ("sequenceId", seq.as_str()),
        ])
        .send()
        .await
        .unwrap();
    tokio::time::sleep(common::DELAY * 2).await;
    let after = nearby(&sb, paris, Some(1000), 1).await;
    assert_eq!(after["totalFilteredItems"][0], world_n + 2);
    let list = after["currentPageItems"].as_array().unwrap();
    let last = &list[list.len() - 1];
    assert_eq!(last["sequence_id"], seq);
    assert_eq!(last["sequence_index"], "1");
    assert_eq!(last["username"], mtp_sandbox::USERS[0].username);
    assert_eq!(last["name"], "IMG_1.jpg");
    assert_eq!(last["shot_date"], "2024-05-17 09:30:00");
    let thumb = client()
        .get(site_path(&sb, last["lth_name"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), 200);
}
