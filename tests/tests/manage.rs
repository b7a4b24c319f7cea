//! Stories: after the upload, a sequence is renamed and deleted, here and on the services.
//! Deletes through an API are remote actions: they survive a quit, wait out an outage,
//! and "already gone" counts as done. The photo files are never touched.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_app::manage::RemoteHow;
use mtp_app::{App, Settings};
use mtp_core::Destination;
use mtp_core::engine::JobStatus;
use mtp_core::store::{NewRemoteAction, RemoteActionKind, RemoteActionStatus, SequenceMeta};
use mtp_tests::JobRemote;
use pipeline_support::{Story, fast_engine, walk};
use std::collections::HashMap;
use std::time::Duration;

const ALL: [Destination; 4] = [
    Destination::Mapillary,
    Destination::Kartaview,
    Destination::Panoramax,
    Destination::Mtpw,
];

/// A sequence uploaded to `destinations`, every job done.
async fn uploaded(story: &Story, seed: i64, destinations: &[Destination]) -> i64 {
    story.connect(destinations).await;
    let folder = story.photos(&format!("walk{seed}"), 6, &walk(seed));
    let ids = story
        .import(&folder, &format!("River walk {seed}"), destinations)
        .await;
    story.start_engine();
    for j in story.settle(&ids).await {
        assert_eq!(j.status, JobStatus::Done, "{j:#?}");
    }
    ids[0]
}

/// The sequence's KartaView upload removed by hand, as on KartaView's website.
async fn removed_on_kartaview(story: &Story, sequence_id: i64) {
    let kv = story.job(sequence_id, Destination::Kartaview).await.kv();
    story
        .kartaview_client()
        .await
        .remove_sequence(kv.sequence_id.as_deref().unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_everywhere_deletes_on_kartaview_and_panoramax_explains_the_others_then_removes_it_here()
 {
    let story = Story::start().await;
    let id = uploaded(&story, 1, &ALL).await;
    let photos: Vec<String> = story
        .app
        .store()
        .photos(id)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.path)
        .collect();
    let kv = story.job(id, Destination::Kartaview).await.kv();
    let px = story.job(id, Destination::Panoramax).await.px();
    let web = story.job(id, Destination::Mtpw).await.web();
    let mly_page = story.job(id, Destination::Mapillary).await.remote_url;
    assert!(mly_page.is_some());

    let plan = story.app.delete_plan(id).await.unwrap();
    assert!(plan.local.contains("are not touched"), "{}", plan.local);
    let how: HashMap<Destination, RemoteHow> = plan
        .remote
        .iter()
        .map(|p| (p.destination, p.how.clone()))
        .collect();
    assert_eq!(how.len(), 4, "{plan:#?}");
    assert_eq!(how[&Destination::Kartaview], RemoteHow::Api);
    assert_eq!(how[&Destination::Panoramax], RemoteHow::Api);
    assert_eq!(
        how[&Destination::Mapillary],
        RemoteHow::NoApi { link: mly_page },
        "Mapillary: no API, and a link to the sequence's page"
    );
    let unique_id = web.unique_id.clone().unwrap();
    assert!(
        matches!(&how[&Destination::Mtpw], RemoteHow::OpenPage { url } if url.ends_with(&format!("/sequence/{unique_id}/detail"))),
        "{plan:#?}"
    );
    // The page it opens is the one with the Delete button (as mtp-web's detail page).
    let RemoteHow::OpenPage { url } = &how[&Destination::Mtpw] else {
        unreachable!()
    };
    let page = reqwest::get(url).await.unwrap();
    assert_eq!(page.status(), 200, "{url}");
    assert!(page.text().await.unwrap().contains("id=\"confirm-delete\""));

    let outcome = story.app.delete_sequence(id, true).await.unwrap();
    assert_eq!(outcome.actions.len(), 2, "{outcome:#?}");
    assert!(!outcome.removed_locally);
    let actions = story
        .app
        .wait_for_remote_actions(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        actions.iter().all(|a| a.status == RemoteActionStatus::Done),
        "{actions:#?}"
    );
    let state = story.sandbox().state();
    let seq = state
        .kartaview_sequence(kv.sequence_id.as_deref().unwrap())
        .unwrap();
    assert!(seq.deleted, "{seq:#?}");
    let set = state
        .panoramax_upload_set(px.upload_set_id.as_deref().unwrap())
        .unwrap();
    assert!(set.deleted, "{set:#?}");
    // Here: gone, with its history kept; the photo files untouched.
    assert!(story.app.store().sequence(id).await.unwrap().is_none());
    assert!(story.app.sequences().await.unwrap().is_empty());
    let events = story.app.store().events(Some(id), 100).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "deleted"), "{events:#?}");
    for p in &photos {
        assert!(std::path::Path::new(p).is_file(), "{p} is gone");
    }
    story.app.shutdown().await;
}

/// A sign-in Panoramax no longer takes (GeoVisio answers a revoked token with 403, as it
/// answers "not the owner"): the delete says to sign in again, not that the sequence is
/// someone else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_refused_for_the_sign_in_says_to_sign_in_again() {
    let story = Story::start().await;
    let id = uploaded(&story, 4, &[Destination::Panoramax]).await;
    story.sandbox().faults().revoke_tokens();
    story.app.delete_sequence(id, true).await.unwrap();
    let actions = story
        .app
        .wait_for_remote_actions(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(actions.len(), 1, "{actions:#?}");
    assert_eq!(
        actions[0].status,
        RemoteActionStatus::Failed,
        "{actions:#?}"
    );
    let why = actions[0].last_error.clone().unwrap();
    assert!(why.contains("Token not valid"), "{why}");
    assert!(why.contains("Reconnect your Panoramax account"), "{why}");
    assert!(!why.contains("does not own"), "{why}");
    story.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_from_mtp_desktop_only_leaves_the_services_alone() {
    let story = Story::start().await;
    let id = uploaded(&story, 2, &[Destination::Kartaview]).await;
    let kv = story.job(id, Destination::Kartaview).await.kv();
    let outcome = story.app.delete_sequence(id, false).await.unwrap();
    assert!(outcome.removed_locally && outcome.actions.is_empty());
    assert!(story.app.store().sequence(id).await.unwrap().is_none());
    let seq = story
        .sandbox()
        .state()
        .kartaview_sequence(kv.sequence_id.as_deref().unwrap())
        .unwrap();
    assert!(!seq.deleted);
    story.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_already_deleted_on_the_service_counts_as_deleted() {
    let story = Story::start().await;
    let id = uploaded(&story, 3, &[Destination::Kartaview]).await;
    // Deleted on KartaView's website meanwhile.
    removed_on_kartaview(&story, id).await;
    story.app.delete_sequence(id, true).await.unwrap();
    let actions = story
        .app
        .wait_for_remote_actions(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].status, RemoteActionStatus::Done, "{actions:#?}");
    assert!(
        actions[0]
            .outcome
            .as_deref()
            .unwrap()
            .contains("already gone"),
        "{actions:#?}"
    );
    assert!(story.app.store().sequence(id).await.unwrap().is_none());
    story.app.shutdown().await;
}

/// What KartaView's remove answers for a sequence already removed is not documented, and it
/// refuses some sequences for good (openstreetcam.org#127). Either way the delete asks the
/// v2 read whether the sequence is still there: one removed meanwhile counts as deleted;
/// one still there fails the delete with KartaView's answer and its page to delete it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kartaview_remove_refused_is_checked_against_what_kartaview_still_holds() {
    let story = Story::start().await;
    let gone = uploaded(&story, 5, &[Destination::Kartaview]).await;
    let kept = uploaded(&story, 6, &[Destination::Kartaview]).await;
    removed_on_kartaview(&story, gone).await;
    story
        .sandbox()
        .faults()
        .error_rate("kartaview.sequence_remove", 1.0, 400);
    for id in [gone, kept] {
        story.app.delete_sequence(id, true).await.unwrap();
    }
    let actions = story
        .app
        .wait_for_remote_actions(gone, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(actions[0].status, RemoteActionStatus::Done, "{actions:#?}");
    assert!(story.app.store().sequence(gone).await.unwrap().is_none());

    let actions = story
        .app
        .wait_for_remote_actions(kept, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        actions[0].status,
        RemoteActionStatus::Failed,
        "{actions:#?}"
    );
    let kv_id = story
        .job(kept, Destination::Kartaview)
        .await
        .kv()
        .sequence_id
        .unwrap();
    let why = actions[0].last_error.clone().unwrap();
    assert!(
        why.starts_with(&format!(
            "KartaView would not delete sequence {kv_id}, which is still there ("
        )),
        "{why}"
    );
    assert!(why.ends_with(&format!("/details/{kv_id}")), "{why}");
    assert!(
        !story
            .sandbox()
            .state()
            .kartaview_sequence(&kv_id)
            .unwrap()
            .deleted
    );
    story.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_cut_by_a_quit_and_an_outage_finishes_after_the_restart() {
    let story = Story::start().await;
    let id = uploaded(&story, 4, &[Destination::Kartaview, Destination::Panoramax]).await;
    let kv = story.job(id, Destination::Kartaview).await.kv();
    // KartaView is down: its delete waits, Panoramax's goes through.
    story
        .sandbox()
        .faults()
        .error_rate("kartaview.sequence_remove", 1.0, 503);
    story.app.delete_sequence(id, true).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let actions = story.app.remote_action_views(id).await.unwrap();
        let kv_action = actions
            .iter()
            .find(|a| a.destination == Destination::Kartaview)
            .unwrap();
        let px_done = actions.iter().any(|a| {
            a.destination == Destination::Panoramax && a.status == RemoteActionStatus::Done
        });
        // Between two tries (a try in flight shows as running).
        if kv_action.attempts >= 2 && kv_action.status == RemoteActionStatus::Pending && px_done {
            assert!(
                kv_action
                    .last_error
                    .as_deref()
                    .unwrap()
                    .contains("Waiting for KartaView"),
                "{actions:#?}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{actions:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Still listed, as being deleted.
    assert!(
        story
            .app
            .store()
            .sequence(id)
            .await
            .unwrap()
            .unwrap()
            .deleting_at
            .is_some()
    );
    story.app.shutdown().await;
    let pipeline_support::Story { app, dir } = story;
    drop(app);

    // The next start: KartaView answers again (the emulators kept their state, not the fault).
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("MTP_DATA_DIR".into(), dir.path().display().to_string());
    env.insert("MTP_SANDBOX".into(), "1".into());
    env.insert("MTP_SANDBOX_PROCESSING_MS".into(), "200".into());
    env.insert("MTP_OPENER".into(), "true".into());
    let app = App::start(Settings::from_lookup(|k| env.get(k).cloned()))
        .await
        .unwrap();
    app.start_engine_with(fast_engine()).unwrap();
    let actions = app
        .wait_for_remote_actions(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        actions
            .iter()
            .all(|a| a.status == RemoteActionStatus::Done && a.action == RemoteActionKind::Delete),
        "{actions:#?}"
    );
    let seq = app
        .sandbox()
        .unwrap()
        .state()
        .kartaview_sequence(kv.sequence_id.as_deref().unwrap())
        .unwrap();
    assert!(seq.deleted);
    assert!(app.store().sequence(id).await.unwrap().is_none());
    app.shutdown().await;
}

/// A process stopped between a sequence's last delete and its removal here (the two are
/// not one write): the next start removes it, instead of leaving it "being deleted" with
/// nothing left to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_whose_deletes_all_went_through_before_a_stop_leaves_the_list_at_the_next_start()
{
    let story = Story::start().await;
    let id = uploaded(&story, 7, &[Destination::Kartaview]).await;
    story.app.shutdown().await;
    let store = story.app.store();
    let job = story.job(id, Destination::Kartaview).await;
    let now = story.app.now_ms();
    let action = store
        .add_remote_action(
            &NewRemoteAction {
                sequence_id: id,
                sequence_name: "River walk 7",
                destination: Destination::Kartaview,
                action: RemoteActionKind::Delete,
                remote_json: &job.remote_json,
                payload_json: "{}",
            },
            now,
        )
        .await
        .unwrap();
    store
        .finish_remote_action(
            action,
            RemoteActionStatus::Done,
            now,
            None,
            Some("deleted sequence"),
            now,
        )
        .await
        .unwrap();
    store.set_sequence_deleting(id, now).await.unwrap();
    let pipeline_support::Story { app, dir } = story;
    drop(app);

    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("MTP_DATA_DIR".into(), dir.path().display().to_string());
    env.insert("MTP_SANDBOX".into(), "1".into());
    env.insert("MTP_OPENER".into(), "true".into());
    let app = App::start(Settings::from_lookup(|k| env.get(k).cloned()))
        .await
        .unwrap();
    assert!(app.store().sequence(id).await.unwrap().is_some());
    app.start_engine_with(fast_engine()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while app.store().sequence(id).await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renaming_sets_the_panoramax_title_and_says_what_the_others_cannot() {
    let story = Story::start().await;
    let id = uploaded(&story, 5, &ALL).await;
    let px = story.job(id, Destination::Panoramax).await.px();
    let outcome = story
        .app
        .edit_sequence(
            id,
            SequenceMeta {
                name: "  Along the Seine ".into(),
                description: "Morning light".into(),
                transport_type: Some("bicycle".into()),
                tags: vec!["river, city".into(), "City".into()],
            },
        )
        .await
        .unwrap();
    let says: HashMap<Destination, String> = outcome
        .remote
        .iter()
        .map(|p| (p.destination, p.says.clone()))
        .collect();
    assert!(
        says[&Destination::Mapillary].contains("no API"),
        "{says:#?}"
    );
    assert!(
        says[&Destination::Kartaview].contains("no API"),
        "{says:#?}"
    );
    assert!(
        says[&Destination::Mtpw].contains("the sequence's own page"),
        "{says:#?}"
    );
    assert_eq!(outcome.actions.len(), 1, "{outcome:#?}");
    let actions = story
        .app
        .wait_for_remote_actions(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(actions[0].status, RemoteActionStatus::Done, "{actions:#?}");
    let collection = px.collection_id.unwrap();
    let remote = story
        .sandbox()
        .state()
        .panoramax_collection(&collection)
        .unwrap();
    assert_eq!(remote.title, "Along the Seine");
    // Here: saved as validated at import.
    let s = story.app.sequence(id).await.unwrap();
    assert_eq!(s.name, "Along the Seine");
    assert_eq!(s.tags, vec!["river".to_owned(), "city".to_owned()]);
    // A transport type Map the Paths does not know is refused, with what to do.
    let e = story
        .app
        .edit_sequence(
            id,
            SequenceMeta {
                name: "x".into(),
                transport_type: Some("Teleporter".into()),
                ..SequenceMeta::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        e.message
            .contains("The types are (any case): Bicycle, Walk,"),
        "{}",
        e.message
    );
    story.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_kept_and_left_out_photos_with_thumbnails_and_the_history() {
    let story = Story::start().await;
    story.connect(&[Destination::Kartaview]).await;
    let folder = story.photos("walk", 6, &walk(6));
    std::fs::write(folder.join("broken.jpg"), b"\xff\xd8\xff\xe1 not really").unwrap();
    let ids = story
        .import(&folder, "With a broken file", &[Destination::Kartaview])
        .await;
    story.start_engine();
    story.settle(&ids).await;
    let page = story.app.sequence_page(ids[0]).await.unwrap();
    let kept: Vec<_> = page.photos.iter().filter(|p| p.index.is_some()).collect();
    let left: Vec<_> = page.photos.iter().filter(|p| p.index.is_none()).collect();
    assert_eq!(kept.len(), 6);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].file_name, "broken.jpg");
    assert!(
        left[0].reason.as_deref().unwrap().contains("broken.jpg"),
        "{left:#?}"
    );
    assert!(!page.history.is_empty());
    let thumb = story
        .app
        .photo_thumbnail(ids[0], &kept[0].path)
        .await
        .unwrap();
    assert!(
        thumb.starts_with("data:image/jpeg;base64,/9j/"),
        "{}",
        &thumb[..40]
    );
    // Only photos of the sequence: nothing else on the disk can be read through it.
    let e = story
        .app
        .photo_thumbnail(ids[0], "/etc/passwd")
        .await
        .unwrap_err();
    assert!(e.message.contains("is not a photo of"), "{}", e.message);
    // A left-out file that is not a JPEG says so.
    let e = story
        .app
        .photo_thumbnail(ids[0], &left[0].path)
        .await
        .unwrap_err();
    assert!(e.message.contains("broken.jpg"), "{}", e.message);
    story.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_everywhere_while_a_create_is_in_flight_deletes_what_it_made() {
    let story = Story::start().await;
    story.connect(&[Destination::Kartaview]).await;
    let folder = story.photos("walk", 3, &walk(7));
    let ids = story
        .import(&folder, "Deleted at once", &[Destination::Kartaview])
        .await;
    let id = ids[0];
    // KartaView is slow to answer the create: the delete comes while it is on its way.
    story
        .sandbox()
        .faults()
        .latency("kartaview.sequence", Duration::from_millis(700));
    story.start_engine();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while story
        .job(id, Destination::Kartaview)
        .await
        .kv()
        .common
        .create_started_at
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the create never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let outcome = story.app.delete_sequence(id, true).await.unwrap();
    // The create's reply was waited for: its sequence is deleted on KartaView too.
    assert_eq!(outcome.actions.len(), 1, "{outcome:#?}");
    let actions = story
        .app
        .wait_for_remote_actions(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(actions[0].status, RemoteActionStatus::Done, "{actions:#?}");
    let state = story.sandbox().state();
    assert_eq!(state.kartaview_sequences().len(), 1);
    assert!(state.kartaview_sequences()[0].deleted);
    assert!(story.app.store().sequence(id).await.unwrap().is_none());
    story.app.shutdown().await;
}

/// `mtp sequence delete --remote` while the window runs the uploads (here the test plays the
/// window: it holds the lock and writes the rows its engine would). The window's KartaView
/// create is on its way when the delete cancels the job: the delete waits for that stage to
/// end in the other process, so it deletes the sequence the create made. As the command
/// does, this process starts its engine only after the delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_everywhere_waits_for_a_stage_another_process_runs() {
    let story = Story::start().await;
    story.connect(&[Destination::Kartaview]).await;
    let folder = story.photos("walk", 3, &walk(8));
    let id = story
        .import(
            &folder,
            "Deleted from the terminal",
            &[Destination::Kartaview],
        )
        .await[0];
    let other = story.app.store().try_engine_lock().unwrap();
    assert!(other.is_some());
    // The other process's engine takes the job and sends the create.
    let store = story.app.store().clone();
    let job = store
        .claim_next_job(story.app.now_ms(), &[])
        .await
        .unwrap()
        .unwrap();

    let deleting = {
        let app = story.app.clone();
        tokio::spawn(async move { app.delete_sequence(id, true).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while story.job(id, Destination::Kartaview).await.status != JobStatus::Cancelled {
        assert!(tokio::time::Instant::now() < deadline, "never cancelled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The create's reply comes in the other process, which saves the id and then stops
    // at its next checkpoint, as its engine does.
    let made = story.kartaview_create().await;
    store
        .set_job_remote(
            job.id,
            "sequence_id",
            &serde_json::json!(made),
            story.app.now_ms(),
        )
        .await
        .unwrap();
    store
        .update_job(
            job.id,
            &mtp_core::store::JobUpdate::default(),
            Some(&mtp_core::store::NewEvent {
                kind: "interrupted",
                sequence_id: Some(id),
                job_id: Some(job.id),
                message: "KartaView stopped during prepare",
                data: None,
            }),
            story.app.now_ms(),
        )
        .await
        .unwrap();

    let outcome = deleting.await.unwrap().unwrap();
    assert_eq!(outcome.actions.len(), 1, "{outcome:#?}");
    story.start_engine();
    assert!(story.app.engine_elsewhere());
    // The other process ends: this one takes over and carries the delete out.
    drop(other);
    let actions = story
        .app
        .wait_for_remote_actions(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(actions[0].status, RemoteActionStatus::Done, "{actions:#?}");
    let state = story.sandbox().state();
    let sequences = state.kartaview_sequences();
    assert_eq!(sequences.len(), 1);
    assert_eq!(sequences[0].id.to_string(), made);
    assert!(sequences[0].deleted);
    story.app.shutdown().await;
}
