//! Stories of uploads that stop half-way: the app is killed mid-photo, the user pauses,
//! a photo changes on disk. Each one resumes from what the services already hold.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_app::AppEvent;
use mtp_app::jobs::{JobAction, JobTarget};
use mtp_core::Destination;
use mtp_core::engine::{ItemState, JobStatus, Stage};
use mtp_providers::mapillary::UPLOAD_CHUNK;
use pipeline_support::{
    Story, assert_kartaview_once, assert_mapillary_once, assert_panoramax_once, pad_photos,
    wait_for_photos, walk,
};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_photo_the_app_resumes_without_sending_anything_twice() {
    let story = Story::start().await;
    story.connect(&Destination::ALL).await;
    let folder = story.photos("walk", 16, &walk(0));
    pad_photos(&folder, 200_000);
    let ids = story.import(&folder, "Crash walk", &Destination::ALL).await;
    let faults = story.sandbox().faults();
    for endpoint in ["mapillary.upload", "kartaview.photo", "panoramax.files"] {
        faults.latency(endpoint, Duration::from_millis(80));
    }
    story.start_engine();
    wait_for_photos(&story, ids[0], Destination::Mapillary, 4).await;
    story.app.kill_engine().await;

    // What a crash leaves behind: jobs marked running, photos half-sent, keys saved.
    let mly = story.job(ids[0], Destination::Mapillary).await;
    assert_eq!(mly.status, JobStatus::Running);
    assert!(mly.photos_done < 16, "{mly:?}");
    let items = story.app.store().job_items(mly.id).await.unwrap();
    let started: Vec<_> = items
        .iter()
        .filter(|i| i.state == ItemState::Partial)
        .collect();
    assert!(!started.is_empty(), "no photo was mid-way: {items:#?}");
    assert!(started.iter().all(|i| i.remote_key.is_some()));

    faults.clear();
    story.start_engine();
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    assert_mapillary_once(&story, ids[0], UPLOAD_CHUNK as u64).await;
    assert_kartaview_once(&story, ids[0], 16).await;
    assert_panoramax_once(&story, ids[0], 16).await;
    let kv = story.job(ids[0], Destination::Kartaview).await;
    let kv_items = story.app.store().job_items(kv.id).await.unwrap();
    assert!(
        kv_items.iter().all(|i| i.remote_id.is_some()),
        "every KartaView photo id is known, duplicates included"
    );
    let state = story.sandbox().state();
    let web: Vec<_> = state
        .mtpw_sequences()
        .into_iter()
        .filter(|s| !s.deleted)
        .collect();
    assert_eq!(web.len(), 1);
    assert_eq!(state.mapillary_clusters().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_stops_at_once_and_resuming_sends_only_the_rest() {
    let story = Story::start().await;
    story.connect(&[Destination::Mapillary]).await;
    let folder = story.photos("walk", 12, &walk(1));
    pad_photos(&folder, 200_000);
    let ids = story
        .import(&folder, "Paused walk", &[Destination::Mapillary])
        .await;
    story
        .sandbox()
        .faults()
        .latency("mapillary.upload", Duration::from_millis(80));
    story.start_engine();
    wait_for_photos(&story, ids[0], Destination::Mapillary, 2).await;
    let mut events = story.app.subscribe();
    let changed = story
        .app
        .job_action(JobTarget::Sequence(ids[0]), JobAction::Pause)
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Paused);
    // The engine reports the stage it was running as stopped...
    let stopped = tokio::time::timeout(pipeline_support::SETTLE, async {
        loop {
            if let Ok(AppEvent::JobChanged { job_id, status, .. }) = events.recv().await
                && job_id == jobs[0].id
                && status == JobStatus::Paused
            {
                return;
            }
        }
    })
    .await;
    assert!(stopped.is_ok(), "the running stage never stopped");

    // ...and from then on nothing more goes out.
    let quiet = story.sandbox().requests().len();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(story.sandbox().requests().len(), quiet);
    let paused = story.job(ids[0], Destination::Mapillary).await;
    assert!(paused.photos_done < 12);

    story
        .app
        .job_action(JobTarget::Sequence(ids[0]), JobAction::Resume)
        .await
        .unwrap();
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{jobs:#?}");
    assert_mapillary_once(&story, ids[0], UPLOAD_CHUNK as u64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_changed_on_disk_is_named_and_retry_works_once_it_is_back() {
    let story = Story::start().await;
    story
        .connect(&[Destination::Mapillary, Destination::Kartaview])
        .await;
    let folder = story.photos("walk", 5, &walk(2));
    let ids = story
        .import(
            &folder,
            "Edited walk",
            &[Destination::Mapillary, Destination::Kartaview],
        )
        .await;
    let victim = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let original = std::fs::read(&victim).unwrap();
    let mut edited = original.clone();
    edited.extend_from_slice(b"edited");
    std::fs::write(&victim, &edited).unwrap();

    story.start_engine();
    let jobs = story.settle(&ids).await;
    let name = victim.file_name().unwrap().to_string_lossy().to_string();
    for j in &jobs {
        assert_eq!((j.stage, j.status), (Stage::Prepare, JobStatus::Failed));
        let error = j.last_error.clone().unwrap();
        assert!(error.contains(&name), "{error}");
        assert!(error.contains("changed"), "{error}");
    }
    assert!(
        story
            .sandbox()
            .requests()
            .iter()
            .all(|r| r.endpoint.as_deref() != Some("mapillary.upload")),
        "nothing is sent before every file checks out"
    );

    std::fs::write(&victim, &original).unwrap();
    story
        .app
        .job_action(JobTarget::Sequence(ids[0]), JobAction::Retry)
        .await
        .unwrap();
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    assert_mapillary_once(&story, ids[0], 0).await;
    assert_kartaview_once(&story, ids[0], 5).await;
}

/// A three-photo walk queued to KartaView, for the stories of two processes sharing one
/// database.
async fn shared_walk() -> (Story, Vec<i64>) {
    let story = Story::start().await;
    story.connect(&[Destination::Kartaview]).await;
    let folder = story.photos("walk", 3, &walk(4));
    let ids = story
        .import(&folder, "Shared walk", &[Destination::Kartaview])
        .await;
    (story, ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_another_process_runs_the_uploads_this_one_waits_then_takes_over() {
    let (story, ids) = shared_walk().await;
    // Another process (the desktop app, or `mtp upload` in a terminal) runs the uploads of
    // this database: it holds the engine lock.
    let other = story.app.store().try_engine_lock().unwrap();
    assert!(other.is_some());
    assert!(story.app.store().try_engine_lock().unwrap().is_none());

    story.start_engine();
    assert!(story.app.engine_elsewhere());
    // Nothing is claimed here meanwhile: the jobs are the other process's to run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let job = story.job(ids[0], Destination::Kartaview).await;
    assert_eq!(
        (job.status, job.stage),
        (JobStatus::Pending, Stage::Prepare)
    );

    // It stops: this process takes over and sends them.
    drop(other);
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    assert!(!story.app.engine_elsewhere());
    assert_kartaview_once(&story, ids[0], 3).await;
    story.app.shutdown().await;
}

/// The next event matching `what`, within the settle time.
async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<AppEvent>,
    what: impl Fn(&AppEvent) -> bool,
) -> AppEvent {
    let found = tokio::time::timeout(pipeline_support::SETTLE, async {
        loop {
            match events.recv().await {
                Ok(e) if what(&e) => return e,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("no more events: {e}"),
            }
        }
    })
    .await;
    found.expect("the event never came")
}

/// The window is open while `mtp upload` runs the uploads of the same data folder: the
/// window says so, and its list moves as the other process saves its progress and deletes
/// a sequence (it has no engine of its own running to tell it); when the other process
/// ends, it says it carries on, and does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_another_process_runs_the_uploads_this_one_shows_their_progress() {
    let (story, ids) = shared_walk().await;
    let gone = story.photos("gone", 3, &walk(5));
    let gone = story.import(&gone, "Deleted there", &[]).await[0];
    let other = story.app.store().try_engine_lock().unwrap();
    assert!(other.is_some());
    let mut events = story.app.subscribe();
    story.start_engine();
    next_event(&mut events, |e| {
        matches!(e, AppEvent::UploadsElsewhere { elsewhere: true })
    })
    .await;
    assert!(story.app.overview().uploads_elsewhere);

    // What the other process writes: it claims the job, then one photo gets through.
    let store = story.app.store();
    let job = story.job(ids[0], Destination::Kartaview).await;
    let claimed = store
        .claim_next_job(story.app.now_ms(), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, job.id);
    let changed = next_event(&mut events, |e| matches!(e, AppEvent::JobChanged { .. })).await;
    assert!(
        matches!(changed, AppEvent::JobChanged { job_id, sequence_id, status: JobStatus::Running, .. }
            if job_id == job.id && sequence_id == ids[0]),
        "{changed:?}"
    );
    let first = &store.job_items(job.id).await.unwrap()[0];
    store
        .update_items(
            job.id,
            &[mtp_core::store::ItemUpdate {
                photo_id: first.photo_id,
                state: ItemState::Sent,
                remote_key: None,
                remote_offset: 0,
                remote_id: Some("1".into()),
                error: None,
            }],
            story.app.now_ms(),
        )
        .await
        .unwrap();
    let progress = next_event(&mut events, |e| matches!(e, AppEvent::JobProgress { .. })).await;
    assert!(
        matches!(progress, AppEvent::JobProgress { job_id, photos_done: 1, photos_total: 3, .. }
            if job_id == job.id),
        "{progress:?}"
    );

    // It deletes a sequence (`mtp sequence delete`): the window is told to read it again,
    // and finds it gone.
    assert!(store.delete_sequence(gone).await.unwrap());
    let deleted = next_event(&mut events, |e| {
        matches!(e, AppEvent::SequencesChanged { .. })
    })
    .await;
    assert!(
        matches!(&deleted, AppEvent::SequencesChanged { ids } if ids == &[gone]),
        "{deleted:?}"
    );

    // The other process ends (its running job is resumed here): this one takes over.
    store
        .requeue_running_jobs(story.app.now_ms())
        .await
        .unwrap();
    drop(other);
    next_event(&mut events, |e| {
        matches!(e, AppEvent::UploadsElsewhere { elsewhere: false })
    })
    .await;
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{jobs:#?}");
    assert!(!story.app.overview().uploads_elsewhere);
    story.app.shutdown().await;
}

/// The window runs the uploads while `mtp prepare`, `mtp sequence edit` and `mtp sequence
/// delete` change the same data folder in a terminal: the window's list is told of each
/// sequence saved, renamed or deleted there, without being reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequences_another_process_saves_edits_or_deletes_reach_the_window_running_the_uploads() {
    let (story, _) = shared_walk().await;
    let mut events = story.app.subscribe();
    story.start_engine();
    assert!(!story.app.engine_elsewhere());
    let store = story.app.store();
    let told = |e: &AppEvent, id: i64| matches!(e, AppEvent::SequencesChanged { ids } if ids.contains(&id));

    // Saved elsewhere (this process's app never saw it).
    let folder = story.dir.path().join("elsewhere").display().to_string();
    let saved = mtp_core::photo::fixture::save_walk(store, &folder, story.app.now_ms()).await;
    next_event(&mut events, |e| told(e, saved)).await;

    // Renamed elsewhere, later.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let meta = mtp_core::store::SequenceMeta {
        name: "Renamed in a terminal".into(),
        ..Default::default()
    };
    store
        .update_sequence_meta(saved, &meta, story.app.now_ms())
        .await
        .unwrap();
    next_event(&mut events, |e| told(e, saved)).await;

    // Deleted elsewhere.
    assert!(store.delete_sequence(saved).await.unwrap());
    next_event(&mut events, |e| told(e, saved)).await;
    story.app.shutdown().await;
}
