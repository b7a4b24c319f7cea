//! The upload pipeline: for every (sequence, destination) a job walks
//! `prepare → upload → publish → poll → sync`. The worker claims due jobs from SQLite, runs one
//! stage through the destination's [`Driver`], and stores the outcome in one transaction.
//! What to do next is decided by pure functions in [`decide`]; drivers save remote ids
//! through [`JobCtx`] the moment they learn them, so a restart resumes instead of resending.

pub mod decide;
mod state;
mod worker;

pub use decide::{Action, RetryPolicy, apply_outcome, next_action};
pub use state::{ErrorKind, ItemState, JobStatus, Stage};
pub use worker::{Engine, EngineConfig};

use crate::Destination;
use crate::clock::SharedClock;
use crate::store::{ItemUpdate, JobItemRow, JobRow, Store, StoreError};
use futures::future::BoxFuture;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// A stage that completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Go on to the next stage.
    Advance,
    /// Nothing more to do for this job (e.g. polling gave up gracefully).
    Finish,
    /// Run this same stage again later (polling).
    Again { after_ms: i64 },
    /// Run this same stage again at this time (a deadline set earlier, which time spent in
    /// the stage must not push back).
    AgainAt { at_ms: i64 },
}

/// A stage that did not complete, classified so the engine knows what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// Worth retrying (network, 5xx, rate limit); `after_ms` is the server's requested delay.
    #[error("{message}")]
    Retry {
        after_ms: Option<i64>,
        message: String,
    },
    /// Retrying will not help; the message tells the user why.
    #[error("{message}")]
    Permanent { message: String },
    /// The service refused our token: the user must integrate again. The job waits.
    #[error("{message}")]
    Auth { message: String },
    /// A bug of ours (a driver panicked): the job fails with what happened, nothing retries.
    #[error("{message}")]
    Internal { message: String },
    /// The user paused or cancelled the job while it ran.
    #[error("interrupted")]
    Interrupted,
}

impl StepError {
    pub fn retry(message: impl Into<String>) -> Self {
        StepError::Retry {
            after_ms: None,
            message: message.into(),
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        StepError::Permanent {
            message: message.into(),
        }
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        StepError::retry(format!("local database: {e}"))
    }
}

/// What the engine tells the outside world. Ids only; listeners re-read what they show.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    JobChanged {
        job_id: i64,
        sequence_id: i64,
        status: JobStatus,
        stage: Stage,
    },
    Progress {
        job_id: i64,
        sequence_id: i64,
        photos_done: i64,
        photos_total: i64,
        bytes_done: i64,
        bytes_total: i64,
    },
}

pub type EventSink = Arc<dyn Fn(EngineEvent) + Send + Sync>;

/// Runs the stages of one destination.
pub trait Driver: Send + Sync + 'static {
    fn run<'a>(
        &'a self,
        stage: Stage,
        job: &'a JobRow,
        ctx: &'a JobCtx,
    ) -> BoxFuture<'a, Result<StepOutcome, StepError>>;

    /// Whether `stage` asks the service something, so that getting through it shows the
    /// service answers (and jobs waiting for it may try again). Checking files does not.
    fn reaches_service(&self, stage: Stage) -> bool {
        matches!(stage, Stage::Upload | Stage::Publish | Stage::Poll)
    }
}

/// What a driver may touch while it runs a stage.
pub struct JobCtx {
    pub store: Store,
    pub clock: SharedClock,
    pub job_id: i64,
    pub sequence_id: i64,
    pub destination: Destination,
    interrupted: CancellationToken,
    transfers: Arc<Semaphore>,
    events: EventSink,
    last_progress_at: AtomicI64,
    in_flight: AtomicI64,
    progress_interval_ms: i64,
}

impl JobCtx {
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Err(Interrupted) once the user paused or cancelled this job: call between items.
    pub fn check(&self) -> Result<(), StepError> {
        if self.interrupted.is_cancelled() {
            Err(StepError::Interrupted)
        } else {
            Ok(())
        }
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupted.is_cancelled()
    }

    /// Completes once the user paused or cancelled this job (or the app shuts down): race a
    /// transfer against it to drop the request at once.
    pub async fn interrupted(&self) {
        self.interrupted.cancelled().await
    }

    /// A slot in the app-wide limit of parallel transfers; hold it while sending bytes.
    pub async fn transfer_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, StepError> {
        self.transfers
            .acquire()
            .await
            .map_err(|_| StepError::Interrupted)
    }

    /// Saves remote ids on the job now, before doing anything else with them.
    pub async fn save_remote(
        &self,
        changes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), StepError> {
        Ok(self
            .store
            .patch_job_remote(self.job_id, changes, self.now())
            .await?)
    }

    pub async fn items(&self) -> Result<Vec<JobItemRow>, StepError> {
        Ok(self.store.job_items(self.job_id).await?)
    }

    /// Records one photo's remote state and reports progress (throttled).
    pub async fn save_item(
        &self,
        photo_id: i64,
        state: ItemState,
        remote_key: Option<&str>,
        remote_offset: i64,
        remote_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StepError> {
        self.store
            .update_item(
                self.job_id,
                photo_id,
                state,
                remote_key,
                remote_offset,
                remote_id,
                error,
                self.now(),
            )
            .await?;
        self.report_progress(state != ItemState::Partial).await;
        Ok(())
    }

    /// Records several photos' remote states in one transaction and reports progress
    /// (see [`Store::update_items`]).
    pub async fn save_items(&self, items: &[ItemUpdate]) -> Result<(), StepError> {
        self.store
            .update_items(self.job_id, items, self.now())
            .await?;
        self.report_progress(items.iter().any(|i| i.state != ItemState::Partial))
            .await;
        Ok(())
    }

    /// Emits a progress event at most every `progress_interval_ms` (always when `force`).
    pub async fn report_progress(&self, force: bool) {
        let now = self.now();
        let last = self.last_progress_at.load(Ordering::Relaxed);
        if !force && now - last < self.progress_interval_ms {
            return;
        }
        self.last_progress_at.store(now, Ordering::Relaxed);
        if let Ok(Some(job)) = self.store.job(self.job_id).await {
            (self.events)(EngineEvent::Progress {
                job_id: job.id,
                sequence_id: job.sequence_id,
                photos_done: job.photos_done,
                photos_total: job.photos_total,
                bytes_done: (job.bytes_done + self.in_flight.load(Ordering::Relaxed).max(0))
                    .min(job.bytes_total),
                bytes_total: job.bytes_total,
            });
        }
    }

    /// Counts bytes sent but not yet stored as done (negative when an item completes), and
    /// reports progress, throttled.
    pub async fn bytes_in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
        self.report_progress(false).await;
    }
}
