//! GPX tracks, and placing photos on them by time (mapillary_tools' GPX geotagging).
//!
//! GPX 1.0 and 1.1 are read the same way: every `<trkpt>` and `<rtept>` with a `<time>` is a
//! point of one track, sorted by time (segments and routes are merged; waypoints are not part
//! of a track). A photo is placed by linear interpolation between the two points around its
//! time; more than 1 ms outside the track's span is an error, as in mapillary_tools.

use super::{HeadingSource, PhotoMeta, PositionSource};
use chrono::{DateTime, NaiveDateTime};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// How far outside the track's span a time may be and still get the end point.
pub const TOLERANCE_MS: i64 = 1;

/// One timed point of a track.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrackPoint {
    /// UTC milliseconds since the Unix epoch.
    pub time_ms: i64,
    pub lat: f64,
    pub lon: f64,
    /// Metres above sea level, if the GPX has `<ele>`.
    pub ele: Option<f64>,
}

/// Timed points sorted by time (never empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    points: Vec<TrackPoint>,
}

/// Why a GPX file cannot be used. Line numbers are 1-based, as editors show them.
#[derive(Debug, thiserror::Error)]
pub enum GpxError {
    #[error("cannot read the GPX file {}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the GPX file is not well-formed XML at line {line} ({message}): re-export it from the GPS app"
    )]
    Xml { line: usize, message: String },
    #[error("this is not a GPX file: the root element is <{found}>, expected <gpx>")]
    NotGpx { found: String },
    #[error("GPX line {line}: <{element}> has no {attribute} attribute")]
    MissingAttribute {
        line: usize,
        element: String,
        attribute: &'static str,
    },
    #[error("GPX line {line}: {what} {value:?} is not a valid value")]
    BadValue {
        line: usize,
        what: &'static str,
        value: String,
    },
    #[error("GPX line {line}: time {value:?} is not an ISO 8601 time such as 2024-05-01T10:00:00Z")]
    BadTime { line: usize, value: String },
    #[error("the GPX file has no track or route points (<trkpt>/<rtept>)")]
    NoPoints,
    #[error(
        "none of the GPX file's {count} points has a <time>: photos are placed on a track by time, so this track cannot be used"
    )]
    NoTimes { count: usize },
}

impl GpxError {
    /// Stable snake_case id for the UI and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            GpxError::Unreadable { .. } => "gpx_unreadable",
            GpxError::Xml { .. } => "gpx_xml",
            GpxError::NotGpx { .. } => "not_gpx",
            GpxError::MissingAttribute { .. } => "gpx_missing_attribute",
            GpxError::BadValue { .. } => "gpx_bad_value",
            GpxError::BadTime { .. } => "gpx_bad_time",
            GpxError::NoPoints => "gpx_no_points",
            GpxError::NoTimes { .. } => "gpx_no_times",
        }
    }
}

/// A time outside the track's span (beyond the tolerance), and by how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "side")]
pub enum OutsideTrack {
    Before { by_ms: i64, track_start_ms: i64 },
    After { by_ms: i64, track_end_ms: i64 },
}

impl Track {
    /// A track from points in any order (sorted here by time, stable). `None` if empty.
    pub fn from_points(mut points: Vec<TrackPoint>) -> Option<Track> {
        if points.is_empty() {
            return None;
        }
        points.sort_by_key(|p| p.time_ms);
        Some(Track { points })
    }

    pub fn points(&self) -> &[TrackPoint] {
        &self.points
    }

    fn first(&self) -> &TrackPoint {
        &self.points[0]
    }

    fn last(&self) -> &TrackPoint {
        &self.points[self.points.len() - 1]
    }

    pub fn start_ms(&self) -> i64 {
        self.first().time_ms
    }

    pub fn end_ms(&self) -> i64 {
        self.last().time_ms
    }

    /// (lat, lon, ele) at `time_ms`, interpolated between the surrounding points; `None`
    /// more than [`TOLERANCE_MS`] outside the track.
    pub fn position_at(&self, time_ms: i64) -> Option<(f64, f64, Option<f64>)> {
        self.locate(time_ms).ok()
    }

    /// The direction of travel at `t`: the initial bearing of the track segment around it
    /// (the first or last segment outside the track), as mapillary_tools takes it when it
    /// geotags from GPX. `None` for a single point, or a segment that does not move
    /// (mapillary_tools would say 0°: a heading for standing still is noise).
    pub fn bearing_at(&self, t: i64) -> Option<f64> {
        let n = self.points.len();
        if n < 2 {
            return None;
        }
        let i = self
            .points
            .partition_point(|p| p.time_ms <= t)
            .clamp(1, n - 1);
        let (a, b) = (&self.points[i - 1], &self.points[i]);
        if a.lat == b.lat && a.lon == b.lon {
            return None;
        }
        Some(crate::geo::initial_bearing_deg(a.lat, a.lon, b.lat, b.lon))
    }

    /// Like [`Track::position_at`], but says how far outside the track a time is.
    pub fn locate(&self, t: i64) -> Result<(f64, f64, Option<f64>), OutsideTrack> {
        let (first, last) = (self.first(), self.last());
        if t < first.time_ms.saturating_sub(TOLERANCE_MS) {
            return Err(OutsideTrack::Before {
                by_ms: first.time_ms - t,
                track_start_ms: first.time_ms,
            });
        }
        if t > last.time_ms.saturating_add(TOLERANCE_MS) {
            return Err(OutsideTrack::After {
                by_ms: t - last.time_ms,
                track_end_ms: last.time_ms,
            });
        }
        if t <= first.time_ms {
            return Ok((first.lat, first.lon, first.ele));
        }
        if t >= last.time_ms {
            return Ok((last.lat, last.lon, last.ele));
        }
        // first.time_ms < t < last.time_ms, so 1 <= i <= len - 1 and a.time <= t < b.time.
        let i = self.points.partition_point(|p| p.time_ms <= t);
        let (a, b) = (&self.points[i - 1], &self.points[i]);
        let f = (t - a.time_ms) as f64 / (b.time_ms - a.time_ms) as f64;
        let lat = a.lat + (b.lat - a.lat) * f;
        let mut dlon = b.lon - a.lon;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        let mut lon = a.lon + dlon * f;
        if lon > 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        let ele = match (a.ele, b.ele) {
            (Some(x), Some(y)) => Some(x + (y - x) * f),
            (x, y) => {
                if f < 0.5 {
                    x
                } else {
                    y
                }
            }
        };
        Ok((lat, lon, ele))
    }
}

/// Why one photo was not placed by [`geotag`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum MissReason {
    NoTime,
    Outside {
        outside: OutsideTrack,
        offset_ms: i64,
    },
}

impl MissReason {
    /// Stable id: `no_time` or `outside_track`.
    pub fn code(&self) -> &'static str {
        match self {
            MissReason::NoTime => "no_time",
            MissReason::Outside { .. } => "outside_track",
        }
    }

    /// A sentence fragment saying what is wrong and what to do, e.g. "was taken 3 min 20 s
    /// before the GPX track starts (2024-05-01 08:00:00 UTC): if the camera clock is off,
    /// set a time offset".
    pub fn message(&self) -> String {
        match self {
            MissReason::NoTime => {
                "has no capture time, so it cannot be placed on the GPX track".to_string()
            }
            MissReason::Outside { outside, offset_ms } => {
                let (by, side, edge, when) = match outside {
                    OutsideTrack::Before {
                        by_ms,
                        track_start_ms,
                    } => (*by_ms, "before", "starts", *track_start_ms),
                    OutsideTrack::After {
                        by_ms,
                        track_end_ms,
                    } => (*by_ms, "after", "ends", *track_end_ms),
                };
                let applied = if *offset_ms == 0 {
                    String::new()
                } else {
                    format!(" with the time offset of {}", signed_duration(*offset_ms))
                };
                format!(
                    "was taken {} {side} the GPX track {edge} ({}){applied}: if the camera clock is off, set a time offset (--time-offset); otherwise use a GPX track that covers it",
                    human_duration(by),
                    utc_text(when)
                )
            }
        }
    }
}

/// A photo [`geotag`] could not place: its index in the slice and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeotagMiss {
    pub index: usize,
    pub reason: MissReason,
}

/// Places every photo of `photos` that has a capture time on `track`, looking up
/// `captured_at_ms + offset_ms` (the offset corrects a camera clock that is off; the
/// capture time itself is left as it is). Sets lat/lon, the altitude when the track has
/// elevations, and `position_source = Gpx`, replacing any EXIF position. A photo without a
/// heading gets the track's direction at its time ([`Track::bearing_at`]), as mapillary_tools
/// does; the planner computes what is still missing from the final positions.
///
/// Returns the photos that could not be placed, which are left unchanged.
#[must_use = "photos outside the track are not placed; report them"]
pub fn geotag(photos: &mut [PhotoMeta], track: &Track, offset_ms: i64) -> Vec<GeotagMiss> {
    let mut misses = Vec::new();
    for (index, p) in photos.iter_mut().enumerate() {
        let Some(t) = p.captured_at_ms else {
            misses.push(GeotagMiss {
                index,
                reason: MissReason::NoTime,
            });
            continue;
        };
        let at = t.saturating_add(offset_ms);
        match track.locate(at) {
            Ok((lat, lon, ele)) => {
                p.lat = Some(lat);
                p.lon = Some(lon);
                if ele.is_some() {
                    p.altitude = ele;
                }
                p.position_source = Some(PositionSource::Gpx);
                if p.heading.is_none()
                    && let Some(bearing) = track.bearing_at(at)
                {
                    p.heading = Some(bearing);
                    p.heading_source = Some(HeadingSource::GpxTrack);
                }
            }
            Err(outside) => misses.push(GeotagMiss {
                index,
                reason: MissReason::Outside { outside, offset_ms },
            }),
        }
    }
    misses
}

/// Reads and parses a GPX file.
pub fn read_gpx(path: &Path) -> Result<Track, GpxError> {
    let bytes = fs::read(path).map_err(|source| GpxError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    parse_gpx(&String::from_utf8_lossy(&bytes))
}

/// 1-based line of a byte offset.
fn line_at(text: &str, pos: u64) -> usize {
    let end = usize::try_from(pos).unwrap_or(usize::MAX).min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// An ISO 8601 / RFC 3339 time; one without a zone is UTC, as the GPX schema says.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc().timestamp_millis())
}

struct PointInProgress {
    element: String,
    depth: usize,
    lat: f64,
    lon: f64,
    ele: Option<f64>,
    time_ms: Option<i64>,
}

fn local_name(e: &BytesStart<'_>) -> String {
    e.local_name().into_inner().to_string()
}

fn coordinate(
    e: &BytesStart<'_>,
    attr: &'static str,
    max: f64,
    line: usize,
) -> Result<f64, GpxError> {
    let element = local_name(e);
    let raw = e
        .attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.local_name().into_inner() == attr)
        .map(|a| a.value.trim().to_string())
        .ok_or_else(|| GpxError::MissingAttribute {
            line,
            element: element.clone(),
            attribute: attr,
        })?;
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= max => Ok(v),
        _ => Err(GpxError::BadValue {
            line,
            what: if attr == "lat" {
                "latitude"
            } else {
                "longitude"
            },
            value: raw,
        }),
    }
}

/// Parses GPX text into a track of its timed points.
pub fn parse_gpx(text: &str) -> Result<Track, GpxError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut point: Option<PointInProgress> = None;
    // The child of the current point whose text we collect ("ele" or "time").
    let mut field: Option<String> = None;
    let mut buf = String::new();
    let mut points = Vec::new();
    let mut untimed = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| GpxError::Xml {
            line: line_at(text, reader.error_position()),
            message: e.to_string(),
        })?;
        let line = line_at(text, reader.buffer_position());
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = local_name(e);
                let empty = matches!(event, Event::Empty(_));
                if !seen_root {
                    seen_root = true;
                    if name != "gpx" {
                        return Err(GpxError::NotGpx { found: name });
                    }
                }
                if point.is_none() && (name == "trkpt" || name == "rtept") {
                    point = Some(PointInProgress {
                        lat: coordinate(e, "lat", 90.0, line)?,
                        lon: coordinate(e, "lon", 180.0, line)?,
                        element: name.clone(),
                        depth,
                        ele: None,
                        time_ms: None,
                    });
                } else if let Some(p) = &point
                    && depth == p.depth + 1
                    && (name == "ele" || name == "time")
                    && !empty
                {
                    field = Some(name.clone());
                    buf.clear();
                }
                if empty {
                    if point
                        .as_ref()
                        .is_some_and(|p| p.depth == depth && p.element == name)
                    {
                        finish(point.take(), &mut points, &mut untimed);
                    }
                } else {
                    depth += 1;
                }
            }
            Event::Text(t) if field.is_some() => buf.push_str(&t.xml10_content()),
            Event::CData(t) if field.is_some() => buf.push_str(&t.xml10_content()),
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = e.local_name().into_inner().to_string();
                if let Some(f) = field.take_if(|f| *f == name)
                    && let Some(p) = &mut point
                {
                    let value = buf.trim();
                    if f == "ele" {
                        if !value.is_empty() {
                            p.ele = Some(
                                value
                                    .parse::<f64>()
                                    .ok()
                                    .filter(|v| v.is_finite())
                                    .ok_or_else(|| GpxError::BadValue {
                                        line,
                                        what: "elevation",
                                        value: value.to_string(),
                                    })?,
                            );
                        }
                    } else if !value.is_empty() {
                        p.time_ms = Some(parse_time(value).ok_or_else(|| GpxError::BadTime {
                            line,
                            value: value.to_string(),
                        })?);
                    }
                }
                if point
                    .as_ref()
                    .is_some_and(|p| p.depth == depth && p.element == name)
                {
                    finish(point.take(), &mut points, &mut untimed);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(GpxError::NotGpx {
            found: "(none: the file is empty)".into(),
        });
    }
    match Track::from_points(points) {
        Some(t) => Ok(t),
        None if untimed > 0 => Err(GpxError::NoTimes { count: untimed }),
        None => Err(GpxError::NoPoints),
    }
}

fn finish(p: Option<PointInProgress>, points: &mut Vec<TrackPoint>, untimed: &mut usize) {
    let Some(p) = p else { return };
    match p.time_ms {
        Some(time_ms) => points.push(TrackPoint {
            time_ms,
            lat: p.lat,
            lon: p.lon,
            ele: p.ele,
        }),
        None => *untimed += 1,
    }
}

/// "2 h 5 min", "3 min 20 s", "12.5 s", "40 ms".
pub fn human_duration(ms: i64) -> String {
    let ms = ms.unsigned_abs();
    if ms < 1000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        let s = ms as f64 / 1000.0;
        return if ms.is_multiple_of(1000) {
            format!("{} s", ms / 1000)
        } else {
            format!("{s:.1} s")
        };
    }
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min {sec} s")
    }
}

fn signed_duration(ms: i64) -> String {
    let sign = if ms < 0 { '-' } else { '+' };
    format!("{sign}{}", human_duration(ms))
}

fn utc_text(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const GPX11: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
  <wpt lat="5" lon="5"><time>2024-05-01T07:00:00Z</time></wpt>
  <trk><name>walk &amp; talk</name>
    <trkseg>
      <trkpt lat="48.0" lon="2.0"><ele>100</ele><time>2024-05-01T08:00:00Z</time></trkpt>
      <trkpt lat="48.001" lon="2.002"><ele>110.5</ele><time>2024-05-01T10:00:10+02:00</time>
        <extensions><time>1999-01-01T00:00:00Z</time></extensions></trkpt>
    </trkseg>
    <trkseg>
      <trkpt lat="48.002" lon="2.004"><time>2024-05-01T08:00:20.500Z</time></trkpt>
      <trkpt lat="49" lon="3"/>
    </trkseg>
  </trk>
</gpx>"#;

    /// 2024-05-01T08:00:00Z
    const T0: i64 = 1_714_550_400_000;

    #[test]
    fn parses_gpx_11_tracks_and_skips_waypoints_and_untimed_points() {
        let t = parse_gpx(GPX11).unwrap();
        assert_eq!(t.points().len(), 3);
        assert_eq!(t.start_ms(), T0);
        assert_eq!(t.points()[1].time_ms, T0 + 10_000);
        assert_eq!(t.points()[1].ele, Some(110.5));
        assert_eq!(t.end_ms(), T0 + 20_500);
        assert_eq!(t.points()[2].ele, None);
    }

    #[test]
    fn parses_gpx_10_routes_unsorted_and_zoneless_times() {
        let gpx = r#"<gpx version="1.0" xmlns="http://www.topografix.com/GPX/1/0"><rte>
            <rtept lat="-10" lon="-20"><time>2024-05-01T08:00:10</time></rtept>
            <rtept lat="-11" lon="-21"><time>2024-05-01T08:00:00Z</time></rtept>
            </rte></gpx>"#;
        let t = parse_gpx(gpx).unwrap();
        assert_eq!(t.points()[0].lat, -11.0);
        assert_eq!(t.end_ms(), T0 + 10_000);
    }

    #[test]
    fn interpolates_between_surrounding_points() {
        let t = parse_gpx(GPX11).unwrap();
        let (lat, lon, ele) = t.position_at(T0 + 5_000).unwrap();
        assert!((lat - 48.0005).abs() < 1e-12);
        assert!((lon - 2.001).abs() < 1e-12);
        assert!((ele.unwrap() - 105.25).abs() < 1e-12);
        assert_eq!(
            t.position_at(T0 + 10_000).unwrap(),
            (48.001, 2.002, Some(110.5))
        );
        // One side without elevation: the nearer point's.
        assert_eq!(t.position_at(T0 + 11_000).unwrap().2, Some(110.5));
        assert_eq!(t.position_at(T0 + 20_000).unwrap().2, None);
    }

    #[test]
    fn one_millisecond_tolerance_at_both_ends() {
        let t = parse_gpx(GPX11).unwrap();
        assert_eq!(t.position_at(T0 - 1).unwrap().0, 48.0);
        assert!(t.position_at(T0 - 2).is_none());
        assert_eq!(t.position_at(T0 + 20_501).unwrap().0, 48.002);
        assert!(t.position_at(T0 + 20_502).is_none());
        assert_eq!(
            t.locate(T0 - 5_000),
            Err(OutsideTrack::Before {
                by_ms: 5_000,
                track_start_ms: T0
            })
        );
    }

    #[test]
    fn interpolation_crosses_the_antimeridian_the_short_way() {
        let t = Track::from_points(vec![
            TrackPoint {
                time_ms: 0,
                lat: 0.0,
                lon: 179.0,
                ele: None,
            },
            TrackPoint {
                time_ms: 1000,
                lat: 0.0,
                lon: -179.0,
                ele: None,
            },
        ])
        .unwrap();
        let (_, lon, _) = t.position_at(750).unwrap();
        assert!((lon - -179.5).abs() < 1e-9, "{lon}");
        assert!(Track::from_points(Vec::new()).is_none());
    }

    #[test]
    fn geotag_applies_offset_and_reports_misses() {
        let t = parse_gpx(GPX11).unwrap();
        let mut photos = vec![
            PhotoMeta::new("a.jpg"),
            PhotoMeta::new("b.jpg"),
            PhotoMeta::new("c.jpg"),
        ];
        // The camera is 1 h slow: 07:00:05 on the camera is 08:00:05 UTC.
        photos[0].captured_at_ms = Some(T0 - 3_600_000 + 5_000);
        photos[0].altitude = Some(1.0);
        photos[1].captured_at_ms = Some(T0 + 3_600_000);
        let misses = geotag(&mut photos, &t, 3_600_000);
        assert!((photos[0].lat.unwrap() - 48.0005).abs() < 1e-12);
        assert!((photos[0].altitude.unwrap() - 105.25).abs() < 1e-12);
        assert_eq!(photos[0].position_source, Some(PositionSource::Gpx));
        assert_eq!(photos[0].captured_at_ms, Some(T0 - 3_600_000 + 5_000));
        // Heading: the direction of the track segment the photo falls in.
        let pts = t.points();
        let want = crate::geo::initial_bearing_deg(pts[0].lat, pts[0].lon, pts[1].lat, pts[1].lon);
        assert!((photos[0].heading.unwrap() - want).abs() < 1e-9);
        assert_eq!(photos[0].heading_source, Some(HeadingSource::GpxTrack));
        assert_eq!(photos[1].lat, None);
        assert_eq!(misses.len(), 2);
        assert_eq!(misses[0].index, 1);
        assert_eq!(misses[0].reason.code(), "outside_track");
        let msg = misses[0].reason.message();
        assert!(
            msg.contains("was taken 1 h 59 min after the GPX track ends (2024-05-01 08:00:20 UTC)"),
            "{msg}"
        );
        assert!(msg.contains("with the time offset of +1 h 0 min"), "{msg}");
        assert!(msg.contains("--time-offset"), "{msg}");
        assert_eq!(misses[1].reason, MissReason::NoTime);
        assert_eq!(misses[1].reason.code(), "no_time");
    }

    #[test]
    fn errors_say_where_and_what() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "<gpx><trk><trkseg>\n<trkpt lon=\"2\"><time>2024-05-01T08:00:00Z</time></trkpt>",
                "gpx_missing_attribute",
                "line 2: <trkpt> has no lat",
            ),
            (
                "<gpx>\n<trk><trkseg><trkpt lat=\"91\" lon=\"2\"/></trkseg></trk></gpx>",
                "gpx_bad_value",
                "line 2: latitude \"91\"",
            ),
            (
                "<gpx>\n<trk><trkseg><trkpt lat=\"1\" lon=\"abc\"/></trkseg></trk></gpx>",
                "gpx_bad_value",
                "longitude \"abc\"",
            ),
            (
                "<gpx><trk><trkseg><trkpt lat=\"1\" lon=\"2\">\n\n<time>yesterday</time></trkpt></trkseg></trk></gpx>",
                "gpx_bad_time",
                "line 3: time \"yesterday\"",
            ),
            (
                "<gpx><trk><trkseg><trkpt lat=\"1\" lon=\"2\"><ele>high</ele></trkpt></trkseg></trk></gpx>",
                "gpx_bad_value",
                "elevation \"high\"",
            ),
            ("<gpx>\n<trk>\n</trkseg></gpx>", "gpx_xml", "line 3"),
            ("<kml><Document/></kml>", "not_gpx", "root element is <kml>"),
            ("", "not_gpx", "expected <gpx>"),
            (
                "<gpx><wpt lat=\"1\" lon=\"2\"/></gpx>",
                "gpx_no_points",
                "no track or route points",
            ),
            (
                "<gpx><trk><trkseg><trkpt lat=\"1\" lon=\"2\"/></trkseg></trk></gpx>",
                "gpx_no_times",
                "1 points has a <time>",
            ),
        ];
        for (gpx, code, text) in cases {
            let e = parse_gpx(gpx).unwrap_err();
            assert_eq!(e.code(), *code, "{gpx}: {e}");
            assert!(e.to_string().contains(text), "{gpx}: {e}");
        }
        let e = read_gpx(Path::new("/nonexistent/track.gpx")).unwrap_err();
        assert_eq!(e.code(), "gpx_unreadable");
        assert!(e.to_string().contains("/nonexistent/track.gpx"));
    }

    #[test]
    fn reads_fixture_gpx_from_disk_with_bom() {
        let dir = tempfile::tempdir().unwrap();
        let photos =
            crate::photo::fixture::track_photos(10, &crate::photo::fixture::TrackSpec::default());
        let path = dir.path().join("t.gpx");
        fs::write(
            &path,
            format!("\u{feff}{}", crate::photo::fixture::gpx_for(&photos)),
        )
        .unwrap();
        let t = read_gpx(&path).unwrap();
        assert_eq!(t.points().len(), 10);
        assert_eq!(t.points()[3].time_ms, photos[3].captured_at_ms.unwrap());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(40), "40 ms");
        assert_eq!(human_duration(5_000), "5 s");
        assert_eq!(human_duration(12_500), "12.5 s");
        assert_eq!(human_duration(200_000), "3 min 20 s");
        assert_eq!(human_duration(-7_500_000), "2 h 5 min");
        assert_eq!(human_duration(90_000_000), "1 d 1 h");
    }
}
