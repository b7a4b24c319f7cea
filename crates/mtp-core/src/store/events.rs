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

impl Store {
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
