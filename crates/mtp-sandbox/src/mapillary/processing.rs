//! Mapillary's server side: uploaded files, clusters and their simulated processing into
//! sequences and images.
//!
//! A `finish_upload` creates a cluster at once (files are parsed then, ids allocated then);
//! the cluster then walks the four stages of mapillary.com's activity page over
//! `processing_delay` (stage *i* succeeds at `(i+1)/4` of it). Its sequences and images
//! become visible to the Graph read-back endpoints when the last stage succeeds.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read as _};

use crate::clock;
use bytes::Bytes;
use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::ids::{self, Counter};
use crate::photo::{self, PhotoMeta};
use crate::state::{MapillaryCluster, MapillaryFile, MapillaryImage, MapillarySequence, username};

pub(crate) const STAGES: [&str; 4] = [
    "image ingestion",
    "image processing",
    "map data processing",
    "map update",
];

/// Images per sequence (mapillary_tools ≥ 0.13 and, reportedly, the server).
const MAX_SEQUENCE_IMAGES: usize = 1000;
/// Bytes per sequence: 110 GiB (PROTOCOLS §2.4).
const MAX_SEQUENCE_BYTES: u64 = 110 * 1024 * 1024 * 1024;
/// Pixels per sequence: 6 G, an image without dimensions counting as 1024² (PROTOCOLS §2.4).
const MAX_SEQUENCE_PIXELS: u64 = 6_000_000_000;

/// The one organization the sandbox accounts belong to.
pub(crate) const ORGANIZATION_ID: &str = "200000000000001";

/// How long an upload handle stays valid by default.
pub(crate) const HANDLE_MAX_AGE: std::time::Duration =
    std::time::Duration::from_secs(2 * 24 * 3600);

/// Clusters this big are split in two, one time in two (seen: 418 photos → 361 + 57).
const SPLIT_MIN_IMAGES: usize = 300;
/// In clusters this big, about one photo in a hundred is never published.
const DROP_MIN_IMAGES: usize = 50;
/// How far a published position may be from the one sent.
const MAX_SHIFT_M: f64 = 5.0;

/// A stable number from a string (the same upload is published the same way).
fn hash_of(s: &str) -> u64 {
    let d = Md5::digest(s.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// An image as Mapillary shows it: moved by up to [`MAX_SHIFT_M`] in some direction, its
/// capture time cut to the second.
fn as_published(key: &str, mut meta: PhotoMeta) -> PhotoMeta {
    let h = hash_of(key);
    let dist = MAX_SHIFT_M * ((h % 1000) as f64 / 1000.0);
    let bearing = ((h >> 16) % 360) as f64;
    if let (Some(lat), Some(lon)) = (meta.lat, meta.lon) {
        let dlat = dist * bearing.to_radians().cos() / 111_320.0;
        let dlon =
            dist * bearing.to_radians().sin() / (111_320.0 * lat.to_radians().cos().max(0.01));
        meta.lat = Some(lat + dlat);
        meta.lon = Some(lon + dlon);
    }
    meta.captured_at = meta.captured_at.and_then(|t| t.replace_nanosecond(0).ok());
    meta
}

static IMAGE_IDS: Counter = Counter::new(300_000_000_000_001);
static CLUSTER_IDS: Counter = Counter::new(5_000_000_001);

pub(crate) struct UploadFile {
    pub user: usize,
    pub key: String,
    pub data: Vec<u8>,
    pub handle: Option<String>,
    /// When the handle was issued, in unix ms on the sandbox clock ([`MlyState::now`]).
    pub handle_at: Option<u64>,
    /// When its last bytes arrived, in unix ms on the sandbox clock: an unfinished upload
    /// (bytes, no handle) expires as handles do (PROTOCOLS §2.6).
    pub received_at: Option<u64>,
    pub posts: u32,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Cluster {
    pub id: String,
    pub user: usize,
    pub file_type: String,
    pub handle: String,
    pub organization_id: Option<String>,
    /// Unix ms.
    pub created: u64,
    pub created_at: time::OffsetDateTime,
    pub sequence_ids: Vec<String>,
    pub image_count: usize,
    pub dropped: usize,
    /// Stage index that fails, and why.
    pub failure: Option<(usize, String)>,
    /// Photos received but never published.
    pub unpublished: usize,
    /// The activity feed's `error_code` once a stage failed (`UNSET` otherwise).
    pub error_code: Option<String>,
    pub manifest_canonical: Option<bool>,
}

/// A finished upload that only the activity feed knows of.
pub(crate) struct ExtraActivity {
    pub cluster_id: String,
    pub user: usize,
    pub created_at: time::OffsetDateTime,
    pub item_count: usize,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Sequence {
    pub id: String,
    pub cluster_id: String,
    pub user: usize,
    pub image_ids: Vec<String>,
    /// Unix ms.
    pub visible_at: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Image {
    pub id: String,
    pub sequence_id: String,
    pub cluster_id: String,
    pub user: usize,
    pub key: String,
    /// Kept in a blob file, not in the saved JSON ([`crate::persist`]).
    #[serde(skip)]
    pub bytes: Bytes,
    pub meta: PhotoMeta,
    pub organization_id: Option<String>,
    /// Unix ms.
    pub visible_at: u64,
    /// Hidden by its owner (on the website): no longer loaded by the Graph API nor found
    /// by searches, though the activity feed may still name it.
    #[serde(default)]
    pub hidden: bool,
}

impl Image {
    pub fn visible(&self) -> bool {
        !self.hidden && clock::reached(self.visible_at)
    }
}

/// Saved by [`crate::persist`], except the files (saved apart, with their bytes in blob
/// files) and the test knobs.
#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct MlyState {
    /// Files by (user, key).
    #[serde(skip)]
    pub files: HashMap<(usize, String), UploadFile>,
    /// Upload order of the keys, for stable snapshots.
    #[serde(skip)]
    pub file_order: Vec<(usize, String)>,
    pub clusters: Vec<Cluster>,
    pub sequences: Vec<Sequence>,
    pub images: Vec<Image>,
    /// The permissions granted to each authorization code, access token and refresh token
    /// (PROTOCOLS §2.1). A token issued outside the OAuth flow (tests, sandbox mode) has no
    /// entry and may do everything the app was registered for.
    pub grants: HashMap<String, Vec<String>>,
    /// The access token issued together with each refresh token.
    pub refresh_pairs: HashMap<String, String>,
    /// Tokens a refresh replaced: refused from then on.
    pub revoked: HashSet<String>,
    /// Knob, off by default: `/graphql` also accepts user tokens. By default only the web
    /// client token works, as the service answered in 2023 (PROTOCOLS §2.6).
    #[serde(skip)]
    pub graphql_accepts_user_tokens: bool,
    /// How far the sandbox clock is ahead of real time (tests move it forward).
    #[serde(skip)]
    pub clock_offset: std::time::Duration,
    /// How long an upload handle stays valid (mapillary_tools keeps them 2 days: unfinished
    /// uploads expire server-side, PROTOCOLS §2.6). `None` = [`HANDLE_MAX_AGE`].
    #[serde(skip)]
    pub handle_max_age: Option<std::time::Duration>,
    /// Knob: the next cluster is split into two sequences before this image.
    #[serde(skip)]
    pub publish_split_next: Option<usize>,
    /// Knob: of the next cluster, one image in this many is never published (0 = none).
    #[serde(skip)]
    pub publish_drop_next: Option<usize>,
    /// Knob: the owner hides the first image of the next cluster (on the website).
    #[serde(skip)]
    pub hide_first_image_next: bool,
    /// Knob: the next cluster fails at this stage (0–3) with this `error_code`.
    #[serde(skip)]
    pub next_failure: Option<(usize, String)>,
    /// Finished clusters from other uploads, in the activity feed only (to make it long).
    #[serde(skip)]
    pub extra_activity: Vec<ExtraActivity>,
    /// Access tokens made to expire early ([`crate::SandboxState::expire_mapillary_token`]).
    pub expired: HashSet<String>,
    /// Graph API requests allowed a minute (the app's limit); `None` =
    /// [`GRAPH_REQUESTS_PER_MINUTE`].
    #[serde(skip)]
    pub graph_rate_limit: Option<u32>,
    /// When the minute being counted began (unix ms, sandbox clock), and its requests so far.
    #[serde(skip)]
    pub graph_window: (u64, u32),
}

/// Graph API requests an app may make a minute (PROTOCOLS §6: 50,000; older observations
/// said 60,000).
pub(crate) const GRAPH_REQUESTS_PER_MINUTE: u32 = 50_000;

impl MlyState {
    /// Counts one Graph API request against the app's limit; `false` when it is over.
    pub fn take_graph_request(&mut self) -> bool {
        let now = self.now();
        if now.saturating_sub(self.graph_window.0) >= 60_000 {
            self.graph_window = (now, 0);
        }
        self.graph_window.1 = self.graph_window.1.saturating_add(1);
        self.graph_window.1 <= self.graph_rate_limit.unwrap_or(GRAPH_REQUESTS_PER_MINUTE)
    }
}

/// Why a `finish_upload` is refused (HTTP 400 with this message).
pub(crate) struct FinishError(pub String);

/// What `finish_upload` answers for a handle it does not know or that expired. Mapillary's
/// own words are not documented (PROTOCOLS §2.6 ⚠️): the Graph API's generic refusal, which
/// names neither the handle nor the reason, so a client cannot lean on the wording.
pub(crate) const UNKNOWN_HANDLE: &str = "(#100) Invalid parameter";

impl MlyState {
    /// Moves the id counters past every id this state holds (after loading a saved state:
    /// ids are never handed out twice).
    pub fn reserve_ids(&self) {
        let max = |ids: &mut dyn Iterator<Item = &String>| {
            ids.filter_map(|id| id.parse::<u64>().ok()).max()
        };
        if let Some(m) = max(&mut self.images.iter().map(|i| &i.id)) {
            IMAGE_IDS.advance_past(m);
        }
        if let Some(m) = max(&mut self.clusters.iter().map(|c| &c.id)) {
            CLUSTER_IDS.advance_past(m);
        }
    }

    pub fn file_mut(&mut self, user: usize, key: &str) -> &mut UploadFile {
        let id = (user, key.to_owned());
        if !self.files.contains_key(&id) {
            self.file_order.push(id.clone());
        }
        self.files.entry(id).or_insert_with(|| UploadFile {
            user,
            key: key.to_owned(),
            data: Vec::new(),
            handle: None,
            handle_at: None,
            received_at: None,
            posts: 0,
        })
    }

    /// Forgets the bytes of an unfinished upload (no handle yet) whose last bytes came
    /// longer ago than the handle lifetime, as the upload host lets unfinished uploads
    /// expire: its offset reads 0 again and the whole file must be sent.
    pub fn expire_unfinished(&mut self, user: usize, key: &str) {
        let max = clock::ms(self.handle_max_age.unwrap_or(HANDLE_MAX_AGE));
        let now = self.now();
        if let Some(f) = self.files.get_mut(&(user, key.to_owned()))
            && f.handle.is_none()
            && f.received_at.is_some_and(|at| now.saturating_sub(at) > max)
        {
            tracing::debug!(key, bytes = f.data.len(), "unfinished upload expired");
            f.data = Vec::new();
            f.received_at = None;
        }
    }

    fn by_handle(&self, user: usize, handle: &str) -> Option<&UploadFile> {
        self.files
            .values()
            .find(|f| f.user == user && f.handle.as_deref() == Some(handle))
    }

    /// Now on the sandbox clock, in unix ms.
    pub fn now(&self) -> u64 {
        clock::now_ms().saturating_add(clock::ms(self.clock_offset))
    }

    /// Whether a file's handle is missing or older than the handle lifetime.
    pub fn handle_expired(&self, f: &UploadFile) -> bool {
        let max = self.handle_max_age.unwrap_or(HANDLE_MAX_AGE);
        f.handle_at
            .is_none_or(|at| self.now().saturating_sub(at) > clock::ms(max))
    }

    /// A file by a handle that is still valid.
    fn by_live_handle(&self, user: usize, handle: &str) -> Result<&UploadFile, FinishError> {
        let f = self
            .by_handle(user, handle)
            .ok_or_else(|| FinishError(UNKNOWN_HANDLE.to_string()))?;
        if self.handle_expired(f) {
            return Err(FinishError(UNKNOWN_HANDLE.to_string()));
        }
        Ok(f)
    }

    /// Creates a cluster from a finished file; returns its id.
    pub fn finish(
        &mut self,
        app: &App,
        user: usize,
        handle: &str,
        file_type: &str,
        organization_id: Option<String>,
    ) -> Result<String, FinishError> {
        if file_type == "mly_bundle_manifest" && app.faults.mapillary_refuses_bundles() {
            return Err(FinishError(format!(
                "(#100) Invalid parameter: file_type must be one of zip, mly_camm_video, mly_blackvue_video; got {file_type}"
            )));
        }
        let file = self.by_live_handle(user, handle)?;
        let mut manifest_canonical = None;
        // (upload key, bytes) of each image, in sequence order; `None` = a video.
        let items: Option<Vec<(String, Bytes)>> = match file_type {
            "mly_bundle_manifest" => {
                let (handles, canonical) = parse_manifest(&file.data)?;
                manifest_canonical = Some(canonical);
                let mut items = Vec::with_capacity(handles.len());
                for h in &handles {
                    let f = self.by_live_handle(user, h)?;
                    if !photo::is_jpeg(&f.data) {
                        return Err(FinishError(format!(
                            "Manifest image {} is not a JPEG",
                            f.key
                        )));
                    }
                    items.push((f.key.clone(), Bytes::from(f.data.clone())));
                }
                Some(items)
            }
            "zip" => Some(parse_zip(&file.key, &file.data)?),
            "mly_camm_video" | "mly_blackvue_video" => {
                if file.data.len() < 12 || &file.data[4..8] != b"ftyp" {
                    return Err(FinishError(format!(
                        "File {} is not an MP4 video",
                        file.key
                    )));
                }
                None
            }
            other => {
                return Err(FinishError(format!(
                    "Invalid file_type: {other} (expected zip, mly_bundle_manifest, mly_camm_video or mly_blackvue_video)"
                )));
            }
        };
        // Each image read once: what Mapillary reads of it, and what is wrong with its
        // description, if anything.
        let items: Option<Vec<Received>> = items.map(|items| {
            items
                .into_iter()
                .map(|(key, bytes)| Received {
                    problem: photo::mapillary_description_problem(&bytes),
                    meta: photo::read_mapillary_meta(&bytes),
                    key,
                    bytes,
                })
                .collect()
        });
        if let Some(items) = &items {
            within_sequence_limits(items)?;
        }
        if let Some(org) = &organization_id
            && org != ORGANIZATION_ID
        {
            return Err(FinishError(format!(
                "User is not a member of organization {org}"
            )));
        }

        let cluster_id = CLUSTER_IDS.next_string();
        let created = clock::now_ms();
        let forced = self.next_failure.take();
        // A cluster that fails is never published.
        let visible_at = if forced.is_some() {
            created.saturating_add(100 * 365 * 24 * 3600 * 1000)
        } else {
            created.saturating_add(clock::ms(app.cfg.processing_delay))
        };
        let mut cluster = Cluster {
            id: cluster_id.clone(),
            user,
            file_type: file_type.to_owned(),
            handle: handle.to_owned(),
            organization_id: organization_id.clone(),
            created,
            created_at: time::OffsetDateTime::now_utc(),
            sequence_ids: Vec::new(),
            image_count: 0,
            dropped: 0,
            failure: forced
                .as_ref()
                .map(|(stage, code)| (*stage, format!("{} failed: {code}", STAGES[*stage]))),
            error_code: forced.map(|(_, code)| code),
            unpublished: 0,
            manifest_canonical,
        };
        match items {
            None => {
                // A CAMM/BlackVue video: the sandbox does not decode its telemetry, so the
                // sequence it becomes has no images.
                let seq_id = ids::base62(22);
                self.sequences.push(Sequence {
                    id: seq_id.clone(),
                    cluster_id: cluster_id.clone(),
                    user,
                    image_ids: Vec::new(),
                    visible_at,
                });
                cluster.sequence_ids.push(seq_id);
            }
            Some(items) => {
                let mut kept = Vec::new();
                for Received {
                    key,
                    bytes,
                    meta,
                    problem,
                } in items
                {
                    // An image whose description breaks the schema is not processed.
                    if let Some(problem) = problem {
                        tracing::debug!(key, problem, "image refused at ingestion");
                        cluster.dropped += 1;
                        continue;
                    }
                    if meta.position().is_some() {
                        kept.push((key, bytes, meta));
                    } else {
                        cluster.dropped += 1;
                    }
                }
                if kept.is_empty() {
                    cluster.failure = Some((
                        1,
                        "No image has a valid description or a position (MAPLatitude/MAPLongitude or GPS EXIF)".into(),
                    ));
                    cluster.error_code = Some("NO_VALID_IMAGES".into());
                }
                cluster.image_count = kept.len();
                // What Mapillary publishes is not exactly what was sent (PROTOCOLS §2.6):
                // positions moved by up to 5 m, capture times cut to the second, a few
                // photos never published, and a chunk sometimes split in two.
                let split_knob = self.publish_split_next.take();
                let drop_knob = self.publish_drop_next.take();
                let n = kept.len();
                let split_at = split_knob.or_else(|| {
                    (n >= SPLIT_MIN_IMAGES && hash_of(&cluster_id).is_multiple_of(2))
                        .then_some(n * 86 / 100)
                });
                let dropped: Vec<bool> = kept
                    .iter()
                    .enumerate()
                    .map(|(i, (key, _, _))| match drop_knob {
                        Some(every) if every > 0 => i % every == every / 2,
                        Some(_) => false,
                        None => n >= DROP_MIN_IMAGES && hash_of(key).is_multiple_of(100),
                    })
                    .collect();
                cluster.unpublished = dropped.iter().filter(|d| **d).count();
                let mut groups: Vec<Vec<(String, Bytes, PhotoMeta)>> = Vec::new();
                for (i, (key, bytes, meta)) in kept.into_iter().enumerate() {
                    let new_group = groups.is_empty() || split_at == Some(i);
                    if new_group {
                        groups.push(Vec::new());
                    }
                    if dropped[i] {
                        continue;
                    }
                    let meta = as_published(&key, meta);
                    if let Some(g) = groups.last_mut() {
                        g.push((key, bytes, meta));
                    }
                }
                let mut hide_first = std::mem::take(&mut self.hide_first_image_next);
                for group in groups.into_iter().filter(|g| !g.is_empty()) {
                    let seq_id = ids::base62(22);
                    let mut image_ids = Vec::new();
                    for (key, bytes, meta) in group {
                        let id = IMAGE_IDS.next_string();
                        image_ids.push(id.clone());
                        let hidden = std::mem::take(&mut hide_first);
                        self.images.push(Image {
                            hidden,
                            id,
                            sequence_id: seq_id.clone(),
                            cluster_id: cluster_id.clone(),
                            user,
                            key,
                            bytes,
                            meta,
                            organization_id: organization_id.clone(),
                            visible_at,
                        });
                    }
                    self.sequences.push(Sequence {
                        id: seq_id.clone(),
                        cluster_id: cluster_id.clone(),
                        user,
                        image_ids,
                        visible_at,
                    });
                    cluster.sequence_ids.push(seq_id);
                }
            }
        }
        self.clusters.push(cluster);
        Ok(cluster_id)
    }

    pub fn files_snapshot(&self) -> Vec<MapillaryFile> {
        self.file_order
            .iter()
            .filter_map(|id| self.files.get(id))
            .map(|f| MapillaryFile {
                user: username(f.user),
                key: f.key.clone(),
                bytes: Bytes::from(f.data.clone()),
                len: f.data.len() as u64,
                md5: hex::encode(Md5::digest(&f.data)),
                handle: f.handle.clone(),
                posts: f.posts,
            })
            .collect()
    }

    pub fn clusters_snapshot(&self, app: &App) -> Vec<MapillaryCluster> {
        self.clusters
            .iter()
            .map(|c| {
                let (stages, status) = cluster_stages(app, c);
                MapillaryCluster {
                    id: c.id.clone(),
                    user: username(c.user),
                    file_type: c.file_type.clone(),
                    file_handle: c.handle.clone(),
                    organization_id: c.organization_id.clone(),
                    stages: stages
                        .into_iter()
                        .map(|(n, s)| (n.to_owned(), s.to_owned()))
                        .collect(),
                    status: status.to_owned(),
                    failure: c.failure.as_ref().map(|(_, m)| m.clone()),
                    sequence_ids: c.sequence_ids.clone(),
                    image_count: c.image_count,
                    dropped_images: c.dropped,
                    unpublished_images: c.unpublished,
                    manifest_canonical: c.manifest_canonical,
                }
            })
            .collect()
    }

    pub fn sequences_snapshot(&self) -> Vec<MapillarySequence> {
        let now = clock::now_ms();
        self.sequences
            .iter()
            .map(|s| MapillarySequence {
                id: s.id.clone(),
                cluster_id: s.cluster_id.clone(),
                user: username(s.user),
                image_ids: s.image_ids.clone(),
                visible: now >= s.visible_at,
            })
            .collect()
    }

    pub fn images_snapshot(&self) -> Vec<MapillaryImage> {
        self.images
            .iter()
            .map(|i| MapillaryImage {
                id: i.id.clone(),
                sequence_id: i.sequence_id.clone(),
                cluster_id: i.cluster_id.clone(),
                user: username(i.user),
                upload_key: i.key.clone(),
                lat: i.meta.lat,
                lon: i.meta.lon,
                altitude: i.meta.altitude,
                captured_at_ms: i.meta.captured_at_ms(),
                compass_angle: i.meta.heading,
                visible: i.visible(),
            })
            .collect()
    }
}

/// Each stage's status and the cluster's overall status.
pub(crate) fn cluster_stages(
    app: &App,
    c: &Cluster,
) -> (Vec<(&'static str, &'static str)>, &'static str) {
    let elapsed = clock::since(c.created);
    let step = app.step(4);
    let mut out = Vec::with_capacity(4);
    let mut overall = "done";
    for (i, name) in STAGES.iter().enumerate() {
        let due = step * (i as u32 + 1);
        let status = match &c.failure {
            Some((stage, _)) if i > *stage => "pending",
            Some((stage, _)) if i == *stage && elapsed >= due => "failed",
            _ if elapsed >= due => "success",
            _ => "pending",
        };
        out.push((*name, status));
    }
    if out.iter().any(|(_, s)| *s == "failed") {
        overall = "failed";
    } else if out.iter().all(|(_, s)| *s == "pending") {
        overall = "pending";
    } else if out.iter().any(|(_, s)| *s == "pending") {
        overall = "processing";
    }
    (out, overall)
}

/// `{"image_handles":[…],"upload_type":"images","version":"1"}` → the handles, and whether
/// the JSON was compact with sorted keys.
fn parse_manifest(data: &[u8]) -> Result<(Vec<String>, bool), FinishError> {
    let v: serde_json::Value = serde_json::from_slice(data)
        .map_err(|e| FinishError(format!("Manifest is not valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| FinishError("Manifest is not a JSON object".into()))?;
    match obj.get("version").and_then(serde_json::Value::as_str) {
        Some("1") => {}
        other => {
            return Err(FinishError(format!(
                "Unsupported manifest version: {other:?} (expected \"1\")"
            )));
        }
    }
    match obj.get("upload_type").and_then(serde_json::Value::as_str) {
        Some("images") => {}
        other => {
            return Err(FinishError(format!(
                "Unsupported manifest upload_type: {other:?} (expected \"images\")"
            )));
        }
    }
    if let Some(extra) = obj
        .keys()
        .find(|k| !["image_handles", "upload_type", "version"].contains(&k.as_str()))
    {
        return Err(FinishError(format!("Unknown manifest key: {extra}")));
    }
    let handles: Vec<String> = obj
        .get("image_handles")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| FinishError("Manifest has no image_handles array".into()))?
        .iter()
        .map(|h| h.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| FinishError("image_handles must be strings".into()))?;
    if handles.is_empty() {
        return Err(FinishError("Manifest has no images".into()));
    }
    // serde_json's map is sorted (no preserve_order), so re-serializing gives the canonical form.
    let canonical = serde_json::to_vec(&v).is_ok_and(|c| c == data);
    Ok((handles, canonical))
}

/// An image of a finished upload, read once.
struct Received {
    key: String,
    bytes: Bytes,
    meta: PhotoMeta,
    /// Why its description breaks the schema, if it does.
    problem: Option<String>,
}

/// Refuses a sequence over the caps mapillary_tools splits at, which are said to mirror
/// the server's (PROTOCOLS §2.4): a client that does not split is told so, not served.
fn within_sequence_limits(items: &[Received]) -> Result<(), FinishError> {
    if items.len() > MAX_SEQUENCE_IMAGES {
        return Err(FinishError(format!(
            "(#100) Invalid parameter: a sequence holds at most {MAX_SEQUENCE_IMAGES} images; this one has {}",
            items.len()
        )));
    }
    let bytes: u64 = items.iter().map(|i| i.bytes.len() as u64).sum();
    if bytes > MAX_SEQUENCE_BYTES {
        return Err(FinishError(format!(
            "(#100) Invalid parameter: a sequence holds at most 110 GiB; this one has {bytes} bytes"
        )));
    }
    let pixels: u64 = items
        .iter()
        .map(|i| u64::from(i.meta.width.unwrap_or(1024)) * u64::from(i.meta.height.unwrap_or(1024)))
        .sum();
    if pixels > MAX_SEQUENCE_PIXELS {
        return Err(FinishError(format!(
            "(#100) Invalid parameter: a sequence holds at most 6 G pixels; this one has {pixels}"
        )));
    }
    Ok(())
}

/// A mapillary_tools zip: entries `0.jpg…` (read in numeric order), comment
/// `{"sequence_md5sum":"…"}` required.
fn parse_zip(key: &str, data: &[u8]) -> Result<Vec<(String, Bytes)>, FinishError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(data))
        .map_err(|e| FinishError(format!("Invalid zip file: {e}")))?;
    let comment: serde_json::Value = serde_json::from_slice(archive.comment())
        .map_err(|_| FinishError("Zip comment must be JSON with sequence_md5sum".into()))?;
    if comment
        .get("sequence_md5sum")
        .and_then(serde_json::Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(FinishError("Zip comment has no sequence_md5sum".into()));
    }
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| FinishError(format!("Invalid zip entry: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry
            .name()
            .map_err(|e| FinishError(format!("Invalid zip entry name: {e}")))?
            .into_owned();
        let mut buf = Vec::new();
        entry
            .read_to_end(&mut buf)
            .map_err(|e| FinishError(format!("Invalid zip entry {name}: {e}")))?;
        if !photo::is_jpeg(&buf) {
            return Err(FinishError(format!("Zip entry {name} is not a JPEG")));
        }
        entries.push((name, Bytes::from(buf)));
    }
    if entries.is_empty() {
        return Err(FinishError("Zip file has no images".into()));
    }
    let order = |n: &str| -> (u64, String) {
        let stem = n.rsplit('/').next().unwrap_or(n);
        let num = stem.split('.').next().and_then(|s| s.parse().ok());
        (num.unwrap_or(u64::MAX), n.to_owned())
    };
    entries.sort_by_key(|(n, _)| order(n));
    Ok(entries
        .into_iter()
        .map(|(n, b)| (format!("{key}/{n}"), b))
        .collect())
}
