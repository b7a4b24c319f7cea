//! Account stats for the KartaView and Panoramax cards (and `mtp accounts list`): what the
//! service itself says the connected account holds (PROTOCOLS §6).
//!
//! `Ok(None)` when the service is not connected; an error when the service could not be
//! asked or answered oddly, so that the card says "unavailable" instead of showing a zero
//! nobody measured.

use std::time::Duration;

use mtp_core::Destination;
use mtp_providers::{KartaViewClient, PanoramaxClient, ProviderError};
use serde::Serialize;
use url::Url;

use crate::{App, AppError, AppResult};

/// How long the card waits for KartaView.
const KARTAVIEW_WAIT: Duration = Duration::from_secs(5);
/// How long the card waits for Panoramax: every page of the account's sequences.
const PANORAMAX_WAIT: Duration = Duration::from_secs(15);

/// A KartaView account's totals (`/1.0/user/details/`). `None`: KartaView left it out.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct KartaViewStats {
    pub username: String,
    pub photos: Option<u64>,
    pub km: Option<f64>,
    pub tracks: Option<u64>,
    /// `None`: not on the leaderboard.
    pub overall_rank: Option<u64>,
    pub weekly_rank: Option<u64>,
}

/// A Panoramax account's totals on its instance: sums over its sequences.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct PanoramaxStats {
    pub instance_url: String,
    pub photos: u64,
    pub km: f64,
    pub sequences: u64,
    /// Sequences still being processed, whose photos or length are not counted yet.
    pub incomplete: u64,
}

fn unavailable(service: Destination, e: impl std::fmt::Display) -> AppError {
    AppError::new(
        "stats_unavailable",
        format!("{} stats unavailable: {e}", service.label()),
    )
}

async fn asked<T>(
    service: Destination,
    wait: Duration,
    f: impl std::future::Future<Output = Result<T, ProviderError>>,
) -> AppResult<T> {
    match tokio::time::timeout(wait, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::info!("{} account stats: {e}", service.label());
            Err(unavailable(service, e))
        }
        Err(_) => Err(unavailable(
            service,
            format!("no answer within {} s", wait.as_secs()),
        )),
    }
}

impl App {
    /// The KartaView card's stats: photos, km, tracks and ranks of the connected account.
    /// Public on KartaView's side: only the username is needed.
    pub async fn kartaview_stats(&self) -> AppResult<Option<KartaViewStats>> {
        let service = Destination::Kartaview;
        let Some(account) = self.store().account(service).await? else {
            return Ok(None);
        };
        let Some(username) = account.username.clone().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let s = self.services();
        let cfg = s
            .kartaview
            .clone()
            .ok_or_else(|| unavailable(service, "KartaView is not configured"))?;
        let client = KartaViewClient::new(s.http.clone(), &cfg, account.access_token)
            .with_clock(self.clock());
        let stats = asked(service, KARTAVIEW_WAIT, client.user_details(&username)).await?;
        Ok(Some(KartaViewStats {
            username: stats.username,
            photos: stats.photos,
            km: stats.km,
            tracks: stats.tracks,
            overall_rank: stats.overall_rank,
            weekly_rank: stats.weekly_rank,
        }))
    }

    /// The Panoramax card's stats: photos, km and sequences of the connected account on its
    /// instance.
    pub async fn panoramax_stats(&self) -> AppResult<Option<PanoramaxStats>> {
        let service = Destination::Panoramax;
        let Some(account) = self.store().account(service).await? else {
            return Ok(None);
        };
        if account.needs_reauth {
            return Ok(None);
        }
        let s = self.services();
        // In sandbox mode the emulator is the instance, whatever port an earlier start saved.
        let configured = s.panoramax.as_ref().map(|p| p.instance_url.to_string());
        let instance = if s.sandbox {
            configured.or(account.instance_url.clone())
        } else {
            account.instance_url.clone().or(configured)
        }
        .ok_or_else(|| unavailable(service, "no instance is set"))?;
        let instance = instance.trim_end_matches('/').to_string();
        let url = Url::parse(&instance).map_err(|e| unavailable(service, e))?;
        let client = PanoramaxClient::with_url(s.http.clone(), url, Some(account.access_token))
            .with_clock(self.clock());
        let stats = asked(service, PANORAMAX_WAIT, client.account_stats()).await?;
        Ok(Some(PanoramaxStats {
            instance_url: instance,
            photos: stats.photos,
            km: stats.km,
            sequences: stats.sequences,
            incomplete: stats.incomplete,
        }))
    }
}
