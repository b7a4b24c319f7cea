//! OAuth attempts waiting for the browser to come back through the deep link.

use super::{Store, StoreError};
use crate::Destination;
use crate::secret::Secret;
use sqlx::Row;

/// The KartaView sign-in's OpenStreetMap token, as a keychain entry (`kartaview:osm@<id>`).
pub(crate) const KARTAVIEW_OSM_SECRET: &str = "kartaview:osm";

/// A sign-in waiting for the browser. Its PKCE verifier stays in the database: it lives
/// minutes, is taken once, and is worth nothing without the code the browser brings back.
#[derive(Debug, Clone)]
pub struct OAuthAttempt {
    pub state: String,
    pub service: Destination,
    pub pkce_verifier: Option<Secret<String>>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The redirect URI sent with the authorize request (the token exchange repeats it);
    /// `None` for attempts stored before it was kept.
    pub redirect_uri: Option<String>,
}

impl Store {
    pub async fn save_oauth_attempt(&self, a: &OAuthAttempt) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_attempts (state, service, pkce_verifier, created_at, expires_at, redirect_uri)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.state)
        .bind(a.service.as_str())
        .bind(a.pkce_verifier.as_ref().map(|v| v.expose().clone()))
        .bind(a.created_at)
        .bind(a.expires_at)
        .bind(&a.redirect_uri)
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
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM oauth_attempts WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("DELETE FROM oauth_attempts WHERE state = ? RETURNING *")
            .bind(state)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.map(|row| attempt(&row)).transpose()
    }

    /// The newest attempt of `service` that went out with `redirect_uri` and has not
    /// expired, left in place: an out-of-band sign-in has no `state` coming back, and a
    /// mistyped code may be pasted again.
    pub async fn newest_oauth_attempt(
        &self,
        service: Destination,
        redirect_uri: &str,
        now: i64,
    ) -> Result<Option<OAuthAttempt>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM oauth_attempts WHERE service = ? AND redirect_uri = ? AND expires_at > ?
             ORDER BY created_at DESC, rowid DESC LIMIT 1",
        )
        .bind(service.as_str())
        .bind(redirect_uri)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| attempt(&row)).transpose()
    }
}

fn attempt(row: &sqlx::sqlite::SqliteRow) -> Result<OAuthAttempt, StoreError> {
    let service: String = row.get("service");
    Ok(OAuthAttempt {
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
        redirect_uri: row.get("redirect_uri"),
    })
}

impl Store {
    /// Forgets every pending attempt of `service` (the user cancelled its sign-in): a reply
    /// that still comes back is then refused.
    pub async fn delete_oauth_attempts(&self, service: Destination) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM oauth_attempts WHERE service = ?")
            .bind(service.as_str())
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// The redirect URI chosen for `service` on its card (`None` = the configured default).
    pub async fn redirect_uri_setting(
        &self,
        service: Destination,
    ) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT redirect_uri FROM sign_in_settings WHERE service = ?")
                .bind(service.as_str())
                .fetch_optional(self.pool())
                .await?
                .flatten(),
        )
    }

    /// Sets (or with `None` clears) the redirect URI of `service`.
    pub async fn set_redirect_uri_setting(
        &self,
        service: Destination,
        redirect_uri: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sign_in_settings (service, redirect_uri, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (service) DO UPDATE SET redirect_uri = excluded.redirect_uri,
                updated_at = excluded.updated_at",
        )
        .bind(service.as_str())
        .bind(redirect_uri)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The OpenStreetMap access token the last KartaView sign-in got, if kept (and, when it
    /// is in the OS keychain, if the keychain gives it).
    pub async fn kartaview_osm_token(&self) -> Result<Option<Secret<String>>, StoreError> {
        let Some(stored) = self.stored_kartaview_osm_token().await? else {
            return Ok(None);
        };
        match self
            .reveal_secret("OpenStreetMap (for KartaView)", &stored)
            .await
        {
            Ok(token) => Ok(Some(token)),
            Err(reason) => {
                tracing::warn!("{reason}");
                Ok(None)
            }
        }
    }

    async fn stored_kartaview_osm_token(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, Option<String>>(
            "SELECT osm_token FROM sign_in_settings WHERE service = 'kartaview'",
        )
        .fetch_optional(self.pool())
        .await?
        .flatten())
    }

    /// Keeps (or with `None` forgets) the OpenStreetMap token of the KartaView sign-in, with
    /// the client id of the OSM app that issued it (`client_auth` takes that app's secret);
    /// in the OS keychain when the store uses it.
    pub async fn set_kartaview_osm_token(
        &self,
        token: Option<(&Secret<String>, &str)>,
        now: i64,
    ) -> Result<(), StoreError> {
        let before = self.stored_kartaview_osm_token().await?;
        let stored = match token {
            Some((t, _)) => Some(self.stash_secret(KARTAVIEW_OSM_SECRET, t).await),
            None => None,
        };
        sqlx::query(
            "INSERT INTO sign_in_settings (service, osm_token, osm_client_id, osm_token_at, updated_at)
             VALUES ('kartaview', ?, ?, ?, ?)
             ON CONFLICT (service) DO UPDATE SET osm_token = excluded.osm_token,
                osm_client_id = excluded.osm_client_id, osm_token_at = excluded.osm_token_at,
                updated_at = excluded.updated_at",
        )
        .bind(&stored)
        .bind(token.map(|(_, app)| app))
        .bind(token.map(|_| now))
        .bind(now)
        .execute(self.pool())
        .await?;
        if stored.is_none() {
            self.forget_secret(before.as_deref()).await;
        }
        Ok(())
    }

    /// The OpenStreetMap app (client id) that issued the kept token; `None` when no token
    /// is kept, or for one kept before the app was recorded (the configured app's).
    pub async fn kartaview_osm_client(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, Option<String>>(
            "SELECT osm_client_id FROM sign_in_settings WHERE service = 'kartaview'",
        )
        .fetch_optional(self.pool())
        .await?
        .flatten())
    }
}
