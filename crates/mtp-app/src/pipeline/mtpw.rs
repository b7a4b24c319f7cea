//! Map the Paths Web: metadata only, best-effort (PROTOCOLS §5).
//!
//! - `prepare`, `upload`: nothing to send.
//! - `publish`: the MTPW sequence is created once (name, description, transport type,
//!   tags) and its `unique_id` saved at once.
//! - `poll`: waits until the Mapillary upload of the same sequence knows its Mapillary
//!   sequence key. Goes on without it when Mapillary is not a destination, failed, was
//!   cancelled or gave up looking.
//! - `sync`: imports the Mapillary sequence (the account's Mapillary token + the key) into
//!   the MTPW sequence, once per key. A refusal fails this job only: the photo
//!   destinations are separate jobs and are not touched.

use super::{Remote, Shared, account, app_step_error, provider_step_error};
use futures::future::BoxFuture;
use mtp_core::Destination;
use mtp_core::engine::{Driver, JobCtx, JobStatus, Stage, StepError, StepOutcome};
use mtp_core::store::JobRow;
use mtp_providers::MtpwClient;
use mtp_providers::mtpw::{MtpwImport, NewMtpwSequence};
use serde_json::json;
use std::sync::Arc;

pub(crate) struct MtpwDriver {
    shared: Arc<Shared>,
}

/// What the Mapillary job of the same sequence tells the MTPW job.
enum MapillaryState {
    /// Published and found: the Mapillary sequence key.
    Key(String),
    /// Still uploading or looking for its sequence.
    Pending,
    /// There will be no key (not a destination, failed, cancelled, gave up).
    None(&'static str),
}

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
        if let Some(key) = job.remote_str("sequence_key") {
            return Ok(MapillaryState::Key(key));
        }
        Ok(match job.status {
            JobStatus::Failed => MapillaryState::None("the Mapillary upload failed"),
            JobStatus::Cancelled => MapillaryState::None("the Mapillary upload was cancelled"),
            JobStatus::Done => {
                MapillaryState::None("Mapillary did not show the published sequence in time")
            }
            JobStatus::Pending
            | JobStatus::Running
            | JobStatus::Paused
            | JobStatus::WaitingAuth => MapillaryState::Pending,
        })
    }

    async fn publish(&self, ctx: &JobCtx) -> Result<StepOutcome, StepError> {
        let mut remote = Remote::load(ctx).await?;
        if remote.str("unique_id").is_some() {
            return Ok(StepOutcome::Advance);
        }
        let app = self.shared.app()?;
        let client = client(&app).await?;
        let seq = ctx
            .store
            .sequence(ctx.sequence_id)
            .await?
            .ok_or_else(|| StepError::permanent("This sequence no longer exists."))?;
        let transport = seq
            .transport_type
            .as_deref()
            .map(|t| {
                mtp_core::transport::lookup(t)
                    .map(|known| known.name.to_string())
                    .unwrap_or_else(|| t.to_string())
            })
            .ok_or_else(|| {
                StepError::permanent(
                    "Map the Paths Web needs a transport type: set one on the sequence, then retry.",
                )
            })?;
        ctx.check()?;
        let unique_id = client
            .create_sequence(&NewMtpwSequence {
                name: seq.name.clone(),
                transport_type: transport,
                description: Some(seq.description.clone()).filter(|d| !d.trim().is_empty()),
                tags: seq.tags(),
            })
            .await
            .map_err(provider_step_error)?;
        remote.set(ctx, "unique_id", json!(unique_id)).await?;
        Ok(StepOutcome::Advance)
    }

    async fn poll(&self, ctx: &JobCtx) -> Result<StepOutcome, StepError> {
        match Self::mapillary_state(ctx).await? {
            MapillaryState::Pending => Ok(StepOutcome::Again {
                after_ms: self.shared.options.mtpw_wait_ms,
            }),
            MapillaryState::Key(_) | MapillaryState::None(_) => Ok(StepOutcome::Advance),
        }
    }

    async fn sync(&self, ctx: &JobCtx) -> Result<StepOutcome, StepError> {
        let mut remote = Remote::load(ctx).await?;
        let key = match Self::mapillary_state(ctx).await? {
            MapillaryState::Key(key) => key,
            MapillaryState::Pending => {
                return Ok(StepOutcome::Again {
                    after_ms: self.shared.options.mtpw_wait_ms,
                });
            }
            MapillaryState::None(why) => {
                remote
                    .note(
                        ctx,
                        &format!("Created on Map the Paths Web without Mapillary imagery: {why}."),
                    )
                    .await?;
                return Ok(StepOutcome::Advance);
            }
        };
        if remote.str("imported_key").as_deref() == Some(key.as_str()) {
            return Ok(StepOutcome::Advance);
        }
        let unique_id = remote.str("unique_id").ok_or_else(|| {
            StepError::permanent("The Map the Paths Web sequence was never created: retry")
        })?;
        let app = self.shared.app()?;
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
            .set(ctx, "mapillary_sequence_key", json!(key))
            .await?;
        ctx.check()?;
        let message = client
            .import(
                &unique_id,
                &MtpwImport {
                    mapillary_user_token: Some(mapillary.access_token.clone()),
                    mapillary_sequence_key: Some(key.clone()),
                    ..MtpwImport::default()
                },
            )
            .await
            .map_err(provider_step_error)?;
        remote.set(ctx, "imported_key", json!(key)).await?;
        remote.set(ctx, "import_message", json!(message)).await?;
        Ok(StepOutcome::Advance)
    }
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
}
