//! KartaView (formerly OpenStreetCam): the OSM-token exchange, v1 writes (form or
//! multipart, `access_token` field) and v2 reads (`X-AUTH-TOKEN` header) (PROTOCOLS §3).
//!
//! The envelope is read leniently: `apiCode` is a string in v1 and a number in v2, and ids
//! come as strings of digits or numbers. A duplicate (`660` in v1, `406` in v2, whatever
//! the HTTP status) means the item is already there, which is success.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mtp_core::Destination;
use mtp_core::clock::{Clock, Millis, SharedClock, SystemClock};
use mtp_core::secret::Secret;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use reqwest::multipart::{Form, Part};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::config::KartaViewConfig;
use crate::decode::{decode_value, flex};
use crate::error::{DEFAULT_RATE_LIMIT_DELAY, ErrorKind, ProviderError, retry_after_header};
use crate::http::{self, Reply, body_text, transfer_timeout};
use crate::source::UploadSource;

const SERVICE: Destination = Destination::Kartaview;

/// upload-scripts' per-request timeout (PROTOCOLS §3.4).
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(100);

/// Sent as `uploadSource` when creating a sequence.
pub const UPLOAD_SOURCE: &str = "mtp-desktop";

/// v2 photo list page size (PROTOCOLS §3.2).
pub const PHOTOS_PER_PAGE: u32 = 500;

/// Guard against a server that always says `hasMoreData`.
const MAX_PHOTO_PAGES: u32 = 1000;

/// `apiCode`s (PROTOCOLS §3.3).
pub mod api_code {
    pub const OK: i64 = 600;
    pub const SAVED_WITH_ERROR: i64 = 602;
    pub const NOT_AUTHENTICATED: i64 = 401;
    pub const DUPLICATE_V1: i64 = 660;
    pub const DUPLICATE_V2: i64 = 406;
    /// An argument out of range; for an id, "no such item" (unknown or removed).
    pub const OUT_OF_RANGE: i64 = 612;
    /// Not allowed, e.g. another user's sequence.
    pub const NOT_ALLOWED: i64 = 618;
    pub const WRONG_STATUS: i64 = 671;
}

/// A reply that is not an error.
#[derive(Debug, Clone, PartialEq)]
pub enum KartaViewReply {
    /// Success; the whole JSON reply.
    Ok(Value),
    /// `apiCode` 660/406: the item already exists. Carries the server's message.
    Duplicate { message: String },
}

/// The envelope's `status` (PROTOCOLS §3.3): `apiCode` is a string in v1 (`"600"`) and a
/// number in v2 (`600`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ApiStatus {
    #[serde(rename = "apiCode", default, deserialize_with = "flex::opt_i64")]
    pub api_code: Option<i64>,
    #[serde(rename = "apiMessage", default, deserialize_with = "flex::opt_text")]
    pub api_message: Option<String>,
    #[serde(rename = "httpCode", default, deserialize_with = "flex::opt_i64")]
    pub http_code: Option<i64>,
    #[serde(rename = "httpMessage", default, deserialize_with = "flex::opt_text")]
    pub http_message: Option<String>,
}

/// Any KartaView reply, read only for its `status` (v1: `{status, osv}`; v2: `{status,
/// result}`). Error replies are often not of this shape at all: then there is no code.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub status: Option<ApiStatus>,
}

fn api_fields(body: &[u8]) -> (Option<i64>, Option<String>) {
    let status = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.status)
        .unwrap_or_default();
    (status.api_code, status.api_message)
}

/// `{"id": …}`, the id a string of digits (v1) or a number.
#[derive(Debug, Clone, Deserialize)]
struct IdOnly {
    #[serde(deserialize_with = "flex::id")]
    id: String,
}

/// `POST /1.0/sequence/` → `{"osv":{"sequence":{"id":"4321",…}}}`.
#[derive(Debug, Clone, Deserialize)]
struct SequenceReply {
    osv: SequenceOsv,
}

#[derive(Debug, Clone, Deserialize)]
struct SequenceOsv {
    sequence: IdOnly,
}

/// `POST /1.0/photo/` → `{"osv":{"photo":{"id":"…",…}}}`.
#[derive(Debug, Clone, Deserialize)]
struct PhotoReply {
    osv: PhotoOsv,
}

#[derive(Debug, Clone, Deserialize)]
struct PhotoOsv {
    photo: IdOnly,
}

/// `client_auth` → `{"osv":{"access_token","id","username","full_name",…}}`.
#[derive(Debug, Clone, Deserialize)]
struct ClientAuthReply {
    osv: ClientAuthOsv,
}

#[derive(Debug, Clone, Deserialize)]
struct ClientAuthOsv {
    access_token: String,
    #[serde(deserialize_with = "flex::id")]
    id: String,
    username: String,
    #[serde(default, deserialize_with = "flex::opt_text")]
    full_name: Option<String>,
}

/// `POST /1.0/user/details/` → `{"osv":{…}}`. v1 sends the totals as strings of digits
/// (`"totalPhotos":"1234"`, `"totalDistance":"56.78"`) and the ranks as numbers; either is
/// read.
#[derive(Debug, Clone, Deserialize)]
struct UserDetailsReply {
    osv: UserDetailsOsv,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserDetailsOsv {
    #[serde(default, deserialize_with = "flex::opt_id")]
    id: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    username: Option<String>,
    #[serde(rename = "full_name", default, deserialize_with = "flex::opt_text")]
    full_name: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_f64")]
    total_distance: Option<f64>,
    #[serde(default, deserialize_with = "flex::opt_u64")]
    total_photos: Option<u64>,
    #[serde(default, deserialize_with = "flex::opt_u64")]
    total_tracks: Option<u64>,
    #[serde(default, deserialize_with = "flex::opt_u64")]
    overall_rank: Option<u64>,
    #[serde(default, deserialize_with = "flex::opt_u64")]
    weekly_rank: Option<u64>,
    #[serde(default, deserialize_with = "flex::opt_f64")]
    obd_distance: Option<f64>,
}

/// A KartaView account's totals, as its profile page shows them (PROTOCOLS §6). A field the
/// reply left out stays `None`: it is not known, which is not the same as zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KartaViewUserStats {
    pub id: Option<String>,
    pub username: String,
    pub full_name: Option<String>,
    pub photos: Option<u64>,
    /// `totalDistance`, in km.
    pub km: Option<f64>,
    /// `totalTracks`: the account's sequences.
    pub tracks: Option<u64>,
    /// `None` when unranked: KartaView answers 0 for an account outside the leaderboard.
    pub overall_rank: Option<u64>,
    /// As `overall_rank`, over the last week.
    pub weekly_rank: Option<u64>,
    /// `obdDistance`, in km: distance recorded with an OBD dongle.
    pub obd_km: Option<f64>,
}

impl UserDetailsOsv {
    /// `asked`: the username the request named, for a reply that leaves it out.
    fn into_stats(self, asked: &str) -> KartaViewUserStats {
        let rank = |r: Option<u64>| r.filter(|r| *r > 0);
        KartaViewUserStats {
            id: self.id,
            username: self.username.unwrap_or_else(|| asked.to_string()),
            full_name: self.full_name,
            photos: self.total_photos,
            km: self.total_distance,
            tracks: self.total_tracks,
            overall_rank: rank(self.overall_rank),
            weekly_rank: rank(self.weekly_rank),
            obd_km: self.obd_distance,
        }
    }
}

/// A v2 reply: `{"status":{…},"result":{"data":…,"hasMoreData":…}}`.
/// One of the user's own sequences, as `/my-list` lists them.
#[derive(Debug, Clone, Deserialize)]
pub struct OwnSequence {
    #[serde(deserialize_with = "flex::id")]
    pub id: String,
    #[serde(rename = "uploadSource", default, deserialize_with = "flex::opt_text")]
    pub upload_source: Option<String>,
    /// How many photos it holds.
    #[serde(rename = "photo_no", default, deserialize_with = "flex::opt_u64")]
    pub photo_count: Option<u64>,
    #[serde(rename = "dateAdded", default, deserialize_with = "flex::opt_text")]
    pub date_added: Option<String>,
}

#[derive(Deserialize)]
struct MyList {
    #[serde(rename = "currentPageItems", default)]
    current_page_items: Vec<OwnSequence>,
    /// `[n]`: how many sequences the account has in all.
    #[serde(rename = "totalFilteredItems", default)]
    total_filtered_items: Vec<Option<u64>>,
}

/// One page of `/my-list`.
#[derive(Debug, Clone)]
pub struct MyListPage {
    pub items: Vec<OwnSequence>,
    /// How many sequences the account has in all, when the reply says.
    pub total: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
struct V2Reply<T> {
    result: V2Result<T>,
}

#[derive(Debug, Clone, Deserialize)]
struct V2Result<T> {
    data: T,
    #[serde(
        rename = "hasMoreData",
        default,
        deserialize_with = "flex::bool_or_false"
    )]
    has_more_data: bool,
}

/// Reads any KartaView reply (PROTOCOLS §3.3):
///
/// | Reply | Outcome |
/// |---|---|
/// | `apiCode` 660 or 406, any HTTP status | `Ok(Duplicate)` |
/// | HTTP 401/403, or `apiCode` 401 | `Auth` |
/// | HTTP 429 | `Retry` after `Retry-After`, else 10 s |
/// | HTTP 5xx | `Retry` after `Retry-After` if present |
/// | HTTP 2xx with `apiCode` 600, 602 (saved) or none | `Ok(reply)`; callers check the ids they need |
/// | HTTP 2xx with another `apiCode` (610, 611, 612, 618, 671, 690, …) | `Permanent` with `apiMessage` |
/// | HTTP 2xx that is not JSON | `Permanent`, with the body |
/// | other 4xx | `Permanent` with `apiMessage`, or the full body when opaque |
///
/// A 403 / `apiCode` 618 (not allowed: another user's item) also answers
/// [`ProviderError::is_forbidden`]; the remove calls turn a 612 on the id into
/// [`ProviderError::is_not_found`] (the item is unknown or already removed).
pub fn interpret_reply(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: Millis,
) -> Result<KartaViewReply, ProviderError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let (api, api_message) = api_fields(body);
    let http_code = status.as_u16();
    if matches!(api, Some(api_code::DUPLICATE_V1 | api_code::DUPLICATE_V2)) {
        return Ok(KartaViewReply::Duplicate {
            message: api_message.unwrap_or_else(|| "duplicate entry".to_string()),
        });
    }
    let code = api.map(|c| format!("apiCode {c}"));
    let error = |kind: ErrorKind, fallback: &str| {
        let (message, body) = match (&api_message, &json) {
            (Some(message), _) => (message.clone(), None),
            (None, Some(_)) => (fallback.to_string(), body_text(body)),
            (None, None) => ("unexpected reply".to_string(), body_text(body)),
        };
        ProviderError::http(SERVICE, kind, http_code, code.clone(), message, body)
    };
    if matches!(http_code, 401 | 403) || api == Some(api_code::NOT_AUTHENTICATED) {
        return Err(error(ErrorKind::Auth, "not authenticated"));
    }
    let retry_after = retry_after_header(headers, now_ms);
    if http_code == 429 {
        return Err(error(
            ErrorKind::Retry {
                after: retry_after.or(Some(DEFAULT_RATE_LIMIT_DELAY)),
            },
            "too many requests",
        ));
    }
    if status.is_server_error() {
        return Err(error(
            ErrorKind::Retry { after: retry_after },
            "server error",
        ));
    }
    if status.is_success() {
        return match (&json, api) {
            (None, _) => Err(ProviderError::unexpected_reply(
                SERVICE,
                http_code,
                "the reply is not JSON",
                body,
            )),
            (Some(json), None | Some(api_code::OK | api_code::SAVED_WITH_ERROR)) => {
                if api == Some(api_code::SAVED_WITH_ERROR) {
                    tracing::warn!(message = ?api_message, "KartaView saved the item with an error (602)");
                }
                Ok(KartaViewReply::Ok(json.clone()))
            }
            (Some(_), Some(_)) => Err(error(ErrorKind::Permanent, "the request failed")),
        };
    }
    Err(error(ErrorKind::Permanent, "the request failed"))
}

/// What `client_auth` returns: the KartaView token and who it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct KartaViewAccount {
    pub access_token: Secret<String>,
    pub id: String,
    pub username: String,
    pub full_name: Option<String>,
}

/// `POST {api}/auth/openstreetmap/client_auth` with form `request_token=<OSM access
/// token>&secret_token=<OSM app client secret>` → `{"osv":{"access_token","id",
/// "username","full_name"}}`. A missing field is a failure, shown with the full reply
/// (whether KartaView accepts tokens from our OSM app is unverified, PROTOCOLS §3.1 ⚠️).
pub async fn client_auth(
    http: &reqwest::Client,
    api_url: &Url,
    osm_access_token: &Secret<String>,
    osm_client_secret: &Secret<String>,
    clock: &dyn Clock,
) -> Result<KartaViewAccount, ProviderError> {
    let url = http::endpoint(SERVICE, api_url, &["auth", "openstreetmap", "client_auth"])?;
    let request = http.post(url).form(&[
        ("request_token", osm_access_token.expose().as_str()),
        ("secret_token", osm_client_secret.expose().as_str()),
    ]);
    let reply = http::send(SERVICE, request).await?;
    let value = match interpret_reply(reply.status, &reply.headers, &reply.body, clock.now_ms())? {
        KartaViewReply::Ok(value) => value,
        KartaViewReply::Duplicate { message } => {
            return Err(ProviderError::unexpected_reply(
                SERVICE,
                reply.status.as_u16(),
                format!("the login was answered as a duplicate: {message}"),
                &reply.body,
            ));
        }
    };
    let status = reply.status.as_u16();
    let refused = |why: &str| {
        ProviderError::unexpected_reply(
            SERVICE,
            status,
            format!("KartaView did not accept the OpenStreetMap login ({why})"),
            &reply.body,
        )
    };
    let osv = decode_value::<ClientAuthReply>(
        SERVICE,
        "POST /auth/openstreetmap/client_auth",
        status,
        &value,
    )
    .map_err(|e| refused(e.message()))?
    .osv;
    if osv.access_token.trim().is_empty() || osv.username.trim().is_empty() {
        return Err(refused("the reply has an empty access_token or username"));
    }
    Ok(KartaViewAccount {
        access_token: Secret::new(osv.access_token.trim().to_string()),
        id: osv.id,
        username: osv.username.trim().to_string(),
        full_name: osv.full_name,
    })
}

/// `POST /1.0/sequence/`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSequence {
    /// Our app id; see [`UPLOAD_SOURCE`].
    pub upload_source: String,
    /// Latitude and longitude of the first photo.
    pub first_latitude: f64,
    pub first_longitude: f64,
    pub platform_name: Option<String>,
    pub device_name: Option<String>,
    /// Optional `track.txt` (PROTOCOLS §3.5), sent as file `metaData`.
    pub track_txt: Option<Bytes>,
}

/// How KartaView should show a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// An ordinary photo: no `projection`/`fieldOfView` fields.
    Flat,
    /// A 360° equirectangular photo: `projection=SPHERE`, `fieldOfView=360`.
    Sphere,
}

/// `POST /1.0/photo/` (multipart).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPhoto {
    pub sequence_id: String,
    /// 0-based and unique in the sequence; from the stored index↔file map, never recomputed.
    pub sequence_index: u32,
    pub latitude: f64,
    pub longitude: f64,
    /// Capture time, epoch ms; sent as UTC `YYYY-MM-DD HH:MM:SS`.
    pub shot_at_ms: Millis,
    /// Compass heading in degrees (the `headers` field).
    pub heading: Option<f64>,
    pub gps_accuracy: Option<f64>,
    pub projection: Projection,
    pub projection_yaw: Option<f64>,
    pub file_name: String,
    /// The photo's bytes (a file on disk is read as it is sent).
    pub source: UploadSource,
}

impl NewPhoto {
    /// The text fields of the multipart upload, in the order they are sent, without
    /// `access_token` (the account's token) and the `photo` file part.
    pub fn form_fields(&self) -> Result<Vec<(&'static str, String)>, ProviderError> {
        let shot_date = format_shot_date(self.shot_at_ms).ok_or_else(|| {
            ProviderError::invalid(
                SERVICE,
                format!("capture time {} ms is out of range", self.shot_at_ms),
            )
        })?;
        let mut fields = vec![
            ("sequenceId", self.sequence_id.clone()),
            ("sequenceIndex", self.sequence_index.to_string()),
            (
                "coordinate",
                format_coordinate(self.latitude, self.longitude),
            ),
            ("shotDate", shot_date),
        ];
        if let Some(heading) = self.heading {
            fields.push(("headers", heading.to_string()));
        }
        if let Some(accuracy) = self.gps_accuracy {
            fields.push(("gpsAccuracy", accuracy.to_string()));
        }
        if self.projection == Projection::Sphere {
            fields.push(("projection", "SPHERE".to_string()));
            fields.push(("fieldOfView", "360".to_string()));
        }
        if let Some(yaw) = self.projection_yaw {
            fields.push(("projectionYaw", yaw.to_string()));
        }
        Ok(fields)
    }
}

/// Result of a photo upload: both mean "the photo is on KartaView".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhotoOutcome {
    Uploaded {
        photo_id: String,
    },
    /// Already uploaded earlier (660/406).
    Duplicate {
        message: String,
    },
}

/// Result of `finished-uploading`: both mean "the sequence is closed".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishOutcome {
    Finished,
    /// `apiCode` 671 (wrong status): the sequence already left `NEW`, i.e. an earlier
    /// finish went through. Treated as success so that finishing is idempotent.
    AlreadyFinished {
        message: String,
    },
}

/// `GET /2.0/sequence/{id}`: the processing state to poll (`result.data`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KartaViewSequence {
    #[serde(default, deserialize_with = "flex::opt_id")]
    pub id: Option<String>,
    /// The v1 state (`NEW`, `UPLOAD_FINISHED`, `PROCESSING_FINISHED`, …), when present.
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub upload_status: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub processing_status: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub image_processing_status: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub metadata_status: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub quality_status: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_u64")]
    pub count_active_photos: Option<u64>,
    /// The whole `result.data` object.
    #[serde(skip)]
    pub raw: Value,
}

/// One photo of `GET /2.0/photo/`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KartaViewPhoto {
    #[serde(deserialize_with = "flex::id")]
    pub id: String,
    #[serde(default, deserialize_with = "flex::opt_u32")]
    pub sequence_index: Option<u32>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub auto_img_processing_status: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub auto_img_processing_result: Option<String>,
    #[serde(skip)]
    pub raw: Value,
}

/// One page of photos.
#[derive(Debug, Clone, PartialEq)]
pub struct KartaViewPhotoPage {
    pub photos: Vec<KartaViewPhoto>,
    pub has_more: bool,
}

/// Whether a photo (a v1 nearby item or a v2 photo) is 360°, from its field of view, else
/// its projection (`SPHERE`); `None` when it says neither.
pub fn pano_flag(photo: &Value) -> Option<bool> {
    let fov = crate::http::flex_f64(photo.get("fieldOfView"))
        .or_else(|| crate::http::flex_f64(photo.get("field_of_view")));
    match (fov, crate::http::str_field(photo.get("projection"))) {
        (Some(f), _) => Some(f >= 360.0),
        (None, Some(p)) => Some(p.eq_ignore_ascii_case("SPHERE")),
        (None, None) => None,
    }
}

fn format_coordinate(latitude: f64, longitude: f64) -> String {
    format!("{latitude},{longitude}")
}

/// UTC `YYYY-MM-DD HH:MM:SS`.
pub fn format_shot_date(ms: Millis) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    at.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .ok()
}

/// A KartaView account's API client.
#[derive(Clone)]
pub struct KartaViewClient {
    http: reqwest::Client,
    api_url: Url,
    token: Secret<String>,
    clock: SharedClock,
}

impl std::fmt::Debug for KartaViewClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KartaViewClient")
            .field("api_url", &self.api_url.as_str())
            .finish_non_exhaustive()
    }
}

impl KartaViewClient {
    pub fn new(http: reqwest::Client, config: &KartaViewConfig, token: Secret<String>) -> Self {
        Self::with_url(http, config.api_url.clone(), token)
    }

    pub fn with_url(http: reqwest::Client, api_url: Url, token: Secret<String>) -> Self {
        KartaViewClient {
            http,
            api_url,
            token,
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn api_url(&self) -> &Url {
        &self.api_url
    }

    pub(crate) fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        http::endpoint(SERVICE, &self.api_url, segments)
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(Reply, KartaViewReply), ProviderError> {
        let reply = http::send(SERVICE, request).await?;
        let outcome = interpret_reply(
            reply.status,
            &reply.headers,
            &reply.body,
            self.clock.now_ms(),
        )?;
        Ok((reply, outcome))
    }

    /// For calls where a duplicate makes no sense: it is an unexpected reply.
    pub(crate) async fn call_ok(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(Reply, Value), ProviderError> {
        match self.call(request).await? {
            (reply, KartaViewReply::Ok(value)) => Ok((reply, value)),
            (reply, KartaViewReply::Duplicate { message }) => Err(ProviderError::unexpected_reply(
                SERVICE,
                reply.status.as_u16(),
                format!("unexpected duplicate reply: {message}"),
                &reply.body,
            )),
        }
    }

    /// Creates a sequence and returns its id (`osv.sequence.id`, a string of digits).
    pub async fn create_sequence(&self, sequence: &NewSequence) -> Result<String, ProviderError> {
        let mut fields = vec![
            ("access_token", self.token.expose().clone()),
            ("uploadSource", sequence.upload_source.clone()),
            (
                "currentCoordinate",
                format_coordinate(sequence.first_latitude, sequence.first_longitude),
            ),
        ];
        if let Some(platform) = &sequence.platform_name {
            fields.push(("platformName", platform.clone()));
        }
        if let Some(device) = &sequence.device_name {
            fields.push(("deviceName", device.clone()));
        }
        let request = self.http.post(self.url(&["1.0", "sequence", ""])?);
        // Plain form unless there is a file to attach, as upload-scripts does.
        let request = match &sequence.track_txt {
            None => request.form(&fields),
            Some(track) => {
                let mut form = Form::new();
                for (name, value) in fields {
                    form = form.text(name, value);
                }
                let part = Part::stream_with_length(
                    reqwest::Body::from(track.clone()),
                    track.len() as u64,
                )
                .file_name("track.txt")
                .mime_str("text/plain")
                .map_err(|e| ProviderError::invalid(SERVICE, e.to_string()))?;
                request.multipart(form.part("metaData", part))
            }
        };
        let (reply, value) = self.call_ok(request).await?;
        let created: SequenceReply = decode_value(
            SERVICE,
            "POST /1.0/sequence/",
            reply.status.as_u16(),
            &value,
        )?;
        Ok(created.osv.sequence.id)
    }

    /// Uploads one photo. Success is HTTP 200 **and** `osv.photo.id`; a duplicate is
    /// success too.
    pub async fn upload_photo(&self, photo: &NewPhoto) -> Result<PhotoOutcome, ProviderError> {
        let mut form = Form::new().text("access_token", self.token.expose().clone());
        for (name, value) in photo.form_fields()? {
            form = form.text(name, value);
        }
        let len = photo.source.len();
        let (stream, watch) = photo
            .source
            .stream_from(0)
            .await
            .map_err(|e| e.into_provider(SERVICE))?;
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
            .file_name(photo.file_name.clone())
            .mime_str("image/jpeg")
            .map_err(|e| ProviderError::invalid(SERVICE, e.to_string()))?;
        let request = self
            .http
            .post(self.url(&["1.0", "photo", ""])?)
            .timeout(transfer_timeout(len).max(UPLOAD_TIMEOUT))
            .multipart(form.part("photo", part));
        let reply = self.call(request).await;
        // A file that changed while it was read says so, rather than the broken request.
        if let Some(problem) = watch.problem() {
            return Err(problem.into_provider(SERVICE));
        }
        match reply? {
            (_, KartaViewReply::Duplicate { message }) => Ok(PhotoOutcome::Duplicate { message }),
            (reply, KartaViewReply::Ok(value)) => {
                let sent: PhotoReply =
                    decode_value(SERVICE, "POST /1.0/photo/", reply.status.as_u16(), &value)?;
                if reply.status != StatusCode::OK {
                    return Err(ProviderError::unexpected_reply(
                        SERVICE,
                        reply.status.as_u16(),
                        "the photo upload was answered without HTTP 200",
                        &reply.body,
                    ));
                }
                Ok(PhotoOutcome::Uploaded {
                    photo_id: sent.osv.photo.id,
                })
            }
        }
    }

    /// `POST /1.0/sequence/finished-uploading/`: `NEW` → `UPLOAD_FINISHED`. Idempotent:
    /// a 671 (already past `NEW`) counts as done.
    pub async fn finish_sequence(&self, sequence_id: &str) -> Result<FinishOutcome, ProviderError> {
        let request = self
            .http
            .post(self.url(&["1.0", "sequence", "finished-uploading", ""])?)
            .form(&[
                ("access_token", self.token.expose().as_str()),
                ("sequenceId", sequence_id),
            ]);
        match self.call_ok(request).await {
            Ok(_) => Ok(FinishOutcome::Finished),
            Err(e)
                if e.kind() == ErrorKind::Permanent
                    && e.code() == Some(&format!("apiCode {}", api_code::WRONG_STATUS)) =>
            {
                Ok(FinishOutcome::AlreadyFinished {
                    message: e.message().to_string(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /1.0/sequence/remove/` with `sequenceId`: removes a sequence and its photos
    /// (PROTOCOLS §6). Success is `apiCode` 600. Errors to tell apart:
    /// [`ProviderError::is_not_found`] (unknown or already removed: done),
    /// [`ProviderError::is_forbidden`] (another user's sequence), and retryable kinds
    /// (5xx, 429, network).
    pub async fn remove_sequence(&self, sequence_id: &str) -> Result<(), ProviderError> {
        self.remove(
            &["1.0", "sequence", "remove", ""],
            "sequenceId",
            sequence_id,
        )
        .await
    }

    /// `POST /1.0/photo/remove/` with `photoId`: removes one photo. Replies as
    /// [`Self::remove_sequence`].
    pub async fn remove_photo(&self, photo_id: &str) -> Result<(), ProviderError> {
        self.remove(&["1.0", "photo", "remove", ""], "photoId", photo_id)
            .await
    }

    async fn remove(&self, path: &[&str], field: &str, id: &str) -> Result<(), ProviderError> {
        let request = self
            .http
            .post(self.url(path)?)
            .form(&[("access_token", self.token.expose().as_str()), (field, id)]);
        let out_of_range = format!("apiCode {}", api_code::OUT_OF_RANGE);
        let (reply, _) = match self.call_ok(request).await {
            Ok(ok) => ok,
            Err(e) if e.code() == Some(out_of_range.as_str()) => return Err(e.into_not_found()),
            Err(e) => return Err(e),
        };
        match api_fields(&reply.body).0 {
            Some(api_code::OK) => Ok(()),
            _ => Err(ProviderError::unexpected_reply(
                SERVICE,
                reply.status.as_u16(),
                format!(
                    "the removal was not confirmed with apiCode {}",
                    api_code::OK
                ),
                &reply.body,
            )),
        }
    }

    /// `POST /my-list`: one page (1-based) of `username`'s own sequences, 100 a page
    /// (upload-scripts' size), and how many there are in all. In which order is not
    /// documented: read every page (as upload-scripts does) to find one.
    pub async fn my_list(&self, username: &str, page: u32) -> Result<MyListPage, ProviderError> {
        let request = self.http.post(self.url(&["my-list"])?).form(&[
            ("access_token", self.token.expose().as_str()),
            ("username", username),
            ("ipp", "100"),
            ("page", &page.to_string()),
        ]);
        let (reply, value) = self.call_ok(request).await?;
        let list: MyList = decode_value(SERVICE, "POST /my-list", reply.status.as_u16(), &value)?;
        Ok(MyListPage {
            total: list.total_filtered_items.first().copied().flatten(),
            items: list.current_page_items,
        })
    }

    /// `POST /1.0/user/details/` with form `username`: the account's totals and ranks
    /// (PROTOCOLS §6). Public: no token is sent. An unknown username is answered 400 with
    /// `apiCode` 690 ("unexpected server error"), which comes back as a `Permanent` error.
    pub async fn user_details(&self, username: &str) -> Result<KartaViewUserStats, ProviderError> {
        let request = self
            .http
            .post(self.url(&["1.0", "user", "details", ""])?)
            .form(&[("username", username)]);
        let (reply, value) = self.call_ok(request).await?;
        let details: UserDetailsReply = decode_value(
            SERVICE,
            "POST /1.0/user/details/",
            reply.status.as_u16(),
            &value,
        )?;
        Ok(details.osv.into_stats(username))
    }

    /// A v2 read, with `X-AUTH-TOKEN` when there is a token (v2 reads are public: a client
    /// without an account sends none, rather than an empty one).
    fn v2_get(&self, url: Url) -> reqwest::RequestBuilder {
        let request = self.http.get(url);
        match self.token.expose().as_str() {
            "" => request,
            token => request.header("X-AUTH-TOKEN", token),
        }
    }

    /// `GET /2.0/sequence/{id}` with `X-AUTH-TOKEN`.
    pub async fn sequence(&self, sequence_id: &str) -> Result<KartaViewSequence, ProviderError> {
        let (reply, value) = self
            .call_ok(self.v2_get(self.url(&["2.0", "sequence", sequence_id])?))
            .await?;
        let decoded: V2Reply<KartaViewSequence> = decode_value(
            SERVICE,
            "GET /2.0/sequence/{id}",
            reply.status.as_u16(),
            &value,
        )?;
        let mut sequence = decoded.result.data;
        sequence.raw = value.pointer("/result/data").cloned().unwrap_or_default();
        if sequence.id.is_none() {
            sequence.id = Some(sequence_id.to_string());
        }
        Ok(sequence)
    }

    /// `GET /2.0/photo/?sequenceId=&page=&itemsPerPage=500`.
    pub async fn photos_page(
        &self,
        sequence_id: &str,
        page: u32,
    ) -> Result<KartaViewPhotoPage, ProviderError> {
        let url = self.url(&["2.0", "photo", ""])?;
        let request = self.v2_get(url).query(&[
            ("sequenceId", sequence_id.to_string()),
            ("page", page.to_string()),
            ("itemsPerPage", PHOTOS_PER_PAGE.to_string()),
        ]);
        let (reply, value) = self.call_ok(request).await?;
        let decoded: V2Reply<Vec<KartaViewPhoto>> =
            decode_value(SERVICE, "GET /2.0/photo/", reply.status.as_u16(), &value)?;
        let raws = value
            .pointer("/result/data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let photos = decoded
            .result
            .data
            .into_iter()
            .zip(raws)
            .map(|(mut photo, raw)| {
                photo.raw = raw;
                photo
            })
            .collect();
        Ok(KartaViewPhotoPage {
            photos,
            has_more: decoded.result.has_more_data,
        })
    }

    /// Whether a sequence's photos are 360°, from its first photo in v2
    /// (`GET /2.0/photo/?sequenceId=&page=1&itemsPerPage=1`): `None` when that photo does
    /// not say (no `fieldOfView` nor `projection`) or the sequence has none.
    pub async fn sequence_is_pano(&self, sequence_id: &str) -> Result<Option<bool>, ProviderError> {
        let url = self.url(&["2.0", "photo", ""])?;
        let request = self.v2_get(url).query(&[
            ("sequenceId", sequence_id),
            ("page", "1"),
            ("itemsPerPage", "1"),
        ]);
        let (_, value) = self.call_ok(request).await?;
        Ok(value.pointer("/result/data/0").and_then(pano_flag))
    }

    /// Every photo of a sequence, following `hasMoreData` from page 1.
    pub async fn all_photos(
        &self,
        sequence_id: &str,
    ) -> Result<Vec<KartaViewPhoto>, ProviderError> {
        let mut photos = Vec::new();
        for page in 1..=MAX_PHOTO_PAGES {
            let KartaViewPhotoPage {
                photos: batch,
                has_more,
            } = self.photos_page(sequence_id, page).await?;
            let empty = batch.is_empty();
            photos.extend(batch);
            if !has_more || empty {
                break;
            }
        }
        Ok(photos)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The sample replies of PROTOCOLS §3 decode into the typed replies; a reply that does
    //! not fit names the call and the field.
    use super::*;
    use serde_json::json;

    fn v(value: Value) -> Value {
        value
    }

    #[test]
    fn v1_envelope_with_string_codes_and_ids() {
        let create = v(json!({
            "status": {"apiCode": "600", "apiMessage": " The request has been processed without incidents", "httpCode": 200, "httpMessage": "Success"},
            "osv": {"sequence": {"id": "4321", "userId": "77", "dateAdded": "2024-05-01 10:00:00", "currentLat": "48.85", "currentLng": "2.35"}}
        }));
        let body = create.to_string();
        assert_eq!(
            api_fields(body.as_bytes()),
            (
                Some(600),
                Some("The request has been processed without incidents".into())
            )
        );
        let r: SequenceReply = decode_value(SERVICE, "POST /1.0/sequence/", 200, &create).unwrap();
        assert_eq!(r.osv.sequence.id, "4321");
        let photo = json!({"status": {"apiCode": "600"}, "osv": {"photo": {"id": 98765, "sequenceIndex": "0"}}});
        let r: PhotoReply = decode_value(SERVICE, "POST /1.0/photo/", 200, &photo).unwrap();
        assert_eq!(r.osv.photo.id, "98765");
        let auth = json!({"osv": {"access_token": "kv-token", "id": "123", "username": "walker", "full_name": "A Walker", "type": "user"}});
        let r: ClientAuthReply = decode_value(SERVICE, "client_auth", 200, &auth).unwrap();
        assert_eq!(
            (r.osv.id.as_str(), r.osv.username.as_str()),
            ("123", "walker")
        );
        let dup = json!({"status": {"apiCode": "660", "apiMessage": " You are not allowed to add a duplicate entry (sequenceIndex)", "httpCode": 400, "httpMessage": "Bad Request"}});
        assert_eq!(api_fields(dup.to_string().as_bytes()).0, Some(660));
    }

    #[test]
    fn v2_envelope_with_number_codes() {
        let seq = json!({
            "status": {"apiCode": 600, "apiMessage": "The request has been processed without incidents", "httpCode": 200, "httpMessage": "Success"},
            "result": {"data": {"id": 4321, "status": "PROCESSING_FINISHED", "uploadStatus": "FINISHED", "processingStatus": "FINISHED", "imageProcessingStatus": "FINISHED", "metadataStatus": "FINISHED", "qualityStatus": "FINISHED", "countActivePhotos": "3"}}
        });
        assert_eq!(api_fields(seq.to_string().as_bytes()).0, Some(600));
        let r: V2Reply<KartaViewSequence> =
            decode_value(SERVICE, "GET /2.0/sequence/{id}", 200, &seq).unwrap();
        let d = r.result.data;
        assert_eq!(d.id.as_deref(), Some("4321"));
        assert_eq!(d.status.as_deref(), Some("PROCESSING_FINISHED"));
        assert_eq!(d.processing_status.as_deref(), Some("FINISHED"));
        assert_eq!(d.count_active_photos, Some(3));
        let photos = json!({"status": {"apiCode": 600}, "result": {"data": [
            {"id": "1", "sequenceIndex": "0", "autoImgProcessingStatus": "FINISHED", "autoImgProcessingResult": "BLURRED"},
            {"id": 2, "sequenceIndex": 1}
        ], "hasMoreData": false}});
        let r: V2Reply<Vec<KartaViewPhoto>> =
            decode_value(SERVICE, "GET /2.0/photo/", 200, &photos).unwrap();
        assert_eq!(r.result.data.len(), 2);
        assert_eq!(r.result.data[1].id, "2");
        assert_eq!(r.result.data[0].sequence_index, Some(0));
        assert!(!r.result.has_more_data);
    }

    #[test]
    fn user_details_reads_string_numbers_and_unranked_zeros() {
        let v1 = json!({
            "status": {"apiCode": "600", "apiMessage": " The request has been processed without incidents", "httpCode": 200, "httpMessage": "Success"},
            "osv": {"id": "7000001", "username": "walker", "full_name": "A Walker",
                    "totalDistance": "12.345", "totalPhotos": "1234", "totalTracks": "7",
                    "overallRank": 42, "weeklyRank": 0, "obdDistance": 0}
        });
        let r: UserDetailsReply =
            decode_value(SERVICE, "POST /1.0/user/details/", 200, &v1).unwrap();
        let stats = r.osv.into_stats("walker");
        assert_eq!(stats.id.as_deref(), Some("7000001"));
        assert_eq!(stats.photos, Some(1234));
        assert_eq!(stats.km, Some(12.345));
        assert_eq!(stats.tracks, Some(7));
        assert_eq!(stats.overall_rank, Some(42));
        assert_eq!(stats.weekly_rank, None);
        assert_eq!(stats.obd_km, Some(0.0));
        // Numbers as numbers (v2 style), and fields left out: unknown, not zero.
        let sparse = json!({"osv": {"totalPhotos": 5, "totalDistance": 1.5, "overallRank": "3"}});
        let r: UserDetailsReply =
            decode_value(SERVICE, "POST /1.0/user/details/", 200, &sparse).unwrap();
        let stats = r.osv.into_stats("asked");
        assert_eq!(stats.username, "asked");
        assert_eq!(
            (stats.photos, stats.km, stats.tracks),
            (Some(5), Some(1.5), None)
        );
        assert_eq!(stats.overall_rank, Some(3));
        let bad = json!({"osv": {"totalDistance": "far"}});
        let e = decode_value::<UserDetailsReply>(SERVICE, "POST /1.0/user/details/", 200, &bad)
            .unwrap_err();
        assert!(
            e.message().contains("at `osv.totalDistance`"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn misfits_name_call_and_field() {
        let no_id = json!({"status": {"apiCode": "600"}, "osv": {"sequence": {"name": "x"}}});
        let e =
            decode_value::<SequenceReply>(SERVICE, "POST /1.0/sequence/", 200, &no_id).unwrap_err();
        assert_eq!(
            e.message(),
            "the reply to POST /1.0/sequence/ does not fit at `osv.sequence`: missing field `id`"
        );
        assert_eq!(e.service(), Destination::Kartaview);
        let bad = json!({"result": {"data": [{"id": null}]}});
        let e = decode_value::<V2Reply<Vec<KartaViewPhoto>>>(SERVICE, "GET /2.0/photo/", 200, &bad)
            .unwrap_err();
        assert!(
            e.message().contains("at `result.data[0].id`"),
            "{}",
            e.message()
        );
    }
}
