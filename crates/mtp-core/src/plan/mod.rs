//! Building clean sequences from photos: a pure plan of what is kept, dropped and split.
//!
//! `plan_sequences` is the "plan" half of "plan, then apply" (ARCHITECTURE.md): it does
//! no I/O, so the UI can preview exactly what will be uploaded (and why each photo was
//! dropped) before anything is written, and the same input always gives the same plan.
//!
//! The rules are mapillary_tools 0.14.7's `process` rules (PROTOCOLS §2.5), applied in the
//! same order, so that Mapillary neither splits nor rejects what we send. Where we differ,
//! the difference is documented on [`plan_sequences`].

mod build;
pub mod description;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
pub mod validate;

pub use build::plan_sequences;
pub use description::{DescriptionOptions, image_description};
pub use validate::{DestinationCheck, Problem, ProblemCode, Severity, check_destinations};

use crate::geo::Bbox;
use crate::photo::PhotoMeta;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Mapillary's per-sequence photo cap since mapillary_tools 0.13 (it was 500 before, and
/// MTPDU still uses 500).
pub const MAPILLARY_MAX_SEQUENCE_PHOTOS: usize = 1000;
/// Mapillary's per-sequence size cap: 110 GiB.
pub const MAPILLARY_MAX_SEQUENCE_BYTES: u64 = 110 * 1024 * 1024 * 1024;
/// Mapillary's per-sequence pixel cap: 6 G (decimal, as mapillary_tools parses "6G").
pub const MAPILLARY_MAX_SEQUENCE_PIXELS: u64 = 6_000_000_000;
/// Width and height assumed for a photo whose dimensions are unknown, as mapillary_tools
/// does, so that the pixel cap still bounds such sequences.
pub const DEFAULT_DIMENSION_PX: u32 = 1024;

/// Pixels a photo counts for against the per-sequence pixel cap; unknown dimensions
/// count as [`DEFAULT_DIMENSION_PX`] each, as in mapillary_tools.
pub fn pixels_of(photo: &PhotoMeta) -> u64 {
    u64::from(photo.width.unwrap_or(DEFAULT_DIMENSION_PX))
        * u64::from(photo.height.unwrap_or(DEFAULT_DIMENSION_PX))
}

/// Tuning for [`plan_sequences`]. `Default` is mapillary_tools 0.14.7's behaviour.
///
/// Deserialization fills missing fields from `Default`, so the UI and the settings file
/// only need to carry what the user changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct PlanOptions {
    /// Start a new sequence when consecutive photos are more than this many seconds apart.
    pub max_time_gap_s: f64,
    /// Start a new sequence when consecutive photos are more than this many metres apart.
    pub max_distance_gap_m: f64,
    /// At most this many photos per sequence. Mapillary's cap is 1000; MTPDU used 500,
    /// and a destination may want fewer. Values below 1 are treated as 1.
    pub max_photos_per_sequence: usize,
    /// At most this many bytes of files per sequence.
    pub max_sequence_bytes: u64,
    /// At most this many pixels per sequence (unknown dimensions count as 1024 each).
    pub max_sequence_pixels: u64,
    /// A photo within this distance of the last kept one may be a duplicate…
    pub duplicate_distance_m: f64,
    /// …and is one if either heading is missing or the headings differ by at most this.
    pub duplicate_angle_deg: f64,
    /// A sequence whose average speed exceeds this is rejected whole: its clock or GPS
    /// is wrong, and Mapillary would reject it anyway.
    pub max_avg_speed_kmh: f64,
    /// Zig-zag detection looks back this many photos for its reference point.
    pub zigzag_window: usize,
    /// A jump must be longer than this (metres) to be a zig-zag.
    pub zigzag_min_jump_m: f64,
    /// …and must bring the track back to under this fraction of the previous distance
    /// from the reference point.
    pub zigzag_ratio: f64,
    /// Optional frame spacing: drop photos closer than this to the last kept one
    /// (MTPDU offered 1–20 m). Thins out time-lapse captures taken while slow or stopped.
    pub min_distance_m: Option<f64>,
    /// Optional frame spacing: drop photos taken sooner than this many seconds after the
    /// last kept one (MTPDU offered 1–20 s).
    pub min_interval_s: Option<f64>,
    /// Added to every heading (wrapping at 360), for a camera mounted sideways or
    /// backwards: 90 = facing right of the direction of travel.
    pub heading_offset_deg: f64,
    /// Fill missing headings with the bearing to the next photo.
    pub compute_missing_headings: bool,
    /// Drop zig-zag GPS outliers.
    pub drop_outliers: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            max_time_gap_s: 60.0,
            max_distance_gap_m: 100.0,
            max_photos_per_sequence: MAPILLARY_MAX_SEQUENCE_PHOTOS,
            max_sequence_bytes: MAPILLARY_MAX_SEQUENCE_BYTES,
            max_sequence_pixels: MAPILLARY_MAX_SEQUENCE_PIXELS,
            duplicate_distance_m: 0.1,
            duplicate_angle_deg: 5.0,
            max_avg_speed_kmh: 400.0,
            zigzag_window: 5,
            zigzag_min_jump_m: 30.0,
            zigzag_ratio: 0.8,
            min_distance_m: None,
            min_interval_s: None,
            heading_offset_deg: 0.0,
            compute_missing_headings: true,
            drop_outliers: true,
        }
    }
}

/// What photos of one sequence have in common: photos are only ever sequenced with
/// others from the same folder and the same camera, as mapillary_tools does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct GroupKey {
    /// The photos' parent directory.
    pub folder: PathBuf,
    pub make: Option<String>,
    pub model: Option<String>,
    /// Camera serial number (mapillary_tools' "camera UUID").
    pub serial: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

impl GroupKey {
    pub fn of(photo: &PhotoMeta) -> Self {
        GroupKey {
            folder: photo.path.parent().map(PathBuf::from).unwrap_or_default(),
            make: photo.make.clone(),
            model: photo.model.clone(),
            serial: photo.serial.clone(),
            width: photo.width,
            height: photo.height,
        }
    }
}

/// Why a sequence starts where it does: shown in the UI so a user who expected one
/// sequence understands why there are three.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SplitReason {
    /// The first sequence of its folder/camera group.
    FirstInGroup,
    /// More than `max_time_gap_s` since the previous photo.
    TimeGap { seconds: f64 },
    /// More than `max_distance_gap_m` from the previous photo.
    DistanceGap { metres: f64 },
    /// The previous sequence reached `max_photos_per_sequence`.
    MaxPhotos { limit: usize },
    /// The previous sequence reached `max_sequence_bytes`.
    MaxBytes { limit: u64 },
    /// The previous sequence reached `max_sequence_pixels`.
    MaxPixels { limit: u64 },
}

/// Why a photo is not in any sequence. Machine-readable; `DroppedPhoto::message` says the
/// same for humans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DropReason {
    /// Same place (and heading) as the kept photo `of` (a file name).
    Duplicate {
        of: String,
        distance_m: f64,
        /// `None` when either photo has no heading (then distance alone decides).
        heading_delta: Option<f64>,
    },
    /// Closer than `min_distance_m` to the kept photo `of`.
    TooClose {
        of: String,
        distance_m: f64,
        min_distance_m: f64,
    },
    /// Sooner than `min_interval_s` after the kept photo `of`.
    TooSoon {
        of: String,
        seconds: f64,
        min_interval_s: f64,
    },
    /// GPS position (0, 0): no fix.
    NullIsland,
    /// A GPS glitch: the track jumps away by `jump_m` and comes straight back.
    ZigzagOutlier {
        jump_m: f64,
    },
    /// The photo's whole sequence moves impossibly fast.
    SequenceTooFast {
        speed_kmh: f64,
    },
    NoPosition,
    NoTime,
    /// NaN, infinite, or outside [-90, 90] / [-180, 180].
    InvalidCoordinates,
}

/// A photo that will be uploaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct PlannedPhoto {
    /// The metadata to upload with: capture time possibly spread apart from identical
    /// neighbours (then `time_source` is `Adjusted`), heading offset applied and missing
    /// headings filled (then `heading_source` is `Computed`).
    pub photo: PhotoMeta,
    /// The capture time as read, before spreading, so the UI can show both.
    pub original_captured_at_ms: i64,
    /// 0-based position within its sequence (KartaView's `sequenceIndex`).
    pub sequence_index: usize,
}

/// One sequence to upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct PlannedSequence {
    /// 0-based position in the plan (mapillary_tools' `MAPSequenceUUID` "0", "1", …).
    pub index: usize,
    pub group: GroupKey,
    /// In capture order; never empty.
    pub photos: Vec<PlannedPhoto>,
    pub split_reason: SplitReason,
    /// True when more than half of the photos are equirectangular 360° photos.
    pub is_360: bool,
    /// Length of the track through the photos, in metres.
    pub distance_m: f64,
    pub started_at_ms: i64,
    pub ended_at_ms: i64,
    pub bbox: Bbox,
    /// Sum of the photos' file sizes.
    pub total_bytes: u64,
}

/// A photo that will not be uploaded, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct DroppedPhoto {
    pub photo: PhotoMeta,
    pub reason: DropReason,
    /// Specific and human: says what the photo was compared with and what to do.
    pub message: String,
}

/// The outcome of [`plan_sequences`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Plan {
    pub sequences: Vec<PlannedSequence>,
    pub dropped: Vec<DroppedPhoto>,
    /// The options the plan was made with, so it can be re-made or explained later.
    pub options: PlanOptions,
}

/// Counts for the plan preview's header line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct PlanSummary {
    /// Photos given to the planner.
    pub photos: usize,
    pub kept: usize,
    pub dropped: usize,
    pub sequences: usize,
    pub duplicates: usize,
    pub too_close: usize,
    pub too_soon: usize,
    pub null_island: usize,
    pub zigzag_outliers: usize,
    pub sequence_too_fast: usize,
    pub no_position: usize,
    pub no_time: usize,
    pub invalid_coordinates: usize,
    pub panoramas: usize,
    pub total_bytes: u64,
    pub distance_m: f64,
}

impl Plan {
    pub fn summary(&self) -> PlanSummary {
        let mut s = PlanSummary {
            sequences: self.sequences.len(),
            dropped: self.dropped.len(),
            ..PlanSummary::default()
        };
        for seq in &self.sequences {
            s.kept += seq.photos.len();
            s.panoramas += seq.photos.iter().filter(|p| p.photo.is_360).count();
            s.total_bytes += seq.total_bytes;
            s.distance_m += seq.distance_m;
        }
        for d in &self.dropped {
            let counter = match d.reason {
                DropReason::Duplicate { .. } => &mut s.duplicates,
                DropReason::TooClose { .. } => &mut s.too_close,
                DropReason::TooSoon { .. } => &mut s.too_soon,
                DropReason::NullIsland => &mut s.null_island,
                DropReason::ZigzagOutlier { .. } => &mut s.zigzag_outliers,
                DropReason::SequenceTooFast { .. } => &mut s.sequence_too_fast,
                DropReason::NoPosition => &mut s.no_position,
                DropReason::NoTime => &mut s.no_time,
                DropReason::InvalidCoordinates => &mut s.invalid_coordinates,
            };
            *counter += 1;
        }
        s.photos = s.kept + s.dropped;
        s
    }

    /// All kept photos, in plan order.
    pub fn kept(&self) -> impl Iterator<Item = &PlannedPhoto> {
        self.sequences.iter().flat_map(|s| s.photos.iter())
    }
}
