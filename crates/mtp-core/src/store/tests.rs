#![allow(clippy::unwrap_used)]

use super::*;
use crate::Destination;
use crate::secret::Secret;
use sqlx::sqlite::SqliteConnectOptions;

fn first_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).min().unwrap()
}

/// A database at `path` migrated up to `version` only, as an older app left it.
async fn database_at(path: &std::path::Path, version: i64) -> SqlitePool {
    let pool = SqlitePool::connect_with(
        SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    MIGRATOR.run_to(version, &pool).await.unwrap();
    pool
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mtp.db");
    let store = Store::open(&path).await.unwrap();
    let info = store.info().await.unwrap();
    assert_eq!(info.schema_version, latest_known_version());
    assert!(info.counts.iter().all(|(_, n)| *n == 0));
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("mtp.db");
    let _store = Store::open(&path).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[tokio::test]
async fn migrations_apply_to_a_database_at_the_previous_version() {
    assert!(
        MIGRATOR.iter().count() >= 2,
        "this test needs an older version"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mtp.db");
    {
        let pool = database_at(&path, first_version()).await;
        sqlx::query(
            "INSERT INTO sequences (uuid, name, created_at, updated_at) VALUES ('u1', 'Old walk', 1, 1)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let store = Store::open(&path).await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        latest_known_version()
    );
    let name: String = sqlx::query_scalar("SELECT name FROM sequences WHERE uuid = 'u1'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(name, "Old walk");
    // The second migration's table exists now.
    sqlx::query("INSERT INTO settings (key, value_json, updated_at) VALUES ('k', '1', 1)")
        .execute(store.pool())
        .await
        .unwrap();
}

/// Map the Paths Web's sequence page is `/sequence/<id>/detail`: links saved by earlier
/// versions (the bare `/sequence/<id>`, a 404 on mtp-web) move there, and no other.
#[tokio::test]
async fn saved_map_the_paths_links_move_to_the_sequence_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mtp.db");
    let before = MIGRATOR
        .iter()
        .map(|m| m.version)
        .filter(|v| *v < 20261223100001)
        .max()
        .unwrap();
    {
        let pool = database_at(&path, before).await;
        for (uuid, destination, url) in [
            ("a", "mtpw", "https://www.mapthepaths.com/sequence/5f0c"),
            ("b", "mtpw", "https://mtp.example.org/sequence/77/detail"),
            (
                "c",
                "mapillary",
                "https://www.mapillary.com/app/sequence/abc",
            ),
        ] {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO sequences (uuid, name, created_at, updated_at) VALUES (?, 'Walk', 1, 1) RETURNING id",
            )
            .bind(uuid)
            .fetch_one(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO jobs (sequence_id, destination, remote_url, created_at, updated_at) VALUES (?, ?, ?, 1, 1)",
            )
            .bind(id)
            .bind(destination)
            .bind(url)
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
    let store = Store::open(&path).await.unwrap();
    let urls: Vec<String> = sqlx::query_scalar("SELECT remote_url FROM jobs ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(
        urls,
        [
            "https://www.mapthepaths.com/sequence/5f0c/detail",
            "https://mtp.example.org/sequence/77/detail",
            "https://www.mapillary.com/app/sequence/abc",
        ]
    );
}

#[tokio::test]
async fn a_corrupt_file_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mtp.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("left untouched"));
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mtp.db");
    let store = Store::open(&path).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99991231000000, 'from the future', 1, x'00', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path).await.unwrap_err();
    match &err {
        StoreError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!(*found, 99991231000000);
            assert_eq!(*supported, latest_known_version());
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(err.to_string().contains("newer version"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn events_are_append_only() {
    let store = Store::open_in_memory().await.unwrap();
    let id = store
        .log_event(
            &NewEvent {
                kind: "test",
                message: "hello",
                ..Default::default()
            },
            5,
        )
        .await
        .unwrap();
    assert!(
        sqlx::query("UPDATE events SET message = 'x' WHERE id = ?")
            .bind(id)
            .execute(store.pool())
            .await
            .is_err()
    );
    assert!(
        sqlx::query("DELETE FROM events")
            .execute(store.pool())
            .await
            .is_err()
    );
    let events = store.events(None, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].message, "hello");
}

#[tokio::test]
async fn accounts_round_trip_and_hide_tokens_from_status() {
    let store = Store::open_in_memory().await.unwrap();
    let account = Account {
        service: Destination::Mapillary,
        user_id: Some("42".into()),
        username: Some("Zoë".into()),
        access_token: Secret::from("tok"),
        refresh_token: None,
        expires_at: Some(10),
        needs_reauth: false,
        instance_url: None,
        reauth_reason: None,
    };
    store.save_account(&account, 1).await.unwrap();
    let got = store
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.access_token.expose(), "tok");
    assert_eq!(got.username.as_deref(), Some("Zoë"));
    store
        .mark_needs_reauth(Destination::Mapillary, 2)
        .await
        .unwrap();
    let status = store
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap()
        .status();
    assert!(status.needs_reauth);
    let json = serde_json::to_string(&status).unwrap();
    assert!(!json.contains("tok\""), "{json}");
    assert!(store.delete_account(Destination::Mapillary).await.unwrap());
    assert!(store.accounts().await.unwrap().is_empty());
}

/// A refresh's tokens are kept only if nobody signed in since the count it read, and a
/// refresh is not a sign-in itself.
#[tokio::test]
async fn refreshed_tokens_never_replace_a_newer_sign_in() {
    let store = Store::open_in_memory().await.unwrap();
    let mut account = Account {
        service: Destination::Mapillary,
        user_id: Some("42".into()),
        username: Some("Zoë".into()),
        access_token: Secret::from("first"),
        refresh_token: Some(Secret::from("r1")),
        expires_at: Some(10),
        needs_reauth: false,
        instance_url: None,
        reauth_reason: None,
    };
    store.save_account(&account, 1).await.unwrap();
    let read = store
        .account_sign_ins(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    account.access_token = Secret::from("refreshed");
    assert!(
        store
            .save_refreshed_account(&account, read, 2)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .account_sign_ins(Destination::Mapillary)
            .await
            .unwrap(),
        Some(read)
    );

    account.access_token = Secret::from("signed in");
    store.save_account(&account, 3).await.unwrap();
    account.access_token = Secret::from("refreshed late");
    assert!(
        !store
            .save_refreshed_account(&account, read, 4)
            .await
            .unwrap()
    );
    let kept = store
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.access_token.expose(), "signed in");
}

#[tokio::test]
async fn oauth_state_is_single_use_and_expires() {
    let store = Store::open_in_memory().await.unwrap();
    for (state, expires_at) in [("live", 100), ("old", 10)] {
        store
            .save_oauth_attempt(&OAuthAttempt {
                state: state.into(),
                service: Destination::Kartaview,
                pkce_verifier: Some(Secret::from("v")),
                created_at: 0,
                expires_at,
                redirect_uri: Some(format!("http://127.0.0.1:8763/{state}")),
            })
            .await
            .unwrap();
    }
    assert!(store.take_oauth_attempt("old", 50).await.unwrap().is_none());
    let live = store.take_oauth_attempt("live", 50).await.unwrap().unwrap();
    assert_eq!(live.service, Destination::Kartaview);
    assert_eq!(
        live.redirect_uri.as_deref(),
        Some("http://127.0.0.1:8763/live")
    );
    assert!(
        store
            .take_oauth_attempt("live", 50)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .take_oauth_attempt("forged", 50)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn sign_in_settings_keep_the_redirect_and_the_osm_token_apart() {
    let store = Store::open_in_memory().await.unwrap();
    let d = Destination::Kartaview;
    assert_eq!(store.redirect_uri_setting(d).await.unwrap(), None);
    assert!(store.kartaview_osm_token().await.unwrap().is_none());
    store
        .set_redirect_uri_setting(d, Some("http://127.0.0.1:8763/callback"), 1)
        .await
        .unwrap();
    store
        .set_kartaview_osm_token(Some((&Secret::from("osm-tok"), "osm-app")), 2)
        .await
        .unwrap();
    assert_eq!(
        store.redirect_uri_setting(d).await.unwrap().as_deref(),
        Some("http://127.0.0.1:8763/callback")
    );
    assert_eq!(
        store.kartaview_osm_token().await.unwrap().unwrap().expose(),
        "osm-tok"
    );
    assert_eq!(
        store.kartaview_osm_client().await.unwrap().as_deref(),
        Some("osm-app"),
        "the app that issued it goes with it"
    );
    store.set_kartaview_osm_token(None, 3).await.unwrap();
    assert!(store.kartaview_osm_token().await.unwrap().is_none());
    assert!(store.kartaview_osm_client().await.unwrap().is_none());
    // Forgetting the token keeps the redirect; clearing the redirect keeps others apart.
    assert!(store.redirect_uri_setting(d).await.unwrap().is_some());
    store.set_redirect_uri_setting(d, None, 4).await.unwrap();
    assert_eq!(store.redirect_uri_setting(d).await.unwrap(), None);
    assert_eq!(
        store
            .redirect_uri_setting(Destination::Mapillary)
            .await
            .unwrap(),
        None
    );
}

/// Saving uses multi-row INSERTs of at most 1,000 rows: a 2,000-photo sequence (two full
/// chunks), a 500-photo one (a tail chunk) and 1,200 dropped files (1,000 + 200) must come
/// back complete, in plan order, with every field.
#[tokio::test]
async fn a_2500_photo_plan_is_saved_and_read_back_in_order() {
    use crate::photo::{HeadingSource, PhotoMeta};
    use crate::plan::{PlanOptions, plan_sequences};

    let photos: Vec<PhotoMeta> = (0..2500u32)
        .map(|i| {
            let mut p = PhotoMeta::new(format!("/trip/IMG_{i:05}.jpg"));
            p.file_size = 1_000 + u64::from(i);
            p.captured_at_ms = Some(1_686_817_800_000 + i64::from(i) * 1000);
            p.lat = Some(48.0 + f64::from(i) * 2e-5);
            p.lon = Some(11.0);
            p.altitude = (i % 3 == 0).then_some(f64::from(i) / 10.0);
            if i % 2 == 0 {
                p.heading = Some(f64::from(i % 360));
                p.heading_source = Some(HeadingSource::GpsImgDirection);
            }
            p.make = Some("GoPro".into());
            p.model = Some("MAX".into());
            p.serial = Some("S1".into());
            p.width = Some(1000);
            p.height = Some(1000);
            p.orientation = Some(1 + (i % 8) as u16);
            p.gps_accuracy_m = (i % 7 == 0).then_some(3.5);
            p
        })
        .collect();
    let opts = PlanOptions {
        max_photos_per_sequence: 2000,
        ..PlanOptions::default()
    };
    let plan = plan_sequences(photos, &opts);
    assert_eq!(
        plan.sequences
            .iter()
            .map(|s| s.photos.len())
            .collect::<Vec<_>>(),
        [2000, 500]
    );
    let dropped_paths: Vec<String> = (0..1200).map(|i| format!("/bad/X_{i:05}.jpg")).collect();
    let dropped_files: Vec<DroppedFile<'_>> = dropped_paths
        .iter()
        .enumerate()
        .map(|(i, path)| DroppedFile {
            path: path.clone(),
            file_name: &path[5..],
            reason_code: "unreadable",
            message: "could not read",
            lat: (i % 2 == 0).then_some(1.5),
            lon: None,
            captured_at: Some(i as i64),
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("mtp.db")).await.unwrap();
    let import = NewImport {
        folder: "/trip",
        fingerprint: "fp",
        options_json: "{}",
        files_seen: 3700,
    };
    let meta = SequenceMeta {
        name: "Walk".into(),
        ..SequenceMeta::default()
    };
    let (import_id, ids) = store
        .save_plan(&import, &plan, &dropped_files, &meta, 42)
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);

    for (seq, id) in plan.sequences.iter().zip(&ids) {
        let row = store.sequence(*id).await.unwrap().unwrap();
        assert_eq!(row.photo_count, seq.photos.len() as i64);
        let rows = store.photos(*id).await.unwrap();
        assert_eq!(rows.len(), seq.photos.len());
        for (k, (r, p)) in rows.iter().zip(&seq.photos).enumerate() {
            let m = &p.photo;
            assert_eq!((r.sequence_id, r.seq_index), (*id, k as i64));
            assert_eq!(r.path, m.path.to_string_lossy());
            assert_eq!(r.file_name, m.file_name);
            assert_eq!(r.file_size, m.file_size as i64);
            assert_eq!(r.captured_at, m.captured_at_ms.unwrap());
            assert_eq!(r.original_captured_at, Some(p.original_captured_at_ms));
            assert_eq!((Some(r.lat), Some(r.lon)), (m.lat, m.lon));
            assert_eq!((r.altitude, r.heading), (m.altitude, m.heading));
            let source = m.heading_source.map(|h| {
                serde_json::to_value(h)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            });
            assert_eq!(r.heading_source, source);
            assert_eq!(
                (&r.make, &r.model, &r.serial),
                (&m.make, &m.model, &m.serial)
            );
            assert_eq!(
                (r.width, r.height, r.orientation),
                (
                    m.width.map(i64::from),
                    m.height.map(i64::from),
                    m.orientation.map(i64::from)
                )
            );
            assert_eq!((r.is_360, r.gps_accuracy_m), (m.is_360, m.gps_accuracy_m));
        }
    }

    let back = store.dropped(import_id).await.unwrap();
    assert_eq!(back.len(), dropped_files.len());
    for (r, d) in back.iter().zip(&dropped_files) {
        assert_eq!(r.import_id, import_id);
        assert_eq!(
            (r.path.as_str(), r.file_name.as_str()),
            (d.path.as_str(), d.file_name)
        );
        assert_eq!(
            (r.reason_code.as_str(), r.message.as_str()),
            (d.reason_code, d.message)
        );
        assert_eq!((r.lat, r.lon, r.captured_at), (d.lat, d.lon, d.captured_at));
    }
}

#[tokio::test]
async fn a_job_waiting_for_another_is_woken_only_while_it_waits() {
    let store = Store::open_in_memory().await.unwrap();
    let seq = saved_walk(&store, "/walk").await;
    let jobs = store
        .create_jobs(seq, &[Destination::Mapillary, Destination::Mtpw], 0)
        .await
        .unwrap();
    let web = jobs[1];
    let wait = JobUpdate {
        next_run_at: Some(60_000),
        ..JobUpdate::default()
    };
    store.update_job(web, &wait, None, 0).await.unwrap();

    // Waiting until 60 s: due now.
    assert!(
        store
            .wake_waiting_job(seq, Destination::Mtpw, 1_000)
            .await
            .unwrap()
    );
    assert_eq!(store.job(web).await.unwrap().unwrap().next_run_at, 1_000);
    // Already due, or running, or another destination: untouched.
    assert!(
        !store
            .wake_waiting_job(seq, Destination::Mtpw, 2_000)
            .await
            .unwrap()
    );
    store.update_job(web, &wait, None, 0).await.unwrap();
    store.claim_next_job(70_000, &[]).await.unwrap();
    store.claim_next_job(70_000, &[]).await.unwrap();
    assert!(
        !store
            .wake_waiting_job(seq, Destination::Mtpw, 3_000)
            .await
            .unwrap()
    );
    assert_eq!(
        store.job(web).await.unwrap().unwrap().status,
        crate::engine::JobStatus::Running
    );
    assert!(
        !store
            .wake_waiting_job(seq, Destination::Panoramax, 3_000)
            .await
            .unwrap()
    );
    // Told by its service to wait until 30 s (a 429): woken, but not before then.
    let told = JobUpdate {
        status: Some(crate::engine::JobStatus::Pending),
        next_run_at: Some(60_000),
        not_before: Some(30_000),
        ..JobUpdate::default()
    };
    store.update_job(web, &told, None, 4_000).await.unwrap();
    assert!(
        store
            .wake_waiting_job(seq, Destination::Mtpw, 5_000)
            .await
            .unwrap()
    );
    assert_eq!(store.job(web).await.unwrap().unwrap().next_run_at, 30_000);
    assert!(
        !store
            .wake_waiting_job(seq, Destination::Mtpw, 6_000)
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queueing_and_deleting_while_the_engine_writes_never_fails_as_busy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("mtp.db")).await.unwrap();
    let mut sequences = Vec::new();
    for n in 0..41 {
        sequences.push(saved_walk(&store, &format!("/walk{n}")).await);
    }
    let busy = store
        .create_jobs(sequences[0], &[Destination::Kartaview], 0)
        .await
        .unwrap()[0];
    // The engine: a job's progress written over and over, as uploads do.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (store, stop) = (store.clone(), stop.clone());
        async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let update = JobUpdate {
                    attempts: Some(n),
                    ..JobUpdate::default()
                };
                store.update_job(busy, &update, None, n).await.unwrap();
            }
        }
    });
    // Meanwhile the user queues sequences and deletes others: a transaction that reads
    // before it writes must not fail because the engine committed in between.
    for pair in sequences[1..].chunks(2) {
        store
            .create_jobs(pair[0], &Destination::ALL, 1)
            .await
            .unwrap();
        assert!(store.delete_sequence(pair[1]).await.unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.unwrap();
}

async fn saved_walk(store: &Store, folder: &str) -> i64 {
    crate::photo::fixture::save_walk(store, folder, 0).await
}
