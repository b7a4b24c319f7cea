//! What the pipeline stories share: an app in sandbox mode on a throwaway data dir, accounts
//! connected through the real sign-in pages, photo folders, and quick retries.

#![allow(dead_code)]

use mtp_app::prepare::{PrepareOptions, SaveImport};
use mtp_app::{App, Settings};
use mtp_core::Destination;
use mtp_core::engine::{EngineConfig, RetryPolicy};
use mtp_core::engine::{ItemState, JobStatus};
use mtp_core::photo::fixture::{TrackSpec, write_track_folder};
use mtp_core::store::{JobRow, SequenceMeta, Store};
use mtp_providers::kartaview::{KartaViewClient, NewSequence, UPLOAD_SOURCE};
use mtp_sandbox::Sandbox;
use mtp_tests::JobRemote;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Long enough for any story on a slow shared machine; a story that hangs fails here.
pub const SETTLE: Duration = Duration::from_secs(120);

/// An app in sandbox mode with its own data directory and emulators.
pub struct Story {
    pub app: App,
    pub dir: tempfile::TempDir,
}

impl Story {
    /// Starts the app: sandbox mode, emulators that "process" in 200 ms.
    pub async fn start() -> Story {
        Story::start_with(&[]).await
    }

    /// Starts the app for stories about something else than Map the Paths Web's Mapillary
    /// link: its emulator is the "fixed" server (today's cannot check Mapillary accounts,
    /// see `mtpw_link.rs`) and the user has allowed sending the Mapillary token.
    pub async fn start_with(extra: &[(&str, &str)]) -> Story {
        let mut env: Vec<(&str, &str)> = vec![("MTP_SANDBOX_MTPW_IMPORT", "fixed")];
        env.extend_from_slice(extra);
        let story = Story::start_strict(&env, None).await;
        story.app.set_mtpw_mapillary_consent(true).await.unwrap();
        story
    }

    /// Starts the app with the emulators as strict as the real services (Map the Paths
    /// Web's import answers as today's server does) and nothing asked of the user yet; on
    /// `clock` when given.
    pub async fn start_strict(
        extra: &[(&str, &str)],
        clock: Option<mtp_core::clock::SharedClock>,
    ) -> Story {
        let dir = tempfile::tempdir().unwrap();
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("MTP_DATA_DIR".into(), dir.path().display().to_string());
        env.insert("MTP_SANDBOX".into(), "1".into());
        env.insert("MTP_SANDBOX_PROCESSING_MS".into(), "200".into());
        // A program that exists and opens nothing: the tests play the browser.
        env.insert("MTP_OPENER".into(), "true".into());
        for (k, v) in extra {
            env.insert((*k).into(), (*v).into());
        }
        let settings = Settings::from_lookup(|k| env.get(k).cloned());
        let app = match clock {
            Some(clock) => App::start_with_clock(settings, clock).await,
            None => App::start(settings).await,
        }
        .unwrap();
        Story { app, dir }
    }

    pub fn sandbox(&self) -> &Sandbox {
        self.app.sandbox().unwrap()
    }

    /// A KartaView client on the connected account, for what the tests do by hand on the
    /// service (as its website, a lost reply or another process would have).
    pub async fn kartaview_client(&self) -> KartaViewClient {
        let services = self.app.services();
        let kv = self
            .app
            .store()
            .account(Destination::Kartaview)
            .await
            .unwrap()
            .unwrap();
        KartaViewClient::new(
            services.http.clone(),
            services.kartaview.as_ref().unwrap(),
            kv.access_token.clone(),
        )
    }

    /// What a KartaView create did on the service, done by hand (as a run whose reply was
    /// lost, or another process, would have): an empty sequence from this app, on the
    /// connected account. Returns its id.
    pub async fn kartaview_create(&self) -> String {
        self.kartaview_create_by(UPLOAD_SOURCE).await
    }

    /// An empty sequence made on the connected KartaView account by the uploader named
    /// `upload_source` (this app's, or another's). Returns its id.
    pub async fn kartaview_create_by(&self, upload_source: &str) -> String {
        self.kartaview_client()
            .await
            .create_sequence(&NewSequence {
                upload_source: upload_source.to_string(),
                first_latitude: 48.0,
                first_longitude: 2.0,
                platform_name: None,
                device_name: None,
                track_txt: None,
            })
            .await
            .unwrap()
    }

    /// The Map the Paths Web emulator's address, without a trailing slash.
    pub fn mtpw_base(&self) -> String {
        self.sandbox()
            .urls()
            .mtpw_base
            .as_str()
            .trim_end_matches('/')
            .to_string()
    }

    /// Integrates every service in `services` the way a user does.
    pub async fn connect(&self, services: &[Destination]) {
        for &s in services {
            connect(&self.app, s).await;
        }
    }

    /// Writes a track of `count` photos into a new folder and returns it.
    pub fn photos(&self, name: &str, count: usize, spec: &TrackSpec) -> PathBuf {
        let folder = self.dir.path().join(name);
        write_track_folder(&folder, count, spec).unwrap();
        folder
    }

    /// Reads `folder`, saves it as a sequence named `name` and queues `destinations`.
    pub async fn import(
        &self,
        folder: &Path,
        name: &str,
        destinations: &[Destination],
    ) -> Vec<i64> {
        let preview = self
            .app
            .prepare_folder(folder, PrepareOptions::default())
            .await
            .unwrap();
        let saved = self
            .app
            .save_import(SaveImport {
                sequences: Vec::new(),
                token: preview.token,
                meta: SequenceMeta {
                    name: name.into(),
                    description: "A walk along the river".into(),
                    transport_type: Some("Walk".into()),
                    tags: vec!["river".into(), "test".into()],
                },
                destinations: destinations.to_vec(),
            })
            .await
            .unwrap();
        assert!(saved.skipped.is_empty(), "skipped: {:?}", saved.skipped);
        saved.sequence_ids
    }

    /// Starts the pipeline with quick retries.
    pub fn start_engine(&self) {
        self.app.start_engine_with(fast_engine()).unwrap();
    }

    pub async fn settle(&self, ids: &[i64]) -> Vec<JobRow> {
        self.app.wait_for_jobs(ids, SETTLE).await.unwrap()
    }

    pub async fn job(&self, sequence_id: i64, d: Destination) -> JobRow {
        self.app
            .store()
            .jobs_of_sequence(sequence_id)
            .await
            .unwrap()
            .into_iter()
            .find(|j| j.destination == d)
            .unwrap()
    }
}

/// Retries in milliseconds rather than seconds, so fault stories run quickly.
pub fn fast_engine() -> EngineConfig {
    EngineConfig {
        retry: RetryPolicy {
            base_ms: 5,
            cap_ms: 200,
        },
        idle_poll_ms: 50,
        progress_interval_ms: 20,
        ..EngineConfig::default()
    }
}

/// A short walk of distinct photos; `seed` keeps folders of one story apart in time.
pub fn walk(seed: i64) -> TrackSpec {
    TrackSpec {
        start_time_ms: 1_714_550_400_000 + seed * 3_600_000,
        start_lat: 48.8566 + seed as f64 * 0.01,
        ..TrackSpec::default()
    }
}

/// Integrates `service`: Panoramax with the instance's token, the others through their real
/// sign-in page (authorize → approve as the first sandbox user → the deep link back).
pub async fn connect(app: &App, service: Destination) {
    if service == Destination::Panoramax {
        app.connect_panoramax(None, None).await.unwrap();
        return;
    }
    let started = app.start_integration(service).await.unwrap();
    let link = approve(&started.authorize_url).await;
    let outcome = app.handle_deep_link(&link).await.unwrap();
    assert!(
        outcome.accepted,
        "{service} sign-in refused: {}",
        outcome.message
    );
}

/// Plays the browser on a sandbox consent page and returns the app's deep link.
pub async fn approve(authorize_url: &str) -> String {
    mtp_app::sandbox_browser::approve(authorize_url)
        .await
        .expect("approving the sandbox sign-in page")
}

/// Bytes of request bodies the upload host kept, per key: every POST that was answered
/// 200 or cut mid-body (resumed ones too: by an injected reset, or by a client that went
/// away, which the host answers 400 into the void). POSTs refused up front by an injected
/// status (503, 412, 429…) are left out: their bytes were thrown away, as a real server's
/// would be.
pub fn mapillary_bytes_received(sandbox: &Sandbox) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for r in sandbox.requests() {
        let kept = match r.status {
            None | Some(200) => true,
            // An injected status is answered before reading, then the body is drained
            // whole: a 400 with a body that ended early is the host's own "interrupted".
            Some(400) => !r.body_complete,
            Some(_) => false,
        };
        if r.endpoint.as_deref() == Some("mapillary.upload") && r.method == "POST" && kept {
            let key = r.path.rsplit('/').next().unwrap_or_default().to_string();
            *out.entry(key).or_insert(0) += r.body_len;
        }
    }
    out
}

/// Makes every photo of `folder` about `extra` bytes bigger (data after the JPEG's end,
/// which readers ignore), so that transfers take several chunks and can be cut mid-way.
pub fn pad_photos(folder: &Path, extra: usize) {
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        let mut data = std::fs::read(&path).unwrap();
        let mut x: u64 = data.len() as u64 ^ 0x9E37_79B9_7F4A_7C15;
        data.extend((0..extra).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        }));
        std::fs::write(&path, data).unwrap();
    }
}

/// Waits until the job of `d` for `sequence_id` has sent at least `photos` photos.
pub async fn wait_for_photos(story: &Story, sequence_id: i64, d: Destination, photos: i64) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let job = story.job(sequence_id, d).await;
        if job.photos_done >= photos {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{d} never sent {photos} photos: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asserts that the Mapillary job of `sequence_id` put each photo on the upload host
/// exactly once (one complete file per key, named after its bytes), that no more than
/// `resent_at_most` bytes of any file were sent twice, and that it made one cluster per
/// chunk. Returns the number of photos that needed more than one POST.
pub async fn assert_mapillary_once(story: &Story, sequence_id: i64, resent_at_most: u64) -> usize {
    let job = story.job(sequence_id, Destination::Mapillary).await;
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    let items = story.app.store().job_items(job.id).await.unwrap();
    let state = story.sandbox().state();
    let files = state.mapillary_files();
    let received = mapillary_bytes_received(story.sandbox());
    let mut resumed = 0;
    for item in &items {
        assert_eq!(item.state, ItemState::Sent, "{item:?}");
        let key = item.remote_key.clone().unwrap();
        let copies: Vec<_> = files.iter().filter(|f| f.key == key).collect();
        assert_eq!(copies.len(), 1, "{key}");
        let f = copies[0];
        assert!(f.key_matches_md5(), "{key} holds other bytes");
        assert_eq!(f.handle.as_deref(), item.remote_id.as_deref());
        let got = received[&key];
        assert!(
            got >= f.len && got - f.len <= resent_at_most,
            "{key}: {got} bytes received for a {}-byte file",
            f.len
        );
        if f.posts > 1 {
            resumed += 1;
        }
    }
    let photo_keys: HashMap<&str, ()> = items
        .iter()
        .map(|i| (i.remote_key.as_deref().unwrap_or_default(), ()))
        .collect();
    let stray: Vec<_> = files
        .iter()
        .filter(|f| f.key.starts_with("mly_tools_") && !photo_keys.contains_key(f.key.as_str()))
        .map(|f| f.key.clone())
        .collect();
    assert!(stray.is_empty(), "uploads no photo owns: {stray:?}");
    let clusters = state.mapillary_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:?}");
    assert_eq!(clusters[0].image_count, items.len());
    assert_eq!(
        job.mly().sequence_key.as_deref(),
        Some(clusters[0].sequence_ids[0].as_str())
    );
    resumed
}

/// Asserts that KartaView holds one sequence with each index once.
pub async fn assert_kartaview_once(story: &Story, sequence_id: i64, count: u32) {
    let job = story.job(sequence_id, Destination::Kartaview).await;
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    let state = story.sandbox().state();
    assert_eq!(state.kartaview_sequences().len(), 1);
    let seq = state
        .kartaview_sequence(&job.kv().sequence_id.unwrap())
        .unwrap();
    let mut indexes: Vec<u32> = seq.photos.iter().map(|p| p.sequence_index).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..count).collect::<Vec<_>>());
    assert_ne!(seq.status, "NEW");
}

/// Asserts that Panoramax holds one ready upload set with each file once.
pub async fn assert_panoramax_once(story: &Story, sequence_id: i64, count: usize) {
    let job = story.job(sequence_id, Destination::Panoramax).await;
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    let state = story.sandbox().state();
    assert_eq!(state.panoramax_upload_sets().len(), 1);
    let set = state
        .panoramax_upload_set(&job.px().upload_set_id.unwrap())
        .unwrap();
    let mut names: Vec<&str> = set.files.iter().map(|f| f.file_name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!((set.files.len(), names.len()), (count, count));
    assert!(set.ready && set.files.iter().all(|f| f.rejected.is_none()));
    assert_eq!(set.collection_ids.len(), 1);
}

/// The job of `d` for `sequence_id` in `store` (a child `mtp`'s database, say).
pub async fn job_in(store: &Store, sequence_id: i64, d: Destination) -> JobRow {
    store
        .jobs_of_sequence(sequence_id)
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.destination == d)
        .unwrap()
}
