//! Sandbox accounts, issued tokens and authorization codes, shared by every emulator.
//!
//! Every token carries a serial number; [`crate::Faults::expire_tokens`] marks all serials
//! issued so far as expired (access tokens only: refresh tokens survive so that a client's
//! refresh path can be tested) and [`crate::Faults::revoke_tokens`] kills every token.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::faults::Faults;
use crate::ids;

/// The emulated services that issue tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Mapillary,
    Osm,
    #[serde(rename = "kartaview")]
    KartaView,
    Panoramax,
    Mtpw,
}

impl Service {
    pub fn parse(s: &str) -> Option<Service> {
        match s {
            "mapillary" => Some(Service::Mapillary),
            "osm" => Some(Service::Osm),
            "kartaview" => Some(Service::KartaView),
            "panoramax" => Some(Service::Panoramax),
            "mtpw" => Some(Service::Mtpw),
            _ => None,
        }
    }
}

/// One sandbox account. The same person exists on every service, with per-service ids.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SandboxUser {
    pub username: &'static str,
    pub display_name: &'static str,
    /// Mapillary user id (numeric string, as the Graph API returns it).
    pub mapillary_id: &'static str,
    pub osm_id: u64,
    pub kartaview_id: u64,
    /// Panoramax account id (a UUID).
    pub panoramax_id: &'static str,
    pub mtpw_id: u64,
}

/// The sandbox accounts: index 0 is the default (`sandbox-user`), index 1 has a non-ASCII
/// username and display name.
pub static USERS: [SandboxUser; 2] = [
    SandboxUser {
        username: crate::SANDBOX_USERNAME,
        display_name: crate::SANDBOX_DISPLAY_NAME,
        mapillary_id: "104729000000001",
        osm_id: 9_000_001,
        kartaview_id: 7_000_001,
        panoramax_id: "5b0b1f2e-0000-4000-8000-000000000001",
        mtpw_id: 1,
    },
    SandboxUser {
        username: crate::SANDBOX_UTF8_USERNAME,
        display_name: crate::SANDBOX_UTF8_DISPLAY_NAME,
        mapillary_id: "104729000000002",
        osm_id: 9_000_002,
        kartaview_id: 7_000_002,
        panoramax_id: "5b0b1f2e-0000-4000-8000-000000000002",
        mtpw_id: 2,
    },
];

/// Secret used to sign the Panoramax JWTs (GeoVisio's `FLASK_SECRET_KEY`).
const PANORAMAX_SECRET: &[u8] = b"mtp-sandbox-flask-secret";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TokenKind {
    Access,
    Refresh,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Token {
    pub service: Service,
    pub kind: TokenKind,
    pub user: usize,
    pub client_id: String,
    pub serial: u64,
    /// Unix ms ([`crate::clock`]).
    pub expires_at: Option<u64>,
}

/// Result of checking a presented token.
#[derive(Clone, Debug)]
pub(crate) enum TokenCheck {
    Valid(Token),
    Expired,
    Unknown,
}

#[derive(Clone, Debug)]
pub(crate) struct AuthCode {
    pub service: Service,
    pub client_id: String,
    pub redirect_uri: Option<String>,
    pub user: usize,
    pub expires_at: Instant,
    pub code_challenge: Option<(String, String)>,
}

/// A Panoramax API token row (GeoVisio's `tokens` table).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PanoramaxToken {
    pub id: String,
    pub jwt: String,
    pub user: Option<usize>,
    pub description: String,
    pub generated_at: time::OffsetDateTime,
}

/// Issued tokens survive a restart ([`crate::persist`]); authorization codes (minutes-long,
/// mid-sign-in) do not.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct AuthStore {
    tokens: HashMap<String, Token>,
    #[serde(skip)]
    codes: HashMap<String, AuthCode>,
    pub panoramax_tokens: Vec<PanoramaxToken>,
}

/// Why a Panoramax bearer token was refused.
pub(crate) enum PanoramaxAuthError {
    /// Not a JWT we signed: 401 `Token not valid`.
    Invalid,
    /// Signed by us but not claimed yet: 403.
    Unclaimed,
    /// Signed by us but unknown, revoked or expired: 403.
    Gone,
}

impl AuthStore {
    /// Every token value handed out so far (access, refresh, Panoramax JWTs).
    pub fn issued_values(&self) -> Vec<String> {
        self.tokens
            .keys()
            .cloned()
            .chain(self.panoramax_tokens.iter().map(|t| t.jwt.clone()))
            .collect()
    }

    /// The highest token serial issued (0 = none), so that a loaded state's tokens keep
    /// answering to [`Faults::expire_tokens`] after a restart.
    pub fn max_serial(&self) -> u64 {
        self.tokens.values().map(|t| t.serial).max().unwrap_or(0)
    }

    /// Issues a token. `lifetime: None` = never expires (OSM, KartaView, MTPW, Panoramax).
    pub fn issue(
        &mut self,
        faults: &Faults,
        service: Service,
        kind: TokenKind,
        user: usize,
        client_id: &str,
        lifetime: Option<Duration>,
    ) -> String {
        let value = match (service, kind) {
            (Service::Mapillary, TokenKind::Access) => {
                format!("MLY|{}|{}", USERS[user].mapillary_id, ids::hex(16))
            }
            (Service::Mapillary, TokenKind::Refresh) => {
                format!("MLYR|{}|{}", USERS[user].mapillary_id, ids::hex(16))
            }
            (Service::Osm, _) => ids::base62(43),
            (Service::KartaView, _) => ids::hex(32),
            (Service::Mtpw, _) => ids::base62(30),
            (Service::Panoramax, _) => self.panoramax_generate(Some(user), "sandbox token").jwt,
        };
        let token = Token {
            service,
            kind,
            user,
            client_id: client_id.to_owned(),
            serial: faults.next_token_serial(),
            expires_at: lifetime.map(crate::clock::after),
        };
        self.tokens.insert(value.clone(), token);
        value
    }

    /// Looks a token up for `service`, applying expiry and the forced-expiry faults.
    pub fn check(&self, faults: &Faults, service: Service, value: &str) -> TokenCheck {
        let Some(token) = self.tokens.get(value) else {
            return TokenCheck::Unknown;
        };
        if token.service != service {
            return TokenCheck::Unknown;
        }
        if faults.token_revoked(token.serial) {
            return TokenCheck::Expired;
        }
        if token.kind == TokenKind::Access && faults.token_expired(token.serial) {
            return TokenCheck::Expired;
        }
        if token.expires_at.is_some_and(crate::clock::reached) {
            return TokenCheck::Expired;
        }
        TokenCheck::Valid(token.clone())
    }

    /// A valid access token's user, or `None`.
    pub fn access_user(&self, faults: &Faults, service: Service, value: &str) -> Option<usize> {
        match self.check(faults, service, value) {
            TokenCheck::Valid(t) if t.kind == TokenKind::Access => Some(t.user),
            _ => None,
        }
    }

    pub fn add_code(&mut self, code: AuthCode) -> String {
        let value = ids::base62(32);
        self.codes.insert(value.clone(), code);
        value
    }

    /// Removes and returns a code (codes are single-use).
    pub fn take_code(&mut self, value: &str) -> Option<AuthCode> {
        self.codes.remove(value)
    }

    /// Creates an unclaimed (or, with `user`, already claimed) Panoramax token.
    pub fn panoramax_generate(&mut self, user: Option<usize>, description: &str) -> PanoramaxToken {
        let id = uuid::Uuid::new_v4().to_string();
        let jwt = panoramax_jwt(&id);
        let row = PanoramaxToken {
            id,
            jwt: jwt.clone(),
            user,
            description: description.to_owned(),
            generated_at: time::OffsetDateTime::now_utc(),
        };
        self.panoramax_tokens.push(row.clone());
        row
    }

    /// Registers the serial of a Panoramax token so that the expiry faults apply to it.
    pub fn panoramax_register(&mut self, faults: &Faults, jwt: &str, user: usize) {
        self.tokens.insert(
            jwt.to_owned(),
            Token {
                service: Service::Panoramax,
                kind: TokenKind::Access,
                user,
                client_id: String::new(),
                serial: faults.next_token_serial(),
                expires_at: None,
            },
        );
    }

    pub fn panoramax_user(&self, faults: &Faults, jwt: &str) -> Result<usize, PanoramaxAuthError> {
        let Some(sub) = verify_panoramax_jwt(jwt) else {
            return Err(PanoramaxAuthError::Invalid);
        };
        if let Some(row) = self.panoramax_tokens.iter().find(|t| t.id == sub)
            && row.user.is_none()
        {
            return Err(PanoramaxAuthError::Unclaimed);
        }
        self.access_user(faults, Service::Panoramax, jwt)
            .ok_or(PanoramaxAuthError::Gone)
    }
}

/// Checks a PKCE verifier against the stored challenge (`S256` or `plain`).
pub(crate) fn pkce_matches(challenge: &str, method: &str, verifier: &str) -> bool {
    match method {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge,
        "plain" => verifier == challenge,
        _ => false,
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// An HS256 JWT of `{"iss":"geovisio","sub":"<token id>"}`, as GeoVisio issues.
fn panoramax_jwt(token_id: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        serde_json::json!({"iss": "geovisio", "sub": token_id})
            .to_string()
            .as_bytes(),
    );
    let signing_input = format!("{header}.{payload}");
    let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(PANORAMAX_SECRET, signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

/// Returns the `sub` of a JWT signed by the sandbox, or `None`.
fn verify_panoramax_jwt(jwt: &str) -> Option<String> {
    let mut parts = jwt.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let expected =
        URL_SAFE_NO_PAD.encode(hmac_sha256(PANORAMAX_SECRET, format!("{h}.{p}").as_bytes()));
    if expected != s {
        return None;
    }
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
    if payload.get("iss")?.as_str()? != "geovisio" {
        return None;
    }
    Some(payload.get("sub")?.as_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn jwt_round_trip_and_tamper() {
        let jwt = panoramax_jwt("abc");
        assert_eq!(verify_panoramax_jwt(&jwt).as_deref(), Some("abc"));
        let tampered = format!("{}x", jwt);
        assert!(verify_panoramax_jwt(&tampered).is_none());
        assert!(verify_panoramax_jwt("not-a-jwt").is_none());
    }

    #[test]
    fn pkce_s256_matches_an_independent_computation() {
        // base64url(sha256(verifier)) computed with Python's hashlib.
        assert!(pkce_matches(
            "KLU4u1wmy9P-3_Un1YHpt7F3Isj5IzWyz_aqonAA0wQ",
            "S256",
            "dBjftJeZ4CVP-mJ0kzyX3fqP3DkyIQ1NKoHYGsT4aPk"
        ));
        assert!(!pkce_matches(
            "KLU4u1wmy9P-3_Un1YHpt7F3Isj5IzWyz_aqonAA0wQ",
            "S256",
            "other"
        ));
        assert!(pkce_matches("abc", "plain", "abc"));
    }
}
