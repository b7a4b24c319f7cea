//! The bad-input corpus: one folder holding every kind of hostile or broken file we know of.
//! Scanning it must not panic, hang or allocate by a declared size, and every file must come
//! out as a photo, a rejected file naming itself with its reason, or an ignored sidecar.

#![allow(clippy::unwrap_used)]

use super::fixture::{self, BrokenExif, FixturePhoto};
use super::scan::{ScanOptions, scan_folder};
use super::{ReadOptions, read_photo_bytes};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const T: i64 = 1_714_550_400_000;

/// A JPEG whose EXIF is `tiff`, as raw bytes.
fn with_tiff(tiff: &[u8]) -> Vec<u8> {
    fixture::jpeg_with_raw_exif(Some(tiff), None).unwrap()
}

/// EXIF whose one entry declares four billion ASCII characters at an offset past the end.
fn huge_count_tiff() -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
    t.extend_from_slice(&1u16.to_be_bytes());
    t.extend_from_slice(&[0x01, 0x0F, 0x00, 0x02]);
    t.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
    t.extend_from_slice(&0x10u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t
}

/// EXIF whose IFD0 claims 65,535 entries in a 20-byte block.
fn huge_ifd_tiff() -> Vec<u8> {
    let mut t = b"II\x2a\0\x08\0\0\0".to_vec();
    t.extend_from_slice(&0xFFFFu16.to_le_bytes());
    t.extend_from_slice(&[0u8; 10]);
    t
}

/// An APP1 segment declaring 65,533 bytes of a 40-byte file.
fn huge_segment_jpeg() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF];
    j.extend_from_slice(b"Exif\0\0MM\0\x2a\0\0\0\x08");
    j.resize(40, 0);
    j
}

/// A JPEG segment walk that never reaches an image: only fill bytes and empty markers.
fn marker_soup_jpeg() -> Vec<u8> {
    let mut j = vec![0xFF, 0xD8];
    for _ in 0..10_000 {
        j.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0x01]);
    }
    j
}

#[test]
fn every_hostile_file_gets_a_reason_and_nothing_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let good = FixturePhoto::at(48.0, 2.0, T);
    fixture::write_jpeg(&root.join("good.jpg"), &good).unwrap();
    fs::write(root.join("empty.jpg"), b"").unwrap();
    fixture::write_truncated(&root.join("truncated.jpg")).unwrap();
    fixture::write_broken_exif(&root.join("offset_loop.jpg"), BrokenExif::IfdLoop).unwrap();
    fixture::write_broken_exif(
        &root.join("zero_denominators.jpg"),
        BrokenExif::ZeroDenominatorGps,
    )
    .unwrap();
    fixture::write_broken_exif(&root.join("latitude_95.jpg"), BrokenExif::OutOfRangeGps).unwrap();
    fs::write(root.join("huge_count.jpg"), with_tiff(&huge_count_tiff())).unwrap();
    fs::write(root.join("huge_ifd.jpg"), with_tiff(&huge_ifd_tiff())).unwrap();
    fs::write(root.join("huge_segment.jpg"), huge_segment_jpeg()).unwrap();
    fs::write(root.join("marker_soup.jpg"), marker_soup_jpeg()).unwrap();
    // A name as long as the file system allows, and one that is not UTF-8.
    let long = format!("{}.jpg", "a".repeat(250));
    fixture::write_jpeg(&root.join(&long), &good).unwrap();
    let raw = root.join(std::ffi::OsStr::from_bytes(b"caf\xe9.jpg"));
    fixture::write_no_exif(&raw).unwrap();
    // Things that are not files: a folder named like a photo, a FIFO (opening it would block
    // for ever), a symbolic link to its own folder, a dangling link.
    fs::create_dir_all(root.join("folder.jpg")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(root.join("pipe.jpg"))
        .status()
        .unwrap();
    assert!(fifo.success());
    std::os::unix::fs::symlink(root, root.join("folder.jpg/loop")).unwrap();
    std::os::unix::fs::symlink(root.join("missing.jpg"), root.join("dangling.jpg")).unwrap();
    // A file we may not read (unless the tests run as root, which reads anyway).
    let locked = root.join("locked.jpg");
    fixture::write_jpeg(&locked, &good).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let root_reads_anyway = fs::read(&locked).is_ok();
    // A folder of 10,000 things that are not photos.
    let junk = root.join("junk");
    fs::create_dir_all(&junk).unwrap();
    for i in 0..10_000u32 {
        fs::write(junk.join(format!("note_{i:05}.dat")), i.to_le_bytes()).unwrap();
    }

    let report = scan_folder(root, &ScanOptions::default(), &|_| {}).unwrap();

    // Every file is accounted for, once.
    assert_eq!(
        report.photos.len() + report.rejected.len() + report.ignored.len(),
        report.files_seen
            + report
                .rejected
                .iter()
                .filter(|r| r.code == "symlink_loop" || r.path.ends_with("dangling.jpg"))
                .count(),
        "{:#?}",
        report
            .rejected
            .iter()
            .filter(|r| !r.path.starts_with(&junk))
            .collect::<Vec<_>>()
    );
    let mut kept: Vec<_> = report.photos.iter().map(|p| p.file_name.clone()).collect();
    kept.sort();
    let mut want = vec!["good.jpg".to_string(), long.clone()];
    if root_reads_anyway {
        want.push("locked.jpg".into());
    }
    want.sort();
    assert_eq!(kept, want);
    for r in &report.rejected {
        let name = super::display_name(&r.path);
        assert!(
            r.message.contains(&name),
            "{}: the message does not name the file: {}",
            r.code,
            r.message
        );
    }
    let code_of = |name: &str| {
        report
            .rejected
            .iter()
            .find(|r| {
                r.path
                    .file_name()
                    .is_some_and(|n| n.as_bytes() == name.as_bytes())
            })
            .map(|r| r.code.clone())
            .unwrap_or_else(|| panic!("{name} was not rejected"))
    };
    assert_eq!(code_of("empty.jpg"), "not_jpeg");
    assert_eq!(code_of("truncated.jpg"), "truncated");
    assert_eq!(code_of("offset_loop.jpg"), "broken_exif");
    assert_eq!(code_of("zero_denominators.jpg"), "bad_gps");
    assert_eq!(code_of("latitude_95.jpg"), "bad_gps");
    assert_eq!(code_of("dangling.jpg"), "unreadable");
    assert_eq!(code_of("loop"), "symlink_loop");
    for name in [
        "huge_count.jpg",
        "huge_ifd.jpg",
        "huge_segment.jpg",
        "marker_soup.jpg",
    ] {
        let code = code_of(name);
        assert!(
            [
                "broken_exif",
                "truncated",
                "corrupt_jpeg",
                "no_exif",
                "no_time",
                "no_gps"
            ]
            .contains(&code.as_str()),
            "{name}: {code}"
        );
    }
    if !root_reads_anyway {
        assert_eq!(code_of("locked.jpg"), "unreadable");
    }
    // Not photos: each is told apart (rejected with a reason, or ignored as not a photo).
    let junk_seen = report
        .rejected
        .iter()
        .filter(|r| r.path.starts_with(&junk))
        .count()
        + report
            .ignored
            .iter()
            .filter(|p| p.starts_with(&junk))
            .count();
    assert_eq!(junk_seen, 10_000);
    assert!(!report.photos.iter().any(|p| p.path.ends_with("pipe.jpg")));
    serde_json::to_string(&report).unwrap();
}

/// The same hostile bytes read from memory, and every prefix of them: errors, never a panic.
#[test]
fn hostile_bytes_and_their_prefixes_are_refused_cleanly() {
    let o = ReadOptions::default();
    let samples = [
        with_tiff(&huge_count_tiff()),
        with_tiff(&huge_ifd_tiff()),
        huge_segment_jpeg(),
        marker_soup_jpeg(),
        with_tiff(&fixture::broken_exif_tiff(BrokenExif::IfdLoop).unwrap()),
    ];
    for sample in &samples {
        for end in (0..sample.len()).step_by(7).chain([sample.len()]) {
            let _ = read_photo_bytes(Path::new("x.jpg"), &sample[..end], &o);
        }
        assert!(read_photo_bytes(Path::new("x.jpg"), sample, &o).is_err());
    }
}
