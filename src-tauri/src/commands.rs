//! Tauri commands: one per user action, each a thin call into `mtp_app::App`.

use crate::AppState;
use mtp_app::{AppError, DeepLinkOutcome, IntegrationCard, Overview};
use mtp_core::store::DbInfo;
use std::sync::Arc;
use tauri::State;

type Shared<'a> = State<'a, Arc<AppState>>;

#[tauri::command]
pub fn app_overview(state: Shared<'_>) -> Result<Overview, AppError> {
    Ok(state.app()?.overview())
}

#[tauri::command]
pub async fn integrations(state: Shared<'_>) -> Result<Vec<IntegrationCard>, AppError> {
    state.app()?.integrations().await
}

#[tauri::command]
pub async fn db_info(state: Shared<'_>) -> Result<DbInfo, AppError> {
    state.app()?.db_info().await
}

/// Deep-link outcomes that arrived before the UI was listening (e.g. at cold start).
#[tauri::command]
pub fn notices(state: Shared<'_>) -> Result<Vec<DeepLinkOutcome>, AppError> {
    Ok(state.app()?.recent_notices())
}
