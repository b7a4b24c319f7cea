//! KartaView (PROTOCOLS §3).
//!
//! - `prepare`: the files are still there, unchanged.
//! - `upload`: the sequence is created once (`currentCoordinate` = first photo) and its id
//!   saved at once; then the photos, 4 at a time, each with `sequenceIndex` = the photo's
//!   stored index (never recomputed), its position, heading, UTC shot date and, for 360°
//!   photos, `projection=SPHERE` + `fieldOfView=360`. A duplicate (660/406) means the photo
//!   is already there: success. Photo ids are saved on the items.
//! - `publish`: photo ids a duplicate reply did not give are read back; then
//!   `finished-uploading` (idempotent: "already finished" is success).
//! - `poll`: the v2 sequence until processing has finished (the job's page is
//!   `https://kartaview.org/details/<id>`); gives up gracefully after 72 h.
//! - `sync`: nothing.

use crate::App;
use crate::remote::KartaViewRemote;

use super::{
    PipelineOptions, Remote, Shared, account, check_files, count_items, item_error, photo_of,
    photo_source, photos_by_id, provider_step_error, remote_ids_of, run_items, unsent, watched,
};
use futures::future::BoxFuture;
use mtp_core::Destination;
use mtp_core::engine::{Driver, ItemState, JobCtx, Stage, StepError, StepOutcome};
use mtp_core::store::{JobItemRow, JobRow, PhotoRow};
use mtp_providers::config::KartaViewConfig;
use mtp_providers::kartaview::{NewPhoto, NewSequence, PhotoOutcome, Projection, UPLOAD_SOURCE};
use mtp_providers::{KartaViewClient, UploadSource};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) struct KartaViewDriver {
    shared: Arc<Shared>,
    /// Held by one job at a time from looking for a lost create's sequence, or asking for
    /// a new one, until its id is saved: another job must not take for lost a sequence a
    /// job has just made, nor two jobs take the same one.
    creates: tokio::sync::Mutex<()>,
}

impl KartaViewDriver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        KartaViewDriver {
            shared,
            creates: tokio::sync::Mutex::new(()),
        }
    }

    fn options(&self) -> &PipelineOptions {
        &self.shared.options
    }
}

impl Driver for KartaViewDriver {
    fn run<'a>(
        &'a self,
        stage: Stage,
        _job: &'a JobRow,
        ctx: &'a JobCtx,
    ) -> BoxFuture<'a, Result<StepOutcome, StepError>> {
        Box::pin(async move {
            match stage {
                Stage::Prepare => check_files(ctx).await,
                Stage::Upload | Stage::Publish | Stage::Poll => {
                    let app = self.shared.app()?;
                    let (client, cfg) = client(&app).await?;
                    match stage {
                        Stage::Upload => self.upload(&client, ctx).await,
                        Stage::Publish => self.publish(&client, &cfg, ctx).await,
                        _ => self.poll(&client, ctx).await,
                    }
                }
                Stage::Sync => Ok(StepOutcome::Advance),
                Stage::Done => Ok(StepOutcome::Finish),
            }
        })
    }
}

/// A client with the account's token, and the settings it was made from.
pub(crate) async fn client(app: &App) -> Result<(KartaViewClient, KartaViewConfig), StepError> {
    let cfg = app.services().kartaview.clone().ok_or_else(|| {
        StepError::permanent(
            "KartaView is not configured: KARTAVIEW_OSM_CLIENT_ID is set without KARTAVIEW_OSM_CLIENT_SECRET. Set both (or neither, to sign in through KartaView's own app), restart, then retry.",
        )
    })?;
    let account = account(app, Destination::Kartaview).await?;
    let client = KartaViewClient::new(app.services().http.clone(), &cfg, account.access_token)
        .with_clock(app.clock());
    Ok((client, cfg))
}

/// Whether KartaView says the sequence does not exist (deleted on its website, or a
/// sandbox whose data was reset): a 404 from v2, or v1's "out of range" for the id.
async fn sequence_is_gone(client: &KartaViewClient, id: &str) -> Result<bool, StepError> {
    match client.sequence(id).await {
        Ok(_) => Ok(false),
        Err(e) if e.status() == Some(404) || e.code() == Some("apiCode 612") => Ok(true),
        Err(e) => Err(provider_step_error(e)),
    }
}

/// How many pages of `/my-list` a lost create is looked for in (100 sequences a page).
const MY_LIST_PAGES: u32 = 50;

/// The empty sequence a lost create left on KartaView, if any: the newest of the account's
/// sequences that holds no photo, came from this app, and no job of ours knows. Every page
/// of the account's list is read (its order is not documented), up to `MY_LIST_PAGES`.
async fn find_lost_sequence(
    client: &KartaViewClient,
    ctx: &JobCtx,
) -> Result<Option<String>, StepError> {
    let Some(username) = ctx
        .store
        .account(Destination::Kartaview)
        .await?
        .and_then(|a| a.username)
    else {
        return Ok(None);
    };
    let known = remote_ids_of(ctx, |r: KartaViewRemote| r.sequence_id).await?;
    let mut candidates = Vec::new();
    let mut read = 0u64;
    for page in 1..=MY_LIST_PAGES {
        let list = client
            .my_list(&username, page)
            .await
            .map_err(provider_step_error)?;
        let n = list.items.len() as u64;
        read += n;
        let last = n == 0
            || match list.total {
                Some(total) => read >= total,
                None => n < 100,
            };
        candidates.extend(list.items.into_iter().filter(|s| {
            s.photo_count == Some(0)
                && s.upload_source.as_deref() == Some(UPLOAD_SOURCE)
                && !known.contains(&s.id)
        }));
        if last {
            break;
        }
    }
    // The newest: KartaView numbers sequences in the order it makes them.
    let found = candidates
        .into_iter()
        .max_by_key(|s| (s.id.parse::<u64>().unwrap_or(0), s.id.clone()));
    if let Some(s) = &found {
        tracing::info!(
            job = ctx.job_id,
            sequence = %s.id,
            "KartaView: using the empty sequence a lost create left behind"
        );
    }
    Ok(found.map(|s| s.id))
}

impl KartaViewDriver {
    async fn upload(
        &self,
        client: &KartaViewClient,
        ctx: &JobCtx,
    ) -> Result<StepOutcome, StepError> {
        let mut remote = Remote::<KartaViewRemote>::load(ctx).await?;
        let photos = photos_by_id(ctx).await?;
        let items = ctx.items().await?;
        if let Some(id) = remote.sequence_id.clone()
            && sequence_is_gone(client, &id).await?
        {
            ctx.store
                .restart_job_remote(
                    ctx.job_id,
                    &format!("KartaView no longer has sequence {id}: sending the photos again in a new one"),
                    ctx.now(),
                )
                .await?;
            return Err(StepError::retry(format!(
                "KartaView no longer has sequence {id}: starting again"
            )));
        }
        let creating = match remote.sequence_id {
            None => Some(self.creates.lock().await),
            Some(_) => None,
        };
        let lost = match remote.sequence_id {
            // A create was sent before and its reply never stored (a crash or a kill in
            // between): KartaView may hold that sequence, empty. Use it rather than leave it
            // behind and make another.
            None if remote.common.create_started_at.is_some() => {
                find_lost_sequence(client, ctx).await?
            }
            _ => None,
        };
        if let Some(id) = lost {
            remote
                .update(ctx, |r| {
                    r.sequence_id = Some(id);
                    r.common.adopted_after_crash = true;
                })
                .await?;
        }
        let sequence_id = match remote.sequence_id.clone() {
            Some(id) => id,
            None => {
                let first = items
                    .first()
                    .ok_or_else(|| StepError::permanent("This sequence has no photos to send."))?;
                let first = photo_of(&photos, first)?;
                ctx.check()?;
                let now = ctx.now();
                remote
                    .update(ctx, |r| r.common.create_started_at = Some(now))
                    .await?;
                let id = client
                    .create_sequence(&new_sequence(first))
                    .await
                    .map_err(provider_step_error)?;
                remote
                    .update(ctx, |r| r.sequence_id = Some(id.clone()))
                    .await?;
                id
            }
        };
        drop(creating);
        let todo = unsent(items);
        run_items(ctx, todo, self.options().parallel_uploads, |item| {
            let photos = &photos;
            let sequence_id = sequence_id.as_str();
            async move {
                let photo = photo_of(photos, &item)?;
                match upload_photo(client, ctx, sequence_id, &item, photo).await {
                    Ok(()) => Ok(()),
                    Err(e) => Err(item_error(ctx, &item, e).await),
                }
            }
        })
        .await?;
        let left = unsent(ctx.items().await?).len();
        if left > 0 {
            return Err(StepError::retry(format!(
                "{left} photos are not on KartaView yet"
            )));
        }
        Ok(StepOutcome::Advance)
    }

    async fn publish(
        &self,
        client: &KartaViewClient,
        cfg: &KartaViewConfig,
        ctx: &JobCtx,
    ) -> Result<StepOutcome, StepError> {
        let mut remote = Remote::<KartaViewRemote>::load(ctx).await?;
        let sequence_id = remote.sequence_id.clone().ok_or_else(|| {
            StepError::permanent("The KartaView sequence was never created: retry the upload")
        })?;
        let items = ctx.items().await?;
        if items
            .iter()
            .any(|i| i.state == ItemState::Sent && i.remote_id.is_none())
        {
            // Photos answered "duplicate" (sent before a lost reply) carry no id: read them back.
            let ids: HashMap<u32, String> = client
                .all_photos(&sequence_id)
                .await
                .map_err(provider_step_error)?
                .into_iter()
                .filter_map(|p| Some((p.sequence_index?, p.id)))
                .collect();
            for item in items
                .iter()
                .filter(|i| i.state == ItemState::Sent && i.remote_id.is_none())
            {
                if let Some(id) = u32::try_from(item.seq_index).ok().and_then(|i| ids.get(&i)) {
                    ctx.save_item(
                        item.photo_id,
                        ItemState::Sent,
                        None,
                        item.remote_offset,
                        Some(id),
                        None,
                    )
                    .await?;
                }
            }
        }
        if !remote.finished {
            ctx.check()?;
            client
                .finish_sequence(&sequence_id)
                .await
                .map_err(provider_step_error)?;
            remote.update(ctx, |r| r.finished = true).await?;
        }
        // The same template in both modes (the sandbox's points at the emulator's page).
        let url = cfg.sequence_page.fill(&[("sequence_id", &sequence_id)]);
        ctx.store
            .set_job_remote_url(ctx.job_id, &url, ctx.now())
            .await?;
        remote.published_at(ctx).await?;
        Ok(StepOutcome::Advance)
    }

    async fn poll(&self, client: &KartaViewClient, ctx: &JobCtx) -> Result<StepOutcome, StepError> {
        let mut remote = Remote::<KartaViewRemote>::load(ctx).await?;
        let sequence_id = remote.sequence_id.clone().ok_or_else(|| {
            StepError::permanent("The KartaView sequence was never created: retry the upload")
        })?;
        let seq = client
            .sequence(&sequence_id)
            .await
            .map_err(provider_step_error)?;
        let v1 = seq.status.as_deref().unwrap_or("");
        let processing = seq.processing_status.as_deref().unwrap_or("");
        if processing == "FINISHED" || v1 == "PROCESSING_FINISHED" {
            // Processed: does it show every photo sent (PROTOCOLS §3.3, `countActivePhotos`)?
            let sent = count_items(ctx, ItemState::Sent).await? as u64;
            if let Some(shown) = seq.count_active_photos.filter(|&n| n < sent) {
                remote
                    .note(
                        ctx,
                        &format!(
                            "Partly published: KartaView shows {shown} of the {sent} photos sent in sequence {sequence_id}."
                        ),
                    )
                    .await?;
            }
            return Ok(StepOutcome::Advance);
        }
        if processing == "FAILED" || v1 == "PROCESSING_FAILED" {
            let said = if v1.is_empty() { processing } else { v1 };
            return Err(StepError::permanent(format!(
                "KartaView could not process sequence {sequence_id} (it says {said}): its photos are not on the map. Retry asks KartaView again."
            )));
        }
        remote
            .wait_more(
                ctx,
                self.options(),
                self.options().poll_first_ms,
                "KartaView's processing of the sequence",
            )
            .await
    }
}

/// What is sent for one photo: its stored index (never recomputed), position, heading
/// (0–360), GPS accuracy, UTC shot date and, for 360° photos, the sphere projection.
pub(crate) fn new_photo(
    sequence_id: &str,
    photo: &PhotoRow,
    file_name: &str,
    source: UploadSource,
) -> Result<NewPhoto, StepError> {
    let index = u32::try_from(photo.seq_index)
        .map_err(|_| StepError::permanent(format!("index {} is out of range", photo.seq_index)))?;
    Ok(NewPhoto {
        sequence_id: sequence_id.to_string(),
        sequence_index: index,
        latitude: photo.lat,
        longitude: photo.lon,
        shot_at_ms: photo.captured_at,
        heading: photo
            .heading
            .filter(|h| h.is_finite())
            .map(|h| h.rem_euclid(360.0)),
        gps_accuracy: photo.gps_accuracy_m.filter(|a| a.is_finite() && *a >= 0.0),
        projection: if photo.is_360 {
            Projection::Sphere
        } else {
            Projection::Flat
        },
        projection_yaw: None,
        file_name: file_name.to_string(),
        source,
    })
}

/// The sequence created before the first photo: it starts at the first photo, named after
/// its camera model.
pub(crate) fn new_sequence(first: &PhotoRow) -> NewSequence {
    NewSequence {
        upload_source: UPLOAD_SOURCE.to_string(),
        first_latitude: first.lat,
        first_longitude: first.lon,
        platform_name: None,
        device_name: first.model.clone().filter(|m| !m.trim().is_empty()),
        track_txt: None,
    }
}

async fn upload_photo(
    client: &KartaViewClient,
    ctx: &JobCtx,
    sequence_id: &str,
    item: &JobItemRow,
    photo: &PhotoRow,
) -> Result<(), StepError> {
    let source = photo_source(item).await?;
    let len = i64::try_from(source.len()).unwrap_or(i64::MAX);
    let new = new_photo(sequence_id, photo, &item.file_name, source)?;
    let index = new.sequence_index;
    let _slot = ctx.transfer_slot().await?;
    ctx.check()?;
    let (outcome, _) = watched(ctx, None, client.upload_photo(&new)).await;
    let key = index.to_string();
    match outcome? {
        Ok(PhotoOutcome::Uploaded { photo_id }) => {
            ctx.save_item(
                item.photo_id,
                ItemState::Sent,
                Some(&key),
                len,
                Some(&photo_id),
                None,
            )
            .await
        }
        Ok(PhotoOutcome::Duplicate { .. }) => {
            ctx.save_item(item.photo_id, ItemState::Sent, Some(&key), len, None, None)
                .await
        }
        Err(e) => Err(provider_step_error(e)),
    }
}
