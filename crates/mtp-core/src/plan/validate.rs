//! Per-destination checks of a planned sequence, run before anything is uploaded.
//!
//! Each service rejects different things, and a rejection after an hour of uploading is
//! the worst time to learn about it. These checks are pure and cheap, so the UI runs them
//! on every plan and shows, per destination, what is wrong and what to do about it.

use super::{
    MAPILLARY_MAX_SEQUENCE_BYTES, MAPILLARY_MAX_SEQUENCE_PHOTOS, MAPILLARY_MAX_SEQUENCE_PIXELS,
    PlannedPhoto, PlannedSequence,
};
use crate::Destination;
use crate::geo::{self, PositionCheck};
use crate::transport::{self, TransportGroup};
use serde::{Deserialize, Serialize};

/// How far in the future a capture time may be before it is a problem: 24 h. A camera
/// set to local time but read as UTC is up to 14 h ahead, and clocks drift; anything
/// beyond a day is a wrong clock, not a time zone.
pub const MAX_FUTURE_SKEW_MS: i64 = 24 * 60 * 60 * 1000;

/// Capture times before 1990-01-01T00:00:00Z are a camera whose clock was never set
/// (many reset to 1970, 1980 or 2000-01-01; the latter passes, and is caught by users).
pub const EARLIEST_CAPTURE_MS: i64 = 631_152_000_000;

/// How many file names a message lists before "and N more".
const NAMES_SHOWN: usize = 3;

/// Whether a problem blocks the upload to that destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The destination would reject the sequence or some of its photos.
    Error,
    /// Worth knowing, but the upload can go ahead.
    Warning,
}

/// A stable identifier for each kind of problem, for the UI and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    EmptySequence,
    MissingPosition,
    InvalidCoordinates,
    NullIsland,
    MissingCaptureTime,
    CaptureTimeInFuture,
    CaptureTimeTooEarly,
    MixedProjection,
    AirTransport,
    TooManyPhotos,
    SequenceTooLarge,
    TooManyPixels,
    NotJpeg,
    ThumbnailName,
    TransportMissing,
    TransportUnknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Problem {
    pub code: ProblemCode,
    pub severity: Severity,
    /// Says what is wrong, with which files, and what to do.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct DestinationCheck {
    pub destination: Destination,
    /// No `Error` problems (warnings allowed).
    pub ok: bool,
    pub problems: Vec<Problem>,
}

/// Checks a sequence against every destination, in [`Destination::ALL`] order.
/// `transport` is the MTPW transport type chosen for the sequence, if any; `now_ms` is
/// injected so the future-time rule is testable.
pub fn check_destinations(
    seq: &PlannedSequence,
    transport: Option<&str>,
    now_ms: i64,
) -> Vec<DestinationCheck> {
    let common = common_problems(seq, now_ms);
    Destination::ALL
        .iter()
        .map(|&d| {
            let mut problems = common.clone();
            problems.extend(destination_problems(d, seq, transport));
            DestinationCheck {
                destination: d,
                ok: !problems.iter().any(|p| p.severity == Severity::Error),
                problems,
            }
        })
        .collect()
}

/// Checks a sequence against one destination.
pub fn check_destination(
    destination: Destination,
    seq: &PlannedSequence,
    transport: Option<&str>,
    now_ms: i64,
) -> DestinationCheck {
    let mut problems = common_problems(seq, now_ms);
    problems.extend(destination_problems(destination, seq, transport));
    DestinationCheck {
        destination,
        ok: !problems.iter().any(|p| p.severity == Severity::Error),
        problems,
    }
}

/// Collects the files a rule matched, so that one message covers them all: a
/// thousand-photo sequence with a wrong clock is one problem, not a thousand.
#[derive(Default)]
struct Hits<'a> {
    count: usize,
    names: Vec<&'a str>,
    first_time_ms: Option<i64>,
}

impl<'a> Hits<'a> {
    fn add(&mut self, p: &'a PlannedPhoto) {
        self.count += 1;
        if self.names.len() < NAMES_SHOWN {
            self.names.push(&p.photo.file_name);
        }
        if self.first_time_ms.is_none() {
            self.first_time_ms = p.photo.captured_at_ms;
        }
    }

    /// "1 photo has" / "3 photos have", with the files named.
    fn subject(&self, singular_verb: &str, plural_verb: &str) -> String {
        let (noun, verb) = if self.count == 1 {
            ("photo", singular_verb)
        } else {
            ("photos", plural_verb)
        };
        let mut list = self.names.join(", ");
        if self.count > self.names.len() {
            list.push_str(&format!(" and {} more", self.count - self.names.len()));
        }
        format!("{} {noun} ({list}) {verb}", self.count)
    }

    fn error(&self, code: ProblemCode, text: impl FnOnce(&Self) -> String) -> Option<Problem> {
        self.problem(code, Severity::Error, text)
    }

    fn problem(
        &self,
        code: ProblemCode,
        severity: Severity,
        text: impl FnOnce(&Self) -> String,
    ) -> Option<Problem> {
        (self.count > 0).then(|| Problem {
            code,
            severity,
            message: text(self),
        })
    }
}

fn common_problems(seq: &PlannedSequence, now_ms: i64) -> Vec<Problem> {
    if seq.photos.is_empty() {
        return vec![Problem {
            code: ProblemCode::EmptySequence,
            severity: Severity::Error,
            message: "This sequence has no photos left to upload: re-plan it or remove it."
                .to_string(),
        }];
    }
    let mut no_position = Hits::default();
    let mut invalid = Hits::default();
    let mut null_island = Hits::default();
    let mut no_time = Hits::default();
    let mut future = Hits::default();
    let mut too_early = Hits::default();
    let latest = now_ms.saturating_add(MAX_FUTURE_SKEW_MS);

    for p in &seq.photos {
        match (p.photo.lat, p.photo.lon) {
            (Some(lat), Some(lon)) => match geo::check_position(lat, lon) {
                PositionCheck::Valid => {}
                PositionCheck::NullIsland => null_island.add(p),
                PositionCheck::NotFinite | PositionCheck::OutOfRange => invalid.add(p),
            },
            _ => no_position.add(p),
        }
        match p.photo.captured_at_ms {
            None => no_time.add(p),
            Some(t) if t > latest => future.add(p),
            Some(t) if t < EARLIEST_CAPTURE_MS => too_early.add(p),
            Some(_) => {}
        }
    }

    [
        no_position.error(ProblemCode::MissingPosition, |h| {
            format!(
                "{} no GPS position: geotag them (for example from a GPX track) or re-plan, \
                 which leaves them out.",
                h.subject("has", "have")
            )
        }),
        invalid.error(ProblemCode::InvalidCoordinates, |h| {
            format!(
                "{} coordinates outside ±90° latitude / ±180° longitude: their GPS tags are \
                 corrupt; geotag them again.",
                h.subject("has", "have")
            )
        }),
        null_island.error(ProblemCode::NullIsland, |h| {
            format!(
                "{} at 0, 0 (\"null island\"), which means the camera had no GPS fix: geotag \
                 them or remove them.",
                h.subject("is", "are")
            )
        }),
        no_time.error(ProblemCode::MissingCaptureTime, |h| {
            format!(
                "{} no capture time: set their time, or re-plan, which leaves them out.",
                h.subject("has", "have")
            )
        }),
        future.error(ProblemCode::CaptureTimeInFuture, |h| {
            format!(
                "{} a capture time more than 24 h in the future (first: {}): the camera clock \
                 is wrong; apply a time offset to the sequence.",
                h.subject("has", "have"),
                utc(h.first_time_ms)
            )
        }),
        too_early.error(ProblemCode::CaptureTimeTooEarly, |h| {
            format!(
                "{} a capture time before 1990 (first: {}): the camera clock was not set; \
                 apply a time offset to the sequence.",
                h.subject("has", "have"),
                utc(h.first_time_ms)
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn destination_problems(
    d: Destination,
    seq: &PlannedSequence,
    transport: Option<&str>,
) -> Vec<Problem> {
    if seq.photos.is_empty() {
        return Vec::new();
    }
    match d {
        Destination::Mapillary => mapillary_problems(seq, transport),
        Destination::Kartaview => {
            let mut out: Vec<Problem> = not_jpeg(seq, "KartaView").into_iter().collect();
            let mut thumbs = Hits::default();
            for p in &seq.photos {
                if p.photo.file_name.to_ascii_lowercase().contains("thumb") {
                    thumbs.add(p);
                }
            }
            out.extend(
                thumbs.problem(ProblemCode::ThumbnailName, Severity::Warning, |h| {
                    format!(
                        "{} \"thumb\" in the name; KartaView's own uploader skips such files \
                         as thumbnails. Rename them if they are full-size photos.",
                        h.subject("has", "have")
                    )
                }),
            );
            out
        }
        Destination::Panoramax => not_jpeg(seq, "Panoramax").into_iter().collect(),
        Destination::Mtpw => mtpw_problems(transport),
    }
}

fn mapillary_problems(seq: &PlannedSequence, transport: Option<&str>) -> Vec<Problem> {
    let mut out = Vec::new();
    let panoramas = seq.photos.iter().filter(|p| p.photo.is_360).count();
    let flat = seq.photos.len() - panoramas;
    if panoramas > 0 && flat > 0 {
        out.push(Problem {
            code: ProblemCode::MixedProjection,
            severity: Severity::Error,
            message: format!(
                "This sequence mixes {panoramas} 360° panoramas with {flat} flat photos; \
                 Mapillary expects one kind per sequence. Put them in separate folders and \
                 re-plan so they become separate sequences."
            ),
        });
    }
    if let Some(t) = transport.and_then(transport::lookup)
        && t.group == TransportGroup::Air
    {
        out.push(Problem {
            code: ProblemCode::AirTransport,
            severity: Severity::Error,
            message: format!(
                "Mapillary does not accept imagery captured from the air, and this \
                 sequence's transport type is {}. Leave Mapillary out for this sequence, or \
                 change the transport type if it is wrong.",
                t.name
            ),
        });
    }
    if seq.photos.len() > MAPILLARY_MAX_SEQUENCE_PHOTOS {
        out.push(Problem {
            code: ProblemCode::TooManyPhotos,
            severity: Severity::Error,
            message: format!(
                "This sequence has {} photos; Mapillary accepts at most {} per sequence. \
                 Re-plan with at most {} photos per sequence.",
                seq.photos.len(),
                MAPILLARY_MAX_SEQUENCE_PHOTOS,
                MAPILLARY_MAX_SEQUENCE_PHOTOS
            ),
        });
    }
    let bytes: u64 = seq.photos.iter().map(|p| p.photo.file_size).sum();
    if bytes > MAPILLARY_MAX_SEQUENCE_BYTES {
        out.push(Problem {
            code: ProblemCode::SequenceTooLarge,
            severity: Severity::Error,
            message: format!(
                "This sequence holds {:.1} GiB of files; Mapillary accepts at most 110 GiB per \
                 sequence. Re-plan with the default size limit.",
                bytes as f64 / (1024.0 * 1024.0 * 1024.0)
            ),
        });
    }
    let pixels: u64 = seq.photos.iter().map(|p| super::pixels_of(&p.photo)).sum();
    if pixels > MAPILLARY_MAX_SEQUENCE_PIXELS {
        out.push(Problem {
            code: ProblemCode::TooManyPixels,
            severity: Severity::Error,
            message: format!(
                "This sequence holds {:.2} G pixels; Mapillary accepts at most 6 G per \
                 sequence. Re-plan with the default pixel limit.",
                pixels as f64 / 1e9
            ),
        });
    }
    out
}

fn not_jpeg(seq: &PlannedSequence, service: &str) -> Option<Problem> {
    let mut hits = Hits::default();
    for p in &seq.photos {
        let name = p.photo.file_name.to_ascii_lowercase();
        if !(name.ends_with(".jpg") || name.ends_with(".jpeg")) {
            hits.add(p);
        }
    }
    hits.error(ProblemCode::NotJpeg, |h| {
        format!(
            "{} not named .jpg or .jpeg; {service} accepts JPEG photos only. Convert or \
             rename them, or leave {service} out for this sequence.",
            h.subject("is", "are")
        )
    })
}

fn mtpw_problems(transport: Option<&str>) -> Vec<Problem> {
    let examples = "for example Walk, Bicycle or Car";
    match transport.map(str::trim) {
        None | Some("") => vec![Problem {
            code: ProblemCode::TransportMissing,
            severity: Severity::Error,
            message: format!(
                "Map the Paths needs a transport type for every sequence: choose one \
                 ({examples})."
            ),
        }],
        Some(t) if transport::lookup(t).is_none() => vec![Problem {
            code: ProblemCode::TransportUnknown,
            severity: Severity::Error,
            message: format!(
                "\"{t}\" is not a Map the Paths transport type: choose one from the list \
                 ({examples})."
            ),
        }],
        Some(_) => Vec::new(),
    }
}

/// "2031-05-01 10:00 UTC", for messages.
fn utc(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "unknown".to_string();
    };
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => format!("{ms} ms since 1970"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::geo::Bbox;
    use crate::photo::PhotoMeta;
    use crate::plan::{GroupKey, SplitReason};

    /// 2023-11-14T22:13:20Z.
    const NOW: i64 = 1_700_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn good(name: &str, k: usize) -> PhotoMeta {
        let mut p = PhotoMeta::new(format!("/trip/{name}"));
        p.captured_at_ms = Some(NOW - 10 * HOUR + k as i64 * 1000);
        p.lat = Some(48.0 + k as f64 * 1e-4);
        p.lon = Some(11.0);
        p.file_size = 1000;
        p
    }

    fn good_photos(n: usize) -> Vec<PhotoMeta> {
        (0..n)
            .map(|k| good(&format!("IMG_{k:04}.jpg"), k))
            .collect()
    }

    fn seq(photos: Vec<PhotoMeta>) -> PlannedSequence {
        let group = GroupKey::of(photos.first().unwrap_or(&PhotoMeta::new("/trip/x.jpg")));
        PlannedSequence {
            index: 0,
            group,
            photos: photos
                .into_iter()
                .enumerate()
                .map(|(sequence_index, photo)| PlannedPhoto {
                    original_captured_at_ms: photo.captured_at_ms.unwrap_or(0),
                    photo,
                    sequence_index,
                })
                .collect(),
            split_reason: SplitReason::FirstInGroup,
            is_360: false,
            distance_m: 0.0,
            started_at_ms: 0,
            ended_at_ms: 0,
            bbox: Bbox::point(48.0, 11.0),
            total_bytes: 0,
        }
    }

    /// (destination, codes) for every destination, in order.
    fn codes(checks: &[DestinationCheck]) -> Vec<(Destination, bool, Vec<ProblemCode>)> {
        checks
            .iter()
            .map(|c| {
                (
                    c.destination,
                    c.ok,
                    c.problems.iter().map(|p| p.code).collect(),
                )
            })
            .collect()
    }

    use Destination::{Kartaview, Mapillary, Mtpw, Panoramax};

    #[test]
    fn clean_sequence_passes_everywhere() {
        let checks = check_destinations(&seq(good_photos(3)), Some("Walk"), NOW);
        assert_eq!(
            codes(&checks),
            [
                (Mapillary, true, vec![]),
                (Kartaview, true, vec![]),
                (Panoramax, true, vec![]),
                (Mtpw, true, vec![]),
            ]
        );
        assert_eq!(
            serde_json::to_string(&checks[0]).unwrap(),
            r#"{"destination":"mapillary","ok":true,"problems":[]}"#
        );
    }

    #[test]
    fn transport_rules() {
        use ProblemCode::{AirTransport, TransportMissing, TransportUnknown};
        // (transport, Mapillary problems, MTPW problems)
        let cases: [(Option<&str>, Vec<ProblemCode>, Vec<ProblemCode>); 7] = [
            (None, vec![], vec![TransportMissing]),
            (Some("   "), vec![], vec![TransportMissing]),
            (Some("Bike"), vec![], vec![TransportUnknown]),
            (Some("unlisted"), vec![], vec![]),
            (Some("electric SCOOTER"), vec![], vec![]),
            (Some("DRONE"), vec![AirTransport], vec![]),
            (Some("Paraglide"), vec![AirTransport], vec![]),
        ];
        let s = seq(good_photos(2));
        for (transport, mapillary, mtpw) in cases {
            let checks = check_destinations(&s, transport, NOW);
            let got = codes(&checks);
            assert_eq!(got[0].2, mapillary, "{transport:?}");
            assert_eq!(got[0].1, mapillary.is_empty());
            assert_eq!(got[3].2, mtpw, "{transport:?}");
            assert_eq!(got[3].1, mtpw.is_empty());
            // KartaView and Panoramax don't care about the transport type.
            assert!(got[1].1 && got[2].1, "{transport:?}");
        }
        let checks = check_destinations(&s, Some("Bike"), NOW);
        assert_eq!(
            checks[3].problems[0].message,
            "\"Bike\" is not a Map the Paths transport type: choose one from the list (for \
             example Walk, Bicycle or Car)."
        );
        let checks = check_destinations(&s, Some("drone"), NOW);
        assert!(
            checks[0].problems[0]
                .message
                .contains("transport type is Drone")
        );
    }

    #[test]
    fn mapillary_mixed_projection_and_limits() {
        let mut photos = good_photos(3);
        photos[1].is_360 = true;
        let checks = check_destinations(&seq(photos), Some("Walk"), NOW);
        assert_eq!(codes(&checks)[0].2, [ProblemCode::MixedProjection]);
        assert!(
            checks[0].problems[0]
                .message
                .contains("1 360° panoramas with 2 flat")
        );
        assert!(checks[1].ok && checks[2].ok && checks[3].ok);

        // All 360: fine.
        let mut photos = good_photos(2);
        photos.iter_mut().for_each(|p| p.is_360 = true);
        assert!(check_destination(Mapillary, &seq(photos), None, NOW).ok);

        let big = seq(good_photos(1001));
        let c = check_destination(Mapillary, &big, None, NOW);
        assert_eq!(
            c.problems.iter().map(|p| p.code).collect::<Vec<_>>(),
            [ProblemCode::TooManyPhotos]
        );
        assert!(check_destination(Kartaview, &big, None, NOW).ok);
        assert!(check_destination(Mapillary, &seq(good_photos(1000)), None, NOW).ok);

        let mut huge = good_photos(2);
        huge[0].file_size = MAPILLARY_MAX_SEQUENCE_BYTES;
        huge[1].width = Some(100_000);
        huge[1].height = Some(100_000);
        let c = check_destination(Mapillary, &seq(huge), None, NOW);
        assert_eq!(
            c.problems.iter().map(|p| p.code).collect::<Vec<_>>(),
            [ProblemCode::SequenceTooLarge, ProblemCode::TooManyPixels]
        );
    }

    #[test]
    fn kartaview_and_panoramax_need_jpeg_names() {
        let photos = vec![
            good("a.JPG", 0),
            good("b.jpeg", 1),
            good("c.png", 2),
            good("d.heic", 3),
            good("GOPR_thumb.jpg", 4),
        ];
        let checks = check_destinations(&seq(photos), Some("Walk"), NOW);
        use ProblemCode::{NotJpeg, ThumbnailName};
        assert_eq!(
            codes(&checks),
            [
                (Mapillary, true, vec![]),
                (Kartaview, false, vec![NotJpeg, ThumbnailName]),
                (Panoramax, false, vec![NotJpeg]),
                (Mtpw, true, vec![]),
            ]
        );
        assert_eq!(
            checks[2].problems[0].message,
            "2 photos (c.png, d.heic) are not named .jpg or .jpeg; Panoramax accepts JPEG \
             photos only. Convert or rename them, or leave Panoramax out for this sequence."
        );
        let thumb = &checks[1].problems[1];
        assert_eq!(thumb.severity, Severity::Warning);
        assert!(
            thumb
                .message
                .starts_with("1 photo (GOPR_thumb.jpg) has \"thumb\"")
        );

        // A thumbnail name alone is only a warning.
        let c = check_destination(Kartaview, &seq(vec![good("thumb.jpg", 0)]), None, NOW);
        assert!(c.ok);
        assert_eq!(c.problems.len(), 1);
    }

    #[test]
    fn common_rules_apply_to_every_destination() {
        use ProblemCode::*;
        // (edit, expected code or None)
        type Edit = fn(&mut PhotoMeta);
        let cases: [(&str, Edit, Option<ProblemCode>); 10] = [
            ("ok", |_| {}, None),
            (
                "future 25h",
                |p| p.captured_at_ms = Some(NOW + 25 * HOUR),
                Some(CaptureTimeInFuture),
            ),
            (
                "future 23h",
                |p| p.captured_at_ms = Some(NOW + 23 * HOUR),
                None,
            ),
            (
                "1989",
                |p| p.captured_at_ms = Some(EARLIEST_CAPTURE_MS - 1),
                Some(CaptureTimeTooEarly),
            ),
            (
                "1990",
                |p| p.captured_at_ms = Some(EARLIEST_CAPTURE_MS),
                None,
            ),
            (
                "no time",
                |p| p.captured_at_ms = None,
                Some(MissingCaptureTime),
            ),
            ("no lat", |p| p.lat = None, Some(MissingPosition)),
            (
                "null island",
                |p| (p.lat, p.lon) = (Some(0.0), Some(0.0)),
                Some(NullIsland),
            ),
            ("lon 200", |p| p.lon = Some(200.0), Some(InvalidCoordinates)),
            (
                "lat NaN",
                |p| p.lat = Some(f64::NAN),
                Some(InvalidCoordinates),
            ),
        ];
        for (label, edit, want) in cases {
            let mut photos = good_photos(3);
            edit(&mut photos[1]);
            let checks = check_destinations(&seq(photos), Some("Walk"), NOW);
            for c in &checks {
                let got: Vec<ProblemCode> = c.problems.iter().map(|p| p.code).collect();
                assert_eq!(
                    got,
                    want.into_iter().collect::<Vec<_>>(),
                    "{label} {:?}",
                    c.destination
                );
                assert_eq!(c.ok, want.is_none(), "{label}");
            }
        }
    }

    #[test]
    fn messages_name_the_files_once() {
        let mut photos = good_photos(6);
        for p in &mut photos[1..] {
            p.captured_at_ms = Some(NOW + 25 * HOUR);
        }
        let c = check_destination(Panoramax, &seq(photos), None, NOW);
        assert_eq!(c.problems.len(), 1);
        assert_eq!(
            c.problems[0].message,
            "5 photos (IMG_0001.jpg, IMG_0002.jpg, IMG_0003.jpg and 2 more) have a capture time \
             more than 24 h in the future (first: 2023-11-15 23:13 UTC): the camera clock is \
             wrong; apply a time offset to the sequence."
        );
    }

    #[test]
    fn empty_sequence_is_an_error_everywhere() {
        let checks = check_destinations(&seq(Vec::new()), Some("Walk"), NOW);
        for c in checks {
            assert!(!c.ok);
            assert_eq!(
                c.problems.iter().map(|p| p.code).collect::<Vec<_>>(),
                [ProblemCode::EmptySequence]
            );
        }
    }
}
