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

use super::fixture::tiff_from_fields;
use super::jpeg::{self, EXIF_HEADER, MAX_SEGMENT_PAYLOAD, WalkError};
use exif::experimental::Writer;
use exif::{Field, In, Tag, Value};
use std::io::Cursor;
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
    let header = jpeg::walk_bytes(jpeg).map_err(|e| match e {
        WalkError::NotJpeg(looks_like) => RewriteError::NotJpeg { looks_like },
        WalkError::Truncated(detail) | WalkError::Corrupt(detail) => {
            RewriteError::DamagedJpeg { detail }
        }
        WalkError::Io(e) => RewriteError::DamagedJpeg {
            detail: e.to_string(),
        },
    })?;
    let desc = description.as_bytes();
    match header.exif_segment {
        None => {
            let field = Field {
                tag: Tag::ImageDescription,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![desc.to_vec()]),
            };
            let tiff = tiff_from_fields(&[field]).map_err(|e| RewriteError::BrokenExif {
                detail: e.to_string(),
            })?;
            let at = match header.segments.first() {
                Some(s) if s.marker == 0xE0 && s.offset == 2 => s.end(),
                _ => 2,
            } as usize;
            splice(jpeg, at, at, EXIF_HEADER, &tiff)
        }
        Some(seg) => {
            let (start, end) = (seg.offset as usize, seg.end() as usize);
            let payload = &jpeg[start + 4..end];
            let (prefix, tiff) = payload.split_at(EXIF_HEADER.len());
            let fits = |t: &Vec<u8>| t.len() + prefix.len() <= MAX_SEGMENT_PAYLOAD;
            let new_tiff = match append_ifd0(tiff, desc) {
                Ok(t) if fits(&t) => t,
                _ => reencode(tiff, desc)?,
            };
            splice(jpeg, start, end, prefix, &new_tiff)
        }
    }
}

/// `jpeg[..from]` + an APP1 segment of `prefix` + `tiff` + `jpeg[to..]`.
fn splice(
    jpeg: &[u8],
    from: usize,
    to: usize,
    prefix: &[u8],
    tiff: &[u8],
) -> Result<Vec<u8>, RewriteError> {
    let payload = prefix.len() + tiff.len();
    if payload > MAX_SEGMENT_PAYLOAD {
        return Err(RewriteError::TooLarge { bytes: payload });
    }
    let mut out = Vec::with_capacity(jpeg.len() - (to - from) + payload + 4);
    out.extend_from_slice(&jpeg[..from]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    // payload ≤ 65533 was checked above.
    out.extend_from_slice(&((payload + 2) as u16).to_be_bytes());
    out.extend_from_slice(prefix);
    out.extend_from_slice(tiff);
    out.extend_from_slice(&jpeg[to..]);
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

/// Re-encodes the EXIF from its parsed IFD0, Exif, GPS and Interop fields plus the new
/// description, without the thumbnail and without fields that cannot be decoded.
fn reencode(tiff: &[u8], desc: &[u8]) -> Result<Vec<u8>, RewriteError> {
    let data = tiff.to_vec();
    let parsed = catch_unwind(AssertUnwindSafe(move || {
        let mut r = exif::Reader::new();
        r.continue_on_error(true);
        r.read_raw(data)
    }));
    let exif = match parsed {
        Ok(Ok(x)) => x,
        Ok(Err(exif::Error::PartialResult(p))) => p.into_inner().0,
        Ok(Err(e)) => {
            return Err(RewriteError::BrokenExif {
                detail: e.to_string(),
            });
        }
        Err(_) => {
            return Err(RewriteError::BrokenExif {
                detail: "the EXIF parser failed on it".into(),
            });
        }
    };
    let desc_field = Field {
        tag: Tag::ImageDescription,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![desc.to_vec()]),
    };
    let mut w = Writer::new();
    let mut seen = std::collections::HashSet::new();
    for f in exif.fields() {
        // The writer must not get a tag twice; the first occurrence wins, as readers do.
        if f.ifd_num == In::PRIMARY
            && f.tag != Tag::ImageDescription
            && !matches!(f.value, Value::Unknown(..))
            && seen.insert(f.tag)
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
