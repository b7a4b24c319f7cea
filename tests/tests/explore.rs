//! Stories: Explore, what is already on the services (issue 10). The emulators answer as
//! the real services do: Mapillary at most 2000 images a reply and no usable cursor,
//! KartaView pages of at most 1000, Panoramax without a next link; rate limits and a
//! service that fails.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use mtp_app::explore::{ExploreQuery, ExploreResult, Near, SEARCHABLE, ServiceState, UserFilter};
use mtp_core::Destination;
use mtp_providers::search::FoundImage;
use pipeline_support::{Story, walk};

const PARIS: (f64, f64) = (48.8566, 2.3522);

fn around(lat: f64, lon: f64, radius_m: f64, user: UserFilter) -> ExploreQuery {
    ExploreQuery {
        services: SEARCHABLE.to_vec(),
        near: Some(Near { lat, lon, radius_m }),
        user,
        ..ExploreQuery::default()
    }
}

/// Runs a search to its end, returning the result, what streamed in, and how many batches.
async fn run(story: &Story, query: &ExploreQuery) -> (ExploreResult, Vec<FoundImage>, usize) {
    let streamed = Mutex::new((Vec::new(), 0usize));
    let id = story.app.new_search();
    let on = |p: mtp_app::explore::ExploreProgress| {
        assert_eq!(p.search_id, id);
        let mut s = streamed.lock().unwrap();
        if !p.images.is_empty() {
            s.1 += 1;
        }
        s.0.extend(p.images);
    };
    let result = story.app.explore(id, query, &on).await.unwrap();
    let (images, batches) = streamed.into_inner().unwrap();
    assert_eq!(story.app.search_images(id).unwrap(), images);
    (result, images, batches)
}

fn outcome(result: &ExploreResult, d: Destination) -> &mtp_app::explore::ServiceOutcome {
    result.services.iter().find(|o| o.service == d).unwrap()
}

fn ids(images: &[FoundImage], d: Destination) -> BTreeSet<String> {
    images
        .iter()
        .filter(|i| i.service == d)
        .map(|i| i.id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_uploads_are_found_on_each_service_and_exported_as_geojson() {
    let story = Story::start_with(&[("MTP_SANDBOX_WORLD", "none")]).await;
    story.connect(&SEARCHABLE).await;
    let spec = walk(21);
    let folder = story.photos("walk", 5, &spec);
    let seq = story.import(&folder, "Explore walk", &SEARCHABLE).await;
    story.start_engine();
    let jobs = story.settle(&seq).await;
    assert!(
        jobs.iter()
            .all(|j| j.status == mtp_core::engine::JobStatus::Done),
        "{jobs:#?}"
    );

    let query = around(spec.start_lat, spec.start_lon, 1_000.0, UserFilter::Me);
    let (result, images, _) = run(&story, &query).await;
    for d in SEARCHABLE {
        let o = outcome(&result, d);
        assert_eq!(o.state, ServiceState::Done, "{o:?}");
        assert_eq!(ids(&images, d).len(), 5, "{d:?}: {images:#?}");
        assert_eq!(o.images, 5, "{o:?}");
    }
    // Every image says where it is, when, whose, and where to see it.
    for i in &images {
        assert!(
            i.captured_at_ms.is_some() && i.sequence_id.is_some(),
            "{i:?}"
        );
        assert_eq!(
            i.user.as_deref(),
            Some(mtp_sandbox::SANDBOX_USERNAME),
            "{i:?}"
        );
        assert!(
            i.page_url.as_deref().is_some_and(|u| u.starts_with("http")),
            "{i:?}"
        );
    }

    // Someone else's name finds none of them.
    let mut other = query.clone();
    other.user = UserFilter::Named("nobody-here".into());
    let (_, none, _) = run(&story, &other).await;
    assert!(none.is_empty(), "{none:#?}");

    // A time range that ends before the walk finds nothing; one around it finds all.
    let mut before = query.clone();
    before.to = Some("2020-01-01".into());
    assert!(run(&story, &before).await.1.is_empty());

    // The export: a point per image and a line per sequence.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("found.geojson");
    let id = story.app.new_search();
    story.app.explore(id, &query, &|_| {}).await.unwrap();
    let written = story.app.export_search(id, &path).await.unwrap();
    let fc: geojson::FeatureCollection = std::fs::read_to_string(&path)
        .unwrap()
        .parse::<geojson::GeoJson>()
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(written, fc.features.len());
    let kinds: Vec<&str> = fc
        .features
        .iter()
        .map(|f| f.property("kind").unwrap().as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "image").count(), 15);
    assert_eq!(kinds.iter().filter(|k| **k == "sequence").count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_fails_keeps_the_others_results_and_says_why() {
    let story = Story::start_with(&[]).await;
    story.connect(&SEARCHABLE).await;
    story
        .sandbox()
        .faults()
        .fail_next("kartaview.nearby_photos", 100, 500);
    let (result, images, _) = run(
        &story,
        &around(PARIS.0, PARIS.1, 1_500.0, UserFilter::Anyone),
    )
    .await;
    let kv = outcome(&result, Destination::Kartaview);
    assert_eq!(kv.state, ServiceState::Failed, "{kv:?}");
    let why = kv.message.clone().unwrap();
    assert!(why.starts_with("KartaView could not be searched"), "{why}");
    assert!(
        why.contains("HTTP 500") && why.contains("try again"),
        "{why}"
    );
    for d in [Destination::Mapillary, Destination::Panoramax] {
        assert_eq!(outcome(&result, d).state, ServiceState::Done);
        assert!(
            !ids(&images, d).is_empty(),
            "{d:?} found nothing around Paris"
        );
    }
    assert!(ids(&images, Destination::Kartaview).is_empty());
}

/// An account with nothing on Panoramax yet: GeoVisio answers its collection list with
/// 404 "No data loaded", which is no error: "my uploads" there finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_uploads_on_a_new_panoramax_account_are_none_not_an_error() {
    let story = Story::start_with(&[]).await;
    story.connect(&[Destination::Panoramax]).await;
    let mut query = around(PARIS.0, PARIS.1, 1_500.0, UserFilter::Me);
    query.services = vec![Destination::Panoramax];
    let (result, images, _) = run(&story, &query).await;
    let pnx = outcome(&result, Destination::Panoramax);
    assert_eq!(pnx.state, ServiceState::Done, "{pnx:?}");
    assert!(images.is_empty(), "{images:?}");
    assert!(
        story
            .sandbox()
            .requests()
            .iter()
            .any(|r| r.endpoint.as_deref() == Some("panoramax.my_collection")
                && r.status == Some(404)),
        "the emulator answered as GeoVisio does"
    );
}

/// GeoVisio refuses a refused token even on its public reads: Explore still finds what
/// anyone may see on Panoramax, and only "my uploads" asks for a new sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_panoramax_token_still_finds_what_anyone_may_see() {
    let story = Story::start_with(&[]).await;
    story.connect(&[Destination::Panoramax]).await;
    story.sandbox().faults().revoke_tokens();
    let mut query = around(PARIS.0, PARIS.1, 1_500.0, UserFilter::Anyone);
    query.services = vec![Destination::Panoramax];
    let (result, images, _) = run(&story, &query).await;
    let pnx = outcome(&result, Destination::Panoramax);
    assert_eq!(pnx.state, ServiceState::Done, "{pnx:?}");
    assert!(!ids(&images, Destination::Panoramax).is_empty());
    let searches: Vec<_> = story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint.as_deref() == Some("panoramax.search"))
        .collect();
    assert_eq!(searches[0].status, Some(403), "the token was refused first");
    assert!(searches[1..].iter().all(|r| r.status == Some(200)));

    query.user = UserFilter::Me;
    let (result, _, _) = run(&story, &query).await;
    let pnx = outcome(&result, Destination::Panoramax);
    assert_eq!(pnx.state, ServiceState::Failed, "{pnx:?}");
    assert!(
        pnx.message
            .as_deref()
            .unwrap()
            .contains("Integrate it again"),
        "{pnx:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_are_waited_out() {
    let story = Story::start_with(&[]).await;
    story.connect(&SEARCHABLE).await;
    let faults = story.sandbox().faults();
    faults.rate_limit_next("mapillary.images", 2, Some(1), None);
    faults.rate_limit_next("kartaview.nearby_photos", 1, Some(1), None);
    faults.rate_limit_next("panoramax.search", 1, Some(1), None);
    let (result, images, _) =
        run(&story, &around(PARIS.0, PARIS.1, 800.0, UserFilter::Anyone)).await;
    for d in SEARCHABLE {
        let o = outcome(&result, d);
        assert_eq!(o.state, ServiceState::Done, "{o:?}");
        assert!(o.rate_limited >= 1, "{o:?}");
        assert!(!ids(&images, d).is_empty(), "{d:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_can_be_stopped_and_keeps_what_it_found() {
    let story = Story::start_with(&[]).await;
    story.connect(&SEARCHABLE).await;
    story
        .sandbox()
        .faults()
        .latency("kartaview.nearby_photos", Duration::from_secs(30));
    let id = story.app.new_search();
    let app = story.app.clone();
    let stopper = tokio::spawn(async move {
        // Once the two quick services are done, the slow one is stopped.
        tokio::time::sleep(Duration::from_secs(3)).await;
        app.cancel_search(id)
    });
    let query = around(PARIS.0, PARIS.1, 800.0, UserFilter::Anyone);
    let started = std::time::Instant::now();
    let result = story.app.explore(id, &query, &|_| {}).await.unwrap();
    assert!(stopper.await.unwrap());
    assert!(started.elapsed() < Duration::from_secs(20), "not stopped");
    assert!(result.cancelled && !result.limited, "{result:?}");
    assert_eq!(
        outcome(&result, Destination::Kartaview).state,
        ServiceState::Stopped
    );
    assert_eq!(
        outcome(&result, Destination::Mapillary).state,
        ServiceState::Done
    );
    let kept = story.app.search_images(id).unwrap();
    assert!(!kept.is_empty());
    assert_eq!(kept.len(), result.images);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_stops_every_service_once_reached() {
    let story = Story::start_with(&[]).await;
    story.connect(&SEARCHABLE).await;
    let mut query = around(PARIS.0, PARIS.1, 3_000.0, UserFilter::Anyone);
    query.limit = Some(25);
    let (result, images, _) = run(&story, &query).await;
    assert!(result.limited, "{result:?}");
    assert_eq!(images.len(), 25);
    assert_eq!(result.images, 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_without_an_account_skips_the_service_and_says_how_to_fix_it() {
    let story = Story::start_with(&[]).await;
    story.connect(&[Destination::Mapillary]).await;
    let (result, _, _) = run(&story, &around(PARIS.0, PARIS.1, 800.0, UserFilter::Me)).await;
    assert_eq!(
        outcome(&result, Destination::Mapillary).state,
        ServiceState::Done
    );
    for d in [Destination::Kartaview, Destination::Panoramax] {
        let o = outcome(&result, d);
        assert_eq!(o.state, ServiceState::Skipped, "{o:?}");
        let why = o.message.clone().unwrap();
        assert!(
            why.contains("not integrated") && why.contains("username"),
            "{why}"
        );
    }
}
