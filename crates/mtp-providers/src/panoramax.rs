//! Panoramax (GeoVisio 2.15): upload sets, one multipart POST per file, completion and
//! read-back (PROTOCOLS §4). Paths live under `{instance}/api`.
//!
//! A 409 on a file means the exact bytes are already on the instance (in this set, or in
//! another one): the photo is there, so it is success. The one 409 that is not is another
//! picture under the same file name in the set: an error.

use std::sync::Arc;

use mtp_core::Destination;
use mtp_core::clock::{Millis, SharedClock, SystemClock};
use mtp_core::secret::Secret;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::multipart::{Form, Part};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::config::PanoramaxConfig;
use crate::decode::{decode, decode_value, flex};
use crate::error::{DEFAULT_RATE_LIMIT_DELAY, ErrorKind, ProviderError, retry_after_header};
use crate::http::{self, Reply, body_text, rfc3339_utc, transfer_timeout};
use crate::source::UploadSource;

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
///
/// For edits and deletes, [`ProviderError::is_not_found`] (404: unknown or already
/// deleted) and [`ProviderError::is_forbidden`] (403: not the owner) say which.
pub fn classify_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: Millis,
) -> ProviderError {
    let parsed = serde_json::from_slice::<ErrorReply>(body).ok();
    let is_json = serde_json::from_slice::<Value>(body).is_ok();
    let details = parsed
        .as_ref()
        .and_then(|p| p.details.clone())
        .unwrap_or_default();
    let code = details.error.clone().filter(|c| !c.contains(' '));
    let mut message = parsed.and_then(|p| p.message);
    let about_the_token = refuses_the_token(message.as_deref());
    let read_only = message
        .as_deref()
        .is_some_and(|m| m.starts_with("The instance is read only"));
    // A free-text `details.error` is the most precise explanation GeoVisio gives.
    if let Some(detail) = details.error {
        message = Some(match message {
            Some(m) if !m.contains(&detail) => format!("{m}: {detail}"),
            Some(m) => m,
            None => detail,
        });
    }
    if let Some(missing) = details.missing_fields.filter(|m| !m.is_empty()) {
        message = Some(format!(
            "{} (missing: {missing})",
            message.unwrap_or_else(|| "invalid metadata".to_string()),
        ));
    }
    let retry_after = retry_after_header(headers, now_ms);
    let kind = match status.as_u16() {
        // GeoVisio answers 401 for a maintenance window too, 401 for terms of service
        // not accepted yet (with the page to accept them), and 403 to an account that does
        // not own what it writes to: signing in again mends none of these.
        401 | 403 if read_only => ErrorKind::Retry {
            after: retry_after.or(Some(READ_ONLY_RETRY)),
        },
        401 | 403 if details.validation_page.is_some() => ErrorKind::Permanent,
        401 | 403 if about_the_token => ErrorKind::Auth,
        401 | 403 => ErrorKind::Permanent,
        429 => ErrorKind::Retry {
            after: retry_after.or(Some(DEFAULT_RATE_LIMIT_DELAY)),
        },
        500..=599 => ErrorKind::Retry { after: retry_after },
        _ => ErrorKind::Permanent,
    };
    let (message, body) = match message {
        Some(message) => (message, None),
        None if is_json => ("the request failed".to_string(), body_text(body)),
        None => ("unexpected reply".to_string(), body_text(body)),
    };
    ProviderError::http(SERVICE, kind, status.as_u16(), code, message, body)
}

/// Whether a 401/403's message is GeoVisio's refusal of the token itself (or of its
/// absence): "Token not valid" (its reason in `details.error`), "Authentication is
/// mandatory". A reply without a message (a proxy's page) is taken as one too.
fn refuses_the_token(message: Option<&str>) -> bool {
    match message {
        None => true,
        Some(m) => {
            let m = m.trim();
            m.is_empty()
                || m.eq_ignore_ascii_case("Token not valid")
                || m.eq_ignore_ascii_case("Authentication is mandatory")
        }
    }
}

/// How long a write refused by a read-only instance (a migration) waits before it is tried
/// again, when the reply does not say.
pub const READ_ONLY_RETRY: std::time::Duration = std::time::Duration::from_secs(600);

/// GeoVisio's error body: `{"message","status_code","details":{"error","missing_fields"}}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorReply {
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_i64")]
    pub status_code: Option<i64>,
    #[serde(default, deserialize_with = "opt_details")]
    pub details: Option<ErrorDetails>,
}

/// `details` is an object, or (for parameters GeoVisio could not parse) a list of
/// `{"fields":[…],"error":"…"}`, read as one error: "fields: error; …".
fn opt_details<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ErrorDetails>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(entries) => {
            let said: Vec<String> = entries
                .iter()
                .map(|e| {
                    let fields = e
                        .get("fields")
                        .and_then(Value::as_array)
                        .map(|f| {
                            f.iter()
                                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .filter(|f| !f.is_empty());
                    let error = e
                        .get("error")
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                        .unwrap_or_else(|| e.to_string());
                    match fields {
                        Some(f) => format!("{f}: {error}"),
                        None => error,
                    }
                })
                .collect();
            (!said.is_empty()).then(|| ErrorDetails {
                error: Some(said.join("; ")),
                ..ErrorDetails::default()
            })
        }
        Value::Null => None,
        other => serde_json::from_value(other).ok(),
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorDetails {
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub error: Option<String>,
    /// A list of field names, joined with ", ".
    #[serde(default, deserialize_with = "opt_text_list")]
    pub missing_fields: Option<String>,
    /// Where the terms of service are accepted (a 401 to an account that has not yet).
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub validation_page: Option<String>,
}

fn opt_text_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => Some(
            items
                .iter()
                .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Value::Null => None,
        other => Some(
            other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string),
        ),
    })
}

/// `GET /api/users/me`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PanoramaxUser {
    #[serde(deserialize_with = "flex::id")]
    pub id: String,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub name: Option<String>,
}

/// `GET /api/configuration` as sent: `{"auth":{"enabled"},"license":{"id","url"},…}`.
#[derive(Debug, Clone, Default, Deserialize)]
struct ConfigurationReply {
    #[serde(default)]
    auth: Option<AuthSection>,
    #[serde(default)]
    license: Option<LicenseSection>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct AuthSection {
    #[serde(default, deserialize_with = "flex::bool_or_false")]
    enabled: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct LicenseSection {
    #[serde(default, deserialize_with = "flex::opt_text")]
    id: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    url: Option<String>,
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

/// `PATCH /api/collections/{id}` body (PROTOCOLS §6): only the fields set are sent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CollectionPatch {
    /// The sequence's title (GeoVisio allows at most 250 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Who may see the sequence (GeoVisio 2.11+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Shown or hidden, for instances older than 2.11 (no `visibility` there). Sent as the
    /// string `"true"` or `"false"`: GeoVisio refuses a JSON boolean there.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "visible_as_text"
    )]
    pub visible: Option<bool>,
}

fn visible_as_text<S: serde::Serializer>(visible: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
    match visible {
        Some(true) => s.serialize_str("true"),
        Some(false) => s.serialize_str("false"),
        None => s.serialize_none(),
    }
}

/// `items_status` of an upload set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct ItemsStatus {
    #[serde(default, deserialize_with = "flex::u64_or_zero")]
    pub prepared: u64,
    #[serde(default, deserialize_with = "flex::u64_or_zero")]
    pub preparing: u64,
    #[serde(default, deserialize_with = "flex::u64_or_zero")]
    pub broken: u64,
    #[serde(default, deserialize_with = "flex::u64_or_zero")]
    pub rejected: u64,
    #[serde(default, deserialize_with = "flex::u64_or_zero")]
    pub not_processed: u64,
}

/// An upload set's state: `completed` → `dispatched` → `ready`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UploadSet {
    #[serde(deserialize_with = "flex::id")]
    pub id: String,
    #[serde(default, deserialize_with = "flex::bool_or_false")]
    pub completed: bool,
    #[serde(default, deserialize_with = "flex::bool_or_false")]
    pub dispatched: bool,
    #[serde(default, deserialize_with = "flex::bool_or_false")]
    pub ready: bool,
    #[serde(default, deserialize_with = "flex::opt_u64")]
    pub nb_items: Option<u64>,
    /// Ids of the collections (sequences) the set was dispatched into (GeoVisio sends
    /// objects with an `id`; a bare id is accepted too).
    #[serde(default, deserialize_with = "collection_ids")]
    pub associated_collections: Vec<String>,
    #[serde(default)]
    pub items_status: Option<ItemsStatus>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub title: Option<String>,
    #[serde(skip)]
    pub raw: Value,
}

/// One entry of `associated_collections`.
#[derive(Deserialize)]
#[serde(untagged)]
enum CollectionRef {
    Object {
        #[serde(deserialize_with = "flex::id")]
        id: String,
    },
    Bare(#[serde(deserialize_with = "flex::id")] String),
}

fn collection_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list: Option<Vec<CollectionRef>> = Option::deserialize(d)?;
    Ok(list
        .unwrap_or_default()
        .into_iter()
        .map(|c| match c {
            CollectionRef::Object { id } | CollectionRef::Bare(id) => id,
        })
        .collect())
}

/// A STAC collection (`GET /api/collections/{id}`): one Panoramax sequence.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Collection {
    #[serde(deserialize_with = "flex::id")]
    pub id: String,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub title: Option<String>,
    /// `waiting-for-process` → `preparing` → `ready`, or `hidden`/`broken`/`deleted`.
    #[serde(
        rename = "geovisio:status",
        default,
        deserialize_with = "flex::opt_text"
    )]
    pub status: Option<String>,
    #[serde(rename = "stats:items", default)]
    pub items: Option<CollectionItemStats>,
    #[serde(rename = "geovisio:length_km", default, deserialize_with = "opt_f64")]
    pub length_km: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct CollectionItemStats {
    #[serde(default, deserialize_with = "flex::u64_or_zero")]
    pub count: u64,
}

/// `GET /api/collections/{id}/items`: a GeoJSON FeatureCollection of pictures.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CollectionItems {
    pub features: Vec<CollectionItem>,
}

/// One picture of a collection (only what we use).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CollectionItem {
    #[serde(deserialize_with = "flex::id")]
    pub id: String,
    #[serde(default, deserialize_with = "flex::opt_id")]
    pub collection: Option<String>,
    #[serde(default)]
    pub properties: ItemProperties,
}

/// What we read of a picture's `properties`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ItemProperties {
    /// `ready`, `preparing`, `broken`… (PROTOCOLS §4.1). GeoVisio 2.15.1 puts a picture
    /// whose preparation failed into its sequence all the same, listed to its owner only.
    #[serde(default, rename = "geovisio:status")]
    pub status: Option<String>,
}

impl CollectionItem {
    /// Its preparation failed for good: it is in the sequence, but not on the map.
    pub fn is_broken(&self) -> bool {
        self.properties.status.as_deref() == Some("broken")
    }
}

fn opt_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => Ok(n.as_f64()),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected a number, found {s:?}"))),
        other => Err(D::Error::custom(format!(
            "expected a number, found {other}"
        ))),
    }
}

/// The largest `limit` GeoVisio accepts on a list of collections (its default is 100).
pub const COLLECTIONS_PAGE_MAX: u32 = 1000;

/// Guard against `next` links that never end.
const MAX_COLLECTION_PAGES: u32 = 1000;

/// An account's totals on a Panoramax instance: the sums over its sequences (GeoVisio has
/// no stats endpoint, PROTOCOLS §6).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PanoramaxAccountStats {
    /// Sum of the sequences' `stats:items.count`.
    pub photos: u64,
    /// Sum of the sequences' `geovisio:length_km`.
    pub km: f64,
    pub sequences: u64,
    /// Sequences listed without their photo count or length (not processed yet): what
    /// they hold is missing from `photos` / `km`.
    pub incomplete: u64,
    /// Pages read.
    pub pages: u32,
}

/// `GET /api/users/{id|me}/collection`: a STAC collection whose `links` hold the user's
/// sequences (`rel=child`, with their stats) and the paging (`rel=next`).
#[derive(Debug, Deserialize)]
struct UserCollectionPage {
    #[serde(default)]
    links: Vec<StacLink>,
}

#[derive(Debug, Deserialize)]
struct StacLink {
    #[serde(default, deserialize_with = "flex::opt_text")]
    rel: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    href: Option<String>,
    #[serde(rename = "stats:items", default)]
    items: Option<LinkItemStats>,
    #[serde(rename = "geovisio:length_km", default, deserialize_with = "opt_f64")]
    length_km: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct LinkItemStats {
    #[serde(default, deserialize_with = "flex::opt_u64")]
    count: Option<u64>,
}

/// GeoVisio's 404 for an account without any sequence ("No data loaded for user <id>",
/// asked for in English): the true answer there is zero. Any other 404 (an instance
/// without the route, say) stays an error.
fn is_no_data(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::NOT_FOUND
        && serde_json::from_slice::<ErrorReply>(body)
            .ok()
            .and_then(|e| e.message)
            .is_some_and(|m| m.starts_with("No data loaded"))
}

impl UploadSet {
    fn decode(call: &str, value: &Value) -> Result<Self, ProviderError> {
        let mut set: UploadSet = decode_value(SERVICE, call, 200, value)?;
        set.raw = value.clone();
        Ok(set)
    }
}

/// One file for `POST /api/upload_sets/{id}/files`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewFile {
    /// Sent as the part's file name; `.jpg` is appended unless it ends in `.jpg`/`.jpeg`
    /// (GeoVisio checks the extension).
    pub file_name: String,
    /// The photo's bytes (a file on disk is read as it is sent).
    pub source: UploadSource,
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

impl NewFile {
    /// The text fields of the multipart upload, in the order they are sent (the `file`
    /// part follows them).
    pub fn form_fields(&self) -> Result<Vec<(String, String)>, ProviderError> {
        let mut fields = vec![(
            "isBlurred".to_string(),
            if self.is_blurred { "true" } else { "false" }.to_string(),
        )];
        if let Some((latitude, longitude)) = self.override_position {
            fields.push(("override_latitude".to_string(), format_number(latitude)));
            fields.push(("override_longitude".to_string(), format_number(longitude)));
        }
        if let Some(ms) = self.override_capture_time_ms {
            let at = rfc3339_utc(ms).ok_or_else(|| {
                ProviderError::invalid(SERVICE, format!("capture time {ms} ms is out of range"))
            })?;
            fields.push(("override_capture_time".to_string(), at));
        }
        for (tag, value) in &self.exif_overrides {
            fields.push((format!("override_Exif.{tag}"), value.clone()));
        }
        for (tag, value) in &self.xmp_overrides {
            fields.push((format!("override_Xmp.{tag}"), value.clone()));
        }
        if let Some(picture_id) = &self.picture_id {
            fields.push(("picture_id".to_string(), picture_id.clone()));
        }
        Ok(fields)
    }

    /// The name the file part is sent with.
    pub fn part_name(&self) -> String {
        jpeg_name(&self.file_name)
    }
}

/// The 202 reply to a file: `{"picture_id","file_name","content_md5","inserted_at",
/// "file_type","size","links"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AddedFile {
    #[serde(default, deserialize_with = "flex::opt_id")]
    pub picture_id: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub file_name: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub content_md5: Option<String>,
    #[serde(default, deserialize_with = "opt_size")]
    pub size: Option<u64>,
    #[serde(skip)]
    pub raw: Value,
}

fn opt_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(opt_f64(d)?.filter(|s| *s >= 0.0).map(|s| s as u64))
}

/// The 409 reply to a file: the same bytes are already on the instance. Same set:
/// `existing_item.id`; another set: `upload_sets: [{"existing_item_id","upload_set_id"}]`
/// (GeoVisio 2.15.1).
#[derive(Debug, Clone, Default, Deserialize)]
struct ConflictReply {
    #[serde(default, deserialize_with = "flex::opt_text")]
    message: Option<String>,
    #[serde(default)]
    existing_item: Option<IdRef>,
    #[serde(default)]
    details: Option<ConflictDetails>,
    #[serde(default)]
    upload_sets: Vec<ConflictSet>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ConflictDetails {
    #[serde(default, deserialize_with = "flex::opt_text")]
    error: Option<String>,
    #[serde(default)]
    existing_item: Option<IdRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct IdRef {
    #[serde(default, deserialize_with = "flex::opt_id")]
    id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ConflictSet {
    #[serde(default, deserialize_with = "flex::opt_id")]
    existing_item_id: Option<String>,
}

/// Both outcomes mean "the picture is on the instance". (A 409 for another picture under
/// the same name in the set, or for a picture id already taken, is an error, `Permanent`
/// with status 409.)
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
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rejection {
    /// `capture_duplicate|file_duplicate|invalid_file|invalid_metadata|other_error|id_conflict|in_excluded_area`.
    pub reason: String,
    /// `info|warning|error`.
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub severity: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub message: Option<String>,
}

/// One entry of `GET /api/upload_sets/{id}/files`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UploadSetFile {
    /// Only shown to the owner.
    #[serde(default, deserialize_with = "flex::opt_id")]
    pub picture_id: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub file_name: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_text")]
    pub content_md5: Option<String>,
    #[serde(default, deserialize_with = "flex::opt_u64")]
    pub size: Option<u64>,
    #[serde(default)]
    pub rejected: Option<Rejection>,
}

/// `GET /api/upload_sets/{id}/files` → `{"files":[…]}`.
#[derive(Debug, Clone, Deserialize)]
struct FilesReply {
    files: Vec<UploadSetFile>,
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

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn instance_url(&self) -> &Url {
        &self.instance_url
    }

    pub(crate) fn url(&self, segments: &[&str]) -> Result<Url, ProviderError> {
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

    /// Sends, classifies a failure, and decodes a success as JSON (`call` names the
    /// request in errors).
    pub(crate) async fn call_json(
        &self,
        call: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, ProviderError> {
        let reply = self.send(request).await?;
        if !reply.status.is_success() {
            return Err(self.error(&reply));
        }
        decode(SERVICE, call, reply.status.as_u16(), &reply.body)
    }

    /// `GET` one page of a user's collection list: `None` when GeoVisio says the account
    /// has no sequence ("No data loaded", asked for in English), which is no error.
    pub(crate) async fn user_collection_page(
        &self,
        call: &str,
        url: &Url,
    ) -> Result<Option<Value>, ProviderError> {
        let request = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT_LANGUAGE, "en");
        let reply = self.send(request).await?;
        if is_no_data(reply.status, &reply.body) {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(self.error(&reply));
        }
        decode(SERVICE, call, reply.status.as_u16(), &reply.body).map(Some)
    }

    /// [`Self::call_json`] into a typed reply.
    async fn call_typed<T: serde::de::DeserializeOwned>(
        &self,
        call: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let reply = self.send(request).await?;
        if !reply.status.is_success() {
            return Err(self.error(&reply));
        }
        decode(SERVICE, call, reply.status.as_u16(), &reply.body)
    }

    /// `GET /api/users/me`: checks the token.
    pub async fn me(&self) -> Result<PanoramaxUser, ProviderError> {
        self.call_typed(
            "GET /api/users/me",
            self.http.get(self.url(&["users", "me"])?),
        )
        .await
    }

    /// `GET /api/configuration`.
    pub async fn configuration(&self) -> Result<InstanceConfiguration, ProviderError> {
        let call = "GET /api/configuration";
        let value = self
            .call_json(call, self.http.get(self.url(&["configuration"])?))
            .await?;
        let typed: ConfigurationReply = decode_value(SERVICE, call, 200, &value)?;
        let license = typed.license.unwrap_or_default();
        Ok(InstanceConfiguration {
            auth_enabled: typed.auth.is_some_and(|a| a.enabled),
            license_id: license.id,
            license_url: license.url,
            raw: value,
        })
    }

    /// `POST /api/upload_sets` (JSON) → the new set (GeoVisio answers 200, not 201).
    pub async fn create_upload_set(&self, set: &NewUploadSet) -> Result<UploadSet, ProviderError> {
        let call = "POST /api/upload_sets";
        let value = self
            .call_json(call, self.http.post(self.url(&["upload_sets"])?).json(set))
            .await?;
        UploadSet::decode(call, &value)
    }

    /// `POST /api/upload_sets/{id}/files` (multipart, one file). 202 → [`AddFileOutcome::Added`];
    /// 409 → [`AddFileOutcome::AlreadyThere`]; 400 (no GPS, no date, not a JPEG) →
    /// `Permanent` with the reason.
    pub async fn add_file(
        &self,
        set_id: &str,
        file: &NewFile,
    ) -> Result<AddFileOutcome, ProviderError> {
        let mut form = Form::new();
        for (name, value) in file.form_fields()? {
            form = form.text(name, value);
        }
        let len = file.source.len();
        let (stream, watch) = file
            .source
            .stream_from(0)
            .await
            .map_err(|e| e.into_provider(SERVICE))?;
        let part = Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
            .file_name(jpeg_name(&file.file_name))
            .mime_str("image/jpeg")
            .map_err(|e| ProviderError::invalid(SERVICE, e.to_string()))?;
        let request = self
            .http
            .post(self.url(&["upload_sets", set_id, "files"])?)
            // GeoVisio translates its messages: English, which the 409s are read by.
            .header(reqwest::header::ACCEPT_LANGUAGE, "en")
            .timeout(transfer_timeout(len))
            .multipart(form.part("file", part));
        let reply = self.send(request).await;
        // A file that changed while it was read says so, rather than the broken request.
        if let Some(problem) = watch.problem() {
            return Err(problem.into_provider(SERVICE));
        }
        let reply = reply?;
        if reply.status == StatusCode::CONFLICT {
            // Read leniently: whatever its shape, a 409 means the bytes are there.
            let conflict: ConflictReply = serde_json::from_slice(&reply.body).unwrap_or_default();
            // But two are not about the bytes: the set already has another picture under
            // this file name (GeoVisio keeps one file per name in a set), or the picture id
            // sent is taken.
            if conflict
                .message
                .as_deref()
                .is_some_and(|m| m.contains("same name") || m.contains("same ID"))
            {
                return Err(self.error(&reply));
            }
            let details = conflict.details.unwrap_or_default();
            let existing_item_id = conflict
                .existing_item
                .and_then(|i| i.id)
                .or_else(|| details.existing_item.and_then(|i| i.id))
                .or_else(|| {
                    conflict
                        .upload_sets
                        .into_iter()
                        .find_map(|s| s.existing_item_id)
                });
            let message = conflict
                .message
                .or(details.error)
                .unwrap_or_else(|| "the same file is already on the instance".to_string());
            return Ok(AddFileOutcome::AlreadyThere {
                existing_item_id,
                message,
            });
        }
        if !reply.status.is_success() {
            return Err(self.error(&reply));
        }
        let call = "POST /api/upload_sets/{id}/files";
        let value: Value = decode(SERVICE, call, reply.status.as_u16(), &reply.body)?;
        let mut added: AddedFile = decode_value(SERVICE, call, reply.status.as_u16(), &value)?;
        added.raw = value;
        Ok(AddFileOutcome::Added(added))
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

    /// `GET /api/users/me/upload_sets`: the account's upload sets not dispatched yet (what
    /// GeoVisio lists by default), oldest first, up to its largest page (1000; 100 unasked).
    pub async fn my_upload_sets(&self) -> Result<Vec<UploadSet>, ProviderError> {
        let call = "GET /api/users/me/upload_sets";
        let value = self
            .call_json(
                call,
                self.http
                    .get(self.url(&["users", "me", "upload_sets"])?)
                    .query(&[("limit", "1000")]),
            )
            .await?;
        let sets = value
            .get("upload_sets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        sets.iter()
            .map(|raw| UploadSet::decode(call, raw))
            .collect()
    }

    /// `GET /api/upload_sets/{id}`: poll until `ready`.
    pub async fn upload_set(&self, set_id: &str) -> Result<UploadSet, ProviderError> {
        let call = "GET /api/upload_sets/{id}";
        let value = self
            .call_json(call, self.http.get(self.url(&["upload_sets", set_id])?))
            .await?;
        UploadSet::decode(call, &value)
    }

    /// `GET /api/upload_sets/{id}/files`, with the reasons of rejected files.
    pub async fn upload_set_files(
        &self,
        set_id: &str,
    ) -> Result<Vec<UploadSetFile>, ProviderError> {
        let reply: FilesReply = self
            .call_typed(
                "GET /api/upload_sets/{id}/files",
                self.http.get(self.url(&["upload_sets", set_id, "files"])?),
            )
            .await?;
        Ok(reply.files)
    }

    /// The account's totals (photos, km, sequences): the sum over `GET
    /// /api/users/me/collection`'s `rel=child` links, following `rel=next`
    /// ([`COLLECTIONS_PAGE_MAX`] a page). Needs the token.
    pub async fn account_stats(&self) -> Result<PanoramaxAccountStats, ProviderError> {
        self.account_stats_paged(COLLECTIONS_PAGE_MAX).await
    }

    /// [`Self::account_stats`] with `limit` sequences a page.
    pub async fn account_stats_paged(
        &self,
        limit: u32,
    ) -> Result<PanoramaxAccountStats, ProviderError> {
        let call = "GET /api/users/me/collection";
        let mut url = self.url(&["users", "me", "collection"])?;
        url.query_pairs_mut()
            .append_pair("limit", &limit.to_string());
        let mut stats = PanoramaxAccountStats {
            photos: 0,
            km: 0.0,
            sequences: 0,
            incomplete: 0,
            pages: 0,
        };
        let mut seen = std::collections::HashSet::new();
        loop {
            if stats.pages >= MAX_COLLECTION_PAGES || !seen.insert(url.to_string()) {
                // Totals of part of the list would be wrong totals.
                return Err(ProviderError::invalid(
                    SERVICE,
                    format!(
                        "{call}: the next links do not end (page {})",
                        stats.pages + 1
                    ),
                ));
            }
            let request = self
                .http
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .header(reqwest::header::ACCEPT_LANGUAGE, "en");
            let reply = self.send(request).await?;
            if stats.pages == 0 && is_no_data(reply.status, &reply.body) {
                stats.pages = 1;
                return Ok(stats);
            }
            if !reply.status.is_success() {
                return Err(self.error(&reply));
            }
            let page: UserCollectionPage =
                decode(SERVICE, call, reply.status.as_u16(), &reply.body)?;
            stats.pages += 1;
            let mut next = None;
            for link in page.links {
                match link.rel.as_deref() {
                    Some("child") => {
                        stats.sequences += 1;
                        let count = link.items.and_then(|i| i.count);
                        stats.photos += count.unwrap_or(0);
                        stats.km += link.length_km.unwrap_or(0.0);
                        if count.is_none() || link.length_km.is_none() {
                            stats.incomplete += 1;
                        }
                    }
                    Some("next") => next = link.href,
                    _ => {}
                }
            }
            match next {
                None => return Ok(stats),
                Some(href) => url = self.on_instance(&url, &href)?,
            }
        }
    }

    /// A link from a reply, moved onto the instance's own scheme, host and port. GeoVisio
    /// builds its links from the Host it was asked with, which behind a proxy can be an
    /// inside address (or plain http); and the token only goes to the instance we were given.
    pub(crate) fn on_instance(&self, current: &Url, href: &str) -> Result<Url, ProviderError> {
        let resolved = current.join(href).map_err(|e| {
            ProviderError::invalid(SERVICE, format!("a link is not a URL ({href}): {e}"))
        })?;
        let mut url = self.instance_url.clone();
        url.set_path(resolved.path());
        url.set_query(resolved.query());
        url.set_fragment(None);
        Ok(url)
    }

    /// `GET /api/collections/{id}`: one sequence.
    pub async fn collection(&self, collection_id: &str) -> Result<Collection, ProviderError> {
        self.call_typed(
            "GET /api/collections/{id}",
            self.http.get(self.url(&["collections", collection_id])?),
        )
        .await
    }

    /// `GET /api/collections/{id}/items?limit=n`: the first pictures of a sequence, in
    /// sequence order.
    pub async fn collection_items(
        &self,
        collection_id: &str,
        limit: u32,
    ) -> Result<Vec<CollectionItem>, ProviderError> {
        let reply: CollectionItems = self
            .call_typed(
                "GET /api/collections/{id}/items",
                self.http
                    .get(self.url(&["collections", collection_id, "items"])?)
                    .query(&[("limit", limit.to_string())]),
            )
            .await?;
        Ok(reply.features)
    }

    /// `PATCH /api/collections/{id}` (JSON) → 200 with the edited collection (PROTOCOLS
    /// §6). 404: unknown or deleted ([`ProviderError::is_not_found`]); 403: not the
    /// owner's ([`ProviderError::is_forbidden`]); 401: no or bad token.
    pub async fn patch_collection(
        &self,
        collection_id: &str,
        patch: &CollectionPatch,
    ) -> Result<Collection, ProviderError> {
        self.call_typed(
            "PATCH /api/collections/{id}",
            self.http
                .patch(self.url(&["collections", collection_id])?)
                .json(patch),
        )
        .await
    }

    /// `DELETE /api/collections/{id}` → 204: the sequence is hidden at once and deleted in
    /// the background. Errors as [`Self::patch_collection`]; a 404 means already gone.
    pub async fn delete_collection(&self, collection_id: &str) -> Result<(), ProviderError> {
        self.delete(self.url(&["collections", collection_id])?)
            .await
    }

    /// `DELETE /api/upload_sets/{id}` → 204, with its pictures. Errors as
    /// [`Self::delete_collection`].
    pub async fn delete_upload_set(&self, set_id: &str) -> Result<(), ProviderError> {
        self.delete(self.url(&["upload_sets", set_id])?).await
    }

    async fn delete(&self, url: Url) -> Result<(), ProviderError> {
        let reply = self.send(self.http.delete(url)).await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(self.error(&reply))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! GeoVisio 2.15.1 replies (PROTOCOLS §4) decode into the typed replies.
    use super::*;
    use serde_json::json;

    #[test]
    fn upload_sets_and_files() {
        let set = json!({
            "id": "0a3c1e2d-1111-2222-3333-444455556666", "completed": false, "dispatched": false, "ready": false,
            "nb_items": 0, "associated_collections": [], "estimated_nb_files": 3, "sort_method": "time-asc",
            "title": "Walk", "visibility": "anyone",
            "items_status": {"prepared": 0, "preparing": 0, "broken": 0, "rejected": 0, "not_processed": 0},
            "links": [{"rel": "self", "href": "…"}, {"rel": "add_files", "href": "…"}]
        });
        let s = UploadSet::decode("POST /api/upload_sets", &set).unwrap();
        assert_eq!(s.id, "0a3c1e2d-1111-2222-3333-444455556666");
        assert!(!s.completed && !s.ready);
        assert_eq!(s.items_status, Some(ItemsStatus::default()));
        let ready = json!({"id": "s1", "completed": true, "dispatched": true, "ready": true, "nb_items": 3,
            "associated_collections": [{"id": "c1", "nb_items": 3, "ready": true, "links": []}],
            "items_status": {"prepared": 3, "preparing": 0, "broken": 0, "rejected": 1, "not_processed": 0}});
        let s = UploadSet::decode("GET /api/upload_sets/{id}", &ready).unwrap();
        assert_eq!(s.associated_collections, vec!["c1".to_string()]);
        assert_eq!(s.items_status.unwrap().rejected, 1);
        let files = json!({"files": [
            {"picture_id": "p1", "file_name": "a.jpg", "content_md5": "abc", "size": 1234, "inserted_at": "2025-01-01T00:00:00Z"},
            {"file_name": "b.jpg", "content_md5": "def", "size": 99, "rejected": {"reason": "file_duplicate", "severity": "info", "message": "The same picture has already been sent"}}
        ]});
        let f: FilesReply = decode_value(SERVICE, "GET files", 200, &files).unwrap();
        assert_eq!(f.files[0].picture_id.as_deref(), Some("p1"));
        assert_eq!(
            f.files[1].rejected.as_ref().unwrap().reason,
            "file_duplicate"
        );
        let added = json!({"picture_id": "p2", "file_name": "c.jpg", "content_md5": "0f", "inserted_at": "…", "file_type": "picture", "size": 2048.0, "links": []});
        let a: AddedFile = decode_value(SERVICE, "POST files", 202, &added).unwrap();
        assert_eq!((a.picture_id.as_deref(), a.size), (Some("p2"), Some(2048)));
    }

    #[test]
    fn collections_and_items() {
        let c = json!({"type": "Collection", "stac_version": "1.0.0", "id": "c1", "title": "Walk",
            "geovisio:status": "ready", "stats:items": {"count": 3}, "geovisio:length_km": 0.42, "links": []});
        let c: Collection = decode_value(SERVICE, "GET collection", 200, &c).unwrap();
        assert_eq!(c.items.unwrap().count, 3);
        assert_eq!(c.status.as_deref(), Some("ready"));
        assert_eq!(c.length_km, Some(0.42));
        let items = json!({"type": "FeatureCollection", "features": [
            {"type": "Feature", "id": "p1", "collection": "c1", "geometry": {"type": "Point", "coordinates": [2.35, 48.85]},
             "properties": {"datetime": "2024-05-01T10:00:00Z", "view:azimuth": 90}, "assets": {}}
        ], "links": []});
        let i: CollectionItems = decode_value(SERVICE, "GET items", 200, &items).unwrap();
        assert_eq!(i.features[0].id, "p1");
        let e = decode_value::<Collection>(
            SERVICE,
            "GET /api/collections/{id}",
            200,
            &json!({"title": "x"}),
        )
        .unwrap_err();
        assert_eq!(
            e.message(),
            "the reply to GET /api/collections/{id} does not fit: missing field `id`"
        );
    }

    #[test]
    fn errors_keep_their_words() {
        let body = json!({"message": "Impossible to parse picture metadata", "status_code": 400,
            "details": {"error": "No GPS coordinates or broken coordinates in picture EXIF tags", "missing_fields": ["datetime", "location"]}});
        let e = classify_error(
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            body.to_string().as_bytes(),
            0,
        );
        assert!(
            e.message().contains("missing: datetime, location"),
            "{}",
            e.message()
        );
    }
}
