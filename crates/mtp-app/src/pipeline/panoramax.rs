//! Panoramax / GeoVisio (PROTOCOLS §4).
//!
//! - `prepare`: the files are still there, unchanged.
//! - `upload`: the upload set is created once and its id (and instance) saved at once:
//!   title = the sequence's name, `estimated_nb_files` = its photo count (so the instance
//!   completes it by itself), `sort_method=time-asc`, and `no_split` + `no_deduplication`:
//!   our plan already split and deduplicated the photos (with Mapillary's rules, which are
//!   at least as strict as GeoVisio's defaults), so the collection is exactly the sequence
//!   the user previewed — panoramax-cli also turns server dedup off after its own filter.
//!   Then the files, 4 at a time, with the planned position and capture time (and a
//!   computed heading) as overrides, since the plan may have corrected the EXIF. A 409
//!   (byte-identical file already there) is success; a 400 means the instance refused the
//!   photo and tracked it as rejected: the item is `rejected` with the reason, the others go on.
//! - `publish`: `complete` unless the set already completed itself.
//! - `poll`: the upload set until `ready`; its collection ids are saved (the job's page is
//!   the collection) and files the instance rejected while dispatching are marked.
//!   Gives up gracefully after 72 h.
//! - `sync`: nothing.

use crate::remote::PanoramaxRemote;

use super::{
    PipelineOptions, Remote, Shared, app_step_error, check_files, count_items, item_error,
    photo_of, photo_source, photos_by_id, provider_step_error, remote_ids_of, run_items, unsent,
    watched,
};
use crate::App;
use futures::future::BoxFuture;
use mtp_core::Destination;
use mtp_core::engine::{Driver, ItemState, JobCtx, Stage, StepError, StepOutcome};
use mtp_core::secret::Secret;
use mtp_core::store::{JobItemRow, JobRow, PhotoRow};
use mtp_providers::panoramax::{AddFileOutcome, NewFile, NewUploadSet, SortMethod, UploadSetFile};
use mtp_providers::{ErrorKind, PanoramaxClient, UploadSource};
use std::sync::Arc;
use url::Url;

pub(crate) struct PanoramaxDriver {
    shared: Arc<Shared>,
    /// Held by one job at a time from looking for a lost create's upload set, or asking for
    /// a new one, until its id is saved (two sequences of one name could otherwise take
    /// the same set).
    creates: tokio::sync::Mutex<()>,
}

impl PanoramaxDriver {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        PanoramaxDriver {
            shared,
            creates: tokio::sync::Mutex::new(()),
        }
    }

    fn options(&self) -> &PipelineOptions {
        &self.shared.options
    }
}

impl Driver for PanoramaxDriver {
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
                    let mut remote = Remote::<PanoramaxRemote>::load(ctx).await?;
                    let instance = Instance::of(&app, &remote).await?;
                    match stage {
                        Stage::Upload => self.upload(&instance, &mut remote, ctx).await,
                        Stage::Publish => self.publish(&instance.client, &mut remote, ctx).await,
                        _ => self.poll(&instance, &mut remote, ctx).await,
                    }
                }
                Stage::Sync => Ok(StepOutcome::Advance),
                Stage::Done => Ok(StepOutcome::Finish),
            }
        })
    }
}

/// The instance this job uses (the one its upload set lives on, once it has one) and a
/// client for it with the account's token (or, if none is connected, the settings' token).
struct Instance {
    url: String,
    client: PanoramaxClient,
}

impl Instance {
    async fn of(app: &App, remote: &Remote<PanoramaxRemote>) -> Result<Instance, StepError> {
        let (url, client) = instance_client(app, remote.instance_url.clone()).await?;
        Ok(Instance { url, client })
    }
}

/// The instance a sequence lives on (`saved`: the one its upload set was made on, if any)
/// and a client for it with the account's token (or, if none is connected, the settings'
/// token).
pub(crate) async fn instance_client(
    app: &App,
    saved: Option<String>,
) -> Result<(String, PanoramaxClient), StepError> {
    let s = app.services();
    let (account_instance, token): (Option<String>, Option<Secret<String>>) =
        match app.access_token(Destination::Panoramax).await {
            Ok(acc) => (acc.instance_url.clone(), Some(acc.access_token)),
            Err(e) if e.code == "not_connected" && s.panoramax_token.is_some() => {
                (None, s.panoramax_token.clone())
            }
            Err(e) => return Err(app_step_error(e)),
        };
    // In sandbox mode the emulator is the only instance there is; an address saved by an
    // earlier start (on another port) means that one.
    let sandbox_instance = s
        .sandbox
        .then(|| s.panoramax.as_ref().map(|p| p.instance_url.to_string()))
        .flatten();
    let url = sandbox_instance
        .or(saved)
        .or(account_instance)
        .or_else(|| s.panoramax.as_ref().map(|p| p.instance_url.to_string()))
        .ok_or_else(|| {
            StepError::permanent(
                "No Panoramax instance is set: connect Panoramax on the Integrations screen, then retry.",
            )
        })?;
    let url = url.trim_end_matches('/').to_string();
    let parsed = Url::parse(&url)
        .map_err(|e| StepError::permanent(format!("{url:?} is not a Panoramax address: {e}")))?;
    let client = PanoramaxClient::with_url(s.http.clone(), parsed, token).with_clock(app.clock());
    Ok((url, client))
}

/// The empty upload set a lost create left on the instance, if any: one of the account's
/// sets with this sequence's title, not completed, holding no file, that no job of ours
/// knows.
async fn find_lost_upload_set(
    client: &PanoramaxClient,
    ctx: &JobCtx,
) -> Result<Option<String>, StepError> {
    let Some(seq) = ctx.store.sequence(ctx.sequence_id).await? else {
        return Ok(None);
    };
    let known = remote_ids_of(ctx, |r: PanoramaxRemote| r.upload_set_id).await?;
    let sets = client.my_upload_sets().await.map_err(provider_step_error)?;
    let found = sets.into_iter().rev().find(|s| {
        s.title.as_deref() == Some(seq.name.as_str())
            && !s.completed
            && s.nb_items.unwrap_or(0) == 0
            && !known.contains(&s.id)
    });
    if let Some(s) = &found {
        tracing::info!(
            job = ctx.job_id,
            upload_set = %s.id,
            "Panoramax: using the empty upload set a lost create left behind"
        );
    }
    Ok(found.map(|s| s.id))
}

impl PanoramaxDriver {
    async fn upload(
        &self,
        instance: &Instance,
        remote: &mut Remote<PanoramaxRemote>,
        ctx: &JobCtx,
    ) -> Result<StepOutcome, StepError> {
        let client = &instance.client;
        let photos = photos_by_id(ctx).await?;
        let items = ctx.items().await?;
        if let Some(id) = remote.upload_set_id.clone() {
            match client.upload_set(&id).await {
                Err(e) if e.status() == Some(404) => {
                    ctx.store
                        .restart_job_remote(
                            ctx.job_id,
                            &format!("Panoramax no longer has upload set {id}: sending the photos again in a new one"),
                            ctx.now(),
                        )
                        .await?;
                    return Err(StepError::retry(format!(
                        "Panoramax no longer has upload set {id}: starting again"
                    )));
                }
                Err(e) => return Err(provider_step_error(e)),
                Ok(_) => {}
            }
        }
        let creating = match remote.upload_set_id {
            None => Some(self.creates.lock().await),
            Some(_) => None,
        };
        if remote.upload_set_id.is_none() && remote.common.create_started_at.is_some() {
            // A create was sent before and its reply never stored (a crash or a kill in
            // between): the instance may hold that upload set, empty. Use it rather than
            // leave it behind and make another.
            if let Some(id) = find_lost_upload_set(client, ctx).await? {
                remote
                    .update(ctx, |r| {
                        r.upload_set_id = Some(id);
                        r.instance_url = Some(instance.url.clone());
                        r.common.adopted_after_crash = true;
                    })
                    .await?;
            }
        }
        let set_id = match remote.upload_set_id.clone() {
            Some(id) => id,
            None => {
                let seq = ctx
                    .store
                    .sequence(ctx.sequence_id)
                    .await?
                    .ok_or_else(|| StepError::permanent("This sequence no longer exists."))?;
                ctx.check()?;
                let now = ctx.now();
                remote
                    .update(ctx, |r| r.common.create_started_at = Some(now))
                    .await?;
                let set = client
                    .create_upload_set(&new_upload_set(&seq.name, items.len()))
                    .await
                    .map_err(provider_step_error)?;
                remote
                    .update(ctx, |r| {
                        r.upload_set_id = Some(set.id.clone());
                        r.instance_url = Some(instance.url.clone());
                    })
                    .await?;
                set.id
            }
        };
        drop(creating);
        let todo = unsent(items);
        run_items(ctx, todo, self.options().parallel_uploads, |item| {
            let photos = &photos;
            let set_id = set_id.as_str();
            async move {
                let photo = photo_of(photos, &item)?;
                match add_file(client, ctx, set_id, &item, photo).await {
                    Ok(()) => Ok(()),
                    Err(e) => Err(item_error(ctx, &item, e).await),
                }
            }
        })
        .await?;
        let items = ctx.items().await?;
        let left = unsent(items.clone()).len();
        if left > 0 {
            return Err(StepError::retry(format!(
                "{left} photos are not on Panoramax yet"
            )));
        }
        if items.iter().all(|i| i.state == ItemState::Rejected) {
            let why = items
                .iter()
                .find_map(|i| i.error.clone())
                .unwrap_or_default();
            return Err(StepError::permanent(format!(
                "Panoramax refused every photo of this sequence: {why}"
            )));
        }
        Ok(StepOutcome::Advance)
    }

    async fn publish(
        &self,
        client: &PanoramaxClient,
        remote: &mut Remote<PanoramaxRemote>,
        ctx: &JobCtx,
    ) -> Result<StepOutcome, StepError> {
        let set_id = set_id(remote)?;
        if !remote.completed {
            let set = client
                .upload_set(&set_id)
                .await
                .map_err(provider_step_error)?;
            if !set.completed {
                ctx.check()?;
                client
                    .complete_upload_set(&set_id)
                    .await
                    .map_err(provider_step_error)?;
            }
            remote.update(ctx, |r| r.completed = true).await?;
        }
        remote.published_at(ctx).await?;
        Ok(StepOutcome::Advance)
    }

    async fn poll(
        &self,
        instance: &Instance,
        remote: &mut Remote<PanoramaxRemote>,
        ctx: &JobCtx,
    ) -> Result<StepOutcome, StepError> {
        let client = &instance.client;
        let set_id = set_id(remote)?;
        let set = client
            .upload_set(&set_id)
            .await
            .map_err(provider_step_error)?;
        if !set.ready {
            return remote
                .wait_more(
                    ctx,
                    self.options(),
                    self.options().panoramax_poll_first_ms,
                    "Panoramax's processing of the upload set",
                )
                .await;
        }
        let files = mark_rejected(client, &set_id, ctx).await?;
        // Pictures whose preparation failed (retried, then `broken`): the set is ready
        // without them, and none is on the map. GeoVisio puts them in the sequence all the
        // same, where only their owner sees them (PROTOCOLS §4.1).
        let status = set.items_status.unwrap_or_default();
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let broken = count(status.broken);
        if broken > 0 && status.prepared == 0 {
            remote
                .note(
                    ctx,
                    &format!(
                        "Not on the map: Panoramax could not process any photo of this upload ({} broken after its retries).",
                        photos(broken)
                    ),
                )
                .await?;
            return Ok(StepOutcome::Finish);
        }
        if set.associated_collections.is_empty() {
            // Bytes sent before in another upload set are answered 409 and tracked here
            // as `file_duplicate`: they are on the instance, in that earlier sequence.
            let all_known = !files.is_empty()
                && files.iter().all(|f| {
                    f.rejected
                        .as_ref()
                        .is_some_and(|r| r.reason == "file_duplicate")
                });
            let note = if all_known {
                "Already on Panoramax: every photo was there from an earlier upload, so no new sequence was made."
            } else {
                "Panoramax made no sequence of this upload: it refused every photo (see each photo's reason)."
            };
            remote.note(ctx, note).await?;
            if all_known {
                // Where they are: the picture the instance said has the first photo's bytes.
                let first = ctx
                    .store
                    .job_items(ctx.job_id)
                    .await?
                    .into_iter()
                    .find_map(|i| i.remote_id);
                if let Some(pic) = first {
                    // The picture's page on the instance (its sequence is not known here).
                    let url = self
                        .shared
                        .app()?
                        .services()
                        .panoramax_page(&instance.url, &pic, "");
                    ctx.store
                        .set_job_remote_url(ctx.job_id, &url, ctx.now())
                        .await?;
                }
            }
            return Ok(StepOutcome::Finish);
        }
        let first = &set.associated_collections[0];
        remote
            .update(ctx, |r| {
                r.collection_ids = set.associated_collections.clone();
                r.collection_id = Some(first.clone());
            })
            .await?;
        if let Some(note) = partly_published(ctx, &files, broken).await? {
            remote.note(ctx, &note).await?;
        }
        // The instance's web page, on the sequence's first picture (not the API's JSON).
        if let Some(picture) = first_picture(client, first, ctx).await? {
            let url = self
                .shared
                .app()?
                .services()
                .panoramax_page(&instance.url, &picture, first);
            ctx.store
                .set_job_remote_url(ctx.job_id, &url, ctx.now())
                .await?;
        }
        Ok(StepOutcome::Advance)
    }
}

/// How many of a collection's first pictures are read to find one that is not broken.
const FIRST_PICTURES: u32 = 100;

/// The first picture of a collection that is on the map, as the instance orders it (its
/// owner's list also holds the broken ones); failing that, the first photo this job sent
/// that the instance kept.
async fn first_picture(
    client: &PanoramaxClient,
    collection_id: &str,
    ctx: &JobCtx,
) -> Result<Option<String>, StepError> {
    match client.collection_items(collection_id, FIRST_PICTURES).await {
        Ok(items) => {
            if let Some(item) = items.into_iter().find(|i| !i.is_broken()) {
                return Ok(Some(item.id));
            }
        }
        Err(e) => tracing::warn!("reading the first picture of {collection_id}: {e}"),
    }
    let items = ctx.store.job_items(ctx.job_id).await?;
    Ok(items
        .into_iter()
        .filter(|i| i.state == ItemState::Sent)
        .find_map(|i| i.remote_id))
}

/// What the row says when Panoramax made a sequence without some of the photos: those it
/// refused (each photo says why), those it could not process, and those it already held from
/// an earlier upload (in that upload's sequence). `None` when it kept them all.
async fn partly_published(
    ctx: &JobCtx,
    files: &[UploadSetFile],
    broken: usize,
) -> Result<Option<String>, StepError> {
    let refused = count_items(ctx, ItemState::Rejected).await?;
    let already = files
        .iter()
        .filter(|f| {
            f.rejected
                .as_ref()
                .is_some_and(|r| r.reason == "file_duplicate")
        })
        .count();
    let mut lost = Vec::new();
    if refused > 0 {
        lost.push(format!(
            "refused {} (see each photo's reason)",
            photos(refused)
        ));
    }
    if broken > 0 {
        lost.push(format!(
            "could not process {} (broken after its retries)",
            photos(broken)
        ));
    }
    let mut note = Vec::new();
    if !lost.is_empty() {
        note.push(format!(
            "Partly published: Panoramax {}; the other photos are on the map.",
            lost.join(" and ")
        ));
    }
    if already > 0 {
        note.push(format!(
            "{} {} already on Panoramax from an earlier upload, in its sequence.",
            photos(already),
            if already == 1 { "was" } else { "were" }
        ));
    }
    Ok((!note.is_empty()).then(|| note.join(" ")))
}

/// "1 photo", "3 photos".
fn photos(n: usize) -> String {
    crate::prepare::plural(n, "photo", "photos")
}

fn set_id(remote: &PanoramaxRemote) -> Result<String, StepError> {
    remote.upload_set_id.clone().ok_or_else(|| {
        StepError::permanent("The Panoramax upload set was never created: retry the upload")
    })
}

/// What is sent for one photo: its stored position and capture time as overrides, and the
/// heading written into its EXIF when the photo's own EXIF did not give it.
pub(crate) fn new_file(file_name: &str, source: UploadSource, photo: &PhotoRow) -> NewFile {
    let mut exif_overrides = Vec::new();
    if let Some(h) = photo.heading.filter(|h| h.is_finite())
        && photo.heading_source.as_deref() != Some("gps_img_direction")
    {
        exif_overrides.push(("GPSInfo.GPSImgDirection".to_string(), exif_direction(h)));
        exif_overrides.push(("GPSInfo.GPSImgDirectionRef".to_string(), "T".to_string()));
    }
    NewFile {
        file_name: file_name.to_string(),
        source,
        is_blurred: false,
        override_position: Some((photo.lat, photo.lon)),
        override_capture_time_ms: Some(photo.captured_at),
        exif_overrides,
        xmp_overrides: Vec::new(),
        picture_id: None,
    }
}

/// The upload set a sequence's photos go into: kept in capture order, neither split nor
/// deduplicated by the instance (the app's plan already did both).
pub(crate) fn new_upload_set(title: &str, files: usize) -> NewUploadSet {
    NewUploadSet {
        title: title.to_string(),
        estimated_nb_files: u32::try_from(files).ok(),
        sort_method: Some(SortMethod::TimeAsc),
        no_split: Some(true),
        no_deduplication: Some(true),
        ..NewUploadSet::default()
    }
}

async fn add_file(
    client: &PanoramaxClient,
    ctx: &JobCtx,
    set_id: &str,
    item: &JobItemRow,
    photo: &PhotoRow,
) -> Result<(), StepError> {
    let source = photo_source(item).await?;
    let len = i64::try_from(source.len()).unwrap_or(i64::MAX);
    let file = new_file(&item.file_name, source, photo);
    let _slot = ctx.transfer_slot().await?;
    ctx.check()?;
    let (outcome, _) = watched(ctx, None, client.add_file(set_id, &file)).await;
    match outcome? {
        Ok(AddFileOutcome::Added(added)) => {
            ctx.save_item(
                item.photo_id,
                ItemState::Sent,
                Some(&item.file_name),
                len,
                added.picture_id.as_deref(),
                None,
            )
            .await
        }
        Ok(AddFileOutcome::AlreadyThere {
            existing_item_id, ..
        }) => {
            ctx.save_item(
                item.photo_id,
                ItemState::Sent,
                Some(&item.file_name),
                len,
                existing_item_id.as_deref(),
                None,
            )
            .await
        }
        // The instance refused this photo and tracked it as rejected (it counts towards the
        // set's expected files): the others go on.
        Err(e) if e.kind() == ErrorKind::Permanent && e.status() == Some(400) => {
            ctx.save_item(
                item.photo_id,
                ItemState::Rejected,
                Some(&item.file_name),
                len,
                None,
                Some(&e.to_string()),
            )
            .await
        }
        Err(e) => Err(provider_step_error(e)),
    }
}

/// A heading as the EXIF rational GeoVisio's writer (exiv2) takes: `"4512/100"` for 45.12°.
/// exiv2 reads a decimal such as `"45.12"` (or even `"45"`) as an empty value, and GeoVisio
/// then silently keeps no direction at all.
fn exif_direction(heading: f64) -> String {
    let hundredths = (heading.rem_euclid(360.0) * 100.0).round() as i64 % 36_000;
    format!("{hundredths}/100")
}

/// Marks the photos the instance rejected while dispatching (e.g. capture duplicates), and
/// returns the set's files.
async fn mark_rejected(
    client: &PanoramaxClient,
    set_id: &str,
    ctx: &JobCtx,
) -> Result<Vec<UploadSetFile>, StepError> {
    let files = client
        .upload_set_files(set_id)
        .await
        .map_err(provider_step_error)?;
    let items = ctx.items().await?;
    for f in &files {
        let (Some(rejected), Some(picture)) = (&f.rejected, &f.picture_id) else {
            continue;
        };
        if let Some(item) = items.iter().find(|i| {
            i.state == ItemState::Sent && i.remote_id.as_deref() == Some(picture.as_str())
        }) {
            let why = match &rejected.message {
                Some(m) => format!("{}: {m}", rejected.reason),
                None => rejected.reason.clone(),
            };
            ctx.save_item(
                item.photo_id,
                ItemState::Rejected,
                None,
                item.remote_offset,
                None,
                Some(&format!("Panoramax rejected it ({why})")),
            )
            .await?;
        }
    }
    Ok(files)
}
