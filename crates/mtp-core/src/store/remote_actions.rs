//! Edits and deletes of sequences already on a service, kept until the service confirmed
//! them (see the `remote_actions` table), and removing a sequence's local records.

use super::{Store, StoreError};
use crate::Destination;
use serde::{Deserialize, Serialize};
use sqlx::FromRow;

/// What is asked of the service.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum RemoteActionKind {
    Edit,
    Delete,
}

/// Where a remote action is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(rename_all = "snake_case")]
pub enum RemoteActionStatus {
    /// Waiting for its turn (or for its next try).
    Pending,
    Running,
    /// The service confirmed it (or said the thing was already gone).
    Done,
    /// The service refused it for good; `last_error` says why.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct RemoteActionRow {
    pub id: i64,
    pub sequence_id: i64,
    pub sequence_name: String,
    pub destination: Destination,
    pub action: RemoteActionKind,
    pub remote_json: String,
    pub payload_json: String,
    pub status: RemoteActionStatus,
    pub attempts: i64,
    pub next_run_at: i64,
    pub last_error: Option<String>,
    pub outcome: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A new remote action.
#[derive(Debug, Clone)]
pub struct NewRemoteAction<'a> {
    pub sequence_id: i64,
    pub sequence_name: &'a str,
    pub destination: Destination,
    pub action: RemoteActionKind,
    pub remote_json: &'a str,
    pub payload_json: &'a str,
}

impl Store {
    /// Records an action to run. A pending edit of the same sequence and destination is
    /// replaced (only the latest values matter).
    pub async fn add_remote_action(
        &self,
        a: &NewRemoteAction<'_>,
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.write_tx().await?;
        if a.action == RemoteActionKind::Edit {
            sqlx::query(
                "DELETE FROM remote_actions WHERE sequence_id = ? AND destination = ?
                 AND action = 'edit' AND status = 'pending'",
            )
            .bind(a.sequence_id)
            .bind(a.destination)
            .execute(&mut *tx)
            .await?;
        }
        let id = sqlx::query_scalar(
            "INSERT INTO remote_actions (sequence_id, sequence_name, destination, action,
                 remote_json, payload_json, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(a.sequence_id)
        .bind(a.sequence_name)
        .bind(a.destination)
        .bind(a.action)
        .bind(a.remote_json)
        .bind(a.payload_json)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Every action of a sequence, oldest first.
    pub async fn remote_actions(
        &self,
        sequence_id: i64,
    ) -> Result<Vec<RemoteActionRow>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM remote_actions WHERE sequence_id = ? ORDER BY id")
                .bind(sequence_id)
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// Takes the next due pending action (it becomes `running`).
    pub async fn claim_remote_action(
        &self,
        now: i64,
    ) -> Result<Option<RemoteActionRow>, StoreError> {
        Ok(sqlx::query_as(
            "UPDATE remote_actions SET status = 'running', attempts = attempts + 1, updated_at = ?1
             WHERE id = (SELECT id FROM remote_actions WHERE status = 'pending' AND next_run_at <= ?1
                         ORDER BY next_run_at, id LIMIT 1)
             RETURNING *",
        )
        .bind(now)
        .fetch_optional(self.pool())
        .await?)
    }

    /// When the next pending action is due, if any.
    pub async fn next_remote_action_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_run_at) FROM remote_actions WHERE status = 'pending'",
        )
        .fetch_one(self.pool())
        .await?)
    }

    /// Ends or reschedules a running action.
    pub async fn finish_remote_action(
        &self,
        id: i64,
        status: RemoteActionStatus,
        next_run_at: i64,
        last_error: Option<&str>,
        outcome: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE remote_actions SET status = ?, next_run_at = ?, last_error = ?, outcome = ?,
                 updated_at = ? WHERE id = ?",
        )
        .bind(status)
        .bind(next_run_at)
        .bind(last_error)
        .bind(outcome)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// After a crash: actions left `running` go back to `pending`, due now.
    pub async fn requeue_running_remote_actions(&self, now: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE remote_actions SET status = 'pending', next_run_at = ?1, updated_at = ?1
             WHERE status = 'running'",
        )
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// A failed action is tried again from now.
    pub async fn retry_remote_actions(
        &self,
        sequence_id: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE remote_actions SET status = 'pending', next_run_at = ?1, last_error = NULL,
                 updated_at = ?1 WHERE sequence_id = ?2 AND status = 'failed'",
        )
        .bind(now)
        .bind(sequence_id)
        .execute(self.pool())
        .await?
        .rows_affected())
    }

    /// Marks a sequence as being deleted everywhere.
    pub async fn set_sequence_deleting(&self, id: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sequences SET deleting_at = ?, updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Removes a sequence's local records: the sequence, its photos' rows, its jobs and
    /// their items (the photo files on disk are never touched), and the import it came from
    /// once none of that import's sequences is left. The event log and the remote actions
    /// stay, as the record of what happened. Returns whether there was such a sequence.
    pub async fn delete_sequence(&self, id: i64) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let import: Option<Option<i64>> =
            sqlx::query_scalar("SELECT import_id FROM sequences WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(import) = import else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM sequences WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if let Some(import) = import {
            sqlx::query(
                "DELETE FROM imports WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM sequences WHERE import_id = ?1)",
            )
            .bind(import)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
