//! Stories of sign-ins that stop working mid-upload: an expired Mapillary token is
//! refreshed and the upload goes on; revoked sign-ins park the jobs until the user
//! integrates again, then everything resumes and nothing is sent twice.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_core::Destination;
use mtp_core::engine::{ErrorKind, JobStatus};
use mtp_tests::JobRemote;
use pipeline_support::{
    Story, assert_kartaview_once, assert_mapillary_once, assert_panoramax_once, wait_for_photos,
    walk,
};
use std::time::Duration;

/// With a distinct refresh token (the emulator's knob: Mapillary's documented reply has
/// none), even a token the service says has expired is refreshed mid-upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_mapillary_token_is_refreshed_and_the_upload_goes_on() {
    let story = Story::start().await;
    story
        .sandbox()
        .faults()
        .apply_spec("mapillary_refresh_tokens=issue")
        .unwrap();
    story.connect(&[Destination::Mapillary]).await;
    let folder = story.photos("walk", 16, &walk(0));
    let ids = story
        .import(&folder, "Long walk", &[Destination::Mapillary])
        .await;
    let faults = story.sandbox().faults();
    faults.latency("mapillary.upload", Duration::from_millis(40));
    story.start_engine();
    wait_for_photos(&story, ids[0], Destination::Mapillary, 3).await;
    let before = story
        .app
        .store()
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    faults.expire_tokens();
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{jobs:#?}");
    assert_mapillary_once(&story, ids[0], 0).await;

    let requests = story.sandbox().requests();
    assert!(
        requests.iter().any(|r| r.status == Some(401)),
        "the expired token was never refused"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.endpoint.as_deref() == Some("mapillary.token")
                && r.field("grant_type") == Some("refresh_token")
                && r.status == Some(200)),
        "no refresh happened"
    );
    let after = story
        .app
        .store()
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    assert!(!after.needs_reauth);
    assert_ne!(after.access_token.expose(), before.access_token.expose());
    let events = story.app.store().events(Some(ids[0]), 500).await.unwrap();
    assert!(
        !events.iter().any(|e| e.kind == "needs_auth"),
        "{events:#?}"
    );
}

/// Mapillary's documented token reply has no refresh token (PROTOCOLS §2.1): a token within
/// 7 days of its expiry is refreshed with itself, as JOSM does, before it expires; the old
/// one stops working and the upload goes on with the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapillary_token_near_its_expiry_is_refreshed_with_itself() {
    let story = Story::start().await;
    story.connect(&[Destination::Mapillary]).await;
    let store = story.app.store();
    let mut before = store
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    assert!(
        before.refresh_token.is_none(),
        "the sign-in got no refresh token"
    );
    let day = 24 * 3600 * 1000;
    before.expires_at = Some(story.app.now_ms() + 6 * day);
    store
        .save_account(&before, story.app.now_ms())
        .await
        .unwrap();

    let folder = story.photos("walk", 4, &walk(2));
    let ids = story
        .import(&folder, "Walk before the expiry", &[Destination::Mapillary])
        .await;
    story.start_engine();
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{jobs:#?}");
    assert_mapillary_once(&story, ids[0], 0).await;

    let refreshes: Vec<_> = story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| {
            r.endpoint.as_deref() == Some("mapillary.token")
                && r.field("grant_type") == Some("refresh_token")
        })
        .collect();
    assert_eq!(
        refreshes.len(),
        1,
        "one refresh, before anything was refused"
    );
    assert_eq!(refreshes[0].status, Some(200));
    // The record keeps a secret's first 4 characters: an access token's "MLY|".
    assert_eq!(refreshes[0].field("refresh_token"), Some("MLY|…"));
    assert!(
        !story
            .sandbox()
            .requests()
            .iter()
            .any(|r| r.status == Some(401)),
        "nothing was refused on the way"
    );
    let after = store
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(after.access_token.expose(), before.access_token.expose());
    assert!(after.refresh_token.is_none());
    assert!(after.expires_at.unwrap() > story.app.now_ms() + 50 * day);
    assert!(!after.needs_reauth);
    // The old token was replaced at Mapillary.
    let services = story.app.services();
    let old = mtp_providers::MapillaryClient::new(
        services.http.clone(),
        services.mapillary.as_ref().unwrap(),
        before.access_token.clone(),
    )
    .me()
    .await
    .unwrap_err();
    assert_eq!(old.kind(), mtp_providers::ErrorKind::Auth, "{old:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_sign_ins_wait_for_the_user_then_resume_where_they_stopped() {
    let story = Story::start().await;
    story.connect(&Destination::ALL).await;
    let folder = story.photos("walk", 16, &walk(1));
    let ids = story
        .import(&folder, "Revoked walk", &Destination::ALL)
        .await;
    let faults = story.sandbox().faults();
    for endpoint in ["mapillary.upload", "kartaview.photo", "panoramax.files"] {
        faults.latency(endpoint, Duration::from_millis(60));
    }
    story.start_engine();
    wait_for_photos(&story, ids[0], Destination::Mapillary, 3).await;
    faults.revoke_tokens();

    // Everything that needs a sign-in waits; nothing fails.
    let jobs = story.settle(&ids).await;
    let mly = story.job(ids[0], Destination::Mapillary).await;
    assert_eq!(mly.status, JobStatus::WaitingAuth, "{jobs:#?}");
    assert_eq!(mly.last_error_kind, Some(ErrorKind::Auth));
    assert!(mly.photos_done < 16);
    // (Map the Paths Web's job, waiting for Mapillary's, still looks now and then: it may be
    // running one of those looks.)
    for j in &jobs {
        assert!(
            matches!(
                j.status,
                JobStatus::WaitingAuth | JobStatus::Done | JobStatus::Pending
            ) || (j.destination == Destination::Mtpw && j.status == JobStatus::Running),
            "{j:?}"
        );
    }
    let account = story
        .app
        .store()
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    assert!(account.needs_reauth);
    let card = story
        .app
        .integrations()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.service == Destination::Mapillary)
        .unwrap();
    assert!(card.needs_reauth);
    let sent_before = mly.photos_done;

    // The user integrates again: the jobs pick up where they stopped.
    story.connect(&Destination::ALL).await;
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    assert_mapillary_once(&story, ids[0], 0).await;
    assert_kartaview_once(&story, ids[0], 16).await;
    assert_panoramax_once(&story, ids[0], 16).await;
    let state = story.sandbox().state();
    let web: Vec<_> = state
        .mtpw_sequences()
        .into_iter()
        .filter(|s| !s.deleted)
        .collect();
    assert_eq!(web.len(), 1);
    assert_eq!(
        web[0].mapillary_sequence_key,
        story
            .job(ids[0], Destination::Mapillary)
            .await
            .mly()
            .sequence_key
    );
    // Photos sent before the sign-in broke were not sent again.
    let posts = story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint.as_deref() == Some("mapillary.upload") && r.status == Some(200))
        .count();
    assert_eq!(posts, 16 + 1, "16 photos and one manifest");
    assert!(sent_before >= 3);
}

/// Refusals of a Panoramax write that are not about the token (GeoVisio answers them with
/// 401 too) never ask the user to sign in again, which would mend nothing: terms of service
/// not yet accepted fail the job with the page to accept them, and after they are accepted
/// Retry publishes the walk; a read-only instance (a migration) is waited out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panoramax_refusals_that_are_not_about_the_token_keep_the_sign_in() {
    let story = Story::start().await;
    story.connect(&[Destination::Panoramax]).await;
    let folder = story.photos("walk", 3, &walk(7));
    let ids = story
        .import(&folder, "Terms walk", &[Destination::Panoramax])
        .await;
    let faults = story.sandbox().faults();
    faults.panoramax_enforce_tos(true);
    story.start_engine();
    let jobs = story.settle(&ids).await;
    let job = &jobs[0];
    assert_eq!(job.status, JobStatus::Failed, "{job:#?}");
    let page = story
        .sandbox()
        .urls()
        .base
        .join("panoramax/tos-validation")
        .unwrap()
        .to_string();
    let said = job.last_error.clone().unwrap_or_default();
    assert!(
        said.contains("accept the terms of service") && said.contains(&page),
        "{said}"
    );
    let account = story.app.store().account(Destination::Panoramax).await;
    assert!(!account.unwrap().unwrap().needs_reauth);

    // The user opens the page and accepts; Retry publishes the walk.
    let accepted = reqwest::Client::new().post(&page).send().await.unwrap();
    assert!(accepted.status().is_success());
    story
        .app
        .job_action(
            mtp_app::jobs::JobTarget::Job(job.id),
            mtp_app::jobs::JobAction::Retry,
        )
        .await
        .unwrap();
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{:#?}", jobs[0]);

    // A read-only instance: the next upload waits, signed in all along.
    let folder = story.photos("walk-2", 3, &walk(8));
    let ids = story
        .import(&folder, "Read-only walk", &[Destination::Panoramax])
        .await;
    faults.panoramax_read_only(true);
    let job = tokio::time::timeout(pipeline_support::SETTLE, async {
        loop {
            let job = story.job(ids[0], Destination::Panoramax).await;
            if job
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("read only"))
            {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(job.status, JobStatus::Pending, "{job:#?}");
    let wait = job.next_run_at - story.app.now_ms();
    assert!(wait > 9 * 60_000, "looks again in {wait} ms");
    let account = story.app.store().account(Destination::Panoramax).await;
    assert!(!account.unwrap().unwrap().needs_reauth);
    // Writable again; the user does not wait: Pause, Resume.
    faults.panoramax_read_only(false);
    for action in [
        mtp_app::jobs::JobAction::Pause,
        mtp_app::jobs::JobAction::Resume,
    ] {
        story
            .app
            .job_action(mtp_app::jobs::JobTarget::Job(job.id), action)
            .await
            .unwrap();
    }
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{:#?}", jobs[0]);
}
