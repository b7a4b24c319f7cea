//! Stories of Mapillary as strict as the real service (issue 8 items 1 and 8, issue 9): a
//! token without the upload permission, one refresh shared by everyone who meets an
//! expired token, and the processing stages read from the activity feed.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_core::Destination;
use pipeline_support::{Story, walk};

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
    assert_eq!(job.status, "waiting_auth", "{jobs:#?}");
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
    let token = story
        .sandbox()
        .issue_token(mtp_sandbox::Service::Mapillary, 0);
    story
        .app
        .connect_with_token(Destination::Mapillary, &token)
        .await
        .unwrap();
    let jobs = story.settle(&ids).await;
    assert_eq!(jobs[0].status, "done", "{jobs:#?}");
    assert_eq!(story.sandbox().state().mapillary_clusters().len(), 1);
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
    assert!(jobs.iter().all(|j| j.status == "done"), "{jobs:#?}");
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
