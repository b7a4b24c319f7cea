//! Map the Paths Web: metadata only, best-effort (PROTOCOLS §5).
//!
//! - `prepare`, `upload`: nothing to send.
//! - `publish`: the MTPW sequence is created once (name, description, transport type,
//!   tags); its `unique_id` is saved at once and the row links to its page
//!   (`{mtpw}/sequence/<unique_id>`).
//! - `poll`: waits until the Mapillary upload of the same sequence knows its Mapillary
//!   sequence key, saying in words what it waits for. A failed Mapillary upload is waited
//!   for too (retrying it there links this one): the row never says Done while the upload
//!   it links to failed. It ends without a link when Mapillary is not a destination, was
//!   cancelled or gave up looking.
//! - `sync`: links the Mapillary sequence (`mapillary_user_token` + the key), once per key,
//!   only with the user's consent to send their Mapillary token to Map the Paths Web
//!   (asked once, on its card). Today's server cannot check Mapillary accounts any more
//!   (its v3 call fails): that is tried again a few times over at most a day, then the job
//!   ends "Created on Map the Paths Web, not linked to Mapillary: …" with the page link.
//!   An id the server no longer knows is created again.
//!
//! What the row shows while it waits is in `waiting` (and `waiting_on`: `mapillary`,
//! `mapillary_failed`, `consent`, `link_retry`); how it ended without a link is in `note`.

use super::{Remote, Shared, account, app_step_error, provider_step_error};
use crate::MTPW_MAPILLARY_CONSENT;
use crate::remote::{DestinationRemote, MapillaryRemote, MtpwRemote};
use futures::future::BoxFuture;
use mtp_core::Destination;
use mtp_core::engine::{Driver, JobCtx, JobStatus, Stage, StepError, StepOutcome};
use mtp_core::secret::Secret;
use mtp_core::store::JobRow;
use mtp_providers::MtpwClient;
use mtp_providers::mtpw::{CODE_UNKNOWN_SEQUENCE, MapillaryImport, NewMtpwSequence};
use std::sync::Arc;

pub(crate) struct MtpwDriver {
    shared: Arc<Shared>,
}

/// The end of a job whose server could not check the Mapillary account.
pub const NOT_LINKED_CHECK: &str = "Created on Map the Paths Web, not linked to Mapillary: its server can no longer check Mapillary accounts.";

/// How many times an MTPW sequence is created again after the server forgot it.
const MAX_RECREATE: i64 = 2;

/// What the Mapillary job of the same sequence tells the MTPW job.
enum MapillaryState {
    /// Published and found: the Mapillary sequence key.
    Key(String),
    /// Still uploading, processing or looking for its sequence; or waiting for the user
    /// (paused, needs sign-in). The words say which.
    Pending(&'static str),
    /// Failed, or not confirmed by Mapillary in time: the user's action there (retry, check
    /// again) may still give a key. The words say which.
    Failed(&'static str),
    /// There will be no key (not a destination, cancelled, gave up).
    None(&'static str),
}

/// `waiting_on` values for which nothing happens until the user acts (see
/// [`super::settled`]).
pub(crate) const WAITING_ON_USER: [&str; 2] = ["mapillary_failed", "consent"];

impl MtpwDriver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        MtpwDriver { shared }
    }

    async fn mapillary_state(ctx: &JobCtx) -> Result<MapillaryState, StepError> {
        let jobs = ctx.store.jobs_of_sequence(ctx.sequence_id).await?;
        let Some(job) = jobs
            .iter()
            .find(|j| j.destination == Destination::Mapillary)
        else {
            return Ok(MapillaryState::None(
                "Mapillary was not chosen for this sequence",
            ));
        };
        let remote = MapillaryRemote::of(job).ok();
        if let Some(r) = &remote
            && let Some(key) = &r.sequence_key
        {
            // The first part's key comes as soon as Mapillary shows it; the others (a large
            // upload is sent in parts, and Mapillary may split one) are all known only once
            // the Mapillary job has found every part. Linking before would leave them out.
            if !r.sequence_keys_all.is_empty() || job.status == JobStatus::Done {
                return Ok(MapillaryState::Key(key.clone()));
            }
            if job.status.is_active() {
                return Ok(MapillaryState::Pending(
                    "Mapillary has not published every part of the upload yet",
                ));
            }
        }
        let unconfirmed = remote.as_ref().is_some_and(|r| r.unconfirmed);
        Ok(match job.status {
            JobStatus::Failed if unconfirmed => MapillaryState::Failed(
                "Mapillary has not confirmed the upload yet. Use Check again there; this one then goes on by itself.",
            ),
            JobStatus::Failed => MapillaryState::Failed(
                "the Mapillary upload failed. Retry it there; this one then goes on by itself.",
            ),
            JobStatus::Cancelled => MapillaryState::None("the Mapillary upload was cancelled"),
            JobStatus::Done => {
                MapillaryState::None("Mapillary did not show the published sequence in time")
            }
            JobStatus::Paused => MapillaryState::Pending("the Mapillary upload is paused"),
            JobStatus::WaitingAuth => {
                MapillaryState::Pending("Mapillary needs you to sign in again")
            }
            JobStatus::Pending | JobStatus::Running => {
                MapillaryState::Pending("the Mapillary upload is not published yet")
            }
        })
    }

    /// Creates the MTPW sequence (if this job has none) and links the row to its page.
    async fn ensure_created(
        &self,
        ctx: &JobCtx,
        remote: &mut Remote<MtpwRemote>,
    ) -> Result<String, StepError> {
        if let Some(id) = remote.unique_id.clone() {
            return Ok(id);
        }
        let app = self.shared.app()?;
        let client = client(&app).await?;
        let seq = ctx
            .store
            .sequence(ctx.sequence_id)
            .await?
            .ok_or_else(|| StepError::permanent("This sequence no longer exists."))?;
        let transport = transport_name(&seq)?;
        ctx.check()?;
        // Map the Paths Web cannot list a user's sequences: when a create was sent before
        // and its reply never stored (a crash in between), an empty copy may exist there.
        // Nothing can find it, so the row says so.
        if remote.common.create_started_at.is_some() {
            let text = format!(
                "Map the Paths Web may also hold an empty copy of \"{}\" from an attempt whose reply was lost: delete it there if you see it.",
                seq.name
            );
            remote
                .update(ctx, |r| r.possible_duplicate = Some(text))
                .await?;
        }
        let now = ctx.now();
        remote
            .update(ctx, |r| r.common.create_started_at = Some(now))
            .await?;
        let unique_id = client
            .create_sequence(&new_sequence(
                seq.name.clone(),
                transport,
                &seq.description,
                seq.tags(),
            ))
            .await
            .map_err(provider_step_error)?;
        remote
            .update(ctx, |r| r.unique_id = Some(unique_id.clone()))
            .await?;
        if let Some(url) = app.services().mtpw_page(&unique_id) {
            ctx.store
                .set_job_remote_url(ctx.job_id, &url, ctx.now())
                .await?;
        }
        Ok(unique_id)
    }

    async fn publish(&self, ctx: &JobCtx) -> Result<StepOutcome, StepError> {
        let mut remote = Remote::<MtpwRemote>::load(ctx).await?;
        self.ensure_created(ctx, &mut remote).await?;
        Ok(StepOutcome::Advance)
    }

    async fn poll(&self, ctx: &JobCtx) -> Result<StepOutcome, StepError> {
        let mut remote = Remote::<MtpwRemote>::load(ctx).await?;
        let wait = self.shared.options.mtpw_wait_ms;
        match Self::mapillary_state(ctx).await? {
            MapillaryState::Pending(why) => {
                wait_with(
                    ctx,
                    &mut remote,
                    "mapillary",
                    &format!(
                        "Created on Map the Paths Web; waiting for Mapillary to link it: {why}."
                    ),
                    wait,
                )
                .await
            }
            MapillaryState::Failed(why) => {
                wait_with(
                    ctx,
                    &mut remote,
                    "mapillary_failed",
                    &format!(
                        "Created on Map the Paths Web; waiting for Mapillary to link it: {why}"
                    ),
                    wait,
                )
                .await
            }
            MapillaryState::Key(_) | MapillaryState::None(_) => Ok(StepOutcome::Advance),
        }
    }

    async fn sync(&self, ctx: &JobCtx) -> Result<StepOutcome, StepError> {
        let mut remote = Remote::<MtpwRemote>::load(ctx).await?;
        let options = &self.shared.options;
        let key = match Self::mapillary_state(ctx).await? {
            MapillaryState::Key(key) => key,
            // Back to waiting (e.g. the Mapillary job was retried and runs again).
            MapillaryState::Pending(_) | MapillaryState::Failed(_) => {
                return self.poll(ctx).await;
            }
            MapillaryState::None(why) => {
                return finish_unlinked(
                    ctx,
                    &mut remote,
                    &format!("Created on Map the Paths Web, not linked to Mapillary: {why}."),
                )
                .await;
            }
        };
        if remote.imported_key.as_deref() == Some(key.as_str()) {
            clear_waiting(ctx, &mut remote).await?;
            return Ok(StepOutcome::Advance);
        }
        let app = self.shared.app()?;
        // The user's Mapillary token goes to Map the Paths Web only with their consent.
        let consent = ctx
            .store
            .setting(MTPW_MAPILLARY_CONSENT)
            .await?
            .and_then(|v| v.as_bool());
        match consent {
            None => {
                return wait_with(
                    ctx,
                    &mut remote,
                    "consent",
                    "Created on Map the Paths Web; to link it to Mapillary, Map the Paths Web needs your Mapillary token. Answer on the Map the Paths Web card (Integrations).",
                    options.mtpw_wait_ms,
                )
                .await;
            }
            Some(false) => {
                remote
                    .update(ctx, |r| r.unlinked = Some("consent".to_owned()))
                    .await?;
                return finish_unlinked(
                    ctx,
                    &mut remote,
                    "Created on Map the Paths Web, not linked to Mapillary: you chose not to send your Mapillary token to Map the Paths Web. Allow it on its card (Integrations) and this sequence gets linked.",
                )
                .await;
            }
            Some(true) => {}
        }
        if let Some(at) = remote.link_retry_at
            && at > ctx.now()
        {
            // Woken early (the Mapillary job wakes this one whenever it learns something):
            // the retry keeps its time.
            return Ok(StepOutcome::AgainAt { at_ms: at });
        }
        let unique_id = self.ensure_created(ctx, &mut remote).await?;
        let client = client(&app).await?;
        // The import needs the Mapillary token; a Mapillary sign-in problem is not this
        // account's, so it is reported, not turned into "integrate Map the Paths again".
        let mapillary = app
            .access_token(Destination::Mapillary)
            .await
            .map_err(|e| match app_step_error(e) {
                StepError::Auth { message } => StepError::Permanent {
                    message: format!(
                        "{message} The Mapillary sequence can then be linked by retrying this job."
                    ),
                },
                other => other,
            })?;
        remote
            .update(ctx, |r| r.mapillary_sequence_key = Some(key.clone()))
            .await?;
        ctx.check()?;
        let outcome = client
            .import_mapillary(&unique_id, &mapillary.access_token, &key)
            .await;
        match outcome {
            Ok(MapillaryImport::Imported { message }) => {
                remote
                    .update(ctx, |r| {
                        r.imported_key = Some(key.clone());
                        r.import_message = Some(message);
                    })
                    .await?;
                self.link_parts(ctx, &mut remote, &client, &mapillary.access_token, &key)
                    .await?;
                clear_waiting(ctx, &mut remote).await?;
                Ok(StepOutcome::Advance)
            }
            Ok(MapillaryImport::MapillaryCheckFailed { detail }) => {
                self.link_failed(ctx, &mut remote, &detail).await
            }
            Err(e) if e.code() == Some(CODE_UNKNOWN_SEQUENCE) => {
                // The server forgot the sequence (its data was reset, or it was deleted
                // on the website): create it again and link that one.
                let recreated = remote.recreated;
                if recreated >= MAX_RECREATE {
                    return Err(StepError::permanent(format!(
                        "{e} It was created again {recreated} times and forgotten each time: check the sequence on the Map the Paths website."
                    )));
                }
                remote
                    .update(ctx, |r| {
                        r.recreated = recreated + 1;
                        r.unique_id = None;
                    })
                    .await?;
                log_note(ctx, &format!("{e}; creating it again.")).await?;
                Ok(StepOutcome::Again { after_ms: 0 })
            }
            Err(e) => Err(provider_step_error(e)),
        }
    }

    /// Mapillary may make several sequences of one upload (a chunk it split, or a sequence
    /// sent in chunks), and a Map the Paths Web sequence links one. Every other Mapillary
    /// sequence gets a Map the Paths Web sequence of its own, named "<name> Part N" as MTPDU
    /// named parts, and is linked there; one that cannot be linked is named in the row.
    async fn link_parts(
        &self,
        ctx: &JobCtx,
        remote: &mut Remote<MtpwRemote>,
        client: &MtpwClient,
        token: &Secret<String>,
        linked: &str,
    ) -> Result<(), StepError> {
        let jobs = ctx.store.jobs_of_sequence(ctx.sequence_id).await?;
        let all: Vec<String> = jobs
            .iter()
            .find(|j| j.destination == Destination::Mapillary)
            .and_then(|j| MapillaryRemote::of(j).ok())
            .map(|r| r.sequence_keys_all)
            .unwrap_or_default();
        let others: Vec<&String> = all.iter().filter(|k| k.as_str() != linked).collect();
        if others.is_empty() {
            return Ok(());
        }
        let seq = ctx
            .store
            .sequence(ctx.sequence_id)
            .await?
            .ok_or_else(|| StepError::permanent("This sequence no longer exists."))?;
        let mut unlinked = Vec::new();
        for (i, key) in others.iter().enumerate() {
            let part = remote.parts.get(key.as_str()).cloned().unwrap_or_default();
            if part.linked {
                continue;
            }
            let id = match part.unique_id {
                Some(id) => id,
                None => {
                    ctx.check()?;
                    let id = client
                        .create_sequence(&new_sequence(
                            format!("{} Part {}", seq.name, i + 2),
                            transport_name(&seq)?,
                            &seq.description,
                            seq.tags(),
                        ))
                        .await
                        .map_err(provider_step_error)?;
                    remote
                        .update(ctx, |r| {
                            r.parts.entry(key.to_string()).or_default().unique_id =
                                Some(id.clone());
                        })
                        .await?;
                    id
                }
            };
            match client.import_mapillary(&id, token, key).await {
                Ok(MapillaryImport::Imported { .. }) => {
                    remote
                        .update(ctx, |r| {
                            r.parts.entry(key.to_string()).or_default().linked = true
                        })
                        .await?;
                    log_note(
                        ctx,
                        &format!(
                            "Mapillary sequence {key} is linked to \"{} Part {}\" on Map the Paths Web.",
                            seq.name,
                            i + 2
                        ),
                    )
                    .await?;
                }
                Ok(MapillaryImport::MapillaryCheckFailed { .. }) => unlinked.push(key.as_str()),
                Err(e) => return Err(provider_step_error(e)),
            }
        }
        if !unlinked.is_empty() {
            let text = format!(
                "Mapillary made {} sequences of these photos; Map the Paths Web could not link {}.",
                all.len(),
                unlinked.join(", ")
            );
            remote.update(ctx, |r| r.other_keys = Some(text)).await?;
        }
        Ok(())
    }

    /// The server could not check the Mapillary account: try again later, a few times
    /// over at most a day, then end with the sequence created but not linked.
    async fn link_failed(
        &self,
        ctx: &JobCtx,
        remote: &mut Remote<MtpwRemote>,
        detail: &str,
    ) -> Result<StepOutcome, StepError> {
        let schedule = &self.shared.options.mtpw_link_retry_ms;
        let now = ctx.now();
        let failures = remote.link_failures + 1;
        let first = remote.link_first_failed_at.unwrap_or(now);
        remote
            .update(ctx, |r| {
                r.link_failures = failures;
                r.link_first_failed_at = Some(first);
            })
            .await?;
        log_note(
            ctx,
            &format!("Map the Paths Web could not link the Mapillary sequence: {detail}."),
        )
        .await?;
        let next = usize::try_from(failures - 1)
            .ok()
            .and_then(|i| schedule.get(i))
            .copied();
        match next {
            Some(after_ms) if now + after_ms - first <= DAY_MS => {
                let total = schedule.len() + 1;
                let at_ms = now + after_ms;
                remote
                    .update(ctx, |r| r.link_retry_at = Some(at_ms))
                    .await?;
                wait_with(
                    ctx,
                    remote,
                    "link_retry",
                    &format!(
                        "Created on Map the Paths Web; linking it to Mapillary failed (its server could not check the Mapillary account). Trying again in {} (attempt {} of {total}).",
                        human_delay(after_ms),
                        failures + 1,
                    ),
                    after_ms,
                )
                .await?;
                // The saved time, not "after_ms from whenever the engine reads its clock".
                Ok(StepOutcome::AgainAt { at_ms })
            }
            _ => finish_unlinked(ctx, remote, NOT_LINKED_CHECK).await,
        }
    }
}

const DAY_MS: i64 = 24 * 3_600_000;

/// The sequence's transport type as Map the Paths Web spells it (it is required there).
fn transport_name(seq: &mtp_core::store::SequenceRow) -> Result<String, StepError> {
    transport_name_of(seq.transport_type.as_deref())
}

/// Map the Paths Web's name of a transport type (an unknown one is sent as it is).
pub(crate) fn transport_name_of(transport_type: Option<&str>) -> Result<String, StepError> {
    transport_type
        .map(|t| {
            mtp_core::transport::lookup(t)
                .map(|known| known.name.to_string())
                .unwrap_or_else(|| t.to_string())
        })
        .ok_or_else(|| {
            StepError::permanent(
                "Map the Paths Web needs a transport type: set one on the sequence, then retry.",
            )
        })
}

/// What creating a sequence sends: an empty description is left out.
pub(crate) fn new_sequence(
    name: String,
    transport_type: String,
    description: &str,
    tags: Vec<String>,
) -> NewMtpwSequence {
    NewMtpwSequence {
        name,
        transport_type,
        description: Some(description.to_string()).filter(|d| !d.trim().is_empty()),
        tags,
    }
}

fn human_delay(ms: i64) -> String {
    let minutes = (ms + 59_999) / 60_000;
    match minutes {
        m if m >= 120 => format!("{} hours", m / 60),
        m if m >= 60 => "1 hour".to_string(),
        m if m > 1 => format!("{m} minutes"),
        _ => "a minute".to_string(),
    }
}

/// Waits, saying why in the row (`waiting`), and what on (`waiting_on`).
async fn wait_with(
    ctx: &JobCtx,
    remote: &mut Remote<MtpwRemote>,
    on: &str,
    text: &str,
    after_ms: i64,
) -> Result<StepOutcome, StepError> {
    remote
        .update(ctx, |r| {
            r.waiting = Some(text.to_owned());
            r.waiting_on = Some(on.to_owned());
        })
        .await?;
    Ok(StepOutcome::Again { after_ms })
}

async fn clear_waiting(ctx: &JobCtx, remote: &mut Remote<MtpwRemote>) -> Result<(), StepError> {
    remote
        .update(ctx, |r| {
            r.waiting = None;
            r.waiting_on = None;
        })
        .await
}

/// Ends the job with the sequence created but not linked, saying why.
async fn finish_unlinked(
    ctx: &JobCtx,
    remote: &mut Remote<MtpwRemote>,
    why: &str,
) -> Result<StepOutcome, StepError> {
    clear_waiting(ctx, remote).await?;
    remote.note(ctx, why).await?;
    Ok(StepOutcome::Finish)
}

async fn log_note(ctx: &JobCtx, message: &str) -> Result<(), StepError> {
    ctx.store
        .log_event(
            &mtp_core::store::NewEvent {
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

async fn client(app: &crate::App) -> Result<MtpwClient, StepError> {
    let cfg = app.services().mtpw.clone().ok_or_else(|| {
        StepError::permanent(
            "Map the Paths Web is not configured: set MTPW_CLIENT_ID, restart, then retry.",
        )
    })?;
    let account = account(app, Destination::Mtpw).await?;
    Ok(MtpwClient::new(
        app.services().http.clone(),
        &cfg,
        account.access_token.clone(),
    )
    .with_clock(app.clock()))
}

impl Driver for MtpwDriver {
    fn run<'a>(
        &'a self,
        stage: Stage,
        _job: &'a JobRow,
        ctx: &'a JobCtx,
    ) -> BoxFuture<'a, Result<StepOutcome, StepError>> {
        Box::pin(async move {
            match stage {
                Stage::Prepare | Stage::Upload => Ok(StepOutcome::Advance),
                Stage::Publish => self.publish(ctx).await,
                Stage::Poll => self.poll(ctx).await,
                Stage::Sync => self.sync(ctx).await,
                Stage::Done => Ok(StepOutcome::Finish),
            }
        })
    }

    /// Map the Paths Web is first asked at publish (prepare and upload have nothing to do).
    fn reaches_service(&self, stage: Stage) -> bool {
        matches!(stage, Stage::Publish | Stage::Poll | Stage::Sync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_read_as_words() {
        assert_eq!(human_delay(3_600_000), "1 hour");
        assert_eq!(human_delay(4 * 3_600_000), "4 hours");
        assert_eq!(human_delay(90_000), "2 minutes");
        assert_eq!(human_delay(500), "a minute");
    }
}
