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
    if std::env::var_os("MTP_SKIP_REGISTER").is_none() && !installed_by_package() {
        match app.deep_link().register_all() {
            Ok(()) => {
                #[cfg(target_os = "linux")]
                bare_handler_exec(app);
            }
            Err(e) => tracing::warn!("could not register the app.mtp.desktop:// handler: {e}"),
        }
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

/// The plugin writes the handler's `Exec="<binary or AppImage>" %u`, quoted. Desktop
/// environments read that right, but xdg-utils' `xdg-open` without one (a bare window
/// manager, where AppImages are common) takes the first word literally, quotes included, and
/// starts nothing. A path that needs no quoting is written bare, which every reader takes.
#[cfg(target_os = "linux")]
fn bare_handler_exec(app: &tauri::App) {
    let (Ok(dir), Ok(exe)) = (app.path().data_dir(), std::env::current_exe()) else {
        return;
    };
    let Some(name) = exe.file_name() else { return };
    let file = dir
        .join("applications")
        .join(format!("{}-handler.desktop", name.to_string_lossy()));
    let Ok(text) = std::fs::read_to_string(&file) else {
        return;
    };
    let bare: String = text.lines().map(|l| bare_exec(l) + "\n").collect();
    if bare != text
        && let Err(e) = std::fs::write(&file, bare)
    {
        tracing::warn!("could not rewrite {}: {e}", file.display());
    }
}

/// `Exec="<path>" …` as `Exec=<path> …` when the path is made of characters no reader of
/// desktop entries treats specially; any other line as it is.
#[cfg(target_os = "linux")]
fn bare_exec(line: &str) -> String {
    if let Some(rest) = line.strip_prefix("Exec=\"")
        && let Some((path, tail)) = rest.split_once('"')
        && !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._+-".contains(c))
    {
        return format!("Exec={path}{tail}");
    }
    line.to_string()
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::bare_exec;

    #[test]
    fn a_plain_path_is_unquoted_and_anything_else_kept() {
        assert_eq!(
            bare_exec(r#"Exec="/home/ann/Apps/MTP_Desktop-0.1.0-x86_64.AppImage" %u"#),
            "Exec=/home/ann/Apps/MTP_Desktop-0.1.0-x86_64.AppImage %u"
        );
        for kept in [
            r#"Exec="/home/ann/My Apps/mtp.AppImage" %u"#,
            r#"Exec="/home/ann/$HOME/mtp" %u"#,
            "Exec=/usr/bin/mtp-desktop %u",
            "Name=MTP Desktop",
        ] {
            assert_eq!(bare_exec(kept), kept);
        }
    }
}
