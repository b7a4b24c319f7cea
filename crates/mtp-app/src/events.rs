//! Events from the engine to whoever shows them. They carry ids; the UI re-reads state.

use crate::DeepLinkOutcome;
use mtp_core::engine::{JobStatus, Stage};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AppEvent {
    DeepLink(DeepLinkOutcome),
    AccountsChanged,
    SequencesChanged {
        ids: Vec<i64>,
    },
    /// Reading a folder: files read so far.
    ImportProgress {
        files_done: usize,
        files_total: usize,
    },
    /// A job changed stage or status: re-read the sequence.
    JobChanged {
        job_id: i64,
        sequence_id: i64,
        status: JobStatus,
        stage: Stage,
    },
    /// Another process (`mtp upload`, or another window) runs this database's uploads, and
    /// this one shows their progress as that process saves it (`true`); this process has
    /// taken them over (`false`).
    UploadsElsewhere {
        elsewhere: bool,
    },
    /// Bytes and photos sent (throttled).
    JobProgress {
        job_id: i64,
        sequence_id: i64,
        photos_done: i64,
        photos_total: i64,
        bytes_done: i64,
        bytes_total: i64,
    },
}
