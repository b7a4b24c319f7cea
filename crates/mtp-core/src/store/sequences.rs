//! Imports, their sequences, photos and dropped files.

use super::{Store, StoreError};
use crate::photo::PhotoMeta;
use crate::plan::{Plan, PlannedSequence};
use serde::Serialize;
use sqlx::{FromRow, QueryBuilder, Sqlite};

/// A folder read, as stored.
#[derive(Debug, Clone)]
pub struct NewImport<'a> {
    pub folder: &'a str,
    pub fingerprint: &'a str,
    pub options_json: &'a str,
    pub files_seen: i64,
}

/// What the user typed about a sequence.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct SequenceMeta {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub transport_type: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A file that did not become part of a sequence (unreadable, or dropped by the planner).
#[derive(Debug, Clone)]
pub struct DroppedFile<'a> {
    pub path: String,
    pub file_name: &'a str,
    pub reason_code: &'a str,
    pub message: &'a str,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub captured_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct SequenceRow {
    pub id: i64,
    pub uuid: String,
    pub import_id: Option<i64>,
    pub plan_index: i64,
    pub name: String,
    pub description: String,
    pub transport_type: Option<String>,
    pub tags_json: String,
    pub state: String,
    pub is_360: bool,
    pub photo_count: i64,
    pub total_bytes: i64,
    pub distance_m: f64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub split_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the user asked to delete it everywhere (it goes once every service confirmed).
    pub deleting_at: Option<i64>,
    pub folder: Option<String>,
}

impl SequenceRow {
    pub fn tags(&self) -> Vec<String> {
        serde_json::from_str(&self.tags_json).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct PhotoRow {
    pub id: i64,
    pub sequence_id: i64,
    pub seq_index: i64,
    pub path: String,
    pub file_name: String,
    pub file_size: i64,
    pub captured_at: i64,
    pub original_captured_at: Option<i64>,
    pub lat: f64,
    pub lon: f64,
    pub altitude: Option<f64>,
    pub heading: Option<f64>,
    pub heading_source: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub orientation: Option<i64>,
    pub is_360: bool,
    pub gps_accuracy_m: Option<f64>,
}

impl PhotoRow {
    /// Back to the reader's type, for the description and upload code.
    pub fn to_meta(&self) -> PhotoMeta {
        let mut m = PhotoMeta::new(&self.path);
        m.file_name = self.file_name.clone();
        m.file_size = self.file_size.max(0) as u64;
        m.captured_at_ms = Some(self.captured_at);
        m.lat = Some(self.lat);
        m.lon = Some(self.lon);
        m.altitude = self.altitude;
        m.heading = self.heading;
        m.make = self.make.clone();
        m.model = self.model.clone();
        m.serial = self.serial.clone();
        m.width = self.width.and_then(|w| u32::try_from(w).ok());
        m.height = self.height.and_then(|h| u32::try_from(h).ok());
        m.orientation = self.orientation.and_then(|o| u16::try_from(o).ok());
        m.is_360 = self.is_360;
        m.gps_accuracy_m = self.gps_accuracy_m;
        m
    }
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct DroppedRow {
    pub id: i64,
    pub import_id: i64,
    pub path: String,
    pub file_name: String,
    pub reason_code: String,
    pub message: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub captured_at: Option<i64>,
}

/// The name of part `index` of `count` (as Map the Paths names split sequences).
pub fn part_name(name: &str, index: usize, count: usize) -> String {
    if count <= 1 {
        name.to_string()
    } else {
        format!("{name} Part {}", index + 1)
    }
}

/// Rows per multi-row `INSERT` when saving a plan: at most 20 columns × 1,000 = 20,000
/// bound values a statement, under SQLite's limit of 32,766 (`SQLITE_MAX_VARIABLE_NUMBER`
/// since 3.32).
const ROWS_PER_INSERT: usize = 1000;
const _: () = assert!(20 * ROWS_PER_INSERT <= 32_766);

const SEQUENCE_COLUMNS: &str =
    "s.id, s.uuid, s.import_id, s.plan_index, s.name, s.description, s.transport_type,
    s.tags_json, s.state, s.is_360, s.photo_count, s.total_bytes, s.distance_m, s.started_at,
    s.ended_at, s.split_reason, s.created_at, s.updated_at, s.deleting_at, i.folder";

/// A saved sequence that already holds some photos of a new import.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequenceHolding {
    pub sequence_id: i64,
    pub name: String,
    pub folder: Option<String>,
    pub photos: i64,
}

impl Store {
    /// The saved sequences holding photos with these (file size, original capture time)
    /// keys: the same photos, wherever they were imported from and whatever their names.
    pub async fn sequences_holding(
        &self,
        keys: &[(i64, i64)],
    ) -> Result<Vec<SequenceHolding>, StoreError> {
        let mut counts: std::collections::BTreeMap<i64, i64> = Default::default();
        for chunk in keys.chunks(400) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT sequence_id, COUNT(*) FROM photos WHERE (file_size, original_captured_at) IN (",
            );
            qb.push_values(chunk, |mut row, (size, t)| {
                row.push_bind(*size).push_bind(*t);
            });
            qb.push(") GROUP BY sequence_id");
            // Once per folder read: not worth keeping prepared (hundreds of kB in SQLite).
            let rows: Vec<(i64, i64)> = qb
                .build_query_as()
                .persistent(false)
                .fetch_all(self.pool())
                .await?;
            for (id, n) in rows {
                *counts.entry(id).or_default() += n;
            }
        }
        let mut out = Vec::new();
        for (id, photos) in counts {
            if let Some(s) = self.sequence(id).await?
                && s.state != "archived"
            {
                out.push(SequenceHolding {
                    sequence_id: id,
                    name: s.name,
                    folder: s.folder,
                    photos,
                });
            }
        }
        Ok(out)
    }

    /// The import of a folder with this fingerprint, if it was imported before.
    pub async fn import_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM imports WHERE fingerprint = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(fingerprint)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Saves a whole plan in one transaction: the import, one sequence per planned sequence
    /// (named from `meta`, "Part N" when there are several), every kept photo and every
    /// dropped file. Returns the import id and the sequence ids in plan order.
    pub async fn save_plan(
        &self,
        import: &NewImport<'_>,
        plan: &Plan,
        dropped_files: &[DroppedFile<'_>],
        meta: &SequenceMeta,
        now: i64,
    ) -> Result<(i64, Vec<i64>), StoreError> {
        let mut tx = self.write_tx().await?;
        let import_id: i64 = sqlx::query_scalar(
            "INSERT INTO imports (folder, fingerprint, options_json, files_seen, created_at)
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(import.folder)
        .bind(import.fingerprint)
        .bind(import.options_json)
        .bind(import.files_seen)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;

        let tags = serde_json::to_string(&meta.tags).unwrap_or_else(|_| "[]".into());
        let mut ids = Vec::with_capacity(plan.sequences.len());
        for seq in &plan.sequences {
            let id = insert_sequence(
                &mut tx,
                import_id,
                seq,
                plan.sequences.len(),
                meta,
                &tags,
                now,
            )
            .await?;
            ids.push(id);
        }
        // Multi-row, as the photos; SQLite numbers the rows in VALUES order, so
        // `dropped` (ORDER BY id) still lists them in the order given.
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO dropped_photos (import_id, path, file_name, reason_code, message, lat, lon,
                                         captured_at) ",
        );
        for chunk in dropped_files.chunks(ROWS_PER_INSERT) {
            qb.reset();
            qb.push_values(chunk, |mut row, d| {
                row.push_bind(import_id)
                    .push_bind(&d.path)
                    .push_bind(d.file_name)
                    .push_bind(d.reason_code)
                    .push_bind(d.message)
                    .push_bind(d.lat)
                    .push_bind(d.lon)
                    .push_bind(d.captured_at);
            });
            qb.build()
                .persistent(chunk.len() == ROWS_PER_INSERT)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((import_id, ids))
    }

    pub async fn sequences(&self) -> Result<Vec<SequenceRow>, StoreError> {
        Ok(
            sqlx::query_as::<_, SequenceRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {SEQUENCE_COLUMNS} FROM sequences s LEFT JOIN imports i ON i.id = s.import_id
             WHERE s.state != 'archived' ORDER BY s.created_at DESC, s.id DESC"
        )))
            .fetch_all(self.pool())
            .await?,
        )
    }

    /// The ids of the sequences [`Store::sequences`] lists, in no particular order.
    pub async fn sequence_ids(&self) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT id FROM sequences WHERE state != 'archived'")
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// The sequences written at `since` or later (by this process or another one sharing
    /// the database), with when: id and `updated_at`.
    pub async fn sequences_updated_since(&self, since: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, updated_at FROM sequences WHERE updated_at >= ?")
                .bind(since)
                .fetch_all(self.pool())
                .await?,
        )
    }

    pub async fn sequence(&self, id: i64) -> Result<Option<SequenceRow>, StoreError> {
        Ok(sqlx::query_as::<_, SequenceRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {SEQUENCE_COLUMNS} FROM sequences s LEFT JOIN imports i ON i.id = s.import_id WHERE s.id = ?"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }

    pub async fn sequences_of_import(
        &self,
        import_id: i64,
    ) -> Result<Vec<SequenceRow>, StoreError> {
        Ok(
            sqlx::query_as::<_, SequenceRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {SEQUENCE_COLUMNS} FROM sequences s LEFT JOIN imports i ON i.id = s.import_id
             WHERE s.import_id = ? ORDER BY s.plan_index"
        )))
            .bind(import_id)
            .fetch_all(self.pool())
            .await?,
        )
    }

    pub async fn photos(&self, sequence_id: i64) -> Result<Vec<PhotoRow>, StoreError> {
        Ok(sqlx::query_as::<_, PhotoRow>(
            "SELECT * FROM photos WHERE sequence_id = ? ORDER BY seq_index",
        )
        .bind(sequence_id)
        .fetch_all(self.pool())
        .await?)
    }

    pub async fn dropped(&self, import_id: i64) -> Result<Vec<DroppedRow>, StoreError> {
        Ok(sqlx::query_as::<_, DroppedRow>(
            "SELECT * FROM dropped_photos WHERE import_id = ? ORDER BY id",
        )
        .bind(import_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Updates what the user typed about a sequence.
    pub async fn update_sequence_meta(
        &self,
        id: i64,
        meta: &SequenceMeta,
        now: i64,
    ) -> Result<(), StoreError> {
        let tags = serde_json::to_string(&meta.tags).unwrap_or_else(|_| "[]".into());
        let done = sqlx::query(
            "UPDATE sequences SET name = ?, description = ?, transport_type = ?, tags_json = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(&meta.name)
        .bind(&meta.description)
        .bind(&meta.transport_type)
        .bind(tags)
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("there is no sequence {id}")));
        }
        Ok(())
    }
}

async fn insert_sequence(
    tx: &mut sqlx::SqliteConnection,
    import_id: i64,
    seq: &PlannedSequence,
    count: usize,
    meta: &SequenceMeta,
    tags: &str,
    now: i64,
) -> Result<i64, StoreError> {
    let split = serde_json::to_string(&seq.split_reason).ok();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO sequences (uuid, import_id, plan_index, name, description, transport_type, tags_json,
                                is_360, photo_count, total_bytes, distance_m, started_at, ended_at,
                                split_reason, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(import_id)
    .bind(seq.index as i64)
    .bind(part_name(&meta.name, seq.index, count))
    .bind(&meta.description)
    .bind(&meta.transport_type)
    .bind(tags)
    .bind(seq.is_360)
    .bind(seq.photos.len() as i64)
    .bind(i64::try_from(seq.total_bytes).unwrap_or(i64::MAX))
    .bind(seq.distance_m)
    .bind(seq.started_at_ms)
    .bind(seq.ended_at_ms)
    .bind(split)
    .bind(now)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;

    // One multi-row INSERT per chunk instead of one per photo: every statement is a
    // round trip to sqlx's SQLite worker thread, which used to be most of the save time.
    let mut qb = QueryBuilder::<Sqlite>::new(
        "INSERT INTO photos (sequence_id, seq_index, path, file_name, file_size, captured_at,
                             original_captured_at, lat, lon, altitude, heading, heading_source, make,
                             model, serial, width, height, orientation, is_360, gps_accuracy_m) ",
    );
    for chunk in seq.photos.chunks(ROWS_PER_INSERT) {
        qb.reset();
        qb.push_values(chunk, |mut row, p| {
            let m = &p.photo;
            row.push_bind(id)
                .push_bind(p.sequence_index as i64)
                .push_bind(m.path.to_string_lossy().into_owned())
                .push_bind(&m.file_name)
                .push_bind(i64::try_from(m.file_size).unwrap_or(i64::MAX))
                .push_bind(m.captured_at_ms.unwrap_or(p.original_captured_at_ms))
                .push_bind(p.original_captured_at_ms)
                .push_bind(m.lat.unwrap_or_default())
                .push_bind(m.lon.unwrap_or_default())
                .push_bind(m.altitude)
                .push_bind(m.heading)
                .push_bind(
                    m.heading_source
                        .and_then(|h| serde_json::to_value(h).ok())
                        .and_then(|v| v.as_str().map(String::from)),
                )
                .push_bind(&m.make)
                .push_bind(&m.model)
                .push_bind(&m.serial)
                .push_bind(m.width.map(i64::from))
                .push_bind(m.height.map(i64::from))
                .push_bind(m.orientation.map(i64::from))
                .push_bind(m.is_360)
                .push_bind(m.gps_accuracy_m);
        });
        // Cache the full-size statement (reused by every long sequence), not the tails.
        qb.build()
            .persistent(chunk.len() == ROWS_PER_INSERT)
            .execute(&mut *tx)
            .await?;
    }
    Ok(id)
}
