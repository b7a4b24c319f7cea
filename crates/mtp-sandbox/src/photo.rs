//! What the emulated servers read out of an uploaded JPEG: position, time, heading, size.

use std::io::Cursor;

use exif::{In, Tag, Value};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct PhotoMeta {
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub altitude: Option<f64>,
    pub captured_at: Option<OffsetDateTime>,
    pub heading: Option<f64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub is_pano: bool,
}

impl PhotoMeta {
    pub fn position(&self) -> Option<(f64, f64)> {
        Some((self.lat?, self.lon?))
    }

    pub fn captured_at_ms(&self) -> Option<i64> {
        self.captured_at
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
    }
}

pub(crate) fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.len() > 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
}

/// Parses the EXIF of a JPEG, tolerating the broken bits real writers leave (piexif writes
/// a non-zero next-IFD pointer in sub-IFDs, which a strict reader refuses).
fn read_exif(bytes: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new()
        .continue_on_error(true)
        .read_from_container(&mut Cursor::new(bytes))
        .or_else(|e| e.distill_partial_result(|_errors| {}))
        .ok()
}

/// Reads the plain EXIF metadata (GPS, times, heading) plus the JPEG size and GPano type.
pub(crate) fn read_meta(bytes: &[u8]) -> PhotoMeta {
    let mut meta = PhotoMeta::default();
    if let Some((w, h)) = jpeg_dimensions(bytes) {
        meta.width = Some(w);
        meta.height = Some(h);
    }
    meta.is_pano = is_equirectangular(bytes);
    let Some(exif) = read_exif(bytes) else {
        return meta;
    };
    let rational = |tag: Tag| -> Option<Vec<f64>> {
        match &exif.get_field(tag, In::PRIMARY)?.value {
            Value::Rational(v) => Some(v.iter().map(|r| r.to_f64()).collect()),
            Value::SRational(v) => Some(v.iter().map(|r| r.to_f64()).collect()),
            _ => None,
        }
    };
    let ascii = |tag: Tag| -> Option<String> {
        match &exif.get_field(tag, In::PRIMARY)?.value {
            Value::Ascii(v) => v
                .first()
                .map(|s| {
                    String::from_utf8_lossy(s)
                        .trim_end_matches('\0')
                        .trim()
                        .to_owned()
                })
                .filter(|s| !s.is_empty()),
            _ => None,
        }
    };
    let dms = |v: Vec<f64>| -> Option<f64> {
        let d = *v.first()?;
        Some(
            d + v.get(1).copied().unwrap_or(0.0) / 60.0 + v.get(2).copied().unwrap_or(0.0) / 3600.0,
        )
    };
    let lat = rational(Tag::GPSLatitude).and_then(dms);
    let lon = rational(Tag::GPSLongitude).and_then(dms);
    if let (Some(mut lat), Some(mut lon)) = (lat, lon)
        && lat.is_finite()
        && lon.is_finite()
    {
        if ascii(Tag::GPSLatitudeRef).is_some_and(|r| r.eq_ignore_ascii_case("S")) {
            lat = -lat;
        }
        if ascii(Tag::GPSLongitudeRef).is_some_and(|r| r.eq_ignore_ascii_case("W")) {
            lon = -lon;
        }
        if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
            meta.lat = Some(lat);
            meta.lon = Some(lon);
        }
    }
    if let Some(alt) = rational(Tag::GPSAltitude).and_then(|v| v.first().copied()) {
        let below = exif
            .get_field(Tag::GPSAltitudeRef, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0))
            == Some(1);
        meta.altitude = Some(if below { -alt } else { alt });
    }
    meta.heading = rational(Tag::GPSImgDirection)
        .or_else(|| rational(Tag::GPSTrack))
        .and_then(|v| v.first().copied())
        .filter(|h| h.is_finite());
    meta.make = ascii(Tag::Make);
    meta.model = ascii(Tag::Model);
    if meta.width.is_none() {
        meta.width = exif
            .get_field(Tag::PixelXDimension, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0));
        meta.height = exif
            .get_field(Tag::PixelYDimension, In::PRIMARY)
            .and_then(|f| f.value.get_uint(0));
    }
    let gps_time = ascii(Tag::GPSDateStamp).and_then(|d| {
        let t = rational(Tag::GPSTimeStamp)?;
        let date = parse_exif_date(&d)?;
        let secs = t.first()? * 3600.0 + t.get(1)? * 60.0 + t.get(2)?;
        let at = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc()
            + time::Duration::seconds_f64(secs);
        (at.year() != 1970 || at.ordinal() != 1).then_some(at)
    });
    meta.captured_at = gps_time.or_else(|| {
        let (dt_tag, sub_tag, off_tag) = [
            (
                Tag::DateTimeOriginal,
                Tag::SubSecTimeOriginal,
                Tag::OffsetTimeOriginal,
            ),
            (
                Tag::DateTimeDigitized,
                Tag::SubSecTimeDigitized,
                Tag::OffsetTimeDigitized,
            ),
            (Tag::DateTime, Tag::SubSecTime, Tag::OffsetTime),
        ]
        .into_iter()
        .find(|(t, _, _)| ascii(*t).is_some())?;
        let mut at = parse_exif_datetime(&ascii(dt_tag)?)?;
        if let Some(sub) = ascii(sub_tag)
            && let Ok(frac) = format!("0.{sub}").parse::<f64>()
        {
            at += time::Duration::seconds_f64(frac);
        }
        // With no offset the sandbox reads the time as UTC (it has no "machine local time").
        let offset = ascii(off_tag)
            .and_then(|o| parse_offset(&o))
            .unwrap_or(UtcOffset::UTC);
        Some(at.assume_offset(offset).to_offset(UtcOffset::UTC))
    });
    meta
}

/// The EXIF `ImageDescription` text of a JPEG, if it has one.
fn image_description(bytes: &[u8]) -> Option<String> {
    read_exif(bytes)?
        .get_field(Tag::ImageDescription, In::PRIMARY)
        .and_then(|f| match &f.value {
            Value::Ascii(v) => v.first().map(|s| String::from_utf8_lossy(s).into_owned()),
            Value::Undefined(v, _) => Some(String::from_utf8_lossy(v).into_owned()),
            _ => None,
        })
        .map(|d| d.trim_end_matches('\0').to_owned())
}

/// What is wrong with a photo's Mapillary description against the schema mapillary_tools
/// holds it to (PROTOCOLS §2.4: `MAPLatitude`, `MAPLongitude` and `MAPCaptureTime`
/// required, no key outside the schema), or `None` when it passes. A photo whose
/// description is not a JSON object is read from its plain EXIF instead (whether the server
/// prefers one or the other is not known), so it passes here.
pub(crate) fn mapillary_description_problem(bytes: &[u8]) -> Option<String> {
    use serde_json::Value as J;
    let desc = image_description(bytes)?;
    let Ok(J::Object(o)) = serde_json::from_str::<J>(&desc) else {
        return None;
    };
    const KEYS: [&str; 12] = [
        "MAPLatitude",
        "MAPLongitude",
        "MAPAltitude",
        "MAPCaptureTime",
        "MAPCompassHeading",
        "MAPSequenceUUID",
        "MAPDeviceMake",
        "MAPDeviceModel",
        "MAPGPSAccuracyMeters",
        "MAPCameraUUID",
        "MAPFilename",
        "MAPOrientation",
    ];
    if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Some(format!("unknown key {k} in ImageDescription"));
    }
    let number_in = |k: &str, lo: f64, hi: f64| match o.get(k) {
        Some(J::Number(n)) => n.as_f64().is_some_and(|x| (lo..=hi).contains(&x)),
        _ => false,
    };
    if !number_in("MAPLatitude", -90.0, 90.0) || !number_in("MAPLongitude", -180.0, 180.0) {
        return Some("MAPLatitude/MAPLongitude missing or out of range".into());
    }
    let time_ok = o
        .get("MAPCaptureTime")
        .and_then(J::as_str)
        .is_some_and(|t| parse_map_capture_time(t).is_some());
    if !time_ok {
        return Some("MAPCaptureTime missing or not YYYY_MM_DD_HH_MM_SS_mmm".into());
    }
    for k in ["MAPAltitude", "MAPGPSAccuracyMeters"] {
        if o.get(k).is_some_and(|v| !v.is_number()) {
            return Some(format!("{k} is not a number"));
        }
    }
    for k in [
        "MAPDeviceMake",
        "MAPDeviceModel",
        "MAPCameraUUID",
        "MAPFilename",
        "MAPSequenceUUID",
    ] {
        if o.get(k).is_some_and(|v| !v.is_string()) {
            return Some(format!("{k} is not a string"));
        }
    }
    if o.get("MAPOrientation")
        .is_some_and(|v| !(v.is_u64() || v.is_i64()))
    {
        return Some("MAPOrientation is not an integer".into());
    }
    if let Some(h) = o.get("MAPCompassHeading") {
        let ok = h.as_object().is_some_and(|h| {
            h.len() == 2
                && h.get("TrueHeading").is_some_and(J::is_number)
                && h.get("MagneticHeading").is_some_and(J::is_number)
        });
        if !ok {
            return Some("MAPCompassHeading is not {TrueHeading, MagneticHeading}".into());
        }
    }
    None
}

/// Mapillary reads the `ImageDescription` JSON that mapillary_tools writes, falling back to
/// the plain EXIF when it is missing or not JSON.
pub(crate) fn read_mapillary_meta(bytes: &[u8]) -> PhotoMeta {
    let mut meta = read_meta(bytes);
    let Some(desc) = image_description(bytes) else {
        return meta;
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&desc) else {
        return meta;
    };
    let num = |k: &str| json.get(k).and_then(serde_json::Value::as_f64);
    if let (Some(lat), Some(lon)) = (num("MAPLatitude"), num("MAPLongitude")) {
        meta.lat = Some(lat);
        meta.lon = Some(lon);
    }
    if let Some(alt) = num("MAPAltitude") {
        meta.altitude = Some(alt);
    }
    if let Some(h) = json
        .get("MAPCompassHeading")
        .and_then(|c| c.get("TrueHeading"))
        .and_then(serde_json::Value::as_f64)
    {
        meta.heading = Some(h);
    }
    if let Some(t) = json
        .get("MAPCaptureTime")
        .and_then(serde_json::Value::as_str)
        .and_then(parse_map_capture_time)
    {
        meta.captured_at = Some(t);
    }
    if let Some(m) = json
        .get("MAPDeviceMake")
        .and_then(serde_json::Value::as_str)
    {
        meta.make = Some(m.to_owned());
    }
    if let Some(m) = json
        .get("MAPDeviceModel")
        .and_then(serde_json::Value::as_str)
    {
        meta.model = Some(m.to_owned());
    }
    meta
}

/// `YYYY_MM_DD_HH_MM_SS_mmm` (UTC).
pub(crate) fn parse_map_capture_time(s: &str) -> Option<OffsetDateTime> {
    let p: Vec<u32> = s
        .split('_')
        .map(|x| x.parse().ok())
        .collect::<Option<Vec<_>>>()?;
    let [y, mo, d, h, mi, sec, ms] = p[..] else {
        return None;
    };
    let date = Date::from_calendar_date(
        i32::try_from(y).ok()?,
        Month::try_from(u8::try_from(mo).ok()?).ok()?,
        u8::try_from(d).ok()?,
    )
    .ok()?;
    let t = Time::from_hms_milli(
        u8::try_from(h).ok()?,
        u8::try_from(mi).ok()?,
        u8::try_from(sec).ok()?,
        u16::try_from(ms).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, t).assume_utc())
}

fn parse_exif_date(s: &str) -> Option<Date> {
    let mut it = s.split([':', '-']).map(|x| x.trim().parse::<u32>().ok());
    let (y, m, d) = (it.next()??, it.next()??, it.next()??);
    Date::from_calendar_date(
        i32::try_from(y).ok()?,
        Month::try_from(u8::try_from(m).ok()?).ok()?,
        u8::try_from(d).ok()?,
    )
    .ok()
}

/// `YYYY:MM:DD HH:MM:SS`.
fn parse_exif_datetime(s: &str) -> Option<PrimitiveDateTime> {
    let (d, t) = s.trim().split_once(' ')?;
    let date = parse_exif_date(d)?;
    let mut it = t.split(':').map(|x| x.trim().parse::<u8>().ok());
    let time = Time::from_hms(it.next()??, it.next()??, it.next()??).ok()?;
    Some(PrimitiveDateTime::new(date, time))
}

/// `+HH:MM` / `-HH:MM`.
fn parse_offset(s: &str) -> Option<UtcOffset> {
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = s[1..].split_once(':')?;
    UtcOffset::from_hms(
        sign * h.parse::<i8>().ok()?,
        sign * m.parse::<i8>().ok()?,
        0,
    )
    .ok()
}

/// Width and height from the first SOF marker.
pub(crate) fn jpeg_dimensions(b: &[u8]) -> Option<(u32, u32)> {
    if !is_jpeg(b) {
        return None;
    }
    let mut i = 2;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            i += 1;
            continue;
        }
        let marker = b[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if marker == 0xD8 || (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        if marker == 0xD9 || marker == 0xDA {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        let is_sof = (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker);
        if is_sof && i + 9 <= b.len() {
            let h = u16::from_be_bytes([b[i + 5], b[i + 6]]);
            let w = u16::from_be_bytes([b[i + 7], b[i + 8]]);
            return Some((u32::from(w), u32::from(h)));
        }
        i += 2 + len;
    }
    None
}

/// GPano `ProjectionType` = equirectangular in the XMP (looked for in the header only).
fn is_equirectangular(b: &[u8]) -> bool {
    let head = &b[..b.len().min(256 * 1024)];
    let needle = b"equirectangular";
    head.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_map_capture_time() {
        let t = parse_map_capture_time("2021_03_04_05_06_07_890");
        assert_eq!(
            t.map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64),
            Some(1_614_834_367_890)
        );
        assert!(parse_map_capture_time("2021_13_04_05_06_07_890").is_none());
        assert!(parse_map_capture_time("garbage").is_none());
    }

    #[test]
    fn parses_offsets() {
        assert_eq!(parse_offset("+02:00"), UtcOffset::from_hms(2, 0, 0).ok());
        assert_eq!(parse_offset("-05:30"), UtcOffset::from_hms(-5, -30, 0).ok());
    }
}
