//! `kill -9`, over and over: the real `mtp` binary uploads one folder to every destination
//! and is killed at random moments (seeded) until a run finishes on its own. The emulators
//! live in this test process, so they outlive every `mtp` and remember everything it sent;
//! `mtp` runs in live mode, pointed at them, with accounts seeded in its database.
//!
//! Afterwards every photo must be on every service exactly once, no byte sent twice beyond
//! what was in flight at a kill, one sequence (cluster, upload set) per service, and every
//! job done with its remote ids in the database. One more run must find nothing to do.
//!
//! A kill between a service creating a sequence and `mtp` saving its id leaves that
//! sequence on the service, empty. `mtp` records each create before sending it; the next
//! run looks for what the lost reply named (KartaView's `my-list`, the Panoramax account's
//! upload sets) and uses it, so the test allows no second KartaView sequence or Panoramax
//! upload set, and no second Mapillary cluster (`mtp` finds the cluster in the activity
//! feed, which this test lets the user's token read, before finishing again; without the
//! feed it would look for the published photos for a day first, see `pipeline_mapillary`).
//! Map the Paths Web lists nothing: there a leftover is accepted only if
//! its create was answered to a run that was killed, and the row must say a copy may exist.
//!
//! `MTP_KILL_SEED=<n>` replays another schedule; `MTP_BIN=<path>` tests that binary instead
//! of building `mtp` (with the profile this test was built with).

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use md5::{Digest as _, Md5};
use mtp_core::Destination;
use mtp_core::engine::{ItemState, JobStatus, Stage};
use mtp_core::secret::Secret;
use mtp_core::store::{Account, JobRow, Store};
use mtp_sandbox::{RecordedRequest, Sandbox, SandboxConfig, SandboxUrls, Service, USERS};
use mtp_tests::JobRemote;
use pipeline_support::{job_in, pad_photos, walk};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Photos in the folder, and bytes added to each (so a photo takes long enough to be cut
/// mid-body, and Mapillary's resumable upload has something to resume). Every
/// `BIG_EVERY`th photo gets `BIG_PADDING` more: more than the socket buffers between `mtp`
/// and the emulators hold (what a killed process had written to its socket still arrives),
/// so a kill during its transfer leaves a partial body.
const PHOTOS: usize = 120;
const PADDING: usize = 300_000;
const BIG_EVERY: usize = 30;
const BIG_PADDING: usize = 9_700_000;
/// Every photo request waits this long, then its body reaches the handler at most
/// `PHOTO_RATE` bytes/s (a slow link): kills land mid-body (the client had not sent the
/// rest) and between a complete body and its reply (a lost reply).
const PHOTO_LATENCY: Duration = Duration::from_millis(10);
const PHOTO_RATE: u64 = 16 << 20;
/// Kills the test needs at least, aims at (spread over the whole upload), and makes at
/// most (then a run is left alone).
const MIN_KILLS: usize = 20;
const TARGET_KILLS: usize = 36;
const MAX_KILLS: usize = 80;
/// Kill delays, before the adaptation below scales them: uniform in this range.
const DELAY_MS: (f64, f64) = (50.0, 600.0);
/// The longest any single run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Every destination, as `mtp upload --to` takes them.
const TO: &str = "mapillary,kartaview,panoramax,mtpw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_again_and_again_every_photo_lands_once_everywhere() {
    let mtp = mtp_binary();
    // Processing is instant: in live mode `mtp` first looks at processing states 30 s after
    // publishing, and Map the Paths imports a sequence only once Mapillary shows it.
    // Map the Paths Web is the "fixed" server (today's cannot link Mapillary sequences:
    // see mtpw_link.rs), and the user has allowed sending the Mapillary token to it.
    let sandbox = Sandbox::start(SandboxConfig {
        processing_delay: Duration::ZERO,
        recv_buffer: Some(64 << 10),
        mtpw_import: mtp_sandbox::MtpwImportMode::Fixed,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    sandbox.state().mapillary_graphql_refuses_user_tokens(false);
    for endpoint in ["mapillary.upload", "kartaview.photo", "panoramax.files"] {
        sandbox.faults().latency(endpoint, PHOTO_LATENCY);
        sandbox.faults().throttle(endpoint, PHOTO_RATE);
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let folder = dir.path().join("walk");
    mtp_core::photo::fixture::write_track_folder(&folder, PHOTOS, &walk(7)).unwrap();
    pad_photos(&folder, PADDING);
    pad_some(&folder, BIG_EVERY, BIG_PADDING);
    let env = child_env(&data, &sandbox.urls());
    seed_accounts(&data, &sandbox).await;
    let sequence_id = prepare(&mtp, &env, &folder, dir.path()).await;

    let seed = std::env::var("MTP_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x6b11_1ed5_u64);
    let mut rng = SplitMix(seed);
    let started = Instant::now();
    let mut kills: Vec<Kill> = Vec::new();
    let mut scale = 1.0_f64;
    let mut run = 0;
    loop {
        run += 1;
        let before = progress(&data, sequence_id).await;
        let delay = (kills.len() < MAX_KILLS).then(|| {
            let (lo, hi) = DELAY_MS;
            Duration::from_millis(((lo + (hi - lo) * rng.unit()) * scale).max(20.0) as u64)
        });
        let first_request = sandbox.requests().len();
        let out = dir.path().join(format!("run-{run}"));
        let mut child = upload(&mtp, &env, sequence_id, &out, dir.path());
        let t0 = Instant::now();
        let ended = match delay {
            Some(d) => tokio::select! {
                s = child.wait() => Some(s.unwrap()),
                () = tokio::time::sleep(d) => None,
            },
            None => match tokio::time::timeout(RUN_TIMEOUT, child.wait()).await {
                Ok(s) => Some(s.unwrap()),
                Err(_) => panic!(
                    "run {run} did not finish in {RUN_TIMEOUT:?}\n{}",
                    outputs(&out)
                ),
            },
        };
        if let Some(status) = ended {
            assert!(
                status.success(),
                "run {run} ended on its own with {status}\n{}",
                outputs(&out)
            );
            println!(
                "run {run} finished on its own after {} ms",
                t0.elapsed().as_millis()
            );
            break;
        }
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let after = progress(&data, sequence_id).await;
        let kill = Kill {
            after: t0.elapsed(),
            jobs: after.running.clone(),
            requests: first_request..sandbox.requests().len(),
        };
        println!(
            "kill {:2} after {:3} ms: {}",
            kills.len() + 1,
            kill.after.as_millis(),
            kill.describe()
        );
        kills.push(kill);
        // Spread the kills over the whole upload, whatever the machine's speed: each run
        // should get through about its share of what is left for the kills still planned.
        // Shorter delays when a run went much further, longer when it hardly moved (start-up
        // takes longer on a loaded machine).
        let planned = TARGET_KILLS.saturating_sub(kills.len()).max(1);
        let share = after.remaining() as f64 / planned as f64;
        let moved = after.units.saturating_sub(before.units) as f64;
        if moved > 2.0 * share {
            scale = (scale * 0.75).max(0.1);
        } else if moved < 0.5 * share {
            scale = (scale * 1.25).min(8.0);
        }
    }
    assert!(
        kills.len() >= MIN_KILLS,
        "only {} kills before the upload finished: {kills:#?}",
        kills.len()
    );

    // One more run finds everything done and sends nothing.
    let quiet = sandbox.requests().len();
    let out = dir.path().join("run-final");
    let mut child = upload(&mtp, &env, sequence_id, &out, dir.path());
    let status = tokio::time::timeout(RUN_TIMEOUT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "the final run: {status}\n{}",
        outputs(&out)
    );
    let extra: Vec<String> = sandbox.requests()[quiet..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(extra.is_empty(), "a finished upload sent more: {extra:?}");

    let requests = sandbox.requests();
    report(&kills, &requests, started.elapsed());
    check_database(&data, sequence_id).await;
    let store = Store::open(&data.join("mtp.db")).await.unwrap();
    let local = local_files(&folder);
    check_mapillary(&store, &sandbox, sequence_id, &local, kills.len()).await;
    check_kartaview(&store, &sandbox, sequence_id, &local).await;
    check_panoramax(&store, &sandbox, sequence_id, &local).await;
    check_mtpw(&store, &sandbox, sequence_id, &kills).await;
    store.close().await;
}

/// One kill: when, and what the database says was running.
#[derive(Debug)]
struct Kill {
    after: Duration,
    /// `destination stage photos_done/photos_total` of the jobs left `running`.
    jobs: Vec<String>,
    /// The requests of this run (indexes into the recording).
    requests: std::ops::Range<usize>,
}

impl Kill {
    fn describe(&self) -> String {
        if self.jobs.is_empty() {
            "start-up (no job running)".to_string()
        } else {
            self.jobs.join(", ")
        }
    }

    /// The furthest stage a job was running at the kill (`start-up` if none was).
    fn stage(&self) -> &'static str {
        const ORDER: [&str; 5] = ["sync", "poll", "publish", "upload", "prepare"];
        ORDER
            .into_iter()
            .find(|s| self.jobs.iter().any(|j| j.split(' ').nth(1) == Some(*s)))
            .unwrap_or("start-up")
    }
}

/// Prints the kills by stage, and the requests they cut mid-body or left unanswered.
fn report(kills: &[Kill], requests: &[RecordedRequest], took: Duration) {
    let mut by_stage: BTreeMap<&str, usize> = BTreeMap::new();
    let mut cut: BTreeMap<String, usize> = BTreeMap::new();
    let mut unanswered = 0;
    for k in kills {
        *by_stage.entry(k.stage()).or_default() += 1;
        for r in &requests[k.requests.clone()] {
            if r.status.is_none() {
                unanswered += 1;
            }
            if !r.body_complete && r.body_len > 0 {
                *cut.entry(r.endpoint.clone().unwrap_or_default())
                    .or_default() += 1;
            }
        }
    }
    println!(
        "{} kills in {:.1} s; by the furthest stage running: {by_stage:?}; \
         requests left unanswered: {unanswered}, cut mid-body: {cut:?}",
        kills.len(),
        took.as_secs_f64(),
    );
}

/// What the database says about the jobs of the sequence: progress units (photos sent plus
/// ten per stage passed, per job) and the jobs left `running`.
struct Progress {
    units: u64,
    total: u64,
    running: Vec<String>,
}

impl Progress {
    fn remaining(&self) -> u64 {
        self.total.saturating_sub(self.units)
    }
}

fn stage_rank(job: &JobRow) -> u64 {
    if job.status == JobStatus::Done {
        return 5;
    }
    match job.stage {
        Stage::Prepare => 0,
        Stage::Upload => 1,
        Stage::Publish => 2,
        Stage::Poll => 3,
        Stage::Sync => 4,
        Stage::Done => 5,
    }
}

async fn progress(data: &Path, sequence_id: i64) -> Progress {
    let store = Store::open(&data.join("mtp.db")).await.unwrap();
    let jobs = store.jobs_of_sequence(sequence_id).await.unwrap();
    store.close().await;
    let mut p = Progress {
        units: 0,
        total: 0,
        running: Vec::new(),
    };
    for j in &jobs {
        p.units += j.photos_done.max(0) as u64 + 10 * stage_rank(j);
        p.total += j.photos_total.max(0) as u64 + 50;
        if j.status == JobStatus::Running {
            p.running.push(format!(
                "{} {} {}/{}",
                j.destination, j.stage, j.photos_done, j.photos_total
            ));
        }
    }
    p
}

/// Every job done, every photo item sent with its remote key and id.
async fn check_database(data: &Path, sequence_id: i64) {
    let store = Store::open(&data.join("mtp.db")).await.unwrap();
    let jobs = store.jobs_of_sequence(sequence_id).await.unwrap();
    assert_eq!(jobs.len(), 4, "{jobs:#?}");
    for j in &jobs {
        assert_eq!(
            (j.stage, j.status, j.last_error.as_deref()),
            (Stage::Done, JobStatus::Done, None),
            "{j:#?}"
        );
        if j.destination == Destination::Mtpw {
            continue;
        }
        assert!(j.remote_url.is_some(), "{j:#?}");
        assert_eq!(j.photos_done, PHOTOS as i64, "{j:#?}");
        let items = store.job_items(j.id).await.unwrap();
        assert_eq!(items.len(), PHOTOS);
        for i in &items {
            assert_eq!(i.state, ItemState::Sent, "{i:#?}");
            assert!(i.remote_key.is_some() && i.remote_id.is_some(), "{i:#?}");
        }
    }
    store.close().await;
}

/// Mapillary: each photo's key once, holding exactly the bytes named by the key, with the
/// handle the database saved; nothing else uploaded but the manifest; one cluster of every
/// photo, the sequence the job found. And from the recording: the bytes `mtp` sent more
/// than once (the part of a body in flight at a kill that the host did not keep, or a POST
/// refused because the killed run's bytes were still arriving) stay within one photo per
/// kill.
async fn check_mapillary(
    store: &Store,
    sandbox: &Sandbox,
    sequence_id: i64,
    local: &HashMap<String, (u64, String)>,
    kills: usize,
) {
    let mly = job_in(store, sequence_id, Destination::Mapillary).await;
    let remote = mly.mly();
    assert!(remote.sequence_key.is_some(), "{mly:#?}");
    assert!(remote.first_image_id.is_some(), "{mly:#?}");
    assert!(
        !remote.chunks.is_empty() && remote.chunks.iter().all(|c| c.manifest_handle.is_some()),
        "{mly:#?}"
    );
    let items = store.job_items(mly.id).await.unwrap();
    let state = sandbox.state();
    let files = state.mapillary_files();
    let mut sent: HashMap<String, u64> = HashMap::new();
    let mut refused = 0;
    for r in sandbox.requests() {
        if r.endpoint.as_deref() == Some("mapillary.upload") && r.method == "POST" {
            let key = r.path.rsplit('/').next().unwrap().to_string();
            *sent.entry(key).or_default() += r.body_len;
            if r.status == Some(412) {
                refused += 1;
            }
        }
    }
    let (mut resent, mut resumed) = (0, 0);
    for item in &items {
        let key = item.remote_key.clone().unwrap();
        let copies: Vec<_> = files.iter().filter(|f| f.key == key).collect();
        assert_eq!(copies.len(), 1, "{key}");
        let f = copies[0];
        assert!(f.key_matches_md5(), "{key} holds other bytes");
        assert_eq!(f.handle.as_deref(), item.remote_id.as_deref(), "{key}");
        assert!(f.len > local[&item.file_name].0, "{key}: {} bytes", f.len);
        resent += sent[&key] - f.len;
        if f.posts > 1 {
            resumed += 1;
        }
    }
    let stray: Vec<_> = files
        .iter()
        .filter(|f| {
            !items
                .iter()
                .any(|i| i.remote_key.as_deref() == Some(&f.key))
        })
        .filter(|f| !f.key.starts_with("uuid_"))
        .map(|f| f.key.clone())
        .collect();
    assert!(stray.is_empty(), "uploads no photo owns: {stray:?}");
    let largest = local.values().map(|(len, _)| *len).max().unwrap();
    assert!(
        resent <= kills as u64 * largest,
        "{resent} bytes sent twice over {kills} kills"
    );
    let clusters = state.mapillary_clusters();
    assert_eq!(clusters.len(), 1, "{clusters:#?}");
    assert_eq!(clusters[0].image_count, PHOTOS);
    assert_eq!(
        mly.mly().sequence_key.as_deref(),
        Some(clusters[0].sequence_ids[0].as_str())
    );
    let recovered = mly.mly().cluster_id.is_none();
    println!(
        "Mapillary: {PHOTOS} photos once ({resumed} resumed mid-photo; {resent} bytes sent twice, \
         {refused} POSTs refused 412 as a killed run's bytes were still arriving), 1 cluster{}",
        if recovered {
            " (a finish_upload cut by a kill had gone through: found, not repeated)"
        } else {
            ""
        }
    );
}

/// The ids a service gave to `endpoint`'s calls beyond the last one (the one `mtp` saved)
/// must have come back to runs that were killed before saving them. Returns how many.
fn lost_creates(requests: &[RecordedRequest], kills: &[Kill], endpoint: &str) -> usize {
    let answered: Vec<usize> = (0..requests.len())
        .filter(|&i| {
            requests[i].endpoint.as_deref() == Some(endpoint)
                && requests[i].status.is_some_and(|s| (200..300).contains(&s))
        })
        .collect();
    assert!(!answered.is_empty(), "no {endpoint} call succeeded");
    let lost = &answered[..answered.len() - 1];
    for &i in lost {
        assert!(
            kills.iter().any(|k| k.requests.contains(&i)),
            "{endpoint} was called again after a run that was not killed"
        );
    }
    if !lost.is_empty() {
        println!(
            "{endpoint}: {} call(s) answered to a run killed before it saved the id: empty leftover(s)",
            lost.len()
        );
    }
    lost.len()
}

/// KartaView: one finished sequence with each index once, each photo's bytes as on disk.
async fn check_kartaview(
    store: &Store,
    sandbox: &Sandbox,
    sequence_id: i64,
    local: &HashMap<String, (u64, String)>,
) {
    let kv = job_in(store, sequence_id, Destination::Kartaview).await;
    assert!(kv.kv().finished, "{kv:#?}");
    let id = kv.kv().sequence_id.unwrap();
    let sequences = sandbox.state().kartaview_sequences();
    assert_eq!(
        sequences.len(),
        1,
        "a lost create was not found again: {sequences:#?}"
    );
    if kv.kv().common.adopted_after_crash {
        println!("KartaView: a create cut by a kill was found again with my-list and used");
    }
    let seq = sequences.iter().find(|s| s.id == id).unwrap();
    assert_ne!(seq.status, "NEW");
    let mut indexes: Vec<u32> = seq.photos.iter().map(|p| p.sequence_index).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..PHOTOS as u32).collect::<Vec<_>>());
    for p in &seq.photos {
        let name = p.filename.clone().unwrap();
        assert_eq!(Some(&(p.len, p.md5.clone())), local.get(&name), "{name}");
    }
    println!(
        "KartaView: {} photos once, {} duplicate sends answered 660",
        seq.photos.len(),
        seq.duplicate_attempts.len()
    );
}

/// Panoramax: one ready upload set with each file once, as on disk, in one collection.
async fn check_panoramax(
    store: &Store,
    sandbox: &Sandbox,
    sequence_id: i64,
    local: &HashMap<String, (u64, String)>,
) {
    let px = job_in(store, sequence_id, Destination::Panoramax).await;
    assert!(px.px().collection_id.is_some(), "{px:#?}");
    let id = px.px().upload_set_id.unwrap();
    let sets = sandbox.state().panoramax_upload_sets();
    assert_eq!(
        sets.len(),
        1,
        "a lost create was not found again: {sets:#?}"
    );
    if px.px().common.adopted_after_crash {
        println!(
            "Panoramax: a create cut by a kill was found again among the account's upload sets and used"
        );
    }
    let set = sets.iter().find(|s| s.id == id).unwrap();
    assert!(set.ready && set.collection_ids.len() == 1, "{set:#?}");
    assert_eq!(set.files.len(), PHOTOS);
    let mut names: Vec<&str> = set.files.iter().map(|f| f.file_name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), PHOTOS);
    for f in &set.files {
        assert!(f.rejected.is_none(), "{f:#?}");
        assert_eq!(
            Some(&(f.size, f.content_md5.clone())),
            local.get(&f.file_name),
            "{}",
            f.file_name
        );
    }
    let conflicts = sandbox
        .requests()
        .iter()
        .filter(|r| r.endpoint.as_deref() == Some("panoramax.files") && r.status == Some(409))
        .count();
    println!("Panoramax: {PHOTOS} files once, {conflicts} resends answered 409");
}

/// Map the Paths Web: one sequence, imported with the Mapillary sequence key.
async fn check_mtpw(store: &Store, sandbox: &Sandbox, sequence_id: i64, kills: &[Kill]) {
    let web = job_in(store, sequence_id, Destination::Mtpw).await;
    let mly = job_in(store, sequence_id, Destination::Mapillary).await;
    let key = mly.mly().sequence_key;
    assert!(key.is_some());
    assert_eq!(web.web().imported_key, key);
    let id = web.web().unique_id.unwrap();
    let sequences = sandbox.state().mtpw_sequences();
    let lost = lost_creates(&sandbox.requests(), kills, "mtpw.create");
    assert_eq!(sequences.len(), 1 + lost, "{sequences:#?}");
    if lost > 0 {
        assert!(
            web.web().possible_duplicate.is_some(),
            "the row must say an empty copy may exist: {web:#?}"
        );
    }
    for other in sequences.iter().filter(|s| s.unique_id != id) {
        assert!(
            !other.published && other.mapillary_sequence_key.is_none(),
            "{other:#?}"
        );
    }
    let s = sequences.iter().find(|s| s.unique_id == id).unwrap();
    assert!(!s.deleted);
    assert_eq!(s.mapillary_sequence_key, key);
    let imports = sandbox
        .requests()
        .iter()
        .filter(|r| r.endpoint.as_deref() == Some("mtpw.import") && r.status == Some(200))
        .count();
    println!("Map the Paths Web: 1 sequence, imported ({imports} import call(s))");
}

/// Appends `extra` pseudo-random bytes (after the JPEG's end) to every `every`th photo.
fn pad_some(folder: &Path, every: usize, extra: usize) {
    let mut names: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut rng = SplitMix(extra as u64);
    for path in names.iter().skip(every / 2).step_by(every) {
        let mut data = std::fs::read(path).unwrap();
        data.extend((0..extra).map(|_| rng.next() as u8));
        std::fs::write(path, data).unwrap();
    }
}

/// Size and MD5 of every photo in the folder, by file name.
fn local_files(folder: &Path) -> HashMap<String, (u64, String)> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            (name, (bytes.len() as u64, hex::encode(Md5::digest(&bytes))))
        })
        .collect()
}

/// The `mtp` binary: `MTP_BIN`, else built now (a no-op when it is up to date) next to
/// this test's own binary (`<target>/<profile>/deps/kill-…`).
fn mtp_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("MTP_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let profile = profile_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build
        .current_dir(mtp_tests::workspace_root())
        .args(["build", "--quiet", "-p", "mtp-cli", "--bin", "mtp"]);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let status = build.status().unwrap();
    assert!(status.success(), "building mtp failed: {status}");
    let bin = profile_dir.join("mtp");
    assert!(bin.is_file(), "no mtp binary at {}", bin.display());
    bin
}

/// `mtp`'s environment: live mode, every service pointed at the emulators, nothing else
/// from this process's environment (no `.env` either: it runs from the temp dir).
fn child_env(data: &Path, urls: &SandboxUrls) -> Vec<(&'static str, String)> {
    let url = |u: &url::Url| u.as_str().trim_end_matches('/').to_string();
    let mut env = vec![
        ("MTP_DATA_DIR", data.display().to_string()),
        ("MTP_SANDBOX", "0".into()),
        ("MTP_OPENER", "true".into()),
        ("RUST_LOG", "warn".into()),
        ("MAPILLARY_APP_ID", mtp_sandbox::MAPILLARY_CLIENT_ID.into()),
        (
            "MAPILLARY_SECRET",
            mtp_sandbox::MAPILLARY_CLIENT_SECRET.into(),
        ),
        ("MAPILLARY_AUTHORIZE_URL", url(&urls.mapillary_authorize)),
        ("MAPILLARY_GRAPH_URL", url(&urls.mapillary_graph)),
        ("MAPILLARY_UPLOAD_URL", url(&urls.mapillary_upload)),
        ("KARTAVIEW_API_URL", url(&urls.kartaview_api)),
        ("KARTAVIEW_OSM_CLIENT_ID", mtp_sandbox::OSM_CLIENT_ID.into()),
        (
            "KARTAVIEW_OSM_CLIENT_SECRET",
            mtp_sandbox::OSM_CLIENT_SECRET.into(),
        ),
        ("OSM_AUTHORIZE_URL", url(&urls.osm_authorize)),
        ("OSM_TOKEN_URL", url(&urls.osm_token)),
        ("PANORAMAX_INSTANCE_URL", url(&urls.panoramax_instance)),
        ("MTPW_URL", url(&urls.mtpw_base)),
        ("MTPW_CLIENT_ID", mtp_sandbox::MTPW_CLIENT_ID.into()),
    ];
    for keep in ["PATH", "HOME", "TMPDIR", "LLVM_PROFILE_FILE"] {
        if let Ok(v) = std::env::var(keep) {
            env.push((keep, v));
        }
    }
    env
}

fn command(mtp: &Path, env: &[(&'static str, String)], cwd: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(mtp);
    cmd.env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Connects every service in `mtp`'s database, as a sign-in would have.
async fn seed_accounts(data: &Path, sandbox: &Sandbox) {
    let store = Store::open(&data.join("mtp.db")).await.unwrap();
    let user = &USERS[0];
    let panoramax = sandbox.urls().panoramax_instance;
    for (service, token_of, user_id) in [
        (
            Destination::Mapillary,
            Service::Mapillary,
            Some(user.mapillary_id.to_string()),
        ),
        (
            Destination::Kartaview,
            Service::KartaView,
            Some(user.kartaview_id.to_string()),
        ),
        (
            Destination::Panoramax,
            Service::Panoramax,
            Some(user.panoramax_id.to_string()),
        ),
        (Destination::Mtpw, Service::Mtpw, None),
    ] {
        let account = Account {
            service,
            user_id,
            username: Some(user.username.to_string()),
            access_token: Secret::new(sandbox.issue_token(token_of, 0)),
            refresh_token: None,
            expires_at: None,
            needs_reauth: false,
            instance_url: (service == Destination::Panoramax)
                .then(|| panoramax.as_str().trim_end_matches('/').to_string()),
            reauth_reason: None,
        };
        store.save_account(&account, 0).await.unwrap();
    }
    store
        .set_setting(
            mtp_app::MTPW_MAPILLARY_CONSENT,
            &serde_json::Value::Bool(true),
            0,
        )
        .await
        .unwrap();
    store.close().await;
}

/// `mtp prepare <folder>` (saved, not queued): the sequence's id.
async fn prepare(mtp: &Path, env: &[(&'static str, String)], folder: &Path, cwd: &Path) -> i64 {
    let out = command(mtp, env, cwd)
        .arg("prepare")
        .arg(folder)
        .args(["--name", "Killed walk", "--transport", "Walk", "--json"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "mtp prepare: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids = json["saved"]["sequence_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{json}");
    ids[0].as_i64().unwrap()
}

/// Starts `mtp upload <id> --to …`, its output going to `<out>.out` and `<out>.err`.
fn upload(
    mtp: &Path,
    env: &[(&'static str, String)],
    sequence_id: i64,
    out: &Path,
    cwd: &Path,
) -> tokio::process::Child {
    let stdout = std::fs::File::create(out.with_extension("out")).unwrap();
    let stderr = std::fs::File::create(out.with_extension("err")).unwrap();
    command(mtp, env, cwd)
        .args(["upload", &sequence_id.to_string(), "--to", TO])
        .args(["--timeout", &RUN_TIMEOUT.as_secs().to_string()])
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap()
}

fn outputs(out: &Path) -> String {
    let read = |ext: &str| std::fs::read_to_string(out.with_extension(ext)).unwrap_or_default();
    format!("stdout:\n{}\nstderr:\n{}", read("out"), read("err"))
}

/// A small seeded generator (SplitMix64): the same seed gives the same kill schedule.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}
