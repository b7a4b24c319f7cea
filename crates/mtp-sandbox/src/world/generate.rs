//! Builds a [`World`] from its spec. A hand-written SplitMix64 drives it rather than `rand`,
//! whose generators may change their streams between versions: the world for a given seed
//! must stay the same for as long as tests compare against it.

use super::{Transport, World, WorldBbox, WorldImage, WorldSequence, WorldSpec, WorldUser};
use crate::auth::USERS;

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Where images go: a disc around a city centre, or the spec's square.
#[derive(Clone, Copy)]
struct Place {
    name: &'static str,
    lat: f64,
    lon: f64,
    /// Disc radius, or half the square's side.
    half_km: f64,
    square: bool,
    /// Share of the images.
    share: f64,
    altitude: f64,
}

/// Paris first and biggest: the test photos and `mtp dev gen-photos` start at its centre,
/// so "what is already here" around a fresh sequence finds something.
const CITIES: [Place; 4] = [
    Place {
        name: "Paris",
        lat: 48.8566,
        lon: 2.3522,
        half_km: 2.0,
        square: false,
        share: 0.4,
        altitude: 35.0,
    },
    Place {
        name: "London",
        lat: 51.5074,
        lon: -0.1278,
        half_km: 2.5,
        square: false,
        share: 0.25,
        altitude: 15.0,
    },
    Place {
        name: "Berlin",
        lat: 52.5200,
        lon: 13.4050,
        half_km: 2.5,
        square: false,
        share: 0.2,
        altitude: 40.0,
    },
    Place {
        name: "Lisbon",
        lat: 38.7223,
        lon: -9.1393,
        half_km: 2.0,
        square: false,
        share: 0.15,
        altitude: 60.0,
    },
];

/// The made-up accounts; the sandbox accounts follow them in [`World::users`].
const MADE_UP_USERS: [&str; 6] = [
    "anna_maps",
    "velo_bruno",
    "street_kim",
    "lisboa_luz",
    "spree_jonas",
    "thames_tom",
];

/// (Mapillary, KartaView, Panoramax): every non-empty combination.
const SERVICE_SETS: [(bool, bool, bool); 7] = [
    (true, false, false),
    (false, true, false),
    (false, false, true),
    (true, true, false),
    (true, false, true),
    (false, true, true),
    (true, true, true),
];

/// Capture times fall between these (UTC, unix seconds): 2023-03-01 and 2025-09-30.
const FIRST_DAY: i64 = 1_677_628_800;
const DAYS: u64 = 944;

const M_PER_DEG: f64 = 111_320.0;

fn users() -> Vec<WorldUser> {
    let made_up = MADE_UP_USERS.iter().enumerate().map(|(i, name)| WorldUser {
        username: (*name).to_owned(),
        sandbox_user: None,
        mapillary_id: format!("1047290000001{i:02}"),
        kartaview_id: 7_000_101 + i as u64,
        panoramax_id: format!("5b0b1f2e-0000-4000-8000-0000000001{i:02}"),
    });
    let sandbox = USERS.iter().enumerate().map(|(i, u)| WorldUser {
        username: u.username.to_owned(),
        sandbox_user: Some(i),
        mapillary_id: u.mapillary_id.to_owned(),
        kartaview_id: u.kartaview_id,
        panoramax_id: u.panoramax_id.to_owned(),
    });
    made_up.chain(sandbox).collect()
}

pub(super) fn generate(spec: &WorldSpec) -> World {
    let users = users();
    let mut rng = Rng(spec.seed);
    let places: Vec<Place> = match spec.area {
        Some(a) => vec![Place {
            name: "the dense area",
            lat: a.lat,
            lon: a.lon,
            half_km: a.km / 2.0,
            square: true,
            share: 1.0,
            altitude: 50.0,
        }],
        None => CITIES.to_vec(),
    };
    let mut images: Vec<WorldImage> = Vec::with_capacity(spec.images);
    let mut sequences: Vec<WorldSequence> = Vec::new();
    let mut extents: Vec<WorldBbox> = Vec::new();
    let mut left = spec.images;
    for (pi, place) in places.iter().enumerate() {
        let mut budget = if pi + 1 == places.len() {
            left
        } else {
            ((spec.images as f64 * place.share).round() as usize).min(left)
        };
        left -= budget;
        let mut in_place = 0;
        while budget > 0 {
            let mut len = rng.range(20, 120) as usize;
            // No stub of a few images at the end of a place.
            if len >= budget || budget - len < 10 {
                len = budget;
            }
            budget -= len;
            let (seq, extent) = walk(
                &mut rng,
                place,
                in_place,
                sequences.len(),
                users.len(),
                len,
                &mut images,
            );
            sequences.push(seq);
            extents.push(extent);
            in_place += 1;
        }
    }
    let mut by_lon: Vec<u32> = (0..images.len() as u32).collect();
    by_lon.sort_unstable_by(|&a, &b| {
        images[a as usize]
            .lon
            .total_cmp(&images[b as usize].lon)
            .then(a.cmp(&b))
    });
    World {
        spec: spec.clone(),
        users,
        sequences,
        images,
        by_lon,
        extents,
    }
}

/// One sequence: a track that wanders (slow drift, the odd right-angle turn at a
/// corner) and turns back towards the middle when it strays out of its place.
fn walk(
    rng: &mut Rng,
    place: &Place,
    in_place: usize,
    n: usize,
    n_users: usize,
    len: usize,
    images: &mut Vec<WorldImage>,
) -> (WorldSequence, WorldBbox) {
    // Round-robin users, and service sets that cycle at another pace, so that every
    // account has sequences on every combination of services once there are 56 of them.
    let user = n % n_users;
    let near_test_photos = place.name == "Paris" && in_place < 2;
    // The ones by the test photos are on every service, so that each one has something
    // to show around a fresh upload there.
    let services = if near_test_photos {
        (true, true, true)
    } else {
        SERVICE_SETS[(2 * (n / n_users) + user) % SERVICE_SETS.len()]
    };
    let transport = match rng.range(0, 3) {
        0 | 1 => Transport::Walk,
        2 => Transport::Bike,
        _ => Transport::Drive,
    };
    let is_pano = rng.range(0, 5) == 0;
    let (step_lo, step_span, interval_ms) = match transport {
        Transport::Walk => (3.0, 1.5, 2000),
        Transport::Bike => (5.0, 2.0, 2000),
        Transport::Drive => (10.0, 4.0, 1000),
    };
    let step_m = step_lo + rng.unit() * step_span;
    let (mut lat, mut lon) = if near_test_photos {
        // Right where the test photos are (30 m and 120 m east of the centre).
        let d = if in_place == 0 { 30.0 } else { 120.0 };
        (
            place.lat,
            place.lon + d / (M_PER_DEG * place.lat.to_radians().cos()),
        )
    } else if place.square {
        (
            place.lat + (rng.unit() - 0.5) * 2.0 * place.half_km * 1000.0 / M_PER_DEG,
            place.lon
                + (rng.unit() - 0.5) * 2.0 * place.half_km * 1000.0
                    / (M_PER_DEG * place.lat.to_radians().cos()),
        )
    } else {
        let r = place.half_km * 1000.0 * rng.unit().sqrt();
        let a = rng.unit() * std::f64::consts::TAU;
        (
            place.lat + r * a.cos() / M_PER_DEG,
            place.lon + r * a.sin() / (M_PER_DEG * place.lat.to_radians().cos()),
        )
    };
    let mut heading = rng.unit() * 360.0;
    let day = rng.range(0, DAYS - 1) as i64;
    let second_of_day = 8 * 3600 + rng.range(0, 10 * 3600) as i64;
    let start_ms = (FIRST_DAY + day * 86_400 + second_of_day) * 1000;
    let first = images.len() as u32;
    let mut ext = WorldBbox::new(lon, lat, lon, lat);
    let mut length_m = 0.0;
    for k in 0..len {
        heading += (rng.unit() - 0.5) * 6.0;
        if rng.unit() < 0.03 {
            heading += if rng.unit() < 0.5 { 90.0 } else { -90.0 };
        }
        if strayed(place, lat, lon) {
            heading = bearing((lat, lon), (place.lat, place.lon)) + (rng.unit() - 0.5) * 40.0;
        }
        heading = heading.rem_euclid(360.0);
        ext.min_lat = ext.min_lat.min(lat);
        ext.max_lat = ext.max_lat.max(lat);
        ext.min_lon = ext.min_lon.min(lon);
        ext.max_lon = ext.max_lon.max(lon);
        images.push(WorldImage {
            n: images.len() as u32,
            sequence: n as u32,
            index: k as u32,
            lat,
            lon,
            captured_at_ms: start_ms + k as i64 * interval_ms,
            heading: heading as f32,
        });
        if k + 1 < len {
            let h = heading.to_radians();
            lat += step_m * h.cos() / M_PER_DEG;
            lon += step_m * h.sin() / (M_PER_DEG * lat.to_radians().cos());
            length_m += step_m;
        }
    }
    let seq = WorldSequence {
        n: n as u32,
        user: user as u8,
        first,
        len: len as u32,
        is_pano,
        transport,
        city: place.name,
        length_km: length_m / 1000.0,
        on_mapillary: services.0,
        on_kartaview: services.1,
        on_panoramax: services.2,
        altitude: place.altitude,
    };
    (seq, ext)
}

fn strayed(place: &Place, lat: f64, lon: f64) -> bool {
    let dy = (lat - place.lat) * M_PER_DEG / 1000.0;
    let dx = (lon - place.lon) * M_PER_DEG * place.lat.to_radians().cos() / 1000.0;
    if place.square {
        dx.abs() > place.half_km * 0.95 || dy.abs() > place.half_km * 0.95
    } else {
        dx.hypot(dy) > place.half_km * 1.2
    }
}

/// Initial bearing from `a` to `b`, degrees (flat-earth: places are a few km wide).
fn bearing(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dy = b.0 - a.0;
    let dx = (b.1 - a.1) * a.0.to_radians().cos();
    dx.atan2(dy).to_degrees()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Service;

    #[test]
    fn exact_counts_and_shapes() {
        for n in [0, 1, 15, 3000, 12_345] {
            let w = World::generate(&WorldSpec::images(n));
            assert_eq!(w.images().len(), n);
            let total: u32 = w.sequences().iter().map(|s| s.len).sum();
            assert_eq!(total as usize, n);
            for (i, img) in w.images().iter().enumerate() {
                assert_eq!(img.n as usize, i);
                let s = w.sequence_of(img);
                assert_eq!(w.sequence_images(s)[img.index as usize], *img);
            }
        }
    }

    #[test]
    fn dense_area_stays_in_its_square() {
        let w = World::generate(&WorldSpec::dense(50_000, 48.85, 2.35, 10.0));
        assert_eq!(w.images().len(), 50_000);
        let half_lat = 5.0 / 111.32;
        let half_lon = 5.0 / (111.32 * 48.85f64.to_radians().cos());
        for i in w.images() {
            assert!((i.lat - 48.85).abs() <= half_lat * 1.01, "{i:?}");
            assert!((i.lon - 2.35).abs() <= half_lon * 1.01, "{i:?}");
        }
    }

    #[test]
    fn consecutive_points_are_metres_apart_and_times_increase() {
        let w = World::generate(&WorldSpec::default());
        for s in w.sequences() {
            for pair in w.sequence_images(s).windows(2) {
                let d =
                    crate::geo::distance_m((pair[0].lat, pair[0].lon), (pair[1].lat, pair[1].lon));
                assert!((2.5..=15.0).contains(&d), "{d} m in {s:?}");
                assert!(pair[1].captured_at_ms > pair[0].captured_at_ms);
            }
        }
    }

    #[test]
    fn every_sandbox_user_is_on_every_service() {
        let w = World::generate(&WorldSpec::default());
        for (u, user) in w.users().iter().enumerate() {
            for service in [Service::Mapillary, Service::KartaView, Service::Panoramax] {
                assert!(
                    w.sequences()
                        .iter()
                        .any(|s| usize::from(s.user) == u && s.on(service)),
                    "{} has nothing on {service:?}",
                    user.username
                );
            }
        }
        assert!(w.sequences().iter().any(|s| s.is_pano));
        let here = crate::world::WorldBbox::new(2.3500, 48.8550, 2.3560, 48.8580);
        for service in [Service::Mapillary, Service::KartaView, Service::Panoramax] {
            assert!(w.in_bbox_on(here, service).count() > 0, "{service:?}");
        }
    }
}
