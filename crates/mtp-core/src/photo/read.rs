//! Reading one photo's metadata the way mapillary_tools does (PROTOCOLS.md §2.5 "Inputs").
//!
//! Only the JPEG header is read (see [`super::jpeg`]); the EXIF TIFF structure is parsed with
//! kamadak-exif and the XMP packet with quick-xml.
//!
//! A photo that has a capture time but no usable GPS position is not useless: it can be placed
//! on a GPX track. Such photos come back as [`PhotoError::NoGps`] or [`PhotoError::BadGps`],
//! which carry the partly read [`PhotoMeta`]; [`PhotoError::into_geotaggable`] hands it over.
//! So `read_photo(..)?` gives only photos that are ready for a sequence, and the scanner can
//! still rescue the others.

use super::jpeg::{self, Header, WalkError};
use super::xmp;
use super::{HeadingSource, PhotoMeta, PositionSource, TimeSource, display_name};
use chrono::{LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone};
use exif::{Context, Exif, Field, In, Tag, Value};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// How to interpret what the file does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOptions {
    /// The camera clock's offset from UTC in minutes (e.g. +120 for CEST), used for EXIF
    /// times that carry no `OffsetTime*` tag. `None` means the machine's local time zone,
    /// which is what mapillary_tools assumes; set it when the photos were taken elsewhere.
    pub camera_utc_offset_minutes: Option<i32>,
}

/// Why a file cannot be used as it is. Every message names the file, says what is wrong and
/// what to do about it, and [`PhotoError::code`] gives a stable id for the UI and the CLI.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// The file could not be opened or read (missing, permission, a directory, I/O error).
    #[error("{} cannot be read ({source}): check that it exists and that you may read it", display_name(.path))]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file does not start with a JPEG SOI marker.
    #[error("{} is not a JPEG photo (it looks like {looks_like}): only JPEG photos can be uploaded; convert it to JPEG or move it out of the folder", display_name(.path))]
    NotJpeg {
        path: PathBuf,
        looks_like: &'static str,
    },
    /// The file ends inside its header, before the image data.
    #[error("{} is truncated: {detail}; copy it again from the camera or the card", display_name(.path))]
    Truncated { path: PathBuf, detail: String },
    /// The JPEG header has an impossible segment.
    #[error("{} is a damaged JPEG: {detail}; re-export it or drop it", display_name(.path))]
    CorruptJpeg { path: PathBuf, detail: String },
    /// A JPEG without any EXIF segment: neither time nor position is known.
    #[error("{} has no EXIF metadata, so its time and position are unknown: use the camera's original file (editors and messengers often strip EXIF) or drop it", display_name(.path))]
    NoExif { path: PathBuf },
    /// The EXIF structure could not be parsed, or what could be parsed lacks time or position.
    #[error("{} has broken EXIF metadata ({detail}): repair it (e.g. exiftool -all= -tagsfromfile @ -all:all FILE) or drop it", display_name(.path))]
    BrokenExif { path: PathBuf, detail: String },
    /// GPS tags exist but do not give a position (zero denominators, NaN, out of range,
    /// latitude without longitude). Cameras write such values when they had no GPS fix.
    #[error("{} has an unusable GPS position ({detail}): geotag it with a GPX track (--gpx) or drop it", display_name(&.meta.path))]
    BadGps {
        meta: Box<PhotoMeta>,
        detail: String,
    },
    /// No GPS position at all; the photo has a capture time, so a GPX track can place it.
    #[error("{} has no GPS position: geotag it with a GPX track (--gpx) or drop it", display_name(&.meta.path))]
    NoGps { meta: Box<PhotoMeta> },
    /// No usable capture time in GPS or EXIF date tags: it cannot be ordered in a sequence.
    #[error("{} has no capture time (no GPS time, DateTimeOriginal, DateTimeDigitized or DateTime): set the time with exiftool (-DateTimeOriginal=...) or drop it", display_name(&.meta.path))]
    NoTime { meta: Box<PhotoMeta> },
}

impl PhotoError {
    /// Stable snake_case id of the kind of problem, for the UI, the CLI's JSON and tests.
    pub fn code(&self) -> &'static str {
        match self {
            PhotoError::Unreadable { .. } => "unreadable",
            PhotoError::NotJpeg { .. } => "not_jpeg",
            PhotoError::Truncated { .. } => "truncated",
            PhotoError::CorruptJpeg { .. } => "corrupt_jpeg",
            PhotoError::NoExif { .. } => "no_exif",
            PhotoError::BrokenExif { .. } => "broken_exif",
            PhotoError::BadGps { .. } => "bad_gps",
            PhotoError::NoGps { .. } => "no_gps",
            PhotoError::NoTime { .. } => "no_time",
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            PhotoError::Unreadable { path, .. }
            | PhotoError::NotJpeg { path, .. }
            | PhotoError::Truncated { path, .. }
            | PhotoError::CorruptJpeg { path, .. }
            | PhotoError::NoExif { path }
            | PhotoError::BrokenExif { path, .. } => path,
            PhotoError::BadGps { meta, .. }
            | PhotoError::NoGps { meta }
            | PhotoError::NoTime { meta } => &meta.path,
        }
    }

    /// What was read before the photo was found unusable (`bad_gps`, `no_gps`, `no_time`).
    pub fn partial(&self) -> Option<&PhotoMeta> {
        match self {
            PhotoError::BadGps { meta, .. }
            | PhotoError::NoGps { meta }
            | PhotoError::NoTime { meta } => Some(meta),
            _ => None,
        }
    }

    /// The photo's metadata if only its position is missing (it has a capture time), so a
    /// GPX track can place it; otherwise the error back.
    pub fn into_geotaggable(self) -> Result<PhotoMeta, PhotoError> {
        match self {
            PhotoError::BadGps { meta, .. } | PhotoError::NoGps { meta }
                if meta.captured_at_ms.is_some() =>
            {
                Ok(*meta)
            }
            other => Err(other),
        }
    }
}

/// Reads the metadata of the JPEG at `path`: position, time, heading, camera and size.
///
/// Only the header segments up to the start of scan are read. `Ok` means the photo has a
/// position and a capture time; see [`PhotoError`] for everything else. Never panics.
pub fn read_photo(path: &Path, opts: &ReadOptions) -> Result<PhotoMeta, PhotoError> {
    let unreadable = |source| PhotoError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(unreadable)?;
    let md = file.metadata().map_err(unreadable)?;
    if md.is_dir() {
        return Err(unreadable(io::Error::other("it is a directory")));
    }
    let len = md.len();
    let mut r = BufReader::with_capacity(HEAD_FIRST_READ, HeadFile::open(file));
    let header = jpeg::walk(&mut r, len).map_err(|e| walk_error(path, e))?;
    let mut meta = PhotoMeta::new(path);
    meta.file_size = len;
    finish(meta, &header, opts)
}

/// Bytes asked of a photo's file at first: most headers (EXIF, XMP, tables, SOF) fit.
const HEAD_FIRST_READ: usize = 16 * 1024;

/// A photo's file as its header is read: the first read comes without the kernel's
/// readahead, later ones with it.
///
/// Only a photo's head is wanted, but the kernel answers a first read of 16 KiB by fetching
/// about 80 KiB, and more as a header goes on (bench/prepare-real.sh, cold: 77 KiB fetched a
/// photo for 16 asked; ~190 KiB with 48 KiB more of header). So the file is opened with
/// `POSIX_FADV_RANDOM`, which makes the disk fetch what is asked, and a header that goes on
/// past the first read (a camera's preview image, a large XMP) gets readahead back for the
/// rest rather than a disk read per segment.
struct HeadFile {
    file: File,
    readahead_off: bool,
}

impl HeadFile {
    fn open(file: File) -> HeadFile {
        let readahead_off = advise(&file, Access::FirstBytesOnly);
        HeadFile {
            file,
            readahead_off,
        }
    }
}

impl Read for HeadFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if self.readahead_off {
            self.readahead_off = false;
            advise(&self.file, Access::Readahead);
        }
        Ok(n)
    }
}

impl Seek for HeadFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
}

enum Access {
    FirstBytesOnly,
    Readahead,
}

/// Tells the kernel how the file will be read; `true` when it took the advice. Advice only:
/// where it is refused or unknown (other systems), reads are the same, only slower cold.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn advise(file: &File, access: Access) -> bool {
    use rustix::fs::{Advice, fadvise};
    let advice = match access {
        Access::FirstBytesOnly => Advice::Random,
        Access::Readahead => Advice::Normal,
    };
    fadvise(file, 0, None, advice).is_ok()
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn advise(_file: &File, _access: Access) -> bool {
    false
}

/// [`read_photo`] for a JPEG already in memory; `path` is only used to name it.
pub fn read_photo_bytes(
    path: &Path,
    jpeg: &[u8],
    opts: &ReadOptions,
) -> Result<PhotoMeta, PhotoError> {
    let mut c = Cursor::new(jpeg);
    let header = jpeg::walk(&mut c, jpeg.len() as u64).map_err(|e| walk_error(path, e))?;
    let mut meta = PhotoMeta::new(path);
    meta.file_size = jpeg.len() as u64;
    finish(meta, &header, opts)
}

fn walk_error(path: &Path, e: WalkError) -> PhotoError {
    let path = path.to_path_buf();
    match e {
        WalkError::Io(source) => PhotoError::Unreadable { path, source },
        WalkError::NotJpeg(looks_like) => PhotoError::NotJpeg { path, looks_like },
        WalkError::Truncated(detail) => PhotoError::Truncated { path, detail },
        WalkError::Corrupt(detail) => PhotoError::CorruptJpeg { path, detail },
    }
}

/// Parses the EXIF TIFF structure, keeping what can be read when some parts are broken
/// (a broken maker note must not cost the user a photo). Returns the errors met.
fn parse_exif(tiff: &[u8]) -> Result<(Exif, Vec<String>), String> {
    let data = tiff.to_vec();
    // kamadak-exif is not known to panic, but a scan of thousands of user files must not
    // abort on a parser bug: turn a panic into a broken_exif rejection.
    let parsed = catch_unwind(AssertUnwindSafe(move || {
        let mut reader = exif::Reader::new();
        reader.continue_on_error(true);
        reader.read_raw(data)
    }));
    match parsed {
        Err(_) => Err("the EXIF parser failed on it".into()),
        Ok(Ok(exif)) => Ok((exif, Vec::new())),
        Ok(Err(exif::Error::PartialResult(p))) => {
            let (exif, errors) = p.into_inner();
            Ok((exif, errors.iter().map(|e| e.to_string()).collect()))
        }
        Ok(Err(e)) => Err(e.to_string()),
    }
}

fn finish(
    mut meta: PhotoMeta,
    header: &Header,
    opts: &ReadOptions,
) -> Result<PhotoMeta, PhotoError> {
    let Some(tiff) = header.exif.as_deref() else {
        return Err(PhotoError::NoExif { path: meta.path });
    };
    let (exif, exif_errors) = match parse_exif(tiff) {
        Ok(x) => x,
        Err(detail) => {
            return Err(PhotoError::BrokenExif {
                path: meta.path,
                detail,
            });
        }
    };
    let gpano = header
        .xmp
        .as_deref()
        .map(xmp::parse_gpano)
        .unwrap_or_default();

    // Time: GPS time first, then the EXIF date tags (mapillary_tools order).
    if let Some(ms) = gps_time_ms(&exif) {
        meta.captured_at_ms = Some(ms);
        meta.time_source = Some(TimeSource::GpsTime);
    } else {
        let chain = [
            (
                TimeSource::DateTimeOriginal,
                Tag::DateTimeOriginal,
                Tag::SubSecTimeOriginal,
                Tag::OffsetTimeOriginal,
            ),
            (
                TimeSource::DateTimeDigitized,
                Tag::DateTimeDigitized,
                Tag::SubSecTimeDigitized,
                Tag::OffsetTimeDigitized,
            ),
            (
                TimeSource::DateTime,
                Tag::DateTime,
                Tag::SubSecTime,
                Tag::OffsetTime,
            ),
        ];
        for (source, dt, subsec, offset) in chain {
            if let Some(ms) = exif_time_ms(&exif, dt, subsec, offset, opts) {
                meta.captured_at_ms = Some(ms);
                meta.time_source = Some(source);
                break;
            }
        }
    }

    // Heading: GPSImgDirection, GPSTrack, then the XMP pose.
    let headings = [
        (
            first_f64(&exif, Tag::GPSImgDirection),
            HeadingSource::GpsImgDirection,
        ),
        (first_f64(&exif, Tag::GPSTrack), HeadingSource::GpsTrack),
        (gpano.pose_heading_degrees, HeadingSource::XmpPose),
    ];
    if let Some((h, src)) = headings
        .into_iter()
        .find_map(|(h, src)| h.and_then(normalize_heading).map(|h| (h, src)))
    {
        meta.heading = Some(h);
        meta.heading_source = Some(src);
    }

    meta.altitude = altitude(&exif);
    meta.gps_accuracy_m = first_f64(&exif, Tag::GPSHPositioningError).filter(|v| *v >= 0.0);
    meta.make = ascii(&exif, Tag::Make);
    meta.model = ascii(&exif, Tag::Model);
    meta.serial =
        ascii(&exif, Tag::BodySerialNumber).or_else(|| ascii(&exif, Tag(Context::Tiff, 0xC62F)));
    let size = uint_pair(&exif, Tag::PixelXDimension, Tag::PixelYDimension)
        .or_else(|| uint_pair(&exif, Tag::ImageWidth, Tag::ImageLength))
        .or(header.sof_size);
    if let Some((w, h)) = size {
        meta.width = Some(w);
        meta.height = Some(h);
    }
    meta.orientation = field(&exif, Tag::Orientation)
        .and_then(|f| f.value.get_uint(0))
        .filter(|o| (1..=8).contains(o))
        .and_then(|o| u16::try_from(o).ok());
    meta.is_360 = gpano.is_equirectangular();

    let position = gps_position(&exif);
    if let Ok(Some((lat, lon))) = position {
        meta.lat = Some(lat);
        meta.lon = Some(lon);
        meta.position_source = Some(PositionSource::Exif);
    }

    // When parts of the EXIF were unreadable and what we need is missing, the breakage is
    // the real reason: say so rather than "no time"/"no GPS". Structural slips that cost no
    // value (piexif writes child IFDs without their next-IFD offset, so whatever value
    // follows is read as one: exiftool and mapillary_tools read those files) only warn.
    let (benign, harmful): (Vec<String>, Vec<String>) = exif_errors
        .into_iter()
        .partition(|e| is_benign_exif_error(e));
    meta.exif_warnings = benign;
    meta.exif_warnings.extend(harmful.iter().cloned());
    let incomplete = meta.captured_at_ms.is_none() || !matches!(position, Ok(Some(_)));
    if incomplete && let Some(first) = harmful.first() {
        return Err(PhotoError::BrokenExif {
            path: meta.path,
            detail: first.clone(),
        });
    }
    if meta.captured_at_ms.is_none() {
        return Err(PhotoError::NoTime {
            meta: Box::new(meta),
        });
    }
    match position {
        Ok(Some(_)) => Ok(meta),
        Ok(None) => Err(PhotoError::NoGps {
            meta: Box::new(meta),
        }),
        Err(detail) => Err(PhotoError::BadGps {
            meta: Box::new(meta),
            detail,
        }),
    }
}

/// Errors kamadak-exif reports after it has read every entry of the IFD concerned.
fn is_benign_exif_error(e: &str) -> bool {
    e.contains("Unexpected next IFD")
}

fn field(exif: &Exif, tag: Tag) -> Option<&Field> {
    exif.get_field(tag, In::PRIMARY)
}

/// Why a numeric EXIF value cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumError {
    ZeroDenominator,
    NotFinite,
    NotANumber,
    Empty,
}

impl std::fmt::Display for NumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NumError::ZeroDenominator => "has a zero denominator",
            NumError::NotFinite => "is not a finite number",
            NumError::NotANumber => "is not a number",
            NumError::Empty => "is empty",
        })
    }
}

/// All numbers of a numeric field. Rationals with a zero denominator are an error rather
/// than a silent NaN or infinity.
fn numbers(value: &Value) -> Result<Vec<f64>, NumError> {
    let v: Vec<f64> = match value {
        Value::Rational(v) => v
            .iter()
            .map(|r| {
                if r.denom == 0 {
                    Err(NumError::ZeroDenominator)
                } else {
                    Ok(f64::from(r.num) / f64::from(r.denom))
                }
            })
            .collect::<Result<_, _>>()?,
        Value::SRational(v) => v
            .iter()
            .map(|r| {
                if r.denom == 0 {
                    Err(NumError::ZeroDenominator)
                } else {
                    Ok(f64::from(r.num) / f64::from(r.denom))
                }
            })
            .collect::<Result<_, _>>()?,
        Value::Byte(v) => v.iter().map(|x| f64::from(*x)).collect(),
        Value::Short(v) => v.iter().map(|x| f64::from(*x)).collect(),
        Value::Long(v) => v.iter().map(|x| f64::from(*x)).collect(),
        Value::SByte(v) => v.iter().map(|x| f64::from(*x)).collect(),
        Value::SShort(v) => v.iter().map(|x| f64::from(*x)).collect(),
        Value::SLong(v) => v.iter().map(|x| f64::from(*x)).collect(),
        Value::Float(v) => v.iter().map(|x| f64::from(*x)).collect(),
        Value::Double(v) => v.clone(),
        _ => return Err(NumError::NotANumber),
    };
    if v.is_empty() {
        return Err(NumError::Empty);
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(NumError::NotFinite);
    }
    Ok(v)
}

/// The first number of an optional field; unusable values count as absent.
fn first_f64(exif: &Exif, tag: Tag) -> Option<f64> {
    field(exif, tag)
        .and_then(|f| numbers(&f.value).ok())
        .and_then(|v| v.first().copied())
}

/// Text of an ASCII (or, leniently, UNDEFINED/BYTE) field, trimmed of NULs and spaces.
fn ascii(exif: &Exif, tag: Tag) -> Option<String> {
    let bytes: &[u8] = match &field(exif, tag)?.value {
        Value::Ascii(v) => v.iter().find(|s| !s.is_empty())?,
        Value::Undefined(v, _) | Value::Byte(v) => v,
        _ => return None,
    };
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

fn uint_pair(exif: &Exif, a: Tag, b: Tag) -> Option<(u32, u32)> {
    let a = field(exif, a)?.value.get_uint(0)?;
    let b = field(exif, b)?.value.get_uint(0)?;
    (a > 0 && b > 0).then_some((a, b))
}

/// Degrees clockwise from north in [0, 360), or None if not finite.
pub(crate) fn normalize_heading(h: f64) -> Option<f64> {
    if !h.is_finite() {
        return None;
    }
    let n = h.rem_euclid(360.0) + 0.0; // + 0.0 turns -0.0 into 0.0
    Some(if n >= 360.0 { 0.0 } else { n })
}

fn altitude(exif: &Exif) -> Option<f64> {
    let alt = first_f64(exif, Tag::GPSAltitude)?;
    let below = field(exif, Tag::GPSAltitudeRef).and_then(|f| f.value.get_uint(0)) == Some(1);
    Some(if below { -alt.abs() } else { alt })
}

/// One coordinate from its degrees/minutes/seconds and N/S or E/W reference.
fn coordinate(
    exif: &Exif,
    tag: Tag,
    ref_tag: Tag,
    negative: char,
    positive: char,
    max: f64,
    name: &str,
) -> Result<Option<f64>, String> {
    let Some(f) = field(exif, tag) else {
        return Ok(None);
    };
    let v = numbers(&f.value).map_err(|e| format!("{name} {e}"))?;
    let mut deg = v[0];
    if let Some(m) = v.get(1) {
        deg += m / 60.0;
    }
    if let Some(s) = v.get(2) {
        deg += s / 3600.0;
    }
    if !deg.is_finite() {
        return Err(format!("{name} is not a finite number"));
    }
    let r = ascii(exif, ref_tag)
        .and_then(|s| s.chars().next())
        .map(|c| c.to_ascii_uppercase());
    if r == Some(negative) {
        deg = -deg.abs();
    } else if r == Some(positive) {
        deg = deg.abs();
    }
    if deg.abs() > max {
        return Err(format!("{name} {deg} is outside ±{max}"));
    }
    Ok(Some(deg))
}

/// `Ok(None)`: no GPS position tags at all. `Err`: tags that do not make a position.
fn gps_position(exif: &Exif) -> Result<Option<(f64, f64)>, String> {
    let lat = coordinate(
        exif,
        Tag::GPSLatitude,
        Tag::GPSLatitudeRef,
        'S',
        'N',
        90.0,
        "latitude",
    )?;
    let lon = coordinate(
        exif,
        Tag::GPSLongitude,
        Tag::GPSLongitudeRef,
        'W',
        'E',
        180.0,
        "longitude",
    )?;
    match (lat, lon) {
        (Some(lat), Some(lon)) => Ok(Some((lat, lon))),
        (None, None) => Ok(None),
        (Some(_), None) => Err("latitude without longitude".into()),
        (None, Some(_)) => Err("longitude without latitude".into()),
    }
}

/// All-ASCII-digit slice as a number.
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u32, |acc, d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })
}

/// "YYYY:MM:DD" (also "YYYY-MM-DD").
fn parse_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() < 10 || !matches!(b[4], b':' | b'-') || b[7] != b[4] {
        return None;
    }
    let y = i32::try_from(digits(&b[0..4])?).ok()?;
    NaiveDate::from_ymd_opt(y, digits(&b[5..7])?, digits(&b[8..10])?)
}

/// "YYYY:MM:DD HH:MM:SS" (also with '-' and 'T'); anything after the seconds is ignored.
fn parse_exif_datetime(s: &str) -> Option<NaiveDateTime> {
    let b = s.trim().as_bytes();
    if b.len() < 19 || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    parse_date(&b[..10])?.and_hms_opt(
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    )
}

/// SubSecTime digits as milliseconds: "5" is 500 ms, "05" 50 ms, "123456" 123 ms.
fn parse_subsec_ms(s: &str) -> Option<i64> {
    let d: Vec<u8> = s
        .trim()
        .bytes()
        .take_while(u8::is_ascii_digit)
        .take(3)
        .collect();
    if d.is_empty() {
        return None;
    }
    let mut ms = i64::from(digits(&d)?);
    for _ in d.len()..3 {
        ms *= 10;
    }
    Some(ms)
}

/// "+HH:MM", "-HHMM" or "Z" as minutes east of UTC.
fn parse_offset_minutes(s: &str) -> Option<i32> {
    let b = s.trim().as_bytes();
    if b == b"Z" {
        return Some(0);
    }
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = match b.len() {
        6 if b[3] == b':' => (digits(&b[1..3])?, digits(&b[4..6])?),
        5 => (digits(&b[1..3])?, digits(&b[3..5])?),
        3 => (digits(&b[1..3])?, 0),
        _ => return None,
    };
    if h > 18 || m > 59 {
        return None;
    }
    Some(sign * i32::try_from(h * 60 + m).ok()?)
}

/// A wall-clock time to UTC milliseconds, with a known offset or the machine's time zone.
fn wall_clock_to_utc_ms(naive: NaiveDateTime, offset_minutes: Option<i32>) -> i64 {
    let wall = naive.and_utc().timestamp_millis();
    match offset_minutes {
        Some(off) => wall - i64::from(off) * 60_000,
        None => match chrono::Local.from_local_datetime(&naive) {
            LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => dt.timestamp_millis(),
            // In a daylight-saving gap: use the offset in force just after it.
            LocalResult::None => {
                let off = chrono::Local.offset_from_utc_datetime(&naive).fix();
                wall - i64::from(off.local_minus_utc()) * 1000
            }
        },
    }
}

fn exif_time_ms(exif: &Exif, dt: Tag, subsec: Tag, offset: Tag, opts: &ReadOptions) -> Option<i64> {
    let naive = parse_exif_datetime(&ascii(exif, dt)?)?;
    let ms = ascii(exif, subsec)
        .and_then(|s| parse_subsec_ms(&s))
        .unwrap_or(0);
    let off = ascii(exif, offset)
        .and_then(|s| parse_offset_minutes(&s))
        .or(opts.camera_utc_offset_minutes);
    Some(wall_clock_to_utc_ms(naive, off) + ms)
}

/// GPSDateStamp + GPSTimeStamp in UTC. 1970-01-01 is what receivers without a fix write,
/// so it is ignored (as mapillary_tools does).
fn gps_time_ms(exif: &Exif) -> Option<i64> {
    let date = parse_date(ascii(exif, Tag::GPSDateStamp)?.as_bytes())?;
    if date == NaiveDate::from_ymd_opt(1970, 1, 1)? {
        return None;
    }
    let t = numbers(&field(exif, Tag::GPSTimeStamp)?.value).ok()?;
    let (&h, &m, &s) = (t.first()?, t.get(1)?, t.get(2)?);
    if !(0.0..24.0).contains(&h) || !(0.0..60.0).contains(&m) || !(0.0..61.0).contains(&s) {
        return None;
    }
    let start = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
    // The ranges above bound this to less than a day of milliseconds: the cast is exact.
    let ms = ((h * 3600.0 + m * 60.0 + s) * 1000.0).round() as i64;
    Some(start + ms)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::photo::fixture::{self, BrokenExif, FixturePhoto};
    use exif::Rational;
    use std::path::Path;

    /// 2024-05-01T08:00:00.123Z
    const T: i64 = 1_714_550_400_123;
    const UTC: ReadOptions = ReadOptions {
        camera_utc_offset_minutes: Some(0),
    };

    fn read(bytes: &[u8], opts: &ReadOptions) -> Result<PhotoMeta, PhotoError> {
        read_photo_bytes(Path::new("test.jpg"), bytes, opts)
    }

    fn full() -> FixturePhoto {
        FixturePhoto {
            lat: Some(48.858_370_1),
            lon: Some(2.294_481_3),
            altitude: Some(35.25),
            captured_at_ms: Some(T),
            utc_offset_minutes: Some(120),
            use_gps_time: false,
            heading: Some(123.456),
            make: Some("Make Co".into()),
            model: Some("Model 9".into()),
            serial: Some("SN-42".into()),
            width: Some(4000),
            height: Some(3000),
            orientation: Some(6),
            gps_accuracy_m: Some(4.5),
            is_360: false,
            image_description: Some("hello".into()),
            unique_id: None,
        }
    }

    /// A header far past the first read (an EXIF of 40 KB, then 150 KiB of segments that
    /// are skipped, then the XMP): read from its file, every part of it is found, as when
    /// read from memory.
    #[test]
    fn a_header_longer_than_the_first_read_is_read_whole_from_its_file() {
        let photo = FixturePhoto {
            is_360: true,
            image_description: Some("x".repeat(40_000)),
            ..full()
        };
        let bytes = fixture::with_header_pad(&fixture::fixture_bytes(&photo), 150 * 1024);
        assert!(bytes.len() > 10 * HEAD_FIRST_READ);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long_header.jpg");
        std::fs::write(&path, &bytes).unwrap();

        let from_file = read_photo(&path, &UTC).unwrap();
        let from_memory = read_photo_bytes(&path, &bytes, &UTC).unwrap();
        assert!(
            from_file.is_360,
            "the XMP after the skipped segments was read"
        );
        assert_eq!(from_file.model.as_deref(), Some("Model 9"));
        assert_eq!(from_file, from_memory);
    }

    fn close(a: Option<f64>, b: f64, eps: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < eps)
    }

    fn base_fields() -> Vec<Field> {
        fixture::exif_fields(&FixturePhoto {
            lat: Some(10.0),
            lon: Some(20.0),
            ..Default::default()
        })
    }

    fn ascii_field(tag: Tag, s: &str) -> Field {
        Field {
            tag,
            ifd_num: In::PRIMARY,
            value: Value::Ascii(vec![s.as_bytes().to_vec()]),
        }
    }

    fn rat(tag: Tag, v: &[(u32, u32)]) -> Field {
        Field {
            tag,
            ifd_num: In::PRIMARY,
            value: Value::Rational(
                v.iter()
                    .map(|&(num, denom)| Rational { num, denom })
                    .collect(),
            ),
        }
    }

    #[test]
    fn round_trips_every_field() {
        let bytes = fixture::fixture_bytes(&full());
        let m = read(&bytes, &ReadOptions::default()).unwrap();
        assert!(close(m.lat, 48.858_370_1, 1e-9), "{:?}", m.lat);
        assert!(close(m.lon, 2.294_481_3, 1e-9), "{:?}", m.lon);
        assert_eq!(m.position_source, Some(PositionSource::Exif));
        assert!(close(m.altitude, 35.25, 1e-9));
        // OffsetTimeOriginal wins over the machine's zone.
        assert_eq!(m.captured_at_ms, Some(T));
        assert_eq!(m.time_source, Some(TimeSource::DateTimeOriginal));
        assert!(close(m.heading, 123.456, 1e-9));
        assert_eq!(m.heading_source, Some(HeadingSource::GpsImgDirection));
        assert_eq!(m.make.as_deref(), Some("Make Co"));
        assert_eq!(m.model.as_deref(), Some("Model 9"));
        assert_eq!(m.serial.as_deref(), Some("SN-42"));
        assert_eq!((m.width, m.height), (Some(4000), Some(3000)));
        assert_eq!(m.orientation, Some(6));
        assert!(close(m.gps_accuracy_m, 4.5, 1e-9));
        assert!(!m.is_360);
        assert_eq!(m.file_size, bytes.len() as u64);
        assert_eq!(m.file_name, "test.jpg");
    }

    #[test]
    fn south_west_and_below_sea_level() {
        let p = FixturePhoto {
            lat: Some(-33.856_784),
            lon: Some(-70.648_27),
            altitude: Some(-12.5),
            ..FixturePhoto::at(0.0, 0.0, T)
        };
        let m = read(&fixture::fixture_bytes(&p), &UTC).unwrap();
        assert!(close(m.lat, -33.856_784, 1e-9));
        assert!(close(m.lon, -70.648_27, 1e-9));
        assert!(close(m.altitude, -12.5, 1e-9));
    }

    #[test]
    fn subsec_and_negative_offset() {
        let p = FixturePhoto {
            utc_offset_minutes: Some(-330),
            ..FixturePhoto::at(1.0, 1.0, T + 876)
        };
        let m = read(&fixture::fixture_bytes(&p), &ReadOptions::default()).unwrap();
        assert_eq!(m.captured_at_ms, Some(T + 876));
    }

    #[test]
    fn time_without_offset_uses_camera_offset_option() {
        let bytes = fixture::fixture_bytes(&FixturePhoto::at(1.0, 1.0, T));
        let utc = read(&bytes, &UTC).unwrap();
        assert_eq!(utc.captured_at_ms, Some(T));
        let cest = read(
            &bytes,
            &ReadOptions {
                camera_utc_offset_minutes: Some(120),
            },
        )
        .unwrap();
        assert_eq!(cest.captured_at_ms, Some(T - 7_200_000));
    }

    #[test]
    fn time_without_offset_or_option_uses_local_zone() {
        let bytes = fixture::fixture_bytes(&FixturePhoto::at(1.0, 1.0, T));
        let m = read(&bytes, &ReadOptions::default()).unwrap();
        let naive = chrono::DateTime::from_timestamp_millis(T)
            .unwrap()
            .naive_utc();
        let expected = chrono::Local
            .from_local_datetime(&naive)
            .earliest()
            .unwrap()
            .timestamp_millis();
        assert_eq!(m.captured_at_ms, Some(expected));
    }

    #[test]
    fn gps_time_has_priority() {
        // The DateTimeOriginal (UTC wall clock, no offset tag) read as CEST would be 2 h off;
        // the GPS time is exact and must win.
        let p = FixturePhoto {
            use_gps_time: true,
            ..FixturePhoto::at(1.0, 1.0, T)
        };
        let m = read(
            &fixture::fixture_bytes(&p),
            &ReadOptions {
                camera_utc_offset_minutes: Some(120),
            },
        )
        .unwrap();
        assert_eq!(m.captured_at_ms, Some(T));
        assert_eq!(m.time_source, Some(TimeSource::GpsTime));
    }

    #[test]
    fn gps_date_1970_is_ignored() {
        let mut f = fixture::exif_fields(&FixturePhoto::at(1.0, 1.0, T));
        f.push(ascii_field(Tag::GPSDateStamp, "1970:01:01"));
        f.push(rat(Tag::GPSTimeStamp, &[(0, 1), (0, 1), (5, 1)]));
        let m = read(&fixture::jpeg_with_fields(&f, None).unwrap(), &UTC).unwrap();
        assert_eq!(m.time_source, Some(TimeSource::DateTimeOriginal));
        assert_eq!(m.captured_at_ms, Some(T));
    }

    #[test]
    fn gps_time_with_zero_denominator_falls_back() {
        let mut f = fixture::exif_fields(&FixturePhoto::at(1.0, 1.0, T));
        f.push(ascii_field(Tag::GPSDateStamp, "2024:05:01"));
        f.push(rat(Tag::GPSTimeStamp, &[(8, 1), (0, 0), (0, 1)]));
        let m = read(&fixture::jpeg_with_fields(&f, None).unwrap(), &UTC).unwrap();
        assert_eq!(m.time_source, Some(TimeSource::DateTimeOriginal));
    }

    #[test]
    fn digitized_then_datetime_fallbacks() {
        let mut f = base_fields();
        f.push(ascii_field(Tag::DateTimeDigitized, "2024:05:01 10:00:00"));
        f.push(ascii_field(Tag::SubSecTimeDigitized, "5"));
        f.push(ascii_field(Tag::OffsetTimeDigitized, "+02:00"));
        f.push(ascii_field(Tag::DateTime, "2020:01:01 00:00:00"));
        let m = read(&fixture::jpeg_with_fields(&f, None).unwrap(), &UTC).unwrap();
        assert_eq!(m.time_source, Some(TimeSource::DateTimeDigitized));
        assert_eq!(m.captured_at_ms, Some(1_714_550_400_500));

        let mut f = base_fields();
        f.push(ascii_field(Tag::DateTimeOriginal, "0000:00:00 00:00:00"));
        f.push(ascii_field(Tag::DateTime, "2024:05:01 08:00:00"));
        f.push(ascii_field(Tag::SubSecTime, "25"));
        let m = read(&fixture::jpeg_with_fields(&f, None).unwrap(), &UTC).unwrap();
        assert_eq!(m.time_source, Some(TimeSource::DateTime));
        assert_eq!(m.captured_at_ms, Some(1_714_550_400_250));
    }

    #[test]
    fn heading_falls_back_to_gps_track_then_xmp() {
        let mut f = base_fields();
        f.push(ascii_field(Tag::DateTimeOriginal, "2024:05:01 08:00:00"));
        f.push(rat(Tag::GPSTrack, &[(370_500, 1000)]));
        let m = read(&fixture::jpeg_with_fields(&f, None).unwrap(), &UTC).unwrap();
        assert_eq!(m.heading_source, Some(HeadingSource::GpsTrack));
        assert!(close(m.heading, 10.5, 1e-9));

        // A GPSImgDirection with a zero denominator is skipped, not NaN.
        f.push(rat(Tag::GPSImgDirection, &[(5, 0)]));
        let m = read(&fixture::jpeg_with_fields(&f, None).unwrap(), &UTC).unwrap();
        assert_eq!(m.heading_source, Some(HeadingSource::GpsTrack));

        let mut f = base_fields();
        f.push(ascii_field(Tag::DateTimeOriginal, "2024:05:01 08:00:00"));
        let xmp = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:GPano="http://ns.google.com/photos/1.0/panorama/" GPano:PoseHeadingDegrees="-90"/></rdf:RDF></x:xmpmeta>"#;
        let m = read(&fixture::jpeg_with_fields(&f, Some(xmp)).unwrap(), &UTC).unwrap();
        assert_eq!(m.heading_source, Some(HeadingSource::XmpPose));
        assert!(close(m.heading, 270.0, 1e-9));
        assert!(!m.is_360);
    }

    #[test]
    fn headings_are_normalized() {
        assert_eq!(normalize_heading(360.0), Some(0.0));
        assert_eq!(normalize_heading(-0.0), Some(0.0));
        assert_eq!(normalize_heading(-1e-20), Some(0.0));
        assert_eq!(normalize_heading(725.0), Some(5.0));
        assert_eq!(normalize_heading(f64::NAN), None);
        assert_eq!(normalize_heading(f64::INFINITY), None);
    }

    #[test]
    fn gpano_360_in_both_xmp_forms() {
        let p = FixturePhoto {
            is_360: true,
            width: Some(5760),
            height: Some(2880),
            ..FixturePhoto::at(1.0, 1.0, T)
        };
        assert!(read(&fixture::fixture_bytes(&p), &UTC).unwrap().is_360);
        let f = fixture::exif_fields(&FixturePhoto::at(1.0, 1.0, T));
        let xmp = fixture::gpano_xmp(5760, 2880, true);
        let m = read(&fixture::jpeg_with_fields(&f, Some(&xmp)).unwrap(), &UTC).unwrap();
        assert!(m.is_360);
    }

    #[test]
    fn size_falls_back_to_image_width_then_sof() {
        let m = read(
            &fixture::fixture_bytes(&FixturePhoto::at(1.0, 1.0, T)),
            &UTC,
        )
        .unwrap();
        assert_eq!((m.width, m.height), (Some(16), Some(16)));
        let mut f = fixture::exif_fields(&FixturePhoto::at(1.0, 1.0, T));
        f.push(Field {
            tag: Tag::ImageWidth,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![640]),
        });
        f.push(Field {
            tag: Tag::ImageLength,
            ifd_num: In::PRIMARY,
            value: Value::Long(vec![480]),
        });
        let m = read(&fixture::jpeg_with_fields(&f, None).unwrap(), &UTC).unwrap();
        assert_eq!((m.width, m.height), (Some(640), Some(480)));
    }

    #[test]
    fn camera_serial_number_fallback_and_bad_orientation() {
        let mut f = fixture::exif_fields(&FixturePhoto::at(1.0, 1.0, T));
        f.push(ascii_field(Tag(Context::Tiff, 0xC62F), "  CAM-7\0"));
        f.push(Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![9]),
        });
        let m = read(&fixture::jpeg_with_fields(&f, None).unwrap(), &UTC).unwrap();
        assert_eq!(m.serial.as_deref(), Some("CAM-7"));
        assert_eq!(m.orientation, None);
    }

    #[test]
    fn zero_denominator_altitude_is_dropped_not_nan() {
        let mut f = fixture::exif_fields(&FixturePhoto::at(1.0, 1.0, T));
        f.push(rat(Tag::GPSAltitude, &[(10, 0)]));
        f.push(rat(Tag::GPSHPositioningError, &[(0, 0)]));
        let m = read(&fixture::jpeg_with_fields(&f, None).unwrap(), &UTC).unwrap();
        assert_eq!(m.altitude, None);
        assert_eq!(m.gps_accuracy_m, None);
    }

    #[test]
    fn no_gps_is_geotaggable_and_no_time_is_not() {
        let p = FixturePhoto {
            captured_at_ms: Some(T),
            ..Default::default()
        };
        let e = read(&fixture::fixture_bytes(&p), &UTC).unwrap_err();
        assert_eq!(e.code(), "no_gps");
        assert!(e.to_string().contains("test.jpg has no GPS position"));
        assert!(e.to_string().contains("--gpx"));
        assert_eq!(e.partial().unwrap().captured_at_ms, Some(T));
        let m = e.into_geotaggable().unwrap();
        assert_eq!(m.lat, None);

        let p = FixturePhoto {
            lat: Some(1.0),
            lon: Some(2.0),
            ..Default::default()
        };
        let e = read(&fixture::fixture_bytes(&p), &UTC).unwrap_err();
        assert_eq!(e.code(), "no_time");
        assert!(e.to_string().contains("no capture time"));
        assert_eq!(e.into_geotaggable().unwrap_err().code(), "no_time");
    }

    #[test]
    fn half_a_position_is_bad_gps() {
        let p = FixturePhoto {
            lat: Some(1.0),
            captured_at_ms: Some(T),
            ..Default::default()
        };
        let e = read(&fixture::fixture_bytes(&p), &UTC).unwrap_err();
        assert_eq!(e.code(), "bad_gps");
        assert!(e.to_string().contains("latitude without longitude"));
    }

    #[test]
    fn nan_gps_is_bad_gps() {
        let mut f = fixture::exif_fields(&FixturePhoto {
            captured_at_ms: Some(T),
            ..Default::default()
        });
        f.push(Field {
            tag: Tag::GPSLatitude,
            ifd_num: In::PRIMARY,
            value: Value::Double(vec![f64::NAN]),
        });
        f.push(rat(Tag::GPSLongitude, &[(1, 1)]));
        let e = read(&fixture::jpeg_with_fields(&f, None).unwrap(), &UTC).unwrap_err();
        assert_eq!(e.code(), "bad_gps");
        assert!(e.to_string().contains("not a finite number"), "{e}");
    }

    /// EXIF exactly as piexif 1.1.3 dumps it (geotagging scripts, mapillary_tools): its
    /// Exif and GPS IFDs have no next-IFD offset, so the value written after them is read
    /// as one. exiftool and mapillary_tools read these files; so must we.
    const PIEXIF_TIME_AND_GPS: &str = "4d4d002a000000080003010f0002000000060000003287690004000000010000003888250004000000010000005a00000000476f50726f000001900300020000001400000046323032343a30353a30312031303a30303a303000000400010002000000024e00000000020005000000030000008c0003000200000002450000000004000500000003000000a40000003000000001000000060000000100000000000000010000000b000000010000001e000000010000000000000001";
    const PIEXIF_TIME_ONLY: &str = "4d4d002a000000080002010f0002000000060000002687690004000000010000002c00000000476f50726f00000190030002000000140000003a323032343a30353a30312031303a30303a303000";

    #[test]
    fn exif_written_by_piexif_is_read_with_a_warning_not_dropped() {
        let jpeg = |hex_tiff: &str| {
            fixture::jpeg_with_raw_exif(Some(&hex::decode(hex_tiff).unwrap()), None).unwrap()
        };
        let full =
            read_photo_bytes(Path::new("IMG_1.jpg"), &jpeg(PIEXIF_TIME_AND_GPS), &UTC).unwrap();
        assert_eq!(full.make.as_deref(), Some("GoPro"));
        assert_eq!(full.captured_at_ms, Some(1_714_557_600_000));
        assert!((full.lat.unwrap() - 48.1).abs() < 1e-9);
        assert!((full.lon.unwrap() - 11.5).abs() < 1e-9);
        assert!(
            full.exif_warnings
                .iter()
                .any(|w| w.contains("Unexpected next IFD")),
            "{:?}",
            full.exif_warnings
        );
        // Without GPS it needs a track, like any photo without GPS: not "broken EXIF".
        let e =
            read_photo_bytes(Path::new("IMG_2.jpg"), &jpeg(PIEXIF_TIME_ONLY), &UTC).unwrap_err();
        assert_eq!(e.code(), "no_gps", "{e}");
        assert!(e.into_geotaggable().is_ok());
    }

    #[test]
    fn each_bad_file_kind_has_its_code() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        fixture::write_truncated(&p("t.jpg")).unwrap();
        fixture::write_no_exif(&p("n.jpg")).unwrap();
        fixture::write_not_a_jpeg(&p("x.jpg")).unwrap();
        std::fs::write(p("empty.jpg"), b"").unwrap();
        let kinds = [
            (BrokenExif::IfdLoop, "broken_exif"),
            (BrokenExif::BadTiffHeader, "broken_exif"),
            (BrokenExif::ZeroDenominatorGps, "bad_gps"),
            (BrokenExif::OutOfRangeGps, "bad_gps"),
        ];
        for (i, (kind, code)) in kinds.iter().enumerate() {
            let path = p(&format!("b{i}.jpg"));
            fixture::write_broken_exif(&path, *kind).unwrap();
            let e = read_photo(&path, &UTC).unwrap_err();
            assert_eq!(e.code(), *code, "{kind:?}: {e}");
        }
        let zero = read_photo(&p("b2.jpg"), &UTC).unwrap_err();
        assert!(zero.to_string().contains("zero denominator"), "{zero}");
        assert!(zero.into_geotaggable().is_ok());
        let range = read_photo(&p("b3.jpg"), &UTC).unwrap_err();
        assert!(range.to_string().contains("outside ±90"), "{range}");

        let cases = [
            ("t.jpg", "truncated", "copy it again"),
            ("n.jpg", "no_exif", "no EXIF"),
            ("x.jpg", "not_jpeg", "looks like a PNG image"),
            ("empty.jpg", "not_jpeg", "an empty file"),
            ("missing.jpg", "unreadable", "cannot be read"),
        ];
        for (name, code, text) in cases {
            let e = read_photo(&p(name), &UTC).unwrap_err();
            assert_eq!(e.code(), code, "{name}: {e}");
            assert!(e.to_string().contains(text), "{name}: {e}");
            assert!(e.to_string().contains(name), "{name}: {e}");
        }
        let e = read_photo(dir.path(), &UTC).unwrap_err();
        assert_eq!(e.code(), "unreadable");
    }

    #[test]
    fn every_prefix_of_a_valid_photo_is_handled() {
        let p = FixturePhoto {
            is_360: true,
            ..full()
        };
        let bytes = fixture::fixture_bytes(&p);
        let sos = bytes.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        for len in 0..=bytes.len() {
            let r = read(&bytes[..len], &UTC);
            if len >= sos + 2 {
                assert!(r.is_ok(), "prefix {len}: {r:?}");
            } else {
                let code = r.unwrap_err().code();
                let expected = if len < 2 { "not_jpeg" } else { "truncated" };
                assert_eq!(code, expected, "prefix {len}");
            }
        }
    }

    /// xorshift64*: deterministic and dependency-free.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_mutations_never_panic() {
        let p = FixturePhoto {
            is_360: true,
            use_gps_time: true,
            ..full()
        };
        let original = fixture::fixture_bytes(&p);
        let exif_end = 4 + usize::from(u16::from_be_bytes([original[4], original[5]]));
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut outcomes = std::collections::BTreeMap::new();
        for i in 0..4000 {
            let mut b = original.clone();
            let flips = 1 + rng.below(8);
            for _ in 0..flips {
                // Mostly inside the EXIF segment, where the parsing is.
                let at = if i % 4 == 0 {
                    rng.below(b.len())
                } else {
                    rng.below(exif_end)
                };
                b[at] = match rng.below(4) {
                    0 => 0,
                    1 => 0xFF,
                    _ => rng.next() as u8,
                };
            }
            if i % 10 == 0 {
                let cut = rng.below(b.len());
                b.truncate(cut);
            }
            let code = match read(&b, &ReadOptions::default()) {
                Ok(_) => "ok",
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    e.code()
                }
            };
            *outcomes.entry(code).or_insert(0) += 1;
        }
        for _ in 0..500 {
            let len = rng.below(600);
            let mut b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if b.len() >= 2 {
                b[0] = 0xFF;
                b[1] = 0xD8;
            }
            let _ = read(&b, &ReadOptions::default());
        }
        assert!(outcomes.len() > 3, "{outcomes:?}");
    }

    #[test]
    fn unicode_and_non_utf8_file_names() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let bytes = fixture::fixture_bytes(&FixturePhoto::at(1.0, 2.0, T));
        let uni = dir.path().join("фото 📷 été.jpg");
        std::fs::write(&uni, &bytes).unwrap();
        let m = read_photo(&uni, &UTC).unwrap();
        assert_eq!(m.file_name, "фото 📷 été.jpg");
        assert_eq!(m.path, uni);

        let raw = dir.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"));
        std::fs::write(&raw, &bytes).unwrap();
        let m = read_photo(&raw, &UTC).unwrap();
        assert_eq!(m.path, raw);
        assert_eq!(m.file_name, "caf\u{fffd}.jpg");
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("caf\u{fffd}.jpg"));

        std::fs::write(&raw, b"not a jpeg").unwrap();
        let e = read_photo(&raw, &UTC).unwrap_err();
        assert!(
            e.to_string().starts_with("caf\u{fffd}.jpg is not a JPEG"),
            "{e}"
        );
    }

    #[test]
    fn date_and_offset_parsers() {
        assert!(parse_exif_datetime("2024:05:01 08:00:00").is_some());
        assert!(parse_exif_datetime("2024-05-01T08:00:00").is_some());
        assert!(parse_exif_datetime("2024:13:01 08:00:00").is_none());
        assert!(parse_exif_datetime("    :  :     :  :  ").is_none());
        assert!(parse_exif_datetime("2024:05:01 08:00").is_none());
        assert!(parse_exif_datetime("２０２4:05:01 08:00:00").is_none());
        assert_eq!(parse_subsec_ms("5"), Some(500));
        assert_eq!(parse_subsec_ms("05"), Some(50));
        assert_eq!(parse_subsec_ms("123456"), Some(123));
        assert_eq!(parse_subsec_ms("x"), None);
        assert_eq!(parse_offset_minutes("+02:00"), Some(120));
        assert_eq!(parse_offset_minutes("-0530"), Some(-330));
        assert_eq!(parse_offset_minutes("Z"), Some(0));
        assert_eq!(parse_offset_minutes("+25:00"), None);
        assert_eq!(parse_offset_minutes("   :  "), None);
    }
}
