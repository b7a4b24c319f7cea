#![allow(clippy::unwrap_used)]

use super::*;
use crate::Destination;
use crate::secret::Secret;
use sqlx::sqlite::SqliteConnectOptions;

fn first_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).min().unwrap()
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
        let pool = SqlitePool::connect_with(
            SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        MIGRATOR.run_to(first_version(), &pool).await.unwrap();
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
            })
            .await
            .unwrap();
    }
    assert!(store.take_oauth_attempt("old", 50).await.unwrap().is_none());
    let live = store.take_oauth_attempt("live", 50).await.unwrap().unwrap();
    assert_eq!(live.service, Destination::Kartaview);
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
