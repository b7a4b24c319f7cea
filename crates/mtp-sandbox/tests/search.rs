//! Search over the seeded world, part 1: the world itself (deterministic, `none`, 50,000
//! images) and Mapillary `/images` (the 2000 cap, heavy boxes, filters, a 429 fault).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::search::*;
use common::{client, s, sandbox_with};
use mtp_sandbox::{Service, World, WorldBbox, WorldImage, WorldSpec};
use serde_json::Value;

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
    for (limit, want) in [
        ("", 2000),
        ("&limit=2000", 2000),
        ("&limit=5000", 2000),
        ("&limit=10", 10),
    ] {
        let (st, v, _) = mly(
            &sb,
            &format!("bbox={}&fields=id{limit}", bbox_param(dense_box())),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(v["data"].as_array().unwrap().len(), want, "limit {limit:?}");
        assert!(v.get("paging").is_none(), "{:?}", v.get("paging"));
    }
    // The first 2000 by capture time.
    let mut times: Vec<i64> = all.iter().map(|i| i.captured_at_ms).collect();
    times.sort_unstable();
    let (_, v, _) = mly(
        &sb,
        &format!("bbox={}&fields=captured_at", bbox_param(dense_box())),
    )
    .await;
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
    let ids =
        |v: Vec<WorldImage>| -> BTreeSet<String> { v.iter().map(|i| i.mapillary_id()).collect() };
    let q = |extra: &str| format!("bbox={}&fields=id{extra}", bbox_param(paris));

    let me = mtp_sandbox::USERS[0].username;
    let mine = expected(w, Service::Mapillary, paris, |i| {
        w.user_of(w.sequence_of(i)).username == me
    });
    let (_, v, _) = mly(&sb, &q(&format!("&creator_username={me}"))).await;
    assert_eq!(data_ids(&v, "data", "id"), ids(mine));

    for pano in [true, false] {
        let want = expected(w, Service::Mapillary, paris, |i| {
            w.sequence_of(i).is_pano == pano
        });
        let (_, v, _) = mly(&sb, &q(&format!("&is_pano={pano}"))).await;
        assert_eq!(data_ids(&v, "data", "id"), ids(want), "is_pano={pano}");
    }

    let mut times: Vec<i64> = all.iter().map(|i| i.captured_at_ms).collect();
    times.sort_unstable();
    let (from, to) = (times[times.len() / 4], times[times.len() / 2]);
    let want = expected(w, Service::Mapillary, paris, |i| {
        (from..=to).contains(&i.captured_at_ms)
    });
    let (_, v, _) = mly(
        &sb,
        &q(&format!(
            "&start_captured_at={}&end_captured_at={}",
            iso(from),
            iso(to)
        )),
    )
    .await;
    assert_eq!(data_ids(&v, "data", "id"), ids(want));

    // Two sequences of the box (`sequence_ids`), and one (`sequence_id`).
    let mut keys: Vec<String> = all
        .iter()
        .map(|i| w.sequence_of(i).mapillary_key())
        .collect();
    keys.sort();
    keys.dedup();
    assert!(keys.len() >= 2, "{keys:?}");
    let want = expected(w, Service::Mapillary, paris, |i| {
        keys[..2].contains(&w.sequence_of(i).mapillary_key())
    });
    let (_, v, _) = mly(&sb, &q(&format!("&sequence_ids={},{}", keys[0], keys[1]))).await;
    assert_eq!(data_ids(&v, "data", "id"), ids(want));
    let want = expected(w, Service::Mapillary, paris, |i| {
        w.sequence_of(i).mapillary_key() == keys[0]
    });
    let (_, v, _) = mly(&sb, &q(&format!("&sequence_id={}", keys[0]))).await;
    assert_eq!(data_ids(&v, "data", "id"), ids(want));

    // The fields of a world image, its thumbnail, its node and its sequence.
    let img = all[0];
    let seq = w.sequence_of(&img);
    let fields = "id,geometry,captured_at,compass_angle,sequence,creator,is_pano,thumb_256_url";
    let (_, v, _) = mly(
        &sb,
        &format!("image_ids={}&fields={fields}", img.mapillary_id()),
    )
    .await;
    let d = &v["data"][0];
    assert_eq!(d["id"], img.mapillary_id());
    assert_eq!(d["captured_at"], img.captured_at_ms);
    assert_eq!(d["geometry"]["coordinates"][0], img.lon);
    assert_eq!(d["sequence"], seq.mapillary_key());
    assert_eq!(d["creator"]["username"], w.user_of(seq).username);
    assert_eq!(d["creator"]["id"], w.user_of(seq).mapillary_id);
    assert_eq!(d["is_pano"], seq.is_pano);
    let thumb = client()
        .get(d["thumb_256_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), 200);
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    assert_eq!(&thumb.bytes().await.unwrap()[..2], &[0xFF, 0xD8]);
    let token = sb.issue_token(Service::Mapillary, 0);
    let graph = s(&sb.urls().mapillary_graph);
    let node: Value = client()
        .get(format!(
            "{graph}/{}?fields=sequence&access_token={token}",
            img.mapillary_id()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(node["sequence"], seq.mapillary_key());
    let list: Value = client()
        .get(format!(
            "{graph}/image_ids?sequence_id={}&access_token={token}",
            seq.mapillary_key()
        ))
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
    sb.faults()
        .rate_limit_next("mapillary.images", 1, Some(7), None);
    let (st, _, retry) = mly(&sb, "bbox=2.35,48.85,2.36,48.86").await;
    assert_eq!(st, 429);
    assert_eq!(retry.as_deref(), Some("7"));
    let (st, _, _) = mly(&sb, "bbox=2.35,48.85,2.36,48.86").await;
    assert_eq!(st, 200);
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
    assert!(
        pnx(&sb, "/search").await["features"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        pnx(&sb, "/collections").await["collections"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_world_of_50000_images_in_10_km() {
    // As the benchmark sets it up.
    let mut cfg = mtp_sandbox::SandboxConfig::default();
    cfg.apply_env(|k| match k {
        "MTP_SANDBOX_WORLD" => Some("50000@48.8566,2.3522,10".to_owned()),
        "MTP_SANDBOX_WORLD_SEED" => Some("99".to_owned()),
        "MTP_SANDBOX_MLY_MAX_BBOX_SQDEG" => Some("0.02".to_owned()),
        _ => None,
    })
    .unwrap();
    assert_eq!(cfg.world.seed, 99);
    assert_eq!(cfg.mapillary_max_bbox_sqdeg, 0.02);
    assert!(cfg.apply_env(|_| Some("lots".to_owned())).is_err());
    let spec = cfg.world.clone();
    let started = std::time::Instant::now();
    let _ = World::generate(&spec);
    eprintln!("50,000 images generated in {:?}", started.elapsed());
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
        .map(|s| {
            s.len as usize
                * [s.on_mapillary, s.on_kartaview, s.on_panoramax]
                    .iter()
                    .filter(|x| **x)
                    .count()
        })
        .sum();
    assert_eq!(per_service, by_sequence);
    // One small box, answered from the index.
    let b = WorldBbox::new(2.345, 48.850, 2.365, 48.870);
    let want: BTreeSet<String> = w
        .in_bbox_on(b, Service::Mapillary)
        .map(|i| i.mapillary_id())
        .collect();
    assert!(!want.is_empty() && want.len() <= 2000, "{}", want.len());
    let (_, v, _) = mly(&sb, &format!("bbox={}&fields=id", bbox_param(b))).await;
    assert_eq!(data_ids(&v, "data", "id"), want);
}
