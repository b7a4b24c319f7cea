//! User settings: one JSON value per key (the `settings` table).

use sqlx::Row;

use super::{Store, StoreError};

impl Store {
    /// The value stored under `key`, if any.
    pub async fn setting(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let row = sqlx::query("SELECT value_json FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.get::<String, _>("value_json"))
            .and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Stores `value` under `key`, replacing what was there.
    pub async fn set_setting(
        &self,
        key: &str,
        value: &serde_json::Value,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value_json, updated_at) VALUES (?, ?, ?)
             ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value.to_string())
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Puts a finished job back in the queue at `stage`, due now (e.g. a Map the Paths job
    /// that ended unlinked for want of consent, once the user gives it). Only a `done` job
    /// is touched; returns whether it was.
    pub async fn reopen_job(
        &self,
        id: i64,
        stage: crate::engine::Stage,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET stage = ?, status = 'pending', attempts = 0, next_run_at = ?, updated_at = ?
             WHERE id = ? AND status = 'done'",
        )
        .bind(stage)
        .bind(now)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
