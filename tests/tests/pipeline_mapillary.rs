//! Stories of Mapillary as strict as the real service (issue 8 items 1 and 8, issue 9): a
//! token without the upload permission, one refresh shared by everyone who meets an
//! expired token, and the processing stages read from the activity feed.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_app::PipelineOptions;
use mtp_app::jobs::{JobAction, JobTarget};
use mtp_app::mapillary_status::{MapillaryStatus, StageDetail};
use mtp_core::Destination;
use mtp_core::engine::{JobStatus, Stage};
use mtp_providers::mapillary::activity::StageState;
use mtp_sandbox::MAPILLARY_WEB_CLIENT_TOKEN;
use mtp_tests::JobRemote;
use pipeline_support::{Story, pad_photos, walk};

/// Requests to the Mapillary token endpoint that refreshed a token.
fn refreshes(story: &Story) -> Vec<Option<u16>> {
    story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| {
            r.endpoint.as_deref() == Some("mapillary.token")
                && r.field("grant_type") == Some("refresh_token")
        })
        .map(|r| r.status)
        .collect()
}

/// The user integrates Mapillary again, with a token that may upload (as a pasted token
/// does). Returns the token.
async fn sign_in_again(story: &Story) -> String {
    let token = story
        .sandbox()
        .issue_token(mtp_sandbox::Service::Mapillary, 0);
    story
        .app
        .connect_with_token(Destination::Mapillary, &token, None)
        .await
        .unwrap();
    token
}

/// MAPILLARY_SCOPE=read (what JOSM asks for): the sign-in works, the upload host refuses
/// the photos. The job waits for a new sign-in with a message that says why, and nothing
/// refreshes the token over and over; a token that may upload lets it go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_mapillary_token_waits_for_a_sign_in_that_allows_uploads() {
    let story = Story::start_with(&[("MAPILLARY_SCOPE", "read")]).await;
    story.connect(&[Destination::Mapillary]).await;
    let folder = story.photos("walk", 6, &walk(3));
    let ids = story
        .import(&folder, "Read-only walk", &[Destination::Mapillary])
        .await;
    story.start_engine();
    let jobs = story.settle(&ids).await;
    let job = &jobs[0];
    assert_eq!(job.status, JobStatus::WaitingAuth, "{jobs:#?}");
    assert_eq!(
        job.last_error.as_deref(),
        Some("This Mapillary connection may not upload photos: integrate again and allow uploads"),
    );
    assert!(
        refreshes(&story).is_empty(),
        "a refresh cannot add a permission"
    );
    let refused = story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint.as_deref() == Some("mapillary.upload") && r.status == Some(403))
        .count();
    assert!(
        (1..=4).contains(&refused),
        "{refused} refused uploads: one per photo lane at most, no loop"
    );
    assert_eq!(story.sandbox().state().mapillary_clusters().len(), 0);

    // The user signs in with a token that may upload: the job goes on.
    sign_in_again(&story).await;
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{jobs:#?}");
    assert_eq!(story.sandbox().state().mapillary_clusters().len(), 1);
}

/// The user integrates Mapillary again while the app is refreshing the token of the sign-in
/// before (a slow token endpoint): the new sign-in is what stays, not the refreshed old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_during_a_token_refresh_is_what_stays() {
    let story = Story::start().await;
    story.connect(&[Destination::Mapillary]).await;
    let refreshing = slow_refresh(&story).await;
    let signed_in = sign_in_again(&story).await;
    refreshing.await.unwrap().unwrap();

    assert_eq!(refreshes(&story), vec![Some(200)]);
    assert_signed_in_with(&story, &signed_in).await;
}

/// The stored Mapillary account holds `token` and is not waiting for a new sign-in.
async fn assert_signed_in_with(story: &Story, token: &str) {
    let kept = story
        .app
        .store()
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.access_token.expose(), token);
    assert!(!kept.needs_reauth);
}

/// The user integrates Mapillary again in another process (the window, while `mtp upload`
/// refreshes a token in a terminal): that process's lock does not reach this one, the
/// database does. Returns the token.
async fn sign_in_elsewhere(story: &Story) -> String {
    let token = story
        .sandbox()
        .issue_token(mtp_sandbox::Service::Mapillary, 0);
    let store = story.app.store();
    let mut account = store
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    account.access_token = mtp_core::secret::Secret::new(token.clone());
    account.refresh_token = None;
    account.expires_at = None;
    account.needs_reauth = false;
    store
        .save_account(&account, story.app.now_ms())
        .await
        .unwrap();
    token
}

/// Makes the stored Mapillary token expired by its stored expiry (the service still takes
/// it), so that the next use refreshes it. Returns the account.
async fn expire_stored_token(story: &Story) -> mtp_core::store::Account {
    let store = story.app.store();
    let mut account = store
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    account.expires_at = Some(1);
    store.save_account(&account, 2).await.unwrap();
    account
}

/// Starts a refresh of an expired Mapillary token that the service takes 800 ms to answer,
/// and returns once the request has reached it.
async fn slow_refresh(
    story: &Story,
) -> tokio::task::JoinHandle<Result<mtp_core::store::Account, mtp_app::AppError>> {
    expire_stored_token(story).await;
    story
        .sandbox()
        .faults()
        .latency("mapillary.token", std::time::Duration::from_millis(800));
    let token_calls = || {
        story
            .sandbox()
            .requests()
            .iter()
            .filter(|r| r.endpoint.as_deref() == Some("mapillary.token"))
            .count()
    };
    let before = token_calls();
    let refreshing = {
        let app = story.app.clone();
        tokio::spawn(async move { app.access_token(Destination::Mapillary).await })
    };
    while token_calls() == before {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    refreshing
}

/// Refreshes an expired token slowly while another process signs in again, the service
/// having revoked the old sign-in's tokens meanwhile if `revoked`. Returns the new
/// sign-in's token and the one the refresh gave its caller.
async fn refresh_meets_a_sign_in_elsewhere(story: &Story, revoked: bool) -> (String, String) {
    story.connect(&[Destination::Mapillary]).await;
    let refreshing = slow_refresh(story).await;
    if revoked {
        story.sandbox().faults().revoke_tokens();
    }
    let signed_in = sign_in_elsewhere(story).await;
    let got = refreshing.await.unwrap().unwrap();
    (signed_in, got.access_token.expose().clone())
}

/// A sign-in made in another process while this one refreshes the token of the sign-in
/// before stays: the refreshed old tokens are not saved over it, and the refresh's caller
/// gets the new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_in_another_process_during_a_refresh_is_what_stays() {
    let story = Story::start().await;
    let (signed_in, token) = refresh_meets_a_sign_in_elsewhere(&story, false).await;
    assert_eq!(refreshes(&story), vec![Some(200)]);
    assert_eq!(token, signed_in);
    assert_signed_in_with(&story, &signed_in).await;
}

/// The service refuses the refresh (the old sign-in was revoked) while another process
/// signs in again: the new sign-in is not marked as needing one more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_does_not_undo_a_sign_in_made_in_another_process() {
    let story = Story::start().await;
    let (signed_in, token) = refresh_meets_a_sign_in_elsewhere(&story, true).await;
    let refreshed = refreshes(&story);
    assert_eq!(refreshed.len(), 1);
    assert_ne!(refreshed[0], Some(200), "the refresh was refused");
    assert_eq!(token, signed_in);
    assert_signed_in_with(&story, &signed_in).await;
}

/// Two processes meet the expired token at once: the other one's refresh lands first, and
/// the strict service revokes the refresh token this one sent. This one takes the other's
/// tokens; nobody is asked to sign in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_another_process_made_first_is_taken_not_refused() {
    let story = Story::start().await;
    story.connect(&[Destination::Mapillary]).await;
    let store = story.app.store();
    let account = expire_stored_token(&story).await;
    // This process's refresh is slow to reach the service; the other's is not.
    story
        .sandbox()
        .faults()
        .apply_spec("mapillary.token:latency_ms=2000,times=1")
        .unwrap();
    let refreshing = {
        let app = story.app.clone();
        tokio::spawn(async move { app.access_token(Destination::Mapillary).await })
    };
    while story.sandbox().faults().rules()[0].2 == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let services = story.app.services();
    let sign_ins = store
        .account_sign_ins(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    let fresh = mtp_providers::oauth::MapillaryOAuth::new(
        services.http.clone(),
        services.mapillary.clone().unwrap(),
    )
    .refresh(&mtp_providers::oauth::TokenSet {
        access_token: account.access_token.clone(),
        refresh_token: account.refresh_token.clone(),
        expires_at_ms: account.expires_at,
    })
    .await
    .unwrap();
    let mut theirs = account.clone();
    theirs.access_token = fresh.access_token.clone();
    theirs.refresh_token = fresh.refresh_token.clone();
    theirs.expires_at = fresh.expires_at_ms;
    assert!(
        store
            .save_refreshed_account(&theirs, sign_ins, story.app.now_ms())
            .await
            .unwrap()
    );

    let got = refreshing.await.unwrap().unwrap();
    // In the order they came: this process's (answered last, refused), then the other's.
    let refreshed = refreshes(&story);
    assert_eq!(refreshed.len(), 2);
    assert_eq!(refreshed[1], Some(200));
    assert_ne!(refreshed[0], Some(200), "the late refresh was refused");
    assert_eq!(got.access_token.expose(), fresh.access_token.expose());
    assert_signed_in_with(&story, fresh.access_token.expose()).await;
}

/// Three Mapillary jobs, the Map the Paths sync and the integrations card meet an expired
/// token together. The strict service revokes the token a refresh replaces, so a second
/// refresh would fail: exactly one happens, and nobody is asked to sign in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_who_meets_an_expired_mapillary_token_shares_one_refresh() {
    let story = Story::start().await;
    story
        .connect(&[Destination::Mapillary, Destination::Mtpw])
        .await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let folder = story.photos(&format!("walk{i}"), 4, &walk(10 + i));
        let destinations: &[Destination] = if i == 0 {
            &[Destination::Mapillary, Destination::Mtpw]
        } else {
            &[Destination::Mapillary]
        };
        ids.extend(
            story
                .import(&folder, &format!("Walk {i}"), destinations)
                .await,
        );
    }
    // Expired both here (the stored expiry) and there (the service refuses it).
    let store = story.app.store();
    let mut account = store
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    let before = account.access_token.expose().clone();
    account.expires_at = Some(1);
    store.save_account(&account, 2).await.unwrap();
    story.sandbox().state().expire_mapillary_token(&before);

    story.start_engine();
    // Meanwhile the card and the Map the Paths sync ask for the token too.
    let (a, b) = tokio::join!(
        story.app.access_token(Destination::Mapillary),
        story.app.access_token(Destination::Mapillary),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.access_token.expose(), b.access_token.expose());
    assert_ne!(a.access_token.expose(), &before);

    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    assert_eq!(refreshes(&story), vec![Some(200)], "exactly one refresh");
    let account = store
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    assert!(!account.needs_reauth);
    for &id in &ids {
        let events = store.events(Some(id), 500).await.unwrap();
        assert!(
            !events.iter().any(|e| e.kind == "needs_auth"),
            "{events:#?}"
        );
    }
    let web: Vec<_> = story
        .sandbox()
        .state()
        .mtpw_sequences()
        .into_iter()
        .filter(|s| !s.deleted)
        .collect();
    assert_eq!(web.len(), 1);
    assert!(web[0].mapillary_sequence_key.is_some(), "{web:?}");
}

/// The emulator's kind switch: its activity feed answers the user's token. By default it
/// refuses it, as Mapillary did in 2023; the tests of what the feed says turn it on.
fn feed_takes_user_tokens(story: &Story) {
    story
        .sandbox()
        .state()
        .mapillary_graphql_refuses_user_tokens(false);
}

/// The Mapillary job's stored stages.
async fn mapillary_status(story: &Story, id: i64) -> MapillaryStatus {
    let job = story.job(id, Destination::Mapillary).await;
    MapillaryStatus::of_job(&job).unwrap_or_else(|| panic!("no stages stored: {job:#?}"))
}

/// The `/graphql` requests: (operationName, reply status, `after` variable). (Tokens are
/// redacted in the record: which one was used shows in the status when one is refused.)
fn graphql_requests(story: &Story) -> Vec<(String, u16, Option<String>)> {
    story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint.as_deref() == Some("mapillary.graphql"))
        .map(|r| {
            let q: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(r.query.as_deref().unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect();
            let vars: serde_json::Value =
                serde_json::from_str(q.get("variables").map_or("{}", String::as_str)).unwrap();
            (
                q.get("operationName").cloned().unwrap_or_default(),
                r.status.unwrap_or_default(),
                vars["after"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Uploads a short walk to Mapillary (and Map the Paths Web) and waits for the jobs.
async fn upload_walk(story: &Story, seed: i64, photos: usize) -> Vec<i64> {
    story
        .connect(&[Destination::Mapillary, Destination::Mtpw])
        .await;
    let folder = story.photos(&format!("walk{seed}"), photos, &walk(seed));
    let ids = story
        .import(
            &folder,
            "Staged walk",
            &[Destination::Mapillary, Destination::Mtpw],
        )
        .await;
    story.start_engine();
    ids
}

/// Every stage read from the feed with the user's token: each is done with the raw status
/// and the time it changed, the photos Mapillary counted match those sent, the sequence
/// key comes from the feed's image, and Map the Paths Web is linked to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_stages_are_read_from_the_activity_feed_with_the_users_token() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "800")]).await;
    feed_takes_user_tokens(&story);
    let ids = upload_walk(&story, 20, 5).await;
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let status = mapillary_status(&story, ids[0]).await;
    assert_eq!(status.detail, Some(StageDetail::UserToken));
    assert_eq!(status.chunks.len(), 1);
    let chunk = &status.chunks[0];
    for stage in &chunk.stages {
        assert_eq!(stage.state, StageState::Done, "{chunk:?}");
        assert_eq!(stage.raw.as_deref(), Some("FINISHED"));
        assert!(stage.changed_at.is_some());
    }
    assert_eq!(chunk.item_count, Some(5));
    assert_eq!(chunk.sent, 5);
    assert_eq!(chunk.error_code, None);
    let clusters = story.sandbox().state().mapillary_clusters();
    assert_eq!(chunk.cluster_id.as_deref(), Some(clusters[0].id.as_str()));
    assert_eq!(chunk.sequence_keys, clusters[0].sequence_ids);
    assert_eq!(chunk.published, Some(5));
    let requests = graphql_requests(&story);
    assert!(!requests.is_empty());
    // No web client token is set: the user's token read the feed.
    for (op, status, _) in &requests {
        assert_eq!(op, "getLatestActivity");
        assert_eq!(*status, 200);
    }
    // The stepper went through the stages: the row saw them change at different times.
    let web = story.sandbox().state().mtpw_sequences();
    assert_eq!(
        web[0].mapillary_sequence_key.as_deref(),
        Some(clusters[0].sequence_ids[0].as_str())
    );
    let lines = status.lines().join("\n");
    assert!(lines.contains("Map update: done [FINISHED]"), "{lines}");
    assert!(lines.contains("5 of 5 photos counted"), "{lines}");
}

/// A stage that fails: the job fails with Mapillary's reason and error code; its retry
/// ("Upload again") publishes a new manifest from the same handles, without sending a
/// photo again, and the new cluster goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_stage_fails_the_job_and_upload_again_sends_only_a_new_manifest() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "400")]).await;
    feed_takes_user_tokens(&story);
    story
        .sandbox()
        .state()
        .mapillary_fail_next_cluster(2, "CORRUPT_IMAGES");
    let ids = upload_walk(&story, 21, 4).await;
    story.settle(&ids).await;
    let job = story.job(ids[0], Destination::Mapillary).await;
    assert_eq!(job.status, JobStatus::Failed, "{job:#?}");
    assert_eq!(
        job.last_error.as_deref(),
        Some(
            "Mapillary could not process this upload: Map data processing failed with error CORRUPT_IMAGES: Mapillary could not read the photos. Upload again to send it anew."
        )
    );
    let status = mapillary_status(&story, ids[0]).await;
    let failure = status.failure.clone().unwrap();
    assert_eq!((failure.chunk, failure.stage), (0, 2));
    assert_eq!(failure.error_code.as_deref(), Some("CORRUPT_IMAGES"));
    let stages: Vec<StageState> = status.chunks[0].stages.iter().map(|s| s.state).collect();
    assert_eq!(
        stages,
        [
            StageState::Done,
            StageState::Done,
            StageState::Failed,
            StageState::Waiting
        ]
    );
    assert_eq!(status.chunks[0].stages[2].raw.as_deref(), Some("FAILED"));

    // Upload again.
    story
        .app
        .job_action(JobTarget::Job(job.id), JobAction::Retry)
        .await
        .unwrap();
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let clusters = story.sandbox().state().mapillary_clusters();
    assert_eq!(clusters.len(), 2);
    let status = mapillary_status(&story, ids[0]).await;
    assert!(status.failure.is_none());
    assert_eq!(
        status.chunks[0].cluster_id.as_deref(),
        Some(clusters[1].id.as_str())
    );
    assert_eq!(status.chunks[0].sequence_keys, clusters[1].sequence_ids);
    let photo_posts = story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| {
            r.endpoint.as_deref() == Some("mapillary.upload")
                && r.method == "POST"
                && r.path.contains("mly_tools_")
                && r.body_len > 0
        })
        .count();
    assert_eq!(photo_posts, 4, "no photo was sent twice");
}

/// The feed refuses user tokens (by default, as in 2023): with `MAPILLARY_WEB_CLIENT_TOKEN`
/// set, the stages come with that token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_client_token_reads_the_stages_when_the_users_is_refused() {
    let story = Story::start_with(&[
        ("MTP_SANDBOX_PROCESSING_MS", "400"),
        ("MAPILLARY_WEB_CLIENT_TOKEN", MAPILLARY_WEB_CLIENT_TOKEN),
    ])
    .await;
    let ids = upload_walk(&story, 22, 3).await;
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let status = mapillary_status(&story, ids[0]).await;
    assert_eq!(status.detail, Some(StageDetail::WebClientToken));
    assert!(
        status.chunks[0]
            .stages
            .iter()
            .all(|s| s.raw.as_deref() == Some("FINISHED"))
    );
    // The user's token first (refused), then the web client token (answered).
    let requests = graphql_requests(&story);
    assert!(requests.iter().any(|(_, status, _)| *status == 403));
    assert!(requests.iter().any(|(_, status, _)| *status == 200));
}

/// The default: the feed refuses the user's token and no web client token is set. The
/// sequence is found by the image search and the row says that stage detail is unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_feed_the_image_search_finds_the_sequence_and_says_detail_is_unavailable() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "300")]).await;
    let ids = upload_walk(&story, 23, 3).await;
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let status = mapillary_status(&story, ids[0]).await;
    assert_eq!(status.detail, Some(StageDetail::Unavailable));
    let clusters = story.sandbox().state().mapillary_clusters();
    assert_eq!(status.chunks[0].sequence_keys, clusters[0].sequence_ids);
    assert!(status.chunks[0].stages.iter().all(|s| s.raw.is_none()));
    assert!(
        status.lines()[0].starts_with("stage detail unavailable"),
        "{:?}",
        status.lines()
    );
}

/// 250 newer uploads in the feed: the job's cluster is on the sixth page, reached with
/// `after` = the previous `end_cursor`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_is_paged_until_the_jobs_cluster_is_found() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "1500")]).await;
    feed_takes_user_tokens(&story);
    let ids = upload_walk(&story, 24, 3).await;
    let state = story.sandbox().state();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while state.mapillary_clusters().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no cluster");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    state.mapillary_add_activity(0, 250);
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let status = mapillary_status(&story, ids[0]).await;
    assert_eq!(status.chunks[0].stages[3].raw.as_deref(), Some("FINISHED"));
    let requests = graphql_requests(&story);
    let cursors: Vec<&String> = requests.iter().filter_map(|(_, _, a)| a.as_ref()).collect();
    assert!(cursors.len() >= 5, "{requests:?}");
    // Opaque cursors, sent back as they came.
    assert!(
        cursors
            .iter()
            .all(|c| !c.chars().all(|ch| ch.is_ascii_digit()))
    );
}

/// The app stops in the middle of polling: the stages seen so far and the next look are
/// stored, and the job goes on from there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_polling_keeps_the_stages_and_the_schedule() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "4000")]).await;
    feed_takes_user_tokens(&story);
    let ids = upload_walk(&story, 25, 3).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let seen = loop {
        let job = story.job(ids[0], Destination::Mapillary).await;
        if let Some(s) = MapillaryStatus::of_job(&job)
            && s.chunks[0].stages[0].state == StageState::Done
            && s.next_check_at.is_some()
        {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "{job:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    story.app.kill_engine().await;
    let first_change = seen.chunks[0].stages[0].changed_at;
    let job = story.job(ids[0], Destination::Mapillary).await;
    assert_eq!(job.stage, Stage::Poll);
    assert!(seen.chunks[0].stages[3].state != StageState::Done);

    story.start_engine();
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let status = mapillary_status(&story, ids[0]).await;
    assert_eq!(status.chunks[0].stages[0].changed_at, first_change);
    assert!(
        status.chunks[0]
            .stages
            .iter()
            .all(|s| s.state == StageState::Done)
    );
    assert_eq!(story.sandbox().state().mapillary_clusters().len(), 1);
}

/// The schedule with the live settings: every 30 s for the first 5 minutes after
/// `finish_upload`, then every 15 minutes; the next look is stored with the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_looks_every_30_seconds_then_every_15_minutes() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "600000")]).await;
    story.connect(&[Destination::Mapillary]).await;
    let folder = story.photos("walk", 2, &walk(26));
    let ids = story
        .import(&folder, "Scheduled walk", &[Destination::Mapillary])
        .await;
    story
        .app
        .start_pipeline(pipeline_support::fast_engine(), PipelineOptions::live())
        .unwrap();
    let next_look = |job: &mtp_core::store::JobRow| job.mly().next_check_at;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let job = loop {
        let job = story.job(ids[0], Destination::Mapillary).await;
        if next_look(&job).is_some() && job.status == JobStatus::Pending {
            break job;
        }
        assert!(std::time::Instant::now() < deadline, "{job:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    // The engine stores the same delay from its own reading of the clock.
    assert_eq!(job.next_run_at - job.updated_at, 30_000, "{job:#?}");
    assert!((next_look(&job).unwrap() - job.next_run_at).abs() < 1_000);
    story.app.kill_engine().await;

    // Six minutes after finish_upload: every 15 minutes.
    let published = job.mly().common.published_at.unwrap();
    let store = story.app.store();
    store
        .set_job_remote(
            job.id,
            "published_at",
            &serde_json::json!(published - 6 * 60_000),
            job.updated_at,
        )
        .await
        .unwrap();
    store
        .set_job_remote(
            job.id,
            "mly_next_check_at",
            &serde_json::Value::Null,
            job.updated_at,
        )
        .await
        .unwrap();
    store
        .nudge_jobs(ids[0], &[Destination::Mapillary], job.updated_at)
        .await
        .unwrap();
    story
        .app
        .start_pipeline(pipeline_support::fast_engine(), PipelineOptions::live())
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let job = loop {
        let job = story.job(ids[0], Destination::Mapillary).await;
        if next_look(&job).is_some() && job.status == JobStatus::Pending {
            break job;
        }
        assert!(std::time::Instant::now() < deadline, "{job:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(job.next_run_at - job.updated_at, 15 * 60_000, "{job:#?}");
}

/// Issue 8.6: Mapillary publishes a chunk its own way — split into two sequences, a few
/// photos never published, positions moved, times cut to the second. The client finds
/// every sequence of the chunk and how many photos were published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_split_in_two_with_lost_photos_is_found_whole() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "300")]).await;
    feed_takes_user_tokens(&story);
    let state = story.sandbox().state();
    state.mapillary_split_next_cluster(6);
    state.mapillary_drop_from_next_cluster(4);
    let ids = upload_walk(&story, 27, 10).await;
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let clusters = state.mapillary_clusters();
    assert_eq!(clusters[0].sequence_ids.len(), 2);
    assert_eq!(clusters[0].unpublished_images, 2);
    let status = mapillary_status(&story, ids[0]).await;
    let chunk = &status.chunks[0];
    let mut found = chunk.sequence_keys.clone();
    found.sort();
    let mut expected = clusters[0].sequence_ids.clone();
    expected.sort();
    assert_eq!(found, expected, "every sequence the chunk became");
    assert_eq!(chunk.published, Some(8));
    assert_eq!(chunk.item_count, Some(10));
    let job = story.job(ids[0], Destination::Mapillary).await;
    // Done, but not plainly: two photos are not on the map, and the row says so.
    assert_eq!(
        job.note().as_deref(),
        Some(
            "Partly published: 8 of the 10 photos sent are on Mapillary's map; Mapillary left the others out."
        )
    );
    let all: Vec<String> = job.mly().sequence_keys_all;
    assert_eq!(all.len(), 2);
    // Map the Paths Web: one sequence per Mapillary sequence, each linked ("Part 2" for the
    // second), and the row is Done.
    let web = story.job(ids[0], Destination::Mtpw).await;
    assert_eq!(web.status, JobStatus::Done, "{web:#?}");
    let mtpw = state.mtpw_sequences();
    assert_eq!(mtpw.len(), 2, "{mtpw:#?}");
    let mut linked: Vec<String> = mtpw
        .iter()
        .filter_map(|s| s.mapillary_sequence_key.clone())
        .collect();
    linked.sort();
    let mut want = all.clone();
    want.sort();
    assert_eq!(linked, want);
    assert!(
        mtpw.iter().any(|s| s.name == "Staged walk Part 2"),
        "{mtpw:#?}"
    );
    // Deleting it names both Mapillary sequences, and opens both Map the Paths Web pages.
    let plan = story.app.delete_plan(ids[0]).await.unwrap();
    let on = |d: Destination| -> Vec<&mtp_app::manage::RemotePlan> {
        plan.remote.iter().filter(|p| p.destination == d).collect()
    };
    let mly = on(Destination::Mapillary);
    assert_eq!(mly.len(), 1, "{plan:#?}");
    assert!(
        all.iter().all(|key| mly[0].what.contains(key.as_str())),
        "{plan:#?}"
    );
    assert!(mly[0].says.contains("each of them"), "{plan:#?}");
    let pages: Vec<String> = on(Destination::Mtpw)
        .iter()
        .map(|p| match &p.how {
            mtp_app::manage::RemoteHow::OpenPage { url } => url.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(pages.len(), 2, "{plan:#?}");
    for s in &mtpw {
        assert!(
            pages
                .iter()
                .any(|u| u.ends_with(&format!("/sequence/{}/detail", s.unique_id))),
            "{pages:?}"
        );
    }
}

/// The same without the activity feed: the probes (first, middle, last photo) find both
/// sequences by position and time despite the moved positions and cut times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_feed_the_probes_find_a_split_chunk() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "300")]).await;
    let state = story.sandbox().state();
    state.mapillary_split_next_cluster(6);
    state.mapillary_drop_from_next_cluster(4);
    let ids = upload_walk(&story, 28, 10).await;
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let status = mapillary_status(&story, ids[0]).await;
    assert_eq!(status.detail, Some(StageDetail::Unavailable));
    assert_eq!(status.chunks[0].sequence_keys.len(), 2, "{status:#?}");
    assert_eq!(status.chunks[0].published, Some(8));
}

/// Issue 8.7: upload handles age. A job paused for three days (on the emulator's clock and
/// in the job's stored upload time) gets current handles before its manifest — one empty
/// POST per photo — and the cluster is made without sending a photo's bytes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_paused_for_three_days_refreshes_its_handles_without_sending_photos_again() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "200")]).await;
    let (ids, job) = paused_before_finish(&story, 29, 5, "Paused walk").await;
    let uploaded_at = job.mly().uploaded_at.unwrap();

    // Three days later.
    const DAYS_3: i64 = 3 * 24 * 3_600_000;
    let state = story.sandbox().state();
    state.advance_mapillary_clock(std::time::Duration::from_millis(DAYS_3 as u64));
    story
        .app
        .store()
        .set_job_remote(
            job.id,
            "uploaded_at",
            &serde_json::json!(uploaded_at - DAYS_3),
            uploaded_at,
        )
        .await
        .unwrap();
    resume_until_done(&story, &ids, job.id).await;
    let clusters = state.mapillary_clusters();
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].image_count, 5);
    let (photo_posts, finishes) = sent_since_resumed(&story);
    assert_eq!(
        photo_posts,
        vec![0; 5],
        "one empty POST per photo, no bytes again"
    );
    assert_eq!(
        finishes,
        vec![Some(200)],
        "the manifest's handles were all current"
    );
}

/// PROTOCOLS §2.6: unfinished uploads expire on the upload host. A job cut mid-photo and
/// paused for three days finds that photo's offset back at 0 and sends it whole; the
/// cluster holds every photo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_cut_mid_file_three_days_ago_is_sent_again_from_its_start() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "200")]).await;
    story.connect(&[Destination::Mapillary]).await;
    let folder = story.photos("walk", 4, &walk(31));
    let ids = story
        .import(&folder, "Cut walk", &[Destination::Mapillary])
        .await;
    // The first photo POST is cut after 200 bytes; every later one is refused, so that
    // one unfinished upload stays on the host.
    let faults = story.sandbox().faults();
    let cut = faults.reset_next("mapillary.upload", 1, 200);
    let refusing = faults.error_rate("mapillary.upload", 1.0, 503);
    let state = story.sandbox().state();
    let unfinished = || {
        state
            .mapillary_files()
            .into_iter()
            .find(|f| f.len > 0 && f.handle.is_none())
    };
    let job = paused_once(&story, ids[0], |job| {
        job.attempts >= 1 && unfinished().is_some()
    })
    .await;
    faults.remove(cut);
    faults.remove(refusing);
    let cut_key = unfinished().unwrap().key;

    state.advance_mapillary_clock(std::time::Duration::from_secs(3 * 24 * 3600));
    resume_until_done(&story, &ids, job.id).await;
    let clusters = state.mapillary_clusters();
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].image_count, 4);
    let whole = state.mapillary_file(&cut_key).unwrap();
    assert!(whole.handle.is_some(), "{whole:?}");
    let sent: Vec<u64> = story
        .sandbox()
        .requests()
        .iter()
        .filter(|r| r.endpoint.as_deref() == Some("mapillary.upload") && r.path.ends_with(&cut_key))
        .map(|r| r.body_len)
        .collect();
    assert_eq!(
        sent,
        vec![whole.len],
        "the expired photo went again from its first byte"
    );
}

/// Uploads `photos` photos of `walk(seed)` to Mapillary and stops the job just before its
/// `finish_upload` (refused until then): paused, with the engine stopped, so that nothing
/// is in flight (a `finish_upload` already sent would race the clocks the tests move).
async fn paused_before_finish(
    story: &Story,
    seed: i64,
    photos: usize,
    name: &str,
) -> (Vec<i64>, mtp_core::store::JobRow) {
    story.connect(&[Destination::Mapillary]).await;
    let folder = story.photos("walk", photos, &walk(seed));
    let ids = story.import(&folder, name, &[Destination::Mapillary]).await;
    let faults = story.sandbox().faults();
    // Refused, with a wait long enough that no finish_upload is in flight when the job is
    // paused (one cut short by the pause would leave its outcome unknown).
    let refusing = faults
        .apply_spec("mapillary.finish_upload:status=503,retry_after=3600")
        .unwrap()[0];
    let job = paused_once(story, ids[0], |job| {
        job.stage == Stage::Publish && job.attempts >= 1
    })
    .await;
    faults.remove(refusing);
    (ids, job)
}

/// Starts the engine, and once the Mapillary job of `sequence` meets `ready`, pauses it
/// and stops the engine, so that nothing is in flight when the test moves the clocks.
async fn paused_once(
    story: &Story,
    sequence: i64,
    ready: impl Fn(&mtp_core::store::JobRow) -> bool,
) -> mtp_core::store::JobRow {
    story.start_engine();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let job = loop {
        let job = story.job(sequence, Destination::Mapillary).await;
        if ready(&job) {
            break job;
        }
        assert!(std::time::Instant::now() < deadline, "{job:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    story
        .app
        .job_action(JobTarget::Job(job.id), JobAction::Pause)
        .await
        .unwrap();
    story.app.kill_engine().await;
    job
}

/// Resumes the job paused by [`paused_before_finish`] with the emulator's request log
/// emptied, and waits until every job of `ids` is done.
async fn resume_until_done(story: &Story, ids: &[i64], job_id: i64) {
    // The engine is stopped, but a request it sent just before may still be finishing on
    // the emulator's side (a busy machine): wait until none arrives for a while, so the log
    // holds only what the resumed job sends.
    let mut seen = story.sandbox().requests().len();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let now = story.sandbox().requests().len();
        if now == seen {
            break;
        }
        seen = now;
    }
    story.sandbox().clear_requests();
    story
        .app
        .job_action(JobTarget::Job(job_id), JobAction::Resume)
        .await
        .unwrap();
    story.start_engine();
    let jobs = story.settle(ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
}

/// What reached the Mapillary emulator since its requests were last cleared: the body
/// size of each photo POST, and the status of each `finish_upload`.
fn sent_since_resumed(story: &Story) -> (Vec<u64>, Vec<Option<u16>>) {
    let requests = story.sandbox().requests();
    let photo_posts = requests
        .iter()
        .filter(|r| {
            r.endpoint.as_deref() == Some("mapillary.upload")
                && r.method == "POST"
                && r.path.contains("mly_tools_")
        })
        .map(|r| r.body_len)
        .collect();
    let finishes = requests
        .iter()
        .filter(|r| r.endpoint.as_deref() == Some("mapillary.finish_upload"))
        .map(|r| r.status)
        .collect();
    (photo_posts, finishes)
}

/// Handles that expired early (here after an hour, paused in between): `finish_upload` is
/// refused with a 400 that names no reason, as Mapillary's own words are not documented.
/// The job renews the handles once, without sending the photos' bytes again, and the new
/// manifest is accepted. A second refusal with fresh handles would be final.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_that_expired_early_are_renewed_once_after_a_refusal() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "200")]).await;
    let (ids, job) = paused_before_finish(&story, 30, 4, "Early expiry").await;

    // Two hours later, on a host that keeps handles for one.
    let state = story.sandbox().state();
    state.set_mapillary_handle_max_age(std::time::Duration::from_secs(3_600));
    state.advance_mapillary_clock(std::time::Duration::from_secs(2 * 3_600));
    resume_until_done(&story, &ids, job.id).await;
    let clusters = state.mapillary_clusters();
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].image_count, 4);
    let (photo_posts, finishes) = sent_since_resumed(&story);
    assert_eq!(finishes, vec![Some(400), Some(200)]);
    assert_eq!(
        photo_posts,
        vec![0; 4],
        "one empty POST per photo, no bytes again"
    );
}

/// Mapillary also says "slow down" and "this token is refused" with a 400
/// (`RequestRateLimitedError`, `NotAuthorizedError`, PROTOCOLS §2.1, §2.3). Neither is the
/// refusal of expired handles: no handle is renewed (that renewal happens once per upload,
/// and a real expiry later would find it spent). The rate limit is waited out; the refused
/// token, which otherwise works, waits for a sign-in that may upload; then it is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_that_limits_the_rate_or_refuses_the_token_renews_no_handle() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "200")]).await;
    let (ids, job) = paused_before_finish(&story, 34, 4, "Four hundred").await;
    story
        .sandbox()
        .faults()
        .apply_spec(
            "mapillary.finish_upload:status=400,type=RequestRateLimitedError,retry_after=0,times=1;\
             mapillary.finish_upload:status=400,type=NotAuthorizedError,times=1",
        )
        .unwrap();
    story.sandbox().clear_requests();
    story
        .app
        .job_action(JobTarget::Job(job.id), JobAction::Resume)
        .await
        .unwrap();
    story.start_engine();
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::WaitingAuth, "{jobs:#?}");
    assert_eq!(
        jobs[0].last_error.as_deref(),
        Some("This Mapillary connection may not upload photos: integrate again and allow uploads")
    );
    sign_in_again(&story).await;
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{jobs:#?}");

    let (photo_posts, finishes) = sent_since_resumed(&story);
    assert_eq!(finishes, vec![Some(400), Some(400), Some(200)]);
    assert_eq!(photo_posts, Vec::<u64>::new(), "no handle renewed");
    assert_eq!(story.sandbox().state().mapillary_clusters().len(), 1);
}

/// The image the activity feed names for an upload was hidden by its owner on the website
/// (the Graph API no longer loads it): the upload is still found, by its other photos, and
/// the job ends done rather than failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_image_that_cannot_be_loaded_does_not_fail_a_published_upload() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "200")]).await;
    feed_takes_user_tokens(&story);
    story
        .sandbox()
        .state()
        .mapillary_hide_first_image_of_next_cluster();
    let ids = upload_walk(&story, 35, 5).await;
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let status = mapillary_status(&story, ids[0]).await;
    let clusters = story.sandbox().state().mapillary_clusters();
    assert_eq!(status.chunks[0].sequence_keys, clusters[0].sequence_ids);
    let refused = story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint.as_deref() == Some("mapillary.node") && r.status == Some(400))
        .count();
    assert_eq!(refused, 1, "the feed's image was asked for, and refused");
}

/// Starts the upload of a walk to Mapillary whose `finish_upload` goes through but whose
/// reply is lost (the connection is cut once the cluster is made).
async fn finish_reply_lost(story: &Story, seed: i64) -> Vec<i64> {
    story.connect(&[Destination::Mapillary]).await;
    let folder = story.photos(&format!("walk{seed}"), 4, &walk(seed));
    let ids = story
        .import(&folder, "Lost reply", &[Destination::Mapillary])
        .await;
    story
        .sandbox()
        .faults()
        .reset_next("mapillary.finish_upload", 1, 1 << 20);
    story.start_engine();
    ids
}

/// The reply to `finish_upload` is lost, and the activity feed answers: it lists the
/// cluster the call made, which the job takes as its own; no second call publishes the
/// photos twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_finish_reply_is_found_in_the_activity_feed_not_sent_again() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "400")]).await;
    feed_takes_user_tokens(&story);
    let ids = finish_reply_lost(&story, 36).await;
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{jobs:#?}");
    let clusters = story.sandbox().state().mapillary_clusters();
    assert_eq!(clusters.len(), 1, "published once");
    let (_, finishes) = sent_since_resumed(&story);
    assert_eq!(finishes, vec![None], "one finish_upload, its reply lost");
    // Taken from the feed (the cluster's id, its stages read from then on).
    assert_eq!(
        jobs[0].mly().chunks[0].cluster_id.as_deref(),
        Some(clusters[0].id.as_str())
    );
}

/// The reply to `finish_upload` is lost, the activity feed does not answer (as with most
/// tokens), and Mapillary takes a while to publish (10 s): the job says what it waits for and
/// looks for the photos, rather than finish again at once; they show, and it is done with
/// one cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_finish_reply_is_waited_for_on_the_map_not_sent_again() {
    // Publishing takes long enough that the job looks at least once before it is done.
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "10000")]).await;
    let ids = finish_reply_lost(&story, 37).await;
    let waiting = tokio::time::timeout(pipeline_support::SETTLE, async {
        loop {
            let job = story.job(ids[0], Destination::Mapillary).await;
            if job
                .last_error
                .as_deref()
                .is_some_and(|e| e.starts_with("Mapillary may already have this upload"))
            {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(waiting.status, JobStatus::Pending, "{waiting:#?}");
    assert!(
        waiting
            .last_error
            .as_deref()
            .unwrap()
            .ends_with("if they do not show within 1 minute of that step, it is sent again"),
        "{waiting:#?}"
    );
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{jobs:#?}");
    assert_eq!(
        story.sandbox().state().mapillary_clusters().len(),
        1,
        "published once"
    );
    let (_, finishes) = sent_since_resumed(&story);
    assert_eq!(finishes, vec![None]);
}

/// The app was killed after marking a `finish_upload` and before sending it. The activity
/// feed answers and lists no upload of these photos since: nothing was made, and the call
/// is sent at once, not after a wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_the_feed_shows_was_never_made_is_sent_at_once() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "200")]).await;
    feed_takes_user_tokens(&story);
    let (ids, job) = paused_before_finish(&story, 38, 4, "Killed before finishing").await;
    let mut chunks = job.mly().chunks;
    assert_eq!(
        chunks[0].finish_sent_at, None,
        "a refused call made nothing"
    );
    chunks[0].finish_sent_at = Some(story.app.now_ms());
    story
        .app
        .store()
        .set_job_remote(
            job.id,
            "chunks",
            &serde_json::to_value(&chunks).unwrap(),
            story.app.now_ms(),
        )
        .await
        .unwrap();
    resume_until_done(&story, &ids, job.id).await;
    let (_, finishes) = sent_since_resumed(&story);
    assert_eq!(finishes, vec![Some(200)]);
    assert_eq!(story.sandbox().state().mapillary_clusters().len(), 1);
}

/// The zips POSTed to Mapillary's upload host, in order.
fn zip_posts(story: &Story) -> Vec<mtp_sandbox::RecordedRequest> {
    story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| {
            r.endpoint.as_deref() == Some("mapillary.upload")
                && r.method == "POST"
                && r.path.ends_with(".zip")
        })
        .collect()
}

/// The `Offset` header of an upload POST.
fn offset(r: &mtp_sandbox::RecordedRequest) -> Option<u64> {
    r.headers
        .iter()
        .find(|(k, _)| k == "offset")
        .and_then(|(_, v)| v.parse().ok())
}

/// A Mapillary that no longer takes image bundles (mapillary_tools 0.14's undocumented
/// protocol, PROTOCOLS §2.2): `finish_upload` refuses the manifest, and again with fresh
/// handles. The photos then go as one zip (the older path mapillary_tools kept), which is
/// published: every photo in one cluster, Map the Paths Web linked, the job done, and the
/// zip gone from the data folder (with those an earlier process left). Without the fallback
/// the job fails with the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapillary_that_refuses_bundles_gets_the_photos_as_one_zip() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "200")]).await;
    story
        .sandbox()
        .faults()
        .apply_spec("mapillary_bundles=refuse")
        .unwrap();
    // Left by an earlier process: a zip of a job that no longer exists, a piece of one.
    let zips = story.app.data_dir().join("uploads");
    std::fs::create_dir_all(&zips).unwrap();
    std::fs::write(zips.join("mapillary-job999-chunk0.zip"), b"old").unwrap();
    std::fs::write(zips.join("mapillary-job1-chunk0.zip.part"), b"cut").unwrap();
    let ids = upload_walk(&story, 36, 6).await;
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let (photo_posts, finishes) = sent_since_resumed(&story);
    assert_eq!(finishes, vec![Some(400), Some(400), Some(200)]);
    let zip_posts: Vec<u64> = zip_posts(&story).iter().map(|r| r.body_len).collect();
    assert_eq!(zip_posts.len(), 1, "one zip: {zip_posts:?}");
    assert!(
        zip_posts[0] > photo_posts.iter().take(6).sum::<u64>() / 2,
        "the zip holds the photos: {zip_posts:?} for {photo_posts:?}"
    );
    let clusters = story.sandbox().state().mapillary_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:#?}");
    assert_eq!(clusters[0].file_type, "zip");
    assert_eq!(clusters[0].image_count, 6);
    assert_eq!(clusters[0].dropped_images, 0);
    let status = mapillary_status(&story, ids[0]).await;
    assert_eq!(
        status.chunks[0].cluster_id.as_deref(),
        Some(clusters[0].id.as_str())
    );
    assert!(!status.chunks[0].sequence_keys.is_empty(), "{status:#?}");
    let left: Vec<_> = std::fs::read_dir(&zips)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "zips left in {}: {left:?}", zips.display());
}

/// The zip's connection is cut after 2,000 bytes: the next attempt asks the server's
/// offset and sends the rest from there, under the same key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_cut_mid_way_resumes_from_the_servers_offset() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "200")]).await;
    // 6 photos, a manifest, 6 handles renewed and a second manifest come first.
    story
        .sandbox()
        .faults()
        .apply_spec("mapillary_bundles=refuse;mapillary.upload:reset_after=2000,times=1,after=14")
        .unwrap();
    let ids = upload_walk(&story, 37, 6).await;
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    let zip_posts = zip_posts(&story);
    assert_eq!(zip_posts.len(), 2, "{zip_posts:#?}");
    assert_eq!(zip_posts[0].path, zip_posts[1].path, "the same key");
    assert!(!zip_posts[0].body_complete);
    assert_eq!(zip_posts[0].body_len, 2000);
    assert_eq!(offset(&zip_posts[0]), Some(0));
    assert_eq!(offset(&zip_posts[1]), Some(2000));
    let clusters = story.sandbox().state().mapillary_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:#?}");
    assert_eq!(clusters[0].image_count, 6);
}

/// The app dies while the zip is on the wire (a slow link), and its zip file is lost too.
/// At the next start the zip is written again, byte for byte the same, so its saved key
/// still names it: the upload goes on from the bytes the server kept, and the photos are
/// published once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_sending_the_zip_the_app_resumes_it_from_the_servers_offset() {
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "200")]).await;
    let faults = story.sandbox().faults();
    // 6 photos, a manifest, 6 handles renewed and a second manifest come first; the zip
    // then crawls at 64 KiB/s (the photos are 200 kB: a zip of 1.2 MB).
    faults
        .apply_spec("mapillary_bundles=refuse;mapillary.upload:throttle_kbps=64,after=14")
        .unwrap();
    story.connect(&[Destination::Mapillary]).await;
    let folder = story.photos("walk", 6, &walk(38));
    pad_photos(&folder, 200_000);
    let ids = story
        .import(&folder, "Zip crash", &[Destination::Mapillary])
        .await;
    story.start_engine();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let key = loop {
        let job = story.job(ids[0], Destination::Mapillary).await;
        if let Some(key) = job.mly().chunks.first().and_then(|c| c.zip_key.clone()) {
            break key;
        }
        assert!(std::time::Instant::now() < deadline, "no zip: {job:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    story.app.kill_engine().await;
    let zips = story.app.data_dir().join("uploads");
    let written: Vec<_> = std::fs::read_dir(&zips)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    std::fs::remove_file(&written[0]).unwrap();

    faults.clear();
    story.start_engine();
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{jobs:#?}");
    let zip_posts = zip_posts(&story);
    assert_eq!(zip_posts.len(), 2, "{zip_posts:#?}");
    assert!(zip_posts.iter().all(|r| r.path.ends_with(&key)), "one key");
    // The second starts where the host's bytes end: after the first's start, before its
    // end (what the killed process had in flight may still have arrived in part).
    assert_eq!(offset(&zip_posts[0]), Some(0));
    let resumed_at = offset(&zip_posts[1]).unwrap();
    assert!(
        resumed_at > 0 && zip_posts[1].body_len > 0 && zip_posts[1].body_complete,
        "resumed mid-way: {zip_posts:#?}"
    );
    let clusters = story.sandbox().state().mapillary_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:#?}");
    assert_eq!(clusters[0].file_type, "zip");
    assert_eq!(clusters[0].image_count, 6);
    assert_eq!(std::fs::read_dir(&zips).unwrap().count(), 0);
}
