//! Great-circle distance, bearing and related geometry on WGS84 coordinates.
//!
//! Everything here is a pure function on plain `f64` degrees so that the planner, the
//! validators and the providers share one definition of "distance" and "heading": if two
//! parts of the app disagreed on whether two photos are 100 m apart, a sequence could be
//! split in one place and not in another.

use serde::{Deserialize, Serialize};

/// Mean Earth radius (IUGG), in metres. Haversine on a sphere is within 0.5 % of the
/// ellipsoid, far below GPS noise at the 0.1 m–100 m thresholds the planner uses.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Coordinates closer than this (in degrees, ≈ 0.11 m at the equator) to (0, 0) count as
/// "null island": the value cameras write when they have no GPS fix. An exact `== 0.0`
/// test would miss the `0.0000001` some firmwares write instead.
pub const NULL_ISLAND_EPSILON_DEG: f64 = 1e-6;

/// Haversine distance between two points, in metres.
pub fn distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let phi1 = lat1.to_radians();
    let phi2 = lat2.to_radians();
    let d_phi = (lat2 - lat1).to_radians();
    let d_lambda = (lon2 - lon1).to_radians();
    let s_phi = (d_phi / 2.0).sin();
    let s_lambda = (d_lambda / 2.0).sin();
    // Clamp: rounding can push `a` a hair outside [0, 1] for antipodal or equal points.
    let a = (s_phi * s_phi + phi1.cos() * phi2.cos() * s_lambda * s_lambda).clamp(0.0, 1.0);
    2.0 * EARTH_RADIUS_M * a.sqrt().atan2((1.0 - a).sqrt())
}

/// Initial great-circle bearing from the first point towards the second, in degrees
/// clockwise from true north, in [0, 360). Equal points give 0.
///
/// This is the heading a camera pointing "forward" has when it moves from one photo to
/// the next, which is how missing headings are filled.
pub fn initial_bearing_deg(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let phi1 = lat1.to_radians();
    let phi2 = lat2.to_radians();
    let d_lambda = (lon2 - lon1).to_radians();
    let y = d_lambda.sin() * phi2.cos();
    let x = phi1.cos() * phi2.sin() - phi1.sin() * phi2.cos() * d_lambda.cos();
    if y == 0.0 && x == 0.0 {
        return 0.0;
    }
    normalize_heading_deg(y.atan2(x).to_degrees())
}

/// Folds any finite angle into [0, 360). Non-finite input gives 0 so that a broken EXIF
/// value can never leak NaN into a description.
pub fn normalize_heading_deg(deg: f64) -> f64 {
    if !deg.is_finite() {
        return 0.0;
    }
    let h = deg.rem_euclid(360.0);
    // `rem_euclid` of a tiny negative number rounds up to exactly 360.0.
    if h >= 360.0 { 0.0 } else { h }
}

/// Smallest angle between two headings, in [0, 180] degrees. 359° and 1° are 2° apart,
/// which is what the duplicate check needs.
pub fn heading_delta_deg(a: f64, b: f64) -> f64 {
    let d = (normalize_heading_deg(a) - normalize_heading_deg(b)).abs();
    if d > 180.0 { 360.0 - d } else { d }
}

/// Why a coordinate pair is or isn't usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionCheck {
    Valid,
    /// NaN or infinite: a broken EXIF rational (e.g. a zero denominator).
    NotFinite,
    /// Latitude outside [-90, 90] or longitude outside [-180, 180].
    OutOfRange,
    /// (0, 0): the camera had no fix. Every service rejects or misplaces these.
    NullIsland,
}

/// Classifies a coordinate pair. The order of the checks matters: a NaN is reported as
/// such rather than as "out of range", and an out-of-range value is never null island.
pub fn check_position(lat: f64, lon: f64) -> PositionCheck {
    if !lat.is_finite() || !lon.is_finite() {
        PositionCheck::NotFinite
    } else if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        PositionCheck::OutOfRange
    } else if is_null_island(lat, lon) {
        PositionCheck::NullIsland
    } else {
        PositionCheck::Valid
    }
}

/// Finite and inside the WGS84 ranges (null island is *in* range).
pub fn is_in_range(lat: f64, lon: f64) -> bool {
    !matches!(
        check_position(lat, lon),
        PositionCheck::NotFinite | PositionCheck::OutOfRange
    )
}

/// Within [`NULL_ISLAND_EPSILON_DEG`] of (0, 0) on both axes.
pub fn is_null_island(lat: f64, lon: f64) -> bool {
    lat.abs() < NULL_ISLAND_EPSILON_DEG && lon.abs() < NULL_ISLAND_EPSILON_DEG
}

/// A position every destination accepts: finite, in range and not null island.
pub fn is_valid_position(lat: f64, lon: f64) -> bool {
    check_position(lat, lon) == PositionCheck::Valid
}

/// Speed in metres per second over `duration_ms`. `None` when no time passed (or time
/// went backwards): a speed would be infinite or meaningless, and callers must decide
/// what that means rather than divide by zero.
pub fn speed_mps(distance_m: f64, duration_ms: i64) -> Option<f64> {
    if duration_ms <= 0 || !distance_m.is_finite() {
        return None;
    }
    Some(distance_m / (duration_ms as f64 / 1000.0))
}

/// Metres per second to kilometres per hour (the unit the speed limit is stated in).
pub fn mps_to_kmh(mps: f64) -> f64 {
    mps * 3.6
}

/// A latitude/longitude bounding box, for zooming the map to a sequence and for
/// Mapillary's bbox read-back queries. Does not handle the antimeridian: a sequence
/// crossing it gets a box spanning the globe, which is still correct, just loose.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct Bbox {
    pub min_lat: f64,
    pub min_lon: f64,
    pub max_lat: f64,
    pub max_lon: f64,
}

impl Bbox {
    /// A box holding one point.
    pub fn point(lat: f64, lon: f64) -> Self {
        Bbox {
            min_lat: lat,
            min_lon: lon,
            max_lat: lat,
            max_lon: lon,
        }
    }

    /// Grows the box to include a point.
    pub fn extend(&mut self, lat: f64, lon: f64) {
        self.min_lat = self.min_lat.min(lat);
        self.min_lon = self.min_lon.min(lon);
        self.max_lat = self.max_lat.max(lat);
        self.max_lon = self.max_lon.max(lon);
    }

    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn distance_known_values() {
        // One degree of latitude on the mean sphere.
        let one_deg = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        assert!(close(distance_m(0.0, 10.0, 1.0, 10.0), one_deg, 1e-6));
        // Big Ben → Eiffel Tower ≈ 340.5 km.
        let d = distance_m(51.5007, -0.1246, 48.8584, 2.2945);
        assert!(close(d, 340_540.0, 500.0), "{d}");
        assert_eq!(distance_m(12.0, 34.0, 12.0, 34.0), 0.0);
        // Antipodes: half the circumference, no NaN.
        let half = EARTH_RADIUS_M * std::f64::consts::PI;
        assert!(close(distance_m(0.0, 0.0, 0.0, 180.0), half, 1e-3));
        // Symmetric.
        assert_eq!(
            distance_m(1.0, 2.0, 3.0, 4.0),
            distance_m(3.0, 4.0, 1.0, 2.0)
        );
    }

    #[test]
    fn small_distances_are_precise() {
        // 1e-6° of latitude ≈ 0.111 m: the duplicate threshold must be resolvable.
        let d = distance_m(50.0, 8.0, 50.000_001, 8.0);
        assert!(close(d, 0.111_195, 1e-4), "{d}");
    }

    #[test]
    fn bearing_cardinal_directions() {
        let cases = [
            ((0.0, 0.0, 1.0, 0.0), 0.0),
            ((0.0, 0.0, 0.0, 1.0), 90.0),
            ((1.0, 0.0, 0.0, 0.0), 180.0),
            ((0.0, 1.0, 0.0, 0.0), 270.0),
            ((0.0, 0.0, 0.0, 0.0), 0.0),
        ];
        for ((a, b, c, d), want) in cases {
            let got = initial_bearing_deg(a, b, c, d);
            assert!(close(got, want, 1e-9), "{a},{b}->{c},{d}: {got}");
            assert!((0.0..360.0).contains(&got));
        }
        // North-east at the equator is 45°.
        assert!(close(
            initial_bearing_deg(0.0, 0.0, 0.001, 0.001),
            45.0,
            1e-3
        ));
    }

    #[test]
    fn heading_helpers() {
        assert_eq!(heading_delta_deg(359.0, 1.0), 2.0);
        assert_eq!(heading_delta_deg(1.0, 359.0), 2.0);
        assert_eq!(heading_delta_deg(0.0, 180.0), 180.0);
        assert_eq!(heading_delta_deg(90.0, 90.0), 0.0);
        assert_eq!(heading_delta_deg(-10.0, 10.0), 20.0);
        assert_eq!(normalize_heading_deg(360.0), 0.0);
        assert_eq!(normalize_heading_deg(-90.0), 270.0);
        assert_eq!(normalize_heading_deg(725.0), 5.0);
        assert_eq!(normalize_heading_deg(-1e-20), 0.0);
        assert_eq!(normalize_heading_deg(f64::NAN), 0.0);
    }

    #[test]
    fn position_checks() {
        let cases = [
            (48.1, 11.5, PositionCheck::Valid),
            (-90.0, 180.0, PositionCheck::Valid),
            (0.0, 0.0, PositionCheck::NullIsland),
            (0.000_000_1, -0.000_000_1, PositionCheck::NullIsland),
            (0.0, 0.01, PositionCheck::Valid),
            (90.1, 0.0, PositionCheck::OutOfRange),
            (0.0, -180.5, PositionCheck::OutOfRange),
            (f64::NAN, 1.0, PositionCheck::NotFinite),
            (1.0, f64::INFINITY, PositionCheck::NotFinite),
        ];
        for (lat, lon, want) in cases {
            assert_eq!(check_position(lat, lon), want, "{lat},{lon}");
        }
        assert!(is_in_range(0.0, 0.0));
        assert!(!is_valid_position(0.0, 0.0));
        assert!(!is_in_range(91.0, 0.0));
        assert!(is_valid_position(-33.9, 151.2));
    }

    #[test]
    fn speeds() {
        assert_eq!(speed_mps(100.0, 10_000), Some(10.0));
        assert_eq!(speed_mps(100.0, 0), None);
        assert_eq!(speed_mps(100.0, -5), None);
        assert!(close(mps_to_kmh(10.0), 36.0, 1e-12));
    }

    #[test]
    fn bbox_grows() {
        let mut b = Bbox::point(1.0, 2.0);
        b.extend(-1.0, 5.0);
        b.extend(0.5, 3.0);
        assert_eq!(
            b,
            Bbox {
                min_lat: -1.0,
                min_lon: 2.0,
                max_lat: 1.0,
                max_lon: 5.0
            }
        );
        assert!(b.contains(0.0, 4.0));
        assert!(!b.contains(2.0, 4.0));
        let json = serde_json::to_string(&b).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"min_lat":-1.0,"min_lon":2.0,"max_lat":1.0,"max_lon":5.0}"#
        );
    }
}
