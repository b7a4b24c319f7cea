//! While another process runs the uploads of this database (`mtp upload` in a terminal
//! while the window is open, or the other way round), this process follows them from the
//! rows that process writes: the window's list moves as it would with its own engine, and
//! sequences that process saves or deletes come and go.

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
    /// The latest `updated_at` read: rows written since are read again at the next look.
    since: i64,
    seen: HashMap<i64, Seen>,
    /// The sequences there were at the last look (`None` before the first).
    sequences: Option<HashSet<i64>>,
}

impl Follower {
    /// Tells what the other process writes from `since` on (the moment this process found
    /// the uploads taken; what the window read before that, it already shows).
    pub(crate) fn new(since: i64) -> Follower {
        Follower {
            since,
            seen: HashMap::new(),
            sequences: None,
        }
    }

    /// Reads the jobs written since the last look and tells the window what changed: a new
    /// stage or status (it reads the sequence again), or only photos and bytes sent; and
    /// the sequences saved or deleted since.
    pub(crate) async fn look(&mut self, app: &App) -> Result<usize, StoreError> {
        let mut told = 0;
        let now: HashSet<i64> = app.store().sequence_ids().await?.into_iter().collect();
        if let Some(before) = self.sequences.replace(now.clone()) {
            let mut ids: Vec<i64> = now.symmetric_difference(&before).copied().collect();
            if !ids.is_empty() {
                ids.sort_unstable();
                app.emit(AppEvent::SequencesChanged { ids });
                told += 1;
            }
        }
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
