//! Story: the links the app opens in the browser. Only web links to the sites of the
//! services it works with are opened; every other scheme and every other site is refused
//! with a reason, and the browser is never started for them.

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use mtp_core::Destination;
use pipeline_support::{Story, walk};
use std::path::{Path, PathBuf};

/// A stand-in for the browser that writes down every address it is asked to open.
fn recording_opener(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("opened.txt");
    let script = dir.join("browser.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

/// What the stand-in browser was asked to open (it runs detached: wait for it a little).
async fn opened(log: &Path, at_least: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        if lines.len() >= at_least || std::time::Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_web_links_to_the_services_sites_are_opened() {
    let tools = tempfile::tempdir().unwrap();
    let (browser, log) = recording_opener(tools.path());
    let story = Story::start_with(&[("MTP_OPENER", browser.to_str().unwrap())]).await;
    story.connect(&[Destination::Kartaview]).await;
    let folder = story.photos("walk", 4, &walk(7));
    let ids = story
        .import(&folder, "Links", &[Destination::Kartaview])
        .await;
    story.start_engine();
    story.settle(&ids).await;
    let page = story
        .job(ids[0], Destination::Kartaview)
        .await
        .remote_url
        .unwrap();
    // From here on, only what open_external asks (the sign-in opened its page before).
    let _ = std::fs::remove_file(&log);

    let refused = [
        ("file:///etc/passwd", "only web links"),
        ("javascript:alert(document.cookie)", "only web links"),
        ("data:text/html,<script>alert(1)</script>", "only web links"),
        ("ftp://ftp.example.org/photos", "only web links"),
        ("mailto:someone@example.org", "only web links"),
        ("app.mtp.desktop://app?code=x&state=y", "only web links"),
        (
            "https://evil.example/phish",
            "evil.example is not one of the services",
        ),
        ("http://127.0.0.1:9/elsewhere", "is not one of the services"),
        ("not a link at all", "is not a link"),
    ];
    for (url, why) in refused {
        let e = story.app.open_external(url).await.unwrap_err();
        assert!(e.message.contains(why), "{url}: {}", e.message);
    }

    // The sequence's page on the (emulated) service, and the map's attribution, open.
    story.app.open_external(&page).await.unwrap();
    story
        .app
        .open_external("https://www.openstreetmap.org/copyright")
        .await
        .unwrap();
    // And where the setup guide sends people to register an app.
    let dashboard = "https://www.mapillary.com/dashboard/developers";
    story.app.open_external(dashboard).await.unwrap();
    // The browser starts detached: they may arrive in any order.
    let mut lines = opened(&log, 3).await;
    lines.sort();
    let mut want = vec![
        page,
        "https://www.openstreetmap.org/copyright".to_owned(),
        dashboard.to_owned(),
    ];
    want.sort();
    assert_eq!(lines, want, "only the allowed links reached the browser");
    story.app.shutdown().await;
}
