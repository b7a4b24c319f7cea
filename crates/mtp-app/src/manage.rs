//! After the upload: a sequence's page, editing it, and deleting it here and on the
//! services.
//!
//! What each service allows (PROTOCOLS §5, §6): Panoramax takes a new title (`PATCH` on
//! the collection) and deletes (`DELETE` on the collections and the upload set); KartaView
//! deletes (`1.0/sequence/remove/`) but cannot rename; Mapillary has no API for either;
//! Map the Paths Web does both on its own web pages, which the app opens. What goes
//! through an API is a remote action (`remote_actions` table): it survives a quit or a
//! crash, is tried again while the service is unreachable, and "already gone" counts as
//! done. Once every delete a sequence asked for is done, its local records go.

use crate::jobs::{JobAction, JobTarget};
use crate::pipeline::{kartaview, panoramax, provider_step_error};
use crate::remote::RemoteState;
use crate::{App, AppError, AppEvent, AppResult, WeakApp};
use mtp_core::Destination;
use mtp_core::engine::{JobStatus, StepError};
use mtp_core::store::{
    JobRow, NewEvent, NewRemoteAction, RemoteActionKind, RemoteActionRow, RemoteActionStatus,
    SequenceMeta,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::watch;

/// How long a delete waits for its sequence's cancelled stages to stop: a request already
/// sent is answered or times out (`mtp_providers::http::READ_TIMEOUT`) within this.
const STAGES_STOP_WITHIN: Duration = Duration::from_secs(65);

/// How a change reaches one destination.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RemoteHow {
    /// Through the service's API, as a remote action the app runs.
    Api,
    /// On the service's own web page, which the app opens in the browser.
    OpenPage { url: String },
    /// The service has no way to do it from here; `link` is where to do it by hand.
    NoApi { link: Option<String> },
}

/// What a change does on one destination, in words.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct RemotePlan {
    pub destination: Destination,
    pub label: &'static str,
    /// What is there (e.g. "KartaView sequence 4000001 with 8 photos").
    pub what: String,
    pub how: RemoteHow,
    /// One sentence for the confirmation.
    pub says: String,
}

/// What "Delete" will do, before the user confirms.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct DeletePlan {
    pub sequence_id: i64,
    pub name: String,
    /// What "Remove from MTP Desktop" removes.
    pub local: String,
    /// Per destination where something of this sequence is, what "Delete everywhere" does.
    pub remote: Vec<RemotePlan>,
    /// Uploads still running for it (cancelled first).
    pub running_uploads: usize,
}

/// What an edit or a delete set going.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct ChangeOutcome {
    pub sequence_id: i64,
    /// Remote actions queued (their ids).
    pub actions: Vec<i64>,
    /// Per destination, what happens there.
    pub remote: Vec<RemotePlan>,
    /// The local records are gone already (nothing had to be asked of a service first).
    pub removed_locally: bool,
}

impl ChangeOutcome {
    fn new(sequence_id: i64) -> Self {
        ChangeOutcome {
            sequence_id,
            actions: Vec::new(),
            remote: Vec::new(),
            removed_locally: false,
        }
    }
}

/// A remote action as the page and the CLI show it.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct RemoteActionView {
    pub id: i64,
    pub destination: Destination,
    pub label: &'static str,
    #[ts(type = "\"edit\" | \"delete\"")]
    pub action: RemoteActionKind,
    #[ts(type = "\"pending\" | \"running\" | \"done\" | \"failed\"")]
    pub status: RemoteActionStatus,
    pub attempts: i64,
    pub next_run_at: i64,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    pub updated_at: i64,
}

impl From<&RemoteActionRow> for RemoteActionView {
    fn from(r: &RemoteActionRow) -> Self {
        RemoteActionView {
            id: r.id,
            destination: r.destination,
            label: r.destination.label(),
            action: r.action,
            status: r.status,
            attempts: r.attempts,
            next_run_at: r.next_run_at,
            last_error: r.last_error.clone(),
            outcome: r.outcome.clone(),
            updated_at: r.updated_at,
        }
    }
}

/// What an edit sends (Panoramax: the collection's title).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct EditPayload {
    title: String,
}

/// The longest wait between two tries of an action while its service is unreachable.
const MAX_BACKOFF_MS: i64 = 5 * 60_000;

/// Tries of a KartaView remove that its server fails (HTTP 500, the sequence still there)
/// before the delete stops and sends the user to the sequence's page: 2, 4, 8… s apart,
/// about 4 minutes.
const KARTAVIEW_REMOVE_TRIES: i64 = 8;

/// Whether a KartaView remove that failed `tries` times, the last with `error` (HTTP
/// `status`), is refused for good while the sequence is still there: a refusal (4xx), or
/// KartaView's server failing on it (500) try after try, as it does for some sequences
/// (openstreetcam.org#127). An outage (no answer, 502–504, rate limits) is waited out.
fn kartaview_remove_refused(error: &StepError, status: Option<u16>, tries: i64) -> bool {
    match error {
        StepError::Permanent { .. } => true,
        StepError::Retry { .. } => status == Some(500) && tries >= KARTAVIEW_REMOVE_TRIES,
        _ => false,
    }
}

impl App {
    /// What deleting sequence `id` would do, here and on each service.
    pub async fn delete_plan(&self, id: i64) -> AppResult<DeletePlan> {
        let seq = self.existing_sequence(id).await?;
        let jobs = self.store().jobs_of_sequence(id).await?;
        let folder = seq.folder.clone().unwrap_or_else(|| "its folder".into());
        Ok(DeletePlan {
            sequence_id: id,
            name: seq.name.clone(),
            local: format!(
                "Removes \"{}\" and its upload records from MTP Desktop. The {} photos in {folder} are not touched.",
                seq.name, seq.photo_count
            ),
            remote: jobs
                .iter()
                .flat_map(|j| self.remote_plans(j, RemoteActionKind::Delete))
                .collect(),
            running_uploads: jobs.iter().filter(|j| j.status.is_active()).count(),
        })
    }

    /// Waits, at most `within`, until no stage of sequence `id`'s jobs runs any more.
    async fn wait_for_stages_to_stop(&self, id: i64, within: Duration) -> AppResult<()> {
        let Some(engine) = self.inner.engine.get() else {
            return Ok(());
        };
        let jobs: Vec<i64> = self
            .store()
            .jobs_of_sequence(id)
            .await?
            .iter()
            .map(|j| j.id)
            .collect();
        let deadline = tokio::time::Instant::now() + within;
        while engine.holds_any(&jobs) {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    sequence = id,
                    "a stage still runs {} s after its cancel: deleting anyway",
                    within.as_secs()
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits, at most `within`, until the stages of `running` that another process runs
    /// have ended (an event after event `since` says so): that process stops a cancelled
    /// job at its next checkpoint, within a second or two of the cancel.
    async fn wait_for_stages_elsewhere(
        &self,
        id: i64,
        running: &[i64],
        since: i64,
        within: Duration,
    ) -> AppResult<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ended = self
                .store()
                .jobs_with_stage_end_after(running, since)
                .await?;
            if running.iter().all(|j| ended.contains(j)) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    sequence = id,
                    "a stage another process runs still runs {} s after its cancel: deleting anyway",
                    within.as_secs()
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Deletes sequence `id`: its uploads still running are cancelled first; then either
    /// only its local records (`everywhere == false`; the photo files are never touched),
    /// or also what the services hold of it: API deletes run as remote actions and the
    /// local records go once they are all confirmed; for the services without an API the
    /// outcome says where to do it (pages to open, links).
    pub async fn delete_sequence(&self, id: i64, everywhere: bool) -> AppResult<ChangeOutcome> {
        let seq = self.existing_sequence(id).await?;
        if everywhere && seq.deleting_at.is_some() {
            return Err(AppError::invalid(format!(
                "\"{}\" is already being deleted everywhere: its page shows how far it got.",
                seq.name
            )));
        }
        // Stages another process runs (`mtp upload` while the window is open, or the other
        // way round): their rows say `running`, and each ends with an event.
        let elsewhere = if self.uploads_run_elsewhere() {
            let since = self.store().last_event_id().await?;
            let running: Vec<i64> = self
                .store()
                .jobs_of_sequence(id)
                .await?
                .iter()
                .filter(|j| j.status == JobStatus::Running)
                .map(|j| j.id)
                .collect();
            Some((running, since))
        } else {
            None
        };
        self.job_action(JobTarget::Sequence(id), JobAction::Cancel)
            .await?;
        // A stage stops at its next checkpoint: a create already sent saves its sequence's
        // id when the reply comes. Read the jobs after that, or the delete would miss it
        // (and the local records, going at once, would leave it on the service).
        self.wait_for_stages_to_stop(id, STAGES_STOP_WITHIN).await?;
        if let Some((running, since)) = elsewhere {
            self.wait_for_stages_elsewhere(id, &running, since, STAGES_STOP_WITHIN)
                .await?;
        }
        let now = self.now_ms();
        let mut outcome = ChangeOutcome::new(id);
        if everywhere {
            for job in self.store().jobs_of_sequence(id).await? {
                for plan in self.remote_plans(&job, RemoteActionKind::Delete) {
                    if plan.how == RemoteHow::Api {
                        let action = self
                            .store()
                            .add_remote_action(
                                &NewRemoteAction {
                                    sequence_id: id,
                                    sequence_name: &seq.name,
                                    destination: job.destination,
                                    action: RemoteActionKind::Delete,
                                    remote_json: &job.remote_json,
                                    payload_json: "{}",
                                },
                                now,
                            )
                            .await?;
                        outcome.actions.push(action);
                    }
                    outcome.remote.push(plan);
                }
            }
        }
        self.log(
            id,
            "delete",
            &if everywhere {
                format!(
                    "Deleting \"{}\" everywhere: {}",
                    seq.name,
                    describe(&outcome.remote)
                )
            } else {
                format!("Removed \"{}\" from MTP Desktop.", seq.name)
            },
        )
        .await?;
        if outcome.actions.is_empty() {
            self.store().delete_sequence(id).await?;
            outcome.removed_locally = true;
        } else {
            self.store().set_sequence_deleting(id, now).await?;
            // The runner may have done every delete already, before the mark it needs to
            // remove the sequence here was set.
            finish_deleting(self, id).await?;
            outcome.removed_locally = self.store().sequence(id).await?.is_none();
            self.wake_remote_actions();
        }
        self.emit(AppEvent::SequencesChanged { ids: vec![id] });
        Ok(outcome)
    }

    /// Saves a sequence's name, description, transport type and tags (validated as at
    /// import), and sends them where a service can take them (Panoramax: the title).
    pub async fn edit_sequence(&self, id: i64, meta: SequenceMeta) -> AppResult<ChangeOutcome> {
        let seq = self.existing_sequence(id).await?;
        if seq.deleting_at.is_some() {
            return Err(AppError::invalid(format!(
                "\"{}\" is being deleted: it cannot be edited any more.",
                seq.name
            )));
        }
        let meta = crate::prepare::checked_meta(meta)?;
        self.update_sequence(id, meta.clone()).await?;
        let now = self.now_ms();
        let mut outcome = ChangeOutcome::new(id);
        let payload = serde_json::to_string(&EditPayload {
            title: meta.name.clone(),
        })
        .map_err(|e| AppError::new("internal", e.to_string()))?;
        for job in self.store().jobs_of_sequence(id).await? {
            for plan in self.remote_plans(&job, RemoteActionKind::Edit) {
                if plan.how == RemoteHow::Api {
                    outcome.actions.push(
                        self.store()
                            .add_remote_action(
                                &NewRemoteAction {
                                    sequence_id: id,
                                    sequence_name: &meta.name,
                                    destination: job.destination,
                                    action: RemoteActionKind::Edit,
                                    remote_json: &job.remote_json,
                                    payload_json: &payload,
                                },
                                now,
                            )
                            .await?,
                    );
                }
                outcome.remote.push(plan);
            }
        }
        self.log(
            id,
            "edit",
            &format!("Edited \"{}\". {}", meta.name, describe(&outcome.remote)),
        )
        .await?;
        if !outcome.actions.is_empty() {
            self.wake_remote_actions();
        }
        Ok(outcome)
    }

    /// The edits and deletes asked of the services for sequence `id`.
    pub async fn remote_action_views(&self, id: i64) -> AppResult<Vec<RemoteActionView>> {
        Ok(self
            .store()
            .remote_actions(id)
            .await?
            .iter()
            .map(RemoteActionView::from)
            .collect())
    }

    /// Tries the failed edits and deletes of sequence `id` again.
    pub async fn retry_remote_actions(&self, id: i64) -> AppResult<u64> {
        let n = self.store().retry_remote_actions(id, self.now_ms()).await?;
        self.wake_remote_actions();
        Ok(n)
    }

    /// Waits until sequence `id` has no pending or running remote action (the CLI waits
    /// for its deletes), or `timeout` passed. When every delete is done, also until the
    /// sequence has left the list, which the runner does right after the last one: a
    /// process that stopped in between would leave it "being deleted".
    pub async fn wait_for_remote_actions(
        &self,
        id: i64,
        timeout: Duration,
    ) -> AppResult<Vec<RemoteActionView>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut events = self.subscribe();
        loop {
            let actions = self.remote_action_views(id).await?;
            let settled = actions.iter().all(|a| {
                matches!(
                    a.status,
                    RemoteActionStatus::Done | RemoteActionStatus::Failed
                )
            });
            let mut deletes = actions
                .iter()
                .filter(|a| a.action == RemoteActionKind::Delete)
                .peekable();
            let deleted_everywhere =
                deletes.peek().is_some() && deletes.all(|a| a.status == RemoteActionStatus::Done);
            if settled
                && (!deleted_everywhere
                    || self
                        .store()
                        .sequence(id)
                        .await?
                        .is_none_or(|s| s.deleting_at.is_none()))
            {
                return Ok(actions);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AppError::new(
                    "timeout",
                    "The services did not answer in time; the app goes on trying when it runs.",
                ));
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
        }
    }

    async fn existing_sequence(&self, id: i64) -> AppResult<mtp_core::store::SequenceRow> {
        self.store()
            .sequence(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("There is no sequence {id}.")))
    }

    async fn log(&self, sequence_id: i64, kind: &str, message: &str) -> AppResult<()> {
        self.store()
            .log_event(
                &NewEvent {
                    kind,
                    sequence_id: Some(sequence_id),
                    job_id: None,
                    message,
                    data: None,
                },
                self.now_ms(),
            )
            .await?;
        Ok(())
    }

    /// What `action` would do for `job`'s destination: one plan per page to open (Map the
    /// Paths Web's "Part N" sequences each have theirs), else one; none when nothing of the
    /// sequence is there (never created, or the job was never started).
    fn remote_plans(&self, job: &JobRow, action: RemoteActionKind) -> Vec<RemotePlan> {
        if let (RemoteState::Mtpw(r), Some(cfg)) =
            (RemoteState::shown(job), self.services().mtpw.as_ref())
        {
            // The main sequence, then the parts a long upload was linked as.
            let mut ids: Vec<String> = r.unique_id.clone().into_iter().collect();
            for part in r.parts.values() {
                if let Some(id) = &part.unique_id
                    && !ids.contains(id)
                {
                    ids.push(id.clone());
                }
            }
            let delete = action == RemoteActionKind::Delete;
            return ids
                .into_iter()
                .map(|id| {
                    // mtp-web has no API for either: its sequence page does both, signed in
                    // (a delete is that page's Delete button; opening `…/delete` deletes
                    // nothing).
                    let url = cfg.sequence_page_url(&id);
                    RemotePlan {
                        destination: job.destination,
                        label: job.destination.label(),
                        what: format!("Map the Paths Web sequence {id}"),
                        how: RemoteHow::OpenPage { url: url.clone() },
                        says: if delete {
                            format!("Map the Paths Web deletes on the sequence's own page ({url}): it opens in your browser; sign in there and press Delete.")
                        } else {
                            format!("Map the Paths Web edits on the sequence's own page ({url}): it opens in your browser.")
                        },
                    }
                })
                .collect();
        }
        self.remote_plan(job, action).into_iter().collect()
    }

    /// [`App::remote_plans`] for a destination with one plan at most.
    fn remote_plan(&self, job: &JobRow, action: RemoteActionKind) -> Option<RemotePlan> {
        let delete = action == RemoteActionKind::Delete;
        let d = job.destination;
        let label = d.label();
        let plan = |what: String, how: RemoteHow, says: String| {
            Some(RemotePlan {
                destination: d,
                label,
                what,
                how,
                says,
            })
        };
        match RemoteState::shown(job) {
            RemoteState::Mapillary(r) => {
                // Every sequence the upload became (a chunk per 1,000 photos, and Mapillary
                // may split a chunk); before any is known, the uploads (clusters).
                let mut keys: Vec<String> = Vec::new();
                let sequences = r
                    .sequence_keys_all
                    .iter()
                    .chain(r.status.iter().flat_map(|c| c.sequence_keys.iter()))
                    .chain(r.chunks.iter().filter_map(|c| c.sequence_key.as_ref()))
                    .chain(r.sequence_key.iter());
                for key in sequences {
                    if !keys.contains(key) {
                        keys.push(key.clone());
                    }
                }
                if keys.is_empty() {
                    keys.extend(r.cluster_id.clone());
                }
                let what = match keys.as_slice() {
                    [] => return None,
                    [key] => format!("Mapillary sequence {key}"),
                    all => format!("{} Mapillary sequences: {}", all.len(), all.join(", ")),
                };
                let verb = if delete { "delete" } else { "edit" };
                plan(
                    what,
                    RemoteHow::NoApi {
                        link: job.remote_url.clone(),
                    },
                    if keys.len() > 1 {
                        format!(
                            "Mapillary has no API to {verb} a sequence: {verb} each of them on mapillary.com, signed in as you."
                        )
                    } else {
                        format!(
                            "Mapillary has no API to {verb} a sequence: {verb} it on mapillary.com, signed in as you."
                        )
                    },
                )
            }
            RemoteState::Kartaview(r) => {
                let id = r.sequence_id?;
                let what = format!("KartaView sequence {id} ({} photos)", job.photos_done);
                if delete {
                    plan(
                        what,
                        RemoteHow::Api,
                        format!("Deletes KartaView sequence {id} and its photos."),
                    )
                } else {
                    plan(
                        what,
                        RemoteHow::NoApi {
                            link: job.remote_url.clone(),
                        },
                        "KartaView has no API to rename a sequence: its name stays as it was."
                            .into(),
                    )
                }
            }
            RemoteState::Panoramax(r) => {
                let set = r.upload_set_id.clone()?;
                let what = match r.collection_ids.len() {
                    0 => format!("Panoramax upload set {set}"),
                    1 => format!("Panoramax sequence {}", r.collection_ids[0]),
                    n => format!("{n} Panoramax sequences"),
                };
                if delete {
                    plan(
                        what,
                        RemoteHow::Api,
                        "Deletes the sequence and its pictures from the Panoramax instance.".into(),
                    )
                } else if r.collection_ids.is_empty() {
                    // No sequence yet: the title goes with the next upload set only.
                    None
                } else {
                    plan(
                        what,
                        RemoteHow::Api,
                        "Sets the new name as the sequence's title on Panoramax.".into(),
                    )
                }
            }
            // One plan per page: [`App::remote_plans`].
            RemoteState::Mtpw(_) => None,
        }
    }

    fn wake_remote_actions(&self) {
        self.inner.actions_wake.notify_one();
    }
}

fn describe(plans: &[RemotePlan]) -> String {
    if plans.is_empty() {
        return "nothing was on any service yet.".into();
    }
    plans
        .iter()
        .map(|p| format!("{}: {}", p.label, p.says))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs due remote actions until `stop` turns true: one at a time, woken when one is
/// queued, sleeping until the next is due otherwise.
pub(crate) async fn run(app: WeakApp, mut stop: watch::Receiver<bool>) {
    let wake = match app.upgrade() {
        Some(a) => {
            if let Err(e) = a.store().requeue_running_remote_actions(a.now_ms()).await {
                tracing::warn!("remote actions: {e}");
            }
            // A process stopped between a sequence's last delete and its removal here
            // left it "being deleted" with nothing left to run: remove it now.
            if let Err(e) = finish_left_deletes(&a).await {
                tracing::warn!("remote actions: {}", e.message);
            }
            a.inner.actions_wake.clone()
        }
        None => return,
    };
    loop {
        if *stop.borrow() {
            return;
        }
        let Some(a) = app.upgrade() else { return };
        let next = match run_due(&a).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!("remote actions: {}", e.message);
                Some(a.now_ms() + 5_000)
            }
        };
        let sleep = next
            .map(|at| (at - a.now_ms()).clamp(0, MAX_BACKOFF_MS))
            .unwrap_or(MAX_BACKOFF_MS);
        drop(a);
        tokio::select! {
            changed = stop.changed() => {
                // The pipeline is gone (its stop switch was dropped): so is this runner.
                if changed.is_err() {
                    return;
                }
            }
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(u64::try_from(sleep).unwrap_or(0))) => {}
        }
    }
}

/// Runs every action due now; returns when the next one is due.
async fn run_due(app: &App) -> AppResult<Option<i64>> {
    while let Some(action) = app.store().claim_remote_action(app.now_ms()).await? {
        let result = execute(app, &action).await;
        let now = app.now_ms();
        let (status, next, error, outcome) = match result {
            Ok(outcome) => (RemoteActionStatus::Done, now, None, Some(outcome)),
            Err(StepError::Retry { after_ms, message }) => {
                let backoff = 1_000_i64
                    .saturating_mul(1 << action.attempts.clamp(0, 20))
                    .min(MAX_BACKOFF_MS);
                let wait = after_ms.unwrap_or(backoff).clamp(0, MAX_BACKOFF_MS);
                (
                    RemoteActionStatus::Pending,
                    now + wait,
                    Some(format!(
                        "Waiting for {}: {message}",
                        action.destination.label()
                    )),
                    None,
                )
            }
            Err(StepError::Interrupted) => (RemoteActionStatus::Pending, now + 1_000, None, None),
            Err(e) => (RemoteActionStatus::Failed, now, Some(e.to_string()), None),
        };
        app.store()
            .finish_remote_action(
                action.id,
                status,
                next,
                error.as_deref(),
                outcome.as_deref(),
                now,
            )
            .await?;
        if status != RemoteActionStatus::Pending {
            let verb = match action.action {
                RemoteActionKind::Edit => "edit",
                RemoteActionKind::Delete => "delete",
            };
            let message = match (&outcome, &error) {
                (Some(o), _) => format!("{}: {o}", action.destination.label()),
                (None, Some(e)) => {
                    format!("{} could not {verb} it: {e}", action.destination.label())
                }
                (None, None) => String::new(),
            };
            app.log(action.sequence_id, &format!("remote_{verb}"), &message)
                .await?;
        }
        finish_deleting(app, action.sequence_id).await?;
        app.emit(AppEvent::SequencesChanged {
            ids: vec![action.sequence_id],
        });
    }
    Ok(app.store().next_remote_action_at().await?)
}

/// Removes every sequence being deleted whose deletes are all done.
async fn finish_left_deletes(app: &App) -> AppResult<()> {
    for seq in app.store().sequences().await? {
        if seq.deleting_at.is_some() {
            finish_deleting(app, seq.id).await?;
        }
    }
    Ok(())
}

/// Removes a sequence being deleted once every delete it asked for is done.
async fn finish_deleting(app: &App, sequence_id: i64) -> AppResult<()> {
    let Some(seq) = app.store().sequence(sequence_id).await? else {
        return Ok(());
    };
    if seq.deleting_at.is_none() {
        return Ok(());
    }
    let actions = app.store().remote_actions(sequence_id).await?;
    let deletes: Vec<&RemoteActionRow> = actions
        .iter()
        .filter(|a| a.action == RemoteActionKind::Delete)
        .collect();
    if deletes.iter().all(|a| a.status == RemoteActionStatus::Done) {
        app.store().delete_sequence(sequence_id).await?;
        app.log(
            sequence_id,
            "deleted",
            &format!(
                "\"{}\" is deleted everywhere it could be, and removed from MTP Desktop.",
                seq.name
            ),
        )
        .await?;
    }
    Ok(())
}

/// Runs one action; `Ok` carries what the service said, in words.
async fn execute(app: &App, action: &RemoteActionRow) -> Result<String, StepError> {
    let state = RemoteState::parse(action.destination, &action.remote_json)
        .map_err(|e| StepError::permanent(e.0))?;
    match (state, action.action) {
        (RemoteState::Kartaview(r), RemoteActionKind::Delete) => {
            let id = r
                .sequence_id
                .ok_or_else(|| StepError::permanent("no KartaView sequence id was saved"))?;
            let (client, _) = kartaview::client(app).await?;
            let refused = match client.remove_sequence(&id).await {
                Ok(()) => return Ok(format!("deleted sequence {id}")),
                Err(e) if is_gone(&e) => return Ok(format!("sequence {id} was already gone")),
                Err(e) => e,
            };
            // What `remove` answers for a sequence already removed is not documented, and
            // some sequences it refuses for good (a 500, then 400s: openstreetcam.org#127).
            // The v2 read says whether the sequence is still there.
            if let Err(read) = client.sequence(&id).await
                && read.is_not_found()
            {
                return Ok(format!("sequence {id} was already gone"));
            }
            let status = refused.status();
            let not_ours = refused.is_forbidden();
            let error = action_error(refused, &format!("sequence {id}"));
            if not_ours || !kartaview_remove_refused(&error, status, action.attempts) {
                return Err(error);
            }
            let page = app
                .services()
                .kartaview
                .as_ref()
                .map(|k| format!(": {}", k.sequence_page.fill(&[("sequence_id", &id)])))
                .unwrap_or_default();
            Err(StepError::permanent(format!(
                "KartaView would not delete sequence {id}, which is still there ({error}). Delete it on its page{page}"
            )))
        }
        (RemoteState::Panoramax(r), RemoteActionKind::Delete) => {
            let (_, client) = panoramax::instance_client(app, r.instance_url.clone()).await?;
            let mut done = Vec::new();
            for id in &r.collection_ids {
                match client.delete_collection(id).await {
                    Ok(()) => done.push(format!("deleted sequence {id}")),
                    Err(e) if is_gone(&e) => {
                        done.push(format!("sequence {id} was already gone"));
                    }
                    Err(e) => return Err(action_error(e, &format!("sequence {id}"))),
                }
            }
            if let Some(set) = &r.upload_set_id {
                match client.delete_upload_set(set).await {
                    Ok(()) => done.push(format!("deleted upload set {set} and its pictures")),
                    Err(e) if is_gone(&e) => {
                        done.push(format!("upload set {set} was already gone"));
                    }
                    Err(e) => return Err(action_error(e, &format!("upload set {set}"))),
                }
            }
            Ok(done.join("; "))
        }
        (RemoteState::Panoramax(r), RemoteActionKind::Edit) => {
            let payload: EditPayload = serde_json::from_str(&action.payload_json)
                .map_err(|e| StepError::permanent(format!("the saved edit cannot be read: {e}")))?;
            let (_, client) = panoramax::instance_client(app, r.instance_url.clone()).await?;
            let patch = mtp_providers::panoramax::CollectionPatch {
                title: Some(payload.title.clone()),
                ..Default::default()
            };
            let mut done = Vec::new();
            for id in &r.collection_ids {
                match client.patch_collection(id, &patch).await {
                    Ok(_) => {
                        done.push(format!("sequence {id} is now titled \"{}\"", payload.title))
                    }
                    Err(e) if is_gone(&e) => done.push(format!("sequence {id} is gone")),
                    Err(e) => return Err(action_error(e, &format!("sequence {id}"))),
                }
            }
            Ok(done.join("; "))
        }
        (state, kind) => Err(StepError::permanent(format!(
            "{} cannot {} through an API",
            state_label(&state),
            match kind {
                RemoteActionKind::Edit => "edit",
                RemoteActionKind::Delete => "delete",
            }
        ))),
    }
}

fn state_label(state: &RemoteState) -> &'static str {
    match state {
        RemoteState::Mapillary(_) => "Mapillary",
        RemoteState::Kartaview(_) => "KartaView",
        RemoteState::Panoramax(_) => "Panoramax",
        RemoteState::Mtpw(_) => "Map the Paths Web",
    }
}

/// The service says the thing is not there (any more).
fn is_gone(e: &mtp_providers::ProviderError) -> bool {
    e.is_not_found()
}

/// A provider error as the runner treats it: "not yours" is final, whatever else the
/// error's kind says; a refused sign-in (GeoVisio also answers a revoked token with 403)
/// says to sign in again.
fn action_error(e: mtp_providers::ProviderError, what: &str) -> StepError {
    if e.is_forbidden() && e.kind() != mtp_providers::ErrorKind::Auth {
        return StepError::permanent(format!(
            "the service refused: this account does not own {what} ({e})"
        ));
    }
    provider_step_error(e)
}

/// One photo of the page: where it is, what its EXIF said, and whether it was kept.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct PagePhoto {
    /// Position in the sequence (kept photos), or `None` (left out).
    pub index: Option<i64>,
    pub file_name: String,
    pub path: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub captured_at: Option<i64>,
    pub heading: Option<f64>,
    pub altitude: Option<f64>,
    /// Camera make and model, as one text.
    pub camera: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub is_360: bool,
    pub file_size: Option<i64>,
    /// Why it was left out (a left-out photo).
    pub reason: Option<String>,
}

/// One line of a sequence's history.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct HistoryLine {
    pub at: i64,
    pub kind: String,
    pub message: String,
}

/// Everything the sequence page shows.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SequencePage {
    pub summary: crate::sequences::SequenceSummary,
    /// Kept photos in sequence order, then the photos of its import left out.
    pub photos: Vec<PagePhoto>,
    pub actions: Vec<RemoteActionView>,
    /// Newest first.
    pub history: Vec<HistoryLine>,
    /// Being deleted everywhere (since when).
    pub deleting_at: Option<i64>,
    /// Per destination, what an edit does there.
    pub edit_plan: Vec<RemotePlan>,
}

/// How big a thumbnail is (its longer side, in pixels).
pub const THUMBNAIL_PX: u32 = 480;

impl App {
    /// The page of sequence `id`.
    pub async fn sequence_page(&self, id: i64) -> AppResult<SequencePage> {
        let seq = self.existing_sequence(id).await?;
        let summary = self.sequence(id).await?;
        let mut photos: Vec<PagePhoto> = self
            .store()
            .photos(id)
            .await?
            .into_iter()
            .map(|p| PagePhoto {
                index: Some(p.seq_index),
                camera: camera(p.make.as_deref(), p.model.as_deref()),
                file_name: p.file_name,
                path: p.path,
                lat: Some(p.lat),
                lon: Some(p.lon),
                captured_at: Some(p.captured_at),
                heading: p.heading,
                altitude: p.altitude,
                width: p.width,
                height: p.height,
                is_360: p.is_360,
                file_size: Some(p.file_size),
                reason: None,
            })
            .collect();
        if let Some(import) = seq.import_id {
            photos.extend(
                self.store()
                    .dropped(import)
                    .await?
                    .into_iter()
                    .map(|d| PagePhoto {
                        index: None,
                        file_name: d.file_name,
                        path: d.path,
                        lat: d.lat,
                        lon: d.lon,
                        captured_at: d.captured_at,
                        heading: None,
                        altitude: None,
                        camera: None,
                        width: None,
                        height: None,
                        is_360: false,
                        file_size: None,
                        reason: Some(d.message),
                    }),
            );
        }
        let history = self
            .store()
            .events(Some(id), 200)
            .await?
            .into_iter()
            .map(|e| HistoryLine {
                at: e.at,
                kind: e.kind,
                message: e.message,
            })
            .collect();
        let jobs = self.store().jobs_of_sequence(id).await?;
        Ok(SequencePage {
            summary,
            photos,
            actions: self.remote_action_views(id).await?,
            history,
            deleting_at: seq.deleting_at,
            edit_plan: jobs
                .iter()
                .flat_map(|j| self.remote_plans(j, RemoteActionKind::Edit))
                .collect(),
        })
    }

    /// A small JPEG of a photo of sequence `id` (kept or left out), as a `data:` URL: the
    /// photo scaled down (the file is only read). Only photos the sequence knows can be
    /// asked for.
    pub async fn photo_thumbnail(&self, id: i64, path: &str) -> AppResult<String> {
        let seq = self.existing_sequence(id).await?;
        let mut known = self
            .store()
            .photos(id)
            .await?
            .into_iter()
            .any(|p| p.path == path);
        if !known && let Some(import) = seq.import_id {
            known = self
                .store()
                .dropped(import)
                .await?
                .iter()
                .any(|d| d.path == path);
        }
        if !known {
            return Err(AppError::not_found(format!(
                "{path} is not a photo of \"{}\".",
                seq.name
            )));
        }
        let owned = path.to_owned();
        tokio::task::spawn_blocking(move || thumbnail(std::path::Path::new(&owned)))
            .await
            .map_err(|e| AppError::new("internal", e.to_string()))?
            .map_err(|e| AppError::new("thumbnail", format!("{path}: {e}")))
    }
}

fn camera(make: Option<&str>, model: Option<&str>) -> Option<String> {
    let parts: Vec<&str> = [make, model]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// The thumbnail of the photo at `path` as a `data:image/jpeg;base64,…` URL.
pub fn thumbnail(path: &std::path::Path) -> Result<String, String> {
    use base64::Engine as _;
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it ({e})"))?;
    // Decoding holds the whole photo in memory: refuse what no camera writes.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > 200 * 1024 * 1024 {
        return Err("it is larger than 200 MB".into());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(len + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it ({e})"))?;
    let mut decoder =
        image::ImageReader::with_format(std::io::Cursor::new(&bytes), image::ImageFormat::Jpeg);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(1024 * 1024 * 1024);
    decoder.limits(limits);
    let img = decoder
        .decode()
        .map_err(|e| format!("it is not a readable JPEG ({e})"))?;
    let small = img.thumbnail(THUMBNAIL_PX, THUMBNAIL_PX).to_rgb8();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&small)
        .map_err(|e| format!("cannot make its thumbnail ({e})"))?;
    Ok(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(out)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kartaview_remove_gives_up_on_refusals_and_repeated_500s_not_on_outages() {
        let retry = StepError::retry("KartaView answered 500");
        let refused = StepError::permanent("KartaView answered 400");
        assert!(kartaview_remove_refused(&refused, Some(400), 1));
        assert!(!kartaview_remove_refused(
            &retry,
            Some(500),
            KARTAVIEW_REMOVE_TRIES - 1
        ));
        assert!(kartaview_remove_refused(
            &retry,
            Some(500),
            KARTAVIEW_REMOVE_TRIES
        ));
        for outage in [None, Some(502), Some(503), Some(504), Some(429)] {
            assert!(!kartaview_remove_refused(&retry, outage, 100), "{outage:?}");
        }
        let auth = StepError::Auth {
            message: "sign in again".into(),
        };
        assert!(!kartaview_remove_refused(&auth, Some(401), 100));
    }
}
