//! What is already on the services in an area: Mapillary's `/images`, KartaView's
//! `nearby-photos` and Panoramax's `/api/search` (PROTOCOLS §6), each read the way that
//! service pages and limits it, into one shape ([`FoundImage`]).
//!
//! Results stream: every reply's images go to a [`Sink`] as soon as they are read, so a
//! caller can draw them while the rest arrive. Cancelling is dropping the future.

pub mod kartaview;
pub mod mapillary;
pub mod panoramax;

use std::collections::HashSet;
use std::time::Duration;

use mtp_core::Destination;
use mtp_core::clock::Millis;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, ProviderError};

/// A box in WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Bbox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

/// Metres per degree of latitude (and of longitude at the equator).
const METRES_PER_DEGREE: f64 = 111_320.0;

impl Bbox {
    /// Checks the corners: numbers, on the globe, in order.
    pub fn new(min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64) -> Result<Bbox, String> {
        let all = [min_lon, min_lat, max_lon, max_lat];
        if all.iter().any(|v| !v.is_finite()) {
            return Err("the box has a corner that is not a number".into());
        }
        if !(-180.0..=180.0).contains(&min_lon) || !(-180.0..=180.0).contains(&max_lon) {
            return Err("longitudes must be between -180 and 180".into());
        }
        if !(-90.0..=90.0).contains(&min_lat) || !(-90.0..=90.0).contains(&max_lat) {
            return Err("latitudes must be between -90 and 90".into());
        }
        if min_lon >= max_lon || min_lat >= max_lat {
            return Err(
                "the box must be minLon,minLat,maxLon,maxLat with each minimum below its maximum"
                    .into(),
            );
        }
        Ok(Bbox {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        })
    }

    /// Parses `minLon,minLat,maxLon,maxLat`.
    pub fn parse(text: &str) -> Result<Bbox, String> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let numbers: Option<Vec<f64>> = parts.iter().map(|p| p.parse().ok()).collect();
        match numbers.as_deref() {
            Some(&[a, b, c, d]) => Bbox::new(a, b, c, d),
            _ => Err(format!(
                "{text:?} is not a box: write minLon,minLat,maxLon,maxLat, e.g. 2.33,48.85,2.36,48.87"
            )),
        }
    }

    /// The box around a point that holds every place within `radius_m` of it.
    pub fn around(lat: f64, lon: f64, radius_m: f64) -> Result<Bbox, String> {
        if !lat.is_finite() || !lon.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(format!("{lat},{lon} is not a place on the globe"));
        }
        if !radius_m.is_finite() || radius_m <= 0.0 {
            return Err("the radius must be a positive number of metres".into());
        }
        let dlat = radius_m / METRES_PER_DEGREE;
        let cos = lat.to_radians().cos().max(0.01);
        let dlon = (radius_m / (METRES_PER_DEGREE * cos)).min(180.0);
        Bbox::new(
            (lon - dlon).max(-180.0),
            (lat - dlat).max(-90.0),
            (lon + dlon).min(180.0),
            (lat + dlat).min(90.0),
        )
    }

    /// `minLon,minLat,maxLon,maxLat`, as Mapillary and Panoramax take it.
    pub fn param(&self) -> String {
        format!(
            "{},{},{},{}",
            self.min_lon, self.min_lat, self.max_lon, self.max_lat
        )
    }

    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }

    pub fn width(&self) -> f64 {
        self.max_lon - self.min_lon
    }

    pub fn height(&self) -> f64 {
        self.max_lat - self.min_lat
    }

    pub fn area_sqdeg(&self) -> f64 {
        self.width() * self.height()
    }

    /// The four quarters of the box.
    pub fn quarters(&self) -> [Bbox; 4] {
        let mid_lon = (self.min_lon + self.max_lon) / 2.0;
        let mid_lat = (self.min_lat + self.max_lat) / 2.0;
        let b = |min_lon, min_lat, max_lon, max_lat| Bbox {
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        };
        [
            b(self.min_lon, self.min_lat, mid_lon, mid_lat),
            b(mid_lon, self.min_lat, self.max_lon, mid_lat),
            b(self.min_lon, mid_lat, mid_lon, self.max_lat),
            b(mid_lon, mid_lat, self.max_lon, self.max_lat),
        ]
    }

    /// The box cut into a grid of equal tiles, each no larger than `max_sqdeg`.
    pub fn tiles(&self, max_sqdeg: f64) -> Vec<Bbox> {
        let n = (self.area_sqdeg() / max_sqdeg.max(1e-9))
            .sqrt()
            .ceil()
            .max(1.0) as usize;
        let (w, h) = (self.width() / n as f64, self.height() / n as f64);
        let mut out = Vec::with_capacity(n * n);
        for row in 0..n {
            for col in 0..n {
                let min_lon = self.min_lon + w * col as f64;
                let min_lat = self.min_lat + h * row as f64;
                // The last row and column end exactly on the box's edge.
                let max_lon = if col + 1 == n {
                    self.max_lon
                } else {
                    min_lon + w
                };
                let max_lat = if row + 1 == n {
                    self.max_lat
                } else {
                    min_lat + h
                };
                out.push(Bbox {
                    min_lon,
                    min_lat,
                    max_lon,
                    max_lat,
                });
            }
        }
        out
    }
}

/// What to look for, the same for every service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchQuery {
    pub bbox: Option<Bbox>,
    /// Captured at or after (epoch ms).
    pub from_ms: Option<Millis>,
    /// Captured at or before (epoch ms).
    pub to_ms: Option<Millis>,
    /// Only this user's images (the service's username).
    pub user: Option<String>,
    /// Only 360° images.
    pub pano_only: bool,
}

impl SearchQuery {
    pub fn in_time(&self, captured_at_ms: Option<Millis>) -> bool {
        match captured_at_ms {
            Some(t) => self.from_ms.is_none_or(|f| t >= f) && self.to_ms.is_none_or(|e| t <= e),
            None => self.from_ms.is_none() && self.to_ms.is_none(),
        }
    }

    pub fn by_user(&self, user: Option<&str>) -> bool {
        match (&self.user, user) {
            (None, _) => true,
            (Some(want), Some(got)) => want.eq_ignore_ascii_case(got),
            (Some(_), None) => false,
        }
    }

    pub fn pano_ok(&self, is_pano: Option<bool>) -> bool {
        !self.pano_only || is_pano == Some(true)
    }
}

/// One image on one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct FoundImage {
    pub service: Destination,
    pub id: String,
    pub lon: f64,
    pub lat: f64,
    pub captured_at_ms: Option<Millis>,
    /// Degrees clockwise from north.
    pub heading: Option<f64>,
    pub sequence_id: Option<String>,
    pub user: Option<String>,
    /// `None` when the service does not say.
    pub is_pano: Option<bool>,
    /// Its page on the service.
    pub page_url: Option<String>,
    pub thumb_url: Option<String>,
}

/// Where found images go, a reply's worth at a time.
pub type Sink<'a> = &'a (dyn Fn(Vec<FoundImage>) + Send + Sync);

/// How one service's search went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct SearchSummary {
    /// Requests sent (retries included).
    pub requests: u32,
    /// Distinct images sent to the sink.
    pub images: usize,
    /// Times a reply said "too many requests" and the search waited.
    pub rate_limited: u32,
    /// What the results miss and why, in the user's words (empty: nothing is missing).
    pub incomplete: Vec<String>,
}

/// How hard a search tries before giving up on a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Patience {
    /// Tries of one request, the first included.
    pub tries: u32,
    /// Wait before the second try when the server names none; doubled each time.
    pub first_wait: Duration,
    /// Never wait longer than this between tries, whatever the server asks.
    pub max_wait: Duration,
}

impl Default for Patience {
    fn default() -> Self {
        Patience {
            tries: 5,
            first_wait: Duration::from_millis(250),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// Runs `call` until it succeeds, is refused for good, or has had its tries; waits as the
/// server asks on "too many requests" and on transient failures.
pub(crate) async fn patiently<T, F, Fut>(
    patience: Patience,
    summary: &std::sync::Mutex<SearchSummary>,
    mut call: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let mut wait = patience.first_wait;
    let mut tries = 0;
    loop {
        tries += 1;
        bump(summary, |s| s.requests += 1);
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) => match e.kind() {
                ErrorKind::Retry { after } if tries < patience.tries => {
                    if e.status() == Some(429) {
                        bump(summary, |s| s.rate_limited += 1);
                    }
                    let pause = after.unwrap_or(wait).min(patience.max_wait);
                    tracing::info!("search: {e}; trying again in {pause:?}");
                    tokio::time::sleep(pause).await;
                    wait = (wait * 2).min(patience.max_wait);
                }
                _ => return Err(e),
            },
        }
    }
}

pub(crate) fn bump(summary: &std::sync::Mutex<SearchSummary>, f: impl FnOnce(&mut SearchSummary)) {
    let mut s = summary
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut s);
}

/// Passes on only images not passed on before (tiles share their edges, and a split
/// tile's quarters hold what the full tile already returned).
pub(crate) struct Dedup<'a> {
    seen: std::sync::Mutex<HashSet<String>>,
    sink: Sink<'a>,
    summary: &'a std::sync::Mutex<SearchSummary>,
}

impl<'a> Dedup<'a> {
    pub(crate) fn new(sink: Sink<'a>, summary: &'a std::sync::Mutex<SearchSummary>) -> Self {
        Dedup {
            seen: std::sync::Mutex::new(HashSet::new()),
            sink,
            summary,
        }
    }

    pub(crate) fn send(&self, images: Vec<FoundImage>) {
        let fresh: Vec<FoundImage> = {
            let mut seen = self
                .seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            images
                .into_iter()
                .filter(|i| seen.insert(i.id.clone()))
                .collect()
        };
        if !fresh.is_empty() {
            bump(self.summary, |s| s.images += fresh.len());
            (self.sink)(fresh);
        }
    }
}

/// Parses RFC 3339 into epoch ms.
pub(crate) fn rfc3339_ms(text: &str) -> Option<Millis> {
    let at =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_box_is_checked_and_parsed() {
        let b = Bbox::parse("2.33, 48.85,2.36,48.87").unwrap();
        assert_eq!(b.param(), "2.33,48.85,2.36,48.87");
        assert!(Bbox::parse("2.36,48.85,2.33,48.87").is_err());
        assert!(
            Bbox::parse("2.33,48.85,2.36")
                .unwrap_err()
                .contains("minLon")
        );
        assert!(Bbox::parse("200,48.85,201,48.87").is_err());
        assert!(Bbox::parse("nan,1,2,3").is_err());
    }

    #[test]
    fn around_a_point_holds_the_radius() {
        let b = Bbox::around(48.8566, 2.3522, 1000.0).unwrap();
        let h_m = b.height() * METRES_PER_DEGREE;
        let w_m = b.width() * METRES_PER_DEGREE * 48.8566_f64.to_radians().cos();
        assert!((h_m - 2000.0).abs() < 1.0, "{h_m}");
        assert!((w_m - 2000.0).abs() < 1.0, "{w_m}");
        assert!(Bbox::around(48.0, 2.0, 0.0).is_err());
        assert!(Bbox::around(95.0, 2.0, 10.0).is_err());
    }

    #[test]
    fn tiles_cover_the_box_exactly_and_are_small_enough() {
        let b = Bbox::new(2.0, 48.0, 2.35, 48.2).unwrap();
        let tiles = b.tiles(0.01);
        assert!(tiles.iter().all(|t| t.area_sqdeg() <= 0.01 + 1e-12));
        let total: f64 = tiles.iter().map(Bbox::area_sqdeg).sum();
        assert!((total - b.area_sqdeg()).abs() < 1e-9);
        assert_eq!(tiles.last().unwrap().max_lon, 2.35);
        assert_eq!(tiles.last().unwrap().max_lat, 48.2);
        assert_eq!(b.tiles(1.0).len(), 1);
        let q = b.quarters();
        assert_eq!(q[0].min_lon, 2.0);
        assert_eq!(q[3].max_lat, 48.2);
    }

    #[test]
    fn filters_read_as_a_user_would_expect() {
        let q = SearchQuery {
            from_ms: Some(10),
            to_ms: Some(20),
            user: Some("Anna".into()),
            pano_only: true,
            ..SearchQuery::default()
        };
        assert!(q.in_time(Some(10)) && q.in_time(Some(20)) && !q.in_time(Some(21)));
        assert!(!q.in_time(None));
        assert!(SearchQuery::default().in_time(None));
        assert!(q.by_user(Some("anna")) && !q.by_user(Some("bob")) && !q.by_user(None));
        assert!(q.pano_ok(Some(true)) && !q.pano_ok(None));
    }
}
