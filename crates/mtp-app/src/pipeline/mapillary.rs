//! Mapillary, as mapillary_tools 0.14 uploads (PROTOCOLS §2.2–2.4, §2.6).
//!
//! - `prepare`: the files are still there, unchanged.
//! - `upload`: per photo, in order, 4 at a time (small ones are prepared up to 4 ahead): the upload copy (the file with the `MAP*`
//!   JSON as EXIF `ImageDescription`, byte-for-byte deterministic; of a photo over 64 kB
//!   only the head up to that segment is in memory, the rest is read from disk as it is
//!   hashed and sent, see `upload_copy_blocking`), its key
//!   `mly_tools_<md5>.jpg` saved on the item *before* the first byte goes (state
//!   `partial`), then the server's offset and the rest of the bytes; the handle is saved
//!   with state `sent`. A photo cut mid-way resumes from the server's offset. The items
//!   are written by one writer that commits whatever has queued up in one transaction (a
//!   few hundred small photos a second each cost a commit otherwise): a photo's bytes wait
//!   for its key's commit; a handle is committed just after, and always before the stage
//!   ends. A handle lost to a crash in between costs one empty POST on the next run (the
//!   host answers a complete key's offset with its size and the same handle).
//! - `publish`: per chunk of ≤1000 photos (one Mapillary sequence each): the manifest's key
//!   is saved, then its handle, then the time `finish_upload` is called
//!   (`finish_sent_at[i]`), then its cluster id (`cluster_ids[i]`). After a call whose reply
//!   was never saved, the chunk's sequence is looked for (as in `poll`) before calling
//!   again: a second call would publish the photos twice.
//! - `publish` also refreshes upload handles older than a day before a manifest uses them
//!   (an empty POST per complete key; bytes are sent again only where the host lost them).
//!   A manifest refused once gets fresh handles; refused again, the chunk goes as one zip
//!   (file type `zip`, [`super::mapillary_zip`]): the bundle protocol is undocumented, the
//!   zip is the path mapillary_tools used before it (PROTOCOLS §2.2).
//! - `poll`: what Mapillary made of each chunk, from the activity feed of mapillary.com's
//!   own page (`getLatestActivity`, joined by cluster id; the user's token, then
//!   `MAPILLARY_WEB_CLIENT_TOKEN`): the four stages with their raw statuses and the time each
//!   changed, `error_code`, `item_count` (all stored typed with the job, see
//!   [`crate::mapillary_status`]). Once a chunk's map update is done, every sequence it
//!   became is found (the feed's image, then photos probed by position and time, tolerating
//!   Mapillary's moved positions, cut times, lost photos and split chunks), and Map the Paths
//!   Web's job is woken. Without the feed, the probes alone find it and the row says stage
//!   detail is unavailable. A failed stage fails the job (its retry is "Upload again": a new
//!   manifest and `finish_upload` for the failed chunks). Looks every 30 s for 5 minutes,
//!   then every 15 minutes; after 72 h the job is "Not confirmed by Mapillary after 3 days"
//!   (its retry is "Check again"), never "Done".
//! - `sync`: nothing.
//!
//! A refused token is refreshed once per stage (the emulator and the real service expire
//! tokens server-side; refreshes are single-flight per account, see `App::access_token`);
//! if the refresh is refused too, the job waits for a new sign-in. An upload refused with a
//! token that otherwise works (`/me` answers) is a missing permission: the job waits with
//! "This Mapillary connection may not upload photos", without refreshing.

use super::mapillary_zip::{ZipPhoto, zip_for_chunk, zip_path};
use super::{
    PipelineOptions, Remote, Shared, account, app_step_error, check_files, item_error, photo_of,
    photos_by_id, provider_step_error, run_items, unsent, watched,
};
use crate::App;
use crate::mapillary_status::{ChunkStatus, NOT_CONFIRMED, StageDetail, StageFailure};
use crate::remote::{MapillaryChunk, MapillaryRemote};
use futures::future::BoxFuture;
use mtp_core::Destination;
use mtp_core::engine::{Driver, ItemState, JobCtx, Stage, StepError, StepOutcome};
use mtp_core::photo::rewrite::{RewriteError, image_description_head, with_image_description};
use mtp_core::plan::PlannedPhoto;
use mtp_core::plan::description::{DescriptionOptions, image_description};
use mtp_core::store::{Account, ItemUpdate, JobItemRow, JobRow, PhotoRow};
use mtp_providers::MapillaryClient;
use mtp_providers::config::MapillaryConfig;
use mtp_providers::mapillary::activity::{
    ActivityNode, ActivityToken, STAGE_NAMES, StageState, explain_error_code, lookup_clusters,
    lookup_uploads_since,
};
use mtp_providers::mapillary::{
    BboxQuery, FileType, LonLat, MapillaryImage, Progress, new_manifest_key, session_key_for,
    session_key_for_source,
};
use mtp_providers::{FileStamp, UploadSource};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// What a job waits with when Mapillary refuses uploads from a token that can sign in.
pub(crate) const MAY_NOT_UPLOAD: &str =
    "This Mapillary connection may not upload photos: integrate again and allow uploads";

/// Half the side of the box searched around a chunk's first photo, in degrees (≈ 30 m).
const SEARCH_BOX_DEG: f64 = 0.0003;
/// How far a published image may be from where we said the photo was: Mapillary moves
/// positions by up to 5 m.
const SAME_PLACE_M: f64 = 6.0;
/// The capture times searched around a photo's: Mapillary cuts capture times to the second.
const SAME_TIME_MS: i64 = 1_500;

pub(crate) struct MapillaryDriver {
    shared: Arc<Shared>,
}

impl MapillaryDriver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        MapillaryDriver { shared }
    }

    fn options(&self) -> &PipelineOptions {
        &self.shared.options
    }
}

impl Driver for MapillaryDriver {
    fn run<'a>(
        &'a self,
        stage: Stage,
        _job: &'a JobRow,
        ctx: &'a JobCtx,
    ) -> BoxFuture<'a, Result<StepOutcome, StepError>> {
        Box::pin(async move {
            match stage {
                Stage::Prepare => check_files(ctx).await,
                Stage::Upload | Stage::Publish | Stage::Poll => self.signed_in(stage, ctx).await,
                Stage::Sync => Ok(StepOutcome::Advance),
                Stage::Done => Ok(StepOutcome::Finish),
            }
        })
    }
}

impl MapillaryDriver {
    /// Runs a stage that talks to Mapillary; a refused token is refreshed once and the
    /// stage runs again (it only does what is left).
    async fn signed_in(&self, stage: Stage, ctx: &JobCtx) -> Result<StepOutcome, StepError> {
        let app = self.shared.app()?;
        let cfg = app.services().mapillary.clone().ok_or_else(|| {
            StepError::permanent(
                "Mapillary is not configured: set MAPILLARY_APP_ID and MAPILLARY_SECRET, restart, then retry.",
            )
        })?;
        let mut account = account(&app, Destination::Mapillary).await?;
        let mut refreshed = false;
        loop {
            let client = MapillaryClient::new(
                app.services().http.clone(),
                &cfg,
                account.access_token.clone(),
            )
            .with_clock(app.clock());
            let result = match stage {
                Stage::Upload => self.upload(&client, ctx).await,
                Stage::Publish => self.publish(&app, &cfg, &client, &account, ctx).await,
                _ => self.poll(&app, &cfg, &client, &account, ctx).await,
            };
            match result {
                // A refusal to upload with a token that otherwise works (`/me` answers) is
                // a missing permission, not an expired token: refreshing would give a
                // token with the same permissions (PROTOCOLS §2.1).
                Err(StepError::Auth { message })
                    if matches!(stage, Stage::Upload | Stage::Publish)
                        && client.me().await.is_ok() =>
                {
                    tracing::info!(
                        job = ctx.job_id,
                        "Mapillary refused an upload with a working token: {message}"
                    );
                    return Err(StepError::Auth {
                        message: MAY_NOT_UPLOAD.to_string(),
                    });
                }
                Err(StepError::Auth { message }) if !refreshed => {
                    refreshed = true;
                    tracing::info!(
                        job = ctx.job_id,
                        "Mapillary refused the token; refreshing it"
                    );
                    account =
                        app.refresh_mapillary_now(&account).await.map_err(
                            |e| match app_step_error(e) {
                                StepError::Auth { message: why } => StepError::Auth {
                                    message: format!("{message} ({why})"),
                                },
                                other => other,
                            },
                        )?;
                }
                other => return other,
            }
        }
    }

    async fn upload(
        &self,
        client: &MapillaryClient,
        ctx: &JobCtx,
    ) -> Result<StepOutcome, StepError> {
        let photos = photos_by_id(ctx).await?;
        let todo = unsent(ctx.items().await?);
        let (saves, queue) = ItemSaves::new();
        // Twice as many photos under way as transfers (`sending`): the next ones are
        // read, rewritten and their keys committed while others are on the wire (small
        // photos spend more time on that than sending). Large photos stay at one per
        // transfer: they are streamed from disk, but hashing one reads it all, and
        // reading further ahead than the transfers would only compete for the disk.
        let parallel = self.options().parallel_uploads.max(1);
        let large = Semaphore::new(parallel);
        let sending = Semaphore::new(parallel);
        // Set when a photo must stop the stage (see `stops_the_others`): photos prepared
        // ahead then send nothing more.
        let halted = AtomicBool::new(false);
        let photos_sent = async {
            // Moved in, so the queue closes (and the writer ends) once every photo is done.
            let saves = saves;
            run_items(ctx, todo, 2 * parallel, |item| {
                let lanes = Lanes {
                    saves: &saves,
                    sending: &sending,
                    halted: &halted,
                };
                let (photos, large) = (&photos, &large);
                async move {
                    let _large = if item.file_size > AHEAD_MAX_BYTES {
                        Some(large.acquire().await.map_err(|_| StepError::Interrupted)?)
                    } else {
                        None
                    };
                    let photo = photo_of(photos, &item)?;
                    match self.upload_photo(client, ctx, lanes, &item, photo).await {
                        Ok(()) => Ok(()),
                        Err(e) => Err(item_error(ctx, &item, e).await),
                    }
                }
            })
            .await
        };
        let (sent, written) = tokio::join!(photos_sent, write_items(ctx, queue));
        sent?;
        written?;
        let left = unsent(ctx.items().await?).len();
        if left > 0 {
            return Err(StepError::retry(format!(
                "{left} photos are not on Mapillary yet"
            )));
        }
        // The handles' age: they are refreshed before a manifest uses them a day later.
        let mut remote = Remote::<MapillaryRemote>::load(ctx).await?;
        if remote.uploaded_at.is_none() {
            let now = ctx.now();
            remote.update(ctx, |r| r.uploaded_at = Some(now)).await?;
        }
        Ok(StepOutcome::Advance)
    }

    async fn upload_photo(
        &self,
        client: &MapillaryClient,
        ctx: &JobCtx,
        lanes: Lanes<'_>,
        item: &JobItemRow,
        photo: &PhotoRow,
    ) -> Result<(), StepError> {
        let (source, key) = upload_copy(item, photo).await?;
        if item.state != ItemState::Partial || item.remote_key.as_deref() != Some(key.as_str()) {
            // The key first: whatever reaches the server from now on can be resumed.
            lanes.saves.key_first(item, &key).await?;
        }
        let _lane = lanes
            .sending
            .acquire()
            .await
            .map_err(|_| StepError::Interrupted)?;
        let _slot = ctx.transfer_slot().await?;
        ctx.check()?;
        if lanes.halted.load(Ordering::SeqCst) {
            return Err(StepError::retry(
                "held back: another photo of this upload has to wait",
            ));
        }
        let position = Arc::new(AtomicU64::new(0));
        let progress: Progress = {
            let position = position.clone();
            Arc::new(move |at| position.store(at, Ordering::Relaxed))
        };
        let len = i64::try_from(source.len()).unwrap_or(i64::MAX);
        let (outcome, in_flight) = watched(
            ctx,
            Some(&position),
            client.upload_resumable(&key, source, Some(progress)),
        )
        .await;
        let result = match outcome {
            Ok(Ok(handle)) => lanes.saves.sent(item, &key, len, &handle),
            Ok(Err(e)) => Err(provider_step_error(e)),
            Err(e) => Err(e),
        };
        if let Err(e) = &result
            && stops_the_others(e)
        {
            // Before this photo's lane is free: the photos waiting for it must not send.
            lanes.halted.store(true, Ordering::SeqCst);
        }
        ctx.bytes_in_flight(-in_flight).await;
        result
    }

    async fn publish(
        &self,
        app: &App,
        cfg: &MapillaryConfig,
        client: &MapillaryClient,
        account: &Account,
        ctx: &JobCtx,
    ) -> Result<StepOutcome, StepError> {
        let mut remote = Remote::<MapillaryRemote>::load(ctx).await?;
        let items = ctx.items().await?;
        let photos = photos_by_id(ctx).await?;
        if let Some(missing) = items
            .iter()
            .find(|i| i.state != ItemState::Sent || i.remote_id.is_none())
        {
            return Err(StepError::permanent(format!(
                "{} has no Mapillary upload handle: retry the upload",
                missing.file_name
            )));
        }
        let chunks: Vec<&[JobItemRow]> = items
            .chunks(self.options().mapillary_chunk.max(1))
            .collect();
        if remote.chunks.len() < chunks.len() {
            let n = chunks.len();
            remote
                .update(ctx, |r| r.chunks.resize(n, MapillaryChunk::default()))
                .await?;
        }
        for (i, chunk) in chunks.iter().enumerate() {
            if remote.chunks[i].cluster_id.is_some() || remote.chunks[i].sequence_key.is_some() {
                continue;
            }
            ctx.check()?;
            let mut chunk: Vec<JobItemRow> = chunk.to_vec();
            // Handles expire server-side: older than a day, they are refreshed first (an
            // empty POST on each complete key; the bytes are sent again only where the host
            // no longer holds them), and the manifest gets a new key.
            let as_zip = remote.chunks[i].as_zip;
            let handles_at = remote.chunks[i].handles_at.or(remote.uploaded_at);
            if !as_zip && handles_at.is_some_and(|at| ctx.now() - at > HANDLE_REFRESH_MS) {
                self.refresh_handles(client, ctx, &mut chunk, &photos)
                    .await?;
                let (key, now) = (new_manifest_key(), ctx.now());
                remote
                    .update(ctx, |r| {
                        let c = &mut r.chunks[i];
                        c.manifest_key = Some(key);
                        c.manifest_handle = None;
                        c.handles_at = Some(now);
                    })
                    .await?;
            }
            let (handle, file_type) = if as_zip {
                let h = self
                    .zip_handle(app, client, ctx, &mut remote, i, &chunk, &photos)
                    .await?;
                (h, FileType::Zip)
            } else if let Some(h) = remote.chunks[i].manifest_handle.clone() {
                (h, FileType::BundleManifest)
            } else {
                let key = match remote.chunks[i].manifest_key.clone() {
                    Some(k) => k,
                    None => {
                        let k = new_manifest_key();
                        remote
                            .update(ctx, |r| r.chunks[i].manifest_key = Some(k.clone()))
                            .await?;
                        k
                    }
                };
                let handles: Vec<String> =
                    chunk.iter().filter_map(|it| it.remote_id.clone()).collect();
                let h = client
                    .upload_manifest(&key, &handles)
                    .await
                    .map_err(provider_step_error)?;
                remote
                    .update(ctx, |r| r.chunks[i].manifest_handle = Some(h.clone()))
                    .await?;
                (h, FileType::BundleManifest)
            };
            // Not idempotent on Mapillary's side: a call whose reply never got saved (the
            // app was killed mid-call, the reply was lost) may have made the cluster, and a
            // second call makes a second one, publishing the photos twice — which the user
            // can only undo by hand, photo by photo, on the website. So the call is marked
            // before it is made, and after a marked call this chunk is looked for first:
            // in the activity feed (a cluster appears there as soon as it is made), then
            // among the published photos; with neither able to tell, it is looked for
            // until `mapillary_unsure_finish_wait_ms` has passed, and only then finished
            // again. The cluster id is saved the instant it arrives.
            let others: HashSet<String> = remote
                .chunks
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .filter_map(|(_, c)| c.sequence_key.clone())
                .collect();
            if let Some(sent_at) = remote.chunks[i].finish_sent_at {
                let other_clusters: HashSet<String> = remote
                    .chunks
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .filter_map(|(_, c)| c.cluster_id.clone())
                    .collect();
                match made_by_a_lost_finish(
                    app,
                    cfg,
                    client,
                    account,
                    &chunk,
                    &photos,
                    sent_at,
                    &other_clusters,
                )
                .await?
                {
                    FeedSays::Made(cluster) => {
                        tracing::info!(
                            job = ctx.job_id,
                            chunk = i,
                            cluster = %cluster,
                            "an interrupted finish_upload went through (the activity feed lists it): not finishing again"
                        );
                        save_cluster(ctx, &mut remote, &chunks, i, cluster).await?;
                        continue;
                    }
                    FeedSays::NotMade => {}
                    FeedSays::Unavailable => {
                        if let Some(found) =
                            find_sequences(client, account, &chunk, &photos, None, &others).await?
                        {
                            tracing::info!(
                                job = ctx.job_id,
                                chunk = i,
                                sequences = ?found.sequences,
                                "an interrupted finish_upload went through: not finishing again"
                            );
                            let mut status = load_chunks(&remote, &chunks);
                            status[i].sequence_keys = found.sequences.clone();
                            status[i].published = Some(found.published);
                            status[i].cluster_id = None;
                            save_chunks(ctx, &mut remote, &status).await?;
                            let first = Found {
                                sequence: found.sequences[0].clone(),
                                image: found.image.clone(),
                            };
                            record_found(app, cfg, ctx, &mut remote, i, &first).await?;
                            continue;
                        }
                        let options = self.options();
                        let until = sent_at + options.mapillary_unsure_finish_wait_ms;
                        let now = ctx.now();
                        if now < until {
                            let after = options.mapillary_poll_slow_ms.min(until - now).max(0);
                            return Err(StepError::Retry {
                                after_ms: Some(after),
                                message: format!(
                                    "Mapillary may already have this upload: the reply to its last step was lost. \
                                     Looking for its photos on the map; if they do not show within {} of that step, \
                                     it is sent again",
                                    duration_words(options.mapillary_unsure_finish_wait_ms)
                                ),
                            });
                        }
                        tracing::info!(
                            job = ctx.job_id,
                            chunk = i,
                            "no sign of an interrupted finish_upload after the wait: finishing again"
                        );
                    }
                }
            }
            let now = ctx.now();
            remote
                .update(ctx, |r| r.chunks[i].finish_sent_at = Some(now))
                .await?;
            let cluster = match client.finish_upload(&handle, file_type, None).await {
                Ok(cluster) => cluster,
                // Refused: the upload host may no longer know the handles (expired early,
                // or a sandbox emulator started again empty), and how it says so is not
                // documented (PROTOCOLS §2.6 ⚠️). So, once: new handles, the photos sent
                // again only where the host lost their bytes, and a new manifest. Refused
                // again with fresh handles, the refusal is final. Not a 400 that refuses
                // the token or limits the rate (Mapillary says those with a 400 too):
                // those are what they say.
                Err(e)
                    if e.status() == Some(400)
                        && e.kind() == mtp_providers::ErrorKind::Permanent
                        && !as_zip
                        && !remote.chunks[i].renewed_after_refusal =>
                {
                    remote
                        .update(ctx, |r| {
                            let c = &mut r.chunks[i];
                            c.handles_at = Some(0);
                            c.manifest_handle = None;
                            c.finish_sent_at = None;
                            c.renewed_after_refusal = true;
                        })
                        .await?;
                    return Err(StepError::retry(format!(
                        "Mapillary refused this upload ({}): getting new handles for its photos and trying once more",
                        e.message()
                    )));
                }
                // Refused again with fresh handles: the bundle itself (an undocumented
                // protocol, PROTOCOLS §2.2) is what Mapillary no longer takes, or these
                // photos as a bundle. Once: the chunk goes as one zip, the path
                // mapillary_tools used before bundles. A zip refused too is final.
                Err(e)
                    if e.status() == Some(400)
                        && e.kind() == mtp_providers::ErrorKind::Permanent
                        && !as_zip =>
                {
                    tracing::warn!(
                        job = ctx.job_id,
                        chunk = i,
                        "Mapillary refused the bundle twice ({}): sending the photos as one zip",
                        e.message()
                    );
                    remote
                        .update(ctx, |r| {
                            let c = &mut r.chunks[i];
                            c.as_zip = true;
                            c.finish_sent_at = None;
                        })
                        .await?;
                    return Err(StepError::Retry {
                        after_ms: Some(0),
                        message: format!(
                            "Mapillary refused these photos as a bundle ({}): sending them again as one zip",
                            e.message()
                        ),
                    });
                }
                Err(e) => {
                    // Refused, or never sent: nothing was made, nothing to look for.
                    if e.certainly_did_nothing() {
                        remote
                            .update(ctx, |r| r.chunks[i].finish_sent_at = None)
                            .await?;
                    }
                    return Err(provider_step_error(e));
                }
            };
            save_cluster(ctx, &mut remote, &chunks, i, cluster).await?;
            if as_zip {
                let path = zip_path(app.data_dir(), ctx.job_id, i);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!("could not remove {}: {e}", path.display());
                }
            }
        }
        remote.published_at(ctx).await?;
        Ok(StepOutcome::Advance)
    }

    /// The handle of chunk `i` sent as one zip ([`super::mapillary_zip`]): the zip is
    /// written to the data folder (or the one written before is used, when it is still
    /// the one whose key was saved), its key saved before its first byte goes, its bytes
    /// sent from the server's offset, and its handle saved. A handle older than a day is
    /// renewed the same way (the server holds every byte: an empty POST).
    #[allow(clippy::too_many_arguments)]
    async fn zip_handle(
        &self,
        app: &App,
        client: &MapillaryClient,
        ctx: &JobCtx,
        remote: &mut Remote<MapillaryRemote>,
        i: usize,
        chunk: &[JobItemRow],
        photos: &HashMap<i64, PhotoRow>,
    ) -> Result<String, StepError> {
        let saved = &remote.chunks[i];
        if let (Some(handle), Some(at)) = (saved.zip_handle.clone(), saved.zip_at)
            && ctx.now() - at <= HANDLE_REFRESH_MS
        {
            return Ok(handle);
        }
        let entries = chunk
            .iter()
            .map(|item| {
                Ok(ZipPhoto {
                    path: item.path.clone(),
                    file_size: item.file_size,
                    description: upload_description(photo_of(photos, item)?),
                })
            })
            .collect::<Result<Vec<_>, StepError>>()?;
        let path = zip_path(app.data_dir(), ctx.job_id, i);
        let saved_key = saved.zip_key.clone();
        // Written off the async threads; a pause or cancel stops it before the next photo.
        let stop = Arc::new(AtomicBool::new(false));
        let writing = {
            let (path, stop) = (path.clone(), stop.clone());
            tokio::task::spawn_blocking(move || {
                zip_for_chunk(&path, saved_key.as_deref(), &entries, &stop)
            })
        };
        let key = tokio::select! {
            written = writing => written
                .map_err(|e| StepError::retry(format!("writing the zip stopped: {e}")))??,
            _ = ctx.interrupted() => {
                stop.store(true, Ordering::Relaxed);
                return Err(StepError::Interrupted);
            }
        };
        if remote.chunks[i].zip_key.as_deref() != Some(key.as_str()) {
            remote
                .update(ctx, |r| {
                    let c = &mut r.chunks[i];
                    c.zip_key = Some(key.clone());
                    c.zip_handle = None;
                })
                .await?;
        }
        let source =
            UploadSource::whole_file(path).map_err(|e| StepError::permanent(e.to_string()))?;
        let _slot = ctx.transfer_slot().await?;
        ctx.check()?;
        let (outcome, _) = watched(ctx, None, client.upload_resumable(&key, source, None)).await;
        let handle = outcome?.map_err(provider_step_error)?;
        let now = ctx.now();
        remote
            .update(ctx, |r| {
                let c = &mut r.chunks[i];
                c.zip_handle = Some(handle.clone());
                c.zip_at = Some(now);
            })
            .await?;
        Ok(handle)
    }

    /// Reads what Mapillary made of each chunk: the four stages from the activity feed
    /// (joined by the cluster id `finish_upload` returned), then, once a chunk's map update
    /// is done, every sequence it became. A failed stage fails the job (its retry is "Upload
    /// again"); no answer within the publish timeout fails it as not confirmed (its retry
    /// is "Check again"). Looks every 30 s for 5 minutes, then every 15 minutes: the next
    /// look is stored with the job, so the schedule survives a restart.
    async fn poll(
        &self,
        app: &App,
        cfg: &MapillaryConfig,
        client: &MapillaryClient,
        account: &Account,
        ctx: &JobCtx,
    ) -> Result<StepOutcome, StepError> {
        let mut remote = Remote::<MapillaryRemote>::load(ctx).await?;
        if remote.failure.is_some() {
            // "Upload again" (the retry of a failed stage): the failed chunks anew.
            self.upload_again(app, cfg, client, account, ctx, &mut remote)
                .await?;
            remote = Remote::load(ctx).await?;
        }
        let items = ctx.items().await?;
        let photos = photos_by_id(ctx).await?;
        let chunks: Vec<&[JobItemRow]> = items
            .chunks(self.options().mapillary_chunk.max(1))
            .collect();
        let now = ctx.now();
        let published_at = remote.published_at(ctx).await?;
        if remote.unconfirmed {
            // "Check again" after the timeout: another window from now.
            remote
                .update(ctx, |r| {
                    r.unconfirmed = false;
                    r.poll_since = Some(now);
                })
                .await?;
        }
        let since = remote.poll_since.unwrap_or(published_at);
        let mut status = load_chunks(&remote, &chunks);
        let mut detail: Option<StageDetail> = remote.detail;

        // The activity feed, for the chunks not on the map yet.
        let wanted: Vec<String> = status
            .iter()
            .filter(|c| !c.map_updated() && c.sequence_keys.is_empty())
            .filter_map(|c| c.cluster_id.clone())
            .collect();
        if !wanted.is_empty() {
            ctx.check()?;
            let (user_id, web) = feed_readers(app, cfg, client, account).await?;
            let not_before_s = remote
                .chunks
                .first()
                .and_then(|c| c.finish_sent_at)
                .unwrap_or(published_at)
                / 1000;
            let lookup = lookup_clusters(client, web.as_ref(), &user_id, &wanted, not_before_s)
                .await
                .map_err(provider_step_error)?;
            match lookup {
                Some(found) => {
                    detail = Some(match found.token {
                        ActivityToken::User => StageDetail::UserToken,
                        ActivityToken::WebClient => StageDetail::WebClientToken,
                    });
                    for chunk in status.iter_mut() {
                        if let Some(node) =
                            chunk.cluster_id.as_ref().and_then(|id| found.nodes.get(id))
                        {
                            apply_node(chunk, node, now);
                        }
                    }
                }
                None => detail = Some(StageDetail::Unavailable),
            }
            remote
                .update(ctx, |r| {
                    r.detail = detail;
                    r.status = status.clone();
                })
                .await?;
        }

        // A failed stage ends the job, with what Mapillary said.
        if let Some((i, stage)) = status
            .iter()
            .enumerate()
            .find_map(|(i, c)| c.failed_stage().map(|s| (i, s)))
        {
            let code = status[i].error_code.clone();
            let reason = failure_reason(i, chunks.len(), stage, code.as_deref());
            let failure = StageFailure {
                chunk: i,
                stage,
                error_code: code,
                reason: reason.clone(),
            };
            remote.update(ctx, |r| r.failure = Some(failure)).await?;
            return Err(StepError::permanent(reason));
        }

        // Every sequence a chunk became, once it is on the map.
        let unavailable =
            detail != Some(StageDetail::UserToken) && detail != Some(StageDetail::WebClientToken);
        for (i, chunk) in chunks.iter().enumerate() {
            if !status[i].sequence_keys.is_empty() || status[i].cluster_id.is_none() {
                continue;
            }
            if !unavailable && !status[i].map_updated() {
                continue;
            }
            ctx.check()?;
            let hint = status[i].image_id.clone();
            let others: HashSet<String> = status
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, c)| c.sequence_keys.iter().cloned())
                .collect();
            let Some(found) =
                find_sequences(client, account, chunk, &photos, hint.as_deref(), &others).await?
            else {
                continue;
            };
            if unavailable {
                // Found published: every stage is behind it, whatever we could not see.
                for stage in status[i].stages.iter_mut() {
                    if stage.state != StageState::Done {
                        stage.state = StageState::Done;
                        stage.changed_at = Some(now);
                    }
                }
            }
            status[i].sequence_keys = found.sequences.clone();
            status[i].published = Some(found.published);
            save_chunks(ctx, &mut remote, &status).await?;
            record_found(
                app,
                cfg,
                ctx,
                &mut remote,
                i,
                &Found {
                    sequence: found.sequences[0].clone(),
                    image: found.image.clone(),
                },
            )
            .await?;
        }
        if status.iter().all(|c| !c.sequence_keys.is_empty()) {
            let all: Vec<String> = status
                .iter()
                .flat_map(|c| c.sequence_keys.iter().cloned())
                .collect();
            remote
                .update(ctx, |r| {
                    r.sequence_keys_all = all;
                    r.next_check_at = None;
                })
                .await?;
            // Fewer photos on the map than were sent (Mapillary leaves a few out): said, so
            // that "done" does not claim them.
            let sent: usize = status.iter().map(|c| c.sent).sum();
            let published: Option<usize> = status.iter().map(|c| c.published).sum();
            if let Some(shown) = published.filter(|&p| p < sent) {
                remote
                    .note(
                        ctx,
                        &format!(
                            "Partly published: {shown} of the {sent} photos sent are on Mapillary's map; Mapillary left the others out."
                        ),
                    )
                    .await?;
            }
            // Map the Paths Web waits for the sequence keys: it can go on at once.
            ctx.store
                .wake_waiting_job(ctx.sequence_id, Destination::Mtpw, ctx.now())
                .await?;
            return Ok(StepOutcome::Advance);
        }
        if now - since >= self.options().publish_timeout_ms {
            remote
                .update(ctx, |r| {
                    r.unconfirmed = true;
                    r.next_check_at = None;
                })
                .await?;
            return Err(StepError::permanent(format!(
                "{NOT_CONFIRMED}: the photos are uploaded, but Mapillary has not shown them on the map. Check again later."
            )));
        }
        let options = self.options();
        let after = if now - published_at < options.mapillary_fast_window_ms {
            options.mapillary_poll_fast_ms
        } else {
            options.mapillary_poll_slow_ms
        };
        remote
            .update(ctx, |r| r.next_check_at = Some(now + after))
            .await?;
        Ok(StepOutcome::Again { after_ms: after })
    }

    /// Gets a current handle for every photo of a chunk: an empty POST on its complete key,
    /// or, where the host no longer holds the bytes, the photo sent again.
    async fn refresh_handles(
        &self,
        client: &MapillaryClient,
        ctx: &JobCtx,
        chunk: &mut [JobItemRow],
        photos: &HashMap<i64, PhotoRow>,
    ) -> Result<(), StepError> {
        use futures::StreamExt as _;
        let parallel = self.options().parallel_uploads.max(1);
        let mut refreshed: Vec<Result<(usize, String, bool), StepError>> = Vec::new();
        for (group_start, group) in chunk.chunks(parallel).enumerate() {
            let mut running = futures::stream::FuturesUnordered::new();
            for (k, item) in group.iter().enumerate() {
                let n = group_start * parallel + k;
                running.push(async move {
                    refresh_one(client, ctx, item, photos)
                        .await
                        .map(|(h, again)| (n, h, again))
                });
            }
            while let Some(r) = running.next().await {
                refreshed.push(r);
            }
        }
        let mut updates = Vec::new();
        let mut resent = 0;
        for r in refreshed {
            let (n, h, again) = r?;
            resent += usize::from(again);
            let item = &mut chunk[n];
            item.remote_id = Some(h.clone());
            updates.push(ItemUpdate {
                photo_id: item.photo_id,
                state: ItemState::Sent,
                remote_key: item.remote_key.clone(),
                remote_offset: item.remote_offset,
                remote_id: Some(h),
                error: None,
            });
        }
        ctx.save_items(&updates).await?;
        tracing::info!(
            job = ctx.job_id,
            photos = chunk.len(),
            resent,
            "Mapillary: refreshed upload handles older than a day"
        );
        Ok(())
    }

    /// "Upload again" after a failed stage: the failed chunks lose their cluster and are
    /// published anew (a new manifest and `finish_upload`; handles that aged are refreshed,
    /// and photos whose bytes the upload host no longer holds are sent again).
    async fn upload_again(
        &self,
        app: &App,
        cfg: &MapillaryConfig,
        client: &MapillaryClient,
        account: &Account,
        ctx: &JobCtx,
        remote: &mut Remote<MapillaryRemote>,
    ) -> Result<(), StepError> {
        let failure: Option<StageFailure> = remote.failure.clone();
        let items = ctx.items().await?;
        let chunks: Vec<&[JobItemRow]> = items
            .chunks(self.options().mapillary_chunk.max(1))
            .collect();
        let mut status = load_chunks(remote, &chunks);
        let failed: Vec<usize> = status
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                c.failed_stage().is_some() || failure.as_ref().is_some_and(|f| f.chunk == *i)
            })
            .map(|(i, _)| i)
            .collect();
        for &i in &failed {
            status[i] = ChunkStatus {
                sent: chunks[i].len(),
                ..ChunkStatus::default()
            };
        }
        remote
            .update(ctx, |r| {
                for &i in &failed {
                    if let Some(c) = r.chunks.get_mut(i) {
                        // Keeps when the handles were last refreshed (they still age),
                        // and that a chunk Mapillary took only as a zip goes as a zip again.
                        *c = MapillaryChunk {
                            handles_at: c.handles_at,
                            as_zip: c.as_zip,
                            ..MapillaryChunk::default()
                        };
                    }
                }
                r.status = status;
                r.failure = None;
            })
            .await?;
        tracing::info!(
            job = ctx.job_id,
            ?failed,
            "Mapillary: uploading failed chunks again"
        );
        self.publish(app, cfg, client, account, ctx).await?;
        Ok(())
    }
}

/// The job's chunks as stored, with what `publish` saved (cluster ids, photos sent).
fn load_chunks(remote: &MapillaryRemote, chunks: &[&[JobItemRow]]) -> Vec<ChunkStatus> {
    let mut stored = remote.status.clone();
    stored.resize(chunks.len(), ChunkStatus::default());
    for (i, chunk) in stored.iter_mut().enumerate() {
        let published = remote.chunks.get(i).cloned().unwrap_or_default();
        chunk.sent = chunks[i].len();
        chunk.cluster_id = published.cluster_id;
        if chunk.sequence_keys.is_empty()
            && let Some(key) = published.sequence_key
        {
            chunk.sequence_keys = vec![key];
        }
    }
    stored
}

async fn save_chunks(
    ctx: &JobCtx,
    remote: &mut Remote<MapillaryRemote>,
    status: &[ChunkStatus],
) -> Result<(), StepError> {
    remote.update(ctx, |r| r.status = status.to_vec()).await
}

/// Takes a feed node's stages into a chunk, noting when each changed.
fn apply_node(chunk: &mut ChunkStatus, node: &ActivityNode, now: i64) {
    for ((record, state), raw) in chunk
        .stages
        .iter_mut()
        .zip(node.stages())
        .zip(node.raw_stages())
    {
        if record.state != state || (record.changed_at.is_none() && state != StageState::Waiting) {
            record.changed_at = Some(now);
        }
        record.state = state;
        record.raw = raw.map(str::to_string);
    }
    if let Some(stage) = node.failed_stage() {
        // An error code on a stage that does not read as failed still fails it.
        if chunk.stages[stage].state != StageState::Failed {
            chunk.stages[stage].state = StageState::Failed;
            chunk.stages[stage].changed_at = Some(now);
        }
    }
    chunk.error_code = node.error().map(str::to_string);
    chunk.item_count = node.item_count;
    if node.image_id.is_some() {
        chunk.image_id = node.image_id.clone();
    }
}

/// Why the job failed, in words.
fn failure_reason(chunk: usize, chunks: usize, stage: usize, code: Option<&str>) -> String {
    let which = if chunks > 1 {
        format!(" (part {} of {chunks})", chunk + 1)
    } else {
        String::new()
    };
    let code = match code {
        Some(c) => match explain_error_code(c) {
            Some(words) => format!(" with error {c}: {words}"),
            None => format!(" with error {c}"),
        },
        None => String::new(),
    };
    format!(
        "Mapillary could not process this upload{which}: {} failed{code}. Upload again to send it anew.",
        STAGE_NAMES[stage]
    )
}

/// Whether a failed transfer holds back the photos of the stage that have not started
/// sending: the service asked to wait a while (a rate limit), refused the token, or the
/// user paused. A dropped connection or a server error does not: those already prepared
/// go on (as those already sending do), and the stage is retried after them.
fn stops_the_others(e: &StepError) -> bool {
    match e {
        StepError::Retry { after_ms, .. } => after_ms.is_some_and(|ms| ms > 0),
        StepError::Auth { .. } | StepError::Interrupted => true,
        StepError::Permanent { .. } | StepError::Internal { .. } => false,
    }
}

/// What the photos of one upload stage share: the item writer's queue, the stage's
/// transfers (`parallel_uploads` at once), and whether one of them stopped the stage.
#[derive(Clone, Copy)]
struct Lanes<'a> {
    saves: &'a ItemSaves,
    sending: &'a Semaphore,
    halted: &'a AtomicBool,
}

/// Item states on their way to the database (see [`write_items`]), with, for a key that
/// must be saved before the bytes go, the way to say it was.
type QueuedSave = (ItemUpdate, Option<oneshot::Sender<Result<(), StepError>>>);

/// What the photo tasks of one upload stage hand to its item writer.
struct ItemSaves(mpsc::UnboundedSender<QueuedSave>);

impl ItemSaves {
    fn new() -> (ItemSaves, mpsc::UnboundedReceiver<QueuedSave>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ItemSaves(tx), rx)
    }

    /// Saves the photo's key (state `partial`) and waits until it is committed.
    async fn key_first(&self, item: &JobItemRow, key: &str) -> Result<(), StepError> {
        let (done, committed) = oneshot::channel();
        let update = ItemUpdate {
            photo_id: item.photo_id,
            state: ItemState::Partial,
            remote_key: Some(key.to_string()),
            remote_offset: 0,
            remote_id: None,
            error: None,
        };
        self.0
            .send((update, Some(done)))
            .map_err(|_| StepError::Interrupted)?;
        committed.await.map_err(|_| StepError::Interrupted)?
    }

    /// Queues the photo's handle (state `sent`): committed with the next batch.
    fn sent(&self, item: &JobItemRow, key: &str, len: i64, handle: &str) -> Result<(), StepError> {
        let update = ItemUpdate {
            photo_id: item.photo_id,
            state: ItemState::Sent,
            remote_key: Some(key.to_string()),
            remote_offset: len,
            remote_id: Some(handle.to_string()),
            error: None,
        };
        self.0
            .send((update, None))
            .map_err(|_| StepError::Interrupted)
    }
}

/// The upload stage's item writer: commits whatever has queued up in one transaction, over
/// and over, until the queue closes. The first failure is returned at the end (and told to
/// the photos waiting for their keys).
async fn write_items(
    ctx: &JobCtx,
    mut queue: mpsc::UnboundedReceiver<QueuedSave>,
) -> Result<(), StepError> {
    let mut failure = None;
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = queue.try_recv() {
            batch.push(next);
        }
        let (updates, waiting): (Vec<ItemUpdate>, Vec<_>) = batch.into_iter().unzip();
        let result = ctx.save_items(&updates).await;
        if let Err(e) = &result {
            failure.get_or_insert_with(|| e.clone());
        }
        for done in waiting.into_iter().flatten() {
            let _ = done.send(result.clone());
        }
    }
    failure.map_or(Ok(()), Err)
}

/// The `MAP*` JSON written into a photo's EXIF `ImageDescription` before it is sent.
pub(crate) fn upload_description(photo: &PhotoRow) -> String {
    let planned = PlannedPhoto {
        photo: photo.to_meta(),
        original_captured_at_ms: photo.original_captured_at.unwrap_or(photo.captured_at),
        sequence_index: usize::try_from(photo.seq_index).unwrap_or_default(),
    };
    image_description(&planned, &DescriptionOptions::default())
}

/// The upload copy of a photo's bytes (`description` in its EXIF) and its upload key
/// `mly_tools_<md5 of the copy>.jpg`.
pub(crate) fn copy_with_key(raw: &[u8], description: &str) -> Result<(Vec<u8>, String), StepError> {
    let copy = with_image_description(raw, description).map_err(cannot_prepare)?;
    let key = session_key_for(&copy);
    Ok((copy, key))
}

fn cannot_prepare(e: RewriteError) -> StepError {
    StepError::permanent(format!("cannot prepare the upload copy: {e}"))
}

/// The bytes to send for the photo at `path` and their key. A small photo is read,
/// rewritten and hashed in memory. A larger one is never held whole: only its head up to
/// the rewritten EXIF segment is kept, and the rest is read from the file as it is hashed
/// here and again as it is sent, so memory does not grow with photo size. The copy is the
/// same bytes either way ([`with_image_description`]'s). The file is stamped before it is
/// read: if it changes before its bytes are all sent, the upload fails instead of sending
/// other bytes under this key.
pub(crate) fn upload_copy_blocking(
    path: &str,
    file_size: i64,
    description: &str,
) -> Result<(UploadSource, String), StepError> {
    if file_size <= IN_MEMORY_COPY_BYTES {
        let raw = super::read_photo_blocking(path, file_size)?;
        let (copy, key) = copy_with_key(&raw, description)?;
        return Ok((UploadSource::from(copy), key));
    }
    let source = upload_source_blocking(path, file_size, description)?;
    let key = session_key_for_source(&source).map_err(|e| StepError::permanent(e.to_string()))?;
    Ok((source, key))
}

/// The bytes of [`upload_copy_blocking`] without their key: a small photo in memory, a
/// larger one as its rewritten head and the rest of its file.
pub(crate) fn upload_source_blocking(
    path: &str,
    file_size: i64,
    description: &str,
) -> Result<UploadSource, StepError> {
    if file_size <= IN_MEMORY_COPY_BYTES {
        let raw = super::read_photo_blocking(path, file_size)?;
        let copy = with_image_description(&raw, description).map_err(cannot_prepare)?;
        return Ok(UploadSource::from(copy));
    }
    let unreadable = |e: std::io::Error| StepError::permanent(format!("cannot read {path}: {e}"));
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    super::check_size(meta.len(), file_size)?;
    let stamp = FileStamp::of(&meta);
    let head =
        image_description_head(&mut file, meta.len(), description).map_err(cannot_prepare)?;
    Ok(UploadSource::file(
        bytes::Bytes::from(head.head),
        PathBuf::from(path),
        head.tail_offset,
        stamp,
    ))
}

/// [`upload_copy_blocking`], off the async threads unless the photo is tiny.
async fn upload_copy(
    item: &JobItemRow,
    photo: &PhotoRow,
) -> Result<(UploadSource, String), StepError> {
    let description = upload_description(photo);
    let (path, size) = (item.path.clone(), item.file_size);
    // A small photo takes less time than handing it to another thread (a few µs of I/O
    // from the page cache and hashing).
    if size <= INLINE_COPY_BYTES {
        return upload_copy_blocking(&path, size, &description);
    }
    tokio::task::spawn_blocking(move || upload_copy_blocking(&path, size, &description))
        .await
        .map_err(|e| StepError::retry(format!("preparing the upload copy stopped: {e}")))?
}

/// A current handle for one photo (see `refresh_handles`), and whether its bytes went again.
async fn refresh_one(
    client: &MapillaryClient,
    ctx: &JobCtx,
    item: &JobItemRow,
    photos: &HashMap<i64, PhotoRow>,
) -> Result<(String, bool), StepError> {
    ctx.check()?;
    let key = item.remote_key.clone().ok_or_else(|| {
        StepError::permanent(format!(
            "{} has no Mapillary upload key: retry the upload",
            item.file_name
        ))
    })?;
    let size = u64::try_from(item.remote_offset).unwrap_or_default();
    if let Some(h) = client
        .refresh_handle(&key, size)
        .await
        .map_err(provider_step_error)?
    {
        return Ok((h, false));
    }
    let (data, copy_key) = upload_copy(item, photo_of(photos, item)?).await?;
    if copy_key != key {
        return Err(StepError::permanent(format!(
            "{} changed since it was uploaded: read the folder again",
            item.file_name
        )));
    }
    let h = client
        .upload_resumable(&key, data, None)
        .await
        .map_err(provider_step_error)?;
    Ok((h, true))
}

/// Upload handles older than this are refreshed before a manifest uses them (the service
/// expires unfinished uploads; mapillary_tools keeps handles 2 days, PROTOCOLS §2.6).
const HANDLE_REFRESH_MS: i64 = 24 * 3_600_000;

/// Photos up to this size are read, rewritten and hashed on the async thread.
const INLINE_COPY_BYTES: i64 = 64 * 1024;

/// Photos up to this size are sent from a copy in memory (at most a few of them per
/// transfer are held at once, see `upload`); larger ones stream from disk.
const IN_MEMORY_COPY_BYTES: i64 = INLINE_COPY_BYTES;

/// Photos up to this size may be prepared ahead of a free transfer (see `upload`).
const AHEAD_MAX_BYTES: i64 = 1024 * 1024;

/// Saves the sequence found for chunk `i` (and, for the first chunk, the job's sequence
/// key, first image and page).
async fn record_found(
    _app: &App,
    cfg: &MapillaryConfig,
    ctx: &JobCtx,
    remote: &mut Remote<MapillaryRemote>,
    i: usize,
    found: &Found,
) -> Result<(), StepError> {
    remote
        .update(ctx, |r| {
            if r.chunks.len() <= i {
                r.chunks.resize(i + 1, MapillaryChunk::default());
            }
            r.chunks[i].sequence_key = Some(found.sequence.clone());
            if i == 0 {
                r.sequence_key = Some(found.sequence.clone());
                r.first_image_id = Some(found.image.clone());
            }
        })
        .await?;
    if i == 0 {
        let url = cfg.image_page.fill(&[("image_id", &found.image)]);
        ctx.store
            .set_job_remote_url(ctx.job_id, &url, ctx.now())
            .await?;
    }
    Ok(())
}

/// Keeps the cluster a `finish_upload` made for chunk `i`: its stages are read from then on.
async fn save_cluster(
    ctx: &JobCtx,
    remote: &mut Remote<MapillaryRemote>,
    chunks: &[&[JobItemRow]],
    i: usize,
    cluster: String,
) -> Result<(), StepError> {
    remote
        .update(ctx, |r| {
            r.chunks[i].cluster_id = Some(cluster.clone());
            if i == 0 {
                r.cluster_id = Some(cluster.clone());
            }
        })
        .await?;
    let mut status = load_chunks(remote, chunks);
    status[i].stages = Default::default();
    save_chunks(ctx, remote, &status).await
}

/// "24 hours", "1 minute", "90 seconds".
fn duration_words(ms: i64) -> String {
    let s = ms / 1000;
    let (n, unit) = if s >= 3_600 && s % 3_600 == 0 {
        (s / 3_600, "hour")
    } else if s >= 60 && s % 60 == 0 {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    crate::prepare::plural(usize::try_from(n).unwrap_or(0), unit, &format!("{unit}s"))
}

/// What the activity feed is read with: the account's Mapillary user id (asked for when
/// the account does not have it), and a client on the web client token when one is set.
async fn feed_readers(
    app: &App,
    cfg: &MapillaryConfig,
    client: &MapillaryClient,
    account: &Account,
) -> Result<(String, Option<MapillaryClient>), StepError> {
    let user_id = match &account.user_id {
        Some(id) => id.clone(),
        None => client.me().await.map_err(provider_step_error)?.id,
    };
    let web = cfg.web_client_token.clone().map(|token| {
        MapillaryClient::new(app.services().http.clone(), cfg, token).with_clock(app.clock())
    });
    Ok((user_id, web))
}

/// What the activity feed says of a `finish_upload` whose reply was lost.
enum FeedSays {
    /// It made this cluster.
    Made(String),
    /// It made nothing: the feed lists no upload of these photos since.
    NotMade,
    /// The feed does not answer (no token it takes).
    Unavailable,
}

/// How far Mapillary's clock may be from ours, when reading when an upload was made.
const FEED_CLOCK_SLACK_S: i64 = 300;

/// Looks in the activity feed for the cluster a `finish_upload` sent at `sent_at` (ms) for
/// `chunk` may have made: an upload made since, of as many photos (or fewer), taken within
/// the chunk's first and last second, that no other chunk of the job holds.
#[allow(clippy::too_many_arguments)]
async fn made_by_a_lost_finish(
    app: &App,
    cfg: &MapillaryConfig,
    client: &MapillaryClient,
    account: &Account,
    chunk: &[JobItemRow],
    photos: &HashMap<i64, PhotoRow>,
    sent_at: i64,
    other_clusters: &HashSet<String>,
) -> Result<FeedSays, StepError> {
    let (user_id, web) = feed_readers(app, cfg, client, account).await?;
    let since_s = sent_at / 1000 - FEED_CLOCK_SLACK_S;
    let Some((uploads, _)) = lookup_uploads_since(client, web.as_ref(), &user_id, since_s)
        .await
        .map_err(provider_step_error)?
    else {
        return Ok(FeedSays::Unavailable);
    };
    // When the chunk's photos were taken, to the second (Mapillary cuts times there).
    let taken: Vec<i64> = chunk
        .iter()
        .filter_map(|item| photos.get(&item.photo_id))
        .map(|p| p.captured_at.div_euclid(1000))
        .collect();
    let span = taken.iter().min().zip(taken.iter().max());
    let made = uploads.into_iter().find(|node| {
        let count = node
            .item_count
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        !other_clusters.contains(&node.cluster_id)
            && node.kind.as_deref().is_none_or(|k| k == "UPLOAD")
            // As many photos, or fewer: Mapillary may not count one it drops.
            && count.is_none_or(|n| n > 0 && n <= chunk.len())
            && match (node.captured_at_seconds, span) {
                (Some(at), Some((first, last))) => (first - 1..=last + 1).contains(&at),
                _ => count == Some(chunk.len()),
            }
    });
    Ok(match made {
        Some(node) => FeedSays::Made(node.cluster_id),
        None => FeedSays::NotMade,
    })
}

/// A published sequence found by position and time.
struct Found {
    sequence: String,
    image: String,
}

/// Every sequence a chunk became, and how many of its photos were published.
struct FoundSequences {
    /// The first is the one holding the earliest photo found.
    sequences: Vec<String>,
    /// A published image of the first sequence.
    image: String,
    published: usize,
}

/// Finds what a chunk became, tolerating what Mapillary does to published photos
/// (positions moved by up to 5 m, capture times cut to the second, a few photos never
/// published, a chunk split into several sequences; PROTOCOLS §2.6). `hint` is an image the
/// activity feed named: its sequence is certainly this chunk's. Then photos are probed
/// (first, middle, last; every tenth when none of those is found) by position and time, and
/// every sequence they are in is kept — but those `others`, found for the job's other
/// chunks: the first photo of a chunk is a step from the last of the one before, whose
/// image a probe can meet before this chunk is on the map.
async fn find_sequences(
    client: &MapillaryClient,
    account: &Account,
    chunk: &[JobItemRow],
    photos: &HashMap<i64, PhotoRow>,
    hint: Option<&str>,
    others: &HashSet<String>,
) -> Result<Option<FoundSequences>, StepError> {
    let mut found: Vec<(String, String)> = Vec::new();
    if let Some(id) = hint {
        match client.image(id, &["id", "sequence"]).await {
            Ok(image) => {
                if let Some(sequence) = image.sequence_id {
                    found.push((sequence, image.id));
                }
            }
            // The feed's image can no longer be loaded (its owner hid or deleted it on the
            // website): the probes below find the chunk by its photos.
            Err(e) if e.kind() == mtp_providers::ErrorKind::Permanent => {
                tracing::info!("the activity feed's image {id} cannot be read ({e}): probing");
            }
            Err(e) => return Err(provider_step_error(e)),
        }
    }
    let n = chunk.len();
    if n == 0 {
        return Ok(None);
    }
    let mut probes: Vec<usize> = vec![0, n / 2, n - 1];
    probes.dedup();
    let mut next = 0;
    let mut widened = false;
    let mut missed: Vec<usize> = Vec::new();
    let mut second_pass = false;
    while next < probes.len() {
        let index = probes[next];
        next += 1;
        let photo = photo_of(photos, &chunk[index])?;
        // A chunk's first and last photos are a step from another chunk's: only an image
        // of their very second is theirs.
        let at_edge = index == 0 || index + 1 == n;
        match probe(client, account, photo, at_edge, others).await? {
            Some((sequence, image)) => {
                match found.iter().position(|(s, _)| *s == sequence) {
                    // The chunk's first photo: its image opens the chunk's page, and its
                    // sequence comes first (the feed's image is any of the chunk's).
                    Some(at) if index == 0 => {
                        found.remove(at);
                        found.insert(0, (sequence, image));
                    }
                    Some(_) => {}
                    None if index == 0 => found.insert(0, (sequence, image)),
                    None => found.push((sequence, image)),
                }
            }
            None => missed.push(index),
        }
        if next == probes.len() && found.is_empty() && !widened {
            widened = true;
            let more: Vec<usize> = (1..10)
                .map(|k| k * n / 10)
                .filter(|i| !probes.contains(i))
                .collect();
            probes.extend(more);
        } else if next == probes.len() && !found.is_empty() && !missed.is_empty() && !second_pass {
            // Published while we looked (the probes before the first hit may have come too
            // early): those that missed, once more.
            second_pass = true;
            probes.append(&mut missed);
        }
    }
    let Some((first_sequence, first_image)) = found.first().cloned() else {
        return Ok(None);
    };
    let mut published = 0;
    for (sequence, _) in &found {
        published += client
            .image_ids(sequence)
            .await
            .map_err(provider_step_error)?
            .len();
    }
    let mut sequences = vec![first_sequence];
    sequences.extend(found.into_iter().skip(1).map(|(s, _)| s));
    Ok(Some(FoundSequences {
        sequences,
        image: first_image,
        published: published.min(n),
    }))
}

/// The published image of `photo` (by this account, in none of the `others` sequences):
/// within [`SAME_PLACE_M`] of where it was taken and [`SAME_TIME_MS`] of its capture time;
/// `at_edge`, taken in the same whole second. Mapillary may cut capture times to the second
/// (the emulator does; whether it rounds instead is not known): the image of the photo is
/// then in the photo's second, the next or previous photo's a second away — within
/// [`SAME_TIME_MS`], and in the same sequence unless the photo is at a chunk's edge. Of
/// several, the nearest in time, then in place; of several as near (the same photos
/// uploaded twice), the newest.
async fn probe(
    client: &MapillaryClient,
    account: &Account,
    photo: &PhotoRow,
    at_edge: bool,
    others: &HashSet<String>,
) -> Result<Option<(String, String)>, StepError> {
    let query = BboxQuery {
        min_lon: photo.lon - SEARCH_BOX_DEG,
        min_lat: photo.lat - SEARCH_BOX_DEG,
        max_lon: photo.lon + SEARCH_BOX_DEG,
        max_lat: photo.lat + SEARCH_BOX_DEG,
        start_captured_at_ms: Some(photo.captured_at - SAME_TIME_MS),
        end_captured_at_ms: Some(photo.captured_at + SAME_TIME_MS),
        sequence_id: None,
        limit: 100,
    };
    let images = client
        .images_in_bbox(&query)
        .await
        .map_err(provider_step_error)?;
    let place = LonLat {
        lon: photo.lon,
        lat: photo.lat,
    };
    Ok(best_image(
        place,
        photo.captured_at,
        images,
        account.user_id.as_deref(),
        at_edge,
        others,
    ))
}

/// Of the `images` found around a photo taken at `place` and `captured_at` (ms), the one
/// that is its published image (see [`probe`]): `(sequence, image)`. Images of another
/// account than `me` (when both are known) and of the `others` sequences are not.
fn best_image(
    place: LonLat,
    captured_at: i64,
    images: Vec<MapillaryImage>,
    me: Option<&str>,
    at_edge: bool,
    others: &HashSet<String>,
) -> Option<(String, String)> {
    let second = captured_at.div_euclid(1000);
    let mut candidates: Vec<(i64, f64, String, String)> = images
        .into_iter()
        .filter(|img| match (&img.creator, me) {
            (Some(creator), Some(me)) => creator.id == me,
            _ => true,
        })
        .filter_map(|img| {
            let at = img.geometry.or(img.computed_geometry)?;
            let dist = metres_between(place.lat, place.lon, at.lat, at.lon);
            let t = img.captured_at_ms?;
            let dt = (t - captured_at).abs();
            let when = if at_edge {
                t.div_euclid(1000) == second
            } else {
                dt <= SAME_TIME_MS
            };
            let sequence = img.sequence_id.clone()?;
            (dist <= SAME_PLACE_M && when && !others.contains(&sequence))
                .then_some((dt, dist, sequence, img.id))
        })
        .collect();
    // Nearest in time, then in place; then newer images (larger ids): the latest upload of
    // the same photos.
    candidates.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.total_cmp(&b.1))
            .then(b.3.len().cmp(&a.3.len()))
            .then(b.3.cmp(&a.3))
    });
    candidates.into_iter().next().map(|(_, _, s, i)| (s, i))
}

/// Distance in metres (equirectangular: exact enough over a few metres).
fn metres_between(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let x = (lon2 - lon1).to_radians() * ((lat1 + lat2) / 2.0).to_radians().cos();
    let y = (lat2 - lat1).to_radians();
    6_371_000.0 * (x * x + y * y).sqrt()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mtp_core::photo::fixture::{FixturePhoto, fixture_bytes, jpeg_with_raw_exif};

    /// A walk's photos a second apart, each published with its time cut to the second and
    /// moved a little: each photo's own image is picked, never its neighbour's, and at a
    /// chunk's edge the neighbour's image alone (its own not on the map yet) is not taken
    /// for it.
    #[test]
    fn a_photo_is_matched_to_its_own_image_not_the_next_ones() {
        use mtp_providers::mapillary::MapillaryUser;
        // Where and when a photo was taken.
        let photo = |captured_at: i64, lat: f64| (LonLat { lon: 6.25, lat }, captured_at);
        let image = |id: &str, sequence: &str, captured_at_ms: i64, lat: f64| MapillaryImage {
            id: id.into(),
            captured_at_ms: Some(captured_at_ms),
            compass_angle: None,
            geometry: Some(LonLat { lon: 6.25, lat }),
            computed_geometry: None,
            altitude: None,
            sequence_id: Some(sequence.into()),
            creator: Some(MapillaryUser {
                id: "me".into(),
                username: None,
            }),
            is_pano: None,
            thumb_256_url: None,
        };
        // 3 m a second; the photos at .700 s, their images cut to the whole second and
        // moved 2 m.
        let (t0, lat0, step) = (1_714_550_400_700, 46.5, 3.0 / 111_195.0);
        let last_of_chunk_1 = photo(t0, lat0);
        let first_of_chunk_2 = photo(t0 + 1_000, lat0 + step);
        let theirs = image("img-9", "seq-A", t0 - 700, lat0 + 2.0 / 111_195.0);
        let ours = image("img-10", "seq-B", t0 + 300, lat0 + step + 2.0 / 111_195.0);
        let none = HashSet::new();
        let pick = |(place, at): (LonLat, i64),
                    images: &[&MapillaryImage],
                    me: &str,
                    edge: bool,
                    others: &HashSet<String>| {
            let images = images.iter().map(|i| (*i).clone()).collect();
            best_image(place, at, images, Some(me), edge, others)
        };
        // At a chunk's edge, as the account "me", no sequence excluded.
        let at_edge = |p, images: &[&MapillaryImage]| pick(p, images, "me", true, &none);
        let found = |s: &str, i: &str| Some((s.to_string(), i.to_string()));
        assert_eq!(
            at_edge(first_of_chunk_2, &[&theirs, &ours]),
            found("seq-B", "img-10")
        );
        assert_eq!(
            at_edge(last_of_chunk_1, &[&theirs, &ours]),
            found("seq-A", "img-9")
        );
        // Only the neighbour's image is on the map yet: not this photo's.
        assert_eq!(at_edge(first_of_chunk_2, &[&theirs]), None);
        assert_eq!(at_edge(last_of_chunk_1, &[&ours]), None);
        // Published with the exact time: found the same way.
        let exact = image("img-10", "seq-B", t0 + 1_000, lat0 + step);
        assert_eq!(
            at_edge(first_of_chunk_2, &[&theirs, &exact]),
            found("seq-B", "img-10")
        );
        // Inside a chunk, a neighbour's image (the same sequence) a second away will do: the
        // sequence is found even if Mapillary rounds times instead of cutting them.
        assert_eq!(
            pick(last_of_chunk_1, &[&ours], "me", false, &none),
            found("seq-B", "img-10")
        );
        // A sequence found for another chunk, or another account's image, is never it.
        let others: HashSet<String> = ["seq-B".to_string()].into();
        assert_eq!(pick(first_of_chunk_2, &[&ours], "me", true, &others), None);
        assert_eq!(
            pick(first_of_chunk_2, &[&ours], "someone-else", true, &none),
            None
        );
    }

    #[test]
    fn a_large_photo_streams_the_same_bytes_and_key_as_a_copy_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let at = FixturePhoto::at(46.5, 6.25, 1_714_550_400_123);
        let cases = [
            ("exif.jpg", fixture_bytes(&at)),
            ("bare.jpg", jpeg_with_raw_exif(None, None).unwrap()),
            (
                "pano.jpg",
                fixture_bytes(&FixturePhoto {
                    is_360: true,
                    ..at.clone()
                }),
            ),
        ];
        let desc = r#"{"MAPLatitude":46.5,"MAPLongitude":6.25}"#;
        for (name, jpeg) in cases {
            for extra in [100, 500_000] {
                let mut original = jpeg.clone();
                original.extend((0..extra).map(|i: u32| (i.wrapping_mul(40_503) >> 8) as u8));
                let path = dir.path().join(name);
                std::fs::write(&path, &original).unwrap();
                let size = i64::try_from(original.len()).unwrap();
                let (source, key) =
                    upload_copy_blocking(path.to_str().unwrap(), size, desc).unwrap();
                let (copy, copy_key) = copy_with_key(&original, desc).unwrap();
                assert_eq!(source.is_streamed(), size > IN_MEMORY_COPY_BYTES, "{name}");
                assert_eq!(key, copy_key, "{name}");
                let mut sent = Vec::new();
                source
                    .read_all_blocking(|b| sent.extend_from_slice(b))
                    .unwrap();
                assert_eq!(sent, copy, "{name}");
            }
        }
    }

    #[test]
    fn a_photo_that_changed_since_the_folder_was_read_is_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jpg");
        let mut original = fixture_bytes(&FixturePhoto::at(1.0, 2.0, 1_700_000_000_000));
        original.resize(200_000, 7);
        std::fs::write(&path, &original).unwrap();
        let e = upload_copy_blocking(path.to_str().unwrap(), 199_000, "{}").unwrap_err();
        assert!(
            e.to_string().contains("changed since the folder was read"),
            "{e}"
        );
    }
}
