//! Mapillary's EXIF `ImageDescription` JSON (PROTOCOLS §2.4).
//!
//! The upload key is the md5 of the rewritten file, so this text must be byte-for-byte
//! deterministic or resuming an upload breaks. It is therefore written by hand in a fixed
//! key order rather than through a map whose order could depend on serde_json features
//! another crate enables, and numbers are printed from their rounded decimal form rather
//! than through float formatting that could change between versions.

use super::PlannedPhoto;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// Settings that are not per photo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "snake_case")]
pub struct DescriptionOptions {
    /// Written as `MAPCameraUUID` when set and non-empty.
    pub camera_uuid: Option<String>,
}

/// The `ImageDescription` for one planned photo: compact JSON, keys sorted, only the keys
/// Mapillary's schema allows (`additionalProperties:false`), and never
/// `MAPSequenceUUID` (mapillary_tools removes it before upload).
///
/// - `MAPLatitude`/`MAPLongitude`: 7 decimals; `MAPAltitude`: 3 decimals.
/// - `MAPCaptureTime`: UTC `YYYY_MM_DD_HH_MM_SS_mmm`.
/// - `MAPCompassHeading`: `{"MagneticHeading":h,"TrueHeading":h}`, 3 decimals, in [0, 360).
/// - `MAPGPSAccuracyMeters`: 3 decimals; `MAPOrientation`: only when 1–8.
///
/// Numbers print like Python's `json.dumps(round(x, n))` does for them (`52.0`, `12.5`),
/// which is what mapillary_tools writes. Non-ASCII text is `\u` escaped (as Python's
/// default `ensure_ascii` does), because EXIF `ImageDescription` is an ASCII tag.
/// A value that is missing or not finite is left out rather than written wrong; the
/// planner guarantees the required position and time.
pub fn image_description(p: &PlannedPhoto, opts: &DescriptionOptions) -> String {
    let m = &p.photo;
    let mut o = Obj::new();

    if let Some(alt) = m.altitude.filter(|a| a.is_finite()) {
        o.key("MAPAltitude");
        push_fixed(&mut o.out, alt, 3);
    }
    if let Some(uuid) = opts.camera_uuid.as_deref().filter(|u| !u.trim().is_empty()) {
        o.key("MAPCameraUUID");
        push_str(&mut o.out, uuid);
    }
    if let Some(ms) = m.captured_at_ms
        && let Some(time) = capture_time(ms)
    {
        o.key("MAPCaptureTime");
        push_str(&mut o.out, &time);
    }
    if let Some(h) = m.heading.filter(|h| h.is_finite()) {
        let h = heading_3dp(h);
        o.key("MAPCompassHeading");
        o.out.push_str("{\"MagneticHeading\":");
        push_fixed(&mut o.out, h, 3);
        o.out.push_str(",\"TrueHeading\":");
        push_fixed(&mut o.out, h, 3);
        o.out.push('}');
    }
    if let Some(make) = non_empty(m.make.as_deref()) {
        o.key("MAPDeviceMake");
        push_str(&mut o.out, make);
    }
    if let Some(model) = non_empty(m.model.as_deref()) {
        o.key("MAPDeviceModel");
        push_str(&mut o.out, model);
    }
    if let Some(name) = non_empty(Some(&m.file_name)) {
        o.key("MAPFilename");
        push_str(&mut o.out, name);
    }
    if let Some(acc) = m.gps_accuracy_m.filter(|a| a.is_finite() && *a >= 0.0) {
        o.key("MAPGPSAccuracyMeters");
        push_fixed(&mut o.out, acc, 3);
    }
    if let Some(lat) = m.lat.filter(|v| v.is_finite()) {
        o.key("MAPLatitude");
        push_fixed(&mut o.out, lat, 7);
    }
    if let Some(lon) = m.lon.filter(|v| v.is_finite()) {
        o.key("MAPLongitude");
        push_fixed(&mut o.out, lon, 7);
    }
    if let Some(orientation) = m.orientation.filter(|o| (1..=8).contains(o)) {
        o.key("MAPOrientation");
        let _ = write!(o.out, "{orientation}");
    }
    o.finish()
}

/// A JSON object written in the order keys are added (callers add them sorted).
struct Obj {
    out: String,
    empty: bool,
}

impl Obj {
    fn new() -> Self {
        let mut out = String::with_capacity(384);
        out.push('{');
        Obj { out, empty: true }
    }

    fn key(&mut self, k: &str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        push_str(&mut self.out, k);
        self.out.push(':');
    }

    fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// Heading in [0, 360) rounded to 3 decimals; 359.9996 rounds to 0, not 360.
fn heading_3dp(h: f64) -> f64 {
    let h = crate::geo::normalize_heading_deg(h);
    if format!("{h:.3}") == "360.000" {
        0.0
    } else {
        h
    }
}

/// Writes `x` rounded to `decimals` places, trailing zeros trimmed but one decimal kept
/// (`52.0`), so a number always reads as a JSON float the way Python prints it. Rust's
/// `{:.N}` rounds the exact binary value correctly, as Python's `round` does. `-0.0`
/// is written `0.0`.
fn push_fixed(out: &mut String, x: f64, decimals: usize) {
    let start = out.len();
    let _ = write!(out, "{x:.decimals$}");
    if out[start..].contains('.') {
        while out.ends_with('0') && !out.ends_with(".0") {
            out.pop();
        }
        if out.ends_with('.') {
            out.push('0');
        }
    } else {
        out.push_str(".0");
    }
    if &out[start..] == "-0.0" {
        out.replace_range(start.., "0.0");
    }
}

/// A JSON string with ASCII-only output.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0_u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// `YYYY_MM_DD_HH_MM_SS_mmm` in UTC; `None` outside the representable years.
fn capture_time(ms: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    Some(format!(
        "{:04}_{:02}_{:02}_{:02}_{:02}_{:02}_{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::photo::{HeadingSource, PhotoMeta};

    fn planned(photo: PhotoMeta) -> PlannedPhoto {
        PlannedPhoto {
            original_captured_at_ms: photo.captured_at_ms.unwrap_or(0),
            photo,
            sequence_index: 0,
        }
    }

    fn full() -> PhotoMeta {
        let mut p = PhotoMeta::new("/photos/ride/GS010042.JPG");
        // 2023-06-15T08:30:05.123Z
        p.captured_at_ms = Some(1_686_817_805_123);
        p.lat = Some(51.507_351_234_5);
        p.lon = Some(-0.127_758_3);
        p.altitude = Some(35.123_456);
        p.heading = Some(123.456_789);
        p.heading_source = Some(HeadingSource::GpsImgDirection);
        p.make = Some("GoPro".into());
        p.model = Some("MAX".into());
        p.gps_accuracy_m = Some(2.5);
        p.orientation = Some(1);
        p
    }

    #[test]
    fn full_description_exact() {
        let opts = DescriptionOptions {
            camera_uuid: Some("C3441324579251".into()),
        };
        assert_eq!(
            image_description(&planned(full()), &opts),
            concat!(
                r#"{"MAPAltitude":35.123,"MAPCameraUUID":"C3441324579251","#,
                r#""MAPCaptureTime":"2023_06_15_08_30_05_123","#,
                r#""MAPCompassHeading":{"MagneticHeading":123.457,"TrueHeading":123.457},"#,
                r#""MAPDeviceMake":"GoPro","MAPDeviceModel":"MAX","MAPFilename":"GS010042.JPG","#,
                r#""MAPGPSAccuracyMeters":2.5,"MAPLatitude":51.5073512,"MAPLongitude":-0.1277583,"#,
                r#""MAPOrientation":1}"#
            )
        );
    }

    #[test]
    fn minimal_description_exact() {
        let mut p = PhotoMeta::new("a.jpg");
        p.captured_at_ms = Some(0);
        p.lat = Some(52.0);
        p.lon = Some(13.0);
        assert_eq!(
            image_description(&planned(p), &DescriptionOptions::default()),
            r#"{"MAPCaptureTime":"1970_01_01_00_00_00_000","MAPFilename":"a.jpg","MAPLatitude":52.0,"MAPLongitude":13.0}"#
        );
    }

    #[test]
    fn keys_are_sorted_valid_json_and_allowed() {
        let opts = DescriptionOptions {
            camera_uuid: Some("x".into()),
        };
        let s = image_description(&planned(full()), &opts);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        let obj = v.as_object().unwrap();
        let keys: Vec<&String> = obj.keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        // serde_json's default map is sorted; check our text order directly too.
        let positions: Vec<usize> = keys.iter().map(|k| s.find(k.as_str()).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{s}");
        assert_eq!(keys, sorted);
        assert!(!s.contains("MAPSequenceUUID"));
        assert!(!s.contains(' '));
        for k in keys {
            assert!(k.starts_with("MAP"), "{k}");
        }
        assert!(s.is_ascii());
    }

    #[test]
    fn number_rounding() {
        let cases: [(f64, usize, &str); 12] = [
            (52.0, 7, "52.0"),
            (1.123_456_789, 7, "1.1234568"),
            (-0.000_000_04, 7, "0.0"),
            (-12.5, 3, "-12.5"),
            (100.0, 3, "100.0"),
            (0.000_5, 3, "0.001"),
            (0.000_4, 3, "0.0"),
            (179.999_999_99, 7, "180.0"),
            (-33.868_819_7, 7, "-33.8688197"),
            (1e-7, 7, "0.0000001"),
            (8848.86, 3, "8848.86"),
            (3.0e6, 3, "3000000.0"),
        ];
        for (x, d, want) in cases {
            let mut s = String::new();
            push_fixed(&mut s, x, d);
            assert_eq!(s, want, "{x} to {d}");
        }
    }

    #[test]
    fn heading_rounding_wraps() {
        let mut p = full();
        for (h, want) in [
            (359.999_6, r#"{"MagneticHeading":0.0,"TrueHeading":0.0}"#),
            (360.0, r#"{"MagneticHeading":0.0,"TrueHeading":0.0}"#),
            (-90.0, r#"{"MagneticHeading":270.0,"TrueHeading":270.0}"#),
            (0.000_4, r#"{"MagneticHeading":0.0,"TrueHeading":0.0}"#),
        ] {
            p.heading = Some(h);
            let s = image_description(&planned(p.clone()), &DescriptionOptions::default());
            assert!(s.contains(want), "{h}: {s}");
        }
    }

    #[test]
    fn omissions_and_escaping() {
        let mut p = PhotoMeta::new("/x/Straße \"1\".jpg");
        p.captured_at_ms = Some(1_700_000_000_000);
        p.lat = Some(1.0);
        p.lon = Some(2.0);
        p.altitude = Some(f64::NAN);
        p.orientation = Some(9);
        p.make = Some("   ".into());
        p.model = Some(" Pixel 7 ".into());
        p.gps_accuracy_m = Some(-1.0);
        let s = image_description(
            &planned(p),
            &DescriptionOptions {
                camera_uuid: Some(String::new()),
            },
        );
        assert_eq!(
            s,
            r#"{"MAPCaptureTime":"2023_11_14_22_13_20_000","MAPDeviceModel":"Pixel 7","MAPFilename":"Stra\u00dfe \"1\".jpg","MAPLatitude":1.0,"MAPLongitude":2.0}"#
        );
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["MAPFilename"], "Straße \"1\".jpg");
        // Astral characters become surrogate pairs.
        let mut t = String::new();
        push_str(&mut t, "📷\n");
        assert_eq!(t, r#""\ud83d\udcf7\n""#);
    }

    #[test]
    fn deterministic() {
        let p = planned(full());
        let opts = DescriptionOptions::default();
        assert_eq!(image_description(&p, &opts), image_description(&p, &opts));
    }

    #[test]
    fn capture_time_format() {
        assert_eq!(
            capture_time(1_686_817_805_007).as_deref(),
            Some("2023_06_15_08_30_05_007")
        );
        assert_eq!(capture_time(-1).as_deref(), Some("1969_12_31_23_59_59_999"));
        assert_eq!(capture_time(i64::MAX), None);
    }
}
