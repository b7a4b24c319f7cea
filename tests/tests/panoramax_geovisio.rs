//! Panoramax against a real GeoVisio 2.15.1 + PostgreSQL/PostGIS on loopback
//! (`scripts/geovisio.sh`, PROTOCOLS §4.4): first the client call by call, then the whole
//! pipeline of the app in live mode — upload set, files, completion, polling until ready,
//! the collection ids stored and every photo in the collection.
//!
//! Run with `make geovisio-test`, which installs and starts the server and sets
//! `MTP_GEOVISIO_URL` and `MTP_GEOVISIO_TOKEN` (the default account's JWT). Run by hand
//! without them, the tests fail and say so.

#![allow(clippy::unwrap_used)]

use mtp_app::explore::{ExploreQuery, Near, ServiceState, UserFilter};
use mtp_app::pipeline::PipelineOptions;
use mtp_app::prepare::{PrepareOptions, SaveImport};
use mtp_app::{App, Settings};
use mtp_core::Destination;
use mtp_core::engine::{EngineConfig, RetryPolicy};
use mtp_core::engine::{ItemState, JobStatus};
use mtp_core::photo::fixture::{TrackSpec, fixture_bytes, track_photos, write_track_folder};
use mtp_core::secret::Secret;
use mtp_core::store::JobRow;
use mtp_core::store::SequenceMeta;
use mtp_providers::ErrorKind;
use mtp_providers::PanoramaxClient;
use mtp_providers::panoramax::{AddFileOutcome, NewFile, NewUploadSet, UploadSet};
use mtp_tests::JobRemote;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use time::format_description::well_known::Rfc3339;
use url::Url;

const IGNORED: &str = "needs a real GeoVisio: run make geovisio-test";
/// How long GeoVisio may take to prepare and dispatch a handful of photos (it takes ~1 s).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The server from the environment; a clear failure without it.
fn server() -> (Url, String) {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let (Some(url), Some(token)) = (get("MTP_GEOVISIO_URL"), get("MTP_GEOVISIO_TOKEN")) else {
        panic!(
            "MTP_GEOVISIO_URL and MTP_GEOVISIO_TOKEN are not set: this test {IGNORED} \
             (or export the JSON printed by scripts/geovisio.sh start)"
        );
    };
    (Url::parse(url.trim()).unwrap(), token.trim().to_string())
}

/// Photos of this run, unlike any earlier run's: GeoVisio answers 409 to bytes it already
/// has anywhere on the instance, and the server's database outlives a test run. The
/// capture time (in the photos' EXIF) makes the bytes unique; `slot` keeps the tests of one
/// run apart.
fn fresh_track(slot: i64, prefix: &str) -> TrackSpec {
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    // A day ago, on a whole second, and a few hours between slots.
    let start = (now - 86_400_000) / 1000 * 1000 - slot * 4 * 3_600_000;
    TrackSpec {
        start_time_ms: start,
        start_lat: 48.80 + slot as f64 * 0.02,
        start_lon: 2.30 + (now % 10_000) as f64 * 1e-5,
        spacing_m: 4.0,
        interval_ms: 2000,
        file_prefix: prefix.into(),
        ..TrackSpec::default()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// `GET {url}/api/collections/{id}/items`: the STAC items of a collection.
async fn collection_items(url: &Url, collection: &str) -> Vec<Value> {
    let items_url = format!(
        "{}/api/collections/{collection}/items?limit=1000",
        url.as_str().trim_end_matches('/')
    );
    let reply = http().get(&items_url).send().await.unwrap();
    assert!(
        reply.status().is_success(),
        "{items_url}: {}",
        reply.status()
    );
    let body: Value = reply.json().await.unwrap();
    body["features"].as_array().cloned().unwrap_or_default()
}

fn original_names(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|i| i["properties"]["original_file:name"].as_str())
        .map(str::to_string)
        .collect()
}

/// Polls the upload set until GeoVisio says it is ready.
async fn until_ready(client: &PanoramaxClient, set_id: &str) -> UploadSet {
    let started = Instant::now();
    loop {
        let set = client.upload_set(set_id).await.unwrap();
        if set.ready {
            return set;
        }
        assert!(
            started.elapsed() < READY_TIMEOUT,
            "upload set {set_id} not ready after {READY_TIMEOUT:?}: {}",
            set.raw
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
#[ignore = "needs a real GeoVisio: run make geovisio-test"]
async fn the_client_uploads_a_set_to_geovisio() {
    let (url, token) = server();
    let client = PanoramaxClient::with_url(http(), url.clone(), Some(Secret::new(token)));

    let me = client.me().await.unwrap();
    assert!(!me.id.is_empty());
    let config = client.configuration().await.unwrap();
    assert_eq!(config.license_id.as_deref(), Some("CC-BY-SA-4.0"));
    assert!(!config.auth_enabled);

    // A bad token: 401 "Token not valid", an authentication error.
    let stranger = PanoramaxClient::with_url(
        http(),
        url.clone(),
        Some(Secret::new("not-a-jwt".to_string())),
    );
    assert_eq!(stranger.me().await.unwrap_err().kind(), ErrorKind::Auth);

    let set = client
        .create_upload_set(&NewUploadSet {
            title: "MTP client test".into(),
            ..NewUploadSet::default()
        })
        .await
        .unwrap();
    assert!(!set.completed && !set.ready, "{}", set.raw);

    let photos = track_photos(6, &fresh_track(0, "CLIENT_"));
    let mut picture_ids = Vec::new();
    let mut first = None;
    for (i, photo) in photos.iter().enumerate() {
        let file = NewFile {
            file_name: format!("CLIENT_{i:05}.jpg"),
            source: fixture_bytes(photo).into(),
            ..NewFile::default()
        };
        match client.add_file(&set.id, &file).await.unwrap() {
            AddFileOutcome::Added(added) => {
                assert_eq!(added.size, Some(file.source.len()), "{}", added.raw);
                picture_ids.push(added.picture_id.clone().unwrap());
            }
            other => panic!("{} was not added: {other:?}", file.file_name),
        }
        first.get_or_insert(file);
    }

    // The same bytes again: 409 with the existing picture, which is "already there".
    let first = first.unwrap();
    match client.add_file(&set.id, &first).await.unwrap() {
        AddFileOutcome::AlreadyThere {
            existing_item_id, ..
        } => assert_eq!(existing_item_id.as_deref(), Some(picture_ids[0].as_str())),
        other => panic!("a re-sent file was {other:?}"),
    }

    // A JPEG without GPS or date: 400, permanent, the missing fields named; tracked.
    let mut bare = photos[0].clone();
    bare.lat = None;
    bare.lon = None;
    bare.captured_at_ms = None;
    bare.unique_id = Some(format!("bare-{}", set.id));
    let refused = client
        .add_file(
            &set.id,
            &NewFile {
                file_name: "NO_GPS.jpg".into(),
                source: fixture_bytes(&bare).into(),
                ..NewFile::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Permanent, "{refused}");
    assert_eq!(refused.status(), Some(400), "{refused}");
    assert!(refused.to_string().contains("missing"), "{refused}");

    client.complete_upload_set(&set.id).await.unwrap();
    let ready = until_ready(&client, &set.id).await;
    assert!(ready.completed && ready.dispatched, "{}", ready.raw);
    assert_eq!(
        ready.associated_collections.len(),
        1,
        "one collection: {}",
        ready.raw
    );

    let files = client.upload_set_files(&set.id).await.unwrap();
    let accepted: Vec<_> = files.iter().filter(|f| f.rejected.is_none()).collect();
    assert_eq!(accepted.len(), 6, "{files:?}");
    let listed: BTreeSet<_> = accepted
        .iter()
        .filter_map(|f| f.picture_id.clone())
        .collect();
    assert_eq!(listed, picture_ids.iter().cloned().collect());
    let rejected: Vec<_> = files.iter().filter_map(|f| f.rejected.as_ref()).collect();
    assert_eq!(rejected.len(), 1, "{files:?}");
    assert_eq!(rejected[0].reason, "invalid_metadata", "{files:?}");

    let items = collection_items(&url, &ready.associated_collections[0]).await;
    assert_eq!(items.len(), 6, "{items:?}");
    let ids: BTreeSet<_> = items
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(ids, picture_ids.iter().cloned().collect());

    // The same bytes in another set: 409 too (tracked there as `file_duplicate`), naming
    // the picture that has them. A set of only such files is ready with no collection.
    let again = client
        .create_upload_set(&NewUploadSet {
            title: "MTP client test, again".into(),
            estimated_nb_files: Some(1),
            ..NewUploadSet::default()
        })
        .await
        .unwrap();
    match client.add_file(&again.id, &first).await.unwrap() {
        AddFileOutcome::AlreadyThere {
            existing_item_id, ..
        } => assert_eq!(existing_item_id.as_deref(), Some(picture_ids[0].as_str())),
        other => panic!("a file of another set was {other:?}"),
    }
    let done = until_ready(&client, &again.id).await;
    assert!(done.associated_collections.is_empty(), "{}", done.raw);
    let files = client.upload_set_files(&again.id).await.unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        files[0].rejected.as_ref().map(|r| r.reason.as_str()),
        Some("file_duplicate")
    );

    client.delete_upload_set(&again.id).await.unwrap();
    client.delete_upload_set(&set.id).await.unwrap();
}

/// An app in live mode with its own data directory, Panoramax connected with `token`.
async fn live_app(data_dir: &Path, url: &Url, token: &str) -> App {
    let env: HashMap<&str, String> = HashMap::from([
        ("MTP_DATA_DIR", data_dir.display().to_string()),
        ("MTP_SANDBOX", "0".to_string()),
        ("PANORAMAX_INSTANCE_URL", url.to_string()),
        ("MTP_OPENER", "true".to_string()),
    ]);
    let app = App::start(Settings::from_lookup(|k| env.get(k).cloned()))
        .await
        .unwrap();
    assert!(app.sandbox().is_none(), "the app must be in live mode");
    app.connect_panoramax(None, Some(token.to_string()))
        .await
        .unwrap();
    app
}

/// Imports `folder` as one sequence for Panoramax, runs the pipeline (polling quickly)
/// until its job settles, and returns the job.
async fn upload_folder(app: &App, folder: &Path) -> JobRow {
    let preview = app
        .prepare_folder(folder, PrepareOptions::default())
        .await
        .unwrap();
    let saved = app
        .save_import(SaveImport {
            sequences: Vec::new(),
            token: preview.token,
            meta: SequenceMeta {
                name: "A walk to GeoVisio".into(),
                description: "Uploaded by the MTP Desktop tests".into(),
                transport_type: Some("Walk".into()),
                tags: vec!["test".into()],
            },
            destinations: vec![Destination::Panoramax],
        })
        .await
        .unwrap();
    assert!(saved.skipped.is_empty(), "skipped: {:?}", saved.skipped);
    assert_eq!(saved.sequence_ids.len(), 1);
    let started = Instant::now();
    app.start_pipeline(
        EngineConfig {
            retry: RetryPolicy {
                base_ms: 100,
                cap_ms: 2_000,
            },
            idle_poll_ms: 100,
            ..EngineConfig::default()
        },
        PipelineOptions {
            poll_first_ms: 300,
            poll_max_ms: 2_000,
            ..PipelineOptions::live()
        },
    )
    .unwrap();
    let jobs = app
        .wait_for_jobs(&saved.sequence_ids, READY_TIMEOUT)
        .await
        .unwrap();
    eprintln!("uploaded and ready in {:?}", started.elapsed());
    app.shutdown().await;
    assert_eq!(jobs.len(), 1);
    let job = jobs.into_iter().next().unwrap();
    assert_eq!(job.status, JobStatus::Done, "{job:?}");
    job
}

#[tokio::test]
#[ignore = "needs a real GeoVisio: run make geovisio-test"]
async fn the_pipeline_publishes_a_folder_on_geovisio() {
    let (url, token) = server();
    let dir = tempfile::tempdir().unwrap();
    let app = live_app(&dir.path().join("app"), &url, &token).await;

    // No GPSImgDirection in the files: the app computes each heading from the track and
    // sends it as an EXIF override, which GeoVisio must take.
    let count = 6;
    let spec = TrackSpec {
        with_heading: false,
        ..fresh_track(1, "WALK_")
    };
    let folder = dir.path().join("walk");
    let paths = write_track_folder(&folder, count, &spec).unwrap();
    let names: BTreeSet<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();

    let job = upload_folder(&app, &folder).await;
    let items = app.store().job_items(job.id).await.unwrap();
    assert_eq!(items.len(), count);
    for item in &items {
        assert_eq!(item.state, ItemState::Sent, "{item:?}");
        assert!(item.remote_id.is_some(), "{item:?}");
    }
    let set_id = job.px().upload_set_id.unwrap();
    let collection = job
        .px()
        .collection_id
        .unwrap_or_else(|| panic!("no collection id in {}", job.remote_json));
    assert_eq!(
        job.px().collection_ids,
        vec![collection.clone()],
        "{}",
        job.remote_json
    );
    // The link is the instance's viewer on a picture of the sequence, not the API's JSON.
    let base = url.as_str().trim_end_matches('/');
    let link = job.remote_url.clone().unwrap_or_default();
    let viewer = format!("{base}/?focus=pic&pic=");
    assert!(link.starts_with(&viewer), "{link}");
    let linked_picture = link[viewer.len()..].to_string();

    // GeoVisio agrees: the set is ready, and its collection holds every photo.
    let client = PanoramaxClient::with_url(http(), url.clone(), Some(Secret::new(token.clone())));
    let set = client.upload_set(&set_id).await.unwrap();
    assert!(set.ready, "{}", set.raw);
    assert_eq!(set.associated_collections, vec![collection.clone()]);
    let stac = collection_items(&url, &collection).await;
    assert_eq!(original_names(&stac), names, "{stac:?}");
    let stac_ids: BTreeSet<String> = stac
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect();
    let our_ids: BTreeSet<String> = items.iter().filter_map(|i| i.remote_id.clone()).collect();
    assert_eq!(stac_ids, our_ids);
    assert!(
        stac_ids.contains(&linked_picture),
        "{link} is not in the sequence"
    );

    // Each picture has the heading the app computed, and its capture time.
    let photos = app.store().photos(job.sequence_id).await.unwrap();
    for item in &items {
        let photo = photos.iter().find(|p| p.id == item.photo_id).unwrap();
        let stac_item = stac
            .iter()
            .find(|i| i["id"].as_str() == item.remote_id.as_deref())
            .unwrap();
        let props = &stac_item["properties"];
        let heading = photo.heading.unwrap();
        let azimuth = props["view:azimuth"].as_f64();
        assert!(
            azimuth.is_some_and(|a| (a - heading).abs() <= 1.0),
            "view:azimuth {azimuth:?}, heading {heading}, exif {}",
            props["exif"]
        );
        let datetime = props["datetime"].as_str().unwrap();
        let at = time::OffsetDateTime::parse(datetime, &Rfc3339).unwrap();
        assert_eq!(
            at.unix_timestamp_nanos() / 1_000_000,
            i128::from(photo.captured_at),
            "{props}"
        );
    }
    // In capture order, as the pipeline asked (time-asc).
    let ranked: Vec<String> = {
        let mut by_rank: Vec<_> = stac
            .iter()
            .map(|i| {
                (
                    i["properties"]["geovisio:rank_in_collection"].as_i64(),
                    i["properties"]["original_file:name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        by_rank.sort();
        by_rank.into_iter().map(|(_, n)| n).collect()
    };
    assert_eq!(ranked, names.iter().cloned().collect::<Vec<_>>());

    // Explore finds them on the real server: by area with /api/search (no next link), and
    // as "me" through /api/users/me/collection.
    let first = photos.first().unwrap();
    let explore = |user: UserFilter| ExploreQuery {
        services: vec![Destination::Panoramax],
        near: Some(Near {
            lat: first.lat,
            lon: first.lon,
            radius_m: 2_000.0,
        }),
        user,
        ..ExploreQuery::default()
    };
    for user in [UserFilter::Me, UserFilter::Anyone] {
        let id = app.new_search();
        let result = app
            .explore(id, &explore(user.clone()), &|_| {})
            .await
            .unwrap();
        let outcome = &result.services[0];
        assert_eq!(outcome.state, ServiceState::Done, "{user:?}: {outcome:?}");
        let found: BTreeSet<String> = app
            .search_images(id)
            .unwrap()
            .into_iter()
            .map(|i| {
                assert!(i.thumb_url.is_some() && i.captured_at_ms.is_some(), "{i:?}");
                i.id
            })
            .collect();
        assert!(found.is_superset(&our_ids), "{user:?}: {found:?}");
    }

    // The same folder from another install: every file is already on the instance (409
    // from another set). The job ends done, each photo pointing at the picture that has
    // its bytes, with a note rather than a second collection.
    let other = live_app(&dir.path().join("other"), &url, &token).await;
    let again = upload_folder(&other, &folder).await;
    assert_eq!(again.px().collection_id, None, "{}", again.remote_json);
    let note = again.note().unwrap_or_default();
    assert!(
        note.contains("Already on Panoramax"),
        "{}",
        again.remote_json
    );
    let again_items = other.store().job_items(again.id).await.unwrap();
    let again_ids: BTreeSet<String> = again_items
        .iter()
        .filter_map(|i| {
            (i.state == ItemState::Sent)
                .then(|| i.remote_id.clone())
                .flatten()
        })
        .collect();
    assert_eq!(again_ids, our_ids, "{again_items:?}");
}

/// Panoramax's Integrate (panoramax-cli `login`, PROTOCOLS §4.2) against the real server:
/// `POST /api/auth/tokens/generate` gives a JWT and a claim link, and until someone claims
/// it (which needs the instance's OAuth, absent here) `GET /api/users/me` refuses it with
/// 401/403, which the app's poll reads as "not claimed yet".
#[tokio::test]
#[ignore = "needs a real GeoVisio: run make geovisio-test"]
async fn generating_a_token_to_claim_gives_a_claim_link_and_an_unclaimed_jwt() {
    let (url, _) = server();
    let cfg = mtp_providers::PanoramaxConfig::new(url.clone());
    let generated =
        mtp_providers::panoramax_login::generate_token(&http(), &cfg, "MTP Desktop test")
            .await
            .unwrap();
    assert!(!generated.id.is_empty());
    assert_eq!(generated.jwt.expose().split('.').count(), 3, "a JWT");
    assert!(
        generated
            .claim_url
            .path()
            .ends_with(&format!("/api/auth/tokens/{}/claim", generated.id)),
        "{}",
        generated.claim_url
    );
    let err = PanoramaxClient::new(http(), &cfg, Some(generated.jwt.clone()))
        .me()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert!(matches!(err.status(), Some(401 | 403)), "{err}");
}

/// `GET /api/users/me/collection` as GeoVisio answers it: the collection's own totals
/// (`stats:items`, `stats:collections`, `geovisio:length_km`).
async fn listed_totals(url: &Url, token: &str) -> (u64, u64, f64) {
    let reply = http()
        .get(format!(
            "{}/api/users/me/collection",
            url.as_str().trim_end_matches('/')
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    if reply.status() == 404 {
        return (0, 0, 0.0);
    }
    assert!(reply.status().is_success(), "{}", reply.status());
    let body: Value = reply.json().await.unwrap();
    (
        body["stats:items"]["count"].as_u64().unwrap_or(0),
        body["stats:collections"]["count"].as_u64().unwrap_or(0),
        body["geovisio:length_km"].as_f64().unwrap_or(0.0),
    )
}

#[tokio::test]
#[ignore = "needs a real GeoVisio: run make geovisio-test"]
async fn account_stats_sum_what_geovisio_lists_page_by_page() {
    let (url, token) = server();
    let client = PanoramaxClient::with_url(http(), url.clone(), Some(Secret::new(token.clone())));
    let before = client.account_stats().await.unwrap();

    for slot in [5, 6] {
        let set = client
            .create_upload_set(&NewUploadSet {
                title: format!("MTP stats test {slot}"),
                estimated_nb_files: Some(3),
                ..NewUploadSet::default()
            })
            .await
            .unwrap();
        for (i, photo) in track_photos(3, &fresh_track(slot, "STATS_"))
            .iter()
            .enumerate()
        {
            let file = NewFile {
                file_name: format!("STATS_{slot}_{i}.jpg"),
                source: fixture_bytes(photo).into(),
                ..NewFile::default()
            };
            let added = client.add_file(&set.id, &file).await.unwrap();
            assert!(matches!(added, AddFileOutcome::Added(_)), "{added:?}");
        }
        until_ready(&client, &set.id).await;
    }

    let after = client.account_stats().await.unwrap();
    assert!(after.photos >= before.photos + 6, "{before:?} → {after:?}");
    assert!(
        after.sequences >= before.sequences + 2,
        "{before:?} → {after:?}"
    );
    assert!(after.km > before.km, "{before:?} → {after:?}");
    assert_eq!(after.incomplete, 0, "{after:?}");

    // One sequence a page: every page is read through the next links GeoVisio writes
    // (pointing at /users/{id}/collection), and the sums match its own totals. Other tests
    // may upload meanwhile: compare when the totals held still around the paged read.
    let mut tries = 0;
    loop {
        let listed = listed_totals(&url, &token).await;
        let paged = client.account_stats_paged(1).await.unwrap();
        let again = listed_totals(&url, &token).await;
        if listed == again {
            assert_eq!(paged.pages as u64, paged.sequences, "{paged:?}");
            assert_eq!(
                (paged.photos, paged.sequences),
                (listed.0, listed.1),
                "{paged:?} / {listed:?}"
            );
            // GeoVisio rounds each length to the metre, and the total once.
            assert!(
                (paged.km - listed.2).abs() <= 0.001 * paged.sequences as f64,
                "{paged:?} / {listed:?}"
            );
            break;
        }
        tries += 1;
        assert!(tries < 10, "the account's totals never held still");
    }
}
