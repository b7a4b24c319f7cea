//! The upload pipeline as the app runs it: one [`Driver`] per destination (the child
//! modules), the engine's life (start, shutdown) and waiting for jobs to settle.
//!
//! Every driver follows the same rules:
//! - a stage can be run again at any time (after a crash, a retry, a pause) and then only
//!   does what the remote does not have yet;
//! - every remote id is saved on the job (`remote_json`) or its photo item the moment the
//!   remote returns it, before anything else is done with it;
//! - provider errors keep their meaning: retry (with the server's delay), permanent (with
//!   the server's words), auth (the engine parks the job until the user integrates again);
//! - a photo that fails for good is named in the job's error and keeps its own error on its
//!   item, while the other photos go on; the job then fails and "retry" sends only what is
//!   missing.
//!
//! What each job's `remote_json` holds is one typed struct per destination, in
//! [`crate::remote`]; drivers change it through [`Remote::update`].
//!
//! Per photo (`job_items`): Mapillary `remote_key` = upload key `mly_tools_<md5>.jpg` (saved
//! before the first byte), `remote_id` = file handle; KartaView `remote_key` =
//! `sequenceIndex`, `remote_id` = photo id; Panoramax `remote_key` = file name,
//! `remote_id` = picture id.

mod kartaview;
mod mapillary;
pub mod mtpw;
mod panoramax;

use crate::remote::{DestinationRemote, MtpwRemote};
use crate::{App, AppError, AppEvent, AppResult, WeakApp};
use futures::StreamExt;
use mtp_core::Destination;
use mtp_core::engine::{
    Driver, Engine, EngineConfig, EngineEvent, ItemState, JobCtx, JobStatus, Stage, StepError,
    StepOutcome,
};
use mtp_core::store::{Account, JobItemRow, JobRow, NewEvent, PhotoRow};
use mtp_providers::{ErrorKind, ProviderError};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How the drivers pace themselves. The engine's own settings (jobs and transfers at once,
/// retry policy) are in [`EngineConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineOptions {
    /// Photos of one job sent at once (each also holds one of the engine's transfer slots).
    pub parallel_uploads: usize,
    /// Photos per Mapillary manifest (one `finish_upload`, one cluster, one sequence).
    pub mapillary_chunk: usize,
    /// First wait between two looks at a service's processing state; doubles up to
    /// `poll_max_ms`.
    pub poll_first_ms: i64,
    pub poll_max_ms: i64,
    /// After this long without the service showing the published sequence, stop looking
    /// (the job ends with a note; the upload itself is done).
    pub publish_timeout_ms: i64,
    /// How often Map the Paths Web looks whether Mapillary has published the sequence.
    pub mtpw_wait_ms: i64,
    /// Mapillary's processing stages are read this often for `mapillary_fast_window_ms`
    /// after `finish_upload`, then every `mapillary_poll_slow_ms`.
    pub mapillary_poll_fast_ms: i64,
    pub mapillary_fast_window_ms: i64,
    pub mapillary_poll_slow_ms: i64,
    /// When Map the Paths Web's server cannot check the Mapillary account, the waits
    /// before each new try (all within a day of the first failure); then the job ends
    /// created but not linked.
    pub mtpw_link_retry_ms: Vec<i64>,
}

impl PipelineOptions {
    /// Against the real services: Mapillary publishes "usually within 72 h" (PROTOCOLS §2.6).
    pub fn live() -> PipelineOptions {
        PipelineOptions {
            parallel_uploads: 4,
            mapillary_chunk: mtp_core::plan::MAPILLARY_MAX_SEQUENCE_PHOTOS,
            poll_first_ms: 30_000,
            poll_max_ms: 10 * 60_000,
            publish_timeout_ms: 72 * 3_600_000,
            mtpw_wait_ms: 60_000,
            mapillary_poll_fast_ms: 30_000,
            mapillary_fast_window_ms: 5 * 60_000,
            mapillary_poll_slow_ms: 15 * 60_000,
            mtpw_link_retry_ms: vec![3_600_000, 4 * 3_600_000, 12 * 3_600_000],
        }
    }

    /// Against the built-in emulators, which process in seconds.
    pub fn sandbox() -> PipelineOptions {
        PipelineOptions {
            poll_first_ms: 500,
            poll_max_ms: 5_000,
            mtpw_wait_ms: 500,
            mapillary_poll_fast_ms: 250,
            mapillary_fast_window_ms: 60_000,
            mapillary_poll_slow_ms: 2_000,
            ..PipelineOptions::live()
        }
    }

    /// The wait before look number `polls` (0-based) at a processing state.
    pub(crate) fn poll_delay(&self, polls: i64) -> i64 {
        let doubled = self
            .poll_first_ms
            .max(1)
            .saturating_mul(1_i64 << polls.clamp(0, 30));
        doubled.min(self.poll_max_ms.max(self.poll_first_ms))
    }
}

/// The task that runs the engine, while it runs.
pub(crate) struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Whether nothing will happen to `job` until the user acts: it is in a settled state, or
/// it is a Map the Paths job waiting for a Mapillary job of its sequence that is itself
/// waiting for the user (paused, or waiting for a new sign-in).
fn settled(job: &JobRow, all: &[JobRow]) -> bool {
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
        }))
}

impl App {
    /// Starts the upload pipeline in the background (idempotent). Needs a tokio runtime.
    pub fn start_engine(&self) -> AppResult<()> {
        self.start_engine_with(EngineConfig::default())
    }

    /// [`App::start_engine`] with the engine's settings given (tests use a short retry
    /// policy). The drivers pace themselves for the mode (sandbox or live).
    pub fn start_engine_with(&self, config: EngineConfig) -> AppResult<()> {
        let options = if self.services().sandbox {
            PipelineOptions::sandbox()
        } else {
            PipelineOptions::live()
        };
        self.start_pipeline(config, options)
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
        let task = runtime.spawn(async move {
            if let Err(e) = engine.run(stop_rx).await {
                tracing::error!("the upload pipeline stopped: {e}");
            }
        });
        *worker = Some(Worker { stop, task });
        Ok(())
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
            if jobs.iter().all(|j| settled(j, &jobs)) {
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

/// What every driver holds: the app (weakly) and the pacing.
pub(crate) struct Shared {
    app: WeakApp,
    options: PipelineOptions,
}

impl Shared {
    /// The app, or "stop" when it is going away.
    fn app(&self) -> Result<App, StepError> {
        self.app.upgrade().ok_or(StepError::Interrupted)
    }
}

/// A failed call, as the engine should treat it.
pub(crate) fn provider_step_error(e: ProviderError) -> StepError {
    let message = e.to_string();
    match e.kind() {
        ErrorKind::Retry { after } => StepError::Retry {
            after_ms: after.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            message,
        },
        // The client already re-read the offset a few times: try again soon.
        ErrorKind::OffsetInvalid => StepError::Retry {
            after_ms: Some(0),
            message,
        },
        ErrorKind::Auth => StepError::Auth { message },
        ErrorKind::Permanent => StepError::Permanent { message },
    }
}

/// An app-level failure (no account, a refused refresh, the database), for the engine.
pub(crate) fn app_step_error(e: AppError) -> StepError {
    match e.code {
        "needs_reauth" | "not_connected" | "auth" => StepError::Auth { message: e.message },
        "network" | "db_error" | "internal" => StepError::Retry {
            after_ms: None,
            message: e.message,
        },
        _ => StepError::Permanent { message: e.message },
    }
}

/// The stored account of `service` with a usable token.
pub(crate) async fn account(app: &App, service: Destination) -> Result<Account, StepError> {
    app.access_token(service).await.map_err(app_step_error)
}

/// `prepare` of the photo destinations: every photo is still there, with the size it had
/// when the folder was read (the upload key and the plan depend on the exact bytes).
pub(crate) async fn check_files(ctx: &JobCtx) -> Result<StepOutcome, StepError> {
    let items = ctx.items().await?;
    if items.is_empty() {
        return Err(StepError::permanent("This sequence has no photos to send."));
    }
    let mut problems = Vec::new();
    let mut count = 0;
    for item in &items {
        if item.state == ItemState::Sent || item.state == ItemState::Rejected {
            continue;
        }
        ctx.check()?;
        let problem = match tokio::fs::metadata(&item.path).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("missing".to_string()),
            Err(e) => Some(format!("unreadable: {e}")),
            Ok(m) if !m.is_file() => Some("not a file any more".to_string()),
            Ok(m) if i64::try_from(m.len()).ok() != Some(item.file_size) => Some(format!(
                "changed: {} bytes, was {}",
                m.len(),
                item.file_size
            )),
            Ok(_) => None,
        };
        if let Some(p) = problem {
            count += 1;
            if problems.len() < 3 {
                problems.push(format!("{} ({p})", item.path));
            }
        }
    }
    if count == 0 {
        return Ok(StepOutcome::Advance);
    }
    let more = if count > problems.len() {
        format!(" and {} more", count - problems.len())
    } else {
        String::new()
    };
    Err(StepError::permanent(format!(
        "{count} photo file(s) changed or disappeared since the folder was read: {}{more}. \
         Put them back, or read the folder again.",
        problems.join(", ")
    )))
}

/// The stored photos of the job's sequence, by id.
pub(crate) async fn photos_by_id(ctx: &JobCtx) -> Result<HashMap<i64, PhotoRow>, StepError> {
    Ok(ctx
        .store
        .photos(ctx.sequence_id)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect())
}

/// The stored photo of an item.
pub(crate) fn photo_of<'a>(
    photos: &'a HashMap<i64, PhotoRow>,
    item: &JobItemRow,
) -> Result<&'a PhotoRow, StepError> {
    photos.get(&item.photo_id).ok_or_else(|| {
        StepError::permanent(format!(
            "{} is no longer part of this sequence in the database",
            item.file_name
        ))
    })
}

/// A job's remote state (one typed struct per destination, see [`crate::remote`]) that
/// writes through: [`Remote::update`] saves the fields it changed to the database at once.
pub(crate) struct Remote<T> {
    state: T,
    /// The fields as last saved.
    saved: serde_json::Map<String, Value>,
}

impl<T> std::ops::Deref for Remote<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.state
    }
}

fn fields<T: Serialize>(state: &T) -> Result<serde_json::Map<String, Value>, StepError> {
    match serde_json::to_value(state) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(StepError::Internal {
            message: format!("remote state is not an object: {other}"),
        }),
        Err(e) => Err(StepError::Internal {
            message: format!("remote state cannot be written: {e}"),
        }),
    }
}

impl<T: DestinationRemote> Remote<T> {
    /// The job's remote state as stored now (a stage may run again after saving some).
    pub(crate) async fn load(ctx: &JobCtx) -> Result<Remote<T>, StepError> {
        let job = ctx
            .store
            .job(ctx.job_id)
            .await?
            .ok_or_else(|| StepError::permanent("this upload was removed from the queue"))?;
        let state = T::of(&job).map_err(|e| {
            StepError::permanent(format!(
                "{e}: remove this upload and add the sequence again"
            ))
        })?;
        let saved = fields(&state)?;
        Ok(Remote { state, saved })
    }

    /// Changes the state with `change` and saves every field it changed.
    pub(crate) async fn update(
        &mut self,
        ctx: &JobCtx,
        change: impl FnOnce(&mut T),
    ) -> Result<(), StepError> {
        let mut next = std::mem::take(&mut self.state);
        change(&mut next);
        let now = fields(&next)?;
        let changed: serde_json::Map<String, Value> = now
            .iter()
            .filter(|(k, v)| self.saved.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let saved = ctx.save_remote(&changed).await;
        if saved.is_ok() {
            self.saved = now;
            self.state = next;
        } else {
            // Nothing was written: the copy stays as the database has it.
            self.state =
                serde_json::from_value(Value::Object(self.saved.clone())).unwrap_or_default();
        }
        saved
    }

    /// Records why a job ended without the result it aims for, on the job and in the log.
    pub(crate) async fn note(&mut self, ctx: &JobCtx, message: &str) -> Result<(), StepError> {
        self.update(ctx, |r| r.common_mut().note = Some(message.to_owned()))
            .await?;
        ctx.store
            .log_event(
                &NewEvent {
                    kind: "note",
                    sequence_id: Some(ctx.sequence_id),
                    job_id: Some(ctx.job_id),
                    message,
                    data: None,
                },
                ctx.now(),
            )
            .await?;
        Ok(())
    }

    /// When publishing finished (set now if it never was).
    pub(crate) async fn published_at(&mut self, ctx: &JobCtx) -> Result<i64, StepError> {
        match self.common().published_at {
            Some(at) => Ok(at),
            None => {
                let now = ctx.now();
                self.update(ctx, |r| r.common_mut().published_at = Some(now))
                    .await?;
                Ok(now)
            }
        }
    }

    /// The outcome of one more look at a processing state that is not there yet: look
    /// again later (backing off), or give up after `publish_timeout_ms` with a note.
    pub(crate) async fn wait_more(
        &mut self,
        ctx: &JobCtx,
        options: &PipelineOptions,
        what: &str,
    ) -> Result<StepOutcome, StepError> {
        let since = self.published_at(ctx).await?;
        if ctx.now() - since >= options.publish_timeout_ms {
            self.note(
                ctx,
                &format!(
                    "{what} did not show up within {} hours; the upload itself is complete. \
                     Check the service's website later.",
                    options.publish_timeout_ms / 3_600_000
                ),
            )
            .await?;
            return Ok(StepOutcome::Finish);
        }
        let polls = self.common().polls;
        self.update(ctx, |r| r.common_mut().polls = polls + 1)
            .await?;
        Ok(StepOutcome::Again {
            after_ms: options.poll_delay(polls),
        })
    }
}

/// Runs `work` on every item, `parallel` at a time. A pause, a cancel, a transient or an
/// auth failure stops new items from starting (those running finish and save what they
/// did); a permanent failure of one item does not stop the others. Returns the most
/// telling failure: interrupted, then auth, then permanent (naming every failed photo),
/// then retry (with the longest delay a server asked for).
pub(crate) async fn run_items<T, F, Fut>(
    ctx: &JobCtx,
    items: Vec<T>,
    parallel: usize,
    work: F,
) -> Result<(), StepError>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<(), StepError>>,
{
    let stop = AtomicBool::new(false);
    let errors: Vec<StepError> = futures::stream::iter(items)
        .map(|item| {
            let stop = &stop;
            let work = &work;
            async move {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
                if let Err(e) = ctx.check() {
                    stop.store(true, Ordering::SeqCst);
                    return Some(e);
                }
                let result = work(item).await;
                if matches!(
                    result,
                    Err(StepError::Retry { .. } | StepError::Auth { .. } | StepError::Interrupted)
                ) {
                    stop.store(true, Ordering::SeqCst);
                }
                result.err()
            }
        })
        .buffer_unordered(parallel.max(1))
        .filter_map(std::future::ready)
        .collect()
        .await;
    match worst(errors) {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

fn worst(errors: Vec<StepError>) -> Option<StepError> {
    if errors.iter().any(|e| matches!(e, StepError::Interrupted)) {
        return Some(StepError::Interrupted);
    }
    if let Some(e) = errors.iter().find(|e| matches!(e, StepError::Auth { .. })) {
        return Some(e.clone());
    }
    let permanent: Vec<&String> = errors
        .iter()
        .filter_map(|e| match e {
            StepError::Permanent { message } => Some(message),
            _ => None,
        })
        .collect();
    if !permanent.is_empty() {
        let shown: Vec<&str> = permanent.iter().take(3).map(|m| m.as_str()).collect();
        let message = if permanent.len() == 1 {
            shown.join("")
        } else {
            let more = permanent.len() - shown.len();
            format!(
                "{} photos could not be sent: {}{}",
                permanent.len(),
                shown.join("; "),
                if more > 0 {
                    format!("; and {more} more")
                } else {
                    String::new()
                }
            )
        };
        return Some(StepError::Permanent { message });
    }
    let mut retry: Option<StepError> = None;
    for e in errors {
        if let StepError::Retry { after_ms, message } = e {
            retry = Some(match retry {
                Some(StepError::Retry {
                    after_ms: before, ..
                }) => StepError::Retry {
                    after_ms: after_ms.max(before),
                    message,
                },
                _ => StepError::Retry { after_ms, message },
            });
        }
    }
    retry
}

/// The remote ids (`id` of their remote state) that the jobs of destination `T` hold:
/// what the lookup for a lost create must not take for its own.
pub(crate) async fn remote_ids_of<T: DestinationRemote>(
    ctx: &JobCtx,
    id: impl Fn(T) -> Option<String>,
) -> Result<Vec<String>, StepError> {
    Ok(ctx
        .store
        .jobs()
        .await?
        .iter()
        .filter(|j| j.destination == T::DESTINATION)
        .filter_map(|j| T::of(j).ok())
        .filter_map(id)
        .collect())
}

/// How often a transfer in progress reports its bytes.
const TRANSFER_TICK: Duration = Duration::from_millis(100);

/// Drives one transfer while reporting the bytes `sent` counts (the position in the file)
/// and watching for a pause or cancel, which drops the request at once (the remote keeps
/// what it received; the next run resumes from there). Returns the outcome and the bytes
/// reported as in flight: take them back (`bytes_in_flight(-n)`) once the item is saved.
pub(crate) async fn watched<F: Future>(
    ctx: &JobCtx,
    sent: Option<&AtomicU64>,
    transfer: F,
) -> (Result<F::Output, StepError>, i64) {
    tokio::pin!(transfer);
    let mut tick = tokio::time::interval(TRANSFER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut reported = 0_i64;
    loop {
        tokio::select! {
            out = &mut transfer => return (Ok(out), reported),
            _ = ctx.interrupted() => return (Err(StepError::Interrupted), reported),
            _ = tick.tick() => {
                if let Some(sent) = sent {
                    let now = i64::try_from(sent.load(Ordering::Relaxed)).unwrap_or(i64::MAX);
                    if now != reported {
                        ctx.bytes_in_flight(now - reported).await;
                        reported = now;
                    }
                }
            }
        }
    }
}

/// Marks one photo's failure on its item (its state unchanged) and returns the job-level
/// error naming the file. Non-permanent failures pass through unchanged.
pub(crate) async fn item_error(ctx: &JobCtx, item: &JobItemRow, error: StepError) -> StepError {
    match error {
        StepError::Permanent { message } => {
            let _ = ctx
                .save_item(
                    item.photo_id,
                    item.state,
                    None,
                    item.remote_offset,
                    None,
                    Some(&message),
                )
                .await;
            StepError::Permanent {
                message: format!("{}: {message}", item.file_name),
            }
        }
        other => other,
    }
}

/// Reads a photo for sending, checking it is still the file that was planned.
pub(crate) async fn read_photo(item: &JobItemRow) -> Result<bytes::Bytes, StepError> {
    let (path, size) = (item.path.clone(), item.file_size);
    tokio::task::spawn_blocking(move || read_photo_blocking(&path, size))
        .await
        .map_err(|e| StepError::retry(format!("reading the photo stopped: {e}")))?
        .map(bytes::Bytes::from)
}

/// [`read_photo`], on the calling thread (for work that goes on with the bytes there).
pub(crate) fn read_photo_blocking(path: &str, file_size: i64) -> Result<Vec<u8>, StepError> {
    let data = std::fs::read(path)
        .map_err(|e| StepError::permanent(format!("cannot read {path}: {e}")))?;
    if i64::try_from(data.len()).ok() != Some(file_size) {
        return Err(StepError::permanent(format!(
            "the file changed since the folder was read ({} bytes, was {file_size}): read the folder again",
            data.len(),
        )));
    }
    Ok(data)
}

/// Items that still have to go.
pub(crate) fn unsent(items: Vec<JobItemRow>) -> Vec<JobItemRow> {
    items
        .into_iter()
        .filter(|i| i.state != ItemState::Sent && i.state != ItemState::Rejected)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_backs_off_to_a_cap() {
        let o = PipelineOptions::live();
        assert_eq!(o.poll_delay(0), 30_000);
        assert_eq!(o.poll_delay(1), 60_000);
        assert_eq!(o.poll_delay(4), 480_000);
        assert_eq!(o.poll_delay(5), 600_000);
        assert_eq!(o.poll_delay(500), 600_000);
        let s = PipelineOptions::sandbox();
        assert_eq!(s.poll_delay(0), 500);
        assert_eq!(s.poll_delay(10), 5_000);
    }

    #[test]
    fn the_most_telling_error_wins() {
        let retry = |ms: Option<i64>| StepError::Retry {
            after_ms: ms,
            message: "busy".into(),
        };
        let perm = |m: &str| StepError::Permanent { message: m.into() };
        assert_eq!(worst(vec![]), None);
        assert_eq!(
            worst(vec![retry(Some(5)), retry(Some(50)), retry(None)]),
            Some(StepError::Retry {
                after_ms: Some(50),
                message: "busy".into()
            })
        );
        assert_eq!(
            worst(vec![retry(None), perm("a.jpg: bad")]),
            Some(perm("a.jpg: bad"))
        );
        let many = worst(vec![perm("a"), perm("b"), perm("c"), perm("d")]);
        assert_eq!(
            many,
            Some(perm("4 photos could not be sent: a; b; c; and 1 more"))
        );
        assert_eq!(
            worst(vec![
                perm("a"),
                StepError::Auth {
                    message: "401".into()
                }
            ]),
            Some(StepError::Auth {
                message: "401".into()
            })
        );
        assert_eq!(
            worst(vec![StepError::Interrupted, retry(None)]),
            Some(StepError::Interrupted)
        );
    }

    #[test]
    fn provider_errors_keep_their_meaning() {
        let e = ProviderError::http(
            Destination::Mapillary,
            ErrorKind::Retry {
                after: Some(Duration::from_millis(1500)),
            },
            429,
            None,
            "slow down",
            None,
        );
        assert!(matches!(
            provider_step_error(e),
            StepError::Retry {
                after_ms: Some(1500),
                ..
            }
        ));
        let e = ProviderError::http(
            Destination::Mapillary,
            ErrorKind::OffsetInvalid,
            412,
            None,
            "offset",
            None,
        );
        assert!(matches!(
            provider_step_error(e),
            StepError::Retry {
                after_ms: Some(0),
                ..
            }
        ));
        let e = ProviderError::auth(Destination::Kartaview, "expired");
        assert!(matches!(provider_step_error(e), StepError::Auth { .. }));
        let e = ProviderError::invalid(Destination::Panoramax, "bad");
        assert!(matches!(
            provider_step_error(e),
            StepError::Permanent { .. }
        ));
        assert!(matches!(
            app_step_error(AppError::new("needs_reauth", "again")),
            StepError::Auth { .. }
        ));
        assert!(matches!(
            app_step_error(AppError::new("network", "down")),
            StepError::Retry { .. }
        ));
        assert!(matches!(
            app_step_error(AppError::new("not_configured", "x")),
            StepError::Permanent { .. }
        ));
    }
}
