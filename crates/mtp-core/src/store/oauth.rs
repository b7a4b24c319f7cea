//! OAuth attempts waiting for the browser to come back through the deep link.

use super::{Store, StoreError};
use crate::Destination;
use crate::secret::Secret;
use sqlx::Row;

#[derive(Debug, Clone)]
pub struct OAuthAttempt {
    pub state: String,
    pub service: Destination,
    pub pkce_verifier: Option<Secret<String>>,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn save_oauth_attempt(&self, a: &OAuthAttempt) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_attempts (state, service, pkce_verifier, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&a.state)
        .bind(a.service.as_str())
        .bind(a.pkce_verifier.as_ref().map(|v| v.expose().clone()))
        .bind(a.created_at)
        .bind(a.expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes and returns the attempt with this `state`, if there is one that has not expired.
    /// Taking it makes every state single-use; expired attempts are purged on the way.
    pub async fn take_oauth_attempt(
        &self,
        state: &str,
        now: i64,
    ) -> Result<Option<OAuthAttempt>, StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM oauth_attempts WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("DELETE FROM oauth_attempts WHERE state = ? RETURNING *")
            .bind(state)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let service: String = row.get("service");
        Ok(Some(OAuthAttempt {
            state: row.get("state"),
            service: service
                .parse()
                .map_err(|e: crate::destination::UnknownDestination| {
                    StoreError::Invalid(e.to_string())
                })?,
            pkce_verifier: row
                .get::<Option<String>, _>("pkce_verifier")
                .map(Secret::new),
            created_at: row.get("created_at"),
            expires_at: row.get("expires_at"),
        }))
    }
}
