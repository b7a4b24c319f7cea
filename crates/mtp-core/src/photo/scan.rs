//! Scanning a folder: every file ends up as a photo, a rejected file with its reason, or an
//! ignored sidecar, so that nothing is skipped silently (mapillary_tools#23).

use super::gpx::{Track, geotag};
use super::read::{PhotoError, ReadOptions, read_photo};
use super::{PhotoMeta, display_name, serialize_path_lossy, serialize_paths_lossy};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use walkdir::WalkDir;

/// Extensions (lower case) of files that travel with photos but are not photos: GPS tracks,
/// XMP and JSON sidecars, notes, camera thumbnails (.thm), iOS edit files (.aae).
pub const SIDECAR_EXTENSIONS: &[&str] = &[
    "gpx", "xmp", "json", "txt", "csv", "nmea", "kml", "kmz", "geojson", "log", "md", "ini", "thm",
    "aae",
];

/// Files read first, a thread a core, to tell a folder in memory from one on a disk.
const PROBE_FILES: usize = 32;
/// Past this much wall time a file on average, those first reads waited on a disk: here,
/// from the page cache they take 15–25 µs a file (thread start included), from the cold
/// virtual disk 65–75 µs.
const DISK_WAIT_PER_FILE: Duration = Duration::from_micros(40);
/// Reads in flight once the folder is known to be on a disk: 2.5× faster on this
/// machine's virtual disk than one a core (bench/prepare-real.sh, cold).
const READS_IN_FLIGHT: usize = 16;

/// Operating-system files that appear in photo folders (compared case-insensitively).
const OS_FILES: &[&str] = &["thumbs.db", "desktop.ini"];

/// Place photos that lack a GPS position on a GPX track.
#[derive(Debug, Clone)]
pub struct GpxGeotag {
    pub track: Track,
    /// Added to each photo's time before the lookup, to correct a camera clock that is off.
    pub offset_ms: i64,
    /// Also replace the EXIF positions of photos that have one (for a camera whose GPS is
    /// worse than the logger's). Photos outside the track are then rejected too.
    pub replace_exif_positions: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    pub read: ReadOptions,
    pub gpx: Option<GpxGeotag>,
}

/// Progress of the reading phase; `files_done` rises by one per file, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScanProgress {
    pub files_done: usize,
    pub files_total: usize,
}

/// A file that will not be uploaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedFile {
    #[serde(serialize_with = "serialize_path_lossy")]
    pub path: PathBuf,
    pub file_name: String,
    /// A [`PhotoError::code`], or `outside_track`, `symlink_loop`.
    pub code: String,
    /// What is wrong and what to do, naming the file.
    pub message: String,
}

impl RejectedFile {
    fn from_error(e: &PhotoError) -> Self {
        RejectedFile {
            path: e.path().to_path_buf(),
            file_name: display_name(e.path()),
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    #[serde(serialize_with = "serialize_path_lossy")]
    pub root: PathBuf,
    /// Usable photos (position and time known), sorted by path.
    pub photos: Vec<PhotoMeta>,
    /// Sorted by path.
    pub rejected: Vec<RejectedFile>,
    /// Sidecars and OS files, sorted by path.
    #[serde(serialize_with = "serialize_paths_lossy")]
    pub ignored: Vec<PathBuf>,
    /// Regular, non-hidden files found.
    pub files_seen: usize,
}

/// The folder itself cannot be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("the folder {} does not exist", .path.display())]
    NotFound { path: PathBuf },
    #[error("{} is not a folder: choose the folder that holds the photos", .path.display())]
    NotADirectory { path: PathBuf },
    #[error("the folder {} cannot be read ({source}): check its permissions", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ScanError {
    pub fn code(&self) -> &'static str {
        match self {
            ScanError::NotFound { .. } => "not_found",
            ScanError::NotADirectory { .. } => "not_a_directory",
            ScanError::Unreadable { .. } => "unreadable",
        }
    }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

/// Sidecars and OS files are listed as ignored rather than rejected: they are expected.
pub fn is_sidecar(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if ext.is_some_and(|e| SIDECAR_EXTENSIONS.contains(&e.as_str())) {
        return true;
    }
    path.file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|n| OS_FILES.contains(&n.as_str()))
}

fn check_root(root: &Path) -> Result<(), ScanError> {
    let path = root.to_path_buf();
    let md = match fs::metadata(root) {
        Ok(md) => md,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ScanError::NotFound { path }),
        Err(source) => return Err(ScanError::Unreadable { path, source }),
    };
    if !md.is_dir() {
        return Err(ScanError::NotADirectory { path });
    }
    fs::read_dir(root).map_err(|source| ScanError::Unreadable { path, source })?;
    Ok(())
}

/// Scans `root` recursively (sorted, following symlinks but not their loops, skipping hidden
/// files and folders), reading photos in parallel. `progress` is called once per file read,
/// from worker threads, with `files_done` increasing by one each call; throttling is the
/// caller's job.
///
/// Photos lacking a position but having a time are placed on `opts.gpx`'s track when given;
/// those it cannot place are rejected with the reason (how far outside the track).
pub fn scan_folder(
    root: &Path,
    opts: &ScanOptions,
    progress: &(dyn Fn(ScanProgress) + Sync),
) -> Result<ScanReport, ScanError> {
    check_root(root)?;
    let mut report = ScanReport {
        root: root.to_path_buf(),
        ..ScanReport::default()
    };
    let mut files = Vec::new();
    let walk = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_hidden(e.file_name()));
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                report.files_seen += 1;
                if is_sidecar(e.path()) {
                    report.ignored.push(e.into_path());
                } else {
                    files.push(e.into_path());
                }
            }
            Ok(_) => {} // folders, and sockets/FIFOs which cannot be photos
            Err(err) => {
                let path = err.path().unwrap_or(root).to_path_buf();
                let name = display_name(&path);
                let (code, message) = if err.loop_ancestor().is_some() {
                    (
                        "symlink_loop",
                        format!("{name} is a symbolic link to one of its parent folders: skipped"),
                    )
                } else {
                    (
                        "unreadable",
                        format!(
                            "{name} cannot be read ({err}): check that it exists and that you may read it"
                        ),
                    )
                };
                report.rejected.push(RejectedFile {
                    file_name: name,
                    path,
                    code: code.into(),
                    message,
                });
            }
        }
    }

    let results = read_photos(&files, &opts.read, progress, Reads::WideIfDiskWaits);
    let mut to_geotag = Vec::new();
    // Collected in place, into the results' own buffer: pushing onto a new vector kept
    // both whole at once (≈ 0.5 kB a photo).
    let photos: Vec<PhotoMeta> = results
        .into_iter()
        .filter_map(|r| match (r, &opts.gpx) {
            (Ok(meta), Some(g)) if g.replace_exif_positions => {
                to_geotag.push(meta);
                None
            }
            (Ok(meta), _) => Some(meta),
            (Err(e), Some(_)) => {
                match e.into_geotaggable() {
                    Ok(meta) => to_geotag.push(meta),
                    Err(e) => report.rejected.push(RejectedFile::from_error(&e)),
                }
                None
            }
            (Err(e), None) => {
                report.rejected.push(RejectedFile::from_error(&e));
                None
            }
        })
        .collect();
    report.photos = photos;
    if let Some(g) = &opts.gpx {
        let misses: HashMap<usize, _> = geotag(&mut to_geotag, &g.track, g.offset_ms)
            .into_iter()
            .map(|m| (m.index, m.reason))
            .collect();
        for (i, meta) in to_geotag.into_iter().enumerate() {
            match misses.get(&i) {
                None => report.photos.push(meta),
                Some(reason) => {
                    let lacks = if meta.has_position() {
                        ""
                    } else {
                        " has no GPS position and"
                    };
                    report.rejected.push(RejectedFile {
                        message: format!("{}{lacks} {}", meta.file_name, reason.message()),
                        code: reason.code().into(),
                        file_name: meta.file_name,
                        path: meta.path,
                    });
                }
            }
        }
    }
    // Paths are unique, so an unstable sort orders them the same, without a copy.
    report.photos.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    report.rejected.sort_by(|a, b| a.path.cmp(&b.path));
    report.ignored.sort();
    Ok(report)
}

/// How many reads [`read_photos`] keeps in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// One a core, or [`READS_IN_FLIGHT`] once the first files show the folder is on a disk.
    WideIfDiskWaits,
    /// [`READS_IN_FLIGHT`] after the first files, whatever they show (tests).
    #[cfg(test)]
    Wide,
}

/// Reads every file, in parallel; the results come in the files' order.
fn read_photos(
    files: &[PathBuf],
    opts: &ReadOptions,
    progress: &(dyn Fn(ScanProgress) + Sync),
    reads: Reads,
) -> Vec<Result<PhotoMeta, PhotoError>> {
    let total = files.len();
    let done = Mutex::new(0usize);
    // Every result is written straight into the one vector, in the files' order: collecting
    // each batch apart and appending it held two copies of the folder's metadata at once.
    let mut results = Vec::with_capacity(total);
    let read = |files: &[PathBuf], results: &mut Vec<Result<PhotoMeta, PhotoError>>| {
        results.par_extend(files.par_iter().map(|path| {
            let r = read_photo(path, opts);
            // Calling under the lock keeps files_done strictly increasing across threads.
            if let Ok(mut d) = done.lock() {
                *d += 1;
                progress(ScanProgress {
                    files_done: *d,
                    files_total: total,
                });
            }
            r
        }));
    };
    // The first files, one thread a core, tell whether the folder is read from memory (the
    // page cache) or waits on a disk. Waiting, the rest is read with many reads in flight:
    // a disk, an SSD or a card reader answers many at once about as fast as one.
    let probe = files.len().min(PROBE_FILES);
    let started = Instant::now();
    read(&files[..probe], &mut results);
    let waited = probe > 0 && started.elapsed() / probe as u32 > DISK_WAIT_PER_FILE;
    let rest = &files[probe..];
    let wide = if (waited || reads != Reads::WideIfDiskWaits) && !rest.is_empty() {
        rayon::ThreadPoolBuilder::new()
            .num_threads(READS_IN_FLIGHT)
            .thread_name(|i| format!("mtp-read-{i}"))
            .build()
            .ok()
    } else {
        None
    };
    match wide {
        Some(pool) => pool.install(|| read(rest, &mut results)),
        None => read(rest, &mut results),
    }
    results
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::photo::fixture::{self, BrokenExif, FixturePhoto, TrackSpec};
    use crate::photo::gpx::parse_gpx;
    use crate::photo::{PositionSource, ReadOptions};
    use std::os::unix::ffi::OsStrExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const T: i64 = 1_714_550_400_000;

    fn no_progress(_: ScanProgress) {}

    fn codes(r: &ScanReport) -> Vec<(String, String)> {
        r.rejected
            .iter()
            .map(|x| (x.file_name.clone(), x.code.clone()))
            .collect()
    }

    #[test]
    fn mixed_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let good = FixturePhoto::at(48.0, 2.0, T);
        fixture::write_jpeg(&root.join("a_good.jpg"), &good).unwrap();
        fs::create_dir_all(root.join("nested/deeper")).unwrap();
        fixture::write_jpeg(&root.join("nested/deeper/b_good.JPG"), &good).unwrap();
        fixture::write_truncated(&root.join("c_truncated.jpg")).unwrap();
        fixture::write_no_exif(&root.join("d_noexif.jpg")).unwrap();
        fixture::write_not_a_jpeg(&root.join("e_image.png")).unwrap();
        fixture::write_broken_exif(&root.join("f_loop.jpg"), BrokenExif::IfdLoop).unwrap();
        let nogps = FixturePhoto {
            captured_at_ms: Some(T),
            ..Default::default()
        };
        fixture::write_jpeg(&root.join("g_nogps.jpg"), &nogps).unwrap();
        fs::write(root.join("notes.TXT"), "hello").unwrap();
        fs::write(root.join("track.gpx"), "<gpx/>").unwrap();
        fs::write(root.join("Thumbs.db"), "x").unwrap();
        fixture::write_jpeg(&root.join(".hidden.jpg"), &good).unwrap();
        fs::create_dir_all(root.join(".thumbnails")).unwrap();
        fixture::write_jpeg(&root.join(".thumbnails/x.jpg"), &good).unwrap();
        fs::write(root.join("nested/video.mp4"), b"\0\0\0\x18ftypisom\0\0\0\0").unwrap();

        let calls = Mutex::new(Vec::new());
        let report = scan_folder(root, &ScanOptions::default(), &|p| {
            calls.lock().unwrap().push(p);
        })
        .unwrap();
        let names: Vec<_> = report.photos.iter().map(|p| p.file_name.as_str()).collect();
        assert_eq!(names, ["a_good.jpg", "b_good.JPG"]);
        assert_eq!(
            codes(&report),
            [
                ("c_truncated.jpg".into(), "truncated".into()),
                ("d_noexif.jpg".into(), "no_exif".into()),
                ("e_image.png".into(), "not_jpeg".into()),
                ("f_loop.jpg".into(), "broken_exif".into()),
                ("g_nogps.jpg".into(), "no_gps".into()),
                ("video.mp4".into(), "not_jpeg".into()),
            ]
        );
        assert!(report.rejected[5].message.contains("MP4/MOV video"));
        let ignored: Vec<_> = report
            .ignored
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(ignored, ["Thumbs.db", "notes.TXT", "track.gpx"]);
        assert_eq!(report.files_seen, 11);

        let calls = calls.into_inner().unwrap();
        assert_eq!(calls.len(), 8);
        for (i, c) in calls.iter().enumerate() {
            assert_eq!(
                *c,
                ScanProgress {
                    files_done: i + 1,
                    files_total: 8
                }
            );
        }
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["rejected"][0]["code"], "truncated");
        assert_eq!(json["photos"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn geotags_photos_without_gps_from_a_gpx_track() {
        let dir = tempfile::tempdir().unwrap();
        let spec = TrackSpec {
            utc_offset_minutes: Some(0),
            ..TrackSpec::default()
        };
        let track_photos = fixture::track_photos(20, &spec);
        let track = parse_gpx(&fixture::gpx_for(&track_photos)).unwrap();
        // Photos without GPS, taken with a camera clock 30 s slow.
        for (i, p) in track_photos.iter().enumerate().take(5) {
            let mut q = p.clone();
            q.lat = None;
            q.lon = None;
            q.altitude = None;
            q.captured_at_ms = q.captured_at_ms.map(|t| t - 30_000 + 500);
            fixture::write_jpeg(&dir.path().join(format!("p{i}.jpg")), &q).unwrap();
        }
        // One with its own GPS far away: kept as it is.
        let own = FixturePhoto {
            utc_offset_minutes: Some(0),
            ..FixturePhoto::at(10.0, 10.0, T - 25_000)
        };
        fixture::write_jpeg(&dir.path().join("own.jpg"), &own).unwrap();
        let gpx = |offset_ms, replace| ScanOptions {
            read: ReadOptions::default(),
            gpx: Some(GpxGeotag {
                track: track.clone(),
                offset_ms,
                replace_exif_positions: replace,
            }),
        };

        // Without the offset, p0 (07:59:30.5) is before the track (08:00:00).
        let r = scan_folder(dir.path(), &gpx(0, false), &no_progress).unwrap();
        let rejected = codes(&r);
        assert!(
            rejected.contains(&("p0.jpg".into(), "outside_track".into())),
            "{rejected:?}"
        );
        let msg = &r.rejected[0].message;
        assert!(
            msg.starts_with(
                "p0.jpg has no GPS position and was taken 29.5 s before the GPX track starts"
            ),
            "{msg}"
        );
        assert!(msg.contains("time offset"), "{msg}");

        // With it, all five are placed halfway between two track points.
        let r = scan_folder(dir.path(), &gpx(30_000, false), &no_progress).unwrap();
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
        assert_eq!(r.photos.len(), 6);
        let p1 = r.photos.iter().find(|p| p.file_name == "p1.jpg").unwrap();
        assert_eq!(p1.position_source, Some(PositionSource::Gpx));
        let (a, b) = (&track.points()[1], &track.points()[2]);
        assert!((p1.lat.unwrap() - (a.lat + b.lat) / 2.0).abs() < 1e-7);
        assert!((p1.altitude.unwrap() - 35.0).abs() < 1e-9);
        let own_read = r.photos.iter().find(|p| p.file_name == "own.jpg").unwrap();
        assert_eq!(own_read.position_source, Some(PositionSource::Exif));
        assert_eq!(own_read.lat, Some(10.0));

        // Replacing EXIF positions moves "own.jpg" onto the track.
        let r = scan_folder(dir.path(), &gpx(30_000, true), &no_progress).unwrap();
        let own_read = r.photos.iter().find(|p| p.file_name == "own.jpg").unwrap();
        assert_eq!(own_read.position_source, Some(PositionSource::Gpx));
        assert!((own_read.lat.unwrap() - 48.8566).abs() < 0.01);
    }

    #[test]
    fn root_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = scan_folder(&missing, &ScanOptions::default(), &no_progress).unwrap_err();
        assert_eq!(e.code(), "not_found");
        assert!(e.to_string().contains(&*missing.to_string_lossy()));
        let file = dir.path().join("f.jpg");
        fs::write(&file, "x").unwrap();
        let e = scan_folder(&file, &ScanOptions::default(), &no_progress).unwrap_err();
        assert_eq!(e.code(), "not_a_directory");
        assert!(e.to_string().contains("f.jpg"));
    }

    #[test]
    fn hidden_root_and_symlink_loops() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(".photos");
        fs::create_dir_all(root.join("sub")).unwrap();
        fixture::write_jpeg(&root.join("sub/a.jpg"), &FixturePhoto::at(1.0, 1.0, T)).unwrap();
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("missing"), root.join("dangling.jpg")).unwrap();
        let r = scan_folder(&root, &ScanOptions::default(), &no_progress).unwrap();
        assert_eq!(r.photos.len(), 1);
        assert_eq!(
            codes(&r),
            [
                ("dangling.jpg".into(), "unreadable".into()),
                ("loop".into(), "symlink_loop".into())
            ]
        );
    }

    #[test]
    fn unicode_and_non_utf8_names_scan_and_serialize() {
        let dir = tempfile::tempdir().unwrap();
        let p = FixturePhoto::at(1.0, 1.0, T);
        let sub = dir.path().join("Straße 東京");
        fs::create_dir_all(&sub).unwrap();
        fixture::write_jpeg(&sub.join("📷.jpg"), &p).unwrap();
        let raw = dir
            .path()
            .join(std::ffi::OsStr::from_bytes(b"\xff\xfe.jpg"));
        fixture::write_jpeg(&raw, &p).unwrap();
        let bad = dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xff.jpg"));
        fixture::write_no_exif(&bad).unwrap();
        let r = scan_folder(dir.path(), &ScanOptions::default(), &no_progress).unwrap();
        assert_eq!(r.photos.len(), 2);
        assert!(r.photos.iter().any(|m| m.path == raw));
        assert!(r.photos.iter().any(|m| m.file_name == "📷.jpg"));
        assert_eq!(r.rejected[0].path, bad);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("Straße 東京"));
        assert!(json.contains("bad\u{fffd}.jpg"));
    }

    #[test]
    fn scans_a_thousand_photo_track() {
        let dir = tempfile::tempdir().unwrap();
        let paths = fixture::write_track_folder(dir.path(), 1000, &TrackSpec::default()).unwrap();
        let n = AtomicUsize::new(0);
        let r = scan_folder(dir.path(), &ScanOptions::default(), &|_| {
            n.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(n.into_inner(), 1000);
        assert_eq!(r.photos.len(), 1000);
        assert!(r.rejected.is_empty());
        let got: Vec<_> = r.photos.iter().map(|p| p.path.clone()).collect();
        assert_eq!(got, paths);
        assert!(
            r.photos
                .windows(2)
                .all(|w| w[0].captured_at_ms < w[1].captured_at_ms)
        );
        assert_eq!(
            r.photos[0].captured_at_ms,
            Some(TrackSpec::default().start_time_ms)
        );
    }

    /// Read with many reads in flight (as from a cold disk), a folder gives the same
    /// photos and rejections, in the same order, and the progress still counts up by one.
    #[test]
    fn wide_reads_give_what_one_a_core_gives() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for i in 0..(PROBE_FILES * 3) {
            let path = dir.path().join(format!("{i:03}.jpg"));
            if i % 7 == 3 {
                fixture::write_truncated(&path).unwrap();
            } else {
                let photo = FixturePhoto::at(48.0 + i as f64 * 1e-4, 2.0, T + i as i64 * 1000);
                fixture::write_jpeg(&path, &photo).unwrap();
            }
            files.push(path);
        }
        let summary = |results: Vec<Result<PhotoMeta, PhotoError>>| -> Vec<String> {
            results
                .into_iter()
                .map(|r| match r {
                    Ok(m) => format!("{} {:?} {:?}", m.file_name, m.lat, m.captured_at_ms),
                    Err(e) => format!("error {e}"),
                })
                .collect()
        };
        let opts = ReadOptions::default();
        let narrow = summary(read_photos(
            &files,
            &opts,
            &no_progress,
            Reads::WideIfDiskWaits,
        ));
        let seen = Mutex::new(Vec::new());
        let on_wide_pool = AtomicUsize::new(0);
        let record = |p: ScanProgress| {
            if std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("mtp-read-"))
            {
                on_wide_pool.fetch_add(1, Ordering::Relaxed);
            }
            seen.lock().unwrap().push((p.files_done, p.files_total));
        };
        let wide = summary(read_photos(&files, &opts, &record, Reads::Wide));
        assert_eq!(wide, narrow);
        assert_eq!(wide.iter().filter(|s| s.starts_with("error")).count(), 14);
        let seen = seen.into_inner().unwrap();
        let n = files.len();
        assert_eq!(seen, (1..=n).map(|d| (d, n)).collect::<Vec<_>>());
        assert_eq!(on_wide_pool.into_inner(), n - PROBE_FILES);
    }
}
