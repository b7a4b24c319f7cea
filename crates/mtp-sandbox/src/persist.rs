//! Keeps the emulators' state in a folder ([`crate::SandboxConfig::state_dir`]), so that a
//! restarted sandbox resumes where the last one stopped, as the real services do: issued
//! tokens, files on the Mapillary upload host (partial ones included), clusters, sequences
//! and images, KartaView sequences and photos, Panoramax upload sets, files, pictures and
//! collections, Map the Paths Web sequences, and the id counters.
//!
//! Not kept: fault rules, the request recorder, the test knobs (Mapillary's clock offset,
//! forced failures, …) and authorization codes (a sign-in interrupted by a restart starts
//! again). Timestamps are unix milliseconds ([`crate::clock`]), so processing that fell due
//! while the sandbox was stopped is done at once; nothing saved depends on the origin (URLs
//! are built per reply), so the next run may listen on another port.
//!
//! # Layout
//!
//! - `state.json`: everything but the bytes. Written to `state.json.tmp`, synced, then
//!   renamed over the old one, so a crash never leaves half a file. One that cannot be
//!   read is moved aside as `state.json.corrupt-<unix time>` and the sandbox starts empty.
//! - `blobs/mly-upload-<md5 of user and key>`: the bytes of a file on the Mapillary upload
//!   host, complete or not. Appended to as bytes arrive; `state.json` holds the length and
//!   MD5 that count (bytes past that length came after the last save and are cut on load).
//! - `blobs/mly-image-<id>.jpg`: a processed Mapillary image (served as its thumbnails).
//! - `blobs/pnx-picture-<id>.jpg`: a Panoramax picture (served as its assets).
//!
//! KartaView and Map the Paths Web keep no bytes. Blobs nothing refers to any more are
//! deleted when the state is loaded.
//!
//! The state is saved by a background task at most every [`SAVE_INTERVAL`] after a request
//! that may have changed it (and as upload bytes arrive), and once more when the sandbox
//! stops.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;

use crate::app::{App, AppRef};
use crate::auth::AuthStore;
use crate::clock;
use crate::kartaview::KvState;
use crate::mapillary::{MlyState, UploadFile};
use crate::mtpw::MtpwState;
use crate::panoramax::PnxState;
use crate::state::lock;

/// The state file in the state folder.
pub(crate) const STATE_FILE: &str = "state.json";
/// The folder of the blob files, in the state folder.
const BLOBS_DIR: &str = "blobs";
/// Format version of `state.json`.
const VERSION: u32 = 1;
/// How often, at most, the background task saves.
pub(crate) const SAVE_INTERVAL: Duration = Duration::from_millis(200);

/// The state folder of a running sandbox.
pub(crate) struct Persist {
    dir: PathBuf,
    blobs: PathBuf,
    dirty: AtomicBool,
    changed: Notify,
    /// What is on disk; held for a whole save, so two saves never interleave.
    disk: Mutex<OnDisk>,
}

/// A Mapillary upload blob as it is on disk.
struct UploadBlob {
    len: u64,
    /// MD5 of the `len` bytes so far (updated as bytes are appended).
    md5: Md5,
}

#[derive(Default)]
struct OnDisk {
    uploads: HashMap<String, UploadBlob>,
    /// Write-once blobs (images, pictures) known to be complete on disk.
    blobs: HashSet<String>,
}

/// A file on the Mapillary upload host, as `state.json` describes it.
#[derive(Serialize, Deserialize)]
struct SavedUpload {
    user: usize,
    key: String,
    /// How many bytes of the blob count.
    len: u64,
    /// MD5 (hex) of those bytes.
    md5: String,
    blob: String,
    handle: Option<String>,
    handle_at: Option<u64>,
    #[serde(default)]
    received_at: Option<u64>,
    posts: u32,
}

/// `state.json`, as loaded.
#[derive(Deserialize)]
struct Saved {
    version: u32,
    #[serde(default)]
    auth: AuthStore,
    #[serde(default)]
    mapillary: MlyState,
    #[serde(default)]
    mapillary_uploads: Vec<SavedUpload>,
    #[serde(default)]
    kartaview: KvState,
    #[serde(default)]
    panoramax: PnxState,
    #[serde(default)]
    mtpw: MtpwState,
}

fn upload_blob_name(user: usize, key: &str) -> String {
    let digest = Md5::digest(format!("{user}\n{key}").as_bytes());
    format!("mly-upload-{}", hex::encode(digest))
}

/// A blob named after an id; an id that is not plain (it never is today) is hashed.
fn id_blob_name(prefix: &str, id: &str) -> String {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        format!("{prefix}-{id}.jpg")
    } else {
        format!("{prefix}-{}.jpg", hex::encode(Md5::digest(id.as_bytes())))
    }
}

fn image_blob_name(id: &str) -> String {
    id_blob_name("mly-image", id)
}

fn picture_blob_name(id: &str) -> String {
    id_blob_name("pnx-picture", id)
}

/// Writes `bytes` to `dir/name` through a synced temporary file and a rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir);
    Ok(())
}

/// Makes a rename in `dir` durable (where directories can be opened; best effort).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// What one save writes to an upload blob.
struct UploadWrite {
    name: String,
    /// Bytes already on disk that are kept (`None` = rewrite the blob from scratch).
    keep: Option<u64>,
    bytes: Vec<u8>,
}

impl Persist {
    /// Opens (and creates) the state folder.
    pub fn open(dir: &Path) -> io::Result<Persist> {
        let blobs = dir.join(BLOBS_DIR);
        fs::create_dir_all(&blobs)?;
        Ok(Persist {
            dir: dir.to_owned(),
            blobs,
            dirty: AtomicBool::new(false),
            changed: Notify::new(),
            disk: Mutex::new(OnDisk::default()),
        })
    }

    /// Notes a change; the background task saves it.
    pub fn touch(&self) {
        self.dirty.store(true, Ordering::SeqCst);
        self.changed.notify_one();
    }

    /// Loads what a previous run saved into `app` (which must be fresh). A missing state
    /// is a fresh start; an unreadable one is moved aside (with a warning) and is one too.
    pub fn load(&self, app: &App) {
        let path = self.dir.join(STATE_FILE);
        let mut disk = lock(&self.disk);
        let saved = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Saved>(&bytes) {
                Ok(s) if s.version == VERSION => Some(s),
                Ok(s) => {
                    self.set_aside(&path, &format!("unknown version {}", s.version));
                    None
                }
                Err(e) => {
                    self.set_aside(&path, &e.to_string());
                    None
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                self.set_aside(&path, &e.to_string());
                None
            }
        };
        if let Some(saved) = saved {
            self.apply(app, saved, &mut disk);
            tracing::info!(dir = %self.dir.display(), "sandbox state loaded");
        }
        self.collect_garbage(&disk);
    }

    fn set_aside(&self, path: &Path, why: &str) {
        let aside = self
            .dir
            .join(format!("{STATE_FILE}.corrupt-{}", clock::now_ms() / 1000));
        match fs::rename(path, &aside) {
            Ok(()) => tracing::warn!(
                error = why,
                moved_to = %aside.display(),
                "unreadable sandbox state: starting empty"
            ),
            Err(e) => tracing::warn!(
                error = why,
                rename_error = %e,
                path = %path.display(),
                "unreadable sandbox state (and it could not be moved aside): starting empty"
            ),
        }
    }

    fn read_blob(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.blobs.join(name))
    }

    fn apply(&self, app: &App, saved: Saved, disk: &mut OnDisk) {
        let Saved {
            auth,
            mut mapillary,
            mapillary_uploads,
            kartaview,
            mut panoramax,
            mtpw,
            ..
        } = saved;

        app.faults.reserve_token_serials(auth.max_serial());
        *lock(&app.auth) = auth;

        for img in &mut mapillary.images {
            let name = image_blob_name(&img.id);
            match self.read_blob(&name) {
                Ok(b) => {
                    img.bytes = Bytes::from(b);
                    disk.blobs.insert(name);
                }
                Err(e) => {
                    tracing::warn!(image = %img.id, error = %e, "sandbox: bytes of a Mapillary image are lost")
                }
            }
        }
        for u in mapillary_uploads {
            match self.load_upload(&u) {
                Ok((data, md5)) => {
                    let id = (u.user, u.key.clone());
                    if !mapillary.files.contains_key(&id) {
                        mapillary.file_order.push(id.clone());
                    }
                    disk.uploads.insert(
                        u.blob.clone(),
                        UploadBlob {
                            len: data.len() as u64,
                            md5,
                        },
                    );
                    mapillary.files.insert(
                        id,
                        UploadFile {
                            user: u.user,
                            key: u.key,
                            data,
                            handle: u.handle,
                            handle_at: u.handle_at,
                            received_at: u.received_at,
                            posts: u.posts,
                        },
                    );
                }
                Err(why) => tracing::warn!(
                    key = %u.key,
                    error = %why,
                    "sandbox: a Mapillary upload's bytes are lost; it starts again from offset 0"
                ),
            }
        }
        mapillary.reserve_ids();
        *lock(&app.mly) = mapillary;

        *lock(&app.kv) = kartaview;

        panoramax.restore_picture_bytes(|id| {
            let name = picture_blob_name(id);
            match self.read_blob(&name) {
                Ok(b) => {
                    disk.blobs.insert(name);
                    Some(Bytes::from(b))
                }
                Err(e) => {
                    tracing::warn!(picture = %id, error = %e, "sandbox: bytes of a Panoramax picture are lost");
                    None
                }
            }
        });
        *lock(&app.pnx) = panoramax;

        mtpw.set_import_mode(app.cfg.mtpw_import);
        *lock(&app.mtpw) = mtpw;
    }

    /// The saved bytes of an upload (cut to the saved length, checked against the saved
    /// MD5) and their MD5 state.
    fn load_upload(&self, u: &SavedUpload) -> Result<(Vec<u8>, Md5), String> {
        if u.blob != upload_blob_name(u.user, &u.key) {
            return Err(format!("unexpected blob name {}", u.blob));
        }
        let path = self.blobs.join(&u.blob);
        let mut data = fs::read(&path).map_err(|e| e.to_string())?;
        let len = usize::try_from(u.len).map_err(|e| e.to_string())?;
        if data.len() < len {
            return Err(format!("blob has {} bytes, {len} expected", data.len()));
        }
        data.truncate(len);
        let mut md5 = Md5::new();
        md5.update(&data);
        if hex::encode(md5.clone().finalize()) != u.md5 {
            return Err("MD5 mismatch".into());
        }
        // Bytes past the saved length arrived after the last save: drop them on disk too,
        // so that later appends line up.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(u.len))
            .map_err(|e| e.to_string())?;
        Ok((data, md5))
    }

    /// Deletes blob files nothing refers to (and leftover temporary files).
    fn collect_garbage(&self, disk: &OnDisk) {
        let Ok(entries) = fs::read_dir(&self.blobs) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !disk.blobs.contains(&name) && !disk.uploads.contains_key(&name) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Saves the whole state: new blob bytes first, then `state.json`.
    pub fn save(&self, app: &App) -> io::Result<()> {
        let mut disk = lock(&self.disk);

        // Mapillary: the upload files' new bytes, new images, and the JSON (one lock).
        let (mly_json, uploads, upload_writes, image_writes) = {
            let st = lock(&app.mly);
            let mut uploads = Vec::new();
            let mut writes = Vec::new();
            for f in st.file_order.iter().filter_map(|id| st.files.get(id)) {
                let name = upload_blob_name(f.user, &f.key);
                let len = f.data.len() as u64;
                let keep = disk
                    .uploads
                    .get(&name)
                    .map(|b| b.len)
                    .filter(|on_disk| *on_disk <= len);
                let from = usize::try_from(keep.unwrap_or(0)).unwrap_or(usize::MAX);
                let bytes = f.data.get(from..).unwrap_or_default().to_vec();
                if keep != Some(len) {
                    writes.push(UploadWrite {
                        name: name.clone(),
                        keep,
                        bytes,
                    });
                }
                uploads.push(SavedUpload {
                    user: f.user,
                    key: f.key.clone(),
                    len,
                    md5: String::new(),
                    blob: name,
                    handle: f.handle.clone(),
                    handle_at: f.handle_at,
                    received_at: f.received_at,
                    posts: f.posts,
                });
            }
            let images: Vec<(String, Bytes)> = st
                .images
                .iter()
                .map(|i| (image_blob_name(&i.id), i.bytes.clone()))
                .filter(|(name, _)| !disk.blobs.contains(name))
                .collect();
            (serde_json::to_value(&*st)?, uploads, writes, images)
        };
        for w in upload_writes {
            self.write_upload(&mut disk, w)?;
        }
        let uploads: Vec<SavedUpload> = uploads
            .into_iter()
            .map(|mut u| {
                if let Some(b) = disk.uploads.get(&u.blob) {
                    u.md5 = hex::encode(b.md5.clone().finalize());
                }
                u
            })
            .collect();
        for (name, bytes) in image_writes {
            write_atomic(&self.blobs, &name, &bytes)?;
            disk.blobs.insert(name);
        }

        let (pnx_json, picture_writes) = {
            let st = lock(&app.pnx);
            let writes: Vec<(String, Bytes)> = st
                .picture_bytes()
                .map(|(id, b)| (picture_blob_name(id), b.clone()))
                .filter(|(name, _)| !disk.blobs.contains(name))
                .collect();
            (serde_json::to_value(&*st)?, writes)
        };
        for (name, bytes) in picture_writes {
            write_atomic(&self.blobs, &name, &bytes)?;
            disk.blobs.insert(name);
        }

        let state = json!({
            "version": VERSION,
            "saved_at_ms": clock::now_ms(),
            "auth": serde_json::to_value(&*lock(&app.auth))?,
            "mapillary": mly_json,
            "mapillary_uploads": serde_json::to_value(&uploads)?,
            "kartaview": serde_json::to_value(&*lock(&app.kv))?,
            "panoramax": pnx_json,
            "mtpw": serde_json::to_value(&*lock(&app.mtpw))?,
        });
        write_atomic(&self.dir, STATE_FILE, &serde_json::to_vec(&state)?)
    }

    /// Appends to (or rewrites) an upload blob, synced, and notes what is on disk.
    fn write_upload(&self, disk: &mut OnDisk, w: UploadWrite) -> io::Result<()> {
        let path = self.blobs.join(&w.name);
        let mut blob = match (w.keep, disk.uploads.remove(&w.name)) {
            (Some(len), Some(b)) if b.len == len => {
                let mut f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(len)?;
                std::io::Seek::seek(&mut f, io::SeekFrom::Start(len))?;
                f.write_all(&w.bytes)?;
                f.sync_all()?;
                b
            }
            _ => {
                let mut f = File::create(&path)?;
                f.write_all(&w.bytes)?;
                f.sync_all()?;
                sync_dir(&self.blobs);
                UploadBlob {
                    len: 0,
                    md5: Md5::new(),
                }
            }
        };
        blob.len += w.bytes.len() as u64;
        blob.md5.update(&w.bytes);
        disk.uploads.insert(w.name, blob);
        Ok(())
    }
}

/// Saves after changes, at most every [`SAVE_INTERVAL`], until aborted.
pub(crate) async fn run_saver(app: AppRef) {
    loop {
        let Some(p) = app.persist.as_ref() else {
            return;
        };
        p.changed.notified().await;
        if p.dirty.swap(false, Ordering::SeqCst) {
            let a = app.clone();
            let result = tokio::task::spawn_blocking(move || match a.persist.as_ref() {
                Some(p) => p.save(&a),
                None => Ok(()),
            })
            .await;
            let failed = match result {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = failed {
                tracing::warn!(error = %e, "could not save the sandbox state; retrying");
                p.touch();
            }
        }
        tokio::time::sleep(SAVE_INTERVAL).await;
    }
}
