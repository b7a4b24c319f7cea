//! The Sequences list, a sequence's details, and export.

use crate::remote::RemoteState;
use crate::{App, AppError, AppEvent, AppResult};
use mtp_core::Destination;
use mtp_core::engine::{ErrorKind, JobStatus, Stage};
use mtp_core::geo::Bbox;
use mtp_core::photo::PhotoMeta;
use mtp_core::plan::{GroupKey, PlannedPhoto, PlannedSequence, SplitReason};
use mtp_core::store::{JobRow, PhotoRow, SequenceMeta, SequenceRow};
use serde::Serialize;

/// One row of the status list: the sequence and its destinations.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SequenceSummary {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub transport_type: Option<String>,
    pub tags: Vec<String>,
    pub folder: Option<String>,
    pub photo_count: i64,
    pub total_bytes: i64,
    pub distance_m: f64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub is_360: bool,
    pub created_at: i64,
    /// Being deleted everywhere (since when): it goes once every service confirmed.
    pub deleting_at: Option<i64>,
    pub jobs: Vec<JobView>,
}

/// One destination of a sequence, as the status list shows it.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct JobView {
    pub id: i64,
    pub destination: Destination,
    pub label: &'static str,
    pub stage: Stage,
    pub status: JobStatus,
    pub attempts: i64,
    pub next_run_at: i64,
    pub last_error: Option<String>,
    pub last_error_kind: Option<ErrorKind>,
    pub remote_url: Option<String>,
    pub remote_id: Option<String>,
    /// Why a job that is done ended without the result it aims for (e.g. "Created on Map
    /// the Paths Web, not linked to Mapillary: …"): shown instead of "Done".
    pub note: Option<String>,
    /// What a waiting job waits for, in words (shown instead of the stage name).
    pub waiting: Option<String>,
    pub photos_total: i64,
    pub photos_done: i64,
    pub bytes_total: i64,
    pub bytes_done: i64,
    pub updated_at: i64,
    /// Mapillary jobs: the processing stages (the row's stepper).
    pub mapillary: Option<crate::mapillary_status::MapillaryStatus>,
}

impl From<&JobRow> for JobView {
    fn from(j: &JobRow) -> Self {
        let remote = RemoteState::shown(j);
        JobView {
            id: j.id,
            destination: j.destination,
            label: j.destination.label(),
            stage: j.stage,
            status: j.status,
            attempts: j.attempts,
            next_run_at: j.next_run_at,
            last_error: j.last_error.clone(),
            last_error_kind: j.last_error_kind,
            remote_url: j.remote_url.clone(),
            remote_id: remote.remote_id(),
            note: remote.note(),
            waiting: remote.waiting().map(str::to_owned),
            photos_total: j.photos_total,
            photos_done: j.photos_done,
            bytes_total: j.bytes_total,
            bytes_done: j.bytes_done,
            updated_at: j.updated_at,
            mapillary: (j.destination == Destination::Mapillary)
                .then(|| crate::mapillary_status::MapillaryStatus::of_job(j))
                .flatten(),
        }
    }
}

fn summary(s: &SequenceRow, jobs: Vec<JobView>) -> SequenceSummary {
    SequenceSummary {
        id: s.id,
        name: s.name.clone(),
        description: s.description.clone(),
        transport_type: s.transport_type.clone(),
        tags: s.tags(),
        folder: s.folder.clone(),
        photo_count: s.photo_count,
        total_bytes: s.total_bytes,
        distance_m: s.distance_m,
        started_at: s.started_at,
        ended_at: s.ended_at,
        is_360: s.is_360,
        created_at: s.created_at,
        deleting_at: s.deleting_at,
        jobs,
    }
}

/// A stored sequence as the planner's type, to re-run the destination checks.
pub fn planned_from_rows(seq: &SequenceRow, photos: &[PhotoRow]) -> PlannedSequence {
    let planned: Vec<PlannedPhoto> = photos
        .iter()
        .map(|p| PlannedPhoto {
            photo: p.to_meta(),
            original_captured_at_ms: p.original_captured_at.unwrap_or(p.captured_at),
            sequence_index: usize::try_from(p.seq_index).unwrap_or_default(),
        })
        .collect();
    let mut bbox: Option<Bbox> = None;
    for p in photos {
        match bbox.as_mut() {
            Some(b) => b.extend(p.lat, p.lon),
            None => bbox = Some(Bbox::point(p.lat, p.lon)),
        }
    }
    let first: Option<&PhotoMeta> = planned.first().map(|p| &p.photo);
    PlannedSequence {
        index: usize::try_from(seq.plan_index).unwrap_or_default(),
        group: first
            .map(GroupKey::of)
            .unwrap_or_else(|| GroupKey::of(&PhotoMeta::new(""))),
        photos: planned,
        split_reason: SplitReason::FirstInGroup,
        is_360: seq.is_360,
        distance_m: seq.distance_m,
        started_at_ms: seq.started_at.unwrap_or_default(),
        ended_at_ms: seq.ended_at.unwrap_or_default(),
        bbox: bbox.unwrap_or_else(|| Bbox::point(0.0, 0.0)),
        total_bytes: u64::try_from(seq.total_bytes).unwrap_or_default(),
    }
}

impl App {
    pub async fn sequences(&self) -> AppResult<Vec<SequenceSummary>> {
        let seqs = self.store().sequences().await?;
        let jobs = self.store().jobs().await?;
        Ok(seqs
            .iter()
            .map(|s| {
                let mine = jobs
                    .iter()
                    .filter(|j| j.sequence_id == s.id)
                    .map(JobView::from)
                    .collect();
                summary(s, mine)
            })
            .collect())
    }

    pub async fn sequence(&self, id: i64) -> AppResult<SequenceSummary> {
        let s = self
            .store()
            .sequence(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("There is no sequence {id}.")))?;
        let jobs = self.store().jobs_of_sequence(id).await?;
        Ok(summary(&s, jobs.iter().map(JobView::from).collect()))
    }

    /// Renames or re-describes a sequence.
    pub async fn update_sequence(&self, id: i64, meta: SequenceMeta) -> AppResult<()> {
        if meta.name.trim().is_empty() {
            return Err(AppError::invalid("A sequence needs a name."));
        }
        self.store()
            .update_sequence_meta(id, &meta, self.now_ms())
            .await?;
        self.emit(AppEvent::SequencesChanged { ids: vec![id] });
        Ok(())
    }

    /// GeoJSON (RFC 7946: WGS84, [lon, lat]) of every sequence as a LineString and every photo
    /// as a Point, for QGIS and friends.
    pub async fn export_geojson(&self, only: Option<i64>) -> AppResult<serde_json::Value> {
        let mut features = Vec::new();
        for s in self.store().sequences().await? {
            if only.is_some_and(|id| id != s.id) {
                continue;
            }
            let photos = self.store().photos(s.id).await?;
            let coords: Vec<serde_json::Value> = photos
                .iter()
                .map(|p| serde_json::json!([round7(p.lon), round7(p.lat)]))
                .collect();
            features.push(serde_json::json!({
                "type": "Feature",
                "geometry": if coords.len() >= 2 {
                    serde_json::json!({"type": "LineString", "coordinates": coords})
                } else {
                    serde_json::json!({"type": "Point", "coordinates": coords.first().cloned().unwrap_or(serde_json::json!([0, 0]))})
                },
                "properties": {
                    "kind": "sequence", "sequence_id": s.id, "name": s.name,
                    "transport_type": s.transport_type, "photo_count": s.photo_count,
                    "distance_m": (s.distance_m * 10.0).round() / 10.0,
                    "started_at": s.started_at.map(iso), "ended_at": s.ended_at.map(iso),
                }
            }));
            for p in &photos {
                features.push(serde_json::json!({
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [round7(p.lon), round7(p.lat)]},
                    "properties": {
                        "kind": "photo", "sequence_id": s.id, "index": p.seq_index,
                        "file_name": p.file_name, "captured_at": iso(p.captured_at),
                        "heading": p.heading, "altitude": p.altitude, "is_360": p.is_360,
                    }
                }));
            }
        }
        if let Some(id) = only
            && features.is_empty()
        {
            return Err(AppError::not_found(format!("There is no sequence {id}.")));
        }
        Ok(serde_json::json!({"type": "FeatureCollection", "features": features}))
    }
}

fn round7(v: f64) -> f64 {
    (v * 1e7).round() / 1e7
}

/// Milliseconds since the epoch as an ISO 8601 UTC string.
pub fn iso(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
