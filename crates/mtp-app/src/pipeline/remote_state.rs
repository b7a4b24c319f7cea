//! The write-through copy of a job's remote state the drivers work with.

use super::PipelineOptions;
use crate::remote::DestinationRemote;
use mtp_core::engine::{JobCtx, StepError, StepOutcome};
use mtp_core::store::NewEvent;
use serde::Serialize;
use serde_json::Value;

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
    /// again later (`first_ms`, then backing off), or give up after `publish_timeout_ms`
    /// with a note.
    pub(crate) async fn wait_more(
        &mut self,
        ctx: &JobCtx,
        options: &PipelineOptions,
        first_ms: i64,
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
            after_ms: options.poll_delay(first_ms, polls),
        })
    }
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
