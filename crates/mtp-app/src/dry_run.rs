//! The dry run ("Check" on the Import screen, `mtp upload --dry-run`): per destination,
//! what an upload would send (photos, bytes, chunks, the fields of the first photo, the
//! `MAP*` description Mapillary gets), what the destination's rules refuse, and whether
//! the account can upload now.
//!
//! Nothing is sent: the only requests are one read per service with the stored token
//! (Mapillary `me`, a KartaView v2 read, Panoramax `/api/users/me`; Map the Paths Web has
//! no read to check a token with). The fields come from the code the drivers send with,
//! so what is shown is what would go.

use crate::pipeline::{kartaview, mapillary, mtpw, panoramax};
use crate::prepare::checked_meta;
use crate::sequences::planned_from_rows;
use crate::{App, AppError, AppResult};
use mtp_core::Destination;
use mtp_core::plan::PlannedSequence;
use mtp_core::plan::validate::{ProblemCode, Severity, check_destination};
use mtp_core::store::{PhotoRow, SequenceMeta, part_name};
use mtp_providers::{
    ErrorKind, KartaViewClient, MapillaryClient, ProviderError, UploadSource,
    kartaview::UPLOAD_SOURCE,
};
use serde::Serialize;

/// What an upload would do, per sequence and destination.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct DryRun {
    pub sequences: Vec<SequenceDryRun>,
}

/// One sequence of the import (or the saved sequence).
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SequenceDryRun {
    /// The name it gets when saved ("<name> Part N" when the folder makes several).
    pub name: String,
    pub photos: usize,
    pub bytes: u64,
    pub destinations: Vec<DestinationDryRun>,
}

/// What one destination would receive.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct DestinationDryRun {
    pub destination: Destination,
    pub label: &'static str,
    pub account: AccountCheck,
    /// The destination's rules accept the sequence; otherwise saving leaves this
    /// destination out for it, and `refused` says why.
    pub accepted: bool,
    /// Photos and bytes (the files' sizes) that would be sent; 0 for Map the Paths Web,
    /// which receives the sequence's details only.
    pub photos: usize,
    pub bytes: u64,
    /// How the photos go: Mapillary in chunks (one manifest and one Mapillary sequence
    /// each), the others in one.
    pub chunks: Vec<ChunkPlan>,
    /// The fields sent with the first photo (Map the Paths Web: with the sequence), in the
    /// order they are sent; tokens are not shown.
    pub fields: Vec<(String, String)>,
    /// Mapillary: the `MAP*` JSON written into the first photo's EXIF `ImageDescription`.
    pub first_description: Option<String>,
    pub refused: Vec<Refusal>,
    /// Warnings of the destination's rules, and what else happens around the photos.
    pub notes: Vec<String>,
}

/// Whether the account can upload right now.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct AccountCheck {
    pub connected: bool,
    pub username: Option<String>,
    pub can_upload: bool,
    /// What the check found, in words (and what to do about a problem).
    pub says: String,
}

/// One part of the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
pub struct ChunkPlan {
    pub photos: usize,
    pub bytes: u64,
}

/// Something the destination's rules refuse: one file, or the whole sequence (`file` empty).
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct Refusal {
    pub file: Option<String>,
    pub reason: String,
}

/// A sequence as the dry run needs it: what the planner checks, and the rows the drivers
/// send from.
struct Candidate {
    name: String,
    description: String,
    transport_type: Option<String>,
    tags: Vec<String>,
    planned: PlannedSequence,
    rows: Vec<PhotoRow>,
}

/// Problems that concern single photos: the dry run names each file they refuse.
const PER_PHOTO: [ProblemCode; 7] = [
    ProblemCode::MissingPosition,
    ProblemCode::InvalidCoordinates,
    ProblemCode::NullIsland,
    ProblemCode::MissingCaptureTime,
    ProblemCode::CaptureTimeInFuture,
    ProblemCode::CaptureTimeTooEarly,
    ProblemCode::NotJpeg,
];

impl App {
    /// Dry run of a previewed import (`prepare_folder`'s `token`), not saved yet: every
    /// sequence of the preview, named and described as `meta` says. The preview stays
    /// available for `save_import`.
    pub async fn dry_run_prepared(
        &self,
        token: &str,
        meta: &SequenceMeta,
        destinations: &[Destination],
    ) -> AppResult<DryRun> {
        let (plan, suggested_name) = {
            let stash = self
                .inner
                .prepared
                .lock()
                .map_err(|_| AppError::new("internal", "lock poisoned"))?;
            let (_, prepared) = stash.iter().find(|(t, _)| t == token).ok_or_else(|| {
                AppError::new(
                    "stale_plan",
                    "This preview is no longer available: read the folder again.",
                )
            })?;
            (prepared.plan.clone(), prepared.suggested_name.clone())
        };
        let mut meta = meta.clone();
        if meta.name.trim().is_empty() {
            meta.name = suggested_name;
        }
        let meta = checked_meta(meta)?;
        if plan.sequences.is_empty() {
            return Err(AppError::invalid(
                "No photo of this folder can be uploaded: see the reasons listed, fix them and read the folder again.",
            ));
        }
        let count = plan.sequences.len();
        let candidates = plan
            .sequences
            .into_iter()
            .map(|planned| Candidate {
                name: part_name(&meta.name, planned.index, count),
                description: meta.description.clone(),
                transport_type: meta.transport_type.clone(),
                tags: meta.tags.clone(),
                rows: planned.photos.iter().map(row_of).collect(),
                planned,
            })
            .collect();
        self.dry_run(candidates, destinations, None).await
    }

    /// Dry run of a saved sequence to `destinations` (all four when empty).
    pub async fn dry_run_sequence(
        &self,
        id: i64,
        destinations: &[Destination],
    ) -> AppResult<DryRun> {
        let seq = self
            .store()
            .sequence(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("There is no sequence {id}.")))?;
        let rows = self.store().photos(id).await?;
        let candidate = Candidate {
            name: seq.name.clone(),
            description: seq.description.clone(),
            transport_type: seq.transport_type.clone(),
            tags: seq.tags(),
            planned: planned_from_rows(&seq, &rows),
            rows,
        };
        self.dry_run(vec![candidate], destinations, Some(id)).await
    }

    async fn dry_run(
        &self,
        candidates: Vec<Candidate>,
        destinations: &[Destination],
        saved: Option<i64>,
    ) -> AppResult<DryRun> {
        let destinations: Vec<Destination> = if destinations.is_empty() {
            Destination::ALL.to_vec()
        } else {
            Destination::ALL
                .iter()
                .copied()
                .filter(|d| destinations.contains(d))
                .collect()
        };
        // One check per service, whatever the number of sequences.
        let mut accounts = Vec::new();
        for &d in &destinations {
            accounts.push((d, self.check_account(d).await));
        }
        let jobs = match saved {
            Some(id) => self.store().jobs_of_sequence(id).await?,
            None => Vec::new(),
        };
        let consent = self.mtpw_mapillary_consent().await?;
        let chunk_size = self.mode_pipeline_options().mapillary_chunk.max(1);
        let now = self.now_ms();
        let mut sequences = Vec::new();
        for c in &candidates {
            let mut out = Vec::new();
            for (d, account) in &accounts {
                let mut dest = self.destination_dry_run(*d, c, chunk_size, now).await;
                dest.account = account.clone();
                if let Some(job) = jobs.iter().find(|j| j.destination == *d) {
                    dest.notes.push(format!(
                        "This sequence already has a {} upload ({}): it is not queued a second time.",
                        d.label(),
                        job.status
                    ));
                }
                if *d == Destination::Mtpw {
                    if !destinations.contains(&Destination::Mapillary) {
                        dest.notes.push(
                            "Mapillary is not among the destinations: the Map the Paths Web sequence is created without a link to Mapillary imagery.".into(),
                        );
                    } else if consent != Some(true) {
                        dest.notes.push(
                            "Linking it to the Mapillary sequence needs your permission to send your Mapillary token to Map the Paths Web (asked on its card on the Integrations screen).".into(),
                        );
                    }
                }
                out.push(dest);
            }
            sequences.push(SequenceDryRun {
                name: c.name.clone(),
                photos: c.rows.len(),
                bytes: c.rows.iter().map(file_size).sum(),
                destinations: out,
            });
        }
        Ok(DryRun { sequences })
    }

    async fn destination_dry_run(
        &self,
        d: Destination,
        c: &Candidate,
        chunk_size: usize,
        now: i64,
    ) -> DestinationDryRun {
        let (refused, mut notes) = refusals(d, &c.planned, c.transport_type.as_deref(), now);
        let photos = if d == Destination::Mtpw {
            0
        } else {
            c.rows.len()
        };
        let chunks: Vec<ChunkPlan> = match d {
            Destination::Mtpw => Vec::new(),
            Destination::Mapillary => c.rows.chunks(chunk_size).map(chunk).collect(),
            _ => vec![chunk(&c.rows)],
        }
        .into_iter()
        .filter(|p| p.photos > 0)
        .collect();
        let bytes = chunks.iter().map(|p| p.bytes).sum();
        let mut first_description = None;
        let fields = match (d, c.rows.first()) {
            (Destination::Mtpw, _) => {
                notes.push(
                    "Map the Paths Web receives no photo: the sequence is created with these details, then linked to the Mapillary sequence once Mapillary has published it.".into(),
                );
                match mtpw::transport_name_of(c.transport_type.as_deref()) {
                    Ok(transport) => mtpw::new_sequence(
                        c.name.clone(),
                        transport,
                        &c.description,
                        c.tags.clone(),
                    )
                    .form_fields()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                    Err(e) => {
                        notes.push(e.to_string());
                        Vec::new()
                    }
                }
            }
            (_, None) => Vec::new(),
            (Destination::Mapillary, Some(first)) => {
                let description = mapillary::upload_description(first);
                let fields = mapillary_fields(first, &description, &mut notes).await;
                first_description = Some(description);
                notes.push(format!(
                    "Each chunk of up to {chunk_size} photos becomes one manifest, one finish_upload and one Mapillary sequence."
                ));
                fields
            }
            (Destination::Kartaview, Some(first)) => {
                let create = kartaview::new_sequence(first);
                notes.push(format!(
                    "First a KartaView sequence is created: uploadSource={}, currentCoordinate={},{}{}; then the photos are sent into it, then it is marked finished.",
                    UPLOAD_SOURCE,
                    create.first_latitude,
                    create.first_longitude,
                    create
                        .device_name
                        .map(|m| format!(", deviceName={m}"))
                        .unwrap_or_default()
                ));
                match kartaview::new_photo(
                    "<the new sequence's id>",
                    first,
                    &first.file_name,
                    UploadSource::default(),
                )
                .map_err(|e| e.to_string())
                .and_then(|p| p.form_fields().map_err(|e| e.to_string()))
                {
                    Ok(form) => {
                        let mut fields: Vec<(String, String)> =
                            vec![("access_token".into(), "<the account's token>".into())];
                        fields.extend(form.into_iter().map(|(k, v)| (k.to_string(), v)));
                        fields.push((
                            "photo".into(),
                            format!(
                                "{} (image/jpeg, {} bytes)",
                                first.file_name, first.file_size
                            ),
                        ));
                        fields
                    }
                    Err(e) => {
                        notes.push(format!("{}: {e}", first.file_name));
                        Vec::new()
                    }
                }
            }
            (Destination::Panoramax, Some(first)) => {
                let set = panoramax::new_upload_set(&c.name, c.rows.len());
                notes.push(format!(
                    "First an upload set is created ({}); the instance makes the sequence once every file is in.",
                    serde_json::to_string(&set).unwrap_or_default()
                ));
                let file = panoramax::new_file(&first.file_name, UploadSource::default(), first);
                match file.form_fields() {
                    Ok(form) => {
                        let mut fields = form;
                        fields.push((
                            "file".into(),
                            format!(
                                "{} (image/jpeg, {} bytes)",
                                file.part_name(),
                                first.file_size
                            ),
                        ));
                        fields
                    }
                    Err(e) => {
                        notes.push(format!("{}: {e}", first.file_name));
                        Vec::new()
                    }
                }
            }
        };
        DestinationDryRun {
            destination: d,
            label: d.label(),
            account: AccountCheck {
                connected: false,
                username: None,
                can_upload: false,
                says: String::new(),
            },
            accepted: refused.is_empty(),
            photos,
            bytes,
            chunks,
            fields,
            first_description,
            refused,
            notes,
        }
    }

    /// Whether `d`'s account is connected, not waiting for a new sign-in, and its token
    /// works: one read with the stored token (Mapillary's is refreshed first when it is
    /// about to expire, as before an upload).
    async fn check_account(&self, d: Destination) -> AccountCheck {
        let label = d.label();
        let sign_in_again = format!("sign in to {label} again on the Integrations screen");
        let stored = match self.store().account(d).await {
            Ok(a) => a,
            Err(e) => return problem(false, None, format!("cannot read the {label} account: {e}")),
        };
        let Some(stored) = stored else {
            return problem(
                false,
                None,
                format!("{label} is not connected: integrate it on the Integrations screen."),
            );
        };
        let username = stored.username.clone();
        if stored.needs_reauth {
            let why = stored
                .reauth_reason
                .clone()
                .unwrap_or_else(|| format!("{label} needs a new sign-in"));
            return problem(true, username, format!("{why}: {sign_in_again}."));
        }
        let account = match self.access_token(d).await {
            Ok(a) => a,
            Err(e) if matches!(e.code, "needs_reauth" | "auth" | "not_connected") => {
                return problem(true, username, format!("{}: {sign_in_again}.", e.message));
            }
            Err(e) => {
                return problem(
                    true,
                    username,
                    format!("could not check {label}: {}", e.message),
                );
            }
        };
        let s = self.services();
        let checked: Result<String, ProviderError> = match d {
            Destination::Mapillary => match s.mapillary.as_ref() {
                Some(cfg) => MapillaryClient::new(s.http.clone(), cfg, account.access_token)
                    .with_clock(self.clock())
                    .me()
                    .await
                    .map(|_| {
                        "Mapillary accepted the token (me). Whether it may upload (the \"upload\" permission) shows with the first photo.".to_string()
                    }),
                None => return problem(true, username, not_configured(d)),
            },
            // KartaView has no "who am I" read: its v2 reads refuse a token they do not
            // know, so asking for a sequence that does not exist checks the token.
            Destination::Kartaview => match s.kartaview.as_ref() {
                Some(cfg) => {
                    match KartaViewClient::new(s.http.clone(), cfg, account.access_token)
                        .with_clock(self.clock())
                        .sequence("0")
                        .await
                    {
                        Err(e) if e.status() == Some(404) || e.is_not_found() => Ok(()),
                        Err(e) => Err(e),
                        Ok(_) => Ok(()),
                    }
                    .map(|()| "KartaView accepted the token (a read of its v2 API).".to_string())
                }
                None => return problem(true, username, not_configured(d)),
            },
            Destination::Panoramax => match panoramax::instance_client(self, None).await {
                Ok((instance, client)) => client
                    .me()
                    .await
                    .map(|_| format!("{instance} accepted the token (/api/users/me).")),
                Err(e) => return problem(true, username, e.to_string()),
            },
            Destination::Mtpw => {
                return AccountCheck {
                    connected: true,
                    username,
                    can_upload: true,
                    says: "connected; Map the Paths Web has no way to check a token without creating something".into(),
                };
            }
        };
        match checked {
            Ok(says) => AccountCheck {
                connected: true,
                username,
                can_upload: true,
                says,
            },
            Err(e) if e.kind() == ErrorKind::Auth || matches!(e.status(), Some(401 | 403)) => {
                problem(
                    true,
                    username,
                    format!("{label} refused the stored token ({e}): {sign_in_again}."),
                )
            }
            Err(e) if e.status().is_none() => {
                problem(true, username, format!("could not reach {label}: {e}"))
            }
            Err(e) => problem(
                true,
                username,
                format!("{label} answered the check with an error: {e}"),
            ),
        }
    }
}

fn problem(connected: bool, username: Option<String>, says: String) -> AccountCheck {
    AccountCheck {
        connected,
        username,
        can_upload: false,
        says,
    }
}

fn not_configured(d: Destination) -> String {
    format!(
        "{} is not configured in this app: set its settings in {} and restart.",
        d.label(),
        crate::config::settings_file_words()
    )
}

fn file_size(p: &PhotoRow) -> u64 {
    u64::try_from(p.file_size).unwrap_or_default()
}

fn chunk(rows: &[PhotoRow]) -> ChunkPlan {
    ChunkPlan {
        photos: rows.len(),
        bytes: rows.iter().map(file_size).sum(),
    }
}

/// The first photo as Mapillary's upload sends it: its key (the md5 of the copy with the
/// description written in, so the file is read and rewritten in memory) and headers.
async fn mapillary_fields(
    first: &PhotoRow,
    description: &str,
    notes: &mut Vec<String>,
) -> Vec<(String, String)> {
    let (path, size, text) = (first.path.clone(), first.file_size, description.to_string());
    let made = tokio::task::spawn_blocking(move || {
        mapillary::upload_copy_blocking(&path, size, &text).map(|(source, key)| (source.len(), key))
    })
    .await;
    match made {
        Ok(Ok((len, key))) => {
            notes.push(format!(
                "Bytes are the files' sizes; the copy sent carries the MAP* description too (first photo: {len} bytes instead of {}).",
                first.file_size
            ));
            vec![
                ("upload key".into(), key.clone()),
                ("X-Entity-Name".into(), key),
                (
                    "Offset".into(),
                    "0 (a photo cut off resumes from the server's offset)".into(),
                ),
                ("Authorization".into(), "OAuth <the account's token>".into()),
                (
                    "body".into(),
                    format!(
                        "{} with the MAP* description as EXIF ImageDescription ({len} bytes)",
                        first.file_name
                    ),
                ),
            ]
        }
        Ok(Err(e)) => {
            notes.push(format!("{}: {e}", first.file_name));
            Vec::new()
        }
        Err(e) => {
            notes.push(format!("reading {} stopped: {e}", first.file_name));
            Vec::new()
        }
    }
}

/// What `d`'s rules refuse (the checks the app runs before queueing an upload), per file
/// where a rule concerns single photos; warnings go to the notes.
fn refusals(
    d: Destination,
    seq: &PlannedSequence,
    transport: Option<&str>,
    now: i64,
) -> (Vec<Refusal>, Vec<String>) {
    let check = check_destination(d, seq, transport, now);
    let mut refused = Vec::new();
    let mut notes = Vec::new();
    let mut one = PlannedSequence {
        photos: Vec::new(),
        ..seq.clone()
    };
    for p in check.problems {
        if p.severity == Severity::Warning {
            notes.push(p.message);
            continue;
        }
        if !PER_PHOTO.contains(&p.code) {
            refused.push(Refusal {
                file: None,
                reason: p.message,
            });
            continue;
        }
        let before = refused.len();
        for photo in &seq.photos {
            one.photos = vec![photo.clone()];
            if let Some(q) = check_destination(d, &one, transport, now)
                .problems
                .into_iter()
                .find(|q| q.code == p.code && q.severity == Severity::Error)
            {
                refused.push(Refusal {
                    file: Some(photo.photo.file_name.clone()),
                    reason: q.message,
                });
            }
        }
        if refused.len() == before {
            refused.push(Refusal {
                file: None,
                reason: p.message,
            });
        }
    }
    (refused, notes)
}

/// A previewed photo as the row saving it would write (what the drivers send from).
fn row_of(p: &mtp_core::plan::PlannedPhoto) -> PhotoRow {
    let m = &p.photo;
    PhotoRow {
        id: 0,
        sequence_id: 0,
        seq_index: i64::try_from(p.sequence_index).unwrap_or(i64::MAX),
        path: m.path.to_string_lossy().into_owned(),
        file_name: m.file_name.clone(),
        file_size: i64::try_from(m.file_size).unwrap_or(i64::MAX),
        captured_at: m.captured_at_ms.unwrap_or(p.original_captured_at_ms),
        original_captured_at: Some(p.original_captured_at_ms),
        lat: m.lat.unwrap_or_default(),
        lon: m.lon.unwrap_or_default(),
        altitude: m.altitude,
        heading: m.heading,
        heading_source: m
            .heading_source
            .and_then(|h| serde_json::to_value(h).ok())
            .and_then(|v| v.as_str().map(String::from)),
        make: m.make.clone(),
        model: m.model.clone(),
        serial: m.serial.clone(),
        width: m.width.map(i64::from),
        height: m.height.map(i64::from),
        orientation: m.orientation.map(i64::from),
        is_360: m.is_360,
        gps_accuracy_m: m.gps_accuracy_m,
    }
}
