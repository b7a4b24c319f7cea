//! What the KartaView emulator holds (sequences with their photos) and where a sequence is
//! in its life.

use axum::response::Response;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::app::App;
use crate::clock;
use crate::state::{KartaViewPhoto, KartaViewSequence, username};

use super::{not_allowed, out_of_range};

#[derive(Serialize, Deserialize)]
pub(super) struct Photo {
    pub(super) id: u64,
    pub(super) index: u32,
    pub(super) lat: f64,
    pub(super) lng: f64,
    pub(super) shot_date: String,
    pub(super) heading: Option<f64>,
    pub(super) gps_accuracy: Option<f64>,
    pub(super) projection: Option<String>,
    pub(super) field_of_view: Option<f64>,
    pub(super) projection_yaw: Option<f64>,
    pub(super) filename: Option<String>,
    pub(super) len: u64,
    pub(super) md5: String,
    pub(super) date_added: OffsetDateTime,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Sequence {
    pub(super) id: u64,
    pub(super) user: usize,
    pub(super) upload_source: String,
    pub(super) platform_name: Option<String>,
    pub(super) device_name: Option<String>,
    pub(super) current_coordinate: String,
    pub(super) metadata_len: Option<u64>,
    pub(super) date_added: OffsetDateTime,
    pub(super) finished_at: Option<u64>,
    pub(super) deleted: bool,
    pub(super) photos: Vec<Photo>,
    pub(super) videos: Vec<(u32, u64)>,
    pub(super) duplicate_attempts: Vec<u32>,
    /// Its processing ends `PROCESSING_FAILED` (v2 `FAILED`) instead of finishing.
    #[serde(default)]
    pub(super) processing_fails: bool,
    /// Photos its processing leaves out (`countActivePhotos` counts that many fewer once
    /// processed).
    #[serde(default)]
    pub(super) dropped: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct KvState {
    pub(super) sequences: Vec<Sequence>,
    pub(super) next_sequence: u64,
    pub(super) next_item: u64,
    /// Knob: the processing of the next sequence created fails.
    #[serde(skip)]
    pub(crate) fail_next: bool,
    /// Knob: the processing of the next sequence created leaves out this many photos.
    #[serde(skip)]
    pub(crate) drop_next: usize,
    /// Knob: `/my-list` lists oldest first (PROTOCOLS §3.2 gives no order; newest first
    /// by default).
    #[serde(skip)]
    pub(crate) my_list_oldest_first: bool,
}

impl Default for KvState {
    fn default() -> KvState {
        KvState {
            sequences: Vec::new(),
            next_sequence: 4_000_001,
            next_item: 90_000_001,
            fail_next: false,
            drop_next: 0,
            my_list_oldest_first: false,
        }
    }
}

/// Where a sequence is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Uploading,
    Processing,
    Finished,
    /// Processing failed (PROTOCOLS §3.3: `PROCESSING_FAILED`, v2 `FAILED`).
    Failed,
}

pub(super) fn phase(app: &App, s: &Sequence) -> Phase {
    match s.finished_at {
        None => Phase::Uploading,
        Some(at) if clock::since(at) < app.cfg.processing_delay => Phase::Processing,
        Some(_) if s.processing_fails => Phase::Failed,
        Some(_) => Phase::Finished,
    }
}

pub(super) fn v1_status(p: Phase) -> &'static str {
    match p {
        Phase::Uploading => "NEW",
        Phase::Processing => "UPLOAD_FINISHED",
        Phase::Finished => "PROCESSING_FINISHED",
        Phase::Failed => "PROCESSING_FAILED",
    }
}

pub(super) fn item_status(p: Phase) -> &'static str {
    match p {
        Phase::Uploading => "NEW",
        Phase::Processing => "PROCESSING",
        Phase::Finished => "FINISHED",
        Phase::Failed => "FAILED",
    }
}

impl KvState {
    pub fn snapshot(&self, app: &App) -> Vec<KartaViewSequence> {
        self.sequences
            .iter()
            .map(|s| {
                let mut photos: Vec<KartaViewPhoto> = s
                    .photos
                    .iter()
                    .map(|p| KartaViewPhoto {
                        id: p.id.to_string(),
                        sequence_index: p.index,
                        lat: p.lat,
                        lng: p.lng,
                        shot_date: p.shot_date.clone(),
                        heading: p.heading,
                        gps_accuracy: p.gps_accuracy,
                        projection: p.projection.clone(),
                        field_of_view: p.field_of_view,
                        projection_yaw: p.projection_yaw,
                        filename: p.filename.clone(),
                        len: p.len,
                        md5: p.md5.clone(),
                    })
                    .collect();
                photos.sort_by_key(|p| p.sequence_index);
                KartaViewSequence {
                    id: s.id.to_string(),
                    user: username(s.user),
                    status: v1_status(phase(app, s)).to_owned(),
                    upload_source: s.upload_source.clone(),
                    platform_name: s.platform_name.clone(),
                    device_name: s.device_name.clone(),
                    current_coordinate: s.current_coordinate.clone(),
                    metadata_len: s.metadata_len,
                    deleted: s.deleted,
                    photos,
                    duplicate_attempts: s.duplicate_attempts.clone(),
                }
            })
            .collect()
    }

    pub(super) fn live(&mut self, id: u64) -> Option<&mut Sequence> {
        self.sequences.iter_mut().find(|s| s.id == id && !s.deleted)
    }
}

/// Finds a live sequence the user owns, or the v1 error.
pub(super) fn owned(st: &mut KvState, id: u64, user: usize) -> Result<&mut Sequence, Response> {
    match st.live(id) {
        None => Err(out_of_range("sequenceId")),
        Some(s) if s.user != user => Err(not_allowed()),
        Some(s) => Ok(s),
    }
}
