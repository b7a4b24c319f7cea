//! Where each service is and with which app credentials: the real services from the
//! settings, or the built-in emulators in sandbox mode.

use crate::Settings;
use mtp_core::Destination;
use mtp_core::secret::Secret;
use mtp_providers::{KartaViewConfig, MapillaryConfig, MtpwConfig, PanoramaxConfig};
use url::Url;

/// The configured endpoints. `None` for a service that cannot be used (missing settings).
#[derive(Debug, Clone)]
pub struct Services {
    pub http: reqwest::Client,
    pub mapillary: Option<MapillaryConfig>,
    pub kartaview: Option<KartaViewConfig>,
    pub panoramax: Option<PanoramaxConfig>,
    pub mtpw: Option<MtpwConfig>,
    /// A Panoramax token from the settings, used when the user has not connected one.
    pub panoramax_token: Option<Secret<String>>,
    /// Pointing at the built-in emulators.
    pub sandbox: bool,
}

fn parse(url: &Option<String>) -> Option<Url> {
    url.as_deref()
        .and_then(|u| Url::parse(u.trim_end_matches('/')).ok())
}

impl Services {
    pub fn live(settings: &Settings, http: reqwest::Client) -> Services {
        let mapillary = match (&settings.mapillary_app_id, &settings.mapillary_secret) {
            (Some(id), Some(secret)) => {
                let mut c = MapillaryConfig::production_defaults(id.clone(), secret.clone());
                if let Some(u) = &settings.mapillary_redirect_uri {
                    c.redirect_uri = u.clone();
                }
                if let Some(s) = &settings.mapillary_scope {
                    c.scope = s.clone();
                }
                c.web_client_token = settings.mapillary_web_client_token.clone();
                if let Some(u) = parse(&settings.mapillary_authorize_url) {
                    c.authorize_url = u;
                }
                if let Some(u) = parse(&settings.mapillary_graph_url) {
                    c.graph_url = u;
                }
                if let Some(u) = parse(&settings.mapillary_upload_url) {
                    c.upload_url = u;
                }
                Some(c)
            }
            _ => None,
        };
        let kartaview = match (
            &settings.kartaview_osm_client_id,
            &settings.kartaview_osm_client_secret,
        ) {
            (Some(id), Some(secret)) => {
                let mut c = KartaViewConfig::production_defaults(id.clone(), secret.clone());
                if let Some(u) = parse(&settings.kartaview_api_url) {
                    c.api_url = u;
                }
                if let Some(u) = parse(&settings.osm_authorize_url) {
                    c.osm_authorize_url = u;
                }
                if let Some(u) = parse(&settings.osm_token_url) {
                    c.osm_token_url = u;
                }
                if let Some(u) = &settings.kartaview_redirect_uri {
                    c.redirect_uri = u.clone();
                }
                Some(c)
            }
            _ => None,
        };
        let panoramax = parse(&settings.panoramax_instance_url).map(PanoramaxConfig::new);
        let mtpw = settings.mtpw_client_id.as_ref().map(|id| {
            let mut c = MtpwConfig::production_defaults(id.clone());
            if let Some(u) = parse(&settings.mtpw_url) {
                c.base_url = u;
            }
            if let Some(u) = &settings.mtpw_redirect_uri {
                c.redirect_uri = u.clone();
            }
            c
        });
        Services {
            http,
            mapillary,
            kartaview,
            panoramax,
            mtpw,
            panoramax_token: settings.panoramax_token.clone(),
            sandbox: false,
        }
    }

    /// Every service pointed at the emulators, with the sandbox's app credentials.
    pub fn sandbox(urls: &mtp_sandbox::SandboxUrls, http: reqwest::Client) -> Services {
        let mut mapillary = MapillaryConfig::production_defaults(
            mtp_sandbox::MAPILLARY_CLIENT_ID,
            Secret::from(mtp_sandbox::MAPILLARY_CLIENT_SECRET),
        );
        mapillary.authorize_url = urls.mapillary_authorize.clone();
        mapillary.graph_url = urls.mapillary_graph.clone();
        mapillary.upload_url = urls.mapillary_upload.clone();
        let mut kartaview = KartaViewConfig::production_defaults(
            mtp_sandbox::OSM_CLIENT_ID,
            Secret::from(mtp_sandbox::OSM_CLIENT_SECRET),
        );
        kartaview.api_url = urls.kartaview_api.clone();
        kartaview.osm_authorize_url = urls.osm_authorize.clone();
        kartaview.osm_token_url = urls.osm_token.clone();
        let mut mtpw = MtpwConfig::production_defaults(mtp_sandbox::MTPW_CLIENT_ID);
        mtpw.base_url = urls.mtpw_base.clone();
        Services {
            http,
            mapillary: Some(mapillary),
            kartaview: Some(kartaview),
            panoramax: Some(PanoramaxConfig::new(urls.panoramax_instance.clone())),
            mtpw: Some(mtpw),
            panoramax_token: None,
            sandbox: true,
        }
    }

    pub fn is_configured(&self, d: Destination) -> bool {
        match d {
            Destination::Mapillary => self.mapillary.is_some(),
            Destination::Kartaview => self.kartaview.is_some(),
            Destination::Panoramax => self.panoramax.is_some(),
            Destination::Mtpw => self.mtpw.is_some(),
        }
    }
}
