//! Shared helpers for the story tests and the real-window end-to-end tests.

#[path = "desktop.rs"]
pub mod desktop;

use std::path::PathBuf;

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where tests put files meant for people to look at (screenshots); gitignored.
pub fn artifacts_dir(kind: &str) -> PathBuf {
    let dir = workspace_root().join("artifacts").join(kind);
    let _ = std::fs::create_dir_all(&dir);
    dir
}
