//! Where each service lives and which app credentials we present to it.
//!
//! Every URL is configurable (PROTOCOLS §0): the sandbox serves the same paths under a
//! prefix on one loopback origin, so no client may assume a host root.

use mtp_core::secret::Secret;
use url::Url;

/// The app's deep link, registered as the OAuth redirect URI (as MTPDU did).
pub const DEEP_LINK_REDIRECT_URI: &str = "app.mtp.desktop://app";

fn url(s: &str) -> Url {
    // Only called with the literal production URLs below, all of which parse.
    Url::parse(s).unwrap_or_else(|e| panic!("built-in URL {s:?} is invalid: {e}"))
}

/// Mapillary: OAuth app credentials and the three hosts (PROTOCOLS §0, §2.1).
#[derive(Debug, Clone, PartialEq)]
pub struct MapillaryConfig {
    /// The numeric app id from the Mapillary developer dashboard.
    pub client_id: String,
    /// `MLY|<appid>|<hex>`, sent as `Authorization: OAuth <secret>` to `{graph}/token`.
    pub client_secret: Secret<String>,
    /// The deep link, or a loopback `http://127.0.0.1:<port>/callback` fallback (⚠️ how
    /// Mapillary treats custom-scheme redirects is unverified).
    pub redirect_uri: String,
    pub authorize_url: Url,
    pub graph_url: Url,
    pub upload_url: Url,
    /// Sent verbatim as `scope=` when not empty (`MAPILLARY_SCOPE`). Empty by default: no
    /// `scope` is sent, so the token gets every permission the app was registered with
    /// (PROTOCOLS §2.1; JOSM's `read` would give a token that cannot upload). How several
    /// scopes are joined is undocumented, hence a setting.
    pub scope: String,
    /// `MAPILLARY_WEB_CLIENT_TOKEN`: the token mapillary.com's web app embeds, tried on the
    /// activity feed when the user's token is refused there (PROTOCOLS §2.6). None by default.
    pub web_client_token: Option<Secret<String>>,
}

impl MapillaryConfig {
    pub fn production_defaults(
        client_id: impl Into<String>,
        client_secret: Secret<String>,
    ) -> Self {
        MapillaryConfig {
            client_id: client_id.into(),
            client_secret,
            redirect_uri: DEEP_LINK_REDIRECT_URI.to_string(),
            authorize_url: url("https://www.mapillary.com/connect"),
            graph_url: url("https://graph.mapillary.com"),
            upload_url: url("https://rupload.facebook.com/mapillary_public_uploads"),
            scope: String::new(),
            web_client_token: None,
        }
    }
}

/// KartaView and the OpenStreetMap OAuth2 app whose token KartaView's `client_auth` takes.
#[derive(Debug, Clone, PartialEq)]
pub struct KartaViewConfig {
    pub api_url: Url,
    pub osm_authorize_url: Url,
    pub osm_token_url: Url,
    pub osm_client_id: String,
    /// Sent to OSM when exchanging the code, and to KartaView as `secret_token`.
    pub osm_client_secret: Secret<String>,
    pub redirect_uri: String,
}

impl KartaViewConfig {
    pub fn production_defaults(
        osm_client_id: impl Into<String>,
        osm_client_secret: Secret<String>,
    ) -> Self {
        KartaViewConfig {
            api_url: url("https://api.openstreetcam.org"),
            osm_authorize_url: url("https://www.openstreetmap.org/oauth2/authorize"),
            osm_token_url: url("https://www.openstreetmap.org/oauth2/token"),
            osm_client_id: osm_client_id.into(),
            osm_client_secret,
            redirect_uri: DEEP_LINK_REDIRECT_URI.to_string(),
        }
    }
}

/// Panoramax is federated: there is no single production default (PROTOCOLS §0), so the
/// user picks an instance; [`PanoramaxConfig::KNOWN_INSTANCES`] lists well-known ones.
#[derive(Debug, Clone, PartialEq)]
pub struct PanoramaxConfig {
    pub instance_url: Url,
}

impl PanoramaxConfig {
    /// Instances that accept uploads (`api.panoramax.xyz` is a read-only meta-catalogue).
    pub const KNOWN_INSTANCES: [&'static str; 2] = [
        "https://panoramax.openstreetmap.fr",
        "https://panoramax.ign.fr",
    ];

    pub fn new(instance_url: Url) -> Self {
        PanoramaxConfig { instance_url }
    }
}

/// Map the Paths Web (PROTOCOLS §5).
#[derive(Debug, Clone, PartialEq)]
pub struct MtpwConfig {
    pub base_url: Url,
    pub client_id: String,
    pub redirect_uri: String,
}

impl MtpwConfig {
    pub fn production_defaults(client_id: impl Into<String>) -> Self {
        MtpwConfig {
            base_url: url("https://www.mapthepaths.com"),
            client_id: client_id.into(),
            redirect_uri: DEEP_LINK_REDIRECT_URI.to_string(),
        }
    }
}
