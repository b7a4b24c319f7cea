//! Reading photo metadata (EXIF, XMP GPano) without decoding images.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// Bearing to the next photo, computed while planning.
    Computed,
}

/// Everything we know about one photo file. Produced by the reader, consumed by the planner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoMeta {
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
        }
    }
}
