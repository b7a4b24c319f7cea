//! The upload copy of a photo: the same JPEG with its EXIF `ImageDescription` (0x010E) set,
//! which is where Mapillary reads its `MAP*` JSON (PROTOCOLS.md §2.4).
//!
//! The user's file is never modified: this works on bytes and returns new bytes. Only the
//! APP1 Exif segment changes; every other byte of the file is copied as it is.
//!
//! How the EXIF changes: the original TIFF structure is kept byte for byte and a new copy of
//! IFD0 (with the new description, entries still sorted by tag) is appended to it, and the
//! header is pointed at the copy. Every offset inside the EXIF stays valid, so the Exif and
//! GPS IFDs, maker notes, unknown tags and the thumbnail all survive untouched. Only when the
//! result would not fit in one JPEG segment (64 kB) is the EXIF re-encoded from its parsed
//! fields without the thumbnail (IFD1), as mapillary_tools does.
//!
//! The output depends only on the input bytes and the description, so the upload key (the
//! MD5 of these bytes) is stable across runs.

use super::jpeg::{self, EXIF_HEADER, Header, MAX_SEGMENT_PAYLOAD, WalkError};
use exif::experimental::Writer;
use exif::{Exif, Field, In, Tag, Value};
use std::collections::HashSet;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};

const IMAGE_DESCRIPTION: u16 = 0x010E;
const ASCII: u16 = 2;

/// Why an upload copy cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("not a JPEG (it looks like {looks_like})")]
    NotJpeg { looks_like: &'static str },
    #[error("damaged JPEG: {detail}")]
    DamagedJpeg { detail: String },
    #[error("its EXIF cannot be rewritten ({detail}): repair it with exiftool or drop the photo")]
    BrokenExif { detail: String },
    #[error("the description contains a NUL character, which EXIF text cannot hold")]
    DescriptionHasNul,
    #[error("the EXIF would be {bytes} bytes, more than one JPEG segment holds (65,533)")]
    TooLarge { bytes: usize },
}

impl RewriteError {
    /// Stable snake_case id.
    pub fn code(&self) -> &'static str {
        match self {
            RewriteError::NotJpeg { .. } => "not_jpeg",
            RewriteError::DamagedJpeg { .. } => "damaged_jpeg",
            RewriteError::BrokenExif { .. } => "broken_exif",
            RewriteError::DescriptionHasNul => "bad_description",
            RewriteError::TooLarge { .. } => "exif_too_large",
        }
    }
}

/// A copy of `jpeg` whose EXIF ImageDescription is `description` (UTF-8, replacing any
/// existing one). A JPEG without EXIF gets a new APP1 segment holding just that tag, after
/// the JFIF APP0 segment if there is one.
pub fn with_image_description(jpeg: &[u8], description: &str) -> Result<Vec<u8>, RewriteError> {
    if description.contains('\0') {
        return Err(RewriteError::DescriptionHasNul);
    }
    let header = jpeg::walk_bytes(jpeg).map_err(walk_error)?;
    let splice = splice_for(jpeg, &header, description.as_bytes())?;
    let mut out = Vec::with_capacity(jpeg.len() - (splice.to - splice.from) + splice.segment.len());
    out.extend_from_slice(&jpeg[..splice.from]);
    out.extend_from_slice(&splice.segment);
    out.extend_from_slice(&jpeg[splice.to..]);
    Ok(out)
}

/// The start of a photo's upload copy, for sending a large file without holding it: the
/// copy is `head` followed by the original file's bytes from `tail_offset` to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyHead {
    /// The original bytes before the EXIF segment (or the insertion point), then the new
    /// EXIF segment.
    pub head: Vec<u8>,
    /// Where, in the original file, the bytes that follow `head` start.
    pub tail_offset: u64,
}

/// The head of [`with_image_description`]'s copy of the JPEG that `file` holds (`file_len`
/// bytes), reading only the segments before the image data: `head` + the file from
/// `tail_offset` on is exactly what `with_image_description` returns for the whole file.
pub fn image_description_head<R: Read + Seek>(
    file: R,
    file_len: u64,
    description: &str,
) -> Result<CopyHead, RewriteError> {
    if description.contains('\0') {
        return Err(RewriteError::DescriptionHasNul);
    }
    let io_error = |e: std::io::Error| RewriteError::DamagedJpeg {
        detail: e.to_string(),
    };
    let mut r = BufReader::new(file);
    r.seek(SeekFrom::Start(0)).map_err(io_error)?;
    let header = jpeg::walk(&mut r, file_len).map_err(walk_error)?;
    // Only the bytes up to the end of the replaced segment are needed: the splice reads
    // nothing past it.
    let to = splice_end(&header);
    let mut prefix = vec![0u8; to];
    r.seek(SeekFrom::Start(0)).map_err(io_error)?;
    r.read_exact(&mut prefix).map_err(io_error)?;
    let splice = splice_for(&prefix, &header, description.as_bytes())?;
    let mut head = prefix;
    head.truncate(splice.from);
    head.extend_from_slice(&splice.segment);
    Ok(CopyHead {
        head,
        tail_offset: splice.to as u64,
    })
}

fn walk_error(e: WalkError) -> RewriteError {
    match e {
        WalkError::NotJpeg(looks_like) => RewriteError::NotJpeg { looks_like },
        WalkError::Truncated(detail) | WalkError::Corrupt(detail) => {
            RewriteError::DamagedJpeg { detail }
        }
        WalkError::Io(e) => RewriteError::DamagedJpeg {
            detail: e.to_string(),
        },
    }
}

/// How the upload copy differs from the original: bytes `from..to` are replaced by
/// `segment`, a whole APP1 Exif segment.
struct Splice {
    from: usize,
    to: usize,
    segment: Vec<u8>,
}

/// Where the replaced bytes end (`Splice::to`), from the walk alone.
fn splice_end(header: &Header) -> usize {
    match header.exif_segment {
        Some(seg) => seg.end() as usize,
        None => insertion_point(header),
    }
}

/// Where a new EXIF segment goes: after the JFIF APP0 segment if there is one.
fn insertion_point(header: &Header) -> usize {
    match header.segments.first() {
        Some(s) if s.marker == 0xE0 && s.offset == 2 => s.end() as usize,
        _ => 2,
    }
}

/// The splice that sets the description. `jpeg` needs to hold the file only up to
/// [`splice_end`].
fn splice_for(jpeg: &[u8], header: &Header, desc: &[u8]) -> Result<Splice, RewriteError> {
    match header.exif_segment {
        None => {
            // With the IFD0 tags the EXIF spec requires, at their usual defaults, so that
            // validators (exiftool -validate) do not flag the upload copy.
            let rational = |num| Value::Rational(vec![exif::Rational { num, denom: 1 }]);
            let fields = [
                (Tag::ImageDescription, Value::Ascii(vec![desc.to_vec()])),
                (Tag::XResolution, rational(72)),
                (Tag::YResolution, rational(72)),
                (Tag::ResolutionUnit, Value::Short(vec![2])),
                (Tag::YCbCrPositioning, Value::Short(vec![1])),
            ]
            .map(|(tag, value)| Field {
                tag,
                ifd_num: In::PRIMARY,
                value,
            });
            let tiff = tiff_from_fields(&fields).map_err(|e| RewriteError::BrokenExif {
                detail: e.to_string(),
            })?;
            let at = insertion_point(header);
            Ok(Splice {
                from: at,
                to: at,
                segment: app1_segment(EXIF_HEADER, &tiff)?,
            })
        }
        Some(seg) => {
            let (start, end) = (seg.offset as usize, seg.end() as usize);
            let payload = &jpeg[start + 4..end];
            let (prefix, tiff) = payload.split_at(EXIF_HEADER.len());
            let fits = |t: &Vec<u8>| t.len() + prefix.len() <= MAX_SEGMENT_PAYLOAD;
            let (exif, clean) = parse(tiff)?;
            // Appending is only safe on a clean EXIF: in a broken one, an offset that pointed
            // past the end could start pointing into the appended bytes.
            let appended = if clean {
                append_ifd0(tiff, desc).ok()
            } else {
                None
            };
            let new_tiff = match appended {
                Some(t) if fits(&t) => t,
                _ => reencode(&exif, desc)?,
            };
            Ok(Splice {
                from: start,
                to: end,
                segment: app1_segment(prefix, &new_tiff)?,
            })
        }
    }
}

/// An APP1 segment of `prefix` + `tiff`.
fn app1_segment(prefix: &[u8], tiff: &[u8]) -> Result<Vec<u8>, RewriteError> {
    let payload = prefix.len() + tiff.len();
    if payload > MAX_SEGMENT_PAYLOAD {
        return Err(RewriteError::TooLarge { bytes: payload });
    }
    let mut out = Vec::with_capacity(payload + 4);
    out.extend_from_slice(&[0xFF, 0xE1]);
    // payload ≤ 65533 was checked above.
    out.extend_from_slice(&((payload + 2) as u16).to_be_bytes());
    out.extend_from_slice(prefix);
    out.extend_from_slice(tiff);
    Ok(out)
}

struct Endian(bool);

impl Endian {
    fn u16(&self, b: &[u8], at: usize) -> Option<u16> {
        let x: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.0 {
            u16::from_le_bytes(x)
        } else {
            u16::from_be_bytes(x)
        })
    }

    fn u32(&self, b: &[u8], at: usize) -> Option<u32> {
        let x: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.0 {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        })
    }

    fn put_u16(&self, v: u16) -> [u8; 2] {
        if self.0 {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    }

    fn put_u32(&self, v: u32) -> [u8; 4] {
        if self.0 {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    }
}

/// The TIFF with a new IFD0 appended (old entries minus any ImageDescription, plus the new
/// one) and the header pointing at it. See the module doc for why.
fn append_ifd0(tiff: &[u8], desc: &[u8]) -> Result<Vec<u8>, String> {
    let e = match tiff.get(0..2) {
        Some(b"II") => Endian(true),
        Some(b"MM") => Endian(false),
        _ => return Err("invalid TIFF byte order".into()),
    };
    if e.u16(tiff, 2) != Some(42) {
        return Err("invalid TIFF header".into());
    }
    let ifd0 = e.u32(tiff, 4).ok_or("truncated TIFF header")? as usize;
    let count = usize::from(e.u16(tiff, ifd0).ok_or("IFD0 is outside the EXIF data")?);
    let entries_at = ifd0 + 2;
    let next_at = entries_at + 12 * count;
    let next = e.u32(tiff, next_at).ok_or("IFD0 runs past the EXIF data")?;
    let mut entries: Vec<[u8; 12]> = tiff[entries_at..next_at]
        .chunks_exact(12)
        .filter_map(|c| <[u8; 12]>::try_from(c).ok())
        .filter(|c| e.u16(c, 0) != Some(IMAGE_DESCRIPTION))
        .collect();

    let mut out = tiff.to_vec();
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let new_ifd0 = out.len();
    let n = entries.len() + 1;
    let value_len = desc.len() + 1; // ASCII includes its NUL
    let count_u32 = u32::try_from(value_len).map_err(|_| "description too long")?;
    let mut entry = [0u8; 12];
    entry[0..2].copy_from_slice(&e.put_u16(IMAGE_DESCRIPTION));
    entry[2..4].copy_from_slice(&e.put_u16(ASCII));
    entry[4..8].copy_from_slice(&e.put_u32(count_u32));
    if value_len <= 4 {
        entry[8..8 + desc.len()].copy_from_slice(desc);
    } else {
        let value_at = new_ifd0 + 2 + 12 * n + 4;
        let value_at = u32::try_from(value_at).map_err(|_| "EXIF too large")?;
        entry[8..12].copy_from_slice(&e.put_u32(value_at));
    }
    let pos = entries
        .iter()
        .position(|c| e.u16(c, 0).is_some_and(|t| t > IMAGE_DESCRIPTION))
        .unwrap_or(entries.len());
    entries.insert(pos, entry);

    let n16 = u16::try_from(n).map_err(|_| "too many IFD0 entries")?;
    out.extend_from_slice(&e.put_u16(n16));
    for c in &entries {
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&e.put_u32(next));
    if value_len > 4 {
        out.extend_from_slice(desc);
        out.push(0);
        if out.len() % 2 == 1 {
            out.push(0);
        }
    }
    let new_ifd0 = u32::try_from(new_ifd0).map_err(|_| "EXIF too large")?;
    out[4..8].copy_from_slice(&e.put_u32(new_ifd0));
    Ok(out)
}

/// Parses the EXIF, keeping what can be read; `true` when nothing was broken.
fn parse(tiff: &[u8]) -> Result<(Exif, bool), RewriteError> {
    let data = tiff.to_vec();
    // A parser bug must not abort a whole upload: a panic becomes a broken_exif error.
    let parsed = catch_unwind(AssertUnwindSafe(move || {
        let mut r = exif::Reader::new();
        r.continue_on_error(true);
        r.read_raw(data)
    }));
    match parsed {
        Ok(Ok(x)) => Ok((x, true)),
        Ok(Err(exif::Error::PartialResult(p))) => Ok((p.into_inner().0, false)),
        Ok(Err(e)) => Err(RewriteError::BrokenExif {
            detail: e.to_string(),
        }),
        Err(_) => Err(RewriteError::BrokenExif {
            detail: "the EXIF parser failed on it".into(),
        }),
    }
}

/// Re-encodes the EXIF from its readable IFD0, Exif, GPS and Interop fields plus the new
/// description, without the thumbnail and without fields that cannot be decoded (as
/// mapillary_tools strips broken tags).
fn reencode(exif: &Exif, desc: &[u8]) -> Result<Vec<u8>, RewriteError> {
    let desc_field = Field {
        tag: Tag::ImageDescription,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![desc.to_vec()]),
    };
    let fields: Vec<&Field> = exif.fields().collect();
    let mut w = Writer::new();
    let mut seen = HashSet::new();
    // The writer must not get a tag twice. Readers (kamadak-exif included) keep the last
    // occurrence, so keep that one; when it cannot be written (an unknown type), the tag
    // goes, rather than an earlier occurrence coming back (found by fuzzing: a photo whose
    // second GPSImgDirection was unreadable got a heading of 0° in its upload copy).
    for f in fields.into_iter().rev() {
        if f.ifd_num == In::PRIMARY
            && f.tag != Tag::ImageDescription
            && seen.insert(f.tag)
            && !matches!(f.value, Value::Unknown(..))
        {
            w.push_field(f);
        }
    }
    w.push_field(&desc_field);
    let mut buf = Cursor::new(Vec::new());
    w.write(&mut buf, exif.little_endian())
        .map_err(|e| RewriteError::BrokenExif {
            detail: e.to_string(),
        })?;
    Ok(buf.into_inner())
}

/// Encodes EXIF fields as a TIFF structure (little-endian, like most cameras).
pub fn tiff_from_fields(fields: &[Field]) -> std::io::Result<Vec<u8>> {
    let mut w = Writer::new();
    for f in fields {
        w.push_field(f);
    }
    let mut buf = Cursor::new(Vec::new());
    w.write(&mut buf, true)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    Ok(buf.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::photo::fixture::{self, FixturePhoto};
    use crate::photo::{ReadOptions, read_photo_bytes};
    use std::path::Path;

    const T: i64 = 1_714_550_400_123;

    fn photo() -> FixturePhoto {
        FixturePhoto {
            altitude: Some(-3.5),
            heading: Some(271.25),
            make: Some("Make".into()),
            model: Some("Model".into()),
            serial: Some("S1".into()),
            width: Some(4000),
            height: Some(3000),
            utc_offset_minutes: Some(60),
            use_gps_time: true,
            image_description: Some("original".into()),
            ..FixturePhoto::at(-33.5, -70.25, T)
        }
    }

    fn description(jpeg: &[u8]) -> Option<String> {
        let h = jpeg::walk_bytes(jpeg).unwrap();
        let exif = exif::Reader::new().read_raw(h.exif?).unwrap();
        match &exif.get_field(Tag::ImageDescription, In::PRIMARY)?.value {
            Value::Ascii(v) => Some(String::from_utf8(v[0].clone()).unwrap()),
            _ => None,
        }
    }

    fn meta(jpeg: &[u8]) -> crate::photo::PhotoMeta {
        let mut m = read_photo_bytes(Path::new("x.jpg"), jpeg, &ReadOptions::default()).unwrap();
        m.file_size = 0;
        m
    }

    #[test]
    fn sets_description_and_keeps_everything_else() {
        let original = fixture::fixture_bytes(&photo());
        let json = r#"{"MAPCaptureTime":"2024_05_01_08_00_00_123","MAPFilename":"été 📷.jpg","MAPLatitude":-33.5}"#;
        let out = with_image_description(&original, json).unwrap();
        assert_eq!(description(&out).as_deref(), Some(json));
        assert_eq!(description(&original).as_deref(), Some("original"));
        assert_eq!(meta(&out), meta(&original));

        // Only the EXIF segment changed: the bytes before and after it are identical.
        let seg = jpeg::walk_bytes(&original).unwrap().exif_segment.unwrap();
        let new_seg = jpeg::walk_bytes(&out).unwrap().exif_segment.unwrap();
        assert_eq!(&out[..2], &original[..2]);
        assert_eq!(
            &out[new_seg.end() as usize..],
            &original[seg.end() as usize..]
        );
        // And the old TIFF is still there, unchanged but for the IFD0 offset in its header.
        let tiff_end = seg.end() as usize;
        assert_eq!(&out[12..16], &original[12..16]);
        assert_eq!(&out[20..tiff_end], &original[20..tiff_end]);
    }

    #[test]
    fn deterministic_and_repeatable() {
        let original = fixture::fixture_bytes(&photo());
        let a = with_image_description(&original, "{\"a\":1}").unwrap();
        let b = with_image_description(&original, "{\"a\":1}").unwrap();
        assert_eq!(a, b);
        let c = with_image_description(&a, "second").unwrap();
        assert_eq!(description(&c).as_deref(), Some("second"));
        assert_eq!(meta(&c), meta(&original));
        assert_ne!(with_image_description(&original, "{\"a\":2}").unwrap(), a);
    }

    #[test]
    fn short_description_is_stored_inline() {
        let original = fixture::fixture_bytes(&photo());
        for d in ["", "a", "abc", "abcd"] {
            let out = with_image_description(&original, d).unwrap();
            assert_eq!(description(&out).as_deref(), Some(d), "{d:?}");
            assert_eq!(meta(&out), meta(&original));
        }
    }

    #[test]
    fn big_endian_exif_is_patched_in_its_byte_order() {
        let fields = fixture::exif_fields(&photo());
        let mut w = Writer::new();
        for f in &fields {
            w.push_field(f);
        }
        let mut buf = Cursor::new(Vec::new());
        w.write(&mut buf, false).unwrap();
        let original = fixture::jpeg_with_raw_exif(Some(&buf.into_inner()), None).unwrap();
        let out = with_image_description(&original, "big endian").unwrap();
        assert_eq!(&out[12..14], b"MM");
        assert_eq!(description(&out).as_deref(), Some("big endian"));
        assert_eq!(meta(&out), meta(&original));
    }

    #[test]
    fn jpeg_without_exif_gets_a_new_segment() {
        let bare = fixture::jpeg_with_raw_exif(None, None).unwrap();
        let out = with_image_description(&bare, "hello").unwrap();
        assert_eq!(description(&out).as_deref(), Some("hello"));
        assert_eq!(&out[out.len() - (bare.len() - 2)..], &bare[2..]);

        // After a JFIF APP0, which must stay first.
        let mut jfif = vec![0xFF, 0xD8];
        jfif.extend_from_slice(b"\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00");
        jfif.extend_from_slice(&bare[2..]);
        let out = with_image_description(&jfif, "hello").unwrap();
        assert_eq!(&out[..20], &jfif[..20]);
        assert_eq!(&out[20..22], &[0xFF, 0xE1]);
        assert_eq!(description(&out).as_deref(), Some("hello"));
    }

    #[test]
    fn oversized_exif_is_reencoded_without_thumbnail() {
        let fields = fixture::exif_fields(&photo());
        let thumb = vec![0xABu8; 64_000];
        let mut w = Writer::new();
        for f in &fields {
            w.push_field(f);
        }
        w.set_jpeg(&thumb, In::THUMBNAIL);
        let mut buf = Cursor::new(Vec::new());
        w.write(&mut buf, true).unwrap();
        let original = fixture::jpeg_with_raw_exif(Some(&buf.into_inner()), None).unwrap();
        let desc = "d".repeat(1000);
        let out = with_image_description(&original, &desc).unwrap();
        assert!(out.len() < original.len());
        assert_eq!(description(&out).as_deref(), Some(desc.as_str()));
        assert_eq!(meta(&out), meta(&original));
        // Small descriptions still fit by appending, keeping the thumbnail.
        let out = with_image_description(&original, "tiny").unwrap();
        assert!(out.len() > original.len());
        assert_eq!(description(&out).as_deref(), Some("tiny"));
    }

    #[test]
    fn errors() {
        let original = fixture::fixture_bytes(&photo());
        let e = with_image_description(&original, "a\0b").unwrap_err();
        assert_eq!(e.code(), "bad_description");
        let e = with_image_description(b"\x89PNG\r\n\x1a\n", "x").unwrap_err();
        assert_eq!(e.code(), "not_jpeg");
        assert!(e.to_string().contains("PNG"));
        let e = with_image_description(&original[..40], "x").unwrap_err();
        assert_eq!(e.code(), "damaged_jpeg");
        let e = with_image_description(&original, &"x".repeat(70_000)).unwrap_err();
        assert_eq!(e.code(), "exif_too_large");
        let bad = fixture::jpeg_with_raw_exif(Some(b"XX\0\x2a\0\0\0\x08"), None).unwrap();
        let e = with_image_description(&bad, "x").unwrap_err();
        assert_eq!(e.code(), "broken_exif");
    }

    #[test]
    fn broken_exif_is_reencoded_from_what_reads() {
        let tiff = fixture::broken_exif_tiff(fixture::BrokenExif::IfdLoop).unwrap();
        let original = fixture::jpeg_with_raw_exif(Some(&tiff), None).unwrap();
        let out = with_image_description(&original, "fixed").unwrap();
        let h = jpeg::walk_bytes(&out).unwrap();
        let exif = exif::Reader::new().read_raw(h.exif.unwrap()).unwrap();
        let make = exif.get_field(Tag::Make, In::PRIMARY).unwrap();
        assert!(matches!(&make.value, Value::Ascii(v) if v == &[b"Abc".to_vec()]));
        assert_eq!(description(&out).as_deref(), Some("fixed"));
    }

    /// The head + the rest of the original file, as a streamed upload sends it.
    fn streamed_copy(original: &[u8], desc: &str) -> Vec<u8> {
        let h = image_description_head(Cursor::new(original), original.len() as u64, desc).unwrap();
        let mut out = h.head;
        out.extend_from_slice(&original[h.tail_offset as usize..]);
        out
    }

    #[test]
    fn head_and_tail_are_the_whole_copy() {
        // Image data after the header, as in a real photo: the head must not reach into it.
        let pad = |mut jpeg: Vec<u8>| {
            jpeg.extend((0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
            jpeg
        };
        let bare = fixture::jpeg_with_raw_exif(None, None).unwrap();
        let mut jfif = vec![0xFF, 0xD8];
        jfif.extend_from_slice(b"\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00");
        jfif.extend_from_slice(&bare[2..]);
        let pano = fixture::fixture_bytes(&FixturePhoto {
            is_360: true,
            width: Some(5760),
            height: Some(2880),
            ..photo()
        });
        assert!(jpeg::walk_bytes(&pano).unwrap().xmp.is_some());
        let cases = [
            ("with EXIF", pad(fixture::fixture_bytes(&photo()))),
            ("without EXIF", pad(bare)),
            ("JFIF APP0", pad(jfif)),
            ("360° with XMP", pad(pano)),
        ];
        let desc = r#"{"MAPCaptureTime":"2024_05_01_08_00_00_123","MAPFilename":"été.jpg"}"#;
        for (what, original) in cases {
            let whole = with_image_description(&original, desc).unwrap();
            let h = image_description_head(Cursor::new(&original), original.len() as u64, desc)
                .unwrap();
            assert!(
                h.head.len() < 2_000,
                "{what}: a head of {} bytes",
                h.head.len()
            );
            assert_eq!(streamed_copy(&original, desc), whole, "{what}");
        }
        // The re-encoded case (EXIF too big to append to) and a second rewrite too.
        let fields = fixture::exif_fields(&photo());
        let mut w = Writer::new();
        for f in &fields {
            w.push_field(f);
        }
        let thumb = vec![0xABu8; 64_000];
        w.set_jpeg(&thumb, In::THUMBNAIL);
        let mut buf = Cursor::new(Vec::new());
        w.write(&mut buf, true).unwrap();
        let big = pad(fixture::jpeg_with_raw_exif(Some(&buf.into_inner()), None).unwrap());
        let long = "d".repeat(1000);
        assert_eq!(
            streamed_copy(&big, &long),
            with_image_description(&big, &long).unwrap()
        );
        let once = with_image_description(&big, "first").unwrap();
        assert_eq!(
            streamed_copy(&once, "second"),
            with_image_description(&once, "second").unwrap()
        );
    }

    #[test]
    fn head_fails_as_the_whole_copy_does() {
        let original = fixture::fixture_bytes(&photo());
        let code = |bytes: &[u8], desc: &str| {
            image_description_head(Cursor::new(bytes), bytes.len() as u64, desc)
                .unwrap_err()
                .code()
        };
        assert_eq!(code(&original, "a\0b"), "bad_description");
        assert_eq!(code(b"\x89PNG\r\n\x1a\n", "x"), "not_jpeg");
        assert_eq!(code(&original[..40], "x"), "damaged_jpeg");
        assert_eq!(code(&original, &"x".repeat(70_000)), "exif_too_large");
    }

    #[test]
    fn never_panics_on_mutated_input() {
        let original = fixture::fixture_bytes(&photo());
        let mut x: u64 = 0x1234_5678_9ABC_DEF1;
        for _ in 0..2000 {
            let mut b = original.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = (x as usize) % 400;
                b[at] = (x >> 32) as u8;
            }
            if let Ok(out) = with_image_description(&b, "{\"k\":\"v\"}") {
                // Whatever was readable stays readable the same way.
                let o = ReadOptions::default();
                // (The rewrite drops broken tags, so only the warnings may differ.)
                let before = read_photo_bytes(Path::new("x"), &b, &o).map(|mut m| {
                    m.file_size = 0;
                    m.exif_warnings.clear();
                    m
                });
                let after = read_photo_bytes(Path::new("x"), &out, &o).map(|mut m| {
                    m.file_size = 0;
                    m.exif_warnings.clear();
                    m
                });
                if let (Ok(a), Ok(z)) = (&before, &after) {
                    assert_eq!(a, z);
                }
            }
        }
    }
}
