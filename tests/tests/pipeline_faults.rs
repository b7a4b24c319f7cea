//! Stories of a network and services that misbehave: bursts of server errors, rate limits,
//! connections cut mid-photo, a wrong offset, a slow server, a refused sync. Every upload
//! still ends with each photo on each service exactly once.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_app::PipelineOptions;
use mtp_core::Destination;
use mtp_core::engine::{ErrorKind, JobStatus, Stage};
use mtp_providers::mapillary::UPLOAD_CHUNK;
use mtp_tests::JobRemote;
use pipeline_support::{
    Story, assert_kartaview_once, assert_mapillary_once, assert_panoramax_once, fast_engine,
    pad_photos, walk,
};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_server_errors_are_retried_and_nothing_arrives_twice() {
    let story = Story::start().await;
    story.connect(&Destination::ALL).await;
    let folder = story.photos("walk", 10, &walk(0));
    let ids = story
        .import(&folder, "Stormy walk", &Destination::ALL)
        .await;
    let faults = story.sandbox().faults();
    faults.fail_next("mapillary.upload", 4, 503);
    faults.fail_next("mapillary.offset", 2, 500);
    faults.fail_next("mapillary.finish_upload", 2, 503);
    faults.fail_next("mapillary.images", 2, 502);
    faults.fail_next("kartaview.sequence", 1, 500);
    faults.fail_next("kartaview.photo", 3, 500);
    faults.fail_next("kartaview.finished_uploading", 2, 503);
    faults.fail_next("panoramax.create_upload_set", 1, 503);
    faults.fail_next("panoramax.files", 3, 502);
    faults.fail_next("panoramax.upload_set", 2, 500);
    faults.fail_next("mtpw.create", 2, 503);
    faults.fail_next("mtpw.import", 1, 503);
    story.start_engine();
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    for (_, rule, fired) in faults.rules() {
        assert!(fired > 0, "a fault never fired: {rule:?}");
    }
    assert_mapillary_once(&story, ids[0], 0).await;
    assert_kartaview_once(&story, ids[0], 10).await;
    assert_panoramax_once(&story, ids[0], 10).await;
    let state = story.sandbox().state();
    assert_eq!(state.mtpw_sequences().len(), 1);
    let mly = story.job(ids[0], Destination::Mapillary).await;
    assert_eq!(
        state.mtpw_sequences()[0].mapillary_sequence_key,
        mly.mly().sequence_key
    );
    // The log says what happened.
    let events = story.app.store().events(Some(ids[0]), 500).await.unwrap();
    assert!(events.iter().any(|e| e.kind == "retry"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_waited_out_for_as_long_as_the_service_asks() {
    let story = Story::start().await;
    story
        .connect(&[Destination::Mapillary, Destination::Kartaview])
        .await;
    let folder = story.photos("walk", 4, &walk(1));
    let ids = story
        .import(
            &folder,
            "Busy walk",
            &[Destination::Mapillary, Destination::Kartaview],
        )
        .await;
    let faults = story.sandbox().faults();
    // Mapillary's JSON backoff (ms), KartaView's Retry-After (s).
    faults.rate_limit_next("mapillary.upload", 2, None, Some(400));
    faults.rate_limit_next("kartaview.photo", 1, Some(1), None);
    // One photo at a time, so that nothing else is in flight when the limit hits.
    story
        .app
        .start_pipeline(
            fast_engine(),
            PipelineOptions {
                parallel_uploads: 1,
                ..PipelineOptions::sandbox()
            },
        )
        .unwrap();
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    assert_mapillary_once(&story, ids[0], 0).await;
    assert_kartaview_once(&story, ids[0], 4).await;

    let requests = story.sandbox().requests();
    let events = story.app.store().events(Some(ids[0]), 500).await.unwrap();
    let log: Vec<String> = events
        .iter()
        .map(|e| format!("{} {} {}", e.at, e.kind, e.message))
        .collect();
    // The requests of the rate-limited host only: the app may ask the same service's other
    // host meanwhile (Mapillary's Graph API for an account's stats, say).
    for (service, endpoints, wait) in [
        (
            "mapillary",
            &["mapillary.upload", "mapillary.offset"][..],
            Duration::from_millis(400),
        ),
        (
            "kartaview",
            &["kartaview.photo"][..],
            Duration::from_secs(1),
        ),
    ] {
        let of_service: Vec<_> = requests
            .iter()
            .filter(|r| {
                r.endpoint
                    .as_deref()
                    .is_some_and(|e| endpoints.contains(&e))
            })
            .collect();
        let limited: Vec<usize> = of_service
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status == Some(429))
            .map(|(i, _)| i)
            .collect();
        assert!(!limited.is_empty(), "{service} was never rate limited");
        for i in limited {
            let next = of_service
                .get(i + 1)
                .unwrap_or_else(|| panic!("nothing followed {service}'s 429"));
            let gap = next.received_at - of_service[i].received_at;
            assert!(
                gap >= wait,
                "{service}: the next request came {gap} after a 429 asking for {wait:?}\n\
                 its requests:\n{}\nevents:\n{}",
                of_service
                    .iter()
                    .map(|r| format!(
                        "#{} {} {} {:?} fault={:?} body={} complete={}",
                        r.seq,
                        r.received_at,
                        r.path,
                        r.status,
                        r.fault,
                        r.body_len,
                        r.body_complete
                    ))
                    .collect::<Vec<_>>()
                    .join("\n"),
                log.join("\n")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_photo_resumes_from_the_servers_offset() {
    let story = Story::start().await;
    story.connect(&[Destination::Mapillary]).await;
    let folder = story.photos("walk", 6, &walk(2));
    pad_photos(&folder, 300_000);
    let ids = story
        .import(&folder, "Cut walk", &[Destination::Mapillary])
        .await;
    // Three uploads lose their connection after 100 kB of the body.
    story
        .sandbox()
        .faults()
        .reset_next("mapillary.upload", 3, 100_000);
    story.start_engine();
    story.settle(&ids).await;
    // Each cut photo went on from where the server stopped: no byte arrived twice beyond
    // the chunk in flight when the connection broke.
    let resumed = assert_mapillary_once(&story, ids[0], UPLOAD_CHUNK as u64).await;
    assert_eq!(resumed, 3);
    let cut: Vec<_> = story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint.as_deref() == Some("mapillary.upload") && !r.body_complete)
        .collect();
    assert_eq!(cut.len(), 3);
    assert!(
        cut.iter()
            .all(|r| r.body_len == 100_000 && r.status.is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_offset_is_read_again_at_once() {
    let story = Story::start().await;
    story.connect(&[Destination::Mapillary]).await;
    let folder = story.photos("walk", 5, &walk(3));
    let ids = story
        .import(&folder, "Offset walk", &[Destination::Mapillary])
        .await;
    story
        .sandbox()
        .faults()
        .fail_next("mapillary.upload", 2, 412);
    story.start_engine();
    story.settle(&ids).await;
    assert_mapillary_once(&story, ids[0], 0).await;
    let requests = story.sandbox().requests();
    let refused: Vec<usize> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == Some(412))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(refused.len(), 2);
    // The offset is asked again for the same key right after, within the same stage.
    for i in refused {
        let key = requests[i].path.clone();
        let again = requests[i + 1..].iter().find(|r| r.path == key).unwrap();
        assert_eq!(again.method, "GET", "{again:?}");
    }
    let events = story.app.store().events(Some(ids[0]), 500).await.unwrap();
    assert!(
        !events.iter().any(|e| e.kind == "retry"),
        "a 412 should not cost a retry of the stage: {events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_is_only_slow() {
    let story = Story::start().await;
    story.connect(&Destination::ALL).await;
    let folder = story.photos("walk", 6, &walk(4));
    let ids = story.import(&folder, "Slow walk", &Destination::ALL).await;
    story
        .sandbox()
        .faults()
        .latency("*", Duration::from_millis(150));
    story.start_engine();
    let jobs = story.settle(&ids).await;
    assert!(
        jobs.iter().all(|j| j.status == JobStatus::Done),
        "{jobs:#?}"
    );
    assert!(jobs.iter().all(|j| j.attempts == 0));
    assert_mapillary_once(&story, ids[0], 0).await;
    assert_kartaview_once(&story, ids[0], 6).await;
    assert_panoramax_once(&story, ids[0], 6).await;
    let events = story.app.store().events(Some(ids[0]), 500).await.unwrap();
    assert!(!events.iter().any(|e| e.kind == "retry"), "{events:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sync_fails_only_the_map_the_paths_job() {
    let story = Story::start().await;
    story
        .connect(&[
            Destination::Mapillary,
            Destination::Panoramax,
            Destination::Mtpw,
        ])
        .await;
    let folder = story.photos("walk", 4, &walk(5));
    let destinations = [
        Destination::Mapillary,
        Destination::Panoramax,
        Destination::Mtpw,
    ];
    let ids = story.import(&folder, "Lonely walk", &destinations).await;
    story.sandbox().faults().fail_next("mtpw.import", 1, 400);
    story.start_engine();
    let jobs = story.settle(&ids).await;
    let mtpw = story.job(ids[0], Destination::Mtpw).await;
    assert_eq!((mtpw.stage, mtpw.status), (Stage::Sync, JobStatus::Failed));
    assert_eq!(mtpw.last_error_kind, Some(ErrorKind::Permanent));
    assert!(mtpw.web().unique_id.is_some());
    assert!(mtpw.web().imported_key.is_none());
    for j in jobs.iter().filter(|j| j.destination != Destination::Mtpw) {
        assert_eq!(j.status, JobStatus::Done, "{j:?}");
    }
    assert_mapillary_once(&story, ids[0], 0).await;
    assert_panoramax_once(&story, ids[0], 4).await;

    // Retrying the sync alone links the sequence; nothing is uploaded again.
    let before = story.sandbox().requests().len();
    story
        .app
        .job_action(
            mtp_app::jobs::JobTarget::Job(mtpw.id),
            mtp_app::jobs::JobAction::Retry,
        )
        .await
        .unwrap();
    story.settle(&ids).await;
    let mtpw = story.job(ids[0], Destination::Mtpw).await;
    assert_eq!(mtpw.status, JobStatus::Done);
    let mly = story.job(ids[0], Destination::Mapillary).await;
    assert_eq!(mtpw.web().imported_key, mly.mly().sequence_key);
    let after: Vec<_> = story
        .sandbox()
        .requests()
        .into_iter()
        .skip(before)
        .collect();
    let resent: Vec<_> = after
        .iter()
        .filter(|r| {
            matches!(
                r.endpoint.as_deref(),
                Some(
                    "mapillary.upload"
                        | "mapillary.finish_upload"
                        | "panoramax.create_upload_set"
                        | "panoramax.files"
                        | "mtpw.create"
                )
            )
        })
        .collect();
    assert!(resent.is_empty(), "{resent:#?}");
}

/// Every service unreachable for a long time, then back: no job fails and no job needs a
/// click; each waits, says what it waits for, and completes once its service answers. The
/// retry schedule is scaled down (a 20 ms cap standing for the real 5 minutes), so the outage
/// below lasts well over a hundred tries of every job; the engine used to give up after 12.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_of_every_service_is_waited_out_with_no_action_from_the_user() {
    let story = Story::start().await;
    story.connect(&Destination::ALL).await;
    let folder = story.photos("walk", 6, &walk(9));
    let ids = story
        .import(&folder, "Walk in the outage", &Destination::ALL)
        .await;
    let faults = story.sandbox().faults();
    let down = faults.error_rate("*", 1.0, 503);
    let mut config = fast_engine();
    config.retry.base_ms = 2;
    config.retry.cap_ms = 20;
    story
        .app
        .start_pipeline(config, PipelineOptions::sandbox())
        .unwrap();
    // Wait until every job has tried far more often than the old limit allowed.
    let deadline = std::time::Instant::now() + pipeline_support::SETTLE;
    loop {
        let jobs = story.app.store().jobs_of_sequence(ids[0]).await.unwrap();
        for j in &jobs {
            assert!(
                j.status.is_active(),
                "a job gave up during the outage: {j:#?}"
            );
        }
        if jobs.iter().all(|j| j.attempts > 30) {
            for j in &jobs {
                assert_eq!(j.last_error_kind, Some(ErrorKind::Retry), "{j:#?}");
                let view = mtp_app::sequences::JobView::from(j);
                assert!(view.last_error.is_some(), "{view:#?}");
            }
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{jobs:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(faults.remove(down));
    let jobs = story.settle(&ids).await;
    for j in &jobs {
        assert_eq!(j.status, JobStatus::Done, "{j:#?}");
    }
    assert_mapillary_once(&story, ids[0], 0).await;
}
