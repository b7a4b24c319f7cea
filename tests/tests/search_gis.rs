//! The GeoJSON Explore writes, opened by a real GIS reader: GDAL's `ogrinfo` (Debian's
//! gdal-bin, installed by `make gis-test`), the library under QGIS.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use std::path::Path;
use std::process::Command;

use mtp_app::explore::{ExploreQuery, Near, SEARCHABLE, ServiceState, UserFilter};
use mtp_core::Destination;
use pipeline_support::Story;

fn ogrinfo(args: &[&str], path: &Path) -> String {
    let out = Command::new(std::env::var("MTP_OGRINFO").unwrap_or_else(|_| "ogrinfo".into()))
        .args(["-ro", "-al"])
        .args(args)
        .arg(path)
        .output()
        .expect("ogrinfo (gdal-bin) runs: `make gis-test` installs it");
    assert!(
        out.status.success(),
        "ogrinfo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `Feature Count: N` of `ogrinfo -so`.
fn feature_count(summary: &str) -> usize {
    summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("Feature Count: "))
        .unwrap_or_else(|| panic!("no feature count in {summary}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ogrinfo (gdal-bin): run make gis-test"]
async fn gdal_reads_every_feature_and_its_properties() {
    let story = Story::start_with(&[]).await;
    story.connect(&SEARCHABLE).await;
    let query = ExploreQuery {
        services: SEARCHABLE.to_vec(),
        near: Some(Near {
            lat: 48.8566,
            lon: 2.3522,
            radius_m: 1_500.0,
        }),
        user: UserFilter::Anyone,
        ..ExploreQuery::default()
    };
    let id = story.app.new_search();
    let result = story.app.explore(id, &query, &|_| {}).await.unwrap();
    assert!(
        result
            .services
            .iter()
            .all(|o| o.state == ServiceState::Done),
        "{result:#?}"
    );
    let images = story.app.search_images(id).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paris.geojson");
    let written = story.app.export_search(id, &path).await.unwrap();
    assert!(
        images.len() > 100,
        "the seeded world has Paris: {}",
        images.len()
    );

    let summary = ogrinfo(&["-so"], &path);
    assert_eq!(feature_count(&summary), written, "{summary}");
    for field in [
        "service: String ",
        "id: String ",
        "captured_at: DateTime ",
        "heading: Real ",
        "sequence_id: String ",
        "user: String ",
        "is_pano: Integer(Boolean) ",
        "page_url: String ",
        "kind: String ",
    ] {
        assert!(summary.contains(field), "no {field} in {summary}");
    }

    // Each service's points, counted by GDAL's own filter.
    for d in SEARCHABLE {
        let want = images.iter().filter(|i| i.service == d).count();
        let filter = format!("kind = 'image' AND service = '{}'", d.as_str());
        let got = feature_count(&ogrinfo(&["-so", "-where", &filter], &path));
        assert_eq!(got, want, "{d:?}");
        assert!(want > 0, "{d:?} found nothing around Paris");
    }

    // One image read back whole: the same values as the app found.
    let first = images
        .iter()
        .find(|i| i.service == Destination::Mapillary)
        .unwrap();
    let filter = format!("kind = 'image' AND id = '{}'", first.id);
    let text = ogrinfo(&["-q", "-where", &filter], &path);
    assert!(
        text.contains(&format!(
            "sequence_id (String) = {}",
            first.sequence_id.clone().unwrap()
        )),
        "{text}"
    );
    assert!(text.contains("POINT ("), "{text}");
    assert!(
        text.contains(&format!("user (String) = {}", first.user.clone().unwrap())),
        "{text}"
    );
    let lines = feature_count(&ogrinfo(&["-so", "-where", "kind = 'sequence'"], &path));
    assert!(lines > 0);
    assert_eq!(written, images.len() + lines);
}
