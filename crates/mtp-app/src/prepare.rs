//! Import: read a folder, plan its sequences, show the plan, then save it.

use crate::{App, AppError, AppEvent, AppResult};
use md5::{Digest, Md5};
use mtp_core::Destination;
use mtp_core::photo::ReadOptions;
use mtp_core::photo::gpx::read_gpx;
use mtp_core::photo::scan::{GpxGeotag, RejectedFile, ScanOptions, ScanProgress, scan_folder};
use mtp_core::plan::validate::{DestinationCheck, check_destinations};
use mtp_core::plan::{DropReason, Plan, PlanOptions, PlanSummary, SplitReason, plan_sequences};
use mtp_core::store::{DroppedFile, NewImport, SequenceMeta};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// What the user can set before reading a folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PrepareOptions {
    /// A GPX track to place photos that have no GPS position.
    pub gpx: Option<PathBuf>,
    /// Seconds added to each photo's time before the GPX lookup (camera clock off).
    pub gpx_offset_s: f64,
    /// Camera clock's UTC offset in minutes, for photos whose EXIF has no offset.
    /// `None` = this computer's time zone (as mapillary_tools does).
    pub camera_utc_offset_minutes: Option<i32>,
    /// Sequence-building options; defaults are mapillary_tools'.
    pub plan: PlanOptions,
    /// Map the Paths transport type, if already chosen (it is checked per destination).
    pub transport_type: Option<String>,
}

/// A photo on the map.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoPoint {
    pub file_name: String,
    pub lat: f64,
    pub lon: f64,
    pub captured_at: i64,
    pub heading: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SequenceView {
    pub index: usize,
    pub photo_count: usize,
    pub distance_m: f64,
    pub started_at: i64,
    pub ended_at: i64,
    pub is_360: bool,
    pub total_bytes: u64,
    pub split_reason: SplitReason,
    /// Why this sequence starts here, in words.
    pub split_message: String,
    pub photos: Vec<PhotoPoint>,
    /// Per destination: can it go there, and if not why.
    pub checks: Vec<DestinationCheck>,
}

/// A file left out, with its position when known (drawn on the map in another colour).
#[derive(Debug, Clone, Serialize)]
pub struct LeftOut {
    pub file_name: String,
    pub path: String,
    pub code: String,
    pub message: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

/// What the Import screen and `mtp prepare` show.
#[derive(Debug, Clone, Serialize)]
pub struct PreparedImport {
    /// Hands the plan back to `save_import` without re-reading the folder.
    pub token: String,
    pub folder: String,
    pub suggested_name: String,
    pub files_seen: usize,
    pub ignored: usize,
    pub summary: PlanSummary,
    pub sequences: Vec<SequenceView>,
    /// Dropped by the planner (duplicates, outliers…) and unreadable files, with reasons.
    pub left_out: Vec<LeftOut>,
    /// Set when this folder, with these files, was imported before.
    pub already_imported: Option<ExistingImport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExistingImport {
    pub import_id: i64,
    pub sequence_ids: Vec<i64>,
    pub names: Vec<String>,
}

/// What the user chose on the Import screen.
#[derive(Debug, Clone, Deserialize)]
pub struct SaveImport {
    pub token: String,
    pub meta: SequenceMeta,
    #[serde(default)]
    pub destinations: Vec<Destination>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SavedImport {
    pub import_id: i64,
    pub sequence_ids: Vec<i64>,
    /// False when the folder had been imported before: nothing new was created.
    pub created: bool,
    /// Destinations left out for a sequence, with why.
    pub skipped: Vec<String>,
}

/// A prepared plan kept between the preview and the save.
pub(crate) struct Prepared {
    pub view: PreparedImport,
    pub plan: Plan,
    pub rejected: Vec<RejectedFile>,
    pub options_json: String,
    pub fingerprint: String,
}

impl App {
    /// Reads `folder` (in the background), plans its sequences, and returns the preview.
    /// Progress goes out as `AppEvent::ImportProgress`.
    pub async fn prepare_folder(
        &self,
        folder: &Path,
        options: PrepareOptions,
    ) -> AppResult<PreparedImport> {
        let folder = folder.to_path_buf();
        let app = self.clone();
        let now = self.now_ms();
        let prepared =
            tokio::task::spawn_blocking(move || prepare_blocking(&app, &folder, &options, now))
                .await
                .map_err(|e| {
                    AppError::new("internal", format!("reading the folder stopped: {e}"))
                })??;
        let mut view = prepared.view.clone();
        if let Some(import_id) = self
            .store()
            .import_by_fingerprint(&prepared.fingerprint)
            .await?
        {
            let seqs = self.store().sequences_of_import(import_id).await?;
            if !seqs.is_empty() {
                view.already_imported = Some(ExistingImport {
                    import_id,
                    sequence_ids: seqs.iter().map(|s| s.id).collect(),
                    names: seqs.iter().map(|s| s.name.clone()).collect(),
                });
            }
        }
        let token = view.token.clone();
        let mut stash = self
            .inner
            .prepared
            .lock()
            .map_err(|_| AppError::new("internal", "lock poisoned"))?;
        // Keep only the newest few plans in memory.
        stash.retain(|(t, _)| *t != token);
        stash.push((
            token,
            Prepared {
                view: view.clone(),
                ..prepared
            },
        ));
        while stash.len() > 3 {
            stash.remove(0);
        }
        Ok(view)
    }

    /// Saves a previewed plan: sequences, photos and what was left out, then queues the chosen
    /// destinations. Saving a folder that was imported before creates nothing new.
    pub async fn save_import(&self, req: SaveImport) -> AppResult<SavedImport> {
        let name = req.meta.name.trim();
        if name.is_empty() {
            return Err(AppError::invalid("Give the sequence a name."));
        }
        if let Some(t) = &req.meta.transport_type
            && mtp_core::transport::lookup(t).is_none()
        {
            return Err(AppError::invalid(format!(
                "{t:?} is not a Map the Paths transport type: pick one from the list."
            )));
        }
        let mut meta = req.meta.clone();
        meta.name = name.to_string();
        meta.tags = normalize_tags(&meta.tags);
        let prepared = {
            let mut stash = self
                .inner
                .prepared
                .lock()
                .map_err(|_| AppError::new("internal", "lock poisoned"))?;
            let pos = stash
                .iter()
                .position(|(t, _)| *t == req.token)
                .ok_or_else(|| {
                    AppError::new(
                        "stale_plan",
                        "This preview is no longer available: read the folder again.",
                    )
                })?;
            stash.remove(pos).1
        };
        let now = self.now_ms();
        if let Some(import_id) = self
            .store()
            .import_by_fingerprint(&prepared.fingerprint)
            .await?
        {
            let seqs = self.store().sequences_of_import(import_id).await?;
            if !seqs.is_empty() {
                let ids: Vec<i64> = seqs.iter().map(|s| s.id).collect();
                let skipped = self
                    .queue_destinations(&ids, &meta, &req.destinations, now)
                    .await?;
                self.emit(AppEvent::SequencesChanged { ids: ids.clone() });
                return Ok(SavedImport {
                    import_id,
                    sequence_ids: ids,
                    created: false,
                    skipped,
                });
            }
        }
        if prepared.plan.sequences.is_empty() {
            return Err(AppError::invalid(
                "No photo of this folder can be uploaded: see the reasons listed, fix them and read the folder again.",
            ));
        }
        let dropped: Vec<DroppedFile<'_>> = prepared
            .plan
            .dropped
            .iter()
            .map(|d| DroppedFile {
                path: d.photo.path.to_string_lossy().into_owned(),
                file_name: &d.photo.file_name,
                reason_code: drop_code(&d.reason),
                message: &d.message,
                lat: d.photo.lat,
                lon: d.photo.lon,
                captured_at: d.photo.captured_at_ms,
            })
            .chain(prepared.rejected.iter().map(|r| DroppedFile {
                path: r.path.to_string_lossy().into_owned(),
                file_name: &r.file_name,
                reason_code: &r.code,
                message: &r.message,
                lat: None,
                lon: None,
                captured_at: None,
            }))
            .collect();
        let (import_id, ids) = self
            .store()
            .save_plan(
                &NewImport {
                    folder: &prepared.view.folder,
                    fingerprint: &prepared.fingerprint,
                    options_json: &prepared.options_json,
                    files_seen: prepared.view.files_seen as i64,
                },
                &prepared.plan,
                &dropped,
                &meta,
                now,
            )
            .await?;
        let skipped = self
            .queue_destinations(&ids, &meta, &req.destinations, now)
            .await?;
        self.emit(AppEvent::SequencesChanged { ids: ids.clone() });
        Ok(SavedImport {
            import_id,
            sequence_ids: ids,
            created: true,
            skipped,
        })
    }

    /// Creates the jobs of each destination a sequence passes the checks for.
    pub(crate) async fn queue_destinations(
        &self,
        ids: &[i64],
        meta: &SequenceMeta,
        destinations: &[Destination],
        now: i64,
    ) -> AppResult<Vec<String>> {
        let mut skipped = Vec::new();
        if destinations.is_empty() {
            return Ok(skipped);
        }
        for &id in ids {
            let Some(seq) = self.store().sequence(id).await? else {
                continue;
            };
            let photos = self.store().photos(id).await?;
            let planned = crate::sequences::planned_from_rows(&seq, &photos);
            let checks = check_destinations(&planned, meta.transport_type.as_deref(), now);
            let mut ok = Vec::new();
            for d in destinations {
                match checks.iter().find(|c| c.destination == *d) {
                    Some(c) if !c.ok => skipped.push(format!(
                        "{} not sent to {}: {}",
                        seq.name,
                        d.label(),
                        c.problems
                            .iter()
                            .map(|p| p.message.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )),
                    _ => ok.push(*d),
                }
            }
            self.store().create_jobs(id, &ok, now).await?;
        }
        self.wake_engine();
        Ok(skipped)
    }
}

fn normalize_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags.iter().flat_map(|t| t.split(',')) {
        let t = t.trim();
        if !t.is_empty() && !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.to_string());
        }
    }
    out
}

pub(crate) fn drop_code(r: &DropReason) -> &'static str {
    match r {
        DropReason::Duplicate { .. } => "duplicate",
        DropReason::TooClose { .. } => "too_close",
        DropReason::TooSoon { .. } => "too_soon",
        DropReason::NullIsland => "null_island",
        DropReason::ZigzagOutlier { .. } => "zigzag_outlier",
        DropReason::SequenceTooFast { .. } => "sequence_too_fast",
        DropReason::NoPosition => "no_position",
        DropReason::NoTime => "no_time",
        DropReason::InvalidCoordinates => "invalid_coordinates",
    }
}

pub(crate) fn split_message(r: &SplitReason) -> String {
    match r {
        SplitReason::FirstInGroup => "First photos of this folder and camera".into(),
        SplitReason::TimeGap { seconds } => {
            format!("Split: {seconds:.0} s without a photo (limit 60 s)")
        }
        SplitReason::DistanceGap { metres } => {
            format!("Split: a {metres:.0} m jump between photos (limit 100 m)")
        }
        SplitReason::MaxPhotos { limit } => {
            format!("Split: the previous part reached {limit} photos")
        }
        SplitReason::MaxBytes { limit } => {
            format!("Split: the previous part reached {} GiB", limit / (1 << 30))
        }
        SplitReason::MaxPixels { limit } => format!(
            "Split: the previous part reached {} Gpx",
            limit / 1_000_000_000
        ),
    }
}

fn prepare_blocking(
    app: &App,
    folder: &Path,
    options: &PrepareOptions,
    now: i64,
) -> AppResult<Prepared> {
    let gpx = match &options.gpx {
        Some(path) => Some(GpxGeotag {
            track: read_gpx(path)
                .map_err(|e| AppError::new("bad_gpx", format!("{}: {e}", path.display())))?,
            offset_ms: (options.gpx_offset_s * 1000.0).round() as i64,
            replace_exif_positions: false,
        }),
        None => None,
    };
    let scan_opts = ScanOptions {
        read: ReadOptions {
            camera_utc_offset_minutes: options.camera_utc_offset_minutes,
        },
        gpx,
    };
    let last = Arc::new(AtomicI64::new(0));
    let progress = |p: ScanProgress| {
        let t = app.now_ms();
        let prev = last.load(Ordering::Relaxed);
        if p.files_done == p.files_total || t - prev >= 100 {
            last.store(t, Ordering::Relaxed);
            app.emit(AppEvent::ImportProgress {
                files_done: p.files_done,
                files_total: p.files_total,
            });
        }
    };
    let report = scan_folder(folder, &scan_opts, &progress)
        .map_err(|e| AppError::new("bad_folder", e.to_string()))?;
    let fingerprint = fingerprint(folder, &report);
    let plan = plan_sequences(report.photos, &options.plan);
    let summary = plan.summary();
    let sequences = plan
        .sequences
        .iter()
        .map(|s| SequenceView {
            index: s.index,
            photo_count: s.photos.len(),
            distance_m: s.distance_m,
            started_at: s.started_at_ms,
            ended_at: s.ended_at_ms,
            is_360: s.is_360,
            total_bytes: s.total_bytes,
            split_reason: s.split_reason.clone(),
            split_message: split_message(&s.split_reason),
            photos: s
                .photos
                .iter()
                .map(|p| PhotoPoint {
                    file_name: p.photo.file_name.clone(),
                    lat: p.photo.lat.unwrap_or_default(),
                    lon: p.photo.lon.unwrap_or_default(),
                    captured_at: p.photo.captured_at_ms.unwrap_or(p.original_captured_at_ms),
                    heading: p.photo.heading,
                })
                .collect(),
            checks: check_destinations(s, options.transport_type.as_deref(), now),
        })
        .collect();
    let left_out = plan
        .dropped
        .iter()
        .map(|d| LeftOut {
            file_name: d.photo.file_name.clone(),
            path: d.photo.path.to_string_lossy().into_owned(),
            code: drop_code(&d.reason).to_string(),
            message: d.message.clone(),
            lat: d.photo.lat,
            lon: d.photo.lon,
        })
        .chain(report.rejected.iter().map(|r| LeftOut {
            file_name: r.file_name.clone(),
            path: r.path.to_string_lossy().into_owned(),
            code: r.code.clone(),
            message: r.message.clone(),
            lat: None,
            lon: None,
        }))
        .collect();
    let suggested_name = folder
        .file_name()
        .map(|n| n.to_string_lossy().replace(['_', '-'], " "))
        .unwrap_or_else(|| "My sequence".into());
    let view = PreparedImport {
        token: uuid::Uuid::new_v4().to_string(),
        folder: folder.to_string_lossy().into_owned(),
        suggested_name,
        files_seen: report.files_seen,
        ignored: report.ignored.len(),
        summary,
        sequences,
        left_out,
        already_imported: None,
    };
    Ok(Prepared {
        view,
        options_json: serde_json::to_string(options).unwrap_or_else(|_| "{}".into()),
        plan,
        rejected: report.rejected,
        fingerprint,
    })
}

/// Identifies a folder's content: the photos' relative paths and sizes, and what was rejected.
fn fingerprint(root: &Path, report: &mtp_core::photo::scan::ScanReport) -> String {
    let mut entries: Vec<(String, u64)> = report
        .photos
        .iter()
        .map(|p| {
            let rel = p.path.strip_prefix(root).unwrap_or(&p.path);
            (rel.to_string_lossy().into_owned(), p.file_size)
        })
        .chain(report.rejected.iter().map(|r| {
            let rel = r.path.strip_prefix(root).unwrap_or(&r.path);
            (rel.to_string_lossy().into_owned(), 0)
        }))
        .collect();
    entries.sort();
    let mut h = Md5::new();
    h.update(root.to_string_lossy().as_bytes());
    for (path, size) in entries {
        h.update(path.as_bytes());
        h.update(b"\0");
        h.update(size.to_le_bytes());
    }
    hex::encode(h.finalize())
}
