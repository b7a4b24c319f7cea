//! The sequence-building algorithm behind [`plan_sequences`].

use super::{
    DropReason, DroppedPhoto, GroupKey, Plan, PlanOptions, PlannedPhoto, PlannedSequence,
    SplitReason, pixels_of,
};
use crate::geo::{self, Bbox, PositionCheck};
use crate::photo::{HeadingSource, PhotoMeta, TimeSource};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::Path;

/// A photo while it is being planned. Time and position are unwrapped once up front so
/// the hot loops never touch `Option`s. The metadata is boxed: planning sorts and splits
/// the items several times, each pass moving them into new vectors, and a whole
/// `PhotoMeta` (≈ 280 bytes) per photo in each of those doubled the peak memory of large
/// folders; an `Item` is 64 bytes.
struct Item {
    meta: Box<PhotoMeta>,
    /// Working capture time (ms), spread apart from identical neighbours.
    t: i64,
    original_ms: i64,
    lat: f64,
    lon: f64,
    /// The heading as given, restored on photos that end up dropped so that the
    /// dropped list shows what was read, not what planning made of it.
    original_heading: (Option<f64>, Option<HeadingSource>),
    group: u32,
}

impl Item {
    fn distance_to(&self, other: &Item) -> f64 {
        geo::distance_m(self.lat, self.lon, other.lat, other.lon)
    }

    fn into_dropped(mut self, reason: DropReason, message: String) -> DroppedPhoto {
        (self.meta.heading, self.meta.heading_source) = self.original_heading;
        DroppedPhoto {
            photo: *self.meta,
            reason,
            message,
        }
    }
}

/// Plans upload sequences from photos, following mapillary_tools 0.14.7 (PROTOCOLS §2.5)
/// in its order:
///
/// 0. Photos without a capture time or position, or with unusable coordinates, are
///    dropped first (the reader normally filters them; the planner must not panic).
/// 1. Group by (folder, make, model, serial, width, height); sort by (time, file name,
///    then full path so that the result never depends on input order).
/// 2. Spread photos with identical millisecond timestamps evenly up to min(next photo's
///    time, next whole second).
/// 3. Split on the photo cap, byte cap, pixel cap, or a time gap (checked in that order;
///    the first that fires is the [`SplitReason`]).
/// 4. Drop null-island photos, each on its own as mapillary_tools 0.14.7's
///    `_check_null_island` does (the rest of the sequence is kept; ours also catches
///    positions within [`geo::NULL_ISLAND_EPSILON_DEG`] of (0, 0), theirs only exact 0).
/// 5. Drop duplicates of the last kept photo, then (ours) apply the optional frame
///    spacing, also against the last kept photo. Null island, duplicates and spacing run
///    in one pass, which gives the same result as running them one after the other.
/// 6. Apply `heading_offset_deg` to every read heading and fill missing headings.
/// 7. Reject whole sequences whose average speed (track length ÷ duration) exceeds the
///    limit.
/// 8. Drop zig-zag outliers (ref = i − window; flag i − 1 when the jump i − 1 → i is
///    long and brings the track back towards ref, then walk back from i − 2 to ref + 1
///    flagging the photos that are off the track too, so that a glitch of several photos
///    in a row goes whole). One pass over the original indices.
/// 9. Split on distance gaps.
///
/// Differences from mapillary_tools, and why:
/// - Zig-zag detection starts at photo 2 with ref = max(i − window, 0), and runs on
///   sequences of any length. mapillary_tools 0.14.7 starts at photo `window` (5) and skips
///   sequences shorter than window + 1 (6) photos, so it keeps a glitch among the first
///   photos; its 100 m distance rule then cuts the glitch out as a sequence of its own
///   (a lone photo far off the track). We drop it instead. Mapillary has nothing to
///   reject either way: we only send fewer, better sequences.
/// - When zig-zag outliers are dropped, computed headings of that sequence are
///   recomputed so no photo points at a photo that is no longer there.
/// - Headings marked `Computed` on input (from an earlier plan) are treated as missing,
///   so re-planning after an edit recomputes them instead of keeping stale values.
/// - The heading offset applies to read headings too (a sideways camera's EXIF heading is
///   usually the direction of travel), and to the 0 given to a lone photo.
/// - Sequences are ordered by (folder, start time), not by first appearance, so the
///   same photos in any order give the same plan.
///
/// Runs in O(n log n) (one sort) with a handful of allocations per sequence.
pub fn plan_sequences(photos: Vec<PhotoMeta>, opts: &PlanOptions) -> Plan {
    let mut dropped: Vec<DroppedPhoto> = Vec::new();
    let mut items = admit(photos, &mut dropped);
    let groups = group_and_sort(&mut items);
    let mut sequences: Vec<(Vec<Item>, SplitReason)> = Vec::new();

    for mut group in groups {
        spread_identical_times(&mut group);
        for (piece, reason) in split_by_limits(group, opts) {
            process_piece(piece, reason, opts, &mut sequences, &mut dropped);
        }
    }

    let planned = sequences
        .into_iter()
        .enumerate()
        .filter_map(|(index, (items, reason))| finish_sequence(index, items, reason))
        .collect();

    Plan {
        sequences: planned,
        dropped,
        options: opts.clone(),
    }
}

/// Step 0: unwraps time and position, dropping photos that have neither.
fn admit(mut photos: Vec<PhotoMeta>, dropped: &mut Vec<DroppedPhoto>) -> Vec<Item> {
    let mut items = Vec::with_capacity(photos.len());
    // Taken from the end, giving back the input's memory as it empties, so the input and
    // its boxed copies are not both whole at once; reversed at the end.
    let first_dropped = dropped.len();
    while let Some(mut meta) = photos.pop() {
        if photos.len() < photos.capacity() / 2 && photos.capacity() > 64 {
            photos.shrink_to_fit();
        }
        let Some(t) = meta.captured_at_ms else {
            dropped.push(DroppedPhoto {
                photo: meta,
                reason: DropReason::NoTime,
                message: "No capture time in the photo's metadata: set its time (or a time \
                          offset from a GPX track) to upload it."
                    .to_string(),
            });
            continue;
        };
        let (Some(lat), Some(lon)) = (meta.lat, meta.lon) else {
            dropped.push(DroppedPhoto {
                photo: meta,
                reason: DropReason::NoPosition,
                message: "No GPS position: geotag the photo (for example from a GPX track) \
                          to upload it."
                    .to_string(),
            });
            continue;
        };
        match geo::check_position(lat, lon) {
            PositionCheck::NotFinite | PositionCheck::OutOfRange => {
                let message = format!(
                    "GPS position ({lat}, {lon}) is not a valid coordinate (latitude must be \
                     within ±90, longitude within ±180): the GPS tags are corrupt; geotag \
                     the photo again to upload it."
                );
                dropped.push(DroppedPhoto {
                    photo: meta,
                    reason: DropReason::InvalidCoordinates,
                    message,
                });
                continue;
            }
            // Null island is step 4, after the time splits, as in mapillary_tools.
            PositionCheck::NullIsland | PositionCheck::Valid => {}
        }
        let original_heading = (meta.heading, meta.heading_source);
        if meta.heading_source == Some(HeadingSource::Computed)
            || meta.heading.is_some_and(|h| !h.is_finite())
        {
            meta.heading = None;
            meta.heading_source = None;
        }
        items.push(Item {
            meta: Box::new(meta),
            t,
            original_ms: t,
            lat,
            lon,
            original_heading,
            group: 0,
        });
    }
    items.reverse();
    dropped[first_dropped..].reverse();
    items
}

/// The grouping key, borrowed, so grouping costs one hash per photo and no allocation.
#[derive(PartialEq, Eq, Hash)]
struct KeyRef<'a> {
    folder: Option<&'a Path>,
    make: Option<&'a str>,
    model: Option<&'a str>,
    serial: Option<&'a str>,
    width: Option<u32>,
    height: Option<u32>,
}

impl<'a> KeyRef<'a> {
    fn of(p: &'a PhotoMeta) -> Self {
        KeyRef {
            folder: p.path.parent(),
            make: p.make.as_deref(),
            model: p.model.as_deref(),
            serial: p.serial.as_deref(),
            width: p.width,
            height: p.height,
        }
    }
}

/// Step 1: groups by folder and camera and sorts each group by (time, file name, path).
/// Groups come out ordered by (folder, first capture time, camera) for a stable plan.
fn group_and_sort(items: &mut Vec<Item>) -> Vec<Vec<Item>> {
    let mut ids: HashMap<KeyRef<'_>, u32> = HashMap::new();
    let group_ids: Vec<u32> = items
        .iter()
        .map(|it| {
            let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            *ids.entry(KeyRef::of(&it.meta)).or_insert(next)
        })
        .collect();
    drop(ids);
    for (it, g) in items.iter_mut().zip(group_ids) {
        it.group = g;
    }
    items.sort_by(|a, b| {
        a.group
            .cmp(&b.group)
            .then(a.t.cmp(&b.t))
            .then_with(|| a.meta.file_name.cmp(&b.meta.file_name))
            .then_with(|| a.meta.path.cmp(&b.meta.path))
    });

    let mut groups: Vec<Vec<Item>> = Vec::new();
    while let Some(last) = items.last() {
        let g = last.group;
        let start = items.partition_point(|it| it.group < g);
        // `split_off(0)` would leave behind an empty vector of the same capacity.
        groups.push(if start == 0 {
            std::mem::take(items)
        } else {
            items.split_off(start)
        });
    }
    // Folder first, then the group that starts earliest, then the camera: a stable
    // order that does not depend on the order photos were given in.
    groups.sort_by(|a, b| match (a.first(), b.first()) {
        (Some(a), Some(b)) => a
            .meta
            .path
            .parent()
            .cmp(&b.meta.path.parent())
            .then(a.t.cmp(&b.t))
            .then_with(|| cmp_groups(&a.meta, &b.meta)),
        _ => Ordering::Equal,
    });
    groups
}

fn cmp_groups(a: &PhotoMeta, b: &PhotoMeta) -> Ordering {
    a.path
        .parent()
        .cmp(&b.path.parent())
        .then_with(|| a.make.cmp(&b.make))
        .then_with(|| a.model.cmp(&b.model))
        .then_with(|| a.serial.cmp(&b.serial))
        .then(a.width.cmp(&b.width))
        .then(a.height.cmp(&b.height))
}

/// Step 2: `[1, 1, 1, 1, 1, 2]` s becomes `[1.0, 1.2, 1.4, 1.6, 1.8, 2]` s. Burst and
/// time-lapse modes often write whole-second times; without this, the order of such
/// photos and the speed between them would be undefined.
fn spread_identical_times(items: &mut [Item]) {
    let n = items.len();
    let mut i = 0;
    while i < n {
        let t = items[i].t;
        let mut j = i + 1;
        while j < n && items[j].t == t {
            j += 1;
        }
        let len = (j - i) as i64;
        if len > 1 {
            let next_second = (t.div_euclid(1000) + 1) * 1000;
            let end = if j < n {
                items[j].t.min(next_second)
            } else {
                next_second
            };
            let span = end - t;
            for (k, it) in (0_i64..).zip(items[i..j].iter_mut()) {
                it.t = t + span * k / len;
            }
        }
        i = j;
    }
}

/// Step 3: splits on the photo, byte and pixel caps and on time gaps, like
/// mapillary_tools' `_split_sequences_by_limits` (a photo that alone exceeds a cap still
/// forms a sequence of its own).
fn split_by_limits(group: Vec<Item>, opts: &PlanOptions) -> Vec<(Vec<Item>, SplitReason)> {
    let cap = opts.max_photos_per_sequence.max(1);
    let total = group.len();
    let mut out = Vec::with_capacity(1 + total / cap);
    let mut reason = SplitReason::FirstInGroup;
    let mut cur: Vec<Item> = Vec::with_capacity(cap.min(total));
    let (mut bytes, mut px) = (0_u64, 0_u64);
    let mut seen = 0;

    for it in group {
        seen += 1;
        let size = it.meta.file_size;
        let p = pixels_of(&it.meta);
        let split = match cur.last() {
            None => None,
            Some(_) if cur.len() + 1 > cap => Some(SplitReason::MaxPhotos { limit: cap }),
            Some(prev) if (it.t - prev.t) as f64 / 1000.0 > opts.max_time_gap_s => {
                Some(SplitReason::TimeGap {
                    seconds: (it.t - prev.t) as f64 / 1000.0,
                })
            }
            Some(_) if bytes.saturating_add(size) > opts.max_sequence_bytes => {
                Some(SplitReason::MaxBytes {
                    limit: opts.max_sequence_bytes,
                })
            }
            Some(_) if px.saturating_add(p) > opts.max_sequence_pixels => {
                Some(SplitReason::MaxPixels {
                    limit: opts.max_sequence_pixels,
                })
            }
            Some(_) => None,
        };
        if let Some(next_reason) = split {
            let remaining = total - seen + 1;
            let full = std::mem::replace(&mut cur, Vec::with_capacity(cap.min(remaining)));
            out.push((full, std::mem::replace(&mut reason, next_reason)));
            bytes = 0;
            px = 0;
        }
        bytes = bytes.saturating_add(size);
        px = px.saturating_add(p);
        cur.push(it);
    }
    if !cur.is_empty() {
        out.push((cur, reason));
    }
    out
}

/// Steps 4–9 for one piece produced by [`split_by_limits`].
fn process_piece(
    piece: Vec<Item>,
    reason: SplitReason,
    opts: &PlanOptions,
    sequences: &mut Vec<(Vec<Item>, SplitReason)>,
    dropped: &mut Vec<DroppedPhoto>,
) {
    let mut kept = filter_close(piece, opts, dropped);
    if kept.is_empty() {
        return;
    }

    apply_heading_offset(&mut kept, opts.heading_offset_deg);
    fill_headings(&mut kept, opts);

    if let Some(speed_kmh) = too_fast(&kept, opts.max_avg_speed_kmh) {
        reject_too_fast(kept, speed_kmh, opts.max_avg_speed_kmh, dropped);
        return;
    }

    if opts.drop_outliers && drop_zigzags(&mut kept, opts, dropped) {
        for it in &mut kept {
            if it.meta.heading_source == Some(HeadingSource::Computed) {
                it.meta.heading = None;
                it.meta.heading_source = None;
            }
        }
        fill_headings(&mut kept, opts);
    }

    split_by_distance(kept, reason, opts.max_distance_gap_m, sequences);
}

/// Steps 4 and 5 (+ frame spacing) in one pass, each photo compared with the last
/// photo kept.
fn filter_close(
    piece: Vec<Item>,
    opts: &PlanOptions,
    dropped: &mut Vec<DroppedPhoto>,
) -> Vec<Item> {
    let mut kept: Vec<Item> = Vec::with_capacity(piece.len());
    for it in piece {
        if geo::is_null_island(it.lat, it.lon) {
            dropped.push(
                it.into_dropped(
                    DropReason::NullIsland,
                    "GPS position is 0, 0 (\"null island\"): the camera had no GPS fix. Geotag \
                 the photo (for example from a GPX track) to upload it."
                        .to_string(),
                ),
            );
            continue;
        }
        if let Some(last) = kept.last()
            && let Some((reason, message)) = closeness(last, &it, opts)
        {
            dropped.push(it.into_dropped(reason, message));
            continue;
        }
        kept.push(it);
    }
    kept
}

fn closeness(last: &Item, it: &Item, opts: &PlanOptions) -> Option<(DropReason, String)> {
    let d = last.distance_to(it);
    let of = &last.meta.file_name;
    let heading_delta = match (last.meta.heading, it.meta.heading) {
        (Some(a), Some(b)) => Some(geo::heading_delta_deg(a, b)),
        _ => None,
    };
    if d <= opts.duplicate_distance_m && heading_delta.is_none_or(|h| h <= opts.duplicate_angle_deg)
    {
        let message = match heading_delta {
            Some(h) => format!(
                "Duplicate: {} and {} from {of}, which is kept instead.",
                metres(d),
                degrees(h)
            ),
            None => format!(
                "Duplicate: {} from {of} (no heading to tell them apart), which is kept \
                 instead.",
                metres(d)
            ),
        };
        let reason = DropReason::Duplicate {
            of: of.clone(),
            distance_m: d,
            heading_delta,
        };
        return Some((reason, message));
    }
    if let Some(min) = opts.min_distance_m
        && d < min
    {
        let message = format!(
            "Only {} from {of}, under the {} minimum spacing; {of} is kept. Lower the \
             minimum spacing to keep more photos.",
            metres(d),
            metres(min)
        );
        let reason = DropReason::TooClose {
            of: of.clone(),
            distance_m: d,
            min_distance_m: min,
        };
        return Some((reason, message));
    }
    let seconds = (it.t - last.t) as f64 / 1000.0;
    if let Some(min) = opts.min_interval_s
        && seconds < min
    {
        let message = format!(
            "Only {} after {of}, under the {} minimum interval; {of} is kept. Lower the \
             minimum interval to keep more photos.",
            secs(seconds),
            secs(min)
        );
        let reason = DropReason::TooSoon {
            of: of.clone(),
            seconds,
            min_interval_s: min,
        };
        return Some((reason, message));
    }
    None
}

/// Step 6a: the offset applies once, to read headings; computed ones get it in
/// [`fill_headings`].
fn apply_heading_offset(items: &mut [Item], offset: f64) {
    for it in items {
        if let Some(h) = it.meta.heading {
            it.meta.heading = Some(geo::normalize_heading_deg(h + offset));
        }
    }
}

/// Step 6b: a missing heading becomes the bearing to the next photo; the last photo
/// copies its predecessor; a lone photo gets 0 (each plus the offset, except the copy,
/// which already has it).
fn fill_headings(items: &mut [Item], opts: &PlanOptions) {
    if !opts.compute_missing_headings {
        return;
    }
    let n = items.len();
    for i in 0..n.saturating_sub(1) {
        if items[i].meta.heading.is_none() {
            let (a, b) = (&items[i], &items[i + 1]);
            let bearing = geo::initial_bearing_deg(a.lat, a.lon, b.lat, b.lon);
            let it = &mut items[i];
            it.meta.heading = Some(geo::normalize_heading_deg(
                bearing + opts.heading_offset_deg,
            ));
            it.meta.heading_source = Some(HeadingSource::Computed);
        }
    }
    let copied = match n {
        0 => return,
        1 => Some(geo::normalize_heading_deg(opts.heading_offset_deg)),
        _ => items[n - 2].meta.heading,
    };
    let last = &mut items[n - 1];
    if last.meta.heading.is_none() {
        last.meta.heading = copied;
        last.meta.heading_source = Some(HeadingSource::Computed);
    }
}

/// Step 7: average speed over the whole sequence, in km/h, if it is over the limit.
fn too_fast(items: &[Item], max_kmh: f64) -> Option<f64> {
    let (first, last) = (items.first()?, items.last()?);
    if items.len() < 2 {
        return None;
    }
    let length: f64 = items.windows(2).map(|w| w[0].distance_to(&w[1])).sum();
    let kmh = geo::mps_to_kmh(geo::speed_mps(length, last.t - first.t)?);
    (kmh > max_kmh).then_some(kmh)
}

fn reject_too_fast(
    items: Vec<Item>,
    speed_kmh: f64,
    max_kmh: f64,
    dropped: &mut Vec<DroppedPhoto>,
) {
    let (Some(first), Some(last)) = (items.first(), items.last()) else {
        return;
    };
    let message = format!(
        "Its sequence ({} … {}, {} photos) averages {speed_kmh:.0} km/h, over the \
         {max_kmh:.0} km/h limit: the capture times or GPS positions are wrong. Check the \
         camera clock and time offset, or the GPX track.",
        first.meta.file_name,
        last.meta.file_name,
        items.len()
    );
    dropped.extend(
        items
            .into_iter()
            .map(|it| it.into_dropped(DropReason::SequenceTooFast { speed_kmh }, message.clone())),
    );
}

/// Step 8, as mapillary_tools 0.14.7's `_check_sequences_zigzag`: for each photo `i`
/// with reference `r = i − window` (ours: `max(i − window, 0)`, from `i = 2`), flag
/// `i − 1` when the jump `i − 1 → i` is longer than the minimum and brings the track back
/// towards `r` (`d(i, r) < ratio · d(i − 1, r)`). Then walk back from `j = i − 2` down to
/// `r + 1`, flagging each `j` with `d(j, i)` over the minimum and
/// `d(i, r) < ratio · d(j, r)`, and stop at the first `j` that fails: a glitch of several
/// photos in a row is dropped whole. Every check uses the original indices (flagged
/// photos still serve as `r` and `i − 1`), and photos are dropped at the end.
///
/// Returns whether anything was dropped.
fn drop_zigzags(
    items: &mut Vec<Item>,
    opts: &PlanOptions,
    dropped: &mut Vec<DroppedPhoto>,
) -> bool {
    let window = opts.zigzag_window.max(1);
    let (min_jump, ratio) = (opts.zigzag_min_jump_m, opts.zigzag_ratio);
    // Per index: the jump back to the track (metres) if flagged. Allocated on the first
    // flag; a photo flagged again keeps its first jump.
    let n = items.len();
    let mut flags: Vec<Option<f64>> = Vec::new();
    let flag = |flags: &mut Vec<Option<f64>>, k: usize, jump: f64| {
        if flags.is_empty() {
            flags.resize(n, None);
        }
        flags[k].get_or_insert(jump);
    };
    for i in 2..n {
        let r = i.saturating_sub(window);
        if r + 1 >= i {
            continue;
        }
        let jump = items[i - 1].distance_to(&items[i]);
        let d_i_r = items[i].distance_to(&items[r]);
        if !(jump > min_jump && d_i_r < ratio * items[i - 1].distance_to(&items[r])) {
            continue;
        }
        flag(&mut flags, i - 1, jump);
        for j in (r + 1..=i - 2).rev() {
            let d_j_i = items[j].distance_to(&items[i]);
            if d_j_i > min_jump && d_i_r < ratio * items[j].distance_to(&items[r]) {
                flag(&mut flags, j, d_j_i);
            } else {
                break;
            }
        }
    }
    if flags.is_empty() {
        return false;
    }
    // Flagged indices are in 1..=n-2 (i − 1 ≤ n − 2 and j ≥ r + 1 ≥ 1), so every run of
    // flagged photos has a kept photo on each side. Messages are written before anything
    // moves.
    let mut messages: Vec<Option<String>> = vec![None; n];
    let mut k = 1;
    while k < n {
        if flags[k].is_none() {
            k += 1;
            continue;
        }
        let end = (k..n).find(|&e| flags[e].is_none()).unwrap_or(n);
        let before = &items[k - 1].meta.file_name;
        let after = items
            .get(end)
            .map_or("the end", |it| it.meta.file_name.as_str());
        let run = end - k;
        for m in k..end {
            let jump = flags[m].unwrap_or_default();
            messages[m] = Some(if run == 1 {
                format!(
                    "GPS glitch: the position jumps {} off the track between {before} and \
                     {after} and straight back. Correct its position to upload it.",
                    metres(jump)
                )
            } else {
                format!(
                    "GPS glitch: {run} photos in a row between {before} and {after} are off \
                     the track (this one {} from where it resumes). Correct their positions \
                     to upload them.",
                    metres(jump)
                )
            });
        }
        k = end;
    }
    let all = std::mem::take(items);
    items.reserve(n);
    for ((it, jump), message) in all.into_iter().zip(flags).zip(messages) {
        match (jump, message) {
            (Some(jump_m), Some(message)) => {
                dropped.push(it.into_dropped(DropReason::ZigzagOutlier { jump_m }, message))
            }
            _ => items.push(it),
        }
    }
    true
}

/// Step 9.
fn split_by_distance(
    mut items: Vec<Item>,
    reason: SplitReason,
    max_gap_m: f64,
    sequences: &mut Vec<(Vec<Item>, SplitReason)>,
) {
    let cuts: Vec<(usize, f64)> = (1..items.len())
        .filter_map(|k| {
            let d = items[k - 1].distance_to(&items[k]);
            (d > max_gap_m).then_some((k, d))
        })
        .collect();
    // Split from the end so each `split_off` moves only its own tail.
    let mut tails = Vec::with_capacity(cuts.len());
    for &(k, metres) in cuts.iter().rev() {
        tails.push((items.split_off(k), SplitReason::DistanceGap { metres }));
    }
    sequences.push((items, reason));
    sequences.extend(tails.into_iter().rev());
}

fn finish_sequence(index: usize, items: Vec<Item>, reason: SplitReason) -> Option<PlannedSequence> {
    let first = items.first()?;
    let last = items.last()?;
    let group = GroupKey::of(&first.meta);
    let (started_at_ms, ended_at_ms) = (first.t, last.t);
    let mut bbox = Bbox::point(first.lat, first.lon);
    let mut distance_m = 0.0;
    let mut panoramas = 0;
    let mut total_bytes = 0_u64;
    for (k, it) in items.iter().enumerate() {
        bbox.extend(it.lat, it.lon);
        if k > 0 {
            distance_m += items[k - 1].distance_to(it);
        }
        panoramas += usize::from(it.meta.is_360);
        total_bytes = total_bytes.saturating_add(it.meta.file_size);
    }
    let is_360 = panoramas * 2 > items.len();
    let photos = items
        .into_iter()
        .enumerate()
        .map(|(sequence_index, it)| {
            let mut photo = *it.meta;
            if it.t != it.original_ms {
                photo.captured_at_ms = Some(it.t);
                photo.time_source = Some(TimeSource::Adjusted);
            }
            PlannedPhoto {
                photo,
                original_captured_at_ms: it.original_ms,
                sequence_index,
            }
        })
        .collect();
    Some(PlannedSequence {
        index,
        group,
        photos,
        split_reason: reason,
        is_360,
        distance_m,
        started_at_ms,
        ended_at_ms,
        bbox,
        total_bytes,
    })
}

fn metres(d: f64) -> String {
    if d < 1.0 {
        format!("{d:.2} m")
    } else if d < 100.0 {
        format!("{d:.1} m")
    } else {
        format!("{d:.0} m")
    }
}

fn degrees(h: f64) -> String {
    let s = format!("{h:.1}");
    format!("{}°", s.strip_suffix(".0").unwrap_or(&s))
}

fn secs(s: f64) -> String {
    let t = format!("{s:.1}");
    format!("{} s", t.strip_suffix(".0").unwrap_or(&t))
}
