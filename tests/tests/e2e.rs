//! The real window: the built app under Xvfb, driven like a person would.
//! These need a display, tauri-driver and WebKitWebDriver: run them with `make e2e`
//! (part of `make test`).

#![allow(clippy::unwrap_used)]

use anyhow::Result;
use mtp_tests::desktop::Desktop;
use std::time::Duration;

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn the_three_places_are_there_and_say_what_to_do() -> Result<()> {
    let app = Desktop::launch(&[]).await?;
    app.wait_for_text("#mode-banner", "Sandbox mode", Duration::from_secs(10))
        .await?;

    app.click("#nav-integrations").await?;
    for service in ["Mapillary", "KartaView", "Panoramax", "Map the Paths Web"] {
        app.wait_for_text("#place-integrations", service, Duration::from_secs(10))
            .await?;
    }
    app.screenshot("01-integrations").await?;

    app.click("#nav-import").await?;
    app.wait_for_text(
        "#place-import",
        "Drop a folder of photos here",
        Duration::from_secs(10),
    )
    .await?;
    app.screenshot("02-import").await?;

    app.click("#nav-sequences").await?;
    app.wait_for_text(
        "#place-sequences",
        "No sequences yet",
        Duration::from_secs(10),
    )
    .await?;
    app.screenshot("03-sequences").await?;
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn a_second_launch_hands_its_deep_link_to_the_running_app_and_exits() -> Result<()> {
    let app = Desktop::launch(&[]).await?;
    let status = app.second_instance(
        &["app.mtp.desktop://app?code=x&state=y"],
        Duration::from_secs(20),
    )?;
    assert!(status.success(), "second instance exited with {status}");
    // The running app received it: the state matches no sign-in, so it is refused, visibly.
    let text = app
        .wait_for_text("#toasts", "Refused a sign-in link", Duration::from_secs(10))
        .await?;
    assert!(text.contains("does not match a sign-in started from this app"));
    app.screenshot("04-deep-link-refused").await?;
    app.quit().await
}

/// A folder of photos with something to show: a clean walk, a duplicate and a broken file.
fn photo_folder() -> Result<tempfile::TempDir> {
    use mtp_core::photo::fixture::{TrackSpec, write_track_folder};
    let dir = tempfile::tempdir()?;
    let folder = dir.path().join("Morning walk");
    let paths = write_track_folder(&folder, 40, &TrackSpec::default())?;
    std::fs::copy(&paths[10], folder.join("IMG_00010 copy.jpg"))?;
    std::fs::write(folder.join("broken.jpg"), b"\xff\xd8\xff\xe1 not really")?;
    Ok(dir)
}

/// What Tauri emits when a folder is dropped on the window (WebDriver cannot drag from the
/// file manager, so the test emits the same event the window would).
async fn drop_paths(app: &Desktop, paths: &[&std::path::Path]) -> Result<()> {
    // The window listens for drops once it has booted.
    app.wait_for(
        fantoccini::Locator::Css("body[data-ready=true] #dropzone"),
        Duration::from_secs(10),
    )
    .await?;
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    app.client
        .execute(
            "return window.__TAURI_INTERNALS__.invoke('plugin:event|emit_to', {
                target: { kind: 'Webview', label: 'main' },
                event: 'tauri://drag-drop',
                payload: { paths: arguments[0], position: { x: 200, y: 200 } }
            });",
            vec![serde_json::json!(paths)],
        )
        .await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn dropping_a_folder_shows_the_track_and_saves_the_sequence() -> Result<()> {
    let photos = photo_folder()?;
    let folder = photos.path().join("Morning walk");
    let app = Desktop::launch(&[]).await?;
    app.click("#nav-import").await?;
    drop_paths(&app, &[&folder]).await?;
    let stats = app
        .wait_for_text("#plan-stats", "photos kept", Duration::from_secs(30))
        .await?;
    assert!(stats.starts_with("1 sequence"), "{stats}");
    assert!(stats.contains("40 photos kept"), "{stats}");
    assert!(stats.contains("2 left out"), "{stats}");
    // The map drew the track (Leaflet renders into a canvas).
    app.wait_for(
        fantoccini::Locator::Css("#track-map.leaflet-container canvas"),
        Duration::from_secs(10),
    )
    .await?;
    app.wait_for_text(".left-out", "broken.jpg", Duration::from_secs(5))
        .await?;
    app.screenshot("05-import-plan").await?;

    app.client
        .execute("document.getElementById('seq-name').value = '';", vec![])
        .await?;
    app.type_into("#seq-name", "Morning walk to the market")
        .await?;
    app.client
        .execute(
            "const s = document.getElementById('seq-transport'); s.value = 'Walk'; s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await?;
    app.click("#save-import").await?;
    app.wait_for_text(
        "#place-sequences",
        "Morning walk to the market",
        Duration::from_secs(15),
    )
    .await?;
    app.screenshot("06-sequences-after-import").await?;

    // Importing the same folder again is recognised.
    app.click("#nav-import").await?;
    drop_paths(&app, &[&folder]).await?;
    app.wait_for_text(
        "#already-imported",
        "imported before",
        Duration::from_secs(30),
    )
    .await?;
    app.quit().await
}

/// Writes an opener that records the sign-in address instead of starting a browser.
fn recording_opener(dir: &std::path::Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("opened.txt");
    let script = dir.join("opener.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", log.display()),
    )?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    Ok((script, log))
}

/// Clicks Integrate, approves the page the app opened, and hands the deep link back the way
/// the OS does: by launching the app a second time with it.
async fn integrate(app: &Desktop, service: &str, log: &std::path::Path, nth: usize) -> Result<()> {
    app.click(&format!(".service-{service} [data-action=integrate]"))
        .await?;
    app.wait_for_text(
        &format!(".service-{service}"),
        "Waiting for you to approve",
        Duration::from_secs(10),
    )
    .await?;
    let authorize = wait_for_opened(log, nth).await?;
    let deep_link = mtp_app::sandbox_browser::approve(&authorize).await?;
    assert!(
        deep_link.starts_with("app.mtp.desktop://app"),
        "{deep_link}"
    );
    let status = app.second_instance(&[&deep_link], Duration::from_secs(20))?;
    assert!(status.success());
    app.wait_for_text(
        &format!(".service-{service} .status.ok"),
        "Connected as",
        Duration::from_secs(20),
    )
    .await?;
    Ok(())
}

async fn wait_for_opened(log: &std::path::Path, count: usize) -> Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(text) = std::fs::read_to_string(log)
            && let Some(line) = text.lines().nth(count - 1)
        {
            return Ok(line.to_string());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the app never opened a sign-in page"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn integrating_through_the_browser_and_the_deep_link_connects_the_account() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    let app = Desktop::launch(&[("MTP_OPENER", &opener.display().to_string())]).await?;
    app.click("#nav-integrations").await?;

    for (n, service) in ["mapillary", "kartaview"].iter().enumerate() {
        integrate(&app, service, &log, n + 1).await?;
    }
    app.screenshot("07-integrations-connected").await?;

    // A forged link (a state this app never issued) changes nothing and says so.
    app.click(".service-mapillary .danger").await?;
    app.wait_for_text(
        ".service-mapillary",
        "Not connected",
        Duration::from_secs(10),
    )
    .await?;
    let status = app.second_instance(
        &["app.mtp.desktop://app?code=stolen&state=forged"],
        Duration::from_secs(20),
    )?;
    assert!(status.success());
    app.wait_for_text("#toasts", "Refused a sign-in link", Duration::from_secs(10))
        .await?;
    app.wait_for_text(
        ".service-mapillary",
        "Not connected",
        Duration::from_secs(5),
    )
    .await?;
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn uploading_to_every_destination_reaches_done_with_links() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    let photos = photo_folder()?;
    let folder = photos.path().join("Morning walk");
    let app = Desktop::launch(&[
        ("MTP_OPENER", &opener.display().to_string()),
        ("MTP_SANDBOX_PROCESSING_MS", "300"),
    ])
    .await?;
    app.click("#nav-integrations").await?;
    for (n, service) in ["mapillary", "kartaview", "mtpw"].iter().enumerate() {
        integrate(&app, service, &log, n + 1).await?;
    }
    // Map the Paths Web asks once whether it may receive the Mapillary token.
    app.wait_for(
        fantoccini::Locator::Css(".service-mtpw [data-action=consent-allow]"),
        Duration::from_secs(10),
    )
    .await?;
    app.screenshot("07a-mtpw-consent-asked").await?;
    app.click(".service-mtpw [data-action=consent-allow]")
        .await?;
    app.wait_for_text(
        ".service-mtpw #mtpw-consent",
        "Your Mapillary token is sent to Map the Paths Web",
        Duration::from_secs(10),
    )
    .await?;
    app.click(".service-panoramax [data-action=connect]")
        .await?;
    app.wait_for_text(
        ".service-panoramax .status.ok",
        "Connected as",
        Duration::from_secs(20),
    )
    .await?;

    app.click("#nav-import").await?;
    drop_paths(&app, &[&folder]).await?;
    app.wait_for_text("#plan-stats", "photos kept", Duration::from_secs(30))
        .await?;
    app.client
        .execute(
            "const s = document.getElementById('seq-transport'); s.value = 'Walk'; s.dispatchEvent(new Event('change'));
             const m = document.getElementById('dest-mtpw'); m.checked = true; m.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await?;
    app.click("#save-import").await?;
    for d in ["mapillary", "kartaview", "panoramax"] {
        app.wait_for(
            fantoccini::Locator::Css(&format!(".job[data-destination={d}][data-status=done]")),
            Duration::from_secs(90),
        )
        .await?;
    }
    // Today's Map the Paths Web cannot check Mapillary accounts (the emulator's default):
    // the row says so in words and links to the sequence's page, instead of "Done".
    app.wait_for_text(
        ".job[data-destination=mtpw] .job-status",
        "linking it to Mapillary failed",
        Duration::from_secs(60),
    )
    .await?;
    app.wait_for(
        fantoccini::Locator::Css(".job[data-destination=mtpw] .job-link button"),
        Duration::from_secs(5),
    )
    .await?;
    // Every photo destination shows its link and full progress.
    for d in ["mapillary", "kartaview", "panoramax"] {
        let row = format!(".job[data-destination={d}]");
        app.wait_for_text(&row, "40/40 photos", Duration::from_secs(5))
            .await?;
        app.wait_for(
            fantoccini::Locator::Css(&format!("{row} .job-link button")),
            Duration::from_secs(5),
        )
        .await?;
    }
    app.screenshot("08-uploads-done").await?;
    app.quit().await
}

/// The sandbox's origin, read from a page the app opened (its emulators run inside it).
fn sandbox_origin(opened: &str) -> Result<String> {
    let u = url::Url::parse(opened)?;
    Ok(u.origin().ascii_serialization())
}

async fn sandbox_faults(origin: &str, spec: &str) -> Result<()> {
    let resp = reqwest::Client::new()
        .post(format!("{origin}/sandbox/faults"))
        .body(spec.to_string())
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "faults: {}", resp.status());
    Ok(())
}

fn free_loopback() -> Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(format!(
        "http://127.0.0.1:{}/callback",
        l.local_addr()?.port()
    ))
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn deep_link_and_loopback_sign_ins_both_connect() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    let app = Desktop::launch(&[("MTP_OPENER", &opener.display().to_string())]).await?;
    app.click("#nav-integrations").await?;

    // Deep link: Mapillary. While it waits, the card offers a loopback address in case the
    // link never comes back.
    app.click(".service-mapillary [data-action=integrate]")
        .await?;
    app.wait_for_text(
        ".service-mapillary details.redirect[open]",
        "Nothing came back to the app?",
        Duration::from_secs(10),
    )
    .await?;
    app.screenshot("09-deep-link-waiting").await?;
    let authorize = wait_for_opened(&log, 1).await?;
    let deep_link = mtp_app::sandbox_browser::approve(&authorize).await?;
    assert!(
        deep_link.starts_with("app.mtp.desktop://app"),
        "{deep_link}"
    );
    assert!(
        app.second_instance(&[&deep_link], Duration::from_secs(20))?
            .success()
    );
    app.wait_for_text(
        ".service-mapillary .status.ok",
        "Connected as",
        Duration::from_secs(20),
    )
    .await?;

    // Loopback: KartaView comes back to http://127.0.0.1:<port>/callback.
    let loopback = free_loopback()?;
    app.click(".service-kartaview details.redirect summary")
        .await?;
    app.replace_text("#redirect-kartaview", &loopback).await?;
    app.click(".service-kartaview [data-action=use-loopback]")
        .await?;
    app.wait_for_text(
        ".service-kartaview details.redirect summary",
        &loopback,
        Duration::from_secs(10),
    )
    .await?;
    app.click(".service-kartaview [data-action=integrate]")
        .await?;
    app.wait_for_text(
        ".service-kartaview .listening",
        &format!("Listening on {loopback}"),
        Duration::from_secs(10),
    )
    .await?;
    app.screenshot("10-loopback-listening").await?;
    let authorize = wait_for_opened(&log, 2).await?;
    let location = mtp_app::sandbox_browser::approve(&authorize).await?;
    assert!(location.starts_with(&loopback), "{location}");
    let (status, page) = mtp_app::sandbox_browser::follow(&location).await?;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You can close this tab"), "{page}");
    app.wait_for_text(
        ".service-kartaview .status.ok",
        "Connected as",
        Duration::from_secs(20),
    )
    .await?;
    app.wait_for_text(
        ".service-mapillary .status.ok",
        "Connected as",
        Duration::from_secs(5),
    )
    .await?;
    // The listener is gone once the sign-in is done.
    assert!(
        std::net::TcpStream::connect(url::Url::parse(&loopback)?.socket_addrs(|| None)?[0])
            .is_err()
    );
    app.screenshot("11-loopback-connected").await?;
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn kartaview_refusing_the_osm_sign_in_offers_to_paste_a_token() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    let app = Desktop::launch(&[("MTP_OPENER", &opener.display().to_string())]).await?;
    app.click("#nav-integrations").await?;
    app.click(".service-kartaview [data-action=integrate]")
        .await?;
    let authorize = wait_for_opened(&log, 1).await?;
    let origin = sandbox_origin(&authorize)?;
    sandbox_faults(&origin, "kartaview_refuse_osm_apps=400").await?;
    let deep_link = mtp_app::sandbox_browser::approve(&authorize).await?;
    let status = app.second_instance(&[&deep_link], Duration::from_secs(20))?;
    assert!(status.success());
    let text = app
        .wait_for_text(
            ".service-kartaview .sign-in-error",
            "KartaView said",
            Duration::from_secs(20),
        )
        .await?;
    assert!(
        text.contains(
            "\u{201c}Unexpected error. Please try again later.\u{201d} (HTTP 400, apiCode 690)"
        ),
        "{text}"
    );
    app.wait_for_text(
        ".service-kartaview .sign-in",
        "osc.token",
        Duration::from_secs(5),
    )
    .await?;
    app.wait_for(
        fantoccini::Locator::Css(".service-kartaview [data-action=retry]"),
        Duration::from_secs(5),
    )
    .await?;
    app.screenshot("12-kartaview-refused").await?;

    // Paste a KartaView token (as upload-scripts keeps it).
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{origin}/sandbox/tokens?service=kartaview&user=0"))
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"].as_str().unwrap().to_string();
    app.type_into("#kartaview-token", &token).await?;
    app.click(".service-kartaview [data-action=paste-token]")
        .await?;
    app.wait_for_text(
        ".service-kartaview .status.ok",
        "Connected as",
        Duration::from_secs(20),
    )
    .await?;
    app.screenshot("13-kartaview-token-pasted").await?;
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn panoramax_integrates_by_claiming_a_token_in_the_browser() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    let app = Desktop::launch(&[("MTP_OPENER", &opener.display().to_string())]).await?;
    app.click("#nav-integrations").await?;
    app.click(".service-panoramax [data-action=integrate]")
        .await?;
    app.wait_for_text(
        ".service-panoramax",
        "Waiting for you to claim the token",
        Duration::from_secs(10),
    )
    .await?;
    let claim = wait_for_opened(&log, 1).await?;
    assert!(claim.ends_with("/claim"), "{claim}");
    app.screenshot("14-panoramax-claim-waiting").await?;
    let page = mtp_app::sandbox_browser::claim(&claim).await?;
    assert!(page.contains("Token claimed"), "{page}");
    app.wait_for_text(
        ".service-panoramax .status.ok",
        "Connected as sandbox-user",
        Duration::from_secs(20),
    )
    .await?;
    app.screenshot("15-panoramax-claimed").await?;
    app.quit().await
}
