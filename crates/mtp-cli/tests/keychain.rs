//! `mtp db info` says where tokens are kept: in the database when no OS keychain answers
//! (quickly, and why), in the keychain when one does (ignored: `make keyring-test` runs it
//! with gnome-keyring in its own D-Bus session).

#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `mtp db info` in live mode on a fresh data dir, with nothing from the environment but
/// `env` (and the D-Bus session address, unless `env` sets it).
fn db_info(dir: &std::path::Path, env: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtp"));
    cmd.args(["db", "info"])
        .current_dir(dir)
        .env_clear()
        .env("HOME", dir)
        .env("MTP_DATA_DIR", dir.join("data"))
        .env("MTP_SANDBOX", "0");
    if let Some(bus) = std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", bus);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = cmd.output().unwrap();
    (out, started.elapsed())
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn without_a_secret_service_tokens_stay_in_the_database_and_db_info_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let no_bus = format!("unix:path={}", dir.path().join("no-such-bus").display());
    let (out, took) = db_info(dir.path(), &[("DBUS_SESSION_BUS_ADDRESS", &no_bus)]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("Tokens: in this database (file mode 0600) — no OS keychain answered: "),
        "{text}"
    );
    // The probe gives up at once, not after its timeout.
    assert!(
        took < mtp_core::store::PROBE_TIMEOUT,
        "took {took:?}: {text}"
    );

    // MTP_KEYCHAIN=off says so; =on refuses to start, saying what to do.
    let (out, _) = db_info(
        dir.path(),
        &[
            ("DBUS_SESSION_BUS_ADDRESS", &no_bus),
            ("MTP_KEYCHAIN", "off"),
        ],
    );
    assert!(
        stdout(&out).contains("Tokens: in this database (file mode 0600) — MTP_KEYCHAIN=off"),
        "{out:?}"
    );
    let (out, _) = db_info(
        dir.path(),
        &[
            ("DBUS_SESSION_BUS_ADDRESS", &no_bus),
            ("MTP_KEYCHAIN", "on"),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MTP_KEYCHAIN=on, but no OS keychain answered")
            && err.contains("MTP_KEYCHAIN=auto"),
        "{err}"
    );
}

#[test]
#[ignore = "needs gnome-keyring: run make keyring-test"]
fn with_a_secret_service_db_info_says_the_os_keychain() {
    let dir = tempfile::tempdir().unwrap();
    let service = format!("app.mtp.desktop.test-cli-{}", std::process::id());
    let (out, _) = db_info(dir.path(), &[("MTP_KEYCHAIN_SERVICE", &service)]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains("Tokens: OS keychain (Secret Service)"),
        "{text}"
    );
    assert!(text.contains(&service), "{text}");
}
