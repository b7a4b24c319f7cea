//! The application layer: what the desktop shell's commands and the `mtp` CLI call.
//! Each public method is one user action; the shells only parse arguments and map errors.

pub mod account_stats;
pub mod accounts;
pub mod config;
pub mod dry_run;
pub mod error;
pub mod events;
pub mod explore;
pub mod jobs;
mod kartaview_code;
pub mod manage;
pub mod mapillary_status;
pub mod pipeline;
pub mod prepare;
pub mod remote;
pub mod sandbox_browser;
pub mod sequences;
pub mod services;
pub mod signin;

pub use config::{Mode, ModeReason, Settings};
pub use error::{AppError, AppResult};
pub use events::AppEvent;
pub use pipeline::PipelineOptions;

use mtp_core::Destination;
use mtp_core::clock::{SharedClock, SystemClock};
use mtp_core::deeplink::DeepLink;
use mtp_core::store::{
    DEFAULT_KEYCHAIN_SERVICE, DbInfo, KeychainMode, SecretsChoice, Store, default_db_path,
};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The emulators' port in sandbox mode, kept from one start to the next.
const SANDBOX_PORT_SETTING: &str = "sandbox_port";
/// Where sandbox mode's emulators keep what they hold, inside the sandbox data folder.
pub const SANDBOX_STATE_DIR: &str = "emulators";

/// Everything a running app (window or CLI) holds.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    services: services::Services,
    /// The built-in emulators, in sandbox mode.
    sandbox: Option<mtp_sandbox::Sandbox>,
    mode: ModeReason,
    data_dir: PathBuf,
    store: Store,
    clock: SharedClock,
    events: broadcast::Sender<AppEvent>,
    /// Recent deep-link outcomes, for a UI that was not listening yet (cold start).
    notices: std::sync::Mutex<std::collections::VecDeque<DeepLinkOutcome>>,
    /// Previews waiting for the user to save them (newest last).
    prepared: std::sync::Mutex<Vec<(String, prepare::Prepared)>>,
    /// The upload pipeline, once started.
    engine: std::sync::OnceLock<mtp_core::engine::Engine>,
    /// The task running the pipeline, while it runs.
    worker: std::sync::Mutex<Option<pipeline::Worker>>,
    /// Set while another process runs this database's uploads and this one waits to take
    /// over (see [`mtp_core::store::EngineLock`]).
    engine_elsewhere: Arc<std::sync::atomic::AtomicBool>,
    /// Held while the Mapillary token is refreshed: one refresh at a time for the jobs,
    /// the Map the Paths sync and the card (the service revokes the token it replaces).
    mapillary_refresh: tokio::sync::Mutex<()>,
    /// Sign-ins in progress or just failed, per service.
    sign_ins: signin::SignIns,
    /// How the shell opens a web page (the desktop app's opener plugin); without one, the
    /// platform's own way (the `open` crate).
    opener: std::sync::OnceLock<Opener>,
    /// Wakes the runner of edits and deletes on the services (see [`manage`]).
    actions_wake: Arc<tokio::sync::Notify>,
    /// Explore's searches, for cancelling and exporting.
    explore: explore::Runs,
    /// The first-run screen has not been closed yet (see [`Overview::first_run`]).
    first_run: std::sync::atomic::AtomicBool,
}

/// Opens a web page in the system browser; the error says what went wrong, for a person.
pub type Opener = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// An `App` that does not keep it alive (the pipeline's drivers hold one, so that the
/// engine inside the app does not own the app).
#[derive(Clone)]
pub(crate) struct WeakApp(std::sync::Weak<Inner>);

impl WeakApp {
    pub(crate) fn upgrade(&self) -> Option<App> {
        self.0.upgrade().map(|inner| App { inner })
    }
}

/// What the UI shows in its header, banner, About box and first-run screen.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Overview {
    pub version: String,
    pub mode: ModeReason,
    pub data_dir: String,
    pub database: String,
    /// Where the user's settings file is (or would be): [`config::user_settings_file`].
    pub settings_file: Option<String>,
    /// The settings files read at start.
    pub settings_read: Vec<String>,
    /// What was wrong with a settings file, one line each (which file, what, what to do).
    pub settings_problems: Vec<String>,
    /// The app's licence (SPDX).
    pub licence: String,
    /// Nobody has closed the first-run screen yet for this mode's data (sandbox and real
    /// services each get theirs: switching to real accounts is a first run too).
    pub first_run: bool,
    /// Another process runs this data folder's uploads (`mtp upload`, or another window):
    /// this one shows their progress and takes over when that process ends.
    pub uploads_elsewhere: bool,
}

/// The settings key that says the first-run screen was closed.
pub const FIRST_RUN_DONE: &str = "first_run.done";

/// One card on the Integrations screen.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrationCard {
    pub service: Destination,
    pub label: &'static str,
    pub blurb: &'static str,
    /// Settings still missing before this service can be integrated (live mode only).
    pub missing_settings: Vec<&'static str>,
    pub connected_as: Option<String>,
    pub needs_reauth: bool,
    /// Why a new sign-in is needed when the service did not say so (the token is in an OS
    /// keychain that does not answer now, or no longer there).
    pub reauth_reason: Option<String>,
    /// Panoramax: the instance in use (the account's, else the configured one).
    pub instance_url: Option<String>,
    /// Browser sign-in (OAuth) rather than an address and a token.
    pub uses_browser: bool,
    /// OAuth services: where the browser comes back (the deep link, or a loopback address).
    pub redirect_uri: Option<String>,
    /// The loopback address the card offers when the deep link does not come back; `None`
    /// when the sign-in has no redirect to choose (a pasted code).
    pub suggested_loopback: Option<String>,
    /// The sign-in in progress, or why the last one failed.
    pub sign_in: Option<signin::SignInStatus>,
    /// Map the Paths Web only: whether the user lets the app send their Mapillary token to
    /// Map the Paths Web so it can link sequences (`None`: not asked yet).
    pub mapillary_consent: Option<bool>,
}

/// Where the store keeps tokens (`MTP_KEYCHAIN`): the OS keychain when one answers, else the
/// database. Sandbox mode keeps the emulators' throwaway tokens in its own database unless
/// `MTP_KEYCHAIN=on` (so that tests and demos leave nothing in the user's keychain), and so
/// does an in-memory database, which ends with the process.
async fn secrets_choice(settings: &Settings, mode: Mode) -> AppResult<SecretsChoice> {
    let keychain: KeychainMode = settings
        .keychain
        .as_deref()
        .unwrap_or("auto")
        .parse()
        .map_err(AppError::invalid)?;
    if settings.db_url.as_deref().is_some_and(Store::is_memory_url) {
        return Ok(SecretsChoice::database(None));
    }
    if mode == Mode::Sandbox && keychain == KeychainMode::Auto {
        return Ok(SecretsChoice::database(Some(
            "sandbox mode: the built-in emulators' tokens stay in its own database (MTP_KEYCHAIN=on puts them in the OS keychain)".into(),
        )));
    }
    let service = settings
        .keychain_service
        .clone()
        .unwrap_or_else(|| DEFAULT_KEYCHAIN_SERVICE.to_string());
    SecretsChoice::choose(keychain, &service)
        .await
        .map_err(|e| AppError::new("keychain", e))
}

/// The settings key of the user's answer to "send my Mapillary token to Map the Paths Web".
pub const MTPW_MAPILLARY_CONSENT: &str = "mtpw.send_mapillary_token";

impl App {
    /// Opens the store and gets the app ready. The one place configuration turns into state.
    /// In sandbox mode the emulators start here, and the data lives apart from real data
    /// (`<data dir>/sandbox/`), so sandbox uploads can never reach a real service.
    pub async fn start(settings: Settings) -> AppResult<App> {
        App::start_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`App::start`] on a given clock (tests move a manual clock through waits of hours).
    pub async fn start_with_clock(settings: Settings, clock: SharedClock) -> AppResult<App> {
        let mode = settings.mode();
        let base_dir = settings.resolved_data_dir();
        if let Some(legacy) = settings.legacy_data_dir() {
            match config::move_legacy_data(&legacy, &base_dir) {
                Ok(true) => tracing::info!(
                    "moved the data of an older version from {} to {}",
                    legacy.display(),
                    base_dir.display()
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    "could not move the data of an older version from {}: {e}",
                    legacy.display()
                ),
            }
        }
        let data_dir = match mode.mode {
            Mode::Sandbox => base_dir.join("sandbox"),
            Mode::Live => base_dir,
        };
        let secrets = secrets_choice(&settings, mode.mode).await?;
        let store = match &settings.db_url {
            Some(url) => Store::open_url_with_secrets(url, secrets).await?,
            None => Store::open_with_secrets(&default_db_path(&data_dir), secrets).await?,
        };
        tracing::info!("tokens: {}", store.token_place().description);
        for account in store.accounts().await? {
            if let Some(reason) = &account.reauth_reason {
                tracing::warn!("{reason}");
            }
        }
        let http = mtp_providers::http::build_client()
            .map_err(|e| AppError::new("internal", format!("cannot set up HTTP: {e}")))?;
        let (sandbox, services) = match mode.mode {
            Mode::Sandbox => {
                let mut config = mtp_sandbox::SandboxConfig {
                    // What the emulators hold survives a restart, as on the real services.
                    state_dir: Some(data_dir.join(SANDBOX_STATE_DIR)),
                    ..mtp_sandbox::SandboxConfig::default()
                };
                config
                    .apply_env(|k| {
                        settings
                            .sandbox_knobs
                            .iter()
                            .find(|(name, _)| name == k)
                            .map(|(_, v)| v.clone())
                    })
                    .map_err(AppError::invalid)?;
                if let Some(ms) = settings.sandbox_processing_ms {
                    config.processing_delay = std::time::Duration::from_millis(ms);
                }
                if let Some(mode) = &settings.sandbox_mtpw_import {
                    config.mtpw_import = mode.parse().map_err(|e: String| {
                        AppError::invalid(format!("MTP_SANDBOX_MTPW_IMPORT: {e}"))
                    })?;
                }
                // The emulators keep their address from one start to the next, so that what
                // jobs remember of them (an instance address, upload links) stays valid.
                let saved_port = store
                    .setting(SANDBOX_PORT_SETTING)
                    .await?
                    .and_then(|p| p.as_u64())
                    .and_then(|p| u16::try_from(p).ok());
                if let Some(port) = saved_port {
                    config.port = port;
                }
                let sandbox = match mtp_sandbox::Sandbox::start(config.clone()).await {
                    Ok(s) => s,
                    Err(e) if saved_port.is_some() => {
                        tracing::warn!(
                            "the emulators' usual port {} is taken ({e}): using another one",
                            config.port
                        );
                        config.port = 0;
                        mtp_sandbox::Sandbox::start(config).await
                    }
                    .map_err(|e| {
                        AppError::new(
                            "sandbox",
                            format!("cannot start the built-in emulators: {e}"),
                        )
                    })?,
                    Err(e) => {
                        return Err(AppError::new(
                            "sandbox",
                            format!("cannot start the built-in emulators: {e}"),
                        ));
                    }
                };
                if let Some(port) = sandbox.urls().base.port() {
                    store
                        .set_setting(
                            SANDBOX_PORT_SETTING,
                            &serde_json::json!(port),
                            clock.now_ms(),
                        )
                        .await?;
                }
                let mut services = services::Services::sandbox(&sandbox.urls(), http);
                // MAPILLARY_SCOPE applies to the emulator too (it grants what is asked).
                if let Some(c) = services.mapillary.as_mut() {
                    if let Some(scope) = &settings.mapillary_scope {
                        c.scope = scope.clone();
                    }
                    c.web_client_token = settings.mapillary_web_client_token.clone();
                }
                (Some(sandbox), services)
            }
            Mode::Live => (None, services::Services::live(&settings, http)),
        };
        let first_run = store.setting(FIRST_RUN_DONE).await?.is_none();
        let (events, _) = broadcast::channel(1024);
        let app = App {
            inner: Arc::new(Inner {
                settings,
                services,
                sandbox,
                mode,
                data_dir,
                store,
                clock,
                events,
                notices: Default::default(),
                prepared: Default::default(),
                engine: Default::default(),
                worker: Default::default(),
                engine_elsewhere: Default::default(),
                mapillary_refresh: Default::default(),
                sign_ins: Default::default(),
                opener: Default::default(),
                actions_wake: Default::default(),
                explore: Default::default(),
                first_run: first_run.into(),
            }),
        };
        app.refresh_sandbox_accounts().await?;
        Ok(app)
    }

    pub(crate) fn downgrade(&self) -> WeakApp {
        WeakApp(Arc::downgrade(&self.inner))
    }

    /// The emulators forget everything when the app quits: give stored sandbox accounts a
    /// token from this run's emulators so they stay connected.
    async fn refresh_sandbox_accounts(&self) -> AppResult<()> {
        if self.inner.sandbox.is_none() {
            return Ok(());
        }
        let now = self.now_ms();
        for mut account in self.store().accounts().await? {
            let service = sandbox_service(account.service);
            account.access_token = mtp_core::secret::Secret::new(self.sandbox_token(service)?);
            account.refresh_token = None;
            account.expires_at = None;
            account.needs_reauth = false;
            if account.service == Destination::Panoramax {
                account.instance_url = self
                    .inner
                    .services
                    .panoramax
                    .as_ref()
                    .map(|p| p.instance_url.to_string());
            }
            self.store().save_account(&account, now).await?;
        }
        Ok(())
    }

    /// A token for the first sandbox user (sandbox mode only).
    pub(crate) fn sandbox_token(&self, service: mtp_sandbox::Service) -> AppResult<String> {
        self.inner
            .sandbox
            .as_ref()
            .map(|s| s.issue_token(service, 0))
            .ok_or_else(|| AppError::new("internal", "not in sandbox mode"))
    }

    /// The emulators, in sandbox mode (tests and `mtp` use them to look inside).
    pub fn sandbox(&self) -> Option<&mtp_sandbox::Sandbox> {
        self.inner.sandbox.as_ref()
    }

    pub fn services(&self) -> &services::Services {
        &self.inner.services
    }

    /// The folder holding this mode's database (and, for a while, the zips sent to
    /// Mapillary).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    pub fn clock(&self) -> SharedClock {
        self.inner.clock.clone()
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Subscribe to state changes and progress (the desktop shell forwards them to the UI).
    pub fn subscribe(&self) -> broadcast::Receiver<AppEvent> {
        self.inner.events.subscribe()
    }

    pub(crate) fn emit(&self, event: AppEvent) {
        // No receiver is fine: the CLI often has none.
        let _ = self.inner.events.send(event);
    }

    /// Tells the pipeline to look at the job table now.
    pub fn wake_engine(&self) {
        if let Some(engine) = self.inner.engine.get() {
            engine.wake();
        }
    }

    pub fn overview(&self) -> Overview {
        let files = config::settings_files();
        let shown = |p: &std::path::Path| p.display().to_string();
        Overview {
            version: env!("CARGO_PKG_VERSION").to_string(),
            mode: self.inner.mode.clone(),
            data_dir: self.inner.data_dir.display().to_string(),
            database: self.inner.store.location().to_string(),
            settings_file: config::user_settings_file().as_deref().map(shown),
            settings_read: files.read.iter().map(|p| shown(p)).collect(),
            settings_problems: files.problems,
            licence: env!("CARGO_PKG_LICENSE").to_string(),
            first_run: self
                .inner
                .first_run
                .load(std::sync::atomic::Ordering::Relaxed),
            uploads_elsewhere: self.engine_elsewhere(),
        }
    }

    /// The first-run screen was closed: it is not shown again for this mode's data.
    pub async fn finish_first_run(&self) -> AppResult<()> {
        let now = self.now_ms();
        self.store()
            .set_setting(FIRST_RUN_DONE, &serde_json::json!(now), now)
            .await?;
        self.inner
            .first_run
            .store(false, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The most recent deep-link outcomes, oldest first.
    pub fn recent_notices(&self) -> Vec<DeepLinkOutcome> {
        self.inner
            .notices
            .lock()
            .map(|n| n.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub async fn db_info(&self) -> AppResult<DbInfo> {
        Ok(self.inner.store.info().await?)
    }

    /// Whether the user lets the app send their Mapillary token to Map the Paths Web
    /// (which needs it to link a sequence to its Mapillary imagery); `None` until asked.
    pub async fn mtpw_mapillary_consent(&self) -> AppResult<Option<bool>> {
        Ok(self
            .inner
            .store
            .setting(MTPW_MAPILLARY_CONSENT)
            .await?
            .and_then(|v| v.as_bool()))
    }

    /// Records the user's answer (asked once, on the Map the Paths Web card; changeable
    /// there). Map the Paths jobs that were waiting for it go on at once, and a "yes" links
    /// the sequences that ended unlinked because of an earlier "no".
    pub async fn set_mtpw_mapillary_consent(&self, allow: bool) -> AppResult<()> {
        let now = self.now_ms();
        self.inner
            .store
            .set_setting(MTPW_MAPILLARY_CONSENT, &serde_json::Value::Bool(allow), now)
            .await?;
        // One pass over the Map the Paths jobs: those waiting for the answer have it (due
        // now, and no longer waiting on the user, so that `mtp upload` waits for them
        // instead of reporting them as waiting); after a "yes", those created without a
        // link for want of consent are reopened to be linked.
        let mut seqs = Vec::new();
        for job in self.inner.store.jobs().await? {
            if job.destination != Destination::Mtpw {
                continue;
            }
            let Ok(remote) = <remote::MtpwRemote as remote::DestinationRemote>::of(&job) else {
                continue;
            };
            // Only the fields answered are written: the job may be running, and its driver
            // writes the others meanwhile.
            if job.status.is_active() && remote.waiting_on.as_deref() == Some("consent") {
                self.inner
                    .store
                    .patch_job_remote(job.id, &cleared(&["waiting_on"]), now)
                    .await?;
                self.inner
                    .store
                    .wake_waiting_job(job.sequence_id, Destination::Mtpw, now)
                    .await?;
            } else if allow
                && job.status == mtp_core::engine::JobStatus::Done
                && remote.unlinked.as_deref() == Some("consent")
            {
                // Cleared before the job is queued again (its run then reads them cleared).
                self.inner
                    .store
                    .patch_job_remote(job.id, &cleared(&["unlinked", "note"]), now)
                    .await?;
                if self
                    .inner
                    .store
                    .reopen_job(job.id, mtp_core::engine::Stage::Sync, now)
                    .await?
                {
                    seqs.push(job.sequence_id);
                }
            }
        }
        if let Some(engine) = self.inner.engine.get() {
            engine.wake();
        }
        if !seqs.is_empty() {
            self.emit(AppEvent::SequencesChanged { ids: seqs });
        }
        self.emit(AppEvent::AccountsChanged);
        Ok(())
    }

    pub async fn integrations(&self) -> AppResult<Vec<IntegrationCard>> {
        let accounts = self.inner.store.accounts().await?;
        let consent = self.mtpw_mapillary_consent().await?;
        let sandbox = self.inner.mode.mode == Mode::Sandbox;
        let mut redirects = std::collections::HashMap::new();
        for service in Destination::ALL {
            if service != Destination::Panoramax {
                redirects.insert(service, self.redirect_uri(service).await?);
            }
        }
        Ok(Destination::ALL
            .iter()
            .map(|&service| {
                let account = accounts.iter().find(|a| a.service == service);
                let redirect_uri = redirects.get(&service).cloned().flatten();
                IntegrationCard {
                    // A pasted code (KartaView's app) has no redirect to replace.
                    suggested_loopback: redirect_uri
                        .as_ref()
                        .filter(|u| *u != mtp_providers::config::OOB_REDIRECT_URI)
                        .map(|_| signin::SUGGESTED_LOOPBACK.to_string()),
                    redirect_uri,
                    sign_in: self.sign_in_status(service),
                    service,
                    label: service.label(),
                    blurb: blurb(service),
                    missing_settings: if sandbox || self.inner.services.is_configured(service) {
                        Vec::new()
                    } else {
                        self.inner.settings.missing(service)
                    },
                    connected_as: account.map(|a| a.username.clone().unwrap_or_default()),
                    needs_reauth: account.is_some_and(|a| a.needs_reauth),
                    reauth_reason: account.and_then(|a| a.reauth_reason.clone()),
                    instance_url: match service {
                        Destination::Panoramax => {
                            account.and_then(|a| a.instance_url.clone()).or_else(|| {
                                self.inner
                                    .services
                                    .panoramax
                                    .as_ref()
                                    .map(|p| p.instance_url.to_string())
                            })
                        }
                        _ => None,
                    },
                    uses_browser: service != Destination::Panoramax,
                    mapillary_consent: match service {
                        Destination::Mtpw => consent,
                        _ => None,
                    },
                }
            })
            .collect())
    }

    /// A deep link handed over by the OS (first launch argv or a second instance).
    /// It is parsed, its `state` checked against a pending attempt, and the result reported
    /// to the UI; a refused link never changes any state.
    pub async fn handle_deep_link(&self, raw: &str) -> AppResult<DeepLinkOutcome> {
        let outcome = match DeepLink::try_from(raw) {
            Err(e) => {
                tracing::warn!(reason = %e, "refused a deep link");
                DeepLinkOutcome::refused(format!("Ignored a link: {e}."))
            }
            Ok(link) => return self.finish_redirect(link, raw).await,
        };
        self.notify(&outcome);
        Ok(outcome)
    }

    /// Finishes a sign-in whose browser came back (deep link or loopback redirect): the
    /// `state` must match a pending attempt, then the code or token is used. The outcome
    /// is a notice for the UI, and a failure stays on the service's card.
    pub(crate) async fn finish_redirect(
        &self,
        link: DeepLink,
        raw: &str,
    ) -> AppResult<DeepLinkOutcome> {
        let now = self.now_ms();
        let attempt = match link.state() {
            Some(state) => self.inner.store.take_oauth_attempt(state, now).await?,
            None => None,
        };
        let outcome = match attempt {
            None => {
                tracing::warn!("refused a deep link with an unknown or expired state");
                DeepLinkOutcome::refused(
                    "Refused a sign-in link: it does not match a sign-in started from this app \
                     (or it expired). Click Integrate again to retry."
                        .to_string(),
                )
            }
            Some(attempt) => {
                let service = attempt.service;
                match self.complete_integration(attempt, &link, raw).await {
                    Ok(name) => {
                        self.sign_ins().end(service, None);
                        DeepLinkOutcome {
                            accepted: true,
                            service: Some(service),
                            message: format!("{} connected as {name}.", service.label()),
                        }
                    }
                    Err(e) => {
                        let message = format!("{} sign-in failed: {}", service.label(), e.message);
                        let status = if e.code == "kartaview_refused" {
                            self.kartaview_refused_status(
                                message.clone(),
                                self.services().kartaview.as_ref(),
                            )
                        } else {
                            signin::SignInStatus::failed(message.clone())
                        };
                        self.sign_ins().set(service, None, status);
                        DeepLinkOutcome {
                            accepted: false,
                            service: Some(service),
                            message,
                        }
                    }
                }
            }
        };
        self.notify(&outcome);
        Ok(outcome)
    }

    fn notify(&self, outcome: &DeepLinkOutcome) {
        if let Ok(mut notices) = self.inner.notices.lock() {
            notices.push_back(outcome.clone());
            while notices.len() > 20 {
                notices.pop_front();
            }
        }
        self.emit(AppEvent::DeepLink(outcome.clone()));
    }
}

/// What happened to a deep link, for the UI's notice.
#[derive(Debug, Clone, Serialize)]
pub struct DeepLinkOutcome {
    pub accepted: bool,
    pub service: Option<Destination>,
    pub message: String,
}

impl DeepLinkOutcome {
    fn refused(message: String) -> Self {
        DeepLinkOutcome {
            accepted: false,
            service: None,
            message,
        }
    }
}

fn sandbox_service(d: Destination) -> mtp_sandbox::Service {
    match d {
        Destination::Mapillary => mtp_sandbox::Service::Mapillary,
        Destination::Kartaview => mtp_sandbox::Service::KartaView,
        Destination::Panoramax => mtp_sandbox::Service::Panoramax,
        Destination::Mtpw => mtp_sandbox::Service::Mtpw,
    }
}

fn blurb(d: Destination) -> &'static str {
    match d {
        Destination::Mapillary => "Street-level imagery for OpenStreetMap and the world.",
        Destination::Kartaview => "Open street-level imagery, signed in through OpenStreetMap.",
        Destination::Panoramax => "The federated, open street-level imagery commons.",
        Destination::Mtpw => "Map the Paths: share your sequences and their transport type.",
    }
}

/// A patch of a job's remote state that empties `keys` (and leaves the others as they are).
fn cleared(keys: &[&str]) -> serde_json::Map<String, serde_json::Value> {
    keys.iter()
        .map(|k| ((*k).to_owned(), serde_json::Value::Null))
        .collect()
}
