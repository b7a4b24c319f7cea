//! KartaView through KartaView's own OpenStreetMap app, as its upload-scripts sign in
//! (PROTOCOLS §3.1): that app is registered with OAuth's out-of-band redirect only, so
//! OpenStreetMap shows the code on a page after the user approves, and the user pastes it
//! on the card. KartaView is known to accept that app's tokens; it is the way in without an
//! OSM app of one's own, and the way out when KartaView refuses the one in the settings.

use mtp_core::Destination;
use mtp_core::secret::Secret;
use mtp_core::store::OAuthAttempt;
use mtp_providers::config::OOB_REDIRECT_URI;
use mtp_providers::oauth::OsmOAuth;
use mtp_providers::{ErrorKind, KartaViewConfig, PendingAuthorization};

use crate::accounts::{ATTEMPT_TTL_MS, StartedIntegration, provider_error};
use crate::signin::{SignInPhase, SignInStatus};
use crate::{App, AppError, AppEvent, AppResult};

const SERVICE: Destination = Destination::Kartaview;

impl App {
    /// The KartaView sign-in that goes through KartaView's own OSM app: Integrate's when no
    /// OSM app is in the settings, else the one offered after a refusal.
    fn kartaview_code_config(&self) -> Option<KartaViewConfig> {
        let s = self.services();
        s.kartaview
            .as_ref()
            .filter(|c| c.pastes_code())
            .or(s.kartaview_app.as_ref())
            .cloned()
    }

    /// Starts a KartaView sign-in through KartaView's own OpenStreetMap app: opens
    /// OpenStreetMap's page, after which the card waits for the code OpenStreetMap shows
    /// ([`App::finish_sign_in_with_code`]).
    pub async fn start_kartaview_app_sign_in(
        &self,
        open_browser: bool,
    ) -> AppResult<StartedIntegration> {
        let cfg = self
            .kartaview_code_config()
            .ok_or_else(|| self.not_configured(SERVICE))?;
        self.start_code_sign_in(cfg, open_browser).await
    }

    pub(crate) async fn start_code_sign_in(
        &self,
        cfg: KartaViewConfig,
        open_browser: bool,
    ) -> AppResult<StartedIntegration> {
        self.sign_ins().stop(SERVICE).await;
        let pending = OsmOAuth::new(self.services().http.clone(), cfg.clone())
            .authorize()
            .map_err(provider_error)?;
        let now = self.now_ms();
        self.store()
            .save_oauth_attempt(&OAuthAttempt {
                state: pending.state.clone(),
                service: SERVICE,
                pkce_verifier: pending.pkce_verifier.clone(),
                created_at: now,
                expires_at: now + ATTEMPT_TTL_MS,
                redirect_uri: Some(cfg.redirect_uri.clone()),
            })
            .await?;
        let url = pending.authorize_url.to_string();
        let generation = self.sign_ins().begin(
            SERVICE,
            SignInStatus {
                wants_code: true,
                ..SignInStatus::waiting(url.clone(), Some(cfg.redirect_uri.clone()))
            },
        );
        Ok(self.opened(
            SERVICE,
            generation,
            url,
            Some(cfg.redirect_uri),
            open_browser,
        ))
    }

    /// Finishes a KartaView sign-in through KartaView's app with the code OpenStreetMap
    /// showed: exchanges it with the waiting attempt's PKCE verifier, then asks KartaView
    /// (`client_auth`). A code OpenStreetMap does not take leaves the sign-in waiting, with
    /// the reason on the card, so that it can be pasted again.
    pub async fn finish_sign_in_with_code(&self, code: &str) -> AppResult<String> {
        let cfg = self
            .kartaview_code_config()
            .ok_or_else(|| self.not_configured(SERVICE))?;
        // Copied from a web page: spaces or a line break may come along.
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.is_empty() {
            return Err(AppError::invalid(
                "Paste the code OpenStreetMap showed after you approved, then click Connect.",
            ));
        }
        let now = self.now_ms();
        let Some(attempt) = self
            .store()
            .newest_oauth_attempt(SERVICE, OOB_REDIRECT_URI, now)
            .await?
        else {
            return Err(AppError::invalid(
                "No KartaView sign-in is waiting for a code: it was cancelled, or started more than 15 minutes ago. Click the sign-in button again for a new code.",
            ));
        };
        let pending = PendingAuthorization {
            service: SERVICE,
            state: attempt.state.clone(),
            pkce_verifier: attempt.pkce_verifier.clone(),
            authorize_url: cfg.osm_authorize_url.clone(),
        };
        let oauth =
            OsmOAuth::new(self.services().http.clone(), cfg.clone()).with_clock(self.clock());
        let osm = match oauth.exchange_code(&pending, &Secret::new(code)).await {
            Ok(tokens) => tokens,
            Err(e) => {
                let message = match e.kind() {
                    ErrorKind::Retry { .. } => format!(
                        "Could not reach OpenStreetMap to check the code ({}). Check the connection and paste the code again: it works for 10 minutes from when OpenStreetMap showed it.",
                        e.message()
                    ),
                    _ => format!(
                        "OpenStreetMap did not accept this code ({}). Copy the whole code from the page OpenStreetMap showed and paste it again, or sign in again for a new code (a code works once, for 10 minutes).",
                        e.message()
                    ),
                };
                if let Some(mut status) = self
                    .sign_ins()
                    .status(SERVICE)
                    .filter(|s| s.phase == SignInPhase::Waiting && s.wants_code)
                {
                    status.message = Some(message.clone());
                    self.sign_ins().set(SERVICE, None, status);
                    self.emit(AppEvent::AccountsChanged);
                }
                return Err(AppError::new("code_refused", message));
            }
        };
        // The code is used: a new sign-in needs a new one.
        self.store().delete_oauth_attempts(SERVICE).await?;
        match self.kartaview_sign_in(&cfg, &osm.access_token, now).await {
            Ok(name) => Ok(name),
            Err(e) => {
                let message = format!("{} sign-in failed: {}", SERVICE.label(), e.message);
                let status = if e.code == "kartaview_refused" {
                    self.kartaview_refused_status(message, Some(&cfg))
                } else {
                    SignInStatus::failed(message)
                };
                self.sign_ins().set(SERVICE, None, status);
                self.emit(AppEvent::AccountsChanged);
                Err(e)
            }
        }
    }
}
