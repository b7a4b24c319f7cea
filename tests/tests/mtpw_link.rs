//! Stories: Map the Paths Web against a server that answers as today's does (its Mapillary
//! import cannot check Mapillary accounts), the user's consent to send the Mapillary
//! token, and a Mapillary upload that fails (PROTOCOLS §5; issues 8.5 and 14.2).

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_app::PipelineOptions;
use mtp_app::jobs::{JobAction, JobTarget};
use mtp_core::Destination;
use mtp_core::clock::{Clock, ManualClock, SystemClock};
use mtp_core::engine::{JobStatus, Stage};
use mtp_core::store::JobRow;
use mtp_sandbox::MtpwImportMode;
use mtp_tests::JobRemote;
use pipeline_support::{SETTLE, Story, fast_engine, walk};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const HOUR: i64 = 3_600_000;
const BOTH: [Destination; 2] = [Destination::Mapillary, Destination::Mtpw];

/// The not-linked end, in the app's own words.
const NOT_LINKED: &str = "Created on Map the Paths Web, not linked to Mapillary: its server can no longer check Mapillary accounts.";

fn options() -> PipelineOptions {
    PipelineOptions {
        poll_first_ms: 20,
        poll_max_ms: 50,
        mtpw_wait_ms: 20,
        ..PipelineOptions::sandbox()
    }
}

/// A manual clock that runs 10× faster than real time until stopped, so the Mapillary
/// job's short waits pass; then the story moves it by hours.
fn running_clock() -> (ManualClock, Arc<AtomicBool>) {
    let clock = ManualClock::at(SystemClock.now_ms());
    let run = Arc::new(AtomicBool::new(true));
    let (c, r) = (clock.clone(), run.clone());
    tokio::spawn(async move {
        while r.load(Ordering::SeqCst) {
            c.advance_ms(100);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (clock, run)
}

/// Waits (real time) until the MTPW job of `seq` satisfies `done`.
async fn mtpw_until(story: &Story, seq: i64, what: &str, done: impl Fn(&JobRow) -> bool) -> JobRow {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let job = story.job(seq, Destination::Mtpw).await;
        if done(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Map the Paths job never got to {what}: {job:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn import_requests_with_mapillary(story: &Story) -> Vec<Option<u16>> {
    story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| {
            // The client's probe of whether the id is known is an empty `{}`.
            r.endpoint.as_deref() == Some("mtpw.import") && r.body_len > 2
        })
        .map(|r| r.status)
        .collect()
}

async fn strict_story(clock: Option<ManualClock>, consent: Option<bool>) -> (Story, i64) {
    let story = Story::start_strict(&[], clock.map(|c| Arc::new(c) as _)).await;
    story.connect(&BOTH).await;
    if let Some(allow) = consent {
        story.app.set_mtpw_mapillary_consent(allow).await.unwrap();
    }
    let folder = story.photos("walk", 4, &walk(11));
    let ids = story.import(&folder, "Canal walk", &BOTH).await;
    story.app.start_pipeline(fast_engine(), options()).unwrap();
    (story, ids[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todays_server_leaves_the_sequence_created_but_not_linked_after_a_few_tries_in_a_day() {
    let (clock, ticking) = running_clock();
    let (story, seq) = strict_story(Some(clock.clone()), Some(true)).await;
    assert_eq!(story.sandbox().mtpw_import(), MtpwImportMode::V3Unreachable);

    let job = mtpw_until(&story, seq, "its first link retry", |j| {
        j.web().waiting_on.as_deref() == Some("link_retry")
    })
    .await;
    ticking.store(false, Ordering::SeqCst);
    // Map the Paths Web goes on as soon as Mapillary's sequence key is saved, a moment
    // before the Mapillary job itself ends.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mly = loop {
        let mly = story.job(seq, Destination::Mapillary).await;
        if mly.status == JobStatus::Done || std::time::Instant::now() > deadline {
            break mly;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(mly.status, JobStatus::Done, "{mly:#?}");
    // Not Done, not a raw error: its own words, and the page it can already be seen on.
    assert!(job.status.is_active(), "{job:#?}");
    assert_eq!(job.last_error, None);
    assert_eq!(
        job.web().waiting.as_deref(),
        Some(
            "Created on Map the Paths Web; linking it to Mapillary failed (its server could not check the Mapillary account). Trying again in 1 hour (attempt 2 of 4)."
        )
    );
    let unique_id = job.web().unique_id.unwrap();
    let mtpw_base = story.mtpw_base();
    assert_eq!(
        job.remote_url,
        Some(format!("{mtpw_base}/sequence/{unique_id}/detail"))
    );
    let web = story.sandbox().state().mtpw_sequence(&unique_id).unwrap();
    assert!(!web.deleted && web.mapillary_sequence_key.is_none());
    let view = story.app.sequence(seq).await.unwrap();
    let row = view
        .jobs
        .iter()
        .find(|j| j.destination == Destination::Mtpw)
        .unwrap();
    assert_eq!(row.waiting, job.web().waiting);

    // Nothing happens before the hour is up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(import_requests_with_mapillary(&story), vec![Some(500)]);

    for (hours, next) in [
        (1, Some("4 hours (attempt 3 of 4)")),
        (4, Some("12 hours (attempt 4 of 4)")),
        (12, None),
    ] {
        clock.advance_ms(hours * HOUR);
        match next {
            // (Waiting for the words, not for the failure count: the count is written
            // first, the words just after.)
            Some(words) => {
                let want = format!("Trying again in {words}.");
                let job = mtpw_until(&story, seq, "its next try", |j| {
                    j.web().waiting.is_some_and(|w| w.ends_with(&want))
                        && j.status == JobStatus::Pending
                })
                .await;
                // The retry is due at the time it saved, whenever the engine wrote it.
                assert_eq!(Some(job.next_run_at), job.web().link_retry_at, "{job:#?}");
            }
            None => {
                let job = mtpw_until(&story, seq, "its end", |j| j.status == JobStatus::Done).await;
                assert_eq!(job.note().as_deref(), Some(NOT_LINKED));
                assert_eq!(job.web().waiting, None);
                assert_eq!(
                    job.remote_url,
                    Some(format!("{mtpw_base}/sequence/{unique_id}/detail"))
                );
                let row = story
                    .app
                    .sequence(seq)
                    .await
                    .unwrap()
                    .jobs
                    .into_iter()
                    .find(|j| j.destination == Destination::Mtpw)
                    .unwrap();
                assert_eq!(row.note.as_deref(), Some(NOT_LINKED));
            }
        }
    }
    // Four tries within 17 hours, each answered 500; never "no longer exists".
    assert_eq!(import_requests_with_mapillary(&story), vec![Some(500); 4]);
    let web = story.sandbox().state().mtpw_sequences();
    assert_eq!(web.len(), 1, "the sequence was never created twice");
    let events = story.app.store().events(Some(seq), 200).await.unwrap();
    assert!(
        !events.iter().any(|e| e.message.contains("does not know")),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_refusal_waits_too_and_a_fixed_server_then_links_it() {
    let (clock, ticking) = running_clock();
    let story = Story::start_strict(
        &[("MTP_SANDBOX_MTPW_IMPORT", "v3_refuses")],
        Some(Arc::new(clock.clone())),
    )
    .await;
    story.connect(&BOTH).await;
    story.app.set_mtpw_mapillary_consent(true).await.unwrap();
    let folder = story.photos("walk", 4, &walk(12));
    let seq = story.import(&folder, "Dock walk", &BOTH).await[0];
    story.app.start_pipeline(fast_engine(), options()).unwrap();
    let job = mtpw_until(&story, seq, "its first link retry", |j| {
        j.web().waiting_on.as_deref() == Some("link_retry")
    })
    .await;
    ticking.store(false, Ordering::SeqCst);
    assert!(job.status.is_active(), "{job:#?}");
    assert_eq!(import_requests_with_mapillary(&story), vec![Some(200)]);

    // The server gets fixed: the next try links it.
    story.sandbox().set_mtpw_import(MtpwImportMode::Fixed);
    clock.advance_ms(HOUR);
    let job = mtpw_until(&story, seq, "done", |j| j.status == JobStatus::Done).await;
    let mly = story.job(seq, Destination::Mapillary).await;
    assert_eq!(job.web().imported_key, mly.mly().sequence_key);
    assert_eq!(job.note(), None);
    assert_eq!(job.web().waiting, None);
    let web = story
        .sandbox()
        .state()
        .mtpw_sequence(&job.web().unique_id.unwrap())
        .unwrap();
    assert_eq!(web.mapillary_sequence_key, mly.mly().sequence_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mapillary_token_goes_to_map_the_paths_only_with_consent() {
    let story = Story::start_strict(&[("MTP_SANDBOX_MTPW_IMPORT", "fixed")], None).await;
    story.connect(&BOTH).await;
    let card = story
        .app
        .integrations()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.service == Destination::Mtpw)
        .unwrap();
    assert_eq!(card.mapillary_consent, None, "not asked yet");
    let folder = story.photos("walk", 3, &walk(13));
    let seq = story.import(&folder, "Quay walk", &BOTH).await[0];
    story.app.start_pipeline(fast_engine(), options()).unwrap();

    // Not asked yet: the job waits for the answer, saying where to give it.
    let jobs = story.settle(&[seq]).await;
    let mtpw = jobs
        .iter()
        .find(|j| j.destination == Destination::Mtpw)
        .unwrap();
    // (Waiting: it looks again every few milliseconds here, so it may be running now.)
    assert!(mtpw.status.is_active(), "{mtpw:#?}");
    assert_eq!(mtpw.web().waiting_on.as_deref(), Some("consent"));
    assert!(
        mtpw.web()
            .waiting
            .unwrap()
            .contains("Answer on the Map the Paths Web card")
    );
    assert!(mtpw.web().unique_id.is_some(), "created already");
    assert!(import_requests_with_mapillary(&story).is_empty());

    // Refused: created only, and the row says why it is not linked.
    story.app.set_mtpw_mapillary_consent(false).await.unwrap();
    let card = story
        .app
        .integrations()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.service == Destination::Mtpw)
        .unwrap();
    assert_eq!(card.mapillary_consent, Some(false));
    let job = mtpw_until(&story, seq, "done", |j| j.status == JobStatus::Done).await;
    assert_eq!(
        job.note().as_deref(),
        Some(
            "Created on Map the Paths Web, not linked to Mapillary: you chose not to send your Mapillary token to Map the Paths Web. Allow it on its card (Integrations) and this sequence gets linked."
        )
    );
    assert!(
        import_requests_with_mapillary(&story).is_empty(),
        "the token never left"
    );

    // Allowed later on the card: that sequence gets linked, without a retry.
    story.app.set_mtpw_mapillary_consent(true).await.unwrap();
    let job = mtpw_until(&story, seq, "linked", |j| {
        j.web().imported_key.is_some() && j.status == JobStatus::Done
    })
    .await;
    assert_eq!(import_requests_with_mapillary(&story), vec![Some(200)]);
    assert_eq!(job.stage, Stage::Done);
    assert_eq!(job.note(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_the_paths_is_never_done_while_the_mapillary_upload_it_links_to_failed() {
    let story = Story::start().await;
    story.connect(&BOTH).await;
    let folder = story.photos("walk", 3, &walk(14));
    let seq = story.import(&folder, "Broken walk", &BOTH).await[0];
    // Mapillary refuses the sequence for good: also once its handles are renewed, and as
    // a zip.
    story
        .sandbox()
        .faults()
        .fail_next("mapillary.finish_upload", 3, 400);
    story.app.start_pipeline(fast_engine(), options()).unwrap();
    let jobs = story.settle(&[seq]).await;
    let mly = jobs
        .iter()
        .find(|j| j.destination == Destination::Mapillary)
        .unwrap();
    assert_eq!(mly.status, JobStatus::Failed, "{mly:#?}");
    let mtpw = jobs
        .iter()
        .find(|j| j.destination == Destination::Mtpw)
        .unwrap();
    assert_ne!(mtpw.status, JobStatus::Done, "{mtpw:#?}");
    assert_eq!(mtpw.note(), None);
    assert_eq!(
        mtpw.web().waiting.as_deref(),
        Some(
            "Created on Map the Paths Web; waiting for Mapillary to link it: the Mapillary upload failed. Retry it there; this one then goes on by itself."
        )
    );
    assert!(mtpw.remote_url.is_some(), "its page is linked already");

    // Retrying Mapillary is enough: Map the Paths goes on by itself and links it.
    story
        .app
        .job_action(JobTarget::Job(mly.id), JobAction::Retry)
        .await
        .unwrap();
    let jobs = story.settle(&[seq]).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let mly = story.job(seq, Destination::Mapillary).await;
    let mtpw = story.job(seq, Destination::Mtpw).await;
    assert_eq!(mtpw.web().imported_key, mly.mly().sequence_key);
    assert_eq!(mtpw.web().waiting, None);
}

/// The sequence is deleted on the Map the Paths website while its job waits for Mapillary.
/// The link then meets an unknown id (HTTP 500, and the empty probe says the same): the job
/// creates the sequence again, links that one and says so in its history (PROTOCOLS §5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_deleted_on_the_website_is_created_again_and_linked() {
    let story = Story::start_strict(
        &[
            ("MTP_SANDBOX_MTPW_IMPORT", "fixed"),
            // Mapillary takes its time: the deletion comes while the job waits for it.
            ("MTP_SANDBOX_PROCESSING_MS", "3000"),
        ],
        None,
    )
    .await;
    story.app.set_mtpw_mapillary_consent(true).await.unwrap();
    story.connect(&BOTH).await;
    let folder = story.photos("walk", 3, &walk(15));
    let seq = story.import(&folder, "Harbour walk", &BOTH).await[0];
    story.app.start_pipeline(fast_engine(), options()).unwrap();
    let job = mtpw_until(&story, seq, "created", |j| j.web().unique_id.is_some()).await;
    let first = job.web().unique_id.unwrap();
    assert!(job.web().imported_key.is_none(), "not linked yet: {job:#?}");

    // Deleted on the website (its delete page's form).
    let mtpw_base = story.mtpw_base();
    let r = reqwest::Client::new()
        .post(format!("{mtpw_base}/sequence/{first}/delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let job = mtpw_until(&story, seq, "linked", |j| j.status == JobStatus::Done).await;
    let web = job.web();
    let second = web.unique_id.clone().unwrap();
    assert_ne!(second, first);
    assert_eq!(web.recreated, 1);
    assert!(web.imported_key.is_some(), "{job:#?}");
    assert_eq!(job.note(), None);
    let held = story.sandbox().state().mtpw_sequences();
    assert!(held.iter().any(|s| s.unique_id == first && s.deleted));
    assert!(
        held.iter()
            .any(|s| s.unique_id == second && !s.deleted && s.mapillary_sequence_key.is_some())
    );
    let events = story.app.store().events(Some(seq), 200).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("does not know")
                && e.message.ends_with("creating it again.")),
        "{events:#?}"
    );
}
