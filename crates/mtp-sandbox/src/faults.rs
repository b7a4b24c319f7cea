//! Fault injection, per endpoint, deterministic by default.
//!
//! Every request that reaches a known endpoint is offered to the fault rules in the order
//! they were added. A rule matches by service and endpoint name (see [`ENDPOINTS`]); it can
//! skip its first `after` matches, fire at most `times` times and fire with probability
//! `rate` (drawn from a seedable RNG, seed 0 by default, so runs repeat). Latency rules add
//! up and the slowest throttle applies; of the other rules the first one that fires decides
//! the request.
//!
//! # Spec syntax (`mtp sandbox --faults …`, `POST /sandbox/faults`)
//!
//! ```text
//! spec      := item (';' item)*
//! item      := target ':' param (',' param)*   a rule
//!            | 'seed=' u64                      reseed the RNG used by `rate`/`error_rate`
//!            | 'expire_tokens'                  every access token issued so far expires now
//!            | 'revoke_tokens'                  every token issued so far (refresh ones too) dies now
//!            | 'panoramax_tos=' ('enforce' | 'off')
//!                                               uploads need GeoVisio's terms of service accepted
//!                                               (on `/panoramax/tos-validation`): 401 with the page
//!            | 'panoramax_read_only=' ('on' | 'off')
//!                                               the instance is read only (a migration): writes get 401
//!            | 'kartaview_refuse_osm_apps=' ('400' | '401' | 'html' | 'off')
//!                                               KartaView's client_auth refuses OSM tokens issued to
//!                                               any OSM app but its own (ours included), as 400
//!                                               apiCode 690, 401 "Invalid access token" or a page
//!                                               that is not JSON (PROTOCOLS §3.1)
//!            | 'kartaview_nearby_pano=' ('on' | 'off')
//!                                               KartaView's nearby-photos items say whether they are
//!                                               360° (projection, field_of_view); by default they do
//!                                               not, as the documented item (PROTOCOLS §6): a client
//!                                               asks v2 for a sequence's photos
//!            | 'mapillary_refresh_tokens=' ('issue' | 'none')
//!                                               Mapillary's token replies carry a distinct
//!                                               refresh_token; by default they do not, as the
//!                                               documented reply (PROTOCOLS §2.1): a refresh sends
//!                                               the current access token, as JOSM does
//!            | 'mapillary_bundles=' ('accept' | 'refuse')
//!                                               Mapillary's finish_upload refuses image bundles (the
//!                                               manifest of mapillary_tools 0.14, undocumented) as an
//!                                               invalid file_type: a service that dropped them, where a
//!                                               client falls back to one zip per sequence (PROTOCOLS
//!                                               §2.2); accepted by default, as today
//! target    := '*' | service | service '.' endpoint | service '.*'
//! service   := mapillary | osm | kartaview | panoramax | mtpw
//! ```
//!
//! | Param | Meaning |
//! |---|---|
//! | `status=C` | answer HTTP `C` (400–599) with the service's error body, without running the handler (Mapillary 412 = `OffsetInvalidError`) |
//! | `error_rate=P` | like `status` (default 503), with probability `P` |
//! | `fail_next=N` | like `status` (default 503), for the next `N` matching requests |
//! | `rate_limit` or `rate_limit=N` | answer 429 (next `N` requests if given) |
//! | `retry_after=S` | add `Retry-After: S` (429 and 5xx) |
//! | `backoff_ms=MS` | Mapillary 429: add `"backoff": MS` (`RequestRateLimitedError`) |
//! | `type=T` | Mapillary, with `status`: the error's type — the upload host's `debug_info.type` (`NotAuthorizedError`, `RequestRateLimitedError`, …), and on the Graph API the code that means it (190 for `NotAuthorizedError`, 4 for `RequestRateLimitedError`): a 400 that refuses the token, or limits the rate |
//! | `reset_after=B` | let the handler read at most `B` request-body bytes, then cut the connection without a reply (the bytes read are kept: a Mapillary upload resumes from them) |
//! | `latency_ms=MS` | delay the request (can be combined with one of the above: then two rules) |
//! | `throttle_kbps=K` | let the handler read the body at most `K` KiB/s (a slow link: the client stays mid-body for a while; combines like `latency_ms`) |
//! | `link_kbps=K` | like `throttle_kbps`, but every request the rule matches shares one link of `K` KiB/s: parallel uploads split it between them (a home connection; combines like `latency_ms`) |
//! | `times=N`, `after=N`, `rate=P` | fire at most `N` times / skip the first `N` matches / probability |
//!
//! Examples: `mapillary.upload:error_rate=0.3,status=503;kartaview.photo:rate_limit=1,retry_after=2`,
//! `mapillary.upload:reset_after=4096,times=2`, `*:latency_ms=200`, `mapillary.offset:fail_next=3,status=500`,
//! `panoramax.claim_decision:status=503` (a Panoramax token claim that never comes: the
//! claim page fails, so the token stays unclaimed), `kartaview_refuse_osm_apps=401`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

use crate::state::lock;

/// Every endpoint name a fault target can use, as `service.endpoint`.
pub const ENDPOINTS: &[&str] = &[
    "mapillary.authorize",
    "mapillary.authorize_decision",
    "mapillary.token",
    "mapillary.me",
    "mapillary.node",
    "mapillary.images",
    "mapillary.image_ids",
    "mapillary.finish_upload",
    "mapillary.logging",
    "mapillary.offset",
    "mapillary.upload",
    "mapillary.cluster",
    "mapillary.graphql",
    "mapillary.image_file",
    "mapillary.world_thumb",
    "osm.authorize",
    "osm.authorize_decision",
    "osm.token",
    "osm.user_details",
    "kartaview.client_auth",
    "kartaview.sequence",
    "kartaview.photo",
    "kartaview.video",
    "kartaview.finished_uploading",
    "kartaview.sequence_remove",
    "kartaview.photo_remove",
    "kartaview.photo_list",
    "kartaview.details",
    "kartaview.my_list",
    "kartaview.sequence_v2",
    "kartaview.photos_v2",
    "kartaview.nearby_photos",
    "kartaview.photo_file",
    "kartaview.user_details",
    "panoramax.root",
    "panoramax.configuration",
    "panoramax.me",
    "panoramax.me_tokens",
    "panoramax.me_token",
    "panoramax.create_token",
    "panoramax.generate_token",
    "panoramax.claim_token",
    "panoramax.claim_decision",
    "panoramax.create_upload_set",
    "panoramax.my_upload_sets",
    "panoramax.upload_set",
    "panoramax.files",
    "panoramax.list_files",
    "panoramax.complete",
    "panoramax.upload_set_delete",
    "panoramax.collections",
    "panoramax.collection",
    "panoramax.collection_patch",
    "panoramax.collection_delete",
    "panoramax.items",
    "panoramax.geovisio_status",
    "panoramax.picture_file",
    "panoramax.search",
    "panoramax.my_collection",
    "panoramax.user_collection",
    "mtpw.authorize",
    "mtpw.authorize_decision",
    "mtpw.create",
    "mtpw.import",
    "mtpw.verify",
    "mtpw.legacy_import",
    "mtpw.sequence_delete_page",
    "mtpw.sequence_delete",
];

const SERVICES: &[&str] = &["mapillary", "osm", "kartaview", "panoramax", "mtpw"];

/// Which requests a rule applies to. `None` = any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultTarget {
    pub service: Option<String>,
    pub endpoint: Option<String>,
}

impl FaultTarget {
    /// Parses `*`, `service`, `service.*` or `service.endpoint`.
    pub fn parse(s: &str) -> Result<FaultTarget, FaultSpecError> {
        let s = s.trim();
        if s == "*" {
            return Ok(FaultTarget {
                service: None,
                endpoint: None,
            });
        }
        let (service, endpoint) = match s.split_once('.') {
            Some((svc, "*")) => (svc, None),
            Some((svc, ep)) => (svc, Some(ep)),
            None => (s, None),
        };
        if !SERVICES.contains(&service) {
            return Err(FaultSpecError::UnknownTarget(s.to_owned()));
        }
        if let Some(ep) = endpoint
            && !ENDPOINTS.contains(&format!("{service}.{ep}").as_str())
        {
            return Err(FaultSpecError::UnknownTarget(s.to_owned()));
        }
        Ok(FaultTarget {
            service: Some(service.to_owned()),
            endpoint: endpoint.map(str::to_owned),
        })
    }

    fn matches(&self, service: &str, endpoint: &str) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
            && self.endpoint.as_deref().is_none_or(|e| e == endpoint)
    }
}

/// What a firing rule does.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer this status with the service's error body instead of running the handler.
    Status {
        status: u16,
        retry_after: Option<u64>,
        /// Mapillary: the error's type (`NotAuthorizedError`, `RequestRateLimitedError`,
        /// …): the upload host's `debug_info.type`; on the Graph API, the Facebook code
        /// that means the same (190, 4).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_type: Option<String>,
    },
    /// Answer 429 (Mapillary: `RequestRateLimitedError`, with `backoff` if given).
    RateLimit {
        retry_after: Option<u64>,
        backoff_ms: Option<u64>,
    },
    /// Let the handler read at most `after_bytes` of the body, then drop the connection.
    Reset { after_bytes: u64 },
    /// Delay the request.
    Latency {
        #[serde(with = "millis")]
        delay: Duration,
    },
    /// Hand the body to the handler at most this fast.
    Throttle { bytes_per_sec: u64 },
    /// Hand the bodies of all the requests this rule matches to their handlers at most
    /// this fast together: one shared link (see [`SharedLink`]).
    Link { bytes_per_sec: u64 },
}

impl FaultAction {
    /// Latency and throttling slow a request down and let another rule decide it as well.
    fn is_pace(&self) -> bool {
        matches!(
            self,
            FaultAction::Latency { .. } | FaultAction::Throttle { .. } | FaultAction::Link { .. }
        )
    }
}

/// One link of a fixed rate shared by several requests (a `link_kbps` rule): every chunk of
/// body read through it books its time on the link after whatever was booked before, by any
/// request, so `n` parallel uploads get `1/n` of the rate each and all of them together
/// never more than the rate. An idle link saves no credit for later.
#[derive(Debug)]
pub(crate) struct SharedLink {
    bytes_per_sec: f64,
    free_at: Mutex<Option<tokio::time::Instant>>,
}

impl SharedLink {
    pub(crate) fn new(bytes_per_sec: u64) -> SharedLink {
        SharedLink {
            bytes_per_sec: bytes_per_sec.max(1) as f64,
            free_at: Mutex::new(None),
        }
    }

    /// Books `len` bytes on the link; returns the instant they have crossed it (when the
    /// link is free again).
    pub(crate) fn book(&self, len: usize) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        let mut free_at = lock(&self.free_at);
        let start = free_at.map_or(now, |f| f.max(now));
        let end = start + Duration::from_secs_f64(len as f64 / self.bytes_per_sec);
        *free_at = Some(end);
        end
    }
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u128(d.as_millis())
    }
}

/// One fault rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultRule {
    pub target: FaultTarget,
    pub action: FaultAction,
    /// Probability of firing on a match (1.0 = always).
    pub rate: f64,
    /// Let this many matching requests through before the rule can fire.
    pub after: u64,
    /// Fire at most this many times (`None` = forever).
    pub times: Option<u64>,
}

impl FaultRule {
    pub fn new(target: FaultTarget, action: FaultAction) -> FaultRule {
        FaultRule {
            target,
            action,
            rate: 1.0,
            after: 0,
            times: None,
        }
    }
}

/// One item of a parsed spec.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum FaultDirective {
    Rule(FaultRule),
    Seed(u64),
    ExpireTokens,
    RevokeTokens,
    /// `kartaview_refuse_osm_apps=400|401|html|off`.
    KartaViewRefuseOsmApps(Option<OsmAppRefusal>),
    /// `panoramax_tos=enforce|off`.
    PanoramaxEnforceTos(bool),
    /// `panoramax_read_only=on|off`.
    PanoramaxReadOnly(bool),
    /// `mapillary_refresh_tokens=issue|none`.
    MapillaryIssuesRefreshTokens(bool),
    /// `kartaview_nearby_pano=on|off`.
    KartaViewNearbyPano(bool),
    /// `mapillary_bundles=accept|refuse`.
    MapillaryRefusesBundles(bool),
}

/// How KartaView's `client_auth` refuses an OSM token issued to an app it does not know
/// (both seen on the real service, PROTOCOLS §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum OsmAppRefusal {
    /// HTTP 400, `apiCode "690"` (unexpected error).
    Unexpected690,
    /// HTTP 401 `"Invalid access token"`.
    InvalidToken401,
    /// Not JSON at all: a gateway's HTML error page (HTTP 502).
    Html502,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaultSpecError {
    #[error("unknown fault target `{0}` (expected *, a service, service.* or service.endpoint)")]
    UnknownTarget(String),
    #[error("unknown fault parameter `{0}`")]
    UnknownParam(String),
    #[error("bad value for `{0}`: `{1}`")]
    BadValue(String, String),
    #[error(
        "fault item `{0}` has no action (status, error_rate, fail_next, rate_limit, reset_after, latency_ms, throttle_kbps or link_kbps)"
    )]
    NoAction(String),
    #[error("fault item `{0}` has more than one action")]
    TwoActions(String),
    #[error("malformed fault item `{0}`")]
    Malformed(String),
}

/// Handle of an added rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FaultId(pub u64);

struct Entry {
    id: FaultId,
    rule: FaultRule,
    matched: u64,
    fired: u64,
    /// The link of a [`FaultAction::Link`] rule, shared by every request it matches.
    link: Option<Arc<SharedLink>>,
}

struct Inner {
    rules: Mutex<Vec<Entry>>,
    rng: Mutex<StdRng>,
    next_id: AtomicU64,
    token_serial: AtomicU64,
    expired_through: AtomicU64,
    revoked_through: AtomicU64,
    kartaview_refuse_osm_apps: Mutex<Option<OsmAppRefusal>>,
    panoramax_enforce_tos: std::sync::atomic::AtomicBool,
    mapillary_issues_refresh_tokens: std::sync::atomic::AtomicBool,
    panoramax_read_only: std::sync::atomic::AtomicBool,
    kartaview_nearby_pano: std::sync::atomic::AtomicBool,
    mapillary_refuses_bundles: std::sync::atomic::AtomicBool,
}

/// The fault-injection handle (cheap to clone; all clones share the rules).
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            inner: Arc::new(Inner {
                rules: Mutex::new(Vec::new()),
                rng: Mutex::new(StdRng::seed_from_u64(0)),
                next_id: AtomicU64::new(1),
                token_serial: AtomicU64::new(1),
                expired_through: AtomicU64::new(0),
                revoked_through: AtomicU64::new(0),
                kartaview_refuse_osm_apps: Mutex::new(None),
                panoramax_enforce_tos: Default::default(),
                mapillary_issues_refresh_tokens: Default::default(),
                panoramax_read_only: Default::default(),
                kartaview_nearby_pano: Default::default(),
                mapillary_refuses_bundles: Default::default(),
            }),
        }
    }
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("rules", &self.rules())
            .finish()
    }
}

/// A request's fate, decided before its handler runs.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub latency: Duration,
    /// Body bytes per second the handler may read, if throttled.
    pub throttle: Option<u64>,
    /// The shared links the body crosses (`link_kbps` rules).
    pub links: Vec<Arc<SharedLink>>,
    pub action: Option<FaultAction>,
}

fn target(s: &str) -> FaultTarget {
    FaultTarget::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

impl Faults {
    /// Adds a rule; returns its id.
    pub fn add(&self, rule: FaultRule) -> FaultId {
        let id = FaultId(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let link = match rule.action {
            FaultAction::Link { bytes_per_sec } => Some(Arc::new(SharedLink::new(bytes_per_sec))),
            _ => None,
        };
        lock(&self.inner.rules).push(Entry {
            id,
            rule,
            matched: 0,
            fired: 0,
            link,
        });
        id
    }

    /// Removes a rule; `false` if it was not there.
    pub fn remove(&self, id: FaultId) -> bool {
        let mut rules = lock(&self.inner.rules);
        let before = rules.len();
        rules.retain(|e| e.id != id);
        rules.len() != before
    }

    /// Removes every rule (token expiry is not undone).
    pub fn clear(&self) {
        lock(&self.inner.rules).clear();
    }

    /// The rules with how many times each has fired.
    pub fn rules(&self) -> Vec<(FaultId, FaultRule, u64)> {
        lock(&self.inner.rules)
            .iter()
            .map(|e| (e.id, e.rule.clone(), e.fired))
            .collect()
    }

    /// How many times a rule has fired (0 if unknown).
    pub fn fired(&self, id: FaultId) -> u64 {
        lock(&self.inner.rules)
            .iter()
            .find(|e| e.id == id)
            .map_or(0, |e| e.fired)
    }

    /// Reseeds the RNG behind `rate`.
    pub fn seed(&self, seed: u64) {
        *lock(&self.inner.rng) = StdRng::seed_from_u64(seed);
    }

    /// The next `n` requests to `target` (e.g. `"mapillary.upload"`) get `status`.
    /// Panics on an unknown target (a test bug); use [`Faults::apply_spec`] for user input.
    pub fn fail_next(&self, target_spec: &str, n: u64, status: u16) -> FaultId {
        self.add(FaultRule {
            times: Some(n),
            ..FaultRule::new(
                target(target_spec),
                FaultAction::Status {
                    status,
                    retry_after: None,
                    error_type: None,
                },
            )
        })
    }

    /// Requests to `target` get `status` with probability `rate`.
    pub fn error_rate(&self, target_spec: &str, rate: f64, status: u16) -> FaultId {
        self.add(FaultRule {
            rate,
            ..FaultRule::new(
                target(target_spec),
                FaultAction::Status {
                    status,
                    retry_after: None,
                    error_type: None,
                },
            )
        })
    }

    /// The next `n` requests to `target` get 429.
    pub fn rate_limit_next(
        &self,
        target_spec: &str,
        n: u64,
        retry_after: Option<u64>,
        backoff_ms: Option<u64>,
    ) -> FaultId {
        self.add(FaultRule {
            times: Some(n),
            ..FaultRule::new(
                target(target_spec),
                FaultAction::RateLimit {
                    retry_after,
                    backoff_ms,
                },
            )
        })
    }

    /// The next `n` requests to `target` lose their connection after `after_bytes` body bytes.
    pub fn reset_next(&self, target_spec: &str, n: u64, after_bytes: u64) -> FaultId {
        self.add(FaultRule {
            times: Some(n),
            ..FaultRule::new(target(target_spec), FaultAction::Reset { after_bytes })
        })
    }

    /// Every request to `target` is delayed by `delay`.
    pub fn latency(&self, target_spec: &str, delay: Duration) -> FaultId {
        self.add(FaultRule::new(
            target(target_spec),
            FaultAction::Latency { delay },
        ))
    }

    /// The bodies of requests to `target` reach the handler at most `bytes_per_sec` fast.
    pub fn throttle(&self, target_spec: &str, bytes_per_sec: u64) -> FaultId {
        self.add(FaultRule::new(
            target(target_spec),
            FaultAction::Throttle {
                bytes_per_sec: bytes_per_sec.max(1),
            },
        ))
    }

    /// The bodies of all requests to `target` share one link of `bytes_per_sec`.
    pub fn link(&self, target_spec: &str, bytes_per_sec: u64) -> FaultId {
        self.add(FaultRule::new(
            target(target_spec),
            FaultAction::Link {
                bytes_per_sec: bytes_per_sec.max(1),
            },
        ))
    }

    /// Every access token issued so far (on every service) expires now. Refresh tokens
    /// survive, so a client can refresh; tokens issued later are valid.
    pub fn expire_tokens(&self) {
        let last = self.inner.token_serial.load(Ordering::SeqCst) - 1;
        self.inner.expired_through.fetch_max(last, Ordering::SeqCst);
    }

    /// Every token issued so far, refresh tokens included, stops working now.
    pub fn revoke_tokens(&self) {
        let last = self.inner.token_serial.load(Ordering::SeqCst) - 1;
        self.inner.revoked_through.fetch_max(last, Ordering::SeqCst);
        self.inner.expired_through.fetch_max(last, Ordering::SeqCst);
    }

    /// Makes KartaView's `client_auth` refuse OSM tokens from any OSM app but KartaView's
    /// own (`Some`), or accept the sandbox's OSM app again (`None`, the default).
    pub fn kartaview_refuse_osm_apps(&self, refusal: Option<OsmAppRefusal>) {
        *lock(&self.inner.kartaview_refuse_osm_apps) = refusal;
    }

    pub(crate) fn kartaview_osm_app_refusal(&self) -> Option<OsmAppRefusal> {
        *lock(&self.inner.kartaview_refuse_osm_apps)
    }

    /// Makes Mapillary's token replies carry a distinct `refresh_token` (off by default: the
    /// documented reply has none, and a refresh sends the current access token).
    pub fn mapillary_issue_refresh_tokens(&self, on: bool) {
        self.inner
            .mapillary_issues_refresh_tokens
            .store(on, Ordering::SeqCst);
    }

    pub(crate) fn mapillary_issues_refresh_tokens(&self) -> bool {
        self.inner
            .mapillary_issues_refresh_tokens
            .load(Ordering::SeqCst)
    }

    /// Makes KartaView's nearby-photos items say whether they are 360° (`projection`,
    /// `field_of_view`); off by default: the documented item has neither (PROTOCOLS §6).
    pub fn kartaview_nearby_pano(&self, on: bool) {
        self.inner.kartaview_nearby_pano.store(on, Ordering::SeqCst);
    }

    pub(crate) fn kartaview_nearby_says_pano(&self) -> bool {
        self.inner.kartaview_nearby_pano.load(Ordering::SeqCst)
    }

    /// Makes Mapillary's `finish_upload` refuse image bundles (`mly_bundle_manifest`) as an
    /// invalid file type, as a service that no longer takes them would; zips still go.
    pub fn mapillary_refuse_bundles(&self, on: bool) {
        self.inner
            .mapillary_refuses_bundles
            .store(on, Ordering::SeqCst);
    }

    pub(crate) fn mapillary_refuses_bundles(&self) -> bool {
        self.inner.mapillary_refuses_bundles.load(Ordering::SeqCst)
    }

    /// Makes Panoramax uploads need the terms of service accepted (GeoVisio's
    /// `API_ENFORCE_TOS_ACCEPTANCE`; off by default, as in GeoVisio).
    pub fn panoramax_enforce_tos(&self, on: bool) {
        self.inner.panoramax_enforce_tos.store(on, Ordering::SeqCst);
    }

    pub(crate) fn panoramax_tos_enforced(&self) -> bool {
        self.inner.panoramax_enforce_tos.load(Ordering::SeqCst)
    }

    /// Makes the Panoramax instance read only (GeoVisio's `API_READ_ONLY`, during a
    /// migration): every write is refused.
    pub fn panoramax_read_only(&self, on: bool) {
        self.inner.panoramax_read_only.store(on, Ordering::SeqCst);
    }

    pub(crate) fn panoramax_is_read_only(&self) -> bool {
        self.inner.panoramax_read_only.load(Ordering::SeqCst)
    }

    pub(crate) fn next_token_serial(&self) -> u64 {
        self.inner.token_serial.fetch_add(1, Ordering::SeqCst)
    }

    /// Makes every later token serial greater than `serial` (tokens loaded from a saved
    /// state keep theirs).
    pub(crate) fn reserve_token_serials(&self, serial: u64) {
        self.inner
            .token_serial
            .fetch_max(serial.saturating_add(1), Ordering::SeqCst);
    }

    pub(crate) fn token_expired(&self, serial: u64) -> bool {
        serial <= self.inner.expired_through.load(Ordering::SeqCst)
    }

    pub(crate) fn token_revoked(&self, serial: u64) -> bool {
        serial <= self.inner.revoked_through.load(Ordering::SeqCst)
    }

    /// Parses a spec (see the module docs) without applying it.
    pub fn parse_spec(spec: &str) -> Result<Vec<FaultDirective>, FaultSpecError> {
        let mut out = Vec::new();
        for item in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let Some((tgt, params)) = item.split_once(':') else {
                out.push(parse_global(item)?);
                continue;
            };
            out.extend(parse_rule(item, tgt, params)?);
        }
        Ok(out)
    }

    /// Parses and applies a spec; returns the ids of the rules it added.
    pub fn apply_spec(&self, spec: &str) -> Result<Vec<FaultId>, FaultSpecError> {
        let directives = Faults::parse_spec(spec)?;
        Ok(self.apply(directives))
    }

    /// Applies parsed directives; returns the ids of the rules added.
    pub fn apply(&self, directives: Vec<FaultDirective>) -> Vec<FaultId> {
        let mut ids = Vec::new();
        for d in directives {
            match d {
                FaultDirective::Rule(r) => ids.push(self.add(r)),
                FaultDirective::Seed(s) => self.seed(s),
                FaultDirective::ExpireTokens => self.expire_tokens(),
                FaultDirective::RevokeTokens => self.revoke_tokens(),
                FaultDirective::KartaViewRefuseOsmApps(r) => self.kartaview_refuse_osm_apps(r),
                FaultDirective::PanoramaxEnforceTos(on) => self.panoramax_enforce_tos(on),
                FaultDirective::PanoramaxReadOnly(on) => self.panoramax_read_only(on),
                FaultDirective::MapillaryIssuesRefreshTokens(on) => {
                    self.mapillary_issue_refresh_tokens(on)
                }
                FaultDirective::KartaViewNearbyPano(on) => self.kartaview_nearby_pano(on),
                FaultDirective::MapillaryRefusesBundles(on) => self.mapillary_refuse_bundles(on),
            }
        }
        ids
    }

    /// Decides what happens to one request to `service.endpoint`.
    pub(crate) fn decide(&self, service: &str, endpoint: &str) -> Decision {
        let mut rules = lock(&self.inner.rules);
        let mut decision = Decision::default();
        for e in rules.iter_mut() {
            if !e.rule.action.is_pace() && decision.action.is_some() {
                continue;
            }
            if !e.rule.target.matches(service, endpoint) {
                continue;
            }
            e.matched += 1;
            if e.matched <= e.rule.after {
                continue;
            }
            if e.rule.times.is_some_and(|t| e.fired >= t) {
                continue;
            }
            if e.rule.rate < 1.0 {
                let roll: f64 = lock(&self.inner.rng).random();
                if roll >= e.rule.rate {
                    continue;
                }
            }
            e.fired += 1;
            match &e.rule.action {
                FaultAction::Latency { delay } => decision.latency += *delay,
                FaultAction::Throttle { bytes_per_sec } => {
                    decision.throttle = Some(
                        decision
                            .throttle
                            .map_or(*bytes_per_sec, |b| b.min(*bytes_per_sec)),
                    );
                }
                FaultAction::Link { .. } => decision.links.extend(e.link.clone()),
                other => decision.action = Some(other.clone()),
            }
        }
        decision
    }
}

fn parse_global(item: &str) -> Result<FaultDirective, FaultSpecError> {
    match item.split_once('=') {
        Some(("seed", v)) => v
            .trim()
            .parse()
            .map(FaultDirective::Seed)
            .map_err(|_| FaultSpecError::BadValue("seed".into(), v.into())),
        Some(("kartaview_refuse_osm_apps", v)) => match v.trim() {
            "400" | "690" => Ok(FaultDirective::KartaViewRefuseOsmApps(Some(
                OsmAppRefusal::Unexpected690,
            ))),
            "401" => Ok(FaultDirective::KartaViewRefuseOsmApps(Some(
                OsmAppRefusal::InvalidToken401,
            ))),
            "html" => Ok(FaultDirective::KartaViewRefuseOsmApps(Some(
                OsmAppRefusal::Html502,
            ))),
            "off" => Ok(FaultDirective::KartaViewRefuseOsmApps(None)),
            _ => Err(FaultSpecError::BadValue(
                "kartaview_refuse_osm_apps".into(),
                v.into(),
            )),
        },
        Some(("panoramax_tos", v)) => match v.trim() {
            "enforce" => Ok(FaultDirective::PanoramaxEnforceTos(true)),
            "off" => Ok(FaultDirective::PanoramaxEnforceTos(false)),
            _ => Err(FaultSpecError::BadValue("panoramax_tos".into(), v.into())),
        },
        Some(("kartaview_nearby_pano", v)) => match v.trim() {
            "on" => Ok(FaultDirective::KartaViewNearbyPano(true)),
            "off" => Ok(FaultDirective::KartaViewNearbyPano(false)),
            _ => Err(FaultSpecError::BadValue(
                "kartaview_nearby_pano".into(),
                v.into(),
            )),
        },
        Some(("mapillary_bundles", v)) => match v.trim() {
            "refuse" => Ok(FaultDirective::MapillaryRefusesBundles(true)),
            "accept" => Ok(FaultDirective::MapillaryRefusesBundles(false)),
            _ => Err(FaultSpecError::BadValue(
                "mapillary_bundles".into(),
                v.into(),
            )),
        },
        Some(("mapillary_refresh_tokens", v)) => match v.trim() {
            "issue" => Ok(FaultDirective::MapillaryIssuesRefreshTokens(true)),
            "none" => Ok(FaultDirective::MapillaryIssuesRefreshTokens(false)),
            _ => Err(FaultSpecError::BadValue(
                "mapillary_refresh_tokens".into(),
                v.into(),
            )),
        },
        Some(("panoramax_read_only", v)) => match v.trim() {
            "on" => Ok(FaultDirective::PanoramaxReadOnly(true)),
            "off" => Ok(FaultDirective::PanoramaxReadOnly(false)),
            _ => Err(FaultSpecError::BadValue(
                "panoramax_read_only".into(),
                v.into(),
            )),
        },
        None if item == "expire_tokens" => Ok(FaultDirective::ExpireTokens),
        None if item == "revoke_tokens" => Ok(FaultDirective::RevokeTokens),
        _ => Err(FaultSpecError::Malformed(item.to_owned())),
    }
}

fn num<T: std::str::FromStr>(key: &str, v: Option<&str>) -> Result<T, FaultSpecError> {
    let v = v.unwrap_or("");
    v.trim()
        .parse()
        .map_err(|_| FaultSpecError::BadValue(key.to_owned(), v.to_owned()))
}

fn parse_rule(item: &str, tgt: &str, params: &str) -> Result<Vec<FaultDirective>, FaultSpecError> {
    let target = FaultTarget::parse(tgt)?;
    let mut status: Option<u16> = None;
    let mut error_rate: Option<f64> = None;
    let mut fail_next: Option<u64> = None;
    let mut rate_limit: Option<Option<u64>> = None;
    let mut retry_after = None;
    let mut backoff_ms = None;
    let mut error_type: Option<String> = None;
    let mut reset_after = None;
    let mut latency_ms: Option<u64> = None;
    let mut throttle_kbps: Option<u64> = None;
    let mut link_kbps: Option<u64> = None;
    let mut times = None;
    let mut after = 0;
    let mut rate = 1.0;
    for p in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p, None),
        };
        match k {
            "status" => {
                let s: u16 = num(k, v)?;
                if !(400..=599).contains(&s) {
                    return Err(FaultSpecError::BadValue(k.into(), s.to_string()));
                }
                status = Some(s);
            }
            "error_rate" | "rate" => {
                let r: f64 = num(k, v)?;
                if !(0.0..=1.0).contains(&r) {
                    return Err(FaultSpecError::BadValue(k.into(), r.to_string()));
                }
                if k == "rate" {
                    rate = r;
                } else {
                    error_rate = Some(r);
                }
            }
            "fail_next" => fail_next = Some(num(k, v)?),
            "rate_limit" => rate_limit = Some(v.map(|_| num(k, v)).transpose()?),
            "retry_after" => retry_after = Some(num(k, v)?),
            "backoff_ms" => backoff_ms = Some(num(k, v)?),
            "type" => match v {
                Some(t) if !t.is_empty() => error_type = Some(t.to_owned()),
                _ => return Err(FaultSpecError::BadValue(k.into(), String::new())),
            },
            "reset_after" => reset_after = Some(num(k, v)?),
            "latency_ms" => latency_ms = Some(num(k, v)?),
            "throttle_kbps" => {
                let kbps: u64 = num(k, v)?;
                if kbps == 0 {
                    return Err(FaultSpecError::BadValue(k.into(), "0".into()));
                }
                throttle_kbps = Some(kbps);
            }
            "link_kbps" => {
                let kbps: u64 = num(k, v)?;
                if kbps == 0 {
                    return Err(FaultSpecError::BadValue(k.into(), "0".into()));
                }
                link_kbps = Some(kbps);
            }
            "times" => times = Some(num(k, v)?),
            "after" => after = num(k, v)?,
            _ => return Err(FaultSpecError::UnknownParam(p.to_owned())),
        }
    }
    let mut actions = Vec::new();
    let mut rule_rate = rate;
    let mut rule_times = times;
    if status.is_some() || error_rate.is_some() || fail_next.is_some() {
        if let Some(r) = error_rate {
            rule_rate = r;
        }
        if let Some(n) = fail_next {
            rule_times = Some(n);
        }
        actions.push(FaultAction::Status {
            status: status.unwrap_or(503),
            retry_after,
            error_type,
        });
    }
    if let Some(n) = rate_limit {
        if n.is_some() {
            rule_times = n;
        }
        actions.push(FaultAction::RateLimit {
            retry_after,
            backoff_ms,
        });
    }
    if let Some(b) = reset_after {
        actions.push(FaultAction::Reset { after_bytes: b });
    }
    if actions.len() > 1 {
        return Err(FaultSpecError::TwoActions(item.to_owned()));
    }
    let mut out: Vec<FaultDirective> = Vec::new();
    if let Some(ms) = latency_ms {
        out.push(FaultDirective::Rule(FaultRule {
            target: target.clone(),
            action: FaultAction::Latency {
                delay: Duration::from_millis(ms),
            },
            rate,
            after,
            times,
        }));
    }
    if let Some(kbps) = throttle_kbps {
        out.push(FaultDirective::Rule(FaultRule {
            target: target.clone(),
            action: FaultAction::Throttle {
                bytes_per_sec: kbps.saturating_mul(1024),
            },
            rate,
            after,
            times,
        }));
    }
    if let Some(kbps) = link_kbps {
        out.push(FaultDirective::Rule(FaultRule {
            target: target.clone(),
            action: FaultAction::Link {
                bytes_per_sec: kbps.saturating_mul(1024),
            },
            rate,
            after,
            times,
        }));
    }
    if let Some(action) = actions.pop() {
        out.push(FaultDirective::Rule(FaultRule {
            target,
            action,
            rate: rule_rate,
            after,
            times: rule_times,
        }));
    }
    if out.is_empty() {
        return Err(FaultSpecError::NoAction(item.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let d = Faults::parse_spec(
            "mapillary.upload:error_rate=0.3,status=503;kartaview.photo:rate_limit=1,retry_after=2",
        )
        .unwrap();
        assert_eq!(
            d,
            vec![
                FaultDirective::Rule(FaultRule {
                    rate: 0.3,
                    ..FaultRule::new(
                        target("mapillary.upload"),
                        FaultAction::Status {
                            status: 503,
                            retry_after: None,
                            error_type: None,
                        }
                    )
                }),
                FaultDirective::Rule(FaultRule {
                    times: Some(1),
                    ..FaultRule::new(
                        target("kartaview.photo"),
                        FaultAction::RateLimit {
                            retry_after: Some(2),
                            backoff_ms: None
                        }
                    )
                }),
            ]
        );
    }

    #[test]
    fn parses_globals_latency_and_reset() {
        let d = Faults::parse_spec(
            "seed=7; expire_tokens; *:latency_ms=20; mapillary.upload:reset_after=100,times=2,after=1",
        )
        .unwrap();
        assert_eq!(d.len(), 4);
        assert_eq!(d[0], FaultDirective::Seed(7));
        assert_eq!(d[1], FaultDirective::ExpireTokens);
        assert!(
            matches!(&d[3], FaultDirective::Rule(r) if r.times == Some(2) && r.after == 1
            && r.action == FaultAction::Reset { after_bytes: 100 })
        );
    }

    #[test]
    fn rejects_typos() {
        assert!(matches!(
            Faults::parse_spec("mapillary.uplaod:fail_next=1"),
            Err(FaultSpecError::UnknownTarget(_))
        ));
        assert!(matches!(
            Faults::parse_spec("mapillary:explode=1"),
            Err(FaultSpecError::UnknownParam(_))
        ));
        assert!(matches!(
            Faults::parse_spec("mapillary:retry_after=1"),
            Err(FaultSpecError::NoAction(_))
        ));
        assert!(matches!(
            Faults::parse_spec("mapillary:status=200"),
            Err(FaultSpecError::BadValue(..))
        ));
        assert!(matches!(
            Faults::parse_spec("mapillary:status=503,reset_after=1"),
            Err(FaultSpecError::TwoActions(_))
        ));
    }

    #[test]
    fn counters_are_deterministic() {
        let f = Faults::default();
        let id = f.fail_next("kartaview.photo", 2, 500);
        f.add(FaultRule {
            after: 3,
            times: Some(1),
            ..FaultRule::new(
                target("kartaview"),
                FaultAction::RateLimit {
                    retry_after: None,
                    backoff_ms: None,
                },
            )
        });
        let kinds: Vec<_> = (0..5)
            .map(|_| {
                f.decide("kartaview", "photo").action.map(|a| match a {
                    FaultAction::Status { status, .. } => status,
                    _ => 429,
                })
            })
            .collect();
        // The rate-limit rule counts only the requests the first rule let through.
        assert_eq!(kinds, vec![Some(500), Some(500), None, None, None]);
        assert_eq!(f.fired(id), 2);
        assert!(f.decide("mapillary", "upload").action.is_none());
    }

    #[test]
    fn error_rate_is_seeded() {
        let run = || {
            let f = Faults::default();
            f.seed(42);
            f.error_rate("mapillary", 0.5, 503);
            (0..64)
                .map(|_| f.decide("mapillary", "upload").action.is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let n = a.iter().filter(|x| **x).count();
        assert!((16..48).contains(&n), "{n}");
    }

    #[test]
    fn throttles_combine_with_other_rules_and_the_slowest_wins() {
        let d = Faults::parse_spec("mapillary.upload:throttle_kbps=64,status=503").unwrap();
        assert_eq!(d.len(), 2);
        assert!(matches!(
            &d[0],
            FaultDirective::Rule(FaultRule {
                action: FaultAction::Throttle {
                    bytes_per_sec: 65_536
                },
                ..
            })
        ));
        assert!(Faults::parse_spec("mapillary.upload:throttle_kbps=0").is_err());
        let f = Faults::default();
        f.apply(d);
        f.throttle("mapillary", 1_000);
        let decision = f.decide("mapillary", "upload");
        assert_eq!(decision.throttle, Some(1_000));
        assert!(matches!(
            decision.action,
            Some(FaultAction::Status { status: 503, .. })
        ));
        assert_eq!(f.decide("kartaview", "photo").throttle, None);
    }

    #[test]
    fn a_link_is_shared_by_every_request_its_rule_matches() {
        let d = Faults::parse_spec("mapillary.upload:link_kbps=100").unwrap();
        assert_eq!(
            d,
            vec![FaultDirective::Rule(FaultRule::new(
                target("mapillary.upload"),
                FaultAction::Link {
                    bytes_per_sec: 102_400
                }
            ))]
        );
        assert!(Faults::parse_spec("mapillary.upload:link_kbps=0").is_err());
        let f = Faults::default();
        f.apply(d);
        let (a, b) = (
            f.decide("mapillary", "upload"),
            f.decide("mapillary", "upload"),
        );
        assert_eq!((a.links.len(), b.links.len()), (1, 1));
        assert!(Arc::ptr_eq(&a.links[0], &b.links[0]));
        assert!(f.decide("mapillary", "offset").links.is_empty());
        // Another rule is another link.
        f.link("mapillary.upload", 1_000);
        let c = f.decide("mapillary", "upload");
        assert_eq!(c.links.len(), 2);
        assert!(!Arc::ptr_eq(&c.links[0], &c.links[1]));
        // Bytes booked by one request wait for those booked before by another.
        let link = &c.links[1];
        let first = link.book(500);
        let second = link.book(1_000);
        assert_eq!(second - first, Duration::from_secs(1));
    }

    #[test]
    fn token_expiry_marks_only_past_serials() {
        let f = Faults::default();
        let a = f.next_token_serial();
        f.expire_tokens();
        let b = f.next_token_serial();
        assert!(f.token_expired(a));
        assert!(!f.token_expired(b));
        assert!(!f.token_revoked(a));
        f.revoke_tokens();
        assert!(f.token_revoked(b));
    }
}
