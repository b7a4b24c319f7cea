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
use serde_json::{Map, Value};
use url::Url;

use crate::config::MtpwConfig;
use crate::error::{DEFAULT_RATE_LIMIT_DELAY, ErrorKind, ProviderError, retry_after_header};
use crate::http::{self, body_text, flex_string, str_field};

const SERVICE: Destination = Destination::Mtpw;

/// Sent as `source` on create (ignored by the server; MTPDU sent it).
pub const SOURCE: &str = "mtpdu";

/// Which call a reply answers: an unknown id makes the import view raise, i.e. a 500 with
/// an HTML page, which must not be retried forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtpwCall {
    Create,
    Import,
}

/// Reads an MTPW reply:
///
/// | Reply | Outcome |
/// |---|---|
/// | any status, JSON with an `error` key | `Permanent` with that text (`Auth` on 401/403) |
/// | 401/403 | `Auth` |
/// | 429 | `Retry` after `Retry-After`, else 10 s |
/// | import, 500 with a non-JSON body | `Permanent`: the sequence is unknown to MTPW |
/// | other 5xx | `Retry` after `Retry-After` if present |
/// | 2xx JSON without `error` | `Ok(reply)` |
/// | 2xx not JSON, other 4xx | `Permanent`, with the body |
pub fn interpret_reply(
    call: MtpwCall,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: Millis,
) -> Result<Value, ProviderError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let code = status.as_u16();
    let error_text = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .filter(|e| !e.is_null())
        .map(|e| str_field(Some(e)).unwrap_or_else(|| e.to_string()));
    let message = error_text
        .clone()
        .or_else(|| json.as_ref().and_then(|j| str_field(j.get("message"))))
        .or_else(|| json.as_ref().and_then(|j| str_field(j.get("detail"))));
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
    if let Some(text) = error_text {
        if status.is_server_error() || code == 429 {
            // A JSON error on a transient status is still transient.
            let after = retry_after_header(headers, now_ms);
            return Err(ProviderError::http(
                SERVICE,
                ErrorKind::Retry { after },
                code,
                None,
                text,
                None,
            ));
        }
        return Err(ProviderError::http(
            SERVICE,
            ErrorKind::Permanent,
            code,
            None,
            text,
            None,
        ));
    }
    let retry_after = retry_after_header(headers, now_ms);
    if code == 429 {
        return Err(fail(
            ErrorKind::Retry {
                after: retry_after.or(Some(DEFAULT_RATE_LIMIT_DELAY)),
            },
            "too many requests",
        ));
    }
    if call == MtpwCall::Import && code == 500 && json.is_none() {
        return Err(ProviderError::http(
            SERVICE,
            ErrorKind::Permanent,
            code,
            None,
            "Map the Paths Web failed on this sequence (HTML error page); it probably no longer exists there — create the sequence again",
            None,
        ));
    }
    if status.is_server_error() {
        return Err(fail(
            ErrorKind::Retry { after: retry_after },
            "server error",
        ));
    }
    if status.is_success() {
        return json.ok_or_else(|| {
            ProviderError::unexpected_reply(SERVICE, code, "the reply is not JSON", body)
        });
    }
    Err(fail(ErrorKind::Permanent, "the request failed"))
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
    ) -> Result<Value, ProviderError> {
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
        let tags: Vec<&str> = sequence
            .tags
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        let mut form = vec![
            ("name", sequence.name.clone()),
            ("transport_type", sequence.transport_type.clone()),
        ];
        if let Some(description) = &sequence.description {
            form.push(("description", description.clone()));
        }
        if !tags.is_empty() {
            form.push(("tag", tags.join(",")));
        }
        form.push(("source", SOURCE.to_string()));
        let url = http::endpoint(
            SERVICE,
            &self.base_url,
            &["api", "v1", "sequence", "create", ""],
        )?;
        let value = self
            .call(MtpwCall::Create, self.http.post(url).form(&form))
            .await?;
        flex_string(value.get("unique_id")).ok_or_else(|| {
            ProviderError::unexpected_reply(
                SERVICE,
                200,
                "the reply has no unique_id",
                value.to_string().as_bytes(),
            )
        })
    }

    /// Imports into an existing sequence; returns the server's message (e.g. "… will be
    /// published in about 10 minutes").
    pub async fn import(
        &self,
        unique_id: &str,
        import: &MtpwImport,
    ) -> Result<String, ProviderError> {
        let url = http::endpoint(
            SERVICE,
            &self.base_url,
            &["api", "v1", "sequence", "import", unique_id, ""],
        )?;
        let value = self
            .call(MtpwCall::Import, self.http.put(url).json(&import.to_json()))
            .await?;
        Ok(str_field(value.get("message")).unwrap_or_default())
    }
}
