//! Story: the import plan as the window shows it — what looks unintended is flagged and
//! unticked, each sequence can be left out or named, left-out files are grouped in the
//! window's words, photos already saved from another folder are found by content, and
//! dropped files are read on their own.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_app::prepare::{PrepareOptions, SaveImport, SequenceChoice};
use mtp_core::photo::fixture::{FixturePhoto, TrackSpec, write_jpeg, write_track_folder};
use mtp_core::store::SequenceMeta;
use pipeline_support::Story;

fn meta(name: &str) -> SequenceMeta {
    SequenceMeta {
        name: name.into(),
        description: String::new(),
        transport_type: Some("Walk".into()),
        tags: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_photos_are_flagged_and_only_chosen_sequences_are_saved_with_their_names() {
    let story = Story::start().await;
    let folder = story.dir.path().join("Holiday mix");
    let walk = write_track_folder(&folder, 12, &TrackSpec::default()).unwrap();
    for (i, t) in [1_215_000_000_000_i64, 1_590_000_000_000]
        .iter()
        .enumerate()
    {
        write_jpeg(
            &folder.join(format!("OLD_{i}.jpg")),
            &FixturePhoto::at(51.5 + i as f64, -0.1, *t),
        )
        .unwrap();
    }
    std::fs::create_dir_all(folder.join("docs")).unwrap();
    std::fs::write(folder.join("docs/README"), "notes\n").unwrap();

    let view = story
        .app
        .prepare_folder(&folder, PrepareOptions::default())
        .await
        .unwrap();
    assert_eq!(view.sequences.len(), 3);
    let (walks, strays): (Vec<_>, Vec<_>) =
        view.sequences.iter().partition(|s| s.photo_count == 12);
    assert!(walks[0].include_by_default && walks[0].warnings.is_empty());
    for s in &strays {
        assert!(!s.include_by_default);
        assert!(
            s.warnings[0].starts_with("Only 1 photo:"),
            "{:?}",
            s.warnings
        );
    }
    assert!(view.warnings[0].contains("15 years"), "{:?}", view.warnings);
    assert_eq!(walks[0].camera.as_deref(), Some("MTP Fixture Cam"));
    assert_eq!(walks[0].sub_folder, "");
    // The README is not a photo: ignored, not "left out", and never told to become a JPEG.
    assert_eq!(view.not_photos, ["docs/README"]);
    assert!(
        view.left_out_groups.is_empty(),
        "{:?}",
        view.left_out_groups
    );

    let saved = story
        .app
        .save_import(SaveImport {
            token: view.token.clone(),
            meta: meta("Holiday"),
            destinations: Vec::new(),
            sequences: view
                .sequences
                .iter()
                .map(|s| SequenceChoice {
                    index: s.index,
                    include: s.include_by_default,
                    name: if s.photo_count == 12 {
                        "Harbour walk".into()
                    } else {
                        String::new()
                    },
                })
                .collect(),
        })
        .await
        .unwrap();
    assert_eq!(saved.sequence_ids.len(), 1);
    let list = story.app.sequences().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "Harbour walk");
    assert_eq!(list[0].photo_count, 12);

    // The same photos copied elsewhere under other names: found by content.
    let copy = story.dir.path().join("Copy");
    std::fs::create_dir_all(&copy).unwrap();
    for (i, p) in walk.iter().enumerate() {
        std::fs::copy(p, copy.join(format!("walk-{i}.jpg"))).unwrap();
    }
    let again = story
        .app
        .prepare_folder(&copy, PrepareOptions::default())
        .await
        .unwrap();
    assert!(again.already_imported.is_none());
    assert_eq!(again.already_saved.len(), 1);
    assert_eq!(again.already_saved[0].name, "Harbour walk");
    assert_eq!(again.already_saved[0].photos, 12);

    // Unticking everything saves nothing and says so.
    let err = story
        .app
        .save_import(SaveImport {
            token: again.token.clone(),
            meta: meta("Copy"),
            destinations: Vec::new(),
            sequences: vec![SequenceChoice {
                index: 0,
                include: false,
                name: String::new(),
            }],
        })
        .await
        .unwrap_err();
    assert!(err.message.contains("unticked"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn left_out_files_are_grouped_with_relative_paths_and_gui_actions() {
    let story = Story::start().await;
    let folder = story.dir.path().join("Card");
    write_track_folder(&folder, 8, &TrackSpec::default()).unwrap();
    for i in 0..3 {
        let mut p = FixturePhoto::at(0.0, 0.0, 1_714_550_400_000 + i * 1000);
        p.lat = None;
        p.lon = None;
        write_jpeg(&folder.join(format!("phone/PXL_{i}.jpg")), &{
            std::fs::create_dir_all(folder.join("phone")).unwrap();
            p
        })
        .unwrap();
    }
    std::fs::write(folder.join("broken.jpg"), b"\xff\xd8\xff\xe1 not really").unwrap();
    std::fs::write(folder.join("pic.png"), b"\x89PNG\r\n\x1a\n....").unwrap();
    let view = story
        .app
        .prepare_folder(&folder, PrepareOptions::default())
        .await
        .unwrap();
    let codes: Vec<(&str, usize)> = view
        .left_out_groups
        .iter()
        .map(|g| (g.code.as_str(), g.files.len()))
        .collect();
    assert_eq!(codes, [("no_gps", 3), ("truncated", 1), ("not_jpeg", 1)]);
    let no_gps = &view.left_out_groups[0];
    assert_eq!(no_gps.title, "No GPS position");
    assert_eq!(no_gps.files[0].rel_path, "phone/PXL_0.jpg");
    assert_eq!(no_gps.files[0].detail, "");
    // A PNG is a photo in another format: it can be converted, unlike a README.
    assert_eq!(view.left_out_groups[2].title, "Photos in another format");
    assert_eq!(
        view.left_out_groups[2].files[0].detail,
        "is not a JPEG photo (it looks like a PNG image)"
    );
    for g in &view.left_out_groups {
        let text = format!("{} {} {:?}", g.title, g.action, g.files);
        for cli in ["--gpx", "--time-offset", "exiftool", "or drop it"] {
            assert!(!text.contains(cli), "{text}");
        }
        for f in &g.files {
            assert!(!f.detail.contains(&f.rel_path), "{f:?}");
        }
    }

    // Dropped files: only those are read.
    let only: Vec<_> = ["IMG_00000.jpg", "IMG_00001.jpg", "IMG_00002.jpg"]
        .iter()
        .map(|n| folder.join(n))
        .collect();
    let view = story
        .app
        .prepare_folder(
            &folder,
            PrepareOptions {
                files: only,
                ..PrepareOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(view.summary.kept, 3);
    assert!(view.left_out_groups.is_empty() && view.not_photos.is_empty());
    assert_eq!(view.files_seen, 3);
}

/// A folder that makes no sequence says which of three things it is: empty, no photos at
/// all (only documents and sidecars), or photos that were all left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_with_nothing_to_upload_says_why() {
    let story = Story::start().await;
    let why = |name: &str| {
        let folder = story.dir.path().join(name);
        let app = story.app.clone();
        async move {
            app.prepare_folder(&folder, PrepareOptions::default())
                .await
                .unwrap()
                .nothing_to_upload
        }
    };
    let empty = story.dir.path().join("empty");
    std::fs::create_dir_all(empty.join("sub")).unwrap();
    let docs = story.dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("notes.txt"), "notes\n").unwrap();
    std::fs::write(docs.join("README.md"), "# Walks\n").unwrap();
    let broken = story.dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("a.jpg"), "not a photo\n").unwrap();
    let walk = story.dir.path().join("walk");
    write_track_folder(&walk, 3, &TrackSpec::default()).unwrap();

    let e = why("empty").await.unwrap();
    assert!(e.starts_with("This folder holds no files"), "{e}");
    let d = why("docs").await.unwrap();
    assert!(
        d.starts_with("This folder holds no photos: its 2 files are documents"),
        "{d}"
    );
    let b = why("broken").await.unwrap();
    assert!(b.contains("see why under Left out"), "{b}");
    assert_eq!(why("walk").await, None);
    // One file dropped on the window, not a folder: said of the file.
    let dropped = story
        .app
        .prepare_folder(
            &docs,
            PrepareOptions {
                files: vec![docs.join("notes.txt")],
                ..PrepareOptions::default()
            },
        )
        .await
        .unwrap()
        .nothing_to_upload
        .unwrap();
    assert!(
        dropped.starts_with("No photo among the dropped files: it is a document"),
        "{dropped}"
    );
}
