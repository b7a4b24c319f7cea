//! Mapillary: identity, the resumable upload protocol of mapillary_tools 0.14, the commit
//! (`finish_upload`) and the Graph read-backs used to find the published sequence
//! (PROTOCOLS §2).
//!
//! Every call, the upload host included, sends `Authorization: OAuth <user token>`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use mtp_core::Destination;
use mtp_core::clock::{Millis, SharedClock, SystemClock};
use mtp_core::secret::Secret;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use url::Url;

use crate::config::MapillaryConfig;
use crate::error::{DEFAULT_RATE_LIMIT_DELAY, ErrorKind, ProviderError, retry_after_header};
use crate::http::{self, Reply, body_text, flex_bool, flex_u64, str_field, transfer_timeout};
use crate::source::{SourceError, UploadSource};

pub mod activity;

const SERVICE: Destination = Destination::Mapillary;

/// Decodes a Mapillary reply into its typed shape; one that does not fit names the call and
/// the field (`Mapillary getLatestActivity: field data.fetch__User.feed.nodes[3].cluster_id: …`).
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    call: &str,
    status: u16,
    body: &[u8],
) -> Result<T, ProviderError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let what = if inner.is_syntax() || inner.is_eof() {
            format!("{call}: the reply is not JSON ({inner})")
        } else if path == "." {
            format!("{call}: the reply does not have the expected shape ({inner})")
        } else {
            format!("{call}: field {path} of the reply does not fit ({inner})")
        };
        ProviderError::unexpected_reply(SERVICE, status, what, body)
    })
}

/// An id that arrives as a string or a number (Graph ids are strings of digits, but a few
/// replies send numbers): the one place both are accepted.
pub(crate) fn flex_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Id {
        S(String),
        N(serde_json::Number),
    }
    match <Id as serde::Deserialize>::deserialize(d)? {
        Id::S(s) if !s.is_empty() => Ok(s),
        Id::S(_) => Err(serde::de::Error::custom("empty id")),
        Id::N(n) => Ok(n.to_string()),
    }
}

/// [`flex_id`] for an optional field (`null` or absent = `None`).
pub(crate) fn flex_id_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Wrap(#[serde(deserialize_with = "flex_id")] String);
    Ok(<Option<Wrap> as serde::Deserialize>::deserialize(d)?.map(|w| w.0))
}

pub use crate::source::UPLOAD_CHUNK;

/// Most images one bbox query may return (PROTOCOLS §2.6).
pub const MAX_BBOX_LIMIT: u32 = 2000;

/// Fields read back for an image (PROTOCOLS §2.6).
pub const IMAGE_FIELDS: &[&str] = &[
    "id",
    "captured_at",
    "compass_angle",
    "geometry",
    "computed_geometry",
    "altitude",
    "sequence",
    "creator",
    "is_pano",
];

/// How often [`MapillaryClient::upload_resumable`] re-reads the offset after a 412 before
/// handing the error to the caller.
const OFFSET_RETRIES: u32 = 3;

/// Called with the absolute position in the file (offset + bytes handed to the connection
/// so far), for progress bars.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// The `file_type` of a `finish_upload` (PROTOCOLS §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// The per-sequence manifest of image handles (the 0.14 default).
    BundleManifest,
    /// One deflated zip per sequence (fallback).
    Zip,
    CammVideo,
}

impl FileType {
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::BundleManifest => "mly_bundle_manifest",
            FileType::Zip => "zip",
            FileType::CammVideo => "mly_camm_video",
        }
    }
}

/// `mly_tools_<md5 of the exact bytes sent>.jpg`. The md5 is of the bytes **after** the
/// EXIF rewrite, so that the same photo always resumes the same server-side session.
pub fn session_key_for(bytes: &[u8]) -> String {
    session_key_with_extension(bytes, "jpg")
}

/// [`session_key_for`] of a source's bytes, read from disk as they are hashed (blocking:
/// call it off the async threads).
pub fn session_key_for_source(source: &UploadSource) -> Result<String, SourceError> {
    let mut md5 = Md5::new();
    source.read_all_blocking(|bytes| md5.update(bytes))?;
    Ok(format!("mly_tools_{}.jpg", hex::encode(md5.finalize())))
}

/// The same for a zip (`zip`) or video (`mp4`).
pub fn session_key_with_extension(bytes: &[u8], extension: &str) -> String {
    format!("mly_tools_{}.{extension}", hex::encode(Md5::digest(bytes)))
}

/// A fresh `uuid_<hex>.json` key for a manifest.
pub fn new_manifest_key() -> String {
    format!("uuid_{}.json", uuid::Uuid::new_v4().simple())
}

/// `{"image_handles":[…],"upload_type":"images","version":"1"}`: compact, keys sorted,
/// handles in sequence order.
pub fn manifest_bytes(handles: &[String]) -> Bytes {
    // A struct, not `json!`: its fields serialize in declaration order (alphabetical
    // here) even if another crate in the build turns on serde_json's `preserve_order`.
    #[derive(serde::Serialize)]
    struct Manifest<'a> {
        image_handles: &'a [String],
        upload_type: &'static str,
        version: &'static str,
    }
    let manifest = Manifest {
        image_handles: handles,
        upload_type: "images",
        version: "1",
    };
    Bytes::from(serde_json::to_vec(&manifest).unwrap_or_default())
}

/// `GET {graph}/me?fields=id,username`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapillaryUser {
    pub id: String,
    pub username: Option<String>,
}

/// A point as Mapillary returns it (GeoJSON `[lon, lat]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LonLat {
    pub lon: f64,
    pub lat: f64,
}

/// An image read back from the Graph API. Every field but `id` is optional: which ones
/// come back depends on the `fields` asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MapillaryImage {
    pub id: String,
    /// Epoch milliseconds.
    pub captured_at_ms: Option<Millis>,
    pub compass_angle: Option<f64>,
    pub geometry: Option<LonLat>,
    pub computed_geometry: Option<LonLat>,
    pub altitude: Option<f64>,
    pub sequence_id: Option<String>,
    pub creator: Option<MapillaryUser>,
    pub is_pano: Option<bool>,
    /// A 256-pixel-wide thumbnail (a signed, expiring address).
    pub thumb_256_url: Option<String>,
}

/// An image node as the Graph API sends it; every field but `id` depends on `fields`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct ImageReply {
    #[serde(deserialize_with = "flex_id")]
    id: String,
    captured_at: Option<Millis>,
    compass_angle: Option<f64>,
    geometry: Option<PointReply>,
    computed_geometry: Option<PointReply>,
    altitude: Option<f64>,
    sequence: Option<SequenceRef>,
    creator: Option<UserReply>,
    is_pano: Option<bool>,
    thumb_256_url: Option<String>,
}

/// GeoJSON `{"type":"Point","coordinates":[lon, lat]}`.
#[derive(Debug, serde::Deserialize)]
struct PointReply {
    coordinates: (f64, f64),
}

/// An image's `sequence`: the key, or `{"id": key}`.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum SequenceRef {
    Key(#[serde(deserialize_with = "flex_id")] String),
    Node {
        #[serde(deserialize_with = "flex_id")]
        id: String,
    },
}

/// `{"id","username"}` (`/me`, an image's `creator`).
#[derive(Debug, serde::Deserialize)]
struct UserReply {
    #[serde(deserialize_with = "flex_id")]
    id: String,
    username: Option<String>,
}

impl From<UserReply> for MapillaryUser {
    fn from(u: UserReply) -> Self {
        MapillaryUser {
            id: u.id,
            username: u.username,
        }
    }
}

impl From<ImageReply> for MapillaryImage {
    fn from(i: ImageReply) -> Self {
        let point = |p: Option<PointReply>| {
            p.map(|p| LonLat {
                lon: p.coordinates.0,
                lat: p.coordinates.1,
            })
        };
        MapillaryImage {
            id: i.id,
            captured_at_ms: i.captured_at,
            compass_angle: i.compass_angle,
            geometry: point(i.geometry),
            computed_geometry: point(i.computed_geometry),
            altitude: i.altitude,
            sequence_id: i.sequence.map(|s| match s {
                SequenceRef::Key(k) | SequenceRef::Node { id: k } => k,
            }),
            creator: i.creator.map(MapillaryUser::from),
            is_pano: i.is_pano,
            thumb_256_url: i.thumb_256_url,
        }
    }
}

/// `{"data":[…]}`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct DataList<T> {
    pub(crate) data: Vec<T>,
}

/// `{"id"}` entries of `/image_ids`.
#[derive(Debug, serde::Deserialize)]
struct IdReply {
    #[serde(deserialize_with = "flex_id")]
    id: String,
}

/// `{"offset":n}` from the upload host.
#[derive(Debug, serde::Deserialize)]
struct OffsetReply {
    offset: u64,
}

/// `{"h":"<handle>"}` from the upload host.
#[derive(Debug, serde::Deserialize)]
struct HandleReply {
    #[serde(deserialize_with = "flex_id")]
    h: String,
}

/// `{"cluster_id":"…"}` from `finish_upload`.
#[derive(Debug, serde::Deserialize)]
struct FinishReply {
    #[serde(deserialize_with = "flex_id")]
    cluster_id: String,
}

/// `GET {graph}/images?bbox=…` (small boxes only).
#[derive(Debug, Clone, PartialEq)]
pub struct BboxQuery {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
    pub start_captured_at_ms: Option<Millis>,
    pub end_captured_at_ms: Option<Millis>,
    pub sequence_id: Option<String>,
    /// Capped at [`MAX_BBOX_LIMIT`].
    pub limit: u32,
}

/// Classifies a failed Mapillary reply, row by row of PROTOCOLS §2.3:
///
/// | Reply | Kind |
/// |---|---|
/// | 429, or any 4xx/5xx with `debug_info.type == "RequestRateLimitedError"` (even `retriable:false`), or a Graph API `error.code` of an app or user rate limit (4, 17, 32, 613) | `Retry`, after JSON `backoff` ms, else `Retry-After`, else 10 s |
/// | 412 with `retriable:true` (or type `OffsetInvalidError`) | `OffsetInvalid` |
/// | 401, 403, a 4xx with type `NotAuthorizedError`, or a Graph API 4xx with `error.code` 190 (invalid or expired OAuth token) or 102 (session) | `Auth` |
/// | 5xx | `Retry` after `Retry-After` if present |
/// | other 4xx with `debug_info.retriable:true`, or the Graph API's `error.is_transient:true` | `Retry` |
/// | anything else (a non-JSON 4xx included) | `Permanent`, with the body when opaque |
///
/// `debug_info` is read at the top level (upload host) or inside `error` (Graph), and the
/// message from `error.message` or `debug_info.message`.
pub fn classify_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: Millis,
) -> ProviderError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let error = json
        .as_ref()
        .and_then(|j| j.get("error"))
        .filter(|e| e.is_object());
    let debug = json
        .as_ref()
        .and_then(|j| j.get("debug_info"))
        .or_else(|| error.and_then(|e| e.get("debug_info")))
        .filter(|d| d.is_object());
    let error_type = debug
        .and_then(|d| str_field(d.get("type")))
        .or_else(|| error.and_then(|e| str_field(e.get("type"))));
    let message = error
        .and_then(|e| str_field(e.get("message")))
        .or_else(|| debug.and_then(|d| str_field(d.get("message"))))
        .or_else(|| json.as_ref().and_then(|j| str_field(j.get("error"))));
    let retriable = debug
        .and_then(|d| flex_bool(d.get("retriable")))
        .or_else(|| error.and_then(|e| flex_bool(e.get("is_transient"))));
    // The Graph API's own codes (Facebook's): 190 and 102 are a token or session that is
    // no longer valid, whatever the HTTP status; 4, 17, 32 and 613 are rate limits.
    let graph_code = error.and_then(|e| flex_u64(e.get("code")));
    let graph_says = |codes: &[u64]| graph_code.is_some_and(|c| codes.contains(&c));
    let backoff_ms = json
        .as_ref()
        .and_then(|j| flex_u64(j.get("backoff")))
        .or_else(|| debug.and_then(|d| flex_u64(d.get("backoff"))))
        .or_else(|| error.and_then(|e| flex_u64(e.get("backoff"))));
    let retry_after = retry_after_header(headers, now_ms);
    let code = status.as_u16();
    let is_type = |t: &str| error_type.as_deref() == Some(t);

    let kind = if code == 429
        || (code >= 400 && is_type("RequestRateLimitedError"))
        || (status.is_client_error() && graph_says(&[4, 17, 32, 613]))
    {
        ErrorKind::Retry {
            after: backoff_ms
                .map(Duration::from_millis)
                .or(retry_after)
                .or(Some(DEFAULT_RATE_LIMIT_DELAY)),
        }
    } else if code == 412 && (retriable == Some(true) || is_type("OffsetInvalidError")) {
        ErrorKind::OffsetInvalid
    } else if code == 401
        || code == 403
        || (status.is_client_error() && (is_type("NotAuthorizedError") || graph_says(&[190, 102])))
    {
        ErrorKind::Auth
    } else if status.is_server_error() {
        ErrorKind::Retry { after: retry_after }
    } else if status.is_client_error() && retriable == Some(true) {
        ErrorKind::Retry { after: None }
    } else {
        ErrorKind::Permanent
    };

    let (message, body) = match message {
        Some(message) => (message, None),
        None if json.is_some() => ("the request failed".to_string(), body_text(body)),
        None => ("unexpected reply".to_string(), body_text(body)),
    };
    let message = if kind == ErrorKind::Auth && matches!(code, 401 | 403) {
        format!("{message} (the token is invalid or lacks the UPLOAD permission)")
    } else {
        message
    };
    ProviderError::http(SERVICE, kind, code, error_type, message, body)
}

/// A Mapillary account's API client.
#[derive(Clone)]
pub struct MapillaryClient {
    http: reqwest::Client,
    graph_url: Url,
    upload_url: Url,
    token: Secret<String>,
    clock: SharedClock,
}

impl std::fmt::Debug for MapillaryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapillaryClient")
            .field("graph_url", &self.graph_url.as_str())
            .field("upload_url", &self.upload_url.as_str())
            .finish_non_exhaustive()
    }
}

impl MapillaryClient {
    pub fn new(http: reqwest::Client, config: &MapillaryConfig, token: Secret<String>) -> Self {
        Self::with_urls(
            http,
            config.graph_url.clone(),
            config.upload_url.clone(),
            token,
        )
    }

    pub fn with_urls(
        http: reqwest::Client,
        graph_url: Url,
        upload_url: Url,
        token: Secret<String>,
    ) -> Self {
        MapillaryClient {
            http,
            graph_url,
            upload_url,
            token,
            clock: Arc::new(SystemClock),
        }
    }

    /// The clock used to read `Retry-After` dates.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn auth_header(&self) -> Result<HeaderValue, ProviderError> {
        let mut value =
            HeaderValue::from_str(&format!("OAuth {}", self.token.expose())).map_err(|_| {
                ProviderError::auth(SERVICE, "the stored token is not a valid header value")
            })?;
        value.set_sensitive(true);
        Ok(value)
    }

    pub(crate) fn graph(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        http::endpoint(SERVICE, &self.graph_url, segments)
    }

    fn upload(&self, key: &str) -> Result<Url, ProviderError> {
        http::endpoint(SERVICE, &self.upload_url, &[key])
    }

    /// Sends, reads, and turns anything but a 2xx into a classified error.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Reply, ProviderError> {
        let reply = http::send(SERVICE, request.header(AUTHORIZATION, self.auth_header()?)).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(classify_error(
                reply.status,
                &reply.headers,
                &reply.body,
                self.clock.now_ms(),
            ))
        }
    }

    /// `GET`, then the reply decoded as `T` (an error names `call` and the field).
    pub(crate) async fn get_typed<T: serde::de::DeserializeOwned>(
        &self,
        call: &str,
        url: Url,
        query: &[(&str, String)],
    ) -> Result<T, ProviderError> {
        let reply = self.call(self.http.get(url).query(query)).await?;
        decode(call, reply.status.as_u16(), &reply.body)
    }

    /// Checks the token: `GET {graph}/me?fields=id,username`.
    pub async fn me(&self) -> Result<MapillaryUser, ProviderError> {
        let user: UserReply = self
            .get_typed(
                "me",
                self.graph(&["me"])?,
                &[("fields", "id,username".to_string())],
            )
            .await?;
        Ok(user.into())
    }

    /// `GET {upload}/{key}` → `{"offset":n}`: how many bytes of this session the server
    /// already holds. A reply without `offset` is an error.
    pub async fn get_offset(&self, key: &str) -> Result<u64, ProviderError> {
        let reply: OffsetReply = self.get_typed("offset", self.upload(key)?, &[]).await?;
        Ok(reply.offset)
    }

    /// `POST {upload}/{key}` with `Offset` and `X-Entity-Name`, streaming `data[offset..]`
    /// as a chunked body; returns the handle `h`.
    pub async fn upload_bytes(
        &self,
        key: &str,
        offset: u64,
        data: Bytes,
        progress: Option<Progress>,
    ) -> Result<String, ProviderError> {
        self.upload_source(key, offset, &UploadSource::in_memory(data), progress)
            .await
    }

    /// The same for a source's bytes from `offset` on (a photo's file is read as it is
    /// sent). A file that changed since the key was computed fails the upload with a
    /// permanent error rather than sending other bytes under that key.
    pub async fn upload_source(
        &self,
        key: &str,
        offset: u64,
        source: &UploadSource,
        progress: Option<Progress>,
    ) -> Result<String, ProviderError> {
        if offset > source.len() {
            return Err(ProviderError::invalid(
                SERVICE,
                format!(
                    "the server holds {offset} bytes of {key}, more than the file's {} bytes; the file changed since its key was computed",
                    source.len()
                ),
            ));
        }
        let (stream, watch) = source
            .stream_from(offset)
            .await
            .map_err(|e| e.into_provider(SERVICE))?;
        let result = self
            .upload_stream(key, offset, source.len() - offset, stream, progress)
            .await;
        match watch.problem() {
            Some(problem) => Err(problem.into_provider(SERVICE)),
            None => result,
        }
    }

    /// The same from any byte stream (e.g. a file read with `tokio_util::io::ReaderStream`
    /// after seeking to `offset`). `remaining` sizes the timeout only; the body is sent
    /// chunked, with no `Content-Length`, exactly as mapillary_tools does.
    pub async fn upload_stream<S, E>(
        &self,
        key: &str,
        offset: u64,
        remaining: u64,
        stream: S,
        progress: Option<Progress>,
    ) -> Result<String, ProviderError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        let mut sent = offset;
        let counted = stream.map(move |chunk| {
            if let (Ok(bytes), Some(progress)) = (&chunk, &progress) {
                sent += bytes.len() as u64;
                progress(sent);
            }
            chunk
        });
        let request = self
            .http
            .post(self.upload(key)?)
            .header("Offset", offset.to_string())
            .header("X-Entity-Name", key)
            .timeout(transfer_timeout(remaining))
            .body(reqwest::Body::wrap_stream(counted));
        let reply = self.call(request).await?;
        let handle: HandleReply = decode("upload", reply.status.as_u16(), &reply.body)?;
        Ok(handle.h)
    }

    /// Offset, then the rest of the bytes: the resume step of PROTOCOLS §2.2. A 412 (the
    /// offset moved under us) re-reads the offset and retries at once, a few times.
    pub async fn upload_resumable(
        &self,
        key: &str,
        data: impl Into<UploadSource>,
        progress: Option<Progress>,
    ) -> Result<String, ProviderError> {
        let data = data.into();
        let mut attempt = 0;
        loop {
            let offset = self.get_offset(key).await?;
            if let Some(progress) = &progress {
                progress(offset);
            }
            match self
                .upload_source(key, offset, &data, progress.clone())
                .await
            {
                Err(e) if e.kind() == ErrorKind::OffsetInvalid && attempt < OFFSET_RETRIES => {
                    tracing::info!(key, offset, "offset invalid; re-reading it");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Refreshes the handle of a complete upload before a manifest uses it (handles expire
    /// server-side; mapillary_tools keeps them 2 days, PROTOCOLS §2.6): GET the offset and,
    /// when the server holds all `size` bytes, POST an empty body for a current handle.
    /// `None` when it does not hold them all: the bytes must be sent again.
    pub async fn refresh_handle(
        &self,
        key: &str,
        size: u64,
    ) -> Result<Option<String>, ProviderError> {
        let offset = self.get_offset(key).await?;
        if offset != size {
            return Ok(None);
        }
        let empty = futures::stream::empty::<Result<Bytes, std::io::Error>>();
        self.upload_stream(key, offset, 0, empty, None)
            .await
            .map(Some)
    }

    /// Uploads a sequence's manifest under `key` (see [`new_manifest_key`]; persist it so a
    /// retry resumes the same session) and returns its handle for
    /// `finish_upload(handle, FileType::BundleManifest)`.
    pub async fn upload_manifest(
        &self,
        key: &str,
        handles: &[String],
    ) -> Result<String, ProviderError> {
        self.upload_resumable(key, manifest_bytes(handles), None)
            .await
    }

    /// `POST {graph}/finish_upload` with `{"file_handle","file_type"[,"organization_id"]}`
    /// → the `cluster_id` (one per sequence for a manifest).
    pub async fn finish_upload(
        &self,
        handle: &str,
        file_type: FileType,
        organization_id: Option<&str>,
    ) -> Result<String, ProviderError> {
        let mut body = json!({ "file_handle": handle, "file_type": file_type.as_str() });
        if let (Some(org), Some(map)) = (organization_id, body.as_object_mut()) {
            map.insert(
                "organization_id".to_string(),
                Value::String(org.to_string()),
            );
        }
        let reply = self
            .call(self.http.post(self.graph(&["finish_upload"])?).json(&body))
            .await?;
        let finish: FinishReply = decode("finish_upload", reply.status.as_u16(), &reply.body)?;
        Ok(finish.cluster_id)
    }

    /// Images in a small bounding box, optionally within a capture-time window.
    pub async fn images_in_bbox(
        &self,
        query: &BboxQuery,
    ) -> Result<Vec<MapillaryImage>, ProviderError> {
        let mut params = vec![
            (
                "bbox",
                format!(
                    "{},{},{},{}",
                    query.min_lon, query.min_lat, query.max_lon, query.max_lat
                ),
            ),
            ("limit", query.limit.clamp(1, MAX_BBOX_LIMIT).to_string()),
            ("fields", IMAGE_FIELDS.join(",")),
        ];
        for (name, ms) in [
            ("start_captured_at", query.start_captured_at_ms),
            ("end_captured_at", query.end_captured_at_ms),
        ] {
            if let Some(at) = ms.and_then(http::rfc3339_utc) {
                params.push((name, at));
            }
        }
        if let Some(sequence) = &query.sequence_id {
            params.push(("sequence_id", sequence.clone()));
        }
        let list: DataList<ImageReply> = self
            .get_typed("images", self.graph(&["images"])?, &params)
            .await?;
        Ok(list.data.into_iter().map(MapillaryImage::from).collect())
    }

    /// `GET {graph}/image_ids?sequence_id=` → the ids of a sequence's images, in order.
    pub async fn image_ids(&self, sequence_id: &str) -> Result<Vec<String>, ProviderError> {
        let list: DataList<IdReply> = self
            .get_typed(
                "image_ids",
                self.graph(&["image_ids"])?,
                &[("sequence_id", sequence_id.to_string())],
            )
            .await?;
        Ok(list.data.into_iter().map(|i| i.id).collect())
    }

    /// `GET {graph}/{id}?fields=…` (defaults to [`IMAGE_FIELDS`] when `fields` is empty).
    pub async fn image(&self, id: &str, fields: &[&str]) -> Result<MapillaryImage, ProviderError> {
        let fields = if fields.is_empty() {
            IMAGE_FIELDS
        } else {
            fields
        };
        let image: ImageReply = self
            .get_typed("image", self.graph(&[id])?, &[("fields", fields.join(","))])
            .await?;
        Ok(image.into())
    }

    /// `GET {graph}/images?image_ids=a,b&fields=…` (JOSM's batch read).
    pub async fn images(
        &self,
        ids: &[String],
        fields: &[&str],
    ) -> Result<Vec<MapillaryImage>, ProviderError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let fields = if fields.is_empty() {
            IMAGE_FIELDS
        } else {
            fields
        };
        let list: DataList<ImageReply> = self
            .get_typed(
                "images",
                self.graph(&["images"])?,
                &[("image_ids", ids.join(",")), ("fields", fields.join(","))],
            )
            .await?;
        Ok(list.data.into_iter().map(MapillaryImage::from).collect())
    }
}

#[cfg(test)]
mod typed_replies;
