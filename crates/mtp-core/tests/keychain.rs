//! The store against a real OS keychain: a Secret Service (gnome-keyring) in the test's own
//! D-Bus session, which `make keyring-test` starts. Ignored otherwise, so that no other run
//! writes to the keychain of whoever runs the tests.

#![allow(clippy::unwrap_used)]

use mtp_core::Destination;
use mtp_core::secret::Secret;
use mtp_core::store::{Account, KeychainMode, SecretsChoice, Store};
use std::path::Path;

/// A service name of its own, so that a run never meets the entries of another (or the
/// app's own, `app.mtp.desktop`).
fn unique_service() -> String {
    format!(
        "app.mtp.desktop.test-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

fn account(service: Destination, access: &str, refresh: Option<&str>) -> Account {
    Account {
        service,
        user_id: Some("7".into()),
        username: Some("tester".into()),
        access_token: Secret::from(access),
        refresh_token: refresh.map(Secret::from),
        expires_at: None,
        needs_reauth: false,
        instance_url: None,
        reauth_reason: None,
    }
}

/// The database file and its WAL, as bytes.
fn file_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    bytes.extend(std::fs::read(Path::new(&wal)).unwrap_or_default());
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The keychain entry (user name) a column's reference `keychain:<entry>#<tag>` names.
async fn entries(store: &Store) -> Vec<String> {
    let mut refs: Vec<Option<String>> =
        sqlx::query_scalar("SELECT access_token FROM accounts ORDER BY service")
            .fetch_all(store.pool())
            .await
            .unwrap();
    refs.extend(
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT refresh_token FROM accounts ORDER BY service",
        )
        .fetch_all(store.pool())
        .await
        .unwrap(),
    );
    refs.extend(
        sqlx::query_scalar::<_, Option<String>>("SELECT osm_token FROM sign_in_settings")
            .fetch_all(store.pool())
            .await
            .unwrap(),
    );
    refs.into_iter()
        .flatten()
        .map(|r| {
            let entry = r
                .strip_prefix("keychain:")
                .and_then(|r| r.rsplit_once('#'))
                .unwrap_or_else(|| panic!("not a keychain reference: {r}"))
                .0;
            entry.to_string()
        })
        .collect()
}

/// What the keychain holds for `entry` under `service`, asked with `keyring` directly.
async fn keychain_value(service: &str, entry: &str) -> Option<String> {
    let (service, entry) = (service.to_string(), entry.to_string());
    tokio::task::spawn_blocking(move || {
        match keyring::Entry::new(&service, &entry)
            .unwrap()
            .get_password()
        {
            Ok(v) => Some(v),
            Err(keyring::Error::NoEntry) => None,
            Err(e) => panic!("the keychain failed: {e}"),
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs gnome-keyring: run make keyring-test"]
async fn tokens_live_in_the_secret_service_and_the_database_keeps_references() {
    let service = unique_service();
    // `on`: fails here, saying why, when no keychain answers (a bogus bus, no daemon).
    let choice = SecretsChoice::choose(KeychainMode::On, &service)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mtp.db");

    let store = Store::open_with_secrets(&path, choice.clone())
        .await
        .unwrap();
    let info = store.info().await.unwrap();
    assert!(info.tokens.in_keychain);
    assert_eq!(info.tokens.description, "OS keychain (Secret Service)");
    let tokens = [
        "MLY|keychain-access-token",
        "keychain-refresh-token",
        "keychain-osm-token",
    ];
    store
        .save_account(
            &account(Destination::Mapillary, tokens[0], Some(tokens[1])),
            1,
        )
        .await
        .unwrap();
    store
        .set_kartaview_osm_token(Some((&Secret::from(tokens[2]), "osm-app")), 1)
        .await
        .unwrap();
    let names = entries(&store).await;
    assert_eq!(names.len(), 3, "{names:?}");
    for (name, token) in names.iter().zip([tokens[0], tokens[1], tokens[2]]) {
        assert_eq!(
            keychain_value(&service, name).await.as_deref(),
            Some(token),
            "{name}"
        );
    }
    let bytes = file_bytes(&path);
    for t in tokens {
        assert!(!contains(&bytes, t), "{t} is in the database file");
    }
    store.close().await;

    // Reopened (nothing cached): the tokens come back from the keychain.
    let store = Store::open_with_secrets(&path, choice.clone())
        .await
        .unwrap();
    let got = store
        .account(Destination::Mapillary)
        .await
        .unwrap()
        .unwrap();
    assert!(!got.needs_reauth, "{:?}", got.reauth_reason);
    assert_eq!(got.access_token.expose(), tokens[0]);
    assert_eq!(got.refresh_token.unwrap().expose(), tokens[1]);
    assert_eq!(
        store.kartaview_osm_token().await.unwrap().unwrap().expose(),
        tokens[2]
    );

    // Disconnecting removes the entries.
    assert!(store.delete_account(Destination::Mapillary).await.unwrap());
    store.set_kartaview_osm_token(None, 2).await.unwrap();
    for name in &names {
        assert_eq!(keychain_value(&service, name).await, None, "{name} stayed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs gnome-keyring: run make keyring-test"]
async fn tokens_of_an_older_database_move_into_the_secret_service_once() {
    let service = unique_service();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mtp.db");
    let tokens = ["panoramax-plain-token", "kartaview-plain-token"];
    {
        // As every version before the keychain wrote it.
        let old = Store::open(&path).await.unwrap();
        old.save_account(&account(Destination::Panoramax, tokens[0], None), 1)
            .await
            .unwrap();
        old.save_account(&account(Destination::Kartaview, tokens[1], None), 1)
            .await
            .unwrap();
        old.close().await;
    }
    assert!(tokens.iter().all(|t| contains(&file_bytes(&path), t)));

    let choice = SecretsChoice::choose(KeychainMode::On, &service)
        .await
        .unwrap();
    let store = Store::open_with_secrets(&path, choice.clone())
        .await
        .unwrap();
    let names = entries(&store).await;
    assert_eq!(names.len(), 2, "{names:?}");
    // ORDER BY service: kartaview, panoramax.
    assert_eq!(
        keychain_value(&service, &names[0]).await.as_deref(),
        Some(tokens[1])
    );
    assert_eq!(
        keychain_value(&service, &names[1]).await.as_deref(),
        Some(tokens[0])
    );
    store.close().await;
    let bytes = file_bytes(&path);
    for t in tokens {
        assert!(
            !contains(&bytes, t),
            "{t} is still in the database file after the move"
        );
    }

    // Opened again, the references stay and the accounts read as before.
    let store = Store::open_with_secrets(&path, choice).await.unwrap();
    assert_eq!(entries(&store).await, names);
    let got = store
        .account(Destination::Panoramax)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.access_token.expose(), tokens[0]);

    // The same file headless: the accounts ask for a new sign-in, no reference is sent.
    store.close().await;
    let headless = Store::open_with_secrets(
        &path,
        SecretsChoice::database(Some("no OS keychain answered: test".into())),
    )
    .await
    .unwrap();
    let got = headless
        .account(Destination::Kartaview)
        .await
        .unwrap()
        .unwrap();
    assert!(got.needs_reauth);
    assert!(got.access_token.expose().is_empty());
    headless.close().await;

    let store = Store::open_with_secrets(&path, SecretsChoice::keychain(&service))
        .await
        .unwrap();
    for d in [Destination::Kartaview, Destination::Panoramax] {
        assert!(store.delete_account(d).await.unwrap());
    }
    for name in &names {
        assert_eq!(keychain_value(&service, name).await, None, "{name} stayed");
    }
}
