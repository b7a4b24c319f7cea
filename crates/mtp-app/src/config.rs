//! Configuration read at run time from the environment (and `.env`), never compiled in.

use mtp_core::Destination;
use mtp_core::secret::Secret;
use std::path::PathBuf;

/// Whether the app talks to the built-in emulators or to the real services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Sandbox,
    Live,
}

/// Why sandbox mode is on or off, for the banner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
                reason: "No service credentials are configured (see .env.example), so every service is the built-in emulator".into(),
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
            Destination::Kartaview => {
                if self.kartaview_osm_client_id.is_none() {
                    missing.push("KARTAVIEW_OSM_CLIENT_ID");
                }
                if self.kartaview_osm_client_secret.is_none() {
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

    /// Where the database and caches live: MTP_DATA_DIR, else the platform's data dir.
    pub fn resolved_data_dir(&self) -> PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        directories::ProjectDirs::from("app", "mtp", "desktop")
            .map(|p| p.data_dir().to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".mtp-desktop"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
