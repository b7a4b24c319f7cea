//! What Mapillary made of a job's upload, stored on the job (see
//! [`crate::remote::MapillaryRemote`]) and shown by the status row's stepper, `mtp status` and scripts
//! (`mtp status --json`): per chunk (one manifest, one `finish_upload`, one cluster), the
//! four stages of mapillary.com's activity page, the raw statuses and `error_code`, how many
//! photos Mapillary counted against those sent, and every sequence the chunk became.

use crate::remote::{DestinationRemote, MapillaryRemote};
use mtp_core::store::JobRow;
pub use mtp_providers::mapillary::activity::{AccountStats, STAGE_NAMES, StageState};
use serde::{Deserialize, Serialize};

/// The job ends this way when Mapillary has not confirmed it in time (never "Done").
pub const NOT_CONFIRMED: &str = "Not confirmed by Mapillary after 3 days";
/// What a row says when neither token may read the activity feed.
pub const DETAIL_UNAVAILABLE: &str = "stage detail unavailable: Mapillary's activity feed refused the tokens; the sequence is looked for by position and time";

/// One stage of one chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct StageRecord {
    #[ts(type = "\"waiting\" | \"running\" | \"done\" | \"failed\"")]
    pub state: StageState,
    /// The raw status from the feed (`FINISHED`, `UNSET`, …).
    pub raw: Option<String>,
    /// When we first saw it in its current state (epoch ms).
    pub changed_at: Option<i64>,
}

/// One chunk of ≤1000 photos: one manifest, one cluster on Mapillary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ChunkStatus {
    pub cluster_id: Option<String>,
    /// Photos sent in this chunk.
    pub sent: usize,
    #[ts(as = "Vec<StageRecord>")]
    pub stages: [StageRecord; 4],
    /// The raw `error_code` when it is not `UNSET`.
    pub error_code: Option<String>,
    /// Photos Mapillary counted in the cluster (`item_count`).
    #[ts(type = "number | null")]
    pub item_count: Option<u64>,
    /// One published image of the cluster.
    pub image_id: Option<String>,
    /// Every sequence the chunk became (Mapillary sometimes splits one).
    #[serde(default)]
    pub sequence_keys: Vec<String>,
    /// Photos of the chunk found published.
    pub published: Option<usize>,
}

impl ChunkStatus {
    pub fn map_updated(&self) -> bool {
        self.stages[3].state == StageState::Done
    }

    pub fn failed_stage(&self) -> Option<usize> {
        self.stages
            .iter()
            .position(|s| s.state == StageState::Failed)
    }
}

/// Where the stages come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum StageDetail {
    /// The activity feed, with the user's token.
    UserToken,
    /// The activity feed, with `MAPILLARY_WEB_CLIENT_TOKEN`.
    WebClientToken,
    /// Neither token was accepted: only the image search.
    Unavailable,
}

/// A stage that failed: the job ends with it, and "Upload again" re-sends the chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct StageFailure {
    pub chunk: usize,
    pub stage: usize,
    pub error_code: Option<String>,
    pub reason: String,
}

/// Everything the row, the CLI and scripts show of a Mapillary job.
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
pub struct MapillaryStatus {
    #[ts(as = "Vec<String>")]
    pub stage_names: [&'static str; 4],
    pub chunks: Vec<ChunkStatus>,
    pub detail: Option<StageDetail>,
    pub failure: Option<StageFailure>,
    /// Mapillary did not confirm in time: the row offers "Check again".
    pub unconfirmed: bool,
    pub next_check_at: Option<i64>,
}

impl MapillaryStatus {
    /// Read from a Mapillary job's remote ids; `None` before anything was published.
    pub fn of_job(job: &JobRow) -> Option<MapillaryStatus> {
        let remote = MapillaryRemote::of(job).ok()?;
        if remote.status.is_empty() {
            return None;
        }
        Some(MapillaryStatus {
            stage_names: STAGE_NAMES,
            chunks: remote.status,
            detail: remote.detail,
            failure: remote.failure,
            unconfirmed: remote.unconfirmed,
            next_check_at: remote.next_check_at,
        })
    }

    /// The four stages over every chunk: a stage is as far as its slowest chunk.
    pub fn overall(&self) -> [StageState; 4] {
        let mut out = [StageState::Done; 4];
        for (i, slot) in out.iter_mut().enumerate() {
            let states = self.chunks.iter().map(|c| c.stages[i].state);
            *slot = if states.clone().any(|s| s == StageState::Failed) {
                StageState::Failed
            } else if states.clone().all(|s| s == StageState::Done) {
                StageState::Done
            } else if states.clone().any(|s| s != StageState::Waiting) {
                StageState::Running
            } else {
                StageState::Waiting
            };
        }
        out
    }

    /// Lines for `mtp status`: one per chunk, with its stages.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.detail == Some(StageDetail::Unavailable) {
            out.push(DETAIL_UNAVAILABLE.to_string());
        }
        for (i, c) in self.chunks.iter().enumerate() {
            let stages: Vec<String> = self
                .stage_names
                .iter()
                .zip(&c.stages)
                .map(|(name, s)| {
                    let raw = s
                        .raw
                        .as_deref()
                        .map(|r| format!(" [{r}]"))
                        .unwrap_or_default();
                    format!("{name}: {}{raw}", s.state.as_str())
                })
                .collect();
            let mut line = format!(
                "chunk {} (cluster {}): {}",
                i + 1,
                c.cluster_id.as_deref().unwrap_or("not finished yet"),
                stages.join(", ")
            );
            if let Some(code) = &c.error_code {
                line.push_str(&format!("; error {code}"));
            }
            if let Some(n) = c.item_count {
                line.push_str(&format!("; {n} of {} photos counted", c.sent));
            }
            if !c.sequence_keys.is_empty() {
                line.push_str(&format!("; sequences {}", c.sequence_keys.join(", ")));
            }
            out.push(line);
        }
        out
    }
}

/// An epoch-ms time as UTC `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
