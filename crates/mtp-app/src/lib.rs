//! The application layer: what the desktop shell's commands and the `mtp` CLI call.
//! Each public method is one user action; the shells only parse arguments and map errors.

pub mod config;
pub mod error;
pub mod events;
pub mod prepare;
pub mod sequences;

pub use config::{Mode, ModeReason, Settings};
pub use error::{AppError, AppResult};
pub use events::AppEvent;

use mtp_core::Destination;
use mtp_core::clock::{SharedClock, SystemClock};
use mtp_core::deeplink::DeepLink;
use mtp_core::store::{DbInfo, Store, default_db_path};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Everything a running app (window or CLI) holds.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
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
}

/// What the UI shows in its header and banner.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub version: &'static str,
    pub mode: ModeReason,
    pub data_dir: String,
    pub database: String,
}

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
}

impl App {
    /// Opens the store and gets the app ready. The one place configuration turns into state.
    pub async fn start(settings: Settings) -> AppResult<App> {
        let data_dir = settings.resolved_data_dir();
        let store = match &settings.db_url {
            Some(url) => Store::open_url(url).await?,
            None => Store::open(&default_db_path(&data_dir)).await?,
        };
        let mode = settings.mode();
        let (events, _) = broadcast::channel(1024);
        Ok(App {
            inner: Arc::new(Inner {
                settings,
                mode,
                data_dir,
                store,
                clock: Arc::new(SystemClock),
                events,
                notices: Default::default(),
                prepared: Default::default(),
                engine: Default::default(),
            }),
        })
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
        Overview {
            version: env!("CARGO_PKG_VERSION"),
            mode: self.inner.mode.clone(),
            data_dir: self.inner.data_dir.display().to_string(),
            database: self.inner.store.location().to_string(),
        }
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

    pub async fn integrations(&self) -> AppResult<Vec<IntegrationCard>> {
        let accounts = self.inner.store.accounts().await?;
        let sandbox = self.inner.mode.mode == Mode::Sandbox;
        Ok(Destination::ALL
            .iter()
            .map(|&service| {
                let account = accounts.iter().find(|a| a.service == service);
                IntegrationCard {
                    service,
                    label: service.label(),
                    blurb: blurb(service),
                    missing_settings: if sandbox {
                        Vec::new()
                    } else {
                        self.inner.settings.missing(service)
                    },
                    connected_as: account.map(|a| a.username.clone().unwrap_or_default()),
                    needs_reauth: account.is_some_and(|a| a.needs_reauth),
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
            Ok(link) => {
                let now = self.now_ms();
                let attempt = match link.state() {
                    Some(state) => self.inner.store.take_oauth_attempt(state, now).await?,
                    None => None,
                };
                match attempt {
                    None => {
                        tracing::warn!("refused a deep link with an unknown or expired state");
                        DeepLinkOutcome::refused(
                            "Refused a sign-in link: it does not match a sign-in started from this app \
                             (or it expired). Click Integrate again to retry."
                                .to_string(),
                        )
                    }
                    Some(attempt) => DeepLinkOutcome {
                        accepted: true,
                        service: Some(attempt.service),
                        message: format!("Sign-in link received for {}.", attempt.service.label()),
                    },
                }
            }
        };
        if let Ok(mut notices) = self.inner.notices.lock() {
            notices.push_back(outcome.clone());
            while notices.len() > 20 {
                notices.pop_front();
            }
        }
        self.emit(AppEvent::DeepLink(outcome.clone()));
        Ok(outcome)
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

fn blurb(d: Destination) -> &'static str {
    match d {
        Destination::Mapillary => "Street-level imagery for OpenStreetMap and the world.",
        Destination::Kartaview => "Open street-level imagery, signed in through OpenStreetMap.",
        Destination::Panoramax => "The federated, open street-level imagery commons.",
        Destination::Mtpw => "Map the Paths: share your sequences and their transport type.",
    }
}
