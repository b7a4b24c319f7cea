//! Story: "Check" before publishing. A previewed folder (or a saved sequence) is dry-run to
//! the destinations: what each would receive, what its rules refuse, whether the account
//! can upload now; and nothing that changes anything reaches a service.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_app::prepare::{PrepareOptions, SaveImport};
use mtp_core::Destination;
use mtp_core::store::SequenceMeta;
use pipeline_support::{Story, walk};

fn meta(transport: Option<&str>) -> SequenceMeta {
    SequenceMeta {
        name: "River walk".into(),
        description: "A walk along the river".into(),
        transport_type: transport.map(String::from),
        tags: vec!["river".into()],
    }
}

/// Every request the sandbox received from `from` on that changes something.
fn mutating_since(story: &Story, from: u64) -> Vec<String> {
    story
        .sandbox()
        .requests()
        .into_iter()
        .filter(|r| r.seq >= from)
        .filter(|r| matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn next_seq(story: &Story) -> u64 {
    story
        .sandbox()
        .requests()
        .iter()
        .map(|r| r.seq + 1)
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previewed_folder_is_checked_for_every_destination_and_nothing_is_sent() {
    let story = Story::start().await;
    story.connect(&Destination::ALL).await;
    let folder = story.photos("walk", 12, &walk(0));
    let preview = story
        .app
        .prepare_folder(&folder, PrepareOptions::default())
        .await
        .unwrap();
    let planned = &preview.sequences[0];
    let from = next_seq(&story);

    let run = story
        .app
        .dry_run_prepared(&preview.token, &meta(Some("Walk")), &Destination::ALL)
        .await
        .unwrap();

    assert_eq!(mutating_since(&story, from), Vec::<String>::new());
    assert_eq!(run.sequences.len(), 1);
    let seq = &run.sequences[0];
    assert_eq!(seq.name, "River walk");
    assert_eq!(seq.photos, planned.photo_count);
    assert_eq!(seq.bytes, planned.total_bytes);
    assert_eq!(seq.destinations.len(), 4);
    for d in &seq.destinations {
        assert!(d.account.connected, "{}: {:?}", d.label, d.account);
        assert!(d.account.can_upload, "{}: {:?}", d.label, d.account);
        assert!(d.accepted, "{}: {:?}", d.label, d.refused);
        assert!(d.refused.is_empty(), "{}: {:?}", d.label, d.refused);
        assert!(!d.fields.is_empty(), "{}: no fields", d.label);
        match d.destination {
            Destination::Mtpw => {
                assert_eq!((d.photos, d.bytes), (0, 0));
                assert!(d.chunks.is_empty());
                assert!(d.account.says.contains("no way to check a token"));
                let field = |k: &str| d.fields.iter().find(|(n, _)| n == k).map(|(_, v)| v);
                assert_eq!(field("name").unwrap(), "River walk");
                assert_eq!(field("transport_type").unwrap(), "Walk");
                assert_eq!(field("tag").unwrap(), "river");
            }
            _ => {
                assert_eq!(d.photos, planned.photo_count, "{}", d.label);
                assert_eq!(d.bytes, planned.total_bytes, "{}", d.label);
                assert_eq!(d.chunks.len(), 1, "{}", d.label);
                assert_eq!(d.chunks[0].photos, planned.photo_count);
                assert_eq!(d.chunks[0].bytes, planned.total_bytes);
            }
        }
    }
    let dest = |x: Destination| {
        seq.destinations
            .iter()
            .find(|d| d.destination == x)
            .unwrap()
    };

    let mly = dest(Destination::Mapillary);
    let description: serde_json::Value =
        serde_json::from_str(mly.first_description.as_deref().unwrap()).unwrap();
    for key in [
        "MAPLatitude",
        "MAPLongitude",
        "MAPCaptureTime",
        "MAPFilename",
    ] {
        assert!(
            description.get(key).is_some(),
            "{key} missing: {description}"
        );
    }
    let key = &mly
        .fields
        .iter()
        .find(|(k, _)| k == "upload key")
        .unwrap()
        .1;
    assert!(
        key.starts_with("mly_tools_") && key.ends_with(".jpg"),
        "{key}"
    );

    let kv = dest(Destination::Kartaview);
    let names: Vec<&str> = kv.fields.iter().map(|(k, _)| k.as_str()).collect();
    for f in ["sequenceId", "sequenceIndex", "coordinate", "shotDate"] {
        assert!(names.contains(&f), "{f} missing: {names:?}");
    }
    assert_eq!(
        kv.fields
            .iter()
            .find(|(k, _)| k == "sequenceIndex")
            .unwrap()
            .1,
        "0"
    );
    assert!(kv.first_description.is_none());

    let px = dest(Destination::Panoramax);
    let names: Vec<&str> = px.fields.iter().map(|(k, _)| k.as_str()).collect();
    for f in [
        "isBlurred",
        "override_latitude",
        "override_longitude",
        "override_capture_time",
        "file",
    ] {
        assert!(names.contains(&f), "{f} missing: {names:?}");
    }

    // The preview is still there to save, and the dry run queued nothing.
    assert!(story.app.store().jobs().await.unwrap().is_empty());
    let saved = story
        .app
        .save_import(SaveImport {
            token: preview.token.clone(),
            meta: meta(Some("Walk")),
            destinations: Vec::new(),
            sequences: Vec::new(),
        })
        .await
        .unwrap();

    // A saved sequence is checked the same way.
    let from = next_seq(&story);
    let again = story
        .app
        .dry_run_sequence(saved.sequence_ids[0], &[Destination::Kartaview])
        .await
        .unwrap();
    assert_eq!(mutating_since(&story, from), Vec::<String>::new());
    let d = &again.sequences[0].destinations;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].photos, planned.photo_count);
    assert!(d[0].account.can_upload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_cannot_upload_and_says_to_sign_in_again() {
    let story = Story::start().await;
    story.connect(&Destination::ALL).await;
    let folder = story.photos("walk", 5, &walk(1));
    let preview = story
        .app
        .prepare_folder(&folder, PrepareOptions::default())
        .await
        .unwrap();
    story.sandbox().faults().revoke_tokens();
    let from = next_seq(&story);

    let run = story
        .app
        .dry_run_prepared(&preview.token, &meta(Some("Walk")), &Destination::ALL)
        .await
        .unwrap();

    assert_eq!(mutating_since(&story, from), Vec::<String>::new());
    for d in &run.sequences[0].destinations {
        if d.destination == Destination::Mtpw {
            continue;
        }
        assert!(!d.account.can_upload, "{}: {:?}", d.label, d.account);
        assert!(
            d.account.says.contains(&format!(
                "sign in to {} again on the Integrations screen",
                d.label
            )),
            "{}: {}",
            d.label,
            d.account.says
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_destination_refuses_is_listed_and_an_unconnected_account_is_said() {
    let story = Story::start().await;
    story.connect(&[Destination::Kartaview]).await;
    let folder = story.photos("walk", 5, &walk(2));
    let preview = story
        .app
        .prepare_folder(&folder, PrepareOptions::default())
        .await
        .unwrap();
    let from = next_seq(&story);

    // No transport type: Map the Paths Web refuses the sequence.
    let run = story
        .app
        .dry_run_prepared(&preview.token, &meta(None), &Destination::ALL)
        .await
        .unwrap();
    let dests = &run.sequences[0].destinations;
    let mtpw = dests
        .iter()
        .find(|d| d.destination == Destination::Mtpw)
        .unwrap();
    assert!(!mtpw.accepted);
    assert_eq!(mtpw.refused.len(), 1, "{:?}", mtpw.refused);
    assert!(mtpw.refused[0].file.is_none());
    assert!(
        mtpw.refused[0].reason.contains("transport type"),
        "{:?}",
        mtpw.refused
    );
    assert!(!mtpw.account.connected);
    assert!(mtpw.account.says.contains("not connected"));
    let kv = dests
        .iter()
        .find(|d| d.destination == Destination::Kartaview)
        .unwrap();
    assert!(kv.accepted && kv.account.can_upload, "{kv:?}");

    // Taken from the air: Mapillary refuses it.
    let run = story
        .app
        .dry_run_prepared(
            &preview.token,
            &meta(Some("Paraglide")),
            &[Destination::Mapillary],
        )
        .await
        .unwrap();
    let mly = &run.sequences[0].destinations[0];
    assert!(!mly.accepted);
    assert!(
        mly.refused
            .iter()
            .any(|r| r.reason.contains("from the air")),
        "{:?}",
        mly.refused
    );
    assert_eq!(mutating_since(&story, from), Vec::<String>::new());
}
