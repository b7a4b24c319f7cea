//! The main window. It only ever shows the app's own pages: a click on any other link (the
//! map's credits, a service's page) is stopped in the web view and handed to the system
//! browser through the same opener the app uses for sign-in pages.

use crate::AppState;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tauri::Url;
use tauri::webview::NewWindowResponse;
use tauri::{AppHandle, Emitter, Manager, WebviewWindowBuilder};

/// True for the pages the app itself serves: the bundled UI (`tauri://localhost` on Linux and
/// macOS, `http(s)://tauri.localhost` on Windows), the dev server when one is configured, and
/// `about:blank`.
pub fn is_app_url(url: &Url, dev_url: Option<&Url>) -> bool {
    match url.scheme() {
        "tauri" => true,
        "about" => url.path() == "blank",
        "http" | "https" => {
            url.host_str() == Some("tauri.localhost")
                || dev_url.is_some_and(|d| {
                    d.scheme() == url.scheme()
                        && d.host_str() == url.host_str()
                        && d.port_or_known_default() == url.port_or_known_default()
                })
        }
        _ => false,
    }
}

/// Opens `url` outside the app (web links to the services' sites only; anything else is
/// refused and logged).
fn open_outside(handle: &AppHandle, url: &Url) {
    let state = handle.state::<Arc<AppState>>().inner().clone();
    let url = url.clone();
    tauri::async_runtime::spawn(async move {
        let result = match state.app() {
            Ok(app) => app.open_external(url.as_str()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => tracing::info!(%url, "opened a link in the system browser"),
            Err(e) => tracing::warn!(%url, "not opening a link: {}", e.message),
        }
    });
}

/// Builds the main window from its configuration, with the navigation guard.
pub fn create_main(app: &tauri::App) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == "main")
        .cloned()
        .ok_or("tauri.conf.json has no window labelled \"main\"")?;
    // The title bar (and the task switcher) says when nothing leaves this computer.
    if let Ok(state) = app.state::<Arc<AppState>>().app()
        && state.overview().mode.mode == mtp_app::config::Mode::Sandbox
    {
        config.title = format!("{} (sandbox)", config.title);
    }
    let dev_url = app.config().build.dev_url.clone();
    let nav_handle = app.handle().clone();
    let nav_dev_url = dev_url.clone();
    let popup_handle = app.handle().clone();
    WebviewWindowBuilder::from_config(app.handle(), &config)?
        .on_navigation(move |url| {
            if is_app_url(url, nav_dev_url.as_ref()) {
                return true;
            }
            open_outside(&nav_handle, url);
            false
        })
        .on_new_window(move |url, _features| {
            // target=_blank and window.open: never a second web view, always the browser.
            tracing::debug!(%url, "the page asked for a new window");
            if !is_app_url(&url, dev_url.as_ref()) {
                open_outside(&popup_handle, &url);
            }
            NewWindowResponse::Deny
        })
        .build()?;
    Ok(())
}

/// Set once the user chose to quit (or nothing was uploading): the next close goes through.
static CLOSE_CONFIRMED: AtomicBool = AtomicBool::new(false);

pub fn close_confirmed() -> bool {
    CLOSE_CONFIRMED.load(Ordering::SeqCst)
}

/// The event the UI answers with a choice when the window is closed during uploads.
pub const CLOSE_EVENT: &str = "mtp://close-requested";

#[derive(Debug, Clone, Copy, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseChoice {
    /// Hide the window; uploads go on; the tray icon brings it back or quits.
    Background,
    /// Quit now; unfinished uploads resume at the next start.
    Quit,
}

/// The window's close button: quits at once when nothing is uploading, otherwise asks.
pub fn close_requested(handle: &AppHandle) {
    let handle = handle.clone();
    tauri::async_runtime::spawn(async move {
        let state = handle.state::<Arc<AppState>>().inner().clone();
        let active = match state.app() {
            Ok(app) => app.active_uploads().await.unwrap_or(0),
            Err(_) => 0,
        };
        if active == 0 {
            quit(&handle);
        } else if let Err(e) = handle.emit_to("main", CLOSE_EVENT, active) {
            tracing::warn!("could not ask before closing ({e}); quitting");
            quit(&handle);
        }
    });
}

fn quit(handle: &AppHandle) {
    CLOSE_CONFIRMED.store(true, Ordering::SeqCst);
    handle.exit(0);
}

pub fn apply_close_choice(handle: &AppHandle, choice: CloseChoice) -> tauri::Result<()> {
    match choice {
        CloseChoice::Quit => {
            quit(handle);
            Ok(())
        }
        CloseChoice::Background => {
            ensure_tray(handle)?;
            if let Some(w) = handle.get_webview_window("main") {
                w.hide()?;
            }
            Ok(())
        }
    }
}

/// The tray icon shown while the window is hidden: open the window again, or quit.
fn ensure_tray(handle: &AppHandle) -> tauri::Result<()> {
    use tauri::menu::{Menu, MenuItem};
    use tauri::tray::{MouseButton, TrayIconBuilder, TrayIconEvent};
    if handle.tray_by_id("mtp").is_some() {
        return Ok(());
    }
    let open = MenuItem::with_id(handle, "open", "Open MTP Desktop", true, None::<&str>)?;
    let quit_item = MenuItem::with_id(
        handle,
        "quit",
        "Quit (uploads resume at next start)",
        true,
        None::<&str>,
    )?;
    let menu = Menu::with_items(handle, &[&open, &quit_item])?;
    let mut tray = TrayIconBuilder::with_id("mtp")
        .tooltip("MTP Desktop: uploading in the background")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "open" => show_main(app),
            "quit" => quit(app),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                ..
            } = event
            {
                show_main(tray.app_handle());
            }
        });
    if let Some(icon) = handle.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(handle)?;
    Ok(())
}

fn show_main(handle: &AppHandle) {
    if let Some(w) = handle.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn only_the_apps_own_pages_stay_in_the_window() {
        for ok in [
            "tauri://localhost/",
            "tauri://localhost/index.html#x",
            "http://tauri.localhost/",
            "https://tauri.localhost/assets/a.js",
            "about:blank",
        ] {
            assert!(is_app_url(&u(ok), None), "{ok} should stay in the app");
        }
        for outside in [
            "https://leafletjs.com/",
            "https://www.openstreetmap.org/copyright",
            "http://127.0.0.1:4000/sequence/1",
            "http://localhost/",
            "https://tauri.localhost.evil.example/",
            "file:///etc/passwd",
            "about:srcdoc",
            "data:text/html,hi",
        ] {
            assert!(
                !is_app_url(&u(outside), None),
                "{outside} must leave the app"
            );
        }
        let dev = u("http://localhost:5173/");
        assert!(is_app_url(
            &u("http://localhost:5173/src/main.ts"),
            Some(&dev)
        ));
        assert!(!is_app_url(&u("http://localhost:5174/"), Some(&dev)));
    }
}
