//! Map the Paths Web: metadata only — create a sequence, then import the Mapillary
//! sequence into it (PROTOCOLS §5). Best-effort: the real server's import still calls
//! Mapillary's dead v3 API.
//!
//! Quirk: errors come back as HTTP **200** with `{"error":"<text>","status":false}`, and
//! `status` may be `"success"` or a boolean, so a reply is an error whenever it has an
//! `error` key (as MTPDU tests it).

use std::sync::Arc;

use mtp_core::Destination;
use mtp_core::clock::{Millis, SharedClock, SystemClock};
use mtp_core::secret::Secret;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value};
use url::Url;

use crate::config::MtpwConfig;
use crate::decode::flex;
use crate::error::{DEFAULT_RATE_LIMIT_DELAY, ErrorKind, ProviderError, retry_after_header};
use crate::http::{self, body_text};

const SERVICE: Destination = Destination::Mtpw;

/// Sent as `source` on create (ignored by the server; MTPDU sent it).
pub const SOURCE: &str = "mtpdu";

/// Error code of a 500 answered with a page instead of JSON: mtp-web raised. On import
/// that is either an unknown id or its failed Mapillary v3 check; [`MtpwClient::import`]
/// tells them apart.
pub const CODE_ERROR_PAGE: &str = "error page";

/// Error code of an import whose `unique_id` Map the Paths Web does not know (any more).
pub const CODE_UNKNOWN_SEQUENCE: &str = "unknown sequence";

/// What mtp-web answers when its Mapillary v3 check refuses the token (PROTOCOLS §5).
pub const MAPILLARY_TOKEN_INVALID: &str = "Mapillary token is invalid";

/// What mtp-web answers an import of a known sequence that carries no field it acts on
/// (no Street View, Strava or Mapillary token): the probe [`MtpwClient::exists`] sends.
pub const MAPILLARY_TOKEN_MISSING: &str = "Mapillary token is missing";

/// What mtp-web answers a create whose transport type is not one of its names.
pub const TRANSPORT_TYPE_INVALID: &str = "Transport type is invalid";

/// The spellings of the "other" transport type: the MTPW docs say "Other", MTPDU (which
/// talked to the live server) sent "Unlisted"; which one the live server holds is
/// unverified (PROTOCOLS §5 ⚠️). A create refused with one is tried with the other.
const OTHER_SPELLINGS: [&str; 2] = ["Other", "Unlisted"];

fn other_spelling(transport_type: &str) -> Option<&'static str> {
    let at = OTHER_SPELLINGS
        .iter()
        .position(|s| s.eq_ignore_ascii_case(transport_type.trim()))?;
    Some(OTHER_SPELLINGS[1 - at])
}

/// Which call a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtpwCall {
    Create,
    Import,
}

impl MtpwCall {
    fn name(self) -> &'static str {
        match self {
            MtpwCall::Create => "POST /api/v1/sequence/create/",
            MtpwCall::Import => "PUT /api/v1/sequence/import/{unique_id}/",
        }
    }
}

/// Every JSON reply of the API, success or the HTTP-200 error quirk:
/// `{"status":"success","message","unique_id"}`, `{"message","status":true}`,
/// `{"error","status":false}` (PROTOCOLS §5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct MtpwReply {
    #[serde(default)]
    pub status: Option<flex::StringOrBool>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub error: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_id")]
    pub unique_id: Option<String>,
    /// Django REST framework's errors (`{"detail":"Authentication credentials were not
    /// provided."}` with HTTP 403).
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub detail: Option<String>,
}

/// Reads an MTPW reply:
///
/// | Reply | Outcome |
/// |---|---|
/// | 401/403 | `Auth`, with `detail` |
/// | any status, JSON with an `error` key | `Permanent` with that text (`Retry` on 5xx/429) |
/// | 429 | `Retry` after `Retry-After`, else 10 s |
/// | 500 with a page, not JSON | `Retry`, code [`CODE_ERROR_PAGE`] (on import the client then probes) |
/// | other 5xx | `Retry` after `Retry-After` if present |
/// | 2xx JSON without `error` | `Ok(reply)` |
/// | 2xx not JSON, other 4xx | `Permanent`, with the body |
pub fn interpret_reply(
    call: MtpwCall,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: Millis,
) -> Result<MtpwReply, ProviderError> {
    let parsed: Option<MtpwReply> = serde_json::from_slice(body).ok();
    let code = status.as_u16();
    let error_text = parsed.as_ref().and_then(|r| r.error.clone());
    let message = error_text.clone().or_else(|| {
        parsed
            .as_ref()
            .and_then(|r| r.detail.clone().or_else(|| r.message.clone()))
    });
    let fail = |kind: ErrorKind, fallback: &str| {
        let (message, body) = match &message {
            Some(message) => (message.clone(), None),
            None => (fallback.to_string(), body_text(body)),
        };
        ProviderError::http(SERVICE, kind, code, None, message, body)
    };
    if matches!(code, 401 | 403) {
        return Err(fail(ErrorKind::Auth, "not authorized"));
    }
    let retry_after = retry_after_header(headers, now_ms);
    if let Some(text) = error_text {
        let kind = if status.is_server_error() || code == 429 {
            // A JSON error on a transient status is still transient.
            ErrorKind::Retry { after: retry_after }
        } else {
            ErrorKind::Permanent
        };
        return Err(ProviderError::http(SERVICE, kind, code, None, text, None));
    }
    if code == 429 {
        return Err(fail(
            ErrorKind::Retry {
                after: retry_after.or(Some(DEFAULT_RATE_LIMIT_DELAY)),
            },
            "too many requests",
        ));
    }
    if code == 500 && parsed.is_none() {
        return Err(ProviderError::http(
            SERVICE,
            ErrorKind::Retry { after: retry_after },
            code,
            Some(CODE_ERROR_PAGE.to_string()),
            format!("the server failed on {} with an error page", call.name()),
            body_text(body),
        ));
    }
    if status.is_server_error() {
        return Err(fail(
            ErrorKind::Retry { after: retry_after },
            "server error",
        ));
    }
    if status.is_success() {
        return match parsed {
            Some(reply) => Ok(reply),
            None => Err(
                crate::decode::decode::<MtpwReply>(SERVICE, call.name(), code, body)
                    .err()
                    .unwrap_or_else(|| {
                        ProviderError::unexpected_reply(
                            SERVICE,
                            code,
                            "the reply is not JSON",
                            body,
                        )
                    }),
            ),
        };
    }
    Err(fail(ErrorKind::Permanent, "the request failed"))
}

/// How an import that carries the Mapillary fields ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapillaryImport {
    /// Imported: the server's message ("… will be published in about 10 minutes").
    Imported { message: String },
    /// The sequence is on Map the Paths Web, but the server could not check the Mapillary
    /// account (its Mapillary v3 call failed with HTTP 500, or v3 refused the token):
    /// nothing was linked. `detail` says which.
    MapillaryCheckFailed { detail: String },
}

/// `POST /api/v1/sequence/create/` (form-encoded: JSON bodies are ignored by the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMtpwSequence {
    /// Required. MTPDU names split parts `"<name> Part N"`.
    pub name: String,
    /// Required; must match one of MTPW's names (see `mtp_core::transport`).
    pub transport_type: String,
    pub description: Option<String>,
    /// Sent comma-joined as `tag`; the server does not trim them, so we do.
    pub tags: Vec<String>,
}

impl NewMtpwSequence {
    /// The form fields of the create call, in the order they are sent.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let tags: Vec<&str> = self
            .tags
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        let mut form = vec![
            ("name", self.name.clone()),
            ("transport_type", self.transport_type.clone()),
        ];
        if let Some(description) = &self.description {
            form.push(("description", description.clone()));
        }
        if !tags.is_empty() {
            form.push(("tag", tags.join(",")));
        }
        form.push(("source", SOURCE.to_string()));
        form
    }
}

/// `PUT /api/v1/sequence/import/<unique_id>/` (JSON). Every field is optional; fields
/// sent overwrite, others are kept.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MtpwImport {
    pub mapillary_user_token: Option<Secret<String>>,
    pub mapillary_sequence_key: Option<String>,
    /// A Google Street View share link.
    pub google_street_view: Option<String>,
    /// The Strava activity id (sent as a string).
    pub strava: Option<String>,
}

impl MtpwImport {
    /// Built by hand: `Secret` deliberately does not serialize.
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        if let Some(token) = &self.mapillary_user_token {
            map.insert(
                "mapillary_user_token".into(),
                Value::String(token.expose().clone()),
            );
        }
        for (name, value) in [
            ("mapillary_sequence_key", &self.mapillary_sequence_key),
            ("google_street_view", &self.google_street_view),
            ("strava", &self.strava),
        ] {
            if let Some(value) = value {
                map.insert(name.into(), Value::String(value.clone()));
            }
        }
        Value::Object(map)
    }
}

/// A Map the Paths Web account's API client.
#[derive(Clone)]
pub struct MtpwClient {
    http: reqwest::Client,
    base_url: Url,
    token: Secret<String>,
    clock: SharedClock,
}

impl std::fmt::Debug for MtpwClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtpwClient")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl MtpwClient {
    pub fn new(http: reqwest::Client, config: &MtpwConfig, token: Secret<String>) -> Self {
        Self::with_url(http, config.base_url.clone(), token)
    }

    pub fn with_url(http: reqwest::Client, base_url: Url, token: Secret<String>) -> Self {
        MtpwClient {
            http,
            base_url,
            token,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    async fn call(
        &self,
        call: MtpwCall,
        request: reqwest::RequestBuilder,
    ) -> Result<MtpwReply, ProviderError> {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", self.token.expose())).map_err(|_| {
                ProviderError::auth(SERVICE, "the stored token is not a valid header value")
            })?;
        value.set_sensitive(true);
        let reply = http::send(SERVICE, request.header(AUTHORIZATION, value)).await?;
        interpret_reply(
            call,
            reply.status,
            &reply.headers,
            &reply.body,
            self.clock.now_ms(),
        )
    }

    /// Creates an (unpublished) sequence and returns its `unique_id`.
    pub async fn create_sequence(
        &self,
        sequence: &NewMtpwSequence,
    ) -> Result<String, ProviderError> {
        if sequence.name.trim().is_empty() {
            return Err(ProviderError::invalid(SERVICE, "Sequence Name is missing"));
        }
        let url = http::endpoint(
            SERVICE,
            &self.base_url,
            &["api", "v1", "sequence", "create", ""],
        )?;
        let create = |sequence: &NewMtpwSequence| {
            self.call(
                MtpwCall::Create,
                self.http.post(url.clone()).form(&sequence.form_fields()),
            )
        };
        let reply = match create(sequence).await {
            // A refused create made nothing: the other spelling of "other" is safe to try.
            Err(e) if e.message() == TRANSPORT_TYPE_INVALID => {
                let Some(other) = other_spelling(&sequence.transport_type) else {
                    return Err(e);
                };
                tracing::info!(
                    "Map the Paths Web does not know the transport type {:?}; trying {other:?}",
                    sequence.transport_type
                );
                create(&NewMtpwSequence {
                    transport_type: other.to_string(),
                    ..sequence.clone()
                })
                .await?
            }
            r => r?,
        };
        reply.unique_id.clone().ok_or_else(|| {
            ProviderError::unexpected_reply(
                SERVICE,
                200,
                format!(
                    "the reply to {} does not fit: missing field `unique_id`",
                    MtpwCall::Create.name()
                ),
                serde_json::to_string(&reply).unwrap_or_default().as_bytes(),
            )
        })
    }

    async fn put_import(&self, unique_id: &str, body: &Value) -> Result<MtpwReply, ProviderError> {
        let url = http::endpoint(
            SERVICE,
            &self.base_url,
            &["api", "v1", "sequence", "import", unique_id, ""],
        )?;
        self.call(MtpwCall::Import, self.http.put(url).json(body))
            .await
    }

    /// Whether Map the Paths Web knows `unique_id`: an import with no fields changes
    /// nothing. For a known sequence mtp-web (5305bb0, `SequenceImport.put`) finds neither a
    /// Street View/Strava field nor a Mapillary token and answers its HTTP-200 quirk
    /// `{"error":"Mapillary token is missing","status":false}`; an unknown id makes the view
    /// raise first (HTTP 500 page). A plain success (a server that answers the empty import
    /// with a message) is a known sequence too. ⚠️ Read in mtp-web's code, unobserved on
    /// the live site.
    pub async fn exists(&self, unique_id: &str) -> Result<bool, ProviderError> {
        match self.put_import(unique_id, &Value::Object(Map::new())).await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some(CODE_ERROR_PAGE) => Ok(false),
            Err(e)
                if e.kind() == ErrorKind::Permanent && e.message() == MAPILLARY_TOKEN_MISSING =>
            {
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    fn unknown(unique_id: &str) -> ProviderError {
        ProviderError::http(
            SERVICE,
            ErrorKind::Permanent,
            500,
            Some(CODE_UNKNOWN_SEQUENCE.to_string()),
            format!("Map the Paths Web does not know the sequence {unique_id} (any more)"),
            None,
        )
    }

    /// Imports into an existing sequence; returns the server's message. A 500 error page
    /// is looked into: an unknown id is a permanent [`CODE_UNKNOWN_SEQUENCE`] error.
    pub async fn import(
        &self,
        unique_id: &str,
        import: &MtpwImport,
    ) -> Result<String, ProviderError> {
        match self.put_import(unique_id, &import.to_json()).await {
            Ok(reply) => Ok(reply.message.unwrap_or_default()),
            Err(e) if e.code() == Some(CODE_ERROR_PAGE) => {
                if self.exists(unique_id).await? {
                    Err(e)
                } else {
                    Err(Self::unknown(unique_id))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Links a Mapillary sequence: `mapillary_user_token` + `mapillary_sequence_key`.
    /// Today's server checks the token against Mapillary's retired v3 API first, which
    /// fails (HTTP 500 page) or refuses (`"Mapillary token is invalid"`, HTTP 200): both
    /// are [`MapillaryImport::MapillaryCheckFailed`] once the sequence is known to exist.
    /// An unknown id is a permanent [`CODE_UNKNOWN_SEQUENCE`] error.
    pub async fn import_mapillary(
        &self,
        unique_id: &str,
        mapillary_user_token: &Secret<String>,
        mapillary_sequence_key: &str,
    ) -> Result<MapillaryImport, ProviderError> {
        let import = MtpwImport {
            mapillary_user_token: Some(mapillary_user_token.clone()),
            mapillary_sequence_key: Some(mapillary_sequence_key.to_string()),
            ..MtpwImport::default()
        };
        match self.put_import(unique_id, &import.to_json()).await {
            Ok(reply) => Ok(MapillaryImport::Imported {
                message: reply.message.unwrap_or_default(),
            }),
            Err(e) if e.code() == Some(CODE_ERROR_PAGE) => {
                if self.exists(unique_id).await? {
                    Ok(MapillaryImport::MapillaryCheckFailed {
                        detail: "it failed with HTTP 500 while checking the Mapillary account"
                            .to_string(),
                    })
                } else {
                    Err(Self::unknown(unique_id))
                }
            }
            Err(e)
                if e.kind() == ErrorKind::Permanent && e.message() == MAPILLARY_TOKEN_INVALID =>
            {
                Ok(MapillaryImport::MapillaryCheckFailed {
                    detail: format!("it answered \"{MAPILLARY_TOKEN_INVALID}\""),
                })
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! mtp-web's replies (PROTOCOLS §5): success replies spaced, errors compact, `status`
    //! a string or a boolean.
    use super::*;

    fn reply(code: u16, body: &str) -> Result<MtpwReply, ProviderError> {
        interpret_reply(
            MtpwCall::Import,
            StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
            &HeaderMap::new(),
            body.as_bytes(),
            0,
        )
    }

    #[test]
    fn sample_replies() {
        let r = reply(200, r#"{"status": "success", "message": "Sequence successfully was created.", "unique_id": "5f0c1f52-0000-4000-8000-000000000001"}"#).unwrap();
        assert_eq!(
            r.unique_id.as_deref(),
            Some("5f0c1f52-0000-4000-8000-000000000001")
        );
        let r = reply(200, r#"{"status": "success", "message": "Sequence successfully was imported. Sequence will be published in about 10 minutes.", "unique_id": "u"}"#).unwrap();
        assert!(r.message.unwrap().contains("10 minutes"));
        let r = reply(200, r#"{"message":"Sequence is updated \n","status":true}"#).unwrap();
        assert_eq!(r.status, Some(flex::StringOrBool::Bool(true)));
        let e = reply(
            200,
            r#"{"error":"Mapillary token is invalid","status":false}"#,
        )
        .unwrap_err();
        assert_eq!(e.message(), MAPILLARY_TOKEN_INVALID);
        let e = reply(
            403,
            r#"{"detail":"Authentication credentials were not provided."}"#,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
        let e = reply(
            500,
            "A server error occurred.  Please contact the administrator.",
        )
        .unwrap_err();
        assert_eq!(e.code(), Some(CODE_ERROR_PAGE));
        let e = reply(200, "<html>").unwrap_err();
        assert!(
            e.message()
                .starts_with("the reply to PUT /api/v1/sequence/import/{unique_id}/ does not fit"),
            "{}",
            e.message()
        );
    }
}
