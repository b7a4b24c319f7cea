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
use walkdir::WalkDir;

/// Extensions (lower case) of files that travel with photos but are not photos: GPS tracks,
/// XMP and JSON sidecars, notes, camera thumbnails (.thm), iOS edit files (.aae).
pub const SIDECAR_EXTENSIONS: &[&str] = &[
    "gpx", "xmp", "json", "txt", "csv", "nmea", "kml", "kmz", "geojson", "log", "md", "ini", "thm",
    "aae",
];

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
                        format!("{name} cannot be read ({err}): check that it exists and that you may read it"),
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

    let total = files.len();
    let done = Mutex::new(0usize);
    let results: Vec<Result<PhotoMeta, PhotoError>> = files
        .par_iter()
        .map(|path| {
            let r = read_photo(path, &opts.read);
            // Calling under the lock keeps files_done strictly increasing across threads.
            if let Ok(mut d) = done.lock() {
                *d += 1;
                progress(ScanProgress {
                    files_done: *d,
                    files_total: total,
                });
            }
            r
        })
        .collect();

    let mut to_geotag = Vec::new();
    for r in results {
        match (r, &opts.gpx) {
            (Ok(meta), Some(g)) if g.replace_exif_positions => to_geotag.push(meta),
            (Ok(meta), _) => report.photos.push(meta),
            (Err(e), Some(_)) => match e.into_geotaggable() {
                Ok(meta) => to_geotag.push(meta),
                Err(e) => report.rejected.push(RejectedFile::from_error(&e)),
            },
            (Err(e), None) => report.rejected.push(RejectedFile::from_error(&e)),
        }
    }
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
    report.photos.sort_by(|a, b| a.path.cmp(&b.path));
    report.rejected.sort_by(|a, b| a.path.cmp(&b.path));
    report.ignored.sort();
    Ok(report)
}
