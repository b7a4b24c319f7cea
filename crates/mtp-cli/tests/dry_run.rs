//! `mtp upload <folder> --dry-run --json` in sandbox mode: the folder is read, not saved,
//! and the JSON says per destination what would be sent.

#![allow(clippy::unwrap_used)]

use mtp_core::photo::fixture::{TrackSpec, write_track_folder};
use std::process::Command;

#[test]
fn a_dry_run_of_a_folder_prints_json_and_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("walk");
    write_track_folder(&folder, 6, &TrackSpec::default()).unwrap();
    let mtp = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mtp"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("HOME", dir.path())
            .env("MTP_DATA_DIR", dir.path().join("data"))
            .env("MTP_SANDBOX", "1")
            .output()
            .unwrap()
    };
    let folder_arg = folder.to_string_lossy().into_owned();
    let out = mtp(&[
        "upload",
        &folder_arg,
        "--to",
        "kartaview,mtpw",
        "--transport",
        "Walk",
        "--dry-run",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dests = json["sequences"][0]["destinations"].as_array().unwrap();
    assert_eq!(dests.len(), 2);
    assert_eq!(dests[0]["destination"], "kartaview");
    assert_eq!(dests[0]["photos"], 6);
    assert_eq!(dests[0]["account"]["connected"], false);
    assert_eq!(dests[1]["destination"], "mtpw");
    assert_eq!(dests[1]["photos"], 0);

    let out = mtp(&["status", "--json"]);
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        0,
        "the dry run saved something"
    );
}

/// What cannot be done says so and exits non-zero: a folder without files, and Map the
/// Paths Web asked for without a transport type (with the flag that fixes it).
#[test]
fn nothing_to_upload_and_a_skipped_destination_exit_non_zero_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let walk = dir.path().join("walk");
    write_track_folder(&walk, 4, &TrackSpec::default()).unwrap();
    let mtp = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mtp"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("HOME", dir.path())
            .env("MTP_DATA_DIR", dir.path().join("data"))
            .env("MTP_SANDBOX", "1")
            .output()
            .unwrap()
    };
    let out = mtp(&["prepare", &empty.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("This folder holds no files"), "{err}");

    let out = mtp(&[
        "upload",
        &walk.to_string_lossy(),
        "--to",
        "mtpw",
        "--no-wait",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skipped: walk not sent to Map the Paths Web"),
        "{err}"
    );
    assert!(err.contains("with --transport Walk"), "{err}");
}
