//! Explore: what is already on Mapillary, KartaView and Panoramax in an area, by time and
//! user, streamed as it arrives and written out as GeoJSON (RFC 7946). Shared by
//! `mtp search` and the desktop app's Explore place and Import overlay.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use mtp_core::Destination;
use mtp_core::geo::distance_m;
use mtp_providers::search::{
    Bbox, FoundImage, Patience, SearchQuery, SearchSummary, kartaview, mapillary, panoramax,
};
use mtp_providers::{KartaViewClient, MapillaryClient, PanoramaxClient};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::{App, AppError, AppResult};

/// The services Explore can search.
pub const SEARCHABLE: [Destination; 3] = [
    Destination::Mapillary,
    Destination::Kartaview,
    Destination::Panoramax,
];

/// A circle: a place and a radius.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct Near {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
}

/// Who took the images.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum UserFilter {
    /// Anyone.
    #[default]
    Anyone,
    /// The connected account on each service.
    Me,
    /// This username (the same on every service searched).
    Named(String),
}

/// What to look for.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ts_rs::TS)]
pub struct ExploreQuery {
    pub services: Vec<Destination>,
    /// Either a box…
    pub bbox: Option<Bbox>,
    /// …or a circle (a box for the services, then filtered by true distance).
    pub near: Option<Near>,
    /// `YYYY-MM-DD` (from the start of that day, UTC) or RFC 3339.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (to the end of that day, UTC) or RFC 3339.
    pub to: Option<String>,
    pub user: UserFilter,
    pub pano_only: bool,
    /// Stop after this many images in all.
    pub limit: Option<usize>,
}

/// Where one service's search stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    Running,
    Done,
    /// Not searched (not integrated, not configured); `message` says why.
    Skipped,
    Failed,
    /// Stopped: cancelled, or the limit was reached.
    Stopped,
}

/// How one service's search went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ServiceOutcome {
    pub service: Destination,
    pub state: ServiceState,
    pub images: usize,
    pub requests: u32,
    pub rate_limited: u32,
    /// Why it was skipped or failed.
    pub message: Option<String>,
    /// What the results miss, in the user's words.
    pub incomplete: Vec<String>,
}

impl ServiceOutcome {
    fn new(service: Destination, state: ServiceState, message: Option<String>) -> Self {
        ServiceOutcome {
            service,
            state,
            images: 0,
            requests: 0,
            rate_limited: 0,
            message,
            incomplete: Vec::new(),
        }
    }
}

/// Streamed while a search runs: new images, and a service's state when it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ExploreProgress {
    pub search_id: u64,
    pub images: Vec<FoundImage>,
    pub outcome: Option<ServiceOutcome>,
}

/// A finished (or stopped) search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ExploreResult {
    pub search_id: u64,
    pub images: usize,
    pub services: Vec<ServiceOutcome>,
    /// The limit cut the results short.
    pub limited: bool,
    pub cancelled: bool,
}

/// Searches the app keeps, for cancelling and exporting (the newest few).
#[derive(Default)]
pub(crate) struct Runs {
    next_id: std::sync::atomic::AtomicU64,
    runs: Mutex<Vec<(u64, Arc<Run>)>>,
}

struct Run {
    cancel: CancellationToken,
    images: Mutex<Vec<FoundImage>>,
}

const KEPT_RUNS: usize = 4;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A date or a time into epoch ms; a bare date is the start (or, `end`, the last
/// millisecond) of that day in UTC.
pub fn parse_when(text: &str, end: bool) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(at) = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
        return i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|e| e.to_string());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(t, &format).map_err(|_| {
        format!("{t:?} is not a date: write YYYY-MM-DD (e.g. 2024-05-01) or an RFC 3339 time")
    })?;
    let start = day.midnight().assume_utc().unix_timestamp() * 1000;
    Ok(if end { start + 86_400_000 - 1 } else { start })
}

impl ExploreQuery {
    /// The box asked of the services, the time range, and the circle to filter by.
    fn resolve(&self) -> AppResult<(Bbox, Option<i64>, Option<i64>)> {
        let bbox = match (&self.bbox, &self.near) {
            (Some(b), None) => Bbox::new(b.min_lon, b.min_lat, b.max_lon, b.max_lat),
            (None, Some(n)) => Bbox::around(n.lat, n.lon, n.radius_m),
            (Some(_), Some(_)) => {
                return Err(AppError::invalid(
                    "Give either a box or a place with a radius, not both.",
                ));
            }
            (None, None) => {
                return Err(AppError::invalid(
                    "Say where to search: a box (minLon,minLat,maxLon,maxLat) or a place with a radius.",
                ));
            }
        }
        .map_err(AppError::invalid)?;
        let from = self
            .from
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_when(s, false))
            .transpose()
            .map_err(AppError::invalid)?;
        let to = self
            .to
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| parse_when(s, true))
            .transpose()
            .map_err(AppError::invalid)?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err(AppError::invalid("The time range ends before it starts."));
        }
        if self.services.is_empty() {
            return Err(AppError::invalid("Pick at least one service to search."));
        }
        if let Some(d) = self.services.iter().find(|d| !SEARCHABLE.contains(d)) {
            return Err(AppError::invalid(format!(
                "{} cannot be searched: only Mapillary, KartaView and Panoramax can.",
                d.label()
            )));
        }
        Ok((bbox, from, to))
    }
}

/// What one service found: sent on as it arrives, filtered by the circle and the limit.
struct Collector<'a> {
    run: &'a Run,
    near: Option<Near>,
    limit: Option<usize>,
    on: &'a (dyn Fn(ExploreProgress) + Send + Sync),
    search_id: u64,
    limited: std::sync::atomic::AtomicBool,
}

impl Collector<'_> {
    fn take(&self, batch: Vec<FoundImage>) {
        let mut batch: Vec<FoundImage> = batch
            .into_iter()
            .filter(|i| {
                self.near
                    .is_none_or(|n| distance_m(n.lat, n.lon, i.lat, i.lon) <= n.radius_m)
            })
            .collect();
        {
            let mut all = lock(&self.run.images);
            if let Some(limit) = self.limit {
                let room = limit.saturating_sub(all.len());
                if batch.len() >= room {
                    batch.truncate(room);
                    self.limited
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    self.run.cancel.cancel();
                }
            }
            all.extend(batch.iter().cloned());
        }
        if !batch.is_empty() {
            (self.on)(ExploreProgress {
                search_id: self.search_id,
                images: batch,
                outcome: None,
            });
        }
    }
}

impl App {
    /// Starts numbering a search; its id is known before any result arrives.
    pub fn new_search(&self) -> u64 {
        let runs = &self.inner.explore;
        runs.next_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
    }

    /// Stops a running search; what it found so far stays (and can be exported).
    pub fn cancel_search(&self, search_id: u64) -> bool {
        let runs = lock(&self.inner.explore.runs);
        match runs.iter().find(|(id, _)| *id == search_id) {
            Some((_, run)) => {
                run.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// The images a search found (so far).
    pub fn search_images(&self, search_id: u64) -> Option<Vec<FoundImage>> {
        let runs = lock(&self.inner.explore.runs);
        runs.iter()
            .find(|(id, _)| *id == search_id)
            .map(|(_, run)| lock(&run.images).clone())
    }

    /// Writes what a search found as GeoJSON; returns how many features.
    pub async fn export_search(&self, search_id: u64, path: &std::path::Path) -> AppResult<usize> {
        let images = self.search_images(search_id).ok_or_else(|| {
            AppError::invalid("That search is no longer kept: search again, then export.")
        })?;
        write_geojson(&images, path).await
    }

    /// Searches the services in `query` at once, sending images to `on` as they arrive.
    /// One service failing keeps the others' results and says why in its outcome.
    pub async fn explore(
        &self,
        search_id: u64,
        query: &ExploreQuery,
        on: &(dyn Fn(ExploreProgress) + Send + Sync),
    ) -> AppResult<ExploreResult> {
        let (bbox, from_ms, to_ms) = query.resolve()?;
        let run = Arc::new(Run {
            cancel: CancellationToken::new(),
            images: Mutex::new(Vec::new()),
        });
        {
            let mut runs = lock(&self.inner.explore.runs);
            runs.push((search_id, run.clone()));
            let excess = runs.len().saturating_sub(KEPT_RUNS);
            runs.drain(..excess);
        }
        let base = SearchQuery {
            bbox: Some(bbox),
            from_ms,
            to_ms,
            user: match &query.user {
                UserFilter::Named(n) if !n.trim().is_empty() => Some(n.trim().to_owned()),
                _ => None,
            },
            pano_only: query.pano_only,
        };
        let collector = Collector {
            run: &run,
            near: query.near,
            limit: query.limit,
            on,
            search_id,
            limited: Default::default(),
        };
        let mut services = query.services.clone();
        services.dedup();
        let searches = services.iter().map(|&service| {
            let (collector, base, run) = (&collector, &base, &run);
            async move {
                on(ExploreProgress {
                    search_id,
                    images: Vec::new(),
                    outcome: Some(ServiceOutcome::new(service, ServiceState::Running, None)),
                });
                let sink = |batch: Vec<FoundImage>| collector.take(batch);
                let mut outcome = tokio::select! {
                    o = self.search_one(service, base, &query.user, &sink) => o,
                    () = run.cancel.cancelled() => {
                        ServiceOutcome::new(service, ServiceState::Stopped, None)
                    }
                };
                // What was kept: inside the circle, within the limit.
                outcome.images = lock(&run.images)
                    .iter()
                    .filter(|i| i.service == service)
                    .count();
                on(ExploreProgress {
                    search_id,
                    images: Vec::new(),
                    outcome: Some(outcome.clone()),
                });
                outcome
            }
        });
        let outcomes = futures::future::join_all(searches).await;
        let limited = collector.limited.load(std::sync::atomic::Ordering::SeqCst);
        let images = lock(&run.images).len();
        Ok(ExploreResult {
            search_id,
            images,
            cancelled: run.cancel.is_cancelled() && !limited,
            limited,
            services: outcomes,
        })
    }

    async fn search_one(
        &self,
        service: Destination,
        base: &SearchQuery,
        user: &UserFilter,
        sink: &(dyn Fn(Vec<FoundImage>) + Send + Sync),
    ) -> ServiceOutcome {
        let asked = match service {
            Destination::Mapillary => self.search_mapillary(base, user, sink).await,
            Destination::Kartaview => self.search_kartaview(base, user, sink).await,
            Destination::Panoramax => self.search_panoramax(base, user, sink).await,
            Destination::Mtpw => Err(Skip("Map the Paths Web cannot be searched.".into())),
        };
        match asked {
            Ok(summary) => ServiceOutcome {
                service,
                state: ServiceState::Done,
                images: summary.images,
                requests: summary.requests,
                rate_limited: summary.rate_limited,
                message: None,
                incomplete: summary.incomplete,
            },
            Err(Skip(why)) => ServiceOutcome::new(service, ServiceState::Skipped, Some(why)),
            Err(Fail(e)) => {
                ServiceOutcome::new(service, ServiceState::Failed, Some(failure(service, &e)))
            }
        }
    }

    /// "Me" on a service: the connected account's username.
    async fn me_on(&self, service: Destination) -> Result<String, Outcome> {
        let account = self.store().account(service).await.ok().flatten();
        account
            .and_then(|a| a.username)
            .ok_or_else(|| me_unknown(service))
    }

    /// The query for one service: "me" becomes that service's username.
    async fn query_on(
        &self,
        service: Destination,
        base: &SearchQuery,
        user: &UserFilter,
    ) -> Result<SearchQuery, Outcome> {
        let mut query = base.clone();
        if *user == UserFilter::Me {
            query.user = Some(self.me_on(service).await?);
        }
        Ok(query)
    }

    async fn search_mapillary(
        &self,
        base: &SearchQuery,
        user: &UserFilter,
        sink: &(dyn Fn(Vec<FoundImage>) + Send + Sync),
    ) -> Result<SearchSummary, Outcome> {
        let s = self.services();
        let cfg = s
            .mapillary
            .clone()
            .ok_or_else(|| not_configured(Destination::Mapillary))?;
        let query = self.query_on(Destination::Mapillary, base, user).await?;
        // Reading needs a token: the user's, or the app's client token (`MLY|…`).
        let token = match self.access_token(Destination::Mapillary).await {
            Ok(account) => account.access_token,
            Err(_) if !s.sandbox && !cfg.client_secret.expose().is_empty() => {
                cfg.client_secret.clone()
            }
            Err(e) => return Err(Skip(format!("Not searched: {}", e.message))),
        };
        let client = MapillaryClient::new(s.http.clone(), &cfg, token).with_clock(self.clock());
        mapillary::search(
            &client,
            &query,
            &cfg.image_page,
            mapillary::Tiling::default(),
            sink,
        )
        .await
        .map_err(Fail)
    }

    async fn search_kartaview(
        &self,
        base: &SearchQuery,
        user: &UserFilter,
        sink: &(dyn Fn(Vec<FoundImage>) + Send + Sync),
    ) -> Result<SearchSummary, Outcome> {
        let s = self.services();
        let cfg = s
            .kartaview
            .clone()
            .ok_or_else(|| not_configured(Destination::Kartaview))?;
        let query = self.query_on(Destination::Kartaview, base, user).await?;
        // Public: no sign-in needed.
        let client = KartaViewClient::new(s.http.clone(), &cfg, String::new().into())
            .with_clock(self.clock());
        kartaview::search(
            &client,
            &query,
            &cfg.sequence_page,
            Patience::default(),
            sink,
        )
        .await
        .map_err(Fail)
    }

    async fn search_panoramax(
        &self,
        base: &SearchQuery,
        user: &UserFilter,
        sink: &(dyn Fn(Vec<FoundImage>) + Send + Sync),
    ) -> Result<SearchSummary, Outcome> {
        let s = self.services();
        let account = self.access_token(Destination::Panoramax).await.ok();
        let instance = if s.sandbox {
            s.panoramax.as_ref().map(|p| p.instance_url.to_string())
        } else {
            account
                .as_ref()
                .and_then(|a| a.instance_url.clone())
                .or_else(|| s.panoramax.as_ref().map(|p| p.instance_url.to_string()))
        }
        .ok_or_else(|| not_configured(Destination::Panoramax))?;
        let url = Url::parse(instance.trim_end_matches('/'))
            .map_err(|e| Skip(format!("{instance:?} is not a Panoramax address: {e}")))?;
        let token = account.as_ref().map(|a| a.access_token.clone());
        let client =
            PanoramaxClient::with_url(s.http.clone(), url, token.clone()).with_clock(self.clock());
        let mut scope = panoramax::Scope::default();
        if *user == UserFilter::Me {
            if token.is_none() {
                return Err(me_unknown(Destination::Panoramax));
            }
            let ids = panoramax::my_collection_ids(&client, Patience::default())
                .await
                .map_err(Fail)?;
            scope = panoramax::Scope {
                collections: Some(ids),
                user_is_scope: true,
            };
        }
        let search = |client: PanoramaxClient| {
            let scope = &scope;
            async move {
                panoramax::search(
                    &client,
                    base,
                    scope,
                    &s.panoramax_picture_page,
                    panoramax::Narrowing::default(),
                    sink,
                )
                .await
            }
        };
        let instance = client.instance_url().clone();
        match search(client).await {
            // GeoVisio refuses a refused token even on public reads: what anyone may see
            // is still found (the card asks for a new sign-in where uploads need it).
            Err(e)
                if e.kind() == mtp_providers::ErrorKind::Auth
                    && token.is_some()
                    && scope.collections.is_none() =>
            {
                tracing::warn!(
                    "Panoramax refused the token for a public search ({e}): searching without it"
                );
                let anyone = PanoramaxClient::with_url(s.http.clone(), instance, None)
                    .with_clock(self.clock());
                search(anyone).await.map_err(Fail)
            }
            searched => searched.map_err(Fail),
        }
    }
}

/// Why a service was not searched, or failed.
enum Outcome {
    Skip(String),
    Fail(mtp_providers::ProviderError),
}
use Outcome::{Fail, Skip};

/// A failed search in the user's words: the service's, its status, and what to do.
fn failure(service: Destination, e: &mtp_providers::ProviderError) -> String {
    let status = e
        .status()
        .map(|s| format!(" (HTTP {s})"))
        .unwrap_or_default();
    let advice = match e.kind() {
        mtp_providers::ErrorKind::Auth => {
            " Integrate it again on the Integrations screen, then search again."
        }
        mtp_providers::ErrorKind::Retry { .. } => " It kept failing; try again in a while.",
        _ => "",
    };
    format!(
        "{} could not be searched: {}{status}.{advice}",
        service.label(),
        e.message().trim_end_matches('.')
    )
}

/// "Me" on a service that is not integrated.
fn me_unknown(service: Destination) -> Outcome {
    Skip(format!(
        "Not searched for your images: {} is not integrated, so who \"me\" is there is unknown. Integrate it, or search for a username.",
        service.label()
    ))
}

fn not_configured(service: Destination) -> Outcome {
    Skip(format!(
        "{} is not set up in this app: set its settings in {} and restart.",
        service.label(),
        crate::config::settings_file_words()
    ))
}

/// ISO 8601 (RFC 3339, UTC, milliseconds) of epoch ms.
fn iso(ms: i64) -> Option<String> {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    at.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The features of one RFC 7946 FeatureCollection, made one at a time (50,000 images would
/// otherwise be a few hundred MB of JSON values at once): a Point per image, then a
/// LineString per sequence (its images in capture order) where a sequence has two or more.
pub fn features(images: &[FoundImage]) -> impl Iterator<Item = geojson::Feature> + '_ {
    let mut sequences: BTreeMap<(&'static str, &str), Vec<&FoundImage>> = BTreeMap::new();
    for i in images {
        if let Some(seq) = &i.sequence_id {
            sequences
                .entry((i.service.as_str(), seq.as_str()))
                .or_default()
                .push(i);
        }
    }
    let lines = sequences
        .into_iter()
        .filter(|(_, members)| members.len() >= 2)
        .map(|((service, seq), mut members)| {
            members.sort_by(|a, b| {
                a.captured_at_ms
                    .cmp(&b.captured_at_ms)
                    .then_with(|| a.id.cmp(&b.id))
            });
            sequence_feature(service, seq, &members)
        });
    images.iter().map(image_feature).chain(lines)
}

fn image_feature(i: &FoundImage) -> geojson::Feature {
    use serde_json::json;
    let mut p = geojson::JsonObject::new();
    p.insert("kind".into(), json!("image"));
    p.insert("service".into(), json!(i.service.as_str()));
    p.insert("id".into(), json!(i.id));
    p.insert("captured_at".into(), json!(i.captured_at_ms.and_then(iso)));
    p.insert("heading".into(), json!(i.heading));
    p.insert("sequence_id".into(), json!(i.sequence_id));
    p.insert("user".into(), json!(i.user));
    p.insert("is_pano".into(), json!(i.is_pano));
    p.insert("page_url".into(), json!(i.page_url));
    p.insert("thumb_url".into(), json!(i.thumb_url));
    geojson::Feature {
        geometry: Some(geojson::Geometry::new(geojson::Value::Point(vec![
            i.lon, i.lat,
        ]))),
        properties: Some(p),
        ..geojson::Feature::default()
    }
}

fn sequence_feature(service: &str, seq: &str, members: &[&FoundImage]) -> geojson::Feature {
    use serde_json::json;
    let first = members[0];
    let mut p = geojson::JsonObject::new();
    p.insert("kind".into(), json!("sequence"));
    p.insert("service".into(), json!(service));
    p.insert("sequence_id".into(), json!(seq));
    p.insert("user".into(), json!(first.user));
    p.insert("images".into(), json!(members.len()));
    p.insert(
        "captured_from".into(),
        json!(first.captured_at_ms.and_then(iso)),
    );
    p.insert(
        "captured_to".into(),
        json!(members.last().and_then(|m| m.captured_at_ms).and_then(iso)),
    );
    p.insert("is_pano".into(), json!(first.is_pano));
    p.insert("page_url".into(), json!(first.page_url));
    let line = members.iter().map(|m| vec![m.lon, m.lat]).collect();
    geojson::Feature {
        geometry: Some(geojson::Geometry::new(geojson::Value::LineString(line))),
        properties: Some(p),
        ..geojson::Feature::default()
    }
}

/// The whole FeatureCollection in memory (small results, tests).
pub fn to_geojson(images: &[FoundImage]) -> geojson::FeatureCollection {
    geojson::FeatureCollection {
        bbox: None,
        features: features(images).collect(),
        foreign_members: None,
    }
}

/// Writes the FeatureCollection of `images` to `out` feature by feature; returns how many.
pub fn write_geojson_to(images: &[FoundImage], out: impl std::io::Write) -> std::io::Result<usize> {
    let mut writer = geojson::FeatureWriter::from_writer(out);
    let mut count = 0;
    for feature in features(images) {
        writer
            .write_feature(&feature)
            .map_err(std::io::Error::other)?;
        count += 1;
    }
    writer.finish().map_err(std::io::Error::other)?;
    writer.flush().map_err(std::io::Error::other)?;
    Ok(count)
}

/// Writes the GeoJSON of `images` to `path` (atomically: a temporary file, then renamed).
pub async fn write_geojson(images: &[FoundImage], path: &std::path::Path) -> AppResult<usize> {
    let tmp = path.with_extension("geojson.part");
    let written = std::fs::File::create(&tmp)
        .and_then(|f| write_geojson_to(images, std::io::BufWriter::new(f)))
        .and_then(|count| std::fs::rename(&tmp, path).map(|()| count));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        AppError::new("io", format!("Could not write {}: {e}", path.display()))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn img(service: Destination, id: &str, seq: &str, t: i64, lon: f64) -> FoundImage {
        FoundImage {
            service,
            id: id.into(),
            lon,
            lat: 48.85,
            captured_at_ms: Some(t),
            heading: Some(90.0),
            sequence_id: Some(seq.into()),
            user: Some("anna".into()),
            is_pano: Some(false),
            page_url: None,
            thumb_url: None,
        }
    }

    #[test]
    fn geojson_has_a_point_per_image_and_a_line_per_sequence_in_capture_order() {
        let images = vec![
            img(Destination::Mapillary, "b", "s1", 2000, 2.2),
            img(Destination::Mapillary, "a", "s1", 1000, 2.1),
            img(Destination::Kartaview, "c", "s1", 500, 2.3),
        ];
        let fc = to_geojson(&images);
        assert_eq!(
            fc.features.len(),
            4,
            "3 points + 1 line (the KartaView one is alone)"
        );
        let line = fc
            .features
            .iter()
            .find(|f| f.property("kind").and_then(|k| k.as_str()) == Some("sequence"))
            .unwrap();
        match &line.geometry.as_ref().unwrap().value {
            geojson::Value::LineString(points) => {
                assert_eq!(points, &vec![vec![2.1, 48.85], vec![2.2, 48.85]]);
            }
            other => panic!("{other:?}"),
        }
        let point = &fc.features[0];
        assert_eq!(
            point.property("captured_at").and_then(|v| v.as_str()),
            Some("1970-01-01T00:00:02Z")
        );
        assert_eq!(
            point.property("service").and_then(|v| v.as_str()),
            Some("mapillary")
        );
    }

    #[test]
    fn dates_read_as_whole_days() {
        assert_eq!(parse_when("2024-05-01", false), Ok(1_714_521_600_000));
        assert_eq!(parse_when("2024-05-01", true), Ok(1_714_607_999_999));
        assert_eq!(
            parse_when("2024-05-01T08:30:00Z", false),
            Ok(1_714_552_200_000)
        );
        assert!(
            parse_when("May 1st", false)
                .unwrap_err()
                .contains("YYYY-MM-DD")
        );
    }

    #[test]
    fn a_query_needs_a_place_and_an_order_in_time() {
        let mut q = ExploreQuery {
            services: vec![Destination::Mapillary],
            ..ExploreQuery::default()
        };
        assert!(q.resolve().unwrap_err().message.contains("where to search"));
        q.near = Some(Near {
            lat: 48.85,
            lon: 2.35,
            radius_m: 500.0,
        });
        assert!(q.resolve().is_ok());
        q.from = Some("2024-06-01".into());
        q.to = Some("2024-05-01".into());
        assert!(q.resolve().unwrap_err().message.contains("ends before"));
        q.to = None;
        q.services = vec![Destination::Mtpw];
        assert!(
            q.resolve()
                .unwrap_err()
                .message
                .contains("cannot be searched")
        );
    }
}
