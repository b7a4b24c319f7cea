//! Where each service is and with which app credentials: the real services from the
//! settings, or the built-in emulators in sandbox mode.

use crate::Settings;
use mtp_core::Destination;
use mtp_core::secret::Secret;
use mtp_providers::config::{
    KARTAVIEW_APP_OSM_CLIENT_ID, KARTAVIEW_APP_OSM_CLIENT_SECRET, OOB_REDIRECT_URI,
    PANORAMAX_PICTURE_PAGE, PageTemplate,
};
use mtp_providers::{KartaViewConfig, MapillaryConfig, MtpwConfig, PanoramaxConfig};
use url::Url;

/// The configured endpoints. `None` for a service that cannot be used (missing settings).
#[derive(Debug, Clone)]
pub struct Services {
    pub http: reqwest::Client,
    pub mapillary: Option<MapillaryConfig>,
    /// KartaView as Integrate signs in: through the OpenStreetMap app in the settings
    /// (`KARTAVIEW_OSM_CLIENT_ID`), else through KartaView's own app with a pasted code.
    pub kartaview: Option<KartaViewConfig>,
    /// KartaView through KartaView's own OpenStreetMap app (a pasted code), offered when
    /// KartaView refuses the app in the settings; `None` when Integrate already uses it.
    pub kartaview_app: Option<KartaViewConfig>,
    pub panoramax: Option<PanoramaxConfig>,
    pub mtpw: Option<MtpwConfig>,
    /// A Panoramax token from the settings, used when the user has not connected one.
    pub panoramax_token: Option<Secret<String>>,
    /// A Panoramax picture's page (`{instance}`, `{picture_id}`): the instance is the
    /// account's, so this is kept even when no instance is configured.
    pub panoramax_picture_page: PageTemplate,
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
                if let Some(t) = &settings.mapillary_image_page_url {
                    c.image_page = PageTemplate::new(t.clone());
                }
                Some(c)
            }
            _ => None,
        };
        // Without an OSM app of one's own, KartaView's (as its upload-scripts sign in).
        let kartaview = match (
            &settings.kartaview_osm_client_id,
            &settings.kartaview_osm_client_secret,
        ) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
            (None, _) => Some((
                KARTAVIEW_APP_OSM_CLIENT_ID.to_owned(),
                Secret::from(KARTAVIEW_APP_OSM_CLIENT_SECRET),
            )),
            (Some(_), None) => None,
        }
        .map(|(id, secret)| {
            let mut c = KartaViewConfig::production_defaults(id, secret);
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
            if let Some(t) = &settings.kartaview_sequence_page_url {
                c.sequence_page = PageTemplate::new(t.clone());
            }
            // KartaView's app is registered with the out-of-band redirect only.
            if c.osm_client_id == KARTAVIEW_APP_OSM_CLIENT_ID {
                c.redirect_uri = OOB_REDIRECT_URI.to_owned();
            }
            c
        });
        let kartaview_app = kartaview.as_ref().filter(|c| !c.pastes_code()).map(|c| {
            c.with_oob_app(
                KARTAVIEW_APP_OSM_CLIENT_ID,
                Secret::from(KARTAVIEW_APP_OSM_CLIENT_SECRET),
            )
        });
        let panoramax_picture_page = PageTemplate::new(
            settings
                .panoramax_picture_page_url
                .clone()
                .unwrap_or_else(|| PANORAMAX_PICTURE_PAGE.to_string()),
        );
        let panoramax = parse(&settings.panoramax_instance_url).map(|u| {
            let mut c = PanoramaxConfig::new(u);
            c.picture_page = panoramax_picture_page.clone();
            c
        });
        let mtpw = settings.mtpw_client_id.as_ref().map(|id| {
            let mut c = MtpwConfig::production_defaults(id.clone());
            if let Some(u) = parse(&settings.mtpw_url) {
                c.sequence_page = MtpwConfig::page_under(&u);
                c.base_url = u;
            }
            if let Some(t) = &settings.mtpw_sequence_page_url {
                c.sequence_page = PageTemplate::new(t.clone());
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
            kartaview_app,
            panoramax,
            mtpw,
            panoramax_token: settings.panoramax_token.clone(),
            panoramax_picture_page,
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
        // The emulators serve a page at each of these (the photo itself for Mapillary).
        mapillary.image_page = PageTemplate::new(format!(
            "{}/sandbox/images/{{image_id}}/original",
            urls.mapillary_graph.as_str().trim_end_matches('/')
        ));
        let mut kartaview = KartaViewConfig::production_defaults(
            mtp_sandbox::OSM_CLIENT_ID,
            Secret::from(mtp_sandbox::OSM_CLIENT_SECRET),
        );
        kartaview.api_url = urls.kartaview_api.clone();
        kartaview.osm_authorize_url = urls.osm_authorize.clone();
        kartaview.osm_token_url = urls.osm_token.clone();
        kartaview.sequence_page = PageTemplate::new(format!(
            "{}/details/{{sequence_id}}",
            urls.kartaview_api.as_str().trim_end_matches('/')
        ));
        let mut mtpw = MtpwConfig::production_defaults(mtp_sandbox::MTPW_CLIENT_ID);
        mtpw.base_url = urls.mtpw_base.clone();
        mtpw.sequence_page = MtpwConfig::page_under(&urls.mtpw_base);
        let panoramax = PanoramaxConfig::new(urls.panoramax_instance.clone());
        let kartaview_app = kartaview.with_oob_app(
            mtp_sandbox::KARTAVIEW_OSM_CLIENT_ID,
            Secret::from(mtp_sandbox::KARTAVIEW_OSM_CLIENT_SECRET),
        );
        Services {
            http,
            mapillary: Some(mapillary),
            kartaview: Some(kartaview),
            kartaview_app: Some(kartaview_app),
            panoramax_picture_page: panoramax.picture_page.clone(),
            panoramax: Some(panoramax),
            mtpw: Some(mtpw),
            panoramax_token: None,
            sandbox: true,
        }
    }

    /// The "View on Mapillary" page of an image.
    pub fn mapillary_page(&self, image_id: &str) -> Option<String> {
        self.mapillary
            .as_ref()
            .map(|c| c.image_page.fill(&[("image_id", image_id)]))
    }

    /// The "View on KartaView" page of a sequence.
    pub fn kartaview_page(&self, sequence_id: &str) -> Option<String> {
        self.kartaview
            .as_ref()
            .map(|c| c.sequence_page.fill(&[("sequence_id", sequence_id)]))
    }

    /// The "View on Panoramax" page: the instance's viewer on a picture of the sequence.
    pub fn panoramax_page(&self, instance: &str, picture_id: &str, collection_id: &str) -> String {
        self.panoramax_picture_page.fill(&[
            ("instance", instance),
            ("picture_id", picture_id),
            ("collection_id", collection_id),
        ])
    }

    /// The "View on Map the Paths Web" page of a sequence.
    pub fn mtpw_page(&self, unique_id: &str) -> Option<String> {
        self.mtpw
            .as_ref()
            .map(|c| c.sequence_page.fill(&[("unique_id", unique_id)]))
    }

    /// The web sites a link may open in the browser: each configured service's pages and
    /// API hosts, the Panoramax instances in `instances` (the accounts'), the built-in
    /// emulators in sandbox mode, and the map's credits (OpenStreetMap, Leaflet).
    pub fn link_sites(&self, instances: &[String]) -> Vec<Url> {
        let mut sites: Vec<Url> = [
            "https://www.openstreetmap.org",
            "https://openstreetmap.org",
            "https://leafletjs.com",
            // Where the setup guide sends people to register apps and get tokens.
            "https://www.mapillary.com",
            "https://kartaview.org",
            "https://www.mapthepaths.com",
        ]
        .iter()
        .filter_map(|u| Url::parse(u).ok())
        .collect();
        let page = |t: &PageTemplate| Url::parse(&t.fill(&[])).ok();
        if let Some(c) = &self.mapillary {
            sites.extend([c.authorize_url.clone(), c.graph_url.clone()]);
            sites.extend(page(&c.image_page));
        }
        if let Some(c) = &self.kartaview {
            sites.extend([c.api_url.clone(), c.osm_authorize_url.clone()]);
            sites.extend(page(&c.sequence_page));
        }
        let mut instances: Vec<String> = instances.to_vec();
        if let Some(c) = &self.panoramax {
            instances.push(c.instance_url.to_string());
        }
        for instance in &instances {
            sites.extend(Url::parse(instance).ok());
            sites.extend(
                Url::parse(&self.panoramax_picture_page.fill(&[("instance", instance)])).ok(),
            );
        }
        if let Some(c) = &self.mtpw {
            sites.push(c.base_url.clone());
            sites.extend(page(&c.sequence_page));
        }
        sites
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn live(pairs: &[(&str, &str)]) -> Services {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let settings = Settings::from_lookup(|k| map.get(k).cloned());
        Services::live(&settings, reqwest::Client::new())
    }

    const ALL: [(&str, &str); 6] = [
        ("MAPILLARY_APP_ID", "1"),
        ("MAPILLARY_SECRET", "MLY|1|x"),
        ("KARTAVIEW_OSM_CLIENT_ID", "osm"),
        ("KARTAVIEW_OSM_CLIENT_SECRET", "s"),
        (
            "PANORAMAX_INSTANCE_URL",
            "https://panoramax.openstreetmap.fr",
        ),
        ("MTPW_CLIENT_ID", "c"),
    ];

    #[test]
    fn live_links_are_the_services_pages() {
        let s = live(&ALL);
        assert_eq!(
            s.mapillary_page("123").as_deref(),
            Some("https://www.mapillary.com/app/?pKey=123")
        );
        assert_eq!(
            s.kartaview_page("4321").as_deref(),
            Some("https://kartaview.org/details/4321")
        );
        assert_eq!(
            s.panoramax_page("https://panoramax.ign.fr/", "p1", "c1"),
            "https://panoramax.ign.fr/?focus=pic&pic=p1"
        );
        assert_eq!(
            s.mtpw_page("5f0c").as_deref(),
            Some("https://www.mapthepaths.com/sequence/5f0c/detail")
        );
    }

    #[test]
    fn kartaview_signs_in_through_its_own_app_unless_the_settings_name_another() {
        // Nothing set: KartaView's own OSM app, with a code to paste; nothing missing.
        let s = live(&[]);
        let kv = s.kartaview.as_ref().unwrap();
        assert_eq!(kv.osm_client_id, KARTAVIEW_APP_OSM_CLIENT_ID);
        assert_eq!(
            kv.osm_client_secret.expose(),
            KARTAVIEW_APP_OSM_CLIENT_SECRET
        );
        assert!(kv.pastes_code());
        assert!(s.kartaview_app.is_none(), "Integrate already uses it");
        let settings = Settings::from_lookup(|_| None);
        assert!(settings.missing(Destination::Kartaview).is_empty());
        assert_eq!(
            settings.mode().mode,
            crate::Mode::Sandbox,
            "KartaView's app alone does not leave sandbox mode"
        );
        // A redirect in the settings is for one's own app: KartaView's knows only its own.
        let s = live(&[("KARTAVIEW_REDIRECT_URI", "http://127.0.0.1:8765/cb")]);
        assert!(s.kartaview.as_ref().unwrap().pastes_code());

        // One's own app: Integrate uses it (deep link), KartaView's is the way out.
        let s = live(&ALL);
        let kv = s.kartaview.as_ref().unwrap();
        assert_eq!(kv.osm_client_id, "osm");
        assert_eq!(kv.redirect_uri, "app.mtp.desktop://app");
        let app = s.kartaview_app.as_ref().unwrap();
        assert_eq!(app.osm_client_id, KARTAVIEW_APP_OSM_CLIENT_ID);
        assert!(app.pastes_code());
        assert_eq!(app.api_url, kv.api_url);

        // An id without its secret is a mistake the card names.
        let map = |k: &str| (k == "KARTAVIEW_OSM_CLIENT_ID").then(|| "osm".to_owned());
        assert!(
            live(&[("KARTAVIEW_OSM_CLIENT_ID", "osm")])
                .kartaview
                .is_none()
        );
        assert_eq!(
            Settings::from_lookup(map).missing(Destination::Kartaview),
            vec!["KARTAVIEW_OSM_CLIENT_SECRET"]
        );
    }

    #[test]
    fn live_links_follow_the_settings() {
        let mut pairs = ALL.to_vec();
        pairs.extend([
            ("MTPW_URL", "https://mtp.example.org/"),
            (
                "KARTAVIEW_SEQUENCE_PAGE_URL",
                "https://openstreetcam.org/details/{sequence_id}",
            ),
            (
                "PANORAMAX_PICTURE_PAGE_URL",
                "{instance}/sequence/{collection_id}",
            ),
        ]);
        let s = live(&pairs);
        assert_eq!(
            s.mtpw_page("u").as_deref(),
            Some("https://mtp.example.org/sequence/u/detail"),
            "the page follows MTPW_URL"
        );
        assert_eq!(
            s.kartaview_page("9").as_deref(),
            Some("https://openstreetcam.org/details/9")
        );
        assert_eq!(
            s.panoramax_page("https://x.org", "p", "c"),
            "https://x.org/sequence/c"
        );
        // Without a Panoramax instance configured, the account's instance is linked.
        let s = live(&ALL[..4]);
        assert_eq!(
            s.panoramax_page("https://panoramax.ign.fr", "p", "c"),
            "https://panoramax.ign.fr/?focus=pic&pic=p"
        );
    }
}
