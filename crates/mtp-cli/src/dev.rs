//! `mtp dev`: tools for developers and benchmarks (synthetic photo folders).
//!
//! `mtp dev gen-photos <dir> --scenario <name>` writes folders built to hit each rule of
//! mapillary_tools' sequence building (PROTOCOLS §2.5), so that `bench/agreement.py` can
//! check that `mtp prepare` keeps, drops and splits exactly as `mapillary_tools process`
//! does. Every scenario is deterministic: the same command writes the same bytes.

use clap::{Args, Subcommand, ValueEnum};
use mtp_core::photo::fixture::{
    FixturePhoto, TrackSpec, fixture_bytes, gpx_for, track_photos, with_header_pad,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum DevCommand {
    /// Write a folder of small geotagged JPEGs along a synthetic track (benchmarks, demos,
    /// and folders that exercise each sequence rule: see --scenario).
    GenPhotos(GenArgs),
}

#[derive(Args)]
pub struct GenArgs {
    /// Folder to create (must be empty or missing).
    pub dir: PathBuf,
    /// How many photos (the `walk` scenario; the others have fixed sizes).
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Metres between photos.
    #[arg(long, default_value_t = 3.0)]
    pub spacing: f64,
    /// Seconds between photos.
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
    /// Write equirectangular 360° photos.
    #[arg(long)]
    pub pano: bool,
    /// Which sequence rule the folder exercises (PROTOCOLS §2.5).
    #[arg(long, value_enum, default_value_t = Scenario::Walk)]
    pub scenario: Scenario,
    /// Make every photo this many megabytes (10^6 bytes), like a real camera's, with
    /// pseudo-random bytes after the end of its tiny image (readers ignore them; uploads
    /// send them all). For memory and throughput benchmarks.
    #[arg(long, value_name = "MB")]
    pub size_mb: Option<f64>,
    /// Give every photo a header this many KiB larger, as a camera's preview image and
    /// profiles make it (20–70 KB): APP2 segments after the EXIF. For reading benchmarks.
    #[arg(long, value_name = "KIB")]
    pub header_pad_kib: Option<usize>,
}

/// Folders built to hit one rule of mapillary_tools' sequence building each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// A plain track: one sequence (two or more past 1,000 photos).
    Walk,
    /// Gaps of 90 s (split) and of exactly 60 s (no split).
    TimeGap,
    /// Jumps of 150 m (split) and 95 m (no split).
    DistanceGap,
    /// Photos ≤ 0.1 m and ≤ 5° from the last kept one (dropped), others with a heading
    /// more than 5° off (kept), one without heading (dropped), a chain, a 359°/2° pair.
    Duplicates,
    /// A part at ~540 km/h average (rejected whole), a walk, a part at ~380 km/h (kept).
    TooFast,
    /// Two photos at (0, 0) inside a walk.
    NullIsland,
    /// 1,500 photos of 2 MP: split at 1,000 photos; and, in the same folder, 600 photos of
    /// 12 MP (another group): split at 500 by the 6 G pixel cap.
    Cap,
    /// GPS glitches jumping out and back mid-track: one photo, then two photos in a row.
    Zigzag,
    /// GPS glitches where mapillary_tools does not look for them: photo 2 of a 30-photo
    /// walk, and photo 2 of a 5-photo walk (after a time gap).
    ZigzagStart,
    /// Photos sharing a timestamp: five on a whole second, three on a sub-second with
    /// the next photo 200 ms later, and the last two of the folder.
    IdenticalTimes,
    /// Two cameras interleaved in time in one folder, and a third "camera" that differs
    /// only by resolution: three sequences.
    Cameras,
    /// No GPSImgDirection at all: headings come from the bearing to the next photo; a
    /// lone photo (after a time gap) gets 0.
    NoHeading,
    /// Every scenario above in its own subfolder (`walk` with 100 photos).
    Mixed,
    /// 60 photos with no position and no heading, and `track.gpx`: a winding walk logged
    /// every second, the photos taken every 2 s half-way between two points (geotag them
    /// with `--gpx <folder>/track.gpx`).
    Gpx,
}

impl Scenario {
    /// The scenarios `mixed` is made of, with their subfolder names.
    const PARTS: [Scenario; 12] = [
        Scenario::Walk,
        Scenario::TimeGap,
        Scenario::DistanceGap,
        Scenario::Duplicates,
        Scenario::TooFast,
        Scenario::NullIsland,
        Scenario::Cap,
        Scenario::Zigzag,
        Scenario::ZigzagStart,
        Scenario::IdenticalTimes,
        Scenario::Cameras,
        Scenario::NoHeading,
    ];

    /// The kebab-case name used on the command line, also the subfolder name in `mixed`.
    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }

    /// File name prefix: unique per scenario so that file names stay unique in `mixed`.
    fn prefix(self) -> String {
        format!("{}_", self.name().replace('-', ""))
    }
}

/// One photo to write, relative to the output folder.
struct Shot {
    rel: PathBuf,
    photo: FixturePhoto,
}

const M_PER_DEG: f64 = 111_320.0;

/// Moves a photo `north_m` metres north and `east_m` metres east.
fn shift(p: &mut FixturePhoto, north_m: f64, east_m: f64) {
    if let (Some(lat), Some(lon)) = (p.lat, p.lon) {
        let cos_lat = lat.to_radians().cos().abs().max(1e-6);
        p.lat = Some(lat + north_m / M_PER_DEG);
        p.lon = Some(lon + east_m / (M_PER_DEG * cos_lat));
    }
}

/// Adds `ms` milliseconds to a photo's capture time.
fn delay(p: &mut FixturePhoto, ms: i64) {
    p.captured_at_ms = p.captured_at_ms.map(|t| t + ms);
}

/// A track of `n` photos that starts one `spec.spacing_m` step after `after` (in the
/// direction of travel) and `gap_ms` after its time; from `spec`'s start if `None`.
fn segment(
    n: usize,
    spec: &TrackSpec,
    after: Option<&FixturePhoto>,
    gap_ms: i64,
) -> Vec<FixturePhoto> {
    let Some(prev) = after else {
        return track_photos(n, spec);
    };
    let spec = TrackSpec {
        start_lat: prev.lat.unwrap_or(spec.start_lat),
        start_lon: prev.lon.unwrap_or(spec.start_lon),
        start_time_ms: prev.captured_at_ms.unwrap_or(spec.start_time_ms) + gap_ms
            - spec.interval_ms,
        ..spec.clone()
    };
    track_photos(n + 1, &spec).into_iter().skip(1).collect()
}

/// The photos of a scenario, in capture order, named `{prefix}{index:05}.jpg` in `sub`.
fn named(scenario: Scenario, sub: &Path, photos: Vec<FixturePhoto>) -> Vec<Shot> {
    let prefix = scenario.prefix();
    photos
        .into_iter()
        .enumerate()
        .map(|(i, photo)| Shot {
            rel: sub.join(format!("{prefix}{i:05}.jpg")),
            photo,
        })
        .collect()
}

/// The photos of `scenario`, relative to the output folder.
fn scenario_shots(scenario: Scenario, args: &GenArgs, sub: &Path) -> Vec<Shot> {
    let spec = TrackSpec {
        spacing_m: args.spacing,
        interval_ms: (args.interval * 1000.0).round() as i64,
        is_360: args.pano,
        width: Some(if args.pano { 5760 } else { 4000 }),
        height: Some(if args.pano { 2880 } else { 3000 }),
        ..TrackSpec::default()
    };
    let photos = match scenario {
        Scenario::Walk => track_photos(args.count, &spec),
        Scenario::Cap => return cap(&spec, sub),
        Scenario::TimeGap => {
            let mut p = segment(30, &spec, None, 0);
            let b = segment(30, &spec, p.last(), 90_000);
            p.extend(b);
            let c = segment(30, &spec, p.last(), 60_000);
            p.extend(c);
            p
        }
        Scenario::DistanceGap => {
            let mut p = track_photos(90, &spec);
            // 150 m east before photo 30 (split), 95 m north before photo 60 (kept).
            for (i, photo) in p.iter_mut().enumerate() {
                if i >= 30 {
                    shift(photo, 0.0, 150.0);
                    delay(photo, 4_000);
                }
                if i >= 60 {
                    shift(photo, 95.0, 0.0);
                    delay(photo, 4_000);
                }
            }
            p
        }
        Scenario::Duplicates => duplicates(&spec),
        Scenario::TooFast => {
            let fast = TrackSpec {
                spacing_m: 30.0,
                interval_ms: 200,
                ..spec.clone()
            };
            let mut p = segment(20, &fast, None, 0);
            let walk = segment(20, &spec, p.last(), 120_000);
            p.extend(walk);
            let legal = TrackSpec {
                spacing_m: 21.1,
                interval_ms: 200,
                ..spec.clone()
            };
            let b = segment(20, &legal, p.last(), 120_000);
            p.extend(b);
            p
        }
        Scenario::NullIsland => {
            let mut p = track_photos(30, &spec);
            for i in [10, 20] {
                p[i].lat = Some(0.0);
                p[i].lon = Some(0.0);
            }
            p
        }
        Scenario::Zigzag => {
            let mut p = track_photos(60, &spec);
            // Sideways (the track heads north-east) so the glitch is clearly off-track.
            shift(&mut p[20], -141.0, 141.0);
            shift(&mut p[40], 106.0, -106.0);
            shift(&mut p[41], 106.0, -106.0);
            p
        }
        Scenario::ZigzagStart => {
            let mut p = track_photos(30, &spec);
            shift(&mut p[2], -141.0, 141.0);
            let mut short = segment(5, &spec, p.last(), 120_000);
            shift(&mut short[2], -141.0, 141.0);
            p.extend(short);
            p
        }
        Scenario::IdenticalTimes => {
            let mut p = track_photos(30, &spec);
            let t = |p: &[FixturePhoto], i: usize| p[i].captured_at_ms.unwrap_or_default();
            let t5 = t(&p, 5);
            for photo in &mut p[6..10] {
                photo.captured_at_ms = Some(t5);
            }
            let t15 = t(&p, 15) + 500;
            for photo in &mut p[15..18] {
                photo.captured_at_ms = Some(t15);
            }
            p[18].captured_at_ms = Some(t15 + 200);
            let t28 = t(&p, 28);
            p[29].captured_at_ms = Some(t28);
            p
        }
        Scenario::Cameras => return cameras(&spec, sub),
        Scenario::NoHeading => {
            let spec = TrackSpec {
                with_heading: false,
                ..spec.clone()
            };
            let mut p = track_photos(20, &spec);
            let lone = segment(1, &spec, p.last(), 120_000);
            p.extend(lone);
            p
        }
        Scenario::Gpx => gpx_walk(&spec).1,
        Scenario::Mixed => {
            return Scenario::PARTS
                .iter()
                .flat_map(|&s| {
                    let part = GenArgs {
                        dir: args.dir.clone(),
                        count: 100,
                        spacing: args.spacing,
                        interval: args.interval,
                        pano: args.pano,
                        scenario: s,
                        size_mb: args.size_mb,
                        header_pad_kib: args.header_pad_kib,
                    };
                    scenario_shots(s, &part, &sub.join(s.name()))
                })
                .collect();
        }
    };
    named(scenario, sub, photos)
}

/// The `gpx` scenario: the logged track (one point a second along a path that keeps
/// turning, 1.5 m/s) and the photos (every 2 s, 0.5 s after a point) without GPS tags.
fn gpx_walk(spec: &TrackSpec) -> (Vec<FixturePhoto>, Vec<FixturePhoto>) {
    let mut at = FixturePhoto {
        lat: Some(spec.start_lat),
        lon: Some(spec.start_lon),
        captured_at_ms: Some(spec.start_time_ms),
        ..FixturePhoto::default()
    };
    let mut track = Vec::with_capacity(125);
    for t in 0..125 {
        track.push(at.clone());
        let heading = (30.0 + 40.0 * (f64::from(t) / 20.0).sin()).to_radians();
        shift(&mut at, 1.5 * heading.cos(), 1.5 * heading.sin());
        delay(&mut at, 1000);
    }
    let photos = track_photos(60, spec)
        .into_iter()
        .enumerate()
        .map(|(k, p)| FixturePhoto {
            lat: None,
            lon: None,
            heading: None,
            captured_at_ms: Some(spec.start_time_ms + 2000 * k as i64 + 500),
            ..p
        })
        .collect();
    (track, photos)
}

/// A walk with extra photos taken on the spot every few photos (rule 5).
fn duplicates(spec: &TrackSpec) -> Vec<FixturePhoto> {
    let base = track_photos(30, spec);
    let mut out = Vec::with_capacity(base.len() + 12);
    // (metres north of the base photo, heading change, heading kept?) for the photos
    // taken 200 ms, 400 ms… after base photo `i`.
    let extras = |i: usize| -> Vec<(f64, f64, bool)> {
        match i {
            // Within 0.1 m and 5°: all three dropped (each compared with photo 5).
            5 => vec![(0.03, 2.0, true), (0.05, -3.0, true), (0.08, 1.0, true)],
            // Within 0.1 m but 30° and 90° off: both kept.
            10 => vec![(0.02, 30.0, true), (0.04, 90.0, true)],
            // No heading: distance alone decides, dropped.
            15 => vec![(0.05, 0.0, false)],
            // A slow drift: 0.06 m (dropped), 0.12 m from the last kept (kept), then
            // 0.06 m from that one (dropped).
            20 => vec![(0.06, 0.0, true), (0.12, 0.0, true), (0.18, 0.0, true)],
            _ => Vec::new(),
        }
    };
    for (i, mut p) in base.into_iter().enumerate() {
        if i == 25 {
            p.heading = Some(359.0);
        }
        let more: Vec<FixturePhoto> = if i == 25 {
            // 359° and 2° are 3° apart: dropped.
            let mut d = p.clone();
            shift(&mut d, 0.03, 0.0);
            delay(&mut d, 200);
            d.heading = Some(2.0);
            vec![d]
        } else {
            extras(i)
                .into_iter()
                .zip(1_i64..)
                .map(|((north, turn, has_heading), k)| {
                    let mut d = p.clone();
                    shift(&mut d, north, 0.0);
                    delay(&mut d, 200 * k);
                    d.heading = if has_heading {
                        p.heading.map(|h| (h + turn).rem_euclid(360.0))
                    } else {
                        None
                    };
                    d
                })
                .collect()
        };
        out.push(p);
        out.extend(more);
    }
    out
}

/// Rule 3's caps: 1,500 photos of 1920×1080 split at 1,000 photos, and 600 photos of
/// 4000×3000 (a separate group: another resolution) split at 500 by the 6 G pixel cap.
fn cap(spec: &TrackSpec, sub: &Path) -> Vec<Shot> {
    let small = TrackSpec {
        width: Some(1920),
        height: Some(1080),
        ..spec.clone()
    };
    let mut shots = named(Scenario::Cap, sub, track_photos(1500, &small));
    let big = TrackSpec {
        start_time_ms: spec.start_time_ms + 500,
        width: Some(4000),
        height: Some(3000),
        ..spec.clone()
    };
    let mut px = track_photos(600, &big);
    for p in &mut px {
        shift(p, 0.0, 10.0);
    }
    let prefix = Scenario::Cap.prefix();
    shots.extend(px.into_iter().enumerate().map(|(i, photo)| Shot {
        rel: sub.join(format!("{prefix}px{i:05}.jpg")),
        photo,
    }));
    shots
}

/// Rule 1: photos are grouped by folder and camera before anything else.
fn cameras(spec: &TrackSpec, sub: &Path) -> Vec<Shot> {
    let every_2s = TrackSpec {
        interval_ms: 2 * spec.interval_ms,
        ..spec.clone()
    };
    let a = track_photos(20, &every_2s);
    let other = TrackSpec {
        start_time_ms: spec.start_time_ms + spec.interval_ms,
        model: Some("Other Cam".into()),
        serial: Some("FX-0002".into()),
        ..every_2s.clone()
    };
    let mut b = track_photos(20, &other);
    for p in &mut b {
        shift(p, 0.0, 10.0);
    }
    let video_mode = TrackSpec {
        start_time_ms: spec.start_time_ms + 500,
        width: Some(1920),
        height: Some(1080),
        ..every_2s.clone()
    };
    let mut c = track_photos(20, &video_mode);
    for p in &mut c {
        shift(p, 0.0, -10.0);
    }
    let prefix = Scenario::Cameras.prefix();
    [("a", a), ("b", b), ("c", c)]
        .into_iter()
        .flat_map(|(cam, photos)| {
            let prefix = &prefix;
            photos.into_iter().enumerate().map(move |(i, photo)| Shot {
                rel: sub.join(format!("{prefix}{cam}{i:05}.jpg")),
                photo,
            })
        })
        .collect()
}

/// Writes `jpeg` followed by pseudo-random bytes up to `mb` megabytes, a few MB at a time
/// (a folder of large photos must not need them in memory).
fn write_padded(path: &Path, jpeg: &[u8], mb: f64, seed: u64) -> std::io::Result<()> {
    use std::io::Write;
    let total = (mb * 1e6).max(0.0) as usize;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    out.write_all(jpeg)?;
    // Not compressible and different per photo, as image data is (xorshift64).
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = total.saturating_sub(jpeg.len());
    let mut block = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(block.len());
        for chunk in block[..n].chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        out.write_all(&block[..n])?;
        left -= n;
    }
    out.flush()
}

pub fn run(command: DevCommand) -> anyhow::Result<ExitCode> {
    match command {
        DevCommand::GenPhotos(args) => {
            if args.dir.exists() && std::fs::read_dir(&args.dir)?.next().is_some() {
                anyhow::bail!("{} is not empty: choose a new folder", args.dir.display());
            }
            let shots = scenario_shots(args.scenario, &args, Path::new(""));
            let mut written = 0_usize;
            for (k, shot) in shots.into_iter().enumerate() {
                let path = args.dir.join(&shot.rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let photo = FixturePhoto {
                    // Byte-unique across the whole folder, whatever the scenario did.
                    unique_id: Some(format!("{:016x}{k:016x}", 0x4d54_5044_u64)),
                    ..shot.photo
                };
                let mut jpeg = fixture_bytes(&photo);
                if let Some(kib) = args.header_pad_kib {
                    jpeg = with_header_pad(&jpeg, kib * 1024);
                }
                match args.size_mb {
                    None => std::fs::write(&path, &jpeg)?,
                    Some(mb) => write_padded(&path, &jpeg, mb, k as u64)?,
                }
                written += 1;
            }
            std::fs::create_dir_all(&args.dir)?;
            if args.scenario == Scenario::Gpx {
                let (track, _) = gpx_walk(&TrackSpec::default());
                std::fs::write(args.dir.join("track.gpx"), gpx_for(&track))?;
            }
            eprintln!(
                "Wrote {written} photos ({} scenario) to {}",
                args.scenario.name(),
                args.dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(scenario: Scenario) -> GenArgs {
        GenArgs {
            dir: PathBuf::from("unused"),
            count: 100,
            spacing: 3.0,
            interval: 1.0,
            pano: false,
            scenario,
            size_mb: None,
            header_pad_kib: None,
        }
    }

    #[test]
    fn mixed_has_unique_file_names_in_one_subfolder_per_scenario() {
        let shots = scenario_shots(Scenario::Mixed, &args(Scenario::Mixed), Path::new(""));
        let mut names: Vec<String> = shots
            .iter()
            .filter_map(|s| s.rel.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        let total = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), total);
        let subfolders: std::collections::BTreeSet<_> =
            shots.iter().filter_map(|s| s.rel.parent()).collect();
        assert_eq!(subfolders.len(), Scenario::PARTS.len());
        assert!(shots.iter().all(|s| s.photo.captured_at_ms.is_some()));
    }

    #[test]
    fn scenarios_have_their_sizes() {
        let n = |s| scenario_shots(s, &args(s), Path::new("")).len();
        assert_eq!(n(Scenario::Walk), 100);
        assert_eq!(n(Scenario::Cap), 2100);
        assert_eq!(n(Scenario::TimeGap), 90);
        assert_eq!(n(Scenario::Duplicates), 30 + 3 + 2 + 1 + 3 + 1);
        assert_eq!(n(Scenario::Cameras), 60);
        assert_eq!(n(Scenario::Gpx), 60);
        let (track, photos) = gpx_walk(&TrackSpec::default());
        // Every photo lies within the track, and has nothing to be geotagged by but it.
        let (first, last) = (
            track[0].captured_at_ms,
            track[track.len() - 1].captured_at_ms,
        );
        assert!(photos.iter().all(|p| p.lat.is_none()
            && p.heading.is_none()
            && p.captured_at_ms > first
            && p.captured_at_ms < last));
        assert_eq!(Scenario::IdenticalTimes.name(), "identical-times");
    }

    #[test]
    fn time_gap_has_a_90_s_and_a_60_s_gap() {
        let shots = scenario_shots(Scenario::TimeGap, &args(Scenario::TimeGap), Path::new(""));
        let t: Vec<i64> = shots
            .iter()
            .filter_map(|s| s.photo.captured_at_ms)
            .collect();
        let gaps: Vec<i64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps[29], 90_000);
        assert_eq!(gaps[59], 60_000);
        assert_eq!(gaps.iter().filter(|&&g| g != 1000).count(), 2);
    }
}
