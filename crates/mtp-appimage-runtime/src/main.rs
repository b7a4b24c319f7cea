//! The runtime at the head of MTP Desktop's AppImage.
//!
//! An AppImage (type 2) is a small program followed by a squashfs image of the app's folder
//! (the AppDir, with `AppRun` at its top). Starting the AppImage starts that program, which
//! makes the folder reachable and runs `AppRun` with the AppImage's arguments.
//!
//! AppImageKit's runtime mounts the image with FUSE. This one unpacks it instead, once, into
//! a private folder of the temporary directory named after the image
//! (`$TMPDIR/.mount_mtp-desktop-<key>`, the prefix Tauri expects of an AppImage's files), and
//! runs the app from there: no FUSE needed, and a second start (a link handed to the running
//! app) costs no unpacking. A folder left by another user, or not private, is never used.
//! Unpacking a new version removes the folders of earlier ones that nothing runs from.
//!
//! As AppImageKit's runtime, it sets `APPIMAGE` (this file), `APPDIR` (the unpacked folder),
//! `OWD` (the folder it was started from) and `ARGV0`, and answers `--appimage-offset`,
//! `--appimage-extract` (into `./squashfs-root`), `--appimage-version` and `--appimage-help`.

use backhand::{FilesystemReader, InnerNode};
use std::collections::hash_map::DefaultHasher;
use std::ffi::OsString;
use std::fs::{self, DirBuilder, File};
use std::hash::{Hash, Hasher};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{SystemTime, UNIX_EPOCH};

/// Names the unpacked folders: `.mount_<NAME>-<key>`.
const NAME: &str = "mtp-desktop";
/// What the AppImage's files say the app is, in messages.
const PRODUCT: &str = "MTP Desktop";
/// squashfs' magic, at the start of the image.
const SQUASHFS_MAGIC: &[u8; 4] = b"hsqs";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{PRODUCT} (AppImage): {message}");
            // What a shell answers for a command that could not be run.
            ExitCode::from(127)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let image = fs::read_link("/proc/self/exe")
        .map_err(|e| format!("cannot tell which file this AppImage is ({e})"))?;
    let mut args = std::env::args_os();
    let argv0 = args
        .next()
        .unwrap_or_else(|| image.clone().into_os_string());
    let args: Vec<OsString> = args.collect();
    let offset = squashfs_offset(&image)?;

    match args.first().and_then(|a| a.to_str()) {
        Some("--appimage-offset") => {
            println!("{offset}");
            return Ok(ExitCode::SUCCESS);
        }
        Some("--appimage-extract") => {
            let to = Path::new("squashfs-root");
            unpack(&image, offset, to)
                .map_err(|e| format!("cannot unpack into {}: {e}", to.display()))?;
            println!("{}", to.display());
            return Ok(ExitCode::SUCCESS);
        }
        Some("--appimage-version") => {
            println!("{NAME} AppImage runtime {}", env!("CARGO_PKG_VERSION"));
            return Ok(ExitCode::SUCCESS);
        }
        Some("--appimage-help") => {
            println!("{}", HELP.trim());
            return Ok(ExitCode::SUCCESS);
        }
        Some(other) if other.starts_with("--appimage-") => {
            return Err(format!(
                "unknown option {other}; --appimage-help lists the options"
            ));
        }
        _ => {}
    }

    let appdir = unpacked(&image, offset)?;
    let owd = std::env::current_dir().unwrap_or_default();
    // Only returns if the app could not be started.
    let err = Command::new(appdir.join("AppRun"))
        .arg0(&argv0)
        .args(&args)
        .env("APPIMAGE", &image)
        .env("APPDIR", &appdir)
        .env("OWD", owd)
        .env("ARGV0", &argv0)
        .exec();
    Err(format!(
        "cannot start {}: {err}",
        appdir.join("AppRun").display()
    ))
}

const HELP: &str = "
This AppImage holds MTP Desktop. Start it to run the app; links given as arguments
(app.mtp.desktop://…) are handed to it.

Options of the AppImage itself:
  --appimage-extract   unpack the app's folder into ./squashfs-root
  --appimage-offset    print where the squashfs image starts in this file
  --appimage-version   print this runtime's version
  --appimage-help      print this help

The app is unpacked once into $TMPDIR/.mount_mtp-desktop-<key> (a private folder) and
started from there. Unpacking a new version removes the folders of earlier ones that no
running app uses.
";

/// Where the squashfs image starts: right after this runtime's ELF file, whose section
/// header table comes last (as AppImageKit's runtime computes it).
fn squashfs_offset(image: &Path) -> Result<u64, String> {
    let bad = |why: &str| format!("{} is not a complete AppImage: {why}", image.display());
    let mut file =
        File::open(image).map_err(|e| format!("cannot read {}: {e}", image.display()))?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header).map_err(|_| bad("too short"))?;
    let offset = elf_end(&header)
        .ok_or_else(|| bad("its head is not a 64-bit little-endian ELF program"))?;
    let mut magic = [0u8; 4];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut magic))
        .map_err(|_| bad("no squashfs image follows the runtime"))?;
    if &magic != SQUASHFS_MAGIC {
        return Err(bad("no squashfs image follows the runtime"));
    }
    Ok(offset)
}

/// The end of a 64-bit little-endian ELF file from its header: the section header table's
/// offset plus its size.
fn elf_end(header: &[u8; 64]) -> Option<u64> {
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let u16_at = |i: usize| u16::from_le_bytes([header[i], header[i + 1]]);
    let shoff = u64::from_le_bytes(header[0x28..0x30].try_into().ok()?);
    let entry_size = u64::from(u16_at(0x3A));
    let entries = u64::from(u16_at(0x3C));
    shoff.checked_add(entry_size.checked_mul(entries)?)
}

/// The unpacked app folder for this image, unpacking it first if no usable one is there.
fn unpacked(image: &Path, offset: u64) -> Result<PathBuf, String> {
    let tmp = std::env::temp_dir();
    let key =
        image_key(image, offset).map_err(|e| format!("cannot read {}: {e}", image.display()))?;
    let dir = tmp.join(format!(".mount_{NAME}-{key:016x}"));
    match usable(&dir) {
        Usable::Yes => return Ok(dir),
        Usable::Broken => {
            // Ours but incomplete (a cleaner took some files): unpack it again.
            fs::remove_dir_all(&dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
        }
        Usable::Absent | Usable::NotOurs => {}
    }
    let fresh = tmp.join(format!(
        ".mount_{NAME}-{key:016x}.{}-{}",
        std::process::id(),
        nanos()
    ));
    let failed = |e: io::Error| {
        let _ = fs::remove_dir_all(&fresh);
        if e.kind() == io::ErrorKind::InvalidData {
            format!(
                "{} is damaged or incomplete ({e}): download it again",
                image.display()
            )
        } else {
            format!(
                "cannot unpack the app into {} ({e}): free some space there, or set TMPDIR to another folder",
                tmp.display()
            )
        }
    };
    DirBuilder::new()
        .mode(0o700)
        .create(&fresh)
        .map_err(failed)?;
    unpack(image, offset, &fresh).map_err(failed)?;
    if usable(&dir) == Usable::NotOurs {
        // Someone else's folder has the name: run from a private one of our own.
        return Ok(fresh);
    }
    match fs::rename(&fresh, &dir) {
        Ok(()) => {
            // A new image (another version, or a copy) was just unpacked: the folders of
            // earlier ones no longer running go, so they do not pile up in $TMPDIR (often
            // a tmpfs, in memory).
            clear_others(&tmp, &dir, &running_from());
            Ok(dir)
        }
        // Another start unpacked the same image at the same moment: use theirs.
        Err(_) if usable(&dir) == Usable::Yes => {
            let _ = fs::remove_dir_all(&fresh);
            Ok(dir)
        }
        Err(_) => Ok(fresh),
    }
}

/// Removes this user's other unpacked folders in `tmp` (`.mount_<NAME>-<key>`) that no
/// process in `in_use` runs from, and the half-unpacked ones (`.mount_<NAME>-<key>.<pid>-<n>`)
/// whose process is gone. Folders of other users, other names and anything that is not a
/// directory are left alone; so is `keep`. Best effort: a folder that cannot be removed
/// stays.
fn clear_others(tmp: &Path, keep: &Path, in_use: &[PathBuf]) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    let me = fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let prefix = format!(".mount_{NAME}-");
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if path == keep || !meta.is_dir() || Some(meta.uid()) != me {
            continue;
        }
        match rest.split_once('.') {
            // Being unpacked (or removed) by a process still running: not ours to touch.
            Some((_, pid_n)) => {
                let pid = pid_n.split_once('-').map_or(pid_n, |(pid, _)| pid);
                if pid.is_empty() || Path::new("/proc").join(pid).exists() {
                    continue;
                }
            }
            None if in_use.iter().any(|p| p.starts_with(&path)) => continue,
            None => {}
        }
        // Renamed first, so a start of that version meanwhile unpacks anew instead of
        // running from a folder being emptied; a removal cut short is finished when a new
        // image is next unpacked.
        let doomed = tmp.join(format!(
            "{prefix}{}.{}-{}",
            rest.split_once('.').map_or(rest, |(key, _)| key),
            std::process::id(),
            nanos()
        ));
        if fs::rename(&path, &doomed).is_ok() {
            let _ = fs::remove_dir_all(&doomed);
        }
    }
}

/// The programs and working folders of the processes this user may look at.
fn running_from() -> Vec<PathBuf> {
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .flat_map(|p| [p.path().join("exe"), p.path().join("cwd")])
        .filter_map(|link| fs::read_link(link).ok())
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
enum Usable {
    Yes,
    Absent,
    /// Ours, but without its `AppRun`.
    Broken,
    /// Not a directory, owned by someone else, or writable by others: never run from it.
    NotOurs,
}

fn usable(dir: &Path) -> Usable {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return Usable::Absent;
    };
    // `/proc/self` belongs to this process's effective user.
    let me = fs::metadata("/proc/self").map(|m| m.uid()).ok();
    if !meta.is_dir() || Some(meta.uid()) != me || meta.mode() & 0o022 != 0 {
        return Usable::NotOurs;
    }
    if fs::symlink_metadata(dir.join("AppRun")).is_ok() && dir.join("AppRun").exists() {
        Usable::Yes
    } else {
        Usable::Broken
    }
}

/// Names this image: its size, its modification time and its squashfs superblock (which
/// holds the image's build time and size), so a new version of the AppImage, or a rebuilt
/// one, never runs from an older one's folder.
fn image_key(image: &Path, offset: u64) -> io::Result<u64> {
    let mut file = File::open(image)?;
    let meta = file.metadata()?;
    let mut superblock = [0u8; 96];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut superblock)?;
    let mut h = DefaultHasher::new();
    (
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        offset,
        superblock,
    )
        .hash(&mut h);
    Ok(h.finish())
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// Unpacks the squashfs image at `offset` of `image` into the folder `to` (created if
/// needed): folders, files with their permission bits (less set-id bits and write access
/// for others), and symbolic links. Devices, pipes and sockets, which an AppDir never
/// holds, are skipped; so is any path that would leave `to`.
fn unpack(image: &Path, offset: u64, to: &Path) -> io::Result<()> {
    let file = BufReader::new(File::open(image)?);
    // backhand's errors carry no text (their texts are a feature left out), so say what it
    // means here.
    let fs = FilesystemReader::from_reader_with_offset(file, offset).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "its squashfs image is cut short or damaged",
        )
    })?;
    fs::create_dir_all(to)?;
    let mut folders = Vec::new();
    for node in fs.files() {
        let Some(relative) = inside(&node.fullpath) else {
            continue;
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let path = to.join(&relative);
        let mode = u32::from(node.header.permissions) & 0o755;
        match &node.inner {
            InnerNode::Dir(_) => {
                match DirBuilder::new().mode(0o700).create(&path) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
                folders.push((path, mode));
            }
            InnerNode::File(f) => {
                let mut out = File::create(&path)?;
                io::copy(&mut fs.file(f).reader(), &mut out)?;
                out.set_permissions(fs::Permissions::from_mode(mode))?;
            }
            InnerNode::Symlink(link) => {
                // `--appimage-extract` again into the same folder replaces what is there.
                if fs::symlink_metadata(&path).is_ok() {
                    fs::remove_file(&path)?;
                }
                std::os::unix::fs::symlink(&link.link, &path)?;
            }
            _ => {}
        }
    }
    // Folders last, deepest first, so a read-only folder is filled before it closes.
    for (path, mode) in folders.into_iter().rev() {
        fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o700))?;
    }
    Ok(())
}

/// `path` (absolute in the image) as a relative path of plain names, or `None` if it has
/// `..` or anything else that could lead out of the folder it is unpacked into.
fn inside(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => out.push(name),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_squashfs_starts_where_the_elf_file_ends() {
        let mut header = [0u8; 64];
        header[..6].copy_from_slice(b"\x7fELF\x02\x01");
        header[0x28..0x30].copy_from_slice(&1000u64.to_le_bytes());
        header[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        header[0x3C..0x3E].copy_from_slice(&10u16.to_le_bytes());
        assert_eq!(elf_end(&header), Some(1640));
        // 32-bit or big-endian files are not this runtime's.
        header[4] = 1;
        assert_eq!(elf_end(&header), None);
        assert_eq!(elf_end(&[0u8; 64]), None);
    }

    #[test]
    fn paths_that_leave_the_folder_are_refused() {
        assert_eq!(
            inside(Path::new("/usr/bin/app")),
            Some(PathBuf::from("usr/bin/app"))
        );
        assert_eq!(inside(Path::new("/")), Some(PathBuf::new()));
        assert_eq!(inside(Path::new("/usr/../../etc/passwd")), None);
    }

    /// An image made by squashfs-tools' mksquashfs, as `make bundle` makes it, behind other
    /// bytes as it is behind the runtime, unpacks to the same files, modes and links.
    #[test]
    fn an_image_made_by_mksquashfs_unpacks_whole() {
        let dir = tempfile::tempdir().unwrap();
        let appdir = dir.path().join("AppDir");
        fs::create_dir_all(appdir.join("usr/bin")).unwrap();
        fs::create_dir_all(appdir.join("usr/share/doc")).unwrap();
        let program: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        fs::write(appdir.join("usr/bin/app"), &program).unwrap();
        fs::set_permissions(
            appdir.join("usr/bin/app"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        fs::write(appdir.join("usr/share/doc/notes.txt"), "read me").unwrap();
        fs::set_permissions(
            appdir.join("usr/share/doc/notes.txt"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::os::unix::fs::symlink("usr/bin/app", appdir.join("AppRun")).unwrap();
        let squashfs = dir.path().join("app.squashfs");
        let made = Command::new("mksquashfs")
            .arg(&appdir)
            .arg(&squashfs)
            .args(["-root-owned", "-noappend", "-comp", "gzip", "-quiet"])
            .status()
            .expect("mksquashfs (Debian's squashfs-tools, `make system-deps`) must be installed");
        assert!(made.success());
        let head = vec![0x55u8; 4096];
        let image = dir.path().join("app.AppImage");
        fs::write(
            &image,
            [head.clone(), fs::read(&squashfs).unwrap()].concat(),
        )
        .unwrap();

        let to = dir.path().join("out");
        unpack(&image, head.len() as u64, &to).unwrap();
        assert_eq!(fs::read(to.join("usr/bin/app")).unwrap(), program);
        assert_eq!(
            fs::read_to_string(to.join("usr/share/doc/notes.txt")).unwrap(),
            "read me"
        );
        let mode = |p: &str| fs::metadata(to.join(p)).unwrap().mode() & 0o777;
        assert_eq!(mode("usr/bin/app"), 0o755);
        assert_eq!(mode("usr/share/doc/notes.txt"), 0o644);
        assert_eq!(
            fs::read_link(to.join("AppRun")).unwrap(),
            Path::new("usr/bin/app")
        );
        assert_eq!(usable(&to), Usable::Yes);
        // Unpacking again over the same folder (`--appimage-extract` twice) replaces it.
        unpack(&image, head.len() as u64, &to).unwrap();
        assert_eq!(fs::read(to.join("usr/bin/app")).unwrap(), program);
        // The image is read where it starts, not from the file's first byte; a cut file
        // (an interrupted download) is said to be damaged, not a full disk.
        let err = unpack(&image, 0, &dir.path().join("wrong")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let cut = dir.path().join("cut.AppImage");
        fs::write(&cut, &fs::read(&image).unwrap()[..head.len() + 2000]).unwrap();
        let err = unpack(&cut, head.len() as u64, &dir.path().join("cut")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }

    /// After a new version is unpacked, the folders of earlier ones go — unless a process
    /// runs from one, or another start is still unpacking into one.
    #[test]
    fn older_unpacked_folders_not_in_use_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let folder = |name: &str| {
            let p = tmp.path().join(name);
            DirBuilder::new().mode(0o700).create(&p).unwrap();
            File::create(p.join("AppRun")).unwrap();
            p
        };
        let keep = folder(".mount_mtp-desktop-000000000000000a");
        let old = folder(".mount_mtp-desktop-000000000000000b");
        let running = folder(".mount_mtp-desktop-000000000000000c");
        let unpacking = folder(&format!(
            ".mount_mtp-desktop-000000000000000d.{}-1",
            std::process::id()
        ));
        // A pid above the kernel's limit (4194304) never runs.
        let left_by_a_crash = folder(".mount_mtp-desktop-000000000000000e.99999999-1");
        let other_app = folder(".mount_other-000000000000000f");
        fs::write(
            tmp.path().join(".mount_mtp-desktop-0000000000000010"),
            "a file",
        )
        .unwrap();

        let in_use = [running.join("usr/bin/mtp-desktop")];
        clear_others(tmp.path(), &keep, &in_use);

        let mut left: Vec<String> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected: Vec<String> = [&keep, &running, &unpacking, &other_app]
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
            .collect();
        expected.push(".mount_mtp-desktop-0000000000000010".to_string());
        expected.sort();
        assert_eq!(left, expected);
        assert!(!old.exists() && !left_by_a_crash.exists());
    }

    /// This test's own program is among the running ones.
    #[test]
    fn the_running_programs_are_found() {
        let me = fs::read_link("/proc/self/exe").unwrap();
        assert!(running_from().contains(&me));
    }

    #[test]
    fn a_folder_others_may_write_to_is_not_run_from() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        assert_eq!(usable(&app), Usable::Absent);
        DirBuilder::new().mode(0o700).create(&app).unwrap();
        assert_eq!(usable(&app), Usable::Broken);
        std::os::unix::fs::symlink("usr/bin/app", app.join("AppRun")).unwrap();
        assert_eq!(usable(&app), Usable::Broken, "AppRun leads nowhere");
        fs::create_dir_all(app.join("usr/bin")).unwrap();
        File::create(app.join("usr/bin/app")).unwrap();
        assert_eq!(usable(&app), Usable::Yes);
        fs::set_permissions(&app, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(usable(&app), Usable::NotOurs);
        let link = dir.path().join("link");
        fs::set_permissions(&app, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&app, &link).unwrap();
        assert_eq!(
            usable(&link),
            Usable::NotOurs,
            "a symbolic link is not followed"
        );
    }
}
