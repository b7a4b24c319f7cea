//! Panoramax (GeoVisio 2.15): upload sets, one multipart POST per file, completion and
//! read-back (PROTOCOLS §4). Paths live under `{instance}/api`.
//!
//! A 409 on a file means the exact bytes are already on the instance (in this set, or in
//! another one): the photo is there, so it is success.

use std::sync::Arc;

use bytes::Bytes;
use mtp_core::Destination;
use mtp_core::clock::{Millis, SharedClock, SystemClock};
use mtp_core::secret::Secret;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::multipart::{Form, Part};
use serde::Serialize;
use serde_json::Value;
use url::Url;

use crate::config::PanoramaxConfig;
use crate::error::{DEFAULT_RATE_LIMIT_DELAY, ErrorKind, ProviderError, retry_after_header};
use crate::http::{
    self, Reply, body_text, flex_bool, flex_f64, flex_string, flex_u64, rfc3339_utc, str_field,
    transfer_timeout,
};

const SERVICE: Destination = Destination::Panoramax;

/// Classifies a failed Panoramax reply. Errors look like
/// `{"message","status_code","details":{"error","missing_fields"}}`.
///
/// | Status | Kind |
/// |---|---|
/// | 401 (`Token not valid`, `Authentication is mandatory`), 403 (unknown or unclaimed token, not the owner) | `Auth` |
/// | 429 | `Retry` after `Retry-After`, else 10 s |
/// | 5xx | `Retry` after `Retry-After` if present |
/// | 400 (no GPS, no date, not a JPEG), 404, 415, other 4xx | `Permanent`, with `message`, `details.error` as the code and `missing_fields` |
pub fn classify_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: Millis,
) -> ProviderError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let details = json.as_ref().and_then(|j| j.get("details"));
    let code = details
        .and_then(|d| str_field(d.get("error")))
        .filter(|c| !c.contains(' '));
    let mut message = json.as_ref().and_then(|j| str_field(j.get("message")));
    // A free-text `details.error` is the most precise explanation GeoVisio gives.
    if let Some(detail) = details.and_then(|d| str_field(d.get("error"))) {
        message = Some(match message {
            Some(m) if !m.contains(&detail) => format!("{m}: {detail}"),
            Some(m) => m,
            None => detail,
        });
    }
    if let Some(missing) = details
        .and_then(|d| d.get("missing_fields"))
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
    {
        let names: Vec<String> = missing
            .iter()
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
            .collect();
        message = Some(format!(
            "{} (missing: {})",
            message.unwrap_or_else(|| "invalid metadata".to_string()),
            names.join(", ")
        ));
    }
    let retry_after = retry_after_header(headers, now_ms);
    let kind = match status.as_u16() {
        401 | 403 => ErrorKind::Auth,
        429 => ErrorKind::Retry {
            after: retry_after.or(Some(DEFAULT_RATE_LIMIT_DELAY)),
        },
        500..=599 => ErrorKind::Retry { after: retry_after },
        _ => ErrorKind::Permanent,
    };
    let (message, body) = match message {
        Some(message) => (message, None),
        None if json.is_some() => ("the request failed".to_string(), body_text(body)),
        None => ("unexpected reply".to_string(), body_text(body)),
    };
    ProviderError::http(SERVICE, kind, status.as_u16(), code, message, body)
}

/// `GET /api/users/me`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanoramaxUser {
    pub id: String,
    pub name: Option<String>,
}

/// `GET /api/configuration`: what panoramax-cli looks at before uploading.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceConfiguration {
    /// `auth.enabled`. ⚠️ Still `false` on instances that force auth on upload, so send
    /// the token whenever there is one.
    pub auth_enabled: bool,
    pub license_id: Option<String>,
    pub license_url: Option<String>,
    pub raw: Value,
}

/// `sort_method` of an upload set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SortMethod {
    #[serde(rename = "filename-asc")]
    FilenameAsc,
    #[serde(rename = "filename-desc")]
    FilenameDesc,
    #[serde(rename = "time-asc")]
    TimeAsc,
    #[serde(rename = "time-desc")]
    TimeDesc,
}

/// `visibility` of an upload set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Visibility {
    Anyone,
    OwnerOnly,
    LoggedOnly,
}

/// A `{"key","value"}` semantic tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Semantic {
    pub key: String,
    pub value: String,
}

/// `POST /api/upload_sets` body. Unset fields take the instance defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NewUploadSet {
    pub title: String,
    /// Lets the server complete the set by itself once that many files arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_nb_files: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sort_method: Option<SortMethod>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_distance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_split: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_distance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_rotation: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_deduplication: Option<bool>,
    /// Degrees: 0 = forward, 90 = right.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relative_heading: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub semantics: Vec<Semantic>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
}

/// `items_status` of an upload set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemsStatus {
    pub prepared: u64,
    pub preparing: u64,
    pub broken: u64,
    pub rejected: u64,
    pub not_processed: u64,
}

/// An upload set's state: `completed` → `dispatched` → `ready`.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadSet {
    pub id: String,
    pub completed: bool,
    pub dispatched: bool,
    pub ready: bool,
    pub nb_items: Option<u64>,
    /// Ids of the collections (sequences) the set was dispatched into.
    pub associated_collections: Vec<String>,
    pub items_status: Option<ItemsStatus>,
    pub raw: Value,
}

impl UploadSet {
    fn from_json(value: &Value) -> Option<Self> {
        let collections = value
            .get("associated_collections")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|c| match c {
                        Value::Object(o) => flex_string(o.get("id")),
                        other => flex_string(Some(other)),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let items_status = value
            .get("items_status")
            .filter(|s| s.is_object())
            .map(|s| {
                let n = |name: &str| flex_u64(s.get(name)).unwrap_or(0);
                ItemsStatus {
                    prepared: n("prepared"),
                    preparing: n("preparing"),
                    broken: n("broken"),
                    rejected: n("rejected"),
                    not_processed: n("not_processed"),
                }
            });
        Some(UploadSet {
            id: flex_string(value.get("id"))?,
            completed: flex_bool(value.get("completed")).unwrap_or(false),
            dispatched: flex_bool(value.get("dispatched")).unwrap_or(false),
            ready: flex_bool(value.get("ready")).unwrap_or(false),
            nb_items: flex_u64(value.get("nb_items")),
            associated_collections: collections,
            items_status,
            raw: value.clone(),
        })
    }
}

/// One file for `POST /api/upload_sets/{id}/files`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewFile {
    /// Sent as the part's file name; `.jpg` is appended unless it ends in `.jpg`/`.jpeg`
    /// (GeoVisio checks the extension).
    pub file_name: String,
    pub bytes: Bytes,
    pub is_blurred: bool,
    /// `override_latitude` + `override_longitude`.
    pub override_position: Option<(f64, f64)>,
    /// `override_capture_time`, sent as ISO 8601 UTC.
    pub override_capture_time_ms: Option<Millis>,
    /// `override_Exif.<tag>` fields, by tag (e.g. `Exif.Image.Artist` → give `Image.Artist`).
    pub exif_overrides: Vec<(String, String)>,
    /// `override_Xmp.<tag>` fields, by tag.
    pub xmp_overrides: Vec<(String, String)>,
    pub picture_id: Option<String>,
}

/// The 202 reply to a file.
#[derive(Debug, Clone, PartialEq)]
pub struct AddedFile {
    pub picture_id: Option<String>,
    pub file_name: Option<String>,
    pub content_md5: Option<String>,
    pub size: Option<u64>,
    pub raw: Value,
}

/// Both outcomes mean "the picture is on the instance".
#[derive(Debug, Clone, PartialEq)]
pub enum AddFileOutcome {
    Added(AddedFile),
    /// 409: byte-identical file already there — in this set (not tracked) or in another
    /// set (tracked as `file_duplicate`); `existing_item_id` is the picture that has them.
    AlreadyThere {
        existing_item_id: Option<String>,
        message: String,
    },
}

/// Why the server refused a file (`rejected` in `GET …/files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// `capture_duplicate|file_duplicate|invalid_file|invalid_metadata|other_error|id_conflict|in_excluded_area`.
    pub reason: String,
    /// `info|warning|error`.
    pub severity: Option<String>,
    pub message: Option<String>,
}

/// One entry of `GET /api/upload_sets/{id}/files`.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadSetFile {
    /// Only shown to the owner.
    pub picture_id: Option<String>,
    pub file_name: Option<String>,
    pub content_md5: Option<String>,
    pub size: Option<u64>,
    pub rejected: Option<Rejection>,
}

fn jpeg_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
        name.to_string()
    } else {
        format!("{name}.jpg")
    }
}

fn format_number(value: f64) -> String {
    value.to_string()
}

/// A Panoramax instance's API client, with a token or anonymous.
#[derive(Clone)]
pub struct PanoramaxClient {
    http: reqwest::Client,
    instance_url: Url,
    token: Option<Secret<String>>,
    clock: SharedClock,
}

impl std::fmt::Debug for PanoramaxClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanoramaxClient")
            .field("instance_url", &self.instance_url.as_str())
            .field("authenticated", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl PanoramaxClient {
    pub fn new(
        http: reqwest::Client,
        config: &PanoramaxConfig,
        token: Option<Secret<String>>,
    ) -> Self {
        Self::with_url(http, config.instance_url.clone(), token)
    }

    pub fn with_url(
        http: reqwest::Client,
        instance_url: Url,
        token: Option<Secret<String>>,
    ) -> Self {
        PanoramaxClient {
            http,
            instance_url,
            token,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut all = vec!["api"];
        all.extend_from_slice(segments);
        http::endpoint(SERVICE, &self.instance_url, &all)
    }

    fn authorized(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        Ok(match &self.token {
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| {
                        ProviderError::auth(SERVICE, "the stored token is not a valid header value")
                    })?;
                value.set_sensitive(true);
                request.header(AUTHORIZATION, value)
            }
            None => request,
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, ProviderError> {
        http::send(SERVICE, self.authorized(request)?).await
    }

    fn error(&self, reply: &Reply) -> ProviderError {
        classify_error(
            reply.status,
            &reply.headers,
            &reply.body,
            self.clock.now_ms(),
        )
    }

    async fn call_json(&self, request: reqwest::RequestBuilder) -> Result<Value, ProviderError> {
        let reply = self.send(request).await?;
        if !reply.status.is_success() {
            return Err(self.error(&reply));
        }
        reply.json().ok_or_else(|| {
            ProviderError::unexpected_reply(
                SERVICE,
                reply.status.as_u16(),
                "the reply is not JSON",
                &reply.body,
            )
        })
    }

    /// `GET /api/users/me`: checks the token.
    pub async fn me(&self) -> Result<PanoramaxUser, ProviderError> {
        let value = self
            .call_json(self.http.get(self.url(&["users", "me"])?))
            .await?;
        let id = flex_string(value.get("id")).ok_or_else(|| {
            ProviderError::unexpected_reply(
                SERVICE,
                200,
                "the account reply has no id",
                value.to_string().as_bytes(),
            )
        })?;
        Ok(PanoramaxUser {
            id,
            name: str_field(value.get("name")),
        })
    }

    /// `GET /api/configuration`.
    pub async fn configuration(&self) -> Result<InstanceConfiguration, ProviderError> {
        let value = self
            .call_json(self.http.get(self.url(&["configuration"])?))
            .await?;
        let license = value.get("license");
        Ok(InstanceConfiguration {
            auth_enabled: flex_bool(value.pointer("/auth/enabled")).unwrap_or(false),
            license_id: str_field(license.and_then(|l| l.get("id"))),
            license_url: str_field(license.and_then(|l| l.get("url"))),
            raw: value,
        })
    }

    /// `POST /api/upload_sets` (JSON) → the new set (GeoVisio answers 200, not 201).
    pub async fn create_upload_set(&self, set: &NewUploadSet) -> Result<UploadSet, ProviderError> {
        let value = self
            .call_json(self.http.post(self.url(&["upload_sets"])?).json(set))
            .await?;
        UploadSet::from_json(&value).ok_or_else(|| {
            ProviderError::unexpected_reply(
                SERVICE,
                200,
                "the upload set reply has no id",
                value.to_string().as_bytes(),
            )
        })
    }

    /// `POST /api/upload_sets/{id}/files` (multipart, one file). 202 → [`AddFileOutcome::Added`];
    /// 409 → [`AddFileOutcome::AlreadyThere`]; 400 (no GPS, no date, not a JPEG) →
    /// `Permanent` with the reason.
    pub async fn add_file(
        &self,
        set_id: &str,
        file: &NewFile,
    ) -> Result<AddFileOutcome, ProviderError> {
        let mut form =
            Form::new().text("isBlurred", if file.is_blurred { "true" } else { "false" });
        if let Some((latitude, longitude)) = file.override_position {
            form = form
                .text("override_latitude", format_number(latitude))
                .text("override_longitude", format_number(longitude));
        }
        if let Some(ms) = file.override_capture_time_ms {
            let at = rfc3339_utc(ms).ok_or_else(|| {
                ProviderError::invalid(SERVICE, format!("capture time {ms} ms is out of range"))
            })?;
            form = form.text("override_capture_time", at);
        }
        for (tag, value) in &file.exif_overrides {
            form = form.text(format!("override_Exif.{tag}"), value.clone());
        }
        for (tag, value) in &file.xmp_overrides {
            form = form.text(format!("override_Xmp.{tag}"), value.clone());
        }
        if let Some(picture_id) = &file.picture_id {
            form = form.text("picture_id", picture_id.clone());
        }
        let part = Part::stream_with_length(
            reqwest::Body::from(file.bytes.clone()),
            file.bytes.len() as u64,
        )
        .file_name(jpeg_name(&file.file_name))
        .mime_str("image/jpeg")
        .map_err(|e| ProviderError::invalid(SERVICE, e.to_string()))?;
        let request = self
            .http
            .post(self.url(&["upload_sets", set_id, "files"])?)
            .timeout(transfer_timeout(file.bytes.len() as u64))
            .multipart(form.part("file", part));
        let reply = self.send(request).await?;
        if reply.status == StatusCode::CONFLICT {
            let value = reply.json().unwrap_or(Value::Null);
            // Same set: `existing_item.id`. Another set: `upload_sets: [{"existing_item_id",
            // "upload_set_id"}]` (GeoVisio 2.15.1).
            let existing_item_id = flex_string(value.pointer("/existing_item/id"))
                .or_else(|| flex_string(value.pointer("/details/existing_item/id")))
                .or_else(|| flex_string(value.pointer("/upload_sets/0/existing_item_id")));
            let message = str_field(value.get("message"))
                .or_else(|| str_field(value.pointer("/details/error")))
                .unwrap_or_else(|| "the same file is already on the instance".to_string());
            return Ok(AddFileOutcome::AlreadyThere {
                existing_item_id,
                message,
            });
        }
        if !reply.status.is_success() {
            return Err(self.error(&reply));
        }
        let value = reply.json().ok_or_else(|| {
            ProviderError::unexpected_reply(
                SERVICE,
                reply.status.as_u16(),
                "the reply is not JSON",
                &reply.body,
            )
        })?;
        Ok(AddFileOutcome::Added(AddedFile {
            picture_id: flex_string(value.get("picture_id")),
            file_name: str_field(value.get("file_name")),
            content_md5: str_field(value.get("content_md5")),
            size: flex_u64(value.get("size"))
                .or_else(|| flex_f64(value.get("size")).map(|s| s as u64)),
            raw: value,
        }))
    }

    /// `POST /api/upload_sets/{id}/complete`: forces completion (queues `dispatch`).
    pub async fn complete_upload_set(&self, set_id: &str) -> Result<(), ProviderError> {
        let reply = self
            .send(
                self.http
                    .post(self.url(&["upload_sets", set_id, "complete"])?),
            )
            .await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(self.error(&reply))
        }
    }

    /// `GET /api/upload_sets/{id}`: poll until `ready`.
    pub async fn upload_set(&self, set_id: &str) -> Result<UploadSet, ProviderError> {
        let value = self
            .call_json(self.http.get(self.url(&["upload_sets", set_id])?))
            .await?;
        UploadSet::from_json(&value).ok_or_else(|| {
            ProviderError::unexpected_reply(
                SERVICE,
                200,
                "the upload set reply has no id",
                value.to_string().as_bytes(),
            )
        })
    }

    /// `GET /api/upload_sets/{id}/files`, with the reasons of rejected files.
    pub async fn upload_set_files(
        &self,
        set_id: &str,
    ) -> Result<Vec<UploadSetFile>, ProviderError> {
        let value = self
            .call_json(self.http.get(self.url(&["upload_sets", set_id, "files"])?))
            .await?;
        let files = value
            .get("files")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ProviderError::unexpected_reply(
                    SERVICE,
                    200,
                    "the reply has no files list",
                    value.to_string().as_bytes(),
                )
            })?;
        Ok(files
            .iter()
            .map(|f| UploadSetFile {
                picture_id: flex_string(f.get("picture_id")),
                file_name: str_field(f.get("file_name")),
                content_md5: str_field(f.get("content_md5")),
                size: flex_u64(f.get("size")),
                rejected: f
                    .get("rejected")
                    .filter(|r| r.is_object())
                    .map(|r| Rejection {
                        reason: str_field(r.get("reason"))
                            .unwrap_or_else(|| "other_error".to_string()),
                        severity: str_field(r.get("severity")),
                        message: str_field(r.get("message")),
                    }),
            })
            .collect())
    }

    /// `DELETE /api/upload_sets/{id}` → 204.
    pub async fn delete_upload_set(&self, set_id: &str) -> Result<(), ProviderError> {
        let reply = self
            .send(self.http.delete(self.url(&["upload_sets", set_id])?))
            .await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(self.error(&reply))
        }
    }
}
