//! What the Panoramax emulator holds: upload sets with their tracked files, pictures and the
//! collections a dispatch made, and where a set is in its life.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::app::App;
use crate::clock;
use crate::photo::PhotoMeta;
use crate::state::{PanoramaxCollection, PanoramaxFile, PanoramaxUploadSet, username};

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Rejection {
    pub(super) reason: String,
    pub(super) severity: String,
    pub(super) message: String,
}

#[derive(Serialize, Deserialize)]
pub(super) struct SetFile {
    pub(super) file_name: String,
    pub(super) picture_id: Option<String>,
    pub(super) content_md5: String,
    pub(super) size: u64,
    pub(super) inserted_at: OffsetDateTime,
    pub(super) rejected: Option<Rejection>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Picture {
    pub(super) id: String,
    pub(super) set_id: String,
    pub(super) user: usize,
    pub(super) file_name: String,
    /// Kept in a blob file, not in the saved JSON ([`crate::persist`]).
    #[serde(skip)]
    pub(super) bytes: Bytes,
    pub(super) md5: String,
    pub(super) meta: PhotoMeta,
    pub(super) inserted: u64,
    pub(super) collection_id: Option<String>,
    /// Its preparation failed (GeoVisio retries it 5 times, then marks it `broken`): it is
    /// counted in the set's `items_status.broken`. GeoVisio 2.15.1's dispatch does not
    /// filter on status, so it is in its collection all the same, seen there by its owner
    /// only (`geovisio:status` `broken`); everyone else's reads and searches leave it out.
    #[serde(default)]
    pub(super) broken: bool,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Collection {
    pub(super) id: String,
    pub(super) set_id: String,
    pub(super) user: usize,
    pub(super) title: String,
    pub(super) picture_ids: Vec<String>,
    pub(super) created_at: OffsetDateTime,
    /// `anyone`, `owner-only` or `logged-only` once set by a `PATCH`; `None` = the upload
    /// set's.
    #[serde(default)]
    pub(super) visibility: Option<String>,
    /// Deleted by `DELETE /api/collections/{id}`: hidden from every read at once (GeoVisio
    /// then deletes it in the background), its pictures gone.
    #[serde(default)]
    pub(super) deleted: bool,
}

#[derive(Serialize, Deserialize)]
pub(super) struct UploadSet {
    pub(super) id: String,
    pub(super) user: usize,
    pub(super) title: String,
    pub(super) estimated_nb_files: Option<u64>,
    pub(super) sort_method: String,
    pub(super) split_distance: f64,
    pub(super) split_time: f64,
    pub(super) no_split: bool,
    pub(super) duplicate_distance: f64,
    pub(super) duplicate_rotation: f64,
    pub(super) no_deduplication: bool,
    pub(super) relative_heading: Option<f64>,
    pub(super) visibility: String,
    pub(super) semantics: Value,
    pub(super) metadata: Value,
    pub(super) created_at: OffsetDateTime,
    pub(super) completed_at: Option<u64>,
    pub(super) deleted: bool,
    pub(super) files: Vec<SetFile>,
    pub(super) collection_ids: Vec<String>,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct PnxState {
    pub(super) sets: Vec<UploadSet>,
    pub(super) pictures: Vec<Picture>,
    pub(super) collections: Vec<Collection>,
    /// Knob: how many of the next accepted pictures end `broken`.
    #[serde(skip)]
    pub(crate) break_next: usize,
    /// Knob: accepted pictures with these file names end `broken`.
    #[serde(skip)]
    pub(crate) break_named: Vec<String>,
    /// The accounts that accepted the terms of service (on `/panoramax/tos-validation`;
    /// asked for only with the `panoramax_tos=enforce` fault).
    pub(crate) tos_accepted: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SetPhase {
    Open,
    Completed,
    Dispatched,
    Ready,
}

pub(super) fn set_phase(app: &App, s: &UploadSet) -> SetPhase {
    match s.completed_at {
        None => SetPhase::Open,
        Some(at) => {
            let e = clock::since(at);
            if e >= app.cfg.processing_delay {
                SetPhase::Ready
            } else if e >= app.step(2) {
                SetPhase::Dispatched
            } else {
                SetPhase::Completed
            }
        }
    }
}

impl PnxState {
    /// A collection's pictures in sequence order, as `viewer` sees them: its broken ones
    /// only to its owner.
    pub(super) fn collection_pictures<'a>(
        &'a self,
        c: &Collection,
        viewer: Option<usize>,
    ) -> Vec<&'a Picture> {
        c.picture_ids
            .iter()
            .filter_map(|id| self.pictures.iter().find(|p| &p.id == id))
            .filter(|p| !p.broken || viewer == Some(c.user))
            .collect()
    }

    /// The visibility that applies to a collection: its own once patched, else its set's.
    pub(super) fn collection_visibility<'a>(&'a self, c: &'a Collection) -> &'a str {
        c.visibility.as_deref().unwrap_or_else(|| {
            self.sets
                .iter()
                .find(|s| s.id == c.set_id)
                .map_or("anyone", |s| s.visibility.as_str())
        })
    }

    pub fn collections_snapshot(&self) -> Vec<PanoramaxCollection> {
        self.collections
            .iter()
            .map(|c| PanoramaxCollection {
                id: c.id.clone(),
                upload_set_id: c.set_id.clone(),
                user: username(c.user),
                title: c.title.clone(),
                visibility: self.collection_visibility(c).to_owned(),
                deleted: c.deleted,
                picture_ids: c.picture_ids.clone(),
                broken_picture_ids: self
                    .collection_pictures(c, Some(c.user))
                    .into_iter()
                    .filter(|p| p.broken)
                    .map(|p| p.id.clone())
                    .collect(),
            })
            .collect()
    }

    /// Each picture's id and bytes (the bytes are saved apart, see [`crate::persist`]).
    pub(crate) fn picture_bytes(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.pictures.iter().map(|p| (p.id.as_str(), &p.bytes))
    }

    /// Puts the bytes back into the pictures of a loaded state (`read` gets a picture id).
    pub(crate) fn restore_picture_bytes(&mut self, mut read: impl FnMut(&str) -> Option<Bytes>) {
        for p in &mut self.pictures {
            if let Some(b) = read(&p.id) {
                p.bytes = b;
            }
        }
    }

    pub fn snapshot(&self, app: &App) -> Vec<PanoramaxUploadSet> {
        self.sets
            .iter()
            .map(|s| {
                let phase = set_phase(app, s);
                PanoramaxUploadSet {
                    id: s.id.clone(),
                    user: username(s.user),
                    title: s.title.clone(),
                    estimated_nb_files: s.estimated_nb_files,
                    completed: phase != SetPhase::Open,
                    dispatched: matches!(phase, SetPhase::Dispatched | SetPhase::Ready),
                    ready: phase == SetPhase::Ready,
                    deleted: s.deleted,
                    files: s
                        .files
                        .iter()
                        .map(|f| PanoramaxFile {
                            file_name: f.file_name.clone(),
                            picture_id: f.picture_id.clone(),
                            content_md5: f.content_md5.clone(),
                            size: f.size,
                            rejected: f.rejected.as_ref().map(|r| r.reason.clone()),
                        })
                        .collect(),
                    collection_ids: s.collection_ids.clone(),
                }
            })
            .collect()
    }
}
