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

/// The first-run screen was closed.
#[tauri::command]
pub async fn finish_first_run(state: Shared<'_>) -> Result<(), AppError> {
    state.app()?.finish_first_run().await
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

/// The KartaView card's account stats (photos, km, tracks, ranks); null when KartaView is
/// not connected, an error when KartaView could not tell.
#[tauri::command]
pub async fn kartaview_stats(
    state: Shared<'_>,
) -> Result<Option<mtp_app::account_stats::KartaViewStats>, AppError> {
    state.app()?.kartaview_stats().await
}

/// The Panoramax card's account stats (photos, km, sequences); as `kartaview_stats`.
#[tauri::command]
pub async fn panoramax_stats(
    state: Shared<'_>,
) -> Result<Option<mtp_app::account_stats::PanoramaxStats>, AppError> {
    state.app()?.panoramax_stats().await
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

/// "Check" on the Import screen: what saving and uploading the preview would send to each
/// destination; nothing is saved or sent.
#[tauri::command]
pub async fn dry_run(
    state: Shared<'_>,
    token: String,
    meta: mtp_core::store::SequenceMeta,
    destinations: Vec<mtp_core::Destination>,
) -> Result<mtp_app::dry_run::DryRun, AppError> {
    state
        .app()?
        .dry_run_prepared(&token, &meta, &destinations)
        .await
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

/// Panoramax's Integrate: generate a token, open its claim page, wait for the claim.
#[tauri::command]
pub async fn start_panoramax_claim(
    state: Shared<'_>,
    instance_url: Option<String>,
) -> Result<mtp_app::accounts::StartedIntegration, AppError> {
    state.app()?.start_panoramax_claim(instance_url, true).await
}

/// Stops waiting for a sign-in (closes its loopback listener or claim poll).
#[tauri::command]
pub async fn cancel_sign_in(
    state: Shared<'_>,
    service: mtp_core::Destination,
) -> Result<(), AppError> {
    state.app()?.cancel_sign_in(service).await
}

/// Where a service's sign-in comes back (`None` = the default, the deep link).
#[tauri::command]
pub async fn set_redirect_uri(
    state: Shared<'_>,
    service: mtp_core::Destination,
    redirect_uri: Option<String>,
) -> Result<Option<String>, AppError> {
    state.app()?.set_redirect_uri(service, redirect_uri).await
}

/// Asks KartaView again with the kept OpenStreetMap sign-in.
#[tauri::command]
pub async fn retry_kartaview(state: Shared<'_>) -> Result<String, AppError> {
    state.app()?.retry_kartaview().await
}

/// Signs in to KartaView through KartaView's own OpenStreetMap app (a code to paste).
#[tauri::command]
pub async fn start_kartaview_app_sign_in(
    state: Shared<'_>,
) -> Result<mtp_app::accounts::StartedIntegration, AppError> {
    state.app()?.start_kartaview_app_sign_in(true).await
}

/// Finishes that sign-in with the code OpenStreetMap showed.
#[tauri::command]
pub async fn finish_sign_in_with_code(state: Shared<'_>, code: String) -> Result<String, AppError> {
    state.app()?.finish_sign_in_with_code(&code).await
}

/// Connects a service with a token the user pasted (KartaView: upload-scripts' `osc.token`,
/// with the username KartaView cannot tell from it).
#[tauri::command]
pub async fn connect_with_token(
    state: Shared<'_>,
    service: mtp_core::Destination,
    token: String,
    username: Option<String>,
) -> Result<String, AppError> {
    state
        .app()?
        .connect_with_token(service, &token, username.as_deref())
        .await
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
pub async fn open_external(state: Shared<'_>, url: String) -> Result<(), AppError> {
    state.app()?.open_external(&url).await
}

/// The answer to "uploads are running: keep them going in the background or stop?".
#[tauri::command]
pub fn close_choice(
    app: tauri::AppHandle,
    choice: crate::window::CloseChoice,
) -> Result<(), AppError> {
    crate::window::apply_close_choice(&app, choice)
        .map_err(|e| AppError::new("window", format!("could not close the window: {e}")))
}

/// For each dropped path: "dir", "file" or "missing" (folders and photo files are read
/// differently).
#[tauri::command]
pub fn path_kinds(paths: Vec<String>) -> Vec<&'static str> {
    paths
        .iter()
        .map(|p| match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => "dir",
            Ok(_) => "file",
            Err(_) => "missing",
        })
        .collect()
}

#[tauri::command]
pub async fn sequence_page(
    state: Shared<'_>,
    id: i64,
) -> Result<mtp_app::manage::SequencePage, AppError> {
    state.app()?.sequence_page(id).await
}

#[tauri::command]
pub async fn photo_thumbnail(state: Shared<'_>, id: i64, path: String) -> Result<String, AppError> {
    state.app()?.photo_thumbnail(id, &path).await
}

#[tauri::command]
pub async fn edit_sequence(
    state: Shared<'_>,
    id: i64,
    meta: mtp_core::store::SequenceMeta,
) -> Result<mtp_app::manage::ChangeOutcome, AppError> {
    state.app()?.edit_sequence(id, meta).await
}

#[tauri::command]
pub async fn delete_plan(
    state: Shared<'_>,
    id: i64,
) -> Result<mtp_app::manage::DeletePlan, AppError> {
    state.app()?.delete_plan(id).await
}

#[tauri::command]
pub async fn delete_sequence(
    state: Shared<'_>,
    id: i64,
    everywhere: bool,
) -> Result<mtp_app::manage::ChangeOutcome, AppError> {
    state.app()?.delete_sequence(id, everywhere).await
}

#[tauri::command]
pub async fn retry_remote_actions(state: Shared<'_>, id: i64) -> Result<u64, AppError> {
    state.app()?.retry_remote_actions(id).await
}

/// A new search's id, known before it starts (so that it can be cancelled).
#[tauri::command]
pub fn new_search(state: Shared<'_>) -> Result<u64, AppError> {
    Ok(state.app()?.new_search())
}

/// Searches the services; images stream through `progress` as they arrive.
#[tauri::command]
pub async fn explore(
    state: Shared<'_>,
    search_id: u64,
    query: mtp_app::explore::ExploreQuery,
    progress: tauri::ipc::Channel<mtp_app::explore::ExploreProgress>,
) -> Result<mtp_app::explore::ExploreResult, AppError> {
    let app = state.app()?;
    let on = move |p: mtp_app::explore::ExploreProgress| {
        if let Err(e) = progress.send(p) {
            tracing::debug!("explore progress not delivered: {e}");
        }
    };
    app.explore(search_id, &query, &on).await
}

#[tauri::command]
pub fn cancel_search(state: Shared<'_>, search_id: u64) -> Result<bool, AppError> {
    Ok(state.app()?.cancel_search(search_id))
}

/// Writes a search's results as GeoJSON to the path the save dialog gave.
#[tauri::command]
pub async fn export_search(
    state: Shared<'_>,
    search_id: u64,
    path: String,
) -> Result<usize, AppError> {
    state
        .app()?
        .export_search(search_id, std::path::Path::new(&path))
        .await
}
