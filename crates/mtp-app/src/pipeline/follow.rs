//! What another process sharing this database writes, told to this one's window. While
//! that process runs the uploads (`mtp upload` in a terminal while the window is open, or
//! the other way round), this one follows its jobs from the rows it writes: the window's
//! list moves as it would with its own engine. And whichever process runs them, sequences
//! another process saves, edits or deletes (`mtp prepare`, `mtp sequence …`) come and go.

use crate::{App, AppEvent};
use mtp_core::engine::{JobStatus, Stage};
use mtp_core::store::{JobRow, StoreError};
use std::collections::{HashMap, HashSet};

/// What the window last heard of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    status: JobStatus,
    stage: Stage,
    photos_done: i64,
    bytes_done: i64,
}

impl From<&JobRow> for Seen {
    fn from(row: &JobRow) -> Seen {
        Seen {
            status: row.status,
            stage: row.stage,
            photos_done: row.photos_done,
            bytes_done: row.bytes_done,
        }
    }
}

pub(crate) struct Follower {
    /// The latest job `updated_at` read: rows written since are read again at the next look.
    since: i64,
    seen: HashMap<i64, Seen>,
    /// The same for sequences: the latest `updated_at` read, and each one's last told.
    sequences_since: i64,
    sequences_seen: HashMap<i64, i64>,
    /// The sequences there were at the last look (`None` before the first).
    sequences: Option<HashSet<i64>>,
}

impl Follower {
    /// Tells what other processes write from `since` on (the moment this process started
    /// its pipeline; what the window read before that, it already shows).
    pub(crate) fn new(since: i64) -> Follower {
        Follower {
            since,
            seen: HashMap::new(),
            sequences_since: since,
            sequences_seen: HashMap::new(),
            sequences: None,
        }
    }

    /// Tells the window of the sequences saved, edited or deleted since the last look. This
    /// process's own changes, which it told already, may be told again: the window reads
    /// those sequences once more.
    pub(crate) async fn look_at_sequences(&mut self, app: &App) -> Result<usize, StoreError> {
        let store = app.store();
        let now: HashSet<i64> = store.sequence_ids().await?.into_iter().collect();
        let mut ids: HashSet<i64> = match self.sequences.replace(now.clone()) {
            Some(before) => now.symmetric_difference(&before).copied().collect(),
            None => HashSet::new(),
        };
        for (id, updated_at) in store.sequences_updated_since(self.sequences_since).await? {
            self.sequences_since = self.sequences_since.max(updated_at);
            if self.sequences_seen.insert(id, updated_at) != Some(updated_at) {
                ids.insert(id);
            }
        }
        if ids.is_empty() {
            return Ok(0);
        }
        let mut ids: Vec<i64> = ids.into_iter().collect();
        ids.sort_unstable();
        app.emit(AppEvent::SequencesChanged { ids });
        Ok(1)
    }

    /// Reads the jobs written since the last look and tells the window what changed: a new
    /// stage or status (it reads the sequence again), or only photos and bytes sent; and
    /// the sequences saved, edited or deleted since.
    pub(crate) async fn look(&mut self, app: &App) -> Result<usize, StoreError> {
        let mut told = self.look_at_sequences(app).await?;
        let rows = app.store().jobs_updated_since(self.since).await?;
        for row in &rows {
            self.since = self.since.max(row.updated_at);
            let now = Seen::from(row);
            let event = match self.seen.insert(row.id, now) {
                Some(before) if before == now => continue,
                Some(before) if (before.status, before.stage) == (now.status, now.stage) => {
                    AppEvent::JobProgress {
                        job_id: row.id,
                        sequence_id: row.sequence_id,
                        photos_done: row.photos_done,
                        photos_total: row.photos_total,
                        bytes_done: row.bytes_done,
                        bytes_total: row.bytes_total,
                    }
                }
                _ => AppEvent::JobChanged {
                    job_id: row.id,
                    sequence_id: row.sequence_id,
                    status: row.status,
                    stage: row.stage,
                },
            };
            app.emit(event);
            told += 1;
        }
        Ok(told)
    }
}
