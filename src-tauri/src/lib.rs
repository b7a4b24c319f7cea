//! The desktop shell: window, plugins, deep links and the bridge between the UI and
//! `mtp-app`. Commands stay thin: parse, call one `App` method, map the error.

mod commands;
mod deep_link;
mod window;

use mtp_app::{App, AppError, Settings};
use std::sync::Arc;
use tauri::{Emitter, Manager};

/// The app, or why it could not start (e.g. a corrupt database): the window still opens and
/// shows the reason instead of crashing.
pub(crate) struct AppState(pub Result<App, AppError>);

impl AppState {
    pub fn app(&self) -> Result<&App, AppError> {
        self.0.as_ref().map_err(Clone::clone)
    }
}

/// The one event name the UI listens to; payloads are `mtp_app::AppEvent`.
pub(crate) const EVENT: &str = "mtp://event";

pub fn run() {
    // Before any thread starts: settings files become environment variables.
    let settings_files = mtp_app::config::load_settings_files();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,mtp=debug".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    for path in &settings_files.read {
        tracing::info!("settings read from {}", path.display());
    }
    for problem in &settings_files.problems {
        tracing::warn!("{problem}");
    }

    let builder = tauri::Builder::default()
        // Must be first: a second launch hands its argv (and deep link) to us and exits.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            tracing::info!(?argv, "second instance forwarded its arguments");
            if let Some(window) = app.get_webview_window("main") {
                // It may be hidden, uploading in the background.
                let _ = window.show();
                let _ = window.unminimize();
                let _ = window.set_focus();
            }
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        // Links are opened from Rust only (window.rs and `open_external`): the plugin's own
        // click handler for target=_blank links would call a command the window may not use.
        .plugin(
            tauri_plugin_opener::Builder::new()
                .open_js_links_on_click(false)
                .build(),
        )
        .setup(|tauri_app| {
            let settings = Settings::from_env();
            let state = tauri::async_runtime::block_on(App::start(settings));
            if let Err(e) = &state {
                tracing::error!(code = e.code, "cannot start: {}", e.message);
            }
            if let Ok(app) = &state {
                forward_events(tauri_app.handle().clone(), app.clone());
                // Web pages open the platform's way (Linux, macOS, Windows) through the
                // opener plugin; the web view itself gets no opener permission.
                let handle = tauri_app.handle().clone();
                app.set_opener(Arc::new(move |url: &str| {
                    use tauri_plugin_opener::OpenerExt;
                    handle
                        .opener()
                        .open_url(url, None::<&str>)
                        .map_err(|e| e.to_string())
                }));
                // Uploads left mid-way by the last run resume now.
                let _guard = tauri::async_runtime::handle().inner().enter();
                if let Err(e) = app.start_engine() {
                    tracing::error!("cannot start the upload pipeline: {}", e.message);
                }
            }
            tauri_app.manage(Arc::new(AppState(state)));
            window::create_main(tauri_app)?;
            deep_link::install(tauri_app)?;
            Ok(())
        })
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event
                && window.label() == "main"
                && !window::close_confirmed()
            {
                api.prevent_close();
                window::close_requested(window.app_handle());
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_overview,
            commands::finish_first_run,
            commands::integrations,
            commands::mapillary_stats,
            commands::kartaview_stats,
            commands::panoramax_stats,
            commands::set_mtpw_mapillary_consent,
            commands::db_info,
            commands::notices,
            commands::prepare_folder,
            commands::save_import,
            commands::dry_run,
            commands::sequences,
            commands::sequence,
            commands::transport_types,
            commands::start_integration,
            commands::connect_panoramax,
            commands::start_panoramax_claim,
            commands::cancel_sign_in,
            commands::set_redirect_uri,
            commands::retry_kartaview,
            commands::start_kartaview_app_sign_in,
            commands::finish_sign_in_with_code,
            commands::connect_with_token,
            commands::disconnect,
            commands::job_action,
            commands::queue_upload,
            commands::open_external,
            commands::close_choice,
            commands::path_kinds,
            commands::sequence_page,
            commands::photo_thumbnail,
            commands::edit_sequence,
            commands::delete_plan,
            commands::delete_sequence,
            commands::retry_remote_actions,
            commands::new_search,
            commands::explore,
            commands::cancel_search,
            commands::export_search,
        ]);

    if let Err(e) = builder.run(tauri::generate_context!()) {
        eprintln!("MTP Desktop could not start: {e}");
        std::process::exit(1);
    }
}

/// Forwards engine events to the web view.
fn forward_events(handle: tauri::AppHandle, app: App) {
    let mut rx = app.subscribe();
    tauri::async_runtime::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    let _ = handle.emit(EVENT, &event);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(skipped = n, "UI event bridge lagged; the UI re-reads state");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}
