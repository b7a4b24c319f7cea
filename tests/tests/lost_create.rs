//! Story: a create whose reply was lost (the app was killed after the service made the
//! sequence, before the id was saved). The next run finds the empty sequence the lost reply
//! named and uses it: no second KartaView sequence or Panoramax upload set. Map the Paths
//! Web cannot list sequences, so its row says a copy may exist.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_core::Destination;
use mtp_core::engine::JobStatus;
use mtp_providers::panoramax::{NewUploadSet, PanoramaxClient};
use mtp_tests::JobRemote;
use pipeline_support::{Story, walk};
use serde_json::json;

/// The job of `d` for the sequence, with a create recorded as sent before the "crash".
async fn crashed_after_create(story: &Story, sequence_id: i64, d: Destination) -> i64 {
    let job = story.job(sequence_id, d).await;
    story
        .app
        .store()
        .set_job_remote(job.id, "create_started_at", &json!(story.app.now_ms()), 0)
        .await
        .unwrap();
    job.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_is_found_again_instead_of_made_twice() {
    let story = Story::start().await;
    let dests = [
        Destination::Kartaview,
        Destination::Panoramax,
        Destination::Mtpw,
    ];
    story.connect(&dests).await;
    let folder = story.photos("walk", 5, &walk(31));
    let ids = story.import(&folder, "Lost reply walk", &dests).await;
    let seq = ids[0];
    let services = story.app.services();

    // What the killed run's creates did on the services before their replies were lost.
    let orphan = story.kartaview_create().await;
    let px = story
        .app
        .store()
        .account(Destination::Panoramax)
        .await
        .unwrap()
        .unwrap();
    let px_client = PanoramaxClient::with_url(
        services.http.clone(),
        url::Url::parse(px.instance_url.as_deref().unwrap()).unwrap(),
        Some(px.access_token.clone()),
    );
    let orphan_set = px_client
        .create_upload_set(&NewUploadSet {
            title: "Lost reply walk".into(),
            estimated_nb_files: Some(5),
            ..NewUploadSet::default()
        })
        .await
        .unwrap();
    for d in dests {
        crashed_after_create(&story, seq, d).await;
    }

    story.start_engine();
    let jobs = story.settle(&ids).await;
    for j in &jobs {
        assert_eq!(j.status, JobStatus::Done, "{j:#?}");
    }
    let state = story.sandbox().state();

    let kv_job = story.job(seq, Destination::Kartaview).await;
    assert_eq!(kv_job.kv().sequence_id, Some(orphan));
    assert_eq!(state.kartaview_sequences().len(), 1);
    assert_eq!(state.kartaview_sequences()[0].photos.len(), 5);

    let px_job = story.job(seq, Destination::Panoramax).await;
    assert_eq!(px_job.px().upload_set_id, Some(orphan_set.id));
    assert_eq!(state.panoramax_upload_sets().len(), 1);

    // Map the Paths Web: nothing to find; the row says what may be there.
    let view = story.app.sequence(seq).await.unwrap();
    let web = view
        .jobs
        .iter()
        .find(|j| j.destination == Destination::Mtpw)
        .unwrap();
    let note = web.note.clone().unwrap_or_default();
    assert!(note.contains("may also hold an empty copy"), "{web:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_lost_creates_never_take_the_same_sequence() {
    let story = Story::start().await;
    story.connect(&[Destination::Kartaview]).await;
    let a = story.photos("a", 3, &walk(32));
    let b = story.photos("b", 4, &walk(33));
    let first = story
        .import(&a, "Lost walk A", &[Destination::Kartaview])
        .await[0];
    let second = story
        .import(&b, "Lost walk B", &[Destination::Kartaview])
        .await[0];
    // Both jobs were creating when the app was killed; only one create reached KartaView.
    let orphan = story.kartaview_create().await;
    for seq in [first, second] {
        crashed_after_create(&story, seq, Destination::Kartaview).await;
    }

    // They resume together: one takes the empty sequence, the other makes its own.
    story.start_engine();
    let jobs = story.settle(&[first, second]).await;
    for j in &jobs {
        assert_eq!(j.status, JobStatus::Done, "{j:#?}");
    }
    let ids: Vec<String> = [first, second]
        .iter()
        .map(|&seq| {
            jobs.iter()
                .find(|j| j.sequence_id == seq)
                .unwrap()
                .kv()
                .sequence_id
                .unwrap()
        })
        .collect();
    assert_ne!(ids[0], ids[1], "both jobs took sequence {}", ids[0]);
    assert!(ids.contains(&orphan), "{ids:?}");
    let state = story.sandbox().state();
    assert_eq!(state.kartaview_sequences().len(), 2);
    for (id, photos) in ids.iter().zip([3, 4]) {
        assert_eq!(state.kartaview_sequence(id).unwrap().photos.len(), photos);
    }
}

/// An account with more than a page of KartaView sequences (100), listed oldest first: the
/// empty sequence a lost create left is on the last page, and is still found and used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_create_is_found_past_the_first_page_of_a_long_account() {
    let story = Story::start().await;
    story.connect(&[Destination::Kartaview]).await;
    let folder = story.photos("walk", 3, &walk(34));
    let seq = story
        .import(&folder, "Long account walk", &[Destination::Kartaview])
        .await[0];
    // 120 older sequences, sent by another uploader.
    for _ in 0..120 {
        story.kartaview_create_by("upload-scripts").await;
    }
    let orphan = story.kartaview_create().await;
    crashed_after_create(&story, seq, Destination::Kartaview).await;
    story.sandbox().state().kartaview_my_list_oldest_first(true);

    story.start_engine();
    let jobs = story.settle(&[seq]).await;
    assert_eq!(jobs[0].status, JobStatus::Done, "{:#?}", jobs[0]);
    assert_eq!(jobs[0].kv().sequence_id, Some(orphan.clone()));
    let state = story.sandbox().state();
    assert_eq!(
        state.kartaview_sequences().len(),
        121,
        "no sequence made twice"
    );
    assert_eq!(state.kartaview_sequence(&orphan).unwrap().photos.len(), 3);
}
