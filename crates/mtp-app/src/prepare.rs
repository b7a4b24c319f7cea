//! Import: read a folder, plan its sequences, show the plan, then save it.

use crate::{App, AppError, AppEvent, AppResult};
use md5::{Digest, Md5};
use mtp_core::Destination;
use mtp_core::photo::gpx::read_gpx;
use mtp_core::photo::scan::{GpxGeotag, RejectedFile, ScanOptions, ScanProgress, scan_folder};
use mtp_core::photo::{PositionSource, ReadOptions};
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
    /// Only these files of the folder (photos dropped on the window); empty = all of it.
    pub files: Vec<PathBuf>,
}

/// A photo on the map.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoPoint {
    pub file_name: String,
    pub lat: f64,
    pub lon: f64,
    pub captured_at: i64,
    pub heading: Option<f64>,
    /// The position came from the GPX track, not the photo's own GPS.
    pub from_gpx: bool,
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
    /// The camera, e.g. "GoPro MAX", when the photos say.
    pub camera: Option<String>,
    /// The sub-folder the photos are in, relative to the imported folder ("" = the folder itself).
    pub sub_folder: String,
    /// How many positions came from the GPX track.
    pub from_gpx: usize,
    /// Why this sequence may not be meant to be published (few photos, no movement…).
    pub warnings: Vec<String>,
    /// Ticked on the plan unless it looks unintended.
    pub include_by_default: bool,
}

/// What was left out for one reason, with what to do about it in the window.
#[derive(Debug, Clone, Serialize)]
pub struct LeftOutGroup {
    pub code: String,
    /// E.g. "No GPS position".
    pub title: String,
    /// What to do, in terms of the window (never a command-line flag).
    pub action: String,
    pub files: Vec<LeftOutFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LeftOutFile {
    /// Relative to the imported folder.
    pub rel_path: String,
    /// What is specific to this file (may be empty when the title says it all).
    pub detail: String,
}

/// Another import that already holds some of these photos (same size and capture time).
#[derive(Debug, Clone, Serialize)]
pub struct AlreadySaved {
    pub sequence_id: i64,
    pub name: String,
    pub folder: Option<String>,
    pub photos: i64,
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
    /// `left_out`, grouped by reason for the window (non-photos are not in it).
    pub left_out_groups: Vec<LeftOutGroup>,
    /// Files that are not photos (documents, videos, sidecars): ignored, relative paths.
    pub not_photos: Vec<String>,
    /// Warnings about the whole folder (e.g. photos taken years apart).
    pub warnings: Vec<String>,
    /// Photos of this folder already saved from another folder, per sequence.
    pub already_saved: Vec<AlreadySaved>,
    /// The GPX track used, if any, and how many photos it placed.
    pub gpx: Option<String>,
    pub gpx_placed: usize,
    /// Why nothing of this folder can be uploaded (no file, no photo, or every photo left
    /// out), for the window and `mtp prepare`; `None` when it makes a sequence.
    pub nothing_to_upload: Option<String>,
}

impl PreparedImport {
    /// What the window leaves ticked, as the choices for [`SaveImport::sequences`]: every
    /// sequence but those that look unintended (a stray photo, photos years apart), unless
    /// `all`. Empty = all of them.
    pub fn default_choices(&self, all: bool) -> Vec<SequenceChoice> {
        if all || self.sequences.iter().all(|s| s.include_by_default) {
            return Vec::new();
        }
        self.sequences
            .iter()
            .map(|s| SequenceChoice {
                index: s.index,
                include: s.include_by_default,
                name: String::new(),
            })
            .collect()
    }
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
    /// Which sequences of the plan to save, and their names. Empty = all, named after `meta`.
    #[serde(default)]
    pub sequences: Vec<SequenceChoice>,
}

/// One sequence of the plan, as the user left it on the plan.
#[derive(Debug, Clone, Deserialize)]
pub struct SequenceChoice {
    pub index: usize,
    pub include: bool,
    /// Empty = the default ("<name> Part N").
    #[serde(default)]
    pub name: String,
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

/// A prepared plan kept between the preview and the save. The preview itself
/// ([`PreparedImport`], a point per photo) goes to the caller and is not kept.
pub(crate) struct Prepared {
    pub folder: String,
    pub files_seen: usize,
    pub suggested_name: String,
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
        let (mut view, prepared) =
            tokio::task::spawn_blocking(move || prepare_blocking(&app, &folder, &options, now))
                .await
                .map_err(|e| {
                    AppError::new("internal", format!("reading the folder stopped: {e}"))
                })??;
        // Reading and planning freed their working copies on the reading and planning
        // threads; give those pages back rather than keep them beside what comes next.
        mtp_core::memory::release_free_memory();
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
        if view.already_imported.is_none() {
            let keys: Vec<(i64, i64)> = prepared
                .plan
                .sequences
                .iter()
                .flat_map(|s| &s.photos)
                .map(|p| {
                    (
                        i64::try_from(p.photo.file_size).unwrap_or(i64::MAX),
                        p.original_captured_at_ms,
                    )
                })
                .collect();
            view.already_saved = self
                .store()
                .sequences_holding(&keys)
                .await?
                .into_iter()
                .map(|h| AlreadySaved {
                    sequence_id: h.sequence_id,
                    name: h.name,
                    folder: h.folder,
                    photos: h.photos,
                })
                .collect();
        }
        let token = view.token.clone();
        let mut stash = self
            .inner
            .prepared
            .lock()
            .map_err(|_| AppError::new("internal", "lock poisoned"))?;
        // Keep only the newest few plans in memory.
        stash.retain(|(t, _)| *t != token);
        stash.push((token, prepared));
        while stash.len() > 3 {
            stash.remove(0);
        }
        Ok(view)
    }

    /// Saves a previewed plan: sequences, photos and what was left out, then queues the chosen
    /// destinations. Saving a folder that was imported before creates nothing new.
    pub async fn save_import(&self, req: SaveImport) -> AppResult<SavedImport> {
        let meta = checked_meta(req.meta.clone())?;
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
        // The sequences the user left ticked on the plan, and the names given to them.
        let choice = |i: usize| req.sequences.iter().find(|c| c.index == i);
        let Prepared {
            folder,
            files_seen,
            mut plan,
            rejected,
            options_json,
            fingerprint,
            ..
        } = prepared;
        let mut left_by_you = Vec::new();
        if !req.sequences.is_empty() {
            let (kept, out): (Vec<_>, Vec<_>) = plan
                .sequences
                .into_iter()
                .partition(|s| choice(s.index).is_none_or(|c| c.include));
            plan.sequences = kept;
            left_by_you = out;
            if plan.sequences.is_empty() {
                return Err(AppError::invalid(
                    "Every sequence is unticked: tick the ones to save.",
                ));
            }
        }
        let by_you = "You left its sequence out on the plan.".to_string();
        let dropped: Vec<DroppedFile<'_>> = left_by_you
            .iter()
            .flat_map(|s| &s.photos)
            .map(|p| DroppedFile {
                path: p.photo.path.to_string_lossy().into_owned(),
                file_name: &p.photo.file_name,
                reason_code: "left_out_by_you",
                message: &by_you,
                lat: p.photo.lat,
                lon: p.photo.lon,
                captured_at: p.photo.captured_at_ms,
            })
            .chain(plan.dropped.iter().map(|d| DroppedFile {
                path: d.photo.path.to_string_lossy().into_owned(),
                file_name: &d.photo.file_name,
                reason_code: drop_code(&d.reason),
                message: &d.message,
                lat: d.photo.lat,
                lon: d.photo.lon,
                captured_at: d.photo.captured_at_ms,
            }))
            .chain(rejected.iter().map(|r| DroppedFile {
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
                    folder: &folder,
                    fingerprint: &fingerprint,
                    options_json: &options_json,
                    files_seen: files_seen as i64,
                },
                &plan,
                &dropped,
                &meta,
                now,
            )
            .await?;
        for (seq, id) in plan.sequences.iter().zip(&ids) {
            if let Some(name) = choice(seq.index)
                .map(|c| c.name.trim())
                .filter(|n| !n.is_empty())
            {
                let named = SequenceMeta {
                    name: name.to_string(),
                    ..meta.clone()
                };
                self.store().update_sequence_meta(*id, &named, now).await?;
            }
        }
        // Saved: the photos are in the database now, and queueing reads them from there.
        drop(dropped);
        drop((plan, left_by_you, rejected));
        mtp_core::memory::release_free_memory();
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

/// What the user typed about a sequence, checked and tidied: a name, a known transport
/// type (or none), tags split on commas, trimmed, without repeats.
pub(crate) fn checked_meta(mut meta: SequenceMeta) -> AppResult<SequenceMeta> {
    let name = meta.name.trim();
    if name.is_empty() {
        return Err(AppError::invalid("Give the sequence a name."));
    }
    meta.name = name.to_string();
    if let Some(t) = &meta.transport_type {
        if t.trim().is_empty() {
            meta.transport_type = None;
        } else if mtp_core::transport::lookup(t).is_none() {
            let names: Vec<&str> = mtp_core::transport::all()
                .iter()
                .map(|t| t.name.as_ref())
                .collect();
            return Err(AppError::invalid(format!(
                "{t:?} is not a Map the Paths transport type. The types are (any case): {}.",
                names.join(", ")
            )));
        }
    }
    meta.tags = normalize_tags(&meta.tags);
    Ok(meta)
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
            format!("Split: {} without a photo (limit 60 s)", gap_text(*seconds))
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
) -> AppResult<(PreparedImport, Prepared)> {
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
    let mut report = scan_folder(folder, &scan_opts, &progress)
        .map_err(|e| AppError::new("bad_folder", e.to_string()))?;
    if !options.files.is_empty() {
        let only: std::collections::HashSet<&Path> =
            options.files.iter().map(PathBuf::as_path).collect();
        report.photos.retain(|p| only.contains(p.path.as_path()));
        report.rejected.retain(|r| only.contains(r.path.as_path()));
        report.ignored.retain(|p| only.contains(p.as_path()));
        report.files_seen = report.photos.len() + report.rejected.len() + report.ignored.len();
    }
    let fingerprint = fingerprint(folder, &report);
    let plan = plan_sequences(report.photos, &options.plan);
    let summary = plan.summary();
    let sequences: Vec<SequenceView> = plan
        .sequences
        .iter()
        .map(|s| {
            let warnings = sequence_warnings(s.photos.len(), s.distance_m);
            SequenceView {
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
                        from_gpx: p.photo.position_source == Some(PositionSource::Gpx),
                    })
                    .collect(),
                checks: check_destinations(s, options.transport_type.as_deref(), now),
                camera: camera_name(s.group.make.as_deref(), s.group.model.as_deref()),
                sub_folder: relative(folder, &s.group.folder),
                from_gpx: s
                    .photos
                    .iter()
                    .filter(|p| p.photo.position_source == Some(PositionSource::Gpx))
                    .count(),
                include_by_default: warnings.is_empty(),
                warnings,
            }
        })
        .collect();
    let gpx_placed = sequences.iter().map(|s| s.from_gpx).sum();
    let warnings = folder_warnings(&sequences);
    let left_out: Vec<LeftOut> = plan
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
    let (left_out_groups, mut not_photos) = group_left_out(folder, &plan, &report.rejected);
    not_photos.extend(report.ignored.iter().map(|p| relative(folder, p)));
    not_photos.sort();
    let suggested_name = folder
        .file_name()
        .map(|n| n.to_string_lossy().replace(['_', '-'], " "))
        .unwrap_or_else(|| "My sequence".into());
    let nothing_to_upload = nothing_to_upload(
        sequences.len(),
        left_out.len(),
        not_photos.len(),
        !options.files.is_empty(),
    );
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
        left_out_groups,
        not_photos,
        warnings,
        already_saved: Vec::new(),
        gpx: options
            .gpx
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        gpx_placed,
        nothing_to_upload,
    };
    let prepared = Prepared {
        folder: view.folder.clone(),
        files_seen: view.files_seen,
        suggested_name: view.suggested_name.clone(),
        options_json: serde_json::to_string(options).unwrap_or_else(|_| "{}".into()),
        plan,
        rejected: report.rejected,
        fingerprint,
    };
    Ok((view, prepared))
}

/// Why nothing of a folder (or of the files dropped from it) can be uploaded, from what it
/// holds; `None` when it makes at least one sequence.
fn nothing_to_upload(
    sequences: usize,
    left_out: usize,
    not_photos: usize,
    dropped_files: bool,
) -> Option<String> {
    if sequences > 0 {
        return None;
    }
    Some(if left_out == 0 && not_photos == 0 {
        "This folder holds no files, in it or in its sub-folders: choose the folder that holds your photos.".to_string()
    } else if left_out == 0 && dropped_files {
        let what = if not_photos == 1 {
            "it is a document, a video or a sidecar file"
        } else {
            "they are documents, videos or sidecar files"
        };
        format!(
            "No photo among the dropped files: {what} (listed under \"Not photos, ignored\"). Drop JPEG photos, or the folder that holds them."
        )
    } else if left_out == 0 {
        let what = if not_photos == 1 {
            "its only file is a document, a video or a sidecar file".to_string()
        } else {
            format!("its {not_photos} files are documents, videos or sidecar files")
        };
        format!(
            "This folder holds no photos: {what} (listed under \"Not photos, ignored\"). Choose the folder that holds your photos."
        )
    } else if dropped_files {
        "None of the dropped photos can be uploaded yet: see why under Left out, fix it and drop them again.".to_string()
    } else {
        "No photo of this folder can be uploaded yet: see why under Left out, fix it and read the folder again.".to_string()
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

/// Fewer photos than this in a sequence looks like stray photos, not a trip.
const FEW_PHOTOS: usize = 5;
/// A sequence whose track is shorter than this did not move.
const NO_MOVEMENT_M: f64 = 10.0;
/// Photos spread over more than this are probably unrelated trips.
const SPREAD_DAYS: i64 = 30;

fn sequence_warnings(photos: usize, distance_m: f64) -> Vec<String> {
    let mut w = Vec::new();
    if photos < FEW_PHOTOS {
        w.push(format!(
            "Only {}: probably stray photos rather than a trip",
            plural(photos, "photo", "photos")
        ));
    }
    if photos > 1 && distance_m < NO_MOVEMENT_M {
        w.push(format!(
            "The photos stay within {distance_m:.0} m: the camera did not move"
        ));
    }
    w
}

fn folder_warnings(sequences: &[SequenceView]) -> Vec<String> {
    let first = sequences.iter().map(|s| s.started_at).min();
    let last = sequences.iter().map(|s| s.ended_at).max();
    let mut w = Vec::new();
    if let (Some(a), Some(b)) = (first, last) {
        let days = (b - a) / 86_400_000;
        if days > SPREAD_DAYS {
            let span = if days >= 730 {
                format!("{} years", days / 365)
            } else {
                plural(days as usize, "day", "days")
            };
            w.push(format!(
                "These photos were taken over {span} ({} to {}): they are probably several unrelated trips. Tick only the sequences you mean to publish.",
                day(a),
                day(b)
            ));
        }
    }
    w
}

/// A gap between photos as a person says it: "95 s", "3 h 20 min", "2 years".
fn gap_text(seconds: f64) -> String {
    const DAY: f64 = 86_400.0;
    if seconds >= 365.0 * DAY {
        let years = seconds / (365.25 * DAY);
        format!(
            "{years:.0} year{}",
            if years.round() == 1.0 { "" } else { "s" }
        )
    } else if seconds >= 60.0 {
        mtp_core::photo::gpx::human_duration((seconds * 1000.0) as i64)
    } else {
        format!("{seconds:.0} s")
    }
}

fn day(ms: i64) -> String {
    crate::sequences::iso(ms).chars().take(10).collect()
}

/// "1 photo", "3 photos".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn camera_name(make: Option<&str>, model: Option<&str>) -> Option<String> {
    let make = make.map(str::trim).filter(|m| !m.is_empty());
    let model = model.map(str::trim).filter(|m| !m.is_empty());
    match (make, model) {
        (Some(make), Some(model)) if model.to_lowercase().starts_with(&make.to_lowercase()) => {
            Some(model.to_string())
        }
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
        (None, None) => None,
    }
}

/// `path` relative to the imported folder, with `/` separators ("" for the folder itself).
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A file that does not even look like an image (a document, a video): not a photo at all.
fn is_not_a_photo(code: &str, message: &str) -> bool {
    code == "not_jpeg" && !(message.contains(" image") || message.contains("RAW file"))
}

/// The reason's title and what to do about it in the window.
fn group_text(code: &str) -> (&'static str, &'static str) {
    match code {
        "no_gps" | "no_position" => (
            "No GPS position",
            "Add a GPX track recorded during the trip to place them.",
        ),
        "bad_gps" | "invalid_coordinates" => (
            "Unusable GPS position",
            "Add a GPX track recorded during the trip to place them.",
        ),
        "null_island" => (
            "Position 0°, 0° (the camera had no GPS fix)",
            "Add a GPX track recorded during the trip to place them.",
        ),
        "outside_track" => (
            "Taken outside the GPX track's time",
            "If the camera clock was off, set the time offset next to the track; otherwise choose a track that covers them.",
        ),
        "no_time" => (
            "No capture time",
            "They cannot be put in order: use the camera's original files.",
        ),
        "no_exif" => (
            "No photo metadata (EXIF)",
            "Use the camera's original files: editors and messengers often remove the metadata.",
        ),
        "broken_exif" => (
            "Damaged photo metadata",
            "Use the camera's original files, or repair the metadata with a photo tool.",
        ),
        "truncated" => (
            "Incomplete files",
            "Copy them again from the camera or the memory card.",
        ),
        "corrupt_jpeg" => (
            "Damaged JPEG files",
            "Export them again from the camera's software.",
        ),
        "not_jpeg" => (
            "Photos in another format",
            "Only JPEG photos can be uploaded: export these as JPEG to include them.",
        ),
        "unreadable" => (
            "Cannot be read",
            "Check that the files are still there and that you may read them.",
        ),
        "symlink_loop" => (
            "Links to a parent folder",
            "Nothing to do: they would make the folder endless.",
        ),
        "duplicate" => (
            "Duplicates",
            "Nothing to do: the photo each one repeats is uploaded.",
        ),
        "too_close" => (
            "Closer than the minimum spacing",
            "Lower the minimum spacing (Options, on a new import) to keep more.",
        ),
        "too_soon" => (
            "Sooner than the minimum interval",
            "Lower the minimum interval (Options, on a new import) to keep more.",
        ),
        "zigzag_outlier" => (
            "GPS glitches",
            "Nothing to do unless the positions are right: they jump off the track and back.",
        ),
        "sequence_too_fast" => (
            "Impossibly fast",
            "Check the camera clock and the time offset, or the GPX track.",
        ),
        _ => ("Left out", ""),
    }
}

/// What is specific to one file: the core's message without the file name and without the
/// remedy (which the group says once, in the window's terms).
fn file_detail(code: &str, file_name: &str, message: &str, from_scan: bool) -> String {
    if matches!(code, "no_gps" | "no_exif" | "no_time" | "no_position") {
        return String::new();
    }
    let m = message.strip_prefix(file_name).unwrap_or(message).trim();
    let cut = if from_scan {
        // Where the core's message turns to what to do (in command-line terms).
        const REMEDIES: [&str; 11] = [
            ": if the camera",
            ": geotag",
            ": repair",
            ": check",
            ": set the time",
            ": use the camera",
            ": only JPEG",
            ": skipped",
            "; copy it again",
            "; re-export",
            "; otherwise",
        ];
        REMEDIES.iter().filter_map(|r| m.find(r)).min()
    } else {
        // The planner's first sentence says what happened; the rest is what to do.
        m.find(". ").map(|i| i + 1)
    };
    let kept = cut.map_or(m, |i| &m[..i]).trim();
    kept.trim_start_matches("has no GPS position and ")
        .to_string()
}

fn group_left_out(
    root: &Path,
    plan: &Plan,
    rejected: &[RejectedFile],
) -> (Vec<LeftOutGroup>, Vec<String>) {
    let mut groups: Vec<LeftOutGroup> = Vec::new();
    let mut not_photos = Vec::new();
    let items = plan
        .dropped
        .iter()
        .map(|d| {
            (
                drop_code(&d.reason),
                &d.photo.path,
                &d.photo.file_name,
                &d.message,
                false,
            )
        })
        .chain(
            rejected
                .iter()
                .map(|r| (r.code.as_str(), &r.path, &r.file_name, &r.message, true)),
        );
    for (code, path, file_name, message, from_scan) in items {
        let rel_path = relative(root, path);
        if is_not_a_photo(code, message) {
            not_photos.push(rel_path);
            continue;
        }
        let file = LeftOutFile {
            rel_path,
            detail: file_detail(code, file_name, message, from_scan),
        };
        match groups.iter_mut().find(|g| g.code == code) {
            Some(g) => g.files.push(file),
            None => {
                let (title, action) = group_text(code);
                groups.push(LeftOutGroup {
                    code: code.to_string(),
                    title: title.to_string(),
                    action: action.to_string(),
                    files: vec![file],
                });
            }
        }
    }
    for g in &mut groups {
        g.files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.files.len()));
    (groups, not_photos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_detail_drops_its_name_and_the_command_line_remedy() {
        let cases = [
            (
                "outside_track",
                "a.jpg has no GPS position and was taken 2 h 0 min after the GPX track ends (2024-05-01 08:00:39 UTC) with the time offset of +5 s: if the camera clock is off, set a time offset (--time-offset); otherwise use a GPX track that covers it",
                "was taken 2 h 0 min after the GPX track ends (2024-05-01 08:00:39 UTC) with the time offset of +5 s",
            ),
            (
                "truncated",
                "a.jpg is truncated: the APP1 segment runs past the end; copy it again from the camera or the card",
                "is truncated: the APP1 segment runs past the end",
            ),
            (
                "broken_exif",
                "a.jpg has broken EXIF metadata (bad IFD): repair it (e.g. exiftool -all= -tagsfromfile @ -all:all FILE) or drop it",
                "has broken EXIF metadata (bad IFD)",
            ),
            (
                "no_gps",
                "a.jpg has no GPS position: geotag it with a GPX track (--gpx) or drop it",
                "",
            ),
        ];
        for (code, message, want) in cases {
            assert_eq!(file_detail(code, "a.jpg", message, true), want);
        }
        assert_eq!(
            file_detail(
                "zigzag_outlier",
                "a.jpg",
                "GPS glitch: the position jumps 300 m off the track between b and c and straight back. Correct its position to upload it.",
                false
            ),
            "GPS glitch: the position jumps 300 m off the track between b and c and straight back."
        );
    }

    #[test]
    fn warnings_name_few_photos_and_no_movement() {
        assert_eq!(
            sequence_warnings(1, 0.0),
            ["Only 1 photo: probably stray photos rather than a trip"]
        );
        assert_eq!(
            sequence_warnings(30, 4.0),
            ["The photos stay within 4 m: the camera did not move"]
        );
        assert!(sequence_warnings(30, 120.0).is_empty());
        assert_eq!(gap_text(95.0), "1 min 35 s");
        assert_eq!(gap_text(215_000_000.0), "7 years");
        assert_eq!(
            camera_name(Some("GoPro"), Some("GoPro MAX")).as_deref(),
            Some("GoPro MAX")
        );
        assert_eq!(
            camera_name(Some("Insta360"), Some("ONE X2")).as_deref(),
            Some("Insta360 ONE X2")
        );
    }
}
