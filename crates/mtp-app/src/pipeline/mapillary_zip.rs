//! Mapillary's zip upload: one deflated zip per sequence, finished with `file_type` `zip`
//! (PROTOCOLS §2.2). mapillary_tools 0.14 sends image bundles instead, an undocumented
//! protocol; the zip is the path older versions used, kept as the fallback for a Mapillary
//! that refuses bundles.
//!
//! The zip holds the upload copies of the chunk's photos (the same bytes a bundle sends,
//! `MAP*` description in EXIF), as entries `0.jpg`, `1.jpg`… in sequence order, each dated
//! 1980-01-01 as mapillary_tools writes them, with the comment
//! `{"sequence_md5sum":"<md5>"}`: the md5 of the copies' md5s in hex, one after the other
//! (mapillary_tools hashes the files as they are on disk the same way; what Mapillary does
//! with it is not documented, and mapillary_tools refuses a zip without it). It is written to the data folder
//! through a `.part` file and renamed once whole; every byte is the same on every build from
//! the same photos, so its key `mly_tools_<md5 of the zip>.zip`, saved before the first
//! byte goes, resumes the same upload after a restart even if the file had to be written
//! again. Memory does not grow with the photos: each copy is streamed from its file into
//! the zip.

use super::mapillary::upload_source_blocking;
use md5::{Digest, Md5};
use mtp_core::engine::StepError;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// One photo of a zip: its file and the description its copy carries.
#[derive(Debug, Clone)]
pub(crate) struct ZipPhoto {
    pub path: String,
    pub file_size: i64,
    pub description: String,
}

/// Where a job's chunk is written as a zip.
pub(crate) fn zip_path(data_dir: &Path, job_id: i64, chunk: usize) -> PathBuf {
    data_dir
        .join(ZIP_FOLDER)
        .join(format!("mapillary-job{job_id}-chunk{chunk}.zip"))
}

/// The folder of the data folder where zips wait to be sent.
pub(crate) const ZIP_FOLDER: &str = "uploads";

/// Removes the zips no job is about to send, whole or in pieces: of a job gone (its
/// sequence deleted) or past publishing. Run by the process that takes the uploads, before
/// its engine starts; a job in publish keeps its zip (a piece is overwritten when it is
/// written again), and a zip removed too early is written again, byte for byte the same.
pub(crate) async fn sweep_zips(app: &crate::App) {
    let dir = app.data_dir().join(ZIP_FOLDER);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let job_id = name
            .strip_prefix("mapillary-job")
            .and_then(|rest| rest.split('-').next())
            .and_then(|id| id.parse::<i64>().ok());
        let keep = match job_id {
            Some(id) if name.ends_with(".zip") || name.ends_with(".zip.part") => matches!(
                app.store().job(id).await,
                Ok(Some(job)) if job.stage == mtp_core::engine::Stage::Publish
            ),
            _ => false,
        };
        if !keep && let Err(e) = std::fs::remove_file(entry.path()) {
            tracing::warn!("could not remove {}: {e}", entry.path().display());
        }
    }
}

/// The zip at `dest` and its key: the file there when it hashes to `saved_key` (written
/// before, for this chunk), else written anew from `photos`. Blocking: reads every photo.
pub(crate) fn zip_for_chunk(
    dest: &Path,
    saved_key: Option<&str>,
    photos: &[ZipPhoto],
    stop: &AtomicBool,
) -> Result<String, StepError> {
    if let Some(saved) = saved_key
        && dest.is_file()
        && key_of_file(dest).ok().as_deref() == Some(saved)
    {
        return Ok(saved.to_string());
    }
    write_zip(dest, photos, stop)?;
    key_of_file(dest).map_err(|e| cannot_write(dest, &e))
}

/// Writes the zip of `photos` to `dest` (through `dest` + `.part`). `stop` set (the job
/// paused or cancelled) ends it before the next photo, the piece removed.
pub(crate) fn write_zip(
    dest: &Path,
    photos: &[ZipPhoto],
    stop: &AtomicBool,
) -> Result<(), StepError> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| cannot_write(dir, &e))?;
    }
    let mut part = dest.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let file = File::create(&part).map_err(|e| cannot_write(&part, &e))?;
    let written = write_entries(BufWriter::new(file), photos, &part, stop);
    if let Err(e) = written {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, dest).map_err(|e| cannot_write(dest, &e))
}

fn write_entries(
    out: BufWriter<File>,
    photos: &[ZipPhoto],
    part: &Path,
    stop: &AtomicBool,
) -> Result<(), StepError> {
    let zip_error = |e: zip::result::ZipError| cannot_write(part, &e);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        // JPEG hardly shrinks: the fastest level, as good here as any.
        .compression_level(Some(1))
        .last_modified_time(DateTime::default())
        .unix_permissions(0o644);
    let mut zip = ZipWriter::new(out);
    let mut sequence = Md5::new();
    for (index, photo) in photos.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            return Err(StepError::Interrupted);
        }
        let source = upload_source_blocking(&photo.path, photo.file_size, &photo.description)?;
        zip.start_file(format!("{index}.jpg"), options)
            .map_err(zip_error)?;
        let mut copy = Md5::new();
        let mut failed: Option<std::io::Error> = None;
        source
            .read_all_blocking(|bytes| {
                if failed.is_none() {
                    copy.update(bytes);
                    failed = zip.write_all(bytes).err();
                }
            })
            .map_err(|e| StepError::permanent(e.to_string()))?;
        if let Some(e) = failed {
            return Err(cannot_write(part, &e));
        }
        sequence.update(hex::encode(copy.finalize()).as_bytes());
    }
    zip.set_comment(format!(
        "{{\"sequence_md5sum\":\"{}\"}}",
        hex::encode(sequence.finalize())
    ))
    .map_err(zip_error)?;
    let out = zip.finish().map_err(zip_error)?;
    let file = out
        .into_inner()
        .map_err(|e| cannot_write(part, e.error()))?;
    file.sync_all().map_err(|e| cannot_write(part, &e))
}

/// `mly_tools_<md5>.zip` of the file's bytes.
fn key_of_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
    }
    Ok(format!("mly_tools_{}.zip", hex::encode(md5.finalize())))
}

fn cannot_write(path: &Path, e: &dyn std::fmt::Display) -> StepError {
    StepError::permanent(format!(
        "cannot write the zip for Mapillary at {}: {e} (it needs as much free space as the photos: make room, then retry)",
        path.display()
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mtp_core::photo::fixture::{FixturePhoto, fixture_bytes};

    fn photos(dir: &Path, n: usize) -> Vec<ZipPhoto> {
        (0..n)
            .map(|i| {
                let path = dir.join(format!("p{i}.jpg"));
                let mut bytes = fixture_bytes(&FixturePhoto::at(
                    47.0 + i as f64 * 1e-4,
                    8.0,
                    1_700_000_000_000 + i as i64 * 1000,
                ));
                // One small photo (rewritten in memory), the others large (streamed).
                if i > 0 {
                    bytes.resize(200 * 1024 + i, u8::try_from(i).unwrap());
                }
                std::fs::write(&path, &bytes).unwrap();
                ZipPhoto {
                    path: path.display().to_string(),
                    file_size: bytes.len() as i64,
                    description: format!("{{\"MAPFilename\":\"p{i}.jpg\"}}"),
                }
            })
            .collect()
    }

    #[test]
    fn the_zip_holds_each_copy_in_order_and_is_the_same_every_time() {
        let dir = tempfile::tempdir().unwrap();
        let photos = photos(dir.path(), 3);
        let dest = zip_path(dir.path(), 7, 0);
        let key = zip_for_chunk(&dest, None, &photos, &AtomicBool::new(false)).unwrap();
        assert!(
            key.starts_with("mly_tools_") && key.ends_with(".zip"),
            "{key}"
        );

        let mut archive = zip::ZipArchive::new(File::open(&dest).unwrap()).unwrap();
        let comment: serde_json::Value = serde_json::from_slice(archive.comment()).unwrap();
        assert_eq!(comment["sequence_md5sum"].as_str().unwrap().len(), 32);
        assert_eq!(archive.len(), 3);
        for (i, photo) in photos.iter().enumerate() {
            let mut entry = archive.by_index(i).unwrap();
            assert_eq!(entry.name().unwrap(), format!("{i}.jpg"));
            assert_eq!(entry.last_modified(), Some(DateTime::default()));
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            let expected =
                upload_source_blocking(&photo.path, photo.file_size, &photo.description).unwrap();
            let mut copy = Vec::new();
            expected
                .read_all_blocking(|b| copy.extend_from_slice(b))
                .unwrap();
            assert_eq!(bytes, copy, "entry {i} is the upload copy");
        }

        // Written again, byte for byte the same: the saved key resumes the same upload.
        std::fs::remove_file(&dest).unwrap();
        assert_eq!(
            zip_for_chunk(&dest, Some(&key), &photos, &AtomicBool::new(false)).unwrap(),
            key
        );
        // A file that is not the saved one is written again.
        std::fs::write(&dest, b"something else").unwrap();
        assert_eq!(
            zip_for_chunk(&dest, Some(&key), &photos, &AtomicBool::new(false)).unwrap(),
            key
        );
        assert!(!dest.with_extension("zip.part").exists());
    }

    #[test]
    fn a_stopped_job_stops_the_zip_and_leaves_no_part_file() {
        let dir = tempfile::tempdir().unwrap();
        let photos = photos(dir.path(), 2);
        let dest = zip_path(dir.path(), 3, 0);
        let e = zip_for_chunk(&dest, None, &photos, &AtomicBool::new(true)).unwrap_err();
        assert_eq!(e, StepError::Interrupted);
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(dest.parent().unwrap()).unwrap().count(),
            0
        );
    }

    #[test]
    fn a_photo_gone_fails_with_its_name_and_leaves_no_part_file() {
        let dir = tempfile::tempdir().unwrap();
        let photos = photos(dir.path(), 2);
        std::fs::remove_file(&photos[1].path).unwrap();
        let dest = zip_path(dir.path(), 1, 2);
        let e = zip_for_chunk(&dest, None, &photos, &AtomicBool::new(false)).unwrap_err();
        assert!(e.to_string().contains("p1.jpg"), "{e}");
        assert!(!dest.exists());
        let mut part = dest.into_os_string();
        part.push(".part");
        assert!(!PathBuf::from(part).exists());
    }
}
