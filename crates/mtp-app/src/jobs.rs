//! Pause, resume, cancel and retry uploads, per sequence or per destination.

use crate::{App, AppError, AppEvent, AppResult};
use mtp_core::Destination;
use mtp_core::engine::JobStatus;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobAction {
    Pause,
    Resume,
    Cancel,
    Retry,
}

/// Which jobs an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum JobTarget {
    Sequence(i64),
    Job(i64),
}

impl App {
    /// Applies `action` and returns how many jobs changed.
    pub async fn job_action(&self, target: JobTarget, action: JobAction) -> AppResult<usize> {
        let ids: Vec<i64> = match target {
            JobTarget::Job(id) => vec![id],
            JobTarget::Sequence(id) => self
                .store()
                .jobs_of_sequence(id)
                .await?
                .iter()
                .map(|j| j.id)
                .collect(),
        };
        if ids.is_empty() {
            return Err(AppError::not_found("There is nothing queued to act on."));
        }
        use JobStatus::*;
        let (from, to): (&[JobStatus], JobStatus) = match action {
            JobAction::Pause => (&[Pending, Running, WaitingAuth], Paused),
            JobAction::Resume => (&[Paused], Pending),
            JobAction::Cancel => (&[Pending, Running, Paused, WaitingAuth, Failed], Cancelled),
            JobAction::Retry => (&[Failed, Cancelled, WaitingAuth], Pending),
        };
        let changed = self
            .store()
            .set_jobs_status(&ids, from, to, self.now_ms())
            .await?;
        if let Some(engine) = self.inner.engine.get() {
            if matches!(action, JobAction::Pause | JobAction::Cancel) {
                engine.interrupt(&changed.iter().map(|j| j.id).collect::<Vec<_>>());
            }
            engine.wake();
        }
        let mut seqs: Vec<i64> = changed.iter().map(|j| j.sequence_id).collect();
        seqs.dedup();
        self.emit(AppEvent::SequencesChanged { ids: seqs });
        Ok(changed.len())
    }

    /// Queues more destinations for saved sequences (those that fail a check are reported).
    pub async fn queue_upload(
        &self,
        sequence_ids: &[i64],
        destinations: &[Destination],
    ) -> AppResult<Vec<String>> {
        let mut skipped = Vec::new();
        for &id in sequence_ids {
            let seq = self
                .store()
                .sequence(id)
                .await?
                .ok_or_else(|| AppError::not_found(format!("There is no sequence {id}.")))?;
            let meta = mtp_core::store::SequenceMeta {
                name: seq.name.clone(),
                description: seq.description.clone(),
                transport_type: seq.transport_type.clone(),
                tags: seq.tags(),
            };
            skipped.extend(
                self.queue_destinations(&[id], &meta, destinations, self.now_ms())
                    .await?,
            );
        }
        self.emit(AppEvent::SequencesChanged {
            ids: sequence_ids.to_vec(),
        });
        Ok(skipped)
    }

    /// How many uploads are queued or running (what quitting would interrupt): none while
    /// another process runs them (they go on there).
    pub async fn active_uploads(&self) -> AppResult<usize> {
        if self.engine_elsewhere() {
            return Ok(0);
        }
        Ok(self
            .store()
            .jobs()
            .await?
            .iter()
            .filter(|j| matches!(j.status.as_str(), "pending" | "running"))
            .count())
    }
}
