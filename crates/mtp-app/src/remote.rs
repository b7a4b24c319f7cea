//! What each destination holds of a job, as saved on the job (`jobs.remote_json`): one
//! typed struct per destination, so a misspelt key cannot compile. The drivers write them
//! field by field as the service answers (see `pipeline::Remote`), the rows and the CLI
//! read them through [`RemoteState`].
//!
//! The JSON layout is the struct's: every field is written, absent or `null` fields read
//! as their default, and keys this version does not know are kept untouched. The migration
//! `20261220100001_typed_remote_state.sql` converted the earlier loose layout (Mapillary's
//! parallel per-chunk lists, Map the Paths Web's `part:<key>` entries).

use crate::mapillary_status::{ChunkStatus, StageDetail, StageFailure};
use mtp_core::Destination;
use mtp_core::store::{JobRow, Store, StoreError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// What every destination's state has.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Common {
    /// Why the job ended without the result it aims for (shown on the row).
    pub note: Option<String>,
    /// When publishing finished (epoch ms): the processing wait counts from here.
    pub published_at: Option<i64>,
    /// Looks at the processing state so far (for the back-off).
    #[serde(deserialize_with = "or_default")]
    pub polls: i64,
    /// When the create call was first sent (before its reply was stored): after a crash,
    /// the remote may hold what that call made.
    pub create_started_at: Option<i64>,
    /// The remote sequence was found again after its create reply was lost.
    #[serde(deserialize_with = "or_default")]
    pub adopted_after_crash: bool,
}

/// Mapillary: upload handles live on the job's photo items; per chunk of photos, one
/// manifest, one `finish_upload`, one cluster, and the sequences it became.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MapillaryRemote {
    #[serde(flatten)]
    pub common: Common,
    /// When the last photo reached the upload host (handles age from here).
    pub uploaded_at: Option<i64>,
    /// What publishing did per chunk.
    #[serde(deserialize_with = "or_default")]
    pub chunks: Vec<MapillaryChunk>,
    /// The first chunk's cluster and sequence (the row's id).
    pub cluster_id: Option<String>,
    pub sequence_key: Option<String>,
    pub first_image_id: Option<String>,
    /// Every sequence of every chunk, once all are on the map (Map the Paths Web links them).
    #[serde(deserialize_with = "or_default")]
    pub sequence_keys_all: Vec<String>,
    /// Start of the current "waiting for Mapillary" window (after "Check again").
    pub poll_since: Option<i64>,
    /// The processing stages per chunk (the row's stepper).
    #[serde(rename = "mly_chunks", deserialize_with = "or_default")]
    pub status: Vec<ChunkStatus>,
    /// Where the stages come from.
    #[serde(rename = "mly_stage_detail")]
    pub detail: Option<StageDetail>,
    /// A stage that failed.
    #[serde(rename = "mly_failure")]
    pub failure: Option<StageFailure>,
    /// Not confirmed within the publish timeout.
    #[serde(rename = "mly_unconfirmed", deserialize_with = "or_default")]
    pub unconfirmed: bool,
    /// When the next look is due (epoch ms).
    #[serde(rename = "mly_next_check_at")]
    pub next_check_at: Option<i64>,
}

/// What a Mapillary row says while a chunk goes as a zip.
pub const SENDING_AS_ZIP: &str =
    "Publishing: Mapillary refused these photos as a bundle, so they are sent again as one zip";

/// One chunk's publishing on Mapillary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MapillaryChunk {
    /// The manifest's upload key (a new one after its handles were refreshed).
    pub manifest_key: Option<String>,
    pub manifest_handle: Option<String>,
    /// When the photos' handles were last refreshed (epoch ms; 0 = refresh them now).
    pub handles_at: Option<i64>,
    /// When `finish_upload` was sent (before its reply was stored).
    pub finish_sent_at: Option<i64>,
    /// A `finish_upload` was refused (400) and the handles were renewed for it: a second
    /// refusal is final.
    pub renewed_after_refusal: bool,
    /// Sent as one zip (file type `zip`) instead of a bundle of images: Mapillary refused
    /// the bundle again after its handles were renewed (PROTOCOLS §2.2's fallback).
    pub as_zip: bool,
    /// The zip's upload key, saved before its first byte went.
    pub zip_key: Option<String>,
    pub zip_handle: Option<String>,
    /// When `zip_handle` came (epoch ms): an older one than a day is renewed first.
    pub zip_at: Option<i64>,
    pub cluster_id: Option<String>,
    /// The first sequence the chunk became.
    pub sequence_key: Option<String>,
}

/// KartaView: one sequence, photos on the job's items.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KartaViewRemote {
    #[serde(flatten)]
    pub common: Common,
    #[serde(deserialize_with = "id")]
    pub sequence_id: Option<String>,
    /// `sequence/finished-uploading` was accepted.
    #[serde(deserialize_with = "or_default")]
    pub finished: bool,
}

/// Panoramax: one upload set on one instance, and the collections it became.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PanoramaxRemote {
    #[serde(flatten)]
    pub common: Common,
    /// The instance the upload set lives on (the account may change instance later).
    pub instance_url: Option<String>,
    pub upload_set_id: Option<String>,
    /// The upload set was marked complete.
    #[serde(deserialize_with = "or_default")]
    pub completed: bool,
    #[serde(deserialize_with = "or_default")]
    pub collection_ids: Vec<String>,
    /// The first collection (the row's id).
    pub collection_id: Option<String>,
}

/// Map the Paths Web: one sequence, linked to the Mapillary sequence; further sequences
/// Mapillary made of the same photos get a "Part N" sequence each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MtpwRemote {
    #[serde(flatten)]
    pub common: Common,
    #[serde(deserialize_with = "id")]
    pub unique_id: Option<String>,
    /// The Mapillary sequence key an import was last sent for.
    pub mapillary_sequence_key: Option<String>,
    /// The Mapillary sequence key the import took, and what the server said.
    pub imported_key: Option<String>,
    pub import_message: Option<String>,
    /// Why it ended without a link (`consent`, …), if it did.
    pub unlinked: Option<String>,
    /// What the row says while the job waits, and for whom (see `mtpw::WAITING_ON_USER`).
    pub waiting: Option<String>,
    pub waiting_on: Option<String>,
    #[serde(deserialize_with = "or_default")]
    pub link_failures: i64,
    pub link_first_failed_at: Option<i64>,
    pub link_retry_at: Option<i64>,
    /// Times the sequence was created again after the server lost it.
    #[serde(deserialize_with = "or_default")]
    pub recreated: i64,
    /// An empty copy may exist from a create whose reply was lost.
    pub possible_duplicate: Option<String>,
    /// Further Mapillary sequences that could not be linked.
    pub other_keys: Option<String>,
    /// The "Part N" sequences, by Mapillary sequence key.
    #[serde(deserialize_with = "or_default")]
    pub parts: BTreeMap<String, MtpwPart>,
}

/// One "Part N" sequence on Map the Paths Web.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MtpwPart {
    #[serde(deserialize_with = "id")]
    pub unique_id: Option<String>,
    #[serde(deserialize_with = "or_default")]
    pub linked: bool,
}

/// A destination's state type.
pub trait DestinationRemote: Serialize + DeserializeOwned + Default {
    const DESTINATION: Destination;
    fn common(&self) -> &Common;
    fn common_mut(&mut self) -> &mut Common;

    /// The state saved on `job`, which must be a job of [`Self::DESTINATION`].
    fn of(job: &JobRow) -> Result<Self, RemoteStateError> {
        if job.destination != Self::DESTINATION {
            return Err(RemoteStateError(format!(
                "job {} is a {} job, not {}",
                job.id,
                job.destination.label(),
                Self::DESTINATION.label()
            )));
        }
        parse(&job.remote_json).map_err(|e| {
            RemoteStateError(format!(
                "the saved state of {} job {} cannot be read ({e})",
                job.destination.label(),
                job.id
            ))
        })
    }
}

/// Writes every field of `state` onto job `job_id` (keys it does not know are kept).
pub async fn save<T: DestinationRemote>(
    store: &Store,
    job_id: i64,
    state: &T,
    now: i64,
) -> Result<(), StoreError> {
    match serde_json::to_value(state) {
        Ok(serde_json::Value::Object(fields)) => store.patch_job_remote(job_id, &fields, now).await,
        Ok(_) => Err(StoreError::Invalid(
            "a remote state is not an object".into(),
        )),
        Err(e) => Err(StoreError::Invalid(format!(
            "a remote state cannot be written: {e}"
        ))),
    }
}

/// Parses a stored state (an empty column is an empty state).
fn parse<T: DeserializeOwned + Default>(json: &str) -> Result<T, serde_json::Error> {
    if json.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(json)
}

/// A stored state that cannot be read (it was written by a newer version, or damaged).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct RemoteStateError(pub String);

macro_rules! destination_remote {
    ($ty:ty, $dest:expr) => {
        impl DestinationRemote for $ty {
            const DESTINATION: Destination = $dest;
            fn common(&self) -> &Common {
                &self.common
            }
            fn common_mut(&mut self) -> &mut Common {
                &mut self.common
            }
        }
    };
}
destination_remote!(MapillaryRemote, Destination::Mapillary);
destination_remote!(KartaViewRemote, Destination::Kartaview);
destination_remote!(PanoramaxRemote, Destination::Panoramax);
destination_remote!(MtpwRemote, Destination::Mtpw);

/// Any job's state, by its destination.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteState {
    Mapillary(MapillaryRemote),
    Kartaview(KartaViewRemote),
    Panoramax(PanoramaxRemote),
    Mtpw(MtpwRemote),
}

impl RemoteState {
    /// The state saved on `job`.
    pub fn of(job: &JobRow) -> Result<RemoteState, RemoteStateError> {
        Ok(match job.destination {
            Destination::Mapillary => RemoteState::Mapillary(MapillaryRemote::of(job)?),
            Destination::Kartaview => RemoteState::Kartaview(KartaViewRemote::of(job)?),
            Destination::Panoramax => RemoteState::Panoramax(PanoramaxRemote::of(job)?),
            Destination::Mtpw => RemoteState::Mtpw(MtpwRemote::of(job)?),
        })
    }

    /// The state `json` of a `destination` job (as a remote action keeps it).
    pub fn parse(destination: Destination, json: &str) -> Result<RemoteState, RemoteStateError> {
        let wrap = |e: serde_json::Error| {
            RemoteStateError(format!(
                "a saved {} state cannot be read ({e})",
                destination.label()
            ))
        };
        Ok(match destination {
            Destination::Mapillary => RemoteState::Mapillary(parse(json).map_err(wrap)?),
            Destination::Kartaview => RemoteState::Kartaview(parse(json).map_err(wrap)?),
            Destination::Panoramax => RemoteState::Panoramax(parse(json).map_err(wrap)?),
            Destination::Mtpw => RemoteState::Mtpw(parse(json).map_err(wrap)?),
        })
    }

    /// As [`RemoteState::of`], for display: a state that cannot be read shows as empty
    /// (and is logged); the driver reports it when the job runs.
    pub fn shown(job: &JobRow) -> RemoteState {
        RemoteState::of(job).unwrap_or_else(|e| {
            tracing::warn!(job = job.id, "{e}");
            match job.destination {
                Destination::Mapillary => RemoteState::Mapillary(Default::default()),
                Destination::Kartaview => RemoteState::Kartaview(Default::default()),
                Destination::Panoramax => RemoteState::Panoramax(Default::default()),
                Destination::Mtpw => RemoteState::Mtpw(Default::default()),
            }
        })
    }

    pub fn common(&self) -> &Common {
        match self {
            RemoteState::Mapillary(r) => &r.common,
            RemoteState::Kartaview(r) => &r.common,
            RemoteState::Panoramax(r) => &r.common,
            RemoteState::Mtpw(r) => &r.common,
        }
    }

    /// The id the row shows: the sequence (or, before it exists, what will become it).
    pub fn remote_id(&self) -> Option<String> {
        match self {
            RemoteState::Mapillary(r) => r.sequence_key.clone().or_else(|| r.cluster_id.clone()),
            RemoteState::Kartaview(r) => r.sequence_id.clone(),
            RemoteState::Panoramax(r) => {
                r.collection_id.clone().or_else(|| r.upload_set_id.clone())
            }
            RemoteState::Mtpw(r) => r.unique_id.clone(),
        }
    }

    /// Everything the row should say about how the job ended, in one text.
    pub fn note(&self) -> Option<String> {
        let mut parts: Vec<&str> = self.common().note.iter().map(String::as_str).collect();
        if let RemoteState::Mtpw(r) = self {
            parts.extend(r.other_keys.as_deref());
            parts.extend(r.possible_duplicate.as_deref());
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// What the row says while the job waits for something other than the network.
    pub fn waiting(&self) -> Option<&str> {
        match self {
            RemoteState::Mtpw(r) => r.waiting.as_deref(),
            RemoteState::Mapillary(r)
                if r.chunks
                    .iter()
                    .any(|c| c.as_zip && c.cluster_id.is_none() && c.sequence_key.is_none()) =>
            {
                Some(SENDING_AS_ZIP)
            }
            _ => None,
        }
    }
}

/// `null` reads as the default (earlier versions wrote `null` to clear a key).
fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A remote id, which some services give as a number: kept as text. Empty is none.
fn id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(match Option::<Id>::deserialize(d)? {
        Some(Id::Text(s)) if !s.is_empty() => Some(s),
        Some(Id::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_and_null_fields_read_as_defaults_and_numeric_ids_as_text() {
        let kv: KartaViewRemote = parse(
            &json!({"sequence_id": 12345, "finished": null, "polls": null, "note": null})
                .to_string(),
        )
        .unwrap();
        assert_eq!(kv.sequence_id.as_deref(), Some("12345"));
        assert!(!kv.finished);
        assert_eq!(kv.common, Common::default());
        let empty: MtpwRemote = parse("").unwrap();
        assert_eq!(empty, MtpwRemote::default());
    }

    #[test]
    fn a_mapillary_row_says_so_while_a_chunk_goes_as_a_zip() {
        let zip = MapillaryChunk {
            as_zip: true,
            ..MapillaryChunk::default()
        };
        let mut mly = MapillaryRemote {
            chunks: vec![MapillaryChunk::default(), zip],
            ..MapillaryRemote::default()
        };
        let state = |r: &MapillaryRemote| RemoteState::Mapillary(r.clone());
        assert_eq!(state(&mly).waiting(), Some(SENDING_AS_ZIP));
        mly.chunks[1].cluster_id = Some("c".into());
        assert_eq!(state(&mly).waiting(), None, "published");
        assert_eq!(state(&MapillaryRemote::default()).waiting(), None);
    }

    #[test]
    fn the_shared_fields_sit_beside_the_destination_fields() {
        let mut px = PanoramaxRemote::default();
        px.common.published_at = Some(5);
        px.upload_set_id = Some("set".into());
        let v = serde_json::to_value(&px).unwrap();
        assert_eq!(v["published_at"], json!(5));
        assert_eq!(v["upload_set_id"], json!("set"));
        assert_eq!(serde_json::from_value::<PanoramaxRemote>(v).unwrap(), px);
    }

    #[test]
    fn a_state_of_the_wrong_shape_is_an_error_that_names_the_job() {
        let job = JobRow {
            id: 7,
            sequence_id: 1,
            destination: Destination::Kartaview,
            stage: mtp_core::engine::Stage::Upload,
            status: mtp_core::engine::JobStatus::Pending,
            attempts: 0,
            next_run_at: 0,
            not_before: 0,
            last_error: None,
            last_error_kind: None,
            remote_json: json!({"finished": "yes"}).to_string(),
            remote_url: None,
            photos_total: 0,
            photos_done: 0,
            bytes_total: 0,
            bytes_done: 0,
            created_at: 0,
            updated_at: 0,
        };
        let e = KartaViewRemote::of(&job).unwrap_err();
        assert!(e.0.contains("KartaView job 7"), "{e}");
        assert!(
            matches!(RemoteState::shown(&job), RemoteState::Kartaview(k) if k == KartaViewRemote::default())
        );
    }

    /// Jobs saved by the version before typed states read the same after the migration.
    #[tokio::test]
    async fn the_migration_converts_the_earlier_layouts() {
        let store = Store::open_in_memory().await.unwrap();
        let pool = store.pool();
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(pool)
            .await
            .unwrap();
        let rows = [
            (
                1,
                "mapillary",
                json!({
                    "manifest_keys": ["k0", "k1"], "manifest_handles": ["h0", null],
                    "handles_at": ["1700000000000"],
                    "finish_sent_at": ["1700000000001", "1700000000002"],
                    "cluster_ids": ["c0", "c1"], "sequence_keys": ["s0"],
                    "cluster_id": "c0", "published_at": 5, "mly_unconfirmed": true,
                }),
            ),
            (
                2,
                "mtpw",
                json!({"unique_id": "u1", "part:KEY2": "u2", "part_linked:KEY2": true,
                       "part:KEY3": "u3", "waiting": null, "recreated": 1}),
            ),
            (
                3,
                "kartaview",
                json!({"sequence_id": 123, "finished": true}),
            ),
        ];
        for (id, destination, remote) in &rows {
            sqlx::query(
                "INSERT INTO jobs (id, sequence_id, destination, remote_json, created_at, updated_at)
                 VALUES (?, ?, ?, ?, 0, 0)",
            )
            .bind(id)
            .bind(id)
            .bind(destination)
            .bind(remote.to_string())
            .execute(pool)
            .await
            .unwrap();
        }
        sqlx::raw_sql(include_str!(
            "../../../migrations/20261220100001_typed_remote_state.sql"
        ))
        .execute(pool)
        .await
        .unwrap();
        let jobs = store.jobs().await.unwrap();
        let state = |id: i64| RemoteState::of(jobs.iter().find(|j| j.id == id).unwrap()).unwrap();

        let RemoteState::Mapillary(mly) = state(1) else {
            panic!("not Mapillary")
        };
        assert_eq!(
            mly.chunks,
            vec![
                MapillaryChunk {
                    manifest_key: Some("k0".into()),
                    manifest_handle: Some("h0".into()),
                    handles_at: Some(1_700_000_000_000),
                    finish_sent_at: Some(1_700_000_000_001),
                    renewed_after_refusal: false,
                    cluster_id: Some("c0".into()),
                    sequence_key: Some("s0".into()),
                    ..MapillaryChunk::default()
                },
                MapillaryChunk {
                    manifest_key: Some("k1".into()),
                    finish_sent_at: Some(1_700_000_000_002),
                    cluster_id: Some("c1".into()),
                    ..MapillaryChunk::default()
                },
            ]
        );
        assert_eq!(mly.cluster_id.as_deref(), Some("c0"));
        assert_eq!(mly.common.published_at, Some(5));
        assert!(mly.unconfirmed);
        let raw = &jobs[0].remote_json;
        assert!(
            !raw.contains("manifest_keys") && !raw.contains("cluster_ids"),
            "{raw}"
        );

        let RemoteState::Mtpw(web) = state(2) else {
            panic!("not Map the Paths Web")
        };
        assert_eq!(web.unique_id.as_deref(), Some("u1"));
        assert_eq!(web.recreated, 1);
        assert_eq!(
            web.parts.get("KEY2"),
            Some(&MtpwPart {
                unique_id: Some("u2".into()),
                linked: true
            })
        );
        assert_eq!(
            web.parts.get("KEY3"),
            Some(&MtpwPart {
                unique_id: Some("u3".into()),
                linked: false
            })
        );
        assert!(
            !jobs[1].remote_json.contains("part:"),
            "{}",
            jobs[1].remote_json
        );

        let RemoteState::Kartaview(kv) = state(3) else {
            panic!("not KartaView")
        };
        assert_eq!(kv.sequence_id.as_deref(), Some("123"));
        assert!(kv.finished);
    }
}
