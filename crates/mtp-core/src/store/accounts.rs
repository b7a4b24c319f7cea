//! Connected services and their tokens. The token columns hold the tokens themselves, or
//! references to OS keychain entries (see `secrets`).

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
    /// Why the account needs a new sign-in although the service never said so: its token is
    /// in an OS keychain that does not answer now, or no longer there. `needs_reauth` is then
    /// true and the tokens are empty. Never stored.
    pub reauth_reason: Option<String>,
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

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds the columns both writes of an account set, in this order, after what each puts
/// first: user id, user name, the two token columns, expiry, `needs_reauth`, instance and
/// `updated_at`.
fn bind_fields<'q>(
    q: Query<'q>,
    account: &'q Account,
    access: &'q String,
    refresh: &'q Option<String>,
    needs_reauth: bool,
    now: i64,
) -> Query<'q> {
    q.bind(&account.user_id)
        .bind(&account.username)
        .bind(access)
        .bind(refresh)
        .bind(account.expires_at)
        .bind(needs_reauth as i64)
        .bind(&account.instance_url)
        .bind(now)
}

/// What a write of an account is: a sign-in (counted), or the tokens of a refresh, kept
/// only if no sign-in came since the count it carries.
#[derive(Clone, Copy)]
enum Write {
    SignIn,
    Refresh { sign_ins: i64 },
}

impl Store {
    /// The account of a row, its tokens read from the keychain where the row refers to it.
    async fn account_from_row(&self, row: &sqlx::sqlite::SqliteRow) -> Result<Account, StoreError> {
        let service: String = row.get("service");
        let service: Destination =
            service
                .parse()
                .map_err(|e: crate::destination::UnknownDestination| {
                    StoreError::Invalid(e.to_string())
                })?;
        let mut account = Account {
            service,
            user_id: row.get("user_id"),
            username: row.get("username"),
            access_token: Secret::default(),
            refresh_token: None,
            expires_at: row.get("expires_at"),
            needs_reauth: row.get::<i64, _>("needs_reauth") != 0,
            instance_url: row.get("instance_url"),
            reauth_reason: None,
        };
        let label = service.label();
        let access: String = row.get("access_token");
        let refresh: Option<String> = row.get("refresh_token");
        let tokens = match self.reveal_secret(label, &access).await {
            Ok(access) => match refresh {
                Some(r) => self
                    .reveal_secret(label, &r)
                    .await
                    .map(|r| (access, Some(r))),
                None => Ok((access, None)),
            },
            Err(e) => Err(e),
        };
        match tokens {
            Ok((access, refresh)) => {
                account.access_token = access;
                account.refresh_token = refresh;
            }
            Err(reason) => {
                tracing::debug!("{reason}");
                account.needs_reauth = true;
                account.reauth_reason = Some(reason);
            }
        }
        Ok(account)
    }

    /// Inserts or replaces the account of `account.service`. With the OS keychain, the
    /// tokens go there and the row keeps references. An account whose tokens could not be
    /// read (`reauth_reason`) keeps the row's tokens and sign-in state: they come back with
    /// the keychain. Counts as a sign-in (see `account_sign_ins`).
    pub async fn save_account(&self, account: &Account, now: i64) -> Result<(), StoreError> {
        self.write_account(account, Write::SignIn, now)
            .await
            .map(|_| ())
    }

    /// Saves the tokens a refresh gave, unless the user signed in again since `sign_ins`
    /// was read (`account_sign_ins`, before the refresh began): that sign-in, made in this
    /// process or in another one (the window and `mtp` share the database), is what stays.
    /// Not a sign-in itself. Returns whether it saved.
    ///
    /// The check comes before the tokens go to the keychain, and the write is conditional
    /// too: what the guard covers is the refresh's round trip to the service.
    pub async fn save_refreshed_account(
        &self,
        account: &Account,
        sign_ins: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write_account(account, Write::Refresh { sign_ins }, now)
            .await
    }

    async fn write_account(
        &self,
        account: &Account,
        write: Write,
        now: i64,
    ) -> Result<bool, StoreError> {
        let service = account.service.as_str();
        let before: Option<(String, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT access_token, refresh_token, needs_reauth, sign_ins FROM accounts WHERE service = ?",
        )
        .bind(service)
        .fetch_optional(self.pool())
        .await?;
        if let Write::Refresh { sign_ins } = write
            && before.as_ref().map(|b| b.3) != Some(sign_ins)
        {
            return Ok(false);
        }
        let (access, refresh, needs_reauth) = match (&account.reauth_reason, &before) {
            (Some(_), Some((access, refresh, needs_reauth, _))) => {
                (access.clone(), refresh.clone(), *needs_reauth != 0)
            }
            (Some(reason), None) => return Err(StoreError::Invalid(reason.clone())),
            (None, _) => {
                let access = self
                    .stash_secret(&format!("{service}:access"), &account.access_token)
                    .await;
                let refresh = match &account.refresh_token {
                    Some(r) => Some(self.stash_secret(&format!("{service}:refresh"), r).await),
                    None => None,
                };
                (access, refresh, account.needs_reauth)
            }
        };
        let fields = |q| bind_fields(q, account, &access, &refresh, needs_reauth, now);
        let written = match write {
            Write::SignIn => fields(
                sqlx::query(
                    "INSERT INTO accounts (service, user_id, username, access_token, refresh_token,
                                           expires_at, needs_reauth, instance_url, updated_at,
                                           created_at, sign_ins)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
                     ON CONFLICT (service) DO UPDATE SET
                        user_id = excluded.user_id, username = excluded.username,
                        access_token = excluded.access_token, refresh_token = excluded.refresh_token,
                        expires_at = excluded.expires_at, needs_reauth = excluded.needs_reauth,
                        instance_url = excluded.instance_url, updated_at = excluded.updated_at,
                        sign_ins = accounts.sign_ins + 1",
                )
                .bind(service),
            )
            .bind(now),
            Write::Refresh { sign_ins } => fields(sqlx::query(
                "UPDATE accounts SET user_id = ?, username = ?, access_token = ?, refresh_token = ?,
                        expires_at = ?, needs_reauth = ?, instance_url = ?, updated_at = ?
                 WHERE service = ? AND sign_ins = ?",
            ))
            .bind(service)
            .bind(sign_ins),
        }
        .execute(self.pool())
        .await?
        .rows_affected()
            > 0;
        // A refresh token the account no longer has: its keychain entry goes too.
        if written
            && refresh.is_none()
            && let Some((_, old_refresh, _, _)) = &before
        {
            self.forget_secret(old_refresh.as_deref()).await;
        }
        Ok(written)
    }

    pub async fn account(&self, service: Destination) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query("SELECT * FROM accounts WHERE service = ?")
            .bind(service.as_str())
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(row) => Ok(Some(self.account_from_row(&row).await?)),
            None => Ok(None),
        }
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows = sqlx::query("SELECT * FROM accounts ORDER BY service")
            .fetch_all(self.pool())
            .await?;
        let mut accounts = Vec::with_capacity(rows.len());
        for row in &rows {
            accounts.push(self.account_from_row(row).await?);
        }
        Ok(accounts)
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

    /// How many times the user has signed in to `service` (`None`: no account). A stage
    /// reads it before it starts; a sign-in while it runs changes it.
    pub async fn account_sign_ins(&self, service: Destination) -> Result<Option<i64>, StoreError> {
        let n: Option<(i64,)> = sqlx::query_as("SELECT sign_ins FROM accounts WHERE service = ?")
            .bind(service.as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(n.map(|(n,)| n))
    }

    /// Marks the account as needing a new sign-in, unless the user signed in again since
    /// `sign_ins` was read: the service refused the token of the sign-in before. Returns
    /// whether it did.
    pub async fn mark_needs_reauth_unless_signed_in_since(
        &self,
        service: Destination,
        sign_ins: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE accounts SET needs_reauth = 1, updated_at = ? WHERE service = ? AND sign_ins = ?",
        )
        .bind(now)
        .bind(service.as_str())
        .bind(sign_ins)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forgets the account of `service`, and its tokens' keychain entries.
    pub async fn delete_account(&self, service: Destination) -> Result<bool, StoreError> {
        let gone: Option<(String, Option<String>)> = sqlx::query_as(
            "DELETE FROM accounts WHERE service = ? RETURNING access_token, refresh_token",
        )
        .bind(service.as_str())
        .fetch_optional(self.pool())
        .await?;
        let Some((access, refresh)) = gone else {
            return Ok(false);
        };
        self.forget_secret(Some(&access)).await;
        self.forget_secret(refresh.as_deref()).await;
        Ok(true)
    }
}
