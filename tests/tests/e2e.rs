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
