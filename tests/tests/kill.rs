//! `kill -9`, over and over: the real `mtp` binary uploads one folder to every destination
//! and is killed at random moments (seeded) until a run finishes on its own. The emulators
//! live in this test process, so they outlive every `mtp` and remember everything it sent;
//! `mtp` runs in live mode, pointed at them, with accounts seeded in its database.
//!
//! Afterwards every photo must be on every service exactly once, nothing sent twice beyond
//! what was in flight at a kill, one sequence (upload set, cluster) per service, and every
//! job done with its remote ids in the database. A last run must find nothing to do.
//!
//! `MTP_KILL_SEED=<n>` replays another schedule; `MTP_BIN=<path>` tests that binary instead
//! of building `mtp` (debug, or the profile this test was built with).

#![allow(clippy::unwrap_used)]

mod pipeline_support;

use md5::{Digest as _, Md5};
use mtp_core::Destination;
use mtp_core::secret::Secret;
use mtp_core::store::{Account, JobRow, Store};
use mtp_sandbox::{RecordedRequest, Sandbox, SandboxConfig, SandboxUrls, Service, USERS};
use pipeline_support::{
    assert_kartaview_once_in, assert_mapillary_once_in, assert_panoramax_once_in, job_in,
    pad_photos, walk,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Photos in the folder, and bytes added to each (so a photo takes long enough to be cut
/// mid-body, and Mapillary's resumable upload has something to resume).
const PHOTOS: usize = 120;
const PADDING: usize = 300_000;
/// Kills before a run may finish on its own, and the most kills (then a run is left alone).
const MIN_KILLS: usize = 20;
const MAX_KILLS: usize = 45;
/// Kill delays, before the adaptation below scales them: uniform in this range.
const DELAY_MS: (f64, f64) = (50.0, 600.0);
/// The longest any single run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Every destination, as `mtp upload --to` takes them.
const TO: &str = "mapillary,kartaview,panoramax,mtpw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_again_and_again_every_photo_lands_once_everywhere() {
    let mtp = mtp_binary();
    // Processing is instant: in live mode `mtp` looks at processing states every 30 s at
    // first, and a sequence must be published before Map the Paths can import it.
    let sandbox = Sandbox::start(SandboxConfig {
        processing_delay: Duration::ZERO,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let folder = dir.path().join("walk");
    mtp_core::photo::fixture::write_track_folder(&folder, PHOTOS, &walk(7)).unwrap();
    pad_photos(&folder, PADDING);
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
    let mut run_starts: Vec<usize> = Vec::new();
    let mut scale = 1.0_f64;
    let mut run = 0;
    let finished_alone = loop {
        run += 1;
        let before = progress(&data, sequence_id).await;
        let delay = (kills.len() < MAX_KILLS).then(|| {
            let (lo, hi) = DELAY_MS;
            Duration::from_millis(((lo + (hi - lo) * rng.unit()) * scale).max(20.0) as u64)
        });
        run_starts.push(sandbox.requests().len());
        let out = dir.path().join(format!("run-{run}"));
        let mut child = upload(&mtp, &env, sequence_id, &out, dir.path());
        let t0 = Instant::now();
        let ended = match delay {
            Some(d) => tokio::select! {
                s = child.wait() => Some(s.unwrap()),
                () = tokio::time::sleep(d) => None,
            },
            None => None,
        };
        let status = match ended {
            Some(s) => s,
            None if delay.is_some() => {
                child.start_kill().unwrap();
                let status = child.wait().await.unwrap();
                let after = progress(&data, sequence_id).await;
                let kill = Kill {
                    run,
                    after: t0.elapsed(),
                    jobs: after.running.clone(),
                    requests: run_starts[run - 1]..sandbox.requests().len(),
                };
                println!("kill {:2} after {:4} ms: {}", kills.len() + 1, kill.after.as_millis(), kill.describe());
                kills.push(kill);
                // Keep the kills spread over the whole upload: shorter delays when a run
                // got further than its share of what is left, longer when runs stall in
                // start-up (a loaded machine).
                let needed = MIN_KILLS.saturating_sub(kills.len());
                if needed > 0 {
                    let share = (after.remaining() as f64) / (needed as f64 + 1.0);
                    let moved = after.units.saturating_sub(before.units) as f64;
                    if moved > share {
                        scale = (scale * 0.7).max(0.1);
                    } else if moved == 0.0 {
                        scale = (scale * 1.3).min(5.0);
                    }
                } else {
                    scale = 1.0;
                }
                let _ = status;
                continue;
            }
            None => match tokio::time::timeout(RUN_TIMEOUT, child.wait()).await {
                Ok(s) => s.unwrap(),
                Err(_) => {
                    child.start_kill().unwrap();
                    panic!("run {run} did not finish in {RUN_TIMEOUT:?}\n{}", outputs(&out));
                }
            },
        };
        assert!(
            status.success(),
            "run {run} ended on its own with {status}\n{}",
            outputs(&out)
        );
        println!(
            "run {run} finished on its own after {} ms",
            t0.elapsed().as_millis()
        );
        break status;
    };
    assert!(finished_alone.success());
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
    assert!(status.success(), "the final run: {status}\n{}", outputs(&out));
    let extra: Vec<String> = sandbox.requests()[quiet..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(extra.is_empty(), "a finished upload sent more: {extra:?}");

    report(&kills, &sandbox.requests(), started.elapsed());
    check_services(&data, &sandbox, sequence_id, &folder, kills.len()).await;
}

/// One kill: when, and what the database says was running.
#[derive(Debug)]
struct Kill {
    run: usize,
    after: Duration,
    /// `destination stage photos_done/photos_total` of the jobs left `running`.
    jobs: Vec<String>,
    /// The requests of this run (indexes into the recording).
    requests: std::ops::Range<usize>,
}

impl Kill {
    fn describe(&self) -> String {
        if self.jobs.is_empty() {
            "start-up (no job claimed yet)".to_string()
        } else {
            self.jobs.join(", ")
        }
    }

    /// The furthest stage a job was running at the kill (`start-up` if none was).
    fn stage(&self) -> &str {
        const ORDER: [&str; 5] = ["sync", "poll", "publish", "upload", "prepare"];
        ORDER
            .iter()
            .find(|s| self.jobs.iter().any(|j| j.split(' ').nth(1) == Some(**s)))
            .copied()
            .unwrap_or("start-up")
    }
}

/// Prints the kills by stage and how many requests each kill cut mid-body.
fn report(kills: &[Kill], requests: &[RecordedRequest], took: Duration) {
    let mut by_stage: BTreeMap<&str, usize> = BTreeMap::new();
    let mut cut: BTreeMap<String, usize> = BTreeMap::new();
    let mut lost_replies = 0;
    for k in kills {
        *by_stage.entry(k.stage()).or_default() += 1;
        for r in &requests[k.requests.clone()] {
            let endpoint = r.endpoint.clone().unwrap_or_default();
            if !r.body_complete && r.body_len > 0 {
                *cut.entry(endpoint).or_default() += 1;
            } else if r.method == "POST" && r.status == Some(200) {
                // Complete requests answered after the kill: their replies were lost.
            }
        }
        lost_replies += 0;
    }
    println!(
        "{} kills in {:.1} s; by the furthest stage running: {by_stage:?}; requests cut mid-body: {cut:?}{}",
        kills.len(),
        took.as_secs_f64(),
        if lost_replies > 0 { "" } else { "" }
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
    if job.status == "done" {
        return 5;
    }
    match job.stage.as_str() {
        "prepare" => 0,
        "upload" => 1,
        "publish" => 2,
        "poll" => 3,
        "sync" => 4,
        _ => 5,
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
        if j.status == "running" {
            p.running.push(format!(
                "{} {} {}/{}",
                j.destination, j.stage, j.photos_done, j.photos_total
            ));
        }
    }
    p
}

/// The services as they must look, and the database.
async fn check_services(
    data: &Path,
    sandbox: &Sandbox,
    sequence_id: i64,
    folder: &Path,
    kills: usize,
) {
    let store = Store::open(&data.join("mtp.db")).await.unwrap();
    let jobs = store.jobs_of_sequence(sequence_id).await.unwrap();
    assert_eq!(jobs.len(), 4, "{jobs:#?}");
    for j in &jobs {
        assert_eq!((j.stage.as_str(), j.status.as_str()), ("done", "done"), "{j:#?}");
        assert!(j.remote_url.is_some() || j.destination == "mtpw", "{j:#?}");
    }
    let local = local_files(folder);
    let largest = local.values().map(|(len, _)| *len).max().unwrap();

    // Mapillary: each key once, complete, named after its bytes; one cluster. From the
    // recording: the POSTs of each key cover its bytes once, back to back (no byte twice).
    assert_mapillary_once_in(&store, sandbox, sequence_id, largest).await;
    let mly = job_in(&store, sequence_id, Destination::Mapillary).await;
    for key in ["cluster_id", "sequence_key", "first_image_id"] {
        assert!(mly.remote_str(key).is_some(), "Mapillary {key}: {mly:#?}");
    }
    let mut resent = 0;
    let mut ranges: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    for r in sandbox.requests() {
        if r.endpoint.as_deref() != Some("mapillary.upload") || r.method != "POST" {
            continue;
        }
        // A 412 is answered before reading: its body was drained and thrown away.
        if r.status == Some(412) {
            continue;
        }
        let offset: u64 = r.header("offset").unwrap().parse().unwrap();
        let key = r.path.rsplit('/').next().unwrap().to_string();
        ranges.entry(key).or_default().push((offset, r.body_len));
    }
    let files = sandbox.state().mapillary_files();
    for f in files.iter().filter(|f| f.key.starts_with("mly_tools_")) {
        let mut at = 0;
        for (offset, len) in &ranges[&f.key] {
            assert!(
                *offset <= at,
                "{}: a POST at {offset} left a gap after {at}",
                f.key
            );
            resent += (at - offset).min(*len);
            at = at.max(offset + len);
        }
        assert_eq!(at, f.len, "{}", f.key);
    }
    assert!(
        resent <= kills as u64 * largest,
        "{resent} bytes sent twice over {kills} kills"
    );
    let mly_items = store.job_items(mly.id).await.unwrap();
    assert!(mly_items.iter().all(|i| i.remote_id.is_some()));

    // KartaView: one finished sequence, each index once, each photo's bytes as on disk.
    assert_kartaview_once_in(&store, sandbox, sequence_id, PHOTOS as u32).await;
    let kv = job_in(&store, sequence_id, Destination::Kartaview).await;
    assert_eq!(kv.remote().get("finished"), Some(&serde_json::json!(true)));
    let seq = sandbox
        .state()
        .kartaview_sequence(&kv.remote_str("sequence_id").unwrap())
        .unwrap();
    for p in &seq.photos {
        let name = p.filename.clone().unwrap();
        assert_eq!(Some(&(p.len, p.md5.clone())), local.get(&name), "{name}");
    }
    let kv_items = store.job_items(kv.id).await.unwrap();
    assert!(
        kv_items.iter().all(|i| i.remote_id.is_some()),
        "every KartaView photo id is known"
    );

    // Panoramax: one ready upload set, each file once, as on disk.
    assert_panoramax_once_in(&store, sandbox, sequence_id, PHOTOS).await;
    let px = job_in(&store, sequence_id, Destination::Panoramax).await;
    let set = sandbox
        .state()
        .panoramax_upload_set(&px.remote_str("upload_set_id").unwrap())
        .unwrap();
    for f in &set.files {
        assert_eq!(
            Some(&(f.size, f.content_md5.clone())),
            local.get(&f.file_name),
            "{}",
            f.file_name
        );
    }
    let px_items = store.job_items(px.id).await.unwrap();
    assert!(px_items.iter().all(|i| i.remote_id.is_some()));
    assert!(px.remote_str("collection_id").is_some());

    // Map the Paths: one sequence, created once and imported with the Mapillary key.
    let web = job_in(&store, sequence_id, Destination::Mtpw).await;
    let sequences = sandbox.state().mtpw_sequences();
    assert_eq!(sequences.len(), 1, "{sequences:#?}");
    let s = &sequences[0];
    assert_eq!(Some(s.unique_id.clone()), web.remote_str("unique_id"));
    assert!(!s.deleted);
    assert_eq!(s.mapillary_sequence_key, mly.remote_str("sequence_key"));
    assert_eq!(web.remote_str("imported_key"), mly.remote_str("sequence_key"));
    let creates = sandbox
        .requests()
        .iter()
        .filter(|r| r.endpoint.as_deref() == Some("mtpw.create"))
        .count();
    assert_eq!(creates, 1);
    store.close().await;
}

/// Size and MD5 of every photo in the folder, by file name.
fn local_files(folder: &Path) -> HashMap<String, (u64, String)> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            (
                name,
                (bytes.len() as u64, hex::encode(Md5::digest(&bytes))),
            )
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
    let profile = profile_dir.file_name().unwrap().to_string_lossy().to_string();
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
        ("MAPILLARY_SECRET", mtp_sandbox::MAPILLARY_CLIENT_SECRET.into()),
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
        };
        store.save_account(&account, 0).await.unwrap();
    }
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

#[allow(dead_code)]
fn _unused(_: ExitStatus) {}
