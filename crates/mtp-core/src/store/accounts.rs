//! Connected services and their tokens.

use super::{Store, StoreError};
use crate::Destination;
use crate::secret::Secret;
use serde::Serialize;
use sqlx::Row;

/// A stored account. The tokens are `Secret`s: this type is not `Serialize`.
#[derive(Debug, Clone)]
pub struct Account {
    pub service: Destination,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub access_token: Secret<String>,
    pub refresh_token: Option<Secret<String>>,
    pub expires_at: Option<i64>,
    pub needs_reauth: bool,
    pub instance_url: Option<String>,
}

/// What the web view may know about an account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountStatus {
    pub service: Destination,
    pub username: Option<String>,
    pub needs_reauth: bool,
    pub expires_at: Option<i64>,
    pub instance_url: Option<String>,
}

impl Account {
    pub fn status(&self) -> AccountStatus {
        AccountStatus {
            service: self.service,
            username: self.username.clone(),
            needs_reauth: self.needs_reauth,
            expires_at: self.expires_at,
            instance_url: self.instance_url.clone(),
        }
    }
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Account, StoreError> {
    let service: String = row.get("service");
    Ok(Account {
        service: service
            .parse()
            .map_err(|e: crate::destination::UnknownDestination| {
                StoreError::Invalid(e.to_string())
            })?,
        user_id: row.get("user_id"),
        username: row.get("username"),
        access_token: Secret::new(row.get("access_token")),
        refresh_token: row
            .get::<Option<String>, _>("refresh_token")
            .map(Secret::new),
        expires_at: row.get("expires_at"),
        needs_reauth: row.get::<i64, _>("needs_reauth") != 0,
        instance_url: row.get("instance_url"),
    })
}

impl Store {
    /// Inserts or replaces the account of `account.service`.
    pub async fn save_account(&self, account: &Account, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO accounts (service, user_id, username, access_token, refresh_token, expires_at,
                                   needs_reauth, instance_url, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (service) DO UPDATE SET
                user_id = excluded.user_id, username = excluded.username,
                access_token = excluded.access_token, refresh_token = excluded.refresh_token,
                expires_at = excluded.expires_at, needs_reauth = excluded.needs_reauth,
                instance_url = excluded.instance_url, updated_at = excluded.updated_at",
        )
        .bind(account.service.as_str())
        .bind(&account.user_id)
        .bind(&account.username)
        .bind(account.access_token.expose())
        .bind(account.refresh_token.as_ref().map(|t| t.expose().clone()))
        .bind(account.expires_at)
        .bind(account.needs_reauth as i64)
        .bind(&account.instance_url)
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn account(&self, service: Destination) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query("SELECT * FROM accounts WHERE service = ?")
            .bind(service.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query("SELECT * FROM accounts ORDER BY service")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Marks an account as needing the user to integrate again (revoked or unrefreshable token).
    pub async fn mark_needs_reauth(
        &self,
        service: Destination,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE accounts SET needs_reauth = 1, updated_at = ? WHERE service = ?")
            .bind(now)
            .bind(service.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn delete_account(&self, service: Destination) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM accounts WHERE service = ?")
            .bind(service.as_str())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
