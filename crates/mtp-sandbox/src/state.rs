//! Read access to what the emulators hold, for tests and the sandbox UI. Every accessor
//! returns a snapshot (owned copies), so nothing a test holds blocks the server.

use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use serde::Serialize;

use crate::app::AppRef;
use crate::auth::Service;

/// Locks a mutex, ignoring poisoning (a panicking handler must not take the sandbox down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A file on the Mapillary upload host (complete or partial).
#[derive(Clone, Debug, Serialize)]
pub struct MapillaryFile {
    /// Username of the uploader.
    pub user: String,
    /// The session key from the URL (`mly_tools_<md5>.jpg`, `uuid_<hex>.json`, …).
    pub key: String,
    #[serde(skip)]
    pub bytes: Bytes,
    pub len: u64,
    /// MD5 (hex) of the bytes received so far.
    pub md5: String,
    /// The handle, once a POST reached the end of its body.
    pub handle: Option<String>,
    /// How many POSTs carried bytes for this key (more than one = resumed).
    pub posts: u32,
}

impl MapillaryFile {
    /// Whether the key is `mly_tools_<md5 of the bytes>.<ext>`.
    pub fn key_matches_md5(&self) -> bool {
        self.key
            .strip_prefix("mly_tools_")
            .and_then(|k| k.split('.').next())
            .is_some_and(|k| k == self.md5)
    }
}

/// One `finish_upload`.
#[derive(Clone, Debug, Serialize)]
pub struct MapillaryCluster {
    pub id: String,
    pub user: String,
    pub file_type: String,
    pub file_handle: String,
    pub organization_id: Option<String>,
    /// The four stages (`image ingestion`, `image processing`, `map data processing`,
    /// `map update`) with `pending`, `success` or `failed`.
    pub stages: Vec<(String, String)>,
    /// `pending`, `processing`, `done` or `failed`.
    pub status: String,
    pub failure: Option<String>,
    /// Sequence ids (known from the start; readable through the Graph API once `done`).
    pub sequence_ids: Vec<String>,
    pub image_count: usize,
    /// Images dropped for lack of a position.
    pub dropped_images: usize,
    /// Images received but never published (Mapillary loses a few).
    pub unpublished_images: usize,
    /// For manifests: whether the JSON was compact with sorted keys, as mapillary_tools sends it.
    pub manifest_canonical: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MapillarySequence {
    pub id: String,
    pub cluster_id: String,
    pub user: String,
    pub image_ids: Vec<String>,
    /// Whether processing has finished (the read-back endpoints show it).
    pub visible: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct MapillaryImage {
    pub id: String,
    pub sequence_id: String,
    pub cluster_id: String,
    pub user: String,
    pub upload_key: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub altitude: Option<f64>,
    pub captured_at_ms: Option<i64>,
    pub compass_angle: Option<f64>,
    pub visible: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct KartaViewPhoto {
    pub id: String,
    pub sequence_index: u32,
    pub lat: f64,
    pub lng: f64,
    pub shot_date: String,
    pub heading: Option<f64>,
    pub gps_accuracy: Option<f64>,
    pub projection: Option<String>,
    pub field_of_view: Option<f64>,
    pub projection_yaw: Option<f64>,
    pub filename: Option<String>,
    pub len: u64,
    pub md5: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct KartaViewSequence {
    pub id: String,
    pub user: String,
    /// v1 state: `NEW`, `UPLOAD_FINISHED` or `PROCESSING_FINISHED`.
    pub status: String,
    pub upload_source: String,
    pub platform_name: Option<String>,
    pub device_name: Option<String>,
    pub current_coordinate: String,
    pub metadata_len: Option<u64>,
    pub deleted: bool,
    /// Photos in `sequenceIndex` order.
    pub photos: Vec<KartaViewPhoto>,
    /// `sequenceIndex` values refused as duplicates (code 660), in arrival order.
    pub duplicate_attempts: Vec<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PanoramaxFile {
    pub file_name: String,
    pub picture_id: Option<String>,
    pub content_md5: String,
    pub size: u64,
    /// `capture_duplicate`, `file_duplicate`, `invalid_file`, `invalid_metadata`, …
    pub rejected: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PanoramaxUploadSet {
    pub id: String,
    pub user: String,
    pub title: String,
    pub estimated_nb_files: Option<u64>,
    pub completed: bool,
    pub dispatched: bool,
    pub ready: bool,
    pub deleted: bool,
    pub files: Vec<PanoramaxFile>,
    pub collection_ids: Vec<String>,
}

/// A Panoramax collection (a sequence a dispatch made out of an upload set).
#[derive(Clone, Debug, Serialize)]
pub struct PanoramaxCollection {
    pub id: String,
    pub upload_set_id: String,
    pub user: String,
    pub title: String,
    /// `anyone`, `owner-only` or `logged-only`.
    pub visibility: String,
    /// Deleted by `DELETE /api/collections/{id}` (a deleted upload set's collections are
    /// removed altogether).
    pub deleted: bool,
    /// In sequence order, broken ones included (GeoVisio keeps them in the sequence).
    pub picture_ids: Vec<String>,
    /// Those of `picture_ids` whose preparation failed: their owner sees them, nobody else.
    pub broken_picture_ids: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MtpwSequence {
    pub unique_id: String,
    pub user: String,
    pub name: String,
    pub description: Option<String>,
    pub transport_type: String,
    pub tags: Vec<String>,
    pub published: bool,
    pub deleted: bool,
    pub google_street_view: Option<serde_json::Value>,
    /// As sent (the spec says a string; a number is kept as a number so tests can see it).
    pub strava: Option<serde_json::Value>,
    pub mapillary_sequence_key: Option<String>,
    pub image_count: Option<usize>,
    pub captured_at: Option<String>,
}

/// Read access to every emulator's data (cheap to clone).
#[derive(Clone)]
pub struct SandboxState {
    pub(crate) app: AppRef,
}

impl SandboxState {
    /// The seeded world (see [`crate::World`]).
    pub fn world(&self) -> std::sync::Arc<crate::World> {
        self.app.world.clone()
    }

    /// Every token the emulators issued, for tests that check none of them leaks.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.app.auth).issued_values()
    }

    pub fn mapillary_files(&self) -> Vec<MapillaryFile> {
        lock(&self.app.mly).files_snapshot()
    }

    /// The first file uploaded under `key` (by any user).
    pub fn mapillary_file(&self, key: &str) -> Option<MapillaryFile> {
        self.mapillary_files().into_iter().find(|f| f.key == key)
    }

    pub fn mapillary_clusters(&self) -> Vec<MapillaryCluster> {
        lock(&self.app.mly).clusters_snapshot(&self.app)
    }

    pub fn mapillary_cluster(&self, id: &str) -> Option<MapillaryCluster> {
        self.mapillary_clusters().into_iter().find(|c| c.id == id)
    }

    pub fn mapillary_sequences(&self) -> Vec<MapillarySequence> {
        lock(&self.app.mly).sequences_snapshot()
    }

    pub fn mapillary_images(&self) -> Vec<MapillaryImage> {
        lock(&self.app.mly).images_snapshot()
    }

    pub fn kartaview_sequences(&self) -> Vec<KartaViewSequence> {
        lock(&self.app.kv).snapshot(&self.app)
    }

    /// Knob: KartaView's processing of the next sequence created fails
    /// (`PROCESSING_FAILED`, v2 `FAILED`; PROTOCOLS §3.3).
    pub fn kartaview_fail_next_sequence(&self) {
        lock(&self.app.kv).fail_next = true;
    }

    /// Knob: KartaView's processing of the next sequence created leaves out `n` photos
    /// (its `countActivePhotos` then counts fewer than were sent).
    pub fn kartaview_drop_from_next_sequence(&self, n: usize) {
        lock(&self.app.kv).drop_next = n;
    }

    /// Knob: KartaView's `/my-list` lists the account's sequences oldest first (its order
    /// is not documented), or newest first again.
    pub fn kartaview_my_list_oldest_first(&self, on: bool) {
        lock(&self.app.kv).my_list_oldest_first = on;
    }

    pub fn kartaview_sequence(&self, id: &str) -> Option<KartaViewSequence> {
        self.kartaview_sequences().into_iter().find(|s| s.id == id)
    }

    pub fn panoramax_upload_sets(&self) -> Vec<PanoramaxUploadSet> {
        lock(&self.app.pnx).snapshot(&self.app)
    }

    pub fn panoramax_upload_set(&self, id: &str) -> Option<PanoramaxUploadSet> {
        self.panoramax_upload_sets()
            .into_iter()
            .find(|s| s.id == id)
    }

    /// Knob: the next `n` pictures Panoramax accepts fail their preparation and end
    /// `broken` (PROTOCOLS §4: retried 5 times, then broken); they stay in their sequence,
    /// seen by their owner only.
    pub fn panoramax_break_next_pictures(&self, n: usize) {
        lock(&self.app.pnx).break_next = n;
    }

    /// Knob: as [`Self::panoramax_break_next_pictures`], for the pictures sent with these
    /// file names, whenever they come.
    pub fn panoramax_break_pictures_named(&self, names: &[&str]) {
        lock(&self.app.pnx).break_named = names.iter().map(|n| (*n).to_owned()).collect();
    }

    /// Every collection, deleted ones included, whether dispatched yet or not.
    pub fn panoramax_collections(&self) -> Vec<PanoramaxCollection> {
        lock(&self.app.pnx).collections_snapshot()
    }

    pub fn panoramax_collection(&self, id: &str) -> Option<PanoramaxCollection> {
        self.panoramax_collections()
            .into_iter()
            .find(|c| c.id == id)
    }

    pub fn mtpw_sequences(&self) -> Vec<MtpwSequence> {
        lock(&self.app.mtpw).snapshot(&self.app)
    }

    pub fn mtpw_sequence(&self, unique_id: &str) -> Option<MtpwSequence> {
        self.mtpw_sequences()
            .into_iter()
            .find(|s| s.unique_id == unique_id)
    }

    /// Issues an access token for sandbox account `user` (index into [`crate::USERS`]) as if
    /// the OAuth flow had run. For KartaView this is the KartaView token (not OSM's); for
    /// Panoramax a claimed JWT.
    pub fn issue_token(&self, service: Service, user: usize) -> String {
        let client = match service {
            Service::Mapillary => crate::MAPILLARY_CLIENT_ID,
            Service::Osm => crate::OSM_CLIENT_ID,
            Service::Mtpw => crate::MTPW_CLIENT_ID,
            Service::KartaView | Service::Panoramax => "",
        };
        self.app
            .issue_access(service, user.min(crate::USERS.len() - 1), client)
    }
}

pub(crate) fn username(user: usize) -> String {
    crate::USERS
        .get(user)
        .map_or_else(String::new, |u| u.username.to_owned())
}
