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

/// The Mapillary card's account stats (images, km); null when unavailable.
#[tauri::command]
pub async fn mapillary_stats(
    state: Shared<'_>,
) -> Result<Option<mtp_app::mapillary_status::AccountStats>, AppError> {
    Ok(state.app()?.mapillary_stats().await)
}

/// The user's answer to "send my Mapillary token to Map the Paths Web" (its card).
#[tauri::command]
pub async fn set_mtpw_mapillary_consent(state: Shared<'_>, allow: bool) -> Result<(), AppError> {
    state.app()?.set_mtpw_mapillary_consent(allow).await
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

#[tauri::command]
pub async fn prepare_folder(
    state: Shared<'_>,
    path: String,
    options: Option<mtp_app::prepare::PrepareOptions>,
) -> Result<mtp_app::prepare::PreparedImport, AppError> {
    state
        .app()?
        .prepare_folder(std::path::Path::new(&path), options.unwrap_or_default())
        .await
}

#[tauri::command]
pub async fn save_import(
    state: Shared<'_>,
    request: mtp_app::prepare::SaveImport,
) -> Result<mtp_app::prepare::SavedImport, AppError> {
    state.app()?.save_import(request).await
}

#[tauri::command]
pub async fn sequences(
    state: Shared<'_>,
) -> Result<Vec<mtp_app::sequences::SequenceSummary>, AppError> {
    state.app()?.sequences().await
}

#[tauri::command]
pub async fn sequence(
    state: Shared<'_>,
    id: i64,
) -> Result<mtp_app::sequences::SequenceSummary, AppError> {
    state.app()?.sequence(id).await
}

/// The Map the Paths transport types, grouped, for the form's picker.
#[tauri::command]
pub fn transport_types() -> Vec<serde_json::Value> {
    mtp_core::transport::all()
        .iter()
        .map(|t| serde_json::json!({ "name": t.name, "group": t.group }))
        .collect()
}

#[tauri::command]
pub async fn start_integration(
    state: Shared<'_>,
    service: mtp_core::Destination,
) -> Result<mtp_app::accounts::StartedIntegration, AppError> {
    state.app()?.start_integration(service).await
}

#[tauri::command]
pub async fn connect_panoramax(
    state: Shared<'_>,
    instance_url: Option<String>,
    token: Option<String>,
) -> Result<String, AppError> {
    state.app()?.connect_panoramax(instance_url, token).await
}

#[tauri::command]
pub async fn disconnect(state: Shared<'_>, service: mtp_core::Destination) -> Result<(), AppError> {
    state.app()?.disconnect(service).await
}

#[tauri::command]
pub async fn job_action(
    state: Shared<'_>,
    target: mtp_app::jobs::JobTarget,
    action: mtp_app::jobs::JobAction,
) -> Result<usize, AppError> {
    state.app()?.job_action(target, action).await
}

#[tauri::command]
pub async fn queue_upload(
    state: Shared<'_>,
    sequence_id: i64,
    destinations: Vec<mtp_core::Destination>,
) -> Result<Vec<String>, AppError> {
    state
        .app()?
        .queue_upload(&[sequence_id], &destinations)
        .await
}

#[tauri::command]
pub fn open_external(state: Shared<'_>, url: String) -> Result<(), AppError> {
    state.app()?.open_external(&url)
}
