//! Emulators of the remote services MTP Desktop talks to (see `PROTOCOLS.md`): Mapillary
//! (OAuth, the resumable upload host, the Graph API and its read-back), OSM OAuth2 +
//! KartaView, Panoramax (GeoVisio) and Map the Paths Web. One axum server, one loopback
//! origin; every service lives under its own path prefix so that a client only needs its
//! base URL changed. They serve tests, `mtp sandbox` and the app's offline sandbox mode, and
//! they are faithful enough that the real `mapillary_tools` uploads into them unchanged
//! (`scripts/mapillary_tools_fidelity.sh`).
//!
//! # URL layout (all on [`Sandbox::base_url`])
//!
//! | Prefix | Service | Client setting |
//! |---|---|---|
//! | `/mapillary/connect` | Mapillary authorize page (Approve / Deny) | authorize URL |
//! | `/mapillary/graph/…` | Graph API: `token`, `me`, `finish_upload`, `logging`, `images`, `image_ids`, `{id}`, `graphql` (mapillary.com's activity feed), `sandbox/clusters/{id}`, `sandbox/world/{id}/thumb` | `MAPILLARY_GRAPH_API_ENDPOINT=<base>/mapillary/graph` |
//! | `/mapillary/upload/{key}` | upload host (GET offset, POST bytes) | `MAPILLARY_UPLOAD_ENDPOINT=<base>/mapillary/upload` |
//! | `/osm/oauth2/authorize`, `/osm/oauth2/token` | OpenStreetMap OAuth2 | |
//! | `/kartaview/…` | KartaView API (`/1.0/…` incl. `/1.0/list/nearby-photos/`, `/2.0/…`, `/auth/openstreetmap/client_auth`, `/my-list`, `/details`, `/storage1/files/photo/{th,lth}/{id}.jpg`) | API base `<base>/kartaview` |
//! | `/panoramax/api/…` | GeoVisio API | instance `<base>/panoramax` |
//! | `/mtpw/accounts/authorize/`, `/mtpw/api/v1/…`, `/mtpw/sequence/<id>[/delete]` | Map the Paths Web (API and web pages) | base `<base>/mtpw` |
//! | `/sandbox/…` | control plane: `urls`, `requests`, `faults`, `tokens` | |
//!
//! The URLs have no trailing slash, like the production settings they replace: build
//! endpoint URLs by string concatenation (`format!("{base}/me")`), as `mapillary_tools`
//! does, not with `Url::join` (which would drop the last path segment).
//!
//! # State
//!
//! In memory by default; with [`SandboxConfig::state_dir`] the emulators keep their state in
//! that folder and a restart resumes (tokens, uploads including partial ones, processing,
//! ids), as the real services do. See the `persist` module for the layout.
//!
//! # Seeded world
//!
//! Besides what clients upload, the searches (Mapillary `/images`, KartaView
//! `nearby-photos`, Panoramax `/search` and `/collections`) find a [`World`] of images
//! generated from [`SandboxConfig::world`] at start (never saved): sequences in Paris,
//! London, Berlin and Lisbon by made-up accounts and the sandbox accounts, or one dense
//! square for load tests. [`Sandbox::world`] gives tests the expected answers.
//!
//! # Fault injection
//!
//! See [`Faults`] for the API and [`faults`] for the spec syntax used by the CLI, e.g.
//! `mapillary.upload:error_rate=0.3,status=503;kartaview.photo:rate_limit=1,retry_after=2`.

// Handler helpers return `Result<_, Response>` so a handler can `?`/`match` its way to the
// reply; the response is built once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod admin;
mod app;
mod auth;
mod body;
mod clock;
pub mod faults;
mod geo;
mod html;
mod ids;
mod kartaview;
mod mapillary;
mod mtpw;
mod osm;
mod panoramax;
mod persist;
mod photo;
mod record;
mod server;
mod state;
mod world;

pub use auth::{SandboxUser, Service, USERS};
pub use faults::{
    FaultAction, FaultDirective, FaultId, FaultRule, FaultSpecError, FaultTarget, Faults,
    OsmAppRefusal,
};
pub use mtpw::MtpwImportMode;
pub use record::{RecordedFile, RecordedRequest};
pub use server::{
    MLY_MAX_BBOX_ENV, Sandbox, SandboxConfig, SandboxUrls, WORLD_ENV, WORLD_SEED_ENV,
};
pub use state::{
    KartaViewPhoto, KartaViewSequence, MapillaryCluster, MapillaryFile, MapillaryImage,
    MapillarySequence, MtpwSequence, PanoramaxCollection, PanoramaxFile, PanoramaxUploadSet,
    SandboxState,
};
pub use world::{
    DEFAULT_WORLD_IMAGES, DEFAULT_WORLD_SEED, Transport, World, WorldArea, WorldBbox, WorldImage,
    WorldSequence, WorldSpec, WorldUser,
};

/// Client id of the sandbox Mapillary app (what the app uses in sandbox mode).
pub const MAPILLARY_CLIENT_ID: &str = "1001";
/// Client secret of the sandbox Mapillary app, in Mapillary's `MLY|<app id>|<hex>` shape; sent
/// as `Authorization: OAuth <secret>` to `POST {graph}/token`.
pub const MAPILLARY_CLIENT_SECRET: &str = "MLY|1001|sandboxsecret";
/// Client id of the sandbox OSM OAuth2 app (used to log in to KartaView).
pub const OSM_CLIENT_ID: &str = "mtp-sandbox-osm-client";
/// Client secret of the sandbox OSM OAuth2 app; also the `secret_token` KartaView's
/// `client_auth` expects.
pub const OSM_CLIENT_SECRET: &str = "mtp-sandbox-osm-secret";
/// Client id of the OSM OAuth2 app KartaView's own upload-scripts sign in with (out of band
/// only: OSM shows the code, the user pastes it). `client_auth` always accepts its tokens;
/// with `kartaview_refuse_osm_apps` set, only its tokens.
pub const KARTAVIEW_OSM_CLIENT_ID: &str = "kartaview-upload-scripts";
/// Client secret of that app; also the `secret_token` sent with its tokens to `client_auth`.
pub const KARTAVIEW_OSM_CLIENT_SECRET: &str = "kartaview-upload-scripts-secret";
/// Client id of the sandbox Map the Paths Web app (implicit grant).
pub const MTPW_CLIENT_ID: &str = "mtp-sandbox-mtpw-client";
/// Username of the default sandbox account on every service.
pub const SANDBOX_USERNAME: &str = "sandbox-user";
/// Display name of the default sandbox account.
pub const SANDBOX_DISPLAY_NAME: &str = "Sandbox User";
/// The client token Mapillary's own web app embeds (public in its page source): the one
/// token the emulator's `/graphql` always accepts (`MAPILLARY_WEB_CLIENT_TOKEN`).
pub const MAPILLARY_WEB_CLIENT_TOKEN: &str = "MLY|4223665974375089|sandboxwebclient";
/// Username of the second sandbox account, non-ASCII on purpose (kartaview/android#46).
pub const SANDBOX_UTF8_USERNAME: &str = "sandbøx-ünïcode";
/// Display name of the second sandbox account.
pub const SANDBOX_UTF8_DISPLAY_NAME: &str = "Sandbøx Ünïcode 地図 🚲";
