//! The typed states of the job table: a job's stage and status, a photo's state within a job,
//! and the kind of a job's last error. Stored as lowercase text (`sqlx::Type`), matched
//! exhaustively, and exported to the UI's TypeScript (`ui/src/gen/`) so neither side can
//! misspell one.

use serde::{Deserialize, Serialize};

/// Where a job is in `prepare → upload → publish → poll → sync`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum Stage {
    Prepare,
    Upload,
    Publish,
    Poll,
    Sync,
    Done,
}

impl Stage {
    pub const ORDER: [Stage; 6] = [
        Stage::Prepare,
        Stage::Upload,
        Stage::Publish,
        Stage::Poll,
        Stage::Sync,
        Stage::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Prepare => "prepare",
            Stage::Upload => "upload",
            Stage::Publish => "publish",
            Stage::Poll => "poll",
            Stage::Sync => "sync",
            Stage::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ORDER.into_iter().find(|st| st.as_str() == s)
    }

    pub fn next(self) -> Stage {
        match self {
            Stage::Prepare => Stage::Upload,
            Stage::Upload => Stage::Publish,
            Stage::Publish => Stage::Poll,
            Stage::Poll => Stage::Sync,
            Stage::Sync | Stage::Done => Stage::Done,
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a job runs, waits, or has ended.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum JobStatus {
    /// Runnable at `next_run_at` (also while waiting out an unreachable service).
    Pending,
    /// Claimed by the worker now.
    Running,
    /// Stopped by the user; resumes when they say so.
    Paused,
    /// The service refused our token: waits for the user to integrate again.
    WaitingAuth,
    /// A definite answer from the service (or an internal error): needs the user.
    Failed,
    /// Stopped for good by the user.
    Cancelled,
    /// The service confirmed everything.
    Done,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::Paused,
        JobStatus::WaitingAuth,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Paused => "paused",
            JobStatus::WaitingAuth => "waiting_auth",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The worker may pick it up (now or at `next_run_at`).
    pub fn is_active(self) -> bool {
        match self {
            JobStatus::Pending | JobStatus::Running => true,
            JobStatus::Paused
            | JobStatus::WaitingAuth
            | JobStatus::Failed
            | JobStatus::Cancelled
            | JobStatus::Done => false,
        }
    }

    /// Nothing more will happen without the user.
    pub fn is_final(self) -> bool {
        match self {
            JobStatus::Failed | JobStatus::Cancelled | JobStatus::Done => true,
            JobStatus::Pending
            | JobStatus::Running
            | JobStatus::Paused
            | JobStatus::WaitingAuth => false,
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the remote has of one photo of a job.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum ItemState {
    /// Nothing sent yet.
    Pending,
    /// Some bytes are on the remote (`remote_offset` of them).
    Partial,
    /// The remote has all of it.
    Sent,
    /// The remote refused it for good (the reason is the item's error).
    Rejected,
}

impl ItemState {
    /// Counts as done in the job's totals.
    pub fn is_settled(self) -> bool {
        match self {
            ItemState::Sent | ItemState::Rejected => true,
            ItemState::Pending | ItemState::Partial => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Partial => "partial",
            ItemState::Sent => "sent",
            ItemState::Rejected => "rejected",
        }
    }
}

/// Why a job's last attempt did not complete.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The service could not be reached or answered "later" (network, timeout, 5xx, 429):
    /// the job waits for the service and never gives up on its own.
    Retry,
    /// Written by versions that gave up after a number of retries; read as `Retry`'s
    /// failed cousin so old rows still display.
    RetryExhausted,
    /// A definite refusal: retrying the same thing will not help.
    Permanent,
    /// The service refused the token.
    Auth,
    /// A bug of ours (a driver panicked).
    Internal,
}
