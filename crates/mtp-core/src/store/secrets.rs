//! Where token values are kept: the OS keychain (Secret Service on Linux, Keychain on macOS,
//! Credential Manager on Windows) when one answers, with only a reference in SQLite; else,
//! as before, the database's own columns (the file is mode 0600).
//!
//! A reference reads `keychain:<entry>#<tag>`. The entry is the keychain item's user name,
//! `<what>@<store id>` (`mapillary:access@3f2a…`, `mapillary:refresh@…`,
//! `kartaview:osm@…`), under the keychain service name (`app.mtp.desktop` by default); the
//! store id comes from the database (`store_identity`), so the live and the sandbox
//! databases never share an entry. The tag changes at every write: a process that cached a
//! value knows it is stale when another process (the window and `mtp`) wrote a new one.

use super::{Store, StoreError};
use crate::secret::Secret;
use serde::Serialize;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The keychain service name the app files its entries under.
pub const DEFAULT_KEYCHAIN_SERVICE: &str = "app.mtp.desktop";

/// How long the probe at start waits for a keychain: a missing D-Bus session answers at
/// once, a Secret Service that D-Bus has to start takes a second or so.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one read or write waits (long enough for the user to answer an unlock prompt).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

const REFERENCE_PREFIX: &str = "keychain:";

/// Where token values go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretBackend {
    /// In the database's own columns.
    Database,
    /// In the OS keychain, under this service name; the database keeps references.
    Keychain { service: String },
}

/// `MTP_KEYCHAIN`: use the OS keychain when one answers (`auto`, the default), always
/// (`on`: starting fails without one) or never (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeychainMode {
    #[default]
    Auto,
    On,
    Off,
}

impl FromStr for KeychainMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(KeychainMode::Auto),
            "on" | "1" | "true" | "yes" => Ok(KeychainMode::On),
            "off" | "0" | "false" | "no" => Ok(KeychainMode::Off),
            other => Err(format!(
                "MTP_KEYCHAIN is \"{other}\": set it to auto (the default), on or off"
            )),
        }
    }
}

/// The name of this platform's keychain, as its users know it.
pub fn keychain_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "Keychain"
    } else if cfg!(target_os = "windows") {
        "Credential Manager"
    } else if cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd"
    )) {
        "Secret Service"
    } else {
        "no keychain on this platform"
    }
}

/// Where a store keeps its tokens, and why there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretsChoice {
    pub backend: SecretBackend,
    /// Why the tokens stay in the database (`None` with the keychain).
    pub why_database: Option<String>,
}

impl SecretsChoice {
    pub fn keychain(service: impl Into<String>) -> SecretsChoice {
        SecretsChoice {
            backend: SecretBackend::Keychain {
                service: service.into(),
            },
            why_database: None,
        }
    }

    /// The database, for the reason `why` (shown by `mtp db info`), if there is one to give.
    pub fn database(why: Option<String>) -> SecretsChoice {
        SecretsChoice {
            backend: SecretBackend::Database,
            why_database: why,
        }
    }

    /// Follows `mode`, asking the keychain once ([`probe_keychain`]). `Err` only for `on`
    /// without a keychain: the message says why and what to do.
    pub async fn choose(mode: KeychainMode, service: &str) -> Result<SecretsChoice, String> {
        if mode == KeychainMode::Off {
            return Ok(SecretsChoice::database(Some("MTP_KEYCHAIN=off".into())));
        }
        match probe_keychain(service).await {
            Ok(()) => Ok(SecretsChoice::keychain(service)),
            Err(reason) if mode == KeychainMode::Auto => Ok(SecretsChoice::database(Some(
                format!("no OS keychain answered: {reason}"),
            ))),
            Err(reason) => Err(format!(
                "MTP_KEYCHAIN=on, but no OS keychain answered: {reason}. Start or unlock the keychain \
                 ({}), or set MTP_KEYCHAIN=auto to keep tokens in the database when there is none.",
                keychain_name()
            )),
        }
    }
}

/// What `mtp db info` says about the tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenPlace {
    pub in_keychain: bool,
    /// The keychain service name the entries are filed under.
    pub keychain_service: Option<String>,
    /// `OS keychain (Secret Service)`, or `in this database (file mode 0600) — <why>`.
    pub description: String,
}

impl TokenPlace {
    fn new(choice: &SecretsChoice, in_memory: bool) -> TokenPlace {
        match &choice.backend {
            SecretBackend::Keychain { service } => TokenPlace {
                in_keychain: true,
                keychain_service: Some(service.clone()),
                description: format!("OS keychain ({})", keychain_name()),
            },
            SecretBackend::Database => {
                let mut description = if in_memory {
                    "in this in-memory database".to_string()
                } else {
                    "in this database (file mode 0600)".to_string()
                };
                if let Some(why) = &choice.why_database {
                    description.push_str(" — ");
                    description.push_str(why);
                }
                TokenPlace {
                    in_keychain: false,
                    keychain_service: None,
                    description,
                }
            }
        }
    }
}

/// A place that keeps values by entry name: the OS keychain, or a map in tests. Blocking.
pub(crate) trait Vault: Send + Sync + 'static {
    fn set(&self, entry: &str, value: &str) -> Result<(), String>;
    /// `None`: there is no such entry.
    fn get(&self, entry: &str) -> Result<Option<String>, String>;
    /// Removing an entry that is not there is not an error.
    fn delete(&self, entry: &str) -> Result<(), String>;
}

/// The OS keychain through the `keyring` crate.
struct OsKeychain {
    service: String,
}

impl OsKeychain {
    fn entry(&self, entry: &str) -> Result<keyring::Entry, String> {
        keyring::Entry::new(&self.service, entry).map_err(|e| e.to_string())
    }
}

impl Vault for OsKeychain {
    fn set(&self, entry: &str, value: &str) -> Result<(), String> {
        self.entry(entry)?
            .set_password(value)
            .map_err(|e| e.to_string())
    }

    fn get(&self, entry: &str) -> Result<Option<String>, String> {
        match self.entry(entry)?.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn delete(&self, entry: &str) -> Result<(), String> {
        match self.entry(entry)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Runs a blocking keychain call off the async threads, waiting at most `timeout`.
///
/// A thread of its own rather than `spawn_blocking`: a keychain that never answers (a
/// Secret Service stuck on a prompt nobody sees) leaves that thread behind, and the tokio
/// runtime waits for its blocking threads when it shuts down, so `mtp` would never exit.
/// The thread enters the runtime, which the Secret Service client (zbus on tokio) needs.
async fn off_thread<T: Send + 'static>(
    timeout: Duration,
    call: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("keychain".into())
        .spawn(move || {
            let _entered = runtime.enter();
            let _ = tx.send(call());
        })
        .map_err(|e| format!("cannot start a thread for the keychain: {e}"))?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err("the keychain call failed without an answer".into()),
        Err(_) => Err(format!("no answer within {} s", timeout.as_secs())),
    }
}

/// Whether an OS keychain answers: stores, reads back and removes a probe entry under
/// `service`, within [`PROBE_TIMEOUT`]. `Err` says why not, in words for `mtp db info`.
pub async fn probe_keychain(service: &str) -> Result<(), String> {
    use keyring::credential::CredentialPersistence;
    // Without a keychain of its own (a platform it does not know), `keyring` keeps values
    // in memory only: that is no place for a token.
    let persistence = keyring::default::default_credential_builder().persistence();
    if !matches!(persistence, CredentialPersistence::UntilDelete) {
        return Err(format!(
            "this platform has no keychain MTP Desktop can use ({})",
            keychain_name()
        ));
    }
    let vault = OsKeychain {
        service: service.to_string(),
    };
    let entry = format!("probe@{}-{:08x}", std::process::id(), rand::random::<u32>());
    off_thread(PROBE_TIMEOUT, move || {
        vault.set(&entry, "probe")?;
        let got = vault.get(&entry);
        let _ = vault.delete(&entry);
        match got? {
            Some(v) if v == "probe" => Ok(()),
            _ => Err("it did not give back what was just stored in it".into()),
        }
    })
    .await
}

/// The store's side: where values go, and those read lately.
pub(crate) struct Secrets {
    /// `None`: tokens stay in the database.
    vault: Option<Arc<dyn Vault>>,
    /// Ends each entry's name (see the module doc).
    store_id: String,
    pub(crate) place: TokenPlace,
    /// Entry → (tag, value) last written or read by this process.
    cache: Mutex<HashMap<String, (String, Secret<String>)>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    pub(crate) fn database(choice: &SecretsChoice, in_memory: bool) -> Secrets {
        Secrets {
            vault: None,
            store_id: String::new(),
            place: TokenPlace::new(choice, in_memory),
            cache: Default::default(),
        }
    }
}

/// A stored column value: a token, or a reference to a keychain entry.
enum Stored<'a> {
    Plain(&'a str),
    Reference { entry: &'a str, tag: &'a str },
}

fn parse(stored: &str) -> Stored<'_> {
    match stored
        .strip_prefix(REFERENCE_PREFIX)
        .and_then(|r| r.rsplit_once('#'))
    {
        Some((entry, tag)) if !entry.is_empty() => Stored::Reference { entry, tag },
        _ => Stored::Plain(stored),
    }
}

/// Whether a stored column value is a keychain reference rather than a token.
pub(crate) fn is_reference(stored: &str) -> bool {
    matches!(parse(stored), Stored::Reference { .. })
}

impl Store {
    /// Where this store keeps tokens.
    pub fn token_place(&self) -> &TokenPlace {
        &self.secrets.place
    }

    /// Switches to `choice` (right after opening). With the keychain, tokens the database
    /// still holds move there now.
    pub(crate) async fn use_secrets(&mut self, choice: SecretsChoice) -> Result<(), StoreError> {
        let in_memory = self.location == "sqlite::memory:";
        let vault: Arc<dyn Vault> = match &choice.backend {
            SecretBackend::Database => {
                self.secrets = Arc::new(Secrets::database(&choice, in_memory));
                return Ok(());
            }
            SecretBackend::Keychain { service } => Arc::new(OsKeychain {
                service: service.clone(),
            }),
        };
        self.use_vault(vault, TokenPlace::new(&choice, in_memory))
            .await
    }

    /// Keeps tokens in `vault` from now on, after moving there those still in the database.
    pub(crate) async fn use_vault(
        &mut self,
        vault: Arc<dyn Vault>,
        place: TokenPlace,
    ) -> Result<(), StoreError> {
        let store_id: String = sqlx::query_scalar("SELECT store_id FROM store_identity")
            .fetch_one(self.pool())
            .await?;
        self.secrets = Arc::new(Secrets {
            vault: Some(vault),
            store_id,
            place,
            cache: Default::default(),
        });
        self.move_tokens_to_keychain().await?;
        Ok(())
    }

    /// What a column should hold for `value` (the secret `what`, e.g. `mapillary:access`):
    /// a reference once the keychain has it. Should the keychain refuse, the value itself,
    /// so that no token is ever lost; the next start moves it.
    pub(crate) async fn stash_secret(&self, what: &str, value: &Secret<String>) -> String {
        let Some(vault) = self.secrets.vault.clone() else {
            return value.expose().clone();
        };
        let entry = format!("{what}@{}", self.secrets.store_id);
        let tag = format!("{:016x}", rand::random::<u64>());
        let (name, raw) = (entry.clone(), value.expose().clone());
        match off_thread(CALL_TIMEOUT, move || vault.set(&name, &raw)).await {
            Ok(()) => {
                if let Ok(mut cache) = self.secrets.cache.lock() {
                    cache.insert(entry.clone(), (tag.clone(), value.clone()));
                }
                format!("{REFERENCE_PREFIX}{entry}#{tag}")
            }
            Err(e) => {
                tracing::warn!(
                    "the OS keychain did not take the {what} token ({e}): it is kept in the database \
                     for now and moves to the keychain at the next start"
                );
                value.expose().clone()
            }
        }
    }

    /// The token a column holds. `Err` says, in words for the user, why it cannot be had:
    /// it is in a keychain that does not answer now, or no longer there.
    pub(crate) async fn reveal_secret(
        &self,
        label: &str,
        stored: &str,
    ) -> Result<Secret<String>, String> {
        let (entry, tag) = match parse(stored) {
            Stored::Plain(token) => return Ok(Secret::new(token.to_string())),
            Stored::Reference { entry, tag } => (entry.to_string(), tag.to_string()),
        };
        let Some(vault) = self.secrets.vault.clone() else {
            return Err(format!(
                "{label}'s token was kept in the OS keychain, which is not in use now ({}). \
                 Integrate {label} again to keep a new token in this database, or start MTP Desktop \
                 where the keychain is available.",
                self.secrets.place.description
            ));
        };
        if let Ok(cache) = self.secrets.cache.lock()
            && let Some((cached_tag, value)) = cache.get(&entry)
            && *cached_tag == tag
        {
            return Ok(value.clone());
        }
        let name = entry.clone();
        match off_thread(CALL_TIMEOUT, move || vault.get(&name)).await {
            Ok(Some(token)) => {
                let value = Secret::new(token);
                if let Ok(mut cache) = self.secrets.cache.lock() {
                    cache.insert(entry, (tag, value.clone()));
                }
                Ok(value)
            }
            Ok(None) => Err(format!(
                "{label}'s token is no longer in the OS keychain (its entry {entry} was removed): \
                 integrate {label} again."
            )),
            Err(e) => Err(format!(
                "the OS keychain did not give {label}'s token ({e}): unlock the keychain and \
                 restart MTP Desktop, or integrate {label} again."
            )),
        }
    }

    /// Removes the keychain entry a column referred to (nothing for a plain value).
    pub(crate) async fn forget_secret(&self, stored: Option<&str>) {
        let Some(Stored::Reference { entry, .. }) = stored.map(parse) else {
            return;
        };
        let entry = entry.to_string();
        if let Ok(mut cache) = self.secrets.cache.lock() {
            cache.remove(&entry);
        }
        let Some(vault) = self.secrets.vault.clone() else {
            tracing::warn!(
                "the OS keychain entry {entry} stays: the keychain is not in use now ({})",
                self.secrets.place.description
            );
            return;
        };
        let name = entry.clone();
        if let Err(e) = off_thread(CALL_TIMEOUT, move || vault.delete(&name)).await {
            tracing::warn!("could not remove the OS keychain entry {entry}: {e}");
        }
    }

    /// Moves the tokens the database holds into the keychain, each replaced by its
    /// reference once the keychain has it (a token the keychain refuses stays). The old
    /// values are overwritten in the file (`secure_delete`) and the WAL is emptied.
    async fn move_tokens_to_keychain(&self) -> Result<(), StoreError> {
        let mut moved = 0usize;
        let mut conn = self.pool().acquire().await?;
        sqlx::query("PRAGMA secure_delete = ON")
            .execute(&mut *conn)
            .await?;
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT service, access_token, refresh_token FROM accounts")
                .fetch_all(&mut *conn)
                .await?;
        for (service, access, refresh) in rows {
            for (column, kind, value) in [
                ("access_token", "access", Some(access)),
                ("refresh_token", "refresh", refresh),
            ] {
                let Some(value) = value.filter(|v| !is_reference(v)) else {
                    continue;
                };
                let reference = self
                    .stash_secret(&format!("{service}:{kind}"), &Secret::new(value.clone()))
                    .await;
                if reference == value {
                    continue;
                }
                // Column names come from the list above, never from input.
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE accounts SET {column} = ? WHERE service = ? AND {column} = ?"
                )))
                .bind(&reference)
                .bind(&service)
                .bind(&value)
                .execute(&mut *conn)
                .await?;
                moved += 1;
            }
        }
        let osm: Option<Option<String>> = sqlx::query_scalar(
            "SELECT osm_token FROM sign_in_settings WHERE service = 'kartaview'",
        )
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(value) = osm.flatten().filter(|v| !is_reference(v)) {
            let reference = self
                .stash_secret(
                    super::oauth::KARTAVIEW_OSM_SECRET,
                    &Secret::new(value.clone()),
                )
                .await;
            if reference != value {
                sqlx::query(
                    "UPDATE sign_in_settings SET osm_token = ? WHERE service = 'kartaview' AND osm_token = ?",
                )
                .bind(&reference)
                .bind(&value)
                .execute(&mut *conn)
                .await?;
                moved += 1;
            }
        }
        sqlx::query("PRAGMA secure_delete = OFF")
            .execute(&mut *conn)
            .await?;
        drop(conn);
        if moved > 0 {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(self.pool())
                .await?;
            tracing::info!("moved {moved} token(s) from the database into the OS keychain");
        }
        Ok(())
    }
}

/// A vault in memory, for tests of the keychain's paths without a keychain.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct MemoryVault {
    pub(crate) entries: Mutex<HashMap<String, String>>,
    /// Every call fails, as a locked keychain's would.
    pub(crate) refuse: std::sync::atomic::AtomicBool,
}

#[cfg(test)]
impl MemoryVault {
    fn check(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, String>>, String> {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("the keychain is locked".into());
        }
        self.entries.lock().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
impl Vault for MemoryVault {
    fn set(&self, entry: &str, value: &str) -> Result<(), String> {
        self.check()?.insert(entry.into(), value.into());
        Ok(())
    }

    fn get(&self, entry: &str) -> Result<Option<String>, String> {
        Ok(self.check()?.get(entry).cloned())
    }

    fn delete(&self, entry: &str) -> Result<(), String> {
        self.check()?.remove(entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Destination;
    use crate::store::Account;
    use std::path::Path;

    fn account(service: Destination, access: &str, refresh: Option<&str>) -> Account {
        Account {
            service,
            user_id: Some("42".into()),
            username: Some("someone".into()),
            access_token: Secret::from(access),
            refresh_token: refresh.map(Secret::from),
            expires_at: None,
            needs_reauth: false,
            instance_url: None,
            reauth_reason: None,
        }
    }

    fn place() -> TokenPlace {
        TokenPlace {
            in_keychain: true,
            keychain_service: Some("test".into()),
            description: "OS keychain (test)".into(),
        }
    }

    async fn columns(store: &Store) -> Vec<(String, String, Option<String>)> {
        sqlx::query_as("SELECT service, access_token, refresh_token FROM accounts ORDER BY service")
            .fetch_all(store.pool())
            .await
            .unwrap()
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

    #[test]
    fn the_mode_reads_auto_on_and_off() {
        assert_eq!("".parse::<KeychainMode>().unwrap(), KeychainMode::Auto);
        assert_eq!(
            " Auto ".parse::<KeychainMode>().unwrap(),
            KeychainMode::Auto
        );
        assert_eq!("on".parse::<KeychainMode>().unwrap(), KeychainMode::On);
        assert_eq!("0".parse::<KeychainMode>().unwrap(), KeychainMode::Off);
        let err = "sometimes".parse::<KeychainMode>().unwrap_err();
        assert!(err.contains("auto (the default), on or off"), "{err}");
    }

    #[test]
    fn references_and_tokens_are_told_apart() {
        assert!(is_reference("keychain:mapillary:access@ab12#00ff"));
        assert!(!is_reference("MLY|123|abc"));
        assert!(!is_reference("keychain:no-tag"));
        assert!(!is_reference("keychain:#tag"));
    }

    #[tokio::test]
    async fn without_a_keychain_tokens_stay_in_the_database_and_it_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mtp.db");
        let why = "no OS keychain answered: no D-Bus session";
        let store = Store::open_with_secrets(&path, SecretsChoice::database(Some(why.into())))
            .await
            .unwrap();
        let info = store.info().await.unwrap();
        assert!(!info.tokens.in_keychain);
        assert_eq!(
            info.tokens.description,
            format!("in this database (file mode 0600) — {why}")
        );
        store
            .save_account(&account(Destination::Mapillary, "MLY|plain", None), 1)
            .await
            .unwrap();
        assert_eq!(columns(&store).await[0].1, "MLY|plain");
        let memory = Store::open_in_memory().await.unwrap();
        assert_eq!(
            memory.token_place().description,
            "in this in-memory database"
        );
    }

    #[tokio::test]
    async fn with_a_keychain_the_database_keeps_only_references() {
        let vault = Arc::new(MemoryVault::default());
        let store = Store::open_in_memory_with_vault(vault.clone())
            .await
            .unwrap();
        store
            .save_account(
                &account(Destination::Mapillary, "MLY|access", Some("refresh-1")),
                1,
            )
            .await
            .unwrap();
        store
            .set_kartaview_osm_token(Some((&Secret::from("osm-tok"), "osm-app")), 1)
            .await
            .unwrap();
        let (_, access, refresh) = columns(&store).await.remove(0);
        assert!(access.starts_with("keychain:mapillary:access@"), "{access}");
        assert!(refresh.unwrap().starts_with("keychain:mapillary:refresh@"));
        let osm: String = sqlx::query_scalar(
            "SELECT osm_token FROM sign_in_settings WHERE service = 'kartaview'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert!(osm.starts_with("keychain:kartaview:osm@"), "{osm}");
        {
            let entries = vault.entries.lock().unwrap();
            let mut values: Vec<&str> = entries.values().map(String::as_str).collect();
            values.sort();
            assert_eq!(values, ["MLY|access", "osm-tok", "refresh-1"]);
        }

        // Read back, also past the cache (the vault is asked again).
        store.secrets.cache.lock().unwrap().clear();
        let got = store
            .account(Destination::Mapillary)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.access_token.expose(), "MLY|access");
        assert_eq!(got.refresh_token.unwrap().expose(), "refresh-1");
        assert!(!got.needs_reauth);
        assert_eq!(
            store.kartaview_osm_token().await.unwrap().unwrap().expose(),
            "osm-tok"
        );

        // A refresh token the account loses goes from the keychain too; so does all of it
        // when the account is deleted, and the OSM token when forgotten.
        store
            .save_account(&account(Destination::Mapillary, "MLY|access-2", None), 2)
            .await
            .unwrap();
        assert_eq!(vault.entries.lock().unwrap().len(), 2);
        assert!(store.delete_account(Destination::Mapillary).await.unwrap());
        store.set_kartaview_osm_token(None, 3).await.unwrap();
        assert!(vault.entries.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn another_process_writing_a_token_is_seen_despite_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mtp.db");
        let vault: Arc<MemoryVault> = Arc::default();
        let mut window = Store::open(&path).await.unwrap();
        window.use_vault(vault.clone(), place()).await.unwrap();
        let mut cli = Store::open(&path).await.unwrap();
        cli.use_vault(vault.clone(), place()).await.unwrap();
        let d = Destination::Mapillary;
        window
            .save_account(&account(d, "first", None), 1)
            .await
            .unwrap();
        assert_eq!(
            cli.account(d).await.unwrap().unwrap().access_token.expose(),
            "first"
        );
        window
            .save_account(&account(d, "second", None), 2)
            .await
            .unwrap();
        assert_eq!(
            cli.account(d).await.unwrap().unwrap().access_token.expose(),
            "second"
        );
    }

    #[tokio::test]
    async fn tokens_in_the_database_move_to_the_keychain_once_and_leave_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mtp.db");
        {
            let old = Store::open(&path).await.unwrap();
            old.save_account(
                &account(
                    Destination::Mapillary,
                    "MLY|old-access-token",
                    Some("old-refresh-token"),
                ),
                1,
            )
            .await
            .unwrap();
            old.save_account(
                &account(Destination::Panoramax, "panoramax-old-token", None),
                1,
            )
            .await
            .unwrap();
            old.set_kartaview_osm_token(Some((&Secret::from("osm-old-token"), "osm-app")), 1)
                .await
                .unwrap();
            old.close().await;
        }
        let tokens = [
            "MLY|old-access-token",
            "old-refresh-token",
            "panoramax-old-token",
            "osm-old-token",
        ];
        assert!(tokens.iter().all(|t| contains(&file_bytes(&path), t)));

        let vault: Arc<MemoryVault> = Arc::default();
        let mut store = Store::open(&path).await.unwrap();
        store.use_vault(vault.clone(), place()).await.unwrap();
        for (_, access, refresh) in columns(&store).await {
            assert!(is_reference(&access), "{access}");
            assert!(refresh.is_none_or(|r| is_reference(&r)));
        }
        assert_eq!(vault.entries.lock().unwrap().len(), 4);
        let got = store
            .account(Destination::Mapillary)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.access_token.expose(), "MLY|old-access-token");
        assert_eq!(
            store.kartaview_osm_token().await.unwrap().unwrap().expose(),
            "osm-old-token"
        );
        store.close().await;
        let bytes = file_bytes(&path);
        for t in tokens {
            assert!(!contains(&bytes, t), "{t} is still in the database file");
        }

        // Once: a second start writes nothing to the keychain.
        vault.entries.lock().unwrap().clear();
        let mut again = Store::open(&path).await.unwrap();
        again.use_vault(vault.clone(), place()).await.unwrap();
        assert!(vault.entries.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_keychain_that_refuses_leaves_the_tokens_in_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mtp.db");
        let old = Store::open(&path).await.unwrap();
        old.save_account(&account(Destination::Kartaview, "kv-token", None), 1)
            .await
            .unwrap();
        let vault: Arc<MemoryVault> = Arc::default();
        vault
            .refuse
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut store = Store::open(&path).await.unwrap();
        store.use_vault(vault.clone(), place()).await.unwrap();
        assert_eq!(columns(&store).await[0].1, "kv-token");
        // A new token the keychain refuses is kept in the database too, never lost.
        store
            .save_account(&account(Destination::Kartaview, "kv-token-2", None), 2)
            .await
            .unwrap();
        assert_eq!(columns(&store).await[0].1, "kv-token-2");
        let got = store
            .account(Destination::Kartaview)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.access_token.expose(), "kv-token-2");
        assert!(!got.needs_reauth);
    }

    #[tokio::test]
    async fn references_without_the_keychain_ask_for_a_new_sign_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mtp.db");
        let vault: Arc<MemoryVault> = Arc::default();
        {
            let mut store = Store::open(&path).await.unwrap();
            store.use_vault(vault.clone(), place()).await.unwrap();
            store
                .save_account(&account(Destination::Mapillary, "MLY|kept", Some("r")), 1)
                .await
                .unwrap();
            store
                .set_kartaview_osm_token(Some((&Secret::from("osm"), "osm-app")), 1)
                .await
                .unwrap();
            store.close().await;
        }
        // Headless later: no keychain answers.
        let why = "no OS keychain answered: no D-Bus session";
        let store = Store::open_with_secrets(&path, SecretsChoice::database(Some(why.into())))
            .await
            .unwrap();
        let got = store
            .account(Destination::Mapillary)
            .await
            .unwrap()
            .unwrap();
        assert!(got.needs_reauth);
        assert!(got.access_token.expose().is_empty());
        assert!(got.refresh_token.is_none());
        let reason = got.reauth_reason.clone().unwrap();
        assert!(reason.contains("kept in the OS keychain"), "{reason}");
        assert!(reason.contains(why), "{reason}");
        assert!(reason.contains("Integrate Mapillary again"), "{reason}");
        assert!(store.kartaview_osm_token().await.unwrap().is_none());
        // Saving such an account back (its name changed) keeps the references.
        let mut renamed = got.clone();
        renamed.username = Some("renamed".into());
        store.save_account(&renamed, 2).await.unwrap();
        let (_, access, _) = columns(&store).await.remove(0);
        assert!(is_reference(&access), "{access}");
        let got = store
            .account(Destination::Mapillary)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.username.as_deref(), Some("renamed"));
        assert!(got.reauth_reason.is_some());
        // Signing in again keeps the new token here.
        store
            .save_account(&account(Destination::Mapillary, "MLY|new", None), 2)
            .await
            .unwrap();
        let got = store
            .account(Destination::Mapillary)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.access_token.expose(), "MLY|new");
        assert!(!got.needs_reauth);

        // With the keychain back but the entry removed by hand: a new sign-in too.
        let mut store = Store::open(&path).await.unwrap();
        store
            .save_account(&account(Destination::Panoramax, "pnx", None), 3)
            .await
            .unwrap();
        store.use_vault(vault.clone(), place()).await.unwrap();
        vault.entries.lock().unwrap().clear();
        store.secrets.cache.lock().unwrap().clear();
        let got = store
            .account(Destination::Panoramax)
            .await
            .unwrap()
            .unwrap();
        assert!(got.needs_reauth);
        let reason = got.reauth_reason.unwrap();
        assert!(reason.contains("no longer in the OS keychain"), "{reason}");
    }
}
