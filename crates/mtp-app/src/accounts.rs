//! Integrate / disconnect a service. OAuth attempts are stored with their `state`; the deep
//! link that comes back is accepted only if it matches one that has not expired. Tokens stay
//! on this side; the web view only ever sees "connected as NAME".

use crate::signin::{self, SignInPhase, SignInStatus};
use crate::{App, AppError, AppEvent, AppResult};
use mtp_core::Destination;
use mtp_core::deeplink::DeepLink;
use mtp_core::secret::Secret;
use mtp_core::store::{Account, OAuthAttempt};
use mtp_providers::config::OOB_REDIRECT_URI;
use mtp_providers::oauth::{MapillaryOAuth, MtpwOAuth, OsmOAuth};
use mtp_providers::{
    KartaViewConfig, MapillaryClient, PanoramaxClient, PendingAuthorization, ProviderError,
    TokenSet,
};
use serde::Serialize;

/// How long the user has to approve in the browser.
pub(crate) const ATTEMPT_TTL_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Clone, Serialize)]
pub struct StartedIntegration {
    pub service: Destination,
    /// The page the browser was asked to open (shown too, in case no browser opens).
    pub authorize_url: String,
    pub browser_opened: bool,
    pub browser_error: Option<String>,
    /// Where the browser comes back (deep link or loopback); `None` for Panoramax's claim.
    pub redirect_uri: Option<String>,
    /// The app listens on `redirect_uri` (a loopback redirect) until the sign-in ends.
    pub listening: bool,
}

pub(crate) fn provider_error(e: ProviderError) -> AppError {
    let code = match e.kind() {
        mtp_providers::ErrorKind::Auth => "auth",
        mtp_providers::ErrorKind::Retry { .. } => "network",
        _ => "service",
    };
    // Someone is acting now (signing in, connecting): no "will retry automatically".
    AppError::new(code, e.words_for_now())
}

impl App {
    pub(crate) fn not_configured(&self, d: Destination) -> AppError {
        AppError::new(
            "not_configured",
            format!(
                "{} cannot be integrated: set {} in {} and restart.",
                d.label(),
                self.settings().missing(d).join(", "),
                crate::config::settings_file_words()
            ),
        )
    }

    /// Starts the browser sign-in of `service`: stores a fresh `state` (and PKCE verifier),
    /// then opens the authorize page with the configured opener.
    pub async fn start_integration(&self, service: Destination) -> AppResult<StartedIntegration> {
        self.start_integration_with(service, true).await
    }

    /// As [`App::start_integration`]; `open_browser: false` only returns the address (the
    /// CLI's sandbox sign-in approves the emulator's page itself).
    ///
    /// With a loopback redirect URI, the app listens there now (the port must be free) and
    /// until the sign-in ends or is abandoned. Starting again ends the previous sign-in of
    /// this service. Panoramax starts its token claim ([`App::start_panoramax_claim`]).
    pub async fn start_integration_with(
        &self,
        service: Destination,
        open_browser: bool,
    ) -> AppResult<StartedIntegration> {
        if service == Destination::Panoramax {
            return self.start_panoramax_claim(None, open_browser).await;
        }
        let s = self.services();
        if let Some(cfg) = s.kartaview.as_ref().filter(|c| c.pastes_code())
            && service == Destination::Kartaview
        {
            return self.start_code_sign_in(cfg.clone(), open_browser).await;
        }
        let redirect_uri = self
            .redirect_uri(service)
            .await?
            .ok_or_else(|| self.not_configured(service))?;
        let loopback = signin::loopback_uri(&redirect_uri).map_err(AppError::invalid)?;
        // A new sign-in ends the last one (and frees its port) before binding.
        self.sign_ins().stop(service).await;
        let listener = match &loopback {
            Some(lb) => match signin::bind(service, lb).await {
                Ok(l) => Some(l),
                Err(e) => {
                    let mut status = SignInStatus::failed(e.message.clone());
                    status.redirect_uri = Some(redirect_uri.clone());
                    self.sign_ins().set(service, None, status);
                    self.emit(AppEvent::AccountsChanged);
                    return Err(e);
                }
            },
            None => None,
        };
        let pending = match service {
            Destination::Mapillary => {
                let mut cfg = s
                    .mapillary
                    .clone()
                    .ok_or_else(|| self.not_configured(service))?;
                cfg.redirect_uri = redirect_uri.clone();
                MapillaryOAuth::new(s.http.clone(), cfg).authorize()
            }
            Destination::Kartaview => {
                let mut cfg = s
                    .kartaview
                    .clone()
                    .ok_or_else(|| self.not_configured(service))?;
                cfg.redirect_uri = redirect_uri.clone();
                OsmOAuth::new(s.http.clone(), cfg).authorize()
            }
            Destination::Mtpw => {
                let mut cfg = s.mtpw.clone().ok_or_else(|| self.not_configured(service))?;
                cfg.redirect_uri = redirect_uri.clone();
                MtpwOAuth::new(cfg).authorize()
            }
            Destination::Panoramax => unreachable!("handled above"),
        }
        .map_err(provider_error)?;
        let now = self.now_ms();
        self.store()
            .save_oauth_attempt(&OAuthAttempt {
                state: pending.state.clone(),
                service,
                pkce_verifier: pending.pkce_verifier.clone(),
                created_at: now,
                expires_at: now + ATTEMPT_TTL_MS,
                redirect_uri: Some(redirect_uri.clone()),
            })
            .await?;
        let url = pending.authorize_url.to_string();
        let generation = self.sign_ins().begin(
            service,
            SignInStatus {
                listening: listener.is_some(),
                ..SignInStatus::waiting(url.clone(), Some(redirect_uri.clone()))
            },
        );
        if let (Some(listener), Some(lb)) = (listener, loopback) {
            let task = tokio::spawn(signin::serve_loopback(
                self.downgrade(),
                listener,
                lb,
                service,
                pending.state.clone(),
                generation,
                self.sign_ins().timeouts().loopback,
            ));
            self.sign_ins().attach(service, generation, task);
        }
        Ok(self.opened(service, generation, url, Some(redirect_uri), open_browser))
    }

    /// Opens `url` (unless told not to) and records on the card whether a browser opened.
    pub(crate) fn opened(
        &self,
        service: Destination,
        generation: u64,
        url: String,
        redirect_uri: Option<String>,
        open_browser: bool,
    ) -> StartedIntegration {
        let (browser_opened, browser_error) = if !open_browser {
            (false, None)
        } else {
            match self.open_browser(&url) {
                Ok(()) => (true, None),
                Err(e) => (false, Some(e)),
            }
        };
        let mut status = self.sign_ins().status(service);
        if let Some(status) = status.as_mut().filter(|s| s.phase == SignInPhase::Waiting) {
            status.browser_opened = browser_opened;
            status.browser_error = browser_error.clone();
            self.sign_ins()
                .set(service, Some(generation), status.clone());
        }
        self.emit(AppEvent::AccountsChanged);
        StartedIntegration {
            service,
            authorize_url: url,
            browser_opened,
            browser_error,
            listening: status.is_some_and(|s| s.listening),
            redirect_uri,
        }
    }

    /// Where `service`'s browser sign-in comes back: the address chosen on its card, else
    /// the configured one (`…_REDIRECT_URI`, default the deep link). `None` when the
    /// service is not configured (or is Panoramax, which has no redirect).
    pub async fn redirect_uri(&self, service: Destination) -> AppResult<Option<String>> {
        let s = self.services();
        let configured = match service {
            Destination::Mapillary => s.mapillary.as_ref().map(|c| c.redirect_uri.clone()),
            Destination::Kartaview => s.kartaview.as_ref().map(|c| c.redirect_uri.clone()),
            Destination::Mtpw => s.mtpw.as_ref().map(|c| c.redirect_uri.clone()),
            Destination::Panoramax => return Ok(None),
        };
        let Some(configured) = configured else {
            return Ok(None);
        };
        if configured == OOB_REDIRECT_URI {
            // KartaView's own OSM app knows no other redirect: nothing to choose.
            return Ok(Some(configured));
        }
        Ok(Some(
            self.store()
                .redirect_uri_setting(service)
                .await?
                .unwrap_or(configured),
        ))
    }

    /// Chooses where `service`'s sign-in comes back: a loopback address
    /// `http://127.0.0.1:<port>/<path>` (which must be registered with the service's app),
    /// or `None` for the configured default (the deep link).
    pub async fn set_redirect_uri(
        &self,
        service: Destination,
        redirect_uri: Option<String>,
    ) -> AppResult<Option<String>> {
        if service == Destination::Panoramax {
            return Err(AppError::invalid(
                "Panoramax signs in by claiming a token, without a redirect.",
            ));
        }
        if self
            .services()
            .kartaview
            .as_ref()
            .is_some_and(|c| c.pastes_code())
            && service == Destination::Kartaview
        {
            return Err(AppError::invalid(
                "KartaView signs in through KartaView's own OpenStreetMap app here: you paste the code OpenStreetMap shows, so there is no address to choose. To sign in through your own OpenStreetMap app, set KARTAVIEW_OSM_CLIENT_ID and KARTAVIEW_OSM_CLIENT_SECRET.",
            ));
        }
        let chosen = redirect_uri
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        if let Some(uri) = &chosen
            && uri != crate::config::DEEP_LINK_REDIRECT
            && signin::loopback_uri(uri)
                .map_err(AppError::invalid)?
                .is_none()
        {
            return Err(AppError::invalid(format!(
                "{uri:?} cannot bring the sign-in back: use {} or http://127.0.0.1:<port>/<path>.",
                crate::config::DEEP_LINK_REDIRECT
            )));
        }
        let normalized = match &chosen {
            Some(uri) => signin::loopback_uri(uri)
                .map_err(AppError::invalid)?
                .map(|lb| lb.uri)
                .or(Some(uri.clone())),
            None => None,
        };
        self.store()
            .set_redirect_uri_setting(service, normalized.as_deref(), self.now_ms())
            .await?;
        // A sign-in waiting on the old address cannot come back anymore.
        self.sign_ins().stop(service).await;
        self.emit(AppEvent::AccountsChanged);
        self.redirect_uri(service).await
    }

    /// Sets how the shell opens web pages (once; the desktop app uses its opener plugin).
    pub fn set_opener(&self, opener: crate::Opener) {
        if self.inner.opener.set(opener).is_err() {
            tracing::warn!("the opener was set already");
        }
    }

    /// Opens a link in the browser: only web links (http, https) to the sites of the
    /// services this app talks to (see [`crate::services::Services::link_sites`]).
    pub async fn open_external(&self, url: &str) -> AppResult<()> {
        let parsed = url::Url::parse(url)
            .map_err(|e| AppError::invalid(format!("{url:?} is not a link: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(AppError::invalid(format!(
                "Refusing to open {url:?}: only web links are opened."
            )));
        }
        let instances: Vec<String> = self
            .store()
            .accounts()
            .await?
            .into_iter()
            .filter_map(|a| a.instance_url)
            .collect();
        let sites = self.services().link_sites(&instances);
        let same_site = |site: &url::Url| {
            site.host_str().is_some()
                && site.host_str() == parsed.host_str()
                && site.port_or_known_default() == parsed.port_or_known_default()
        };
        if !sites.iter().any(same_site) {
            return Err(AppError::invalid(format!(
                "Refusing to open {url:?}: {} is not one of the services this app works with.",
                parsed.host_str().unwrap_or("that address")
            )));
        }
        self.open_browser(parsed.as_str())
            .map_err(|e| AppError::new("opener", e))
    }

    /// Opens `url` in the system browser: with `MTP_OPENER <url>` when that is set (tests
    /// set it to a program that records the address), else with the shell's opener (see
    /// [`App::set_opener`]), else the platform's own way (`xdg-open`/`gio` on Linux, `open`
    /// on macOS, the shell on Windows).
    fn open_browser(&self, url: &str) -> Result<(), String> {
        let Some(opener) = self.settings().opener.clone() else {
            if let Some(shell) = self.inner.opener.get() {
                return shell(url).map_err(|e| {
                    format!("could not open the browser ({e}). Open the address yourself.")
                });
            }
            return open::that_detached(url).map_err(|e| {
                format!("could not open the browser ({e}). Open the address yourself.")
            });
        };
        let mut parts = opener.split_whitespace();
        let program = parts.next().ok_or("MTP_OPENER is empty")?;
        std::process::Command::new(program)
            .args(parts)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map(|_| ())
            .map_err(|e| format!("could not run {program}: {e}. Open the address yourself."))
    }

    /// Finishes a sign-in whose deep link matched a pending attempt.
    pub(crate) async fn complete_integration(
        &self,
        attempt: OAuthAttempt,
        link: &DeepLink,
        raw_url: &str,
    ) -> AppResult<String> {
        let service = attempt.service;
        let s = self.services();
        let now = self.now_ms();
        let pending = |authorize_url: url::Url| PendingAuthorization {
            service,
            state: attempt.state.clone(),
            pkce_verifier: attempt.pkce_verifier.clone(),
            authorize_url,
        };
        if let DeepLink::AuthorizationError {
            error, description, ..
        } = link
        {
            return Err(AppError::new(
                "refused",
                format!(
                    "{} sign-in was refused ({error}{}). Click Integrate to try again.",
                    service.label(),
                    description
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            ));
        }
        let account = match (service, link) {
            (Destination::Mapillary, DeepLink::AuthorizationCode { code, .. }) => {
                let mut cfg = s
                    .mapillary
                    .clone()
                    .ok_or_else(|| self.not_configured(service))?;
                if let Some(uri) = &attempt.redirect_uri {
                    cfg.redirect_uri = uri.clone();
                }
                let oauth =
                    MapillaryOAuth::new(s.http.clone(), cfg.clone()).with_clock(self.clock());
                let tokens = oauth
                    .exchange_code(&pending(cfg.authorize_url.clone()), code)
                    .await
                    .map_err(provider_error)?;
                let me = MapillaryClient::new(s.http.clone(), &cfg, tokens.access_token.clone())
                    .me()
                    .await
                    .map_err(provider_error)?;
                account(service, Some(me.id), me.username, tokens, None)
            }
            (Destination::Kartaview, DeepLink::AuthorizationCode { code, .. }) => {
                let mut cfg = s
                    .kartaview
                    .clone()
                    .ok_or_else(|| self.not_configured(service))?;
                if let Some(uri) = &attempt.redirect_uri {
                    cfg.redirect_uri = uri.clone();
                }
                let oauth = OsmOAuth::new(s.http.clone(), cfg.clone()).with_clock(self.clock());
                let osm = oauth
                    .exchange_code(&pending(cfg.osm_authorize_url.clone()), code)
                    .await
                    .map_err(provider_error)?;
                return self.kartaview_sign_in(&cfg, &osm.access_token, now).await;
            }
            (Destination::Mtpw, DeepLink::ImplicitToken { .. }) => {
                let cfg = s.mtpw.clone().ok_or_else(|| self.not_configured(service))?;
                let url = url::Url::parse(raw_url).map_err(|e| AppError::invalid(e.to_string()))?;
                let tokens = MtpwOAuth::new(cfg.clone())
                    .token_from_redirect(&pending(cfg.base_url.clone()), &url, now)
                    .map_err(provider_error)?;
                account(
                    service,
                    None,
                    Some("Map the Paths account".into()),
                    tokens,
                    None,
                )
            }
            _ => {
                return Err(AppError::invalid(format!(
                    "The link that came back does not fit a {} sign-in. Click Integrate to try again.",
                    service.label()
                )));
            }
        };
        let name = account.username.clone().unwrap_or_default();
        self.save_sign_in(&account, now).await?;
        self.emit(AppEvent::AccountsChanged);
        self.wake_engine();
        Ok(name)
    }

    /// Keeps the OpenStreetMap token (never shown), so that KartaView's `client_auth` can be
    /// retried without the browser, then asks KartaView for an account with it.
    pub(crate) async fn kartaview_sign_in(
        &self,
        cfg: &KartaViewConfig,
        osm_token: &Secret<String>,
        now: i64,
    ) -> AppResult<String> {
        self.store()
            .set_kartaview_osm_token(Some((osm_token, &cfg.osm_client_id)), now)
            .await?;
        self.kartaview_client_auth(cfg, osm_token).await
    }

    /// Turns an OpenStreetMap token into a KartaView account (`client_auth`, with the
    /// secret of the OSM app that issued the token). A refusal keeps KartaView's own words
    /// and the code `kartaview_refused`: the card then offers to retry, to paste a
    /// KartaView token, and (if the refused app was not KartaView's) KartaView's own app.
    async fn kartaview_client_auth(
        &self,
        cfg: &KartaViewConfig,
        osm_token: &Secret<String>,
    ) -> AppResult<String> {
        let service = Destination::Kartaview;
        let s = self.services();
        let kv = mtp_providers::kartaview::client_auth(
            &s.http,
            &cfg.api_url,
            osm_token,
            &cfg.osm_client_secret,
            self.clock().as_ref(),
        )
        .await
        .map_err(|e| {
            let mut said = format!("\u{201c}{}\u{201d}", e.message().trim());
            if let Some(body) = e.body_for_display() {
                said = format!("{said}: {body}");
            }
            let mut how = Vec::new();
            if let Some(status) = e.status() {
                how.push(format!("HTTP {status}"));
            }
            if let Some(code) = e.code() {
                how.push(code.to_string());
            }
            let how = if how.is_empty() {
                String::new()
            } else {
                format!(" ({})", how.join(", "))
            };
            let instead = if self.kartaview_app_offered(cfg) {
                "sign in through KartaView's own app, or paste a KartaView token instead"
            } else {
                "or paste a KartaView token instead"
            };
            // A server that failed (5xx, a gateway's page) did not refuse anything.
            let what = if e.kind().is_retryable() {
                "KartaView could not take the OpenStreetMap sign-in just now"
            } else {
                "KartaView did not accept the OpenStreetMap sign-in"
            };
            AppError::new(
                "kartaview_refused",
                format!(
                    "{what}. KartaView said: {said}{how}. \
                     Your OpenStreetMap sign-in is kept, so you can ask KartaView again, {instead}."
                ),
            )
        })?;
        let tokens = TokenSet {
            access_token: kv.access_token.clone(),
            refresh_token: None,
            expires_at_ms: None,
        };
        // The login name, not the full name: KartaView's calls (`my-list`) take it.
        let name = kv.username.clone();
        let account = account(service, Some(kv.id), Some(name.clone()), tokens, None);
        let now = self.now_ms();
        self.save_sign_in(&account, now).await?;
        self.sign_ins().end(service, None);
        self.emit(AppEvent::AccountsChanged);
        self.wake_engine();
        Ok(name)
    }

    /// After KartaView refused a sign-in through `cfg`'s OSM app: may the card offer
    /// KartaView's own app instead?
    fn kartaview_app_offered(&self, refused: &KartaViewConfig) -> bool {
        self.services()
            .kartaview_app
            .as_ref()
            .is_some_and(|app| app.osm_client_id != refused.osm_client_id)
    }

    /// The card after KartaView refused a sign-in through `refused`'s OSM app.
    pub(crate) fn kartaview_refused_status(
        &self,
        message: String,
        refused: Option<&KartaViewConfig>,
    ) -> SignInStatus {
        let mut status = SignInStatus::failed(message);
        status.offer_token = true;
        status.can_retry = true;
        status.offer_kartaview_app = refused.is_some_and(|c| self.kartaview_app_offered(c));
        status
    }

    /// The KartaView sign-in whose OSM app issued `osm_client_id` (`None`: the configured
    /// one, as kept before the app was recorded).
    pub(crate) fn kartaview_config_of(
        &self,
        osm_client_id: Option<&str>,
    ) -> Option<KartaViewConfig> {
        let s = self.services();
        [s.kartaview.as_ref(), s.kartaview_app.as_ref()]
            .into_iter()
            .flatten()
            .find(|c| osm_client_id.is_none_or(|id| c.osm_client_id == id))
            .cloned()
    }

    /// Asks KartaView again with the OpenStreetMap token kept from the last sign-in, without
    /// another browser round.
    pub async fn retry_kartaview(&self) -> AppResult<String> {
        let Some(osm) = self.store().kartaview_osm_token().await? else {
            return Err(AppError::invalid(
                "No OpenStreetMap sign-in is kept: click Integrate to sign in again.",
            ));
        };
        let app_id = self.store().kartaview_osm_client().await?;
        let Some(cfg) = self.kartaview_config_of(app_id.as_deref()) else {
            return Err(AppError::invalid(
                "The OpenStreetMap app of the kept sign-in is no longer in the settings: click Integrate to sign in again.",
            ));
        };
        match self.kartaview_client_auth(&cfg, &osm).await {
            Ok(name) => Ok(name),
            Err(e) => {
                let status = if e.code == "kartaview_refused" {
                    self.kartaview_refused_status(e.message.clone(), Some(&cfg))
                } else {
                    let mut status = SignInStatus::failed(e.message.clone());
                    status.can_retry = true;
                    status
                };
                self.sign_ins().set(Destination::Kartaview, None, status);
                self.emit(AppEvent::AccountsChanged);
                Err(e)
            }
        }
    }

    fn panoramax_config(
        &self,
        instance_url: Option<&str>,
    ) -> AppResult<mtp_providers::PanoramaxConfig> {
        let mut cfg = self.services().panoramax.clone();
        if let Some(u) = instance_url.map(str::trim).filter(|u| !u.is_empty()) {
            let url = url::Url::parse(u.trim_end_matches('/')).map_err(|e| {
                AppError::invalid(format!(
                    "{u:?} is not an address (e.g. https://panoramax.openstreetmap.fr): {e}"
                ))
            })?;
            cfg = Some(mtp_providers::PanoramaxConfig::new(url));
        }
        cfg.ok_or_else(|| AppError::invalid("Enter the address of your Panoramax instance."))
    }

    /// Panoramax's Integrate (what panoramax-cli's `login` does, PROTOCOLS §4.2): generates
    /// a token on the instance, opens its claim page in the browser, then polls
    /// `GET /api/users/me` with it until the user has claimed it (401/403 = not yet), and
    /// connects the account. Gives up, with a message on the card, after
    /// [`signin::SignInTimeouts::claim`].
    pub async fn start_panoramax_claim(
        &self,
        instance_url: Option<String>,
        open_browser: bool,
    ) -> AppResult<StartedIntegration> {
        let service = Destination::Panoramax;
        let cfg = self.panoramax_config(instance_url.as_deref())?;
        self.sign_ins().stop(service).await;
        let generated = match mtp_providers::panoramax_login::generate_token(
            &self.services().http,
            &cfg,
            "MTP Desktop",
        )
        .await
        {
            Ok(g) => g,
            Err(e) => {
                let e = AppError::new(
                    "service",
                    format!(
                        "{} could not give MTP Desktop a token to claim: {e}. Paste an API token from the instance instead.",
                        cfg.instance_url
                    ),
                );
                self.sign_ins()
                    .set(service, None, SignInStatus::failed(e.message.clone()));
                self.emit(AppEvent::AccountsChanged);
                return Err(e);
            }
        };
        let claim_url = generated.claim_url.to_string();
        let generation = self
            .sign_ins()
            .begin(service, SignInStatus::waiting(claim_url.clone(), None));
        let timeouts = self.sign_ins().timeouts();
        let weak = self.downgrade();
        let task = tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeouts.claim;
            let mut last_error: Option<String> = None;
            loop {
                let Some(app) = weak.upgrade() else { return };
                let client = PanoramaxClient::new(
                    app.services().http.clone(),
                    &cfg,
                    Some(generated.jwt.clone()),
                );
                match client.me().await {
                    Ok(me) => {
                        let name = me.name.clone().unwrap_or(me.id.clone());
                        let account = account(
                            service,
                            Some(me.id),
                            Some(name.clone()),
                            TokenSet {
                                access_token: generated.jwt.clone(),
                                refresh_token: None,
                                expires_at_ms: None,
                            },
                            Some(cfg.instance_url.to_string()),
                        );
                        let now = app.now_ms();
                        let saved = app.save_sign_in(&account, now).await;
                        match saved {
                            Ok(_) => {
                                app.sign_ins().end(service, Some(generation));
                                app.notify(&crate::DeepLinkOutcome {
                                    accepted: true,
                                    service: Some(service),
                                    message: format!("Panoramax connected as {name}."),
                                });
                                app.wake_engine();
                            }
                            Err(e) => app.sign_ins().set(
                                service,
                                Some(generation),
                                SignInStatus::failed(format!(
                                    "The token was claimed but could not be saved: {e}"
                                )),
                            ),
                        }
                        app.emit(AppEvent::AccountsChanged);
                        return;
                    }
                    // 401/403: not claimed yet.
                    Err(e) if e.kind() == mtp_providers::ErrorKind::Auth => {}
                    Err(e) => last_error = Some(e.to_string()),
                }
                if tokio::time::Instant::now() >= deadline {
                    let mut message = format!(
                        "Panoramax sign-in abandoned: the token was not claimed within {} (claim page: {}), so MTP Desktop stopped waiting. Click Integrate to start again, or paste an API token.",
                        signin::human(timeouts.claim),
                        generated.claim_url
                    );
                    if let Some(e) = last_error {
                        message.push_str(&format!(" The last answer from the instance: {e}"));
                    }
                    app.sign_ins()
                        .set(service, Some(generation), SignInStatus::failed(message));
                    app.emit(AppEvent::AccountsChanged);
                    return;
                }
                drop(app);
                tokio::time::sleep(timeouts.claim_poll).await;
            }
        });
        self.sign_ins().attach(service, generation, task);
        Ok(self.opened(service, generation, claim_url, None, open_browser))
    }

    /// Connects a Panoramax instance with an API token (or anonymously, where allowed),
    /// after checking it with the instance.
    pub async fn connect_panoramax(
        &self,
        instance_url: Option<String>,
        token: Option<String>,
    ) -> AppResult<String> {
        let s = self.services();
        let cfg = self.panoramax_config(instance_url.as_deref())?;
        let token = match token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
        {
            Some(t) => Secret::new(t),
            None if s.sandbox => Secret::new(self.sandbox_token(mtp_sandbox::Service::Panoramax)?),
            None => s.panoramax_token.clone().ok_or_else(|| {
                AppError::invalid(
                    "Paste an API token from your Panoramax instance (its Settings > Tokens page).",
                )
            })?,
        };
        let me = PanoramaxClient::new(s.http.clone(), &cfg, Some(token.clone()))
            .me()
            .await
            .map_err(provider_error)?;
        let name = me.name.clone().unwrap_or(me.id.clone());
        let account = account(
            Destination::Panoramax,
            Some(me.id),
            Some(name.clone()),
            TokenSet {
                access_token: token,
                refresh_token: None,
                expires_at_ms: None,
            },
            Some(cfg.instance_url.to_string()),
        );
        let now = self.now_ms();
        self.save_sign_in(&account, now).await?;
        self.sign_ins().end(Destination::Panoramax, None);
        self.emit(AppEvent::AccountsChanged);
        self.wake_engine();
        Ok(name)
    }

    /// Connects `service` with an access token the user pasted instead of signing in through
    /// the browser: KartaView users often hold one (upload-scripts keeps it in
    /// `credentials.json`, PROTOCOLS §3.1), as do Mapillary developers (their dashboard's
    /// user token). A Mapillary token is checked with `/me` first; KartaView and Map the
    /// Paths have no call that checks a token, so theirs is taken as it is and the first
    /// upload tells (a refusal puts the job in "integrate again"). Panoramax tokens go
    /// through [`App::connect_panoramax`], which also needs the instance.
    ///
    /// KartaView has no call that tells whose a token is, so its username is asked for
    /// beside the token: the card's stats and the search for a sequence a crash left behind
    /// need it. Without one the account has no username (rather than a made-up one that
    /// KartaView would be asked about), and the name returned is empty.
    pub async fn connect_with_token(
        &self,
        service: Destination,
        token: &str,
        username: Option<&str>,
    ) -> AppResult<String> {
        let token = token.trim();
        if token.is_empty() {
            return Err(AppError::invalid("The token is empty."));
        }
        let s = self.services();
        let token = Secret::new(token.to_string());
        let tokens = TokenSet {
            access_token: token.clone(),
            refresh_token: None,
            expires_at_ms: None,
        };
        let account = match service {
            Destination::Mapillary => {
                let cfg = s
                    .mapillary
                    .clone()
                    .ok_or_else(|| self.not_configured(service))?;
                let me = MapillaryClient::new(s.http.clone(), &cfg, token)
                    .with_clock(self.clock())
                    .me()
                    .await
                    .map_err(provider_error)?;
                let name = me.username.clone().or(Some(me.id.clone()));
                account(service, Some(me.id), name, tokens, None)
            }
            Destination::Kartaview => {
                s.kartaview
                    .as_ref()
                    .ok_or_else(|| self.not_configured(service))?;
                let username = username
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(String::from);
                account(service, None, username, tokens, None)
            }
            Destination::Mtpw => {
                s.mtpw
                    .as_ref()
                    .ok_or_else(|| self.not_configured(service))?;
                account(
                    service,
                    None,
                    Some("Map the Paths account (pasted token)".into()),
                    tokens,
                    None,
                )
            }
            Destination::Panoramax => {
                return Err(AppError::invalid(
                    "Panoramax needs its instance too: connect it with its address and the token.",
                ));
            }
        };
        let name = account.username.clone().unwrap_or_default();
        let now = self.now_ms();
        self.save_sign_in(&account, now).await?;
        self.sign_ins().end(service, None);
        self.emit(AppEvent::AccountsChanged);
        self.wake_engine();
        Ok(name)
    }

    pub async fn disconnect(&self, service: Destination) -> AppResult<()> {
        self.store().delete_account(service).await?;
        if service == Destination::Kartaview {
            self.store()
                .set_kartaview_osm_token(None, self.now_ms())
                .await?;
        }
        self.sign_ins().end(service, None);
        self.emit(AppEvent::AccountsChanged);
        Ok(())
    }

    /// A usable token for `service`, refreshed first when it is about to expire.
    pub async fn access_token(&self, service: Destination) -> AppResult<Account> {
        let account = self.store().account(service).await?.ok_or_else(|| {
            AppError::new(
                "not_connected",
                format!(
                    "{} is not integrated: integrate it on the Integrations screen.",
                    service.label()
                ),
            )
        })?;
        if account.needs_reauth {
            return Err(AppError::new(
                "needs_reauth",
                account.reauth_reason.clone().unwrap_or_else(|| {
                    format!(
                        "{} needs you to integrate again (the sign-in expired or was revoked).",
                        service.label()
                    )
                }),
            ));
        }
        let now = self.now_ms();
        if service != Destination::Mapillary || !token_set(&account).should_refresh(now) {
            return Ok(account);
        }
        match self.refresh_mapillary(&account, false).await {
            Ok(fresh) => Ok(fresh),
            Err(e) if e.code == "needs_reauth" || token_set(&account).is_expired(now) => Err(e),
            // Not expired yet: keep using the current token, refresh again later.
            Err(_) => Ok(account),
        }
    }

    /// The Mapillary account's stats for its card (images, km), from the `getData` query of
    /// mapillary.com's own pages: with the user's token, then the web client token when
    /// one is set. `None`, never an error, when Mapillary is not connected or the stats are
    /// unavailable (the query is undocumented, PROTOCOLS §2.6).
    pub async fn mapillary_stats(
        &self,
    ) -> Option<mtp_providers::mapillary::activity::AccountStats> {
        let account = self.store().account(Destination::Mapillary).await.ok()??;
        if account.needs_reauth {
            return None;
        }
        let username = account.username.clone()?;
        let account = self.access_token(Destination::Mapillary).await.ok()?;
        let s = self.services();
        let cfg = s.mapillary.clone()?;
        let mut tokens = vec![account.access_token.clone()];
        tokens.extend(cfg.web_client_token.clone());
        for token in tokens {
            let client = MapillaryClient::new(s.http.clone(), &cfg, token).with_clock(self.clock());
            let asked = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                client.account_stats(&username),
            )
            .await;
            match asked {
                Ok(Ok(stats)) => return stats,
                Ok(Err(e)) if e.kind() == mtp_providers::ErrorKind::Auth => continue,
                Ok(Err(e)) => {
                    tracing::info!("Mapillary account stats unavailable: {e}");
                    return None;
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Keeps a new sign-in and lets the jobs waiting for one go. A token refresh under way,
    /// here or in another process, does not save over it (`save_refreshed_account`).
    async fn save_sign_in(&self, account: &Account, now: i64) -> AppResult<()> {
        self.store().save_account(account, now).await?;
        self.store()
            .release_waiting_auth(account.service, now)
            .await?;
        Ok(())
    }

    /// Refreshes the Mapillary token now, whatever its stored expiry says: the service
    /// answered that it expired. A refusal marks the account as needing a new sign-in.
    pub(crate) async fn refresh_mapillary_now(&self, account: &Account) -> AppResult<Account> {
        self.refresh_mapillary(account, true).await
    }

    /// The one way a Mapillary token is refreshed: single-flight. Jobs, the Map the Paths
    /// sync and the card may all find the token expired at once, and the service revokes
    /// the token a refresh replaces, so a second refresh with the old one would fail and
    /// ask the user to sign in again. Whoever comes second finds the stored token changed
    /// since it read `seen` and takes that one.
    async fn refresh_mapillary(&self, seen: &Account, force: bool) -> AppResult<Account> {
        let service = Destination::Mapillary;
        let _one_at_a_time = self.inner.mapillary_refresh.lock().await;
        let not_connected = || {
            AppError::new(
                "not_connected",
                "Mapillary is not integrated: integrate it on the Integrations screen.",
            )
        };
        // Read before the account: a sign-in from here on (the lock above keeps this
        // process's out, not another process's) is what stays, whatever the refresh gives.
        let signed_in = self
            .store()
            .account_sign_ins(service)
            .await?
            .ok_or_else(not_connected)?;
        let stored = self
            .store()
            .account(service)
            .await?
            .ok_or_else(not_connected)?;
        if stored.needs_reauth {
            return Err(AppError::new(
                "needs_reauth",
                stored.reauth_reason.clone().unwrap_or_else(|| {
                    "Mapillary needs you to integrate again (the sign-in expired or was revoked)."
                        .to_string()
                }),
            ));
        }
        let now = self.now_ms();
        if stored.access_token.expose() != seen.access_token.expose()
            || (!force && !token_set(&stored).should_refresh(now))
        {
            return Ok(stored);
        }
        let s = self.services();
        let cfg = s
            .mapillary
            .clone()
            .ok_or_else(|| self.not_configured(service))?;
        match MapillaryOAuth::new(s.http.clone(), cfg)
            .with_clock(self.clock())
            .refresh(&token_set(&stored))
            .await
        {
            Ok(fresh) => {
                let mut updated = stored.clone();
                updated.access_token = fresh.access_token;
                updated.refresh_token = fresh.refresh_token.or(stored.refresh_token.clone());
                updated.expires_at = fresh.expires_at_ms;
                if self
                    .store()
                    .save_refreshed_account(&updated, signed_in, now)
                    .await?
                {
                    tracing::info!("Mapillary token refreshed");
                    Ok(updated)
                } else {
                    tracing::info!("Mapillary token refreshed, but a new sign-in came meanwhile");
                    self.store()
                        .account(service)
                        .await?
                        .ok_or_else(not_connected)
                }
            }
            Err(e) if matches!(e.kind(), mtp_providers::ErrorKind::Auth) => {
                // Another process may have refreshed the token first: the service then
                // revoked the refresh token this one sent, and the tokens it saved are good.
                let now_stored = self.store().account(service).await?;
                if let Some(now_stored) = now_stored
                    && !now_stored.needs_reauth
                    && now_stored.access_token.expose() != stored.access_token.expose()
                {
                    tracing::info!("Mapillary refused a refresh another process had made first");
                    return Ok(now_stored);
                }
                if !self
                    .store()
                    .mark_needs_reauth_unless_signed_in_since(service, signed_in, now)
                    .await?
                {
                    tracing::info!("Mapillary refused a refresh of the sign-in a new one replaced");
                    return self
                        .store()
                        .account(service)
                        .await?
                        .ok_or_else(not_connected);
                }
                self.emit(AppEvent::AccountsChanged);
                Err(AppError::new(
                    "needs_reauth",
                    format!("{e} — integrate {} again.", service.label()),
                ))
            }
            Err(e) => Err(provider_error(e)),
        }
    }
}

fn token_set(account: &Account) -> TokenSet {
    TokenSet {
        access_token: account.access_token.clone(),
        refresh_token: account.refresh_token.clone(),
        expires_at_ms: account.expires_at,
    }
}

fn account(
    service: Destination,
    user_id: Option<String>,
    username: Option<String>,
    tokens: TokenSet,
    instance_url: Option<String>,
) -> Account {
    Account {
        service,
        user_id,
        username,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_at: tokens.expires_at_ms,
        needs_reauth: false,
        instance_url,
        reauth_reason: None,
    }
}
