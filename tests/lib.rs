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

/// A job's remote state, typed, for assertions (panics when it cannot be read: a test
/// failure, with the job's id).
pub trait JobRemote {
    fn mly(&self) -> mtp_app::remote::MapillaryRemote;
    fn kv(&self) -> mtp_app::remote::KartaViewRemote;
    fn px(&self) -> mtp_app::remote::PanoramaxRemote;
    fn web(&self) -> mtp_app::remote::MtpwRemote;
    /// The note of a job of any destination.
    fn note(&self) -> Option<String>;
}

impl JobRemote for mtp_core::store::JobRow {
    fn mly(&self) -> mtp_app::remote::MapillaryRemote {
        typed(self)
    }
    fn kv(&self) -> mtp_app::remote::KartaViewRemote {
        typed(self)
    }
    fn px(&self) -> mtp_app::remote::PanoramaxRemote {
        typed(self)
    }
    fn web(&self) -> mtp_app::remote::MtpwRemote {
        typed(self)
    }
    fn note(&self) -> Option<String> {
        match mtp_app::remote::RemoteState::of(self) {
            Ok(state) => state.common().note.clone(),
            Err(e) => panic!("{e}"),
        }
    }
}

fn typed<T: mtp_app::remote::DestinationRemote>(job: &mtp_core::store::JobRow) -> T {
    T::of(job).unwrap_or_else(|e| panic!("{e}"))
}
