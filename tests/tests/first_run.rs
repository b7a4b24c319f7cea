//! The first-run screen's facts: shown until closed once, per mode's data (the sandbox's and
//! the real services' are apart, so moving to real accounts is a first run too).

#![allow(clippy::unwrap_used)]

use mtp_app::{App, Settings, config::Mode};
use std::collections::HashMap;
use std::path::Path;

async fn start(data: &Path, extra: &[(&str, &str)]) -> App {
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("MTP_DATA_DIR".into(), data.display().to_string());
    env.insert("MTP_OPENER".into(), "true".into());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    App::start(Settings::from_lookup(|k| env.get(k).cloned()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_run_is_over_once_closed_and_real_services_get_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &[]).await;
    let o = app.overview();
    assert_eq!(o.mode.mode, Mode::Sandbox, "no credentials: sandbox");
    assert!(o.first_run);
    assert_eq!(o.licence, "MIT");
    assert_eq!(o.version, env!("CARGO_PKG_VERSION"));
    app.finish_first_run().await.unwrap();
    assert!(!app.overview().first_run);
    app.shutdown().await;

    let again = start(dir.path(), &[]).await;
    assert!(!again.overview().first_run, "closed once, not shown again");
    again.shutdown().await;

    // The same person with a real service set up: its own data, its own first run.
    let live = start(
        dir.path(),
        &[("PANORAMAX_INSTANCE_URL", "https://panoramax.example.org")],
    )
    .await;
    let o = live.overview();
    assert_eq!(o.mode.mode, Mode::Live);
    assert!(o.first_run);
    assert_eq!(o.data_dir, dir.path().display().to_string());
    live.shutdown().await;
}
