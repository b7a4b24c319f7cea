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
