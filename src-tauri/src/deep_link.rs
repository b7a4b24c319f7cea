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
        && !installed_by_package()
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

/// A binary under /usr was put there by a package (.deb, .rpm) whose desktop entry already
/// handles the scheme. Registering at run time too would write a per-user handler into
/// ~/.local/share/applications and make it the user's default: it would shadow the package's
/// entry and outlive `apt-get remove`, leaving links pointing at a missing binary.
#[cfg(target_os = "linux")]
fn installed_by_package() -> bool {
    std::env::current_exe().is_ok_and(|exe| exe.starts_with("/usr/"))
}

/// Windows installers register the scheme too, but the binary cannot tell how it was
/// installed; registering for the current user is harmless there.
#[cfg(windows)]
fn installed_by_package() -> bool {
    false
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
