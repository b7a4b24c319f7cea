//! The real window: the built app under Xvfb, driven like a person would.
//! These need a display, tauri-driver and WebKitWebDriver: run them with `make e2e`
//! (part of `make test`).

#![allow(clippy::unwrap_used)]

mod pipeline_support;

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

/// Another process runs the uploads of this data folder (here the test holds the lock that
/// `mtp upload` would) when the window opens: the window says so, above every place; when
/// that process ends, the notice goes and the window runs the uploads itself.
#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn uploads_run_by_another_process_are_said_and_then_taken_over() -> Result<()> {
    let data = tempfile::tempdir()?;
    // Sandbox mode keeps its database in sandbox/ under the data folder.
    std::fs::create_dir_all(data.path().join("sandbox"))?;
    let lock = std::fs::File::create(data.path().join("sandbox/mtp.db.engine.lock"))?;
    lock.try_lock()?;
    let dir = data.path().display().to_string();
    let app = Desktop::launch(&[("MTP_DATA_DIR", &dir)]).await?;
    let text = app
        .wait_for_text(
            "#elsewhere-banner",
            "Uploads are running in another MTP process",
            Duration::from_secs(10),
        )
        .await?;
    assert!(text.contains("mtp upload"), "{text}");
    app.click("#nav-sequences").await?;
    app.wait_for_text("#elsewhere-banner", "carries on", Duration::from_secs(5))
        .await?;
    app.screenshot("04a-uploads-elsewhere").await?;

    drop(lock);
    app.wait_for(
        fantoccini::Locator::Css("#elsewhere-banner[hidden]"),
        Duration::from_secs(15),
    )
    .await?;
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
        fantoccini::Locator::Css("body[data-ready=true]"),
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

    // A folder without a photo says so in its own words.
    let notes = photos.path().join("Notes only");
    std::fs::create_dir_all(&notes)?;
    std::fs::write(notes.join("notes.txt"), "Walk on Sunday\n")?;
    drop_paths(&app, &[&notes]).await?;
    let why = app
        .wait_for_text(
            "#nothing-to-upload",
            "This folder holds no photos",
            Duration::from_secs(30),
        )
        .await?;
    assert!(why.contains("its only file is a document"), "{why}");
    let left_out = app
        .client
        .find(fantoccini::Locator::Css("#left-out"))
        .await?
        .text()
        .await?;
    assert!(left_out.contains("No photo to leave out"), "{left_out}");
    assert!(
        !left_out.contains("every photo is in a sequence"),
        "{left_out}"
    );
    app.screenshot("07-import-no-photos").await?;
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
    app.screenshots("07-integrations-connected").await?;

    // A forged link (a state this app never issued) changes nothing and says so.
    app.click(".service-mapillary .danger").await?;
    // Disconnecting asks first.
    app.wait_for_text(
        "#confirm-dialog",
        "Disconnect Mapillary?",
        Duration::from_secs(5),
    )
    .await?;
    app.screenshots("09-disconnect-asks").await?;
    app.click("#confirm-yes").await?;
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
        // The bar is drawn full, as a person sees it (its box on screen, not a style value).
        let full = app
            .client
            .execute(
                "const p = document.querySelector(arguments[0] + ' .progress'); const b = p.firstElementChild.getBoundingClientRect(); const w = p.getBoundingClientRect().width; return [Math.round(b.width), Math.round(w)];",
                vec![serde_json::json!(row)],
            )
            .await?;
        assert!(
            full[0].as_f64().unwrap_or(0.0) >= full[1].as_f64().unwrap_or(1.0) - 1.0
                && full[1].as_f64().unwrap_or(0.0) > 100.0,
            "{d}: the bar is {full} px of its track"
        );
    }
    app.screenshots("08-uploads-done").await?;

    // The KartaView and Panoramax cards now say what the services hold for the account.
    app.click("#nav-integrations").await?;
    let kv = app
        .wait_for_text(
            ".service-kartaview [data-testid=kartaview-stats]",
            "40 photos",
            Duration::from_secs(20),
        )
        .await?;
    assert!(
        kv.starts_with("On KartaView: 40 photos")
            && kv.contains("1 track")
            && kv.contains("rank #1"),
        "{kv}"
    );
    let px = app
        .wait_for_text(
            ".service-panoramax [data-testid=panoramax-stats]",
            "40 photos",
            Duration::from_secs(20),
        )
        .await?;
    assert!(
        px.starts_with("On this instance: 40 photos")
            && px.contains(" km")
            && px.contains("sequence"),
        "{px}"
    );
    app.screenshots("08b-integrations-stats").await?;
    app.quit().await
}

/// The app's own page and the same document as before (nothing was loaded in its place).
async fn still_the_app(app: &Desktop, start: &url::Url) -> Result<()> {
    // Give a navigation that was not stopped time to happen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let url = app.client.current_url().await?;
    assert_eq!(
        (url.scheme(), url.host_str()),
        (start.scheme(), start.host_str()),
        "the window left the app for {url}"
    );
    app.wait_for(
        fantoccini::Locator::Css("#plan-stats"),
        Duration::from_secs(5),
    )
    .await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn every_link_opens_in_the_browser_and_the_window_stays_the_app() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    let photos = photo_folder()?;
    let folder = photos.path().join("Morning walk");
    let app = Desktop::launch(&[("MTP_OPENER", &opener.display().to_string())]).await?;
    app.click("#nav-import").await?;
    let start = app.client.current_url().await?;
    drop_paths(&app, &[&folder]).await?;
    app.wait_for_text("#plan-stats", "photos kept", Duration::from_secs(30))
        .await?;

    // The map's credit links.
    let mut opened = 0;
    app.click(".leaflet-control-attribution a[href*='leafletjs.com']")
        .await?;
    opened += 1;
    let url = wait_for_opened(&log, opened).await?;
    assert!(url.starts_with("https://leafletjs.com"), "{url}");
    still_the_app(&app, &start).await?;
    if let Ok(osm) = app
        .client
        .find(fantoccini::Locator::Css(
            ".leaflet-control-attribution a[href*='openstreetmap.org']",
        ))
        .await
    {
        osm.click().await?;
        opened += 1;
        let url = wait_for_opened(&log, opened).await?;
        assert!(url.contains("openstreetmap.org/copyright"), "{url}");
        still_the_app(&app, &start).await?;
    }

    // Any other kind: a plain link, one asking for a new window, a script navigating. To a
    // site the app works with, they open in the browser; to any other site, nowhere.
    app.client
        .execute(
            "const add = (id, href, target) => {
               const a = document.createElement('a');
               a.id = id; a.href = href; a.textContent = ' ' + id;
               if (target) a.target = target;
               document.getElementById('plan-stats').append(a);
             };
             add('plain-link', 'https://www.openstreetmap.org/plain');
             add('blank-link', 'https://openstreetmap.org/blank', '_blank');
             add('elsewhere-link', 'https://example.org/elsewhere');",
            vec![],
        )
        .await?;
    for (css, expected) in [
        ("#plain-link", "https://www.openstreetmap.org/plain"),
        ("#blank-link", "https://openstreetmap.org/blank"),
    ] {
        app.click(css).await?;
        opened += 1;
        assert_eq!(wait_for_opened(&log, opened).await?, expected);
        still_the_app(&app, &start).await?;
    }
    app.client
        .execute(
            "setTimeout(() => { window.location.href = 'https://www.openstreetmap.org/script'; }, 0); return true;",
            vec![],
        )
        .await?;
    opened += 1;
    assert_eq!(
        wait_for_opened(&log, opened).await?,
        "https://www.openstreetmap.org/script"
    );
    still_the_app(&app, &start).await?;
    app.click("#elsewhere-link").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lines = std::fs::read_to_string(&log)?.lines().count();
    assert_eq!(lines, opened, "a link to another site was opened");
    still_the_app(&app, &start).await?;
    app.quit().await
}

/// Writes `photos` as JPEGs into `dir`, named `<prefix>NNN.jpg`.
fn write_photos(
    dir: &std::path::Path,
    prefix: &str,
    photos: &[mtp_core::photo::fixture::FixturePhoto],
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (i, p) in photos.iter().enumerate() {
        mtp_core::photo::fixture::write_jpeg(&dir.join(format!("{prefix}{i:03}.jpg")), p)?;
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn left_out_files_are_grouped_by_reason_in_the_windows_words() -> Result<()> {
    use mtp_core::photo::fixture::{TrackSpec, track_photos, write_track_folder};
    let dir = tempfile::tempdir()?;
    let folder = dir.path().join("Mixed card");
    write_track_folder(&folder, 20, &TrackSpec::default())?;
    // Three photos without GPS, in a sub-folder; READMEs in two sub-folders; a video.
    let mut no_gps = track_photos(3, &TrackSpec::default());
    for p in &mut no_gps {
        p.lat = None;
        p.lon = None;
    }
    write_photos(&folder.join("phone"), "PXL_", &no_gps)?;
    for sub in ["a", "b"] {
        std::fs::create_dir_all(folder.join(sub))?;
        std::fs::write(folder.join(sub).join("README"), "notes about the trip\n")?;
    }
    std::fs::write(
        folder.join("clip.mp4"),
        b"\0\0\0\x18ftypisom\0\0\0\0isomiso2",
    )?;
    std::fs::write(folder.join("broken.jpg"), b"\xff\xd8\xff\xe1 not really")?;

    let app = Desktop::launch(&[]).await?;
    app.click("#nav-import").await?;
    drop_paths(&app, &[&folder]).await?;
    let stats = app
        .wait_for_text("#plan-stats", "photos kept", Duration::from_secs(30))
        .await?;
    assert!(stats.contains("20 photos kept"), "{stats}");
    assert!(stats.contains("4 left out"), "{stats}");
    assert!(stats.contains("3 not photos, ignored"), "{stats}");

    let group = app
        .wait_for_text(
            ".left-out-group[data-code=no_gps] summary",
            "No GPS position",
            Duration::from_secs(5),
        )
        .await?;
    assert!(group.contains('3'), "{group}");
    // Expanded: paths relative to the folder, each once; a GUI action.
    app.click(".left-out-group[data-code=no_gps] summary")
        .await?;
    let rows = app
        .wait_for_text(
            ".left-out-group[data-code=no_gps]",
            "phone/PXL_000.jpg",
            Duration::from_secs(5),
        )
        .await?;
    assert!(rows.contains("Add a GPX track"), "{rows}");
    assert_eq!(rows.matches("PXL_000").count(), 1, "{rows}");
    app.click("#not-photos summary").await?;
    let ignored = app
        .wait_for_text("#not-photos", "a/README", Duration::from_secs(5))
        .await?;
    assert!(
        ignored.contains("b/README") && ignored.contains("clip.mp4"),
        "{ignored}"
    );
    // Nothing speaks to the command line, nothing tells a README to become a JPEG.
    let page = app
        .wait_for(
            fantoccini::Locator::Css("#place-import"),
            Duration::from_secs(5),
        )
        .await?
        .text()
        .await?;
    for cli in [
        "--gpx",
        "--time-offset",
        "exiftool",
        "convert it to JPEG",
        "or drop it",
    ] {
        assert!(!page.contains(cli), "the window says {cli:?}: {page}");
    }
    app.screenshots("10-import-left-out-grouped").await?;
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn a_gpx_track_and_a_time_zone_rescue_photos_without_position_on_the_plan() -> Result<()> {
    use mtp_core::photo::fixture::{TrackSpec, gpx_for, track_photos};
    let dir = tempfile::tempdir()?;
    let folder = dir.path().join("Bike ride");
    // A camera without GPS, set to local time (+02:00) and not recording its zone.
    let spec = TrackSpec {
        utc_offset_minutes: None,
        ..TrackSpec::default()
    };
    let truth = track_photos(30, &spec);
    let mut photos = truth.clone();
    for p in &mut photos {
        p.lat = None;
        p.lon = None;
        p.captured_at_ms = p.captured_at_ms.map(|t| t + 2 * 3_600_000);
    }
    write_photos(&folder, "DSC", &photos)?;
    let track = dir.path().join("ride.gpx");
    std::fs::write(&track, gpx_for(&truth))?;

    let app = Desktop::launch(&[("TZ", "UTC")]).await?;
    app.click("#nav-import").await?;
    drop_paths(&app, &[&folder]).await?;
    app.wait_for_text(
        "#gpx-rescue",
        "30 photos have no usable position",
        Duration::from_secs(30),
    )
    .await?;
    app.screenshots("11-import-needs-gpx").await?;

    // The track, dropped on the plan: the photos are two hours off its time.
    drop_paths(&app, &[&track]).await?;
    app.wait_for_text("#gpx-used", "ride.gpx", Duration::from_secs(30))
        .await?;
    app.wait_for(
        fantoccini::Locator::Css(".left-out-group[data-code=outside_track]"),
        Duration::from_secs(5),
    )
    .await?;
    // The camera's zone, typed as a person would, then re-plan in place.
    let zone = app
        .wait_for(
            fantoccini::Locator::Css("#rescue-tz"),
            Duration::from_secs(5),
        )
        .await?;
    zone.send_keys("+02:00").await?;
    app.client
        .execute(
            "document.getElementById('rescue-tz').dispatchEvent(new Event('change'));",
            vec![],
        )
        .await?;
    app.click("#rescue-apply").await?;
    app.wait_for_text(
        "#gpx-used",
        "Positions of 30 photos came from the GPX track",
        Duration::from_secs(30),
    )
    .await?;
    let stats = app
        .wait_for_text("#plan-stats", "30 photos kept", Duration::from_secs(5))
        .await?;
    assert!(stats.contains("0 left out"), "{stats}");
    app.wait_for_text(
        "#plan-sequences",
        "30 positions from the GPX track",
        Duration::from_secs(5),
    )
    .await?;
    app.screenshots("12-import-placed-by-gpx").await?;

    // A new folder starts clean: the track and zone were for that folder only.
    let other = photo_folder()?;
    app.click(".plan-head button").await?;
    drop_paths(&app, &[&other.path().join("Morning walk")]).await?;
    app.wait_for_text("#plan-stats", "40 photos kept", Duration::from_secs(30))
        .await?;
    assert!(
        app.client
            .find(fantoccini::Locator::Css("#gpx-rescue"))
            .await
            .is_err(),
        "the previous folder's GPX track was applied to a new folder"
    );
    app.quit().await
}

/// The `checked` property of `css`.
async fn checked(app: &Desktop, css: &str) -> Result<bool> {
    let v = app
        .client
        .execute(
            "const el = document.querySelector(arguments[0]); return el ? el.checked : null;",
            vec![serde_json::json!(css)],
        )
        .await?;
    v.as_bool()
        .ok_or_else(|| anyhow::anyhow!("{css} is not on screen"))
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn stray_photos_are_unticked_named_sequences_are_saved_and_copies_are_flagged() -> Result<()>
{
    use mtp_core::photo::fixture::{FixturePhoto, TrackSpec, write_track_folder};
    let dir = tempfile::tempdir()?;
    let folder = dir.path().join("Holiday mix");
    let walk = write_track_folder(&folder, 20, &TrackSpec::default())?;
    // Three stray photos from other years, far apart.
    let strays = [
        (1_215_000_000_000_i64, 51.5, -0.12),
        (1_430_000_000_000, 40.4, -3.7),
        (1_590_000_000_000, 52.5, 13.4),
    ]
    .map(|(t, lat, lon)| FixturePhoto {
        make: Some("Old".into()),
        model: Some("Phone".into()),
        ..FixturePhoto::at(lat, lon, t)
    });
    write_photos(&folder, "OLD_", &strays)?;

    let app = Desktop::launch(&[]).await?;
    app.click("#nav-import").await?;
    drop_paths(&app, &[&folder]).await?;
    app.wait_for_text("#plan-stats", "4 sequences", Duration::from_secs(30))
        .await?;
    app.wait_for_text("#plan-warnings", "years", Duration::from_secs(5))
        .await?;
    // The walk is ticked, each stray one-photo sequence is not, and says why.
    let cards = app
        .client
        .execute(
            "return [...document.querySelectorAll('.plan-seq')].map(c => [c.dataset.index, c.textContent]);",
            vec![],
        )
        .await?;
    let mut walk_index = None;
    for c in cards.as_array().unwrap() {
        let (index, text) = (c[0].as_str().unwrap(), c[1].as_str().unwrap());
        let i: usize = index.parse()?;
        let ticked = checked(&app, &format!("#seq-include-{i}")).await?;
        if text.contains("20 photos") {
            assert!(ticked, "the walk is unticked: {text}");
            walk_index = Some(i);
        } else {
            assert!(!ticked, "a stray photo is ticked: {text}");
            assert!(text.contains("Only 1 photo:"), "{text}");
        }
    }
    let walk_index = walk_index.expect("the walk is on the plan");
    app.wait_for_text("#save-import", "Save 1 sequence", Duration::from_secs(5))
        .await?;
    app.screenshots("13-import-unintended-sequences").await?;

    let part = app
        .wait_for(
            fantoccini::Locator::Css(&format!("#seq-part-name-{walk_index}")),
            Duration::from_secs(5),
        )
        .await?;
    part.send_keys("Harbour walk").await?;
    app.click("#save-import").await?;
    app.wait_for_text("#place-sequences", "Harbour walk", Duration::from_secs(15))
        .await?;
    let names = app
        .client
        .execute(
            "return [...document.querySelectorAll('.seq-card h2')].map(h => h.textContent);",
            vec![],
        )
        .await?;
    assert_eq!(names, serde_json::json!(["Harbour walk"]));
    // Keyboard focus is on the saved sequence, not lost on the page body.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let focused = app
            .client
            .execute("return document.activeElement.textContent;", vec![])
            .await?;
        if focused == serde_json::json!("Harbour walk") {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "keyboard focus is on {focused:?}, not on the saved sequence"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The same photos, copied to another folder and renamed: flagged by content.
    let copy = dir.path().join("Copy for the club");
    std::fs::create_dir_all(&copy)?;
    for (i, p) in walk.iter().enumerate() {
        std::fs::copy(p, copy.join(format!("walk-{i}.jpg")))?;
    }
    app.click("#nav-import").await?;
    drop_paths(&app, &[&copy]).await?;
    let flagged = app
        .wait_for_text("#already-saved", "Harbour walk", Duration::from_secs(30))
        .await?;
    assert!(flagged.contains("20 photos in"), "{flagged}");
    app.screenshots("14-import-already-saved").await?;
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn two_cameras_are_told_apart_by_name_colour_and_order() -> Result<()> {
    use mtp_core::photo::fixture::{TrackSpec, write_track_folder};
    let dir = tempfile::tempdir()?;
    let folder = dir.path().join("Two cameras");
    write_track_folder(
        &folder,
        15,
        &TrackSpec {
            make: Some("GoPro".into()),
            model: Some("GoPro MAX".into()),
            serial: Some("GP1".into()),
            file_prefix: "GP_".into(),
            ..TrackSpec::default()
        },
    )?;
    write_track_folder(
        &folder.join("rear"),
        15,
        &TrackSpec {
            make: Some("Insta360".into()),
            model: Some("ONE X2".into()),
            serial: Some("IN1".into()),
            file_prefix: "IN_".into(),
            start_lon: 2.3530,
            bearing_deg: 135.0,
            ..TrackSpec::default()
        },
    )?;
    let app = Desktop::launch(&[]).await?;
    app.click("#nav-import").await?;
    drop_paths(&app, &[&folder]).await?;
    app.wait_for_text("#plan-stats", "2 sequences", Duration::from_secs(30))
        .await?;
    let cards = app
        .client
        .execute(
            "return document.getElementById('plan-sequences').textContent;",
            vec![],
        )
        .await?
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(cards.contains("GoPro MAX"), "{cards}");
    assert!(cards.contains("Insta360 ONE X2"), "{cards}");
    assert!(
        cards.contains("rear/") && cards.contains("top folder"),
        "{cards}"
    );
    let legend = app
        .wait_for_text("#map-legend", "Sequence 2", Duration::from_secs(5))
        .await?;
    assert!(
        legend.contains("GoPro MAX") && legend.contains("ONE X2"),
        "{legend}"
    );
    let colours = app
        .client
        .execute(
            "return [...document.querySelectorAll('#map-legend .swatch')].map(s => s.style.background);",
            vec![],
        )
        .await?;
    let colours = colours.as_array().unwrap();
    assert_eq!(colours.len(), 2);
    assert_ne!(colours[0], colours[1]);
    app.screenshots("15-import-two-cameras").await?;

    app.click("#save-import").await?;
    app.wait_for_text("#place-sequences", "Part 2", Duration::from_secs(15))
        .await?;
    let names = app
        .client
        .execute(
            "return [...document.querySelectorAll('.seq-card h2')].map(h => h.textContent);",
            vec![],
        )
        .await?;
    assert_eq!(
        names,
        serde_json::json!(["Two cameras Part 1", "Two cameras Part 2"])
    );
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn every_screen_holds_at_900x600_and_1920x1080_and_closing_asks_about_uploads() -> Result<()>
{
    let photos = photo_folder()?;
    let folder = photos.path().join("Morning walk");
    let app = Desktop::launch(&[("MTP_SANDBOX_PROCESSING_MS", "600000")]).await?;
    app.wait_for_text("#mode-banner", "Sandbox mode", Duration::from_secs(10))
        .await?;
    app.click("#nav-integrations").await?;
    app.wait_for_text(
        "#place-integrations",
        "Map the Paths Web",
        Duration::from_secs(10),
    )
    .await?;
    app.screenshots("20-integrations").await?;
    app.click(".service-panoramax [data-action=connect]")
        .await?;
    app.wait_for_text(
        ".service-panoramax .status.ok",
        "Connected as",
        Duration::from_secs(20),
    )
    .await?;
    app.click("#nav-sequences").await?;
    app.wait_for_text(
        "#place-sequences",
        "No sequences yet",
        Duration::from_secs(10),
    )
    .await?;
    app.screenshots("21-sequences-empty").await?;
    app.click("#nav-import").await?;
    app.wait_for_text("#place-import", "Drop a folder", Duration::from_secs(10))
        .await?;
    app.screenshots("22-import-start").await?;

    drop_paths(&app, &[&folder]).await?;
    app.wait_for_text("#plan-stats", "photos kept", Duration::from_secs(30))
        .await?;
    // Services that are not connected are offered unticked, with the way to connect them.
    assert!(!checked(&app, "#dest-mapillary").await?);
    app.wait_for_text(
        "label.dest:has(#dest-mapillary)",
        "not connected",
        Duration::from_secs(5),
    )
    .await?;
    assert!(checked(&app, "#dest-panoramax").await?);
    app.screenshots("23-import-plan").await?;
    // Mapillary too, to have a row waiting for sign-in with its long message.
    app.client
        .execute(
            "const m = document.getElementById('dest-mapillary'); m.checked = true; m.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await?;
    app.click("#save-import").await?;
    app.wait_for(
        fantoccini::Locator::Css(".job[data-destination=mapillary][data-status=waiting_auth]"),
        Duration::from_secs(30),
    )
    .await?;
    // Panoramax uploads, then waits for the (slow) processing: an active upload.
    app.wait_for(
        fantoccini::Locator::Css(".job[data-destination=panoramax][data-stage=poll]"),
        Duration::from_secs(60),
    )
    .await?;
    app.screenshots("24-sequences-uploading").await?;

    // Closing the window now asks, and says what happens to the uploads.
    let close =
        "return window.__TAURI_INTERNALS__.invoke('plugin:window|close', { label: 'main' });";
    app.client.execute(close, vec![]).await?;
    let dialog = app
        .wait_for_text("#close-dialog", "resume", Duration::from_secs(10))
        .await?;
    assert!(
        dialog.contains("Keep uploading in the background"),
        "{dialog}"
    );
    app.screenshots("25-close-while-uploading").await?;
    app.click("#close-cancel").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        app.client
            .find(fantoccini::Locator::Css("#close-dialog"))
            .await
            .is_err()
    );
    // In the background: the window goes away (seen from X, as a person would: the web
    // view is not asked while hidden), the app keeps running, a new launch shows it again.
    app.client.execute(close, vec![]).await?;
    app.wait_for(
        fantoccini::Locator::Css("#close-background"),
        Duration::from_secs(10),
    )
    .await?;
    app.client
        .execute(
            "setTimeout(() => document.getElementById('close-background').click(), 50); return true;",
            vec![],
        )
        .await?;
    wait_for_window_mapped(false).await?;
    let status = app.second_instance(&[], Duration::from_secs(20))?;
    assert!(status.success());
    wait_for_window_mapped(true).await?;
    app.wait_for(
        fantoccini::Locator::Css(".job[data-destination=panoramax]"),
        Duration::from_secs(5),
    )
    .await?;
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn photos_already_on_panoramax_say_so_and_link_to_where_they_are() -> Result<()> {
    let photos = photo_folder()?;
    let folder = photos.path().join("Morning walk");
    let app = Desktop::launch(&[("MTP_SANDBOX_PROCESSING_MS", "300")]).await?;
    app.click("#nav-integrations").await?;
    app.click(".service-panoramax [data-action=connect]")
        .await?;
    app.wait_for_text(
        ".service-panoramax .status.ok",
        "Connected as",
        Duration::from_secs(20),
    )
    .await?;
    for (n, source) in [folder.clone(), photos.path().join("Copy")]
        .iter()
        .enumerate()
    {
        if n == 1 {
            std::fs::create_dir_all(source)?;
            for e in std::fs::read_dir(&folder)? {
                let e = e?;
                std::fs::copy(e.path(), source.join(e.file_name()))?;
            }
        }
        app.click("#nav-import").await?;
        drop_paths(&app, &[source]).await?;
        app.wait_for_text("#plan-stats", "photos kept", Duration::from_secs(30))
            .await?;
        if n == 1 {
            app.wait_for_text("#already-saved", "40 photos in", Duration::from_secs(5))
                .await?;
        }
        app.click("#save-import").await?;
        app.wait_for(
            fantoccini::Locator::Css(&format!(
                ".seq-card:nth-child({}) .job[data-destination=panoramax][data-status=done]",
                1
            )),
            Duration::from_secs(90),
        )
        .await?;
    }
    // The newest card (on top) is the copy: nothing new was made, and the row says so.
    let row = ".seq-card:first-child .job[data-destination=panoramax]";
    app.wait_for_text(row, "Already on Panoramax", Duration::from_secs(10))
        .await?;
    let link = app
        .wait_for(
            fantoccini::Locator::Css(&format!("{row} .job-link button")),
            Duration::from_secs(5),
        )
        .await?;
    let title = link.attr("title").await?.unwrap_or_default();
    assert!(title.contains("focus=pic&pic="), "{title}");
    app.screenshots("16-sequences-already-on-panoramax").await?;
    app.quit().await
}

/// Waits until the app's window is shown (`true`) or hidden (`false`) on the X display.
async fn wait_for_window_mapped(shown: bool) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let out = std::process::Command::new("xdotool")
            .args([
                "search",
                "--onlyvisible",
                "--name",
                r"^MTP Desktop( \(sandbox\))?$",
            ])
            .output()?;
        let visible = !String::from_utf8_lossy(&out.stdout).trim().is_empty();
        if visible == shown {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the window was never {}",
            if shown { "shown again" } else { "hidden" }
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn dropped_photo_files_and_several_folders_are_understood() -> Result<()> {
    let photos = photo_folder()?;
    let folder = photos.path().join("Morning walk");
    let app = Desktop::launch(&[]).await?;
    // Dragging over any screen highlights the whole window.
    app.click("#nav-sequences").await?;
    app.wait_for(
        fantoccini::Locator::Css("body[data-ready=true]"),
        Duration::from_secs(10),
    )
    .await?;
    app.client
        .execute(
            "return window.__TAURI_INTERNALS__.invoke('plugin:event|emit_to', {
                target: { kind: 'Webview', label: 'main' },
                event: 'tauri://drag-enter',
                payload: { paths: arguments[0], position: { x: 200, y: 200 } }
            });",
            vec![serde_json::json!([folder.display().to_string()])],
        )
        .await?;
    app.wait_for(
        fantoccini::Locator::Css("body.drag-hover"),
        Duration::from_secs(5),
    )
    .await?;
    app.screenshot("17-drag-over-sequences").await?;

    // Ten photo files, not a folder: just those are read.
    let files: Vec<std::path::PathBuf> = (0..10)
        .map(|i| folder.join(format!("IMG_{i:05}.jpg")))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(files.len(), 10, "fixture names changed");
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    drop_paths(&app, &refs).await?;
    let stats = app
        .wait_for_text("#plan-stats", "photos kept", Duration::from_secs(30))
        .await?;
    assert!(
        stats.contains("10 photos kept") && stats.contains("0 left out"),
        "{stats}"
    );

    // Two folders: the first is read and the window says what happened to the other.
    let other = tempfile::tempdir()?;
    app.click(".plan-head button").await?;
    drop_paths(&app, &[&folder, other.path()]).await?;
    app.wait_for_text(
        "#toasts",
        "Drop the others one at a time",
        Duration::from_secs(10),
    )
    .await?;
    app.wait_for_text("#plan-stats", "40 photos kept", Duration::from_secs(30))
        .await?;
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

/// Clicks Integrate on KartaView with KartaView refusing our OSM app
/// (`kartaview_refuse_osm_apps=<refusal>`), approves, hands the deep link back, and waits
/// for the card to quote KartaView. Returns the sandbox's origin and the card's words.
async fn integrate_kartaview_refused(
    app: &Desktop,
    log: &std::path::Path,
    refusal: &str,
) -> Result<(String, String)> {
    app.click("#nav-integrations").await?;
    app.click(".service-kartaview [data-action=integrate]")
        .await?;
    let authorize = wait_for_opened(log, 1).await?;
    let origin = sandbox_origin(&authorize)?;
    sandbox_faults(&origin, &format!("kartaview_refuse_osm_apps={refusal}")).await?;
    let deep_link = mtp_app::sandbox_browser::approve(&authorize).await?;
    assert!(
        app.second_instance(&[&deep_link], Duration::from_secs(20))?
            .success()
    );
    let text = app
        .wait_for_text(
            ".service-kartaview .sign-in-error",
            "KartaView said",
            Duration::from_secs(20),
        )
        .await?;
    Ok((origin, text))
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn kartaview_refusing_the_osm_sign_in_offers_to_paste_a_token() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    let app = Desktop::launch(&[("MTP_OPENER", &opener.display().to_string())]).await?;
    let (origin, text) = integrate_kartaview_refused(&app, &log, "400").await?;
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
    app.type_into("#kartaview-username", mtp_sandbox::SANDBOX_USERNAME)
        .await?;
    app.click(".service-kartaview [data-action=paste-token]")
        .await?;
    app.wait_for_text(
        ".service-kartaview .status.ok",
        &format!("Connected as {}", mtp_sandbox::SANDBOX_USERNAME),
        Duration::from_secs(20),
    )
    .await?;
    app.screenshot("13-kartaview-token-pasted").await?;
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn kartaview_refusing_our_osm_app_signs_in_through_kartaviews_app_with_a_pasted_code()
-> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    let app = Desktop::launch(&[("MTP_OPENER", &opener.display().to_string())]).await?;
    let (_, text) = integrate_kartaview_refused(&app, &log, "401").await?;
    assert!(
        text.contains("sign in through KartaView's own app"),
        "{text}"
    );

    // KartaView's own OSM app: the browser opens OpenStreetMap, which shows a code.
    app.click(".service-kartaview [data-action=kartaview-app]")
        .await?;
    let page = wait_for_opened(&log, 2).await?;
    assert!(
        page.contains(mtp_sandbox::KARTAVIEW_OSM_CLIENT_ID),
        "{page}"
    );
    app.wait_for_text(
        ".service-kartaview .sign-in",
        "OpenStreetMap then shows a code: paste it here",
        Duration::from_secs(10),
    )
    .await?;
    let code = mtp_app::sandbox_browser::approve_code(&page).await?;

    // A mistyped code keeps the sign-in waiting, says why, and keeps what was typed.
    app.type_into("#kartaview-code", "not-the-code").await?;
    app.click(".service-kartaview [data-action=paste-code]")
        .await?;
    app.wait_for_text(
        ".service-kartaview .sign-in-error",
        "OpenStreetMap did not accept this code",
        Duration::from_secs(10),
    )
    .await?;
    let typed = app
        .run_in_page(
            "return document.getElementById('kartaview-code').value;",
            Duration::from_secs(5),
        )
        .await?;
    assert_eq!(typed, "not-the-code");
    app.screenshot("12a-kartaview-code-asked").await?;

    // The right code, pasted with Enter.
    let enter = char::from(fantoccini::key::Key::Enter);
    app.replace_text("#kartaview-code", &format!("{code}{enter}"))
        .await?;
    app.wait_for_text(
        ".service-kartaview .status.ok",
        &format!("Connected as {}", mtp_sandbox::SANDBOX_USERNAME),
        Duration::from_secs(20),
    )
    .await?;
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn panoramax_claims_a_token_in_the_browser_and_opens_its_terms_when_asked() -> Result<()> {
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

    // The instance asks for its terms of service before the first upload: the row says so
    // (not "sign in again") and opens the page; once they are accepted, Retry sends.
    sandbox_faults(&sandbox_origin(&claim)?, "panoramax_tos=enforce").await?;
    let photos = photo_folder()?;
    app.click("#nav-import").await?;
    drop_paths(&app, &[&photos.path().join("Morning walk")]).await?;
    app.wait_for_text("#plan-stats", "photos kept", Duration::from_secs(30))
        .await?;
    app.click("#save-import").await?;
    let row = ".seq-card:first-child .job[data-destination=panoramax]";
    app.wait_for(
        fantoccini::Locator::Css(&format!("{row}[data-status=failed]")),
        Duration::from_secs(60),
    )
    .await?;
    app.wait_for_text(row, "accept the terms of service", Duration::from_secs(5))
        .await?;
    app.screenshot("15a-panoramax-terms-to-accept").await?;
    app.click(&format!("{row} .open-named")).await?;
    let terms = wait_for_opened(&log, 2).await?;
    assert!(terms.ends_with("/panoramax/tos-validation"), "{terms}");
    let accepted = reqwest::Client::new().post(&terms).send().await?;
    anyhow::ensure!(accepted.status().is_success(), "{}", accepted.status());
    app.click(&format!(
        "{row} .job-actions button:not(.open-named):not(.danger)"
    ))
    .await?;
    app.wait_for(
        fantoccini::Locator::Css(&format!("{row}[data-status=done]")),
        Duration::from_secs(60),
    )
    .await?;
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
    // Like Mapillary, the emulator's activity feed refuses the user's own token: the user
    // has set the web client token (README, Mapillary setup), which it answers.
    let app = Desktop::launch(&[
        ("MTP_OPENER", &opener.display().to_string()),
        ("MTP_SANDBOX_PROCESSING_MS", "8000"),
        (
            "MAPILLARY_WEB_CLIENT_TOKEN",
            mtp_sandbox::MAPILLARY_WEB_CLIENT_TOKEN,
        ),
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

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn a_sequence_page_steps_through_photos_renames_and_deletes_everywhere() -> Result<()> {
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
    integrate(&app, "kartaview", &log, 1).await?;
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
    // Check first: what would be sent where, and whether the accounts can upload; nothing
    // is sent.
    app.click("#check-import").await?;
    app.wait_for_text("#check-dialog", "nothing was sent", Duration::from_secs(20))
        .await?;
    app.wait_for_text("#check-dialog", "sequenceIndex", Duration::from_secs(5))
        .await?;
    app.wait_for_text("#check-dialog", "Panoramax", Duration::from_secs(5))
        .await?;
    app.screenshot("19-import-check").await?;
    app.click("#check-close").await?;
    app.click("#save-import").await?;
    for d in ["kartaview", "panoramax"] {
        app.wait_for(
            fantoccini::Locator::Css(&format!(".job[data-destination={d}][data-status=done]")),
            Duration::from_secs(90),
        )
        .await?;
    }

    // The page: the track, the first photo with its thumbnail and EXIF, where it is.
    app.click(".seq-card [data-action=open]").await?;
    app.wait_for_text("#page-title", "Morning walk", Duration::from_secs(10))
        .await?;
    app.wait_for_text("#photo-pos", "Photo 1 of 40", Duration::from_secs(30))
        .await?;
    app.wait_for(
        fantoccini::Locator::Css("#photo-thumb[src^='data:image/jpeg']"),
        Duration::from_secs(20),
    )
    .await?;
    app.wait_for_text("#photo-exif", "Taken", Duration::from_secs(5))
        .await?;
    app.wait_for_text(
        ".page-dest[data-destination=kartaview]",
        "View on KartaView",
        Duration::from_secs(5),
    )
    .await?;
    app.screenshot("20-sequence-page").await?;
    // The arrow keys step through the photos.
    let body = app.client.find(fantoccini::Locator::Css("body")).await?;
    body.send_keys("\u{E014}").await?;
    body.send_keys("\u{E014}").await?;
    app.wait_for_text("#photo-pos", "Photo 3 of 40", Duration::from_secs(5))
        .await?;
    body.send_keys("\u{E012}").await?;
    app.wait_for_text("#photo-pos", "Photo 2 of 40", Duration::from_secs(5))
        .await?;
    // Past the last kept photo: the ones left out, with why.
    app.client
        .execute(
            "for (let i = 0; i < 45; i++) document.getElementById('photo-next').click();",
            vec![],
        )
        .await?;
    app.wait_for_text("#photo-pos", "Left out", Duration::from_secs(5))
        .await?;
    app.wait_for_text("#photo-reason", "Left out:", Duration::from_secs(5))
        .await?;
    app.screenshot("21-sequence-page-left-out").await?;

    // Renamed here and on Panoramax; the dialog says what the others cannot do.
    app.click("#page-edit").await?;
    app.wait_for_text(
        "#edit-dialog",
        "KartaView has no API to rename",
        Duration::from_secs(5),
    )
    .await?;
    app.replace_text("#edit-name", "Morning walk by the river")
        .await?;
    app.screenshot("22-sequence-edit").await?;
    app.click("#edit-save").await?;
    app.wait_for_text(
        "#page-title",
        "Morning walk by the river",
        Duration::from_secs(10),
    )
    .await?;
    app.wait_for(
        fantoccini::Locator::Css(
            ".page-dest[data-destination=panoramax] [data-action-status=done]",
        ),
        Duration::from_secs(30),
    )
    .await?;
    app.wait_for_text("#page-history", "Edited", Duration::from_secs(5))
        .await?;

    // Deleted everywhere: the confirmation lists what goes where, then the list is empty.
    app.click("#page-delete").await?;
    app.wait_for_text(
        "#delete-remote",
        "KartaView sequence",
        Duration::from_secs(5),
    )
    .await?;
    app.wait_for_text("#delete-remote", "Panoramax", Duration::from_secs(5))
        .await?;
    app.wait_for_text("#delete-local", "are not touched", Duration::from_secs(5))
        .await?;
    app.screenshot("23-sequence-delete-confirm").await?;
    app.click("#delete-everywhere").await?;
    app.wait_for_text(
        "#place-sequences",
        "No sequences yet",
        Duration::from_secs(60),
    )
    .await?;
    app.wait_for_text("#toasts", "deleted everywhere", Duration::from_secs(5))
        .await?;
    app.screenshot("24-sequence-deleted").await?;
    assert!(
        folder.join("IMG_00001.jpg").is_file() || std::fs::read_dir(&folder)?.count() >= 40,
        "the photo files stay"
    );
    app.quit().await
}

// Explore and "Show what is already here": the sandbox's seeded world has a few thousand
// images around Paris (where the test photos are taken) on Mapillary, KartaView and Panoramax.

/// Chooses `value` in the select `css`, as a person picking it would (a change event).
async fn choose(app: &Desktop, css: &str, value: &str) -> Result<()> {
    app.client
        .execute(
            "const s = document.querySelector(arguments[0]); s.value = arguments[1]; s.dispatchEvent(new Event('change'));",
            vec![serde_json::json!(css), serde_json::json!(value)],
        )
        .await?;
    Ok(())
}

/// Waits until every service chip under `chips` says how its search ended; returns each
/// service's state and image count.
async fn search_ended(
    app: &Desktop,
    chips: &str,
) -> Result<std::collections::BTreeMap<String, (String, u64)>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let v = app
            .client
            .execute(
                "const chips = [...document.querySelectorAll(arguments[0] + ' .chip')];
                 if (chips.length === 0 || chips.some(c => c.dataset.state === 'waiting' || c.dataset.state === 'running')) return null;
                 return chips.map(c => [c.dataset.service, c.dataset.state, Number(c.dataset.count)]);",
                vec![serde_json::json!(chips)],
            )
            .await?;
        if let Some(rows) = v.as_array() {
            return Ok(rows
                .iter()
                .map(|r| {
                    (
                        r[0].as_str().unwrap_or_default().to_string(),
                        (
                            r[1].as_str().unwrap_or_default().to_string(),
                            r[2].as_u64().unwrap_or(0),
                        ),
                    )
                })
                .collect());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the search under {chips} never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A real pointer click at window coordinates (the points are drawn on a canvas).
async fn click_at(app: &Desktop, x: f64, y: f64) -> Result<()> {
    use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
    let click = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x,
            y,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    app.client.perform_actions(click).await?;
    app.client.release_actions().await?;
    Ok(())
}

/// A drag with the mouse from one window point to another.
async fn drag(app: &Desktop, from: (f64, f64), to: (f64, f64)) -> Result<()> {
    use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
    let step = |f: f64| PointerAction::MoveTo {
        duration: Some(Duration::from_millis(60)),
        x: from.0 + (to.0 - from.0) * f,
        y: from.1 + (to.1 - from.1) * f,
    };
    let drag = MouseActions::new("mouse".into())
        .then(step(0.0))
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(step(0.3))
        .then(step(0.7))
        .then(step(1.0))
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    app.client.perform_actions(drag).await?;
    app.client.release_actions().await?;
    Ok(())
}

/// Zooms into clusters until single image points are drawn; returns one (id, x, y).
async fn zoom_to_a_point(app: &Desktop, layer: &str, map: &str) -> Result<(String, f64, f64)> {
    for _ in 0..10 {
        let v = app
            .client
            .execute(
                "const f = (window.__mtpFound || {})[arguments[0]]; return f ? f() : [];",
                vec![serde_json::json!(layer)],
            )
            .await?;
        if let Some(p) = v.as_array().and_then(|a| a.first()) {
            return Ok((
                p["id"].as_str().unwrap_or_default().to_string(),
                p["x"].as_f64().unwrap_or(0.0),
                p["y"].as_f64().unwrap_or(0.0),
            ));
        }
        // A cluster zooms to where it splits: the one nearest the middle of the map (some
        // are drawn just outside it, ready for panning).
        let c = app
            .client
            .execute(
                "const m = document.querySelector(arguments[0]).getBoundingClientRect();
                 const mx = (m.left + m.right) / 2, my = (m.top + m.bottom) / 2;
                 const all = ((window.__mtpFoundClusters || {})[arguments[1]] || (() => []))();
                 all.sort((a, b) => Math.hypot(a.x - mx, a.y - my) - Math.hypot(b.x - mx, b.y - my));
                 return all.length ? [all[0].x, all[0].y] : null;",
                vec![serde_json::json!(map), serde_json::json!(layer)],
            )
            .await?;
        match c.as_array() {
            Some(c) => {
                click_at(
                    app,
                    c[0].as_f64().unwrap_or(0.0),
                    c[1].as_f64().unwrap_or(0.0),
                )
                .await?
            }
            None => {
                app.click(&format!("{map} .leaflet-control-zoom-in"))
                    .await?
            }
        }
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    anyhow::bail!("no single image point was ever drawn on the {layer} map")
}

/// The map's box in window coordinates: left, top, right, bottom.
async fn rect_of(app: &Desktop, css: &str) -> Result<(f64, f64, f64, f64)> {
    let v = app
        .client
        .execute(
            "const r = document.querySelector(arguments[0]).getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom];",
            vec![serde_json::json!(css)],
        )
        .await?;
    let n = |i: usize| v[i].as_f64().unwrap_or(0.0);
    Ok((n(0), n(1), n(2), n(3)))
}

/// Exports the current Explore results to `path` (the save dialog answered as a person
/// would) and returns the number of features the window says it wrote.
async fn export_to(app: &Desktop, path: &std::path::Path) -> Result<usize> {
    app.client
        .execute(
            "window.__mtpSaveAs = arguments[0];",
            vec![serde_json::json!(path.display().to_string())],
        )
        .await?;
    app.click("#explore-export").await?;
    let said = app
        .wait_for_text("#explore-export-status", "Wrote", Duration::from_secs(20))
        .await?;
    assert!(said.contains(&path.display().to_string()), "{said}");
    let n: String = said
        .trim_start_matches("Wrote ")
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    Ok(n.parse()?)
}

/// The images in an exported GeoJSON file: (service, user) of each.
fn exported_images(path: &std::path::Path, features: usize) -> Result<Vec<(String, String)>> {
    let geo: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    assert_eq!(geo["type"], "FeatureCollection");
    let all = geo["features"].as_array().cloned().unwrap_or_default();
    assert_eq!(all.len(), features, "the window said {features} features");
    Ok(all
        .iter()
        .filter(|f| f["properties"]["kind"] == "image")
        .map(|f| {
            assert_eq!(f["geometry"]["type"], "Point");
            (
                f["properties"]["service"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                f["properties"]["user"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect())
}

async fn go_to(app: &Desktop, place: &str) -> Result<()> {
    app.replace_text("#explore-goto", place).await?;
    app.click("#explore-goto-btn").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(())
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn explore_finds_what_is_already_around_paris_shows_it_and_exports_it() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    let app = Desktop::launch(&[("MTP_OPENER", &opener.display().to_string())]).await?;
    app.click("#nav-explore").await?;
    app.wait_for(
        fantoccini::Locator::Css("#explore-map.leaflet-container"),
        Duration::from_secs(10),
    )
    .await?;
    app.wait_for_text("#explore-result", "Move the map", Duration::from_secs(5))
        .await?;
    app.screenshot("40-explore-start").await?;

    // Nothing is integrated yet: "Me" is nobody anywhere, and the window says so.
    go_to(&app, "48.8566, 2.3522").await?;
    app.click("#explore-search").await?;
    let said = app
        .wait_for_text(
            "#explore-result",
            "Nothing could be searched",
            Duration::from_secs(30),
        )
        .await?;
    assert!(said.contains("is not integrated"), "{said}");
    app.screenshot("41-explore-nothing-searched").await?;

    app.click("#nav-integrations").await?;
    for (n, service) in ["mapillary", "kartaview"].iter().enumerate() {
        integrate(&app, service, &log, n + 1).await?;
    }
    app.click(".service-panoramax [data-action=connect]")
        .await?;
    app.wait_for_text(
        ".service-panoramax .status.ok",
        "Connected as",
        Duration::from_secs(20),
    )
    .await?;
    let origin = sandbox_origin(&wait_for_opened(&log, 1).await?)?;

    // Anyone's images, while KartaView refuses and Mapillary is slow: the chips say so live.
    app.click("#nav-explore").await?;
    go_to(&app, "48.8566, 2.3522, 14").await?;
    choose(&app, "#explore-user", "anyone").await?;
    sandbox_faults(
        &origin,
        "kartaview.nearby_photos:status=400;mapillary.images:latency_ms=1500",
    )
    .await?;
    app.click("#explore-search").await?;
    app.wait_for_text("#explore-search", "Stop", Duration::from_secs(5))
        .await?;
    app.wait_for_text(
        "#explore-chips [data-service=mapillary]",
        "searching",
        Duration::from_secs(5),
    )
    .await?;
    app.screenshot("42-explore-running").await?;
    let ended = search_ended(&app, "#explore-chips").await?;
    assert_eq!(ended["kartaview"].0, "failed", "{ended:?}");
    assert_eq!(ended["mapillary"].0, "done", "{ended:?}");
    let said = app
        .wait_for_text(
            "#explore-verdict",
            "KartaView could not be searched",
            Duration::from_secs(5),
        )
        .await?;
    assert!(said.contains("Found"), "{said}");
    app.screenshot("43-explore-kartaview-failed").await?;
    reqwest::Client::new()
        .delete(format!("{origin}/sandbox/faults"))
        .send()
        .await?
        .error_for_status()?;

    // Again, everything answers: every service has images here.
    app.click("#explore-search").await?;
    let anyone = search_ended(&app, "#explore-chips").await?;
    for service in ["mapillary", "kartaview", "panoramax"] {
        let (state, n) = &anyone[service];
        assert_eq!(state, "done", "{anyone:?}");
        assert!(*n > 0, "nothing on {service} around Paris: {anyone:?}");
        app.wait_for_text(
            &format!("#explore-legend [data-service={service}]"),
            &format!("({n})"),
            Duration::from_secs(5),
        )
        .await?;
    }
    app.wait_for_text("#explore-verdict", "Found", Duration::from_secs(5))
        .await?;
    let clusters = app
        .client
        .execute("return window.__mtpFoundClusters.explore().length;", vec![])
        .await?;
    assert!(clusters.as_u64().unwrap_or(0) > 0, "no cluster drawn");
    app.screenshots("44-explore-anyone").await?;

    // A point: its popup has the thumbnail, the facts and the link to the service.
    let (id, x, y) = zoom_to_a_point(&app, "explore", "#explore-map").await?;
    click_at(&app, x, y).await?;
    // The point clicked, or one drawn at the same spot (a sequence on several services).
    let popup = app
        .wait_for_text(".found-popup", "View on", Duration::from_secs(10))
        .await?;
    // The map pans to show the popup whole.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let shown = app
        .client
        .execute(
            "return [document.querySelector('.found-popup').dataset.id, [...document.querySelectorAll('.found-other')].map(b => b.dataset.id)];",
            vec![],
        )
        .await?;
    let mut here = vec![shown[0].clone()];
    here.extend(shown[1].as_array().cloned().unwrap_or_default());
    assert!(here.contains(&serde_json::json!(id)), "{id} not in {shown}");
    assert!(popup.contains("Taken") && popup.contains("By"), "{popup}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let loaded = app
            .client
            .execute(
                "const i = document.querySelector('.found-popup .found-thumb'); return !!(i && i.complete && i.naturalWidth > 0);",
                vec![],
            )
            .await?;
        if loaded.as_bool() == Some(true) {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the thumbnail never loaded: {popup}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.screenshot("45-explore-popup").await?;
    // Another service's image at the same spot is one click away.
    if let Some(other) = shown[1]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|v| v.as_str())
    {
        app.click(".found-other").await?;
        app.wait_for(
            fantoccini::Locator::Css(&format!(".found-popup[data-id='{other}']")),
            Duration::from_secs(5),
        )
        .await?;
    }
    // The map pans to show the new content whole: click once it has.
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.click(".found-popup .found-link").await?;
    let opened = wait_for_opened(&log, 3).await?;
    assert!(opened.starts_with("http"), "{opened}");

    // Export: the file is GeoJSON with a point per image found.
    let out = tmp.path().join("paris.geojson");
    let features = export_to(&app, &out).await?;
    let images = exported_images(&out, features)?;
    let found: u64 = anyone.values().map(|(_, n)| n).sum();
    assert_eq!(images.len() as u64, found);
    app.screenshot("46-explore-exported").await?;

    // "Me" in a box drawn on the map: only the sandbox user's own images.
    app.click(".leaflet-popup-close-button").await?;
    go_to(&app, "48.8566, 2.3522, 14").await?;
    choose(&app, "#explore-user", "me").await?;
    app.click("#explore-draw").await?;
    let (l, t, r, b) = rect_of(&app, "#explore-map").await?;
    drag(&app, (l + 60.0, t + 60.0), (r - 60.0, b - 60.0)).await?;
    app.wait_for_text("#explore-area-text", "your box", Duration::from_secs(5))
        .await?;
    app.click("#explore-search").await?;
    let me = search_ended(&app, "#explore-chips").await?;
    let mine: u64 = me.values().map(|(_, n)| n).sum();
    assert!(
        mine > 0,
        "the sandbox user has no images around Paris: {me:?}"
    );
    assert!(mine < found, "{me:?} vs {anyone:?}");
    let out = tmp.path().join("mine.geojson");
    let features = export_to(&app, &out).await?;
    let images = exported_images(&out, features)?;
    assert_eq!(images.len() as u64, mine);
    for service in ["mapillary", "kartaview", "panoramax"] {
        let users: std::collections::BTreeSet<&str> = images
            .iter()
            .filter(|(s, _)| s == service)
            .map(|(_, u)| u.as_str())
            .collect();
        assert!(users.len() <= 1, "{service}: {users:?}");
    }
    app.screenshot("47-explore-me-in-a-box").await?;

    // The sea off Africa: nothing there, in words.
    app.click("#explore-clear-area").await?;
    choose(&app, "#explore-user", "anyone").await?;
    go_to(&app, "0.5, -30").await?;
    app.click("#explore-search").await?;
    app.wait_for_text(
        "#explore-verdict",
        "Nothing found here",
        Duration::from_secs(30),
    )
    .await?;
    app.screenshot("48-explore-nothing-here").await?;
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn the_import_map_shows_what_is_already_around_the_track() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    let photos = photo_folder()?;
    let folder = photos.path().join("Morning walk");
    let app = Desktop::launch(&[("MTP_OPENER", &opener.display().to_string())]).await?;
    // Mapillary is only searched with a sign-in (the sandbox has no app token).
    app.click("#nav-integrations").await?;
    integrate(&app, "mapillary", &log, 1).await?;

    app.click("#nav-import").await?;
    drop_paths(&app, &[&folder]).await?;
    app.wait_for_text("#plan-stats", "photos kept", Duration::from_secs(30))
        .await?;
    app.click("#show-existing").await?;
    let ended = search_ended(&app, "#existing-chips").await?;
    let total: u64 = ended.values().map(|(_, n)| n).sum();
    for (service, (state, _)) in &ended {
        assert_eq!(state, "done", "{service}: {ended:?}");
    }
    assert!(total > 0, "nothing around the track: {ended:?}");
    app.wait_for_text("#existing-verdict", "Found", Duration::from_secs(5))
        .await?;
    app.wait_for(
        fantoccini::Locator::Css("#import-legend"),
        Duration::from_secs(5),
    )
    .await?;
    app.screenshot("49-import-already-here").await?;
    let (_, x, y) = zoom_to_a_point(&app, "import", "#track-map").await?;
    click_at(&app, x, y).await?;
    app.wait_for_text(".found-popup", "View on", Duration::from_secs(10))
        .await?;
    app.screenshot("50-import-already-here-popup").await?;

    // Off: the overlay, its legend and its status go.
    app.click("#show-existing").await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let gone = app
            .client
            .execute(
                "return !document.getElementById('import-legend') && !(window.__mtpFound || {}).import && !document.querySelector('#existing-chips .chip');",
                vec![],
            )
            .await?;
        if gone.as_bool() == Some(true) {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the overlay stayed after turning it off"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.wait_for(
        fantoccini::Locator::Css("#track-map.leaflet-container canvas"),
        Duration::from_secs(5),
    )
    .await?;
    app.screenshot("51-import-already-here-off").await?;
    app.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn explore_stays_light_with_fifty_thousand_images() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (opener, log) = recording_opener(tmp.path())?;
    // A crowded world: 50,000 images in a 4 km square around Paris.
    let app = Desktop::launch(&[
        ("MTP_OPENER", &opener.display().to_string()),
        ("MTP_SANDBOX_WORLD", "50000@48.8566,2.3522,4"),
    ])
    .await?;
    app.click("#nav-integrations").await?;
    integrate(&app, "mapillary", &log, 1).await?;
    app.click("#nav-explore").await?;
    go_to(&app, "48.8566, 2.3522, 14").await?;
    choose(&app, "#explore-user", "anyone").await?;
    app.click("#explore-search").await?;
    let ended = search_ended(&app, "#explore-chips").await?;
    let total: u64 = ended.values().map(|(_, n)| n).sum();
    assert!(total >= 40_000, "{ended:?}");
    app.wait_for_text("#explore-verdict", "Found", Duration::from_secs(10))
        .await?;
    // Zoom in and out: drawing a view stays quick, and no image is a DOM node of its own.
    for zoom in ["in", "in", "in", "in", "out", "out", "out", "out"] {
        app.click(&format!(".leaflet-control-zoom-{zoom}")).await?;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let stats = app
        .client
        .execute(
            "return Object.assign(window.__mtpFoundStats.explore(), { nodes: document.querySelectorAll('#explore-map *').length });",
            vec![],
        )
        .await?;
    println!("50,000 images: {stats}");
    assert!(stats["images"].as_u64().unwrap_or(0) >= 40_000, "{stats}");
    assert!(
        stats["nodes"].as_u64().unwrap_or(u64::MAX) < 3_000,
        "{stats}"
    );
    // How long drawing takes is measured by bench/explore.sh (which runs this test and reads
    // the line printed above), not asserted here.
    app.screenshot("52-explore-fifty-thousand").await?;
    app.quit().await
}

/// The title bar of the app's own window (xdotool under Xvfb).
fn window_titles(app: &Desktop) -> Result<Vec<String>> {
    let pid = app
        .app_pid()
        .ok_or_else(|| anyhow::anyhow!("the app's process is not running"))?;
    let out = std::process::Command::new("xdotool")
        .args([
            "search",
            "--all",
            "--pid",
            &pid.to_string(),
            "--name",
            "MTP",
        ])
        .args(["getwindowname", "%@"])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect())
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn the_first_run_screen_says_sandbox_and_links_each_services_setup_then_about_tells_where_things_are()
-> Result<()> {
    // A data folder of our own, kept across the two starts below.
    let data_dir = tempfile::tempdir()?;
    let data = data_dir.path().display().to_string();
    let app = Desktop::launch_first_run(&[("MTP_DATA_DIR", &data)]).await?;
    assert_eq!(app.welcome_state().await?, "shown");
    let mode = app
        .wait_for_text(
            "#welcome-mode",
            "Sandbox mode: a practice run",
            Duration::from_secs(10),
        )
        .await?;
    assert!(mode.contains("nothing leaves this computer"), "{mode}");
    // The settings file of the harness's own temporary folder (MTP_SETTINGS_FILE).
    let settings_file = app.data_path().join("settings.env");
    assert!(
        mode.contains(&format!("{} (not there yet", settings_file.display())),
        "{mode}"
    );
    // The OS window title says so too.
    let titles = window_titles(&app)?;
    assert!(
        titles.iter().any(|t| t == "MTP Desktop (sandbox)"),
        "{titles:?}"
    );
    app.screenshots("60-first-run-sandbox").await?;

    // Each service's setup guide is the README's section, shown in the app.
    for (guide, words) in [
        (
            "mapillary-setup",
            "Register an app on the Mapillary developer dashboard",
        ),
        (
            "kartaview-setup",
            "KartaView signs in through OpenStreetMap",
        ),
        ("panoramax-setup", "Panoramax is federated"),
        ("map-the-paths-web-setup", "MTPW_CLIENT_ID"),
    ] {
        app.click(&format!("#welcome-mode [data-guide='{guide}']"))
            .await?;
        app.wait_for(
            fantoccini::Locator::Css(&format!("#guide-body[data-section='{guide}']")),
            Duration::from_secs(5),
        )
        .await?;
        app.wait_for_text("#guide-body", words, Duration::from_secs(5))
            .await?;
        if guide == "mapillary-setup" {
            app.screenshots("61-setup-guide-mapillary").await?;
        }
        app.click("#guide-close").await?;
    }
    // A link inside the guide to another README section opens that section.
    app.click("#welcome-guide").await?;
    app.click(".guide-tab[data-section='kartaview-setup']")
        .await?;
    app.click("#guide-body a[href='#signing-in']").await?;
    app.wait_for_text("#guide-body", "loopback address", Duration::from_secs(5))
        .await?;
    app.click("#guide-close").await?;

    app.click("#welcome-start").await?;
    app.wait_for(
        fantoccini::Locator::Css("body[data-welcome='seen']"),
        Duration::from_secs(5),
    )
    .await?;

    // About: version, data folder, settings file, licence.
    app.click("#about-open").await?;
    let version = app
        .wait_for_text("#about-version", "Version ", Duration::from_secs(5))
        .await?;
    assert_eq!(version, format!("Version {}", env!("CARGO_PKG_VERSION")));
    let shown = app
        .wait_for_text("#about-data", "sandbox", Duration::from_secs(5))
        .await?;
    assert_eq!(shown, data_dir.path().join("sandbox").display().to_string());
    app.wait_for_text(
        "#about-settings",
        &settings_file.display().to_string(),
        Duration::from_secs(5),
    )
    .await?;
    app.wait_for_text("#about-licence", "MIT", Duration::from_secs(5))
        .await?;
    app.click("#about .licence summary").await?;
    app.wait_for_text(
        "#licence-text",
        "Permission is hereby granted",
        Duration::from_secs(5),
    )
    .await?;
    app.screenshots("62-about").await?;
    app.click("#about-close").await?;

    // Closed once, the first-run screen does not come back at the next start.
    app.quit().await?;
    let again = Desktop::launch_first_run(&[("MTP_DATA_DIR", &data)]).await?;
    assert_eq!(again.welcome_state().await?, "seen");
    again.quit().await
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn a_settings_file_leaves_sandbox_mode_and_the_first_run_screen_says_what_each_service_still_needs()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let settings = dir.path().join("settings.env");
    std::fs::write(
        &settings,
        "# my services\nPANORAMAX_INSTANCE_URL=https://panoramax.example.org\nthis line is not a setting\nMTPW_CLIENT_ID=never-read\n",
    )?;
    let settings_path = settings.display().to_string();
    let (opener, opened) = recording_opener(dir.path())?;
    let app = Desktop::launch_first_run(&[
        ("MTP_SANDBOX", ""),
        ("MTP_SETTINGS_FILE", &settings_path),
        ("MTP_OPENER", &opener.display().to_string()),
    ])
    .await?;
    assert_eq!(app.welcome_state().await?, "shown");
    let mode = app
        .wait_for_text(
            "#welcome-mode",
            "Connected to the real services",
            Duration::from_secs(10),
        )
        .await?;
    assert!(mode.contains("(read at this start)"), "{mode}");
    let panoramax = app
        .wait_for_text(
            ".welcome-service[data-service='panoramax']",
            "ready",
            Duration::from_secs(5),
        )
        .await?;
    assert!(panoramax.starts_with("Panoramax"), "{panoramax}");
    let mapillary = app
        .wait_for_text(
            ".welcome-service[data-service='mapillary']",
            "not set up",
            Duration::from_secs(5),
        )
        .await?;
    assert!(mapillary.contains("MAPILLARY_APP_ID"), "{mapillary}");
    // The line after the broken one was not read, and the screen says which file and line.
    app.wait_for_text(
        ".welcome-service[data-service='mtpw']",
        "not set up",
        Duration::from_secs(5),
    )
    .await?;
    let problem = app
        .wait_for_text(
            "#settings-problems",
            "this line is not a setting",
            Duration::from_secs(5),
        )
        .await?;
    assert!(problem.contains(&settings_path), "{problem}");
    let titles = window_titles(&app)?;
    assert!(titles.iter().any(|t| t == "MTP Desktop"), "{titles:?}");
    app.click(".welcome-service[data-service='kartaview'] [data-guide]")
        .await?;
    app.wait_for_text(
        "#guide-body",
        "KARTAVIEW_OSM_CLIENT_ID",
        Duration::from_secs(5),
    )
    .await?;
    app.click("#guide-close").await?;
    app.screenshots("63-first-run-real-services").await?;
    // Closed, the cards of services not set up link to the same guide.
    app.click("#welcome-start").await?;
    app.click(".service-mtpw [data-guide]").await?;
    app.wait_for_text("#guide-body", "implicit grant", Duration::from_secs(5))
        .await?;
    app.screenshots("64-card-setup-guide").await?;
    app.click("#guide-close").await?;

    // KartaView needs no setting: Integrate opens OpenStreetMap for KartaView's own app,
    // and the card asks for the code OpenStreetMap will show.
    app.click(".service-kartaview [data-action=integrate]")
        .await?;
    let page = wait_for_opened(&opened, 1).await?;
    assert!(
        page.starts_with("https://www.openstreetmap.org/oauth2/authorize?")
            && page.contains(mtp_providers::config::KARTAVIEW_APP_OSM_CLIENT_ID)
            && page.contains("redirect_uri=urn%3Aietf%3Awg%3Aoauth%3A2.0%3Aoob"),
        "{page}"
    );
    app.wait_for_text(
        ".service-kartaview .sign-in",
        "OpenStreetMap then shows a code: paste it here",
        Duration::from_secs(10),
    )
    .await?;
    app.wait_for(
        fantoccini::Locator::Css("#kartaview-code"),
        Duration::from_secs(5),
    )
    .await?;
    app.screenshots("65-kartaview-code-real-services").await?;
    app.quit().await
}

/// In the page: records the time between animation frames while `work` runs (a promise),
/// then a second more, and returns `{ result, frames: { count, max_ms, over_50ms, slow } }`
/// (`slow`: `[frame number, ms]` of the frames over 33 ms, to see where they fall).
const FRAME_RECORDER: &str = r#"
window.__measure = async (work) => {
  const frames = [];
  let last = performance.now();
  let on = true;
  const tick = (t) => { frames.push(t - last); last = t; if (on) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  const result = await work();
  await new Promise((r) => setTimeout(r, 1000));
  on = false;
  return { result, frames: { count: frames.length, max_ms: Math.round(Math.max(0, ...frames)), over_50ms: frames.filter((f) => f > 50).length,
    slow: frames.flatMap((f, i) => (f > 33 ? [[i, Math.round(f)]] : [])) } };
};
"#;

/// Seeds `data` (sandbox) with `count` sequences of 3 photos, each queued to three
/// destinations and paused, so the window opens on a long, quiet status list.
async fn seed_sequences(data: &std::path::Path, count: usize) -> Result<()> {
    use mtp_app::jobs::{JobAction, JobTarget};
    use mtp_app::prepare::{PrepareOptions, SaveImport};
    use mtp_core::Destination;
    use mtp_core::photo::fixture::{TrackSpec, write_track_folder};
    use mtp_core::store::SequenceMeta;
    let env: std::collections::HashMap<&str, String> = [
        ("MTP_DATA_DIR", data.display().to_string()),
        ("MTP_SANDBOX", "1".into()),
        ("MTP_OPENER", "true".into()),
    ]
    .into();
    let app = mtp_app::App::start(mtp_app::Settings::from_lookup(|k| env.get(k).cloned())).await?;
    let destinations = vec![
        Destination::Mapillary,
        Destination::Kartaview,
        Destination::Panoramax,
    ];
    for d in &destinations {
        pipeline_support::connect(&app, *d).await;
    }
    let photos = data.join("photos");
    for i in 0..count {
        write_track_folder(
            &photos.join(format!("walk-{i:04}")),
            3,
            &TrackSpec {
                // An hour apart: each folder is a sequence of its own.
                start_time_ms: 1_714_550_400_000 + i as i64 * 3_600_000,
                start_lat: 48.0 + (i % 40) as f64 * 0.01,
                start_lon: 2.0 + (i / 40) as f64 * 0.01,
                file_prefix: format!("w{i:04}_"),
                ..TrackSpec::default()
            },
        )?;
    }
    let preview = app
        .prepare_folder(&photos, PrepareOptions::default())
        .await?;
    let saved = app
        .save_import(SaveImport {
            token: preview.token,
            meta: SequenceMeta {
                name: "Daily walk".into(),
                description: String::new(),
                transport_type: Some("Walk".into()),
                tags: vec![],
            },
            destinations,
            sequences: Vec::new(),
        })
        .await?;
    anyhow::ensure!(
        saved.skipped.is_empty(),
        "{} skipped, the first: {:?}",
        saved.skipped.len(),
        saved.skipped.first()
    );
    anyhow::ensure!(
        saved.sequence_ids.len() == count,
        "seeded {} sequences, not {count}",
        saved.sequence_ids.len()
    );
    for id in &saved.sequence_ids {
        app.job_action(JobTarget::Sequence(*id), JobAction::Pause)
            .await?;
    }
    app.shutdown().await;
    Ok(())
}

#[tokio::test]
#[ignore = "needs Xvfb, D-Bus and tauri-driver: run `make e2e`"]
async fn the_status_list_of_a_thousand_sequences_renders_takes_a_burst_of_progress_and_scrolls()
-> Result<()> {
    let data_dir = tempfile::tempdir()?;
    seed_sequences(data_dir.path(), 1000).await?;
    let data = data_dir.path().display().to_string();
    let app = Desktop::launch(&[("MTP_DATA_DIR", &data)]).await?;
    app.client.execute(FRAME_RECORDER, vec![]).await?;
    let first_paint = app
        .run_in_page(
            r#"return await new Promise((done) => {
            const look = (n) => { const m = performance.getEntriesByName('mtp-first-paint')[0];
              if (m || n > 50) done(m ? Math.round(m.startTime) : null); else setTimeout(() => look(n + 1), 100); };
            look(0);
            });"#,
            Duration::from_secs(60),
        )
        .await?;

    // Open the list: time to the first cards on screen, and to the first page of them.
    let open = app
        .run_in_page(
            r#"return await new Promise((done) => {
            window.__measure(() => new Promise((resolve) => {
              const t0 = performance.now();
              let first = null;
              document.getElementById('nav-sequences').click();
              const poll = () => {
                const n = document.querySelectorAll('#seq-list .seq-card').length;
                if (n > 0 && first === null) first = performance.now() - t0;
                const more = document.getElementById('seq-more');
                if ((more && !more.disabled) || n >= 1000 || performance.now() - t0 > 25000) requestAnimationFrame(() => resolve({ first_cards_ms: Math.round(first), page_ms: Math.round(performance.now() - t0), cards: n, rows: document.querySelectorAll('#seq-list .job').length, more: more ? more.textContent : null }));
                else requestAnimationFrame(poll);
              };
              requestAnimationFrame(poll);
            })).then(done, (e) => done({ error: String(e) }));
            });"#,
            Duration::from_secs(60),
        )
        .await?;
    eprintln!("list opened: {open}");
    assert_eq!(open["result"]["cards"], 100, "{open}");
    assert_eq!(open["result"]["rows"], 300, "{open}");
    assert_eq!(
        open["result"]["more"], "Show 100 older sequences (900 not shown)",
        "{open}"
    );

    // A burst of 100 progress events, as the engine's bridge would deliver them.
    let burst = app
        .run_in_page(
            r#"return await new Promise((done) => {
            const jobs = [...document.querySelectorAll('#seq-list .job')].slice(0, 100).map((r) => Number(r.dataset.job));
            window.__measure(async () => {
              const t0 = performance.now();
              jobs.forEach((id, k) => window.__mtpDispatch({ type: 'job_progress', job_id: id, photos_done: 1, photos_total: 3, bytes_done: 1000 + k, bytes_total: 3000 }));
              return { events: jobs.length, handled_ms: Math.round(performance.now() - t0) };
            }).then(done, (e) => done({ error: String(e) }));
            });"#,
            Duration::from_secs(60),
        )
        .await?;
    eprintln!("burst: {burst}");
    assert_eq!(burst["result"]["events"], 100, "{burst}");
    let row = app
        .wait_for_text(
            "#seq-list .job .job-numbers",
            "1/3 photos",
            Duration::from_secs(5),
        )
        .await?;
    assert!(row.starts_with("1/3 photos"), "{row}");

    // Scroll down the cards shown as a quick mouse wheel does (120 px a frame, ~7,000 px/s),
    // then show every older page and jump to the end: the oldest sequence is there.
    let scroll = app
        .run_in_page(
            r#"return await new Promise((done) => {
            const main = document.getElementById('main');
            main.scrollTop = 0;
            window.__measure(() => new Promise((resolve) => {
              const t0 = performance.now();
              let steps = 0;
              const step = () => {
                main.scrollTop += 120;
                steps++;
                if (main.scrollTop + main.clientHeight >= main.scrollHeight - 1 || performance.now() - t0 > 20000) resolve({ steps, px: main.scrollTop, scroll_ms: Math.round(performance.now() - t0) });
                else requestAnimationFrame(step);
              };
              requestAnimationFrame(step);
            })).then(done, (e) => done({ error: String(e) }));
            });"#,
            Duration::from_secs(60),
        )
        .await?;
    assert!(
        scroll["result"]["px"].as_f64().unwrap_or(0.0) > 10_000.0,
        "{scroll}"
    );
    for left in (1..=9).rev() {
        // A page takes its real height a frame after its last card (sequences.ts `finish`):
        // let it settle at the bottom before clicking, as a person's eye does.
        app.client
            .execute(
                "const m = document.getElementById('main'); m.scrollTop = m.scrollHeight;",
                vec![],
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.client
            .execute(
                "const m = document.getElementById('main'); m.scrollTop = m.scrollHeight;",
                vec![],
            )
            .await?;
        app.click("#seq-more").await?;
        let cards = 1000 - (left - 1) * 100;
        if let Err(e) = app
            .wait_for(
                fantoccini::Locator::Css(&format!("#seq-list .seq-card:nth-child({cards})")),
                Duration::from_secs(20),
            )
            .await
        {
            let v = app.client.execute("return [document.querySelectorAll('#seq-list .seq-card').length, (document.getElementById('seq-more')||{}).textContent || null, document.querySelectorAll('#seq-more').length];", vec![]).await?;
            anyhow::bail!("{e}: {v}");
        }
    }
    // The last page ends a frame after its last card: the button goes then.
    let gone = app
        .run_in_page(
            r#"return await new Promise((done) => {
            const t0 = performance.now();
            const look = () => { if (!document.getElementById('seq-more')) done(true); else if (performance.now() - t0 > 5000) done(false); else requestAnimationFrame(look); };
            look();
            });"#,
            Duration::from_secs(60),
        )
        .await?;
    assert_eq!(gone, true, "every sequence is shown: no more button");
    let last = app
        .run_in_page(
            r#"return await new Promise((done) => {
            const main = document.getElementById('main');
            const to_end = () => { main.scrollTop = main.scrollHeight; };
            to_end();
            // Cards that come into view take their real height: settle, then look.
            setTimeout(() => { to_end(); requestAnimationFrame(() => requestAnimationFrame(() => {
              const last = document.querySelector('#seq-list .seq-card:last-child').getBoundingClientRect();
              const view = main.getBoundingClientRect();
              const list = document.getElementById('seq-list').getBoundingClientRect();
              done({ last_bottom: last.bottom, view_bottom: view.bottom, list_bottom: list.bottom, room: document.getElementById('seq-list').style.minHeight, name: document.querySelector('#seq-list .seq-card:last-child h2').textContent });
            })); }, 300);
            });"#,
            Duration::from_secs(60),
        )
        .await?;
    let (bottom, view) = (
        last["last_bottom"].as_f64().unwrap_or(f64::MAX),
        last["view_bottom"].as_f64().unwrap_or(0.0),
    );
    assert!(
        bottom <= view + 40.0,
        "the last card is not in view: {last}"
    );
    assert_eq!(last["name"], "Daily walk Part 1000", "{last}");
    // The room the list keeps for a page while it comes in (sequences.ts `fitRoom`) leaves
    // no gap under the last card.
    eprintln!("end of the list: {last}");
    let list_bottom = last["list_bottom"].as_f64().unwrap_or(f64::MAX);
    assert!(
        list_bottom - bottom <= 2.0,
        "a gap under the last card: {last}"
    );
    // Times are measured by bench/ui-list.sh (which runs this test against the release build
    // and reads this line), not asserted here.
    println!(
        "status list, 1,000 sequences: {}",
        serde_json::json!({ "first_paint_ms": first_paint, "open": open, "burst": burst, "scroll": scroll })
    );
    app.screenshot("65-status-list-thousand").await?;
    app.quit().await
}
