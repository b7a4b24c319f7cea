//! Where each service lives and which app credentials we present to it.
//!
//! Every URL is configurable (PROTOCOLS §0): the sandbox serves the same paths under a
//! prefix on one loopback origin, so no client may assume a host root.

use mtp_core::secret::Secret;
use url::Url;

/// The app's deep link, registered as the OAuth redirect URI (as MTPDU did).
pub const DEEP_LINK_REDIRECT_URI: &str = "app.mtp.desktop://app";

/// A web page address with `{name}` placeholders, e.g.
/// `https://kartaview.org/details/{sequence_id}`: where "View on …" links go. Kept in each
/// service's config so that the same code builds live and sandbox links (the sandbox
/// emulators serve a page at their template's address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageTemplate(String);

impl PageTemplate {
    pub fn new(template: impl Into<String>) -> Self {
        PageTemplate(template.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address with every `{name}` replaced by its value (percent-encoded, except
    /// `instance`, which is a base URL and goes in as it is, without a trailing slash).
    /// An unknown placeholder is left as it is.
    pub fn fill(&self, values: &[(&str, &str)]) -> String {
        let mut out = self.0.clone();
        for (name, value) in values {
            let value = if *name == "instance" {
                value.trim_end_matches('/').to_string()
            } else {
                url::form_urlencoded::byte_serialize(value.as_bytes())
                    .collect::<String>()
                    .replace('+', "%20")
            };
            out = out.replace(&format!("{{{name}}}"), &value);
        }
        out
    }
}

fn url(s: &str) -> Url {
    // Only called with the literal production URLs below, all of which parse.
    Url::parse(s).unwrap_or_else(|e| panic!("built-in URL {s:?} is invalid: {e}"))
}

/// Mapillary's page of one image (and its sequence), PROTOCOLS §6.
pub const MAPILLARY_IMAGE_PAGE: &str = "https://www.mapillary.com/app/?pKey={image_id}";

/// KartaView's page of a sequence (PROTOCOLS §0: `openstreetcam.org/details/{id}`, which
/// now redirects to kartaview.org).
pub const KARTAVIEW_SEQUENCE_PAGE: &str = "https://kartaview.org/details/{sequence_id}";

/// A Panoramax instance's viewer showing one picture of a sequence (the web viewer's
/// documented `pic` permalink parameter; `focus=pic` shows the photo, not the map).
pub const PANORAMAX_PICTURE_PAGE: &str = "{instance}/?focus=pic&pic={picture_id}";

/// Map the Paths Web's page of a sequence (PROTOCOLS §5), where it is edited, published and
/// deleted: mtp-web routes it as `/sequence/<unique_id>/detail` (`sequence/urls.py`); a bare
/// `/sequence/<unique_id>` is a 404 there.
pub const MTPW_SEQUENCE_PAGE: &str = "/sequence/{unique_id}/detail";

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
    /// An image's page; `{image_id}`.
    pub image_page: PageTemplate,
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
            image_page: PageTemplate::new(MAPILLARY_IMAGE_PAGE),
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
    /// A sequence's page; `{sequence_id}`.
    pub sequence_page: PageTemplate,
}

/// OAuth's out-of-band redirect: the authorization server shows the code on a page and the
/// user pastes it into the app (KartaView's upload-scripts sign in this way).
pub const OOB_REDIRECT_URI: &str = "urn:ietf:wg:oauth:2.0:oob";

/// The OpenStreetMap OAuth2 app of KartaView's own upload-scripts, which publish its id and
/// secret for the community's use (`osm_access.py`). KartaView's `client_auth` is known to
/// accept its tokens (PROTOCOLS §3.1); the app is registered with the out-of-band redirect
/// only.
pub const KARTAVIEW_APP_OSM_CLIENT_ID: &str = "xCDlXoN-gVeXsXMHu8N5VArN4iWBDwuMgZAlf5PlC7c";
/// Its secret, public like the id (a desktop app keeps no secret): sent to OpenStreetMap
/// with the code and to KartaView as `secret_token`.
pub const KARTAVIEW_APP_OSM_CLIENT_SECRET: &str = "UICSTaxQkQsSl-osmcbqd5CXJIak5fvw9BF_F152BeE";

impl KartaViewConfig {
    /// The same KartaView and OpenStreetMap, signing in through another OSM app with the
    /// out-of-band redirect (the user pastes the code OpenStreetMap shows).
    pub fn with_oob_app(&self, osm_client_id: impl Into<String>, secret: Secret<String>) -> Self {
        KartaViewConfig {
            osm_client_id: osm_client_id.into(),
            osm_client_secret: secret,
            redirect_uri: OOB_REDIRECT_URI.to_string(),
            ..self.clone()
        }
    }

    /// Signs in with a code the user pastes, not through a redirect back to the app.
    pub fn pastes_code(&self) -> bool {
        self.redirect_uri == OOB_REDIRECT_URI
    }

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
            sequence_page: PageTemplate::new(KARTAVIEW_SEQUENCE_PAGE),
        }
    }
}

/// Panoramax is federated: there is no single production default (PROTOCOLS §0), so the
/// user picks an instance; [`PanoramaxConfig::KNOWN_INSTANCES`] lists well-known ones.
#[derive(Debug, Clone, PartialEq)]
pub struct PanoramaxConfig {
    pub instance_url: Url,
    /// A picture's page on its instance; `{instance}` (the account's instance) and
    /// `{picture_id}`, optionally `{collection_id}`.
    pub picture_page: PageTemplate,
}

impl PanoramaxConfig {
    /// Instances that accept uploads (`api.panoramax.xyz` is a read-only meta-catalogue).
    pub const KNOWN_INSTANCES: [&'static str; 2] = [
        "https://panoramax.openstreetmap.fr",
        "https://panoramax.ign.fr",
    ];

    pub fn new(instance_url: Url) -> Self {
        PanoramaxConfig {
            instance_url,
            picture_page: PageTemplate::new(PANORAMAX_PICTURE_PAGE),
        }
    }
}

/// Map the Paths Web (PROTOCOLS §5).
#[derive(Debug, Clone, PartialEq)]
pub struct MtpwConfig {
    pub base_url: Url,
    pub client_id: String,
    pub redirect_uri: String,
    /// A sequence's page; `{unique_id}`.
    pub sequence_page: PageTemplate,
}

impl MtpwConfig {
    pub fn production_defaults(client_id: impl Into<String>) -> Self {
        let base_url = url("https://www.mapthepaths.com");
        MtpwConfig {
            sequence_page: Self::page_under(&base_url),
            base_url,
            client_id: client_id.into(),
            redirect_uri: DEEP_LINK_REDIRECT_URI.to_string(),
        }
    }

    /// A sequence's page (`{unique_id}` filled in).
    pub fn sequence_page_url(&self, unique_id: &str) -> String {
        self.sequence_page.fill(&[("unique_id", unique_id)])
    }

    /// The sequence page template of an MTPW served at `base_url`.
    pub fn page_under(base_url: &Url) -> PageTemplate {
        PageTemplate::new(format!(
            "{}{MTPW_SEQUENCE_PAGE}",
            base_url.as_str().trim_end_matches('/')
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_and_encode() {
        let k = KartaViewConfig::production_defaults("id", Secret::from("s"));
        assert_eq!(
            k.sequence_page.fill(&[("sequence_id", "4321")]),
            "https://kartaview.org/details/4321"
        );
        let p = PanoramaxConfig::new(url("https://panoramax.openstreetmap.fr"));
        assert_eq!(
            p.picture_page.fill(&[
                ("instance", "https://panoramax.ign.fr/"),
                ("picture_id", "a b")
            ]),
            "https://panoramax.ign.fr/?focus=pic&pic=a%20b"
        );
        let m = MtpwConfig::production_defaults("c");
        assert_eq!(
            m.sequence_page.fill(&[("unique_id", "5f0c")]),
            "https://www.mapthepaths.com/sequence/5f0c/detail"
        );
        assert_eq!(
            m.sequence_page_url("5f0c"),
            "https://www.mapthepaths.com/sequence/5f0c/detail"
        );
        let mly = MapillaryConfig::production_defaults("1", Secret::from("s"));
        assert_eq!(
            mly.image_page.fill(&[("image_id", "123")]),
            "https://www.mapillary.com/app/?pKey=123"
        );
    }
}
