//! Reading photo metadata (EXIF, XMP GPano) without decoding images.
//!
//! - [`read_photo`] reads one JPEG's metadata (only the header segments, never the image data).
//! - [`scan::scan_folder`] reads a whole folder in parallel and sorts files into photos,
//!   rejected files (each with a code and a message saying what to do) and ignored sidecars.
//! - [`gpx`] parses GPX tracks and geotags photos that lack a position.
//! - [`rewrite`] produces the upload copy of a JPEG with a new EXIF `ImageDescription`.
//! - `fixture` writes small valid JPEGs for tests, benchmarks and `mtp dev gen-photos`
//!   (only built for tests or with the `fixtures` feature, never in the desktop app).

#[cfg(any(test, feature = "fixtures"))]
pub mod fixture;
pub mod gpx;
mod jpeg;
mod read;
pub mod rewrite;
pub mod scan;

#[cfg(test)]
mod bad_input_tests;
mod xmp;

pub use read::{PhotoError, ReadOptions, read_photo, read_photo_bytes};

use serde::{Deserialize, Serialize, Serializer};
use std::path::{Path, PathBuf};

/// Where a photo's capture time came from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    GpsTime,
    DateTimeOriginal,
    DateTimeDigitized,
    DateTime,
    /// Set by the user or interpolated (e.g. identical timestamps spread apart).
    Adjusted,
}

/// Where a photo's position came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionSource {
    Exif,
    Gpx,
}

/// Where a photo's heading came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadingSource {
    GpsImgDirection,
    GpsTrack,
    XmpPose,
    /// The direction of the GPX track at the photo's time (the segment around it), as
    /// mapillary_tools geotags from GPX.
    GpxTrack,
    /// Bearing to the next photo, computed while planning.
    Computed,
}

/// Everything we know about one photo file. Produced by the reader, consumed by the planner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoMeta {
    /// Serialized as (lossy) UTF-8 text so that one odd file name cannot make a whole scan
    /// report fail to serialize; the in-memory `PathBuf` stays exact for opening the file.
    #[serde(serialize_with = "serialize_path_lossy")]
    pub path: PathBuf,
    /// Base name, lossy UTF-8 for display.
    pub file_name: String,
    pub file_size: u64,
    /// Capture time in milliseconds since the Unix epoch, UTC.
    pub captured_at_ms: Option<i64>,
    pub time_source: Option<TimeSource>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub position_source: Option<PositionSource>,
    /// Metres above sea level (negative below).
    pub altitude: Option<f64>,
    /// Degrees clockwise from true north, [0, 360).
    pub heading: Option<f64>,
    pub heading_source: Option<HeadingSource>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// EXIF orientation 1..=8.
    pub orientation: Option<u16>,
    /// Equirectangular 360° photo (XMP GPano ProjectionType).
    pub is_360: bool,
    /// GPS horizontal accuracy in metres, if recorded.
    pub gps_accuracy_m: Option<f64>,
    /// What was wrong in the EXIF but did not stop us reading what we need (e.g. the
    /// missing next-IFD offsets piexif leaves): shown with the photo, never a reason to drop it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exif_warnings: Vec<String>,
}

impl PhotoMeta {
    /// A photo with only a path; every field unknown. Handy for tests and builders.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        PhotoMeta {
            path,
            file_name,
            file_size: 0,
            captured_at_ms: None,
            time_source: None,
            lat: None,
            lon: None,
            position_source: None,
            altitude: None,
            heading: None,
            heading_source: None,
            make: None,
            model: None,
            serial: None,
            width: None,
            height: None,
            orientation: None,
            is_360: false,
            gps_accuracy_m: None,
            exif_warnings: Vec::new(),
        }
    }

    /// True when the photo has both coordinates, i.e. it can go into a sequence.
    pub fn has_position(&self) -> bool {
        self.lat.is_some() && self.lon.is_some()
    }
}

/// Serde helper: a path as lossy UTF-8. `serde`'s own impl errors on non-UTF-8 paths, which
/// would make a whole report unserializable because of one badly named file.
pub fn serialize_path_lossy<S: Serializer>(path: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// Serde helper: a list of paths as lossy UTF-8 strings (see [`serialize_path_lossy`]).
pub fn serialize_paths_lossy<S: Serializer>(paths: &[PathBuf], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(paths.iter().map(|p| p.to_string_lossy()))
}

/// The file name of `path` as lossy UTF-8, for messages and display.
pub(crate) fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string_lossy().into_owned())
}
