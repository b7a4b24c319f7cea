//! Configuration read at run time from the environment and settings files (see
//! [`load_settings_files`]), never compiled in.

use mtp_core::Destination;
use mtp_core::secret::Secret;
use std::path::{Path, PathBuf};

/// Whether the app talks to the built-in emulators or to the real services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Sandbox,
    Live,
}

/// Why sandbox mode is on or off, for the banner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct ModeReason {
    pub mode: Mode,
    pub reason: String,
}

/// Raw settings of every service, as configured. Empty values are `None`.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub data_dir: Option<PathBuf>,
    pub db_url: Option<String>,
    pub sandbox: Option<bool>,
    /// Sandbox mode: how long the emulators take to "process" an upload (ms). Default 3 s.
    pub sandbox_processing_ms: Option<u64>,
    pub opener: Option<String>,
    /// `MTP_KEYCHAIN`: `auto` (default), `on` or `off` — whether tokens go to the OS keychain.
    pub keychain: Option<String>,
    /// `MTP_KEYCHAIN_SERVICE`: the keychain service name the entries are filed under
    /// (default `app.mtp.desktop`; tests use their own).
    pub keychain_service: Option<String>,
    pub mapillary_app_id: Option<String>,
    pub mapillary_secret: Option<Secret<String>>,
    pub mapillary_redirect_uri: Option<String>,
    pub mapillary_scope: Option<String>,
    /// `MAPILLARY_WEB_CLIENT_TOKEN`: for Mapillary's activity feed when it refuses the
    /// user's token (PROTOCOLS §2.6).
    pub mapillary_web_client_token: Option<Secret<String>>,
    pub mapillary_authorize_url: Option<String>,
    pub mapillary_graph_url: Option<String>,
    pub mapillary_upload_url: Option<String>,
    pub kartaview_api_url: Option<String>,
    pub kartaview_osm_client_id: Option<String>,
    pub kartaview_osm_client_secret: Option<Secret<String>>,
    pub kartaview_redirect_uri: Option<String>,
    pub osm_authorize_url: Option<String>,
    pub osm_token_url: Option<String>,
    pub panoramax_instance_url: Option<String>,
    pub panoramax_token: Option<Secret<String>>,
    pub mtpw_url: Option<String>,
    pub mtpw_client_id: Option<String>,
    pub mtpw_redirect_uri: Option<String>,
    /// "View on …" page templates (`{image_id}`, `{sequence_id}`, `{instance}` +
    /// `{picture_id}`, `{unique_id}`); unset = the services' own pages.
    pub mapillary_image_page_url: Option<String>,
    pub kartaview_sequence_page_url: Option<String>,
    pub panoramax_picture_page_url: Option<String>,
    pub mtpw_sequence_page_url: Option<String>,
    /// Sandbox mode: how the Map the Paths emulator answers an import that links a
    /// Mapillary sequence (`v3_unreachable`, the default, as today's server; `v3_refuses`;
    /// `fixed`).
    pub sandbox_mtpw_import: Option<String>,
    /// Sandbox mode: the emulators' own knobs (`MTP_SANDBOX_WORLD`, `MTP_SANDBOX_WORLD_SEED`,
    /// `MTP_SANDBOX_MLY_MAX_BBOX_SQDEG`), as set.
    pub sandbox_knobs: Vec<(String, String)>,
}

/// The redirect URI every OAuth flow comes back through.
pub const DEEP_LINK_REDIRECT: &str = "app.mtp.desktop://app";

impl Settings {
    /// Reads the process environment. Call `dotenvy::dotenv()` first to include `.env`.
    pub fn from_env() -> Settings {
        Settings::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Settings {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let secret = |k: &str| get(k).map(Secret::new);
        Settings {
            data_dir: get("MTP_DATA_DIR").map(PathBuf::from),
            db_url: get("MTP_DB_URL"),
            sandbox: get("MTP_SANDBOX")
                .map(|v| !matches!(v.as_str(), "0" | "false" | "no" | "off")),
            sandbox_processing_ms: get("MTP_SANDBOX_PROCESSING_MS").and_then(|v| v.parse().ok()),
            opener: get("MTP_OPENER"),
            keychain: get("MTP_KEYCHAIN"),
            keychain_service: get("MTP_KEYCHAIN_SERVICE"),
            mapillary_app_id: get("MAPILLARY_APP_ID"),
            mapillary_secret: secret("MAPILLARY_SECRET"),
            mapillary_redirect_uri: get("MAPILLARY_REDIRECT_URI"),
            mapillary_scope: get("MAPILLARY_SCOPE"),
            mapillary_web_client_token: get("MAPILLARY_WEB_CLIENT_TOKEN")
                .filter(|t| !t.trim().is_empty())
                .map(|t| Secret::new(t.trim().to_string())),
            mapillary_authorize_url: get("MAPILLARY_AUTHORIZE_URL"),
            mapillary_graph_url: get("MAPILLARY_GRAPH_URL"),
            mapillary_upload_url: get("MAPILLARY_UPLOAD_URL"),
            kartaview_api_url: get("KARTAVIEW_API_URL"),
            kartaview_osm_client_id: get("KARTAVIEW_OSM_CLIENT_ID"),
            kartaview_osm_client_secret: secret("KARTAVIEW_OSM_CLIENT_SECRET"),
            kartaview_redirect_uri: get("KARTAVIEW_REDIRECT_URI"),
            osm_authorize_url: get("OSM_AUTHORIZE_URL"),
            osm_token_url: get("OSM_TOKEN_URL"),
            panoramax_instance_url: get("PANORAMAX_INSTANCE_URL"),
            panoramax_token: secret("PANORAMAX_TOKEN"),
            mtpw_url: get("MTPW_URL"),
            mtpw_client_id: get("MTPW_CLIENT_ID"),
            mtpw_redirect_uri: get("MTPW_REDIRECT_URI"),
            mapillary_image_page_url: get("MAPILLARY_IMAGE_PAGE_URL"),
            kartaview_sequence_page_url: get("KARTAVIEW_SEQUENCE_PAGE_URL"),
            panoramax_picture_page_url: get("PANORAMAX_PICTURE_PAGE_URL"),
            mtpw_sequence_page_url: get("MTPW_SEQUENCE_PAGE_URL"),
            sandbox_mtpw_import: get("MTP_SANDBOX_MTPW_IMPORT"),
            sandbox_knobs: [
                mtp_sandbox::WORLD_ENV,
                mtp_sandbox::WORLD_SEED_ENV,
                mtp_sandbox::MLY_MAX_BBOX_ENV,
            ]
            .into_iter()
            .filter_map(|k| get(k).map(|v| (k.to_owned(), v)))
            .collect(),
        }
    }

    /// Sandbox when asked for, or when no service has any credentials configured.
    pub fn mode(&self) -> ModeReason {
        match self.sandbox {
            Some(true) => ModeReason {
                mode: Mode::Sandbox,
                reason: "MTP_SANDBOX is set: every service is the built-in emulator".into(),
            },
            Some(false) => ModeReason {
                mode: Mode::Live,
                reason: "MTP_SANDBOX=0: using the real services".into(),
            },
            None if Destination::ALL.iter().all(|d| !self.has_credentials(*d)) => ModeReason {
                mode: Mode::Sandbox,
                reason: "No service credentials are configured, so every service is the built-in emulator".into(),
            },
            None => ModeReason {
                mode: Mode::Live,
                reason: "Using the real services configured in the environment".into(),
            },
        }
    }

    fn has_credentials(&self, d: Destination) -> bool {
        match d {
            Destination::Mapillary => self.mapillary_app_id.is_some(),
            Destination::Kartaview => self.kartaview_osm_client_id.is_some(),
            Destination::Panoramax => self.panoramax_instance_url.is_some(),
            Destination::Mtpw => self.mtpw_client_id.is_some(),
        }
    }

    /// In live mode: the settings a service still lacks before it can be integrated.
    pub fn missing(&self, d: Destination) -> Vec<&'static str> {
        let mut missing = Vec::new();
        match d {
            Destination::Mapillary => {
                if self.mapillary_app_id.is_none() {
                    missing.push("MAPILLARY_APP_ID");
                }
                if self.mapillary_secret.is_none() {
                    missing.push("MAPILLARY_SECRET");
                }
            }
            // Without an OSM app of one's own, KartaView's is used: only an id without
            // its secret is missing something.
            Destination::Kartaview => {
                if self.kartaview_osm_client_id.is_some()
                    && self.kartaview_osm_client_secret.is_none()
                {
                    missing.push("KARTAVIEW_OSM_CLIENT_SECRET");
                }
            }
            Destination::Panoramax => {
                if self.panoramax_instance_url.is_none() {
                    missing.push("PANORAMAX_INSTANCE_URL");
                }
            }
            Destination::Mtpw => {
                if self.mtpw_client_id.is_none() {
                    missing.push("MTPW_CLIENT_ID");
                }
            }
        }
        missing
    }

    /// Where the database and caches live: MTP_DATA_DIR, else the folder named after the
    /// app identifier in the platform's data dir (`~/.local/share/app.mtp.desktop` on Linux,
    /// where Tauri keeps the app's own data too).
    pub fn resolved_data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        directories::BaseDirs::new()
            .map(|b| b.data_dir().join(APP_IDENTIFIER))
            .unwrap_or_else(|| PathBuf::from(".mtp-desktop"))
    }

    /// Where versions before 0.2 kept the data (`~/.local/share/desktop` on Linux: the
    /// project name alone), when the data dir is not set explicitly.
    pub fn legacy_data_dir(&self) -> Option<PathBuf> {
        if self.data_dir.is_some() {
            return None;
        }
        directories::ProjectDirs::from("app", "mtp", "desktop").map(|p| p.data_dir().to_path_buf())
    }
}

/// The app's identifier (tauri.conf.json), which names its data folder.
pub const APP_IDENTIFIER: &str = "app.mtp.desktop";

/// Names the settings file in place of the usual one (tests, several setups side by side).
pub const SETTINGS_FILE_ENV: &str = "MTP_SETTINGS_FILE";

/// Where a person keeps their settings: `MTP_SETTINGS_FILE`, else `settings.env` in the
/// folder named after the app identifier in the platform's configuration dir
/// (`~/.config/app.mtp.desktop/settings.env` on Linux). An installed app starts in the home
/// folder, so a `.env` next to it is not where anyone would look.
pub fn user_settings_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(SETTINGS_FILE_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    directories::BaseDirs::new().map(|b| b.config_dir().join(APP_IDENTIFIER).join("settings.env"))
}

/// "your settings file (<path>)", for messages that tell where a setting goes.
pub fn settings_file_words() -> String {
    match user_settings_file() {
        Some(path) => format!("your settings file ({})", path.display()),
        None => "your settings (see .env.example)".to_owned(),
    }
}

/// The settings files read into the environment at start, and what was wrong with them.
#[derive(Debug, Clone, Default)]
pub struct SettingsFiles {
    pub read: Vec<PathBuf>,
    /// One line per file that could not be read whole: which file, what is wrong.
    pub problems: Vec<String>,
}

static SETTINGS_FILES: std::sync::OnceLock<SettingsFiles> = std::sync::OnceLock::new();

/// Reads the settings files into the process environment, once: first `.env` in the
/// current folder (or a parent: development checkouts), then the user's settings file
/// ([`user_settings_file`]). A variable already set wins over both, and `.env` wins over
/// the user's file. Call before any thread starts; [`Settings::from_env`] then sees them.
pub fn load_settings_files() -> &'static SettingsFiles {
    SETTINGS_FILES.get_or_init(|| read_settings_files(true, user_settings_file().as_deref()))
}

/// Reads `.env` (when `dot_env`) and then `user_file` into the environment.
fn read_settings_files(dot_env: bool, user_file: Option<&Path>) -> SettingsFiles {
    let mut files = SettingsFiles::default();
    let mut note = |path: &Path, result: Result<(), dotenvy::Error>| match result {
        Ok(()) => files.read.push(path.to_path_buf()),
        Err(e) if e.not_found() => {}
        Err(e) => {
            // A line it cannot read stops it there: what came before was read.
            if matches!(e, dotenvy::Error::LineParse(..)) {
                files.read.push(path.to_path_buf());
            }
            files.problems.push(settings_problem(path, &e));
        }
    };
    if dot_env {
        match dotenvy::dotenv() {
            Ok(path) => note(&path, Ok(())),
            Err(e) if e.not_found() => {}
            Err(e) => note(Path::new(".env"), Err(e)),
        }
    }
    if let Some(path) = user_file {
        note(path, dotenvy::from_path(path));
    }
    files
}

/// The settings files read at start (none when [`load_settings_files`] was not called).
pub fn settings_files() -> SettingsFiles {
    SETTINGS_FILES.get().cloned().unwrap_or_default()
}

fn settings_problem(path: &Path, e: &dotenvy::Error) -> String {
    let what = match e {
        dotenvy::Error::LineParse(line, index) => format!(
            "cannot read the line {line:?} (at character {index}): write settings as NAME=value, one per line"
        ),
        dotenvy::Error::Io(e) => format!("cannot read it: {e}"),
        other => other.to_string(),
    };
    format!(
        "Settings file {}: {what}. The settings after that point were not read.",
        path.display()
    )
}

/// Moves the data of an older version from `legacy` to `current`, once: only when `legacy`
/// holds a database and `current` holds none (a rename, so nothing is copied and nothing
/// can be half-moved). Returns whether it moved.
pub fn move_legacy_data(legacy: &Path, current: &Path) -> std::io::Result<bool> {
    let has_db = |dir: &Path| dir.join("mtp.db").exists() || dir.join("sandbox/mtp.db").exists();
    if legacy == current || !has_db(legacy) || has_db(current) {
        return Ok(false);
    }
    if current.exists() {
        // An empty folder left by a first start of this version: make room for the rename.
        std::fs::remove_dir(current)?;
    }
    if let Some(parent) = current.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(legacy, current)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_settings_file_is_read_up_to_a_broken_line_which_is_reported_with_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("settings.env");
        std::fs::write(
            &path,
            "# mine\nMTP_TEST_SETTINGS_BEFORE=yes\nnot a setting\nMTP_TEST_SETTINGS_AFTER=yes\n",
        )
        .expect("write");
        let files = read_settings_files(false, Some(&path));
        assert_eq!(files.read, vec![path.clone()]);
        assert_eq!(files.problems.len(), 1, "{:?}", files.problems);
        let problem = &files.problems[0];
        assert!(problem.contains(&path.display().to_string()), "{problem}");
        assert!(problem.contains("\"not a setting\""), "{problem}");
        assert!(problem.contains("NAME=value"), "{problem}");
        assert_eq!(
            std::env::var("MTP_TEST_SETTINGS_BEFORE").as_deref(),
            Ok("yes")
        );
        assert!(std::env::var("MTP_TEST_SETTINGS_AFTER").is_err());
    }

    #[test]
    fn a_missing_settings_file_is_no_problem_and_what_is_set_first_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nothing-here.env");
        let files = read_settings_files(false, Some(&missing));
        assert!(files.read.is_empty() && files.problems.is_empty());

        // As with `.env` read before the settings file: a variable already set stays.
        let first = dir.path().join("first.env");
        let second = dir.path().join("second.env");
        std::fs::write(&first, "MTP_TEST_SETTINGS_SET=first\n").expect("write");
        std::fs::write(&second, "MTP_TEST_SETTINGS_SET=second\n").expect("write");
        read_settings_files(false, Some(&first));
        let files = read_settings_files(false, Some(&second));
        assert_eq!(files.read, vec![second]);
        assert_eq!(
            std::env::var("MTP_TEST_SETTINGS_SET").as_deref(),
            Ok("first")
        );
    }

    #[test]
    fn the_data_of_an_older_version_moves_once() {
        let root = tempfile::tempdir().expect("tempdir");
        let legacy = root.path().join("desktop");
        let current = root.path().join(APP_IDENTIFIER);
        // Nothing to move.
        assert!(!move_legacy_data(&legacy, &current).expect("no-op"));
        std::fs::create_dir_all(legacy.join("sandbox")).expect("legacy");
        std::fs::write(legacy.join("mtp.db"), b"db").expect("db");
        std::fs::write(legacy.join("sandbox/mtp.db"), b"sandbox db").expect("db");
        // An empty folder from a first start does not stop the move.
        std::fs::create_dir_all(&current).expect("current");
        assert!(move_legacy_data(&legacy, &current).expect("move"));
        assert_eq!(std::fs::read(current.join("mtp.db")).expect("moved"), b"db");
        assert_eq!(
            std::fs::read(current.join("sandbox/mtp.db")).expect("moved"),
            b"sandbox db"
        );
        assert!(!legacy.exists());
        // Once there is a database in the new place, an old one is left alone.
        std::fs::create_dir_all(&legacy).expect("legacy again");
        std::fs::write(legacy.join("mtp.db"), b"old").expect("db");
        assert!(!move_legacy_data(&legacy, &current).expect("no-op"));
        assert_eq!(std::fs::read(current.join("mtp.db")).expect("kept"), b"db");
    }

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn sandbox_is_the_default_without_credentials() {
        assert_eq!(settings(&[]).mode().mode, Mode::Sandbox);
        assert_eq!(
            settings(&[("MAPILLARY_APP_ID", "  ")]).mode().mode,
            Mode::Sandbox
        );
        assert_eq!(
            settings(&[("MAPILLARY_APP_ID", "123")]).mode().mode,
            Mode::Live
        );
        assert_eq!(
            settings(&[("MAPILLARY_APP_ID", "123"), ("MTP_SANDBOX", "1")])
                .mode()
                .mode,
            Mode::Sandbox
        );
        assert_eq!(settings(&[("MTP_SANDBOX", "0")]).mode().mode, Mode::Live);
    }

    #[test]
    fn says_which_settings_are_missing() {
        let s = settings(&[("MAPILLARY_APP_ID", "123")]);
        assert_eq!(s.missing(Destination::Mapillary), vec!["MAPILLARY_SECRET"]);
        assert_eq!(
            s.missing(Destination::Panoramax),
            vec!["PANORAMAX_INSTANCE_URL"]
        );
    }
}
