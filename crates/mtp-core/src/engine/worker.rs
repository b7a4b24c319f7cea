//! The background worker: claims due jobs, runs one stage each, applies the outcome.

use super::decide::{Action, RetryPolicy, apply_outcome, next_action};
use super::{Driver, EngineEvent, EventSink, JobCtx, JobStatus, Stage, StepError};
use crate::Destination;
use crate::clock::SharedClock;
use crate::store::{JobRow, NewEvent, Store, StoreError};
use futures::FutureExt;
use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How often, at most, the worker gives freed memory back while jobs keep running
/// ([`crate::memory::release_free_memory`]; always when the last running job stops).
const RELEASE_MEMORY_EVERY: Duration = Duration::from_secs(10);
/// How often the engine looks for its running jobs paused, cancelled or deleted by another
/// process sharing the database (this process's own pauses interrupt them at once).
const LOOK_FOR_STOPS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Jobs running at once (each is one destination of one sequence).
    pub max_jobs: usize,
    /// Photo transfers at once, across all jobs.
    pub max_transfers: usize,
    pub retry: RetryPolicy,
    /// Longest the worker sleeps without re-checking the table.
    pub idle_poll_ms: u64,
    pub progress_interval_ms: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_jobs: 4,
            max_transfers: 4,
            retry: RetryPolicy::default(),
            idle_poll_ms: 2_000,
            progress_interval_ms: 150,
        }
    }
}

/// The pipeline engine. Cheap to clone; `run` drives it until shutdown.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: SharedClock,
    drivers: HashMap<Destination, Arc<dyn Driver>>,
    config: EngineConfig,
    events: EventSink,
    wake: Notify,
    transfers: Arc<Semaphore>,
    /// How to interrupt each job a task holds now: from its claim until its outcome is
    /// stored. A job in here is never claimed again (a pause then a resume makes it
    /// `pending` while the task that ran it may still be unwinding).
    running: Mutex<HashMap<i64, CancellationToken>>,
}

impl Engine {
    pub fn new(
        store: Store,
        clock: SharedClock,
        drivers: HashMap<Destination, Arc<dyn Driver>>,
        config: EngineConfig,
        events: EventSink,
    ) -> Engine {
        let transfers = Arc::new(Semaphore::new(config.max_transfers.max(1)));
        Engine {
            inner: Arc::new(Inner {
                store,
                clock,
                drivers,
                config,
                events,
                wake: Notify::new(),
                transfers,
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Something changed (new jobs, resume, retry): look at the table now.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Whether a stage of any of these jobs is still running here (or its outcome not yet
    /// stored): a cancelled job's stage runs on until its next checkpoint.
    pub fn holds_any(&self, job_ids: &[i64]) -> bool {
        self.inner
            .running
            .lock()
            .is_ok_and(|running| job_ids.iter().any(|id| running.contains_key(id)))
    }

    /// Asks running jobs to stop at their next checkpoint (after pause or cancel).
    pub fn interrupt(&self, job_ids: &[i64]) {
        if let Ok(running) = self.inner.running.lock() {
            for id in job_ids {
                if let Some(token) = running.get(id) {
                    token.cancel();
                }
            }
        }
        self.wake();
    }

    /// Runs until `shutdown` turns true. Jobs left `running` by a crash are resumed first.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<(), StoreError> {
        let inner = &self.inner;
        let resumed = inner
            .store
            .requeue_running_jobs(inner.clock.now_ms())
            .await?;
        if resumed > 0 {
            tracing::info!(resumed, "resuming jobs interrupted by the last shutdown");
        }
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut trimmed_at = Instant::now();
        let mut looked_for_stops = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            while tasks.len() < inner.config.max_jobs {
                let now = inner.clock.now_ms();
                let held: Vec<i64> = inner
                    .running
                    .lock()
                    .map(|running| running.keys().copied().collect())
                    .unwrap_or_default();
                match inner.store.claim_next_job(now, &held).await {
                    Ok(Some(job)) => {
                        let token = CancellationToken::new();
                        if let Ok(mut running) = inner.running.lock() {
                            running.insert(job.id, token.clone());
                        }
                        let held = Held {
                            engine: self.clone(),
                            job_id: job.id,
                        };
                        tasks.spawn(async move { held.engine.run_job(job, token).await });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("cannot claim a job: {e}");
                        break;
                    }
                }
            }
            if !tasks.is_empty() && looked_for_stops.elapsed() >= LOOK_FOR_STOPS_EVERY {
                self.stop_jobs_stopped_elsewhere().await;
                looked_for_stops = Instant::now();
            }
            let now = inner.clock.now_ms();
            let sleep_ms = match inner.store.next_due_at().await {
                Ok(Some(due)) if due > now => ((due - now) as u64).min(inner.config.idle_poll_ms),
                Ok(Some(_)) if tasks.len() < inner.config.max_jobs => 0,
                _ => inner.config.idle_poll_ms,
            };
            tokio::select! {
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(sleep_ms.max(10))) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    // A job's photo and item rows are freed when it stops: give the pages
                    // back when the last one stops, and now and then while others run.
                    if tasks.is_empty() || trimmed_at.elapsed() >= RELEASE_MEMORY_EVERY {
                        crate::memory::release_free_memory();
                        trimmed_at = Instant::now();
                    }
                }
                _ = shutdown.changed() => {}
            }
        }
        // Stop at the next checkpoint; whatever is mid-way is resumed at the next start.
        if let Ok(running) = inner.running.lock() {
            for token in running.values() {
                token.cancel();
            }
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    /// Interrupts the running jobs the user paused, cancelled or deleted without this
    /// engine being told: from another process (the window while `mtp upload` runs the
    /// uploads, or `mtp` while the window does).
    async fn stop_jobs_stopped_elsewhere(&self) {
        let held: Vec<i64> = self
            .inner
            .running
            .lock()
            .map(|running| running.keys().copied().collect())
            .unwrap_or_default();
        match self.inner.store.jobs_stopped_among(&held).await {
            Ok(stopped) if !stopped.is_empty() => {
                tracing::info!(
                    ?stopped,
                    "jobs stopped by another process: interrupting them"
                );
                self.interrupt(&stopped);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot look for jobs stopped elsewhere: {e}"),
        }
    }

    async fn run_job(&self, job: JobRow, token: CancellationToken) {
        let inner = &self.inner;
        let now = inner.clock.now_ms();
        let destination = job.destination;
        let stage = match next_action(&job, now) {
            Action::Run(stage) => stage,
            // Claimed but nothing to run (e.g. a corrupt stage name): park it visibly.
            Action::WaitUntil(_) | Action::Idle => {
                let _ = inner
                    .store
                    .update_job(
                        job.id,
                        &crate::store::JobUpdate {
                            status: Some(if job.stage == Stage::Done {
                                JobStatus::Done
                            } else {
                                JobStatus::Failed
                            }),
                            ..Default::default()
                        },
                        None,
                        now,
                    )
                    .await;
                return;
            }
        };
        let Some(driver) = inner.drivers.get(&destination).cloned() else {
            let result = Err(StepError::permanent(format!(
                "{} is not available in this mode",
                destination.label()
            )));
            self.finish(&job, stage, None, false, result).await;
            return;
        };
        // Which sign-in the stage runs with: a refusal of its token must not undo a sign-in
        // the user makes meanwhile.
        let signed_in = inner
            .store
            .account_sign_ins(destination)
            .await
            .ok()
            .flatten();
        self.emit_changed(&job, JobStatus::Running, stage);
        let ctx = JobCtx {
            store: inner.store.clone(),
            clock: inner.clock.clone(),
            job_id: job.id,
            sequence_id: job.sequence_id,
            destination,
            interrupted: token,
            transfers: inner.transfers.clone(),
            events: inner.events.clone(),
            last_progress_at: AtomicI64::new(0),
            in_flight: AtomicI64::new(0),
            progress_interval_ms: inner.config.progress_interval_ms,
        };
        // A panicking driver is a bug of ours: the job fails and says where, the worker goes on.
        let result = match std::panic::AssertUnwindSafe(driver.run(stage, &job, &ctx))
            .catch_unwind()
            .await
        {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(job = job.id, %destination, %stage, "driver panicked: {what}");
                Err(StepError::Internal {
                    message: format!(
                        "Internal error in {}, {}: {what}",
                        destination.label(),
                        stage
                    ),
                })
            }
        };
        let answered = result.is_ok() && driver.reaches_service(stage);
        self.finish(&job, stage, signed_in, answered, result).await;
    }

    /// Stores a stage's outcome. `signed_in`: the account's sign-in count when the stage
    /// began. `answered`: the stage got through to the service, so the jobs waiting for it
    /// try again now (no sooner than it told them).
    async fn finish(
        &self,
        job: &JobRow,
        stage: Stage,
        signed_in: Option<i64>,
        answered: bool,
        result: Result<super::StepOutcome, StepError>,
    ) {
        let inner = &self.inner;
        let result = match result {
            Err(StepError::Auth { message }) => self.refused(job, signed_in, message).await,
            other => other,
        };
        if answered {
            // Before this job's row is written: until then it is `running`, so it cannot be
            // woken itself, and nothing it does next can be undone by this.
            let now = inner.clock.now_ms();
            match inner
                .store
                .wake_jobs_waiting_for(job.destination, now)
                .await
            {
                Ok(0) => {}
                Ok(woken) => tracing::info!(%job.destination, woken, "service answers again"),
                Err(e) => tracing::warn!("cannot wake waiting jobs: {e}"),
            }
        }
        let now = inner.clock.now_ms();
        // The stage may have made progress (photos sent reset the retry counter): decide from
        // the row as it is now, not as it was claimed.
        let current = match inner.store.job(job.id).await {
            Ok(Some(row)) => row,
            _ => job.clone(),
        };
        let update = apply_outcome(
            &current,
            stage,
            &result,
            &inner.config.retry,
            now,
            rand::random::<f64>(),
        );
        let (kind, message) = match &result {
            Ok(_) => (
                "stage_done",
                format!("{} finished {}", job.destination, stage.as_str()),
            ),
            Err(StepError::Interrupted) => (
                "interrupted",
                format!("{} stopped during {}", job.destination, stage.as_str()),
            ),
            Err(e @ StepError::Retry { .. }) => (
                "retry",
                format!("{} {}: {e} (will retry)", job.destination, stage.as_str()),
            ),
            Err(e @ StepError::Permanent { .. }) => (
                "failed",
                format!("{} {}: {e}", job.destination, stage.as_str()),
            ),
            Err(e @ StepError::Auth { .. }) => (
                "needs_auth",
                format!("{} {}: {e}", job.destination, stage.as_str()),
            ),
            Err(e @ StepError::Internal { .. }) => ("internal_error", e.to_string()),
        };
        debug_assert!(crate::store::STAGE_END_EVENTS.contains(&kind));
        let event = NewEvent {
            kind,
            sequence_id: Some(job.sequence_id),
            job_id: Some(job.id),
            message: &message,
            data: None,
        };
        match inner
            .store
            .update_job(job.id, &update, Some(&event), now)
            .await
        {
            Ok(Some(row)) => {
                if let Err(StepError::Auth { .. }) = &result {
                    // A sign-in between the mark above and this row may have released the
                    // jobs waiting for one before this job was among them.
                    let now_signed_in = inner.store.account_sign_ins(row.destination).await;
                    if matches!(now_signed_in, Ok(Some(n)) if Some(n) != signed_in) {
                        let _ = inner.store.release_waiting_auth(row.destination, now).await;
                    }
                }
                self.emit_changed(&row, row.status, row.stage);
            }
            Ok(None) => {}
            Err(e) => tracing::error!(job = job.id, "cannot store a step's outcome: {e}"),
        }
    }

    /// The service refused the token a stage used. The account needs a new sign-in, unless
    /// the user signed in again while the stage ran: then the stage is tried again with it.
    async fn refused(
        &self,
        job: &JobRow,
        signed_in: Option<i64>,
        message: String,
    ) -> Result<super::StepOutcome, StepError> {
        let store = &self.inner.store;
        let now = self.inner.clock.now_ms();
        let Some(seen) = signed_in else {
            return Err(StepError::Auth { message });
        };
        match store
            .mark_needs_reauth_unless_signed_in_since(job.destination, seen, now)
            .await
        {
            Ok(true) => Err(StepError::Auth { message }),
            Ok(false) if matches!(store.account_sign_ins(job.destination).await, Ok(Some(_))) => {
                Err(StepError::retry(format!(
                    "{message} — you signed in to {} again meanwhile: trying again with that sign-in",
                    job.destination.label()
                )))
            }
            Ok(false) => Err(StepError::Auth { message }),
            Err(e) => {
                tracing::warn!(
                    "cannot mark {} as needing a new sign-in: {e}",
                    job.destination
                );
                Err(StepError::Auth { message })
            }
        }
    }

    fn emit_changed(&self, job: &JobRow, status: JobStatus, stage: Stage) {
        (self.inner.events)(EngineEvent::JobChanged {
            job_id: job.id,
            sequence_id: job.sequence_id,
            status,
            stage,
        });
    }
}

/// A claimed job's hold on the engine: released (and the engine woken to claim again) when
/// its task ends, whether the outcome was stored, the stage panicked or the task was dropped.
struct Held {
    engine: Engine,
    job_id: i64,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut running) = self.engine.inner.running.lock() {
            running.remove(&self.job_id);
        }
        self.engine.wake();
    }
}
