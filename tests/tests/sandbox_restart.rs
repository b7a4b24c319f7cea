//! Story: quitting sandbox mode in the middle of an upload.
//!
//! The emulators keep what they hold in the sandbox data folder and come back on the same
//! address, so the next start resumes where the quit cut it, as with the real services:
//! nothing that arrived is sent again. And when what they held is gone (the folder was
//! deleted), every job notices (KartaView and Panoramax: their sequence is gone;
//! Mapillary: its upload handles are unknown), starts again cleanly, and ends Done with
//! every photo once, with no raw error for the user to retry by hand.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_app::{App, Settings};
use mtp_core::Destination;
use mtp_core::engine::JobStatus;
use mtp_core::store::JobRow;
use mtp_sandbox::{RecordedRequest, SandboxUrls};
use pipeline_support::{Story, fast_engine, walk};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

const DESTINATIONS: [Destination; 3] = [
    Destination::Mapillary,
    Destination::Kartaview,
    Destination::Panoramax,
];

/// The photo endpoints of each destination, as the emulators name them.
const PHOTO_ENDPOINTS: [(Destination, &str); 3] = [
    (Destination::Mapillary, "mapillary.upload"),
    (Destination::Kartaview, "kartaview.photo"),
    (Destination::Panoramax, "panoramax.files"),
];

/// What the first run left: its data folder, emulator address, jobs and requests.
struct Quit {
    story_dir: tempfile::TempDir,
    urls: SandboxUrls,
    ids: Vec<i64>,
    jobs: Vec<JobRow>,
    requests: Vec<RecordedRequest>,
}

/// Imports an 8-photo walk for every destination, starts uploading slowly and quits the
/// app once every job has sent at least two photos.
async fn upload_and_quit_midway() -> Quit {
    let story = Story::start().await;
    story.connect(&DESTINATIONS).await;
    let folder = story.photos("walk", 8, &walk(41));
    let ids = story.import(&folder, "Walk cut short", &DESTINATIONS).await;
    let urls = story.sandbox().urls();
    // Slow photo uploads, so the quit lands in the middle.
    for (_, endpoint) in PHOTO_ENDPOINTS {
        story
            .sandbox()
            .faults()
            .latency(endpoint, Duration::from_millis(150));
    }
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
    let jobs = story.app.store().jobs_of_sequence(ids[0]).await.unwrap();
    let requests = story.sandbox().requests();
    let Story { app, dir } = story;
    drop(app);
    Quit {
        story_dir: dir,
        urls,
        ids,
        jobs,
        requests,
    }
}

/// The next start of the app on the same data.
async fn start_again(dir: &std::path::Path) -> App {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("MTP_DATA_DIR".into(), dir.display().to_string());
    env.insert("MTP_SANDBOX".into(), "1".into());
    env.insert("MTP_SANDBOX_PROCESSING_MS".into(), "200".into());
    env.insert("MTP_OPENER".into(), "true".into());
    App::start(Settings::from_lookup(|k| env.get(k).cloned()))
        .await
        .unwrap()
}

/// Photo requests to `endpoint` that carried bytes (on Mapillary's upload host, only the
/// photos' keys, not the manifest's).
fn photo_posts(requests: &[RecordedRequest], endpoint: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.endpoint.as_deref() == Some(endpoint) && r.method == "POST")
        .filter(|r| endpoint != "mapillary.upload" || r.path.ends_with(".jpg"))
        .filter(|r| r.body_len > 0)
        .count()
}

fn emulator_state_dir(dir: &std::path::Path) -> PathBuf {
    dir.join("sandbox").join(mtp_app::SANDBOX_STATE_DIR)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_emulators_still_hold_what_arrived_and_nothing_is_sent_again() {
    let quit = upload_and_quit_midway().await;
    let kv_before = quit
        .jobs
        .iter()
        .find(|j| j.destination == Destination::Kartaview)
        .unwrap()
        .clone();

    let app = start_again(quit.story_dir.path()).await;
    let sandbox = app.sandbox().unwrap();
    assert_eq!(sandbox.urls().base, quit.urls.base, "the same address");
    let sequences = sandbox.state().kartaview_sequences();
    assert_eq!(sequences.len(), 1, "KartaView still has the sequence");
    assert!(sequences[0].photos.len() >= 2, "{sequences:#?}");
    for d in DESTINATIONS {
        pipeline_support::connect(&app, d).await;
    }
    app.start_engine_with(fast_engine()).unwrap();
    let jobs = app
        .wait_for_jobs(&quit.ids, pipeline_support::SETTLE)
        .await
        .unwrap();
    for j in &jobs {
        assert_eq!(j.status, JobStatus::Done, "{j:#?}");
        assert_eq!(j.photos_done, 8, "{j:#?}");
    }
    // The same remote sequence, finished; every photo once.
    let kv_after = jobs
        .iter()
        .find(|j| j.destination == Destination::Kartaview)
        .unwrap();
    use mtp_tests::JobRemote;
    assert_eq!(kv_after.kv().sequence_id, kv_before.kv().sequence_id);
    let state = sandbox.state();
    let sequences = state.kartaview_sequences();
    assert_eq!(sequences.len(), 1, "{sequences:#?}");
    assert_eq!(sequences[0].photos.len(), 8);
    let clusters = state.mapillary_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:#?}");
    assert_eq!(clusters[0].image_count, 8);
    let sets = state.panoramax_upload_sets();
    assert_eq!(sets.len(), 1, "{sets:#?}");
    assert_eq!(sets[0].files.len(), 8);
    // What the first run had saved as sent was not sent again.
    let after = sandbox.requests();
    for (destination, endpoint) in PHOTO_ENDPOINTS {
        let done_before = quit
            .jobs
            .iter()
            .find(|j| j.destination == destination)
            .unwrap()
            .photos_done;
        let sent_again = photo_posts(&after, endpoint);
        assert!(
            sent_again <= usize::try_from(8 - done_before).unwrap(),
            "{destination:?}: {done_before} photos were done before the quit, yet {sent_again} were sent after it"
        );
        assert!(photo_posts(&quit.requests, endpoint) >= 2);
    }
    let events = app.store().events(Some(quit.ids[0]), 500).await.unwrap();
    assert!(
        events.iter().all(|e| e.kind != "remote_gone"),
        "{events:#?}"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_with_the_emulators_emptied_jobs_start_again_cleanly() {
    let quit = upload_and_quit_midway().await;
    // What the emulators held is gone (the user deleted it).
    let state_dir = emulator_state_dir(quit.story_dir.path());
    assert!(
        state_dir.join("state.json").is_file(),
        "{}",
        state_dir.display()
    );
    std::fs::remove_dir_all(&state_dir).unwrap();
    let before = quit.urls;
    let ids = quit.ids;
    let app = start_again(quit.story_dir.path()).await;
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
