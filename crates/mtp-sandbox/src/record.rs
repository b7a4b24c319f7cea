//! The request recorder: every request that reaches the sandbox (except its own `/sandbox/…`
//! control plane), in arrival order, with what a test needs to assert on. Secrets are never stored whole (first 4 characters only).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, Method, Uri};
use md5::{Digest as _, Md5};
use serde::Serialize;
use time::OffsetDateTime;

use crate::body::{BodyState, ParsedForm};
use crate::state::lock;

/// Headers kept in the record (lower case). Token-carrying ones are redacted.
const KEPT_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "content-length",
    "transfer-encoding",
    "offset",
    "x-entity-name",
    "x-entity-length",
    "x-entity-type",
    "x-auth-token",
    "user-agent",
    "accept",
    "expect",
];

/// Form fields, query parameters and JSON keys whose values are secrets.
const SENSITIVE: &[&str] = &[
    "access_token",
    "request_token",
    "secret_token",
    "refresh_token",
    "client_secret",
    "code",
    "code_verifier",
    "mapillary_user_token",
    "mapillary_token",
    "token",
    "jwt",
    "jwt_token",
    "password",
];

/// A file part of a multipart request.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedFile {
    pub field: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub len: u64,
    pub md5: String,
}

/// One request as the sandbox received it.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    /// 0-based arrival index.
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// `mapillary`, `osm`, `kartaview`, `panoramax`, `mtpw`, `sandbox` or `None` (unknown prefix).
    pub service: Option<String>,
    /// The endpoint name used by fault targets (`mapillary.upload`), `None` if no route matched.
    pub endpoint: Option<String>,
    pub method: String,
    /// Path as received, service prefix included.
    pub path: String,
    /// Raw query string with secret values redacted.
    pub query: Option<String>,
    /// Selected request headers (lower-case names), secrets redacted to their first 4 chars.
    pub headers: Vec<(String, String)>,
    /// Request-body bytes the server read (all of them unless the connection was cut).
    pub body_len: u64,
    /// MD5 (hex) of those bytes.
    pub body_md5: String,
    /// `false` if the body ended in an error or an injected cut.
    pub body_complete: bool,
    /// URL-encoded or multipart text fields, in order, secrets redacted.
    pub form: Vec<(String, String)>,
    /// Multipart file parts.
    pub files: Vec<RecordedFile>,
    /// A JSON body (secrets redacted).
    pub json: Option<serde_json::Value>,
    /// Response status; `None` if the connection was dropped before the handler answered
    /// (or cut by an injected reset).
    pub status: Option<u16>,
    /// The injected fault, if any (`status 503`, `rate_limit`, `reset after 4096 bytes`, `latency 200ms`).
    pub fault: Option<String>,
}

impl RecordedRequest {
    /// The value of a recorded header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a recorded form field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The live record of one request, shared by the middleware layers and the body stream.
pub(crate) struct ReqCtx {
    pub record: Mutex<RecordedRequest>,
    pub body: Mutex<BodyState>,
    reset_armed: AtomicBool,
}

impl ReqCtx {
    pub fn set_endpoint(&self, name: &str) {
        lock(&self.record).endpoint = Some(name.to_owned());
    }

    pub fn set_fault(&self, label: String) {
        let mut r = lock(&self.record);
        r.fault = Some(match r.fault.take() {
            Some(prev) => format!("{prev}; {label}"),
            None => label,
        });
    }

    /// Cut the body after `after_bytes` and drop the connection once the handler returns.
    pub fn arm_reset(&self, after_bytes: u64) {
        lock(&self.body).cut_after = Some(after_bytes);
        self.reset_armed.store(true, Ordering::SeqCst);
    }

    pub fn reset_armed(&self) -> bool {
        self.reset_armed.load(Ordering::SeqCst)
    }

    /// Copies the body statistics into the record (once; later calls do nothing) and
    /// returns the buffered body with its content type, for parsing.
    fn take_body(&self) -> Option<(Option<Vec<u8>>, Option<String>)> {
        let (len, md5, complete, buffered, content_type) = {
            let mut b = lock(&self.body);
            if b.recorded {
                return None;
            }
            b.recorded = true;
            let md5 = hex::encode(std::mem::take(&mut b.md5).finalize());
            let buffered = b.buffer.take();
            b.inner = None;
            (
                b.len,
                md5,
                b.ended && !b.cut && !b.error,
                buffered,
                b.content_type.clone(),
            )
        };
        let mut r = lock(&self.record);
        r.body_len = len;
        r.body_md5 = md5;
        r.body_complete = complete;
        Some((buffered, content_type))
    }

    /// Records the handler's answer (before the rest of the body is drained).
    pub fn set_status(&self, status: u16) {
        lock(&self.record).status = Some(status);
    }

    /// Records a request whose connection went away before the reply (the client died, or
    /// hung up): what its body delivered until then. The status stays the handler's answer
    /// if it had one (the body was then being drained), else `None`: the handler was still
    /// reading, and may have kept those bytes (a Mapillary upload keeps what arrived).
    pub fn finish_dropped(&self) {
        self.take_body();
    }

    /// Copies the body statistics and parsed fields into the record.
    pub async fn finish(&self, status: Option<u16>) {
        let Some((buffered, content_type)) = self.take_body() else {
            lock(&self.record).status = status;
            return;
        };
        let mut form = Vec::new();
        let mut files = Vec::new();
        let mut json = None;
        if let (Some(bytes), Some(ct)) = (buffered, content_type) {
            if ct.to_ascii_lowercase().starts_with("application/json") {
                json = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .map(redact_json);
            } else if let Ok(parsed) = ParsedForm::parse(&ct, bytes.into()).await {
                let ParsedForm {
                    fields,
                    files: parts,
                } = parsed;
                form = fields
                    .into_iter()
                    .map(|(k, v)| {
                        let v = if SENSITIVE.contains(&k.as_str()) {
                            redact(&v)
                        } else {
                            v
                        };
                        (k, v)
                    })
                    .collect();
                files = parts
                    .iter()
                    .map(|f| RecordedFile {
                        field: f.field.clone(),
                        filename: f.filename.clone(),
                        content_type: f.content_type.clone(),
                        len: f.data.len() as u64,
                        md5: hex::encode(Md5::digest(&f.data)),
                    })
                    .collect();
            }
        }
        let mut r = lock(&self.record);
        r.form = form;
        r.files = files;
        r.json = json;
        r.status = status;
    }
}

/// All requests received, in order.
#[derive(Default)]
pub(crate) struct Recorder {
    entries: Mutex<Vec<Arc<ReqCtx>>>,
    next: AtomicU64,
}

impl Recorder {
    pub fn begin(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Arc<ReqCtx> {
        let path = uri.path().to_owned();
        let service = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .filter(|s| {
                [
                    "mapillary",
                    "osm",
                    "kartaview",
                    "panoramax",
                    "mtpw",
                    "sandbox",
                ]
                .contains(s)
            })
            .map(str::to_owned);
        let kept = headers
            .iter()
            .filter(|(k, _)| KEPT_HEADERS.contains(&k.as_str()))
            .map(|(k, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                let v = match k.as_str() {
                    "authorization" => match v.split_once(' ') {
                        Some((scheme, cred)) => format!("{scheme} {}", redact(cred.trim())),
                        None => redact(&v),
                    },
                    "x-auth-token" => redact(&v),
                    _ => v,
                };
                (k.as_str().to_owned(), v)
            })
            .collect();
        let content_type = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let record = RecordedRequest {
            seq: self.next.fetch_add(1, Ordering::SeqCst),
            received_at: OffsetDateTime::now_utc(),
            service,
            endpoint: None,
            method: method.as_str().to_owned(),
            path,
            query: uri.query().map(redact_query),
            headers: kept,
            body_len: 0,
            body_md5: String::new(),
            body_complete: false,
            form: Vec::new(),
            files: Vec::new(),
            json: None,
            status: None,
            fault: None,
        };
        let ctx = Arc::new(ReqCtx {
            record: Mutex::new(record),
            body: Mutex::new(BodyState::new(content_type)),
            reset_armed: AtomicBool::new(false),
        });
        lock(&self.entries).push(ctx.clone());
        ctx
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.entries)
            .iter()
            .map(|c| lock(&c.record).clone())
            .collect()
    }

    pub fn clear(&self) {
        lock(&self.entries).clear();
    }
}

/// Keeps the first 4 characters of a secret.
pub(crate) fn redact(v: &str) -> String {
    let head: String = v.chars().take(4).collect();
    format!("{head}…")
}

fn redact_query(q: &str) -> String {
    if !url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| SENSITIVE.contains(&k.as_ref())) {
        return q.to_owned();
    }
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| {
            let v = if SENSITIVE.contains(&k.as_ref()) {
                redact(&v)
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .fold(
            url::form_urlencoded::Serializer::new(String::new()),
            |mut s, (k, v)| {
                s.append_pair(&k, &v);
                s
            },
        )
        .finish()
}

fn redact_json(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) if SENSITIVE.contains(&k.as_str()) => {
                        (k, serde_json::Value::String(redact(&s)))
                    }
                    other => (k, redact_json(other)),
                })
                .collect(),
        ),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(redact_json).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_four_chars() {
        assert_eq!(redact("MLY|123|abc"), "MLY|…");
        assert_eq!(
            redact_query("access_token=secretvalue&fields=id"),
            "access_token=secr%E2%80%A6&fields=id"
        );
        let j = redact_json(
            serde_json::json!({"mapillary_user_token": "abcdefgh", "x": [{"token": "zzzzzz"}]}),
        );
        assert_eq!(j["mapillary_user_token"], "abcd…");
        assert_eq!(j["x"][0]["token"], "zzzz…");
    }
}
