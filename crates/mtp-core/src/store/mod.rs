//! The SQLite store: one file in the app data dir, WAL, foreign keys, migrations embedded
//! from `migrations/`. A corrupt file or one written by a newer version of the app is
//! refused with a clear message and never touched.

mod accounts;
mod events;
mod jobs;
mod oauth;
mod pipeline;
mod remote_actions;
mod secrets;
mod sequences;
mod settings;

pub use accounts::{Account, AccountStatus};
pub use events::{Event, NewEvent, STAGE_END_EVENTS};
pub use jobs::{ItemUpdate, JobItemRow, JobRow, JobUpdate};
pub use oauth::OAuthAttempt;
pub use remote_actions::{NewRemoteAction, RemoteActionKind, RemoteActionRow, RemoteActionStatus};
pub use secrets::{
    DEFAULT_KEYCHAIN_SERVICE, KeychainMode, PROBE_TIMEOUT, SecretBackend, SecretsChoice,
    TokenPlace, keychain_name, probe_keychain,
};
pub use sequences::{
    DroppedFile, DroppedRow, NewImport, PhotoRow, SequenceMeta, SequenceRow, part_name,
};

use serde::Serialize;
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The schema, compiled in from `migrations/` at the workspace root.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// The file name of the database inside the data directory.
pub const DB_FILE_NAME: &str = "mtp.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path} is not a readable MTP Desktop database (it is corrupt or not SQLite). \
         It was left untouched: move it aside (e.g. rename it to mtp.db.broken) and restart to start fresh, \
         or restore a backup."
    )]
    Corrupt { path: String },
    #[error(
        "{path} was written by a newer version of MTP Desktop (schema version {found}, this version knows up to {supported}). \
         It was left untouched: install the newer version, or point MTP_DATA_DIR elsewhere."
    )]
    NewerSchema {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("cannot prepare the database at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    fn classify(err: sqlx::Error, path: &str) -> StoreError {
        if is_not_a_database(&err) {
            StoreError::Corrupt {
                path: path.to_string(),
            }
        } else {
            StoreError::Sql(err)
        }
    }
}

fn is_not_a_database(err: &sqlx::Error) -> bool {
    match err {
        // SQLITE_NOTADB = 26, SQLITE_CORRUPT = 11
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("26") | Some("11")),
        _ => false,
    }
}

/// A handle on the database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    location: String,
    /// Taken around the pipeline's frequent write transactions, so that they queue here
    /// instead of in SQLite's busy handler, which polls with sleeps of 1 to 100 ms.
    busy_writes: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// Where token values go (the OS keychain or the database).
    secrets: std::sync::Arc<secrets::Secrets>,
}

/// The right to run the upload pipeline on a database, which one process holds at a time:
/// two engines on one database would each put back the other's running jobs at their
/// start, and send them twice. An OS lock on `<database>.engine.lock`, released when the
/// holder drops it or its process ends, however it ends.
#[derive(Debug)]
pub struct EngineLock {
    _file: Option<std::fs::File>,
}

/// What `mtp db info` prints.
#[derive(Debug, Clone, Serialize)]
pub struct DbInfo {
    pub location: String,
    pub schema_version: i64,
    pub latest_known_version: i64,
    pub counts: Vec<(String, i64)>,
    /// Where the tokens are kept.
    pub tokens: TokenPlace,
}

const COUNTED_TABLES: [&str; 8] = [
    "imports",
    "sequences",
    "photos",
    "dropped_photos",
    "jobs",
    "job_items",
    "accounts",
    "events",
];

/// `PRAGMA cache_size` of each pooled connection: negative = KiB (512 KiB, 128 pages).
const PAGE_CACHE_SIZE: &str = "-512";

impl Store {
    /// Opens (creating if needed, with mode 0600) the database file at `path` and brings its
    /// schema up to date. Tokens stay in the file; see [`Store::open_with_secrets`].
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with_secrets(path, SecretsChoice::database(None)).await
    }

    /// [`Store::open`], keeping tokens where `secrets` says. With the OS keychain, tokens
    /// the file still holds (written by an earlier version, or when the keychain refused
    /// them) move there now.
    pub async fn open_with_secrets(
        path: &Path,
        secrets: SecretsChoice,
    ) -> Result<Store, StoreError> {
        let display = path.display().to_string();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        }
        create_private_file(path).map_err(|source| StoreError::Io {
            path: display.clone(),
            source,
        })?;
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // SQLite's page cache (default 2 MiB per connection) fills as the database
            // grows: 4 pooled connections made the process grow with the photos saved
            // (bench/memory-curve.sh). Pages missed are read from the OS's page cache.
            .pragma("cache_size", PAGE_CACHE_SIZE);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(|e| StoreError::classify(e, &display))?;
        let mut store = Store {
            pool,
            location: display,
            busy_writes: Default::default(),
            secrets: std::sync::Arc::new(secrets::Secrets::database(&secrets, false)),
        };
        store.migrate().await?;
        store.use_secrets(secrets).await?;
        // WAL and shared-memory files are created by SQLite with the process umask.
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            restrict_permissions(Path::new(&side));
        }
        Ok(store)
    }

    /// Opens from a URL: `sqlite::memory:` for a throwaway database (tests, e2e), else a file path
    /// or `sqlite://path`.
    pub async fn open_url(url: &str) -> Result<Store, StoreError> {
        Store::open_url_with_secrets(url, SecretsChoice::database(None)).await
    }

    /// [`Store::open_url`], keeping tokens where `secrets` says; an in-memory database keeps
    /// its own (they end with it).
    pub async fn open_url_with_secrets(
        url: &str,
        secrets: SecretsChoice,
    ) -> Result<Store, StoreError> {
        if Store::is_memory_url(url) {
            return Store::open_in_memory().await;
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        Store::open_with_secrets(Path::new(path), secrets).await
    }

    /// Whether `url` names a throwaway in-memory database.
    pub fn is_memory_url(url: &str) -> bool {
        url == "sqlite::memory:" || url == ":memory:"
    }

    /// A private in-memory database (one connection that lives as long as the pool).
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts)
            .await?;
        let choice = SecretsChoice::database(None);
        let store = Store {
            pool,
            location: "sqlite::memory:".into(),
            busy_writes: Default::default(),
            secrets: std::sync::Arc::new(secrets::Secrets::database(&choice, true)),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// An in-memory store whose tokens go to `vault` (tests of the keychain's paths).
    #[cfg(test)]
    pub(crate) async fn open_in_memory_with_vault(
        vault: std::sync::Arc<dyn secrets::Vault>,
    ) -> Result<Store, StoreError> {
        let mut store = Store::open_in_memory().await?;
        let place = TokenPlace {
            in_keychain: true,
            keychain_service: Some("test".into()),
            description: "OS keychain (test)".into(),
        };
        store.use_vault(vault, place).await?;
        Ok(store)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that writes, holding SQLite's write lock from its start
    /// (`BEGIN IMMEDIATE`). A deferred one that reads before it writes fails with "database
    /// is locked" at its first write when another connection (the engine, saving progress)
    /// committed since its read: SQLite cannot wait that out. Taking the lock first, it
    /// waits in the busy handler like any other write.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Takes the [`EngineLock`], or `None` while another holds it (another process; or
    /// another handle in this one that opened the same file). An in-memory database is
    /// this handle's alone.
    pub fn try_engine_lock(&self) -> Result<Option<EngineLock>, StoreError> {
        if Store::is_memory_url(&self.location) {
            return Ok(Some(EngineLock { _file: None }));
        }
        let path = format!("{}.engine.lock", self.location);
        let io = |source| StoreError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(EngineLock { _file: Some(file) })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => Err(io(source)),
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Applies pending migrations, after refusing a database from a newer app version.
    async fn migrate(&self) -> Result<(), StoreError> {
        let latest = latest_known_version();
        let found = self.schema_version().await?;
        if found > latest {
            return Err(StoreError::NewerSchema {
                path: self.location.clone(),
                found,
                supported: latest,
            });
        }
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) if is_not_a_database(&inner) => {
                StoreError::Corrupt {
                    path: self.location.clone(),
                }
            }
            other => StoreError::Migrate(other),
        })?;
        Ok(())
    }

    /// The newest migration applied, 0 for an empty database.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| StoreError::classify(e, &self.location))?;
        if exists.is_none() {
            return Ok(0);
        }
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(v.unwrap_or(0))
    }

    pub async fn info(&self) -> Result<DbInfo, StoreError> {
        let mut counts = Vec::with_capacity(COUNTED_TABLES.len());
        for table in COUNTED_TABLES {
            // Table names come from the constant list above, never from input.
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) AS n FROM {table}"
            )))
            .fetch_one(&self.pool)
            .await?
            .get("n");
            counts.push((table.to_string(), n));
        }
        Ok(DbInfo {
            location: self.location.clone(),
            schema_version: self.schema_version().await?,
            latest_known_version: latest_known_version(),
            counts,
            tokens: self.token_place().clone(),
        })
    }
}

/// The newest schema version this build knows.
pub fn latest_known_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Where the database lives by default: `<data dir>/mtp.db`.
pub fn default_db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE_NAME)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            restrict_permissions(path);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(|_| ())
}

fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if path.exists() {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests;
