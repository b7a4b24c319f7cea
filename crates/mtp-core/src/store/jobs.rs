//! The pipeline's job table: one row per (sequence, destination), plus one item per photo.
//! Every remote id is written the moment it is known, so a restart resumes instead of resending.

use super::{NewEvent, Store, StoreError};
use crate::Destination;
use crate::engine::{ErrorKind, ItemState, JobStatus, Stage};
use serde::Serialize;
use sqlx::{FromRow, QueryBuilder, Sqlite};

#[derive(Debug, Clone, Serialize, FromRow, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub sequence_id: i64,
    pub destination: Destination,
    pub stage: Stage,
    pub status: JobStatus,
    pub attempts: i64,
    pub next_run_at: i64,
    /// While waiting out a service's rate limit: the earliest try it allows (0 if none).
    pub not_before: i64,
    pub last_error: Option<String>,
    pub last_error_kind: Option<ErrorKind>,
    pub remote_json: String,
    pub remote_url: Option<String>,
    pub photos_total: i64,
    pub photos_done: i64,
    pub bytes_total: i64,
    pub bytes_done: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A photo of a job, with what the remote already has of it.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct JobItemRow {
    pub job_id: i64,
    pub photo_id: i64,
    pub seq_index: i64,
    pub path: String,
    pub file_name: String,
    pub file_size: i64,
    pub state: ItemState,
    pub remote_key: Option<String>,
    pub remote_offset: i64,
    pub remote_id: Option<String>,
    pub bytes: i64,
    pub error: Option<String>,
}

/// What a step changed, written in one transaction with its event.
#[derive(Debug, Clone, Default)]
pub struct JobUpdate {
    pub stage: Option<Stage>,
    pub status: Option<JobStatus>,
    pub attempts: Option<i64>,
    pub next_run_at: Option<i64>,
    /// The earliest try the service allows (see [`JobRow::not_before`]).
    pub not_before: Option<i64>,
    /// `Some(None)` clears the error.
    pub last_error: Option<Option<(ErrorKind, String)>>,
    pub remote_url: Option<String>,
}

const JOB_SELECT: &str = "SELECT * FROM jobs";

impl Store {
    /// Creates the job of each destination for a sequence (existing ones are kept as they are),
    /// with one item per photo for destinations that receive photos.
    pub async fn create_jobs(
        &self,
        sequence_id: i64,
        destinations: &[Destination],
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.write_tx().await?;
        let (photos, bytes): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COALESCE(SUM(file_size), 0) FROM photos WHERE sequence_id = ?",
        )
        .bind(sequence_id)
        .fetch_one(&mut *tx)
        .await?;
        let mut ids = Vec::new();
        for d in destinations {
            let (p, b) = if *d == Destination::Mtpw {
                (0, 0)
            } else {
                (photos, bytes)
            };
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO jobs (sequence_id, destination, photos_total, bytes_total, next_run_at, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sequence_id, destination) DO NOTHING RETURNING id",
            )
            .bind(sequence_id)
            .bind(d)
            .bind(p)
            .bind(b)
            .bind(now)
            .bind(now)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else { continue };
            if *d != Destination::Mtpw {
                sqlx::query(
                    "INSERT INTO job_items (job_id, photo_id, updated_at)
                     SELECT ?, id, ? FROM photos WHERE sequence_id = ?",
                )
                .bind(id)
                .bind(now)
                .bind(sequence_id)
                .execute(&mut *tx)
                .await?;
            }
            Store::append_event(
                &mut *tx,
                &NewEvent {
                    kind: "job_created",
                    sequence_id: Some(sequence_id),
                    job_id: Some(id),
                    message: &format!("Queued for {}", d.label()),
                    data: None,
                },
                now,
            )
            .await?;
            ids.push(id);
        }
        sqlx::query("UPDATE sequences SET state = 'queued', updated_at = ? WHERE id = ? AND state = 'draft'")
            .bind(now)
            .bind(sequence_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids)
    }

    pub async fn job(&self, id: i64) -> Result<Option<JobRow>, StoreError> {
        Ok(
            sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!("{JOB_SELECT} WHERE id = ?")))
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        Ok(sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
            "{JOB_SELECT} ORDER BY sequence_id, destination"
        )))
        .fetch_all(self.pool())
        .await?)
    }

    /// The jobs written at `since` or later (by this process or another one sharing the
    /// database).
    pub async fn jobs_updated_since(&self, since: i64) -> Result<Vec<JobRow>, StoreError> {
        Ok(sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
            "{JOB_SELECT} WHERE updated_at >= ? ORDER BY updated_at, id"
        )))
        .bind(since)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn jobs_of_sequence(&self, sequence_id: i64) -> Result<Vec<JobRow>, StoreError> {
        Ok(sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
            "{JOB_SELECT} WHERE sequence_id = ? ORDER BY destination"
        )))
        .bind(sequence_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// After a crash or quit, jobs that were running are runnable again at once.
    pub async fn requeue_running_jobs(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'pending', next_run_at = ?, updated_at = ? WHERE status = 'running'",
        )
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Claims the next runnable job (pending and due, the longest overdue first), marking it
    /// running, in one statement: two workers can never claim the same job. `held`: jobs
    /// whose previous run has not ended yet, never claimed.
    pub async fn claim_next_job(
        &self,
        now: i64,
        held: &[i64],
    ) -> Result<Option<JobRow>, StoreError> {
        let held = serde_json::to_string(held).unwrap_or_else(|_| "[]".into());
        Ok(sqlx::query_as::<_, JobRow>(
            "UPDATE jobs SET status = 'running', updated_at = ?1
             WHERE id = (SELECT id FROM jobs WHERE status = 'pending' AND next_run_at <= ?1
                           AND id NOT IN (SELECT value FROM json_each(?2))
                         ORDER BY next_run_at, id LIMIT 1)
             RETURNING *",
        )
        .bind(now)
        .bind(held)
        .fetch_optional(self.pool())
        .await?)
    }

    /// When the next pending job becomes due, if any.
    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT MIN(next_run_at) FROM jobs WHERE status = 'pending'")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Applies a step's outcome and logs it, atomically. The status changes only while the row
    /// is still `running`, so a pause or cancel that happened meanwhile wins; the other fields
    /// (stage, attempts, next run, error, link) are written whatever the status.
    pub async fn update_job(
        &self,
        id: i64,
        update: &JobUpdate,
        event: Option<&NewEvent<'_>>,
        now: i64,
    ) -> Result<Option<JobRow>, StoreError> {
        let mut tx = self.write_tx().await?;
        let (clear_error, err_kind, err_msg) = match &update.last_error {
            None => (false, None, None),
            Some(None) => (true, None, None),
            Some(Some((kind, msg))) => (false, Some(*kind), Some(msg.clone())),
        };
        let row = sqlx::query_as::<_, JobRow>(
            "UPDATE jobs SET
                stage = COALESCE(?, stage),
                status = CASE WHEN status = 'running' THEN COALESCE(?, status) ELSE status END,
                attempts = COALESCE(?, attempts),
                next_run_at = COALESCE(?, next_run_at),
                not_before = COALESCE(?, not_before),
                last_error_kind = CASE WHEN ? THEN NULL ELSE COALESCE(?, last_error_kind) END,
                last_error = CASE WHEN ? THEN NULL ELSE COALESCE(?, last_error) END,
                remote_url = COALESCE(?, remote_url),
                updated_at = ?
             WHERE id = ? RETURNING *",
        )
        .bind(update.stage)
        .bind(update.status)
        .bind(update.attempts)
        .bind(update.next_run_at)
        .bind(update.not_before)
        .bind(clear_error)
        .bind(err_kind)
        .bind(clear_error)
        .bind(err_msg)
        .bind(&update.remote_url)
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let (Some(event), Some(_)) = (event, &row) {
            Store::append_event(&mut *tx, event, now).await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    /// Sets a user-driven status (pause, resume, cancel, retry) on jobs, whatever they run.
    /// Returns the jobs changed.
    pub async fn set_jobs_status(
        &self,
        ids: &[i64],
        from: &[JobStatus],
        to: JobStatus,
        now: i64,
    ) -> Result<Vec<JobRow>, StoreError> {
        let mut changed = Vec::new();
        let mut tx = self.write_tx().await?;
        for id in ids {
            let allowed = serde_json::to_string(from).unwrap_or_else(|_| "[]".into());
            let row = sqlx::query_as::<_, JobRow>(
                "UPDATE jobs SET status = ?1, updated_at = ?2,
                    next_run_at = CASE WHEN ?1 = 'pending' THEN ?2 ELSE next_run_at END,
                    attempts = CASE WHEN ?1 = 'pending' AND status IN ('failed', 'cancelled') THEN 0 ELSE attempts END
                 WHERE id = ?3 AND status IN (SELECT value FROM json_each(?4)) RETURNING *",
            )
            .bind(to)
            .bind(now)
            .bind(id)
            .bind(allowed)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                Store::append_event(
                    &mut *tx,
                    &NewEvent {
                        kind: "job_status",
                        sequence_id: Some(row.sequence_id),
                        job_id: Some(row.id),
                        message: &format!("{} → {to}", row.destination),
                        data: None,
                    },
                    now,
                )
                .await?;
                changed.push(row);
            }
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Of `ids` (jobs whose stages run here), those the user stopped since: paused,
    /// cancelled or deleted, by this process or another one sharing the database.
    pub async fn jobs_stopped_among(&self, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        let stopped: Vec<(i64,)> = sqlx::query_as(
            "SELECT w.value FROM json_each(?) AS w LEFT JOIN jobs ON jobs.id = w.value
             WHERE jobs.id IS NULL OR jobs.status IN ('paused', 'cancelled')",
        )
        .bind(wanted)
        .fetch_all(self.pool())
        .await?;
        Ok(stopped.into_iter().map(|(id,)| id).collect())
    }

    /// Jobs of a service waiting for the user to integrate again become runnable.
    pub async fn release_waiting_auth(&self, d: Destination, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET status = 'pending', next_run_at = ?, updated_at = ? WHERE destination = ? AND status = 'waiting_auth'",
        )
        .bind(now)
        .bind(now)
        .bind(d)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Jobs of `destination` waiting out trouble reaching it (their last error was a retry)
    /// become due now, or when the service said they may try again if that is later: the
    /// service just answered another job. Returns how many.
    pub async fn wake_jobs_waiting_for(
        &self,
        destination: Destination,
        now: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET next_run_at = MAX(?1, not_before), updated_at = ?1
             WHERE destination = ?2 AND status = 'pending' AND last_error_kind = 'retry'
               AND next_run_at > MAX(?1, not_before)",
        )
        .bind(now)
        .bind(destination)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Makes the job of `destination` for this sequence due now if it is waiting for a later
    /// time (another job of the sequence just produced what it waits for), or when its
    /// service said it may try again if that is later. Returns whether a job was woken.
    pub async fn wake_waiting_job(
        &self,
        sequence_id: i64,
        destination: Destination,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET next_run_at = MAX(?1, not_before), updated_at = ?1
             WHERE sequence_id = ?2 AND destination = ?3 AND status = 'pending'
               AND next_run_at > MAX(?1, not_before)",
        )
        .bind(now)
        .bind(sequence_id)
        .bind(destination)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets everything the remote had of this job (its ids, link, and every photo's
    /// state): the remote no longer has the sequence, so it is sent again from the start.
    /// Logged with `why`.
    pub async fn restart_job_remote(&self, id: i64, why: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query_as::<_, JobRow>(
            "UPDATE jobs SET remote_json = '{}', remote_url = NULL, photos_done = 0, bytes_done = 0,
                updated_at = ?1 WHERE id = ?2 RETURNING *",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE job_items SET state = 'pending', remote_key = NULL, remote_offset = 0,
                remote_id = NULL, bytes = 0, error = NULL, updated_at = ?1 WHERE job_id = ?2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if let Some(row) = row {
            Store::append_event(
                &mut *tx,
                &NewEvent {
                    kind: "remote_gone",
                    sequence_id: Some(row.sequence_id),
                    job_id: Some(id),
                    message: why,
                    data: None,
                },
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Merges `key: value` into the job's remote state, immediately.
    pub async fn set_job_remote(
        &self,
        id: i64,
        key: &str,
        value: &serde_json::Value,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut one = serde_json::Map::new();
        one.insert(key.to_owned(), value.clone());
        self.patch_job_remote(id, &one, now).await
    }

    /// Merges every `key: value` of `changes` into the job's remote state in one statement
    /// (other keys, including ones written meanwhile by someone else, are kept).
    pub async fn patch_job_remote(
        &self,
        id: i64,
        changes: &serde_json::Map<String, serde_json::Value>,
        now: i64,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut q =
            QueryBuilder::<Sqlite>::new("UPDATE jobs SET remote_json = json_set(remote_json");
        for (key, value) in changes {
            q.push(", '$.' || json_quote(")
                .push_bind(key.as_str())
                .push("), json(")
                .push_bind(value.to_string())
                .push(")");
        }
        q.push("), updated_at = ")
            .push_bind(now)
            .push(" WHERE id = ")
            .push_bind(id);
        q.build().execute(self.pool()).await?;
        Ok(())
    }

    pub async fn job_items(&self, job_id: i64) -> Result<Vec<JobItemRow>, StoreError> {
        Ok(sqlx::query_as::<_, JobItemRow>(
            "SELECT ji.job_id, ji.photo_id, p.seq_index, p.path, p.file_name, p.file_size, ji.state,
                    ji.remote_key, ji.remote_offset, ji.remote_id, ji.bytes, ji.error
             FROM job_items ji JOIN photos p ON p.id = ji.photo_id
             WHERE ji.job_id = ? ORDER BY p.seq_index",
        )
        .bind(job_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Records what the remote has of one photo, and the job's totals, in one transaction.
    /// A photo that reaches `sent` resets the job's retry counter.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_item(
        &self,
        job_id: i64,
        photo_id: i64,
        state: ItemState,
        remote_key: Option<&str>,
        remote_offset: i64,
        remote_id: Option<&str>,
        error: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let update = ItemUpdate {
            photo_id,
            state,
            remote_key: remote_key.map(str::to_string),
            remote_offset,
            remote_id: remote_id.map(str::to_string),
            error: error.map(str::to_string),
        };
        self.update_items(job_id, std::slice::from_ref(&update), now)
            .await
    }

    /// [`Store::update_item`] for several photos of a job, in one transaction (one commit,
    /// one disk sync): for drivers that send many small photos. The job's totals move by
    /// what each item's change adds or takes away, so the cost does not grow with the
    /// number of photos in the job.
    pub async fn update_items(
        &self,
        job_id: i64,
        items: &[ItemUpdate],
        now: i64,
    ) -> Result<(), StoreError> {
        // A photo queued twice counts once, with its last state (and its earlier key or id
        // where the last leaves them as they are).
        let mut merged: Vec<ItemUpdate> = Vec::with_capacity(items.len());
        for u in items {
            match merged.iter_mut().find(|m| m.photo_id == u.photo_id) {
                Some(m) => {
                    let (key, id) = (m.remote_key.take(), m.remote_id.take());
                    *m = u.clone();
                    m.remote_key = m.remote_key.take().or(key);
                    m.remote_id = m.remote_id.take().or(id);
                }
                None => merged.push(u.clone()),
            }
        }
        for chunk in merged.chunks(ITEMS_PER_UPDATE) {
            self.update_items_once(job_id, chunk, now).await?;
        }
        Ok(())
    }

    /// One transaction of [`Store::update_items`]: four round trips to SQLite, however
    /// many photos (each distinct).
    async fn update_items_once(
        &self,
        job_id: i64,
        items: &[ItemUpdate],
        now: i64,
    ) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let _turn = self.busy_writes.lock().await;
        // The write lock first: the totals are read and written in the same transaction.
        let mut tx = self.write_tx().await?;
        // The totals move by what each change adds or takes away (so the cost does not grow
        // with the job): a photo counts as done once sent or rejected, with all its bytes;
        // before that, with the bytes the remote holds.
        let mut totals =
            QueryBuilder::<Sqlite>::new("WITH new(photo_id, state, remote_offset) AS (");
        totals.push_values(items, |mut row, u| {
            row.push_bind(u.photo_id)
                .push_bind(u.state)
                .push_bind(u.remote_offset);
        });
        totals.push(
            "), change(photos, bytes) AS (
                SELECT (n.state IN ('sent', 'rejected')) - (ji.state IN ('sent', 'rejected')),
                       CASE WHEN n.state IN ('sent', 'rejected') THEN p.file_size ELSE n.remote_offset END
                     - CASE WHEN ji.state IN ('sent', 'rejected') THEN p.file_size ELSE ji.remote_offset END
                FROM new n JOIN job_items ji ON ji.photo_id = n.photo_id AND ji.job_id = ",
        );
        totals.push_bind(job_id);
        totals.push(
            " JOIN photos p ON p.id = ji.photo_id)
             UPDATE jobs SET
                photos_done = photos_done + (SELECT COALESCE(SUM(photos), 0) FROM change),
                bytes_done = bytes_done + (SELECT COALESCE(SUM(bytes), 0) FROM change),
                -- A photo that got through is progress: the retry counter starts again
                -- (mapillary_tools resets it after each chunk that succeeds).
                attempts = CASE WHEN EXISTS (SELECT 1 FROM new WHERE state = 'sent') THEN 0 ELSE attempts END,
                updated_at = ",
        );
        totals.push_bind(now).push(" WHERE id = ").push_bind(job_id);
        // Each batch size is a new SQL text: only the small, common ones are kept prepared
        // (sqlx caches up to 100 statements per connection, and one of a thousand rows
        // holds hundreds of kB in SQLite; kept, they grew with the photos sent).
        let keep = items.len() <= PREPARED_BATCH_SIZES;
        totals.build().persistent(keep).execute(&mut *tx).await?;

        let mut rows = QueryBuilder::<Sqlite>::new(
            "UPDATE job_items SET state = n.column2, remote_key = COALESCE(n.column3, remote_key),
                remote_offset = n.column4, remote_id = COALESCE(n.column5, remote_id),
                error = n.column6, updated_at = ",
        );
        rows.push_bind(now).push(" FROM (");
        rows.push_values(items, |mut row, u| {
            row.push_bind(u.photo_id)
                .push_bind(u.state)
                .push_bind(&u.remote_key)
                .push_bind(u.remote_offset)
                .push_bind(&u.remote_id)
                .push_bind(&u.error);
        });
        rows.push(") AS n WHERE job_items.job_id = ")
            .push_bind(job_id)
            .push(" AND job_items.photo_id = n.column1");
        rows.build().persistent(keep).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Photos per statement of [`Store::update_items`]: 6 bound values each, well under
/// SQLite's limit of 32,766.
const ITEMS_PER_UPDATE: usize = 1000;

/// Batches of [`Store::update_items`] up to this many photos keep their statements
/// prepared; larger ones (rarer, and each size a statement of its own) are prepared anew.
const PREPARED_BATCH_SIZES: usize = 8;

/// One photo's new remote state (see [`Store::update_items`]). `None` keys and ids keep
/// the stored ones.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemUpdate {
    pub photo_id: i64,
    pub state: ItemState,
    pub remote_key: Option<String>,
    pub remote_offset: i64,
    pub remote_id: Option<String>,
    pub error: Option<String>,
}

impl Store {
    /// The user asked again for these destinations: waiting jobs run now, and failed or
    /// cancelled ones start over from where they stopped. Returns the jobs touched.
    pub async fn nudge_jobs(
        &self,
        sequence_id: i64,
        destinations: &[Destination],
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut touched = 0;
        for d in destinations {
            let done = sqlx::query(
                "UPDATE jobs SET next_run_at = ?1, updated_at = ?1,
                    attempts = CASE WHEN status IN ('failed', 'cancelled') THEN 0 ELSE attempts END,
                    status = CASE WHEN status IN ('failed', 'cancelled') THEN 'pending' ELSE status END
                 WHERE sequence_id = ?2 AND destination = ?3 AND status IN ('pending', 'failed', 'cancelled')",
            )
            .bind(now)
            .bind(sequence_id)
            .bind(d)
            .execute(self.pool())
            .await?;
            touched += done.rows_affected();
        }
        Ok(touched)
    }
}
