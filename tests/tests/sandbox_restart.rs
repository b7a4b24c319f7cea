//! Story: quitting sandbox mode in the middle of an upload. The emulators come back on the
//! same address, but what they held is gone; every job notices (KartaView and Panoramax:
//! their sequence is gone; Mapillary: its upload handles are unknown), starts again cleanly,
//! and ends Done with every photo once, with no raw error for the user to retry by hand.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_app::{App, Settings};
use mtp_core::Destination;
use mtp_core::engine::JobStatus;
use pipeline_support::{Story, fast_engine, walk};
use std::collections::HashMap;
use std::time::Duration;

const DESTINATIONS: [Destination; 3] = [
    Destination::Mapillary,
    Destination::Kartaview,
    Destination::Panoramax,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_jobs_whose_remote_state_is_gone_start_again_cleanly() {
    let story = Story::start().await;
    story.connect(&DESTINATIONS).await;
    let folder = story.photos("walk", 8, &walk(41));
    let ids = story.import(&folder, "Walk cut short", &DESTINATIONS).await;
    let before = story.sandbox().urls();
    // Slow photo uploads, so the quit lands in the middle.
    story
        .sandbox()
        .faults()
        .latency("kartaview.photo", Duration::from_millis(150));
    story
        .sandbox()
        .faults()
        .latency("panoramax.files", Duration::from_millis(150));
    story
        .sandbox()
        .faults()
        .latency("mapillary.upload", Duration::from_millis(150));
    story.start_engine();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let jobs = story.app.store().jobs_of_sequence(ids[0]).await.unwrap();
        if jobs.iter().all(|j| j.photos_done >= 2) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{jobs:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    story.app.shutdown().await;
    drop(story.app);

    // The next start: same data, same emulator address, empty emulators.
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert(
        "MTP_DATA_DIR".into(),
        story.dir.path().display().to_string(),
    );
    env.insert("MTP_SANDBOX".into(), "1".into());
    env.insert("MTP_SANDBOX_PROCESSING_MS".into(), "200".into());
    env.insert("MTP_OPENER".into(), "true".into());
    let app = App::start(Settings::from_lookup(|k| env.get(k).cloned()))
        .await
        .unwrap();
    let sandbox = app.sandbox().unwrap();
    assert_eq!(
        sandbox.urls().base,
        before.base,
        "the emulators kept their address"
    );
    assert!(sandbox.state().kartaview_sequences().is_empty());
    for d in DESTINATIONS {
        pipeline_support::connect(&app, d).await;
    }
    app.start_engine_with(fast_engine()).unwrap();
    let jobs = app
        .wait_for_jobs(&ids, pipeline_support::SETTLE)
        .await
        .unwrap();
    for j in &jobs {
        assert_eq!(j.status, JobStatus::Done, "{j:#?}");
        assert_eq!(j.photos_done, 8, "{j:#?}");
    }
    let state = sandbox.state();
    let sequences = state.kartaview_sequences();
    assert_eq!(sequences.len(), 1, "{sequences:#?}");
    assert_eq!(sequences[0].photos.len(), 8);
    // Mapillary: the new upload host held none of the photos; they were sent again under
    // new handles and published once.
    let clusters = state.mapillary_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:#?}");
    assert_eq!(clusters[0].image_count, 8);
    let sets = state.panoramax_upload_sets();
    assert_eq!(sets.len(), 1, "{sets:#?}");
    assert_eq!(sets[0].files.len(), 8);
    let events = app.store().events(Some(ids[0]), 500).await.unwrap();
    assert_eq!(
        events.iter().filter(|e| e.kind == "remote_gone").count(),
        2,
        "{events:#?}"
    );
    app.shutdown().await;
}
