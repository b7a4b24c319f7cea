//! Small but valid geotagged JPEG files, for tests (in every crate) and for the CLI's
//! benchmark folders.
//!
//! Each file is: SOI, an APP1 Exif segment built with kamadak-exif's writer (IFD0, Exif IFD,
//! GPS IFD), an optional APP1 XMP GPano packet, then the tables and scan of a real 16×16
//! baseline JPEG produced once by ImageMagick (`convert -size 16x16 xc:'#7f8a96' -type
//! TrueColor -sampling-factor 2x2 -strip`), so exiftool, PIL, mapillary_tools and GeoVisio
//! accept and decode it. The EXIF pixel dimensions are whatever the fixture asks for; the
//! coded image stays 16×16 (about 1 kB a file), which keeps 10,000-photo folders cheap.
//!
//! Built for tests and with the `fixtures` feature: `mtp dev gen-photos`, the benchmarks and
//! cross-crate tests use it; the desktop app does not.

use chrono::{DateTime, Timelike};
use exif::{Field, In, Rational, Tag, Value};
use rayon::prelude::*;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::jpeg::{EXIF_HEADER, MAX_SEGMENT_PAYLOAD, XMP_HEADER};
pub use super::rewrite::tiff_from_fields;

/// DQT, SOF0, DHT, SOS, scan data and EOI of a 16×16 YCbCr 4:2:0 baseline JPEG (everything
/// after its SOI and JFIF APP0).
const BODY_16X16: &[u8] = &[
    0xff, 0xdb, 0x00, 0x43, 0x00, 0x08, 0x06, 0x06, 0x07, 0x06, 0x05, 0x08, 0x07, 0x07, 0x07, 0x09,
    0x09, 0x08, 0x0a, 0x0c, 0x14, 0x0d, 0x0c, 0x0b, 0x0b, 0x0c, 0x19, 0x12, 0x13, 0x0f, 0x14, 0x1d,
    0x1a, 0x1f, 0x1e, 0x1d, 0x1a, 0x1c, 0x1c, 0x20, 0x24, 0x2e, 0x27, 0x20, 0x22, 0x2c, 0x23, 0x1c,
    0x1c, 0x28, 0x37, 0x29, 0x2c, 0x30, 0x31, 0x34, 0x34, 0x34, 0x1f, 0x27, 0x39, 0x3d, 0x38, 0x32,
    0x3c, 0x2e, 0x33, 0x34, 0x32, 0xff, 0xdb, 0x00, 0x43, 0x01, 0x09, 0x09, 0x09, 0x0c, 0x0b, 0x0c,
    0x18, 0x0d, 0x0d, 0x18, 0x32, 0x21, 0x1c, 0x21, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32,
    0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0x32, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00,
    0x10, 0x00, 0x10, 0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xc4, 0x00,
    0x15, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x04, 0xff, 0xc4, 0x00, 0x14, 0x10, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xc4, 0x00, 0x14, 0x01, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
    0xff, 0xc4, 0x00, 0x14, 0x11, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xda, 0x00, 0x0c, 0x03, 0x01, 0x00, 0x02, 0x11, 0x03,
    0x11, 0x00, 0x3f, 0x00, 0xa0, 0x03, 0x89, 0xff, 0xd9,
];

/// Everything a fixture photo may carry. `None` leaves the tag out, which is how tests build
/// photos without GPS, without time, without heading…
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FixturePhoto {
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Metres; negative writes GPSAltitudeRef = 1 (below sea level).
    pub altitude: Option<f64>,
    /// UTC milliseconds. Written as DateTimeOriginal (+ SubSecTimeOriginal, milliseconds) in
    /// the camera's wall-clock time, and as IFD0 DateTime.
    pub captured_at_ms: Option<i64>,
    /// The camera's UTC offset: shifts the wall-clock time and writes OffsetTimeOriginal.
    /// `None` writes the UTC wall-clock time with no offset tag (read it back with
    /// `ReadOptions { camera_utc_offset_minutes: Some(0) }`).
    pub utc_offset_minutes: Option<i32>,
    /// Also write GPSDateStamp + GPSTimeStamp (UTC, millisecond precision).
    pub use_gps_time: bool,
    /// Written as GPSImgDirection (true north).
    pub heading: Option<f64>,
    pub make: Option<String>,
    pub model: Option<String>,
    /// Written as BodySerialNumber.
    pub serial: Option<String>,
    /// Written as PixelXDimension / PixelYDimension.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub orientation: Option<u16>,
    /// Written as GPSHPositioningError.
    pub gps_accuracy_m: Option<f64>,
    /// Adds an XMP GPano packet with ProjectionType="equirectangular" (attribute form).
    pub is_360: bool,
    pub image_description: Option<String>,
    /// Written as ImageUniqueID: makes otherwise identical photos differ byte-wise so that a
    /// server's byte-identical dedup does not fire.
    pub unique_id: Option<String>,
}

impl FixturePhoto {
    /// A photo at a position and time with nothing else set.
    pub fn at(lat: f64, lon: f64, captured_at_ms: i64) -> Self {
        FixturePhoto {
            lat: Some(lat),
            lon: Some(lon),
            captured_at_ms: Some(captured_at_ms),
            ..Default::default()
        }
    }
}

fn ascii(tag: Tag, ifd: In, s: &str) -> Field {
    Field {
        tag,
        ifd_num: ifd,
        value: Value::Ascii(vec![s.as_bytes().to_vec()]),
    }
}

fn rationals(tag: Tag, v: Vec<Rational>) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Rational(v),
    }
}

/// A non-negative value as a rational with `den` as denominator.
fn rational(v: f64, den: u32) -> Rational {
    let num = (v.abs() * f64::from(den)).round();
    // Saturating float-to-int cast: values beyond u32 are clamped, never UB.
    Rational {
        num: num as u32,
        denom: den,
    }
}

/// Degrees as degrees/minutes/seconds rationals, seconds to the microsecond (≈3 cm).
fn dms(v: f64) -> Vec<Rational> {
    let a = v.abs();
    let d = a.floor();
    let m_full = (a - d) * 60.0;
    let m = m_full.floor();
    let s = (m_full - m) * 60.0;
    vec![rational(d, 1), rational(m, 1), rational(s, 1_000_000)]
}

/// The EXIF fields of a fixture photo.
pub fn exif_fields(p: &FixturePhoto) -> Vec<Field> {
    let mut f = vec![
        rationals(Tag::XResolution, vec![Rational { num: 72, denom: 1 }]),
        rationals(Tag::YResolution, vec![Rational { num: 72, denom: 1 }]),
        Field {
            tag: Tag::ResolutionUnit,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![2]),
        },
        Field {
            tag: Tag::YCbCrPositioning,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![1]),
        },
        Field {
            tag: Tag::ExifVersion,
            ifd_num: In::PRIMARY,
            value: Value::Undefined(b"0232".to_vec(), 0),
        },
        Field {
            tag: Tag::ComponentsConfiguration,
            ifd_num: In::PRIMARY,
            value: Value::Undefined(vec![1, 2, 3, 0], 0),
        },
        Field {
            tag: Tag::FlashpixVersion,
            ifd_num: In::PRIMARY,
            value: Value::Undefined(b"0100".to_vec(), 0),
        },
        Field {
            tag: Tag::ColorSpace,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![1]),
        },
    ];
    let text = [
        (Tag::Make, &p.make),
        (Tag::Model, &p.model),
        (Tag::BodySerialNumber, &p.serial),
        (Tag::ImageDescription, &p.image_description),
        (Tag::ImageUniqueID, &p.unique_id),
    ];
    for (tag, v) in text {
        if let Some(s) = v {
            f.push(ascii(tag, In::PRIMARY, s));
        }
    }
    if let (Some(w), Some(h)) = (p.width, p.height) {
        f.push(Field {
            tag: Tag::PixelXDimension,
            ifd_num: In::PRIMARY,
            value: Value::Long(vec![w]),
        });
        f.push(Field {
            tag: Tag::PixelYDimension,
            ifd_num: In::PRIMARY,
            value: Value::Long(vec![h]),
        });
    }
    if let Some(o) = p.orientation {
        f.push(Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![o]),
        });
    }
    if let Some(utc) = p.captured_at_ms.and_then(DateTime::from_timestamp_millis) {
        let offset = p.utc_offset_minutes.unwrap_or(0);
        let wall = utc + chrono::Duration::minutes(i64::from(offset));
        let dt = wall.format("%Y:%m:%d %H:%M:%S").to_string();
        f.push(ascii(Tag::DateTimeOriginal, In::PRIMARY, &dt));
        f.push(ascii(Tag::DateTime, In::PRIMARY, &dt));
        f.push(ascii(
            Tag::SubSecTimeOriginal,
            In::PRIMARY,
            &format!("{:03}", utc.timestamp_subsec_millis()),
        ));
        if let Some(off) = p.utc_offset_minutes {
            let sign = if off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs();
            f.push(ascii(
                Tag::OffsetTimeOriginal,
                In::PRIMARY,
                &format!("{sign}{:02}:{:02}", a / 60, a % 60),
            ));
        }
        if p.use_gps_time {
            f.push(ascii(
                Tag::GPSDateStamp,
                In::PRIMARY,
                &utc.format("%Y:%m:%d").to_string(),
            ));
            let secs = f64::from(utc.second()) + f64::from(utc.timestamp_subsec_millis()) / 1000.0;
            let (h, m) = (utc.hour(), utc.minute());
            f.push(rationals(
                Tag::GPSTimeStamp,
                vec![
                    Rational { num: h, denom: 1 },
                    Rational { num: m, denom: 1 },
                    rational(secs, 1000),
                ],
            ));
        }
    }
    if p.lat.is_some() || p.lon.is_some() || p.altitude.is_some() {
        f.push(Field {
            tag: Tag::GPSVersionID,
            ifd_num: In::PRIMARY,
            value: Value::Byte(vec![2, 3, 0, 0]),
        });
    }
    if let Some(lat) = p.lat {
        f.push(ascii(
            Tag::GPSLatitudeRef,
            In::PRIMARY,
            if lat < 0.0 { "S" } else { "N" },
        ));
        f.push(rationals(Tag::GPSLatitude, dms(lat)));
    }
    if let Some(lon) = p.lon {
        f.push(ascii(
            Tag::GPSLongitudeRef,
            In::PRIMARY,
            if lon < 0.0 { "W" } else { "E" },
        ));
        f.push(rationals(Tag::GPSLongitude, dms(lon)));
    }
    if let Some(alt) = p.altitude {
        f.push(Field {
            tag: Tag::GPSAltitudeRef,
            ifd_num: In::PRIMARY,
            value: Value::Byte(vec![u8::from(alt < 0.0)]),
        });
        f.push(rationals(Tag::GPSAltitude, vec![rational(alt, 1000)]));
    }
    if let Some(h) = p.heading {
        f.push(ascii(Tag::GPSImgDirectionRef, In::PRIMARY, "T"));
        f.push(rationals(Tag::GPSImgDirection, vec![rational(h, 1000)]));
    }
    if let Some(acc) = p.gps_accuracy_m {
        f.push(rationals(
            Tag::GPSHPositioningError,
            vec![rational(acc, 1000)],
        ));
    }
    f
}

/// An XMP packet declaring an equirectangular GPano panorama of `width`×`height`, with the
/// properties as attributes of `rdf:Description` or (`element_form`) as child elements.
pub fn gpano_xmp(width: u32, height: u32, element_form: bool) -> String {
    let props = [
        ("ProjectionType", "equirectangular".to_string()),
        ("UsePanoramaViewer", "True".to_string()),
        ("FullPanoWidthPixels", width.to_string()),
        ("FullPanoHeightPixels", height.to_string()),
        ("CroppedAreaImageWidthPixels", width.to_string()),
        ("CroppedAreaImageHeightPixels", height.to_string()),
        ("CroppedAreaLeftPixels", "0".to_string()),
        ("CroppedAreaTopPixels", "0".to_string()),
    ];
    let body = if element_form {
        let children: String = props
            .iter()
            .map(|(k, v)| format!("\n    <GPano:{k}>{v}</GPano:{k}>"))
            .collect();
        format!(
            "<rdf:Description rdf:about=\"\" xmlns:GPano=\"http://ns.google.com/photos/1.0/panorama/\">{children}\n   </rdf:Description>"
        )
    } else {
        let attrs: String = props
            .iter()
            .map(|(k, v)| format!("\n    GPano:{k}=\"{v}\""))
            .collect();
        format!(
            "<rdf:Description rdf:about=\"\" xmlns:GPano=\"http://ns.google.com/photos/1.0/panorama/\"{attrs}/>"
        )
    };
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n  {body}\n </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>"
    )
}

fn push_segment(out: &mut Vec<u8>, marker: u8, parts: &[&[u8]]) -> io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > MAX_SEGMENT_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "segment payload of {len} bytes exceeds the JPEG limit of {MAX_SEGMENT_PAYLOAD}"
            ),
        ));
    }
    out.extend_from_slice(&[0xFF, marker]);
    // len ≤ 65533 was checked just above.
    out.extend_from_slice(&((len + 2) as u16).to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(())
}

/// A JPEG with the given raw TIFF as its EXIF (none if `None`) and an optional XMP packet.
/// For hand-made odd or broken EXIF in tests.
pub fn jpeg_with_raw_exif(tiff: Option<&[u8]>, xmp: Option<&str>) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(BODY_16X16.len() + 1024);
    out.extend_from_slice(&[0xFF, 0xD8]);
    if let Some(t) = tiff {
        push_segment(&mut out, 0xE1, &[EXIF_HEADER, t])?;
    }
    if let Some(x) = xmp {
        push_segment(&mut out, 0xE1, &[XMP_HEADER, x.as_bytes()])?;
    }
    out.extend_from_slice(BODY_16X16);
    Ok(out)
}

/// A JPEG with exactly these EXIF fields and an optional XMP packet.
pub fn jpeg_with_fields(fields: &[Field], xmp: Option<&str>) -> io::Result<Vec<u8>> {
    let tiff = tiff_from_fields(fields)?;
    jpeg_with_raw_exif(Some(&tiff), xmp)
}

/// The bytes of a fixture photo. An `image_description` too long for one JPEG segment is
/// cut to fit.
pub fn fixture_bytes(p: &FixturePhoto) -> Vec<u8> {
    let xmp = p.is_360.then(|| {
        let w = p.width.unwrap_or(5760);
        gpano_xmp(w, p.height.unwrap_or(w / 2), false)
    });
    let mut photo = p.clone();
    if let Some(d) = &mut photo.image_description
        && d.len() > 60_000
    {
        let mut cut = 60_000;
        while !d.is_char_boundary(cut) {
            cut -= 1;
        }
        d.truncate(cut);
    }
    // Cannot fail: IFD0 always has fields, no value type is Unknown, and the segment fits.
    jpeg_with_fields(&exif_fields(&photo), xmp.as_deref())
        .expect("fixture EXIF always encodes and fits in one segment")
}

/// `jpeg` with `bytes` more of header: APP2 segments (up to 64 KiB each) right after its
/// first segment (the EXIF), where cameras put their previews and colour profiles.
pub fn with_header_pad(jpeg: &[u8], bytes: usize) -> Vec<u8> {
    // SOI, then the first segment: marker (2 bytes) and its length (2 bytes, counting itself).
    let first_end = match jpeg.get(4..6) {
        Some(len) => 4 + usize::from(u16::from_be_bytes([len[0], len[1]])),
        None => return jpeg.to_vec(),
    };
    let mut out = Vec::with_capacity(jpeg.len() + bytes + 4 * (bytes / 65_000 + 1));
    out.extend_from_slice(&jpeg[..first_end.min(jpeg.len())]);
    let mut left = bytes;
    while left > 0 {
        let payload = left.min(65_000);
        out.extend_from_slice(&[0xFF, 0xE2]);
        out.extend_from_slice(&((payload + 2) as u16).to_be_bytes());
        out.resize(out.len() + payload, 0x5A);
        left -= payload;
    }
    out.extend_from_slice(&jpeg[first_end.min(jpeg.len())..]);
    out
}

/// Writes a fixture photo to `path`.
pub fn write_jpeg(path: &Path, p: &FixturePhoto) -> io::Result<()> {
    fs::write(path, fixture_bytes(p))
}

/// A straight-ish walk or drive: where it starts, how far apart and how often photos are.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackSpec {
    pub start_lat: f64,
    pub start_lon: f64,
    /// UTC milliseconds of the first photo.
    pub start_time_ms: i64,
    /// Distance between consecutive photos, metres.
    pub spacing_m: f64,
    /// Time between consecutive photos, milliseconds.
    pub interval_ms: i64,
    /// General direction of travel, degrees; the path wiggles a few degrees around it.
    pub bearing_deg: f64,
    /// Write GPSImgDirection along the direction of travel.
    pub with_heading: bool,
    pub altitude: Option<f64>,
    pub utc_offset_minutes: Option<i32>,
    pub use_gps_time: bool,
    pub make: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub is_360: bool,
    /// File names are `{file_prefix}{index:05}.jpg`.
    pub file_prefix: String,
}

impl Default for TrackSpec {
    /// A walk in central Paris: 3 m and 1 s apart, CEST camera clock, a 12 MP camera.
    fn default() -> Self {
        TrackSpec {
            start_lat: 48.8566,
            start_lon: 2.3522,
            start_time_ms: 1_714_550_400_000, // 2024-05-01T08:00:00Z
            spacing_m: 3.0,
            interval_ms: 1000,
            bearing_deg: 45.0,
            with_heading: true,
            altitude: Some(35.0),
            utc_offset_minutes: Some(120),
            use_gps_time: false,
            make: Some("MTP".into()),
            model: Some("Fixture Cam".into()),
            serial: Some("FX-0001".into()),
            width: Some(4000),
            height: Some(3000),
            is_360: false,
            file_prefix: "IMG_".into(),
        }
    }
}

/// The photos of a track, in order. Each has a distinct `unique_id`.
pub fn track_photos(count: usize, spec: &TrackSpec) -> Vec<FixturePhoto> {
    const M_PER_DEG: f64 = 111_320.0;
    let (mut lat, mut lon) = (spec.start_lat, spec.start_lon);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let bearing = spec.bearing_deg + 3.0 * (i as f64 / 10.0).sin();
        out.push(FixturePhoto {
            lat: Some(lat),
            lon: Some(lon),
            altitude: spec.altitude,
            captured_at_ms: Some(spec.start_time_ms + i as i64 * spec.interval_ms),
            utc_offset_minutes: spec.utc_offset_minutes,
            use_gps_time: spec.use_gps_time,
            heading: spec.with_heading.then(|| bearing.rem_euclid(360.0)),
            make: spec.make.clone(),
            model: spec.model.clone(),
            serial: spec.serial.clone(),
            width: spec.width,
            height: spec.height,
            orientation: Some(1),
            gps_accuracy_m: None,
            is_360: spec.is_360,
            image_description: None,
            unique_id: Some(format!("{:016x}{:016x}", spec.start_time_ms as u64, i)),
        });
        let b = bearing.to_radians();
        lat += spec.spacing_m * b.cos() / M_PER_DEG;
        let cos_lat = lat.to_radians().cos().abs().max(1e-6);
        lon += spec.spacing_m * b.sin() / (M_PER_DEG * cos_lat);
        if lon > 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        lat = lat.clamp(-90.0, 90.0);
    }
    out
}

/// The file name of photo `index` of a track of `count` photos.
fn track_file_name(spec: &TrackSpec, index: usize, count: usize) -> String {
    let width = count.saturating_sub(1).to_string().len().max(5);
    format!("{}{index:0width$}.jpg", spec.file_prefix)
}

/// Writes `count` photos along `spec` into `dir` (created if needed) and returns their
/// paths in order. Files are written in parallel: 10,000 photos take well under a second.
pub fn write_track_folder(dir: &Path, count: usize, spec: &TrackSpec) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let photos = track_photos(count, spec);
    let paths: Vec<PathBuf> = (0..count)
        .map(|i| dir.join(track_file_name(spec, i, count)))
        .collect();
    paths
        .par_iter()
        .zip(photos.par_iter())
        .try_for_each(|(path, p)| write_jpeg(path, p))?;
    Ok(paths)
}

/// A GPX 1.1 track through the positions and times of `photos` (those with both), e.g. to
/// geotag copies of them written without GPS.
pub fn gpx_for(photos: &[FixturePhoto]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\" creator=\"mtp fixture\" xmlns=\"http://www.topografix.com/GPX/1/1\">\n <trk><name>fixture</name><trkseg>\n",
    );
    for p in photos {
        let (Some(lat), Some(lon), Some(t)) = (p.lat, p.lon, p.captured_at_ms) else {
            continue;
        };
        let Some(time) = DateTime::from_timestamp_millis(t) else {
            continue;
        };
        s.push_str(&format!("  <trkpt lat=\"{lat:.8}\" lon=\"{lon:.8}\">"));
        if let Some(ele) = p.altitude {
            s.push_str(&format!("<ele>{ele:.3}</ele>"));
        }
        s.push_str(&format!(
            "<time>{}</time></trkpt>\n",
            time.format("%Y-%m-%dT%H:%M:%S%.3fZ")
        ));
    }
    s.push_str(" </trkseg></trk>\n</gpx>\n");
    s
}

/// A valid photo cut inside its EXIF segment, as a failed copy leaves it
/// (`read_photo` → `truncated`).
pub fn write_truncated(path: &Path) -> io::Result<()> {
    let bytes = fixture_bytes(&FixturePhoto::at(48.0, 2.0, 1_714_550_400_000));
    fs::write(path, &bytes[..bytes.len().min(60)])
}

/// A valid JPEG with no EXIF at all, as editors and messengers leave them (→ `no_exif`).
pub fn write_no_exif(path: &Path) -> io::Result<()> {
    fs::write(path, jpeg_with_raw_exif(None, None)?)
}

/// Kinds of broken EXIF, each as found in the wild.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenExif {
    /// IFD0's Exif pointer and its next-IFD offset point back at IFD0 (→ `broken_exif`).
    IfdLoop,
    /// The TIFF header is not "II*\0"/"MM\0*" (→ `broken_exif`).
    BadTiffHeader,
    /// GPS latitude/longitude rationals with zero denominators, as cameras without a fix
    /// write them; the time is valid (→ `bad_gps`, geotaggable).
    ZeroDenominatorGps,
    /// Latitude 95° (→ `bad_gps`).
    OutOfRangeGps,
}

/// The raw TIFF bytes of a [`BrokenExif`] kind.
pub fn broken_exif_tiff(kind: BrokenExif) -> io::Result<Vec<u8>> {
    match kind {
        BrokenExif::IfdLoop => {
            let mut t = Vec::new();
            t.extend_from_slice(b"MM\0\x2a\0\0\0\x08"); // IFD0 at offset 8
            t.extend_from_slice(&2u16.to_be_bytes());
            // Make = "Abc" (ASCII, count 4, inline)
            t.extend_from_slice(&[0x01, 0x0F, 0x00, 0x02, 0, 0, 0, 4, b'A', b'b', b'c', 0]);
            // ExifIFDPointer (LONG) → 8, i.e. IFD0 itself
            t.extend_from_slice(&[0x87, 0x69, 0x00, 0x04, 0, 0, 0, 1, 0, 0, 0, 8]);
            t.extend_from_slice(&8u32.to_be_bytes()); // next IFD → IFD0 again
            Ok(t)
        }
        BrokenExif::BadTiffHeader => Ok(b"XX\0\x2a\0\0\0\x08\0\0\0\0\0\0".to_vec()),
        BrokenExif::ZeroDenominatorGps | BrokenExif::OutOfRangeGps => {
            let mut f = exif_fields(&FixturePhoto {
                captured_at_ms: Some(1_714_550_400_000),
                utc_offset_minutes: Some(0),
                ..Default::default()
            });
            let (lat, lon) = if kind == BrokenExif::ZeroDenominatorGps {
                let zero = Rational { num: 0, denom: 0 };
                (vec![zero; 3], vec![zero; 3])
            } else {
                (dms(95.0), dms(10.0))
            };
            f.push(ascii(Tag::GPSLatitudeRef, In::PRIMARY, "N"));
            f.push(rationals(Tag::GPSLatitude, lat));
            f.push(ascii(Tag::GPSLongitudeRef, In::PRIMARY, "E"));
            f.push(rationals(Tag::GPSLongitude, lon));
            tiff_from_fields(&f)
        }
    }
}

/// Writes a JPEG whose EXIF is broken in the given way.
pub fn write_broken_exif(path: &Path, kind: BrokenExif) -> io::Result<()> {
    fs::write(
        path,
        jpeg_with_raw_exif(Some(&broken_exif_tiff(kind)?), None)?,
    )
}

/// Writes a file that is not a JPEG (the start of a PNG), whatever its name says
/// (→ `not_jpeg`, "looks like a PNG image").
pub fn write_not_a_jpeg(path: &Path) -> io::Result<()> {
    fs::write(
        path,
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0",
    )
}

/// The metadata of a walk of three photos in `folder`, a second and about 2 m apart (the
/// files are not written: for stories about the store and the engine, not reading).
pub fn walk_metas(folder: &str) -> Vec<super::PhotoMeta> {
    (0..3u32)
        .map(|i| {
            let mut p = super::PhotoMeta::new(format!("{folder}/IMG_{i}.jpg"));
            p.file_size = 1_000;
            p.captured_at_ms = Some(1_686_817_800_000 + i64::from(i) * 1000);
            p.lat = Some(48.0 + f64::from(i) * 2e-5);
            p.lon = Some(11.0);
            p
        })
        .collect()
}

/// Saves the walk of [`walk_metas`] as one sequence, as a folder's import does (or another
/// process sharing the database would), at `now`. Returns the sequence's id.
pub async fn save_walk(store: &crate::store::Store, folder: &str, now: i64) -> i64 {
    use crate::plan::{PlanOptions, plan_sequences};
    use crate::store::{NewImport, SequenceMeta};

    let plan = plan_sequences(walk_metas(folder), &PlanOptions::default());
    let import = NewImport {
        folder,
        fingerprint: folder,
        options_json: "{}",
        files_seen: 3,
    };
    let saved = store
        .save_plan(&import, &plan, &[], &SequenceMeta::default(), now)
        .await;
    #[allow(clippy::expect_used)]
    let (_, ids) = saved.expect("a fixture walk saves");
    ids[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_is_small_and_starts_like_a_camera_jpeg() {
        let b = fixture_bytes(&FixturePhoto::at(1.0, 2.0, 0));
        assert_eq!(&b[..4], &[0xFF, 0xD8, 0xFF, 0xE1]);
        assert_eq!(&b[6..12], EXIF_HEADER);
        assert!(b.ends_with(&[0xFF, 0xD9]));
        assert!(b.len() < 2048, "{}", b.len());
    }

    #[test]
    fn track_folder_writes_unique_files_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = write_track_folder(dir.path(), 25, &TrackSpec::default()).expect("write");
        assert_eq!(paths.len(), 25);
        assert!(paths.windows(2).all(|w| w[0] < w[1]));
        let a = fs::read(&paths[0]).expect("read");
        let b = fs::read(&paths[1]).expect("read");
        assert_ne!(a, b);
        assert_eq!(
            track_file_name(&TrackSpec::default(), 7, 10),
            "IMG_00007.jpg"
        );
        assert_eq!(
            track_file_name(&TrackSpec::default(), 7, 200_000),
            "IMG_000007.jpg"
        );
    }

    #[test]
    fn identical_photos_differ_only_by_unique_id() {
        let spec = TrackSpec {
            spacing_m: 0.0,
            interval_ms: 0,
            ..TrackSpec::default()
        };
        let p = track_photos(2, &spec);
        assert_ne!(fixture_bytes(&p[0]), fixture_bytes(&p[1]));
    }

    #[test]
    fn overlong_description_is_cut_to_fit() {
        let p = FixturePhoto {
            image_description: Some("é".repeat(40_000)),
            ..FixturePhoto::at(1.0, 2.0, 0)
        };
        let b = fixture_bytes(&p);
        assert!(b.len() > 60_000);
    }
}
