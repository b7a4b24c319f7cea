//! The seeded world: street-level images that "were already there" before anything was
//! uploaded, so that search, coverage and account statistics have something to find. It is
//! generated from [`WorldSpec`] when the sandbox starts and never saved ([`crate::persist`]
//! keeps only what clients did): the same spec always gives the same world.
//!
//! Images come as sequences (walks, rides and drives: points a few metres apart, headings
//! along the track, one shot every second or two) by a handful of made-up accounts and the
//! two sandbox accounts ([`crate::USERS`]), so that "my images" finds something before any
//! upload. Each sequence is on one or more of Mapillary, KartaView and Panoramax.
//!
//! # Ids
//!
//! Every id is derived from the image's or sequence's number, in ranges the emulators never
//! hand out to uploads, so the two never collide:
//!
//! | | World | Uploads |
//! |---|---|---|
//! | Mapillary image | `200000000000000 + n` | from `300000000000001` |
//! | Mapillary sequence | `sbxWorld` + 14 digits (22 characters, like a real key) | 22 random base62 |
//! | KartaView photo / sequence | `10000000 + n` / `3000000 + n` | from `90000001` / `4000001` |
//! | Panoramax picture / collection | UUID `5eed0000-0000-8000-8000-<n hex>` / `5eedc011-…` (version nibble 8) | random UUID v4 |

mod generate;
pub(crate) mod thumb;

use std::str::FromStr;

use crate::auth::Service;

/// Images in the default world.
pub const DEFAULT_WORLD_IMAGES: usize = 3000;
/// Seed of the default world.
pub const DEFAULT_WORLD_SEED: u64 = 20_240_517;

const MLY_IMAGE_BASE: u64 = 200_000_000_000_000;
const MLY_SEQUENCE_PREFIX: &str = "sbxWorld";
const KV_PHOTO_BASE: u64 = 10_000_000;
const KV_SEQUENCE_BASE: u64 = 3_000_000;
/// The KartaView ranges end where uploads begin.
const KV_PHOTO_END: u64 = 90_000_000;
const KV_SEQUENCE_END: u64 = 4_000_000;
const PNX_PICTURE_PREFIX: &str = "5eed0000-0000-8000-8000-";
const PNX_COLLECTION_PREFIX: &str = "5eedc011-0000-8000-8000-";

/// Which world to generate (`MTP_SANDBOX_WORLD`, `MTP_SANDBOX_WORLD_SEED`).
#[derive(Clone, Debug, PartialEq)]
pub struct WorldSpec {
    /// How many images (0 = no world).
    pub images: usize,
    /// All images in one square instead of the default cities.
    pub area: Option<WorldArea>,
    pub seed: u64,
}

/// A `km` × `km` square centred on `lat`, `lon`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorldArea {
    pub lat: f64,
    pub lon: f64,
    pub km: f64,
}

impl Default for WorldSpec {
    fn default() -> WorldSpec {
        WorldSpec {
            images: DEFAULT_WORLD_IMAGES,
            area: None,
            seed: DEFAULT_WORLD_SEED,
        }
    }
}

impl WorldSpec {
    /// No seeded images at all.
    pub fn none() -> WorldSpec {
        WorldSpec {
            images: 0,
            ..WorldSpec::default()
        }
    }

    /// `n` images spread over the default cities.
    pub fn images(n: usize) -> WorldSpec {
        WorldSpec {
            images: n,
            ..WorldSpec::default()
        }
    }

    /// `n` images in a `km` × `km` square centred on `lat`, `lon`.
    pub fn dense(n: usize, lat: f64, lon: f64, km: f64) -> WorldSpec {
        WorldSpec {
            images: n,
            area: Some(WorldArea { lat, lon, km }),
            ..WorldSpec::default()
        }
    }
}

/// `default`, `none`, `<n>` or `<n>@<lat>,<lon>,<km>` (the seed is left as it is).
impl FromStr for WorldSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<WorldSpec, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "unknown world {s:?}: use default, none, <n images> or <n images>@<lat>,<lon>,<km>"
            )
        };
        match s.to_ascii_lowercase().as_str() {
            "default" | "" => return Ok(WorldSpec::default()),
            "none" | "0" | "off" => return Ok(WorldSpec::none()),
            _ => {}
        }
        let (n, area) = match s.split_once('@') {
            Some((n, area)) => (n, Some(area)),
            None => (s, None),
        };
        let n: usize = n.trim().replace('_', "").parse().map_err(|_| bad())?;
        let Some(area) = area else {
            return Ok(WorldSpec::images(n));
        };
        let v: Vec<f64> = area
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        match v.as_slice() {
            &[lat, lon, km]
                if (-85.0..=85.0).contains(&lat)
                    && (-180.0..=180.0).contains(&lon)
                    && km > 0.0
                    && km <= 500.0 =>
            {
                Ok(WorldSpec::dense(n, lat, lon, km))
            }
            _ => Err(bad()),
        }
    }
}

/// How a sequence was captured (sets spacing, timing and camera).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Walk,
    Bike,
    Drive,
}

/// An account that owns world sequences: made up, or one of [`crate::USERS`].
#[derive(Clone, Debug)]
pub struct WorldUser {
    pub username: String,
    /// Index into [`crate::USERS`] for the sandbox accounts.
    pub sandbox_user: Option<usize>,
    pub mapillary_id: String,
    pub kartaview_id: u64,
    pub panoramax_id: String,
}

/// One image (no bytes: its thumbnails are generated). About 40 bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorldImage {
    /// Its number in [`World::images`]; the per-service ids derive from it.
    pub n: u32,
    /// Its sequence's number in [`World::sequences`].
    pub sequence: u32,
    /// 0-based position in its sequence.
    pub index: u32,
    pub lat: f64,
    pub lon: f64,
    pub captured_at_ms: i64,
    /// Degrees clockwise from north, along the track.
    pub heading: f32,
}

impl WorldImage {
    pub fn mapillary_id(&self) -> String {
        self.mapillary_number().to_string()
    }

    /// [`WorldImage::mapillary_id`] as a number.
    pub fn mapillary_number(&self) -> u64 {
        MLY_IMAGE_BASE + u64::from(self.n)
    }

    pub fn kartaview_id(&self) -> u64 {
        KV_PHOTO_BASE + u64::from(self.n)
    }

    pub fn panoramax_id(&self) -> String {
        format!("{PNX_PICTURE_PREFIX}{:012x}", self.n)
    }
}

/// One sequence: `len` consecutive images from `first` in [`World::images`].
#[derive(Clone, Debug, PartialEq)]
pub struct WorldSequence {
    pub n: u32,
    /// Index into [`World::users`].
    pub user: u8,
    pub first: u32,
    pub len: u32,
    pub is_pano: bool,
    pub transport: Transport,
    pub city: &'static str,
    /// Along the track.
    pub length_km: f64,
    pub on_mapillary: bool,
    pub on_kartaview: bool,
    pub on_panoramax: bool,
    pub altitude: f64,
}

impl WorldSequence {
    /// Whether the sequence was published on `service` (only Mapillary, KartaView and
    /// Panoramax hold world sequences).
    pub fn on(&self, service: Service) -> bool {
        match service {
            Service::Mapillary => self.on_mapillary,
            Service::KartaView => self.on_kartaview,
            Service::Panoramax => self.on_panoramax,
            Service::Osm | Service::Mtpw => false,
        }
    }

    pub fn mapillary_key(&self) -> String {
        format!("{MLY_SEQUENCE_PREFIX}{:014}", self.n)
    }

    pub fn kartaview_id(&self) -> u64 {
        KV_SEQUENCE_BASE + u64::from(self.n)
    }

    pub fn panoramax_id(&self) -> String {
        format!("{PNX_COLLECTION_PREFIX}{:012x}", self.n)
    }

    pub fn title(&self) -> String {
        let what = match self.transport {
            Transport::Walk => "Walk",
            Transport::Bike => "Ride",
            Transport::Drive => "Drive",
        };
        format!("{what} in {} #{}", self.city, self.n)
    }

    /// `(make, model)` of the camera.
    pub fn camera(&self) -> (&'static str, &'static str) {
        match (self.is_pano, self.transport) {
            (true, _) => ("GoPro", "MAX"),
            (false, Transport::Walk) => ("Apple", "iPhone 13"),
            (false, Transport::Bike) => ("GoPro", "HERO9 Black"),
            (false, Transport::Drive) => ("Garmin", "VIRB Ultra 30"),
        }
    }

    /// `(width, height)` of the (imaginary) original.
    pub fn size(&self) -> (u32, u32) {
        if self.is_pano {
            (5760, 2880)
        } else {
            (4000, 3000)
        }
    }
}

/// `min_lon, min_lat, max_lon, max_lat`, edges included.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorldBbox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl WorldBbox {
    pub fn new(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> WorldBbox {
        WorldBbox {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        }
    }

    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }

    /// Whether two boxes share at least a point.
    pub fn intersects(&self, o: &WorldBbox) -> bool {
        self.min_lon <= o.max_lon
            && o.min_lon <= self.max_lon
            && self.min_lat <= o.max_lat
            && o.min_lat <= self.max_lat
    }

    /// Area in square degrees.
    pub fn area(&self) -> f64 {
        (self.max_lon - self.min_lon).max(0.0) * (self.max_lat - self.min_lat).max(0.0)
    }
}

/// The generated world (see the module docs). Cheap to query: images are indexed by
/// longitude.
#[derive(Debug)]
pub struct World {
    spec: WorldSpec,
    users: Vec<WorldUser>,
    sequences: Vec<WorldSequence>,
    images: Vec<WorldImage>,
    /// Image numbers sorted by longitude: a box query is two binary searches and a scan of
    /// the strip between them.
    by_lon: Vec<u32>,
    /// Each sequence's box, in sequence order.
    extents: Vec<WorldBbox>,
}

impl World {
    /// Generates the world `spec` describes (the same spec always gives the same world).
    pub fn generate(spec: &WorldSpec) -> World {
        generate::generate(spec)
    }

    pub fn spec(&self) -> &WorldSpec {
        &self.spec
    }

    pub fn users(&self) -> &[WorldUser] {
        &self.users
    }

    pub fn sequences(&self) -> &[WorldSequence] {
        &self.sequences
    }

    pub fn images(&self) -> &[WorldImage] {
        &self.images
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    pub fn user_of(&self, seq: &WorldSequence) -> &WorldUser {
        &self.users[usize::from(seq.user)]
    }

    pub fn sequence_of(&self, img: &WorldImage) -> &WorldSequence {
        &self.sequences[img.sequence as usize]
    }

    /// The images of a sequence, in order.
    pub fn sequence_images(&self, seq: &WorldSequence) -> &[WorldImage] {
        let start = seq.first as usize;
        &self.images[start..start + seq.len as usize]
    }

    /// The box around a sequence's images.
    pub fn extent(&self, seq: &WorldSequence) -> WorldBbox {
        self.extents[seq.n as usize]
    }

    /// Whether an image is published on `service`.
    pub fn on(&self, img: &WorldImage, service: Service) -> bool {
        self.sequence_of(img).on(service)
    }

    /// The images inside `bbox` (on any service), in longitude order.
    pub fn in_bbox(&self, bbox: WorldBbox) -> impl Iterator<Item = &WorldImage> + '_ {
        let from = self
            .by_lon
            .partition_point(|&i| self.images[i as usize].lon < bbox.min_lon);
        let to = self
            .by_lon
            .partition_point(|&i| self.images[i as usize].lon <= bbox.max_lon);
        self.by_lon[from..to.max(from)]
            .iter()
            .map(|&i| &self.images[i as usize])
            .filter(move |img| bbox.contains(img.lat, img.lon))
    }

    /// The images inside `bbox` that `service` shows, in longitude order.
    pub fn in_bbox_on(
        &self,
        bbox: WorldBbox,
        service: Service,
    ) -> impl Iterator<Item = &WorldImage> + '_ {
        self.in_bbox(bbox).filter(move |i| self.on(i, service))
    }

    /// Every image `service` shows, in image order.
    pub fn images_on(&self, service: Service) -> impl Iterator<Item = &WorldImage> + '_ {
        self.sequences
            .iter()
            .filter(move |s| s.on(service))
            .flat_map(|s| self.sequence_images(s).iter())
    }

    /// A Mapillary image by id.
    pub fn mapillary_image(&self, id: &str) -> Option<&WorldImage> {
        let n = id.parse::<u64>().ok()?.checked_sub(MLY_IMAGE_BASE)?;
        let img = self.images.get(usize::try_from(n).ok()?)?;
        self.on(img, Service::Mapillary).then_some(img)
    }

    /// A Mapillary sequence by key.
    pub fn mapillary_sequence(&self, key: &str) -> Option<&WorldSequence> {
        let digits = key.strip_prefix(MLY_SEQUENCE_PREFIX)?;
        if digits.len() != 14 {
            return None;
        }
        let seq = self.sequences.get(digits.parse::<usize>().ok()?)?;
        seq.on_mapillary.then_some(seq)
    }

    /// A KartaView photo by id.
    pub fn kartaview_photo(&self, id: u64) -> Option<&WorldImage> {
        if !(KV_PHOTO_BASE..KV_PHOTO_END).contains(&id) {
            return None;
        }
        let img = self.images.get(usize::try_from(id - KV_PHOTO_BASE).ok()?)?;
        self.on(img, Service::KartaView).then_some(img)
    }

    /// A KartaView sequence by id.
    pub fn kartaview_sequence(&self, id: u64) -> Option<&WorldSequence> {
        if !(KV_SEQUENCE_BASE..KV_SEQUENCE_END).contains(&id) {
            return None;
        }
        let seq = self
            .sequences
            .get(usize::try_from(id - KV_SEQUENCE_BASE).ok()?)?;
        seq.on_kartaview.then_some(seq)
    }

    /// A Panoramax picture by id.
    pub fn panoramax_picture(&self, id: &str) -> Option<&WorldImage> {
        let n = parse_hex_suffix(id, PNX_PICTURE_PREFIX)?;
        let img = self.images.get(n)?;
        self.on(img, Service::Panoramax).then_some(img)
    }

    /// A Panoramax collection by id.
    pub fn panoramax_collection(&self, id: &str) -> Option<&WorldSequence> {
        let n = parse_hex_suffix(id, PNX_COLLECTION_PREFIX)?;
        let seq = self.sequences.get(n)?;
        seq.on_panoramax.then_some(seq)
    }

    /// The world user with this username.
    pub fn user_named(&self, username: &str) -> Option<(u8, &WorldUser)> {
        self.users
            .iter()
            .enumerate()
            .find(|(_, u)| u.username == username)
            .and_then(|(i, u)| Some((u8::try_from(i).ok()?, u)))
    }
}

fn parse_hex_suffix(id: &str, prefix: &str) -> Option<usize> {
    let hex = id.to_ascii_lowercase();
    let hex = hex.strip_prefix(prefix)?.to_owned();
    if hex.len() != 12 {
        return None;
    }
    usize::from_str_radix(&hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_syntax() {
        assert_eq!("default".parse::<WorldSpec>(), Ok(WorldSpec::default()));
        assert_eq!("none".parse::<WorldSpec>(), Ok(WorldSpec::none()));
        assert_eq!("500".parse::<WorldSpec>(), Ok(WorldSpec::images(500)));
        assert_eq!(
            "50000@48.85,2.35,10".parse::<WorldSpec>(),
            Ok(WorldSpec::dense(50_000, 48.85, 2.35, 10.0))
        );
        assert!("lots".parse::<WorldSpec>().is_err());
        assert!("10@1,2".parse::<WorldSpec>().is_err());
        assert!("10@1,2,0".parse::<WorldSpec>().is_err());
    }

    #[test]
    fn ids_round_trip() {
        let w = World::generate(&WorldSpec::images(400));
        for img in w.images() {
            let s = w.sequence_of(img);
            if s.on_mapillary {
                assert_eq!(w.mapillary_image(&img.mapillary_id()), Some(img));
                assert_eq!(w.mapillary_sequence(&s.mapillary_key()), Some(s));
                assert_eq!(s.mapillary_key().len(), 22);
            } else {
                assert_eq!(w.mapillary_image(&img.mapillary_id()), None);
            }
            if s.on_kartaview {
                assert_eq!(w.kartaview_photo(img.kartaview_id()), Some(img));
                assert_eq!(w.kartaview_sequence(s.kartaview_id()), Some(s));
            }
            if s.on_panoramax {
                assert_eq!(w.panoramax_picture(&img.panoramax_id()), Some(img));
                assert_eq!(w.panoramax_collection(&s.panoramax_id()), Some(s));
                assert!(uuid::Uuid::parse_str(&img.panoramax_id()).is_ok());
            }
        }
        assert_eq!(w.mapillary_image("300000000000001"), None);
        assert_eq!(w.kartaview_photo(90_000_001), None);
    }

    #[test]
    fn bbox_index_matches_a_scan() {
        let w = World::generate(&WorldSpec::default());
        let b = WorldBbox::new(2.34, 48.85, 2.36, 48.86);
        let mut fast: Vec<u32> = w.in_bbox(b).map(|i| i.n).collect();
        fast.sort_unstable();
        let slow: Vec<u32> = w
            .images()
            .iter()
            .filter(|i| b.contains(i.lat, i.lon))
            .map(|i| i.n)
            .collect();
        assert!(!slow.is_empty());
        assert_eq!(fast, slow);
    }
}
