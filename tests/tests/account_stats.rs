//! The KartaView and Panoramax cards' account stats, as the app reads them from the
//! emulators: true totals after an upload, "unavailable" (never a zero) when the service
//! fails, nothing when the service is not connected.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_core::Destination;
use mtp_core::engine::JobStatus;
use pipeline_support::{Story, walk};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cards_count_what_was_uploaded_and_say_when_they_cannot_tell() {
    let story = Story::start().await;
    let app = &story.app;
    assert_eq!(app.kartaview_stats().await.unwrap(), None);
    assert_eq!(app.panoramax_stats().await.unwrap(), None);

    story
        .connect(&[Destination::Kartaview, Destination::Panoramax])
        .await;
    // Connected, nothing uploaded: both services say zero, and so do the cards.
    let kv = app.kartaview_stats().await.unwrap().unwrap();
    assert_eq!(kv.username, mtp_sandbox::SANDBOX_USERNAME);
    assert_eq!((kv.photos, kv.tracks), (Some(0), Some(0)));
    assert_eq!(kv.overall_rank, None);
    let px = app.panoramax_stats().await.unwrap().unwrap();
    assert_eq!((px.photos, px.sequences), (0, 0));

    let folder = story.photos("walk", 8, &walk(1));
    let ids = story
        .import(
            &folder,
            "River walk",
            &[Destination::Kartaview, Destination::Panoramax],
        )
        .await;
    story.start_engine();
    for j in story.settle(&ids).await {
        assert_eq!(j.status, JobStatus::Done, "{j:#?}");
    }

    let kv = app.kartaview_stats().await.unwrap().unwrap();
    assert_eq!((kv.photos, kv.tracks), (Some(8), Some(1)));
    assert!(kv.km.unwrap() > 0.0, "{kv:?}");
    assert_eq!((kv.overall_rank, kv.weekly_rank), (Some(1), Some(1)));
    let px = app.panoramax_stats().await.unwrap().unwrap();
    assert_eq!((px.photos, px.sequences, px.incomplete), (8, 1, 0));
    assert!(px.km > 0.0, "{px:?}");
    // The same walk, measured by both services.
    assert!((px.km - kv.km.unwrap()).abs() < 0.01, "{px:?} / {kv:?}");
    assert_eq!(
        px.instance_url,
        story
            .sandbox()
            .urls()
            .panoramax_instance
            .as_str()
            .trim_end_matches('/')
    );

    // A service that fails: an error the card shows as "unavailable", not a zero.
    story
        .sandbox()
        .faults()
        .apply_spec("kartaview.user_details:fail_next=1,status=503; panoramax.my_collection:fail_next=1,status=500")
        .unwrap();
    let e = app.kartaview_stats().await.unwrap_err();
    assert_eq!(e.code, "stats_unavailable", "{e:?}");
    assert!(e.message.starts_with("KartaView stats unavailable"), "{e}");
    let e = app.panoramax_stats().await.unwrap_err();
    assert_eq!(e.code, "stats_unavailable", "{e:?}");
    // And the next look is right again.
    assert_eq!(
        app.kartaview_stats().await.unwrap().unwrap().photos,
        Some(8)
    );
    assert_eq!(app.panoramax_stats().await.unwrap().unwrap().photos, 8);

    app.disconnect(Destination::Kartaview).await.unwrap();
    assert_eq!(app.kartaview_stats().await.unwrap(), None);
}
