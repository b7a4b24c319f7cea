//! The append-only event log.

use super::{Store, StoreError};
use serde::Serialize;
use sqlx::FromRow;

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Event {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub sequence_id: Option<i64>,
    pub job_id: Option<i64>,
    pub message: String,
    pub data_json: String,
}

#[derive(Debug, Clone, Default)]
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub sequence_id: Option<i64>,
    pub job_id: Option<i64>,
    pub message: &'a str,
    pub data: Option<serde_json::Value>,
}

/// The kinds of event the engine logs when a stage ends, whatever its outcome (see
/// `Engine::finish`): one of them follows every stage that ran.
pub const STAGE_END_EVENTS: [&str; 6] = [
    "stage_done",
    "interrupted",
    "retry",
    "failed",
    "needs_auth",
    "internal_error",
];

impl Store {
    /// The id of the newest event (0 when there is none): what happens next has a
    /// greater one.
    pub async fn last_event_id(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events")
            .fetch_one(self.pool())
            .await?;
        Ok(id.unwrap_or(0))
    }

    /// Of `job_ids`, those whose stage has ended (a [`STAGE_END_EVENTS`] event) since event
    /// `after`: in this process or in another one sharing the database.
    pub async fn jobs_with_stage_end_after(
        &self,
        job_ids: &[i64],
        after: i64,
    ) -> Result<Vec<i64>, StoreError> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(job_ids).unwrap_or_else(|_| "[]".into());
        let kinds = serde_json::to_string(&STAGE_END_EVENTS).unwrap_or_else(|_| "[]".into());
        let ended: Vec<i64> = sqlx::query_scalar(
            "SELECT DISTINCT job_id FROM events
             WHERE id > ? AND job_id IN (SELECT value FROM json_each(?))
               AND kind IN (SELECT value FROM json_each(?))",
        )
        .bind(after)
        .bind(ids)
        .bind(kinds)
        .fetch_all(self.pool())
        .await?;
        Ok(ended)
    }

    pub async fn append_event<'e, E>(
        executor: E,
        event: &NewEvent<'_>,
        now: i64,
    ) -> Result<i64, StoreError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
    {
        let data = event
            .data
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_else(|| "{}".into());
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO events (at, kind, sequence_id, job_id, message, data_json)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(now)
        .bind(event.kind)
        .bind(event.sequence_id)
        .bind(event.job_id)
        .bind(event.message)
        .bind(data)
        .fetch_one(executor)
        .await?;
        Ok(id)
    }

    pub async fn log_event(&self, event: &NewEvent<'_>, now: i64) -> Result<i64, StoreError> {
        Store::append_event(self.pool(), event, now).await
    }

    /// The newest `limit` events, optionally of one sequence, newest first.
    pub async fn events(
        &self,
        sequence_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query_as::<_, Event>(
            "SELECT * FROM events WHERE (?1 IS NULL OR sequence_id = ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(sequence_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }
}
