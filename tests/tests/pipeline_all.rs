//! Story: a folder goes to every destination, and each service ends up holding every photo
//! exactly once, published, with every remote id stored on our side.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_app::PipelineOptions;
use mtp_core::Destination;
use mtp_core::engine::{ItemState, JobStatus, Stage};
use mtp_tests::JobRemote;
use pipeline_support::{Story, fast_engine, mapillary_bytes_received, walk};
use std::collections::{BTreeSet, HashSet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_reaches_every_destination_exactly_once() {
    let story = Story::start().await;
    story.connect(&Destination::ALL).await;
    let folder = story.photos("walk", 12, &walk(0));
    let ids = story.import(&folder, "River walk", &Destination::ALL).await;
    assert_eq!(ids.len(), 1);
    let seq = ids[0];
    story.start_engine();
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs.len(), 4);
    for j in &jobs {
        assert_eq!(
            (j.stage, j.status),
            (Stage::Done, JobStatus::Done),
            "{}: {:?}",
            j.destination,
            j.last_error
        );
    }
    let state = story.sandbox().state();

    // Mapillary: every photo's key once, complete and named after its bytes; one cluster,
    // one sequence, found again by position and time.
    let mly = story.job(seq, Destination::Mapillary).await;
    assert_eq!((mly.photos_done, mly.photos_total), (12, 12));
    let items = story.app.store().job_items(mly.id).await.unwrap();
    let keys: HashSet<String> = items
        .iter()
        .map(|i| {
            assert_eq!(i.state, ItemState::Sent);
            assert!(i.remote_id.is_some(), "{} has no handle", i.file_name);
            i.remote_key.clone().unwrap()
        })
        .collect();
    assert_eq!(keys.len(), 12);
    let files: Vec<_> = state
        .mapillary_files()
        .into_iter()
        .filter(|f| f.key.starts_with("mly_tools_"))
        .collect();
    assert_eq!(files.len(), 12);
    for f in &files {
        assert!(keys.contains(&f.key), "unexpected key {}", f.key);
        assert!(f.key_matches_md5(), "{} holds other bytes", f.key);
        assert!(f.handle.is_some());
        assert_eq!(f.posts, 1, "{} was sent {} times", f.key, f.posts);
    }
    let received = mapillary_bytes_received(story.sandbox());
    for f in &files {
        assert_eq!(received[&f.key], f.len, "{} bytes sent twice", f.key);
    }
    let clusters = state.mapillary_clusters();
    assert_eq!(clusters.len(), 1);
    let cluster = &clusters[0];
    assert_eq!(cluster.file_type, "mly_bundle_manifest");
    assert_eq!(cluster.image_count, 12);
    assert_eq!(cluster.manifest_canonical, Some(true));
    assert_eq!(mly.mly().cluster_id.as_deref(), Some(cluster.id.as_str()));
    assert_eq!(
        mly.mly().sequence_key.as_deref(),
        Some(cluster.sequence_ids[0].as_str())
    );
    let images = state.mapillary_images();
    let first = images
        .iter()
        .find(|i| Some(&i.id) == mly.mly().first_image_id.as_ref())
        .unwrap();
    assert_eq!(first.upload_key, items[0].remote_key.clone().unwrap());
    assert!(mly.remote_url.as_deref().unwrap().contains(&first.id));

    // KartaView: one sequence, each index once, finished and processed.
    let kv = story.job(seq, Destination::Kartaview).await;
    let kv_seq = state
        .kartaview_sequence(&kv.kv().sequence_id.unwrap())
        .unwrap();
    let indexes: BTreeSet<u32> = kv_seq.photos.iter().map(|p| p.sequence_index).collect();
    assert_eq!(kv_seq.photos.len(), 12);
    assert_eq!(indexes, (0..12).collect());
    assert!(kv_seq.duplicate_attempts.is_empty());
    assert_ne!(kv_seq.status, "NEW");
    assert!(kv_seq.photos.iter().all(|p| p.projection.is_none()));
    let kv_items = story.app.store().job_items(kv.id).await.unwrap();
    assert!(
        kv_items
            .iter()
            .all(|i| i.state == ItemState::Sent && i.remote_id.is_some())
    );
    assert_eq!(state.kartaview_sequences().len(), 1);
    // The row links to the sequence's page, from the same template as live mode.
    let kv_id = kv.kv().sequence_id.unwrap();
    assert_eq!(
        kv.remote_url.as_deref(),
        Some(
            format!(
                "{}/details/{kv_id}",
                story
                    .sandbox()
                    .urls()
                    .kartaview_api
                    .as_str()
                    .trim_end_matches('/')
            )
            .as_str()
        )
    );
    assert_page(
        kv.remote_url.as_deref().unwrap(),
        &format!("data-sequence=\"{kv_id}\""),
    )
    .await;

    // Panoramax: one upload set, each file once, none rejected, ready as one collection.
    let pnx = story.job(seq, Destination::Panoramax).await;
    let set = state
        .panoramax_upload_set(&pnx.px().upload_set_id.unwrap())
        .unwrap();
    assert_eq!(set.title, "River walk");
    assert_eq!(set.estimated_nb_files, Some(12));
    assert!(set.completed && set.ready);
    let names: HashSet<&str> = set.files.iter().map(|f| f.file_name.as_str()).collect();
    assert_eq!((set.files.len(), names.len()), (12, 12));
    assert!(set.files.iter().all(|f| f.rejected.is_none()));
    assert_eq!(set.collection_ids.len(), 1);
    assert_eq!(
        pnx.px().collection_id.as_deref(),
        Some(set.collection_ids[0].as_str())
    );
    assert_eq!(state.panoramax_upload_sets().len(), 1);
    // "View on Panoramax" opens the instance's viewer on the sequence's first picture, not
    // the API's JSON.
    let pnx_url = pnx.remote_url.clone().unwrap();
    let instance = story
        .sandbox()
        .urls()
        .panoramax_instance
        .as_str()
        .trim_end_matches('/')
        .to_string();
    assert!(
        pnx_url.starts_with(&format!("{instance}/?focus=pic&pic=")),
        "{pnx_url}"
    );
    assert!(!pnx_url.contains("/api/"), "{pnx_url}");
    assert_page(
        &pnx_url,
        &format!("data-sequence=\"{}\"", set.collection_ids[0]),
    )
    .await;
    assert_page(&pnx_url, "Picture 1 of 12").await;

    // Map the Paths Web: created once with the metadata, and linked to the Mapillary key.
    let mtpw = story.job(seq, Destination::Mtpw).await;
    let web = state.mtpw_sequence(&mtpw.web().unique_id.unwrap()).unwrap();
    assert_eq!(web.name, "River walk");
    assert_eq!(web.transport_type, "Walk");
    assert_eq!(web.tags, vec!["river".to_string(), "test".to_string()]);
    assert_eq!(web.mapillary_sequence_key, mly.mly().sequence_key);
    assert_eq!(web.image_count, Some(12));
    assert!(
        mtpw.web()
            .import_message
            .unwrap()
            .contains("will be published"),
        "{:?}",
        mtpw.remote_json
    );
    assert_eq!(state.mtpw_sequences().len(), 1);
    let unique_id = mtpw.web().unique_id.unwrap();
    assert_eq!(
        mtpw.remote_url.as_deref(),
        Some(format!("{}/sequence/{unique_id}/detail", story.mtpw_base()).as_str())
    );
    assert_page(
        mtpw.remote_url.as_deref().unwrap(),
        &format!("data-unique-id=\"{unique_id}\""),
    )
    .await;
}

/// The page a "View on …" link opens answers 200 with `needle` in it.
async fn assert_page(url: &str, needle: &str) {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let text = r.text().await.unwrap();
    assert!(text.contains(needle), "{url}: {needle} not in {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_sequence_goes_to_mapillary_in_chunks_of_one_sequence_each() {
    let story = Story::start().await;
    story
        .connect(&[Destination::Mapillary, Destination::Mtpw])
        .await;
    let folder = story.photos("long", 12, &walk(1));
    let ids = story
        .import(
            &folder,
            "Long walk",
            &[Destination::Mapillary, Destination::Mtpw],
        )
        .await;
    story
        .app
        .start_pipeline(
            fast_engine(),
            PipelineOptions {
                mapillary_chunk: 5,
                ..PipelineOptions::sandbox()
            },
        )
        .unwrap();
    let jobs = story.settle(&ids).await;
    assert!(jobs.iter().all(|j| j.status == JobStatus::Done), "{jobs:?}");
    let mly = story.job(ids[0], Destination::Mapillary).await;
    let remote = mly.mly();
    let clusters = story.sandbox().state().mapillary_clusters();
    assert_eq!(clusters.len(), 3);
    let counts: Vec<usize> = clusters.iter().map(|c| c.image_count).collect();
    assert_eq!(counts, vec![5, 5, 2]);
    let stored: Vec<String> = remote
        .chunks
        .iter()
        .map(|c| c.cluster_id.clone().unwrap())
        .collect();
    assert_eq!(
        stored,
        clusters.iter().map(|c| c.id.clone()).collect::<Vec<_>>()
    );
    let keys: Vec<String> = remote
        .chunks
        .iter()
        .map(|c| c.sequence_key.clone().unwrap())
        .collect();
    let expected: Vec<String> = clusters.iter().map(|c| c.sequence_ids[0].clone()).collect();
    assert_eq!(keys, expected);
    // Map the Paths takes one Mapillary sequence: the first.
    let mtpw = story.job(ids[0], Destination::Mtpw).await;
    assert_eq!(mtpw.web().imported_key, Some(expected[0].clone()));
}

/// Issue 9: an upload Mapillary never confirms is not "Done": it ends as "Not confirmed by
/// Mapillary after 3 days" (a retry is "Check again"), and Map the Paths Web goes on
/// without the imagery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_mapillary_never_shows_the_sequence_the_jobs_end_with_a_note() {
    // The emulator takes ten minutes to "process"; we stop looking after a moment.
    let story = Story::start_with(&[("MTP_SANDBOX_PROCESSING_MS", "600000")]).await;
    story
        .connect(&[Destination::Mapillary, Destination::Mtpw])
        .await;
    let folder = story.photos("walk", 3, &walk(2));
    let ids = story
        .import(
            &folder,
            "Slow walk",
            &[Destination::Mapillary, Destination::Mtpw],
        )
        .await;
    story
        .app
        .start_pipeline(
            fast_engine(),
            PipelineOptions {
                poll_first_ms: 20,
                poll_max_ms: 50,
                publish_timeout_ms: 300,
                mtpw_wait_ms: 20,
                mapillary_poll_fast_ms: 20,
                mapillary_poll_slow_ms: 50,
                ..PipelineOptions::sandbox()
            },
        )
        .unwrap();
    let jobs = story.settle(&ids).await;
    let mly = story.job(ids[0], Destination::Mapillary).await;
    assert_eq!(mly.status, JobStatus::Failed, "{jobs:#?}");
    assert!(
        mly.last_error
            .as_deref()
            .unwrap()
            .starts_with("Not confirmed by Mapillary after 3 days"),
        "{mly:?}"
    );
    assert!(mly.mly().cluster_id.is_some());
    assert!(mly.mly().sequence_key.is_none());
    assert!(mly.mly().unconfirmed, "{mly:#?}");
    let looks = story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| r.endpoint.as_deref() == Some("mapillary.graphql"))
        .count();
    assert!(looks >= 2, "{looks} looks at the activity feed");
    let mtpw = story.job(ids[0], Destination::Mtpw).await;
    assert!(mtpw.web().imported_key.is_none(), "{jobs:#?}");
    // Not "failed": Mapillary only has not confirmed it, and the way on is Check again.
    assert_eq!(
        mtpw.web().waiting.as_deref(),
        Some(
            "Created on Map the Paths Web; waiting for Mapillary to link it: Mapillary has not confirmed the upload yet. Use Check again there; this one then goes on by itself."
        ),
        "{mtpw:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panoramas_go_to_kartaview_as_spheres() {
    let story = Story::start().await;
    story.connect(&[Destination::Kartaview]).await;
    let spec = mtp_core::photo::fixture::TrackSpec {
        is_360: true,
        width: Some(5760),
        height: Some(2880),
        ..walk(3)
    };
    let folder = story.photos("pano", 4, &spec);
    let ids = story
        .import(&folder, "Pano walk", &[Destination::Kartaview])
        .await;
    story.start_engine();
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{jobs:#?}");
    let kv = story.job(ids[0], Destination::Kartaview).await;
    let seq = story
        .sandbox()
        .state()
        .kartaview_sequence(&kv.kv().sequence_id.unwrap())
        .unwrap();
    assert_eq!(seq.photos.len(), 4);
    for p in &seq.photos {
        assert_eq!(p.projection.as_deref(), Some("SPHERE"));
        assert_eq!(p.field_of_view, Some(360.0));
        assert!(p.heading.is_some());
    }
    // Shot dates are UTC, as stored.
    let photos = story.app.store().photos(ids[0]).await.unwrap();
    let first = seq.photos.iter().find(|p| p.sequence_index == 0).unwrap();
    assert_eq!(
        first.shot_date,
        mtp_providers::kartaview::format_shot_date(photos[0].captured_at).unwrap()
    );
}

/// Panoramax retries a picture whose preparation fails, then marks it broken, and the
/// upload set is ready without it (PROTOCOLS §4.1); the broken pictures stay in the
/// sequence, seen by their owner only. The row ends done with what Panoramax kept, says that
/// it is partly published and how many photos are not on the map, and links to a picture
/// that is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pictures_panoramax_could_not_process_are_said_not_hidden() {
    let story = Story::start().await;
    story.connect(&[Destination::Panoramax]).await;
    let folder = story.photos("walk", 5, &walk(31));
    let ids = story
        .import(&folder, "Broken pictures", &[Destination::Panoramax])
        .await;
    // The walk's first two photos (its files sort in time order).
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    story
        .sandbox()
        .state()
        .panoramax_break_pictures_named(&[&names[0], &names[1]]);
    story.start_engine();
    let jobs = story.settle(&ids).await;
    let job = &jobs[0];
    assert_eq!(job.status, JobStatus::Done, "{job:#?}");
    let note = job.note().unwrap_or_default();
    assert_eq!(
        note,
        "Partly published: Panoramax could not process 2 photos (broken after its retries); the other photos are on the map."
    );
    story.sandbox().state().panoramax_break_pictures_named(&[]);
    let collections = story.sandbox().state().panoramax_collections();
    assert_eq!(collections.len(), 1);
    assert_eq!(collections[0].picture_ids.len(), 5);
    let broken = &collections[0].broken_picture_ids;
    assert_eq!(broken.len(), 2);
    assert_eq!(
        job.px().collection_id.as_deref(),
        Some(collections[0].id.as_str())
    );
    // The first pictures sent broke, and the sequence starts with them: the link skips them.
    assert_eq!(broken[..], collections[0].picture_ids[..2]);
    let link = job.remote_url.as_deref().unwrap();
    assert!(link.contains(&collections[0].picture_ids[2]), "{link}");

    // Every photo of the next upload broken: nothing on the map, and the row says why.
    let folder = story.photos("walk-2", 3, &walk(32));
    let ids = story
        .import(&folder, "All broken", &[Destination::Panoramax])
        .await;
    story.sandbox().state().panoramax_break_next_pictures(3);
    let jobs = story.settle(&ids).await;
    let note = jobs[0].note().unwrap_or_default();
    assert_eq!(
        note,
        "Not on the map: Panoramax could not process any photo of this upload (3 photos broken after its retries).",
        "{:#?}",
        jobs[0]
    );
}

/// KartaView's processing of a sequence can fail (`PROCESSING_FAILED`, PROTOCOLS §3.3): the
/// job fails with KartaView's word for it, never done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_kartaview_could_not_process_fails_the_job() {
    let story = Story::start().await;
    story.connect(&[Destination::Kartaview]).await;
    let folder = story.photos("walk", 3, &walk(33));
    let ids = story
        .import(&folder, "Failed processing", &[Destination::Kartaview])
        .await;
    story.sandbox().state().kartaview_fail_next_sequence();
    story.start_engine();
    let jobs = story.settle(&ids).await;
    let job = &jobs[0];
    assert_eq!(job.status, JobStatus::Failed, "{job:#?}");
    let id = job.kv().sequence_id.unwrap();
    assert_eq!(
        job.last_error.as_deref(),
        Some(
            format!("KartaView could not process sequence {id} (it says PROCESSING_FAILED): its photos are not on the map. Retry asks KartaView again.")
                .as_str()
        )
    );
    let seq = story.sandbox().state().kartaview_sequence(&id).unwrap();
    assert_eq!(seq.status, "PROCESSING_FAILED");
}

/// KartaView processed the sequence but shows fewer photos than were sent (its
/// `countActivePhotos`, PROTOCOLS §3.3): the row ends done with that said, not a plain "Done".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_photos_shown_by_kartaview_than_sent_are_said() {
    let story = Story::start().await;
    story.connect(&[Destination::Kartaview]).await;
    let folder = story.photos("walk", 4, &walk(34));
    let ids = story
        .import(&folder, "Thinned out", &[Destination::Kartaview])
        .await;
    story.sandbox().state().kartaview_drop_from_next_sequence(1);
    story.start_engine();
    let jobs = story.settle(&ids).await;
    let job = &jobs[0];
    assert_eq!(job.status, JobStatus::Done, "{job:#?}");
    let id = job.kv().sequence_id.unwrap();
    assert_eq!(
        job.note().as_deref(),
        Some(
            format!("Partly published: KartaView shows 3 of the 4 photos sent in sequence {id}.")
                .as_str()
        )
    );
}
