//! Walking a JPEG's marker segments from SOI up to SOS.
//!
//! Only the metadata segments (APP1 Exif, APP1 XMP, SOF) are loaded into memory; every other
//! segment is skipped with a seek and the entropy-coded image data after SOS is never read.
//! This keeps a scan of 10,000 photos to a few kilobytes of I/O per file.

use std::io::{self, BufReader, Cursor, Read, Seek};

/// The APP1 payload prefix of an EXIF segment ("Exif" NUL NUL).
pub(crate) const EXIF_HEADER: &[u8] = b"Exif\0\0";
/// The APP1 payload prefix of a standard XMP packet.
pub(crate) const XMP_HEADER: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
/// The largest payload a JPEG segment can hold (its length field is 16 bits and counts itself).
pub(crate) const MAX_SEGMENT_PAYLOAD: usize = 65_533;

/// A byte source the walker can read and skip forward in without reading what it skips.
pub(crate) trait Source: Read {
    fn skip(&mut self, n: u64) -> io::Result<()>;
}

impl<R: Read + Seek> Source for BufReader<R> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        let n = i64::try_from(n).map_err(|_| io::Error::other("skip too large"))?;
        // seek_relative keeps the buffer when the target is inside it.
        self.seek_relative(n)
    }
}

impl Source for Cursor<&[u8]> {
    fn skip(&mut self, n: u64) -> io::Result<()> {
        self.set_position(self.position().saturating_add(n));
        Ok(())
    }
}

/// One marker segment: where it starts (its 0xFF byte) and its total length in bytes
/// (marker, length field and payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub marker: u8,
    pub offset: u64,
    pub len: u64,
}

impl Segment {
    pub(crate) fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// What the walk found before the start of scan.
#[derive(Debug, Default)]
pub(crate) struct Header {
    /// The TIFF structure of the first APP1 Exif segment (the payload after "Exif\0\0").
    pub exif: Option<Vec<u8>>,
    /// The segment that held `exif`.
    pub exif_segment: Option<Segment>,
    /// The first standard XMP packet.
    pub xmp: Option<Vec<u8>>,
    /// Width and height from the first SOF marker.
    pub sof_size: Option<(u32, u32)>,
    /// Every segment with a length field before SOS, in file order.
    pub segments: Vec<Segment>,
}

#[derive(Debug)]
pub(crate) enum WalkError {
    Io(io::Error),
    /// No SOI marker; the string says what the bytes look like instead.
    NotJpeg(&'static str),
    /// The file ends inside the header or before the image data starts.
    Truncated(String),
    /// A segment with an impossible length.
    Corrupt(String),
}

struct Walker<'a, R> {
    r: &'a mut R,
    pos: u64,
    len: u64,
}

impl<R: Source> Walker<'_, R> {
    fn u8(&mut self) -> Result<u8, WalkError> {
        let mut b = [0u8; 1];
        match self.r.read_exact(&mut b) {
            Ok(()) => {
                self.pos += 1;
                Ok(b[0])
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(WalkError::Truncated(
                "the file ends before the image data starts".into(),
            )),
            Err(e) => Err(WalkError::Io(e)),
        }
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, WalkError> {
        let mut v = vec![0u8; n];
        match self.r.read_exact(&mut v) {
            Ok(()) => {
                self.pos += n as u64;
                Ok(v)
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(WalkError::Truncated(
                format!("the file ends inside a segment near byte {}", self.pos),
            )),
            Err(e) => Err(WalkError::Io(e)),
        }
    }
}

/// Walks the segments of a JPEG of `file_len` bytes read from `r` (positioned at 0).
pub(crate) fn walk<R: Source>(r: &mut R, file_len: u64) -> Result<Header, WalkError> {
    let mut w = Walker {
        r,
        pos: 0,
        len: file_len,
    };
    let mut start = Vec::with_capacity(16);
    w.r.by_ref()
        .take(2)
        .read_to_end(&mut start)
        .map_err(WalkError::Io)?;
    w.pos = start.len() as u64;
    if start != [0xFF, 0xD8] {
        let mut more = Vec::with_capacity(14);
        w.r.by_ref()
            .take(14)
            .read_to_end(&mut more)
            .map_err(WalkError::Io)?;
        start.extend_from_slice(&more);
        return Err(WalkError::NotJpeg(sniff(&start)));
    }
    let mut header = Header::default();
    loop {
        // Find the next marker. Stray bytes between segments are tolerated, as libjpeg does.
        let mut b = w.u8()?;
        while b != 0xFF {
            b = w.u8()?;
        }
        let mut marker = w.u8()?;
        while marker == 0xFF {
            marker = w.u8()?; // fill bytes
        }
        let offset = w.pos - 2;
        match marker {
            // A stuffed zero outside the scan, restart markers, TEM and a stray SOI carry no
            // length field: nothing to skip.
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            0xD9 => {
                return Err(WalkError::Truncated(
                    "the file ends (EOI marker) before any image data".into(),
                ));
            }
            0xDA => return Ok(header),
            _ => {}
        }
        let hi = w.u8()?;
        let lo = w.u8()?;
        let seg_len = u16::from_be_bytes([hi, lo]);
        if seg_len < 2 {
            return Err(WalkError::Corrupt(format!(
                "the {} segment at byte {offset} has an impossible length {seg_len}",
                marker_name(marker)
            )));
        }
        let payload = u64::from(seg_len - 2);
        if w.pos + payload > w.len {
            return Err(WalkError::Truncated(format!(
                "the {} segment at byte {offset} runs past the end of the file ({} bytes)",
                marker_name(marker),
                w.len
            )));
        }
        let segment = Segment {
            marker,
            offset,
            len: payload + 4,
        };
        header.segments.push(segment);
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if marker == 0xE1 {
            let data = w.bytes(payload as usize)?;
            if data.starts_with(&EXIF_HEADER[..5]) && data.len() >= 6 {
                if header.exif.is_none() {
                    header.exif = Some(data[6..].to_vec());
                    header.exif_segment = Some(segment);
                }
            } else if data.starts_with(XMP_HEADER) && header.xmp.is_none() {
                header.xmp = Some(data[XMP_HEADER.len()..].to_vec());
            }
        } else if is_sof && header.sof_size.is_none() {
            let data = w.bytes(payload as usize)?;
            if data.len() >= 5 {
                let height = u32::from(u16::from_be_bytes([data[1], data[2]]));
                let width = u32::from(u16::from_be_bytes([data[3], data[4]]));
                if width > 0 && height > 0 {
                    header.sof_size = Some((width, height));
                }
            }
        } else {
            w.r.skip(payload).map_err(WalkError::Io)?;
            w.pos += payload;
        }
    }
}

/// Walks an in-memory JPEG.
pub(crate) fn walk_bytes(jpeg: &[u8]) -> Result<Header, WalkError> {
    let mut c = Cursor::new(jpeg);
    walk(&mut c, jpeg.len() as u64)
}

fn marker_name(m: u8) -> String {
    match m {
        0xC4 => "DHT".into(),
        0xDB => "DQT".into(),
        0xDD => "DRI".into(),
        0xFE => "COM".into(),
        0xC0..=0xCF => format!("SOF{}", m - 0xC0),
        0xE0..=0xEF => format!("APP{}", m - 0xE0),
        _ => format!("0x{m:02X}"),
    }
}

/// A short description of what a non-JPEG file looks like, from its first bytes, so the
/// user can tell a HEIC from a video from a text file without opening it.
pub(crate) fn sniff(head: &[u8]) -> &'static str {
    if head.is_empty() {
        return "an empty file";
    }
    if head.starts_with(b"\x89PNG") {
        return "a PNG image";
    }
    if head.starts_with(b"GIF8") {
        return "a GIF image";
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        return "a TIFF or camera RAW file (DNG, CR2, NEF, ARW…)";
    }
    if head.starts_with(b"RIFF") && head.len() >= 12 {
        return match &head[8..12] {
            b"WEBP" => "a WebP image",
            b"AVI " => "an AVI video",
            _ => "a RIFF file",
        };
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return match &head[8..12] {
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
                "a HEIC/HEIF image"
            }
            b"avif" | b"avis" => "an AVIF image",
            b"crx " => "a Canon CR3 RAW file",
            b"qt  " => "a QuickTime video",
            _ => "an MP4/MOV video",
        };
    }
    if head.starts_with(b"%PDF") {
        return "a PDF document";
    }
    if head.starts_with(b"PK\x03\x04") {
        return "a ZIP archive";
    }
    if head.starts_with(b"BM") {
        return "a BMP image";
    }
    if head.starts_with(b"<?xml") || head.starts_with(b"\xEF\xBB\xBF<?xml") {
        return "an XML file";
    }
    if head
        .iter()
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace() || b >= 0x80)
    {
        return "a text file";
    }
    "an unknown format"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_common_formats() {
        assert_eq!(sniff(b""), "an empty file");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), "a PNG image");
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0"), "a HEIC/HEIF image");
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0"), "an MP4/MOV video");
        assert_eq!(sniff(b"hello world"), "a text file");
        assert_eq!(sniff(b"\x01\x02\x03"), "an unknown format");
    }

    #[test]
    fn walk_stops_at_sos_and_reports_segments() {
        let jpeg = crate::photo::fixture::fixture_bytes(&crate::photo::fixture::FixturePhoto {
            lat: Some(1.0),
            lon: Some(2.0),
            captured_at_ms: Some(1_700_000_000_000),
            ..Default::default()
        });
        let h = walk_bytes(&jpeg).expect("walk");
        assert!(h.exif.is_some());
        assert_eq!(h.sof_size, Some((16, 16)));
        let seg = h.exif_segment.expect("exif segment");
        assert_eq!(seg.offset, 2);
        assert_eq!(seg.marker, 0xE1);
    }

    #[test]
    fn zero_length_segment_is_corrupt() {
        let bytes = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0, 0, 0];
        assert!(matches!(walk_bytes(&bytes), Err(WalkError::Corrupt(_))));
    }

    #[test]
    fn eoi_before_sos_is_truncated() {
        let bytes = [0xFF, 0xD8, 0xFF, 0xD9];
        assert!(matches!(walk_bytes(&bytes), Err(WalkError::Truncated(_))));
    }
}
