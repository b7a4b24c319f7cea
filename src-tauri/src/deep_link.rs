//! Deep links from the OS: at cold start (argv) and from a second instance
//! (forwarded by the single-instance plugin). Each URL goes to `App::handle_deep_link`.

use crate::AppState;
use std::sync::Arc;
use tauri::{AppHandle, Manager};
use tauri_plugin_deep_link::DeepLinkExt;

pub fn install(app: &mut tauri::App) -> Result<(), Box<dyn std::error::Error>> {
    // Installed packages register the scheme in their .desktop file; a dev build or a
    // portable binary registers itself at run time. Tests skip it to keep $HOME clean.
    #[cfg(any(target_os = "linux", windows))]
    if std::env::var_os("MTP_SKIP_REGISTER").is_none()
        && let Err(e) = app.deep_link().register_all()
    {
        tracing::warn!("could not register the app.mtp.desktop:// handler: {e}");
    }

    let handle = app.handle().clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            deliver(&handle, url.to_string());
        }
    });

    if let Ok(Some(urls)) = app.deep_link().get_current() {
        for url in urls {
            deliver(app.handle(), url.to_string());
        }
    }
    Ok(())
}

fn deliver(handle: &AppHandle, url: String) {
    let state = handle.state::<Arc<AppState>>().inner().clone();
    tauri::async_runtime::spawn(async move {
        let Ok(app) = state.app() else { return };
        if let Err(e) = app.handle_deep_link(&url).await {
            tracing::error!("deep link handling failed: {}", e.message);
        }
    });
}
