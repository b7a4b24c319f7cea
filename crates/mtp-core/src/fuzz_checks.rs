//! The properties the fuzz targets (`fuzz/`, `make fuzz`) check on arbitrary bytes, shared
//! with the regression test that replays every input they ever found
//! (`tests/fuzz_regressions.rs`). Each function panics when a property fails; returning
//! means the input was handled (accepted or refused with an error).

use crate::deeplink::DeepLink;
use crate::photo::gpx::parse_gpx;
use crate::photo::rewrite::with_image_description;
use crate::photo::{ReadOptions, read_photo_bytes};
use std::path::Path;

/// The JPEG segment walker, EXIF and XMP reading: any bytes give a photo or an error.
pub fn photo_bytes(data: &[u8]) {
    let _ = read_photo_bytes(Path::new("fuzz.jpg"), data, &ReadOptions::default());
}

/// GPX parsing: any text gives a track or an error; a track is sorted by time and every
/// point is a real position.
pub fn gpx(data: &[u8]) {
    if let Ok(track) = parse_gpx(&String::from_utf8_lossy(data)) {
        let points = track.points();
        assert!(points.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
        assert!(
            points
                .iter()
                .all(|p| p.lat.is_finite() && p.lon.is_finite() && p.lat.abs() <= 90.0)
        );
    }
}

/// The EXIF rewrite round-trips: whatever was readable before reads the same after, and
/// the description is in the new file.
pub fn rewrite(data: &[u8]) {
    const DESCRIPTION: &str = r#"{"MAPCaptureTime":"2024_05_01_10_00_00_000"}"#;
    let Ok(out) = with_image_description(data, DESCRIPTION) else {
        return;
    };
    assert!(
        out.windows(DESCRIPTION.len())
            .any(|w| w == DESCRIPTION.as_bytes()),
        "the description is not in the rewritten file"
    );
    let o = ReadOptions::default();
    let strip = |mut m: crate::photo::PhotoMeta| {
        m.file_size = 0;
        m.exif_warnings.clear();
        m
    };
    let before = read_photo_bytes(Path::new("f.jpg"), data, &o).map(strip);
    let after = read_photo_bytes(Path::new("f.jpg"), &out, &o).map(strip);
    if let Ok(before) = before {
        assert_eq!(Ok(before), after.map_err(|e| e.to_string()));
    }
}

/// The deep-link parser: any text gives a link or an error, never a panic.
pub fn deep_link(data: &[u8]) {
    let _ = DeepLink::try_from(String::from_utf8_lossy(data).as_ref());
}

/// Every input the fuzzers found (crashes, hangs, and their minimised forms) stays here as a
/// regression test: `fuzz-regressions/<target>/<file>`, replayed through the same checks.
#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    fn replay(target: &str, check: fn(&[u8])) -> usize {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz-regressions")
            .join(target);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("the regression folder") {
            let path = entry.expect("an entry").path();
            let data = std::fs::read(&path).expect("a regression input");
            check(&data);
            n += 1;
        }
        n
    }

    #[test]
    fn inputs_found_by_fuzzing_stay_fixed() {
        assert!(replay("photo_bytes", super::photo_bytes) > 0);
        assert!(replay("gpx", super::gpx) > 0);
        assert!(replay("rewrite", super::rewrite) > 0);
        assert!(replay("deep_link", super::deep_link) > 0);
    }
}
