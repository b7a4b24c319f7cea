//! Table tests for `plan_sequences`, one group per rule of PROTOCOLS §2.5.

use super::*;
use crate::geo;
use crate::photo::{HeadingSource, PhotoMeta, TimeSource};

/// 2023-06-15T08:30:00Z.
const BASE_MS: i64 = 1_686_817_800_000;
const LAT0: f64 = 48.0;
const LON0: f64 = 11.0;
/// Metres per degree of latitude on the sphere `geo` uses.
const M_PER_DEG: f64 = geo::EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// A position `north` and `east` metres from the origin.
fn at(north: f64, east: f64) -> (f64, f64) {
    let lat = LAT0 + north / M_PER_DEG;
    let lon = LON0 + east / (M_PER_DEG * LAT0.to_radians().cos());
    (lat, lon)
}

fn photo_in(folder: &str, name: &str, t_s: f64, north: f64, east: f64) -> PhotoMeta {
    let mut p = PhotoMeta::new(format!("{folder}/{name}"));
    p.captured_at_ms = Some(BASE_MS + (t_s * 1000.0).round() as i64);
    p.time_source = Some(TimeSource::GpsTime);
    let (lat, lon) = at(north, east);
    p.lat = Some(lat);
    p.lon = Some(lon);
    p.file_size = 1_000_000;
    p.make = Some("GoPro".into());
    p.model = Some("MAX".into());
    p
}

fn photo(name: &str, t_s: f64, north: f64, east: f64) -> PhotoMeta {
    photo_in("/trip", name, t_s, north, east)
}

/// `n` photos walking north, `step_m` metres and `step_s` seconds apart.
fn walk(n: usize, step_m: f64, step_s: f64) -> Vec<PhotoMeta> {
    (0..n)
        .map(|i| {
            photo(
                &format!("IMG_{i:04}.jpg"),
                i as f64 * step_s,
                i as f64 * step_m,
                0.0,
            )
        })
        .collect()
}

fn names(seq: &PlannedSequence) -> Vec<&str> {
    seq.photos
        .iter()
        .map(|p| p.photo.file_name.as_str())
        .collect()
}

fn sizes(plan: &Plan) -> Vec<usize> {
    plan.sequences.iter().map(|s| s.photos.len()).collect()
}

fn plan(photos: Vec<PhotoMeta>) -> Plan {
    plan_sequences(photos, &PlanOptions::default())
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn defaults_are_mapillary_tools_0_14_7() {
    let o = PlanOptions::default();
    assert_eq!(o.max_time_gap_s, 60.0);
    assert_eq!(o.max_distance_gap_m, 100.0);
    assert_eq!(o.max_photos_per_sequence, 1000);
    assert_eq!(o.max_sequence_bytes, 110 * (1 << 30));
    assert_eq!(o.max_sequence_pixels, 6_000_000_000);
    assert_eq!((o.duplicate_distance_m, o.duplicate_angle_deg), (0.1, 5.0));
    assert_eq!(o.max_avg_speed_kmh, 400.0);
    assert_eq!(
        (o.zigzag_window, o.zigzag_min_jump_m, o.zigzag_ratio),
        (5, 30.0, 0.8)
    );
    assert_eq!((o.min_distance_m, o.min_interval_s), (None, None));
    assert_eq!(o.heading_offset_deg, 0.0);
    assert!(o.compute_missing_headings && o.drop_outliers);
    // Partial JSON fills the rest from the defaults.
    let partial: PlanOptions = serde_json::from_str(r#"{"max_photos_per_sequence":500}"#).unwrap();
    assert_eq!(
        partial,
        PlanOptions {
            max_photos_per_sequence: 500,
            ..PlanOptions::default()
        }
    );
}

#[test]
fn empty_input_gives_empty_plan() {
    let p = plan(Vec::new());
    assert!(p.sequences.is_empty() && p.dropped.is_empty());
    assert_eq!(p.summary(), PlanSummary::default());
}

#[test]
fn time_gap_splits_only_above_the_threshold() {
    // (gap in seconds, expected sequence sizes)
    let cases: [(f64, &[usize]); 3] = [(59.0, &[4]), (60.0, &[4]), (60.5, &[2, 2])];
    for (gap, want) in cases {
        let photos = vec![
            photo("a.jpg", 0.0, 0.0, 0.0),
            photo("b.jpg", 1.0, 5.0, 0.0),
            photo("c.jpg", 1.0 + gap, 10.0, 0.0),
            photo("d.jpg", 2.0 + gap, 15.0, 0.0),
        ];
        let p = plan(photos);
        assert_eq!(sizes(&p), want, "gap {gap}");
        if want.len() == 2 {
            assert_eq!(p.sequences[0].split_reason, SplitReason::FirstInGroup);
            assert_eq!(
                p.sequences[1].split_reason,
                SplitReason::TimeGap { seconds: gap }
            );
            assert_eq!(names(&p.sequences[1]), ["c.jpg", "d.jpg"]);
        }
    }
}

#[test]
fn distance_gap_splits_above_the_threshold() {
    let cases: [(f64, &[usize]); 2] = [(99.0, &[4]), (101.0, &[2, 2])];
    for (gap, want) in cases {
        let photos = vec![
            photo("a.jpg", 0.0, 0.0, 0.0),
            photo("b.jpg", 2.0, 5.0, 0.0),
            photo("c.jpg", 10.0, 5.0 + gap, 0.0),
            photo("d.jpg", 12.0, 10.0 + gap, 0.0),
        ];
        let p = plan(photos);
        assert_eq!(sizes(&p), want, "gap {gap}");
        if let [_, second] = p.sequences.as_slice() {
            match second.split_reason {
                SplitReason::DistanceGap { metres } => assert!(close(metres, gap, 0.01)),
                ref other => panic!("unexpected {other:?}"),
            }
            assert_eq!(second.index, 1);
        }
    }
}

#[test]
fn photo_cap_splits_and_is_configurable() {
    let cases: [(usize, &[usize]); 4] = [
        (3, &[3, 3, 1]),
        (7, &[7]),
        (500, &[7]),
        // 0 would loop forever or make empty sequences; it means 1.
        (0, &[1, 1, 1, 1, 1, 1, 1]),
    ];
    for (cap, want) in cases {
        let opts = PlanOptions {
            max_photos_per_sequence: cap,
            ..PlanOptions::default()
        };
        let p = plan_sequences(walk(7, 5.0, 1.0), &opts);
        assert_eq!(sizes(&p), want, "cap {cap}");
        if want.len() > 1 {
            let limit = cap.max(1);
            assert_eq!(
                p.sequences[1].split_reason,
                SplitReason::MaxPhotos { limit }
            );
        }
    }
}

#[test]
fn byte_cap_splits() {
    let mut photos = walk(5, 5.0, 1.0);
    for p in &mut photos {
        p.file_size = 40;
    }
    let opts = PlanOptions {
        max_sequence_bytes: 100,
        ..PlanOptions::default()
    };
    let p = plan_sequences(photos, &opts);
    assert_eq!(sizes(&p), [2, 2, 1]);
    assert_eq!(
        p.sequences[1].split_reason,
        SplitReason::MaxBytes { limit: 100 }
    );
    assert_eq!(p.sequences[0].total_bytes, 80);
}

#[test]
fn pixel_cap_splits_and_unknown_dimensions_count_1024_squared() {
    // Known dimensions: 100×100 = 10 000 px each, cap 25 000 → 2 per sequence.
    let mut photos = walk(4, 5.0, 1.0);
    for p in &mut photos {
        (p.width, p.height) = (Some(100), Some(100));
    }
    let opts = PlanOptions {
        max_sequence_pixels: 25_000,
        ..PlanOptions::default()
    };
    let p = plan_sequences(photos, &opts);
    assert_eq!(sizes(&p), [2, 2]);
    assert_eq!(
        p.sequences[1].split_reason,
        SplitReason::MaxPixels { limit: 25_000 }
    );

    // Unknown dimensions: 1024² = 1 048 576 each; a cap of 3 × 1024² fits 3.
    let opts = PlanOptions {
        max_sequence_pixels: 3 * 1024 * 1024,
        ..PlanOptions::default()
    };
    assert_eq!(sizes(&plan_sequences(walk(7, 5.0, 1.0), &opts)), [3, 3, 1]);
    assert_eq!(pixels_of(&PhotoMeta::new("x.jpg")), 1024 * 1024);
}

#[test]
fn cap_is_checked_before_time_gap() {
    // The third photo is both over the cap and after a time gap: the cap wins, as in
    // mapillary_tools' check order.
    let photos = vec![
        photo("a.jpg", 0.0, 0.0, 0.0),
        photo("b.jpg", 1.0, 5.0, 0.0),
        photo("c.jpg", 100.0, 10.0, 0.0),
    ];
    let opts = PlanOptions {
        max_photos_per_sequence: 2,
        ..PlanOptions::default()
    };
    let p = plan_sequences(photos, &opts);
    assert_eq!(
        p.sequences[1].split_reason,
        SplitReason::MaxPhotos { limit: 2 }
    );
}

#[test]
fn identical_timestamps_are_spread() {
    // (times in seconds, expected planned times in ms relative to BASE)
    let cases: [(&[f64], &[i64]); 4] = [
        (
            &[1.0, 1.0, 1.0, 1.0, 1.0, 2.0],
            &[1000, 1200, 1400, 1600, 1800, 2000],
        ),
        // Bounded by the next photo when it comes before the next whole second.
        (&[1.0, 1.0, 1.5], &[1000, 1250, 1500]),
        // Last group: up to the next whole second.
        (&[3.0, 5.0, 5.0], &[3000, 5000, 5500]),
        // Sub-second start: up to the next whole second, not a full second later.
        (&[7.6, 7.6, 9.0], &[7600, 7800, 9000]),
    ];
    for (times, want) in cases {
        let photos: Vec<PhotoMeta> = times
            .iter()
            .enumerate()
            .map(|(i, &t)| photo(&format!("P{i}.jpg"), t, i as f64 * 0.5, 0.0))
            .collect();
        let p = plan(photos);
        assert_eq!(sizes(&p), [times.len()], "{times:?}");
        let got: Vec<i64> = p.sequences[0]
            .photos
            .iter()
            .map(|x| x.photo.captured_at_ms.unwrap() - BASE_MS)
            .collect();
        assert_eq!(got, want, "{times:?}");
        for (x, &t) in p.sequences[0].photos.iter().zip(times.iter()) {
            let original = BASE_MS + (t * 1000.0).round() as i64;
            assert_eq!(x.original_captured_at_ms, original);
            let adjusted = x.photo.captured_at_ms != Some(original);
            let want_source = if adjusted {
                TimeSource::Adjusted
            } else {
                TimeSource::GpsTime
            };
            assert_eq!(x.photo.time_source, Some(want_source));
        }
    }
}

#[test]
fn sort_ties_break_by_file_name() {
    let photos = vec![
        photo("c.jpg", 0.0, 0.0, 0.0),
        photo("a.jpg", 0.0, 1.0, 0.0),
        photo("b.jpg", 0.0, 2.0, 0.0),
        photo("0.jpg", 5.0, 3.0, 0.0),
    ];
    let p = plan(photos);
    assert_eq!(names(&p.sequences[0]), ["a.jpg", "b.jpg", "c.jpg", "0.jpg"]);
    let idx: Vec<usize> = p.sequences[0]
        .photos
        .iter()
        .map(|x| x.sequence_index)
        .collect();
    assert_eq!(idx, [0, 1, 2, 3]);
}

#[test]
fn duplicates_with_and_without_heading() {
    /// (distance m, heading of first, heading of second, dropped?, heading_delta)
    type Case = (f64, Option<f64>, Option<f64>, bool, Option<f64>);
    let cases: [Case; 7] = [
        (0.05, None, None, true, None),
        (0.05, Some(10.0), None, true, None),
        (0.05, Some(10.0), Some(13.0), true, Some(3.0)),
        (0.05, Some(358.0), Some(2.0), true, Some(4.0)),
        (0.05, Some(10.0), Some(20.0), false, None),
        (0.15, None, None, false, None),
        (0.0, Some(0.0), Some(5.0), true, Some(5.0)),
    ];
    for (d, h1, h2, want_drop, want_delta) in cases {
        let mut a = photo("A.jpg", 0.0, 0.0, 0.0);
        let mut b = photo("B.jpg", 1.0, d, 0.0);
        let c = photo("C.jpg", 2.0, 10.0, 0.0);
        (a.heading, b.heading) = (h1, h2);
        let p = plan(vec![a, b, c]);
        let label = format!("{d} m, {h1:?} vs {h2:?}");
        if want_drop {
            assert_eq!(names(&p.sequences[0]), ["A.jpg", "C.jpg"], "{label}");
            let dropped = &p.dropped[0];
            assert_eq!(dropped.photo.file_name, "B.jpg");
            match &dropped.reason {
                DropReason::Duplicate {
                    of,
                    distance_m,
                    heading_delta,
                } => {
                    assert_eq!(of, "A.jpg");
                    assert!(close(*distance_m, d, 1e-6), "{label}");
                    match (heading_delta, want_delta) {
                        (Some(got), Some(want)) => assert!(close(*got, want, 1e-9), "{label}"),
                        (None, None) => {}
                        other => panic!("{label}: {other:?}"),
                    }
                }
                other => panic!("{label}: {other:?}"),
            }
            assert!(
                dropped.message.contains("from A.jpg"),
                "{}",
                dropped.message
            );
            assert!(dropped.message.contains("kept instead"));
        } else {
            assert_eq!(sizes(&p), [3], "{label}");
            assert!(p.dropped.is_empty(), "{label}");
        }
    }
}

#[test]
fn duplicates_compare_with_the_last_kept_photo() {
    // B is 0.06 m from A (dropped). C is 0.06 m from B but 0.12 m from A, the last kept
    // photo, so C stays. Comparing with the previous photo would drop C too.
    let p = plan(vec![
        photo("A.jpg", 0.0, 0.0, 0.0),
        photo("B.jpg", 1.0, 0.06, 0.0),
        photo("C.jpg", 2.0, 0.12, 0.0),
    ]);
    assert_eq!(names(&p.sequences[0]), ["A.jpg", "C.jpg"]);
    assert_eq!(p.dropped.len(), 1);
    assert!(
        p.dropped[0]
            .message
            .starts_with("Duplicate: 0.06 m from A.jpg")
    );
}

#[test]
fn duplicate_message_names_distance_and_angle() {
    let mut a = photo("IMG_0012.jpg", 0.0, 0.0, 0.0);
    let mut b = photo("IMG_0013.jpg", 1.0, 0.04, 0.0);
    (a.heading, b.heading) = (Some(90.0), Some(92.0));
    let p = plan(vec![a, b]);
    assert_eq!(
        p.dropped[0].message,
        "Duplicate: 0.04 m and 2° from IMG_0012.jpg, which is kept instead."
    );
}

#[test]
fn frame_spacing_by_distance_and_time() {
    // Photos every 2 m and 1 s.
    let by_distance = PlanOptions {
        min_distance_m: Some(5.0),
        ..PlanOptions::default()
    };
    let p = plan_sequences(walk(10, 2.0, 1.0), &by_distance);
    assert_eq!(
        names(&p.sequences[0]),
        [
            "IMG_0000.jpg",
            "IMG_0003.jpg",
            "IMG_0006.jpg",
            "IMG_0009.jpg"
        ]
    );
    match &p.dropped[0].reason {
        DropReason::TooClose {
            of,
            distance_m,
            min_distance_m,
        } => {
            assert_eq!(of, "IMG_0000.jpg");
            assert!(close(*distance_m, 2.0, 1e-6));
            assert_eq!(*min_distance_m, 5.0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.summary().too_close, 6);

    let by_time = PlanOptions {
        min_interval_s: Some(2.5),
        ..PlanOptions::default()
    };
    let p = plan_sequences(walk(7, 2.0, 1.0), &by_time);
    assert_eq!(
        names(&p.sequences[0]),
        ["IMG_0000.jpg", "IMG_0003.jpg", "IMG_0006.jpg"]
    );
    match &p.dropped[1].reason {
        DropReason::TooSoon {
            of,
            seconds,
            min_interval_s,
        } => {
            assert_eq!(of, "IMG_0000.jpg");
            assert_eq!((*seconds, *min_interval_s), (2.0, 2.5));
        }
        other => panic!("{other:?}"),
    }
    assert!(p.dropped[1].message.contains("Only 2 s after IMG_0000.jpg"));

    // Exactly at the minimum is kept.
    let exact = PlanOptions {
        min_interval_s: Some(1.0),
        ..PlanOptions::default()
    };
    assert_eq!(sizes(&plan_sequences(walk(5, 2.0, 1.0), &exact)), [5]);
}

#[test]
fn null_island_photos_are_dropped_alone() {
    let mut photos = walk(5, 5.0, 1.0);
    photos[2].lat = Some(0.0);
    photos[2].lon = Some(0.0);
    let p = plan(photos);
    assert_eq!(sizes(&p), [4]);
    assert_eq!(p.dropped[0].reason, DropReason::NullIsland);
    assert_eq!(p.dropped[0].photo.file_name, "IMG_0002.jpg");
    assert!(p.dropped[0].message.contains("no GPS fix"));
}

#[test]
fn photos_without_time_or_position_are_dropped() {
    let mut no_time = photo("t.jpg", 0.0, 0.0, 0.0);
    no_time.captured_at_ms = None;
    let mut no_pos = photo("p.jpg", 1.0, 0.0, 0.0);
    no_pos.lon = None;
    let mut out_of_range = photo("r.jpg", 2.0, 0.0, 0.0);
    out_of_range.lat = Some(91.0);
    let mut nan = photo("n.jpg", 3.0, 0.0, 0.0);
    nan.lon = Some(f64::NAN);
    let p = plan(vec![no_time, no_pos, out_of_range, nan]);
    assert!(p.sequences.is_empty());
    let reasons: Vec<(&str, &DropReason)> = p
        .dropped
        .iter()
        .map(|d| (d.photo.file_name.as_str(), &d.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            ("t.jpg", &DropReason::NoTime),
            ("p.jpg", &DropReason::NoPosition),
            ("r.jpg", &DropReason::InvalidCoordinates),
            ("n.jpg", &DropReason::InvalidCoordinates),
        ]
    );
    let s = p.summary();
    assert_eq!(
        (s.no_time, s.no_position, s.invalid_coordinates, s.photos),
        (1, 1, 2, 4)
    );
}

#[test]
fn too_fast_sequences_are_rejected_whole() {
    // (metres per step, seconds per step, rejected?)
    let cases = [(99.0, 1.0, false), (120.0, 1.0, true), (50.0, 0.1, true)];
    for (step_m, step_s, rejected) in cases {
        let mut photos = walk(5, step_m, step_s);
        // Another folder, unaffected.
        photos.push(photo_in("/other", "X.jpg", 0.0, 0.0, 0.0));
        let opts = PlanOptions {
            max_distance_gap_m: 1000.0,
            ..PlanOptions::default()
        };
        let p = plan_sequences(photos, &opts);
        let speed = step_m / step_s * 3.6;
        // "/other" sorts before "/trip".
        if rejected {
            assert_eq!(sizes(&p), [1], "{step_m} m / {step_s} s");
            assert_eq!(p.dropped.len(), 5);
            for d in &p.dropped {
                match d.reason {
                    DropReason::SequenceTooFast { speed_kmh } => {
                        assert!(close(speed_kmh, speed, 0.01), "{speed_kmh}")
                    }
                    ref other => panic!("{other:?}"),
                }
                assert!(d.message.contains("IMG_0000.jpg … IMG_0004.jpg, 5 photos"));
                assert!(d.message.contains("over the 400 km/h limit"));
            }
        } else {
            assert_eq!(sizes(&p), [1, 5], "{step_m} m / {step_s} s");
        }
    }
}

#[test]
fn zigzag_outlier_is_dropped_and_headings_recomputed() {
    let mut photos = walk(12, 10.0, 1.0);
    let (lat, lon) = at(70.0, 50.0);
    photos[7].lat = Some(lat);
    photos[7].lon = Some(lon);
    let p = plan(photos.clone());
    assert_eq!(sizes(&p), [11]);
    assert_eq!(p.dropped.len(), 1);
    let d = &p.dropped[0];
    assert_eq!(d.photo.file_name, "IMG_0007.jpg");
    match d.reason {
        DropReason::ZigzagOutlier { jump_m } => assert!(close(jump_m, 51.0, 0.5), "{jump_m}"),
        ref other => panic!("{other:?}"),
    }
    assert!(d.message.contains("between IMG_0006.jpg and IMG_0008.jpg"));
    // IMG_0006's computed heading points at IMG_0008 (north), not at the outlier.
    let h6 = p.sequences[0].photos[6].photo.heading.unwrap();
    assert!(!(0.01..=359.99).contains(&h6), "{h6}");
    // The dropped photo keeps its original (missing) heading.
    assert_eq!(d.photo.heading, None);

    // With outlier removal off, it stays.
    let keep = PlanOptions {
        drop_outliers: false,
        ..PlanOptions::default()
    };
    assert_eq!(sizes(&plan_sequences(photos, &keep)), [12]);
}

#[test]
fn zigzag_glitch_of_several_photos_is_dropped_whole() {
    // (window, photos, first glitch photo, glitch length, expected sizes); every glitch
    // photo is 150 m east of a walk north in 10 m steps. mapillary_tools flags the last
    // glitch photo when the track returns, then walks back to ref + 1 (= i − window + 1)
    // flagging the rest: up to window − 1 photos go whole. A longer glitch reaches ref
    // and is kept; the distance rule cuts it out as its own sequence.
    let cases: [(usize, usize, usize, usize, &[usize]); 9] = [
        (5, 20, 8, 1, &[19]),
        (5, 20, 8, 2, &[18]),
        (5, 20, 8, 3, &[17]),
        (5, 20, 8, 4, &[16]),
        (5, 20, 8, 5, &[8, 5, 7]),
        (3, 20, 8, 2, &[18]),
        (3, 20, 8, 3, &[8, 3, 9]),
        // Ours only (mapillary_tools starts at photo `window`, and skips sequences under
        // window + 1 photos): a glitch right after the first photo, in a 5-photo walk.
        (5, 5, 1, 1, &[4]),
        (5, 5, 1, 2, &[3]),
    ];
    for (window, n, first, len, want) in cases {
        let mut photos = walk(n, 10.0, 1.0);
        for (k, p) in photos.iter_mut().enumerate().skip(first).take(len) {
            let (lat, lon) = at(k as f64 * 10.0, 150.0);
            (p.lat, p.lon) = (Some(lat), Some(lon));
        }
        let opts = PlanOptions {
            zigzag_window: window,
            ..PlanOptions::default()
        };
        let p = plan_sequences(photos, &opts);
        let case = format!("window {window}, {n} photos, glitch {first}+{len}");
        assert_eq!(sizes(&p), want, "{case}");
        if want.len() > 1 {
            assert!(p.dropped.is_empty(), "{case}: {:?}", p.dropped);
            continue;
        }
        let got: Vec<&str> = p
            .dropped
            .iter()
            .map(|d| d.photo.file_name.as_str())
            .collect();
        let glitch: Vec<String> = (first..first + len)
            .map(|k| format!("IMG_{k:04}.jpg"))
            .collect();
        assert_eq!(got, glitch, "{case}");
        let (before, after) = (
            format!("IMG_{:04}.jpg", first - 1),
            format!("IMG_{:04}.jpg", first + len),
        );
        for d in &p.dropped {
            match d.reason {
                // The distance back to the photo where the track resumes.
                DropReason::ZigzagOutlier { jump_m } => {
                    assert!((150.0..160.0).contains(&jump_m), "{case}: {jump_m}")
                }
                ref other => panic!("{case}: {other:?}"),
            }
            assert!(
                d.message.contains(&format!("between {before} and {after}")),
                "{case}: {}",
                d.message
            );
            if len > 1 {
                assert!(
                    d.message.contains(&format!("{len} photos in a row")),
                    "{case}: {}",
                    d.message
                );
            }
        }
    }
}

/// The `zigzag` bench scenario's two-photo glitch, as mapillary_tools 0.14.7 handles it:
/// photos 40 and 41 of a 60-photo walk (3 m steps) are both ~150 m off the track. It
/// drops 41 (the jump 41 → 42 returns towards ref = 37), then walks back and drops 40,
/// keeping one sequence; without the walk-back, 40 stayed as a 1-photo sequence.
#[test]
fn zigzag_two_photo_glitch_matches_mapillary_tools() {
    let mut photos = walk(60, 3.0, 1.0);
    for k in [40, 41] {
        let (lat, lon) = at(k as f64 * 3.0 + 106.0, -106.0);
        (photos[k].lat, photos[k].lon) = (Some(lat), Some(lon));
    }
    let p = plan(photos);
    assert_eq!(sizes(&p), [58]);
    let got: Vec<&str> = p
        .dropped
        .iter()
        .map(|d| d.photo.file_name.as_str())
        .collect();
    assert_eq!(got, ["IMG_0040.jpg", "IMG_0041.jpg"]);
}

#[test]
fn zigzag_ignores_a_smooth_turn() {
    // 40 m steps north then east: long jumps, but the track never comes back.
    let photos: Vec<PhotoMeta> = (0..10)
        .map(|i| {
            let (n, e) = if i < 5 {
                (i as f64 * 40.0, 0.0)
            } else {
                (160.0, (i - 4) as f64 * 40.0)
            };
            photo(&format!("T{i}.jpg"), i as f64 * 2.0, n, e)
        })
        .collect();
    let p = plan(photos);
    assert_eq!(sizes(&p), [10]);
}

#[test]
fn heading_fill_rules() {
    // Walking east: computed headings are 90°; the last copies its predecessor.
    let photos: Vec<PhotoMeta> = (0..3)
        .map(|i| photo(&format!("E{i}.jpg"), i as f64, 0.0, i as f64 * 10.0))
        .collect();
    let p = plan(photos);
    for x in &p.sequences[0].photos {
        assert!(
            close(x.photo.heading.unwrap(), 90.0, 0.01),
            "{:?}",
            x.photo.heading
        );
        assert_eq!(x.photo.heading_source, Some(HeadingSource::Computed));
    }

    // A read heading is kept; the last photo copies its predecessor's (read) heading.
    let mut photos = walk(3, 10.0, 1.0);
    photos[1].heading = Some(42.0);
    photos[1].heading_source = Some(HeadingSource::GpsImgDirection);
    let p = plan(photos);
    let got: Vec<(f64, Option<HeadingSource>)> = p.sequences[0]
        .photos
        .iter()
        .map(|x| (x.photo.heading.unwrap(), x.photo.heading_source))
        .collect();
    assert!(close(got[0].0, 0.0, 0.01));
    assert_eq!(got[1], (42.0, Some(HeadingSource::GpsImgDirection)));
    assert_eq!(got[2], (42.0, Some(HeadingSource::Computed)));

    // A lone photo gets 0.
    let p = plan(vec![photo("solo.jpg", 0.0, 0.0, 0.0)]);
    let solo = &p.sequences[0].photos[0].photo;
    assert_eq!(
        (solo.heading, solo.heading_source),
        (Some(0.0), Some(HeadingSource::Computed))
    );

    // Turned off: nothing is filled.
    let off = PlanOptions {
        compute_missing_headings: false,
        ..PlanOptions::default()
    };
    let p = plan_sequences(walk(3, 10.0, 1.0), &off);
    assert!(p.kept().all(|x| x.photo.heading.is_none()));

    // A heading computed by an earlier plan is recomputed, not trusted.
    let mut photos = walk(2, 10.0, 1.0);
    photos[0].heading = Some(200.0);
    photos[0].heading_source = Some(HeadingSource::Computed);
    let p = plan(photos);
    assert!(close(
        p.sequences[0].photos[0].photo.heading.unwrap(),
        0.0,
        0.01
    ));
}

#[test]
fn heading_offset_applies_to_all_and_wraps() {
    // (read heading, offset, expected)
    let cases = [
        (Some(300.0), 90.0, 30.0),
        (Some(10.0), -20.0, 350.0),
        (Some(180.0), 180.0, 0.0),
        (None, 90.0, 90.0), // computed north + 90
        (None, 270.0, 270.0),
    ];
    for (read, offset, want) in cases {
        let mut photos = walk(2, 10.0, 1.0);
        photos[0].heading = read;
        let opts = PlanOptions {
            heading_offset_deg: offset,
            ..PlanOptions::default()
        };
        let p = plan_sequences(photos, &opts);
        let h = p.sequences[0].photos[0].photo.heading.unwrap();
        assert!(close(h, want, 0.01), "{read:?} + {offset}: {h}");
        assert!((0.0..360.0).contains(&h));
        // The last photo copies its predecessor, offset included, without adding it twice.
        let last = p.sequences[0].photos[1].photo.heading.unwrap();
        assert!(close(last, want, 0.01), "last: {last}");
    }
    // A lone photo: 0 + offset.
    let opts = PlanOptions {
        heading_offset_deg: 450.0,
        ..PlanOptions::default()
    };
    let p = plan_sequences(vec![photo("solo.jpg", 0.0, 0.0, 0.0)], &opts);
    assert_eq!(p.sequences[0].photos[0].photo.heading, Some(90.0));
}

#[test]
fn grouping_by_camera_and_folder() {
    // Two cameras interleaved in one folder, and a third folder.
    let mut photos = Vec::new();
    for i in 0..4 {
        let mut front = photo(&format!("F{i}.jpg"), i as f64, i as f64 * 5.0, 0.0);
        front.serial = Some("FRONT".into());
        let mut back = photo(&format!("B{i}.jpg"), i as f64 + 0.5, i as f64 * 5.0, 1.0);
        back.serial = Some("BACK".into());
        photos.push(back);
        photos.push(front);
    }
    photos.push(photo_in("/another", "X.jpg", 100.0, 0.0, 0.0));
    let mut wide = photo("W.jpg", 2.2, 20.0, 0.0);
    wide.serial = Some("FRONT".into());
    wide.width = Some(4000);
    photos.push(wide);

    let p = plan(photos);
    let got: Vec<(String, Option<&str>, Vec<&str>)> = p
        .sequences
        .iter()
        .map(|s| {
            (
                s.group.folder.display().to_string(),
                s.group.serial.as_deref(),
                names(s),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/another".to_string(), None, vec!["X.jpg"]),
            (
                "/trip".to_string(),
                Some("FRONT"),
                vec!["F0.jpg", "F1.jpg", "F2.jpg", "F3.jpg"]
            ),
            (
                "/trip".to_string(),
                Some("BACK"),
                vec!["B0.jpg", "B1.jpg", "B2.jpg", "B3.jpg"]
            ),
            ("/trip".to_string(), Some("FRONT"), vec!["W.jpg"]),
        ]
    );
    assert!(
        p.sequences
            .iter()
            .all(|s| s.split_reason == SplitReason::FirstInGroup)
    );
    let idx: Vec<usize> = p.sequences.iter().map(|s| s.index).collect();
    assert_eq!(idx, [0, 1, 2, 3]);
    assert_eq!(p.sequences[3].group.width, Some(4000));
}

#[test]
fn plan_does_not_depend_on_input_order() {
    let mut photos = walk(40, 7.0, 2.0);
    photos.push(photo_in("/b", "z.jpg", 3.0, 0.0, 0.0));
    photos.push(photo("dup.jpg", 0.0, 0.0, 0.0));
    let forward = plan(photos.clone());
    photos.reverse();
    let reversed = plan(photos.clone());
    // Interleave: odd positions first.
    let (odd, even): (Vec<_>, Vec<_>) = photos
        .into_iter()
        .enumerate()
        .partition(|(i, _)| i % 2 == 1);
    let shuffled = plan(odd.into_iter().chain(even).map(|(_, p)| p).collect());
    assert_eq!(forward, reversed);
    assert_eq!(forward, shuffled);
}

#[test]
fn sequence_properties() {
    let mut photos = walk(4, 10.0, 2.0);
    photos[0].is_360 = true;
    photos[1].is_360 = true;
    photos[2].is_360 = true;
    photos[3].file_size = 5;
    let p = plan(photos);
    let s = &p.sequences[0];
    assert!(s.is_360);
    assert!(close(s.distance_m, 30.0, 0.01), "{}", s.distance_m);
    assert_eq!((s.started_at_ms, s.ended_at_ms), (BASE_MS, BASE_MS + 6000));
    assert!(close(s.bbox.min_lat, LAT0, 1e-12));
    assert!(close(s.bbox.max_lat, at(30.0, 0.0).0, 1e-12));
    assert_eq!(s.bbox.min_lon, s.bbox.max_lon);
    assert_eq!(s.total_bytes, 3_000_005);
    assert_eq!(s.group.make.as_deref(), Some("GoPro"));

    // Exactly half is not a majority.
    let mut photos = walk(4, 10.0, 2.0);
    photos[0].is_360 = true;
    photos[1].is_360 = true;
    assert!(!plan(photos).sequences[0].is_360);
}

#[test]
fn summary_counts() {
    let mut photos = walk(6, 10.0, 1.0);
    photos.push(photo("dup.jpg", 5.5, 50.0, 0.0));
    let mut island = photo("zero.jpg", 2.5, 0.0, 0.0);
    (island.lat, island.lon) = (Some(0.0), Some(0.0));
    photos.push(island);
    photos[0].is_360 = true;
    let p = plan(photos);
    let s = p.summary();
    assert_eq!((s.photos, s.kept, s.dropped, s.sequences), (8, 6, 2, 1));
    assert_eq!((s.duplicates, s.null_island, s.panoramas), (1, 1, 1));
    assert_eq!(s.total_bytes, 6_000_000);
    assert!(close(s.distance_m, 50.0, 0.01));
}

#[test]
fn serialized_shape() {
    let reason = serde_json::to_value(SplitReason::TimeGap { seconds: 61.0 }).unwrap();
    assert_eq!(
        reason,
        serde_json::json!({"kind": "time_gap", "seconds": 61.0})
    );
    let first = serde_json::to_value(SplitReason::FirstInGroup).unwrap();
    assert_eq!(first, serde_json::json!({"kind": "first_in_group"}));
    let drop = serde_json::to_value(DropReason::Duplicate {
        of: "a.jpg".into(),
        distance_m: 0.05,
        heading_delta: None,
    })
    .unwrap();
    assert_eq!(
        drop,
        serde_json::json!({"kind": "duplicate", "of": "a.jpg", "distance_m": 0.05, "heading_delta": null})
    );
    let p = plan(walk(3, 5.0, 1.0));
    let json = serde_json::to_string(&p).unwrap();
    let back: Plan = serde_json::from_str(&json).unwrap();
    // serde_json's default float parser may differ in the last bit, so compare the shape.
    assert_eq!(back.summary().kept, 3);
    assert_eq!(back.options, p.options);
    assert_eq!(
        back.sequences[0].photos[2].photo,
        p.sequences[0].photos[2].photo
    );
    assert!(close(
        back.sequences[0].distance_m,
        p.sequences[0].distance_m,
        1e-9
    ));
}

/// 10 000 photos: a long walk with pauses (duplicates), gaps in time and space, and a
/// second camera. Checks invariants only; never timing.
#[test]
fn ten_thousand_photos_plan_correctly() {
    let mut photos = Vec::with_capacity(10_000);
    let mut t = 0.0;
    let mut north = 0.0;
    for i in 0..10_000 {
        let mut step_m = 3.0;
        if i % 97 == 0 {
            step_m = 0.0; // standing still: a duplicate
        }
        if i % 2500 == 0 {
            t += 120.0; // time gap
        }
        if i % 3333 == 0 {
            north += 500.0; // distance gap
        }
        t += 1.0;
        north += step_m;
        let folder = if i % 10 == 0 { "/cam2" } else { "/cam1" };
        photos.push(photo_in(folder, &format!("G{i:05}.jpg"), t, north, 0.0));
    }
    let p = plan(photos);
    let s = p.summary();
    assert_eq!(s.photos, 10_000);
    assert_eq!(s.kept + s.dropped, 10_000);
    assert!(s.duplicates > 50, "{s:?}");
    assert_eq!(s.sequence_too_fast + s.zigzag_outliers, 0, "{s:?}");
    let mut seen = std::collections::HashSet::new();
    for (k, seq) in p.sequences.iter().enumerate() {
        assert_eq!(seq.index, k);
        assert!(!seq.photos.is_empty());
        assert!(seq.photos.len() <= 1000);
        for (j, x) in seq.photos.iter().enumerate() {
            assert_eq!(x.sequence_index, j);
            assert!(seen.insert(x.photo.file_name.clone()));
            assert!(x.photo.heading.is_some());
            assert_eq!(GroupKey::of(&x.photo), seq.group);
        }
        for w in seq.photos.windows(2) {
            let (a, b) = (&w[0].photo, &w[1].photo);
            assert!(a.captured_at_ms < b.captured_at_ms);
            assert!((b.captured_at_ms.unwrap() - a.captured_at_ms.unwrap()) <= 60_000);
            let d = geo::distance_m(
                a.lat.unwrap(),
                a.lon.unwrap(),
                b.lat.unwrap(),
                b.lon.unwrap(),
            );
            assert!(d <= 100.0 && d > 0.1, "{d}");
        }
    }
    assert_eq!(seen.len(), s.kept);
    // 9000 photos in /cam1 need at least 9 sequences; /cam2 has 1000 more photos.
    assert!(p.sequences.len() >= 10, "{}", p.sequences.len());
    assert!(
        p.sequences
            .iter()
            .any(|s| matches!(s.split_reason, SplitReason::MaxPhotos { limit: 1000 }))
    );
    assert!(
        p.sequences
            .iter()
            .any(|s| matches!(s.split_reason, SplitReason::TimeGap { .. }))
    );
    assert!(
        p.sequences
            .iter()
            .any(|s| matches!(s.split_reason, SplitReason::DistanceGap { .. }))
    );
}
