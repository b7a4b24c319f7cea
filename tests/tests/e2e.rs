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

/// Issue 9: a Mapillary row shows mapillary.com's four processing stages as a stepper that
/// moves through them (the emulator takes 8 s; each stage 2 s), with the times and raw
/// statuses on hover or focus.
#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn the_mapillary_stepper_goes_through_the_four_stages() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    let photos = photo_folder()?;
    let folder = photos.path().join("Morning walk");
    let app = Desktop::launch(&[
        ("MTP_OPENER", &opener.display().to_string()),
        ("MTP_SANDBOX_PROCESSING_MS", "8000"),
    ])
    .await?;
    app.click("#nav-integrations").await?;
    integrate(&app, "mapillary", &log, 1).await?;
    app.click("#nav-import").await?;
    drop_paths(&app, &[&folder]).await?;
    app.wait_for_text("#plan-stats", "photos kept", Duration::from_secs(30))
        .await?;
    app.client
        .execute(
            "const s = document.getElementById('seq-transport'); s.value = 'Walk'; s.dispatchEvent(new Event('change'));
             for (const d of ['kartaview', 'panoramax', 'mtpw']) {
               const b = document.getElementById('dest-' + d);
               if (b && b.checked) { b.checked = false; b.dispatchEvent(new Event('change')); }
             }",
            vec![],
        )
        .await?;
    app.click("#save-import").await?;

    // Watch the stepper: every state it shows, in order.
    let stepper = ".job[data-destination=mapillary] .mly-stepper";
    app.wait_for(fantoccini::Locator::Css(stepper), Duration::from_secs(60))
        .await?;
    let mut seen: Vec<String> = Vec::new();
    let mut shot_midway = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        // Read in the page: the row is re-rendered as the job changes.
        let stages = app
            .client
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.dataset.stages : '';",
                vec![serde_json::json!(stepper)],
            )
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !stages.is_empty() && seen.last() != Some(&stages) {
            seen.push(stages.clone());
        }
        if !shot_midway && stages.starts_with("done,done,running") {
            // Focus the running step: its times and raw statuses show.
            app.client
                .execute(
                    "document.querySelector('.mly-stepper .step-running').focus();",
                    vec![],
                )
                .await?;
            app.screenshot("09-mapillary-stepper-midway").await?;
            shot_midway = true;
        }
        if stages == "done,done,done,done" {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the stepper stopped at {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It went through the stages one after the other, never back.
    let rank = |s: &str| -> Vec<u8> {
        s.split(',')
            .map(|x| match x {
                "waiting" => 0,
                "running" => 1,
                "done" => 2,
                _ => 9,
            })
            .collect()
    };
    for w in seen.windows(2) {
        let (a, b) = (rank(&w[0]), rank(&w[1]));
        assert!(a.iter().zip(&b).all(|(x, y)| x <= y), "{seen:?}");
    }
    for stage in 0..4 {
        assert!(
            seen.iter().any(|s| rank(s)[stage] == 1),
            "stage {stage} was never shown running: {seen:?}"
        );
    }
    assert!(shot_midway, "{seen:?}");
    app.wait_for(
        fantoccini::Locator::Css(".job[data-destination=mapillary][data-status=done]"),
        Duration::from_secs(30),
    )
    .await?;
    app.client
        .execute(
            "document.querySelector('.mly-stepper .step:last-child').focus();",
            vec![],
        )
        .await?;
    let tip = app
        .wait_for_text(
            ".mly-stepper .step:last-child .step-tip",
            "FINISHED",
            Duration::from_secs(5),
        )
        .await?;
    assert!(tip.contains("Map update"), "{tip}");
    app.screenshot("10-mapillary-stepper-done").await?;

    // The card shows the account's stats from Mapillary.
    app.click("#nav-integrations").await?;
    app.wait_for_text(
        ".service-mapillary .mly-stats",
        "images",
        Duration::from_secs(15),
    )
    .await?;
    app.screenshot("11-mapillary-card-stats").await?;
    app.quit().await
}
