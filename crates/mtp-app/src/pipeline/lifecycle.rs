//! The engine's life in the app: starting it with the drivers, stopping it, and waiting
//! for jobs to settle.

use super::follow::Follower;
use super::{PipelineOptions, kartaview, mapillary, mtpw, panoramax};
use crate::remote::{DestinationRemote, MtpwRemote};
use crate::{App, AppError, AppEvent, AppResult, WeakApp};
use mtp_core::Destination;
use mtp_core::engine::{Driver, Engine, EngineConfig, EngineEvent, JobStatus, Stage, StepError};
use mtp_core::store::{EngineLock, JobRow, Store};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The task that runs the engine, while it runs.
pub(crate) struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Whether nothing will happen to `job` soon without the user: it is in a settled state,
/// or it is a Map the Paths job waiting for a Mapillary job of its sequence that is itself
/// waiting for the user (paused, or waiting for a new sign-in), for the user's answer, or
/// for a later try at the link (hours apart: best effort, not worth a `mtp upload` waiting
/// a day for).
fn settled(job: &JobRow, all: &[JobRow], now_ms: i64) -> bool {
    if !job.status.is_active() {
        return true;
    }
    job.destination == Destination::Mtpw
        && matches!(job.stage, Stage::Poll | Stage::Sync)
        && (all.iter().any(|j| {
            j.sequence_id == job.sequence_id
                && j.destination == Destination::Mapillary
                && matches!(j.status, JobStatus::Paused | JobStatus::WaitingAuth)
        }) || MtpwRemote::of(job).is_ok_and(|r| {
            r.waiting_on
                .is_some_and(|on| mtpw::WAITING_ON_USER.contains(&on.as_str()))
                || r.link_retry_at.is_some_and(|at| at > now_ms + LATER_TRY_MS)
        }))
}

/// A link try further away than this counts as "later" for [`settled`].
const LATER_TRY_MS: i64 = 5 * 60_000;

impl App {
    /// Starts the upload pipeline in the background (idempotent). Needs a tokio runtime.
    pub fn start_engine(&self) -> AppResult<()> {
        self.start_engine_with(EngineConfig::default())
    }

    /// [`App::start_engine`] with the engine's settings given (tests use a short retry
    /// policy). The drivers pace themselves for the mode (sandbox or live).
    pub fn start_engine_with(&self, config: EngineConfig) -> AppResult<()> {
        self.start_pipeline(config, self.mode_pipeline_options())
    }

    /// How the drivers pace themselves in this mode (sandbox or live).
    pub(crate) fn mode_pipeline_options(&self) -> PipelineOptions {
        if self.services().sandbox {
            PipelineOptions::sandbox()
        } else {
            PipelineOptions::live()
        }
    }

    /// Starts the pipeline with both the engine's and the drivers' settings. The engine is
    /// built once per app: after a [`App::shutdown`] this runs the same engine again (its
    /// settings stay those of the first start) and it resumes whatever was left running.
    pub fn start_pipeline(&self, config: EngineConfig, options: PipelineOptions) -> AppResult<()> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            AppError::new(
                "internal",
                "the upload pipeline needs an async runtime to run in",
            )
        })?;
        let engine = self
            .inner
            .engine
            .get_or_init(|| self.build_engine(config, options))
            .clone();
        let mut worker = self
            .inner
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if worker.as_ref().is_some_and(|w| !w.task.is_finished()) {
            return Ok(());
        }
        let (stop, stop_rx) = watch::channel(false);
        let actions = crate::manage::run(self.downgrade(), stop_rx.clone());
        // Taken here, so that the caller knows at once whether this process runs the
        // uploads or another one does (which then carries on with these jobs too).
        let lock = take_engine_lock(self.store());
        let elsewhere = self.inner.engine_elsewhere.clone();
        elsewhere.store(lock.is_none(), Ordering::SeqCst);
        // From here on, what the other process writes is told (see `Follower`).
        let follower = Follower::new(self.now_ms());
        if lock.is_none() {
            self.emit(AppEvent::UploadsElsewhere { elsewhere: true });
        }
        let app = self.downgrade();
        let task = runtime.spawn(async move {
            let mut stop_rx = stop_rx;
            let mut follower = follower;
            let lock = match lock {
                Some(lock) => lock,
                None => match wait_for_engine_lock(&app, &mut follower, &mut stop_rx).await {
                    Some(lock) => {
                        elsewhere.store(false, Ordering::SeqCst);
                        if let Some(app) = app.upgrade() {
                            app.emit(AppEvent::UploadsElsewhere { elsewhere: false });
                        }
                        lock
                    }
                    None => return,
                },
            };
            // Zips left by an earlier process, before any job can write one.
            if let Some(app) = app.upgrade() {
                super::sweep_zips(&app).await;
            }
            let sequences = watch_sequences(app, follower, stop_rx.clone());
            let engine = async move {
                if let Err(e) = engine.run(stop_rx).await {
                    tracing::error!("the upload pipeline stopped: {e}");
                }
            };
            // The uploads, the edits and deletes of sequences already on the services, and
            // the sequences other processes save, edit or delete meanwhile.
            tokio::join!(engine, actions, sequences);
            drop(lock);
        });
        *worker = Some(Worker { stop, task });
        Ok(())
    }

    /// Whether another process runs this database's uploads, this one waiting to take over
    /// when it stops (the desktop app while `mtp upload` runs, or the other way round).
    pub fn engine_elsewhere(&self) -> bool {
        self.inner.engine_elsewhere.load(Ordering::SeqCst)
    }

    /// Whether another process runs this database's uploads now: this one waits for it
    /// (see [`App::engine_elsewhere`]), or has not started its own and the lock is taken.
    pub fn uploads_run_elsewhere(&self) -> bool {
        if self.engine_elsewhere() {
            return true;
        }
        let running_here = self
            .inner
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|w| !w.task.is_finished());
        !running_here && matches!(self.store().try_engine_lock(), Ok(None))
    }

    fn build_engine(&self, config: EngineConfig, options: PipelineOptions) -> Engine {
        let shared = Arc::new(Shared {
            app: self.downgrade(),
            options,
        });
        let mut drivers: HashMap<Destination, Arc<dyn Driver>> = HashMap::new();
        drivers.insert(
            Destination::Mapillary,
            Arc::new(mapillary::MapillaryDriver::new(shared.clone())),
        );
        drivers.insert(
            Destination::Kartaview,
            Arc::new(kartaview::KartaViewDriver::new(shared.clone())),
        );
        drivers.insert(
            Destination::Panoramax,
            Arc::new(panoramax::PanoramaxDriver::new(shared.clone())),
        );
        drivers.insert(Destination::Mtpw, Arc::new(mtpw::MtpwDriver::new(shared)));
        let events = self.inner.events.clone();
        let sink = Arc::new(move |event: EngineEvent| {
            let event = match event {
                EngineEvent::JobChanged {
                    job_id,
                    sequence_id,
                    status,
                    stage,
                } => AppEvent::JobChanged {
                    job_id,
                    sequence_id,
                    status,
                    stage,
                },
                EngineEvent::Progress {
                    job_id,
                    sequence_id,
                    photos_done,
                    photos_total,
                    bytes_done,
                    bytes_total,
                } => AppEvent::JobProgress {
                    job_id,
                    sequence_id,
                    photos_done,
                    photos_total,
                    bytes_done,
                    bytes_total,
                },
            };
            // No receiver is fine (the CLI often has none).
            let _ = events.send(event);
        });
        Engine::new(self.store().clone(), self.clock(), drivers, config, sink)
    }

    /// Whether the pipeline is running.
    pub fn engine_running(&self) -> bool {
        self.inner
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|w| !w.task.is_finished())
    }

    /// Stops the pipeline and waits for it: running stages stop at their next checkpoint
    /// (between photos, or mid-photo for a transfer) and resume at the next start.
    pub async fn shutdown(&self) {
        let worker = self
            .inner
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = worker {
            let _ = worker.stop.send(true);
            let _ = worker.task.await;
        }
    }

    /// Stops the pipeline the way a crash or a kill would: no stage reaches a checkpoint,
    /// requests in flight are dropped and jobs stay `running` in the database (the next
    /// start puts them back in the queue). For tests of crash recovery.
    #[doc(hidden)]
    pub async fn kill_engine(&self) {
        let worker = self
            .inner
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = worker {
            worker.task.abort();
            let _ = worker.task.await;
        }
    }

    /// Waits until every job of these sequences is done, failed, cancelled, paused or
    /// waiting for the user to integrate again (a Map the Paths job waiting for such a
    /// Mapillary job counts as waiting too), and returns them. Errors with code
    /// `timeout` (listing where each job is) if that takes longer than `timeout`.
    pub async fn wait_for_jobs(
        &self,
        sequence_ids: &[i64],
        timeout: Duration,
    ) -> AppResult<Vec<JobRow>> {
        let mut events = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut jobs = Vec::new();
            for &id in sequence_ids {
                jobs.extend(self.store().jobs_of_sequence(id).await?);
            }
            let now_ms = self.now_ms();
            if jobs.iter().all(|j| settled(j, &jobs, now_ms)) {
                return Ok(jobs);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let states: Vec<String> = jobs
                    .iter()
                    .map(|j| format!("{} {} {}", j.destination, j.stage, j.status))
                    .collect();
                return Err(AppError::new(
                    "timeout",
                    format!(
                        "the uploads did not settle in {} s: {}",
                        timeout.as_secs(),
                        states.join(", ")
                    ),
                ));
            }
            // Re-read on every job event, and at least every 200 ms.
            let wait = (deadline - now).min(Duration::from_millis(200));
            let _ = tokio::time::timeout(wait, events.recv()).await;
        }
    }
}

/// The right to run the uploads: `Some` when this process has it (`Some(None)` if the lock
/// file cannot be made: the uploads run unguarded, as before there was a lock), `None`
/// while another process holds it.
fn take_engine_lock(store: &Store) -> Option<Option<EngineLock>> {
    match store.try_engine_lock() {
        Ok(Some(lock)) => Some(Some(lock)),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(
                "cannot tell whether another process runs the uploads ({e}): running them here"
            );
            Some(None)
        }
    }
}

/// Waits until no other process runs this database's uploads, trying every
/// [`ENGINE_LOCK_RETRY`] and meanwhile showing what that process does (see
/// [`Follower`]); `None` if this pipeline is stopped (or the app gone) first.
async fn wait_for_engine_lock(
    app: &WeakApp,
    follower: &mut Follower,
    stop: &mut watch::Receiver<bool>,
) -> Option<Option<EngineLock>> {
    let store = app.upgrade()?.store().clone();
    tracing::info!(
        "another process (the desktop app or `mtp`) runs the uploads of {}: waiting to take over",
        store.location()
    );
    loop {
        if *stop.borrow() {
            return None;
        }
        tokio::select! {
            _ = tokio::time::sleep(ENGINE_LOCK_RETRY) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return None;
        }
        let app = app.upgrade()?;
        if let Err(e) = follower.look(&app).await {
            tracing::warn!("cannot read the uploads another process runs: {e}");
        }
        drop(app);
        if let Some(lock) = take_engine_lock(&store) {
            tracing::info!("the other process stopped: running the uploads here");
            return Some(lock);
        }
    }
}

/// How often a process waiting for another's uploads to stop tries to take over, and
/// shows what the other process did meanwhile.
const ENGINE_LOCK_RETRY: Duration = Duration::from_secs(1);

/// While this process runs the uploads, tells its window of the sequences other processes
/// save, edit or delete (see [`Follower::look_at_sequences`]), every
/// [`SEQUENCES_LOOK_EVERY`] until the pipeline stops.
async fn watch_sequences(app: WeakApp, mut follower: Follower, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(app) = app.upgrade() else { return };
        if let Err(e) = follower.look_at_sequences(&app).await {
            tracing::warn!("cannot read the sequences other processes save: {e}");
        }
        drop(app);
        tokio::select! {
            _ = tokio::time::sleep(SEQUENCES_LOOK_EVERY) => {}
            changed = stop.changed() => if changed.is_err() { return },
        }
    }
}

/// How often a process that runs the uploads looks for sequences other processes saved,
/// edited or deleted.
const SEQUENCES_LOOK_EVERY: Duration = Duration::from_secs(2);

/// What every driver holds: the app (weakly) and the pacing.
pub(crate) struct Shared {
    pub(super) app: WeakApp,
    pub(super) options: PipelineOptions,
}

impl Shared {
    /// The app, or "stop" when it is going away.
    pub(super) fn app(&self) -> Result<App, StepError> {
        self.app.upgrade().ok_or(StepError::Interrupted)
    }
}
